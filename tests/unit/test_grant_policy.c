/*
 * The grant rules (grant/policy.h) by tables: authorization-code
 * redemption and replay, ending a grant, who a grant's person and
 * enrollment are, binding, superseding, take-over at sign-in, and the
 * renewal lease. Every row names the naive variant of the rule it would
 * catch, so that a backend or a refactoring that decides "almost" the same
 * fails here before it fails in production.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "grant/policy.h"
#include "store/store.h"

#define NOW 1700000000

#define A EB_STORE_GRANT_ACTIVE
#define R EB_STORE_GRANT_REVOKED
#define S EB_STORE_GRANT_SUPERSEDED
#define E EB_STORE_GRANT_EXPIRED

/* ---- authorization codes ---- */

static void
code_table(void **state)
{
	static const struct {
		const char *catches;
		int found;
		int64_t used_at, expires;
		const char *cid, *ruri;   /* stored */
		const char *pcid, *pruri; /* presented */
		int want, answer;
	} c[] = {
	    {"a valid first use refused", 1, 0, NOW + 60, "c", "https://r", "c",
	     "https://r", EB_GRANT_CODE_REDEEM, EB_STORE_OK},
	    {"a replay answered as a plain error (grant left alive)", 1,
	     NOW - 5, NOW + 60, "c", "https://r", "c", "https://r",
	     EB_GRANT_CODE_REVOKE, EB_STORE_REPLAY},
	    {"a replay by another client not revoking (check order)", 1,
	     NOW - 5, NOW + 60, "c", "https://r", "evil", "https://x",
	     EB_GRANT_CODE_REVOKE, EB_STORE_REPLAY},
	    {"an expired replay treated as merely expired", 1, NOW - 500,
	     NOW - 400, "c", "https://r", "c", "https://r",
	     EB_GRANT_CODE_REVOKE, EB_STORE_REPLAY},
	    {"expiry checked with < (the last second accepted)", 1, 0, NOW, "c",
	     "https://r", "c", "https://r", EB_GRANT_CODE_BURN,
	     EB_STORE_EXPIRED},
	    {"an expired code left unused (retry until it matches)", 1, 0,
	     NOW - 1, "c", "https://r", "c", "https://r", EB_GRANT_CODE_BURN,
	     EB_STORE_EXPIRED},
	    {"client id not compared", 1, 0, NOW + 60, "c", "https://r",
	     "other", "https://r", EB_GRANT_CODE_BURN, EB_STORE_MISMATCH},
	    {"redirect URI not compared", 1, 0, NOW + 60, "c", "https://r", "c",
	     "https://r/x", EB_GRANT_CODE_BURN, EB_STORE_MISMATCH},
	    {"redirect URI compared as a prefix", 1, 0, NOW + 60, "c",
	     "https://r/x", "c", "https://r", EB_GRANT_CODE_BURN,
	     EB_STORE_MISMATCH},
	    {"redirect URI compared case-insensitively", 1, 0, NOW + 60, "c",
	     "https://r/A", "c", "https://r/a", EB_GRANT_CODE_BURN,
	     EB_STORE_MISMATCH},
	    {"a missing client id matching anything", 1, 0, NOW + 60, "c",
	     "https://r", NULL, "https://r", EB_GRANT_CODE_BURN,
	     EB_STORE_MISMATCH},
	    {"a missing redirect URI matching anything", 1, 0, NOW + 60, "c",
	     "https://r", "c", NULL, EB_GRANT_CODE_BURN, EB_STORE_MISMATCH},
	    {"a stored row without client id matching (NULL deref or pass)", 1,
	     0, NOW + 60, NULL, "https://r", "c", "https://r",
	     EB_GRANT_CODE_BURN, EB_STORE_MISMATCH},
	    {"an unknown code changing anything", 0, 0, 0, NULL, NULL, "c",
	     "https://r", EB_GRANT_CODE_INVALID, EB_STORE_NOT_FOUND},
	};
	struct eb_grant_code_state cs;
	size_t i;
	int d, answer;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(&cs, 0, sizeof(cs));
		cs.found = c[i].found;
		cs.used_at = c[i].used_at;
		cs.expires = c[i].expires;
		cs.client_id = c[i].cid;
		cs.redirect_uri = c[i].ruri;
		answer = 12345;
		d = eb_grant_code_decide(&cs, c[i].pcid, c[i].pruri, NOW,
		                         &answer);
		if (d != c[i].want || answer != c[i].answer)
			fail_msg("catches \"%s\": got %s (%d), want %s (%d)",
			         c[i].catches, eb_grant_code_name(d), answer,
			         eb_grant_code_name(c[i].want), c[i].answer);
	}
	answer = 0;
	assert_int_equal(eb_grant_code_decide(NULL, "c", "r", NOW, &answer),
	                 EB_GRANT_CODE_INVALID);
	assert_int_equal(answer, EB_STORE_NOT_FOUND);
}

/* ---- ending a grant ---- */

static void
end_table(void **state)
{
	static const struct {
		const char *catches;
		int status, want_status, want;
	} c[] = {
	    {"an active grant that cannot be revoked", A, R, EB_GRANT_END},
	    {"superseding not ending the grant", A, S, EB_GRANT_END},
	    {"expiry not ending the grant", A, E, EB_GRANT_END},
	    {"revoking twice failing (idempotent revoke)", R, R,
	     EB_GRANT_END_NOOP},
	    {"a revoked grant relabelled superseded (audit lies)", R, S,
	     EB_GRANT_END_REFUSE},
	    {"a superseded grant revived", S, A, EB_GRANT_END_REFUSE},
	    {"a revoked grant revived", R, A, EB_GRANT_END_REFUSE},
	    {"an expired grant revoked again (audit twice)", E, R,
	     EB_GRANT_END_REFUSE},
	    {"active to active counted as an end", A, A, EB_GRANT_END_NOOP},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if ((int)eb_grant_end_decide(c[i].status, c[i].want_status) !=
		    c[i].want)
			fail_msg(
			    "catches \"%s\": got %d, want %d", c[i].catches,
			    eb_grant_end_decide(c[i].status, c[i].want_status),
			    c[i].want);
}

/* ---- person and enrollment ---- */

static void
person_table(void **state)
{
	static const struct {
		const char *catches;
		const char *ia, *sa, *ib, *sb;
		int want;
	} c[] = {
	    {"the same person not recognised", "https://idp", "u1",
	     "https://idp", "u1", 1},
	    {"subject alone compared (another IdP's u1)", "https://idp", "u1",
	     "https://other", "u1", 0},
	    {"issuer alone compared", "https://idp", "u1", "https://idp", "u2",
	     0},
	    {"subjects compared case-insensitively", "https://idp", "User",
	     "https://idp", "user", 0},
	    {"two grants without subject being one person", "https://idp", NULL,
	     "https://idp", NULL, 0},
	    {"a missing issuer matching any issuer", NULL, "u1", "https://idp",
	     "u1", 0},
	    {"old rows without issuers not matching on subject", NULL, "u1",
	     NULL, "u1", 1},
	};
	static const struct {
		const char *catches;
		const char *ka, *va, *kb, *vb;
		int want;
	} e[] = {
	    {"the same UDID not recognised", "udid", "ABC-1", "udid", "ABC-1",
	     1},
	    {"UDIDs compared case-sensitively", "udid", "abc-1", "udid",
	     "ABC-1", 1},
	    {"the kind ignored (a serial equal to a UDID)", "udid", "X1",
	     "serial", "X1", 0},
	    {"a prefix taken for the same enrollment", "udid", "ABC", "udid",
	     "ABC-1", 0},
	    {"an unbound grant equal to anything", NULL, NULL, "udid", "A", 0},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if (eb_grant_same_person(c[i].ia, c[i].sa, c[i].ib, c[i].sb) !=
		    c[i].want)
			fail_msg("catches \"%s\"", c[i].catches);
	for (i = 0; i < sizeof(e) / sizeof(e[0]); i++)
		if (eb_grant_same_enrollment(e[i].ka, e[i].va, e[i].kb,
		                             e[i].vb) != e[i].want)
			fail_msg("catches \"%s\"", e[i].catches);
}

/* ---- binding ---- */

static void
bind_table(void **state)
{
	static const struct {
		const char *catches;
		int status;
		const char *bkind, *bvalue, *kind, *value;
		int holder, same, want, rc;
	} c[] = {
	    {"a free enrollment not bound", A, NULL, NULL, "udid", "U1", 0, 0,
	     EB_GRANT_BIND, EB_STORE_OK},
	    {"a second device taking another person's enrollment", A, NULL,
	     NULL, "udid", "U1", 1, 0, EB_GRANT_BIND_TAKEN, EB_STORE_TAKEN},
	    {"a re-enrollment by the same person refused (ADDE Macs)", A, NULL,
	     NULL, "udid", "U1", 1, 1, EB_GRANT_BIND_SUPERSEDE, EB_STORE_OK},
	    {"a bound grant re-checking in refused", A, "udid", "U1", "udid",
	     "u1", 0, 0, EB_GRANT_BIND_ALREADY, EB_STORE_OK},
	    {"a bound grant moving to another device (stolen token)", A, "udid",
	     "U1", "udid", "U2", 0, 0, EB_GRANT_BIND_ELSEWHERE,
	     EB_STORE_CONFLICT},
	    {"a bound grant re-bound when the holder check says free", A,
	     "udid", "U1", "serial", "U1", 0, 0, EB_GRANT_BIND_ELSEWHERE,
	     EB_STORE_CONFLICT},
	    {"a bound grant superseding another (holder read when bound)", A,
	     "udid", "U1", "udid", "U2", 1, 1, EB_GRANT_BIND_ELSEWHERE,
	     EB_STORE_CONFLICT},
	    {"a revoked grant bound", R, NULL, NULL, "udid", "U1", 0, 0,
	     EB_GRANT_BIND_ENDED, EB_STORE_REVOKED},
	    {"a superseded grant superseding its successor", S, NULL, NULL,
	     "udid", "U1", 1, 1, EB_GRANT_BIND_ENDED, EB_STORE_REVOKED},
	    {"an ended grant answering OK for its old binding", R, "udid", "U1",
	     "udid", "U1", 0, 0, EB_GRANT_BIND_ENDED, EB_STORE_REVOKED},
	    {"a check-in without an enrollment id binding NULL", A, NULL, NULL,
	     "udid", NULL, 0, 0, EB_GRANT_BIND_BAD, EB_STORE_CONFLICT},
	    {"a check-in without a kind binding", A, NULL, NULL, NULL, "U1", 0,
	     0, EB_GRANT_BIND_BAD, EB_STORE_CONFLICT},
	};
	struct eb_grant_bind_in in;
	size_t i;
	int d, rc;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(&in, 0, sizeof(in));
		in.status = c[i].status;
		in.bkind = c[i].bkind;
		in.bvalue = c[i].bvalue;
		in.kind = c[i].kind;
		in.value = c[i].value;
		in.holder_found = c[i].holder;
		in.holder_same_person = c[i].same;
		rc = 12345;
		d = eb_grant_bind_decide(&in, &rc);
		if (d != c[i].want || rc != c[i].rc)
			fail_msg("catches \"%s\": got %s (%d), want %s (%d)",
			         c[i].catches, eb_grant_bind_name(d), rc,
			         eb_grant_bind_name(c[i].want), c[i].rc);
	}
	assert_int_equal(eb_grant_bind_decide(NULL, NULL), EB_GRANT_BIND_BAD);
}

/* ---- superseding ---- */

static void
supersede_table(void **state)
{
	static const struct {
		const char *catches;
		int same_id, same_tenant, os, ns, ob, nb, holder;
		int rc, end_old, inherit;
	} c[] = {
	    {"the old grant not ended, or its binding not inherited", 0, 1, A,
	     A, 1, 0, 0, EB_STORE_OK, 1, 1},
	    {"an unbound old grant giving a NULL binding", 0, 1, A, A, 0, 0, 0,
	     EB_STORE_OK, 1, 0},
	    {"a new grant already bound re-bound", 0, 1, A, A, 1, 1, 0,
	     EB_STORE_OK, 1, 0},
	    {"a revoked old grant ended again (audit twice)", 0, 1, R, A, 1, 0,
	     0, EB_STORE_OK, 0, 1},
	    {"a binding inherited that another grant holds since", 0, 1, R, A,
	     1, 0, 1, EB_STORE_OK, 0, 0},
	    {"a grant superseding itself", 1, 1, A, A, 1, 0, 0,
	     EB_STORE_CONFLICT, 0, 0},
	    {"a grant of another tenant taking over", 0, 0, A, A, 1, 0, 0,
	     EB_STORE_CONFLICT, 0, 0},
	    {"a revoked new grant (revoke raced) ending the old one", 0, 1, A,
	     R, 1, 0, 0, EB_STORE_CONFLICT, 0, 0},
	    {"a superseded new grant inheriting", 0, 1, A, S, 1, 0, 0,
	     EB_STORE_CONFLICT, 0, 0},
	};
	struct eb_grant_supersede_in in;
	struct eb_grant_supersede_plan p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(&in, 0, sizeof(in));
		in.same_id = c[i].same_id;
		in.same_tenant = c[i].same_tenant;
		in.old_status = c[i].os;
		in.new_status = c[i].ns;
		in.old_bound = c[i].ob;
		in.new_bound = c[i].nb;
		in.holder_found = c[i].holder;
		memset(&p, 0x55, sizeof(p));
		eb_grant_supersede_decide(&in, &p);
		if (p.rc != c[i].rc || p.end_old != c[i].end_old ||
		    p.inherit != c[i].inherit)
			fail_msg("catches \"%s\": got rc %d end %d inherit %d",
			         c[i].catches, p.rc, p.end_old, p.inherit);
	}
}

/* ---- take-over at sign-in ---- */

static void
takeover_table(void **state)
{
	static const struct {
		const char *catches;
		const char *ot, *oa, *t, *a;
		int want;
	} c[] = {
	    {"a re-authentication not taking over", "t1", "a@x", "t1", "a@x",
	     EB_GRANT_TAKEOVER},
	    {"another account taking over a device", "t1", "a@x", "t1", "b@x",
	     EB_GRANT_TAKEOVER_OTHER_ACCOUNT},
	    {"accounts compared case-insensitively", "t1", "A@x", "t1", "a@x",
	     EB_GRANT_TAKEOVER_OTHER_ACCOUNT},
	    {"an old grant without account taken over by anyone", "t1", NULL,
	     "t1", "a@x", EB_GRANT_TAKEOVER_OTHER_ACCOUNT},
	    {"another tenant's grant taken over", "t2", "a@x", "t1", "a@x",
	     EB_GRANT_TAKEOVER_NONE},
	    {"a grant without tenant taken over", NULL, "a@x", "t1", "a@x",
	     EB_GRANT_TAKEOVER_NONE},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if ((int)eb_grant_takeover_decide(c[i].ot, c[i].oa, c[i].t,
		                                  c[i].a) != c[i].want)
			fail_msg("catches \"%s\"", c[i].catches);
}

/* ---- renewal leases ---- */

static void
lease_table(void **state)
{
	static const struct {
		const char *catches;
		int status;
		int64_t next_at, expires;
		int want;
		int64_t lease_until;
	} c[] = {
	    {"a due grant not claimed", A, NOW - 1, 0, 1, 0},
	    {"due compared with < (the due second skipped)", A, NOW, 0, 1, 0},
	    {"a grant claimed before it is due (or while leased)", A, NOW + 1,
	     0, 0, 0},
	    {"a grant without upstream refresh token claimed (next_at 0)", A, 0,
	     0, 0, 0},
	    {"a revoked grant renewed (IdP called for nobody)", R, NOW - 1, 0,
	     0, 0},
	    {"a superseded grant renewed", S, NOW - 1, 0, 0, 0},
	    {"an expired grant renewed", A, NOW - 1, NOW, 0, 0},
	    {"a grant expiring later not renewed", A, NOW - 1, NOW + 1, 1, 0},
	    {"a grant claimed while another claim is live (two IdP calls)", A,
	     NOW - 1, 0, 0, NOW + 1},
	    {"a lease ending now taken as still live", A, NOW - 1, 0, 1, NOW},
	    {"an expired lease blocking the grant for ever", A, NOW - 1, 0, 1,
	     NOW - 100},
	};
	struct eb_grant_lease_state ls;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		ls.status = c[i].status;
		ls.upstream_next_at = c[i].next_at;
		ls.expires = c[i].expires;
		ls.lease_until = c[i].lease_until;
		if (eb_grant_lease_claimable(&ls, NOW) != c[i].want)
			fail_msg("catches \"%s\"", c[i].catches);
	}
	/* how many a tenant may claim */
	{
		static const struct {
			const char *catches;
			int conc;
			size_t inflight, free, want;
		} sl[] = {
		    {"the cap ignored (all free workers to one tenant)", 2, 0,
		     8, 2},
		    {"renewals in flight not counted against the cap", 4, 3, 8,
		     1},
		    {"a tenant at its cap claiming more", 4, 4, 8, 0},
		    {"over the cap (config reloaded lower) wrapping around", 2,
		     5, 8, 0},
		    {"more claimed than there are free workers", 16, 0, 3, 3},
		    {"no free worker, still claiming", 4, 0, 0, 0},
		    {"a zero cap meaning unlimited", 0, 0, 8, 0},
		    {"a negative cap cast to a huge unsigned", -1, 0, 8, 0},
		};

		for (i = 0; i < sizeof(sl) / sizeof(sl[0]); i++)
			if (eb_grant_lease_slots(sl[i].conc, sl[i].inflight,
			                         sl[i].free) != sl[i].want)
				fail_msg("catches \"%s\": got %zu",
				         sl[i].catches,
				         eb_grant_lease_slots(sl[i].conc,
				                              sl[i].inflight,
				                              sl[i].free));
	}
	/* a lease shorter than one refresh (metadata, token, JWKS calls
	 * and the write-back) lets a second worker claim it mid-flight */
	assert_int_equal(eb_grant_lease_length(10), 100);
	assert_true(eb_grant_lease_length(30) > 3 * 30);
	assert_int_equal(eb_grant_lease_length(-5), 60);
}

/* How many one claim may take, fleet-wide cap included. */
static void
lease_claim_table(void **state)
{
	static const struct {
		const char *catches;
		size_t limit, cap, live, want;
	} c[] = {
	    {"the batch limit ignored", 8, 0, 0, 8},
	    {"a zero limit meaning none", 0, 0, 0, SIZE_MAX},
	    {"other replicas' live leases not counted against the cap", 8, 3, 2,
	     1},
	    {"a tenant at its fleet-wide cap claiming more", 8, 3, 3, 0},
	    {"over the cap (lowered by a reload) wrapping around", 8, 3, 7, 0},
	    {"the cap taken instead of the smaller batch", 2, 5, 0, 2},
	    {"a cap with no limit claiming everything due", 0, 4, 1, 3},
	};
	size_t i, got;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if ((got = eb_grant_lease_claim_max(c[i].limit, c[i].cap,
		                                    c[i].live)) != c[i].want)
			fail_msg("catches \"%s\": got %zu", c[i].catches, got);
}

/* The write-back fence and the time left for an IdP call. */
static void
lease_fence_table(void **state)
{
	static const struct {
		const char *catches;
		const char *held, *presented;
		int want;
	} f[] = {
	    {"the claim's own write-back refused", "a1b2", "a1b2", 1},
	    {"a write-back after another owner's claim accepted (old refresh "
	     "token overwrites the rotated one)",
	     "c3d4", "a1b2", 0},
	    {"a write-back after a release accepted", NULL, "a1b2", 0},
	    {"an unfenced (NULL) token taken as a match", "a1b2", NULL, 0},
	    {"a prefix taken as a match", "a1b2", "a1", 0},
	    {"empty tokens taken as a match", "", "", 0},
	};
	static const struct {
		const char *catches;
		int64_t until, timeout;
		int want;
	} m[] = {
	    {"a call started with the lease nearly over", NOW + 10, 10, 0},
	    {"exactly 3 x timeout left refused", NOW + 30, 10, 1},
	    {"a fresh lease refused", NOW + 100, 10, 1},
	    {"an expired lease still used", NOW - 1, 0, 0},
	    {"a negative timeout making any lease enough", NOW - 1, -5, 0},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (eb_grant_lease_fenced(f[i].held, f[i].presented) !=
		    f[i].want)
			fail_msg("catches \"%s\"", f[i].catches);
	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (eb_grant_lease_may_call(m[i].until, NOW, m[i].timeout) !=
		    m[i].want)
			fail_msg("catches \"%s\"", m[i].catches);
}

/* A rotation while the current key is still pending. */
static void
key_rotation_table(void **state)
{
	static const struct {
		const char *catches;
		int64_t activates_at, created;
		int want;
	} k[] = {
	    {"a key active at once (0) never rotated", 0, NOW, 1},
	    {"a key active since before refused", NOW - 60, NOW, 1},
	    {"a key activating at that very second refused", NOW, NOW, 1},
	    {"the second of two racing rotations retiring a key that never "
	     "signed",
	     NOW + 1, NOW, 0},
	    {"a rotation pending for a day overtaken", NOW + 86400, NOW, 0},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(k) / sizeof(k[0]); i++)
		if (eb_key_rotation_free(k[i].activates_at, k[i].created) !=
		    k[i].want)
			fail_msg("catches \"%s\"", k[i].catches);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(code_table),
	    cmocka_unit_test(end_table),
	    cmocka_unit_test(person_table),
	    cmocka_unit_test(bind_table),
	    cmocka_unit_test(supersede_table),
	    cmocka_unit_test(takeover_table),
	    cmocka_unit_test(lease_table),
	    cmocka_unit_test(lease_claim_table),
	    cmocka_unit_test(lease_fence_table),
	    cmocka_unit_test(key_rotation_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
