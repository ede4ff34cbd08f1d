/*
 * Logging to stderr, one line per event, in one write(2) each so that lines
 * from several threads never interleave. It owns the one place where what
 * is logged is made safe to log: a message's arguments are escaped here
 * (text format) or the whole message is (JSON), never at the call sites,
 * so that no value a client or an upstream chose can add a line, fake a
 * field or write bytes a terminal would obey.
 */
#include "core/log.h"

#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/buf.h"
#include "core/rand.h"
#include "core/str.h"

static int log_min = EB_LOG_INFO;
static int log_json = 1;
static int log_personal = 1;
static int log_journal;
static _Thread_local struct eb_log_ctx t_ctx;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
eb_log_init(int level, int json)
{
	log_min = level;
	log_json = json;
	(void)eb_log_journal_detect();
}

int
eb_log_level(void)
{
	return log_min;
}

void
eb_log_set_personal(int on)
{
	log_personal = on;
}

int
eb_log_journal_detect(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	log_journal = 0;
	if (v == NULL || sscanf(v, "%llu:%llu%c", &dev, &ino, &tail) != 2 ||
	    fstat(STDERR_FILENO, &st) == -1)
		return 0;
	log_journal = (unsigned long long)st.st_dev == dev &&
	              (unsigned long long)st.st_ino == ino;
	return log_journal;
}

const char *
eb_log_prio(int level)
{
	static const char *const prio[] = {"<7>", "<6>", "<4>", "<3>"};

	if (!log_journal)
		return "";
	return prio[level < EB_LOG_DEBUG || level > EB_LOG_ERR ? EB_LOG_ERR
	                                                       : level];
}

void
eb_log_ctx_get(struct eb_log_ctx *out)
{
	*out = t_ctx;
}

void
eb_log_ctx_set(const struct eb_log_ctx *ctx)
{
	if (ctx == NULL)
		memset(&t_ctx, 0, sizeof(t_ctx));
	else
		t_ctx = *ctx;
}

void
eb_log_ctx_tenant(const char *tenant)
{
	snprintf(t_ctx.tenant, sizeof(t_ctx.tenant), "%s",
	         tenant != NULL ? tenant : "");
}

/* n lowercase hex digits (and, with nonzero, not all '0'); 1 or 0 */
static int
lower_hex(const char *s, size_t n, int nonzero)
{
	size_t i;
	int seen = 0;

	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
		seen |= s[i] != '0';
	}
	return seen || !nonzero;
}

int
eb_log_trace_parse(const char *v, char trace_id[33], unsigned char *flags)
{
	size_t len;
	int v00;

	if (v == NULL || (len = strnlen(v, 513)) < 55 || len > 512)
		return -1;
	/* version: two hex digits, "ff" invalid; version 00 has exactly
	 * 55 bytes, a later one may append "-..." after the four fields */
	if (!lower_hex(v, 2, 0) || strncmp(v, "ff", 2) == 0)
		return -1;
	v00 = strncmp(v, "00", 2) == 0;
	if ((v00 && len != 55) || (!v00 && len > 55 && v[55] != '-'))
		return -1;
	if (v[2] != '-' || v[35] != '-' || v[52] != '-' ||
	    !lower_hex(v + 3, 32, 1) || !lower_hex(v + 36, 16, 1) ||
	    !lower_hex(v + 53, 2, 0))
		return -1;
	memcpy(trace_id, v + 3, 32);
	trace_id[32] = '\0';
	*flags =
	    (unsigned char)(((v[53] <= '9' ? v[53] - '0' : v[53] - 'a' + 10)
	                     << 4) |
	                    (v[54] <= '9' ? v[54] - '0' : v[54] - 'a' + 10));
	return 0;
}

static void
rand_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[16];
	size_t i;

	do {
		if (eb_rand_bytes(r, nbytes) == -1)
			memset(r, 0x5a, nbytes); /* never all zero */
		for (i = 0; i < nbytes && r[i] == 0; i++)
			;
	} while (i == nbytes);
	for (i = 0; i < nbytes; i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 0xf];
	}
	out[2 * nbytes] = '\0';
}

void
eb_log_trace_start(struct eb_log_ctx *ctx, const char *traceparent)
{
	if (eb_log_trace_parse(traceparent, ctx->trace_id, &ctx->trace_flags) ==
	    -1) {
		rand_hex(ctx->trace_id, 16);
		ctx->trace_flags = 0;
	}
	ctx->trace_flags &= 0x01; /* the one flag version 00 defines */
	rand_hex(ctx->span_id, 8);
}

int
eb_log_traceparent(char *out, size_t len)
{
	int n;

	if (t_ctx.trace_id[0] == '\0' || t_ctx.span_id[0] == '\0')
		return -1;
	n = snprintf(out, len, "traceparent: 00-%s-%s-%02x", t_ctx.trace_id,
	             t_ctx.span_id, t_ctx.trace_flags);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static unsigned char pd_key[32];
static pthread_once_t pd_once = PTHREAD_ONCE_INIT;

static void
pd_key_init(void)
{
	if (eb_rand_bytes(pd_key, sizeof(pd_key)) == -1)
		abort(); /* no randomness: nothing is safe to run */
}

const char *
eb_log_pd(const char *s, char out[EB_LOG_PD_LEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int i;

	if (s == NULL)
		return "-";
	if (log_personal)
		return s;
	pthread_once(&pd_once, pd_key_init);
	if (HMAC(EVP_sha256(), pd_key, sizeof(pd_key), (const unsigned char *)s,
	         strlen(s), md, &mdlen) == NULL ||
	    mdlen < 6)
		return "-";
	out[0] = '~';
	for (i = 0; i < 6; i++) {
		out[1 + 2 * i] = hex[md[i] >> 4];
		out[2 + 2 * i] = hex[md[i] & 0xf];
	}
	out[13] = '\0';
	return out;
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

/* One field: "key":"value" (JSON) or key=value (text); none when empty. */
static void
add_field(struct eb_buf *b, const char *key, const char *v)
{
	if (v == NULL || *v == '\0')
		return;
	if (log_json) {
		eb_buf_printf(b, ",\"%s\":", key);
		eb_buf_add_json_str(b, v);
	} else {
		eb_buf_printf(b, " %s=", key);
		eb_log_add_text(b, v, strlen(v));
	}
}

static void
add_fields(struct eb_buf *b, const struct eb_log_ev *ev)
{
	const char *tenant = t_ctx.tenant;

	if (ev != NULL && ev->tenant != NULL && *ev->tenant != '\0')
		tenant = ev->tenant;
	add_field(b, "rid", t_ctx.rid);
	add_field(b, "trace_id", t_ctx.trace_id);
	add_field(b, "tenant", tenant);
	if (ev == NULL)
		return;
	add_field(b, "event", ev->event);
	add_field(b, "reason", ev->reason);
	add_field(b, "grant", ev->grant);
}

static void vlog(int level, const char *fn, const struct eb_log_ev *ev,
                 const char *suffix, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static void
vlog(int level, const char *fn, const struct eb_log_ev *ev, const char *suffix,
     const char *fmt, va_list ap)
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
		eb_buf_printf(&b, "%s{\"ts\":\"%s\",\"level\":\"%s\",\"fn\":",
		              eb_log_prio(level), ts, level_names[level]);
		eb_buf_add_json_str(&b, fn ? fn : "");
		add_fields(&b, ev);
		eb_buf_addstr(&b, ",\"msg\":");
		eb_buf_add_json_str(&b, eb_buf_str(&msg));
		eb_buf_addc(&b, '}');
	} else {
		eb_buf_printf(&b, "%s%s %s %s: %s", eb_log_prio(level), ts,
		              level_names[level], fn ? fn : "-",
		              eb_buf_str(&msg));
		add_fields(&b, ev);
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
	vlog(level, fn, NULL, NULL, fmt, ap);
	va_end(ap);
}

void
eb_log_event(int level, const char *fn, const struct eb_log_ev *ev,
             const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fn, ev, NULL, fmt, ap);
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
	vlog(level, fn, NULL, ebuf, fmt, ap);
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
