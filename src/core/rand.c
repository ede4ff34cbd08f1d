/*
 * Random bytes and URL-safe random tokens.
 */
#include "core/rand.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "jose/b64.h"

int
eb_rand_bytes(void *buf, size_t n)
{
	if (n > 0x7fffffff)
		return -1;
	return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}

char *
eb_rand_token(size_t nbytes)
{
	unsigned char raw[64];
	char *tok;

	if (nbytes == 0 || nbytes > sizeof(raw) || eb_rand_bytes(raw, nbytes))
		return NULL;
	tok = eb_b64_url_encode(raw, nbytes);
	OPENSSL_cleanse(raw, sizeof(raw));
	return tok;
}
