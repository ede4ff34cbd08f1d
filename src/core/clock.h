/*
 * The clock of a root context (core/env.h): wall-clock and monotonic
 * seconds. Production reads the real time; a test build (EB_TEST_HOOKS)
 * may move a clock forward with eb_clock_advance.
 */
#ifndef EB_CLOCK_H
#define EB_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>

struct eb_clock {
	_Atomic int64_t offset; /* seconds added to both; 0 in production */
};

/* Seconds since the epoch. c may be NULL: the real time. */
int64_t eb_clock_now(const struct eb_clock *c);
/* Seconds on the monotonic clock (intervals, TTLs). c may be NULL. */
int64_t eb_clock_mono(const struct eb_clock *c);

#ifdef EB_TEST_HOOKS
/* Move c forward by seconds (both clocks). Test builds only. */
static inline void
eb_clock_advance(struct eb_clock *c, int64_t seconds)
{
	atomic_fetch_add(&c->offset, seconds);
}
#endif

#endif
