/*
 * Logging to stderr, one line per event, in one write(2) each so that lines
 * from several threads never interleave. It owns the one place where what
 * is logged is made safe to log: a message's arguments are escaped here
 * (text format) or the whole message is (JSON), never at the call sites,
 * so that no value a client or an upstream chose can add a line, fake a
 * field or write bytes a terminal would obey.
 */
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/buf.h"
#include "core/str.h"

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

/*
 * Text format: one logged value (a %s argument) as it is safe to read.
 * Control characters (C0, DEL, C1) become \n, \r, \t, \xNN or \u00NN, a
 * byte that is not well-formed UTF-8 \xNN, and a backslash or quote is
 * escaped, so that nothing a client sent can end the line or pass for our
 * own text; a value holding a blank, '=' or '"' is quoted, so that it
 * cannot pass for another key=value either.
 */
void
eb_log_add_text(struct eb_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	size_t i, k;
	int quote = n == 0;

	for (i = 0; i < n && !quote; i++)
		quote = s[i] == ' ' || s[i] == '=' || s[i] == '"';
	if (quote)
		eb_buf_addc(b, '"');
	while (p < end) {
		char esc[7] = {'\\', 'x', 0, 0, 0, 0, 0};

		if (*p == '\\' || *p == '"') {
			esc[1] = (char)*p;
			eb_buf_add(b, esc, 2);
		} else if (*p == '\n' || *p == '\r' || *p == '\t') {
			esc[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
			eb_buf_add(b, esc, 2);
		} else if (*p >= 0x20 && *p < 0x7f) {
			eb_buf_addc(b, (char)*p);
		} else if (*p >= 0x80 &&
		           (k = eb_str_utf8_seq(p, (size_t)(end - p))) > 0 &&
		           !(k == 2 && p[0] == 0xc2 && p[1] < 0xa0)) {
			eb_buf_add(b, p, k);
			p += k;
			continue;
		} else if (*p == 0xc2 && p + 1 < end && p[1] >= 0x80 &&
		           p[1] < 0xa0) {
			/* a C1 control (terminals obey CSI and its kin) */
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[p[1] >> 4];
			esc[5] = hex[p[1] & 0xf];
			eb_buf_add(b, esc, 6);
			p += 2;
			continue;
		} else {
			esc[2] = hex[*p >> 4];
			esc[3] = hex[*p & 0xf];
			eb_buf_add(b, esc, 4);
		}
		p++;
	}
	if (quote)
		eb_buf_addc(b, '"');
}

/* Most bytes of one formatted message (before the line around it). */
#define LOG_MSG_MAX 4096

/*
 * Format fmt into b, the way vsnprintf would, except that in the text
 * format every %s argument goes through eb_log_add_text(): a message's
 * fixed words are ours, its arguments may come from anywhere (a query
 * parameter, an upstream's answer), so this one place escapes them all.
 * The JSON format escapes the whole message once (eb_buf_add_json_str).
 */
static void
format_msg(struct eb_buf *b, int text, const char *fmt, va_list ap)
{
	const char *p = fmt, *spec;
	char one[64], conv[32], lenmod[3];
	int width, prec, neg, nl;
	size_t speclen;

	while (*p != '\0') {
		const char *lit = p;

		while (*p != '\0' && *p != '%')
			p++;
		eb_buf_add(b, lit, (size_t)(p - lit));
		if (*p == '\0')
			break;
		spec = p++;
		if (*p == '%') {
			eb_buf_addc(b, '%');
			p++;
			continue;
		}
		/* flags, width, precision, length: the conversion is rebuilt
		 * with '*' resolved, then formatted alone */
		width = prec = -1;
		neg = 0;
		while (*p != '\0' && strchr("-+ #0", *p) != NULL)
			neg |= *p++ == '-';
		if (*p == '*') {
			width = va_arg(ap, int);
			p++;
		} else
			while (*p >= '0' && *p <= '9')
				width =
				    (width < 0 ? 0 : width * 10) + (*p++ - '0');
		if (*p == '.') {
			p++;
			prec = 0;
			if (*p == '*') {
				prec = va_arg(ap, int);
				p++;
			} else
				while (*p >= '0' && *p <= '9')
					prec = prec * 10 + (*p++ - '0');
		}
		nl = 0;
		while (*p != '\0' && strchr("hlzjtLq", *p) != NULL && nl < 2)
			lenmod[nl++] = *p++;
		lenmod[nl] = '\0';
		if (*p == '\0')
			break; /* a cut conversion: drop it */
		speclen = (size_t)(p - spec);
		if (speclen >= sizeof(conv) - 20)
			break;
		/* "%" flags, then width and precision as numbers */
		{
			size_t fl = strspn(spec + 1, "-+ #0");

			snprintf(conv, sizeof(conv), "%%%.*s", (int)fl,
			         spec + 1);
		}
		if (width >= 0)
			snprintf(conv + strlen(conv),
			         sizeof(conv) - strlen(conv), "%d",
			         width < 0 ? -width : width);
		if (prec >= 0)
			snprintf(conv + strlen(conv),
			         sizeof(conv) - strlen(conv), ".%d", prec);
		snprintf(conv + strlen(conv), sizeof(conv) - strlen(conv),
		         "%s%c", lenmod, *p);
		one[0] = '\0';
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		switch (*p) {
		case 's': {
			const char *sv = va_arg(ap, const char *);
			size_t n, pad = 0;

			if (sv == NULL)
				sv = "(null)";
			n = prec >= 0 ? strnlen(sv, (size_t)prec) : strlen(sv);
			if (width > 0 && (size_t)width > n)
				pad = (size_t)width - n;
			while (!neg && pad > 0 && pad--)
				eb_buf_addc(b, ' ');
			if (text)
				eb_log_add_text(b, sv, n);
			else
				eb_buf_add(b, sv, n);
			while (pad > 0 && pad--)
				eb_buf_addc(b, ' ');
			break;
		}
		case 'c':
			snprintf(one, sizeof(one), conv, va_arg(ap, int));
			if (text)
				eb_log_add_text(b, one, strlen(one));
			else
				eb_buf_addstr(b, one);
			one[0] = '\0';
			break;
		case 'd':
		case 'i':
			if (strcmp(lenmod, "ll") == 0 ||
			    strcmp(lenmod, "q") == 0)
				snprintf(one, sizeof(one), conv,
				         va_arg(ap, long long));
			else if (strcmp(lenmod, "l") == 0)
				snprintf(one, sizeof(one), conv,
				         va_arg(ap, long));
			else if (strcmp(lenmod, "z") == 0 ||
			         strcmp(lenmod, "t") == 0)
				snprintf(one, sizeof(one), conv,
				         va_arg(ap, ptrdiff_t));
			else if (strcmp(lenmod, "j") == 0)
				snprintf(one, sizeof(one), conv,
				         va_arg(ap, intmax_t));
			else
				snprintf(one, sizeof(one), conv,
				         va_arg(ap, int));
			break;
		case 'u':
		case 'o':
		case 'x':
		case 'X':
			if (strcmp(lenmod, "ll") == 0 ||
			    strcmp(lenmod, "q") == 0)
				snprintf(one, sizeof(one), conv,
				         va_arg(ap, unsigned long long));
			else if (strcmp(lenmod, "l") == 0)
				snprintf(one, sizeof(one), conv,
				         va_arg(ap, unsigned long));
			else if (strcmp(lenmod, "z") == 0 ||
			         strcmp(lenmod, "t") == 0)
				snprintf(one, sizeof(one), conv,
				         va_arg(ap, size_t));
			else if (strcmp(lenmod, "j") == 0)
				snprintf(one, sizeof(one), conv,
				         va_arg(ap, uintmax_t));
			else
				snprintf(one, sizeof(one), conv,
				         va_arg(ap, unsigned int));
			break;
		case 'e':
		case 'E':
		case 'f':
		case 'F':
		case 'g':
		case 'G':
		case 'a':
		case 'A':
			if (strcmp(lenmod, "L") == 0)
				snprintf(one, sizeof(one), conv,
				         va_arg(ap, long double));
			else
				snprintf(one, sizeof(one), conv,
				         va_arg(ap, double));
			break;
		case 'p':
			snprintf(one, sizeof(one), conv, va_arg(ap, void *));
			break;
		default:
			/* %n or unknown: nothing is consumed after it */
			eb_buf_addstr(b, "%?");
			return;
		}
#pragma GCC diagnostic pop
		eb_buf_addstr(b, one);
		p++;
	}
}

static void vlog(int level, const char *fn, const char *suffix, const char *fmt,
                 va_list ap) __attribute__((format(printf, 4, 0)));

static void
vlog(int level, const char *fn, const char *suffix, const char *fmt, va_list ap)
{
	char ts[80];
	struct timespec now;
	struct tm tm;
	struct eb_buf b, msg;
	int saved = errno;

	if (level < log_min)
		return;
	eb_buf_init(&msg, LOG_MSG_MAX);
	format_msg(&msg, !log_json, fmt, ap);
	if (suffix != NULL) {
		eb_buf_addstr(&msg, ": ");
		eb_buf_addstr(&msg, suffix);
	}
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
	eb_buf_init(&b, 8 * LOG_MSG_MAX);
	if (log_json) {
		eb_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"fn\":", ts,
		              level_names[level]);
		eb_buf_add_json_str(&b, fn ? fn : "");
		eb_buf_addstr(&b, ",\"msg\":");
		eb_buf_add_json_str(&b, eb_buf_str(&msg));
		eb_buf_addc(&b, '}');
	} else {
		eb_buf_printf(&b, "%s %s %s: %s", ts, level_names[level],
		              fn ? fn : "-", eb_buf_str(&msg));
	}
	if (b.data != NULL)
		eb_log_line(b.data, b.len);
	eb_buf_finish(&b);
	eb_buf_finish(&msg);
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
