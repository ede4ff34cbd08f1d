/*
 * The route table: the public HTTP contract of DESIGN.md, in one place.
 * Order matters only between patterns that could both match, and for the
 * listeners: the routes before "healthz" are public only, "healthz" and
 * "readyz" are served on both, "metrics" on admin_listen when it is set
 * (else on listen), and the routes after it (the admin API) on admin_listen
 * only (main.c takes the slices).
 *
 * Body limits: a route without EB_ROUTE_BODY reads no body at all. The
 * endpoints anyone may call without a credential take small bodies (a
 * MachineInfo is a few KiB, the OAuth 2 forms less); the MDM proxy decides
 * per request from the bearer, before the body is read (proxy_head.c).
 */
#include <string.h>

#include "handle/handle.h"

#define BODY_ENROLL (64 * 1024) /* a signed MachineInfo */
#define BODY_FORM   (16 * 1024) /* an OAuth 2 form */
#define BODY_SCIM   (64 * 1024) /* a SCIM User or PatchOp */
#define BODY_ADMIN  (16 * 1024) /* an admin API request */

const struct eb_route eb_routes[] = {
    {"GET", "/.well-known/com.apple.remotemanagement", eb_handle_discovery,
     "discovery", 0, 0, NULL},
    {"GET", "/t/{T}/.well-known/com.apple.remotemanagement",
     eb_handle_discovery, "discovery_tenant", EB_ROUTE_TENANT, 0, NULL},
    {"POST", "/t/{T}/enroll", eb_handle_enroll, "enroll",
     EB_ROUTE_TENANT | EB_ROUTE_BODY, BODY_ENROLL, NULL},
    {"GET", "/t/{T}/auth/{flow}", eb_handle_auth_start, "auth_start",
     EB_ROUTE_TENANT | EB_ROUTE_REDACT_PATH, 0, NULL},
    {"GET", "/t/{T}/oidc/callback", eb_handle_oidc_callback, "oidc_callback",
     EB_ROUTE_TENANT, 0, NULL},
    {"GET", "/t/{T}/oauth2/authorize", eb_handle_oauth2_authorize,
     "oauth2_authorize", EB_ROUTE_TENANT, 0, NULL},
    {"GET", "/t/{T}/esso.json", eb_handle_esso, "esso", EB_ROUTE_TENANT, 0,
     NULL},
    {"POST", "/t/{T}/oauth2/token", eb_handle_oauth2_token, "oauth2_token",
     EB_ROUTE_TENANT | EB_ROUTE_BODY, BODY_FORM, NULL},
    {"GET", "/t/{T}/jwks.json", eb_handle_jwks, "jwks", EB_ROUTE_TENANT, 0,
     NULL},
    {"GET", "/t/{T}/.well-known/oauth-authorization-server",
     eb_handle_oauth2_metadata, "oauth2_metadata", EB_ROUTE_TENANT, 0, NULL},
    {"POST", "/t/{T}/oauth2/introspect", eb_handle_oauth2_introspect,
     "oauth2_introspect", EB_ROUTE_TENANT | EB_ROUTE_BODY, BODY_FORM, NULL},
    {"POST", "/t/{T}/oauth2/revoke", eb_handle_oauth2_revoke, "oauth2_revoke",
     EB_ROUTE_TENANT | EB_ROUTE_BODY, BODY_FORM, NULL},
    {"*", "/t/{T}/mdm/{rest}", eb_handle_proxy, "mdm_proxy",
     EB_ROUTE_TENANT | EB_ROUTE_BODY, 0, eb_proxy_head},
    {"*", "/t/{T}/scim/v2/Users", eb_handle_scim_users, "scim_users",
     EB_ROUTE_TENANT | EB_ROUTE_BODY, BODY_SCIM, NULL},
    {"*", "/t/{T}/scim/v2/Users/{id}", eb_handle_scim_user, "scim_user",
     EB_ROUTE_TENANT | EB_ROUTE_BODY, BODY_SCIM, NULL},
    {"GET", "/t/{T}/scim/v2/{rest}", eb_handle_scim_meta, "scim_meta",
     EB_ROUTE_TENANT, 0, NULL},
    /* from here on: served on admin_listen too */
    {"GET", "/healthz", eb_handle_healthz, "healthz", 0, 0, NULL},
    {"GET", "/readyz", eb_handle_readyz, "readyz", 0, 0, NULL},
    /* public only without admin_listen */
    {"GET", "/metrics", eb_handle_metrics, "metrics", 0, 0, NULL},
    /* from here on: admin_listen only (handle/admin_ops.c) */
    {"GET", "/admin/v1/grants", eb_handle_admin_grants_list, "admin_grants", 0,
     0, NULL},
    {"GET", "/admin/v1/grants/{id}", eb_handle_admin_grant_get, "admin_grant",
     0, 0, NULL},
    {"POST", "/admin/v1/grants/{id}/revoke", eb_handle_admin_grant_revoke,
     "admin_grant_revoke", EB_ROUTE_BODY, BODY_ADMIN, NULL},
    {"POST", "/admin/v1/grants/{id}/retire", eb_handle_admin_grant_retire,
     "admin_grant_retire", EB_ROUTE_BODY, BODY_ADMIN, NULL},
    {"POST", "/admin/v1/person/revoke", eb_handle_admin_person_revoke,
     "admin_person_revoke", EB_ROUTE_BODY, BODY_ADMIN, NULL},
    {"POST", "/admin/v1/person/retire", eb_handle_admin_person_retire,
     "admin_person_retire", EB_ROUTE_BODY, BODY_ADMIN, NULL},
    {"GET", "/admin/v1/keys", eb_handle_admin_keys_list, "admin_keys", 0, 0,
     NULL},
    {"POST", "/admin/v1/keys/rotate", eb_handle_admin_keys_rotate,
     "admin_keys_rotate", EB_ROUTE_BODY, BODY_ADMIN, NULL},
    {"GET", "/admin/v1/mappings", eb_handle_admin_mappings_list,
     "admin_mappings", 0, 0, NULL},
    {"POST", "/admin/v1/mappings", eb_handle_admin_mapping_set,
     "admin_mapping_set", EB_ROUTE_BODY, BODY_ADMIN, NULL},
    {"DELETE", "/admin/v1/mappings", eb_handle_admin_mapping_unset,
     "admin_mapping_unset", 0, 0, NULL},
    {"GET", "/admin/v1/audit", eb_handle_admin_audit_query, "admin_audit", 0, 0,
     NULL},
};

const size_t eb_nroutes = sizeof(eb_routes) / sizeof(eb_routes[0]);

size_t
eb_route_index(const char *name)
{
	size_t i;

	for (i = 0; i < eb_nroutes; i++)
		if (strcmp(eb_routes[i].name, name) == 0)
			return i;
	return eb_nroutes;
}
