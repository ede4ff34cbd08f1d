/*
 * Fuzz target for the WWW-Authenticate parser (untrusted: any server's
 * challenge reaches it through the discover command). Parses in tolerant
 * and strict mode; when parsing succeeds, rebuilds the challenge in Apple's
 * exact form (generic formatter, and the Apple builder for Apple methods),
 * re-parses it strictly and checks that nothing changed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apple/wwwauth.h"
#include "core/mem.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr,                                        \
			        "fuzz_wwwauth: %s failed at line %d\n", #cond, \
			        __LINE__);                                     \
			abort();                                               \
		}                                                              \
	} while (0)

static const unsigned scheme_devs =
    EB_WWWAUTH_DEV_SCHEME | EB_WWWAUTH_DEV_SCHEME_CASE;

static void
same_params(const struct eb_wwwauth *a, const struct eb_wwwauth *b)
{
	size_t i;

	CHECK(a->nparams == b->nparams);
	CHECK(strcmp(a->scheme, b->scheme) == 0);
	for (i = 0; i < a->nparams; i++) {
		CHECK(strcmp(a->params[i].name, b->params[i].name) == 0);
		CHECK(strcmp(a->params[i].value, b->params[i].value) == 0);
	}
}

/* Rebuild an Apple challenge with the builder and re-parse it strictly. */
static void
rebuild_apple(const struct eb_wwwauth *w)
{
	struct eb_wwwauth_challenge ch;
	struct eb_wwwauth w2;
	char *s;

	memset(&ch, 0, sizeof(ch));
	ch.method = eb_wwwauth_method(w);
	if (ch.method == EB_WWWAUTH_METHOD_UNKNOWN)
		return;
	ch.url = eb_wwwauth_param(w, "url");
	ch.authorization_url = eb_wwwauth_param(w, "authorization-url");
	ch.token_url = eb_wwwauth_param(w, "token-url");
	ch.redirect_url = eb_wwwauth_param(w, "redirect-url");
	ch.client_id = eb_wwwauth_param(w, "client-id");
	ch.scope = eb_wwwauth_param(w, "scope");
	if ((s = eb_wwwauth_build(&ch)) == NULL)
		return;
	CHECK(strncmp(s, "Bearer method=\"", 15) == 0);
	CHECK(eb_wwwauth_parse(&w2, s, strlen(s), EB_WWWAUTH_STRICT, NULL, 0) ==
	      0);
	CHECK(w2.deviations == 0);
	CHECK(eb_wwwauth_method(&w2) == ch.method);
	if (ch.method == EB_WWWAUTH_METHOD_AS_WEB) {
		CHECK(w2.nparams == 2);
		CHECK(strcmp(eb_wwwauth_param(&w2, "url"), ch.url) == 0);
	} else {
		CHECK(w2.nparams == 6);
		CHECK(strcmp(eb_wwwauth_param(&w2, "token-url"),
		             ch.token_url) == 0);
		CHECK(strcmp(eb_wwwauth_param(&w2, "client-id"),
		             ch.client_id) == 0);
	}
	/* the semantic check must not depend on how the challenge was spelt */
	if (strcmp(w->scheme, "Bearer") == 0)
		CHECK((eb_wwwauth_check_apple(w, NULL, 0) == 0) ==
		      (eb_wwwauth_check_apple(&w2, NULL, 0) == 0));
	eb_wwwauth_finish(&w2);
	eb_free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eb_wwwauth w, w2;
	char err[256], desc[512], *s;
	int lax, strict;

	lax =
	    eb_wwwauth_parse(&w, (const char *)data, size, 0, err, sizeof(err));
	CHECK(lax == 0 || err[0] != '\0');
	eb_wwwauth_describe(w.deviations, desc, sizeof(desc));
	if (lax == 0) {
		CHECK(w.scheme != NULL && w.nparams <= EB_WWWAUTH_MAX_PARAMS);
		(void)eb_wwwauth_check_apple(&w, err, sizeof(err));
		rebuild_apple(&w);
		if ((s = eb_wwwauth_format(&w)) != NULL) {
			CHECK(eb_wwwauth_parse(&w2, s, strlen(s), 0, NULL, 0) ==
			      0);
			CHECK(w2.deviations == (w.deviations & scheme_devs));
			same_params(&w, &w2);
			eb_wwwauth_finish(&w2);
			eb_free(s);
		}
	}
	eb_wwwauth_finish(&w);

	strict = eb_wwwauth_parse(&w, (const char *)data, size,
	                          EB_WWWAUTH_STRICT, err, sizeof(err));
	/* strict accepts exactly what the tolerant parse accepts unchanged */
	CHECK(strict == 0 ? lax == 0 && w.deviations == 0
	                  : lax == -1 || w.deviations != 0);
	eb_wwwauth_finish(&w);
	return 0;
}
