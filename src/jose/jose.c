/*
 * Shared JOSE pieces: error names, the alg table (which key type, curve and
 * signature size each alg needs), JSON parsing with our limits, and RFC 7638
 * thumbprints. The verifier, JWKS parser and signer build on these.
 */
#include "jose/jose_int.h"

#include <string.h>

#include <openssl/evp.h>

#include "core/buf.h"
#include "core/mem.h"
#include "jose/b64.h"

static const struct eb_jose_alg_info algs[] = {
    {EB_JOSE_RS256, "RS256", CJOSE_JWK_KTY_RSA, 0, 0},
    {EB_JOSE_RS384, "RS384", CJOSE_JWK_KTY_RSA, 0, 0},
    {EB_JOSE_RS512, "RS512", CJOSE_JWK_KTY_RSA, 0, 0},
    {EB_JOSE_PS256, "PS256", CJOSE_JWK_KTY_RSA, 0, 0},
    {EB_JOSE_PS384, "PS384", CJOSE_JWK_KTY_RSA, 0, 0},
    {EB_JOSE_PS512, "PS512", CJOSE_JWK_KTY_RSA, 0, 0},
    {EB_JOSE_ES256, "ES256", CJOSE_JWK_KTY_EC, CJOSE_JWK_EC_P_256, 64},
    {EB_JOSE_ES384, "ES384", CJOSE_JWK_KTY_EC, CJOSE_JWK_EC_P_384, 96},
    {EB_JOSE_ES512, "ES512", CJOSE_JWK_KTY_EC, CJOSE_JWK_EC_P_521, 132},
};

static const char *const err_names[] = {
    [EB_JOSE_OK] = "ok",
    [EB_JOSE_ERR_BAD_FORMAT] = "bad_format",
    [EB_JOSE_ERR_TOO_LARGE] = "too_large",
    [EB_JOSE_ERR_BAD_HEADER] = "bad_header",
    [EB_JOSE_ERR_ALG_NOT_ALLOWED] = "alg_not_allowed",
    [EB_JOSE_ERR_CRIT] = "crit_header",
    [EB_JOSE_ERR_UNKNOWN_KID] = "unknown_kid",
    [EB_JOSE_ERR_NO_KEY] = "no_key",
    [EB_JOSE_ERR_KTY_MISMATCH] = "kty_mismatch",
    [EB_JOSE_ERR_BAD_SIGNATURE] = "bad_signature",
    [EB_JOSE_ERR_BAD_PAYLOAD] = "bad_payload",
    [EB_JOSE_ERR_BAD_JWKS] = "bad_jwks",
    [EB_JOSE_ERR_TOO_MANY_KEYS] = "too_many_keys",
    [EB_JOSE_ERR_BAD_KEY] = "bad_key",
    [EB_JOSE_ERR_NOMEM] = "nomem",
    [EB_JOSE_ERR_INTERNAL] = "internal",
};

const char *
eb_jose_strerror(enum eb_jose_err err)
{
	if ((unsigned)err >= sizeof(err_names) / sizeof(err_names[0]) ||
	    err_names[err] == NULL)
		return "unknown";
	return err_names[err];
}

unsigned
eb_jose_alg_from_name(const char *name)
{
	size_t i;

	if (name == NULL)
		return 0;
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcmp(name, algs[i].name) == 0)
			return algs[i].bit;
	return 0; /* none, HS*, RSA1_5 and the rest: never */
}

const struct eb_jose_alg_info *
eb_jose_int_alg(unsigned bit)
{
	size_t i;

	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (algs[i].bit == bit)
			return &algs[i];
	return NULL;
}

const char *
eb_jose_alg_name(unsigned alg)
{
	const struct eb_jose_alg_info *a = eb_jose_int_alg(alg);

	return a == NULL ? NULL : a->name;
}

int
eb_jose_int_is_b64url(const char *s, size_t n)
{
	size_t i;
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

int
eb_jose_int_member_b64(json_t *obj, const char *name, uint8_t **out,
                       size_t *outlen)
{
	json_t *v = json_object_get(obj, name);

	*out = NULL;
	if (!json_is_string(v) || json_string_length(v) == 0)
		return -1;
	return eb_b64_url_decode(json_string_value(v), json_string_length(v),
	                         out, outlen);
}

/*
 * 1 when the JSON text nests arrays and objects no deeper than max. A
 * lexical pre-pass (strings and escapes skipped) so that a hostile document
 * never reaches jansson's recursive parser with thousands of levels.
 */
static int
depth_ok(const char *s, size_t len, int max)
{
	int depth = 0, in_str = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		char c = s[i];

		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"')
			in_str = 1;
		else if (c == '{' || c == '[') {
			if (++depth > max)
				return 0;
		} else if (c == '}' || c == ']')
			depth--;
	}
	return 1;
}

json_t *
eb_jose_json_parse_object(const char *text, size_t len, int max_depth)
{
	json_error_t jerr;
	json_t *j;

	if (text == NULL || !depth_ok(text, len, max_depth))
		return NULL;
	j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* Append "name":"value" where value must be base64url (no escaping needed). */
static int
add_b64_member(struct eb_buf *b, json_t *jwk, const char *name, int comma)
{
	json_t *v = json_object_get(jwk, name);
	const char *s = json_string_value(v);

	if (s == NULL || json_string_length(v) == 0 ||
	    !eb_jose_int_is_b64url(s, json_string_length(v)))
		return -1;
	return eb_buf_printf(b, "%s\"%s\":\"%s\"", comma ? "," : "", name, s);
}

int
eb_jose_thumbprint(const char *jwk_json, size_t len,
                   char out[EB_JOSE_THUMBPRINT_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct eb_buf b;
	const char *kty;
	json_t *jwk;
	int rc = -1;

	if ((jwk = eb_jose_json_parse_object(jwk_json, len, 4)) == NULL)
		return -1;
	eb_buf_init(&b, 8192);
	kty = json_string_value(json_object_get(jwk, "kty"));
	if (kty == NULL)
		goto out_free;
	/* RFC 7638 3.2: required members only, sorted, no whitespace. */
	if (strcmp(kty, "EC") == 0) {
		const char *crv =
		    json_string_value(json_object_get(jwk, "crv"));

		if (crv == NULL ||
		    (strcmp(crv, "P-256") != 0 && strcmp(crv, "P-384") != 0 &&
		     strcmp(crv, "P-521") != 0))
			goto out_free;
		if (eb_buf_printf(&b, "{\"crv\":\"%s\",\"kty\":\"EC\"", crv) ||
		    add_b64_member(&b, jwk, "x", 1) ||
		    add_b64_member(&b, jwk, "y", 1) || eb_buf_addc(&b, '}'))
			goto out_free;
	} else if (strcmp(kty, "RSA") == 0) {
		if (eb_buf_addc(&b, '{') || add_b64_member(&b, jwk, "e", 0) ||
		    eb_buf_addstr(&b, ",\"kty\":\"RSA\"") ||
		    add_b64_member(&b, jwk, "n", 1) || eb_buf_addc(&b, '}'))
			goto out_free;
	} else
		goto out_free;
	if (EVP_Digest(b.data, b.len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32)
		goto out_free;
	eb_b64_url_encode_to(md, mdlen, out);
	rc = 0;
out_free:
	eb_buf_finish(&b);
	json_decref(jwk);
	return rc;
}
