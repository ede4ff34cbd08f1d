/*
 * The relying-party context and what every other file of src/oidc/ leans
 * on: creation with defaulted limits, the monotonic clock (the context's
 * clock), error filling, the IdP metrics, the single wrapper around
 * eb_http_fetch() that maps transport failures to stable error codes, and
 * the URL rule for upstream endpoints (https, or http to loopback only).
 */
#include "oidc/oidc_int.h"

#include "core/clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/str.h"

#define M_REQUESTS "enrollbridge_idp_requests_total"
#define M_UP       "enrollbridge_idp_up"
#define M_ERRORS   "enrollbridge_idp_errors_total"
#define M_LATENCY  "enrollbridge_idp_request_duration_seconds"

/* IdP calls: a sign-in waits for them, so the buckets stop at a minute */
static const double idp_le[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                1,    2.5,   5,    10,  30,   60};

struct eb_oidc *
eb_oidc_create(const struct eb_oidc_opts *opts)
{
	struct eb_oidc *o;

	if ((o = eb_calloc(1, sizeof(*o))) == NULL)
		return NULL;
	if (opts != NULL)
		o->opts = *opts;
	o->opts.ca_file = NULL;
	if (opts != NULL && opts->ca_file != NULL &&
	    (o->opts.ca_file = eb_strdup(opts->ca_file)) == NULL) {
		eb_free(o);
		return NULL;
	}
	if (o->opts.timeout <= 0)
		o->opts.timeout = EB_OIDC_DEFAULT_TIMEOUT;
	if (o->opts.max_bytes == 0)
		o->opts.max_bytes = EB_OIDC_DEFAULT_MAX_BYTES;
	if (o->opts.jwks_max_keys == 0)
		o->opts.jwks_max_keys = EB_JOSE_MAX_KEYS;
	if (o->opts.metadata_ttl <= 0)
		o->opts.metadata_ttl = EB_OIDC_DEFAULT_METADATA_TTL;
	if (o->opts.min_refresh_interval <= 0)
		o->opts.min_refresh_interval = EB_OIDC_DEFAULT_MIN_REFRESH;
	if (o->opts.clock_skew <= 0 || o->opts.clock_skew > 600)
		o->opts.clock_skew = EB_OIDC_DEFAULT_SKEW;
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->cond, NULL);
	eb_metrics_describe(
	    o->opts.metrics, M_REQUESTS, "counter",
	    "Calls to identity providers by tenant, endpoint and result.");
	eb_metrics_describe(o->opts.metrics, M_UP, "gauge",
	                    "1 when the last metadata, JWKS or token call "
	                    "of this tenant's IdP succeeded, 0 when it "
	                    "failed.");
	eb_metrics_describe_histogram(
	    o->opts.metrics, M_LATENCY,
	    "Seconds an identity provider took to answer, by tenant and "
	    "endpoint.",
	    idp_le, sizeof(idp_le) / sizeof(idp_le[0]));
	eb_metrics_describe(
	    o->opts.metrics, M_ERRORS, "counter",
	    "Failed upstream sign-in steps by tenant and error code.");
	return o;
}

void
eb_oidc_destroy(struct eb_oidc *o)
{
	if (o == NULL)
		return;
	eb_oidc_meta_cache_clear(o);
	eb_oidc_jwks_cache_clear(o);
	pthread_cond_destroy(&o->cond);
	pthread_mutex_destroy(&o->lock);
	eb_free((char *)o->opts.ca_file);
	eb_free(o);
}

int64_t
eb_oidc_mono_locked(struct eb_oidc *o)
{
	return eb_clock_mono(o->opts.clock);
}

const char *
eb_oidc_errkind_name(enum eb_oidc_errkind kind)
{
	switch (kind) {
	case EB_OIDC_OK:
		return "ok";
	case EB_OIDC_E_UNAVAILABLE:
		return "unavailable";
	case EB_OIDC_E_PROTOCOL:
		return "protocol";
	case EB_OIDC_E_TOKEN:
		return "token";
	case EB_OIDC_E_DENIED:
		return "denied";
	case EB_OIDC_E_POLICY:
		return "policy";
	case EB_OIDC_E_INTERNAL:
		return "internal";
	}
	return "internal";
}

int
eb_oidc_seterr(struct eb_oidc_error *err, enum eb_oidc_errkind kind,
               const char *code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	err->kind = kind;
	snprintf(err->code, sizeof(err->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
	va_end(ap);
	return -1;
}

static const char *
endpoint_name(enum eb_oidc_endpoint ep)
{
	switch (ep) {
	case EB_OIDC_EP_METADATA:
		return "metadata";
	case EB_OIDC_EP_JWKS:
		return "jwks";
	case EB_OIDC_EP_TOKEN:
		return "token";
	case EB_OIDC_EP_USERINFO:
		return "userinfo";
	}
	return "other";
}

void
eb_oidc_metric_request(struct eb_oidc *o, const char *tenant,
                       enum eb_oidc_endpoint ep, int ok, const char *issuer,
                       int up)
{
	struct eb_buf b;

	if (o->opts.metrics == NULL)
		return;
	eb_buf_init(&b, 1024);
	eb_metrics_label(&b, "tenant", tenant);
	eb_metrics_label(&b, "endpoint", endpoint_name(ep));
	eb_metrics_label(&b, "result", ok ? "ok" : "error");
	eb_metrics_add(o->opts.metrics, M_REQUESTS, eb_buf_str(&b), 1);
	/* by tenant, never by issuer (it may name an Entra tenant GUID) */
	if (tenant != NULL && issuer != NULL && up >= 0) {
		eb_buf_reset(&b);
		eb_metrics_label(&b, "tenant", tenant);
		eb_metrics_set(o->opts.metrics, M_UP, eb_buf_str(&b), up);
	}
	eb_buf_finish(&b);
}

void
eb_oidc_metric_error(struct eb_oidc *o, const char *tenant,
                     const struct eb_oidc_error *err)
{
	struct eb_buf b;

	if (o->opts.metrics == NULL || err == NULL)
		return;
	eb_buf_init(&b, 1024);
	eb_metrics_label(&b, "tenant", tenant);
	eb_metrics_label(&b, "code", err->code);
	eb_metrics_add(o->opts.metrics, M_ERRORS, eb_buf_str(&b), 1);
	eb_buf_finish(&b);
}

static void
observe_latency(struct eb_oidc *o, const char *tenant, enum eb_oidc_endpoint ep,
                const struct timespec *t0)
{
	struct timespec t1;
	struct eb_buf b;

	if (o->opts.metrics == NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	eb_buf_init(&b, 1024);
	if (eb_metrics_label(&b, "tenant", tenant) == 0 &&
	    eb_metrics_label(&b, "endpoint", endpoint_name(ep)) == 0)
		eb_metric_observe(eb_metrics_series(o->opts.metrics, M_LATENCY,
		                                    eb_buf_str(&b)),
		                  (double)(t1.tv_sec - t0->tv_sec) +
		                      (double)(t1.tv_nsec - t0->tv_nsec) / 1e9);
	eb_buf_finish(&b);
}

struct eb_http_response *
eb_oidc_fetch(struct eb_oidc *o, struct eb_http_options *hopts,
              const char *tenant, const char *issuer, enum eb_oidc_endpoint ep,
              const char *too_large_code, struct eb_oidc_error *err)
{
	struct eb_http_response *r;
	struct timespec t0;
	const char *code;

	hopts->timeout = o->opts.timeout;
	hopts->connect_timeout = o->opts.timeout;
	hopts->max_response_bytes = o->opts.max_bytes;
	hopts->follow_redirects = 0; /* never, for any IdP call */
	hopts->cafile = o->opts.ca_file;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = eb_http_fetch(hopts);
	observe_latency(o, tenant, ep, &t0);
	if (r == NULL) {
		eb_oidc_seterr(err, EB_OIDC_E_INTERNAL, "nomem",
		               "out of memory calling the %s endpoint",
		               endpoint_name(ep));
		return NULL;
	}
	if (r->error == EB_HTTP_OK)
		return r;
	switch (r->error) {
	case EB_HTTP_ERR_TIMEOUT:
		code = "idp_timeout";
		break;
	case EB_HTTP_ERR_TLS:
		code = "idp_tls";
		break;
	case EB_HTTP_ERR_TOO_LARGE:
		code = too_large_code;
		break;
	default:
		code = "idp_unreachable";
		break;
	}
	if (r->error == EB_HTTP_ERR_TOO_LARGE)
		eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL, code,
		               "%s response over %zu bytes", endpoint_name(ep),
		               o->opts.max_bytes);
	else
		eb_oidc_seterr(err, EB_OIDC_E_UNAVAILABLE, code,
		               "%s endpoint: %s (%s)", endpoint_name(ep),
		               eb_http_error_name(r->error), r->message);
	eb_oidc_metric_request(o, tenant, ep, 0, issuer,
	                       r->error == EB_HTTP_ERR_TOO_LARGE ? -1 : 0);
	eb_http_response_free(r);
	return NULL;
}

/* 1 when host (no brackets, no port) is a loopback name or address. */
static int
host_is_loopback(const char *host, size_t len)
{
	unsigned a, b, c, d;
	char tmp[64], extra;

	if (len == 9 && strncasecmp(host, "localhost", 9) == 0)
		return 1;
	if (len == 3 && memcmp(host, "::1", 3) == 0)
		return 1;
	if (len >= sizeof(tmp))
		return 0;
	memcpy(tmp, host, len);
	tmp[len] = '\0';
	if (strspn(tmp, "0123456789.") != len)
		return 0;
	if (sscanf(tmp, "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) != 4)
		return 0;
	return a == 127 && b < 256 && c < 256 && d < 256;
}

int
eb_oidc_url_ok(const char *url)
{
	const char *auth, *end, *host, *hend, *p;
	int https;

	if (url == NULL || strlen(url) > EB_OIDC_MAX_URL)
		return 0;
	for (p = url; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return 0;
	if (strncasecmp(url, "https://", 8) == 0)
		https = 1;
	else if (strncasecmp(url, "http://", 7) == 0)
		https = 0;
	else
		return 0;
	if (strchr(url, '#') != NULL)
		return 0;
	auth = url + (https ? 8 : 7);
	end = auth + strcspn(auth, "/?");
	if (memchr(auth, '@', (size_t)(end - auth)) != NULL || end == auth)
		return 0;
	host = auth;
	if (*host == '[') {
		host++;
		if ((hend = memchr(host, ']', (size_t)(end - host))) == NULL)
			return 0;
		p = hend + 1;
	} else {
		hend = memchr(host, ':', (size_t)(end - host));
		if (hend == NULL)
			hend = end;
		p = hend;
	}
	if (hend == host)
		return 0;
	/* the rest of the authority: nothing, or ":port" */
	if (p != end) {
		if (*p != ':' || p + 1 == end ||
		    strspn(p + 1, "0123456789") != (size_t)(end - p - 1) ||
		    end - p - 1 > 5)
			return 0;
	}
	if (https)
		return 1;
	return host_is_loopback(host, (size_t)(hend - host));
}

int
eb_oidc_issuer_matches(const char *issuer, const char *iss)
{
	static const char tmpl[] = "{tenantid}";
	const char *t;
	size_t pre, suf, ilen, seg, i;

	if (issuer == NULL || iss == NULL)
		return 0;
	if (strcmp(issuer, iss) == 0)
		return 1;
	if ((t = strstr(issuer, tmpl)) == NULL)
		return 0;
	pre = (size_t)(t - issuer);
	suf = strlen(t + sizeof(tmpl) - 1);
	ilen = strlen(iss);
	if (ilen <= pre + suf || strncmp(iss, issuer, pre) != 0 ||
	    strcmp(iss + ilen - suf, t + sizeof(tmpl) - 1) != 0)
		return 0;
	seg = ilen - pre - suf;
	if (seg > 64 || strspn(iss + pre, ".") >= seg)
		return 0;
	for (i = pre; i < pre + seg; i++) {
		char c = iss[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}
