/*
 * Login flows sealed into the challenge URL (flow.h). The plaintext is a
 * small JSON object; the associated data names the format and the tenant,
 * so that a flow of one tenant never opens under another's path.
 */
#include "handle/flow.h"

#include <string.h>

#include <jansson.h>

#include "core/log.h"
#include "core/mem.h"
#include "jose/b64.h"

#define FLOW_AD_PREFIX "enrollbridge login flow v1:"

/* The associated data for tenant, in buf; its length, or 0. */
static size_t
flow_ad(const char *tenant, char *buf, size_t len)
{
	size_t p = sizeof(FLOW_AD_PREFIX) - 1, t = strlen(tenant);

	if (p + t + 1 > len)
		return 0;
	memcpy(buf, FLOW_AD_PREFIX, p);
	memcpy(buf + p, tenant, t + 1);
	return p + t;
}

/* Set key to s in o when s is not NULL; -1 when out of memory. */
static int
set_str(json_t *o, const char *key, const char *s)
{
	return s == NULL ? 0 : json_object_set_new(o, key, json_string(s));
}

int
eb_flow_seal(const uint8_t key[EB_SEAL_KEY_LEN], const struct eb_store_flow *f,
             char **out)
{
	char ad[256], *pt = NULL;
	uint8_t *blob = NULL;
	size_t adlen, bloblen = 0;
	json_t *o;
	int rc = -1;

	*out = NULL;
	if (f->tenant == NULL ||
	    (adlen = flow_ad(f->tenant, ad, sizeof(ad))) == 0)
		return -1;
	if ((o = json_object()) == NULL ||
	    json_object_set_new(o, "k", json_integer(f->kind)) != 0 ||
	    json_object_set_new(o, "c", json_integer(f->created)) != 0 ||
	    json_object_set_new(o, "e", json_integer(f->expires)) != 0 ||
	    set_str(o, "m", f->enrollment_mode) != 0 ||
	    set_str(o, "mf", f->model_family) != 0 ||
	    set_str(o, "p", f->product) != 0 ||
	    set_str(o, "v", f->version) != 0 ||
	    set_str(o, "l", f->language) != 0 ||
	    set_str(o, "o", f->os_version) != 0 ||
	    set_str(o, "u", f->udid) != 0 || set_str(o, "s", f->serial) != 0 ||
	    set_str(o, "x", f->extra) != 0 ||
	    (pt = json_dumps(o, JSON_COMPACT)) == NULL)
		goto out;
	if (eb_seal_seal(key, ad, adlen, pt, strlen(pt), &blob, &bloblen) !=
	        0 ||
	    (*out = eb_b64_url_encode(blob, bloblen)) == NULL)
		goto out;
	if (strlen(*out) > EB_FLOW_MAX_LEN) {
		log_warnx("tenant %s: login flow too long to carry (%zu bytes)",
		          f->tenant, strlen(*out));
		eb_free(*out);
		*out = NULL;
		goto out;
	}
	rc = 0;
out:
	if (rc != 0 && *out == NULL)
		log_warnx("tenant %s: cannot seal a login flow", f->tenant);
	json_decref(o);
	if (pt != NULL)
		eb_free_secret_str(pt);
	eb_free(blob);
	return rc;
}

/* A copy of o's string member key into *dst (NULL when absent); -1 when
 * it is there but not a string, or out of memory. */
static int
get_str(json_t *o, const char *key, char **dst)
{
	json_t *v = json_object_get(o, key);

	*dst = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return -1;
	return (*dst = eb_strdup(json_string_value(v))) == NULL ? -1 : 0;
}

int
eb_flow_open(const uint8_t key[EB_SEAL_KEY_LEN], const char *tenant,
             const char *text, int64_t now, struct eb_store_flow *f)
{
	char ad[256], hash[EB_STORE_HASH_HEXLEN + 1];
	uint8_t *blob = NULL, *pt = NULL;
	size_t adlen, len = strlen(text), bloblen = 0, ptlen = 0;
	json_t *o = NULL, *k, *c, *e;
	int rc = EB_FLOW_OPEN_BAD;

	memset(f, 0, sizeof(*f));
	if (len == 0 || len > EB_FLOW_MAX_LEN ||
	    (adlen = flow_ad(tenant, ad, sizeof(ad))) == 0 ||
	    eb_b64_url_decode(text, len, &blob, &bloblen) != 0 ||
	    eb_seal_open(key, ad, adlen, blob, bloblen, &pt, &ptlen) != 0 ||
	    (o = json_loadb((const char *)pt, ptlen, JSON_REJECT_DUPLICATES,
	                    NULL)) == NULL ||
	    !json_is_object(o))
		goto out;
	k = json_object_get(o, "k");
	c = json_object_get(o, "c");
	e = json_object_get(o, "e");
	if (!json_is_integer(k) || !json_is_integer(c) || !json_is_integer(e))
		goto out;
	f->kind = (int)json_integer_value(k);
	f->created = json_integer_value(c);
	f->expires = json_integer_value(e);
	rc = EB_FLOW_OPEN_ERROR;
	if (get_str(o, "m", &f->enrollment_mode) != 0 ||
	    get_str(o, "mf", &f->model_family) != 0 ||
	    get_str(o, "p", &f->product) != 0 ||
	    get_str(o, "v", &f->version) != 0 ||
	    get_str(o, "l", &f->language) != 0 ||
	    get_str(o, "o", &f->os_version) != 0 ||
	    get_str(o, "u", &f->udid) != 0 ||
	    get_str(o, "s", &f->serial) != 0 ||
	    get_str(o, "x", &f->extra) != 0 ||
	    (f->tenant = eb_strdup(tenant)) == NULL ||
	    eb_store_hash_token(text, len, hash) != 0 ||
	    (f->id = eb_strdup(hash)) == NULL)
		goto out;
	rc = f->expires <= now ? EB_FLOW_OPEN_EXPIRED : EB_FLOW_OPEN_OK;
out:
	json_decref(o);
	if (pt != NULL)
		eb_free_secret(pt, ptlen + 1);
	eb_free(blob);
	return rc;
}
