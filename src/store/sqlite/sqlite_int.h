/*
 * What the SQLite backend's files share, and the only header that
 * includes <sqlite3.h>. The backend is split by concern: sqlite_conn.c
 * (opening the file, one connection per thread, the statement cache,
 * transactions, the ops table), sqlite_sql.c (every statement's text),
 * sqlite_rows.c (binding records and reading rows through the column
 * lists of store/columns.h), sqlite_schema.c (migrations, compat,
 * version), sqlite_grants.c (grants, claims, leases, binding,
 * supersede), sqlite_tokens.c (codes, tokens, rotation) and
 * sqlite_misc.c (audit, flows, locks, keys, re-sealing, mappings,
 * sweep). Nothing here is seen outside src/store/sqlite/.
 */
#ifndef EB_STORE_SQLITE_INT_H
#define EB_STORE_SQLITE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store/columns.h"
#include "store/store.h"

#define BUSY_TIMEOUT_MS   5000
#define RETAIN_CODES      86400 /* keep used codes a day for replay detection */
#define RETAIN_TOKENS     86400
#define AUDIT_LIST_MAX    1000
#define AUDIT_DETAIL_MAX  4096
#define AUDIT_PRUNE_BATCH 1000

/* The statements, one per id, prepared once per connection (sqlite_sql.c). */
enum eb_sq_stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_PING,
	ST_VERSION,
	ST_AUDIT_ADD,
	ST_AUDIT_LIST,
	ST_AUDIT_QUERY,
	ST_AUDIT_PRUNE,
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
	ST_GRANT_RETIRE,
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
	ST_MAP_LIST,
	ST_GRANT_SET_LOGIN,
	ST_GRANT_OF_PERSON,
	ST_SCIM_INS,
	ST_SCIM_GET,
	ST_SCIM_REPLACE,
	ST_SCIM_DEL,
	ST_SCIM_LIST,
	ST_SCIM_COUNT,
	ST_SCIM_BY_NAME,
	ST_SCIM_BY_EXT,
	ST__COUNT
};

extern const char *const eb_sq_sql[ST__COUNT];

struct eb_sq;

/* One thread's connection to one store. */
struct eb_sq_conn {
	struct eb_sq *sq;
	sqlite3 *db;
	sqlite3_stmt *st[ST__COUNT];
	struct eb_sq_conn *prev, *next;
};

/* The backend handle. */
struct eb_sq {
	char *path;
	pthread_key_t key;
	int key_ok;
	pthread_mutex_t lock; /* guards conns */
	struct eb_sq_conn *conns;
};

/* Column reader: consecutive columns, remembering an allocation failure. */
struct eb_sq_rd {
	sqlite3_stmt *st;
	int col;
	int oom;
};

/*
 * How to read and release one kind of row: a record of store.h through its
 * column list, or another row through its own reader.
 */
struct eb_sq_rowtype {
	size_t size;
	const struct eb_columns *cols;       /* a record's, or NULL */
	int (*read)(sqlite3_stmt *, void *); /* when cols is NULL: 0 or -1 */
	void (*finish)(void *);
};

/* The little of a grant that the write operations decide on. */
struct eb_sq_gstate {
	int status;
	char *tenant;
	char *bkind, *bvalue;
};

/* ---- sqlite_conn.c ---- */

/* This thread's connection to store be, opened on first use; NULL logged. */
struct eb_sq_conn *eb_sq_conn(void *be);
/* The cached statement id, reset and unbound; NULL (logged) on failure. */
sqlite3_stmt *eb_sq_stmt(struct eb_sq_conn *c, enum eb_sq_stmt_id id);
/*
 * A failed SQLite result rc as ours: CONFLICT for a duplicate key, NOT_FOUND
 * for a missing reference, else ERROR logged as fn's.
 */
int eb_sq_fail(struct eb_sq_conn *c, int rc, const char *fn);
/* Step st, a statement that returns no row, and reset it: OK or eb_sq_fail. */
int eb_sq_run(struct eb_sq_conn *c, sqlite3_stmt *st, const char *fn);
/*
 * BEGIN IMMEDIATE; a rollback (a no-op when a failed statement already
 * ended the transaction); the end of one: commit when commit is set (rc, or
 * ERROR when the commit fails), else roll back and return rc.
 */
int eb_sq_tx_begin(struct eb_sq_conn *c);
void eb_sq_tx_rollback(struct eb_sq_conn *c);
int eb_sq_tx_end(struct eb_sq_conn *c, int rc, int commit);
/* The operations of struct eb_store_ops (store.h), by file. */
int eb_sq_open_flags(const char *target, int flags,
                     const struct eb_store_open_opts *opts,
                     eb_store_applied_fn *applied, void *arg, void **bep,
                     char *err, size_t errlen);
int eb_sq_open(const char *target, void **bep, char *err, size_t errlen);
void eb_sq_close(void *be);
int eb_sq_ping(void *be);

/* ---- sqlite_rows.c ---- */

/* Bind s (NULL: SQL NULL) or n bytes at p (NULL: SQL NULL) to parameter i. */
int eb_sq_bind_text(sqlite3_stmt *st, int i, const char *s);
int eb_sq_bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n);
/*
 * The next column of r as an allocated string, a blob (its size in *len)
 * or the enum value whose name (through namef) it holds, -1 for none; NULL
 * for SQL NULL. An allocation failure sets r->oom.
 */
char *eb_sq_rd_text(struct eb_sq_rd *r);
uint8_t *eb_sq_rd_blob(struct eb_sq_rd *r, size_t *len);
int eb_sq_rd_enum(struct eb_sq_rd *r, const char *(*namef)(int));
/*
 * Bind the BOUND columns of rec (a record described by cols) to the
 * parameters from 1 on, in the order of its list: OK, or ERROR (logged as
 * fn's) on a bad enum value or a failed bind.
 */
int eb_sq_bind_row(struct eb_sq_conn *c, sqlite3_stmt *st,
                   const struct eb_columns *cols, const void *rec,
                   const char *fn);
/* Read cols from r's current column on into rec, allocating its strings. */
void eb_sq_rd_cols(struct eb_sq_rd *r, const struct eb_columns *cols,
                   void *rec);
/*
 * Step a bound statement: at most one row into out (zeroed first; OK,
 * NOT_FOUND or ERROR), every row into *vp / *np, or the one integer of its
 * one row into *out. The statement is reset.
 */
int eb_sq_one(struct eb_sq_conn *c, sqlite3_stmt *st,
              const struct eb_sq_rowtype *rt, void *out, const char *fn);
int eb_sq_all(struct eb_sq_conn *c, sqlite3_stmt *st,
              const struct eb_sq_rowtype *rt, void **vp, size_t *np,
              const char *fn);
int eb_sq_i64(struct eb_sq_conn *c, sqlite3_stmt *st, int64_t *out,
              const char *fn);
/* The records of store.h, read through their column lists. */
extern const struct eb_sq_rowtype eb_sq_rt_audit;
extern const struct eb_sq_rowtype eb_sq_rt_flow;
extern const struct eb_sq_rowtype eb_sq_rt_code;
extern const struct eb_sq_rowtype eb_sq_rt_grant;
extern const struct eb_sq_rowtype eb_sq_rt_token;
extern const struct eb_sq_rowtype eb_sq_rt_key;
extern const struct eb_sq_rowtype eb_sq_rt_mapping;
extern const struct eb_sq_rowtype eb_sq_rt_scim_user;

/* ---- sqlite_schema.c ---- */

/*
 * On c, a new connection: check that the schema is one this binary works
 * with, or apply the migrations it lacks (applied told of each). 0, or -1
 * with the reason in err.
 */
int eb_sq_check_schema(struct eb_sq_conn *c, char *err, size_t errlen);
int eb_sq_migrate(struct eb_sq_conn *c, eb_store_applied_fn *applied, void *arg,
                  char *err, size_t errlen);
/* Operation. */
int eb_sq_schema_version(void *be, int64_t *version);

/* ---- sqlite_grants.c ---- */

/* Release g; read grant id's decision state into g (OK, NOT_FOUND, ERROR). */
void eb_sq_gstate_finish(struct eb_sq_gstate *g);
int eb_sq_gstate_read(struct eb_sq_conn *c, const char *id,
                      struct eb_sq_gstate *g);
/*
 * End grant id (status revoked, expired or superseded), its tokens revoked,
 * the change audited, in the caller's transaction.
 */
int eb_sq_grant_end(struct eb_sq_conn *c, const char *id, const char *tenant,
                    int status, const char *reason, const char *superseded_by,
                    int64_t now);
/* Operations. */
int eb_sq_grant_create(void *be, const struct eb_store_grant *g);
int eb_sq_grant_get(void *be, const char *id, struct eb_store_grant *out);
int eb_sq_grant_list(void *be, const struct eb_store_grant_filter *f,
                     struct eb_store_grant_list *out);
int eb_sq_grant_retire(void *be, const char *id, const char *reason,
                       int64_t now);
int eb_sq_grant_set_status(void *be, const char *id, int status,
                           const char *reason, int64_t now);
int eb_sq_grant_supersede(void *be, const char *old_id, const char *new_id,
                          int64_t now);
int eb_sq_grant_bind(void *be, const char *id, const char *kind,
                     const char *value, int64_t now);
int eb_sq_grant_set_upstream(void *be, const char *id,
                             const struct eb_store_upstream *u, int64_t now);
int eb_sq_grant_list_due(void *be, const char *tenant, int64_t now,
                         int64_t lease, size_t limit,
                         struct eb_store_grant_list *out);
int eb_sq_grant_claim_due(void *be, const char *tenant, int64_t now,
                          int64_t lease, size_t limit, size_t cap,
                          const char *owner, struct eb_store_grant_list *out);
int eb_sq_grant_release(void *be, const char *id, const char *lease_token,
                        int64_t now);
int eb_sq_grant_count(void *be, const char *tenant, int status,
                      int failing_only, int64_t *out);

/* ---- sqlite_tokens.c: operations ---- */
int eb_sq_code_put(void *be, const struct eb_store_code *cd);
int eb_sq_code_consume(void *be, const char *hash, const char *client_id,
                       const char *redirect_uri, int64_t now,
                       struct eb_store_code *out);
int eb_sq_token_grant_get(void *be, const char *hash,
                          struct eb_store_token *tok,
                          struct eb_store_grant *grant);
int eb_sq_token_put(void *be, const struct eb_store_token *t);
int eb_sq_token_get(void *be, const char *hash, struct eb_store_token *out);
int eb_sq_token_rotate(void *be, const char *old_hash,
                       const struct eb_store_token *next,
                       const uint8_t *next_sealed, size_t next_sealed_len,
                       const struct eb_store_token *access, int64_t now,
                       int64_t grace, struct eb_store_token *old_out);
int eb_sq_token_revoke(void *be, const char *hash, int64_t now);

/* ---- sqlite_misc.c ---- */

/*
 * Record a change of grant id as event "grant.<what>", with up to two string
 * fields as detail (NULL values left out), in the caller's transaction.
 */
int eb_sq_audit_grant(struct eb_sq_conn *c, const char *tenant,
                      const char *what, const char *id, int64_t now,
                      const char *k1, const char *v1, const char *k2,
                      const char *v2);
/* Operations. */
int eb_sq_audit_add(void *be, const struct eb_store_audit *ev);
int eb_sq_audit_list(void *be, const char *tenant, size_t limit,
                     struct eb_store_audit_list *out);
int eb_sq_audit_query(void *be, const struct eb_store_audit_filter *f,
                      struct eb_store_audit_list *out);
int eb_sq_audit_prune(void *be, int64_t before, size_t *removed);
int eb_sq_flow_put(void *be, const struct eb_store_flow *f);
int eb_sq_flow_get(void *be, int by, const char *key, int64_t now,
                   struct eb_store_flow *out);
int eb_sq_flow_take(void *be, int by, const char *key, int64_t now,
                    struct eb_store_flow *out);
int eb_sq_lock_try(void *be, const char *name, const char *owner, int64_t ttl,
                   int64_t now);
int eb_sq_lock_release(void *be, const char *name, const char *owner);
int eb_sq_key_put(void *be, const struct eb_store_key *k);
int eb_sq_key_rotate(void *be, const struct eb_store_key *k, int64_t retire_at,
                     int64_t not_after);
int eb_sq_key_list(void *be, const char *tenant, struct eb_store_key_list *out);
int eb_sq_key_retire(void *be, const char *kid, int64_t retired_at,
                     int64_t not_after);
int eb_sq_grant_list_sealed(void *be, const char *after, size_t limit,
                            struct eb_store_grant_list *out);
int eb_sq_grant_reseal(void *be, const char *id, const uint8_t *old,
                       size_t old_len, const uint8_t *next, size_t next_len);
int eb_sq_key_reseal(void *be, const char *kid, const uint8_t *old,
                     size_t old_len, const uint8_t *next, size_t next_len);
int eb_sq_mapping_put(void *be, const struct eb_store_mapping *m);
int eb_sq_mapping_get(void *be, const char *tenant, const char *subject,
                      struct eb_store_mapping *out);
int eb_sq_mapping_delete(void *be, const char *tenant, const char *subject);
int eb_sq_mapping_list(void *be, const char *tenant,
                       struct eb_store_mapping_list *out);
int eb_sq_sweep(void *be, int64_t now, size_t *removed);

/* ---- sqlite_scim.c: SCIM users, grants of a person ---- */

int eb_sq_grant_list_person(void *be, const char *tenant, const char *login,
                            const char *oid, struct eb_store_grant_list *out);
int eb_sq_scim_user_create(void *be, const struct eb_store_scim_user *u);
int eb_sq_scim_user_get(void *be, const char *tenant, const char *id,
                        struct eb_store_scim_user *out);
int eb_sq_scim_user_replace(void *be, const struct eb_store_scim_user *u);
int eb_sq_scim_user_delete(void *be, const char *tenant, const char *id);
int eb_sq_scim_user_list(void *be, const char *tenant, int by,
                         const char *value, size_t offset, size_t limit,
                         struct eb_store_scim_user_list *out, int64_t *total);

#endif /* EB_STORE_SQLITE_INT_H */
