/*
 * Corpus replay driver: runs a fuzz target's LLVMFuzzerTestOneInput over
 * every regular file of one directory (sorted by name, not recursive), so
 * that each seed corpus is also an ordinary CTest test under the sanitizers
 * without needing libFuzzer. Exit status: 0 when every input ran, 1 when the
 * directory is missing, unreadable or holds no input.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

extern int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read the whole file at path; NULL on error. */
static uint8_t *
read_file(const char *path, size_t *lenp)
{
	FILE *f;
	uint8_t *data = NULL, *p;
	size_t len = 0, cap = 0, n;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			if ((p = realloc(data, cap)) == NULL)
				goto out_fail;
			data = p;
		}
		n = fread(data + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f))
		goto out_fail;
	fclose(f);
	*lenp = len;
	return data;
out_fail:
	free(data);
	fclose(f);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct dirent *de;
	struct stat st;
	char **names = NULL, **np, path[4096];
	size_t n = 0, cap = 0, i, len;
	uint8_t *data;
	DIR *d;
	int rc = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 1;
	}
	if ((d = opendir(argv[1])) == NULL) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", argv[1], de->d_name);
		if (stat(path, &st) == -1 || !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((np = realloc(names, cap * sizeof(*names))) == NULL)
				goto out_names;
			names = np;
		}
		if ((names[n] = strdup(de->d_name)) == NULL)
			goto out_names;
		n++;
	}
	if (n == 0) {
		fprintf(stderr, "%s: no inputs\n", argv[1]);
		goto out_names;
	}
	qsort(names, n, sizeof(*names), cmp_names);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", argv[1], names[i]);
		if ((data = read_file(path, &len)) == NULL) {
			fprintf(stderr, "%s: cannot read\n", path);
			goto out_names;
		}
		LLVMFuzzerTestOneInput(data, len);
		free(data);
	}
	printf("replayed %zu inputs from %s\n", n, argv[1]);
	rc = 0;
out_names:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}
