/*
 * Unit tests for the proxy's path rules (eb_proxy_rest_ok in
 * src/handle/proxy_fwd.c): the decoded {rest} never holds a dot segment in
 * any spelling a server behind the bridge might walk up with, a
 * backslash, a control byte or malformed UTF-8; and for the header rule
 * that only token names cross (eb_proxy_request_header_ok), and the
 * upstream URL normalised once from the raw target
 * (eb_proxy_upstream_url_raw).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/mem.h"
#include "handle/proxy_int.h"

static void
test_dot_segments(void **state)
{
	/* as the server hands {rest} over: percent-decoded once */
	static const char *bad[] = {
	    "..",
	    ".",
	    "...",
	    "a/../b",
	    "a/..",
	    "../a",
	    "..;/admin",
	    "..;x=1/admin",
	    ".;x/checkin",
	    "a/.;/b",
	    ".. /admin",
	    "..\t/admin",
	    "a/. ",
	    "..../x",
	    "a/...",
	    "a/..; /b",
	    "a\\b",
	    "..\\admin",
	    "a\x01",
	    "a\x7f",
	    "a\r\nb",
	    "\xc0\xae\xc0\xae/admin",
	    "\xe0\x80\xae",
	    "\xc0\xaf",
	    "a\xff",
	    "a\xed\xa0\x80",
	    "",
	    "/x",
	};
	static const char *good[] = {
	    "checkin",     "mdm/connect",   "a/b.c/..d/",
	    "a..b/.c/d..", ".well-known/x", "a;b/c",
	    "a/b;c=d",     "caf\xc3\xa9",   "a%2Fb", /* literal % */
	    "a b/c",       "a/..x",         "...a",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (eb_proxy_rest_ok(bad[i]))
			fail_msg("rest accepted: \"%s\"", bad[i]);
	for (i = 0; i < sizeof(good) / sizeof(*good); i++)
		if (!eb_proxy_rest_ok(good[i]))
			fail_msg("rest refused: \"%s\"", good[i]);
	assert_false(eb_proxy_rest_ok(NULL));
}

static void
test_header_names(void **state)
{
	(void)state;
	assert_true(eb_proxy_request_header_ok("X-Custom", NULL));
	assert_true(eb_proxy_request_header_ok("Mdm-Signature", NULL));
	/* not tokens: what a lenient parser leaves in a name */
	assert_false(eb_proxy_request_header_ok("Transfer-Encoding ", NULL));
	assert_false(eb_proxy_request_header_ok(
	    "X-FooX-Managed-Apple-ID: victim", NULL));
	assert_false(eb_proxy_request_header_ok("X(y)", NULL));
	assert_false(eb_proxy_request_header_ok("", NULL));
	/* ours, in any case, and every forwarding header */
	assert_false(eb_proxy_request_header_ok("x-managed-apple-id", NULL));
	assert_false(eb_proxy_request_header_ok("X-Enrollbridge-Other", NULL));
	assert_false(eb_proxy_request_header_ok("X-Forwarded-Prefix", NULL));
	assert_false(eb_proxy_request_header_ok("X-Forwarded-Port", NULL));
	assert_false(eb_proxy_request_header_ok("Transfer-Encoding", NULL));
	assert_false(eb_proxy_request_header_ok("X-Hop", "close, x-hop"));
}

static void
expect_url(const char *target, const char *want)
{
	char *u = eb_proxy_upstream_url_raw("http://mdm:8080/base/", target);

	if (want == NULL) {
		if (u != NULL)
			fail_msg("%s -> %s, want NULL", target, u);
		return;
	}
	if (u == NULL || strcmp(u, want) != 0)
		fail_msg("%s -> %s, want %s", target, u ? u : "NULL", want);
	eb_free(u);
}

static void
test_normalised_once(void **state)
{
	(void)state;
	expect_url("/t/gen/mdm/checkin", "http://mdm:8080/base/checkin");
	/* unreserved escapes decoded, other escapes kept, upper-cased */
	expect_url("/t/gen/mdm/%41%2d%7e/a%3bb%3D/c%20d%25",
	           "http://mdm:8080/base/A-~/a%3Bb%3D/c%20d%25");
	/* a reserved character stays encoded: never a new ";" parameter */
	expect_url("/t/gen/mdm/checkin%3Bjsessionid=1",
	           "http://mdm:8080/base/checkin%3Bjsessionid=1");
	/* bytes a path may not hold are encoded; the query goes as sent */
	expect_url("/t/gen/mdm/a\"b?x=1&y=%2F",
	           "http://mdm:8080/base/a%22b?x=1&y=%2F");
	/* an encoded tenant id does not move {rest} */
	expect_url("/t/%67en/mdm/x", "http://mdm:8080/base/x");
	expect_url("/t/gen/mdm/a%zz", NULL);
	expect_url("/t/gen/mdm/a%4", NULL);
	expect_url("/t/gen/mdm?x=/a/b", NULL);
	expect_url("http://h/t/gen/mdm/x", NULL);
	expect_url("/t/gen/mdm/a?x=\"", NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dot_segments),
	    cmocka_unit_test(test_header_names),
	    cmocka_unit_test(test_normalised_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
