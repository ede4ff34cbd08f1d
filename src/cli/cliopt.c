/*
 * Argument helpers for the command-line tools. See cliopt.h.
 */
#include "cli/cliopt.h"

#include <stddef.h>
#include <string.h>

static const char *const model_families[] = {
    "iPhone", "iPad", "Mac", "AppleTV", "Watch", "RealityDevice", NULL};

const char *
eb_cli_optval(int argc, char **argv, int *i, const char *opt, int *missing)
{
	size_t n = strlen(opt);

	if (strncmp(argv[*i], opt, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = 1;
		return NULL;
	}
	return argv[++*i];
}

int
eb_cli_family_ok(const char *f)
{
	size_t i;

	for (i = 0; model_families[i] != NULL; i++)
		if (strcmp(f, model_families[i]) == 0)
			return 1;
	return 0;
}
