/*
 * The PostgreSQL change feed (src/store/pg/pg_feed.c) against a real
 * server: the throwaway cluster contrib/pg-test.sh starts (EB_TEST_PG).
 * Each run works in a schema of its own holding migration 6's
 * eb_generation table, dropped at the end. A second connection plays the
 * other replica and runs the invalidation SQL the PostgreSQL backend
 * commits (SCALEOUT 3.6).
 *
 * The feed is driven through the store's stamp (eb_store_stamp), with a
 * backend ops table whose feed_start is eb_pg_feed_start, which is how
 * the PostgreSQL backend wires it: so "the cache may answer" is checked
 * by the real rule, not a copy of it. It checks: a NOTIFY moves the stamp
 * within 100 ms (p50/p99 of 20 trials printed); an UPDATE alone within
 * 400 ms (the heartbeat), and so does a generation set back; an
 * unrelated write, a notification on another channel or schema, or a key
 * change does not; a heartbeat that cannot
 * complete (the row locked) makes the stamp -1 after a second, and stop
 * still returns at once; a terminated feed backend makes the stamp -1
 * while it cannot log in again (retrying without spinning), then
 * recovers with a new stamp that moves on the next invalidation; stop
 * returns within 300 ms; a bad DSN is a clear error without the password.
 * Without EB_TEST_PG the server tests skip, except under CI=true, where
 * they fail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "store/migrations.h"
#include "store/pg/pg_conn.h"
#include "store/pg/pg_feed.h"
#include "store/store.h"

#define PW "Pw-s3cret-feed"

static char schema[64];
static char role[64];
static char dsn[1400];    /* EB_TEST_PG in our schema */
static char dsn_as[1600]; /* the same, as our NOLOGIN-able role */
static int db_ready = -1; /* -1 no EB_TEST_PG, 0 failed, 1 ready */

static struct eb_pg_pool *writer;    /* the "other replica" */
static struct eb_pg_feed *last_feed; /* the feed fbe_feed_start made */

static const char inval_sql[] =
    "WITH g AS (UPDATE eb_generation SET n = n + 1 WHERE id = 1 "
    "RETURNING n) SELECT pg_notify(current_schema() || '.eb_inval', "
    "n::text) FROM g";
static const char update_sql[] =
    "UPDATE eb_generation SET n = n + 1 WHERE id = 1";

static int
under_ci(void)
{
	const char *ci = getenv("CI");

	return ci != NULL && *ci != '\0' && strcmp(ci, "false") != 0 &&
	       strcmp(ci, "0") != 0;
}

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

static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* CPU time of the whole process (the feed's thread included). */
static int64_t
cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Run q on the writer's connection (or on pool p); 0 or -1. */
static int
run_on(struct eb_pg_pool *p, const char *q)
{
	struct eb_pg_conn *c = eb_pg_pool_acquire(p);
	int rc;

	if (c == NULL)
		return -1;
	rc = eb_pg_exec_sql(c, q, NULL) == EB_STORE_OK ? 0 : -1;
	eb_pg_pool_release(p, c);
	return rc;
}

static void
run(const char *q)
{
	if (run_on(writer, q) != 0)
		fail_msg("%s failed", q);
}

/* ---- a backend whose only capability is the feed ------------------- */

struct fbe {
	char *dsn;
	struct eb_pg_feed *feed;
};

static int
fbe_open(const char *target, void **bep, char *err, size_t errlen)
{
	struct fbe *b = eb_calloc(1, sizeof(*b));

	if (b == NULL || (b->dsn = eb_strdup(target)) == NULL) {
		eb_free(b);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*bep = b;
	return 0;
}

static void
fbe_close(void *be)
{
	struct fbe *b = be;

	assert_null(b->feed); /* the store stopped it first */
	eb_free(b->dsn);
	eb_free(b);
}

static int
fbe_feed_start(void *be, _Atomic uint64_t *seq, _Atomic int64_t *alive_ns)
{
	struct fbe *b = be;
	char err[512];

	b->feed = eb_pg_feed_start_as(b->dsn, "ebt-feed", seq, alive_ns, err,
	                              sizeof(err));
	last_feed = b->feed;
	return b->feed != NULL ? 0 : -1;
}

static void
fbe_feed_stop(void *be)
{
	struct fbe *b = be;

	eb_pg_feed_stop(b->feed);
	b->feed = NULL;
}

static const struct eb_store_ops fbe_ops = {
    .name = "pg-feed-test",
    .open = fbe_open,
    .close = fbe_close,
    .feed_start = fbe_feed_start,
    .feed_stop = fbe_feed_stop,
};

/* A store on target following its feed. */
static struct eb_store *
feed_store(const char *target)
{
	struct eb_store *s;
	char err[256];

	s = eb_store_open(&fbe_ops, target, err, sizeof(err));
	if (s == NULL)
		fail_msg("open: %s", err);
	assert_int_equal(eb_store_feed_start(s), 1);
	return s;
}

/* The stamp's feed sequence, or -1 when the stamp is refused. */
static int64_t
stamp_seq(struct eb_store *s)
{
	struct eb_store_stamp st;

	if (eb_store_stamp(s, &st) != 0)
		return -1;
	return (int64_t)st.feed;
}

/*
 * Milliseconds until the stamp's sequence differs from before (and the
 * stamp is usable), at most limit_ms; -1 when it did not.
 */
static double
ms_until_moved(struct eb_store *s, int64_t before, long limit_ms, int64_t t0)
{
	int64_t v;

	while (mono_ns() - t0 < limit_ms * 1000000LL) {
		v = stamp_seq(s);
		if (v >= 0 && v != before)
			return (double)(mono_ns() - t0) / 1e6;
		sleep_ms(1);
	}
	return -1;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* ---- setup ------------------------------------------------------------- */

/* Migration 6's DDL of eb_generation (the statements for that table). */
static char *
generation_ddl(void)
{
	const struct eb_store_migration *m;
	const char *from, *to;
	size_t n, i;

	m = eb_store_migrations(&n);
	for (i = 0; i < n; i++) {
		if (m[i].version != 6 || m[i].sql_pg == NULL)
			continue;
		from = strstr(m[i].sql_pg, "CREATE TABLE eb_generation");
		to = from ? strstr(from, "CREATE TABLE renew_slots") : NULL;
		if (from != NULL && to != NULL)
			return eb_strndup(from, (size_t)(to - from));
	}
	return NULL;
}

static int
group_setup(void **state)
{
	const char *base = getenv("EB_TEST_PG");
	struct eb_pg_pool_limits lim = {2, 5000, 5000, "ebt-feed-writer"};
	struct eb_pg_pool *p;
	char q[512], err[256], *ddl;

	eb_log_init(EB_LOG_WARN, 0);
	if (base == NULL || *base == '\0')
		return 0;
	db_ready = 0;
	snprintf(schema, sizeof(schema), "t_feed_%ld", (long)getpid());
	snprintf(role, sizeof(role), "ebt_feed_%ld", (long)getpid());
	if ((p = eb_pg_pool_create(base, NULL, 0, &lim, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "EB_TEST_PG: %s\n", err);
		return 0;
	}
	snprintf(q, sizeof(q),
	         "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s; "
	         "DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN; "
	         "GRANT USAGE ON SCHEMA %s TO %s",
	         schema, schema, role, role, schema, role);
	if (run_on(p, q) != 0) {
		eb_pg_pool_destroy(p);
		return 0;
	}
	eb_pg_pool_destroy(p);
	snprintf(dsn, sizeof(dsn), "%s options='-c search_path=%s'", base,
	         schema);
	snprintf(dsn_as, sizeof(dsn_as), "%s user=%s", dsn, role);
	if ((writer = eb_pg_pool_create(dsn, NULL, 0, &lim, err,
	                                sizeof(err))) == NULL ||
	    (ddl = generation_ddl()) == NULL)
		return 0;
	if (run_on(writer, ddl) == 0) {
		snprintf(q, sizeof(q),
		         "GRANT SELECT ON eb_generation TO %s; "
		         "CREATE TABLE other (k int)",
		         role);
		if (run_on(writer, q) == 0)
			db_ready = 1;
	}
	eb_free(ddl);
	return 0;
}

static int
group_teardown(void **state)
{
	char q[256];

	if (writer == NULL)
		return 0;
	snprintf(q, sizeof(q), "DROP SCHEMA IF EXISTS %s CASCADE", schema);
	(void)run_on(writer, q);
	snprintf(q, sizeof(q),
	         "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
	         "WHERE usename = '%s'",
	         role);
	(void)run_on(writer, q);
	snprintf(q, sizeof(q), "DROP ROLE IF EXISTS %s", role);
	(void)run_on(writer, q);
	eb_pg_pool_destroy(writer);
	return 0;
}

/* ---- tests ------------------------------------------------------------- */

/* A NOTIFY reaches the stamp within 100 ms, every time. */
static void
test_notify_moves_stamp(void **state)
{
	enum { TRIALS = 20 };
	double ms[TRIALS];
	struct eb_store *s;
	int64_t before, t0;
	int i;

	need_pg();
	s = feed_store(dsn);
	for (i = 0; i < TRIALS; i++) {
		before = stamp_seq(s);
		assert_true(before >= 0);
		t0 = mono_ns();
		run(inval_sql);
		ms[i] = ms_until_moved(s, before, 1000, t0);
		if (ms[i] < 0 || ms[i] > 100)
			fail_msg("trial %d: stamp moved after %.1f ms", i,
			         ms[i]);
		sleep_ms(20);
	}
	qsort(ms, TRIALS, sizeof(ms[0]), cmp_double);
	printf("# notify -> stamp over %d trials: p50 %.2f ms, p99 %.2f ms\n",
	       TRIALS, ms[TRIALS / 2], ms[TRIALS - 1]);
	eb_store_close(s);
}

/* Without the doorbell the heartbeat read finds the change: 400 ms. */
static void
test_update_only_moves_stamp(void **state)
{
	struct eb_store *s;
	int64_t before, t0;
	double ms;
	int i;

	need_pg();
	s = feed_store(dsn);
	for (i = 0; i < 5; i++) {
		before = stamp_seq(s);
		assert_true(before >= 0);
		t0 = mono_ns();
		run(update_sql);
		ms = ms_until_moved(s, before, 1000, t0);
		if (ms < 0 || ms > 400)
			fail_msg("trial %d: stamp moved after %.1f ms", i, ms);
		printf("# update only -> stamp: %.1f ms\n", ms);
	}
	/* a generation that went back (a restored database) is a change too */
	before = stamp_seq(s);
	t0 = mono_ns();
	run("UPDATE eb_generation SET n = 0 WHERE id = 1");
	ms = ms_until_moved(s, before, 1000, t0);
	assert_true(ms >= 0 && ms <= 400);
	eb_store_close(s);
}

/*
 * Writes that invalidate nothing, notifications on other channels (another
 * schema's eb_inval among them) and key changes leave the stamp alone, and
 * heartbeats keep it usable. A key change moves the key counter.
 */
static void
test_unrelated_writes(void **state)
{
	struct eb_store *s;
	uint64_t keys;
	int64_t before;
	int i;

	need_pg();
	s = feed_store(dsn);
	before = stamp_seq(s);
	assert_true(before >= 0);
	keys = eb_pg_feed_keys(last_feed);
	run("INSERT INTO other VALUES (1)");
	run("SELECT pg_notify('eb_inval', '999999')");
	run("SELECT pg_notify('elsewhere.eb_inval', '999999')");
	run("SELECT pg_notify(current_schema() || '.eb_keys', 'k')");
	for (i = 0; i < 15; i++) { /* 1.5 s: several heartbeats */
		sleep_ms(100);
		assert_int_equal(stamp_seq(s), before);
	}
	assert_int_equal(eb_pg_feed_keys(last_feed), keys + 1);
	eb_store_close(s);
}

/*
 * A heartbeat that cannot finish (eb_generation locked by another
 * session) proves nothing: within ~1.3 s the stamp is refused; once the
 * lock goes, it is usable again. Stopping while the read waits is prompt.
 */
static void
test_stale_when_heartbeat_blocked(void **state)
{
	struct eb_pg_conn *c;
	struct eb_store *s;
	int64_t t0, t, stop_ms;

	need_pg();
	s = feed_store(dsn);
	assert_true(stamp_seq(s) >= 0);
	assert_non_null(c = eb_pg_pool_acquire(writer));
	assert_int_equal(eb_pg_exec_sql(c,
	                                "BEGIN; LOCK TABLE eb_generation IN "
	                                "ACCESS EXCLUSIVE MODE",
	                                NULL),
	                 EB_STORE_OK);
	t0 = mono_ns();
	while (stamp_seq(s) >= 0 && mono_ns() - t0 < 3000000000LL)
		sleep_ms(5);
	t = (mono_ns() - t0) / 1000000;
	printf("# heartbeat blocked -> stamp refused after %lld ms\n",
	       (long long)t);
	assert_true(stamp_seq(s) < 0);
	assert_true(t <= 1300);
	assert_int_equal(eb_pg_exec_sql(c, "ROLLBACK", NULL), EB_STORE_OK);
	t0 = mono_ns();
	while (stamp_seq(s) < 0 && mono_ns() - t0 < 2000000000LL)
		sleep_ms(5);
	assert_true(stamp_seq(s) >= 0);

	/* blocked again, then stopped in the middle of the wait */
	assert_int_equal(eb_pg_exec_sql(c,
	                                "BEGIN; LOCK TABLE eb_generation IN "
	                                "ACCESS EXCLUSIVE MODE",
	                                NULL),
	                 EB_STORE_OK);
	sleep_ms(600);
	t0 = mono_ns();
	eb_store_close(s);
	stop_ms = (mono_ns() - t0) / 1000000;
	assert_int_equal(eb_pg_exec_sql(c, "ROLLBACK", NULL), EB_STORE_OK);
	eb_pg_pool_release(writer, c);
	printf("# stop during a blocked heartbeat: %lld ms\n",
	       (long long)stop_ms);
	assert_true(stop_ms <= 300);
}

/*
 * The feed's backend terminated while its role may not log in: the stamp
 * is refused (caching off) until it can, then usable with a sequence it
 * never had before, on a new backend.
 */
static void
test_terminated_backend(void **state)
{
	struct eb_store *s;
	char q[256];
	int64_t before, t0, v, cpu0;
	int pid, pid2;

	need_pg();
	s = feed_store(dsn_as);
	pid = eb_pg_feed_backend_pid(last_feed);
	assert_true(pid > 0);
	snprintf(q, sizeof(q),
	         "DO $$ BEGIN IF (SELECT application_name FROM "
	         "pg_stat_activity WHERE pid = %d) IS DISTINCT FROM "
	         "'ebt-feed' THEN RAISE 'application_name not set'; END IF; "
	         "END $$",
	         pid);
	run(q);
	before = stamp_seq(s);
	assert_true(before >= 0);
	snprintf(q, sizeof(q), "ALTER ROLE %s NOLOGIN", role);
	run(q);
	snprintf(q, sizeof(q), "SELECT pg_terminate_backend(%d)", pid);
	run(q);
	t0 = mono_ns();
	while (stamp_seq(s) >= 0 && mono_ns() - t0 < 1300000000LL)
		sleep_ms(2);
	assert_true(stamp_seq(s) < 0);
	/* stays refused while it cannot log in, retrying without spinning */
	cpu0 = cpu_ns();
	sleep_ms(500);
	assert_true(stamp_seq(s) < 0);
	printf("# cpu while reconnecting: %lld ms in 500 ms\n",
	       (long long)((cpu_ns() - cpu0) / 1000000));
	assert_true(cpu_ns() - cpu0 < 100000000LL);
	assert_int_equal(eb_pg_feed_backend_pid(last_feed), 0);

	snprintf(q, sizeof(q), "ALTER ROLE %s LOGIN", role);
	run(q);
	t0 = mono_ns();
	while ((v = stamp_seq(s)) < 0 && mono_ns() - t0 < 8000000000LL)
		sleep_ms(10);
	printf("# recovered %lld ms after login was allowed again\n",
	       (long long)((mono_ns() - t0) / 1000000));
	assert_true(v > before);
	pid2 = eb_pg_feed_backend_pid(last_feed);
	assert_true(pid2 > 0 && pid2 != pid);
	assert_true(eb_pg_feed_reconnects(last_feed) >= 1);
	/* and it follows again */
	before = v;
	t0 = mono_ns();
	run(inval_sql);
	assert_true(ms_until_moved(s, before, 1000, t0) >= 0);
	eb_store_close(s);
}

/* Stopping an idle feed returns at once, and its stamp is refused after. */
static void
test_stop_prompt(void **state)
{
	_Atomic uint64_t seq = 0;
	_Atomic int64_t alive = 0;
	struct eb_pg_feed *f;
	char err[512];
	int64_t t0, ms;
	int i;

	need_pg();
	for (i = 0; i < 3; i++) {
		f = eb_pg_feed_start(dsn, &seq, &alive, err, sizeof(err));
		if (f == NULL)
			fail_msg("start: %s", err);
		assert_true(atomic_load(&seq) > 0);
		assert_true(atomic_load(&alive) > 0);
		sleep_ms(100 + 70 * i); /* anywhere in the 250 ms wait */
		t0 = mono_ns();
		eb_pg_feed_stop(f);
		ms = (mono_ns() - t0) / 1000000;
		printf("# stop: %lld ms\n", (long long)ms);
		assert_true(ms <= 300);
		assert_int_equal(atomic_load(&alive), 0);
	}
}

static void
log_run(char *out, size_t outlen, void (*fn)(void))
{
	char path[] = "/tmp/eb_test_pgfeed_XXXXXX";
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

/* Start a feed on d: it must fail with a reason holding no password. */
static void
start_fails(const char *d, const char *want)
{
	_Atomic uint64_t seq = 0;
	_Atomic int64_t alive = 0;
	char err[512];

	assert_null(eb_pg_feed_start(d, &seq, &alive, err, sizeof(err)));
	if (strstr(err, "s3cret") != NULL || strstr(err, want) == NULL)
		fail_msg("error for a bad DSN: \"%s\" (want \"%s\")", err,
		         want);
	assert_int_equal(atomic_load(&alive), 0);
}

static void
bad_dsns(void)
{
	start_fails("host='unterminated password=" PW, "cannot be parsed");
	start_fails("host=127.0.0.1 port=1 user=eb connect_timeout=2 "
	            "password=" PW,
	            "password=***");
	start_fails("postgresql://eb:" PW "@127.0.0.1:1/x", "cannot follow");
}

/* Bad DSNs: a clear error, and no password in it or in the log. */
static void
test_bad_dsn(void **state)
{
	static char out[16384];

	log_run(out, sizeof(out), bad_dsns);
	assert_non_null(strstr(out, "cannot follow"));
	if (strstr(out, "s3cret") != NULL)
		fail_msg("password in the log:\n%s", out);
}

/* A database without the generation table says so. */
static void
test_no_generation_table(void **state)
{
	const char *base = getenv("EB_TEST_PG");
	char d[1400];

	need_pg();
	snprintf(d, sizeof(d), "%s options='-c search_path=pg_catalog'", base);
	start_fails(d, "eb_generation");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_dsn),
	    cmocka_unit_test(test_notify_moves_stamp),
	    cmocka_unit_test(test_update_only_moves_stamp),
	    cmocka_unit_test(test_unrelated_writes),
	    cmocka_unit_test(test_stale_when_heartbeat_blocked),
	    cmocka_unit_test(test_terminated_backend),
	    cmocka_unit_test(test_stop_prompt),
	    cmocka_unit_test(test_no_generation_table),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
