/*
 * Configuration test fixture (header-only, for tests/unit/test_*.c):
 * a temporary folder holding tenants/acme.json, a main file written per
 * test, and eb_config_load over it. Include after <cmocka.h>.
 */
#ifndef EB_TEST_CFGFX_H
#define EB_TEST_CFGFX_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fx_dir.h"
#include "core/config.h"

#define TENANT_OK                                                              \
	"{\"id\": \"acme\", \"domains\": [\"acme.example\"], \"idp\": "        \
	"{\"type\": \"oidc\", \"issuer\": \"https://idp.example.com\", "       \
	"\"client_id\": \"cid\", \"client_secret\": \"s3cret-value\"}}"

/* The folder of the current test (cfgfx_setup). */
static char dir[256];

/* Write content to rel under dir (the test fails when it cannot). */
static inline void
write_file(const char *rel, const char *content)
{
	fx_write(dir, rel, content);
}

/* Write main as dir/config.json and load it; e receives the error. */
static inline struct eb_config *
cfgfx_load(const char *main, struct eb_config_error *e)
{
	char path[512];

	write_file("config.json", main);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	memset(e, 0, sizeof(*e));
	return eb_config_load(path, e);
}

/* Load a main file whose only other key is public_url, plus extra. */
static inline struct eb_config *
load_with(const char *extra, struct eb_config_error *e)
{
	char main[256];

	snprintf(main, sizeof(main),
	         "{\"public_url\": \"https://eb.example.com\"%s%s}",
	         extra[0] ? ", " : "", extra);
	return cfgfx_load(main, e);
}

/* A fresh dir named prefix-XXXXXX (under EB_BINARY_DIR when set) with
 * tenants/acme.json: 0, or -1. */
static inline int
cfgfx_setup(const char *prefix)
{
	char path[512];

	if (fx_mkdtemp(dir, sizeof(dir), prefix) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/tenants", dir);
	if (mkdir(path, 0700) != 0)
		return -1;
	write_file("tenants/acme.json", TENANT_OK);
	return 0;
}

/* Remove dir and all in it: 0, or -1. */
static inline int
cfgfx_teardown(void)
{
	return fx_rmtree(dir) == 0 ? 0 : -1;
}

#endif
