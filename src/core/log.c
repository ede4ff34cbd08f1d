/*
 * Logging to stderr, one line per event, in one write(2) each so that lines
 * from several threads never interleave.
 */
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/buf.h"

static int log_min = EB_LOG_INFO;
static int log_json = 1;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
eb_log_init(int level, int json)
{
	log_min = level;
	log_json = json;
}

int
eb_log_level(void)
{
	return log_min;
}

void
eb_log_line(const char *line, size_t len)
{
	char stackbuf[2048];
	const char *p;
	size_t left;
	ssize_t n;

	if (len < sizeof(stackbuf)) {
		memcpy(stackbuf, line, len);
		stackbuf[len++] = '\n';
		p = stackbuf;
		left = len;
	} else {
		p = line; /* rare: long line, newline written separately */
		left = len;
	}
	while (left > 0) {
		n = write(STDERR_FILENO, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		left -= (size_t)n;
	}
	if (p != stackbuf + len && p == line + len)
		(void)!write(STDERR_FILENO, "\n", 1);
}

static void vlog(int level, const char *fn, const char *suffix, const char *fmt,
                 va_list ap) __attribute__((format(printf, 4, 0)));

static void
vlog(int level, const char *fn, const char *suffix, const char *fmt, va_list ap)
{
	char ts[80], msg[1024];
	struct timespec now;
	struct tm tm;
	struct eb_buf b;
	int saved = errno;

	if (level < log_min)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
	eb_buf_init(&b, 8192);
	if (log_json) {
		eb_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"fn\":", ts,
		              level_names[level]);
		eb_buf_add_json_str(&b, fn ? fn : "");
		eb_buf_addstr(&b, ",\"msg\":");
		if (suffix != NULL) {
			char full[1400];
			snprintf(full, sizeof(full), "%s: %s", msg, suffix);
			eb_buf_add_json_str(&b, full);
		} else
			eb_buf_add_json_str(&b, msg);
		eb_buf_addc(&b, '}');
	} else {
		eb_buf_printf(&b, "%s %s %s: %s%s%s", ts, level_names[level],
		              fn ? fn : "-", msg, suffix ? ": " : "",
		              suffix ? suffix : "");
	}
	if (b.data != NULL)
		eb_log_line(b.data, b.len);
	eb_buf_finish(&b);
	errno = saved;
}

void
eb_log(int level, const char *fn, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fn, NULL, fmt, ap);
	va_end(ap);
}

void
eb_log_errno(int level, const char *fn, const char *fmt, ...)
{
	char ebuf[128];
	va_list ap;
	int saved = errno;

	strerror_r(saved, ebuf, sizeof(ebuf));
	va_start(ap, fmt);
	vlog(level, fn, ebuf, fmt, ap);
	va_end(ap);
}

void
eb_log_fp(const void *secret, size_t len, char out[13])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int i;

	if (EVP_Digest(secret, len, md, &mdlen, EVP_sha256(), NULL) != 1) {
		memcpy(out, "????????????", 13);
		return;
	}
	for (i = 0; i < 6; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[12] = '\0';
}
