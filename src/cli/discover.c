/*
 * The discover command: walks a deployment's discovery, first enrollment
 * POST and Enrollment SSO document like a device, and reports each check
 * with a hint. The pure checks (bodies, headers) come first and are what
 * tests and the fuzzer drive; the network walk and the command line follow.
 * See discover.h.
 */
#include "cli/discover.h"
#include "cli/cliopt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "apple/device.h"
#include "apple/wwwauth.h"
#include "core/buf.h"
#include "core/mem.h"
#include "core/str.h"
#include "http/client.h"

#define MAX_DETAIL    1024
#define MAX_REDIRECTS 10

static const char hint_ct[] =
    "answer with exactly \"Content-Type: application/json\", no parameters: "
    "a different or decorated content type (\"; charset=utf-8\") is the "
    "most common cause of \"Sign-in Failed\" on the device";

/* ---- report ------------------------------------------------------------ */

void
eb_discover_report_init(struct eb_discover_report *r)
{
	memset(r, 0, sizeof(*r));
}

void
eb_discover_report_finish(struct eb_discover_report *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		eb_free(r->checks[i].name);
		eb_free(r->checks[i].detail);
		eb_free(r->checks[i].hint);
	}
	eb_free(r->checks);
	memset(r, 0, sizeof(*r));
}

const struct eb_discover_check *
eb_discover_report_find(const struct eb_discover_report *r, const char *name)
{
	size_t i;

	for (i = r->n; i > 0; i--)
		if (strcmp(r->checks[i - 1].name, name) == 0)
			return &r->checks[i - 1];
	return NULL;
}

const char *
eb_discover_result_name(enum eb_discover_result res)
{
	switch (res) {
	case EB_DISCOVER_PASS:
		return "PASS";
	case EB_DISCOVER_WARN:
		return "WARN";
	case EB_DISCOVER_FAIL:
		return "FAIL";
	case EB_DISCOVER_INFO:
		break;
	}
	return "INFO";
}

/* Replace control bytes (server text may be hostile to terminals). */
static char *
sanitize(char *s)
{
	unsigned char *p;

	for (p = (unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
	return s;
}

static char *vformat(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));

static char *
vformat(const char *fmt, va_list ap)
{
	char buf[MAX_DETAIL];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	return eb_strdup(sanitize(buf));
}

/*
 * Record a verdict. hint may be NULL; detail is a printf format. Returns -1
 * for FAIL, else 0, so a check can end with `return add(...)`.
 */
static int add(struct eb_discover_report *r, enum eb_discover_result res,
               const char *name, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
add(struct eb_discover_report *r, enum eb_discover_result res, const char *name,
    const char *hint, const char *fmt, ...)
{
	struct eb_discover_check *c;
	va_list ap;
	int rc = res == EB_DISCOVER_FAIL ? -1 : 0;

	if (res == EB_DISCOVER_FAIL)
		r->nfail++;
	else if (res == EB_DISCOVER_WARN)
		r->nwarn++;
	c = eb_realloc(r->checks, (r->n + 1) * sizeof(*c));
	if (c == NULL) {
		r->oom = 1;
		return rc;
	}
	r->checks = c;
	c = &r->checks[r->n];
	c->result = res;
	c->name = eb_strdup(name);
	va_start(ap, fmt);
	c->detail = vformat(fmt, ap);
	va_end(ap);
	c->hint = hint != NULL ? eb_strdup(hint) : NULL;
	if (c->name == NULL || c->detail == NULL ||
	    (hint != NULL && c->hint == NULL)) {
		eb_free(c->name);
		eb_free(c->detail);
		eb_free(c->hint);
		r->oom = 1;
		return rc;
	}
	r->n++;
	return rc;
}

/* ---- pure checks -----------------------------------------------------------
 */

static json_t *
load_json(const char *body, size_t len, size_t max, const char *name,
          const char *hint, struct eb_discover_report *r)
{
	json_error_t jerr;
	json_t *j;

	if (len > max) {
		add(r, EB_DISCOVER_FAIL, name, hint,
		    "body of %zu bytes is larger than %zu", len, max);
		return NULL;
	}
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL) {
		add(r, EB_DISCOVER_FAIL, name, hint,
		    "not valid JSON: %s (line %d, column %d)", jerr.text,
		    jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(j)) {
		add(r, EB_DISCOVER_FAIL, name, hint, "JSON is not an object");
		json_decref(j);
		return NULL;
	}
	return j;
}

int
eb_discover_check_body(const char *body, size_t len,
                       struct eb_discover_report *r,
                       struct eb_discover_server *out)
{
	static const char shape[] =
	    "serve {\"Servers\":[{\"Version\":\"mdm-byod\",\"BaseURL\":"
	    "\"https://...\"}]} (keys are case-sensitive)";
	json_t *root, *servers, *srv, *v, *u;
	const char *version, *url;
	char why[200];
	int rc = -1;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if ((root = load_json(body, len, EB_DISCOVER_MAX_BODY, "json", shape,
	                      r)) == NULL)
		return -1;
	add(r, EB_DISCOVER_PASS, "json", NULL, "a JSON object of %zu bytes",
	    len);

	servers = json_object_get(root, "Servers");
	if (servers == NULL) {
		add(r, EB_DISCOVER_FAIL, "servers", shape,
		    "no \"Servers\" key");
		goto out_root;
	}
	if (!json_is_array(servers)) {
		add(r, EB_DISCOVER_FAIL, "servers", shape,
		    "\"Servers\" is not an array");
		goto out_root;
	}
	if (json_array_size(servers) != 1) {
		add(r, EB_DISCOVER_FAIL, "servers",
		    "list exactly one server: the device refuses an empty "
		    "list and does not choose among several",
		    "\"Servers\" has %zu entries, expected exactly one",
		    json_array_size(servers));
		goto out_root;
	}
	srv = json_array_get(servers, 0);
	if (!json_is_object(srv)) {
		add(r, EB_DISCOVER_FAIL, "servers", shape,
		    "the \"Servers\" entry is not an object");
		goto out_root;
	}
	add(r, EB_DISCOVER_PASS, "servers", NULL, "exactly one server");

	v = json_object_get(srv, "Version");
	version = json_string_value(v);
	if (version == NULL) {
		add(r, EB_DISCOVER_FAIL, "version",
		    "set \"Version\" to \"mdm-byod\" (User Enrollment) or "
		    "\"mdm-adde\" (Device Enrollment)",
		    "no \"Version\" string in the server entry");
		goto out_root;
	}
	if (strcmp(version, "mdm-byod") != 0 &&
	    strcmp(version, "mdm-adde") != 0) {
		add(r, EB_DISCOVER_FAIL, "version",
		    "set \"Version\" to \"mdm-byod\" (User Enrollment) or "
		    "\"mdm-adde\" (Device Enrollment)",
		    "unknown Version \"%.100s\"", version);
		goto out_root;
	}
	add(r, EB_DISCOVER_PASS, "version", NULL, "%s (%s)", version,
	    version[4] == 'b' ? "account-driven User Enrollment"
	                      : "account-driven Device Enrollment");

	u = json_object_get(srv, "BaseURL");
	url = json_string_value(u);
	if (url == NULL) {
		add(r, EB_DISCOVER_FAIL, "base-url",
		    "set \"BaseURL\" to the https URL the device POSTs to",
		    "no \"BaseURL\" string in the server entry");
		goto out_root;
	}
	if (!eb_wwwauth_url_ok(url, why, sizeof(why))) {
		add(r, EB_DISCOVER_FAIL, "base-url",
		    "BaseURL must be an absolute https URL reachable by the "
		    "device (http only for loopback tests)",
		    "\"%.300s\": %s", url, why);
		goto out_root;
	}
	add(r, EB_DISCOVER_PASS, "base-url", NULL, "%.300s", url);
	if (out != NULL) {
		out->version = eb_strdup(version);
		out->base_url = eb_strdup(url);
		if (out->version == NULL || out->base_url == NULL) {
			eb_discover_server_finish(out);
			r->oom = 1;
			goto out_root;
		}
	}
	rc = 0;
out_root:
	json_decref(root);
	return rc;
}

void
eb_discover_server_finish(struct eb_discover_server *s)
{
	eb_free(s->version);
	eb_free(s->base_url);
	s->version = s->base_url = NULL;
}

int
eb_discover_check_content_type(const char *ct, struct eb_discover_report *r)
{
	size_t n = strlen("application/json");

	if (ct == NULL)
		return add(r, EB_DISCOVER_FAIL, "content-type", hint_ct,
		           "no Content-Type header");
	if (strcmp(ct, "application/json") == 0)
		return add(r, EB_DISCOVER_PASS, "content-type", NULL,
		           "application/json");
	if (strncasecmp(ct, "application/json", n) == 0 &&
	    (ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t'))
		return add(
		    r, EB_DISCOVER_FAIL, "content-type", hint_ct,
		    "\"%.200s\" carries parameters; the device wants exactly "
		    "application/json",
		    ct);
	return add(r, EB_DISCOVER_FAIL, "content-type", hint_ct,
	           "\"%.200s\" is not application/json", ct);
}

int
eb_discover_check_cache_control(const char *cc, struct eb_discover_report *r)
{
	static const char hint[] = "send \"Cache-Control: no-store\" so that "
	                           "no device or proxy caches the answer";
	const char *p = cc;
	size_t n;

	while (p != NULL && *p != '\0') {
		p += strspn(p, " \t,");
		n = strcspn(p, " \t,=");
		if (n == 8 && strncasecmp(p, "no-store", 8) == 0)
			return add(r, EB_DISCOVER_PASS, "cache-control", NULL,
			           "%.200s", cc);
		p += strcspn(p, ",");
	}
	if (cc == NULL)
		return add(r, EB_DISCOVER_WARN, "cache-control", hint,
		           "no Cache-Control header");
	return add(r, EB_DISCOVER_WARN, "cache-control", hint,
	           "\"%.200s\" lacks no-store", cc);
}

int
eb_discover_check_refusal(const char *body, size_t len,
                          struct eb_discover_report *r)
{
	static const char fmt_hint[] =
	    "to refuse a user on purpose, answer 403 with "
	    "{\"code\":\"com.apple.well-known.failed\",\"description\":"
	    "\"...\",\"message\":\"...\"} (iOS 17.5+/macOS 14.5+); otherwise "
	    "make the server answer 200 for this identifier";
	json_error_t jerr;
	json_t *j = NULL;
	const char *code = NULL, *desc, *msg;

	if (len <= EB_DISCOVER_MAX_BODY)
		j = json_loadb(body, len, 0, &jerr);
	if (json_is_object(j))
		code = json_string_value(json_object_get(j, "code"));
	if (code == NULL || strcmp(code, "com.apple.well-known.failed") != 0) {
		json_decref(j);
		return add(
		    r, EB_DISCOVER_FAIL, "status", fmt_hint,
		    "HTTP 403 without a com.apple.well-known.failed document");
	}
	desc = json_string_value(json_object_get(j, "description"));
	msg = json_string_value(json_object_get(j, "message"));
	add(r, EB_DISCOVER_FAIL, "status",
	    "the server refuses this user: if they should enroll, check that "
	    "the identifier's domain is configured (tenant \"domains\") and "
	    "that the access policy admits the user",
	    "HTTP 403, user refused: code=%s, description=\"%.200s\", "
	    "message shown to the user=\"%.200s\"",
	    code, desc != NULL ? desc : "", msg != NULL ? msg : "");
	json_decref(j);
	return -1;
}

int
eb_discover_check_challenge(const char *const *values, size_t n,
                            struct eb_discover_report *r)
{
	static const char form[] =
	    "send one header line in Apple's exact form: WWW-Authenticate: "
	    "Bearer method=\"apple-as-web\", url=\"https://...\" (scheme "
	    "Bearer, every value quoted, parameters separated by \", \")";
	struct eb_wwwauth w;
	char err[512];
	const char *ru;
	int rc = -1;

	if (n == 0)
		return add(r, EB_DISCOVER_FAIL, "challenge", form,
		           "401 without a WWW-Authenticate header");
	if (n > 1)
		return add(
		    r, EB_DISCOVER_FAIL, "challenge", form,
		    "%zu WWW-Authenticate headers; the device expects exactly "
		    "one",
		    n);
	if (eb_wwwauth_parse(&w, values[0], strlen(values[0]),
	                     EB_WWWAUTH_STRICT, err, sizeof(err)) == -1) {
		add(r, EB_DISCOVER_FAIL, "challenge", form, "%s: %.300s", err,
		    values[0]);
		goto out_finish;
	}
	add(r, EB_DISCOVER_PASS, "challenge", NULL,
	    "one WWW-Authenticate header in Apple's exact form");
	if (eb_wwwauth_check_apple(&w, err, sizeof(err)) == -1) {
		add(r, EB_DISCOVER_FAIL, "challenge-method",
		    "apple-as-web needs an https url; apple-oauth2 needs "
		    "https authorization-url and token-url, redirect-url, "
		    "client-id and scope",
		    "%s", err);
		goto out_finish;
	}
	if (eb_wwwauth_method(&w) == EB_WWWAUTH_METHOD_AS_WEB) {
		add(r, EB_DISCOVER_PASS, "challenge-method", NULL,
		    "apple-as-web, url %.300s", eb_wwwauth_param(&w, "url"));
	} else {
		add(r, EB_DISCOVER_PASS, "challenge-method", NULL,
		    "apple-oauth2, authorization-url %.200s, token-url %.200s, "
		    "client-id %.100s",
		    eb_wwwauth_param(&w, "authorization-url"),
		    eb_wwwauth_param(&w, "token-url"),
		    eb_wwwauth_param(&w, "client-id"));
		ru = eb_wwwauth_param(&w, "redirect-url");
		if (!eb_str_has_prefix(ru,
		                       "apple-remotemanagement-user-login:"))
			add(r, EB_DISCOVER_WARN, "redirect-url",
			    "devices finish the OAuth 2 login at "
			    "apple-remotemanagement-user-login:/oauth2/"
			    "redirection",
			    "redirect-url \"%.200s\" is not an "
			    "apple-remotemanagement-user-login: URL",
			    ru);
	}
	rc = 0;
out_finish:
	eb_wwwauth_finish(&w);
	return rc;
}

int
eb_discover_check_esso_body(const char *body, size_t len, int developer,
                            struct eb_discover_report *r)
{
	static const char hint[] =
	    "serve {\"iTunesStoreID\": <the app's App Store id as a number>, "
	    "\"AssociatedDomains\": [...], \"ConfigurationProfile\": "
	    "\"<base64>\"}"
	    " (developer mode: \"AppIDs\": [\"TEAMID.bundle.id\"])";
	json_t *root, *id, *apps, *v;
	size_t i;
	int rc = -1;

	if ((root = load_json(body, len, EB_DISCOVER_MAX_ESSO, "esso-document",
	                      hint, r)) == NULL)
		return -1;
	id = json_object_get(root, "iTunesStoreID");
	apps = json_object_get(root, "AppIDs");
	if (id != NULL && !json_is_integer(id)) {
		add(r, EB_DISCOVER_FAIL, "esso-document", hint,
		    "iTunesStoreID is not an integer");
		goto out_root;
	}
	if (apps != NULL) {
		if (!json_is_array(apps) || json_array_size(apps) == 0) {
			add(r, EB_DISCOVER_FAIL, "esso-document", hint,
			    "AppIDs is not a non-empty list");
			goto out_root;
		}
		for (i = 0; i < json_array_size(apps); i++) {
			if (!json_is_string(json_array_get(apps, i))) {
				add(r, EB_DISCOVER_FAIL, "esso-document", hint,
				    "AppIDs holds a non-string");
				goto out_root;
			}
		}
	}
	if (id == NULL && apps == NULL) {
		add(r, EB_DISCOVER_FAIL, "esso-document", hint,
		    "neither iTunesStoreID nor AppIDs");
		goto out_root;
	}
	if (developer && apps == NULL)
		add(r, EB_DISCOVER_WARN, "esso-developer", hint,
		    "X-Apple-MDM-ESSO-Developer document without AppIDs");
	v = json_object_get(root, "AssociatedDomains");
	if (v != NULL && !json_is_array(v)) {
		add(r, EB_DISCOVER_FAIL, "esso-document", hint,
		    "AssociatedDomains is not a list");
		goto out_root;
	}
	for (i = 0; v != NULL && i < json_array_size(v); i++) {
		if (!json_is_string(json_array_get(v, i))) {
			add(r, EB_DISCOVER_FAIL, "esso-document", hint,
			    "AssociatedDomains holds a non-string");
			goto out_root;
		}
	}
	v = json_object_get(root, "AssociatedDomainsEnableDirectDownloads");
	if (v != NULL && !json_is_boolean(v)) {
		add(r, EB_DISCOVER_FAIL, "esso-document", hint,
		    "AssociatedDomainsEnableDirectDownloads is not a boolean");
		goto out_root;
	}
	v = json_object_get(root, "ConfigurationProfile");
	if (v != NULL && !json_is_string(v)) {
		add(r, EB_DISCOVER_FAIL, "esso-document", hint,
		    "ConfigurationProfile is not a (base64) string");
		goto out_root;
	}
	if (id != NULL)
		add(r, EB_DISCOVER_PASS, "esso-document", NULL,
		    "iTunesStoreID %" JSON_INTEGER_FORMAT,
		    json_integer_value(id));
	else
		add(r, EB_DISCOVER_PASS, "esso-document", NULL,
		    "developer document with %zu AppIDs",
		    json_array_size(apps));
	rc = 0;
out_root:
	json_decref(root);
	return rc;
}

/* ---- network walk ----------------------------------------------------------
 */

struct walk {
	const char *cafile;
	const char *family; /* model family, for the MachineInfo */
	int timeout;
	struct eb_discover_report *r;
};

static void
fetch_failed(struct walk *wk, const char *name, const char *url,
             const struct eb_http_response *resp)
{
	const char *hint;

	switch (resp->error) {
	case EB_HTTP_ERR_DNS:
		hint = "publish a DNS record for the host (for discovery: the "
		       "domain part of the identifier)";
		break;
	case EB_HTTP_ERR_CONNECT:
		hint = "make the host reachable from the Internet on the "
		       "URL's port (443 for https): listener, firewall, "
		       "load balancer";
		break;
	case EB_HTTP_ERR_TLS:
		hint = "serve a certificate chain that devices trust for this "
		       "host name (public CA, intermediates included, name "
		       "matching); for a private test CA use --cafile";
		break;
	case EB_HTTP_ERR_TIMEOUT:
		hint = "the server did not answer in time; check it is up and "
		       "not blocked by a firewall (raise --timeout if slow)";
		break;
	case EB_HTTP_ERR_TOO_LARGE:
		hint = "the answer is far larger than this document should be";
		break;
	default:
		hint = "check the URL and the server";
		break;
	}
	add(wk->r, EB_DISCOVER_FAIL, name, hint, "%.300s: %s error: %s", url,
	    eb_http_error_name(resp->error), resp->message);
}

static struct eb_http_response *
do_fetch(struct walk *wk, const char *method, const char *url,
         const char *const *headers, const char *body, size_t max)
{
	struct eb_http_options o;

	eb_http_options_init(&o, method, url);
	o.headers = headers;
	o.body = body;
	o.body_len = body != NULL ? strlen(body) : 0;
	o.timeout = wk->timeout;
	o.connect_timeout = wk->timeout;
	o.max_response_bytes = max;
	o.cafile = wk->cafile;
	return eb_http_fetch(&o);
}

static void
connected(struct walk *wk, const char *name, const char *url,
          const struct eb_http_response *resp)
{
	if (strncasecmp(url, "https://", 8) == 0)
		add(wk->r, EB_DISCOVER_PASS, name, NULL,
		    "%.300s: TLS verified, HTTP %ld in %ld ms", url,
		    resp->status, resp->total_time_ms);
	else
		add(wk->r, EB_DISCOVER_PASS, name, NULL,
		    "%.300s: plain http (loopback tests only), HTTP %ld in "
		    "%ld ms",
		    url, resp->status, resp->total_time_ms);
}

/*
 * GET the discovery URL, following redirects like a device: the Location
 * is used as is (the device does not carry the query string over).
 * Returns the final response or NULL (a FAIL recorded).
 */
static struct eb_http_response *
get_discovery(struct walk *wk, const char *first_url)
{
	struct eb_http_response *resp = NULL;
	char *url, *next, why[200];
	int hop;

	if ((url = eb_strdup(first_url)) == NULL)
		return NULL;
	for (hop = 0;; hop++) {
		resp =
		    do_fetch(wk, "GET", url, NULL, NULL, EB_DISCOVER_MAX_BODY);
		if (resp == NULL) {
			wk->r->oom = 1;
			break;
		}
		if (resp->error != EB_HTTP_OK) {
			fetch_failed(wk, "connection", url, resp);
			goto out_fail;
		}
		connected(wk, "connection", url, resp);
		if (resp->status < 300 || resp->status > 399 ||
		    resp->status == 304)
			break;
		if (resp->redirect_url == NULL) {
			add(wk->r, EB_DISCOVER_FAIL, "redirect",
			    "a redirect needs a Location header",
			    "HTTP %ld without a usable Location", resp->status);
			goto out_fail;
		}
		if (hop == MAX_REDIRECTS) {
			add(wk->r, EB_DISCOVER_FAIL, "redirect",
			    "point the domain at the discovery server with at "
			    "most a few redirects",
			    "more than %d redirects", MAX_REDIRECTS);
			goto out_fail;
		}
		add(wk->r, EB_DISCOVER_INFO, "redirect", NULL,
		    "HTTP %ld to %.300s", resp->status, resp->redirect_url);
		if (!eb_wwwauth_url_ok(resp->redirect_url, why, sizeof(why))) {
			add(wk->r, EB_DISCOVER_FAIL, "redirect",
			    "redirect only to https URLs", "%.300s: %s",
			    resp->redirect_url, why);
			goto out_fail;
		}
		if (strchr(url, '?') != NULL &&
		    strstr(resp->redirect_url, "user-identifier=") == NULL)
			add(wk->r, EB_DISCOVER_WARN, "redirect-query",
			    "devices do not carry the query string over a "
			    "redirect: make the redirect append it (nginx: "
			    "return 301 https://bridge.example$request_uri;) "
			    "or point it at the tenant's own URL "
			    "/t/<tenant>/.well-known/"
			    "com.apple.remotemanagement",
			    "the redirect to %.300s dropped the query string "
			    "(user-identifier, model-family)",
			    resp->redirect_url);
		if ((next = eb_strdup(resp->redirect_url)) == NULL) {
			wk->r->oom = 1;
			goto out_fail;
		}
		eb_free(url);
		url = next;
		eb_http_response_free(resp);
	}
	eb_free(url);
	return resp;
out_fail:
	eb_http_response_free(resp);
	eb_free(url);
	return NULL;
}

static const char *
status_hint(long status)
{
	if (status == 404)
		return "the server does not serve "
		       "/.well-known/com.apple.remotemanagement for this "
		       "domain: publish it (or redirect it to the bridge, "
		       "keeping the query string)";
	if (status >= 300 && status < 400)
		return "redirect with a Location header, or answer 200";
	if (status >= 500)
		return "the server failed: look at its logs";
	return "answer 200 with the discovery document";
}

/* Walk discovery; on success *server is filled. 0 or -1. */
static int
check_discovery(struct walk *wk, const char *url,
                struct eb_discover_server *server)
{
	struct eb_http_response *resp;
	int rc = -1;

	if ((resp = get_discovery(wk, url)) == NULL)
		return -1;
	if (resp->status == 403) {
		eb_discover_check_refusal(resp->body, resp->body_len, wk->r);
		goto out_free;
	}
	if (resp->status != 200) {
		add(wk->r, EB_DISCOVER_FAIL, "status",
		    status_hint(resp->status), "HTTP %ld, expected 200",
		    resp->status);
		goto out_free;
	}
	add(wk->r, EB_DISCOVER_PASS, "status", NULL, "HTTP 200");
	rc = eb_discover_check_content_type(
	    eb_http_response_header(resp, "Content-Type"), wk->r);
	eb_discover_check_cache_control(
	    eb_http_response_header(resp, "Cache-Control"), wk->r);
	if (eb_discover_check_body(resp->body, resp->body_len, wk->r, server) ==
	    -1)
		rc = -1;
out_free:
	eb_http_response_free(resp);
	return rc;
}

static void
check_esso(struct walk *wk, const char *url, int developer)
{
	struct eb_http_response *resp;
	const char *ct;
	char why[200];

	add(wk->r, EB_DISCOVER_INFO, "esso", NULL, "%s: %.300s",
	    developer ? "X-Apple-MDM-ESSO-Developer" : "X-Apple-MDM-ESSO", url);
	if (!eb_wwwauth_url_ok(url, why, sizeof(why))) {
		add(wk->r, EB_DISCOVER_FAIL, "esso-url",
		    "the ESSO header must hold an https URL", "%s", why);
		return;
	}
	resp = do_fetch(wk, "GET", url, NULL, NULL, EB_DISCOVER_MAX_ESSO);
	if (resp == NULL) {
		wk->r->oom = 1;
		return;
	}
	if (resp->error != EB_HTTP_OK) {
		fetch_failed(wk, "esso-connection", url, resp);
		goto out_free;
	}
	if (resp->status != 200) {
		add(wk->r, EB_DISCOVER_FAIL, "esso-status",
		    "serve the Enrollment SSO document with 200",
		    "HTTP %ld, expected 200", resp->status);
		goto out_free;
	}
	add(wk->r, EB_DISCOVER_PASS, "esso-status", NULL, "HTTP 200");
	ct = eb_http_response_header(resp, "Content-Type");
	if (ct == NULL || strcmp(ct, "application/json") != 0)
		add(wk->r, EB_DISCOVER_FAIL, "esso-content-type",
		    "answer with Content-Type: application/json",
		    "\"%.200s\" is not application/json", ct ? ct : "(none)");
	else
		add(wk->r, EB_DISCOVER_PASS, "esso-content-type", NULL,
		    "application/json");
	eb_discover_check_esso_body(resp->body, resp->body_len, developer,
	                            wk->r);
out_free:
	eb_http_response_free(resp);
}

/* The first enrollment POST, as a device without a token makes it. */
static void
check_enroll(struct walk *wk, const char *base_url)
{
	static const char *const headers[] = {
	    "Content-Type: application/pkcs7-signature",
	    "User-Agent: DeviceManagementClient/1.0", NULL};
	const char *vals[8], *esso;
	struct eb_http_response *resp;
	struct eb_device_info dev;
	struct eb_http_options o;
	uint8_t *body = NULL;
	size_t bodylen = 0, n, i;
	char err[256];

	/* what a device sends: its MachineInfo, CMS-signed (by an ephemeral
	 * identity here: the server cannot tell, and need not) */
	memset(&dev, 0, sizeof(dev));
	dev.product = eb_device_product_for(wk->family);
	if (dev.product == NULL)
		dev.product = "iPhone17,2";
	dev.version = "22B83";
	dev.os_version = "18.1";
	dev.language = "en-US";
	if (eb_device_machineinfo(&dev, &body, &bodylen, err, sizeof(err)) !=
	    0) {
		add(wk->r, EB_DISCOVER_FAIL, "enroll-request", NULL,
		    "cannot build a MachineInfo: %s", err);
		return;
	}
	eb_http_options_init(&o, "POST", base_url);
	o.headers = headers;
	o.body = (const char *)body;
	o.body_len = bodylen;
	o.timeout = wk->timeout;
	o.connect_timeout = wk->timeout;
	o.max_response_bytes = EB_DISCOVER_MAX_BODY;
	o.cafile = wk->cafile;
	resp = eb_http_fetch(&o);
	eb_free(body);
	if (resp == NULL) {
		wk->r->oom = 1;
		return;
	}
	if (resp->error != EB_HTTP_OK) {
		fetch_failed(wk, "enroll-connection", base_url, resp);
		goto out_free;
	}
	connected(wk, "enroll-connection", base_url, resp);
	if (resp->status != 401) {
		add(wk->r, EB_DISCOVER_FAIL, "enroll-status",
		    resp->status == 200
		        ? "a device rejects 200 here: the first POST carries "
		          "no token and must get 401 with the challenge"
		    : resp->status == 400 || resp->status == 403
		        ? "400/403 stops the enrollment: answer 401 with the "
		          "challenge to a POST without a bearer token"
		    : resp->status >= 300 && resp->status < 400
		        ? "set BaseURL to the final URL: answer the POST "
		          "with 401 directly"
		        : "answer the POST without a bearer token with 401 "
		          "and the WWW-Authenticate challenge",
		    "HTTP %ld, expected 401", resp->status);
		goto out_free;
	}
	add(wk->r, EB_DISCOVER_PASS, "enroll-status", NULL, "HTTP 401");
	n = eb_http_response_header_count(resp, "WWW-Authenticate");
	for (i = 0; i < n && i < sizeof(vals) / sizeof(vals[0]); i++)
		vals[i] =
		    eb_http_response_header_nth(resp, "WWW-Authenticate", i);
	eb_discover_check_challenge(vals, n, wk->r);
	if ((esso = eb_http_response_header(resp, "X-Apple-MDM-ESSO")) != NULL)
		check_esso(wk, esso, 0);
	esso = eb_http_response_header(resp, "X-Apple-MDM-ESSO-Developer");
	if (esso != NULL)
		check_esso(wk, esso, 1);
out_free:
	eb_http_response_free(resp);
}

/* ---- output and command line -----------------------------------------------
 */

static void
print_text(const struct eb_discover_report *r, size_t *printed)
{
	const struct eb_discover_check *c;

	for (; *printed < r->n; (*printed)++) {
		c = &r->checks[*printed];
		printf("%s %s: %s\n", eb_discover_result_name(c->result),
		       c->name, c->detail);
		if (c->hint != NULL && (c->result == EB_DISCOVER_FAIL ||
		                        c->result == EB_DISCOVER_WARN))
			printf("  hint: %s\n", c->hint);
	}
	fflush(stdout);
}

static int
print_json(const struct eb_discover_report *r, const char *id, const char *url,
           int ok)
{
	json_t *root, *arr, *o;
	char *s, res[8];
	size_t i, j;
	int rc = -1;

	root = json_pack("{s:s, s:s, s:b}", "identifier", id, "url", url, "ok",
	                 ok);
	arr = json_array();
	if (root == NULL || arr == NULL)
		goto out_free;
	for (i = 0; i < r->n; i++) {
		snprintf(res, sizeof(res), "%s",
		         eb_discover_result_name(r->checks[i].result));
		for (j = 0; res[j] != '\0'; j++)
			res[j] = (char)(res[j] - 'A' + 'a');
		o = json_pack("{s:s, s:s, s:s}", "name", r->checks[i].name,
		              "result", res, "detail", r->checks[i].detail);
		if (o == NULL)
			goto out_free;
		if (r->checks[i].hint != NULL)
			json_object_set_new(o, "hint",
			                    json_string(r->checks[i].hint));
		json_array_append_new(arr, o);
	}
	json_object_set(root, "checks", arr);
	if ((s = json_dumps(root, JSON_INDENT(2))) == NULL)
		goto out_free;
	printf("%s\n", s);
	free(s); /* allocated by jansson */
	rc = 0;
out_free:
	json_decref(arr);
	json_decref(root);
	return rc;
}

static void
usage(void)
{
	fprintf(
	    stderr,
	    "usage: enrollbridge discover USER@DOMAIN [--base URL] "
	    "[--model-family F]\n"
	    "                             [--cafile PEM] [--timeout SECONDS] "
	    "[--json]\n"
	    "  F: iPhone, iPad, Mac, AppleTV, Watch, RealityDevice\n");
}

struct args {
	const char *id;
	const char *base;
	const char *family;
	const char *cafile;
	int timeout;
	int json;
};

/* 0, 1 for --help, -1 on a usage error (message printed). */
static int
parse_args(int argc, char **argv, struct args *a)
{
	const char *v;
	char *end;
	int i = 1, missing = 0;
	long t;

	memset(a, 0, sizeof(*a));
	a->timeout = 10;
	if (i < argc && strcmp(argv[i], "discover") == 0)
		i++;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			return 1;
		if (strcmp(argv[i], "--json") == 0) {
			a->json = 1;
		} else if ((v = eb_cli_optval(argc, argv, &i, "--base",
		                              &missing))) {
			a->base = v;
		} else if ((v = eb_cli_optval(argc, argv, &i, "--model-family",
		                              &missing))) {
			a->family = v;
		} else if ((v = eb_cli_optval(argc, argv, &i, "--cafile",
		                              &missing))) {
			a->cafile = v;
		} else if ((v = eb_cli_optval(argc, argv, &i, "--timeout",
		                              &missing))) {
			t = strtol(v, &end, 10);
			if (*v == '\0' || *end != '\0' || t < 1 || t > 600) {
				fprintf(stderr,
				        "discover: bad --timeout "
				        "\"%s\"\n",
				        v);
				return -1;
			}
			a->timeout = (int)t;
		} else if (missing) {
			fprintf(stderr, "discover: %s needs a value\n",
			        argv[i]);
			return -1;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "discover: unknown option %s\n",
			        argv[i]);
			return -1;
		} else if (a->id != NULL) {
			fprintf(stderr, "discover: one identifier only\n");
			return -1;
		} else {
			a->id = argv[i];
		}
	}
	if (a->id == NULL) {
		fprintf(stderr, "discover: missing USER@DOMAIN\n");
		return -1;
	}
	return 0;
}

/* The discovery URL for a, or NULL (usage error printed). */
char *
eb_discover_url(const char *base, const char *domain, const char *id,
                const char *family)
{
	struct eb_buf b;
	size_t n;

	eb_buf_init(&b, 8192);
	if (base != NULL) {
		n = strlen(base);
		while (n > 0 && base[n - 1] == '/')
			n--;
		if (eb_buf_add(&b, base, n) == -1)
			goto out_free;
	} else if (eb_buf_printf(&b, "https://%s", domain) == -1) {
		goto out_free;
	}
	if (eb_buf_addstr(&b, "/.well-known/com.apple.remotemanagement"
	                      "?user-identifier=") == -1 ||
	    eb_http_urlencode(&b, id) == -1)
		goto out_free;
	if (family != NULL && (eb_buf_addstr(&b, "&model-family=") == -1 ||
	                       eb_http_urlencode(&b, family) == -1))
		goto out_free;
	return eb_buf_detach(&b, NULL);
out_free:
	eb_buf_finish(&b);
	return NULL;
}

int
eb_cli_discover(int argc, char **argv)
{
	struct eb_discover_report r;
	struct eb_discover_server server = {NULL, NULL};
	struct args a;
	struct walk wk;
	char *local = NULL, *domain = NULL, *url = NULL, why[200];
	size_t printed = 0;
	int rc;

	if ((rc = parse_args(argc, argv, &a)) != 0) {
		usage();
		return rc == 1 ? 0 : 2;
	}
	if (eb_str_split_identifier(a.id, &local, &domain) == -1) {
		fprintf(
		    stderr,
		    "discover: \"%s\" is not an identifier a device accepts "
		    "(one '@', a fully qualified domain)\n",
		    a.id);
		return 2;
	}
	rc = 2;
	if (a.family != NULL && !eb_cli_family_ok(a.family)) {
		fprintf(stderr, "discover: unknown model family \"%s\"\n",
		        a.family);
		usage();
		goto out_free;
	}
	if (a.base != NULL && strncasecmp(a.base, "https://", 8) != 0 &&
	    strncasecmp(a.base, "http://", 7) != 0) {
		fprintf(stderr, "discover: --base must be an http(s) URL\n");
		goto out_free;
	}
	if ((url = eb_discover_url(a.base, domain, a.id, a.family)) == NULL) {
		fprintf(stderr, "discover: URL too long or out of memory\n");
		goto out_free;
	}
	if (eb_http_client_global_init() == -1) {
		fprintf(stderr, "discover: cannot initialise HTTP\n");
		goto out_free;
	}

	eb_discover_report_init(&r);
	wk.cafile = a.cafile;
	wk.timeout = a.timeout;
	wk.family = a.family;
	wk.r = &r;
	add(&r, EB_DISCOVER_INFO, "request", NULL, "GET %s", url);
	if (!eb_wwwauth_url_ok(url, why, sizeof(why)))
		add(&r, EB_DISCOVER_WARN, "url",
		    "devices only ever query https://<domain>", "%s", why);
	if (!a.json)
		print_text(&r, &printed);
	if (check_discovery(&wk, url, &server) == 0 ||
	    server.base_url != NULL) {
		if (!a.json)
			print_text(&r, &printed);
		add(&r, EB_DISCOVER_INFO, "enroll-request", NULL,
		    "POST %.300s (no token, like a device's first request)",
		    server.base_url);
		check_enroll(&wk, server.base_url);
	}
	if (r.oom)
		add(&r, EB_DISCOVER_FAIL, "internal", NULL, "out of memory");
	rc = r.nfail > 0 || r.oom ? 1 : 0;
	if (a.json) {
		print_json(&r, a.id, url, rc == 0);
	} else {
		print_text(&r, &printed);
		if (rc == 0)
			printf("OK: every check passed (%zu warning%s)\n",
			       r.nwarn, r.nwarn == 1 ? "" : "s");
		else
			printf("FAILED: %zu check%s failed\n", r.nfail,
			       r.nfail == 1 ? "" : "s");
	}
	eb_discover_server_finish(&server);
	eb_discover_report_finish(&r);
	eb_http_client_global_cleanup();
out_free:
	eb_free(url);
	eb_free(local);
	eb_free(domain);
	return rc;
}
