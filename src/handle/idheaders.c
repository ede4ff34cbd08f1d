/*
 * Identity headers for the MDM (idheaders.h): names, and the encoding that
 * keeps every value one safe header line.
 */
#include "handle/idheaders.h"

#include <string.h>

#include "core/mem.h"
#include "jose/b64.h"

char *
eb_idheaders_encode(const char *v)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	size_t n = 0;
	char *out, *o;

	for (p = (const unsigned char *)v; *p != '\0'; p++)
		n += *p < 0x21 || *p > 0x7e || *p == '%' ? 3 : 1;
	if ((out = o = eb_malloc(n + 1)) == NULL)
		return NULL;
	for (p = (const unsigned char *)v; *p != '\0'; p++)
		if (*p < 0x21 || *p > 0x7e || *p == '%') {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		} else
			*o++ = (char)*p;
	*o = '\0';
	return out;
}

static int
add_one(int (*add)(void *, const char *, const char *), void *arg,
        const char *name, const char *value)
{
	char *enc;
	int rc;

	if (value == NULL)
		return 0;
	if ((enc = eb_idheaders_encode(value)) == NULL)
		return -1;
	rc = add(arg, name, enc);
	eb_free(enc);
	return rc;
}

static int
add_claims(int (*add)(void *, const char *, const char *), void *arg,
           json_t *idp)
{
	char *json, *b64;
	int rc;

	if (!json_is_object(idp))
		return 0;
	if ((json = json_dumps(idp, JSON_COMPACT)) == NULL)
		return -1;
	b64 = eb_b64_url_encode(json, strlen(json));
	eb_free(json);
	if (b64 == NULL)
		return -1;
	rc = add(arg, "X-Enrollbridge-Claims", b64);
	eb_free(b64);
	return rc;
}

int
eb_idheaders_each(const struct eb_idheaders *h,
                  int (*add)(void *arg, const char *name, const char *value),
                  void *arg)
{
	const struct {
		const char *name, *value;
	} f[] = {
	    {"X-Enrollbridge-Managed-Apple-Account", h->managed_apple_id},
	    {"X-Enrollbridge-Login", h->login},
	    {"X-Enrollbridge-Enrollment-Mode", h->enrollment_mode},
	    {"X-Enrollbridge-Grant-ID", h->grant_id},
	    {"X-Enrollbridge-Route", h->route},
	    {"X-Enrollbridge-Model-Family", h->model_family},
	    {"X-Enrollbridge-Serial", h->serial},
	    {"X-Enrollbridge-UDID", h->udid},
	};
	size_t i;
	int rc;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if ((rc = add_one(add, arg, f[i].name, f[i].value)) != 0)
			return rc;
	return add_claims(add, arg, h->idp);
}
