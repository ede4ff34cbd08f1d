/*
 * SHA-256 for hot paths. With OpenSSL 3, EVP_sha256() makes every
 * EVP_DigestInit look the algorithm up again in the provider tables (a
 * fetch, under locks); this fetches it once for the process.
 */
#ifndef EB_DIGEST_H
#define EB_DIGEST_H

#include <stddef.h>

#include <openssl/evp.h>

/* The process's SHA-256 (fetched once; falls back to EVP_sha256()). */
const EVP_MD *eb_sha256_md(void);
/* out = SHA-256(a || b); b may be NULL. 0, or -1 on failure. */
int eb_sha256(const void *a, size_t alen, const void *b, size_t blen,
              unsigned char out[32]);

#endif
