/*
 * Unit tests for the request framing gate (src/http/h1check.c): which
 * request lines, targets and header lists RFC 9112 has the server refuse,
 * and with which status; and the layout check that finds what
 * libmicrohttpd 0.9.75 hides (an obs-fold line appended to a name, a NUL
 * in a value, a dropped line, bare LF), on buffers laid out as the library
 * leaves them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/h1check.h"

#define MAXF 16

/* Header fields from "Name: value" strings (NULL-terminated list). */
static size_t
fields(struct eb_h1_field *f, char bufs[MAXF][256], const char **lines)
{
	size_t n = 0;
	char *c;

	for (; *lines != NULL && n < MAXF; lines++, n++) {
		strcpy(bufs[n], *lines);
		c = strchr(bufs[n], ':');
		assert_non_null(c);
		*c++ = '\0';
		while (*c == ' ')
			c++;
		f[n].name = bufs[n];
		f[n].value = c;
	}
	return n;
}

static int
check(const char *version, const char *target, const char **lines)
{
	struct eb_h1_field f[MAXF];
	char bufs[MAXF][256];
	const char *why = NULL;
	size_t n = fields(f, bufs, lines);
	int st = eb_h1check_request("PUT", version, target, f, n, &why);

	if (st != 0)
		assert_non_null(why);
	return st;
}

#define L(...) ((const char *[]){__VA_ARGS__, NULL})

static void
test_sound_requests(void **state)
{
	(void)state;
	assert_int_equal(check("HTTP/1.1", "/t/gen/mdm/checkin",
	                       L("Host: x", "Content-Length: 3")),
	                 0);
	assert_int_equal(check("HTTP/1.1", "/t/gen/mdm/a%20b?x=%2F&y=%00",
	                       L("Host: x", "Transfer-Encoding:  Chunked ")),
	                 0);
	/* HTTP/1.0 without Host; obs-text and HTAB in values */
	assert_int_equal(check("HTTP/1.0", "/healthz", L("X-A: a\tb\xc3\xa9")),
	                 0);
	assert_int_equal(check("HTTP/1.1", "/caf%C3%A9",
	                       L("Host: x", "Authorization: Bearer a")),
	                 0);
}

static void
test_refused_fields(void **state)
{
	/* obs-fold as libmicrohttpd delivers it: appended to the name */
	const struct eb_h1_field fold[] = {
	    {"Host", "x"}, {"X-FooX-Managed-Apple-ID: victim", "a"}};
	const char *why;

	(void)state;
	assert_int_equal(
	    eb_h1check_request("PUT", "HTTP/1.1", "/", fold, 2, &why), 400);
	/* a blank or tab before the colon stays in the name */
	assert_int_equal(
	    check("HTTP/1.1", "/", L("Host: x", "Transfer-Encoding : chunked")),
	    400);
	assert_int_equal(check("HTTP/1.1", "/", L("Host: x", "X-A\t: 1")), 400);
	assert_int_equal(check("HTTP/1.1", "/", L("Host: x", "X(y): 1")), 400);
	assert_int_equal(check("HTTP/1.1", "/", L("Host: x", ": 1")), 400);
	/* control characters in a value */
	assert_int_equal(check("HTTP/1.1", "/", L("Host: x", "X-A: a\x01")),
	                 400);
	assert_int_equal(check("HTTP/1.1", "/", L("Host: x", "X-A: a\rb")),
	                 400);
	assert_int_equal(check("HTTP/1.1", "/", L("Host: x", "X-A: a\x7f")),
	                 400);
	/* Host: none in 1.1, two anywhere */
	assert_int_equal(check("HTTP/1.1", "/", L("X-A: 1")), 400);
	assert_int_equal(check("HTTP/1.0", "/", L("Host: a", "host: b")), 400);
	/* a second Authorization */
	assert_int_equal(check("HTTP/1.1", "/",
	                       L("Host: x", "Authorization: Bearer a",
	                         "authorization: Bearer b")),
	                 400);
}

static void
test_refused_framing(void **state)
{
	(void)state;
	assert_int_equal(check("HTTP/1.1", "/",
	                       L("Host: x", "Content-Length: 3",
	                         "Transfer-Encoding: chunked")),
	                 400);
	assert_int_equal(
	    check("HTTP/1.1", "/",
	          L("Host: x", "Content-Length: 3", "Content-Length: 5")),
	    400);
	assert_int_equal(
	    check("HTTP/1.1", "/",
	          L("Host: x", "Content-Length: 3", "Content-Length: 3")),
	    400);
	assert_int_equal(
	    check("HTTP/1.1", "/", L("Host: x", "Content-Length: 3, 3")), 400);
	assert_int_equal(
	    check("HTTP/1.1", "/", L("Host: x", "Content-Length: +3")), 400);
	assert_int_equal(
	    check("HTTP/1.1", "/", L("Host: x", "Transfer-Encoding: gzip")),
	    501);
	assert_int_equal(
	    check("HTTP/1.1", "/",
	          L("Host: x", "Transfer-Encoding: gzip, chunked")),
	    501);
	assert_int_equal(check("HTTP/1.1", "/",
	                       L("Host: x", "Transfer-Encoding: chunked",
	                         "Transfer-Encoding: chunked")),
	                 400);
	assert_int_equal(
	    check("HTTP/1.0", "/", L("Transfer-Encoding: chunked")), 400);
	assert_int_equal(check("HTTP/2.0", "/", L("Host: x")), 505);
	assert_int_equal(check("HTTP/1.2", "/", L("Host: x")), 505);
}

static void
test_targets(void **state)
{
	static const char *bad[] = {
	    "/a/%2F/b",       "/a%2fb",    "/a%5Cb",  "/a\\b",
	    "/a%00b",         "/a%0d%0ab", "/a%7f",   "/%c0%ae%c0%ae/",
	    "/%e0%80%ae",     "/%c0%af",   "/a%ff",   "/a%ed%a0%80",
	    "/a%f4%90%80%80", "/a%c3",     "/a%c3?x", "/a%zz",
	    "/a%4",           "/a#frag",   "",        "/a b",
	    "/\xc3\xa9",      "/a\x01",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		if (check("HTTP/1.1", bad[i], L("Host: x")) != 400)
			fail_msg("target accepted: %s", bad[i]);
	}
	/* the query is the handler's to judge */
	assert_int_equal(check("HTTP/1.1", "/a?x=%2F%5C%00%ff", L("Host: x")),
	                 0);
	assert_int_equal(
	    check("HTTP/1.1", "/%F0%9F%98%80/a..b/.c", L("Host: x")), 0);
}

static void
test_utf8(void **state)
{
	(void)state;
	assert_true(eb_h1check_utf8("caf\xc3\xa9", 5));
	assert_true(eb_h1check_utf8("\xf0\x9f\x98\x80", 4));
	assert_false(eb_h1check_utf8("\xc0\xae", 2));
	assert_false(eb_h1check_utf8("\xe0\x80\xae", 3));
	assert_false(eb_h1check_utf8("\xed\xa0\x80", 3));
	assert_false(eb_h1check_utf8("\xf4\x90\x80\x80", 4));
	assert_false(eb_h1check_utf8("\xc3", 1));
	assert_false(eb_h1check_utf8("\x80", 1));
}

/*
 * The head as libmicrohttpd 0.9.75 leaves it: each line's colon and its
 * CR LF overwritten with NUL, the value after the blanks skipped. raw is
 * the header block (CR LF lines, blank line included); len its length.
 */
static size_t
mhd_layout(char *raw, size_t len, struct eb_h1_field *f)
{
	size_t n = 0, i = 0;

	while (i < len && raw[i] != '\r' && raw[i] != '\n') {
		char *line = raw + i, *c, *e;

		e = memchr(line, '\n', len - i);
		assert_non_null(e);
		c = memchr(line, ':', (size_t)(e - line));
		assert_non_null(c);
		*c++ = '\0';
		while (*c == ' ' || *c == '\t')
			c++;
		if (e > line && e[-1] == '\r')
			e[-1] = '\0';
		*e = '\0';
		i = (size_t)(e - raw) + 1;
		if (line[0] == '\0')
			continue; /* an empty name: the library drops the line
			           */
		f[n].name = line;
		f[n].value = c;
		n++;
	}
	for (; i < len; i++)
		if (raw[i] == '\r' || raw[i] == '\n')
			raw[i] = '\0';
	return n;
}

static int
layout(const char *head, size_t len, size_t *nout)
{
	char raw[512];
	struct eb_h1_field f[MAXF];
	const char *why = NULL;
	size_t n;
	int st;

	memset(raw, 'Z', sizeof(raw));
	memcpy(raw, head, len);
	n = mhd_layout(raw, len, f);
	if (nout)
		*nout = n;
	st = eb_h1check_layout(f, n, &why);
	if (st != 0)
		assert_non_null(why);
	return st;
}

#define LAYOUT(s) layout(s, sizeof(s) - 1, NULL)

static void
test_layout(void **state)
{
	char raw[256], moved[64];
	struct eb_h1_field f[MAXF];
	const char *why;
	size_t n;

	(void)state;
	assert_int_equal(LAYOUT("Host: x\r\nX-A:  \t a\r\nX-B:b\r\nX-C:\r\n"
	                        "\r\nbody"),
	                 0);
	/* a NUL inside a value, in the middle and at the end */
	assert_int_equal(LAYOUT("Host: x\r\nX-A: a\0X-M: v\r\nX-B: b\r\n\r\n"),
	                 400);
	assert_int_equal(LAYOUT("Host: x\r\nX-A: a\0b\r\n\r\n"), 400);
	/* bare LF line endings */
	assert_int_equal(LAYOUT("Host: x\nX-A: a\n\n"), 400);
	assert_int_equal(LAYOUT("Host: x\r\nX-A: a\n\r\n"), 400);
	/* a line the library dropped after the last field (": v") */
	assert_int_equal(LAYOUT("Host: x\r\nX-A: a\r\n: v\r\n\r\n"), 400);
	assert_int_equal(LAYOUT("Host: x\r\n: v\r\nX-A: a\r\n\r\n"), 400);

	/* obs-fold: the library copies the name, continuation appended,
	 * to another buffer; the value stays behind */
	memcpy(raw, "Host: x\r\nX-Foo: a\r\n\tb\r\n\r\n", 26);
	n = mhd_layout(raw, 19, f); /* the two lines before the fold */
	assert_int_equal(n, 2);
	strcpy(moved, "X-Foob");
	f[1].name = moved;
	assert_int_equal(eb_h1check_layout(f, n, &why), 400);
	assert_non_null(why);
	/* a relocated name that happens to lie before its value */
	memcpy(raw, "X-Foob\0\0\0\0X-Foo\0 a\0\0\0\0", 22);
	f[0].name = raw;
	f[0].value = raw + 17;
	assert_int_equal(eb_h1check_layout(f, 1, &why), 400);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sound_requests),
	    cmocka_unit_test(test_refused_fields),
	    cmocka_unit_test(test_refused_framing),
	    cmocka_unit_test(test_targets),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_layout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
