/*
 * Which of a tenant's routes (config.h, struct eb_tenant_route) a signed-in
 * person takes: the first whose match holds for their identity. Decided once,
 * at sign-in after the access policy allowed them, and remembered on the grant
 * (grant/issue.h), so that every later request of that grant reads the
 * same route's enrollment, mdm and esso.
 */
#ifndef EB_IDENTITY_ROUTE_H
#define EB_IDENTITY_ROUTE_H

#include "core/config.h"
#include "identity/identity.h"

/*
 * 1 when route r matches id: member of any of match.groups (when given;
 * Entra group ids compare ignoring case), and every match.claims NAME
 * holds VALUE (a string claim equal to it, or an array claim with a string
 * element equal to it). An empty match holds for everyone.
 */
int eb_route_matches(const struct eb_tenant_route *r,
                     const struct eb_identity *id);
/* The first route of t that matches id, or NULL (the tenant's own keys). */
const struct eb_tenant_route *eb_route_match(const struct eb_tenant *t,
                                             const struct eb_identity *id);
/* 1 when a route of t matches on groups (the sign-in then resolves them
 * where the provider can, as for access.require_groups). */
int eb_route_needs_groups(const struct eb_tenant *t);

#endif
