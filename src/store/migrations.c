/*
 * The schema of the store, as ordered migrations. A released migration is
 * never edited: change the schema by appending one. Conventions: times are
 * INTEGER unix seconds, NOT NULL DEFAULT 0 where 0 means "not yet"/"never";
 * enums are stored as their names (store.c) and checked; secrets are BLOBs
 * sealed by the caller; tokens and codes are keyed by hex SHA-256; each
 * table that may need more fields later has an `extra` JSON text column.
 * Each migration also has its PostgreSQL text (sql_pg), written out for
 * that dialect (BIGINT times, BYTEA blobs) at the same version: a
 * migration without one makes a PostgreSQL open fail, naming it.
 */
#include "store/migrations.h"

#include <stdatomic.h>

#include "store/store.h"

static const char schema_v1[] =
    /* Every allow/deny and every grant change, append-only. */
    "CREATE TABLE audit_events ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " ts INTEGER NOT NULL,"
    " tenant TEXT NOT NULL,"
    " event TEXT NOT NULL,"
    " subject TEXT,"
    " detail TEXT"
    ");"
    "CREATE INDEX audit_events_tenant ON audit_events(tenant, id);"

    /* Short-lived, single-use login state (apple-as-web, oauth2 authorize). */
    "CREATE TABLE login_flows ("
    " id TEXT PRIMARY KEY,"
    " tenant TEXT NOT NULL,"
    " kind TEXT NOT NULL CHECK (kind IN ('apple-as-web','oauth2-authorize')),"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " user_identifier TEXT,"
    " enrollment_mode TEXT CHECK (enrollment_mode IN ('BYOD','ADDE')),"
    " model_family TEXT,"
    " mi_product TEXT, mi_version TEXT, mi_language TEXT,"
    " mi_os_version TEXT, mi_udid TEXT, mi_serial TEXT,"
    " upstream_state TEXT UNIQUE,"
    " upstream_nonce TEXT,"
    " pkce_verifier BLOB,"
    " browser_binding TEXT,"
    " client_id TEXT, redirect_uri TEXT, device_state TEXT, scope TEXT,"
    " extra TEXT"
    ");"
    "CREATE INDEX login_flows_expires ON login_flows(expires_at);"

    /* One sign-in of one person for one enrollment. */
    "CREATE TABLE grants ("
    " id TEXT PRIMARY KEY,"
    " tenant TEXT NOT NULL,"
    " status TEXT NOT NULL"
    "  CHECK (status IN ('active','revoked','expired','superseded')),"
    " auth_method TEXT,"
    " client_id TEXT,"
    " managed_apple_id TEXT NOT NULL,"
    " user_identifier TEXT,"
    " idp_issuer TEXT, idp_subject TEXT, idp_tid TEXT, idp_oid TEXT,"
    " enrollment_mode TEXT NOT NULL CHECK (enrollment_mode IN ('BYOD','ADDE')),"
    " binding_kind TEXT CHECK (binding_kind IN ('EnrollmentID','UDID')),"
    " binding_value TEXT,"
    " bound_at INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL DEFAULT 0,"
    " upstream_refresh_token BLOB,"
    " upstream_renewed_at INTEGER NOT NULL DEFAULT 0,"
    " upstream_next_at INTEGER NOT NULL DEFAULT 0,"
    " upstream_failing_since INTEGER NOT NULL DEFAULT 0,"
    " revoked_at INTEGER NOT NULL DEFAULT 0,"
    " revoke_reason TEXT,"
    " superseded_by TEXT REFERENCES grants(id) ON DELETE SET NULL,"
    " extra TEXT,"
    " CHECK ((binding_kind IS NULL) = (binding_value IS NULL))"
    ");"
    "CREATE INDEX grants_tenant ON grants(tenant, created_at);"
    "CREATE INDEX grants_due ON grants(upstream_next_at)"
    " WHERE status = 'active' AND upstream_next_at != 0;"
    "CREATE INDEX grants_binding ON grants(tenant, binding_value)"
    " WHERE binding_value IS NOT NULL;"
    "CREATE INDEX grants_subject ON grants(tenant, idp_subject);"
    "CREATE INDEX grants_account ON grants(tenant, managed_apple_id);"

    /* Our OAuth 2 authorization codes, by hash, kept for replay detection. */
    "CREATE TABLE auth_codes ("
    " hash TEXT PRIMARY KEY,"
    " tenant TEXT NOT NULL,"
    " grant_id TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,"
    " client_id TEXT NOT NULL,"
    " redirect_uri TEXT NOT NULL,"
    " scope TEXT,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " used_at INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX auth_codes_grant ON auth_codes(grant_id);"
    "CREATE INDEX auth_codes_expires ON auth_codes(expires_at);"

    /* Tokens we issued, by hash; refresh tokens chained for rotation. */
    "CREATE TABLE tokens ("
    " hash TEXT PRIMARY KEY,"
    " kind TEXT NOT NULL CHECK (kind IN ('access','refresh','web')),"
    " tenant TEXT NOT NULL,"
    " grant_id TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,"
    " client_id TEXT,"
    " jti TEXT,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL DEFAULT 0,"
    " status TEXT NOT NULL CHECK (status IN ('active','rotated','revoked')),"
    " rotated_at INTEGER NOT NULL DEFAULT 0,"
    " parent_hash TEXT,"
    " replaced_by TEXT"
    ");"
    "CREATE INDEX tokens_grant ON tokens(grant_id);"
    "CREATE UNIQUE INDEX tokens_jti ON tokens(jti) WHERE jti IS NOT NULL;"
    "CREATE INDEX tokens_expires ON tokens(expires_at) WHERE expires_at != 0;"

    /* Token-signing keys; the private half sealed by the caller. */
    "CREATE TABLE signing_keys ("
    " kid TEXT PRIMARY KEY,"
    " tenant TEXT NOT NULL DEFAULT '',"
    " alg TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " retired_at INTEGER NOT NULL DEFAULT 0,"
    " not_after INTEGER NOT NULL DEFAULT 0,"
    " public_jwk TEXT NOT NULL,"
    " private_key BLOB"
    ");"
    "CREATE INDEX signing_keys_tenant ON signing_keys(tenant, created_at);"

    /* Admin overrides of the Managed Apple Account mapping. */
    "CREATE TABLE mapping_overrides ("
    " tenant TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " managed_apple_id TEXT NOT NULL,"
    " note TEXT,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY (tenant, subject)"
    ");";

/*
 * The same schema for PostgreSQL, written out (SCALEOUT 2.5): BIGINT times
 * (integer is 32-bit there), BYTEA for blobs, an identity column for audit
 * ids.
 */
static const char schema_v1_pg[] =
    "CREATE TABLE audit_events ("
    " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " ts BIGINT NOT NULL,"
    " tenant TEXT NOT NULL,"
    " event TEXT NOT NULL,"
    " subject TEXT,"
    " detail TEXT"
    ");"
    "CREATE INDEX audit_events_tenant ON audit_events(tenant, id);"
    "CREATE TABLE login_flows ("
    " id TEXT PRIMARY KEY,"
    " tenant TEXT NOT NULL,"
    " kind TEXT NOT NULL CHECK (kind IN ('apple-as-web','oauth2-authorize')),"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " user_identifier TEXT,"
    " enrollment_mode TEXT CHECK (enrollment_mode IN ('BYOD','ADDE')),"
    " model_family TEXT,"
    " mi_product TEXT, mi_version TEXT, mi_language TEXT,"
    " mi_os_version TEXT, mi_udid TEXT, mi_serial TEXT,"
    " upstream_state TEXT UNIQUE,"
    " upstream_nonce TEXT,"
    " pkce_verifier BYTEA,"
    " browser_binding TEXT,"
    " client_id TEXT, redirect_uri TEXT, device_state TEXT, scope TEXT,"
    " extra TEXT"
    ");"
    "CREATE INDEX login_flows_expires ON login_flows(expires_at);"
    "CREATE TABLE grants ("
    " id TEXT PRIMARY KEY,"
    " tenant TEXT NOT NULL,"
    " status TEXT NOT NULL"
    "  CHECK (status IN ('active','revoked','expired','superseded')),"
    " auth_method TEXT,"
    " client_id TEXT,"
    " managed_apple_id TEXT NOT NULL,"
    " user_identifier TEXT,"
    " idp_issuer TEXT, idp_subject TEXT, idp_tid TEXT, idp_oid TEXT,"
    " enrollment_mode TEXT NOT NULL CHECK (enrollment_mode IN ('BYOD','ADDE')),"
    " binding_kind TEXT CHECK (binding_kind IN ('EnrollmentID','UDID')),"
    " binding_value TEXT,"
    " bound_at BIGINT NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL DEFAULT 0,"
    " upstream_refresh_token BYTEA,"
    " upstream_renewed_at BIGINT NOT NULL DEFAULT 0,"
    " upstream_next_at BIGINT NOT NULL DEFAULT 0,"
    " upstream_failing_since BIGINT NOT NULL DEFAULT 0,"
    " revoked_at BIGINT NOT NULL DEFAULT 0,"
    " revoke_reason TEXT,"
    " superseded_by TEXT REFERENCES grants(id) ON DELETE SET NULL,"
    " extra TEXT,"
    " CHECK ((binding_kind IS NULL) = (binding_value IS NULL))"
    ");"
    "CREATE INDEX grants_tenant ON grants(tenant, created_at);"
    "CREATE INDEX grants_due ON grants(upstream_next_at)"
    " WHERE status = 'active' AND upstream_next_at <> 0;"
    "CREATE INDEX grants_binding ON grants(tenant, binding_value)"
    " WHERE binding_value IS NOT NULL;"
    "CREATE INDEX grants_subject ON grants(tenant, idp_subject);"
    "CREATE INDEX grants_account ON grants(tenant, managed_apple_id);"
    "CREATE TABLE auth_codes ("
    " hash TEXT PRIMARY KEY,"
    " tenant TEXT NOT NULL,"
    " grant_id TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,"
    " client_id TEXT NOT NULL,"
    " redirect_uri TEXT NOT NULL,"
    " scope TEXT,"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " used_at BIGINT NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX auth_codes_grant ON auth_codes(grant_id);"
    "CREATE INDEX auth_codes_expires ON auth_codes(expires_at);"
    "CREATE TABLE tokens ("
    " hash TEXT PRIMARY KEY,"
    " kind TEXT NOT NULL CHECK (kind IN ('access','refresh','web')),"
    " tenant TEXT NOT NULL,"
    " grant_id TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,"
    " client_id TEXT,"
    " jti TEXT,"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL DEFAULT 0,"
    " status TEXT NOT NULL CHECK (status IN ('active','rotated','revoked')),"
    " rotated_at BIGINT NOT NULL DEFAULT 0,"
    " parent_hash TEXT,"
    " replaced_by TEXT"
    ");"
    "CREATE INDEX tokens_grant ON tokens(grant_id);"
    "CREATE UNIQUE INDEX tokens_jti ON tokens(jti) WHERE jti IS NOT NULL;"
    "CREATE INDEX tokens_expires ON tokens(expires_at) WHERE expires_at <> 0;"
    "CREATE TABLE signing_keys ("
    " kid TEXT PRIMARY KEY,"
    " tenant TEXT NOT NULL DEFAULT '',"
    " alg TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " retired_at BIGINT NOT NULL DEFAULT 0,"
    " not_after BIGINT NOT NULL DEFAULT 0,"
    " public_jwk TEXT NOT NULL,"
    " private_key BYTEA"
    ");"
    "CREATE INDEX signing_keys_tenant ON signing_keys(tenant, created_at);"
    "CREATE TABLE mapping_overrides ("
    " tenant TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " managed_apple_id TEXT NOT NULL,"
    " note TEXT,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " PRIMARY KEY (tenant, subject)"
    ");";

/*
 * Refresh-token grace window (DESIGN "Refresh tokens, PKCE"): a retry of a
 * just-rotated refresh token gets the same successor back, so the rotated
 * row keeps the successor's value, sealed by the caller, until it is used
 * or the window ends (successor_until; the sweep wipes it after).
 */
static const char schema_v2[] =
    "ALTER TABLE tokens ADD COLUMN successor_sealed BLOB;"
    "ALTER TABLE tokens ADD COLUMN successor_until INTEGER NOT NULL"
    " DEFAULT 0;"
    "CREATE INDEX tokens_successor_until ON tokens(successor_until)"
    " WHERE successor_sealed IS NOT NULL;";
static const char schema_v2_pg[] =
    "ALTER TABLE tokens ADD COLUMN successor_sealed BYTEA;"
    "ALTER TABLE tokens ADD COLUMN successor_until BIGINT NOT NULL"
    " DEFAULT 0;"
    "CREATE INDEX tokens_successor_until ON tokens(successor_until)"
    " WHERE successor_sealed IS NOT NULL;";

/*
 * PKCE at our authorization endpoint (DESIGN "Refresh tokens, PKCE"): the
 * device's S256 code_challenge travels with the login flow to the code.
 */
static const char schema_v3[] =
    "ALTER TABLE login_flows ADD COLUMN code_challenge TEXT;"
    "ALTER TABLE auth_codes ADD COLUMN code_challenge TEXT;";
static const char schema_v3_pg[] =
    "ALTER TABLE login_flows ADD COLUMN code_challenge TEXT;"
    "ALTER TABLE auth_codes ADD COLUMN code_challenge TEXT;";

/*
 * One active grant per enrollment (issue 11, DESIGN "Enrollment
 * binding"). Before this, two active grants could hold the same binding
 * (a second person's check-in naming the first one's enrollment): no one
 * can tell here which of them is the device's own, so every grant of such
 * a pair is revoked, with its tokens, and each device signs in again (the
 * bridge answers 401 with the challenge). Then the store itself refuses a
 * second active holder. Identifiers are compared without regard to ASCII
 * case, as the proxy compares them (an MDM may fold it).
 */
static const char schema_v4[] =
    "CREATE TEMP TABLE eb_dup_binding AS"
    " SELECT g.id AS id FROM grants g"
    " WHERE g.status = 'active' AND g.binding_value IS NOT NULL"
    " AND EXISTS (SELECT 1 FROM grants h WHERE h.id != g.id"
    "  AND h.status = 'active' AND h.tenant = g.tenant"
    "  AND h.binding_kind = g.binding_kind"
    "  AND h.binding_value = g.binding_value COLLATE NOCASE);"
    "UPDATE tokens SET status = 'revoked' WHERE status != 'revoked'"
    " AND grant_id IN (SELECT id FROM eb_dup_binding);"
    "UPDATE grants SET status = 'revoked',"
    " revoke_reason = 'enrollment bound to two grants',"
    " revoked_at = CAST(strftime('%s', 'now') AS INTEGER),"
    " updated_at = CAST(strftime('%s', 'now') AS INTEGER),"
    " upstream_refresh_token = NULL, upstream_next_at = 0"
    " WHERE id IN (SELECT id FROM eb_dup_binding);"
    "DROP TABLE eb_dup_binding;"
    "CREATE UNIQUE INDEX grants_active_binding"
    " ON grants(tenant, binding_kind, binding_value COLLATE NOCASE)"
    " WHERE status = 'active' AND binding_value IS NOT NULL;";
/* PostgreSQL: case-insensitive as lower() (its index, its lookups). */
static const char schema_v4_pg[] =
    "CREATE TEMP TABLE eb_dup_binding ON COMMIT DROP AS"
    " SELECT g.id AS id FROM grants g"
    " WHERE g.status = 'active' AND g.binding_value IS NOT NULL"
    " AND EXISTS (SELECT 1 FROM grants h WHERE h.id <> g.id"
    "  AND h.status = 'active' AND h.tenant = g.tenant"
    "  AND h.binding_kind = g.binding_kind"
    "  AND lower(h.binding_value) = lower(g.binding_value));"
    "UPDATE tokens SET status = 'revoked' WHERE status <> 'revoked'"
    " AND grant_id IN (SELECT id FROM eb_dup_binding);"
    "UPDATE grants SET status = 'revoked',"
    " revoke_reason = 'enrollment bound to two grants',"
    " revoked_at = CAST(extract(epoch FROM now()) AS BIGINT),"
    " updated_at = CAST(extract(epoch FROM now()) AS BIGINT),"
    " upstream_refresh_token = NULL, upstream_next_at = 0"
    " WHERE id IN (SELECT id FROM eb_dup_binding);"
    "DROP TABLE eb_dup_binding;"
    "CREATE UNIQUE INDEX grants_active_binding"
    " ON grants(tenant, binding_kind, lower(binding_value))"
    " WHERE status = 'active' AND binding_value IS NOT NULL;";

/*
 * Rolling upgrades (SCALEOUT 3.11): each migration records its compat, so
 * that a binary one release behind can start on a database a newer one has
 * migrated. Versions 1-4 are additive (columns with defaults, an index that
 * only refuses what was already wrong), so every compat so far is 1.
 */
static const char schema_v5[] =
    "ALTER TABLE schema_migrations ADD COLUMN compat INTEGER NOT NULL"
    " DEFAULT 1;";
static const char schema_v5_pg[] =
    "ALTER TABLE schema_migrations ADD COLUMN compat BIGINT NOT NULL"
    " DEFAULT 1;";

/*
 * N replicas (issue 12, SCALEOUT 3.3-3.10), additive: renewal claims carry
 * an owner, a fence token and an end (a worker whose lease ran out has its
 * write-back refused); signing keys an activation time (published before
 * any replica signs with them); named lease rows for singleton jobs
 * (sweep, gauges); the invalidation generation row the PostgreSQL feed
 * follows; per-tenant lock rows for the fleet-wide renewal cap.
 */
static const char schema_v6[] =
    "ALTER TABLE grants ADD COLUMN lease_owner TEXT;"
    "ALTER TABLE grants ADD COLUMN lease_token TEXT;"
    "ALTER TABLE grants ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX grants_lease ON grants(tenant, lease_until)"
    " WHERE lease_until != 0;"
    "ALTER TABLE signing_keys ADD COLUMN activates_at INTEGER NOT NULL"
    " DEFAULT 0;"
    "CREATE TABLE eb_locks ("
    " name TEXT PRIMARY KEY,"
    " owner TEXT NOT NULL,"
    " until_at INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE eb_generation ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " n INTEGER NOT NULL"
    ");"
    "INSERT INTO eb_generation VALUES (1, 0);"
    "CREATE TABLE renew_slots (tenant TEXT PRIMARY KEY);";
static const char schema_v6_pg[] =
    "ALTER TABLE grants ADD COLUMN lease_owner TEXT;"
    "ALTER TABLE grants ADD COLUMN lease_token TEXT;"
    "ALTER TABLE grants ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;"
    "CREATE INDEX grants_lease ON grants(tenant, lease_until)"
    " WHERE lease_until <> 0;"
    "ALTER TABLE signing_keys ADD COLUMN activates_at BIGINT NOT NULL"
    " DEFAULT 0;"
    "CREATE TABLE IF NOT EXISTS eb_locks ("
    " name TEXT PRIMARY KEY,"
    " owner TEXT NOT NULL,"
    " until_at BIGINT NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE eb_generation ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " n BIGINT NOT NULL"
    ");"
    "INSERT INTO eb_generation VALUES (1, 0);"
    "CREATE TABLE renew_slots (tenant TEXT PRIMARY KEY);";

/*
 * One current signing key per tenant (SCALEOUT 3.8), so that a second
 * bootstrap or a racing rotation is refused (CONFLICT) instead of leaving
 * two keys that both sign. Keys that were current beside a newer one (a
 * standby nothing signed with) are retired now and stay published, as
 * they were (not_after unchanged). "Newest" is the order the signer reads:
 * created_at descending, then kid (byte order: COLLATE "C" on
 * PostgreSQL). Compat 1: an older binary keeps
 * working; only its `keys rotate` (insert before retire) is refused,
 * cleanly, with nothing changed.
 */
static const char schema_v7[] =
    "UPDATE signing_keys SET retired_at = CAST(strftime('%s', 'now') AS"
    " INTEGER) WHERE retired_at = 0 AND EXISTS (SELECT 1 FROM signing_keys n"
    " WHERE n.tenant = signing_keys.tenant AND n.retired_at = 0"
    " AND (n.created_at > signing_keys.created_at"
    " OR (n.created_at = signing_keys.created_at"
    " AND n.kid < signing_keys.kid)));"
    "CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys(tenant)"
    " WHERE retired_at = 0;";
static const char schema_v7_pg[] =
    "UPDATE signing_keys SET retired_at ="
    " CAST(extract(epoch FROM now()) AS BIGINT)"
    " WHERE retired_at = 0 AND EXISTS (SELECT 1 FROM signing_keys n"
    " WHERE n.tenant = signing_keys.tenant AND n.retired_at = 0"
    " AND (n.created_at > signing_keys.created_at"
    " OR (n.created_at = signing_keys.created_at"
    " AND n.kid COLLATE \"C\" < signing_keys.kid COLLATE \"C\")));"
    "CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys(tenant)"
    " WHERE retired_at = 0;";

/*
 * Grants ended for unenrollment (`grants retire`): the proxy answers their
 * device 403 com.apple.unrecognized.device instead of 401. Compat 1: an
 * older binary reads the column as absent and sees a revoked grant.
 */
static const char schema_v8[] =
    "ALTER TABLE grants ADD COLUMN retired_at INTEGER NOT NULL DEFAULT 0;";
static const char schema_v8_pg[] =
    "ALTER TABLE grants ADD COLUMN retired_at BIGINT NOT NULL DEFAULT 0;";

/*
 * Grants the IdP gave no refresh token used to be left unscheduled; they are
 * due now, and the renewer schedules each at its sign-in plus the tenant's
 * tokens.max_unverified_age (or ends it when it is older than that).
 */
static const char schema_v9[] =
    "UPDATE grants SET upstream_next_at = CASE WHEN upstream_renewed_at > 0"
    " THEN upstream_renewed_at ELSE created_at END"
    " WHERE status = 'active' AND upstream_refresh_token IS NULL"
    " AND upstream_next_at = 0;";
static const char schema_v9_pg[] =
    "UPDATE grants SET upstream_next_at = CASE WHEN upstream_renewed_at > 0"
    " THEN upstream_renewed_at ELSE created_at END"
    " WHERE status = 'active' AND upstream_refresh_token IS NULL"
    " AND upstream_next_at = 0;";

/*
 * SCIM 2.0 provisioning (DESIGN "Lifecycle and identity"): the User
 * resources a provisioning client (Entra, Okta) wrote, one table per
 * bridge, unique userName per tenant (case-insensitively, as RFC 7643
 * says of userName); and each grant's IdP login (lower-case
 * preferred_username, upn or email at sign-in), so that a deprovisioned
 * person's grants are found by login or object id through an index.
 * Compat 1: an older binary neither reads nor writes either.
 */
static const char schema_scim[] =
    "ALTER TABLE grants ADD COLUMN idp_login TEXT;"
    "CREATE INDEX grants_idp_login ON grants(tenant, idp_login);"
    "CREATE INDEX grants_idp_oid ON grants(tenant, idp_oid);"
    "CREATE INDEX grants_idp_subject ON grants(tenant, idp_subject);"
    "CREATE TABLE scim_users ("
    " tenant TEXT NOT NULL,"
    " id TEXT NOT NULL,"
    " user_name TEXT NOT NULL,"
    " external_id TEXT,"
    " active INTEGER NOT NULL CHECK (active IN (0, 1)),"
    " resource TEXT NOT NULL,"
    " version INTEGER NOT NULL DEFAULT 1,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY (tenant, id)"
    ");"
    "CREATE UNIQUE INDEX scim_users_name ON scim_users(tenant,"
    " lower(user_name));"
    "CREATE INDEX scim_users_external ON scim_users(tenant, external_id);";
static const char schema_scim_pg[] =
    "ALTER TABLE grants ADD COLUMN idp_login TEXT;"
    "CREATE INDEX grants_idp_login ON grants(tenant, idp_login);"
    "CREATE INDEX grants_idp_oid ON grants(tenant, idp_oid);"
    "CREATE INDEX grants_idp_subject ON grants(tenant, idp_subject);"
    "CREATE TABLE scim_users ("
    " tenant TEXT NOT NULL,"
    " id TEXT NOT NULL,"
    " user_name TEXT NOT NULL,"
    " external_id TEXT,"
    " active BIGINT NOT NULL CHECK (active IN (0, 1)),"
    " resource TEXT NOT NULL,"
    " version BIGINT NOT NULL DEFAULT 1,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " PRIMARY KEY (tenant, id)"
    ");"
    "CREATE UNIQUE INDEX scim_users_name ON scim_users(tenant,"
    " lower(user_name));"
    "CREATE INDEX scim_users_external ON scim_users(tenant, external_id);";

static const struct eb_store_migration migrations[] = {
    {.version = 1,
     .name = "initial schema",
     .sql = schema_v1,
     .sql_pg = schema_v1_pg,
     .compat = 1},
    {.version = 2,
     .name = "refresh successor kept for the grace window",
     .sql = schema_v2,
     .sql_pg = schema_v2_pg,
     .compat = 1},
    {.version = 3,
     .name = "PKCE challenge of a code",
     .sql = schema_v3,
     .sql_pg = schema_v3_pg,
     .compat = 1},
    {.version = 4,
     .name = "one active grant per enrollment",
     .sql = schema_v4,
     .sql_pg = schema_v4_pg,
     .compat = 1},
    {.version = 5,
     .name = "compatibility version of each migration",
     .sql = schema_v5,
     .sql_pg = schema_v5_pg,
     .compat = 1},
    {.version = 6,
     .name = "renewal leases, key activation, lock and generation rows",
     .sql = schema_v6,
     .sql_pg = schema_v6_pg,
     .compat = 1},
    {.version = 7,
     .name = "one current signing key per tenant",
     .sql = schema_v7,
     .sql_pg = schema_v7_pg,
     .compat = 1},
    {.version = 8,
     .name = "grants retired for unenrollment",
     .sql = schema_v8,
     .sql_pg = schema_v8_pg,
     .compat = 1},
    {.version = 9,
     .name = "grants without an upstream refresh token re-verified",
     .sql = schema_v9,
     .sql_pg = schema_v9_pg,
     .compat = 1},
    {.version = 10,
     .name = "SCIM users and the IdP login of grants",
     .sql = schema_scim,
     .sql_pg = schema_scim_pg,
     .compat = 1},
};

/* Test hook (store.h): pretend to know only the first n migrations. */
static atomic_int test_limit = -1;

void
eb_store_test_schema_limit(int n)
{
	atomic_store(&test_limit, n < 0 ? -1 : n);
}

const struct eb_store_migration *
eb_store_migrations(size_t *n)
{
	int lim = atomic_load(&test_limit);

	*n = sizeof(migrations) / sizeof(migrations[0]);
	if (lim >= 0 && (size_t)lim < *n)
		*n = (size_t)lim;
	return migrations;
}
