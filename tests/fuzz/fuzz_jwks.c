/*
 * Fuzz target: JWKS parsing (src/jose/jwks.c). Each input is parsed with the
 * default and a small key limit; a set that parses is then used to verify
 * two fixed, validly signed tokens (ES256 and RS256) with every alg allowed,
 * so that hostile key sets exercise key selection and the alg/kty checks
 * that guard cjose_jws_verify. Seeds: tests/fuzz/corpus/jwks/.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "jose/jose.h"

static const char tok_es256[] =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjMSIsInR5cCI6ImF0K2p3dCJ9.eyJpc3MiOiJ"
    "odHRwczovL2ViLmV4YW1wbGUvdC9hY21lIiwic3ViIjoiYWxpY2VAZXhhbXBsZS5jb20"
    "iLCJhdWQiOiJodHRwczovL2ViLmV4YW1wbGUvdC9hY21lL21kbSIsImV4cCI6MTg5MzQ"
    "1NjAwMCwiaWF0IjoxNzAwMDAwMDAwLCJqdGkiOiI3ZDBjMWEiLCJjbGllbnRfaWQiOiJ"
    "hcHBsZS1kZXZpY2UiLCJtYW5hZ2VkX2FwcGxlX2lkIjoiYWxpY2VAYXBwbGVpZC5leGF"
    "tcGxlLmNvbSIsImVucm9sbG1lbnRfbW9kZSI6IkJZT0QiLCJncmFudF9pZCI6ImctMSJ"
    "9.GvLJEvOKuabvWjRwq5lPBKxARY1bxEdRg2NU1qoHnpQFb6rFZ1J-bQXurIDbkxiejK"
    "ekEKNHnJLQfxLuisWBAg";

static const char tok_rs256[] =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYTEiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJod"
    "HRwczovL2xvZ2luLm1pY3Jvc29mdG9ubGluZS5jb20vOTE4ODA0MGQtNmM2Ny00YzViL"
    "WIxMTItMzZhMzA0YjY2ZGFkL3YyLjAiLCJhdWQiOiI2NzMxZGU3Ni0xNGE2LTQ5YWUtO"
    "TdiYy02ZWJhNjkxNDM5MWUiLCJzdWIiOiJBQUFBQUFBQUFBQUFBQUFBQUFBQUFJa3pxR"
    "lZyU2FTYUZIeTc4MmJidGFRIiwiZXhwIjoxODkzNDU2MDAwLCJpYXQiOjE3MDAwMDAwM"
    "DAsIm5iZiI6MTcwMDAwMDAwMCwibm9uY2UiOiJuLTBTNl9XekEyTWoiLCJwcmVmZXJyZ"
    "WRfdXNlcm5hbWUiOiJhbGljZUBleGFtcGxlLmNvbSIsInRpZCI6IjkxODgwNDBkLTZjN"
    "jctNGM1Yi1iMTEyLTM2YTMwNGI2NmRhZCIsImdyb3VwcyI6WyJhIiwiYiJdLCJuYW1lI"
    "joiQWxpY2UgRXhhbXBsZSJ9.IaKnaXQM1VqHXA1c5H0TrkRVzFbd26io8PBqFMqmwMG-"
    "mu2qAIBo6MVTJVuDUZil_GDNJvAG5lxFsmhVjpaKtH_7MftcOZIwDxZ9ZbVn6KJBLIhU"
    "XcGo3e7TAVTpdZM7WS0thjevtn8dVTKyGWt19gBXJqYznG4Vj1YNhOzMSBqyPAEOBb6D"
    "7rCZ37yR9p5SH8yPAxAQc0Am8I2EHpfoi4qqvipa1ZiFO0m162sUX-XPPwbP-kQYW4PI"
    "M9SQbx43IMKjpB8qfEkhDvDgwlw2ykKdaJjp141gd1nu0TqdqaS-KnOaSWWA_4murE2W"
    "ywb--MY_NNEURka1LQTWXy7row";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
try_token(const struct eb_jose_jwks *jwks, const char *tok)
{
	struct eb_jose_verify_opts o = {.algs = EB_JOSE_ALGS_ALL};
	json_t *claims = NULL;
	enum eb_jose_err err;

	err = eb_jose_verify(jwks, tok, strlen(tok), &o, &claims, NULL);
	if ((err == EB_JOSE_OK) != (claims != NULL))
		__builtin_trap();
	json_decref(claims);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eb_jose_jwks *jwks;
	enum eb_jose_err err;
	size_t n;

	jwks = eb_jose_jwks_parse((const char *)data, size, 4, &err);
	if ((jwks == NULL) == (err == EB_JOSE_OK))
		__builtin_trap();
	eb_jose_jwks_release(jwks);

	jwks = eb_jose_jwks_parse((const char *)data, size, 0, &err);
	if (jwks == NULL)
		return 0;
	n = eb_jose_jwks_count(jwks);
	if (n > EB_JOSE_MAX_KEYS)
		__builtin_trap();
	try_token(jwks, tok_es256);
	try_token(jwks, tok_rs256);
	(void)eb_jose_jwks_has_kid(jwks, "ec1");
	eb_jose_jwks_release(eb_jose_jwks_retain(jwks));
	eb_jose_jwks_release(jwks);
	return 0;
}
