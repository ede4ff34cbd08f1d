/*
 * Issuing a grant at the end of a sign-in (DESIGN.md "Grants"): from the
 * identity the IdP vouched for, the Managed Apple Account it maps to and
 * the login flow, build the grant, seal the upstream refresh token into it,
 * store it, let it take over the grant the flow replaces (same account,
 * same tenant: grant/policy.h), and mint what the device receives: an
 * authorization code for apple-oauth2, an access token for apple-as-web.
 * The HTTP side (handle/signin.c) only turns the answer into a redirect.
 */
#ifndef EB_GRANT_ISSUE_H
#define EB_GRANT_ISSUE_H

#include <stdint.h>

struct eb_config;
struct eb_env;
struct eb_identity;
struct eb_mapping_result;
struct eb_oidc_tokens;
struct eb_store_flow;
struct eb_tenant;
struct eb_tenant_route;

struct eb_grant_issue_in {
	const struct eb_tenant *t;
	const struct eb_store_flow *f; /* the login flow being finished */
	const struct eb_identity *id;  /* verified by the OIDC core */
	const struct eb_mapping_result *map;
	const struct eb_oidc_tokens *tok; /* the IdP's tokens */
	/* the route the person takes (identity/route.h), NULL: none */
	const struct eb_tenant_route *route;
	int64_t now;
};

/*
 * The grant's extra JSON (store.h): the ID token's sub (the renewal's
 * check), the route's name, and under "idp" the claims (the IdP login
 * is the grant's idp_login column)
 * view->mdm.claims names (view: the route's, or t), at most
 * EB_GRANT_IDP_MAX bytes of JSON; a claim that does not fit is left out
 * (logged). "groups" is the groups the sign-in read (Graph included).
 * A fresh string (eb_free), or NULL when out of memory.
 */
#define EB_GRANT_IDP_MAX 4096
char *eb_grant_extra(const struct eb_tenant *view, const char *route,
                     const struct eb_identity *id, const char *sub);

/*
 * Store a new active grant for in and return the raw credential the
 * device gets (authorization code or access token; free it with
 * eb_free_secret_str), or NULL when nothing could be stored (logged).
 */
char *eb_grant_issue(struct eb_env *env, const struct eb_config *cfg,
                     const struct eb_grant_issue_in *in);

#endif
