/*
 * Tenant restrictions on the device (DESIGN.md "Lifecycle and identity"):
 * which model families may enroll and the lowest OS version of each, judged
 * on the MachineInfo of the enrollment POST, before anyone signs in.
 *
 * A refused device gets 403 with a JSON body of Apple's error shape
 * ({"code", "description", "message", "details"}): the message is shown to
 * the person. The code is Apple's "com.apple.softwareupdate.required"
 * (details.OSVersion = the minimum) only when the OS is too old and the
 * MachineInfo says MDM_CAN_REQUEST_SOFTWARE_UPDATE: Apple documents that
 * answer for Setup Assistant enrollments of iOS/iPadOS 17, macOS 14 and
 * visionOS 26 or later, which then offer the update, and MDMs send it only
 * on that flag. Every other refusal (account-driven enrollment does not
 * send the flag) is "com.apple.enrollment.restricted".
 */
#ifndef EB_RESTRICT_H
#define EB_RESTRICT_H

#include <stddef.h>

struct eb_machineinfo;
struct eb_tenant;

#define EB_RESTRICT_UPDATE_REQUIRED "com.apple.softwareupdate.required"
#define EB_RESTRICT_RESTRICTED      "com.apple.enrollment.restricted"

struct eb_restrict_verdict {
	int allow;
	const char *code;   /* one of the two above; NULL when allowed */
	const char *min_os; /* the tenant's minimum when the OS is too old */
	char reason[192];   /* for the log and the audit event */
	char message[320];  /* for the person */
};

/*
 * Judge mi against t->restrictions: v->allow 1, or 0 with the code, the
 * reason and the message. A device whose family is unknown passes when
 * no model_families list is set; one that sends no OS_VERSION is refused
 * when its OS has a minimum (nothing shows that it meets it).
 */
void eb_restrict_device(const struct eb_tenant *t,
                        const struct eb_machineinfo *mi,
                        struct eb_restrict_verdict *v);
/* The 403 JSON body for a refusal, fresh (eb_free), or NULL (memory). */
char *eb_restrict_body(const struct eb_restrict_verdict *v, size_t *lenp);

#endif
