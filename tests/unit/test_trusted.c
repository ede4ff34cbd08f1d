/*
 * Trusted proxies: the CIDR parser and matcher, the readers of
 * X-Forwarded-For and RFC 7239 Forwarded (right-most untrusted hop,
 * bracketed IPv6, obfuscated nodes, malformed and conflicting headers), and
 * the configuration side: "trusted_proxies" errors with file, key and
 * reason, "limits.per_ip_connections": 0, and the configuration hash.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/trusted.h"

#include "cfgfx.h"

static struct eb_cidr cidrs[8];
static struct eb_trusted tp = {cidrs, 0};

static void
trust(const char *s)
{
	const char *why = NULL;

	if (eb_trusted_parse_cidr(s, &cidrs[tp.n], &why) != 0)
		fail_msg("%s: %s", s, why);
	tp.n++;
}

static int
contains(const char *addr)
{
	unsigned char a[16];
	int fam;

	assert_int_equal(eb_trusted_parse_addr(addr, strlen(addr), &fam, a), 0);
	return eb_trusted_contains(&tp, fam, a);
}

static void
test_cidr_parse(void **state)
{
	static const char *const bad[] = {
	    "",
	    "10.0.0.0/",
	    "10.0.0.0/33",
	    "10.0.0.1/8",
	    "10.0.0.0/x",
	    "10.0.0.0/+8",
	    "10.0.0.0/0",
	    "::/0",
	    "fe80::/129",
	    "fe80::1/64",
	    "10.0.0",
	    "010.0.0.1",
	    "example.com",
	    "[::1]/128",
	    "10.0.0.0/08 ",
	    "::ffff:0:0/96",
	    "10.0.0.0/8/8",
	    "1.2.3.4 ",
	};
	struct eb_cidr c;
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (eb_trusted_parse_cidr(bad[i], &c, &why) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_non_null(why);
		/* a reason never quotes the value */
		assert_null(bad[i][0] ? strstr(why, bad[i]) : NULL);
	}
	assert_int_equal(eb_trusted_parse_cidr("10.0.0.0/8", &c, &why), 0);
	assert_int_equal(c.family, 4);
	assert_int_equal(c.bits, 8);
	assert_int_equal(eb_trusted_parse_cidr("127.0.0.2", &c, &why), 0);
	assert_int_equal(c.bits, 32);
	assert_int_equal(eb_trusted_parse_cidr("2001:db8::/32", &c, &why), 0);
	assert_int_equal(c.family, 6);
	assert_int_equal(c.bits, 32);
	assert_int_equal(eb_trusted_parse_cidr("::1", &c, &why), 0);
	assert_int_equal(c.bits, 128);
	/* IPv4-mapped networks are IPv4 networks */
	assert_int_equal(
	    eb_trusted_parse_cidr("::ffff:192.168.0.0/112", &c, &why), 0);
	assert_int_equal(c.family, 4);
	assert_int_equal(c.bits, 16);
}

static void
test_cidr_match(void **state)
{
	(void)state;
	tp.n = 0;
	assert_int_equal(contains("10.1.2.3"), 0); /* empty list */
	trust("10.0.0.0/8");
	trust("192.168.1.128/25");
	trust("2001:db8:1::/48");
	trust("127.0.0.2/32");
	assert_int_equal(contains("10.255.255.255"), 1);
	assert_int_equal(contains("11.0.0.0"), 0);
	assert_int_equal(contains("9.255.255.255"), 0);
	assert_int_equal(contains("192.168.1.128"), 1);
	assert_int_equal(contains("192.168.1.255"), 1);
	assert_int_equal(contains("192.168.1.127"), 0);
	assert_int_equal(contains("2001:db8:1:ffff::1"), 1);
	assert_int_equal(contains("2001:db8:2::1"), 0);
	assert_int_equal(contains("127.0.0.2"), 1);
	assert_int_equal(contains("127.0.0.3"), 0);
	/* a dual-stack socket's view of an IPv4 peer */
	assert_int_equal(contains("::ffff:127.0.0.2"), 1);
	assert_int_equal(contains("::ffff:127.0.0.3"), 0);
	/* an IPv4 network never matches a plain IPv6 address with the
	 * same leading bytes */
	assert_int_equal(contains("a00::1"), 0);
	assert_int_equal(
	    eb_trusted_contains(NULL, 4, (const unsigned char *)"\n\0\0\1"), 0);
}

static void
test_addr_forms(void **state)
{
	static const char *const good[] = {"1.2.3.4",   "1.2.3.4:80",
	                                   "::1",       "[::1]",
	                                   "[::1]:443", "2001:db8::5"};
	static const char *const bad[] = {
	    "",         "1.2.3.4:",     "1.2.3.4:99999", "1.2.3.4:8a",
	    "[::1",     "[::1]x",       "[1.2.3.4]",     "1.2.3",
	    "host",     "fe80::1%eth0", "1.2.3.4:80:1",  "[::1]:",
	    " 1.2.3.4", "::1:80x"};
	unsigned char a[16];
	size_t i;
	int fam;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (eb_trusted_parse_addr(good[i], strlen(good[i]), &fam, a) !=
		    0)
			fail_msg("refused \"%s\"", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (eb_trusted_parse_addr(bad[i], strlen(bad[i]), &fam, a) !=
		    -1)
			fail_msg("accepted \"%s\"", bad[i]);
}

/* The client the headers name for a trusted peer; "NONE" or "BAD". */
static const char *
client(const char *xff, const char *fwd)
{
	static char out[64];
	const char *why = NULL;

	switch (eb_trusted_client(&tp, xff, fwd, out, sizeof(out), &why)) {
	case EB_TRUSTED_FOUND:
		assert_null(why);
		return out;
	case EB_TRUSTED_NONE:
		return "NONE";
	default:
		assert_non_null(why);
		return "BAD";
	}
}

static void
setup_lb(void)
{
	tp.n = 0;
	trust("10.0.0.0/8");
	trust("2001:db8:1::/48");
}

static void
test_xff(void **state)
{
	char big[EB_TRUSTED_MAX_HEADER + 64];
	size_t i;

	(void)state;
	setup_lb();
	assert_string_equal(client("203.0.113.7", NULL), "203.0.113.7");
	/* the client's own (spoofable) entries sit left of the one our
	 * balancer appended: the right-most untrusted wins */
	assert_string_equal(client("1.1.1.1, 203.0.113.7", NULL),
	                    "203.0.113.7");
	assert_string_equal(client("1.1.1.1, 203.0.113.7, 10.0.0.5", NULL),
	                    "203.0.113.7");
	assert_string_equal(
	    client("1.1.1.1,203.0.113.7,10.0.0.5,10.9.9.9", NULL),
	    "203.0.113.7");
	/* all trusted: the furthest */
	assert_string_equal(client("10.0.0.9, 10.0.0.5", NULL), "10.0.0.9");
	assert_string_equal(client("203.0.113.7:5555", NULL), "203.0.113.7");
	assert_string_equal(client("[2001:db8:2::7]:5555", NULL),
	                    "2001:db8:2::7");
	assert_string_equal(client("2001:db8:2::7, 2001:db8:1::1", NULL),
	                    "2001:db8:2::7");
	assert_string_equal(client("::ffff:203.0.113.7", NULL), "203.0.113.7");
	/* empty items are skipped, an empty header names nobody */
	assert_string_equal(client(" , 203.0.113.7 ,", NULL), "203.0.113.7");
	assert_string_equal(client("", NULL), "NONE");
	assert_string_equal(client("1.1.1.1, unknown", NULL), "NONE");
	/* junk anywhere fails the whole header */
	assert_string_equal(client("evil, 203.0.113.7", NULL), "BAD");
	assert_string_equal(client("203.0.113.7 1.1.1.1", NULL), "BAD");
	assert_string_equal(client("203.0.113.7\"", NULL), "BAD");
	assert_string_equal(client("<script>", NULL), "BAD");
	/* bounds: hops and length */
	big[0] = '\0';
	for (i = 0; i < EB_TRUSTED_MAX_HOPS + 1; i++)
		strcat(big, i ? ",1.2.3.4" : "1.2.3.4");
	assert_string_equal(client(big, NULL), "BAD");
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big + sizeof(big) - 12, "203.0.113.7", 11);
	assert_string_equal(client(big, NULL), "BAD");
}

static void
test_forwarded(void **state)
{
	(void)state;
	setup_lb();
	assert_string_equal(client(NULL, "for=203.0.113.7"), "203.0.113.7");
	assert_string_equal(client(NULL, "For=\"203.0.113.7\""), "203.0.113.7");
	assert_string_equal(
	    client(NULL, "for=\"[2001:db8:2::7]:4711\";proto=https"),
	    "2001:db8:2::7");
	assert_string_equal(client(NULL,
	                           "for=1.1.1.1, for=203.0.113.7;by=10.0.0.1, "
	                           "proto=http;for=10.0.0.2"),
	                    "203.0.113.7");
	assert_string_equal(client(NULL, "for=\"203.0.113.7:80\" ; host=a.b"),
	                    "203.0.113.7");
	assert_string_equal(client(NULL, "for=\"\\203.0.113.7\""),
	                    "203.0.113.7");
	/* obfuscated or unknown in the client's place: the peer */
	assert_string_equal(client(NULL, "for=1.1.1.1, for=_hidden"), "NONE");
	assert_string_equal(client(NULL, "for=\"_x-1.y:_p\", for=10.0.0.3"),
	                    "NONE");
	assert_string_equal(client(NULL, "for=unknown"), "NONE");
	assert_string_equal(client(NULL, "proto=https"), "NONE");
	/* an obfuscated node further left does not matter */
	assert_string_equal(client(NULL, "for=_hidden, for=203.0.113.7"),
	                    "203.0.113.7");
	/* malformed */
	assert_string_equal(client(NULL, "for=[2001:db8::1]"), "BAD");
	assert_string_equal(client(NULL, "for=\"2001:db8::1\""), "BAD");
	assert_string_equal(client(NULL, "for=\"203.0.113.7"), "BAD");
	assert_string_equal(client(NULL, "for="), "BAD");
	assert_string_equal(client(NULL, "=1.2.3.4"), "BAD");
	assert_string_equal(client(NULL, "for=1.2.3.4;for=5.6.7.8"), "BAD");
	assert_string_equal(client(NULL, "for=1.2.3.4 junk"), "BAD");
	assert_string_equal(client(NULL, "for=example.com"), "BAD");
	assert_string_equal(client(NULL, "for=\"a\\"), "BAD");
}

/* The chain sent on upstream for a trusted peer; "NONE" or "BAD". */
static const char *
chain(const char *xff, const char *fwd, size_t vialen)
{
	static char out[64], via[4096];
	const char *why = NULL;

	assert_true(vialen <= sizeof(via));
	switch (eb_trusted_client_chain(&tp, xff, fwd, out, sizeof(out), via,
	                                vialen, &why)) {
	case EB_TRUSTED_FOUND:
		return via;
	case EB_TRUSTED_NONE:
		return "NONE";
	default:
		assert_non_null(why);
		return "BAD";
	}
}

static void
test_chain(void **state)
{
	char big[2048];
	size_t i, len = 0;

	(void)state;
	setup_lb();
	/* spoofed entries left of the client are dropped, trusted hops kept */
	assert_string_equal(chain("6.6.6.6, 203.0.113.7", NULL, 4096),
	                    "203.0.113.7");
	assert_string_equal(
	    chain("6.6.6.6, 203.0.113.7, 10.0.0.5, 10.9.9.9", NULL, 4096),
	    "203.0.113.7, 10.0.0.5, 10.9.9.9");
	/* canonical forms: brackets and ports gone, IPv6 lower case,
	 * IPv4-mapped as IPv4 */
	assert_string_equal(chain(NULL,
	                          "for=\"[2001:DB8::7]:4711\", "
	                          "for=\"[2001:db8:1::9]\"",
	                          4096),
	                    "2001:db8::7, 2001:db8:1::9");
	assert_string_equal(chain("::ffff:203.0.113.8, 10.0.0.1", NULL, 4096),
	                    "203.0.113.8, 10.0.0.1");
	/* garbage, obfuscated, too many hops: never a chain */
	assert_string_equal(chain("203.0.113.7, <script>", NULL, 4096), "BAD");
	assert_string_equal(chain(NULL, "for=_hidden, for=10.0.0.1", 4096),
	                    "NONE");
	for (i = 0; i <= EB_TRUSTED_MAX_HOPS; i++)
		len += (size_t)snprintf(big + len, sizeof(big) - len,
		                        "%s10.0.0.%zu", i ? ", " : "", i % 250);
	assert_string_equal(chain(big, NULL, 4096), "BAD");
	/* no room: BAD, never a cut chain */
	assert_string_equal(chain("203.0.113.7, 10.0.0.5", NULL, 16), "BAD");
}

static void
test_both_headers(void **state)
{
	(void)state;
	setup_lb();
	assert_string_equal(client("203.0.113.7", "for=203.0.113.7"),
	                    "203.0.113.7");
	/* a client adding the header our balancer does not maintain must
	 * not pick its address: never a guess */
	assert_string_equal(client("1.1.1.1", "for=203.0.113.7"), "BAD");
	assert_string_equal(client("203.0.113.7", "for=_x"), "BAD");
	assert_string_equal(client("evil", "for=203.0.113.7"), "BAD");
}

/* Configuration: a temporary folder per test (cfgfx.h). */
static struct eb_config_error err;

static struct eb_config *
load_main(const char *main)
{
	return cfgfx_load(main, &err);
}

static int
setup(void **state)
{
	(void)state;
	memset(&err, 0, sizeof(err));
	return cfgfx_setup("eb-trusted");
}

static int
teardown(void **state)
{
	(void)state;
	return cfgfx_teardown();
}

#define MAIN(extra) "{\"public_url\": \"https://eb.example.com\"" extra "}"

static void
expect_fail(const char *main, const char *key, const char *why)
{
	struct eb_config *cfg = load_main(main);

	if (cfg != NULL) {
		eb_config_unref(cfg);
		fail_msg("accepted %s", main);
	}
	if (strstr(err.file, "config.json") == NULL ||
	    strcmp(err.key, key) != 0 || strstr(err.reason, why) == NULL)
		fail_msg("got %s %s %s; want %s %s", err.file, err.key,
		         err.reason, key, why);
}

static void
test_config_trusted(void **state)
{
	struct eb_config *cfg;
	unsigned char a[16];

	(void)state;
	assert_non_null(cfg = load_main(MAIN("")));
	assert_int_equal(cfg->trusted_proxies.n, 0);
	eb_config_unref(cfg);
	assert_non_null(
	    cfg = load_main(MAIN(", \"trusted_proxies\": [\"10.0.0.0/8\", "
	                         "\"fd00::/8\", \"::1\"]")));
	assert_int_equal(cfg->trusted_proxies.n, 3);
	inet_pton(AF_INET, "10.3.3.3", a);
	assert_int_equal(eb_trusted_contains(&cfg->trusted_proxies, 4, a), 1);
	inet_pton(AF_INET6, "fd12::1", a);
	assert_int_equal(eb_trusted_contains(&cfg->trusted_proxies, 6, a), 1);
	eb_config_unref(cfg);
	expect_fail(MAIN(", \"trusted_proxies\": \"10.0.0.0/8\""),
	            "trusted_proxies", "list of CIDRs");
	expect_fail(MAIN(", \"trusted_proxies\": [\"10.0.0.0/8\", 7]"),
	            "trusted_proxies[1]", "must be a string");
	expect_fail(MAIN(", \"trusted_proxies\": [\"10.0.0.1/8\"]"),
	            "trusted_proxies[0]", "host bits");
	expect_fail(MAIN(", \"trusted_proxies\": [\"0.0.0.0/0\"]"),
	            "trusted_proxies[0]", "every address");
	expect_fail(MAIN(", \"trusted_proxies\": [\"lb.example\"]"),
	            "trusted_proxies[0]", "not an IPv4 or IPv6 address");
}

static void
test_config_per_ip_off(void **state)
{
	struct eb_config *cfg;

	(void)state;
	assert_non_null(
	    cfg = load_main(MAIN(", \"limits\": {\"per_ip_connections\": 0}")));
	assert_int_equal(cfg->limits.per_ip_connections, 0);
	eb_config_unref(cfg);
	expect_fail(MAIN(", \"limits\": {\"per_ip_connections\": -1}"),
	            "limits.per_ip_connections", "");
}

static void
test_config_hash(void **state)
{
	struct eb_config *cfg;
	char h1[65], h2[65];

	(void)state;
	assert_non_null(cfg = load_main(MAIN("")));
	assert_int_equal(strlen(cfg->sha256), 64);
	memcpy(h1, cfg->sha256, sizeof(h1));
	eb_config_unref(cfg);
	/* same bytes, same hash */
	assert_non_null(cfg = load_main(MAIN("")));
	assert_string_equal(cfg->sha256, h1);
	eb_config_unref(cfg);
	/* a tenant file edited: another hash */
	write_file("tenants/acme.json", TENANT_OK " ");
	assert_non_null(cfg = load_main(MAIN("")));
	memcpy(h2, cfg->sha256, sizeof(h2));
	assert_string_not_equal(h2, h1);
	eb_config_unref(cfg);
	/* the same bytes under another tenant file name: another hash */
	write_file("tenants/acme.json", TENANT_OK);
	{
		char a[512], b[512];

		snprintf(a, sizeof(a), "%s/tenants/acme.json", dir);
		snprintf(b, sizeof(b), "%s/tenants/other.json", dir);
		assert_int_equal(rename(a, b), 0);
	}
	assert_non_null(cfg = load_main(MAIN("")));
	assert_string_not_equal(cfg->sha256, h1);
	eb_config_unref(cfg);
	/* the main file edited: another hash */
	assert_non_null(cfg = load_main(MAIN(" ")));
	assert_string_not_equal(cfg->sha256, h1);
	eb_config_unref(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cidr_parse),
	    cmocka_unit_test(test_cidr_match),
	    cmocka_unit_test(test_addr_forms),
	    cmocka_unit_test(test_xff),
	    cmocka_unit_test(test_forwarded),
	    cmocka_unit_test(test_both_headers),
	    cmocka_unit_test(test_chain),
	    cmocka_unit_test_setup_teardown(test_config_trusted, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_config_per_ip_off, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_config_hash, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
