/*
 * Unit tests for the pure checks of src/cli/discover.c: discovery body
 * shape, content type, cache control, the 403 refusal, the 401 challenge
 * headers and the ESSO document, plus the command line's usage errors.
 * The network walk is covered by the integration tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cli/discover.h"

/* Result of the last check called name; fails the test when absent. */
static enum eb_discover_result
result_of(const struct eb_discover_report *r, const char *name)
{
	const struct eb_discover_check *c = eb_discover_report_find(r, name);

	if (c == NULL)
		fail_msg("no check named %s", name);
	return c->result;
}

static const char *
detail_of(const struct eb_discover_report *r, const char *name)
{
	const struct eb_discover_check *c = eb_discover_report_find(r, name);

	if (c == NULL)
		fail_msg("no check named %s", name);
	return c->detail;
}

static int
body(const char *s, struct eb_discover_report *r,
     struct eb_discover_server *out)
{
	eb_discover_report_init(r);
	return eb_discover_check_body(s, strlen(s), r, out);
}

static void
test_body_good(void **state)
{
	struct eb_discover_report r;
	struct eb_discover_server s;

	assert_int_equal(
	    body("{\"Servers\":[{\"Version\":\"mdm-byod\","
	         "\"BaseURL\":\"https://b.example/t/a/enroll?x=1\"}]}",
	         &r, &s),
	    0);
	assert_int_equal(r.nfail, 0);
	assert_int_equal(result_of(&r, "json"), EB_DISCOVER_PASS);
	assert_int_equal(result_of(&r, "servers"), EB_DISCOVER_PASS);
	assert_int_equal(result_of(&r, "version"), EB_DISCOVER_PASS);
	assert_int_equal(result_of(&r, "base-url"), EB_DISCOVER_PASS);
	assert_string_equal(s.version, "mdm-byod");
	assert_string_equal(s.base_url, "https://b.example/t/a/enroll?x=1");
	eb_discover_server_finish(&s);
	eb_discover_report_finish(&r);

	assert_int_equal(body("{\"Servers\":[{\"Version\":\"mdm-adde\","
	                      "\"BaseURL\":\"http://127.0.0.1:8080/enroll\"}]}",
	                      &r, NULL),
	                 0);
	assert_non_null(strstr(detail_of(&r, "version"), "Device Enrollment"));
	eb_discover_report_finish(&r);
}

static void
test_body_bad(void **state)
{
	static const struct {
		const char *in;
		const char *check;
		const char *detail;
	} cases[] = {
	    {"", "json", "not valid JSON"},
	    {"<html>Not Found</html>", "json", "not valid JSON"},
	    {"[]", "json", "not an object"},
	    {"{\"Servers\":[],\"Servers\":[]}", "json", "duplicate"},
	    {"{\"servers\":[]}", "servers", "no \"Servers\""},
	    {"{\"Servers\":{}}", "servers", "not an array"},
	    {"{\"Servers\":[]}", "servers", "0 entries"},
	    {"{\"Servers\":[{\"Version\":\"mdm-byod\",\"BaseURL\":\"https://a."
	     "example/\"},{\"Version\":\"mdm-byod\",\"BaseURL\":\"https://b."
	     "example/\"}]}",
	     "servers", "2 entries"},
	    {"{\"Servers\":[\"https://a.example/\"]}", "servers",
	     "not an object"},
	    {"{\"Servers\":[{\"BaseURL\":\"https://a.example/\"}]}", "version",
	     "no \"Version\""},
	    {"{\"Servers\":[{\"Version\":\"mdm\",\"BaseURL\":\"https://a."
	     "example/\"}]}",
	     "version", "unknown Version"},
	    {"{\"Servers\":[{\"Version\":\"mdm-byod\"}]}", "base-url",
	     "no \"BaseURL\""},
	    {"{\"Servers\":[{\"Version\":\"mdm-byod\",\"BaseURL\":\"/e\"}]}",
	     "base-url", "not an absolute https URL"},
	    {"{\"Servers\":[{\"Version\":\"mdm-byod\",\"BaseURL\":\"http://mdm."
	     "example/e\"}]}",
	     "base-url", "loopback"},
	};
	struct eb_discover_report r;
	struct eb_discover_server s;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(body(cases[i].in, &r, &s), -1);
		assert_int_equal(r.nfail, 1);
		assert_int_equal(result_of(&r, cases[i].check),
		                 EB_DISCOVER_FAIL);
		if (strstr(detail_of(&r, cases[i].check), cases[i].detail) ==
		    NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i,
			         detail_of(&r, cases[i].check),
			         cases[i].detail);
		assert_non_null(
		    eb_discover_report_find(&r, cases[i].check)->hint);
		assert_null(s.base_url);
		eb_discover_report_finish(&r);
	}
}

static void
test_body_too_large(void **state)
{
	static char big[EB_DISCOVER_MAX_BODY + 2];
	struct eb_discover_report r;

	memset(big, ' ', sizeof(big) - 1);
	memcpy(big, "{}", 2);
	eb_discover_report_init(&r);
	assert_int_equal(eb_discover_check_body(big, sizeof(big) - 1, &r, NULL),
	                 -1);
	assert_non_null(strstr(detail_of(&r, "json"), "larger"));
	eb_discover_report_finish(&r);
}

static void
test_content_type(void **state)
{
	struct eb_discover_report r;
	const struct eb_discover_check *c;

	eb_discover_report_init(&r);
	assert_int_equal(eb_discover_check_content_type("application/json", &r),
	                 0);
	assert_int_equal(result_of(&r, "content-type"), EB_DISCOVER_PASS);
	assert_int_equal(eb_discover_check_content_type(
	                     "application/json; charset=utf-8", &r),
	                 -1);
	c = eb_discover_report_find(&r, "content-type");
	assert_int_equal(c->result, EB_DISCOVER_FAIL);
	assert_non_null(strstr(c->detail, "parameters"));
	assert_non_null(strstr(c->hint, "Sign-in Failed"));
	assert_int_equal(eb_discover_check_content_type("text/html", &r), -1);
	assert_int_equal(
	    eb_discover_check_content_type("application/jsonx", &r), -1);
	assert_int_equal(eb_discover_check_content_type(NULL, &r), -1);
	assert_int_equal(r.nfail, 4);
	eb_discover_report_finish(&r);
}

static void
test_cache_control(void **state)
{
	struct eb_discover_report r;

	eb_discover_report_init(&r);
	assert_int_equal(eb_discover_check_cache_control("no-store", &r), 0);
	assert_int_equal(result_of(&r, "cache-control"), EB_DISCOVER_PASS);
	assert_int_equal(
	    eb_discover_check_cache_control("private, No-Store, max-age=0", &r),
	    0);
	assert_int_equal(result_of(&r, "cache-control"), EB_DISCOVER_PASS);
	/* a missing no-store only warns */
	assert_int_equal(eb_discover_check_cache_control("max-age=60", &r), 0);
	assert_int_equal(result_of(&r, "cache-control"), EB_DISCOVER_WARN);
	assert_int_equal(eb_discover_check_cache_control("no-store-ish", &r),
	                 0);
	assert_int_equal(result_of(&r, "cache-control"), EB_DISCOVER_WARN);
	assert_int_equal(eb_discover_check_cache_control(NULL, &r), 0);
	assert_int_equal(r.nfail, 0);
	assert_int_equal(r.nwarn, 3);
	eb_discover_report_finish(&r);
}

static void
test_refusal(void **state)
{
	const char *doc = "{\"code\":\"com.apple.well-known.failed\","
	                  "\"description\":\"unknown domain\",\"message\":"
	                  "\"Ask IT\\u0007\"}";
	struct eb_discover_report r;
	const char *d;

	eb_discover_report_init(&r);
	assert_int_equal(eb_discover_check_refusal(doc, strlen(doc), &r), -1);
	d = detail_of(&r, "status");
	assert_non_null(strstr(d, "user refused"));
	assert_non_null(strstr(d, "unknown domain"));
	/* server text reaches the terminal without control characters */
	assert_non_null(strstr(d, "Ask IT?"));
	eb_discover_report_finish(&r);

	eb_discover_report_init(&r);
	assert_int_equal(eb_discover_check_refusal("Forbidden", 9, &r), -1);
	assert_non_null(strstr(detail_of(&r, "status"),
	                       "without a com.apple.well-known.failed"));
	eb_discover_report_finish(&r);
}

static int
challenge(const char *v, struct eb_discover_report *r)
{
	const char *vals[1] = {v};

	eb_discover_report_init(r);
	return eb_discover_check_challenge(vals, 1, r);
}

static void
test_challenge(void **state)
{
	struct eb_discover_report r;
	const char *two[2] = {
	    "Bearer method=\"apple-as-web\", url=\"https://a.example/x\"",
	    "Basic realm=\"x\""};

	assert_int_equal(challenge("Bearer method=\"apple-as-web\", "
	                           "url=\"https://a.example/x\"",
	                           &r),
	                 0);
	assert_int_equal(result_of(&r, "challenge"), EB_DISCOVER_PASS);
	assert_int_equal(result_of(&r, "challenge-method"), EB_DISCOVER_PASS);
	eb_discover_report_finish(&r);

	assert_int_equal(challenge("Bearer method=\"apple-oauth2\", "
	                           "authorization-url=\"https://a.example/a\", "
	                           "token-url=\"https://a.example/t\", "
	                           "redirect-url=\"myapp:/cb\", "
	                           "client-id=\"c\", scope=\"mdm\"",
	                           &r),
	                 0);
	assert_int_equal(result_of(&r, "challenge-method"), EB_DISCOVER_PASS);
	assert_int_equal(result_of(&r, "redirect-url"), EB_DISCOVER_WARN);
	eb_discover_report_finish(&r);

	/* Apple's exact form is required */
	assert_int_equal(challenge("Bearer method=\"apple-as-web\","
	                           "url=\"https://a.example/x\"",
	                           &r),
	                 -1);
	assert_non_null(strstr(detail_of(&r, "challenge"), "separated"));
	eb_discover_report_finish(&r);
	assert_int_equal(challenge("bearer method=\"apple-as-web\", "
	                           "url=\"https://a.example/x\"",
	                           &r),
	                 -1);
	eb_discover_report_finish(&r);
	assert_int_equal(challenge("Bearer method=\"apple-as-web\", "
	                           "url=\"http://a.example/x\"",
	                           &r),
	                 -1);
	assert_int_equal(result_of(&r, "challenge"), EB_DISCOVER_PASS);
	assert_int_equal(result_of(&r, "challenge-method"), EB_DISCOVER_FAIL);
	eb_discover_report_finish(&r);

	eb_discover_report_init(&r);
	assert_int_equal(eb_discover_check_challenge(two, 2, &r), -1);
	assert_non_null(strstr(detail_of(&r, "challenge"), "exactly one"));
	assert_int_equal(eb_discover_check_challenge(two, 0, &r), -1);
	assert_int_equal(r.nfail, 2);
	eb_discover_report_finish(&r);
}

static void
test_esso(void **state)
{
	static const struct {
		const char *in;
		int dev;
		int rc;
	} cases[] = {
	    {"{\"iTunesStoreID\":123456789}", 0, 0},
	    {"{\"iTunesStoreID\":1,\"AssociatedDomains\":[\"authsrv:a.b\"],"
	     "\"AssociatedDomainsEnableDirectDownloads\":true,"
	     "\"ConfigurationProfile\":\"TUlJ\"}",
	     0, 0},
	    {"{\"AppIDs\":[\"TEAM.com.example.sso\"]}", 1, 0},
	    {"{\"iTunesStoreID\":\"123\"}", 0, -1},
	    {"{\"iTunesStoreID\":1.5}", 0, -1},
	    {"{\"AppIDs\":[]}", 1, -1},
	    {"{\"AppIDs\":[1]}", 1, -1},
	    {"{}", 0, -1},
	    {"{\"iTunesStoreID\":1,\"AssociatedDomains\":\"a\"}", 0, -1},
	    {"{\"iTunesStoreID\":1,\"ConfigurationProfile\":{}}", 0, -1},
	    {"nope", 0, -1},
	};
	struct eb_discover_report r;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		eb_discover_report_init(&r);
		if (eb_discover_check_esso_body(
		        cases[i].in, strlen(cases[i].in), cases[i].dev, &r) !=
		    cases[i].rc)
			fail_msg("case %zu: %s", i, cases[i].in);
		eb_discover_report_finish(&r);
	}
}

static void
test_usage_errors(void **state)
{
	char *a1[] = {"discover", NULL};
	char *a2[] = {"discover", "a@b@example.com", NULL};
	char *a3[] = {"discover", "alice@example.com", "--bogus", NULL};
	char *a4[] = {"discover", "alice@example.com", "--model-family",
	              "Toaster", NULL};
	char *a5[] = {"discover", "alice@example.com", "--base", NULL};
	char *a6[] = {"discover", "alice@example.com", "--base",
	              "ftp://x.example", NULL};
	char *a7[] = {"discover", "--help", NULL};

	assert_int_equal(eb_cli_discover(1, a1), 2);
	assert_int_equal(eb_cli_discover(2, a2), 2);
	assert_int_equal(eb_cli_discover(3, a3), 2);
	assert_int_equal(eb_cli_discover(4, a4), 2);
	assert_int_equal(eb_cli_discover(3, a5), 2);
	assert_int_equal(eb_cli_discover(4, a6), 2);
	assert_int_equal(eb_cli_discover(2, a7), 0);
}

/* A server that is not there: one FAIL, exit 1, nothing hangs. */
static void
test_unreachable(void **state)
{
	char *a[] = {"discover",  "alice@example.com",
	             "--base",    "http://127.0.0.1:9",
	             "--timeout", "5",
	             NULL};

	assert_int_equal(eb_cli_discover(6, a), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_body_good),
	    cmocka_unit_test(test_body_bad),
	    cmocka_unit_test(test_body_too_large),
	    cmocka_unit_test(test_content_type),
	    cmocka_unit_test(test_cache_control),
	    cmocka_unit_test(test_refusal),
	    cmocka_unit_test(test_challenge),
	    cmocka_unit_test(test_esso),
	    cmocka_unit_test(test_usage_errors),
	    cmocka_unit_test(test_unreachable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
