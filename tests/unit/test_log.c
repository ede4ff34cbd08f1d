/*
 * Logging: whatever a client or an upstream put in a logged value, the
 * text format writes one line with every argument escaped (no new line,
 * no faked key=value, no terminal control, no invalid UTF-8), the JSON
 * format one valid JSON object, and the message formatter formats numbers
 * exactly as printf does.
 */
#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
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
#include "core/workq.h"

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

static void
set_ctx(void)
{
	struct eb_log_ctx c;

	memset(&c, 0, sizeof(c));
	strcpy(c.rid, "00c0ffee00000001");
	strcpy(c.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	strcpy(c.span_id, "00f067aa0ba902b7");
	strcpy(c.tenant, "acme");
	eb_log_ctx_set(&c);
}

static void
log_event_line(void)
{
	set_ctx();
	log_ev(EB_LOG_WARN, EB_EV("signin.failed", "idp error", "g-1"),
	       "sign-in failed: %s", "boom");
	eb_log_ctx_set(NULL);
}

static void
test_fields_json(void **state)
{
	char out[4096];
	json_t *j;
	json_error_t err;

	(void)state;
	eb_log_init(EB_LOG_INFO, 1);
	capture(out, sizeof(out), log_event_line);
	assert_int_equal(count_lines(out), 1);
	j = json_loads(out, 0, &err);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "rid")),
	                    "00c0ffee00000001");
	assert_string_equal(json_string_value(json_object_get(j, "trace_id")),
	                    "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_string_equal(json_string_value(json_object_get(j, "tenant")),
	                    "acme");
	assert_string_equal(json_string_value(json_object_get(j, "event")),
	                    "signin.failed");
	assert_string_equal(json_string_value(json_object_get(j, "reason")),
	                    "idp error");
	assert_string_equal(json_string_value(json_object_get(j, "grant")),
	                    "g-1");
	assert_string_equal(json_string_value(json_object_get(j, "msg")),
	                    "sign-in failed: boom");
	assert_string_equal(json_string_value(json_object_get(j, "level")),
	                    "warn");
	json_decref(j);
}

static void
test_fields_text(void **state)
{
	char out[4096];

	(void)state;
	eb_log_init(EB_LOG_INFO, 0);
	capture(out, sizeof(out), log_event_line);
	assert_int_equal(count_lines(out), 1);
	/* after the message; a value with a blank is quoted, so no value
	 * passes for another field */
	assert_non_null(strstr(out, " warn log_event_line: sign-in failed: "
	                            "boom rid=00c0ffee00000001 trace_id="
	                            "4bf92f3577b34da6a3ce929d0e0e4736 "
	                            "tenant=acme event=signin.failed "
	                            "reason=\"idp error\" grant=g-1\n"));
}

static void
log_no_ctx(void)
{
	eb_log_ctx_set(NULL);
	log_info("plain");
}

static void
test_no_ctx_no_fields(void **state)
{
	char out[1024];

	(void)state;
	eb_log_init(EB_LOG_INFO, 1);
	capture(out, sizeof(out), log_no_ctx);
	assert_null(strstr(out, "\"rid\""));
	assert_null(strstr(out, "\"trace_id\""));
	assert_non_null(strstr(out, "\"msg\":\"plain\"}"));
}

static void
test_personal_data(void **state)
{
	char a[EB_LOG_PD_LEN], b[EB_LOG_PD_LEN], c[EB_LOG_PD_LEN];
	const char *pa, *pb, *pc;
	size_t i;

	(void)state;
	eb_log_set_personal(1);
	assert_string_equal(eb_log_pd("alice@example.org", a),
	                    "alice@example.org");
	assert_string_equal(eb_log_pd(NULL, a), "-");
	eb_log_set_personal(0);
	pa = eb_log_pd("alice@example.org", a);
	pb = eb_log_pd("alice@example.org", b);
	pc = eb_log_pd("bob@example.org", c);
	assert_int_equal(strlen(pa), 13);
	assert_int_equal(pa[0], '~');
	for (i = 1; i < 13; i++)
		assert_non_null(strchr("0123456789abcdef", pa[i]));
	assert_string_equal(pa, pb); /* the same person: the same value */
	assert_string_not_equal(pa, pc);
	assert_null(strstr(pa, "alice"));
	assert_string_equal(eb_log_pd(NULL, a), "-");
	eb_log_set_personal(1);
}

static void
test_trace_parse(void **state)
{
	static const char *const bad[] = {
	    "",
	    "00",
	    /* upper case */
	    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
	    /* all-zero trace id, all-zero parent */
	    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
	    /* version ff, a non-hex version */
	    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	    "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	    /* version 00 with more after it */
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nX: y",
	    /* a later version: more must follow a '-' */
	    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
	    /* wrong separators, lengths, flags */
	    "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	    "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba90\n2b7-01",
	    " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	};
	char tid[33], big[2000];
	unsigned char fl = 0;
	size_t i;

	(void)state;
	assert_int_equal(eb_log_trace_parse(NULL, tid, &fl), -1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(eb_log_trace_parse(bad[i], tid, &fl), -1);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
	       56);
	assert_int_equal(eb_log_trace_parse(big, tid, &fl), -1);
	assert_int_equal(
	    eb_log_trace_parse(
	        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tid,
	        &fl),
	    0);
	assert_string_equal(tid, "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_int_equal(fl, 1);
	assert_int_equal(
	    eb_log_trace_parse(
	        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what",
	        tid, &fl),
	    0);
	assert_int_equal(fl, 0);
}

static void
test_trace_start(void **state)
{
	struct eb_log_ctx a, b;
	char line[96], want[96];

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	eb_log_trace_start(&a, "00-4bf92f3577b34da6a3ce929d0e0e4736-"
	                       "00f067aa0ba902b7-01");
	assert_string_equal(a.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_int_equal(strlen(a.span_id), 16);
	assert_string_not_equal(a.span_id, "00f067aa0ba902b7");
	/* a hostile value starts a new trace, never echoed */
	eb_log_trace_start(&b, "00-4bf92f3577b34da6a3ce929d0e0e4736-"
	                       "00f067aa0ba902b7-01\r\nInjected: 1");
	assert_int_equal(strlen(b.trace_id), 32);
	assert_string_not_equal(b.trace_id, a.trace_id);
	assert_int_equal(b.trace_flags, 0);
	eb_log_ctx_set(NULL);
	assert_int_equal(eb_log_traceparent(line, sizeof(line)), -1);
	eb_log_ctx_set(&a);
	assert_int_equal(eb_log_traceparent(line, sizeof(line)), 0);
	snprintf(want, sizeof(want), "traceparent: 00-%s-%s-01", a.trace_id,
	         a.span_id);
	assert_string_equal(line, want);
	eb_log_ctx_set(NULL);
}

static void
log_warn_line(void)
{
	log_warnx("careful");
	log_debug("hidden");
	log_errx("bad");
}

/* JOURNAL_STREAM naming our stderr turns the priority prefix on. */
static void
journal_capture(char *out, size_t outlen, int match)
{
	char path[] = "/tmp/eb_test_journal_XXXXXX", env[64];
	struct stat st;
	int fd, saved;
	ssize_t n;

	fd = mkstemp(path);
	assert_true(fd != -1);
	unlink(path);
	assert_int_equal(fstat(fd, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino + (match ? 0 : 1));
	setenv("JOURNAL_STREAM", env, 1);
	saved = dup(STDERR_FILENO);
	assert_true(dup2(fd, STDERR_FILENO) != -1);
	eb_log_init(EB_LOG_INFO, 0);
	log_warn_line();
	dup2(saved, STDERR_FILENO);
	close(saved);
	unsetenv("JOURNAL_STREAM");
	eb_log_init(EB_LOG_INFO, 0);
	assert_true(lseek(fd, 0, SEEK_SET) == 0);
	n = read(fd, out, outlen - 1);
	assert_true(n >= 0);
	out[n] = '\0';
	close(fd);
}

static void
test_journal_prefix(void **state)
{
	char out[1024];

	(void)state;
	journal_capture(out, sizeof(out), 1);
	assert_int_equal(count_lines(out), 2);
	assert_true(strncmp(out, "<4>", 3) == 0);
	assert_non_null(strstr(out, "\n<3>"));
	assert_non_null(strstr(out, " warn log_warn_line: careful\n"));
	journal_capture(out, sizeof(out), 0); /* another file: no prefix */
	assert_int_equal(count_lines(out), 2);
	assert_null(strchr(out, '<'));
	assert_string_equal(eb_log_prio(EB_LOG_ERR), "");
}

struct seen {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int done;
	struct eb_log_ctx ctx;
};

static void
record_ctx(void *arg)
{
	struct seen *s = arg;

	pthread_mutex_lock(&s->lock);
	eb_log_ctx_get(&s->ctx);
	s->done = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->lock);
}

/* A job runs under the log context of the request that queued it. */
static void
test_workq_carries_ctx(void **state)
{
	struct eb_workq *q = eb_workq_create(1, 4);
	struct seen s;

	(void)state;
	assert_non_null(q);
	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cv, NULL);
	set_ctx();
	assert_int_equal(eb_workq_submit(q, record_ctx, &s), 0);
	eb_log_ctx_set(NULL);
	pthread_mutex_lock(&s.lock);
	while (!s.done)
		pthread_cond_wait(&s.cv, &s.lock);
	pthread_mutex_unlock(&s.lock);
	assert_string_equal(s.ctx.rid, "00c0ffee00000001");
	assert_string_equal(s.ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_string_equal(s.ctx.tenant, "acme");
	eb_workq_destroy(q);
	pthread_mutex_destroy(&s.lock);
	pthread_cond_destroy(&s.cv);
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
	    cmocka_unit_test(test_fields_json),
	    cmocka_unit_test(test_fields_text),
	    cmocka_unit_test(test_no_ctx_no_fields),
	    cmocka_unit_test(test_personal_data),
	    cmocka_unit_test(test_trace_parse),
	    cmocka_unit_test(test_trace_start),
	    cmocka_unit_test(test_journal_prefix),
	    cmocka_unit_test(test_workq_carries_ctx),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
