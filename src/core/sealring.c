/*
 * Build the seal key ring from "seal_keys" and state_dir/seal.key (see
 * sealring.h). Key bytes live only in the ring and in a stack buffer wiped
 * before return.
 */
#include "core/sealring.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/config.h"
#include "core/log.h"
#include "core/statedir.h"
#include "jose/seal.h"

#define STATEDIR_KEY "seal.key"

struct eb_seal_ring *
eb_sealring_load(const struct eb_config *cfg, char *err, size_t errlen)
{
	struct eb_seal_ring *r;
	uint8_t key[EB_SEAL_KEY_LEN];
	char path[4096];
	size_t i;
	int dup = 0;

	if ((r = eb_seal_ring_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (i = 0; i < cfg->nseal_keys; i++)
		if (eb_seal_ring_add(r, cfg->seal_keys[i]) != 0) {
			snprintf(err, errlen, "seal_keys: too many keys");
			goto fail;
		}
	if (cfg->nseal_keys == 0) {
		/* no ring configured: the local key, created when absent */
		if (eb_statedir_key(cfg->state_dir, STATEDIR_KEY, key,
		                    sizeof(key), err, errlen) == -1)
			goto fail;
		if (eb_seal_ring_add(r, key) != 0) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		OPENSSL_cleanse(key, sizeof(key));
		return r;
	}
	if (eb_statedir_path(cfg->state_dir, STATEDIR_KEY, path,
	                     sizeof(path)) == -1) {
		snprintf(err, errlen, "%s: path too long", cfg->state_dir);
		goto fail;
	}
	if (access(path, F_OK) == -1) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		log_info("seal keys: %zu from seal_keys", cfg->nseal_keys);
		return r;
	}
	/* the old local key opens what was sealed before seal_keys */
	if (eb_statedir_key(cfg->state_dir, STATEDIR_KEY, key, sizeof(key), err,
	                    errlen) == -1)
		goto fail;
	for (i = 0; i < cfg->nseal_keys; i++)
		dup |= CRYPTO_memcmp(key, cfg->seal_keys[i], sizeof(key)) == 0;
	if (!dup && eb_seal_ring_add(r, key) != 0) {
		snprintf(err, errlen, "seal_keys: too many keys");
		goto fail;
	}
	OPENSSL_cleanse(key, sizeof(key));
	log_info("seal keys: %zu from seal_keys%s", cfg->nseal_keys,
	         dup ? "" : ", and " STATEDIR_KEY " to open older data");
	return r;
fail:
	OPENSSL_cleanse(key, sizeof(key));
	eb_seal_ring_free(r);
	return NULL;
}
