/*
 * Silent renewal (DESIGN.md point 5, issue 5): a background worker that
 * renews every active grant's upstream IdP tokens before they expire, so an
 * enrolled person stays authorized for as long as their IdP says they are
 * valid, and no longer.
 *
 * One thread wakes every few seconds (sooner when kicked, or when a renewal
 * finishes while a tenant has more due), reads the CURRENT configuration,
 * and per tenant claims due grants from the store: a lease with a fence
 * token, so two workers (threads or replicas) never renew the same grant
 * and a worker whose lease ran out cannot write back; at most
 * tokens.renew_concurrency claims of a tenant are live in the whole fleet. The
 * refreshes run on the renewer's own small thread pool, never on the
 * sign-in work queue. Outcomes:
 *
 *   IdP renews            the person is re-checked (token/recheck.h):
 *                         fresh claims, mapping, access policy; when they
 *                         pass, next renewal at now + upstream_renew_interval
 *                         (+-10% jitter, to spread load); a rotated refresh
 *                         token is sealed and stored; failing_since cleared
 *   IdP says no           (invalid_grant, ...; or the refreshed ID token is
 *                         for another subject; or the re-check refuses the
 *                         person) the grant ends per on_access_lost (revoked
 *                         or retired), audit "access.lost"
 *   IdP unreachable       (also the userinfo or Graph call of the re-check)
 *                         failing_since recorded, retried soon; only when it
 *                         has failed for longer than upstream_grace is the
 *                         grant revoked (never retired)
 *   no refresh token      the grant is due at its sign-in +
 *                         tokens.max_unverified_age and then revoked
 *                         ("unverified"): the device signs in again
 *
 * Metrics: enrollbridge_renewals_total{tenant,result="ok|denied|
 * unavailable|error|unverified|lost"} (per replica) and the gauge
 * enrollbridge_upstream_failing_grants{tenant} (fleet-wide, exported by the
 * one replica holding the "stats" lease). Logs name grants by id, never a
 * token.
 */
#ifndef EB_RENEW_H
#define EB_RENEW_H

#include <stdint.h>

#include "core/config.h"

struct eb_env;
struct eb_renewer;
struct eb_store_grant;

/*
 * Start the renewer over env (its store, oidc, metrics, seal key and
 * configuration, which must outlive the renewer). Returns NULL when the
 * threads cannot be started (logged).
 */
struct eb_renewer *eb_renewer_start(struct eb_env *env);
/*
 * Stop claiming work, let the refreshes under way finish (each is bounded
 * by limits.upstream_timeout per IdP call), join every thread and free.
 * Claims not yet started are released (due again at once, for another
 * replica), and the "stats" lease is given up. eb_renewer_stop(NULL) is a
 * no-op.
 */
void eb_renewer_stop(struct eb_renewer *r);
/* Run a cycle now instead of at the next tick. */
void eb_renewer_kick(struct eb_renewer *r);

/* ---- the decision, exposed for tests ---------------------------------- */

enum eb_renewer_action {
	EB_RENEWER_RENEWED = 0, /* success: next at now + interval +- jitter */
	EB_RENEWER_RETRY =
	    1, /* failing: keep failing_since, retry at next_at */
	EB_RENEWER_REVOKE = 2, /* revoke the grant with reason */
	EB_RENEWER_LATER = 3,  /* our own failure: retry at next_at */
};

struct eb_renewer_outcome {
	int action; /* enum eb_renewer_action */
	const char
	    *result; /* the metrics label: ok, denied, unavailable, error */
	char reason[128];      /* REVOKE: the grant's revoke reason */
	int64_t next_at;       /* RENEWED, RETRY, LATER */
	int64_t failing_since; /* RENEWED: 0; RETRY: first failure */
};

/*
 * What to do after one refresh attempt at now that ended with errkind
 * (enum eb_oidc_errkind; EB_OIDC_OK for success) and error code (may be
 * NULL), for a grant failing since failing_since (0: it was healthy),
 * under the tenant's token settings tk. Fills out.
 */
void eb_renewer_decide(int errkind, const char *code, int64_t failing_since,
                       int64_t now, const struct eb_tokens_config *tk,
                       struct eb_renewer_outcome *out);
/*
 * The sub the IdP's refreshed ID tokens must carry for grant g: the raw
 * sub recorded at sign-in in g->extra ({"sub": ...}), else g->idp_subject
 * when that is the raw sub (no Entra tid/oid). *out is a fresh string
 * (eb_free) or NULL when nothing reliable is known (the check is skipped).
 * Returns 0, or -1 when out of memory.
 */
int eb_renewer_expected_sub(const struct eb_store_grant *g, char **out);

#endif
