/*
 * Strict, allocation-light base64url. The decoder is a table lookup that
 * refuses anything outside the URL-safe alphabet and non-canonical final
 * characters; it never reads past len and never writes past the size
 * eb_b64_url_decoded_len() announced.
 */
#include "jose/b64.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"

static const char enc_tab[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 0..63 for alphabet characters, -1 for everything else. */
static int
dec_char(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

size_t
eb_b64_url_encoded_len(size_t n)
{
	if (n > (SIZE_MAX - 2) / 4 * 3 - 3)
		return 0;
	return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t
eb_b64_url_encode_to(const void *p, size_t n, char *out)
{
	const uint8_t *in = p;
	size_t i, o = 0;
	uint32_t v;

	for (i = 0; i + 3 <= n; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];
		out[o++] = enc_tab[v >> 18 & 63];
		out[o++] = enc_tab[v >> 12 & 63];
		out[o++] = enc_tab[v >> 6 & 63];
		out[o++] = enc_tab[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)in[i] << 16;
		out[o++] = enc_tab[v >> 18 & 63];
		out[o++] = enc_tab[v >> 12 & 63];
	} else if (n - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = enc_tab[v >> 18 & 63];
		out[o++] = enc_tab[v >> 12 & 63];
		out[o++] = enc_tab[v >> 6 & 63];
	}
	out[o] = '\0';
	return o;
}

char *
eb_b64_url_encode(const void *p, size_t n)
{
	size_t len = eb_b64_url_encoded_len(n);
	char *out;

	if (len == 0 && n != 0)
		return NULL;
	if ((out = eb_malloc(len + 1)) == NULL)
		return NULL;
	eb_b64_url_encode_to(p, n, out);
	return out;
}

int
eb_b64_url_encode_buf(struct eb_buf *b, const void *p, size_t n)
{
	char *s = eb_b64_url_encode(p, n);
	int rc;

	if (s == NULL)
		return -1;
	rc = eb_buf_addstr(b, s);
	eb_free(s);
	return rc;
}

long
eb_b64_url_decoded_len(size_t len)
{
	if (len % 4 == 1 || len / 4 > (size_t)(LONG_MAX / 3) - 1)
		return -1;
	return (long)(len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1));
}

long
eb_b64_url_decode_to(const char *s, size_t len, uint8_t *out)
{
	const unsigned char *in = (const unsigned char *)s;
	size_t i, o = 0, rest;
	int a, b, c, d;

	if (eb_b64_url_decoded_len(len) < 0)
		return -1;
	for (i = 0; i + 4 <= len; i += 4) {
		a = dec_char(in[i]);
		b = dec_char(in[i + 1]);
		c = dec_char(in[i + 2]);
		d = dec_char(in[i + 3]);
		if ((a | b | c | d) < 0)
			return -1;
		out[o++] = (uint8_t)(a << 2 | b >> 4);
		out[o++] = (uint8_t)((b & 15) << 4 | c >> 2);
		out[o++] = (uint8_t)((c & 3) << 6 | d);
	}
	rest = len - i;
	if (rest == 2) {
		a = dec_char(in[i]);
		b = dec_char(in[i + 1]);
		if ((a | b) < 0 || (b & 15) != 0)
			return -1;
		out[o++] = (uint8_t)(a << 2 | b >> 4);
	} else if (rest == 3) {
		a = dec_char(in[i]);
		b = dec_char(in[i + 1]);
		c = dec_char(in[i + 2]);
		if ((a | b | c) < 0 || (c & 3) != 0)
			return -1;
		out[o++] = (uint8_t)(a << 2 | b >> 4);
		out[o++] = (uint8_t)((b & 15) << 4 | c >> 2);
	}
	return (long)o;
}

int
eb_b64_url_decode(const char *s, size_t len, uint8_t **out, size_t *outlen)
{
	long n = eb_b64_url_decoded_len(len), got;
	uint8_t *p;

	*out = NULL;
	if (n < 0 || (p = eb_malloc((size_t)n + 1)) == NULL)
		return -1;
	if ((got = eb_b64_url_decode_to(s, len, p)) < 0) {
		eb_free_secret(p, (size_t)n + 1);
		return -1;
	}
	p[got] = '\0';
	*out = p;
	if (outlen != NULL)
		*outlen = (size_t)got;
	return 0;
}
