/*
 * Strict form parser: decoding, repeated parameters refused (RFC 6749),
 * bad escapes, NUL, limits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/mem.h"
#include "http/form.h"

static int
parse(const char *s, struct eb_form *f)
{
	char err[128];

	return eb_form_parse(s, strlen(s), f, err, sizeof(err));
}

static void
test_decoding(void **state)
{
	struct eb_form f;

	assert_int_equal(parse("grant_type=authorization_code&redirect_uri="
	                       "apple-remotemanagement-user-login%3A%2Foauth2"
	                       "%2Fredirection&x=a+b%2Bc&empty=&bare",
	                       &f),
	                 0);
	assert_int_equal(f.n, 5);
	assert_string_equal(eb_form_get(&f, "grant_type"),
	                    "authorization_code");
	assert_string_equal(eb_form_get(&f, "redirect_uri"),
	                    "apple-remotemanagement-user-login:/oauth2/"
	                    "redirection");
	assert_string_equal(eb_form_get(&f, "x"), "a b+c");
	assert_string_equal(eb_form_get(&f, "empty"), "");
	assert_string_equal(eb_form_get(&f, "bare"), "");
	assert_null(eb_form_get(&f, "missing"));
	eb_form_finish(&f);

	assert_int_equal(parse("", &f), 0);
	assert_int_equal(f.n, 0);
	assert_int_equal(parse("&&a=1&&", &f), 0);
	assert_int_equal(f.n, 1);
	eb_form_finish(&f);
}

static void
test_refusals(void **state)
{
	static const char *const bad[] = {
	    "code=a&code=b", "a=%zz", "a=%0",        "a=%",
	    "a=%00",         "=v",    "%3D=1&%3D=2",
	};
	struct eb_form f;
	char err[128];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
		    eb_form_parse(bad[i], strlen(bad[i]), &f, err, sizeof(err)),
		    -1);
		assert_int_equal(f.n, 0);
		assert_non_null(strstr(err, "malformed form"));
	}
	/* an embedded NUL byte in the raw input */
	assert_int_equal(eb_form_parse("a=b\0c", 5, &f, err, sizeof(err)), -1);
}

static void
test_limits(void **state)
{
	char buf[2048];
	struct eb_form f;
	size_t i, n = 0;

	for (i = 0; i < EB_FORM_MAX_PAIRS + 1; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "p%zu=1&", i);
	assert_int_equal(parse(buf, &f), -1);
	buf[0] = '\0';
	for (n = 0, i = 0; i < EB_FORM_MAX_PAIRS; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "p%zu=1&", i);
	assert_int_equal(parse(buf, &f), 0);
	assert_int_equal(f.n, EB_FORM_MAX_PAIRS);
	eb_form_finish(&f);
}

static void
test_alloc_failures(void **state)
{
	struct eb_form f;
	long i;

	for (i = 0; i < 10; i++) {
		eb_mem_fail_after(i);
		if (parse("a=1&b=2&c=3", &f) == 0)
			eb_form_finish(&f);
	}
	eb_mem_fail_after(-1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decoding),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
