/*
 * Unit tests for src/http/client.c against a tiny HTTP/1.1 server on a
 * loopback port run in a thread of this process: status, headers (case-
 * insensitive, repeated), body, the response size limit, redirects not
 * followed unless asked, transport error categories, form encoding, and
 * many threads at once.
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
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/mem.h"
#include "http/client.h"
#include "fx_net.h"

static int listen_fd = -1;
static int port;
static volatile int stopping;
static pthread_t server_thread;
static char base[64];

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
	         "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s"
	         "\r\n",
	         status, len, headers);
	write_all(fd, head, strlen(head));
	write_all(fd, body, len);
}

static void
serve_one(int fd)
{
	static char big[100000];
	char req[8192], *end, *b;
	size_t n = 0;
	ssize_t r;

	while (n < sizeof(req) - 1 &&
	       (r = read(fd, req + n, sizeof(req) - 1 - n)) > 0) {
		n += (size_t)r;
		req[n] = '\0';
		if ((end = strstr(req, "\r\n\r\n")) != NULL &&
		    (strncmp(req, "POST", 4) != 0 ||
		     strlen(end + 4) >=
		         (size_t)atoi(strstr(req, "Content-Length: ") + 16)))
			break;
	}
	req[n] = '\0';
	if (strncmp(req, "GET /hello", 10) == 0 &&
	    (req[10] == ' ' || req[10] == '?')) {
		respond(
		    fd, "200 OK",
		    "Content-Type: text/plain\r\nX-Multi: a\r\nx-multi:  b  "
		    "\r\nWWW-Authenticate: Bearer method=\"apple-as-web\"\r\n",
		    "hello", 5);
	} else if (strncmp(req, "GET /big ", 9) == 0) {
		memset(big, 'x', sizeof(big));
		respond(fd, "200 OK", "", big, sizeof(big));
	} else if (strncmp(req, "GET /redir ", 11) == 0) {
		respond(fd, "302 Found", "Location: /hello?x=1\r\n", "", 0);
	} else if (strncmp(req, "POST /echo ", 11) == 0) {
		b = strstr(req, "\r\n\r\n") + 4;
		respond(fd, "201 Created",
		        "Content-Type: application/x-echo\r\n", b, strlen(b));
	} else {
		respond(fd, "404 Not Found", "", "no", 2);
	}
}

static void *
server_main(void *arg)
{
	int fd;

	while (!stopping) {
		if ((fd = accept(listen_fd, NULL, NULL)) == -1)
			continue;
		if (!stopping)
			serve_one(fd);
		close(fd);
	}
	return NULL;
}

static int
setup(void **state)
{
	if ((listen_fd = fx_listen_loopback(128, &port)) == -1)
		return -1;
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	if (eb_http_client_global_init() == -1)
		return -1;
	return pthread_create(&server_thread, NULL, server_main, NULL);
}

static int
teardown(void **state)
{
	struct sockaddr_in sa;
	int fd;

	stopping = 1;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	pthread_join(server_thread, NULL);
	close(listen_fd);
	eb_http_client_global_cleanup();
	return 0;
}

static struct eb_http_response *
get(const char *path, size_t max, int follow)
{
	struct eb_http_options o;
	char url[128];

	snprintf(url, sizeof(url), "%s%s", base, path);
	eb_http_options_init(&o, "GET", url);
	o.max_response_bytes = max;
	o.follow_redirects = follow;
	o.timeout = 10;
	return eb_http_fetch(&o);
}

static void
test_get(void **state)
{
	struct eb_http_response *r = get("/hello", 0, 0);

	assert_non_null(r);
	assert_int_equal(r->error, EB_HTTP_OK);
	assert_int_equal(r->status, 200);
	assert_int_equal(r->body_len, 5);
	assert_string_equal(r->body, "hello");
	assert_string_equal(eb_http_response_header(r, "content-type"),
	                    "text/plain");
	assert_int_equal(eb_http_response_header_count(r, "X-MULTI"), 2);
	assert_string_equal(eb_http_response_header_nth(r, "x-multi", 1), "b");
	assert_null(eb_http_response_header_nth(r, "x-multi", 2));
	assert_string_equal(eb_http_response_header(r, "WWW-Authenticate"),
	                    "Bearer method=\"apple-as-web\"");
	assert_null(eb_http_response_header(r, "Location"));
	eb_http_response_free(r);
	eb_http_response_free(NULL);
}

static void
test_too_large(void **state)
{
	struct eb_http_response *r = get("/big", 1000, 0);

	assert_int_equal(r->error, EB_HTTP_ERR_TOO_LARGE);
	assert_string_equal(eb_http_error_name(r->error), "too_large");
	assert_true(r->body_len <= 1000);
	eb_http_response_free(r);
	r = get("/big", 100000, 0);
	assert_int_equal(r->error, EB_HTTP_OK);
	assert_int_equal(r->body_len, 100000);
	eb_http_response_free(r);
}

static void
test_redirects(void **state)
{
	struct eb_http_response *r = get("/redir", 0, 0);
	char want[128];

	assert_int_equal(r->error, EB_HTTP_OK);
	assert_int_equal(r->status, 302);
	assert_string_equal(eb_http_response_header(r, "location"),
	                    "/hello?x=1");
	snprintf(want, sizeof(want), "%s/hello?x=1", base);
	assert_string_equal(r->redirect_url, want);
	assert_int_equal(r->redirect_count, 0);
	eb_http_response_free(r);

	r = get("/redir", 0, 1);
	assert_int_equal(r->status, 200);
	assert_int_equal(r->redirect_count, 1);
	assert_string_equal(r->body, "hello");
	/* only the last response's headers are kept */
	assert_null(eb_http_response_header(r, "Location"));
	assert_string_equal(r->effective_url, want);
	eb_http_response_free(r);
}

static void
test_post(void **state)
{
	const char *const kv[] = {"grant_type", "authorization_code", "code",
	                          "a b&c=d/é",  "redirect_uri",       "x:/y",
	                          NULL};
	const char *const hdrs[] = {
	    "Content-Type: application/x-www-form-urlencoded", NULL};
	struct eb_http_options o;
	struct eb_http_response *r;
	char url[128], *form = eb_http_form_encode(kv);

	assert_string_equal(form, "grant_type=authorization_code&code=a%20b%"
	                          "26c%3Dd%2F%C3%A9&redirect_uri=x%3A%2Fy");
	snprintf(url, sizeof(url), "%s/echo", base);
	eb_http_options_init(&o, NULL, url);
	o.headers = hdrs;
	o.body = form;
	o.body_len = strlen(form);
	r = eb_http_fetch(&o);
	assert_int_equal(r->error, EB_HTTP_OK);
	assert_int_equal(r->status, 201);
	assert_string_equal(r->body, form);
	eb_http_response_free(r);
	eb_free(form);
}

static void
test_errors(void **state)
{
	struct eb_http_options o;
	struct eb_http_response *r;
	const char *const resolve[] = {"nowhere.example:1:127.0.0.1", NULL};

	eb_http_options_init(&o, "GET", "ftp://127.0.0.1/");
	r = eb_http_fetch(&o);
	assert_int_equal(r->error, EB_HTTP_ERR_OTHER);
	assert_string_equal(r->body, "");
	eb_http_response_free(r);

	/* port 1 on loopback: nobody listens */
	eb_http_options_init(&o, "GET", "http://nowhere.example:1/");
	o.resolve = resolve;
	r = eb_http_fetch(&o);
	assert_int_equal(r->error, EB_HTTP_ERR_CONNECT);
	assert_true(r->message[0] != '\0');
	eb_http_response_free(r);

	/* .invalid never resolves; a resolver that cannot be reached at all
	 * may time out instead, which is also a correct answer */
	eb_http_options_init(&o, "GET", "http://no-such-host.invalid/");
	o.timeout = 5;
	r = eb_http_fetch(&o);
	if (r->error != EB_HTTP_ERR_TIMEOUT)
		assert_int_equal(r->error, EB_HTTP_ERR_DNS);
	eb_http_response_free(r);
}

static void
test_form_helpers(void **state)
{
	struct eb_buf b;

	eb_buf_init(&b, 64);
	assert_int_equal(eb_http_form_add(&b, "a", "1"), 0);
	assert_int_equal(eb_http_form_add(&b, "b c", "~._-"), 0);
	assert_string_equal(eb_buf_str(&b), "a=1&b%20c=~._-");
	eb_buf_finish(&b);
	eb_buf_init(&b, 5);
	assert_int_equal(eb_http_urlencode(&b, "@@"), -1);
	eb_buf_finish(&b);
}

static void *
worker(void *arg)
{
	struct eb_http_response *r;
	int i, *bad = arg;

	for (i = 0; i < 20; i++) {
		r = get("/hello", 0, 0);
		if (r == NULL || r->error != EB_HTTP_OK || r->status != 200 ||
		    strcmp(r->body, "hello") != 0)
			(*bad)++;
		eb_http_response_free(r);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	pthread_t t[8];
	int bad[8] = {0}, i;

	for (i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker, &bad[i]),
		                 0);
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(bad[i], 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get),
	    cmocka_unit_test(test_too_large),
	    cmocka_unit_test(test_redirects),
	    cmocka_unit_test(test_post),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_form_helpers),
	    cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
