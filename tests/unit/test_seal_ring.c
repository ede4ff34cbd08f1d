/*
 * Unit tests of the seal key ring (src/jose/seal.c, eb_seal_ring_*): the
 * first key seals, under its purpose subkey (version 3), and every key
 * opens; version 2 blobs (a ring key itself) and version 1 blobs (made by
 * eb_seal_seal) still open under a ring, for any purpose. A table goes
 * through every version, key and purpose: a blob opens only under a ring
 * holding its key, a version 3 blob only for its purpose, and "stale" says
 * which want re-sealing. A blob altered in any bit, truncated, relabelled
 * as another version, bound to other associated data, or sealed under a key
 * the ring lacks is refused. Version 2 and 3 blobs are also built here by
 * hand from the layout seal.h documents, so the format cannot drift.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "core/mem.h"
#include "jose/seal.h"

static const char secret[] = "upstream-refresh-token-0123456789";

static void
fill(uint8_t key[EB_SEAL_KEY_LEN], uint8_t v)
{
	size_t i;

	for (i = 0; i < EB_SEAL_KEY_LEN; i++)
		key[i] = (uint8_t)(v + i);
}

static struct eb_seal_ring *
ring(const uint8_t *a, const uint8_t *b)
{
	struct eb_seal_ring *r = eb_seal_ring_new();

	assert_non_null(r);
	if (a != NULL)
		assert_int_equal(eb_seal_ring_add(r, a), 0);
	if (b != NULL)
		assert_int_equal(eb_seal_ring_add(r, b), 0);
	return r;
}

/*
 * Open blob under r for purpose with ad "grant-1": -1 when it does not
 * open, else its staleness (0 current, 1 wants re-sealing).
 */
static int
try_open(const struct eb_seal_ring *r, int purpose, const uint8_t *blob,
         size_t len)
{
	uint8_t *pt;
	size_t ptlen;
	int stale = 99;

	if (eb_seal_ring_open(r, purpose, "grant-1", 7, blob, len, &pt, &ptlen,
	                      &stale) != 0) {
		assert_null(pt);
		return -1;
	}
	assert_int_equal(ptlen, strlen(secret));
	assert_memory_equal(pt, secret, ptlen);
	assert_int_equal(pt[ptlen], '\0');
	eb_free_secret(pt, ptlen + 1);
	assert_true(stale == 0 || stale == 1);
	return stale;
}

/* HKDF-SHA256(key, no salt, "enrollbridge seal v3 " name), as seal.h says. */
static void
derive(const uint8_t key[EB_SEAL_KEY_LEN], const char *name,
       uint8_t out[EB_SEAL_KEY_LEN])
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	char info[64];
	size_t len = EB_SEAL_KEY_LEN;

	snprintf(info, sizeof(info), "enrollbridge seal v3 %s", name);
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_derive_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_CTX_set1_hkdf_key(ctx, key, EB_SEAL_KEY_LEN),
	                 1);
	assert_int_equal(
	    EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)info,
	                                (int)strlen(info)),
	    1);
	assert_int_equal(EVP_PKEY_derive(ctx, out, &len), 1);
	assert_int_equal(len, EB_SEAL_KEY_LEN);
	EVP_PKEY_CTX_free(ctx);
}

/*
 * A version 2 or 3 blob built by hand: version | first 4 bytes of
 * SHA-256(ring_key) | nonce | AES-256-GCM(enc_key, ad = header | "grant-1")
 * of the secret | tag. *len gets its length; eb_free it.
 */
static uint8_t *
by_hand(uint8_t version, const uint8_t ring_key[EB_SEAL_KEY_LEN],
        const uint8_t enc_key[EB_SEAL_KEY_LEN], size_t *len)
{
	size_t n = strlen(secret), hdr = 1 + EB_SEAL_KEYID_LEN;
	uint8_t md[SHA256_DIGEST_LENGTH], *b;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int out;

	*len = hdr + EB_SEAL_NONCE_LEN + n + EB_SEAL_TAG_LEN;
	assert_non_null(b = eb_malloc(*len));
	assert_non_null(SHA256(ring_key, EB_SEAL_KEY_LEN, md));
	b[0] = version;
	memcpy(b + 1, md, EB_SEAL_KEYID_LEN);
	assert_int_equal(RAND_bytes(b + hdr, EB_SEAL_NONCE_LEN), 1);
	assert_non_null(ctx);
	assert_int_equal(
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, enc_key, b + hdr),
	    1);
	assert_int_equal(EVP_EncryptUpdate(ctx, NULL, &out, b, (int)hdr), 1);
	assert_int_equal(
	    EVP_EncryptUpdate(ctx, NULL, &out, (const uint8_t *)"grant-1", 7),
	    1);
	assert_int_equal(EVP_EncryptUpdate(ctx, b + hdr + EB_SEAL_NONCE_LEN,
	                                   &out, (const uint8_t *)secret,
	                                   (int)n),
	                 1);
	assert_int_equal(
	    EVP_EncryptFinal_ex(ctx, b + hdr + EB_SEAL_NONCE_LEN + n, &out), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG,
	                                     EB_SEAL_TAG_LEN,
	                                     b + hdr + EB_SEAL_NONCE_LEN + n),
	                 1);
	EVP_CIPHER_CTX_free(ctx);
	return b;
}

static uint8_t key_a[EB_SEAL_KEY_LEN], key_b[EB_SEAL_KEY_LEN];

/* A blob of version v under key (A or B), for purpose (version 3). */
static uint8_t *
make(int v, const uint8_t *key, int purpose, size_t *len)
{
	struct eb_seal_ring *r;
	uint8_t *blob = NULL;

	switch (v) {
	case 1:
		assert_int_equal(eb_seal_seal(key, "grant-1", 7, secret,
		                              strlen(secret), &blob, len),
		                 0);
		break;
	case 2:
		blob = by_hand(EB_SEAL_VERSION2, key, key, len);
		break;
	case 3:
		r = ring(key, NULL);
		assert_int_equal(eb_seal_ring_seal(r, purpose, "grant-1", 7,
		                                   secret, strlen(secret),
		                                   &blob, len),
		                 0);
		eb_seal_ring_free(r);
		break;
	default:
		fail();
	}
	assert_int_equal(blob[0], v);
	return blob;
}

enum { RING_A, RING_B, RING_AB, RING_BA };

static const char *const ring_names[] = {"[A]", "[B]", "[A, B]", "[B, A]"};

/* Every version, key and purpose: -1 refused, else the staleness. */
static const struct row {
	int version;
	int by_b; /* sealed under B rather than A */
	int seal_purpose;
	int ring;
	int open_purpose;
	int want;
} rows[] = {
    /* version 3: its key, its purpose */
    {3, 0, EB_SEAL_AT_REST, RING_A, EB_SEAL_AT_REST, 0},
    {3, 0, EB_SEAL_FLOW, RING_A, EB_SEAL_FLOW, 0},
    {3, 0, EB_SEAL_AT_REST, RING_AB, EB_SEAL_AT_REST, 0},
    {3, 0, EB_SEAL_AT_REST, RING_BA, EB_SEAL_AT_REST, 1},
    {3, 1, EB_SEAL_FLOW, RING_BA, EB_SEAL_FLOW, 0},
    {3, 0, EB_SEAL_FLOW, RING_BA, EB_SEAL_FLOW, 1},
    /* wrong purpose */
    {3, 0, EB_SEAL_AT_REST, RING_A, EB_SEAL_FLOW, -1},
    {3, 0, EB_SEAL_FLOW, RING_A, EB_SEAL_AT_REST, -1},
    {3, 0, EB_SEAL_FLOW, RING_BA, EB_SEAL_AT_REST, -1},
    /* wrong key */
    {3, 0, EB_SEAL_AT_REST, RING_B, EB_SEAL_AT_REST, -1},
    {3, 1, EB_SEAL_FLOW, RING_A, EB_SEAL_FLOW, -1},
    /* version 2: the raw key, whatever the purpose; always stale */
    {2, 0, 0, RING_A, EB_SEAL_AT_REST, 1},
    {2, 0, 0, RING_A, EB_SEAL_FLOW, 1},
    {2, 0, 0, RING_BA, EB_SEAL_AT_REST, 1},
    {2, 0, 0, RING_B, EB_SEAL_AT_REST, -1},
    {2, 1, 0, RING_A, EB_SEAL_FLOW, -1},
    /* version 1: every raw key in turn; always stale */
    {1, 0, 0, RING_A, EB_SEAL_AT_REST, 1},
    {1, 0, 0, RING_A, EB_SEAL_FLOW, 1},
    {1, 0, 0, RING_BA, EB_SEAL_AT_REST, 1},
    {1, 1, 0, RING_AB, EB_SEAL_FLOW, 1},
    {1, 0, 0, RING_B, EB_SEAL_AT_REST, -1},
};

static void
test_table(void **state)
{
	struct eb_seal_ring *rings[4];
	uint8_t *blob;
	size_t i, len;
	int got;

	(void)state;
	rings[RING_A] = ring(key_a, NULL);
	rings[RING_B] = ring(key_b, NULL);
	rings[RING_AB] = ring(key_a, key_b);
	rings[RING_BA] = ring(key_b, key_a);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *w = &rows[i];

		blob = make(w->version, w->by_b ? key_b : key_a,
		            w->seal_purpose, &len);
		got = try_open(rings[w->ring], w->open_purpose, blob, len);
		if (got != w->want)
			fail_msg("row %zu: v%d by %s opened by %s: %d, want %d",
			         i, w->version, w->by_b ? "B" : "A",
			         ring_names[w->ring], got, w->want);
		eb_free(blob);
	}
	for (i = 0; i < 4; i++)
		eb_seal_ring_free(rings[i]);
}

/* The layout seal.h documents: a hand-made version 3 blob opens, and the
 * ring's own is as long as it says. */
static void
test_v3_layout(void **state)
{
	uint8_t sub[EB_SEAL_KEY_LEN], *blob;
	struct eb_seal_ring *r = ring(key_a, NULL);
	size_t len;

	(void)state;
	derive(key_a, "at-rest", sub);
	blob = by_hand(EB_SEAL_VERSION3, key_a, sub, &len);
	assert_int_equal(try_open(r, EB_SEAL_AT_REST, blob, len), 0);
	assert_int_equal(try_open(r, EB_SEAL_FLOW, blob, len), -1);
	eb_free(blob);
	derive(key_a, "flow", sub);
	blob = by_hand(EB_SEAL_VERSION3, key_a, sub, &len);
	assert_int_equal(try_open(r, EB_SEAL_FLOW, blob, len), 0);
	eb_free(blob);
	blob = make(3, key_a, EB_SEAL_AT_REST, &len);
	assert_int_equal(len, strlen(secret) + EB_SEAL_OVERHEAD3);
	assert_memory_equal(eb_seal_ring_first(r), key_a, EB_SEAL_KEY_LEN);
	eb_free(blob);
	eb_seal_ring_free(r);
}

/* Every version: any flipped bit, any truncation, another version byte. */
static void
test_altered(void **state)
{
	struct eb_seal_ring *r = ring(key_b, key_a);
	uint8_t *blob, v;
	size_t len, i;
	int version, bit;

	(void)state;
	for (version = 1; version <= 3; version++) {
		blob = make(version, key_a, EB_SEAL_AT_REST, &len);
		assert_int_equal(try_open(r, EB_SEAL_AT_REST, blob, len), 1);
		for (i = 0; i < len; i++)
			for (bit = 0; bit < 8; bit++) {
				blob[i] ^= (uint8_t)(1u << bit);
				assert_int_equal(
				    try_open(r, EB_SEAL_AT_REST, blob, len),
				    -1);
				blob[i] ^= (uint8_t)(1u << bit);
			}
		for (i = 0; i < len; i++)
			assert_int_equal(try_open(r, EB_SEAL_AT_REST, blob, i),
			                 -1);
		/* relabelled as any other version, known or not */
		for (v = 0; v < 8; v++) {
			if (v == version)
				continue;
			blob[0] = v;
			assert_int_equal(
			    try_open(r, EB_SEAL_AT_REST, blob, len), -1);
		}
		blob[0] = (uint8_t)version;
		assert_int_equal(try_open(r, EB_SEAL_AT_REST, blob, len), 1);
		eb_free(blob);
	}
	eb_seal_ring_free(r);
}

static void
test_wrong_ad(void **state)
{
	struct eb_seal_ring *r = ring(key_a, NULL);
	uint8_t *blob, *pt;
	size_t len, ptlen;

	(void)state;
	assert_int_equal(eb_seal_ring_seal(r, EB_SEAL_AT_REST, "grant-1", 7,
	                                   secret, strlen(secret), &blob, &len),
	                 0);
	assert_int_equal(eb_seal_ring_open(r, EB_SEAL_AT_REST, "grant-2", 7,
	                                   blob, len, &pt, &ptlen, NULL),
	                 -1);
	assert_null(pt);
	assert_int_equal(eb_seal_ring_open(r, EB_SEAL_AT_REST, NULL, 0, blob,
	                                   len, &pt, &ptlen, NULL),
	                 -1);
	assert_int_equal(eb_seal_ring_open(r, EB_SEAL_AT_REST, "grant-1", 6,
	                                   blob, len, &pt, &ptlen, NULL),
	                 -1);
	eb_free(blob);
	eb_seal_ring_free(r);
}

/* Unknown purposes neither seal nor open; an empty ring does neither. */
static void
test_refused_args(void **state)
{
	struct eb_seal_ring *r = ring(key_a, NULL), *empty = ring(NULL, NULL);
	uint8_t *blob, *pt;
	size_t len, ptlen;

	(void)state;
	assert_int_equal(eb_seal_ring_seal(r, EB_SEAL_PURPOSES, NULL, 0, secret,
	                                   strlen(secret), &blob, &len),
	                 -1);
	assert_null(blob);
	assert_int_equal(eb_seal_ring_seal(r, -1, NULL, 0, secret,
	                                   strlen(secret), &blob, &len),
	                 -1);
	assert_int_equal(eb_seal_ring_seal(r, EB_SEAL_FLOW, NULL, 0, secret,
	                                   strlen(secret), &blob, &len),
	                 0);
	assert_int_equal(eb_seal_ring_open(r, EB_SEAL_PURPOSES, NULL, 0, blob,
	                                   len, &pt, &ptlen, NULL),
	                 -1);
	assert_int_equal(eb_seal_ring_open(empty, EB_SEAL_FLOW, NULL, 0, blob,
	                                   len, &pt, &ptlen, NULL),
	                 -1);
	assert_int_equal(eb_seal_ring_open(r, EB_SEAL_FLOW, NULL, 0, blob, len,
	                                   &pt, &ptlen, NULL),
	                 0);
	eb_free_secret(pt, ptlen + 1);
	eb_free(blob);
	assert_int_equal(eb_seal_ring_seal(empty, EB_SEAL_FLOW, NULL, 0, secret,
	                                   strlen(secret), &blob, &len),
	                 -1);
	assert_null(blob);
	assert_null(eb_seal_ring_first(empty));
	eb_seal_ring_free(empty);
	eb_seal_ring_free(r);
	eb_seal_ring_free(NULL);
}

/* A copy seals and opens as the original. */
static void
test_dup(void **state)
{
	struct eb_seal_ring *r = ring(key_b, key_a), *c;
	uint8_t *blob;
	size_t len;

	(void)state;
	assert_non_null(c = eb_seal_ring_dup(r));
	assert_int_equal(eb_seal_ring_count(c), 2);
	assert_int_equal(eb_seal_ring_seal(c, EB_SEAL_AT_REST, "grant-1", 7,
	                                   secret, strlen(secret), &blob, &len),
	                 0);
	assert_int_equal(try_open(r, EB_SEAL_AT_REST, blob, len), 0);
	eb_free(blob);
	eb_seal_ring_free(c);
	eb_seal_ring_free(r);
}

static void
test_ring_full(void **state)
{
	uint8_t k[EB_SEAL_KEY_LEN];
	struct eb_seal_ring *r = ring(NULL, NULL);
	size_t i;

	(void)state;
	for (i = 0; i < EB_SEAL_RING_MAX; i++) {
		fill(k, (uint8_t)i);
		assert_int_equal(eb_seal_ring_add(r, k), 0);
	}
	assert_int_equal(eb_seal_ring_add(r, k), -1);
	assert_int_equal(eb_seal_ring_count(r), EB_SEAL_RING_MAX);
	eb_seal_ring_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_v3_layout),
	    cmocka_unit_test(test_altered),
	    cmocka_unit_test(test_wrong_ad),
	    cmocka_unit_test(test_refused_args),
	    cmocka_unit_test(test_dup),
	    cmocka_unit_test(test_ring_full),
	};

	fill(key_a, 1);
	fill(key_b, 100);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
