/*
 * The forwarding half of the MDM proxy: which headers cross in each
 * direction, the upstream URL, and the asynchronous upstream call whose
 * completion sets the device's response and resumes the request.
 *
 * Requests: hop-by-hop headers (and those the Connection header names),
 * Host/Content-Length/Expect (curl sets them), any copy of our identity
 * headers and of forwarding headers (X-Enrollbridge-*, X-Forwarded-*),
 * and any name that is not a token are dropped; a second Authorization is
 * refused (400); the rest, Authorization included, go upstream as
 * received, followed by X-Managed-Apple-ID,
 * X-Enrollment-Mode and X-Grant-ID (authenticated requests only),
 * X-Enrollbridge-Authenticated (1 or 0), X-Forwarded-For/-Proto/-Host and
 * X-Request-Id. The bridge is the edge the device talks to, so forwarding
 * headers sent by the device are replaced rather than extended; Proto and
 * Host describe the public_url the device uses.
 *
 * Responses: status, headers (minus hop-by-hop, Content-Length, Date and
 * X-Request-Id, which the server sets) and body pass back. An upstream
 * that cannot be reached is 502, one that times out 504, a body over
 * limits.upstream_max_bytes 502; each with Retry-After. No grant is
 * touched on the way back.
 *
 * A small body (up to STREAM_MIN: check-in answers, most commands) is
 * gathered and sent in one piece with its length, also when the MDM sent
 * it chunked. A larger one is streamed: the status and headers go to the
 * device as soon as the MDM sends them (or, for a body of unknown length,
 * as soon as STREAM_MIN bytes of it are in), then the body as it arrives,
 * with at most
 * STREAM_HIGH bytes held here (beyond that the upstream is no longer read
 * until the device has taken them). limits.upstream_max_bytes and
 * upstream_timeout still bound the whole. A stream the MDM cuts short, or
 * that passes a limit, is cut short to the device too (the connection is
 * closed before the end: never a complete-looking body); a device that
 * goes away ends the upstream transfer.
 *
 * Request bodies are not streamed: the proxy must read a check-in or
 * command result whole (its MessageType, UDID, EnrollmentID) and check it
 * against the grant before any of it may reach the MDM.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/env.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/str.h"
#include "handle/idheaders.h"
#include "handle/proxy_int.h"
#include "http/client.h"
#include "http/h1check.h"
#include "http/http.h"

#define RETRY_AFTER  "30"
#define MAX_URL      8192
#define MAX_FWD_HDRS 128  /* headers sent upstream, ours included */
#define FWD_ARENA    4096 /* bytes of header lines kept on the stack */
/* Streaming (see above): bodies announced larger than STREAM_MIN, or of
 * unknown length, are streamed; the upstream pauses at STREAM_HIGH bytes
 * held and goes on below STREAM_LOW. */
#define STREAM_MIN  (32 * 1024)
#define STREAM_HIGH (256 * 1024)
#define STREAM_LOW  (64 * 1024)

#define M_REQUESTS "enrollbridge_proxy_requests_total"
#define M_UPSTREAM "enrollbridge_proxy_upstream_seconds"

/* MDM upstream latency buckets: check-ins are quick, commands may not be */
static const double upstream_le[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                     1,     2.5,  5,     10,   30,  60};

/* A header name and its length: lists are matched length first. */
struct hname {
	const char *s;
	size_t n;
};
#define HN(s)                                                                  \
	{                                                                      \
		s, sizeof(s) - 1                                               \
	}

/* RFC 9110 7.6.1 (and the obsolete Proxy-Connection, Keep-Alive). */
static const struct hname hop_by_hop[] = {HN("Connection"),
                                          HN("Keep-Alive"),
                                          HN("Proxy-Authenticate"),
                                          HN("Proxy-Authorization"),
                                          HN("Proxy-Connection"),
                                          HN("TE"),
                                          HN("Trailer"),
                                          HN("Transfer-Encoding"),
                                          HN("Upgrade"),
                                          {NULL, 0}};

/* Set by the bridge alone: a device's copies never reach the MDM. */
static const struct hname ours[] = {
    HN("X-Managed-Apple-ID"), HN("X-Enrollment-Mode"), HN("X-Grant-ID"),
    HN("X-Forwarded-For"),    HN("X-Forwarded-Proto"), HN("X-Forwarded-Host"),
    HN("X-Forwarded-Port"),   HN("Forwarded"),         HN("X-Real-IP"),
    HN("X-Request-Id"),       HN("Traceparent"),       {NULL, 0}};

/* Computed by curl or the server, never copied across. */
static const struct hname computed_req[] = {
    HN("Host"), HN("Content-Length"), HN("Expect"), {NULL, 0}};
static const struct hname computed_resp[] = {HN("Content-Length"),
                                             HN("Content-Type"),
                                             HN("Date"),
                                             HN("X-Request-Id"),
                                             {NULL, 0}};

/* name (n bytes) is in list, in any case. Every header of every proxied
 * request goes through here: the lengths rule out most entries. */
static int
in_list(const char *name, size_t n, const struct hname *list)
{
	for (; list->s != NULL; list++)
		if (list->n == n && strncasecmp(name, list->s, n) == 0)
			return 1;
	return 0;
}

/* 1 when the comma-separated token list conn names name. */
static int
named_by(const char *name, const char *conn)
{
	size_t n = strlen(name), len;
	const char *p = conn;

	if (conn == NULL)
		return 0;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		len = strcspn(p, " \t,");
		if (len == n && strncasecmp(p, name, n) == 0)
			return 1;
		p += len;
	}
	return 0;
}

int
eb_proxy_request_header_ok(const char *name, const char *connection)
{
	size_t n = strlen(name);

	/* a name that is not a token is a framing trick (a blank before
	 * the colon, a folded line): the server refuses those, and they
	 * never go upstream whatever reached here */
	if (!eb_h1check_token(name, n))
		return 0;
	if (in_list(name, n, hop_by_hop) || in_list(name, n, ours) ||
	    in_list(name, n, computed_req) || named_by(name, connection))
		return 0;
	return strncasecmp(name, "X-Enrollbridge-", 15) != 0 &&
	       strncasecmp(name, "X-Forwarded-", 12) != 0;
}

int
eb_proxy_response_header_ok(const char *name, const char *connection)
{
	size_t n = strlen(name);

	return !in_list(name, n, hop_by_hop) &&
	       !in_list(name, n, computed_resp) && !named_by(name, connection);
}

/*
 * A dot segment in any spelling a server behind the bridge might honour:
 * only dots (".", "..", "..."), then optionally blanks and a ";" parameter
 * ("..;", ".. ", "..;jsessionid=1"). Tomcat, Spring and some Windows
 * servers strip those and walk up; we never forward them.
 */
static int
dot_segment(const char *seg, size_t len)
{
	size_t i = 0;

	while (i < len && seg[i] == '.')
		i++;
	if (i == 0)
		return 0;
	while (i < len && (seg[i] == ' ' || seg[i] == '\t'))
		i++;
	return i == len || seg[i] == ';';
}

int
eb_proxy_rest_ok(const char *rest)
{
	const char *p = rest, *seg;
	size_t len;

	if (rest == NULL || *rest == '\0' || *rest == '/')
		return 0;
	/* decoded already (the server decodes the path once; the raw
	 * target had no encoded "/", "\\" or control byte, see
	 * src/http/h1check.c): what is left to refuse is seen here */
	for (; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
			return 0;
	if (!eb_h1check_utf8(rest, strlen(rest)))
		return 0; /* overlong "%c0%ae" and other malformed UTF-8 */
	for (seg = rest; *seg != '\0'; seg += len + (seg[len] == '/')) {
		len = strcspn(seg, "/");
		if (dot_segment(seg, len))
			return 0;
	}
	return 1;
}

/* RFC 3986 pchar plus "/", minus "%" (rest is already decoded). */
static int
path_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || strchr("-._~!$&'()*+,;=:@/", c);
}

/* RFC 3986 query characters, "%" kept (the query is forwarded raw). */
static int
query_char(unsigned char c)
{
	return path_char(c) || c == '?' || c == '%';
}

static const char hex[] = "0123456789ABCDEF";

/* RFC 3986 2.3 unreserved. */
static int
unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

/*
 * upstream without trailing slashes, "/", the path (len bytes; raw: as
 * received, else decoded), "?query" when there is one. A decoded path is
 * percent-encoded where it holds a byte that is not a path character. A
 * raw one is normalised (RFC 3986 6.2.2): an escaped unreserved
 * character is decoded, any other escape upper-cased, a byte a path may
 * not hold encoded; a malformed escape fails.
 */
static char *
build_url(const char *upstream, const char *path, size_t len, int raw,
          const char *query)
{
	struct eb_buf b;
	size_t ulen = strlen(upstream), i;
	const unsigned char *p = (const unsigned char *)path;
	int hi, lo;

	while (ulen > 0 && upstream[ulen - 1] == '/')
		ulen--;
	eb_buf_init(&b, MAX_URL);
	if (eb_buf_add(&b, upstream, ulen) == -1 || eb_buf_addc(&b, '/') == -1)
		goto fail;
	for (i = 0; i < len; i++) {
		unsigned char c = p[i];
		char enc[3];

		if (raw && c == '%') {
			if (len - i < 3 || (hi = eb_str_hexval(p[i + 1])) < 0 ||
			    (lo = eb_str_hexval(p[i + 2])) < 0)
				goto fail;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
			if (unreserved(c)) {
				if (eb_buf_addc(&b, (char)c) == -1)
					goto fail;
				continue;
			}
		} else if (path_char(c)) {
			if (eb_buf_addc(&b, (char)c) == -1)
				goto fail;
			continue;
		}
		enc[0] = '%';
		enc[1] = hex[c >> 4];
		enc[2] = hex[c & 0xf];
		if (eb_buf_add(&b, enc, 3) == -1)
			goto fail;
	}
	if (query != NULL && *query != '\0') {
		for (p = (const unsigned char *)query; *p != '\0'; p++)
			if (!query_char(*p))
				goto fail;
		if (eb_buf_addc(&b, '?') == -1 ||
		    eb_buf_addstr(&b, query) == -1)
			goto fail;
	}
	return eb_buf_detach(&b, NULL);
fail:
	eb_buf_finish(&b);
	return NULL;
}

char *
eb_proxy_upstream_url(const char *upstream, const char *rest, const char *query)
{
	return build_url(upstream, rest, strlen(rest), 0, query);
}

char *
eb_proxy_upstream_url_raw(const char *upstream, const char *target)
{
	const char *rest = target, *q;
	size_t plen = strcspn(target, "?");
	int i;

	/* {rest} begins after the fourth "/" of "/t/{T}/mdm/{rest}" (origin
	 * form only): the server refused an encoded "/", so the raw and the
	 * decoded path have the same segments */
	if (target[0] != '/')
		return NULL;
	for (i = 0; i < 4; i++) {
		if ((rest = memchr(rest, '/',
		                   plen - (size_t)(rest - target))) == NULL)
			return NULL;
		rest++;
	}
	q = target[plen] == '?' ? target + plen + 1 : NULL;
	return build_url(upstream, rest, plen - (size_t)(rest - target), 1, q);
}

/* ---- metrics ---- */

/*
 * The proxy's series of this request's tenant (and result), from a small
 * per-thread cache of registry handles: no lock and no lookup per request.
 * name and result are string literals (compared by address); the tenant by
 * address and id, since a reload may put another tenant at an old address.
 */
#define SERIES_CACHE 64
struct series_slot {
	const struct eb_tenant *t;
	const char *name, *result;
	char tid[64];
	struct eb_metric *s;
};
static _Thread_local struct series_slot t_series[SERIES_CACHE];

static void
describe_all(struct eb_metrics *m)
{
	eb_metrics_describe(m, M_REQUESTS, "counter",
	                    "MDM proxy requests by tenant and result.");
	eb_metrics_describe_histogram(
	    m, M_UPSTREAM,
	    "Seconds MDM upstream calls took, by tenant (completed calls, with "
	    "or without a response).",
	    upstream_le, sizeof(upstream_le) / sizeof(upstream_le[0]));
}

static struct eb_metric *
series_for(struct eb_request *req, const char *name, const char *result)
{
	struct eb_env *env = eb_req_env(req);
	const struct eb_tenant *t = eb_req_tenant(req);
	struct series_slot *e;
	uintptr_t h =
	    (uintptr_t)t ^ ((uintptr_t)name >> 3) ^ ((uintptr_t)result >> 5);
	struct eb_buf lb;
	struct eb_metric *s;

	e = &t_series[(h ^ (h >> 7)) % SERIES_CACHE];
	if (e->s != NULL && e->t == t && e->name == name &&
	    e->result == result && strcmp(e->tid, t->id) == 0)
		return e->s;
	describe_all(env->metrics);
	eb_buf_init(&lb, 1024);
	if (eb_metrics_label(&lb, "tenant", t->id) == -1 ||
	    (result != NULL && eb_metrics_label(&lb, "result", result) == -1)) {
		eb_buf_finish(&lb);
		return NULL;
	}
	e->s = eb_metrics_series(env->metrics, name, eb_buf_str(&lb));
	e->t = t;
	e->name = name;
	e->result = result;
	if (snprintf(e->tid, sizeof(e->tid), "%s", t->id) >=
	    (int)sizeof(e->tid))
		e->s = NULL; /* an id this long is not cached */
	s = e->s != NULL
	        ? e->s
	        : eb_metrics_series(env->metrics, name, eb_buf_str(&lb));
	eb_buf_finish(&lb);
	return s;
}

void
eb_proxy_count(struct eb_request *req, const char *result)
{
	eb_metric_add(series_for(req, M_REQUESTS, result), 1);
}

static void
count_latency(struct eb_request *req, double secs)
{
	eb_metric_observe(series_for(req, M_UPSTREAM, NULL), secs);
}

/* ---- the request upstream ---- */

struct fwd_headers {
	char *v[MAX_FWD_HDRS + 1]; /* "Name: value", NULL-terminated */
	size_t n;
	const char *connection;
	int overflow;
	int has_ctype, has_accept, has_ua;
	/* the lines of a usual request, without an allocation each; longer
	 * ones are allocated */
	char arena[FWD_ARENA];
	size_t used;
};

static int
in_arena(const struct fwd_headers *h, const char *p)
{
	return p >= h->arena && p < h->arena + sizeof(h->arena);
}

static void
fwd_headers_finish(struct fwd_headers *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		if (!in_arena(h, h->v[i]))
			eb_free(h->v[i]);
	h->n = 0;
	h->used = 0;
}

/* Room for one line of len bytes (NUL included): in the arena when it
 * fits, else allocated. NULL when the list is full or out of memory. */
static char *
fwd_room(struct fwd_headers *h, size_t len)
{
	char *line;

	if (h->n == MAX_FWD_HDRS) {
		h->overflow = 1;
		return NULL;
	}
	if (len <= sizeof(h->arena) - h->used) {
		line = h->arena + h->used;
		h->used += len;
	} else if ((line = eb_malloc(len)) == NULL)
		return NULL;
	h->v[h->n++] = line;
	return line;
}

/* Append one header line as curl takes it. */
static int
fwd_line(struct fwd_headers *h, const char *line)
{
	size_t len = strlen(line) + 1;
	char *p;

	if ((p = fwd_room(h, len)) == NULL)
		return -1;
	memcpy(p, line, len);
	return 0;
}

/* Append "name: value" ("name;" for an empty value, in curl's syntax). */
static int
fwd_add(struct fwd_headers *h, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	char *line;

	if (nl > SIZE_MAX - 3 - vl || (line = fwd_room(h, nl + vl + 3)) == NULL)
		return -1;
	memcpy(line, name, nl);
	if (vl == 0) {
		line[nl] = ';';
		line[nl + 1] = '\0';
	} else {
		line[nl] = ':';
		line[nl + 1] = ' ';
		memcpy(line + nl + 2, value, vl + 1);
	}
	return 0;
}

static int
copy_header(void *arg, const char *name, const char *value)
{
	struct fwd_headers *h = arg;

	if (!eb_proxy_request_header_ok(name, h->connection))
		return 0;
	if (eb_str_ieq(name, "Content-Type"))
		h->has_ctype = 1;
	else if (eb_str_ieq(name, "Accept"))
		h->has_accept = 1;
	else if (eb_str_ieq(name, "User-Agent"))
		h->has_ua = 1;
	return fwd_add(h, name, value) == -1 ? 1 : 0;
}

/* host[:port] of a URL, into out. */
static void
url_host(const char *url, char *out, size_t outlen)
{
	const char *p = strstr(url, "://");
	size_t n;

	p = p ? p + 3 : url;
	n = strcspn(p, "/?#");
	snprintf(out, outlen, "%.*s", (int)n, p);
}

static int
idheader_add(void *arg, const char *name, const char *value)
{
	return fwd_add(arg, name, value);
}

/* The identity headers (handle/idheaders.h) of an authenticated request. */
static int
add_identity(struct fwd_headers *h, const struct eb_proxy_identity *id)
{
	struct eb_idheaders ih;

	memset(&ih, 0, sizeof(ih));
	ih.managed_apple_id = id->managed_apple_id;
	ih.enrollment_mode = id->enrollment_mode;
	ih.grant_id = id->grant_id;
	ih.route = id->route;
	ih.idp = id->idp;
	return eb_idheaders_each(&ih, idheader_add, h) == 0 ? 0 : -1;
}

int
eb_proxy_has_upstream(const struct eb_tenant *t)
{
	size_t i;

	if (t->mdm.upstream != NULL)
		return 1;
	for (i = 0; i < t->nroutes; i++)
		if (t->routes[i].view.mdm.upstream != NULL)
			return 1;
	return 0;
}

static int
build_headers(struct eb_request *req, const struct eb_proxy_identity *id,
              struct fwd_headers *h)
{
	const struct eb_config *cfg = eb_req_config(req);
	char host[256];
	int rc = 0;

	memset(h, 0, offsetof(struct fwd_headers, arena)); /* not the arena */
	h->used = 0;
	h->connection = eb_req_header(req, "Connection");
	eb_req_header_each(req, copy_header, h);
	if (h->overflow)
		return -1;
	/* nothing the device did not send ("Name:" removes what curl would
	 * add on its own) */
	if (!h->has_ctype)
		rc |= fwd_line(h, "Content-Type:");
	if (!h->has_accept)
		rc |= fwd_line(h, "Accept:");
	if (!h->has_ua)
		rc |= fwd_line(h, "User-Agent:");
	if (id->authenticated) {
		rc |= fwd_add(h, "X-Managed-Apple-ID",
		              id->managed_apple_id ? id->managed_apple_id : "");
		rc |= fwd_add(h, "X-Enrollment-Mode",
		              id->enrollment_mode ? id->enrollment_mode : "");
		rc |=
		    fwd_add(h, "X-Grant-ID", id->grant_id ? id->grant_id : "");
		rc |= add_identity(h, id);
	}
	rc |= fwd_add(h, "X-Enrollbridge-Authenticated",
	              id->authenticated ? "1" : "0");
	rc |= fwd_add(h, "X-Forwarded-For", eb_req_forwarded_for(req));
	rc |= fwd_add(h, "X-Forwarded-Proto",
	              eb_str_has_prefix(cfg->public_url, "https:") ? "https"
	                                                           : "http");
	url_host(cfg->public_url, host, sizeof(host));
	rc |= fwd_add(h, "X-Forwarded-Host", host);
	rc |= fwd_add(h, "X-Request-Id", eb_req_id(req));
	return rc == 0 ? 0 : -1;
}

/* ---- the response back ---- */

/*
 * One forwarded request. Without streaming it lives until done. A streamed
 * one has two owners: the upstream transfer (until done, or until it is
 * aborted) and the server's response (until release); it is freed when
 * both let go. Everything happens on the worker's thread.
 */
struct pending {
	struct eb_request *req; /* NULL once the server released the stream */
	const char *result;     /* a string literal */
	struct timespec start;
	/* streaming */
	struct eb_http_xfer *xfer; /* the running transfer; NULL once ended */
	int streaming;
	int committed; /* the response is the stream (eb_resp_set_stream) */
	long status;   /* the MDM's, with the headers that pass back, */
	char **hdrs;   /* name, value, ...: kept until committed */
	size_t nhdrs;
	char *ctype;
	int up_done; /* 1: the whole body came, -1: the upstream failed */
	int paused;  /* data said 1: resume below STREAM_LOW */
	int refs;    /* the transfer, the server's response */
	char *buf;   /* held bytes: buf[off..len) */
	size_t len, off, cap;
};

static void
pending_unref(struct pending *p)
{
	size_t i;

	if (--p->refs > 0)
		return;
	for (i = 0; i < p->nhdrs; i++)
		eb_free(p->hdrs[i]);
	eb_free(p->hdrs);
	eb_free(p->ctype);
	eb_free(p->buf);
	eb_free(p);
}

static double
since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	       (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void
upstream_error(struct eb_request *req, int status, const char *result,
               const char *text)
{
	eb_proxy_count(req, result);
	eb_resp_header(req, "Retry-After", RETRY_AFTER);
	eb_resp_text(req, status, text);
}

/* One upstream header onto req's response (one the server refuses, with
 * a CR or LF say, is left out and logged). */
static void
pass_back(struct eb_request *req, const char *name, const char *value)
{
	if (eb_resp_header(req, name, value) == -1)
		log_info("tenant %s: MDM response header %.64s not passed back",
		         eb_req_tenant(req)->id, name);
}

/* The upstream's headers that pass back, onto req. */
static void
copy_response_headers(struct eb_request *req,
                      const struct eb_http_response *resp)
{
	const char *conn = eb_http_response_header(resp, "Connection");
	size_t i;

	for (i = 0; i < resp->nheaders; i++)
		if (eb_proxy_response_header_ok(resp->headers[i].name, conn))
			pass_back(req, resp->headers[i].name,
			          resp->headers[i].value);
}

/* The Content-Length the upstream announced, or -1 (none, or not one
 * number: the client's parser has already refused conflicting ones). */
static long long
announced_length(const struct eb_http_response *resp)
{
	const char *v = eb_http_response_header(resp, "Content-Length");
	long long n = 0;

	if (v == NULL || *v == '\0')
		return -1;
	for (; *v >= '0' && *v <= '9'; v++) {
		if (n > (LLONG_MAX - 9) / 10)
			return -1;
		n = n * 10 + (*v - '0');
	}
	return *v == '\0' ? n : -1;
}

/* The server wants more of a streamed body (see eb_resp_set_stream). */
static long
stream_read(void *arg, char *out, size_t max)
{
	struct pending *p = arg;
	size_t n = p->len - p->off;

	if (n == 0) {
		if (p->up_done == 1)
			return EB_RESP_STREAM_END;
		return p->up_done == -1 ? EB_RESP_STREAM_CUT : 0;
	}
	if (n > max)
		n = max;
	memcpy(out, p->buf + p->off, n);
	p->off += n;
	if (p->off == p->len)
		p->off = p->len = 0;
	/* last: resuming may hand over more bytes at once (stream_data) */
	if (p->paused && p->len - p->off < STREAM_LOW && p->xfer != NULL) {
		p->paused = 0;
		eb_http_xfer_resume(p->xfer);
	}
	return (long)n;
}

/* The server is done with the stream: the device has it all, or went
 * away. A transfer still running is ended (done is then not called). */
static void
stream_release(void *arg)
{
	struct pending *p = arg;

	if (p->xfer != NULL) {
		eb_proxy_count(p->req, "client_gone");
		eb_http_xfer_abort(p->xfer);
		p->xfer = NULL;
		pending_unref(p); /* the transfer's */
	}
	p->req = NULL;
	pending_unref(p);
}

/* Answer the device with the stream: status and headers go now. */
static int
commit(struct pending *p, uint64_t size)
{
	struct eb_request *req = p->req;
	size_t i;

	for (i = 0; i + 1 < p->nhdrs; i += 2)
		pass_back(req, p->hdrs[i], p->hdrs[i + 1]);
	if (eb_resp_set_stream(req, (int)p->status, p->ctype, size, stream_read,
	                       stream_release, p) == -1)
		return -1;
	p->committed = 1;
	p->refs++; /* the server's response */
	eb_req_resume(req);
	return 0;
}

/* Body bytes from the MDM: held for stream_read, up to STREAM_HIGH. */
static int
stream_data(const char *data, size_t n, void *arg)
{
	struct pending *p = arg;
	size_t held = p->len - p->off, want;
	char *nb;

	if (p->req == NULL)
		return -1;
	if (held >= STREAM_HIGH) {
		p->paused = 1; /* not taken: they come again on resume */
		return 1;
	}
	if (p->off > 0 && p->len + n > p->cap) {
		memmove(p->buf, p->buf + p->off, held);
		p->len = held;
		p->off = 0;
	}
	if (p->len + n > p->cap) {
		want = p->cap ? p->cap : 16384;
		while (want < p->len + n)
			want *= 2;
		if ((nb = eb_realloc(p->buf, want + 1)) == NULL)
			return -1; /* + 1: a NUL when it becomes a body */
		p->buf = nb;
		p->cap = want;
	}
	memcpy(p->buf + p->len, data, n);
	p->len += n;
	if (p->committed)
		eb_resp_stream_ready(p->req);
	else if (p->len >= STREAM_MIN && commit(p, EB_RESP_SIZE_UNKNOWN) == -1)
		return -1; /* done answers 502 */
	return 0;
}

/*
 * The MDM's status and headers are in: a small body is gathered (done
 * answers), a large or unknown one is streamed from now on.
 */
static int
stream_head(const struct eb_http_response *resp, struct eb_http_xfer *xfer,
            void *arg)
{
	struct pending *p = arg;
	long long cl = announced_length(resp);
	const char *conn, *ct;
	size_t i;

	/* first, as cheaply as it goes: every check-in answer stops here */
	if ((cl >= 0 && cl <= STREAM_MIN) ||
	    strcmp(eb_req_method(p->req), "HEAD") == 0 || resp->status < 200 ||
	    resp->status > 599 || resp->status == 204 || resp->status == 304)
		return EB_HTTP_GATHER;
	conn = eb_http_response_header(resp, "Connection");
	ct = eb_http_response_header(resp, "Content-Type");
	p->xfer = xfer;
	p->streaming = 1;
	p->status = resp->status;
	if (ct != NULL && (p->ctype = eb_strdup(ct)) == NULL)
		return EB_HTTP_ABORT; /* done answers 502 */
	if ((p->hdrs = eb_calloc(2 * resp->nheaders + 1, sizeof(char *))) ==
	    NULL)
		return EB_HTTP_ABORT;
	for (i = 0; i < resp->nheaders; i++) {
		if (!eb_proxy_response_header_ok(resp->headers[i].name, conn))
			continue;
		if ((p->hdrs[p->nhdrs++] = eb_strdup(resp->headers[i].name)) ==
		        NULL ||
		    (p->hdrs[p->nhdrs++] = eb_strdup(resp->headers[i].value)) ==
		        NULL)
			return EB_HTTP_ABORT;
	}
	if (cl >= 0 && commit(p, (uint64_t)cl) == -1)
		return EB_HTTP_ABORT;
	return EB_HTTP_STREAM;
}

static void upstream_done(struct eb_http_response *resp, void *arg);

/* The end of a streamed body's transfer. */
static void
stream_done(struct pending *p, struct eb_http_response *resp)
{
	struct eb_request *req = p->req; /* never NULL: see stream_release */
	const struct eb_tenant *t = eb_req_tenant(req);

	p->xfer = NULL;
	if (!p->committed) {
		/* all of it was small after all, or it failed before the
		 * device was answered: answer as without a stream */
		if (resp != NULL && resp->error == EB_HTTP_OK) {
			resp->status = p->status;
			eb_free(resp->body);
			if (p->buf != NULL)
				p->buf[p->len] = '\0';
			resp->body = p->buf != NULL ? p->buf : eb_strdup("");
			resp->body_len = p->len;
			p->buf = NULL;
			p->len = 0;
			if (resp->body == NULL) {
				eb_http_response_free(resp);
				resp = NULL;
			}
		}
		p->streaming = 0;
		upstream_done(resp, p); /* counts, answers, resumes */
		return;
	}
	count_latency(req, since(&p->start));
	if (resp != NULL && resp->error == EB_HTTP_OK) {
		p->up_done = 1;
		eb_proxy_count(req, p->result);
	} else {
		p->up_done = -1;
		log_warnx("tenant %s: MDM upstream: response cut short: %s: "
		          "%s",
		          t->id,
		          resp ? eb_http_error_name(resp->error) : "no memory",
		          resp ? resp->message : "");
		eb_proxy_count(req,
		               resp && resp->error == EB_HTTP_ERR_TIMEOUT
		                   ? "upstream_timeout"
		               : resp && resp->error == EB_HTTP_ERR_TOO_LARGE
		                   ? "upstream_too_large"
		                   : "upstream_error");
	}
	eb_http_response_free(resp);
	eb_resp_stream_ready(req);
	pending_unref(p); /* the transfer's */
}

/* Runs on the HTTP client's thread: must not block. */
static void
upstream_done(struct eb_http_response *resp, void *arg)
{
	struct pending *p = arg;
	struct eb_request *req = p->req;
	const struct eb_tenant *t = eb_req_tenant(req);
	const char *result = p->result;
	char *body;

	if (p->streaming) {
		stream_done(p, resp);
		return;
	}
	count_latency(req, since(&p->start));
	pending_unref(p);
	if (resp == NULL) {
		upstream_error(req, 502, "upstream_error", "MDM unavailable\n");
		goto out;
	}
	if (resp->error != EB_HTTP_OK) {
		log_warnx("tenant %s: MDM upstream: %s: %s", t->id,
		          eb_http_error_name(resp->error), resp->message);
		if (resp->error == EB_HTTP_ERR_TIMEOUT)
			upstream_error(req, 504, "upstream_timeout",
			               "MDM did not answer in time\n");
		else if (resp->error == EB_HTTP_ERR_TOO_LARGE)
			upstream_error(req, 502, "upstream_too_large",
			               "MDM response too large\n");
		else
			upstream_error(req, 502, "upstream_error",
			               "MDM unavailable\n");
		goto out;
	}
	if (resp->status < 100 || resp->status > 599) {
		log_warnx("tenant %s: MDM upstream answered status %ld", t->id,
		          resp->status);
		upstream_error(req, 502, "upstream_error",
		               "MDM answered nonsense\n");
		goto out;
	}
	copy_response_headers(req, resp);
	body = resp->body;
	resp->body = NULL;
	if (eb_resp_set_owned(req, (int)resp->status,
	                      eb_http_response_header(resp, "Content-Type"),
	                      body, resp->body_len) == -1)
		goto out; /* the server answers 500 */
	eb_proxy_count(req, result);
out:
	eb_http_response_free(resp);
	eb_req_resume(req);
}

static const struct eb_http_stream stream_fns = {stream_head, stream_data};

int
eb_proxy_forward(struct eb_request *req, const struct eb_tenant *t,
                 const struct eb_proxy_identity *id, const char *result)
{
	const struct eb_config *cfg = eb_req_config(req);
	struct eb_http_options o;
	struct fwd_headers h;
	struct pending *p = NULL;
	const void *body;
	size_t blen;
	char *url;
	const char *method = eb_req_method(req);

	/* one credential only: the MDM must judge the one we checked */
	if (eb_req_header_count(req, "Authorization") > 1) {
		eb_proxy_count(req, "bad_request");
		eb_resp_text(req, 400, "more than one Authorization\n");
		return EB_HANDLED;
	}
	if ((url = eb_proxy_upstream_url_raw(t->mdm.upstream,
	                                     eb_req_raw_target(req))) == NULL) {
		eb_proxy_count(req, "bad_request");
		eb_resp_text(req, 400, "bad request\n");
		return EB_HANDLED;
	}
	if (build_headers(req, id, &h) == -1 ||
	    (p = eb_calloc(1, sizeof(*p))) == NULL) {
		log_warnx("tenant %s: cannot build the MDM request%s", t->id,
		          h.overflow ? " (too many headers)" : "");
		eb_proxy_count(req, h.overflow ? "bad_request" : "error");
		eb_resp_text(req, h.overflow ? 431 : 500,
		             h.overflow ? "too many headers\n"
		                        : "internal error\n");
		goto out;
	}
	h.v[h.n] = NULL;
	body = eb_req_body(req, &blen);
	eb_http_options_init(&o, method, url);
	o.headers = (const char *const *)h.v;
	if (blen > 0 ||
	    (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	     strcmp(method, "DELETE") != 0 && strcmp(method, "OPTIONS") != 0)) {
		o.body = body;
		o.body_len = blen;
	}
	o.timeout = cfg->limits.upstream_timeout;
	o.connect_timeout = cfg->limits.upstream_timeout;
	o.max_response_bytes = cfg->limits.upstream_max_bytes;
	o.stream = &stream_fns;
	o.fair_key =
	    id != NULL && id->grant_id ? id->grant_id : eb_req_remote(req);
	p->req = req;
	p->refs = 1; /* the transfer's */
	p->result = result;
	clock_gettime(CLOCK_MONOTONIC, &p->start);
	if (eb_http_fetch_async(&o, upstream_done, p) == -1) {
		log_warnx("tenant %s: MDM request not started (client busy)",
		          t->id);
		eb_free(p);
		upstream_error(req, 503, "busy", "busy\n");
		goto out;
	}
	fwd_headers_finish(&h);
	eb_free(url);
	return EB_ASYNC;
out:
	fwd_headers_finish(&h);
	eb_free(url);
	return EB_HANDLED;
}
