/*
 * The OpenID Connect relying party: provider metadata and JWKS caches shared
 * by every tenant of the process, the authorization request (code flow,
 * PKCE S256, state, nonce), the code exchange, strict ID-token validation,
 * and upstream refresh for the silent renewal.
 *
 * Calls that talk to the IdP block: make them from a work-queue thread
 * (core/workq.h), never from an HTTP server thread.
 */
#ifndef EB_OIDC_H
#define EB_OIDC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/config.h"
#include "identity/identity.h"

struct eb_oidc;
struct eb_metrics;
struct eb_clock;

enum eb_oidc_errkind {
	EB_OIDC_OK = 0,
	EB_OIDC_E_UNAVAILABLE, /* IdP unreachable, timeout, 5xx: try later
	                          (502/503 + Retry-After) */
	EB_OIDC_E_PROTOCOL, /* IdP answered nonsense: malformed JSON, too large,
	                       missing fields (502) */
	EB_OIDC_E_TOKEN, /* ID token failed validation: never a login (502 page,
	                    logged loudly) */
	EB_OIDC_E_DENIED,   /* the IdP says no: invalid_grant, access_denied,
	                       disabled user */
	EB_OIDC_E_POLICY,   /* a provider rule refused the person (hd,
	                       email_verified, tid): 403 */
	EB_OIDC_E_INTERNAL, /* out of memory, ... */
};

struct eb_oidc_error {
	enum eb_oidc_errkind kind;
	char code[64]; /* short stable name for metrics and tests ("wrong_iss",
	                  "alg_not_allowed", ...) */
	char reason[256]; /* plain English for the log; never a token or secret
	                   */
};

struct eb_oidc_opts {
	int timeout;          /* seconds per upstream call */
	size_t max_bytes;     /* upstream response cap */
	size_t jwks_max_keys; /* a larger JWKS is refused */
	int metadata_ttl; /* seconds before metadata is refreshed (default 3600)
	                   */
	int min_refresh_interval; /* seconds between fetches of one document,
	                             however many unknown kids (default 30) */
	int clock_skew;           /* seconds allowed on iat/exp (default 60) */
	const char *ca_file;      /* extra CA bundle (tests), or NULL */
	struct eb_metrics *metrics; /* may be NULL */
	/* the context's clock (core/clock.h), or NULL: the real time */
	const struct eb_clock *clock;
};

/* Provider metadata (the discovery document), immutable once published. */
struct eb_oidc_meta {
	char *issuer;
	char *authorization_endpoint;
	char *token_endpoint;
	char *jwks_uri;
	char *userinfo_endpoint; /* may be NULL */
	unsigned
	    id_token_algs; /* EB_JOSE_* bits advertised (0: not advertised) */
	int iss_parameter_supported; /* RFC 9207 */
	int64_t fetched_at;
};

/* Secrets of one authorization request, to store with the login flow. */
struct eb_oidc_request {
	char *state;    /* random, URL-safe */
	char *nonce;    /* random, URL-safe */
	char *verifier; /* PKCE code_verifier (43+ chars): a secret */
	char *url; /* the full authorization URL to redirect the browser to */
};

/* What a successful code exchange or refresh yields. */
struct eb_oidc_tokens {
	char *access_token;  /* secret */
	char *refresh_token; /* secret; NULL when the IdP gave none */
	char *id_token;      /* secret */
	int64_t expires_at;  /* of the access token; 0 unknown */
	char *sub;           /* the validated ID token's sub (NULL when no
	                        ID token came back); keep it for refresh */
};

struct eb_oidc *eb_oidc_create(const struct eb_oidc_opts *opts);
void eb_oidc_destroy(struct eb_oidc *o);

/* The issuer's metadata (cached; stale copy served while the IdP is down).
 * *out holds a reference: release with eb_oidc_meta_release. */
int eb_oidc_metadata(struct eb_oidc *o, const char *issuer,
                     const struct eb_oidc_meta **out,
                     struct eb_oidc_error *err);
void eb_oidc_meta_release(struct eb_oidc *o, const struct eb_oidc_meta *m);

/*
 * Build an authorization request for tenant t: response_type=code,
 * client_id, redirect_uri, scope, state, nonce, code_challenge (S256),
 * login_hint (may be NULL) and the provider's own parameters.
 */
int eb_oidc_begin(struct eb_oidc *o, const struct eb_tenant *t,
                  const struct eb_oidc_meta *m, const char *redirect_uri,
                  const char *login_hint, struct eb_oidc_request *out);
/*
 * The state of a request, chosen by the caller from its fresh nonce and
 * verifier: a new string (eb_free), or NULL to fail the request.
 */
typedef char *(*eb_oidc_state_fn)(void *arg, const char *nonce,
                                  const char *verifier);
/*
 * As eb_oidc_begin, with the state from state_fn(arg, ...) (random when
 * state_fn is NULL): a caller that seals what the callback needs into the
 * state stores nothing before the IdP answers.
 */
int eb_oidc_begin_state(struct eb_oidc *o, const struct eb_tenant *t,
                        const struct eb_oidc_meta *m, const char *redirect_uri,
                        const char *login_hint, eb_oidc_state_fn state_fn,
                        void *arg, struct eb_oidc_request *out);
void eb_oidc_request_finish(struct eb_oidc_request *r);

/*
 * Complete a sign-in: check the RFC 9207 iss parameter (iss_param may be
 * NULL; required when the metadata says it is supported), exchange the code
 * (client_secret_basic or _post, no redirects), validate the ID token
 * strictly (alg allow-list and key type before any signature call, iss via
 * the provider, aud, azp, exp, iat, nonce), read userinfo when configured,
 * apply the provider's rules and resolve groups when the tenant needs them.
 * Fills id and tokens (either may be NULL to discard). On EB_OIDC_E_POLICY
 * id is filled too, with the validated person a rule refused, so that the
 * caller can audit who it was; err->reason is then fit to show them.
 */
int eb_oidc_finish(struct eb_oidc *o, const struct eb_tenant *t,
                   const char *redirect_uri, const char *code,
                   const char *verifier, const char *nonce,
                   const char *iss_param, struct eb_identity *id,
                   struct eb_oidc_tokens *tokens, struct eb_oidc_error *err);

/*
 * Validate an ID token against tenant t's issuer and keys (refreshing the
 * JWKS, rate-limited, on an unknown kid). expected_nonce NULL means a
 * refresh-time ID token, where nonce is not required. On success *claims
 * holds the payload (json_decref it).
 */
int eb_oidc_validate_id_token(struct eb_oidc *o, const struct eb_tenant *t,
                              const struct eb_oidc_meta *m,
                              const char *id_token, const char *expected_nonce,
                              int64_t now, json_t **claims,
                              struct eb_oidc_error *err);

/* Renew upstream tokens with a refresh token. E_DENIED means the IdP says
 * the person is no longer valid; E_UNAVAILABLE means try again later. */
int eb_oidc_refresh(struct eb_oidc *o, const struct eb_tenant *t,
                    const char *refresh_token, struct eb_oidc_tokens *out,
                    struct eb_oidc_error *err);

/*
 * Like eb_oidc_refresh, and when the IdP sends a new ID token its sub must
 * equal expected_sub (the sub of the sign-in's ID token, as
 * eb_oidc_tokens.sub gave it; NULL skips that check). A refresh_token of
 * NULL in out means the IdP did not rotate it: keep the old one.
 */
int eb_oidc_refresh_subject(struct eb_oidc *o, const struct eb_tenant *t,
                            const char *refresh_token, const char *expected_sub,
                            struct eb_oidc_tokens *out,
                            struct eb_oidc_error *err);

/*
 * Like eb_oidc_refresh_subject; on success *claims_out (when not NULL)
 * holds the refreshed ID token's validated claims (json_decref them), or
 * NULL when the IdP sent no new ID token.
 */
int eb_oidc_refresh_claims(struct eb_oidc *o, const struct eb_tenant *t,
                           const char *refresh_token, const char *expected_sub,
                           struct eb_oidc_tokens *out, json_t **claims_out,
                           struct eb_oidc_error *err);

/*
 * Who the person is now, for the access re-check at a renewal: claims (a
 * refreshed ID token's, validated; NULL when the IdP sent none) with
 * userinfo read with access_token merged in when the tenant sets
 * use_userinfo, or userinfo alone when claims is NULL (its sub must then be
 * expected_sub, unless NULL); issuer is used when the claims carry no iss.
 * Then the provider's rules and its group resolution (Entra overage through
 * Microsoft Graph with access_token), as at sign-in. Fills id (release with
 * eb_identity_finish) and returns 0; else -1 with err: E_POLICY when a
 * provider rule refuses the person (id filled), E_UNAVAILABLE, E_PROTOCOL
 * or E_TOKEN when the person cannot be checked now (an outage: never an
 * allow).
 */
int eb_oidc_identity(struct eb_oidc *o, const struct eb_tenant *t,
                     const char *issuer, const char *access_token,
                     json_t *claims, const char *expected_sub,
                     struct eb_identity *id, struct eb_oidc_error *err);

void eb_oidc_tokens_finish(struct eb_oidc_tokens *t);

/*
 * Parse and check a discovery document of len bytes fetched for
 * configured_issuer: its issuer must equal it (or be the "{tenantid}"
 * template it fills), the endpoints must be https (http only for loopback
 * hosts), an advertised id_token_signing_alg_values_supported must name an
 * alg we accept. Fills the caller's meta (free with eb_oidc_meta_finish);
 * returns 0, or -1 with err set (E_PROTOCOL) and meta left empty.
 */
int eb_oidc_meta_parse(const char *json, size_t len,
                       const char *configured_issuer, struct eb_oidc_meta *meta,
                       struct eb_oidc_error *err);
/* Free what eb_oidc_meta_parse put in meta (not meta itself). */
void eb_oidc_meta_finish(struct eb_oidc_meta *meta);

/* The PKCE S256 challenge of verifier: base64url(SHA-256(verifier)), 43
 * characters and a NUL into out. Returns 0 or -1. */
int eb_oidc_pkce_challenge(const char *verifier, char out[44]);

/* The short stable name of an error kind ("unavailable", "token", ...). */
const char *eb_oidc_errkind_name(enum eb_oidc_errkind kind);

/* ---- testing (test builds only: EB_TEST_HOOKS) --------------------------- */

#ifdef EB_TEST_HOOKS
/*
 * Install a JWKS document for jwks_uri as if it had just been fetched, so
 * validation tests need no HTTP. Returns 0, or -1 when it does not parse.
 */
int eb_oidc_test_seed_jwks(struct eb_oidc *o, const char *jwks_uri,
                           const char *json, size_t len);
#endif

#endif
