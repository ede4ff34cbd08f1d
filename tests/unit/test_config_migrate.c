/*
 * The main-file key database_migrate (issue 12, item 7): true by default,
 * a boolean only, refused with the file, the key and the reason otherwise.
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
	return cfgfx_setup("cfgmig");
}

static int
teardown(void **state)
{
	(void)state;
	return cfgfx_teardown();
}

static void
test_default_true(void **state)
{
	struct eb_config_error e;
	struct eb_config *cfg;

	(void)state;
	assert_non_null(cfg = load_with("", &e));
	assert_int_equal(cfg->database_migrate, 1);
	eb_config_unref(cfg);
}

static void
test_false_and_true(void **state)
{
	struct eb_config_error e;
	struct eb_config *cfg;

	(void)state;
	assert_non_null(cfg = load_with("\"database_migrate\": false", &e));
	assert_int_equal(cfg->database_migrate, 0);
	eb_config_unref(cfg);
	assert_non_null(cfg = load_with("\"database_migrate\": true", &e));
	assert_int_equal(cfg->database_migrate, 1);
	eb_config_unref(cfg);
}

static void
test_not_a_boolean(void **state)
{
	static const char *const bad[] = {"\"database_migrate\": \"false\"",
	                                  "\"database_migrate\": 0",
	                                  "\"database_migrate\": null"};
	struct eb_config_error e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(load_with(bad[i], &e));
		assert_string_equal(e.key, "database_migrate");
		assert_non_null(strstr(e.reason, "must be true or false"));
		assert_non_null(strstr(e.file, "config.json"));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_default_true, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_false_and_true, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_not_a_boolean, setup,
	                                    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
