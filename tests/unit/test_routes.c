/*
 * Route matching (identity/route.h) and the identity headers' encoding
 * (handle/idheaders.h): groups any-of, claims all-of with array
 * membership, first match wins; header values never carry CR, LF or raw
 * non-ASCII, and the claims header is base64url JSON.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/config.h"
#include "core/mem.h"
#include "grant/issue.h"
#include "handle/idheaders.h"
#include "identity/identity.h"
#include "identity/route.h"
#include "jose/b64.h"

static char *g_enroll[] = {"g-enroll"};
static char *g_guid[] = {"ABCDEF01-2345-6789-ABCD-EF0123456789"};
static struct eb_kv dept_it[] = {{"dept", "it"}};
static struct eb_kv role_admin[] = {{"roles", "admin"}};

static void
identity(struct eb_identity *id, const char *claims_json)
{
	json_t *c = json_loads(claims_json, 0, NULL);

	assert_non_null(c);
	eb_identity_init(id);
	assert_int_equal(eb_identity_from_claims(id, "https://idp", c), 0);
	json_decref(c);
}

static void
test_match(void **state)
{
	struct eb_tenant_route r[3];
	struct eb_tenant t;
	struct eb_identity id;

	(void)state;
	memset(r, 0, sizeof(r));
	memset(&t, 0, sizeof(t));
	r[0].name = "by-group";
	r[0].groups.v = g_enroll;
	r[0].groups.n = 1;
	r[1].name = "by-claims";
	r[1].claims.v = dept_it;
	r[1].claims.n = 1;
	r[2].name = "guid-and-role";
	r[2].groups.v = g_guid;
	r[2].groups.n = 1;
	r[2].claims.v = role_admin;
	r[2].claims.n = 1;
	t.routes = r;
	t.nroutes = 3;

	identity(&id, "{\"sub\":\"a\",\"groups\":[\"x\",\"g-enroll\"],"
	              "\"dept\":\"it\"}");
	assert_ptr_equal(eb_route_match(&t, &id), &r[0]); /* first wins */
	eb_identity_finish(&id);
	identity(&id, "{\"sub\":\"a\",\"groups\":[\"G-ENROLL\"],"
	              "\"dept\":\"it\"}");
	assert_ptr_equal(eb_route_match(&t, &id), &r[1]); /* names: exact */
	eb_identity_finish(&id);
	identity(&id, "{\"sub\":\"a\",\"dept\":[\"hr\",\"it\"]}");
	assert_ptr_equal(eb_route_match(&t, &id), &r[1]); /* array member */
	eb_identity_finish(&id);
	identity(&id, "{\"sub\":\"a\",\"dept\":\"IT\"}");
	assert_null(eb_route_match(&t, &id));
	eb_identity_finish(&id);
	/* GUIDs ignore case; both groups and claims must hold */
	identity(&id, "{\"sub\":\"a\",\"groups\":"
	              "[\"abcdef01-2345-6789-abcd-ef0123456789\"],"
	              "\"roles\":[\"admin\"]}");
	assert_ptr_equal(eb_route_match(&t, &id), &r[2]);
	eb_identity_finish(&id);
	identity(&id, "{\"sub\":\"a\",\"groups\":"
	              "[\"abcdef01-2345-6789-abcd-ef0123456789\"]}");
	assert_null(eb_route_match(&t, &id));
	eb_identity_finish(&id);
	assert_int_equal(eb_route_needs_groups(&t), 1);
	t.nroutes = 2;
	r[0].groups.n = 0;
	assert_int_equal(eb_route_needs_groups(&t), 0);
	/* an empty match takes everyone */
	identity(&id, "{\"sub\":\"a\"}");
	assert_ptr_equal(eb_route_match(&t, &id), &r[0]);
	eb_identity_finish(&id);
}

static void
test_grant_extra(void **state)
{
	static char *names[] = {"name", "groups", "big", "missing", "tid"};
	struct eb_tenant view;
	struct eb_identity id;
	json_t *x, *idp;
	char *s, big[EB_GRANT_IDP_MAX + 16], json[EB_GRANT_IDP_MAX + 128];

	(void)state;
	memset(&view, 0, sizeof(view));
	view.id = "acme";
	view.mdm.claims.v = names;
	view.mdm.claims.n = 5;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(json, sizeof(json),
	         "{\"sub\":\"a\",\"name\":\"Alice\",\"groups\":[\"g1\",\"g2\"],"
	         "\"tid\":\"t1\",\"preferred_username\":\"alice@x\","
	         "\"big\":\"%s\"}",
	         big);
	identity(&id, json);
	assert_non_null(s = eb_grant_extra(&view, "eng", &id, "sub-1"));
	assert_non_null(x = json_loads(s, 0, NULL));
	assert_string_equal(json_string_value(json_object_get(x, "sub")),
	                    "sub-1");
	assert_string_equal(json_string_value(json_object_get(x, "route")),
	                    "eng");
	/* the login is the grant's idp_login column, not repeated here */
	assert_null(json_object_get(x, "login"));
	idp = json_object_get(x, "idp");
	assert_string_equal(json_string_value(json_object_get(idp, "name")),
	                    "Alice");
	assert_int_equal(json_array_size(json_object_get(idp, "groups")), 2);
	assert_string_equal(json_string_value(json_object_get(idp, "tid")),
	                    "t1");
	/* too big for the snapshot: left out; absent claims: absent */
	assert_null(json_object_get(idp, "big"));
	assert_null(json_object_get(idp, "missing"));
	json_decref(x);
	eb_free(s);
	eb_identity_finish(&id);
	/* no sub, no route, no mdm.claims: nothing */
	view.mdm.claims.n = 0;
	identity(&id, "{\"sub\":\"a\",\"upn\":\"a@upn\"}");
	assert_non_null(s = eb_grant_extra(&view, NULL, &id, NULL));
	assert_string_equal(s, "{}");
	eb_free(s);
	eb_identity_finish(&id);
}

struct seen {
	char names[16][64];
	char values[16][512];
	size_t n;
};

static int
collect(void *arg, const char *name, const char *value)
{
	struct seen *s = arg;

	assert_true(s->n < 16);
	strncpy(s->names[s->n], name, 63);
	strncpy(s->values[s->n], value, 511);
	s->n++;
	return 0;
}

static const char *
value_of(const struct seen *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0)
			return s->values[i];
	return NULL;
}

static void
test_headers(void **state)
{
	struct eb_idheaders h;
	struct seen s;
	json_t *idp = json_pack("{s:s,s:[s,s]}", "name", "Zoë\r\nX-Evil: 1",
	                        "groups", "a", "b");
	const char *v;
	uint8_t *dec;
	size_t declen, i;
	char *enc;

	(void)state;
	assert_non_null(idp);
	memset(&h, 0, sizeof(h));
	memset(&s, 0, sizeof(s));
	h.managed_apple_id = "zoe@appleid.example";
	h.login = "zoë 100%\r\n";
	h.route = "enrollers";
	h.idp = idp;
	assert_int_equal(eb_idheaders_each(&h, collect, &s), 0);
	assert_int_equal(s.n, 4); /* account, login, route, claims */
	assert_string_equal(
	    value_of(&s, "X-Enrollbridge-Managed-Apple-Account"),
	    "zoe@appleid.example");
	assert_string_equal(value_of(&s, "X-Enrollbridge-Login"),
	                    "zo%C3%AB%20100%25%0D%0A");
	assert_string_equal(value_of(&s, "X-Enrollbridge-Route"), "enrollers");
	assert_null(value_of(&s, "X-Enrollbridge-Serial"));
	v = value_of(&s, "X-Enrollbridge-Claims");
	assert_non_null(v);
	for (i = 0; v[i]; i++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                       "abcdefghijklmnopqrstuvwxyz0123456789-_",
		                       v[i]));
	assert_int_equal(eb_b64_url_decode(v, strlen(v), &dec, &declen), 0);
	{
		json_t *back = json_loadb((const char *)dec, declen, 0, NULL);

		assert_non_null(back);
		assert_true(json_equal(back, idp));
		json_decref(back);
	}
	eb_free(dec);
	assert_non_null(enc = eb_idheaders_encode(""));
	assert_string_equal(enc, "");
	eb_free(enc);
	json_decref(idp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_match),
	    cmocka_unit_test(test_headers),
	    cmocka_unit_test(test_grant_extra),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
