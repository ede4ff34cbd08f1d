/*
 * The asynchronous HTTP client (client.h: eb_http_fetch_async and
 * eb_http_loop). One struct eb_http_loop drives one curl multi handle with
 * curl's socket interface: curl tells us which sockets to watch and when
 * its next timeout is due (sock_cb, timer_cb), we keep those in an epoll
 * set of the loop's own, and eb_http_loop_run() hands curl only the
 * sockets that are ready. The work per event is thus independent of how
 * many transfers are under way, unlike curl_multi_perform + poll.
 *
 * A loop runs on one thread: either a thread of the caller's (the HTTP
 * server's workers each run one inside their event loop, so a proxied
 * request and its upstream transfer stay on one thread and no hand-off
 * between threads is needed), or one of a few threads of this file's own
 * ("engines", started on first use) for callers that have no loop.
 * Transfers from another thread reach a loop through a queue under its
 * mutex and an eventfd in its epoll set.
 */
#include "http/client.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "http/client_int.h"

/* Most transfers the asynchronous client holds (queued or running). */
#define ASYNC_MAX_TRANSFERS 4096
/* Idle easy handles kept for reuse, and idle connections kept alive, per
 * loop. */
#define ASYNC_MAX_IDLE_HANDLES 256
#define ASYNC_MAX_CONNECTS     1024
/* Most engines (threads of our own, each running a loop). */
#define ASYNC_MAX_ENGINES 4
/* Socket events taken per epoll_wait. */
#define LOOP_EVENTS 64

/* One transfer: the copies of the caller's options it needs to outlive
 * eb_http_fetch_async(), and curl's state. */
struct async_xfer {
	struct eb_http_xfer base;       /* first: see client_int.h */
	struct async_xfer *next, *prev; /* prev: in the running list only */
	struct eb_http_loop *l;
	CURL *h;
	struct fetch_ctx ctx;
	struct curl_slist *hdrs; /* one block: see eb_http_slist_block() */
	char *body;
	eb_http_done_fn done;
	void *arg;
	int doomed; /* to be ended by the loop (see eb_http_xfer_resume) */
	char errbuf[CURL_ERROR_SIZE];
};

struct eb_http_loop {
	CURLM *multi;         /* the loop thread's alone */
	int epfd;             /* curl's sockets and wakefd */
	int wakefd;           /* eventfd: queued transfers, stop */
	pthread_mutex_t lock; /* guards the fields up to the next comment */
	struct async_xfer *incoming, **incoming_tail; /* oldest first */
	struct async_xfer *idle; /* finished transfers: handles to reuse */
	size_t nidle;
	int stopping;
	/* the loop thread's alone: */
	struct async_xfer *running;
	size_t ndoomed;        /* running transfers with doomed set */
	long long deadline_ms; /* curl's timer (CLOCK_MONOTONIC ms), -1 none */
	struct h1_loop *h1;    /* the native client; NULL: curl only */
	/* engines only */
	pthread_t thread;
};

/*
 * epoll data of the loop's set: a curl socket or the eventfd as fd << 1,
 * a native connection (client_h1.c) as its address | 1.
 */
#define FD_DATA(fd) ((uint64_t)(unsigned)(fd) << 1)

/* Every loop's transfers, queued or running. */
static atomic_size_t g_pending;
/* Transfers given to curl since start. */
static atomic_ullong g_curl_xfers;
/* The loop eb_http_fetch_async() uses on this thread (eb_http_loop_bind). */
static _Thread_local struct eb_http_loop *t_loop;

/* The engines; see eb_http_fetch_async(). */
static pthread_mutex_t g_engine_lock = PTHREAD_MUTEX_INITIALIZER;
static struct eb_http_loop *g_engines[ASYNC_MAX_ENGINES];
static atomic_uint g_nengines; /* 0 until started */
static atomic_uint g_next_engine;

void
eb_http_async_pending_begin(void)
{
	atomic_fetch_add(&g_pending, 1);
}

void
eb_http_async_pending_done(void)
{
	atomic_fetch_sub(&g_pending, 1);
}

/*
 * May loops use the native client (client_h1.c)? Not when the environment
 * names a proxy, which curl would use and it would not; and not when
 * ENROLLBRIDGE_UPSTREAM_CURL=1 asks for curl alone (for comparisons and
 * diagnosis).
 */
static int
native_allowed(void)
{
	static const char *const vars[] = {"http_proxy", "HTTP_PROXY",
	                                   "all_proxy", "ALL_PROXY", NULL};
	const char *v;
	size_t i;

	for (i = 0; vars[i] != NULL; i++)
		if ((v = getenv(vars[i])) != NULL && *v != '\0')
			return 0;
	v = getenv("ENROLLBRIDGE_UPSTREAM_CURL");
	return v == NULL || strcmp(v, "1") != 0;
}

static void
xfer_free(struct async_xfer *x)
{
	if (x == NULL)
		return;
	if (x->h != NULL)
		curl_easy_cleanup(x->h);
	eb_free(x->hdrs);
	eb_http_headers_free(x->ctx.headers, x->ctx.nheaders);
	eb_buf_finish(&x->ctx.body);
	eb_free(x->body);
	eb_free(x);
}

/* Drop a finished transfer's request state; keep its easy handle for the
 * next one when there is room. */
static void
xfer_recycle(struct eb_http_loop *l, struct async_xfer *x)
{
	eb_free(x->hdrs);
	x->hdrs = NULL;
	eb_http_headers_free(x->ctx.headers, x->ctx.nheaders);
	eb_buf_finish(&x->ctx.body);
	memset(&x->ctx, 0, sizeof(x->ctx));
	eb_free(x->body);
	x->body = NULL;
	x->done = NULL;
	x->arg = NULL;
	pthread_mutex_lock(&l->lock);
	if (l->stopping || l->nidle >= ASYNC_MAX_IDLE_HANDLES) {
		pthread_mutex_unlock(&l->lock);
		xfer_free(x);
		return;
	}
	curl_easy_reset(x->h);
	x->next = l->idle;
	l->idle = x;
	l->nidle++;
	pthread_mutex_unlock(&l->lock);
}

/* Build the response of a finished transfer, hand it to its owner, and
 * recycle the transfer. Runs on the loop's thread. */
static void
xfer_finish(struct async_xfer *x, CURLcode rc, const char *why)
{
	struct eb_http_response *resp;
	eb_http_done_fn done = x->done;
	void *arg = x->arg;
	struct eb_log_ctx lctx = x->ctx.lctx;

	/* a stream whose receiver refused bytes, or that passed the limit,
	 * is never complete, whatever curl made of the refusal */
	if (rc == CURLE_OK && (x->ctx.stream_aborted || x->ctx.too_large))
		rc = CURLE_WRITE_ERROR;
	if ((resp = eb_calloc(1, sizeof(*resp))) != NULL) {
		if (why != NULL) {
			resp->error = EB_HTTP_ERR_OTHER;
			eb_http_set_message(resp, why);
		} else {
			if (eb_http_collect(x->h, resp) == -1)
				x->ctx.oom = 1;
			if (rc != CURLE_OK || x->ctx.oom) {
				resp->error = eb_http_classify(rc, &x->ctx);
				if (x->ctx.too_large)
					eb_http_set_message(
					    resp, "response larger "
					          "than the configured "
					          "limit");
				else if (x->ctx.stream_aborted)
					eb_http_set_message(
					    resp, "ended by the receiver");
				else if (x->ctx.oom)
					eb_http_set_message(resp,
					                    "out of memory");
				else
					eb_http_set_message(
					    resp, x->errbuf[0]
					              ? x->errbuf
					              : curl_easy_strerror(rc));
			}
		}
		if (eb_http_response_take(resp, &x->ctx) == -1) {
			eb_http_response_free(resp);
			resp = NULL;
		}
	}
	atomic_fetch_sub(&g_pending, 1);
	xfer_recycle(x->l, x);
	eb_http_call_done(&lctx, done, resp, arg);
}

/* Give x to curl on the loop's thread; on failure it is finished. */
static void
xfer_start(struct eb_http_loop *l, struct async_xfer *x)
{
	CURLMcode mc;

	if ((mc = curl_multi_add_handle(l->multi, x->h)) != CURLM_OK) {
		xfer_finish(x, CURLE_OK, curl_multi_strerror(mc));
		return;
	}
	x->prev = NULL;
	x->next = l->running;
	if (l->running != NULL)
		l->running->prev = x;
	l->running = x;
}

static void
running_unlink(struct eb_http_loop *l, struct async_xfer *x)
{
	if (x->doomed) {
		x->doomed = 0;
		l->ndoomed--;
	}
	if (x->prev != NULL)
		x->prev->next = x->next;
	else
		l->running = x->next;
	if (x->next != NULL)
		x->next->prev = x->prev;
	x->next = x->prev = NULL;
}

/* curl: watch socket s for what (CURLMOPT_SOCKETFUNCTION). socketp is
 * non-NULL once s is in the epoll set. */
static int
sock_cb(CURL *h, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct eb_http_loop *l = userp;
	struct epoll_event ev;

	(void)h;
	if (what == CURL_POLL_REMOVE) {
		/* curl may have closed it already: then it left the set */
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, s, NULL);
		curl_multi_assign(l->multi, s, NULL);
		return 0;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) |
	            ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
	ev.data.u64 = FD_DATA(s);
	if (socketp != NULL) {
		if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, s, &ev) == 0)
			return 0;
		if (errno != ENOENT)
			goto fail;
	}
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, s, &ev) == -1 &&
	    (errno != EEXIST ||
	     epoll_ctl(l->epfd, EPOLL_CTL_MOD, s, &ev) == -1))
		goto fail;
	curl_multi_assign(l->multi, s, l);
	return 0;
fail:
	log_warn("HTTP client: epoll_ctl on an upstream socket");
	return -1; /* curl fails the transfers on s */
}

/* curl: call back in timeout_ms (CURLMOPT_TIMERFUNCTION); -1: never. */
static int
timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct eb_http_loop *l = userp;

	(void)m;
	l->deadline_ms = timeout_ms < 0 ? -1 : eb_mono_ms() + timeout_ms;
	return 0;
}

/* Finish the transfers curl says are done. Returns how many. */
static size_t
reap(struct eb_http_loop *l)
{
	struct async_xfer *x;
	struct CURLMsg *msg;
	char *priv;
	size_t n = 0;
	int left;

	while ((msg = curl_multi_info_read(l->multi, &left)) != NULL) {
		priv = NULL;
		if (msg->msg != CURLMSG_DONE ||
		    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		                      &priv) != CURLE_OK ||
		    priv == NULL)
			continue;
		x = (struct async_xfer *)(void *)priv;
		running_unlink(l, x);
		curl_multi_remove_handle(l->multi, x->h);
		xfer_finish(x, msg->data.result, NULL);
		n++;
	}
	return n;
}

/* Take the transfers other threads queued (oldest first), and with stop
 * set refuse any more. */
static struct async_xfer *
incoming_take(struct eb_http_loop *l, int stop)
{
	struct async_xfer *in;

	pthread_mutex_lock(&l->lock);
	if (stop)
		l->stopping = 1;
	in = l->incoming;
	l->incoming = NULL;
	l->incoming_tail = &l->incoming;
	pthread_mutex_unlock(&l->lock);
	return in;
}

/* Start what other threads queued. */
static void
take_incoming(struct eb_http_loop *l)
{
	struct async_xfer *in, *x;
	uint64_t v;

	if (read(l->wakefd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		log_warn("HTTP client: reading the wake-up eventfd");
	in = incoming_take(l, 0);
	while ((x = in) != NULL) {
		in = x->next;
		x->next = NULL;
		xfer_start(l, x);
	}
}

struct eb_http_loop *
eb_http_loop_new(void)
{
	struct eb_http_loop *l;
	struct epoll_event ev;

	if (eb_http_client_global_init() == -1)
		return NULL;
	if ((l = eb_calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->epfd = l->wakefd = -1;
	l->deadline_ms = -1;
	l->incoming_tail = &l->incoming;
	pthread_mutex_init(&l->lock, NULL);
	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1)
		goto fail;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.u64 = FD_DATA(l->wakefd);
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) == -1)
		goto fail;
	if ((l->multi = curl_multi_init()) == NULL)
		goto fail;
	if (curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS,
	                      (long)ASYNC_MAX_CONNECTS) != CURLM_OK ||
	    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, sock_cb) !=
	        CURLM_OK ||
	    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l) != CURLM_OK ||
	    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, timer_cb) !=
	        CURLM_OK ||
	    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l) != CURLM_OK)
		goto fail;
	if (native_allowed() && (l->h1 = eb_h1_loop_new(l->epfd)) == NULL)
		goto fail;
	return l;
fail:
	log_warn("HTTP client: cannot set up an event loop");
	eb_http_loop_free(l);
	return NULL;
}

int
eb_http_loop_fd(const struct eb_http_loop *l)
{
	return l->epfd;
}

int
eb_http_loop_timeout(const struct eb_http_loop *l)
{
	long long left;
	int t = -1, n = eb_h1_timeout(l->h1);

	if (l->ndoomed > 0)
		return 0; /* eb_http_loop_run() ends them */
	if (l->deadline_ms >= 0) {
		left = l->deadline_ms - eb_mono_ms();
		t = left <= 0 ? 0 : left > 3600000 ? 3600000 : (int)left;
	}
	return n >= 0 && (t < 0 || n < t) ? n : t;
}

/* End the transfers a failed resume doomed. Returns how many. */
static size_t
end_doomed(struct eb_http_loop *l)
{
	struct async_xfer *x;
	size_t n = 0;

again:
	for (x = l->running; x != NULL && l->ndoomed > 0; x = x->next)
		if (x->doomed) {
			running_unlink(l, x);
			curl_multi_remove_handle(l->multi, x->h);
			xfer_finish(x, CURLE_WRITE_ERROR, NULL);
			n++;
			goto again; /* done may have started transfers */
		}
	return n;
}

size_t
eb_http_loop_run(struct eb_http_loop *l, int wait_ms)
{
	struct epoll_event ev[LOOP_EVENTS];
	int n, i, t, fd, flags, nrunning;
	size_t ended = 0;

	t = eb_http_loop_timeout(l);
	if (t >= 0 && (wait_ms < 0 || t < wait_ms))
		wait_ms = t;
	n = epoll_wait(l->epfd, ev, LOOP_EVENTS, wait_ms);
	for (i = 0; i < n; i++) {
		if (ev[i].data.u64 & 1) {
			ended += eb_h1_event(
			    l->h1, (void *)(uintptr_t)(ev[i].data.u64 & ~1ULL),
			    ev[i].events);
			continue;
		}
		fd = (int)(ev[i].data.u64 >> 1);
		if (fd == l->wakefd) {
			take_incoming(l);
			continue;
		}
		flags =
		    ((ev[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
		    ((ev[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
		    ((ev[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR
		                                            : 0);
		curl_multi_socket_action(l->multi, fd, flags, &nrunning);
	}
	if (l->deadline_ms >= 0 && l->deadline_ms <= eb_mono_ms()) {
		l->deadline_ms = -1;
		curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0,
		                         &nrunning);
	}
	if (l->ndoomed > 0)
		ended += end_doomed(l);
	if (eb_h1_timeout(l->h1) == 0)
		ended += eb_h1_expire(l->h1);
	ended += eb_h1_kick(l->h1);
	eb_h1_reap(l->h1);
	return ended + reap(l);
}

void
eb_http_loop_bind(struct eb_http_loop *l)
{
	t_loop = l;
}

void
eb_http_loop_free(struct eb_http_loop *l)
{
	struct async_xfer *x, *in;

	if (l == NULL)
		return;
	if (t_loop == l)
		t_loop = NULL;
	in = incoming_take(l, 1);
	while ((x = in) != NULL) {
		in = x->next;
		xfer_finish(x, CURLE_OK, "client shutting down");
	}
	eb_h1_loop_free(l->h1);
	l->h1 = NULL;
	while ((x = l->running) != NULL) {
		running_unlink(l, x);
		curl_multi_remove_handle(l->multi, x->h);
		xfer_finish(x, CURLE_OK, "client shutting down");
	}
	while ((x = l->idle) != NULL) {
		l->idle = x->next;
		xfer_free(x);
	}
	if (l->multi != NULL)
		curl_multi_cleanup(l->multi);
	if (l->wakefd != -1)
		close(l->wakefd);
	if (l->epfd != -1)
		close(l->epfd);
	pthread_mutex_destroy(&l->lock);
	eb_free(l);
}

/* ---- engines: loops on threads of our own ---- */

static void *
engine_main(void *arg)
{
	struct eb_http_loop *l = arg;
	int stopping = 0;

	eb_http_loop_bind(l);
	while (!stopping) {
		eb_http_loop_run(l, 1000);
		pthread_mutex_lock(&l->lock);
		stopping = l->stopping;
		pthread_mutex_unlock(&l->lock);
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
engines_start(void)
{
	struct eb_http_loop *l;
	unsigned i, n;
	int rc = 0;

	if (atomic_load(&g_nengines) > 0)
		return 0;
	pthread_mutex_lock(&g_engine_lock);
	if (atomic_load(&g_nengines) > 0)
		goto out;
	n = engine_count();
	for (i = 0; i < n; i++) {
		if ((l = eb_http_loop_new()) == NULL)
			break;
		if (pthread_create(&l->thread, NULL, engine_main, l) != 0) {
			eb_http_loop_free(l);
			break;
		}
		g_engines[i] = l;
	}
	if (i == 0)
		rc = -1;
	else
		atomic_store(&g_nengines, i); /* fewer than asked: serving */
out:
	pthread_mutex_unlock(&g_engine_lock);
	return rc;
}

void
eb_http_async_stop(void)
{
	struct eb_http_loop *l;
	unsigned i, n;
	uint64_t one = 1;

	pthread_mutex_lock(&g_engine_lock);
	n = atomic_load(&g_nengines);
	for (i = 0; i < n; i++) {
		l = g_engines[i];
		pthread_mutex_lock(&l->lock);
		l->stopping = 1;
		pthread_mutex_unlock(&l->lock);
		if (write(l->wakefd, &one, sizeof(one)) == -1)
			log_warn("HTTP client: waking an engine");
	}
	for (i = 0; i < n; i++) {
		pthread_join(g_engines[i]->thread, NULL);
		eb_http_loop_free(g_engines[i]);
		g_engines[i] = NULL;
	}
	atomic_store(&g_nengines, 0);
	pthread_mutex_unlock(&g_engine_lock);
}

/* ---- submitting ---- */

static int
fetch_async(const struct eb_http_options *opts, eb_http_done_fn done, void *arg)
{
	struct eb_http_options o;
	struct eb_http_loop *l = t_loop;
	struct async_xfer *x = NULL;
	uint64_t one = 1;
	unsigned n;
	CURLcode rc;

	if (opts == NULL || done == NULL || opts->resolve != NULL ||
	    opts->connect_to != NULL || opts->url == NULL ||
	    (opts->stream != NULL && (l == NULL || opts->stream->head == NULL ||
	                              opts->stream->data == NULL)) ||
	    (strncmp(opts->url, "https://", 8) != 0 &&
	     strncmp(opts->url, "http://", 7) != 0))
		return -1;

	if (l == NULL) {
		if (engines_start() == -1 ||
		    (n = atomic_load(&g_nengines)) == 0)
			return -1;
		l = g_engines[atomic_fetch_add(&g_next_engine, 1) % n];
	}
	if (atomic_fetch_add(&g_pending, 1) >= ASYNC_MAX_TRANSFERS) {
		atomic_fetch_sub(&g_pending, 1);
		return -1;
	}
	if (l == t_loop && l->h1 != NULL) {
		switch (eb_h1_fetch(l->h1, opts, done, arg)) {
		case 1:
			return 0;
		case -1:
			atomic_fetch_sub(&g_pending, 1);
			return -1;
		default:
			break; /* curl's */
		}
	}
	if (!eb_http_request_text_ok(opts)) { /* curl would send CR LF as is */
		atomic_fetch_sub(&g_pending, 1);
		return -1;
	}
	/* a kept transfer (and its easy handle), or a new one */
	pthread_mutex_lock(&l->lock);
	if (l->stopping) {
		pthread_mutex_unlock(&l->lock);
		atomic_fetch_sub(&g_pending, 1);
		return -1;
	}
	if ((x = l->idle) != NULL) {
		l->idle = x->next;
		l->nidle--;
	}
	pthread_mutex_unlock(&l->lock);
	if (x == NULL) {
		if ((x = eb_calloc(1, sizeof(*x))) == NULL)
			goto fail;
		if ((x->h = curl_easy_init()) == NULL)
			goto fail;
	}
	x->base.native = 0;
	x->l = l;
	x->next = x->prev = NULL;
	x->done = done;
	x->arg = arg;
	x->errbuf[0] = '\0';
	eb_buf_init(&x->ctx.body, opts->max_response_bytes > 0
	                              ? opts->max_response_bytes
	                              : EB_HTTP_DEFAULT_MAX_BYTES);
	if (opts->stream != NULL) {
		x->ctx.stream = *opts->stream;
		x->ctx.stream_arg = arg;
		x->ctx.self = &x->base;
	}
	x->ctx.easy = x->h;
	eb_log_ctx_get(&x->ctx.lctx);
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
	if ((x->hdrs = eb_http_slist_block(opts->headers, "Expect:")) == NULL)
		goto fail;
	rc = eb_http_configure(x->h, &o, &x->ctx, x->hdrs, NULL, NULL,
	                       x->errbuf);
	if (rc != CURLE_OK)
		goto fail;
	curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
	atomic_fetch_add_explicit(&g_curl_xfers, 1, memory_order_relaxed);
	if (l == t_loop) {
		/* this thread runs l: no queue, no wake-up */
		xfer_start(l, x);
		return 0;
	}
	pthread_mutex_lock(&l->lock);
	if (l->stopping) {
		pthread_mutex_unlock(&l->lock);
		goto fail;
	}
	*l->incoming_tail = x;
	l->incoming_tail = &x->next;
	pthread_mutex_unlock(&l->lock);
	if (write(l->wakefd, &one, sizeof(one)) == -1)
		log_warn("HTTP client: waking a loop");
	return 0;
fail:
	xfer_free(x);
	atomic_fetch_sub(&g_pending, 1);
	return -1;
}

int
eb_http_fetch_async(const struct eb_http_options *opts, eb_http_done_fn done,
                    void *arg)
{
	struct eb_http_options o;
	const struct eb_http_options *use;
	const char **hv;
	char line[96];
	int rc;

	if (opts == NULL ||
	    (use = eb_http_with_trace(opts, &o, &hv, line)) == NULL)
		return -1;
	rc = fetch_async(use, done, arg);
	eb_free(hv);
	return rc;
}

void
eb_http_xfer_resume(struct eb_http_xfer *xfer)
{
	struct async_xfer *x = (struct async_xfer *)(void *)xfer;

	if (xfer == NULL)
		return;
	if (xfer->native) {
		eb_h1_resume(xfer);
		return;
	}
	/* curl delivers the bytes it kept, maybe before this returns, and
	 * asks for its timer at once (timer_cb) to go on reading. When the
	 * receiver refuses them now (or they pass the limit), curl 7.88 drops
	 * them and fails here before it schedules the transfer again: the
	 * loop ends it on its next round (done may not run from here). */
	if (curl_easy_pause(x->h, CURLPAUSE_CONT) != CURLE_OK && !x->doomed) {
		x->doomed = 1;
		x->l->ndoomed++;
	}
}

void
eb_http_xfer_abort(struct eb_http_xfer *xfer)
{
	struct async_xfer *x = (struct async_xfer *)(void *)xfer;
	struct eb_http_loop *l;

	if (xfer == NULL)
		return;
	if (xfer->native) {
		eb_h1_abort(xfer);
		return;
	}
	l = x->l;
	running_unlink(l, x);
	/* curl closes a connection whose response was not read to its end */
	curl_multi_remove_handle(l->multi, x->h);
	atomic_fetch_sub(&g_pending, 1);
	xfer_recycle(l, x);
}

size_t
eb_http_async_pending(void)
{
	return atomic_load(&g_pending);
}

void
eb_http_async_stats(struct eb_http_async_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->curl_transfers =
	    atomic_load_explicit(&g_curl_xfers, memory_order_relaxed);
	eb_h1_stats(st);
}
