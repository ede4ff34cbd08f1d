/*
 * A bounded dynamic buffer (after curl's dynbuf): it grows as bytes are
 * added and refuses to grow past the limit given at init, so that nothing
 * read from the network can make us allocate without bound. The content is
 * always NUL-terminated.
 *
 * Appends are sticky: the first one that fails (past the limit, out of
 * memory) poisons the buffer, every later append is a no-op returning -1,
 * and the finishing calls (eb_buf_detach, eb_buf_check) report the failure,
 * so a chain of appends needs a single check at its end. eb_buf_init,
 * eb_buf_reset and eb_buf_finish clear the poison.
 */
#ifndef EB_BUF_H
#define EB_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct eb_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max; /* most bytes of content ever allowed */
	int failed; /* an append failed: later ones are no-ops */
};

/* Start an empty buffer that may hold at most max bytes. */
void eb_buf_init(struct eb_buf *b, size_t max);
/* Free the content; the buffer may be reused after eb_buf_init. */
void eb_buf_finish(struct eb_buf *b);
/* Like eb_buf_finish, wiping the content first. */
void eb_buf_finish_secret(struct eb_buf *b);
/* Empty the buffer, keeping its memory; clears the poison. */
void eb_buf_reset(struct eb_buf *b);
/* Append n bytes; -1 (content unchanged, buffer poisoned) past the limit,
 * out of memory, or when an earlier append failed. */
int eb_buf_add(struct eb_buf *b, const void *p, size_t n);
/* Make room for n more bytes at once (fewer reallocations when the size
 * is known); 0, or -1 past max, out of memory or poisoned. A hint: its own
 * failure does not poison the buffer. */
int eb_buf_reserve(struct eb_buf *b, size_t n);
int eb_buf_addstr(struct eb_buf *b, const char *s);
int eb_buf_addc(struct eb_buf *b, char c);
int eb_buf_printf(struct eb_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int eb_buf_vprintf(struct eb_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Append s as a JSON string literal, quotes included: control characters
 * \u-escaped, a byte that is not part of well-formed UTF-8 as \ufffd (the
 * result is always valid JSON). */
int eb_buf_add_json_str(struct eb_buf *b, const char *s);
/* Append s HTML-escaped (&<>"'). */
int eb_buf_add_html(struct eb_buf *b, const char *s);
/* The content as a C string ("" when empty); owned by the buffer. */
const char *eb_buf_str(const struct eb_buf *b);
/* 0 when every append since init/reset succeeded, else -1. */
int eb_buf_check(const struct eb_buf *b) __attribute__((warn_unused_result));
/* Hand the content to the caller (eb_free it); the buffer is left empty.
 * NULL (the content freed) when an append failed, or out of memory. */
char *eb_buf_detach(struct eb_buf *b, size_t *lenp)
    __attribute__((warn_unused_result));

#endif
