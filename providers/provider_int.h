/*
 * Helpers shared by the provider plug-ins (providers/registry.c): writing a
 * refusal reason, copying an issuer, the admin's extra authorization
 * parameters, and whether the tenant's mapping reads a given claim. Not for
 * use outside providers/.
 */
#ifndef EB_PROVIDER_INT_H
#define EB_PROVIDER_INT_H

#include <stddef.h>

#include "core/config.h"
#include "providers/provider.h"

/* Entra's own idp keys (eb_idp_config.provider_conf of an entra tenant). */
struct eb_entra_conf {
	char *tenant_id;
	struct eb_strlist allowed_tenants;
	char *domain_hint;
	int graph_groups; /* resolve groups overage through Microsoft Graph */
	char *graph_url;  /* default https://graph.microsoft.com */
};

/* Google's own idp keys (provider_conf of a google tenant). */
struct eb_google_conf {
	char *hosted_domain; /* required, lower case */
};

/* Format a plain-English reason into why (NULL or 0 bytes: ignored). */
void eb_provider_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Copy issuer into out. EB_PROVIDER_OK, or EB_PROVIDER_FAIL (reason in
 * why) when it does not fit.
 */
int eb_provider_copy_issuer(const char *issuer, char *out, size_t outlen,
                            char *why, size_t whylen);

/* 1 when the tenant's idp.extra_auth_params sets name. */
int eb_provider_extra_has(const struct eb_tenant *t, const char *name);

/*
 * Append name=value to q unless the admin set name in extra_auth_params
 * (the admin's value wins). 0 or -1 past q's limit.
 */
int eb_provider_add_default(const struct eb_tenant *t, struct eb_buf *q,
                            const char *name, const char *value);

/* Append every idp.extra_auth_params pair to q, URL-encoded. 0 or -1. */
int eb_provider_add_extra(const struct eb_tenant *t, struct eb_buf *q);

/*
 * 1 when the Managed Apple Account mapping or the access policy reads claim
 * name: it is managed_apple_id.claim and the claim rule, the template's
 * {local}/{domain} or access.allowed_domains uses it, or the template has
 * {claim:name}.
 */
int eb_provider_mapping_uses(const struct eb_tenant *t, const char *name);

/* The generic expected_issuer: the metadata issuer as is. */
int eb_provider_meta_issuer(const struct eb_tenant *t, const char *meta_issuer,
                            json_t *claims, char *out, size_t outlen, char *why,
                            size_t whylen);

#endif
