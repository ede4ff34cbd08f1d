/*
 * Fixed thread pool with a bounded FIFO of jobs. See workq.h.
 */
#include "core/workq.h"

#include <pthread.h>

#include "core/mem.h"

struct job {
	eb_work_fn fn;
	void *arg;
};

struct eb_workq {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	pthread_t *threads;
	unsigned nthreads;
	struct job *ring;
	size_t cap, head, len, running;
	int stopping;
};

static void *
worker(void *p)
{
	struct eb_workq *q = p;
	struct job j;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (q->len == 0 && !q->stopping)
			pthread_cond_wait(&q->cv, &q->lock);
		if (q->len == 0 && q->stopping)
			break;
		j = q->ring[q->head];
		q->head = (q->head + 1) % q->cap;
		q->len--;
		q->running++;
		pthread_mutex_unlock(&q->lock);
		j.fn(j.arg);
		pthread_mutex_lock(&q->lock);
		q->running--;
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

int
eb_workq_submit(struct eb_workq *q, eb_work_fn fn, void *arg)
{
	int rc = -1;

	pthread_mutex_lock(&q->lock);
	if (!q->stopping && q->len < q->cap) {
		q->ring[(q->head + q->len) % q->cap] = (struct job){fn, arg};
		q->len++;
		pthread_cond_signal(&q->cv);
		rc = 0;
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
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
	eb_free(q->ring);
	eb_free(q->threads);
	eb_free(q);
}
