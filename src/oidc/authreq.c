/*
 * The authorization request: fresh state, nonce and PKCE verifier (each 256
 * bits from the CSPRNG), the S256 challenge, and the URL that sends the
 * browser to the IdP's authorization endpoint with the code flow
 * parameters, the login hint, the tenant's extra parameters and the
 * provider's own. The secrets go back to the caller, which keeps them
 * for the callback (sealed into the state itself, when it chooses the
 * state: eb_oidc_begin_state); nothing here logs them.
 */
#include "oidc/oidc_int.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rand.h"
#include "jose/b64.h"
#include "providers/provider.h"

#define RANDOM_BYTES 32 /* 43 base64url characters */

/* Parameters the core owns: configuration may not override them. */
static const char *const reserved[] = {
    "response_type", "client_id", "redirect_uri",   "scope",
    "state",         "nonce",     "code_challenge", "code_challenge_method",
    "response_mode", "request",   "request_uri",    NULL};

int
eb_oidc_pkce_challenge(const char *verifier, char out[44])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t len;

	if (verifier == NULL)
		return -1;
	/* RFC 7636 section 4.1: 43 to 128 characters */
	len = strlen(verifier);
	if (len < 43 || len > 128)
		return -1;
	if (EVP_Digest(verifier, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32)
		return -1;
	eb_b64_url_encode_to(md, mdlen, out);
	OPENSSL_cleanse(md, sizeof(md));
	return 0;
}

void
eb_oidc_request_finish(struct eb_oidc_request *r)
{
	if (r == NULL)
		return;
	eb_free_secret_str(r->state);
	eb_free_secret_str(r->nonce);
	eb_free_secret_str(r->verifier);
	eb_free_secret_str(r->url);
	memset(r, 0, sizeof(*r));
}

static int
is_reserved(const char *name)
{
	size_t i;

	for (i = 0; reserved[i] != NULL; i++)
		if (strcmp(name, reserved[i]) == 0)
			return 1;
	return 0;
}

/* The scope parameter: the tenant's scopes, "openid" first if missing. */
static int
add_scope(struct eb_buf *q, const struct eb_tenant *t)
{
	struct eb_buf s;
	size_t i;
	int has_openid = 0, rc;

	eb_buf_init(&s, 2048);
	for (i = 0; i < t->idp.scopes.n; i++)
		if (strcmp(t->idp.scopes.v[i], "openid") == 0)
			has_openid = 1;
	rc = has_openid ? 0 : eb_buf_addstr(&s, "openid");
	for (i = 0; rc == 0 && i < t->idp.scopes.n; i++) {
		if (s.len > 0)
			rc = eb_buf_addc(&s, ' ');
		if (rc == 0)
			rc = eb_buf_addstr(&s, t->idp.scopes.v[i]);
	}
	if (rc == 0)
		rc = eb_http_form_add(q, "scope", eb_buf_str(&s));
	eb_buf_finish(&s);
	return rc;
}

int
eb_oidc_begin(struct eb_oidc *o, const struct eb_tenant *t,
              const struct eb_oidc_meta *m, const char *redirect_uri,
              const char *login_hint, struct eb_oidc_request *out)
{
	return eb_oidc_begin_state(o, t, m, redirect_uri, login_hint, NULL,
	                           NULL, out);
}

int
eb_oidc_begin_state(struct eb_oidc *o, const struct eb_tenant *t,
                    const struct eb_oidc_meta *m, const char *redirect_uri,
                    const char *login_hint, eb_oidc_state_fn state_fn,
                    void *arg, struct eb_oidc_request *out)
{
	const struct eb_provider_ops *prov;
	char challenge[44];
	struct eb_buf q;
	size_t i;

	(void)o;
	memset(out, 0, sizeof(*out));
	if (m == NULL || m->authorization_endpoint == NULL ||
	    t->idp.client_id == NULL || redirect_uri == NULL) {
		log_errx("tenant %s: authorization request without endpoint, "
		         "client_id or redirect_uri",
		         t->id);
		return -1;
	}
	if ((prov = eb_provider_find(t->idp.type)) == NULL) {
		log_errx("tenant %s: no provider for type %s", t->id,
		         t->idp.type ? t->idp.type : "(none)");
		return -1;
	}
	for (i = 0; i < t->idp.extra_auth_params.n; i++)
		if (is_reserved(t->idp.extra_auth_params.v[i].key)) {
			log_errx("tenant %s: extra authorization parameter %s "
			         "would override the core's; refused",
			         t->id, t->idp.extra_auth_params.v[i].key);
			return -1;
		}
	out->nonce = eb_rand_token(RANDOM_BYTES);
	out->verifier = eb_rand_token(RANDOM_BYTES);
	if (out->nonce == NULL || out->verifier == NULL ||
	    eb_oidc_pkce_challenge(out->verifier, challenge))
		goto out_fail;
	/* the state last: the caller's may carry the nonce and verifier */
	out->state = state_fn != NULL ? state_fn(arg, out->nonce, out->verifier)
	                              : eb_rand_token(RANDOM_BYTES);
	if (out->state == NULL)
		goto out_fail;

	eb_buf_init(&q, EB_OIDC_MAX_AUTH_URL);
	if (eb_http_form_add(&q, "response_type", "code") ||
	    eb_http_form_add(&q, "client_id", t->idp.client_id) ||
	    eb_http_form_add(&q, "redirect_uri", redirect_uri) ||
	    add_scope(&q, t) || eb_http_form_add(&q, "state", out->state) ||
	    eb_http_form_add(&q, "nonce", out->nonce) ||
	    eb_http_form_add(&q, "code_challenge", challenge) ||
	    eb_http_form_add(&q, "code_challenge_method", "S256") ||
	    (login_hint != NULL && login_hint[0] != '\0' &&
	     eb_http_form_add(&q, "login_hint", login_hint)))
		goto out_fail_buf;
	/* The provider adds its hints and the tenant's extra parameters;
	 * without a hook, the extra parameters alone. */
	if (prov->auth_params != NULL) {
		if (prov->auth_params(t, &q) != 0)
			goto out_fail_buf;
	} else
		for (i = 0; i < t->idp.extra_auth_params.n; i++)
			if (eb_http_form_add(
			        &q, t->idp.extra_auth_params.v[i].key,
			        t->idp.extra_auth_params.v[i].value))
				goto out_fail_buf;
	{
		struct eb_buf url;
		const char *ep = m->authorization_endpoint;

		eb_buf_init(&url, EB_OIDC_MAX_AUTH_URL);
		if (eb_buf_addstr(&url, ep) ||
		    eb_buf_addc(&url, strchr(ep, '?') != NULL ? '&' : '?') ||
		    eb_buf_add(&url, q.data, q.len)) {
			eb_buf_finish_secret(&url);
			goto out_fail_buf;
		}
		if ((out->url = eb_buf_detach(&url, NULL)) == NULL)
			goto out_fail_buf;
	}
	eb_buf_finish_secret(&q);
	OPENSSL_cleanse(challenge, sizeof(challenge));
	return 0;
out_fail_buf:
	eb_buf_finish_secret(&q);
	log_errx("tenant %s: authorization URL over %d bytes or out of memory",
	         t->id, EB_OIDC_MAX_AUTH_URL);
out_fail:
	OPENSSL_cleanse(challenge, sizeof(challenge));
	eb_oidc_request_finish(out);
	return -1;
}
