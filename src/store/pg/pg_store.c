/*
 * The PostgreSQL storage backend (SCALEOUT 3.4): its ops table, opening
 * (a connection pool, a clock check, the schema brought up to date or only
 * checked), closing, ping and the schema version, and the hooks the
 * conformance suite uses to give each test a fresh schema. Migrations of
 * concurrent openers (replicas started together) are serialised by a lock
 * row, not an advisory lock (SCALEOUT 3.11, 3.13): the eb_locks table is
 * created on its own first (that CREATE races even with IF NOT EXISTS, so
 * it is retried), then one transaction takes the 'migrate' row FOR UPDATE,
 * reads the version, applies what is missing and records it. The
 * operations themselves are in pg_grants.c, pg_tokens.c and pg_misc.c.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "store/migrations.h"
#include "store/pg/pg_feed.h"
#include "store/pg/pg_int.h"

#define PG_DEFAULT_POOL    8
#define PG_DEFAULT_TIMEOUT 5000 /* ms */
#define PG_SKEW_WARN       1    /* seconds */
#define PG_LOCKS_TRIES     5

#define LOCKS_TABLE                                                            \
	"CREATE TABLE IF NOT EXISTS eb_locks ("                                \
	" name TEXT PRIMARY KEY,"                                              \
	" owner TEXT NOT NULL,"                                                \
	" until_at BIGINT NOT NULL DEFAULT 0)"

static void pg_close(void *be);

/* The single integer (text format) sql answers, into *out. */
static int
query_int(struct eb_pg_conn *c, const char *sql, int64_t *out)
{
	PGresult *r;
	char *end;
	int rc;

	if ((rc = eb_pg_exec_sql(c, sql, &r)) != EB_STORE_OK)
		return rc;
	if (PQntuples(r) != 1 || PQnfields(r) < 1 || PQgetisnull(r, 0, 0)) {
		PQclear(r);
		return EB_STORE_ERROR;
	}
	errno = 0;
	*out = strtoll(PQgetvalue(r, 0, 0), &end, 10);
	rc = errno != 0 || *end != '\0' ? EB_STORE_ERROR : EB_STORE_OK;
	PQclear(r);
	return rc;
}

/* ---- migrations ---- */

struct mig {
	struct eb_pg_store *ps;
	int migrate;  /* apply (1) or only check (0) */
	int64_t from; /* the version found */
	int64_t to;   /* the version left */
	char *err;
	size_t errlen;
};

/*
 * The database is at cur, newer than the known versions: start when its
 * migrations' max compat is one this binary knows (SCALEOUT 3.11).
 */
static int
check_newer(struct eb_pg_conn *c, struct mig *m, int64_t cur, int known)
{
	int64_t has = 0, compat = cur;
	int rc;

	if ((rc = query_int(c,
	                    "SELECT count(*) FROM information_schema.columns"
	                    " WHERE table_schema = current_schema()"
	                    " AND table_name = 'schema_migrations'"
	                    " AND column_name = 'compat'",
	                    &has)) != EB_STORE_OK ||
	    (has && (rc = query_int(c,
	                            "SELECT coalesce(max(compat), 0)"
	                            " FROM schema_migrations",
	                            &compat)) != EB_STORE_OK)) {
		snprintf(m->err, m->errlen,
		         "store: PostgreSQL schema %s: cannot read the schema "
		         "compatibility (see log)",
		         m->ps->schema);
		return rc;
	}
	if (compat > known) {
		snprintf(m->err, m->errlen,
		         "store: PostgreSQL schema %s has schema version %lld, "
		         "newer than this enrollbridge knows (%d), and needs "
		         "binaries of schema %lld or later: run a newer "
		         "enrollbridge or restore a backup",
		         m->ps->schema, (long long)cur, known,
		         (long long)compat);
		return EB_STORE_CONFLICT;
	}
	log_warnx("store: PostgreSQL schema %s: schema version %lld is newer "
	          "than this enrollbridge knows (%d) but compatible with it "
	          "(compat %lld): starting; upgrade this replica",
	          m->ps->schema, (long long)cur, known, (long long)compat);
	return EB_STORE_OK;
}

static int
apply_one(struct eb_pg_conn *c, struct mig *m,
          const struct eb_store_migration *mg)
{
	struct eb_pg_args a;
	int rc;

	if (mg->sql_pg == NULL) {
		snprintf(m->err, m->errlen,
		         "store: migration %d (%s) has no PostgreSQL version: "
		         "this binary cannot migrate a PostgreSQL database",
		         mg->version, mg->name);
		return EB_STORE_CONFLICT;
	}
	if ((rc = eb_pg_exec_sql(c, mg->sql_pg, NULL)) != EB_STORE_OK) {
		snprintf(m->err, m->errlen,
		         "store: PostgreSQL schema %s: migration %d (%s) "
		         "failed: SQLSTATE %s (see log)",
		         m->ps->schema, mg->version, mg->name,
		         eb_pg_conn_sqlstate(c));
		return rc;
	}
	eb_pg_args_init(&a);
	eb_pg_args_int8(&a, mg->version);
	eb_pg_args_text(&a, mg->name);
	eb_pg_args_int8(&a, (int64_t)time(NULL));
	if (mg->version >= EB_STORE_COMPAT_SINCE)
		eb_pg_args_int8(&a, mg->compat);
	rc = eb_pg_run(c,
	               mg->version >= EB_STORE_COMPAT_SINCE
	                   ? PS_MIG_RECORD_COMPAT
	                   : PS_MIG_RECORD,
	               &a, NULL);
	if (rc != EB_STORE_OK)
		snprintf(m->err, m->errlen,
		         "store: PostgreSQL schema %s: recording migration %d "
		         "failed (see log)",
		         m->ps->schema, mg->version);
	return rc;
}

/* Apply what is missing, under the 'migrate' lock row (eb_pg_tx). */
static int
migrate_tx(struct eb_pg_conn *c, void *arg)
{
	struct mig *m = arg;
	const struct eb_store_migration *list;
	int64_t cur = 0;
	size_t n;
	int known, rc;

	list = eb_store_migrations(&n);
	known = n > 0 ? list[n - 1].version : 0;
	if ((rc = eb_pg_exec_sql(c,
	                         "INSERT INTO eb_locks (name, owner, until_at)"
	                         " VALUES ('migrate', '', 0)"
	                         " ON CONFLICT DO NOTHING",
	                         NULL)) != EB_STORE_OK ||
	    (rc = eb_pg_exec_sql(c,
	                         "SELECT name FROM eb_locks"
	                         " WHERE name = 'migrate' FOR UPDATE",
	                         NULL)) != EB_STORE_OK ||
	    (rc =
	         eb_pg_exec_sql(c,
	                        "CREATE TABLE IF NOT EXISTS schema_migrations ("
	                        " version BIGINT PRIMARY KEY,"
	                        " name TEXT NOT NULL,"
	                        " applied_at BIGINT NOT NULL)",
	                        NULL)) != EB_STORE_OK ||
	    (rc = query_int(c,
	                    "SELECT coalesce(max(version), 0)"
	                    " FROM schema_migrations",
	                    &cur)) != EB_STORE_OK) {
		snprintf(m->err, m->errlen,
		         "store: PostgreSQL schema %s: cannot take the "
		         "migration lock or read the version (see log)",
		         m->ps->schema);
		return rc;
	}
	m->from = m->to = cur;
	if (cur > known)
		return check_newer(c, m, cur, known);
	for (; cur < known; cur++) {
		if (list[cur].version != cur + 1) {
			snprintf(m->err, m->errlen,
			         "store: migration list out of order at %lld",
			         (long long)cur);
			return EB_STORE_CONFLICT;
		}
		if ((rc = apply_one(c, m, &list[cur])) != EB_STORE_OK)
			return rc;
	}
	m->to = cur;
	return EB_STORE_OK;
}

/* Without migrating: up to date, or newer and compatible (eb_pg_tx). */
static int
check_tx(struct eb_pg_conn *c, void *arg)
{
	struct mig *m = arg;
	int64_t has = 0, cur = 0;
	size_t n;
	int known, rc;
	const struct eb_store_migration *list = eb_store_migrations(&n);

	known = n > 0 ? list[n - 1].version : 0;
	if ((rc = query_int(c,
	                    "SELECT count(*) FROM information_schema.tables"
	                    " WHERE table_schema = current_schema()"
	                    " AND table_name = 'schema_migrations'",
	                    &has)) != EB_STORE_OK ||
	    (has && (rc = query_int(c,
	                            "SELECT coalesce(max(version), 0)"
	                            " FROM schema_migrations",
	                            &cur)) != EB_STORE_OK)) {
		snprintf(m->err, m->errlen,
		         "store: PostgreSQL schema %s: cannot read the schema "
		         "version (see log)",
		         m->ps->schema);
		return rc;
	}
	m->from = m->to = cur;
	if (cur < known) {
		snprintf(
		    m->err, m->errlen,
		    "store: PostgreSQL schema %s is at schema version %lld "
		    "and migration%s %lld%s%.0d pending; "
		    "database_migrate is false: run `enrollbridge migrate "
		    "-c FILE` first",
		    m->ps->schema, (long long)cur, cur + 1 < known ? "s" : "",
		    (long long)cur + 1, cur + 1 < known ? "-" : "",
		    cur + 1 < known ? known : 0);
		return EB_STORE_CONFLICT;
	}
	return cur > known ? check_newer(c, m, cur, known) : EB_STORE_OK;
}

/*
 * eb_locks on its own: concurrent CREATE ... IF NOT EXISTS still races,
 * the loser failing on the table's name (42P07), its row type's (42710)
 * or the catalogue's unique index (23505).
 */
static int
ensure_locks(struct eb_pg_conn *c)
{
	const char *st;
	int i, rc = EB_STORE_ERROR;

	for (i = 0; i < PG_LOCKS_TRIES; i++) {
		if ((rc = eb_pg_exec_sql(c, LOCKS_TABLE, NULL)) == EB_STORE_OK)
			return rc;
		st = eb_pg_conn_sqlstate(c);
		if (strcmp(st, "23505") != 0 && strcmp(st, "42P07") != 0 &&
		    strcmp(st, "42710") != 0)
			break;
		usleep(2000 * (useconds_t)(i + 1));
	}
	return rc;
}

static int
schema_setup(struct eb_pg_conn *c, struct mig *m, eb_store_applied_fn *applied,
             void *arg)
{
	const struct eb_store_migration *list;
	size_t n;
	int rc;

	if (m->migrate && ensure_locks(c) != EB_STORE_OK) {
		snprintf(m->err, m->errlen,
		         "store: PostgreSQL schema %s: cannot create the lock "
		         "table: SQLSTATE %s (see log)",
		         m->ps->schema, eb_pg_conn_sqlstate(c));
		return -1;
	}
	rc = eb_pg_tx(c, EB_PG_READ_COMMITTED,
	              m->migrate ? migrate_tx : check_tx, m);
	if (rc != EB_STORE_OK) {
		if (m->err[0] == '\0')
			snprintf(m->err, m->errlen,
			         "store: PostgreSQL schema %s: %s failed (see "
			         "log)",
			         m->ps->schema,
			         m->migrate ? "migration" : "schema check");
		return -1;
	}
	list = eb_store_migrations(&n);
	for (; m->from < m->to; m->from++) {
		log_info("store: PostgreSQL schema %s: applied migration %d "
		         "(%s)",
		         m->ps->schema, list[m->from].version,
		         list[m->from].name);
		if (applied != NULL)
			applied(arg, list[m->from].version, list[m->from].name);
	}
	return 0;
}

/* ---- open / close ---- */

/* Warn when the server's clock and ours differ (leases, grace windows). */
static void
clock_check(struct eb_pg_conn *c, const char *schema)
{
	PGresult *r;
	int64_t db = 0, d;

	if (eb_pg_exec(c, PS_CLOCK, NULL, &r) != EB_STORE_OK)
		return;
	if (eb_pg_get_int8(r, 0, 0, &db) == 0) {
		d = db - (int64_t)time(NULL);
		if (d > PG_SKEW_WARN || d < -PG_SKEW_WARN)
			log_warnx("store: PostgreSQL schema %s: the server's "
			          "clock is %lld s %s ours: leases and grace "
			          "windows assume one clock (run NTP)",
			          schema, (long long)(d < 0 ? -d : d),
			          d < 0 ? "behind" : "ahead of");
	}
	PQclear(r);
}

static int
read_schema(struct eb_pg_conn *c, struct eb_pg_store *ps)
{
	PGresult *r;
	int rc;

	if ((rc = eb_pg_exec_sql(c, "SELECT current_schema()", &r)) !=
	    EB_STORE_OK)
		return rc;
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
		PQclear(r);
		return EB_STORE_ERROR; /* search_path names no schema */
	}
	ps->schema = eb_strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return ps->schema != NULL ? EB_STORE_OK : EB_STORE_ERROR;
}

static int
pg_open_flags(const char *target, int flags,
              const struct eb_store_open_opts *opts,
              eb_store_applied_fn *applied, void *arg, void **bep, char *err,
              size_t errlen)
{
	struct eb_pg_pool_limits lim;
	struct eb_pg_store *ps;
	struct eb_pg_conn *c;
	struct mig m;
	char perr[1024];

	*bep = NULL;
	if ((ps = eb_calloc(1, sizeof(*ps))) == NULL ||
	    (ps->dsn = eb_strdup(target)) == NULL) {
		snprintf(err, errlen, "store: out of memory");
		goto out_close;
	}
	ps->notify = (flags & EB_STORE_OPEN_NO_NOTIFY) == 0;
	memset(&lim, 0, sizeof(lim));
	lim.size =
	    opts != NULL && opts->pool > 0 ? opts->pool : PG_DEFAULT_POOL;
	lim.statement_ms = opts != NULL && opts->timeout_ms > 0
	                       ? opts->timeout_ms
	                       : PG_DEFAULT_TIMEOUT;
	lim.acquire_ms = lim.statement_ms;
	if (opts != NULL && opts->application != NULL &&
	    (ps->application = eb_strdup(opts->application)) == NULL) {
		snprintf(err, errlen, "store: out of memory");
		goto out_close;
	}
	lim.application = ps->application;
	ps->pool = eb_pg_pool_create(target, eb_pg_stmts, PS__COUNT, &lim, perr,
	                             sizeof(perr));
	if (ps->pool == NULL) {
		snprintf(err, errlen, "store: PostgreSQL: %s", perr);
		goto out_close;
	}
	if ((c = eb_pg_pool_acquire(ps->pool)) == NULL) {
		snprintf(err, errlen, "store: PostgreSQL: no connection");
		goto out_close;
	}
	if (read_schema(c, ps) != EB_STORE_OK) {
		snprintf(err, errlen,
		         "store: PostgreSQL: no current schema (check "
		         "search_path) or out of memory");
		eb_pg_pool_release(ps->pool, c);
		goto out_close;
	}
	clock_check(c, ps->schema);
	memset(&m, 0, sizeof(m));
	m.ps = ps;
	m.migrate = (flags & EB_STORE_OPEN_NO_MIGRATE) == 0;
	m.err = err;
	m.errlen = errlen;
	err[0] = '\0';
	if (schema_setup(c, &m, applied, arg) != 0) {
		eb_pg_pool_release(ps->pool, c);
		goto out_close;
	}
	eb_pg_pool_release(ps->pool, c);
	*bep = ps;
	return 0;

out_close:
	pg_close(ps);
	log_warnx("%s", err);
	return -1;
}

static int
pg_open(const char *target, void **bep, char *err, size_t errlen)
{
	return pg_open_flags(target, 0, NULL, NULL, NULL, bep, err, errlen);
}

static void
pg_close(void *be)
{
	struct eb_pg_store *ps = be;

	if (ps == NULL)
		return;
	eb_pg_feed_stop(ps->feed);
	eb_pg_pool_destroy(ps->pool);
	eb_free_secret_str(ps->dsn);
	eb_free(ps->application);
	eb_free(ps->schema);
	eb_free(ps);
}

static int
ping_fn(struct eb_pg_conn *c, void *arg)
{
	return eb_pg_run(c, PS_PING, NULL, NULL);
}

static int
pg_ping(void *be)
{
	return eb_pg_with(be, ping_fn, NULL);
}

static int
version_fn(struct eb_pg_conn *c, void *arg)
{
	PGresult *r;
	int rc;

	if ((rc = eb_pg_exec(c, PS_VERSION, NULL, &r)) != EB_STORE_OK)
		return rc;
	if (eb_pg_get_int8(r, 0, 0, arg) != 0)
		rc = EB_STORE_ERROR;
	PQclear(r);
	return rc;
}

static int
pg_schema_version(void *be, int64_t *version)
{
	*version = 0;
	return eb_pg_with(be, version_fn, version);
}

/*
 * The change feed (pg_feed.c): a thread on a connection of its own that
 * follows the generation row every invalidating transaction bumps.
 */
static int
pg_feed_start(void *be, _Atomic uint64_t *seq, _Atomic int64_t *alive_ns)
{
	struct eb_pg_store *ps = be;
	char err[512];

	if (ps->feed != NULL)
		return 0;
	ps->feed = eb_pg_feed_start_as(ps->dsn, ps->application, seq, alive_ns,
	                               err, sizeof(err));
	if (ps->feed == NULL) {
		log_warnx("store: PostgreSQL change feed: %s", err);
		return -1;
	}
	return 0;
}

static void
pg_feed_stop(void *be)
{
	struct eb_pg_store *ps = be;

	eb_pg_feed_stop(ps->feed);
	ps->feed = NULL;
}

const struct eb_store_ops eb_store_pg_ops = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .ping = pg_ping,
    .schema_version = pg_schema_version,
    .open_flags = pg_open_flags,
    .audit_add = eb_pg_audit_add,
    .audit_list = eb_pg_audit_list,
    .audit_query = eb_pg_audit_query,
    .audit_prune = eb_pg_audit_prune,
    .flow_put = eb_pg_flow_put,
    .flow_get = eb_pg_flow_get,
    .flow_take = eb_pg_flow_take,
    .code_put = eb_pg_code_put,
    .code_consume = eb_pg_code_consume,
    .grant_create = eb_pg_grant_create,
    .grant_get = eb_pg_grant_get,
    .grant_list = eb_pg_grant_list,
    .grant_set_status = eb_pg_grant_set_status,
    .grant_retire = eb_pg_grant_retire,
    .grant_supersede = eb_pg_grant_supersede,
    .grant_bind = eb_pg_grant_bind,
    .grant_set_upstream = eb_pg_grant_set_upstream,
    .grant_list_due = eb_pg_grant_list_due,
    .token_put = eb_pg_token_put,
    .token_get = eb_pg_token_get,
    .token_grant_get = eb_pg_token_grant_get,
    .token_rotate = eb_pg_token_rotate,
    .token_revoke = eb_pg_token_revoke,
    .key_put = eb_pg_key_put,
    .key_list = eb_pg_key_list,
    .key_retire = eb_pg_key_retire,
    .mapping_put = eb_pg_mapping_put,
    .mapping_get = eb_pg_mapping_get,
    .mapping_delete = eb_pg_mapping_delete,
    .mapping_list = eb_pg_mapping_list,
    .grant_list_person = eb_pg_grant_list_person,
    .scim_user_create = eb_pg_scim_user_create,
    .scim_user_get = eb_pg_scim_user_get,
    .scim_user_replace = eb_pg_scim_user_replace,
    .scim_user_delete = eb_pg_scim_user_delete,
    .scim_user_list = eb_pg_scim_user_list,
    .sweep = eb_pg_sweep,
    .grant_claim_due = eb_pg_grant_claim_due,
    .grant_release = eb_pg_grant_release,
    .grant_count = eb_pg_grant_count,
    .lock_try = eb_pg_lock_try,
    .lock_release = eb_pg_lock_release,
    .key_rotate = eb_pg_key_rotate,
    .grant_list_sealed = eb_pg_grant_list_sealed,
    .grant_reseal = eb_pg_grant_reseal,
    .key_reseal = eb_pg_key_reseal,
    .feed_start = pg_feed_start,
    .feed_stop = pg_feed_stop,
};

/* ---- test hooks (store.h) ---- */

static PGconn *
test_connect(const char *dsn)
{
	PGconn *pg = PQconnectdb(dsn);
	PGresult *r;

	if (pg != NULL && PQstatus(pg) == CONNECTION_OK) {
		/* no NOTICE lines about what a drop cascades to */
		r = PQexec(pg, "SET client_min_messages = warning");
		PQclear(r);
		return pg;
	}
	PQfinish(pg);
	return NULL;
}

static int
test_exec(PGconn *pg, const char *sql)
{
	PGresult *r = PQexec(pg, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

	PQclear(r);
	return ok ? 0 : -1;
}

int
eb_store_pg_test_schema(const char *dsn, char *target, size_t len)
{
	static _Atomic unsigned serial;
	char name[64], sql[128];
	PGconn *pg;
	int n, uri;

	if (dsn == NULL || (pg = test_connect(dsn)) == NULL)
		return -1;
	snprintf(name, sizeof(name), "t_%ld_%u", (long)getpid(),
	         atomic_fetch_add(&serial, 1) + 1);
	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", name);
	(void)test_exec(pg, sql);
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", name);
	if (test_exec(pg, sql) != 0) {
		PQfinish(pg);
		return -1;
	}
	PQfinish(pg);
	uri = strncmp(dsn, "postgres://", 11) == 0 ||
	      strncmp(dsn, "postgresql://", 13) == 0;
	if (uri)
		n = snprintf(target, len, "%s%coptions=-c%%20search_path%%3D%s",
		             dsn, strchr(dsn, '?') != NULL ? '&' : '?', name);
	else
		n = snprintf(target, len, "%s options='-c search_path=%s'", dsn,
		             name);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int
eb_store_pg_test_schema_name(const char *target, char *name, size_t len)
{
	const char *p = NULL, *keys[] = {"search_path=", "search_path%3D"};
	size_t i, n;

	for (i = 0; p == NULL && target != NULL && i < 2; i++)
		if ((p = strstr(target, keys[i])) != NULL)
			p += strlen(keys[i]);
	if (p == NULL || len == 0)
		return -1;
	n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
	if (n == 0 || n >= len)
		return -1;
	memcpy(name, p, n);
	name[n] = '\0';
	return 0;
}

int
eb_store_pg_test_drop(const char *dsn, const char *target)
{
	char sql[128], schema[64];
	PGconn *pg;
	int rc;

	if (dsn == NULL ||
	    eb_store_pg_test_schema_name(target, schema, sizeof(schema)) != 0 ||
	    (pg = test_connect(dsn)) == NULL)
		return -1;
	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", schema);
	rc = test_exec(pg, sql);
	PQfinish(pg);
	return rc;
}

int
eb_store_pg_test_generation(const char *target, int64_t *n)
{
	PGconn *pg;
	PGresult *r;
	int rc = -1;

	if ((pg = test_connect(target)) == NULL)
		return -1;
	r = PQexec(pg, "SELECT n FROM eb_generation WHERE id = 1");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		*n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		rc = 0;
	}
	PQclear(r);
	PQfinish(pg);
	return rc;
}
