/*
 * MachineInfo bodies (see machineinfo.h): CMS unwrapping and signature
 * checks through cms.c, the plist through plist.c, and the checks on every
 * value we keep (length, control characters, UTF-8) so that what reaches
 * the store, logs and JSON is clean.
 */
#include "apple/machineinfo.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "apple/cms.h"
#include "apple/plist.h"
#include "core/str.h"
#include "core/mem.h"

/* MachineInfo is a flat dict; a little nesting is tolerated. */
#define MACHINEINFO_MAX_DEPTH 8

const char *
eb_machineinfo_family(const char *product)
{
	static const struct {
		const char *prefix;
		const char *family;
	} map[] = {
	    {"iPhone", "iPhone"},
	    {"iPad", "iPad"},
	    {"iMac", "Mac"},
	    {"Mac", "Mac"}, /* Mac14,2, MacBookPro18,1, Macmini9,1, MacPro7,1 */
	    {"VirtualMac", "Mac"},
	    {"AppleTV", "AppleTV"},
	    {"Watch", "Watch"},
	    {"RealityDevice", "RealityDevice"},
	};
	size_t i;

	if (product == NULL)
		return NULL;
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strncmp(product, map[i].prefix, strlen(map[i].prefix)) == 0)
			return map[i].family;
	return NULL;
}

/* 1 when s[0..len) is valid UTF-8 without control characters. */
static int
clean_utf8(const unsigned char *s, size_t len)
{
	size_t i = 0, n, k;
	uint32_t cp;

	while (i < len) {
		if (s[i] < 0x80) {
			if (s[i] < 0x20 || s[i] == 0x7f)
				return 0;
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			n = 1;
			cp = s[i] & 0x1f;
		} else if ((s[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = s[i] & 0x0f;
		} else if ((s[i] & 0xf8) == 0xf0) {
			n = 3;
			cp = s[i] & 0x07;
		} else
			return 0;
		if (len - i <= n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* overlong forms, surrogates, beyond Unicode, C1 controls */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
			return 0;
		i += n + 1;
	}
	return 1;
}

/*
 * Copy the string under key into *dst. Absent: 0 with *dst NULL (or an
 * error when required). Present but not a clean short string: -1.
 */
static int
take(const struct eb_plist *d, const char *key, int required, char **dst,
     char *err, size_t errlen)
{
	const struct eb_plist *v = eb_plist_dict_get(d, key);
	const char *s;
	size_t len;

	*dst = NULL;
	if (v == NULL) {
		if (!required)
			return 0;
		eb_errf(err, errlen, "MachineInfo has no %s", key);
		return -1;
	}
	if ((s = eb_plist_string(v, &len)) == NULL) {
		eb_errf(err, errlen, "MachineInfo %s is not a string (%s)", key,
		        eb_plist_type_name(eb_plist_type(v)));
		return -1;
	}
	if (len > EB_MACHINEINFO_MAX_STRING) {
		eb_errf(err, errlen, "MachineInfo %s is longer than %d bytes",
		        key, EB_MACHINEINFO_MAX_STRING);
		return -1;
	}
	if (required && len == 0) {
		eb_errf(err, errlen, "MachineInfo %s is empty", key);
		return -1;
	}
	if (strlen(s) != len || !clean_utf8((const unsigned char *)s, len)) {
		eb_errf(err, errlen,
		        "MachineInfo %s holds control characters or is not "
		        "UTF-8",
		        key);
		return -1;
	}
	if ((*dst = eb_strndup(s, len)) == NULL) {
		eb_errf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int
eb_machineinfo_parse_plist(struct eb_machineinfo *mi, const void *data,
                           size_t len, char *err, size_t errlen)
{
	struct eb_plist *root;
	char why[160];

	memset(mi, 0, sizeof(*mi));
	if (len > EB_MACHINEINFO_MAX_BYTES) {
		eb_errf(err, errlen, "MachineInfo larger than %d bytes",
		        EB_MACHINEINFO_MAX_BYTES);
		return -1;
	}
	if ((root = eb_plist_parse(data, len, EB_MACHINEINFO_MAX_BYTES,
	                           MACHINEINFO_MAX_DEPTH, why, sizeof(why))) ==
	    NULL) {
		eb_errf(err, errlen, "MachineInfo is not a plist: %s", why);
		return -1;
	}
	if (eb_plist_type(root) != EB_PLIST_DICT) {
		eb_errf(err, errlen, "MachineInfo is not a dict (%s)",
		        eb_plist_type_name(eb_plist_type(root)));
		goto out_fail;
	}
	if (take(root, "PRODUCT", 1, &mi->product, err, errlen) == -1 ||
	    take(root, "LANGUAGE", 0, &mi->language, err, errlen) == -1 ||
	    take(root, "VERSION", 0, &mi->version, err, errlen) == -1 ||
	    take(root, "OS_VERSION", 0, &mi->os_version, err, errlen) == -1 ||
	    take(root, "UDID", 0, &mi->udid, err, errlen) == -1 ||
	    take(root, "SERIAL", 0, &mi->serial, err, errlen) == -1 ||
	    take(root, "IMEI", 0, &mi->imei, err, errlen) == -1 ||
	    take(root, "MEID", 0, &mi->meid, err, errlen) == -1)
		goto out_fail;
	mi->model_family = eb_machineinfo_family(mi->product);
	/* a boolean; absent or of another type: the device cannot */
	if (eb_plist_dict_get_bool(root, "MDM_CAN_REQUEST_SOFTWARE_UPDATE",
	                           &mi->can_request_update) != 0)
		mi->can_request_update = 0;
	eb_plist_free(root);
	return 0;
out_fail:
	eb_plist_free(root);
	eb_machineinfo_finish(mi);
	return -1;
}

int
eb_machineinfo_parse(struct eb_machineinfo *mi, const void *body, size_t len,
                     const char *device_ca, char *err, size_t errlen)
{
	uint8_t *content;
	size_t clen;
	char why[256];
	int rc;

	memset(mi, 0, sizeof(*mi));
	if (body == NULL || len == 0) {
		eb_errf(err, errlen, "empty body");
		return -1;
	}
	if (len > EB_MACHINEINFO_MAX_BYTES) {
		eb_errf(err, errlen, "body larger than %d bytes",
		        EB_MACHINEINFO_MAX_BYTES);
		return -1;
	}
	if (eb_cms_unwrap(body, len, 1, device_ca, EB_MACHINEINFO_MAX_BYTES,
	                  &content, &clen, why, sizeof(why)) != EB_CMS_OK) {
		eb_errf(err, errlen, "%s", why);
		return -1;
	}
	rc = eb_machineinfo_parse_plist(mi, content, clen, err, errlen);
	eb_free(content);
	if (rc == 0)
		mi->ca_verified = device_ca != NULL;
	return rc;
}

void
eb_machineinfo_finish(struct eb_machineinfo *mi)
{
	if (mi == NULL)
		return;
	eb_free(mi->product);
	eb_free(mi->language);
	eb_free(mi->version);
	eb_free(mi->os_version);
	eb_free(mi->udid);
	eb_free(mi->serial);
	eb_free(mi->imei);
	eb_free(mi->meid);
	memset(mi, 0, sizeof(*mi));
}
