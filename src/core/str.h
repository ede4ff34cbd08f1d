/*
 * Small string helpers shared by the parsers: ASCII case folding, the
 * identifier and host-name syntax checks that discovery and configuration
 * need, and constant-time comparison.
 */
#ifndef EB_STR_H
#define EB_STR_H

#include <stddef.h>

/* Lower-case ASCII letters of s in place; returns s. */
char *eb_str_lower(char *s);
/* ASCII case-insensitive equality. */
int eb_str_ieq(const char *a, const char *b);
/* 1 when s is a tenant id: [a-z0-9-]{1,63}. */
int eb_str_is_tenant_id(const char *s);
/*
 * 1 when s is a fully qualified DNS name: at least two labels of
 * [A-Za-z0-9-]{1,63} not starting or ending with '-', 253 bytes at most,
 * a final dot allowed, no IP literal.
 */
int eb_str_is_fqdn(const char *s);
/*
 * Split a typed user identifier "local@domain" at its only '@'. Refuses (-1)
 * zero or several '@', an empty part, control characters, more than 320 bytes,
 * bytes that are not UTF-8 (eb_str_is_utf8) and a domain that is not a FQDN. On
 * success *local and *domain are fresh strings (domain lower-cased, trailing
 * dot removed) owned by the caller.
 */
int eb_str_split_identifier(const char *id, char **local, char **domain);
/*
 * UTF-8 (RFC 3629): eb_str_utf8_seq() is the length (1 to 4) of the
 * well-formed sequence at the start of the n bytes at p, or 0 when there
 * is none there (a stray continuation byte, a truncated sequence, an
 * overlong form, a surrogate, past U+10FFFF; also n == 0).
 * eb_str_is_utf8() is 1 when all n bytes are well-formed UTF-8.
 */
size_t eb_str_utf8_seq(const void *p, size_t n);
int eb_str_is_utf8(const void *p, size_t n);
/* Constant-time equality of two byte strings (lengths may differ). */
int eb_str_ct_eq(const void *a, size_t alen, const void *b, size_t blen);
/* Format into a caller's error buffer; a no-op when err is NULL or errlen
 * is 0. */
void eb_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 1 when s starts with prefix. */
int eb_str_has_prefix(const char *s, const char *prefix);
/* The value of hex digit c (either case), or -1. */
int eb_str_hexval(int c);
/* CLOCK_MONOTONIC in milliseconds. */
long long eb_mono_ms(void);
/*
 * Several strings in one allocation: eb_str_room() is the room s takes
 * (its NUL included; 0 for NULL), eb_str_put() copies s to *p and moves
 * *p past it, returning the copy (NULL for NULL).
 */
size_t eb_str_room(const char *s);
char *eb_str_put(char **p, const char *s);

#endif
