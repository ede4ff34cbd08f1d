/*
 * The generic OpenID Connect provider: any IdP found by its issuer's
 * discovery document. The ID token's iss must be the metadata issuer; the
 * admin's idp.extra_auth_params are passed on the authorization request;
 * and an email the IdP itself marks as unverified is never used to pick a
 * Managed Apple Account.
 */
#include "providers/provider.h"

#include "providers/provider_int.h"

static int
oidc_auth_params(const struct eb_tenant *t, struct eb_buf *q)
{
	return eb_provider_add_extra(t, q);
}

static int
oidc_check_identity(const struct eb_tenant *t, struct eb_identity *id,
                    char *why, size_t whylen)
{
	/*
	 * Absent email_verified is accepted (many providers only send
	 * verified addresses and omit the claim); an explicit false is not.
	 */
	if (id->email_verified == 0 && id->email != NULL &&
	    eb_provider_mapping_uses(t, "email")) {
		eb_provider_why(why, whylen,
		                "your identity provider says the email address "
		                "of this account is not verified");
		return EB_PROVIDER_DENY;
	}
	return EB_PROVIDER_OK;
}

const struct eb_provider_ops eb_provider_oidc = {
    .type = "oidc",
    .auth_params = oidc_auth_params,
    .expected_issuer = eb_provider_meta_issuer,
    .check_identity = oidc_check_identity,
    .resolve_groups = NULL,
};
