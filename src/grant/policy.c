/*
 * The grant rules (grant/policy.h): authorization-code redemption, ending
 * a grant, enrollment binding, superseding, and renewal leases, as pure
 * functions of the rows a backend has read inside its transaction. Pure:
 * no store, no clock, no allocation, so each rule is tested by a table and
 * every backend applies the same one.
 */
#include "grant/policy.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "store/store.h"

enum eb_grant_code_decision
eb_grant_code_decide(const struct eb_grant_code_state *cd,
                     const char *client_id, const char *redirect_uri,
                     int64_t now, int *answer)
{
	if (cd == NULL || !cd->found) {
		*answer = EB_STORE_NOT_FOUND;
		return EB_GRANT_CODE_INVALID;
	}
	if (cd->used_at != 0) {
		/* RFC 6749 4.1.2: whoever presents it again, the code
		 * leaked; what it was redeemed for is revoked */
		*answer = EB_STORE_REPLAY;
		return EB_GRANT_CODE_REVOKE;
	}
	/* from here the code is used up, whatever the answer */
	if (cd->expires <= now) {
		*answer = EB_STORE_EXPIRED;
		return EB_GRANT_CODE_BURN;
	}
	if (client_id == NULL || redirect_uri == NULL ||
	    cd->client_id == NULL || cd->redirect_uri == NULL ||
	    strcmp(client_id, cd->client_id) != 0 ||
	    strcmp(redirect_uri, cd->redirect_uri) != 0) {
		*answer = EB_STORE_MISMATCH;
		return EB_GRANT_CODE_BURN;
	}
	*answer = EB_STORE_OK;
	return EB_GRANT_CODE_REDEEM;
}

enum eb_grant_end_decision
eb_grant_end_decide(int status, int want)
{
	if (status == want)
		return EB_GRANT_END_NOOP;
	if (status != EB_STORE_GRANT_ACTIVE || want == EB_STORE_GRANT_ACTIVE)
		return EB_GRANT_END_REFUSE;
	return EB_GRANT_END;
}

int
eb_grant_same_person(const char *issuer_a, const char *subject_a,
                     const char *issuer_b, const char *subject_b)
{
	if (subject_a == NULL || subject_b == NULL ||
	    strcmp(subject_a, subject_b) != 0)
		return 0;
	if (issuer_a == NULL || issuer_b == NULL)
		return issuer_a == NULL && issuer_b == NULL;
	return strcmp(issuer_a, issuer_b) == 0;
}

int
eb_grant_same_enrollment(const char *kind_a, const char *value_a,
                         const char *kind_b, const char *value_b)
{
	if (kind_a == NULL || value_a == NULL || kind_b == NULL ||
	    value_b == NULL)
		return 0;
	return strcmp(kind_a, kind_b) == 0 && strcasecmp(value_a, value_b) == 0;
}

static enum eb_grant_bind_decision
bind_answer(enum eb_grant_bind_decision d, int *rc)
{
	static const int code[] = {
	    [EB_GRANT_BIND] = EB_STORE_OK,
	    [EB_GRANT_BIND_SUPERSEDE] = EB_STORE_OK,
	    [EB_GRANT_BIND_ALREADY] = EB_STORE_OK,
	    [EB_GRANT_BIND_ELSEWHERE] = EB_STORE_CONFLICT,
	    [EB_GRANT_BIND_TAKEN] = EB_STORE_TAKEN,
	    [EB_GRANT_BIND_ENDED] = EB_STORE_REVOKED,
	    [EB_GRANT_BIND_BAD] = EB_STORE_CONFLICT,
	};

	if (rc != NULL)
		*rc = code[d];
	return d;
}

enum eb_grant_bind_decision
eb_grant_bind_decide(const struct eb_grant_bind_in *in, int *rc)
{
	if (in == NULL || in->kind == NULL || in->value == NULL)
		return bind_answer(EB_GRANT_BIND_BAD, rc);
	if (in->status != EB_STORE_GRANT_ACTIVE)
		return bind_answer(EB_GRANT_BIND_ENDED, rc);
	if (in->bvalue != NULL || in->bkind != NULL)
		/* bound once, for good: a grant never moves to another
		 * enrollment */
		return bind_answer(eb_grant_same_enrollment(in->bkind,
		                                            in->bvalue,
		                                            in->kind, in->value)
		                       ? EB_GRANT_BIND_ALREADY
		                       : EB_GRANT_BIND_ELSEWHERE,
		                   rc);
	if (!in->holder_found)
		return bind_answer(EB_GRANT_BIND, rc);
	/* one active grant per enrollment: a re-enrollment by the same
	 * person (ADDE Macs come back with the same UDID) supersedes */
	return bind_answer(in->holder_same_person ? EB_GRANT_BIND_SUPERSEDE
	                                          : EB_GRANT_BIND_TAKEN,
	                   rc);
}

void
eb_grant_supersede_decide(const struct eb_grant_supersede_in *in,
                          struct eb_grant_supersede_plan *out)
{
	memset(out, 0, sizeof(*out));
	if (in->same_id || !in->same_tenant ||
	    in->new_status != EB_STORE_GRANT_ACTIVE) {
		out->rc = EB_STORE_CONFLICT;
		return;
	}
	out->rc = EB_STORE_OK;
	out->end_old = in->old_status == EB_STORE_GRANT_ACTIVE;
	/* the old grant may have ended (revoked) and its enrollment been
	 * bound since by another grant: then the new one binds at its own
	 * first check-in, as any other grant */
	out->inherit = in->old_bound && !in->new_bound && !in->holder_found;
}

enum eb_grant_takeover_decision
eb_grant_takeover_decide(const char *old_tenant, const char *old_account,
                         const char *tenant, const char *account)
{
	if (old_tenant == NULL || tenant == NULL ||
	    strcmp(old_tenant, tenant) != 0)
		return EB_GRANT_TAKEOVER_NONE;
	if (old_account == NULL || account == NULL ||
	    strcmp(old_account, account) != 0)
		return EB_GRANT_TAKEOVER_OTHER_ACCOUNT;
	return EB_GRANT_TAKEOVER;
}

int
eb_grant_lease_claimable(const struct eb_grant_lease_state *g, int64_t now)
{
	return g->status == EB_STORE_GRANT_ACTIVE && g->upstream_next_at != 0 &&
	       g->upstream_next_at <= now &&
	       (g->expires == 0 || g->expires > now) && g->lease_until <= now;
}

int64_t
eb_grant_lease_length(int64_t upstream_timeout)
{
	if (upstream_timeout < 0)
		upstream_timeout = 0;
	return 4 * upstream_timeout + 60;
}

size_t
eb_grant_lease_slots(int concurrency, size_t inflight, size_t free_workers)
{
	size_t cap;

	if (concurrency <= 0 || inflight >= (size_t)concurrency)
		return 0;
	cap = (size_t)concurrency - inflight;
	return cap < free_workers ? cap : free_workers;
}

size_t
eb_grant_lease_claim_max(size_t limit, size_t cap, size_t live)
{
	size_t n = limit == 0 ? SIZE_MAX : limit;

	if (cap == 0)
		return n;
	if (live >= cap)
		return 0;
	return cap - live < n ? cap - live : n;
}

int
eb_grant_lease_fenced(const char *held, const char *presented)
{
	size_t n, i;
	unsigned char d = 0;

	if (held == NULL || presented == NULL || held[0] == '\0' ||
	    (n = strlen(held)) != strlen(presented))
		return 0;
	for (i = 0; i < n; i++)
		d |= (unsigned char)(held[i] ^ presented[i]);
	return d == 0;
}

int
eb_grant_lease_may_call(int64_t lease_until, int64_t now,
                        int64_t upstream_timeout)
{
	if (upstream_timeout < 0)
		upstream_timeout = 0;
	return lease_until - now >= 3 * upstream_timeout;
}

int
eb_key_rotation_free(int64_t current_activates_at, int64_t created)
{
	return current_activates_at <= created;
}

const char *
eb_grant_code_name(int decision)
{
	switch (decision) {
	case EB_GRANT_CODE_REDEEM:
		return "redeem";
	case EB_GRANT_CODE_BURN:
		return "burn";
	case EB_GRANT_CODE_REVOKE:
		return "revoke";
	case EB_GRANT_CODE_INVALID:
		return "invalid";
	}
	return "unknown";
}

const char *
eb_grant_bind_name(int decision)
{
	switch (decision) {
	case EB_GRANT_BIND:
		return "bind";
	case EB_GRANT_BIND_SUPERSEDE:
		return "supersede";
	case EB_GRANT_BIND_ALREADY:
		return "already";
	case EB_GRANT_BIND_ELSEWHERE:
		return "elsewhere";
	case EB_GRANT_BIND_TAKEN:
		return "taken";
	case EB_GRANT_BIND_ENDED:
		return "ended";
	case EB_GRANT_BIND_BAD:
		return "bad";
	}
	return "unknown";
}
