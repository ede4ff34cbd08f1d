/*
 * WWW-Authenticate for Apple account-driven enrollment: builder, tolerant
 * cursor-style parser with a strict mode, and the semantic check of an
 * Apple challenge. See wwwauth.h. RFC 7235 section 2.1 grammar:
 *
 *	challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
 *	auth-param = token BWS "=" BWS ( token / quoted-string )
 *
 * token68 credentials and several challenges in one header are refused:
 * Apple's challenge is one Bearer challenge with parameters.
 */
#include "apple/wwwauth.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/str.h"

/* A parse in progress. */
struct cursor {
	const char *s;
	size_t len;
	size_t i;
	char *err;
	size_t errlen;
};

/* RFC 7230 tchar */
static int
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Skip blanks; returns how many, and whether a tab was among them. */
static size_t
skip_ows(struct cursor *c, int *tab)
{
	size_t n = 0;

	while (c->i < c->len && is_ows((unsigned char)c->s[c->i])) {
		if (c->s[c->i] == '\t' && tab != NULL)
			*tab = 1;
		c->i++;
		n++;
	}
	return n;
}

static size_t
take_token(struct cursor *c)
{
	size_t start = c->i;

	while (c->i < c->len && is_tchar((unsigned char)c->s[c->i]))
		c->i++;
	return c->i - start;
}

/* A value we can write inside quotes without escaping. */
static int
quotable(const char *v)
{
	const unsigned char *p;

	for (p = (const unsigned char *)v; *p != '\0'; p++)
		if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
			return 0;
	return 1;
}

/*
 * Read a quoted-string at the cursor (on the opening quote) into a fresh
 * unescaped string. Returns NULL on error (message set) or no memory.
 */
static char *
take_quoted(struct cursor *c, unsigned *devs)
{
	struct eb_buf b;
	unsigned char ch;

	eb_buf_init(&b, EB_WWWAUTH_MAX_LEN);
	c->i++; /* opening quote */
	while (c->i < c->len) {
		ch = (unsigned char)c->s[c->i];
		if (ch == '"') {
			c->i++;
			return eb_buf_detach(&b, NULL);
		}
		if (ch == '\\') {
			*devs |= EB_WWWAUTH_DEV_ESCAPE;
			if (++c->i == c->len)
				break;
			ch = (unsigned char)c->s[c->i];
			/* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
			if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
				eb_errf(c->err, c->errlen,
				        "control character in quoted value at "
				        "offset %zu",
				        c->i);
				goto out_free;
			}
		} else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			eb_errf(
			    c->err, c->errlen,
			    "control character in quoted value at offset %zu",
			    c->i);
			goto out_free;
		}
		if (eb_buf_addc(&b, (char)ch) == -1) {
			eb_errf(c->err, c->errlen, "out of memory");
			goto out_free;
		}
		c->i++;
	}
	eb_errf(c->err, c->errlen, "unterminated quoted value");
out_free:
	eb_buf_finish(&b);
	return NULL;
}

static int
add_param(struct eb_wwwauth *w, struct cursor *c, char *name, char *value)
{
	size_t i;

	for (i = 0; i < w->nparams; i++) {
		if (strcmp(w->params[i].name, name) == 0) {
			eb_errf(c->err, c->errlen, "duplicate parameter \"%s\"",
			        name);
			goto out_free;
		}
	}
	if (w->nparams == EB_WWWAUTH_MAX_PARAMS) {
		eb_errf(c->err, c->errlen, "more than %d parameters",
		        EB_WWWAUTH_MAX_PARAMS);
		goto out_free;
	}
	w->params[w->nparams].name = name;
	w->params[w->nparams].value = value;
	w->nparams++;
	return 0;
out_free:
	eb_free(name);
	eb_free(value);
	return -1;
}

/* One auth-param at the cursor; 0 or -1. */
static int
parse_param(struct eb_wwwauth *w, struct cursor *c)
{
	size_t start = c->i, n, j;
	char *name, *value;
	int ows = 0;

	if ((n = take_token(c)) == 0) {
		eb_errf(c->err, c->errlen,
		        "expected a parameter name at offset %zu", c->i);
		return -1;
	}
	if (skip_ows(c, NULL) > 0)
		ows = 1;
	if (c->i == c->len || c->s[c->i] != '=') {
		eb_errf(c->err, c->errlen,
		        "expected '=' after \"%.*s\" at offset %zu (token68 "
		        "credentials or a second challenge?)",
		        (int)(n > 64 ? 64 : n), c->s + start, c->i);
		return -1;
	}
	c->i++;
	if (skip_ows(c, NULL) > 0)
		ows = 1;
	if (ows)
		w->deviations |= EB_WWWAUTH_DEV_WHITESPACE;
	if ((name = eb_strndup(c->s + start, n)) == NULL) {
		eb_errf(c->err, c->errlen, "out of memory");
		return -1;
	}
	for (j = 0; j < n; j++)
		if (name[j] >= 'A' && name[j] <= 'Z')
			w->deviations |= EB_WWWAUTH_DEV_NAME_CASE;
	eb_str_lower(name);

	if (c->i < c->len && c->s[c->i] == '"') {
		value = take_quoted(c, &w->deviations);
		if (value == NULL) {
			eb_free(name);
			return -1;
		}
	} else {
		start = c->i;
		if ((n = take_token(c)) == 0) {
			eb_errf(c->err, c->errlen,
			        "missing value for \"%s\" at offset %zu", name,
			        c->i);
			eb_free(name);
			return -1;
		}
		w->deviations |= EB_WWWAUTH_DEV_UNQUOTED;
		if ((value = eb_strndup(c->s + start, n)) == NULL) {
			eb_errf(c->err, c->errlen, "out of memory");
			eb_free(name);
			return -1;
		}
	}
	return add_param(w, c, name, value);
}

int
eb_wwwauth_parse(struct eb_wwwauth *w, const char *s, size_t len,
                 unsigned flags, char *err, size_t errlen)
{
	struct cursor c = {s, len, 0, err, errlen};
	size_t n, before, after;
	int tab = 0;

	memset(w, 0, sizeof(*w));
	eb_errf(err, errlen, "%s", "");
	if (len > EB_WWWAUTH_MAX_LEN) {
		eb_errf(err, errlen, "challenge longer than %d bytes",
		        EB_WWWAUTH_MAX_LEN);
		return -1;
	}
	if (skip_ows(&c, NULL) > 0)
		w->deviations |= EB_WWWAUTH_DEV_WHITESPACE;
	if ((n = take_token(&c)) == 0) {
		eb_errf(err, errlen, "no authentication scheme");
		return -1;
	}
	if ((w->scheme = eb_strndup(s + c.i - n, n)) == NULL) {
		eb_errf(err, errlen, "out of memory");
		return -1;
	}
	if (strcmp(w->scheme, "Bearer") != 0)
		w->deviations |= eb_str_ieq(w->scheme, "Bearer")
		                     ? EB_WWWAUTH_DEV_SCHEME_CASE
		                     : EB_WWWAUTH_DEV_SCHEME;
	n = skip_ows(&c, &tab);
	if (c.i == c.len) {
		if (n > 0)
			w->deviations |= EB_WWWAUTH_DEV_WHITESPACE;
		goto out_done;
	}
	if (n == 0) {
		eb_errf(err, errlen,
		        "expected a blank after the scheme at offset %zu", c.i);
		return -1;
	}
	if (n != 1 || tab)
		w->deviations |= EB_WWWAUTH_DEV_SEPARATOR;

	for (;;) {
		if (s[c.i] == ',') {
			/* empty list element, allowed by RFC 7230 #rule */
			w->deviations |= EB_WWWAUTH_DEV_EMPTY_ELEMENT;
			c.i++;
			skip_ows(&c, NULL);
			if (c.i == c.len)
				break;
			continue;
		}
		if (parse_param(w, &c) == -1)
			return -1;
		before = skip_ows(&c, NULL);
		if (c.i == c.len) {
			if (before > 0)
				w->deviations |= EB_WWWAUTH_DEV_WHITESPACE;
			break;
		}
		if (s[c.i] != ',') {
			eb_errf(err, errlen,
			        "expected ',' after a parameter at offset %zu "
			        "(a second challenge?)",
			        c.i);
			return -1;
		}
		c.i++;
		tab = 0;
		after = skip_ows(&c, &tab);
		if (c.i == c.len) {
			w->deviations |= EB_WWWAUTH_DEV_EMPTY_ELEMENT;
			break;
		}
		if (before != 0 || after != 1 || tab)
			w->deviations |= EB_WWWAUTH_DEV_SEPARATOR;
	}
out_done:
	if ((flags & EB_WWWAUTH_STRICT) && w->deviations != 0) {
		char what[512];

		eb_wwwauth_describe(w->deviations, what, sizeof(what));
		eb_errf(err, errlen, "not Apple's exact form: %s", what);
		return -1;
	}
	return 0;
}

void
eb_wwwauth_finish(struct eb_wwwauth *w)
{
	size_t i;

	eb_free(w->scheme);
	for (i = 0; i < w->nparams; i++) {
		eb_free(w->params[i].name);
		eb_free(w->params[i].value);
	}
	memset(w, 0, sizeof(*w));
}

const char *
eb_wwwauth_param(const struct eb_wwwauth *w, const char *name)
{
	size_t i;

	for (i = 0; i < w->nparams; i++)
		if (eb_str_ieq(w->params[i].name, name))
			return w->params[i].value;
	return NULL;
}

enum eb_wwwauth_method
eb_wwwauth_method(const struct eb_wwwauth *w)
{
	const char *m = eb_wwwauth_param(w, "method");

	if (m == NULL)
		return EB_WWWAUTH_METHOD_UNKNOWN;
	if (strcmp(m, "apple-as-web") == 0)
		return EB_WWWAUTH_METHOD_AS_WEB;
	if (strcmp(m, "apple-oauth2") == 0)
		return EB_WWWAUTH_METHOD_OAUTH2;
	return EB_WWWAUTH_METHOD_UNKNOWN;
}

/* Append `, name="value"` (no comma for the first); 0 or -1. */
static int
append_param(struct eb_buf *b, int first, const char *name, const char *value)
{
	if (value == NULL || !quotable(value))
		return -1;
	return eb_buf_printf(b, "%s%s=\"%s\"", first ? " " : ", ", name, value);
}

char *
eb_wwwauth_build(const struct eb_wwwauth_challenge *ch)
{
	struct eb_buf b;
	int rc = -1;

	eb_buf_init(&b, EB_WWWAUTH_MAX_LEN);
	if (eb_buf_addstr(&b, "Bearer") == -1)
		goto out_free;
	switch (ch->method) {
	case EB_WWWAUTH_METHOD_AS_WEB:
		if (ch->url == NULL || ch->url[0] == '\0')
			goto out_free;
		rc = append_param(&b, 1, "method", "apple-as-web");
		if (rc == 0)
			rc = append_param(&b, 0, "url", ch->url);
		break;
	case EB_WWWAUTH_METHOD_OAUTH2:
		if (ch->authorization_url == NULL ||
		    ch->authorization_url[0] == '\0' || ch->token_url == NULL ||
		    ch->token_url[0] == '\0' || ch->redirect_url == NULL ||
		    ch->redirect_url[0] == '\0' || ch->client_id == NULL ||
		    ch->client_id[0] == '\0')
			goto out_free;
		rc = append_param(&b, 1, "method", "apple-oauth2");
		if (rc == 0)
			rc = append_param(&b, 0, "authorization-url",
			                  ch->authorization_url);
		if (rc == 0)
			rc = append_param(&b, 0, "token-url", ch->token_url);
		if (rc == 0)
			rc = append_param(&b, 0, "redirect-url",
			                  ch->redirect_url);
		if (rc == 0)
			rc = append_param(&b, 0, "client-id", ch->client_id);
		if (rc == 0)
			rc = append_param(&b, 0, "scope", ch->scope);
		break;
	case EB_WWWAUTH_METHOD_UNKNOWN:
		break;
	}
	if (rc == 0)
		return eb_buf_detach(&b, NULL);
out_free:
	eb_buf_finish(&b);
	return NULL;
}

char *
eb_wwwauth_format(const struct eb_wwwauth *w)
{
	struct eb_buf b;
	size_t i;

	eb_buf_init(&b, EB_WWWAUTH_MAX_LEN);
	if (w->scheme == NULL || eb_buf_addstr(&b, w->scheme) == -1)
		goto out_free;
	for (i = 0; i < w->nparams; i++)
		if (append_param(&b, i == 0, w->params[i].name,
		                 w->params[i].value) == -1)
			goto out_free;
	return eb_buf_detach(&b, NULL);
out_free:
	eb_buf_finish(&b);
	return NULL;
}

static int
is_loopback_host(const char *h, size_t n)
{
	size_t i, dots = 0;

	if (n == 9 && strncasecmp(h, "localhost", 9) == 0)
		return 1;
	if (n == 5 && memcmp(h, "[::1]", 5) == 0)
		return 1;
	if (n < 7 || memcmp(h, "127.", 4) != 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (h[i] == '.')
			dots++;
		else if (h[i] < '0' || h[i] > '9')
			return 0;
	}
	return dots == 3;
}

int
eb_wwwauth_url_ok(const char *url, char *err, size_t errlen)
{
	const char *auth, *end, *host, *hend, *p;
	long port;
	int https;

	if (url == NULL || url[0] == '\0') {
		eb_errf(err, errlen, "empty URL");
		return 0;
	}
	for (p = url; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
			eb_errf(err, errlen,
			        "URL contains a blank or control character");
			return 0;
		}
	}
	if (strncasecmp(url, "https://", 8) == 0) {
		https = 1;
		auth = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		https = 0;
		auth = url + 7;
	} else {
		eb_errf(err, errlen, "not an absolute https URL");
		return 0;
	}
	end = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', (size_t)(end - auth)) != NULL) {
		eb_errf(err, errlen, "URL carries a user name or password");
		return 0;
	}
	host = auth;
	if (*host == '[') {
		hend = memchr(host, ']', (size_t)(end - host));
		if (hend == NULL) {
			eb_errf(err, errlen, "bad IPv6 address in URL");
			return 0;
		}
		hend++;
	} else {
		hend = memchr(host, ':', (size_t)(end - host));
		if (hend == NULL)
			hend = end;
	}
	if (hend == host) {
		eb_errf(err, errlen, "URL has no host");
		return 0;
	}
	if (hend < end) {
		if (*hend != ':' || hend + 1 == end) {
			eb_errf(err, errlen, "bad port in URL");
			return 0;
		}
		port = 0;
		for (p = hend + 1; p < end; p++) {
			if (*p < '0' || *p > '9' || p - hend > 5)
				break;
			port = port * 10 + (*p - '0');
		}
		if (p < end || port == 0 || port > 65535) {
			eb_errf(err, errlen, "bad port in URL");
			return 0;
		}
	}
	if (!https && !is_loopback_host(host, (size_t)(hend - host))) {
		eb_errf(
		    err, errlen,
		    "http:// is only acceptable for a loopback host; devices "
		    "require https");
		return 0;
	}
	return 1;
}

/* The named parameter, present and non-empty; else err and NULL. */
static const char *
need(const struct eb_wwwauth *w, const char *name, char *err, size_t errlen)
{
	const char *v = eb_wwwauth_param(w, name);

	if (v == NULL || v[0] == '\0') {
		eb_errf(err, errlen, "%s challenge without a %s parameter",
		        eb_wwwauth_param(w, "method"), name);
		return NULL;
	}
	return v;
}

static int
check_url_param(const struct eb_wwwauth *w, const char *name, char *err,
                size_t errlen)
{
	char why[160];
	const char *v;

	if ((v = need(w, name, err, errlen)) == NULL)
		return -1;
	if (!eb_wwwauth_url_ok(v, why, sizeof(why))) {
		eb_errf(err, errlen, "%s \"%.200s\": %s", name, v, why);
		return -1;
	}
	return 0;
}

int
eb_wwwauth_check_apple(const struct eb_wwwauth *w, char *err, size_t errlen)
{
	const char *m;

	if (w->scheme == NULL || strcmp(w->scheme, "Bearer") != 0) {
		eb_errf(err, errlen,
		        "scheme is \"%.40s\"; the device requires exactly "
		        "\"Bearer\"",
		        w->scheme != NULL ? w->scheme : "");
		return -1;
	}
	if ((m = eb_wwwauth_param(w, "method")) == NULL) {
		eb_errf(err, errlen, "no method parameter");
		return -1;
	}
	switch (eb_wwwauth_method(w)) {
	case EB_WWWAUTH_METHOD_AS_WEB:
		return check_url_param(w, "url", err, errlen);
	case EB_WWWAUTH_METHOD_OAUTH2:
		if (check_url_param(w, "authorization-url", err, errlen) ||
		    check_url_param(w, "token-url", err, errlen) ||
		    need(w, "redirect-url", err, errlen) == NULL ||
		    need(w, "client-id", err, errlen) == NULL)
			return -1;
		if (eb_wwwauth_param(w, "scope") == NULL) {
			eb_errf(
			    err, errlen,
			    "apple-oauth2 challenge without a scope parameter");
			return -1;
		}
		return 0;
	case EB_WWWAUTH_METHOD_UNKNOWN:
		break;
	}
	eb_errf(
	    err, errlen,
	    "unknown method \"%.60s\" (expected apple-as-web or apple-oauth2)",
	    m);
	return -1;
}

void
eb_wwwauth_describe(unsigned devs, char *out, size_t outlen)
{
	static const struct {
		unsigned bit;
		const char *text;
	} tab[] = {
	    {EB_WWWAUTH_DEV_SCHEME_CASE,
	     "scheme is not spelled exactly \"Bearer\""},
	    {EB_WWWAUTH_DEV_SCHEME, "scheme is not Bearer"},
	    {EB_WWWAUTH_DEV_UNQUOTED, "a value is not quoted"},
	    {EB_WWWAUTH_DEV_SEPARATOR,
	     "parameters are not separated by exactly \", \""},
	    {EB_WWWAUTH_DEV_WHITESPACE,
	     "extra blanks around '=' or at either end"},
	    {EB_WWWAUTH_DEV_ESCAPE, "a quoted value uses backslash escapes"},
	    {EB_WWWAUTH_DEV_EMPTY_ELEMENT,
	     "empty list element or trailing comma"},
	    {EB_WWWAUTH_DEV_NAME_CASE, "a parameter name is not lower-case"},
	};
	size_t i, used = 0;
	int n;

	if (outlen == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		if (!(devs & tab[i].bit))
			continue;
		n = snprintf(out + used, outlen - used, "%s%s",
		             used > 0 ? "; " : "", tab[i].text);
		if (n < 0 || (size_t)n >= outlen - used)
			return;
		used += (size_t)n;
	}
}
