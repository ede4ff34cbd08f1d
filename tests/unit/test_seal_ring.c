/*
 * Unit tests of the seal key ring (src/jose/seal.c, eb_seal_ring_*): the
 * first key seals and every key opens, version 1 blobs made by eb_seal_seal
 * still open under a ring, and a blob altered in any byte, bound to other
 * associated data, or sealed under a key the ring lacks is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

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

/* Open blob under r with ad "grant-1"; the key index or -1. */
static long
try_open(const struct eb_seal_ring *r, const uint8_t *blob, size_t len)
{
	uint8_t *pt;
	size_t ptlen, which = 99;

	if (eb_seal_ring_open(r, "grant-1", 7, blob, len, &pt, &ptlen,
	                      &which) != 0) {
		assert_null(pt);
		return -1;
	}
	assert_int_equal(ptlen, strlen(secret));
	assert_memory_equal(pt, secret, ptlen);
	assert_int_equal(pt[ptlen], '\0');
	eb_free_secret(pt, ptlen + 1);
	return (long)which;
}

static void
test_round_trip(void **state)
{
	uint8_t a[EB_SEAL_KEY_LEN], *blob;
	struct eb_seal_ring *r;
	size_t len;

	(void)state;
	fill(a, 1);
	r = ring(a, NULL);
	assert_int_equal(eb_seal_ring_count(r), 1);
	assert_memory_equal(eb_seal_ring_first(r), a, EB_SEAL_KEY_LEN);
	assert_int_equal(eb_seal_ring_seal(r, "grant-1", 7, secret,
	                                   strlen(secret), &blob, &len),
	                 0);
	assert_int_equal(len, strlen(secret) + EB_SEAL_OVERHEAD2);
	assert_int_equal(blob[0], EB_SEAL_VERSION2);
	assert_int_equal(try_open(r, blob, len), 0);
	eb_free(blob);
	eb_seal_ring_free(r);
}

static void
test_second_key_opens(void **state)
{
	uint8_t a[EB_SEAL_KEY_LEN], b[EB_SEAL_KEY_LEN], *blob;
	struct eb_seal_ring *rb, *rab, *ra;
	size_t len;

	(void)state;
	fill(a, 1);
	fill(b, 100);
	rb = ring(b, NULL);
	rab = ring(a, b);
	ra = ring(a, NULL);
	assert_int_equal(eb_seal_ring_seal(rb, "grant-1", 7, secret,
	                                   strlen(secret), &blob, &len),
	                 0);
	assert_int_equal(try_open(rab, blob, len), 1);
	/* a ring without B fails closed */
	assert_int_equal(try_open(ra, blob, len), -1);
	eb_free(blob);
	/* [A, B] seals under A: opens with [A] alone, not with [B] */
	assert_int_equal(eb_seal_ring_seal(rab, "grant-1", 7, secret,
	                                   strlen(secret), &blob, &len),
	                 0);
	assert_int_equal(try_open(ra, blob, len), 0);
	assert_int_equal(try_open(rb, blob, len), -1);
	eb_free(blob);
	eb_seal_ring_free(ra);
	eb_seal_ring_free(rab);
	eb_seal_ring_free(rb);
}

static void
test_every_byte_changed(void **state)
{
	uint8_t a[EB_SEAL_KEY_LEN], b[EB_SEAL_KEY_LEN], *blob;
	struct eb_seal_ring *r;
	size_t len, i;
	int bit;

	(void)state;
	fill(a, 1);
	fill(b, 100);
	r = ring(a, b);
	assert_int_equal(eb_seal_ring_seal(r, "grant-1", 7, secret,
	                                   strlen(secret), &blob, &len),
	                 0);
	for (i = 0; i < len; i++)
		for (bit = 0; bit < 8; bit++) {
			blob[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(try_open(r, blob, len), -1);
			blob[i] ^= (uint8_t)(1u << bit);
		}
	/* truncated or empty blobs */
	for (i = 0; i < len; i++)
		assert_int_equal(try_open(r, blob, i), -1);
	assert_int_equal(try_open(r, blob, len), 0);
	eb_free(blob);
	eb_seal_ring_free(r);
}

static void
test_v1_blob_opens(void **state)
{
	uint8_t a[EB_SEAL_KEY_LEN], b[EB_SEAL_KEY_LEN], *blob;
	struct eb_seal_ring *rba, *rb;
	size_t len;

	(void)state;
	fill(a, 1);
	fill(b, 100);
	/* a blob stored before rings existed, under the old key A */
	assert_int_equal(
	    eb_seal_seal(a, "grant-1", 7, secret, strlen(secret), &blob, &len),
	    0);
	assert_int_equal(blob[0], EB_SEAL_VERSION);
	rba = ring(b, a);
	rb = ring(b, NULL);
	assert_int_equal(try_open(rba, blob, len), 1);
	assert_int_equal(try_open(rb, blob, len), -1);
	/* a v1 blob relabelled as v2 does not open */
	blob[0] = EB_SEAL_VERSION2;
	assert_int_equal(try_open(rba, blob, len), -1);
	eb_free(blob);
	eb_seal_ring_free(rba);
	eb_seal_ring_free(rb);
}

static void
test_wrong_ad(void **state)
{
	uint8_t a[EB_SEAL_KEY_LEN], *blob, *pt;
	struct eb_seal_ring *r;
	size_t len, ptlen;

	(void)state;
	fill(a, 1);
	r = ring(a, NULL);
	assert_int_equal(eb_seal_ring_seal(r, "grant-1", 7, secret,
	                                   strlen(secret), &blob, &len),
	                 0);
	assert_int_equal(
	    eb_seal_ring_open(r, "grant-2", 7, blob, len, &pt, &ptlen, NULL),
	    -1);
	assert_null(pt);
	assert_int_equal(
	    eb_seal_ring_open(r, NULL, 0, blob, len, &pt, &ptlen, NULL), -1);
	assert_int_equal(
	    eb_seal_ring_open(r, "grant-1", 6, blob, len, &pt, &ptlen, NULL),
	    -1);
	eb_free(blob);
	eb_seal_ring_free(r);
}

/* A ring of one key opens what eb_seal_seal made with that key, and
 * eb_seal_open with that key opens nothing else a ring makes: both are
 * interchangeable for existing v1 data, and the ring adds only the id. */
static void
test_ring_of_one(void **state)
{
	uint8_t a[EB_SEAL_KEY_LEN], b[EB_SEAL_KEY_LEN], *blob, *pt;
	struct eb_seal_ring *r, *empty;
	size_t len, ptlen;

	(void)state;
	fill(a, 1);
	fill(b, 100);
	r = ring(a, NULL);
	assert_int_equal(
	    eb_seal_seal(a, NULL, 0, secret, strlen(secret), &blob, &len), 0);
	assert_int_equal(
	    eb_seal_ring_open(r, NULL, 0, blob, len, &pt, &ptlen, NULL), 0);
	assert_memory_equal(pt, secret, ptlen);
	eb_free_secret(pt, ptlen + 1);
	eb_free(blob);
	/* an empty ring neither seals nor opens */
	empty = ring(NULL, NULL);
	assert_int_equal(eb_seal_ring_seal(empty, NULL, 0, secret,
	                                   strlen(secret), &blob, &len),
	                 -1);
	assert_null(blob);
	assert_null(eb_seal_ring_first(empty));
	eb_seal_ring_free(empty);
	eb_seal_ring_free(r);
	eb_seal_ring_free(NULL);
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
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_second_key_opens),
	    cmocka_unit_test(test_every_byte_changed),
	    cmocka_unit_test(test_v1_blob_opens),
	    cmocka_unit_test(test_wrong_ad),
	    cmocka_unit_test(test_ring_of_one),
	    cmocka_unit_test(test_ring_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
