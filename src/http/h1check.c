/*
 * Request framing checks (RFC 9112), the server adapter's gate in front of
 * every handler. libmicrohttpd 0.9.75 is lenient where a proxy must not
 * be: it keeps "Name :" with the blank in the name, appends an obs-fold
 * line to the previous name, takes the first of two Content-Lengths,
 * lets Transfer-Encoding win over Content-Length and keeps the connection
 * alive, reads an unknown transfer coding until the peer closes, and takes
 * a request without Host or with two. Whatever a lenient server behind the
 * bridge could read differently is refused here, before any byte of the
 * body is read, and the connection is closed.
 *
 * The request-target is checked raw, before the library decodes it: an
 * encoded "/" or "\" would become a path separator once decoded, an
 * encoded NUL cuts the decoded path short, and an overlong UTF-8 sequence
 * can spell "." for a server that decodes it leniently. No route of the
 * bridge has a use for any of them.
 */
#include "http/h1check.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "core/str.h"

/* RFC 9110 5.6.2 tchar, one bit a byte: every header name of every
 * request is checked against it. */
static const uint32_t tchar_bits[8] = {
    0x00000000, /* 0x00-0x1f: controls */
    0x03ff6cfa, /* 0x20-0x3f: ! # $ % & ' * + - . 0-9 */
    0xc7fffffe, /* 0x40-0x5f: A-Z ^ _ */
    0x57ffffff, /* 0x60-0x7f: ` a-z | ~ */
    0,          0, 0, 0,
};

static int
tchar(unsigned char c)
{
	return (tchar_bits[c >> 5] >> (c & 31)) & 1;
}

int
eb_h1check_token(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!tchar((unsigned char)s[i]))
			return 0;
	return 1;
}

/* RFC 9110 5.5: field-value bytes are VCHAR, obs-text, SP and HTAB. */
static int
value_ok(const char *v)
{
	const unsigned char *p;

	for (p = (const unsigned char *)v; *p != '\0'; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return 0;
	return 1;
}

/* A UTF-8 decoder fed one byte at a time (the decoded path). */
struct u8 {
	unsigned need; /* continuation bytes still to come */
	uint32_t cp, min;
};

/* 0 when byte c may come next; -1 when the sequence is malformed. */
static int
u8_feed(struct u8 *u, unsigned char c)
{
	if (u->need > 0) {
		if ((c & 0xc0) != 0x80)
			return -1;
		u->cp = (u->cp << 6) | (c & 0x3f);
		if (--u->need == 0 &&
		    (u->cp < u->min || (u->cp >= 0xd800 && u->cp <= 0xdfff) ||
		     u->cp > 0x10ffff))
			return -1;
		return 0;
	}
	if (c < 0x80)
		return 0;
	if (c >= 0xc2 && c <= 0xdf) {
		u->need = 1, u->cp = c & 0x1f, u->min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		u->need = 2, u->cp = c & 0x0f, u->min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		u->need = 3, u->cp = c & 0x07, u->min = 0x10000;
	} else
		return -1; /* a continuation byte, C0/C1 (overlong), F5.. */
	return 0;
}

/*
 * The raw request-target: visible ASCII only, every "%" followed by two
 * hex digits, and in the path no encoded control byte, "/" or "\" and
 * nothing that decodes to malformed UTF-8.
 */
static const char *
target_bad(const char *t)
{
	struct u8 u = {0, 0, 0};
	const char *p;
	int in_path = 1, hi, lo;

	if (t == NULL || *t == '\0')
		return "empty request-target";
	for (p = t; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c >= 0x7f)
			return "request-target byte outside visible ASCII";
		if (c == '#')
			return "fragment in the request-target";
		if (c == '?' && in_path) {
			if (u.need > 0)
				return "malformed UTF-8 in the path";
			in_path = 0;
		}
		if (c == '%') {
			if ((hi = eb_str_hexval(p[1])) < 0 ||
			    (lo = eb_str_hexval(p[2])) < 0)
				return "malformed percent-encoding";
			c = (unsigned char)(hi << 4 | lo);
			p += 2;
			if (in_path && (c < 0x20 || c == 0x7f))
				return "encoded control byte in the path";
			if (in_path && (c == '/' || c == '\\'))
				return "encoded slash or backslash in the path";
		} else if (in_path && c == '\\')
			return "backslash in the path";
		if (in_path && u8_feed(&u, c) == -1)
			return "malformed UTF-8 in the path";
	}
	if (in_path && u.need > 0)
		return "malformed UTF-8 in the path";
	return NULL;
}

int
eb_h1check_utf8(const char *s, size_t n)
{
	struct u8 u = {0, 0, 0};
	size_t i;

	for (i = 0; i < n; i++)
		if (u8_feed(&u, (unsigned char)s[i]) == -1)
			return 0;
	return u.need == 0;
}

int
eb_h1check_request(const char *method, const char *version,
                   const char *raw_target, const struct eb_h1_field *f,
                   size_t n, const char **why)
{
	unsigned nhost = 0, ncl = 0, nte = 0, nauth = 0;
	const char *te = NULL, *cl = NULL, *p;
	int http10;
	size_t i, len;

	*why = NULL;
	if (version == NULL || (strcmp(version, "HTTP/1.1") != 0 &&
	                        strcmp(version, "HTTP/1.0") != 0)) {
		*why = "HTTP version not supported";
		return 505;
	}
	http10 = strcmp(version, "HTTP/1.0") == 0;
	if (method == NULL || !eb_h1check_token(method, strlen(method))) {
		*why = "method is not a token";
		return 400;
	}
	if ((*why = target_bad(raw_target)) != NULL)
		return 400;
	for (i = 0; i < n; i++) {
		/* a blank before the colon or a folded line shows here:
		 * libmicrohttpd keeps both in the name */
		if (!eb_h1check_token(f[i].name, strlen(f[i].name))) {
			*why = "field name is not a token (blank before "
			       "colon, folded line or invalid byte)";
			return 400;
		}
		if (!value_ok(f[i].value)) {
			*why = "control character in a field value";
			return 400;
		}
		if (strcasecmp(f[i].name, "Host") == 0)
			nhost++;
		else if (strcasecmp(f[i].name, "Content-Length") == 0) {
			ncl++;
			cl = f[i].value;
		} else if (strcasecmp(f[i].name, "Transfer-Encoding") == 0) {
			nte++;
			te = f[i].value;
		} else if (strcasecmp(f[i].name, "Authorization") == 0)
			nauth++;
	}
	if (nhost > 1 || (nhost == 0 && !http10)) {
		*why = nhost ? "more than one Host" : "no Host in HTTP/1.1";
		return 400;
	}
	if (nauth > 1) {
		*why = "more than one Authorization";
		return 400;
	}
	if (ncl > 1) {
		*why = "more than one Content-Length";
		return 400;
	}
	if (cl != NULL) {
		for (p = cl; *p >= '0' && *p <= '9'; p++)
			;
		if (p == cl || *p != '\0') {
			*why = "Content-Length is not a number";
			return 400;
		}
	}
	if (nte > 0) {
		if (ncl > 0) {
			*why = "Content-Length together with Transfer-Encoding";
			return 400;
		}
		if (nte > 1 || http10) {
			*why = nte > 1 ? "more than one Transfer-Encoding"
			               : "Transfer-Encoding in HTTP/1.0";
			return 400;
		}
		/* "chunked" alone, blanks around it allowed (RFC 9110 5.6.3) */
		while (*te == ' ' || *te == '\t')
			te++;
		len = strlen(te);
		while (len > 0 && (te[len - 1] == ' ' || te[len - 1] == '\t'))
			len--;
		if (len != 7 || strncasecmp(te, "chunked", 7) != 0) {
			*why = "transfer coding other than chunked";
			return 501;
		}
	}
	return 0;
}

int
eb_h1check_layout(const struct eb_h1_field *f, size_t n, const char **why)
{
	uintptr_t name, value, end;
	size_t i, nl, vl, k;

	*why = NULL;
	for (i = 0; i < n; i++) {
		nl = strlen(f[i].name);
		vl = strlen(f[i].value);
		name = (uintptr_t)f[i].name;
		value = (uintptr_t)f[i].value;
		/* the value follows the name's colon and the blanks skipped;
		 * a folded line moved the name elsewhere */
		if (value <= name + nl || value - (name + nl) > 4096)
			goto bad;
		for (k = nl + 1; name + k < value; k++)
			if (f[i].name[k] != ' ' && f[i].name[k] != '\t')
				goto bad;
		/* the line ends right after the value with CR LF, both
		 * overwritten with NUL; then comes the next line, or the
		 * blank line that ends the head (its CR LF NULs too). A bare
		 * LF (RFC 9112 2.2 lets a server refuse it) leaves one NUL;
		 * a NUL in the value or a line the library dropped (an empty
		 * name) leaves bytes between the value and the next line */
		end = value + vl;
		if (f[i].value[vl + 1] != '\0')
			goto bad;
		if (i + 1 < n ? (uintptr_t)f[i + 1].name != end + 2
		              : f[i].value[vl + 2] != '\0' ||
		                    f[i].value[vl + 3] != '\0')
			goto bad;
	}
	return 0;
bad:
	*why = "header lines not as received (obs-fold, bare LF, NUL or a "
	       "dropped line)";
	return 400;
}
