/*
 * SCIM User resources (scim/scim.h): the checks of a resource and the
 * facts read from it, PatchOp as Microsoft Entra and Okta send it
 * (capitalised op, the string "False", operations without a path, value
 * filters, extension URNs), and the list filters, with what each refuses.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <jansson.h>

#include "core/mem.h"
#include "scim/scim.h"

#define USER "\"schemas\":[\"" EB_SCIM_USER_SCHEMA "\"]"
#define PATCH(ops)                                                             \
	"{\"schemas\":[\"" EB_SCIM_PATCH_SCHEMA "\"],\"Operations\":[" ops "]" \
	"}"

static json_t *
js(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);

	if (j == NULL)
		fail_msg("bad test JSON: %s: %s", e.text, text);
	return j;
}

static void
test_user_check(void **state)
{
	struct eb_scim_facts f;
	struct eb_scim_err e;
	json_t *u;

	(void)state;
	u = js("{" USER ",\"id\":\"theirs\",\"meta\":{},\"userName\":"
	       "\"alice@contoso.com\",\"externalId\":\"oid-1\","
	       "\"active\":\"False\"}");
	assert_int_equal(eb_scim_user_check(u, &f, &e), 0);
	assert_string_equal(f.user_name, "alice@contoso.com");
	assert_string_equal(f.external_id, "oid-1");
	assert_int_equal(f.active, 0);
	/* id and meta are ours; active is a boolean now */
	assert_null(json_object_get(u, "id"));
	assert_null(json_object_get(u, "meta"));
	assert_true(json_is_false(json_object_get(u, "active")));
	json_decref(u);

	/* no active: active; no externalId: NULL; any case of a name */
	u = js("{" USER ",\"UserName\":\"bob\"}");
	assert_int_equal(eb_scim_user_check(u, &f, &e), 0);
	assert_string_equal(f.user_name, "bob");
	assert_null(f.external_id);
	assert_int_equal(f.active, 1);
	json_decref(u);

	u = js("{" USER ",\"userName\":\"bob\",\"active\":\"TRUE\"}");
	assert_int_equal(eb_scim_user_check(u, &f, &e), 0);
	assert_int_equal(f.active, 1);
	json_decref(u);

	/* refusals */
	static const char *const bad[] = {
	    "{\"userName\":\"bob\"}",                /* no schemas */
	    "{" USER "}",                            /* no userName */
	    "{" USER ",\"userName\":\"\"}",          /* empty */
	    "{" USER ",\"userName\":7}",             /* not a string */
	    "{" USER ",\"userName\":\"a\\u0001b\"}", /* control char */
	    "{" USER ",\"userName\":\"b\",\"active\":\"no\"}",
	    "{" USER ",\"userName\":\"b\",\"externalId\":[]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		u = js(bad[i]);
		memset(&e, 0, sizeof(e));
		assert_int_equal(eb_scim_user_check(u, &f, &e), -1);
		assert_int_equal(e.status, 400);
		assert_non_null(e.scim_type);
		assert_true(e.detail[0] != '\0');
		json_decref(u);
	}
}

/* Apply patch to resource text; the result as compact text (freed by
 * the caller) or NULL with e. */
static char *
patched(const char *res, const char *patch, struct eb_scim_err *e)
{
	json_t *r = js(res), *p = js(patch);
	char *out = NULL;

	if (eb_scim_patch(r, p, e) == 0)
		out = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(r);
	json_decref(p);
	return out;
}

static void
expect(const char *res, const char *patch, const char *want)
{
	struct eb_scim_err e;
	char *got = patched(res, patch, &e);

	if (got == NULL)
		fail_msg("patch refused: %s: %s", e.detail, patch);
	assert_string_equal(got, want);
	free(got);
}

static void
test_patch_entra(void **state)
{
	(void)state;
	/* the deactivation Entra sends */
	expect("{\"active\":true}",
	       PATCH("{\"op\":\"Replace\",\"path\":\"active\","
	             "\"value\":\"False\"}"),
	       "{\"active\":\"False\"}");
	/* no path: an object of paths, sub-attributes and extension
	 * attributes included */
	expect("{\"name\":{\"familyName\":\"S\"},\"active\":true}",
	       PATCH("{\"op\":\"replace\",\"value\":{\"active\":false,"
	             "\"name.givenName\":\"Al\",\"urn:ietf:params:scim:"
	             "schemas:extension:enterprise:2.0:User:department\":"
	             "\"IT\"}}"),
	       "{\"active\":false,\"name\":{\"familyName\":\"S\","
	       "\"givenName\":\"Al\"},\"urn:ietf:params:scim:schemas:"
	       "extension:enterprise:2.0:User\":{\"department\":\"IT\"}}");
	/* a value filter: updates the match, or adds the element */
	expect("{\"emails\":[{\"type\":\"work\",\"value\":\"a@x\"}]}",
	       PATCH("{\"op\":\"Replace\",\"path\":\"emails[type eq "
	             "\\\"work\\\"].value\",\"value\":\"b@x\"}"),
	       "{\"emails\":[{\"type\":\"work\",\"value\":\"b@x\"}]}");
	expect("{}",
	       PATCH("{\"op\":\"Add\",\"path\":\"emails[type eq "
	             "\\\"work\\\"].value\",\"value\":\"c@x\"}"),
	       "{\"emails\":[{\"type\":\"work\",\"value\":\"c@x\"}]}");
	/* the core schema URN names a top-level attribute; remove */
	expect("{\"displayName\":\"A\",\"title\":\"t\"}",
	       PATCH("{\"op\":\"Remove\",\"path\":\"urn:ietf:params:scim:"
	             "schemas:core:2.0:User:title\"},{\"op\":\"add\","
	             "\"path\":\"DisplayName\",\"value\":\"B\"}"),
	       "{\"displayName\":\"B\"}");
	/* add to a multi-valued attribute appends */
	expect("{\"emails\":[{\"value\":\"a\"}]}",
	       PATCH("{\"op\":\"add\",\"path\":\"emails\",\"value\":"
	             "[{\"value\":\"b\"}]}"),
	       "{\"emails\":[{\"value\":\"a\"},{\"value\":\"b\"}]}");
}

static void
test_patch_refused(void **state)
{
	static const struct {
		const char *patch, *type;
	} bad[] = {
	    {"{\"Operations\":[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]}",
	     "invalidSyntax"},
	    {PATCH(""), "invalidSyntax"},
	    {PATCH("{\"op\":\"move\",\"path\":\"a\",\"value\":1}"),
	     "invalidSyntax"},
	    {PATCH("{\"op\":\"remove\"}"), "noTarget"},
	    {PATCH("{\"op\":\"replace\",\"value\":\"x\"}"), "invalidValue"},
	    {PATCH("{\"op\":\"replace\",\"path\":\"a b\",\"value\":1}"),
	     "invalidPath"},
	    {PATCH("{\"op\":\"replace\",\"path\":\"emails[type gt "
	           "\\\"a\\\"].value\",\"value\":1}"),
	     "invalidPath"},
	    {PATCH("{\"op\":\"replace\",\"path\":\"a\"}"), "invalidValue"},
	    {PATCH("{\"op\":\"replace\",\"path\":7,\"value\":1}"),
	     "invalidPath"},
	};
	struct eb_scim_err e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&e, 0, sizeof(e));
		if (patched("{\"a\":1}", bad[i].patch, &e) != NULL)
			fail_msg("accepted: %s", bad[i].patch);
		assert_int_equal(e.status, 400);
		assert_string_equal(e.scim_type, bad[i].type);
	}
}

static void
test_filter(void **state)
{
	static const char *const bad[] = {
	    "displayName eq \"a\"",
	    "userName co \"a\"",
	    "userName eq a",
	    "userName eq \"a",
	    "userName eq \"a\" and x eq \"b\"",
	    "userName eq \"\"",
	    "",
	};
	struct eb_scim_err e;
	char *v;
	int attr;
	size_t i;

	(void)state;
	assert_int_equal(
	    eb_scim_filter("userName eq \"Alice@Contoso.com\"", &attr, &v, &e),
	    0);
	assert_int_equal(attr, EB_SCIM_FILTER_USER_NAME);
	assert_string_equal(v, "Alice@Contoso.com");
	eb_free(v);
	assert_int_equal(
	    eb_scim_filter("externalid EQ \"a\\\"b\"", &attr, &v, &e), 0);
	assert_int_equal(attr, EB_SCIM_FILTER_EXTERNAL_ID);
	assert_string_equal(v, "a\"b");
	eb_free(v);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&e, 0, sizeof(e));
		v = NULL;
		if (eb_scim_filter(bad[i], &attr, &v, &e) == 0)
			fail_msg("accepted: %s", bad[i]);
		assert_null(v);
		assert_int_equal(e.status, 400);
		assert_string_equal(e.scim_type, "invalidFilter");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_user_check),
	    cmocka_unit_test(test_patch_entra),
	    cmocka_unit_test(test_patch_refused),
	    cmocka_unit_test(test_filter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
