/*
 * Route matching. The table is small (a few dozen routes) and matching walks
 * it in order, comparing segment by segment without allocating.
 */
#include "http/router.h"

#include <stdio.h>
#include <string.h>

static int
method_ok(const char *want, const char *got)
{
	if (strcmp(want, "*") == 0 || strcmp(want, got) == 0)
		return 1;
	return strcmp(want, "GET") == 0 && strcmp(got, "HEAD") == 0;
}

static int
match_one(const char *pat, const char *path, struct eb_route_match *m)
{
	m->nparams = 0;
	while (*pat && *path) {
		if (*pat == '{') {
			const char *close = strchr(pat, '}');
			const char *end;
			size_t nlen;

			if (close == NULL || m->nparams >= EB_ROUTER_MAX_PARAMS)
				return 0;
			nlen = (size_t)(close - pat - 1);
			if (nlen == 4 && strncmp(pat + 1, "rest", 4) == 0)
				end = path + strlen(path);
			else
				for (end = path; *end && *end != '/'; end++)
					;
			if (end == path)
				return 0;
			m->params[m->nparams].name = pat + 1;
			m->params[m->nparams].name_len = nlen;
			m->params[m->nparams].value = path;
			m->params[m->nparams].value_len = (size_t)(end - path);
			m->nparams++;
			pat = close + 1;
			path = end;
			continue;
		}
		if (*pat != *path)
			return 0;
		pat++;
		path++;
	}
	return *pat == '\0' && *path == '\0';
}

int
eb_router_match(const struct eb_route *routes, size_t n, const char *method,
                const char *path, struct eb_route_match *m, char *allow,
                size_t allowlen)
{
	size_t i;
	int found = 0;

	if (allow != NULL && allowlen > 0)
		allow[0] = '\0';
	for (i = 0; i < n; i++) {
		if (!match_one(routes[i].pattern, path, m))
			continue;
		if (method_ok(routes[i].method, method)) {
			m->index = (int)i;
			return 0;
		}
		found = 1;
		if (allow != NULL &&
		    strlen(allow) + strlen(routes[i].method) + 8 < allowlen) {
			size_t l = strlen(allow);

			(void)snprintf(allow + l, allowlen - l, "%s%s%s",
			               l > 0 ? ", " : "", routes[i].method,
			               strcmp(routes[i].method, "GET") == 0
			                   ? ", HEAD"
			                   : "");
		}
	}
	return found ? -2 : -1;
}
