/*
 * AES-256-GCM blobs with OpenSSL EVP. Nonces are 96 random bits from the
 * OpenSSL DRBG; under one key we expect far fewer than 2^32 blobs, which keeps
 * the random-nonce collision risk negligible (NIST SP 800-38D 8.3). The
 * associated data fed to GCM is the version byte followed by the caller's ad,
 * so the version cannot be swapped either.
 */
#include "jose/seal.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/log.h"
#include "core/mem.h"

/* Run GCM over one message; enc != 0 encrypts. 0 on success, -1 otherwise. */
static int
gcm(int enc, const uint8_t *key, const uint8_t *nonce, uint8_t version,
    const void *ad, size_t adlen, const uint8_t *in, size_t inlen, uint8_t *out,
    uint8_t *tag)
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
	if (EVP_CipherUpdate(ctx, NULL, &n, &version, 1) != 1)
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

int
eb_seal_seal(const uint8_t key[EB_SEAL_KEY_LEN], const void *ad, size_t adlen,
             const void *pt, size_t ptlen, uint8_t **out, size_t *outlen)
{
	uint8_t *blob;
	size_t len;

	*out = NULL;
	if (ptlen > INT_MAX - EB_SEAL_OVERHEAD || (adlen > 0 && ad == NULL))
		return -1;
	len = EB_SEAL_OVERHEAD + ptlen;
	if ((blob = eb_malloc(len)) == NULL)
		return -1;
	blob[0] = EB_SEAL_VERSION;
	if (RAND_bytes(blob + 1, EB_SEAL_NONCE_LEN) != 1) {
		log_errx("no random bytes for a nonce");
		goto out_free_blob;
	}
	if (gcm(1, key, blob + 1, EB_SEAL_VERSION, ad, adlen, pt, ptlen,
	        blob + 1 + EB_SEAL_NONCE_LEN,
	        blob + 1 + EB_SEAL_NONCE_LEN + ptlen) != 0)
		goto out_free_blob;
	*out = blob;
	if (outlen != NULL)
		*outlen = len;
	return 0;
out_free_blob:
	eb_free_secret(blob, len);
	return -1;
}

int
eb_seal_open(const uint8_t key[EB_SEAL_KEY_LEN], const void *ad, size_t adlen,
             const uint8_t *blob, size_t bloblen, uint8_t **out, size_t *outlen)
{
	uint8_t tag[EB_SEAL_TAG_LEN], *pt;
	size_t ptlen;

	*out = NULL;
	if (blob == NULL || bloblen < EB_SEAL_OVERHEAD || bloblen > INT_MAX ||
	    blob[0] != EB_SEAL_VERSION || (adlen > 0 && ad == NULL))
		return -1;
	ptlen = bloblen - EB_SEAL_OVERHEAD;
	memcpy(tag, blob + bloblen - EB_SEAL_TAG_LEN, EB_SEAL_TAG_LEN);
	if ((pt = eb_malloc(ptlen + 1)) == NULL)
		return -1;
	if (gcm(0, key, blob + 1, blob[0], ad, adlen,
	        blob + 1 + EB_SEAL_NONCE_LEN, ptlen, pt, tag) != 0) {
		eb_free_secret(pt, ptlen + 1);
		return -1;
	}
	pt[ptlen] = '\0';
	*out = pt;
	if (outlen != NULL)
		*outlen = ptlen;
	return 0;
}
