/*
 * Randomness for identifiers and secrets: OpenSSL's CSPRNG only.
 */
#ifndef EB_RAND_H
#define EB_RAND_H

#include <stddef.h>

/* Fill buf with n random bytes; -1 when the CSPRNG fails. */
int eb_rand_bytes(void *buf, size_t n);
/* A fresh URL-safe token carrying nbytes of randomness (base64url, no
 * padding), or NULL. The caller frees it with eb_free_secret_str when it is
 * a secret. */
char *eb_rand_token(size_t nbytes);

#endif
