/*
 * JOSE for enrollbridge: verifying compact JWS/JWTs from identity providers
 * (and our own access tokens) against a JWKS, parsing JWKS documents, and
 * signing our own ES256 tokens. This directory is the only cjose user, and
 * cjose never sees a token before we have checked it: size, three strict
 * base64url parts, a JSON-object header without "crit", an "alg" on the
 * caller's allow-list and a key whose type (and curve) fits that alg. cjose
 * 0.6.2.1 over-reads in cjose_jws_verify() when alg and key type disagree, so
 * these checks are not optional. "none", HS* and RSA1_5 are never accepted.
 *
 * Nothing here logs a token; callers log eb_jose_strerror() of the result
 * and, if they wish, eb_log_fp() of the token.
 */
#ifndef EB_JOSE_H
#define EB_JOSE_H

#include <stddef.h>

#include <jansson.h>

/* Why a JOSE operation failed; eb_jose_strerror() names each one. */
enum eb_jose_err {
	EB_JOSE_OK = 0,
	/* "bad_format": not a strict compact JWS (parts, base64url, JSON) */
	EB_JOSE_ERR_BAD_FORMAT,
	/* "too_large": over the size limit */
	EB_JOSE_ERR_TOO_LARGE,
	/* "bad_header": no string alg, bad kid, or typ not the expected one */
	EB_JOSE_ERR_BAD_HEADER,
	/* "alg_not_allowed": none, HS*, unknown, or not on the allow-list */
	EB_JOSE_ERR_ALG_NOT_ALLOWED,
	/* "crit_header": a "crit" header is present */
	EB_JOSE_ERR_CRIT,
	/* "unknown_kid": no key has that kid (time to refresh the JWKS) */
	EB_JOSE_ERR_UNKNOWN_KID,
	/* "no_key": no kid, and not exactly one key fits the alg */
	EB_JOSE_ERR_NO_KEY,
	/* "kty_mismatch": the key's type, curve or alg does not fit the alg */
	EB_JOSE_ERR_KTY_MISMATCH,
	/* "bad_signature" */
	EB_JOSE_ERR_BAD_SIGNATURE,
	/* "bad_payload": payload not a JSON object within our limits */
	EB_JOSE_ERR_BAD_PAYLOAD,
	/* "bad_jwks": not a JWKS document */
	EB_JOSE_ERR_BAD_JWKS,
	/* "too_many_keys": the JWKS lists more keys than the caller allows */
	EB_JOSE_ERR_TOO_MANY_KEYS,
	/* "bad_key": an unusable JWK given to eb_jose_key_import */
	EB_JOSE_ERR_BAD_KEY,
	/* "nomem" */
	EB_JOSE_ERR_NOMEM,
	/* "internal": a library call failed */
	EB_JOSE_ERR_INTERNAL,
};

/* A short stable name for err ("bad_signature", ...), for logs and metrics. */
const char *eb_jose_strerror(enum eb_jose_err err);

/* Signature algorithms, as bits of an allow-list. */
enum eb_jose_alg {
	EB_JOSE_RS256 = 1u << 0,
	EB_JOSE_RS384 = 1u << 1,
	EB_JOSE_RS512 = 1u << 2,
	EB_JOSE_PS256 = 1u << 3,
	EB_JOSE_PS384 = 1u << 4,
	EB_JOSE_PS512 = 1u << 5,
	EB_JOSE_ES256 = 1u << 6,
	EB_JOSE_ES384 = 1u << 7,
	EB_JOSE_ES512 = 1u << 8,
};
#define EB_JOSE_ALGS_DEFAULT (EB_JOSE_RS256 | EB_JOSE_ES256)
#define EB_JOSE_ALGS_ALL     0x1ffu

/* Limits (bytes unless said otherwise). */
#define EB_JOSE_MAX_TOKEN      16384        /* compact JWS */
#define EB_JOSE_MAX_JWKS       (512 * 1024) /* JWKS document */
#define EB_JOSE_MAX_KEYS       64           /* default key limit of a JWKS */
#define EB_JOSE_MAX_DEPTH      16           /* JSON nesting: claims, JWKS */
#define EB_JOSE_MAX_KID        256
#define EB_JOSE_MIN_RSA_BITS   2048
#define EB_JOSE_MAX_RSA_BITS   16384
#define EB_JOSE_THUMBPRINT_LEN 43 /* base64url of a SHA-256 */

/*
 * The allow-list bit of an alg name ("RS256" -> EB_JOSE_RS256), 0 for names
 * we never accept ("none", "HS256", "RSA1_5", anything unknown).
 */
unsigned eb_jose_alg_from_name(const char *name);
/* The name of one alg bit ("ES256"), NULL when alg is not exactly one bit. */
const char *eb_jose_alg_name(unsigned alg);

/*
 * A parsed JWKS: an immutable set of usable signature keys, reference
 * counted so a cache can share one across threads and swap in a new one
 * atomically. Every function taking a const jwks is thread-safe.
 */
struct eb_jose_jwks;

/*
 * Parse a JWKS document of len bytes ({"keys":[...]}, at most
 * EB_JOSE_MAX_JWKS bytes). A document listing more than max_keys entries
 * (0: EB_JOSE_MAX_KEYS) is refused as a whole. Keys we cannot use are
 * skipped: kty other than RSA/EC, "use" other than "sig", an alg that is not
 * a signature alg we know, RSA moduli under 2048 bits, unknown curves,
 * invalid points. A document with no usable key is accepted (empty set).
 * Returns a set with one reference (release it), or NULL with *err set.
 */
struct eb_jose_jwks *eb_jose_jwks_parse(const char *json, size_t len,
                                        size_t max_keys, enum eb_jose_err *err);
/* Take one more reference; returns jwks. */
struct eb_jose_jwks *eb_jose_jwks_retain(struct eb_jose_jwks *jwks);
/* Drop a reference, freeing the set with the last one; NULL is a no-op. */
void eb_jose_jwks_release(struct eb_jose_jwks *jwks);
/* Number of usable keys kept. */
size_t eb_jose_jwks_count(const struct eb_jose_jwks *jwks);
/* 1 when some kept key has exactly this kid. */
int eb_jose_jwks_has_kid(const struct eb_jose_jwks *jwks, const char *kid);

/* Options of eb_jose_verify; a NULL pointer means all defaults. */
struct eb_jose_verify_opts {
	unsigned algs;  /* allow-list; 0: EB_JOSE_ALGS_DEFAULT */
	size_t max_len; /* token size limit; 0: EB_JOSE_MAX_TOKEN */
	/*
	 * When set, the header "typ" must equal it (case-insensitive, with an
	 * optional "application/" prefix), e.g. "at+jwt" for our own tokens.
	 */
	const char *typ;
};

/* What eb_jose_verify learnt about a token, for logs (no secret in it). */
struct eb_jose_verify_info {
	unsigned alg;                  /* the alg bit, 0 when not reached */
	char kid[EB_JOSE_MAX_KID + 1]; /* the header kid, "" when absent */
};

/*
 * Verify the compact JWS token (len bytes, need not be NUL-terminated)
 * against jwks. The key is the one whose kid equals the header kid exactly;
 * a token without kid is accepted only when exactly one key fits its alg.
 * On success (EB_JOSE_OK) *claims is the payload as a JSON object (one
 * reference, json_decref it); claims are NOT validated here (iss, aud, exp
 * are the caller's). On failure *claims is NULL. info may be NULL.
 */
enum eb_jose_err eb_jose_verify(const struct eb_jose_jwks *jwks,
                                const char *token, size_t len,
                                const struct eb_jose_verify_opts *opts,
                                json_t **claims,
                                struct eb_jose_verify_info *info);

/*
 * Parse a JSON text of len bytes with our limits: at most max_depth nested
 * arrays/objects, no duplicate object keys, no NUL in strings, and the top
 * level must be an object. NULL when refused. For claims, metadata and the
 * like read from the network.
 */
json_t *eb_jose_json_parse_object(const char *text, size_t len, int max_depth);

/* Our own ES256 (P-256) signing key, private part included. */
struct eb_jose_key;

/* A fresh random key whose kid is its RFC 7638 thumbprint; NULL on failure. */
struct eb_jose_key *eb_jose_key_generate(void);
/*
 * Import a private JWK (as eb_jose_key_private_json() wrote it): kty "EC",
 * crv "P-256", x, y, d; "alg", when present, must be "ES256", and "use",
 * when present, "sig". The kid is kept when present (1-256 printable ASCII),
 * else computed as the thumbprint. NULL with *err set on failure.
 */
struct eb_jose_key *eb_jose_key_import(const char *json, size_t len,
                                       enum eb_jose_err *err);
/* Free key, wiping its private part; NULL is a no-op. */
void eb_jose_key_destroy(struct eb_jose_key *key);
/* The key's kid (owned by key). */
const char *eb_jose_key_kid(const struct eb_jose_key *key);
/*
 * The public JWK as compact JSON: {"kty","crv","x","y","kid","use":"sig",
 * "alg":"ES256"} (eb_free it), NULL when out of memory.
 */
char *eb_jose_key_public_json(const struct eb_jose_key *key);
/*
 * The private JWK as compact JSON (public members plus "d"), for storage
 * encrypted at rest; *lenp (may be NULL) gets its length. Release it with
 * eb_free_secret(s, len) or eb_free_secret_str(). NULL on failure.
 */
char *eb_jose_key_private_json(const struct eb_jose_key *key, size_t *lenp);
/*
 * Sign claims (a JSON object) as a compact JWS with header {"alg":"ES256",
 * "kid":<key kid>, "typ":typ} (typ omitted when NULL). Returns a fresh
 * string (eb_free it), NULL on failure.
 */
char *eb_jose_key_sign(const struct eb_jose_key *key, const char *typ,
                       const json_t *claims);

/*
 * The RFC 7638 thumbprint (base64url SHA-256) of a public RSA or EC JWK given
 * as JSON; out receives EB_JOSE_THUMBPRINT_LEN characters and a NUL.
 * Returns 0, or -1 for JSON that is not such a JWK.
 */
int eb_jose_thumbprint(const char *jwk_json, size_t len,
                       char out[EB_JOSE_THUMBPRINT_LEN + 1]);

#endif
