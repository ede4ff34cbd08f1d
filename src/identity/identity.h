/*
 * The signed-in person, as the upstream sign-in produced them: who the IdP
 * says they are (issuer + stable subject), the claims mapping and policy
 * read, and the groups. Built by the OIDC callback from a validated ID token
 * (and userinfo / Microsoft Graph where a provider needs them), then handed
 * to the Managed Apple Account mapping and the access policy.
 */
#ifndef EB_IDENTITY_H
#define EB_IDENTITY_H

#include <stddef.h>

#include <jansson.h>

#include "core/config.h"

struct eb_identity {
	char *issuer;    /* the validated iss */
	char *subject;   /* stable key at the IdP: sub, or "tid:oid" (Entra) */
	char *tid, *oid; /* Entra */
	char *email;     /* as the IdP asserts it (may be NULL) */
	int email_verified; /* -1 unknown (Entra sends none), 0, 1 */
	char *upn, *preferred_username, *name, *hd;
	struct eb_strlist groups;
	int groups_known; /* 0: overage unresolved or not asked for */
	json_t *claims;   /* all claims (ID token, merged with userinfo) */
};

/* Start an empty identity. */
void eb_identity_init(struct eb_identity *id);
/* Free everything it holds (not id itself). */
void eb_identity_finish(struct eb_identity *id);
/*
 * Fill the common fields from a claims object (takes a reference on
 * claims): sub, email, email_verified, upn, preferred_username, name, hd,
 * tid, oid, groups (when a list of strings). Returns 0, or -1 without sub.
 */
int eb_identity_from_claims(struct eb_identity *id, const char *issuer,
                            json_t *claims);
/*
 * The person's login at the IdP, as a SCIM userName names them:
 * preferred_username, else upn, else email (as sent; NULL when none).
 */
const char *eb_identity_login(const struct eb_identity *id);
/* A string claim by name ("email", "upn", any claim), or NULL. */
const char *eb_identity_claim(const struct eb_identity *id, const char *name);

#endif
