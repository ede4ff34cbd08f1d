/*
 * String helpers. See str.h.
 */
#include "core/str.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "core/mem.h"

static int
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
to_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

char *
eb_str_lower(char *s)
{
	char *p;

	for (p = s; *p; p++)
		*p = (char)to_lower((unsigned char)*p);
	return s;
}

int
eb_str_ieq(const char *a, const char *b)
{
	/* header names on every request: equal bytes skip the folding */
	for (; *a && *b; a++, b++)
		if (*a != *b &&
		    to_lower((unsigned char)*a) != to_lower((unsigned char)*b))
			return 0;
	return *a == *b;
}

int
eb_str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int
eb_str_is_tenant_id(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || is_digit(s[n]) ||
		      s[n] == '-'))
			return 0;
	return n >= 1 && n <= 63;
}

int
eb_str_is_fqdn(const char *s)
{
	size_t len = strlen(s), label = 0, labels = 0, i;
	int all_digits = 1, last_label_digits = 1;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i <= len; i++) {
		int c = i < len ? (unsigned char)s[i] : '.';

		if (c == '.') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return 0;
			labels++;
			last_label_digits = all_digits;
			label = 0;
			all_digits = 1;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '-')
			return 0;
		if (label == 0 && c == '-')
			return 0;
		if (!is_digit(c))
			all_digits = 0;
		label++;
	}
	/* an all-numeric top label means an IP literal or nonsense */
	return labels >= 2 && !last_label_digits;
}

int
eb_str_split_identifier(const char *id, char **local, char **domain)
{
	const char *at = NULL, *p;
	char *l, *d;
	size_t dlen;

	*local = *domain = NULL;
	if (strlen(id) > 320 || !eb_str_is_utf8(id, strlen(id)))
		return -1;
	for (p = id; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return -1;
		if (*p == '@') {
			if (at != NULL)
				return -1;
			at = p;
		}
	}
	if (at == NULL || at == id || at[1] == '\0')
		return -1;
	if ((d = eb_strdup(at + 1)) == NULL)
		return -1;
	dlen = strlen(d);
	if (dlen > 0 && d[dlen - 1] == '.')
		d[dlen - 1] = '\0';
	if (!eb_str_is_fqdn(d)) {
		eb_free(d);
		return -1;
	}
	if ((l = eb_strndup(id, (size_t)(at - id))) == NULL) {
		eb_free(d);
		return -1;
	}
	*local = l;
	*domain = eb_str_lower(d);
	return 0;
}

size_t
eb_str_utf8_seq(const void *p, size_t n)
{
	const unsigned char *s = p;
	unsigned int cp;
	size_t len, i;

	if (n == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1fu;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07u;
	else
		return 0; /* a continuation byte, C0/C1 (overlong) or F5..FF */
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	/* overlong forms, UTF-16 surrogates, past U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

int
eb_str_is_utf8(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t k;

	while (n > 0) {
		if ((k = eb_str_utf8_seq(s, n)) == 0)
			return 0;
		s += k;
		n -= k;
	}
	return 1;
}

int
eb_str_ct_eq(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen != blen)
		return 0;
	return CRYPTO_memcmp(a, b, alen) == 0;
}

void
eb_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int
eb_str_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long long
eb_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t
eb_str_room(const char *s)
{
	return s != NULL ? strlen(s) + 1 : 0;
}

char *
eb_str_put(char **p, const char *s)
{
	char *d = *p;
	size_t n;

	if (s == NULL)
		return NULL;
	n = strlen(s) + 1;
	memcpy(d, s, n);
	*p += n;
	return d;
}
