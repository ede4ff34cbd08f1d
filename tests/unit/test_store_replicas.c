/*
 * The N-replica part of the store contract (SCALEOUT 3.3 items 4-8, 4.2):
 * renewal claims with an owner and a fence, their release, the fleet-wide
 * per-tenant cap, counting, named leases for singleton jobs, and one
 * current signing key under racing bootstraps and rotations. Every test
 * runs against each backend in `backends` (a new backend adds one line)
 * on a fresh target; racing threads each open their own handle on it, the
 * shape of separate replicas. Each race names, in a comment, the naive
 * implementation it catches. Time is passed in, never read from a clock.
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
#include <unistd.h>

#include "fx_dir.h"
#include "core/mem.h"
#include "store/store.h"

static const struct {
	const char *name;
	const struct eb_store_ops *ops;
} backends[] = {
    {"sqlite", &eb_store_sqlite_ops},
    {"postgresql", &eb_store_pg_ops},
};
static const struct eb_store_ops *ops; /* the backend under test */
static const char *pg_base;            /* EB_TEST_PG */

#define T0       1700000000
#define LEASE    100
#define NTHREADS 4
#define NDUE     1000
#define BATCH    8

struct fx {
	char dir[256];
	char target[1200]; /* a file, or a DSN naming a fresh schema */
	struct eb_store *s;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	const char *base = getenv("EB_BINARY_DIR");
	char err[512];

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "%s/replicas-test-XXXXXX",
	         base ? base : "/tmp");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	if (ops != &eb_store_pg_ops)
		snprintf(fx->target, sizeof(fx->target), "%s/eb.db", fx->dir);
	else if (eb_store_pg_test_schema(pg_base, fx->target,
	                                 sizeof(fx->target)) != 0)
		return -1;
	if ((fx->s = eb_store_open(ops, fx->target, err, sizeof(err))) ==
	    NULL) {
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
	fx_rmtree(fx->dir);
	if (ops == &eb_store_pg_ops)
		eb_store_pg_test_drop(pg_base, fx->target);
	free(fx);
	return 0;
}

/* Another handle on the fixture's target: another replica. */
static struct eb_store *
replica(struct fx *fx)
{
	char err[512];
	struct eb_store *s = eb_store_open(ops, fx->target, err, sizeof(err));

	if (s == NULL)
		print_error("open: %s\n", err);
	return s;
}

/* An active grant of tenant whose renewal is due at next_at. */
static void
mk_due(struct eb_store *s, const char *id, const char *tenant, int64_t next_at)
{
	static uint8_t rt[] = {1, 2, 3};
	struct eb_store_grant g = {
	    .id = (char *)id,
	    .tenant = (char *)tenant,
	    .status = EB_STORE_GRANT_ACTIVE,
	    .auth_method = "apple-as-web",
	    .managed_apple_id = "someone@appleid.contoso.com",
	    .idp_issuer = "https://idp.example",
	    .idp_subject = "sub",
	    .enrollment_mode = "BYOD",
	    .created = T0 - 10,
	    .updated = T0 - 10,
	    .upstream_refresh_token = rt,
	    .upstream_refresh_token_len = sizeof(rt),
	    .upstream_next_at = next_at,
	};

	assert_int_equal(eb_store_grant_create(s, &g), EB_STORE_OK);
}

static void
get(struct eb_store *s, const char *id, struct eb_store_grant *g)
{
	assert_int_equal(eb_store_grant_get(s, id, g), EB_STORE_OK);
}

/* ---- claims: every due grant to exactly one claimer -------------------- */

struct claimer {
	struct fx *fx;
	pthread_barrier_t *go; /* the start, then every round */
	const char *tenant;
	char owner[24];
	size_t limit, cap;
	int64_t now;
	int rounds; /* every claimer claims once per round, together */
	/* results */
	char **ids;
	size_t nids;
	int errors;
};

/* Keep the ids of l, checking each grant's lease is c's. */
static void
claimer_keep(struct claimer *c, const struct eb_store_grant_list *l)
{
	char **v;
	size_t i;

	for (i = 0; i < l->n; i++) {
		if (l->v[i].lease_token == NULL ||
		    strcmp(l->v[i].lease_owner, c->owner) != 0 ||
		    l->v[i].lease_until != c->now + LEASE)
			c->errors++;
		if ((v = realloc(c->ids, (c->nids + 1) * sizeof(*v))) == NULL) {
			c->errors++;
			return;
		}
		c->ids = v;
		if ((c->ids[c->nids] = strdup(l->v[i].id)) == NULL) {
			c->errors++;
			return;
		}
		c->nids++;
	}
}

/*
 * Each round every claimer waits for the others, then claims: their
 * transactions overlap as much as they can (what double claims need to
 * show), and a backend with one writer at a time (SQLite) serves them one
 * after the other instead of letting one thread take nearly all. A
 * claimer that fails keeps meeting the barrier, so nobody waits forever.
 */
static void *
claimer_main(void *arg)
{
	struct claimer *c = arg;
	struct eb_store *s = replica(c->fx);
	struct eb_store_grant_list l;
	int64_t n;
	int round;

	/* connected before the start (a connection opens on first use) */
	if (s == NULL || eb_store_grant_count(s, NULL, -1, 0, &n) != 0)
		c->errors++;
	for (round = 0; round < c->rounds; round++) {
		pthread_barrier_wait(c->go);
		if (s == NULL)
			continue;
		if (eb_store_grant_claim_due(s, c->tenant, c->now, LEASE,
		                             c->limit, c->cap, c->owner,
		                             &l) != EB_STORE_OK) {
			c->errors++;
			continue;
		}
		claimer_keep(c, &l);
		eb_store_grant_list_finish(&l);
	}
	if (s != NULL)
		eb_store_close(s);
	return NULL;
}

static void
claimers_run(struct claimer *c, int n)
{
	pthread_barrier_t go;
	pthread_t th[NTHREADS];
	int i;

	assert_true(n <= NTHREADS);
	pthread_barrier_init(&go, NULL, (unsigned)n);
	for (i = 0; i < n; i++) {
		c[i].go = &go;
		snprintf(c[i].owner, sizeof(c[i].owner), "replica-%d", i);
		assert_int_equal(
		    pthread_create(&th[i], NULL, claimer_main, &c[i]), 0);
	}
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
}

static void
claimers_free(struct claimer *c, int n)
{
	size_t j;
	int i;

	for (i = 0; i < n; i++) {
		for (j = 0; j < c[i].nids; j++)
			free(c[i].ids[j]);
		free(c[i].ids);
	}
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * 4 claimers x batch 8 over 1,000 due grants, all claiming at once each
 * round: each grant claimed exactly once, nothing left after, and every
 * claimer served its share. Catches a claim that selects the due rows and
 * postpones them in separate transactions (or a deferred BEGIN that
 * upgrades late): two claimers read the same rows and both renew them,
 * which double-refreshes at the IdP (the naive claim measured 1,112-1,760
 * double claims here). The share catches a claim that answers "nothing
 * due" while another replica's claim is in flight: one replica would then
 * do all the work.
 */
static void
test_claim_each_once(void **state)
{
	struct fx *fx = *state;
	struct claimer c[NTHREADS];
	char id[32], **all;
	struct eb_store_grant_list l;
	size_t n = 0, i;
	int t;

	for (i = 0; i < NDUE; i++) {
		snprintf(id, sizeof(id), "g%04zu", i);
		mk_due(fx->s, id, "acme", T0 - 1 - (int64_t)(i % 50));
	}
	memset(c, 0, sizeof(c));
	for (t = 0; t < NTHREADS; t++) {
		c[t].fx = fx;
		c[t].tenant = "acme";
		c[t].limit = BATCH;
		c[t].now = T0;
		/* enough to take them all, and one more that finds none */
		c[t].rounds =
		    (NDUE + NTHREADS * BATCH - 1) / (NTHREADS * BATCH) + 1;
	}
	claimers_run(c, NTHREADS);
	assert_non_null(all = calloc(NDUE + 1, sizeof(*all)));
	for (t = 0; t < NTHREADS; t++) {
		assert_int_equal(c[t].errors, 0);
		if (c[t].nids < NDUE / NTHREADS / 2)
			fail_msg("%s claimed only %zu of %d", c[t].owner,
			         c[t].nids, NDUE);
		for (i = 0; i < c[t].nids && n <= NDUE; i++)
			all[n++] = c[t].ids[i];
	}
	assert_int_equal(n, NDUE);
	qsort(all, n, sizeof(*all), cmp_str);
	for (i = 1; i < n; i++)
		if (strcmp(all[i - 1], all[i]) == 0)
			fail_msg("grant %s claimed twice", all[i]);
	assert_int_equal(eb_store_grant_claim_due(fx->s, "acme", T0, LEASE, 0,
	                                          0, "late", &l),
	                 EB_STORE_OK);
	assert_int_equal(l.n, 0);
	free(all);
	claimers_free(c, NTHREADS);
}

/*
 * A lease that ran out is claimed by another owner; the first owner's late
 * write-back is LOST and changes nothing, the row keeps the second's
 * token. Catches a write-back by grant id alone: the slow worker's result
 * (and its old refresh token) overwrites the newer one, and an IdP with
 * refresh-token reuse detection then revokes the person's session.
 */
static void
test_fencing(void **state)
{
	struct fx *fx = *state;
	static uint8_t newer[] = {9, 9, 9};
	struct eb_store *b = replica(fx);
	struct eb_store_grant_list la, lb, none;
	struct eb_store_upstream u;
	struct eb_store_grant g;
	char *ta;

	assert_non_null(b);
	mk_due(fx->s, "g1", "acme", T0 - 5);
	assert_int_equal(
	    eb_store_grant_claim_due(fx->s, "acme", T0, LEASE, 8, 0, "A", &la),
	    EB_STORE_OK);
	assert_int_equal(la.n, 1);
	ta = la.v[0].lease_token;
	/* while A's lease is live, nobody else gets the grant */
	assert_int_equal(eb_store_grant_claim_due(b, "acme", T0 + LEASE - 1,
	                                          LEASE, 8, 0, "B", &none),
	                 EB_STORE_OK);
	assert_int_equal(none.n, 0);
	/* A's lease runs out: B claims, with a token of its own */
	assert_int_equal(eb_store_grant_claim_due(b, "acme", T0 + LEASE + 1,
	                                          LEASE, 8, 0, "B", &lb),
	                 EB_STORE_OK);
	assert_int_equal(lb.n, 1);
	assert_string_not_equal(lb.v[0].lease_token, ta);

	/* A's late result is dropped */
	memset(&u, 0, sizeof(u));
	u.renewed_at = T0 + LEASE + 2;
	u.next_at = T0 + 9999;
	u.refresh_token = newer;
	u.refresh_token_len = sizeof(newer);
	u.lease_token = ta;
	assert_int_equal(
	    eb_store_grant_set_upstream(fx->s, "g1", &u, T0 + LEASE + 2),
	    EB_STORE_LOST);
	get(fx->s, "g1", &g);
	assert_string_equal(g.lease_token, lb.v[0].lease_token);
	assert_string_equal(g.lease_owner, "B");
	assert_int_equal(g.upstream_next_at, T0 + LEASE + 1 + LEASE);
	assert_int_equal(g.upstream_renewed_at, 0);
	assert_int_equal(g.upstream_refresh_token_len, 3);
	assert_int_equal(g.upstream_refresh_token[0], 1);
	eb_store_grant_finish(&g);

	/* B's is written, and ends its lease */
	u.lease_token = lb.v[0].lease_token;
	assert_int_equal(
	    eb_store_grant_set_upstream(b, "g1", &u, T0 + LEASE + 3),
	    EB_STORE_OK);
	get(fx->s, "g1", &g);
	assert_null(g.lease_token);
	assert_null(g.lease_owner);
	assert_int_equal(g.lease_until, 0);
	assert_int_equal(g.upstream_next_at, T0 + 9999);
	assert_int_equal(g.upstream_refresh_token[0], 9);
	eb_store_grant_finish(&g);
	/* and a second write-back with the spent token is LOST too */
	assert_int_equal(
	    eb_store_grant_set_upstream(b, "g1", &u, T0 + LEASE + 4),
	    EB_STORE_LOST);
	u.lease_token = "no-such-claim";
	assert_int_equal(eb_store_grant_set_upstream(b, "nope", &u, T0),
	                 EB_STORE_NOT_FOUND);

	eb_store_grant_list_finish(&la);
	eb_store_grant_list_finish(&lb);
	eb_store_close(b);
}

/*
 * A stopping replica hands its unstarted claim back: due again at once,
 * for anyone. Catches a release by grant id alone (a stopping replica
 * frees a grant another replica has claimed since, and a third renews it
 * in parallel), and a release that leaves the next renewal at the lease's
 * end (the grant waits out the lease anyway).
 */
static void
test_release(void **state)
{
	struct fx *fx = *state;
	struct eb_store_grant_list l, l2;
	struct eb_store_grant g;

	mk_due(fx->s, "g1", "acme", T0 - 5);
	assert_int_equal(
	    eb_store_grant_claim_due(fx->s, "acme", T0, LEASE, 8, 0, "A", &l),
	    EB_STORE_OK);
	assert_int_equal(l.n, 1);
	/* someone else's token: nothing changes, OK all the same */
	assert_int_equal(eb_store_grant_release(fx->s, "g1", "not-ours", T0),
	                 EB_STORE_OK);
	assert_int_equal(eb_store_grant_claim_due(fx->s, "acme", T0 + 1, LEASE,
	                                          8, 0, "B", &l2),
	                 EB_STORE_OK);
	assert_int_equal(l2.n, 0);
	/* the holder's: free, and due now */
	assert_int_equal(
	    eb_store_grant_release(fx->s, "g1", l.v[0].lease_token, T0 + 2),
	    EB_STORE_OK);
	get(fx->s, "g1", &g);
	assert_null(g.lease_token);
	assert_int_equal(g.lease_until, 0);
	assert_int_equal(g.upstream_next_at, T0 + 2);
	eb_store_grant_finish(&g);
	assert_int_equal(eb_store_grant_claim_due(fx->s, "acme", T0 + 2, LEASE,
	                                          8, 0, "B", &l2),
	                 EB_STORE_OK);
	assert_int_equal(l2.n, 1);
	assert_string_equal(l2.v[0].lease_owner, "B");
	/* A's release after B's claim does not free B's claim */
	assert_int_equal(
	    eb_store_grant_release(fx->s, "g1", l.v[0].lease_token, T0 + 3),
	    EB_STORE_OK);
	get(fx->s, "g1", &g);
	assert_string_equal(g.lease_token, l2.v[0].lease_token);
	eb_store_grant_finish(&g);
	eb_store_grant_list_finish(&l);
	eb_store_grant_list_finish(&l2);
}

/* Live leases of tenant at now, read from the rows. */
static size_t
live(struct eb_store *s, const char *tenant, int64_t now)
{
	struct eb_store_grant_filter f = {.tenant = tenant, .status = -1};
	struct eb_store_grant_list l;
	size_t i, n = 0;

	assert_int_equal(eb_store_grant_list(s, &f, &l), EB_STORE_OK);
	for (i = 0; i < l.n; i++)
		n += l.v[i].lease_until > now;
	eb_store_grant_list_finish(&l);
	return n;
}

/*
 * renew_concurrency 3, 4 claimers at once, several rounds: never more than
 * 3 live leases for the tenant. Catches the cap applied per process (or
 * counted outside the claim's transaction): each of 4 replicas sees none
 * live and takes its batch, and the IdP sees 4 x the configured rate.
 */
static void
test_tenant_cap(void **state)
{
	struct fx *fx = *state;
	struct claimer c[NTHREADS];
	struct eb_store_grant_list l;
	struct eb_store_upstream u;
	char id[32];
	size_t i, got;
	int t, round;

	for (i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "c%02zu", i);
		mk_due(fx->s, id, "acme", T0 - 1);
	}
	mk_due(fx->s, "other1", "other", T0 - 1);
	for (round = 0; round < 5; round++) {
		int64_t now =
		    T0 + round * (LEASE + 1); /* earlier leases over */

		memset(c, 0, sizeof(c));
		for (t = 0; t < NTHREADS; t++) {
			c[t].fx = fx;
			c[t].tenant = "acme";
			c[t].limit = 2;
			c[t].cap = 3;
			c[t].now = now;
			c[t].rounds = 1;
		}
		claimers_run(c, NTHREADS);
		for (got = 0, t = 0; t < NTHREADS; t++) {
			assert_int_equal(c[t].errors, 0);
			got += c[t].nids;
		}
		assert_int_equal(got, 3);
		assert_int_equal(live(fx->s, "acme", now), 3);
		claimers_free(c, NTHREADS);
	}
	/* a finished renewal frees its slot at once; another tenant has a
	 * cap of its own */
	{
		int64_t now = T0 + 5 * (LEASE + 1);

		assert_int_equal(eb_store_grant_claim_due(fx->s, "acme", now,
		                                          LEASE, 8, 3, "A", &l),
		                 EB_STORE_OK);
		assert_int_equal(l.n, 3);
		memset(&u, 0, sizeof(u));
		u.next_at = now + 3600;
		u.lease_token = l.v[0].lease_token;
		assert_int_equal(
		    eb_store_grant_set_upstream(fx->s, l.v[0].id, &u, now),
		    EB_STORE_OK);
		eb_store_grant_list_finish(&l);
		assert_int_equal(eb_store_grant_claim_due(fx->s, "acme", now,
		                                          LEASE, 8, 3, "B", &l),
		                 EB_STORE_OK);
		assert_int_equal(l.n, 1);
		/* a grant revoked mid-renewal is nobody's work any more */
		assert_int_equal(
		    eb_store_grant_set_status(fx->s, l.v[0].id,
		                              EB_STORE_GRANT_REVOKED, "t", now),
		    EB_STORE_OK);
		eb_store_grant_list_finish(&l);
		assert_int_equal(eb_store_grant_claim_due(fx->s, "acme", now,
		                                          LEASE, 8, 3, "C", &l),
		                 EB_STORE_OK);
		assert_int_equal(l.n, 1);
		eb_store_grant_list_finish(&l);
		assert_int_equal(eb_store_grant_claim_due(fx->s, "other", now,
		                                          LEASE, 8, 3, "B", &l),
		                 EB_STORE_OK);
		assert_int_equal(l.n, 1);
		eb_store_grant_list_finish(&l);
	}
}

/*
 * Counting by tenant, status and failing. Catches counting failing grants
 * without the status filter: a revoked grant that was failing keeps the
 * gauge up for ever.
 */
/*
 * Ending a claimed grant clears its claim: it no longer counts against the
 * tenant's cap, the claimer's write-back finds no grant to renew
 * (NOT_FOUND, not LOST: nobody else has it) and its release changes
 * nothing. Catches a backend that keeps the lease on an ended grant and
 * counts it as renewal work in flight, starving the tenant's cap.
 */
static void
test_end_clears_claim(void **state)
{
	struct fx *fx = *state;
	struct eb_store_grant_list l, l2;
	struct eb_store_upstream u;
	struct eb_store_grant g;

	mk_due(fx->s, "g1", "acme", T0 - 1);
	mk_due(fx->s, "g2", "acme", T0 - 1);
	assert_int_equal(
	    eb_store_grant_claim_due(fx->s, "acme", T0, LEASE, 1, 1, "one", &l),
	    EB_STORE_OK);
	assert_int_equal(l.n, 1);
	/* at the cap of 1: g2 waits */
	assert_int_equal(eb_store_grant_claim_due(fx->s, "acme", T0, LEASE, 0,
	                                          1, "two", &l2),
	                 EB_STORE_OK);
	assert_int_equal(l2.n, 0);
	eb_store_grant_list_finish(&l2);
	assert_int_equal(eb_store_grant_set_status(fx->s, l.v[0].id,
	                                           EB_STORE_GRANT_REVOKED,
	                                           "test", T0 + 1),
	                 EB_STORE_OK);
	get(fx->s, l.v[0].id, &g);
	assert_null(g.lease_owner);
	assert_null(g.lease_token);
	assert_int_equal(g.lease_until, 0);
	assert_int_equal(g.upstream_next_at, 0);
	eb_store_grant_finish(&g);
	memset(&u, 0, sizeof(u));
	u.next_at = T0 + 3600;
	u.lease_token = l.v[0].lease_token;
	assert_int_equal(
	    eb_store_grant_set_upstream(fx->s, l.v[0].id, &u, T0 + 2),
	    EB_STORE_NOT_FOUND);
	assert_int_equal(eb_store_grant_release(fx->s, l.v[0].id,
	                                        l.v[0].lease_token, T0 + 2),
	                 EB_STORE_OK);
	get(fx->s, l.v[0].id, &g);
	assert_int_equal(g.status, EB_STORE_GRANT_REVOKED);
	assert_int_equal(g.upstream_next_at, 0);
	eb_store_grant_finish(&g);
	/* the ended grant's claim no longer holds a slot: the other is
	 * claimed under the same cap */
	assert_int_equal(eb_store_grant_claim_due(fx->s, "acme", T0 + 2, LEASE,
	                                          0, 1, "two", &l2),
	                 EB_STORE_OK);
	assert_int_equal(l2.n, 1);
	assert_string_not_equal(l2.v[0].id, l.v[0].id);
	eb_store_grant_list_finish(&l2);
	eb_store_grant_list_finish(&l);
}

static void
test_count(void **state)
{
	struct fx *fx = *state;
	struct eb_store_upstream u;
	int64_t n;

	mk_due(fx->s, "a1", "acme", T0 + 10);
	mk_due(fx->s, "a2", "acme", T0 + 10);
	mk_due(fx->s, "a3", "acme", T0 + 10);
	mk_due(fx->s, "a4", "acme", T0 + 10);
	mk_due(fx->s, "o1", "other", T0 + 10);
	memset(&u, 0, sizeof(u));
	u.next_at = T0 + 60;
	u.failing_since = T0; /* unfenced: an admin tool's write */
	assert_int_equal(eb_store_grant_set_upstream(fx->s, "a1", &u, T0), 0);
	assert_int_equal(eb_store_grant_set_upstream(fx->s, "a4", &u, T0), 0);
	assert_int_equal(eb_store_grant_set_upstream(fx->s, "o1", &u, T0), 0);
	assert_int_equal(eb_store_grant_set_status(fx->s, "a4",
	                                           EB_STORE_GRANT_REVOKED,
	                                           "test", T0 + 1),
	                 EB_STORE_OK);

	assert_int_equal(
	    eb_store_grant_count(fx->s, "acme", EB_STORE_GRANT_ACTIVE, 0, &n),
	    EB_STORE_OK);
	assert_int_equal(n, 3);
	assert_int_equal(
	    eb_store_grant_count(fx->s, "acme", EB_STORE_GRANT_ACTIVE, 1, &n),
	    EB_STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(
	    eb_store_grant_count(fx->s, "acme", EB_STORE_GRANT_REVOKED, 0, &n),
	    EB_STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(eb_store_grant_count(fx->s, NULL, -1, 0, &n),
	                 EB_STORE_OK);
	assert_int_equal(n, 5);
	assert_int_equal(
	    eb_store_grant_count(fx->s, NULL, EB_STORE_GRANT_ACTIVE, 1, &n),
	    EB_STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(eb_store_grant_count(fx->s, "nobody", -1, 0, &n),
	                 EB_STORE_OK);
	assert_int_equal(n, 0);
}

/* ---- named leases ------------------------------------------------------ */

struct locker {
	struct fx *fx;
	pthread_barrier_t *go;
	char owner[24];
	int rc;
};

static void *
locker_main(void *arg)
{
	struct locker *k = arg;
	struct eb_store *s = replica(k->fx);

	pthread_barrier_wait(k->go);
	k->rc = s == NULL ? EB_STORE_ERROR
	                  : eb_store_lock_try(s, "sweep", k->owner, 120, T0);
	eb_store_close(s);
	return NULL;
}

/*
 * 4 replicas take "sweep" at once: one holds it. It is extended by its
 * holder, refused to others while live, taken over once expired, and free
 * at once when released. Catches a check-then-write lease (read the row,
 * then insert or update it): two replicas both see it free and both sweep;
 * and an update without the owner-or-expired condition, which steals a
 * live lease.
 */
static void
test_lock(void **state)
{
	struct fx *fx = *state;
	struct locker k[NTHREADS];
	pthread_barrier_t go;
	pthread_t th[NTHREADS];
	char holder[24] = "", other[24] = "";
	int i, ok = 0;

	pthread_barrier_init(&go, NULL, NTHREADS);
	for (i = 0; i < NTHREADS; i++) {
		k[i].fx = fx;
		k[i].go = &go;
		snprintf(k[i].owner, sizeof(k[i].owner), "replica-%d", i);
		assert_int_equal(
		    pthread_create(&th[i], NULL, locker_main, &k[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (i = 0; i < NTHREADS; i++) {
		if (k[i].rc == EB_STORE_OK) {
			ok++;
			snprintf(holder, sizeof(holder), "%s", k[i].owner);
		} else {
			assert_int_equal(k[i].rc, EB_STORE_CONFLICT);
			snprintf(other, sizeof(other), "%s", k[i].owner);
		}
	}
	assert_int_equal(ok, 1);

	/* extended by the holder (until T0 + 60 + 120) */
	assert_int_equal(
	    eb_store_lock_try(fx->s, "sweep", holder, 120, T0 + 60),
	    EB_STORE_OK);
	assert_int_equal(
	    eb_store_lock_try(fx->s, "sweep", other, 120, T0 + 150),
	    EB_STORE_CONFLICT);
	/* another name is another lease */
	assert_int_equal(
	    eb_store_lock_try(fx->s, "stats", other, 120, T0 + 150),
	    EB_STORE_OK);
	/* expired: taken over, and the old holder is out */
	assert_int_equal(
	    eb_store_lock_try(fx->s, "sweep", other, 120, T0 + 181),
	    EB_STORE_OK);
	assert_int_equal(
	    eb_store_lock_try(fx->s, "sweep", holder, 120, T0 + 182),
	    EB_STORE_CONFLICT);
	/* releasing someone else's lease does nothing; one's own frees it */
	assert_int_equal(eb_store_lock_release(fx->s, "sweep", holder),
	                 EB_STORE_OK);
	assert_int_equal(
	    eb_store_lock_try(fx->s, "sweep", holder, 120, T0 + 183),
	    EB_STORE_CONFLICT);
	assert_int_equal(eb_store_lock_release(fx->s, "sweep", other),
	                 EB_STORE_OK);
	assert_int_equal(
	    eb_store_lock_try(fx->s, "sweep", holder, 120, T0 + 184),
	    EB_STORE_OK);
	assert_int_equal(eb_store_lock_try(fx->s, "sweep", holder, 0, T0 + 185),
	                 EB_STORE_ERROR);
}

/* ---- one current signing key ------------------------------------------ */

static uint8_t key_priv[] = {1, 0, 2};

static void
mk_key(struct eb_store_key *k, const char *kid, int64_t created,
       int64_t activates_at)
{
	memset(k, 0, sizeof(*k));
	k->kid = (char *)kid;
	k->tenant = "";
	k->alg = "ES256";
	k->created = created;
	k->activates_at = activates_at;
	k->public_jwk = "{\"kty\":\"EC\"}";
	k->private_key = key_priv;
	k->private_key_len = sizeof(key_priv);
}

/* The kids with retired_at 0, and how many. */
static size_t
current_keys(struct eb_store *s, char *kid, size_t kidlen)
{
	struct eb_store_key_list l;
	size_t i, n = 0;

	assert_int_equal(eb_store_key_list(s, NULL, &l), EB_STORE_OK);
	for (i = 0; i < l.n; i++)
		if (l.v[i].retired_at == 0) {
			n++;
			snprintf(kid, kidlen, "%s", l.v[i].kid);
		}
	eb_store_key_list_finish(&l);
	return n;
}

struct keyer {
	struct fx *fx;
	pthread_barrier_t *go;
	char kid[24];
	int rotate; /* 0: bootstrap (key_put) */
	int rc;
};

static void *
keyer_main(void *arg)
{
	struct keyer *k = arg;
	struct eb_store *s = replica(k->fx);
	struct eb_store_key key;

	/* a rotation published 330 s ahead, as a fleet rotates */
	mk_key(&key, k->kid, T0 + 10, k->rotate ? T0 + 340 : T0);
	pthread_barrier_wait(k->go);
	if (s == NULL)
		k->rc = EB_STORE_ERROR;
	else if (k->rotate)
		k->rc = eb_store_key_rotate(s, &key, key.activates_at,
		                            key.activates_at + 1000);
	else
		k->rc = eb_store_key_put(s, &key);
	eb_store_close(s);
	return NULL;
}

/* Run n keyers at once; how many answered OK (the others CONFLICT). */
static int
keyers_run(struct fx *fx, int n, int rotate)
{
	struct keyer k[NTHREADS];
	pthread_barrier_t go;
	pthread_t th[NTHREADS];
	int i, ok = 0;

	pthread_barrier_init(&go, NULL, (unsigned)n);
	for (i = 0; i < n; i++) {
		k[i].fx = fx;
		k[i].go = &go;
		k[i].rotate = rotate;
		snprintf(k[i].kid, sizeof(k[i].kid), "k%d-%d", rotate, i);
		assert_int_equal(
		    pthread_create(&th[i], NULL, keyer_main, &k[i]), 0);
	}
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (i = 0; i < n; i++) {
		if (k[i].rc == EB_STORE_OK)
			ok++;
		else
			assert_int_equal(k[i].rc, EB_STORE_CONFLICT);
	}
	return ok;
}

/*
 * 4 replicas start on an empty database and bootstrap a key each: one
 * current key. Catches a list-then-insert bootstrap without the one-
 * current-key index: every replica that saw the table empty stores its
 * own key, and tokens are signed by several "current" keys.
 */
static void
test_key_bootstrap(void **state)
{
	struct fx *fx = *state;
	char kid[32];

	assert_int_equal(keyers_run(fx, NTHREADS, 0), 1);
	assert_int_equal(current_keys(fx->s, kid, sizeof(kid)), 1);
}

/*
 * Two rotations at once: one OK, one CONFLICT, one current key, and the
 * old key retired at the new one's activation. Catches a rotation that
 * retires every current key and inserts without checking for a rotation
 * under way: both succeed, the first one's key is retired before it ever
 * signed (and without the index, two current keys remain).
 */
static void
test_key_rotate_race(void **state)
{
	struct fx *fx = *state;
	struct eb_store_key k0, k;
	struct eb_store_key_list l;
	char kid[32];
	size_t i;

	mk_key(&k0, "k0", T0, T0);
	assert_int_equal(eb_store_key_put(fx->s, &k0), EB_STORE_OK);
	assert_int_equal(keyers_run(fx, 2, 1), 1);
	assert_int_equal(current_keys(fx->s, kid, sizeof(kid)), 1);
	assert_string_not_equal(kid, "k0");
	assert_int_equal(eb_store_key_list(fx->s, NULL, &l), EB_STORE_OK);
	assert_int_equal(l.n, 2);
	for (i = 0; i < l.n; i++)
		if (strcmp(l.v[i].kid, "k0") == 0) {
			assert_int_equal(l.v[i].retired_at, T0 + 340);
			assert_int_equal(l.v[i].not_after, T0 + 1340);
		} else
			assert_int_equal(l.v[i].activates_at, T0 + 340);
	eb_store_key_list_finish(&l);
	/* once the pending key is active, the next rotation goes through;
	 * a bootstrap beside a current key does not */
	mk_key(&k, "k9", T0 + 400, T0 + 400);
	assert_int_equal(eb_store_key_rotate(fx->s, &k, T0 + 400, T0 + 2000),
	                 EB_STORE_OK);
	mk_key(&k, "kb", T0 + 401, T0 + 401);
	assert_int_equal(eb_store_key_put(fx->s, &k), EB_STORE_CONFLICT);
	assert_int_equal(current_keys(fx->s, kid, sizeof(kid)), 1);
	assert_string_equal(kid, "k9");
}

/*
 * A database from before the one-current-key rule, with two current keys
 * of one tenant (a standby), is repaired by migration 7: the newest stays
 * current, the other is retired but still published, and the rule holds
 * from then on. Catches a migration that creates the index without the
 * repair (it fails on such a database, and the upgrade with it), and one
 * that keeps the wrong key (tokens suddenly signed by the standby).
 */
static void
test_key_migration(void **state)
{
	struct fx *fx = *state;
	struct eb_store_key_list l;
	struct eb_store_key k;
	struct eb_store *s;
	char path[400], err[512], kid[32];
	size_t i;

	if (ops != &eb_store_sqlite_ops)
		skip(); /* the target of an older schema is a file here */
	snprintf(path, sizeof(path), "%s/v6.db", fx->dir);
	eb_store_test_schema_limit(6);
	s = eb_store_open(ops, path, err, sizeof(err));
	eb_store_test_schema_limit(-1);
	assert_non_null(s);
	mk_key(&k, "old", T0, 0);
	assert_int_equal(eb_store_key_put(s, &k), EB_STORE_OK);
	mk_key(&k, "new", T0 + 10, 0);
	assert_int_equal(eb_store_key_put(s, &k), EB_STORE_OK);
	mk_key(&k, "tenant-key", T0, 0);
	k.tenant = "acme"; /* another tenant's current key is left alone */
	assert_int_equal(eb_store_key_put(s, &k), EB_STORE_OK);
	eb_store_close(s);

	assert_non_null(s = eb_store_open(ops, path, err, sizeof(err)));
	assert_int_equal(eb_store_key_list(s, NULL, &l), EB_STORE_OK);
	assert_int_equal(l.n, 3);
	for (i = 0; i < l.n; i++) {
		if (strcmp(l.v[i].kid, "old") == 0) {
			assert_int_not_equal(l.v[i].retired_at, 0);
			assert_int_equal(l.v[i].not_after, 0); /* published */
		} else
			assert_int_equal(l.v[i].retired_at, 0);
	}
	eb_store_key_list_finish(&l);
	assert_int_equal(current_keys(s, kid, sizeof(kid)), 2);
	mk_key(&k, "third", T0 + 20, 0);
	assert_int_equal(eb_store_key_put(s, &k), EB_STORE_CONFLICT);
	eb_store_close(s);
}

/*
 * EB_TEST_PG names a server we can make schemas on; without one the
 * PostgreSQL run skips, but never under CI.
 */
static int
pg_missing(void)
{
	const char *ci = getenv("CI");
	char target[1200];

	pg_base = getenv("EB_TEST_PG");
	if (pg_base != NULL && *pg_base != '\0' &&
	    eb_store_pg_test_schema(pg_base, target, sizeof(target)) == 0) {
		eb_store_pg_test_drop(pg_base, target);
		return 0;
	}
	if (ci != NULL && strcmp(ci, "true") == 0) {
		fprintf(stderr, "FAIL: PostgreSQL run failed: no usable "
		                "EB_TEST_PG under CI\n");
		return 1;
	}
	fprintf(stderr, "SKIP: PostgreSQL run skipped: no usable EB_TEST_PG "
	                "(contrib/pg-test.sh start)\n");
	return -1;
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_claim_each_once),
	    T(test_fencing),
	    T(test_release),
	    T(test_tenant_cap),
	    T(test_end_clears_claim),
	    T(test_count),
	    T(test_lock),
	    T(test_key_bootstrap),
	    T(test_key_rotate_race),
	    T(test_key_migration),
	};
	size_t i;
	int failed = 0;

	if (getenv("EB_TEST_FILTER") != NULL) /* run some tests only */
		cmocka_set_test_filter(getenv("EB_TEST_FILTER"));
	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		int missing;

		if (backends[i].ops == &eb_store_pg_ops &&
		    (missing = pg_missing()) != 0) {
			failed |= missing > 0;
			continue;
		}
		ops = backends[i].ops;
		failed |= _cmocka_run_group_tests(
		    backends[i].name, tests, sizeof(tests) / sizeof(tests[0]),
		    NULL, NULL);
	}
	return failed;
}
