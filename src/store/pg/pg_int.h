/*
 * Private declarations of the PostgreSQL store backend (src/store/pg/):
 * the backend handle, the statement table (pg_sql.c) and its ids, the row
 * readers and the run-in-a-connection / run-in-a-transaction helpers
 * (pg_rows.c) the operation files (pg_grants.c, pg_tokens.c, pg_misc.c)
 * share, and their operations for the ops table (pg_store.c). Nothing
 * outside this folder includes it.
 */
#ifndef EB_PG_INT_H
#define EB_PG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "store/columns.h"
#include "store/pg/pg_conn.h"
#include "store/store.h"

#define EB_PG_SWEEP_BATCH 5000  /* rows one sweep statement deletes */
#define EB_PG_RETAIN      86400 /* used codes, expired tokens: a day */
#define EB_PG_AUDIT_MAX   1000
#define EB_PG_DETAIL_MAX  4096

/* The backend handle. */
struct eb_pg_store {
	struct eb_pg_pool *pool;
	char *dsn;    /* may hold a password: wiped on close, never logged */
	char *schema; /* current_schema() of its sessions, for messages */
	int notify;   /* NOTIFY on invalidations (EB_STORE_OPEN_NO_NOTIFY) */
	char *application;       /* application_name, or NULL */
	struct eb_pg_feed *feed; /* other replicas' invalidations, or NULL */
};

enum eb_pg_stmt_id {
	PS_PING,
	PS_VERSION,
	PS_CLOCK,
	PS_INVAL_NOTIFY,
	PS_INVAL_QUIET,
	PS_AUDIT_ADD,
	PS_AUDIT_LIST,
	PS_AUDIT_QUERY,
	PS_AUDIT_PRUNE,
	PS_FLOW_PUT,
	PS_FLOW_BY_ID,
	PS_FLOW_BY_STATE,
	PS_FLOW_TAKE_ID,
	PS_FLOW_TAKE_STATE,
	PS_FLOW_SWEEP,
	PS_CODE_INS,
	PS_CODE_LOCK,
	PS_CODE_USE,
	PS_CODE_SWEEP,
	PS_GRANT_INS,
	PS_GRANT_GET,
	PS_GRANT_LOCK,
	PS_GRANT_LOCK2,
	PS_GRANT_LIST,
	PS_GRANT_END,
	PS_GRANT_BIND,
	PS_GRANT_RETIRE,
	PS_GRANT_HOLDER,
	PS_GRANT_UPSTREAM,
	PS_GRANT_DUE,
	PS_GRANT_DUE_LEASE,
	PS_GRANT_CLAIM,
	PS_GRANT_SLOT_ADD,
	PS_GRANT_SLOT_LOCK,
	PS_GRANT_LIVE,
	PS_GRANT_RELEASE,
	PS_GRANT_COUNT,
	PS_TOKEN_INS,
	PS_TOKEN_GET,
	PS_TOKEN_LOCK,
	PS_TOKEN_GRANT_LOCK,
	PS_TOKEN_GRANT_GET,
	PS_TOKEN_ROTATE_WRITE,
	PS_TOKEN_REVOKE,
	PS_TOKEN_SWEEP,
	PS_TOKEN_SUCC_SWEEP,
	PS_KEY_GUARD_ADD,
	PS_KEY_GUARD_LOCK,
	PS_KEY_INS,
	PS_KEY_LIST,
	PS_KEY_RETIRE,
	PS_KEY_CURRENT,
	PS_KEY_RETIRE_CURRENT,
	PS_GRANT_SEALED,
	PS_GRANT_RESEAL,
	PS_GRANT_EXISTS,
	PS_KEY_RESEAL,
	PS_KEY_EXISTS,
	PS_MAP_PUT,
	PS_MAP_GET,
	PS_MAP_DEL,
	PS_MAP_LIST,
	PS_GRANT_SET_LOGIN,
	PS_GRANT_OF_PERSON,
	PS_SCIM_INS,
	PS_SCIM_GET,
	PS_SCIM_REPLACE,
	PS_SCIM_DEL,
	PS_SCIM_LIST,
	PS_SCIM_COUNT,
	PS_SCIM_BY_NAME,
	PS_SCIM_BY_EXT,
	PS_LOCK_TRY,
	PS_LOCK_RELEASE,
	PS_MIG_RECORD,
	PS_MIG_RECORD_COMPAT,
	PS__COUNT
};

/* pg_sql.c: the statements, indexed by enum eb_pg_stmt_id. */
extern const struct eb_pg_stmt eb_pg_stmts[PS__COUNT];

/* ---- rows ---- */

/* Column reader over one row: consecutive columns, remembering a failure
 * (out of memory, or a column of an unexpected type). */
struct eb_pg_rd {
	const PGresult *r;
	int row, col;
	int bad;
};

void eb_pg_rd_init(struct eb_pg_rd *rd, const PGresult *r, int row);
char *eb_pg_rd_text(struct eb_pg_rd *rd);
int64_t eb_pg_rd_i64(struct eb_pg_rd *rd);
uint8_t *eb_pg_rd_blob(struct eb_pg_rd *rd, size_t *len);
/* The enum value whose name (through namef) is the column's text, or -1. */
int eb_pg_rd_enum(struct eb_pg_rd *rd, const char *(*namef)(int));

/* Read the record's columns (cols, in list order) from rd's current
 * column on into rec: TEXT as text, I64 as int8, BLOB as bytea (a copy
 * and its length), ENUM as text through its name function. */
void eb_pg_rd_cols(struct eb_pg_rd *rd, const struct eb_columns *cols,
                   void *rec);
/*
 * Append rec's BOUND columns (cols, in list order) to a, each with the
 * type of its kind (TEXT/ENUM text, I64 int8, BLOB bytea; NULL pointers
 * are SQL NULL): 0, or -1 (logged) when an ENUM has no name.
 */
int eb_pg_args_row(struct eb_pg_args *a, const struct eb_columns *cols,
                   const void *rec);

/* How to read and release one kind of record. */
struct eb_pg_rowtype {
	size_t size;
	const struct eb_columns *cols;           /* a record's, or NULL */
	void (*read)(struct eb_pg_rd *, void *); /* when cols is NULL */
	void (*finish)(void *);
};

extern const struct eb_pg_rowtype eb_pg_rt_audit, eb_pg_rt_flow, eb_pg_rt_code,
    eb_pg_rt_grant, eb_pg_rt_token, eb_pg_rt_key, eb_pg_rt_mapping,
    eb_pg_rt_scim_user;

/* Read a grant's / a token's columns from rd's current column on. */
void eb_pg_read_grant(struct eb_pg_rd *rd, void *g);
void eb_pg_read_token(struct eb_pg_rd *rd, void *t);

/*
 * Run stmt with a and read at most one row into out (zeroed first): OK,
 * NOT_FOUND (no row) or another code.
 */
int eb_pg_one(struct eb_pg_conn *c, int stmt, const struct eb_pg_args *a,
              const struct eb_pg_rowtype *rt, void *out);
/* Run stmt with a and read every row into *vp / *np. */
int eb_pg_all(struct eb_pg_conn *c, int stmt, const struct eb_pg_args *a,
              const struct eb_pg_rowtype *rt, void **vp, size_t *np);
/* Run stmt; *n (may be NULL) is the number of rows it changed or returned.
 */
int eb_pg_run(struct eb_pg_conn *c, int stmt, const struct eb_pg_args *a,
              size_t *n);
/* A NULL-able bytea parameter. */
void eb_pg_args_blob(struct eb_pg_args *a, const void *p, size_t n);

/* ---- connections and transactions ---- */

/* fn(c, arg) on a pooled connection, outside a transaction. */
int eb_pg_with(struct eb_pg_store *ps, int (*fn)(struct eb_pg_conn *, void *),
               void *arg);
/* fn(c, arg) in one READ COMMITTED transaction (retried: fn may run more
 * than once, and must reset what it hands out each time). */
int eb_pg_in_tx(struct eb_pg_store *ps, int (*fn)(struct eb_pg_conn *, void *),
                void *arg);

/*
 * The invalidation (SCALEOUT 3.6): bump the generation row and, unless the
 * store was opened without, NOTIFY the feed. The LAST statement of an
 * invalidating transaction (the generation row is the last lock taken).
 */
int eb_pg_invalidate(struct eb_pg_conn *c, int notify);

/*
 * The audit detail of a grant change: the JSON object {k1: v1, k2: v2}
 * (NULL values left out) into b, initialised here: 0, or -1 (logged, b
 * finished). The caller finishes b.
 */
struct eb_buf;
int eb_pg_detail(struct eb_buf *b, const char *k1, const char *v1,
                 const char *k2, const char *v2);

/* ---- the operations, by file ---- */

/* pg_grants.c */
int eb_pg_grant_create(void *be, const struct eb_store_grant *g);
int eb_pg_grant_get(void *be, const char *id, struct eb_store_grant *out);
int eb_pg_grant_list(void *be, const struct eb_store_grant_filter *f,
                     struct eb_store_grant_list *out);
int eb_pg_grant_retire(void *be, const char *id, const char *reason,
                       int64_t now);
int eb_pg_grant_set_status(void *be, const char *id, int status,
                           const char *reason, int64_t now);
int eb_pg_grant_supersede(void *be, const char *old_id, const char *new_id,
                          int64_t now);
int eb_pg_grant_bind(void *be, const char *id, const char *kind,
                     const char *value, int64_t now);
int eb_pg_grant_set_upstream(void *be, const char *id,
                             const struct eb_store_upstream *u, int64_t now);
int eb_pg_grant_list_due(void *be, const char *tenant, int64_t now,
                         int64_t lease, size_t limit,
                         struct eb_store_grant_list *out);
int eb_pg_grant_claim_due(void *be, const char *tenant, int64_t now,
                          int64_t lease, size_t limit, size_t cap,
                          const char *owner, struct eb_store_grant_list *out);
int eb_pg_grant_release(void *be, const char *id, const char *lease_token,
                        int64_t now);
int eb_pg_grant_count(void *be, const char *tenant, int status,
                      int failing_only, int64_t *out);
int eb_pg_grant_list_sealed(void *be, const char *after, size_t limit,
                            struct eb_store_grant_list *out);
int eb_pg_grant_reseal(void *be, const char *id, const uint8_t *old,
                       size_t old_len, const uint8_t *next, size_t next_len);
/* End grant id (active) in the caller's transaction, grant row locked. */
int eb_pg_grant_end(struct eb_pg_conn *c, const char *id, int status,
                    const char *reason, const char *superseded_by, int64_t now);

/* The little of a grant the write operations decide on. */
struct eb_pg_gstate {
	int status;
	char *tenant;
	char *bkind, *bvalue;
	char *issuer, *subject;
};
/* Lock grant id (FOR UPDATE) and read its state: OK or NOT_FOUND. */
int eb_pg_gstate_lock(struct eb_pg_conn *c, const char *id,
                      struct eb_pg_gstate *g);
void eb_pg_gstate_finish(struct eb_pg_gstate *g);

/* pg_tokens.c */
int eb_pg_code_put(void *be, const struct eb_store_code *cd);
int eb_pg_code_consume(void *be, const char *hash, const char *client_id,
                       const char *redirect_uri, int64_t now,
                       struct eb_store_code *out);
int eb_pg_token_put(void *be, const struct eb_store_token *t);
int eb_pg_token_get(void *be, const char *hash, struct eb_store_token *out);
int eb_pg_token_grant_get(void *be, const char *hash,
                          struct eb_store_token *tok,
                          struct eb_store_grant *grant);
int eb_pg_token_rotate(void *be, const char *old_hash,
                       const struct eb_store_token *next,
                       const uint8_t *next_sealed, size_t next_sealed_len,
                       const struct eb_store_token *access, int64_t now,
                       int64_t grace, struct eb_store_token *old_out);
int eb_pg_token_revoke(void *be, const char *hash, int64_t now);

/* pg_misc.c */
int eb_pg_audit_add(void *be, const struct eb_store_audit *ev);
int eb_pg_audit_list(void *be, const char *tenant, size_t limit,
                     struct eb_store_audit_list *out);
int eb_pg_audit_query(void *be, const struct eb_store_audit_filter *f,
                      struct eb_store_audit_list *out);
int eb_pg_audit_prune(void *be, int64_t before, size_t *removed);
int eb_pg_flow_put(void *be, const struct eb_store_flow *f);
int eb_pg_flow_get(void *be, int by, const char *key, int64_t now,
                   struct eb_store_flow *out);
int eb_pg_flow_take(void *be, int by, const char *key, int64_t now,
                    struct eb_store_flow *out);
int eb_pg_key_put(void *be, const struct eb_store_key *k);
int eb_pg_key_list(void *be, const char *tenant, struct eb_store_key_list *out);
int eb_pg_key_retire(void *be, const char *kid, int64_t retired_at,
                     int64_t not_after);
int eb_pg_key_rotate(void *be, const struct eb_store_key *k, int64_t retire_at,
                     int64_t not_after);
int eb_pg_key_reseal(void *be, const char *kid, const uint8_t *old,
                     size_t old_len, const uint8_t *next, size_t next_len);
int eb_pg_mapping_put(void *be, const struct eb_store_mapping *m);
int eb_pg_mapping_get(void *be, const char *tenant, const char *subject,
                      struct eb_store_mapping *out);
int eb_pg_mapping_delete(void *be, const char *tenant, const char *subject);
int eb_pg_mapping_list(void *be, const char *tenant,
                       struct eb_store_mapping_list *out);
int eb_pg_sweep(void *be, int64_t now, size_t *removed);

/* pg_scim.c */
int eb_pg_grant_list_person(void *be, const char *tenant, const char *login,
                            const char *oid, struct eb_store_grant_list *out);
int eb_pg_scim_user_create(void *be, const struct eb_store_scim_user *u);
int eb_pg_scim_user_get(void *be, const char *tenant, const char *id,
                        struct eb_store_scim_user *out);
int eb_pg_scim_user_replace(void *be, const struct eb_store_scim_user *u);
int eb_pg_scim_user_delete(void *be, const char *tenant, const char *id);
int eb_pg_scim_user_list(void *be, const char *tenant, int by,
                         const char *value, size_t offset, size_t limit,
                         struct eb_store_scim_user_list *out, int64_t *total);
int eb_pg_lock_try(void *be, const char *name, const char *owner, int64_t ttl,
                   int64_t now);
int eb_pg_lock_release(void *be, const char *name, const char *owner);

#endif
