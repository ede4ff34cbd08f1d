/*
 * Fuzz the strict form/query parser (OAuth 2 bodies, the OIDC callback's
 * query): never crash or leak; on success every pair is unique and its
 * name non-empty; re-parsing is deterministic.
 */
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http/form.h"

/* Checked in every build: assert() would vanish under NDEBUG. */
#define CHECK(x)                                                               \
	do {                                                                   \
		if (!(x))                                                      \
			abort();                                               \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eb_form f, g;
	size_t i, j;
	int a, b;

	a = eb_form_parse((const char *)data, size, &f, NULL, 0);
	b = eb_form_parse((const char *)data, size, &g, NULL, 0);
	CHECK(a == b);
	if (a == 0) {
		CHECK(f.n == g.n);
		for (i = 0; i < f.n; i++) {
			CHECK(f.v[i].name[0] != '\0');
			CHECK(strcmp(f.v[i].value, g.v[i].value) == 0);
			for (j = i + 1; j < f.n; j++)
				CHECK(strcmp(f.v[i].name, f.v[j].name) != 0);
			CHECK(eb_form_get(&f, f.v[i].name) == f.v[i].value);
		}
	}
	eb_form_finish(&f);
	eb_form_finish(&g);
	return 0;
}
