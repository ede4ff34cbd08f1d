/*
 * Internals shared by the files of src/oidc/: the relying-party context
 * (options, the metadata and JWKS caches under one mutex, a test clock
 * offset), error and metrics helpers, and the one upstream-call wrapper
 * that turns eb_http_fetch() outcomes into stable error codes. Nothing here
 * is for other modules.
 */
#ifndef EB_OIDC_INT_H
#define EB_OIDC_INT_H

#include <pthread.h>
#include <stdint.h>

#include "http/client.h"
#include "jose/jose.h"
#include "oidc/oidc.h"

/* Defaults of struct eb_oidc_opts fields left at zero. */
#define EB_OIDC_DEFAULT_TIMEOUT      10
#define EB_OIDC_DEFAULT_MAX_BYTES    (1024 * 1024)
#define EB_OIDC_DEFAULT_METADATA_TTL 3600
#define EB_OIDC_DEFAULT_MIN_REFRESH  30
#define EB_OIDC_DEFAULT_SKEW         60
#define EB_OIDC_MAX_URL              2048
#define EB_OIDC_MAX_AUTH_URL         8192
#define EB_OIDC_MAX_CACHE_ENTRIES    1024
#define EB_OIDC_JSON_DEPTH           8

/* ID-token algorithms we ever accept (ES512 and anything symmetric never). */
#define EB_OIDC_ALGS_ALLOWED                                                   \
	(EB_JOSE_RS256 | EB_JOSE_RS384 | EB_JOSE_RS512 | EB_JOSE_PS256 |       \
	 EB_JOSE_PS384 | EB_JOSE_PS512 | EB_JOSE_ES256 | EB_JOSE_ES384)

struct eb_oidc_meta_entry;
struct eb_oidc_jwks_entry;

struct eb_oidc {
	struct eb_oidc_opts opts; /* defaults filled; ca_file owned */
	pthread_mutex_t lock;     /* guards both caches */
	pthread_cond_t cond;      /* a fetch finished */
	struct eb_oidc_meta_entry *metas;
	size_t nmetas;
	struct eb_oidc_jwks_entry *jwks;
	size_t njwks;
};

/* Upstream endpoints, as metric labels. */
enum eb_oidc_endpoint {
	EB_OIDC_EP_METADATA,
	EB_OIDC_EP_JWKS,
	EB_OIDC_EP_TOKEN,
	EB_OIDC_EP_USERINFO,
};

/* Fill err (may be NULL) and return -1. */
int eb_oidc_seterr(struct eb_oidc_error *err, enum eb_oidc_errkind kind,
                   const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Seconds on the monotonic clock of opts.clock; o->lock held. */
int64_t eb_oidc_mono_locked(struct eb_oidc *o);

/*
 * Count one upstream call in enrollbridge_idp_requests_total and, when
 * issuer is set, set enrollbridge_idp_up for it (up is 1 or 0; -1 leaves
 * the gauge alone).
 */
void eb_oidc_metric_request(struct eb_oidc *o, const char *tenant,
                            enum eb_oidc_endpoint ep, int ok,
                            const char *issuer, int up);
/* Count one failed sign-in/validation step by error code. */
void eb_oidc_metric_error(struct eb_oidc *o, const char *tenant,
                          const struct eb_oidc_error *err);

/*
 * One upstream call with the context's limits. On a transport failure, or
 * when the body passed the size limit, returns NULL with err filled
 * (E_UNAVAILABLE "idp_timeout"/"idp_unreachable"/"idp_tls", or E_PROTOCOL
 * too_large_code), the request counted as an error and, for a transport
 * failure, issuer (may be NULL) marked down. Otherwise returns
 * the response, whatever its status: the caller judges it and counts it.
 */
struct eb_http_response *
eb_oidc_fetch(struct eb_oidc *o, struct eb_http_options *hopts,
              const char *tenant, const char *issuer, enum eb_oidc_endpoint ep,
              const char *too_large_code, struct eb_oidc_error *err);

/*
 * 1 when url is an absolute https URL with a host, no user info and no
 * fragment, or an http URL whose host is a loopback address (127.0.0.0/8,
 * [::1], localhost).
 */
int eb_oidc_url_ok(const char *url);

/* 1 when iss equals issuer, or fills issuer's "{tenantid}" template with
 * one non-empty path-safe segment. */
int eb_oidc_issuer_matches(const char *issuer, const char *iss);

/* The cached metadata for t's issuer, counting fetches for tenant t. */
int eb_oidc_metadata_for(struct eb_oidc *o, const struct eb_tenant *t,
                         const struct eb_oidc_meta **out,
                         struct eb_oidc_error *err);

/*
 * The key set for jwks_uri, with one reference for the caller (release
 * it). With have (the set the caller just failed to find a kid in) a
 * refresh is tried, rate-limited, and the result may be have again (with a
 * new reference) when no newer set could be had.
 */
struct eb_jose_jwks *eb_oidc_jwks_get(struct eb_oidc *o, const char *tenant,
                                      const char *issuer, const char *jwks_uri,
                                      const struct eb_jose_jwks *have,
                                      struct eb_oidc_error *err);

/* Drop every cached document (eb_oidc_destroy). */
void eb_oidc_meta_cache_clear(struct eb_oidc *o);
void eb_oidc_jwks_cache_clear(struct eb_oidc *o);

/*
 * POST a token request to m's token endpoint: the form pairs kv
 * ({name, value, ..., NULL}) plus t's client authentication (HTTP Basic or
 * in the body), no redirects. On success out holds the tokens (the ID
 * token unvalidated); -1 with err set otherwise (IdP "error" mapped).
 */
int eb_oidc_token_request(struct eb_oidc *o, const struct eb_tenant *t,
                          const struct eb_oidc_meta *m, const char *const *kv,
                          struct eb_oidc_tokens *out,
                          struct eb_oidc_error *err);

#endif
