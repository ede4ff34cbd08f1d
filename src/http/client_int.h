/*
 * Private to src/http/client*.c: what the blocking client (client.c) and
 * the asynchronous one (client_async.c) share. Includes curl, so nothing
 * outside those files may include it.
 */
#ifndef EB_HTTP_CLIENT_INT_H
#define EB_HTTP_CLIENT_INT_H

#include <curl/curl.h>

#include "core/buf.h"
#include "http/client.h"

/* State of one transfer, seen by curl's header and body callbacks. */
struct fetch_ctx {
	struct eb_buf body;
	struct eb_http_header *headers;
	size_t nheaders;
	size_t header_bytes;
	int too_large;
	int oom;
};

void http_headers_free(struct eb_http_header *h, size_t n);
/* The eb_http_error for a transfer that ended with rc. */
enum eb_http_error http_classify(CURLcode rc, const struct fetch_ctx *ctx);
/* v then last as one curl list in one allocation (eb_free it); NULL: OOM */
struct curl_slist *http_slist_block(const char *const *v, const char *last);
void http_set_message(struct eb_http_response *resp, const char *s);
/* Set every option of one request on h; CURLE_OK or the first failure. */
CURLcode http_configure(CURL *h, const struct eb_http_options *o,
                        struct fetch_ctx *ctx, struct curl_slist *hdrs,
                        struct curl_slist *resolve,
                        struct curl_slist *connect_to, char *errbuf);
/* Copy status, timing and URLs of h's last response into resp; 0 or -1. */
int http_collect(CURL *h, struct eb_http_response *resp);
/* Stop the asynchronous client's own threads (client_async.c). */
void eb_http_async_stop(void);

#endif
