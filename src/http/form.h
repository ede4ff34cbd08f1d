/*
 * application/x-www-form-urlencoded, strictly: for OAuth 2 request bodies
 * (RFC 6749 appendix B) and query strings we must not misread, such as the
 * OIDC callback's. A parameter given twice is refused (RFC 6749 3.1, 3.2:
 * "MUST NOT be included more than once"), as are bad percent escapes,
 * empty names, NUL bytes and anything over the limits.
 */
#ifndef EB_FORM_H
#define EB_FORM_H

#include <stddef.h>

#define EB_FORM_MAX_PAIRS 64

struct eb_form_pair {
	char *name;
	char *value;
};

struct eb_form {
	struct eb_form_pair v[EB_FORM_MAX_PAIRS];
	size_t n;
};

/*
 * Parse len bytes at s ("a=1&b=2"; "+" is a space). A pair without "=" has
 * an empty value. Returns 0, or -1 with a reason in err (never echoing the
 * input) and f emptied.
 */
int eb_form_parse(const char *s, size_t len, struct eb_form *f, char *err,
                  size_t errlen);
/* The value of name, or NULL. */
const char *eb_form_get(const struct eb_form *f, const char *name);
/* Free every pair; secrets in values are wiped. */
void eb_form_finish(struct eb_form *f);

#endif
