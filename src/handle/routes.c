/*
 * The route table: the public HTTP contract of DESIGN.md, in one place.
 * Order matters only between patterns that could both match.
 */
#include "handle/handle.h"

const struct eb_route eb_routes[] = {
    {"GET", "/.well-known/com.apple.remotemanagement", eb_handle_discovery,
     "discovery", 0},
    {"GET", "/t/{T}/.well-known/com.apple.remotemanagement",
     eb_handle_discovery, "discovery_tenant", EB_ROUTE_TENANT},
    {"POST", "/t/{T}/enroll", eb_handle_enroll, "enroll",
     EB_ROUTE_TENANT | EB_ROUTE_BODY},
    {"GET", "/t/{T}/auth/{flow}", eb_handle_auth_start, "auth_start",
     EB_ROUTE_TENANT | EB_ROUTE_REDACT_PATH},
    {"GET", "/t/{T}/oidc/callback", eb_handle_oidc_callback, "oidc_callback",
     EB_ROUTE_TENANT},
    {"GET", "/t/{T}/oauth2/authorize", eb_handle_oauth2_authorize,
     "oauth2_authorize", EB_ROUTE_TENANT},
    {"GET", "/t/{T}/esso.json", eb_handle_esso, "esso", EB_ROUTE_TENANT},
    {"POST", "/t/{T}/oauth2/token", eb_handle_oauth2_token, "oauth2_token",
     EB_ROUTE_TENANT | EB_ROUTE_BODY},
    {"GET", "/t/{T}/jwks.json", eb_handle_jwks, "jwks", EB_ROUTE_TENANT},
    {"GET", "/t/{T}/.well-known/oauth-authorization-server",
     eb_handle_oauth2_metadata, "oauth2_metadata", EB_ROUTE_TENANT},
    {"POST", "/t/{T}/oauth2/introspect", eb_handle_oauth2_introspect,
     "oauth2_introspect", EB_ROUTE_TENANT | EB_ROUTE_BODY},
    {"POST", "/t/{T}/oauth2/revoke", eb_handle_oauth2_revoke, "oauth2_revoke",
     EB_ROUTE_TENANT | EB_ROUTE_BODY},
    {"*", "/t/{T}/mdm/{rest}", eb_handle_proxy, "mdm_proxy",
     EB_ROUTE_TENANT | EB_ROUTE_BODY},
    {"GET", "/healthz", eb_handle_healthz, "healthz", 0},
    {"GET", "/readyz", eb_handle_readyz, "readyz", 0},
    {"GET", "/metrics", eb_handle_metrics, "metrics", 0},
};

const size_t eb_nroutes = sizeof(eb_routes) / sizeof(eb_routes[0]);
