/*
 * SCIM 2.0 User resources (scim/scim.h): the checks of a resource, PatchOp
 * applied to a JSON tree, and the list filters. Attribute names are
 * case-insensitive (RFC 7643 2.1): a member already in the resource keeps
 * its spelling, whatever the case a later operation names it in.
 */
#include "scim/scim.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "core/str.h"

#define MAX_PATH 256 /* bytes of a PATCH path */

enum op_kind { OP_ADD, OP_REPLACE, OP_REMOVE };

static int fail(struct eb_scim_err *err, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct eb_scim_err *err, const char *type, const char *fmt, ...)
{
	va_list ap;

	err->status = 400;
	err->scim_type = type;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return -1;
}

/* o's member named name in any case, its key in *key (may be NULL). */
static json_t *
get_ci(const json_t *o, const char *name, const char **key)
{
	const char *k;
	json_t *v;

	if (!json_is_object(o))
		return NULL;
	json_object_foreach((json_t *)(uintptr_t)o, k, v)
	{
		if (strcasecmp(k, name) == 0) {
			if (key != NULL)
				*key = k;
			return v;
		}
	}
	return NULL;
}

/* Remove o's member name in any case (every spelling of it). */
static void
del_ci(json_t *o, const char *name)
{
	const char *k;

	while (get_ci(o, name, &k) != NULL)
		json_object_del(o, k);
}

/* Set o's member name (keeping an existing spelling); takes value. */
static int
set_ci(json_t *o, const char *name, json_t *value)
{
	const char *k = name;

	get_ci(o, name, &k);
	return json_object_set_new(o, k, value);
}

/* 1 when s is a string attribute value we keep: short, printable UTF-8. */
static int
str_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > EB_SCIM_MAX_STR || !eb_str_is_utf8(s, len))
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* 1 when array a holds the string s (any case). */
static int
has_str(const json_t *a, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v)
	{
		if (json_is_string(v) &&
		    strcasecmp(json_string_value(v), s) == 0)
			return 1;
	}
	return 0;
}

/* active as a boolean: true/false, or "true"/"false" in any case. */
static int
read_active(const json_t *v, int *out)
{
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	if (json_is_string(v) && strcasecmp(json_string_value(v), "true") == 0)
		*out = 1;
	else if (json_is_string(v) &&
	         strcasecmp(json_string_value(v), "false") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

/* An optional string attribute: NULL when absent or null (dropped). */
static int
opt_str(json_t *res, const char *name, const char **out,
        struct eb_scim_err *err)
{
	json_t *v = get_ci(res, name, NULL);

	*out = NULL;
	if (v == NULL)
		return 0;
	if (json_is_null(v)) {
		del_ci(res, name);
		return 0;
	}
	if (!json_is_string(v) ||
	    !str_ok(json_string_value(v), json_string_length(v)))
		return fail(err, "invalidValue",
		            "%s must be a string of 1 to %d printable bytes",
		            name, EB_SCIM_MAX_STR);
	*out = json_string_value(v);
	return 0;
}

int
eb_scim_user_check(json_t *res, struct eb_scim_facts *f,
                   struct eb_scim_err *err)
{
	json_t *v;

	memset(f, 0, sizeof(*f));
	if (!json_is_object(res))
		return fail(err, "invalidSyntax", "a User must be an object");
	v = get_ci(res, "schemas", NULL);
	if (!json_is_array(v) || !has_str(v, EB_SCIM_USER_SCHEMA))
		return fail(err, "invalidSyntax",
		            "schemas must name " EB_SCIM_USER_SCHEMA);
	del_ci(res, "id");
	del_ci(res, "meta");
	if (opt_str(res, "userName", &f->user_name, err) != 0 ||
	    opt_str(res, "externalId", &f->external_id, err) != 0)
		return -1;
	if (f->user_name == NULL)
		return fail(err, "invalidValue", "userName is required");
	f->active = 1;
	if ((v = get_ci(res, "active", NULL)) != NULL && !json_is_null(v) &&
	    read_active(v, &f->active) != 0)
		return fail(err, "invalidValue",
		            "active must be true or false");
	del_ci(res, "active");
	if (json_object_set_new(res, "active", json_boolean(f->active)) != 0)
		return fail(err, "invalidValue", "out of memory");
	return 0;
}

/* ---- PATCH ------------------------------------------------------------ */

/* A parsed path: attr[filter_attr eq "filter_value"].sub */
struct path {
	char attr[MAX_PATH + 1];
	char sub[MAX_PATH + 1];   /* "" when none */
	char fattr[MAX_PATH + 1]; /* "" when no value filter */
	json_t *fvalue;           /* the filter's value (a reference) */
	json_t *container;        /* the object attr lives in */
};

static int
name_char(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '$';
}

/* Copy the attribute name at *p into out; advances *p. */
static int
read_name(const char **p, char *out)
{
	size_t n = 0;

	while (name_char((unsigned char)**p) && n < MAX_PATH)
		out[n++] = *(*p)++;
	out[n] = '\0';
	return n > 0 && !name_char((unsigned char)**p) ? 0 : -1;
}

/* The value filter 'a eq "v"' up to its ']', into pa. */
static int
read_filter(const char **p, struct path *pa)
{
	const char *s = *p, *q;
	json_error_t je;

	if (read_name(&s, pa->fattr) != 0 || *s++ != ' ' ||
	    strncasecmp(s, "eq ", 3) != 0)
		return -1;
	s += 3;
	if (*s == '"') {
		for (q = s + 1; *q != '\0' && *q != '"'; q++)
			if (*q == '\\' && q[1] != '\0')
				q++;
		if (*q != '"')
			return -1;
		q++;
	} else
		for (q = s; *q != '\0' && *q != ']'; q++)
			;
	pa->fvalue = json_loadb(s, (size_t)(q - s), JSON_DECODE_ANY, &je);
	if (pa->fvalue == NULL || *q != ']')
		return -1;
	*p = q + 1;
	return 0;
}

/*
 * Parse path into pa, finding its container in res (an extension's
 * object, created when create is set; NULL when absent).
 */
static int
parse_path(json_t *res, const char *path, int create, struct path *pa,
           struct eb_scim_err *err)
{
	const char *p = path, *colon;
	char urn[MAX_PATH + 1];
	json_t *ext;

	memset(pa, 0, sizeof(*pa));
	pa->container = res;
	if (strlen(path) > MAX_PATH)
		return fail(err, "invalidPath", "path too long");
	if (strncasecmp(p, "urn:", 4) == 0) {
		if ((colon = strrchr(p, ':')) == NULL || colon - p < 5)
			return fail(err, "invalidPath", "bad path");
		memcpy(urn, p, (size_t)(colon - p));
		urn[colon - p] = '\0';
		p = colon + 1;
		if (strcasecmp(urn, EB_SCIM_USER_SCHEMA) != 0) {
			ext = get_ci(res, urn, NULL);
			if (ext == NULL && create) {
				ext = json_object();
				if (ext == NULL || set_ci(res, urn, ext) != 0)
					return fail(err, "invalidValue",
					            "out of memory");
			}
			if (ext != NULL && !json_is_object(ext))
				return fail(err, "invalidPath",
				            "%s is not an object", urn);
			pa->container = ext;
		}
	}
	if (read_name(&p, pa->attr) != 0)
		return fail(err, "invalidPath", "bad attribute in path");
	if (*p == '[' && (p++, read_filter(&p, pa) != 0)) {
		json_decref(pa->fvalue);
		pa->fvalue = NULL;
		return fail(err, "invalidPath", "bad value filter in path");
	}
	if (*p == '.' && (p++, read_name(&p, pa->sub) != 0)) {
		json_decref(pa->fvalue);
		pa->fvalue = NULL;
		return fail(err, "invalidPath", "bad sub-attribute in path");
	}
	if (*p != '\0') {
		json_decref(pa->fvalue);
		pa->fvalue = NULL;
		return fail(err, "invalidPath", "bad path");
	}
	return 0;
}

/* Add or replace member name of o with value (a new reference taken). */
static int
put(json_t *o, const char *name, int kind, json_t *value)
{
	json_t *cur = get_ci(o, name, NULL);

	if (kind == OP_ADD && json_is_array(cur) && json_is_array(value))
		return json_array_extend(cur, value);
	if (json_is_object(cur) && json_is_object(value))
		return json_object_update(cur, value);
	return set_ci(o, name, json_deep_copy(value));
}

/* 1 when element e of a multi-valued attribute matches pa's filter. */
static int
matches(const json_t *e, const struct path *pa)
{
	json_t *v = get_ci(e, pa->fattr, NULL);

	if (v == NULL)
		return 0;
	if (json_is_string(v) && json_is_string(pa->fvalue))
		return strcasecmp(json_string_value(v),
		                  json_string_value(pa->fvalue)) == 0;
	return json_equal(v, pa->fvalue);
}

/* An operation on the elements of a multi-valued attribute that match. */
static int
apply_filtered(struct path *pa, int kind, json_t *value,
               struct eb_scim_err *err)
{
	json_t *arr = get_ci(pa->container, pa->attr, NULL), *e, *n;
	size_t i, hit = 0;

	if (arr == NULL && kind != OP_REMOVE) {
		if ((arr = json_array()) == NULL ||
		    set_ci(pa->container, pa->attr, arr) != 0)
			return fail(err, "invalidValue", "out of memory");
	}
	if (arr == NULL)
		return 0;
	if (!json_is_array(arr))
		return fail(err, "invalidPath", "%s is not multi-valued",
		            pa->attr);
	for (i = 0; i < json_array_size(arr); i++) {
		e = json_array_get(arr, i);
		if (!json_is_object(e) || !matches(e, pa))
			continue;
		hit++;
		if (kind == OP_REMOVE && pa->sub[0] == '\0') {
			json_array_remove(arr, i--);
			continue;
		}
		if (kind == OP_REMOVE)
			del_ci(e, pa->sub);
		else if (pa->sub[0] != '\0'
		             ? put(e, pa->sub, kind, value) != 0
		             : !json_is_object(value) ||
		                   json_object_update(e, value) != 0)
			return fail(err, "invalidValue",
			            "%s: a value of the wrong type", pa->attr);
	}
	if (hit > 0 || kind == OP_REMOVE)
		return 0;
	/* nothing matched: add the element the filter describes */
	n = pa->sub[0] != '\0' ? json_object() : json_deep_copy(value);
	if (!json_is_object(n)) {
		json_decref(n);
		return fail(err, "invalidValue",
		            "the value of %s must be an object", pa->attr);
	}
	if (set_ci(n, pa->fattr, json_incref(pa->fvalue)) != 0 ||
	    (pa->sub[0] != '\0' && json_object_set(n, pa->sub, value) != 0) ||
	    json_array_append_new(arr, n) != 0)
		return fail(err, "invalidValue", "out of memory");
	return 0;
}

static int
apply_path(json_t *res, const char *path, int kind, json_t *value,
           struct eb_scim_err *err)
{
	struct path pa;
	json_t *o;
	int rc = 0;

	if (kind != OP_REMOVE && value == NULL)
		return fail(err, "invalidValue", "%s needs a value", path);
	if (parse_path(res, path, kind != OP_REMOVE, &pa, err) != 0)
		return -1;
	if (pa.container == NULL) /* remove from an absent extension */
		return 0;
	if (pa.fvalue != NULL) {
		rc = apply_filtered(&pa, kind, value, err);
		json_decref(pa.fvalue);
		return rc;
	}
	if (pa.sub[0] != '\0') {
		o = get_ci(pa.container, pa.attr, NULL);
		if (o == NULL && kind == OP_REMOVE)
			return 0;
		if (o == NULL && ((o = json_object()) == NULL ||
		                  set_ci(pa.container, pa.attr, o) != 0))
			return fail(err, "invalidValue", "out of memory");
		if (!json_is_object(o))
			return fail(err, "invalidPath", "%s is not complex",
			            pa.attr);
		pa.container = o;
		memcpy(pa.attr, pa.sub, sizeof(pa.attr));
	}
	if (kind == OP_REMOVE)
		del_ci(pa.container, pa.attr);
	else if (put(pa.container, pa.attr, kind, value) != 0)
		return fail(err, "invalidValue", "out of memory");
	return 0;
}

/* One operation without a path: each member of value is a path. */
static int
apply_object(json_t *res, int kind, json_t *value, struct eb_scim_err *err)
{
	const char *k;
	json_t *v;

	if (kind == OP_REMOVE)
		return fail(err, "noTarget", "remove needs a path");
	if (!json_is_object(value))
		return fail(err, "invalidValue",
		            "an operation without a path needs an object");
	json_object_foreach(value, k, v)
	{
		if (apply_path(res, k, kind, v, err) != 0)
			return -1;
	}
	return 0;
}

static int
op_kind(const json_t *op)
{
	const char *s = json_string_value(get_ci(op, "op", NULL));

	if (s == NULL)
		return -1;
	if (strcasecmp(s, "add") == 0)
		return OP_ADD;
	if (strcasecmp(s, "replace") == 0)
		return OP_REPLACE;
	if (strcasecmp(s, "remove") == 0)
		return OP_REMOVE;
	return -1;
}

int
eb_scim_patch(json_t *res, const json_t *patch, struct eb_scim_err *err)
{
	json_t *ops, *op, *path, *value;
	size_t i;
	int kind;

	if (!json_is_object(patch) ||
	    !json_is_array(get_ci(patch, "schemas", NULL)) ||
	    !has_str(get_ci(patch, "schemas", NULL), EB_SCIM_PATCH_SCHEMA))
		return fail(err, "invalidSyntax",
		            "schemas must name " EB_SCIM_PATCH_SCHEMA);
	ops = get_ci(patch, "Operations", NULL);
	if (!json_is_array(ops) || json_array_size(ops) == 0 ||
	    json_array_size(ops) > EB_SCIM_MAX_OPS)
		return fail(err, "invalidSyntax",
		            "Operations must list 1 to %d operations",
		            EB_SCIM_MAX_OPS);
	json_array_foreach(ops, i, op)
	{
		if ((kind = op_kind(op)) < 0)
			return fail(err, "invalidSyntax",
			            "operation %zu: op must be add, replace "
			            "or remove",
			            i);
		path = get_ci(op, "path", NULL);
		value = get_ci(op, "value", NULL);
		if (path != NULL && !json_is_string(path))
			return fail(err, "invalidPath",
			            "operation %zu: path must be a string", i);
		if (path == NULL || json_string_length(path) == 0) {
			if (apply_object(res, kind, value, err) != 0)
				return -1;
		} else if (apply_path(res, json_string_value(path), kind, value,
		                      err) != 0)
			return -1;
	}
	return 0;
}

/* ---- filters ---------------------------------------------------------- */

int
eb_scim_filter(const char *filter, int *attr, char **value,
               struct eb_scim_err *err)
{
	const char *p = filter, *q;
	char name[MAX_PATH + 1];
	json_error_t je;
	json_t *v;

	*value = NULL;
	if (strlen(filter) > 2 * EB_SCIM_MAX_STR + 64)
		return fail(err, "invalidFilter", "filter too long");
	while (*p == ' ')
		p++;
	if (read_name(&p, name) != 0)
		goto bad;
	if (strcasecmp(name, "userName") == 0)
		*attr = EB_SCIM_FILTER_USER_NAME;
	else if (strcasecmp(name, "externalId") == 0)
		*attr = EB_SCIM_FILTER_EXTERNAL_ID;
	else
		return fail(err, "invalidFilter",
		            "only userName eq and externalId eq are supported");
	if (*p++ != ' ' || strncasecmp(p, "eq ", 3) != 0)
		return fail(err, "invalidFilter",
		            "only userName eq and externalId eq are supported");
	for (p += 3; *p == ' '; p++)
		;
	if (*p != '"')
		goto bad;
	for (q = p + 1; *q != '\0' && *q != '"'; q++)
		if (*q == '\\' && q[1] != '\0')
			q++;
	if (*q != '"')
		goto bad;
	v = json_loadb(p, (size_t)(q + 1 - p), JSON_DECODE_ANY, &je);
	for (q++; *q == ' '; q++)
		;
	if (!json_is_string(v) || *q != '\0' ||
	    !str_ok(json_string_value(v), json_string_length(v))) {
		json_decref(v);
		goto bad;
	}
	*value = eb_strdup(json_string_value(v));
	json_decref(v);
	if (*value == NULL)
		return fail(err, "invalidFilter", "out of memory");
	return 0;
bad:
	return fail(err, "invalidFilter",
	            "a filter is attribute eq \"value\" (a JSON string)");
}
