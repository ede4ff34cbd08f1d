/*
 * Unit tests for the native HTTP/1.1 client of the asynchronous loops
 * (src/http/client_h1.c), which eb_http_fetch_async() uses on a thread
 * whose loop is bound when the URL is plain http:// at an IP address.
 *
 * The upstream is a raw TCP server on 127.0.0.1 in this process: a thread
 * accepting, and per connection a thread reading one request at a time
 * (head, then a Content-Length or chunked body), recording it, and writing
 * a canned raw response chosen by the request path, possibly in small
 * pieces, possibly closing the connection afterwards. The client runs on
 * the test's thread: a loop of its own, bound, run until done was called.
 *
 * Covered: the request as sent (method, target, Host, caller headers,
 * "Name:" and "Name;", defaults, a body larger than the socket buffers,
 * IPv6); response framing (Content-Length, chunked with extensions and
 * trailers in many small writes, close-delimited, HEAD, 204, 304, interim
 * 1xx); keep-alive and Connection: close; stale kept-alive connections
 * (closed, or with bytes nobody asked for) not reused, and a request that
 * fails on one retried once on a new connection; what must fail closed
 * (framing conflicts, malformed status or header lines, bad chunks, size
 * limits, a connection closed mid-way, 101); refused connections and
 * timeouts; what is left to curl (framing headers, a proxy in the
 * environment, ENROLLBRIDGE_UPSTREAM_CURL=1) and CR/LF that must reach
 * nobody; many transfers at once; freeing a loop with transfers under way.
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
#include <time.h>
#include <unistd.h>

#include "core/mem.h"
#include "http/client.h"
#include "fx_net.h"

/* ---- the upstream ---- */

#define MAX_RECS  2048
#define MAX_HELD  8
#define REQ_BYTES (64 * 1024 * 1024) /* most bytes of one request */

/* One request as the server received it. */
struct rec {
	int conn;   /* accept number of its connection */
	char *raw;  /* head and body, NUL-terminated */
	size_t len; /* of raw */
	char path[256];
};

static int listen_fd = -1, listen6_fd = -1;
static int port, port6;
static pthread_t accept_thread, accept6_thread;
static atomic_int accepted;
static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rec recs[MAX_RECS];
static size_t nrecs;
/* connections of /hold-N, for the test to close (index N) */
static int held[MAX_HELD];

/* A canned raw response; piece > 0: written piece bytes at a time with
 * delay_us between; close: the server closes the connection after it. */
struct canned {
	const char *path;
	const char *raw;
	size_t len;
	size_t piece;
	int delay_us;
	int close;
};

#define CANNED(p, r, piece, delay, cl)                                         \
	{                                                                      \
		p, r, sizeof(r) - 1, piece, delay, cl                          \
	}

static const struct canned canned[] = {
    CANNED("/put",
           "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Reply: yes\r\n"
           "\r\nok",
           0, 0, 0),
    CANNED("/ka", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nka", 0, 0, 0),
    CANNED("/cl",
           "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Multi: a\r\n"
           "X-Multi: b\r\nX-Space:   padded   \r\nContent-Length: 11\r\n\r\n"
           "hello world",
           7, 1000, 0),
    CANNED("/chunked",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
           "5;name=value\r\nhello\r\n"
           "1\r\n \r\n"
           "A ; ext=\"q\"\r\n0123456789\r\n"
           "2\r\n\r\n\r\n"
           "0;last\r\nX-Trailer: t\r\nX-Other: o\r\n\r\n",
           3, 500, 0),
    CANNED("/chunked-lf",
           "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n"
           "3\nabc\n0\n\n",
           0, 0, 0),
    CANNED("/close",
           "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil the connection ends", 10,
           2000, 1),
    CANNED("/close10", "HTTP/1.0 200 OK\r\n\r\nold style", 0, 0, 1),
    CANNED("/head",
           "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n"
           "Content-Type: text/plain\r\n\r\n",
           0, 0, 0),
    CANNED("/204", "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", 0, 0, 0),
    CANNED("/304",
           "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 10\r\n"
           "\r\n",
           0, 0, 0),
    CANNED("/continue",
           "HTTP/1.1 100 Continue\r\n\r\n"
           "HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
           "HTTP/1.1 201 Created\r\nContent-Length: 4\r\nX-Final: 1\r\n\r\n"
           "done",
           9, 1000, 0),
    CANNED("/conn-close",
           "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n"
           "\r\ncc",
           0, 0, 1),
    /* says close but leaves the connection open: must not be reused */
    CANNED("/conn-close-open",
           "HTTP/1.1 200 OK\r\nConnection: Keep-Alive, close\r\n"
           "Content-Length: 2\r\n\r\nco",
           0, 0, 0),
    CANNED("/stale", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale", 0, 0,
           1),
    /* more than the response: the connection must not be reused */
    CANNED("/extra",
           "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
           "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil",
           0, 0, 0),
    CANNED("/redirect",
           "HTTP/1.1 302 Found\r\nLocation: /elsewhere?x=1\r\n"
           "Content-Length: 0\r\n\r\n",
           0, 0, 0),
    /* must fail closed */
    CANNED("/bad/cl-te",
           "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
           "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
           0, 0, 0),
    CANNED("/bad/te-cl",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
           "Content-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
           0, 0, 0),
    CANNED("/bad/2cl",
           "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n"
           "\r\nhello!",
           0, 0, 0),
    CANNED("/bad/cl-list",
           "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!", 0, 0, 0),
    CANNED("/bad/cl-neg", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nx", 0,
           0, 0),
    CANNED("/bad/cl-plus", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", 0,
           0, 0),
    CANNED("/bad/cl-hex", "HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\nok", 0,
           0, 0),
    CANNED("/bad/te-gzip",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxxxx", 0, 0, 1),
    CANNED("/bad/te-gzip-chunked",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
           "2\r\nxx\r\n0\r\n\r\n",
           0, 0, 0),
    CANNED("/bad/te-twice",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
           "Transfer-Encoding: chunked\r\n\r\n2\r\nxx\r\n0\r\n\r\n",
           0, 0, 0),
    CANNED("/bad/status-digits", "HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",
           0, 0, 0),
    CANNED("/bad/status-h2", "HTTP/2 200\r\nContent-Length: 0\r\n\r\n", 0, 0,
           0),
    CANNED("/bad/status-icy", "ICY 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0,
           0),
    CANNED("/bad/status-nospace", "HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n",
           0, 0, 0),
    CANNED("/bad/status-short", "HTTP/1.1 99 OK\r\nContent-Length: 0\r\n\r\n",
           0, 0, 0),
    CANNED("/bad/status-600", "HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n", 0,
           0, 0),
    CANNED("/bad/status-lower", "http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
           0, 0, 0),
    CANNED("/bad/status-garbage", "garbage\r\n\r\n", 0, 0, 0),
    CANNED("/bad/bare-cr",
           "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok", 0, 0,
           0),
    CANNED("/bad/bare-cr-end",
           "HTTP/1.1 200 OK\r\nX-A: a\r\r\nContent-Length: 2\r\n\r\nok", 0, 0,
           0),
    CANNED("/bad/nul",
           "HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok", 0, 0,
           0),
    /* a second status line among the headers must not make the headers
     * before it (framing included) forgotten */
    CANNED("/bad/status-in-head",
           "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nHTTP/1.1 200 OK\r\n"
           "Content-Length: 5\r\n\r\nhello",
           0, 0, 0),
    /* whitespace between a field name and the colon (RFC 9112 5.1) */
    CANNED("/bad/space-colon",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n"
           "Content-Length: 5\r\n\r\nhello",
           0, 0, 0),
    CANNED("/bad/no-colon", "HTTP/1.1 200 OK\r\nContent-Length 5\r\n\r\nhello",
           0, 0, 0),
    CANNED("/bad/chunk-hex",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           "zz\r\nhello\r\n0\r\n\r\n",
           0, 0, 0),
    CANNED("/bad/chunk-0x",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           "0x5\r\nhello\r\n0\r\n\r\n",
           0, 0, 0),
    CANNED("/bad/chunk-empty",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           "\r\nhello\r\n0\r\n\r\n",
           0, 0, 0),
    CANNED("/bad/chunk-junk",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5x\r\nhello\r\n0\r\n\r\n",
           0, 0, 0),
    CANNED("/bad/chunk-overflow",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           "10000000000000005\r\nhello\r\n0\r\n\r\n",
           0, 0, 0),
    CANNED("/bad/chunk-nocrlf",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5\r\nhelloXX\r\n0\r\n\r\n",
           0, 0, 0),
    CANNED("/bad/101",
           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\n\r\n",
           0, 0, 0),
    CANNED("/bad/mid-body",
           "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b", 0, 0, 1),
    CANNED("/bad/mid-chunk",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", 0,
           0, 1),
    CANNED("/bad/mid-last-chunk",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5\r\nhello\r\n0\r\n",
           0, 0, 1),
    CANNED("/bad/mid-head", "HTTP/1.1 200 OK\r\nContent-Le", 0, 0, 1),
    CANNED("/bad/nothing", "", 0, 0, 1),
    CANNED("/big/cl",
           "HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\nxxxxxxxxxx", 0,
           0, 0),
    CANNED("/big/chunk-size",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           "100000\r\nxxxxxxxxxx",
           0, 0, 0),
};

/* Find the value of header name in the head of a request or response
 * (case-insensitive, blanks trimmed) into out; 1 found, 0 not. */
static int
head_value(const char *raw, const char *name, char *out, size_t outsz, int nth)
{
	const char *p = strstr(raw, "\r\n"), *end = strstr(raw, "\r\n\r\n");
	size_t nl = strlen(name);

	if (p == NULL || end == NULL)
		return 0;
	while (p < end) {
		const char *line = p + 2, *eol = strstr(line, "\r\n"), *v;

		if (eol == NULL)
			return 0;
		if ((size_t)(eol - line) > nl && line[nl] == ':' &&
		    strncasecmp(line, name, nl) == 0 && nth-- == 0) {
			v = line + nl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			while (eol > v && (eol[-1] == ' ' || eol[-1] == '\t'))
				eol--;
			snprintf(out, outsz, "%.*s", (int)(eol - v), v);
			return 1;
		}
		p = eol;
	}
	return 0;
}

static int
head_count(const char *raw, const char *name)
{
	char v[8];
	int n = 0;

	while (head_value(raw, name, v, sizeof(v), n))
		n++;
	return n;
}

static int
tchar(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/* Is the head of raw a request line and "Name: value" lines, each ended
 * by CRLF, with no other CR or LF (nothing injected)? */
static int
head_well_formed(const char *raw)
{
	const char *end = strstr(raw, "\r\n\r\n"), *p = raw, *eol;
	int first = 1;

	if (end == NULL)
		return 0;
	while (p < end + 2) {
		eol = strstr(p, "\r\n");
		if (memchr(p, '\n', (size_t)(eol - p)) != NULL ||
		    memchr(p, '\r', (size_t)(eol - p)) != NULL)
			return 0;
		if (first) {
			if (eol - p < 9 ||
			    strncmp(eol - 9, " HTTP/1.1", 9) != 0)
				return 0;
			first = 0;
		} else {
			const char *q = p;

			while (q < eol && tchar((unsigned char)*q))
				q++;
			if (q == p || *q != ':')
				return 0;
		}
		p = eol + 2;
	}
	return 1;
}

static const char *
find_ci(const char *h, size_t hl, const char *s)
{
	size_t n = strlen(s), i;

	for (i = 0; i + n <= hl; i++)
		if (strncasecmp(h + i, s, n) == 0)
			return h + i;
	return NULL;
}

static void
send_str(int fd, const char *s)
{
	fx_send_all(fd, s, strlen(s), 0, 0);
}

struct sconn {
	int fd;
	int id;
	char *buf;
	size_t len, cap;
};

/* Read one whole request into s->buf; its length, or 0 at the end. */
static size_t
read_request(struct sconn *s)
{
	ssize_t r;

	for (;;) {
		char *end;

		s->buf[s->len] = '\0';
		if ((end = strstr(s->buf, "\r\n\r\n")) != NULL) {
			size_t hl = (size_t)(end + 4 - s->buf), need = hl;
			const char *cl =
			    find_ci(s->buf, hl, "\r\nContent-Length:");
			const char *z;

			if (find_ci(s->buf, hl,
			            "\r\nTransfer-Encoding: chunked")) {
				z = strstr(end, "\r\n0\r\n\r\n");
				if (z != NULL)
					return (size_t)(z + 7 - s->buf);
			} else {
				if (cl != NULL)
					need += (size_t)atol(cl + 17);
				if (s->len >= need)
					return need;
			}
		}
		if (s->len + 1 >= s->cap) {
			char *nb;

			if (s->cap >= REQ_BYTES ||
			    (nb = realloc(s->buf, s->cap * 2)) == NULL)
				return 0;
			s->buf = nb;
			s->cap *= 2;
		}
		r = read(s->fd, s->buf + s->len, s->cap - 1 - s->len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		s->len += (size_t)r;
	}
}

/* The path of the request at buf (an absolute-form target loses its
 * scheme and authority). */
static void
request_path(const char *buf, char *path, size_t sz)
{
	const char *t = strchr(buf, ' '), *e;

	if (t == NULL) {
		snprintf(path, sz, "?");
		return;
	}
	t++;
	if (strncmp(t, "http://", 7) == 0)
		t += 7 + strcspn(t + 7, "/ ");
	e = strchr(t, ' ');
	snprintf(path, sz, "%.*s", e ? (int)(e - t) : 0, t);
}

static void
big_response(int fd, const char *head, size_t n, int chunked)
{
	char *p = malloc(n + 1);

	fx_send_all(fd, head, strlen(head), 0, 0);
	memset(p, 'x', n);
	if (chunked) {
		size_t i;

		/* 500-byte chunks */
		for (i = 0; i + 500 <= n; i += 500) {
			fx_send_all(fd, "1f4\r\n", 5, 0, 0);
			fx_send_all(fd, p, 500, 0, 0);
			fx_send_all(fd, "\r\n", 2, 0, 0);
		}
		fx_send_all(fd, "0\r\n\r\n", 5, 0, 0);
	} else {
		fx_send_all(fd, p, n, 0, 0);
	}
	free(p);
}

/* Answer one request; 0 to go on with the connection, -1 to close it. */
static int
answer(struct sconn *s, const char *path)
{
	size_t i;

	for (i = 0; i < sizeof(canned) / sizeof(canned[0]); i++) {
		const struct canned *c = &canned[i];
		size_t pl = strlen(c->path);

		/* "/ka" answers "/ka?anything" too */
		if (strncmp(path, c->path, pl) == 0 &&
		    (path[pl] == '\0' || path[pl] == '?')) {
			fx_send_all(s->fd, c->raw, c->len, c->piece,
			            c->delay_us);
			return c->close ? -1 : 0;
		}
	}
	if (strncmp(path, "/n/", 3) == 0) {
		char r[512];
		int bl = (int)strlen(path + 3) + 5;

		snprintf(r, sizeof(r),
		         "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\nbody-%s",
		         bl, path + 3);
		fx_send_all(s->fd, r, strlen(r), 0, 0);
		return 0;
	}
	if (strncmp(path, "/close-on-next", 14) == 0) {
		struct pollfd pfd;

		/* answer; then, when the next request arrives, close without
		 * reading it (an RST): the client sees its kept-alive
		 * connection fail after sending, as when the upstream closes
		 * it at that very moment */
		send_str(s->fd,
		         "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext");
		pfd.fd = s->fd;
		pfd.events = POLLIN;
		while (poll(&pfd, 1, -1) == -1 && errno == EINTR)
			;
		return -1;
	}
	if (strcmp(path, "/late-408") == 0) {
		/* answer; a little later, a response nobody asked for */
		send_str(s->fd,
		         "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate");
		usleep(20 * 1000);
		send_str(s->fd,
		         "HTTP/1.1 408 Request Timeout\r\nContent-Length: 4\r\n"
		         "\r\nevil");
		return 0;
	}
	if (strcmp(path, "/big/head-endless") == 0) {
		char line[101];
		int k;

		/* headers that never end, the connection left open */
		memset(line, 'a', sizeof(line));
		memcpy(line, "X-Fill: ", 8);
		memcpy(line + 98, "\r\n", 2);
		send_str(s->fd, "HTTP/1.1 200 OK\r\n");
		for (k = 0; k < 600; k++)
			fx_send_all(s->fd, line, 100, 0, 0);
		return 0;
	}
	if (strncmp(path, "/hold-", 6) == 0) {
		int n = atoi(path + 6);

		/* hold-1 answers at once, hold-2 a little later */
		if (n > 1)
			usleep(50 * 1000);
		pthread_mutex_lock(&rec_lock);
		if (n >= 0 && n < MAX_HELD)
			held[n] = s->fd;
		pthread_mutex_unlock(&rec_lock);
		send_str(s->fd,
		         "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nheld");
		return 0;
	}
	if (strcmp(path, "/never") == 0)
		return 0; /* no answer; the client gives up and closes */
	if (strcmp(path, "/big/cl-ok") == 0 ||
	    strcmp(path, "/big/cl-over") == 0) {
		size_t n = path[8] == 'o' && path[9] == 'k' ? 1000 : 1001;
		char h[128];

		snprintf(h, sizeof(h),
		         "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
		big_response(s->fd, h, n, 0);
		return 0;
	}
	if (strcmp(path, "/big/chunked") == 0) {
		big_response(
		    s->fd,
		    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		    5000, 1);
		return 0;
	}
	if (strcmp(path, "/big/close") == 0) {
		big_response(s->fd, "HTTP/1.1 200 OK\r\n\r\n", 5000, 0);
		return -1;
	}
	if (strcmp(path, "/big/head") == 0 ||
	    strcmp(path, "/big/headers") == 0) {
		char *r = malloc(50000), *p = r;
		int k;

		p += sprintf(p, "HTTP/1.1 200 OK\r\n");
		if (path[9] == '\0') { /* one line of 40000 bytes */
			p += sprintf(p, "X-Big: ");
			memset(p, 'a', 40000);
			p += 40000;
			p += sprintf(p, "\r\n");
		} else { /* 150 small ones */
			for (k = 0; k < 150; k++)
				p += sprintf(p, "X-H%d: v\r\n", k);
		}
		p += sprintf(p, "Content-Length: 2\r\n\r\nok");
		fx_send_all(s->fd, r, (size_t)(p - r), 0, 0);
		free(r);
		return 0;
	}
	{
		static const char nf[] =
		    "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno";

		fx_send_all(s->fd, nf, sizeof(nf) - 1, 0, 0);
	}
	return 0;
}

static void *
conn_main(void *arg)
{
	struct sconn s;
	size_t n, i;
	char path[256];
	int one = 1;

	memset(&s, 0, sizeof(s));
	s.fd = (int)((intptr_t)arg & 0xffff);
	s.id = (int)((intptr_t)arg >> 16);
	s.cap = 65536;
	s.buf = malloc(s.cap);
	setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	while ((n = read_request(&s)) > 0) {
		request_path(s.buf, path, sizeof(path));
		pthread_mutex_lock(&rec_lock);
		if (nrecs < MAX_RECS) {
			struct rec *r = &recs[nrecs++];

			r->conn = s.id;
			r->raw = malloc(n + 1);
			memcpy(r->raw, s.buf, n);
			r->raw[n] = '\0';
			r->len = n;
			snprintf(r->path, sizeof(r->path), "%s", path);
		}
		pthread_mutex_unlock(&rec_lock);
		if (answer(&s, path) == -1)
			break;
		/* one request at a time: keep what follows it */
		memmove(s.buf, s.buf + n, s.len - n);
		s.len -= n;
	}
	pthread_mutex_lock(&rec_lock);
	for (i = 0; i < MAX_HELD; i++)
		if (held[i] == s.fd)
			held[i] = -1;
	close(s.fd);
	pthread_mutex_unlock(&rec_lock);
	free(s.buf);
	return NULL;
}

static void *
accept_main(void *arg)
{
	pthread_attr_t attr;
	pthread_t t;
	int lfd = (int)(intptr_t)arg, fd, id;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (;;) {
		if ((fd = accept(lfd, NULL, NULL)) == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		id = atomic_fetch_add(&accepted, 1) + 1;
		if (pthread_create(&t, &attr, conn_main,
		                   (void *)(((intptr_t)id << 16) | fd)) != 0)
			close(fd);
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

static void
recs_reset(void)
{
	size_t i;

	pthread_mutex_lock(&rec_lock);
	for (i = 0; i < nrecs; i++)
		free(recs[i].raw);
	nrecs = 0;
	pthread_mutex_unlock(&rec_lock);
}

static size_t
recs_total(void)
{
	size_t n;

	pthread_mutex_lock(&rec_lock);
	n = nrecs;
	pthread_mutex_unlock(&rec_lock);
	return n;
}

/* Is the body of the one request for path this? */
static int
recs_body_is(const char *path, const void *body, size_t len)
{
	size_t i;
	int yes = 0;

	pthread_mutex_lock(&rec_lock);
	for (i = 0; i < nrecs; i++) {
		const char *b = strstr(recs[i].raw, "\r\n\r\n");

		if (strcmp(recs[i].path, path) == 0 && b != NULL &&
		    recs[i].len == (size_t)(b + 4 - recs[i].raw) + len)
			yes = memcmp(b + 4, body, len) == 0;
	}
	pthread_mutex_unlock(&rec_lock);
	return yes;
}

/* How many requests for path the server received; the last one's raw
 * text and connection into raw (may be NULL) and conn. */
static int
recs_find(const char *path, char *raw, size_t rawsz, int *conn)
{
	size_t i;
	int n = 0;

	pthread_mutex_lock(&rec_lock);
	for (i = 0; i < nrecs; i++)
		if (strcmp(recs[i].path, path) == 0) {
			n++;
			if (raw != NULL) {
				size_t k = recs[i].len < rawsz - 1 ? recs[i].len
				                                   : rawsz - 1;

				memcpy(raw, recs[i].raw, k);
				raw[k] = '\0';
			}
			if (conn != NULL)
				*conn = recs[i].conn;
		}
	pthread_mutex_unlock(&rec_lock);
	return n;
}

static int
setup(void **state)
{
	socklen_t sl;
	int i;

	(void)state;
	for (i = 0; i < MAX_HELD; i++)
		held[i] = -1;
	fx_native_env();
	if ((listen_fd = fx_listen_loopback(512, &port)) == -1)
		return -1;
	/* and on ::1 when there is IPv6 */
	{
		struct sockaddr_in6 s6;

		memset(&s6, 0, sizeof(s6));
		s6.sin6_family = AF_INET6;
		s6.sin6_addr = in6addr_loopback;
		sl = sizeof(s6);
		listen6_fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (listen6_fd != -1 &&
		    (bind(listen6_fd, (struct sockaddr *)&s6, sizeof(s6)) ==
		         -1 ||
		     listen(listen6_fd, 64) == -1 ||
		     getsockname(listen6_fd, (struct sockaddr *)&s6, &sl) ==
		         -1 ||
		     pthread_create(&accept6_thread, NULL, accept_main,
		                    (void *)(intptr_t)listen6_fd) != 0)) {
			close(listen6_fd);
			listen6_fd = -1;
		}
		port6 = ntohs(s6.sin6_port);
	}
	if (eb_http_client_global_init() == -1)
		return -1;
	return pthread_create(&accept_thread, NULL, accept_main,
	                      (void *)(intptr_t)listen_fd);
}

static int
teardown(void **state)
{
	(void)state;
	eb_http_client_global_cleanup();
	shutdown(listen_fd, SHUT_RDWR);
	close(listen_fd);
	pthread_join(accept_thread, NULL);
	if (listen6_fd != -1) {
		shutdown(listen6_fd, SHUT_RDWR);
		close(listen6_fd);
		pthread_join(accept6_thread, NULL);
	}
	recs_reset();
	return 0;
}

/* ---- the client side ---- */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What done saw. */
struct result {
	int calls;
	int other_thread; /* done ran on another thread than the test's */
	struct eb_http_response *resp;
};

static pthread_t test_thread;

static void
on_done(struct eb_http_response *resp, void *arg)
{
	struct result *r = arg;

	r->calls++;
	if (!pthread_equal(pthread_self(), test_thread))
		r->other_thread = 1;
	eb_http_response_free(r->resp); /* a second call: keep the last */
	r->resp = resp;
}

/* Run l until every one of n results was called, for ms at most. */
static void
run_until(struct eb_http_loop *l, struct result *r, size_t n, int ms)
{
	long long end = now_ms() + ms;
	size_t i;

	for (;;) {
		for (i = 0; i < n && r[i].calls > 0; i++)
			;
		if (i == n || now_ms() >= end)
			break;
		eb_http_loop_run(l, 20);
	}
	/* a second call would show up now */
	eb_http_loop_run(l, 0);
}

/* Run l for ms. */
static void
run_for(struct eb_http_loop *l, int ms)
{
	long long end = now_ms() + ms;

	while (now_ms() < end)
		eb_http_loop_run(l, 10);
}

static char url_buf[512];

static const char *
url(const char *path)
{
	snprintf(url_buf, sizeof(url_buf), "http://127.0.0.1:%d%s", port, path);
	return url_buf;
}

/* One request through l: done must be called exactly once, on this
 * thread; the response (never NULL) is the caller's. */
static struct eb_http_response *
fetch(struct eb_http_loop *l, const struct eb_http_options *o)
{
	struct result r;

	memset(&r, 0, sizeof(r));
	assert_int_equal(eb_http_fetch_async(o, on_done, &r), 0);
	run_until(l, &r, 1, 5000);
	if (r.calls == 0) {
		/* end the transfer, which points at r, before failing */
		eb_http_loop_free(l);
		fail_msg("%s: no answer in 5 s", o->url);
	}
	assert_int_equal(r.calls, 1);
	assert_false(r.other_thread);
	assert_non_null(r.resp);
	assert_non_null(r.resp->body);
	return r.resp;
}

static struct eb_http_response *
get(struct eb_http_loop *l, const char *method, const char *path, size_t max)
{
	struct eb_http_options o;

	eb_http_options_init(&o, method, url(path));
	o.max_response_bytes = max;
	return fetch(l, &o);
}

static struct eb_http_loop *
loop_start(void)
{
	struct eb_http_loop *l = eb_http_loop_new();

	assert_non_null(l);
	eb_http_loop_bind(l);
	test_thread = pthread_self();
	recs_reset();
	return l;
}

static void
loop_end(struct eb_http_loop *l)
{
	eb_http_loop_free(l);
	assert_int_equal(eb_http_async_pending(), 0);
}

/* A response with this status and body (a C string, and by length). */
#define assert_ok(r, status, body) assert_ok_at(r, status, body, __LINE__)
static void
assert_ok_at(struct eb_http_response *r, long status, const char *body,
             int line)
{
	if (r->error != EB_HTTP_OK)
		print_error("line %d: unexpected error %d: %s\n", line,
		            r->error, r->message);
	assert_int_equal(r->error, EB_HTTP_OK);
	assert_string_equal(r->message, "");
	assert_int_equal(r->status, status);
	assert_int_equal(r->body_len, strlen(body));
	assert_memory_equal(r->body, body, r->body_len + 1);
}

/* ---- 1. the request ---- */

static void
test_request(void **state)
{
	static const char *hdrs[] = {
	    "X-Test: 42",  "Content-Type: application/x-test",
	    "User-Agent:", "Accept:",
	    "X-Empty;",    "X-Tab:\tsp aced",
	    NULL};
	struct eb_http_loop *l = loop_start();
	struct eb_http_options o;
	struct eb_http_response *r;
	char raw[4096], v[256], host[64],
	    body[] = "<plist>hello\0binary</plist>";
	const char *after_host;
	int conn;

	(void)state;
	snprintf(host, sizeof(host), "127.0.0.1:%d", port);
	eb_http_options_init(&o, "PUT", url("/put?q=1"));
	o.headers = hdrs;
	o.body = body;
	o.body_len = sizeof(body) - 1;
	r = fetch(l, &o);
	assert_ok(r, 200, "ok");
	assert_string_equal(eb_http_response_header(r, "x-reply"), "yes");
	assert_string_equal(eb_http_response_header(r, "Content-Length"), "2");
	assert_int_equal(r->nheaders, 2);
	assert_string_equal(r->effective_url, url("/put?q=1"));
	assert_null(r->redirect_url);
	eb_http_response_free(r);

	assert_int_equal(recs_find("/put?q=1", raw, sizeof(raw), &conn), 1);
	assert_true(head_well_formed(raw));
	/* exactly one request line, this one */
	assert_true(strncmp(raw, "PUT /put?q=1 HTTP/1.1\r\n", 23) == 0);
	assert_null(strstr(strstr(raw, "\r\n"), " HTTP/1.1\r\n"));
	assert_int_equal(head_count(raw, "Host"), 1);
	assert_true(head_value(raw, "Host", v, sizeof(v), 0));
	assert_string_equal(v, host);
	assert_true(head_value(raw, "X-Test", v, sizeof(v), 0));
	assert_string_equal(v, "42");
	assert_int_equal(head_count(raw, "Content-Type"), 1);
	assert_true(head_value(raw, "Content-Type", v, sizeof(v), 0));
	assert_string_equal(v, "application/x-test");
	assert_true(head_value(raw, "X-Tab", v, sizeof(v), 0));
	assert_string_equal(v, "sp aced");
	/* "Name;" sends the header with an empty value */
	assert_true(head_value(raw, "X-Empty", v, sizeof(v), 0));
	assert_string_equal(v, "");
	/* "Name:" sends nothing and drops the default */
	assert_int_equal(head_count(raw, "User-Agent"), 0);
	assert_int_equal(head_count(raw, "Accept"), 0);
	assert_int_equal(head_count(raw, "Expect"), 0);
	assert_int_equal(head_count(raw, "Transfer-Encoding"), 0);
	assert_int_equal(head_count(raw, "Content-Length"), 1);
	assert_true(head_value(raw, "Content-Length", v, sizeof(v), 0));
	assert_int_equal(atoi(v), (int)sizeof(body) - 1);
	assert_memory_equal(strstr(raw, "\r\n\r\n") + 4, body,
	                    sizeof(body) - 1);
	/* nothing more: the server would have seen it as another request */
	assert_int_equal(recs_total(), 1);
	/*
	 * The native client put it together: it writes the caller's headers
	 * right after Host, where curl would write its User-Agent and Accept
	 * first (this is how the test knows which one ran).
	 */
	after_host = strstr(raw, "\r\nHost: ") + 2;
	after_host = strstr(after_host, "\r\n") + 2;
	assert_true(strncmp(after_host, "X-Test: 42\r\n", 12) == 0);

	/* defaults: POST when there is a body, User-Agent, Accept and the
	 * form Content-Type */
	recs_reset();
	eb_http_options_init(&o, NULL, url("/put"));
	o.body = "a=1";
	o.body_len = 3;
	r = fetch(l, &o);
	assert_ok(r, 200, "ok");
	eb_http_response_free(r);
	assert_int_equal(recs_find("/put", raw, sizeof(raw), NULL), 1);
	assert_true(head_well_formed(raw));
	assert_true(strncmp(raw, "POST /put HTTP/1.1\r\n", 20) == 0);
	assert_true(head_value(raw, "User-Agent", v, sizeof(v), 0));
	assert_true(strncmp(v, "enrollbridge/", 13) == 0);
	assert_true(head_value(raw, "Accept", v, sizeof(v), 0));
	assert_string_equal(v, "*/*");
	assert_true(head_value(raw, "Content-Type", v, sizeof(v), 0));
	assert_string_equal(v, "application/x-www-form-urlencoded");
	assert_true(head_value(raw, "Content-Length", v, sizeof(v), 0));
	assert_string_equal(v, "3");
	assert_string_equal(strstr(raw, "\r\n\r\n") + 4, "a=1");

	/* a POST without a body still says Content-Length: 0; a GET has
	 * none; a user agent of the caller's; a URL without a path */
	recs_reset();
	eb_http_options_init(&o, "POST", url("/put"));
	r = fetch(l, &o);
	assert_ok(r, 200, "ok");
	eb_http_response_free(r);
	assert_int_equal(recs_find("/put", raw, sizeof(raw), NULL), 1);
	assert_true(head_value(raw, "Content-Length", v, sizeof(v), 0));
	assert_string_equal(v, "0");
	eb_http_options_init(&o, "GET", url("/ka"));
	o.user_agent = "tester/1";
	r = fetch(l, &o);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	assert_int_equal(recs_find("/ka", raw, sizeof(raw), NULL), 1);
	assert_true(strncmp(raw, "GET /ka HTTP/1.1\r\n", 18) == 0);
	assert_int_equal(head_count(raw, "Content-Length"), 0);
	assert_true(head_value(raw, "User-Agent", v, sizeof(v), 0));
	assert_string_equal(v, "tester/1");
	r = get(l, "GET", "", 0);
	assert_ok(r, 404, "no");
	eb_http_response_free(r);
	assert_int_equal(recs_find("/", raw, sizeof(raw), NULL), 1);
	assert_true(strncmp(raw, "GET / HTTP/1.1\r\n", 16) == 0);
	r = get(l, "GET", "?x=1", 0);
	assert_ok(r, 404, "no");
	eb_http_response_free(r);
	assert_int_equal(recs_find("/?x=1", NULL, 0, NULL), 1);

	/* a body larger than the socket buffers (sent as it drains) */
	{
		size_t n = 16 * 1024 * 1024, k;
		char *big = malloc(n);

		for (k = 0; k < n; k++)
			big[k] = (char)(k * 7 % 251);
		eb_http_options_init(&o, "PUT", url("/put?big"));
		o.body = big;
		o.body_len = n;
		r = fetch(l, &o);
		assert_ok(r, 200, "ok");
		eb_http_response_free(r);
		assert_true(recs_body_is("/put?big", big, n));
		free(big);
	}

	/* a 3xx is returned as is, its Location resolved */
	r = get(l, "GET", "/redirect", 0);
	assert_ok(r, 302, "");
	assert_non_null(r->redirect_url);
	assert_string_equal(r->redirect_url, url("/elsewhere?x=1"));
	eb_http_response_free(r);
	/* all of it over one connection */
	assert_int_equal(atomic_load(&accepted), conn);

	/* an IPv6 address */
	if (listen6_fd != -1) {
		char u6[128];

		snprintf(u6, sizeof(u6), "http://[::1]:%d/ka?v6", port6);
		eb_http_options_init(&o, "GET", u6);
		r = fetch(l, &o);
		assert_ok(r, 200, "ka");
		eb_http_response_free(r);
		assert_int_equal(recs_find("/ka?v6", raw, sizeof(raw), NULL),
		                 1);
		assert_true(head_value(raw, "Host", v, sizeof(v), 0));
		snprintf(host, sizeof(host), "[::1]:%d", port6);
		assert_string_equal(v, host);
		/* the native client's header order (see above) */
		assert_true(strstr(raw, "\r\nHost: [::1]") <
		            strstr(raw, "\r\nUser-Agent: "));
	}
	loop_end(l);
}

/* ---- 2. response framing ---- */

static void
test_framing(void **state)
{
	struct eb_http_loop *l = loop_start();
	struct eb_http_response *r;
	int before;

	(void)state;
	/* Content-Length, in pieces; repeated headers; blanks trimmed */
	r = get(l, "GET", "/cl", 0);
	assert_ok(r, 200, "hello world");
	assert_string_equal(eb_http_response_header(r, "content-type"),
	                    "text/plain");
	assert_int_equal(eb_http_response_header_count(r, "X-Multi"), 2);
	assert_string_equal(eb_http_response_header_nth(r, "X-Multi", 1), "b");
	assert_string_equal(eb_http_response_header(r, "X-Space"), "padded");
	assert_int_equal(r->nheaders, 5);
	eb_http_response_free(r);

	/* chunked: extensions, a chunk of CRLF, trailers, 3-byte writes */
	r = get(l, "GET", "/chunked", 0);
	assert_ok(r, 200, "hello 0123456789\r\n");
	assert_string_equal(eb_http_response_header(r, "X-A"), "1");
	assert_string_equal(eb_http_response_header(r, "Transfer-Encoding"),
	                    "chunked");
	eb_http_response_free(r);
	/* bare LF line ends are understood too */
	r = get(l, "GET", "/chunked-lf", 0);
	assert_ok(r, 200, "abc");
	eb_http_response_free(r);

	/* HEAD: a Content-Length but no body; the connection goes on */
	before = atomic_load(&accepted);
	r = get(l, "HEAD", "/head", 0);
	assert_ok(r, 200, "");
	assert_string_equal(eb_http_response_header(r, "Content-Length"),
	                    "1234");
	eb_http_response_free(r);
	r = get(l, "GET", "/ka", 0);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	/* 204 and 304 have no body (304 with a Content-Length) */
	r = get(l, "GET", "/204", 0);
	assert_ok(r, 204, "");
	assert_string_equal(eb_http_response_header(r, "X-A"), "1");
	eb_http_response_free(r);
	r = get(l, "GET", "/304", 0);
	assert_ok(r, 304, "");
	assert_string_equal(eb_http_response_header(r, "ETag"), "\"x\"");
	eb_http_response_free(r);
	r = get(l, "GET", "/ka", 0);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	/* interim responses are skipped, their headers forgotten */
	r = get(l, "POST", "/continue", 0);
	assert_ok(r, 201, "done");
	assert_string_equal(eb_http_response_header(r, "X-Final"), "1");
	assert_null(eb_http_response_header(r, "Link"));
	eb_http_response_free(r);
	r = get(l, "GET", "/ka", 0);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	assert_int_equal(atomic_load(&accepted), before);

	/* delimited by the end of the connection (1.1 and 1.0) */
	r = get(l, "GET", "/close", 0);
	assert_ok(r, 200, "until the connection ends");
	assert_string_equal(eb_http_response_header(r, "X-A"), "1");
	eb_http_response_free(r);
	r = get(l, "GET", "/close10", 0);
	assert_ok(r, 200, "old style");
	eb_http_response_free(r);

	/* exactly at the size limit is fine */
	r = get(l, "GET", "/big/cl-ok", 1000);
	assert_int_equal(r->error, EB_HTTP_OK);
	assert_int_equal(r->body_len, 1000);
	eb_http_response_free(r);
	loop_end(l);
}

/* ---- 3. keep-alive ---- */

struct chain {
	struct eb_http_options o;
	int left, calls, ok;
};

/* done that starts the next request, from inside the loop */
static void
chain_done(struct eb_http_response *resp, void *arg)
{
	struct chain *c = arg;

	c->calls++;
	c->ok += resp != NULL && resp->error == EB_HTTP_OK &&
	         resp->status == 200 && strcmp(resp->body, "ka") == 0;
	eb_http_response_free(resp);
	if (c->left > 0) {
		c->left--;
		if (eb_http_fetch_async(&c->o, chain_done, c) == -1)
			c->left = -1000;
	}
}

static void
test_keep_alive(void **state)
{
	struct eb_http_loop *l = loop_start();
	struct eb_http_response *r;
	struct chain ch;
	char path[32];
	int before, i, conn, first = 0;
	long long end;

	(void)state;
	before = atomic_load(&accepted);
	for (i = 0; i < 20; i++) {
		snprintf(path, sizeof(path), "/ka?%d", i);
		r = get(l, i % 2 ? "GET" : "POST", path, 0);
		assert_ok(r, 200, "ka");
		eb_http_response_free(r);
		assert_int_equal(recs_find(path, NULL, 0, &conn), 1);
		if (i == 0)
			first = conn;
		assert_int_equal(conn, first);
	}
	assert_int_equal(atomic_load(&accepted), before + 1);

	/* Connection: close, the server closing: a new connection next */
	r = get(l, "GET", "/conn-close", 0);
	assert_ok(r, 200, "cc");
	eb_http_response_free(r);
	assert_int_equal(atomic_load(&accepted), before + 1);
	r = get(l, "GET", "/ka?after-close", 0);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	assert_int_equal(atomic_load(&accepted), before + 2);
	/* and when the server leaves it open anyway */
	r = get(l, "GET", "/conn-close-open", 0);
	assert_ok(r, 200, "co");
	eb_http_response_free(r);
	r = get(l, "GET", "/ka?after-close-open", 0);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	assert_int_equal(atomic_load(&accepted), before + 3);
	/* the connection of a close-delimited body is not reused either */
	r = get(l, "GET", "/close", 0);
	assert_ok(r, 200, "until the connection ends");
	eb_http_response_free(r);
	r = get(l, "GET", "/ka?after-eof", 0);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	assert_int_equal(atomic_load(&accepted), before + 4);

	/* bytes after the response: the connection is not reused (they
	 * would be taken for the next response) */
	r = get(l, "GET", "/extra", 0);
	assert_ok(r, 200, "ok");
	eb_http_response_free(r);
	r = get(l, "GET", "/ka?after-extra", 0);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	assert_int_equal(atomic_load(&accepted), before + 5);

	/* requests started by done, from within the loop, reuse the
	 * connection the previous one just gave back */
	memset(&ch, 0, sizeof(ch));
	eb_http_options_init(&ch.o, "GET", url("/ka"));
	ch.left = 9;
	before = atomic_load(&accepted);
	assert_int_equal(eb_http_fetch_async(&ch.o, chain_done, &ch), 0);
	end = now_ms() + 5000;
	while (ch.calls < 10 && now_ms() < end)
		eb_http_loop_run(l, 20);
	assert_int_equal(ch.calls, 10);
	assert_int_equal(ch.ok, 10);
	assert_int_equal(atomic_load(&accepted), before);
	loop_end(l);
}

/* ---- 4. stale kept-alive connections ---- */

static void
close_held(int n)
{
	pthread_mutex_lock(&rec_lock);
	if (held[n] != -1)
		shutdown(held[n], SHUT_RDWR);
	pthread_mutex_unlock(&rec_lock);
}

static void
test_stale(void **state)
{
	struct eb_http_loop *l = loop_start();
	struct eb_http_response *r;
	struct eb_http_options o1, o2;
	struct result res[2];
	char u1[512], u2[512];
	int before, c_stale, c_next;

	(void)state;
	/*
	 * The server closes the connection right after answering. The client
	 * does not run its loop meanwhile, so it learns only when the next
	 * request would reuse it: that one must go to a new connection, and
	 * reach the server once.
	 */
	before = atomic_load(&accepted);
	r = get(l, "GET", "/stale", 0);
	assert_ok(r, 200, "stale");
	eb_http_response_free(r);
	usleep(50 * 1000); /* the FIN arrives, unseen */
	r = get(l, "PUT", "/ka?after-stale", 0);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	assert_int_equal(recs_find("/stale", NULL, 0, &c_stale), 1);
	assert_int_equal(recs_find("/ka?after-stale", NULL, 0, &c_next), 1);
	assert_int_not_equal(c_stale, c_next);
	assert_int_equal(atomic_load(&accepted), before + 2);

	/* the same when the loop saw the close first */
	r = get(l, "GET", "/stale?2", 0);
	assert_ok(r, 200, "stale");
	eb_http_response_free(r);
	run_for(l, 50);
	r = get(l, "GET", "/ka?after-stale2", 0);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	assert_int_equal(recs_find("/ka?after-stale2", NULL, 0, NULL), 1);
	assert_int_equal(atomic_load(&accepted), before + 3);

	/*
	 * Two kept-alive connections, both closed by the server while the
	 * loop does not run (as after an upstream restart): the request must
	 * not end up on either. (A new loop: no idle connection of the
	 * above.)
	 */
	loop_end(l);
	l = loop_start();
	snprintf(u1, sizeof(u1), "%s", url("/hold-1"));
	snprintf(u2, sizeof(u2), "%s", url("/hold-2"));
	eb_http_options_init(&o1, "GET", u1);
	eb_http_options_init(&o2, "GET", u2);
	memset(res, 0, sizeof(res));
	before = atomic_load(&accepted);
	assert_int_equal(eb_http_fetch_async(&o1, on_done, &res[0]), 0);
	assert_int_equal(eb_http_fetch_async(&o2, on_done, &res[1]), 0);
	run_until(l, res, 2, 5000);
	assert_int_equal(res[0].calls, 1);
	assert_int_equal(res[1].calls, 1);
	assert_ok(res[0].resp, 200, "held");
	assert_ok(res[1].resp, 200, "held");
	eb_http_response_free(res[0].resp);
	eb_http_response_free(res[1].resp);
	assert_int_equal(atomic_load(&accepted), before + 2);
	/* the most recently used first, so that it is the one taken */
	close_held(2);
	usleep(20 * 1000);
	close_held(1);
	usleep(30 * 1000);
	r = get(l, "GET", "/ka?after-restart", 0);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	assert_int_equal(recs_find("/ka?after-restart", NULL, 0, NULL), 1);
	assert_int_equal(atomic_load(&accepted), before + 3);

	/*
	 * The server closes a kept-alive connection just as the next request
	 * arrives (unread: an RST). Nothing told the client before it sent:
	 * one retry, on a new connection; the server sees the request once.
	 */
	loop_end(l);
	l = loop_start();
	before = atomic_load(&accepted);
	r = get(l, "GET", "/close-on-next", 0);
	assert_ok(r, 200, "next");
	eb_http_response_free(r);
	r = get(l, "POST", "/ka?after-rst", 0);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	assert_int_equal(recs_find("/close-on-next", NULL, 0, &c_stale), 1);
	assert_int_equal(recs_find("/ka?after-rst", NULL, 0, &c_next), 1);
	assert_int_not_equal(c_stale, c_next);
	assert_int_equal(atomic_load(&accepted), before + 2);

	/* the same with two such kept-alive connections: the retry must not
	 * take the other one */
	loop_end(l);
	l = loop_start();
	snprintf(u1, sizeof(u1), "%s", url("/close-on-next?1"));
	snprintf(u2, sizeof(u2), "%s", url("/close-on-next?2"));
	eb_http_options_init(&o1, "GET", u1);
	eb_http_options_init(&o2, "GET", u2);
	memset(res, 0, sizeof(res));
	before = atomic_load(&accepted);
	assert_int_equal(eb_http_fetch_async(&o1, on_done, &res[0]), 0);
	assert_int_equal(eb_http_fetch_async(&o2, on_done, &res[1]), 0);
	run_until(l, res, 2, 5000);
	assert_int_equal(res[0].calls, 1);
	assert_int_equal(res[1].calls, 1);
	assert_ok(res[0].resp, 200, "next");
	assert_ok(res[1].resp, 200, "next");
	eb_http_response_free(res[0].resp);
	eb_http_response_free(res[1].resp);
	r = get(l, "GET", "/ka?after-rst2", 0);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	assert_int_equal(recs_find("/ka?after-rst2", NULL, 0, NULL), 1);
	assert_int_equal(atomic_load(&accepted), before + 3);

	/*
	 * Bytes nobody asked for arrive on an idle connection (some servers
	 * send a 408 before closing one). When the next request comes before
	 * the loop noticed, they must not be taken for its response.
	 */
	loop_end(l);
	l = loop_start();
	before = atomic_load(&accepted);
	r = get(l, "GET", "/late-408", 0);
	assert_ok(r, 200, "late");
	eb_http_response_free(r);
	usleep(60 * 1000); /* the 408 arrives, unseen */
	r = get(l, "GET", "/ka?after-408", 0);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	assert_int_equal(recs_find("/ka?after-408", NULL, 0, &c_next), 1);
	assert_int_equal(recs_find("/late-408", NULL, 0, &c_stale), 1);
	assert_int_not_equal(c_stale, c_next);
	/* and when the loop saw them first */
	r = get(l, "GET", "/late-408", 0);
	assert_ok(r, 200, "late");
	eb_http_response_free(r);
	run_for(l, 60);
	r = get(l, "GET", "/ka?after-408-2", 0);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	assert_int_equal(atomic_load(&accepted), before + 3);

	/* no retry once a byte of the response came, even on a kept-alive
	 * connection; none on a new connection */
	r = get(l, "GET", "/ka?warm", 0);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	r = get(l, "GET", "/bad/mid-head", 0);
	assert_int_equal(r->error, EB_HTTP_ERR_CONNECT);
	assert_int_equal(r->status, 0);
	eb_http_response_free(r);
	assert_int_equal(recs_find("/bad/mid-head", NULL, 0, NULL), 1);
	r = get(l, "GET", "/bad/nothing", 0);
	assert_int_equal(r->error, EB_HTTP_ERR_CONNECT);
	eb_http_response_free(r);
	assert_int_equal(recs_find("/bad/nothing", NULL, 0, NULL), 1);
	loop_end(l);
}

/* ---- 5. what must fail closed ---- */

static void
test_refusals(void **state)
{
	static const struct {
		const char *path;
		int err; /* expected error, -1: any */
		size_t max;
	} cases[] = {
	    {"/bad/cl-te", -1, 0},
	    {"/bad/te-cl", -1, 0},
	    {"/bad/2cl", -1, 0},
	    {"/bad/cl-list", -1, 0},
	    {"/bad/cl-neg", -1, 0},
	    {"/bad/cl-plus", -1, 0},
	    {"/bad/cl-hex", -1, 0},
	    {"/bad/te-gzip", -1, 0},
	    {"/bad/te-gzip-chunked", -1, 0},
	    {"/bad/te-twice", -1, 0},
	    {"/bad/status-digits", -1, 0},
	    {"/bad/status-h2", -1, 0},
	    {"/bad/status-icy", -1, 0},
	    {"/bad/status-nospace", -1, 0},
	    {"/bad/status-short", -1, 0},
	    {"/bad/status-600", -1, 0},
	    {"/bad/status-lower", -1, 0},
	    {"/bad/status-garbage", -1, 0},
	    {"/bad/bare-cr", -1, 0},
	    {"/bad/bare-cr-end", -1, 0},
	    {"/bad/nul", -1, 0},
	    {"/bad/status-in-head", -1, 0},
	    {"/bad/space-colon", -1, 0},
	    {"/bad/no-colon", -1, 0},
	    {"/bad/chunk-hex", -1, 0},
	    {"/bad/chunk-0x", -1, 0},
	    {"/bad/chunk-empty", -1, 0},
	    {"/bad/chunk-junk", -1, 0},
	    {"/bad/chunk-overflow", -1, 0},
	    {"/bad/chunk-nocrlf", -1, 0},
	    {"/bad/101", -1, 0},
	    {"/bad/mid-body", EB_HTTP_ERR_CONNECT, 0},
	    {"/bad/mid-chunk", EB_HTTP_ERR_CONNECT, 0},
	    {"/bad/mid-last-chunk", EB_HTTP_ERR_CONNECT, 0},
	    {"/bad/mid-head", EB_HTTP_ERR_CONNECT, 0},
	    {"/big/cl", EB_HTTP_ERR_TOO_LARGE, 1000},
	    {"/big/cl-over", EB_HTTP_ERR_TOO_LARGE, 1000},
	    {"/big/chunked", EB_HTTP_ERR_TOO_LARGE, 1000},
	    {"/big/chunk-size", EB_HTTP_ERR_TOO_LARGE, 1000},
	    {"/big/close", EB_HTTP_ERR_TOO_LARGE, 1000},
	    {"/big/head", EB_HTTP_ERR_TOO_LARGE, 0},
	    {"/big/headers", EB_HTTP_ERR_TOO_LARGE, 0},
	    {"/big/head-endless", EB_HTTP_ERR_TOO_LARGE, 0},
	};
	struct eb_http_loop *l = loop_start();
	struct eb_http_options o;
	struct eb_http_response *r;
	size_t i;
	int failed = 0;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		eb_http_options_init(&o, "GET", url(cases[i].path));
		o.max_response_bytes = cases[i].max;
		o.timeout_ms = 2000;
		r = fetch(l, &o);
		/* an error at once (not waiting for a timeout), the expected
		 * one, never with a status; the request sent once */
		if (r->error == EB_HTTP_OK || r->error == EB_HTTP_ERR_TIMEOUT ||
		    (cases[i].err != -1 && (int)r->error != cases[i].err) ||
		    r->status != 0 || r->message[0] == '\0' ||
		    recs_find(cases[i].path, NULL, 0, NULL) != 1) {
			print_error("%s: error %d (%s) status %ld body %s\n",
			            cases[i].path, r->error, r->message,
			            r->status, r->body);
			failed++;
		}
		eb_http_response_free(r);
		/* and the loop goes on: a good request after each */
		r = get(l, "GET", "/ka", 0);
		assert_ok(r, 200, "ka");
		eb_http_response_free(r);
	}
	assert_int_equal(failed, 0);
	loop_end(l);
}

/* ---- 6. connections refused, timeouts ---- */

/* A port where nothing listens (bound, so nobody else takes it). */
static int
closed_port(int *fdp)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	*fdp = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(*fdp, (struct sockaddr *)&sa, sizeof(sa)), 0);
	getsockname(*fdp, (struct sockaddr *)&sa, &sl);
	return ntohs(sa.sin_port);
}

/*
 * A port where connect() hangs: a listener whose accept queue (backlog 0)
 * is full, so that Linux drops further SYNs. fds[0] is the listener,
 * fds[1..2] fill it.
 */
static int
hanging_port(int fds[3])
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int i;

	fds[0] = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fds[0], (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fds[0], 0), 0);
	getsockname(fds[0], (struct sockaddr *)&sa, &sl);
	for (i = 1; i < 3; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		connect(fds[i], (struct sockaddr *)&sa, sizeof(sa));
	}
	usleep(20 * 1000);
	return ntohs(sa.sin_port);
}

static double
secs_since(long long t0)
{
	return (double)(now_ms() - t0) / 1000.0;
}

static void
test_connect_and_timeouts(void **state)
{
	struct eb_http_loop *l = loop_start();
	struct eb_http_options o;
	struct eb_http_response *r;
	char u[128];
	int fd, fds[3], i;
	long long t0;
	double s;

	(void)state;
	/* refused */
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", closed_port(&fd));
	eb_http_options_init(&o, "GET", u);
	r = fetch(l, &o);
	assert_int_equal(r->error, EB_HTTP_ERR_CONNECT);
	assert_int_equal(r->status, 0);
	assert_int_equal(r->body_len, 0);
	assert_string_equal(r->body, "");
	eb_http_response_free(r);
	/* again, on a body-carrying request */
	eb_http_options_init(&o, "PUT", u);
	o.body = "x";
	o.body_len = 1;
	r = fetch(l, &o);
	assert_int_equal(r->error, EB_HTTP_ERR_CONNECT);
	eb_http_response_free(r);
	close(fd);

	/* the upstream never answers */
	eb_http_options_init(&o, "GET", url("/never"));
	o.timeout_ms = 300;
	t0 = now_ms();
	r = fetch(l, &o);
	s = secs_since(t0);
	assert_int_equal(r->error, EB_HTTP_ERR_TIMEOUT);
	assert_int_equal(r->status, 0);
	assert_true(s >= 0.25 && s < 1.0);
	eb_http_response_free(r);
	assert_int_equal(recs_find("/never", NULL, 0, NULL), 1);
	/* the seconds field works too (and _ms wins over it) */
	eb_http_options_init(&o, "GET", url("/never"));
	o.timeout = 100;
	o.timeout_ms = 200;
	t0 = now_ms();
	r = fetch(l, &o);
	assert_int_equal(r->error, EB_HTTP_ERR_TIMEOUT);
	assert_true(secs_since(t0) < 1.0);
	eb_http_response_free(r);

	/* connect timeout, on a fresh loop: no earlier transfer's deadline
	 * may wake it in time by chance */
	loop_end(l);
	l = loop_start();
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", hanging_port(fds));
	eb_http_options_init(&o, "GET", u);
	o.connect_timeout_ms = 200;
	o.timeout_ms = 5000;
	t0 = now_ms();
	r = fetch(l, &o);
	s = secs_since(t0);
	assert_int_equal(r->error, EB_HTTP_ERR_TIMEOUT);
	assert_true(s >= 0.15 && s < 1.0);
	eb_http_response_free(r);
	for (i = 0; i < 3; i++)
		close(fds[i]);
	loop_end(l);
}

/* ---- 7. what is left to curl ---- */

static void
test_curl_fallback(void **state)
{
	static const char *host_hdr[] = {"Host: example.test", NULL};
	static const char *te_hdr[] = {"Transfer-Encoding: chunked", NULL};
	static const char *crlf_hdr[] = {"X-Inj: a\r\nX-Evil: 1", NULL};
	static const char *lf_hdr[] = {"X-Inj: a\nX-Evil: 1", NULL};
	static const char *crlf_name[] = {"X-Evil: 1\r\nX-Inj", NULL};
	static const char *order_hdr[] = {"X-First: 1", NULL};
	struct eb_http_loop *l = loop_start();
	struct eb_http_options o;
	struct eb_http_response *r;
	struct result inj[7];
	char raw[4096], v[256], u[256];
	const char *after_host;
	size_t i;

	(void)state;
	/* a Host of the caller's */
	eb_http_options_init(&o, "GET", url("/ka?host"));
	o.headers = host_hdr;
	r = fetch(l, &o);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	assert_int_equal(recs_find("/ka?host", raw, sizeof(raw), NULL), 1);
	assert_int_equal(head_count(raw, "Host"), 1);
	assert_true(head_value(raw, "Host", v, sizeof(v), 0));
	assert_string_equal(v, "example.test");

	/* a chunked request body */
	eb_http_options_init(&o, "PUT", url("/ka?te"));
	o.headers = te_hdr;
	o.body = "abc";
	o.body_len = 3;
	r = fetch(l, &o);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	assert_int_equal(recs_find("/ka?te", raw, sizeof(raw), NULL), 1);
	assert_int_equal(head_count(raw, "Content-Length"), 0);
	assert_true(head_value(raw, "Transfer-Encoding", v, sizeof(v), 0));
	assert_string_equal(v, "chunked");
	assert_string_equal(strstr(raw, "\r\n\r\n") + 4,
	                    "3\r\nabc\r\n0\r\n\r\n");

	/*
	 * CR or LF in a header, a user agent or the URL's authority must
	 * never reach the upstream raw, whichever client takes the request:
	 * the request fails, or arrives without the injected line.
	 */
	memset(inj, 0, sizeof(inj));
	for (i = 0; i < 7; i++) {
		char path[32];
		size_t k;
		int bad;

		recs_reset();
		snprintf(path, sizeof(path), "/ka?inj%zu", i);
		eb_http_options_init(&o, "GET", url(path));
		switch (i) {
		case 0:
			o.headers = crlf_hdr;
			break;
		case 1:
			o.headers = lf_hdr;
			break;
		case 2:
			o.headers = crlf_name;
			break;
		case 3:
			o.user_agent = "ua\r\nX-Evil: 2";
			break;
		case 4:
			snprintf(u, sizeof(u),
			         "http://127.0.0.1:\r\n\r\n%d/ka?inj4", port);
			o.url = u;
			break;
		case 5:
			snprintf(u, sizeof(u), "http://127.0.0.1: %d/ka?inj5",
			         port);
			o.url = u;
			break;
		case 6:
			snprintf(u, sizeof(u),
			         "http://127.0.0.1:%d/ka?inj6\r\n", port);
			o.url = u;
			break;
		}
		/* refused at once (-1: the URL, which curl would take as
		 * it is), or failed through done (the native client) */
		if (eb_http_fetch_async(&o, on_done, &inj[i]) == -1) {
			assert_true(i >= 4);
			assert_int_equal(recs_total(), 0);
			assert_int_equal(inj[i].calls, 0);
			continue;
		}
		run_until(l, &inj[i], 1, 3000);
		/* (no assertion under the lock: a failure would keep it) */
		pthread_mutex_lock(&rec_lock);
		for (k = 0, bad = 0; k < nrecs && !bad; k++) {
			bad =
			    !head_well_formed(recs[k].raw) ||
			    head_count(recs[k].raw, "X-Evil") != 0 ||
			    !head_value(recs[k].raw, "Host", v, sizeof(v), 0) ||
			    strpbrk(v, " \t") != NULL;
			if (bad)
				print_error("case %zu sent:\n%s\n", i,
				            recs[k].raw);
		}
		pthread_mutex_unlock(&rec_lock);
		assert_false(bad);
		/* in fact each one fails at once: the native client refuses
		 * CR and LF in what goes into the head, curl the URLs */
		assert_int_equal(inj[i].calls, 1);
		assert_non_null(inj[i].resp);
		assert_int_equal(inj[i].resp->error, EB_HTTP_ERR_OTHER);
		assert_int_equal(inj[i].resp->status, 0);
		assert_int_equal(recs_total(), 0);
		eb_http_response_free(inj[i].resp);
	}
	loop_end(l);

	/*
	 * With ENROLLBRIDGE_UPSTREAM_CURL=1, or a proxy in the environment,
	 * loops made then use curl alone: the caller's headers come after
	 * curl's own, and a proxy gets an absolute-form request line.
	 */
	setenv("ENROLLBRIDGE_UPSTREAM_CURL", "1", 1);
	l = loop_start();
	unsetenv("ENROLLBRIDGE_UPSTREAM_CURL");
	eb_http_options_init(&o, "GET", url("/ka?curl"));
	o.headers = order_hdr;
	r = fetch(l, &o);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	assert_int_equal(recs_find("/ka?curl", raw, sizeof(raw), NULL), 1);
	after_host = strstr(strstr(raw, "\r\nHost: ") + 2, "\r\n") + 2;
	assert_true(strncmp(after_host, "X-First: 1\r\n", 12) != 0);
	assert_int_equal(head_count(raw, "X-First"), 1);
	loop_end(l);

	snprintf(u, sizeof(u), "http://127.0.0.1:%d", port);
	setenv("http_proxy", u, 1);
	l = loop_start();
	eb_http_options_init(&o, "GET", "http://192.0.2.1:8080/ka?proxied");
	r = fetch(l, &o);
	assert_ok(r, 200, "ka");
	eb_http_response_free(r);
	unsetenv("http_proxy");
	assert_int_equal(recs_find("/ka?proxied", raw, sizeof(raw), NULL), 1);
	assert_true(strncmp(raw, "GET http://192.0.2.1:8080/ka?proxied ", 37) ==
	            0);
	loop_end(l);
}

/* ---- 8. many at once ---- */

struct many {
	int calls, ok;
};

struct many_one {
	struct many *m;
	int i;
	int calls;
};

static void
many_done(struct eb_http_response *resp, void *arg)
{
	struct many_one *o = arg;
	char want[32];

	snprintf(want, sizeof(want), "body-%d", o->i);
	o->calls++;
	o->m->calls++;
	o->m->ok += resp != NULL && resp->error == EB_HTTP_OK &&
	            resp->status == 200 && strcmp(resp->body, want) == 0 &&
	            resp->body_len == strlen(want);
	eb_http_response_free(resp);
}

static void
test_many(void **state)
{
	enum { N = 300 };
	struct eb_http_loop *l = loop_start();
	struct eb_http_options o;
	struct many m;
	static struct many_one one[N];
	char path[32];
	int i, round, before;
	long long end;

	(void)state;
	before = atomic_load(&accepted);
	for (round = 0; round < 2; round++) {
		memset(&m, 0, sizeof(m));
		memset(one, 0, sizeof(one));
		for (i = 0; i < N; i++) {
			one[i].m = &m;
			one[i].i = i;
			snprintf(path, sizeof(path), "/n/%d", i);
			eb_http_options_init(&o, i % 3 ? "GET" : "POST",
			                     url(path));
			assert_int_equal(
			    eb_http_fetch_async(&o, many_done, &one[i]), 0);
		}
		assert_true(eb_http_async_pending() > 0);
		end = now_ms() + 8000;
		while (m.calls < N && now_ms() < end)
			eb_http_loop_run(l, 50);
		assert_int_equal(m.calls, N);
		assert_int_equal(m.ok, N);
		for (i = 0; i < N; i++)
			assert_int_equal(one[i].calls, 1);
		assert_int_equal(eb_http_async_pending(), 0);
	}
	/* at most H1_MAX_CONNS (128, client_h1.c) connections to one
	 * upstream: the rest waited for one to be free; and the second
	 * round ran on the first round's connections */
	assert_true(atomic_load(&accepted) - before <= 128);
	assert_true(atomic_load(&accepted) - before >= 1);
	loop_end(l);
}

/* At the connection cap, a transfer waits for a free connection, within
 * its own deadline. */
static void
test_wait_for_connection(void **state)
{
	enum { CAP = 128 }; /* H1_MAX_CONNS, client_h1.c */
	static struct result busy[CAP];
	struct eb_http_loop *l = loop_start();
	struct eb_http_options o;
	struct result late;
	long long t0, took;
	int i, before;

	(void)state;
	memset(busy, 0, sizeof(busy));
	memset(&late, 0, sizeof(late));
	before = atomic_load(&accepted);
	for (i = 0; i < CAP; i++) {
		eb_http_options_init(&o, "GET", url("/never"));
		o.timeout_ms = 10000;
		assert_int_equal(eb_http_fetch_async(&o, on_done, &busy[i]), 0);
	}
	eb_http_options_init(&o, "GET", url("/never"));
	o.timeout_ms = 300;
	t0 = now_ms();
	assert_int_equal(eb_http_fetch_async(&o, on_done, &late), 0);
	run_until(l, &late, 1, 3000);
	took = now_ms() - t0;
	assert_int_equal(late.calls, 1);
	assert_non_null(late.resp);
	assert_int_equal(late.resp->error, EB_HTTP_ERR_TIMEOUT);
	assert_non_null(strstr(late.resp->message, "no upstream connection"));
	assert_true(took >= 250 && took < 2000);
	/* it never had a connection of its own */
	assert_true(atomic_load(&accepted) - before <= CAP);
	eb_http_response_free(late.resp);
	loop_end(l); /* the others end with an error */
	for (i = 0; i < CAP; i++) {
		assert_int_equal(busy[i].calls, 1);
		assert_int_not_equal(busy[i].resp->error, EB_HTTP_OK);
		eb_http_response_free(busy[i].resp);
	}
}

/* ---- 9. freeing a busy loop ---- */

static void
test_free_busy(void **state)
{
	enum { N = 6 };
	struct eb_http_loop *l = loop_start();
	struct eb_http_options o;
	struct result res[N + 1];
	char u[128];
	int i, fds[3];
	long long end;

	(void)state;
	memset(res, 0, sizeof(res));
	for (i = 0; i < N - 1; i++) {
		eb_http_options_init(&o, i % 2 ? "GET" : "PUT", url("/never"));
		o.body = i % 2 ? NULL : "body";
		o.body_len = i % 2 ? 0 : 4;
		assert_int_equal(eb_http_fetch_async(&o, on_done, &res[i]), 0);
	}
	/* one still connecting */
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", hanging_port(fds));
	eb_http_options_init(&o, "GET", u);
	assert_int_equal(eb_http_fetch_async(&o, on_done, &res[N - 1]), 0);
	/* one done already (kept-alive connection left idle) */
	eb_http_options_init(&o, "GET", url("/ka"));
	assert_int_equal(eb_http_fetch_async(&o, on_done, &res[N]), 0);
	end = now_ms() + 3000;
	while (
	    (recs_find("/never", NULL, 0, NULL) < N - 1 || res[N].calls == 0) &&
	    now_ms() < end)
		eb_http_loop_run(l, 10);
	assert_int_equal(recs_find("/never", NULL, 0, NULL), N - 1);
	assert_int_equal(res[N].calls, 1);
	assert_ok(res[N].resp, 200, "ka");
	for (i = 0; i < N; i++)
		assert_int_equal(res[i].calls, 0);
	assert_int_equal(eb_http_async_pending(), N);
	eb_http_loop_free(l);
	for (i = 0; i < N; i++) {
		assert_int_equal(res[i].calls, 1);
		assert_false(res[i].other_thread);
		assert_non_null(res[i].resp);
		assert_int_equal(res[i].resp->error, EB_HTTP_ERR_OTHER);
		assert_int_equal(res[i].resp->status, 0);
		eb_http_response_free(res[i].resp);
	}
	assert_int_equal(res[N].calls, 1);
	eb_http_response_free(res[N].resp);
	assert_int_equal(eb_http_async_pending(), 0);
	for (i = 0; i < 3; i++)
		close(fds[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request),
	    cmocka_unit_test(test_framing),
	    cmocka_unit_test(test_keep_alive),
	    cmocka_unit_test(test_stale),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_connect_and_timeouts),
	    cmocka_unit_test(test_curl_fallback),
	    cmocka_unit_test(test_many),
	    cmocka_unit_test(test_wait_for_connection),
	    cmocka_unit_test(test_free_busy),
	};

	/* a development aid: EB_TEST_FILTER=test_stale runs that one */
	if (getenv("EB_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("EB_TEST_FILTER"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
