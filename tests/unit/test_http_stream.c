/*
 * Unit tests for streaming a response body through the asynchronous HTTP
 * client (client.h: struct eb_http_stream, eb_http_xfer_resume,
 * eb_http_xfer_abort), on both of a loop's paths: the native HTTP/1.1
 * client (client_h1.c, plain http:// at an IP address) and libcurl
 * (client_async.c, the same URLs on a loop made while
 * ENROLLBRIDGE_UPSTREAM_CURL=1). Every case runs once per path, each on a
 * loop of its own bound to the test's thread; eb_http_async_stats() checks
 * that the transfer really went the intended way.
 *
 * The upstream is a raw TCP server on 127.0.0.1 in this process: a thread
 * per connection reading one request head at a time and answering by
 * path: a Content-Length or chunked body (many chunks of varying size)
 * written in pieces with small delays, optionally cut short; one after an
 * interim 103; a 302; a 204; an endless chunked body that notices when the
 * client closes the connection. Body bytes are a position-dependent pattern, so
 * that any byte lost, repeated or moved shows.
 *
 * Covered: STREAM (bytes in order, exactly the body; done OK with an empty
 * body; head saw status and headers, of the final response after a 1xx),
 * GATHER, pause and resume (the same bytes come again, also when refused
 * again; nothing while paused, nothing lost or doubled; the connection
 * reused after), abort from outside (done never called, the connection
 * closed, pending counts restored) also while paused, data or head ending
 * the transfer (also on the bytes given again after a resume), the body
 * limit (also passed on bytes given again), bodies cut short
 * (Content-Length, mid chunk, at a chunk boundary, before the last CRLF;
 * also while pausing), a timeout while paused, refusals (no bound loop;
 * the blocking client), bodiless responses (204, HEAD), one transfer
 * paused while another goes on, a 302 streamed and a followed one (head
 * and data for the final response only), the loop freed with a transfer
 * paused. Every callback runs on the test's thread; done never from
 * within eb_http_xfer_resume(); data never with len 0, before head,
 * while paused or after it said -1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http/client.h"
#include "fx_net.h"

/* ---- the body pattern ---- */

#define BODY_MAX (512 * 1024)

static unsigned char pattern[BODY_MAX];

static void
pattern_init(void)
{
	uint32_t i, x;

	for (i = 0; i < BODY_MAX; i++) {
		x = i * 2654435761u;
		x ^= x >> 15;
		x *= 2246822519u;
		x ^= x >> 13;
		pattern[i] = (unsigned char)(x >> 24);
	}
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the upstream ---- */

#define MAX_REQS 4096

static int listen_fd = -1;
static int port;
static pthread_t accept_thread;
static pthread_mutex_t req_lock = PTHREAD_MUTEX_INITIALIZER;
static char *reqs[MAX_REQS]; /* request targets received */
static size_t nreqs;
/* /endless responses that saw the client close the connection */
static atomic_int endless_closed;

/* How many requests had a target containing s. */
static int
req_count(const char *s)
{
	size_t i;
	int n = 0;

	pthread_mutex_lock(&req_lock);
	for (i = 0; i < nreqs; i++)
		if (strstr(reqs[i], s) != NULL)
			n++;
	pthread_mutex_unlock(&req_lock);
	return n;
}

static void
reqs_reset(void)
{
	size_t i;

	pthread_mutex_lock(&req_lock);
	for (i = 0; i < nreqs; i++)
		free(reqs[i]);
	nreqs = 0;
	pthread_mutex_unlock(&req_lock);
}

/* Has the client closed (or reset) the connection? It sends nothing after
 * its request, so anything readable is the end. */
static int
peer_closed(int fd)
{
	struct pollfd p;
	char b;
	ssize_t r;

	p.fd = fd;
	p.events = POLLIN;
	p.revents = 0;
	if (poll(&p, 1, 0) <= 0)
		return 0;
	r = recv(fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
	return r == 0 || (r == -1 && errno != EAGAIN && errno != EWOULDBLOCK &&
	                  errno != EINTR);
}

/* The value of query parameter name in target, or def. */
static size_t
qparam(const char *target, const char *name, size_t def)
{
	const char *q = strchr(target, '?');
	size_t nl = strlen(name);

	while (q != NULL) {
		q++;
		if (strncmp(q, name, nl) == 0 && q[nl] == '=')
			return (size_t)strtoul(q + nl + 1, NULL, 10);
		q = strchr(q, '&');
	}
	return def;
}

/* Chunk sizes: 1..700, varying. */
static size_t
chunk_size(size_t k)
{
	return 1 + (k * 37) % 700;
}

/*
 * A whole chunked response for n body bytes into *raw (malloc'd), its
 * length returned; the positions where to cut it: before the body byte
 * at n/2 (mid chunk), after the CRLF of the chunk holding it (a chunk
 * boundary), before the final CRLF (after "0\r\n").
 */
static size_t
chunked_response(const char *head, size_t n, char **raw, size_t *mid,
                 size_t *boundary, size_t *last)
{
	size_t cap = strlen(head) + n + 16 * (n + 1) + 64, len, off = 0, k, c;
	char *p = malloc(cap);

	if (p == NULL)
		abort();
	len = (size_t)snprintf(p, cap, "%s", head);
	*mid = *boundary = 0;
	for (k = 0; off < n; k++) {
		c = chunk_size(k);
		if (c > n - off)
			c = n - off;
		len += (size_t)snprintf(p + len, cap - len, "%zx\r\n", c);
		if (*mid == 0 && off + c > n / 2)
			*mid = len + (n / 2 - off);
		memcpy(p + len, pattern + off, c);
		len += c;
		memcpy(p + len, "\r\n", 2);
		len += 2;
		off += c;
		if (*boundary == 0 && *mid != 0)
			*boundary = len;
	}
	memcpy(p + len, "0\r\n\r\n", 5);
	len += 5;
	*last = len - 2;
	*raw = p;
	return len;
}

/* Keep sending p until sent; 0, or -1 when the client closed or the
 * deadline passed. */
static int
send_until(int fd, const char *p, size_t n, long long deadline)
{
	ssize_t w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		                errno == EINTR)) {
			/* SO_SNDTIMEO: the client does not read */
			if (peer_closed(fd) || now_ms() >= deadline)
				return -1;
			continue;
		}
		return -1;
	}
	return 0;
}

/* A chunked body of 1000-byte chunks every 5 ms until the client closes
 * the connection (counted in endless_closed) or 15 s. */
static void
endless(int fd)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nX-Test: endless\r\n"
	                           "Transfer-Encoding: chunked\r\n\r\n";
	struct timeval tv = {0, 100000};
	long long deadline = now_ms() + 15000;
	char chunk[1100];
	size_t off = 0;
	int closed = 0;

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (send_until(fd, head, sizeof(head) - 1, deadline) == -1)
		closed =
		    peer_closed(fd) || errno == EPIPE || errno == ECONNRESET;
	while (!closed && now_ms() < deadline) {
		if (peer_closed(fd)) {
			closed = 1;
			break;
		}
		if (off + 1000 <= BODY_MAX) {
			memcpy(chunk, "3e8\r\n", 5);
			memcpy(chunk + 5, pattern + off, 1000);
			memcpy(chunk + 1005, "\r\n", 2);
			if (send_until(fd, chunk, 1007, deadline) == -1) {
				closed = now_ms() < deadline;
				break;
			}
			off += 1000;
		}
		usleep(5000);
	}
	if (closed)
		atomic_fetch_add(&endless_closed, 1);
}

/*
 * Answer one request; 1 to go on with the connection, 0 to close it.
 * /cl and /chunked take n (body bytes), piece (bytes per write, 0: all
 * at once) and delay (us between writes); cut=1 ends /cl halfway and
 * /chunked mid chunk, cut=2 at a chunk boundary, cut=3 before the last
 * CRLF, each followed by a close.
 */
static int
serve(int fd, const char *method, const char *target)
{
	size_t n = qparam(target, "n", 100000);
	size_t piece = qparam(target, "piece", 4096);
	int delay = (int)qparam(target, "delay", 1000);
	size_t cut = qparam(target, "cut", 0);
	size_t pl = strcspn(target, "?");
	int head_only = strcmp(method, "HEAD") == 0;
	char head[256];
	char *raw;
	size_t len, hl, mid, boundary, last;

	if (n > BODY_MAX)
		n = BODY_MAX;
	if (pl == 3 && strncmp(target, "/cl", 3) == 0) {
		hl = (size_t)snprintf(head, sizeof(head),
		                      "HTTP/1.1 200 OK\r\nX-Test: cl\r\n"
		                      "Content-Length: %zu\r\n\r\n",
		                      n);
		if ((raw = malloc(hl + n)) == NULL)
			abort();
		memcpy(raw, head, hl);
		memcpy(raw + hl, pattern, n);
		len = head_only ? hl : cut ? hl + n / 2 : hl + n;
		fx_send_all(fd, raw, len, piece, delay);
		free(raw);
		return !cut;
	}
	if (pl == 8 && strncmp(target, "/chunked", 8) == 0) {
		len = chunked_response("HTTP/1.1 200 OK\r\nX-Test: chunked\r\n"
		                       "Transfer-Encoding: chunked\r\n\r\n",
		                       n, &raw, &mid, &boundary, &last);
		if (head_only)
			len = (size_t)(strstr(raw, "\r\n\r\n") + 4 - raw);
		else if (cut == 1)
			len = mid;
		else if (cut == 2)
			len = boundary;
		else if (cut == 3)
			len = last;
		fx_send_all(fd, raw, len, piece, delay);
		free(raw);
		return !cut;
	}
	if (pl == 8 && strncmp(target, "/interim", 8) == 0) {
		/* an interim response first: head is for the final one */
		hl = (size_t)snprintf(
		    head, sizeof(head),
		    "HTTP/1.1 103 Early Hints\r\n"
		    "Link: </style.css>\r\nX-Test: early\r\n"
		    "\r\nHTTP/1.1 200 OK\r\nX-Test: interim\r\n"
		    "Content-Length: %zu\r\n\r\n",
		    n);
		if ((raw = malloc(hl + n)) == NULL)
			abort();
		memcpy(raw, head, hl);
		memcpy(raw + hl, pattern, n);
		fx_send_all(fd, raw, hl + n, piece, delay);
		free(raw);
		return 1;
	}
	if (strcmp(target, "/redirect") == 0) {
		static const char r[] =
		    "HTTP/1.1 302 Found\r\nX-Test: redirect\r\n"
		    "Location: /cl?n=5000&piece=1000&tag=rd\r\n"
		    "Content-Length: 5\r\n\r\nmoved";

		fx_send_all(fd, r, sizeof(r) - 1, 0, 0);
		return 1;
	}
	if (strcmp(target, "/204") == 0) {
		static const char r[] =
		    "HTTP/1.1 204 No Content\r\nX-Test: 204\r\n\r\n";

		fx_send_all(fd, r, sizeof(r) - 1, 0, 0);
		return 1;
	}
	if (pl == 8 && strncmp(target, "/endless", 8) == 0) {
		endless(fd);
		return 0;
	}
	{
		static const char r[] =
		    "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno";

		fx_send_all(fd, r, sizeof(r) - 1, 0, 0);
	}
	return 1;
}

static void *
conn_main(void *arg)
{
	int fd = (int)(intptr_t)arg, one = 1;
	char buf[8192], method[16], target[1024], *end;
	size_t len = 0, hl;
	ssize_t r;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (;;) {
		buf[len] = '\0';
		while ((end = strstr(buf, "\r\n\r\n")) == NULL) {
			if (len >= sizeof(buf) - 1)
				goto out;
			r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
			if (r == -1 && errno == EINTR)
				continue;
			if (r <= 0)
				goto out;
			len += (size_t)r;
			buf[len] = '\0';
		}
		hl = (size_t)(end + 4 - buf);
		if (sscanf(buf, "%15s %1023s", method, target) != 2)
			goto out;
		pthread_mutex_lock(&req_lock);
		if (nreqs < MAX_REQS)
			reqs[nreqs++] = strdup(target);
		pthread_mutex_unlock(&req_lock);
		if (!serve(fd, method, target))
			break;
		memmove(buf, buf + hl, len - hl);
		len -= hl;
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
	for (;;) {
		if ((fd = accept(listen_fd, NULL, NULL)) == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		if (pthread_create(&t, &attr, conn_main,
		                   (void *)(intptr_t)fd) != 0)
			close(fd);
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

static int
setup(void **state)
{
	(void)state;
	pattern_init();
	fx_native_env();
	if ((listen_fd = fx_listen_loopback(128, &port)) == -1 ||
	    eb_http_client_global_init() == -1)
		return -1;
	return pthread_create(&accept_thread, NULL, accept_main, NULL);
}

static int
teardown(void **state)
{
	(void)state;
	eb_http_client_global_cleanup();
	shutdown(listen_fd, SHUT_RDWR);
	close(listen_fd);
	pthread_join(accept_thread, NULL);
	reqs_reset();
	return 0;
}

/* ---- the receiver ---- */

/*
 * One transfer's receiver: what head, data and done are to do, and what
 * they saw. Global (not on a test's stack) so that a failed assertion
 * leaves nothing pointing at freed memory: the per-test teardown frees
 * the loop, which ends its transfers.
 */
struct st {
	/* what to do */
	int head_ret;         /* head's answer */
	int pause_every;      /* data returns 1 on every nth call (0: no) */
	int pause_at;         /* data returns 1 on this call (0: no) */
	size_t pause_over;    /* returns 1 once on the bytes past this */
	int fail_at;          /* data returns -1 on this call (0: no) */
	int fail_after_pause; /* data returns -1 on the call after a pause */
	int no_resume;        /* the driver never resumes */
	int hold_ms;          /* the first pause lasts this long */
	int pause_repeat;     /* and on that many calls after each pause */
	int repeat_left;
	const unsigned char *expect; /* the body data must get, in order */
	size_t expect_len;
	/* what happened */
	int head_calls, data_calls, done_calls, pauses;
	long head_status;
	char head_xtest[64], head_te[64], head_cl[64];
	struct eb_http_xfer *xfer;
	unsigned char *got; /* the bytes data took */
	size_t got_len, got_cap;
	int overflow;          /* more than got_cap taken */
	int bad_bytes;         /* data offered bytes not the expected ones */
	int paused;            /* data said 1, not resumed yet */
	int data_while_paused; /* data called then */
	int data_before_head;
	int after_end; /* data called after it said -1, or after done */
	int ended;     /* data said -1 */
	int zero_len;  /* data called with len 0 */
	int wrong_thread;
	int in_resume;      /* the test is in eb_http_xfer_resume() */
	int done_in_resume; /* done called from there */
	int crossed;        /* pause_over used */
	struct eb_http_response *resp;
};

#define NST 4
static struct st S[NST];
static struct eb_http_loop *L;
static pthread_t test_thread;

static void
st_init(struct st *s, int head_ret)
{
	free(s->got);
	eb_http_response_free(s->resp);
	memset(s, 0, sizeof(*s));
	s->head_ret = head_ret;
	s->expect = pattern;
	s->expect_len = BODY_MAX;
	s->got_cap = BODY_MAX + 65536;
	s->got = malloc(s->got_cap);
	assert_non_null(s->got);
}

static void
copy_header(const struct eb_http_response *resp, const char *name, char *out,
            size_t sz)
{
	const char *v = eb_http_response_header(resp, name);

	snprintf(out, sz, "%s", v != NULL ? v : "");
}

static int
on_head(const struct eb_http_response *resp, struct eb_http_xfer *xfer,
        void *arg)
{
	struct st *s = arg;

	if (!pthread_equal(pthread_self(), test_thread))
		s->wrong_thread = 1;
	s->head_calls++;
	s->head_status = resp->status;
	s->xfer = xfer;
	copy_header(resp, "X-Test", s->head_xtest, sizeof(s->head_xtest));
	copy_header(resp, "Transfer-Encoding", s->head_te, sizeof(s->head_te));
	copy_header(resp, "Content-Length", s->head_cl, sizeof(s->head_cl));
	return s->head_ret;
}

static int
on_data(const char *p, size_t len, void *arg)
{
	struct st *s = arg;

	if (!pthread_equal(pthread_self(), test_thread))
		s->wrong_thread = 1;
	s->data_calls++;
	if (s->head_calls == 0)
		s->data_before_head = 1;
	if (len == 0)
		s->zero_len++;
	if (s->paused)
		s->data_while_paused++;
	if (s->ended || s->done_calls > 0)
		s->after_end++;
	/* these must be the next bytes of the body, whatever we answer */
	if (s->got_len + len > s->expect_len ||
	    memcmp(p, s->expect + s->got_len, len) != 0)
		s->bad_bytes++;
	if (s->fail_at == s->data_calls ||
	    (s->fail_after_pause && s->pauses > 0)) {
		s->ended = 1;
		return -1;
	}
	if (s->repeat_left > 0) {
		/* not taken again: the same bytes must come once more */
		s->repeat_left--;
		s->paused = 1;
		s->pauses++;
		return 1;
	}
	if ((s->pause_every > 0 && s->data_calls % s->pause_every == 0) ||
	    s->pause_at == s->data_calls ||
	    (s->pause_over > 0 && !s->crossed &&
	     s->got_len + len > s->pause_over)) {
		if (s->pause_over > 0 && s->got_len + len > s->pause_over)
			s->crossed = 1;
		s->paused = 1;
		s->pauses++;
		s->repeat_left = s->pause_repeat;
		return 1;
	}
	if (s->got_len + len > s->got_cap) {
		s->overflow = 1;
		return 0;
	}
	memcpy(s->got + s->got_len, p, len);
	s->got_len += len;
	return 0;
}

static void
on_done(struct eb_http_response *resp, void *arg)
{
	struct st *s = arg;

	if (!pthread_equal(pthread_self(), test_thread))
		s->wrong_thread = 1;
	if (s->in_resume)
		s->done_in_resume = 1;
	s->done_calls++;
	eb_http_response_free(s->resp); /* a second call: keep the last */
	s->resp = resp;
}

static const struct eb_http_stream STREAM = {on_head, on_data};

/* ---- the client side ---- */

/* A loop for this path (curl: curl alone), bound to this thread. */
static void
loop_start(int curl)
{
	reqs_reset();
	if (curl)
		setenv("ENROLLBRIDGE_UPSTREAM_CURL", "1", 1);
	L = eb_http_loop_new();
	unsetenv("ENROLLBRIDGE_UPSTREAM_CURL");
	assert_non_null(L);
	eb_http_loop_bind(L);
	test_thread = pthread_self();
	assert_int_equal(eb_http_async_pending(), 0);
}

/* Per test: end what a failed test left under way, and free it all. */
static int
test_teardown(void **state)
{
	int i;

	(void)state;
	eb_http_loop_bind(NULL);
	eb_http_loop_free(L);
	L = NULL;
	for (i = 0; i < NST; i++) {
		free(S[i].got);
		eb_http_response_free(S[i].resp);
		memset(&S[i], 0, sizeof(S[i]));
	}
	return 0;
}

/* Start a streamed request for target on L through the path asked for
 * (curl: libcurl, 0: the native client, -1: whichever), following
 * redirects when follow. */
static void
start_x(struct st *s, int curl, const char *method, const char *target,
        size_t max, long timeout_ms, int follow)
{
	struct eb_http_options o;
	struct eb_http_async_stats a, b;
	char u[1100];

	snprintf(u, sizeof(u), "http://127.0.0.1:%d%s", port, target);
	eb_http_options_init(&o, method, u);
	o.max_response_bytes = max;
	o.timeout_ms = timeout_ms;
	o.follow_redirects = follow;
	o.stream = &STREAM;
	eb_http_async_stats(&a);
	assert_int_equal(eb_http_fetch_async(&o, on_done, s), 0);
	eb_http_async_stats(&b);
	/* the path the test is about */
	if (curl == -1) {
		assert_true(b.curl_transfers + b.native_transfers ==
		            a.curl_transfers + a.native_transfers + 1);
	} else if (curl) {
		assert_true(b.curl_transfers == a.curl_transfers + 1);
		assert_true(b.native_transfers == a.native_transfers);
	} else {
		assert_true(b.native_transfers == a.native_transfers + 1);
		assert_true(b.curl_transfers == a.curl_transfers);
	}
}

static void
start(struct st *s, int curl, const char *method, const char *target,
      size_t max, long timeout_ms)
{
	start_x(s, curl, method, target, max, timeout_ms, 0);
}

/* Run L for ms. */
static void
run_for(int ms)
{
	long long end = now_ms() + ms;

	while (now_ms() < end)
		eb_http_loop_run(L, 10);
}

/* Resume s from outside its callbacks. */
static void
resume(struct st *s)
{
	s->paused = 0;
	s->in_resume = 1;
	eb_http_xfer_resume(s->xfer);
	s->in_resume = 0;
}

/*
 * Run L until done is called (ms at most). When data paused the transfer,
 * run on without resuming (hold_ms the first time, else a few rounds: no
 * data call and no done may come meanwhile), then resume from here,
 * outside the callbacks; unless no_resume.
 */
static void
drive(struct st *s, int ms)
{
	long long end = now_ms() + ms;
	int calls;

	while (s->done_calls == 0 && now_ms() < end) {
		eb_http_loop_run(L, 10);
		if (!s->paused || s->done_calls > 0 || s->no_resume)
			continue;
		calls = s->data_calls;
		if (s->pauses == 1 && s->hold_ms > 0)
			run_for(s->hold_ms);
		else
			eb_http_loop_run(L, 0);
		if (s->data_calls != calls)
			s->data_while_paused++;
		if (s->done_calls > 0)
			break;
		resume(s);
	}
	/* a second done would show now */
	eb_http_loop_run(L, 0);
	eb_http_loop_run(L, 0);
}

/* The receiver saw nothing against the contract. */
#define assert_clean(s) assert_clean_at(s, __LINE__)
static void
assert_clean_at(const struct st *s, int line)
{
	if (s->bad_bytes || s->data_while_paused || s->data_before_head ||
	    s->after_end || s->zero_len || s->wrong_thread ||
	    s->done_in_resume || s->overflow || s->head_calls > 1 ||
	    s->done_calls > 1)
		print_error("line %d: bad_bytes %d data_while_paused %d "
		            "data_before_head %d after_end %d zero_len %d "
		            "wrong_thread %d done_in_resume %d overflow %d "
		            "head_calls %d done_calls %d\n",
		            line, s->bad_bytes, s->data_while_paused,
		            s->data_before_head, s->after_end, s->zero_len,
		            s->wrong_thread, s->done_in_resume, s->overflow,
		            s->head_calls, s->done_calls);
	assert_int_equal(s->bad_bytes, 0);
	assert_int_equal(s->data_while_paused, 0);
	assert_int_equal(s->data_before_head, 0);
	assert_int_equal(s->after_end, 0);
	assert_int_equal(s->zero_len, 0);
	assert_int_equal(s->wrong_thread, 0);
	assert_int_equal(s->done_in_resume, 0);
	assert_int_equal(s->overflow, 0);
	assert_true(s->head_calls <= 1);
	assert_true(s->done_calls <= 1);
}

/* done was called once, with this error. */
#define assert_done(s, err) assert_done_at(s, err, __LINE__)
static void
assert_done_at(const struct st *s, int err, int line)
{
	if (s->done_calls != 1)
		fail_msg("line %d: done called %d times", line, s->done_calls);
	assert_non_null(s->resp);
	if ((int)s->resp->error != err)
		print_error("line %d: error %d (%s), wanted %d\n", line,
		            s->resp->error, s->resp->message, err);
	assert_int_equal(s->resp->error, err);
}

/* done was called once, with an error (any). */
#define assert_failed(s) assert_failed_at(s, __LINE__)
static void
assert_failed_at(const struct st *s, int line)
{
	if (s->done_calls != 1)
		fail_msg("line %d: done called %d times", line, s->done_calls);
	assert_non_null(s->resp);
	if (s->resp->error == EB_HTTP_OK)
		print_error("line %d: done got EB_HTTP_OK (status %ld) after "
		            "%zu bytes streamed\n",
		            line, s->resp->status, s->got_len);
	assert_int_not_equal(s->resp->error, EB_HTTP_OK);
}

/* A streamed body received whole: exactly the n pattern bytes, done OK
 * with an empty body, head saw the status and headers. */
static void
assert_streamed(const struct st *s, size_t n, const char *xtest, int chunked)
{
	char cl[32];

	assert_clean(s);
	assert_done(s, EB_HTTP_OK);
	assert_string_equal(s->resp->message, "");
	assert_int_equal(s->resp->status, 200);
	assert_int_equal(s->resp->body_len, 0);
	assert_non_null(s->resp->body);
	assert_int_equal(s->head_calls, 1);
	assert_int_equal(s->head_status, 200);
	assert_string_equal(s->head_xtest, xtest);
	if (chunked) {
		assert_string_equal(s->head_te, "chunked");
	} else {
		snprintf(cl, sizeof(cl), "%zu", n);
		assert_string_equal(s->head_cl, cl);
	}
	assert_true(s->data_calls > 0);
	assert_int_equal(s->got_len, n);
	assert_memory_equal(s->got, pattern, n);
}

/* Run L until cond or ms. */
#define run_until(cond, ms)                                                    \
	do {                                                                   \
		long long end_ = now_ms() + (ms);                              \
		while (!(cond) && now_ms() < end_)                             \
			eb_http_loop_run(L, 10);                               \
	} while (0)

/* Declare test_<name>_native and test_<name>_curl for f(int curl). */
#define BOTH(f)                                                                \
	static void test_##f##_native(void **state)                            \
	{                                                                      \
		(void)state;                                                   \
		f(0);                                                          \
	}                                                                      \
	static void test_##f##_curl(void **state)                              \
	{                                                                      \
		(void)state;                                                   \
		f(1);                                                          \
	}
#define BOTH_TESTS(f)                                                          \
	cmocka_unit_test_teardown(test_##f##_native, test_teardown),           \
	    cmocka_unit_test_teardown(test_##f##_curl, test_teardown)

/* ---- 1. STREAM: Content-Length and chunked ---- */

static void
stream_body(int curl)
{
	struct st *s = &S[0];

	loop_start(curl);

	/* Content-Length, 100000 bytes in 10000-byte writes */
	st_init(s, EB_HTTP_STREAM);
	start(s, curl, "GET", "/cl?n=100000&piece=10000&delay=1000&tag=s1", 0,
	      0);
	drive(s, 10000);
	assert_streamed(s, 100000, "cl", 0);
	assert_true(s->data_calls > 1);

	/* chunked: about 290 chunks of 1-700 bytes, in 4000-byte writes */
	st_init(s, EB_HTTP_STREAM);
	start(s, curl, "GET", "/chunked?n=100000&piece=4000&delay=1000&tag=s2",
	      0, 0);
	drive(s, 10000);
	assert_streamed(s, 100000, "chunked", 1);
	assert_true(s->data_calls > 1);

	/* small, all in one write, on the kept-alive connection */
	st_init(s, EB_HTTP_STREAM);
	start(s, curl, "GET", "/chunked?n=3000&piece=0&tag=s3", 0, 0);
	drive(s, 5000);
	assert_streamed(s, 3000, "chunked", 1);
	st_init(s, EB_HTTP_STREAM);
	start(s, curl, "GET", "/cl?n=1&piece=0&tag=s4", 0, 0);
	drive(s, 5000);
	assert_streamed(s, 1, "cl", 0);
	assert_int_equal(req_count("tag=s"), 4);

	/* after an interim response: head is for the final one */
	st_init(s, EB_HTTP_STREAM);
	start(s, curl, "GET", "/interim?n=20000&piece=5000&tag=s5", 0, 0);
	drive(s, 10000);
	assert_streamed(s, 20000, "interim", 0);
}
BOTH(stream_body)

/* ---- 2. GATHER ---- */

static void
gather(int curl)
{
	struct st *s = &S[0];
	int i;

	loop_start(curl);
	for (i = 0; i < 2; i++) {
		st_init(s, EB_HTTP_GATHER);
		start(s, curl, "GET",
		      i == 0 ? "/cl?n=100000&piece=10000&tag=g1"
		             : "/chunked?n=100000&piece=4000&tag=g2",
		      0, 0);
		drive(s, 10000);
		assert_clean(s);
		assert_done(s, EB_HTTP_OK);
		assert_int_equal(s->data_calls, 0);
		assert_int_equal(s->head_calls, 1);
		assert_int_equal(s->head_status, 200);
		assert_int_equal(s->resp->status, 200);
		assert_string_equal(s->head_xtest, i == 0 ? "cl" : "chunked");
		assert_string_equal(eb_http_response_header(s->resp, "X-Test"),
		                    i == 0 ? "cl" : "chunked");
		assert_int_equal(s->resp->body_len, 100000);
		assert_memory_equal(s->resp->body, pattern, 100000);
		assert_int_equal(s->resp->body[100000], '\0');
	}
}
BOTH(gather)

/* ---- 3. pause and resume ---- */

static void
pause_resume(int curl)
{
	struct st *s = &S[0];

	loop_start(curl);

	/* every third call not taken: 300000 bytes with Content-Length */
	st_init(s, EB_HTTP_STREAM);
	s->pause_every = 3;
	s->hold_ms = 300;
	start(s, curl, "GET", "/cl?n=300000&piece=16384&tag=p1", 0, 0);
	drive(s, 15000);
	assert_streamed(s, 300000, "cl", 0);
	assert_true(s->pauses >= 2);

	/* chunked */
	st_init(s, EB_HTTP_STREAM);
	s->pause_every = 3;
	s->hold_ms = 300;
	start(s, curl, "GET", "/chunked?n=30000&piece=3000&tag=p2", 0, 0);
	drive(s, 15000);
	assert_streamed(s, 30000, "chunked", 1);
	assert_true(s->pauses >= 2);

	/* the first call not taken, the whole response already in: held
	 * 300 ms (the chunked one), then all of it after the resume */
	st_init(s, EB_HTTP_STREAM);
	s->pause_at = 1;
	s->hold_ms = 300;
	start(s, curl, "GET", "/chunked?n=5000&piece=0&tag=p3", 0, 0);
	drive(s, 5000);
	assert_streamed(s, 5000, "chunked", 1);
	assert_int_equal(s->pauses, 1);
	st_init(s, EB_HTTP_STREAM);
	s->pause_at = 1;
	start(s, curl, "GET", "/cl?n=5000&piece=0&tag=p4", 0, 0);
	drive(s, 5000);
	assert_streamed(s, 5000, "cl", 0);
	assert_int_equal(s->pauses, 1);

	/* every fifth call not taken, nor the two after it (the same bytes
	 * three times) */
	st_init(s, EB_HTTP_STREAM);
	s->pause_every = 5;
	s->pause_repeat = 2;
	start(s, curl, "GET", "/chunked?n=20000&piece=3000&tag=p6", 0, 0);
	drive(s, 15000);
	assert_streamed(s, 20000, "chunked", 1);
	assert_true(s->pauses >= 6);

	/* the kept-alive connection is still in step */
	st_init(s, EB_HTTP_STREAM);
	start(s, curl, "GET", "/chunked?n=7000&piece=0&tag=p5", 0, 0);
	drive(s, 5000);
	assert_streamed(s, 7000, "chunked", 1);
	assert_int_equal(req_count("tag=p"), 6);
}
BOTH(pause_resume)

/* ---- 4. abort from outside ---- */

static void
abort_outside(int curl)
{
	struct st *s = &S[0], *t = &S[1], *u = &S[2];
	size_t pending0 = eb_http_async_pending();
	int calls, closed0;

	loop_start(curl);
	closed0 = atomic_load(&endless_closed);

	/* after the first data call */
	st_init(s, EB_HTTP_STREAM);
	start(s, curl, "GET", "/endless?tag=a1", 0, 0);
	assert_int_equal(eb_http_async_pending(), pending0 + 1);
	run_until(s->data_calls > 0 || s->done_calls > 0, 5000);
	assert_int_equal(s->done_calls, 0);
	assert_true(s->data_calls > 0);
	assert_non_null(s->xfer);
	eb_http_xfer_abort(s->xfer);
	assert_int_equal(eb_http_async_pending(), pending0);
	calls = s->data_calls;
	run_until(atomic_load(&endless_closed) > closed0, 5000);
	run_for(300);
	assert_int_equal(s->done_calls, 0);
	assert_int_equal(s->data_calls, calls);
	assert_int_equal(atomic_load(&endless_closed), closed0 + 1);
	assert_clean(s);
	assert_true(s->got_len > 0);

	/* while paused */
	st_init(t, EB_HTTP_STREAM);
	t->pause_at = 1;
	t->no_resume = 1;
	start(t, curl, "GET", "/endless?tag=a2", 0, 0);
	run_until(t->paused || t->done_calls > 0, 5000);
	assert_true(t->paused);
	assert_int_equal(eb_http_async_pending(), pending0 + 1);
	eb_http_xfer_abort(t->xfer);
	assert_int_equal(eb_http_async_pending(), pending0);
	run_until(atomic_load(&endless_closed) > closed0 + 1, 5000);
	run_for(300);
	assert_int_equal(t->done_calls, 0);
	assert_int_equal(t->data_calls, 1);
	assert_int_equal(atomic_load(&endless_closed), closed0 + 2);
	assert_clean(t);

	/* the loop goes on */
	st_init(u, EB_HTTP_STREAM);
	start(u, curl, "GET", "/cl?n=2000&piece=0&tag=a3", 0, 0);
	drive(u, 5000);
	assert_streamed(u, 2000, "cl", 0);
	assert_int_equal(eb_http_async_pending(), pending0);
	assert_int_equal(s->done_calls + t->done_calls, 0);
}
BOTH(abort_outside)

/* ---- 5. data ends the transfer ---- */

static void
data_ends(int curl)
{
	static const char *const targets[] = {
	    "/cl?n=100000&piece=10000&delay=2000&tag=d1",
	    "/chunked?n=100000&piece=4000&delay=2000&tag=d2",
	};
	struct st *s = &S[0];
	size_t i;

	loop_start(curl);
	for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		st_init(s, EB_HTTP_STREAM);
		s->fail_at = 2;
		start(s, curl, "GET", targets[i], 0, 0);
		drive(s, 5000);
		assert_clean(s);
		assert_done(s, EB_HTTP_ERR_OTHER);
		assert_int_equal(s->resp->body_len, 0);
		assert_int_equal(s->data_calls, 2);
	}
}
BOTH(data_ends)

/*
 * data says -1 on the bytes given again after a resume: the whole
 * response already received (Content-Length, chunked), or more still
 * arriving. A correct client ends the transfer in the loop round after
 * the resume: 3 s is plenty.
 */
static void
data_ends_on_resume(int curl)
{
	static const char *const targets[] = {
	    "/cl?n=100&piece=0&tag=e1",
	    "/chunked?n=100&piece=0&tag=e2",
	    "/cl?n=100000&piece=10000&tag=e3",
	};
	struct st *s = &S[0];
	size_t i;

	loop_start(curl);
	for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		st_init(s, EB_HTTP_STREAM);
		s->pause_at = i < 2 ? 1 : 2;
		s->fail_after_pause = 1;
		start(s, curl, "GET", targets[i], 0, 0);
		drive(s, 3000);
		if (s->after_end || s->done_calls != 1 ||
		    s->resp->error != EB_HTTP_ERR_OTHER)
			print_error("%s: data said -1 on call %d (the bytes "
			            "given again after the resume); then %d "
			            "more data calls, done called %d times "
			            "within 3 s\n",
			            targets[i], s->pause_at + 1, s->after_end,
			            s->done_calls);
		assert_clean(s);
		assert_done(s, EB_HTTP_ERR_OTHER);
		assert_int_equal(s->resp->body_len, 0);
		assert_int_equal(s->data_calls, s->pause_at + 1);
	}
}
BOTH(data_ends_on_resume)

/* ---- 6. head ends the transfer ---- */

static void
head_aborts(int curl)
{
	struct st *s = &S[0];
	int i;

	loop_start(curl);
	for (i = 0; i < 2; i++) {
		st_init(s, EB_HTTP_ABORT);
		start(s, curl, "GET",
		      i == 0 ? "/cl?n=50000&tag=h1"
		             : "/chunked?n=50000&piece=4000&tag=h2",
		      0, 0);
		drive(s, 10000);
		assert_clean(s);
		assert_done(s, EB_HTTP_ERR_OTHER);
		assert_int_equal(s->head_calls, 1);
		assert_int_equal(s->head_status, 200);
		assert_int_equal(s->data_calls, 0);
		assert_int_equal(s->resp->body_len, 0);
	}
}
BOTH(head_aborts)

/* ---- 7. the body limit ---- */

static void
limit(int curl)
{
	struct st *s = &S[0];

	loop_start(curl);

	/* chunked, past 10000 bytes */
	st_init(s, EB_HTTP_STREAM);
	start(s, curl, "GET", "/chunked?n=50000&piece=4000&tag=l1", 10000, 0);
	drive(s, 10000);
	assert_clean(s);
	assert_done(s, EB_HTTP_ERR_TOO_LARGE);
	assert_true(s->got_len <= 10000);

	/* Content-Length past the limit */
	st_init(s, EB_HTTP_STREAM);
	start(s, curl, "GET", "/cl?n=50000&piece=10000&tag=l2", 10000, 0);
	drive(s, 10000);
	assert_clean(s);
	assert_done(s, EB_HTTP_ERR_TOO_LARGE);
	assert_true(s->got_len <= 10000);

	/* exactly at the limit is fine */
	st_init(s, EB_HTTP_STREAM);
	start(s, curl, "GET", "/chunked?n=10000&piece=4000&tag=l3", 10000, 0);
	drive(s, 10000);
	assert_streamed(s, 10000, "chunked", 1);

	/* paused below the limit, then resumed, then past it (what was
	 * held while paused may pass the limit at once) */
	st_init(s, EB_HTTP_STREAM);
	s->pause_over = 8000;
	start(s, curl, "GET", "/chunked?n=50000&piece=4000&tag=l5", 10000, 0);
	drive(s, 5000);
	assert_clean(s);
	assert_done(s, EB_HTTP_ERR_TOO_LARGE);
	assert_true(s->got_len <= 10000);
}
BOTH(limit)

/*
 * Paused, then resumed, the bytes given again and the rest passing the
 * limit: chunks of 1, 38 and 61 bytes with a limit of 60, the whole
 * response already received, the pause on the 38. A correct client ends
 * the transfer in the loop round after the resume: 3 s is plenty.
 */
static void
limit_on_resume(int curl)
{
	struct st *s = &S[0];

	loop_start(curl);
	st_init(s, EB_HTTP_STREAM);
	s->pause_at = 2;
	start(s, curl, "GET", "/chunked?n=100&piece=0&tag=l4", 60, 0);
	drive(s, 3000);
	if (s->done_calls != 1)
		print_error("done called %d times within 3 s\n", s->done_calls);
	assert_clean(s);
	assert_int_equal(s->pauses, 1);
	assert_done(s, EB_HTTP_ERR_TOO_LARGE);
	assert_true(s->got_len <= 60);
}
BOTH(limit_on_resume)

/* ---- 8. the body cut short ---- */

static void
cut_short(int curl)
{
	static const char *const targets[] = {
	    "/cl?n=100000&piece=10000&cut=1&tag=c1",
	    "/chunked?n=100000&piece=4000&cut=1&tag=c2",
	    "/chunked?n=100000&piece=4000&cut=2&tag=c3",
	    "/chunked?n=100000&piece=4000&cut=3&tag=c4",
	};
	struct st *s = &S[0];
	size_t i;
	int paused;

	loop_start(curl);
	/* taking everything, and with every third call not taken (the
	 * upstream's close then comes while the transfer is paused) */
	for (paused = 0; paused < 2; paused++)
		for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
			st_init(s, EB_HTTP_STREAM);
			s->pause_every = paused ? 3 : 0;
			start(s, curl, "GET", targets[i], 0, 0);
			drive(s, 10000);
			if (s->done_calls == 1 && s->resp->error == EB_HTTP_OK)
				print_error("%s%s\n", targets[i],
				            paused ? " (pausing)" : "");
			assert_clean(s);
			assert_failed(s);
			assert_true(s->got_len > 0);
			assert_true(s->got_len <= 100000);
		}
}
BOTH(cut_short)

/* ---- 9. refused without a bound loop, and by the blocking client ---- */

struct other {
	const struct eb_http_options *o;
	int rc;
};

static void *
other_main(void *arg)
{
	struct other *x = arg;

	x->rc = eb_http_fetch_async(x->o, on_done, &S[1]);
	return NULL;
}

static void
refusals(int curl)
{
	struct st *s = &S[0];
	struct eb_http_options o;
	struct eb_http_response *r;
	struct other x;
	pthread_t t;
	char u[256];
	size_t pending0;

	loop_start(curl);
	pending0 = eb_http_async_pending();
	st_init(s, EB_HTTP_STREAM);
	st_init(&S[1], EB_HTTP_STREAM);
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/cl?n=100&tag=r1", port);
	eb_http_options_init(&o, "GET", u);
	o.stream = &STREAM;

	/* this thread, its loop unbound */
	eb_http_loop_bind(NULL);
	assert_int_equal(eb_http_fetch_async(&o, on_done, s), -1);
	/* a thread that never had one */
	x.o = &o;
	x.rc = 0;
	assert_int_equal(pthread_create(&t, NULL, other_main, &x), 0);
	pthread_join(t, NULL);
	assert_int_equal(x.rc, -1);
	/* the blocking client */
	r = eb_http_fetch(&o);
	assert_non_null(r);
	assert_int_not_equal(r->error, EB_HTTP_OK);
	assert_int_equal(r->error, EB_HTTP_ERR_OTHER);
	eb_http_response_free(r);

	eb_http_loop_bind(L);
	run_for(200);
	assert_int_equal(eb_http_async_pending(), pending0);
	assert_int_equal(s->head_calls + s->data_calls + s->done_calls, 0);
	assert_int_equal(S[1].head_calls + S[1].data_calls + S[1].done_calls,
	                 0);
	assert_int_equal(req_count("tag=r1"), 0);

	/* and bound again, it goes */
	assert_int_equal(eb_http_fetch_async(&o, on_done, s), 0);
	drive(s, 5000);
	assert_streamed(s, 100, "cl", 0);
}
BOTH(refusals)

/* ---- 10. no body ---- */

static void
no_body(int curl)
{
	struct st *s = &S[0];

	loop_start(curl);

	st_init(s, EB_HTTP_STREAM);
	start(s, curl, "GET", "/204", 0, 0);
	drive(s, 5000);
	assert_clean(s);
	assert_done(s, EB_HTTP_OK);
	assert_int_equal(s->resp->status, 204);
	assert_int_equal(s->resp->body_len, 0);
	assert_int_equal(s->data_calls, 0);
	if (s->head_calls > 0)
		assert_int_equal(s->head_status, 204);

	st_init(s, EB_HTTP_STREAM);
	start(s, curl, "HEAD", "/cl?n=5000&tag=n1", 0, 0);
	drive(s, 5000);
	assert_clean(s);
	assert_done(s, EB_HTTP_OK);
	assert_int_equal(s->resp->status, 200);
	assert_int_equal(s->resp->body_len, 0);
	assert_int_equal(s->data_calls, 0);
	if (s->head_calls > 0)
		assert_int_equal(s->head_status, 200);

	/* the connection is still in step */
	st_init(s, EB_HTTP_STREAM);
	start(s, curl, "GET", "/cl?n=5000&tag=n2", 0, 0);
	drive(s, 5000);
	assert_streamed(s, 5000, "cl", 0);
}
BOTH(no_body)

/* ---- 11. the timeout applies to a paused transfer ---- */

static void
paused_timeout(int curl)
{
	struct st *s = &S[0];
	int closed0 = atomic_load(&endless_closed);

	loop_start(curl);
	st_init(s, EB_HTTP_STREAM);
	s->pause_at = 1;
	s->no_resume = 1;
	start(s, curl, "GET", "/endless?tag=t1", 0, 1000);
	drive(s, 8000);
	assert_clean(s);
	assert_done(s, EB_HTTP_ERR_TIMEOUT);
	assert_int_equal(s->data_calls, 1);
	assert_int_equal(s->got_len, 0);
	run_until(atomic_load(&endless_closed) > closed0, 5000);
	assert_int_equal(atomic_load(&endless_closed), closed0 + 1);
}
BOTH(paused_timeout)

/* ---- 12. one transfer paused while another goes on ---- */

static void
side_by_side(int curl)
{
	struct st *s = &S[0], *t = &S[1];
	long long end;

	loop_start(curl);
	st_init(s, EB_HTTP_STREAM);
	s->pause_at = 1;
	st_init(t, EB_HTTP_STREAM);
	t->pause_every = 4;
	start(s, curl, "GET", "/cl?n=200000&piece=16384&tag=b1", 0, 0);
	start(t, curl, "GET", "/chunked?n=30000&piece=3000&tag=b2", 0, 0);
	/* t to its end, resumed at once each time; s left paused */
	end = now_ms() + 10000;
	while (t->done_calls == 0 && now_ms() < end) {
		eb_http_loop_run(L, 10);
		if (t->paused && t->done_calls == 0)
			resume(t);
	}
	assert_streamed(t, 30000, "chunked", 1);
	assert_true(t->pauses >= 2);
	assert_true(s->paused);
	assert_int_equal(s->data_calls, 1);
	assert_int_equal(s->done_calls, 0);
	/* then s */
	drive(s, 10000);
	assert_streamed(s, 200000, "cl", 0);
	assert_int_equal(s->pauses, 1);
}
BOTH(side_by_side)

/* ---- 13. redirects ---- */

static void
redirects(int curl)
{
	struct st *s = &S[0];

	loop_start(curl);

	/* not followed: the 302 is the response, its body streamed */
	st_init(s, EB_HTTP_STREAM);
	s->expect = (const unsigned char *)"moved";
	s->expect_len = 5;
	start(s, curl, "GET", "/redirect", 0, 0);
	drive(s, 5000);
	assert_clean(s);
	assert_done(s, EB_HTTP_OK);
	assert_int_equal(s->resp->status, 302);
	assert_int_equal(s->resp->body_len, 0);
	assert_int_equal(s->head_calls, 1);
	assert_int_equal(s->head_status, 302);
	assert_string_equal(s->head_xtest, "redirect");
	assert_int_equal(s->got_len, 5);
	assert_memory_equal(s->got, "moved", 5);

	/* followed (curl's, whichever the loop): head and data for the
	 * final response only */
	st_init(s, EB_HTTP_STREAM);
	start_x(s, -1, "GET", "/redirect", 0, 0, 1);
	drive(s, 5000);
	assert_streamed(s, 5000, "cl", 0);
	assert_int_equal(req_count("tag=rd"), 1);
}
BOTH(redirects)

/* ---- 14. the loop freed with a transfer paused ---- */

static void
free_paused(int curl)
{
	struct st *s = &S[0];

	loop_start(curl);
	st_init(s, EB_HTTP_STREAM);
	s->pause_at = 1;
	s->no_resume = 1;
	start(s, curl, "GET", "/cl?n=200000&piece=16384&tag=f1", 0, 0);
	run_until(s->paused || s->done_calls > 0, 5000);
	assert_true(s->paused);
	eb_http_loop_bind(NULL);
	eb_http_loop_free(L);
	L = NULL;
	/* done, with an error, and nothing else */
	assert_clean(s);
	assert_done(s, EB_HTTP_ERR_OTHER);
	assert_int_equal(s->data_calls, 1);
	assert_int_equal(eb_http_async_pending(), 0);
}
BOTH(free_paused)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH_TESTS(stream_body),         /* 1. STREAM */
	    BOTH_TESTS(gather),              /* 2. GATHER */
	    BOTH_TESTS(pause_resume),        /* 3. pause, resume */
	    BOTH_TESTS(abort_outside),       /* 4. abort */
	    BOTH_TESTS(data_ends),           /* 5. data says -1 */
	    BOTH_TESTS(data_ends_on_resume), /* 5b. ... on bytes given again */
	    BOTH_TESTS(head_aborts),         /* 6. head says ABORT */
	    BOTH_TESTS(limit),               /* 7. the body limit */
	    BOTH_TESTS(limit_on_resume),     /* 7b. ... on bytes given again */
	    BOTH_TESTS(cut_short),           /* 8. cut short */
	    BOTH_TESTS(refusals),            /* 9. refused */
	    BOTH_TESTS(no_body),             /* 10. 204, HEAD */
	    BOTH_TESTS(paused_timeout),      /* 11. timeout while paused */
	    BOTH_TESTS(side_by_side),        /* 12. two at once */
	    BOTH_TESTS(redirects),           /* 13. 302, followed or not */
	    BOTH_TESTS(free_paused),         /* 14. loop freed */
	};

	/* a development aid: EB_TEST_FILTER=test_limit_curl runs that one */
	if (getenv("EB_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("EB_TEST_FILTER"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
