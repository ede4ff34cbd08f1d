/*
 * PKCE checks for our authorization server (pkce.h): the form of an S256
 * code_challenge, and the code_verifier against it. The challenge is kept
 * with the code (store.h) and compared as the 32 bytes it decodes to, in
 * constant time.
 */
#include "token/pkce.h"

#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/digest.h"
#include "jose/b64.h"

/* RFC 7636 4.1: unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~" */
static int
unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

/* The 32 bytes an S256 challenge stands for; 0, or -1 when malformed. */
static int
challenge_bytes(const char *challenge, uint8_t out[32])
{
	size_t len;

	if (challenge == NULL)
		return -1;
	len = strnlen(challenge, EB_PKCE_CHALLENGE_LEN + 1);
	if (len != EB_PKCE_CHALLENGE_LEN)
		return -1;
	/* strict: the one encoding of 32 bytes */
	return eb_b64_url_decode_to(challenge, len, out) == 32 ? 0 : -1;
}

int
eb_pkce_check_request(const char *challenge, const char *method,
                      const char **why)
{
	uint8_t md[32];
	const char *w = NULL;

	if (challenge == NULL && method == NULL)
		w = NULL; /* no PKCE, as devices send */
	else if (challenge == NULL)
		w = "code_challenge_method without code_challenge";
	else if (method == NULL || strcmp(method, "plain") == 0)
		w = "code_challenge_method plain is not supported: use S256";
	else if (strcmp(method, "S256") != 0)
		w = "unsupported code_challenge_method: use S256";
	else if (challenge_bytes(challenge, md) != 0)
		w = "code_challenge is not an S256 challenge";
	if (why != NULL)
		*why = w;
	return w == NULL ? 0 : -1;
}

int
eb_pkce_verify(const char *challenge, const char *verifier)
{
	uint8_t want[32];
	unsigned char got[32];
	size_t len, i;
	int ok;

	if (verifier == NULL || challenge_bytes(challenge, want) != 0)
		return 0;
	len = strnlen(verifier, EB_PKCE_VERIFIER_MAX + 1);
	if (len < EB_PKCE_VERIFIER_MIN || len > EB_PKCE_VERIFIER_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!unreserved((unsigned char)verifier[i]))
			return 0;
	if (eb_sha256(verifier, len, NULL, 0, got) != 0)
		return 0;
	ok = CRYPTO_memcmp(got, want, sizeof(want)) == 0;
	OPENSSL_cleanse(got, sizeof(got));
	return ok;
}
