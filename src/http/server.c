/*
 * libmicrohttpd adapter. Owns struct eb_request: it is created by the URI
 * log callback (so it sees the raw URI and the earliest timestamp), filled
 * by the access handler as the headers and body arrive, dispatched to the
 * matched route's handler once the whole body is in, and freed by the
 * completion callback after the access log line is written.
 *
 * Asynchronous handlers: a handler returning EB_ASYNC has given the request
 * to another thread. The connection is suspended until that thread calls
 * eb_req_resume(); a small state machine under the request's mutex makes a
 * resume that races ahead of the suspend safe.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/rand.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/env.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/str.h"
#include "core/trusted.h"
#include "http/client.h"
#include "http/conntrack.h"
#include "http/h1check.h"
#include "http/router.h"
#include "http/tls.h"

enum async_state { A_NONE, A_SUSPENDED, A_DONE };
enum body_mode { B_NONE, B_OWNED, B_STATIC, B_STREAM };

/* A streamed body (eb_resp_set_stream): rbody of its request. Once queued,
 * libmicrohttpd's response holds it too and frees it (stream_free). */
struct resp_stream {
	struct eb_request *req; /* NULL once the request is done */
	eb_resp_read_fn read;
	void (*release)(void *arg);
	void *arg;
	uint64_t size;
	int queued;  /* given to libmicrohttpd */
	int waiting; /* a read found nothing: the connection is suspended */
};

struct resp_header {
	char *name;
	char *value;
};

struct worker;

struct eb_request {
	struct eb_server *srv;
	struct worker *w; /* the worker whose daemon has the connection */
	struct MHD_Connection *conn;
	struct eb_config *cfg;
	int route; /* -1: none */
	const char *method;
	char *path;
	char *raw_uri;
	char *params[EB_ROUTER_MAX_PARAMS];
	const char *param_names[EB_ROUTER_MAX_PARAMS];
	size_t param_name_len[EB_ROUTER_MAX_PARAMS];
	size_t nparams;
	const struct eb_tenant *tenant;
	struct eb_buf body;
	int body_too_large;
	int dispatched;
	int queued;
	int http10; /* an HTTP/1.0 request */
	/* response */
	int status;
	char *ctype;
	void *rbody;
	size_t rlen;
	enum body_mode rmode;
	struct resp_header *rh;
	size_t nrh;
	/* async */
	pthread_mutex_t lock;
	enum async_state astate;
	/* handler data */
	void *data;
	void (*data_free)(void *);
	struct timespec start;
	char id[17];
	struct eb_log_ctx lctx; /* what its log lines carry: id, trace */
	char remote[INET6_ADDRSTRLEN + 8];
	/* from a trusted proxy: "client, trusted hops, peer" (set_remote) */
	char *forwarded_for;
	/* slow clients and body memory (body_admit, body_take) */
	struct eb_ct_conn *ct; /* the connection's tracking record */
	size_t body_limit;     /* most body bytes this request may send */
	size_t budget_held;    /* bytes of the body budget it holds */
	int body_discard;      /* no route: body bytes are read, not kept */
	int body_over_budget;  /* the body budget was spent: 503 */
	int early;             /* answered before its body: close after */
};

/* Per-IP connection counts, shared by the workers (see ip_accept). */
struct ip_count {
	struct ip_count *next;
	unsigned count;
	unsigned char len; /* 4 or 8 (an IPv6 /64) */
	unsigned char addr[16];
};
#define IP_BUCKETS 1024

/*
 * One worker: a thread running its own event loop over its libmicrohttpd
 * daemons (external epoll mode; one per "listen" address, and the workers'
 * daemons of an address accept on the same listening socket) and its own
 * loop of the asynchronous HTTP client. A handler that
 * forwards upstream (the MDM proxy) starts the transfer on that loop, so
 * the request, the upstream transfer and the response stay on one thread.
 */
struct worker {
	struct eb_server *srv;
	struct MHD_Daemon *d[EB_CONFIG_MAX_LISTEN];
	unsigned nd;
	struct eb_http_loop *hl;
	int epfd;
	int wakefd;
	pthread_t thread;
	int running;
	int mhd_due;             /* a connection was resumed on this thread */
	atomic_int quiesce;      /* 1: asked, 2: done */
	struct eb_conntrack *ct; /* this daemon's connections */
	int64_t sweep_at;        /* next conntrack sweep (monotonic ms) */
};

struct eb_server {
	struct eb_env *env;
	/* the index of routes[0] in the table metrics count by */
	int metrics_base;
	struct worker *w;
	unsigned nworkers;
	atomic_int stopping;
	const struct eb_route *routes;
	size_t nroutes;
	size_t max_header_bytes;
	size_t max_body_bytes;
	unsigned per_ip_limit;
	unsigned max_conns;  /* limits.max_connections, over every listener */
	atomic_uint nconns;  /* connections open, over every listener */
	unsigned nlisteners; /* listening sockets */
	pthread_mutex_t ip_lock;
	struct ip_count *ip[IP_BUCKETS];
	int tls;
	uint16_t port;
	atomic_long inflight;
	atomic_ullong next_id;
	unsigned long long id_prefix;
	size_t body_budget;          /* limits.body_budget_bytes */
	atomic_size_t body_buffered; /* bytes held against it */
	atomic_llong budget_logged;  /* second of the last "spent" line */
	atomic_uint budget_refused;  /* refusals since that line */
	struct eb_tls *tlsx;         /* with tls: the certificate and policy */
};

static double
elapsed(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) +
	       (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* ---- request accessors ---- */

const char *
eb_req_method(const struct eb_request *req)
{
	return req->method;
}

const char *
eb_req_path(const struct eb_request *req)
{
	return req->path;
}

const char *
eb_req_param(const struct eb_request *req, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < req->nparams; i++)
		if (req->param_name_len[i] == n &&
		    strncmp(req->param_names[i], name, n) == 0)
			return req->params[i];
	return NULL;
}

const char *
eb_req_query(const struct eb_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
	                                   name);
}

struct query_iter {
	int (*fn)(void *, const char *, const char *);
	void *arg;
};

static enum MHD_Result
query_iter_cb(void *cls, enum MHD_ValueKind kind, const char *key,
              const char *value)
{
	struct query_iter *qi = cls;

	return qi->fn(qi->arg, key, value ? value : "") ? MHD_NO : MHD_YES;
}

void
eb_req_query_each(const struct eb_request *req,
                  int (*fn)(void *arg, const char *name, const char *value),
                  void *arg)
{
	struct query_iter qi = {fn, arg};

	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND,
	                          query_iter_cb, &qi);
}

const char *
eb_req_raw_query(const struct eb_request *req)
{
	const char *q = req->raw_uri ? strchr(req->raw_uri, '?') : NULL;

	return q ? q + 1 : "";
}

const char *
eb_req_raw_target(const struct eb_request *req)
{
	return req->raw_uri ? req->raw_uri : "";
}

const char *
eb_req_header(const struct eb_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

void
eb_req_header_each(const struct eb_request *req,
                   int (*fn)(void *arg, const char *name, const char *value),
                   void *arg)
{
	struct query_iter hi = {fn, arg};

	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, query_iter_cb,
	                          &hi);
}

struct count_ctx {
	const char *name;
	unsigned n;
	size_t bytes;
};

static enum MHD_Result
count_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct count_ctx *c = cls;

	if (c->name != NULL && eb_str_ieq(key, c->name))
		c->n++;
	c->bytes += strlen(key) + (value ? strlen(value) : 0) + 4;
	return MHD_YES;
}

unsigned
eb_req_header_count(const struct eb_request *req, const char *name)
{
	struct count_ctx c = {name, 0, 0};

	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, count_cb, &c);
	return c.n;
}

const char *
eb_req_cookie(const struct eb_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, name);
}

const void *
eb_req_body(const struct eb_request *req, size_t *len)
{
	if (len != NULL)
		*len = req->body.len;
	return eb_buf_str(&req->body);
}

void
eb_req_set_body_limit(struct eb_request *req, size_t max)
{
	req->body_limit =
	    max < req->srv->max_body_bytes ? max : req->srv->max_body_bytes;
}

size_t
eb_req_body_limit(const struct eb_request *req)
{
	return req->body_limit;
}

static void set_remote(struct eb_request *req, int heads);

const char *
eb_req_remote(const struct eb_request *req)
{
	if (req->remote[0] == '\0')
		set_remote((struct eb_request *)(uintptr_t)req, 0);
	return req->remote;
}

const char *
eb_req_forwarded_for(const struct eb_request *req)
{
	return req->forwarded_for != NULL ? req->forwarded_for
	                                  : eb_req_remote(req);
}

const char *
eb_req_id(const struct eb_request *req)
{
	return req->id;
}

int
eb_req_is_tls(const struct eb_request *req)
{
	return req->srv->tls;
}

struct eb_env *
eb_req_env(const struct eb_request *req)
{
	return req->srv->env;
}

const struct eb_config *
eb_req_config(const struct eb_request *req)
{
	return req->cfg;
}

const struct eb_tenant *
eb_req_tenant(const struct eb_request *req)
{
	return req->tenant;
}

/* The request's tenant in its log context (and the thread's, when the
 * thread works for it). */
static void
lctx_tenant(struct eb_request *req)
{
	struct eb_log_ctx cur;
	const char *id = req->tenant != NULL ? req->tenant->id : "";

	snprintf(req->lctx.tenant, sizeof(req->lctx.tenant), "%s", id);
	eb_log_ctx_get(&cur);
	if (strcmp(cur.rid, req->id) == 0)
		eb_log_ctx_tenant(id);
}

void
eb_req_set_tenant(struct eb_request *req, const struct eb_tenant *t)
{
	req->tenant = t;
	lctx_tenant(req);
}

void
eb_req_set_data(struct eb_request *req, void *data, void (*free_fn)(void *))
{
	if (req->data_free != NULL && req->data != NULL)
		req->data_free(req->data);
	req->data = data;
	req->data_free = free_fn;
}

void *
eb_req_data(const struct eb_request *req)
{
	return req->data;
}

/* ---- responses ---- */

static void
resp_clear_body(struct eb_request *req)
{
	if (req->rmode == B_OWNED)
		eb_free(req->rbody);
	if (req->rmode == B_STREAM) {
		struct resp_stream *rs = req->rbody;

		rs->req = NULL;
		rs->release(rs->arg);
		if (!rs->queued)
			eb_free(rs);
	}
	req->rbody = NULL;
	req->rlen = 0;
	req->rmode = B_NONE;
	eb_free(req->ctype);
	req->ctype = NULL;
}

static int
resp_set_common(struct eb_request *req, int status, const char *ctype)
{
	resp_clear_body(req);
	req->status = status;
	if (ctype != NULL && (req->ctype = eb_strdup(ctype)) == NULL)
		return -1;
	return 0;
}

int
eb_resp_set_owned(struct eb_request *req, int status, const char *ctype,
                  char *body, size_t len)
{
	if (resp_set_common(req, status, ctype) == -1) {
		eb_free(body);
		return -1;
	}
	req->rbody = body;
	req->rlen = len;
	req->rmode = B_OWNED;
	return 0;
}

int
eb_resp_set(struct eb_request *req, int status, const char *ctype,
            const void *body, size_t len)
{
	char *copy;

	if ((copy = eb_malloc(len + 1)) == NULL)
		return -1;
	if (len > 0)
		memcpy(copy, body, len);
	copy[len] = '\0';
	return eb_resp_set_owned(req, status, ctype, copy, len);
}

int
eb_resp_set_static(struct eb_request *req, int status, const char *ctype,
                   const void *body, size_t len)
{
	if (resp_set_common(req, status, ctype) == -1)
		return -1;
	req->rbody = (void *)(uintptr_t)body;
	req->rlen = len;
	req->rmode = B_STATIC;
	return 0;
}

int
eb_resp_set_stream(struct eb_request *req, int status, const char *ctype,
                   uint64_t size, eb_resp_read_fn read,
                   void (*release)(void *arg), void *arg)
{
	struct resp_stream *rs;

	if ((rs = eb_calloc(1, sizeof(*rs))) == NULL)
		return -1;
	if (resp_set_common(req, status, ctype) == -1) {
		eb_free(rs);
		return -1;
	}
	rs->req = req;
	rs->read = read;
	rs->release = release;
	rs->arg = arg;
	rs->size = size;
	req->rbody = rs;
	req->rlen = 0; /* counts what is sent, for the access log */
	req->rmode = B_STREAM;
	return 0;
}

int
eb_resp_header(struct eb_request *req, const char *name, const char *value)
{
	struct resp_header *nh;

	if (strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL)
		return -1;
	if ((nh = eb_realloc(req->rh, (req->nrh + 1) * sizeof(*nh))) == NULL)
		return -1;
	req->rh = nh;
	nh[req->nrh].name = eb_strdup(name);
	nh[req->nrh].value = eb_strdup(value);
	if (nh[req->nrh].name == NULL || nh[req->nrh].value == NULL) {
		eb_free(nh[req->nrh].name);
		eb_free(nh[req->nrh].value);
		return -1;
	}
	req->nrh++;
	return 0;
}

int
eb_resp_status(const struct eb_request *req)
{
	return req->status;
}

int
eb_resp_text(struct eb_request *req, int status, const char *text)
{
	return eb_resp_set(req, status, "text/plain; charset=utf-8", text,
	                   strlen(text));
}

/* ---- async ---- */

static void wake(struct worker *w);
/* The worker running on this thread; NULL on any other thread. */
static _Thread_local struct worker *t_worker;

void
eb_req_resume(struct eb_request *req)
{
	struct worker *w = NULL;

	pthread_mutex_lock(&req->lock);
	if (req->astate == A_SUSPENDED) {
		MHD_resume_connection(req->conn);
		w = req->w; /* req may be gone once unlocked */
	}
	req->astate = A_DONE;
	pthread_mutex_unlock(&req->lock);
	/*
	 * In external polling mode libmicrohttpd has no channel of its own
	 * to learn of a resume: the worker runs its daemon again after its
	 * own upstream transfers end, and is woken for any other thread's.
	 */
	if (w != NULL && w != t_worker)
		wake(w);
	else if (w != NULL)
		w->mhd_due = 1;
}

void
eb_resp_stream_ready(struct eb_request *req)
{
	struct resp_stream *rs;

	if (req->rmode != B_STREAM || !(rs = req->rbody)->waiting)
		return;
	rs->waiting = 0;
	MHD_resume_connection(req->conn);
	if (req->w != NULL)
		req->w->mhd_due = 1; /* the worker runs its daemon again */
}

static void
stream_shutdown(struct eb_request *req)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
	    req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);

	if (ci != NULL && ci->connect_fd != MHD_INVALID_SOCKET)
		(void)shutdown(ci->connect_fd, SHUT_RDWR);
}

/* libmicrohttpd's content reader of a streamed body. */
static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct resp_stream *rs = cls;
	long n;

	(void)pos;
	if (rs->req == NULL)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	n = rs->read(rs->arg, buf, max);
	if (n > 0) {
		rs->req->rlen += (size_t)n;
		return (ssize_t)n;
	}
	if (n == 0) {
		/* nothing yet: no busy loop, wait for eb_resp_stream_ready()
		 * (suspending from a content reader is allowed) */
		rs->waiting = 1;
		MHD_suspend_connection(rs->req->conn);
		return 0;
	}
	/*
	 * A cut (or the end of a body only the connection's end delimits):
	 * libmicrohttpd 0.9.75 marks the connection closed but, in external
	 * epoll mode and with MHD_USE_TURBO, neither shuts the socket down
	 * nor looks at the connection again until its next event or its
	 * timeout: the client would wait for the cut up to
	 * connection_timeout. A shutdown() tells the client at once, and
	 * the event it raises here lets the daemon clean up. Everything
	 * read before was sent already (the reader is only asked again once
	 * the connection has written what it had).
	 */
	if (n != EB_RESP_STREAM_END ||
	    (rs->size == EB_RESP_SIZE_UNKNOWN && rs->req->http10))
		stream_shutdown(rs->req);
	return n == EB_RESP_STREAM_END ? MHD_CONTENT_READER_END_OF_STREAM
	                               : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void
stream_free(void *cls)
{
	struct resp_stream *rs = cls;

	if (rs->req != NULL) {
		/* the response is gone before its request: never read again
		 */
		rs->req->rbody = NULL;
		rs->req->rmode = B_NONE;
		rs->release(rs->arg);
	}
	eb_free(rs);
}

/* ---- the adapter ---- */

/*
 * The process-wide budget for buffered request bodies: a request takes its
 * announced Content-Length up front and, without one, its bytes as they
 * are buffered; it gives them back when it ends. -1 when spent.
 */
static int
budget_take(struct eb_request *req, size_t n)
{
	struct eb_server *srv = req->srv;
	size_t cur = atomic_load(&srv->body_buffered);

	do {
		if (n > srv->body_budget || cur > srv->body_budget - n)
			return -1;
	} while (
	    !atomic_compare_exchange_weak(&srv->body_buffered, &cur, cur + n));
	req->budget_held += n;
	return 0;
}

/* Say that the budget refused a body: one line a second at most (a flood
 * of refusals must not become a flood of log lines), with the count. */
static void
budget_spent_log(struct eb_server *srv)
{
	long long now = (long long)eb_now(srv->env);
	long long last = atomic_load(&srv->budget_logged);
	unsigned n = atomic_fetch_add(&srv->budget_refused, 1) + 1;

	if (now == last ||
	    !atomic_compare_exchange_strong(&srv->budget_logged, &last, now))
		return;
	atomic_fetch_sub(&srv->budget_refused, n);
	log_warnx("http: %u request body(ies) refused (503): the budget for "
	          "buffered bodies, limits.body_budget_bytes (%zu), is spent",
	          n, srv->body_budget);
}

static void
budget_release(struct eb_request *req)
{
	if (req->budget_held > 0)
		atomic_fetch_sub(&req->srv->body_buffered, req->budget_held);
	req->budget_held = 0;
}

static void
request_free(struct eb_request *req)
{
	size_t i;

	if (req == NULL)
		return;
	if (req->data_free != NULL && req->data != NULL)
		req->data_free(req->data);
	resp_clear_body(req);
	for (i = 0; i < req->nrh; i++) {
		eb_free(req->rh[i].name);
		eb_free(req->rh[i].value);
	}
	eb_free(req->rh);
	for (i = 0; i < req->nparams; i++)
		eb_free(req->params[i]);
	eb_buf_finish(&req->body);
	budget_release(req);
	eb_free(req->path);
	eb_free(req->raw_uri);
	eb_free(req->forwarded_for);
	eb_config_unref(req->cfg);
	pthread_mutex_destroy(&req->lock);
	eb_free(req);
}

/* 16 hex digits: 24 bits of a random per-process prefix, 40 of a counter. */
static void
format_id(char out[17], unsigned long long prefix, unsigned long long n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned long long v =
	    ((prefix & 0xffffff) << 40) | (n & 0xffffffffffULL);
	int i;

	for (i = 15; i >= 0; i--, v >>= 4)
		out[i] = hex[v & 0xf];
	out[16] = '\0';
}

/* The tracking record of conn (conn_notify), or NULL. */
static struct eb_ct_conn *
conn_ct(struct eb_server *srv, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	if (ci == NULL || ci->socket_context == NULL ||
	    ci->socket_context == (void *)srv)
		return NULL;
	return ci->socket_context;
}

static void *
uri_log_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct eb_server *srv = cls;
	struct eb_request *req;
	unsigned long long n;

	if ((req = eb_calloc(1, sizeof(*req))) == NULL)
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &req->start);
	req->srv = srv;
	req->w = t_worker;
	req->conn = conn;
	req->route = -1;
	req->raw_uri = eb_strdup(uri);
	pthread_mutex_init(&req->lock, NULL);
	eb_buf_init(&req->body, srv->max_body_bytes);
	req->body_limit = srv->max_body_bytes;
	req->ct = conn_ct(srv, conn);
	n = atomic_fetch_add(&srv->next_id, 1);
	format_id(req->id, srv->id_prefix, n);
	memcpy(req->lctx.rid, req->id, sizeof(req->lctx.rid));
	req->cfg = eb_env_config(srv->env);
	atomic_fetch_add(&srv->inflight, 1);
	eb_metrics_inflight(srv->env->metrics, 1);
	return req;
}

/* All lines of one request header, joined with ", " as RFC 9110 5.3
 * allows for a list; too long (over EB_TRUSTED_MAX_HEADER) marks it. */
struct joined {
	const char *name;
	char buf[EB_TRUSTED_MAX_HEADER + 1];
	size_t len;
	int seen, too_long;
};

static enum MHD_Result
join_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct joined *j = cls;
	size_t vl = value != NULL ? strlen(value) : 0;

	(void)kind;
	if (!eb_str_ieq(key, j->name))
		return MHD_YES;
	if (j->len + (j->seen ? 2 : 0) + vl > EB_TRUSTED_MAX_HEADER) {
		j->too_long = 1;
		return MHD_NO;
	}
	if (j->seen) {
		memcpy(j->buf + j->len, ", ", 2);
		j->len += 2;
	}
	memcpy(j->buf + j->len, value != NULL ? value : "", vl);
	j->len += vl;
	j->buf[j->len] = '\0';
	j->seen = 1;
	return MHD_YES;
}

/* At most one line a second about forwarding headers a trusted peer got
 * wrong: a broken balancer would otherwise write one per request. */
static void
forwarded_bad_log(const struct eb_request *req, const char *peer,
                  const char *why)
{
	static atomic_llong last;
	struct timespec ts;
	long long now, prev;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (long long)ts.tv_sec;
	prev = atomic_load(&last);
	if (prev == now || !atomic_compare_exchange_strong(&last, &prev, now))
		return;
	log_warnx("request %s: forwarding headers from trusted proxy %s "
	          "ignored (%s): the proxy's address is used",
	          req->id, peer, why);
}

/*
 * From trusted peer: the client address the headers name into req->remote
 * and, for the X-Forwarded-For sent upstream, the chain from that client
 * to the peer into req->forwarded_for. NULL, or why the headers were
 * ignored (req->remote is then the peer again).
 */
static const char *
forwarded_chain(struct eb_request *req, const struct eb_trusted *tp,
                const struct joined *xff, const struct joined *fwd,
                const char *peer)
{
	size_t len =
	    EB_TRUSTED_MAX_HOPS * (INET6_ADDRSTRLEN + 2) + INET6_ADDRSTRLEN + 2;
	enum eb_trusted_result r;
	const char *why = NULL;
	char *via;

	if ((via = eb_malloc(len)) == NULL)
		return "out of memory";
	r = eb_trusted_client_chain(tp, xff->seen ? xff->buf : NULL,
	                            fwd->seen ? fwd->buf : NULL, req->remote,
	                            sizeof(req->remote), via,
	                            len - INET6_ADDRSTRLEN - 2, &why);
	if (r == EB_TRUSTED_BAD)
		memcpy(req->remote, peer, strlen(peer) + 1);
	if (r != EB_TRUSTED_FOUND) {
		eb_free(via);
		return r == EB_TRUSTED_BAD ? why : NULL;
	}
	/* room was kept for the peer */
	snprintf(via + strlen(via), len - strlen(via), ", %s", peer);
	eb_free(req->forwarded_for);
	req->forwarded_for = via;
	return NULL;
}

/*
 * The client address: the TCP peer's, or, when the peer is one of the
 * configured trusted_proxies and heads is set (the request head is
 * complete), the one its X-Forwarded-For / Forwarded name (trusted.h).
 * Malformed headers from a trusted peer leave the peer address; they never
 * fail the request.
 */
static void
set_remote(struct eb_request *req, int heads)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	const struct eb_trusted *tp;
	struct joined *xff = NULL, *fwd = NULL;
	unsigned char a[16];
	char peer[sizeof(req->remote)];
	const char *why = NULL;
	int fam;

	ci = MHD_get_connection_info(req->conn,
	                             MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL) {
		(void)snprintf(req->remote, sizeof(req->remote), "-");
		return;
	}
	if (sa->sa_family == AF_INET) {
		fam = 4;
		memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		fam = 6;
		memcpy(a, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else {
		(void)snprintf(req->remote, sizeof(req->remote), "-");
		return;
	}
	inet_ntop(fam == 4 ? AF_INET : AF_INET6, a, req->remote,
	          sizeof(req->remote));
	tp = req->cfg != NULL ? &req->cfg->trusted_proxies : NULL;
	if (!heads || tp == NULL || tp->n == 0 ||
	    !eb_trusted_contains(tp, fam, a))
		return;
	if ((xff = eb_calloc(1, sizeof(*xff))) == NULL ||
	    (fwd = eb_calloc(1, sizeof(*fwd))) == NULL) {
		why = "out of memory";
		goto out;
	}
	xff->name = "X-Forwarded-For";
	fwd->name = "Forwarded";
	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, join_cb, xff);
	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, join_cb, fwd);
	if (xff->too_long || fwd->too_long) {
		why = "too long";
		goto out;
	}
	memcpy(peer, req->remote, sizeof(peer));
	why = forwarded_chain(req, tp, xff, fwd, peer);
out:
	if (why != NULL)
		forwarded_bad_log(req, req->remote, why);
	eb_free(xff);
	eb_free(fwd);
}

static enum MHD_Result
queue(struct eb_request *req)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	size_t i;

	if (req->status == 0) {
		resp_clear_body(req);
		req->status = 500;
		req->ctype = eb_strdup("text/plain; charset=utf-8");
		req->rbody = (void *)(uintptr_t) "internal error\n";
		req->rlen = strlen("internal error\n");
		req->rmode = B_STATIC;
	}
	if (req->rmode == B_OWNED) {
		r = MHD_create_response_from_buffer_with_free_callback(
		    req->rlen, req->rbody, &free);
		if (r != NULL)
			req->rmode = B_NONE; /* MHD frees it now */
	} else if (req->rmode == B_STREAM) {
		struct resp_stream *rs = req->rbody;

		r = MHD_create_response_from_callback(
		    rs->size == EB_RESP_SIZE_UNKNOWN ? MHD_SIZE_UNKNOWN
		                                     : rs->size,
		    32 * 1024, stream_read, rs, stream_free);
		if (r != NULL)
			rs->queued = 1;
	} else
		r = MHD_create_response_from_buffer(
		    req->rlen, req->rbody ? req->rbody : (void *)(uintptr_t) "",
		    MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	if (req->ctype != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
		                        req->ctype);
	MHD_add_response_header(r, "X-Request-Id", req->id);
	for (i = 0; i < req->nrh; i++)
		MHD_add_response_header(r, req->rh[i].name, req->rh[i].value);
	ret = MHD_queue_response(req->conn, (unsigned)req->status, r);
	MHD_destroy_response(r);
	req->queued = 1;
	return ret;
}

/* Copy the route's path parameters; validate {T} against the tenants. */
static int
bind_route(struct eb_request *req, const struct eb_route_match *m)
{
	const struct eb_route *rt = &req->srv->routes[m->index];
	size_t i;

	req->route = m->index;
	for (i = 0; i < m->nparams; i++) {
		req->param_names[i] = m->params[i].name;
		req->param_name_len[i] = m->params[i].name_len;
		req->params[i] =
		    eb_strndup(m->params[i].value, m->params[i].value_len);
		if (req->params[i] == NULL)
			return -1;
		req->nparams = i + 1;
	}
	if (rt->flags & EB_ROUTE_TENANT) {
		const char *t = eb_req_param(req, "T");

		if (t == NULL || !eb_str_is_tenant_id(t) ||
		    (req->tenant = eb_config_tenant(req->cfg, t)) == NULL) {
			eb_resp_text(req, 404, "unknown tenant\n");
			return 1;
		}
		lctx_tenant(req);
	}
	return 0;
}

/* The request announces a body (a Content-Length above 0 or a transfer
 * coding). */
static int
body_announced(const struct eb_request *req)
{
	const char *cl = eb_req_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);

	return (cl != NULL && strcmp(cl, "0") != 0) ||
	       eb_req_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

/* Send the response set, before or instead of reading the rest of the
 * body, and close the connection after it (what follows on it is not
 * read). */
static enum MHD_Result
answer_closing(struct eb_request *req)
{
	req->early = 1;
	req->dispatched = 1;
	eb_resp_header(req, "Connection", "close");
	eb_buf_finish(&req->body);
	budget_release(req);
	/* libmicrohttpd may not look at the connection again until its
	 * next event: end it in a second whatever happens */
	eb_conntrack_close_after(req->ct, eb_conntrack_now());
	return queue(req);
}

/* Run the route's handler on the body read so far; the connection waits
 * (suspended) while an asynchronous handler works. */
static enum MHD_Result
run_handler(struct eb_request *req)
{
	int rc;

	req->dispatched = 1;
	eb_conntrack_busy(req->ct);
	rc = req->srv->routes[req->route].handler(req);
	if (rc == EB_ASYNC) {
		pthread_mutex_lock(&req->lock);
		if (req->astate != A_DONE) {
			req->astate = A_SUSPENDED;
			MHD_suspend_connection(req->conn);
			pthread_mutex_unlock(&req->lock);
			return MHD_YES;
		}
		pthread_mutex_unlock(&req->lock);
	}
	return queue(req);
}

/*
 * The headers of a routed request are in: settle how much of its body may
 * be read and buffered before any byte of it is. The route's limit (or
 * its head callback's decision, which may also answer at once), then the
 * announced Content-Length against that limit (413) and against the
 * process-wide body budget (503).
 */
static enum MHD_Result
body_admit(struct eb_request *req)
{
	const struct eb_route *rt = &req->srv->routes[req->route];
	const char *cl = eb_req_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long v = 0;

	/* a route without EB_ROUTE_BODY reads none: a body sent to it
	 * is not read (the handler answers at once, the connection closes) */
	eb_req_set_body_limit(req, !(rt->flags & EB_ROUTE_BODY) ? 0
	                           : rt->max_body               ? rt->max_body
	                                          : req->srv->max_body_bytes);
	if (rt->head != NULL)
		rt->head(req);
	req->body.max = req->body_limit;
	if (req->status != 0 && body_announced(req))
		return answer_closing(req); /* the head decided */
	if (req->status != 0) {
		req->dispatched = 1; /* no body: the connection may stay */
		return queue(req);
	}
	if (cl != NULL)
		v = strtoull(cl, NULL, 10); /* checked by first_call */
	if (req->body_limit == 0 && body_announced(req)) {
		enum MHD_Result r;

		req->early = 1; /* no body byte is read */
		eb_resp_header(req, "Connection", "close");
		r = run_handler(req);
		if (req->queued)
			eb_conntrack_close_after(req->ct, eb_conntrack_now());
		return r;
	}
	if (v > req->body_limit) {
		log_info("http: %s %s: body of %llu bytes over the route's "
		         "limit (%zu)",
		         req->method, rt->name, v, req->body_limit);
		eb_resp_text(req, 413, "request body too large\n");
		return answer_closing(req);
	}
	if (v > 0 && budget_take(req, (size_t)v) == -1) {
		budget_spent_log(req->srv);
		eb_resp_header(req, "Retry-After", "5");
		eb_resp_text(req, 503, "temporarily unavailable\n");
		return answer_closing(req);
	}
	return MHD_YES;
}

/* Drop what was kept of the body; the rest is read and dropped too.
 * The request is answered (the response set here) once the body ends. */
static enum MHD_Result
body_refuse(struct eb_request *req)
{
	req->body_discard = 1;
	eb_buf_finish(&req->body);
	budget_release(req);
	return MHD_YES;
}

/*
 * Keep n more body bytes: within the request's limit and the body budget,
 * else the body is dropped and the request answered 413 or 503 once the
 * body ends (libmicrohttpd takes no response while a body is being
 * received), and its connection closed. The minimum body rate bounds how
 * long that takes. Bytes of a request without a route are read and
 * dropped.
 */
static enum MHD_Result
body_take(struct eb_request *req, const char *p, size_t n)
{
	eb_conntrack_body_bytes(req->ct, n);
	if (req->body_discard || req->queued)
		return MHD_YES;
	if (n > req->body.max - req->body.len) {
		req->body_too_large = 1;
		log_info("http: %s %s: body over the route's limit (%zu)",
		         req->method, req->srv->routes[req->route].name,
		         req->body_limit);
		eb_resp_text(req, 413, "request body too large\n");
		return body_refuse(req);
	}
	if (req->body.len + n > req->budget_held &&
	    budget_take(req, req->body.len + n - req->budget_held) == -1) {
		req->body_over_budget = 1;
		budget_spent_log(req->srv);
		eb_resp_header(req, "Retry-After", "5");
		eb_resp_text(req, 503, "temporarily unavailable\n");
		return body_refuse(req);
	}
	if (eb_buf_add(&req->body, p, n) == -1)
		return MHD_NO; /* out of memory */
	return MHD_YES;
}

static enum MHD_Result
first_call(struct eb_request *req, const char *url, const char *method)
{
	struct eb_route_match m;
	struct count_ctx c = {NULL, 0, 0};
	const char *cl;
	char allow[64];
	int rc;

	req->method = method;
	if ((req->path = eb_strdup(url)) == NULL)
		return MHD_NO;
	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, count_cb, &c);
	if (c.bytes + (req->raw_uri ? strlen(req->raw_uri) : 0) >
	    req->srv->max_header_bytes) {
		eb_resp_text(req, 431, "request header fields too large\n");
		return queue(req);
	}
	cl = eb_req_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL) {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(cl, &end, 10);
		if (errno != 0 || end == cl || *end != '\0' ||
		    v > req->srv->max_body_bytes) {
			eb_resp_text(req, 413, "request body too large\n");
			return answer_closing(req);
		}
		/* the announced size at once (one allocation for a usual
		 * body), but no more than 16 KiB before the bytes arrive: a
		 * client announcing much and sending little holds 16 KiB at
		 * most beyond what it sent */
		if (v > 0)
			(void)eb_buf_reserve(&req->body,
			                     v < 16384 ? (size_t)v : 16384);
	}
	rc = eb_router_match(req->srv->routes, req->srv->nroutes, method, url,
	                     &m, allow, sizeof(allow));
	if (rc == -1) {
		eb_resp_text(req, 404, "not found\n");
		req->body_discard = 1;
		return MHD_YES; /* answered once the body (if any) is read */
	}
	if (rc == -2) {
		eb_resp_text(req, 405, "method not allowed\n");
		eb_resp_header(req, "Allow", allow);
		req->body_discard = 1;
		return MHD_YES;
	}
	if ((rc = bind_route(req, &m)) == -1)
		return MHD_NO;
	if (rc == 1) {
		req->dispatched = 1; /* response set (404 tenant) */
		req->body_discard = 1;
		return MHD_YES;
	}
	return body_admit(req);
}

/* Collects the request's header fields, in the order received. */
struct field_list {
	struct eb_h1_field *f;
	size_t n, cap;
	int no_value; /* a field without a value: never from a sound head */
};

static enum MHD_Result
field_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct field_list *l = cls;

	(void)kind;
	if (l->n == l->cap || value == NULL) {
		l->no_value = value == NULL;
		return MHD_NO;
	}
	l->f[l->n].name = key;
	l->f[l->n].value = value;
	l->n++;
	return MHD_YES;
}

/*
 * RFC 9112 framing (src/http/h1check.c), on the access handler's first
 * call: the whole head is in, no byte of the body has been read and no
 * handler has run. A refused request is answered at once with
 * "Connection: close"; queued this early, the response also makes
 * libmicrohttpd stop reading the connection, so nothing behind it (a body
 * or a pipelined request) is ever processed. 1 when refused, -1 when
 * refused and out of memory (the connection is dropped), 0 to go on.
 */
static int
framing_refused(struct eb_request *req, const char *url, const char *method,
                const char *version)
{
	struct field_list l = {NULL, 0, 0, 0};
	const char *why = NULL;
	int n, status;

	n = MHD_get_connection_values(req->conn, MHD_HEADER_KIND, NULL, NULL);
	if (n > 0 && (l.f = eb_calloc((size_t)n, sizeof(*l.f))) == NULL) {
		status = 503;
		why = "out of memory";
	} else {
		l.cap = n > 0 ? (size_t)n : 0;
		if (n > 0)
			MHD_get_connection_values(req->conn, MHD_HEADER_KIND,
			                          field_cb, &l);
		status = eb_h1check_request(method, version, req->raw_uri, l.f,
		                            l.n, &why);
		if (status == 0)
			status = eb_h1check_layout(l.f, l.n, &why);
		if (status == 0 && l.no_value) {
			status = 400;
			why = "header field without a value";
		}
	}
	eb_free(l.f);
	if (status == 0)
		return 0;
	req->method = method;
	if ((req->path = eb_strdup(url != NULL ? url : "-")) == NULL)
		return -1;
	log_info("request %s from %s refused (%d): %s", req->id,
	         eb_req_remote(req), status, why);
	eb_resp_text(req, status,
	             status == 501   ? "transfer coding not implemented\n"
	             : status == 505 ? "HTTP version not supported\n"
	                             : "bad request\n");
	eb_resp_header(req, "Connection", "close");
	req->dispatched = 1;
	return 1;
}

/*
 * The request's W3C trace: a valid incoming traceparent's trace id (only
 * one such header), else a new one; a span id of ours either way. A
 * malformed value is dropped, never logged or sent on.
 */
static void
trace_start(struct eb_request *req)
{
	const char *tp = NULL;

	if (eb_req_header_count(req, "traceparent") == 1)
		tp = eb_req_header(req, "traceparent");
	eb_log_trace_start(&req->lctx, tp);
	eb_log_ctx_set(&req->lctx);
}

static enum MHD_Result access_step(struct eb_request *req, const char *url,
                                   const char *method, const char *version,
                                   const char *upload_data,
                                   size_t *upload_data_size);

/* Every line logged while the request is served on this thread carries
 * its id and trace (eb_log_ctx). */
static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url,
          const char *method, const char *version, const char *upload_data,
          size_t *upload_data_size, void **con_cls)
{
	struct eb_request *req = *con_cls;
	enum MHD_Result r;

	(void)cls;
	(void)conn;
	if (req == NULL)
		return MHD_NO; /* out of memory in uri_log_cb */
	eb_log_ctx_set(&req->lctx);
	r = access_step(req, url, method, version, upload_data,
	                upload_data_size);
	eb_log_ctx_set(NULL);
	return r;
}

static enum MHD_Result
access_step(struct eb_request *req, const char *url, const char *method,
            const char *version, const char *upload_data,
            size_t *upload_data_size)
{
	int rc;

	if (req->path == NULL) {
		enum MHD_Result r;

		req->http10 =
		    version != NULL && strcmp(version, "HTTP/1.0") == 0;
		set_remote(req, 1); /* the head is complete */
		trace_start(req);
		if ((rc = framing_refused(req, url, method, version)) != 0)
			return rc == 1 ? queue(req) : MHD_NO;
		r = first_call(req, url, method);

		if (req->status != 0 && req->route == -1)
			req->dispatched =
			    1; /* 404/405: answer after the body */
		eb_conntrack_head_done(req->ct,
		                       !req->queued && body_announced(req),
		                       eb_conntrack_now());
		return r;
	}
	if (req->early) {
		/* answered (or being answered) without its body: nothing
		 * more is kept; the connection closes after the response */
		*upload_data_size = 0;
		pthread_mutex_lock(&req->lock);
		rc = req->astate == A_SUSPENDED;
		pthread_mutex_unlock(&req->lock);
		if (req->queued || rc)
			return MHD_YES;
		eb_conntrack_close_after(req->ct, eb_conntrack_now());
		return queue(req);
	}
	if (*upload_data_size > 0) {
		enum MHD_Result r =
		    body_take(req, upload_data, *upload_data_size);

		*upload_data_size = 0;
		return r;
	}
	if (req->queued)
		return MHD_YES;
	if (req->body_too_large || req->body_over_budget)
		return answer_closing(req); /* the response body_take set */
	if (!req->dispatched)
		return run_handler(req);
	return queue(req);
}

/* Append s escaped as every logged value is (eb_log_add_text): a decoded
 * path may hold a newline or a blank, and a log line must stay one line
 * with fields nobody can fake. */
static void
add_clean(struct eb_buf *b, const char *s)
{
	eb_log_add_text(b, s, strlen(s));
}

/* The access line in the text log format (log.format "text"). */
static void
access_log_text(struct eb_request *req, const struct eb_route *rt,
                const char *ts, double secs, int status, struct eb_buf *b)
{
	eb_buf_printf(b, "%s%s info access: %s %s ", eb_log_prio(EB_LOG_INFO),
	              ts, req->id, eb_req_remote(req));
	add_clean(b, req->method ? req->method : "-"); /* the client's */
	eb_buf_addc(b, ' ');
	if (rt != NULL && (rt->flags & EB_ROUTE_REDACT_PATH))
		add_clean(b, rt->pattern);
	else if (req->path != NULL && strlen(req->path) <= 256)
		add_clean(b, req->path);
	else
		eb_buf_addstr(b, req->path ? "(long path)" : "-");
	eb_buf_printf(b, " %d %zu %.3fms route=%s", status, req->rlen,
	              secs * 1000, rt ? rt->name : "-");
	if (req->tenant != NULL)
		eb_buf_printf(b, " tenant=%s", req->tenant->id);
	if (req->lctx.trace_id[0] != '\0')
		eb_buf_printf(b, " trace_id=%s", req->lctx.trace_id);
}

static void
access_log(struct eb_request *req, double secs, int status)
{
	const struct eb_route *rt =
	    req->route >= 0 ? &req->srv->routes[req->route] : NULL;
	char ts[64];
	struct timespec now;
	struct tm tm;
	struct eb_buf b;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
	eb_buf_init(&b, 4096);
	if (req->cfg != NULL && !req->cfg->log_json) {
		access_log_text(req, rt, ts, secs, status, &b);
		goto out;
	}
	eb_buf_printf(&b,
	              "%s{\"ts\":\"%s\",\"level\":\"info\",\"msg\":\"access\","
	              "\"rid\":\"%s\","
	              "\"remote\":",
	              eb_log_prio(EB_LOG_INFO), ts, req->id);
	eb_buf_add_json_str(&b, eb_req_remote(req));
	eb_buf_addstr(&b, ",\"method\":");
	eb_buf_add_json_str(&b, req->method ? req->method : "-");
	eb_buf_addstr(&b, ",\"path\":");
	/* never the query (it may carry codes and tokens); never a path that
	 * carries a secret */
	if (rt != NULL && (rt->flags & EB_ROUTE_REDACT_PATH))
		eb_buf_add_json_str(&b, rt->pattern);
	else if (req->path != NULL && strlen(req->path) <= 256)
		eb_buf_add_json_str(&b, req->path);
	else
		eb_buf_add_json_str(&b, req->path ? "(long path)" : "-");
	eb_buf_addstr(&b, ",\"route\":");
	eb_buf_add_json_str(&b, rt ? rt->name : "-");
	if (req->tenant != NULL) {
		eb_buf_addstr(&b, ",\"tenant\":");
		eb_buf_add_json_str(&b, req->tenant->id);
	}
	if (req->lctx.trace_id[0] != '\0')
		eb_buf_printf(&b, ",\"trace_id\":\"%s\"", req->lctx.trace_id);
	eb_buf_printf(&b, ",\"status\":%d,\"bytes\":%zu,\"ms\":%.3f}", status,
	              req->rlen, secs * 1000);
out:
	if (b.data != NULL)
		eb_log_line(b.data, b.len);
	eb_buf_finish(&b);
}

static void
completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
	struct eb_server *srv = cls;
	struct eb_request *req = *con_cls;
	double secs;
	int status;

	if (req == NULL)
		return;
	*con_cls = NULL;
	eb_log_ctx_set(&req->lctx);
	/* on a kept-alive connection the next head is due from now */
	eb_conntrack_head_wait(req->ct, eb_conntrack_now());
	/* answered without (all of) its body: the connection ends now (in
	 * external epoll mode libmicrohttpd would otherwise keep it until
	 * its next event or its timeout; see stream_read) */
	if (req->early)
		stream_shutdown(req);
	secs = elapsed(&req->start);
	status = req->queued ? req->status : 0;
	if (req->method != NULL) {
		eb_metrics_request(
		    srv->env->metrics,
		    req->route >= 0 ? req->route + srv->metrics_base : -1,
		    status, secs);
		if (req->cfg == NULL || req->cfg->access_log)
			access_log(req, secs, status);
	}
	/* an async handler still holding the request must finish first */
	pthread_mutex_lock(&req->lock);
	pthread_mutex_unlock(&req->lock);
	request_free(req);
	eb_log_ctx_set(NULL);
	atomic_fetch_sub(&srv->inflight, 1);
	eb_metrics_inflight(srv->env->metrics, -1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	eb_log(EB_LOG_DEBUG, "libmicrohttpd", "%s", msg);
}

static char *
read_file(const char *path, size_t max)
{
	struct eb_buf b;
	char chunk[4096];
	size_t n;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	eb_buf_init(&b, max);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (eb_buf_add(&b, chunk, n) == -1) {
			fclose(f);
			eb_buf_finish_secret(&b);
			return NULL;
		}
	fclose(f);
	return eb_buf_detach(&b, NULL);
}

/* enrollbridge_tls_certificate_expiry_timestamp_seconds: the notAfter of
 * the certificate in cfg's tls.cert (call again whenever it is re-read). */
static void
tls_expiry_metric(struct eb_server *srv, const struct eb_config *cfg)
{
	long long t;
	char *pem;

	if ((pem = read_file(cfg->tls_cert, 1024 * 1024)) != NULL &&
	    eb_metrics_cert_not_after(pem, strlen(pem), &t) == 0)
		eb_metrics_set(
		    srv->env->metrics,
		    "enrollbridge_tls_certificate_expiry_timestamp_seconds", "",
		    (double)t);
	else
		log_warnx("tls: cannot read the certificate's expiry date");
	eb_free(pem);
}

static unsigned
ncores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (n > 64 ? 64 : (unsigned)n);
}

/* ---- per-IP connection limit ---- */

/* The per-address key of sa (see eb_conntrack_addr_key). */
static size_t
ip_key(const struct sockaddr *sa, socklen_t len, unsigned char out[16])
{
	return eb_conntrack_addr_key(sa, (size_t)len, out);
}

static struct ip_count **
ip_slot(struct eb_server *srv, const unsigned char *k, size_t len)
{
	struct ip_count **pp;
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ k[i]) * 16777619u;
	for (pp = &srv->ip[h % IP_BUCKETS]; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->len == len && memcmp((*pp)->addr, k, len) == 0)
			break;
	return pp;
}

/*
 * With more than one listener, every daemon of a worker may hold the
 * worker's whole share of limits.max_connections: count the connections
 * of all of them here so that the limit stays one for the server.
 */
static int
conns_take(struct eb_server *srv)
{
	if (srv->nlisteners < 2)
		return 0; /* libmicrohttpd's own limit is the whole one */
	if (atomic_fetch_add(&srv->nconns, 1) >= srv->max_conns) {
		atomic_fetch_sub(&srv->nconns, 1);
		eb_log(EB_LOG_DEBUG, "http",
		       "connection refused: limits.max_connections (%u) "
		       "reached",
		       srv->max_conns);
		return -1;
	}
	return 0;
}

static void
conns_give(struct eb_server *srv)
{
	if (srv->nlisteners >= 2)
		atomic_fetch_sub(&srv->nconns, 1);
}

static enum MHD_Result ip_count_take(struct eb_server *srv,
                                     const struct sockaddr *sa, socklen_t len);

/*
 * libmicrohttpd's accept policy: refuse a connection past the connection
 * limit of every listener together or the per-IP limit, else count it.
 * The workers' daemons share these counts (each daemon's own per-IP limit
 * would only see its share of the connections). The counts are given back
 * when the connection closes (conn_notify). Both limits see the TCP peer:
 * no request head has been read yet.
 */
static enum MHD_Result
ip_accept(void *cls, const struct sockaddr *sa, socklen_t len)
{
	struct eb_server *srv = cls;

	if (conns_take(srv) == -1)
		return MHD_NO;
	if (ip_count_take(srv, sa, len) == MHD_YES)
		return MHD_YES;
	conns_give(srv);
	return MHD_NO;
}

/* Count a connection against the per-IP limit; MHD_NO past it. */
static enum MHD_Result
ip_count_take(struct eb_server *srv, const struct sockaddr *sa, socklen_t len)
{
	struct ip_count **pp, *c;
	unsigned char k[16];
	size_t kl;
	enum MHD_Result ok = MHD_YES;

	if (srv->per_ip_limit == 0 || (kl = ip_key(sa, len, k)) == 0)
		return MHD_YES;
	pthread_mutex_lock(&srv->ip_lock);
	pp = ip_slot(srv, k, kl);
	if ((c = *pp) == NULL) {
		if ((c = eb_calloc(1, sizeof(*c))) == NULL) {
			ok = MHD_NO;
			goto out;
		}
		c->len = (unsigned char)kl;
		memcpy(c->addr, k, kl);
		*pp = c;
	}
	if (c->count >= srv->per_ip_limit)
		ok = MHD_NO;
	else
		c->count++;
out:
	pthread_mutex_unlock(&srv->ip_lock);
	if (ok == MHD_NO)
		eb_log(EB_LOG_DEBUG, "http",
		       "connection refused: per-IP limit (%u) reached",
		       srv->per_ip_limit);
	return ok;
}

/* Give back the count ip_accept took for a connection. */
static void
ip_release(struct eb_server *srv, const struct sockaddr *sa, socklen_t len)
{
	struct ip_count **pp, *c;
	unsigned char k[16];
	size_t kl;

	if (srv->per_ip_limit == 0 || (kl = ip_key(sa, len, k)) == 0)
		return;
	pthread_mutex_lock(&srv->ip_lock);
	pp = ip_slot(srv, k, kl);
	if ((c = *pp) != NULL && c->count > 0 && --c->count == 0) {
		*pp = c->next;
		eb_free(c);
	}
	pthread_mutex_unlock(&srv->ip_lock);
}

static void
conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
            enum MHD_ConnectionNotificationCode code)
{
	struct eb_server *srv = cls;
	const union MHD_ConnectionInfo *ci;
	struct sockaddr_storage ss;
	socklen_t len;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		struct eb_ct_conn *c = NULL;

		/* counted by ip_accept; tracked (head deadline, eviction)
		 * by the worker whose daemon accepted it */
		ci = MHD_get_connection_info(conn,
		                             MHD_CONNECTION_INFO_CONNECTION_FD);
		if (t_worker != NULL && t_worker->ct != NULL && ci != NULL)
			c = eb_conntrack_add(t_worker->ct, ci->connect_fd,
			                     eb_conntrack_now());
		*socket_context = c != NULL ? (void *)c : (void *)srv;
		return;
	}
	if (*socket_context == NULL)
		return;
	if (*socket_context != (void *)srv)
		eb_conntrack_remove(*socket_context);
	*socket_context = NULL;
	conns_give(srv);
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return;
	len = ci->client_addr->sa_family == AF_INET6
	          ? sizeof(struct sockaddr_in6)
	          : sizeof(struct sockaddr_in);
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, ci->client_addr, len);
	ip_release(srv, (struct sockaddr *)&ss, len);
}

/* ---- workers ---- */

enum { TAG_MHD = 1, TAG_WAKE, TAG_HTTP };

static int
epoll_add(int epfd, int fd, uint32_t tag)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.u32 = tag;
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void
wake(struct worker *w)
{
	uint64_t one = 1;

	if (write(w->wakefd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_warn("http: waking a worker");
}

static void
worker_quiesce(struct worker *w)
{
	MHD_socket s;
	unsigned i;

	for (i = 0; i < w->nd; i++)
		if ((s = MHD_quiesce_daemon(w->d[i])) != MHD_INVALID_SOCKET)
			close(s); /* this daemon's copy of the socket */
	atomic_store(&w->quiesce, 2);
}

/* Run every daemon of the worker. */
static void
worker_run(struct worker *w)
{
	unsigned i;

	for (i = 0; i < w->nd; i++)
		MHD_run(w->d[i]);
}

/* The soonest of the daemons' timeouts, in ms; 0 (and -1 in *ms) if none. */
static int
worker_mhd_timeout(struct worker *w, int *ms)
{
	MHD_UNSIGNED_LONG_LONG mt, best = 0;
	unsigned i;
	int any = 0;

	for (i = 0; i < w->nd; i++)
		if (MHD_get_timeout(w->d[i], &mt) == MHD_YES &&
		    (!any || mt < best)) {
			best = mt;
			any = 1;
		}
	*ms = !any ? -1 : best > INT_MAX ? INT_MAX : (int)best;
	return any;
}

/*
 * End the connections of this worker past their head deadline or below
 * the minimum body rate, and say in the log how many were ended and why
 * (also those ended because the table was full). Sets the next sweep.
 */
static void
worker_sweep(struct worker *w, int64_t now)
{
	unsigned heads, bodies, evicted;
	int64_t due;

	due = eb_conntrack_sweep(w->ct, now, &heads, &bodies);
	evicted = eb_conntrack_take_evicted(w->ct);
	if (heads > 0)
		log_info("http: closed %u connection(s): no complete request "
		         "head within limits.head_timeout",
		         heads);
	if (bodies > 0)
		log_info("http: closed %u connection(s): request body slower "
		         "than limits.min_body_rate",
		         bodies);
	if (evicted > 0)
		log_warnx("http: connection table full: closed the %u oldest "
		          "connection(s) still waiting for a request head",
		          evicted);
	/* at least once a second: the evictions made at accept are logged
	 * here, and new connections' deadlines come after those known */
	w->sweep_at = now + (due < 0 || due > 1000 ? 1000 : due);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[8];
	uint64_t v;
	int64_t now;
	int n, i, timeout, ht, mhd_timer, run_mhd, run_http;

	t_worker = w;
	eb_http_loop_bind(w->hl);
	eb_tls_bind(w->srv->tlsx); /* its handshakes run on this thread */
	while (!atomic_load(&w->srv->stopping)) {
		/* what it shuts down raises events for the daemon */
		if ((now = eb_conntrack_now()) >= w->sweep_at)
			worker_sweep(w, now);
		mhd_timer = worker_mhd_timeout(w, &timeout);
		ht = eb_http_loop_timeout(w->hl);
		if (ht >= 0 && (timeout < 0 || ht < timeout)) {
			timeout = ht;
			mhd_timer = 0;
		}
		if (w->mhd_due)
			timeout = 0; /* see below */
		if (timeout < 0 || w->sweep_at - now < timeout) {
			timeout = (int)(w->sweep_at - now); /* at most 1 s */
			mhd_timer = 1; /* then the daemon runs too */
		}
		n = epoll_wait(w->epfd, ev, 8, timeout);
		if (n == -1 && errno != EINTR) {
			log_warn("http: epoll_wait");
			usleep(10000);
		}
		run_mhd = n == 0 && mhd_timer;
		run_http = n == 0 && !mhd_timer;
		for (i = 0; i < n; i++) {
			switch (ev[i].data.u32) {
			case TAG_MHD:
				run_mhd = 1;
				break;
			case TAG_HTTP:
				run_http = 1;
				break;
			case TAG_WAKE:
				if (read(w->wakefd, &v, sizeof(v)) == -1 &&
				    errno != EAGAIN)
					log_warn("http: worker wake-up");
				if (atomic_load(&w->quiesce) == 1)
					worker_quiesce(w);
				run_mhd = 1; /* maybe a resume */
				break;
			}
		}
		/* completed upstream transfers resume their connections:
		 * answer them in this same round */
		if ((run_http || eb_http_loop_timeout(w->hl) == 0) &&
		    eb_http_loop_run(w->hl, 0) > 0)
			run_mhd = 1;
		if (w->mhd_due) {
			w->mhd_due = 0;
			run_mhd = 1;
		}
		if (run_mhd)
			worker_run(w);
	}
	if (atomic_load(&w->quiesce) == 1)
		worker_quiesce(w);
	/* end the upstream transfers still under way: their requests are
	 * resumed (with a 502) before the daemon is stopped */
	eb_http_loop_free(w->hl);
	w->hl = NULL;
	worker_run(w);
	return NULL;
}

/* How an address is written in logs and errors: [v6]:port or v4:port. */
static void
addr_str(const struct eb_listen *l, char *out, size_t len)
{
	snprintf(out, len, strchr(l->host, ':') != NULL ? "[%s]:%u" : "%s:%u",
	         l->host, (unsigned)l->port);
}

/* Where a server listens: the configuration key, its addresses, TLS. */
struct bind {
	const char *key; /* "listen", "admin_listen" */
	const struct eb_listen *l;
	size_t n;
	int tls;
};

/* The listening socket of b's address i, bound and listening; -1 with err. */
static int
listen_socket(const struct eb_config *cfg, const struct bind *b, size_t i,
              char *err, size_t errlen)
{
	const struct eb_listen *l = &b->l[i];
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	char name[INET6_ADDRSTRLEN + 8], key[32];
	int fd, one = 1, e;

	memset(&ss, 0, sizeof(ss));
	addr_str(l, name, sizeof(name));
	/* a list's entry by its index, a lone string by its key */
	if (b->n > 1)
		snprintf(key, sizeof(key), "%s[%zu]", b->key, i);
	else
		snprintf(key, sizeof(key), "%s", b->key);
	if (inet_pton(AF_INET, l->host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(l->port);
		len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, l->host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(l->port);
		len = sizeof(*s6);
	} else {
		snprintf(err, errlen, "%s: %s: not an IP address: %s",
		         cfg->file, key, l->host);
		return -1;
	}
	if ((fd = socket(ss.ss_family,
	                 SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) ==
	    -1) {
		snprintf(err, errlen, "%s: %s: %s: socket: %s", cfg->file, key,
		         name, strerror(errno));
		return -1;
	}
	/* SO_REUSEADDR for a quick restart; never SO_REUSEPORT, so that a
	 * second instance on the same port fails here. IPv6 sockets are
	 * IPv6 only: dual stack is two entries. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(fd, SOMAXCONN) == -1) {
		e = errno;
		close(fd);
		snprintf(err, errlen, "%s: %s: cannot serve on %s: %s%s",
		         cfg->file, key, name, strerror(e),
		         e == EADDRINUSE ? " (is another instance running?)"
		                         : "");
		return -1;
	}
	return fd;
}

/* Start one daemon of w on its own descriptor of the socket lfd. */
static struct MHD_Daemon *
daemon_start(struct eb_server *srv, int lfd, const struct eb_config *cfg,
             unsigned conn_limit, size_t pool)
{
	struct MHD_OptionItem tlsopt[3];
	struct MHD_Daemon *d;
	unsigned flags;
	size_t n = 0;
	int dfd;

	if ((dfd = fcntl(lfd, F_DUPFD_CLOEXEC, 0)) == -1)
		return NULL;
	flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
	        MHD_USE_TURBO;
	if (srv->tls) {
		flags |= MHD_USE_TLS;
		n = eb_tls_mhd_options(srv->tlsx, tlsopt, 2);
	}
	tlsopt[n].option = MHD_OPTION_END;
	tlsopt[n].value = 0;
	tlsopt[n].ptr_value = NULL;
	/* the daemon owns dfd (its own descriptor of the shared socket) */
	d = MHD_start_daemon(flags, 0, ip_accept, srv, access_cb, srv,
	                     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
	                     MHD_OPTION_LISTEN_SOCKET, dfd,
	                     MHD_OPTION_CONNECTION_LIMIT, conn_limit,
	                     MHD_OPTION_CONNECTION_TIMEOUT,
	                     (unsigned)cfg->limits.connection_timeout,
	                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
	                     MHD_OPTION_URI_LOG_CALLBACK, uri_log_cb, srv,
	                     MHD_OPTION_NOTIFY_COMPLETED, completed_cb, srv,
	                     MHD_OPTION_NOTIFY_CONNECTION, conn_notify, srv,
	                     MHD_OPTION_ARRAY, tlsopt, MHD_OPTION_END);
	if (d == NULL)
		close(dfd);
	return d;
}

/* Start worker w with a daemon on each of the nl sockets in lfd. */
static int
worker_start(struct eb_server *srv, struct worker *w, const int *lfd,
             unsigned nl, const struct eb_config *cfg, unsigned conn_limit,
             size_t pool)
{
	const union MHD_DaemonInfo *di;
	unsigned i;

	w->srv = srv;
	w->epfd = w->wakefd = -1;
	if ((w->ct = eb_conntrack_create(
	         conn_limit, (int64_t)cfg->limits.head_timeout * 1000,
	         cfg->limits.min_body_rate)) == NULL ||
	    (w->hl = eb_http_loop_new()) == NULL ||
	    (w->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (w->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1 ||
	    epoll_add(w->epfd, w->wakefd, TAG_WAKE) == -1 ||
	    epoll_add(w->epfd, eb_http_loop_fd(w->hl), TAG_HTTP) == -1)
		return -1;
	for (i = 0; i < nl; i++) {
		if ((w->d[i] = daemon_start(srv, lfd[i], cfg, conn_limit,
		                            pool)) == NULL)
			return -1;
		w->nd = i + 1;
		if ((di = MHD_get_daemon_info(
		         w->d[i], MHD_DAEMON_INFO_EPOLL_FD)) == NULL ||
		    epoll_add(w->epfd, di->epoll_fd, TAG_MHD) == -1)
			return -1;
	}
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
		return -1;
	w->running = 1;
	return 0;
}

/*
 * Every connection is a descriptor: raise the soft limit to the hard one
 * so that limits.max_connections can be reached (beyond it libmicrohttpd
 * fails accept(2) and new clients wait in the backlog), and say when even
 * the hard limit is too low.
 */
static void
raise_nofile(unsigned conns)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("http: raising the descriptor limit");
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)conns + 256)
		log_warnx("http: the descriptor limit (%llu) is below "
		          "limits.max_connections (%u) plus a reserve: fewer "
		          "connections can be served",
		          (unsigned long long)rl.rlim_cur, conns);
}

/* Bind every address of b into lfd; the port of the first in *port. */
static int
listen_all(const struct eb_config *cfg, const struct bind *b, int *lfd,
           uint16_t *port, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	size_t i;

	if (b->n == 0 || b->n > EB_CONFIG_MAX_LISTEN) {
		snprintf(err, errlen, "%s: %s: must name 1 to %d addresses",
		         cfg->file, b->key, EB_CONFIG_MAX_LISTEN);
		return -1;
	}
	for (i = 0; i < b->n; i++)
		if ((lfd[i] = listen_socket(cfg, b, i, err, errlen)) == -1)
			return -1;
	if (getsockname(lfd[0], (struct sockaddr *)&ss, &sl) == 0)
		*port = ntohs(ss.ss_family == AF_INET6
		                  ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                  : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

/* One "listening on" line per address. */
static void
log_listening(const struct eb_server *srv, const struct bind *b,
              unsigned threads)
{
	char name[INET6_ADDRSTRLEN + 8];
	size_t i;

	for (i = 0; i < b->n; i++) {
		addr_str(&b->l[i], name, sizeof(name));
		/* no empty %s pieces: the text log shows "" for them */
		log_info(srv->tls ? "%s: listening on %s (%u threads, TLS)"
		                  : "%s: listening on %s (%u threads)",
		         b->key, name, threads);
	}
}

static struct eb_server *
server_start(struct eb_env *env, struct eb_config *cfg, const struct bind *b,
             const struct eb_route *routes, size_t nroutes, char *err,
             size_t errlen)
{
	struct eb_server *srv;
	unsigned threads, i, limit;
	size_t pool, k;
	int lfd[EB_CONFIG_MAX_LISTEN];

	for (k = 0; k < EB_CONFIG_MAX_LISTEN; k++)
		lfd[k] = -1;
	if ((srv = eb_calloc(1, sizeof(*srv))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	pthread_mutex_init(&srv->ip_lock, NULL);
	srv->env = env;
	srv->routes = routes;
	srv->nroutes = nroutes;
	srv->max_header_bytes = cfg->limits.max_header_bytes;
	srv->max_body_bytes = cfg->limits.max_body_bytes;
	srv->per_ip_limit = cfg->limits.per_ip_connections;
	srv->max_conns = cfg->limits.max_connections;
	srv->nlisteners = (unsigned)b->n;
	srv->body_budget = cfg->limits.body_budget_bytes;
	raise_nofile(cfg->limits.max_connections);
	RAND_bytes((unsigned char *)&srv->id_prefix, sizeof(srv->id_prefix));

	if (b->tls) {
		if ((srv->tlsx = eb_tls_create(cfg, err, errlen)) == NULL)
			goto fail;
		srv->tls = 1;
		tls_expiry_metric(srv, cfg);
	}
	if (listen_all(cfg, b, lfd, &srv->port, err, errlen) == -1)
		goto fail;
	threads = cfg->limits.threads ? cfg->limits.threads : ncores();
	if ((srv->w = eb_calloc(threads, sizeof(*srv->w))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/*
	 * The per-connection pool holds the request line, the headers and the
	 * read buffer. libmicrohttpd clears its unused part between requests
	 * on a kept-alive connection, so it is sized to the header limit
	 * rather than generously: a larger pool costs CPU on every request.
	 */
	pool = cfg->limits.max_header_bytes + 4096;
	if (pool < 8192)
		pool = 8192;
	for (i = 0; i < threads; i++) {
		/* the connection limit is split between the workers, as
		 * libmicrohttpd's own thread pool does */
		limit = cfg->limits.max_connections / threads +
		        (i < cfg->limits.max_connections % threads ? 1 : 0);
		srv->nworkers = i + 1;
		if (worker_start(srv, &srv->w[i], lfd, srv->nlisteners, cfg,
		                 limit > 0 ? limit : 1, pool) == -1) {
			snprintf(err, errlen,
			         "%s: %s: cannot start HTTP worker %u "
			         "(%s)",
			         cfg->file, b->key, i, strerror(errno));
			goto fail;
		}
	}
	/* each daemon has its own descriptor of its socket */
	for (k = 0; k < b->n; k++)
		close(lfd[k]);
	log_listening(srv, b, threads);
	return srv;
fail:
	for (k = 0; k < EB_CONFIG_MAX_LISTEN; k++)
		if (lfd[k] != -1)
			close(lfd[k]);
	eb_server_stop(srv);
	return NULL;
}

struct eb_server *
eb_server_start(struct eb_env *env, const struct eb_route *routes,
                size_t nroutes, char *err, size_t errlen)
{
	struct eb_config *cfg = eb_env_config(env);
	struct bind b = {"listen", cfg->listen, cfg->nlisten,
	                 cfg->tls_cert != NULL};
	struct eb_server *srv;

	srv = server_start(env, cfg, &b, routes, nroutes, err, errlen);
	eb_config_unref(cfg);
	return srv;
}

struct eb_server *
eb_server_start_admin(struct eb_env *env, const struct eb_route *routes,
                      size_t nroutes, size_t metrics_base, char *err,
                      size_t errlen)
{
	struct eb_config *cfg = eb_env_config(env);
	struct eb_listen l = {cfg->admin_listen_host, cfg->admin_listen_port};
	struct bind b = {"admin_listen", &l, 1, 0};
	struct eb_server *srv = NULL;

	if (cfg->admin_listen_host == NULL)
		snprintf(err, errlen, "%s: admin_listen: not set", cfg->file);
	else if ((srv = server_start(env, cfg, &b, routes, nroutes, err,
	                             errlen)) != NULL)
		srv->metrics_base = (int)metrics_base;
	eb_config_unref(cfg);
	return srv;
}

void
eb_server_reload_tls(struct eb_server *srv)
{
	struct eb_config *cfg = eb_env_config(srv->env);
	char err[512];
	int rc;

	if ((cfg->tls_cert != NULL) != srv->tls)
		log_warnx("reload: turning TLS on or off takes effect only "
		          "after a restart");
	else if (srv->tls) {
		if (eb_tls_policy_differs(srv->tlsx, cfg))
			log_warnx("reload: tls.min_version and tls.priorities "
			          "changes take effect only after a restart");
		if ((rc = eb_tls_reload(srv->tlsx, cfg, err, sizeof(err))) ==
		    -1)
			log_warnx("%s: tls: certificate not reloaded, the old "
			          "one keeps serving: %s",
			          cfg->file, err);
		else if (rc == 1) {
			log_info("tls: new certificate loaded from %s; "
			         "connections open keep the old one",
			         cfg->tls_cert);
			tls_expiry_metric(srv, cfg);
		}
	}
	eb_config_unref(cfg);
}

uint16_t
eb_server_port(const struct eb_server *srv)
{
	return srv->port;
}

void
eb_server_quiesce(struct eb_server *srv)
{
	unsigned i, done;
	int waited;

	if (srv == NULL)
		return;
	/* each worker stops accepting on its own thread */
	for (i = 0; i < srv->nworkers; i++) {
		if (!srv->w[i].running)
			continue;
		atomic_store(&srv->w[i].quiesce, 1);
		wake(&srv->w[i]);
	}
	for (waited = 0; waited < 5000; waited += 5) {
		for (i = done = 0; i < srv->nworkers; i++)
			done += !srv->w[i].running ||
			        atomic_load(&srv->w[i].quiesce) == 2;
		if (done == srv->nworkers)
			return;
		usleep(5000);
	}
	log_warnx("http: a worker did not stop accepting within 5 s");
}

int
eb_server_drain(struct eb_server *srv, int timeout_ms)
{
	int waited = 0;

	while (atomic_load(&srv->inflight) > 0) {
		if (waited >= timeout_ms)
			return -1;
		usleep(10000);
		waited += 10;
	}
	return 0;
}

void
eb_server_stop(struct eb_server *srv)
{
	struct ip_count *c;
	unsigned i, j;

	if (srv == NULL)
		return;
	atomic_store(&srv->stopping, 1);
	for (i = 0; i < srv->nworkers; i++)
		if (srv->w[i].running)
			wake(&srv->w[i]);
	for (i = 0; i < srv->nworkers; i++) {
		struct worker *w = &srv->w[i];

		if (w->running)
			pthread_join(w->thread, NULL);
		eb_http_loop_free(w->hl); /* when the thread never ran */
		for (j = 0; j < w->nd; j++)
			MHD_stop_daemon(w->d[j]);
		eb_conntrack_destroy(w->ct); /* its connections are closed */
		if (w->epfd != -1)
			close(w->epfd);
		if (w->wakefd != -1)
			close(w->wakefd);
	}
	for (i = 0; i < IP_BUCKETS; i++)
		while ((c = srv->ip[i]) != NULL) {
			srv->ip[i] = c->next;
			eb_free(c);
		}
	pthread_mutex_destroy(&srv->ip_lock);
	eb_free(srv->w);
	eb_tls_destroy(srv->tlsx); /* after the daemons: no handshake left */
	eb_free(srv);
}
