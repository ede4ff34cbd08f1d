/*
 * Google Workspace. Sign-in is limited to the tenant's Workspace domain by
 * the ID token's hd claim (the hd request parameter is only a hint that a
 * user can remove); the email address must be verified; and refresh tokens
 * need access_type=offline.
 *
 * prompt=consent: Google returns a refresh token only the first time a user
 * consents to the app, or whenever consent is asked again. Every enrollment
 * is a new grant that needs its own refresh token for silent renewal; a
 * grant without one would force the device to re-authenticate when the
 * first access token ends, a far worse experience than one extra consent
 * screen at enrollment, which happens once per device. So prompt=consent is
 * sent by default. An admin who prefers otherwise (for instance
 * "select_account consent", or none for an app their Workspace trusts) sets
 * "prompt" in idp.extra_auth_params, which replaces ours.
 */
#include "providers/provider.h"

#include <string.h>

#include "core/config_int.h"
#include "core/mem.h"
#include "core/str.h"
#include "providers/provider_int.h"

#define GOOGLE_ISSUER      "https://accounts.google.com"
#define GOOGLE_ISSUER_BARE "accounts.google.com"

static int
google_auth_params(const struct eb_tenant *t, struct eb_buf *q)
{
	const struct eb_google_conf *gc = t->idp.provider_conf;

	if (eb_provider_add_default(t, q, "hd", gc->hosted_domain) == -1 ||
	    eb_provider_add_default(t, q, "access_type", "offline") == -1 ||
	    eb_provider_add_default(t, q, "prompt", "consent") == -1)
		return -1;
	return eb_provider_add_extra(t, q);
}

/*
 * Google documents that its ID tokens carry iss "https://accounts.google.com"
 * or "accounts.google.com": the second is accepted for Google's own issuer
 * only.
 */
static int
google_expected_issuer(const struct eb_tenant *t, const char *meta_issuer,
                       json_t *claims, char *out, size_t outlen, char *why,
                       size_t whylen)
{
	const char *iss = json_string_value(json_object_get(claims, "iss"));

	if (meta_issuer != NULL && strcmp(meta_issuer, GOOGLE_ISSUER) == 0 &&
	    iss != NULL && strcmp(iss, GOOGLE_ISSUER_BARE) == 0)
		return eb_provider_copy_issuer(GOOGLE_ISSUER_BARE, out, outlen,
		                               why, whylen);
	return eb_provider_meta_issuer(t, meta_issuer, claims, out, outlen, why,
	                               whylen);
}

static int
google_check_identity(const struct eb_tenant *t, struct eb_identity *id,
                      char *why, size_t whylen)
{
	const struct eb_google_conf *gc = t->idp.provider_conf;
	const char *want = gc != NULL ? gc->hosted_domain : NULL;

	if (want == NULL) {
		eb_provider_why(why, whylen,
		                "idp.hosted_domain is not configured");
		return EB_PROVIDER_FAIL;
	}
	if (id->hd == NULL || id->hd[0] == '\0') {
		eb_provider_why(why, whylen,
		                "you signed in with a personal Google account; "
		                "sign in with your %s work account",
		                want);
		return EB_PROVIDER_DENY;
	}
	if (!eb_str_ieq(id->hd, want)) {
		eb_provider_why(why, whylen,
		                "you signed in with an account of %.100s; sign "
		                "in with your %s work account",
		                id->hd, want);
		return EB_PROVIDER_DENY;
	}
	if (id->email_verified != 1) {
		eb_provider_why(why, whylen,
		                "Google says the email address of this account "
		                "is not verified");
		return EB_PROVIDER_DENY;
	}
	return EB_PROVIDER_OK;
}

static const char *const google_keys[] = {"hosted_domain", NULL};

static void
google_config_free(void *priv)
{
	struct eb_google_conf *gc = priv;

	if (gc == NULL)
		return;
	eb_free(gc->hosted_domain);
	eb_free(gc);
}

/* hosted_domain is required; the issuer and three scopes by default. */
static int
google_config_parse(struct eb_cfg_ctx *c, const json_t *o,
                    struct eb_idp_config *idp, void **priv)
{
	struct eb_google_conf *gc;

	if ((gc = eb_calloc(1, sizeof(*gc))) == NULL)
		return eb_cfg_fail(c, NULL, "idp", "out of memory");
	*priv = gc;
	if (eb_cfg_str(c, o, "idp", "hosted_domain", 1, EB_CFG_FQDN,
	               &gc->hosted_domain) == -1 ||
	    eb_cfg_default_scopes(c, idp, 3) == -1 ||
	    eb_cfg_default_str(c, "idp", "issuer", &idp->issuer,
	                       GOOGLE_ISSUER) == -1)
		return -1;
	return 0;
}

const struct eb_provider_ops eb_provider_google = {
    .type = "google",
    .config_keys = google_keys,
    .config_parse = google_config_parse,
    .config_free = google_config_free,
    .auth_params = google_auth_params,
    .expected_issuer = google_expected_issuer,
    .check_identity = google_check_identity,
    .resolve_groups = NULL,
};
