/*
 * Strict form/query parser. See form.h. A cursor walks the input once;
 * decoding writes into a fresh buffer no longer than the encoded text.
 */
#include "http/form.h"

#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/str.h"

#define MAX_INPUT (64 * 1024)

/* Decode [p, end) into a fresh string; NULL on a bad escape or NUL. */
static char *
decode(const char *p, const char *end, const char **why)
{
	char *out, *o;
	int hi, lo;

	if ((out = eb_malloc((size_t)(end - p) + 1)) == NULL) {
		*why = "out of memory";
		return NULL;
	}
	for (o = out; p < end; p++) {
		if (*p == '+')
			*o++ = ' ';
		else if (*p == '%') {
			if (end - p < 3 ||
			    (hi = eb_str_hexval((unsigned char)p[1])) < 0 ||
			    (lo = eb_str_hexval((unsigned char)p[2])) < 0) {
				*why = "bad percent escape";
				goto fail;
			}
			if (hi == 0 && lo == 0) {
				*why = "NUL byte";
				goto fail;
			}
			*o++ = (char)(hi << 4 | lo);
			p += 2;
		} else if (*p == '\0') {
			*why = "NUL byte";
			goto fail;
		} else
			*o++ = *p;
	}
	*o = '\0';
	return out;
fail:
	eb_free(out);
	return NULL;
}

int
eb_form_parse(const char *s, size_t len, struct eb_form *f, char *err,
              size_t errlen)
{
	const char *p = s, *end = s + len, *amp, *eq, *why = NULL;
	char *name, *value;
	size_t i;

	memset(f, 0, sizeof(*f));
	if (len > MAX_INPUT) {
		why = "too large";
		goto fail;
	}
	while (p < end) {
		for (amp = p; amp < end && *amp != '&'; amp++)
			;
		if (amp == p) { /* empty element ("a=1&&b=2", trailing '&') */
			p++;
			continue;
		}
		for (eq = p; eq < amp && *eq != '='; eq++)
			;
		if (eq == p) {
			why = "empty parameter name";
			goto fail;
		}
		if (f->n == EB_FORM_MAX_PAIRS) {
			why = "too many parameters";
			goto fail;
		}
		if ((name = decode(p, eq, &why)) == NULL)
			goto fail;
		value = decode(eq < amp ? eq + 1 : amp, amp, &why);
		if (value == NULL) {
			eb_free(name);
			goto fail;
		}
		for (i = 0; i < f->n; i++)
			if (strcmp(f->v[i].name, name) == 0) {
				eb_free(name);
				eb_free_secret_str(value);
				why = "a parameter is repeated";
				goto fail;
			}
		f->v[f->n].name = name;
		f->v[f->n].value = value;
		f->n++;
		p = amp + 1;
	}
	return 0;
fail:
	eb_form_finish(f);
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "malformed form: %s", why ? why : "?");
	return -1;
}

const char *
eb_form_get(const struct eb_form *f, const char *name)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->v[i].name, name) == 0)
			return f->v[i].value;
	return NULL;
}

void
eb_form_finish(struct eb_form *f)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		eb_free(f->v[i].name);
		eb_free_secret_str(f->v[i].value);
	}
	f->n = 0;
}
