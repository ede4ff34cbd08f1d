/*
 * Whether an enrollment a request names without a valid token (its
 * EnrollmentID or UDID) was retired (DESIGN "Lifecycle and identity"):
 * asked by the MDM proxy for every macOS device-channel request and every
 * token-less body, on the event loop. So that this costs no store call in
 * the common case, each thread keeps, per tenant, the set of binding
 * values its retired grants hold (retired grants are rare): a value not in
 * the set is not retired, answered from memory; a value in it is looked up
 * once and its answer kept with the set.
 *
 * A set is used under the bearer cache's invariant (token/bearer_cache.h):
 * only while the store's stamp is unchanged (any grant operation in this
 * process, a touch of the change file by the CLI, an invalidation another
 * replica commits, which `grants retire` is) and for at most a second (for
 * what nothing announces, such as another replica's re-enrollment of a
 * retired ADDE device). With no stamp (a feed not proved current) or with
 * ENROLLBRIDGE_NO_TOKEN_CACHE=1, every check reads the store. Memory is
 * bounded: a few tenants per thread, and a tenant with more retired
 * enrollments than the cap is checked in the store on every request
 * (logged once).
 */
#ifndef EB_GRANT_RETIRED_H
#define EB_GRANT_RETIRED_H

#include <stdint.h>

struct eb_store;

/*
 * Whether tenant's enrollment value of kind ("EnrollmentID" or "UDID")
 * was retired: its newest grant so bound is retired and no active grant
 * holds it (an ADDE device enrolled again keeps its UDID). 1 yes, 0 no,
 * -1 the store failed (logged).
 */
int eb_retired_enrollment(struct eb_store *s, const char *tenant,
                          const char *kind, const char *value);
/* Checks answered without a store read, and with, since start. */
void eb_retired_cache_stats(uint64_t *hits, uint64_t *misses);
/* Forget this thread's sets (also done when the thread exits). */
void eb_retired_cache_clear(void);

#endif
