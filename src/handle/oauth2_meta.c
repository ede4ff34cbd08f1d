/*
 * What a downstream MDM needs to verify our tokens on its own:
 *
 *   GET /t/{T}/jwks.json                               our public keys
 *   GET /t/{T}/.well-known/oauth-authorization-server  RFC 8414 metadata
 *
 * The JWKS lists the key signing now and every retired key still within
 * its publication window (the signer decides; see token/signer.c). All
 * URLs are built from public_url, never from request headers.
 */
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/env.h"
#include "core/log.h"
#include "core/mem.h"
#include "handle/handle.h"
#include "token/token.h"

#define META_MAX 8192

static void
unavailable(struct eb_request *req)
{
	eb_resp_header(req, "Retry-After", "5");
	eb_resp_header(req, "Cache-Control", "no-store");
	eb_resp_text(req, 503, "temporarily unavailable\n");
}

int
eb_handle_jwks(struct eb_request *req)
{
	struct eb_env *env = eb_req_env(req);
	char *body;
	size_t len = 0;

	if (env->signer == NULL ||
	    (body = eb_signer_jwks(env->signer, &len)) == NULL) {
		unavailable(req);
		return EB_HANDLED;
	}
	eb_resp_header(req, "Cache-Control", "public, max-age=300");
	eb_resp_set_owned(req, 200, "application/json", body, len);
	return EB_HANDLED;
}

static json_t *
strings(const char *a, const char *b, const char *c)
{
	json_t *arr = json_array();

	if (arr == NULL)
		return NULL;
	if ((a != NULL && json_array_append_new(arr, json_string(a)) != 0) ||
	    (b != NULL && json_array_append_new(arr, json_string(b)) != 0) ||
	    (c != NULL && json_array_append_new(arr, json_string(c)) != 0)) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

/* Set k to the string prefix + suffix. */
static int
set_url(json_t *o, const char *k, const char *prefix, const char *suffix)
{
	struct eb_buf b;
	int rc;

	eb_buf_init(&b, META_MAX);
	if (eb_buf_printf(&b, "%s%s", prefix, suffix) == -1) {
		eb_buf_finish(&b);
		return -1;
	}
	rc = json_object_set_new(o, k, json_string(eb_buf_str(&b)));
	eb_buf_finish(&b);
	return rc;
}

/* RFC 8414 section 2 for tenant t. */
static json_t *
metadata(const struct eb_config *cfg, const struct eb_tenant *t)
{
	json_t *m;
	struct eb_buf iss;
	const char *i;
	int rc;

	eb_buf_init(&iss, META_MAX);
	if (eb_buf_printf(&iss, "%s/t/%s", cfg->public_url, t->id) == -1 ||
	    (m = json_object()) == NULL) {
		eb_buf_finish(&iss);
		return NULL;
	}
	i = eb_buf_str(&iss);
	rc = json_object_set_new(m, "issuer", json_string(i));
	rc |= set_url(m, "authorization_endpoint", i, "/oauth2/authorize");
	rc |= set_url(m, "token_endpoint", i, "/oauth2/token");
	rc |= set_url(m, "jwks_uri", i, "/jwks.json");
	rc |= set_url(m, "introspection_endpoint", i, "/oauth2/introspect");
	rc |= set_url(m, "revocation_endpoint", i, "/oauth2/revoke");
	rc |= json_object_set_new(m, "response_types_supported",
	                          strings("code", NULL, NULL));
	rc |= json_object_set_new(
	    m, "grant_types_supported",
	    strings("authorization_code", "refresh_token", NULL));
	rc |= json_object_set_new(m, "code_challenge_methods_supported",
	                          strings("S256", NULL, NULL));
	/* the device is a public client */
	rc |= json_object_set_new(m, "token_endpoint_auth_methods_supported",
	                          strings("none", NULL, NULL));
	rc |= json_object_set_new(
	    m, "introspection_endpoint_auth_methods_supported",
	    strings("client_secret_basic", "client_secret_post", NULL));
	rc |= json_object_set_new(
	    m, "revocation_endpoint_auth_methods_supported",
	    strings("none", "client_secret_basic", "client_secret_post"));
	if (t->oauth2.scope != NULL)
		rc |= json_object_set_new(m, "scopes_supported",
		                          strings(t->oauth2.scope, NULL, NULL));
	rc |=
	    json_object_set_new(m, "access_token_signing_alg_values_supported",
	                        strings("ES256", NULL, NULL));
	eb_buf_finish(&iss);
	if (rc != 0) {
		json_decref(m);
		return NULL;
	}
	return m;
}

int
eb_handle_oauth2_metadata(struct eb_request *req)
{
	json_t *m;
	char *body = NULL;
	json_free_t jfree = NULL;

	if ((m = metadata(eb_req_config(req), eb_req_tenant(req))) == NULL ||
	    (body = json_dumps(m, JSON_COMPACT)) == NULL) {
		json_decref(m);
		unavailable(req);
		return EB_HANDLED;
	}
	eb_resp_header(req, "Cache-Control", "public, max-age=300");
	eb_resp_set(req, 200, "application/json", body, strlen(body));
	json_get_alloc_funcs(NULL, &jfree);
	jfree(body);
	json_decref(m);
	return EB_HANDLED;
}
