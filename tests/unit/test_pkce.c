/*
 * Unit tests of token/pkce.c: which authorization requests may carry which
 * code_challenge (S256 only; plain, an absent method with a challenge, an
 * unknown method, a malformed challenge and a method alone refused), and
 * the code_verifier check (the RFC 7636 Appendix B vector; length and
 * character-set limits; any altered character refused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "token/pkce.h"

/* RFC 7636 Appendix B */
#define VERIFIER  "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define CHALLENGE "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

static void
test_request(void **state)
{
	const char *why;

	(void)state;
	/* devices send no PKCE */
	why = "unset";
	assert_int_equal(eb_pkce_check_request(NULL, NULL, &why), 0);
	assert_null(why);
	assert_int_equal(eb_pkce_check_request(CHALLENGE, "S256", &why), 0);
	assert_null(why);
	/* plain, explicit or implied by an absent method */
	assert_int_equal(eb_pkce_check_request(CHALLENGE, "plain", &why), -1);
	assert_non_null(strstr(why, "plain"));
	assert_int_equal(eb_pkce_check_request(CHALLENGE, NULL, &why), -1);
	assert_non_null(strstr(why, "plain"));
	assert_int_equal(eb_pkce_check_request(VERIFIER, NULL, NULL), -1);
	/* other methods, method names are case-sensitive */
	assert_int_equal(eb_pkce_check_request(CHALLENGE, "s256", &why), -1);
	assert_int_equal(eb_pkce_check_request(CHALLENGE, "S512", &why), -1);
	assert_int_equal(eb_pkce_check_request(CHALLENGE, "", &why), -1);
	/* a method alone */
	assert_int_equal(eb_pkce_check_request(NULL, "S256", &why), -1);
	/* not the base64url of 32 bytes */
	assert_int_equal(eb_pkce_check_request("", "S256", &why), -1);
	assert_int_equal(eb_pkce_check_request(CHALLENGE "A", "S256", &why),
	                 -1);
	assert_int_equal(
	    eb_pkce_check_request("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c",
	                          "S256", &why),
	    -1);
	assert_int_equal(
	    eb_pkce_check_request("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM",
	                          "S256", &why),
	    -1);
	assert_int_equal(
	    eb_pkce_check_request(
	        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM=", "S256", &why),
	    -1);
	/* unused low bits of the last character must be zero */
	assert_int_equal(
	    eb_pkce_check_request("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN",
	                          "S256", &why),
	    -1);
}

static void
test_verify(void **state)
{
	char v[160], c[sizeof(CHALLENGE)];
	size_t i;

	(void)state;
	assert_int_equal(eb_pkce_verify(CHALLENGE, VERIFIER), 1);
	assert_int_equal(eb_pkce_verify(CHALLENGE, NULL), 0);
	assert_int_equal(eb_pkce_verify(NULL, VERIFIER), 0);
	assert_int_equal(eb_pkce_verify(CHALLENGE, ""), 0);
	/* the challenge itself is no verifier (that is what plain was) */
	assert_int_equal(eb_pkce_verify(CHALLENGE, CHALLENGE), 0);
	/* any one character altered, in the verifier or the challenge */
	for (i = 0; i < strlen(VERIFIER); i++) {
		strcpy(v, VERIFIER);
		v[i] = v[i] == 'a' ? 'b' : 'a';
		assert_int_equal(eb_pkce_verify(CHALLENGE, v), 0);
	}
	for (i = 0; i + 1 < strlen(CHALLENGE); i++) {
		strcpy(c, CHALLENGE);
		c[i] = c[i] == 'a' ? 'b' : 'a';
		assert_int_equal(eb_pkce_verify(c, VERIFIER), 0);
	}
	/* 43 to 128 unreserved characters: the limits are exact */
	memset(v, 'a', sizeof(v));
	v[42] = '\0';
	assert_int_equal(eb_pkce_verify(CHALLENGE, v), 0); /* too short */
	v[42] = 'a';
	v[129] = '\0';
	assert_int_equal(eb_pkce_verify(CHALLENGE, v), 0); /* too long */
	/* characters outside [A-Za-z0-9-._~] */
	strcpy(v, VERIFIER);
	v[5] = '+';
	assert_int_equal(eb_pkce_verify(CHALLENGE, v), 0);
	v[5] = ' ';
	assert_int_equal(eb_pkce_verify(CHALLENGE, v), 0);
}

/* Verifiers at both length limits, checked against their own challenge. */
static void
test_verify_limits(void **state)
{
	/* SHA-256 of 43 and 128 'a', base64url */
	static const char c43[] = "ZtNPunH49FD35FWYhT5Tv8I7vRKQJ8uxMaL0_9eHjNA";
	static const char c128[] =
	    "aDbPE7rEAOkQUHHNavRwhN-srU5eMCyUv-0k4BOvtz4";
	char v[160];

	(void)state;
	memset(v, 'a', sizeof(v));
	v[43] = '\0';
	assert_int_equal(eb_pkce_verify(c43, v), 1);
	v[43] = 'a';
	v[128] = '\0';
	assert_int_equal(eb_pkce_verify(c128, v), 1);
	assert_int_equal(eb_pkce_verify(c43, v), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request),
	    cmocka_unit_test(test_verify),
	    cmocka_unit_test(test_verify_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
