/*
 * Identity-provider plug-ins (after Dex's connectors): one const ops table
 * per provider type, found by the type named in the tenant's idp.type. The
 * core never tests a provider's name: what differs between Entra ID, Google
 * Workspace and a generic OIDC provider is expressed here, and a missing
 * capability is a NULL pointer (the generic behaviour applies).
 *
 * Every hook gets the tenant and writes a plain-English reason into why
 * (never a token or secret) when it refuses.
 */
#ifndef EB_PROVIDER_H
#define EB_PROVIDER_H

#include <stddef.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/config.h"
#include "identity/identity.h"

enum eb_provider_verdict {
	EB_PROVIDER_OK = 0,
	EB_PROVIDER_DENY = -1, /* the person may not sign in (403 page) */
	EB_PROVIDER_FAIL = -2, /* the IdP misbehaved or is down (502) */
};

struct eb_cfg_ctx;

struct eb_provider_ops {
	const char *type; /* "oidc", "entra", "google" */

	/*
	 * The idp keys only this provider understands (NULL-terminated, NULL:
	 * none). The core accepts them in any tenant's idp object and refuses
	 * them under another type; `enrollbridge config-keys` lists them.
	 */
	const char *const *config_keys;

	/*
	 * Read the provider's own keys from the idp object o (the common ones
	 * are in idp already), check them, fill the provider's defaults (an
	 * issuer, the scopes when idp->scopes is empty) and return its private
	 * state in *priv (may stay NULL). Errors through eb_cfg_fail (file,
	 * key, reason). 0 or -1; on -1 *priv is still freed by config_free.
	 */
	int (*config_parse)(struct eb_cfg_ctx *c, const json_t *o,
	                    struct eb_idp_config *idp, void **priv);

	/* Free what config_parse returned (NULL allowed). */
	void (*config_free)(void *priv);

	/*
	 * Append provider-specific authorization-request parameters to the
	 * form-encoded query in q (each as "&name=value"): Entra domain_hint,
	 * Google hd and access_type=offline, ... login_hint (the typed
	 * identifier, may be NULL) is already added by the core.
	 */
	int (*auth_params)(const struct eb_tenant *t, struct eb_buf *q);

	/*
	 * The issuer an ID token must carry, given the issuer in the provider
	 * metadata and the token's unverified-but-signature-checked claims.
	 * Generic: the metadata issuer. Entra multi-tenant: the {tenantid}
	 * template filled with the token's tid, tid checked against
	 * allowed_tenants. Writes the expected issuer into out.
	 */
	int (*expected_issuer)(const struct eb_tenant *t,
	                       const char *meta_issuer, json_t *claims,
	                       char *out, size_t outlen, char *why,
	                       size_t whylen);

	/*
	 * Provider rules on the validated claims, and the identity built from
	 * them: Google hd == hosted_domain and email_verified; Entra subject
	 * tid:oid. id is filled by eb_identity_from_claims before the call;
	 * the hook may adjust it.
	 */
	int (*check_identity)(const struct eb_tenant *t, struct eb_identity *id,
	                      char *why, size_t whylen);

	/*
	 * Resolve groups the token could not carry (Entra overage through
	 * Microsoft Graph with the upstream access token). Called only when
	 * the tenant requires groups and id->groups_known is 0.
	 */
	int (*resolve_groups)(const struct eb_tenant *t, struct eb_identity *id,
	                      const char *access_token, int timeout,
	                      size_t max_bytes, char *why, size_t whylen);
};

/* The provider for a type name, or NULL. */
const struct eb_provider_ops *eb_provider_find(const char *type);

/*
 * The i-th provider (built-in ones first, then registered ones), or NULL
 * past the last: for the key list and the idp.type choices.
 */
const struct eb_provider_ops *eb_provider_at(size_t i);

/*
 * Add a provider type at run time (a plug-in compiled into the program,
 * the unit tests' own type). Call before any configuration is loaded; the
 * table must outlive every tenant of its type. 0, or -1 when the type is
 * already known or the table is full.
 */
int eb_provider_register(const struct eb_provider_ops *ops);

extern const struct eb_provider_ops eb_provider_oidc;
extern const struct eb_provider_ops eb_provider_entra;
extern const struct eb_provider_ops eb_provider_google;

#endif
