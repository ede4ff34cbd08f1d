/*
 * The apple-oauth2 token endpoint: POST /t/{T}/oauth2/token (PROTOCOL.md
 * section 3, RFC 6749). The device is a public client identified by the
 * tenant's oauth2.client_id.
 *
 *   authorization_code: the code (single use, bound to client and redirect
 *     URI, short-lived) redeems to an access token and a refresh token. A
 *     replayed code revokes what was issued from it (RFC 6749 4.1.2). A
 *     code whose authorization request carried an S256 code_challenge
 *     needs the matching code_verifier (RFC 7636); a code without one
 *     refuses a code_verifier (a downgrade, RFC 9700 2.1.1). Either
 *     failure uses the code up and revokes its grant.
 *   refresh_token: rotates on every use. The just-rotated token presented
 *     again within a 30-second grace window, while its successor is unused,
 *     is a retry after a lost response: it gets the SAME successor back
 *     (kept sealed on the rotated row for the window) and a new access
 *     token, never a new branch. Any other reuse (after the window, or
 *     once the successor was used) revokes the whole grant, whoever
 *     presents it (grant/refresh.h). The grant's state is
 *     consulted, so a revoked or IdP-disabled person gets invalid_grant
 *     and must sign in again.
 *
 * Errors are RFC 6749 JSON; no response is ever cached.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/env.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rand.h"
#include "core/str.h"
#include "handle/handle.h"
#include "http/form.h"
#include "jose/seal.h"
#include "store/store.h"
#include "token/pkce.h"
#include "token/token.h"

#define REFRESH_GRACE 30
/* Associated data of a sealed successor: bound to the rotated token's
 * hash, so a blob moved to another row does not open. */
#define SUCCESSOR_AD_PREFIX "eb-refresh-successor:"
#define SUCCESSOR_AD_MAX    (sizeof(SUCCESSOR_AD_PREFIX) + EB_STORE_HASH_HEXLEN)

static void
no_cache(struct eb_request *req)
{
	eb_resp_header(req, "Cache-Control", "no-store");
	eb_resp_header(req, "Pragma", "no-cache");
}

static int
oauth_error(struct eb_request *req, int status, const char *error,
            const char *description)
{
	struct eb_buf b;
	char *body;
	size_t len;

	eb_buf_init(&b, 1024);
	eb_buf_addstr(&b, "{\"error\":");
	eb_buf_add_json_str(&b, error);
	eb_buf_addstr(&b, ",\"error_description\":");
	eb_buf_add_json_str(&b, description);
	if (eb_buf_addc(&b, '}') == -1) {
		eb_buf_finish(&b);
		return EB_HANDLED;
	}
	no_cache(req);
	if (status == 503)
		eb_resp_header(req, "Retry-After", "5");
	if (status == 401)
		eb_resp_header(req, "WWW-Authenticate",
		               "Basic realm=\"token\"");
	body = eb_buf_detach(&b, &len);
	eb_resp_set_owned(req, status, "application/json", body, len);
	return EB_HANDLED;
}

static int
store_error(struct eb_request *req)
{
	return oauth_error(req, 503, "temporarily_unavailable",
	                   "try again in a moment");
}

/* A fresh refresh token row for grant g; *raw receives the token. */
static int
new_refresh(const struct eb_tenant *t, const struct eb_store_grant *g,
            int64_t now, char **raw, char hash[EB_STORE_HASH_HEXLEN + 1],
            struct eb_store_token *tok)
{
	int64_t exp = now + t->tokens.refresh_ttl;

	if ((*raw = eb_rand_token(32)) == NULL ||
	    eb_store_hash_token(*raw, strlen(*raw), hash) != 0)
		return -1;
	if (g->expires != 0 && g->expires < exp)
		exp = g->expires;
	memset(tok, 0, sizeof(*tok));
	tok->hash = hash;
	tok->kind = EB_STORE_TOKEN_REFRESH;
	tok->tenant = g->tenant;
	tok->grant_id = g->id;
	tok->client_id = g->client_id;
	tok->created = now;
	tok->expires = exp;
	return 0;
}

/* The claims of an access token for grant g at now. */
static void
access_claims(const struct eb_tenant *t, const struct eb_store_grant *g,
              const char *scope, int64_t now, struct eb_access_claims *c)
{
	memset(c, 0, sizeof(*c));
	c->grant_id = g->id;
	c->sub = g->managed_apple_id;
	c->managed_apple_id = g->managed_apple_id;
	c->enrollment_mode = g->enrollment_mode;
	c->client_id = g->client_id ? g->client_id : t->oauth2.client_id;
	c->scope = scope;
	c->grant_extra = g->extra;
	c->iat = now;
	c->exp = now + t->tokens.access_ttl;
	if (g->expires != 0 && g->expires < c->exp)
		c->exp = g->expires;
}

/* Answer 200 with access token at (valid for expires_in seconds) and
 * refresh. */
static int
answer_tokens(struct eb_request *req, const char *at, int64_t expires_in,
              const char *refresh, const char *scope)
{
	struct eb_buf b;
	char *body;
	size_t len;

	eb_buf_init(&b, 16384);
	eb_buf_addstr(&b, "{\"token_type\":\"Bearer\",\"access_token\":");
	eb_buf_add_json_str(&b, at);
	eb_buf_printf(&b, ",\"expires_in\":%lld,\"refresh_token\":",
	              (long long)expires_in);
	eb_buf_add_json_str(&b, refresh);
	if (scope != NULL) {
		eb_buf_addstr(&b, ",\"scope\":");
		eb_buf_add_json_str(&b, scope);
	}
	if (eb_buf_addc(&b, '}') == -1) {
		eb_buf_finish_secret(&b);
		return store_error(req);
	}
	no_cache(req);
	body = eb_buf_detach(&b, &len);
	eb_resp_set_owned(req, 200, "application/json", body, len);
	return EB_HANDLED;
}

/* Mint the access token, store it, and answer 200 with both tokens. */
static int
answer(struct eb_request *req, const struct eb_tenant *t,
       const struct eb_store_grant *g, const char *refresh, const char *scope,
       int64_t now)
{
	struct eb_env *env = eb_req_env(req);
	struct eb_access_claims c;
	char *at;
	int rc;

	access_claims(t, g, scope, now, &c);
	at = eb_token_issue(env->signer, env->store, eb_req_config(req), t, &c,
	                    EB_STORE_TOKEN_ACCESS);
	if (at == NULL)
		return store_error(req);
	rc = answer_tokens(req, at, c.exp - now, refresh, scope);
	eb_free_secret_str(at);
	return rc;
}

static int
grant_usable(const struct eb_store_grant *g, const char *tenant, int64_t now)
{
	return g->status == EB_STORE_GRANT_ACTIVE &&
	       strcmp(g->tenant, tenant) == 0 &&
	       (g->expires == 0 || g->expires > now);
}

/*
 * RFC 7636 4.6 for a code just used up: 1 when it may redeem. A mismatch
 * (or a verifier for a code issued without a challenge) ends the grant the
 * code stood for: nothing was issued from it, and no one can now.
 */
static int
pkce_ok(struct eb_request *req, const struct eb_tenant *t,
        const struct eb_store_code *c, const char *verifier, int64_t now)
{
	struct eb_env *env = eb_req_env(req);

	if (c->code_challenge == NULL
	        ? verifier == NULL
	        : eb_pkce_verify(c->code_challenge, verifier))
		return 1;
	log_ev(EB_LOG_WARN, EB_EV("grant.revoked", "pkce", c->grant_id),
	       "token: %s: grant revoked",
	       c->code_challenge == NULL
	           ? "code_verifier for a code issued without PKCE"
	           : "code_verifier missing or not matching");
	if (eb_store_grant_set_status(
	        env->store, c->grant_id, EB_STORE_GRANT_REVOKED,
	        "PKCE verification failed", now) == EB_STORE_ERROR)
		log_warnx("tenant %s: grant %s: cannot revoke it", t->id,
		          c->grant_id);
	return 0;
}

static int
code_grant(struct eb_request *req, const struct eb_tenant *t,
           const struct eb_form *f, int64_t now)
{
	struct eb_env *env = eb_req_env(req);
	const char *code = eb_form_get(f, "code");
	const char *ruri = eb_form_get(f, "redirect_uri");
	const char *client_id = eb_form_get(f, "client_id");
	char hash[EB_STORE_HASH_HEXLEN + 1], rhash[EB_STORE_HASH_HEXLEN + 1];
	struct eb_store_code c;
	struct eb_store_grant g;
	struct eb_store_token rt;
	char *refresh = NULL;
	int rc;

	if (code == NULL || ruri == NULL)
		return oauth_error(req, 400, "invalid_request",
		                   "code and redirect_uri are required");
	memset(&c, 0, sizeof(c));
	memset(&g, 0, sizeof(g));
	if (eb_store_hash_token(code, strlen(code), hash) != 0)
		return store_error(req);
	rc = eb_store_code_consume(env->store, hash, client_id, ruri, now, &c);
	if (rc == EB_STORE_REPLAY) {
		log_warnx("tenant %s: authorization code replayed: the grant "
		          "issued from it is revoked",
		          t->id);
		eb_store_code_finish(&c);
		return oauth_error(req, 400, "invalid_grant",
		                   "authorization code already used");
	}
	if (rc == EB_STORE_ERROR) {
		eb_store_code_finish(&c);
		return store_error(req);
	}
	if (rc != EB_STORE_OK || strcmp(c.tenant, t->id) != 0) {
		log_info("tenant %s: token: code not accepted (%s)", t->id,
		         eb_store_strerror(rc));
		eb_store_code_finish(&c);
		return oauth_error(req, 400, "invalid_grant",
		                   "authorization code invalid or expired");
	}
	if (!pkce_ok(req, t, &c, eb_form_get(f, "code_verifier"), now)) {
		eb_store_code_finish(&c);
		return oauth_error(req, 400, "invalid_grant",
		                   "code_verifier does not match the "
		                   "code_challenge");
	}
	rc = eb_store_grant_get(env->store, c.grant_id, &g);
	if (rc != EB_STORE_OK || !grant_usable(&g, t->id, now)) {
		eb_store_code_finish(&c);
		eb_store_grant_finish(&g);
		return rc == EB_STORE_ERROR
		           ? store_error(req)
		           : oauth_error(req, 400, "invalid_grant",
		                         "the grant is no longer valid");
	}
	if (new_refresh(t, &g, now, &refresh, rhash, &rt) == -1 ||
	    eb_store_token_put(env->store, &rt) != EB_STORE_OK)
		rc = store_error(req);
	else
		rc = answer(req, t, &g, refresh, c.scope, now);
	eb_free_secret_str(refresh);
	eb_store_code_finish(&c);
	eb_store_grant_finish(&g);
	return rc;
}

/* The associated data of the successor sealed on the row old_hash. */
static size_t
successor_ad(const char *old_hash, char ad[SUCCESSOR_AD_MAX])
{
	size_t n = sizeof(SUCCESSOR_AD_PREFIX) - 1;

	memcpy(ad, SUCCESSOR_AD_PREFIX, n);
	memcpy(ad + n, old_hash, EB_STORE_HASH_HEXLEN);
	return n + EB_STORE_HASH_HEXLEN;
}

/*
 * The successor's value kept sealed on the rotated row (a retry within the
 * grace window), opened; NULL when it does not open (logged). Free it with
 * eb_free_secret_str.
 */
static char *
successor_open(struct eb_env *env, const struct eb_tenant *t,
               const char *old_hash, const struct eb_store_token *old)
{
	char ad[SUCCESSOR_AD_MAX];
	uint8_t *pt = NULL;
	size_t adlen, ptlen = 0;

	adlen = successor_ad(old_hash, ad);
	if (old->successor_sealed == NULL ||
	    eb_seal_ring_open(env->seal_ring, EB_SEAL_AT_REST, ad, adlen,
	                      old->successor_sealed, old->successor_sealed_len,
	                      &pt, &ptlen, NULL) != 0) {
		log_warnx("tenant %s: grant %s: the sealed refresh successor "
		          "does not open under any seal key (seal_keys "
		          "changed?)",
		          t->id, old->grant_id);
		return NULL;
	}
	if (strlen((char *)pt) != ptlen) {
		eb_free_secret(pt, ptlen + 1);
		return NULL;
	}
	return (char *)pt;
}

/* What one refresh needs, made before the rotation's transaction. */
struct refresh_step {
	char hash[EB_STORE_HASH_HEXLEN + 1], nhash[EB_STORE_HASH_HEXLEN + 1];
	struct eb_store_token cur, next, old_row;
	struct eb_store_grant g;
	struct eb_access_claims claims;
	struct eb_token_minted at; /* stored by the rotation */
	char *refresh, *same;
	uint8_t *sealed;
	size_t sealed_len;
};

static void
refresh_step_finish(struct refresh_step *r)
{
	eb_free_secret_str(r->refresh);
	eb_free_secret_str(r->same);
	eb_free_secret(r->sealed, r->sealed_len);
	eb_token_minted_finish(&r->at);
	eb_store_token_finish(&r->old_row);
	eb_store_token_finish(&r->cur);
	eb_store_grant_finish(&r->g);
}

/*
 * The presented token and its grant, in one lookup: 0 when it may be
 * rotated, else the answer already set (-1).
 */
static int
refresh_lookup(struct eb_request *req, const struct eb_tenant *t,
               const char *client_id, struct refresh_step *r, int64_t now,
               int *rc)
{
	struct eb_env *env = eb_req_env(req);
	int src;

	src = eb_store_token_grant_get(env->store, r->hash, &r->cur, &r->g);
	if (src == EB_STORE_ERROR) {
		*rc = store_error(req);
		return -1;
	}
	if (src != EB_STORE_OK || r->cur.kind != EB_STORE_TOKEN_REFRESH ||
	    strcmp(r->cur.tenant, t->id) != 0 ||
	    (r->cur.client_id != NULL && client_id != NULL &&
	     strcmp(r->cur.client_id, client_id) != 0)) {
		*rc = oauth_error(req, 400, "invalid_grant",
		                  "refresh token invalid");
		return -1;
	}
	if (r->g.id == NULL || !grant_usable(&r->g, t->id, now)) {
		log_info("tenant %s: refresh refused: grant no longer valid",
		         t->id);
		*rc = oauth_error(req, 400, "invalid_grant", "sign in again");
		return -1;
	}
	return 0;
}

/*
 * The successor and its value sealed for a retry's sake, and the access
 * token (signed here, stored by the rotation in its transaction): 0 or -1.
 */
static int
refresh_prepare(struct eb_request *req, const struct eb_tenant *t,
                struct refresh_step *r, int64_t now)
{
	struct eb_env *env = eb_req_env(req);
	char ad[SUCCESSOR_AD_MAX];
	size_t adlen;

	adlen = successor_ad(r->hash, ad);
	if (new_refresh(t, &r->g, now, &r->refresh, r->nhash, &r->next) == -1 ||
	    eb_seal_ring_seal(env->seal_ring, EB_SEAL_AT_REST, ad, adlen,
	                      r->refresh, strlen(r->refresh), &r->sealed,
	                      &r->sealed_len) != 0)
		return -1;
	access_claims(t, &r->g, NULL, now, &r->claims);
	return eb_token_mint(env->signer, eb_req_config(req), t, &r->claims,
	                     EB_STORE_TOKEN_ACCESS, &r->at);
}

static int
refresh_grant(struct eb_request *req, const struct eb_tenant *t,
              const struct eb_form *f, int64_t now)
{
	struct eb_env *env = eb_req_env(req);
	const char *old = eb_form_get(f, "refresh_token");
	struct refresh_step r;
	int64_t expires_in;
	int rc;

	if (old == NULL)
		return oauth_error(req, 400, "invalid_request",
		                   "refresh_token is required");
	memset(&r, 0, sizeof(r));
	if (eb_store_hash_token(old, strlen(old), r.hash) != 0)
		return store_error(req);
	if (refresh_lookup(req, t, eb_form_get(f, "client_id"), &r, now, &rc) ==
	    -1)
		goto out;
	if (refresh_prepare(req, t, &r, now) == -1) {
		rc = store_error(req);
		goto out;
	}
	expires_in = r.claims.exp - now;
	rc = eb_store_token_rotate_refresh(env->store, r.hash, &r.next,
	                                   r.sealed, r.sealed_len, &r.at.row,
	                                   now, REFRESH_GRACE, &r.old_row);
	switch (rc) {
	case EB_STORE_OK:
		rc =
		    answer_tokens(req, r.at.token, expires_in, r.refresh, NULL);
		break;
	case EB_STORE_RETRY:
		/* a lost response: the same successor, a new access token */
		log_info("tenant %s: grant %s: refresh retried within the "
		         "grace window: same refresh token returned",
		         t->id, r.g.id);
		if ((r.same = successor_open(env, t, r.hash, &r.old_row)) ==
		    NULL)
			rc = oauth_error(req, 400, "invalid_grant",
			                 "sign in again");
		else
			rc = answer_tokens(req, r.at.token, expires_in, r.same,
			                   NULL);
		break;
	case EB_STORE_REUSE:
		log_ev(EB_LOG_WARN,
		       EB_EV("grant.revoked", "refresh_reused", r.g.id),
		       "rotated refresh token reused (outside the grace "
		       "window, or its successor already used): grant "
		       "revoked");
		rc = oauth_error(req, 400, "invalid_grant",
		                 "refresh token reused; sign in again");
		break;
	case EB_STORE_ERROR:
		rc = store_error(req);
		break;
	default:
		rc = oauth_error(req, 400, "invalid_grant", "sign in again");
	}
out:
	refresh_step_finish(&r);
	return rc;
}

int
eb_handle_oauth2_token(struct eb_request *req)
{
	const struct eb_tenant *t = eb_req_tenant(req);
	const char *body, *gt, *client_id;
	struct eb_form f;
	char err[128];
	size_t len;
	int64_t now = eb_now(eb_req_env(req));
	int rc;

	if (t->auth_method != EB_AUTH_OAUTH2)
		return oauth_error(req, 400, "unauthorized_client",
		                   "this tenant does not use apple-oauth2");
	body = eb_req_body(req, &len);
	if (eb_form_parse(body, len, &f, err, sizeof(err)) == -1)
		return oauth_error(req, 400, "invalid_request", err);
	gt = eb_form_get(&f, "grant_type");
	client_id = eb_form_get(&f, "client_id");
	if (client_id == NULL ||
	    !eb_str_ct_eq(client_id, strlen(client_id), t->oauth2.client_id,
	                  strlen(t->oauth2.client_id)))
		rc = oauth_error(req, 401, "invalid_client", "unknown client");
	else if (gt == NULL)
		rc = oauth_error(req, 400, "invalid_request",
		                 "grant_type is required");
	else if (strcmp(gt, "authorization_code") == 0)
		rc = code_grant(req, t, &f, now);
	else if (strcmp(gt, "refresh_token") == 0)
		rc = refresh_grant(req, t, &f, now);
	else
		rc = oauth_error(req, 400, "unsupported_grant_type",
		                 "use authorization_code or refresh_token");
	eb_form_finish(&f);
	return rc;
}
