/*
 * The grant rules every storage backend applies inside its transactions
 * (DESIGN.md "Grants", "Refresh tokens, PKCE"; SCALEOUT.md 3.3), kept
 * here as pure functions so that SQLite and a second backend decide alike
 * and each rule is tested on its own by a table. A backend reads the rows
 * the rule names, under its own locks, asks the rule, and writes what the
 * answer says; it decides nothing itself.
 *
 * The rules: redeeming an authorization code (first use issues, a replay
 * revokes what the code was redeemed for, RFC 6749 4.1.2); ending a grant;
 * binding a grant to an enrollment (one active grant per enrollment, the
 * same person supersedes, another person is TAKEN); a re-authenticated
 * grant superseding the one it replaces; and the renewal lease (which
 * grants may be claimed, and for how long). The refresh-token rotation
 * rule is grant/refresh.h.
 *
 * Nothing here touches a store, a clock or the heap.
 */
#ifndef EB_GRANT_POLICY_H
#define EB_GRANT_POLICY_H

#include <stddef.h>
#include <stdint.h>

/* ---- authorization codes ---- */

enum eb_grant_code_decision {
	EB_GRANT_CODE_REDEEM = 0,  /* first use, all bound values match */
	EB_GRANT_CODE_BURN = 1,    /* first use, refused: marked used anyway */
	EB_GRANT_CODE_REVOKE = 2,  /* a replay: end the grant it was for */
	EB_GRANT_CODE_INVALID = 3, /* no such code: nothing changes */
};

/* The presented code's row as stored (borrowed strings). */
struct eb_grant_code_state {
	int found;
	int64_t used_at; /* 0: never redeemed */
	int64_t expires;
	const char *client_id, *redirect_uri;
};

/*
 * The decision for code cd presented by client_id with redirect_uri at
 * now. *answer (required) is the store code the caller returns:
 * EB_STORE_OK for REDEEM; EB_STORE_EXPIRED or EB_STORE_MISMATCH for BURN
 * (a code is single use even when refused, so a guessed redirect URI
 * cannot be retried); EB_STORE_REPLAY for REVOKE; EB_STORE_NOT_FOUND for
 * INVALID. For REVOKE the caller ends the grant with
 * eb_grant_end_decide(..., EB_STORE_GRANT_REVOKED) if it is still active.
 */
enum eb_grant_code_decision
eb_grant_code_decide(const struct eb_grant_code_state *cd,
                     const char *client_id, const char *redirect_uri,
                     int64_t now, int *answer);

/* ---- ending a grant ---- */

enum eb_grant_end_decision {
	EB_GRANT_END = 0,        /* active: end it now */
	EB_GRANT_END_NOOP = 1,   /* already in that state: nothing to do */
	EB_GRANT_END_REFUSE = 2, /* ended otherwise: CONFLICT (no revival) */
};

/*
 * Whether a grant in state status (enum eb_store_grant_status) may move
 * to want. Only an active grant ends; an ended grant never becomes
 * active again.
 */
enum eb_grant_end_decision eb_grant_end_decide(int status, int want);

/* ---- who a grant belongs to ---- */

/*
 * The same person signed in for both grants: the same IdP subject and
 * issuer (a grant without a subject is nobody's; two grants without an
 * issuer match on the subject alone, as rows written before issuers were
 * stored).
 */
int eb_grant_same_person(const char *issuer_a, const char *subject_a,
                         const char *issuer_b, const char *subject_b);

/* The same enrollment: kind exactly, value case-insensitively (UDIDs). */
int eb_grant_same_enrollment(const char *kind_a, const char *value_a,
                             const char *kind_b, const char *value_b);

/* ---- binding a grant to its enrollment (first check-in) ---- */

enum eb_grant_bind_decision {
	EB_GRANT_BIND = 0,           /* free: bind it */
	EB_GRANT_BIND_SUPERSEDE = 1, /* end the holder (same person), bind */
	EB_GRANT_BIND_ALREADY = 2,   /* bound to this one already: OK */
	EB_GRANT_BIND_ELSEWHERE = 3, /* bound to another one: CONFLICT */
	EB_GRANT_BIND_TAKEN = 4,     /* held by another person: TAKEN */
	EB_GRANT_BIND_ENDED = 5,     /* the grant is not active: REVOKED */
	EB_GRANT_BIND_BAD = 6,       /* no kind or value: CONFLICT */
};

struct eb_grant_bind_in {
	int status;                 /* the grant's */
	const char *bkind, *bvalue; /* its binding, NULL when unbound */
	const char *kind, *value;   /* the enrollment it checks in from */
	/*
	 * Another active grant of the tenant holding (kind, value), and
	 * whether its person is this grant's (eb_grant_same_person). Only
	 * read for an active, unbound grant: a backend reads the holder,
	 * under its lock, only then.
	 */
	int holder_found;
	int holder_same_person;
};

/* The decision, and in *rc (may be NULL) the store code it answers. */
enum eb_grant_bind_decision
eb_grant_bind_decide(const struct eb_grant_bind_in *in, int *rc);

/* ---- a re-authenticated grant superseding its predecessor ---- */

struct eb_grant_supersede_in {
	int same_id; /* old and new are one grant */
	int same_tenant;
	int old_status, new_status;
	int old_bound, new_bound; /* each has an enrollment binding */
	/* an active grant other than new holds old's enrollment: only read
	 * when new may inherit it (old bound, new unbound) */
	int holder_found;
};

struct eb_grant_supersede_plan {
	int rc;      /* EB_STORE_OK, or EB_STORE_CONFLICT: change nothing */
	int end_old; /* end old as superseded by new */
	int inherit; /* bind new to old's enrollment */
};

void eb_grant_supersede_decide(const struct eb_grant_supersede_in *in,
                               struct eb_grant_supersede_plan *out);

/*
 * At sign-in, before the store is asked: whether the grant a flow says it
 * replaces is taken over by the new one. Only by the same Managed Apple
 * Account in the same tenant; anyone else gets a grant of their own.
 */
enum eb_grant_takeover_decision {
	EB_GRANT_TAKEOVER = 0,
	EB_GRANT_TAKEOVER_NONE = 1,          /* nothing to take over */
	EB_GRANT_TAKEOVER_OTHER_ACCOUNT = 2, /* refused, logged */
};

enum eb_grant_takeover_decision
eb_grant_takeover_decide(const char *old_tenant, const char *old_account,
                         const char *tenant, const char *account);

/* ---- renewal leases ---- */

/* The grant's fields the claim reads. */
struct eb_grant_lease_state {
	int status;
	int64_t upstream_next_at; /* 0: never renewed */
	int64_t expires;          /* 0: never */
	int64_t lease_until;      /* a claim held until then; 0: none */
};

/*
 * A worker may claim the grant at now: active, renewable, due, not
 * expired, and no other claim still live. Backends select with the same
 * condition in SQL (an index range); the rule is checked again on every claimed
 * row.
 */
int eb_grant_lease_claimable(const struct eb_grant_lease_state *g, int64_t now);

/*
 * How long a claim holds, in seconds, for an IdP answering within
 * upstream_timeout seconds a call: metadata, token and JWKS calls and the
 * write-back, with room to spare. A claim is a postponement of
 * upstream_next_at by this much: a worker that dies lets it run out.
 */
int64_t eb_grant_lease_length(int64_t upstream_timeout);

/*
 * How many due grants of a tenant a claim may take: the tenant's
 * renew_concurrency less its renewals in flight (live leases), and no
 * more than the free workers. 0 when the tenant is at its cap (or the
 * cap is not positive): what is due waits.
 */
size_t eb_grant_lease_slots(int concurrency, size_t inflight,
                            size_t free_workers);

/*
 * How many grants one claim may take (grant_claim_due): at most limit (0:
 * no limit) and, when cap > 0, only as many as keep the tenant's live
 * leases (live, every replica's) at most cap. 0 when at or over the cap.
 */
size_t eb_grant_lease_claim_max(size_t limit, size_t cap, size_t live);

/*
 * The write-back fence: 1 when the grant still holds the claim whose
 * token the worker presents (held: the row's lease_token, NULL when
 * released), else 0: the lease ran out and another worker claimed it,
 * or it was released, and the worker's result is dropped (LOST). Compared
 * in constant time.
 */
int eb_grant_lease_fenced(const char *held, const char *presented);

/*
 * Whether a worker holding a claim until lease_until may still start an
 * IdP call at now: 1 while at least 3 x upstream_timeout of it remains
 * (room for the metadata, token and JWKS calls); otherwise the call
 * would likely outlive the lease and race the next claimer.
 */
int eb_grant_lease_may_call(int64_t lease_until, int64_t now,
                            int64_t upstream_timeout);

/* ---- signing keys ---- */

/*
 * Whether a rotation to a key created at created may retire the tenant's
 * current key, which signs from current_activates_at (0: at once): 1 when
 * that key is active by then, 0 when it is still pending (another rotation
 * is under way and its key would be retired before it ever signed: the
 * store answers CONFLICT). Of two racing rotations the second is refused
 * by this rule on a backend with one writer at a time.
 */
int eb_key_rotation_free(int64_t current_activates_at, int64_t created);

/* Names for logs and tests: "redeem", "bind", "supersede", ... */
const char *eb_grant_code_name(int decision);
const char *eb_grant_bind_name(int decision);

#endif
