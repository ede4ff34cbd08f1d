/*
 * The blocking HTTP client for upstream calls (IdP metadata, JWKS and token
 * endpoints, MDM profile fetch, the discover command). It is the only user
 * of libcurl. One request per call, on the calling thread; any number of
 * threads may call it at once. eb_http_fetch_async() is the non-blocking
 * form.
 *
 * Every request has limits: a connect timeout, a total timeout and a
 * largest response body (the transfer is aborted as soon as it is passed).
 * TLS peer and host verification are always on. Redirects are not followed
 * unless asked for, and must never be for token requests.
 *
 * Process-wide state (curl's global init and one share handle holding the
 * DNS cache and TLS sessions) is created by eb_http_client_global_init().
 * Connections are kept alive per thread: curl documents that its shared
 * connection pool is not safe between concurrent threads, so each thread
 * reuses its own easy handle (and its connections) instead.
 */
#ifndef EB_HTTP_CLIENT_H
#define EB_HTTP_CLIENT_H

#include <stddef.h>

struct eb_buf;

/* Defaults for options left at zero. */
#define EB_HTTP_DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define EB_HTTP_DEFAULT_TIMEOUT_MS         30000L
#define EB_HTTP_DEFAULT_MAX_BYTES          (1024 * 1024)
#define EB_HTTP_DEFAULT_MAX_REDIRECTS      5
/* Response headers: most lines and bytes kept (more is EB_HTTP_ERR_TOO_LARGE).
 */
#define EB_HTTP_MAX_HEADERS      100
#define EB_HTTP_MAX_HEADER_BYTES (32 * 1024)

/* Why a request failed. */
enum eb_http_error {
	EB_HTTP_OK = 0,        /* a response was received (any status) */
	EB_HTTP_ERR_DNS,       /* the host name did not resolve */
	EB_HTTP_ERR_CONNECT,   /* no connection, or it broke mid-way */
	EB_HTTP_ERR_TLS,       /* handshake or certificate verification */
	EB_HTTP_ERR_TIMEOUT,   /* connect or total timeout */
	EB_HTTP_ERR_TOO_LARGE, /* body or headers past the limit */
	EB_HTTP_ERR_OTHER      /* bad URL, redirect loop, out of memory... */
};

/*
 * One request. Zero every field you do not set (or use eb_http_options_init);
 * the structure and everything it points to stay owned by the caller and
 * need only live for the duration of eb_http_fetch().
 */
struct eb_http_options {
	const char *method; /* NULL: "POST" when body is set, else "GET" */
	const char *url;    /* http:// or https:// */
	/* Extra request headers, "Name: value", NULL-terminated; may be NULL.
	 * "Name:" removes a header curl would send. */
	const char *const *headers;
	const void *body; /* request body, sent as is; may be NULL */
	size_t body_len;
	/* Timeouts: the _ms field wins when non-zero, else the seconds field,
	 * else the default. */
	long connect_timeout_ms;
	long timeout_ms; /* whole transfer, redirects included */
	int connect_timeout;
	int timeout;
	size_t max_response_bytes; /* 0: EB_HTTP_DEFAULT_MAX_BYTES */
	int follow_redirects;      /* 0 (default): 3xx is returned as is */
	int max_redirects;         /* 0: EB_HTTP_DEFAULT_MAX_REDIRECTS */
	const char *cafile; /* trust these CAs (PEM) instead of the system's */
	const char *user_agent; /* NULL: "enrollbridge/<version>" */
	/* Test hooks, curl syntax, NULL-terminated: "host:port:addr"
	 * (CURLOPT_RESOLVE) and "host:port:connect-host:connect-port"
	 * (CURLOPT_CONNECT_TO). A request using them gets a private handle so
	 * that the fake entries never reach the shared DNS cache. */
	const char *const *resolve;
	const char *const *connect_to;
	/* Stream the body (eb_http_fetch_async only): see struct
	 * eb_http_stream. NULL: the body is gathered. Copied. */
	const struct eb_http_stream *stream;
	/*
	 * Fairness (eb_http_fetch_async on the native client's path): the
	 * party the request is made for, e.g. the MDM proxy's grant id or,
	 * without one, the client address. Transfers of one key hold at most
	 * EB_HTTP_FAIR_SHARE of a loop's connections to an upstream; beyond
	 * that they wait in the key's own queue, and the keys waiting take
	 * turns (round-robin) as connections come free, so that one party's
	 * slow requests cannot queue everybody else's. When a key already has
	 * EB_HTTP_FAIR_QUEUE transfers waiting, eb_http_fetch_async() refuses
	 * the next (-1: the caller answers 503). NULL: no key, as before keys
	 * (those transfers share the whole pool, first come first served,
	 * and still take their turn with the keys). Copied.
	 */
	const char *fair_key;
};

/* A fairness key's most connections to one upstream per loop
 * (max(4, pool/8) for the pool of 128), and most transfers waiting. */
#define EB_HTTP_FAIR_SHARE 16
#define EB_HTTP_FAIR_QUEUE 64

/* One response header; name as received, value without surrounding blanks. */
struct eb_http_header {
	char *name;
	char *value;
};

/*
 * The outcome of eb_http_fetch(). When error is EB_HTTP_OK, status and the
 * rest describe the last response received (after redirects when they were
 * followed); otherwise message says what went wrong.
 */
struct eb_http_response {
	enum eb_http_error error;
	char message[256]; /* "" on success */
	long status;
	struct eb_http_header *headers; /* of the last response only */
	size_t nheaders;
	char *body; /* never NULL; NUL-terminated (the NUL is not counted) */
	size_t body_len;
	long total_time_ms;
	char *effective_url; /* the URL of the last request made */
	/* For a 3xx not followed: the Location resolved against the request
	 * URL (NULL otherwise). */
	char *redirect_url;
	long redirect_count; /* redirects followed */
};

/*
 * Set up curl and the shared DNS/TLS-session cache. Idempotent and safe to
 * call from several threads; eb_http_fetch() calls it when nobody did.
 * Returns 0 or -1.
 */
int eb_http_client_global_init(void);
/*
 * Undo eb_http_client_global_init() at exit, once no other thread makes
 * requests. Frees the calling thread's kept handle and stops the
 * asynchronous client (transfers still under way end with
 * EB_HTTP_ERR_OTHER; their done is called).
 */
void eb_http_client_global_cleanup(void);

/* Zero opts and set method and url (not copied). */
void eb_http_options_init(struct eb_http_options *opts, const char *method,
                          const char *url);

/*
 * Make one request. Returns a response to free with eb_http_response_free(),
 * or NULL when out of memory. Transport failures are reported in
 * response->error (an HTTP error status is not one: check status).
 */
struct eb_http_response *eb_http_fetch(const struct eb_http_options *opts);

/*
 * The asynchronous form, for callers that must not wait (the MDM proxy on
 * the HTTP server's threads). The transfer runs on the calling thread's
 * loop when it has one (eb_http_loop_bind: the server's workers do), else
 * on one of a few threads of the client's own (one per core, up to four),
 * in turn. Each loop's multi handle keeps connections to an upstream alive
 * from one request to the next.
 *
 * opts and everything it points to are copied before this returns (the
 * body too), except that the resolve and connect_to test hooks are not
 * supported here (refused: -1). done(resp, arg) is called exactly once, on
 * the loop's thread, when the transfer ends in any way (on the calling
 * thread's own loop it may be called before this returns, when curl
 * refuses the transfer at once); it owns resp (eb_http_response_free it,
 * or take its body first), may be NULL when out of memory, and must not
 * block. Returns 0 when the transfer was queued, -1 when it was not (done
 * is then never called).
 */
typedef void (*eb_http_done_fn)(struct eb_http_response *resp, void *arg);
int eb_http_fetch_async(const struct eb_http_options *opts,
                        eb_http_done_fn done, void *arg);
/*
 * Streaming a response body (the MDM proxy passing on what it receives as
 * it arrives). Only on the calling thread's own loop (eb_http_loop_bind):
 * eb_http_fetch_async() refuses a stream elsewhere, and eb_http_fetch()
 * answers it with EB_HTTP_ERR_OTHER. Every call below is made on the
 * loop's thread.
 *
 * head(resp, xfer, arg) is called at most once, when the final response's
 * status and headers are in and before any of its body is kept (a
 * response without a body may go to done without it). resp is the
 * client's (status and headers only; read it during the call). It
 * returns EB_HTTP_GATHER to have the body gathered (done gets the whole
 * response, as without a stream), EB_HTTP_STREAM to receive it through
 * data, or EB_HTTP_ABORT to end the transfer (done gets
 * EB_HTTP_ERR_OTHER). xfer names the transfer until done is called or
 * eb_http_xfer_abort() returns.
 *
 * data(p, len, arg) gets the body's bytes in order (len > 0), the
 * transfer encoding undone. It returns 0 when it took them, 1 when it did
 * not and the transfer is to pause (the same bytes come again after
 * eb_http_xfer_resume()), -1 to end the transfer (done gets
 * EB_HTTP_ERR_OTHER). max_response_bytes and the timeouts still apply, to
 * a paused transfer too.
 *
 * done is then called as always: EB_HTTP_OK (and an empty body) when the
 * whole body was passed on and its framing was complete, an error when
 * the body was cut short, in which case what data passed on must not be
 * presented as a complete body.
 */
enum { EB_HTTP_GATHER = 0, EB_HTTP_STREAM = 1, EB_HTTP_ABORT = -1 };
struct eb_http_xfer;
struct eb_http_stream {
	int (*head)(const struct eb_http_response *resp,
	            struct eb_http_xfer *xfer, void *arg);
	int (*data)(const char *p, size_t len, void *arg);
};
/* Go on after data returned 1. data may be called before this returns;
 * done is not. Not from within the transfer's own callbacks. */
void eb_http_xfer_resume(struct eb_http_xfer *xfer);
/* End the transfer now, from outside its callbacks; done is never called
 * for it. Its connection is closed. */
void eb_http_xfer_abort(struct eb_http_xfer *xfer);

/* Transfers queued or running in the asynchronous client. */
size_t eb_http_async_pending(void);

/* What the asynchronous client did since start (for /metrics). */
struct eb_http_async_stats {
	unsigned long long curl_transfers;   /* through libcurl */
	unsigned long long native_transfers; /* through the native client */
	unsigned long long native_connects;  /* connections it opened */
	unsigned long long native_reused;    /* transfers on a kept one */
	unsigned long long native_retries;   /* stale kept ones retried */
};
void eb_http_async_stats(struct eb_http_async_stats *st);

/*
 * A loop of the asynchronous client run by its owner's event loop: poll
 * eb_http_loop_fd() for reading, wake up after eb_http_loop_timeout() ms
 * at most, and call eb_http_loop_run() on either. Everything but
 * eb_http_fetch_async() from other threads happens on the owner's thread.
 */
struct eb_http_loop;
/* NULL when out of memory or file descriptors. */
struct eb_http_loop *eb_http_loop_new(void);
/* Readable when the loop has work; stays the same for the loop's life. */
int eb_http_loop_fd(const struct eb_http_loop *l);
/* Milliseconds until a curl timer is due (0: now), or -1 for none. */
int eb_http_loop_timeout(const struct eb_http_loop *l);
/*
 * Wait up to wait_ms (0: not at all, -1: until something happens) and run
 * what is ready: socket events, due timers, transfers queued by other
 * threads. Completion functions are called from here. Returns how many
 * transfers ended.
 */
size_t eb_http_loop_run(struct eb_http_loop *l, int wait_ms);
/* Make l the loop of this thread's eb_http_fetch_async() (NULL: none). */
void eb_http_loop_bind(struct eb_http_loop *l);
/* End l's transfers (done gets EB_HTTP_ERR_OTHER) and free it; on its
 * owner's thread. NULL is a no-op. */
void eb_http_loop_free(struct eb_http_loop *l);

/* Free a response; NULL is a no-op. */
void eb_http_response_free(struct eb_http_response *resp);

/* First response header with this name (ASCII case-insensitive), or NULL. */
const char *eb_http_response_header(const struct eb_http_response *resp,
                                    const char *name);
/* How many response headers carry this name. */
size_t eb_http_response_header_count(const struct eb_http_response *resp,
                                     const char *name);
/* The nth (from 0) header with this name, or NULL. */
const char *eb_http_response_header_nth(const struct eb_http_response *resp,
                                        const char *name, size_t nth);

/* "dns", "connect", "tls", "timeout", "too_large", "other" ("ok" for 0). */
const char *eb_http_error_name(enum eb_http_error err);

/*
 * Append s percent-encoded to b: everything but ALPHA, DIGIT and "-._~"
 * becomes %XX (so a space is %20). Returns 0, or -1 past b's limit.
 */
int eb_http_urlencode(struct eb_buf *b, const char *s);
/*
 * Append "name=value" (both encoded) to an application/x-www-form-urlencoded
 * body or a query string in b, preceded by '&' unless b is empty.
 * Returns 0 or -1. Use eb_buf_finish_secret() when a value is a secret.
 */
int eb_http_form_add(struct eb_buf *b, const char *name, const char *value);
/*
 * A whole form body from pairs: kv = {name, value, name, value, ..., NULL}.
 * Returns a string to eb_free (eb_free_secret_str when it holds secrets), or
 * NULL when out of memory.
 */
char *eb_http_form_encode(const char *const *kv);

#endif
