/*
 * Configuration: the main JSON file and one JSON file per tenant (DESIGN.md,
 * "Configuration"). Loading validates strictly (unknown key, wrong type, bad
 * URL, duplicate tenant id or domain...) and reports file, key path and
 * reason. A loaded configuration is immutable and reference counted: a
 * reload builds a new one and swaps it in (see env.h); requests hold a
 * reference for their whole life.
 *
 * Durations are integer seconds. Secrets (client_secret, ...) may be given
 * inline, as "file:PATH" or "env:NAME"; they are resolved at load time and
 * wiped when the configuration is freed.
 */
#ifndef EB_CONFIG_H
#define EB_CONFIG_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "core/trusted.h"

#define EB_CONFIG_SEAL_KEY_LEN  32
#define EB_CONFIG_SEAL_KEYS_MAX 8 /* a ring also holds state_dir/seal.key */

enum eb_enroll_mode { EB_MODE_BYOD = 0, EB_MODE_ADDE = 1 };
enum eb_auth_method { EB_AUTH_AS_WEB = 0, EB_AUTH_OAUTH2 = 1 };
enum eb_client_auth { EB_CLIENT_AUTH_BASIC = 0, EB_CLIENT_AUTH_POST = 1 };

/* Apple model families, as sent in discovery's model-family. */
enum eb_model_family {
	EB_FAMILY_IPHONE,
	EB_FAMILY_IPAD,
	EB_FAMILY_MAC,
	EB_FAMILY_APPLETV,
	EB_FAMILY_WATCH,
	EB_FAMILY_REALITY,
	EB_FAMILY_COUNT
};

struct eb_strlist {
	char **v;
	size_t n;
};

struct eb_kv {
	char *key;
	char *value;
};

struct eb_kvlist {
	struct eb_kv *v;
	size_t n;
};

struct eb_limits {
	size_t max_body_bytes;     /* request bodies; default 1 MiB */
	size_t max_header_bytes;   /* all request headers; default 16 KiB */
	int upstream_timeout;      /* seconds, IdP/MDM calls; default 10 */
	size_t upstream_max_bytes; /* upstream response bodies; default 1 MiB */
	size_t jwks_max_keys;      /* default 64 */
	unsigned max_connections;  /* default 4096 */
	unsigned per_ip_connections; /* default 256; 0: off (behind an LB) */
	int connection_timeout;      /* idle seconds; default 30 */
	unsigned threads;            /* HTTP worker threads; default: cores */
	int head_timeout;            /* seconds for a whole request head; 10 */
	size_t min_body_rate;        /* body bytes/s after head_timeout; 1024 */
	size_t body_budget_bytes;    /* all buffered bodies; default 128 MiB */
	unsigned db_pool; /* PostgreSQL connections; default threads + 8 */
	int db_timeout;   /* seconds, statement and lock timeout; default 5 */
	int renew_lease;  /* seconds a renewal claim is held;
	                     default 4 * upstream_timeout + 60 */
};

struct eb_provider_ops;

struct eb_idp_config {
	char *type; /* a provider type: "oidc", "entra", "google", ... */
	/*
	 * Explicit issuer wins; else the provider's default, if it has one
	 * (providers/entra.c, providers/google.c).
	 */
	char *issuer;
	char *client_id;
	char *client_secret; /* secret */
	struct eb_strlist scopes;
	enum eb_client_auth client_auth;
	int use_userinfo; /* oidc: also read the userinfo endpoint */
	/*
	 * The provider of type (providers/provider.h) and its private state:
	 * the keys only it understands (Entra tenant_id, Google
	 * hosted_domain, ...), read and defaulted by its config_parse.
	 */
	const struct eb_provider_ops *provider;
	void *provider_conf;
	/* extra authorization-request parameters (provider hints) */
	struct eb_kvlist extra_auth_params;
};

struct eb_mapping_config {
	char *claim;                 /* default "email" */
	struct eb_kvlist domain_map; /* IdP domain -> managed domain */
	char *template;              /* "{local}@appleid.{domain}", optional */
	struct eb_strlist managed_domains; /* default: the tenant's domains
	                                      when domain_map is empty too */
};

struct eb_access_config {
	struct eb_strlist require_groups; /* any one of them suffices */
	struct eb_strlist allowed_domains;
	char *deny_message; /* extra text on the refusal page */
};

/*
 * Tenant "branding": shown on every page a person sees (handle/page.h).
 * text_color is picked at load time, white or black, whichever contrasts
 * more with primary_color (WCAG 2 contrast ratio, always at least 4.5).
 */
struct eb_branding {
	char *name;
	char *logo_url;      /* https:// or NULL */
	char *primary_color; /* "#rrggbb"; "#1d1d1f" when not given */
	char text_color[8];  /* "#ffffff" or "#000000" */
	char *support_email; /* NULL when not given, as the next two */
	char *support_url;
	char *support_phone;
};

struct eb_tokens_config {
	int access_ttl;              /* default 3600 */
	int refresh_ttl;             /* default 7776000 */
	int upstream_renew_interval; /* default 3600 */
	int upstream_grace;          /* default 86400 */
	int max_unverified_age; /* a grant without an upstream refresh token
	                           is re-verified by sign-in after this;
	                           default 604800 */
	int renew_concurrency;  /* default 4 */
	int code_ttl;           /* our authorization codes; default 60 */
	int login_ttl;          /* login flows; default 600 */
};

struct eb_oauth2_config {
	char *client_id; /* default "apple-device" */
	char *
	    redirect_uri; /* default
	                     apple-remotemanagement-user-login:/oauth2/redirection
	                   */
	char *scope;      /* default "mdm" */
};

struct eb_mdm_client {
	char *client_id;
	char *client_secret; /* secret */
};

struct eb_mdm_config {
	char *upstream;     /* base URL the proxy forwards to; optional */
	char *profile_url;  /* profile source: fetched from the MDM ... */
	char *profile_file; /* ... or read from a mobileconfig file */
	char *audience;     /* default {public_url}/t/{T}/mdm */
	struct eb_mdm_client *clients;
	size_t nclients;
	int allow_unauthenticated_device_channel;
	/* where that channel may go: path remainders under /t/{T}/mdm/,
	 * each "path" or "path?query", matched exactly; empty: the
	 * defaults in proxy.c */
	struct eb_strlist device_channel_paths;
	int use_proxy; /* point ServerURL/CheckInURL at our proxy; default 1
	                  when upstream set */
	char *signing_cert; /* profile-signing certificate (PEM path) */
	char *signing_key;  /* its key (PEM path); secret */
	char *device_ca; /* Apple device CA bundle to verify MachineInfo signers
	                  */
	/* "claims": IdP claim names snapshotted into the grant at sign-in,
	 * then copied into its access tokens (under "idp") and into the
	 * identity headers the proxy and the profile fetch send */
	struct eb_strlist claims;
};

struct eb_esso_config {
	long app_store_id;
	struct eb_strlist associated_domains;
	int enable_direct_downloads;
	char *profile_file;
	struct eb_strlist developer_app_ids; /* developer mode document */
};

struct eb_pemkey;       /* jose/pemkey.h */
struct eb_tenant_route; /* below */

/* "apple_business": answering GetToken (com.apple.maid) check-ins. */
struct eb_apple_business_config {
	char *server_uuid;     /* the JWT's iss, lower-case UUID */
	struct eb_pemkey *key; /* RS256 (RSA) or ES256 (P-256) */
};

/*
 * "scim": the tenant's SCIM 2.0 endpoint (/t/{T}/scim/v2), which a
 * provisioning client (Entra, Okta) calls with this bearer token.
 */
struct eb_scim_config {
	char *token; /* secret */
	size_t token_len;
};

/*
 * Tenant on_access_lost: when the IdP says a person is gone or disabled,
 * their grants are revoked (REAUTH: the device gets 401 and the challenge)
 * or retired (UNENROLL: 403 com.apple.unrecognized.device, it unenrolls).
 */
enum eb_on_access_lost {
	EB_ON_ACCESS_LOST_REAUTH = 0,
	EB_ON_ACCESS_LOST_UNENROLL = 1,
};

/* The operating systems restrictions.min_os_version names. */
enum eb_os {
	EB_OS_IOS,
	EB_OS_IPADOS,
	EB_OS_MACOS,
	EB_OS_VISIONOS,
	EB_OS_COUNT
};

/*
 * Tenant "restrictions": which devices may enroll (checked at the
 * enrollment POST, on the MachineInfo) and how many per person (checked
 * at the end of sign-in).
 */
struct eb_restrictions {
	long max_devices_per_user;         /* active grants; 0: no limit */
	char *min_os_version[EB_OS_COUNT]; /* "17.0"; NULL: no minimum */
	unsigned families; /* bit (1 << enum eb_model_family); 0: any */
};

struct eb_tenant {
	char *id;
	char *file; /* the file it was loaded from, for messages */
	struct eb_strlist domains; /* lower-case */
	enum eb_enroll_mode default_mode;
	signed char by_family[EB_FAMILY_COUNT]; /* -1: default_mode */
	enum eb_auth_method auth_method;
	/* what a person losing access does to their devices' grants */
	enum eb_on_access_lost on_access_lost;
	struct eb_idp_config idp;
	struct eb_mapping_config mapping;
	struct eb_access_config access;
	struct eb_tokens_config tokens;
	struct eb_oauth2_config oauth2;
	struct eb_mdm_config mdm;
	struct eb_esso_config *esso; /* NULL when not configured */
	/* NULL when not configured */
	struct eb_apple_business_config *apple_business;
	struct eb_restrictions restrictions;
	/* "routes", in order: the first that matches a person at sign-in
	 * overrides enrollment, mdm and esso for their grant */
	struct eb_tenant_route *routes;
	size_t nroutes;
	/* in a route's view (struct eb_tenant_route): the route's name; NULL in
	 * the tenant itself */
	const char *route;
	struct eb_scim_config *scim;  /* NULL when not configured */
	struct eb_branding *branding; /* NULL when not configured */
	/* derived at load time */
	char *base_url; /* {public_url}/t/{id}/enroll */
	char
	    *disco_body[2]; /* discovery JSON, indexed by enum eb_enroll_mode */
	size_t disco_len[2];
};

/* Which of a tenant's sections a route overrides. */
#define EB_ROUTE_ENROLLMENT 0x01
#define EB_ROUTE_MDM        0x02
#define EB_ROUTE_ESSO       0x04

/*
 * One entry of a tenant's "routes": who it matches (any of groups, and all
 * of claims: a string claim equal to the value, or an array claim holding
 * it; an empty match takes everyone) and what it overrides. view is the
 * tenant as that route's people see it: a shallow copy of the tenant with
 * the overridden sections replaced, read wherever a tenant is (profile,
 * proxy upstream, ESSO). Its pointers are borrowed (from the tenant, or
 * from mdm and esso here); only the route's own fields are freed. A route's
 * mdm takes audience, clients, the unauthenticated device channel and
 * device_ca from the tenant (they apply before a person is known).
 */
struct eb_tenant_route {
	char *name; /* [A-Za-z0-9_-], unique in its tenant */
	struct eb_strlist groups;
	struct eb_kvlist claims;
	unsigned overrides;          /* EB_ROUTE_* */
	struct eb_mdm_config mdm;    /* with EB_ROUTE_MDM: owned */
	struct eb_esso_config *esso; /* with EB_ROUTE_ESSO: owned */
	struct eb_tenant view;
};

/* One "listen" address. */
struct eb_listen {
	char *host; /* an IP address (an IPv6 one without brackets) */
	uint16_t port;
};

/* The most addresses in "listen". */
#define EB_CONFIG_MAX_LISTEN 16

struct eb_config {
	char *file; /* main file path */
	/* "listen": a string or a list of them; the first is also in
	 * listen_host/listen_port (listen_host points into listen[0]) */
	struct eb_listen *listen;
	size_t nlisten;
	char *listen_host;
	uint16_t listen_port;
	/* "admin_listen": the private listener (/metrics, /healthz,
	 * /readyz, the admin API); NULL when absent */
	char *admin_listen_host;
	uint16_t admin_listen_port;
	/* "admin_token": the admin API's bearer token (a secret
	 * reference); NULL: the admin API is off */
	char *admin_token;
	/* "audit_retention": seconds an audit event is kept */
	int64_t audit_retention;
	/* "audit_stream": "stdout", an absolute path to append JSON lines
	 * to, or NULL */
	char *audit_stream;
	char *public_url; /* no trailing slash */
	char *database;   /* default {state_dir}/enrollbridge.db; or a DSN */
	int database_pg;  /* database is a PostgreSQL DSN (secret) */
	/* "database_notify": NOTIFY on invalidations (default true); false
	 * leaves the other replicas to the heartbeat poll */
	int database_notify;
	/* "replica_id": this process in leases, logs and application_name;
	 * NULL: eb_config_replica_id() makes one */
	char *replica_id;
	/* "database_migrate": opening the store applies pending migrations
	 * (default true); false leaves them to `enrollbridge migrate` */
	int database_migrate;
	char *state_dir; /* default "state" beside the main file */
	/* "seal_keys": decoded keys, the first seals and all open (NULL and
	 * 0 when absent: state_dir/seal.key alone, as before) */
	uint8_t (*seal_keys)[EB_CONFIG_SEAL_KEY_LEN];
	size_t nseal_keys;
	char *tenants_dir; /* default "tenants" beside the main file */
	char *tls_cert;
	char *tls_key; /* secret path */
	/* "tls": {"min_version": "1.2"|"1.3", "priorities": GnuTLS string};
	 * NULL: the defaults (http/tls.h) */
	char *tls_min_version;
	char *tls_priorities;
	struct eb_limits limits;
	int log_json;   /* "log": {"format": "json"|"text"} */
	int log_level;  /* "log": {"level": ...} */
	int access_log; /* "log": {"access": true} */
	/* "log": {"personal_data": true}; false: accounts, logins, user ids
	 * and emails logged as keyed hashes (eb_log_pd) */
	int log_personal;
	/* peers whose X-Forwarded-For / Forwarded name the client */
	struct eb_trusted trusted_proxies;
	/* SHA-256 (hex) of the files' bytes as read: main, then each tenant
	 * file by name in load order (enrollbridge_config_info) */
	char sha256[65];
	struct eb_tenant **tenants;
	size_t ntenants;
	/* private: reference count, see eb_config_ref/unref */
	int refs;
};

/* Why a load failed: file, JSON key path ("tenants/x.json", "idp.issuer"),
 * reason. */
struct eb_config_error {
	char file[512];
	char key[256];
	char reason[512];
};

/*
 * Load and validate the main file at path and every "*.json" tenant file in
 * its tenants_dir (relative paths are relative to the main file's folder).
 * Returns a configuration with one reference, or NULL with *err filled.
 */
/*
 * Write every key the main and tenant files accept, one "FILE\tKEY.PATH"
 * line each (FILE is "main" or "tenant"; "[]" stands for a list's items):
 * `enrollbridge config-keys` (config_keys.c). 0, or -1 on a write error.
 */
int eb_config_keys_write(FILE *fp);
struct eb_config *eb_config_load(const char *path, struct eb_config_error *err);
/* Take / drop a reference; the last unref frees (and wipes secrets). */
struct eb_config *eb_config_ref(struct eb_config *cfg);
void eb_config_unref(struct eb_config *cfg);

/* The tenant with this id, or NULL. */
const struct eb_tenant *eb_config_tenant(const struct eb_config *cfg,
                                         const char *id);
/* The tenant serving this (lower-case, no trailing dot) domain, or NULL. */
const struct eb_tenant *eb_config_tenant_by_domain(const struct eb_config *cfg,
                                                   const char *domain);
/* Enrollment mode for a model family string (NULL or unknown: default). */
enum eb_enroll_mode eb_tenant_mode(const struct eb_tenant *t,
                                   const char *model_family);
/*
 * The one enrollment-mode rule (discovery and the enrollment POST both
 * use it, so that the profile's EnrollmentMode matches what discovery
 * announced): the tenant's mode for the device's model family
 * (enrollment.by_model_family, else enrollment.default). Discovery knows
 * the family from its model-family parameter, the POST from the
 * MachineInfo's PRODUCT (signed, always present). An OS older than the
 * first that sends model-family (iOS/iPadOS 17, macOS 14) was answered
 * the default at discovery, so a MachineInfo whose OS_VERSION (os_version,
 * NULL at discovery) is older gets the default too.
 */
enum eb_enroll_mode eb_tenant_mode_device(const struct eb_tenant *t,
                                          const char *model_family,
                                          const char *os_version);
/*
 * The tenant as the grant of route name sees it: t itself when name is
 * NULL or "" (no route), else that route's view. NULL when t has no route
 * of that name any more (the configuration changed since sign-in): the
 * caller refuses the request (fail closed), it never falls back to t.
 */
const struct eb_tenant *eb_tenant_route_view(const struct eb_tenant *t,
                                             const char *name);
/* "BYOD"/"ADDE" and "mdm-byod"/"mdm-adde". */
const char *eb_mode_name(enum eb_enroll_mode m);
const char *eb_mode_version(enum eb_enroll_mode m);
/* Parse a model-family string; -1 when unknown. */
int eb_model_family_parse(const char *s);
/* "iOS", "iPadOS", "macOS", "visionOS" (enum eb_os); NULL when out of range. */
const char *eb_os_name(int os);
/*
 * The operating system of a model family (enum eb_model_family): the OS
 * restrictions.min_os_version names for it, or -1 (AppleTV, Watch).
 */
int eb_family_os(int family);
/*
 * Compare two OS versions numerically, component by component ("17.10" >
 * "17.9", "17" == "17.0"); text after the numbers ("17.0 (a)") is ignored.
 * Returns <0, 0, >0; -2 when either does not start with a number.
 */
int eb_os_version_cmp(const char *a, const char *b);
/* 1 when s is a clean version for the configuration: 1 to 4 numbers of at
 * most 5 digits separated by dots ("17", "17.0", "14.6.1"). */
int eb_os_version_valid(const char *s);

/*
 * 1 when s names a PostgreSQL database rather than an SQLite file: it
 * starts with "postgresql://" or "postgres://", or it is a libpq key=value
 * string whose first key is one libpq knows ("host=", "dbname=", ...).
 */
int eb_config_dsn_is_pg(const char *s);
/*
 * The replica id: cfg's replica_id, or one made once per process from the
 * host name, the pid and 4 random hex digits ("host:1234:9f3a").
 */
const char *eb_config_replica_id(const struct eb_config *cfg);

/*
 * Resolve a secret reference: "file:PATH" (contents, one trailing newline
 * dropped), "env:NAME", or the literal. Returns a fresh string or NULL with
 * reason filled (never containing the secret).
 */
char *eb_config_secret(const char *ref, const char *base_dir, char *reason,
                       size_t reasonlen);
/*
 * Decode one resolved seal key of len bytes: 32 raw bytes, or base64 or
 * base64url of 32 bytes. 0, or -1 with *why set (never quoting s).
 */
int eb_config_seal_key_decode(const char *s, size_t len,
                              uint8_t out[EB_CONFIG_SEAL_KEY_LEN],
                              const char **why);

#endif
