/*
 * Core helpers: the bounded buffer never grows past its limit and escapes
 * correctly; identifier and host-name checks follow PROTOCOL.md section 1;
 * allocation failure injection works; metrics render the exposition format.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/digest.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/rand.h"
#include "core/str.h"

static void
test_buf_limit(void **state)
{
	struct eb_buf b;
	int i;

	eb_buf_init(&b, 10);
	assert_int_equal(eb_buf_addstr(&b, "0123456789"), 0);
	assert_int_equal(eb_buf_addc(&b, 'x'), -1);
	assert_int_equal(b.len, 10);
	assert_string_equal(eb_buf_str(&b), "0123456789");
	eb_buf_reset(&b);
	assert_int_equal(eb_buf_printf(&b, "%d-%s", 42, "abcdefghij"), -1);
	assert_int_equal(b.len, 0);
	eb_buf_finish(&b);

	eb_buf_init(&b, 1 << 20);
	for (i = 0; i < 100000; i++)
		assert_int_equal(eb_buf_addc(&b, 'a'), 0);
	assert_int_equal(b.len, 100000);
	eb_buf_finish(&b);
}

/* A failed append poisons the buffer: later appends are no-ops, the end
 * reports the failure once, and reset starts afresh. */
static void
test_buf_sticky(void **state)
{
	struct eb_buf b;
	size_t len = 99;
	char *p;

	(void)state;
	eb_buf_init(&b, 8);
	assert_int_equal(eb_buf_addstr(&b, "abc"), 0);
	assert_int_equal(eb_buf_check(&b), 0);
	assert_int_equal(eb_buf_addstr(&b, "0123456789"), -1);
	assert_int_equal(eb_buf_check(&b), -1);
	/* would fit, but the buffer is poisoned: nothing is appended */
	assert_int_equal(eb_buf_addc(&b, 'x'), -1);
	assert_int_equal(eb_buf_printf(&b, "%d", 1), -1);
	assert_int_equal(eb_buf_add_json_str(&b, "y"), -1);
	assert_int_equal(eb_buf_add_html(&b, "z"), -1);
	assert_int_equal(eb_buf_reserve(&b, 1), -1);
	assert_string_equal(eb_buf_str(&b), "abc");
	/* the finishing call reports it (and frees the content) */
	assert_null(eb_buf_detach(&b, &len));
	assert_int_equal(len, 0);
	assert_int_equal(eb_buf_check(&b), 0);
	assert_int_equal(eb_buf_addstr(&b, "ok"), 0);
	p = eb_buf_detach(&b, &len);
	assert_non_null(p);
	assert_string_equal(p, "ok");
	assert_int_equal(len, 2);
	eb_free(p);

	/* a failed reserve is a hint refused, not a failed append */
	eb_buf_init(&b, 4);
	assert_int_equal(eb_buf_reserve(&b, 5), -1);
	assert_int_equal(eb_buf_check(&b), 0);
	assert_int_equal(eb_buf_addstr(&b, "four"), 0);
	assert_string_equal(eb_buf_str(&b), "four");
	eb_buf_finish(&b);

	/* reset clears the poison */
	eb_buf_init(&b, 4);
	assert_int_equal(eb_buf_printf(&b, "%s", "toolong"), -1);
	eb_buf_reset(&b);
	assert_int_equal(eb_buf_check(&b), 0);
	assert_int_equal(eb_buf_addstr(&b, "fit"), 0);
	assert_string_equal(eb_buf_str(&b), "fit");
	eb_buf_finish(&b);

	/* out of memory poisons too */
	eb_buf_init(&b, 1024);
	eb_mem_fail_after(0);
	assert_int_equal(eb_buf_addstr(&b, "a"), -1);
	eb_mem_fail_after(-1);
	assert_int_equal(eb_buf_addstr(&b, "b"), -1);
	assert_int_equal(eb_buf_check(&b), -1);
	eb_buf_finish(&b);
}

static void
test_buf_escapes(void **state)
{
	struct eb_buf b;

	eb_buf_init(&b, 1024);
	assert_int_equal(eb_buf_add_json_str(&b, "a\"b\\c\n\x01\x7f"), 0);
	assert_string_equal(eb_buf_str(&b), "\"a\\\"b\\\\c\\n\\u0001\\u007f\"");
	eb_buf_reset(&b);
	assert_int_equal(eb_buf_add_html(&b, "<a href='x'>&\"</a>"), 0);
	assert_string_equal(eb_buf_str(&b),
	                    "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
	eb_buf_finish(&b);

	/* a failed escape leaves the buffer as it was */
	eb_buf_init(&b, 8);
	assert_int_equal(eb_buf_addstr(&b, "ab"), 0);
	assert_int_equal(eb_buf_add_json_str(&b, "0123456789"), -1);
	assert_string_equal(eb_buf_str(&b), "ab");
	eb_buf_finish(&b);
}

static void
test_identifier(void **state)
{
	char *l, *d;

	assert_int_equal(eb_str_split_identifier("Alice@Contoso.COM.", &l, &d),
	                 0);
	assert_string_equal(l, "Alice");
	assert_string_equal(d, "contoso.com");
	eb_free(l);
	eb_free(d);

	static const char *const bad[] = {
	    "a@b@contoso.com", "@contoso.com",  "alice@",        "alice",
	    "alice@localhost", "alice@1.2.3.4", "alice@-x.com",  "alice@x-.com",
	    "alice@x..com",    "al\nice@x.com", "alice@x_y.com", ""};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(eb_str_split_identifier(bad[i], &l, &d), -1);
		assert_null(l);
		assert_null(d);
	}
}

static void
test_fqdn_and_tenant(void **state)
{
	char label63[64], long_name[300];

	memset(label63, 'a', 63);
	label63[63] = '\0';
	assert_true(eb_str_is_fqdn("contoso.com"));
	assert_true(eb_str_is_fqdn("a.b.c.example"));
	assert_true(eb_str_is_fqdn("xn--bcher-kva.example"));
	assert_false(eb_str_is_fqdn("com"));
	assert_false(eb_str_is_fqdn("10.0.0.1"));
	snprintf(long_name, sizeof(long_name), "%s.com", label63);
	assert_true(eb_str_is_fqdn(long_name));
	snprintf(long_name, sizeof(long_name), "%sa.com", label63);
	assert_false(eb_str_is_fqdn(long_name));

	assert_true(eb_str_is_tenant_id("contoso-1"));
	assert_false(eb_str_is_tenant_id("Contoso"));
	assert_false(eb_str_is_tenant_id(""));
	assert_false(eb_str_is_tenant_id("a/b"));
	assert_true(eb_str_is_tenant_id(label63));
	label63[62] = 'a';
	snprintf(long_name, sizeof(long_name), "%sa", label63);
	assert_false(eb_str_is_tenant_id(long_name));
}

static void
test_ct_eq(void **state)
{
	assert_true(eb_str_ct_eq("abc", 3, "abc", 3));
	assert_false(eb_str_ct_eq("abc", 3, "abd", 3));
	assert_false(eb_str_ct_eq("abc", 3, "abcd", 4));
}

static void
test_fail_injection(void **state)
{
	void *p;

	eb_mem_fail_after(1);
	p = eb_malloc(8);
	assert_non_null(p);
	assert_null(eb_malloc(8));
	eb_free(p);
	assert_non_null(p = eb_malloc(8)); /* one failure only */
	eb_free(p);
	eb_mem_fail_after(-1);
}

static void
test_rand_token(void **state)
{
	char *a = eb_rand_token(32), *b = eb_rand_token(32);

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(strlen(a), 43);
	assert_string_not_equal(a, b);
	assert_null(strpbrk(a, "+/=?&#%"));
	eb_free(a);
	eb_free(b);
}

static int
nop(struct eb_request *r)
{
	(void)r;
	return 0;
}

static void
test_metrics(void **state)
{
	static const struct eb_route routes[] = {
	    {"GET", "/x", nop, "x", 0, 0, NULL}};
	struct eb_metrics *m = eb_metrics_create(routes, 1);
	struct eb_buf b;

	assert_non_null(m);
	eb_metrics_request(m, 0, 200, 0.0003);
	eb_metrics_request(m, 0, 200, 0.2);
	eb_metrics_request(m, 0, 404, 0.001);
	eb_metrics_request(m, -1, 404, 0.001);
	eb_metrics_describe(m, "eb_idp_errors_total", "counter", "IdP errors.");
	eb_metrics_add(m, "eb_idp_errors_total", "tenant=\"a\"", 2);
	eb_metrics_add(m, "eb_idp_errors_total", "tenant=\"a\"", 1);
	assert_true(eb_metrics_get(m, "eb_idp_errors_total", "tenant=\"a\"") ==
	            3);
	eb_buf_init(&b, 1 << 20);
	assert_int_equal(eb_metrics_render(m, &b), 0);
	assert_non_null(strstr(eb_buf_str(&b),
	                       "enrollbridge_http_requests_total{route="
	                       "\"x\",status=\"200\"} 2\n"));
	assert_non_null(
	    strstr(eb_buf_str(&b),
	           "enrollbridge_http_requests_total{route=\"unmatched\","
	           "status=\"404\"} 1\n"));
	assert_non_null(strstr(
	    eb_buf_str(&b),
	    "enrollbridge_http_request_duration_seconds_bucket{route=\"x\","
	    "le=\"0.0005\"} 1\n"));
	assert_non_null(strstr(eb_buf_str(&b),
	                       "enrollbridge_http_request_duration_seconds_"
	                       "count{route=\"x\"} 3\n"));
	assert_non_null(strstr(eb_buf_str(&b),
	                       "# TYPE eb_idp_errors_total counter\n"
	                       "eb_idp_errors_total{tenant=\"a\"} 3\n"));
	eb_buf_finish(&b);
	eb_metrics_destroy(m);
}

/* SHA-256 of one piece and of two (FIPS 180-2 "abc"), and header-name
 * comparison without case. */
static void
test_sha256_ieq(void **state)
{
	static const unsigned char abc[32] = {
	    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
	    0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
	    0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
	unsigned char h[32];

	(void)state;
	assert_int_equal(eb_sha256("abc", 3, NULL, 0, h), 0);
	assert_memory_equal(h, abc, 32);
	memset(h, 0, sizeof(h));
	assert_int_equal(eb_sha256("a", 1, "bc", 2, h), 0);
	assert_memory_equal(h, abc, 32);
	assert_true(eb_str_ieq("Content-Type", "content-type"));
	assert_true(eb_str_ieq("", ""));
	assert_false(eb_str_ieq("Content-Type", "Content-Typ"));
	assert_false(eb_str_ieq("Host", "Hosts"));
	assert_false(eb_str_ieq("a[", "A{")); /* '[' is not 'A' + 32 */
}

static void
test_metrics_histogram(void **state)
{
	static const double le[] = {0.1, 1, 10};
	struct eb_metrics *m = eb_metrics_create(NULL, 0);
	struct eb_metric *h;
	struct eb_buf b;

	(void)state;
	assert_non_null(m);
	eb_metrics_describe_histogram(m, "eb_up_seconds", "Upstream.", le, 3);
	h = eb_metrics_series(m, "eb_up_seconds", "tenant=\"a\"");
	assert_non_null(h);
	eb_metric_observe(h, 0.05);
	eb_metric_observe(h, 0.5);
	eb_metric_observe(h, 0.5);
	eb_metric_observe(h, 99);
	eb_metric_observe(eb_metrics_series(m, "eb_up_seconds", ""), 2);
	eb_buf_init(&b, 1 << 20);
	assert_int_equal(eb_metrics_render(m, &b), 0);
	assert_non_null(strstr(
	    eb_buf_str(&b), "# HELP eb_up_seconds Upstream.\n"
	                    "# TYPE eb_up_seconds histogram\n"
	                    "eb_up_seconds_bucket{tenant=\"a\",le=\"0.1\"} 1\n"
	                    "eb_up_seconds_bucket{tenant=\"a\",le=\"1\"} 3\n"
	                    "eb_up_seconds_bucket{tenant=\"a\",le=\"10\"} 3\n"
	                    "eb_up_seconds_bucket{tenant=\"a\",le=\"+Inf\"} 4\n"
	                    "eb_up_seconds_sum{tenant=\"a\"} 100.05"));
	assert_non_null(strstr(eb_buf_str(&b),
	                       "eb_up_seconds_count{tenant=\"a\"} 4\n"
	                       "eb_up_seconds_bucket{le=\"0.1\"} 0\n"));
	assert_non_null(strstr(eb_buf_str(&b), "eb_up_seconds_count 1\n"));
	/* never a family twice, and process metrics are there */
	assert_null(strstr(strstr(eb_buf_str(&b), "# TYPE eb_up_seconds ") + 1,
	                   "# TYPE eb_up_seconds "));
	assert_non_null(strstr(eb_buf_str(&b),
	                       "# TYPE process_cpu_seconds_total counter\n"));
	eb_buf_finish(&b);
	eb_metrics_destroy(m);
}

static void
test_metrics_label_escape(void **state)
{
	struct eb_buf b;

	(void)state;
	eb_buf_init(&b, 1024);
	assert_int_equal(eb_metrics_label(&b, "tenant", "a\"b\\c\nd"), 0);
	assert_int_equal(eb_metrics_label(&b, "mode", NULL), 0);
	assert_string_equal(eb_buf_str(&b),
	                    "tenant=\"a\\\"b\\\\c\\nd\",mode=\"\"");
	eb_buf_finish(&b);
}

/* The value of a one-series family in a rendered text, or -1. */
static double
rendered(const char *text, const char *name)
{
	char key[128];
	const char *p;

	snprintf(key, sizeof(key), "\n%s ", name);
	if ((p = strstr(text, key)) == NULL)
		return -1;
	return strtod(p + strlen(key), NULL);
}

static void
test_metrics_process(void **state)
{
	struct eb_buf b;
	double start, now = (double)time(NULL);

	(void)state;
	eb_buf_init(&b, 1 << 16);
	assert_int_equal(eb_metrics_render_process(&b), 0);
	assert_true(rendered(eb_buf_str(&b), "process_cpu_seconds_total") >= 0);
	assert_true(rendered(eb_buf_str(&b), "process_resident_memory_bytes") >
	            4096);
	assert_true(rendered(eb_buf_str(&b), "process_virtual_memory_bytes") >=
	            rendered(eb_buf_str(&b), "process_resident_memory_bytes"));
	assert_true(rendered(eb_buf_str(&b), "process_open_fds") >= 3);
	assert_true(rendered(eb_buf_str(&b), "process_max_fds") >=
	            rendered(eb_buf_str(&b), "process_open_fds"));
	/* this test process started less than ten minutes ago */
	start = rendered(eb_buf_str(&b), "process_start_time_seconds");
	assert_true(start > now - 600 && start <= now + 2);
	eb_buf_finish(&b);
}

/* openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes
 * -subj /CN=t -days 1 -set_serial 1: notAfter Dec 8 20:43:58 2026 GMT */
#define CERT_PEM                                                               \
	"-----BEGIN CERTIFICATE-----\n"                                        \
	"MIIBWTCCAQCgAwIBAgIBATAKBggqhkjOPQQDAjAMMQowCAYDVQQDDAF0MB4XDTI2\n"   \
	"MTIwNzIwNDM1OFoXDTI2MTIwODIwNDM1OFowDDEKMAgGA1UEAwwBdDBZMBMGByqG\n"   \
	"SM49AgEGCCqGSM49AwEHA0IABIuFLlC/ZJEL14gQSuDKCDIp/EGv1RRTMtSiDWQR\n"   \
	"t/806TW7yZ5zMb0+jOFx6VlFwZwj9e+d38QCZvps9SpPZ2ijUzBRMB0GA1UdDgQW\n"   \
	"BBSfaD0KlcbPVzMwEFglFeRSnYIpkTAfBgNVHSMEGDAWgBSfaD0KlcbPVzMwEFgl\n"   \
	"FeRSnYIpkTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIG7h5wK/\n"   \
	"BTWrYlA3rrJqYT9uBKdvP805fwxwWVjsMNxrAiAOlI8KEd7ahohx3Y9k91avrhPF\n"   \
	"BO1uyfgBkjh4BTPsOA==\n"                                               \
	"-----END CERTIFICATE-----\n"
#define CERT_NOT_AFTER 1796762638LL

static void
test_metrics_cert_not_after(void **state)
{
	static const char pem[] = CERT_PEM;
	long long t = 0;

	(void)state;
	assert_int_equal(eb_metrics_cert_not_after(pem, strlen(pem), &t), 0);
	assert_true(t == CERT_NOT_AFTER);
	assert_int_equal(eb_metrics_cert_not_after("nope", 4, &t), -1);
	assert_int_equal(eb_metrics_cert_not_after(NULL, 0, &t), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sha256_ieq),
	    cmocka_unit_test(test_buf_limit),
	    cmocka_unit_test(test_buf_escapes),
	    cmocka_unit_test(test_buf_sticky),
	    cmocka_unit_test(test_identifier),
	    cmocka_unit_test(test_fqdn_and_tenant),
	    cmocka_unit_test(test_ct_eq),
	    cmocka_unit_test(test_fail_injection),
	    cmocka_unit_test(test_rand_token),
	    cmocka_unit_test(test_metrics),
	    cmocka_unit_test(test_metrics_histogram),
	    cmocka_unit_test(test_metrics_label_escape),
	    cmocka_unit_test(test_metrics_process),
	    cmocka_unit_test(test_metrics_cert_not_after),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
