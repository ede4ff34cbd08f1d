/*
 * The route table: the public HTTP contract of DESIGN.md, in one place.
 * Order matters only between patterns that could both match.
 *
 * Body limits: a route without EB_ROUTE_BODY reads no body at all. The
 * endpoints anyone may call without a credential take small bodies (a
 * MachineInfo is a few KiB, the OAuth 2 forms less); the MDM proxy decides
 * per request from the bearer, before the body is read (proxy_head.c).
 */
#include "handle/handle.h"

#define BODY_ENROLL (64 * 1024) /* a signed MachineInfo */
#define BODY_FORM   (16 * 1024) /* an OAuth 2 form */
#define BODY_SCIM   (64 * 1024) /* a SCIM User or PatchOp */

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
    {"GET", "/healthz", eb_handle_healthz, "healthz", 0, 0, NULL},
    {"GET", "/readyz", eb_handle_readyz, "readyz", 0, 0, NULL},
    {"GET", "/metrics", eb_handle_metrics, "metrics", 0, 0, NULL},
};

const size_t eb_nroutes = sizeof(eb_routes) / sizeof(eb_routes[0]);
