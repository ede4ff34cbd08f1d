/*
 * The authorization endpoint's error redirect (RFC 6749 4.1.2.1) carries
 * the device's state back whole, or is not made: a long registered
 * redirect_uri must not yield a URL cut after "&state=".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "handle/handle.h"

static void
test_error_uri(void **state)
{
	struct eb_buf b;

	(void)state;
	eb_buf_init(&b, EB_OAUTH2_ERROR_URI_MAX);
	assert_int_equal(eb_oauth2_error_uri(&b, "https://app.example/cb",
	                                     "invalid_request", "bad pkce",
	                                     "s 1"),
	                 0);
	assert_string_equal(eb_buf_str(&b),
	                    "https://app.example/cb?error=invalid_request"
	                    "&error_description=bad%20pkce&state=s%201");
	eb_buf_reset(&b);
	/* a registered URI with a query gets the parameters after it */
	assert_int_equal(eb_oauth2_error_uri(&b, "https://app.example/cb?x=1",
	                                     "unsupported_response_type", NULL,
	                                     NULL),
	                 0);
	assert_string_equal(eb_buf_str(&b), "https://app.example/cb?x=1"
	                                    "&error=unsupported_response_type");
	eb_buf_finish(&b);
}

/* Every length of redirect_uri around the limit: the result ends with the
 * whole state, or the call fails. */
static void
test_error_uri_long(void **state)
{
	static const char st[] = "device-state-0123456789";
	char ruri[EB_OAUTH2_ERROR_URI_MAX + 1];
	struct eb_buf b;
	size_t n, failed = 0;
	const char *s;

	(void)state;
	for (n = EB_OAUTH2_ERROR_URI_MAX - 120; n < sizeof(ruri); n++) {
		memcpy(ruri, "https://a.example/", 18);
		memset(ruri + 18, 'p', n - 18);
		ruri[n] = '\0';
		eb_buf_init(&b, EB_OAUTH2_ERROR_URI_MAX);
		if (eb_oauth2_error_uri(&b, ruri, "invalid_request", NULL,
		                        st) == -1) {
			failed++;
		} else {
			s = eb_buf_str(&b);
			assert_true(strlen(s) > sizeof(st));
			assert_string_equal(s + strlen(s) - (sizeof(st) - 1),
			                    st);
			assert_non_null(strstr(s, "&state="));
		}
		eb_buf_finish(&b);
	}
	/* the loop did reach the limit */
	assert_true(failed > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_error_uri),
	    cmocka_unit_test(test_error_uri_long),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
