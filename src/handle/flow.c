/*
 * Login flows sealed into the challenge URL, and upstream states sealed
 * into the `state` sent to the IdP (flow.h). Each plaintext is a small JSON
 * object; the associated data names the format and the tenant, so that a
 * text of one tenant never opens under another's path, and a challenge
 * flow never opens as a state nor a state as a flow. Both are sealed with
 * the ring's flow subkeys (jose/seal.h); flows sealed before those, under
 * the raw first key, still open until they expire.
 */
#include "handle/flow.h"

#include <stddef.h>
#include <string.h>

#include <jansson.h>

#include "core/log.h"
#include "core/mem.h"
#include "jose/b64.h"

#define FLOW_AD_PREFIX  "enrollbridge login flow v1:"
#define STATE_AD_PREFIX "enrollbridge upstream state v1:"

/* A string member of struct eb_store_flow and its short JSON name. */
struct field {
	const char *name;
	size_t off;
};

#define F(n, m)                                                                \
	{                                                                      \
		n, offsetof(struct eb_store_flow, m)                           \
	}

/* What a challenge carries: the device's side. */
static const struct field flow_fields[] = {
    F("m", enrollment_mode),
    F("mf", model_family),
    F("p", product),
    F("v", version),
    F("l", language),
    F("o", os_version),
    F("u", udid),
    F("s", serial),
    F("x", extra),
    {NULL, 0},
};

/* What a started sign-in needs at its callback (the verifier is apart:
 * it is bytes in struct eb_store_flow). */
static const struct field state_fields[] = {
    F("m", enrollment_mode),
    F("t", user_identifier),
    F("x", extra),
    F("n", upstream_nonce),
    F("b", browser_binding),
    F("ci", client_id),
    F("ru", redirect_uri),
    F("ds", device_state),
    F("sc", scope),
    F("cc", code_challenge),
    {NULL, 0},
};

#undef F

static char **
member(struct eb_store_flow *f, const struct field *fl)
{
	return (char **)(void *)((char *)f + fl->off);
}

static const char *
cmember(const struct eb_store_flow *f, const struct field *fl)
{
	return *(char *const *)(const void *)((const char *)f + fl->off);
}

/* The associated data for tenant under prefix, in buf; its length, or 0. */
static size_t
make_ad(const char *prefix, const char *tenant, char *buf, size_t len)
{
	size_t p = strlen(prefix), t = strlen(tenant);

	if (p + t + 1 > len)
		return 0;
	memcpy(buf, prefix, p);
	memcpy(buf + p, tenant, t + 1);
	return p + t;
}

/* Set key to s in o when s is not NULL; -1 when out of memory. */
static int
set_str(json_t *o, const char *key, const char *s)
{
	return s == NULL ? 0 : json_object_set_new(o, key, json_string(s));
}

/*
 * Seal f's kind, times, the listed fields and the members o already holds
 * for f->tenant under prefix; base64url into *out, at most max bytes.
 */
static int
seal(const struct eb_seal_ring *ring, const char *prefix,
     const struct field *fields, const struct eb_store_flow *f, json_t *o,
     size_t max, const char *what, char **out)
{
	char ad[256], *pt = NULL;
	uint8_t *blob = NULL;
	size_t adlen, bloblen = 0, i;
	int rc = -1;

	*out = NULL;
	if (f->tenant == NULL ||
	    (adlen = make_ad(prefix, f->tenant, ad, sizeof(ad))) == 0)
		return -1;
	if (json_object_set_new(o, "k", json_integer(f->kind)) != 0 ||
	    json_object_set_new(o, "c", json_integer(f->created)) != 0 ||
	    json_object_set_new(o, "e", json_integer(f->expires)) != 0)
		goto out;
	for (i = 0; fields[i].name != NULL; i++)
		if (set_str(o, fields[i].name, cmember(f, &fields[i])) != 0)
			goto out;
	if ((pt = json_dumps(o, JSON_COMPACT)) == NULL)
		goto out;
	if (eb_seal_ring_seal(ring, EB_SEAL_FLOW, ad, adlen, pt, strlen(pt),
	                      &blob, &bloblen) != 0 ||
	    (*out = eb_b64_url_encode(blob, bloblen)) == NULL)
		goto out;
	if (strlen(*out) > max) {
		log_warnx("tenant %s: %s too long to carry (%zu bytes)",
		          f->tenant, what, strlen(*out));
		eb_free(*out);
		*out = NULL;
		goto out;
	}
	rc = 0;
out:
	if (rc != 0 && *out == NULL)
		log_warnx("tenant %s: cannot seal a %s", f->tenant, what);
	if (pt != NULL)
		eb_free_secret_str(pt);
	eb_free(blob);
	return rc;
}

int
eb_flow_seal(const struct eb_seal_ring *ring, const struct eb_store_flow *f,
             char **out)
{
	json_t *o = json_object();
	int rc;

	*out = NULL;
	if (o == NULL)
		return -1;
	rc = seal(ring, FLOW_AD_PREFIX, flow_fields, f, o, EB_FLOW_MAX_LEN,
	          "login flow", out);
	json_decref(o);
	return rc;
}

int
eb_flow_state_seal(const struct eb_seal_ring *ring,
                   const struct eb_store_flow *f, char **out)
{
	json_t *o = json_object();
	char *v = NULL;
	int rc = -1;

	*out = NULL;
	/* the verifier is text (RFC 7636: 43 to 128 characters) */
	if (o == NULL || f->pkce_verifier == NULL ||
	    f->pkce_verifier_len < 43 || f->pkce_verifier_len > 128 ||
	    f->upstream_nonce == NULL || f->browser_binding == NULL ||
	    (v = eb_strndup((const char *)f->pkce_verifier,
	                    f->pkce_verifier_len)) == NULL ||
	    strlen(v) != f->pkce_verifier_len ||
	    json_object_set_new(o, "pv", json_string(v)) != 0)
		goto out;
	rc = seal(ring, STATE_AD_PREFIX, state_fields, f, o,
	          EB_FLOW_STATE_MAX_LEN, "sign-in state", out);
out:
	json_decref(o); /* the verifier inside is released with it */
	if (v != NULL)
		eb_free_secret_str(v);
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

/*
 * Open text sealed under prefix for tenant: kind, times and the listed
 * fields into *f, its hash into f->id. *op keeps the parsed object for the
 * caller's own members (json_decref it). Returns enum eb_flow_open_rc.
 */
static int
open_text(const struct eb_seal_ring *ring, const char *prefix,
          const struct field *fields, size_t max, const char *tenant,
          const char *text, int64_t now, struct eb_store_flow *f, json_t **op)
{
	char ad[256], hash[EB_STORE_HASH_HEXLEN + 1];
	uint8_t *blob = NULL, *pt = NULL;
	size_t adlen, len = strlen(text), bloblen = 0, ptlen = 0, i;
	json_t *o = NULL, *k, *c, *e;
	int rc = EB_FLOW_OPEN_BAD;

	memset(f, 0, sizeof(*f));
	*op = NULL;
	if (len == 0 || len > max ||
	    (adlen = make_ad(prefix, tenant, ad, sizeof(ad))) == 0 ||
	    eb_b64_url_decode(text, len, &blob, &bloblen) != 0 ||
	    eb_seal_ring_open(ring, EB_SEAL_FLOW, ad, adlen, blob, bloblen, &pt,
	                      &ptlen, NULL) != 0 ||
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
	for (i = 0; fields[i].name != NULL; i++)
		if (get_str(o, fields[i].name, member(f, &fields[i])) != 0)
			goto out;
	if ((f->tenant = eb_strdup(tenant)) == NULL ||
	    eb_store_hash_token(text, len, hash) != 0 ||
	    (f->id = eb_strdup(hash)) == NULL)
		goto out;
	rc = f->expires <= now ? EB_FLOW_OPEN_EXPIRED : EB_FLOW_OPEN_OK;
	*op = o;
	o = NULL;
out:
	json_decref(o);
	if (pt != NULL)
		eb_free_secret(pt, ptlen + 1);
	eb_free(blob);
	return rc;
}

int
eb_flow_open(const struct eb_seal_ring *ring, const char *tenant,
             const char *text, int64_t now, struct eb_store_flow *f)
{
	json_t *o = NULL;
	int rc;

	rc = open_text(ring, FLOW_AD_PREFIX, flow_fields, EB_FLOW_MAX_LEN,
	               tenant, text, now, f, &o);
	json_decref(o);
	return rc;
}

int
eb_flow_state_open(const struct eb_seal_ring *ring, const char *tenant,
                   const char *text, int64_t now, struct eb_store_flow *f)
{
	json_t *o = NULL, *pv;
	const char *v;
	size_t n;
	int rc;

	rc = open_text(ring, STATE_AD_PREFIX, state_fields,
	               EB_FLOW_STATE_MAX_LEN, tenant, text, now, f, &o);
	if (o == NULL)
		return rc;
	pv = json_object_get(o, "pv");
	if (!json_is_string(pv) ||
	    (n = strlen(v = json_string_value(pv))) < 43 || n > 128 ||
	    f->upstream_nonce == NULL || f->browser_binding == NULL)
		rc = EB_FLOW_OPEN_BAD;
	else if ((f->pkce_verifier = eb_malloc(n + 1)) == NULL)
		rc = EB_FLOW_OPEN_ERROR;
	else {
		memcpy(f->pkce_verifier, v, n + 1);
		f->pkce_verifier_len = n;
	}
	json_decref(o);
	return rc;
}
