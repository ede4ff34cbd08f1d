/*
 * The temporary folders of fx_dir.h.
 */
#define _XOPEN_SOURCE 700 /* nftw, mkdtemp */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fx_dir.h"

int
fx_mkdtemp(char *dir, size_t size, const char *prefix)
{
	const char *base = getenv("EB_BINARY_DIR");
	int n;

	n = snprintf(dir, size, "%s/%s-XXXXXX", base ? base : "/tmp", prefix);
	if (n < 0 || (size_t)n >= size)
		return -1;
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

int
fx_rmtree(const char *path)
{
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

void
fx_write(const char *dir, const char *rel, const char *content)
{
	char path[1024];
	FILE *f;

	assert_true((size_t)snprintf(path, sizeof(path), "%s/%s", dir, rel) <
	            sizeof(path));
	assert_non_null(f = fopen(path, "w"));
	assert_true(fputs(content, f) >= 0);
	assert_int_equal(fclose(f), 0);
}
