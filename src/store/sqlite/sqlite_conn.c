/*
 * The SQLite backend's connections (sqlite_int.h says how the backend is
 * split): the database file (created 0600 in an existing directory), one
 * connection per thread per store (a pthread key; closed at thread exit or
 * at close), each in WAL mode with a busy timeout, foreign keys on,
 * synchronous=NORMAL and a cache of prepared statements; the mapping of
 * SQLite's results to ours; BEGIN IMMEDIATE transactions; and the ops
 * table of the backend.
 */
#include "store/sqlite/sqlite_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"

static void
conn_close(struct eb_sq_conn *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(c->st[i]);
	if (sqlite3_close(c->db) != SQLITE_OK)
		log_warnx("store: closing %s: %s", c->sq->path,
		          sqlite3_errmsg(c->db));
	eb_free(c);
}

/* Thread exit: unlink this thread's connection and close it. */
static void
conn_dtor(void *p)
{
	struct eb_sq_conn *c = p;
	struct eb_sq *sq = c->sq;

	pthread_mutex_lock(&sq->lock);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		sq->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&sq->lock);
	conn_close(c);
}

/* Run one pragma; when want is given, its single result must equal it. */
static int
pragma(sqlite3 *db, const char *sql, const char *want)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *got;
	int rc, ok = 0;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		got = sqlite3_column_text(st, 0);
		if (want != NULL && got != NULL &&
		    sqlite3_stricmp((const char *)got, want) == 0)
			ok = 1;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	return want == NULL || ok ? 0 : -1;
}

/*
 * Switch db to WAL: 0, or -1. The switch of a new database takes a lock
 * that SQLite does not wait for through the busy handler: when another
 * process opens the same new database at the same moment (replicas
 * started together), it answers SQLITE_BUSY at once. Retried here, every
 * 10 ms, for as long as the busy timeout.
 */
static int
wal_on(sqlite3 *db)
{
	const struct timespec pause = {0, 10 * 1000 * 1000};
	sqlite3_stmt *st;
	const unsigned char *got;
	int rc, waited, ok;

	for (waited = 0;; waited += 10) {
		if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st,
		                       NULL) != SQLITE_OK)
			return -1;
		ok = 0;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			if ((got = sqlite3_column_text(st, 0)) != NULL &&
			    sqlite3_stricmp((const char *)got, "wal") == 0)
				ok = 1;
		sqlite3_finalize(st);
		if (rc == SQLITE_DONE)
			return ok ? 0 : -1;
		if ((rc & 0xff) != SQLITE_BUSY || waited >= BUSY_TIMEOUT_MS)
			return -1;
		nanosleep(&pause, NULL);
	}
}

static struct eb_sq_conn *
conn_open(struct eb_sq *sq, char *err, size_t errlen)
{
	struct eb_sq_conn *c;
	const char *what;

	if ((c = eb_calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "store: out of memory");
		return NULL;
	}
	c->sq = sq;
	if (sqlite3_open_v2(sq->path, &c->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
	                    NULL) != SQLITE_OK) {
		what = "open";
		goto out_fail;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	what = "journal_mode=WAL";
	if (wal_on(c->db) != 0)
		goto out_fail;
	what = "synchronous=NORMAL";
	if (pragma(c->db, "PRAGMA synchronous=NORMAL", NULL) != 0)
		goto out_fail;
	what = "foreign_keys=ON";
	if (pragma(c->db, "PRAGMA foreign_keys=ON", NULL) != 0 ||
	    pragma(c->db, "PRAGMA foreign_keys", "1") != 0)
		goto out_fail;
	what = "trusted_schema=OFF";
	if (pragma(c->db, "PRAGMA trusted_schema=OFF", NULL) != 0)
		goto out_fail;
	return c;

out_fail:
	snprintf(err, errlen, "store: %s: %s failed: %s", sq->path, what,
	         c->db != NULL ? sqlite3_errmsg(c->db) : "out of memory");
	sqlite3_close(c->db);
	eb_free(c);
	return NULL;
}

/* This thread's connection, opened on first use; NULL (logged) on failure. */
static struct eb_sq_conn *
conn_get_err(struct eb_sq *sq, char *err, size_t errlen)
{
	struct eb_sq_conn *c;

	if ((c = pthread_getspecific(sq->key)) != NULL)
		return c;
	if ((c = conn_open(sq, err, errlen)) == NULL)
		return NULL;
	if (pthread_setspecific(sq->key, c) != 0) {
		snprintf(err, errlen, "store: pthread_setspecific failed");
		conn_close(c);
		return NULL;
	}
	pthread_mutex_lock(&sq->lock);
	c->next = sq->conns;
	if (sq->conns != NULL)
		sq->conns->prev = c;
	sq->conns = c;
	pthread_mutex_unlock(&sq->lock);
	return c;
}

struct eb_sq_conn *
eb_sq_conn(void *be)
{
	char err[512];
	struct eb_sq_conn *c;

	if ((c = conn_get_err(be, err, sizeof(err))) == NULL)
		log_warnx("%s", err);
	return c;
}

/* ---- statement helpers ------------------------------------------------ */

/* The cached statement id, reset and unbound; NULL (logged) on failure. */
sqlite3_stmt *
eb_sq_stmt(struct eb_sq_conn *c, enum eb_sq_stmt_id id)
{
	sqlite3_stmt *st = c->st[id];

	if (st != NULL) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return st;
	}
	if (sqlite3_prepare_v3(c->db, eb_sq_sql[id], -1,
	                       SQLITE_PREPARE_PERSISTENT, &st,
	                       NULL) != SQLITE_OK) {
		log_warnx("store: prepare: %s", sqlite3_errmsg(c->db));
		sqlite3_finalize(st);
		return NULL;
	}
	c->st[id] = st;
	return st;
}

/* Map a failed SQLite result to ours, logging what is a real failure. */
int
eb_sq_fail(struct eb_sq_conn *c, int rc, const char *fn)
{
	switch (rc) {
	case SQLITE_CONSTRAINT_PRIMARYKEY:
	case SQLITE_CONSTRAINT_UNIQUE:
		return EB_STORE_CONFLICT;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return EB_STORE_NOT_FOUND;
	}
	eb_log(EB_LOG_WARN, fn, "store: %s", sqlite3_errmsg(c->db));
	return EB_STORE_ERROR;
}

/* Step a statement that returns no row, then reset it. */
int
eb_sq_run(struct eb_sq_conn *c, sqlite3_stmt *st, const char *fn)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		rc = eb_sq_fail(c, rc, fn);
	else
		rc = EB_STORE_OK;
	sqlite3_reset(st);
	return rc;
}

/* ---- transactions ----------------------------------------------------- */

int
eb_sq_tx_begin(struct eb_sq_conn *c)
{
	sqlite3_stmt *st;

	if ((st = eb_sq_stmt(c, ST_BEGIN)) == NULL)
		return EB_STORE_ERROR;
	return eb_sq_run(c, st, __func__);
}

void
eb_sq_tx_rollback(struct eb_sq_conn *c)
{
	sqlite3_stmt *st;

	/* A failed statement may already have ended the transaction. */
	if (sqlite3_get_autocommit(c->db))
		return;
	if ((st = eb_sq_stmt(c, ST_ROLLBACK)) == NULL ||
	    eb_sq_run(c, st, __func__) != 0)
		log_warnx("store: rollback failed");
}

/*
 * End the transaction: commit when commit is set (rc is returned, or
 * EB_STORE_ERROR when the commit fails), else roll back and return rc.
 */
int
eb_sq_tx_end(struct eb_sq_conn *c, int rc, int commit)
{
	sqlite3_stmt *st;

	if (!commit) {
		eb_sq_tx_rollback(c);
		return rc;
	}
	if ((st = eb_sq_stmt(c, ST_COMMIT)) == NULL ||
	    eb_sq_run(c, st, __func__) != 0) {
		eb_sq_tx_rollback(c);
		return EB_STORE_ERROR;
	}
	return rc;
}

/* ---- open / close / migrations ---------------------------------------- */

/* The directory part of path must exist: a clear error otherwise. */
static int
check_parent(const char *path, char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');
	struct stat sb;
	char *dir;
	int rc = -1;

	if (slash == NULL)
		dir = eb_strdup(".");
	else if (slash == path)
		dir = eb_strdup("/");
	else
		dir = eb_strndup(path, (size_t)(slash - path));
	if (dir == NULL) {
		snprintf(err, errlen, "store: out of memory");
		return -1;
	}
	if (stat(dir, &sb) != 0)
		snprintf(
		    err, errlen,
		    "store: database directory %s does not exist (%s): create "
		    "it or change `database`",
		    dir, strerror(errno));
	else if (!S_ISDIR(sb.st_mode))
		snprintf(err, errlen,
		         "store: database directory %s is not a directory",
		         dir);
	else
		rc = 0;
	eb_free(dir);
	return rc;
}

/* Create the database file 0600 if needed; tighten looser permissions. */
static int
create_file(const char *path, char *err, size_t errlen)
{
	struct stat sb;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "store: cannot open %s: %s", path,
		         strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "store: %s is not a regular file", path);
		close(fd);
		return -1;
	}
	if ((sb.st_mode & 077) != 0) {
		log_warnx("store: %s was mode %03o, setting 0600", path,
		          (unsigned)(sb.st_mode & 0777));
		if (fchmod(fd, 0600) != 0) {
			snprintf(err, errlen, "store: chmod %s: %s", path,
			         strerror(errno));
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 0;
}

int
eb_sq_open_flags(const char *target, int flags,
                 const struct eb_store_open_opts *opts,
                 eb_store_applied_fn *applied, void *arg, void **bep, char *err,
                 size_t errlen)
{
	struct eb_sq *sq;
	struct eb_sq_conn *c;

	*bep = NULL;
	if (check_parent(target, err, errlen) != 0 ||
	    create_file(target, err, errlen) != 0)
		goto out_log;
	if ((sq = eb_calloc(1, sizeof(*sq))) == NULL) {
		snprintf(err, errlen, "store: out of memory");
		goto out_log;
	}
	if (pthread_mutex_init(&sq->lock, NULL) != 0) {
		eb_free(sq);
		snprintf(err, errlen, "store: pthread_mutex_init failed");
		goto out_log;
	}
	if ((sq->path = eb_strdup(target)) == NULL) {
		snprintf(err, errlen, "store: out of memory");
		goto out_close;
	}
	if (pthread_key_create(&sq->key, conn_dtor) != 0) {
		snprintf(err, errlen, "store: pthread_key_create failed");
		goto out_close;
	}
	sq->key_ok = 1;
	if ((c = conn_get_err(sq, err, errlen)) == NULL ||
	    ((flags & EB_STORE_OPEN_NO_MIGRATE)
	         ? eb_sq_check_schema(c, err, errlen)
	         : eb_sq_migrate(c, applied, arg, err, errlen)) != 0)
		goto out_close;
	*bep = sq;
	return 0;

out_close:
	eb_sq_close(sq);
out_log:
	log_warnx("%s", err);
	return -1;
}

int
eb_sq_open(const char *target, void **bep, char *err, size_t errlen)
{
	return eb_sq_open_flags(target, 0, NULL, NULL, NULL, bep, err, errlen);
}

void
eb_sq_close(void *be)
{
	struct eb_sq *sq = be;
	struct eb_sq_conn *c, *next;

	if (sq == NULL)
		return;
	if (sq->key_ok) {
		pthread_setspecific(sq->key, NULL);
		pthread_key_delete(sq->key);
	}
	pthread_mutex_lock(&sq->lock);
	for (c = sq->conns; c != NULL; c = next) {
		next = c->next;
		conn_close(c);
	}
	sq->conns = NULL;
	pthread_mutex_unlock(&sq->lock);
	pthread_mutex_destroy(&sq->lock);
	eb_free(sq->path);
	eb_free(sq);
}

int
eb_sq_ping(void *be)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_PING)) == NULL)
		return EB_STORE_ERROR;
	rc = sqlite3_step(st) == SQLITE_ROW
	         ? EB_STORE_OK
	         : eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	sqlite3_reset(st);
	return rc;
}

const struct eb_store_ops eb_store_sqlite_ops = {
    .name = "sqlite",
    .open = eb_sq_open,
    .close = eb_sq_close,
    .ping = eb_sq_ping,
    .schema_version = eb_sq_schema_version,
    .open_flags = eb_sq_open_flags,
    .audit_add = eb_sq_audit_add,
    .audit_list = eb_sq_audit_list,
    .audit_query = eb_sq_audit_query,
    .audit_prune = eb_sq_audit_prune,
    .flow_put = eb_sq_flow_put,
    .flow_get = eb_sq_flow_get,
    .flow_take = eb_sq_flow_take,
    .code_put = eb_sq_code_put,
    .code_consume = eb_sq_code_consume,
    .grant_create = eb_sq_grant_create,
    .grant_get = eb_sq_grant_get,
    .grant_list = eb_sq_grant_list,
    .grant_set_status = eb_sq_grant_set_status,
    .grant_retire = eb_sq_grant_retire,
    .grant_supersede = eb_sq_grant_supersede,
    .grant_bind = eb_sq_grant_bind,
    .grant_set_upstream = eb_sq_grant_set_upstream,
    .grant_list_due = eb_sq_grant_list_due,
    .grant_claim_due = eb_sq_grant_claim_due,
    .grant_release = eb_sq_grant_release,
    .grant_count = eb_sq_grant_count,
    .lock_try = eb_sq_lock_try,
    .lock_release = eb_sq_lock_release,
    .key_rotate = eb_sq_key_rotate,
    .token_put = eb_sq_token_put,
    .token_get = eb_sq_token_get,
    .token_grant_get = eb_sq_token_grant_get,
    .token_rotate = eb_sq_token_rotate,
    .token_revoke = eb_sq_token_revoke,
    .key_put = eb_sq_key_put,
    .key_list = eb_sq_key_list,
    .key_retire = eb_sq_key_retire,
    .mapping_put = eb_sq_mapping_put,
    .mapping_get = eb_sq_mapping_get,
    .mapping_delete = eb_sq_mapping_delete,
    .mapping_list = eb_sq_mapping_list,
    .grant_list_person = eb_sq_grant_list_person,
    .scim_user_create = eb_sq_scim_user_create,
    .scim_user_get = eb_sq_scim_user_get,
    .scim_user_replace = eb_sq_scim_user_replace,
    .scim_user_delete = eb_sq_scim_user_delete,
    .scim_user_list = eb_sq_scim_user_list,
    .sweep = eb_sq_sweep,
    .grant_list_sealed = eb_sq_grant_list_sealed,
    .grant_reseal = eb_sq_grant_reseal,
    .key_reseal = eb_sq_key_reseal,
};
