/*
 * Work queue: every job runs once, a full queue refuses at once, destroy
 * finishes what was queued.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/workq.h"

static atomic_int ran;

static void
job(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ran, 1);
}

static void
slow_job(void *arg)
{
	usleep(20000);
	atomic_fetch_add(&ran, 1);
}

static void
test_runs_everything(void **state)
{
	struct eb_workq *q = eb_workq_create(4, 1000);
	int i;

	atomic_store(&ran, 0);
	assert_non_null(q);
	for (i = 0; i < 500; i++)
		assert_int_equal(eb_workq_submit(q, job, NULL), 0);
	eb_workq_destroy(q);
	assert_int_equal(atomic_load(&ran), 500);
}

static void
test_full_queue_refuses(void **state)
{
	struct eb_workq *q = eb_workq_create(1, 2);
	int accepted = 0, i;

	atomic_store(&ran, 0);
	assert_non_null(q);
	for (i = 0; i < 10; i++)
		if (eb_workq_submit(q, slow_job, NULL) == 0)
			accepted++;
	/* one running, two queued at most */
	assert_true(accepted >= 2 && accepted <= 3);
	assert_true(eb_workq_pending(q) >= 1);
	eb_workq_destroy(q);
	assert_int_equal(atomic_load(&ran), accepted);
}

/* A job that holds its thread until released (a hung IdP). */
static atomic_int release;

static void
hung_job(void *arg)
{
	(void)arg;
	while (!atomic_load(&release))
		usleep(1000);
	atomic_fetch_add(&ran, 1);
}

static void
test_keyed_share(void **state)
{
	struct eb_workq *q = eb_workq_create(4, 100);
	int i, waited;

	atomic_store(&ran, 0);
	atomic_store(&release, 0);
	assert_non_null(q);
	assert_int_equal(eb_workq_threads(q), 4);
	assert_int_equal(eb_workq_share(q), 2);
	/* tenant a hangs: two of its jobs run, three more wait */
	for (i = 0; i < 5; i++)
		assert_int_equal(
		    eb_workq_submit_keyed(q, "a", 2, hung_job, NULL), 0);
	usleep(20000);
	/* tenant b's jobs, queued after them, still run at once */
	for (i = 0; i < 20; i++)
		assert_int_equal(eb_workq_submit_keyed(q, "b", 2, job, NULL),
		                 0);
	for (waited = 0; atomic_load(&ran) < 20 && waited < 5000; waited++)
		usleep(1000);
	assert_int_equal(atomic_load(&ran), 20);
	assert_int_equal(eb_workq_pending(q), 5); /* a's: 2 running, 3 held */
	/* a recovers: its held jobs run too */
	atomic_store(&release, 1);
	for (waited = 0; eb_workq_pending(q) > 0 && waited < 5000; waited++)
		usleep(1000);
	assert_int_equal(atomic_load(&ran), 25);
	eb_workq_destroy(q);
	/* destroy runs what is queued, limits or not */
	atomic_store(&ran, 0);
	atomic_store(&release, 1);
	q = eb_workq_create(1, 10);
	assert_non_null(q);
	assert_int_equal(eb_workq_share(q), 1);
	for (i = 0; i < 5; i++)
		assert_int_equal(eb_workq_submit_keyed(q, "c", 1, job, NULL),
		                 0);
	eb_workq_destroy(q);
	assert_int_equal(atomic_load(&ran), 5);
}

static void
test_bad_args(void **state)
{
	assert_null(eb_workq_create(0, 10));
	assert_null(eb_workq_create(2, 0));
	eb_workq_destroy(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_runs_everything),
	    cmocka_unit_test(test_keyed_share),
	    cmocka_unit_test(test_full_queue_refuses),
	    cmocka_unit_test(test_bad_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
