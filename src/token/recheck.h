/*
 * The access re-check at every silent renewal (DESIGN.md "Lifecycle and
 * identity"): after the IdP renewed a grant's upstream tokens, the person
 * is looked at again as at sign-in, with fresh claims (the refreshed ID
 * token's, or userinfo's when the IdP sent none; Entra's groups overage
 * through Microsoft Graph with the fresh access token), the Managed Apple
 * Account mapping and the tenant's access policy. A person who no longer
 * qualifies loses the grant (per on_access_lost, by the renewer); an IdP or
 * Graph that cannot answer is an outage, never an allow.
 */
#ifndef EB_RECHECK_H
#define EB_RECHECK_H

#include <stdint.h>

#include <jansson.h>

#include "core/config.h"
#include "identity/policy.h"
#include "oidc/oidc.h"

struct eb_env;
struct eb_store;
struct eb_store_grant;

enum eb_recheck_rc {
	EB_RECHECK_OK = 0,      /* the person still qualifies */
	EB_RECHECK_DENIED = 1,  /* they do not: v says why */
	EB_RECHECK_FAILED = -1, /* cannot tell now: err says why */
};

/*
 * Re-check the person behind grant g of tenant t, whose refresh just gave
 * tok and claims (the refreshed ID token's validated claims; NULL when it
 * had none). expected_sub is the sign-in ID token's sub (may be NULL).
 * Returns an enum eb_recheck_rc; v is filled on DENIED (code and reason
 * for the audit trail, never a token), err on FAILED (E_INTERNAL for our
 * own trouble, else the IdP's).
 */
int eb_recheck(struct eb_env *env, const struct eb_tenant *t,
               const struct eb_store_grant *g, const struct eb_oidc_tokens *tok,
               json_t *claims, const char *expected_sub,
               struct eb_policy_verdict *v, struct eb_oidc_error *err);

/*
 * Record audit event "access.lost" for grant g of tenant t at now: subject
 * the grant's IdP subject; detail JSON {grant, managed_apple_id, code,
 * reason, action} (action "retire" or "revoke"). Returns 0 or -1.
 */
int eb_recheck_audit(struct eb_store *s, const struct eb_tenant *t,
                     const struct eb_store_grant *g, const char *code,
                     const char *reason, const char *action, int64_t now);

#endif
