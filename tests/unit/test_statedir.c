/*
 * The state directory's keys under concurrent first start: creators racing
 * on an empty state_dir (replicas started at once) all succeed and all hold
 * the one key that ended up on disk.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/statedir.h"

#define NTHREADS 6
#define ROUNDS   40
#define KEYLEN   32

struct racer {
	pthread_barrier_t *go;
	const char *dir;
	uint8_t key[KEYLEN];
	int rc;
	char err[512];
};

static void *
race_key(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->go);
	r->rc = eb_statedir_key(r->dir, "seal.key", r->key, sizeof(r->key),
	                        r->err, sizeof(r->err));
	return NULL;
}

static void
test_concurrent_key_creation(void **state)
{
	const char *base = getenv("EB_BINARY_DIR");
	struct racer r[NTHREADS];
	pthread_t t[NTHREADS];
	pthread_barrier_t go;
	char top[256], dir[320], path[400], cmd[300];
	uint8_t disk[KEYLEN];
	int round, i;
	FILE *f;

	(void)state;
	snprintf(top, sizeof(top), "%s/statedir-test-XXXXXX",
	         base ? base : "/tmp");
	assert_non_null(mkdtemp(top));
	for (round = 0; round < ROUNDS; round++) {
		snprintf(dir, sizeof(dir), "%s/s%d", top, round);
		assert_int_equal(eb_statedir_prepare(dir, cmd, sizeof(cmd)), 0);
		assert_int_equal(pthread_barrier_init(&go, NULL, NTHREADS), 0);
		for (i = 0; i < NTHREADS; i++) {
			memset(&r[i], 0, sizeof(r[i]));
			r[i].go = &go;
			r[i].dir = dir;
			assert_int_equal(
			    pthread_create(&t[i], NULL, race_key, &r[i]), 0);
		}
		for (i = 0; i < NTHREADS; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&go);
		snprintf(path, sizeof(path), "%s/seal.key", dir);
		assert_non_null(f = fopen(path, "rb"));
		assert_int_equal(fread(disk, 1, sizeof(disk), f), KEYLEN);
		fclose(f);
		for (i = 0; i < NTHREADS; i++) {
			if (r[i].rc != 0)
				fail_msg("round %d creator %d: %s", round, i,
				         r[i].err);
			if (memcmp(r[i].key, disk, KEYLEN) != 0)
				fail_msg("round %d creator %d holds a key that "
				         "is not the one on disk",
				         round, i);
		}
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_concurrent_key_creation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
