/*
 * Logging: whatever a client or an upstream put in a logged value, the
 * text format writes one line with every argument escaped (no new line,
 * no faked key=value, no terminal control, no invalid UTF-8), the JSON
 * format one valid JSON object, and the message formatter formats numbers
 * exactly as printf does.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/log.h"

/* What eb_log wrote to stderr during fn, in out (NUL-terminated). */
static size_t
capture(char *out, size_t outlen, void (*fn)(void))
{
	char path[] = "/tmp/eb_test_log_XXXXXX";
	int fd, saved;
	ssize_t n;

	fd = mkstemp(path);
	assert_true(fd != -1);
	unlink(path);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(dup2(fd, STDERR_FILENO) != -1);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	assert_true(lseek(fd, 0, SEEK_SET) == 0);
	n = read(fd, out, outlen - 1);
	assert_true(n >= 0);
	out[n] = '\0';
	close(fd);
	return (size_t)n;
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void
log_injection(void)
{
	eb_log(EB_LOG_INFO, "cb", "tenant %s: IdP answered error=%.64s", "acme",
	       "x\n2026-12-07T00:00:00.000Z info cb: tenant other admin=1");
}

static void
test_text_one_line(void **state)
{
	char out[4096];

	(void)state;
	eb_log_init(EB_LOG_INFO, 0);
	capture(out, sizeof(out), log_injection);
	assert_int_equal(count_lines(out), 1);
	assert_non_null(strstr(out, " info cb: tenant acme: IdP answered "
	                            "error=\"x\\n2026-12-07T00:00:00.000Z info "
	                            "cb: tenant other admin=1\"\n"));
}

static void
log_hostile_bytes(void)
{
	/* quote and backslash, CR, tab, ESC, DEL, a C1 CSI, invalid UTF-8,
	 * and a valid e-acute that must stay as it is */
	eb_log(EB_LOG_WARN, "f", "v=%s end",
	       "a\"b\\c\rd\te\x1b[2Jf\x7f"
	       "g\xc2\x9bh\xff\xfe"
	       "caf\xc3\xa9");
}

static void
test_text_escapes(void **state)
{
	char out[4096];

	(void)state;
	eb_log_init(EB_LOG_INFO, 0);
	capture(out, sizeof(out), log_hostile_bytes);
	assert_int_equal(count_lines(out), 1);
	assert_non_null(strstr(out, " warn f: v=\"a\\\"b\\\\c\\rd\\te\\x1b[2Jf"
	                            "\\x7fg\\u009bh\\xff\\xfecaf\xc3\xa9\" "
	                            "end\n"));
}

static void
test_json_valid(void **state)
{
	char out[4096];
	json_t *j;
	json_error_t err;
	const char *msg;

	(void)state;
	eb_log_init(EB_LOG_INFO, 1);
	capture(out, sizeof(out), log_hostile_bytes);
	assert_int_equal(count_lines(out), 1);
	j = json_loads(out, 0, &err); /* jansson refuses invalid UTF-8 */
	assert_non_null(j);
	msg = json_string_value(json_object_get(j, "msg"));
	assert_non_null(msg);
	assert_string_equal(msg, "v=a\"b\\c\rd\te\x1b[2Jf\x7f"
	                         "g\xc2\x9bh\xef\xbf\xbd\xef\xbf\xbd"
	                         "caf\xc3\xa9 end");
	json_decref(j);

	capture(out, sizeof(out), log_injection);
	assert_int_equal(count_lines(out), 1);
	j = json_loads(out, 0, &err);
	assert_non_null(j);
	msg = json_string_value(json_object_get(j, "msg"));
	assert_non_null(strstr(msg, "error=x\n2026"));
	json_decref(j);
}

static void
log_numbers(void)
{
	eb_log(EB_LOG_INFO, "n",
	       "%d|%5d|%-5d|%05d|%u|%zu|%zd|%ld|%lld|%llu|%x|%08X|%#o|"
	       "%.3f|%10.2e|%g|%c|%%|%.*s|%*s|%-4s|%.2s|%s",
	       -42, 7, 7, 7, 4000000000u, (size_t)123456789, (ssize_t)-5,
	       -1234567L, -9000000000LL, 18000000000ULL, 0xbeefu, 0xabcu, 8u,
	       3.14159, 12345.678, 0.0001, 'Z', 3, "abcdef", 4, "ab", "xy",
	       "hello", "plain");
}

static void
test_numbers_as_printf(void **state)
{
	char out[4096], want[1024];

	(void)state;
	eb_log_init(EB_LOG_INFO, 0);
	capture(out, sizeof(out), log_numbers);
	snprintf(want, sizeof(want),
	         " info n: %d|%5d|%-5d|%05d|%u|%zu|%zd|%ld|%lld|%llu|%x|%08X|"
	         "%#o|%.3f|%10.2e|%g|%c|%%|%.*s|%*s|%-4s|%.2s|%s\n",
	         -42, 7, 7, 7, 4000000000u, (size_t)123456789, (ssize_t)-5,
	         -1234567L, -9000000000LL, 18000000000ULL, 0xbeefu, 0xabcu, 8u,
	         3.14159, 12345.678, 0.0001, 'Z', 3, "abcdef", 4, "ab", "xy",
	         "hello", "plain");
	assert_non_null(strstr(out, want));
}

static void
log_errno(void)
{
	errno = ENOENT;
	eb_log_errno(EB_LOG_ERR, "e", "open %s", "/x y");
}

static void
test_errno_suffix(void **state)
{
	char out[1024];

	(void)state;
	eb_log_init(EB_LOG_INFO, 0);
	capture(out, sizeof(out), log_errno);
	assert_non_null(strstr(
	    out, " error e: open \"/x y\": No such file or directory\n"));
}

static void
test_add_text(void **state)
{
	struct eb_buf b;

	(void)state;
	eb_buf_init(&b, 1024);
	eb_log_add_text(&b, "/t/acme/a\nb", 11);
	eb_log_add_text(&b, "", 0);
	eb_log_add_text(&b, "\xe2\x82", 2); /* a cut sequence */
	assert_string_equal(eb_buf_str(&b), "/t/acme/a\\nb\"\"\\xe2\\x82");
	eb_buf_finish(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_one_line),
	    cmocka_unit_test(test_text_escapes),
	    cmocka_unit_test(test_json_valid),
	    cmocka_unit_test(test_numbers_as_printf),
	    cmocka_unit_test(test_errno_suffix),
	    cmocka_unit_test(test_add_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
