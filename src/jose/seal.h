/*
 * Encryption at rest for the secrets we must keep usable (upstream refresh
 * tokens, PKCE verifiers, private signing keys): AES-256-GCM under a 32-byte
 * key, producing a self-describing blob
 *
 *     version (1 byte, 0x01) | nonce (12 random bytes) | ciphertext | tag (16)
 *
 * Optional associated data (say, the grant id or the row's key) is
 * authenticated with the version byte, so a blob copied into another row, or
 * altered in any bit, fails to open.
 */
#ifndef EB_SEAL_H
#define EB_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define EB_SEAL_KEY_LEN   32
#define EB_SEAL_VERSION   1
#define EB_SEAL_NONCE_LEN 12
#define EB_SEAL_TAG_LEN   16
/* Bytes a blob adds to its plaintext. */
#define EB_SEAL_OVERHEAD (1 + EB_SEAL_NONCE_LEN + EB_SEAL_TAG_LEN)

/*
 * Encrypt ptlen bytes at pt under key, binding adlen bytes at ad (ad may be
 * NULL when adlen is 0). On success *out is a fresh blob of *outlen bytes
 * (eb_free it) and 0 is returned; -1 on failure (*out NULL).
 */
int eb_seal_seal(const uint8_t key[EB_SEAL_KEY_LEN], const void *ad,
                 size_t adlen, const void *pt, size_t ptlen, uint8_t **out,
                 size_t *outlen);
/*
 * Check and decrypt a blob made by eb_seal_seal with the same key and
 * associated data. On success *out is the plaintext (*outlen bytes, plus a
 * NUL not counted) that the caller releases with eb_free_secret(*out,
 * *outlen + 1), and 0 is returned. -1 (and *out NULL) for a wrong key,
 * wrong associated data, an unknown version or any altered byte; nothing
 * of a failed plaintext is ever returned.
 */
int eb_seal_open(const uint8_t key[EB_SEAL_KEY_LEN], const void *ad,
                 size_t adlen, const uint8_t *blob, size_t bloblen,
                 uint8_t **out, size_t *outlen);

#endif
