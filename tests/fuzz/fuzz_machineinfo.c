/*
 * Fuzz target for the device's first POST body: the MachineInfo CMS
 * SignedData and the plist inside it (src/apple/machineinfo.c, cms.c,
 * plist.c). The input goes through three doors: as a whole body (CMS,
 * PEM/base64 wrapping, signature check, plist), as the bare MachineInfo
 * plist (mutations of signed content never get past the signature check,
 * so the plist layer is also fed directly), and through the generic plist
 * wrapper with a serialize/re-parse round trip. Seeds in
 * tests/fuzz/corpus/machineinfo/ are real signed bodies and broken ones.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apple/machineinfo.h"
#include "apple/plist.h"
#include "core/mem.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr,                                        \
			        "fuzz_machineinfo: %s failed at line %d\n",    \
			        #cond, __LINE__);                              \
			abort();                                               \
		}                                                              \
	} while (0)

static void
check_result(int rc, const struct eb_machineinfo *mi, const char *err)
{
	if (rc != 0) {
		CHECK(rc == -1 && err[0] != '\0');
		CHECK(mi->product == NULL && mi->udid == NULL);
		return;
	}
	CHECK(mi->product != NULL && mi->product[0] != '\0');
	CHECK(strlen(mi->product) <= EB_MACHINEINFO_MAX_STRING);
	CHECK(mi->language == NULL ||
	      strlen(mi->language) <= EB_MACHINEINFO_MAX_STRING);
	CHECK(mi->model_family == NULL ||
	      mi->model_family == eb_machineinfo_family(mi->product));
}

struct walk_ctx {
	unsigned depth;
	size_t count;
};

static size_t walk(const struct eb_plist *n, unsigned depth);

static int
walk_entry(const char *key, const struct eb_plist *v, void *arg)
{
	struct walk_ctx *w = arg;

	CHECK(key != NULL && v != NULL);
	CHECK(eb_plist_dict_get(NULL, key) == NULL);
	w->count += walk(v, w->depth + 1);
	return 0;
}

/* Count nodes, touching every scalar through the typed getters. */
static size_t
walk(const struct eb_plist *n, unsigned depth)
{
	const struct eb_plist *item;
	struct walk_ctx w = {depth, 0};
	size_t i, len, count = 1;
	int64_t iv;
	int b;

	CHECK(depth <= EB_PLIST_DEFAULT_MAX_DEPTH);
	switch (eb_plist_type(n)) {
	case EB_PLIST_ARRAY:
		for (i = 0; (item = eb_plist_array_get(n, i)) != NULL; i++)
			count += walk(item, depth + 1);
		CHECK(i == eb_plist_array_size(n));
		break;
	case EB_PLIST_DICT:
		CHECK(eb_plist_dict_foreach(n, walk_entry, &w) == 0);
		count += w.count;
		break;
	case EB_PLIST_STRING:
		CHECK(eb_plist_string(n, &len) != NULL);
		break;
	case EB_PLIST_INT:
		CHECK(eb_plist_int(n, &iv) == 0);
		break;
	case EB_PLIST_BOOL:
		CHECK(eb_plist_bool(n, &b) == 0);
		break;
	case EB_PLIST_DATA:
		CHECK(eb_plist_data(n, &len) != NULL);
		break;
	default:
		break;
	}
	return count;
}

struct count_ctx {
	const struct eb_plist *dict;
	size_t n;
};

static int
count_entry(const char *key, const struct eb_plist *v, void *arg)
{
	struct count_ctx *c = arg;

	/* every key iteration yields is found by lookup (the first of
	 * duplicates wins, so only presence is checked) */
	CHECK(v != NULL && eb_plist_dict_get(c->dict, key) != NULL);
	c->n++;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eb_machineinfo mi;
	struct eb_plist *p, *q;
	uint8_t *xml;
	size_t xmllen;
	char err[256];
	int rc;

	err[0] = '\0';
	rc = eb_machineinfo_parse(&mi, data, size, NULL, err, sizeof(err));
	check_result(rc, &mi, err);
	eb_machineinfo_finish(&mi);

	err[0] = '\0';
	rc = eb_machineinfo_parse_plist(&mi, data, size, err, sizeof(err));
	check_result(rc, &mi, err);
	eb_machineinfo_finish(&mi);

	p = eb_plist_parse(data, size, EB_MACHINEINFO_MAX_BYTES, 0, err,
	                   sizeof(err));
	if (p == NULL)
		return 0;
	(void)walk(p, 1);
	if (eb_plist_type(p) == EB_PLIST_DICT) {
		struct count_ctx c = {p, 0};

		CHECK(eb_plist_dict_foreach(p, count_entry, &c) == 0);
		CHECK(c.n == eb_plist_dict_size(p));
	}
	if (eb_plist_to_xml(p, &xml, &xmllen) == 0) {
		/* what we serialize must parse again (at any size) */
		q = eb_plist_parse(xml, xmllen, (size_t)-1, 0, err,
		                   sizeof(err));
		eb_plist_free(q);
		eb_free(xml);
	}
	eb_plist_free(p);
	return 0;
}
