/*
 * The main-file key database_migrate (issue 12, item 7): true by default,
 * a boolean only, refused with the file, the key and the reason otherwise.
 */
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

#define TENANT_OK                                                              \
	"{\"id\": \"acme\", \"domains\": [\"acme.example\"], \"idp\": "        \
	"{\"type\": \"oidc\", \"issuer\": \"https://idp.example.com\", "       \
	"\"client_id\": \"cid\", \"client_secret\": \"s3cret-value\"}}"

static char dir[256];

static void
write_file(const char *rel, const char *content)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	assert_non_null(f = fopen(path, "w"));
	assert_true(fputs(content, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* Load a main file whose only other key is public_url, plus "extra". */
static struct eb_config *
load_with(const char *extra, struct eb_config_error *e)
{
	char main[256], path[512];

	snprintf(main, sizeof(main),
	         "{\"public_url\": \"https://eb.example.com\"%s%s}",
	         extra[0] ? ", " : "", extra);
	write_file("config.json", main);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	memset(e, 0, sizeof(*e));
	return eb_config_load(path, e);
}

static int
setup(void **state)
{
	const char *base = getenv("EB_BINARY_DIR");
	char path[512];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/cfgmig-XXXXXX", base ? base : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/tenants", dir);
	if (mkdir(path, 0700) != 0)
		return -1;
	write_file("tenants/acme.json", TENANT_OK);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
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
