/*
 * A small HTTP/1.1 client for the asynchronous loops (client_async.c). On
 * a loop's own thread, a request to a plain http:// URL whose host is an
 * IP address goes through here instead of curl: the MDM proxy's hot path.
 * curl costs tens of microseconds of CPU per request (option handling,
 * proxy and connection checks, header generation and parsing) where this
 * needs a send and a receive on a kept-alive connection.
 *
 * Anything else (https, host names, redirects, a proxy in the environment,
 * caller headers that frame the message) stays with curl: eb_h1_fetch() says
 * 0 and the caller uses curl. What it does, it does strictly: one
 * Content-Length or "chunked" and never both, bounded header and body
 * sizes, a connect and a total deadline, no header value with a CR, LF or
 * NUL. A kept-alive connection that turns out closed before any byte of
 * the response is retried once on a new connection, as curl does.
 *
 * Connections are registered in the loop's epoll set with data.u64 =
 * the connection's address | 1 (see client_async.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "http/client_int.h"

#ifndef EB_VERSION
#define EB_VERSION "dev"
#endif

/* Idle connections kept per upstream address, and for how long. */
#define H1_MAX_IDLE    256
#define H1_IDLE_MS     50000
#define H1_MAX_ORIGINS 64
/* Most connections a loop opens to one upstream address; more transfers
 * wait for one to be free (an MDM is not flooded with connections when
 * thousands of devices check in at once), each in its fairness key's
 * queue (struct h1_share). */
#define H1_MAX_CONNS 128
/* Bytes received at once, and most kept unparsed (head, chunk lines). */
#define H1_RECV           16384
#define H1_MAX_UNPARSED   (EB_HTTP_MAX_HEADER_BYTES + H1_RECV)
#define H1_MAX_CHUNK_LINE 1024

/* Fairness (eb_http_options.fair_key): buckets of an origin's table of
 * keys, and the most bytes of a key that count (a grant id or an address
 * is far shorter). */
#define H1_SHARE_BUCKETS 256
#define H1_MAX_KEY       128

_Static_assert(EB_HTTP_FAIR_SHARE >= 4 &&
                   EB_HTTP_FAIR_SHARE >= H1_MAX_CONNS / 8 &&
                   EB_HTTP_FAIR_SHARE <= H1_MAX_CONNS,
               "a fair share is max(4, pool/8)");

struct h1_conn;
struct h1_xfer;

/*
 * One fairness key's part of an origin: its transfers holding (or
 * opening) a connection, and those waiting, oldest first. A share with
 * waiters and room to run one is on the origin's ready list; eb_h1_kick()
 * takes the list's first, starts its oldest transfer and puts it back at
 * the end while it has more: the keys take turns. A share exists while it
 * has a transfer.
 */
struct h1_share {
	struct h1_share *next;       /* hash bucket */
	struct h1_share *ready_next; /* the origin's ready list */
	int ready;                   /* on the ready list */
	size_t running;
	size_t nwait;
	size_t refused; /* since its queue was last short (logged once) */
	struct h1_xfer *wait_head, *wait_tail;
	char key[]; /* "" for transfers without a key */
};

struct h1_origin {
	struct h1_origin *next;
	struct sockaddr_storage sa;
	socklen_t salen;
	struct h1_conn *idle; /* most recently used first */
	size_t nidle;
	size_t nconns; /* open: idle and busy */
	/* fairness keys of the transfers to this origin */
	struct h1_share *shares[H1_SHARE_BUCKETS];
	struct h1_share *ready_head, *ready_tail;
	size_t nwait; /* transfers waiting, all keys */
};

enum h1_phase {
	P_CONNECT,    /* waiting for connect() */
	P_HEAD,       /* sending and/or reading the status line and headers */
	P_BODY_LEN,   /* reading a Content-Length body */
	P_CHUNK_SIZE, /* reading a chunk-size line */
	P_CHUNK_DATA, /* reading chunk data */
	P_CHUNK_CRLF, /* reading the CRLF after chunk data */
	P_TRAILER,    /* reading trailer lines up to the empty one */
	P_BODY_CLOSE, /* reading a body delimited by the connection's end */
	P_WAIT        /* waiting for a connection to the origin (not 0: a new
	                 transfer is not on the wait list) */
};

struct h1_conn {
	struct h1_conn *next; /* idle list */
	struct h1_loop *h;
	struct h1_origin *o;
	struct h1_xfer *x; /* NULL when idle */
	int fd;
	uint32_t events; /* registered with epoll */
	int reused;      /* has served a response before */
	long long idle_since;
};

struct h1_xfer {
	struct eb_http_xfer base;    /* first: see client_int.h */
	struct h1_xfer *next, *prev; /* active list */
	struct h1_xfer *wait_next;   /* its share's wait list */
	struct h1_loop *h;
	struct h1_origin *o;
	struct h1_share *share; /* its fairness key at o */
	int holding;            /* counted in share->running */
	struct h1_conn *c;
	eb_http_done_fn done;
	void *arg;
	char *url;
	char *out; /* the request, head and body */
	size_t out_len, out_off;
	struct fetch_ctx ctx;
	struct eb_buf in; /* received, not yet parsed */
	size_t in_off;
	enum h1_phase phase;
	int head_req;
	int keep_alive;
	int got_bytes; /* any byte of a response */
	int retried;
	int paused;  /* streaming: data did not take the last bytes */
	int resumed; /* on the loop's list of transfers to go on with */
	long status;
	unsigned long long left; /* of the body or chunk */
	long long start_ms, connect_deadline, deadline;
	long connect_ms;
};

struct h1_loop {
	int epfd;
	struct h1_origin *origins;
	size_t norigins;
	struct h1_xfer *active;
	size_t nresumed; /* transfers with resumed set */
	/*
	 * No active transfer's deadline is earlier (0: not known). Lowered
	 * when a transfer starts or connects; never raised but by a walk, and
	 * walked again once passed: too early only costs that walk, when it
	 * comes, instead of one on every turn of the loop.
	 */
	long long first_deadline;
	/* closed connections: freed after the event batch that may still
	 * name them (eb_h1_reap) */
	struct h1_conn *dead;
};

/* Counters for /metrics, all loops (eb_http_async_stats). */
static atomic_ullong g_xfers, g_connects, g_reused, g_retries;

void
eb_h1_stats(struct eb_http_async_stats *st)
{
	st->native_transfers =
	    atomic_load_explicit(&g_xfers, memory_order_relaxed);
	st->native_connects =
	    atomic_load_explicit(&g_connects, memory_order_relaxed);
	st->native_reused =
	    atomic_load_explicit(&g_reused, memory_order_relaxed);
	st->native_retries =
	    atomic_load_explicit(&g_retries, memory_order_relaxed);
}

/* ---- eligibility and the request ---- */

/* A header name (up to the colon or semicolon) is one of these? */
static int
name_is(const char *line, size_t nl, const char *name)
{
	return strlen(name) == nl && strncasecmp(line, name, nl) == 0;
}

/*
 * Split an http:// URL whose host is an IP address into sa and the
 * request target; 0, or -1 when it is anything else.
 */
static int
parse_url(const char *url, struct sockaddr_storage *sa, socklen_t *salen,
          const char **target)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *p, *hend, *end;
	unsigned long port = 80;
	size_t n;

	if (strncmp(url, "http://", 7) != 0)
		return -1;
	p = url + 7;
	end = p + strcspn(p, "/?#");
	if (memchr(p, '@', (size_t)(end - p)) != NULL)
		return -1; /* user information: curl's business */
	if (*p == '[') {
		if ((hend = memchr(p, ']', (size_t)(end - p))) == NULL)
			return -1;
		n = (size_t)(hend - p - 1);
		if (n >= sizeof(host))
			return -1;
		memcpy(host, p + 1, n);
		host[n] = '\0';
		hend++;
	} else {
		hend = memchr(p, ':', (size_t)(end - p));
		if (hend == NULL)
			hend = end;
		n = (size_t)(hend - p);
		if (n == 0 || n >= sizeof(host))
			return -1;
		memcpy(host, p, n);
		host[n] = '\0';
	}
	if (hend < end) {
		const char *q;
		char *e;

		if (*hend != ':' || hend + 1 == end)
			return -1;
		/* digits only: strtoul() would also skip blanks, CR and LF
		 * and take a sign, and the authority goes out as the Host
		 * header (test_http_native: CR/LF in the authority) */
		for (q = hend + 1; q < end; q++)
			if (*q < '0' || *q > '9')
				return -1;
		port = strtoul(hend + 1, &e, 10);
		if (e != end || port == 0 || port > 65535)
			return -1;
	}
	memset(sa, 0, sizeof(*sa));
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)sa)->sin_addr) ==
	    1) {
		((struct sockaddr_in *)sa)->sin_family = AF_INET;
		((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
		*salen = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, host,
	                     &((struct sockaddr_in6 *)sa)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)sa)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
		*salen = sizeof(struct sockaddr_in6);
	} else {
		return -1; /* a name: curl resolves it */
	}
	for (p = end; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
		    *p == '#')
			return -1;
	*target = end;
	return 0;
}

/*
 * The request head and body as curl would send them for these options:
 * the caller's headers ("Name:" removes a default, "Name;" sends an empty
 * value), then Host, and the defaults the caller did not set or remove.
 * Returns 0, 1 when curl should do it (a header we do not own), 2 when
 * nobody should (a control character in a header, the user agent, the
 * method or the URL), -1 OOM.
 */
static int
build_request(const struct eb_http_options *o, const char *target, char **out,
              size_t *outlen)
{
	const char *method = o->method;
	const char *host = o->url + 7;
	size_t hostlen = strcspn(host, "/?#");
	int has_ua = 0, has_accept = 0, has_ctype = 0, with_body;
	const char *const *v;
	struct eb_buf b;
	size_t est;
	int bad = 0;

	if (method == NULL)
		method = o->body != NULL ? "POST" : "GET";
	with_body = o->body != NULL || strcmp(method, "POST") == 0;
	/* a CR or LF would inject a header line: it must not go out (and no
	 * other control character either; the curl paths refuse them too) */
	if (!eb_http_request_text_ok(o))
		return 2;
	eb_buf_init(&b, EB_HTTP_MAX_HEADER_BYTES + o->body_len + 1024);
	/* one allocation: the head's size is close to the sum of its parts */
	est = strlen(method) + strlen(target) + hostlen + o->body_len + 256 +
	      (o->user_agent != NULL ? strlen(o->user_agent) : 0);
	for (v = o->headers; v != NULL && *v != NULL; v++)
		est += strlen(*v) + 2;
	if (eb_buf_reserve(&b, est) == -1)
		goto curl; /* past the head limit (or out of memory) */
	bad |= eb_buf_addstr(&b, method);
	bad |= eb_buf_addstr(&b, *target == '/' ? " " : " /");
	bad |= eb_buf_addstr(&b, target);
	bad |= eb_buf_addstr(&b, " HTTP/1.1\r\nHost: ");
	bad |= eb_buf_add(&b, host, hostlen);
	bad |= eb_buf_addstr(&b, "\r\n");
	for (v = o->headers; v != NULL && *v != NULL; v++) {
		const char *line = *v;
		size_t nl = strcspn(line, ":;");

		if (nl == 0 || line[nl] == '\0')
			goto curl;
		if (name_is(line, nl, "Host") ||
		    name_is(line, nl, "Content-Length") ||
		    name_is(line, nl, "Transfer-Encoding") ||
		    name_is(line, nl, "Connection") ||
		    name_is(line, nl, "TE") || name_is(line, nl, "Upgrade") ||
		    (name_is(line, nl, "Expect") && line[nl + 1] != '\0'))
			goto curl;
		if (name_is(line, nl, "User-Agent"))
			has_ua = 1;
		else if (name_is(line, nl, "Accept"))
			has_accept = 1;
		else if (name_is(line, nl, "Content-Type"))
			has_ctype = 1;
		if (line[nl] == ';') {
			if (line[nl + 1] != '\0')
				goto curl;
			bad |= eb_buf_printf(&b, "%.*s: \r\n", (int)nl, line);
		} else if (line[nl + 1] != '\0') {
			bad |= eb_buf_addstr(&b, line);
			bad |= eb_buf_addstr(&b, "\r\n");
		} /* else "Name:": removed */
	}
	if (!has_ua) {
		bad |= eb_buf_addstr(&b, "User-Agent: ");
		bad |= eb_buf_addstr(&b, o->user_agent != NULL
		                             ? o->user_agent
		                             : "enrollbridge/" EB_VERSION);
		bad |= eb_buf_addstr(&b, "\r\n");
	}
	if (!has_accept)
		bad |= eb_buf_addstr(&b, "Accept: */*\r\n");
	if (with_body) {
		if (!has_ctype)
			bad |= eb_buf_addstr(
			    &b, "Content-Type: "
			        "application/x-www-form-urlencoded\r\n");
		bad |=
		    eb_buf_printf(&b, "Content-Length: %zu\r\n", o->body_len);
	}
	bad |= eb_buf_addstr(&b, "\r\n");
	if (with_body && o->body_len > 0)
		bad |= eb_buf_add(&b, o->body, o->body_len);
	if (bad) { /* past the head limit (or out of memory): curl's */
		eb_buf_finish(&b);
		return 1;
	}
	*out = eb_buf_detach(&b, outlen);
	return *out != NULL ? 0 : -1;
curl:
	eb_buf_finish(&b);
	return 1;
}

/* ---- connections ---- */

static int
conn_watch(struct h1_conn *c, uint32_t events)
{
	struct epoll_event ev;

	if (c->events == events)
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.u64 = (uint64_t)(uintptr_t)c | 1;
	if (epoll_ctl(c->h->epfd, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
	              c->fd, &ev) == -1)
		return -1;
	c->events = events;
	return 0;
}

/* Out of the epoll set while its transfer is paused: a connection the
 * upstream reset would otherwise report EPOLLHUP on every wait. */
static void
conn_unwatch(struct h1_conn *c)
{
	if (c->events != 0 &&
	    epoll_ctl(c->h->epfd, EPOLL_CTL_DEL, c->fd, NULL) == 0)
		c->events = 0;
}

/* Close c; its memory waits for eb_h1_reap(), since the event batch being
 * handled may still hold its address. */
static void
conn_close(struct h1_conn *c)
{
	if (c == NULL)
		return;
	if (c->fd != -1) {
		close(c->fd); /* leaves the epoll set */
		if (c->o != NULL && c->o->nconns > 0)
			c->o->nconns--;
	}
	c->fd = -1;
	c->x = NULL;
	c->next = c->h->dead;
	c->h->dead = c;
}

static struct h1_origin *
origin_get(struct h1_loop *h, const struct sockaddr_storage *sa,
           socklen_t salen)
{
	struct h1_origin *o;

	for (o = h->origins; o != NULL; o = o->next)
		if (o->salen == salen && memcmp(&o->sa, sa, salen) == 0)
			return o;
	if (h->norigins >= H1_MAX_ORIGINS ||
	    (o = eb_calloc(1, sizeof(*o))) == NULL)
		return NULL;
	memcpy(&o->sa, sa, salen);
	o->salen = salen;
	o->next = h->origins;
	h->origins = o;
	h->norigins++;
	return o;
}

/*
 * Nothing arrived on idle connection c since its last response? The loop
 * drops a connection that speaks (eb_h1_event), but a request may come
 * before it looks: an EOF would cost a retry, and bytes (a "408 Request
 * Timeout" some servers send before closing) would be read as the
 * response to the next request (test_http_native: test_stale). One
 * non-blocking peek, as curl checks a connection before reusing it.
 */
static int
idle_quiet(const struct h1_conn *c)
{
	char b;

	return recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == -1 &&
	       (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* A kept-alive connection to o that is still fresh, or NULL. */
static struct h1_conn *
idle_take(struct h1_origin *o)
{
	struct h1_conn *c;
	long long now = eb_mono_ms();

	while ((c = o->idle) != NULL) {
		o->idle = c->next;
		o->nidle--;
		c->next = NULL;
		if (now - c->idle_since < H1_IDLE_MS && idle_quiet(c))
			return c;
		conn_close(c);
	}
	return NULL;
}

static void
idle_put(struct h1_conn *c)
{
	struct h1_origin *o = c->o;

	c->x = NULL;
	c->reused = 1;
	c->idle_since = eb_mono_ms();
	if (o->nidle >= H1_MAX_IDLE || conn_watch(c, EPOLLIN) == -1) {
		conn_close(c);
		return;
	}
	c->next = o->idle;
	o->idle = c;
	o->nidle++;
}

/* Take c off its origin's idle list (it closed, or said something). */
static void
idle_drop(struct h1_conn *c)
{
	struct h1_conn **pp;

	for (pp = &c->o->idle; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			c->o->nidle--;
			break;
		}
	conn_close(c);
}

/* ---- transfers ---- */

/* A transfer of h has a deadline at d (h1_loop.first_deadline). */
static void
deadline_add(struct h1_loop *h, long long d)
{
	if (h->first_deadline == 0 || d < h->first_deadline)
		h->first_deadline = d;
}

static void
xfer_unlink(struct h1_xfer *x)
{
	struct h1_loop *h = x->h;

	if (x->prev != NULL)
		x->prev->next = x->next;
	else if (h->active == x)
		h->active = x->next;
	if (x->next != NULL)
		x->next->prev = x->prev;
	x->next = x->prev = NULL;
	if (x->resumed) {
		x->resumed = 0;
		h->nresumed--;
	}
}

/* ---- fairness: shares of an origin (struct h1_share) ---- */

static size_t
share_hash(const char *key, size_t n)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ (unsigned char)key[i]) * 16777619u;
	return h % H1_SHARE_BUCKETS;
}

/* key's share of o, made when it has none; NULL when out of memory. */
static struct h1_share *
share_get(struct h1_origin *o, const char *key)
{
	struct h1_share *s;
	size_t n = strnlen(key, H1_MAX_KEY), i = share_hash(key, n);

	for (s = o->shares[i]; s != NULL; s = s->next)
		if (strncmp(s->key, key, n) == 0 && s->key[n] == '\0')
			return s;
	if ((s = eb_calloc(1, sizeof(*s) + n + 1)) == NULL)
		return NULL;
	memcpy(s->key, key, n);
	s->key[n] = '\0';
	s->next = o->shares[i];
	o->shares[i] = s;
	return s;
}

/* Free s once nothing refers to it. */
static void
share_put(struct h1_origin *o, struct h1_share *s)
{
	struct h1_share **pp;

	if (s == NULL || s->running > 0 || s->nwait > 0 || s->ready)
		return;
	for (pp = &o->shares[share_hash(s->key, strlen(s->key))]; *pp != NULL;
	     pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			eb_free(s);
			return;
		}
}

/* Most transfers of s running at once: transfers without a key (not
 * the proxy's) share the whole pool, as before keys. */
static size_t
share_cap(const struct h1_share *s)
{
	return s->key[0] != '\0' ? EB_HTTP_FAIR_SHARE : H1_MAX_CONNS;
}

/* s has waiters and room: give it a turn (at the end of the list). */
static void
share_ready(struct h1_origin *o, struct h1_share *s)
{
	if (s->ready || s->nwait == 0 || s->running >= share_cap(s))
		return;
	s->ready = 1;
	s->ready_next = NULL;
	if (o->ready_tail != NULL)
		o->ready_tail->ready_next = s;
	else
		o->ready_head = s;
	o->ready_tail = s;
}

/* x takes one of its share's places (it is starting). */
static void
share_hold(struct h1_xfer *x)
{
	if (!x->holding) {
		x->holding = 1;
		x->share->running++;
	}
}

/* x gives its place back (it ended, or waits again). */
static void
share_release(struct h1_xfer *x)
{
	struct h1_share *s = x->share;

	if (!x->holding)
		return;
	x->holding = 0;
	s->running--;
	share_ready(x->o, s);
}

/* Queue x behind its share's waiters; eb_h1_kick() starts it in turn. */
static void
wait_push(struct h1_xfer *x)
{
	struct h1_share *s = x->share;

	share_release(x);
	x->phase = P_WAIT;
	x->wait_next = NULL;
	if (s->wait_tail != NULL)
		s->wait_tail->wait_next = x;
	else
		s->wait_head = x;
	s->wait_tail = x;
	s->nwait++;
	x->o->nwait++;
	share_ready(x->o, s);
}

/* Take x off its share's wait list. */
static void
wait_unlink(struct h1_xfer *x)
{
	struct h1_share *s = x->share;
	struct h1_xfer **pp, *prev = NULL;

	for (pp = &s->wait_head; *pp != NULL;
	     prev = *pp, pp = &(*pp)->wait_next)
		if (*pp == x) {
			*pp = x->wait_next;
			if (s->wait_tail == x)
				s->wait_tail = prev;
			s->nwait--;
			x->o->nwait--;
			if (s->nwait < EB_HTTP_FAIR_QUEUE / 2)
				s->refused = 0;
			break;
		}
	x->wait_next = NULL;
}

/* An origin can take one more transfer now. */
static int
origin_has_room(const struct h1_origin *o)
{
	return o->idle != NULL || o->nconns < H1_MAX_CONNS;
}

static void
xfer_free(struct h1_xfer *x)
{
	eb_free(x->url);
	eb_free(x->out);
	eb_http_headers_free(x->ctx.headers, x->ctx.nheaders);
	eb_buf_finish(&x->ctx.body);
	eb_buf_finish(&x->in);
	eb_free(x);
}

/* Location resolved against the request URL, for an absolute URL or an
 * absolute path; NULL otherwise. */
static char *
redirect_of(const struct h1_xfer *x)
{
	const char *loc = NULL;
	size_t i, auth;

	for (i = 0; i < x->ctx.nheaders; i++)
		if (strcasecmp(x->ctx.headers[i].name, "Location") == 0) {
			loc = x->ctx.headers[i].value;
			break;
		}
	if (loc == NULL || x->status < 300 || x->status > 399)
		return NULL;
	if (strncmp(loc, "http://", 7) == 0 || strncmp(loc, "https://", 8) == 0)
		return eb_strdup(loc);
	if (loc[0] != '/' || loc[1] == '/')
		return NULL;
	auth = 7 + strcspn(x->url + 7, "/?#");
	{
		size_t n = auth + strlen(loc) + 1;
		char *s = eb_malloc(n);

		if (s != NULL)
			snprintf(s, n, "%.*s%s", (int)auth, x->url, loc);
		return s;
	}
}

/*
 * End x: the response (or the failure why) goes to its owner, the
 * connection back to the idle list when it can carry another request.
 */
static void
finish(struct h1_xfer *x, enum eb_http_error err, const char *why)
{
	struct eb_http_response *resp;
	struct h1_conn *c = x->c;
	eb_http_done_fn done = x->done;
	void *arg = x->arg;
	struct eb_log_ctx lctx = x->ctx.lctx;

	xfer_unlink(x);
	if (x->phase == P_WAIT)
		wait_unlink(x);
	if (x->share != NULL) {
		share_release(x);
		share_put(x->o, x->share);
	}
	x->c = NULL;
	if (c != NULL) {
		if (err == EB_HTTP_OK && x->keep_alive &&
		    x->out_off == x->out_len && x->in.len == x->in_off)
			idle_put(c);
		else
			conn_close(c);
	}
	if ((resp = eb_calloc(1, sizeof(*resp))) != NULL) {
		resp->error = err;
		if (why != NULL)
			eb_http_set_message(resp, why);
		resp->status = err == EB_HTTP_OK ? x->status : 0;
		resp->total_time_ms = (long)(eb_mono_ms() - x->start_ms);
		resp->effective_url = eb_strdup(x->url);
		if (err == EB_HTTP_OK)
			resp->redirect_url = redirect_of(x);
		if (eb_http_response_take(resp, &x->ctx) == -1 ||
		    resp->effective_url == NULL) {
			eb_http_response_free(resp);
			resp = NULL;
		}
	}
	xfer_free(x);
	eb_http_async_pending_done();
	eb_http_call_done(&lctx, done, resp, arg);
}

static int start_conn(struct h1_xfer *x);

/*
 * The connection failed before any byte of the response. A kept-alive one
 * may simply have been closed by the upstream meanwhile: once, try again
 * on a new connection. Returns 1 when retried.
 */
static int
retry(struct h1_xfer *x)
{
	if (x->retried || x->got_bytes || x->c == NULL || !x->c->reused)
		return 0;
	x->retried = 1;
	atomic_fetch_add_explicit(&g_retries, 1, memory_order_relaxed);
	conn_close(x->c);
	x->c = NULL;
	x->out_off = 0;
	eb_buf_reset(&x->in);
	x->in_off = 0;
	return start_conn(x) == 0;
}

/* Fail x for a transport error e (errno), retrying a stale connection. */
static void
fail_io(struct h1_xfer *x, int e, const char *what)
{
	char msg[160];

	if (retry(x))
		return;
	snprintf(msg, sizeof(msg), "%s: %s", what,
	         e ? strerror(e) : "connection closed by the upstream");
	finish(x, EB_HTTP_ERR_CONNECT, msg);
}

/* Send what is left of the request; 0, or -1 when x was finished. */
static int
send_more(struct h1_xfer *x)
{
	ssize_t n;

	while (x->out_off < x->out_len) {
		n = send(x->c->fd, x->out + x->out_off, x->out_len - x->out_off,
		         MSG_NOSIGNAL);
		if (n > 0) {
			x->out_off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (conn_watch(x->c, EPOLLIN | EPOLLOUT) == 0)
				return 0;
			finish(x, EB_HTTP_ERR_OTHER, "epoll_ctl failed");
			return -1;
		}
		fail_io(x, n == -1 ? errno : 0, "sending the request");
		return -1;
	}
	if (conn_watch(x->c, EPOLLIN) == -1) {
		finish(x, EB_HTTP_ERR_OTHER, "epoll_ctl failed");
		return -1;
	}
	return 0;
}

/*
 * Put x on a kept-alive connection or a new one and start sending. 0 when
 * x is under way or already finished (done called), -1 when nothing was
 * started (x untouched, done not called).
 */
static int
start_conn(struct h1_xfer *x)
{
	struct h1_conn *c;
	int one = 1;

	/* a retry goes to a new connection: the other kept-alive ones may
	 * be just as stale, as after an upstream restart (test_http_native:
	 * test_stale) */
	if (!x->retried && (c = idle_take(x->o)) != NULL) {
		atomic_fetch_add_explicit(&g_reused, 1, memory_order_relaxed);
		c->x = x;
		x->c = c;
		x->phase = P_HEAD;
		send_more(x); /* a failure finishes x */
		return 0;
	}
	if (x->o->nconns >= H1_MAX_CONNS) {
		/* eb_h1_kick() starts it when a connection is free */
		wait_push(x);
		return 0;
	}
	if ((c = eb_calloc(1, sizeof(*c))) == NULL)
		return -1;
	c->h = x->h;
	c->o = x->o;
	c->fd = socket(x->o->sa.ss_family,
	               SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		eb_free(c);
		return -1;
	}
	atomic_fetch_add_explicit(&g_connects, 1, memory_order_relaxed);
	x->o->nconns++;
	c->x = x;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	x->c = c;
	if (connect(c->fd, (struct sockaddr *)&x->o->sa, x->o->salen) == 0) {
		x->phase = P_HEAD;
		send_more(x);
		return 0;
	}
	if (errno != EINPROGRESS) {
		char msg[160];

		snprintf(msg, sizeof(msg), "connecting: %s", strerror(errno));
		finish(x, EB_HTTP_ERR_CONNECT, msg);
		return 0;
	}
	x->phase = P_CONNECT;
	x->connect_deadline = eb_mono_ms() + x->connect_ms;
	deadline_add(x->h, x->connect_deadline);
	if (conn_watch(c, EPOLLOUT) == -1) {
		x->c = NULL;
		conn_close(c);
		return -1;
	}
	return 0;
}

/* ---- the response ---- */

/* Does the comma-separated list v hold token t (any case)? */
static int
has_token(const char *v, const char *t)
{
	size_t tl = strlen(t), n;

	while (*v != '\0') {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		n = strcspn(v, ",");
		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		if (n == tl && strncasecmp(v, t, tl) == 0)
			return 1;
		v += strcspn(v, ",");
	}
	return 0;
}

/* Content-Length, Transfer-Encoding and Connection of the head just
 * parsed decide how the body is framed; 0, or -1 with x finished. */
static int
frame_body(struct h1_xfer *x, int http10)
{
	const char *cl = NULL, *te = NULL;
	size_t i;
	int close_tok = 0, ka_tok = 0;

	for (i = 0; i < x->ctx.nheaders; i++) {
		const char *n = x->ctx.headers[i].name;
		const char *v = x->ctx.headers[i].value;

		if (strcasecmp(n, "Content-Length") == 0) {
			if (cl != NULL && strcmp(cl, v) != 0)
				goto bad;
			cl = v;
		} else if (strcasecmp(n, "Transfer-Encoding") == 0) {
			if (te != NULL)
				goto bad;
			te = v;
		} else if (strcasecmp(n, "Connection") == 0) {
			close_tok |= has_token(v, "close");
			ka_tok |= has_token(v, "keep-alive");
		}
	}
	x->keep_alive = http10 ? ka_tok && !close_tok : !close_tok;
	if (x->head_req || x->status == 204 || x->status == 304) {
		x->left = 0;
		x->phase = P_BODY_LEN;
		return 0;
	}
	if (te != NULL) {
		if (cl != NULL || strcasecmp(te, "chunked") != 0)
			goto bad; /* smuggling, or a coding we do not undo */
		x->phase = P_CHUNK_SIZE;
		return 0;
	}
	if (cl != NULL) {
		char *e;
		unsigned long long n;

		if (*cl < '0' || *cl > '9')
			goto bad;
		errno = 0;
		n = strtoull(cl, &e, 10);
		if (errno != 0 || *e != '\0')
			goto bad;
		if (n > x->ctx.body.max) {
			finish(x, EB_HTTP_ERR_TOO_LARGE,
			       "response larger than the configured limit");
			return -1;
		}
		x->left = n;
		x->phase = P_BODY_LEN;
		/* the announced size at once (within the limit, checked),
		 * unless it may be streamed (see head_done) */
		if (n > 0 && x->ctx.stream.head == NULL)
			(void)eb_buf_reserve(&x->ctx.body, (size_t)n);
		return 0;
	}
	x->keep_alive = 0;
	x->phase = P_BODY_CLOSE;
	return 0;
bad:
	finish(x, EB_HTTP_ERR_OTHER,
	       "malformed response from the upstream (message framing)");
	return -1;
}

/* RFC 9110 tchar */
static int
is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/*
 * A field line is a token, a colon, then the value (or, starting with a
 * blank, an obs-fold continuation of the previous one). Anything else is
 * refused rather than ignored: a line without a colon; blanks before the
 * colon ("Transfer-Encoding : chunked", which framing would not see while
 * the header is still passed on, RFC 9112 5.1); a second status line,
 * which eb_http_header_line() would take for a new response and forget the
 * Content-Length and Transfer-Encoding seen so far (test_http_native).
 */
static int
field_line_ok(const char *line, size_t l)
{
	size_t n = 0;

	if (line[0] == ' ' || line[0] == '\t')
		return 1;
	while (n < l && is_tchar((unsigned char)line[n]))
		n++;
	return n > 0 && n < l && line[n] == ':';
}

/* Parse a whole head at p (len bytes, without the blank line). */
static int
parse_head(struct h1_xfer *x, const char *p, size_t len)
{
	const char *eol, *end = p + len;
	int http10;

	/* status line: HTTP/1.x SP 3DIGIT [SP reason] */
	eol = memchr(p, '\n', len);
	if (eol == NULL)
		eol = end;
	if (eol - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 ||
	    (p[7] != '0' && p[7] != '1') || p[8] != ' ' || p[9] < '1' ||
	    p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' ||
	    p[11] > '9' || (eol - p > 12 && p[12] != ' ' && p[12] != '\r'))
		goto bad;
	http10 = p[7] == '0';
	x->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	eb_http_headers_free(x->ctx.headers, x->ctx.nheaders);
	x->ctx.headers = NULL;
	x->ctx.nheaders = 0;
	while (eol < end) {
		const char *line = eol + 1;
		size_t l;

		eol = memchr(line, '\n', (size_t)(end - line));
		if (eol == NULL)
			eol = end;
		l = (size_t)(eol - line);
		if (l > 0 && line[l - 1] == '\r')
			l--;
		if (memchr(line, '\0', l) != NULL || memchr(line, '\r', l) ||
		    (l > 0 && !field_line_ok(line, l)))
			goto bad;
		if (l > 0 && eb_http_header_line(&x->ctx, line, l) == -1) {
			finish(x,
			       x->ctx.too_large ? EB_HTTP_ERR_TOO_LARGE
			                        : EB_HTTP_ERR_OTHER,
			       x->ctx.too_large ? "response headers too large"
			                        : "out of memory");
			return -1;
		}
	}
	return frame_body(x, http10);
bad:
	finish(x, EB_HTTP_ERR_OTHER, "malformed response from the upstream");
	return -1;
}

/* The final head is in: a stream's receiver says how the body goes. 0,
 * or -1 with x finished. */
static int
head_done(struct h1_xfer *x)
{
	if (x->ctx.stream.head == NULL)
		return 0;
	if (eb_http_stream_head(&x->ctx, x->status) == -1) {
		finish(x, EB_HTTP_ERR_OTHER, "ended by the receiver");
		return -1;
	}
	if (!x->ctx.streaming && x->phase == P_BODY_LEN && x->left > 0)
		(void)eb_buf_reserve(&x->ctx.body, (size_t)x->left);
	return 0;
}

/*
 * Move n body bytes from the unparsed input to the body, or to the
 * stream's receiver. 0, 1 when the receiver did not take them (x paused),
 * -1 with x finished.
 */
static int
take_body(struct h1_xfer *x, size_t n)
{
	if (x->ctx.streaming) {
		switch (
		    eb_http_stream_data(&x->ctx, x->in.data + x->in_off, n)) {
		case 0:
			break;
		case 1:
			x->paused = 1;
			return 1;
		default:
			if (x->ctx.too_large)
				finish(x, EB_HTTP_ERR_TOO_LARGE,
				       "response larger than the configured "
				       "limit");
			else
				finish(x, EB_HTTP_ERR_OTHER,
				       "ended by the receiver");
			return -1;
		}
	} else if (eb_buf_add(&x->ctx.body, x->in.data + x->in_off, n) == -1) {
		finish(x, EB_HTTP_ERR_TOO_LARGE,
		       "response larger than the configured limit");
		return -1;
	}
	x->in_off += n;
	return 0;
}

/* What has arrived of the x->left bytes the body (or chunk) still has;
 * as take_body(). */
static int
take_left(struct h1_xfer *x, size_t avail)
{
	size_t len = avail < x->left ? avail : (size_t)x->left;
	int r;

	if ((r = take_body(x, len)) != 0)
		return r;
	x->left -= len;
	return 0;
}

/* A line (up to LF) at the unparsed input: its length without CRLF, and
 * the bytes it takes; 0 when incomplete, -1 when too long. */
static int
next_line(struct h1_xfer *x, size_t *len, size_t *used)
{
	const char *p = x->in.data + x->in_off;
	size_t avail = x->in.len - x->in_off;
	const char *lf = memchr(p, '\n', avail);

	if (lf == NULL)
		return avail > H1_MAX_CHUNK_LINE ? -1 : 0;
	/* the same limit however the line arrived (in one read or many) */
	if ((size_t)(lf - p) > H1_MAX_CHUNK_LINE)
		return -1;
	*used = (size_t)(lf - p) + 1;
	*len = (size_t)(lf - p);
	if (*len > 0 && p[*len - 1] == '\r')
		(*len)--;
	return 1;
}

/*
 * Parse what arrived. Returns 1 when the response is complete, 0 when
 * more is needed, -1 when x was finished with an error.
 */
static int
parse(struct h1_xfer *x)
{
	for (;;) {
		size_t avail = x->in.len - x->in_off, len, used;
		const char *p = x->in.data + x->in_off;
		int r;

		if (x->paused)
			return 0; /* eb_h1_resume() */
		switch (x->phase) {
		case P_WAIT:
		case P_CONNECT:
			return 0;
		case P_HEAD: {
			const char *e = NULL;
			size_t hl, skip;

			if (avail == 0)
				return 0;
			/* the blank line ending the head */
			for (hl = 0; hl + 1 < avail; hl++) {
				if (p[hl] == '\n' && p[hl + 1] == '\n') {
					e = p + hl;
					skip = 2;
					break;
				}
				if (p[hl] == '\n' && p[hl + 1] == '\r' &&
				    hl + 2 < avail && p[hl + 2] == '\n') {
					e = p + hl;
					skip = 3;
					break;
				}
			}
			if (e == NULL) {
				if (avail > EB_HTTP_MAX_HEADER_BYTES) {
					finish(x, EB_HTTP_ERR_TOO_LARGE,
					       "response headers too large");
					return -1;
				}
				return 0;
			}
			if (hl > EB_HTTP_MAX_HEADER_BYTES) {
				finish(x, EB_HTTP_ERR_TOO_LARGE,
				       "response headers too large");
				return -1;
			}
			x->in_off += hl + skip;
			if (parse_head(x, p, hl) == -1)
				return -1;
			if (x->status >= 100 && x->status < 200) {
				if (x->status == 101) {
					finish(x, EB_HTTP_ERR_OTHER,
					       "the upstream switched "
					       "protocols");
					return -1;
				}
				x->phase = P_HEAD; /* an interim response */
			} else if (head_done(x) == -1)
				return -1;
			break;
		}
		case P_BODY_LEN:
			if (x->left == 0)
				return 1;
			if (avail == 0)
				return 0;
			if ((r = take_left(x, avail)) != 0)
				return r == 1 ? 0 : -1;
			break;
		case P_BODY_CLOSE:
			if (avail == 0)
				return 0;
			if ((r = take_body(x, avail)) != 0)
				return r == 1 ? 0 : -1;
			break;
		case P_CHUNK_SIZE: {
			const char *e;
			unsigned long long n = 0;
			int d;

			if ((r = next_line(x, &len, &used)) <= 0)
				goto line;
			/* 1*HEXDIG by hand: strtoull() would also take a
			 * "0x" prefix (test_http_native) */
			for (e = p; e < p + len && (d = eb_str_hexval(*e)) >= 0;
			     e++) {
				if (n > (ULLONG_MAX >> 4))
					goto bad;
				n = n << 4 | (unsigned)d;
			}
			if (e == p || (e < p + len && *e != ';' && *e != ' ' &&
			               *e != '\t'))
				goto bad;
			if (n > x->ctx.body.max) {
				finish(x, EB_HTTP_ERR_TOO_LARGE,
				       "response larger than the configured "
				       "limit");
				return -1;
			}
			x->in_off += used;
			x->left = n;
			x->phase = n == 0 ? P_TRAILER : P_CHUNK_DATA;
			break;
		}
		case P_CHUNK_DATA:
			if (avail == 0)
				return 0;
			if ((r = take_left(x, avail)) != 0)
				return r == 1 ? 0 : -1;
			if (x->left == 0)
				x->phase = P_CHUNK_CRLF;
			break;
		case P_CHUNK_CRLF:
			if ((r = next_line(x, &len, &used)) <= 0)
				goto line;
			if (len != 0)
				goto bad;
			x->in_off += used;
			x->phase = P_CHUNK_SIZE;
			break;
		case P_TRAILER:
			if ((r = next_line(x, &len, &used)) <= 0)
				goto line;
			x->in_off += used;
			if (len == 0)
				return 1; /* trailers are dropped */
			break;
		}
		continue;
	line:
		if (r == 0)
			return 0;
	bad:
		finish(x, EB_HTTP_ERR_OTHER,
		       "malformed response from the upstream (chunked "
		       "body)");
		return -1;
	}
}

/* Drop what was parsed from the input buffer. */
static void
compact(struct h1_xfer *x)
{
	size_t left = x->in.len - x->in_off;

	if (x->in_off == 0)
		return;
	if (left > 0)
		memmove(x->in.data, x->in.data + x->in_off, left);
	x->in.len = left;
	x->in_off = 0;
}

/* n bytes from the upstream; 1 when x ended (finished), else 0. */
static int
feed(struct h1_xfer *x, const char *buf, size_t n)
{
	int r;

	x->got_bytes = 1;
	compact(x);
	/* the first read sizes the buffer: one allocation */
	if (x->in.cap == 0)
		(void)eb_buf_reserve(&x->in, n);
	if (eb_buf_add(&x->in, buf, n) == -1) {
		finish(x, EB_HTTP_ERR_TOO_LARGE, "response headers too large");
		return 1;
	}
	if ((r = parse(x)) == -1)
		return 1;
	if (r == 1) {
		finish(x, EB_HTTP_OK, NULL);
		return 1;
	}
	return 0;
}

/* The upstream closed the connection (e: errno, 0 for an orderly end). */
static void
feed_end(struct h1_xfer *x, int e)
{
	if (e == 0 && x->phase == P_BODY_CLOSE)
		finish(x, EB_HTTP_OK, NULL);
	else
		fail_io(x, e, "reading the response");
}

/* Read what the connection has; 1 when x ended (finished), else 0. */
static int
recv_more(struct h1_xfer *x)
{
	char buf[H1_RECV];
	ssize_t n;

	for (;;) {
		n = recv(x->c->fd, buf, sizeof(buf), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			feed_end(x, n == -1 ? errno : 0);
			return 1;
		}
		if (feed(x, buf, (size_t)n))
			return 1;
		if (x->paused) {
			conn_unwatch(x->c); /* until eb_h1_resume() */
			return 0;
		}
		if ((size_t)n < sizeof(buf))
			return 0; /* likely drained: wait for epoll */
	}
}

/* ---- the response parser alone (fuzzing) ---- */

struct parse_only {
	struct eb_http_response *resp;
	struct eb_buf streamed; /* what data took, in stream mode */
};

static void
keep_resp(struct eb_http_response *resp, void *arg)
{
	((struct parse_only *)arg)->resp = resp;
}

static int
parse_only_head(const struct eb_http_response *resp, struct eb_http_xfer *xfer,
                void *arg)
{
	(void)resp;
	(void)xfer;
	(void)arg;
	return EB_HTTP_STREAM;
}

static int
parse_only_data(const char *p, size_t len, void *arg)
{
	return eb_buf_add(&((struct parse_only *)arg)->streamed, p, len) == 0
	           ? 0
	           : -1;
}

struct eb_http_response *
eb_h1_parse_response(const void *data, size_t len, int head_req, size_t max,
                     size_t piece, int stream)
{
	struct parse_only po;
	const char *p = data;
	struct h1_loop h;
	struct h1_xfer *x;
	size_t n;

	memset(&h, 0, sizeof(h));
	memset(&po, 0, sizeof(po));
	h.epfd = -1;
	if ((x = eb_calloc(1, sizeof(*x))) == NULL ||
	    (x->url = eb_strdup("http://192.0.2.1/")) == NULL) {
		if (x != NULL)
			xfer_free(x);
		return NULL;
	}
	if (max == 0)
		max = EB_HTTP_DEFAULT_MAX_BYTES;
	x->base.native = 1;
	x->h = &h;
	x->done = keep_resp;
	x->arg = &po;
	x->head_req = head_req;
	x->phase = P_HEAD;
	x->start_ms = eb_mono_ms();
	eb_buf_init(&x->ctx.body, max);
	eb_buf_init(&x->in, H1_MAX_UNPARSED);
	if (stream) {
		eb_buf_init(&po.streamed, SIZE_MAX);
		x->ctx.stream.head = parse_only_head;
		x->ctx.stream.data = parse_only_data;
		x->ctx.stream_arg = &po;
		x->ctx.self = &x->base;
	}
	h.active = x;
	eb_http_async_pending_begin(); /* finish() counts the transfer's end */
	for (;;) {
		if (len == 0) {
			feed_end(x, 0);
			break;
		}
		n = piece > 0 && piece < len ? piece : len;
		if (feed(x, p, n))
			break;
		p += n;
		len -= n;
	}
	eb_h1_reap(&h);
	if (stream && po.resp != NULL && po.resp->error == EB_HTTP_OK) {
		/* the streamed bytes as the body, as gathering gives it */
		eb_free(po.resp->body);
		po.resp->body = eb_buf_detach(&po.streamed, &po.resp->body_len);
		if (po.resp->body == NULL &&
		    (po.resp->body = eb_strdup("")) == NULL) {
			eb_http_response_free(po.resp);
			po.resp = NULL;
		}
	}
	eb_buf_finish(&po.streamed);
	return po.resp;
}

/* ---- the loop's interface (client_int.h) ---- */

/* A method we send as is: NULL (the default) or 1-16 capital letters. */
static int
method_ok(const char *m)
{
	size_t i;

	if (m == NULL)
		return 1;
	for (i = 0; m[i] != '\0'; i++)
		if (i >= 16 || m[i] < 'A' || m[i] > 'Z')
			return 0;
	return i > 0;
}

struct h1_loop *
eb_h1_loop_new(int epfd)
{
	struct h1_loop *h = eb_calloc(1, sizeof(*h));

	if (h != NULL)
		h->epfd = epfd;
	return h;
}

void
eb_h1_reap(struct h1_loop *h)
{
	struct h1_conn *c;

	while (h != NULL && (c = h->dead) != NULL) {
		h->dead = c->next;
		eb_free(c);
	}
}

void
eb_h1_loop_free(struct h1_loop *h)
{
	struct h1_origin *o;
	struct h1_share *s;
	struct h1_conn *c;
	size_t i;

	if (h == NULL)
		return;
	while (h->active != NULL)
		finish(h->active, EB_HTTP_ERR_OTHER, "client shutting down");
	while ((o = h->origins) != NULL) {
		h->origins = o->next;
		while ((c = o->idle) != NULL) {
			o->idle = c->next;
			conn_close(c);
		}
		for (i = 0; i < H1_SHARE_BUCKETS; i++)
			while ((s = o->shares[i]) != NULL) {
				o->shares[i] = s->next;
				eb_free(
				    s); /* none left: every transfer ended */
			}
		eb_free(o);
	}
	eb_h1_reap(h);
	eb_free(h);
}

int
eb_h1_fetch(struct h1_loop *h, const struct eb_http_options *o,
            eb_http_done_fn done, void *arg)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	const char *target;
	struct h1_xfer *x;
	long cto, to;
	int rc;

	if (h == NULL || o->follow_redirects || !method_ok(o->method) ||
	    parse_url(o->url, &sa, &salen, &target) == -1)
		return 0;
	if ((x = eb_calloc(1, sizeof(*x))) == NULL)
		return -1;
	if ((rc = build_request(o, target, &x->out, &x->out_len)) == 0 &&
	    (x->o = origin_get(h, &sa, salen)) == NULL)
		rc = 1; /* too many upstreams: curl keeps the rest */
	if ((rc == 0 || rc == 2) && (x->url = eb_strdup(o->url)) == NULL)
		rc = -1;
	if (rc == 2) {
		/* refused (a control character for the head): done gets
		 * the error */
		x->h = h;
		x->done = done;
		x->arg = arg;
		x->start_ms = eb_mono_ms();
		finish(x, EB_HTTP_ERR_OTHER,
		       "request header or user agent with a control "
		       "character");
		return 1;
	}
	if (rc != 0) {
		xfer_free(x);
		return rc == 1 ? 0 : -1;
	}
	if ((x->share = share_get(x->o, o->fair_key ? o->fair_key : "")) ==
	    NULL) {
		xfer_free(x);
		return -1;
	}
	if (x->share->key[0] != '\0' && x->share->nwait >= EB_HTTP_FAIR_QUEUE) {
		char fp[13];

		/* one party has its fill waiting already: refused at once
		 * rather than queued for long (the caller answers 503) */
		if (x->share->refused++ == 0) { /* once while it is full */
			eb_log_fp(x->share->key, strlen(x->share->key), fp);
			log_warnx("upstream: %zu requests of one client (key "
			          "%s) waiting already; refusing more",
			          x->share->nwait, fp);
		}
		share_put(x->o, x->share);
		xfer_free(x);
		return -1;
	}
	eb_http_timeouts(o, &cto, &to);
	x->base.native = 1;
	x->h = h;
	x->done = done;
	x->arg = arg;
	eb_log_ctx_get(&x->ctx.lctx);
	if (o->stream != NULL) {
		x->ctx.stream = *o->stream;
		x->ctx.stream_arg = arg;
		x->ctx.self = &x->base;
	}
	x->head_req = o->method != NULL && strcmp(o->method, "HEAD") == 0;
	x->start_ms = eb_mono_ms();
	x->deadline = x->start_ms + to;
	deadline_add(h, x->deadline);
	x->connect_ms = cto;
	eb_buf_init(&x->ctx.body, o->max_response_bytes > 0
	                              ? o->max_response_bytes
	                              : EB_HTTP_DEFAULT_MAX_BYTES);
	eb_buf_init(&x->in, H1_MAX_UNPARSED);
	x->next = h->active;
	if (h->active != NULL)
		h->active->prev = x;
	h->active = x;
	atomic_fetch_add_explicit(&g_xfers, 1, memory_order_relaxed);
	/* behind its own key's waiters, at its key's share, or behind the
	 * others when the origin is full: it waits its turn (eb_h1_kick) */
	if (x->share->nwait > 0 || x->share->running >= share_cap(x->share) ||
	    (x->o->nwait > 0 && !origin_has_room(x->o))) {
		wait_push(x);
		return 1;
	}
	share_hold(x);
	if (start_conn(x) == -1) {
		share_release(x);
		share_put(x->o, x->share);
		xfer_unlink(x);
		xfer_free(x);
		return -1;
	}
	return 1;
}

void
eb_h1_resume(struct eb_http_xfer *xfer)
{
	struct h1_xfer *x = (struct h1_xfer *)(void *)xfer;

	x->paused = 0;
	if (!x->resumed) {
		/* eb_h1_kick() goes on with it: no callback from in here */
		x->resumed = 1;
		x->h->nresumed++;
	}
}

void
eb_h1_abort(struct eb_http_xfer *xfer)
{
	struct h1_xfer *x = (struct h1_xfer *)(void *)xfer;

	xfer_unlink(x);
	if (x->phase == P_WAIT)
		wait_unlink(x);
	if (x->share != NULL) {
		share_release(x);
		share_put(x->o, x->share);
	}
	conn_close(x->c); /* mid-response: never reused */
	x->c = NULL;
	xfer_free(x);
	eb_http_async_pending_done();
}

/* Go on with the transfers resumed since the last round: parse what they
 * kept, then read again. Returns how many ended. */
static size_t
kick_resumed(struct h1_loop *h)
{
	struct h1_xfer *x;
	size_t n = 0;
	int r;

again:
	for (x = h->active; x != NULL && h->nresumed > 0; x = x->next) {
		if (!x->resumed)
			continue;
		x->resumed = 0;
		h->nresumed--;
		if ((r = parse(x)) == 1)
			finish(x, EB_HTTP_OK, NULL);
		if (r != 0) {
			n++;
			goto again; /* the list changed */
		}
		if (!x->paused && conn_watch(x->c, x->out_off < x->out_len
		                                       ? EPOLLIN | EPOLLOUT
		                                       : EPOLLIN) == -1) {
			finish(x, EB_HTTP_ERR_OTHER, "epoll_ctl failed");
			n++;
			goto again;
		}
	}
	return n;
}

size_t
eb_h1_kick(struct h1_loop *h)
{
	struct h1_origin *o;
	struct h1_share *s;
	struct h1_xfer *x;
	size_t n = 0;

	if (h == NULL)
		return 0;
	if (h->nresumed > 0)
		n += kick_resumed(h);
	for (o = h->origins; o != NULL; o = o->next)
		while ((s = o->ready_head) != NULL && origin_has_room(o)) {
			/* the first key in line: its oldest transfer */
			o->ready_head = s->ready_next;
			if (o->ready_head == NULL)
				o->ready_tail = NULL;
			s->ready = 0;
			if ((x = s->wait_head) == NULL ||
			    s->running >= share_cap(s)) {
				share_put(o, s);
				continue;
			}
			wait_unlink(x);
			share_hold(x);
			share_ready(o, s); /* its next turn, after the others */
			x->phase = P_HEAD;
			if (start_conn(x) == -1) {
				finish(x, EB_HTTP_ERR_CONNECT,
				       "cannot open a socket to the upstream");
				n++;
			}
		}
	return n;
}

size_t
eb_h1_event(struct h1_loop *h, void *ptr, uint32_t events)
{
	struct h1_conn *c = ptr;
	struct h1_xfer *x = c->x;
	int err = 0;
	socklen_t el = sizeof(err);

	(void)h;
	if (c->fd == -1)
		return 0; /* closed earlier in this batch */
	if (x == NULL) {
		/* an idle connection speaks: closed, or nonsense */
		idle_drop(c);
		return 0;
	}
	if (x->phase == P_CONNECT) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return 0;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) == -1)
			err = errno;
		if (err != 0) {
			char msg[160];

			snprintf(msg, sizeof(msg), "connecting: %s",
			         strerror(err));
			finish(x, EB_HTTP_ERR_CONNECT, msg);
			return 1;
		}
		x->phase = P_HEAD;
		return send_more(x) == -1 ? 1 : 0;
	}
	if ((events & EPOLLOUT) && x->out_off < x->out_len &&
	    send_more(x) == -1)
		return 1;
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		return (size_t)recv_more(x);
	return 0;
}

int
eb_h1_timeout(struct h1_loop *h)
{
	const struct h1_xfer *x;
	long long first = -1, d, now;

	if (h == NULL || h->active == NULL)
		return -1;
	if (h->nresumed > 0)
		return 0; /* eb_h1_kick() has work */
	now = eb_mono_ms();
	if (h->first_deadline > now)
		first = h->first_deadline;
	else {
		for (x = h->active; x != NULL; x = x->next) {
			d = x->deadline;
			if (x->phase == P_CONNECT && x->connect_deadline < d)
				d = x->connect_deadline;
			if (first < 0 || d < first)
				first = d;
		}
		h->first_deadline = first;
	}
	return first <= now            ? 0
	       : first - now > 3600000 ? 3600000
	                               : (int)(first - now);
}

size_t
eb_h1_expire(struct h1_loop *h)
{
	struct h1_xfer *x, *next;
	long long now = eb_mono_ms();
	size_t n = 0;

	if (h == NULL)
		return 0;
	for (x = h->active; x != NULL; x = next) {
		next = x->next;
		if (now >= x->deadline ||
		    (x->phase == P_CONNECT && now >= x->connect_deadline)) {
			finish(x, EB_HTTP_ERR_TIMEOUT,
			       x->phase == P_CONNECT ? "connection timed out"
			       : x->phase == P_WAIT
			           ? "no upstream connection free in time"
			           : "the upstream did not answer in time");
			n++;
			next = h->active; /* finish() may have changed it */
		}
	}
	return n;
}
