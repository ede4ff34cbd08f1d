/*
 * The ring a process builds from its configuration (core/sealring.c):
 * without seal_keys, state_dir/seal.key alone, created when absent (the old
 * behaviour); with seal_keys, those keys, plus state_dir/seal.key as a last,
 * open-only key when the file exists (never created), so data sealed before
 * seal_keys was set still opens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "core/mem.h"
#include "core/sealring.h"
#include "core/statedir.h"
#include "jose/seal.h"

static char dir[256];
static char keypath[300];

static int
setup(void **state)
{
	const char *base = getenv("EB_BINARY_DIR");

	(void)state;
	snprintf(dir, sizeof(dir), "%s/sealring-XXXXXX", base ? base : "/tmp");
	if (mkdtemp(dir) == NULL || chmod(dir, 0700) != 0)
		return -1;
	snprintf(keypath, sizeof(keypath), "%s/seal.key", dir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(keypath);
	return rmdir(dir);
}

static void
cfg_with(struct eb_config *cfg, uint8_t (*keys)[32], size_t n)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->state_dir = dir;
	cfg->seal_keys = keys;
	cfg->nseal_keys = n;
}

/* Seal under key alone (version 1, as before rings) and open with r: 0
 * when it opens (and wants re-sealing), -1 when not. */
static int
opens_old_blob(const struct eb_seal_ring *r, const uint8_t key[32])
{
	uint8_t *blob, *pt;
	size_t len, ptlen;
	int rc, stale = 0;

	assert_int_equal(eb_seal_seal(key, "ad", 2, "secret", 6, &blob, &len),
	                 0);
	rc = eb_seal_ring_open(r, EB_SEAL_AT_REST, "ad", 2, blob, len, &pt,
	                       &ptlen, &stale);
	eb_free(blob);
	if (rc != 0)
		return -1;
	assert_memory_equal(pt, "secret", 6);
	eb_free_secret(pt, ptlen + 1);
	assert_int_equal(stale, 1);
	return 0;
}

static void
test_no_seal_keys_uses_state_key(void **state)
{
	struct eb_config cfg;
	struct eb_seal_ring *r;
	uint8_t file[32];
	char err[256];

	(void)state;
	cfg_with(&cfg, NULL, 0);
	assert_int_equal(access(keypath, F_OK), -1);
	assert_non_null(r = eb_sealring_load(&cfg, err, sizeof(err)));
	assert_int_equal(eb_seal_ring_count(r), 1);
	/* created, and it is the sealing key */
	assert_int_equal(eb_statedir_key(dir, "seal.key", file, sizeof(file),
	                                 err, sizeof(err)),
	                 0);
	assert_memory_equal(eb_seal_ring_first(r), file, 32);
	assert_int_equal(opens_old_blob(r, file), 0);
	eb_seal_ring_free(r);
}

static void
test_seal_keys_never_create_state_key(void **state)
{
	uint8_t keys[2][32];
	struct eb_config cfg;
	struct eb_seal_ring *r;
	char err[256];

	(void)state;
	memset(keys[0], 0xa1, 32);
	memset(keys[1], 0xb2, 32);
	cfg_with(&cfg, keys, 2);
	assert_non_null(r = eb_sealring_load(&cfg, err, sizeof(err)));
	assert_int_equal(eb_seal_ring_count(r), 2);
	assert_memory_equal(eb_seal_ring_first(r), keys[0], 32);
	assert_int_equal(access(keypath, F_OK), -1);
	assert_int_equal(opens_old_blob(r, keys[1]), 0);
	eb_seal_ring_free(r);
}

static void
test_state_key_appended_open_only(void **state)
{
	uint8_t keys[1][32], old[32];
	struct eb_config cfg;
	struct eb_seal_ring *r;
	char err[256];

	(void)state;
	/* an install that ran before seal_keys: its key exists */
	assert_int_equal(eb_statedir_key(dir, "seal.key", old, sizeof(old), err,
	                                 sizeof(err)),
	                 0);
	memset(keys[0], 0xa1, 32);
	cfg_with(&cfg, keys, 1);
	assert_non_null(r = eb_sealring_load(&cfg, err, sizeof(err)));
	assert_int_equal(eb_seal_ring_count(r), 2);
	assert_memory_equal(eb_seal_ring_first(r), keys[0], 32);
	assert_int_equal(opens_old_blob(r, old), 0);
	eb_seal_ring_free(r);

	/* the state key listed in seal_keys is not added twice */
	memcpy(keys[0], old, 32);
	assert_non_null(r = eb_sealring_load(&cfg, err, sizeof(err)));
	assert_int_equal(eb_seal_ring_count(r), 1);
	eb_seal_ring_free(r);
}

static void
test_bad_state_key_refused(void **state)
{
	uint8_t keys[1][32];
	struct eb_config cfg;
	char err[256];
	FILE *f;

	(void)state;
	/* a short key file is refused, not ignored */
	assert_non_null(f = fopen(keypath, "w"));
	fputs("short", f);
	fclose(f);
	assert_int_equal(chmod(keypath, 0600), 0);
	memset(keys[0], 0xa1, 32);
	cfg_with(&cfg, keys, 1);
	assert_null(eb_sealring_load(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "seal.key"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_no_seal_keys_uses_state_key,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_seal_keys_never_create_state_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_key_appended_open_only,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_state_key_refused, setup,
	                                    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
