/*
 * The steps of `enrollbridge device-sim enroll` (see devicesim.c), in the
 * order a device takes them: discovery, the first POST and its challenge
 * (with the Enrollment SSO document), the web sign-in for apple-as-web or
 * apple-oauth2 (code, token, refresh), the second POST and the profile's
 * checks, and the first check-ins and command poll at the MDM.
 */
#include "cli/devicesim_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "apple/cms.h"
#include "apple/device.h"
#include "apple/gettoken.h"
#include "apple/plist.h"
#include "apple/profile.h"
#include "apple/wwwauth.h"
#include "cli/devicesim_web.h"
#include "cli/discover.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rand.h"
#include "core/str.h"
#include "http/client.h"
#include "http/form.h"

/* ---- 1. discovery ------------------------------------------------------- */

int
eb_devsim_discovery(struct eb_devsim *s, const char *url)
{
	struct eb_discover_server server = {NULL, NULL};
	struct eb_http_response *resp;
	int rc = -1;

	eb_devsim_note(s, EB_DISCOVER_INFO, "discovery-request", NULL,
	               "GET %.600s", url);
	resp = eb_devsim_request(s, "discovery", "GET", url, NULL, NULL, 0,
	                         EB_DISCOVER_MAX_BODY, 1);
	if (resp == NULL)
		return -1;
	if (resp->status == 403) {
		eb_discover_check_refusal(resp->body, resp->body_len, &s->r);
		goto out_free;
	}
	if (resp->status != 200) {
		eb_devsim_note(s, EB_DISCOVER_FAIL, "discovery",
		               "answer 200 with the discovery document",
		               "HTTP %ld from %.300s, expected 200",
		               resp->status,
		               resp->effective_url ? resp->effective_url : url);
		goto out_free;
	}
	eb_devsim_note(s, EB_DISCOVER_PASS, "discovery", NULL,
	               "HTTP 200 in %ld ms%s", resp->total_time_ms,
	               resp->redirect_count > 0 ? " (after redirects)" : "");
	rc = eb_discover_check_content_type(
	    eb_http_response_header(resp, "Content-Type"), &s->r);
	eb_discover_check_cache_control(
	    eb_http_response_header(resp, "Cache-Control"), &s->r);
	if (eb_discover_check_body(resp->body, resp->body_len, &s->r,
	                           &server) == -1)
		rc = -1;
	if (server.version != NULL) {
		s->version = server.version;
		s->base_url = server.base_url;
		s->adde = strcmp(s->version, "mdm-adde") == 0;
	} else {
		rc = -1;
	}
out_free:
	eb_http_response_free(resp);
	return rc;
}

/* ---- 2. first POST and the challenge ----------------------------------- */

int
eb_devsim_machineinfo(struct eb_devsim *s)
{
	struct eb_device_info d;
	unsigned char rnd[8];
	char err[256], udid[40], serial[16];
	static const char alnum[] = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
	size_t i;

	memset(&d, 0, sizeof(d));
	s->product = eb_device_product_for(s->family ? s->family : "iPhone");
	d.product = s->product;
	d.version = DEVICE_BUILD;
	d.os_version = DEVICE_OS;
	d.language = "en-US";
	if (s->adde) {
		/* ADDE devices identify themselves; user enrollment never */
		if (eb_rand_bytes(rnd, sizeof(rnd)) == -1)
			return -1;
		snprintf(udid, sizeof(udid),
		         "00008110-%02X%02X%02X%02X%02X%02X%02X%02X", rnd[0],
		         rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6],
		         rnd[7]);
		s->udid = eb_strdup(s->udid_arg ? s->udid_arg : udid);
		memcpy(serial, "C02", 3);
		for (i = 0; i < 7; i++)
			serial[3 + i] = alnum[rnd[i] % (sizeof(alnum) - 1)];
		serial[10] = '\0';
		s->serial = eb_strdup(serial);
		if (s->udid == NULL || s->serial == NULL)
			return -1;
		d.udid = s->udid;
		d.serial = s->serial;
	} else if ((s->enrollment_id = eb_devsim_uuid()) == NULL) {
		return -1;
	}
	if (eb_device_machineinfo(&d, &s->mi, &s->milen, err, sizeof(err)) != 0)
		return eb_devsim_note(s, EB_DISCOVER_FAIL, "machineinfo", NULL,
		                      "cannot build a MachineInfo: %s", err);
	if (s->adde)
		eb_devsim_note(
		    s, EB_DISCOVER_INFO, "machineinfo", NULL,
		    "CMS-signed MachineInfo, %zu bytes: PRODUCT %s, VERSION "
		    "%s, UDID %s, SERIAL %s",
		    s->milen, d.product, d.version, s->udid, s->serial);
	else
		eb_devsim_note(
		    s, EB_DISCOVER_INFO, "machineinfo", NULL,
		    "CMS-signed MachineInfo, %zu bytes: PRODUCT %s, VERSION "
		    "%s, no UDID/SERIAL (user enrollment)",
		    s->milen, d.product, d.version);
	return 0;
}

static void
step_esso(struct eb_devsim *s, const char *url)
{
	struct eb_http_response *resp;
	const char *ct;
	char why[200];

	eb_devsim_note(s, EB_DISCOVER_INFO, "esso", NULL,
	               "X-Apple-MDM-ESSO: %.300s", url);
	if (!eb_wwwauth_url_ok(url, why, sizeof(why))) {
		eb_devsim_note(s, EB_DISCOVER_FAIL, "esso",
		               "the ESSO header must hold an https URL", "%s",
		               why);
		return;
	}
	resp = eb_devsim_request(s, "esso", "GET", url, NULL, NULL, 0,
	                         EB_DISCOVER_MAX_ESSO, 0);
	if (resp == NULL)
		return;
	ct = eb_http_response_header(resp, "Content-Type");
	if (resp->status != 200)
		eb_devsim_note(s, EB_DISCOVER_FAIL, "esso",
		               "serve the Enrollment SSO document with 200",
		               "HTTP %ld, expected 200", resp->status);
	else if (ct == NULL || strcmp(ct, "application/json") != 0)
		eb_devsim_note(s, EB_DISCOVER_FAIL, "esso",
		               "answer with Content-Type: application/json",
		               "\"%.200s\" is not application/json",
		               ct ? ct : "(none)");
	else
		eb_discover_check_esso_body(resp->body, resp->body_len, 0,
		                            &s->r);
	eb_http_response_free(resp);
}

int
eb_devsim_challenge(struct eb_devsim *s)
{
	static const char *const headers[] = {
	    "Content-Type: application/pkcs7-signature",
	    "User-Agent: " DEVICE_UA, NULL};
	struct eb_http_response *resp;
	const char *vals[8], *esso;
	char err[256];
	size_t n, i;
	int rc = -1;

	eb_devsim_note(s, EB_DISCOVER_INFO, "enroll-request", NULL,
	               "POST %.300s (no token, like a device's first request)",
	               s->base_url);
	resp = eb_devsim_request(s, "enroll-challenge", "POST", s->base_url,
	                         headers, s->mi, s->milen, MAX_SMALL, 0);
	if (resp == NULL)
		return -1;
	if (resp->status != 401) {
		eb_devsim_note(
		    s, EB_DISCOVER_FAIL, "enroll-challenge",
		    resp->status == 200
		        ? "a device rejects 200 here: the first POST carries "
		          "no token and must get 401 with the challenge"
		        : "answer the POST without a bearer token with 401 "
		          "and the WWW-Authenticate challenge",
		    "HTTP %ld to the first POST, expected 401", resp->status);
		goto out_free;
	}
	eb_devsim_note(s, EB_DISCOVER_PASS, "enroll-challenge", NULL,
	               "HTTP 401 to the first POST");
	n = eb_http_response_header_count(resp, "WWW-Authenticate");
	for (i = 0; i < n && i < sizeof(vals) / sizeof(vals[0]); i++)
		vals[i] =
		    eb_http_response_header_nth(resp, "WWW-Authenticate", i);
	if (eb_discover_check_challenge(vals, i, &s->r) == -1)
		goto out_free;
	/* checked strictly above: parse it again to keep its parameters */
	if (eb_wwwauth_parse(&s->w, vals[0], strlen(vals[0]), EB_WWWAUTH_STRICT,
	                     err, sizeof(err)) == -1 ||
	    eb_wwwauth_check_apple(&s->w, err, sizeof(err)) == -1) {
		eb_devsim_note(s, EB_DISCOVER_FAIL, "challenge", NULL, "%s",
		               err);
		goto out_free;
	}
	if ((esso = eb_http_response_header(resp, "X-Apple-MDM-ESSO")) != NULL)
		step_esso(s, esso);
	rc = 0;
out_free:
	eb_http_response_free(resp);
	return rc;
}

/* ---- 3. web authentication ---------------------------------------------- */

/* Read the final URL a person pastes: fresh string or NULL. */
static char *
read_pasted(struct eb_devsim *s, const char *url)
{
	char line[MAX_PASTE];
	size_t n;

	eb_devsim_note(s, EB_DISCOVER_INFO, "web-open", NULL,
	               "open this URL in a browser and sign in: %.800s", url);
	eb_devsim_flush(s);
	fprintf(stderr,
	        "\nOpen the URL above in a browser and sign in. The browser "
	        "then tries to open\nan " APPLE_SCHEME " URL: copy it (the "
	        "browser's address bar, developer tools\nor error message "
	        "shows it) and paste it here, then press Enter:\n");
	if (s->json)
		fprintf(stderr, "URL: %s\n", url);
	if (fgets(line, sizeof(line), stdin) == NULL) {
		eb_devsim_note(s, EB_DISCOVER_FAIL, "web-login", NULL,
		               "no URL pasted (end of input)");
		return NULL;
	}
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		line[--n] = '\0';
	return eb_strdup(line + strspn(line, " \t"));
}

/* Sign in at url until an apple-remotemanagement-user-login: redirect. */
static char *
sign_in(struct eb_devsim *s, const char *url)
{
	struct eb_devicesim_web_opts o;
	struct eb_devicesim_web_result res;
	const char *hint;
	char err[1024], *final;

	if (s->interactive)
		return read_pasted(s, url);
	eb_devsim_note(s, EB_DISCOVER_INFO, "web-open", NULL, "GET %.800s",
	               url);
	memset(&o, 0, sizeof(o));
	o.login = s->login;
	o.password = s->password;
	o.stop_prefix = APPLE_SCHEME;
	o.cafile = s->cafile;
	o.timeout = s->timeout;
	final = eb_devicesim_web_drive(url, &o, &res, err, sizeof(err));
	if (final != NULL) {
		eb_devsim_note(
		    s, EB_DISCOVER_PASS, "web-login", NULL,
		    "%d request%s, %d login form%s%s%s, then a redirect "
		    "to " APPLE_SCHEME,
		    res.requests, res.requests == 1 ? "" : "s", res.logins,
		    res.logins == 1 ? "" : "s",
		    s->login && res.logins ? " submitted as " : "",
		    s->login && res.logins ? s->login : "");
		return final;
	}
	switch (res.error) {
	case EB_DEVICESIM_WEB_LOGIN_FAILED:
		hint = "check --login and --password, and that the account "
		       "is enabled at the IdP";
		break;
	case EB_DEVICESIM_WEB_NEED_LOGIN:
		hint = "give --login and --password, or use --interactive";
		break;
	case EB_DEVICESIM_WEB_TRANSPORT:
		hint = "the sign-in pages must be reachable from the device "
		       "(public_url, the IdP's URLs)";
		break;
	case EB_DEVICESIM_WEB_PAGE:
		hint = "the sign-in ended on an error page: look at the "
		       "bridge's log (mapping, access policy, IdP errors); "
		       "an IdP without a plain HTML form needs --interactive";
		break;
	default:
		hint = NULL;
		break;
	}
	eb_devsim_note(s, EB_DISCOVER_FAIL, "web-login", hint, "%s", err);
	return NULL;
}

/* Parse the query of an apple-remotemanagement-user-login: URL. */
static int
final_query(struct eb_devsim *s, const char *name, const char *final,
            struct eb_form *f)
{
	const char *q = strchr(final, '?');
	char err[200];

	if (q == NULL)
		return eb_devsim_note(s, EB_DISCOVER_FAIL, name, NULL,
		                      "the final URL has no query");
	q++;
	if (eb_form_parse(q, strcspn(q, "#"), f, err, sizeof(err)) == -1)
		return eb_devsim_note(s, EB_DISCOVER_FAIL, name, NULL,
		                      "the final URL's query is malformed: %s",
		                      err);
	return 0;
}

static int
url_safe(const char *t)
{
	return t[0] != '\0' &&
	       strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                 "0123456789-._~") == strlen(t);
}

int
eb_devsim_as_web(struct eb_devsim *s)
{
	const char *u = eb_wwwauth_param(&s->w, "url"), *tok;
	struct eb_form f;
	struct eb_buf b;
	char *final = NULL, desc[64];
	int rc = -1;

	/* the device REPLACES the url's query with its own */
	eb_buf_init(&b, 16384);
	if (eb_buf_add(&b, u, strcspn(u, "?#")) == -1 ||
	    eb_buf_addstr(&b, "?user-identifier=") == -1 ||
	    eb_http_urlencode(&b, s->id) == -1) {
		eb_buf_finish(&b);
		return eb_devsim_note(s, EB_DISCOVER_FAIL, "web-open", NULL,
		                      "challenge url too long");
	}
	final = sign_in(s, eb_buf_str(&b));
	eb_buf_finish(&b);
	if (final == NULL)
		return -1;
	if (!eb_str_has_prefix(final, APPLE_RESULT)) {
		eb_devsim_note(s, EB_DISCOVER_FAIL, "web-result",
		               "finish apple-as-web with 308 to " APPLE_RESULT
		               "access-token=<token>",
		               "the sign-in ended at \"%.200s...\"", final);
		goto out_free;
	}
	if (final_query(s, "web-result", final, &f) == -1)
		goto out_free;
	tok = eb_form_get(&f, "access-token");
	if (tok == NULL || !url_safe(tok)) {
		eb_devsim_note(s, EB_DISCOVER_FAIL, "web-result",
		               "the access-token must be present and URL-safe "
		               "([A-Za-z0-9-._~])",
		               tok == NULL
		                   ? "no access-token in the final URL"
		                   : "the access-token is not URL-safe");
	} else if ((s->token = eb_strdup(tok)) == NULL) {
		s->r.oom = 1;
	} else {
		eb_devsim_note(
		    s, EB_DISCOVER_PASS, "web-result", NULL,
		    APPLE_RESULT "access-token=<%s>",
		    eb_devsim_secret_desc(s->token, desc, sizeof(desc)));
		rc = 0;
	}
	eb_form_finish(&f);
out_free:
	eb_free_secret_str(final);
	return rc;
}

/* POST a token request; on success *out is the JSON object. 0 or -1. */
static int
token_request(struct eb_devsim *s, const char *name, const char *const *kv,
              json_t **out)
{
	static const char *const headers[] = {
	    "Content-Type: application/x-www-form-urlencoded",
	    "Accept: application/json", "User-Agent: " DEVICE_UA, NULL};
	const char *url = eb_wwwauth_param(&s->w, "token-url"), *e, *d;
	struct eb_http_response *resp;
	json_error_t jerr;
	json_t *j = NULL;
	char *body;
	int rc = -1;

	*out = NULL;
	if ((body = eb_http_form_encode(kv)) == NULL) {
		s->r.oom = 1;
		return -1;
	}
	resp = eb_devsim_request(s, name, "POST", url, headers, body,
	                         strlen(body), MAX_SMALL, 0);
	eb_free_secret_str(body);
	if (resp == NULL)
		return -1;
	j = json_loadb(resp->body, resp->body_len, 0, &jerr);
	if (resp->status != 200) {
		e = json_string_value(json_object_get(j, "error"));
		d = json_string_value(json_object_get(j, "error_description"));
		eb_devsim_note(
		    s, EB_DISCOVER_FAIL, name,
		    "the token endpoint refused the request (RFC 6749 "
		    "error); see the bridge's log",
		    "HTTP %ld from %.300s: error=%.100s%s%.200s", resp->status,
		    url, e ? e : "(none)", d ? ": " : "", d ? d : "");
		goto out_free;
	}
	if (!json_is_object(j)) {
		eb_devsim_note(s, EB_DISCOVER_FAIL, name, NULL,
		               "HTTP 200 without a JSON object");
		goto out_free;
	}
	*out = j;
	j = NULL;
	rc = 0;
out_free:
	json_decref(j);
	eb_http_response_free(resp);
	return rc;
}

/* Check a token response and take its tokens. 0 or -1. */
static int
take_tokens(struct eb_devsim *s, const char *name, json_t *j, const char *verb)
{
	const char *tt = json_string_value(json_object_get(j, "token_type"));
	const char *at = json_string_value(json_object_get(j, "access_token"));
	const char *rt = json_string_value(json_object_get(j, "refresh_token"));
	json_t *ei = json_object_get(j, "expires_in");
	char d1[64], d2[64];

	if (tt == NULL || strcmp(tt, "Bearer") != 0)
		return eb_devsim_note(
		    s, EB_DISCOVER_FAIL, name, NULL,
		    "token_type is \"%.50s\", expected \"Bearer\"",
		    tt ? tt : "(none)");
	if (at == NULL || at[0] == '\0')
		return eb_devsim_note(s, EB_DISCOVER_FAIL, name, NULL,
		                      "no access_token");
	if (!json_is_integer(ei) || json_integer_value(ei) <= 0)
		return eb_devsim_note(
		    s, EB_DISCOVER_FAIL, name, NULL,
		    "expires_in is missing or not a positive integer");
	if (rt == NULL || rt[0] == '\0')
		return eb_devsim_note(
		    s, EB_DISCOVER_FAIL, name,
		    "apple-oauth2 devices renew silently with a "
		    "refresh token",
		    "no refresh_token");
	if (s->refresh != NULL && strcmp(s->refresh, rt) == 0)
		return eb_devsim_note(
		    s, EB_DISCOVER_FAIL, name,
		    "rotate refresh tokens: return a new one on every "
		    "refresh",
		    "the refresh returned the same refresh token");
	eb_free_secret_str(s->token);
	eb_free_secret_str(s->refresh);
	s->token = eb_strdup(at);
	s->refresh = eb_strdup(rt);
	if (s->token == NULL || s->refresh == NULL) {
		s->r.oom = 1;
		return -1;
	}
	return eb_devsim_note(
	    s, EB_DISCOVER_PASS, name, NULL,
	    "%s: Bearer access token (%s), expires_in %" JSON_INTEGER_FORMAT
	    ", refresh token (%s)",
	    verb, eb_devsim_secret_desc(at, d1, sizeof(d1)),
	    json_integer_value(ei), eb_devsim_secret_desc(rt, d2, sizeof(d2)));
}

int
eb_devsim_oauth2(struct eb_devsim *s)
{
	const char *au = eb_wwwauth_param(&s->w, "authorization-url");
	const char *cid = eb_wwwauth_param(&s->w, "client-id");
	const char *ru = eb_wwwauth_param(&s->w, "redirect-url");
	const char *scope = eb_wwwauth_param(&s->w, "scope");
	const char *code, *st, *e, *d;
	const char *kv[9];
	char *state = NULL, *final = NULL, *code_copy = NULL, desc[64];
	struct eb_form f;
	struct eb_buf b;
	json_t *j = NULL;
	size_t rl = strlen(ru);
	int rc = -1, have_form = 0;

	if ((state = eb_rand_token(16)) == NULL) {
		s->r.oom = 1;
		return -1;
	}
	/* the authorization-url keeps its own query items */
	eb_buf_init(&b, 16384);
	eb_buf_addstr(&b, au);
	eb_buf_addc(&b, strchr(au, '?') != NULL ? '&' : '?');
	{
		struct eb_buf q;

		eb_buf_init(&q, 8192);
		if (eb_http_form_add(&q, "response_type", "code") == -1 ||
		    eb_http_form_add(&q, "client_id", cid) == -1 ||
		    eb_http_form_add(&q, "redirect_uri", ru) == -1 ||
		    eb_http_form_add(&q, "scope", scope) == -1 ||
		    eb_http_form_add(&q, "state", state) == -1 ||
		    eb_http_form_add(&q, "login_hint", s->id) == -1 ||
		    eb_buf_addstr(&b, eb_buf_str(&q)) == -1) {
			eb_buf_finish(&q);
			eb_buf_finish(&b);
			eb_devsim_note(s, EB_DISCOVER_FAIL, "oauth2-authorize",
			               NULL, "authorization URL too long");
			goto out_free;
		}
		eb_buf_finish(&q);
	}
	final = sign_in(s, eb_buf_str(&b));
	eb_buf_finish(&b);
	if (final == NULL)
		goto out_free;
	if (strncmp(final, ru, rl) != 0 || final[rl] != '?') {
		eb_devsim_note(
		    s, EB_DISCOVER_FAIL, "oauth2-authorize",
		    "redirect to the challenge's redirect-url with "
		    "?code=...&state=...",
		    "the sign-in ended at \"%.200s...\", not at %.200s", final,
		    ru);
		goto out_free;
	}
	if (final_query(s, "oauth2-authorize", final, &f) == -1)
		goto out_free;
	have_form = 1;
	code = eb_form_get(&f, "code");
	st = eb_form_get(&f, "state");
	if ((e = eb_form_get(&f, "error")) != NULL) {
		d = eb_form_get(&f, "error_description");
		eb_devsim_note(s, EB_DISCOVER_FAIL, "oauth2-authorize", NULL,
		               "error=%.100s%s%.200s", e, d ? ": " : "",
		               d ? d : "");
		goto out_free;
	}
	if (code == NULL || code[0] == '\0') {
		eb_devsim_note(s, EB_DISCOVER_FAIL, "oauth2-authorize", NULL,
		               "no code in the redirect");
		goto out_free;
	}
	if (st == NULL || strcmp(st, state) != 0) {
		eb_devsim_note(s, EB_DISCOVER_FAIL, "oauth2-authorize",
		               "return the device's state unchanged",
		               "state %s the device's",
		               st ? "differs from" : "lacks");
		goto out_free;
	}
	eb_devsim_note(s, EB_DISCOVER_PASS, "oauth2-authorize", NULL,
	               "%.200s?code=<%s> with the device's state", ru,
	               eb_devsim_secret_desc(code, desc, sizeof(desc)));
	if ((code_copy = eb_strdup(code)) == NULL) {
		s->r.oom = 1;
		goto out_free;
	}
	kv[0] = "grant_type";
	kv[1] = "authorization_code";
	kv[2] = "code";
	kv[3] = code_copy;
	kv[4] = "redirect_uri";
	kv[5] = ru;
	kv[6] = "client_id";
	kv[7] = cid;
	kv[8] = NULL;
	if (token_request(s, "oauth2-token", kv, &j) == -1 ||
	    take_tokens(s, "oauth2-token", j, "authorization_code") == -1)
		goto out_free;
	json_decref(j);
	j = NULL;
	kv[1] = "refresh_token";
	kv[2] = "refresh_token";
	kv[3] = s->refresh;
	kv[4] = "client_id";
	kv[5] = cid;
	kv[6] = NULL;
	if (token_request(s, "oauth2-refresh", kv, &j) == -1 ||
	    take_tokens(s, "oauth2-refresh", j,
	                "refresh_token, a new refresh token") == -1)
		goto out_free;
	rc = 0;
out_free:
	json_decref(j);
	if (have_form)
		eb_form_finish(&f);
	eb_free_secret_str(code_copy);
	eb_free_secret_str(final);
	eb_free_secret_str(state);
	return rc;
}

/* ---- 4. second POST: the profile ---------------------------------------- */

static int
check_url(struct eb_devsim *s, const char *name, const char *url)
{
	char why[200];

	if (!eb_wwwauth_url_ok(url, why, sizeof(why)))
		return eb_devsim_note(
		    s, EB_DISCOVER_FAIL, name,
		    "devices reach the MDM over https (http only for "
		    "loopback tests)",
		    "%.300s: %s", url, why);
	return eb_devsim_note(s, EB_DISCOVER_PASS, name, NULL, "%.300s", url);
}

static int
check_profile(struct eb_devsim *s, const struct eb_plist *mdm)
{
	const char *want = s->adde ? "ADDE" : "BYOD";
	const char *mode =
	    eb_plist_dict_get_string(mdm, "EnrollmentMode", NULL);
	const char *mid =
	    eb_plist_dict_get_string(mdm, "AssignedManagedAppleID", NULL);
	const char *topic = eb_plist_dict_get_string(mdm, "Topic", NULL);
	const char *su = eb_plist_dict_get_string(mdm, "ServerURL", NULL);
	const char *cu = eb_plist_dict_get_string(mdm, "CheckInURL", NULL);
	int rc = 0;

	if (mode == NULL || strcmp(mode, want) != 0)
		rc |= eb_devsim_note(
		    s, EB_DISCOVER_FAIL, "enrollment-mode",
		    "EnrollmentMode must match the discovery Version "
		    "(mdm-byod: BYOD, mdm-adde: ADDE)",
		    "EnrollmentMode \"%.50s\", discovery said %s",
		    mode ? mode : "(none)", s->version);
	else
		eb_devsim_note(s, EB_DISCOVER_PASS, "enrollment-mode", NULL,
		               "%s, matching %s", mode, s->version);
	if (mid == NULL || mid[0] == '\0')
		rc |= eb_devsim_note(
		    s, EB_DISCOVER_FAIL, "managed-apple-id",
		    "the profile must name the user's Managed Apple "
		    "Account in AssignedManagedAppleID",
		    "no AssignedManagedAppleID");
	else
		eb_devsim_note(s, EB_DISCOVER_PASS, "managed-apple-id", NULL,
		               "AssignedManagedAppleID %.200s", mid);
	if (eb_plist_dict_get(mdm, "AccessRights") != NULL) {
		if (!s->adde)
			rc |= eb_devsim_note(
			    s, EB_DISCOVER_FAIL, "access-rights",
			    "remove AccessRights from user-enrollment "
			    "profiles: the device cancels otherwise",
			    "AccessRights present in a BYOD profile");
		else
			eb_devsim_note(
			    s, EB_DISCOVER_INFO, "access-rights", NULL,
			    "AccessRights present (allowed for ADDE)");
	} else {
		eb_devsim_note(s, EB_DISCOVER_PASS, "access-rights", NULL,
		               "no AccessRights%s", s->adde ? "" : " (BYOD)");
	}
	if (eb_plist_dict_get(mdm, "ManagedAppleID") != NULL)
		rc |= eb_devsim_note(
		    s, EB_DISCOVER_FAIL, "legacy-managed-apple-id",
		    "remove the old ManagedAppleID key (gone in iOS "
		    "18/macOS 15)",
		    "ManagedAppleID present");
	if (topic == NULL || !eb_str_has_prefix(topic, "com.apple.mgmt."))
		rc |= eb_devsim_note(
		    s, EB_DISCOVER_FAIL, "topic",
		    "Topic is the MDM push certificate's topic, "
		    "com.apple.mgmt.*",
		    "Topic \"%.200s\"", topic ? topic : "(none)");
	else
		eb_devsim_note(s, EB_DISCOVER_PASS, "topic", NULL, "%.200s",
		               topic);
	rc |= check_url(s, "server-url", su ? su : "");
	if (cu != NULL)
		rc |= check_url(s, "checkin-url", cu);
	if (rc == 0 &&
	    ((s->topic = eb_strdup(topic)) == NULL ||
	     (s->server_url = eb_strdup(su)) == NULL ||
	     (cu != NULL && (s->checkin_url = eb_strdup(cu)) == NULL))) {
		s->r.oom = 1;
		return -1;
	}
	return rc;
}

/* "Authorization: Bearer <token>": fresh (eb_free_secret_str) or NULL. */
static char *
bearer_header(const struct eb_devsim *s)
{
	struct eb_buf b;

	eb_buf_init(&b, 64 * 1024);
	if (eb_buf_printf(&b, "Authorization: Bearer %s", s->token) == -1) {
		eb_buf_finish_secret(&b);
		return NULL;
	}
	return eb_buf_detach(&b, NULL);
}

int
eb_devsim_profile(struct eb_devsim *s)
{
	const char *headers[4];
	struct eb_http_response *resp;
	struct eb_plist *prof = NULL, *mdm;
	enum eb_cms_status cs;
	uint8_t *content = NULL;
	size_t clen = 0;
	const char *ct, *wa;
	char *auth, err[256];
	int rc = -1;

	if ((auth = bearer_header(s)) == NULL) {
		s->r.oom = 1;
		return -1;
	}
	headers[0] = "Content-Type: application/pkcs7-signature";
	headers[1] = "User-Agent: " DEVICE_UA;
	headers[2] = auth;
	headers[3] = NULL;
	eb_devsim_note(s, EB_DISCOVER_INFO, "profile-request", NULL,
	               "POST %.300s with Authorization: Bearer", s->base_url);
	resp =
	    eb_devsim_request(s, "profile-status", "POST", s->base_url, headers,
	                      s->mi, s->milen, EB_PROFILE_MAX_BYTES, 0);
	eb_free_secret_str(auth);
	if (resp == NULL)
		return -1;
	if (resp->status != 200) {
		wa = eb_http_response_header(resp, "WWW-Authenticate");
		eb_devsim_note(
		    s, EB_DISCOVER_FAIL, "profile-status",
		    resp->status == 401
		        ? "the bridge refused the token it just issued: see "
		          "its log"
		        : "answer the POST with a valid bearer with 200 and "
		          "the profile",
		    "HTTP %ld, expected 200%s%.300s", resp->status,
		    wa ? "; WWW-Authenticate: " : "", wa ? wa : "");
		goto out_free;
	}
	ct = eb_http_response_header(resp, "Content-Type");
	if (ct == NULL || strcmp(ct, "application/x-apple-aspen-config") != 0) {
		eb_devsim_note(s, EB_DISCOVER_FAIL, "profile-status",
		               "answer with Content-Type: "
		               "application/x-apple-aspen-config",
		               "HTTP 200 with Content-Type \"%.200s\"",
		               ct ? ct : "(none)");
		goto out_free;
	}
	eb_devsim_note(s, EB_DISCOVER_PASS, "profile-status", NULL,
	               "HTTP 200 application/x-apple-aspen-config, %zu bytes",
	               resp->body_len);
	cs = eb_cms_unwrap(resp->body, resp->body_len, 0, NULL,
	                   EB_PROFILE_MAX_BYTES, &content, &clen, err,
	                   sizeof(err));
	eb_free(content);
	if (cs == EB_CMS_OK)
		eb_devsim_note(s, EB_DISCOVER_PASS, "profile-signature", NULL,
		               "CMS SignedData, signature verified");
	else if (cs == EB_CMS_NOT_CMS)
		eb_devsim_note(
		    s, EB_DISCOVER_WARN, "profile-signature",
		    "sign the profile (mdm.signing_cert / mdm.signing_key): "
		    "devices show unsigned profiles as \"Not Verified\"",
		    "an unsigned plist");
	else {
		eb_devsim_note(s, EB_DISCOVER_FAIL, "profile-signature", NULL,
		               "a CMS SignedData the device cannot use: %s",
		               err);
		goto out_free;
	}
	if ((prof = eb_profile_parse(resp->body, resp->body_len, err,
	                             sizeof(err))) == NULL) {
		eb_devsim_note(s, EB_DISCOVER_FAIL, "profile", NULL, "%s", err);
		goto out_free;
	}
	if ((mdm = eb_profile_mdm_payload(prof, err, sizeof(err))) == NULL) {
		eb_devsim_note(
		    s, EB_DISCOVER_FAIL, "profile",
		    "the profile needs exactly one com.apple.mdm payload with "
		    "ServerURL, Topic and IdentityCertificateUUID",
		    "%s", err);
		goto out_free;
	}
	ct = eb_plist_dict_get_string(prof, "PayloadDisplayName", NULL);
	eb_devsim_note(s, EB_DISCOVER_PASS, "profile", NULL,
	               "\"%.100s\" with one com.apple.mdm payload",
	               ct != NULL ? ct : "(no PayloadDisplayName)");
	rc = check_profile(s, mdm);
out_free:
	eb_plist_free(prof);
	eb_http_response_free(resp);
	return rc;
}

/* ---- 5. check-in -------------------------------------------------------- */

/* A check-in or command plist for this device: fresh XML or NULL. */
static char *
build_message(struct eb_devsim *s, const char *type, size_t *len)
{
	struct eb_plist *p;
	uint8_t *xml = NULL;
	char skel[512], *tok;
	size_t i;
	int bad = 0;

	if (strcmp(type, "TokenUpdate") == 0) {
		/* the push token is <data>: start from a parsed skeleton
		 * (the plist module has no data setter) */
		if ((tok = eb_rand_token(48)) == NULL)
			return NULL;
		for (i = 0; tok[i] != '\0'; i++)
			tok[i] = tok[i] == '-'   ? '+'
			         : tok[i] == '_' ? '/'
			                         : tok[i];
		snprintf(skel, sizeof(skel),
		         "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		         "<plist version=\"1.0\"><dict><key>Token</key>"
		         "<data>%s</data></dict></plist>\n",
		         tok);
		eb_free(tok);
		p = eb_plist_parse(skel, strlen(skel), 0, 0, NULL, 0);
	} else {
		p = eb_plist_new_dict();
	}
	if (p == NULL)
		return NULL;
	if (strcmp(type, "Idle") == 0) {
		bad |= eb_plist_dict_set_string(p, "Status", "Idle");
	} else {
		bad |= eb_plist_dict_set_string(p, "MessageType", type);
		bad |= eb_plist_dict_set_string(p, "Topic", s->topic);
	}
	if (s->adde)
		bad |= eb_plist_dict_set_string(p, "UDID", s->udid);
	else
		bad |= eb_plist_dict_set_string(p, "EnrollmentID",
		                                s->enrollment_id);
	if (strcmp(type, "Authenticate") == 0) {
		bad |=
		    eb_plist_dict_set_string(p, "BuildVersion", DEVICE_BUILD);
		bad |= eb_plist_dict_set_string(p, "OSVersion", DEVICE_OS);
		bad |= eb_plist_dict_set_string(p, "ProductName", s->product);
		if (s->adde)
			bad |= eb_plist_dict_set_string(p, "SerialNumber",
			                                s->serial);
	} else if (strcmp(type, "TokenUpdate") == 0) {
		tok = eb_devsim_uuid();
		bad |= tok == NULL
		           ? -1
		           : eb_plist_dict_set_string(p, "PushMagic", tok);
		eb_free(tok);
	} else if (strcmp(type, "GetToken") == 0) {
		bad |= eb_plist_dict_set_string(p, "TokenServiceType",
		                                EB_GETTOKEN_MAID);
	}
	if (bad != 0 || eb_plist_to_xml(p, &xml, len) == -1) {
		eb_plist_free(p);
		return NULL;
	}
	eb_plist_free(p);
	return (char *)xml;
}

/* A 403 whose JSON body's code is com.apple.unrecognized.device. */
static int
is_unrecognized(const struct eb_http_response *resp)
{
	json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
	const char *code = json_string_value(json_object_get(j, "code"));
	int yes = code != NULL && strcmp(code, EB_UNRECOGNIZED_DEVICE) == 0;

	json_decref(j);
	return yes;
}

int
eb_devsim_mdm_put(struct eb_devsim *s, const char *name, const char *type,
                  const char *url, const char *ct,
                  struct eb_http_response **keep)
{
	const char *headers[4], *wa;
	struct eb_http_response *resp;
	char *auth, *body, ctline[80];
	size_t len = 0;
	int rc = -1;

	auth = s->token != NULL ? bearer_header(s) : NULL;
	body = build_message(s, type, &len);
	if ((s->token != NULL && auth == NULL) || body == NULL) {
		eb_free_secret_str(auth);
		eb_free(body);
		s->r.oom = 1;
		return -1;
	}
	snprintf(ctline, sizeof(ctline), "Content-Type: %s", ct);
	headers[0] = ctline;
	headers[1] = "User-Agent: " MDM_UA;
	headers[2] = auth;
	headers[3] = NULL;
	resp = eb_devsim_request(s, name, "PUT", url, headers, body, len,
	                         MAX_SMALL, 0);
	eb_free_secret_str(auth);
	eb_free(body);
	if (resp == NULL) {
		eb_devsim_note(
		    s, EB_DISCOVER_INFO, name, NULL,
		    "the MDM (%.300s) is unreachable: devices reach it at "
		    "the profile's ServerURL/CheckInURL",
		    url);
		return -1;
	}
	if (resp->status == 200) {
		eb_devsim_note(s, EB_DISCOVER_PASS, name, NULL,
		               "%s: HTTP 200 from %.300s%s", type, url,
		               strcmp(type, "Idle") == 0 && resp->body_len == 0
		                   ? " (no command)"
		                   : "");
		rc = 0;
		if (keep != NULL) {
			*keep = resp;
			return 0;
		}
	} else if (resp->status == 401) {
		wa = eb_http_response_header(resp, "WWW-Authenticate");
		eb_devsim_note(
		    s, EB_DISCOVER_FAIL, name,
		    "the token from the enrollment was refused: see the "
		    "bridge's log (token binding, grant state)",
		    "%s: HTTP 401, WWW-Authenticate: %.300s", type,
		    wa ? wa : "(none)");
	} else if (resp->status == 403 && is_unrecognized(resp)) {
		s->unenrolled = 1;
		eb_devsim_note(
		    s, EB_DISCOVER_INFO, name, NULL,
		    "%s: HTTP 403 %s: the enrollment ended; a "
		    "device now removes its MDM profile (unenrolled)",
		    type, EB_UNRECOGNIZED_DEVICE);
	} else if (resp->status == 502 || resp->status == 504) {
		eb_devsim_note(
		    s, EB_DISCOVER_FAIL, name,
		    "the bridge could not reach the MDM: check mdm.upstream "
		    "and that the MDM server is up",
		    "%s: HTTP %ld from %.300s", type, resp->status, url);
	} else {
		eb_devsim_note(
		    s, EB_DISCOVER_FAIL, name,
		    "the MDM should accept the device's check-in with 200",
		    "%s: HTTP %ld from %.300s", type, resp->status, url);
	}
	eb_http_response_free(resp);
	return rc;
}

int
eb_devsim_checkin(struct eb_devsim *s)
{
	const char *url = s->checkin_url ? s->checkin_url : s->server_url;

	if (eb_devsim_mdm_put(s, "checkin-authenticate", "Authenticate", url,
	                      CT_CHECKIN, NULL) == -1 ||
	    eb_devsim_mdm_put(s, "checkin-tokenupdate", "TokenUpdate", url,
	                      CT_CHECKIN, NULL) == -1)
		return -1;
	return eb_devsim_mdm_put(s, "command-idle", "Idle", s->server_url,
	                         CT_COMMAND, NULL);
}
