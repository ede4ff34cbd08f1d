/*
 * Allocation wrappers with failure injection for torture tests, and secret
 * wiping. The injection counter is a process-wide atomic: it is a test hook,
 * compiled into the unit tests only (EB_TEST_HOOKS), where it costs one
 * relaxed load per allocation.
 */
#include "core/mem.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#ifdef EB_TEST_HOOKS
static atomic_long fail_countdown = -1;
static atomic_long alloc_count;

static int
inject(void)
{
	long v;

	atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
	v = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
	if (v < 0)
		return 0;
	v = atomic_fetch_sub(&fail_countdown, 1);
	return v == 0;
}

long
eb_mem_fail_after(long n)
{
	atomic_store(&fail_countdown, n < 0 ? -1 : n);
	return atomic_exchange(&alloc_count, 0);
}
#else
static int
inject(void)
{
	return 0;
}
#endif

void *
eb_malloc(size_t n)
{
	if (inject())
		return NULL;
	return malloc(n ? n : 1);
}

void *
eb_calloc(size_t nmemb, size_t size)
{
	if (inject())
		return NULL;
	if (nmemb == 0 || size == 0)
		nmemb = size = 1;
	return calloc(nmemb, size);
}

void *
eb_realloc(void *p, size_t n)
{
	if (inject())
		return NULL;
	return realloc(p, n ? n : 1);
}

char *
eb_strndup(const char *s, size_t n)
{
	char *d;

	if (s == NULL || (d = eb_malloc(n + 1)) == NULL)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *
eb_strdup(const char *s)
{
	return s == NULL ? NULL : eb_strndup(s, strlen(s));
}

void
eb_free(void *p)
{
	free(p);
}

void
eb_free_secret(void *p, size_t n)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, n);
	free(p);
}

void
eb_free_secret_str(char *s)
{
	if (s != NULL)
		eb_free_secret(s, strlen(s));
}
