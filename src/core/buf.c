/*
 * Bounded dynamic buffer. See buf.h.
 */
#include "core/buf.h"

#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/str.h"

#include <openssl/crypto.h>

void
eb_buf_init(struct eb_buf *b, size_t max)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->max = max;
	b->failed = 0;
}

void
eb_buf_finish(struct eb_buf *b)
{
	eb_free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = 0;
}

void
eb_buf_finish_secret(struct eb_buf *b)
{
	if (b->data != NULL)
		OPENSSL_cleanse(b->data, b->cap);
	eb_buf_finish(b);
}

void
eb_buf_reset(struct eb_buf *b)
{
	b->len = 0;
	b->failed = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

static int
grow(struct eb_buf *b, size_t n)
{
	size_t need, ncap;
	char *p;

	if (n > b->max || b->len > b->max - n)
		return -1;
	need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > ((size_t)-1) / 2 ? need : ncap * 2;
	if (b->max < (size_t)-1 && ncap > b->max + 1)
		ncap = b->max + 1; /* no wrap for a buffer without a limit */
	if ((p = eb_realloc(b->data, ncap)) == NULL)
		return -1;
	b->data = p;
	b->cap = ncap;
	return 0;
}

/* Room for n more bytes and the NUL; a failure poisons the buffer. */
static int
reserve(struct eb_buf *b, size_t n)
{
	if (b->failed)
		return -1;
	if (grow(b, n) == -1) {
		b->failed = 1;
		return -1;
	}
	return 0;
}

int
eb_buf_reserve(struct eb_buf *b, size_t n)
{
	/* a size hint: its failure leaves later appends free to try */
	return b->failed ? -1 : grow(b, n);
}

int
eb_buf_add(struct eb_buf *b, const void *p, size_t n)
{
	if (reserve(b, n) == -1)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
eb_buf_addstr(struct eb_buf *b, const char *s)
{
	return eb_buf_add(b, s, strlen(s));
}

int
eb_buf_addc(struct eb_buf *b, char c)
{
	return eb_buf_add(b, &c, 1);
}

int
eb_buf_vprintf(struct eb_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		b->failed = 1;
	if (n < 0 || reserve(b, (size_t)n) == -1)
		return -1;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
eb_buf_printf(struct eb_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = eb_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

int
eb_buf_add_json_str(struct eb_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p;
	size_t start = b->len, k;

	if (b->failed || eb_buf_addc(b, '"') == -1)
		return -1;
	for (p = (const unsigned char *)s; *p; p++) {
		char esc[7] = {'\\', 'u', '0', '0', 0, 0, 0};
		int rc;

		switch (*p) {
		case '"':
			rc = eb_buf_add(b, "\\\"", 2);
			break;
		case '\\':
			rc = eb_buf_add(b, "\\\\", 2);
			break;
		case '\n':
			rc = eb_buf_add(b, "\\n", 2);
			break;
		case '\r':
			rc = eb_buf_add(b, "\\r", 2);
			break;
		case '\t':
			rc = eb_buf_add(b, "\\t", 2);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				esc[4] = hex[*p >> 4];
				esc[5] = hex[*p & 0xf];
				rc = eb_buf_add(b, esc, 6);
			} else if (*p < 0x80)
				rc = eb_buf_addc(b, (char)*p);
			else if ((k = eb_str_utf8_seq(
			              p, strnlen((const char *)p, 4))) > 0) {
				rc = eb_buf_add(b, p, k);
				p += k - 1;
			} else /* JSON text is UTF-8: U+FFFD for a bad byte */
				rc = eb_buf_add(b, "\\ufffd", 6);
		}
		if (rc == -1)
			goto fail;
	}
	if (eb_buf_addc(b, '"') == 0)
		return 0;
fail:
	b->len = start;
	if (b->data != NULL)
		b->data[start] = '\0';
	return -1;
}

int
eb_buf_add_html(struct eb_buf *b, const char *s)
{
	size_t start = b->len;
	int rc = 0;

	if (b->failed)
		return -1;
	for (; *s && rc == 0; s++) {
		switch (*s) {
		case '&':
			rc = eb_buf_addstr(b, "&amp;");
			break;
		case '<':
			rc = eb_buf_addstr(b, "&lt;");
			break;
		case '>':
			rc = eb_buf_addstr(b, "&gt;");
			break;
		case '"':
			rc = eb_buf_addstr(b, "&quot;");
			break;
		case '\'':
			rc = eb_buf_addstr(b, "&#39;");
			break;
		default:
			rc = eb_buf_addc(b, *s);
		}
	}
	if (rc == -1) {
		b->len = start;
		if (b->data != NULL)
			b->data[start] = '\0';
	}
	return rc;
}

const char *
eb_buf_str(const struct eb_buf *b)
{
	return b->data != NULL ? b->data : "";
}

int
eb_buf_check(const struct eb_buf *b)
{
	return b->failed ? -1 : 0;
}

char *
eb_buf_detach(struct eb_buf *b, size_t *lenp)
{
	char *p = b->data;

	if (b->failed) {
		eb_buf_finish(b);
		if (lenp != NULL)
			*lenp = 0;
		return NULL;
	}
	if (p == NULL)
		p = eb_strdup("");
	if (lenp != NULL)
		*lenp = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
