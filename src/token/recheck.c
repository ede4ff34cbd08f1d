/*
 * The access re-check at a renewal (recheck.h): a fresh identity from the
 * IdP, the mapping and the access policy over it, and the "access.lost"
 * audit event when the renewer ends a grant for it.
 */
#include "token/recheck.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/env.h"
#include "core/log.h"
#include "identity/identity.h"
#include "identity/mapping.h"
#include "store/store.h"

#define MAX_DETAIL 4096

/* The mapping and the access policy over the fresh identity id. */
static int
judge(struct eb_env *env, const struct eb_tenant *t,
      const struct eb_store_grant *g, const struct eb_identity *id,
      struct eb_policy_verdict *v, struct eb_oidc_error *err)
{
	struct eb_mapping_result map;
	int rc;

	memset(&map, 0, sizeof(map));
	rc = eb_mapping_resolve(t, env->store, id, g->user_identifier, &map, v);
	if (rc == EB_MAPPING_FAIL) {
		snprintf(err->code, sizeof(err->code), "mapping_failed");
		snprintf(err->reason, sizeof(err->reason), "%s", v->reason);
		err->kind = EB_OIDC_E_INTERNAL;
		return EB_RECHECK_FAILED;
	}
	if (rc == EB_MAPPING_OK)
		eb_policy_check(t, id, &map, v);
	eb_mapping_result_finish(&map);
	return v->allow ? EB_RECHECK_OK : EB_RECHECK_DENIED;
}

int
eb_recheck(struct eb_env *env, const struct eb_tenant *t,
           const struct eb_store_grant *g, const struct eb_oidc_tokens *tok,
           json_t *claims, const char *expected_sub,
           struct eb_policy_verdict *v, struct eb_oidc_error *err)
{
	struct eb_identity id;
	int rc;

	memset(err, 0, sizeof(*err));
	eb_policy_allow(v);
	eb_identity_init(&id);
	if (eb_oidc_identity(env->oidc, t, g->idp_issuer, tok->access_token,
	                     claims, expected_sub, &id, err) != 0) {
		if (err->kind != EB_OIDC_E_POLICY) {
			rc = EB_RECHECK_FAILED;
			goto out;
		}
		/* a provider rule (Entra tenant, Google domain, groups
		 * that cannot be resolved when Graph is off) refuses them */
		eb_policy_deny(v, err->code, NULL, "%s", err->reason);
		rc = EB_RECHECK_DENIED;
		goto out;
	}
	if (g->idp_subject != NULL && id.subject != NULL &&
	    strcmp(id.subject, g->idp_subject) != 0) {
		/* the renewer revokes: the IdP answers for someone else */
		err->kind = EB_OIDC_E_TOKEN;
		snprintf(err->code, sizeof(err->code), "sub_mismatch");
		snprintf(err->reason, sizeof(err->reason),
		         "fresh claims are for another subject");
		rc = EB_RECHECK_FAILED;
		goto out;
	}
	rc = judge(env, t, g, &id, v, err);
out:
	eb_identity_finish(&id);
	return rc;
}

/* ,"key":"value" unless value is NULL. */
static int
field(struct eb_buf *b, const char *key, const char *value)
{
	if (value == NULL)
		return 0;
	return eb_buf_printf(b, "%s\"%s\":", b->len > 1 ? "," : "", key) ==
	                   -1 ||
	               eb_buf_add_json_str(b, value) == -1
	           ? -1
	           : 0;
}

int
eb_recheck_audit(struct eb_store *s, const struct eb_tenant *t,
                 const struct eb_store_grant *g, const char *code,
                 const char *reason, const char *action, int64_t now)
{
	struct eb_store_audit ev;
	struct eb_buf b;
	int rc = -1;

	eb_buf_init(&b, MAX_DETAIL);
	if (eb_buf_addc(&b, '{') == -1 || field(&b, "grant", g->id) == -1 ||
	    field(&b, "managed_apple_id", g->managed_apple_id) == -1 ||
	    field(&b, "code", code) == -1 ||
	    field(&b, "reason", reason) == -1 ||
	    field(&b, "action", action) == -1 || eb_buf_addc(&b, '}') == -1) {
		log_warnx("tenant %s: grant %s: access.lost not recorded "
		          "(no memory)",
		          t->id, g->id);
		goto out;
	}
	memset(&ev, 0, sizeof(ev));
	ev.ts = now;
	ev.tenant = t->id;
	ev.event = "access.lost";
	ev.subject = g->idp_subject != NULL ? g->idp_subject : g->id;
	ev.detail = (char *)eb_buf_str(&b);
	rc = eb_store_audit_add(s, &ev) == EB_STORE_OK ? 0 : -1;
out:
	eb_buf_finish(&b);
	return rc;
}
