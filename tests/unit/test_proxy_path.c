/*
 * Unit tests for the proxy's path rules (eb_proxy_rest_ok in
 * src/handle/proxy_fwd.c): the decoded {rest} never holds a dot segment in
 * any spelling a server behind the bridge might walk up with, a
 * backslash, a control byte or malformed UTF-8; and for the header rule
 * that only token names cross (eb_proxy_request_header_ok).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dot_segments),
	    cmocka_unit_test(test_header_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
