/*
 * Route matching over a table of struct eb_route (http.h). Patterns are
 * literal segments and {name} captures of one segment; a final {rest}
 * captures the remainder, slashes included. "GET" routes also answer HEAD.
 */
#ifndef EB_ROUTER_H
#define EB_ROUTER_H

#include <stddef.h>

#include "http/http.h"

#define EB_ROUTER_MAX_PARAMS 4

struct eb_route_match {
	int index; /* route index */
	size_t nparams;
	struct {
		const char *name; /* points into the pattern */
		size_t name_len;
		const char *value; /* points into the path */
		size_t value_len;
	} params[EB_ROUTER_MAX_PARAMS];
};

/*
 * Match method and path against the table. Returns 0 with *m filled, -1 when
 * no pattern matches (404), -2 when a pattern matches but not the method (405;
 * allow, when not NULL, receives the allowed methods, comma separated).
 */
int eb_router_match(const struct eb_route *routes, size_t n, const char *method,
                    const char *path, struct eb_route_match *m, char *allow,
                    size_t allowlen);

#endif
