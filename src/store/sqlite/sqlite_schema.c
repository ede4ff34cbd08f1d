/*
 * The SQLite backend's schema: the application of the ordered migrations
 * (store/migrations.c) in one transaction each, or only their check when
 * the caller leaves migrating to `enrollbridge migrate`, refusing a newer
 * database unless its compat says this binary still works with it; and
 * the schema version.
 */
#include "store/sqlite/sqlite_int.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "store/migrations.h"

static int
exec(struct eb_sq_conn *c, const char *sql, char *err, size_t errlen)
{
	if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	snprintf(err, errlen, "store: %s: %s", c->sq->path,
	         sqlite3_errmsg(c->db));
	return -1;
}

/* Note migration m as applied, inside its transaction. */
static int
record_migration(struct eb_sq_conn *c, const struct eb_store_migration *m,
                 char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	/* the compat column exists once migration COMPAT_SINCE has run */
	if (sqlite3_prepare_v2(
	        c->db,
	        m->version >= EB_STORE_COMPAT_SINCE
	            ? "INSERT INTO schema_migrations (version, name, "
	              "applied_at,"
	              " compat) VALUES (?, ?, strftime('%s', 'now'), ?)"
	            : "INSERT INTO schema_migrations (version, name, "
	              "applied_at)"
	              " VALUES (?, ?, strftime('%s', 'now'))",
	        -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_bind_int(st, 1, m->version) == SQLITE_OK &&
	    eb_sq_bind_text(st, 2, m->name) == SQLITE_OK &&
	    (m->version < EB_STORE_COMPAT_SINCE ||
	     sqlite3_bind_int(st, 3, m->compat) == SQLITE_OK) &&
	    sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	else
		snprintf(err, errlen, "store: %s: recording migration %d: %s",
		         c->sq->path, m->version, sqlite3_errmsg(c->db));
	sqlite3_finalize(st);
	return rc;
}

/* The single integer the query sql answers, into *out; -1 on error. */
static int
query_int(struct eb_sq_conn *c, const char *sql, int64_t *out, char *err,
          size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = 0;
	} else
		snprintf(err, errlen, "store: %s: %s", c->sq->path,
		         sqlite3_errmsg(c->db));
	sqlite3_finalize(st);
	return rc;
}

/*
 * The database is at cur, newer than the known versions: start when the
 * oldest schema its migrations still work with (max compat) is one this
 * binary knows; refuse otherwise. A database from before compat was
 * recorded counts as compatible with its own version only.
 */
static int
check_newer(struct eb_sq_conn *c, int64_t cur, int known, char *err,
            size_t errlen)
{
	int64_t has = 0, compat = cur;

	if (query_int(
	        c,
	        "SELECT count(*) FROM pragma_table_info('schema_migrations')"
	        " WHERE name = 'compat'",
	        &has, err, errlen) != 0)
		return -1;
	if (has &&
	    query_int(c,
	              "SELECT coalesce(max(compat), 0) FROM schema_migrations",
	              &compat, err, errlen) != 0)
		return -1;
	if (compat > known) {
		snprintf(
		    err, errlen,
		    "store: database %s has schema version %lld, newer "
		    "than this enrollbridge knows (%d), and needs binaries "
		    "of schema %lld or later: run a newer enrollbridge or "
		    "restore a backup",
		    c->sq->path, (long long)cur, known, (long long)compat);
		return -1;
	}
	log_warnx("store: %s: schema version %lld is newer than this "
	          "enrollbridge knows (%d) but compatible with it (compat "
	          "%lld): starting; upgrade this replica",
	          c->sq->path, (long long)cur, known, (long long)compat);
	return 0;
}

/*
 * Without migrating (database_migrate: false): the database must be up to
 * date, or newer and compatible. Reads in one transaction so the version
 * and compat agree.
 */
int
eb_sq_check_schema(struct eb_sq_conn *c, char *err, size_t errlen)
{
	const struct eb_store_migration *m;
	int64_t has = 0, cur = 0;
	size_t n;
	int known;

	m = eb_store_migrations(&n);
	known = n > 0 ? m[n - 1].version : 0;
	if (exec(c, "BEGIN", err, errlen) != 0)
		return -1;
	if (query_int(c,
	              "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
	              " AND name = 'schema_migrations'",
	              &has, err, errlen) != 0 ||
	    (has && query_int(c,
	                      "SELECT coalesce(max(version), 0)"
	                      " FROM schema_migrations",
	                      &cur, err, errlen) != 0))
		goto out_rollback;
	if (cur < known) {
		snprintf(err, errlen,
		         "store: database %s is at schema version %lld and "
		         "migration%s %lld%s%.0d pending; database_migrate is "
		         "false: run `enrollbridge migrate -c FILE` first",
		         c->sq->path, (long long)cur,
		         cur + 1 < known ? "s" : "", (long long)cur + 1,
		         cur + 1 < known ? "-" : "",
		         cur + 1 < known ? known : 0);
		goto out_rollback;
	}
	if (cur > known && check_newer(c, cur, known, err, errlen) != 0)
		goto out_rollback;
	if (exec(c, "COMMIT", err, errlen) != 0)
		goto out_rollback;
	return 0;

out_rollback:
	eb_sq_tx_rollback(c);
	return -1;
}

/*
 * Apply the migrations the database lacks, each in its own transaction
 * (BEGIN IMMEDIATE: concurrent openers, in this process or another,
 * serialise on the write lock and each re-reads the version inside it, so
 * none applies one twice); a newer database is accepted only when
 * compatible (check_newer). applied (may be NULL) hears of each one.
 */
int
eb_sq_migrate(struct eb_sq_conn *c, eb_store_applied_fn *applied, void *arg,
              char *err, size_t errlen)
{
	const struct eb_store_migration *m;
	sqlite3_stmt *st = NULL;
	int64_t cur;
	size_t n;
	int known;

	m = eb_store_migrations(&n);
	known = n > 0 ? m[n - 1].version : 0;
	for (;;) {
		if (exec(c, "BEGIN IMMEDIATE", err, errlen) != 0)
			return -1;
		if (exec(c,
		         "CREATE TABLE IF NOT EXISTS schema_migrations ("
		         " version INTEGER PRIMARY KEY,"
		         " name TEXT NOT NULL,"
		         " applied_at INTEGER NOT NULL)",
		         err, errlen) != 0)
			goto out_rollback;
		if ((st = eb_sq_stmt(c, ST_VERSION)) == NULL ||
		    sqlite3_step(st) != SQLITE_ROW) {
			snprintf(err, errlen, "store: %s: %s", c->sq->path,
			         sqlite3_errmsg(c->db));
			goto out_rollback;
		}
		cur = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (cur > known) {
			if (check_newer(c, cur, known, err, errlen) != 0)
				goto out_rollback;
			break;
		}
		if (cur == known)
			break;
		m = &eb_store_migrations(&n)[cur];
		if (m->version != cur + 1) {
			snprintf(err, errlen,
			         "store: migration list out of order at %lld",
			         (long long)cur);
			goto out_rollback;
		}
		if (exec(c, m->sql, err, errlen) != 0)
			goto out_rollback;
		if (record_migration(c, m, err, errlen) != 0)
			goto out_rollback;
		if (exec(c, "COMMIT", err, errlen) != 0)
			goto out_rollback;
		log_info("store: %s: applied migration %d (%s)", c->sq->path,
		         m->version, m->name);
		if (applied != NULL)
			applied(arg, m->version, m->name);
	}
	if (exec(c, "COMMIT", err, errlen) != 0)
		goto out_rollback;
	return 0;

out_rollback:
	eb_sq_tx_rollback(c);
	return -1;
}

int
eb_sq_schema_version(void *be, int64_t *version)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	int rc = EB_STORE_OK;

	*version = 0;
	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_VERSION)) == NULL)
		return EB_STORE_ERROR;
	if (sqlite3_step(st) == SQLITE_ROW)
		*version = sqlite3_column_int64(st, 0);
	else
		rc = eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	sqlite3_reset(st);
	return rc;
}
