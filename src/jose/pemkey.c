/*
 * PEM private keys and the JWTs signed with them (pemkey.h). The key stays
 * inside OpenSSL; signing uses a fresh digest context per call, so one
 * loaded key serves every thread. ES256 signatures are converted from
 * OpenSSL's DER to the fixed 64-byte r||s that JWS wants (RFC 7518 3.4).
 */
#include "jose/pemkey.h"

#include <limits.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "core/buf.h"
#include "core/mem.h"
#include "jose/b64.h"
#include "jose/jose.h"

#define P256_COORD 32
#define MAX_JWT    EB_JOSE_MAX_TOKEN

struct eb_pemkey {
	EVP_PKEY *pkey;
	int ec; /* ES256 when set, else RS256 */
};

/* 0 when pkey is a usable RSA or P-256 key (k->ec set), else -1 and why. */
static int
check_key(struct eb_pemkey *k, const char **why)
{
	char curve[64];
	int bits;

	switch (EVP_PKEY_get_base_id(k->pkey)) {
	case EVP_PKEY_RSA:
		bits = EVP_PKEY_get_bits(k->pkey);
		if (bits < EB_JOSE_MIN_RSA_BITS) {
			*why = "RSA key under 2048 bits";
			return -1;
		}
		if (bits > EB_JOSE_MAX_RSA_BITS) {
			*why = "RSA key over 16384 bits";
			return -1;
		}
		k->ec = 0;
		return 0;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(
		        k->pkey, OSSL_PKEY_PARAM_GROUP_NAME, curve,
		        sizeof(curve), NULL) != 1 ||
		    strcmp(curve, "prime256v1") != 0) {
			*why = "EC key not on P-256";
			return -1;
		}
		k->ec = 1;
		return 0;
	default:
		*why = "unsupported key type (RSA or P-256 only)";
		return -1;
	}
}

struct eb_pemkey *
eb_pemkey_load(const char *pem, size_t len, const char **why)
{
	struct eb_pemkey *k;
	BIO *bio;

	*why = "out of memory";
	if (len > INT_MAX)
		return NULL;
	if ((k = eb_calloc(1, sizeof(*k))) == NULL)
		return NULL;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		goto out_free;
	/* no passphrase callback: an encrypted key is refused, not prompted */
	k->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	BIO_free(bio);
	if (k->pkey == NULL) {
		*why = "not a PEM private key (unencrypted)";
		goto out_free;
	}
	if (check_key(k, why) == -1)
		goto out_free;
	*why = NULL;
	return k;
out_free:
	eb_pemkey_destroy(k);
	return NULL;
}

void
eb_pemkey_destroy(struct eb_pemkey *key)
{
	if (key == NULL)
		return;
	EVP_PKEY_free(key->pkey);
	eb_free(key);
}

const char *
eb_pemkey_alg(const struct eb_pemkey *key)
{
	return key->ec ? "ES256" : "RS256";
}

/* DER ECDSA signature to r||s (64 bytes) in out; 0 or -1. */
static int
der_to_raw(const unsigned char *der, size_t len,
           unsigned char out[2 * P256_COORD])
{
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	ECDSA_SIG *sig;
	int rc = -1;

	if (len > LONG_MAX ||
	    (sig = d2i_ECDSA_SIG(NULL, &p, (long)len)) == NULL)
		return -1;
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, out, P256_COORD) == P256_COORD &&
	    BN_bn2binpad(s, out + P256_COORD, P256_COORD) == P256_COORD)
		rc = 0;
	ECDSA_SIG_free(sig);
	return rc;
}

/* Sign input (len bytes) with SHA-256; the JWS signature into *sig. */
static int
sign_input(const struct eb_pemkey *k, const char *input, size_t len,
           unsigned char **sig, size_t *siglen)
{
	EVP_MD_CTX *ctx;
	unsigned char *der = NULL;
	size_t derlen = 0;
	int rc = -1;

	*sig = NULL;
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
	    EVP_DigestSign(ctx, NULL, &derlen, (const unsigned char *)input,
	                   len) != 1 ||
	    (der = eb_malloc(derlen)) == NULL ||
	    EVP_DigestSign(ctx, der, &derlen, (const unsigned char *)input,
	                   len) != 1)
		goto out;
	if (!k->ec) {
		*sig = der, *siglen = derlen, der = NULL;
		rc = 0;
	} else if ((*sig = eb_malloc(2 * P256_COORD)) != NULL) {
		if ((rc = der_to_raw(der, derlen, *sig)) == 0)
			*siglen = 2 * P256_COORD;
		else {
			eb_free(*sig);
			*sig = NULL;
		}
	}
out:
	eb_free(der);
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* base64url(JSON of j) appended to b. */
static int
add_json_b64(struct eb_buf *b, const json_t *j)
{
	json_free_t jfree = NULL;
	char *s;
	int rc;

	if ((s = json_dumps(j, JSON_COMPACT)) == NULL)
		return -1;
	rc = eb_b64_url_encode_buf(b, s, strlen(s));
	json_get_alloc_funcs(NULL, &jfree);
	jfree(s);
	return rc;
}

char *
eb_pemkey_sign_jwt(const struct eb_pemkey *key, const json_t *claims)
{
	unsigned char *sig = NULL;
	size_t siglen = 0, len;
	struct eb_buf b;
	json_t *hdr;
	char *input;

	if (!json_is_object(claims))
		return NULL;
	hdr = json_pack("{s:s,s:s}", "alg", eb_pemkey_alg(key), "typ", "JWT");
	if (hdr == NULL)
		return NULL;
	eb_buf_init(&b, MAX_JWT);
	if (add_json_b64(&b, hdr) == -1 || eb_buf_addstr(&b, ".") == -1 ||
	    add_json_b64(&b, claims) == -1 ||
	    (input = eb_buf_detach(&b, &len)) == NULL) {
		json_decref(hdr);
		eb_buf_finish(&b);
		return NULL;
	}
	json_decref(hdr);
	if (sign_input(key, input, len, &sig, &siglen) == -1 ||
	    eb_buf_add(&b, input, len) == -1 || eb_buf_addstr(&b, ".") == -1 ||
	    eb_b64_url_encode_buf(&b, sig, siglen) == -1) {
		eb_free(sig);
		eb_free(input);
		eb_buf_finish(&b);
		return NULL;
	}
	eb_free(sig);
	eb_free(input);
	return eb_buf_detach(&b, NULL);
}

struct eb_pemkey *
eb_pemkey_load_public(const char *pem, size_t len, const char **why)
{
	struct eb_pemkey *k;
	BIO *bio;

	*why = "out of memory";
	if (len > INT_MAX)
		return NULL;
	if ((k = eb_calloc(1, sizeof(*k))) == NULL)
		return NULL;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		goto out_free;
	k->pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (k->pkey == NULL) {
		*why = "not a PEM public key";
		goto out_free;
	}
	if (check_key(k, why) == -1)
		goto out_free;
	*why = NULL;
	return k;
out_free:
	eb_pemkey_destroy(k);
	return NULL;
}

/* Decode the base64url text [s, s + len) into a fresh buffer (NUL added). */
static uint8_t *
b64_part(const char *s, size_t len, size_t *outlen)
{
	long n = eb_b64_url_decoded_len(len);
	uint8_t *out;

	if (n < 0 || len == 0 || (out = eb_malloc((size_t)n + 1)) == NULL)
		return NULL;
	if ((n = eb_b64_url_decode_to(s, len, out)) < 0) {
		eb_free(out);
		return NULL;
	}
	out[n] = 0;
	*outlen = (size_t)n;
	return out;
}

/* The JWS signature sig as OpenSSL wants it (ES256: r||s to DER). */
static int
check_sig(const struct eb_pemkey *k, const char *input, size_t inlen,
          const uint8_t *sig, size_t siglen)
{
	unsigned char der[80], *p = der;
	ECDSA_SIG *es;
	BIGNUM *r, *s;
	EVP_MD_CTX *ctx;
	int derlen, ok = 0;

	if (k->ec) {
		if (siglen != 2 * P256_COORD || (es = ECDSA_SIG_new()) == NULL)
			return 0;
		r = BN_bin2bn(sig, P256_COORD, NULL);
		s = BN_bin2bn(sig + P256_COORD, P256_COORD, NULL);
		if (r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
			BN_free(r);
			BN_free(s);
			ECDSA_SIG_free(es);
			return 0;
		}
		derlen = i2d_ECDSA_SIG(es, NULL);
		if (derlen <= 0 || derlen > (int)sizeof(der) ||
		    i2d_ECDSA_SIG(es, &p) != derlen) {
			ECDSA_SIG_free(es);
			return 0;
		}
		ECDSA_SIG_free(es);
		sig = der, siglen = (size_t)derlen;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	ok =
	    EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
	    EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)input,
	                     inlen) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

int
eb_pemkey_verify_jwt(const struct eb_pemkey *key, const char *jwt,
                     json_t **claims, const char **why)
{
	const char *d1, *d2, *alg;
	uint8_t *h = NULL, *pl = NULL, *sig = NULL;
	size_t hl, pll, sl, len;
	json_t *hdr = NULL;
	int rc = -1;

	*claims = NULL;
	*why = "not a compact JWS";
	if ((len = strnlen(jwt, MAX_JWT + 1)) > MAX_JWT ||
	    (d1 = strchr(jwt, '.')) == NULL ||
	    (d2 = strchr(d1 + 1, '.')) == NULL || strchr(d2 + 1, '.') != NULL)
		return -1;
	if ((h = b64_part(jwt, (size_t)(d1 - jwt), &hl)) == NULL ||
	    (pl = b64_part(d1 + 1, (size_t)(d2 - d1 - 1), &pll)) == NULL ||
	    (sig = b64_part(d2 + 1, len - (size_t)(d2 + 1 - jwt), &sl)) ==
	        NULL ||
	    (hdr = eb_jose_json_parse_object((char *)h, hl, 4)) == NULL)
		goto out;
	alg = json_string_value(json_object_get(hdr, "alg"));
	if (alg == NULL || strcmp(alg, eb_pemkey_alg(key)) != 0) {
		*why = "header alg is not the key's";
		goto out;
	}
	if (!check_sig(key, jwt, (size_t)(d2 - jwt), sig, sl)) {
		*why = "bad signature";
		goto out;
	}
	if ((*claims = eb_jose_json_parse_object((char *)pl, pll,
	                                         EB_JOSE_MAX_DEPTH)) == NULL) {
		*why = "payload is not a JSON object";
		goto out;
	}
	*why = NULL;
	rc = 0;
out:
	json_decref(hdr);
	eb_free(h);
	eb_free(pl);
	eb_free(sig);
	return rc;
}
