/*
 * Endpoint handlers, one file per endpoint family, and the route table that
 * binds them to the public HTTP contract (DESIGN.md).
 */
#ifndef EB_HANDLE_H
#define EB_HANDLE_H

#include <stddef.h>

#include "core/config.h"
#include "http/http.h"

extern const struct eb_route eb_routes[];
extern const size_t eb_nroutes;
/* The index of the route named name (its metrics label), or eb_nroutes. */
size_t eb_route_index(const char *name);

/* discovery.c */
int eb_handle_discovery(struct eb_request *req);
/* enroll.c */
int eb_handle_enroll(struct eb_request *req);
struct eb_machineinfo;
/* What a challenge's login flow remembers (every field optional). */
struct eb_challenge_ctx {
	const struct eb_machineinfo *mi; /* the device's MachineInfo */
	enum eb_enroll_mode mode;        /* for that device's model family */
	const char *replaces; /* re-authentication: the grant it replaces */
};
/* The 401 challenge for tenant t (also used by the MDM proxy); ctx may be
 * NULL (tenant default mode, nothing replaced). */
int eb_enroll_challenge(struct eb_request *req, const struct eb_tenant *t,
                        const struct eb_challenge_ctx *ctx);
/* esso.c */
int eb_handle_esso(struct eb_request *req);
/* signin.c */
int eb_handle_auth_start(struct eb_request *req);
int eb_handle_oidc_callback(struct eb_request *req);
int eb_handle_oauth2_authorize(struct eb_request *req);
struct eb_buf;
/* The longest error redirect the authorization endpoint builds. */
#define EB_OAUTH2_ERROR_URI_MAX 2048
/* Append to b the error redirect to ruri (RFC 6749 4.1.2.1): error, desc
 * and state (either may be NULL) as query parameters. 0, or -1 when b's
 * limit is reached: a redirect that would lose its state is never made. */
int eb_oauth2_error_uri(struct eb_buf *b, const char *ruri, const char *error,
                        const char *desc, const char *state)
    __attribute__((warn_unused_result));
/* oauth2.c: the apple-oauth2 token endpoint */
int eb_handle_oauth2_token(struct eb_request *req);
/* oauth2_meta.c: JWKS and RFC 8414 metadata */
int eb_handle_jwks(struct eb_request *req);
int eb_handle_oauth2_metadata(struct eb_request *req);
/* oauth2_introspect.c: RFC 7662 introspection, RFC 7009 revocation */
int eb_handle_oauth2_introspect(struct eb_request *req);
int eb_handle_oauth2_revoke(struct eb_request *req);
/* proxy.c: * /t/{T}/mdm/{rest} */
int eb_handle_proxy(struct eb_request *req);
/* proxy_head.c: the proxy's body limit from its bearer, before the body */
void eb_proxy_head(struct eb_request *req);
/* scim.c: /t/{T}/scim/v2/Users, /Users/{id}, discovery documents */
int eb_handle_scim_users(struct eb_request *req);
int eb_handle_scim_user(struct eb_request *req);
int eb_handle_scim_meta(struct eb_request *req);
/* health.c */
int eb_handle_healthz(struct eb_request *req);
int eb_handle_readyz(struct eb_request *req);
int eb_handle_metrics(struct eb_request *req);
struct eb_env;
struct eb_metrics;
/* Describe the families counted below and sampled at each scrape. */
void eb_handle_metrics_init(struct eb_metrics *m);
/* Add 1 to name{tenant="...",label="value"}, the values escaped. */
void eb_handle_count(struct eb_env *env, const char *name, const char *tenant,
                     const char *label, const char *value);
/* admin_ops.c: the admin API on admin_listen (admin.c: its transport) */
int eb_handle_admin_grants_list(struct eb_request *req);
int eb_handle_admin_grant_get(struct eb_request *req);
int eb_handle_admin_grant_revoke(struct eb_request *req);
int eb_handle_admin_grant_retire(struct eb_request *req);
int eb_handle_admin_person_revoke(struct eb_request *req);
int eb_handle_admin_person_retire(struct eb_request *req);
int eb_handle_admin_keys_list(struct eb_request *req);
int eb_handle_admin_keys_rotate(struct eb_request *req);
int eb_handle_admin_mappings_list(struct eb_request *req);
int eb_handle_admin_mapping_set(struct eb_request *req);
int eb_handle_admin_mapping_unset(struct eb_request *req);
int eb_handle_admin_audit_query(struct eb_request *req);

#endif
