/*
 * AES-256-GCM blobs with OpenSSL EVP. Nonces are 96 random bits from the
 * OpenSSL DRBG; under one key we expect far fewer than 2^32 blobs, which keeps
 * the random-nonce collision risk negligible (NIST SP 800-38D 8.3). The
 * associated data fed to GCM is the version byte followed by the caller's ad,
 * so the version cannot be swapped either; for version 2 and 3 (ring) blobs
 * it is the version byte and the key id. Version 3 subkeys come from HKDF
 * (EVP_PKEY_HKDF), derived once when a key joins a ring.
 */
#include "jose/seal.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "core/log.h"
#include "core/mem.h"

/* Run GCM over one message; enc != 0 encrypts. 0 on success, -1 otherwise. */
static int
gcm(int enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *hdr,
    size_t hdrlen, const void *ad, size_t adlen, const uint8_t *in,
    size_t inlen, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx;
	int n, rc = -1;

	if (inlen > INT_MAX || adlen > INT_MAX)
		return -1;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) !=
	        1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, EB_SEAL_NONCE_LEN,
	                        NULL) != 1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) != 1)
		goto out_free_ctx;
	if (EVP_CipherUpdate(ctx, NULL, &n, hdr, (int)hdrlen) != 1)
		goto out_free_ctx;
	if (adlen > 0 && EVP_CipherUpdate(ctx, NULL, &n, ad, (int)adlen) != 1)
		goto out_free_ctx;
	if (inlen > 0 && EVP_CipherUpdate(ctx, out, &n, in, (int)inlen) != 1)
		goto out_free_ctx;
	if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG,
	                                EB_SEAL_TAG_LEN, tag) != 1)
		goto out_free_ctx;
	if (EVP_CipherFinal_ex(ctx, out + inlen, &n) != 1)
		goto out_free_ctx; /* decrypt: tag mismatch */
	if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG,
	                               EB_SEAL_TAG_LEN, tag) != 1)
		goto out_free_ctx;
	rc = 0;
out_free_ctx:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

/*
 * Seal pt under key behind the hdrlen header bytes at hdr (version, and
 * for version 2 the key id): hdr | nonce | ciphertext | tag, the header
 * authenticated with ad. The callers checked the sizes.
 */
static int
seal_hdr(const uint8_t key[EB_SEAL_KEY_LEN], const uint8_t *hdr, size_t hdrlen,
         const void *ad, size_t adlen, const void *pt, size_t ptlen,
         uint8_t **out, size_t *outlen)
{
	size_t len = hdrlen + EB_SEAL_NONCE_LEN + ptlen + EB_SEAL_TAG_LEN;
	uint8_t *blob;

	if ((blob = eb_malloc(len)) == NULL)
		return -1;
	memcpy(blob, hdr, hdrlen);
	if (RAND_bytes(blob + hdrlen, EB_SEAL_NONCE_LEN) != 1) {
		log_errx("no random bytes for a nonce");
		goto out_free_blob;
	}
	if (gcm(1, key, blob + hdrlen, blob, hdrlen, ad, adlen, pt, ptlen,
	        blob + hdrlen + EB_SEAL_NONCE_LEN,
	        blob + hdrlen + EB_SEAL_NONCE_LEN + ptlen) != 0)
		goto out_free_blob;
	*out = blob;
	if (outlen != NULL)
		*outlen = len;
	return 0;
out_free_blob:
	eb_free_secret(blob, len);
	return -1;
}

/*
 * Open a blob of bloblen bytes (at least hdrlen + nonce + tag) whose
 * header is hdrlen bytes, under key: the plaintext, NUL-terminated, in
 * *out; -1 when it does not open.
 */
static int
open_hdr(const uint8_t key[EB_SEAL_KEY_LEN], size_t hdrlen, const void *ad,
         size_t adlen, const uint8_t *blob, size_t bloblen, uint8_t **out,
         size_t *outlen)
{
	uint8_t tag[EB_SEAL_TAG_LEN], *pt;
	size_t ptlen = bloblen - hdrlen - EB_SEAL_NONCE_LEN - EB_SEAL_TAG_LEN;

	memcpy(tag, blob + bloblen - EB_SEAL_TAG_LEN, EB_SEAL_TAG_LEN);
	if ((pt = eb_malloc(ptlen + 1)) == NULL)
		return -1;
	if (gcm(0, key, blob + hdrlen, blob, hdrlen, ad, adlen,
	        blob + hdrlen + EB_SEAL_NONCE_LEN, ptlen, pt, tag) != 0) {
		eb_free_secret(pt, ptlen + 1);
		return -1;
	}
	pt[ptlen] = '\0';
	*out = pt;
	if (outlen != NULL)
		*outlen = ptlen;
	return 0;
}

int
eb_seal_seal(const uint8_t key[EB_SEAL_KEY_LEN], const void *ad, size_t adlen,
             const void *pt, size_t ptlen, uint8_t **out, size_t *outlen)
{
	const uint8_t hdr[1] = {EB_SEAL_VERSION};

	*out = NULL;
	if (ptlen > INT_MAX - EB_SEAL_OVERHEAD || (adlen > 0 && ad == NULL))
		return -1;
	return seal_hdr(key, hdr, sizeof(hdr), ad, adlen, pt, ptlen, out,
	                outlen);
}

int
eb_seal_open(const uint8_t key[EB_SEAL_KEY_LEN], const void *ad, size_t adlen,
             const uint8_t *blob, size_t bloblen, uint8_t **out, size_t *outlen)
{
	*out = NULL;
	if (blob == NULL || bloblen < EB_SEAL_OVERHEAD || bloblen > INT_MAX ||
	    blob[0] != EB_SEAL_VERSION || (adlen > 0 && ad == NULL))
		return -1;
	return open_hdr(key, 1, ad, adlen, blob, bloblen, out, outlen);
}

struct eb_seal_ring {
	size_t n;
	uint8_t key[EB_SEAL_RING_MAX][EB_SEAL_KEY_LEN];
	uint8_t id[EB_SEAL_RING_MAX][EB_SEAL_KEYID_LEN];
	/* the version 3 subkeys of each key, by purpose */
	uint8_t sub[EB_SEAL_RING_MAX][EB_SEAL_PURPOSES][EB_SEAL_KEY_LEN];
};

/* The HKDF info of each purpose (seal.h): never change these. */
static const char *const purpose_info[EB_SEAL_PURPOSES] = {
    [EB_SEAL_FLOW] = "enrollbridge seal v3 flow",
    [EB_SEAL_AT_REST] = "enrollbridge seal v3 at-rest",
};

/* out = HKDF-SHA256(key, no salt, info); 0 or -1. */
static int
subkey(const uint8_t key[EB_SEAL_KEY_LEN], const char *info,
       uint8_t out[EB_SEAL_KEY_LEN])
{
	EVP_PKEY_CTX *ctx;
	size_t len = EB_SEAL_KEY_LEN;
	int rc = -1;

	if ((ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL)) == NULL)
		return -1;
	if (EVP_PKEY_derive_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) == 1 &&
	    EVP_PKEY_CTX_set1_hkdf_key(ctx, key, EB_SEAL_KEY_LEN) == 1 &&
	    EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)info,
	                                (int)strlen(info)) == 1 &&
	    EVP_PKEY_derive(ctx, out, &len) == 1 && len == EB_SEAL_KEY_LEN)
		rc = 0;
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

struct eb_seal_ring *
eb_seal_ring_new(void)
{
	struct eb_seal_ring *r;

	if ((r = eb_malloc(sizeof(*r))) == NULL)
		return NULL;
	memset(r, 0, sizeof(*r));
	return r;
}

int
eb_seal_ring_add(struct eb_seal_ring *r, const uint8_t key[EB_SEAL_KEY_LEN])
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	int p;

	if (r == NULL || key == NULL || r->n >= EB_SEAL_RING_MAX)
		return -1;
	if (SHA256(key, EB_SEAL_KEY_LEN, md) == NULL)
		return -1;
	for (p = 0; p < EB_SEAL_PURPOSES; p++)
		if (subkey(key, purpose_info[p], r->sub[r->n][p]) != 0) {
			OPENSSL_cleanse(r->sub[r->n], sizeof(r->sub[r->n]));
			log_errx("seal: cannot derive a subkey");
			return -1;
		}
	memcpy(r->key[r->n], key, EB_SEAL_KEY_LEN);
	memcpy(r->id[r->n], md, EB_SEAL_KEYID_LEN);
	r->n++;
	return 0;
}

size_t
eb_seal_ring_count(const struct eb_seal_ring *r)
{
	return r != NULL ? r->n : 0;
}

const uint8_t *
eb_seal_ring_first(const struct eb_seal_ring *r)
{
	return r != NULL && r->n > 0 ? r->key[0] : NULL;
}

struct eb_seal_ring *
eb_seal_ring_of(const uint8_t key[EB_SEAL_KEY_LEN])
{
	struct eb_seal_ring *r;

	if ((r = eb_seal_ring_new()) != NULL && eb_seal_ring_add(r, key) != 0) {
		eb_seal_ring_free(r);
		r = NULL;
	}
	return r;
}

struct eb_seal_ring *
eb_seal_ring_dup(const struct eb_seal_ring *r)
{
	struct eb_seal_ring *c;

	if (r == NULL || (c = eb_seal_ring_new()) == NULL)
		return NULL;
	memcpy(c, r, sizeof(*c));
	return c;
}

void
eb_seal_ring_free(struct eb_seal_ring *r)
{
	if (r == NULL)
		return;
	OPENSSL_cleanse(r, sizeof(*r));
	eb_free(r);
}

int
eb_seal_ring_seal(const struct eb_seal_ring *r, int purpose, const void *ad,
                  size_t adlen, const void *pt, size_t ptlen, uint8_t **out,
                  size_t *outlen)
{
	uint8_t hdr[1 + EB_SEAL_KEYID_LEN];

	*out = NULL;
	if (r == NULL || r->n == 0 || purpose < 0 ||
	    purpose >= EB_SEAL_PURPOSES ||
	    ptlen > INT_MAX - EB_SEAL_OVERHEAD3 || (adlen > 0 && ad == NULL))
		return -1;
	hdr[0] = EB_SEAL_VERSION3;
	memcpy(hdr + 1, r->id[0], EB_SEAL_KEYID_LEN);
	return seal_hdr(r->sub[0][purpose], hdr, sizeof(hdr), ad, adlen, pt,
	                ptlen, out, outlen);
}

/*
 * Open a version 2 or 3 blob: under the keys of r whose id it carries (the
 * sealer wrote its own key's id, and the id is authenticated; ids may
 * collide, so every matching key is tried), raw for version 2, the purpose
 * subkey for version 3. The key's index, or -1.
 */
static long
open_by_id(const struct eb_seal_ring *r, int purpose, const void *ad,
           size_t adlen, const uint8_t *blob, size_t bloblen, uint8_t **out,
           size_t *outlen)
{
	const uint8_t *key;
	size_t i;

	if (bloblen < EB_SEAL_OVERHEAD2 || bloblen > INT_MAX)
		return -1;
	for (i = 0; i < r->n; i++) {
		if (memcmp(r->id[i], blob + 1, EB_SEAL_KEYID_LEN) != 0)
			continue;
		key = blob[0] == EB_SEAL_VERSION3 ? r->sub[i][purpose]
		                                  : r->key[i];
		if (open_hdr(key, 1 + EB_SEAL_KEYID_LEN, ad, adlen, blob,
		             bloblen, out, outlen) == 0)
			return (long)i;
	}
	return -1;
}

int
eb_seal_ring_open(const struct eb_seal_ring *r, int purpose, const void *ad,
                  size_t adlen, const uint8_t *blob, size_t bloblen,
                  uint8_t **out, size_t *outlen, int *stale)
{
	long i = -1;
	size_t k;

	*out = NULL;
	if (r == NULL || blob == NULL || bloblen < 1 || purpose < 0 ||
	    purpose >= EB_SEAL_PURPOSES || (adlen > 0 && ad == NULL))
		return -1;
	switch (blob[0]) {
	case EB_SEAL_VERSION:
		for (k = 0; k < r->n && i < 0; k++)
			if (eb_seal_open(r->key[k], ad, adlen, blob, bloblen,
			                 out, outlen) == 0)
				i = (long)k;
		break;
	case EB_SEAL_VERSION2:
	case EB_SEAL_VERSION3:
		i = open_by_id(r, purpose, ad, adlen, blob, bloblen, out,
		               outlen);
		break;
	}
	if (i < 0)
		return -1;
	if (stale != NULL)
		*stale = blob[0] != EB_SEAL_VERSION3 || i != 0;
	return 0;
}
