/*
 * A very small template engine for the pages a person sees (DESIGN.md,
 * "Operations"): {{name}} is replaced by the slot's value, HTML-escaped
 * unless EB_TMPL_TEXT is given (the result is then plain text, escaped
 * where it is put); {{#name}}...{{/name}} is kept only when the slot's
 * value is not empty (no nesting of the same name). There is no way to
 * insert unescaped HTML. A {{name}} without a slot is an error, not an
 * empty string, so a typo in a template cannot go unnoticed.
 */
#ifndef EB_TMPL_H
#define EB_TMPL_H

#include <stddef.h>

#include "core/buf.h"

#define EB_TMPL_TEXT 0x01 /* do not escape: the output is plain text */

struct eb_tmpl_slot {
	const char *name;
	const char *value; /* NULL counts as "" */
};

/*
 * Append tmpl with its slots filled to out. Returns 0, or -1 with why set
 * (a missing slot, an unclosed {{ or section, out of memory); out may then
 * hold part of the output.
 */
int eb_tmpl_render(struct eb_buf *out, const char *tmpl,
                   const struct eb_tmpl_slot *slots, size_t nslots, int flags,
                   const char **why);

#endif
