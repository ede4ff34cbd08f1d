/*
 * The PostgreSQL backend's statements, one table indexed by enum
 * eb_pg_stmt_id, each prepared per connection with typed parameters
 * (pg_conn.h). Their shapes are PostgreSQL's own (SCALEOUT 3.5): single-use
 * reads are DELETE ... RETURNING, read-then-write rows are taken FOR
 * UPDATE, claims are one UPDATE over a FOR UPDATE SKIP LOCKED subquery,
 * a grant and its audit event are one statement, and "no limit" is a NULL
 * LIMIT.
 */
#include "store/pg/pg_int.h"

#define T EB_PG_TEXT
#define I EB_PG_INT8
#define B EB_PG_BYTEA

/*
 * The records' column lists, from store/columns.h, in the order their
 * reader (eb_pg_rd_cols) takes them.
 */
#define AUDIT_COLS   EB_COLUMNS_SQL(EB_COLUMNS_AUDIT)
#define FLOW_COLS    EB_COLUMNS_SQL(EB_COLUMNS_FLOW)
#define CODE_COLS    EB_COLUMNS_SQL(EB_COLUMNS_CODE)
#define GRANT_COLS   EB_COLUMNS_SQL(EB_COLUMNS_GRANT)
#define TOKEN_COLS   EB_COLUMNS_SQL(EB_COLUMNS_TOKEN)
#define KEY_COLS     EB_COLUMNS_SQL(EB_COLUMNS_KEY)
#define MAP_COLS     EB_COLUMNS_SQL(EB_COLUMNS_MAPPING)
#define SCIM_COLS    EB_COLUMNS_SQL(EB_COLUMNS_SCIM_USER)
#define GRANT_COLS_G EB_COLUMNS_QSQL(EB_COLUMNS_GRANT, "g.")
#define TOKEN_COLS_T EB_COLUMNS_QSQL(EB_COLUMNS_TOKEN, "t.")

/*
 * An insert's column list, "a , b , c": the columns it writes, BOUND and
 * FIXED, in list order. An AUTO one is left to the database, and need not
 * exist yet (the grant's lease columns came with migration 6, and a store
 * opened on an older schema still inserts grants). Each written column is
 * one macro argument after a comma: ICOLS_ drops the first comma and
 * stringifies the rest, commas and all.
 *
 * Its VALUES list is written by hand in list order: $n for a BOUND column,
 * numbered in list order as eb_pg_args_row appends them, and the FIXED
 * column's constant. Its parameter count and types come from the list
 * (PARAMS); test_pg_sql checks the written $n and constants against it.
 */
#define ICOL(C, column, field, kind, write) ICOL_##write(column)
#define ICOL_BOUND(column)                  , column
#define ICOL_FIXED(sql)                     ICOL_BOUND /* (column) follows */
#define ICOL_AUTO(column)
#define ICOLS(list)         ICOLS_(list(ICOL, , ))
#define ICOLS_(...)         ICOLS__(__VA_ARGS__)
#define ICOLS__(empty, ...) #__VA_ARGS__
#define AUDIT_ICOLS         ICOLS(EB_COLUMNS_AUDIT)
#define FLOW_ICOLS          ICOLS(EB_COLUMNS_FLOW)
#define CODE_ICOLS          ICOLS(EB_COLUMNS_CODE)
#define GRANT_ICOLS         ICOLS(EB_COLUMNS_GRANT)
#define KEY_ICOLS           ICOLS(EB_COLUMNS_KEY)
#define MAP_ICOLS           ICOLS(EB_COLUMNS_MAPPING)
#define SCIM_ICOLS          ICOLS(EB_COLUMNS_SCIM_USER)

/* A BOUND column's parameter type by its kind; others bind nothing. */
#define PG_TYPE_TEXT                            T
#define PG_TYPE_I64                             I
#define PG_TYPE_BLOB                            B
#define PG_TYPE_ENUM                            T
#define PG_PTYPE(C, column, field, kind, write) PG_PTYPE_##write(PG_TYPE_##kind)
#define PG_PTYPE_BOUND(t)                       t,
#define PG_PTYPE_FIXED(sql)                     PG_PTYPE_AUTO /* (t) follows */
#define PG_PTYPE_AUTO(t)
#define PG_TYPES(list) list(PG_PTYPE, , )
/* An insert's parameter count and types: its record's BOUND columns. */
#define PARAMS(list)                                                           \
	EB_COLUMNS_NBOUND(list),                                               \
	{                                                                      \
		PG_TYPES(list)                                                 \
	}

/* What a due grant is: the claim rule of grant/policy.h, in SQL (no live
 * claim included). */
#define DUE_WHERE                                                              \
	" status = 'active' AND upstream_next_at <> 0"                         \
	" AND upstream_next_at <= $2 AND (expires_at = 0 OR expires_at > $2)"  \
	" AND lease_until <= $2 AND ($1::text IS NULL OR tenant = $1)"

/* The audit insert that follows a grant change in one statement. */
#define AUDIT_FROM_G(ts, ev, det)                                              \
	" INSERT INTO audit_events (ts, tenant, event, subject, detail)"       \
	" SELECT " ts ", g.tenant, " ev ", g.id, " det " FROM g"

const struct eb_pg_stmt eb_pg_stmts[PS__COUNT] = {
    [PS_PING] = {"eb_ping", "SELECT 1", 0, {0}},
    [PS_VERSION] = {"eb_version",
                    "SELECT coalesce(max(version), 0)::bigint"
                    " FROM schema_migrations",
                    0,
                    {0}},
    [PS_CLOCK] = {"eb_clock",
                  "SELECT extract(epoch FROM clock_timestamp())::bigint",
                  0,
                  {0}},
    [PS_INVAL_NOTIFY] = {"eb_inval_notify",
                         "WITH g AS (UPDATE eb_generation SET n = n + 1"
                         " WHERE id = 1 RETURNING n)"
                         " SELECT pg_notify(current_schema() || '.eb_inval',"
                         " n::text) FROM g",
                         0,
                         {0}},
    [PS_INVAL_QUIET] = {"eb_inval_quiet",
                        "UPDATE eb_generation SET n = n + 1 WHERE id = 1",
                        0,
                        {0}},

    [PS_AUDIT_ADD] = {"eb_audit_add",
                      "INSERT INTO audit_events (" AUDIT_ICOLS ")"
                      " VALUES ($1, $2, $3, $4, $5)",
                      PARAMS(EB_COLUMNS_AUDIT)},
    [PS_AUDIT_LIST] = {"eb_audit_list",
                       "SELECT " AUDIT_COLS " FROM audit_events"
                       " WHERE $1::text IS NULL OR tenant = $1"
                       " ORDER BY id DESC LIMIT $2",
                       2,
                       {T, I}},
    [PS_AUDIT_QUERY] = {"eb_audit_query",
                        "SELECT " AUDIT_COLS " FROM audit_events"
                        " WHERE ($1::text IS NULL OR tenant = $1)"
                        " AND ($2::text IS NULL OR event = $2"
                        " OR (right($2, 1) = '.'"
                        " AND left(event, length($2)) = $2))"
                        " AND ts >= $3 AND id > $4"
                        " ORDER BY CASE WHEN $6 <> 0 THEN id END ASC,"
                        " id DESC LIMIT $5",
                        6,
                        {T, T, I, I, I, I}},
    [PS_AUDIT_PRUNE] = {"eb_audit_prune",
                        "DELETE FROM audit_events WHERE id IN (SELECT id"
                        " FROM audit_events WHERE ts < $1 ORDER BY id"
                        " LIMIT $2)",
                        2,
                        {I, I}},

    [PS_FLOW_PUT] =
        {"eb_flow_put",
         "INSERT INTO login_flows (" FLOW_ICOLS ") VALUES ($1, $2, $3, $4, $5,"
         " $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,"
         " $20, $21, $22, $23, $24) ON CONFLICT (id) DO UPDATE SET"
         " tenant = EXCLUDED.tenant, kind = EXCLUDED.kind,"
         " created_at = EXCLUDED.created_at,"
         " expires_at = EXCLUDED.expires_at,"
         " user_identifier = EXCLUDED.user_identifier,"
         " enrollment_mode = EXCLUDED.enrollment_mode,"
         " model_family = EXCLUDED.model_family,"
         " mi_product = EXCLUDED.mi_product,"
         " mi_version = EXCLUDED.mi_version,"
         " mi_language = EXCLUDED.mi_language,"
         " mi_os_version = EXCLUDED.mi_os_version,"
         " mi_udid = EXCLUDED.mi_udid, mi_serial = EXCLUDED.mi_serial,"
         " upstream_state = EXCLUDED.upstream_state,"
         " upstream_nonce = EXCLUDED.upstream_nonce,"
         " pkce_verifier = EXCLUDED.pkce_verifier,"
         " browser_binding = EXCLUDED.browser_binding,"
         " client_id = EXCLUDED.client_id,"
         " redirect_uri = EXCLUDED.redirect_uri,"
         " device_state = EXCLUDED.device_state, scope = EXCLUDED.scope,"
         " extra = EXCLUDED.extra, code_challenge = EXCLUDED.code_challenge",
         PARAMS(EB_COLUMNS_FLOW)},
    [PS_FLOW_BY_ID] = {"eb_flow_by_id",
                       "SELECT " FLOW_COLS " FROM login_flows WHERE id = $1",
                       1,
                       {T}},
    [PS_FLOW_BY_STATE] = {"eb_flow_by_state",
                          "SELECT " FLOW_COLS " FROM login_flows"
                          " WHERE upstream_state = $1",
                          1,
                          {T}},
    [PS_FLOW_TAKE_ID] = {"eb_flow_take_id",
                         "DELETE FROM login_flows WHERE id = $1"
                         " RETURNING " FLOW_COLS,
                         1,
                         {T}},
    [PS_FLOW_TAKE_STATE] = {"eb_flow_take_state",
                            "DELETE FROM login_flows WHERE upstream_state = $1"
                            " RETURNING " FLOW_COLS,
                            1,
                            {T}},
    [PS_FLOW_SWEEP] = {"eb_flow_sweep",
                       "DELETE FROM login_flows WHERE id IN (SELECT id FROM"
                       " login_flows WHERE expires_at <= $1 LIMIT $2)",
                       2,
                       {I, I}},

    [PS_CODE_INS] = {"eb_code_ins",
                     "INSERT INTO auth_codes (" CODE_ICOLS ") VALUES ($1, $2,"
                     " $3, $4, $5, $6, $7, $8, 0, $9)",
                     PARAMS(EB_COLUMNS_CODE)},
    [PS_CODE_LOCK] = {"eb_code_lock",
                      "SELECT " CODE_COLS " FROM auth_codes WHERE hash = $1"
                      " FOR UPDATE",
                      1,
                      {T}},
    [PS_CODE_USE] = {"eb_code_use",
                     "UPDATE auth_codes SET used_at = $2 WHERE hash = $1",
                     2,
                     {T, I}},
    [PS_CODE_SWEEP] = {"eb_code_sweep",
                       "DELETE FROM auth_codes WHERE hash IN (SELECT hash FROM"
                       " auth_codes WHERE expires_at <= $1 LIMIT $2)",
                       2,
                       {I, I}},

    [PS_GRANT_INS] =
        {"eb_grant_ins",
         "WITH g AS (INSERT INTO grants (" GRANT_ICOLS ") VALUES ($1, $2,"
         " $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
         " $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)"
         " RETURNING id, tenant)" AUDIT_FROM_G("$16", "'grant.created'", "$27"),
         /* the record's, then the audit detail */
         EB_COLUMNS_NBOUND(EB_COLUMNS_GRANT) + 1,
         {PG_TYPES(EB_COLUMNS_GRANT) T}},
    [PS_GRANT_GET] = {"eb_grant_get",
                      "SELECT " GRANT_COLS " FROM grants WHERE id = $1",
                      1,
                      {T}},
    [PS_GRANT_LOCK] = {"eb_grant_lock",
                       "SELECT status, tenant, binding_kind, binding_value,"
                       " idp_issuer, idp_subject FROM grants WHERE id = $1"
                       " FOR UPDATE",
                       1,
                       {T}},
    /* two grants in id order (the lock-order rule, SCALEOUT 3.4) */
    [PS_GRANT_LOCK2] = {"eb_grant_lock2",
                        "SELECT id FROM grants WHERE id IN ($1, $2)"
                        " ORDER BY id FOR UPDATE",
                        2,
                        {T, T}},
    [PS_GRANT_LIST] = {"eb_grant_list",
                       "SELECT " GRANT_COLS " FROM grants"
                       " WHERE ($1::text IS NULL OR tenant = $1)"
                       " AND ($2::text IS NULL OR status = $2)"
                       " AND ($3::text IS NULL OR managed_apple_id = $3)"
                       " AND ($5::text IS NULL OR binding_value = $5)"
                       " AND ($6 = 0 OR retired_at <> 0)"
                       " ORDER BY created_at DESC, id LIMIT $4",
                       6,
                       {T, T, T, I, T, I}},
    /* end a grant: the row, its tokens and the audit event at once */
    [PS_GRANT_END] =
        {"eb_grant_end",
         "WITH g AS (UPDATE grants SET status = $2, revoke_reason = $3,"
         " revoked_at = $4, updated_at = $4, superseded_by = $5,"
         " upstream_refresh_token = NULL, upstream_next_at = 0,"
         " lease_owner = NULL, lease_token = NULL, lease_until = 0"
         " WHERE id = $1 RETURNING id, tenant),"
         " t AS (UPDATE tokens SET status = 'revoked',"
         " successor_sealed = NULL, successor_until = 0"
         " WHERE grant_id = $1 AND status <> 'revoked')" AUDIT_FROM_G(
             "$4", "$6", "$7"),
         7,
         {T, T, T, I, T, T, T}},
    [PS_GRANT_RETIRE] = {"eb_grant_retire",
                         "WITH g AS (UPDATE grants SET retired_at = $2,"
                         " updated_at = $2 WHERE id = $1 AND retired_at = 0"
                         " RETURNING id, tenant)" AUDIT_FROM_G(
                             "$2", "'grant.retired'", "$3"),
                         3,
                         {T, I, T}},
    [PS_GRANT_BIND] = {"eb_grant_bind",
                       "WITH g AS (UPDATE grants SET binding_kind = $2,"
                       " binding_value = $3, bound_at = $4, updated_at = $4"
                       " WHERE id = $1 RETURNING id, tenant)" AUDIT_FROM_G(
                           "$4", "'grant.bound'", "$5"),
                       5,
                       {T, T, T, I, T}},
    /* the active grant holding an enrollment, case-insensitively (the
     * grants_active_binding index, migration 4) */
    [PS_GRANT_HOLDER] = {"eb_grant_holder",
                         "SELECT id, idp_issuer, idp_subject FROM grants"
                         " WHERE tenant = $1 AND binding_kind = $2"
                         " AND lower(binding_value) = lower($3)"
                         " AND status = 'active' AND id <> $4"
                         " LIMIT 1 FOR UPDATE",
                         4,
                         {T, T, T, T}},
    /*
     * Renewal write-back, fenced by the claim's lease_token when given
     * ($7): the row changes only while it holds it, and the lease ends.
     * The second column is the row's status before (NULL: no row).
     */
    [PS_GRANT_UPSTREAM] =
        {"eb_grant_upstream",
         "WITH u AS (UPDATE grants SET upstream_renewed_at ="
         " CASE WHEN $2 <> 0 THEN $2 ELSE upstream_renewed_at END,"
         " upstream_next_at = $3, upstream_failing_since = $4,"
         " upstream_refresh_token = coalesce($5, upstream_refresh_token),"
         " updated_at = $6,"
         " lease_owner = CASE WHEN $7::text IS NULL THEN lease_owner END,"
         " lease_token = CASE WHEN $7::text IS NULL THEN lease_token END,"
         " lease_until = CASE WHEN $7::text IS NULL THEN lease_until"
         " ELSE 0 END"
         " WHERE id = $1 AND status = 'active'"
         " AND ($7::text IS NULL OR lease_token = $7) RETURNING id)"
         " SELECT (SELECT count(*) FROM u),"
         " (SELECT status FROM grants WHERE id = $1)",
         7,
         {T, I, I, I, B, I, T}},
    [PS_GRANT_DUE] = {"eb_grant_due",
                      "SELECT " GRANT_COLS ", upstream_next_at, lease_until"
                      " FROM grants"
                      " WHERE" DUE_WHERE
                      " ORDER BY upstream_next_at, id LIMIT $3",
                      3,
                      {T, I, I}},
    /* grant_list_due with a lease: claimed by postponement, no owner */
    [PS_GRANT_DUE_LEASE] =
        {"eb_grant_due_lease",
         "WITH c AS (UPDATE grants g SET upstream_next_at = $2 + $4"
         " FROM (SELECT id, upstream_next_at AS was,"
         " lease_until AS was_until FROM grants"
         " WHERE" DUE_WHERE " ORDER BY upstream_next_at, id LIMIT $3"
         " FOR UPDATE SKIP LOCKED) d WHERE g.id = d.id"
         " RETURNING " GRANT_COLS_G ", d.was, d.was_until)"
         " SELECT " GRANT_COLS ", was, was_until FROM c"
         " ORDER BY was, id",
         4,
         {T, I, I, I}},
    /* SCALEOUT 3.7: one statement, concurrent claimers skip each other */
    [PS_GRANT_CLAIM] =
        {"eb_grant_claim",
         "WITH c AS (UPDATE grants g SET upstream_next_at = $2 + $4,"
         " lease_until = $2 + $4, lease_owner = $5,"
         " lease_token = $6 || '-' || g.id"
         " FROM (SELECT id, upstream_next_at AS was,"
         " lease_until AS was_until FROM grants"
         " WHERE" DUE_WHERE " ORDER BY upstream_next_at, id LIMIT $3"
         " FOR UPDATE SKIP LOCKED) d WHERE g.id = d.id"
         " RETURNING " GRANT_COLS_G ", d.was, d.was_until)"
         " SELECT " GRANT_COLS ", was, was_until FROM c"
         " ORDER BY was, id",
         6,
         {T, I, I, I, T, T}},
    [PS_GRANT_SLOT_ADD] = {"eb_grant_slot_add",
                           "INSERT INTO renew_slots (tenant) VALUES ($1)"
                           " ON CONFLICT DO NOTHING",
                           1,
                           {T}},
    [PS_GRANT_SLOT_LOCK] = {"eb_grant_slot_lock",
                            "SELECT tenant FROM renew_slots WHERE tenant = $1"
                            " FOR UPDATE",
                            1,
                            {T}},
    [PS_GRANT_LIVE] = {"eb_grant_live",
                       "SELECT count(*) FROM grants WHERE tenant = $1"
                       " AND lease_until > $2 AND status = 'active'",
                       2,
                       {T, I}},
    [PS_GRANT_RELEASE] = {"eb_grant_release",
                          "UPDATE grants SET lease_owner = NULL,"
                          " lease_token = NULL, lease_until = 0,"
                          " upstream_next_at = CASE WHEN status = 'active'"
                          " AND upstream_next_at <> 0 THEN $3"
                          " ELSE upstream_next_at END"
                          " WHERE id = $1 AND lease_token = $2",
                          3,
                          {T, T, I}},
    [PS_GRANT_COUNT] = {"eb_grant_count",
                        "SELECT count(*) FROM grants"
                        " WHERE ($1::text IS NULL OR tenant = $1)"
                        " AND ($2::text IS NULL OR status = $2)"
                        " AND ($3 = 0 OR upstream_failing_since <> 0)",
                        3,
                        {T, T, I}},

    [PS_TOKEN_INS] = {"eb_token_ins",
                      "INSERT INTO tokens (" TOKEN_COLS ") VALUES ($1, $2, $3,"
                      " $4, $5, $6, $7, $8, 'active', 0, $9, NULL)",
                      9,
                      {T, T, T, T, T, T, I, I, T}},
    [PS_TOKEN_GET] = {"eb_token_get",
                      "SELECT " TOKEN_COLS " FROM tokens WHERE hash = $1",
                      1,
                      {T}},
    [PS_TOKEN_LOCK] = {"eb_token_lock",
                       "SELECT " TOKEN_COLS ", successor_sealed,"
                       " successor_until FROM tokens WHERE hash = $1"
                       " FOR UPDATE",
                       1,
                       {T}},
    /*
     * A rotation's locks in one statement: grant $2, then token $1 (row
     * marks are taken in FROM order, so the grant first, SCALEOUT 3.4),
     * and whether the grant is active. No row when either is missing.
     */
    [PS_TOKEN_GRANT_LOCK] = {"eb_token_grant_lock",
                             "SELECT " TOKEN_COLS_T ", t.successor_sealed,"
                             " t.successor_until, CASE WHEN g.status ="
                             " 'active' THEN 1 ELSE 0 END::int8"
                             " FROM grants g, tokens t WHERE g.id = $2"
                             " AND t.hash = $1 FOR UPDATE OF g, t",
                             2,
                             {T, T}},
    [PS_TOKEN_GRANT_GET] = {"eb_token_grant_get",
                            "SELECT " TOKEN_COLS_T ", " GRANT_COLS_G
                            " FROM tokens t LEFT JOIN grants g"
                            " ON g.id = t.grant_id WHERE t.hash = $1",
                            1,
                            {T}},
    /*
     * A rotation's writes in one statement: the presented token rotated
     * (its successor kept sealed), the sealed successor on its parent
     * wiped ($6, NULL when it has none), the successor inserted ($3,
     * $7-$13) and the access token ($14-$21, none when $14 is NULL).
     */
    [PS_TOKEN_ROTATE_WRITE] =
        {"eb_token_rotate_write",
         "WITH r AS (UPDATE tokens SET status = 'rotated', rotated_at = $2,"
         " replaced_by = $3, successor_sealed = $4, successor_until = $5"
         " WHERE hash = $1), w AS (UPDATE tokens SET successor_sealed = NULL,"
         " successor_until = 0 WHERE hash = $6 AND successor_sealed IS NOT"
         " NULL) INSERT INTO tokens (" TOKEN_COLS ") SELECT * FROM (VALUES"
         " ($3, $7, $8, $9, $10, $11, $12, $13, 'active', 0::int8, $1,"
         " NULL::text), ($14, $15, $16, $17, $18, $19, $20, $21, 'active',"
         " 0::int8, NULL::text, NULL::text)) v WHERE v.column1 IS NOT NULL",
         21,
         {T, I, T, B, I, T, T, T, T, T, T, I, I, T, T, T, T, T, T, I, I}},
    [PS_TOKEN_REVOKE] = {"eb_token_revoke",
                         "UPDATE tokens SET status = 'revoked',"
                         " successor_sealed = NULL, successor_until = 0"
                         " WHERE hash = $1",
                         1,
                         {T}},
    [PS_TOKEN_SWEEP] = {"eb_token_sweep",
                        "DELETE FROM tokens WHERE hash IN (SELECT hash FROM"
                        " tokens WHERE expires_at <> 0 AND expires_at <= $1"
                        " LIMIT $2)",
                        2,
                        {I, I}},
    [PS_TOKEN_SUCC_SWEEP] = {"eb_token_succ_sweep",
                             "UPDATE tokens SET successor_sealed = NULL,"
                             " successor_until = 0 WHERE hash IN (SELECT hash"
                             " FROM tokens WHERE successor_sealed IS NOT NULL"
                             " AND successor_until < $1 LIMIT $2)",
                             2,
                             {I, I}},

    /* one current key per tenant: writers of keys queue on this row */
    [PS_KEY_GUARD_ADD] = {"eb_key_guard_add",
                          "INSERT INTO eb_locks (name, owner, until_at)"
                          " VALUES ('eb.signing-keys', '', 0)"
                          " ON CONFLICT DO NOTHING",
                          0,
                          {0}},
    [PS_KEY_GUARD_LOCK] = {"eb_key_guard_lock",
                           "SELECT name FROM eb_locks"
                           " WHERE name = 'eb.signing-keys' FOR UPDATE",
                           0,
                           {0}},
    /* no row back: a current key of the tenant exists (CONFLICT) */
    [PS_KEY_INS] = {"eb_key_ins",
                    "INSERT INTO signing_keys (" KEY_ICOLS ") SELECT $1, $2,"
                    " $3, $4, $5, $6, $7, $8, $9 WHERE $5 <> 0 OR NOT EXISTS"
                    " (SELECT 1 FROM signing_keys WHERE tenant = $2"
                    " AND retired_at = 0) RETURNING kid",
                    PARAMS(EB_COLUMNS_KEY)},
    [PS_KEY_LIST] = {"eb_key_list",
                     "SELECT " KEY_COLS " FROM signing_keys"
                     " WHERE $1::text IS NULL OR tenant = '' OR tenant = $1"
                     " ORDER BY created_at DESC, kid",
                     1,
                     {T}},
    [PS_KEY_RETIRE] = {"eb_key_retire",
                       "UPDATE signing_keys SET retired_at = $2,"
                       " not_after = $3 WHERE kid = $1",
                       3,
                       {T, I, I}},
    /* the tenant's current key: at most one (migration 7) */
    [PS_KEY_CURRENT] = {"eb_key_current",
                        "SELECT activates_at FROM signing_keys"
                        " WHERE tenant = $1 AND retired_at = 0",
                        1,
                        {T}},
    [PS_KEY_RETIRE_CURRENT] = {"eb_key_retire_current",
                               "UPDATE signing_keys SET retired_at = $2,"
                               " not_after = $3 WHERE tenant = $1"
                               " AND retired_at = 0",
                               3,
                               {T, I, I}},

    /* enrollbridge reseal: pages of sealed tokens in byte order, compare
     * and swap */
    [PS_GRANT_SEALED] = {"eb_grant_sealed",
                         "SELECT " GRANT_COLS " FROM grants"
                         " WHERE upstream_refresh_token IS NOT NULL"
                         " AND id COLLATE \"C\" > $1 COLLATE \"C\""
                         " ORDER BY id COLLATE \"C\" LIMIT $2",
                         2,
                         {T, I}},
    [PS_GRANT_RESEAL] = {"eb_grant_reseal",
                         "UPDATE grants SET upstream_refresh_token = $3"
                         " WHERE id = $1 AND upstream_refresh_token = $2",
                         3,
                         {T, B, B}},
    [PS_GRANT_EXISTS] = {"eb_grant_exists",
                         "SELECT 1 FROM grants WHERE id = $1",
                         1,
                         {T}},
    [PS_KEY_RESEAL] = {"eb_key_reseal",
                       "UPDATE signing_keys SET private_key = $3"
                       " WHERE kid = $1 AND private_key = $2",
                       3,
                       {T, B, B}},
    [PS_KEY_EXISTS] = {"eb_key_exists",
                       "SELECT 1 FROM signing_keys WHERE kid = $1",
                       1,
                       {T}},

    [PS_MAP_PUT] = {"eb_map_put",
                    "INSERT INTO mapping_overrides (" MAP_ICOLS ") VALUES"
                    " ($1, $2, $3, $4, $5, $6)"
                    " ON CONFLICT (tenant, subject) DO UPDATE"
                    " SET managed_apple_id = EXCLUDED.managed_apple_id,"
                    " note = EXCLUDED.note, updated_at = EXCLUDED.updated_at",
                    PARAMS(EB_COLUMNS_MAPPING)},
    [PS_MAP_GET] = {"eb_map_get",
                    "SELECT " MAP_COLS " FROM mapping_overrides"
                    " WHERE tenant = $1 AND subject = $2",
                    2,
                    {T, T}},
    [PS_MAP_DEL] = {"eb_map_del",
                    "DELETE FROM mapping_overrides"
                    " WHERE tenant = $1 AND subject = $2",
                    2,
                    {T, T}},
    [PS_MAP_LIST] = {"eb_map_list",
                     "SELECT " MAP_COLS " FROM mapping_overrides"
                     " WHERE tenant = $1 ORDER BY subject",
                     1,
                     {T}},

    [PS_GRANT_SET_LOGIN] = {"eb_grant_set_login",
                            "UPDATE grants SET idp_login = $2 WHERE id = $1",
                            2,
                            {T, T}},
    /* a person by SCIM userName or externalId (the SCIM migration's
     * grants_idp_* indexes) */
    [PS_GRANT_OF_PERSON] = {"eb_grant_of_person",
                            "SELECT " GRANT_COLS " FROM grants"
                            " WHERE tenant = $1 AND status = 'active'"
                            " AND (idp_login = $2 OR idp_oid = $3"
                            " OR idp_subject = $3)"
                            " ORDER BY created_at DESC, id",
                            3,
                            {T, T, T}},
    [PS_SCIM_INS] = {"eb_scim_ins",
                     "INSERT INTO scim_users (" SCIM_ICOLS ") VALUES"
                     " ($1, $2, $3, $4, $5, $6, 1, $7, $8)",
                     PARAMS(EB_COLUMNS_SCIM_USER)},
    [PS_SCIM_GET] = {"eb_scim_get",
                     "SELECT " SCIM_COLS " FROM scim_users"
                     " WHERE tenant = $1 AND id = $2",
                     2,
                     {T, T}},
    [PS_SCIM_REPLACE] = {"eb_scim_replace",
                         "UPDATE scim_users SET user_name = $3,"
                         " external_id = $4, active = $5, resource = $6,"
                         " version = version + 1, updated_at = $7"
                         " WHERE tenant = $1 AND id = $2"
                         " AND ($8 = 0 OR version = $8)",
                         8,
                         {T, T, T, T, I, T, I, I}},
    [PS_SCIM_DEL] = {"eb_scim_del",
                     "DELETE FROM scim_users WHERE tenant = $1 AND id = $2",
                     2,
                     {T, T}},
    [PS_SCIM_LIST] = {"eb_scim_list",
                      "SELECT " SCIM_COLS " FROM scim_users"
                      " WHERE tenant = $1 ORDER BY created_at, id"
                      " LIMIT $3 OFFSET $2",
                      3,
                      {T, I, I}},
    [PS_SCIM_COUNT] = {"eb_scim_count",
                       "SELECT count(*) FROM scim_users WHERE tenant = $1",
                       1,
                       {T}},
    /* the filters an Entra or Okta client sends, each by its index */
    [PS_SCIM_BY_NAME] = {"eb_scim_by_name",
                         "SELECT " SCIM_COLS " FROM scim_users"
                         " WHERE tenant = $1 AND lower(user_name) = lower($2)"
                         " ORDER BY created_at, id",
                         2,
                         {T, T}},
    [PS_SCIM_BY_EXT] = {"eb_scim_by_ext",
                        "SELECT " SCIM_COLS " FROM scim_users"
                        " WHERE tenant = $1 AND external_id = $2"
                        " ORDER BY created_at, id",
                        2,
                        {T, T}},

    /* SCALEOUT 3.10: a row back means owner holds the lease */
    [PS_LOCK_TRY] = {"eb_lock_try",
                     "INSERT INTO eb_locks (name, owner, until_at)"
                     " VALUES ($1, $2, $3 + $4) ON CONFLICT (name) DO UPDATE"
                     " SET owner = EXCLUDED.owner,"
                     " until_at = EXCLUDED.until_at"
                     " WHERE eb_locks.owner = EXCLUDED.owner"
                     " OR eb_locks.until_at <= $3 RETURNING owner",
                     4,
                     {T, T, I, I}},
    [PS_LOCK_RELEASE] = {"eb_lock_release",
                         "DELETE FROM eb_locks WHERE name = $1"
                         " AND owner = $2",
                         2,
                         {T, T}},

    [PS_MIG_RECORD] = {"eb_mig_record",
                       "INSERT INTO schema_migrations (version, name,"
                       " applied_at) VALUES ($1, $2, $3)",
                       3,
                       {I, T, I}},
    [PS_MIG_RECORD_COMPAT] = {"eb_mig_record_compat",
                              "INSERT INTO schema_migrations (version, name,"
                              " applied_at, compat) VALUES ($1, $2, $3, $4)",
                              4,
                              {I, T, I, I}},
};
