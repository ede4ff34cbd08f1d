/*
 * Unit tests for src/apple/esso.c: the Enrollment SSO document (PROTOCOL.md
 * section 6) and its developer variant, built from a tenant's esso section
 * and a realistic SSO profile (tests/unit/data/profiles/esso.mobileconfig:
 * a com.apple.extensiblesso payload and a root certificate). The document
 * is read back with jansson; the embedded profile must be the file's exact
 * bytes. Profiles holding other payloads, or no SSO payload, are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "apple/esso.h"
#include "apple/plist.h"
#include "apple/profile.h"
#include "core/mem.h"

static char src_dir[512];

static const char *
fixture(const char *name)
{
	static char path[2][768];
	static int i;

	i = (i + 1) % 2;
	snprintf(path[i], sizeof(path[i]), "%s/tests/unit/data/profiles/%s",
	         src_dir, name);
	return path[i];
}

static int
setup(void **state)
{
	const char *s = getenv("EB_SOURCE_DIR");

	(void)state;
	snprintf(src_dir, sizeof(src_dir), "%s", s ? s : ".");
	return 0;
}

static char *domains[] = {"webcredentials:login.contoso.com",
                          "authsrv:login.contoso.com"};
static char *app_ids[] = {"ABCDE12345.com.contoso.authenticator"};

static struct eb_tenant
tenant(struct eb_esso_config *e, const char *profile)
{
	struct eb_tenant t;

	memset(&t, 0, sizeof(t));
	memset(e, 0, sizeof(*e));
	t.id = (char *)"acme";
	t.esso = e;
	e->app_store_id = 1044283059;
	e->associated_domains.v = domains;
	e->associated_domains.n = 2;
	e->enable_direct_downloads = 1;
	e->profile_file = (char *)profile;
	return t;
}

static json_t *
build_json(const struct eb_tenant *t, int developer)
{
	json_error_t jerr;
	json_t *doc;
	char *s, err[256] = "";
	size_t len = 0;

	s = eb_esso_build(t, developer, &len, err, sizeof(err));
	if (s == NULL)
		fail_msg("eb_esso_build: %s", err);
	assert_int_equal(strlen(s), len);
	doc = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
	assert_non_null(doc);
	eb_free(s);
	return doc;
}

/* The base64 in ConfigurationProfile decodes to the file's bytes. */
static void
check_profile_bytes(const json_t *doc, const char *path)
{
	const char *b64 =
	    json_string_value(json_object_get(doc, "ConfigurationProfile"));
	unsigned char *want, *got;
	size_t wantlen, b64len;
	FILE *f;
	long n;
	int got_len;

	assert_non_null(b64);
	assert_null(strchr(b64, '\n'));
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	want = malloc((size_t)n);
	assert_int_equal(fread(want, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	wantlen = (size_t)n;
	b64len = strlen(b64);
	got = malloc(b64len);
	got_len = EVP_DecodeBlock(got, (const unsigned char *)b64, (int)b64len);
	/* DecodeBlock counts the padding bytes as data */
	if (b64len >= 1 && b64[b64len - 1] == '=')
		got_len--;
	if (b64len >= 2 && b64[b64len - 2] == '=')
		got_len--;
	assert_int_equal(got_len, (int)wantlen);
	assert_memory_equal(got, want, wantlen);
	free(want);
	free(got);
}

static void
test_document(void **state)
{
	struct eb_esso_config e;
	struct eb_tenant t = tenant(&e, fixture("esso.mobileconfig"));
	json_t *doc, *ad;
	char err[256];

	(void)state;
	assert_int_equal(eb_esso_check_config(&t, err, sizeof(err)), 0);
	doc = build_json(&t, 0);
	assert_true(json_is_integer(json_object_get(doc, "iTunesStoreID")));
	assert_int_equal(
	    json_integer_value(json_object_get(doc, "iTunesStoreID")),
	    1044283059);
	ad = json_object_get(doc, "AssociatedDomains");
	assert_int_equal(json_array_size(ad), 2);
	assert_string_equal(json_string_value(json_array_get(ad, 0)),
	                    "webcredentials:login.contoso.com");
	assert_string_equal(json_string_value(json_array_get(ad, 1)),
	                    "authsrv:login.contoso.com");
	assert_true(json_is_true(
	    json_object_get(doc, "AssociatedDomainsEnableDirectDownloads")));
	assert_null(json_object_get(doc, "AppIDs"));
	assert_int_equal(json_object_size(doc), 4);
	check_profile_bytes(doc, fixture("esso.mobileconfig"));
	json_decref(doc);

	/* direct downloads off: false, not absent */
	e.enable_direct_downloads = 0;
	doc = build_json(&t, 0);
	assert_true(json_is_false(
	    json_object_get(doc, "AssociatedDomainsEnableDirectDownloads")));
	json_decref(doc);
}

static void
test_minimal(void **state)
{
	struct eb_esso_config e;
	struct eb_tenant t = tenant(&e, NULL);
	json_t *doc;

	(void)state;
	e.associated_domains.n = 0;
	e.enable_direct_downloads = 0;
	doc = build_json(&t, 0);
	assert_int_equal(json_object_size(doc), 1);
	assert_int_equal(
	    json_integer_value(json_object_get(doc, "iTunesStoreID")),
	    1044283059);
	json_decref(doc);
}

static void
test_developer(void **state)
{
	struct eb_esso_config e;
	struct eb_tenant t = tenant(&e, fixture("esso.mobileconfig"));
	json_t *doc, *ids;
	char err[256];

	(void)state;
	/* no app ids configured: no developer document */
	assert_null(eb_esso_build(&t, 1, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "app_ids"));
	e.developer_app_ids.v = app_ids;
	e.developer_app_ids.n = 1;
	doc = build_json(&t, 1);
	assert_null(json_object_get(doc, "iTunesStoreID"));
	ids = json_object_get(doc, "AppIDs");
	assert_int_equal(json_array_size(ids), 1);
	assert_string_equal(json_string_value(json_array_get(ids, 0)),
	                    "ABCDE12345.com.contoso.authenticator");
	assert_int_equal(
	    json_array_size(json_object_get(doc, "AssociatedDomains")), 2);
	check_profile_bytes(doc, fixture("esso.mobileconfig"));
	json_decref(doc);
}

static void
test_bad_profiles(void **state)
{
	static const char *const cases[][2] = {
	    {"esso-wifi.mobileconfig", "com.apple.wifi.managed"},
	    {"esso-no-sso.mobileconfig", "no com.apple.extensiblesso"},
	    {"enroll.mobileconfig", "com.apple.security.scep"},
	    {"missing.mobileconfig", "missing.mobileconfig"},
	};
	struct eb_esso_config e;
	struct eb_tenant t;
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t = tenant(&e, fixture(cases[i][0]));
		assert_int_equal(eb_esso_check_config(&t, err, sizeof(err)),
		                 -1);
		if (strstr(err, cases[i][1]) == NULL)
			fail_msg("%s: \"%s\" lacks \"%s\"", cases[i][0], err,
			         cases[i][1]);
		assert_null(eb_esso_build(&t, 0, NULL, err, sizeof(err)));
	}
	/* no esso section: nothing to check, nothing to build */
	t = tenant(&e, NULL);
	t.esso = NULL;
	assert_int_equal(eb_esso_check_config(&t, err, sizeof(err)), 0);
	assert_null(eb_esso_build(&t, 0, NULL, err, sizeof(err)));
}

static void
test_check_profile(void **state)
{
	struct eb_plist *p;
	char err[256];

	(void)state;
	p = eb_profile_read_file(fixture("esso.mobileconfig"), NULL, NULL, err,
	                         sizeof(err));
	assert_non_null(p);
	assert_int_equal(eb_esso_check_profile(p, err, sizeof(err)), 0);
	eb_plist_free(p);
	p = eb_profile_read_file(fixture("no-mdm.mobileconfig"), NULL, NULL,
	                         err, sizeof(err));
	assert_int_equal(eb_esso_check_profile(p, err, sizeof(err)), -1);
	eb_plist_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_document),
	    cmocka_unit_test(test_minimal),
	    cmocka_unit_test(test_developer),
	    cmocka_unit_test(test_bad_profiles),
	    cmocka_unit_test(test_check_profile),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
