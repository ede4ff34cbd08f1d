/*
 * Wall-clock and monotonic seconds, plus a context's offset.
 */
#include "core/clock.h"

#include <time.h>

static int64_t
offset_of(const struct eb_clock *c)
{
	return c == NULL ? 0 : atomic_load(&c->offset);
}

int64_t
eb_clock_now(const struct eb_clock *c)
{
	return (int64_t)time(NULL) + offset_of(c);
}

int64_t
eb_clock_mono(const struct eb_clock *c)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec + offset_of(c);
}
