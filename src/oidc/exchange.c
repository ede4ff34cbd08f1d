/*
 * Talking to the token and userinfo endpoints: the authorization-code
 * exchange that completes a sign-in (RFC 9207 iss check, code + PKCE
 * verifier, client authentication, strict ID-token validation, userinfo,
 * provider rules, group resolution) and the refresh-token grant that the
 * silent renewal uses. Token calls never follow redirects; responses are
 * size-capped and parsed with depth limits; IdP "error" answers map to
 * stable codes (invalid_grant is E_DENIED, 5xx/timeouts E_UNAVAILABLE).
 * Request bodies and headers carrying codes, verifiers, secrets or tokens
 * are wiped after use and never logged.
 */
#include "oidc/oidc_int.h"

#include "core/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "identity/policy.h"
#include "identity/route.h"
#include "providers/provider.h"

#define MAX_EXPIRES_IN   (10 * 365 * 86400)
#define MAX_SECRET_HDR   8192
#define MAX_FORM_BYTES   (64 * 1024)
#define MAX_DESCRIPTION  120
#define EB_OIDC_MAX_CODE 4096

void
eb_oidc_tokens_finish(struct eb_oidc_tokens *tk)
{
	if (tk == NULL)
		return;
	eb_free_secret_str(tk->access_token);
	eb_free_secret_str(tk->refresh_token);
	eb_free_secret_str(tk->id_token);
	eb_free(tk->sub);
	memset(tk, 0, sizeof(*tk));
}

/* Copy an IdP-supplied text for the log: printable ASCII, bounded. */
static void
safe_text(const char *in, char *out, size_t outlen)
{
	size_t i = 0;

	for (; in != NULL && *in != '\0' && i + 1 < outlen; in++)
		out[i++] =
		    (*in >= 0x20 && *in < 0x7f && *in != '"') ? *in : '?';
	out[i] = '\0';
}

/* An OAuth 2 "error" value to a kind and stable code. */
static int
map_oauth_error(const char *error, const char *desc, long status,
                struct eb_oidc_error *err)
{
	static const struct {
		const char *name;
		enum eb_oidc_errkind kind;
	} map[] = {
	    {"invalid_grant", EB_OIDC_E_DENIED},
	    {"access_denied", EB_OIDC_E_DENIED},
	    {"interaction_required", EB_OIDC_E_DENIED},
	    {"login_required", EB_OIDC_E_DENIED},
	    {"consent_required", EB_OIDC_E_DENIED},
	    {"invalid_client", EB_OIDC_E_PROTOCOL},
	    {"unauthorized_client", EB_OIDC_E_PROTOCOL},
	    {"invalid_request", EB_OIDC_E_PROTOCOL},
	    {"unsupported_grant_type", EB_OIDC_E_PROTOCOL},
	    {"invalid_scope", EB_OIDC_E_PROTOCOL},
	    {"temporarily_unavailable", EB_OIDC_E_UNAVAILABLE},
	    {"server_error", EB_OIDC_E_UNAVAILABLE},
	};
	char d[MAX_DESCRIPTION + 1], e[65];
	size_t i;

	safe_text(desc, d, sizeof(d));
	safe_text(error, e, sizeof(e));
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(error, map[i].name) == 0)
			return eb_oidc_seterr(err, map[i].kind, map[i].name,
			                      "token endpoint: HTTP %ld %s: %s",
			                      status, e, d);
	return eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL, "idp_error",
	                      "token endpoint: HTTP %ld error %s: %s", status,
	                      e, d);
}

/* "Authorization: Basic base64(urlenc(id):urlenc(secret))" (RFC 6749
 * section 2.3.1), into a secret string. */
static char *
basic_header(const char *id, const char *secret)
{
	struct eb_buf cred, hdr;
	unsigned char *enc = NULL;
	size_t enclen;
	char *s = NULL;

	eb_buf_init(&cred, MAX_SECRET_HDR);
	eb_buf_init(&hdr, MAX_SECRET_HDR * 2);
	if (eb_http_urlencode(&cred, id) || eb_buf_addc(&cred, ':') ||
	    eb_http_urlencode(&cred, secret))
		goto out;
	enclen = 4 * ((cred.len + 2) / 3) + 1;
	if ((enc = eb_malloc(enclen)) == NULL)
		goto out;
	EVP_EncodeBlock(enc, (const unsigned char *)cred.data, (int)cred.len);
	if (eb_buf_addstr(&hdr, "Authorization: Basic ") ||
	    eb_buf_addstr(&hdr, (const char *)enc))
		goto out;
	s = eb_buf_detach(&hdr, NULL);
out:
	if (enc != NULL)
		eb_free_secret(enc, enclen);
	eb_buf_finish_secret(&cred);
	eb_buf_finish_secret(&hdr);
	return s;
}

static int
parse_expires_in(json_t *v, int64_t now, int64_t *out)
{
	long long n;
	char *end;

	if (json_is_integer(v))
		n = json_integer_value(v);
	else if (json_is_string(v)) {
		/* some IdPs send it as a string */
		n = strtoll(json_string_value(v), &end, 10);
		if (*end != '\0' || end == json_string_value(v))
			return -1;
	} else
		return -1;
	if (n <= 0 || n > MAX_EXPIRES_IN)
		return -1;
	*out = now + n;
	return 0;
}

/* A string member copied as a secret, NULL when absent; -1 when wrong. */
static int
take_str(json_t *doc, const char *name, char **out)
{
	json_t *v = json_object_get(doc, name);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0)
		return -1;
	return (*out = eb_strdup(json_string_value(v))) == NULL ? -1 : 0;
}

static int
parse_token_response(const struct eb_http_response *r, int64_t now,
                     struct eb_oidc_tokens *out, struct eb_oidc_error *err)
{
	json_t *doc, *v;
	const char *tt;
	int rc = -1;

	if ((doc = eb_jose_json_parse_object(r->body, r->body_len,
	                                     EB_OIDC_JSON_DEPTH)) == NULL)
		return eb_oidc_seterr(
		    err, EB_OIDC_E_PROTOCOL, "malformed_json",
		    "token response is not a JSON object within limits");
	tt = json_string_value(json_object_get(doc, "token_type"));
	if (tt == NULL || !eb_str_ieq(tt, "Bearer")) {
		eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL, "bad_token_type",
		               "token_type is not Bearer");
		goto out;
	}
	if (take_str(doc, "access_token", &out->access_token) ||
	    out->access_token == NULL) {
		eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL, "access_token_missing",
		               "token response without a usable access_token");
		goto out;
	}
	if (take_str(doc, "refresh_token", &out->refresh_token) ||
	    take_str(doc, "id_token", &out->id_token)) {
		eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL, "malformed_json",
		               "refresh_token or id_token is not a string");
		goto out;
	}
	v = json_object_get(doc, "expires_in");
	if (v != NULL && parse_expires_in(v, now, &out->expires_at)) {
		eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL, "malformed_json",
		               "expires_in is not a sane number of seconds");
		goto out;
	}
	rc = 0;
out:
	json_decref(doc);
	return rc;
}

int
eb_oidc_token_request(struct eb_oidc *o, const struct eb_tenant *t,
                      const struct eb_oidc_meta *m, const char *const *kv,
                      struct eb_oidc_tokens *out, struct eb_oidc_error *err)
{
	const char *hdrs[4] = {
	    "Content-Type: application/x-www-form-urlencoded",
	    "Accept: application/json", NULL, NULL};
	struct eb_http_options ho;
	struct eb_http_response *r = NULL;
	const char *secret = t->idp.client_secret, *error;
	char *auth = NULL;
	struct eb_buf body;
	json_t *doc;
	size_t i;
	int rc = -1, ok = 0;

	memset(out, 0, sizeof(*out));
	eb_buf_init(&body, MAX_FORM_BYTES);
	for (i = 0; kv[i] != NULL; i += 2)
		if (eb_http_form_add(&body, kv[i], kv[i + 1]))
			goto out_nomem;
	if (secret != NULL && t->idp.client_auth == EB_CLIENT_AUTH_BASIC) {
		if ((auth = basic_header(t->idp.client_id, secret)) == NULL)
			goto out_nomem;
		hdrs[2] = auth;
	} else if (eb_http_form_add(&body, "client_id", t->idp.client_id) ||
	           (secret != NULL &&
	            eb_http_form_add(&body, "client_secret", secret)))
		goto out_nomem;

	eb_http_options_init(&ho, "POST", m->token_endpoint);
	ho.headers = hdrs;
	ho.body = body.data;
	ho.body_len = body.len;
	if ((r = eb_oidc_fetch(o, &ho, t->id, m->issuer, EB_OIDC_EP_TOKEN,
	                       "token_too_large", err)) == NULL)
		goto out;
	if (r->status == 200)
		ok = parse_token_response(r, eb_clock_now(o->opts.clock), out,
		                          err) == 0;
	else if (r->status >= 300 && r->status < 400)
		eb_oidc_seterr(
		    err, EB_OIDC_E_PROTOCOL, "unexpected_redirect",
		    "token endpoint answered HTTP %ld (not followed)",
		    r->status);
	else if (r->status >= 500 || r->status == 429)
		eb_oidc_seterr(err, EB_OIDC_E_UNAVAILABLE, "idp_server_error",
		               "token endpoint: HTTP %ld", r->status);
	else if ((doc = eb_jose_json_parse_object(
	              r->body, r->body_len, EB_OIDC_JSON_DEPTH)) != NULL) {
		error = json_string_value(json_object_get(doc, "error"));
		if (error != NULL)
			map_oauth_error(error,
			                json_string_value(json_object_get(
			                    doc, "error_description")),
			                r->status, err);
		else
			eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL,
			               "idp_bad_status",
			               "token endpoint: HTTP %ld", r->status);
		json_decref(doc);
	} else
		eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL, "idp_bad_status",
		               "token endpoint: HTTP %ld without JSON error",
		               r->status);
	eb_oidc_metric_request(o, t->id, EB_OIDC_EP_TOKEN, ok, m->issuer,
	                       r->status >= 500 ? 0 : 1);
	rc = ok ? 0 : -1;
	goto out;
out_nomem:
	eb_oidc_seterr(err, EB_OIDC_E_INTERNAL, "nomem",
	               "out of memory building the token request");
out:
	if (rc != 0)
		eb_oidc_tokens_finish(out);
	if (r != NULL) {
		OPENSSL_cleanse(r->body, r->body_len);
		eb_http_response_free(r);
	}
	eb_free_secret_str(auth);
	eb_buf_finish_secret(&body);
	return rc;
}

/* Read userinfo with the access token and merge it into claims (the ID
 * token's values win); its sub must be want_sub (NULL: claims' own sub, or
 * any when claims has none). */
static int
userinfo(struct eb_oidc *o, const struct eb_tenant *t,
         const struct eb_oidc_meta *m, const char *access_token, json_t *claims,
         const char *want_sub, struct eb_oidc_error *err)
{
	const char *hdrs[3] = {"Accept: application/json", NULL, NULL};
	struct eb_http_options ho;
	struct eb_http_response *r;
	const char *sub, *ct, *k;
	struct eb_buf auth;
	json_t *doc = NULL, *v;
	int rc = -1;

	if (want_sub == NULL)
		want_sub = json_string_value(json_object_get(claims, "sub"));

	if (m->userinfo_endpoint == NULL)
		return eb_oidc_seterr(
		    err, EB_OIDC_E_PROTOCOL, "userinfo_unavailable",
		    "userinfo is needed (use_userinfo, or a refresh without "
		    "an ID token) but the IdP has no userinfo endpoint");
	eb_buf_init(&auth, MAX_FORM_BYTES);
	if (eb_buf_addstr(&auth, "Authorization: Bearer ") ||
	    eb_buf_addstr(&auth, access_token)) {
		eb_buf_finish_secret(&auth);
		return eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL,
		                      "token_too_large",
		                      "access token too large");
	}
	hdrs[1] = auth.data;
	eb_http_options_init(&ho, "GET", m->userinfo_endpoint);
	ho.headers = hdrs;
	r = eb_oidc_fetch(o, &ho, t->id, m->issuer, EB_OIDC_EP_USERINFO,
	                  "userinfo_too_large", err);
	eb_buf_finish_secret(&auth);
	if (r == NULL)
		return -1;
	ct = eb_http_response_header(r, "Content-Type");
	if (r->status >= 500 || r->status == 429)
		eb_oidc_seterr(err, EB_OIDC_E_UNAVAILABLE, "idp_server_error",
		               "userinfo: HTTP %ld", r->status);
	else if (r->status != 200)
		eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL, "idp_bad_status",
		               "userinfo: HTTP %ld", r->status);
	else if (ct != NULL && strncasecmp(ct, "application/jwt", 15) == 0)
		eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL,
		               "userinfo_jwt_unsupported",
		               "signed userinfo responses are not supported");
	else if ((doc = eb_jose_json_parse_object(r->body, r->body_len,
	                                          EB_OIDC_JSON_DEPTH)) == NULL)
		eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL, "malformed_json",
		               "userinfo is not a JSON object within limits");
	else if ((sub = json_string_value(json_object_get(doc, "sub"))) ==
	             NULL ||
	         (want_sub != NULL && strcmp(sub, want_sub) != 0))
		eb_oidc_seterr(err, EB_OIDC_E_TOKEN, "userinfo_sub_mismatch",
		               "userinfo sub differs from the ID token's");
	else {
		rc = 0;
		json_object_foreach(doc, k, v)
		{
			if (json_object_get(claims, k) == NULL &&
			    json_object_set(claims, k, v) != 0) {
				rc = eb_oidc_seterr(
				    err, EB_OIDC_E_INTERNAL, "nomem",
				    "out of memory merging userinfo");
				break;
			}
		}
	}
	eb_oidc_metric_request(o, t->id, EB_OIDC_EP_USERINFO, rc == 0,
	                       m->issuer, r->status >= 500 ? 0 : 1);
	json_decref(doc);
	eb_http_response_free(r);
	return rc;
}

/* RFC 9207: the iss authorization-response parameter. */
static int
check_iss_param(const struct eb_oidc_meta *m, const char *iss_param,
                struct eb_oidc_error *err)
{
	if (iss_param == NULL) {
		if (m->iss_parameter_supported)
			return eb_oidc_seterr(
			    err, EB_OIDC_E_PROTOCOL, "iss_param_missing",
			    "the IdP sends iss in authorization responses "
			    "but this one had none");
		return 0;
	}
	if (strlen(iss_param) > EB_OIDC_MAX_URL ||
	    !eb_oidc_issuer_matches(m->issuer, iss_param))
		return eb_oidc_seterr(
		    err, EB_OIDC_E_PROTOCOL, "iss_param_mismatch",
		    "authorization response iss is another issuer (mix-up)");
	return 0;
}

/* Provider rules and groups on a filled identity. */
static int
apply_provider(struct eb_oidc *o, const struct eb_tenant *t,
               const struct eb_provider_ops *prov, struct eb_identity *id,
               const char *access_token, struct eb_oidc_error *err)
{
	char why[256] = "";
	int v, need;

	if (prov->check_identity != NULL &&
	    (v = prov->check_identity(t, id, why, sizeof(why))) !=
	        EB_PROVIDER_OK)
		return eb_oidc_seterr(
		    err,
		    v == EB_PROVIDER_DENY ? EB_OIDC_E_POLICY
		                          : EB_OIDC_E_PROTOCOL,
		    v == EB_PROVIDER_DENY ? "policy_denied" : "provider_failed",
		    "%s", why[0] ? why : "refused by the provider");
	need = t->access.require_groups.n > 0;
	if (id->groups_known || (!need && !eb_route_needs_groups(t)))
		return 0;
	/* only routes match on groups: a token without any is a person in
	 * none, unless it says they were too many to carry (an overage):
	 * then they are resolved, and a failure refuses the sign-in rather
	 * than send the person to the wrong MDM */
	if (!need &&
	    (prov->resolve_groups == NULL || !eb_policy_groups_overage(id)))
		return 0;
	if (prov->resolve_groups == NULL)
		return eb_oidc_seterr(
		    err, EB_OIDC_E_POLICY, "groups_unknown",
		    "groups are required but the IdP did not send them");
	why[0] = '\0';
	v = prov->resolve_groups(t, id, access_token, o->opts.timeout,
	                         o->opts.max_bytes, why, sizeof(why));
	if (v == EB_PROVIDER_DENY)
		return eb_oidc_seterr(
		    err, EB_OIDC_E_POLICY, "groups_unknown", "%s",
		    why[0] ? why : "groups could not be resolved");
	if (v != EB_PROVIDER_OK || !id->groups_known)
		return eb_oidc_seterr(err, EB_OIDC_E_UNAVAILABLE,
		                      "groups_unavailable", "%s",
		                      why[0] ? why : "group lookup failed");
	return 0;
}

int
eb_oidc_finish(struct eb_oidc *o, const struct eb_tenant *t,
               const char *redirect_uri, const char *code, const char *verifier,
               const char *nonce, const char *iss_param, struct eb_identity *id,
               struct eb_oidc_tokens *tokens, struct eb_oidc_error *err)
{
	const struct eb_provider_ops *prov;
	const struct eb_oidc_meta *m = NULL;
	struct eb_oidc_error lerr = {0};
	struct eb_oidc_tokens tk = {0};
	struct eb_identity ident;
	json_t *claims = NULL;
	const char *kv[11];
	int rc = -1, logged = 0;

	if (err == NULL)
		err = &lerr;
	eb_identity_init(&ident);
	if (code == NULL || verifier == NULL || nonce == NULL ||
	    redirect_uri == NULL) {
		eb_oidc_seterr(
		    err, EB_OIDC_E_PROTOCOL, "code_missing",
		    "callback without code, or login flow without secrets");
		goto out;
	}
	if (strlen(code) > EB_OIDC_MAX_CODE) {
		eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL, "code_too_large",
		               "authorization code over %d bytes",
		               EB_OIDC_MAX_CODE);
		goto out;
	}
	if ((prov = eb_provider_find(t->idp.type)) == NULL) {
		eb_oidc_seterr(err, EB_OIDC_E_INTERNAL, "no_provider",
		               "no provider for idp type");
		goto out;
	}
	if (eb_oidc_metadata_for(o, t, &m, err)) {
		logged = 1;
		goto out;
	}
	if (check_iss_param(m, iss_param, err))
		goto out;
	kv[0] = "grant_type", kv[1] = "authorization_code";
	kv[2] = "code", kv[3] = code;
	kv[4] = "redirect_uri", kv[5] = redirect_uri;
	kv[6] = "code_verifier", kv[7] = verifier;
	kv[8] = NULL;
	if (eb_oidc_token_request(o, t, m, kv, &tk, err))
		goto out;
	if (tk.id_token == NULL) {
		eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL, "id_token_missing",
		               "token response without an id_token");
		goto out;
	}
	if (eb_oidc_validate_id_token(o, t, m, tk.id_token, nonce, 0, &claims,
	                              err)) {
		logged = 2; /* logged and counted there */
		goto out;
	}
	if (t->idp.use_userinfo &&
	    userinfo(o, t, m, tk.access_token, claims, NULL, err))
		goto out;
	if (eb_identity_from_claims(
	        &ident, json_string_value(json_object_get(claims, "iss")),
	        claims)) {
		eb_oidc_seterr(err, EB_OIDC_E_TOKEN, "sub_missing",
		               "claims without a subject");
		goto out;
	}
	if (apply_provider(o, t, prov, &ident, tk.access_token, err)) {
		/* a validated person refused by a rule: the caller audits who
		 */
		if (err->kind == EB_OIDC_E_POLICY && id != NULL) {
			*id = ident;
			eb_identity_init(&ident);
		}
		goto out;
	}
	if ((tk.sub = eb_strdup(
	         json_string_value(json_object_get(claims, "sub")))) == NULL) {
		eb_oidc_seterr(err, EB_OIDC_E_INTERNAL, "nomem", "no memory");
		goto out;
	}
	rc = 0;
	if (id != NULL) {
		*id = ident;
		eb_identity_init(&ident);
	}
	if (tokens != NULL) {
		*tokens = tk;
		memset(&tk, 0, sizeof(tk));
	}
out:
	if (rc != 0 && logged != 2)
		eb_oidc_metric_error(o, t->id, err);
	if (rc != 0 && !logged)
		log_warnx("tenant %s: sign-in failed: %s %s (%s)", t->id,
		          eb_oidc_errkind_name(err->kind), err->code,
		          err->reason);
	json_decref(claims);
	eb_identity_finish(&ident);
	eb_oidc_tokens_finish(&tk);
	if (m != NULL)
		eb_oidc_meta_release(o, m);
	return rc;
}

int
eb_oidc_refresh_claims(struct eb_oidc *o, const struct eb_tenant *t,
                       const char *refresh_token, const char *expected_sub,
                       struct eb_oidc_tokens *out, json_t **claims_out,
                       struct eb_oidc_error *err)
{
	const struct eb_oidc_meta *m = NULL;
	struct eb_oidc_error lerr = {0};
	struct eb_oidc_tokens tk = {0};
	json_t *claims = NULL;
	const char *kv[5], *sub;
	int rc = -1, logged = 0;

	if (err == NULL)
		err = &lerr;
	memset(out, 0, sizeof(*out));
	if (claims_out != NULL)
		*claims_out = NULL;
	if (refresh_token == NULL || refresh_token[0] == '\0') {
		eb_oidc_seterr(err, EB_OIDC_E_DENIED, "no_refresh_token",
		               "no upstream refresh token to renew with");
		goto out;
	}
	if (eb_oidc_metadata_for(o, t, &m, err)) {
		logged = 1;
		goto out;
	}
	kv[0] = "grant_type", kv[1] = "refresh_token";
	kv[2] = "refresh_token", kv[3] = refresh_token;
	kv[4] = NULL;
	if (eb_oidc_token_request(o, t, m, kv, &tk, err))
		goto out;
	if (tk.id_token != NULL) {
		if (eb_oidc_validate_id_token(o, t, m, tk.id_token, NULL, 0,
		                              &claims, err)) {
			logged = 2;
			goto out;
		}
		sub = json_string_value(json_object_get(claims, "sub"));
		if (expected_sub != NULL && strcmp(sub, expected_sub) != 0) {
			eb_oidc_seterr(
			    err, EB_OIDC_E_TOKEN, "sub_mismatch",
			    "refreshed ID token is for another subject");
			goto out;
		}
		if ((tk.sub = eb_strdup(sub)) == NULL) {
			eb_oidc_seterr(err, EB_OIDC_E_INTERNAL, "nomem",
			               "no memory");
			goto out;
		}
	}
	*out = tk;
	memset(&tk, 0, sizeof(tk));
	if (claims_out != NULL) {
		*claims_out = claims;
		claims = NULL;
	}
	rc = 0;
out:
	if (rc != 0 && logged != 2)
		eb_oidc_metric_error(o, t->id, err);
	if (rc != 0 && !logged)
		log_warnx("tenant %s: upstream refresh failed: %s %s (%s)",
		          t->id, eb_oidc_errkind_name(err->kind), err->code,
		          err->reason);
	json_decref(claims);
	eb_oidc_tokens_finish(&tk);
	if (m != NULL)
		eb_oidc_meta_release(o, m);
	return rc;
}

int
eb_oidc_refresh_subject(struct eb_oidc *o, const struct eb_tenant *t,
                        const char *refresh_token, const char *expected_sub,
                        struct eb_oidc_tokens *out, struct eb_oidc_error *err)
{
	return eb_oidc_refresh_claims(o, t, refresh_token, expected_sub, out,
	                              NULL, err);
}

/* The fresh claims: claims (may be NULL) with userinfo merged in when the
 * tenant asks for it or there is no ID token. A new reference or NULL. */
static json_t *
fresh_claims(struct eb_oidc *o, const struct eb_tenant *t,
             const struct eb_oidc_meta *m, const char *access_token,
             json_t *claims, const char *expected_sub,
             struct eb_oidc_error *err)
{
	json_t *c;

	if (claims != NULL && !t->idp.use_userinfo)
		return json_incref(claims);
	if (access_token == NULL) {
		eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL, "access_token_missing",
		               "no access token to read userinfo with");
		return NULL;
	}
	c = claims != NULL ? json_deep_copy(claims) : json_object();
	if (c == NULL) {
		eb_oidc_seterr(err, EB_OIDC_E_INTERNAL, "nomem", "no memory");
		return NULL;
	}
	if (userinfo(o, t, m, access_token, c,
	             claims != NULL ? NULL : expected_sub, err) != 0) {
		json_decref(c);
		return NULL;
	}
	return c;
}

int
eb_oidc_identity(struct eb_oidc *o, const struct eb_tenant *t,
                 const char *issuer, const char *access_token, json_t *claims,
                 const char *expected_sub, struct eb_identity *id,
                 struct eb_oidc_error *err)
{
	const struct eb_provider_ops *prov;
	const struct eb_oidc_meta *m = NULL;
	struct eb_oidc_error lerr = {0};
	struct eb_identity ident;
	const char *iss;
	json_t *c = NULL;
	int rc = -1, logged = 0;

	if (err == NULL)
		err = &lerr;
	eb_identity_init(&ident);
	if ((prov = eb_provider_find(t->idp.type)) == NULL) {
		eb_oidc_seterr(err, EB_OIDC_E_INTERNAL, "no_provider",
		               "no provider for idp type");
		goto out;
	}
	if (eb_oidc_metadata_for(o, t, &m, err)) {
		logged = 1;
		goto out;
	}
	if ((c = fresh_claims(o, t, m, access_token, claims, expected_sub,
	                      err)) == NULL)
		goto out;
	iss = json_string_value(json_object_get(c, "iss"));
	if (eb_identity_from_claims(&ident, iss ? iss : issuer, c)) {
		eb_oidc_seterr(err, EB_OIDC_E_TOKEN, "sub_missing",
		               "claims without a subject");
		goto out;
	}
	if (apply_provider(o, t, prov, &ident, access_token, err)) {
		if (err->kind == EB_OIDC_E_POLICY) {
			/* the caller records who was refused */
			*id = ident;
			eb_identity_init(&ident);
		}
		goto out;
	}
	*id = ident;
	eb_identity_init(&ident);
	rc = 0;
out:
	if (rc != 0)
		eb_oidc_metric_error(o, t->id, err);
	if (rc != 0 && !logged)
		log_warnx("tenant %s: re-check of a person failed: %s %s (%s)",
		          t->id, eb_oidc_errkind_name(err->kind), err->code,
		          err->reason);
	json_decref(c);
	eb_identity_finish(&ident);
	if (m != NULL)
		eb_oidc_meta_release(o, m);
	return rc;
}

int
eb_oidc_refresh(struct eb_oidc *o, const struct eb_tenant *t,
                const char *refresh_token, struct eb_oidc_tokens *out,
                struct eb_oidc_error *err)
{
	return eb_oidc_refresh_subject(o, t, refresh_token, NULL, out, err);
}
