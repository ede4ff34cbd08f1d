/*
 * The upstream HTTP client: the only file that includes curl. See client.h
 * for the contract. It owns curl's global state, the share handle (DNS cache
 * and TLS sessions, guarded by one pthread mutex per kind of data) and one
 * kept easy handle per thread, which carries that thread's keep-alive
 * connections from one request to the next.
 *
 * The asynchronous client (eb_http_fetch_async) is a few more threads
 * ("engines", one per core up to four), started on first use, each driving
 * a curl multi handle: callers queue a transfer on the next engine in turn
 * under its mutex and wake it; the engine runs all its transfers at once,
 * reusing its multi handle's kept-alive connections, and calls each
 * caller's completion function when a transfer ends.
 */
#include "http/client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>

#include <curl/curl.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"

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

/* Most transfers the asynchronous client holds (queued or running). */
#define ASYNC_MAX_TRANSFERS 4096
/* Idle easy handles kept for reuse, and idle connections kept alive, per
 * engine. */
#define ASYNC_MAX_IDLE_HANDLES 256
#define ASYNC_MAX_CONNECTS     1024
/* Most engines (threads with their multi handle); one per core up to it. */
#define ASYNC_MAX_ENGINES 4

struct async_xfer;

/*
 * One engine of the asynchronous client: a thread driving a multi handle.
 * Transfers are spread over the engines in turn; each engine keeps its own
 * connections alive.
 */
struct async_engine {
	pthread_mutex_t lock; /* guards everything but multi */
	int stopping;
	pthread_t thread;
	CURLM *multi; /* the thread's alone once started */
	/* queued, not yet given to multi: oldest first */
	struct async_xfer *incoming, **incoming_tail;
	struct async_xfer *idle; /* finished transfers: handles to reuse */
	size_t nidle;
	size_t pending; /* queued + running */
};

/* The asynchronous client; see eb_http_fetch_async(). */
static pthread_mutex_t g_async_lock = PTHREAD_MUTEX_INITIALIZER;
static struct async_engine g_engines[ASYNC_MAX_ENGINES];
static atomic_uint g_nengines; /* 0 until started */
static atomic_uint g_next_engine;

/* State of one transfer, seen by the callbacks. */
struct fetch_ctx {
	struct eb_buf body;
	struct eb_http_header *headers;
	size_t nheaders;
	size_t header_bytes;
	int too_large;
	int oom;
};

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

static void async_stop(void);

void
eb_http_client_global_cleanup(void)
{
	CURL *h;
	int i;

	async_stop();
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

static void
headers_free(struct eb_http_header *h, size_t n)
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
static int
header_line(struct fetch_ctx *ctx, const char *p, size_t len)
{
	struct eb_http_header *h;
	const char *colon, *v, *end;
	char *nv;
	size_t old;

	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* a new response (1xx, redirect): forget the previous one */
		headers_free(ctx->headers, ctx->nheaders);
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
	if (header_line(ctx, p, l) == -1)
		return 0;
	return len;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct fetch_ctx *ctx = arg;
	size_t len = size * n;

	if (eb_buf_add(&ctx->body, p, len) == -1) {
		if (len > ctx->body.max || ctx->body.len > ctx->body.max - len)
			ctx->too_large = 1;
		else
			ctx->oom = 1;
		return 0;
	}
	return len;
}

static enum eb_http_error
classify(CURLcode rc, const struct fetch_ctx *ctx)
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
static struct curl_slist *
slist_block(const char *const *v, const char *last)
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

static void
set_message(struct eb_http_response *resp, const char *s)
{
	snprintf(resp->message, sizeof(resp->message), "%s", s);
}

/* Set every option; returns CURLE_OK or the first failure. */
static CURLcode
configure(CURL *h, const struct eb_http_options *o, struct fetch_ctx *ctx,
          struct curl_slist *hdrs, struct curl_slist *resolve,
          struct curl_slist *connect_to, char *errbuf)
{
	const char *method = o->method;
	long cto, to;
	int https = o->url != NULL && strncmp(o->url, "https://", 8) == 0;
	CURLcode rc = CURLE_OK;

	if (method == NULL)
		method = o->body != NULL ? "POST" : "GET";
	cto = o->connect_timeout_ms > 0 ? o->connect_timeout_ms
	      : o->connect_timeout > 0  ? o->connect_timeout * 1000L
	                                : EB_HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
	to = o->timeout_ms > 0 ? o->timeout_ms
	     : o->timeout > 0  ? o->timeout * 1000L
	                       : EB_HTTP_DEFAULT_TIMEOUT_MS;

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
static int
collect(CURL *h, struct eb_http_response *resp)
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

struct eb_http_response *
eb_http_fetch(const struct eb_http_options *o)
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
		set_message(resp, "not an http(s) URL");
		goto out_body;
	}
	if (eb_http_client_global_init() == -1) {
		set_message(resp, "HTTP client initialisation failed");
		goto out_body;
	}
	/* no "Expect: 100-continue" round trip on POST */
	if (slist_add_all(&hdrs, o->headers) == -1 ||
	    (hdrs = curl_slist_append(hdrs, "Expect:")) == NULL ||
	    slist_add_all(&resolve, o->resolve) == -1 ||
	    slist_add_all(&connect_to, o->connect_to) == -1) {
		set_message(resp, "out of memory");
		goto out_lists;
	}
	if ((h = handle_get(private_handle)) == NULL) {
		set_message(resp, "cannot create a curl handle");
		goto out_lists;
	}
	rc = configure(h, o, &ctx, hdrs, resolve, connect_to, errbuf);
	if (rc != CURLE_OK) {
		set_message(resp, curl_easy_strerror(rc));
		goto out_handle;
	}
	rc = curl_easy_perform(h);
	if (collect(h, resp) == -1)
		ctx.oom = 1;
	if (rc != CURLE_OK || ctx.oom) {
		resp->error = classify(rc, &ctx);
		if (ctx.too_large)
			set_message(
			    resp, "response larger than the configured limit");
		else if (ctx.oom)
			set_message(resp, "out of memory");
		else
			set_message(resp, errbuf[0] ? errbuf
			                            : curl_easy_strerror(rc));
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
	resp->headers = ctx.headers;
	resp->nheaders = ctx.nheaders;
	resp->body = eb_buf_detach(&ctx.body, &resp->body_len);
	if (resp->body == NULL) {
		resp->body_len = 0;
		if ((resp->body = eb_strdup("")) == NULL) {
			eb_http_response_free(resp);
			return NULL;
		}
	}
	return resp;
}

/* ---- the asynchronous client ---- */

/* One transfer: the copies of the caller's options it needs to outlive
 * eb_http_fetch_async(), and curl's state. */
struct async_xfer {
	struct async_xfer *next, *prev; /* prev: in the running list only */
	struct async_engine *e;
	CURL *h;
	struct fetch_ctx ctx;
	struct curl_slist *hdrs; /* one block: see slist_block() */
	char *body;
	eb_http_done_fn done;
	void *arg;
	char errbuf[CURL_ERROR_SIZE];
};

static void
xfer_free(struct async_xfer *x)
{
	if (x == NULL)
		return;
	if (x->h != NULL)
		curl_easy_cleanup(x->h);
	eb_free(x->hdrs);
	headers_free(x->ctx.headers, x->ctx.nheaders);
	eb_buf_finish(&x->ctx.body);
	eb_free(x->body);
	eb_free(x);
}

/* Drop a finished transfer's request state; keep its easy handle for the
 * next one when there is room (called with e->lock held). */
static void
xfer_recycle_locked(struct async_engine *e, struct async_xfer *x)
{
	eb_free(x->hdrs);
	x->hdrs = NULL;
	headers_free(x->ctx.headers, x->ctx.nheaders);
	eb_buf_finish(&x->ctx.body);
	memset(&x->ctx, 0, sizeof(x->ctx));
	eb_free(x->body);
	x->body = NULL;
	x->done = NULL;
	x->arg = NULL;
	if (e->stopping || e->nidle >= ASYNC_MAX_IDLE_HANDLES) {
		xfer_free(x);
		return;
	}
	curl_easy_reset(x->h);
	x->next = e->idle;
	e->idle = x;
	e->nidle++;
}

/* Build the response of a finished transfer, hand it to its owner, and
 * recycle the transfer. Runs on the engine's thread. */
static void
xfer_finish(struct async_xfer *x, CURLcode rc, const char *why)
{
	struct async_engine *e = x->e;
	struct eb_http_response *resp;
	eb_http_done_fn done = x->done;
	void *arg = x->arg;

	if ((resp = eb_calloc(1, sizeof(*resp))) != NULL) {
		if (why != NULL) {
			resp->error = EB_HTTP_ERR_OTHER;
			set_message(resp, why);
		} else {
			if (collect(x->h, resp) == -1)
				x->ctx.oom = 1;
			if (rc != CURLE_OK || x->ctx.oom) {
				resp->error = classify(rc, &x->ctx);
				if (x->ctx.too_large)
					set_message(resp, "response larger "
					                  "than the configured "
					                  "limit");
				else if (x->ctx.oom)
					set_message(resp, "out of memory");
				else
					set_message(
					    resp, x->errbuf[0]
					              ? x->errbuf
					              : curl_easy_strerror(rc));
			}
		}
		resp->headers = x->ctx.headers;
		resp->nheaders = x->ctx.nheaders;
		x->ctx.headers = NULL;
		x->ctx.nheaders = 0;
		resp->body = eb_buf_detach(&x->ctx.body, &resp->body_len);
		if (resp->body == NULL) {
			resp->body_len = 0;
			if ((resp->body = eb_strdup("")) == NULL) {
				eb_http_response_free(resp);
				resp = NULL;
			}
		}
	}
	pthread_mutex_lock(&e->lock);
	e->pending--;
	xfer_recycle_locked(e, x);
	pthread_mutex_unlock(&e->lock);
	done(resp, arg);
}

static void *
engine_main(void *arg)
{
	struct async_engine *e = arg;
	struct async_xfer *in, *x, *running = NULL;
	struct CURLMsg *msg;
	char *priv;
	int nrunning = 0, left, stopping;
	CURLMcode mc;

	for (;;) {
		pthread_mutex_lock(&e->lock);
		in = e->incoming;
		e->incoming = NULL;
		e->incoming_tail = &e->incoming;
		stopping = e->stopping;
		pthread_mutex_unlock(&e->lock);
		while ((x = in) != NULL) {
			in = x->next;
			if (stopping) {
				xfer_finish(x, CURLE_OK,
				            "client shutting down");
				continue;
			}
			if ((mc = curl_multi_add_handle(e->multi, x->h)) !=
			    CURLM_OK) {
				xfer_finish(x, CURLE_OK,
				            curl_multi_strerror(mc));
				continue;
			}
			x->prev = NULL;
			x->next = running;
			if (running != NULL)
				running->prev = x;
			running = x;
		}
		if (stopping) {
			while ((x = running) != NULL) {
				running = x->next;
				curl_multi_remove_handle(e->multi, x->h);
				xfer_finish(x, CURLE_OK,
				            "client shutting down");
			}
			break;
		}
		curl_multi_perform(e->multi, &nrunning);
		while ((msg = curl_multi_info_read(e->multi, &left)) != NULL) {
			priv = NULL;
			if (msg->msg != CURLMSG_DONE ||
			    curl_easy_getinfo(msg->easy_handle,
			                      CURLINFO_PRIVATE,
			                      &priv) != CURLE_OK ||
			    priv == NULL)
				continue;
			x = (struct async_xfer *)(void *)priv;
			if (x->prev != NULL)
				x->prev->next = x->next;
			else
				running = x->next;
			if (x->next != NULL)
				x->next->prev = x->prev;
			curl_multi_remove_handle(e->multi, x->h);
			xfer_finish(x, msg->data.result, NULL);
		}
		/* until a socket is ready, a timeout is due, or a wakeup */
		curl_multi_poll(e->multi, NULL, 0, 1000, NULL);
	}
	return NULL;
}

static unsigned
engine_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1                   ? 1
	       : n > ASYNC_MAX_ENGINES ? ASYNC_MAX_ENGINES
	                               : (unsigned)n;
}

/* Start the engines once. Returns 0 or -1. */
static int
async_start(void)
{
	struct async_engine *e;
	unsigned i, n;
	int rc = 0;

	if (atomic_load(&g_nengines) > 0)
		return 0;
	pthread_mutex_lock(&g_async_lock);
	if (atomic_load(&g_nengines) > 0)
		goto out;
	rc = -1;
	if (eb_http_client_global_init() == -1)
		goto out;
	n = engine_count();
	for (i = 0; i < n; i++) {
		e = &g_engines[i];
		memset(e, 0, sizeof(*e));
		pthread_mutex_init(&e->lock, NULL);
		e->incoming_tail = &e->incoming;
		if ((e->multi = curl_multi_init()) == NULL)
			break;
		curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS,
		                  (long)ASYNC_MAX_CONNECTS);
		if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
			curl_multi_cleanup(e->multi);
			break;
		}
	}
	if (i == 0)
		goto out;
	atomic_store(&g_nengines, i); /* fewer than asked: still serving */
	rc = 0;
out:
	pthread_mutex_unlock(&g_async_lock);
	return rc;
}

static void
async_stop(void)
{
	struct async_engine *e;
	struct async_xfer *x;
	unsigned i, n;

	pthread_mutex_lock(&g_async_lock);
	n = atomic_load(&g_nengines);
	for (i = 0; i < n; i++) {
		e = &g_engines[i];
		pthread_mutex_lock(&e->lock);
		e->stopping = 1;
		curl_multi_wakeup(e->multi);
		pthread_mutex_unlock(&e->lock);
	}
	for (i = 0; i < n; i++) {
		e = &g_engines[i];
		pthread_join(e->thread, NULL);
		while ((x = e->idle) != NULL) {
			e->idle = x->next;
			xfer_free(x);
		}
		curl_multi_cleanup(e->multi);
		pthread_mutex_destroy(&e->lock);
		memset(e, 0, sizeof(*e));
	}
	atomic_store(&g_nengines, 0);
	pthread_mutex_unlock(&g_async_lock);
}

int
eb_http_fetch_async(const struct eb_http_options *opts, eb_http_done_fn done,
                    void *arg)
{
	struct eb_http_options o;
	struct async_engine *e;
	struct async_xfer *x = NULL;
	unsigned n;
	CURLcode rc;

	if (opts == NULL || done == NULL || opts->resolve != NULL ||
	    opts->connect_to != NULL || opts->url == NULL ||
	    (strncmp(opts->url, "https://", 8) != 0 &&
	     strncmp(opts->url, "http://", 7) != 0))
		return -1;
	if (async_start() == -1 || (n = atomic_load(&g_nengines)) == 0)
		return -1;
	e = &g_engines[atomic_fetch_add(&g_next_engine, 1) % n];
	/* a kept transfer (and its easy handle), or a new one */
	pthread_mutex_lock(&e->lock);
	if (e->stopping || e->pending >= ASYNC_MAX_TRANSFERS / n) {
		pthread_mutex_unlock(&e->lock);
		return -1;
	}
	if ((x = e->idle) != NULL) {
		e->idle = x->next;
		e->nidle--;
	}
	pthread_mutex_unlock(&e->lock);
	if (x == NULL) {
		if ((x = eb_calloc(1, sizeof(*x))) == NULL)
			return -1;
		if ((x->h = curl_easy_init()) == NULL)
			goto fail;
	}
	x->e = e;
	x->next = NULL;
	x->done = done;
	x->arg = arg;
	x->errbuf[0] = '\0';
	eb_buf_init(&x->ctx.body, opts->max_response_bytes > 0
	                              ? opts->max_response_bytes
	                              : EB_HTTP_DEFAULT_MAX_BYTES);
	o = *opts;
	if (opts->body != NULL) {
		if ((x->body = eb_malloc(opts->body_len + 1)) == NULL)
			goto fail;
		if (opts->body_len > 0)
			memcpy(x->body, opts->body, opts->body_len);
		x->body[opts->body_len] = '\0';
		o.body = x->body;
	}
	/* curl copies the strings it is given; the header list and the body
	 * are ours to keep until the transfer ends */
	if ((x->hdrs = slist_block(opts->headers, "Expect:")) == NULL)
		goto fail;
	rc = configure(x->h, &o, &x->ctx, x->hdrs, NULL, NULL, x->errbuf);
	if (rc != CURLE_OK)
		goto fail;
	curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
	pthread_mutex_lock(&e->lock);
	if (e->stopping) {
		pthread_mutex_unlock(&e->lock);
		goto fail;
	}
	*e->incoming_tail = x;
	e->incoming_tail = &x->next;
	e->pending++;
	curl_multi_wakeup(e->multi);
	pthread_mutex_unlock(&e->lock);
	return 0;
fail:
	xfer_free(x);
	return -1;
}

size_t
eb_http_async_pending(void)
{
	unsigned i, n = atomic_load(&g_nengines);
	size_t total = 0;

	for (i = 0; i < n; i++) {
		pthread_mutex_lock(&g_engines[i].lock);
		total += g_engines[i].pending;
		pthread_mutex_unlock(&g_engines[i].lock);
	}
	return total;
}

void
eb_http_response_free(struct eb_http_response *resp)
{
	if (resp == NULL)
		return;
	headers_free(resp->headers, resp->nheaders);
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
