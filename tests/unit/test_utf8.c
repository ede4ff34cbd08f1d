/*
 * UTF-8 checks (core/str.h): what is well-formed per RFC 3629, that a typed
 * identifier with any byte that is not UTF-8 is refused, and that JSON
 * output stays valid JSON whatever bytes it is given.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/str.h"

#define U8(s) eb_str_is_utf8((s), sizeof(s) - 1)

static void
test_wellformed(void **state)
{
	(void)state;
	assert_true(U8(""));
	assert_true(U8("alice@example.com"));
	assert_true(U8("caf\xc3\xa9"));      /* U+00E9 */
	assert_true(U8("\xe2\x82\xac"));     /* U+20AC */
	assert_true(U8("\xf0\x9f\x98\x80")); /* U+1F600 */
	assert_true(U8("\xf4\x8f\xbf\xbf")); /* U+10FFFF */
	assert_true(U8("\xed\x9f\xbf"));     /* U+D7FF */
	assert_false(U8("\xff\xfe"
	                "alice"));            /* never in UTF-8 */
	assert_false(U8("alice\x80"));        /* stray continuation */
	assert_false(U8("\xc3"));             /* cut short */
	assert_false(U8("\xe2\x82"));         /* cut short */
	assert_false(U8("\xc0\xae"));         /* overlong '.' */
	assert_false(U8("\xc1\xbf"));         /* overlong */
	assert_false(U8("\xe0\x80\xae"));     /* overlong */
	assert_false(U8("\xf0\x80\x80\xae")); /* overlong */
	assert_false(U8("\xed\xa0\x80"));     /* surrogate U+D800 */
	assert_false(U8("\xf4\x90\x80\x80")); /* past U+10FFFF */
	assert_false(U8("\xf5\x80\x80\x80"));
	assert_false(U8("\xc3\x28")); /* bad continuation */
	assert_int_equal(eb_str_utf8_seq("\xe2\x82\xac!", 4), 3);
	assert_int_equal(eb_str_utf8_seq("a", 1), 1);
	assert_int_equal(eb_str_utf8_seq("\xe2\x82\xac", 2), 0);
	assert_int_equal(eb_str_utf8_seq("", 0), 0);
}

static void
test_identifier(void **state)
{
	char *l, *d;

	(void)state;
	assert_int_equal(eb_str_split_identifier("\xff\xfe"
	                                         "alice@example.com",
	                                         &l, &d),
	                 -1);
	assert_null(l);
	assert_int_equal(
	    eb_str_split_identifier("alice@exa\xc0\xaemple.com", &l, &d), -1);
	assert_int_equal(
	    eb_str_split_identifier("al\xed\xa0\x80ice@example.com", &l, &d),
	    -1);
	/* well-formed UTF-8 in the local part is fine */
	assert_int_equal(
	    eb_str_split_identifier("j\xc3\xb6rg@example.com", &l, &d), 0);
	assert_string_equal(l, "j\xc3\xb6rg");
	assert_string_equal(d, "example.com");
	eb_free(l);
	eb_free(d);
}

static void
test_json_str(void **state)
{
	struct eb_buf b;
	json_t *j;
	json_error_t err;

	(void)state;
	eb_buf_init(&b, 1024);
	assert_int_equal(eb_buf_add_json_str(&b, "a\xff\xfe"
	                                         "b\xc3\xa9\n\xe2\x82"),
	                 0);
	assert_string_equal(eb_buf_str(&b),
	                    "\"a\\ufffd\\ufffdb\xc3\xa9\\n\\ufffd\\ufffd\"");
	j = json_loads(eb_buf_str(&b), JSON_DECODE_ANY, &err);
	assert_non_null(j);
	assert_string_equal(json_string_value(j),
	                    "a\xef\xbf\xbd\xef\xbf\xbd"
	                    "b\xc3\xa9\n\xef\xbf\xbd\xef\xbf\xbd");
	json_decref(j);
	eb_buf_finish(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wellformed),
	    cmocka_unit_test(test_identifier),
	    cmocka_unit_test(test_json_str),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
