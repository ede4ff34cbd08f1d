/*
 * The PostgreSQL connection layer against a real server: the throwaway
 * cluster contrib/pg-test.sh starts (EB_TEST_PG, a libpq DSN). Each run
 * works in a database of its own, dropped at the end. It checks the pool's
 * bound (a caller waits, then gives up at the acquire timeout, and the
 * server never sees more connections than the pool size), prepared
 * statements made once per connection, BIGINT times in binary format, the
 * transaction helper retrying a genuine serialization failure (two
 * concurrent SERIALIZABLE transactions on two pool connections) and giving
 * up after its bound, a genuine deadlock retried, statement and lock
 * timeouts as errors, 23505 as EB_STORE_CONFLICT, a backend killed with
 * pg_terminate_backend replaced, and a DSN's password never in the log.
 * Without EB_TEST_PG the server tests skip, except under CI=true, where
 * they fail: the PostgreSQL leg must not pass by not running.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "store/pg/pg_conn.h"
#include "store/store.h"

enum { S_INS_U, S_SUM_W, S_BUMP_W, S_ECHO, S_NPREP, S_GET_W };
static const struct eb_pg_stmt stmts[] = {
    {"ins_u",
     "INSERT INTO u (k, t) VALUES ($1, $2)",
     2,
     {EB_PG_TEXT, EB_PG_INT8}},
    {"sum_w", "SELECT sum(v)::int8 FROM w", 0, {0}},
    {"bump_w", "UPDATE w SET v = v + 1 WHERE id = $1", 1, {EB_PG_INT8}},
    {"echo",
     "SELECT $1::int8, $2::bytea, $3::text, $3::text IS NULL",
     3,
     {EB_PG_INT8, EB_PG_BYTEA, EB_PG_TEXT}},
    {"nprep",
     "SELECT count(*)::int8 FROM pg_prepared_statements WHERE name = $1",
     1,
     {EB_PG_TEXT}},
    {"get_w", "SELECT v FROM w WHERE id = $1", 1, {EB_PG_INT8}},
};
#define NSTMTS (sizeof(stmts) / sizeof(stmts[0]))

static char dbname[64];
static char dsn[1024];    /* EB_TEST_PG with our database */
static int db_ready = -1; /* -1 no EB_TEST_PG, 0 failed, 1 ready */

static int
under_ci(void)
{
	const char *ci = getenv("CI");

	return ci != NULL && *ci != '\0' && strcmp(ci, "false") != 0 &&
	       strcmp(ci, "0") != 0;
}

/* Skip when no server was given, but never under CI. */
static void
need_pg(void)
{
	if (db_ready == 1)
		return;
	if (db_ready == -1 && !under_ci()) {
		skip();
		return;
	}
	fail_msg("%s", db_ready == -1
	                   ? "CI is set but EB_TEST_PG is not: the PostgreSQL "
	                     "tests must run on CI"
	                   : "the PostgreSQL in EB_TEST_PG is not usable");
}

static struct eb_pg_pool *
pool(unsigned size, unsigned acquire_ms, const char *app)
{
	struct eb_pg_pool_limits lim = {size, acquire_ms, 5000, app};
	char err[256];
	struct eb_pg_pool *p;

	p = eb_pg_pool_create(dsn, stmts, NSTMTS, &lim, err, sizeof(err));
	if (p == NULL)
		fail_msg("pool: %s", err);
	return p;
}

static void
sql(struct eb_pg_conn *c, const char *q)
{
	if (eb_pg_exec_sql(c, q, NULL) != EB_STORE_OK)
		fail_msg("%s: SQLSTATE %s", q, eb_pg_conn_sqlstate(c));
}

static int64_t
sql_int8(struct eb_pg_conn *c, const char *q)
{
	PGresult *r = NULL;
	long long v;

	assert_int_equal(eb_pg_exec_sql(c, q, &r), EB_STORE_OK);
	assert_int_equal(PQntuples(r), 1);
	v = atoll(PQgetvalue(r, 0, 0)); /* PQexec results are text */
	PQclear(r);
	return v;
}

static int64_t
get_w(struct eb_pg_conn *c, int64_t id)
{
	struct eb_pg_args a;
	PGresult *r = NULL;
	int64_t v = -1;

	eb_pg_args_init(&a);
	eb_pg_args_int8(&a, id);
	assert_int_equal(eb_pg_exec(c, S_GET_W, &a, &r), EB_STORE_OK);
	assert_int_equal(eb_pg_get_int8(r, 0, 0, &v), 0);
	PQclear(r);
	return v;
}

static double
ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static int
group_setup(void **state)
{
	const char *base = getenv("EB_TEST_PG");
	struct eb_pg_pool_limits lim = {1, 5000, 5000, "ebt-setup"};
	struct eb_pg_pool *p;
	struct eb_pg_conn *c;
	char q[128], err[256];

	eb_log_init(EB_LOG_WARN, 0);
	if (base == NULL || *base == '\0')
		return 0;
	db_ready = 0;
	snprintf(dbname, sizeof(dbname), "ebt_pg_conn_%ld", (long)getpid());
	p = eb_pg_pool_create(base, NULL, 0, &lim, err, sizeof(err));
	if (p == NULL) {
		fprintf(stderr, "EB_TEST_PG: %s\n", err);
		return 0;
	}
	c = eb_pg_pool_acquire(p);
	snprintf(q, sizeof(q), "DROP DATABASE IF EXISTS %s", dbname);
	if (c != NULL && eb_pg_exec_sql(c, q, NULL) == EB_STORE_OK) {
		snprintf(q, sizeof(q), "CREATE DATABASE %s", dbname);
		if (eb_pg_exec_sql(c, q, NULL) == EB_STORE_OK)
			db_ready = 1;
	}
	eb_pg_pool_release(p, c);
	eb_pg_pool_destroy(p);
	/* In a key=value DSN the last dbname wins. */
	snprintf(dsn, sizeof(dsn), "%s dbname=%s", base, dbname);
	if (db_ready == 1) {
		p = eb_pg_pool_create(dsn, NULL, 0, &lim, err, sizeof(err));
		db_ready = 0;
		if (p != NULL && (c = eb_pg_pool_acquire(p)) != NULL) {
			if (eb_pg_exec_sql(
			        c,
			        "CREATE TABLE u (k text PRIMARY KEY, "
			        "t bigint NOT NULL);"
			        "CREATE TABLE w (id bigint PRIMARY "
			        "KEY, v bigint NOT NULL)",
			        NULL) == EB_STORE_OK)
				db_ready = 1;
			eb_pg_pool_release(p, c);
		}
		eb_pg_pool_destroy(p);
	}
	return 0;
}

static int
group_teardown(void **state)
{
	const char *base = getenv("EB_TEST_PG");
	struct eb_pg_pool_limits lim = {1, 5000, 5000, "ebt-teardown"};
	struct eb_pg_pool *p;
	struct eb_pg_conn *c;
	char q[128], err[256];

	if (base == NULL || *base == '\0' || dbname[0] == '\0')
		return 0;
	if ((p = eb_pg_pool_create(base, NULL, 0, &lim, err, sizeof(err))) ==
	    NULL)
		return 0;
	if ((c = eb_pg_pool_acquire(p)) != NULL) {
		snprintf(q, sizeof(q),
		         "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
		(void)eb_pg_exec_sql(c, q, NULL);
		eb_pg_pool_release(p, c);
	}
	eb_pg_pool_destroy(p);
	return 0;
}

/* The password (and sslpassword) never survive redaction, in any form. */
static void
test_dsn_redact(void **state)
{
	static const char *secret_dsns[] = {
	    "host=/tmp/x port=5432 user=eb password=Pw-s3cret dbname=d",
	    "password='Pw-s3cret with \\' quote' host=h",
	    "postgresql://eb:Pw-s3cret@127.0.0.1:5432/db",
	    "postgresql://eb@127.0.0.1/db?password=Pw-s3cret",
	    "host=h sslpassword=Pw-s3cret",
	    "host='unterminated password=Pw-s3cret",
	    "host=h password=Pw-s3cret password",
	};
	char out[512], small[20];
	size_t i;

	for (i = 0; i < sizeof(secret_dsns) / sizeof(secret_dsns[0]); i++) {
		assert_int_equal(
		    eb_pg_dsn_redact(secret_dsns[i], out, sizeof(out)), 0);
		if (strstr(out, "s3cret") != NULL)
			fail_msg("%s -> %s", secret_dsns[i], out);
		assert_int_equal(
		    eb_pg_dsn_redact(secret_dsns[i], small, sizeof(small)) <= 0,
		    1);
		assert_null(strstr(small, "s3cret"));
	}
	eb_pg_dsn_redact(secret_dsns[0], out, sizeof(out));
	assert_non_null(strstr(out, "password=***"));
	assert_non_null(strstr(out, "user=eb"));
	assert_non_null(strstr(out, "host=/tmp/x"));
	eb_pg_dsn_redact(secret_dsns[5], out, sizeof(out));
	assert_string_equal(out, "(unparsable DSN)");
	eb_pg_dsn_redact(secret_dsns[2], out, sizeof(out));
	assert_non_null(strstr(out, "user=eb"));
	assert_non_null(strstr(out, "password=***"));
	/* Other values come back as libpq would read them. */
	eb_pg_dsn_redact("application_name='my app' host=h", out, sizeof(out));
	assert_non_null(strstr(out, "application_name='my app'"));
	assert_int_equal(eb_pg_dsn_redact("host=h", small, 3), -1);
	assert_string_equal(small, "ho");
}

static void
test_sqlstate_map(void **state)
{
	static const struct {
		const char *st;
		int rc;
	} map[] = {
	    {"23505", EB_STORE_CONFLICT}, {"23503", EB_STORE_NOT_FOUND},
	    {"40001", EB_PG_RETRY},       {"40P01", EB_PG_RETRY},
	    {"08006", EB_PG_BROKEN},      {"08001", EB_PG_BROKEN},
	    {"57P01", EB_PG_BROKEN},      {"57014", EB_STORE_ERROR},
	    {"55P03", EB_STORE_ERROR},    {"42601", EB_STORE_ERROR},
	    {"", EB_STORE_ERROR},         {NULL, EB_STORE_ERROR},
	    {"2350", EB_STORE_ERROR},
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		assert_int_equal(eb_pg_sqlstate_rc(map[i].st), map[i].rc);
}

/* BIGINT times and bytea go through binary format both ways intact. */
static void
test_binary_binding(void **state)
{
	static const int64_t vals[] = {
	    0, -1, 1700000000, 4102444800LL, INT64_MAX, INT64_MIN};
	static const unsigned char blob[] = {0, 1, 0xff, '\'', '\\', 0};
	struct eb_pg_pool *p;
	struct eb_pg_conn *c;
	struct eb_pg_args a;
	PGresult *r;
	int64_t v;
	time_t t;
	size_t i;

	need_pg();
	p = pool(1, 1000, "ebt-binary");
	c = eb_pg_pool_acquire(p);
	assert_non_null(c);
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		eb_pg_args_init(&a);
		eb_pg_args_int8(&a, vals[i]);
		eb_pg_args_bytea(&a, blob, sizeof(blob));
		eb_pg_args_text(&a, i % 2 ? NULL : "caf\xc3\xa9 'x'");
		assert_int_equal(eb_pg_exec(c, S_ECHO, &a, &r), EB_STORE_OK);
		assert_int_equal(eb_pg_get_int8(r, 0, 0, &v), 0);
		assert_true(v == vals[i]);
		assert_int_equal(PQgetlength(r, 0, 1), (int)sizeof(blob));
		assert_memory_equal(PQgetvalue(r, 0, 1), blob, sizeof(blob));
		if (i % 2 == 0)
			assert_string_equal(PQgetvalue(r, 0, 2),
			                    "caf\xc3\xa9 'x'");
		assert_int_equal(PQgetisnull(r, 0, 2), i % 2);
		/* a bytea or text column is not read as a BIGINT */
		assert_int_equal(eb_pg_get_int8(r, 0, 1, &v), -1);
		assert_int_equal(eb_pg_get_int8(r, 0, 9, &v), -1);
		PQclear(r);
	}
	eb_pg_args_init(&a);
	eb_pg_args_time(&a, (time_t)4102444800LL); /* past 2038 */
	eb_pg_args_bytea(&a, NULL, 0);
	eb_pg_args_text(&a, "");
	assert_int_equal(eb_pg_exec(c, S_ECHO, &a, &r), EB_STORE_OK);
	assert_int_equal(eb_pg_get_time(r, 0, 0, &t), 0);
	assert_true(t == (time_t)4102444800LL);
	PQclear(r);
	/* a wrong parameter count is refused before reaching the server */
	eb_pg_args_init(&a);
	assert_int_equal(eb_pg_exec(c, S_ECHO, &a, NULL), EB_STORE_ERROR);
	eb_pg_pool_release(p, c);
	eb_pg_pool_destroy(p);
}

struct waiter {
	struct eb_pg_pool *p;
	struct eb_pg_conn *got;
	double waited_ms;
};

static void *
wait_acquire(void *arg)
{
	struct waiter *w = arg;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	w->got = eb_pg_pool_acquire(w->p);
	w->waited_ms = ms_since(&t0);
	return NULL;
}

/*
 * Two connections: a third caller waits and gives up at the acquire
 * timeout; a caller that waits gets the one released; the server never
 * sees a third connection.
 */
static void
test_pool_bounds(void **state)
{
	struct eb_pg_pool *p, *obs;
	struct eb_pg_conn *a, *b, *o;
	struct timespec t0, nap = {0, 100 * 1000000L};
	struct waiter w;
	pthread_t th;
	double ms;

	need_pg();
	p = pool(2, 300, "ebt-bounds");
	obs = pool(1, 1000, "ebt-observer");
	a = eb_pg_pool_acquire(p);
	b = eb_pg_pool_acquire(p);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_null(eb_pg_pool_acquire(p));
	ms = ms_since(&t0);
	printf("# acquire gave up after %.0f ms (timeout 300)\n", ms);
	assert_true(ms >= 290 && ms < 2000);

	w.p = p;
	w.got = NULL;
	assert_int_equal(pthread_create(&th, NULL, wait_acquire, &w), 0);
	nanosleep(&nap, NULL);
	eb_pg_pool_release(p, b);
	pthread_join(th, NULL);
	assert_ptr_equal(w.got, b);
	assert_true(w.waited_ms >= 90);

	o = eb_pg_pool_acquire(obs);
	assert_int_equal(sql_int8(o, "SELECT count(*) FROM pg_stat_activity "
	                             "WHERE application_name = 'ebt-bounds'"),
	                 2);
	eb_pg_pool_release(obs, o);
	eb_pg_pool_release(p, a);
	eb_pg_pool_release(p, w.got);
	eb_pg_pool_destroy(p);
	eb_pg_pool_destroy(obs);
}

/* A statement is prepared once per connection, then reused. */
static void
test_prepared_reused(void **state)
{
	struct eb_pg_pool *p;
	struct eb_pg_conn *c;
	struct eb_pg_args a;
	PGresult *r;
	int64_t n;
	int i;

	need_pg();
	p = pool(1, 1000, "ebt-prepared");
	for (i = 0; i < 5; i++) {
		c = eb_pg_pool_acquire(p);
		assert_non_null(c);
		eb_pg_args_init(&a);
		eb_pg_args_int8(&a, i);
		eb_pg_args_bytea(&a, "x", 1);
		eb_pg_args_text(&a, "y");
		assert_int_equal(eb_pg_exec(c, S_ECHO, &a, &r), EB_STORE_OK);
		PQclear(r);
		assert_int_equal(eb_pg_conn_prepares(c), 1);
		eb_pg_pool_release(p, c);
	}
	c = eb_pg_pool_acquire(p);
	eb_pg_args_init(&a);
	eb_pg_args_text(&a, "echo");
	assert_int_equal(eb_pg_exec(c, S_NPREP, &a, &r), EB_STORE_OK);
	assert_int_equal(eb_pg_get_int8(r, 0, 0, &n), 0);
	assert_int_equal(n, 1);
	PQclear(r);
	assert_int_equal(eb_pg_conn_prepares(c), 2);
	eb_pg_pool_release(p, c);
	eb_pg_pool_destroy(p);
}

static void
test_unique_is_conflict(void **state)
{
	struct eb_pg_pool *p;
	struct eb_pg_conn *c;
	struct eb_pg_args a;

	need_pg();
	p = pool(1, 1000, "ebt-conflict");
	c = eb_pg_pool_acquire(p);
	eb_pg_args_init(&a);
	eb_pg_args_text(&a, "k-conflict");
	eb_pg_args_time(&a, 1700000000);
	assert_int_equal(eb_pg_exec(c, S_INS_U, &a, NULL), EB_STORE_OK);
	assert_int_equal(eb_pg_exec(c, S_INS_U, &a, NULL), EB_STORE_CONFLICT);
	assert_string_equal(eb_pg_conn_sqlstate(c), "23505");
	/* the connection is still good after the error */
	assert_int_equal(sql_int8(c, "SELECT 7"), 7);
	eb_pg_pool_release(p, c);
	eb_pg_pool_destroy(p);
}

/* Write skew: read both rows, then (after the other commits) write one. */
struct skew {
	struct eb_pg_conn *other;
	int attempts;
	int interfere_upto; /* attempts during which the other transaction runs
	                     */
};

static int
skew_fn(struct eb_pg_conn *c, void *arg)
{
	struct skew *s = arg;
	struct eb_pg_args a;
	PGresult *r = NULL;
	int rc;

	s->attempts++;
	if ((rc = eb_pg_exec(c, S_SUM_W, NULL, &r)) != EB_STORE_OK)
		return rc;
	PQclear(r);
	if (s->attempts <= s->interfere_upto) {
		/* A concurrent SERIALIZABLE transaction on the other
		 * connection reads the same rows and changes row 2. */
		sql(s->other, "BEGIN ISOLATION LEVEL SERIALIZABLE");
		assert_int_equal(eb_pg_exec(s->other, S_SUM_W, NULL, &r),
		                 EB_STORE_OK);
		PQclear(r);
		eb_pg_args_init(&a);
		eb_pg_args_int8(&a, 2);
		assert_int_equal(eb_pg_exec(s->other, S_BUMP_W, &a, NULL),
		                 EB_STORE_OK);
		sql(s->other, "COMMIT");
	}
	eb_pg_args_init(&a);
	eb_pg_args_int8(&a, 1);
	return eb_pg_exec(c, S_BUMP_W, &a, NULL);
}

static void
test_tx_retries_serialization(void **state)
{
	struct eb_pg_pool *p;
	struct eb_pg_conn *c, *o;
	struct skew s;

	need_pg();
	p = pool(2, 1000, "ebt-serial");
	c = eb_pg_pool_acquire(p);
	o = eb_pg_pool_acquire(p);
	sql(c, "DELETE FROM w; INSERT INTO w VALUES (1, 0), (2, 0)");

	/* One conflicting commit: the first attempt fails with 40001, the
	 * second commits. */
	memset(&s, 0, sizeof(s));
	s.other = o;
	s.interfere_upto = 1;
	assert_int_equal(eb_pg_tx(c, EB_PG_SERIALIZABLE, skew_fn, &s),
	                 EB_STORE_OK);
	assert_int_equal(s.attempts, 2);
	assert_string_equal(eb_pg_conn_sqlstate(c), "");
	assert_int_equal(get_w(c, 1), 1);
	assert_int_equal(get_w(c, 2), 1);

	/* A conflict every time: bounded, then EB_STORE_ERROR, nothing of
	 * ours written. */
	memset(&s, 0, sizeof(s));
	s.other = o;
	s.interfere_upto = 100;
	assert_int_equal(eb_pg_tx(c, EB_PG_SERIALIZABLE, skew_fn, &s),
	                 EB_STORE_ERROR);
	assert_int_equal(s.attempts, 1 + EB_PG_TX_RETRIES);
	assert_string_equal(eb_pg_conn_sqlstate(c), "40001");
	assert_int_equal(get_w(c, 1), 1);
	assert_int_equal(get_w(c, 2), 1 + 1 + EB_PG_TX_RETRIES);
	eb_pg_pool_release(p, o);
	eb_pg_pool_release(p, c);
	eb_pg_pool_destroy(p);
}

/* Two transactions lock rows 11 and 12 in opposite orders. */
struct dl {
	pthread_barrier_t *both_hold_one;
	struct eb_pg_pool *p;
	int64_t first, second;
	int attempts;
	int rc;
};

static int
dl_fn(struct eb_pg_conn *c, void *arg)
{
	struct dl *d = arg;
	struct eb_pg_args a;
	int rc;

	d->attempts++;
	eb_pg_args_init(&a);
	eb_pg_args_int8(&a, d->first);
	if ((rc = eb_pg_exec(c, S_BUMP_W, &a, NULL)) != EB_STORE_OK)
		return rc;
	if (d->attempts == 1) /* only then: a retry must not wait here */
		pthread_barrier_wait(d->both_hold_one);
	eb_pg_args_init(&a);
	eb_pg_args_int8(&a, d->second);
	return eb_pg_exec(c, S_BUMP_W, &a, NULL);
}

static void *
dl_thread(void *arg)
{
	struct dl *d = arg;
	struct eb_pg_conn *c = eb_pg_pool_acquire(d->p);

	d->rc = c != NULL ? eb_pg_tx(c, EB_PG_READ_COMMITTED, dl_fn, d)
	                  : EB_STORE_ERROR;
	eb_pg_pool_release(d->p, c);
	return NULL;
}

/*
 * A genuine deadlock (40P01): the server aborts one of the two after
 * deadlock_timeout (1 s); the helper runs that one again and both commit.
 */
static void
test_tx_retries_deadlock(void **state)
{
	pthread_barrier_t bar;
	struct eb_pg_pool *p;
	struct eb_pg_conn *c;
	struct dl d1, d2;
	pthread_t t1, t2;

	need_pg();
	p = pool(3, 5000, "ebt-deadlock");
	c = eb_pg_pool_acquire(p);
	sql(c, "DELETE FROM w WHERE id IN (11, 12); "
	       "INSERT INTO w VALUES (11, 0), (12, 0)");
	eb_pg_pool_release(p, c);
	pthread_barrier_init(&bar, NULL, 2);
	memset(&d1, 0, sizeof(d1));
	d1.both_hold_one = &bar;
	d1.p = p;
	d2 = d1;
	d1.first = d2.second = 11;
	d1.second = d2.first = 12;
	assert_int_equal(pthread_create(&t1, NULL, dl_thread, &d1), 0);
	assert_int_equal(pthread_create(&t2, NULL, dl_thread, &d2), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	pthread_barrier_destroy(&bar);
	assert_int_equal(d1.rc, EB_STORE_OK);
	assert_int_equal(d2.rc, EB_STORE_OK);
	assert_int_equal(d1.attempts + d2.attempts, 3);
	c = eb_pg_pool_acquire(p);
	assert_int_equal(get_w(c, 11), 2);
	assert_int_equal(get_w(c, 12), 2);
	eb_pg_pool_release(p, c);
	eb_pg_pool_destroy(p);
}

/* statement_timeout (57014) and lock_timeout (55P03) are errors, not hangs. */
static void
test_timeouts(void **state)
{
	struct eb_pg_pool_limits lim = {2, 1000, 200, "ebt-timeouts"};
	struct eb_pg_pool *p;
	struct eb_pg_conn *a, *b;
	struct eb_pg_args args;
	struct timespec t0;
	char err[256];

	need_pg();
	p = eb_pg_pool_create(dsn, stmts, NSTMTS, &lim, err, sizeof(err));
	assert_non_null(p);
	a = eb_pg_pool_acquire(p);
	b = eb_pg_pool_acquire(p);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(eb_pg_exec_sql(a, "SELECT pg_sleep(5)", NULL),
	                 EB_STORE_ERROR);
	assert_string_equal(eb_pg_conn_sqlstate(a), "57014");
	assert_true(ms_since(&t0) < 2000);

	sql(a, "DELETE FROM w WHERE id = 21; INSERT INTO w VALUES (21, 0)");
	sql(a, "BEGIN");
	eb_pg_args_init(&args);
	eb_pg_args_int8(&args, 21);
	assert_int_equal(eb_pg_exec(a, S_BUMP_W, &args, NULL), EB_STORE_OK);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(eb_pg_exec(b, S_BUMP_W, &args, NULL), EB_STORE_ERROR);
	assert_string_equal(eb_pg_conn_sqlstate(b), "55P03");
	assert_true(ms_since(&t0) < 2000);
	/* released inside a transaction: rolled back, not left open */
	eb_pg_pool_release(p, a);
	assert_int_equal(get_w(b, 21), 0);
	eb_pg_pool_release(p, b);
	eb_pg_pool_destroy(p);
}

struct ins {
	const char *k;
	int ignore_error; /* return OK whatever the insert said */
	int rc;           /* what fn returns when the insert worked */
	int runs;
};

static int
ins_fn(struct eb_pg_conn *c, void *arg)
{
	struct ins *x = arg;
	struct eb_pg_args a;
	int rc;

	x->runs++;
	eb_pg_args_init(&a);
	eb_pg_args_text(&a, x->k);
	eb_pg_args_time(&a, 1);
	rc = eb_pg_exec(c, S_INS_U, &a, NULL);
	if (x->ignore_error)
		return EB_STORE_OK;
	return rc != EB_STORE_OK ? rc : x->rc;
}

/* fn's code rolls back; a transaction that failed is never reported done. */
static void
test_tx_rollback(void **state)
{
	struct eb_pg_pool *p;
	struct eb_pg_conn *c;
	struct ins x = {"k-rollback", 0, EB_STORE_NOT_FOUND, 0};

	need_pg();
	p = pool(1, 1000, "ebt-rollback");
	c = eb_pg_pool_acquire(p);
	assert_int_equal(eb_pg_tx(c, EB_PG_READ_COMMITTED, ins_fn, &x),
	                 EB_STORE_NOT_FOUND);
	assert_int_equal(
	    sql_int8(c, "SELECT count(*) FROM u WHERE k = 'k-rollback'"), 0);
	x.rc = EB_STORE_OK;
	assert_int_equal(eb_pg_tx(c, EB_PG_READ_COMMITTED, ins_fn, &x),
	                 EB_STORE_OK);
	assert_int_equal(eb_pg_tx(c, EB_PG_READ_COMMITTED, ins_fn, &x),
	                 EB_STORE_CONFLICT);
	x.ignore_error = 1; /* COMMIT answers ROLLBACK */
	assert_int_equal(eb_pg_tx(c, EB_PG_READ_COMMITTED, ins_fn, &x),
	                 EB_STORE_ERROR);
	assert_int_equal(x.runs, 4);
	eb_pg_pool_release(p, c);
	eb_pg_pool_destroy(p);
}

/* Kill c's server process from another connection and wait for it to go. */
static void
kill_backend(struct eb_pg_conn *killer, int pid)
{
	char q[160];
	int i;

	snprintf(q, sizeof(q), "SELECT pg_terminate_backend(%d)::int", pid);
	assert_int_equal(sql_int8(killer, q), 1);
	snprintf(q, sizeof(q),
	         "SELECT count(*) FROM pg_stat_activity WHERE pid = %d", pid);
	for (i = 0; i < 200 && sql_int8(killer, q) != 0; i++)
		usleep(10000);
}

static void
test_killed_backend_replaced(void **state)
{
	struct eb_pg_pool *p;
	struct eb_pg_conn *c, *k;
	struct eb_pg_args a;
	struct ins x = {"k-killed", 0, EB_STORE_OK, 0};
	PGresult *r;
	int pid1, pid2;

	need_pg();
	p = pool(2, 1000, "ebt-killed");
	c = eb_pg_pool_acquire(p);
	k = eb_pg_pool_acquire(p);
	eb_pg_args_init(&a);
	eb_pg_args_int8(&a, 42);
	eb_pg_args_bytea(&a, "b", 1);
	eb_pg_args_text(&a, "t");
	assert_int_equal(eb_pg_exec(c, S_ECHO, &a, &r), EB_STORE_OK);
	PQclear(r);
	pid1 = eb_pg_conn_backend_pid(c);
	assert_true(pid1 > 0);

	/* A statement on its own: reopened, prepared again, run. */
	kill_backend(k, pid1);
	assert_int_equal(eb_pg_exec(c, S_ECHO, &a, &r), EB_STORE_OK);
	PQclear(r);
	pid2 = eb_pg_conn_backend_pid(c);
	assert_true(pid2 > 0 && pid2 != pid1);
	assert_int_equal(eb_pg_conn_reconnects(c), 1);
	assert_int_equal(eb_pg_conn_prepares(c), 2);

	/* A transaction: reopened and the transaction run again. */
	kill_backend(k, pid2);
	assert_int_equal(eb_pg_tx(c, EB_PG_READ_COMMITTED, ins_fn, &x),
	                 EB_STORE_OK);
	assert_int_equal(eb_pg_conn_reconnects(c), 2);
	assert_int_equal(
	    sql_int8(k, "SELECT count(*) FROM u WHERE k = 'k-killed'"), 1);

	/* Inside a transaction opened by hand: the statement is not run
	 * again on its own on the new connection, and nothing is kept. */
	sql(c, "BEGIN");
	x.k = "k-hand-a";
	assert_int_equal(ins_fn(c, &x), EB_STORE_OK);
	kill_backend(k, eb_pg_conn_backend_pid(c));
	x.k = "k-hand-b";
	assert_int_equal(ins_fn(c, &x), EB_STORE_ERROR);
	assert_int_equal(eb_pg_conn_reconnects(c), 3);
	assert_int_equal(sql_int8(k, "SELECT count(*) FROM u WHERE k IN "
	                             "('k-hand-a', 'k-hand-b')"),
	                 0);

	/* Killed while checked in: the next user gets a working one. */
	kill_backend(k, eb_pg_conn_backend_pid(c));
	eb_pg_pool_release(p, c);
	c = eb_pg_pool_acquire(p);
	assert_int_equal(sql_int8(c, "SELECT 5"), 5);
	eb_pg_pool_release(p, k);
	eb_pg_pool_release(p, c);
	eb_pg_pool_destroy(p);
}

#define PW "Pw-s3cret-xyzzy"

static void
log_run(char *out, size_t outlen, void (*fn)(void))
{
	char path[] = "/tmp/eb_test_pglog_XXXXXX";
	int fd, saved;
	ssize_t n;

	fd = mkstemp(path);
	assert_true(fd != -1);
	unlink(path);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(dup2(fd, STDERR_FILENO) != -1);
	eb_log_init(EB_LOG_DEBUG, 0);
	fn();
	eb_log_init(EB_LOG_WARN, 0);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	assert_true(lseek(fd, 0, SEEK_SET) == 0);
	n = read(fd, out, outlen - 1);
	close(fd);
	assert_true(n >= 0);
	out[n] = '\0';
}

static void
password_users(void)
{
	struct eb_pg_pool_limits lim = {2, 100, 5000, "ebt-password"};
	char d[1200], err[512];
	struct eb_pg_pool *p;
	struct eb_pg_conn *c, *d2;
	struct eb_pg_args a;

	/* Trust authentication ignores the password but libpq carries it. */
	snprintf(d, sizeof(d), "%s password=" PW, dsn);
	p = eb_pg_pool_create(d, stmts, NSTMTS, &lim, err, sizeof(err));
	assert_non_null(p);
	c = eb_pg_pool_acquire(p);
	eb_pg_args_init(&a);
	eb_pg_args_text(&a, "k-password");
	eb_pg_args_time(&a, 1);
	eb_pg_exec(c, S_INS_U, &a, NULL);
	eb_pg_exec(c, S_INS_U, &a, NULL);   /* conflict */
	eb_pg_exec_sql(c, "SELEC 1", NULL); /* syntax error, warned */
	d2 = eb_pg_pool_acquire(p);
	assert_non_null(d2);
	assert_null(eb_pg_pool_acquire(p));          /* all busy, warned */
	kill_backend(d2, eb_pg_conn_backend_pid(c)); /* lost, reopened */
	eb_pg_exec_sql(c, "SELECT 1", NULL);
	eb_pg_pool_release(p, d2);
	eb_pg_pool_release(p, c);
	eb_pg_pool_destroy(p);

	/* Nobody listens on port 1 of the loopback: connecting fails. */
	assert_null(eb_pg_pool_create("host=127.0.0.1 port=1 user=eb "
	                              "connect_timeout=2 password=" PW,
	                              stmts, NSTMTS, &lim, err, sizeof(err)));
	assert_null(strstr(err, "s3cret"));
	assert_non_null(strstr(err, "password=***"));
	assert_null(eb_pg_pool_create("postgresql://eb:" PW "@127.0.0.1:1/x",
	                              stmts, NSTMTS, &lim, err, sizeof(err)));
	assert_null(strstr(err, "s3cret"));
}

static void
test_password_never_logged(void **state)
{
	static char out[65536];

	need_pg();
	log_run(out, sizeof(out), password_users);
	/* the log did say something about each DSN */
	assert_non_null(strstr(out, "password=***"));
	assert_non_null(strstr(out, "cannot connect"));
	assert_non_null(strstr(out, "23505"));
	if (strstr(out, "s3cret") != NULL)
		fail_msg("password in the log:\n%s", out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dsn_redact),
	    cmocka_unit_test(test_sqlstate_map),
	    cmocka_unit_test(test_binary_binding),
	    cmocka_unit_test(test_pool_bounds),
	    cmocka_unit_test(test_prepared_reused),
	    cmocka_unit_test(test_unique_is_conflict),
	    cmocka_unit_test(test_tx_retries_serialization),
	    cmocka_unit_test(test_tx_retries_deadlock),
	    cmocka_unit_test(test_timeouts),
	    cmocka_unit_test(test_tx_rollback),
	    cmocka_unit_test(test_killed_backend_replaced),
	    cmocka_unit_test(test_password_never_logged),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
