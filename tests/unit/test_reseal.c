/*
 * The store operations behind `enrollbridge reseal` (store.h, "re-sealing"),
 * against each backend in `backends` (SQLite for now; PostgreSQL adds a
 * line once it implements them), in a fresh mkdtemp folder:
 * - grant_list_sealed pages through exactly the grants holding an upstream
 *   refresh token, in id order, whatever their status;
 * - grant_reseal and key_reseal swap a sealed value only while it is still
 *   the one that was read: a renewal that stored a newer upstream token in
 *   between makes it CONFLICT and is never undone; nothing else of the row
 *   changes; of concurrent swaps from the same old value exactly one wins;
 * - bad arguments and a backend without the operations fail cleanly.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store.h"

static const struct {
	const char *name;
	const struct eb_store_ops *ops;
} backends[] = {
    {"sqlite", &eb_store_sqlite_ops},
};
static const struct eb_store_ops *ops; /* the backend under test */

#define T0 1700000000

static const uint8_t OLD[] = {3, 0xa1, 0, 7, 9};
static const uint8_t NEW[] = {3, 0xb2, 0, 7, 9, 11};
static const uint8_t RENEWED[] = {3, 0xb2, 1, 1};

struct fx {
	char dir[256];
	char path[320];
	struct eb_store *s;
};

static int
rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	const char *base = getenv("EB_BINARY_DIR");
	char err[512];

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "%s/reseal-test-XXXXXX",
	         base ? base : "/tmp");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/eb.db", fx->dir);
	if ((fx->s = eb_store_open(ops, fx->path, err, sizeof(err))) == NULL) {
		print_error("open: %s\n", err);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	eb_store_close(fx->s);
	nftw(fx->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* An active grant id, holding rt (rtlen bytes; NULL: none). */
static void
mk_grant(struct eb_store *s, const char *id, const uint8_t *rt, size_t rtlen)
{
	struct eb_store_grant g = {
	    .id = (char *)id,
	    .tenant = "acme",
	    .status = EB_STORE_GRANT_ACTIVE,
	    .auth_method = "apple-as-web",
	    .managed_apple_id = "alice@appleid.contoso.com",
	    .idp_issuer = "https://idp.example",
	    .idp_subject = "sub-alice",
	    .enrollment_mode = "BYOD",
	    .created = T0,
	    .updated = T0,
	    .upstream_refresh_token = (uint8_t *)(uintptr_t)rt,
	    .upstream_refresh_token_len = rtlen,
	    .upstream_renewed_at = T0,
	    .upstream_next_at = T0 + 3600,
	};

	assert_int_equal(eb_store_grant_create(s, &g), EB_STORE_OK);
}

static void
mk_key(struct eb_store *s, const char *kid, const char *tenant,
       const uint8_t *priv, size_t len)
{
	struct eb_store_key k = {.kid = (char *)kid,
	                         .tenant = (char *)tenant,
	                         .alg = "ES256",
	                         .created = T0,
	                         .public_jwk = "{\"kty\":\"EC\"}",
	                         .private_key = (uint8_t *)(uintptr_t)priv,
	                         .private_key_len = len};

	assert_int_equal(eb_store_key_put(s, &k), EB_STORE_OK);
}

/* 1 when grant id holds exactly v (len bytes), 0 otherwise. */
static int
grant_holds(struct eb_store *s, const char *id, const uint8_t *v, size_t len)
{
	struct eb_store_grant g;
	int same;

	assert_int_equal(eb_store_grant_get(s, id, &g), EB_STORE_OK);
	same = g.upstream_refresh_token_len == len &&
	       memcmp(g.upstream_refresh_token, v, len) == 0;
	eb_store_grant_finish(&g);
	return same;
}

static void
test_list_sealed_pages(void **state)
{
	struct fx *fx = *state;
	struct eb_store_grant_list l;
	const char *const with[] = {"g-a", "g-b", "g-d", "g-e", "g-f"};
	char after[64] = "";
	size_t seen = 0, i, pages = 0;

	/* out of order on purpose; g-c has none, g-z's is erased */
	mk_grant(fx->s, "g-e", OLD, sizeof(OLD));
	mk_grant(fx->s, "g-a", OLD, sizeof(OLD));
	mk_grant(fx->s, "g-c", NULL, 0);
	mk_grant(fx->s, "g-f", NEW, sizeof(NEW));
	mk_grant(fx->s, "g-b", OLD, sizeof(OLD));
	mk_grant(fx->s, "g-d", OLD, sizeof(OLD));
	mk_grant(fx->s, "g-z", OLD, sizeof(OLD));
	assert_int_equal(eb_store_grant_set_status(fx->s, "g-z",
	                                           EB_STORE_GRANT_REVOKED,
	                                           "test", T0 + 1),
	                 EB_STORE_OK);
	do {
		assert_int_equal(eb_store_grant_list_sealed(
		                     fx->s, pages == 0 ? NULL : after, 2, &l),
		                 EB_STORE_OK);
		assert_true(l.n <= 2);
		for (i = 0; i < l.n; i++, seen++) {
			assert_true(seen < 5);
			assert_string_equal(l.v[i].id, with[seen]);
			assert_non_null(l.v[i].upstream_refresh_token);
			assert_string_equal(l.v[i].tenant, "acme");
		}
		if (l.n > 0)
			snprintf(after, sizeof(after), "%s", l.v[l.n - 1].id);
		pages++;
		i = l.n;
		eb_store_grant_list_finish(&l);
	} while (i == 2);
	assert_int_equal(seen, 5);
	assert_int_equal(pages, 3);
	/* no limit, and "" as the start */
	assert_int_equal(eb_store_grant_list_sealed(fx->s, "", 0, &l),
	                 EB_STORE_OK);
	assert_int_equal(l.n, 5);
	assert_int_equal(l.v[4].upstream_refresh_token_len, sizeof(NEW));
	assert_memory_equal(l.v[4].upstream_refresh_token, NEW, sizeof(NEW));
	eb_store_grant_list_finish(&l);
	/* past the last */
	assert_int_equal(eb_store_grant_list_sealed(fx->s, "g-f", 10, &l),
	                 EB_STORE_OK);
	assert_int_equal(l.n, 0);
	eb_store_grant_list_finish(&l);
}

static void
test_grant_reseal_cas(void **state)
{
	struct fx *fx = *state;
	struct eb_store_upstream u;
	struct eb_store_grant g;
	uint64_t gen;

	mk_grant(fx->s, "g1", OLD, sizeof(OLD));
	gen = eb_store_generation();
	assert_int_equal(eb_store_grant_reseal(fx->s, "g1", OLD, sizeof(OLD),
	                                       NEW, sizeof(NEW)),
	                 EB_STORE_OK);
	assert_true(grant_holds(fx->s, "g1", NEW, sizeof(NEW)));
	/* nothing else changed, and the bearer cache need not hear of it */
	assert_int_equal(eb_store_generation(), gen);
	assert_int_equal(eb_store_grant_get(fx->s, "g1", &g), EB_STORE_OK);
	assert_int_equal(g.updated, T0);
	assert_int_equal(g.upstream_renewed_at, T0);
	assert_int_equal(g.upstream_next_at, T0 + 3600);
	assert_int_equal(g.status, EB_STORE_GRANT_ACTIVE);
	eb_store_grant_finish(&g);
	/* the old value again: it is no longer there */
	assert_int_equal(eb_store_grant_reseal(fx->s, "g1", OLD, sizeof(OLD),
	                                       NEW, sizeof(NEW)),
	                 EB_STORE_CONFLICT);
	/* byte for byte: a prefix or a longer value is another value */
	assert_int_equal(eb_store_grant_reseal(fx->s, "g1", NEW,
	                                       sizeof(NEW) - 1, OLD,
	                                       sizeof(OLD)),
	                 EB_STORE_CONFLICT);
	assert_true(grant_holds(fx->s, "g1", NEW, sizeof(NEW)));

	/* a renewal stores a newer token between the read and the swap */
	memset(&u, 0, sizeof(u));
	u.renewed_at = T0 + 60;
	u.next_at = T0 + 3660;
	u.refresh_token = RENEWED;
	u.refresh_token_len = sizeof(RENEWED);
	assert_int_equal(eb_store_grant_set_upstream(fx->s, "g1", &u, T0 + 60),
	                 EB_STORE_OK);
	assert_int_equal(eb_store_grant_reseal(fx->s, "g1", NEW, sizeof(NEW),
	                                       OLD, sizeof(OLD)),
	                 EB_STORE_CONFLICT);
	assert_true(grant_holds(fx->s, "g1", RENEWED, sizeof(RENEWED)));
	/* re-read and retry: the newer value is swapped */
	assert_int_equal(eb_store_grant_reseal(fx->s, "g1", RENEWED,
	                                       sizeof(RENEWED), NEW,
	                                       sizeof(NEW)),
	                 EB_STORE_OK);
	assert_true(grant_holds(fx->s, "g1", NEW, sizeof(NEW)));

	/* no such grant; a grant whose token was erased by its end */
	assert_int_equal(eb_store_grant_reseal(fx->s, "nope", NEW, sizeof(NEW),
	                                       OLD, sizeof(OLD)),
	                 EB_STORE_NOT_FOUND);
	assert_int_equal(eb_store_grant_set_status(fx->s, "g1",
	                                           EB_STORE_GRANT_REVOKED,
	                                           "test", T0 + 70),
	                 EB_STORE_OK);
	assert_int_equal(eb_store_grant_reseal(fx->s, "g1", NEW, sizeof(NEW),
	                                       OLD, sizeof(OLD)),
	                 EB_STORE_CONFLICT);
	assert_int_equal(eb_store_grant_get(fx->s, "g1", &g), EB_STORE_OK);
	assert_null(g.upstream_refresh_token);
	eb_store_grant_finish(&g);
}

static void
test_key_reseal_cas(void **state)
{
	struct fx *fx = *state;
	struct eb_store_key_list l;

	mk_key(fx->s, "k1", "", OLD, sizeof(OLD));
	mk_key(fx->s, "k2", "acme", OLD, sizeof(OLD));
	mk_key(fx->s, "k3", "", NULL, 0);
	assert_int_equal(eb_store_key_reseal(fx->s, "k2", OLD, sizeof(OLD), NEW,
	                                     sizeof(NEW)),
	                 EB_STORE_OK);
	assert_int_equal(eb_store_key_reseal(fx->s, "k2", OLD, sizeof(OLD), NEW,
	                                     sizeof(NEW)),
	                 EB_STORE_CONFLICT);
	assert_int_equal(eb_store_key_reseal(fx->s, "k3", OLD, sizeof(OLD), NEW,
	                                     sizeof(NEW)),
	                 EB_STORE_CONFLICT);
	assert_int_equal(eb_store_key_reseal(fx->s, "k9", OLD, sizeof(OLD), NEW,
	                                     sizeof(NEW)),
	                 EB_STORE_NOT_FOUND);
	/* the keyset to go through: every tenant's */
	assert_int_equal(eb_store_key_list(fx->s, NULL, &l), EB_STORE_OK);
	assert_int_equal(l.n, 3);
	for (size_t i = 0; i < l.n; i++) {
		if (strcmp(l.v[i].kid, "k2") == 0) {
			assert_int_equal(l.v[i].private_key_len, sizeof(NEW));
			assert_memory_equal(l.v[i].private_key, NEW,
			                    sizeof(NEW));
			assert_string_equal(l.v[i].public_jwk,
			                    "{\"kty\":\"EC\"}");
		} else if (strcmp(l.v[i].kid, "k1") == 0) {
			assert_int_equal(l.v[i].private_key_len, sizeof(OLD));
			assert_memory_equal(l.v[i].private_key, OLD,
			                    sizeof(OLD));
		} else
			assert_null(l.v[i].private_key);
	}
	eb_store_key_list_finish(&l);
}

static void
test_bad_arguments(void **state)
{
	struct fx *fx = *state;

	mk_grant(fx->s, "g1", OLD, sizeof(OLD));
	mk_key(fx->s, "k1", "", OLD, sizeof(OLD));
	assert_int_equal(
	    eb_store_grant_reseal(fx->s, "g1", NULL, 0, NEW, sizeof(NEW)),
	    EB_STORE_ERROR);
	assert_int_equal(
	    eb_store_grant_reseal(fx->s, "g1", OLD, sizeof(OLD), NEW, 0),
	    EB_STORE_ERROR);
	assert_int_equal(
	    eb_store_grant_reseal(fx->s, "g1", OLD, sizeof(OLD), NULL, 3),
	    EB_STORE_ERROR);
	assert_int_equal(eb_store_grant_reseal(fx->s, NULL, OLD, sizeof(OLD),
	                                       NEW, sizeof(NEW)),
	                 EB_STORE_ERROR);
	assert_int_equal(
	    eb_store_key_reseal(fx->s, "k1", OLD, 0, NEW, sizeof(NEW)),
	    EB_STORE_ERROR);
	assert_true(grant_holds(fx->s, "g1", OLD, sizeof(OLD)));
}

/* A backend without the operations: ERROR, never a crash. */
static int
stub_open(const char *target, void **bep, char *err, size_t errlen)
{
	(void)target;
	(void)err;
	(void)errlen;
	*bep = NULL;
	return 0;
}

static void
test_missing_ops(void **state)
{
	static const struct eb_store_ops stub = {.name = "stub",
	                                         .open = stub_open};
	struct eb_store_grant_list l;
	struct eb_store *s;

	(void)state;
	assert_non_null(s = eb_store_open(&stub, "x", NULL, 0));
	assert_int_equal(eb_store_grant_list_sealed(s, NULL, 10, &l),
	                 EB_STORE_ERROR);
	assert_int_equal(l.n, 0);
	assert_int_equal(
	    eb_store_grant_reseal(s, "g", OLD, sizeof(OLD), NEW, sizeof(NEW)),
	    EB_STORE_ERROR);
	assert_int_equal(
	    eb_store_key_reseal(s, "k", OLD, sizeof(OLD), NEW, sizeof(NEW)),
	    EB_STORE_ERROR);
	eb_store_close(s);
}

#define RACERS 6

struct racer {
	struct eb_store *s;
	pthread_barrier_t *go;
	uint8_t next[8];
	int rc;
};

static void *
race(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->go);
	r->rc = eb_store_grant_reseal(r->s, "g1", OLD, sizeof(OLD), r->next,
	                              sizeof(r->next));
	return NULL;
}

/* Threads (each on its own connection) swap from the same old value:
 * exactly one wins, and the stored value is the winner's. */
static void
test_concurrent_swaps(void **state)
{
	struct fx *fx = *state;
	struct racer r[RACERS];
	pthread_t th[RACERS];
	pthread_barrier_t go;
	int i, won = -1;

	mk_grant(fx->s, "g1", OLD, sizeof(OLD));
	assert_int_equal(pthread_barrier_init(&go, NULL, RACERS), 0);
	for (i = 0; i < RACERS; i++) {
		r[i].s = fx->s;
		r[i].go = &go;
		memset(r[i].next, 0x10 + i, sizeof(r[i].next));
		assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
	}
	for (i = 0; i < RACERS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	pthread_barrier_destroy(&go);
	for (i = 0; i < RACERS; i++) {
		if (r[i].rc == EB_STORE_OK) {
			assert_int_equal(won, -1);
			won = i;
		} else
			assert_int_equal(r[i].rc, EB_STORE_CONFLICT);
	}
	assert_int_not_equal(won, -1);
	assert_true(grant_holds(fx->s, "g1", r[won].next, sizeof(r[won].next)));
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_list_sealed_pages), T(test_grant_reseal_cas),
	    T(test_key_reseal_cas),    T(test_bad_arguments),
	    T(test_concurrent_swaps),  cmocka_unit_test(test_missing_ops),
	};
	size_t i;
	int failed = 0;

	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		ops = backends[i].ops;
		failed |= _cmocka_run_group_tests(
		    backends[i].name, tests, sizeof(tests) / sizeof(tests[0]),
		    NULL, NULL);
	}
	return failed;
}
