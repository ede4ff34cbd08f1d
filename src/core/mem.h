/*
 * Allocation wrappers. Every allocation in enrollbridge goes through these so
 * that a test can make the Nth allocation fail (torture mode) and so that
 * secrets are wiped before their memory is returned.
 */
#ifndef EB_MEM_H
#define EB_MEM_H

#include <stddef.h>

/* malloc(3)-alikes; NULL on failure (or on an injected failure). */
void *eb_malloc(size_t n);
void *eb_calloc(size_t nmemb, size_t size);
void *eb_realloc(void *p, size_t n);
/* Copy of s (NULL when s is NULL or on failure). */
char *eb_strdup(const char *s);
/* Copy of the first n bytes of s, NUL-terminated. */
char *eb_strndup(const char *s, size_t n);
/* free(3); eb_free(NULL) is a no-op. */
void eb_free(void *p);
/* Wipe n bytes at p, then free it. */
void eb_free_secret(void *p, size_t n);
/* Wipe a NUL-terminated string, then free it. */
void eb_free_secret_str(char *s);

#ifdef EB_TEST_HOOKS
/*
 * Test builds only: make the allocation n calls from now fail (0 = the next
 * one); a negative n turns injection off. Returns how many allocations were
 * made since the last call, so a torture loop knows when it has covered them
 * all.
 */
long eb_mem_fail_after(long n);
#endif

#endif
