/*
 * Keys given to us as PEM (an Apple Business Manager server's private key)
 * and the compact JWTs signed with them: RS256 for RSA (2048 to 16384
 * bits), ES256 for P-256. Any other key is refused when loaded, so a
 * configuration names a bad key at load time, never at the first request.
 */
#ifndef EB_PEMKEY_H
#define EB_PEMKEY_H

#include <stddef.h>

#include <jansson.h>

struct eb_pemkey;

/*
 * Load a private key from len bytes of PEM. Returns the key, or NULL with
 * *why set to a static reason ("not a PEM private key", "RSA key under
 * 2048 bits", "EC key not on P-256", "unsupported key type", ...).
 */
struct eb_pemkey *eb_pemkey_load(const char *pem, size_t len, const char **why);
/* Free key (OpenSSL wipes the private part); NULL is a no-op. */
void eb_pemkey_destroy(struct eb_pemkey *key);
/* "RS256" or "ES256". */
const char *eb_pemkey_alg(const struct eb_pemkey *key);
/*
 * Sign claims (a JSON object) as a compact JWS with header {"alg":<alg>,
 * "typ":"JWT"}. Thread-safe on a shared key. Returns a fresh string
 * (eb_free it), or NULL on failure.
 */
char *eb_pemkey_sign_jwt(const struct eb_pemkey *key, const json_t *claims);

/*
 * Load a public key (PEM "PUBLIC KEY") of the same kinds, for checking
 * tokens made by eb_pemkey_sign_jwt(); NULL with *why set.
 */
struct eb_pemkey *eb_pemkey_load_public(const char *pem, size_t len,
                                        const char **why);
/*
 * Verify the compact JWS jwt against key: three strict base64url parts, a
 * header whose alg is the key's, a valid signature. 0 with *claims (the
 * payload object, json_decref it), or -1 with *why set.
 */
int eb_pemkey_verify_jwt(const struct eb_pemkey *key, const char *jwt,
                         json_t **claims, const char **why);

#endif
