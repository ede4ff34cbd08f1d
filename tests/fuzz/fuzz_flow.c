/*
 * Fuzz target for the login flow sealed into a challenge URL
 * (src/handle/flow.c). The text comes from anyone's request path, so the
 * first byte chooses what the rest is:
 *  - even: the flow text itself, opened under a fixed key (base64url,
 *    the seal, then the JSON): it must never open, since nobody but the
 *    key's holder makes a sealed text;
 *  - odd: a plaintext, sealed under that key and opened again, to reach
 *    the JSON reader with any object (the seal only ever holds what
 *    eb_flow_seal wrote, but the reader must not trust that); whatever
 *    opens is sealed again and must open to the same flow.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "handle/flow.h"
#include "jose/b64.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_flow: %s failed at line %d\n",   \
			        #cond, __LINE__);                              \
			abort();                                               \
		}                                                              \
	} while (0)

#define AD "enrollbridge login flow v1:acme"

static const uint8_t key[EB_SEAL_KEY_LEN] = "fuzz-key-fuzz-key-fuzz-key-fuzz";
/* a ring of key alone, made at the first input and kept */
static struct eb_seal_ring *ring;

static int
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	       (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void
reseal(const struct eb_store_flow *f)
{
	struct eb_store_flow g;
	char *text;

	if (eb_flow_seal(ring, f, &text) != 0)
		return; /* too long to carry */
	CHECK(eb_flow_open(ring, "acme", text, f->created, &g) ==
	      (f->expires <= f->created ? EB_FLOW_OPEN_EXPIRED
	                                : EB_FLOW_OPEN_OK));
	CHECK(g.kind == f->kind && g.created == f->created &&
	      g.expires == f->expires);
	CHECK(same(g.enrollment_mode, f->enrollment_mode) &&
	      same(g.model_family, f->model_family) &&
	      same(g.product, f->product) && same(g.version, f->version) &&
	      same(g.language, f->language) &&
	      same(g.os_version, f->os_version) && same(g.udid, f->udid) &&
	      same(g.serial, f->serial) && same(g.extra, f->extra));
	eb_store_flow_finish(&g);
	eb_free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eb_store_flow f;
	uint8_t *blob = NULL;
	size_t bloblen = 0;
	char *text;
	int rc;

	if (size < 1 || size > 8192)
		return 0;
	if (ring == NULL)
		CHECK((ring = eb_seal_ring_of(key)) != NULL);
	if ((data[0] & 1) == 0) {
		if ((text = eb_malloc(size)) == NULL)
			return 0;
		memcpy(text, data + 1, size - 1);
		text[size - 1] = '\0';
		rc = eb_flow_open(ring, "acme", text, 0, &f);
		CHECK(rc == EB_FLOW_OPEN_BAD || rc == EB_FLOW_OPEN_ERROR);
		CHECK(f.id == NULL && f.udid == NULL);
		eb_store_flow_finish(&f);
		eb_free(text);
		return 0;
	}
	if (eb_seal_ring_seal(ring, EB_SEAL_FLOW, AD, sizeof(AD) - 1, data + 1,
	                      size - 1, &blob, &bloblen) != 0)
		return 0;
	text = eb_b64_url_encode(blob, bloblen);
	eb_free(blob);
	if (text == NULL)
		return 0;
	rc = eb_flow_open(ring, "acme", text, 0, &f);
	if (rc == EB_FLOW_OPEN_OK || rc == EB_FLOW_OPEN_EXPIRED) {
		CHECK(f.id != NULL && strlen(f.id) == EB_STORE_HASH_HEXLEN);
		CHECK(f.tenant != NULL && strcmp(f.tenant, "acme") == 0);
		reseal(&f);
	}
	eb_store_flow_finish(&f);
	eb_free(text);
	return 0;
}
