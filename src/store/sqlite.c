/*
 * The SQLite storage backend, and the only file that includes <sqlite3.h>.
 * It owns the database file (created 0600 in an existing directory), one
 * connection per thread per store (a pthread key; closed at thread exit or
 * at close), each in WAL mode with a busy timeout, foreign keys on,
 * synchronous=NORMAL and a cache of prepared statements; the application of
 * the ordered migrations (migrations.c), or only their check when the
 * caller leaves migrating to `enrollbridge migrate`, refusing a newer
 * database unless its compat says this binary still works with it; and the
 * operations of struct eb_store_ops, each multi-step
 * write one BEGIN IMMEDIATE transaction.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rand.h"
#include "store/migrations.h"
#include "grant/policy.h"
#include "grant/refresh.h"

#define BUSY_TIMEOUT_MS  5000
#define RETAIN_CODES     86400 /* keep used codes a day for replay detection */
#define RETAIN_TOKENS    86400
#define AUDIT_LIST_MAX   1000
#define AUDIT_DETAIL_MAX 4096

/* ---- statements ------------------------------------------------------- */

#define FLOW_COLS                                                              \
	"id, tenant, kind, created_at, expires_at, user_identifier,"           \
	" enrollment_mode, model_family, mi_product, mi_version,"              \
	" mi_language, mi_os_version, mi_udid, mi_serial, upstream_state,"     \
	" upstream_nonce, pkce_verifier, browser_binding, client_id,"          \
	" redirect_uri, device_state, scope, extra, code_challenge"
#define FLOW_NCOLS 24
/* what a new grant is created with (a claim comes later) */
#define GRANT_INS_COLS                                                         \
	"id, tenant, status, auth_method, client_id, managed_apple_id,"        \
	" user_identifier, idp_issuer, idp_subject, idp_tid, idp_oid,"         \
	" enrollment_mode, binding_kind, binding_value, bound_at,"             \
	" created_at, updated_at, expires_at, upstream_refresh_token,"         \
	" upstream_renewed_at, upstream_next_at, upstream_failing_since,"      \
	" revoked_at, revoke_reason, superseded_by, extra"
#define GRANT_COLS  GRANT_INS_COLS ", lease_owner, lease_token, lease_until"
#define GRANT_NCOLS 29
#define TOKEN_COLS                                                             \
	"hash, kind, tenant, grant_id, client_id, jti, created_at,"            \
	" expires_at, status, rotated_at, parent_hash, replaced_by"
/* The same lists qualified, for the token-and-grant join. */
#define GRANT_COLS_G                                                           \
	"g.id, g.tenant, g.status, g.auth_method, g.client_id,"                \
	" g.managed_apple_id, g.user_identifier, g.idp_issuer, g.idp_subject," \
	" g.idp_tid, g.idp_oid, g.enrollment_mode, g.binding_kind,"            \
	" g.binding_value, g.bound_at, g.created_at, g.updated_at,"            \
	" g.expires_at, g.upstream_refresh_token, g.upstream_renewed_at,"      \
	" g.upstream_next_at, g.upstream_failing_since, g.revoked_at,"         \
	" g.revoke_reason, g.superseded_by, g.extra, g.lease_owner,"           \
	" g.lease_token, g.lease_until"
#define TOKEN_COLS_T                                                           \
	"t.hash, t.kind, t.tenant, t.grant_id, t.client_id, t.jti,"            \
	" t.created_at, t.expires_at, t.status, t.rotated_at, t.parent_hash,"  \
	" t.replaced_by"
#define TOKEN_NCOLS 12
#define CODE_COLS                                                              \
	"hash, tenant, grant_id, client_id, redirect_uri, scope, created_at,"  \
	" expires_at, used_at, code_challenge"
#define KEY_COLS                                                               \
	"kid, tenant, alg, created_at, retired_at, not_after, public_jwk,"     \
	" private_key, activates_at"
#define MAP_COLS                                                               \
	"tenant, subject, managed_apple_id, note, created_at, updated_at"
#define AUDIT_COLS "id, ts, tenant, event, subject, detail"

/* A renewal outcome (struct eb_store_upstream), ?2-?6. */
#define UPSTREAM_SET                                                           \
	"upstream_renewed_at = CASE WHEN ?2 != 0 THEN ?2"                      \
	" ELSE upstream_renewed_at END,"                                       \
	" upstream_next_at = ?3, upstream_failing_since = ?4,"                 \
	" upstream_refresh_token = CASE WHEN ?5 IS NOT NULL"                   \
	" THEN ?5 ELSE upstream_refresh_token END, updated_at = ?6"

#define Q4  "?,?,?,?"
#define Q8  Q4 "," Q4
#define Q16 Q8 "," Q8

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_PING,
	ST_VERSION,
	ST_AUDIT_ADD,
	ST_AUDIT_LIST,
	ST_FLOW_INS,
	ST_FLOW_DEL,
	ST_FLOW_BY_ID,
	ST_FLOW_BY_STATE,
	ST_FLOW_SWEEP,
	ST_CODE_INS,
	ST_CODE_GET,
	ST_CODE_USE,
	ST_CODE_SWEEP,
	ST_GRANT_INS,
	ST_GRANT_GET,
	ST_GRANT_STATE,
	ST_GRANT_LIST,
	ST_GRANT_END,
	ST_GRANT_BIND,
	ST_GRANT_PERSON,
	ST_GRANT_HOLDER,
	ST_GRANT_UPSTREAM,
	ST_GRANT_DUE,
	ST_GRANT_LEASE,
	ST_GRANT_UPSTREAM_FENCED,
	ST_GRANT_LIVE,
	ST_GRANT_CLAIMABLE,
	ST_GRANT_CLAIM,
	ST_GRANT_LEASE_GET,
	ST_GRANT_RELEASE,
	ST_GRANT_COUNT,
	ST_LOCK_TRY,
	ST_LOCK_RELEASE,
	ST_GRANT_SEALED,
	ST_GRANT_RESEAL,
	ST_GRANT_EXISTS,
	ST_TOKEN_INS,
	ST_TOKEN_GET,
	ST_TOKEN_GRANT_GET,
	ST_TOKEN_ROTATED,
	ST_TOKEN_REVOKE,
	ST_TOKEN_REVOKE_GRANT,
	ST_TOKEN_SWEEP,
	ST_TOKEN_SUCC_GET,
	ST_TOKEN_SUCC_KEEP,
	ST_TOKEN_SUCC_SWEEP,
	ST_KEY_INS,
	ST_KEY_LIST,
	ST_KEY_RETIRE,
	ST_KEY_CURRENT,
	ST_KEY_RETIRE_CURRENT,
	ST_KEY_RESEAL,
	ST_KEY_EXISTS,
	ST_MAP_PUT,
	ST_MAP_GET,
	ST_MAP_DEL,
	ST__COUNT
};

static const char *const stmt_sql[ST__COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_PING] = "SELECT count(*) FROM schema_migrations",
    [ST_VERSION] = "SELECT coalesce(max(version), 0) FROM schema_migrations",
    [ST_AUDIT_ADD] = "INSERT INTO audit_events (ts, tenant, event, subject,"
                     " detail) VALUES (?,?,?,?,?)",
    [ST_AUDIT_LIST] = "SELECT " AUDIT_COLS " FROM audit_events"
                      " WHERE ?1 IS NULL OR tenant = ?1"
                      " ORDER BY id DESC LIMIT ?2",
    [ST_FLOW_INS] = "INSERT INTO login_flows (" FLOW_COLS ") VALUES"
                    " (" Q16 "," Q4 ",?,?,?,?)",
    [ST_FLOW_DEL] = "DELETE FROM login_flows WHERE id = ?",
    [ST_FLOW_BY_ID] = "SELECT " FLOW_COLS " FROM login_flows WHERE id = ?",
    [ST_FLOW_BY_STATE] = "SELECT " FLOW_COLS " FROM login_flows"
                         " WHERE upstream_state = ?",
    [ST_FLOW_SWEEP] = "DELETE FROM login_flows WHERE expires_at <= ?",
    [ST_CODE_INS] = "INSERT INTO auth_codes (" CODE_COLS ") VALUES"
                    " (" Q8 ",0,?)",
    [ST_CODE_GET] = "SELECT " CODE_COLS " FROM auth_codes WHERE hash = ?",
    [ST_CODE_USE] = "UPDATE auth_codes SET used_at = ?2 WHERE hash = ?1",
    [ST_CODE_SWEEP] = "DELETE FROM auth_codes WHERE expires_at <= ?",
    [ST_GRANT_INS] = "INSERT INTO grants (" GRANT_INS_COLS ") VALUES"
                     " (" Q16 "," Q8 ",?,?)",
    [ST_GRANT_GET] = "SELECT " GRANT_COLS " FROM grants WHERE id = ?",
    [ST_GRANT_STATE] = "SELECT status, tenant, binding_kind, binding_value"
                       " FROM grants WHERE id = ?",
    [ST_GRANT_LIST] = "SELECT " GRANT_COLS " FROM grants"
                      " WHERE (?1 IS NULL OR tenant = ?1)"
                      " AND (?2 IS NULL OR status = ?2)"
                      " AND (?3 IS NULL OR managed_apple_id = ?3)"
                      " ORDER BY created_at DESC, id LIMIT ?4",
    [ST_GRANT_END] = "UPDATE grants SET status = ?2, revoke_reason = ?3,"
                     " revoked_at = ?4, updated_at = ?4, superseded_by = ?5,"
                     " upstream_refresh_token = NULL, upstream_next_at = 0"
                     " WHERE id = ?1",
    [ST_GRANT_BIND] = "UPDATE grants SET binding_kind = ?2,"
                      " binding_value = ?3, bound_at = ?4, updated_at = ?4"
                      " WHERE id = ?1",
    [ST_GRANT_PERSON] = "SELECT idp_issuer, idp_subject FROM grants"
                        " WHERE id = ?",
    /* the active grant holding an enrollment: at most one, by the
     * grants_active_binding index (migration 4) */
    [ST_GRANT_HOLDER] = "SELECT id, idp_issuer, idp_subject FROM grants"
                        " WHERE tenant = ?1 AND binding_kind = ?2"
                        " AND binding_value = ?3 COLLATE NOCASE"
                        " AND status = 'active'"
                        " AND id != ?4 LIMIT 1",
    [ST_GRANT_UPSTREAM] = "UPDATE grants SET " UPSTREAM_SET
                          " WHERE id = ?1 AND status = 'active'",
    /* the write-back of a claim: its lease ends with it */
    [ST_GRANT_UPSTREAM_FENCED] = "UPDATE grants SET " UPSTREAM_SET ","
                                 " lease_owner = NULL, lease_token = NULL,"
                                 " lease_until = 0"
                                 " WHERE id = ?1 AND status = 'active'",
    /* renewals of a tenant in flight, every process's (a grant ended
     * meanwhile is nobody's work any more) */
    [ST_GRANT_LIVE] = "SELECT count(*) FROM grants"
                      " WHERE tenant = ?1 AND lease_until > ?2"
                      " AND status = 'active'",
    [ST_GRANT_CLAIMABLE] = "SELECT " GRANT_COLS " FROM grants"
                           " WHERE status = 'active' AND upstream_next_at != 0"
                           " AND upstream_next_at <= ?2"
                           " AND (expires_at = 0 OR expires_at > ?2)"
                           " AND lease_until <= ?2"
                           " AND (?1 IS NULL OR tenant = ?1)"
                           " ORDER BY upstream_next_at, id LIMIT ?3",
    [ST_GRANT_CLAIM] = "UPDATE grants SET upstream_next_at = ?2,"
                       " lease_until = ?2, lease_owner = ?3,"
                       " lease_token = ?4 WHERE id = ?1",
    [ST_GRANT_LEASE_GET] = "SELECT lease_token FROM grants WHERE id = ?",
    [ST_GRANT_RELEASE] = "UPDATE grants SET lease_owner = NULL,"
                         " lease_token = NULL, lease_until = 0,"
                         " upstream_next_at = CASE WHEN status = 'active'"
                         " AND upstream_next_at != 0 THEN ?2"
                         " ELSE upstream_next_at END WHERE id = ?1",
    [ST_GRANT_COUNT] = "SELECT count(*) FROM grants"
                       " WHERE (?1 IS NULL OR tenant = ?1)"
                       " AND (?2 IS NULL OR status = ?2)"
                       " AND (?3 = 0 OR upstream_failing_since != 0)",
    /* take a free or expired lease, or extend one's own (SCALEOUT 3.10) */
    [ST_LOCK_TRY] = "INSERT INTO eb_locks (name, owner, until_at)"
                    " VALUES (?1, ?2, ?3 + ?4) ON CONFLICT (name) DO UPDATE"
                    " SET owner = excluded.owner,"
                    " until_at = excluded.until_at"
                    " WHERE eb_locks.owner = excluded.owner"
                    " OR eb_locks.until_at <= ?3",
    [ST_LOCK_RELEASE] = "DELETE FROM eb_locks WHERE name = ?1 AND owner = ?2",
    [ST_GRANT_DUE] = "SELECT " GRANT_COLS " FROM grants"
                     " WHERE status = 'active' AND upstream_next_at != 0"
                     " AND upstream_next_at <= ?2"
                     " AND (expires_at = 0 OR expires_at > ?2)"
                     " AND (?1 IS NULL OR tenant = ?1)"
                     " ORDER BY upstream_next_at, id LIMIT ?3",
    [ST_GRANT_LEASE] = "UPDATE grants SET upstream_next_at = ?2 WHERE id = ?1",
    /* enrollbridge reseal: pages of sealed tokens, compare and swap */
    [ST_GRANT_SEALED] = "SELECT " GRANT_COLS " FROM grants"
                        " WHERE upstream_refresh_token IS NOT NULL"
                        " AND id > ?1 ORDER BY id LIMIT ?2",
    [ST_GRANT_RESEAL] = "UPDATE grants SET upstream_refresh_token = ?3"
                        " WHERE id = ?1 AND upstream_refresh_token = ?2",
    [ST_GRANT_EXISTS] = "SELECT 1 FROM grants WHERE id = ?",
    [ST_TOKEN_INS] = "INSERT INTO tokens (" TOKEN_COLS ") VALUES"
                     " (?,?,?,?,?,?,?,?,'active',0,?,NULL)",
    [ST_TOKEN_GET] = "SELECT " TOKEN_COLS " FROM tokens WHERE hash = ?",
    [ST_TOKEN_GRANT_GET] = "SELECT " TOKEN_COLS_T ", " GRANT_COLS_G
                           " FROM tokens t LEFT JOIN grants g"
                           " ON g.id = t.grant_id WHERE t.hash = ?",
    [ST_TOKEN_ROTATED] = "UPDATE tokens SET status = 'rotated',"
                         " rotated_at = ?2, replaced_by = ?3 WHERE hash = ?1",
    [ST_TOKEN_REVOKE] = "UPDATE tokens SET status = 'revoked',"
                        " successor_sealed = NULL, successor_until = 0"
                        " WHERE hash = ?",
    [ST_TOKEN_REVOKE_GRANT] = "UPDATE tokens SET status = 'revoked',"
                              " successor_sealed = NULL, successor_until = 0"
                              " WHERE grant_id = ? AND status != 'revoked'",
    [ST_TOKEN_SWEEP] = "DELETE FROM tokens WHERE expires_at != 0"
                       " AND expires_at <= ?",
    /* a rotated refresh token's sealed successor (grace window) */
    [ST_TOKEN_SUCC_GET] = "SELECT successor_sealed, successor_until"
                          " FROM tokens WHERE hash = ?",
    [ST_TOKEN_SUCC_KEEP] = "UPDATE tokens SET successor_sealed = ?2,"
                           " successor_until = ?3 WHERE hash = ?1",
    [ST_TOKEN_SUCC_SWEEP] = "UPDATE tokens SET successor_sealed = NULL,"
                            " successor_until = 0"
                            " WHERE successor_sealed IS NOT NULL"
                            " AND successor_until < ?",
    [ST_KEY_INS] = "INSERT INTO signing_keys (" KEY_COLS ") VALUES"
                   " (" Q8 ",?)",
    [ST_KEY_LIST] = "SELECT " KEY_COLS " FROM signing_keys"
                    " WHERE ?1 IS NULL OR tenant = '' OR tenant = ?1"
                    " ORDER BY created_at DESC, kid",
    [ST_KEY_RETIRE] = "UPDATE signing_keys SET retired_at = ?2,"
                      " not_after = ?3 WHERE kid = ?1",
    /* the tenant's current key: at most one (migration 7) */
    [ST_KEY_CURRENT] = "SELECT kid, activates_at FROM signing_keys"
                       " WHERE tenant = ?1 AND retired_at = 0",
    [ST_KEY_RETIRE_CURRENT] = "UPDATE signing_keys SET retired_at = ?2,"
                              " not_after = ?3"
                              " WHERE tenant = ?1 AND retired_at = 0",
    [ST_KEY_RESEAL] = "UPDATE signing_keys SET private_key = ?3"
                      " WHERE kid = ?1 AND private_key = ?2",
    [ST_KEY_EXISTS] = "SELECT 1 FROM signing_keys WHERE kid = ?",
    [ST_MAP_PUT] =
        "INSERT INTO mapping_overrides (" MAP_COLS ") VALUES"
        " (?1,?2,?3,?4,?5,?5) ON CONFLICT (tenant, subject) DO UPDATE"
        " SET managed_apple_id = excluded.managed_apple_id,"
        " note = excluded.note, updated_at = excluded.updated_at",
    [ST_MAP_GET] = "SELECT " MAP_COLS " FROM mapping_overrides"
                   " WHERE tenant = ? AND subject = ?",
    [ST_MAP_DEL] = "DELETE FROM mapping_overrides"
                   " WHERE tenant = ? AND subject = ?",
};

/* ---- connections ------------------------------------------------------ */

struct sq;

/* One thread's connection to one store. */
struct conn {
	struct sq *sq;
	sqlite3 *db;
	sqlite3_stmt *st[ST__COUNT];
	struct conn *prev, *next;
};

/* The backend handle. */
struct sq {
	char *path;
	pthread_key_t key;
	int key_ok;
	pthread_mutex_t lock; /* guards conns */
	struct conn *conns;
	/* this process's refresh rotations, one at a time (sq_token_rotate) */
	pthread_mutex_t rotate_lock;
};

static void
conn_close(struct conn *c)
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
	struct conn *c = p;
	struct sq *sq = c->sq;

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

static struct conn *
conn_open(struct sq *sq, char *err, size_t errlen)
{
	struct conn *c;
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
static struct conn *
conn_get_err(struct sq *sq, char *err, size_t errlen)
{
	struct conn *c;

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

static struct conn *
conn_get(void *be)
{
	char err[512];
	struct conn *c;

	if ((c = conn_get_err(be, err, sizeof(err))) == NULL)
		log_warnx("%s", err);
	return c;
}

/* ---- statement helpers ------------------------------------------------ */

/* The cached statement id, reset and unbound; NULL (logged) on failure. */
static sqlite3_stmt *
stmt(struct conn *c, enum stmt_id id)
{
	sqlite3_stmt *st = c->st[id];

	if (st != NULL) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return st;
	}
	if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1,
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
static int
fail(struct conn *c, int rc, const char *fn)
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
static int
run(struct conn *c, sqlite3_stmt *st, const char *fn)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		rc = fail(c, rc, fn);
	else
		rc = EB_STORE_OK;
	sqlite3_reset(st);
	return rc;
}

static int
b_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static int
b_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	if (p == NULL)
		return sqlite3_bind_null(st, i);
	if (n > INT_MAX)
		return SQLITE_TOOBIG;
	return sqlite3_bind_blob(st, i, p, (int)n, SQLITE_STATIC);
}

/* Column reader: consecutive columns, remembering an allocation failure. */
struct rd {
	sqlite3_stmt *st;
	int col;
	int oom;
};

static char *
rd_text(struct rd *r)
{
	const unsigned char *t;
	char *s;
	int i = r->col++;

	if (sqlite3_column_type(r->st, i) == SQLITE_NULL)
		return NULL;
	t = sqlite3_column_text(r->st, i);
	if (t == NULL ||
	    (s = eb_strndup((const char *)t,
	                    (size_t)sqlite3_column_bytes(r->st, i))) == NULL) {
		r->oom = 1;
		return NULL;
	}
	return s;
}

static int64_t
rd_i64(struct rd *r)
{
	return sqlite3_column_int64(r->st, r->col++);
}

static uint8_t *
rd_blob(struct rd *r, size_t *len)
{
	const void *p;
	uint8_t *b;
	int i = r->col++, n;

	*len = 0;
	if (sqlite3_column_type(r->st, i) == SQLITE_NULL)
		return NULL;
	p = sqlite3_column_blob(r->st, i);
	n = sqlite3_column_bytes(r->st, i);
	if ((p == NULL && n > 0) || (b = eb_malloc((size_t)n)) == NULL) {
		r->oom = 1;
		return NULL;
	}
	if (n > 0)
		memcpy(b, p, (size_t)n);
	*len = (size_t)n;
	return b;
}

/* The enum value whose name (through namef) is the column's text, or -1. */
static int
rd_enum(struct rd *r, const char *(*namef)(int))
{
	const unsigned char *t = sqlite3_column_text(r->st, r->col++);
	const char *n;
	int i;

	for (i = 0; t != NULL && (n = namef(i)) != NULL; i++)
		if (strcmp(n, (const char *)t) == 0)
			return i;
	return -1;
}

/* ---- transactions ----------------------------------------------------- */

static int
tx_begin(struct conn *c)
{
	sqlite3_stmt *st;

	if ((st = stmt(c, ST_BEGIN)) == NULL)
		return EB_STORE_ERROR;
	return run(c, st, __func__);
}

static void
tx_rollback(struct conn *c)
{
	sqlite3_stmt *st;

	/* A failed statement may already have ended the transaction. */
	if (sqlite3_get_autocommit(c->db))
		return;
	if ((st = stmt(c, ST_ROLLBACK)) == NULL || run(c, st, __func__) != 0)
		log_warnx("store: rollback failed");
}

/*
 * End the transaction: commit when commit is set (rc is returned, or
 * EB_STORE_ERROR when the commit fails), else roll back and return rc.
 */
static int
tx_end(struct conn *c, int rc, int commit)
{
	sqlite3_stmt *st;

	if (!commit) {
		tx_rollback(c);
		return rc;
	}
	if ((st = stmt(c, ST_COMMIT)) == NULL || run(c, st, __func__) != 0) {
		tx_rollback(c);
		return EB_STORE_ERROR;
	}
	return rc;
}

/* ---- row readers ------------------------------------------------------ */

static int
read_audit(sqlite3_stmt *st, void *p)
{
	struct eb_store_audit *a = p;
	struct rd r = {st, 0, 0};

	a->id = rd_i64(&r);
	a->ts = rd_i64(&r);
	a->tenant = rd_text(&r);
	a->event = rd_text(&r);
	a->subject = rd_text(&r);
	a->detail = rd_text(&r);
	return r.oom ? -1 : 0;
}

static int
read_flow(sqlite3_stmt *st, void *p)
{
	struct eb_store_flow *f = p;
	struct rd r = {st, 0, 0};

	f->id = rd_text(&r);
	f->tenant = rd_text(&r);
	f->kind = rd_enum(&r, eb_store_flow_kind_name);
	f->created = rd_i64(&r);
	f->expires = rd_i64(&r);
	f->user_identifier = rd_text(&r);
	f->enrollment_mode = rd_text(&r);
	f->model_family = rd_text(&r);
	f->product = rd_text(&r);
	f->version = rd_text(&r);
	f->language = rd_text(&r);
	f->os_version = rd_text(&r);
	f->udid = rd_text(&r);
	f->serial = rd_text(&r);
	f->upstream_state = rd_text(&r);
	f->upstream_nonce = rd_text(&r);
	f->pkce_verifier = rd_blob(&r, &f->pkce_verifier_len);
	f->browser_binding = rd_text(&r);
	f->client_id = rd_text(&r);
	f->redirect_uri = rd_text(&r);
	f->device_state = rd_text(&r);
	f->scope = rd_text(&r);
	f->extra = rd_text(&r);
	f->code_challenge = rd_text(&r);
	return r.oom ? -1 : 0;
}

static int
read_code(sqlite3_stmt *st, void *p)
{
	struct eb_store_code *c = p;
	struct rd r = {st, 0, 0};

	c->hash = rd_text(&r);
	c->tenant = rd_text(&r);
	c->grant_id = rd_text(&r);
	c->client_id = rd_text(&r);
	c->redirect_uri = rd_text(&r);
	c->scope = rd_text(&r);
	c->created = rd_i64(&r);
	c->expires = rd_i64(&r);
	c->used_at = rd_i64(&r);
	c->code_challenge = rd_text(&r);
	return r.oom ? -1 : 0;
}

/* A grant's GRANT_NCOLS columns from r's current column on. */
static void
read_grant_rd(struct rd *rp, struct eb_store_grant *g)
{
	struct rd r = *rp;

	g->id = rd_text(&r);
	g->tenant = rd_text(&r);
	g->status = rd_enum(&r, eb_store_grant_status_name);
	g->auth_method = rd_text(&r);
	g->client_id = rd_text(&r);
	g->managed_apple_id = rd_text(&r);
	g->user_identifier = rd_text(&r);
	g->idp_issuer = rd_text(&r);
	g->idp_subject = rd_text(&r);
	g->idp_tid = rd_text(&r);
	g->idp_oid = rd_text(&r);
	g->enrollment_mode = rd_text(&r);
	g->binding_kind = rd_text(&r);
	g->binding_value = rd_text(&r);
	g->bound_at = rd_i64(&r);
	g->created = rd_i64(&r);
	g->updated = rd_i64(&r);
	g->expires = rd_i64(&r);
	g->upstream_refresh_token = rd_blob(&r, &g->upstream_refresh_token_len);
	g->upstream_renewed_at = rd_i64(&r);
	g->upstream_next_at = rd_i64(&r);
	g->upstream_failing_since = rd_i64(&r);
	g->revoked_at = rd_i64(&r);
	g->revoke_reason = rd_text(&r);
	g->superseded_by = rd_text(&r);
	g->extra = rd_text(&r);
	g->lease_owner = rd_text(&r);
	g->lease_token = rd_text(&r);
	g->lease_until = rd_i64(&r);
	*rp = r;
}

static int
read_grant(sqlite3_stmt *st, void *p)
{
	struct rd r = {st, 0, 0};

	read_grant_rd(&r, p);
	return r.oom ? -1 : 0;
}

/* A token's TOKEN_NCOLS columns from r's current column on. */
static void
read_token_rd(struct rd *rp, struct eb_store_token *t)
{
	struct rd r = *rp;

	t->hash = rd_text(&r);
	t->kind = rd_enum(&r, eb_store_token_kind_name);
	t->tenant = rd_text(&r);
	t->grant_id = rd_text(&r);
	t->client_id = rd_text(&r);
	t->jti = rd_text(&r);
	t->created = rd_i64(&r);
	t->expires = rd_i64(&r);
	t->status = rd_enum(&r, eb_store_token_status_name);
	t->rotated_at = rd_i64(&r);
	t->parent_hash = rd_text(&r);
	t->replaced_by = rd_text(&r);
	*rp = r;
}

static int
read_token(sqlite3_stmt *st, void *p)
{
	struct rd r = {st, 0, 0};

	read_token_rd(&r, p);
	return r.oom ? -1 : 0;
}

static int
read_key(sqlite3_stmt *st, void *p)
{
	struct eb_store_key *k = p;
	struct rd r = {st, 0, 0};

	k->kid = rd_text(&r);
	k->tenant = rd_text(&r);
	k->alg = rd_text(&r);
	k->created = rd_i64(&r);
	k->retired_at = rd_i64(&r);
	k->not_after = rd_i64(&r);
	k->public_jwk = rd_text(&r);
	k->private_key = rd_blob(&r, &k->private_key_len);
	k->activates_at = rd_i64(&r);
	return r.oom ? -1 : 0;
}

static int
read_mapping(sqlite3_stmt *st, void *p)
{
	struct eb_store_mapping *m = p;
	struct rd r = {st, 0, 0};

	m->tenant = rd_text(&r);
	m->subject = rd_text(&r);
	m->managed_apple_id = rd_text(&r);
	m->note = rd_text(&r);
	m->created = rd_i64(&r);
	m->updated = rd_i64(&r);
	return r.oom ? -1 : 0;
}

/* How to read and release one kind of record. */
struct rowtype {
	size_t size;
	int (*read)(sqlite3_stmt *, void *);
	void (*finish)(void *);
};

static void
fin_audit(void *p)
{
	eb_store_audit_finish(p);
}
static void
fin_flow(void *p)
{
	eb_store_flow_finish(p);
}
static void
fin_code(void *p)
{
	eb_store_code_finish(p);
}
static void
fin_grant(void *p)
{
	eb_store_grant_finish(p);
}
static void
fin_token(void *p)
{
	eb_store_token_finish(p);
}
static void
fin_key(void *p)
{
	eb_store_key_finish(p);
}
static void
fin_mapping(void *p)
{
	eb_store_mapping_finish(p);
}

static const struct rowtype RT_AUDIT = {sizeof(struct eb_store_audit),
                                        read_audit, fin_audit};
static const struct rowtype RT_FLOW = {sizeof(struct eb_store_flow), read_flow,
                                       fin_flow};
static const struct rowtype RT_CODE = {sizeof(struct eb_store_code), read_code,
                                       fin_code};
static const struct rowtype RT_GRANT = {sizeof(struct eb_store_grant),
                                        read_grant, fin_grant};
static const struct rowtype RT_TOKEN = {sizeof(struct eb_store_token),
                                        read_token, fin_token};
static const struct rowtype RT_KEY = {sizeof(struct eb_store_key), read_key,
                                      fin_key};
static const struct rowtype RT_MAPPING = {sizeof(struct eb_store_mapping),
                                          read_mapping, fin_mapping};

/*
 * Step a bound statement expected to yield at most one row into out
 * (zeroed first). OK, NOT_FOUND or ERROR; the statement is reset.
 */
static int
fetch_one(struct conn *c, sqlite3_stmt *st, const struct rowtype *rt, void *out,
          const char *fn)
{
	int rc;

	memset(out, 0, rt->size);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (rt->read(st, out) != 0) {
			rt->finish(out);
			log_warnx("store: out of memory");
			rc = EB_STORE_ERROR;
		} else
			rc = EB_STORE_OK;
	} else if (rc == SQLITE_DONE)
		rc = EB_STORE_NOT_FOUND;
	else
		rc = fail(c, rc, fn);
	sqlite3_reset(st);
	return rc;
}

/* Step a bound statement, collecting every row into *vp / *np. */
static int
fetch_all(struct conn *c, sqlite3_stmt *st, const struct rowtype *rt, void **vp,
          size_t *np, const char *fn)
{
	unsigned char *v = NULL, *nv;
	size_t n = 0, cap = 0, i;
	int rc;

	*vp = NULL;
	*np = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			if ((nv = eb_realloc(v, cap * rt->size)) == NULL)
				goto out_oom;
			v = nv;
		}
		memset(v + n * rt->size, 0, rt->size);
		if (rt->read(st, v + n * rt->size) != 0) {
			rt->finish(v + n * rt->size);
			goto out_oom;
		}
		n++;
	}
	if (rc != SQLITE_DONE) {
		rc = fail(c, rc, fn);
		goto out_free;
	}
	sqlite3_reset(st);
	*vp = v;
	*np = n;
	return EB_STORE_OK;

out_oom:
	log_warnx("store: out of memory");
	rc = EB_STORE_ERROR;
out_free:
	for (i = 0; i < n; i++)
		rt->finish(v + i * rt->size);
	eb_free(v);
	sqlite3_reset(st);
	return rc;
}

/* ---- open / close / migrations ---------------------------------------- */

static void sq_close(void *be);

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

static int
exec(struct conn *c, const char *sql, char *err, size_t errlen)
{
	if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	snprintf(err, errlen, "store: %s: %s", c->sq->path,
	         sqlite3_errmsg(c->db));
	return -1;
}

/* Note migration m as applied, inside its transaction. */
static int
record_migration(struct conn *c, const struct eb_store_migration *m, char *err,
                 size_t errlen)
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
	    b_text(st, 2, m->name) == SQLITE_OK &&
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
query_int(struct conn *c, const char *sql, int64_t *out, char *err,
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
check_newer(struct conn *c, int64_t cur, int known, char *err, size_t errlen)
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
static int
check_schema(struct conn *c, char *err, size_t errlen)
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
	tx_rollback(c);
	return -1;
}

/*
 * Apply the migrations the database lacks, each in its own transaction
 * (BEGIN IMMEDIATE: concurrent openers, in this process or another,
 * serialise on the write lock and each re-reads the version inside it, so
 * none applies one twice); a newer database is accepted only when
 * compatible (check_newer). applied (may be NULL) hears of each one.
 */
static int
migrate(struct conn *c, eb_store_applied_fn *applied, void *arg, char *err,
        size_t errlen)
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
		if ((st = stmt(c, ST_VERSION)) == NULL ||
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
	tx_rollback(c);
	return -1;
}

static int
sq_open_flags(const char *target, int flags,
              const struct eb_store_open_opts *opts,
              eb_store_applied_fn *applied, void *arg, void **bep, char *err,
              size_t errlen)
{
	struct sq *sq;
	struct conn *c;

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
	if (pthread_mutex_init(&sq->rotate_lock, NULL) != 0) {
		pthread_mutex_destroy(&sq->lock);
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
	         ? check_schema(c, err, errlen)
	         : migrate(c, applied, arg, err, errlen)) != 0)
		goto out_close;
	*bep = sq;
	return 0;

out_close:
	sq_close(sq);
out_log:
	log_warnx("%s", err);
	return -1;
}

static int
sq_open(const char *target, void **bep, char *err, size_t errlen)
{
	return sq_open_flags(target, 0, NULL, NULL, NULL, bep, err, errlen);
}

static void
sq_close(void *be)
{
	struct sq *sq = be;
	struct conn *c, *next;

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
	pthread_mutex_destroy(&sq->rotate_lock);
	eb_free(sq->path);
	eb_free(sq);
}

static int
sq_ping(void *be)
{
	struct conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = conn_get(be)) == NULL || (st = stmt(c, ST_PING)) == NULL)
		return EB_STORE_ERROR;
	rc = sqlite3_step(st) == SQLITE_ROW
	         ? EB_STORE_OK
	         : fail(c, sqlite3_errcode(c->db), __func__);
	sqlite3_reset(st);
	return rc;
}

static int
sq_schema_version(void *be, int64_t *version)
{
	struct conn *c;
	sqlite3_stmt *st;
	int rc = EB_STORE_OK;

	*version = 0;
	if ((c = conn_get(be)) == NULL || (st = stmt(c, ST_VERSION)) == NULL)
		return EB_STORE_ERROR;
	if (sqlite3_step(st) == SQLITE_ROW)
		*version = sqlite3_column_int64(st, 0);
	else
		rc = fail(c, sqlite3_errcode(c->db), __func__);
	sqlite3_reset(st);
	return rc;
}

/* ---- audit ------------------------------------------------------------ */

static int
audit_insert(struct conn *c, int64_t ts, const char *tenant, const char *event,
             const char *subject, const char *detail)
{
	sqlite3_stmt *st;

	if ((st = stmt(c, ST_AUDIT_ADD)) == NULL)
		return EB_STORE_ERROR;
	if (sqlite3_bind_int64(st, 1, ts) | b_text(st, 2, tenant) |
	    b_text(st, 3, event) | b_text(st, 4, subject) |
	    b_text(st, 5, detail))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return run(c, st, __func__);
}

/*
 * Record a change of grant id as event "grant.<what>", with up to two
 * string fields as detail (NULL values left out), in the caller's
 * transaction.
 */
static int
audit_grant(struct conn *c, const char *tenant, const char *what,
            const char *id, int64_t now, const char *k1, const char *v1,
            const char *k2, const char *v2)
{
	struct eb_buf b;
	char event[48];
	int rc = EB_STORE_ERROR, sep = 0;

	snprintf(event, sizeof(event), "grant.%s", what);
	eb_buf_init(&b, AUDIT_DETAIL_MAX);
	if (eb_buf_addc(&b, '{') != 0)
		goto out;
	if (v1 != NULL) {
		if (eb_buf_add_json_str(&b, k1) || eb_buf_addc(&b, ':') ||
		    eb_buf_add_json_str(&b, v1))
			goto out;
		sep = 1;
	}
	if (v2 != NULL) {
		if ((sep && eb_buf_addc(&b, ',')) ||
		    eb_buf_add_json_str(&b, k2) || eb_buf_addc(&b, ':') ||
		    eb_buf_add_json_str(&b, v2))
			goto out;
	}
	if (eb_buf_addc(&b, '}') != 0)
		goto out;
	rc = audit_insert(c, now, tenant, event, id, eb_buf_str(&b));
out:
	if (rc == EB_STORE_ERROR && b.len == 0)
		log_warnx("store: out of memory");
	eb_buf_finish(&b);
	return rc;
}

static int
sq_audit_add(void *be, const struct eb_store_audit *ev)
{
	struct conn *c;

	if ((c = conn_get(be)) == NULL)
		return EB_STORE_ERROR;
	return audit_insert(c, ev->ts, ev->tenant, ev->event, ev->subject,
	                    ev->detail);
}

static int
sq_audit_list(void *be, const char *tenant, size_t limit,
              struct eb_store_audit_list *out)
{
	struct conn *c;
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if (limit == 0 || limit > AUDIT_LIST_MAX)
		limit = AUDIT_LIST_MAX;
	if ((c = conn_get(be)) == NULL || (st = stmt(c, ST_AUDIT_LIST)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, tenant) | sqlite3_bind_int64(st, 2, (int64_t)limit))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return fetch_all(c, st, &RT_AUDIT, (void **)&out->v, &out->n, __func__);
}

/* ---- login flows ------------------------------------------------------ */

static int
flow_select(struct conn *c, int by, const char *key, struct eb_store_flow *out)
{
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if (key == NULL)
		return EB_STORE_NOT_FOUND;
	st = stmt(c, by == EB_STORE_FLOW_BY_STATE ? ST_FLOW_BY_STATE
	                                          : ST_FLOW_BY_ID);
	if (st == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, key))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return fetch_one(c, st, &RT_FLOW, out, __func__);
}

static int
flow_delete(struct conn *c, const char *id)
{
	sqlite3_stmt *st;

	if ((st = stmt(c, ST_FLOW_DEL)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, id))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return run(c, st, __func__);
}

static int
sq_flow_put(void *be, const struct eb_store_flow *f)
{
	const char *kind = eb_store_flow_kind_name(f->kind);
	struct conn *c;
	sqlite3_stmt *st;
	int rc;

	if (kind == NULL || f->id == NULL) {
		log_warnx("store: flow without id or with a bad kind");
		return EB_STORE_ERROR;
	}
	if ((c = conn_get(be)) == NULL || tx_begin(c) != 0)
		return EB_STORE_ERROR;
	if ((rc = flow_delete(c, f->id)) != 0)
		goto out;
	if ((st = stmt(c, ST_FLOW_INS)) == NULL) {
		rc = EB_STORE_ERROR;
		goto out;
	}
	if (b_text(st, 1, f->id) | b_text(st, 2, f->tenant) |
	    b_text(st, 3, kind) | sqlite3_bind_int64(st, 4, f->created) |
	    sqlite3_bind_int64(st, 5, f->expires) |
	    b_text(st, 6, f->user_identifier) |
	    b_text(st, 7, f->enrollment_mode) | b_text(st, 8, f->model_family) |
	    b_text(st, 9, f->product) | b_text(st, 10, f->version) |
	    b_text(st, 11, f->language) | b_text(st, 12, f->os_version) |
	    b_text(st, 13, f->udid) | b_text(st, 14, f->serial) |
	    b_text(st, 15, f->upstream_state) |
	    b_text(st, 16, f->upstream_nonce) |
	    b_blob(st, 17, f->pkce_verifier, f->pkce_verifier_len) |
	    b_text(st, 18, f->browser_binding) | b_text(st, 19, f->client_id) |
	    b_text(st, 20, f->redirect_uri) | b_text(st, 21, f->device_state) |
	    b_text(st, 22, f->scope) | b_text(st, 23, f->extra) |
	    b_text(st, 24, f->code_challenge)) {
		rc = fail(c, sqlite3_errcode(c->db), __func__);
		goto out;
	}
	rc = run(c, st, __func__);
out:
	return tx_end(c, rc, rc == EB_STORE_OK);
}

static int
sq_flow_get(void *be, int by, const char *key, int64_t now,
            struct eb_store_flow *out)
{
	struct conn *c;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((c = conn_get(be)) == NULL)
		return EB_STORE_ERROR;
	if ((rc = flow_select(c, by, key, out)) == EB_STORE_OK &&
	    out->expires <= now) {
		eb_store_flow_finish(out);
		rc = EB_STORE_EXPIRED;
	}
	return rc;
}

static int
sq_flow_take(void *be, int by, const char *key, int64_t now,
             struct eb_store_flow *out)
{
	struct conn *c;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((c = conn_get(be)) == NULL || tx_begin(c) != 0)
		return EB_STORE_ERROR;
	rc = flow_select(c, by, key, out);
	if (rc == EB_STORE_OK) {
		if ((rc = flow_delete(c, out->id)) == EB_STORE_OK &&
		    out->expires <= now)
			rc = EB_STORE_EXPIRED;
	}
	rc = tx_end(c, rc, rc == EB_STORE_OK || rc == EB_STORE_EXPIRED);
	if (rc != EB_STORE_OK)
		eb_store_flow_finish(out);
	return rc;
}

/* ---- grants ----------------------------------------------------------- */

/* The little of a grant that the write operations decide on. */
struct gstate {
	int status;
	char *tenant;
	char *bkind, *bvalue;
};

static void
gstate_finish(struct gstate *g)
{
	eb_free(g->tenant);
	eb_free(g->bkind);
	eb_free(g->bvalue);
	memset(g, 0, sizeof(*g));
}

static int
gstate_read(struct conn *c, const char *id, struct gstate *g)
{
	sqlite3_stmt *st;
	struct rd r;
	int rc;

	memset(g, 0, sizeof(*g));
	if (id == NULL)
		return EB_STORE_NOT_FOUND;
	if ((st = stmt(c, ST_GRANT_STATE)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, id))
		return fail(c, sqlite3_errcode(c->db), __func__);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = (struct rd){st, 0, 0};
		g->status = rd_enum(&r, eb_store_grant_status_name);
		g->tenant = rd_text(&r);
		g->bkind = rd_text(&r);
		g->bvalue = rd_text(&r);
		rc = EB_STORE_OK;
		if (r.oom) {
			gstate_finish(g);
			log_warnx("store: out of memory");
			rc = EB_STORE_ERROR;
		}
	} else if (rc == SQLITE_DONE)
		rc = EB_STORE_NOT_FOUND;
	else
		rc = fail(c, rc, __func__);
	sqlite3_reset(st);
	return rc;
}

/*
 * End an active grant (revoked/expired/superseded), inside the caller's
 * transaction: status and reason set, upstream secret erased, every token
 * revoked, the change audited.
 */
static int
grant_end(struct conn *c, const char *id, const char *tenant, int status,
          const char *reason, const char *superseded_by, int64_t now)
{
	const char *name = eb_store_grant_status_name(status);
	sqlite3_stmt *st;
	int rc;

	if ((st = stmt(c, ST_GRANT_END)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, id) | b_text(st, 2, name) | b_text(st, 3, reason) |
	    sqlite3_bind_int64(st, 4, now) | b_text(st, 5, superseded_by))
		return fail(c, sqlite3_errcode(c->db), __func__);
	if ((rc = run(c, st, __func__)) != 0)
		return rc;
	if ((st = stmt(c, ST_TOKEN_REVOKE_GRANT)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, id))
		return fail(c, sqlite3_errcode(c->db), __func__);
	if ((rc = run(c, st, __func__)) != 0)
		return rc;
	return audit_grant(c, tenant, name, id, now, "reason", reason,
	                   "superseded_by", superseded_by);
}

static int
sq_grant_create(void *be, const struct eb_store_grant *g)
{
	const char *status = eb_store_grant_status_name(g->status);
	struct conn *c;
	sqlite3_stmt *st;
	int rc;

	if (status == NULL) {
		log_warnx("store: grant with a bad status");
		return EB_STORE_ERROR;
	}
	if ((c = conn_get(be)) == NULL || tx_begin(c) != 0)
		return EB_STORE_ERROR;
	if ((st = stmt(c, ST_GRANT_INS)) == NULL) {
		rc = EB_STORE_ERROR;
		goto out;
	}
	if (b_text(st, 1, g->id) | b_text(st, 2, g->tenant) |
	    b_text(st, 3, status) | b_text(st, 4, g->auth_method) |
	    b_text(st, 5, g->client_id) | b_text(st, 6, g->managed_apple_id) |
	    b_text(st, 7, g->user_identifier) | b_text(st, 8, g->idp_issuer) |
	    b_text(st, 9, g->idp_subject) | b_text(st, 10, g->idp_tid) |
	    b_text(st, 11, g->idp_oid) | b_text(st, 12, g->enrollment_mode) |
	    b_text(st, 13, g->binding_kind) | b_text(st, 14, g->binding_value) |
	    sqlite3_bind_int64(st, 15, g->bound_at) |
	    sqlite3_bind_int64(st, 16, g->created) |
	    sqlite3_bind_int64(st, 17, g->updated) |
	    sqlite3_bind_int64(st, 18, g->expires) |
	    b_blob(st, 19, g->upstream_refresh_token,
	           g->upstream_refresh_token_len) |
	    sqlite3_bind_int64(st, 20, g->upstream_renewed_at) |
	    sqlite3_bind_int64(st, 21, g->upstream_next_at) |
	    sqlite3_bind_int64(st, 22, g->upstream_failing_since) |
	    sqlite3_bind_int64(st, 23, g->revoked_at) |
	    b_text(st, 24, g->revoke_reason) |
	    b_text(st, 25, g->superseded_by) | b_text(st, 26, g->extra)) {
		rc = fail(c, sqlite3_errcode(c->db), __func__);
		goto out;
	}
	if ((rc = run(c, st, __func__)) != 0)
		goto out;
	rc = audit_grant(c, g->tenant, "created", g->id, g->created,
	                 "managed_apple_id", g->managed_apple_id,
	                 "enrollment_mode", g->enrollment_mode);
out:
	return tx_end(c, rc, rc == EB_STORE_OK);
}

static int
sq_grant_get(void *be, const char *id, struct eb_store_grant *out)
{
	struct conn *c;
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if ((c = conn_get(be)) == NULL || (st = stmt(c, ST_GRANT_GET)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, id))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return fetch_one(c, st, &RT_GRANT, out, __func__);
}

static int
sq_grant_list(void *be, const struct eb_store_grant_filter *f,
              struct eb_store_grant_list *out)
{
	struct conn *c;
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if ((c = conn_get(be)) == NULL || (st = stmt(c, ST_GRANT_LIST)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, f ? f->tenant : NULL) |
	    b_text(st, 2,
	           f && f->status >= 0 ? eb_store_grant_status_name(f->status)
	                               : NULL) |
	    b_text(st, 3, f ? f->managed_apple_id : NULL) |
	    sqlite3_bind_int64(st, 4,
	                       f && f->limit > 0 && f->limit < INT64_MAX
	                           ? (int64_t)f->limit
	                           : -1))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return fetch_all(c, st, &RT_GRANT, (void **)&out->v, &out->n, __func__);
}

static int
sq_grant_set_status(void *be, const char *id, int status, const char *reason,
                    int64_t now)
{
	struct gstate gs;
	struct conn *c;
	int rc;

	if (eb_store_grant_status_name(status) == NULL) {
		log_warnx("store: bad grant status %d", status);
		return EB_STORE_ERROR;
	}
	if ((c = conn_get(be)) == NULL || tx_begin(c) != 0)
		return EB_STORE_ERROR;
	if ((rc = gstate_read(c, id, &gs)) != 0)
		goto out;
	switch (eb_grant_end_decide(gs.status, status)) {
	case EB_GRANT_END:
		rc = grant_end(c, id, gs.tenant, status, reason, NULL, now);
		break;
	case EB_GRANT_END_NOOP:
		rc = EB_STORE_OK; /* nothing to change */
		break;
	default:
		rc = EB_STORE_CONFLICT;
	}
	gstate_finish(&gs);
out:
	return tx_end(c, rc, rc == EB_STORE_OK);
}

static int
grant_set_binding(struct conn *c, const char *id, const char *tenant,
                  const char *kind, const char *value, int64_t now,
                  const char *from)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = stmt(c, ST_GRANT_BIND)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, id) | b_text(st, 2, kind) | b_text(st, 3, value) |
	    sqlite3_bind_int64(st, 4, now))
		return fail(c, sqlite3_errcode(c->db), __func__);
	if ((rc = run(c, st, __func__)) != 0)
		return rc;
	return audit_grant(c, tenant, "bound", id, now, kind, value,
	                   "inherited_from", from);
}

/* Who a grant's person is at the IdP: issuer and subject, as stored. */
struct person {
	char *id; /* the grant's, for holder() */
	char *issuer, *subject;
};

static void
person_finish(struct person *p)
{
	eb_free(p->id);
	eb_free(p->issuer);
	eb_free(p->subject);
	memset(p, 0, sizeof(*p));
}

/* Fill p from the current row of st: [id,] issuer, subject; 0, or -1
 * when out of memory (p finished). */
static int
person_read(sqlite3_stmt *st, int with_id, struct person *p)
{
	struct rd r = {st, 0, 0};

	if (with_id)
		p->id = rd_text(&r);
	p->issuer = rd_text(&r);
	p->subject = rd_text(&r);
	if (r.oom) {
		person_finish(p);
		return -1;
	}
	return 0;
}
static int
read_person(sqlite3_stmt *st, void *p)
{
	return person_read(st, 0, p);
}
static int
read_holder(sqlite3_stmt *st, void *p)
{
	return person_read(st, 1, p);
}
static void
fin_person(void *p)
{
	person_finish(p);
}
static const struct rowtype RT_PERSON = {sizeof(struct person), read_person,
                                         fin_person};
static const struct rowtype RT_HOLDER = {sizeof(struct person), read_holder,
                                         fin_person};

/* The same person signed in for both grants (grant/policy.h). */
static int
same_person(const struct person *a, const struct person *b)
{
	return eb_grant_same_person(a->issuer, a->subject, b->issuer,
	                            b->subject);
}

static int
grant_person(struct conn *c, const char *id, struct person *p)
{
	sqlite3_stmt *st;

	memset(p, 0, sizeof(*p));
	if ((st = stmt(c, ST_GRANT_PERSON)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, id))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return fetch_one(c, st, &RT_PERSON, p, __func__);
}

/*
 * The active grant other than id that holds the enrollment (kind, value)
 * in tenant: OK with h filled, NOT_FOUND when there is none.
 */
static int
grant_holder(struct conn *c, const char *tenant, const char *kind,
             const char *value, const char *id, struct person *h)
{
	sqlite3_stmt *st;

	memset(h, 0, sizeof(*h));
	if ((st = stmt(c, ST_GRANT_HOLDER)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, tenant) | b_text(st, 2, kind) | b_text(st, 3, value) |
	    b_text(st, 4, id))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return fetch_one(c, st, &RT_HOLDER, h, __func__);
}

/*
 * One active grant per enrollment (grant/policy.h): read, inside the
 * caller's transaction, the active grant other than id that holds (kind,
 * value) in tenant, into h, and whether its person is id's. The partial
 * unique index grants_active_binding (migration 4) refuses a second
 * holder even if the rule were bypassed.
 */
static int
enrollment_holder(struct conn *c, const char *id, const char *tenant,
                  const char *kind, const char *value,
                  struct eb_grant_bind_in *in, struct person *h)
{
	struct person me;
	int rc;

	if ((rc = grant_holder(c, tenant, kind, value, id, h)) ==
	    EB_STORE_NOT_FOUND)
		return EB_STORE_OK;
	if (rc != EB_STORE_OK)
		return rc;
	in->holder_found = 1;
	if ((rc = grant_person(c, id, &me)) != EB_STORE_OK)
		return rc;
	in->holder_same_person = same_person(&me, h);
	person_finish(&me);
	return EB_STORE_OK;
}

static int
sq_grant_supersede(void *be, const char *old_id, const char *new_id,
                   int64_t now)
{
	struct eb_grant_supersede_plan plan;
	struct eb_grant_supersede_in in;
	struct gstate o, n;
	struct person h;
	struct conn *c;
	int rc;

	if ((c = conn_get(be)) == NULL || tx_begin(c) != 0)
		return EB_STORE_ERROR;
	memset(&o, 0, sizeof(o));
	memset(&h, 0, sizeof(h));
	if ((rc = gstate_read(c, new_id, &n)) != 0)
		goto out;
	if ((rc = gstate_read(c, old_id, &o)) != 0)
		goto out_free;
	memset(&in, 0, sizeof(in));
	in.same_id = strcmp(old_id, new_id) == 0;
	in.same_tenant = strcmp(o.tenant, n.tenant) == 0;
	in.old_status = o.status;
	in.new_status = n.status;
	in.old_bound = o.bvalue != NULL;
	in.new_bound = n.bvalue != NULL;
	if (in.old_bound && !in.new_bound) {
		/* who else holds old's enrollment; old itself, about to
		 * end, does not count (one active holder: the index) */
		rc = grant_holder(c, n.tenant, o.bkind, o.bvalue, new_id, &h);
		if (rc != EB_STORE_OK && rc != EB_STORE_NOT_FOUND)
			goto out_free;
		in.holder_found =
		    rc == EB_STORE_OK && strcmp(h.id, old_id) != 0;
	}
	eb_grant_supersede_decide(&in, &plan);
	if ((rc = plan.rc) != EB_STORE_OK)
		goto out_free;
	if (plan.end_old &&
	    (rc = grant_end(c, old_id, o.tenant, EB_STORE_GRANT_SUPERSEDED,
	                    "re-authenticated", new_id, now)) != 0)
		goto out_free;
	if (plan.inherit)
		rc = grant_set_binding(c, new_id, n.tenant, o.bkind, o.bvalue,
		                       now, old_id);
out_free:
	person_finish(&h);
	gstate_finish(&o);
	gstate_finish(&n);
out:
	return tx_end(c, rc, rc == EB_STORE_OK);
}

static int
sq_grant_bind(void *be, const char *id, const char *kind, const char *value,
              int64_t now)
{
	struct eb_grant_bind_in in;
	struct gstate gs;
	struct person h;
	struct conn *c;
	int rc;

	memset(&in, 0, sizeof(in));
	memset(&h, 0, sizeof(h));
	in.kind = kind;
	in.value = value;
	if (eb_grant_bind_decide(&in, &rc) == EB_GRANT_BIND_BAD)
		return rc;
	if ((c = conn_get(be)) == NULL || tx_begin(c) != 0)
		return EB_STORE_ERROR;
	if ((rc = gstate_read(c, id, &gs)) != 0)
		goto out;
	in.status = gs.status;
	in.bkind = gs.bkind;
	in.bvalue = gs.bvalue;
	/* the holder matters only to an active grant not yet bound */
	if (gs.status == EB_STORE_GRANT_ACTIVE && gs.bkind == NULL &&
	    gs.bvalue == NULL &&
	    (rc = enrollment_holder(c, id, gs.tenant, kind, value, &in, &h)) !=
	        EB_STORE_OK)
		goto out_free;
	switch (eb_grant_bind_decide(&in, &rc)) {
	case EB_GRANT_BIND_SUPERSEDE:
		if ((rc = grant_end(c, h.id, gs.tenant,
		                    EB_STORE_GRANT_SUPERSEDED, "re-enrolled",
		                    id, now)) != EB_STORE_OK)
			break;
		/* FALLTHROUGH */
	case EB_GRANT_BIND:
		rc =
		    grant_set_binding(c, id, gs.tenant, kind, value, now, NULL);
		break;
	default:
		break; /* rc is the rule's answer */
	}
out_free:
	person_finish(&h);
	gstate_finish(&gs);
out:
	return tx_end(c, rc, rc == EB_STORE_OK);
}

/* Bind a renewal outcome for ST_GRANT_UPSTREAM(_FENCED). */
static int
bind_upstream(sqlite3_stmt *st, const char *id,
              const struct eb_store_upstream *u, int64_t now)
{
	return b_text(st, 1, id) | sqlite3_bind_int64(st, 2, u->renewed_at) |
	       sqlite3_bind_int64(st, 3, u->next_at) |
	       sqlite3_bind_int64(st, 4, u->failing_since) |
	       b_blob(st, 5, u->refresh_token, u->refresh_token_len) |
	       sqlite3_bind_int64(st, 6, now);
}

/*
 * Inside the caller's transaction: OK when grant id still holds the claim
 * token (the fence rule, grant/policy.h), LOST when not, NOT_FOUND when
 * there is no such grant.
 */
static int
lease_held(struct conn *c, const char *id, const char *token)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = stmt(c, ST_GRANT_LEASE_GET)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, id))
		return fail(c, sqlite3_errcode(c->db), __func__);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = eb_grant_lease_fenced(
		         (const char *)sqlite3_column_text(st, 0), token)
		         ? EB_STORE_OK
		         : EB_STORE_LOST;
	else if (rc == SQLITE_DONE)
		rc = EB_STORE_NOT_FOUND;
	else
		rc = fail(c, rc, __func__);
	sqlite3_reset(st);
	return rc;
}

static int
sq_grant_set_upstream(void *be, const char *id,
                      const struct eb_store_upstream *u, int64_t now)
{
	struct conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = conn_get(be)) == NULL)
		return EB_STORE_ERROR;
	if (u->lease_token == NULL) {
		/* unfenced (admin tools): the lease is left as is */
		if ((st = stmt(c, ST_GRANT_UPSTREAM)) == NULL)
			return EB_STORE_ERROR;
		if (bind_upstream(st, id, u, now))
			return fail(c, sqlite3_errcode(c->db), __func__);
		if ((rc = run(c, st, __func__)) == 0 &&
		    sqlite3_changes(c->db) == 0)
			rc = EB_STORE_NOT_FOUND;
		return rc;
	}
	if (tx_begin(c) != 0)
		return EB_STORE_ERROR;
	if ((rc = lease_held(c, id, u->lease_token)) != EB_STORE_OK)
		goto out;
	if ((st = stmt(c, ST_GRANT_UPSTREAM_FENCED)) == NULL) {
		rc = EB_STORE_ERROR;
		goto out;
	}
	if (bind_upstream(st, id, u, now)) {
		rc = fail(c, sqlite3_errcode(c->db), __func__);
		goto out;
	}
	if ((rc = run(c, st, __func__)) == 0 && sqlite3_changes(c->db) == 0)
		rc = EB_STORE_NOT_FOUND; /* ended meanwhile */
out:
	return tx_end(c, rc, rc == EB_STORE_OK);
}

/*
 * The claim rule (grant/policy.h) on the rows the due query returned: the
 * query is an index range, the rule decides; a row it refuses is dropped
 * and never leased.
 */
static void
due_only(struct eb_store_grant_list *l, int64_t now)
{
	struct eb_grant_lease_state ls;
	size_t i, n = 0;

	for (i = 0; i < l->n; i++) {
		ls.status = l->v[i].status;
		ls.upstream_next_at = l->v[i].upstream_next_at;
		ls.expires = l->v[i].expires;
		ls.lease_until = l->v[i].lease_until;
		if (eb_grant_lease_claimable(&ls, now)) {
			if (n != i)
				l->v[n] = l->v[i];
			n++;
			continue;
		}
		log_warnx("store: grant %.8s is not due; not claimed",
		          l->v[i].id);
		eb_store_grant_finish(&l->v[i]);
	}
	l->n = n;
}

static int
sq_grant_list_due(void *be, const char *tenant, int64_t now, int64_t lease,
                  size_t limit, struct eb_store_grant_list *out)
{
	struct conn *c;
	sqlite3_stmt *st;
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((c = conn_get(be)) == NULL || (lease > 0 && tx_begin(c) != 0))
		return EB_STORE_ERROR;
	if ((st = stmt(c, ST_GRANT_DUE)) == NULL) {
		rc = EB_STORE_ERROR;
		goto out;
	}
	if (b_text(st, 1, tenant) | sqlite3_bind_int64(st, 2, now) |
	    sqlite3_bind_int64(
	        st, 3, limit > 0 && limit < INT64_MAX ? (int64_t)limit : -1)) {
		rc = fail(c, sqlite3_errcode(c->db), __func__);
		goto out;
	}
	rc = fetch_all(c, st, &RT_GRANT, (void **)&out->v, &out->n, __func__);
	if (rc == EB_STORE_OK)
		due_only(out, now);
	for (i = 0; rc == EB_STORE_OK && lease > 0 && i < out->n; i++) {
		if ((st = stmt(c, ST_GRANT_LEASE)) == NULL) {
			rc = EB_STORE_ERROR;
			break;
		}
		if (b_text(st, 1, out->v[i].id) |
		    sqlite3_bind_int64(st, 2, now + lease)) {
			rc = fail(c, sqlite3_errcode(c->db), __func__);
			break;
		}
		if ((rc = run(c, st, __func__)) == 0)
			out->v[i].upstream_next_at = now + lease;
	}
out:
	if (lease > 0)
		rc = tx_end(c, rc, rc == EB_STORE_OK);
	if (rc != EB_STORE_OK)
		eb_store_grant_list_finish(out);
	return rc;
}

/* Step a bound statement whose one row is one integer into *out. */
static int
fetch_i64(struct conn *c, sqlite3_stmt *st, int64_t *out, const char *fn)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = EB_STORE_OK;
	} else if (rc == SQLITE_DONE)
		rc = EB_STORE_NOT_FOUND;
	else
		rc = fail(c, rc, fn);
	sqlite3_reset(st);
	return rc;
}

/* The tenant's live leases at now, every owner's. */
static int
live_leases(struct conn *c, const char *tenant, int64_t now, size_t *out)
{
	sqlite3_stmt *st;
	int64_t n = 0;
	int rc;

	*out = 0;
	if ((st = stmt(c, ST_GRANT_LIVE)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, tenant) | sqlite3_bind_int64(st, 2, now))
		return fail(c, sqlite3_errcode(c->db), __func__);
	if ((rc = fetch_i64(c, st, &n, __func__)) == EB_STORE_OK && n > 0)
		*out = (size_t)n;
	return rc;
}

/* Give g (a claimable row) to owner until until, with a fresh fence. */
static int
claim_one(struct conn *c, struct eb_store_grant *g, const char *owner,
          int64_t until)
{
	sqlite3_stmt *st;
	char *token, *own;
	int rc;

	if ((token = eb_rand_token(16)) == NULL ||
	    (own = eb_strdup(owner)) == NULL) {
		eb_free(token);
		log_warnx("store: no lease token (out of memory or entropy)");
		return EB_STORE_ERROR;
	}
	if ((st = stmt(c, ST_GRANT_CLAIM)) == NULL) {
		rc = EB_STORE_ERROR;
		goto out;
	}
	if (b_text(st, 1, g->id) | sqlite3_bind_int64(st, 2, until) |
	    b_text(st, 3, owner) | b_text(st, 4, token)) {
		rc = fail(c, sqlite3_errcode(c->db), __func__);
		goto out;
	}
	if ((rc = run(c, st, __func__)) != EB_STORE_OK)
		goto out;
	eb_free(g->lease_owner);
	eb_free(g->lease_token);
	g->lease_owner = own;
	g->lease_token = token;
	g->lease_until = until;
	g->upstream_next_at = until;
	return EB_STORE_OK;
out:
	eb_free(own);
	eb_free(token);
	return rc;
}

static int
sq_grant_claim_due(void *be, const char *tenant, int64_t now, int64_t lease,
                   size_t limit, size_t cap, const char *owner,
                   struct eb_store_grant_list *out)
{
	struct conn *c;
	sqlite3_stmt *st;
	size_t live = 0, n, i;
	int rc = EB_STORE_OK;

	memset(out, 0, sizeof(*out));
	if ((c = conn_get(be)) == NULL || tx_begin(c) != 0)
		return EB_STORE_ERROR;
	/* one writer at a time (BEGIN IMMEDIATE): the count holds until
	 * the claims below are committed */
	if (cap > 0 && (rc = live_leases(c, tenant, now, &live)) != 0)
		goto out;
	if ((n = eb_grant_lease_claim_max(limit, cap, live)) == 0)
		goto out;
	if ((st = stmt(c, ST_GRANT_CLAIMABLE)) == NULL) {
		rc = EB_STORE_ERROR;
		goto out;
	}
	if (b_text(st, 1, tenant) | sqlite3_bind_int64(st, 2, now) |
	    sqlite3_bind_int64(st, 3,
	                       n < INT64_MAX ? (int64_t)n : (int64_t)-1)) {
		rc = fail(c, sqlite3_errcode(c->db), __func__);
		goto out;
	}
	rc = fetch_all(c, st, &RT_GRANT, (void **)&out->v, &out->n, __func__);
	if (rc == EB_STORE_OK)
		due_only(out, now);
	for (i = 0; rc == EB_STORE_OK && i < out->n; i++)
		rc = claim_one(c, &out->v[i], owner, now + lease);
out:
	rc = tx_end(c, rc, rc == EB_STORE_OK);
	if (rc != EB_STORE_OK)
		eb_store_grant_list_finish(out);
	return rc;
}

static int
sq_grant_release(void *be, const char *id, const char *lease_token, int64_t now)
{
	struct conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = conn_get(be)) == NULL || tx_begin(c) != 0)
		return EB_STORE_ERROR;
	rc = lease_held(c, id, lease_token);
	if (rc == EB_STORE_LOST || rc == EB_STORE_NOT_FOUND) {
		rc = EB_STORE_OK; /* no longer ours: nothing to hand back */
		goto out;
	}
	if (rc != EB_STORE_OK)
		goto out;
	if ((st = stmt(c, ST_GRANT_RELEASE)) == NULL) {
		rc = EB_STORE_ERROR;
		goto out;
	}
	if (b_text(st, 1, id) | sqlite3_bind_int64(st, 2, now)) {
		rc = fail(c, sqlite3_errcode(c->db), __func__);
		goto out;
	}
	rc = run(c, st, __func__);
out:
	return tx_end(c, rc, rc == EB_STORE_OK);
}

static int
sq_grant_count(void *be, const char *tenant, int status, int failing_only,
               int64_t *out)
{
	struct conn *c;
	sqlite3_stmt *st;

	*out = 0;
	if ((c = conn_get(be)) == NULL ||
	    (st = stmt(c, ST_GRANT_COUNT)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, tenant) |
	    b_text(st, 2,
	           status >= 0 ? eb_store_grant_status_name(status) : NULL) |
	    sqlite3_bind_int(st, 3, failing_only != 0))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return fetch_i64(c, st, out, __func__);
}

/* ---- named leases ----------------------------------------------------- */

static int
sq_lock_try(void *be, const char *name, const char *owner, int64_t ttl,
            int64_t now)
{
	struct conn *c;
	sqlite3_stmt *st;
	int rc;

	if (name == NULL || owner == NULL || ttl <= 0) {
		log_warnx("store: lock_try needs a name, an owner and a ttl");
		return EB_STORE_ERROR;
	}
	if ((c = conn_get(be)) == NULL || (st = stmt(c, ST_LOCK_TRY)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, name) | b_text(st, 2, owner) |
	    sqlite3_bind_int64(st, 3, now) | sqlite3_bind_int64(st, 4, ttl))
		return fail(c, sqlite3_errcode(c->db), __func__);
	/* no row written: another owner's lease is still live */
	if ((rc = run(c, st, __func__)) == 0 && sqlite3_changes(c->db) == 0)
		rc = EB_STORE_CONFLICT;
	return rc;
}

static int
sq_lock_release(void *be, const char *name, const char *owner)
{
	struct conn *c;
	sqlite3_stmt *st;

	if ((c = conn_get(be)) == NULL ||
	    (st = stmt(c, ST_LOCK_RELEASE)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, name) | b_text(st, 2, owner))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return run(c, st, __func__);
}

/* ---- authorization codes ---------------------------------------------- */

static int
sq_code_put(void *be, const struct eb_store_code *cd)
{
	struct conn *c;
	sqlite3_stmt *st;

	if ((c = conn_get(be)) == NULL || (st = stmt(c, ST_CODE_INS)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, cd->hash) | b_text(st, 2, cd->tenant) |
	    b_text(st, 3, cd->grant_id) | b_text(st, 4, cd->client_id) |
	    b_text(st, 5, cd->redirect_uri) | b_text(st, 6, cd->scope) |
	    sqlite3_bind_int64(st, 7, cd->created) |
	    sqlite3_bind_int64(st, 8, cd->expires) |
	    b_text(st, 9, cd->code_challenge))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return run(c, st, __func__);
}

static int
code_mark_used(struct conn *c, const char *hash, int64_t now)
{
	sqlite3_stmt *st;

	if ((st = stmt(c, ST_CODE_USE)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, hash) | sqlite3_bind_int64(st, 2, now))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return run(c, st, __func__);
}

static int
sq_code_consume(void *be, const char *hash, const char *client_id,
                const char *redirect_uri, int64_t now,
                struct eb_store_code *out)
{
	struct eb_grant_code_state cs;
	struct eb_store_code cd;
	struct gstate gs;
	struct conn *c;
	sqlite3_stmt *st;
	int rc, answer;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (hash == NULL)
		return EB_STORE_NOT_FOUND;
	if ((c = conn_get(be)) == NULL || tx_begin(c) != 0)
		return EB_STORE_ERROR;
	if ((st = stmt(c, ST_CODE_GET)) == NULL) {
		rc = EB_STORE_ERROR;
		goto out;
	}
	if (b_text(st, 1, hash)) {
		rc = fail(c, sqlite3_errcode(c->db), __func__);
		goto out;
	}
	if ((rc = fetch_one(c, st, &RT_CODE, &cd, __func__)) != 0)
		goto out;
	memset(&cs, 0, sizeof(cs));
	cs.found = 1;
	cs.used_at = cd.used_at;
	cs.expires = cd.expires;
	cs.client_id = cd.client_id;
	cs.redirect_uri = cd.redirect_uri;
	if (eb_grant_code_decide(&cs, client_id, redirect_uri, now, &answer) ==
	    EB_GRANT_CODE_REVOKE) {
		/* RFC 6749 4.1.2: revoke what the code was redeemed for. */
		if ((rc = gstate_read(c, cd.grant_id, &gs)) == EB_STORE_OK &&
		    eb_grant_end_decide(gs.status, EB_STORE_GRANT_REVOKED) ==
		        EB_GRANT_END)
			rc = grant_end(
			    c, cd.grant_id, gs.tenant, EB_STORE_GRANT_REVOKED,
			    "authorization code replayed", NULL, now);
		if (rc == EB_STORE_NOT_FOUND)
			rc = EB_STORE_OK;
		gstate_finish(&gs);
	} else {
		/* redeemed or refused, a code is used once */
		cd.used_at = now;
		rc = code_mark_used(c, hash, now);
	}
	if (rc == EB_STORE_OK)
		rc = answer;
	if (rc != EB_STORE_OK && rc != EB_STORE_ERROR)
		log_info("store: authorization code refused: %s",
		         eb_store_strerror(rc));
	rc = tx_end(c, rc, rc != EB_STORE_ERROR);
	if (rc == EB_STORE_OK && out != NULL)
		*out = cd;
	else
		eb_store_code_finish(&cd);
	return rc;
out:
	return tx_end(c, rc, 0);
}

/* ---- tokens ----------------------------------------------------------- */

static int
token_insert(struct conn *c, const struct eb_store_token *t, const char *parent)
{
	const char *kind = eb_store_token_kind_name(t->kind);
	sqlite3_stmt *st;

	if (kind == NULL) {
		log_warnx("store: token with a bad kind");
		return EB_STORE_ERROR;
	}
	if ((st = stmt(c, ST_TOKEN_INS)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, t->hash) | b_text(st, 2, kind) |
	    b_text(st, 3, t->tenant) | b_text(st, 4, t->grant_id) |
	    b_text(st, 5, t->client_id) | b_text(st, 6, t->jti) |
	    sqlite3_bind_int64(st, 7, t->created) |
	    sqlite3_bind_int64(st, 8, t->expires) | b_text(st, 9, parent))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return run(c, st, __func__);
}

static int
token_select(struct conn *c, const char *hash, struct eb_store_token *out)
{
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if (hash == NULL)
		return EB_STORE_NOT_FOUND;
	if ((st = stmt(c, ST_TOKEN_GET)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, hash))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return fetch_one(c, st, &RT_TOKEN, out, __func__);
}

/*
 * The token by hash and, when it still exists, its grant, in one statement
 * (one snapshot): OK with grant->id NULL when the grant row is gone.
 */
static int
sq_token_grant_get(void *be, const char *hash, struct eb_store_token *tok,
                   struct eb_store_grant *grant)
{
	struct conn *c;
	sqlite3_stmt *st;
	struct rd r;
	int rc;

	memset(tok, 0, sizeof(*tok));
	memset(grant, 0, sizeof(*grant));
	if (hash == NULL)
		return EB_STORE_NOT_FOUND;
	if ((c = conn_get(be)) == NULL ||
	    (st = stmt(c, ST_TOKEN_GRANT_GET)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, hash))
		return fail(c, sqlite3_errcode(c->db), __func__);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r.st = st;
		r.col = 0;
		r.oom = 0;
		read_token_rd(&r, tok);
		if (sqlite3_column_type(st, TOKEN_NCOLS) != SQLITE_NULL)
			read_grant_rd(&r, grant);
		if (r.oom) {
			fin_token(tok);
			fin_grant(grant);
			log_warnx("store: out of memory");
			rc = EB_STORE_ERROR;
		} else
			rc = EB_STORE_OK;
	} else if (rc == SQLITE_DONE)
		rc = EB_STORE_NOT_FOUND;
	else
		rc = fail(c, rc, __func__);
	sqlite3_reset(st);
	return rc;
}

static int
token_set_rotated(struct conn *c, const char *hash, int64_t at,
                  const char *successor)
{
	sqlite3_stmt *st;

	if ((st = stmt(c, ST_TOKEN_ROTATED)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, hash) | sqlite3_bind_int64(st, 2, at) |
	    b_text(st, 3, successor))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return run(c, st, __func__);
}

static int
token_set_revoked(struct conn *c, const char *hash)
{
	sqlite3_stmt *st;

	if ((st = stmt(c, ST_TOKEN_REVOKE)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, hash))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return run(c, st, __func__);
}

static int
sq_token_put(void *be, const struct eb_store_token *t)
{
	struct conn *c;

	if ((c = conn_get(be)) == NULL)
		return EB_STORE_ERROR;
	return token_insert(c, t, t->parent_hash);
}

static int
sq_token_get(void *be, const char *hash, struct eb_store_token *out)
{
	struct conn *c;

	memset(out, 0, sizeof(*out));
	if ((c = conn_get(be)) == NULL)
		return EB_STORE_ERROR;
	return token_select(c, hash, out);
}

/*
 * Keep (blob non-NULL) or wipe (NULL) the sealed successor on the rotated
 * row hash, inside the caller's transaction.
 */
static int
successor_keep(struct conn *c, const char *hash, const uint8_t *blob,
               size_t len, int64_t until)
{
	sqlite3_stmt *st;

	if ((st = stmt(c, ST_TOKEN_SUCC_KEEP)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, hash) | b_blob(st, 2, blob, len) |
	    sqlite3_bind_int64(st, 3, blob != NULL ? until : 0))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return run(c, st, __func__);
}

/*
 * The sealed successor kept on the rotated row hash, when it is still
 * within its window at now (until its successor_until second included, as
 * the sweep does): *blob (NULL when none) for the caller to wipe
 * and free.
 */
static int
successor_read(struct conn *c, const char *hash, int64_t now, uint8_t **blob,
               size_t *len)
{
	sqlite3_stmt *st;
	struct rd r;
	int rc;

	*blob = NULL;
	*len = 0;
	if ((st = stmt(c, ST_TOKEN_SUCC_GET)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, hash))
		return fail(c, sqlite3_errcode(c->db), __func__);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = (struct rd){st, 0, 0};
		if (sqlite3_column_int64(st, 1) >= now)
			*blob = rd_blob(&r, len);
		rc = EB_STORE_OK;
		if (r.oom) {
			log_warnx("store: out of memory");
			rc = EB_STORE_ERROR;
		}
	} else if (rc == SQLITE_DONE)
		rc = EB_STORE_OK;
	else
		rc = fail(c, rc, __func__);
	sqlite3_reset(st);
	return rc;
}

/*
 * Rotation (store.h), inside one BEGIN IMMEDIATE transaction, so that of
 * concurrent presenters of one token exactly one sees it active. The rows
 * are read here; what to do is the shared rule's (grant/refresh.h).
 */
static int
token_rotate_tx(void *be, const char *old_hash,
                const struct eb_store_token *next, const uint8_t *next_sealed,
                size_t next_sealed_len, const struct eb_store_token *access,
                int64_t now, int64_t grace, struct eb_store_token *old_out)
{
	struct eb_grant_refresh_token pt;
	struct eb_grant_refresh_successor ps;
	struct eb_store_token old, succ;
	struct gstate gs;
	struct conn *c;
	uint8_t *blob = NULL;
	size_t bloblen = 0;
	int rc, commit = 0, why, d;

	if (old_out != NULL)
		memset(old_out, 0, sizeof(*old_out));
	if (next == NULL || next->kind != EB_STORE_TOKEN_REFRESH ||
	    next->hash == NULL) {
		log_warnx("store: rotation needs a new refresh token");
		return EB_STORE_ERROR;
	}
	if ((c = conn_get(be)) == NULL || tx_begin(c) != 0)
		return EB_STORE_ERROR;
	memset(&gs, 0, sizeof(gs));
	memset(&succ, 0, sizeof(succ));
	if ((rc = token_select(c, old_hash, &old)) != 0)
		goto out;
	if (old.kind != EB_STORE_TOKEN_REFRESH) {
		rc = EB_STORE_NOT_FOUND;
		goto out;
	}
	if (next->grant_id == NULL || strcmp(next->grant_id, old.grant_id)) {
		log_warnx("store: rotation to another grant refused");
		rc = EB_STORE_CONFLICT;
		goto out;
	}
	rc = gstate_read(c, old.grant_id, &gs);
	if (rc != EB_STORE_OK && rc != EB_STORE_NOT_FOUND)
		goto out;
	memset(&pt, 0, sizeof(pt));
	memset(&ps, 0, sizeof(ps));
	pt.found = 1;
	pt.kind = old.kind;
	pt.status = old.status;
	pt.expires = old.expires;
	pt.rotated_at = old.rotated_at;
	pt.grant_active =
	    rc == EB_STORE_OK && gs.status == EB_STORE_GRANT_ACTIVE;
	if (old.status == EB_STORE_TOKEN_ROTATED) {
		if ((rc = successor_read(c, old.hash, now, &blob, &bloblen)) !=
		    EB_STORE_OK)
			goto out;
		pt.has_sealed_successor = blob != NULL;
		rc = token_select(c, old.replaced_by, &succ);
		if (rc != EB_STORE_OK && rc != EB_STORE_NOT_FOUND)
			goto out;
		ps.found = rc == EB_STORE_OK;
		ps.status = succ.status;
		ps.expires = succ.expires;
	}
	d = eb_grant_refresh_decide(&pt, &ps, now, grace, &why);
	switch (d) {
	case EB_GRANT_REFRESH_ROTATE:
		commit = 1;
		if ((rc = token_set_rotated(c, old.hash, now, next->hash)) ==
		        0 &&
		    (rc = successor_keep(c, old.hash, next_sealed,
		                         next_sealed_len, now + grace)) == 0 &&
		    (rc = token_insert(c, next, old.hash)) == 0 &&
		    old.parent_hash != NULL)
			/* the token before old: its successor (old) is now
			 * used, so its retry window is over */
			rc = successor_keep(c, old.parent_hash, NULL, 0, 0);
		break;
	case EB_GRANT_REFRESH_RETURN_SUCCESSOR:
		/* a lost response: the same successor, no new branch */
		commit = 1;
		rc = EB_STORE_OK;
		break;
	case EB_GRANT_REFRESH_REVOKE_GRANT:
		log_warnx("store: refresh token reuse on grant %s: "
		          "revoking it",
		          old.grant_id);
		commit = 1;
		if ((rc = grant_end(c, old.grant_id, gs.tenant,
		                    EB_STORE_GRANT_REVOKED,
		                    "refresh token reused", NULL, now)) == 0)
			rc = EB_STORE_REUSE;
		break;
	default:
		rc = why != EB_STORE_OK ? why : EB_STORE_REVOKED;
	}
	if (rc == EB_STORE_OK && access != NULL)
		rc = token_insert(c, access, NULL);
	if (rc == EB_STORE_OK && d == EB_GRANT_REFRESH_RETURN_SUCCESSOR)
		rc = EB_STORE_RETRY;
out:
	commit = commit && (rc == EB_STORE_OK || rc == EB_STORE_RETRY ||
	                    rc == EB_STORE_REUSE);
	rc = tx_end(c, rc, commit);
	gstate_finish(&gs);
	eb_store_token_finish(&succ);
	if ((rc == EB_STORE_OK || rc == EB_STORE_RETRY ||
	     rc == EB_STORE_REUSE) &&
	    old_out != NULL) {
		*old_out = old;
		if (rc == EB_STORE_RETRY) {
			old_out->successor_sealed = blob;
			old_out->successor_sealed_len = bloblen;
			blob = NULL;
		}
	} else
		eb_store_token_finish(&old);
	eb_free_secret(blob, bloblen);
	return rc;
}

/*
 * The rotations of this process queue on a mutex rather than in SQLite's
 * busy handler, which sleeps 1 to 100 ms a try while another connection
 * holds the write lock: in a refresh storm that sleep, not the work,
 * set the pace. Other processes (the CLI) still meet the busy handler.
 */
static int
sq_token_rotate(void *be, const char *old_hash,
                const struct eb_store_token *next, const uint8_t *next_sealed,
                size_t next_sealed_len, const struct eb_store_token *access,
                int64_t now, int64_t grace, struct eb_store_token *old_out)
{
	struct sq *sq = be;
	int rc;

	pthread_mutex_lock(&sq->rotate_lock);
	rc = token_rotate_tx(be, old_hash, next, next_sealed, next_sealed_len,
	                     access, now, grace, old_out);
	pthread_mutex_unlock(&sq->rotate_lock);
	return rc;
}

static int
sq_token_revoke(void *be, const char *hash, int64_t now)
{
	struct conn *c;
	int rc;

	if ((c = conn_get(be)) == NULL)
		return EB_STORE_ERROR;
	if ((rc = token_set_revoked(c, hash)) == 0 &&
	    sqlite3_changes(c->db) == 0)
		rc = EB_STORE_NOT_FOUND;
	return rc;
}

/* ---- signing keys ----------------------------------------------------- */

static int
key_insert(struct conn *c, const struct eb_store_key *k)
{
	sqlite3_stmt *st;

	if ((st = stmt(c, ST_KEY_INS)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, k->kid) | b_text(st, 2, k->tenant ? k->tenant : "") |
	    b_text(st, 3, k->alg) | sqlite3_bind_int64(st, 4, k->created) |
	    sqlite3_bind_int64(st, 5, k->retired_at) |
	    sqlite3_bind_int64(st, 6, k->not_after) |
	    b_text(st, 7, k->public_jwk) |
	    b_blob(st, 8, k->private_key, k->private_key_len) |
	    sqlite3_bind_int64(st, 9, k->activates_at))
		return fail(c, sqlite3_errcode(c->db), __func__);
	/* a second current key of the tenant is CONFLICT (migration 7) */
	return run(c, st, __func__);
}

static int
sq_key_put(void *be, const struct eb_store_key *k)
{
	struct conn *c;

	if ((c = conn_get(be)) == NULL)
		return EB_STORE_ERROR;
	return key_insert(c, k);
}

/*
 * Inside the rotation's transaction: CONFLICT when the tenant's current
 * key is not active yet at k->created (another rotation is pending: this
 * one would retire a key before it ever signed).
 */
static int
rotation_free(struct conn *c, const struct eb_store_key *k)
{
	sqlite3_stmt *st;
	int rc = EB_STORE_OK, step;

	if ((st = stmt(c, ST_KEY_CURRENT)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, k->tenant ? k->tenant : ""))
		return fail(c, sqlite3_errcode(c->db), __func__);
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		if (sqlite3_column_int64(st, 1) > k->created)
			rc = EB_STORE_CONFLICT;
	if (step != SQLITE_DONE)
		rc = fail(c, step, __func__);
	sqlite3_reset(st);
	return rc;
}

static int
sq_key_rotate(void *be, const struct eb_store_key *k, int64_t retire_at,
              int64_t not_after)
{
	struct conn *c;
	sqlite3_stmt *st;
	int rc;

	if (k->retired_at != 0) {
		log_warnx("store: key_rotate of a retired key");
		return EB_STORE_ERROR;
	}
	if ((c = conn_get(be)) == NULL || tx_begin(c) != 0)
		return EB_STORE_ERROR;
	if ((rc = rotation_free(c, k)) != EB_STORE_OK)
		goto out;
	if ((st = stmt(c, ST_KEY_RETIRE_CURRENT)) == NULL) {
		rc = EB_STORE_ERROR;
		goto out;
	}
	if (b_text(st, 1, k->tenant ? k->tenant : "") |
	    sqlite3_bind_int64(st, 2, retire_at) |
	    sqlite3_bind_int64(st, 3, not_after)) {
		rc = fail(c, sqlite3_errcode(c->db), __func__);
		goto out;
	}
	if ((rc = run(c, st, __func__)) == EB_STORE_OK)
		rc = key_insert(c, k);
out:
	return tx_end(c, rc, rc == EB_STORE_OK);
}

static int
sq_key_list(void *be, const char *tenant, struct eb_store_key_list *out)
{
	struct conn *c;
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if ((c = conn_get(be)) == NULL || (st = stmt(c, ST_KEY_LIST)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, tenant))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return fetch_all(c, st, &RT_KEY, (void **)&out->v, &out->n, __func__);
}

static int
sq_key_retire(void *be, const char *kid, int64_t retired_at, int64_t not_after)
{
	struct conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = conn_get(be)) == NULL || (st = stmt(c, ST_KEY_RETIRE)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, kid) | sqlite3_bind_int64(st, 2, retired_at) |
	    sqlite3_bind_int64(st, 3, not_after))
		return fail(c, sqlite3_errcode(c->db), __func__);
	if ((rc = run(c, st, __func__)) == 0 && sqlite3_changes(c->db) == 0)
		rc = EB_STORE_NOT_FOUND;
	return rc;
}

/* ---- re-sealing (enrollbridge reseal) ---------------------------------- */

static int
sq_grant_list_sealed(void *be, const char *after, size_t limit,
                     struct eb_store_grant_list *out)
{
	struct conn *c;
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if ((c = conn_get(be)) == NULL ||
	    (st = stmt(c, ST_GRANT_SEALED)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, after != NULL ? after : "") |
	    sqlite3_bind_int64(
	        st, 2, limit > 0 && limit < INT64_MAX ? (int64_t)limit : -1))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return fetch_all(c, st, &RT_GRANT, (void **)&out->v, &out->n, __func__);
}

/*
 * Compare and swap with statement cas (?1 the row's key, ?2 the old value,
 * ?3 the new one); when it changed nothing, exists (?1) tells CONFLICT
 * from NOT_FOUND.
 */
static int
cas_blob(void *be, enum stmt_id cas, enum stmt_id exists, const char *key,
         const uint8_t *old, size_t old_len, const uint8_t *next,
         size_t next_len, const char *fn)
{
	struct conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = conn_get(be)) == NULL || (st = stmt(c, cas)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, key) | b_blob(st, 2, old, old_len) |
	    b_blob(st, 3, next, next_len))
		return fail(c, sqlite3_errcode(c->db), fn);
	if ((rc = run(c, st, fn)) != EB_STORE_OK || sqlite3_changes(c->db) > 0)
		return rc;
	if ((st = stmt(c, exists)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, key))
		return fail(c, sqlite3_errcode(c->db), fn);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = EB_STORE_CONFLICT;
	else if (rc == SQLITE_DONE)
		rc = EB_STORE_NOT_FOUND;
	else
		rc = fail(c, rc, fn);
	sqlite3_reset(st);
	return rc;
}

static int
sq_grant_reseal(void *be, const char *id, const uint8_t *old, size_t old_len,
                const uint8_t *next, size_t next_len)
{
	return cas_blob(be, ST_GRANT_RESEAL, ST_GRANT_EXISTS, id, old, old_len,
	                next, next_len, __func__);
}

static int
sq_key_reseal(void *be, const char *kid, const uint8_t *old, size_t old_len,
              const uint8_t *next, size_t next_len)
{
	return cas_blob(be, ST_KEY_RESEAL, ST_KEY_EXISTS, kid, old, old_len,
	                next, next_len, __func__);
}

/* ---- mapping overrides ------------------------------------------------ */

static int
sq_mapping_put(void *be, const struct eb_store_mapping *m)
{
	struct conn *c;
	sqlite3_stmt *st;

	if ((c = conn_get(be)) == NULL || (st = stmt(c, ST_MAP_PUT)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, m->tenant) | b_text(st, 2, m->subject) |
	    b_text(st, 3, m->managed_apple_id) | b_text(st, 4, m->note) |
	    sqlite3_bind_int64(st, 5, m->updated ? m->updated : m->created))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return run(c, st, __func__);
}

static int
sq_mapping_get(void *be, const char *tenant, const char *subject,
               struct eb_store_mapping *out)
{
	struct conn *c;
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if ((c = conn_get(be)) == NULL || (st = stmt(c, ST_MAP_GET)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, tenant) | b_text(st, 2, subject))
		return fail(c, sqlite3_errcode(c->db), __func__);
	return fetch_one(c, st, &RT_MAPPING, out, __func__);
}

static int
sq_mapping_delete(void *be, const char *tenant, const char *subject)
{
	struct conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = conn_get(be)) == NULL || (st = stmt(c, ST_MAP_DEL)) == NULL)
		return EB_STORE_ERROR;
	if (b_text(st, 1, tenant) | b_text(st, 2, subject))
		return fail(c, sqlite3_errcode(c->db), __func__);
	if ((rc = run(c, st, __func__)) == 0 && sqlite3_changes(c->db) == 0)
		rc = EB_STORE_NOT_FOUND;
	return rc;
}

/* ---- sweep ------------------------------------------------------------ */

static int
sq_sweep(void *be, int64_t now, size_t *removed)
{
	static const struct {
		enum stmt_id id;
		int64_t retain;
	} steps[] = {
	    {ST_FLOW_SWEEP, 0},
	    {ST_CODE_SWEEP, RETAIN_CODES},
	    {ST_TOKEN_SWEEP, RETAIN_TOKENS},
	    {ST_TOKEN_SUCC_SWEEP, 0}, /* wipes, also counted */
	};
	struct conn *c;
	sqlite3_stmt *st;
	size_t i, n = 0;
	int rc = EB_STORE_OK;

	if (removed != NULL)
		*removed = 0;
	if ((c = conn_get(be)) == NULL || tx_begin(c) != 0)
		return EB_STORE_ERROR;
	for (i = 0; rc == EB_STORE_OK && i < sizeof(steps) / sizeof(steps[0]);
	     i++) {
		if ((st = stmt(c, steps[i].id)) == NULL) {
			rc = EB_STORE_ERROR;
			break;
		}
		if (sqlite3_bind_int64(st, 1, now - steps[i].retain)) {
			rc = fail(c, sqlite3_errcode(c->db), __func__);
			break;
		}
		if ((rc = run(c, st, __func__)) == 0)
			n += (size_t)sqlite3_changes(c->db);
	}
	rc = tx_end(c, rc, rc == EB_STORE_OK);
	if (rc == EB_STORE_OK && removed != NULL)
		*removed = n;
	return rc;
}

const struct eb_store_ops eb_store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .ping = sq_ping,
    .schema_version = sq_schema_version,
    .open_flags = sq_open_flags,
    .audit_add = sq_audit_add,
    .audit_list = sq_audit_list,
    .flow_put = sq_flow_put,
    .flow_get = sq_flow_get,
    .flow_take = sq_flow_take,
    .code_put = sq_code_put,
    .code_consume = sq_code_consume,
    .grant_create = sq_grant_create,
    .grant_get = sq_grant_get,
    .grant_list = sq_grant_list,
    .grant_set_status = sq_grant_set_status,
    .grant_supersede = sq_grant_supersede,
    .grant_bind = sq_grant_bind,
    .grant_set_upstream = sq_grant_set_upstream,
    .grant_list_due = sq_grant_list_due,
    .grant_claim_due = sq_grant_claim_due,
    .grant_release = sq_grant_release,
    .grant_count = sq_grant_count,
    .lock_try = sq_lock_try,
    .lock_release = sq_lock_release,
    .key_rotate = sq_key_rotate,
    .token_put = sq_token_put,
    .token_get = sq_token_get,
    .token_grant_get = sq_token_grant_get,
    .token_rotate = sq_token_rotate,
    .token_revoke = sq_token_revoke,
    .key_put = sq_key_put,
    .key_list = sq_key_list,
    .key_retire = sq_key_retire,
    .mapping_put = sq_mapping_put,
    .mapping_get = sq_mapping_get,
    .mapping_delete = sq_mapping_delete,
    .sweep = sq_sweep,
    .grant_list_sealed = sq_grant_list_sealed,
    .grant_reseal = sq_grant_reseal,
    .key_reseal = sq_key_reseal,
};
