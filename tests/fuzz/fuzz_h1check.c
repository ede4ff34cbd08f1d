/*
 * Fuzz target for the request framing gate (src/http/h1check.c) and the
 * proxy's path rule (eb_proxy_rest_ok), both fed by any client. The input
 * is a request head: "METHOD TARGET VERSION" then header lines, CR LF or
 * LF. The head is checked as fields (eb_h1check_request) and, laid out in
 * a buffer the way libmicrohttpd 0.9.75 leaves it, by eb_h1check_layout.
 * The target also goes through eb_proxy_upstream_url_raw.
 * Invariants: a status is one of the four, with a reason; an accepted head
 * has token names, values without control bytes and a target without an
 * encoded "/", "\" or NUL in its path; an accepted {rest} has no segment
 * made of dots only.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "handle/proxy_int.h"
#include "http/h1check.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr,                                        \
			        "fuzz_h1check: %s failed at line %d\n", #cond, \
			        __LINE__);                                     \
			abort();                                               \
		}                                                              \
	} while (0)

#define MAXF 64

static void
check_rest(const char *rest)
{
	const char *seg;
	size_t len, i;

	if (!eb_proxy_rest_ok(rest))
		return;
	for (seg = rest; *seg != '\0'; seg += len + (seg[len] == '/')) {
		len = strcspn(seg, "/");
		for (i = 0; i < len && seg[i] == '.'; i++)
			;
		CHECK(len == 0 || i < len);
	}
}

/* The upstream URL from a raw target: its path holds only escapes of
 * reserved or other bytes, upper-cased, and path characters. */
static void
check_url(const char *target)
{
	char *u = eb_proxy_upstream_url_raw("http://m/", target), *p;

	if (u == NULL)
		return;
	CHECK(strncmp(u, "http://m/", 9) == 0);
	for (p = u + 9; *p != '\0' && *p != '?'; p++) {
		CHECK((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f);
		CHECK(*p != '\\' && *p != '#' && *p != '"');
		if (*p == '%') {
			CHECK(strchr("0123456789ABCDEF", p[1]) != NULL &&
			      p[1] != '\0');
			CHECK(strchr("0123456789ABCDEF", p[2]) != NULL &&
			      p[2] != '\0');
		}
	}
	eb_free(u);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eb_h1_field f[MAXF];
	char *buf, *line, *e, *c, *sp1, *sp2;
	const char *why, *method, *target, *version;
	size_t n = 0, i, pos;
	int st;

	if (size > 8192)
		return 0;
	/* 4 NUL bytes after the head: the layout check reads up to 3 bytes
	 * past the last value, as it may in libmicrohttpd's buffer */
	if ((buf = calloc(1, size + 8)) == NULL)
		return 0;
	memcpy(buf, data, size);
	check_rest(buf); /* the whole input as a decoded {rest} */
	/* the request line */
	if ((e = memchr(buf, '\n', size)) == NULL)
		goto out;
	*e = '\0';
	if (e > buf && e[-1] == '\r')
		e[-1] = '\0';
	pos = (size_t)(e - buf) + 1;
	method = buf;
	if ((sp1 = strchr(buf, ' ')) == NULL ||
	    (sp2 = strchr(sp1 + 1, ' ')) == NULL)
		goto out;
	*sp1 = *sp2 = '\0';
	target = sp1 + 1;
	version = sp2 + 1;
	/* header lines, as the library leaves them */
	while (pos < size && n < MAXF && buf[pos] != '\r' && buf[pos] != '\n') {
		line = buf + pos;
		if ((e = memchr(line, '\n', size - pos)) == NULL)
			break;
		if ((c = memchr(line, ':', (size_t)(e - line))) == NULL)
			break;
		*c++ = '\0';
		while (*c == ' ' || *c == '\t')
			c++;
		if (e > line && e[-1] == '\r')
			e[-1] = '\0';
		*e = '\0';
		pos = (size_t)(e - buf) + 1;
		f[n].name = line;
		f[n].value = c;
		n++;
	}
	for (i = pos; i < size; i++)
		if (buf[i] == '\r' || buf[i] == '\n')
			buf[i] = '\0';
	st = eb_h1check_request(method, version, target, f, n, &why);
	CHECK(st == 0 || st == 400 || st == 501 || st == 505);
	CHECK((st == 0) == (why == NULL));
	if (st == 0) {
		const char *q = strchr(target, '?');
		size_t plen = q ? (size_t)(q - target) : strlen(target);

		for (i = 0; i < n; i++) {
			CHECK(eb_h1check_token(f[i].name, strlen(f[i].name)));
			for (c = (char *)f[i].value; *c != '\0'; c++)
				CHECK((unsigned char)*c >= 0x20 || *c == '\t');
		}
		for (i = 0; i + 2 < plen; i++)
			if (target[i] == '%')
				CHECK(strncasecmp(target + i, "%2f", 3) != 0 &&
				      strncasecmp(target + i, "%5c", 3) != 0 &&
				      strncmp(target + i, "%00", 3) != 0);
	}
	check_url(target);
	st = eb_h1check_layout(f, n, &why);
	CHECK((st == 0 && why == NULL) || (st == 400 && why != NULL));
out:
	free(buf);
	return 0;
}
