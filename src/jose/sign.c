/*
 * Our own ES256 signing keys: generation, public/private JWK export,
 * import from storage, and signing access tokens. The private scalar exists
 * in three places only: inside OpenSSL (wiped by EC_KEY_free), in the JSON
 * strings handed to the caller for sealing (which the caller wipes), and
 * briefly in scratch buffers here (wiped before free). cjose's and jansson's
 * own temporaries while serialising or parsing a private JWK are outside our
 * control and are not wiped.
 */
#include "jose/jose_int.h"

#include <string.h>

#include <openssl/crypto.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "jose/b64.h"

#define P256_COORD   32
#define P256_COORD64 43 /* base64url characters of a coordinate */

struct eb_jose_key {
	cjose_jwk_t *jwk;
	char kid[EB_JOSE_MAX_KID + 1];
	char x[P256_COORD64 + 1];
	char y[P256_COORD64 + 1];
};

static int
kid_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > EB_JOSE_MAX_KID)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

/* Copy the public coordinates of k->jwk into k->x and k->y. */
static int
load_public(struct eb_jose_key *k)
{
	const char *x, *y;
	char *pub;
	json_t *j;
	int rc = -1;

	if ((pub = cjose_jwk_to_json(k->jwk, false, NULL)) == NULL)
		return -1;
	j = eb_jose_json_parse_object(pub, strlen(pub), 2);
	cjose_get_dealloc()(pub);
	if (j == NULL)
		return -1;
	x = json_string_value(json_object_get(j, "x"));
	y = json_string_value(json_object_get(j, "y"));
	if (x != NULL && y != NULL && strlen(x) == P256_COORD64 &&
	    strlen(y) == P256_COORD64) {
		memcpy(k->x, x, P256_COORD64 + 1);
		memcpy(k->y, y, P256_COORD64 + 1);
		rc = 0;
	}
	json_decref(j);
	return rc;
}

/* Set k->kid to the RFC 7638 thumbprint of the public key. */
static int
set_thumbprint_kid(struct eb_jose_key *k)
{
	char pub[256];
	int n;

	n = snprintf(
	    pub, sizeof(pub),
	    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}",
	    k->x, k->y);
	if (n < 0 || (size_t)n >= sizeof(pub))
		return -1;
	return eb_jose_thumbprint(pub, (size_t)n, k->kid);
}

void
eb_jose_key_destroy(struct eb_jose_key *key)
{
	if (key == NULL)
		return;
	cjose_jwk_release(key->jwk); /* EC_KEY_free clears the scalar */
	eb_free_secret(key, sizeof(*key));
}

struct eb_jose_key *
eb_jose_key_generate(void)
{
	struct eb_jose_key *k;

	if ((k = eb_calloc(1, sizeof(*k))) == NULL)
		return NULL;
	k->jwk = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, NULL);
	if (k->jwk == NULL || load_public(k) != 0 ||
	    set_thumbprint_kid(k) != 0) {
		log_errx("cannot generate a P-256 key");
		eb_jose_key_destroy(k);
		return NULL;
	}
	return k;
}

/* 1 when member name is absent or the string want. */
static int
absent_or(json_t *j, const char *name, const char *want)
{
	json_t *v = json_object_get(j, name);

	return v == NULL ||
	       (json_is_string(v) && strcmp(json_string_value(v), want) == 0);
}

struct eb_jose_key *
eb_jose_key_import(const char *json, size_t len, enum eb_jose_err *errp)
{
	enum eb_jose_err err = EB_JOSE_ERR_BAD_KEY;
	cjose_jwk_ec_keyspec spec;
	struct eb_jose_key *k = NULL;
	uint8_t *d = NULL;
	size_t dlen = 0;
	const char *x, *y;
	json_t *j, *kid;

	if (json == NULL || len > 8192 ||
	    (j = eb_jose_json_parse_object(json, len, 2)) == NULL)
		goto out;
	x = json_string_value(json_object_get(j, "x"));
	y = json_string_value(json_object_get(j, "y"));
	kid = json_object_get(j, "kid");
	if (!absent_or(j, "kty", "EC") || json_object_get(j, "kty") == NULL ||
	    !absent_or(j, "crv", "P-256") ||
	    json_object_get(j, "crv") == NULL ||
	    !absent_or(j, "alg", "ES256") || !absent_or(j, "use", "sig") ||
	    x == NULL || y == NULL || strlen(x) != P256_COORD64 ||
	    strlen(y) != P256_COORD64)
		goto out_free_json;
	if (kid != NULL &&
	    (!json_is_string(kid) ||
	     !kid_ok(json_string_value(kid), json_string_length(kid))))
		goto out_free_json;
	if (eb_jose_int_member_b64(j, "d", &d, &dlen) != 0 ||
	    dlen != P256_COORD)
		goto out_free_json;
	err = EB_JOSE_ERR_NOMEM;
	if ((k = eb_calloc(1, sizeof(*k))) == NULL)
		goto out_free_json;
	memset(&spec, 0, sizeof(spec));
	spec.crv = CJOSE_JWK_EC_P_256;
	spec.d = d;
	spec.dlen = dlen;
	err = EB_JOSE_ERR_BAD_KEY;
	/* cjose derives the public point from d; it must match x and y. */
	if ((k->jwk = cjose_jwk_create_EC_spec(&spec, NULL)) == NULL ||
	    load_public(k) != 0 || strcmp(k->x, x) != 0 || strcmp(k->y, y) != 0)
		goto out_free_key;
	if (kid != NULL)
		memcpy(k->kid, json_string_value(kid),
		       json_string_length(kid) + 1);
	else if (set_thumbprint_kid(k) != 0)
		goto out_free_key;
	json_decref(j);
	eb_free_secret(d, dlen + 1);
	if (errp != NULL)
		*errp = EB_JOSE_OK;
	return k;
out_free_key:
	eb_jose_key_destroy(k);
out_free_json:
	eb_free_secret(d, dlen + 1);
	json_decref(j);
out:
	if (errp != NULL)
		*errp = err;
	return NULL;
}

const char *
eb_jose_key_kid(const struct eb_jose_key *key)
{
	return key->kid;
}

/* Append the members every export shares, from "kty" to "y". */
static int
add_public(struct eb_buf *b, const struct eb_jose_key *key)
{
	return eb_buf_printf(
	    b, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"",
	    key->x, key->y);
}

/* Append kid, use and alg and close the object. */
static int
add_trailer(struct eb_buf *b, const struct eb_jose_key *key)
{
	if (eb_buf_addstr(b, ",\"kid\":") || eb_buf_add_json_str(b, key->kid) ||
	    eb_buf_addstr(b, ",\"use\":\"sig\",\"alg\":\"ES256\"}"))
		return -1;
	return 0;
}

char *
eb_jose_key_public_json(const struct eb_jose_key *key)
{
	struct eb_buf b;

	eb_buf_init(&b, 4096);
	if (add_public(&b, key) || add_trailer(&b, key)) {
		eb_buf_finish(&b);
		return NULL;
	}
	return eb_buf_detach(&b, NULL);
}

/*
 * The base64url "d" of cjose's private export, copied into out (room for
 * P256_COORD64 + 1). cjose writes d as a base64url string, so the first
 * "d":" can only be that member's key.
 */
static int
extract_d(const struct eb_jose_key *key, char *out)
{
	const char *p, *end;
	char *priv;
	size_t len;
	int rc = -1;

	if ((priv = cjose_jwk_to_json(key->jwk, true, NULL)) == NULL)
		return -1;
	len = strlen(priv);
	if ((p = strstr(priv, "\"d\":\"")) != NULL) {
		p += 5;
		end = strchr(p, '"');
		if (end != NULL && end - p == P256_COORD64 &&
		    eb_jose_int_is_b64url(p, P256_COORD64)) {
			memcpy(out, p, P256_COORD64);
			out[P256_COORD64] = '\0';
			rc = 0;
		}
	}
	OPENSSL_cleanse(priv, len);
	cjose_get_dealloc()(priv);
	return rc;
}

char *
eb_jose_key_private_json(const struct eb_jose_key *key, size_t *lenp)
{
	char d[P256_COORD64 + 1];
	struct eb_buf b;
	char *out = NULL;

	eb_buf_init(&b, 4096);
	if (extract_d(key, d) != 0)
		goto out;
	if (add_public(&b, key) || eb_buf_printf(&b, ",\"d\":\"%s\"", d) ||
	    add_trailer(&b, key))
		goto out;
	out = eb_buf_detach(&b, lenp);
out:
	OPENSSL_cleanse(d, sizeof(d));
	eb_buf_finish_secret(&b);
	return out;
}

char *
eb_jose_key_sign(const struct eb_jose_key *key, const char *typ,
                 const json_t *claims)
{
	cjose_header_t *hdr = NULL;
	cjose_jws_t *jws = NULL;
	const char *ser = NULL;
	char *payload = NULL, *out = NULL;

	if (key == NULL || !json_is_object(claims))
		return NULL;
	if ((payload = json_dumps(claims, JSON_COMPACT)) == NULL)
		return NULL;
	if ((hdr = cjose_header_new(NULL)) == NULL ||
	    !cjose_header_set(hdr, CJOSE_HDR_ALG, CJOSE_HDR_ALG_ES256, NULL) ||
	    !cjose_header_set(hdr, CJOSE_HDR_KID, key->kid, NULL) ||
	    (typ != NULL && !cjose_header_set(hdr, "typ", typ, NULL)))
		goto out_free;
	jws = cjose_jws_sign(key->jwk, hdr, (const uint8_t *)payload,
	                     strlen(payload), NULL);
	if (jws == NULL || !cjose_jws_export(jws, &ser, NULL)) {
		log_errx("cannot sign a token");
		goto out_free;
	}
	out = eb_strdup(ser);
out_free:
	cjose_jws_release(jws);
	cjose_header_release(hdr);
	if (payload != NULL) {
		json_free_t jfree = NULL;

		json_get_alloc_funcs(NULL, &jfree);
		jfree(payload);
	}
	return out;
}
