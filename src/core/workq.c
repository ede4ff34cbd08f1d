/*
 * Fixed thread pool with a bounded FIFO of jobs. See workq.h.
 */
#include "core/workq.h"

#include <pthread.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"

/* Jobs of one key running now, and how many may (eb_workq_submit_keyed).
 * Entries are kept once made: as many as keys (tenants) ever used. */
struct keycount {
	char *key;
	size_t running;
	size_t limit; /* 0: none */
};

struct job {
	eb_work_fn fn;
	void *arg;
	struct keycount *k; /* NULL: no key */
	/* the request of the submitter: the job's lines carry it */
	struct eb_log_ctx ctx;
};

struct eb_workq {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	pthread_t *threads;
	unsigned nthreads;
	struct job *ring;
	size_t cap, head, len, running;
	int stopping;
	struct keycount **keys;
	size_t nkeys;
};

/* The position in the queue of the oldest job that may start now: one
 * whose key is under its limit (any job once stopping); -1 for none. */
static long
next_runnable(const struct eb_workq *q)
{
	const struct keycount *k;
	size_t n;

	for (n = 0; n < q->len; n++) {
		k = q->ring[(q->head + n) % q->cap].k;
		if (k == NULL || k->limit == 0 || k->running < k->limit ||
		    q->stopping)
			return (long)n;
	}
	return -1;
}

/* Remove and return the job at position n (later ones move up). */
static struct job
take(struct eb_workq *q, size_t n)
{
	struct job j = q->ring[(q->head + n) % q->cap];
	size_t m;

	if (n == 0) {
		q->head = (q->head + 1) % q->cap;
	} else {
		for (m = n; m + 1 < q->len; m++)
			q->ring[(q->head + m) % q->cap] =
			    q->ring[(q->head + m + 1) % q->cap];
	}
	q->len--;
	return j;
}

static void *
worker(void *p)
{
	struct eb_workq *q = p;
	struct job j;
	long n;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		while ((n = next_runnable(q)) < 0 && !q->stopping)
			pthread_cond_wait(&q->cv, &q->lock);
		if (n < 0)
			break; /* stopping, nothing queued */
		j = take(q, (size_t)n);
		q->running++;
		if (j.k != NULL)
			j.k->running++;
		pthread_mutex_unlock(&q->lock);
		eb_log_ctx_set(&j.ctx);
		j.fn(j.arg);
		eb_log_ctx_set(NULL);
		pthread_mutex_lock(&q->lock);
		q->running--;
		if (j.k != NULL) {
			j.k->running--;
			/* a job of this key held back may start now */
			pthread_cond_broadcast(&q->cv);
		}
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

struct eb_workq *
eb_workq_create(unsigned nthreads, size_t max_pending)
{
	struct eb_workq *q;
	unsigned i;

	if (nthreads == 0 || max_pending == 0 ||
	    (q = eb_calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->cap = max_pending;
	q->ring = eb_calloc(max_pending, sizeof(*q->ring));
	q->threads = eb_calloc(nthreads, sizeof(*q->threads));
	if (q->ring == NULL || q->threads == NULL) {
		eb_free(q->ring);
		eb_free(q->threads);
		eb_free(q);
		return NULL;
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cv, NULL);
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&q->threads[i], NULL, worker, q) != 0)
			break;
		q->nthreads++;
	}
	if (q->nthreads == 0) {
		eb_workq_destroy(q);
		return NULL;
	}
	return q;
}

/* The count of key, made when new; NULL when out of memory. */
static struct keycount *
key_get(struct eb_workq *q, const char *key)
{
	struct keycount **nk, *k;
	size_t i;

	for (i = 0; i < q->nkeys; i++)
		if (strcmp(q->keys[i]->key, key) == 0)
			return q->keys[i];
	if ((nk = eb_realloc(q->keys, (q->nkeys + 1) * sizeof(*nk))) == NULL)
		return NULL;
	q->keys = nk;
	if ((k = eb_calloc(1, sizeof(*k))) == NULL)
		return NULL;
	if ((k->key = eb_strdup(key)) == NULL) {
		eb_free(k);
		return NULL;
	}
	q->keys[q->nkeys++] = k;
	return k;
}

int
eb_workq_submit_keyed(struct eb_workq *q, const char *key, size_t max_per_key,
                      eb_work_fn fn, void *arg)
{
	struct keycount *k = NULL;
	struct job *j;
	int rc = -1;

	pthread_mutex_lock(&q->lock);
	if (q->stopping || q->len >= q->cap)
		goto out;
	if (key != NULL) {
		if ((k = key_get(q, key)) == NULL)
			goto out;
		k->limit = max_per_key;
	}
	j = &q->ring[(q->head + q->len) % q->cap];
	j->fn = fn;
	j->arg = arg;
	j->k = k;
	eb_log_ctx_get(&j->ctx);
	q->len++;
	pthread_cond_signal(&q->cv);
	rc = 0;
out:
	pthread_mutex_unlock(&q->lock);
	return rc;
}

int
eb_workq_submit(struct eb_workq *q, eb_work_fn fn, void *arg)
{
	return eb_workq_submit_keyed(q, NULL, 0, fn, arg);
}

unsigned
eb_workq_threads(const struct eb_workq *q)
{
	return q->nthreads;
}

size_t
eb_workq_share(const struct eb_workq *q)
{
	return q->nthreads > 2 ? q->nthreads / 2 : 1;
}

size_t
eb_workq_pending(struct eb_workq *q)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->len + q->running;
	pthread_mutex_unlock(&q->lock);
	return n;
}

void
eb_workq_destroy(struct eb_workq *q)
{
	unsigned i;

	if (q == NULL)
		return;
	pthread_mutex_lock(&q->lock);
	q->stopping = 1;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->lock);
	for (i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->lock);
	for (i = 0; i < q->nkeys; i++) {
		eb_free(q->keys[i]->key);
		eb_free(q->keys[i]);
	}
	eb_free(q->keys);
	eb_free(q->ring);
	eb_free(q->threads);
	eb_free(q);
}
