/*
 * The scripted fake HTTP server of fx_http.h: one thread, plain sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fx_http.h"
#include "fx_net.h"

#define FX_ROUTES 16
#define FX_SCRIPT 8

struct fx_resp {
	int status;
	int delay_ms;
	char ctype[96];
	char *body;
	size_t len;
};

struct fx_route {
	char path[128];
	struct fx_resp script[FX_SCRIPT];
	int n, next; /* responses in script, the next one to answer */
	size_t piece;
	int piece_delay_us;
	int hits;
	char *last; /* the last request to this path, headers and body */
};

struct fx_http {
	int fd, port;
	pthread_t th;
	volatile int stop;
	pthread_mutex_t mu;
	struct fx_route r[FX_ROUTES];
	int nr;
	char base[64];
};

/* What one connection is answered with, copied out under the lock. */
struct fx_answer {
	int status, delay_ms, piece_delay_us;
	size_t piece, len;
	char ctype[96];
	char *body;
};

static struct fx_route *
find(struct fx_http *s, const char *path)
{
	int i;

	for (i = 0; i < s->nr; i++)
		if (strcmp(s->r[i].path, path) == 0)
			return &s->r[i];
	return NULL;
}

/* The route for path, created when absent. Called locked. */
static struct fx_route *
route(struct fx_http *s, const char *path)
{
	struct fx_route *r;

	if ((r = find(s, path)) != NULL)
		return r;
	assert_true(s->nr < FX_ROUTES);
	r = &s->r[s->nr++];
	snprintf(r->path, sizeof(r->path), "%s", path);
	return r;
}

/* Read one request (headers and Content-Length body) into req. */
static size_t
read_request(int c, char *req, size_t size)
{
	size_t len = 0, want = 0;
	char *hend = NULL, *cl;
	ssize_t n;

	while (len < size - 1) {
		if ((n = recv(c, req + len, size - 1 - len, 0)) <= 0)
			break;
		len += (size_t)n;
		req[len] = '\0';
		if (hend == NULL && (hend = strstr(req, "\r\n\r\n")) != NULL) {
			want = (size_t)(hend + 4 - req);
			for (cl = req; cl < hend; cl++)
				if (strncasecmp(cl, "\ncontent-length:", 16) ==
				    0)
					want += strtoul(cl + 16, NULL, 10);
		}
		if (hend != NULL && len >= want)
			break;
	}
	req[len] = '\0';
	return len;
}

/* Count the request and pick its response into a. */
static void
answer(struct fx_http *s, const char *path, const char *req,
       struct fx_answer *a)
{
	struct fx_route *rt;
	struct fx_resp *rp;

	memset(a, 0, sizeof(*a));
	pthread_mutex_lock(&s->mu);
	if ((rt = find(s, path)) == NULL)
		rt = find(s, "*");
	if (rt != NULL && rt->n > 0) {
		rp = &rt->script[rt->next];
		if (rt->next < rt->n - 1)
			rt->next++;
		rt->hits++;
		free(rt->last);
		rt->last = strdup(req);
		a->status = rp->status;
		a->delay_ms = rp->delay_ms;
		a->piece = rt->piece;
		a->piece_delay_us = rt->piece_delay_us;
		memcpy(a->ctype, rp->ctype, sizeof(a->ctype));
		if ((a->body = malloc(rp->len + 1)) != NULL) {
			memcpy(a->body, rp->body, rp->len + 1);
			a->len = rp->len;
		}
	}
	pthread_mutex_unlock(&s->mu);
	if (a->body == NULL) {
		a->status = 404;
		a->body = strdup("{}");
		a->len = 2;
		snprintf(a->ctype, sizeof(a->ctype), "application/json");
	}
}

static void
serve_one(struct fx_http *s, int c)
{
	char req[65536], path[256], method[16], head[256], *q;
	struct fx_answer a;
	int waited;

	read_request(c, req, sizeof(req));
	if (sscanf(req, "%15s %255s", method, path) != 2)
		return;
	if ((q = strchr(path, '?')) != NULL)
		*q = '\0';
	answer(s, path, req, &a);
	if (a.body == NULL)
		return;
	for (waited = 0; waited < a.delay_ms && !s->stop; waited += 20)
		usleep(20000);
	snprintf(head, sizeof(head),
	         "HTTP/1.1 %d X\r\nContent-Type: %s\r\n"
	         "Content-Length: %zu\r\n"
	         "Location: http://127.0.0.1:1/elsewhere\r\n"
	         "Connection: close\r\n\r\n",
	         a.status, a.ctype, a.len);
	(void)fx_send_all(c, head, strlen(head), a.piece, a.piece_delay_us);
	(void)fx_send_all(c, a.body, a.len, a.piece, a.piece_delay_us);
	free(a.body);
}

static void *
serve(void *arg)
{
	struct fx_http *s = arg;
	struct pollfd p;
	struct timeval tv = {2, 0};
	int c;

	while (!s->stop) {
		p.fd = s->fd;
		p.events = POLLIN;
		if (poll(&p, 1, 50) <= 0)
			continue;
		if ((c = accept(s->fd, NULL, NULL)) < 0)
			continue;
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		serve_one(s, c);
		close(c);
	}
	return NULL;
}

struct fx_http *
fx_http_start(void)
{
	struct fx_http *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	assert_int_equal(pthread_mutex_init(&s->mu, NULL), 0);
	assert_true((s->fd = fx_listen_loopback(16, &s->port)) >= 0);
	snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", s->port);
	assert_int_equal(pthread_create(&s->th, NULL, serve, s), 0);
	return s;
}

void
fx_http_stop(struct fx_http *s)
{
	if (s->fd < 0)
		return;
	s->stop = 1;
	pthread_join(s->th, NULL);
	close(s->fd);
	s->fd = -1;
}

static void
clear_script(struct fx_route *r)
{
	int i;

	for (i = 0; i < r->n; i++)
		free(r->script[i].body);
	r->n = r->next = 0;
}

void
fx_http_free(struct fx_http *s)
{
	int i;

	if (s == NULL)
		return;
	fx_http_stop(s);
	for (i = 0; i < s->nr; i++) {
		clear_script(&s->r[i]);
		free(s->r[i].last);
	}
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int
fx_http_port(const struct fx_http *s)
{
	return s->port;
}

const char *
fx_http_base(const struct fx_http *s)
{
	return s->base;
}

void
fx_http_push_body(struct fx_http *s, const char *path, int status,
                  const char *ctype, const void *body, size_t len, int delay_ms)
{
	struct fx_route *r;
	struct fx_resp *rp;

	pthread_mutex_lock(&s->mu);
	r = route(s, path);
	assert_true(r->n < FX_SCRIPT);
	rp = &r->script[r->n++];
	assert_non_null(rp->body = malloc(len + 1));
	memcpy(rp->body, body, len);
	rp->body[len] = '\0';
	rp->len = len;
	snprintf(rp->ctype, sizeof(rp->ctype), "%s", ctype);
	rp->status = status;
	rp->delay_ms = delay_ms;
	pthread_mutex_unlock(&s->mu);
}

void
fx_http_set_body(struct fx_http *s, const char *path, int status,
                 const char *ctype, const void *body, size_t len, int delay_ms)
{
	struct fx_route *r;

	pthread_mutex_lock(&s->mu);
	r = route(s, path);
	clear_script(r);
	pthread_mutex_unlock(&s->mu);
	fx_http_push_body(s, path, status, ctype, body, len, delay_ms);
}

void
fx_http_push(struct fx_http *s, const char *path, int status, const char *body,
             int delay_ms)
{
	fx_http_push_body(s, path, status, "application/json", body,
	                  strlen(body), delay_ms);
}

void
fx_http_set(struct fx_http *s, const char *path, int status, const char *body,
            int delay_ms)
{
	fx_http_set_body(s, path, status, "application/json", body,
	                 strlen(body), delay_ms);
}

void
fx_http_pieces(struct fx_http *s, const char *path, size_t piece, int delay_us)
{
	struct fx_route *r;

	pthread_mutex_lock(&s->mu);
	r = route(s, path);
	r->piece = piece;
	r->piece_delay_us = delay_us;
	pthread_mutex_unlock(&s->mu);
}

int
fx_http_hits(struct fx_http *s, const char *path)
{
	struct fx_route *r;
	int n;

	pthread_mutex_lock(&s->mu);
	r = find(s, path);
	n = r ? r->hits : 0;
	pthread_mutex_unlock(&s->mu);
	return n;
}

char *
fx_http_last(struct fx_http *s, const char *path)
{
	struct fx_route *r;
	char *c;

	pthread_mutex_lock(&s->mu);
	r = find(s, path);
	c = strdup(r && r->last ? r->last : "");
	pthread_mutex_unlock(&s->mu);
	assert_non_null(c);
	return c;
}
