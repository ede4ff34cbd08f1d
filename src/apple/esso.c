/*
 * The Enrollment SSO document (see esso.h): validation of the SSO profile
 * through profile.c's reader, the JSON through jansson, the base64 through
 * OpenSSL.
 */
#include "apple/esso.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "apple/plist.h"
#include "apple/profile.h"
#include "core/str.h"
#include "core/buf.h"
#include "core/mem.h"

#define ESSO_TYPE "com.apple.extensiblesso"
#define DOC_MAX   (8 * 1024 * 1024) /* base64 of the largest profile */

struct esso_check {
	size_t sso;
	char *err;
	size_t errlen;
};

static int
check_payload(const char *type, const struct eb_plist *payload, void *arg)
{
	static const char *const certs[] = {
	    "com.apple.security.root", "com.apple.security.pkcs1",
	    "com.apple.security.pem", "com.apple.security.pkcs12", NULL};
	struct esso_check *c = arg;
	size_t i;

	(void)payload;
	if (strcmp(type, ESSO_TYPE) == 0) {
		c->sso++;
		return 0;
	}
	for (i = 0; certs[i] != NULL; i++)
		if (strcmp(type, certs[i]) == 0)
			return 0;
	eb_errf(c->err, c->errlen,
	        "SSO profile holds a %.80s payload; only %s and certificate "
	        "payloads are allowed",
	        type, ESSO_TYPE);
	return -1;
}

int
eb_esso_check_profile(const struct eb_plist *profile, char *err, size_t errlen)
{
	struct esso_check c = {0, err, errlen};

	if (eb_profile_foreach_payload(profile, check_payload, &c, err,
	                               errlen) != 0)
		return -1;
	if (c.sso == 0) {
		eb_errf(err, errlen, "SSO profile has no %s payload",
		        ESSO_TYPE);
		return -1;
	}
	return 0;
}

/* The profile file's bytes, validated; NULL with err filled. */
static uint8_t *
read_sso_profile(const char *path, size_t *len, char *err, size_t errlen)
{
	struct eb_plist *p;
	uint8_t *raw = NULL;
	char why[256];

	if ((p = eb_profile_read_file(path, &raw, len, err, errlen)) == NULL)
		return NULL;
	if (eb_esso_check_profile(p, why, sizeof(why)) == -1) {
		eb_errf(err, errlen, "%s: %s", path, why);
		eb_free(raw);
		raw = NULL;
	}
	eb_plist_free(p);
	return raw;
}

/* Standard base64, no line breaks, as a jansson string; NULL on failure. */
static json_t *
b64_string(const uint8_t *p, size_t len)
{
	json_t *s;
	char *b;
	size_t n;

	if (len > (size_t)INT_MAX / 4 * 3 - 3)
		return NULL;
	n = (len + 2) / 3 * 4 + 1;
	if ((b = eb_malloc(n)) == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)b, p, (int)len);
	s = json_string(b);
	eb_free(b);
	return s;
}

static json_t *
str_array(const struct eb_strlist *l)
{
	json_t *a;
	size_t i;

	if ((a = json_array()) == NULL)
		return NULL;
	for (i = 0; i < l->n; i++)
		if (json_array_append_new(a, json_string(l->v[i])) == -1) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static int
dump_cb(const char *buffer, size_t size, void *data)
{
	return eb_buf_add(data, buffer, size);
}

char *
eb_esso_build(const struct eb_tenant *t, int developer, size_t *len, char *err,
              size_t errlen)
{
	const struct eb_esso_config *e = t->esso;
	struct eb_buf b;
	json_t *doc = NULL;
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	char *out = NULL;
	int fail;

	if (e == NULL) {
		eb_errf(err, errlen, "tenant %s has no esso section", t->id);
		return NULL;
	}
	if (developer && e->developer_app_ids.n == 0) {
		eb_errf(err, errlen, "tenant %s has no esso.developer.app_ids",
		        t->id);
		return NULL;
	}
	if (e->profile_file != NULL &&
	    (raw = read_sso_profile(e->profile_file, &rawlen, err, errlen)) ==
	        NULL)
		return NULL;
	eb_buf_init(&b, DOC_MAX);
	if ((doc = json_object()) == NULL)
		goto out_nomem;
	fail = developer ? json_object_set_new(doc, "AppIDs",
	                                       str_array(&e->developer_app_ids))
	                 : json_object_set_new(doc, "iTunesStoreID",
	                                       json_integer(e->app_store_id));
	if (fail == 0 && e->associated_domains.n > 0)
		fail = json_object_set_new(doc, "AssociatedDomains",
		                           str_array(&e->associated_domains)) ||
		       json_object_set_new(
		           doc, "AssociatedDomainsEnableDirectDownloads",
		           json_boolean(e->enable_direct_downloads));
	if (fail == 0 && raw != NULL)
		fail = json_object_set_new(doc, "ConfigurationProfile",
		                           b64_string(raw, rawlen));
	if (fail != 0 ||
	    json_dump_callback(doc, dump_cb, &b, JSON_COMPACT) == -1)
		goto out_nomem;
	out = eb_buf_detach(&b, len);
	goto out;
out_nomem:
	eb_errf(err, errlen, "out of memory");
out:
	json_decref(doc);
	eb_free(raw);
	eb_buf_finish(&b);
	return out;
}

int
eb_esso_check_config(const struct eb_tenant *t, char *err, size_t errlen)
{
	uint8_t *raw;
	size_t len;
	char why[512];

	if (t->esso == NULL || t->esso->profile_file == NULL)
		return 0;
	if ((raw = read_sso_profile(t->esso->profile_file, &len, why,
	                            sizeof(why))) == NULL) {
		eb_errf(err, errlen, "esso.profile_file: %s", why);
		return -1;
	}
	eb_free(raw);
	return 0;
}
