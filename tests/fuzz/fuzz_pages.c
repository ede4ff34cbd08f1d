/*
 * Fuzz what a browser or a template hands the page code: the
 * Accept-Language negotiation (any header value gives one of our
 * languages) and the template engine (any template either renders or fails
 * with a reason; rendered output never holds a raw '<' taken from a slot).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/i18n.h"
#include "core/tmpl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct eb_tmpl_slot slots[] = {
	    {"a", "<x>"}, {"b", ""}, {"c", NULL}, {"lang", "de"}};
	struct eb_buf b;
	const char *why;
	char *s;
	int rc;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if ((unsigned)eb_i18n_negotiate(s) >= EB_LANG_COUNT)
		abort();
	eb_buf_init(&b, 1 << 20);
	rc = eb_tmpl_render(&b, s, slots, 4, 0, &why);
	if (rc == -1 && why == NULL)
		abort();
	/* the template had no '<' of its own: any in the output is a slot's */
	if (rc == 0 && strchr(s, '<') == NULL &&
	    strchr(eb_buf_str(&b), '<') != NULL)
		abort();
	eb_buf_finish(&b);
	free(s);
	return 0;
}
