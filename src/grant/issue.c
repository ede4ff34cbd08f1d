/*
 * Grant issuing (grant/issue.h): a sign-in the IdP vouched for and the
 * access policy allowed becomes an active grant in the store, with the
 * upstream refresh token sealed to the grant's id, the take-over of the
 * grant the flow replaces, and the device's credential: a single-use
 * authorization code bound to client, redirect URI and PKCE challenge
 * (apple-oauth2), or an RFC 9068 access token living as long as the grant
 * (apple-as-web). What may be taken over is grant/policy.h's rule; the
 * store applies the binding rules inside its transaction.
 */
#include "grant/issue.h"

#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "core/config.h"
#include "core/env.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rand.h"
#include "core/str.h"
#include "grant/deprovision.h"
#include "grant/policy.h"
#include "identity/identity.h"
#include "identity/mapping.h"
#include "jose/seal.h"
#include "oidc/oidc.h"
#include "store/store.h"
#include "token/token.h"

/*
 * Re-authentication of an enrolled device (its flow names the grant it
 * replaces): the new grant takes over the old one's enrollment binding and
 * the old one is superseded. Only when the same person signed in
 * (eb_grant_takeover_decide): anyone else gets a grant of their own, bound
 * at its first check-in.
 */
static void
take_over(struct eb_env *env, const struct eb_tenant *t,
          const struct eb_store_flow *f, const char *new_id,
          const char *managed_apple_id, int64_t now)
{
	struct eb_store_grant old;
	const char *replaces;
	json_t *x;

	if (f->extra == NULL || (x = json_loads(f->extra, 0, NULL)) == NULL)
		return;
	replaces = json_string_value(json_object_get(x, "replaces"));
	memset(&old, 0, sizeof(old));
	if (replaces == NULL ||
	    eb_store_grant_get(env->store, replaces, &old) != EB_STORE_OK)
		goto out;
	switch (eb_grant_takeover_decide(old.tenant, old.managed_apple_id,
	                                 t->id, managed_apple_id)) {
	case EB_GRANT_TAKEOVER:
		if (eb_store_grant_supersede(env->store, old.id, new_id, now) ==
		    EB_STORE_OK)
			log_info("tenant %s: grant %.8s supersedes %.8s on the "
			         "same enrollment",
			         t->id, new_id, old.id);
		break;
	case EB_GRANT_TAKEOVER_OTHER_ACCOUNT:
		log_warnx("tenant %s: re-authentication as another "
		          "account: grant %.8s is not taken over",
		          t->id, old.id);
		break;
	default:
		break;
	}
out:
	eb_store_grant_finish(&old);
	json_decref(x);
}

/* The value of claim name for the snapshot: the groups the sign-in read
 * (a Graph lookup included) for "groups", else the token's claim. */
static json_t *
claim_value(const struct eb_identity *id, const char *name)
{
	json_t *a;
	size_t i;

	if (strcmp(name, "groups") != 0 || !id->groups_known)
		return json_deep_copy(json_object_get(id->claims, name));
	if ((a = json_array()) == NULL)
		return NULL;
	for (i = 0; i < id->groups.n; i++)
		if (json_array_append_new(a, json_string(id->groups.v[i])) !=
		    0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* view->mdm.claims of id into idp, within EB_GRANT_IDP_MAX bytes. */
static int
snapshot_claims(const struct eb_tenant *view, const struct eb_identity *id,
                json_t *idp)
{
	const struct eb_strlist *names = &view->mdm.claims;
	json_t *v;
	char *text;
	size_t i, len;

	for (i = 0; i < names->n; i++) {
		if ((v = claim_value(id, names->v[i])) == NULL)
			continue; /* not asserted */
		if (json_object_set_new(idp, names->v[i], v) != 0 ||
		    (text = json_dumps(idp, JSON_COMPACT)) == NULL)
			return -1;
		len = strlen(text);
		eb_free(text);
		if (len > EB_GRANT_IDP_MAX) {
			log_warnx("tenant %s: claim %s left out of the grant: "
			          "the mdm.claims snapshot is limited to %d "
			          "bytes",
			          view->id, names->v[i], EB_GRANT_IDP_MAX);
			json_object_del(idp, names->v[i]);
		}
	}
	return 0;
}

char *
eb_grant_extra(const struct eb_tenant *view, const char *route,
               const struct eb_identity *id, const char *sub)
{
	json_t *x, *idp = NULL;
	char *out = NULL;
	int rc = 0;

	if ((x = json_object()) == NULL)
		return NULL;
	if (sub != NULL)
		rc |= json_object_set_new(x, "sub", json_string(sub));
	if (route != NULL)
		rc |= json_object_set_new(x, "route", json_string(route));
	if (view->mdm.claims.n > 0) {
		if ((idp = json_object()) == NULL ||
		    snapshot_claims(view, id, idp) == -1)
			rc = -1;
		rc |= json_object_set(x, "idp", idp);
	}
	if (rc == 0)
		out = json_dumps(x, JSON_COMPACT);
	json_decref(idp);
	json_decref(x);
	return out;
}

/* The grant's mode: the flow's (the tenant's enrollment, chosen before the
 * person was known), unless their route overrides enrollment. */
static const char *
grant_mode(const struct eb_grant_issue_in *in, const struct eb_tenant *view)
{
	const char *flow = in->f->enrollment_mode, *m;

	if (in->route == NULL || !(in->route->overrides & EB_ROUTE_ENROLLMENT))
		return flow != NULL ? flow : eb_mode_name(in->t->default_mode);
	m = eb_mode_name(eb_tenant_mode(view, in->f->model_family));
	if (flow != NULL && strcmp(flow, m) != 0)
		log_warnx("tenant %s: route %s makes this %s enrollment %s",
		          in->t->id, in->route->name, flow, m);
	return m;
}

/*
 * The login a SCIM userName is matched to (eb_identity_login), ASCII
 * lower-case; NULL when the IdP sent none (*oom set when out of memory).
 */
static char *
idp_login(const struct eb_identity *id, int *oom)
{
	const char *l = eb_identity_login(id);
	char *s;

	*oom = 0;
	if (l == NULL)
		return NULL;
	if ((s = eb_strdup(l)) == NULL) {
		*oom = 1;
		return NULL;
	}
	return eb_str_lower(s);
}

/*
 * A person the tenant's SCIM client deactivated while they signed in (the
 * sign-in checked before, grant/deprovision.h): the new grant ends at once,
 * since the deprovisioning may have listed the person's grants before it
 * was stored. 0 when it may stay, -1 when it was ended (or the store could
 * not say).
 */
static int
scim_recheck(struct eb_env *env, const struct eb_tenant *t,
             const struct eb_identity *id, const char *login, const char *gid,
             int64_t now)
{
	int rc;

	if (t->scim == NULL)
		return 0;
	rc = eb_grant_scim_inactive(env->store, t, login,
	                            id->oid != NULL ? id->oid : id->subject);
	if (rc == 0)
		return 0;
	log_ev(EB_LOG_WARN, EB_EVT(t->id, "grant.revoked", "scim", gid),
	       "its person was deprovisioned meanwhile; revoked");
	eb_store_grant_set_status(env->store, gid, EB_STORE_GRANT_REVOKED,
	                          "deprovisioned by SCIM", now);
	return -1;
}

/* A fresh grant id: "g" and 144 random bits, URL-safe. */
static char *
grant_id(void)
{
	char *r = eb_rand_token(18), *id = NULL;
	size_t n;

	if (r != NULL && (id = eb_malloc((n = strlen(r)) + 2)) != NULL) {
		id[0] = 'g';
		memcpy(id + 1, r, n + 1);
	}
	eb_free(r);
	return id;
}

char *
eb_grant_issue(struct eb_env *env, const struct eb_config *cfg,
               const struct eb_grant_issue_in *in)
{
	const struct eb_tenant *t = in->t;
	const struct eb_store_flow *f = in->f;
	const struct eb_identity *id = in->id;
	const struct eb_mapping_result *map = in->map;
	const struct eb_oidc_tokens *tok = in->tok;
	const struct eb_tenant *view = in->route ? &in->route->view : t;
	struct eb_store_grant g;
	struct eb_access_claims ac;
	char hash[EB_STORE_HASH_HEXLEN + 1], *raw = NULL, *gid, *extra = NULL;
	char *login;
	uint8_t *sealed = NULL;
	size_t sealed_len = 0;
	int64_t now = in->now;
	int oom;

	/* "g" first: an id never starts with '-', so CLIs never read it as
	 * an option */
	if ((gid = grant_id()) == NULL)
		return NULL;
	if ((login = idp_login(id, &oom)) == NULL && oom) {
		eb_free(gid);
		return NULL;
	}
	memset(&g, 0, sizeof(g));
	g.id = gid;
	g.tenant = t->id;
	g.status = EB_STORE_GRANT_ACTIVE;
	g.auth_method = f->kind == EB_STORE_FLOW_OAUTH2_AUTHORIZE
	                    ? "apple-oauth2"
	                    : "apple-as-web";
	g.client_id = f->client_id;
	g.managed_apple_id = map->managed_apple_id;
	g.user_identifier = f->user_identifier;
	g.idp_issuer = id->issuer;
	g.idp_subject = id->subject;
	g.idp_tid = id->tid;
	g.idp_oid = id->oid;
	g.idp_login = login;
	g.enrollment_mode = (char *)(uintptr_t)grant_mode(in, view);
	g.created = g.updated = now;
	g.expires = now + t->tokens.refresh_ttl;
	if (tok->refresh_token != NULL) {
		if (eb_seal_ring_seal(env->seal_ring, EB_SEAL_AT_REST, gid,
		                      strlen(gid), tok->refresh_token,
		                      strlen(tok->refresh_token), &sealed,
		                      &sealed_len) != 0)
			goto out;
		g.upstream_refresh_token = sealed;
		g.upstream_refresh_token_len = sealed_len;
		g.upstream_next_at = now + t->tokens.upstream_renew_interval;
	}
	g.upstream_renewed_at = now;
	if (tok->refresh_token == NULL) {
		/* nothing to renew with: the renewer ends it as a sign-in
		 * challenge once it is max_unverified_age old */
		g.upstream_next_at = now + t->tokens.max_unverified_age;
		log_info("tenant %s: the IdP gave no refresh token: grant %s "
		         "is not renewed silently; re-verified by sign-in in "
		         "%ds",
		         t->id, gid, t->tokens.max_unverified_age);
	}
	/* the ID token's own sub, which the silent renewal checks refreshed
	 * ID tokens against (Entra's subject is tid:oid); the route; the
	 * mdm.claims snapshot */
	if ((g.extra = extra =
	         eb_grant_extra(view, view->route, id, tok->sub)) == NULL)
		goto out;
	if (eb_store_grant_create(env->store, &g) != EB_STORE_OK ||
	    scim_recheck(env, t, id, login, gid, now) != 0)
		goto out;
	take_over(env, t, f, gid, map->managed_apple_id, now);
	if ((raw = eb_rand_token(32)) == NULL ||
	    eb_store_hash_token(raw, strlen(raw), hash) != 0)
		goto fail;
	if (f->kind == EB_STORE_FLOW_OAUTH2_AUTHORIZE) {
		struct eb_store_code code;

		/* single use, short-lived, bound to client and redirect URI */
		memset(&code, 0, sizeof(code));
		code.hash = hash;
		code.tenant = t->id;
		code.grant_id = gid;
		code.client_id = f->client_id;
		code.redirect_uri = f->redirect_uri;
		code.scope = f->scope;
		code.code_challenge = f->code_challenge;
		code.created = now;
		code.expires = now + t->tokens.code_ttl;
		if (eb_store_code_put(env->store, &code) != EB_STORE_OK)
			goto fail;
		goto out;
	}
	/* apple-as-web: the device gets an access token (RFC 9068) that
	 * lives as long as its grant; eb_token_issue stores its hash */
	eb_free_secret_str(raw);
	memset(&ac, 0, sizeof(ac));
	ac.grant_id = gid;
	ac.sub = map->managed_apple_id;
	ac.managed_apple_id = map->managed_apple_id;
	ac.enrollment_mode = g.enrollment_mode;
	ac.client_id = t->oauth2.client_id;
	ac.grant_extra = g.extra;
	ac.iat = now;
	ac.exp = g.expires;
	raw = eb_token_issue(env->signer, env->store, cfg, t, &ac,
	                     EB_STORE_TOKEN_WEB);
	goto out;
fail:
	eb_free_secret_str(raw);
	raw = NULL;
out:
	eb_free(login);
	eb_free(extra);
	eb_free(sealed);
	eb_free(gid);
	return raw;
}
