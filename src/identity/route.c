/*
 * Route matching (route.h): groups any-of, claims all-of, first match wins.
 */
#include "identity/route.h"

#include <string.h>

#include <jansson.h>

#include "identity/policy.h"

static int
groups_match(const struct eb_strlist *want, const struct eb_identity *id)
{
	size_t i, j;

	if (want->n == 0)
		return 1;
	for (i = 0; i < want->n; i++)
		for (j = 0; j < id->groups.n; j++)
			if (eb_policy_group_eq(want->v[i], id->groups.v[j]))
				return 1;
	return 0;
}

/* The claim NAME holds value: equal string, or an array holding it. */
static int
claim_holds(json_t *claims, const char *name, const char *value)
{
	json_t *v = json_object_get(claims, name), *e;
	size_t i;

	if (json_is_string(v))
		return strcmp(json_string_value(v), value) == 0;
	if (!json_is_array(v))
		return 0;
	json_array_foreach(v, i, e)
	{
		if (json_is_string(e) &&
		    strcmp(json_string_value(e), value) == 0)
			return 1;
	}
	return 0;
}

int
eb_route_matches(const struct eb_tenant_route *r, const struct eb_identity *id)
{
	size_t i;

	if (!groups_match(&r->groups, id))
		return 0;
	for (i = 0; i < r->claims.n; i++)
		if (id->claims == NULL ||
		    !claim_holds(id->claims, r->claims.v[i].key,
		                 r->claims.v[i].value))
			return 0;
	return 1;
}

const struct eb_tenant_route *
eb_route_match(const struct eb_tenant *t, const struct eb_identity *id)
{
	size_t i;

	for (i = 0; i < t->nroutes; i++)
		if (eb_route_matches(&t->routes[i], id))
			return &t->routes[i];
	return NULL;
}

int
eb_route_needs_groups(const struct eb_tenant *t)
{
	size_t i;

	for (i = 0; i < t->nroutes; i++)
		if (t->routes[i].groups.n > 0)
			return 1;
	return 0;
}
