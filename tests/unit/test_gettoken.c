/*
 * Unit tests of the GetToken (com.apple.maid) answer: PEM key loading
 * (src/jose/pemkey.c), the claims and the plist around the JWT
 * (src/apple/gettoken.c). Keys are generated here with OpenSSL; each JWT
 * is checked the way Apple would: split, header read, signature verified
 * with the public key alone, claims compared exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "apple/gettoken.h"
#include "apple/plist.h"
#include "core/config.h"
#include "core/mem.h"
#include "jose/b64.h"
#include "jose/pemkey.h"

#define UUID "0123abcd-4567-89ef-0123-456789abcdef"

/* The PEM (PKCS#8) of pk. */
static char *
pem_of(EVP_PKEY *pk)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	assert_non_null(bio);
	assert_int_equal(
	    PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(bio, &data);
	assert_true(n > 0);
	/* a memory BIO's data is not NUL-terminated: copy exactly n bytes */
	out = malloc((size_t)n + 1);
	assert_non_null(out);
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	BIO_free(bio);
	return out;
}

/* Decode one base64url part into a fresh buffer (NUL-terminated). */
static uint8_t *
part(const char *s, size_t len, size_t *outlen)
{
	long n = eb_b64_url_decoded_len(len);
	uint8_t *out;

	assert_true(n >= 0);
	out = calloc(1, (size_t)n + 1);
	assert_non_null(out);
	n = eb_b64_url_decode_to(s, len, out);
	assert_true(n >= 0);
	*outlen = (size_t)n;
	return out;
}

/* Verify jwt with pk's public part; return its claims. */
static json_t *
verify(const char *jwt, EVP_PKEY *pk, const char *alg)
{
	const char *d1 = strchr(jwt, '.'), *d2;
	uint8_t *hdr, *payload, *sig, der[80], *p = der;
	size_t hl, pl, sl;
	EVP_MD_CTX *ctx;
	json_t *h, *claims;
	int derlen = 0;

	assert_non_null(d1);
	d2 = strchr(d1 + 1, '.');
	assert_non_null(d2);
	assert_null(strchr(d2 + 1, '.'));
	hdr = part(jwt, (size_t)(d1 - jwt), &hl);
	payload = part(d1 + 1, (size_t)(d2 - d1 - 1), &pl);
	sig = part(d2 + 1, strlen(d2 + 1), &sl);
	h = json_loads((char *)hdr, 0, NULL);
	assert_non_null(h);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), alg);
	assert_string_equal(json_string_value(json_object_get(h, "typ")),
	                    "JWT");
	json_decref(h);
	if (strcmp(alg, "ES256") == 0) {
		/* JWS r||s back to DER for OpenSSL */
		ECDSA_SIG *es = ECDSA_SIG_new();

		assert_int_equal(sl, 64);
		assert_int_equal(ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL),
		                                BN_bin2bn(sig + 32, 32, NULL)),
		                 1);
		derlen = i2d_ECDSA_SIG(es, &p);
		assert_true(derlen > 0);
		ECDSA_SIG_free(es);
	}
	ctx = EVP_MD_CTX_new();
	assert_int_equal(
	    EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pk), 1);
	assert_int_equal(EVP_DigestVerify(ctx, derlen ? der : sig,
	                                  derlen ? (size_t)derlen : sl,
	                                  (const uint8_t *)jwt,
	                                  (size_t)(d2 - jwt)),
	                 1);
	EVP_MD_CTX_free(ctx);
	claims = json_loads((char *)payload, 0, NULL);
	assert_non_null(claims);
	free(hdr);
	free(payload);
	free(sig);
	return claims;
}

/* eb_pemkey_verify_jwt: jwt passes with pk's public key, a changed
 * signature or payload does not. */
static void
check_ours(char *jwt, EVP_PKEY *pk)
{
	BIO *bio = BIO_new(BIO_s_mem());
	struct eb_pemkey *pub;
	const char *why = NULL;
	json_t *claims = NULL;
	char *data, *dot;
	size_t i;
	long n;

	assert_int_equal(PEM_write_bio_PUBKEY(bio, pk), 1);
	n = BIO_get_mem_data(bio, &data);
	pub = eb_pemkey_load_public(data, (size_t)n, &why);
	BIO_free(bio);
	assert_non_null(pub);
	assert_int_equal(eb_pemkey_verify_jwt(pub, jwt, &claims, &why), 0);
	assert_true(json_is_object(claims));
	json_decref(claims);
	i = strlen(jwt) - 3; /* inside the signature */
	jwt[i] = jwt[i] == 'A' ? 'B' : 'A';
	assert_int_equal(eb_pemkey_verify_jwt(pub, jwt, &claims, &why), -1);
	assert_null(claims);
	jwt[i] = jwt[i] == 'A' ? 'B' : 'A';
	dot = strchr(jwt, '.') + 2; /* inside the payload */
	*dot = *dot == 'A' ? 'B' : 'A';
	assert_int_equal(eb_pemkey_verify_jwt(pub, jwt, &claims, &why), -1);
	assert_string_equal(why, "bad signature");
	*dot = *dot == 'A' ? 'B' : 'A';
	assert_int_equal(eb_pemkey_verify_jwt(pub, "a.b", &claims, &why), -1);
	eb_pemkey_destroy(pub);
}

static void
check_claims(json_t *c, int64_t now)
{
	const char *jti = json_string_value(json_object_get(c, "jti"));

	assert_int_equal(json_object_size(c), 4);
	assert_string_equal(json_string_value(json_object_get(c, "iss")), UUID);
	assert_int_equal(json_integer_value(json_object_get(c, "iat")), now);
	assert_string_equal(
	    json_string_value(json_object_get(c, "service_type")),
	    "com.apple.maid");
	assert_non_null(jti);
	assert_int_equal(strlen(jti), 36);
	assert_int_equal(jti[14], '4'); /* version 4 */
}

/* The full answer for pk: plist, TokenData, signature, claims. */
static void
round_trip(EVP_PKEY *pk, const char *alg)
{
	struct eb_apple_business_config ab;
	char *pem = pem_of(pk), *jwt, jti1[37];
	const char *why = NULL;
	struct eb_plist *d;
	const uint8_t *td;
	uint8_t *xml;
	size_t len, tdlen;
	json_t *c;

	ab.server_uuid = (char *)UUID;
	ab.key = eb_pemkey_load(pem, strlen(pem), &why);
	assert_non_null(ab.key);
	assert_string_equal(eb_pemkey_alg(ab.key), alg);
	assert_int_equal(eb_gettoken_response(&ab, 1700000000, &xml, &len), 0);
	d = eb_plist_parse(xml, len, 0, 0, NULL, 0);
	assert_non_null(d);
	assert_int_equal(eb_plist_dict_size(d), 1);
	td = eb_plist_dict_get_data(d, "TokenData", &tdlen);
	assert_non_null(td);
	/* plist data is not NUL-terminated: copy exactly tdlen bytes */
	jwt = malloc(tdlen + 1);
	assert_non_null(jwt);
	memcpy(jwt, td, tdlen);
	jwt[tdlen] = '\0';
	c = verify(jwt, pk, alg);
	check_ours(jwt, pk);
	check_claims(c, 1700000000);
	snprintf(jti1, sizeof(jti1), "%s",
	         json_string_value(json_object_get(c, "jti")));
	json_decref(c);
	free(jwt);
	/* each token has its own jti */
	c = eb_gettoken_claims(UUID, 1);
	assert_string_not_equal(json_string_value(json_object_get(c, "jti")),
	                        jti1);
	json_decref(c);
	eb_plist_free(d);
	eb_free(xml);
	eb_pemkey_destroy(ab.key);
	free(pem);
}

static void
test_rsa(void **state)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);

	(void)state;
	assert_non_null(pk);
	round_trip(pk, "RS256");
	EVP_PKEY_free(pk);
}

static void
test_p256(void **state)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	(void)state;
	assert_non_null(pk);
	round_trip(pk, "ES256");
	EVP_PKEY_free(pk);
}

/* Keys we do not sign with are refused at load, with a reason. */
static void
refused(EVP_PKEY *pk, const char *reason)
{
	char *pem = pem_of(pk);
	const char *why = NULL;

	assert_null(eb_pemkey_load(pem, strlen(pem), &why));
	assert_non_null(why);
	assert_non_null(strstr(why, reason));
	free(pem);
	EVP_PKEY_free(pk);
}

static void
test_refused(void **state)
{
	const char *why = NULL;
	const char junk[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n"
	                    "-----END PRIVATE KEY-----\n";

	(void)state;
	refused(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"), "P-256");
	refused(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024),
	        "under 2048");
	refused(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), "unsupported");
	assert_null(eb_pemkey_load(junk, strlen(junk), &why));
	assert_non_null(strstr(why, "not a PEM private key"));
	assert_null(eb_pemkey_load("", 0, &why));
}

/* ServerCapabilities gains the token capability once. */
static void
test_capability(void **state)
{
	struct eb_plist *d = eb_plist_new_dict(), *a;

	(void)state;
	assert_int_equal(eb_plist_dict_add_string(d, "C", "x"), 0);
	assert_int_equal(eb_plist_dict_add_string(d, "C", "y"), 0);
	assert_int_equal(eb_plist_dict_add_string(d, "C", "x"), 0);
	a = eb_plist_dict_get_array(d, "C");
	assert_int_equal(eb_plist_array_size(a), 2);
	assert_string_equal(eb_plist_string(eb_plist_array_get(a, 1), NULL),
	                    "y");
	assert_int_equal(eb_plist_dict_set_string(d, "S", "s"), 0);
	assert_int_equal(eb_plist_dict_add_string(d, "S", "x"), -1);
	eb_plist_free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rsa),
	    cmocka_unit_test(test_p256),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_capability),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
