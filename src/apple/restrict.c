/*
 * Device restrictions at the enrollment POST. See restrict.h.
 */
#include "apple/restrict.h"

#include <stdio.h>
#include <string.h>

#include "apple/machineinfo.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/mem.h"

/* The first version of each OS that acts on software-update-required. */
static const char *const update_since[EB_OS_COUNT] = {
    [EB_OS_IOS] = "17.0",
    [EB_OS_IPADOS] = "17.0",
    [EB_OS_MACOS] = "14.0",
    [EB_OS_VISIONOS] = "26.0",
};

static void
refuse(struct eb_restrict_verdict *v, const char *code)
{
	v->allow = 0;
	v->code = code;
}

/* model_families: the family must be listed (an unknown one is not). */
static int
family_allowed(const struct eb_tenant *t, const struct eb_machineinfo *mi,
               int family, struct eb_restrict_verdict *v)
{
	unsigned set = t->restrictions.families;

	if (set == 0 || (family >= 0 && (set & (1u << family))))
		return 1;
	refuse(v, EB_RESTRICT_RESTRICTED);
	if (family < 0) {
		snprintf(v->reason, sizeof(v->reason),
		         "model %.64s is of no known family", mi->product);
		snprintf(v->message, sizeof(v->message),
		         "This kind of device can't be enrolled here. Contact "
		         "your IT department.");
	} else {
		snprintf(
		    v->reason, sizeof(v->reason),
		    "model family %s is not in restrictions.model_families",
		    mi->model_family);
		snprintf(v->message, sizeof(v->message),
		         "Your organization does not allow enrolling this "
		         "device (%s). Use another device, or contact your IT "
		         "department.",
		         mi->model_family);
	}
	return 0;
}

/* min_os_version: the device's OS_VERSION must be at least the minimum. */
static void
os_allowed(const struct eb_tenant *t, const struct eb_machineinfo *mi, int os,
           struct eb_restrict_verdict *v)
{
	const char *min = os >= 0 ? t->restrictions.min_os_version[os] : NULL;
	const char *name = eb_os_name(os);
	int c;

	if (min == NULL)
		return;
	c = mi->os_version != NULL ? eb_os_version_cmp(mi->os_version, min)
	                           : -2;
	if (c >= 0)
		return;
	v->min_os = min;
	if (c == -2) {
		refuse(v, EB_RESTRICT_RESTRICTED);
		snprintf(v->reason, sizeof(v->reason),
		         "no readable OS_VERSION; %s %s is required", name,
		         min);
		snprintf(v->message, sizeof(v->message),
		         "This device did not report its %s version. %s %s or "
		         "later is required: update the device, then enroll "
		         "again.",
		         name, name, min);
		return;
	}
	refuse(v,
	       mi->can_request_update &&
	               eb_os_version_cmp(mi->os_version, update_since[os]) >= 0
	           ? EB_RESTRICT_UPDATE_REQUIRED
	           : EB_RESTRICT_RESTRICTED);
	snprintf(v->reason, sizeof(v->reason), "%s %.32s is below %s", name,
	         mi->os_version, min);
	snprintf(v->message, sizeof(v->message),
	         "This device runs %s %.32s. Update it to %s %s or later, then "
	         "enroll again.",
	         name, mi->os_version, name, min);
}

void
eb_restrict_device(const struct eb_tenant *t, const struct eb_machineinfo *mi,
                   struct eb_restrict_verdict *v)
{
	int family = eb_model_family_parse(mi->model_family);

	memset(v, 0, sizeof(*v));
	v->allow = 1;
	if (family_allowed(t, mi, family, v))
		os_allowed(t, mi, eb_family_os(family), v);
}

char *
eb_restrict_body(const struct eb_restrict_verdict *v, size_t *lenp)
{
	struct eb_buf b;
	int rc;

	eb_buf_init(&b, 4096);
	rc = eb_buf_addstr(&b, "{\"code\":") |
	     eb_buf_add_json_str(&b, v->code) |
	     eb_buf_addstr(&b, ",\"description\":") |
	     eb_buf_add_json_str(&b, v->reason) |
	     eb_buf_addstr(&b, ",\"message\":") |
	     eb_buf_add_json_str(&b, v->message);
	if (strcmp(v->code, EB_RESTRICT_UPDATE_REQUIRED) == 0)
		/* Apple's details: OSVersion required, BuildVersion optional */
		rc |= eb_buf_addstr(&b, ",\"details\":{\"OSVersion\":") |
		      eb_buf_add_json_str(&b, v->min_os) | eb_buf_addc(&b, '}');
	if ((rc | eb_buf_addstr(&b, "}\n")) != 0) {
		eb_buf_finish(&b);
		return NULL;
	}
	return eb_buf_detach(&b, lenp);
}
