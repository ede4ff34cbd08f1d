/*
 * Our own tokens (DESIGN.md): the signer that holds the ES256 signing keys,
 * the RFC 9068 access tokens devices present to the MDM, and the one check
 * every protected endpoint (enroll, MDM proxy, introspection) applies to a
 * presented bearer.
 *
 * Keys live in the store (signing_keys), private halves sealed with the
 * state_dir seal key. The first start generates one; `enrollbridge keys
 * rotate` adds a new one and retires the old, which stays in the JWKS until
 * every token it signed has expired; a running server reloads the key set
 * on its own (eb_signer_refresh, called periodically). All signing goes
 * through this small interface so that it could move into a separate
 * process later.
 */
#ifndef EB_TOKEN_H
#define EB_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/config.h"
#include "store/store.h"

struct eb_store;
struct eb_store_key;
struct eb_signer;
struct eb_seal_ring;

/* Longest bearer token we look at (bytes). */
#define EB_TOKEN_MAX_LEN 8192

/* ---- signer ---- */

/*
 * Open the signer over store: load the keys, generating a first one
 * (active at once) when there is no current key; when another process
 * stored one first, that one is used. max_token_ttl is how long a retired key
 * must stay published (the longest token lifetime of any tenant).
 */
struct eb_signer *eb_signer_open(struct eb_store *store,
                                 const uint8_t seal_key[32],
                                 int64_t max_token_ttl, char *err,
                                 size_t errlen);
/* The same with a seal key ring (jose/seal.h): new keys are sealed under
 * its first key and stored keys open under any of its keys. The signer
 * keeps its own copy of the ring. */
struct eb_signer *eb_signer_open_ring(struct eb_store *store,
                                      const struct eb_seal_ring *ring,
                                      int64_t max_token_ttl, char *err,
                                      size_t errlen);
void eb_signer_close(struct eb_signer *s);
/* Reload the key set from the store when it changed (cheap when not). */
int eb_signer_refresh(struct eb_signer *s);
/*
 * Generate a new key and make it the current one in one step (CLI): it is
 * published at once and signs from activate_in seconds on (0: at once);
 * the previous current key signs until then and stays published for
 * max_token_ttl plus a margin after. Fails (err says so) when another
 * rotation got there first or is still pending (its key not active yet).
 * eb_signer_rotate is the same with one seal key and activate_in 0.
 */
int eb_signer_rotate(struct eb_store *store, const uint8_t seal_key[32],
                     int64_t max_token_ttl, char *kid_out, size_t kidlen,
                     char *err, size_t errlen);
int eb_signer_rotate_ring(struct eb_store *store,
                          const struct eb_seal_ring *ring,
                          int64_t max_token_ttl, int64_t activate_in,
                          char *kid_out, size_t kidlen, char *err,
                          size_t errlen);
/* When the current signing key began to sign (seconds since the epoch), or
 * 0 when there is none (enrollbridge_signing_key_age_seconds). */
int64_t eb_signer_current_since(struct eb_signer *s);
/* The public JWKS document ({"keys":[...]}): current, not yet active and
 * still-valid retired keys. Returns a fresh string (eb_free). */
char *eb_signer_jwks(struct eb_signer *s, size_t *lenp);
/* Sign claims with the current key; typ e.g. "at+jwt". Fresh string. */
char *eb_signer_sign(struct eb_signer *s, const char *typ, json_t *claims);
/* Verify one of our own tokens (signature by a published key, typ); on
 * success *claims holds the payload (shared and read-only: never modify
 * it). Expiry is the caller's to check. A token verified before under the
 * same key set is answered from a cache without a signature call. */
int eb_signer_verify(struct eb_signer *s, const char *token, const char *typ,
                     json_t **claims);
/* The same for the len bytes at token (at most EB_TOKEN_MAX_LEN), given
 * their SHA-256 (sha256, which must be exactly that: it keys the cache),
 * for the bearer check, which needs that hash for the store too and so
 * computes it once. */
int eb_signer_verify_hashed(struct eb_signer *s, const char *token, size_t len,
                            const unsigned char sha256[32], const char *typ,
                            json_t **claims);

/* The kid of the key signing now, copied to out; 0, or -1 when it does
 * not fit. */
int eb_signer_current_kid(struct eb_signer *s, char *out, size_t outlen);
/* How long a retired key must stay published for cfg: the longest
 * access_ttl or refresh_ttl of any tenant (web tokens live as long as
 * their grant), in seconds. */
int64_t eb_signer_max_ttl(const struct eb_config *cfg);
/* 1 when the sealed private half of store row k opens under seal_key (the
 * signer trusts only such keys), else 0. For `keys list`. */
int eb_signer_key_usable(const uint8_t seal_key[32],
                         const struct eb_store_key *k);
int eb_signer_key_usable_ring(const struct eb_seal_ring *ring,
                              const struct eb_store_key *k);

/* ---- access tokens ---- */

/* What a grant-bound access token says (DESIGN.md, RFC 9068). */
struct eb_access_claims {
	const char *grant_id;
	const char *sub; /* the Managed Apple Account, or a stable subject */
	const char *managed_apple_id;
	const char *enrollment_mode; /* "BYOD" | "ADDE" */
	const char *client_id;
	const char *scope; /* may be NULL */
	/* the grant's extra JSON (grant/issue.h) or NULL: its "route" and
	 * "idp" (the mdm.claims snapshot) are copied into the token */
	const char *grant_extra;
	int64_t iat;
	int64_t exp;
};

/*
 * Mint an access token for tenant t (iss {public_url}/t/{T}, aud the
 * tenant's mdm audience, a random jti) and record its hash in the store
 * (kind access, or web for apple-as-web). Returns the token
 * (eb_free_secret_str).
 */
char *eb_token_issue(struct eb_signer *s, struct eb_store *store,
                     const struct eb_config *cfg, const struct eb_tenant *t,
                     const struct eb_access_claims *c, int kind);

/*
 * An access token minted but not yet stored: the signed token, and its
 * store row (row's pointers point into m and the claims), for a caller
 * that stores it inside its own transaction (the refresh rotation).
 */
struct eb_token_minted {
	char *token; /* eb_free_secret_str'd by eb_token_minted_finish */
	char *jti;
	char hash[EB_STORE_HASH_HEXLEN + 1];
	struct eb_store_token row;
};

/* eb_token_issue without the store: 0, or -1 (nothing to finish). The
 * claims c must outlive m->row. */
int eb_token_mint(struct eb_signer *s, const struct eb_config *cfg,
                  const struct eb_tenant *t, const struct eb_access_claims *c,
                  int kind, struct eb_token_minted *m);
void eb_token_minted_finish(struct eb_token_minted *m);

/* Why a presented bearer was refused. */
enum eb_bearer_result {
	EB_BEARER_OK = 0,
	EB_BEARER_MISSING,   /* no Authorization: Bearer */
	EB_BEARER_MALFORMED, /* not one of our tokens */
	EB_BEARER_EXPIRED,
	EB_BEARER_REVOKED, /* token or grant revoked, grant superseded/expired
	                    */
	EB_BEARER_UNKNOWN, /* well signed but unknown to the store */
	EB_BEARER_WRONG_TENANT,
	EB_BEARER_WRONG_BINDING, /* bound to another enrollment */
	EB_BEARER_ERROR,         /* store failure: 503, not 401 */
};

/* The strings point into one block (mem_) that eb_bearer_finish frees:
 * read them, never free or take them. */
struct eb_bearer {
	const char *grant_id;
	const char *managed_apple_id;
	const char *enrollment_mode;
	const char *client_id;
	const char *binding_kind, *binding_value; /* enrollment binding */
	const char *jti;
	int64_t exp;
	json_t
	    *claims; /* the verified payload (introspection); finish drops it */
	char *mem_;  /* the strings above */
};

/*
 * Check a bearer presented to tenant t: our signature, typ at+jwt, iss,
 * aud, exp, then the store: the token's hash known and active, its grant
 * active. Fills b on EB_BEARER_OK (eb_bearer_finish it either way).
 * Binding is the caller's check (it knows the enrollment).
 */
int eb_bearer_check(struct eb_signer *s, struct eb_store *store,
                    const struct eb_config *cfg, const struct eb_tenant *t,
                    const char *token, int64_t now, struct eb_bearer *b);
/*
 * The grant a token of ours names, when its signature verifies and it was
 * issued by tenant t, whatever its expiry or state: used to tie a device's
 * re-authentication to the grant it replaces. A fresh string, or NULL.
 */
char *eb_bearer_grant_hint(struct eb_signer *s, const struct eb_config *cfg,
                           const struct eb_tenant *t, const char *token);
/* The token of an "Authorization: Bearer X" header value, or NULL. */
const char *eb_bearer_from_header(const char *authorization);
const char *eb_bearer_result_name(int r);
void eb_bearer_finish(struct eb_bearer *b);

#endif
