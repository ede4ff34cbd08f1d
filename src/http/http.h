/*
 * The request and response types every handler sees. Handlers never touch
 * libmicrohttpd: server.c adapts it to this interface.
 *
 * A handler reads the request (method, path parameters matched by the
 * router, query, headers, body already read within the configured limit),
 * sets one response, and returns EB_HANDLED. A handler that must wait for
 * an upstream (IdP, MDM) returns EB_ASYNC after handing the request to
 * another thread, which later sets the response and calls eb_req_resume();
 * the connection is suspended meanwhile and no server thread is blocked.
 */
#ifndef EB_HTTP_H
#define EB_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct eb_env;
struct eb_config;
struct eb_tenant;
struct eb_request;

enum { EB_HANDLED = 0, EB_ASYNC = 1 };

typedef int (*eb_handler_fn)(struct eb_request *req);

/* Route flags */
#define EB_ROUTE_TENANT                                                        \
	0x01 /* {T} must name a configured tenant (else 404)                   \
	      */
#define EB_ROUTE_REDACT_PATH                                                   \
	0x02               /* log the pattern, not the path (secrets in path) */
#define EB_ROUTE_BODY 0x04 /* the handler reads a body (else none is read) */

struct eb_route {
	const char *method; /* "GET" (also answers HEAD), "POST", "*" */
	const char
	    *pattern; /* "/t/{T}/auth/{flow}", "{rest}" takes the remainder */
	eb_handler_fn handler;
	const char *name; /* metrics label */
	unsigned flags;
	/* Most body bytes the route reads; 0: limits.max_body_bytes. */
	size_t max_body;
	/*
	 * Optional: run once the headers are in, before any body byte is
	 * read or buffered. It may set the request's body limit
	 * (eb_req_set_body_limit) or answer at once (any eb_resp_set_*): the
	 * body is then never read, the handler never runs, and the
	 * connection is closed after the response.
	 */
	void (*head)(struct eb_request *req);
};

/*
 * For a head callback: the most body bytes this request may send (the
 * route's limit until then). 0: no body byte is read: the handler runs at
 * once with an empty body and, when a body was announced, the connection
 * is closed after the response. A body over the limit gets 413 and the
 * connection is closed.
 */
void eb_req_set_body_limit(struct eb_request *req, size_t max);
size_t eb_req_body_limit(const struct eb_request *req);

/* Request accessors. Strings are owned by the request. */
const char *eb_req_method(const struct eb_request *req);
const char *eb_req_path(const struct eb_request *req);
/* Path parameter by name ("T", "flow", "rest"); NULL when absent. */
const char *eb_req_param(const struct eb_request *req, const char *name);
/* Query parameter (decoded); NULL when absent. First one wins. */
const char *eb_req_query(const struct eb_request *req, const char *name);
/* Call fn for every query parameter; stops when fn returns non-zero. */
void eb_req_query_each(const struct eb_request *req,
                       int (*fn)(void *arg, const char *name,
                                 const char *value),
                       void *arg);
/* The raw query string as received ("" when none). */
const char *eb_req_raw_query(const struct eb_request *req);
/* The request-target as received, path and query, not decoded. */
const char *eb_req_raw_target(const struct eb_request *req);
/* Request header (case-insensitive name); NULL when absent. */
const char *eb_req_header(const struct eb_request *req, const char *name);
/* Call fn for every request header in the order received (name as sent);
 * stops when fn returns non-zero. */
void eb_req_header_each(const struct eb_request *req,
                        int (*fn)(void *arg, const char *name,
                                  const char *value),
                        void *arg);
/* Number of request headers with this name. */
unsigned eb_req_header_count(const struct eb_request *req, const char *name);
/* Cookie value by name; NULL when absent. */
const char *eb_req_cookie(const struct eb_request *req, const char *name);
/* The body read so far (whole body once the handler runs); NUL-terminated. */
const void *eb_req_body(const struct eb_request *req, size_t *len);
/* Client address as text. */
const char *eb_req_remote(const struct eb_request *req);
/*
 * What a proxy sends on as X-Forwarded-For: from a trusted proxy with
 * forwarding headers, "client, trusted hops, peer" (the hops a client
 * wrote left of itself dropped); else the peer address alone.
 */
const char *eb_req_forwarded_for(const struct eb_request *req);
/* Request id (also sent back as X-Request-Id). */
const char *eb_req_id(const struct eb_request *req);
/* 1 when the request came over TLS. */
int eb_req_is_tls(const struct eb_request *req);

/* The root context and the configuration this request holds a reference on. */
struct eb_env *eb_req_env(const struct eb_request *req);
const struct eb_config *eb_req_config(const struct eb_request *req);
/* The tenant named by {T} (routes with EB_ROUTE_TENANT), or set by a handler.
 */
const struct eb_tenant *eb_req_tenant(const struct eb_request *req);
void eb_req_set_tenant(struct eb_request *req, const struct eb_tenant *t);
/* Per-request slot for the handler's own state (freed with free_fn). */
void eb_req_set_data(struct eb_request *req, void *data,
                     void (*free_fn)(void *));
void *eb_req_data(const struct eb_request *req);

/*
 * Responses. Exactly one of the eb_resp_set_* calls per request; headers may
 * be added before or after. Returns 0, or -1 on allocation failure (the
 * server then answers 500).
 */
/* Copy len bytes of body. */
int eb_resp_set(struct eb_request *req, int status, const char *content_type,
                const void *body, size_t len);
/* Take ownership of body (allocated with eb_malloc). */
int eb_resp_set_owned(struct eb_request *req, int status,
                      const char *content_type, char *body, size_t len);
/* Body that outlives the request (static or config-owned); not copied. */
int eb_resp_set_static(struct eb_request *req, int status,
                       const char *content_type, const void *body, size_t len);
/*
 * A body produced while it is sent (the MDM proxy's streamed responses),
 * for EB_ASYNC handlers on the server's worker threads. size is its length
 * when known (sent as Content-Length; the stream must then give exactly
 * that much), or EB_RESP_SIZE_UNKNOWN (chunked on HTTP/1.1, the
 * connection's end on HTTP/1.0). read(arg, buf, max) is called on the
 * request's worker thread when the connection can take more: it returns
 * the bytes it copied (> 0), 0 when none are ready (the connection then
 * waits for eb_resp_stream_ready()), EB_RESP_STREAM_END after the last
 * byte, or EB_RESP_STREAM_CUT to cut the response off (the connection is
 * closed mid-response: the client sees it incomplete). release(arg) is
 * called exactly once, on that thread, when the server is done with the
 * stream (sent, cut, the client gone, or another response set instead);
 * read is never called after it, and req must not be used after it.
 * Returns 0, or -1 when out of memory (release is then not called).
 */
#define EB_RESP_SIZE_UNKNOWN UINT64_MAX
enum { EB_RESP_STREAM_END = -1, EB_RESP_STREAM_CUT = -2 };
typedef long (*eb_resp_read_fn)(void *arg, char *buf, size_t max);
int eb_resp_set_stream(struct eb_request *req, int status,
                       const char *content_type, uint64_t size,
                       eb_resp_read_fn read, void (*release)(void *arg),
                       void *arg);
/* The stream has bytes (or its end) for a read that found none: the
 * connection goes on. On the request's worker thread; a no-op when
 * nothing waits. */
void eb_resp_stream_ready(struct eb_request *req);

/* Add a response header (copied). Refuses CR/LF in name or value. */
int eb_resp_header(struct eb_request *req, const char *name, const char *value);
/* Status set so far (0 when none). */
int eb_resp_status(const struct eb_request *req);

/* A plain-text error (text/plain; charset=utf-8). */
int eb_resp_text(struct eb_request *req, int status, const char *text);

/*
 * For EB_ASYNC handlers: called from any thread once the response is set;
 * the server then sends it. Never call it for a request that returned
 * EB_HANDLED.
 */
void eb_req_resume(struct eb_request *req);

#endif
