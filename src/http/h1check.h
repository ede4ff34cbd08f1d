/*
 * HTTP/1.1 request framing checks (RFC 9112): what the server adapter
 * refuses before any handler runs, decided from the request line and the
 * header list as libmicrohttpd parsed them. Pure functions: no I/O, no
 * allocation.
 */
#ifndef EB_HTTP_H1CHECK_H
#define EB_HTTP_H1CHECK_H

#include <stddef.h>

/* One header field as the HTTP library handed it: NUL-terminated name and
 * value, in the order received. */
struct eb_h1_field {
	const char *name;
	const char *value;
};

/*
 * Check a request head. method, version ("HTTP/1.1"), raw_target (the
 * request-target exactly as received, before any percent-decoding) and the
 * n fields f. Returns 0 when the request may be processed, else the status
 * to refuse it with (400, 501 for a transfer coding other than chunked,
 * 505 for a version other than HTTP/1.0 and 1.1) and sets *why to a
 * static description fit for the log (it never quotes the request). Every
 * refusal leaves the framing of what follows in doubt: the caller closes
 * the connection.
 */
int eb_h1check_request(const char *method, const char *version,
                       const char *raw_target, const struct eb_h1_field *f,
                       size_t n, const char **why);

/*
 * libmicrohttpd 0.9.75 parses the head in place: each name ends where the
 * line's colon was, its value follows after the blanks it skipped, and the
 * next line starts right after the value's CR LF (both overwritten with
 * NUL; a bare LF line ending is refused here). It handles an
 * obs-fold continuation by appending it to the previous NAME in a new
 * buffer, and a NUL inside a value silently cuts the value short; neither
 * is visible in the strings. This checks that the n fields lie in one
 * buffer exactly as n single lines would, which is what neither a folded
 * line nor a hidden NUL nor a dropped line leaves. Returns 0 or 400 with
 * *why set. Reads only the bytes between and just after the strings, which
 * must be the library's buffer: call it with the library's pointers only.
 */
int eb_h1check_layout(const struct eb_h1_field *f, size_t n, const char **why);

/* 1 when s (n bytes) is a non-empty RFC 9110 token (tchar only). */
int eb_h1check_token(const char *s, size_t n);

/* 1 when s (n bytes) is well-formed UTF-8 (RFC 3629: no overlong form,
 * no surrogate, nothing above U+10FFFF). */
int eb_h1check_utf8(const char *s, size_t n);

#endif
