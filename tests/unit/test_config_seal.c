/*
 * The main-file key seal_keys (issue 12, item 6): a list of secret references,
 * each decoding to exactly 32 bytes (raw, base64, base64url); a wrong item is
 * refused naming the file and its index, never quoting the value.
 */
#define _XOPEN_SOURCE 700 /* nftw, mkdtemp (cfgfx.h) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"

#include "cfgfx.h"

static int
setup(void **state)
{
	(void)state;
	return cfgfx_setup("cfgseal");
}

static int
teardown(void **state)
{
	(void)state;
	return cfgfx_teardown();
}

/* The key 0xfb 0xff repeated, whose encodings use + / - _. */
#define KEY_STD "+//7//v/+//7//v/+//7//v/+//7//v/+//7//v/+/8="
#define KEY_URL "-__7__v_-__7__v_-__7__v_-__7__v_-__7__v_-_8"

static void
key_fbff(uint8_t k[32])
{
	size_t i;

	for (i = 0; i < 32; i++)
		k[i] = i % 2 ? 0xff : 0xfb;
}

static void
test_absent(void **state)
{
	struct eb_config_error e;
	struct eb_config *cfg;

	(void)state;
	assert_non_null(cfg = load_with("", &e));
	assert_null(cfg->seal_keys);
	assert_int_equal(cfg->nseal_keys, 0);
	eb_config_unref(cfg);
}

static void
test_good(void **state)
{
	uint8_t want[32], seq[32];
	struct eb_config_error e;
	struct eb_config *cfg;
	size_t i;

	(void)state;
	key_fbff(want);
	for (i = 0; i < 32; i++)
		seq[i] = (uint8_t)i;
	/* a file holding base64 with a newline, an env var holding base64url,
	 * an inline raw key of 32 characters, inline standard base64 */
	write_file("k1", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
	assert_int_equal(setenv("EB_TEST_SEAL_KEY", KEY_URL, 1), 0);
	assert_non_null(
	    cfg = load_with(
	        "\"seal_keys\": [\"file:k1\", \"env:EB_TEST_SEAL_KEY\", "
	        "\"0123456789abcdef0123456789ABCDEF\", "
	        "\"++/77/vv++/77/vv++/77/vv++/77/vv++/77/vv++8=\"]",
	        &e));
	assert_int_equal(cfg->nseal_keys, 4);
	assert_memory_equal(cfg->seal_keys[0], seq, 32);
	assert_memory_equal(cfg->seal_keys[1], want, 32);
	assert_memory_equal(cfg->seal_keys[2],
	                    "0123456789abcdef0123456789ABCDEF", 32);
	for (i = 0; i < 32; i++)
		want[i] = i % 2 ? 0xef : 0xfb;
	assert_memory_equal(cfg->seal_keys[3], want, 32);
	eb_config_unref(cfg);
	unsetenv("EB_TEST_SEAL_KEY");
}

/* Every refusal names the file and seal_keys[i], and never the value. */
static void
refused(const char *extra, const char *key, const char *reason,
        const char *secret)
{
	struct eb_config_error e;

	assert_null(load_with(extra, &e));
	assert_string_equal(e.key, key);
	if (strstr(e.reason, reason) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\"", e.reason, reason);
	assert_non_null(strstr(e.file, "config.json"));
	if (secret != NULL) {
		assert_null(strstr(e.reason, secret));
		assert_null(strstr(e.key, secret));
	}
}

static void
test_wrong_length(void **state)
{
	(void)state;
	/* 31 and 33 raw bytes, base64 of 31 bytes, base64 of 48 bytes */
	refused("\"seal_keys\": [\"0123456789abcdef0123456789ABCDE\"]",
	        "seal_keys[0]", "must be 32 bytes", "0123456789abcdef");
	refused("\"seal_keys\": [\"" KEY_URL "\", "
	        "\"0123456789abcdef0123456789ABCDEFG\"]",
	        "seal_keys[1]", "must be 32 bytes", "0123456789abcdef");
	refused(
	    "\"seal_keys\": [\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\"]",
	    "seal_keys[0]", "32 bytes", "AAECAwQF");
	refused("\"seal_keys\": [\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	        "gISIjJCUmJygpKissLS4v\"]",
	        "seal_keys[0]", "must be 32 bytes", "AAECAwQF");
	refused("\"seal_keys\": []", "seal_keys", "must not be empty", NULL);
	refused("\"seal_keys\": \"" KEY_URL "\"", "seal_keys", "must be a list",
	        NULL);
	refused("\"seal_keys\": [1]", "seal_keys[0]", "must be a string", NULL);
}

static void
test_bad_base64(void **state)
{
	(void)state;
	/* 43 characters, one outside both alphabets */
	refused(
	    "\"seal_keys\": [\"-__7__v_-__7__v_-__7__v_-__7__v_-__7__v_-_*\"]",
	    "seal_keys[0]", "not valid base64", "-__7__v_");
	/* padding in the middle */
	refused(
	    "\"seal_keys\": [\"+//7//v/+//7//v/+//7//v/+//7//v/+//7//v=+/8=\"]",
	    "seal_keys[0]", "not valid base64", "+//7//v/");
	/* the same key twice */
	refused("\"seal_keys\": [\"" KEY_URL "\", \"" KEY_STD "\"]",
	        "seal_keys[1]", "repeats seal_keys[0]", "+//7");
}

static void
test_missing_file(void **state)
{
	(void)state;
	refused("\"seal_keys\": [\"" KEY_URL "\", \"file:no-such-key\"]",
	        "seal_keys[1]", "cannot read secret file", NULL);
	unsetenv("EB_TEST_SEAL_KEY_UNSET");
	refused("\"seal_keys\": [\"env:EB_TEST_SEAL_KEY_UNSET\"]",
	        "seal_keys[0]", "not set", NULL);
	write_file("empty", "");
	refused("\"seal_keys\": [\"file:empty\"]", "seal_keys[0]", "empty",
	        NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_absent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_good, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_length, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_base64, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
