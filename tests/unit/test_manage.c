/*
 * The operations keys of the main file (admin_listen, admin_token,
 * audit_retention, audit_stream: core/config_admin.c) and what the CLI and
 * the admin API share (grant/manage.h): audit times, text checks, person
 * matching, key states, the JSON of an audit event.
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

#include <jansson.h>

#include "core/config.h"
#include "grant/manage.h"

#include "cfgfx.h"

#define TOKEN "0123456789abcdef0123456789abcdef-admin"

static int
setup(void **state)
{
	(void)state;
	return cfgfx_setup("cfgadmin");
}

static int
teardown(void **state)
{
	(void)state;
	return cfgfx_teardown();
}

static void
test_defaults(void **state)
{
	struct eb_config_error e;
	struct eb_config *cfg;

	(void)state;
	assert_non_null(cfg = load_with("", &e));
	assert_null(cfg->admin_listen_host);
	assert_null(cfg->admin_token);
	assert_null(cfg->audit_stream);
	assert_int_equal(cfg->audit_retention, 90 * 86400);
	eb_config_unref(cfg);
}

static void
test_good(void **state)
{
	struct eb_config_error e;
	struct eb_config *cfg;
	char want[600];

	(void)state;
	write_file("admin.token", TOKEN "\n");
	assert_non_null(cfg =
	                    load_with("\"admin_listen\": \"127.0.0.1:9100\", "
	                              "\"admin_token\": \"file:admin.token\", "
	                              "\"audit_retention\": 3600, "
	                              "\"audit_stream\": \"audit.jsonl\"",
	                              &e));
	assert_string_equal(cfg->admin_listen_host, "127.0.0.1");
	assert_int_equal(cfg->admin_listen_port, 9100);
	assert_string_equal(cfg->admin_token, TOKEN);
	assert_int_equal(cfg->audit_retention, 3600);
	snprintf(want, sizeof(want), "%s/audit.jsonl", dir);
	assert_string_equal(cfg->audit_stream, want); /* beside the file */
	eb_config_unref(cfg);
	assert_non_null(cfg = load_with("\"admin_listen\": \"[::1]:9100\", "
	                                "\"audit_stream\": \"stdout\"",
	                                &e));
	assert_string_equal(cfg->admin_listen_host, "::1");
	assert_string_equal(cfg->audit_stream, "stdout");
	eb_config_unref(cfg);
}

static void
refused(const char *extra, const char *key, const char *reason)
{
	struct eb_config_error e;

	assert_null(load_with(extra, &e));
	assert_string_equal(e.key, key);
	if (strstr(e.reason, reason) == NULL)
		fail_msg("%s: \"%s\" lacks \"%s\"", key, e.reason, reason);
	assert_null(strstr(e.reason, "short-token"));
}

static void
test_refused(void **state)
{
	(void)state;
	refused("\"admin_listen\": \"9100\"", "admin_listen", "host:port");
	refused("\"admin_listen\": \"127.0.0.1:0\"", "admin_listen",
	        "host:port");
	refused("\"admin_listen\": 9100", "admin_listen", "");
	refused("\"admin_token\": \"short-token\"", "admin_token",
	        "32 to 4096 bytes");
	refused("\"admin_token\": \"env:EB_TEST_NO_SUCH_VAR\"", "admin_token",
	        "");
	refused("\"audit_retention\": 0", "audit_retention", "between 1 and");
	refused("\"audit_retention\": \"90d\"", "audit_retention", "integer");
	refused("\"audit_stream\": \"\"", "audit_stream", "");
}

static void
test_parse_time(void **state)
{
	int64_t now = 1800000000, t;

	(void)state;
	assert_int_equal(eb_manage_parse_time("1700000000", now, &t), 0);
	assert_int_equal(t, 1700000000);
	assert_int_equal(eb_manage_parse_time("2024-01-02", now, &t), 0);
	assert_int_equal(t, 1704153600);
	assert_int_equal(eb_manage_parse_time("2024-01-02T03:04:05Z", now, &t),
	                 0);
	assert_int_equal(t, 1704153600 + 3 * 3600 + 4 * 60 + 5);
	assert_int_equal(eb_manage_parse_time("90m", now, &t), 0);
	assert_int_equal(t, now - 5400);
	assert_int_equal(eb_manage_parse_time("24h", now, &t), 0);
	assert_int_equal(t, now - 86400);
	assert_int_equal(eb_manage_parse_time("7d", now, &t), 0);
	assert_int_equal(t, now - 7 * 86400);
	assert_int_equal(eb_manage_parse_time("30s", now, &t), 0);
	assert_int_equal(t, now - 30);
	static const char *const bad[] = {"",
	                                  "d",
	                                  "-1",
	                                  "7w",
	                                  "2024-13-01",
	                                  "2024-01-32",
	                                  "2024-1-2",
	                                  "2024-01-02T03:04:05",
	                                  "yesterday",
	                                  "99999999999999999999d",
	                                  "2024-01-02T25:00:00Z",
	                                  "2024-01-02 03:04:05Z"};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (eb_manage_parse_time(bad[i], now, &t) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
}

static void
test_checks(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(
	    eb_manage_text_check("note", "ok", 10, why, sizeof(why)), 0);
	assert_int_equal(eb_manage_text_check("note", "", 10, why, sizeof(why)),
	                 -1);
	assert_string_equal(why, "note: must be 1 to 10 bytes");
	assert_int_equal(
	    eb_manage_text_check("note", "a\nb", 10, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "control characters"));
	assert_int_equal(
	    eb_manage_text_check("note", "a\xff", 10, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "UTF-8"));
	assert_int_equal(eb_manage_apple_id_check("id", "a@appleid.example.com",
	                                          why, sizeof(why)),
	                 0);
	assert_int_equal(
	    eb_manage_apple_id_check("id", "not an address", why, sizeof(why)),
	    -1);
	assert_non_null(strstr(why, "user@appleid.example.com"));
}

static void
test_person_and_audit_json(void **state)
{
	struct eb_store_grant g;
	struct eb_store_audit ev = {.id = 7,
	                            .ts = 1704153600,
	                            .tenant = "acme",
	                            .event = "grant.revoked",
	                            .subject = "g1",
	                            .detail = "{\"reason\":\"lost\"}"};
	json_t *o;

	(void)state;
	memset(&g, 0, sizeof(g));
	g.idp_subject = "tid/oid";
	g.managed_apple_id = "Ann@AppleID.example.com";
	assert_true(eb_manage_is_person(&g, NULL));
	assert_true(eb_manage_is_person(&g, "tid/oid"));
	assert_true(eb_manage_is_person(&g, "ann@appleid.example.com"));
	assert_false(eb_manage_is_person(&g, "TID/OID"));
	assert_false(eb_manage_is_person(&g, "bob@appleid.example.com"));

	assert_non_null(o = eb_manage_audit_json(&ev));
	assert_int_equal(json_integer_value(json_object_get(o, "id")), 7);
	assert_string_equal(json_string_value(json_object_get(o, "time")),
	                    "2024-01-02T00:00:00Z");
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(o, "detail"), "reason")),
	                    "lost");
	json_decref(o);
	ev.detail = "not json";
	ev.subject = NULL;
	assert_non_null(o = eb_manage_audit_json(&ev));
	assert_string_equal(json_string_value(json_object_get(o, "detail")),
	                    "not json");
	assert_true(json_is_null(json_object_get(o, "subject")));
	json_decref(o);
}

static void
test_key_state(void **state)
{
	struct eb_store_key k[3];
	int have = 0, usable;

	(void)state;
	memset(k, 0, sizeof(k));
	k[0].activates_at = 2000; /* pending */
	k[1].retired_at = 0;      /* active: current only if usable */
	k[2].retired_at = 500;    /* retired before now */
	assert_string_equal(
	    eb_manage_key_state(NULL, &k[0], 1000, &have, &usable), "pending");
	/* no seal ring: nothing opens, so an active key is standby */
	assert_string_equal(
	    eb_manage_key_state(NULL, &k[1], 1000, &have, &usable), "standby");
	assert_false(usable);
	assert_string_equal(
	    eb_manage_key_state(NULL, &k[2], 1000, &have, &usable), "retired");
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_defaults),
	    T(test_good),
	    T(test_refused),
	    cmocka_unit_test(test_parse_time),
	    cmocka_unit_test(test_checks),
	    cmocka_unit_test(test_person_and_audit_json),
	    cmocka_unit_test(test_key_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
