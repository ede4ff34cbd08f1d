/*
 * The main file's "seal_keys": the keys that seal secrets at rest, shared by
 * every replica. Each item is a secret reference (inline, "file:", "env:")
 * resolved like every other secret, and must give exactly 32 bytes: raw (32
 * bytes of text), standard base64 (44 characters with padding, or 43
 * without) or base64url (43 characters). The first key seals and every key
 * opens (see jose/seal.h). Errors name the item's index and never its value.
 */
#include "core/config_int.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/mem.h"
#include "jose/b64.h"

int
eb_config_seal_key_decode(const char *s, size_t len,
                          uint8_t out[EB_CONFIG_SEAL_KEY_LEN], const char **why)
{
	char tmp[45];
	uint8_t dec[33];
	size_t i;
	long n;

	if (len == EB_CONFIG_SEAL_KEY_LEN) {
		memcpy(out, s, len);
		return 0;
	}
	if (len == 44 && s[43] == '=')
		len = 43;
	if (len != 43) {
		*why = "must be 32 bytes, raw or base64/base64url encoded";
		return -1;
	}
	/* standard base64 to base64url, then one strict decoder */
	for (i = 0; i < len; i++)
		tmp[i] = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
	n = eb_b64_url_decode_to(tmp, len, dec);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	if (n != EB_CONFIG_SEAL_KEY_LEN) {
		OPENSSL_cleanse(dec, sizeof(dec));
		*why = "is not valid base64 or base64url of 32 bytes";
		return -1;
	}
	memcpy(out, dec, EB_CONFIG_SEAL_KEY_LEN);
	OPENSSL_cleanse(dec, sizeof(dec));
	return 0;
}

void
eb_config_seal_keys_free(struct eb_config *cfg)
{
	if (cfg->seal_keys != NULL)
		eb_free_secret(cfg->seal_keys,
		               cfg->nseal_keys * sizeof(*cfg->seal_keys));
	cfg->seal_keys = NULL;
	cfg->nseal_keys = 0;
}

int
eb_cfg_parse_seal_keys(struct eb_cfg_ctx *c, const json_t *root,
                       struct eb_config *cfg)
{
	json_t *v = json_object_get(root, "seal_keys"), *item;
	char key[32], reason[sizeof(c->err->reason)], *s;
	const char *why = NULL;
	size_t i, j, n;

	if (v == NULL)
		return 0;
	if (!json_is_array(v))
		return eb_cfg_fail(c, NULL, "seal_keys",
		                   "must be a list of secret references");
	if ((n = json_array_size(v)) == 0)
		return eb_cfg_fail(c, NULL, "seal_keys", "must not be empty");
	if (n > EB_CONFIG_SEAL_KEYS_MAX)
		return eb_cfg_fail(c, NULL, "seal_keys",
		                   "has more than %d keys",
		                   EB_CONFIG_SEAL_KEYS_MAX);
	eb_config_seal_keys_free(cfg);
	if ((cfg->seal_keys = eb_calloc(n, sizeof(*cfg->seal_keys))) == NULL)
		return eb_cfg_fail(c, NULL, "seal_keys", "out of memory");
	json_array_foreach(v, i, item)
	{
		snprintf(key, sizeof(key), "seal_keys[%zu]", i);
		if (!json_is_string(item))
			return eb_cfg_fail(c, NULL, key, "must be a string");
		s = eb_config_secret(json_string_value(item), c->dir, reason,
		                     sizeof(reason));
		/* an inline key is the secret itself: do not leave it around */
		OPENSSL_cleanse((char *)json_string_value(item),
		                json_string_length(item));
		if (s == NULL)
			return eb_cfg_fail(c, NULL, key, "%s", reason);
		if (eb_config_seal_key_decode(s, strlen(s),
		                              cfg->seal_keys[cfg->nseal_keys],
		                              &why) == -1) {
			eb_free_secret_str(s);
			return eb_cfg_fail(c, NULL, key, "%s", why);
		}
		eb_free_secret_str(s);
		for (j = 0; j < cfg->nseal_keys; j++)
			if (CRYPTO_memcmp(cfg->seal_keys[j],
			                  cfg->seal_keys[cfg->nseal_keys],
			                  EB_CONFIG_SEAL_KEY_LEN) == 0) {
				OPENSSL_cleanse(cfg->seal_keys[cfg->nseal_keys],
				                EB_CONFIG_SEAL_KEY_LEN);
				return eb_cfg_fail(c, NULL, key,
				                   "repeats seal_keys[%zu]", j);
			}
		cfg->nseal_keys++;
	}
	return 0;
}
