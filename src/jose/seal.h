/*
 * Encryption at rest for the secrets we must keep usable (upstream refresh
 * tokens, private signing keys, a rotated refresh token's successor) and for
 * the login flows and sign-in states carried in URLs: AES-256-GCM under a
 * 32-byte key, producing a self-describing blob
 *
 *     version (1 byte, 0x01) | nonce (12 random bytes) | ciphertext | tag (16)
 *
 * Optional associated data (say, the grant id or the row's key) is
 * authenticated with the version byte, so a blob copied into another row, or
 * altered in any bit, fails to open.
 *
 * A key ring (eb_seal_ring_*) holds several keys so they can be rotated and
 * shared by replicas: the first key seals, every key opens. Ring blobs name
 * their key by a short id, so open tries that key first. They are sealed
 * under a per-purpose subkey of the ring key (version 3):
 *
 *     version (0x03) | key id (4 bytes) | nonce (12) | ciphertext | tag (16)
 *
 * where the subkey is HKDF-SHA256 (RFC 5869) of the ring key with no salt
 * and the info "enrollbridge seal v3 " followed by the purpose's name
 * ("flow" or "at-rest"), and the key id is the first 4 bytes of SHA-256 of
 * the ring key (a hint, not a secret: ids may collide, and then every
 * matching key is tried). The purpose is not written: it is implied by the
 * caller, and a blob opened for another purpose fails like one under a wrong
 * key. Each purpose so has its own GCM random-nonce budget (SP 800-38D 8.3:
 * 2^32 blobs per key), and the URL flows, sealed on every 401, never use up
 * the one of the secrets kept in the database. The version byte and key id
 * are both authenticated.
 *
 * Older blobs still open under a ring, under the raw ring keys whatever the
 * purpose: version 2 (the same layout as 3, sealed with the ring key itself)
 * under the keys whose id it carries, version 1 under every key in turn.
 * `enrollbridge reseal` rewrites the stored ones in the current form.
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

#define EB_SEAL_VERSION2  2
#define EB_SEAL_KEYID_LEN 4
/* Bytes a version 2 blob adds to its plaintext. */
#define EB_SEAL_OVERHEAD2 (EB_SEAL_OVERHEAD + EB_SEAL_KEYID_LEN)
/* The most keys a ring holds. */
#define EB_SEAL_RING_MAX 16

struct eb_seal_ring;

/* An empty ring, or NULL when out of memory. */
struct eb_seal_ring *eb_seal_ring_new(void);
/*
 * Append a copy of key. The first key added seals; later ones only open.
 * -1 when the ring is full or out of memory.
 */
int eb_seal_ring_add(struct eb_seal_ring *r,
                     const uint8_t key[EB_SEAL_KEY_LEN]);
/* How many keys r holds. */
size_t eb_seal_ring_count(const struct eb_seal_ring *r);
/*
 * The sealing key's raw bytes (for tests and for comparing rings), or NULL
 * for an empty ring.
 */
const uint8_t *eb_seal_ring_first(const struct eb_seal_ring *r);
/* A ring holding just key, or NULL when out of memory. */
struct eb_seal_ring *eb_seal_ring_of(const uint8_t key[EB_SEAL_KEY_LEN]);
/* A copy of r (the same keys in the same order), or NULL. */
struct eb_seal_ring *eb_seal_ring_dup(const struct eb_seal_ring *r);
/* Wipe every key and free r (NULL is fine). */
void eb_seal_ring_free(struct eb_seal_ring *r);
/* What a ring blob is for: each purpose has its own subkeys. */
enum eb_seal_purpose {
	EB_SEAL_FLOW = 0, /* URL login flows and sign-in states (login_ttl) */
	EB_SEAL_AT_REST = 1, /* what the store keeps (refresh tokens, keys) */
};
#define EB_SEAL_PURPOSES 2

#define EB_SEAL_VERSION3 3
/* Bytes a version 3 blob adds to its plaintext (as version 2). */
#define EB_SEAL_OVERHEAD3 EB_SEAL_OVERHEAD2

/*
 * As eb_seal_seal, under the purpose subkey of the ring's first key, into a
 * version 3 blob. -1 for an empty ring or an unknown purpose.
 */
int eb_seal_ring_seal(const struct eb_seal_ring *r, int purpose, const void *ad,
                      size_t adlen, const void *pt, size_t ptlen, uint8_t **out,
                      size_t *outlen);
/*
 * As eb_seal_open with any key of the ring: a version 3 blob under the
 * purpose subkeys of the keys whose id it carries (no other key, and no
 * other purpose, can open it); a version 2 blob under those raw keys; a
 * version 1 blob under every raw key in order. If stale is not NULL it is
 * set, on success, to 0 when the blob is in the current form (version 3
 * under the first key) and to 1 when it wants re-sealing (an older version,
 * or a later key).
 */
int eb_seal_ring_open(const struct eb_seal_ring *r, int purpose, const void *ad,
                      size_t adlen, const uint8_t *blob, size_t bloblen,
                      uint8_t **out, size_t *outlen, int *stale);

#endif
