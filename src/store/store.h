/*
 * The storage interface: everything enrollbridge keeps between requests
 * (login flows, authorization codes, grants, tokens by hash, signing keys,
 * mapping overrides, audit events) behind one ops table, so that another
 * backend can be added without touching callers. Callers use the
 * eb_store_* functions below; they dispatch through the handle's ops. The
 * SQLite backend (store/sqlite/) is the default.
 *
 * Conventions for every function here:
 * - Times are int64 unix seconds; where "now" matters the caller passes it,
 *   so tests control time. An expiry of 0 means "never".
 * - Return values are enum eb_store_rc: 0 on success, a negative code
 *   otherwise. EB_STORE_ERROR is a backend failure (I/O, busy, out of
 *   memory), already logged; the other codes are answers callers act on.
 * - Records passed in are only read; strings in them may be NULL where the
 *   column is optional. Records handed out are filled into caller memory
 *   whose members the store allocated: release them with the matching
 *   eb_store_*_finish(), which wipes secrets, frees, and zeroes the record
 *   (finishing a zeroed record is a no-op). On failure nothing is handed out
 *   and the out record is left zeroed, so finishing it anyway is safe.
 * - Tokens and codes are only ever stored as hashes: callers pass the
 *   lower-case hex SHA-256 of the value (eb_store_hash_token). Secrets that
 *   must stay usable (upstream refresh tokens, PKCE verifiers, private keys,
 *   a rotated refresh token's successor during the grace window) arrive as
 *   ciphertext blobs sealed by the caller.
 * - Every multi-step write is one atomic transaction. Grant changes record
 *   their own audit event in the same transaction.
 * - A handle may be used from any number of threads at once.
 */
#ifndef EB_STORE_H
#define EB_STORE_H

#include <stddef.h>
#include <stdint.h>

struct eb_store;
struct eb_config;

enum eb_store_rc {
	EB_STORE_OK = 0,
	EB_STORE_ERROR = -1,     /* backend failure, logged */
	EB_STORE_NOT_FOUND = -2, /* no such record (or a reference to none) */
	EB_STORE_EXPIRED = -3,   /* the record exists but has expired */
	EB_STORE_REPLAY = -4,    /* authorization code used twice */
	EB_STORE_REUSE = -5,     /* rotated refresh token used again */
	EB_STORE_REVOKED = -6,   /* token revoked or its grant not active */
	EB_STORE_CONFLICT = -7,  /* duplicate key, or a state that forbids it */
	EB_STORE_MISMATCH = -8,  /* code presented by another client/redirect */
	EB_STORE_RETRY = -9,     /* rotated refresh token presented again within
	                            the grace window: same successor handed back */
	EB_STORE_TAKEN = -10, /* enrollment bound to another person's grant */
	EB_STORE_LOST = -11,  /* renewal lease lost (expired or taken over):
	                         the caller's result is dropped */
};

/* A short constant description of a return code, for logs. */
const char *eb_store_strerror(int rc);

/* Lower-case hex SHA-256 of a token value is how tokens are keyed. */
#define EB_STORE_HASH_HEXLEN 64
/* out = hex SHA-256 of len bytes at tok, NUL-terminated; 0 or -1. */
int eb_store_hash_token(const void *tok, size_t len,
                        char out[EB_STORE_HASH_HEXLEN + 1]);

/* ---- records ---------------------------------------------------------- */

struct eb_store_audit {
	int64_t id; /* set by the store */
	int64_t ts;
	char *tenant;
	char *event;   /* "access.allow", "grant.revoked", ... */
	char *subject; /* who or what it is about (grant id, login...) */
	char *detail;  /* JSON text or NULL */
};

struct eb_store_audit_list {
	struct eb_store_audit *v;
	size_t n;
};

/* Which events eb_store_audit_query returns. */
struct eb_store_audit_filter {
	const char *tenant; /* NULL: all tenants */
	/* NULL: any; an event name ("grant.revoked"), or a prefix when it
	 * ends in '.' ("grant." takes every grant event) */
	const char *event;
	int64_t since;    /* ts >= since; 0: any */
	int64_t after_id; /* only events with id > after_id; 0: any */
	/* 1: oldest first (a reader following the log with after_id);
	 * 0: newest first */
	int oldest_first;
	size_t limit; /* 0 or over 1000: 1000 */
};

enum eb_store_flow_kind {
	EB_STORE_FLOW_APPLE_AS_WEB = 0,
	EB_STORE_FLOW_OAUTH2_AUTHORIZE = 1,
};

/* Short-lived, single-use server-side login state. */
struct eb_store_flow {
	char *id; /* opaque random, chosen by the caller */
	char *tenant;
	int kind; /* enum eb_store_flow_kind */
	int64_t created;
	int64_t expires;
	char *user_identifier; /* as typed on the device */
	char *enrollment_mode; /* "BYOD" | "ADDE" | NULL */
	char *model_family;
	/* MachineInfo */
	char *product, *version, *language, *os_version, *udid, *serial;
	/* upstream OIDC request; the state is unique among live flows */
	char *upstream_state;
	char *upstream_nonce;
	uint8_t *pkce_verifier; /* sealed or hashed by the caller */
	size_t pkce_verifier_len;
	char *browser_binding; /* hash of the binding cookie */
	/* the device's OAuth 2 authorization request (apple-oauth2) */
	char *client_id, *redirect_uri, *device_state, *scope;
	char *extra; /* JSON text for later needs, or NULL */
	/* its RFC 7636 S256 code_challenge, or NULL (devices send none) */
	char *code_challenge;
};

enum eb_store_flow_key {
	EB_STORE_FLOW_BY_ID = 0,
	EB_STORE_FLOW_BY_STATE = 1, /* upstream_state */
};

/* Our OAuth 2 authorization code, by hash. */
struct eb_store_code {
	char *hash;
	char *tenant;
	char *grant_id; /* the grant the code redeems to */
	char *client_id;
	char *redirect_uri;
	char *scope;
	int64_t created;
	int64_t expires;
	int64_t used_at; /* 0 while unused */
	/* RFC 7636 S256 challenge the code_verifier must match, or NULL */
	char *code_challenge;
};

enum eb_store_grant_status {
	EB_STORE_GRANT_ACTIVE = 0,
	EB_STORE_GRANT_REVOKED = 1,
	EB_STORE_GRANT_EXPIRED = 2,
	EB_STORE_GRANT_SUPERSEDED = 3,
};

struct eb_store_grant {
	char *id;
	char *tenant;
	int status;        /* enum eb_store_grant_status */
	char *auth_method; /* "apple-as-web" | "apple-oauth2" */
	char *client_id;   /* device OAuth 2 client, when any */
	char *managed_apple_id;
	char *user_identifier; /* as typed on the device */
	char *idp_issuer, *idp_subject, *idp_tid, *idp_oid;
	char *enrollment_mode; /* "BYOD" | "ADDE" */
	/* enrollment binding, set at the first check-in */
	char *binding_kind; /* "EnrollmentID" | "UDID" | NULL */
	char *binding_value;
	int64_t bound_at;
	int64_t created, updated, expires;
	/* upstream IdP renewal bookkeeping */
	uint8_t *upstream_refresh_token; /* sealed by the caller */
	size_t upstream_refresh_token_len;
	int64_t upstream_renewed_at;    /* last successful renewal */
	int64_t upstream_next_at;       /* next renewal due */
	int64_t upstream_failing_since; /* 0 while the IdP answers */
	int64_t revoked_at;
	char *revoke_reason;
	/* when `grants retire` ended it for unenrollment; 0 otherwise */
	int64_t retired_at;
	char *superseded_by;
	char *extra; /* JSON text (claims snapshot...) or NULL */
	/*
	 * Renewal claim (eb_store_grant_claim_due): who holds it, its fence
	 * (new random text per claim) and until when. NULL, NULL, 0 when
	 * unclaimed or released.
	 */
	char *lease_owner;
	char *lease_token;
	int64_t lease_until;
	/*
	 * The person's IdP login at sign-in, ASCII lower-case
	 * (preferred_username, else upn, else email), or NULL: what a SCIM
	 * userName is matched to.
	 */
	char *idp_login;
};

struct eb_store_grant_list {
	struct eb_store_grant *v;
	size_t n;
};

/* Which grants eb_store_grant_list returns, newest first. */
struct eb_store_grant_filter {
	const char *tenant; /* NULL: all tenants */
	int status;         /* enum eb_store_grant_status, or -1: any */
	const char *managed_apple_id; /* NULL: any */
	/* bound to this enrollment (EnrollmentID or UDID, as the device
	 * sends it; the index matches it exactly); NULL: any */
	const char *binding_value;
	int retired_only; /* 1: only grants retired (retired_at set) */
	size_t limit;     /* 0: no limit */
};

/* Renewal bookkeeping written by eb_store_grant_set_upstream. */
struct eb_store_upstream {
	int64_t renewed_at;           /* 0: leave as is */
	int64_t next_at;              /* always written (0: none due) */
	int64_t failing_since;        /* always written (0: healthy) */
	const uint8_t *refresh_token; /* NULL: leave as is */
	size_t refresh_token_len;
	/*
	 * The fence of the claim the result comes from: the write happens
	 * only while the grant still holds this lease_token (and then clears
	 * the lease); otherwise LOST and nothing changes. NULL: unconditional
	 * (admin tools, tests), the lease is left as is.
	 */
	const char *lease_token;
};

enum eb_store_token_kind {
	EB_STORE_TOKEN_ACCESS = 0,
	EB_STORE_TOKEN_REFRESH = 1,
	EB_STORE_TOKEN_WEB = 2,
};

enum eb_store_token_status {
	EB_STORE_TOKEN_ACTIVE = 0,
	EB_STORE_TOKEN_ROTATED =
	    1, /* refresh token exchanged for a successor */
	EB_STORE_TOKEN_REVOKED = 2,
};

struct eb_store_token {
	char *hash;
	int kind; /* enum eb_store_token_kind */
	char *tenant;
	char *grant_id;
	char *client_id;
	char *jti;
	int64_t created;
	int64_t expires;
	int status; /* enum eb_store_token_status (ACTIVE when put) */
	int64_t rotated_at;
	char *parent_hash; /* the refresh token this one replaced */
	char *replaced_by; /* the refresh token that replaced this one */
	/*
	 * Handed out by eb_store_token_rotate_refresh with EB_STORE_RETRY
	 * only: the successor's value as sealed by the caller at rotation.
	 * The store keeps it on the rotated row until the successor is used
	 * or the grace window ends, then wipes it.
	 */
	uint8_t *successor_sealed;
	size_t successor_sealed_len;
};

struct eb_store_key {
	char *kid;
	char *tenant; /* "" or NULL: shared by all tenants */
	char *alg;    /* "ES256" */
	int64_t created;
	/* no signing before this (published before it is used); 0: at once */
	int64_t activates_at;
	int64_t retired_at;   /* 0 while signing */
	int64_t not_after;    /* drop from the JWKS after this; 0: never */
	char *public_jwk;     /* JSON text */
	uint8_t *private_key; /* sealed by the caller, or NULL */
	size_t private_key_len;
};

struct eb_store_key_list {
	struct eb_store_key *v;
	size_t n;
};

/* Admin override: tenant + IdP identity key -> Managed Apple Account. */
struct eb_store_mapping {
	char *tenant;
	char *subject; /* the caller's identity key: "tid/oid", "iss|sub", login
	                */
	char *managed_apple_id;
	char *note;
	int64_t created, updated;
};

struct eb_store_mapping_list {
	struct eb_store_mapping *v;
	size_t n;
};

/*
 * A SCIM 2.0 User resource (RFC 7643 section 4.1) a provisioning client
 * wrote to a tenant's /scim/v2/Users: the attributes the bridge acts on,
 * and the whole resource as JSON text for reading back.
 */
struct eb_store_scim_user {
	char *tenant;
	char *id;          /* ours, random */
	char *user_name;   /* unique in the tenant, case-insensitively */
	char *external_id; /* the client's id for the person, or NULL */
	int64_t active;    /* 1 or 0 */
	char *resource;    /* JSON text, as last written */
	int64_t version;   /* 1 at creation, one more per replace */
	int64_t created, updated;
};

struct eb_store_scim_user_list {
	struct eb_store_scim_user *v;
	size_t n;
};

/* Which SCIM users eb_store_scim_user_list returns. */
enum eb_store_scim_by {
	EB_STORE_SCIM_ALL = 0,
	EB_STORE_SCIM_USER_NAME = 1,   /* userName eq: case-insensitive */
	EB_STORE_SCIM_EXTERNAL_ID = 2, /* externalId eq: exact */
};

/* ---- the backend interface -------------------------------------------- */

/*
 * How a backend with connections (PostgreSQL) opens; SQLite ignores it.
 * Zero members mean the backend's defaults.
 */
struct eb_store_open_opts {
	unsigned pool;           /* most connections (limits.db_pool) */
	unsigned timeout_ms;     /* statement and lock timeout (db_timeout) */
	const char *application; /* application_name: "enrollbridge/<id>" */
};

/* Called after each migration an open applied (eb_store_open_flags). */
typedef void eb_store_applied_fn(void *arg, int version, const char *name);

/*
 * What a backend implements. be is the backend's own handle, made by open.
 * Every operation has the meaning of the eb_store_* function of the same
 * name below; a NULL operation makes that function fail with
 * EB_STORE_ERROR. tests/unit/test_store.c, test_store_replicas.c (claims,
 * leases, keys under racing replicas) and test_reseal.c are the
 * conformance suites every backend must pass.
 */
struct eb_store_ops {
	const char *name;
	/* On failure: NULL *bep, a clear reason in err (and the log), -1. */
	int (*open)(const char *target, void **bep, char *err, size_t errlen);
	void (*close)(void *be);
	int (*ping)(void *be);
	int (*schema_version)(void *be, int64_t *version);

	int (*audit_add)(void *be, const struct eb_store_audit *ev);
	int (*audit_list)(void *be, const char *tenant, size_t limit,
	                  struct eb_store_audit_list *out);
	int (*audit_query)(void *be, const struct eb_store_audit_filter *f,
	                   struct eb_store_audit_list *out);
	int (*audit_prune)(void *be, int64_t before, size_t *removed);

	int (*flow_put)(void *be, const struct eb_store_flow *f);
	int (*flow_get)(void *be, int by, const char *key, int64_t now,
	                struct eb_store_flow *out);
	int (*flow_take)(void *be, int by, const char *key, int64_t now,
	                 struct eb_store_flow *out);

	int (*code_put)(void *be, const struct eb_store_code *c);
	int (*code_consume)(void *be, const char *hash, const char *client_id,
	                    const char *redirect_uri, int64_t now,
	                    struct eb_store_code *out);

	int (*grant_create)(void *be, const struct eb_store_grant *g);
	int (*grant_get)(void *be, const char *id, struct eb_store_grant *out);
	int (*grant_list)(void *be, const struct eb_store_grant_filter *f,
	                  struct eb_store_grant_list *out);
	int (*grant_set_status)(void *be, const char *id, int status,
	                        const char *reason, int64_t now);
	int (*grant_retire)(void *be, const char *id, const char *reason,
	                    int64_t now);
	int (*grant_supersede)(void *be, const char *old_id, const char *new_id,
	                       int64_t now);
	int (*grant_bind)(void *be, const char *id, const char *kind,
	                  const char *value, int64_t now);
	int (*grant_set_upstream)(void *be, const char *id,
	                          const struct eb_store_upstream *u,
	                          int64_t now);
	int (*grant_list_due)(void *be, const char *tenant, int64_t now,
	                      int64_t lease, size_t limit,
	                      struct eb_store_grant_list *out);

	int (*token_put)(void *be, const struct eb_store_token *t);
	int (*token_get)(void *be, const char *hash,
	                 struct eb_store_token *out);
	/* optional: token_get and grant_get of its grant in one go */
	int (*token_grant_get)(void *be, const char *hash,
	                       struct eb_store_token *tok,
	                       struct eb_store_grant *grant);
	int (*token_rotate)(void *be, const char *old_hash,
	                    const struct eb_store_token *next,
	                    const uint8_t *next_sealed, size_t next_sealed_len,
	                    const struct eb_store_token *access, int64_t now,
	                    int64_t grace, struct eb_store_token *old_out);
	int (*token_revoke)(void *be, const char *hash, int64_t now);

	int (*key_put)(void *be, const struct eb_store_key *k);
	int (*key_list)(void *be, const char *tenant,
	                struct eb_store_key_list *out);
	int (*key_retire)(void *be, const char *kid, int64_t retired_at,
	                  int64_t not_after);

	int (*mapping_put)(void *be, const struct eb_store_mapping *m);
	int (*mapping_get)(void *be, const char *tenant, const char *subject,
	                   struct eb_store_mapping *out);
	int (*mapping_delete)(void *be, const char *tenant,
	                      const char *subject);
	int (*mapping_list)(void *be, const char *tenant,
	                    struct eb_store_mapping_list *out);

	int (*sweep)(void *be, int64_t now, size_t *removed);

	/* optional: open with EB_STORE_OPEN_* flags and opts (NULL:
	 * defaults) (eb_store_open_with) */
	int (*open_flags)(const char *target, int flags,
	                  const struct eb_store_open_opts *opts,
	                  eb_store_applied_fn *applied, void *arg, void **bep,
	                  char *err, size_t errlen);

	/* ---- N replicas (SCALEOUT 3.3); each has the meaning of the
	 * eb_store_* function of the same name ---- */
	int (*grant_claim_due)(void *be, const char *tenant, int64_t now,
	                       int64_t lease, size_t limit, size_t cap,
	                       const char *owner,
	                       struct eb_store_grant_list *out);
	int (*grant_release)(void *be, const char *id, const char *lease_token,
	                     int64_t now);
	int (*grant_count)(void *be, const char *tenant, int status,
	                   int failing_only, int64_t *out);

	/* ---- SCIM provisioning (tenant scim) ---- */
	int (*grant_list_person)(void *be, const char *tenant,
	                         const char *login, const char *oid,
	                         struct eb_store_grant_list *out);
	int (*scim_user_create)(void *be, const struct eb_store_scim_user *u);
	int (*scim_user_get)(void *be, const char *tenant, const char *id,
	                     struct eb_store_scim_user *out);
	int (*scim_user_replace)(void *be, const struct eb_store_scim_user *u);
	int (*scim_user_delete)(void *be, const char *tenant, const char *id);
	/* by ALL: the page and the count; a filter: all its matches,
	 * *total their number (the caller takes the page) */
	int (*scim_user_list)(void *be, const char *tenant, int by,
	                      const char *value, size_t offset, size_t limit,
	                      struct eb_store_scim_user_list *out,
	                      int64_t *total);
	int (*lock_try)(void *be, const char *name, const char *owner,
	                int64_t ttl, int64_t now);
	int (*lock_release)(void *be, const char *name, const char *owner);
	int (*key_rotate)(void *be, const struct eb_store_key *k,
	                  int64_t retire_at, int64_t not_after);
	/* optional: follow other processes' invalidations (eb_store_feed_start)
	 */
	int (*feed_start)(void *be, _Atomic uint64_t *seq,
	                  _Atomic int64_t *alive_ns);
	void (*feed_stop)(void *be);

	/* ---- re-sealing (enrollbridge reseal); each has the meaning of
	 * the eb_store_* function of the same name ---- */
	int (*grant_list_sealed)(void *be, const char *after, size_t limit,
	                         struct eb_store_grant_list *out);
	int (*grant_reseal)(void *be, const char *id, const uint8_t *old,
	                    size_t old_len, const uint8_t *next,
	                    size_t next_len);
	int (*key_reseal)(void *be, const char *kid, const uint8_t *old,
	                  size_t old_len, const uint8_t *next, size_t next_len);
};

/* The SQLite backend (store/sqlite/); target is the database file path. */
extern const struct eb_store_ops eb_store_sqlite_ops;
/* The PostgreSQL backend (store/pg/); target is a libpq DSN (key=value or
 * URI), whose search_path names the schema. */
extern const struct eb_store_ops eb_store_pg_ops;

/*
 * 1 when target names a PostgreSQL database rather than an SQLite file: it
 * starts with "postgresql://" or "postgres://", or it is a libpq key=value
 * string (its first word is "key=" for a key libpq knows, e.g. "host=",
 * "dbname=", "service="). 0 otherwise.
 */
int eb_store_target_is_pg(const char *target);
/* The backend for target: PostgreSQL for a DSN, SQLite otherwise. */
const struct eb_store_ops *eb_store_ops_for(const char *target);

/* ---- lifecycle -------------------------------------------------------- */

/*
 * Open the store at target with backend ops (NULL: SQLite), creating and
 * migrating it as needed. Returns NULL on failure with a clear reason in
 * err (errlen bytes; err may be NULL): a missing parent directory, a
 * database whose schema is newer than this binary and not compatible with
 * it (its migrations' compat), I/O errors.
 */
struct eb_store *eb_store_open(const struct eb_store_ops *ops,
                               const char *target, char *err, size_t errlen);
/*
 * Do not apply migrations (`database_migrate: false`): open only a database
 * whose schema is up to date, or newer but compatible with this binary;
 * refuse one with pending migrations, naming them and `enrollbridge
 * migrate`.
 */
#define EB_STORE_OPEN_NO_MIGRATE 0x1
/*
 * PostgreSQL: invalidations bump the generation row without NOTIFY
 * (`database_notify: false`); other processes' feeds then learn of them
 * by polling that row.
 */
#define EB_STORE_OPEN_NO_NOTIFY 0x2
/*
 * eb_store_open with EB_STORE_OPEN_* flags; applied (may be NULL) is
 * called with arg for each migration applied, in order.
 */
struct eb_store *eb_store_open_flags(const struct eb_store_ops *ops,
                                     const char *target, int flags,
                                     eb_store_applied_fn *applied, void *arg,
                                     char *err, size_t errlen);
/* eb_store_open_flags with opts (may be NULL) for the backend. */
struct eb_store *eb_store_open_with(const struct eb_store_ops *ops,
                                    const char *target, int flags,
                                    const struct eb_store_open_opts *opts,
                                    eb_store_applied_fn *applied, void *arg,
                                    char *err, size_t errlen);
/*
 * Open the store cfg names: its database with the backend for it
 * (eb_store_ops_for), migrated unless database_migrate is false (then
 * EB_STORE_OPEN_NO_MIGRATE), without NOTIFY when database_notify is false,
 * with the pool size, timeout and application name of cfg. As
 * eb_store_open_flags otherwise; what serve and every CLI command open.
 */
struct eb_store *eb_store_open_config(const struct eb_config *cfg, char *err,
                                      size_t errlen);
/*
 * The same for `enrollbridge migrate`: always migrates, and applied (may
 * be NULL) hears of each migration applied.
 */
struct eb_store *eb_store_open_config_migrate(const struct eb_config *cfg,
                                              eb_store_applied_fn *applied,
                                              void *arg, char *err,
                                              size_t errlen);
/*
 * Close the store and every per-thread connection it holds. No other
 * thread may be using it. eb_store_close(NULL) is a no-op.
 */
void eb_store_close(struct eb_store *s);
/* The backend's name ("sqlite"). */
const char *eb_store_backend(const struct eb_store *s);
/* EB_STORE_OK when the store answers (for /readyz). */
int eb_store_ping(struct eb_store *s);
/* The schema version the database is at. */
int eb_store_schema_version(struct eb_store *s, int64_t *version);
/*
 * Delete what has outlived its use: expired flows, codes a day past their
 * expiry, tokens a day past theirs. *removed (may be NULL) counts rows.
 */
int eb_store_sweep(struct eb_store *s, int64_t now, size_t *removed);

/* ---- audit ------------------------------------------------------------ */

/* Append an event (ev->id is ignored; ev->detail must be JSON or NULL). */
int eb_store_audit_add(struct eb_store *s, const struct eb_store_audit *ev);
/* The last limit (1..1000) events of tenant, newest first. */
int eb_store_audit_list(struct eb_store *s, const char *tenant, size_t limit,
                        struct eb_store_audit_list *out);
/* The events f selects (store.h struct eb_store_audit_filter). */
int eb_store_audit_query(struct eb_store *s,
                         const struct eb_store_audit_filter *f,
                         struct eb_store_audit_list *out);
/*
 * Delete the events older than before (ts < before), in batches each
 * committed on its own; *removed (may be NULL) counts them.
 */
int eb_store_audit_prune(struct eb_store *s, int64_t before, size_t *removed);
void eb_store_audit_finish(struct eb_store_audit *ev);
void eb_store_audit_list_finish(struct eb_store_audit_list *l);

/* ---- login flows ------------------------------------------------------ */

/*
 * Insert a flow, or replace the one with the same id. CONFLICT when another
 * flow holds the same upstream_state.
 */
int eb_store_flow_put(struct eb_store *s, const struct eb_store_flow *f);
/*
 * Read a flow without using it up; by is enum eb_store_flow_key. NOT_FOUND,
 * or EXPIRED (the flow is left for the sweep).
 */
int eb_store_flow_get(struct eb_store *s, int by, const char *key, int64_t now,
                      struct eb_store_flow *out);
/*
 * Read and delete a flow in one transaction: of concurrent takers exactly
 * one gets it. by is enum eb_store_flow_key. An expired flow is deleted and
 * EXPIRED returned (nothing handed out).
 */
int eb_store_flow_take(struct eb_store *s, int by, const char *key, int64_t now,
                       struct eb_store_flow *out);
void eb_store_flow_finish(struct eb_store_flow *f);

/* ---- authorization codes ---------------------------------------------- */

/* Insert a code (c->used_at is ignored). CONFLICT on a duplicate hash;
 * NOT_FOUND when c->grant_id names no grant. */
int eb_store_code_put(struct eb_store *s, const struct eb_store_code *c);
/*
 * Use up a code. OK: *out (may be NULL) is the code. NOT_FOUND: unknown.
 * EXPIRED: too late (now used up). MISMATCH: another client_id or
 * redirect_uri (now used up). REPLAY: it was used before; the grant it
 * redeemed to is revoked in the same transaction (RFC 6749 4.1.2).
 */
int eb_store_code_consume(struct eb_store *s, const char *hash,
                          const char *client_id, const char *redirect_uri,
                          int64_t now, struct eb_store_code *out);
void eb_store_code_finish(struct eb_store_code *c);

/* ---- grants ----------------------------------------------------------- */

/*
 * Insert a grant (status, created and updated as given; audit
 * "grant.created"). CONFLICT on a duplicate id.
 */
int eb_store_grant_create(struct eb_store *s, const struct eb_store_grant *g);
int eb_store_grant_get(struct eb_store *s, const char *id,
                       struct eb_store_grant *out);
int eb_store_grant_list(struct eb_store *s,
                        const struct eb_store_grant_filter *f,
                        struct eb_store_grant_list *out);
/*
 * Move an active grant to status (revoked/expired, with reason) at now:
 * its tokens are revoked, its upstream refresh token erased, its renewal
 * unscheduled (upstream_next_at 0) and its claim, if any, cleared (lease
 * NULL, NULL, 0: an ended grant is nobody's work); audit "grant.<status>". Same
 * status again: OK, nothing changes. A grant that is no longer active never
 * becomes active again: CONFLICT.
 */
int eb_store_grant_set_status(struct eb_store *s, const char *id, int status,
                              const char *reason, int64_t now);
/*
 * End a grant for unenrollment (`grants retire`): an active grant is
 * revoked as eb_store_grant_set_status does, and marked retired_at = now;
 * a revoked grant not yet retired is marked. Audit "grant.retired". Already
 * retired: OK, nothing changes. Superseded or expired: CONFLICT. An
 * invalidation (PostgreSQL bumps the generation row in the transaction).
 */
int eb_store_grant_retire(struct eb_store *s, const char *id,
                          const char *reason, int64_t now);
/*
 * Re-authentication: new_id (active) replaces old_id. An active old grant
 * becomes superseded (superseded_by = new_id, tokens revoked); new_id
 * inherits old_id's enrollment binding when it has none and no other
 * active grant holds that enrollment.
 */
int eb_store_grant_supersede(struct eb_store *s, const char *old_id,
                             const char *new_id, int64_t now);
/*
 * Bind an active grant to the enrollment (kind "EnrollmentID" or "UDID")
 * at its first check-in. Already bound to the same: OK. Bound to another:
 * CONFLICT. Grant not active: REVOKED. One active grant per enrollment
 * (DESIGN "Enrollment binding"), atomically: an active grant of the same
 * person (tenant, IdP issuer and subject) holding the enrollment is
 * superseded by id; one of another person: TAKEN, nothing changes.
 */
int eb_store_grant_bind(struct eb_store *s, const char *id, const char *kind,
                        const char *value, int64_t now);
/*
 * Record a renewal attempt's outcome (see struct eb_store_upstream) on an
 * active grant. Fenced (u->lease_token set): written only while the grant
 * holds that lease_token, and the lease is cleared in the same write;
 * LOST, nothing changed, when the active grant holds another claim or
 * none. Unfenced (NULL): the lease is left as is. NOT_FOUND when the grant
 * is gone or no longer active (an ended grant never gets an upstream token
 * back), fenced or not.
 */
int eb_store_grant_set_upstream(struct eb_store *s, const char *id,
                                const struct eb_store_upstream *u, int64_t now);
/*
 * Active, unexpired grants (of tenant, or all when NULL) whose upstream
 * renewal is due at now (upstream_next_at != 0 and <= now) and that no claim
 * holds (lease_until <= now): the rule eb_grant_lease_claimable of
 * grant/policy.h, which backends check again on every row. Most overdue
 * first, at most limit. With lease > 0 they are claimed: their next renewal
 * moves to now + lease in the same transaction, so concurrent workers never
 * pick the same grant twice.
 */
int eb_store_grant_list_due(struct eb_store *s, const char *tenant, int64_t now,
                            int64_t lease, size_t limit,
                            struct eb_store_grant_list *out);
/*
 * Claim renewal work for owner (SCALEOUT 3.7): the grants of tenant (NULL:
 * all) due at now as eb_store_grant_list_due says (a grant whose claim is
 * still live is not due), most overdue first, at most limit, and, when
 * cap > 0 (tenant required), only as many as keep the tenant's live leases
 * (active grants with lease_until > now, any owner; an ended grant holds
 * none) at most cap fleet-wide (eb_grant_lease_claim_max). lease must be
 * > 0 and owner set (ERROR otherwise). Each claimed grant gets lease_owner =
 * owner, a fresh random lease_token, lease_until = now + lease and its next
 * renewal moved to now + lease, in one transaction: of concurrent claimers
 * (threads or processes) no two get the same grant, and a grant whose lease has
 * run out can be claimed again. The returned grants carry their lease.
 */
int eb_store_grant_claim_due(struct eb_store *s, const char *tenant,
                             int64_t now, int64_t lease, size_t limit,
                             size_t cap, const char *owner,
                             struct eb_store_grant_list *out);
/*
 * Hand a claim back unworked (a stopping replica): when id still holds
 * lease_token, clear the lease and, when the grant is active with a
 * renewal scheduled (upstream_next_at != 0), make it due at now again. OK
 * also when the claim is no longer held or the grant is gone (nothing
 * changes).
 */
int eb_store_grant_release(struct eb_store *s, const char *id,
                           const char *lease_token, int64_t now);
/* How many grants of tenant (NULL: all) have status (-1: any); with
 * failing_only, only those with upstream_failing_since != 0. */
int eb_store_grant_count(struct eb_store *s, const char *tenant, int status,
                         int failing_only, int64_t *out);
void eb_store_grant_finish(struct eb_store_grant *g);
void eb_store_grant_list_finish(struct eb_store_grant_list *l);

/*
 * The active grants of tenant of one person, as a SCIM client names them:
 * those whose idp_login is login (lower-case, as stored: the caller folds
 * it; NULL: none by login), and those whose idp_oid or idp_subject is oid
 * (NULL: none by id), newest first.
 */
int eb_store_grant_list_person(struct eb_store *s, const char *tenant,
                               const char *login, const char *oid,
                               struct eb_store_grant_list *out);

/* ---- tokens ----------------------------------------------------------- */

/* Insert a token by hash (status ACTIVE). NOT_FOUND when the grant is
 * unknown, CONFLICT on a duplicate hash or jti. */
int eb_store_token_put(struct eb_store *s, const struct eb_store_token *t);
/* The token as stored, whatever its status or expiry (caller checks). */
int eb_store_token_get(struct eb_store *s, const char *hash,
                       struct eb_store_token *out);
/*
 * The token as stored (as eb_store_token_get) and the grant its grant_id
 * names, as stored now (as eb_store_grant_get), in one lookup where the
 * backend can. OK when the token exists: grant->id is NULL when its grant
 * does not. The caller finishes both, whatever the result.
 */
int eb_store_token_grant_get(struct eb_store *s, const char *hash,
                             struct eb_store_token *tok,
                             struct eb_store_grant *grant);
/*
 * Refresh-token rotation, one transaction, decided by the shared rule of
 * grant/refresh.h. old_hash must be an active, unexpired refresh
 * token of an active grant: it becomes ROTATED, next (a refresh token of
 * the same grant) and access (optional) are inserted, and next_sealed
 * (next_sealed_len bytes: next's value sealed by the caller, bound to
 * old_hash; may be NULL) is kept on the rotated row until next is used or
 * grace seconds have passed. Presented again within grace seconds of its
 * rotation while next is still unused (a lost response): nothing new is
 * stored, access is inserted, and RETRY returned with old_out's
 * successor_sealed the blob kept at rotation (the caller answers with that
 * same successor). Any other reuse (outside the window, successor already
 * used or revoked, no blob kept): the grant is revoked and REUSE returned.
 * Also NOT_FOUND, EXPIRED, REVOKED (token revoked or grant not active).
 * old_out (may be NULL, but then RETRY cannot be answered) receives the
 * old token on OK, RETRY and REUSE. Of concurrent callers presenting the
 * same token, exactly one rotates.
 */
int eb_store_token_rotate_refresh(struct eb_store *s, const char *old_hash,
                                  const struct eb_store_token *next,
                                  const uint8_t *next_sealed,
                                  size_t next_sealed_len,
                                  const struct eb_store_token *access,
                                  int64_t now, int64_t grace,
                                  struct eb_store_token *old_out);
/* Revoke one token (RFC 7009). NOT_FOUND when unknown. */
int eb_store_token_revoke(struct eb_store *s, const char *hash, int64_t now);
void eb_store_token_finish(struct eb_store_token *t);

/* ---- signing keys ----------------------------------------------------- */

/* Insert a key. CONFLICT on a duplicate kid. */
int eb_store_key_put(struct eb_store *s, const struct eb_store_key *k);
/*
 * Keys usable by tenant (its own and the shared ones; NULL: all keys),
 * newest first, retired ones included (callers drop those past not_after).
 */
int eb_store_key_list(struct eb_store *s, const char *tenant,
                      struct eb_store_key_list *out);
/* Stop signing with kid at retired_at; publish it until not_after. */
int eb_store_key_retire(struct eb_store *s, const char *kid, int64_t retired_at,
                        int64_t not_after);
/*
 * Atomic rotation: in one transaction every current key of k->tenant
 * (retired_at 0) gets retired_at = retire_at (normally k->activates_at) and
 * not_after, and k is inserted as the one current key. CONFLICT, nothing
 * changed, when a concurrent rotation or bootstrap got there first (the
 * store keeps one current key per tenant, index signing_keys_one_current;
 * key_put of a second current key is CONFLICT too), and when the current
 * key is still pending (its activates_at later than k->created): that
 * rotation is under way, and this one would retire its key before it
 * ever signed. A backend with one writer at a time (SQLite) sees two
 * racing rotations one after the other; this rule is what refuses the
 * second there.
 */
int eb_store_key_rotate(struct eb_store *s, const struct eb_store_key *k,
                        int64_t retire_at, int64_t not_after);
void eb_store_key_finish(struct eb_store_key *k);
void eb_store_key_list_finish(struct eb_store_key_list *l);

/* ---- re-sealing (enrollbridge reseal) ---------------------------------- */

/*
 * Moving the sealed secrets to the current seal key (jose/seal.h) while
 * servers keep running: list them in pages, and swap each one only when it
 * is still the value that was read, since a renewal may store a newer
 * upstream refresh token at any moment and must never be undone.
 *
 * eb_store_grant_list_sealed: the grants whose upstream_refresh_token is
 * not NULL, whatever their status, whose id sorts after `after` in byte
 * order (NULL or "": from the first; PostgreSQL: compare and sort with
 * COLLATE "C"), in ascending id order, at most limit (0: no limit), as
 * eb_store_grant_get reads them. Paging: pass the last id of a page as the
 * next after, until a page has fewer than limit grants. Read-only.
 *
 * eb_store_grant_reseal: compare and swap grant id's sealed upstream
 * refresh token. When the stored value is exactly old (old_len bytes, byte
 * for byte), it becomes next (next_len bytes), in one atomic statement
 * (SQLite and PostgreSQL: UPDATE grants SET upstream_refresh_token = next
 * WHERE id = id AND upstream_refresh_token = old), and OK. Nothing else
 * changes: not updated_at, not the renewal fields or the lease, no audit
 * event (the secret is the same, only its sealing differs). CONFLICT when
 * the grant exists but holds another value or none (a renewal or an end
 * came in between): nothing changes, and the caller re-reads and decides
 * again. NOT_FOUND when there is no grant id. old and next must be non-NULL
 * and non-empty (ERROR otherwise). Not a change for the bearer check's
 * cache (the generation is not bumped).
 *
 * eb_store_key_reseal: the same for signing key kid's sealed private_key
 * (UPDATE signing_keys SET private_key = next WHERE kid = kid AND
 * private_key = old): OK, CONFLICT (it holds another value or none),
 * NOT_FOUND (no such kid). The keyset to go through is eb_store_key_list
 * with a NULL tenant.
 */
int eb_store_grant_list_sealed(struct eb_store *s, const char *after,
                               size_t limit, struct eb_store_grant_list *out);
int eb_store_grant_reseal(struct eb_store *s, const char *id,
                          const uint8_t *old, size_t old_len,
                          const uint8_t *next, size_t next_len);
int eb_store_key_reseal(struct eb_store *s, const char *kid, const uint8_t *old,
                        size_t old_len, const uint8_t *next, size_t next_len);

/* ---- named leases (singleton jobs: sweep, gauges) ---------------------- */

/*
 * Take or extend the lease `name` for owner until now + ttl: OK when owner
 * now holds it (it was free, expired, or owner's already), CONFLICT when
 * another owner holds an unexpired lease. A lease held until t has expired
 * at t (as a renewal claim's lease_until). name and owner set and ttl > 0,
 * or ERROR.
 */
int eb_store_lock_try(struct eb_store *s, const char *name, const char *owner,
                      int64_t ttl, int64_t now);
/* Give the lease up when owner holds it; OK either way. */
int eb_store_lock_release(struct eb_store *s, const char *name,
                          const char *owner);

/* ---- mapping overrides ------------------------------------------------ */

/* Insert or replace the override for (tenant, subject). */
int eb_store_mapping_put(struct eb_store *s, const struct eb_store_mapping *m);
int eb_store_mapping_get(struct eb_store *s, const char *tenant,
                         const char *subject, struct eb_store_mapping *out);
int eb_store_mapping_delete(struct eb_store *s, const char *tenant,
                            const char *subject);
/* A tenant's overrides, by subject. */
int eb_store_mapping_list(struct eb_store *s, const char *tenant,
                          struct eb_store_mapping_list *out);
void eb_store_mapping_finish(struct eb_store_mapping *m);
void eb_store_mapping_list_finish(struct eb_store_mapping_list *l);

/* ---- SCIM users --------------------------------------------------------- */

/*
 * Insert u (version 1; u->version is ignored). CONFLICT when the tenant
 * has a user of that userName (any case) or that id.
 */
int eb_store_scim_user_create(struct eb_store *s,
                              const struct eb_store_scim_user *u);
/* The user id of tenant, or NOT_FOUND. */
int eb_store_scim_user_get(struct eb_store *s, const char *tenant,
                           const char *id, struct eb_store_scim_user *out);
/*
 * Replace user u->id of u->tenant: user_name, external_id, active,
 * resource and updated from u, version one more. With u->version non-zero,
 * only while the stored version is u->version (a read-modify-write: on
 * NOT_FOUND the caller reads again). NOT_FOUND, or CONFLICT when another
 * user of the tenant has that userName.
 */
int eb_store_scim_user_replace(struct eb_store *s,
                               const struct eb_store_scim_user *u);
/* Delete user id of tenant: OK or NOT_FOUND. */
int eb_store_scim_user_delete(struct eb_store *s, const char *tenant,
                              const char *id);
/*
 * The users of tenant (by: enum eb_store_scim_by, value its operand),
 * oldest first, offset skipped, at most limit (0: none, only the count),
 * and in *total how many match in all.
 */
int eb_store_scim_user_list(struct eb_store *s, const char *tenant, int by,
                            const char *value, size_t offset, size_t limit,
                            struct eb_store_scim_user_list *out,
                            int64_t *total);
void eb_store_scim_user_finish(struct eb_store_scim_user *u);
void eb_store_scim_user_list_finish(struct eb_store_scim_user_list *l);

/* ---- change tracking -------------------------------------------------- */

/*
 * What a cache of token and grant state (the bearer check's,
 * token/bearer_cache.c) compares to know that nothing it holds can have
 * changed; it may answer from an entry only while the stamp the entry was
 * read under equals the current one. A stamp has two parts:
 * - the generation: process-wide, bumped by every eb_store_* operation
 *   that may change whether a token or a grant is valid or the grant facts
 *   a bearer check hands out, through any handle, whatever its result (a
 *   failure may have come part-way), before the operation returns. Also
 *   bumped by open and close, so that an entry never outlives its handle.
 * - the feed's sequence, when the handle follows a feed (a database
 *   several processes or hosts write, eb_store_feed_start): bumped on every
 *   invalidation another process commits and on every gap in following.
 * - the change file, when the handle has one: a process that writes the
 *   database while others may be caching (the CLI) touches it after each
 *   such change, so that its stat(2) differs. A watching handle (the
 *   server's) learns of the touch from an inotify watch once one is in
 *   place in the calling thread (store/watch.h), at the cost of a read(2)
 *   instead of a path walk: then the stamp holds the file's identity and
 *   a number the thread never repeats (bumped by every batch of events
 *   and every new watch). Such a stamp means something only to the thread
 *   that took it, as the bearer cache's per-thread tables use it.
 * A cache takes the stamp before it reads the store: an entry then never
 * holds data older than its stamp says.
 */
struct eb_store_stamp {
	uint64_t generation;
	uint64_t feed; /* the backend feed's sequence (0 without a feed) */
	int file; /* 1: the change file exists (fields below), 0: it does not */
	int watched; /* 1: from this thread's watch: dev, ino and seq only */
	uint64_t dev, ino, seq;
	int64_t size, mtime_sec, mtime_nsec, ctime_sec, ctime_nsec;
};

/* The process-wide token/grant generation. */
uint64_t eb_store_generation(void);
/*
 * Follow invalidations made by other processes through the backend's feed
 * (PostgreSQL: LISTEN plus a heartbeat poll, SCALEOUT 3.6), when it has
 * one: 1 started, 0 the backend has none (use a change file), -1 failed
 * (logged). With a feed, eb_store_stamp includes its sequence and returns
 * -1 while the feed has not proved itself current within the last second,
 * and s needs no change file (eb_store_set_change_file does nothing).
 * Call it before other threads use s; eb_store_close stops the feed.
 */
int eb_store_feed_start(struct eb_store *s);
/*
 * 1 when s's backend tells other processes of its changes itself, through
 * the database (it has a feed): a process writing through s then needs no
 * change file to announce them (the CLI); 0 otherwise.
 */
int eb_store_backend_has_feed(const struct eb_store *s);
/*
 * Give s a change file (path is copied; NULL: none). With announce, every
 * change made through s then also touches it (eb_store_announce_change):
 * for a process writing under a running server. Without, s only watches it
 * (eb_store_stamp): for the server. Call it before other threads use s.
 * 0, or -1 when out of memory.
 */
int eb_store_set_change_file(struct eb_store *s, const char *path,
                             int announce);
/*
 * The current stamp of s: 0, or -1 when it cannot be relied on: s has a
 * feed that has not proved itself current within the last second (no
 * feed, no cache), or s has neither a feed nor a change file, or the file
 * is not a regular file or cannot be stat'ed for a reason other than its
 * absence. A cache must not answer without one.
 */
int eb_store_stamp(struct eb_store *s, struct eb_store_stamp *out);
/* 1 when a and b are the same stamp, 0 otherwise. */
int eb_store_stamp_equal(const struct eb_store_stamp *a,
                         const struct eb_store_stamp *b);
/*
 * Touch s's change file: create it (0600) when absent, write the next
 * counter value in it, and set its modification time strictly later than
 * it was, so that a watcher's stamp changes even on a coarse clock. No
 * fsync: watchers only need to see it, not a crash to keep it. 0 (also
 * when the file's directory does not exist: then no server has started
 * with it), or -1 (logged).
 */
int eb_store_announce_change(struct eb_store *s);

/* ---- enum names (also the stored text) -------------------------------- */

const char *eb_store_flow_kind_name(int kind);
const char *eb_store_grant_status_name(int status);
const char *eb_store_token_kind_name(int kind);
const char *eb_store_token_status_name(int status);
/* The enum value of a name, or -1. */
int eb_store_grant_status_parse(const char *name);

/*
 * Testing: make the migration list look n entries long (as an older binary
 * would see it); negative restores it. Not for production use.
 */
void eb_store_test_schema_limit(int n);
/*
 * Testing (PostgreSQL): create a fresh schema t_<pid>_<n> on the server
 * dsn names and write to target (len bytes) dsn with that schema as its
 * search_path: 0, or -1 (no server, or target too small).
 */
int eb_store_pg_test_schema(const char *dsn, char *target, size_t len);
/* The schema name a target of eb_store_pg_test_schema names: 0 or -1. */
int eb_store_pg_test_schema_name(const char *target, char *name, size_t len);
/* Drop the schema target names, with everything in it: 0 or -1. */
int eb_store_pg_test_drop(const char *dsn, const char *target);
/* The invalidation generation row (SCALEOUT 3.6) of target: 0 or -1. */
int eb_store_pg_test_generation(const char *target, int64_t *n);

#endif
