/*
 * A scripted fake HTTP/1.1 server for unit tests (tests/unit/fx, linked
 * into every unit test): it listens on 127.0.0.1 at a free port and
 * answers, one connection at a time on its own thread, each request by
 * its path (the query left off; "*" matches any path not set) with the
 * next response of that path's script, the last one repeating. It counts
 * the requests per path and keeps the last one, headers and body. A
 * response may be held back (delay_ms) and written piece by piece. Every
 * response says "Connection: close" and carries a Location to a closed
 * port, so a client that followed redirects would fail. An unknown path
 * gets 404 "{}".
 *
 * The functions fail the running cmocka test on a setup error.
 */
#ifndef EB_TEST_FX_HTTP_H
#define EB_TEST_FX_HTTP_H

#include <stddef.h>

struct fx_http;

/* Start serving; fx_http_free stops and frees. */
struct fx_http *fx_http_start(void);
/* Stop serving and close the port: later connections are refused. */
void fx_http_stop(struct fx_http *s);
void fx_http_free(struct fx_http *s);

int fx_http_port(const struct fx_http *s);
/* "http://127.0.0.1:<port>" */
const char *fx_http_base(const struct fx_http *s);

/* Make path's script this one response (application/json), answered
 * after delay_ms. */
void fx_http_set(struct fx_http *s, const char *path, int status,
                 const char *body, int delay_ms);
/* Append a response to path's script: the first request gets the first
 * response, and so on; the last one repeats. */
void fx_http_push(struct fx_http *s, const char *path, int status,
                  const char *body, int delay_ms);
/* The same with a body of len bytes (any bytes) of type ctype. */
void fx_http_set_body(struct fx_http *s, const char *path, int status,
                      const char *ctype, const void *body, size_t len,
                      int delay_ms);
void fx_http_push_body(struct fx_http *s, const char *path, int status,
                       const char *ctype, const void *body, size_t len,
                       int delay_ms);
/* Write path's responses piece bytes at a time, delay_us between pieces
 * (piece 0: at once). */
void fx_http_pieces(struct fx_http *s, const char *path, size_t piece,
                    int delay_us);

/* Requests to path so far. */
int fx_http_hits(struct fx_http *s, const char *path);
/* A copy of the last request to path ("" when none); free it. */
char *fx_http_last(struct fx_http *s, const char *path);

#endif
