/*
 * A bounded work queue served by a fixed pool of threads: where handlers
 * send blocking upstream work (IdP token calls, MDM fetches) so that the
 * HTTP server's threads never wait on a network peer. A full queue refuses
 * new work at once (the caller answers 503 with Retry-After) rather than
 * letting latency grow without bound.
 */
#ifndef EB_WORKQ_H
#define EB_WORKQ_H

#include <stddef.h>

struct eb_workq;

typedef void (*eb_work_fn)(void *arg);

/* Start nthreads workers with room for max_pending queued jobs. */
struct eb_workq *eb_workq_create(unsigned nthreads, size_t max_pending);
/*
 * Queue fn(arg). Returns 0, or -1 when the queue is full or stopping (fn is
 * then not called and arg stays the caller's).
 */
int eb_workq_submit(struct eb_workq *q, eb_work_fn fn, void *arg);
/*
 * The same, under key (a tenant's id): at most max_per_key jobs of one key
 * run at once (0: no limit); more wait in the queue while jobs of other
 * keys go ahead of them, so that one tenant whose upstream hangs cannot
 * take every thread from the others. Returns 0, or -1 when the queue is
 * full or stopping (fn is then not called and arg stays the caller's).
 */
int eb_workq_submit_keyed(struct eb_workq *q, const char *key,
                          size_t max_per_key, eb_work_fn fn, void *arg);
/* The pool's threads. */
unsigned eb_workq_threads(const struct eb_workq *q);
/* A key's fair share for eb_workq_submit_keyed: half the threads (at
 * least one), so that the others always keep the other half. */
size_t eb_workq_share(const struct eb_workq *q);
/* Jobs queued or running. */
size_t eb_workq_pending(struct eb_workq *q);
/* Finish the queued jobs, stop the threads and free; NULL is a no-op. */
void eb_workq_destroy(struct eb_workq *q);

#endif
