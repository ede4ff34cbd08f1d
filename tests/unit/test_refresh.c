/*
 * The refresh-token grace window (issue 11, finding 9): the shared rule
 * (grant/refresh.h) checked over every combination of its inputs
 * against the properties DESIGN.md states, plus a table of named cases; and
 * the SQLite backend applying it: a retry within the window gets the same
 * sealed successor and stores nothing new, the window's edges, a rotation
 * whose successor value was not kept, the sweep wiping kept successors, and
 * many threads presenting one token at once (exactly one rotates, the
 * others get its successor, the grant stays active).
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

#include "fx_dir.h"
#include "grant/refresh.h"
#include "store/store.h"

#define T0    1700000000
#define GRACE 30
#define H(c)  "000000000000000000000000000000000000000000000000000000000000000" c

/* ---- the pure rule ----------------------------------------------------- */

static int
decide(int found, int kind, int status, int64_t expires, int64_t rotated_at,
       int grant_active, int sealed, int sfound, int sstatus, int64_t sexp,
       int64_t now, int *why)
{
	struct eb_grant_refresh_token t = {
	    .found = found,
	    .kind = kind,
	    .status = status,
	    .expires = expires,
	    .rotated_at = rotated_at,
	    .grant_active = grant_active,
	    .has_sealed_successor = sealed,
	};
	struct eb_grant_refresh_successor s = {
	    .found = sfound,
	    .status = sstatus,
	    .expires = sexp,
	};

	return eb_grant_refresh_decide(&t, &s, now, GRACE, why);
}

/* Named cases: what a user of the token endpoint would see. */
static void
test_policy_table(void **state)
{
	const int64_t now = T0 + 1000;
	const int A = EB_STORE_TOKEN_ACTIVE, R = EB_STORE_TOKEN_ROTATED,
	          X = EB_STORE_TOKEN_REVOKED, RT = EB_STORE_TOKEN_REFRESH;
	static const struct {
		const char *what;
		int found, kind, status;
		int64_t expires, rotated_at;
		int grant_active, sealed, sfound, sstatus;
		int64_t sexp;
		int want, why;
	} c[] = {
	    {"active token rotates", 1, RT, A, now + 60, 0, 1, 0, 0, 0, 0,
	     EB_GRANT_REFRESH_ROTATE, EB_STORE_OK},
	    {"never-expiring active token rotates", 1, RT, A, 0, 0, 1, 0, 0, 0,
	     0, EB_GRANT_REFRESH_ROTATE, EB_STORE_OK},
	    {"unknown token", 0, RT, A, 0, 0, 1, 0, 0, 0, 0,
	     EB_GRANT_REFRESH_INVALID, EB_STORE_NOT_FOUND},
	    {"an access token is no refresh token", 1, EB_STORE_TOKEN_ACCESS, A,
	     0, 0, 1, 0, 0, 0, 0, EB_GRANT_REFRESH_INVALID, EB_STORE_NOT_FOUND},
	    {"expired at its expiry", 1, RT, A, now, 0, 1, 0, 0, 0, 0,
	     EB_GRANT_REFRESH_INVALID, EB_STORE_EXPIRED},
	    {"revoked token", 1, RT, X, 0, 0, 1, 0, 0, 0, 0,
	     EB_GRANT_REFRESH_INVALID, EB_STORE_REVOKED},
	    {"grant ended", 1, RT, A, 0, 0, 0, 0, 0, 0, 0,
	     EB_GRANT_REFRESH_INVALID, EB_STORE_REVOKED},
	    {"retry 10 s after rotation, successor unused", 1, RT, R, 0,
	     now - 10, 1, 1, 1, A, now + 600, EB_GRANT_REFRESH_RETURN_SUCCESSOR,
	     EB_STORE_OK},
	    {"retry at the window's last second", 1, RT, R, 0, now - GRACE, 1,
	     1, 1, A, 0, EB_GRANT_REFRESH_RETURN_SUCCESSOR, EB_STORE_OK},
	    {"one second after the window", 1, RT, R, 0, now - GRACE - 1, 1, 1,
	     1, A, 0, EB_GRANT_REFRESH_REVOKE_GRANT, EB_STORE_OK},
	    {"within the window, successor used", 1, RT, R, 0, now - 1, 1, 1, 1,
	     R, 0, EB_GRANT_REFRESH_REVOKE_GRANT, EB_STORE_OK},
	    {"within the window, successor revoked", 1, RT, R, 0, now - 1, 1, 1,
	     1, X, 0, EB_GRANT_REFRESH_REVOKE_GRANT, EB_STORE_OK},
	    {"within the window, successor gone", 1, RT, R, 0, now - 1, 1, 1, 0,
	     0, 0, EB_GRANT_REFRESH_REVOKE_GRANT, EB_STORE_OK},
	    {"within the window, successor value not kept", 1, RT, R, 0,
	     now - 1, 1, 0, 1, A, 0, EB_GRANT_REFRESH_REVOKE_GRANT,
	     EB_STORE_OK},
	    {"within the window, successor expired", 1, RT, R, 0, now - 1, 1, 1,
	     1, A, now, EB_GRANT_REFRESH_INVALID, EB_STORE_EXPIRED},
	    {"rotated in the future (clock stepped back)", 1, RT, R, 0, now + 5,
	     1, 1, 1, A, 0, EB_GRANT_REFRESH_REVOKE_GRANT, EB_STORE_OK},
	    {"an expired rotated token is still reuse", 1, RT, R, now - 500,
	     now - 900, 1, 1, 1, R, 0, EB_GRANT_REFRESH_REVOKE_GRANT,
	     EB_STORE_OK},
	    {"rotated, grant ended", 1, RT, R, 0, now - 1, 0, 1, 1, A, 0,
	     EB_GRANT_REFRESH_INVALID, EB_STORE_REVOKED},
	};
	size_t i;
	int why, d;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		d = decide(c[i].found, c[i].kind, c[i].status, c[i].expires,
		           c[i].rotated_at, c[i].grant_active, c[i].sealed,
		           c[i].sfound, c[i].sstatus, c[i].sexp, now, &why);
		if (d != c[i].want || why != c[i].why)
			fail_msg("%s: got %s (%d), want %s (%d)", c[i].what,
			         eb_grant_refresh_name(d), why,
			         eb_grant_refresh_name(c[i].want), c[i].why);
	}
	/* a rotated token without a successor record at all */
	{
		struct eb_grant_refresh_token t = {
		    .found = 1,
		    .kind = RT,
		    .status = R,
		    .rotated_at = now - 1,
		    .grant_active = 1,
		    .has_sealed_successor = 1,
		};

		assert_int_equal(
		    eb_grant_refresh_decide(&t, NULL, now, GRACE, NULL),
		    EB_GRANT_REFRESH_REVOKE_GRANT);
		assert_int_equal(
		    eb_grant_refresh_decide(NULL, NULL, now, GRACE, &why),
		    EB_GRANT_REFRESH_INVALID);
		assert_int_equal(why, EB_STORE_NOT_FOUND);
	}
	assert_string_equal(eb_grant_refresh_name(EB_GRANT_REFRESH_ROTATE),
	                    "rotate");
}

/*
 * Every combination of the inputs' classes, checked against the
 * properties of the contract rather than a copy of the code.
 */
static void
test_policy_exhaustive(void **state)
{
	const int64_t now = T0 + 1000;
	const int64_t texp[] = {0, now - 1, now, now + 1};
	const int64_t rot[] = {0,   now - GRACE - 1, now - GRACE, now - 1,
	                       now, now + 1};
	const int64_t sexp[] = {0, now, now + 1};
	const int kinds[] = {EB_STORE_TOKEN_ACCESS, EB_STORE_TOKEN_REFRESH,
	                     EB_STORE_TOKEN_WEB};
	const int statuses[] = {EB_STORE_TOKEN_ACTIVE, EB_STORE_TOKEN_ROTATED,
	                        EB_STORE_TOKEN_REVOKED};
	/* the classes of each input, in the order decoded below */
	const size_t radix[] = {2, 3, 3, 4, 6, 2, 2, 2, 3, 3};
	size_t seen[4] = {0, 0, 0, 0};
	size_t total = 1, n, v, x[10], i;
	int why, dec;

	(void)state;
	for (i = 0; i < 10; i++)
		total *= radix[i];
	for (n = 0; n < total; n++) {
		int found, kind, st, grant, sealed, sfound, sst, usable;
		int in_window, succ_live, succ_fresh;
		int64_t te, ro, se;

		for (v = n, i = 0; i < 10; i++) {
			x[i] = v % radix[i];
			v /= radix[i];
		}
		found = (int)x[0];
		kind = kinds[x[1]];
		st = statuses[x[2]];
		te = texp[x[3]];
		ro = rot[x[4]];
		grant = (int)x[5];
		sealed = (int)x[6];
		sfound = (int)x[7];
		sst = statuses[x[8]];
		se = sexp[x[9]];
		dec = decide(found, kind, st, te, ro, grant, sealed, sfound,
		             sst, se, now, &why);
		assert_true(dec >= EB_GRANT_REFRESH_ROTATE &&
		            dec <= EB_GRANT_REFRESH_INVALID);
		seen[dec]++;

		usable = found && kind == EB_STORE_TOKEN_REFRESH && grant;
		in_window = ro <= now && now - ro <= GRACE;
		succ_live = sfound && sst == EB_STORE_TOKEN_ACTIVE;
		succ_fresh = se == 0 || se > now;
		/* why is set, and says something only for a refusal */
		if (dec == EB_GRANT_REFRESH_INVALID)
			assert_true(why == EB_STORE_NOT_FOUND ||
			            why == EB_STORE_EXPIRED ||
			            why == EB_STORE_REVOKED);
		else
			assert_int_equal(why, EB_STORE_OK);
		/* nothing is done for an unknown token, a non-refresh token,
		 * a revoked one, or an ended grant */
		if (!usable || st == EB_STORE_TOKEN_REVOKED)
			assert_int_equal(dec, EB_GRANT_REFRESH_INVALID);
		/* an active token rotates exactly while unexpired */
		if (usable && st == EB_STORE_TOKEN_ACTIVE)
			assert_int_equal(dec, te == 0 || te > now
			                          ? EB_GRANT_REFRESH_ROTATE
			                          : EB_GRANT_REFRESH_INVALID);
		/* only an active token ever makes a new branch */
		if (dec == EB_GRANT_REFRESH_ROTATE)
			assert_int_equal(st, EB_STORE_TOKEN_ACTIVE);
		/* a rotated token: reuse outside the window, or once the
		 * successor was used, revoked or lost, ends the grant; a
		 * retry gets the same successor while it can be handed */
		if (usable && st == EB_STORE_TOKEN_ROTATED) {
			if (!in_window || !succ_live)
				assert_int_equal(dec,
				                 EB_GRANT_REFRESH_REVOKE_GRANT);
			else if (!succ_fresh)
				assert_int_equal(dec, EB_GRANT_REFRESH_INVALID);
			else if (!sealed)
				assert_int_equal(dec,
				                 EB_GRANT_REFRESH_REVOKE_GRANT);
			else
				assert_int_equal(
				    dec, EB_GRANT_REFRESH_RETURN_SUCCESSOR);
		}
		if (dec == EB_GRANT_REFRESH_RETURN_SUCCESSOR)
			assert_true(st == EB_STORE_TOKEN_ROTATED && in_window &&
			            succ_live && succ_fresh && sealed);
		if (dec == EB_GRANT_REFRESH_REVOKE_GRANT)
			assert_true(usable && st == EB_STORE_TOKEN_ROTATED);
	}
	assert_int_equal(total, 31104);
	/* every decision is reachable */
	for (i = 0; i < 4; i++)
		assert_true(seen[i] > 0);
}

/* ---- the SQLite backend applying it ------------------------------------ */

struct fx {
	char dir[256];
	char path[320];
	struct eb_store *s;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	const char *base = getenv("EB_BINARY_DIR");
	struct eb_store_grant g = {
	    .id = "g1",
	    .tenant = "acme",
	    .status = EB_STORE_GRANT_ACTIVE,
	    .auth_method = "apple-oauth2",
	    .client_id = "apple-device",
	    .managed_apple_id = "alice@appleid.contoso.com",
	    .enrollment_mode = "BYOD",
	    .created = T0,
	    .updated = T0,
	};
	char err[512];

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "%s/refresh-test-XXXXXX",
	         base ? base : "/tmp");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/eb.db", fx->dir);
	if ((fx->s = eb_store_open(NULL, fx->path, err, sizeof(err))) == NULL) {
		print_error("open: %s\n", err);
		return -1;
	}
	if (eb_store_grant_create(fx->s, &g) != EB_STORE_OK)
		return -1;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	eb_store_close(fx->s);
	fx_rmtree(fx->dir);
	free(fx);
	return 0;
}

static void
mk_refresh(struct eb_store_token *t, const char *hash)
{
	memset(t, 0, sizeof(*t));
	t->hash = (char *)hash;
	t->kind = EB_STORE_TOKEN_REFRESH;
	t->tenant = "acme";
	t->grant_id = "g1";
	t->client_id = "apple-device";
	t->created = T0;
	t->expires = T0 + 86400;
}

static int
grant_status(struct eb_store *s)
{
	struct eb_store_grant g;
	int st;

	assert_int_equal(eb_store_grant_get(s, "g1", &g), EB_STORE_OK);
	st = g.status;
	eb_store_grant_finish(&g);
	return st;
}

static int
exists(struct eb_store *s, const char *hash)
{
	struct eb_store_token t;
	int rc = eb_store_token_get(s, hash, &t);

	eb_store_token_finish(&t);
	assert_true(rc == EB_STORE_OK || rc == EB_STORE_NOT_FOUND);
	return rc == EB_STORE_OK;
}

/* R0 stored and rotated to R1 at T0, with R1's "sealed" value kept. */
static void
start_chain(struct fx *fx, const char *blob)
{
	struct eb_store_token t;

	mk_refresh(&t, H("0"));
	assert_int_equal(eb_store_token_put(fx->s, &t), EB_STORE_OK);
	mk_refresh(&t, H("1"));
	assert_int_equal(eb_store_token_rotate_refresh(
	                     fx->s, H("0"), &t, (const uint8_t *)blob,
	                     blob ? strlen(blob) : 0, NULL, T0, GRACE, NULL),
	                 EB_STORE_OK);
}

/* Present R0 again at now with a would-be successor R2. */
static int
present_r0(struct fx *fx, int64_t now, struct eb_store_token *old)
{
	struct eb_store_token n;

	mk_refresh(&n, H("2"));
	return eb_store_token_rotate_refresh(
	    fx->s, H("0"), &n, (const uint8_t *)"R2", 2, NULL, now, GRACE, old);
}

static void
test_retry_returns_same_successor(void **state)
{
	struct fx *fx = *state;
	struct eb_store_token old;
	int i;

	start_chain(fx, "sealed-R1");
	/* a device that keeps losing responses keeps getting R1 */
	for (i = 0; i < 5; i++) {
		assert_int_equal(present_r0(fx, T0 + GRACE, &old),
		                 EB_STORE_RETRY);
		assert_int_equal(old.successor_sealed_len, 9);
		assert_memory_equal(old.successor_sealed, "sealed-R1", 9);
		eb_store_token_finish(&old);
	}
	assert_false(exists(fx->s, H("2")));
	assert_int_equal(grant_status(fx->s), EB_STORE_GRANT_ACTIVE);
	/* R1 still works, once */
	{
		struct eb_store_token n;

		mk_refresh(&n, H("3"));
		assert_int_equal(
		    eb_store_token_rotate_refresh(fx->s, H("1"), &n, NULL, 0,
		                                  NULL, T0 + 31, GRACE, NULL),
		    EB_STORE_OK);
	}
}

static void
test_reuse_after_window(void **state)
{
	struct fx *fx = *state;
	struct eb_store_token old;

	start_chain(fx, "sealed-R1");
	assert_int_equal(present_r0(fx, T0 + GRACE + 1, &old), EB_STORE_REUSE);
	assert_null(old.successor_sealed);
	eb_store_token_finish(&old);
	assert_int_equal(grant_status(fx->s), EB_STORE_GRANT_REVOKED);
	assert_false(exists(fx->s, H("2")));
	/* and the device's R1 is dead with it */
	{
		struct eb_store_token n;

		mk_refresh(&n, H("3"));
		assert_int_equal(
		    eb_store_token_rotate_refresh(fx->s, H("1"), &n, NULL, 0,
		                                  NULL, T0 + 32, GRACE, NULL),
		    EB_STORE_REVOKED);
	}
}

/* The device rotated twice; a thief presents the first token. */
static void
test_thief_after_two_rotations(void **state)
{
	struct fx *fx = *state;
	struct eb_store_token n;

	start_chain(fx, "sealed-R1");
	mk_refresh(&n, H("3"));
	assert_int_equal(eb_store_token_rotate_refresh(
	                     fx->s, H("1"), &n, (const uint8_t *)"sealed-R3", 9,
	                     NULL, T0 + 2, GRACE, NULL),
	                 EB_STORE_OK);
	mk_refresh(&n, H("4"));
	assert_int_equal(eb_store_token_rotate_refresh(
	                     fx->s, H("3"), &n, (const uint8_t *)"sealed-R4", 9,
	                     NULL, T0 + 4, GRACE, NULL),
	                 EB_STORE_OK);
	/* within R0's window, but its successor was used */
	assert_int_equal(present_r0(fx, T0 + 5, NULL), EB_STORE_REUSE);
	assert_int_equal(grant_status(fx->s), EB_STORE_GRANT_REVOKED);
}

/* A rotation that kept no successor value cannot be retried: no branch. */
static void
test_retry_without_kept_value(void **state)
{
	struct fx *fx = *state;

	start_chain(fx, NULL);
	assert_int_equal(present_r0(fx, T0 + 1, NULL), EB_STORE_REUSE);
	assert_false(exists(fx->s, H("2")));
	assert_int_equal(grant_status(fx->s), EB_STORE_GRANT_REVOKED);
}

/* The sweep wipes a kept successor once its window is over. */
static void
test_sweep_wipes_successor(void **state)
{
	struct fx *fx = *state;

	start_chain(fx, "sealed-R1");
	/* the window's last second is still in it */
	assert_int_equal(eb_store_sweep(fx->s, T0 + GRACE, NULL), EB_STORE_OK);
	assert_int_equal(present_r0(fx, T0 + 1, NULL), EB_STORE_RETRY);
	assert_int_equal(eb_store_sweep(fx->s, T0 + GRACE + 1, NULL),
	                 EB_STORE_OK);
	/* (presented with an earlier clock, so only the wipe can refuse) */
	assert_int_equal(present_r0(fx, T0 + 1, NULL), EB_STORE_REUSE);
}

/* ---- concurrency ------------------------------------------------------- */

#define RACERS 8
#define ROUNDS 5

struct racer {
	struct eb_store *s;
	pthread_barrier_t *bar;
	const char *presented;
	char hash[EB_STORE_HASH_HEXLEN + 1];
	char blob[16];
	int rc;
	struct eb_store_token old;
};

static void *
racer_main(void *p)
{
	struct racer *r = p;
	struct eb_store_token n;

	mk_refresh(&n, r->hash);
	pthread_barrier_wait(r->bar);
	r->rc = eb_store_token_rotate_refresh(
	    r->s, r->presented, &n, (const uint8_t *)r->blob, strlen(r->blob),
	    NULL, T0 + 1, GRACE, &r->old);
	return NULL;
}

/* RACERS threads present one refresh token at the same moment, ROUNDS
 * times (a new token each round). */
static void
test_concurrent_presenters(void **state)
{
	struct fx *fx = *state;
	struct racer r[RACERS];
	pthread_t th[RACERS];
	pthread_barrier_t bar;
	struct eb_store_token t;
	char presented[EB_STORE_HASH_HEXLEN + 1];
	int i, round, winner, ok, retry;

	for (round = 0; round < ROUNDS; round++) {
		snprintf(presented, sizeof(presented), "a%063d", round);
		mk_refresh(&t, presented);
		assert_int_equal(eb_store_token_put(fx->s, &t), EB_STORE_OK);
		memset(r, 0, sizeof(r));
		assert_int_equal(pthread_barrier_init(&bar, NULL, RACERS), 0);
		for (i = 0; i < RACERS; i++) {
			r[i].s = fx->s;
			r[i].bar = &bar;
			r[i].presented = presented;
			snprintf(r[i].hash, sizeof(r[i].hash), "b%031d%032d",
			         round, i);
			snprintf(r[i].blob, sizeof(r[i].blob), "blob-%d-%d",
			         round, i);
			assert_int_equal(
			    pthread_create(&th[i], NULL, racer_main, &r[i]), 0);
		}
		for (i = 0; i < RACERS; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&bar);
		winner = -1;
		ok = retry = 0;
		for (i = 0; i < RACERS; i++) {
			if (r[i].rc == EB_STORE_OK) {
				ok++;
				winner = i;
			} else if (r[i].rc == EB_STORE_RETRY)
				retry++;
			else
				fail_msg("racer %d: %s", i,
				         eb_store_strerror(r[i].rc));
		}
		/* exactly one rotated; every other got the same successor */
		assert_int_equal(ok, 1);
		assert_int_equal(retry, RACERS - 1);
		for (i = 0; i < RACERS; i++) {
			if (i == winner)
				continue;
			assert_int_equal(r[i].old.successor_sealed_len,
			                 strlen(r[winner].blob));
			assert_memory_equal(r[i].old.successor_sealed,
			                    r[winner].blob,
			                    strlen(r[winner].blob));
		}
		/* one new branch only */
		for (i = 0; i < RACERS; i++) {
			assert_int_equal(exists(fx->s, r[i].hash), i == winner);
			eb_store_token_finish(&r[i].old);
		}
		assert_int_equal(grant_status(fx->s), EB_STORE_GRANT_ACTIVE);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_policy_table),
	    cmocka_unit_test(test_policy_exhaustive),
	    cmocka_unit_test_setup_teardown(test_retry_returns_same_successor,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reuse_after_window, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_thief_after_two_rotations,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retry_without_kept_value,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sweep_wipes_successor, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_presenters, setup,
	                                    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
