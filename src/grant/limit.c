/*
 * The per-person device limit. See limit.h.
 */
#include "grant/limit.h"

#include <string.h>

#include <jansson.h>

#include "core/config.h"
#include "core/log.h"
#include "grant/policy.h"
#include "identity/policy.h"
#include "store/store.h"

/* 1 when flow f replaces a grant of the same person (a takeover). */
static int
is_takeover(struct eb_store *s, const struct eb_tenant *t,
            const struct eb_store_flow *f, const char *managed_apple_id)
{
	struct eb_store_grant old;
	const char *replaces;
	json_t *x;
	int yes = 0;

	if (f->extra == NULL || (x = json_loads(f->extra, 0, NULL)) == NULL)
		return 0;
	replaces = json_string_value(json_object_get(x, "replaces"));
	memset(&old, 0, sizeof(old));
	if (replaces != NULL &&
	    eb_store_grant_get(s, replaces, &old) == EB_STORE_OK)
		yes = eb_grant_takeover_decide(old.tenant, old.managed_apple_id,
		                               t->id, managed_apple_id) ==
		      EB_GRANT_TAKEOVER;
	eb_store_grant_finish(&old);
	json_decref(x);
	return yes;
}

int
eb_grant_limit_check(struct eb_store *s, const struct eb_tenant *t,
                     const struct eb_store_flow *f,
                     const char *managed_apple_id, int64_t now,
                     struct eb_policy_verdict *v)
{
	long max = t->restrictions.max_devices_per_user;
	struct eb_store_grant_filter gf;
	struct eb_store_grant_list l;
	long n = 0;
	size_t i;
	int rc;

	if (max <= 0 || is_takeover(s, t, f, managed_apple_id))
		return 0;
	memset(&gf, 0, sizeof(gf));
	gf.tenant = t->id;
	gf.status = EB_STORE_GRANT_ACTIVE;
	gf.managed_apple_id = managed_apple_id;
	if ((rc = eb_store_grant_list(s, &gf, &l)) != EB_STORE_OK) {
		log_warnx("tenant %s: cannot count a person's devices: %s",
		          t->id, eb_store_strerror(rc));
		return -1;
	}
	for (i = 0; i < l.n; i++)
		if (l.v[i].expires > now)
			n++;
	eb_store_grant_list_finish(&l);
	if (n < max)
		return 0;
	eb_policy_deny(v, "device_limit",
	               "Remove a device you no longer use (your IT department "
	               "can retire it), then enroll this one again.",
	               "You already have %ld enrolled device%s, the most your "
	               "organization allows (%ld per person)",
	               n, n == 1 ? "" : "s", max);
	return 1;
}
