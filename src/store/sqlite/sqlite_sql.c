/*
 * The SQLite backend's statements: one table indexed by enum
 * eb_sq_stmt_id, each prepared once per connection and cached
 * (sqlite_conn.c).
 */
#include "store/sqlite/sqlite_int.h"

/*
 * The records' column lists and their inserts, from store/columns.h. An
 * insert names the BOUND columns, bound in list order (eb_sq_bind_row), and
 * the FIXED ones with their constant, leaving the AUTO ones to the
 * database. Every list item comes with its separator before it, so the
 * lists start with rowid: NULL, that is SQLite's choice, as when left out
 * (no table is WITHOUT ROWID).
 */
#define SQ_ICOL(C, column, field, kind, write) SQ_ICOL_##write(#column)
#define SQ_ICOL_BOUND(name)                    ", " name
#define SQ_ICOL_FIXED(sql)                     SQ_ICOL_BOUND /* (name) follows */
#define SQ_ICOL_AUTO(name)
#define SQ_IVAL(C, column, field, kind, write) SQ_IVAL_##write
#define SQ_IVAL_BOUND                          ", ?"
#define SQ_IVAL_FIXED(sql)                     ", " sql
#define SQ_IVAL_AUTO
#define INSERT(table, list)                                                    \
	"INSERT INTO " table                                                   \
	" (rowid" list(SQ_ICOL, , ) ") VALUES (NULL" list(SQ_IVAL, , ) ")"

#define AUDIT_COLS EB_COLUMNS_SQL(EB_COLUMNS_AUDIT)
#define FLOW_COLS  EB_COLUMNS_SQL(EB_COLUMNS_FLOW)
#define CODE_COLS  EB_COLUMNS_SQL(EB_COLUMNS_CODE)
#define GRANT_COLS EB_COLUMNS_SQL(EB_COLUMNS_GRANT)
#define TOKEN_COLS EB_COLUMNS_SQL(EB_COLUMNS_TOKEN)
#define KEY_COLS   EB_COLUMNS_SQL(EB_COLUMNS_KEY)
#define MAP_COLS   EB_COLUMNS_SQL(EB_COLUMNS_MAPPING)
#define SCIM_COLS  EB_COLUMNS_SQL(EB_COLUMNS_SCIM_USER)
/* The same qualified, for the token-and-grant join. */
#define GRANT_COLS_G EB_COLUMNS_QSQL(EB_COLUMNS_GRANT, "g.")
#define TOKEN_COLS_T EB_COLUMNS_QSQL(EB_COLUMNS_TOKEN, "t.")

/* A renewal outcome (struct eb_store_upstream), ?2-?6. */
#define UPSTREAM_SET                                                           \
	"upstream_renewed_at = CASE WHEN ?2 != 0 THEN ?2"                      \
	" ELSE upstream_renewed_at END,"                                       \
	" upstream_next_at = ?3, upstream_failing_since = ?4,"                 \
	" upstream_refresh_token = CASE WHEN ?5 IS NOT NULL"                   \
	" THEN ?5 ELSE upstream_refresh_token END, updated_at = ?6"

const char *const eb_sq_sql[ST__COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_PING] = "SELECT count(*) FROM schema_migrations",
    [ST_VERSION] = "SELECT coalesce(max(version), 0) FROM schema_migrations",
    [ST_AUDIT_ADD] = INSERT("audit_events", EB_COLUMNS_AUDIT),
    [ST_AUDIT_LIST] = "SELECT " AUDIT_COLS " FROM audit_events"
                      " WHERE ?1 IS NULL OR tenant = ?1"
                      " ORDER BY id DESC LIMIT ?2",
    [ST_AUDIT_QUERY] =
        "SELECT " AUDIT_COLS " FROM audit_events"
        " WHERE (?1 IS NULL OR tenant = ?1)"
        " AND (?2 IS NULL OR event = ?2 OR (substr(?2, -1) = '.'"
        " AND substr(event, 1, length(?2)) = ?2))"
        " AND ts >= ?3 AND id > ?4"
        " ORDER BY CASE WHEN ?6 <> 0 THEN id END ASC, id DESC LIMIT ?5",
    [ST_AUDIT_PRUNE] = "DELETE FROM audit_events WHERE id IN (SELECT id FROM"
                       " audit_events WHERE ts < ?1 ORDER BY id LIMIT ?2)",
    [ST_FLOW_INS] = INSERT("login_flows", EB_COLUMNS_FLOW),
    [ST_FLOW_DEL] = "DELETE FROM login_flows WHERE id = ?",
    [ST_FLOW_BY_ID] = "SELECT " FLOW_COLS " FROM login_flows WHERE id = ?",
    [ST_FLOW_BY_STATE] = "SELECT " FLOW_COLS " FROM login_flows"
                         " WHERE upstream_state = ?",
    [ST_FLOW_SWEEP] = "DELETE FROM login_flows WHERE expires_at <= ?",
    [ST_CODE_INS] = INSERT("auth_codes", EB_COLUMNS_CODE),
    [ST_CODE_GET] = "SELECT " CODE_COLS " FROM auth_codes WHERE hash = ?",
    [ST_CODE_USE] = "UPDATE auth_codes SET used_at = ?2 WHERE hash = ?1",
    [ST_CODE_SWEEP] = "DELETE FROM auth_codes WHERE expires_at <= ?",
    [ST_GRANT_INS] = INSERT("grants", EB_COLUMNS_GRANT),
    [ST_GRANT_GET] = "SELECT " GRANT_COLS " FROM grants WHERE id = ?",
    [ST_GRANT_STATE] = "SELECT status, tenant, binding_kind, binding_value"
                       " FROM grants WHERE id = ?",
    [ST_GRANT_LIST] = "SELECT " GRANT_COLS " FROM grants"
                      " WHERE (?1 IS NULL OR tenant = ?1)"
                      " AND (?2 IS NULL OR status = ?2)"
                      " AND (?3 IS NULL OR managed_apple_id = ?3)"
                      " AND (?5 IS NULL OR binding_value = ?5)"
                      " AND (?6 = 0 OR retired_at <> 0)"
                      " ORDER BY created_at DESC, id LIMIT ?4",
    [ST_GRANT_END] = "UPDATE grants SET status = ?2, revoke_reason = ?3,"
                     " revoked_at = ?4, updated_at = ?4, superseded_by = ?5,"
                     " upstream_refresh_token = NULL, upstream_next_at = 0,"
                     " lease_owner = NULL, lease_token = NULL,"
                     " lease_until = 0 WHERE id = ?1",
    [ST_GRANT_RETIRE] = "UPDATE grants SET retired_at = ?2, updated_at = ?2"
                        " WHERE id = ?1 AND retired_at = 0",
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
    [ST_GRANT_LEASE_GET] = "SELECT lease_token, status FROM grants"
                           " WHERE id = ?",
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
    [ST_TOKEN_INS] = INSERT("tokens", EB_COLUMNS_TOKEN),
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
    [ST_KEY_INS] = INSERT("signing_keys", EB_COLUMNS_KEY),
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
    [ST_MAP_PUT] = INSERT(
        "mapping_overrides",
        EB_COLUMNS_MAPPING) " ON CONFLICT (tenant, subject) DO UPDATE"
                            " SET managed_apple_id = excluded.managed_apple_id,"
                            " note = excluded.note, updated_at = "
                            "excluded.updated_at",
    [ST_MAP_GET] = "SELECT " MAP_COLS " FROM mapping_overrides"
                   " WHERE tenant = ? AND subject = ?",
    [ST_MAP_DEL] = "DELETE FROM mapping_overrides"
                   " WHERE tenant = ? AND subject = ?",
    [ST_MAP_LIST] = "SELECT " MAP_COLS " FROM mapping_overrides"
                    " WHERE tenant = ? ORDER BY subject",
    [ST_GRANT_SET_LOGIN] = "UPDATE grants SET idp_login = ?2 WHERE id = ?1",
    /* a person by SCIM userName or externalId, each through its index
     * (the SCIM migration's grants_idp_*) */
    [ST_GRANT_OF_PERSON] = "SELECT " GRANT_COLS " FROM grants"
                           " WHERE tenant = ?1 AND status = 'active'"
                           " AND idp_login = ?2 UNION"
                           " SELECT " GRANT_COLS " FROM grants"
                           " WHERE tenant = ?1 AND status = 'active'"
                           " AND idp_oid = ?3 UNION"
                           " SELECT " GRANT_COLS " FROM grants"
                           " WHERE tenant = ?1 AND status = 'active'"
                           " AND idp_subject = ?3"
                           " ORDER BY created_at DESC, id",
    [ST_SCIM_INS] = INSERT("scim_users", EB_COLUMNS_SCIM_USER),
    [ST_SCIM_GET] = "SELECT " SCIM_COLS " FROM scim_users"
                    " WHERE tenant = ?1 AND id = ?2",
    [ST_SCIM_REPLACE] = "UPDATE scim_users SET user_name = ?3,"
                        " external_id = ?4, active = ?5, resource = ?6,"
                        " version = version + 1, updated_at = ?7"
                        " WHERE tenant = ?1 AND id = ?2"
                        " AND (?8 = 0 OR version = ?8)",
    [ST_SCIM_DEL] = "DELETE FROM scim_users WHERE tenant = ?1 AND id = ?2",
    [ST_SCIM_LIST] = "SELECT " SCIM_COLS " FROM scim_users"
                     " WHERE tenant = ?1 ORDER BY created_at, id"
                     " LIMIT ?3 OFFSET ?2",
    [ST_SCIM_COUNT] = "SELECT count(*) FROM scim_users WHERE tenant = ?1",
    /* the filters an Entra or Okta client sends, each by its index */
    [ST_SCIM_BY_NAME] = "SELECT " SCIM_COLS " FROM scim_users"
                        " WHERE tenant = ?1 AND lower(user_name) = lower(?2)"
                        " ORDER BY created_at, id",
    [ST_SCIM_BY_EXT] = "SELECT " SCIM_COLS " FROM scim_users"
                       " WHERE tenant = ?1 AND external_id = ?2"
                       " ORDER BY created_at, id",
};
