/*
 * Router: literal and captured segments, {rest}, HEAD on GET routes, 404
 * versus 405 with the Allow list.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "http/router.h"

static int
h(struct eb_request *r)
{
	(void)r;
	return 0;
}

static const struct eb_route routes[] = {
    {"GET", "/.well-known/com.apple.remotemanagement", h, "disco", 0, 0, NULL},
    {"GET", "/t/{T}/auth/{flow}", h, "auth", 0, 0, NULL},
    {"POST", "/t/{T}/enroll", h, "enroll", 0, 0, NULL},
    {"*", "/t/{T}/mdm/{rest}", h, "proxy", 0, 0, NULL},
    {"GET", "/healthz", h, "healthz", 0, 0, NULL},
};
#define N (sizeof(routes) / sizeof(routes[0]))

static void
param_is(const struct eb_route_match *m, size_t i, const char *name,
         const char *value)
{
	assert_true(i < m->nparams);
	assert_int_equal(m->params[i].name_len, strlen(name));
	assert_memory_equal(m->params[i].name, name, strlen(name));
	assert_int_equal(m->params[i].value_len, strlen(value));
	assert_memory_equal(m->params[i].value, value, strlen(value));
}

static void
test_literal_and_head(void **state)
{
	struct eb_route_match m;

	assert_int_equal(
	    eb_router_match(routes, N, "GET",
	                    "/.well-known/com.apple.remotemanagement", &m, NULL,
	                    0),
	    0);
	assert_int_equal(m.index, 0);
	assert_int_equal(
	    eb_router_match(routes, N, "HEAD", "/healthz", &m, NULL, 0), 0);
	assert_int_equal(m.index, 4);
	assert_int_equal(
	    eb_router_match(routes, N, "GET", "/healthz/", &m, NULL, 0), -1);
	assert_int_equal(eb_router_match(routes, N, "GET", "/", &m, NULL, 0),
	                 -1);
}

static void
test_captures(void **state)
{
	struct eb_route_match m;

	assert_int_equal(eb_router_match(routes, N, "GET",
	                                 "/t/contoso/auth/abc-DEF_123", &m,
	                                 NULL, 0),
	                 0);
	assert_int_equal(m.index, 1);
	assert_int_equal(m.nparams, 2);
	param_is(&m, 0, "T", "contoso");
	param_is(&m, 1, "flow", "abc-DEF_123");
	/* a capture never spans a slash, nor is empty */
	assert_int_equal(eb_router_match(routes, N, "GET",
	                                 "/t/contoso/auth/a/b", &m, NULL, 0),
	                 -1);
	assert_int_equal(
	    eb_router_match(routes, N, "GET", "/t//auth/x", &m, NULL, 0), -1);
}

static void
test_rest(void **state)
{
	struct eb_route_match m;

	assert_int_equal(eb_router_match(routes, N, "PUT",
	                                 "/t/c/mdm/checkin/a/b?x", &m, NULL, 0),
	                 0);
	assert_int_equal(m.index, 3);
	param_is(&m, 1, "rest", "checkin/a/b?x");
	assert_int_equal(
	    eb_router_match(routes, N, "PUT", "/t/c/mdm/", &m, NULL, 0), -1);
}

static void
test_method_not_allowed(void **state)
{
	struct eb_route_match m;
	char allow[64];

	assert_int_equal(eb_router_match(routes, N, "GET", "/t/c/enroll", &m,
	                                 allow, sizeof(allow)),
	                 -2);
	assert_string_equal(allow, "POST");
	assert_int_equal(eb_router_match(routes, N, "DELETE", "/healthz", &m,
	                                 allow, sizeof(allow)),
	                 -2);
	assert_string_equal(allow, "GET, HEAD");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_literal_and_head),
	    cmocka_unit_test(test_captures),
	    cmocka_unit_test(test_rest),
	    cmocka_unit_test(test_method_not_allowed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
