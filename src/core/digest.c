/*
 * SHA-256 for hot paths: the algorithm fetched once. See digest.h.
 */
#include "core/digest.h"

#include <pthread.h>

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static const EVP_MD *g_sha256;

static void
fetch_once(void)
{
	EVP_MD *md = EVP_MD_fetch(NULL, "SHA2-256", NULL);

	/* kept for the life of the process */
	g_sha256 = md != NULL ? md : EVP_sha256();
}

const EVP_MD *
eb_sha256_md(void)
{
	pthread_once(&g_once, fetch_once);
	return g_sha256;
}

int
eb_sha256(const void *a, size_t alen, const void *b, size_t blen,
          unsigned char out[32])
{
	EVP_MD_CTX *ctx;
	unsigned int n = 0;
	int ok;

	if (b == NULL) { /* one piece: the one-shot call, a little cheaper */
		ok = EVP_Digest(a, alen, out, &n, eb_sha256_md(), NULL) == 1 &&
		     n == 32;
		return ok ? 0 : -1;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(ctx, eb_sha256_md(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, a, alen) == 1 &&
	     (b == NULL || EVP_DigestUpdate(ctx, b, blen) == 1) &&
	     EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == 32;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}
