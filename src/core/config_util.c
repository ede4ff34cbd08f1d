/*
 * The configuration loader's typed getters: reading a JSON file, checking
 * keys, strings, numbers, lists, URLs, paths and secrets, each reporting
 * "file, key path, reason" on the first mistake. Nothing here puts a
 * configured value into an error reason, so a secret typed into the wrong
 * key cannot leak through a message.
 */
#include "core/config_int.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/mem.h"
#include "core/str.h"

void
eb_cfg_key(char *out, size_t outlen, const char *prefix, const char *name)
{
	size_t i;

	if (prefix != NULL && *prefix && name != NULL && *name)
		snprintf(out, outlen, "%s.%s", prefix, name);
	else
		snprintf(out, outlen, "%s",
		         prefix != NULL && *prefix ? prefix
		         : name                    ? name
		                                   : "");
	/* keys come from the file: keep the message printable */
	for (i = 0; out[i]; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			out[i] = '?';
}

int
eb_cfg_fail(struct eb_cfg_ctx *c, const char *prefix, const char *name,
            const char *fmt, ...)
{
	va_list ap;

	if (c->err == NULL || c->err->reason[0] != '\0')
		return -1; /* the first error is the one reported */
	snprintf(c->err->file, sizeof(c->err->file), "%s",
	         c->file ? c->file : "");
	eb_cfg_key(c->err->key, sizeof(c->err->key), prefix, name);
	if (c->keyroot != NULL && *c->keyroot) {
		char rel[sizeof(c->err->key)];

		memcpy(rel, c->err->key, sizeof(rel));
		if (snprintf(c->err->key, sizeof(c->err->key), "%s%s%s",
		             c->keyroot, rel[0] ? "." : "",
		             rel) >= (int)sizeof(c->err->key))
			c->err->key[sizeof(c->err->key) - 2] = '~';
	}
	va_start(ap, fmt);
	vsnprintf(c->err->reason, sizeof(c->err->reason), fmt, ap);
	va_end(ap);
	if (c->err->reason[0] == '\0')
		snprintf(c->err->reason, sizeof(c->err->reason), "invalid");
	return -1;
}

/*
 * One file into the configuration's hash: its name, a NUL, its length as
 * 8 bytes big-endian, its bytes as read (secret references unresolved, so
 * the hash says nothing about a secret kept outside the files).
 */
static int
hash_file(struct eb_cfg_ctx *c, const char *buf, size_t len)
{
	unsigned char n[8];
	int i;

	for (i = 0; i < 8; i++)
		n[i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	if (EVP_DigestUpdate(c->hash, c->hash_name, strlen(c->hash_name) + 1) !=
	        1 ||
	    EVP_DigestUpdate(c->hash, n, sizeof(n)) != 1 ||
	    EVP_DigestUpdate(c->hash, buf, len) != 1)
		return eb_cfg_fail(c, NULL, NULL, "cannot hash the file");
	return 0;
}

/* Read a whole regular file of at most max bytes; NUL-terminated. */
json_t *
eb_cfg_read_json(struct eb_cfg_ctx *c, const char *path)
{
	json_error_t jerr;
	const char *why = NULL;
	char *buf, *near;
	size_t len;
	json_t *root;

	if ((buf = eb_cfg_read_file(path, EB_CFG_MAX_FILE, &len, &why)) ==
	    NULL) {
		eb_cfg_fail(c, NULL, NULL, "cannot read file: %s", why);
		return NULL;
	}
	if (c->hash != NULL && c->hash_name != NULL &&
	    hash_file(c, buf, len) == -1) {
		eb_free_secret(buf, len + 1);
		return NULL;
	}
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	eb_free_secret(buf, len + 1);
	if (root == NULL) {
		/* jansson quotes the text "near" the error: it may be a secret
		 */
		if ((near = strstr(jerr.text, " near ")) != NULL &&
		    !eb_str_has_prefix(jerr.text, "duplicate object key"))
			*near = '\0';
		eb_cfg_fail(c, NULL, NULL,
		            "invalid JSON at line %d column %d: %s", jerr.line,
		            jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		eb_cfg_fail(c, NULL, NULL,
		            "the top level must be a JSON object");
		return NULL;
	}
	return root;
}

int
eb_cfg_keys(struct eb_cfg_ctx *c, const json_t *obj, const char *prefix,
            const char *const *allowed)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach((json_t *)obj, k, v)
	{
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(k, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL)
			return eb_cfg_fail(c, prefix, k, "unknown key");
	}
	return 0;
}

int
eb_cfg_schema_ref(struct eb_cfg_ctx *c, const json_t *root)
{
	const json_t *v = json_object_get(root, "$schema");

	if (v != NULL && !json_is_string(v))
		return eb_cfg_fail(c, NULL, "$schema",
		                   "must be a string (the JSON Schema's URI or "
		                   "path; it is not read)");
	return 0;
}

int
eb_cfg_obj(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
           const char *name, json_t **out)
{
	json_t *v = json_object_get(o, name);

	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_object(v))
		return eb_cfg_fail(c, prefix, name, "must be an object");
	*out = v;
	return 0;
}

/* Check one string value; *out gets a (possibly normalised) copy. */
static int
check_str(struct eb_cfg_ctx *c, const char *prefix, const char *name,
          const json_t *v, int flags, char **out)
{
	const char *s;
	size_t i, len;
	char *d;

	if (!json_is_string(v))
		return eb_cfg_fail(c, prefix, name, "must be a string");
	s = json_string_value(v);
	len = json_string_length(v);
	if (len == 0)
		return eb_cfg_fail(c, prefix, name, "must not be empty");
	if (len > EB_CFG_MAX_STR)
		return eb_cfg_fail(c, prefix, name, "is longer than %d bytes",
		                   EB_CFG_MAX_STR);
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x20 || ch == 0x7f)
			return eb_cfg_fail(
			    c, prefix, name,
			    "must not contain control characters");
		if ((flags & EB_CFG_NOSPACE) && ch == ' ')
			return eb_cfg_fail(c, prefix, name,
			                   "must not contain spaces");
	}
	if ((flags & EB_CFG_FQDN) && !eb_str_is_fqdn(s))
		return eb_cfg_fail(c, prefix, name,
		                   "must be a fully qualified domain name");
	if ((d = eb_strdup(s)) == NULL)
		return eb_cfg_fail(c, prefix, name, "out of memory");
	if (flags & EB_CFG_FQDN) {
		eb_str_lower(d);
		if (d[len - 1] == '.')
			d[len - 1] = '\0';
	}
	eb_free(*out);
	*out = d;
	return 0;
}

int
eb_cfg_str(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
           const char *name, int required, int flags, char **out)
{
	json_t *v = json_object_get(o, name);

	if (v == NULL)
		return required ? eb_cfg_fail(c, prefix, name, "is required")
		                : 0;
	return check_str(c, prefix, name, v, flags, out);
}

int
eb_cfg_enum(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
            const char *name, const char *const *names, int *out)
{
	json_t *v = json_object_get(o, name);
	char list[256] = "";
	size_t i, off = 0;

	if (v == NULL)
		return 0;
	if (json_is_string(v))
		for (i = 0; names[i] != NULL; i++)
			if (strcmp(json_string_value(v), names[i]) == 0) {
				*out = (int)i;
				return 0;
			}
	for (i = 0; names[i] != NULL && off < sizeof(list); i++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s",
		                        i ? ", " : "", names[i]);
	return eb_cfg_fail(c, prefix, name, "must be one of: %s", list);
}

int
eb_cfg_int(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
           const char *name, long long min, long long max, long long *out)
{
	json_t *v = json_object_get(o, name);
	long long n;

	if (v == NULL)
		return 0;
	if (!json_is_integer(v))
		return eb_cfg_fail(c, prefix, name, "must be an integer");
	n = (long long)json_integer_value(v);
	if (n < min || n > max)
		return eb_cfg_fail(c, prefix, name,
		                   "must be between %lld and %lld", min, max);
	*out = n;
	return 0;
}

int
eb_cfg_bool(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
            const char *name, int *out)
{
	json_t *v = json_object_get(o, name);

	if (v == NULL)
		return 0;
	if (!json_is_boolean(v))
		return eb_cfg_fail(c, prefix, name, "must be true or false");
	*out = json_is_true(v);
	return 0;
}

int
eb_cfg_list_has(const char *const *list, const char *s)
{
	for (; list != NULL && *list != NULL; list++)
		if (strcmp(*list, s) == 0)
			return 1;
	return 0;
}

int
eb_cfg_strlist_has(const struct eb_strlist *l, const char *s)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return 1;
	return 0;
}

int
eb_cfg_strlist(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
               const char *name, int flags, struct eb_strlist *out)
{
	json_t *v = json_object_get(o, name), *item;
	char key[256];
	size_t i, n;

	if (v == NULL)
		return 0;
	if (!json_is_array(v))
		return eb_cfg_fail(c, prefix, name,
		                   "must be a list of strings");
	n = json_array_size(v);
	if (n == 0 && (flags & EB_CFG_NONEMPTY))
		return eb_cfg_fail(c, prefix, name, "must not be empty");
	if (n > EB_CFG_MAX_LIST)
		return eb_cfg_fail(c, prefix, name, "has more than %d items",
		                   EB_CFG_MAX_LIST);
	eb_cfg_strlist_free(out);
	if ((out->v = eb_calloc(n ? n : 1, sizeof(*out->v))) == NULL)
		return eb_cfg_fail(c, prefix, name, "out of memory");
	json_array_foreach(v, i, item)
	{
		char *s = NULL;

		snprintf(key, sizeof(key), "%s[%zu]", name, i);
		if (check_str(c, prefix, key, item, flags, &s) == -1)
			return -1;
		if (eb_cfg_strlist_has(out, s)) {
			eb_free(s);
			return eb_cfg_fail(c, prefix, key, "is a duplicate");
		}
		out->v[out->n++] = s;
	}
	return 0;
}

int
eb_cfg_kvlist(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
              const char *name, int kflags, int vflags, struct eb_kvlist *out)
{
	json_t *v = json_object_get(o, name), *item, *jk;
	char path[256];
	const char *k;
	size_t n, i;

	if (v == NULL)
		return 0;
	if (!json_is_object(v))
		return eb_cfg_fail(c, prefix, name,
		                   "must be an object of strings");
	n = json_object_size(v);
	if (n > EB_CFG_MAX_LIST)
		return eb_cfg_fail(c, prefix, name, "has more than %d keys",
		                   EB_CFG_MAX_LIST);
	eb_cfg_kvlist_free(out);
	if ((out->v = eb_calloc(n ? n : 1, sizeof(*out->v))) == NULL)
		return eb_cfg_fail(c, prefix, name, "out of memory");
	eb_cfg_key(path, sizeof(path), prefix, name);
	json_object_foreach(v, k, item)
	{
		struct eb_kv kv = {NULL, NULL};

		if ((jk = json_string(k)) == NULL)
			return eb_cfg_fail(c, path, k, "is not valid UTF-8");
		if (check_str(c, path, k, jk, kflags, &kv.key) == -1) {
			json_decref(jk);
			return -1;
		}
		json_decref(jk);
		for (i = 0; i < out->n; i++)
			if (strcmp(out->v[i].key, kv.key) == 0) {
				eb_free(kv.key);
				return eb_cfg_fail(c, path, k,
				                   "is a duplicate");
			}
		if (check_str(c, path, k, item, vflags, &kv.value) == -1) {
			eb_free(kv.key);
			return -1;
		}
		out->v[out->n++] = kv;
	}
	return 0;
}

int
eb_cfg_default_str(struct eb_cfg_ctx *c, const char *prefix, const char *name,
                   char **out, const char *v)
{
	if (*out == NULL && (*out = eb_strdup(v)) == NULL)
		return eb_cfg_fail(c, prefix, name, "out of memory");
	return 0;
}

int
eb_cfg_url(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
           const char *name, int required, int flags, char **out)
{
	char *s = NULL, *u;
	const char *why = NULL;

	if (eb_cfg_str(c, o, prefix, name, required, 0, &s) == -1)
		return -1;
	if (s == NULL)
		return 0;
	u = eb_cfg_check_url(s, flags, &why);
	eb_free(s);
	if (u == NULL)
		return eb_cfg_fail(c, prefix, name, "%s", why);
	eb_free(*out);
	*out = u;
	return 0;
}

int
eb_cfg_path(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
            const char *name, int required, char **out)
{
	char *s = NULL, *p;

	if (eb_cfg_str(c, o, prefix, name, required, 0, &s) == -1)
		return -1;
	if (s == NULL)
		return 0;
	p = eb_cfg_join(c->dir, s);
	eb_free(s);
	if (p == NULL)
		return eb_cfg_fail(c, prefix, name, "out of memory");
	eb_free(*out);
	*out = p;
	return 0;
}

/* As eb_cfg_secret_get; lines: CR and LF are allowed (PEM). */
static int
secret_get(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
           const char *name, int required, int lines, char **out)
{
	json_t *v = json_object_get(o, name);
	char reason[sizeof(c->err->reason)], *s;
	const char *p;

	if (v == NULL)
		return required ? eb_cfg_fail(c, prefix, name, "is required")
		                : 0;
	if (!json_is_string(v))
		return eb_cfg_fail(c, prefix, name, "must be a string");
	s = eb_config_secret(json_string_value(v), c->dir, reason,
	                     sizeof(reason));
	/* the inline text is a copy of the secret: do not leave it around */
	OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
	if (s == NULL)
		return eb_cfg_fail(c, prefix, name, "%s", reason);
	for (p = s; *p; p++)
		if (((unsigned char)*p < 0x20 || *p == 0x7f) &&
		    !(lines && (*p == '\n' || *p == '\r'))) {
			eb_free_secret_str(s);
			return eb_cfg_fail(
			    c, prefix, name,
			    "must not contain control characters");
		}
	eb_free_secret_str(*out);
	*out = s;
	return 0;
}

int
eb_cfg_secret_get(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
                  const char *name, int required, char **out)
{
	return secret_get(c, o, prefix, name, required, 0, out);
}

int
eb_cfg_secret_pem(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
                  const char *name, int required, char **out)
{
	return secret_get(c, o, prefix, name, required, 1, out);
}

void
eb_cfg_strlist_free(struct eb_strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		eb_free(l->v[i]);
	eb_free(l->v);
	l->v = NULL;
	l->n = 0;
}

void
eb_cfg_kvlist_free(struct eb_kvlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		eb_free(l->v[i].key);
		eb_free(l->v[i].value);
	}
	eb_free(l->v);
	l->v = NULL;
	l->n = 0;
}
