/*
 * Whether a signed-in person may enroll: the tenant's access rules
 * (access.require_groups, access.allowed_domains) over the identity and its
 * Managed Apple Account mapping, giving a verdict with a stable short code
 * (for metrics, tests and the audit trail) and a plain-English reason and
 * hint (for the 403 page a person reads on their phone). Every allow and
 * deny is recorded as an audit event.
 */
#ifndef EB_POLICY_H
#define EB_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "identity/identity.h"

struct eb_store;
struct eb_mapping_result;

/* A decision. Refusals from the providers and the mapping use it too. */
struct eb_policy_verdict {
	int allow;        /* 1 allow, 0 deny */
	char code[32];    /* "ok", "group_required", "groups_overage", ... */
	char reason[256]; /* what happened, in plain words; no token, secret */
	char hint[256];   /* what the person can do ("" when nothing) */
};

/* Set v to allow with code "ok". */
void eb_policy_allow(struct eb_policy_verdict *v);
/*
 * Set v to deny with code (copied, at most 31 bytes), a reason (printf
 * format; control characters become '?') and hint (may be NULL).
 */
void eb_policy_deny(struct eb_policy_verdict *v, const char *code,
                    const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * 1 when want names the group have: Entra group ids (GUIDs) compare
 * ignoring case (admins paste them in either case), names exactly.
 */
int eb_policy_group_eq(const char *want, const char *have);
/* 1 when the token said groups exist but did not carry them (an Entra
 * overage: _claim_names.groups or hasgroups). */
int eb_policy_groups_overage(const struct eb_identity *id);

/*
 * 1 when tenant t requires groups that id does not carry (groups_known 0):
 * the caller should then ask the provider's resolve_groups first.
 */
int eb_policy_needs_groups(const struct eb_tenant *t,
                           const struct eb_identity *id);

/*
 * Apply t's access rules to id and its mapping (map may be NULL when the
 * rules do not need it: then allowed_domains refuses). Deny codes:
 *   "groups_overage"     groups required; the token had too many to carry
 *                        and they were not resolved
 *   "groups_unknown"     groups required; the IdP sent none
 *   "group_required"     member of none of access.require_groups
 *   "no_login"           allowed_domains set; no IdP login to check
 *   "domain_not_allowed" the IdP login's domain is not in allowed_domains
 * Returns 0 (allowed) or -1 (denied); v is always filled.
 */
int eb_policy_check(const struct eb_tenant *t, const struct eb_identity *id,
                    const struct eb_mapping_result *map,
                    struct eb_policy_verdict *v);

/*
 * Record v as audit event "login.allow" or "login.deny" for tenant t at
 * now: subject is id's IdP subject (or "-"); the detail JSON holds the
 * code, reason, IdP issuer and login, the mapping's managed_apple_id and
 * rule, and the typed identifier (typed may be NULL; map may be NULL).
 * Never a token. Returns 0 or -1 (store failure, already logged).
 */
int eb_policy_audit(struct eb_store *s, const struct eb_tenant *t,
                    const struct eb_identity *id,
                    const struct eb_mapping_result *map, const char *typed,
                    const struct eb_policy_verdict *v, int64_t now);

#endif
