/*
 * PKCE (RFC 7636) at our own authorization endpoint, for the apple-oauth2
 * device flow: which code_challenge a request may carry, and whether a
 * code_verifier at the token endpoint matches it. Only S256 is accepted:
 * "plain" (also what an absent method means, RFC 7636 4.3) would put the
 * verifier itself in the authorization request's URL.
 */
#ifndef EB_TOKEN_PKCE_H
#define EB_TOKEN_PKCE_H

/* An S256 challenge: base64url of a SHA-256, without padding. */
#define EB_PKCE_CHALLENGE_LEN 43
#define EB_PKCE_VERIFIER_MIN  43
#define EB_PKCE_VERIFIER_MAX  128

/*
 * Check the code_challenge and code_challenge_method of an authorization
 * request (either may be NULL). 0: acceptable (both absent: no PKCE, as
 * devices send; or an S256 challenge of the right form). -1: refused, with
 * *why (may be NULL) a short constant text for error_description.
 */
int eb_pkce_check_request(const char *challenge, const char *method,
                          const char **why);

/*
 * 1 when verifier is a well-formed RFC 7636 code_verifier (43 to 128
 * unreserved characters) whose SHA-256, base64url-encoded, is challenge
 * (compared in constant time); 0 otherwise, also for NULL arguments.
 */
int eb_pkce_verify(const char *challenge, const char *verifier);

#endif
