/*
 * Fairness of the asynchronous client's connection pool (client.h,
 * eb_http_options.fair_key): one key's slow requests hold at most
 * EB_HTTP_FAIR_SHARE connections to an upstream, its further ones wait in
 * its own queue (at most EB_HTTP_FAIR_QUEUE, then refused at once), and
 * another key's request is served at once even when the first key sent
 * more requests than the whole pool. Transfers without a key keep the
 * whole pool. Against a fake upstream on 127.0.0.1 (a thread per
 * connection) that holds "/slow" requests for SLOW_MS.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/str.h"
#include "http/client.h"
#include "fx_net.h"

#define SLOW_MS 400
#define POOL    128 /* the native client's connections per upstream */

static int lfd = -1, port;
static atomic_int slow_now, slow_max, served;

static void *
conn_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[8192];
	size_t have = 0;
	ssize_t n;
	char *end;

	for (;;) {
		while ((end = memmem(buf, have, "\r\n\r\n", 4)) == NULL) {
			if (have == sizeof(buf) ||
			    (n = recv(fd, buf + have, sizeof(buf) - have, 0)) <=
			        0)
				goto out;
			have += (size_t)n;
		}
		if (strncmp(buf, "GET /slow", 9) == 0) {
			int now = atomic_fetch_add(&slow_now, 1) + 1, m;

			while (
			    (m = atomic_load(&slow_max)) < now &&
			    !atomic_compare_exchange_weak(&slow_max, &m, now))
				;
			usleep(SLOW_MS * 1000);
			atomic_fetch_sub(&slow_now, 1);
		}
		atomic_fetch_add(&served, 1);
		if (fx_send_all(
		        fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		        40, 0, 0) == -1)
			goto out;
		have -= (size_t)(end + 4 - buf);
		memmove(buf, end + 4, have);
	}
out:
	close(fd);
	return NULL;
}

static void *
accept_main(void *arg)
{
	pthread_attr_t attr;
	pthread_t t;
	int fd;

	(void)arg;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	while ((fd = accept(lfd, NULL, NULL)) != -1)
		if (pthread_create(&t, &attr, conn_main,
		                   (void *)(intptr_t)fd) != 0)
			close(fd);
	return NULL;
}

static int
setup(void **state)
{
	pthread_t t;

	(void)state;
	fx_native_env();
	if ((lfd = fx_listen_loopback(1024, &port)) == -1 ||
	    pthread_create(&t, NULL, accept_main, NULL) != 0)
		return -1;
	pthread_detach(t);
	return 0;
}

struct result {
	int calls;
	long status;
	long long at; /* ms since the test's start */
};

static long long t0;

static void
on_done(struct eb_http_response *resp, void *arg)
{
	struct result *r = arg;

	r->calls++;
	r->status =
	    resp != NULL && resp->error == EB_HTTP_OK ? resp->status : -1;
	r->at = eb_mono_ms() - t0;
	eb_http_response_free(resp);
}

/* Start a GET of path for key on the bound loop: what fetch_async said. */
static int
start(const char *path, const char *key, struct result *r)
{
	struct eb_http_options o;
	char u[256];

	snprintf(u, sizeof(u), "http://127.0.0.1:%d%s", port, path);
	eb_http_options_init(&o, "GET", u);
	o.fair_key = key;
	o.timeout_ms = 20000;
	return eb_http_fetch_async(&o, on_done, r);
}

/* Run l until every started result of v[n] was called, ms at most. */
static void
run_until(struct eb_http_loop *l, struct result *v, const int *started,
          size_t n, int ms)
{
	long long end = eb_mono_ms() + ms;
	size_t i;

	for (;;) {
		for (i = 0; i < n && (!started[i] || v[i].calls > 0); i++)
			;
		if (i == n || eb_mono_ms() >= end)
			return;
		eb_http_loop_run(l, 10);
	}
}

#define NA 150 /* more than the whole pool */

static void
test_one_key_cannot_queue_another(void **state)
{
	static struct result a[NA], b;
	static int started[NA];
	struct eb_http_loop *l = eb_http_loop_new();
	int one = 1, accepted = 0, refused = 0, i;

	(void)state;
	assert_non_null(l);
	eb_http_loop_bind(l);
	atomic_store(&slow_max, 0);
	t0 = eb_mono_ms();
	for (i = 0; i < NA; i++) {
		started[i] = start("/slow", "grant-A", &a[i]) == 0;
		accepted += started[i];
		refused += !started[i];
	}
	/* A holds its share and waits for the rest in its own queue; what
	 * would wait beyond its queue is refused at once */
	assert_int_equal(accepted, EB_HTTP_FAIR_SHARE + EB_HTTP_FAIR_QUEUE);
	assert_int_equal(refused, NA - accepted);
	eb_http_loop_run(l, 20);
	/* another key is served at once, not after A's slow ones */
	assert_int_equal(start("/fast", "grant-B", &b), 0);
	run_until(l, &b, &one, 1, 5000);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.status, 200);
	print_message("B answered after %lld ms (A's requests take %d ms)\n",
	              b.at, SLOW_MS);
	assert_true(b.at < SLOW_MS / 2);
	for (i = 0; i < NA; i++)
		assert_int_equal(started[i] ? a[i].calls : 0, 0);
	/* and A's all complete, EB_HTTP_FAIR_SHARE at a time */
	run_until(l, a, started, NA, 20000);
	for (i = 0; i < NA; i++)
		if (started[i]) {
			assert_int_equal(a[i].calls, 1);
			assert_int_equal(a[i].status, 200);
		}
	assert_int_equal(atomic_load(&slow_max), EB_HTTP_FAIR_SHARE);
	/* its turns came in order: the last waiter ended last */
	for (i = 1; i < accepted; i++)
		assert_true(a[i].at + 50 >= a[i - 1].at);
	eb_http_loop_free(l);
	assert_int_equal(eb_http_async_pending(), 0);
}

/* Two keys over the share: both progress, taking turns (neither is
 * served only after the other). */
static void
test_two_keys_take_turns(void **state)
{
	static struct result a[40], c[40];
	static int sa[40], sc[40];
	struct eb_http_loop *l = eb_http_loop_new();
	long long a_last = 0, c_first = 1 << 30;
	int i;

	(void)state;
	assert_non_null(l);
	eb_http_loop_bind(l);
	t0 = eb_mono_ms();
	for (i = 0; i < 40; i++)
		sa[i] = start("/slow", "A", &a[i]) == 0;
	for (i = 0; i < 40; i++)
		sc[i] = start("/slow", "C", &c[i]) == 0;
	run_until(l, a, sa, 40, 20000);
	run_until(l, c, sc, 40, 20000);
	for (i = 0; i < 40; i++) {
		assert_true(sa[i] && sc[i]);
		assert_int_equal(a[i].status, 200);
		assert_int_equal(c[i].status, 200);
		if (a[i].at > a_last)
			a_last = a[i].at;
		if (c[i].at < c_first)
			c_first = c[i].at;
	}
	/* C's first answer came in A's first round, not after A's last */
	assert_true(c_first < SLOW_MS + SLOW_MS / 2);
	assert_true(c_first < a_last);
	eb_http_loop_free(l);
	assert_int_equal(eb_http_async_pending(), 0);
}

/* Without a key, transfers keep the whole pool, as before. */
static void
test_no_key_whole_pool(void **state)
{
	static struct result v[POOL];
	static int s[POOL];
	struct eb_http_loop *l = eb_http_loop_new();
	int i;

	(void)state;
	assert_non_null(l);
	eb_http_loop_bind(l);
	atomic_store(&slow_max, 0);
	t0 = eb_mono_ms();
	for (i = 0; i < POOL; i++)
		assert_int_equal(s[i] = start("/slow", NULL, &v[i]) == 0, 1);
	run_until(l, v, s, POOL, 20000);
	for (i = 0; i < POOL; i++)
		assert_int_equal(v[i].status, 200);
	assert_true(atomic_load(&slow_max) > EB_HTTP_FAIR_SHARE);
	eb_http_loop_free(l);
	assert_int_equal(eb_http_async_pending(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_key_cannot_queue_another),
	    cmocka_unit_test(test_two_keys_take_turns),
	    cmocka_unit_test(test_no_key_whole_pool),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
