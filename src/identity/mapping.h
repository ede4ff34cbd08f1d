/*
 * The Managed Apple Account a signed-in person enrolls with (DESIGN.md,
 * "Contract details", managed_apple_id): an admin override from the store
 * wins; else the tenant's template ({local}, {domain}, {claim:NAME}); else
 * the chosen claim with its domain rewritten through domain_map. The result
 * is lower-cased and must be a valid address in one of the tenant's managed
 * domains (a domain_map value or managed_domains), or the person is
 * refused. The identifier typed on the device and the IdP login are both
 * kept beside it.
 */
#ifndef EB_MAPPING_H
#define EB_MAPPING_H

#include <stddef.h>

#include "core/config.h"
#include "identity/identity.h"
#include "identity/policy.h"

struct eb_store;

/* Outcomes of eb_mapping_resolve. */
enum eb_mapping_rc {
	EB_MAPPING_OK = 0,
	EB_MAPPING_DENY = -1, /* the person cannot be mapped: 403 */
	EB_MAPPING_FAIL = -2, /* store failure or out of memory: 500 */
};

struct eb_mapping_result {
	char *managed_apple_id; /* lower-case local@domain */
	const char *source;     /* "override", "template" or "claim" (static) */
	char *idp_login;   /* the tenant's mapping claim as the IdP sent it,
	                      or NULL when absent */
	char *typed;       /* identifier typed on the device, or NULL */
	int store_checked; /* 1 when overrides were looked up */
};

/*
 * Map identity id of tenant t. store (may be NULL: no overrides) is asked
 * for an override by (t->id, id->subject). typed (may be NULL) is copied
 * into the result. On EB_MAPPING_OK out is filled (release with
 * eb_mapping_result_finish); on DENY v says why (codes "override_invalid",
 * "claim_missing", "claim_invalid", "template_claim_missing",
 * "address_invalid", "domain_not_managed"); on FAIL v->reason says what
 * broke. out is left empty unless OK.
 */
int eb_mapping_resolve(const struct eb_tenant *t, struct eb_store *store,
                       const struct eb_identity *id, const char *typed,
                       struct eb_mapping_result *out,
                       struct eb_policy_verdict *v);

/* Free what out holds and zero it; a zeroed result is a no-op. */
void eb_mapping_result_finish(struct eb_mapping_result *out);

/*
 * 1 when addr (already lower-case) is a syntactically valid address
 * local@domain: a dot-atom local part of 1 to 64 bytes and a FQDN.
 */
int eb_mapping_address_ok(const char *addr);

#endif
