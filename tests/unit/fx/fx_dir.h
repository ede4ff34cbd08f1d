/*
 * Temporary folders for unit tests (tests/unit/fx).
 */
#ifndef EB_TEST_FX_DIR_H
#define EB_TEST_FX_DIR_H

#include <stddef.h>

/* A fresh folder <prefix>-XXXXXX under $EB_BINARY_DIR (else /tmp), its
 * path into dir (of size): 0, or -1. */
int fx_mkdtemp(char *dir, size_t size, const char *prefix);
/* Remove path and all in it, symbolic links not followed: 0, or -1. */
int fx_rmtree(const char *path);
/* Write content to dir/rel; the running test fails when it cannot. */
void fx_write(const char *dir, const char *rel, const char *content);

#endif
