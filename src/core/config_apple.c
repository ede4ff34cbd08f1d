/*
 * A tenant's "apple_business" section: the Apple Business Manager server
 * whose Managed Apple Account access management tokens (GetToken,
 * com.apple.maid) the proxy answers itself. The private key is read and
 * checked here, at load time, so a bad key is a configuration error that
 * names the file and key, never a failure at a device's first request.
 */
#include "core/config_int.h"

#include <ctype.h>
#include <string.h>

#include "core/mem.h"
#include "jose/pemkey.h"

/* 1 when s is a UUID (8-4-4-4-12 hex digits); lower-cases it. */
static int
uuid_ok(char *s)
{
	size_t i;

	if (strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i]))
			return 0;
		else
			s[i] = (char)tolower((unsigned char)s[i]);
	}
	return 1;
}

const char *const eb_cfg_keys_apple_business[] = {"server_uuid", "private_key",
                                                  NULL};

int
eb_cfg_parse_apple_business(struct eb_cfg_ctx *c, const json_t *root,
                            struct eb_tenant *t)
{
	const char *p = "apple_business", *why;
	struct eb_apple_business_config *ab;
	char *pem = NULL;
	json_t *o;

	if (eb_cfg_obj(c, root, NULL, p, &o) == -1)
		return -1;
	if (o == NULL)
		return 0;
	if ((ab = t->apple_business = eb_calloc(1, sizeof(*ab))) == NULL)
		return eb_cfg_fail(c, NULL, p, "out of memory");
	if (eb_cfg_keys(c, o, p, eb_cfg_keys_apple_business) == -1 ||
	    eb_cfg_str(c, o, p, "server_uuid", 1, 0, &ab->server_uuid) == -1)
		return -1;
	if (!uuid_ok(ab->server_uuid))
		return eb_cfg_fail(c, p, "server_uuid",
		                   "must be a UUID (8-4-4-4-12 hex digits)");
	if (eb_cfg_secret_pem(c, o, p, "private_key", 1, &pem) == -1)
		return -1;
	ab->key = eb_pemkey_load(pem, strlen(pem), &why);
	eb_free_secret_str(pem);
	if (ab->key == NULL)
		return eb_cfg_fail(c, p, "private_key", "%s", why);
	return 0;
}

void
eb_cfg_apple_business_free(struct eb_apple_business_config *ab)
{
	if (ab == NULL)
		return;
	eb_free(ab->server_uuid);
	eb_pemkey_destroy(ab->key);
	eb_free(ab);
}
