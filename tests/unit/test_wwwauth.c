/*
 * Unit tests for src/apple/wwwauth.c: the builder's exact output and its
 * refusals, the tolerant parser on what real servers send, the strict mode's
 * deviation reports, limits, and the Apple semantic check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "apple/wwwauth.h"
#include "core/mem.h"

static int
parse(struct eb_wwwauth *w, const char *s, unsigned flags, char *err)
{
	return eb_wwwauth_parse(w, s, strlen(s), flags, err, 256);
}

static void
test_build_as_web(void **state)
{
	struct eb_wwwauth_challenge ch = {
	    .method = EB_WWWAUTH_METHOD_AS_WEB,
	    .url = "https://bridge.example.com/t/acme/auth/F1"};
	char *s = eb_wwwauth_build(&ch);

	assert_non_null(s);
	assert_string_equal(
	    s, "Bearer method=\"apple-as-web\", "
	       "url=\"https://bridge.example.com/t/acme/auth/F1\"");
	eb_free(s);
}

static void
test_build_oauth2(void **state)
{
	struct eb_wwwauth_challenge ch = {
	    .method = EB_WWWAUTH_METHOD_OAUTH2,
	    .authorization_url = "https://b.example/t/a/oauth2/authorize",
	    .token_url = "https://b.example/t/a/oauth2/token",
	    .redirect_url =
	        "apple-remotemanagement-user-login:/oauth2/redirection",
	    .client_id = "apple-device",
	    .scope = "mdm"};
	char *s = eb_wwwauth_build(&ch);

	assert_non_null(s);
	assert_string_equal(
	    s, "Bearer method=\"apple-oauth2\", "
	       "authorization-url=\"https://b.example/t/a/oauth2/authorize\", "
	       "token-url=\"https://b.example/t/a/oauth2/token\", "
	       "redirect-url=\"apple-remotemanagement-user-login:/oauth2/"
	       "redirection\", client-id=\"apple-device\", scope=\"mdm\"");
	eb_free(s);
	ch.scope = "";
	assert_non_null(s = eb_wwwauth_build(&ch));
	eb_free(s);
	ch.scope = NULL;
	assert_null(eb_wwwauth_build(&ch));
	ch.scope = "mdm";
	ch.client_id = "";
	assert_null(eb_wwwauth_build(&ch));
}

static void
test_build_refuses_bad_values(void **state)
{
	static const char *const bad[] = {"https://x/\"",
	                                  "https://x/\\",
	                                  "https://x/\r\nSet-Cookie: a=b",
	                                  "https://x/\n",
	                                  "https://x/\t",
	                                  "https://x/\x01",
	                                  "https://x/\x7f",
	                                  "https://x/caf\xc3\xa9",
	                                  "",
	                                  NULL};
	struct eb_wwwauth_challenge ch = {.method = EB_WWWAUTH_METHOD_AS_WEB};
	size_t i;

	for (i = 0; bad[i] != NULL; i++) {
		ch.url = bad[i];
		assert_null(eb_wwwauth_build(&ch));
	}
	ch.url = NULL;
	assert_null(eb_wwwauth_build(&ch));
	ch.method = EB_WWWAUTH_METHOD_UNKNOWN;
	ch.url = "https://x/";
	assert_null(eb_wwwauth_build(&ch));
}

static void
test_roundtrip(void **state)
{
	struct eb_wwwauth_challenge ch = {
	    .method = EB_WWWAUTH_METHOD_AS_WEB,
	    .url = "https://b.example/t/a/auth/x?y=1"};
	struct eb_wwwauth w;
	char err[256], *s = eb_wwwauth_build(&ch);

	assert_int_equal(parse(&w, s, EB_WWWAUTH_STRICT, err), 0);
	assert_int_equal(w.deviations, 0);
	assert_string_equal(w.scheme, "Bearer");
	assert_int_equal(eb_wwwauth_method(&w), EB_WWWAUTH_METHOD_AS_WEB);
	assert_string_equal(eb_wwwauth_param(&w, "URL"), ch.url);
	assert_int_equal(eb_wwwauth_check_apple(&w, err, sizeof(err)), 0);
	eb_wwwauth_finish(&w);
	eb_free(s);
}

/* Each tolerated spelling parses, reports its deviation, fails strictly. */
static void
test_deviations(void **state)
{
	static const struct {
		const char *in;
		unsigned dev;
	} cases[] = {
	    {"bearer method=\"apple-as-web\", url=\"https://a.example/x\"",
	     EB_WWWAUTH_DEV_SCHEME_CASE},
	    {"Bearer method=apple-as-web, url=\"https://a.example/x\"",
	     EB_WWWAUTH_DEV_UNQUOTED},
	    {"Bearer method=\"apple-as-web\",url=\"https://a.example/x\"",
	     EB_WWWAUTH_DEV_SEPARATOR},
	    {"Bearer method=\"apple-as-web\" ,  url=\"https://a.example/x\"",
	     EB_WWWAUTH_DEV_SEPARATOR},
	    {"Bearer  method=\"apple-as-web\", url=\"https://a.example/x\"",
	     EB_WWWAUTH_DEV_SEPARATOR},
	    {"Bearer method = \"apple-as-web\", url=\"https://a.example/x\"",
	     EB_WWWAUTH_DEV_WHITESPACE},
	    {"Bearer method=\"apple-as-web\", url=\"https://a.example/\\x\"",
	     EB_WWWAUTH_DEV_ESCAPE},
	    {"Bearer method=\"apple-as-web\", url=\"https://a.example/x\",",
	     EB_WWWAUTH_DEV_EMPTY_ELEMENT},
	    {"Bearer Method=\"apple-as-web\", url=\"https://a.example/x\"",
	     EB_WWWAUTH_DEV_NAME_CASE},
	    {"Negotiate method=\"apple-as-web\"", EB_WWWAUTH_DEV_SCHEME},
	};
	struct eb_wwwauth w;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse(&w, cases[i].in, 0, err), 0);
		assert_int_equal(w.deviations, cases[i].dev);
		assert_non_null(eb_wwwauth_param(&w, "method"));
		eb_wwwauth_finish(&w);
		assert_int_equal(parse(&w, cases[i].in, EB_WWWAUTH_STRICT, err),
		                 -1);
		assert_non_null(strstr(err, "not Apple's exact form"));
		eb_wwwauth_finish(&w);
	}
}

static void
test_tolerant_values(void **state)
{
	struct eb_wwwauth w;
	char err[256];
	const char *in = "Bearer realm=\"a \\\"q\\\" b\", error=invalid_token,"
	                 " scope=\"\", URL=\"https://x.example/\"";

	assert_int_equal(parse(&w, in, 0, err), 0);
	assert_int_equal(w.nparams, 4);
	assert_string_equal(eb_wwwauth_param(&w, "realm"), "a \"q\" b");
	assert_string_equal(eb_wwwauth_param(&w, "error"), "invalid_token");
	assert_string_equal(eb_wwwauth_param(&w, "scope"), "");
	assert_string_equal(w.params[3].name, "url");
	assert_int_equal(eb_wwwauth_method(&w), EB_WWWAUTH_METHOD_UNKNOWN);
	/* escaped quotes cannot be written back in Apple's form */
	assert_null(eb_wwwauth_format(&w));
	eb_wwwauth_finish(&w);
}

static void
test_syntax_errors(void **state)
{
	static const char *const bad[] = {"",
	                                  "   ",
	                                  "=x",
	                                  "Bearer method=\"apple-as-web",
	                                  "Bearer method=",
	                                  "Bearer method",
	                                  "Bearer dGVzdA==",
	                                  "Bearer a=\"1\" b=\"2\"",
	                                  "Bearer a=\"1\", Basic realm=\"x\"",
	                                  "Bearer a=\"1\", a=\"2\"",
	                                  "Bearer a=\"1\", A=\"2\"",
	                                  "Bearer a=\"x\x01y\"",
	                                  "Bearer a=\"x\ny\"",
	                                  "Bearer\"a\"",
	                                  NULL};
	struct eb_wwwauth w;
	char err[256];
	size_t i;

	for (i = 0; bad[i] != NULL; i++) {
		assert_int_equal(parse(&w, bad[i], 0, err), -1);
		assert_true(err[0] != '\0');
		eb_wwwauth_finish(&w);
	}
	/* an embedded NUL is not a header character */
	assert_int_equal(
	    eb_wwwauth_parse(&w, "Bearer a=\"x\0y\"", 14, 0, err, sizeof(err)),
	    -1);
	eb_wwwauth_finish(&w);
}

static void
test_limits(void **state)
{
	struct eb_wwwauth w;
	char err[256], buf[EB_WWWAUTH_MAX_LEN + 64];
	size_t i, n;

	n = (size_t)snprintf(buf, sizeof(buf), "Bearer");
	for (i = 0; i < EB_WWWAUTH_MAX_PARAMS; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%sp%zu=\"v\"",
		                      i ? ", " : " ", i);
	assert_int_equal(parse(&w, buf, EB_WWWAUTH_STRICT, err), 0);
	assert_int_equal(w.nparams, EB_WWWAUTH_MAX_PARAMS);
	eb_wwwauth_finish(&w);
	snprintf(buf + n, sizeof(buf) - n, ", extra=\"v\"");
	assert_int_equal(parse(&w, buf, 0, err), -1);
	assert_non_null(strstr(err, "parameters"));
	eb_wwwauth_finish(&w);

	memcpy(buf, "Bearer a=\"", 10);
	memset(buf + 10, 'x', EB_WWWAUTH_MAX_LEN - 11);
	buf[EB_WWWAUTH_MAX_LEN - 1] = '"';
	assert_int_equal(
	    eb_wwwauth_parse(&w, buf, EB_WWWAUTH_MAX_LEN, 0, err, sizeof(err)),
	    0);
	eb_wwwauth_finish(&w);
	buf[EB_WWWAUTH_MAX_LEN - 1] = 'x';
	buf[EB_WWWAUTH_MAX_LEN] = '"';
	assert_int_equal(eb_wwwauth_parse(&w, buf, EB_WWWAUTH_MAX_LEN + 1, 0,
	                                  err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "longer"));
	eb_wwwauth_finish(&w);
}

static void
test_check_apple(void **state)
{
	static const struct {
		const char *in;
		int ok;
		const char *why;
	} cases[] = {
	    {"Bearer method=\"apple-as-web\", url=\"https://a.example/x\"", 1,
	     NULL},
	    {"Bearer method=\"apple-as-web\", url=\"http://127.0.0.1:8080/x\"",
	     1, NULL},
	    {"Bearer method=\"apple-as-web\", url=\"http://[::1]/x\"", 1, NULL},
	    {"Bearer method=\"apple-as-web\", url=\"http://a.example/x\"", 0,
	     "loopback"},
	    {"Bearer method=\"apple-as-web\", url=\"/auth\"", 0, "https"},
	    {"Bearer method=\"apple-as-web\", url=\"https://u:p@a.example/\"",
	     0, "password"},
	    {"Bearer method=\"apple-as-web\", url=\"https:///x\"", 0, "host"},
	    {"Bearer method=\"apple-as-web\", url=\"https://a.example:99999/\"",
	     0, "port"},
	    {"Bearer method=\"apple-as-web\"", 0, "url"},
	    {"bearer method=\"apple-as-web\", url=\"https://a.example/x\"", 0,
	     "Bearer"},
	    {"Bearer url=\"https://a.example/x\"", 0, "method"},
	    {"Bearer method=\"apple-saml\"", 0, "unknown method"},
	    {"Bearer method=\"apple-oauth2\", authorization-url=\"https://a."
	     "example/a\", token-url=\"https://a.example/t\", redirect-url=\"x:"
	     "/r\", client-id=\"c\", scope=\"\"",
	     1, NULL},
	    {"Bearer method=\"apple-oauth2\", authorization-url=\"https://a."
	     "example/a\", token-url=\"https://a.example/t\", redirect-url=\"x:"
	     "/r\", client-id=\"c\"",
	     0, "scope"},
	    {"Bearer method=\"apple-oauth2\", authorization-url=\"https://a."
	     "example/a\", token-url=\"ftp://a.example/t\", redirect-url=\"x:"
	     "/r\", client-id=\"c\", scope=\"s\"",
	     0, "token-url"},
	    {"Bearer method=\"apple-oauth2\", authorization-url=\"https://a."
	     "example/a\", token-url=\"https://a.example/t\", client-id=\"c\", "
	     "scope=\"s\"",
	     0, "redirect-url"},
	};
	struct eb_wwwauth w;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse(&w, cases[i].in, 0, err), 0);
		err[0] = '\0';
		if (eb_wwwauth_check_apple(&w, err, sizeof(err)) !=
		    (cases[i].ok ? 0 : -1))
			fail_msg("case %zu: %s: \"%s\"", i, cases[i].in, err);
		if (cases[i].why != NULL && strstr(err, cases[i].why) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err,
			         cases[i].why);
		eb_wwwauth_finish(&w);
	}
}

static void
test_format(void **state)
{
	struct eb_wwwauth w;
	char err[256], *s;

	assert_int_equal(parse(&w,
	                       "Bearer  METHOD=apple-as-web ,url = "
	                       "\"https://a.example/x\"",
	                       0, err),
	                 0);
	s = eb_wwwauth_format(&w);
	assert_string_equal(
	    s, "Bearer method=\"apple-as-web\", url=\"https://a.example/x\"");
	eb_free(s);
	eb_wwwauth_finish(&w);
}

static void
test_describe(void **state)
{
	char out[512];

	eb_wwwauth_describe(EB_WWWAUTH_DEV_UNQUOTED | EB_WWWAUTH_DEV_SEPARATOR,
	                    out, sizeof(out));
	assert_string_equal(out, "a value is not quoted; parameters are not "
	                         "separated by exactly \", \"");
	eb_wwwauth_describe(0xff, out, 20);
	assert_true(strlen(out) < 20);
}

/* Every allocation failure is reported, never crashes or leaks. */
static void
test_alloc_failures(void **state)
{
	const char *in = "Bearer method=\"apple-as-web\", url=\"https://a/x\"";
	struct eb_wwwauth_challenge ch = {.method = EB_WWWAUTH_METHOD_AS_WEB,
	                                  .url = "https://a/x"};
	struct eb_wwwauth w;
	char err[256], *s;
	long n;

	for (n = 0; n < 50; n++) {
		eb_mem_fail_after(n);
		if (parse(&w, in, EB_WWWAUTH_STRICT, err) == 0) {
			eb_wwwauth_finish(&w);
			break;
		}
		eb_wwwauth_finish(&w);
	}
	eb_mem_fail_after(-1);
	assert_true(n < 50);
	for (n = 0; n < 50; n++) {
		eb_mem_fail_after(n);
		s = eb_wwwauth_build(&ch);
		if (s != NULL) {
			eb_free(s);
			break;
		}
	}
	eb_mem_fail_after(-1);
	assert_true(n < 50);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_build_as_web),
	    cmocka_unit_test(test_build_oauth2),
	    cmocka_unit_test(test_build_refuses_bad_values),
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_deviations),
	    cmocka_unit_test(test_tolerant_values),
	    cmocka_unit_test(test_syntax_errors),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_check_apple),
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_describe),
	    cmocka_unit_test(test_alloc_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
