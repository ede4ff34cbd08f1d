/*
 * The page template engine (tmpl.h): one pass over the template, slots
 * looked up by name, every value escaped for HTML unless told otherwise.
 */
#include <string.h>

#include "core/tmpl.h"

#define MAX_NAME 64

struct tctx {
	struct eb_buf *out;
	const struct eb_tmpl_slot *slots;
	size_t nslots;
	int flags;
	const char **why;
};

static const struct eb_tmpl_slot *
find(const struct tctx *c, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < c->nslots; i++)
		if (strlen(c->slots[i].name) == len &&
		    memcmp(c->slots[i].name, name, len) == 0)
			return &c->slots[i];
	return NULL;
}

static int
fail(const struct tctx *c, const char *why)
{
	*c->why = why;
	return -1;
}

/* After "{{" at p: the tag's end ("}}"), its kind and name. */
static const char *
tag(const struct tctx *c, const char *p, char *kind, const char **name,
    size_t *len)
{
	const char *end = strstr(p, "}}");

	if (end == NULL) {
		fail(c, "unclosed {{");
		return NULL;
	}
	*kind = (*p == '#' || *p == '/') ? *p++ : '=';
	*name = p;
	*len = (size_t)(end - p);
	if (*len == 0 || *len > MAX_NAME ||
	    strspn(p, "abcdefghijklmnopqrstuvwxyz"
	              "0123456789_") != *len) {
		fail(c, "bad slot name");
		return NULL;
	}
	return end + 2;
}

/* The end of the section named name that starts at p: just after its
 * closing tag; *body_end is where the closing tag starts. */
static const char *
section_end(const struct tctx *c, const char *p, const char *name, size_t len,
            const char **body_end)
{
	char close[MAX_NAME + 6];
	const char *q;

	memcpy(close, "{{/", 3);
	memcpy(close + 3, name, len);
	memcpy(close + 3 + len, "}}", 3);
	if ((q = strstr(p, close)) == NULL) {
		fail(c, "unclosed section");
		return NULL;
	}
	*body_end = q;
	return q + len + 5;
}

static int render(const struct tctx *c, const char *p, const char *end);

static int
value(const struct tctx *c, const struct eb_tmpl_slot *s)
{
	const char *v = s->value != NULL ? s->value : "";

	if (c->flags & EB_TMPL_TEXT)
		return eb_buf_addstr(c->out, v);
	return eb_buf_add_html(c->out, v);
}

static int
render(const struct tctx *c, const char *p, const char *end)
{
	const struct eb_tmpl_slot *s;
	const char *o, *name, *next, *body_end;
	size_t len;
	char kind;

	while (p < end) {
		if ((o = strstr(p, "{{")) == NULL || o >= end)
			return eb_buf_add(c->out, p, (size_t)(end - p));
		if (eb_buf_add(c->out, p, (size_t)(o - p)) == -1)
			return fail(c, "out of memory");
		if ((next = tag(c, o + 2, &kind, &name, &len)) == NULL ||
		    next > end)
			return next == NULL ? -1 : fail(c, "unclosed {{");
		if (kind == '/')
			return fail(c, "section closed but not opened");
		if ((s = find(c, name, len)) == NULL)
			return fail(c, "template slot has no value");
		if (kind == '=') {
			if (value(c, s) == -1)
				return fail(c, "out of memory");
			p = next;
			continue;
		}
		if ((p = section_end(c, next, name, len, &body_end)) == NULL ||
		    p > end)
			return p == NULL ? -1 : fail(c, "unclosed section");
		if (s->value != NULL && s->value[0] != '\0' &&
		    render(c, next, body_end) == -1)
			return -1;
	}
	return 0;
}

int
eb_tmpl_render(struct eb_buf *out, const char *tmpl,
               const struct eb_tmpl_slot *slots, size_t nslots, int flags,
               const char **why)
{
	struct tctx c = {out, slots, nslots, flags, why};

	*why = NULL;
	if (render(&c, tmpl, tmpl + strlen(tmpl)) == -1) {
		if (*why == NULL)
			*why = "out of memory";
		return -1;
	}
	return 0;
}
