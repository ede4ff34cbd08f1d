/*
 * Unit tests for eb_http_fetch_async() (src/http/client.c) against a small
 * keep-alive HTTP/1.1 server on a loopback port, one thread per connection,
 * in this process: a PUT with its body and headers, many transfers at once
 * completing on the client thread, connection reuse (fewer connections than
 * requests), the response size limit, a timeout, a refused connection, and
 * that the blocking client keeps working beside it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/mem.h"
#include "http/client.h"
#include "fx_net.h"

static int listen_fd = -1;
static char base[64];
static atomic_int accepted;
static pthread_t accept_thread;

static void
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0 && (w = write(fd, p, n)) > 0) {
		p += w;
		n -= (size_t)w;
	}
}

static void
respond(int fd, const char *status, const char *headers, const char *body,
        size_t len)
{
	char head[1024];

	snprintf(head, sizeof(head),
	         "HTTP/1.1 %s\r\nContent-Length: %zu\r\n%s\r\n", status, len,
	         headers);
	write_all(fd, head, strlen(head));
	write_all(fd, body, len);
}

/* Serve requests on one connection until the peer closes it. */
static void *
conn_main(void *arg)
{
	static char big[200000];
	int fd = (int)(intptr_t)arg;
	char req[16384], *end, *cl, *b, echo[17000];
	size_t n = 0, need, blen;
	ssize_t r;

	for (;;) {
		end = NULL;
		while (n < sizeof(req) - 1) {
			req[n] = '\0';
			if ((end = strstr(req, "\r\n\r\n")) != NULL) {
				cl = strstr(req, "Content-Length: ");
				need = (size_t)(end + 4 - req) +
				       (cl && cl < end ? (size_t)atoi(cl + 16)
				                       : 0);
				if (n >= need)
					break;
			}
			if ((r = read(fd, req + n, sizeof(req) - 1 - n)) <= 0)
				goto out;
			n += (size_t)r;
		}
		req[n] = '\0';
		if (end == NULL)
			goto out;
		b = end + 4;
		blen = n - (size_t)(b - req);
		if (strncmp(req, "PUT /echo ", 10) == 0) {
			/* echo the request head's Content-Type and X-Test,
			 * then the body */
			const char *ct = strstr(req, "Content-Type: ");
			const char *xt = strstr(req, "X-Test: ");
			int m = snprintf(echo, sizeof(echo), "%.*s|%.*s|%.*s",
			                 ct ? (int)strcspn(ct, "\r") : 0,
			                 ct ? ct : "",
			                 xt ? (int)strcspn(xt, "\r") : 0,
			                 xt ? xt : "", (int)blen, b);
			respond(fd, "200 OK", "X-Reply: yes\r\n", echo,
			        (size_t)m);
		} else if (strncmp(req, "GET /slow ", 10) == 0) {
			usleep(1500 * 1000);
			respond(fd, "200 OK", "", "late", 4);
		} else if (strncmp(req, "GET /big ", 9) == 0) {
			memset(big, 'x', sizeof(big));
			respond(fd, "200 OK", "", big, sizeof(big));
		} else {
			respond(fd, "404 Not Found", "", "no", 2);
		}
		/* one request at a time: drop what was consumed */
		n = 0;
	}
out:
	close(fd);
	return NULL;
}

static void *
accept_main(void *arg)
{
	pthread_t t;
	int fd;

	for (;;) {
		if ((fd = accept(listen_fd, NULL, NULL)) == -1)
			return NULL;
		atomic_fetch_add(&accepted, 1);
		if (pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd) !=
		    0) {
			close(fd);
			continue;
		}
		pthread_detach(t);
	}
}

static int
setup(void **state)
{
	int port;

	if ((listen_fd = fx_listen_loopback(256, &port)) == -1)
		return -1;
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	if (eb_http_client_global_init() == -1)
		return -1;
	return pthread_create(&accept_thread, NULL, accept_main, NULL);
}

static int
teardown(void **state)
{
	eb_http_client_global_cleanup();
	shutdown(listen_fd, SHUT_RDWR);
	close(listen_fd);
	pthread_join(accept_thread, NULL);
	return 0;
}

/* A completion the test thread waits for. */
struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int expected, got;
	int ok; /* responses as the test wanted */
	pthread_t done_thread;
	struct eb_http_response *last;
};

static void
waiter_init(struct waiter *w, int expected)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->expected = expected;
}

static void
waiter_wait(struct waiter *w)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	pthread_mutex_lock(&w->lock);
	while (w->got < w->expected)
		if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) != 0)
			break;
	pthread_mutex_unlock(&w->lock);
	assert_int_equal(w->got, w->expected);
}

static void
waiter_finish(struct waiter *w)
{
	eb_http_response_free(w->last);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
}

/* Keep the response for the test to look at. */
static void
keep_done(struct eb_http_response *resp, void *arg)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->lock);
	w->done_thread = pthread_self();
	eb_http_response_free(w->last);
	w->last = resp;
	w->got++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static void
test_put_echo(void **state)
{
	static const char *hdrs[] = {"Content-Type: application/x-test",
	                             "X-Test: 42", NULL};
	struct eb_http_options o;
	struct waiter w;
	char url[128], body[] = "<plist>hello</plist>";

	waiter_init(&w, 1);
	snprintf(url, sizeof(url), "%s/echo", base);
	eb_http_options_init(&o, "PUT", url);
	o.headers = hdrs;
	o.body = body;
	o.body_len = strlen(body);
	assert_int_equal(eb_http_fetch_async(&o, keep_done, &w), 0);
	/* everything was copied: the caller's buffers may change at once */
	memset(body, 'z', strlen(body));
	memset(url, 0, sizeof(url));
	waiter_wait(&w);
	assert_non_null(w.last);
	assert_int_equal(w.last->error, EB_HTTP_OK);
	assert_int_equal(w.last->status, 200);
	assert_string_equal(w.last->body, "Content-Type: application/x-test|"
	                                  "X-Test: 42|<plist>hello</plist>");
	assert_string_equal(eb_http_response_header(w.last, "x-reply"), "yes");
	/* completion runs on the client's own thread */
	assert_false(pthread_equal(w.done_thread, pthread_self()));
	waiter_finish(&w);
}

/* Count the 200 responses whose body is the expected echo. */
static void
count_done(struct eb_http_response *resp, void *arg)
{
	struct waiter *w = arg;
	int good = resp != NULL && resp->error == EB_HTTP_OK &&
	           resp->status == 200 &&
	           strcmp(resp->body, "Content-Type: text/plain||x") == 0;

	eb_http_response_free(resp);
	pthread_mutex_lock(&w->lock);
	w->ok += good;
	w->got++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static void
test_many_and_reuse(void **state)
{
	static const char *hdrs[] = {"Content-Type: text/plain", NULL};
	struct eb_http_options o;
	struct waiter w;
	char url[128];
	int i, round, before;
	const int per_round = 32, rounds = 5;

	snprintf(url, sizeof(url), "%s/echo", base);
	eb_http_options_init(&o, "PUT", url);
	o.headers = hdrs;
	o.body = "x";
	o.body_len = 1;
	before = atomic_load(&accepted);
	waiter_init(&w, per_round * rounds);
	for (round = 0; round < rounds; round++) {
		int target = per_round * (round + 1);

		for (i = 0; i < per_round; i++)
			assert_int_equal(
			    eb_http_fetch_async(&o, count_done, &w), 0);
		/* wait for this round before the next */
		pthread_mutex_lock(&w.lock);
		while (w.got < target) {
			pthread_mutex_unlock(&w.lock);
			usleep(2000);
			pthread_mutex_lock(&w.lock);
		}
		pthread_mutex_unlock(&w.lock);
	}
	waiter_wait(&w);
	assert_int_equal(w.ok, per_round * rounds);
	/* later rounds ran over the first round's connections */
	assert_true(atomic_load(&accepted) - before <= per_round + 2);
	assert_int_equal(eb_http_async_pending(), 0);
	waiter_finish(&w);
}

static void
test_limits_and_errors(void **state)
{
	struct eb_http_options o;
	struct waiter w;
	char url[128];
	struct timespec t0, t1;
	double secs;
	int fd;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	/* response over the limit */
	waiter_init(&w, 1);
	snprintf(url, sizeof(url), "%s/big", base);
	eb_http_options_init(&o, "GET", url);
	o.max_response_bytes = 1000;
	assert_int_equal(eb_http_fetch_async(&o, keep_done, &w), 0);
	waiter_wait(&w);
	assert_int_equal(w.last->error, EB_HTTP_ERR_TOO_LARGE);
	waiter_finish(&w);

	/* timeout, well before the slow answer */
	waiter_init(&w, 1);
	snprintf(url, sizeof(url), "%s/slow", base);
	eb_http_options_init(&o, "GET", url);
	o.timeout_ms = 300;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(eb_http_fetch_async(&o, keep_done, &w), 0);
	waiter_wait(&w);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_int_equal(w.last->error, EB_HTTP_ERR_TIMEOUT);
	assert_true(secs < 1.2);
	waiter_finish(&w);

	/* refused: a port nobody listens on */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", ntohs(sa.sin_port));
	waiter_init(&w, 1);
	eb_http_options_init(&o, "GET", url);
	assert_int_equal(eb_http_fetch_async(&o, keep_done, &w), 0);
	waiter_wait(&w);
	close(fd);
	assert_int_equal(w.last->error, EB_HTTP_ERR_CONNECT);
	waiter_finish(&w);

	/* refused at once: not http(s), test hooks, no callback */
	eb_http_options_init(&o, "GET", "ftp://127.0.0.1/");
	assert_int_equal(eb_http_fetch_async(&o, keep_done, &w), -1);
	eb_http_options_init(&o, "GET", url);
	assert_int_equal(eb_http_fetch_async(&o, NULL, NULL), -1);
	{
		static const char *res[] = {"a:80:127.0.0.1", NULL};

		o.resolve = res;
		assert_int_equal(eb_http_fetch_async(&o, keep_done, &w), -1);
	}
}

static void
test_blocking_beside(void **state)
{
	struct eb_http_options o;
	struct eb_http_response *r;
	char url[128];

	/* the blocking client is unaffected by the asynchronous one */
	snprintf(url, sizeof(url), "%s/echo", base);
	eb_http_options_init(&o, "PUT", url);
	o.body = "b";
	o.body_len = 1;
	r = eb_http_fetch(&o);
	assert_non_null(r);
	assert_int_equal(r->error, EB_HTTP_OK);
	assert_int_equal(r->status, 200);
	eb_http_response_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_echo),
	    cmocka_unit_test(test_many_and_reuse),
	    cmocka_unit_test(test_limits_and_errors),
	    cmocka_unit_test(test_blocking_beside),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
