/*
 * The upstream HTTP client: the only file that includes curl. See client.h
 * for the contract. It owns curl's global state, the share handle (DNS cache
 * and TLS sessions, guarded by one pthread mutex per kind of data) and one
 * kept easy handle per thread, which carries that thread's keep-alive
 * connections from one request to the next.
 *
 * The asynchronous client (eb_http_fetch_async, eb_http_loop) is in
 * client_async.c; the pieces both share are declared in client_int.h.
 */
#include "http/client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "http/client_int.h"

#ifndef EB_VERSION
#define EB_VERSION "dev"
#endif

/*
 * Process-wide state. curl_global_init() is itself process-wide, so the
 * state that goes with it lives here rather than in the root context.
 */
static pthread_mutex_t g_init_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_initialized;
static CURLSH *g_share;
static pthread_mutex_t g_share_locks[CURL_LOCK_DATA_LAST];
static pthread_key_t g_handle_key;

static void
share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *arg)
{
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&g_share_locks[data]);
}

static void
share_unlock(CURL *h, curl_lock_data data, void *arg)
{
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&g_share_locks[data]);
}

static void
handle_destroy(void *h)
{
	curl_easy_cleanup(h);
}

int
eb_http_client_global_init(void)
{
	int i, rc = -1;

	pthread_mutex_lock(&g_init_lock);
	if (g_initialized) {
		rc = 0;
		goto out_unlock;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_errx("curl_global_init failed");
		goto out_unlock;
	}
	if (pthread_key_create(&g_handle_key, handle_destroy) != 0) {
		log_errx("pthread_key_create failed");
		goto out_global;
	}
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&g_share_locks[i], NULL);
	if ((g_share = curl_share_init()) == NULL) {
		log_errx("curl_share_init failed");
		goto out_locks;
	}
	if (curl_share_setopt(g_share, CURLSHOPT_LOCKFUNC, share_lock) ||
	    curl_share_setopt(g_share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
	    curl_share_setopt(g_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
	    curl_share_setopt(g_share, CURLSHOPT_SHARE,
	                      CURL_LOCK_DATA_SSL_SESSION)) {
		log_errx("curl_share_setopt failed");
		goto out_share;
	}
	g_initialized = 1;
	rc = 0;
	goto out_unlock;

out_share:
	curl_share_cleanup(g_share);
	g_share = NULL;
out_locks:
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&g_share_locks[i]);
	pthread_key_delete(g_handle_key);
out_global:
	curl_global_cleanup();
out_unlock:
	pthread_mutex_unlock(&g_init_lock);
	return rc;
}

void
eb_http_client_global_cleanup(void)
{
	CURL *h;
	int i;

	eb_http_async_stop();
	pthread_mutex_lock(&g_init_lock);
	if (!g_initialized)
		goto out_unlock;
	if ((h = pthread_getspecific(g_handle_key)) != NULL) {
		pthread_setspecific(g_handle_key, NULL);
		curl_easy_cleanup(h);
	}
	pthread_key_delete(g_handle_key);
	if (curl_share_cleanup(g_share) != CURLSHE_OK) {
		/* another thread still holds a handle: leave it all be */
		log_warnx("HTTP client still in use at cleanup");
		goto out_unlock;
	}
	g_share = NULL;
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&g_share_locks[i]);
	curl_global_cleanup();
	g_initialized = 0;
out_unlock:
	pthread_mutex_unlock(&g_init_lock);
}

void
eb_http_options_init(struct eb_http_options *opts, const char *method,
                     const char *url)
{
	memset(opts, 0, sizeof(*opts));
	opts->method = method;
	opts->url = url;
}

void
eb_http_headers_free(struct eb_http_header *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		eb_free(h[i].name);
		eb_free(h[i].value);
	}
	eb_free(h);
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Add one header line (no CR/LF) to ctx; 0, or -1 to abort the transfer. */
int
eb_http_header_line(struct fetch_ctx *ctx, const char *p, size_t len)
{
	struct eb_http_header *h;
	const char *colon, *v, *end;
	char *nv;
	size_t old;

	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* a new response (1xx, redirect): forget the previous one */
		eb_http_headers_free(ctx->headers, ctx->nheaders);
		ctx->headers = NULL;
		ctx->nheaders = 0;
		ctx->header_bytes = len;
		eb_buf_reset(&ctx->body);
		return 0;
	}
	if (len == 0)
		return 0;
	if (is_blank(p[0])) {
		/* obsolete line folding: continue the previous value */
		if (ctx->nheaders == 0)
			return 0;
		while (len > 0 && is_blank(*p)) {
			p++;
			len--;
		}
		h = &ctx->headers[ctx->nheaders - 1];
		old = strlen(h->value);
		if ((nv = eb_realloc(h->value, old + len + 2)) == NULL)
			goto oom;
		nv[old] = ' ';
		memcpy(nv + old + 1, p, len);
		nv[old + 1 + len] = '\0';
		h->value = nv;
		return 0;
	}
	if ((colon = memchr(p, ':', len)) == NULL || colon == p)
		return 0; /* not a header: ignore it like curl does */
	if (ctx->nheaders == EB_HTTP_MAX_HEADERS) {
		ctx->too_large = 1;
		return -1;
	}
	h = eb_realloc(ctx->headers, (ctx->nheaders + 1) * sizeof(*h));
	if (h == NULL)
		goto oom;
	ctx->headers = h;
	h = &ctx->headers[ctx->nheaders];
	v = colon + 1;
	end = p + len;
	while (v < end && is_blank(*v))
		v++;
	while (end > v && is_blank(end[-1]))
		end--;
	h->name = eb_strndup(p, (size_t)(colon - p));
	h->value = eb_strndup(v, (size_t)(end - v));
	if (h->name == NULL || h->value == NULL) {
		eb_free(h->name);
		eb_free(h->value);
		goto oom;
	}
	ctx->nheaders++;
	return 0;
oom:
	ctx->oom = 1;
	return -1;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct fetch_ctx *ctx = arg;
	size_t len = size * n, l = len;

	ctx->header_bytes += len;
	if (ctx->header_bytes > EB_HTTP_MAX_HEADER_BYTES) {
		ctx->too_large = 1;
		return 0;
	}
	while (l > 0 && (p[l - 1] == '\n' || p[l - 1] == '\r'))
		l--;
	if (eb_http_header_line(ctx, p, l) == -1)
		return 0;
	return len;
}

void
eb_http_call_done(const struct eb_log_ctx *lctx, eb_http_done_fn done,
                  struct eb_http_response *resp, void *arg)
{
	struct eb_log_ctx saved;

	eb_log_ctx_get(&saved);
	eb_log_ctx_set(lctx);
	done(resp, arg);
	eb_log_ctx_set(&saved);
}

const struct eb_http_options *
eb_http_with_trace(const struct eb_http_options *opts,
                   struct eb_http_options *o, const char ***hv, char line[96])
{
	const char *const *v;
	size_t n = 0;

	*hv = NULL;
	if (eb_log_traceparent(line, 96) == -1)
		return opts;
	for (v = opts->headers; v != NULL && *v != NULL; v++)
		n++;
	if ((*hv = eb_calloc(n + 2, sizeof(**hv))) == NULL)
		return NULL;
	n = 0;
	for (v = opts->headers; v != NULL && *v != NULL; v++)
		if (strncasecmp(*v, "traceparent", 11) != 0 ||
		    ((*v)[11] != ':' && (*v)[11] != ';'))
			(*hv)[n++] = *v;
	(*hv)[n++] = line;
	(*hv)[n] = NULL;
	*o = *opts;
	o->headers = (const char *const *)*hv;
	return o;
}

int
eb_http_stream_head(struct fetch_ctx *ctx, long status)
{
	struct eb_http_response view;
	struct eb_log_ctx saved;
	int r;

	if (ctx->stream.head == NULL || ctx->head_done)
		return 0;
	ctx->head_done = 1;
	memset(&view, 0, sizeof(view));
	view.status = status;
	view.headers = ctx->headers;
	view.nheaders = ctx->nheaders;
	view.body = (char *)(uintptr_t) "";
	eb_log_ctx_get(&saved);
	eb_log_ctx_set(&ctx->lctx);
	r = ctx->stream.head(&view, ctx->self, ctx->stream_arg);
	eb_log_ctx_set(&saved);
	if (r == EB_HTTP_ABORT) {
		ctx->stream_aborted = 1;
		return -1;
	}
	ctx->streaming = r == EB_HTTP_STREAM;
	return 0;
}

int
eb_http_stream_data(struct fetch_ctx *ctx, const char *p, size_t n)
{
	struct eb_log_ctx saved;
	int r;

	if (n > ctx->body.max || ctx->streamed > ctx->body.max - n) {
		ctx->too_large = 1;
		return -1;
	}
	eb_log_ctx_get(&saved);
	eb_log_ctx_set(&ctx->lctx);
	r = ctx->stream.data(p, n, ctx->stream_arg);
	eb_log_ctx_set(&saved);
	if (r == 1)
		return 1;
	if (r != 0) {
		ctx->stream_aborted = 1;
		return -1;
	}
	ctx->streamed += n;
	return 0;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct fetch_ctx *ctx = arg;
	size_t len = size * n;

	if (ctx->stream.head != NULL) {
		long status = 0;

		/* refused once, refused for good: curl may hold more bytes,
		 * or hand back those it kept when a pause ends */
		if (ctx->stream_aborted || ctx->too_large)
			return 0;
		if (!ctx->head_done) {
			curl_easy_getinfo(ctx->easy, CURLINFO_RESPONSE_CODE,
			                  &status);
			if (eb_http_stream_head(ctx, status) == -1)
				return 0; /* curl ends it: CURLE_WRITE_ERROR */
		}
		if (ctx->streaming) {
			switch (eb_http_stream_data(ctx, p, len)) {
			case 0:
				return len;
			case 1:
				return CURL_WRITEFUNC_PAUSE;
			default:
				return 0;
			}
		}
	}
	if (eb_buf_add(&ctx->body, p, len) == -1) {
		if (len > ctx->body.max || ctx->body.len > ctx->body.max - len)
			ctx->too_large = 1;
		else
			ctx->oom = 1;
		return 0;
	}
	return len;
}

enum eb_http_error
eb_http_classify(CURLcode rc, const struct fetch_ctx *ctx)
{
	if (ctx->too_large)
		return EB_HTTP_ERR_TOO_LARGE;
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return EB_HTTP_ERR_DNS;
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return EB_HTTP_ERR_CONNECT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_USE_SSL_FAILED:
		return EB_HTTP_ERR_TLS;
	case CURLE_OPERATION_TIMEDOUT:
		return EB_HTTP_ERR_TIMEOUT;
	case CURLE_FILESIZE_EXCEEDED:
		return EB_HTTP_ERR_TOO_LARGE;
	default:
		return EB_HTTP_ERR_OTHER;
	}
}

const char *
eb_http_error_name(enum eb_http_error err)
{
	switch (err) {
	case EB_HTTP_OK:
		return "ok";
	case EB_HTTP_ERR_DNS:
		return "dns";
	case EB_HTTP_ERR_CONNECT:
		return "connect";
	case EB_HTTP_ERR_TLS:
		return "tls";
	case EB_HTTP_ERR_TIMEOUT:
		return "timeout";
	case EB_HTTP_ERR_TOO_LARGE:
		return "too_large";
	case EB_HTTP_ERR_OTHER:
		break;
	}
	return "other";
}

/* Per byte: 0 text, 1 a control character but HT (and DEL), 2 the end. */
static const unsigned char ctl_class[256] = {
    2,         1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, /* 0x00 */
    1,         1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
    [0x7f] = 1};

/* No control character but HT in s (curl would send CR and LF as is).
 * A table: the proxy checks every header it forwards, the bearer too. */
static int
text_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned k;

	if (p == NULL)
		return 1;
	while ((k = ctl_class[*p]) == 0)
		p++;
	return k == 2;
}

int
eb_http_request_text_ok(const struct eb_http_options *o)
{
	const char *const *v;

	for (v = o->headers; v != NULL && *v != NULL; v++)
		if (!text_ok(*v))
			return 0;
	return text_ok(o->user_agent) && text_ok(o->method) && text_ok(o->url);
}

/* Build a curl list from a NULL-terminated array; 0 or -1. */
static int
slist_add_all(struct curl_slist **list, const char *const *v)
{
	struct curl_slist *l;

	for (; v != NULL && *v != NULL; v++) {
		if ((l = curl_slist_append(*list, *v)) == NULL)
			return -1;
		*list = l;
	}
	return 0;
}

/*
 * The NULL-terminated header array v, then last, as one curl list in a
 * single allocation (nodes first, then the strings): one eb_free() frees
 * it, never curl_slist_free_all(). curl only reads a CURLOPT_HTTPHEADER
 * list, so the asynchronous client need not copy each line twice.
 * NULL when out of memory.
 */
struct curl_slist *
eb_http_slist_block(const char *const *v, const char *last)
{
	struct curl_slist *l;
	size_t n = 1, bytes = strlen(last) + 1, i, len;
	char *p;

	for (i = 0; v != NULL && v[i] != NULL; i++) {
		len = strlen(v[i]) + 1;
		if (bytes > SIZE_MAX - len)
			return NULL;
		bytes += len;
		n++;
	}
	if (n > (SIZE_MAX - bytes) / sizeof(*l) ||
	    (l = eb_malloc(n * sizeof(*l) + bytes)) == NULL)
		return NULL;
	p = (char *)(l + n);
	for (i = 0; i < n; i++) {
		const char *s = i + 1 < n ? v[i] : last;

		len = strlen(s) + 1;
		memcpy(p, s, len);
		l[i].data = p;
		l[i].next = i + 1 < n ? &l[i + 1] : NULL;
		p += len;
	}
	return l;
}

/*
 * The easy handle for this request: the thread's kept one (reset, shared
 * caches attached) or, for requests with test hooks, a private one.
 */
static CURL *
handle_get(int private_handle)
{
	CURL *h;

	if (private_handle)
		return curl_easy_init();
	if ((h = pthread_getspecific(g_handle_key)) != NULL) {
		curl_easy_reset(h);
	} else {
		if ((h = curl_easy_init()) == NULL)
			return NULL;
		if (pthread_setspecific(g_handle_key, h) != 0) {
			curl_easy_cleanup(h);
			return NULL;
		}
	}
	curl_easy_setopt(h, CURLOPT_SHARE, g_share);
	return h;
}

void
eb_http_set_message(struct eb_http_response *resp, const char *s)
{
	snprintf(resp->message, sizeof(resp->message), "%s", s);
}

/* Set every option; returns CURLE_OK or the first failure. */
CURLcode
eb_http_configure(CURL *h, const struct eb_http_options *o,
                  struct fetch_ctx *ctx, struct curl_slist *hdrs,
                  struct curl_slist *resolve, struct curl_slist *connect_to,
                  char *errbuf)
{
	const char *method = o->method;
	long cto, to;
	int https = o->url != NULL && strncmp(o->url, "https://", 8) == 0;
	CURLcode rc = CURLE_OK;

	if (method == NULL)
		method = o->body != NULL ? "POST" : "GET";
	eb_http_timeouts(o, &cto, &to);

#define SET(opt, val)                                                          \
	do {                                                                   \
		if (rc == CURLE_OK)                                            \
			rc = curl_easy_setopt(h, opt, val);                    \
	} while (0)
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_URL, o->url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	/* never let a redirect downgrade an https request */
	SET(CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (o->cafile != NULL)
		SET(CURLOPT_CAINFO, o->cafile);
	SET(CURLOPT_CONNECTTIMEOUT_MS, cto);
	SET(CURLOPT_TIMEOUT_MS, to);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)ctx->body.max);
	SET(CURLOPT_FOLLOWLOCATION, o->follow_redirects ? 1L : 0L);
	SET(CURLOPT_MAXREDIRS, o->max_redirects > 0
	                           ? (long)o->max_redirects
	                           : (long)EB_HTTP_DEFAULT_MAX_REDIRECTS);
	SET(CURLOPT_USERAGENT,
	    o->user_agent != NULL ? o->user_agent : "enrollbridge/" EB_VERSION);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, ctx);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, ctx);
	SET(CURLOPT_HTTPHEADER, hdrs);
	if (resolve != NULL)
		SET(CURLOPT_RESOLVE, resolve);
	if (connect_to != NULL)
		SET(CURLOPT_CONNECT_TO, connect_to);

	if (strcmp(method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		SET(CURLOPT_NOBODY, 1L);
	} else {
		if (strcmp(method, "POST") != 0)
			SET(CURLOPT_CUSTOMREQUEST, method);
		if (o->body != NULL || strcmp(method, "POST") == 0) {
			SET(CURLOPT_POSTFIELDSIZE_LARGE,
			    (curl_off_t)o->body_len);
			SET(CURLOPT_POSTFIELDS, o->body != NULL ? o->body : "");
		}
	}
#undef SET
	return rc;
}

/* Copy what curl knows about the last response into resp. */
int
eb_http_collect(CURL *h, struct eb_http_response *resp)
{
	char *s = NULL;
	curl_off_t t = 0;

	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	if (curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &t) == CURLE_OK)
		resp->total_time_ms = (long)(t / 1000);
	curl_easy_getinfo(h, CURLINFO_REDIRECT_COUNT, &resp->redirect_count);
	if (curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &s) == CURLE_OK &&
	    s != NULL && (resp->effective_url = eb_strdup(s)) == NULL)
		return -1;
	s = NULL;
	if (curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &s) == CURLE_OK &&
	    s != NULL && (resp->redirect_url = eb_strdup(s)) == NULL)
		return -1;
	return 0;
}

static struct eb_http_response *
fetch(const struct eb_http_options *o)
{
	struct eb_http_response *resp;
	struct fetch_ctx ctx;
	struct curl_slist *hdrs = NULL, *resolve = NULL, *connect_to = NULL;
	char errbuf[CURL_ERROR_SIZE];
	int private_handle = o->resolve != NULL || o->connect_to != NULL;
	CURL *h = NULL;
	CURLcode rc;

	if ((resp = eb_calloc(1, sizeof(*resp))) == NULL)
		return NULL;
	memset(&ctx, 0, sizeof(ctx));
	eb_buf_init(&ctx.body, o->max_response_bytes > 0
	                           ? o->max_response_bytes
	                           : EB_HTTP_DEFAULT_MAX_BYTES);
	errbuf[0] = '\0';
	resp->error = EB_HTTP_ERR_OTHER;

	if (o->url == NULL || (strncmp(o->url, "https://", 8) != 0 &&
	                       strncmp(o->url, "http://", 7) != 0)) {
		eb_http_set_message(resp, "not an http(s) URL");
		goto out_body;
	}
	if (o->stream != NULL) {
		eb_http_set_message(resp,
		                    "streaming needs the asynchronous client");
		goto out_body;
	}
	if (eb_http_client_global_init() == -1) {
		eb_http_set_message(resp, "HTTP client initialisation failed");
		goto out_body;
	}
	if (!eb_http_request_text_ok(o)) {
		eb_http_set_message(resp, "request header or user agent with a "
		                          "control character");
		goto out_body;
	}
	/* no "Expect: 100-continue" round trip on POST */
	if (slist_add_all(&hdrs, o->headers) == -1 ||
	    (hdrs = curl_slist_append(hdrs, "Expect:")) == NULL ||
	    slist_add_all(&resolve, o->resolve) == -1 ||
	    slist_add_all(&connect_to, o->connect_to) == -1) {
		eb_http_set_message(resp, "out of memory");
		goto out_lists;
	}
	if ((h = handle_get(private_handle)) == NULL) {
		eb_http_set_message(resp, "cannot create a curl handle");
		goto out_lists;
	}
	rc = eb_http_configure(h, o, &ctx, hdrs, resolve, connect_to, errbuf);
	if (rc != CURLE_OK) {
		eb_http_set_message(resp, curl_easy_strerror(rc));
		goto out_handle;
	}
	rc = curl_easy_perform(h);
	if (eb_http_collect(h, resp) == -1)
		ctx.oom = 1;
	if (rc != CURLE_OK || ctx.oom) {
		resp->error = eb_http_classify(rc, &ctx);
		if (ctx.too_large)
			eb_http_set_message(
			    resp, "response larger than the configured limit");
		else if (ctx.oom)
			eb_http_set_message(resp, "out of memory");
		else
			eb_http_set_message(
			    resp, errbuf[0] ? errbuf : curl_easy_strerror(rc));
		goto out_handle;
	}
	resp->error = EB_HTTP_OK;

out_handle:
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	if (private_handle)
		curl_easy_cleanup(h);
out_lists:
	curl_slist_free_all(hdrs);
	curl_slist_free_all(resolve);
	curl_slist_free_all(connect_to);
out_body:
	if (eb_http_response_take(resp, &ctx) == -1) {
		eb_http_response_free(resp);
		return NULL;
	}
	return resp;
}

int
eb_http_response_take(struct eb_http_response *resp, struct fetch_ctx *ctx)
{
	resp->headers = ctx->headers;
	resp->nheaders = ctx->nheaders;
	ctx->headers = NULL;
	ctx->nheaders = 0;
	resp->body = eb_buf_detach(&ctx->body, &resp->body_len);
	if (resp->body == NULL) {
		resp->body_len = 0;
		if ((resp->body = eb_strdup("")) == NULL)
			return -1;
	}
	return 0;
}

void
eb_http_timeouts(const struct eb_http_options *o, long *connect_ms,
                 long *total_ms)
{
	*connect_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms
	              : o->connect_timeout > 0
	                  ? o->connect_timeout * 1000L
	                  : EB_HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
	*total_ms = o->timeout_ms > 0 ? o->timeout_ms
	            : o->timeout > 0  ? o->timeout * 1000L
	                              : EB_HTTP_DEFAULT_TIMEOUT_MS;
}

void
eb_http_response_free(struct eb_http_response *resp)
{
	if (resp == NULL)
		return;
	eb_http_headers_free(resp->headers, resp->nheaders);
	eb_free(resp->body);
	eb_free(resp->effective_url);
	eb_free(resp->redirect_url);
	eb_free(resp);
}

const char *
eb_http_response_header_nth(const struct eb_http_response *resp,
                            const char *name, size_t nth)
{
	size_t i;

	for (i = 0; i < resp->nheaders; i++)
		if (eb_str_ieq(resp->headers[i].name, name) && nth-- == 0)
			return resp->headers[i].value;
	return NULL;
}

const char *
eb_http_response_header(const struct eb_http_response *resp, const char *name)
{
	return eb_http_response_header_nth(resp, name, 0);
}

size_t
eb_http_response_header_count(const struct eb_http_response *resp,
                              const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < resp->nheaders; i++)
		if (eb_str_ieq(resp->headers[i].name, name))
			n++;
	return n;
}

int
eb_http_urlencode(struct eb_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;
	char enc[3];

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			if (eb_buf_addc(b, (char)c) == -1)
				return -1;
			continue;
		}
		enc[0] = '%';
		enc[1] = hex[c >> 4];
		enc[2] = hex[c & 0xf];
		if (eb_buf_add(b, enc, 3) == -1)
			return -1;
	}
	return 0;
}

int
eb_http_form_add(struct eb_buf *b, const char *name, const char *value)
{
	if (b->len > 0 && eb_buf_addc(b, '&') == -1)
		return -1;
	if (eb_http_urlencode(b, name) == -1 || eb_buf_addc(b, '=') == -1 ||
	    eb_http_urlencode(b, value) == -1)
		return -1;
	return 0;
}

char *
eb_http_form_encode(const char *const *kv)
{
	struct eb_buf b;
	char *s;

	eb_buf_init(&b, (size_t)1 << 30);
	for (; kv[0] != NULL && kv[1] != NULL; kv += 2) {
		if (eb_http_form_add(&b, kv[0], kv[1]) == -1) {
			eb_buf_finish_secret(&b);
			return NULL;
		}
	}
	if ((s = eb_buf_detach(&b, NULL)) == NULL)
		s = eb_strdup("");
	return s;
}

struct eb_http_response *
eb_http_fetch(const struct eb_http_options *opts)
{
	struct eb_http_options o;
	struct eb_http_response *resp;
	const struct eb_http_options *use;
	const char **hv;
	char line[96];

	if ((use = eb_http_with_trace(opts, &o, &hv, line)) == NULL)
		return NULL;
	resp = fetch(use);
	eb_free(hv);
	return resp;
}
