/*
 * Configuration errors as data: every tests/data/config/<case>.json is
 * loaded and must fail with the line in <case>.expect, as
 * "enrollbridge check-config" prints it ("file: key: reason", the file
 * relative to the configuration folder, "-" for no key).
 *
 * main-*.json is the main file (beside a good tenant, tenants/a.json);
 * tenant-*.json is the one tenant file (tenants/t.json, beside a good
 * main file).
 */
#define _XOPEN_SOURCE 700

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fx_dir.h"
#include "core/config.h"

#define MAIN_OK "{\"public_url\": \"https://eb.example.com/\"}"
#define TENANT_OK                                                              \
	"{\"id\": \"acme\", \"domains\": [\"acme.example\"], \"idp\": "        \
	"{\"type\": \"oidc\", \"issuer\": \"https://idp.example.com\", "       \
	"\"client_id\": \"cid\", \"client_secret\": \"s3cret-value\"}}"

#define CASE_MAX 65536

static char cases_dir[512];

/* The whole file at path into buf (NUL-terminated): its length, or -1. */
static ssize_t
slurp(const char *path, char *buf, size_t size)
{
	FILE *f;
	size_t n;
	int bad;

	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, size - 1, f);
	bad = ferror(f) || !feof(f);
	fclose(f);
	if (bad)
		return -1;
	buf[n] = '\0';
	return (ssize_t)n;
}

/* src into dst (of size), each occurrence of dir written as "<dir>". */
static void
undir(char *dst, size_t size, const char *src, const char *dir)
{
	size_t dl = strlen(dir), n = 0;

	while (*src != '\0' && n + 6 < size) {
		if (strncmp(src, dir, dl) == 0) {
			memcpy(dst + n, "<dir>", 5);
			n += 5;
			src += dl;
		} else
			dst[n++] = *src++;
	}
	dst[n] = '\0';
}

/* The error line of loading body as a main (main != 0) or tenant file,
 * into line; 0 when the load failed, -1 when it succeeded. */
static int
load_case(const char *body, int main, char *line, size_t size)
{
	const char *file;
	struct eb_config_error err;
	struct eb_config *cfg;
	char dir[512], path[1024], raw[1400];
	size_t dl;

	assert_int_equal(fx_mkdtemp(dir, sizeof(dir), "eb-cfgcase"), 0);
	snprintf(path, sizeof(path), "%s/tenants", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	fx_write(dir, "config.json", main ? body : MAIN_OK);
	fx_write(dir, main ? "tenants/a.json" : "tenants/t.json",
	         main ? TENANT_OK : body);

	memset(&err, 0, sizeof(err));
	snprintf(path, sizeof(path), "%s/config.json", dir);
	cfg = eb_config_load(path, &err);
	file = err.file;
	dl = strlen(dir);
	if (strncmp(file, dir, dl) == 0 && file[dl] == '/')
		file += dl + 1;
	snprintf(raw, sizeof(raw), "%s: %s: %s", file[0] ? file : "config.json",
	         err.key[0] ? err.key : "-", err.reason);
	undir(line, size, raw, dir);
	assert_int_equal(fx_rmtree(dir), 0);
	if (cfg != NULL) {
		eb_config_unref(cfg);
		return -1;
	}
	return 0;
}

/* Run the case name (without ".json"); 0 when it holds, else -1. */
static int
run_case(const char *name)
{
	char path[1024], want[1024], got[2048], *body, *nl;
	int main, rc = 0;

	assert_non_null(body = malloc(CASE_MAX));
	snprintf(path, sizeof(path), "%s/%s.json", cases_dir, name);
	if (slurp(path, body, CASE_MAX) < 0) {
		print_error("%s: cannot read\n", path);
		free(body);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s.expect", cases_dir, name);
	if (slurp(path, want, sizeof(want)) <= 0) {
		print_error("%s: missing or empty\n", path);
		free(body);
		return -1;
	}
	if ((nl = strchr(want, '\n')) != NULL)
		*nl = '\0';
	main = strncmp(name, "main-", 5) == 0;
	if (!main && strncmp(name, "tenant-", 7) != 0) {
		print_error("%s: name must start with main- or tenant-\n",
		            name);
		rc = -1;
	} else if (load_case(body, main, got, sizeof(got)) != 0) {
		print_error("%s: loaded, want: %s\n", name, want);
		rc = -1;
	} else if (strcmp(got, want) != 0) {
		print_error("%s:\n  got:  %s\n  want: %s\n", name, got, want);
		rc = -1;
	}
	free(body);
	return rc;
}

static int
has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a > b && strcmp(s + a - b, suffix) == 0;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Every case in the folder holds; an .expect without its .json fails. */
static void
test_config_cases(void **state)
{
	struct dirent **ents;
	char name[256], path[1024];
	int i, n, ran = 0, failed = 0;

	(void)state;
	assert_true((n = scandir(cases_dir, &ents, NULL, by_name)) >= 0);
	for (i = 0; i < n; i++) {
		const char *d = ents[i]->d_name;
		size_t l = strlen(d);

		if (has_suffix(d, ".json") && l - 5 < sizeof(name)) {
			snprintf(name, sizeof(name), "%.*s", (int)(l - 5), d);
			failed += run_case(name) != 0;
			ran++;
		} else if (has_suffix(d, ".expect")) {
			snprintf(path, sizeof(path), "%s/%.*s.json", cases_dir,
			         (int)(l - 7), d);
			if (access(path, F_OK) != 0) {
				print_error("%s: no .json beside it\n", d);
				failed++;
			}
		}
		free(ents[i]);
	}
	free(ents);
	print_message("%d configuration error cases\n", ran);
	assert_true(ran > 0);
	assert_int_equal(failed, 0);
}

int
main(void)
{
	const char *src = getenv("EB_SOURCE_DIR");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_cases),
	};

	snprintf(cases_dir, sizeof(cases_dir), "%s/tests/data/config",
	         src ? src : ".");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
