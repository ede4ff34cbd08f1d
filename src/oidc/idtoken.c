/*
 * Strict ID-token validation (OpenID Connect Core 3.1.3.7). The signature
 * is checked by eb_jose_verify with an allow-list that is the intersection
 * of the algorithms we accept with those the IdP advertises, so "none",
 * HS* and a key of the wrong type are refused before any signature call.
 * An unknown kid refreshes the JWKS once (rate-limited in keys.c) and the
 * token is tried again. Then: iss equal to the provider's expected issuer,
 * aud containing our client_id, azp (required with several audiences, and
 * when present equal to client_id), exp, iat (required, not in the future)
 * and nbf with a small skew, nonce compared in constant time, and sub.
 *
 * Each refusal gets a stable code (eb_oidc_error.code) and one log line
 * with a fingerprint of the token, never the token.
 */
#include "oidc/oidc_int.h"

#include "core/clock.h"

#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/str.h"
#include "providers/provider.h"

#define MAX_SUB 255

/* Read a NumericDate claim: 0 when present (in *v), 1 absent, -1 bad. */
static int
get_time(json_t *claims, const char *name, int64_t *v)
{
	json_t *j = json_object_get(claims, name);
	double d;

	if (j == NULL)
		return 1;
	if (json_is_integer(j)) {
		*v = (int64_t)json_integer_value(j);
		return 0;
	}
	if (json_is_real(j)) {
		d = json_real_value(j);
		if (d >= 0 && d < 1e13) {
			*v = (int64_t)d;
			return 0;
		}
	}
	return -1;
}

static const char *
jose_code(enum eb_jose_err e)
{
	switch (e) {
	case EB_JOSE_ERR_TOO_LARGE:
		return "token_too_large";
	case EB_JOSE_ERR_BAD_FORMAT:
	case EB_JOSE_ERR_BAD_HEADER:
	case EB_JOSE_ERR_BAD_PAYLOAD:
		return "malformed_token";
	default:
		return eb_jose_strerror(e); /* alg_not_allowed, unknown_kid,
		                               bad_signature, kty_mismatch,
		                               no_key, crit_header, ... */
	}
}

/* Signature check, with one (rate-limited) JWKS refresh on an unknown kid. */
static int
verify_signature(struct eb_oidc *o, const struct eb_tenant *t,
                 const struct eb_oidc_meta *m, const char *tok, size_t len,
                 json_t **claims, struct eb_jose_verify_info *info,
                 struct eb_oidc_error *err)
{
	struct eb_jose_verify_opts vo = {0};
	struct eb_jose_jwks *jwks, *again;
	enum eb_jose_err je;

	vo.algs = EB_OIDC_ALGS_ALLOWED;
	if (m->id_token_algs != 0)
		vo.algs &= m->id_token_algs;
	vo.max_len = EB_JOSE_MAX_TOKEN;
	if ((jwks = eb_oidc_jwks_get(o, t->id, m->issuer, m->jwks_uri, NULL,
	                             err)) == NULL)
		return -1;
	je = eb_jose_verify(jwks, tok, len, &vo, claims, info);
	if (je == EB_JOSE_ERR_UNKNOWN_KID || je == EB_JOSE_ERR_NO_KEY) {
		again = eb_oidc_jwks_get(o, t->id, m->issuer, m->jwks_uri, jwks,
		                         NULL);
		if (again != NULL && again != jwks)
			je = eb_jose_verify(again, tok, len, &vo, claims, info);
		eb_jose_jwks_release(again);
	}
	eb_jose_jwks_release(jwks);
	if (je == EB_JOSE_OK)
		return 0;
	return eb_oidc_seterr(
	    err, je == EB_JOSE_ERR_NOMEM ? EB_OIDC_E_INTERNAL : EB_OIDC_E_TOKEN,
	    jose_code(je), "ID token refused by JOSE checks (%s)",
	    eb_jose_strerror(je));
}

static int
check_aud_azp(const struct eb_tenant *t, json_t *claims,
              struct eb_oidc_error *err)
{
	const char *cid = t->idp.client_id, *s;
	json_t *aud = json_object_get(claims, "aud"), *azp, *v;
	size_t i, naud = 0;
	int found = 0;

	if (json_is_string(aud)) {
		naud = 1;
		found = strcmp(json_string_value(aud), cid) == 0;
	} else if (json_is_array(aud)) {
		json_array_foreach(aud, i, v)
		{
			if ((s = json_string_value(v)) == NULL)
				return eb_oidc_seterr(err, EB_OIDC_E_TOKEN,
				                      "wrong_aud",
				                      "aud holds a non-string");
			naud++;
			if (strcmp(s, cid) == 0)
				found = 1;
		}
	} else
		return eb_oidc_seterr(err, EB_OIDC_E_TOKEN, "wrong_aud",
		                      "ID token has no aud");
	if (!found)
		return eb_oidc_seterr(
		    err, EB_OIDC_E_TOKEN, "wrong_aud",
		    "ID token aud does not name our client_id");
	azp = json_object_get(claims, "azp");
	if (azp == NULL) {
		if (naud > 1)
			return eb_oidc_seterr(
			    err, EB_OIDC_E_TOKEN, "azp_missing",
			    "ID token with %zu audiences and no azp", naud);
		return 0;
	}
	if ((s = json_string_value(azp)) == NULL || strcmp(s, cid) != 0)
		return eb_oidc_seterr(err, EB_OIDC_E_TOKEN, "wrong_azp",
		                      "ID token azp is not our client_id");
	return 0;
}

static int
check_times(struct eb_oidc *o, json_t *claims, int64_t now,
            struct eb_oidc_error *err)
{
	int64_t exp, iat, nbf, skew = o->opts.clock_skew;
	int r;

	if ((r = get_time(claims, "exp", &exp)) != 0)
		return eb_oidc_seterr(err, EB_OIDC_E_TOKEN, "exp_missing",
		                      "ID token exp %s",
		                      r > 0 ? "missing" : "not a number");
	if (exp <= now - skew)
		return eb_oidc_seterr(err, EB_OIDC_E_TOKEN, "expired",
		                      "ID token expired %lld s ago",
		                      (long long)(now - exp));
	if ((r = get_time(claims, "iat", &iat)) != 0)
		return eb_oidc_seterr(err, EB_OIDC_E_TOKEN, "iat_missing",
		                      "ID token iat %s",
		                      r > 0 ? "missing" : "not a number");
	if (iat > now + skew)
		return eb_oidc_seterr(err, EB_OIDC_E_TOKEN, "iat_future",
		                      "ID token issued %lld s in the future",
		                      (long long)(iat - now));
	if ((r = get_time(claims, "nbf", &nbf)) < 0)
		return eb_oidc_seterr(err, EB_OIDC_E_TOKEN, "malformed_token",
		                      "ID token nbf is not a number");
	if (r == 0 && nbf > now + skew)
		return eb_oidc_seterr(err, EB_OIDC_E_TOKEN, "not_yet_valid",
		                      "ID token not valid for another %lld s",
		                      (long long)(nbf - now));
	return 0;
}

static int
check_claims(struct eb_oidc *o, const struct eb_tenant *t,
             const struct eb_oidc_meta *m, json_t *claims,
             const char *expected_nonce, int64_t now, struct eb_oidc_error *err)
{
	const struct eb_provider_ops *prov = eb_provider_find(t->idp.type);
	char expected[EB_OIDC_MAX_URL + 1], why[256] = "";
	const char *iss, *sub, *nonce;
	int v;

	if (prov == NULL)
		return eb_oidc_seterr(err, EB_OIDC_E_INTERNAL, "no_provider",
		                      "no provider for idp type");
	if ((iss = json_string_value(json_object_get(claims, "iss"))) == NULL)
		return eb_oidc_seterr(err, EB_OIDC_E_TOKEN, "wrong_iss",
		                      "ID token has no iss");
	if (prov->expected_issuer != NULL) {
		v = prov->expected_issuer(t, m->issuer, claims, expected,
		                          sizeof(expected), why, sizeof(why));
		if (v == EB_PROVIDER_DENY)
			return eb_oidc_seterr(err, EB_OIDC_E_POLICY,
			                      "issuer_not_allowed", "%s", why);
		if (v != EB_PROVIDER_OK)
			return eb_oidc_seterr(
			    err, EB_OIDC_E_TOKEN, "wrong_iss", "%s",
			    why[0] ? why : "no expected issuer");
	} else if (snprintf(expected, sizeof(expected), "%s", m->issuer) >=
	           (int)sizeof(expected))
		return eb_oidc_seterr(err, EB_OIDC_E_TOKEN, "wrong_iss",
		                      "issuer too long");
	if (strcmp(iss, expected) != 0)
		return eb_oidc_seterr(
		    err, EB_OIDC_E_TOKEN, "wrong_iss",
		    "ID token iss is not the expected issuer");
	if (check_aud_azp(t, claims, err) || check_times(o, claims, now, err))
		return -1;
	if (expected_nonce != NULL) {
		nonce = json_string_value(json_object_get(claims, "nonce"));
		if (nonce == NULL)
			return eb_oidc_seterr(err, EB_OIDC_E_TOKEN,
			                      "nonce_missing",
			                      "ID token has no nonce");
		if (!eb_str_ct_eq(nonce, strlen(nonce), expected_nonce,
		                  strlen(expected_nonce)))
			return eb_oidc_seterr(
			    err, EB_OIDC_E_TOKEN, "nonce_mismatch",
			    "ID token nonce is not the one we sent");
	}
	sub = json_string_value(json_object_get(claims, "sub"));
	if (sub == NULL || sub[0] == '\0' || strlen(sub) > MAX_SUB)
		return eb_oidc_seterr(
		    err, EB_OIDC_E_TOKEN, "sub_missing",
		    "ID token sub missing, empty or too long");
	return 0;
}

int
eb_oidc_validate_id_token(struct eb_oidc *o, const struct eb_tenant *t,
                          const struct eb_oidc_meta *m, const char *id_token,
                          const char *expected_nonce, int64_t now,
                          json_t **claims, struct eb_oidc_error *err)
{
	struct eb_oidc_error lerr = {0};
	struct eb_jose_verify_info info = {0};
	json_t *c = NULL;
	char fp[13] = "-";
	size_t len;

	*claims = NULL;
	if (err == NULL)
		err = &lerr;
	if (now == 0)
		now = eb_clock_now(o->opts.clock);
	if (id_token == NULL || m == NULL || t->idp.client_id == NULL) {
		eb_oidc_seterr(err, EB_OIDC_E_TOKEN, "id_token_missing",
		               "no ID token to validate");
		goto out_fail;
	}
	len = strnlen(id_token, EB_JOSE_MAX_TOKEN + 1);
	eb_log_fp(id_token, len, fp);
	if (len > EB_JOSE_MAX_TOKEN) {
		eb_oidc_seterr(err, EB_OIDC_E_TOKEN, "token_too_large",
		               "ID token over %d bytes", EB_JOSE_MAX_TOKEN);
		goto out_fail;
	}
	if (verify_signature(o, t, m, id_token, len, &c, &info, err) ||
	    check_claims(o, t, m, c, expected_nonce, now, err))
		goto out_fail;
	*claims = c;
	return 0;
out_fail:
	json_decref(c);
	log_warnx("tenant %s: ID token %s refused: %s (%s) alg=%s kid=%.64s",
	          t->id, fp, err->code, err->reason,
	          info.alg ? eb_jose_alg_name(info.alg) : "-",
	          info.kid[0] ? info.kid : "-");
	eb_oidc_metric_error(o, t->id, err);
	return -1;
}
