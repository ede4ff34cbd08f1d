/*
 * The layout of every page a person sees (page.h). Every value goes through
 * the template engine's HTML escaping; the branding colour was checked to
 * be "#rrggbb" at load time and its text colour chosen for contrast.
 */
#include <string.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/tmpl.h"
#include "handle/page.h"

#define DEFAULT_COLOR "#1d1d1f"

static const char layout[] =
    "<!DOCTYPE html>\n<html lang=\"{{lang}}\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, "
    "initial-scale=1\"><meta name=\"color-scheme\" content=\"light dark\">"
    "<title>{{title}}</title><style>"
    "body{font-family:-apple-system,system-ui,sans-serif;margin:0;"
    "background:#f5f5f7;color:#1d1d1f;font-size:16px}"
    "header{background:{{color}};color:{{text_color}};"
    "padding:.75rem 1.25rem}"
    ".brand{margin:0;font-weight:600;display:flex;align-items:center;"
    "gap:.6rem}.brand img{max-height:2rem;width:auto}"
    "main{max-width:32rem;margin:2rem auto;background:#fff;border-radius:"
    "12px;padding:1.5rem;overflow-wrap:anywhere}"
    "h1{font-size:1.4rem;margin-top:0}h2{font-size:1.1rem}"
    "p,li{line-height:1.5}.rid{color:#595959;font-size:.9rem}"
    "a{color:#0058b0}"
    "@media(max-width:600px){main{margin:1rem .75rem;padding:1.25rem}}"
    "@media(prefers-color-scheme:dark){body{background:#000;color:#f5f5f7}"
    "main{background:#1c1c1e}.rid{color:#aeaeb2}a{color:#6cb4ff}}"
    "</style></head><body>"
    "{{#brand}}<header><div class=\"brand\">{{#logo}}<img src=\"{{logo}}\" "
    "alt=\"{{logo_alt}}\">{{/logo}}<span>{{brand}}</span></div>"
    "</header>{{/brand}}"
    "<main><h1>{{title}}</h1>"
    "{{#message}}<p>{{message}}</p>{{/message}}"
    "{{#details}}<p>{{details}}</p>{{/details}}"
    "{{#extra}}<p>{{extra}}</p>{{/extra}}"
    "<p class=\"rid\">{{reference}}</p>"
    "{{#support}}<section aria-labelledby=\"help\"><h2 id=\"help\">{{help}}"
    "</h2><ul>"
    "{{#email}}<li>{{email_label}}: <a href=\"mailto:{{email}}\">"
    "{{email}}</a></li>{{/email}}"
    "{{#phone}}<li>{{phone_label}}: <a href=\"tel:{{phone}}\">{{phone}}</a>"
    "</li>{{/phone}}"
    "{{#url}}<li><a href=\"{{url}}\">{{url_label}}</a></li>{{/url}}"
    "</ul></section>{{/support}}"
    "</main></body></html>\n";

enum eb_lang
eb_page_lang(const struct eb_request *req)
{
	return eb_i18n_negotiate(eb_req_header(req, "Accept-Language"));
}

/* A catalogue message with one slot filled, as plain text into out. */
static int
say(struct eb_buf *out, enum eb_lang l, enum eb_msg id, const char *slot,
    const char *value)
{
	struct eb_tmpl_slot s = {slot, value};
	const char *why;

	if (eb_tmpl_render(out, eb_i18n_msg(l, id), &s, slot ? 1 : 0,
	                   EB_TMPL_TEXT, &why) == -1) {
		log_warnx("page message %d (%s): %s", (int)id, eb_i18n_tag(l),
		          why);
		return -1;
	}
	return 0;
}

/* The texts the layout needs that are not simple look-ups. */
struct texts {
	struct eb_buf msg, details, reference, logo_alt;
};

static void
texts_finish(struct texts *x)
{
	eb_buf_finish(&x->msg);
	eb_buf_finish(&x->details);
	eb_buf_finish(&x->reference);
	eb_buf_finish(&x->logo_alt);
}

static int
texts_make(struct texts *x, const struct eb_request *req, enum eb_lang l,
           const struct eb_page *pg, const struct eb_branding *b)
{
	int rc = 0;

	eb_buf_init(&x->msg, 4096);
	eb_buf_init(&x->details, 4096);
	eb_buf_init(&x->reference, 256);
	eb_buf_init(&x->logo_alt, 256);
	if (pg->text != NULL)
		rc |= eb_buf_addstr(&x->msg, pg->text);
	else if (pg->msg != EB_MSG_COUNT)
		rc |= say(&x->msg, l, pg->msg, NULL, NULL);
	if (pg->hint != EB_MSG_COUNT) {
		/* Japanese sentences follow each other without a space */
		if (l != EB_LANG_JA)
			rc |= eb_buf_addc(&x->msg, ' ');
		rc |= say(&x->msg, l, pg->hint, NULL, NULL);
	}
	if (pg->details != NULL)
		rc |=
		    say(&x->details, l, EB_MSG_DETAILS, "details", pg->details);
	rc |= say(&x->reference, l, EB_MSG_REFERENCE, "rid", eb_req_id(req));
	if (b != NULL)
		rc |= say(&x->logo_alt, l, EB_MSG_LOGO_ALT, "name", b->name);
	return rc != 0 ? -1 : 0;
}

static int
render(struct eb_buf *out, enum eb_lang l, const struct eb_page *pg,
       const struct eb_branding *b, const struct texts *x)
{
	int sup =
	    b != NULL && (b->support_email != NULL ||
	                  b->support_phone != NULL || b->support_url != NULL);
	const struct eb_tmpl_slot slots[] = {
	    {"lang", eb_i18n_tag(l)},
	    {"title", eb_i18n_msg(l, pg->title)},
	    {"message", eb_buf_str(&x->msg)},
	    {"details", eb_buf_str(&x->details)},
	    {"extra", pg->extra},
	    {"reference", eb_buf_str(&x->reference)},
	    {"brand", b ? b->name : NULL},
	    {"color", b ? b->primary_color : DEFAULT_COLOR},
	    {"text_color", b ? b->text_color : "#ffffff"},
	    {"logo", b ? b->logo_url : NULL},
	    {"logo_alt", eb_buf_str(&x->logo_alt)},
	    {"support", sup ? "1" : NULL},
	    {"help", eb_i18n_msg(l, EB_MSG_HELP)},
	    {"email", b ? b->support_email : NULL},
	    {"email_label", eb_i18n_msg(l, EB_MSG_EMAIL)},
	    {"phone", b ? b->support_phone : NULL},
	    {"phone_label", eb_i18n_msg(l, EB_MSG_PHONE)},
	    {"url", b ? b->support_url : NULL},
	    {"url_label", eb_i18n_msg(l, EB_MSG_WEBSITE)},
	};
	const char *why;

	if (eb_tmpl_render(out, layout, slots, sizeof(slots) / sizeof(*slots),
	                   0, &why) == -1) {
		log_warnx("page layout: %s", why);
		return -1;
	}
	return 0;
}

int
eb_page_send(struct eb_request *req, const struct eb_page *pg)
{
	const struct eb_tenant *t = eb_req_tenant(req);
	const struct eb_branding *b = t != NULL ? t->branding : NULL;
	enum eb_lang l = eb_page_lang(req);
	struct texts x;
	struct eb_buf out;
	size_t len;
	char *p;
	int rc;

	eb_buf_init(&out, 16 * 1024);
	rc = texts_make(&x, req, l, pg, b);
	if (rc == 0)
		rc = render(&out, l, pg, b, &x);
	texts_finish(&x);
	if (rc == -1 ||
	    eb_resp_header(req, "Cache-Control", "no-store") == -1 ||
	    eb_resp_header(req, "Content-Language", eb_i18n_tag(l)) == -1 ||
	    eb_resp_header(req, "Vary", "Accept-Language") == -1) {
		eb_buf_finish(&out);
		return eb_resp_text(req, 500, "internal error\n");
	}
	p = eb_buf_detach(&out, &len);
	return eb_resp_set_owned(req, pg->status, "text/html; charset=utf-8", p,
	                         len);
}
