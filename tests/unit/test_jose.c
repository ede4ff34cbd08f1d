/*
 * Unit tests of src/jose/: strict base64url, JWKS parsing limits, JWS
 * verification against hostile tokens (alg none, HS256 key confusion,
 * alg/kty mismatch, kid games, tampering, malformed input), our ES256
 * signing keys (checked independently with OpenSSL), and sealed blobs.
 * RSA tokens are made here with OpenSSL, never with the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "core/buf.h"
#include "core/mem.h"
#include "jose/b64.h"
#include "jose/jose.h"
#include "jose/seal.h"

/* Keys made once for the whole run (RSA generation is slow under ASan). */
static EVP_PKEY *rsa2048, *rsa2048b, *rsa1024;
static struct eb_jose_key *ec1, *ec2;

/* ---- helpers ---------------------------------------------------------- */

static char *
b64(const void *p, size_t n)
{
	char *s = eb_b64_url_encode(p, n);

	assert_non_null(s);
	return s;
}

static char *
bn_b64(EVP_PKEY *pk, const char *param)
{
	BIGNUM *bn = NULL;
	unsigned char buf[1024];
	int n;

	assert_int_equal(EVP_PKEY_get_bn_param(pk, param, &bn), 1);
	n = BN_bn2bin(bn, buf);
	BN_free(bn);
	return b64(buf, (size_t)n);
}

/* A public RSA JWK; extra (may be "") is spliced in before the closing. */
static char *
rsa_jwk(EVP_PKEY *pk, const char *kid, const char *extra)
{
	char *n = bn_b64(pk, OSSL_PKEY_PARAM_RSA_N);
	char *e = bn_b64(pk, OSSL_PKEY_PARAM_RSA_E);
	struct eb_buf b;

	eb_buf_init(&b, 1 << 20);
	assert_int_equal(
	    eb_buf_printf(&b, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"", n,
	                  e),
	    0);
	if (kid != NULL)
		eb_buf_printf(&b, ",\"kid\":\"%s\"", kid);
	eb_buf_printf(&b, "%s}", extra);
	eb_free(n);
	eb_free(e);
	return eb_buf_detach(&b, NULL);
}

/* {"keys":[a, b, ...]} from JWK strings (NULL-terminated list). */
static char *
jwks_doc(const char *first, ...)
{
	struct eb_buf b;
	const char *s;
	va_list ap;
	int i = 0;

	eb_buf_init(&b, 4 << 20);
	eb_buf_addstr(&b, "{\"keys\":[");
	va_start(ap, first);
	for (s = first; s != NULL; s = va_arg(ap, const char *))
		eb_buf_printf(&b, "%s%s", i++ ? "," : "", s);
	va_end(ap);
	eb_buf_addstr(&b, "]}");
	return eb_buf_detach(&b, NULL);
}

static struct eb_jose_jwks *
parse_ok(const char *doc)
{
	enum eb_jose_err err = EB_JOSE_ERR_INTERNAL;
	struct eb_jose_jwks *jwks;

	jwks = eb_jose_jwks_parse(doc, strlen(doc), 0, &err);
	assert_non_null(jwks);
	assert_int_equal(err, EB_JOSE_OK);
	return jwks;
}

/* header.payload signed by pk: md NULL -> RS256; pss -> PSxxx. */
static char *
rsa_token(EVP_PKEY *pk, const char *hdr, const char *payload, int pss)
{
	char *h = b64(hdr, strlen(hdr)), *p = b64(payload, strlen(payload));
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	struct eb_buf b;
	char *s;

	eb_buf_init(&b, 1 << 20);
	eb_buf_printf(&b, "%s.%s", h, p);
	assert_int_equal(EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, pk),
	                 1);
	if (pss) {
		EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
	}
	assert_int_equal(EVP_DigestSign(ctx, sig, &siglen,
	                                (const unsigned char *)b.data, b.len),
	                 1);
	EVP_MD_CTX_free(ctx);
	s = b64(sig, siglen);
	eb_buf_printf(&b, ".%s", s);
	eb_free(s);
	eb_free(h);
	eb_free(p);
	return eb_buf_detach(&b, NULL);
}

/* header.payload.sig with sig given raw (siglen bytes). */
static char *
raw_token(const char *hdr, const char *payload, const void *sig, size_t siglen)
{
	char *h = b64(hdr, strlen(hdr)), *p = b64(payload, strlen(payload));
	char *s = b64(sig, siglen);
	struct eb_buf b;

	eb_buf_init(&b, 1 << 20);
	eb_buf_printf(&b, "%s.%s.%s", h, p, s);
	eb_free(h);
	eb_free(p);
	eb_free(s);
	return eb_buf_detach(&b, NULL);
}

static enum eb_jose_err
verify(const struct eb_jose_jwks *jwks, const char *tok, unsigned algs,
       json_t **claims)
{
	struct eb_jose_verify_opts o = {.algs = algs};
	json_t *c = NULL;
	enum eb_jose_err err;

	err = eb_jose_verify(jwks, tok, strlen(tok), &o, &c, NULL);
	if (err != EB_JOSE_OK)
		assert_null(c);
	else
		assert_true(json_is_object(c));
	if (claims != NULL)
		*claims = c;
	else
		json_decref(c);
	return err;
}

static json_t *
sample_claims(void)
{
	json_t *c = json_pack("{s:s, s:s, s:i, s:s}", "iss",
	                      "https://idp.example", "sub", "user-1", "exp",
	                      2000000000, "aud", "enrollbridge");

	assert_non_null(c);
	return c;
}

static const char *payload_txt =
    "{\"iss\":\"https://idp.example\",\"sub\":\"u\",\"exp\":2000000000}";

/* ---- setup ------------------------------------------------------------ */

static int
group_setup(void **state)
{
	rsa2048 = EVP_RSA_gen(2048);
	rsa2048b = EVP_RSA_gen(2048);
	rsa1024 = EVP_RSA_gen(1024);
	ec1 = eb_jose_key_generate();
	ec2 = eb_jose_key_generate();
	return rsa2048 && rsa2048b && rsa1024 && ec1 && ec2 ? 0 : -1;
}

static int
group_teardown(void **state)
{
	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(rsa2048b);
	EVP_PKEY_free(rsa1024);
	eb_jose_key_destroy(ec1);
	eb_jose_key_destroy(ec2);
	return 0;
}

/* ---- base64url ---------------------------------------------------------- */

static void
test_b64(void **state)
{
	static const struct {
		const char *raw, *enc;
	} v[] = {{"", ""},
	         {"f", "Zg"},
	         {"fo", "Zm8"},
	         {"foo", "Zm9v"},
	         {"foob", "Zm9vYg"},
	         {"fooba", "Zm9vYmE"},
	         {"foobar", "Zm9vYmFy"},
	         {"\xfb\xff", "-_8"}};
	static const char *bad[] = {
	    "Zg==", "Zm9v+", "Zm9/", "Zm9v Yg", "Z",
	    "Zh",   "Zm9",   "Zm8=", "Zm\n8",   "Zm9vYmF"};
	uint8_t *out;
	size_t n, i;
	char *s;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		s = eb_b64_url_encode(v[i].raw, strlen(v[i].raw));
		assert_string_equal(s, v[i].enc);
		eb_free(s);
		assert_int_equal(
		    eb_b64_url_decode(v[i].enc, strlen(v[i].enc), &out, &n), 0);
		assert_int_equal(n, strlen(v[i].raw));
		assert_memory_equal(out, v[i].raw, n);
		eb_free(out);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
		    eb_b64_url_decode(bad[i], strlen(bad[i]), &out, &n), -1);
		assert_null(out);
	}
}

/* ---- our ES256 tokens --------------------------------------------------- */

static void
test_es256_round_trip(void **state)
{
	struct eb_jose_verify_opts o = {.algs = EB_JOSE_ES256, .typ = "at+jwt"};
	struct eb_jose_verify_info info;
	json_t *claims = sample_claims(), *got = NULL;
	char *pub = eb_jose_key_public_json(ec1), *doc, *tok;
	struct eb_jose_jwks *jwks;

	assert_non_null(pub);
	assert_null(strstr(pub, "\"d\""));
	assert_non_null(strstr(pub, "\"use\":\"sig\""));
	assert_non_null(strstr(pub, "\"alg\":\"ES256\""));
	doc = jwks_doc(pub, NULL);
	jwks = parse_ok(doc);
	assert_int_equal(eb_jose_jwks_count(jwks), 1);
	assert_true(eb_jose_jwks_has_kid(jwks, eb_jose_key_kid(ec1)));

	tok = eb_jose_key_sign(ec1, "at+jwt", claims);
	assert_non_null(tok);
	assert_int_equal(
	    eb_jose_verify(jwks, tok, strlen(tok), &o, &got, &info),
	    EB_JOSE_OK);
	assert_true(json_equal(got, claims));
	assert_int_equal(info.alg, EB_JOSE_ES256);
	assert_string_equal(info.kid, eb_jose_key_kid(ec1));
	json_decref(got);

	/* The typ is enforced when asked for. */
	o.typ = "JWT";
	assert_int_equal(eb_jose_verify(jwks, tok, strlen(tok), &o, &got, NULL),
	                 EB_JOSE_ERR_BAD_HEADER);
	/* Default allow-list has ES256 too. */
	assert_int_equal(verify(jwks, tok, 0, NULL), EB_JOSE_OK);
	/* An RS256-only list refuses it. */
	assert_int_equal(verify(jwks, tok, EB_JOSE_RS256, NULL),
	                 EB_JOSE_ERR_ALG_NOT_ALLOWED);
	eb_free(tok);
	eb_free(doc);
	eb_jose_jwks_release(jwks);
	eb_free(pub);
	json_decref(claims);
}

/* Verify an ES256 token with OpenSSL alone: r||s -> DER, EVP_DigestVerify. */
static int
openssl_es256_verify(const char *tok, const char *x64, const char *y64)
{
	uint8_t pub[65], *x, *y, *sig;
	size_t xl, yl, sl;
	const char *dot = strrchr(tok, '.');
	unsigned char *der = NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params;
	EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ECDSA_SIG *es = ECDSA_SIG_new();
	int derlen, ok;

	assert_int_equal(eb_b64_url_decode(x64, strlen(x64), &x, &xl), 0);
	assert_int_equal(eb_b64_url_decode(y64, strlen(y64), &y, &yl), 0);
	assert_int_equal(eb_b64_url_decode(dot + 1, strlen(dot + 1), &sig, &sl),
	                 0);
	assert_int_equal(xl, 32);
	assert_int_equal(sl, 64);
	pub[0] = 4;
	memcpy(pub + 1, x, 32);
	memcpy(pub + 33, y, 32);
	OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	                                "prime256v1", 0);
	OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 65);
	params = OSSL_PARAM_BLD_to_param(bld);
	assert_int_equal(EVP_PKEY_fromdata_init(kctx), 1);
	assert_int_equal(
	    EVP_PKEY_fromdata(kctx, &pk, EVP_PKEY_PUBLIC_KEY, params), 1);
	ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL),
	               BN_bin2bn(sig + 32, 32, NULL));
	derlen = i2d_ECDSA_SIG(es, &der);
	assert_true(derlen > 0);
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk),
	                 1);
	ok = EVP_DigestVerify(md, der, (size_t)derlen,
	                      (const unsigned char *)tok, (size_t)(dot - tok));
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(kctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	eb_free(x);
	eb_free(y);
	eb_free(sig);
	return ok;
}

static void
test_es256_independent_verify(void **state)
{
	char *pub = eb_jose_key_public_json(ec1), *tok;
	json_t *j = json_loads(pub, 0, NULL), *claims = sample_claims();
	const char *x = json_string_value(json_object_get(j, "x"));
	const char *y = json_string_value(json_object_get(j, "y"));
	int i;

	/* Enough signatures that some r or s has a leading zero byte. */
	for (i = 0; i < 600; i++) {
		json_object_set_new(claims, "n", json_integer(i));
		tok = eb_jose_key_sign(ec1, "at+jwt", claims);
		assert_non_null(tok);
		assert_int_equal(openssl_es256_verify(tok, x, y), 1);
		eb_free(tok);
	}
	json_decref(claims);
	json_decref(j);
	eb_free(pub);
}

static void
test_key_export_import(void **state)
{
	enum eb_jose_err err;
	size_t len = 0;
	char *priv = eb_jose_key_private_json(ec1, &len), *pub, *doc, *tok,
	     *bad;
	struct eb_jose_key *k2;
	struct eb_jose_jwks *jwks;
	json_t *claims = sample_claims();

	assert_non_null(priv);
	assert_int_equal(len, strlen(priv));
	assert_non_null(strstr(priv, "\"d\":\""));
	k2 = eb_jose_key_import(priv, len, &err);
	assert_non_null(k2);
	assert_int_equal(err, EB_JOSE_OK);
	assert_string_equal(eb_jose_key_kid(k2), eb_jose_key_kid(ec1));
	/* Signed by the imported copy, verified with the original's JWKS. */
	pub = eb_jose_key_public_json(ec1);
	doc = jwks_doc(pub, NULL);
	jwks = parse_ok(doc);
	tok = eb_jose_key_sign(k2, "at+jwt", claims);
	assert_int_equal(verify(jwks, tok, EB_JOSE_ES256, NULL), EB_JOSE_OK);
	eb_free(tok);
	eb_jose_key_destroy(k2);
	eb_free_secret(priv, len);

	/* A public JWK is no signing key. */
	assert_null(eb_jose_key_import(pub, strlen(pub), &err));
	assert_int_equal(err, EB_JOSE_ERR_BAD_KEY);
	/* d of ec2 with x, y of ec1: refused. */
	{
		char *p2 = eb_jose_key_private_json(ec2, &len);
		json_t *a = json_loads(pub, 0, NULL),
		       *b2 = json_loads(p2, 0, NULL);

		json_object_set(a, "d", json_object_get(b2, "d"));
		bad = json_dumps(a, JSON_COMPACT);
		assert_null(eb_jose_key_import(bad, strlen(bad), &err));
		assert_int_equal(err, EB_JOSE_ERR_BAD_KEY);
		free(bad);
		json_object_set_new(b2, "alg", json_string("RS256"));
		bad = json_dumps(b2, JSON_COMPACT);
		assert_null(eb_jose_key_import(bad, strlen(bad), &err));
		free(bad);
		json_object_del(b2, "alg");
		json_object_del(b2, "kid");
		bad = json_dumps(b2, JSON_COMPACT);
		k2 = eb_jose_key_import(bad, strlen(bad), &err);
		assert_non_null(k2); /* kid recomputed as thumbprint */
		assert_string_equal(eb_jose_key_kid(k2), eb_jose_key_kid(ec2));
		eb_jose_key_destroy(k2);
		free(bad);
		json_decref(a);
		json_decref(b2);
		eb_free_secret(p2, len);
	}
	assert_null(eb_jose_key_import("{", 1, &err));
	eb_jose_key_destroy(NULL);
	eb_jose_jwks_release(jwks);
	eb_free(doc);
	eb_free(pub);
	json_decref(claims);
}

static void
test_thumbprint(void **state)
{
	/* RFC 7638 section 3.1. */
	static const char jwk[] =
	    "{\"kty\":\"RSA\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiA"
	    "FbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
	    "BJECPebWKRXjBZCiFV4n3"
	    "oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-"
	    "65YGjQR0_F"
	    "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpb"
	    "IS"
	    "D08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_"
	    "xBniIqbw0Ls1"
	    "jF44-csFCur-kEgU8awapJzKnqDKgw\",\"e\":\"AQAB\",\"alg\":\"RS256\","
	    "\"kid\":\"2011-04-29\"}";
	char out[EB_JOSE_THUMBPRINT_LEN + 1];

	assert_int_equal(eb_jose_thumbprint(jwk, strlen(jwk), out), 0);
	assert_string_equal(out, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
	assert_int_equal(
	    eb_jose_thumbprint("{\"kty\":\"oct\",\"k\":\"AA\"}", 23, out), -1);
}

/* ---- RSA tokens from OpenSSL ------------------------------------------- */

static void
test_rs256_and_ps256(void **state)
{
	char *jwk = rsa_jwk(rsa2048, "r1", ""), *doc = jwks_doc(jwk, NULL);
	struct eb_jose_jwks *jwks = parse_ok(doc);
	char *tok;
	json_t *claims = NULL;

	tok = rsa_token(rsa2048, "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
	                payload_txt, 0);
	assert_int_equal(verify(jwks, tok, 0, &claims), EB_JOSE_OK);
	assert_string_equal(json_string_value(json_object_get(claims, "sub")),
	                    "u");
	json_decref(claims);
	/* Signed by another RSA key under the same kid. */
	eb_free(tok);
	tok = rsa_token(rsa2048b, "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
	                payload_txt, 0);
	assert_int_equal(verify(jwks, tok, 0, NULL), EB_JOSE_ERR_BAD_SIGNATURE);
	eb_free(tok);

	tok = rsa_token(rsa2048, "{\"alg\":\"PS256\",\"kid\":\"r1\"}",
	                payload_txt, 1);
	assert_int_equal(verify(jwks, tok, 0, NULL),
	                 EB_JOSE_ERR_ALG_NOT_ALLOWED);
	assert_int_equal(verify(jwks, tok, EB_JOSE_RS256 | EB_JOSE_PS256, NULL),
	                 EB_JOSE_OK);
	eb_free(tok);
	/* An RS256 signature relabelled PS256 does not pass. */
	tok = rsa_token(rsa2048, "{\"alg\":\"PS256\",\"kid\":\"r1\"}",
	                payload_txt, 0);
	assert_int_equal(verify(jwks, tok, EB_JOSE_ALGS_ALL, NULL),
	                 EB_JOSE_ERR_BAD_SIGNATURE);
	eb_free(tok);

	/* A payload that is not an object, validly signed. */
	tok = rsa_token(rsa2048, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", "[1,2]",
	                0);
	assert_int_equal(verify(jwks, tok, 0, NULL), EB_JOSE_ERR_BAD_PAYLOAD);
	eb_free(tok);
	tok = rsa_token(rsa2048, "{\"alg\":\"RS256\",\"kid\":\"r1\"}",
	                "{\"a\":1,\"a\":2}", 0);
	assert_int_equal(verify(jwks, tok, 0, NULL), EB_JOSE_ERR_BAD_PAYLOAD);
	eb_free(tok);
	/* crit: we understand no extension. */
	tok = rsa_token(
	    rsa2048,
	    "{\"alg\":\"RS256\",\"kid\":\"r1\",\"crit\":[\"exp\"],\"exp\":1}",
	    payload_txt, 0);
	assert_int_equal(verify(jwks, tok, 0, NULL), EB_JOSE_ERR_CRIT);
	eb_free(tok);
	tok = rsa_token(rsa2048,
	                "{\"alg\":\"RS256\",\"kid\":\"r1\",\"b64\":false,"
	                "\"crit\":[\"b64\"]}",
	                payload_txt, 0);
	assert_int_equal(verify(jwks, tok, 0, NULL), EB_JOSE_ERR_CRIT);
	eb_free(tok);

	eb_jose_jwks_release(jwks);
	eb_free(doc);
	eb_free(jwk);
}

/* ---- hostile headers ------------------------------------------------- */

static void
test_alg_none_and_hs256(void **state)
{
	char *jwk = rsa_jwk(rsa2048, "r1", ""), *doc = jwks_doc(jwk, NULL);
	struct eb_jose_jwks *jwks = parse_ok(doc);
	unsigned char mac[32];
	unsigned int maclen = 0;
	char *tok, *h, *p;
	struct eb_buf b;
	static const char *algs[] = {"none",  "None",   "HS256",
	                             "HS384", "HS512",  "RSA1_5",
	                             "",      "ES256K", "EdDSA"};
	size_t i;

	tok = raw_token("{\"alg\":\"none\"}", payload_txt, "", 0);
	assert_int_equal(verify(jwks, tok, EB_JOSE_ALGS_ALL, NULL),
	                 EB_JOSE_ERR_ALG_NOT_ALLOWED);
	eb_free(tok);
	tok =
	    raw_token("{\"alg\":\"none\",\"kid\":\"r1\"}", payload_txt, "", 0);
	assert_int_equal(verify(jwks, tok, 0, NULL),
	                 EB_JOSE_ERR_ALG_NOT_ALLOWED);
	eb_free(tok);
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		assert_int_equal(eb_jose_alg_from_name(algs[i]), 0);

	/* HS256 keyed with the RSA public key (the classic confusion). */
	h = b64("{\"alg\":\"HS256\",\"kid\":\"r1\"}", 27);
	p = b64(payload_txt, strlen(payload_txt));
	eb_buf_init(&b, 1 << 16);
	eb_buf_printf(&b, "%s.%s", h, p);
	HMAC(EVP_sha256(), jwk, (int)strlen(jwk), (unsigned char *)b.data,
	     b.len, mac, &maclen);
	tok = raw_token("{\"alg\":\"HS256\",\"kid\":\"r1\"}", payload_txt, mac,
	                maclen);
	assert_int_equal(verify(jwks, tok, EB_JOSE_ALGS_ALL, NULL),
	                 EB_JOSE_ERR_ALG_NOT_ALLOWED);
	eb_free(tok);
	/* alg must be a string; missing alg. */
	tok = raw_token("{\"alg\":[\"RS256\"],\"kid\":\"r1\"}", payload_txt,
	                mac, 32);
	assert_int_equal(verify(jwks, tok, 0, NULL), EB_JOSE_ERR_BAD_HEADER);
	eb_free(tok);
	tok = raw_token("{\"kid\":\"r1\"}", payload_txt, mac, 32);
	assert_int_equal(verify(jwks, tok, 0, NULL), EB_JOSE_ERR_BAD_HEADER);
	eb_free(tok);
	tok = raw_token("{\"alg\":\"RS256\",\"kid\":7}", payload_txt, mac, 32);
	assert_int_equal(verify(jwks, tok, 0, NULL), EB_JOSE_ERR_BAD_HEADER);
	eb_free(tok);

	eb_buf_finish(&b);
	eb_free(h);
	eb_free(p);
	eb_jose_jwks_release(jwks);
	eb_free(doc);
	eb_free(jwk);
}

/*
 * alg and key type disagree: refused before cjose_jws_verify (which would
 * over-read). Signatures have the length the *wrong* key would expect, so
 * only the kty check stands between the token and cjose.
 */
static void
test_alg_kty_mismatch(void **state)
{
	char *rj = rsa_jwk(rsa2048, "r1", ""),
	     *ej = eb_jose_key_public_json(ec1);
	char *doc = jwks_doc(rj, ej, NULL), *tok, hdr[512];
	struct eb_jose_jwks *jwks = parse_ok(doc), *only_rsa;
	uint8_t sig[512];
	json_t *claims = sample_claims();
	char *rdoc;

	RAND_bytes(sig, sizeof(sig));
	assert_int_equal(eb_jose_jwks_count(jwks), 2);
	/* ES256 naming the RSA key, 64- and 256-byte signatures. */
	tok = raw_token("{\"alg\":\"ES256\",\"kid\":\"r1\"}", payload_txt, sig,
	                64);
	assert_int_equal(verify(jwks, tok, 0, NULL), EB_JOSE_ERR_KTY_MISMATCH);
	eb_free(tok);
	tok = raw_token("{\"alg\":\"ES256\",\"kid\":\"r1\"}", payload_txt, sig,
	                256);
	assert_int_equal(verify(jwks, tok, 0, NULL), EB_JOSE_ERR_KTY_MISMATCH);
	eb_free(tok);
	/* RS256 and PS256 naming the EC key. */
	snprintf(hdr, sizeof(hdr), "{\"alg\":\"RS256\",\"kid\":\"%s\"}",
	         eb_jose_key_kid(ec1));
	tok = raw_token(hdr, payload_txt, sig, 256);
	assert_int_equal(verify(jwks, tok, 0, NULL), EB_JOSE_ERR_KTY_MISMATCH);
	eb_free(tok);
	tok = raw_token(hdr, payload_txt, sig, 64);
	assert_int_equal(verify(jwks, tok, 0, NULL), EB_JOSE_ERR_KTY_MISMATCH);
	eb_free(tok);
	snprintf(hdr, sizeof(hdr), "{\"alg\":\"PS256\",\"kid\":\"%s\"}",
	         eb_jose_key_kid(ec1));
	tok = raw_token(hdr, payload_txt, sig, 64);
	assert_int_equal(verify(jwks, tok, EB_JOSE_ALGS_ALL, NULL),
	                 EB_JOSE_ERR_KTY_MISMATCH);
	eb_free(tok);
	/* ES384 naming a P-256 key: right kty, wrong curve. */
	snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES384\",\"kid\":\"%s\"}",
	         eb_jose_key_kid(ec1));
	tok = raw_token(hdr, payload_txt, sig, 96);
	assert_int_equal(verify(jwks, tok, EB_JOSE_ALGS_ALL, NULL),
	                 EB_JOSE_ERR_KTY_MISMATCH);
	eb_free(tok);
	tok = raw_token(hdr, payload_txt, sig, 64);
	assert_int_equal(verify(jwks, tok, EB_JOSE_ALGS_ALL, NULL),
	                 EB_JOSE_ERR_KTY_MISMATCH);
	eb_free(tok);
	/* A real ES256 token, no kid, against an RSA-only JWKS. */
	rdoc = jwks_doc(rj, NULL);
	only_rsa = parse_ok(rdoc);
	tok = raw_token("{\"alg\":\"ES256\"}", payload_txt, sig, 64);
	assert_int_equal(verify(only_rsa, tok, 0, NULL),
	                 EB_JOSE_ERR_KTY_MISMATCH);
	eb_free(tok);
	/* A JWK "alg" restricts the key: RS256-only key, PS256 token. */
	eb_jose_jwks_release(only_rsa);
	eb_free(rdoc);
	eb_free(rj);
	rj = rsa_jwk(rsa2048, "r1", ",\"alg\":\"RS256\"");
	rdoc = jwks_doc(rj, NULL);
	only_rsa = parse_ok(rdoc);
	tok = rsa_token(rsa2048, "{\"alg\":\"PS256\",\"kid\":\"r1\"}",
	                payload_txt, 1);
	assert_int_equal(verify(only_rsa, tok, EB_JOSE_ALGS_ALL, NULL),
	                 EB_JOSE_ERR_KTY_MISMATCH);
	eb_free(tok);

	eb_jose_jwks_release(only_rsa);
	eb_free(rdoc);
	json_decref(claims);
	eb_jose_jwks_release(jwks);
	eb_free(doc);
	eb_free(rj);
	eb_free(ej);
}

static void
test_kid_selection(void **state)
{
	char *e1 = eb_jose_key_public_json(ec1),
	     *e2 = eb_jose_key_public_json(ec2);
	char *rj = rsa_jwk(rsa2048, NULL, ""), *tok, *doc;
	struct eb_jose_jwks *jwks;
	json_t *claims = sample_claims();
	json_t *j1 = json_loads(e1, 0, NULL);

	/* Unknown kid: the caller may refresh its JWKS. */
	doc = jwks_doc(e1, rj, NULL);
	jwks = parse_ok(doc);
	tok = eb_jose_key_sign(ec2, NULL, claims);
	assert_int_equal(verify(jwks, tok, 0, NULL), EB_JOSE_ERR_UNKNOWN_KID);
	assert_false(eb_jose_jwks_has_kid(jwks, eb_jose_key_kid(ec2)));
	eb_free(tok);
	eb_jose_jwks_release(jwks);
	eb_free(doc);
	{
		/* Kid-less RS256 token; the only RSA key fits (EC does not). */
		char *e1nokid, *t2;
		struct eb_jose_jwks *j2;

		json_object_del(j1, "kid");
		e1nokid = json_dumps(j1, JSON_COMPACT);
		doc = jwks_doc(e1nokid, rj, NULL);
		j2 = parse_ok(doc);
		tok = rsa_token(rsa2048, "{\"alg\":\"RS256\"}", payload_txt, 0);
		assert_int_equal(verify(j2, tok, 0, NULL), EB_JOSE_OK);
		eb_free(tok);
		/* A kid-less RS256 token against two RSA keys: ambiguous. */
		eb_jose_jwks_release(j2);
		eb_free(doc);
		t2 = rsa_jwk(rsa2048b, "other", "");
		doc = jwks_doc(rj, t2, NULL);
		j2 = parse_ok(doc);
		tok = rsa_token(rsa2048, "{\"alg\":\"RS256\"}", payload_txt, 0);
		assert_int_equal(verify(j2, tok, 0, NULL), EB_JOSE_ERR_NO_KEY);
		eb_free(tok);
		eb_jose_jwks_release(j2);
		eb_free(doc);
		eb_free(t2);
		free(e1nokid);
	}
	/* Two EC keys, token without kid: refused, even if one would verify. */
	doc = jwks_doc(e1, e2, NULL);
	jwks = parse_ok(doc);
	{
		char *full = eb_jose_key_sign(ec1, NULL, claims);
		char *dot1 = strchr(full, '.');
		char *h = b64("{\"alg\":\"ES256\"}", 15);
		struct eb_buf b;

		eb_buf_init(&b, 1 << 16);
		eb_buf_printf(&b, "%s%s", h, dot1);
		assert_int_equal(verify(jwks, b.data, 0, NULL),
		                 EB_JOSE_ERR_NO_KEY);
		eb_buf_finish(&b);
		eb_free(h);
		eb_free(full);
	}
	/* Empty key set. */
	eb_jose_jwks_release(jwks);
	eb_free(doc);
	jwks = parse_ok("{\"keys\":[]}");
	tok = eb_jose_key_sign(ec1, NULL, claims);
	assert_int_equal(verify(jwks, tok, 0, NULL), EB_JOSE_ERR_UNKNOWN_KID);
	assert_int_equal(verify(NULL, tok, 0, NULL), EB_JOSE_ERR_NO_KEY);
	eb_free(tok);
	eb_jose_jwks_release(jwks);

	json_decref(j1);
	json_decref(claims);
	eb_free(e1);
	eb_free(e2);
	eb_free(rj);
}

/* Replace the part-th (0..2) part of tok with s. */
static char *
with_part(const char *tok, int part, const char *s)
{
	const char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
	struct eb_buf b;

	eb_buf_init(&b, 1 << 20);
	if (part == 0)
		eb_buf_printf(&b, "%s%s", s, d1);
	else if (part == 1)
		eb_buf_printf(&b, "%.*s.%s%s", (int)(d1 - tok), tok, s, d2);
	else
		eb_buf_printf(&b, "%.*s.%s", (int)(d2 - tok), tok, s);
	return eb_buf_detach(&b, NULL);
}

static void
test_malformed_and_tampered(void **state)
{
	char *pub = eb_jose_key_public_json(ec1), *doc = jwks_doc(pub, NULL);
	struct eb_jose_jwks *jwks = parse_ok(doc);
	json_t *claims = sample_claims(), *deep, *cur;
	char *tok = eb_jose_key_sign(ec1, "at+jwt", claims), *t, *p;
	const char *d2 = strrchr(tok, '.');
	size_t len = strlen(tok), i;
	struct eb_buf b;
	static const struct {
		const char *tok;
		enum eb_jose_err err;
	} junk[] = {
	    {"", EB_JOSE_ERR_BAD_FORMAT},
	    {".", EB_JOSE_ERR_BAD_FORMAT},
	    {"..", EB_JOSE_ERR_BAD_FORMAT},
	    {"...", EB_JOSE_ERR_BAD_FORMAT},
	    {"a.b", EB_JOSE_ERR_BAD_FORMAT},
	    {"a.b.c.d", EB_JOSE_ERR_BAD_FORMAT},
	    {"eyJhbGciOiJFUzI1NiJ9", EB_JOSE_ERR_BAD_FORMAT},
	    {"eyJhbGciOiJFUzI1NiJ9..", EB_JOSE_ERR_BAD_FORMAT},
	    /* {"alg":"ES256"}.{}. : no kid, one key, empty signature */
	    {"eyJhbGciOiJFUzI1NiJ9.e30.", EB_JOSE_ERR_BAD_SIGNATURE},
	    {".e30.AAAA", EB_JOSE_ERR_BAD_FORMAT},
	    {"e30.e30.AAAA", EB_JOSE_ERR_BAD_HEADER},    /* {} */
	    {"W10.e30.AAAA", EB_JOSE_ERR_BAD_FORMAT},    /* [] */
	    {"bnVsbA.e30.AAAA", EB_JOSE_ERR_BAD_FORMAT}, /* null */
	    {"eyJh.e30.AAAA", EB_JOSE_ERR_BAD_FORMAT},   /* {"a */
	};

	assert_int_equal(verify(jwks, tok, 0, NULL), EB_JOSE_OK);
	/* Tampered payload: a different, valid, base64url payload. */
	p = b64("{\"iss\":\"https://idp.example\",\"sub\":\"admin\"}", 43);
	t = with_part(tok, 1, p);
	assert_int_equal(verify(jwks, t, 0, NULL), EB_JOSE_ERR_BAD_SIGNATURE);
	eb_free(t);
	eb_free(p);
	/* Every signature character flipped in turn. */
	t = eb_strdup(tok);
	for (i = (size_t)(d2 - tok) + 1; i < len - 1; i++) {
		char c = t[i];

		t[i] = c == 'A' ? 'B' : 'A';
		assert_int_equal(verify(jwks, t, 0, NULL),
		                 EB_JOSE_ERR_BAD_SIGNATURE);
		t[i] = c;
	}
	/* Non-canonical last character of the signature. */
	t[len - 1] = t[len - 1] == 'A' ? 'B' : 'A';
	assert_true(verify(jwks, t, 0, NULL) != EB_JOSE_OK);
	eb_free(t);
	/* Truncations at every length. */
	for (i = 0; i < len; i++) {
		enum eb_jose_err e =
		    eb_jose_verify(jwks, tok, i, NULL, &cur, NULL);

		assert_true(e == EB_JOSE_ERR_BAD_FORMAT ||
		            e == EB_JOSE_ERR_BAD_SIGNATURE);
		assert_null(cur);
	}
	/* Characters outside base64url, anywhere. */
	t = eb_strdup(tok);
	for (i = 0; i < len; i += 7) {
		static const char bad[] = "+/= \n\"%\x80";
		char c = t[i];

		if (c == '.')
			continue;
		t[i] = bad[i % (sizeof(bad) - 1)];
		assert_int_equal(verify(jwks, t, 0, NULL),
		                 EB_JOSE_ERR_BAD_FORMAT);
		t[i] = c;
	}
	eb_free(t);
	/* Padding appended. */
	eb_buf_init(&b, 1 << 20);
	eb_buf_printf(&b, "%s=", tok);
	assert_int_equal(verify(jwks, b.data, 0, NULL), EB_JOSE_ERR_BAD_FORMAT);
	eb_buf_reset(&b);
	/* A fourth part. */
	eb_buf_printf(&b, "%s.%s", tok, d2 + 1);
	assert_int_equal(verify(jwks, b.data, 0, NULL), EB_JOSE_ERR_BAD_FORMAT);
	eb_buf_reset(&b);
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		assert_int_equal(
		    verify(jwks, junk[i].tok, EB_JOSE_ALGS_ALL, NULL),
		    junk[i].err);
	/* A huge token, and the caller's own smaller limit. */
	while (b.len < EB_JOSE_MAX_TOKEN + 10)
		eb_buf_addstr(&b, "AAAAAAAA");
	memcpy(b.data, tok, len);
	assert_int_equal(verify(jwks, b.data, 0, NULL), EB_JOSE_ERR_TOO_LARGE);
	{
		struct eb_jose_verify_opts o = {.max_len = 64};

		assert_int_equal(eb_jose_verify(jwks, tok, len, &o, &cur, NULL),
		                 EB_JOSE_ERR_TOO_LARGE);
	}
	eb_buf_finish(&b);
	/* Deeply nested claims, validly signed: refused after verify. */
	deep = json_object();
	cur = deep;
	for (i = 0; i < 40; i++) {
		json_t *n = json_object();

		json_object_set_new(cur, "a", n);
		cur = n;
	}
	t = eb_jose_key_sign(ec1, NULL, deep);
	assert_int_equal(verify(jwks, t, 0, NULL), EB_JOSE_ERR_BAD_PAYLOAD);
	eb_free(t);
	json_decref(deep);

	eb_free(tok);
	json_decref(claims);
	eb_jose_jwks_release(jwks);
	eb_free(doc);
	eb_free(pub);
}

/* ---- JWKS --------------------------------------------------------------- */

static void
test_jwks_limits(void **state)
{
	enum eb_jose_err err;
	char *pub = eb_jose_key_public_json(ec1);
	struct eb_jose_jwks *jwks;
	struct eb_buf b;
	int i;

	/* 65 keys against the default limit of 64: refused as a whole. */
	eb_buf_init(&b, 4 << 20);
	eb_buf_addstr(&b, "{\"keys\":[");
	for (i = 0; i < 65; i++)
		eb_buf_printf(&b, "%s%s", i ? "," : "", pub);
	eb_buf_addstr(&b, "]}");
	assert_null(eb_jose_jwks_parse(b.data, b.len, 0, &err));
	assert_int_equal(err, EB_JOSE_ERR_TOO_MANY_KEYS);
	assert_null(eb_jose_jwks_parse(b.data, b.len, 64, &err));
	assert_int_equal(err, EB_JOSE_ERR_TOO_MANY_KEYS);
	jwks = eb_jose_jwks_parse(b.data, b.len, 65, &err);
	assert_non_null(jwks);
	assert_int_equal(eb_jose_jwks_count(jwks), 65);
	eb_jose_jwks_release(jwks);
	/* Even unusable entries count toward the limit. */
	eb_buf_reset(&b);
	eb_buf_addstr(&b, "{\"keys\":[{},{},{}]}");
	assert_null(eb_jose_jwks_parse(b.data, b.len, 2, &err));
	assert_int_equal(err, EB_JOSE_ERR_TOO_MANY_KEYS);
	jwks = eb_jose_jwks_parse(b.data, b.len, 3, &err);
	assert_int_equal(eb_jose_jwks_count(jwks), 0);
	eb_jose_jwks_release(jwks);
	/* Over the document size limit. */
	eb_buf_finish(&b);
	eb_buf_init(&b, 4 << 20);
	eb_buf_addstr(&b, "{\"keys\":[],\"x\":\"");
	while (b.len < EB_JOSE_MAX_JWKS + 1)
		eb_buf_addstr(&b, "xxxxxxxxxxxxxxxx");
	eb_buf_addstr(&b, "\"}");
	assert_null(eb_jose_jwks_parse(b.data, b.len, 0, &err));
	assert_int_equal(err, EB_JOSE_ERR_TOO_LARGE);
	eb_buf_finish(&b);
	eb_free(pub);
}

static void
test_jwks_skips_and_malformed(void **state)
{
	enum eb_jose_err err;
	char *weak = rsa_jwk(rsa1024, "weak", ""),
	     *good = rsa_jwk(rsa2048, "good", "");
	char *enc = rsa_jwk(rsa2048b, "enc", ",\"use\":\"enc\"");
	char *oaep = rsa_jwk(rsa2048b, "oaep", ",\"alg\":\"RSA-OAEP\"");
	char *ops = rsa_jwk(rsa2048b, "ops", ",\"key_ops\":[\"encrypt\"]");
	char *doc, *tok;
	struct eb_jose_jwks *jwks;
	static const char *bad[] = {
	    "",
	    "{",
	    "[]",
	    "null",
	    "{\"keys\":{}}",
	    "{\"keys\":null}",
	    "{}",
	    "{\"keys\":[]}x",
	    "{\"keys\":[],\"keys\":[]}",
	    "\xff\xfe",
	    "{\"keys\":[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]}"};
	size_t i;

	/* A 1024-bit RSA key is skipped; the good key stays. */
	doc = jwks_doc(
	    weak, good, enc, oaep, ops,
	    "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"kid\":\"hmac\"}",
	    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"offcurve\","
	    "\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
	    "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\"}",
	    "{\"kty\":\"EC\",\"crv\":\"secp256k1\",\"kid\":\"k1\","
	    "\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
	    "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\"}",
	    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed\",\"x\":\"AA\"}",
	    "{\"kty\":\"RSA\",\"kid\":\"nomod\",\"e\":\"AQAB\"}",
	    "\"just a string\"", "42", NULL);
	jwks = parse_ok(doc);
	assert_int_equal(eb_jose_jwks_count(jwks), 1);
	assert_true(eb_jose_jwks_has_kid(jwks, "good"));
	assert_false(eb_jose_jwks_has_kid(jwks, "weak"));
	assert_false(eb_jose_jwks_has_kid(jwks, "hmac"));
	assert_false(eb_jose_jwks_has_kid(jwks, "offcurve"));
	/* A token signed by the weak key names an unknown kid. */
	tok = rsa_token(rsa1024, "{\"alg\":\"RS256\",\"kid\":\"weak\"}",
	                payload_txt, 0);
	assert_int_equal(verify(jwks, tok, 0, NULL), EB_JOSE_ERR_UNKNOWN_KID);
	eb_free(tok);
	/* Reference counting. */
	assert_ptr_equal(eb_jose_jwks_retain(jwks), jwks);
	eb_jose_jwks_release(jwks);
	eb_jose_jwks_release(jwks);
	eb_jose_jwks_release(NULL);
	eb_free(doc);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = EB_JOSE_OK;
		assert_null(
		    eb_jose_jwks_parse(bad[i], strlen(bad[i]), 0, &err));
		assert_int_equal(err, EB_JOSE_ERR_BAD_JWKS);
	}
	eb_free(weak);
	eb_free(good);
	eb_free(enc);
	eb_free(oaep);
	eb_free(ops);
}

/* Fail each allocation in turn: no crash, no leak (ASan), clean errors. */
static void
test_alloc_failures(void **state)
{
	char *pub = eb_jose_key_public_json(ec1), *doc = jwks_doc(pub, NULL);
	json_t *claims = sample_claims(), *c;
	char *tok = eb_jose_key_sign(ec1, NULL, claims);
	struct eb_jose_jwks *jwks, *ok = parse_ok(doc);
	enum eb_jose_err err;
	long n, total;

	eb_mem_fail_after(-1);
	jwks = eb_jose_jwks_parse(doc, strlen(doc), 0, &err);
	total = eb_mem_fail_after(-1);
	eb_jose_jwks_release(jwks);
	for (n = 0; n < total; n++) {
		eb_mem_fail_after(n);
		jwks = eb_jose_jwks_parse(doc, strlen(doc), 0, &err);
		eb_mem_fail_after(-1);
		assert_true(jwks != NULL || err != EB_JOSE_OK);
		eb_jose_jwks_release(jwks);
	}
	eb_mem_fail_after(-1);
	err = eb_jose_verify(ok, tok, strlen(tok), NULL, &c, NULL);
	total = eb_mem_fail_after(-1);
	json_decref(c);
	for (n = 0; n < total; n++) {
		eb_mem_fail_after(n);
		err = eb_jose_verify(ok, tok, strlen(tok), NULL, &c, NULL);
		eb_mem_fail_after(-1);
		assert_true((err == EB_JOSE_OK) == (c != NULL));
		json_decref(c);
	}
	eb_jose_jwks_release(ok);
	eb_free(tok);
	json_decref(claims);
	eb_free(doc);
	eb_free(pub);
}

static void
test_names(void **state)
{
	int i, j;

	for (i = EB_JOSE_OK; i <= EB_JOSE_ERR_INTERNAL; i++) {
		assert_string_not_equal(eb_jose_strerror(i), "unknown");
		for (j = 0; j < i; j++)
			assert_string_not_equal(eb_jose_strerror(i),
			                        eb_jose_strerror(j));
	}
	assert_string_equal(eb_jose_strerror(EB_JOSE_ERR_UNKNOWN_KID),
	                    "unknown_kid");
	assert_string_equal(eb_jose_strerror(999), "unknown");
	assert_int_equal(eb_jose_alg_from_name("ES384"), EB_JOSE_ES384);
	assert_string_equal(eb_jose_alg_name(EB_JOSE_PS256), "PS256");
	assert_null(eb_jose_alg_name(EB_JOSE_RS256 | EB_JOSE_ES256));
}

/* ---- seal --------------------------------------------------------------- */

static void
test_seal(void **state)
{
	uint8_t key[32], key2[32], *blob, *pt;
	size_t bloblen, ptlen, i;
	static const char secret[] = "upstream-refresh-token-0123456789";

	RAND_bytes(key, sizeof(key));
	memcpy(key2, key, sizeof(key));
	key2[31] ^= 1;
	assert_int_equal(eb_seal_seal(key, "grant-1", 7, secret,
	                              sizeof(secret) - 1, &blob, &bloblen),
	                 0);
	assert_int_equal(bloblen, sizeof(secret) - 1 + EB_SEAL_OVERHEAD);
	assert_int_equal(blob[0], EB_SEAL_VERSION);
	for (i = 0; i + 8 <= bloblen; i++)
		assert_true(memcmp(blob + i, "upstream", 8) != 0);
	assert_int_equal(
	    eb_seal_open(key, "grant-1", 7, blob, bloblen, &pt, &ptlen), 0);
	assert_int_equal(ptlen, sizeof(secret) - 1);
	assert_string_equal((char *)pt, secret);
	eb_free_secret(pt, ptlen + 1);

	/* Wrong associated data: another row, or none. */
	assert_int_equal(
	    eb_seal_open(key, "grant-2", 7, blob, bloblen, &pt, &ptlen), -1);
	assert_null(pt);
	assert_int_equal(eb_seal_open(key, NULL, 0, blob, bloblen, &pt, &ptlen),
	                 -1);
	/* Wrong key. */
	assert_int_equal(
	    eb_seal_open(key2, "grant-1", 7, blob, bloblen, &pt, &ptlen), -1);
	/* Any altered bit, including the version byte. */
	for (i = 0; i < bloblen; i++) {
		blob[i] ^= 0x20;
		assert_int_equal(
		    eb_seal_open(key, "grant-1", 7, blob, bloblen, &pt, &ptlen),
		    -1);
		blob[i] ^= 0x20;
	}
	/* Truncated. */
	for (i = 0; i < bloblen; i++)
		assert_int_equal(
		    eb_seal_open(key, "grant-1", 7, blob, i, &pt, &ptlen), -1);
	eb_free(blob);

	/* Two seals of the same text differ (random nonce). */
	{
		uint8_t *b1, *b2;
		size_t l1, l2;

		assert_int_equal(eb_seal_seal(key, NULL, 0, "x", 1, &b1, &l1),
		                 0);
		assert_int_equal(eb_seal_seal(key, NULL, 0, "x", 1, &b2, &l2),
		                 0);
		assert_int_equal(l1, l2);
		assert_memory_not_equal(b1, b2, l1);
		eb_free(b1);
		eb_free(b2);
	}
	/* Empty plaintext. */
	assert_int_equal(eb_seal_seal(key, "a", 1, "", 0, &blob, &bloblen), 0);
	assert_int_equal(bloblen, EB_SEAL_OVERHEAD);
	assert_int_equal(eb_seal_open(key, "a", 1, blob, bloblen, &pt, &ptlen),
	                 0);
	assert_int_equal(ptlen, 0);
	eb_free_secret(pt, 1);
	eb_free(blob);
}

/* A sealed private key round trip, the way the signer stores it. */
static void
test_sealed_private_key(void **state)
{
	uint8_t key[32], *blob, *pt;
	size_t len, bloblen, ptlen;
	char *priv = eb_jose_key_private_json(ec2, &len);
	struct eb_jose_key *k;
	enum eb_jose_err err;

	RAND_bytes(key, sizeof(key));
	assert_int_equal(eb_seal_seal(key, eb_jose_key_kid(ec2),
	                              strlen(eb_jose_key_kid(ec2)), priv, len,
	                              &blob, &bloblen),
	                 0);
	eb_free_secret(priv, len);
	assert_int_equal(eb_seal_open(key, eb_jose_key_kid(ec2),
	                              strlen(eb_jose_key_kid(ec2)), blob,
	                              bloblen, &pt, &ptlen),
	                 0);
	k = eb_jose_key_import((char *)pt, ptlen, &err);
	assert_non_null(k);
	assert_string_equal(eb_jose_key_kid(k), eb_jose_key_kid(ec2));
	eb_jose_key_destroy(k);
	eb_free_secret(pt, ptlen + 1);
	eb_free(blob);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_b64),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_thumbprint),
	    cmocka_unit_test(test_es256_round_trip),
	    cmocka_unit_test(test_es256_independent_verify),
	    cmocka_unit_test(test_key_export_import),
	    cmocka_unit_test(test_rs256_and_ps256),
	    cmocka_unit_test(test_alg_none_and_hs256),
	    cmocka_unit_test(test_alg_kty_mismatch),
	    cmocka_unit_test(test_kid_selection),
	    cmocka_unit_test(test_malformed_and_tampered),
	    cmocka_unit_test(test_jwks_limits),
	    cmocka_unit_test(test_jwks_skips_and_malformed),
	    cmocka_unit_test(test_alloc_failures),
	    cmocka_unit_test(test_seal),
	    cmocka_unit_test(test_sealed_private_key),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
