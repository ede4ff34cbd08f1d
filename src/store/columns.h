/*
 * Each record's columns, written once: one X-macro list per record of
 * store.h (flow, code, grant, token, key, mapping, audit, scim_user), in
 * the order the backends select them. From a list a backend generates its
 * column-list string, its binder and its row reader, so that the three can
 * no longer disagree by position. Backend-neutral: no SQL library header.
 *
 * A list is invoked as EB_COLUMNS_<RECORD>(X, S, C). Each entry is
 *
 *	X(C, column, field, kind, write)
 *
 * and entries are separated by S (a string such as ", " to build a
 * column list, or nothing). C is passed through unchanged: the record's
 * short name for EB_COL_DESC, a qualifier such as "g." for EB_COL_QNAME.
 * - column: the SQL column; field: the member of struct eb_store_<C>.
 * - kind: TEXT (char *, NULL is SQL NULL), I64 (int64_t), BLOB (uint8_t *,
 *   its length in the size_t member field_len; NULL is SQL NULL), ENUM (an
 *   int stored as its name: eb_store_<C>_<field>_name() gives the name, a
 *   reader maps a stored name back through the same function, -1 when no
 *   value has it).
 * - write, what an insert of the record writes: BOUND (the record's
 *   value), FIXED(sql) (that constant, the record's value ignored: a new
 *   row's state) or AUTO (left out: the database fills it, with the
 *   column's default or the next id).
 *
 * store/columns.c expands the lists into tables of struct eb_col (one
 * struct eb_columns per record), which a backend walks with one binder and
 * one reader per kind. The SQLite backend (store/sqlite/sqlite_rows.c and
 * sqlite_sql.c) does so, and builds its column lists and VALUES lists from
 * the same macros. The PostgreSQL backend (store/pg/pg_rows.c and
 * pg_sql.c) does the same: its statement texts take their column lists
 * from EB_COLUMNS_SQL (EB_COLUMNS_QSQL for a join) and its inserts the
 * columns they write (BOUND and FIXED, AUTO ones left out); its reader
 * walks the table with binary-format readers (TEXT text, I64 8-byte big
 * endian, BLOB bytea, ENUM text through the name function) and its binder
 * appends each BOUND column with the type of its kind (TEXT/ENUM text, I64
 * int8, BLOB bytea). Its $n placeholders cannot be counted by the
 * preprocessor: they are written in each insert's VALUES list, the
 * parameter count (EB_COLUMNS_NBOUND) and types come from the list, and
 * tests/unit/test_pg_sql.c checks the written $n and FIXED constants
 * against the table.
 */
#ifndef EB_STORE_COLUMNS_H
#define EB_STORE_COLUMNS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* ---- the lists -------------------------------------------------------- */

/* One column a line. */
/* clang-format off */

#define EB_COLUMNS_AUDIT(X, S, C)                                              \
	X(C, id, id, I64, AUTO)                                                \
	S X(C, ts, ts, I64, BOUND)                                             \
	S X(C, tenant, tenant, TEXT, BOUND)                                    \
	S X(C, event, event, TEXT, BOUND)                                      \
	S X(C, subject, subject, TEXT, BOUND)                                  \
	S X(C, detail, detail, TEXT, BOUND)

#define EB_COLUMNS_FLOW(X, S, C)                                               \
	X(C, id, id, TEXT, BOUND)                                              \
	S X(C, tenant, tenant, TEXT, BOUND)                                    \
	S X(C, kind, kind, ENUM, BOUND)                                        \
	S X(C, created_at, created, I64, BOUND)                                \
	S X(C, expires_at, expires, I64, BOUND)                                \
	S X(C, user_identifier, user_identifier, TEXT, BOUND)                  \
	S X(C, enrollment_mode, enrollment_mode, TEXT, BOUND)                  \
	S X(C, model_family, model_family, TEXT, BOUND)                        \
	S X(C, mi_product, product, TEXT, BOUND)                               \
	S X(C, mi_version, version, TEXT, BOUND)                               \
	S X(C, mi_language, language, TEXT, BOUND)                             \
	S X(C, mi_os_version, os_version, TEXT, BOUND)                         \
	S X(C, mi_udid, udid, TEXT, BOUND)                                     \
	S X(C, mi_serial, serial, TEXT, BOUND)                                 \
	S X(C, upstream_state, upstream_state, TEXT, BOUND)                    \
	S X(C, upstream_nonce, upstream_nonce, TEXT, BOUND)                    \
	S X(C, pkce_verifier, pkce_verifier, BLOB, BOUND)                      \
	S X(C, browser_binding, browser_binding, TEXT, BOUND)                  \
	S X(C, client_id, client_id, TEXT, BOUND)                              \
	S X(C, redirect_uri, redirect_uri, TEXT, BOUND)                        \
	S X(C, device_state, device_state, TEXT, BOUND)                        \
	S X(C, scope, scope, TEXT, BOUND)                                      \
	S X(C, extra, extra, TEXT, BOUND)                                      \
	S X(C, code_challenge, code_challenge, TEXT, BOUND)

/* A new code is unused. */
#define EB_COLUMNS_CODE(X, S, C)                                               \
	X(C, hash, hash, TEXT, BOUND)                                          \
	S X(C, tenant, tenant, TEXT, BOUND)                                    \
	S X(C, grant_id, grant_id, TEXT, BOUND)                                \
	S X(C, client_id, client_id, TEXT, BOUND)                              \
	S X(C, redirect_uri, redirect_uri, TEXT, BOUND)                        \
	S X(C, scope, scope, TEXT, BOUND)                                      \
	S X(C, created_at, created, I64, BOUND)                                \
	S X(C, expires_at, expires, I64, BOUND)                                \
	S X(C, used_at, used_at, I64, FIXED("0"))                              \
	S X(C, code_challenge, code_challenge, TEXT, BOUND)

/*
 * A new grant is unclaimed: its lease comes with a claim (and the columns
 * with migration 6, so an insert leaves them out). Its idp_login came with
 * the SCIM migration: grant_create writes it in the same transaction when
 * set, so that an insert still works on a schema without it.
 */
#define EB_COLUMNS_GRANT(X, S, C)                                              \
	X(C, id, id, TEXT, BOUND)                                              \
	S X(C, tenant, tenant, TEXT, BOUND)                                    \
	S X(C, status, status, ENUM, BOUND)                                    \
	S X(C, auth_method, auth_method, TEXT, BOUND)                          \
	S X(C, client_id, client_id, TEXT, BOUND)                              \
	S X(C, managed_apple_id, managed_apple_id, TEXT, BOUND)                \
	S X(C, user_identifier, user_identifier, TEXT, BOUND)                  \
	S X(C, idp_issuer, idp_issuer, TEXT, BOUND)                            \
	S X(C, idp_subject, idp_subject, TEXT, BOUND)                          \
	S X(C, idp_tid, idp_tid, TEXT, BOUND)                                  \
	S X(C, idp_oid, idp_oid, TEXT, BOUND)                                  \
	S X(C, enrollment_mode, enrollment_mode, TEXT, BOUND)                  \
	S X(C, binding_kind, binding_kind, TEXT, BOUND)                        \
	S X(C, binding_value, binding_value, TEXT, BOUND)                      \
	S X(C, bound_at, bound_at, I64, BOUND)                                 \
	S X(C, created_at, created, I64, BOUND)                                \
	S X(C, updated_at, updated, I64, BOUND)                                \
	S X(C, expires_at, expires, I64, BOUND)                                \
	S X(C, upstream_refresh_token, upstream_refresh_token, BLOB, BOUND)    \
	S X(C, upstream_renewed_at, upstream_renewed_at, I64, BOUND)           \
	S X(C, upstream_next_at, upstream_next_at, I64, BOUND)                 \
	S X(C, upstream_failing_since, upstream_failing_since, I64, BOUND)     \
	S X(C, revoked_at, revoked_at, I64, BOUND)                             \
	S X(C, revoke_reason, revoke_reason, TEXT, BOUND)                      \
	S X(C, retired_at, retired_at, I64, AUTO)                              \
	S X(C, superseded_by, superseded_by, TEXT, BOUND)                      \
	S X(C, extra, extra, TEXT, BOUND)                                      \
	S X(C, lease_owner, lease_owner, TEXT, AUTO)                           \
	S X(C, lease_token, lease_token, TEXT, AUTO)                           \
	S X(C, lease_until, lease_until, I64, AUTO)                            \
	S X(C, idp_login, idp_login, TEXT, AUTO)

/*
 * A new token is active, never rotated nor replaced. Its sealed successor
 * (successor_sealed) is not a column of the record: only rotation keeps
 * and reads it.
 */
#define EB_COLUMNS_TOKEN(X, S, C)                                              \
	X(C, hash, hash, TEXT, BOUND)                                          \
	S X(C, kind, kind, ENUM, BOUND)                                        \
	S X(C, tenant, tenant, TEXT, BOUND)                                    \
	S X(C, grant_id, grant_id, TEXT, BOUND)                                \
	S X(C, client_id, client_id, TEXT, BOUND)                              \
	S X(C, jti, jti, TEXT, BOUND)                                          \
	S X(C, created_at, created, I64, BOUND)                                \
	S X(C, expires_at, expires, I64, BOUND)                                \
	S X(C, status, status, ENUM, FIXED("'active'"))                        \
	S X(C, rotated_at, rotated_at, I64, FIXED("0"))                        \
	S X(C, parent_hash, parent_hash, TEXT, BOUND)                          \
	S X(C, replaced_by, replaced_by, TEXT, FIXED("NULL"))

#define EB_COLUMNS_KEY(X, S, C)                                                \
	X(C, kid, kid, TEXT, BOUND)                                            \
	S X(C, tenant, tenant, TEXT, BOUND)                                    \
	S X(C, alg, alg, TEXT, BOUND)                                          \
	S X(C, created_at, created, I64, BOUND)                                \
	S X(C, retired_at, retired_at, I64, BOUND)                             \
	S X(C, not_after, not_after, I64, BOUND)                               \
	S X(C, public_jwk, public_jwk, TEXT, BOUND)                            \
	S X(C, private_key, private_key, BLOB, BOUND)                          \
	S X(C, activates_at, activates_at, I64, BOUND)

#define EB_COLUMNS_MAPPING(X, S, C)                                            \
	X(C, tenant, tenant, TEXT, BOUND)                                      \
	S X(C, subject, subject, TEXT, BOUND)                                  \
	S X(C, managed_apple_id, managed_apple_id, TEXT, BOUND)                \
	S X(C, note, note, TEXT, BOUND)                                        \
	S X(C, created_at, created, I64, BOUND)                                \
	S X(C, updated_at, updated, I64, BOUND)

/* A SCIM User: version 1 at creation. */
#define EB_COLUMNS_SCIM_USER(X, S, C)                                          \
	X(C, tenant, tenant, TEXT, BOUND)                                      \
	S X(C, id, id, TEXT, BOUND)                                            \
	S X(C, user_name, user_name, TEXT, BOUND)                              \
	S X(C, external_id, external_id, TEXT, BOUND)                          \
	S X(C, active, active, I64, BOUND)                                     \
	S X(C, resource, resource, TEXT, BOUND)                                \
	S X(C, version, version, I64, FIXED("1"))                              \
	S X(C, created_at, created, I64, BOUND)                                \
	S X(C, updated_at, updated, I64, BOUND)

/* clang-format on */

/* ---- what the lists generate ------------------------------------------ */

/* "a, b, c": the list's columns, for SELECT and INSERT. */
#define EB_COL_NAME(C, column, field, kind, write) #column
#define EB_COLUMNS_SQL(list)                       list(EB_COL_NAME, ", ", )

/* "g.a, g.b, g.c": the same qualified by q ("g."), for a join. */
#define EB_COL_QNAME(q, column, field, kind, write) q #column
#define EB_COLUMNS_QSQL(list, q)                    list(EB_COL_QNAME, ", ", q)

/* How many columns the list has, as an integer constant expression. */
#define EB_COL_ONE(C, column, field, kind, write) +1
#define EB_COLUMNS_COUNT(list)                    (0 list(EB_COL_ONE, , ))

/* How many of them an insert binds (the BOUND ones). */
#define EB_COL_BOUND_ONE(C, column, field, kind, write) EB_COL_IS_##write
#define EB_COL_IS_BOUND                                 +1
#define EB_COL_IS_FIXED(sql)
#define EB_COL_IS_AUTO
#define EB_COLUMNS_NBOUND(list) (0 list(EB_COL_BOUND_ONE, , ))

enum eb_col_kind {
	EB_COL_TEXT,
	EB_COL_I64,
	EB_COL_BLOB,
	EB_COL_ENUM,
};

enum eb_col_write {
	EB_COL_BOUND,
	EB_COL_FIXED,
	EB_COL_AUTO,
};

/* One column of a record. */
struct eb_col {
	const char *name;      /* the SQL column */
	enum eb_col_kind kind; /* how the field is typed and stored */
	size_t off;            /* the field's offset in the record */
	size_t len_off;        /* BLOB: the offset of its size_t length */
	const char *(*enum_name)(int); /* ENUM: value -> stored name */
	enum eb_col_write write;       /* what an insert writes */
	const char *fixed;             /* FIXED: the SQL constant written */
};

/* A record's columns, in the order of its list. */
struct eb_columns {
	const struct eb_col *v;
	size_t n;
	size_t size; /* sizeof the record */
};

extern const struct eb_columns eb_columns_audit, eb_columns_flow,
    eb_columns_code, eb_columns_grant, eb_columns_token, eb_columns_key,
    eb_columns_mapping, eb_columns_scim_user;

/* Each record's eb_store_*_finish() taking a void pointer, for the
 * backends' generic row readers (one set for both). */
void eb_columns_finish_audit(void *), eb_columns_finish_flow(void *),
    eb_columns_finish_code(void *), eb_columns_finish_grant(void *),
    eb_columns_finish_token(void *), eb_columns_finish_key(void *),
    eb_columns_finish_mapping(void *), eb_columns_finish_scim_user(void *);

/* The kinds' field types, and the table entry of one column. */
#define EB_COL_TYPE_TEXT char *
#define EB_COL_TYPE_I64  int64_t
#define EB_COL_TYPE_BLOB uint8_t *
#define EB_COL_TYPE_ENUM int

#define EB_COL_LEN_TEXT(C, field) 0
#define EB_COL_LEN_I64(C, field)  0
#define EB_COL_LEN_BLOB(C, field) offsetof(struct eb_store_##C, field##_len)
#define EB_COL_LEN_ENUM(C, field) 0

#define EB_COL_NAMEF_TEXT(C, field) NULL
#define EB_COL_NAMEF_I64(C, field)  NULL
#define EB_COL_NAMEF_BLOB(C, field) NULL
#define EB_COL_NAMEF_ENUM(C, field) eb_store_##C##_##field##_name

#define EB_COL_WRITE_BOUND      EB_COL_BOUND, NULL
#define EB_COL_WRITE_FIXED(sql) EB_COL_FIXED, sql
#define EB_COL_WRITE_AUTO       EB_COL_AUTO, NULL

#define EB_COL_DESC(C, column, field, kind, write)                             \
	{#column,                                                              \
	 EB_COL_##kind,                                                        \
	 offsetof(struct eb_store_##C, field),                                 \
	 EB_COL_LEN_##kind(C, field),                                          \
	 EB_COL_NAMEF_##kind(C, field),                                        \
	 EB_COL_WRITE_##write},

/* A compile-time check that each field has its kind's type. */
#define EB_COL_LENOK_TEXT(C, field) 1
#define EB_COL_LENOK_I64(C, field)  1
#define EB_COL_LENOK_BLOB(C, field)                                            \
	_Generic(((struct eb_store_##C *)0)->field##_len, size_t : 1,          \
	         default : 0)
#define EB_COL_LENOK_ENUM(C, field) 1

#define EB_COL_CHECK(C, column, field, kind, write)                            \
	_Static_assert(_Generic(((struct eb_store_##C *)0)->field,             \
	                        EB_COL_TYPE_##kind : 1, default : 0) &&        \
	                   EB_COL_LENOK_##kind(C, field),                      \
	               "struct eb_store_" #C "." #field " is not " #kind);

#endif /* EB_STORE_COLUMNS_H */
