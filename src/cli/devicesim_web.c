/*
 * The headless browser of device-sim (see devicesim_web.h): a cookie jar,
 * a minimal and bounded HTML form reader, and the redirect/form walk that
 * signs a test user in at an IdP and stops at the device's custom-scheme
 * redirect.
 */
#include "cli/devicesim_web.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/str.h"
#include "http/client.h"

#define MAX_COOKIES      64
#define MAX_COOKIE_BYTES 4096
#define MAX_FORMS        8 /* consent and other non-login forms per drive */
#define MAX_URL          8192

/* A Safari-like agent: some IdPs serve other pages to unknown agents. */
static const char user_agent[] =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 "
    "Safari/604.1";

/* ---- HTML forms ------------------------------------------------------- */

/* Decode the entities a form attribute may hold; others stay literal. */
static char *
decode_entities(const char *s, size_t n)
{
	static const struct {
		const char *name;
		char c;
	} ents[] = {{"amp;", '&'},   {"lt;", '<'},   {"gt;", '>'},
	            {"quot;", '"'},  {"#39;", '\''}, {"#x27;", '\''},
	            {"apos;", '\''}, {"#34;", '"'},  {"#x2F;", '/'}};
	char *out = eb_malloc(n + 1), *o = out;
	size_t i, k, l;

	if (out == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] == '&') {
			for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
				l = strlen(ents[k].name);
				if (n - i - 1 >= l &&
				    strncasecmp(s + i + 1, ents[k].name, l) ==
				        0) {
					*o++ = ents[k].c;
					i += l;
					break;
				}
			}
			if (k < sizeof(ents) / sizeof(ents[0]))
				continue;
		}
		*o++ = s[i];
	}
	*o = '\0';
	return out;
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* The attributes of one tag we care about. */
struct tag {
	char *v[5]; /* name, value, type, action, method */
	int checked;
};
static const char *const tag_attrs[] = {"name", "value", "type", "action",
                                        "method"};

static void
tag_finish(struct tag *t)
{
	size_t i;

	for (i = 0; i < 5; i++)
		eb_free(t->v[i]);
	memset(t, 0, sizeof(*t));
}

/*
 * Read the attributes of the tag whose name ends at *pp, up to its '>'.
 * Moves *pp past the tag. Returns 0, or -1 (malformed, unterminated or
 * over a limit; the tag is then ignored by the caller).
 */
static int
read_tag(const char **pp, const char *end, struct tag *t)
{
	const char *p = *pp, *n, *v;
	size_t nl, vl, i;
	char q;

	memset(t, 0, sizeof(*t));
	for (;;) {
		while (p < end && (is_blank(*p) || *p == '/'))
			p++;
		if (p >= end)
			goto out_fail;
		if (*p == '>') {
			*pp = p + 1;
			return 0;
		}
		n = p;
		while (p < end && !is_blank(*p) && *p != '=' && *p != '>' &&
		       *p != '/')
			p++;
		nl = (size_t)(p - n);
		while (p < end && is_blank(*p))
			p++;
		v = NULL;
		vl = 0;
		if (p < end && *p == '=') {
			p++;
			while (p < end && is_blank(*p))
				p++;
			if (p < end && (*p == '"' || *p == '\'')) {
				q = *p++;
				v = p;
				while (p < end && *p != q)
					p++;
				if (p >= end)
					goto out_fail;
				vl = (size_t)(p - v);
				p++;
			} else {
				v = p;
				while (p < end && !is_blank(*p) && *p != '>')
					p++;
				vl = (size_t)(p - v);
			}
		}
		if (vl > EB_DEVICESIM_WEB_MAX_VALUE)
			goto out_fail;
		if (nl == 7 && strncasecmp(n, "checked", 7) == 0)
			t->checked = 1;
		for (i = 0; i < 5; i++) {
			if (nl != strlen(tag_attrs[i]) ||
			    strncasecmp(n, tag_attrs[i], nl) != 0 ||
			    t->v[i] != NULL)
				continue;
			t->v[i] = decode_entities(v != NULL ? v : "", vl);
			if (t->v[i] == NULL)
				goto out_fail;
		}
	}
out_fail:
	tag_finish(t);
	*pp = end;
	return -1;
}

/* The next "<name" (case-insensitive, followed by a blank, '>' or '/'). */
static const char *
find_tag(const char *p, const char *end, const char *name)
{
	size_t n = strlen(name);

	for (; p < end; p++) {
		if (*p != '<' || (size_t)(end - p - 1) < n + 1 ||
		    strncasecmp(p + 1, name, n) != 0)
			continue;
		if (is_blank(p[n + 1]) || p[n + 1] == '>' || p[n + 1] == '/')
			return p;
	}
	return NULL;
}

static int
add_field(struct eb_devicesim_form *f, const char *name, const char *value,
          const char *type)
{
	struct eb_devicesim_field *x;

	if (f->n == EB_DEVICESIM_WEB_MAX_FIELDS)
		return -1;
	x = &f->f[f->n];
	x->name = eb_strdup(name);
	x->value = eb_strdup(value != NULL ? value : "");
	x->type = eb_strdup(type);
	if (x->name == NULL || x->value == NULL || x->type == NULL) {
		eb_free(x->name);
		eb_free(x->value);
		eb_free(x->type);
		return -1;
	}
	eb_str_lower(x->type);
	f->n++;
	return 0;
}

/* Read the controls of the form between p and end into f. 0 or -1. */
static int
read_controls(const char *p, const char *end, struct eb_devicesim_form *f)
{
	const char *in, *bt, *next;
	struct tag t;
	int have_submit = 0, isbutton;
	const char *type;

	for (;;) {
		in = find_tag(p, end, "input");
		bt = find_tag(p, end, "button");
		if (in == NULL && bt == NULL)
			return 0;
		isbutton = in == NULL || (bt != NULL && bt < in);
		next = (isbutton ? bt : in) + (isbutton ? 7 : 6);
		if (read_tag(&next, end, &t) == -1)
			return -1;
		p = next;
		type = t.v[2] != NULL ? t.v[2] : isbutton ? "submit" : "text";
		if (strcasecmp(type, "password") == 0)
			f->has_password = 1;
		if (t.v[0] == NULL || t.v[0][0] == '\0' ||
		    strcasecmp(type, "image") == 0 ||
		    strcasecmp(type, "reset") == 0 ||
		    strcasecmp(type, "file") == 0 ||
		    (isbutton && strcasecmp(type, "button") == 0) ||
		    ((strcasecmp(type, "checkbox") == 0 ||
		      strcasecmp(type, "radio") == 0) &&
		     !t.checked)) {
			tag_finish(&t);
			continue;
		}
		/* only the first submit button is "pressed" */
		if (strcasecmp(type, "submit") == 0) {
			if (have_submit) {
				tag_finish(&t);
				continue;
			}
			have_submit = 1;
		}
		if (add_field(f, t.v[0], t.v[1], type) == -1) {
			tag_finish(&t);
			return -1;
		}
		tag_finish(&t);
	}
}

void
eb_devicesim_form_finish(struct eb_devicesim_form *f)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		eb_free(f->f[i].name);
		eb_free_secret_str(f->f[i].value);
		eb_free(f->f[i].type);
	}
	eb_free(f->action);
	eb_free(f->method);
	memset(f, 0, sizeof(*f));
}

/* Read the form starting at p ("<form"). Moves *next past it. 0 or -1. */
static int
read_form(const char *p, const char *end, const char **next,
          struct eb_devicesim_form *f)
{
	const char *q = p + 5, *close;
	struct tag t;

	memset(f, 0, sizeof(*f));
	if (read_tag(&q, end, &t) == -1) {
		*next = end;
		return -1;
	}
	close = find_tag(q, end, "/form");
	if (close == NULL)
		close = end;
	*next = close;
	f->action = eb_strdup(t.v[3] != NULL ? t.v[3] : "");
	f->method = eb_strdup(t.v[4] != NULL ? t.v[4] : "get");
	tag_finish(&t);
	if (f->action == NULL || f->method == NULL)
		goto out_finish;
	eb_str_lower(f->method);
	if (strcmp(f->method, "get") != 0 && strcmp(f->method, "post") != 0)
		goto out_finish;
	if (read_controls(q, close, f) == -1)
		goto out_finish;
	return 0;
out_finish:
	eb_devicesim_form_finish(f);
	return -1;
}

int
eb_devicesim_form_find(const char *html, size_t len,
                       struct eb_devicesim_form *form)
{
	const char *p = html, *end = html + len, *next;
	struct eb_devicesim_form f;
	int have = 0, i;

	memset(form, 0, sizeof(*form));
	if (len > EB_DEVICESIM_WEB_MAX_PAGE)
		return -1;
	for (i = 0; i < 16 && (p = find_tag(p, end, "form")) != NULL; i++) {
		if (read_form(p, end, &next, &f) == 0) {
			if (f.has_password) {
				if (have)
					eb_devicesim_form_finish(form);
				*form = f;
				return 0;
			}
			if (!have) {
				*form = f;
				have = 1;
			} else {
				eb_devicesim_form_finish(&f);
			}
		}
		p = next;
	}
	return have ? 0 : -1;
}

/* ---- URLs --------------------------------------------------------------- */

/* Length of "scheme://authority" in an absolute http(s) URL, or 0. */
static size_t
origin_len(const char *url)
{
	const char *p = strstr(url, "://");

	if (p == NULL || (strncasecmp(url, "http://", 7) != 0 &&
	                  strncasecmp(url, "https://", 8) != 0))
		return 0;
	p += 3;
	return (size_t)(p - url) + strcspn(p, "/?#");
}

char *
eb_devicesim_web_resolve(const char *base, const char *ref)
{
	struct eb_buf b;
	size_t ol = origin_len(base), n;
	const char *slash;

	if (ol == 0 || strlen(ref) > MAX_URL)
		return NULL;
	eb_buf_init(&b, 2 * MAX_URL + 16);
	if (strncasecmp(ref, "http://", 7) == 0 ||
	    strncasecmp(ref, "https://", 8) == 0) {
		eb_buf_addstr(&b, ref);
	} else if (ref[0] == '/' && ref[1] == '/') {
		eb_buf_add(&b, base, (size_t)(strstr(base, "//") - base));
		eb_buf_addstr(&b, ref);
	} else if (ref[0] == '/') {
		eb_buf_add(&b, base, ol);
		eb_buf_addstr(&b, ref);
	} else if (ref[0] == '\0' || ref[0] == '#') {
		eb_buf_add(&b, base, strcspn(base, "#"));
	} else if (ref[0] == '?') {
		eb_buf_add(&b, base, strcspn(base, "?#"));
		eb_buf_addstr(&b, ref);
	} else {
		/* relative path: replace the last segment of base's path */
		n = strcspn(base, "?#");
		slash = base + n;
		while (slash > base + ol && slash[-1] != '/')
			slash--;
		if (slash == base + ol) {
			eb_buf_add(&b, base, ol);
			eb_buf_addc(&b, '/');
		} else {
			eb_buf_add(&b, base, (size_t)(slash - base));
		}
		eb_buf_addstr(&b, ref);
	}
	if (b.len == 0) {
		eb_buf_finish(&b);
		return NULL;
	}
	return eb_buf_detach(&b, NULL);
}

/* ---- cookies ------------------------------------------------------------ */

struct cookie {
	char *host;
	char *name;
	char *value;
};

struct jar {
	struct cookie c[MAX_COOKIES];
	size_t n;
};

/* The host of an absolute URL, lower-cased, without port: fresh or NULL. */
static char *
url_host(const char *url)
{
	const char *p = strstr(url, "://"), *at, *e;
	size_t n;
	char *h;

	if (p == NULL)
		return NULL;
	p += 3;
	n = strcspn(p, "/?#");
	at = memchr(p, '@', n);
	if (at != NULL) {
		n -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	if (*p == '[') {
		e = memchr(p, ']', n);
		n = e != NULL ? (size_t)(e - p) + 1 : n;
	} else {
		e = memchr(p, ':', n);
		n = e != NULL ? (size_t)(e - p) : n;
	}
	if ((h = eb_strndup(p, n)) != NULL)
		eb_str_lower(h);
	return h;
}

static void
jar_remove(struct jar *j, size_t i)
{
	eb_free(j->c[i].host);
	eb_free(j->c[i].name);
	eb_free_secret_str(j->c[i].value);
	j->c[i] = j->c[--j->n];
}

static void
jar_finish(struct jar *j)
{
	while (j->n > 0)
		jar_remove(j, j->n - 1);
}

/* Does this Set-Cookie attribute list delete the cookie? */
static int
cookie_expired(const char *attrs)
{
	const char *p = attrs;

	while ((p = strchr(p, ';')) != NULL) {
		p++;
		p += strspn(p, " \t");
		if (strncasecmp(p, "max-age=", 8) == 0 &&
		    (p[8] == '-' ||
		     (p[8] == '0' && (p[9] == '\0' || p[9] == ';'))))
			return 1;
		/* epoch dates are how servers clear cookies */
		if (strncasecmp(p, "expires=", 8) == 0) {
			char d[64];
			size_t n = strcspn(p + 8, ";");

			snprintf(d, sizeof(d), "%.*s", (int)(n < 63 ? n : 63),
			         p + 8);
			if (strstr(d, "1970") != NULL)
				return 1;
		}
	}
	return 0;
}

/* Take one Set-Cookie value received from url's host. */
static void
jar_store(struct jar *j, const char *host, const char *sc)
{
	size_t nl = strcspn(sc, "="), vl, i;
	const char *v;

	if (sc[nl] != '=' || nl == 0 || strlen(sc) > MAX_COOKIE_BYTES)
		return;
	v = sc + nl + 1;
	vl = strcspn(v, ";");
	while (nl > 0 && is_blank(sc[nl - 1]))
		nl--;
	for (i = 0; i < j->n; i++)
		if (strcmp(j->c[i].host, host) == 0 &&
		    strlen(j->c[i].name) == nl &&
		    strncmp(j->c[i].name, sc, nl) == 0) {
			jar_remove(j, i);
			break;
		}
	if (vl == 0 || cookie_expired(v) || j->n == MAX_COOKIES)
		return;
	j->c[j->n].host = eb_strdup(host);
	j->c[j->n].name = eb_strndup(sc, nl);
	j->c[j->n].value = eb_strndup(v, vl);
	if (j->c[j->n].host == NULL || j->c[j->n].name == NULL ||
	    j->c[j->n].value == NULL) {
		eb_free(j->c[j->n].host);
		eb_free(j->c[j->n].name);
		eb_free_secret_str(j->c[j->n].value);
		return;
	}
	j->n++;
}

/* Append "Cookie: a=1; b=2" for host to b; 0 when there is none. */
static int
jar_header(const struct jar *j, const char *host, struct eb_buf *b)
{
	size_t i;
	int any = 0;

	for (i = 0; i < j->n; i++) {
		if (strcmp(j->c[i].host, host) != 0)
			continue;
		eb_buf_printf(b, "%s%s=%s",
		              any ? "; " : "Cookie: ", j->c[i].name,
		              j->c[i].value);
		any = 1;
	}
	return any;
}

/* ---- the walk ----------------------------------------------------------- */

/* Text of the first element opened by marker (e.g. id="error"), or "". */
static void
page_text(const char *html, const char *marker, char *out, size_t outlen)
{
	const char *p = strstr(html, marker), *e;
	size_t n;

	out[0] = '\0';
	if (p == NULL || (p = strchr(p, '>')) == NULL)
		return;
	p++;
	p += strspn(p, " \t\r\n");
	e = strchr(p, '<');
	n = e != NULL ? (size_t)(e - p) : strlen(p);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

/* "title: first paragraph" of a page, for messages. */
static void
describe_page(const char *html, char *out, size_t outlen)
{
	char title[160], para[240];

	page_text(html, "<title", title, sizeof(title));
	page_text(html, "<p", para, sizeof(para));
	snprintf(out, outlen, "\"%s\"%s%s", title[0] ? title : "(no title)",
	         para[0] ? ": " : "", para);
}

static int
is_login_field(const char *name)
{
	static const char *const names[] = {"login",    "username",   "email",
	                                    "loginfmt", "identifier", "user",
	                                    NULL};
	size_t i;

	for (i = 0; names[i] != NULL; i++)
		if (strcasecmp(name, names[i]) == 0)
			return 1;
	return 0;
}

/* Fill the login form's fields and encode it into b. 0 or -1. */
static int
encode_form(const struct eb_devicesim_form *f,
            const struct eb_devicesim_web_opts *o, struct eb_buf *b)
{
	const char *v;
	size_t i;

	for (i = 0; i < f->n; i++) {
		v = f->f[i].value;
		if (f->has_password && strcmp(f->f[i].type, "password") == 0)
			v = o->password;
		else if (f->has_password && is_login_field(f->f[i].name))
			v = o->login;
		if (eb_http_form_add(b, f->f[i].name, v) == -1)
			return -1;
	}
	return 0;
}

static char *fail(struct eb_devicesim_web_result *res,
                  enum eb_devicesim_web_error e, char *err, size_t errlen,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static char *
fail(struct eb_devicesim_web_result *res, enum eb_devicesim_web_error e,
     char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	res->error = e;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return NULL;
}

char *
eb_devicesim_web_drive(const char *start, const struct eb_devicesim_web_opts *o,
                       struct eb_devicesim_web_result *res, char *err,
                       size_t errlen)
{
	struct eb_http_options ho;
	struct eb_http_response *resp = NULL;
	struct eb_devicesim_form form;
	struct eb_buf cookie, body;
	struct jar jar;
	const char *hdrs[6], *loc, *sc;
	char *url, *next = NULL, *host = NULL, *out = NULL, desc[512];
	int post = 0, keep;
	size_t i, nh;

	memset(res, 0, sizeof(*res));
	memset(&jar, 0, sizeof(jar));
	eb_buf_init(&cookie, MAX_COOKIES * MAX_COOKIE_BYTES + 64);
	eb_buf_init(&body, 64 * 1024);
	if ((url = eb_strdup(start)) == NULL)
		return fail(res, EB_DEVICESIM_WEB_OTHER, err, errlen,
		            "out of memory");
	for (;;) {
		if (res->requests == EB_DEVICESIM_WEB_MAX_HOPS) {
			fail(res, EB_DEVICESIM_WEB_LOOP, err, errlen,
			     "no result after %d requests (last %.300s)",
			     res->requests, url);
			break;
		}
		snprintf(res->last_url, sizeof(res->last_url), "%s", url);
		eb_free(host);
		if ((host = url_host(url)) == NULL) {
			fail(res, EB_DEVICESIM_WEB_OTHER, err, errlen,
			     "not an absolute URL: %.300s", url);
			break;
		}
		nh = 0;
		hdrs[nh++] =
		    "Accept: text/html,application/xhtml+xml,*/*;q=0.8";
		hdrs[nh++] = "Accept-Language: en-US,en;q=0.9";
		eb_buf_reset(&cookie);
		if (jar_header(&jar, host, &cookie))
			hdrs[nh++] = eb_buf_str(&cookie);
		if (post)
			hdrs[nh++] =
			    "Content-Type: application/x-www-form-urlencoded";
		hdrs[nh] = NULL;
		eb_http_options_init(&ho, post ? "POST" : "GET", url);
		ho.headers = hdrs;
		ho.body = post ? body.data : NULL;
		ho.body_len = post ? body.len : 0;
		ho.timeout = o->timeout;
		ho.connect_timeout = o->timeout;
		ho.max_response_bytes = EB_DEVICESIM_WEB_MAX_PAGE;
		ho.cafile = o->cafile;
		ho.user_agent = user_agent;
		eb_http_response_free(resp);
		resp = eb_http_fetch(&ho);
		res->requests++;
		if (resp == NULL) {
			fail(res, EB_DEVICESIM_WEB_OTHER, err, errlen,
			     "out of memory");
			break;
		}
		if (resp->error != EB_HTTP_OK) {
			fail(res, EB_DEVICESIM_WEB_TRANSPORT, err, errlen,
			     "%.300s: %s error: %s", url,
			     eb_http_error_name(resp->error), resp->message);
			break;
		}
		res->status = resp->status;
		nh = eb_http_response_header_count(resp, "Set-Cookie");
		for (i = 0; i < nh && i < 2 * MAX_COOKIES; i++) {
			sc = eb_http_response_header_nth(resp, "Set-Cookie", i);
			jar_store(&jar, host, sc);
		}
		if (resp->status >= 300 && resp->status < 400 &&
		    resp->status != 304) {
			loc = eb_http_response_header(resp, "Location");
			if (loc == NULL) {
				fail(res, EB_DEVICESIM_WEB_PAGE, err, errlen,
				     "HTTP %ld without Location at %.300s",
				     resp->status, url);
				break;
			}
			if (eb_str_has_prefix(loc, o->stop_prefix)) {
				if ((out = eb_strdup(loc)) == NULL)
					fail(res, EB_DEVICESIM_WEB_OTHER, err,
					     errlen, "out of memory");
				break;
			}
			next = resp->redirect_url != NULL
			           ? eb_strdup(resp->redirect_url)
			           : eb_devicesim_web_resolve(url, loc);
			if (next == NULL || origin_len(next) == 0) {
				fail(res, EB_DEVICESIM_WEB_PAGE, err, errlen,
				     "HTTP %ld to an unusable Location "
				     "\"%.300s\"",
				     resp->status, loc);
				break;
			}
			/* 307/308 repeat the request; the others turn GET */
			keep = resp->status == 307 || resp->status == 308;
			if (!keep) {
				post = 0;
				eb_buf_reset(&body);
			}
			eb_free(url);
			url = next;
			next = NULL;
			continue;
		}
		describe_page(resp->body, desc, sizeof(desc));
		if (resp->status != 200) {
			fail(res, EB_DEVICESIM_WEB_PAGE, err, errlen,
			     "HTTP %ld at %.300s: %s", resp->status, url, desc);
			break;
		}
		if (eb_devicesim_form_find(resp->body, resp->body_len, &form) ==
		    -1) {
			fail(res, EB_DEVICESIM_WEB_PAGE, err, errlen,
			     "a page without a form at %.300s: %s", url, desc);
			break;
		}
		if (form.has_password) {
			if (res->logins > 0) {
				page_text(resp->body, "id=\"error\"", desc,
				          sizeof(desc));
				fail(res, EB_DEVICESIM_WEB_LOGIN_FAILED, err,
				     errlen,
				     "the IdP showed its login form again "
				     "after the login was submitted: %s",
				     desc[0] ? desc : "(no error text)");
				eb_devicesim_form_finish(&form);
				break;
			}
			if (o->login == NULL || o->password == NULL) {
				fail(res, EB_DEVICESIM_WEB_NEED_LOGIN, err,
				     errlen, "a login form at %.300s", url);
				eb_devicesim_form_finish(&form);
				break;
			}
			res->logins++;
		} else if (++res->other_forms > MAX_FORMS) {
			fail(res, EB_DEVICESIM_WEB_LOOP, err, errlen,
			     "more than %d forms without a result", MAX_FORMS);
			eb_devicesim_form_finish(&form);
			break;
		}
		eb_buf_finish_secret(&body);
		eb_buf_init(&body, 64 * 1024);
		next = eb_devicesim_web_resolve(url, form.action);
		if (encode_form(&form, o, &body) == -1 || next == NULL) {
			fail(res, EB_DEVICESIM_WEB_OTHER, err, errlen,
			     "cannot submit the form at %.300s", url);
			eb_devicesim_form_finish(&form);
			break;
		}
		post = strcmp(form.method, "post") == 0;
		eb_devicesim_form_finish(&form);
		if (!post) {
			/* GET form: the fields replace the action's query */
			next[strcspn(next, "?#")] = '\0';
			eb_free(url);
			url = NULL;
			eb_buf_reset(&cookie);
			if (eb_buf_printf(&cookie, "%s?%s", next,
			                  eb_buf_str(&body)) == -1 ||
			    (url = eb_strdup(eb_buf_str(&cookie))) == NULL) {
				eb_free(next);
				next = NULL;
				fail(res, EB_DEVICESIM_WEB_OTHER, err, errlen,
				     "form URL too long");
				break;
			}
			eb_free(next);
			eb_buf_finish_secret(&body);
			eb_buf_init(&body, 64 * 1024);
		} else {
			eb_free(url);
			url = next;
		}
		next = NULL;
	}
	eb_free(next);
	eb_http_response_free(resp);
	eb_free(host);
	eb_free_secret_str(url);
	eb_buf_finish_secret(&cookie);
	eb_buf_finish_secret(&body);
	jar_finish(&jar);
	return out;
}
