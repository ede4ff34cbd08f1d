/*
 * Migrations as an operator meets them (issue 12, item 7), on the SQLite
 * store: eb_store_open_flags reports each migration it applies; with
 * EB_STORE_OPEN_NO_MIGRATE (database_migrate: false) an out-of-date
 * database is refused, naming the pending versions and `enrollbridge
 * migrate`, and an up-to-date one opens; a binary that knows fewer
 * migrations (eb_store_test_schema_limit) starts on a newer database when
 * its compat allows and is refused otherwise; and handles opening one empty
 * database at the same moment all come up, each migration applied once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store.h"

#define NTHREADS 4
#define ROUNDS   10

struct fx {
	char dir[256];
	char path[320];
	int round;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	const char *base = getenv("EB_BINARY_DIR");

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "%s/migrate-test-XXXXXX",
	         base ? base : "/tmp");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/eb.db", fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	char cmd[300];

	eb_store_test_schema_limit(-1);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		return -1;
	free(fx);
	return 0;
}

/* What the applied callback heard. */
struct heard {
	atomic_int n;
	int versions[64];
};

static void
on_applied(void *arg, int version, const char *name)
{
	struct heard *h = arg;
	int i = atomic_fetch_add(&h->n, 1);

	assert_non_null(name);
	assert_true(name[0] != '\0');
	if (i < 64)
		h->versions[i] = version;
}

/* The newest version this binary knows: what a fresh open reaches. */
static int64_t
newest(const char *dir)
{
	char path[400], err[512];
	struct eb_store *s;
	int64_t v = -1;

	snprintf(path, sizeof(path), "%s/newest.db", dir);
	assert_non_null(s = eb_store_open(NULL, path, err, sizeof(err)));
	assert_int_equal(eb_store_schema_version(s, &v), EB_STORE_OK);
	eb_store_close(s);
	return v;
}

static struct eb_store *
open_limit(const char *path, int limit, int flags, char *err, size_t errlen)
{
	struct eb_store *s;

	eb_store_test_schema_limit(limit);
	s = eb_store_open_flags(NULL, path, flags, NULL, NULL, err, errlen);
	eb_store_test_schema_limit(-1);
	return s;
}

static void
test_applied_reported_in_order(void **state)
{
	struct fx *fx = *state;
	struct heard h = {0};
	struct eb_store *s;
	char err[512];
	int64_t v;
	int i;

	s = eb_store_open_flags(NULL, fx->path, 0, on_applied, &h, err,
	                        sizeof(err));
	assert_non_null(s);
	assert_int_equal(eb_store_schema_version(s, &v), EB_STORE_OK);
	assert_true(v >= 5); /* 5 added compat */
	assert_int_equal(atomic_load(&h.n), (int)v);
	for (i = 0; i < (int)v; i++)
		assert_int_equal(h.versions[i], i + 1);
	eb_store_close(s);
	/* nothing pending: nothing reported */
	atomic_store(&h.n, 0);
	s = eb_store_open_flags(NULL, fx->path, 0, on_applied, &h, err,
	                        sizeof(err));
	assert_non_null(s);
	assert_int_equal(atomic_load(&h.n), 0);
	eb_store_close(s);
}

static void
test_no_migrate_refuses_pending(void **state)
{
	struct fx *fx = *state;
	int64_t known = newest(fx->dir), v;
	char err[512], want[128];
	struct eb_store *s;

	/* empty database */
	s = eb_store_open_flags(NULL, fx->path, EB_STORE_OPEN_NO_MIGRATE, NULL,
	                        NULL, err, sizeof(err));
	assert_null(s);
	snprintf(want, sizeof(want),
	         "schema version 0 and migrations 1-%lld pending",
	         (long long)known);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "enrollbridge migrate"));
	assert_non_null(strstr(err, "database_migrate is false"));

	/* a database one migration behind */
	s = open_limit(fx->path, (int)known - 1, 0, err, sizeof(err));
	assert_non_null(s);
	eb_store_close(s);
	s = eb_store_open_flags(NULL, fx->path, EB_STORE_OPEN_NO_MIGRATE, NULL,
	                        NULL, err, sizeof(err));
	assert_null(s);
	snprintf(want, sizeof(want), "migration %lld pending",
	         (long long)known);
	assert_non_null(strstr(err, want));

	/* refused without a change: still one behind, then migrated */
	s = open_limit(fx->path, (int)known - 1, EB_STORE_OPEN_NO_MIGRATE, err,
	               sizeof(err));
	assert_non_null(s);
	assert_int_equal(eb_store_schema_version(s, &v), EB_STORE_OK);
	assert_int_equal(v, known - 1);
	eb_store_close(s);
	assert_non_null(s = eb_store_open(NULL, fx->path, err, sizeof(err)));
	eb_store_close(s);
	s = eb_store_open_flags(NULL, fx->path, EB_STORE_OPEN_NO_MIGRATE, NULL,
	                        NULL, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(eb_store_ping(s), EB_STORE_OK);
	eb_store_close(s);
}

/* An older binary on a newer, compatible database starts (rolling upgrade). */
static void
test_older_binary_starts_when_compatible(void **state)
{
	struct fx *fx = *state;
	int64_t known = newest(fx->dir), v;
	struct eb_store *s;
	char err[512];

	assert_non_null(s = eb_store_open(NULL, fx->path, err, sizeof(err)));
	eb_store_close(s);
	/* one release behind, migrating or not */
	s = open_limit(fx->path, (int)known - 1, 0, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(eb_store_schema_version(s, &v), EB_STORE_OK);
	assert_int_equal(v, known); /* the database was not touched */
	eb_store_close(s);
	s = open_limit(fx->path, 1, EB_STORE_OPEN_NO_MIGRATE, err, sizeof(err));
	assert_non_null(s);
	eb_store_close(s);
}

/* Raise the compat of the newest migration, as a breaking one would. */
static void
set_compat(const char *path, int64_t version, int compat)
{
	sqlite3 *db;
	char sql[128];

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(
	    sql, sizeof(sql),
	    "UPDATE schema_migrations SET compat = %d WHERE version = %lld",
	    compat, (long long)version);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_close(db);
}

static void
test_older_binary_refused_when_incompatible(void **state)
{
	struct fx *fx = *state;
	int64_t known = newest(fx->dir);
	struct eb_store *s;
	char err[512], want[64];

	assert_non_null(s = eb_store_open(NULL, fx->path, err, sizeof(err)));
	eb_store_close(s);
	set_compat(fx->path, known, (int)known);
	s = open_limit(fx->path, (int)known - 1, 0, err, sizeof(err));
	assert_null(s);
	assert_non_null(strstr(err, "newer than this enrollbridge knows"));
	snprintf(want, sizeof(want), "binaries of schema %lld",
	         (long long)known);
	assert_non_null(strstr(err, want));
	s = open_limit(fx->path, (int)known - 1, EB_STORE_OPEN_NO_MIGRATE, err,
	               sizeof(err));
	assert_null(s);
	assert_non_null(strstr(err, "newer than this enrollbridge knows"));
	/* this binary knows it: it opens */
	assert_non_null(s = eb_store_open(NULL, fx->path, err, sizeof(err)));
	eb_store_close(s);
}

/* A database from before compat was recorded is compatible with itself only. */
static void
test_pre_compat_database_refused_when_newer(void **state)
{
	struct fx *fx = *state;
	struct eb_store *s;
	char err[512];

	s = open_limit(fx->path, 4, 0, err, sizeof(err));
	assert_non_null(s);
	eb_store_close(s);
	s = open_limit(fx->path, 3, 0, err, sizeof(err));
	assert_null(s);
	assert_non_null(strstr(err, "newer than this enrollbridge knows (3)"));
}

struct racer {
	pthread_barrier_t *go;
	const char *path;
	struct heard *heard;
	struct eb_store *s;
	char err[512];
};

static void *
race_open(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->go);
	r->s = eb_store_open_flags(NULL, r->path, 0, on_applied, r->heard,
	                           r->err, sizeof(r->err));
	return NULL;
}

/* Handles opening one empty database at once all come up (BEGIN IMMEDIATE
 * serialises them; each re-reads the version inside the lock). */
static void
test_concurrent_open_empty(void **state)
{
	struct fx *fx = *state;
	int64_t known = newest(fx->dir), v;
	struct racer r[NTHREADS];
	pthread_t t[NTHREADS];
	pthread_barrier_t go;
	struct heard h;
	char path[400];
	int round, i;

	for (round = 0; round < ROUNDS; round++) {
		snprintf(path, sizeof(path), "%s/race%d.db", fx->dir, round);
		memset(&h, 0, sizeof(h));
		assert_int_equal(pthread_barrier_init(&go, NULL, NTHREADS), 0);
		for (i = 0; i < NTHREADS; i++) {
			memset(&r[i], 0, sizeof(r[i]));
			r[i].go = &go;
			r[i].path = path;
			r[i].heard = &h;
			assert_int_equal(
			    pthread_create(&t[i], NULL, race_open, &r[i]), 0);
		}
		for (i = 0; i < NTHREADS; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&go);
		for (i = 0; i < NTHREADS; i++) {
			if (r[i].s == NULL)
				fail_msg("round %d opener %d: %s", round, i,
				         r[i].err);
			assert_int_equal(eb_store_schema_version(r[i].s, &v),
			                 EB_STORE_OK);
			assert_int_equal(v, known);
			eb_store_close(r[i].s);
		}
		/* each migration applied exactly once among them */
		assert_int_equal(atomic_load(&h.n), (int)known);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(test_applied_reported_in_order),
	    T(test_no_migrate_refuses_pending),
	    T(test_older_binary_starts_when_compatible),
	    T(test_older_binary_refused_when_incompatible),
	    T(test_pre_compat_database_refused_when_newer),
	    T(test_concurrent_open_empty),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
