/*
 * restrictions.max_devices_per_user (DESIGN.md "Lifecycle and identity"):
 * how many devices one person (one Managed Apple Account of the tenant)
 * may have enrolled at once, counted as their active, unexpired grants.
 * Judged at the end of sign-in, after the access policy, so that a refused
 * person sees the HTML refusal page naming the limit. The re-authentication
 * of an enrolled device (its flow replaces a grant of the same person,
 * which the new grant takes over: grant/policy.h) adds no device and is
 * never refused.
 */
#ifndef EB_GRANT_LIMIT_H
#define EB_GRANT_LIMIT_H

#include <stdint.h>

struct eb_policy_verdict;
struct eb_store;
struct eb_store_flow;
struct eb_tenant;

/*
 * Whether the person signing in through flow f as managed_apple_id may
 * enroll one more device at now: 0 (v untouched), 1 when at the limit (v
 * set to deny, code "device_limit"), -1 when the store failed (logged).
 */
int eb_grant_limit_check(struct eb_store *s, const struct eb_tenant *t,
                         const struct eb_store_flow *f,
                         const char *managed_apple_id, int64_t now,
                         struct eb_policy_verdict *v);

#endif
