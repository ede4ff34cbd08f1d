/*
 * base64url (RFC 4648 section 5) without padding, as JOSE, PKCE (S256
 * challenges) and our opaque tokens use it. Decoding is strict: only the
 * URL-safe alphabet, no '=' padding, no whitespace, and the unused low bits
 * of the last character must be zero, so every byte string has exactly one
 * accepted encoding.
 */
#ifndef EB_B64_H
#define EB_B64_H

#include <stddef.h>
#include <stdint.h>

struct eb_buf;

/* Characters needed to encode n bytes (no NUL), or 0 on overflow. */
size_t eb_b64_url_encoded_len(size_t n);
/*
 * Encode n bytes at p into out, which must hold eb_b64_url_encoded_len(n) + 1
 * bytes; out is NUL-terminated. Returns the number of characters written.
 */
size_t eb_b64_url_encode_to(const void *p, size_t n, char *out);
/* A fresh NUL-terminated encoding of p (eb_free it), NULL when out of memory.
 */
char *eb_b64_url_encode(const void *p, size_t n);
/* Append the encoding of p to b; -1 when b refuses to grow. */
int eb_b64_url_encode_buf(struct eb_buf *b, const void *p, size_t n);
/* Bytes a valid encoding of len characters decodes to; -1 if len is invalid. */
long eb_b64_url_decoded_len(size_t len);
/*
 * Decode len characters of s into out (room for eb_b64_url_decoded_len(len)
 * bytes). Returns the number of bytes written, or -1 when s is not a strict
 * base64url encoding (out is then left with unspecified content).
 */
long eb_b64_url_decode_to(const char *s, size_t len, uint8_t *out);
/*
 * Decode into a fresh buffer (eb_free it, or eb_free_secret for secrets),
 * NUL-terminated for convenience (the NUL is not counted in *outlen).
 * Returns 0, or -1 on bad input or out of memory (*out is then NULL).
 */
int eb_b64_url_decode(const char *s, size_t len, uint8_t **out, size_t *outlen);

#endif
