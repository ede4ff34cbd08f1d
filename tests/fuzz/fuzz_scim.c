/*
 * Fuzz the SCIM request parsers (scim/scim.h), as a provisioning client's
 * bytes reach them: the first line is a list filter, the rest a JSON
 * object tried as a User resource, and as a PatchOp applied to a fixed
 * User whose result is checked again. Never crash or leak; an accepted
 * resource has a userName within the limits; a refusal is a 400 with a
 * scimType and a detail.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/mem.h"
#include "jose/jose.h"
#include "scim/scim.h"

#define CHECK(x)                                                               \
	do {                                                                   \
		if (!(x))                                                      \
			abort();                                               \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
refused(const struct eb_scim_err *e)
{
	CHECK(e->status == 400);
	CHECK(e->scim_type != NULL);
	CHECK(e->detail[0] != '\0');
}

static void
filter(const char *s, size_t n)
{
	struct eb_scim_err e;
	char buf[1024], *v = NULL;
	int attr;

	if (n >= sizeof(buf))
		return;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(&e, 0, sizeof(e));
	if (eb_scim_filter(buf, &attr, &v, &e) == 0) {
		CHECK(v != NULL && v[0] != '\0');
		CHECK(attr == EB_SCIM_FILTER_USER_NAME ||
		      attr == EB_SCIM_FILTER_EXTERNAL_ID);
		eb_free(v);
	} else {
		CHECK(v == NULL);
		refused(&e);
	}
}

static void
user(json_t *o)
{
	struct eb_scim_facts f;
	struct eb_scim_err e;

	memset(&e, 0, sizeof(e));
	if (eb_scim_user_check(o, &f, &e) == 0) {
		CHECK(f.user_name != NULL);
		CHECK(strlen(f.user_name) <= EB_SCIM_MAX_STR);
		CHECK(f.active == 0 || f.active == 1);
	} else
		refused(&e);
}

static void
patch(const json_t *p)
{
	struct eb_scim_err e;
	json_t *res;

	res = json_pack("{s:[s], s:s, s:b, s:[{s:s, s:s}]}", "schemas",
	                EB_SCIM_USER_SCHEMA, "userName", "a@b.c", "active", 1,
	                "emails", "type", "work", "value", "a@b.c");
	CHECK(res != NULL);
	memset(&e, 0, sizeof(e));
	if (eb_scim_patch(res, p, &e) == 0)
		user(res);
	else
		refused(&e);
	json_decref(res);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *nl;
	size_t n;
	json_t *o, *copy;

	nl = memchr(s, '\n', size);
	n = nl != NULL ? (size_t)(nl - s) : size;
	filter(s, n);
	if (nl == NULL)
		return 0;
	o = eb_jose_json_parse_object(nl + 1, size - n - 1, 16);
	if (o == NULL)
		return 0;
	patch(o);
	copy = json_deep_copy(o);
	if (copy != NULL)
		user(copy);
	json_decref(copy);
	json_decref(o);
	return 0;
}
