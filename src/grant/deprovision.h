/*
 * Ending the access of a person a provisioning client (SCIM) deactivated
 * or deleted (DESIGN "Lifecycle and identity"): every active grant of the
 * tenant held by the person the client names, by login or IdP object id,
 * ends as the tenant's on_access_lost says: retired (the device gets 403
 * and unenrolls) or revoked (401 and the challenge). Synchronous: each end
 * is committed (and, on PostgreSQL, announced to the other replicas)
 * before this returns.
 */
#ifndef EB_GRANT_DEPROVISION_H
#define EB_GRANT_DEPROVISION_H

#include <stddef.h>
#include <stdint.h>

struct eb_store;
struct eb_tenant;

/* Who to deprovision, as the SCIM client knows them. */
struct eb_deprovision_in {
	const char *scim_id;     /* the SCIM resource id, for the audit event */
	const char *user_name;   /* matched to the grant's IdP login */
	const char *external_id; /* matched to its IdP oid or subject */
	const char *why;         /* "deactivated" or "deleted" */
	int64_t now;
};

struct eb_deprovision_out {
	size_t found, ended, failed;
};

/*
 * End the active grants of in's person in tenant t, audit the outcome as
 * "scim.deprovision" and log it (never a credential). 0 when every grant
 * found was ended (or none was found), -1 when one could not be (out->failed
 * says how many; logged).
 */
int eb_grant_deprovision(struct eb_store *s, const struct eb_tenant *t,
                         const struct eb_deprovision_in *in,
                         struct eb_deprovision_out *out);

/*
 * Whether the SCIM client of tenant t deactivated the person login (IdP
 * login, any case; may be NULL) / oid (IdP object id or subject; may be
 * NULL): 1 when a User of t with that userName or externalId is inactive,
 * 0 when none is, -1 when the store could not say (logged). A sign-in of
 * such a person is refused until the client reactivates them.
 */
int eb_grant_scim_inactive(struct eb_store *s, const struct eb_tenant *t,
                           const char *login, const char *oid);

#endif
