/*
 * Private to src/http/client*.c: what the blocking client (client.c) and
 * the asynchronous one (client_async.c) share. Includes curl, so nothing
 * outside those files may include it.
 */
#ifndef EB_HTTP_CLIENT_INT_H
#define EB_HTTP_CLIENT_INT_H

#include <stdint.h>

#include <curl/curl.h>

#include "core/buf.h"
#include "core/log.h"
#include "http/client.h"

/* The handle of an asynchronous transfer (struct eb_http_xfer, client.h):
 * the first member of both clients' transfers. */
struct eb_http_xfer {
	int native; /* 1: a struct h1_xfer, 0: a struct async_xfer */
};

/* State of one transfer, seen by curl's header and body callbacks. */
struct fetch_ctx {
	struct eb_buf body;
	struct eb_http_header *headers;
	size_t nheaders;
	size_t header_bytes;
	int too_large;
	int oom;
	/* streaming (struct eb_http_stream) */
	struct eb_http_stream stream; /* head NULL: none */
	void *stream_arg;
	struct eb_http_xfer *self;
	CURL *easy;                  /* curl's transfers: for the status */
	int head_done;               /* head was called */
	int streaming;               /* it said EB_HTTP_STREAM */
	int stream_aborted;          /* head or data said to end */
	unsigned long long streamed; /* bytes data took */
	/* the submitter's request: its callbacks log under it */
	struct eb_log_ctx lctx;
};

/* done(resp, arg) with lctx as the thread's log context meanwhile. */
void eb_http_call_done(const struct eb_log_ctx *lctx, eb_http_done_fn done,
                       struct eb_http_response *resp, void *arg);
/*
 * opts with the thread's traceparent (eb_log_traceparent) added to its
 * headers, any the caller set dropped: *o and *hv (eb_free it after
 * submitting; the clients copy the headers) hold the copy, line the
 * header. opts itself when the thread has no trace; NULL when out of
 * memory.
 */
const struct eb_http_options *
eb_http_with_trace(const struct eb_http_options *opts,
                   struct eb_http_options *o, const char ***hv, char line[96]);

/*
 * Streaming helpers shared by both clients. stream_head() calls head once
 * for status and ctx's headers: 0 to go on (ctx->streaming says how), -1
 * when it said to end (stream_aborted set). stream_data() passes n bytes
 * to data within the body limit: 0 taken, 1 pause (not taken), -1 end
 * (too_large or stream_aborted set).
 */
int eb_http_stream_head(struct fetch_ctx *ctx, long status);
int eb_http_stream_data(struct fetch_ctx *ctx, const char *p, size_t n);

void eb_http_headers_free(struct eb_http_header *h, size_t n);
/* No CR, LF or other control character (but HT) in the headers, user
 * agent, method and URL: curl would send them as they are. */
int eb_http_request_text_ok(const struct eb_http_options *o);
/* The eb_http_error for a transfer that ended with rc. */
enum eb_http_error eb_http_classify(CURLcode rc, const struct fetch_ctx *ctx);
/* v then last as one curl list in one allocation (eb_free it); NULL: OOM */
struct curl_slist *eb_http_slist_block(const char *const *v, const char *last);
void eb_http_set_message(struct eb_http_response *resp, const char *s);
/* Set every option of one request on h; CURLE_OK or the first failure. */
CURLcode eb_http_configure(CURL *h, const struct eb_http_options *o,
                           struct fetch_ctx *ctx, struct curl_slist *hdrs,
                           struct curl_slist *resolve,
                           struct curl_slist *connect_to, char *errbuf);
/* Move ctx's headers and body into resp (an empty body when none); 0, or
 * -1 when out of memory. */
int eb_http_response_take(struct eb_http_response *resp, struct fetch_ctx *ctx);
/* The connect and total timeouts of o in milliseconds (defaults filled). */
void eb_http_timeouts(const struct eb_http_options *o, long *connect_ms,
                      long *total_ms);
/* Copy status, timing and URLs of h's last response into resp; 0 or -1. */
int eb_http_collect(CURL *h, struct eb_http_response *resp);
/* One response header line (no CR/LF) into ctx; 0, or -1 to give up. */
int eb_http_header_line(struct fetch_ctx *ctx, const char *p, size_t len);
/* A transfer of the asynchronous client began, ended (client_async.c). */
void eb_http_async_pending_begin(void);
void eb_http_async_pending_done(void);

/*
 * The native HTTP/1.1 client of one loop (client_h1.c), for plain http://
 * URLs at an IP address. Its connections are in the loop's epoll set epfd
 * with data.u64 = address | 1; the loop hands their events to eb_h1_event().
 */
struct h1_loop;
struct h1_loop *eb_h1_loop_new(int epfd);
/* Finish every transfer ("client shutting down"), close, free. */
void eb_h1_loop_free(struct h1_loop *h);
/* 1: started (done is called once, maybe already), 0: not one for this
 * client (use curl), -1: failed (done never called). */
int eb_h1_fetch(struct h1_loop *h, const struct eb_http_options *o,
                eb_http_done_fn done, void *arg);
/* An epoll event for connection ptr; returns the transfers finished. */
size_t eb_h1_event(struct h1_loop *h, void *ptr, uint32_t events);
/* Milliseconds until a deadline (0: due), -1 for none. */
int eb_h1_timeout(struct h1_loop *h);
/* Fail the transfers past a deadline; returns how many. */
size_t eb_h1_expire(struct h1_loop *h);
/* Start the transfers waiting for a connection where one is free now;
 * returns how many ended at once (failed). */
size_t eb_h1_kick(struct h1_loop *h);
/* Free the connections closed during the last event batch. */
void eb_h1_reap(struct h1_loop *h);
/*
 * The native client's response parser alone, for fuzzing: data as the
 * upstream's answer to a request (HEAD when head_req) with a body limit of
 * max (0: the default), received piece bytes at a time (0: at once), then
 * the connection's end. With stream set, the body goes through a stream
 * receiver that takes everything (struct eb_http_stream) and comes back
 * as the response's body. The response as done would get it (NULL when
 * out of memory).
 */
struct eb_http_response *eb_h1_parse_response(const void *data, size_t len,
                                              int head_req, size_t max,
                                              size_t piece, int stream);
/* Streaming (client.h): resume a paused transfer, end one. */
void eb_h1_resume(struct eb_http_xfer *xfer);
void eb_h1_abort(struct eb_http_xfer *xfer);
/* The native client's counters, into st (all loops). */
void eb_h1_stats(struct eb_http_async_stats *st);

/* Stop the asynchronous client's own threads (client_async.c). */
void eb_http_async_stop(void);

#endif
