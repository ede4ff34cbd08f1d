/*
 * A tenant's "routes" (DESIGN.md "Lifecycle and identity"): an ordered
 * list of {name, match {groups, claims}, enrollment, mdm, esso}. Each
 * override is read by the very parser of the tenant's own key, with the
 * route's place ("routes[1]") put before every key path an error names.
 * Once parsed, each route gets its view: the tenant as that route's people
 * see it (config.h, struct eb_tenant_route). Which route a person takes is
 * identity/route.h's; finding a grant's route again is
 * eb_tenant_route_view().
 */
#include "core/config_int.h"

#include <stdio.h>
#include <string.h>

#include "core/mem.h"

/* mdm keys that apply before a person is known: tenant-wide. */
static const char *const tenant_wide[] = {
    "audience",
    "clients",
    "allow_unauthenticated_device_channel",
    "device_ca",
    "device_channel_paths",
    NULL};

static int
name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 64 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz"
	                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

const char *const eb_cfg_keys_route_match[] = {"groups", "claims", NULL};

static int
parse_match(struct eb_cfg_ctx *c, const json_t *item, struct eb_tenant_route *r)
{
	json_t *m;

	if (eb_cfg_obj(c, item, NULL, "match", &m) == -1)
		return -1;
	if (m == NULL)
		return eb_cfg_fail(c, NULL, "match",
		                   "is required ({} matches everyone)");
	return eb_cfg_keys(c, m, "match", eb_cfg_keys_route_match) == -1 ||
	               eb_cfg_strlist(c, m, "match", "groups", 0, &r->groups) ==
	                   -1 ||
	               eb_cfg_kvlist(c, m, "match", "claims", 0, 0,
	                             &r->claims) == -1
	           ? -1
	           : 0;
}

static int
parse_mdm_override(struct eb_cfg_ctx *c, const json_t *item,
                   struct eb_tenant_route *r)
{
	json_t *o = json_object_get(item, "mdm");
	size_t i;

	if (o == NULL)
		return 0;
	if (eb_cfg_parse_mdm(c, item, &r->mdm) == -1)
		return -1;
	for (i = 0; tenant_wide[i] != NULL; i++)
		if (json_object_get(o, tenant_wide[i]) != NULL)
			return eb_cfg_fail(c, "mdm", tenant_wide[i],
			                   "is tenant-wide: set it in the "
			                   "tenant's own mdm");
	r->overrides |= EB_ROUTE_MDM;
	return 0;
}

const char *const eb_cfg_keys_route[] = {"name", "match", "enrollment",
                                         "mdm",  "esso",  NULL};

/* One item of "routes" into r (its view is built later). */
static int
parse_route(struct eb_cfg_ctx *c, const json_t *item, struct eb_tenant_route *r)
{
	enum eb_enroll_mode mode = EB_MODE_BYOD;
	signed char by_family[EB_FAMILY_COUNT];

	if (!json_is_object(item))
		return eb_cfg_fail(c, NULL, NULL, "must be an object");
	if (eb_cfg_keys(c, item, NULL, eb_cfg_keys_route) == -1 ||
	    eb_cfg_str(c, item, NULL, "name", 1, 0, &r->name) == -1)
		return -1;
	if (!name_ok(r->name))
		return eb_cfg_fail(c, NULL, "name",
		                   "must be 1 to 64 of A-Z, a-z, 0-9, '_' and "
		                   "'-'");
	if (parse_match(c, item, r) == -1 ||
	    parse_mdm_override(c, item, r) == -1)
		return -1;
	if (json_object_get(item, "enrollment") != NULL) {
		memset(by_family, -1, sizeof(by_family));
		if (eb_cfg_parse_enrollment(c, item, &mode, by_family) == -1)
			return -1;
		r->view.default_mode = mode;
		memcpy(r->view.by_family, by_family, sizeof(by_family));
		r->overrides |= EB_ROUTE_ENROLLMENT;
	}
	if (json_object_get(item, "esso") != NULL) {
		if (eb_cfg_parse_esso(c, item, &r->esso) == -1)
			return -1;
		r->overrides |= EB_ROUTE_ESSO;
	}
	if (r->overrides == 0)
		return eb_cfg_fail(c, NULL, NULL,
		                   "overrides nothing: give enrollment, mdm or "
		                   "esso");
	return 0;
}

/* The tenant as route r's people see it (config.h, struct eb_tenant_route). */
static void
build_view(const struct eb_tenant *t, struct eb_tenant_route *r)
{
	struct eb_tenant *v = &r->view;
	enum eb_enroll_mode mode = v->default_mode;
	signed char by_family[EB_FAMILY_COUNT];

	memcpy(by_family, v->by_family, sizeof(by_family));
	*v = *t;
	v->routes = NULL;
	v->nroutes = 0;
	v->route = r->name;
	if (r->overrides & EB_ROUTE_ENROLLMENT) {
		v->default_mode = mode;
		memcpy(v->by_family, by_family, sizeof(by_family));
	}
	if (r->overrides & EB_ROUTE_MDM) {
		v->mdm = r->mdm;
		/* tenant-wide: used before a person is known */
		v->mdm.audience = t->mdm.audience;
		v->mdm.clients = t->mdm.clients;
		v->mdm.nclients = t->mdm.nclients;
		v->mdm.allow_unauthenticated_device_channel =
		    t->mdm.allow_unauthenticated_device_channel;
		v->mdm.device_channel_paths = t->mdm.device_channel_paths;
		v->mdm.device_ca = t->mdm.device_ca;
	}
	if (r->overrides & EB_ROUTE_ESSO)
		v->esso = r->esso;
}

int
eb_cfg_parse_routes(struct eb_cfg_ctx *c, const json_t *root,
                    struct eb_tenant *t)
{
	json_t *v = json_object_get(root, "routes"), *item;
	char where[32];
	size_t i, j, n;
	int rc = -1;

	if (v == NULL)
		return 0;
	if (!json_is_array(v))
		return eb_cfg_fail(c, NULL, "routes",
		                   "must be a list of objects");
	if ((n = json_array_size(v)) > EB_CFG_MAX_ROUTES)
		return eb_cfg_fail(c, NULL, "routes", "has more than %d items",
		                   EB_CFG_MAX_ROUTES);
	if ((t->routes = eb_calloc(n ? n : 1, sizeof(*t->routes))) == NULL)
		return eb_cfg_fail(c, NULL, "routes", "out of memory");
	json_array_foreach(v, i, item)
	{
		snprintf(where, sizeof(where), "routes[%zu]", i);
		c->keyroot = where;
		t->nroutes = i + 1;
		if (parse_route(c, item, &t->routes[i]) == -1)
			goto out;
		for (j = 0; j < i; j++)
			if (strcmp(t->routes[j].name, t->routes[i].name) == 0) {
				eb_cfg_fail(c, NULL, "name", "is a duplicate");
				goto out;
			}
	}
	for (i = 0; i < t->nroutes; i++)
		build_view(t, &t->routes[i]);
	rc = 0;
out:
	c->keyroot = NULL;
	return rc;
}

void
eb_cfg_routes_free(struct eb_tenant *t)
{
	struct eb_tenant_route *r;
	size_t i;

	for (i = 0; i < t->nroutes; i++) {
		r = &t->routes[i];
		/* the view borrows everything: only what r owns */
		eb_free(r->name);
		eb_cfg_strlist_free(&r->groups);
		eb_cfg_kvlist_free(&r->claims);
		eb_cfg_mdm_free(&r->mdm);
		eb_cfg_esso_free(r->esso);
	}
	eb_free(t->routes);
	t->routes = NULL;
	t->nroutes = 0;
}

const struct eb_tenant *
eb_tenant_route_view(const struct eb_tenant *t, const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0')
		return t;
	for (i = 0; i < t->nroutes; i++)
		if (strcmp(t->routes[i].name, name) == 0)
			return &t->routes[i].view;
	return NULL;
}
