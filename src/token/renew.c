/*
 * The silent-renewal worker (see renew.h): one scheduling thread, a small
 * pool of its own for the blocking IdP calls, per-tenant in-flight counts,
 * and the decision taken after each refresh.
 *
 * Scheduling: each tick the thread takes a reference on the current
 * configuration and walks its tenants (starting one further each time, so
 * no tenant is always last), claiming from the store, as this replica
 * (eb_config_replica_id), at most
 *   min(renew_concurrency - in flight here for the tenant, free threads)
 * due grants, and no more than keep the tenant's live claims of the whole
 * fleet at renew_concurrency (the store counts them: the cap is
 * fleet-wide). Each claim is a lease of limits.renew_lease seconds with a
 * fence token: the outcome is written back only while the claim is still
 * ours (else LOST: counted as result="lost", logged, dropped), and an IdP
 * call is not started when less than 3 x upstream_timeout of the lease is
 * left. Nothing waits in the pool's queue, so a lease never runs out while
 * a grant waits its turn. When a tenant had more due than it could claim,
 * every finished renewal wakes the thread again, so a backlog drains at
 * the concurrency limit rather than one batch per tick. On stop, claims
 * not started are released (due again at once, for another replica).
 *
 * The failing-grants gauge is a fleet fact: the replica holding the named
 * lease "stats" counts it from the store every STATS_EVERY seconds (and at
 * the next cycle after one of its renewals changed a grant's failing
 * state), and only that replica exports it.
 */
#include "token/renew.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/env.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/rand.h"
#include "core/workq.h"
#include "grant/policy.h"
#include "jose/seal.h"
#include "oidc/oidc.h"
#include "store/store.h"
#include "token/recheck.h"

#define RENEW_THREADS 8   /* the pool: refreshes in flight, all tenants */
#define TICK_MAX      5   /* seconds between cycles at most */
#define RETRY_MAX     300 /* seconds between attempts while failing */
#define STATS_EVERY   60  /* seconds between recounts of the gauge */
#define STATS_TTL     120 /* the "stats" lease outlives two recounts */
#define STATS_LOCK    "stats"
#define EXTRA_MAX     65536

#define M_RENEWALS "enrollbridge_renewals_total"
#define M_FAILING  "enrollbridge_upstream_failing_grants"

/* What the renewer remembers about one tenant (by id, across reloads). */
struct tstate {
	char *id;
	unsigned inflight;
	int backlog; /* the last claim was cut short by the limits */
};

struct eb_renewer {
	struct eb_env *env;
	struct eb_workq *pool;
	pthread_t thread;
	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cv;
	int stopping, kicked;
	struct tstate **ts;
	size_t nts;
	unsigned inflight; /* all tenants */
	int starved;       /* a tenant found the pool full this cycle */
	size_t rotate;
	int64_t stats_at; /* last recount of the gauge; 0: never */
	int stats_dirty;  /* a renewal changed a grant's failing state */
	char *owner;      /* this replica in claims and leases */
};

struct job {
	struct eb_renewer *r;
	struct eb_config *cfg; /* reference: keeps t alive */
	const struct eb_tenant *t;
	struct tstate *ts;
	struct eb_store_grant g;
};

/* ---- the decision ------------------------------------------------------ */

/* base +- 10%, at least 1 second. */
static int64_t
jitter(int64_t base)
{
	int64_t spread = base / 10, d = 0;
	uint32_t rnd;

	if (spread > 0 && eb_rand_bytes(&rnd, sizeof(rnd)) == 0)
		d = (int64_t)(rnd % (uint32_t)(2 * spread + 1)) - spread;
	return base + d < 1 ? 1 : base + d;
}

void
eb_renewer_decide(int errkind, const char *code, int64_t failing_since,
                  int64_t now, const struct eb_tokens_config *tk,
                  struct eb_renewer_outcome *out)
{
	int64_t since, retry, deadline;

	memset(out, 0, sizeof(*out));
	if (code == NULL || code[0] == '\0')
		code = eb_oidc_errkind_name((enum eb_oidc_errkind)errkind);
	retry = jitter(tk->upstream_renew_interval < RETRY_MAX
	                   ? tk->upstream_renew_interval
	                   : RETRY_MAX);
	switch (errkind) {
	case EB_OIDC_OK:
		out->action = EB_RENEWER_RENEWED;
		out->result = "ok";
		out->next_at = now + jitter(tk->upstream_renew_interval);
		return;
	case EB_OIDC_E_DENIED:
		/* the IdP says the person is no longer valid */
		out->action = EB_RENEWER_REVOKE;
		out->result = "denied";
		snprintf(out->reason, sizeof(out->reason), "upstream: %.64s",
		         code);
		return;
	case EB_OIDC_E_POLICY:
		/* the re-check: the person no longer passes access */
		out->action = EB_RENEWER_REVOKE;
		out->result = "denied";
		snprintf(out->reason, sizeof(out->reason), "access lost: %.64s",
		         code);
		return;
	case EB_OIDC_E_TOKEN:
		if (strcmp(code, "sub_mismatch") == 0) {
			out->action = EB_RENEWER_REVOKE;
			out->result = "denied";
			snprintf(out->reason, sizeof(out->reason),
			         "upstream: refreshed ID token is for another "
			         "subject");
			return;
		}
		/* FALLTHROUGH */
	case EB_OIDC_E_UNAVAILABLE:
	case EB_OIDC_E_PROTOCOL:
		/*
		 * No usable answer: the person cannot be checked. Tolerated
		 * for upstream_grace, then we fail closed. A misconfigured
		 * client (invalid_client) counts too: sign-ins break at
		 * once, so an admin notices long before the grace ends.
		 */
		out->result =
		    errkind == EB_OIDC_E_UNAVAILABLE ? "unavailable" : "error";
		since = failing_since != 0 && failing_since <= now
		            ? failing_since
		            : now;
		if (now - since > tk->upstream_grace) {
			out->action = EB_RENEWER_REVOKE;
			if (errkind == EB_OIDC_E_UNAVAILABLE)
				snprintf(out->reason, sizeof(out->reason),
				         "upstream unreachable for longer than "
				         "grace");
			else
				snprintf(out->reason, sizeof(out->reason),
				         "upstream failing (%.64s) for longer "
				         "than grace",
				         code);
			return;
		}
		out->action = EB_RENEWER_RETRY;
		out->failing_since = since;
		/* decide again as soon as the grace is over */
		deadline = since + tk->upstream_grace + 1;
		out->next_at = now + retry < deadline ? now + retry : deadline;
		return;
	default:
		/* our own trouble (memory...): nothing to hold against anyone
		 */
		out->action = EB_RENEWER_LATER;
		out->result = "error";
		out->failing_since = failing_since;
		out->next_at = now + retry;
		return;
	}
}

int
eb_renewer_expected_sub(const struct eb_store_grant *g, char **out)
{
	const char *sub = NULL;
	json_error_t jerr;
	json_t *extra = NULL;

	*out = NULL;
	if (g->extra != NULL && strlen(g->extra) <= EXTRA_MAX &&
	    (extra = json_loads(g->extra, JSON_REJECT_DUPLICATES, &jerr)) !=
	        NULL)
		sub = json_string_value(json_object_get(extra, "sub"));
	/* without tid/oid the identity's subject is the ID token's sub
	 * (providers/entra.c makes "tid:oid" otherwise) */
	if (sub == NULL && g->idp_tid == NULL && g->idp_oid == NULL)
		sub = g->idp_subject;
	if (sub != NULL && sub[0] != '\0' && (*out = eb_strdup(sub)) == NULL) {
		json_decref(extra);
		return -1;
	}
	json_decref(extra);
	return 0;
}

/* ---- bookkeeping ------------------------------------------------------- */

static void
count(struct eb_renewer *r, const char *tenant, const char *result)
{
	char labels[160];

	snprintf(labels, sizeof(labels), "tenant=\"%s\",result=\"%s\"", tenant,
	         result);
	eb_metrics_add(r->env->metrics, M_RENEWALS, labels, 1);
}

/* The state of tenant id, created on first sight; r->lock held. */
static struct tstate *
tstate_locked(struct eb_renewer *r, const char *id)
{
	struct tstate **v, *ts;
	size_t i;

	for (i = 0; i < r->nts; i++)
		if (strcmp(r->ts[i]->id, id) == 0)
			return r->ts[i];
	if ((ts = eb_calloc(1, sizeof(*ts))) == NULL ||
	    (ts->id = eb_strdup(id)) == NULL ||
	    (v = eb_realloc(r->ts, (r->nts + 1) * sizeof(*v))) == NULL) {
		if (ts != NULL)
			eb_free(ts->id);
		eb_free(ts);
		return NULL;
	}
	r->ts = v;
	r->ts[r->nts++] = ts;
	return ts;
}

/*
 * The failing-grants gauge, when this replica holds the "stats" lease:
 * every tenant's active grants with a failing IdP, counted in the store.
 */
static void
stats(struct eb_renewer *r, const struct eb_config *cfg, int64_t now)
{
	char labels[96];
	int64_t n;
	size_t i;

	if (eb_store_lock_try(r->env->store, STATS_LOCK, r->owner, STATS_TTL,
	                      now) != EB_STORE_OK)
		return; /* another replica exports it */
	for (i = 0; i < cfg->ntenants; i++) {
		const char *id = cfg->tenants[i]->id;

		if (eb_store_grant_count(r->env->store, id,
		                         EB_STORE_GRANT_ACTIVE, 1,
		                         &n) != EB_STORE_OK)
			continue;
		snprintf(labels, sizeof(labels), "tenant=\"%s\"", id);
		eb_metrics_set(r->env->metrics, M_FAILING, labels, (double)n);
	}
}

/* ---- one renewal (a pool thread) --------------------------------------- */

enum held { HELD_ENDED = 0, HELD = 1, HELD_LOST = 2, HELD_ERROR = -1 };

/*
 * Whether claim g is still ours and the grant active: an admin may have
 * revoked or a new sign-in superseded it meanwhile, and a claim whose
 * lease ran out may have gone to another worker (whose result counts).
 */
static enum held
still_held(struct eb_renewer *r, const struct eb_store_grant *g)
{
	struct eb_store_grant cur;
	enum held h;
	int rc;

	memset(&cur, 0, sizeof(cur));
	if ((rc = eb_store_grant_get(r->env->store, g->id, &cur)) !=
	    EB_STORE_OK)
		return rc == EB_STORE_NOT_FOUND ? HELD_ENDED : HELD_ERROR;
	if (cur.status != EB_STORE_GRANT_ACTIVE)
		h = HELD_ENDED;
	else if (!eb_grant_lease_fenced(cur.lease_token, g->lease_token))
		h = HELD_LOST;
	else
		h = HELD;
	eb_store_grant_finish(&cur);
	return h;
}

/* A claim lost to another worker: the result is dropped (warn, counted). */
static void
lost(struct eb_renewer *r, const struct eb_tenant *t, const char *id)
{
	log_ev(EB_LOG_WARN, EB_EVT(t->id, "renewal.lost", "lease_lost", id),
	       "renewal lease lost (ran out and taken over, or released); "
	       "result dropped");
	count(r, t->id, "lost");
}

/* Write back outcome u of claim g: 0, or -1 (logged; LOST counted). */
static int
write_back(struct eb_renewer *r, const struct eb_tenant *t,
           const struct eb_store_grant *g, struct eb_store_upstream *u,
           int64_t now)
{
	int rc;

	u->lease_token = g->lease_token;
	rc = eb_store_grant_set_upstream(r->env->store, g->id, u, now);
	if (rc == EB_STORE_LOST)
		lost(r, t, g->id);
	else if (rc != EB_STORE_OK)
		log_ev(EB_LOG_WARN,
		       EB_EVT(t->id, "renewal.unrecorded", "store", g->id),
		       "renewal outcome not recorded (%s)",
		       eb_store_strerror(rc));
	return rc == EB_STORE_OK ? 0 : -1;
}

/*
 * End grant g after a renewal outcome o of REVOKE. A person the IdP says is
 * gone ("denied": invalid_grant, another subject) loses it per the tenant's
 * on_access_lost: retired (their device unenrolls) or revoked (it signs in
 * again). An IdP that cannot be checked past the grace only ever revokes:
 * an outage must not unenroll every device. A store result.
 */
static int
end_grant(struct eb_env *env, const struct eb_tenant *t,
          const struct eb_store_grant *g, const struct eb_renewer_outcome *o,
          const char *code, const char *detail, int64_t now)
{
	int denied = strcmp(o->result, "denied") == 0, rc;
	int retire = t->on_access_lost == EB_ON_ACCESS_LOST_UNENROLL && denied;
	char pd[EB_LOG_PD_LEN];

	log_ev(EB_LOG_WARN,
	       EB_EVT(t->id, retire ? "grant.retired" : "grant.revoked",
	              o->reason, g->id),
	       "grant of %s %s: %s (%s)", eb_log_pd(g->managed_apple_id, pd),
	       retire ? "retired (the device unenrolls)" : "revoked", o->reason,
	       detail[0] ? detail : "-");
	if (retire)
		rc = eb_store_grant_retire(env->store, g->id, o->reason, now);
	else
		rc = eb_store_grant_set_status(
		    env->store, g->id, EB_STORE_GRANT_REVOKED, o->reason, now);
	/* why the person lost access, for the audit trail */
	if (rc == EB_STORE_OK && denied)
		eb_recheck_audit(env->store, t, g, code[0] ? code : o->result,
		                 detail[0] ? detail : o->reason,
		                 retire ? "retire" : "revoke", now);
	return rc;
}

/*
 * A grant the IdP gave no refresh token: nothing to renew with, so it is
 * re-verified by a sign-in once max_unverified_age has passed since the
 * last one (its device gets 401 and the challenge). Returns as renew().
 */
static int
unverified(struct eb_renewer *r, const struct eb_tenant *t,
           const struct eb_store_grant *g, int64_t now)
{
	struct eb_renewer_outcome o;
	struct eb_store_upstream u;
	int64_t due = g->upstream_renewed_at + t->tokens.max_unverified_age;
	int was_failing = g->upstream_failing_since != 0;

	memset(&u, 0, sizeof(u));
	if (now < due) {
		/* not yet (the setting grew, or claimed early) */
		u.next_at = due;
		return write_back(r, t, g, &u, now) == 0 && was_failing;
	}
	switch (still_held(r, g)) {
	case HELD_LOST:
		lost(r, t, g->id);
		return 0;
	case HELD:
		break;
	default:
		return 0;
	}
	memset(&o, 0, sizeof(o));
	o.action = EB_RENEWER_REVOKE;
	o.result = "unverified";
	snprintf(o.reason, sizeof(o.reason),
	         "unverified: no upstream refresh token and signed in more "
	         "than max_unverified_age ago");
	count(r, t->id, o.result);
	return end_grant(r->env, t, g, &o, "", "", now) == EB_STORE_OK &&
	       was_failing;
}

/*
 * Refresh grant g with its upstream refresh token rt and re-check the
 * person with what comes back: tok filled on a successful refresh (its
 * rotated refresh token must be kept even when the re-check fails), the
 * outcome decided into o; code and detail say why for the log and the
 * audit trail.
 */
static void
refresh_and_check(struct eb_renewer *r, const struct eb_tenant *t,
                  const struct eb_store_grant *g, const char *rt,
                  const char *sub, struct eb_oidc_tokens *tok,
                  struct eb_renewer_outcome *o, char *code, size_t codelen,
                  char *detail, size_t detlen)
{
	struct eb_policy_verdict v;
	struct eb_oidc_error err;
	json_t *claims = NULL;
	int kind = EB_OIDC_OK;
	int64_t now;

	memset(&err, 0, sizeof(err));
	if (eb_oidc_refresh_claims(r->env->oidc, t, rt, sub, tok, &claims,
	                           &err) != 0)
		kind = (int)err.kind;
	else if (tok->access_token != NULL) {
		switch (eb_recheck(r->env, t, g, tok, claims, sub, &v, &err)) {
		case EB_RECHECK_DENIED:
			kind = EB_OIDC_E_POLICY;
			snprintf(err.code, sizeof(err.code), "%s", v.code);
			snprintf(err.reason, sizeof(err.reason), "%s",
			         v.reason);
			log_ev(EB_LOG_INFO,
			       EB_EVT(t->id, "renewal.denied", v.code, g->id),
			       "the person no longer passes access: %s (%s)",
			       v.code, v.reason);
			break;
		case EB_RECHECK_FAILED:
			kind = (int)err.kind;
			break;
		default:
			break;
		}
	}
	json_decref(claims);
	now = eb_now(r->env);
	eb_renewer_decide(kind, err.code, g->upstream_failing_since, now,
	                  &t->tokens, o);
	snprintf(code, codelen, "%s", err.code);
	snprintf(detail, detlen, "%s", err.reason);
}

/*
 * Renew claimed grant g of tenant t. Returns 1 when the grant's failing
 * state changed (the gauge is recounted), else 0.
 */
static int
renew(struct eb_renewer *r, const struct eb_config *cfg,
      const struct eb_tenant *t, const struct eb_store_grant *g)
{
	struct eb_env *env = r->env;
	struct eb_store_upstream u;
	struct eb_renewer_outcome o;
	struct eb_oidc_tokens tok;
	uint8_t *rt = NULL, *sealed = NULL;
	size_t rt_len = 0, sealed_len = 0;
	const char *keep;
	char *sub = NULL, fp[13], code[64] = "", detail[256] = "";
	int rotated = 0;
	int64_t now = eb_now(r->env);
	int was_failing = g->upstream_failing_since != 0, changed = 0;
	int stale = 0;

	memset(&u, 0, sizeof(u));
	memset(&tok, 0, sizeof(tok));
	if (g->upstream_refresh_token == NULL)
		return unverified(r, t, g, now);
	if (!eb_grant_lease_may_call(g->lease_until, now,
	                             cfg->limits.upstream_timeout)) {
		/* it waited too long: the call could outlive the lease */
		log_ev(EB_LOG_INFO,
		       EB_EVT(t->id, "renewal.deferred", "lease_short", g->id),
		       "too little of its renewal lease left to call the IdP; "
		       "handed back");
		eb_store_grant_release(env->store, g->id, g->lease_token, now);
		return 0;
	}
	if (eb_seal_ring_open(env->seal_ring, EB_SEAL_AT_REST, g->id,
	                      strlen(g->id), g->upstream_refresh_token,
	                      g->upstream_refresh_token_len, &rt, &rt_len,
	                      &stale) != 0 ||
	    eb_renewer_expected_sub(g, &sub) != 0) {
		log_ev(EB_LOG_WARN,
		       EB_EVT(t->id, "renewal.failed", "unsealed", g->id),
		       "the sealed upstream refresh token does not open under "
		       "any seal key (seal_keys changed?) or no memory");
		eb_renewer_decide(EB_OIDC_E_INTERNAL, "unsealed",
		                  g->upstream_failing_since, now, &t->tokens,
		                  &o);
		goto record;
	}
	refresh_and_check(r, t, g, (const char *)rt, sub, &tok, &o, code,
	                  sizeof(code), detail, sizeof(detail));
	now = eb_now(r->env);
	/* store the token the IdP rotated to, or the same one when it opened
	 * in an older form (version, key): it moves to the current one; also
	 * when the re-check could not be made (the old one may be dead) */
	rotated = tok.refresh_token != NULL &&
	          strcmp(tok.refresh_token, (const char *)rt) != 0;
	keep = rotated ? tok.refresh_token : (const char *)rt;
	if (tok.access_token != NULL && o.action != EB_RENEWER_REVOKE &&
	    (rotated || stale) &&
	    eb_seal_ring_seal(env->seal_ring, EB_SEAL_AT_REST, g->id,
	                      strlen(g->id), keep, strlen(keep), &sealed,
	                      &sealed_len) != 0) {
		/* the old one may be dead now: try again soon */
		log_ev(EB_LOG_WARN,
		       EB_EVT(t->id, "renewal.failed", "seal", g->id),
		       "cannot seal the rotated upstream refresh token");
		eb_renewer_decide(EB_OIDC_E_INTERNAL, "seal",
		                  g->upstream_failing_since, now, &t->tokens,
		                  &o);
	}
record:
	switch (still_held(r, g)) {
	case HELD_ENDED:
		log_debug("tenant %s: grant %s ended during its renewal", t->id,
		          g->id);
		changed = was_failing;
		goto out;
	case HELD_LOST:
		/* never act on it: the IdP may have answered another worker's
		 * rotated token, and our old one now looks revoked */
		lost(r, t, g->id);
		goto out;
	case HELD_ERROR:
		/* its lease runs out and it is tried again */
		goto out;
	case HELD:
		break;
	}
	count(r, t->id, o.result);
	switch (o.action) {
	case EB_RENEWER_REVOKE:
		if (end_grant(env, t, g, &o, code, detail, now) == EB_STORE_OK)
			changed = was_failing;
		goto out;
	case EB_RENEWER_RENEWED:
		u.renewed_at = now;
		if (sealed != NULL && !rotated)
			log_ev(EB_LOG_INFO,
			       EB_EVT(t->id, "renewal.resealed", NULL, g->id),
			       "upstream refresh token re-sealed under the "
			       "first seal key");
		if (sealed != NULL && rotated) {
			eb_log_fp(tok.refresh_token, strlen(tok.refresh_token),
			          fp);
			log_debug(
			    "tenant %s: grant %s: IdP rotated its refresh "
			    "token (now %s)",
			    t->id, g->id, fp);
		}
		if (was_failing) {
			log_ev(EB_LOG_INFO,
			       EB_EVT(t->id, "renewal.ok", "recovered", g->id),
			       "renewed; the IdP answers again");
			changed = 1;
		} else
			log_ev(EB_LOG_DEBUG,
			       EB_EVT(t->id, "renewal.ok", NULL, g->id),
			       "renewed");
		break;
	case EB_RENEWER_RETRY:
		/* loud once per grant; the gauge shows how many are failing */
		eb_log_event(
		    was_failing ? EB_LOG_DEBUG : EB_LOG_WARN, __func__,
		    &EB_EVT(t->id, "renewal.retry", code[0] ? code : o.result,
		            g->id),
		    "not renewed, failing since %lld "
		    "(grace %ds), retry in %llds: %s",
		    (long long)o.failing_since, t->tokens.upstream_grace,
		    (long long)(o.next_at - now), code[0] ? code : o.result);
		changed = !was_failing;
		break;
	default:
		break;
	}
	u.refresh_token = sealed;
	u.refresh_token_len = sealed_len;
	u.next_at = o.next_at;
	u.failing_since = o.failing_since;
	if (write_back(r, t, g, &u, now) != 0)
		changed = 0;
out:
	if (rt != NULL)
		eb_free_secret(rt, rt_len + 1);
	eb_free(sealed);
	eb_free(sub);
	eb_oidc_tokens_finish(&tok);
	return changed;
}

static void
job_run(void *arg)
{
	struct job *j = arg;
	struct eb_renewer *r = j->r;
	struct eb_log_ctx lc;
	int stopping, changed = 0;

	/* one trace per renewal: its lines and its calls to the IdP carry
	 * it (traceparent) */
	memset(&lc, 0, sizeof(lc));
	snprintf(lc.tenant, sizeof(lc.tenant), "%s", j->t->id);
	eb_log_trace_start(&lc, NULL);
	eb_log_ctx_set(&lc);
	pthread_mutex_lock(&r->lock);
	stopping = r->stopping;
	pthread_mutex_unlock(&r->lock);
	/* when stopping, hand the claim back: another replica renews it */
	if (stopping)
		eb_store_grant_release(r->env->store, j->g.id, j->g.lease_token,
		                       eb_now(r->env));
	else
		changed = renew(r, j->cfg, j->t, &j->g);
	pthread_mutex_lock(&r->lock);
	j->ts->inflight--;
	r->inflight--;
	if (changed)
		r->stats_dirty = 1;
	if (j->ts->backlog || r->starved) {
		r->kicked = 1;
		pthread_cond_signal(&r->cv);
	}
	pthread_mutex_unlock(&r->lock);
	eb_store_grant_finish(&j->g);
	eb_config_unref(j->cfg);
	eb_free(j);
	eb_log_ctx_set(NULL);
}

/* ---- the scheduling thread --------------------------------------------- */

/* Claim and start what tenant t may run now. */
static void
claim(struct eb_renewer *r, struct eb_config *cfg, const struct eb_tenant *t,
      int64_t now)
{
	struct eb_store_grant_list l;
	struct tstate *ts;
	struct job *j;
	size_t slots, i;
	int conc = t->tokens.renew_concurrency;

	pthread_mutex_lock(&r->lock);
	ts = tstate_locked(r, t->id);
	slots = 0;
	if (ts != NULL && r->inflight < RENEW_THREADS)
		slots = eb_grant_lease_slots(conc, ts->inflight,
		                             RENEW_THREADS - r->inflight);
	pthread_mutex_unlock(&r->lock);
	if (slots == 0) {
		/* whatever is due waits for a finished renewal's wake-up */
		pthread_mutex_lock(&r->lock);
		if (ts != NULL)
			ts->backlog = 1;
		if (r->inflight >= RENEW_THREADS)
			r->starved = 1;
		pthread_mutex_unlock(&r->lock);
		return;
	}
	/* the store applies the cap to the whole fleet's live claims */
	if (eb_store_grant_claim_due(r->env->store, t->id, now,
	                             cfg->limits.renew_lease, slots,
	                             (size_t)conc, r->owner, &l) != EB_STORE_OK)
		return;
	pthread_mutex_lock(&r->lock);
	ts->backlog = l.n == slots;
	pthread_mutex_unlock(&r->lock);
	for (i = 0; i < l.n; i++) {
		if ((j = eb_calloc(1, sizeof(*j))) == NULL) {
			eb_store_grant_release(r->env->store, l.v[i].id,
			                       l.v[i].lease_token, now);
			eb_store_grant_finish(&l.v[i]);
			continue;
		}
		j->r = r;
		j->cfg = eb_config_ref(cfg);
		j->t = t;
		j->ts = ts;
		j->g = l.v[i];
		memset(&l.v[i], 0, sizeof(l.v[i]));
		pthread_mutex_lock(&r->lock);
		ts->inflight++;
		r->inflight++;
		pthread_mutex_unlock(&r->lock);
		if (eb_workq_submit(r->pool, job_run, j) != 0) {
			pthread_mutex_lock(&r->lock);
			ts->inflight--;
			r->inflight--;
			pthread_mutex_unlock(&r->lock);
			eb_store_grant_release(r->env->store, j->g.id,
			                       j->g.lease_token, now);
			eb_store_grant_finish(&j->g);
			eb_config_unref(j->cfg);
			eb_free(j);
		}
	}
	eb_store_grant_list_finish(&l);
}

/* Seconds between ticks for cfg: TICK_MAX, or less for short intervals. */
static int
tick(const struct eb_config *cfg)
{
	int s = TICK_MAX;
	size_t i;

	for (i = 0; i < cfg->ntenants; i++)
		if (cfg->tenants[i]->tokens.upstream_renew_interval < s)
			s = cfg->tenants[i]->tokens.upstream_renew_interval;
	return s < 1 ? 1 : s;
}

static void *
run(void *arg)
{
	struct eb_renewer *r = arg;
	struct eb_config *cfg;
	struct timespec until;
	size_t i, n, start;
	int64_t now;
	int period, recount;

	for (;;) {
		cfg = eb_env_config(r->env);
		now = eb_now(r->env);
		n = cfg->ntenants;
		pthread_mutex_lock(&r->lock);
		start = n > 0 ? r->rotate++ % n : 0;
		r->starved = 0;
		recount = r->stats_dirty || r->stats_at == 0 ||
		          now - r->stats_at >= STATS_EVERY || now < r->stats_at;
		if (recount) {
			r->stats_dirty = 0;
			r->stats_at = now;
		}
		pthread_mutex_unlock(&r->lock);
		if (recount)
			stats(r, cfg, now);
		for (i = 0; i < n; i++)
			claim(r, cfg, cfg->tenants[(start + i) % n], now);
		period = tick(cfg);
		eb_config_unref(cfg);

		pthread_mutex_lock(&r->lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += period;
		while (!r->stopping && !r->kicked)
			if (pthread_cond_timedwait(&r->cv, &r->lock, &until) !=
			    0)
				break;
		r->kicked = 0;
		if (r->stopping) {
			pthread_mutex_unlock(&r->lock);
			break;
		}
		pthread_mutex_unlock(&r->lock);
	}
	return NULL;
}

/* ---- lifecycle --------------------------------------------------------- */

struct eb_renewer *
eb_renewer_start(struct eb_env *env)
{
	struct eb_config *cfg;
	struct eb_renewer *r;

	if ((r = eb_calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->env = env;
	cfg = eb_env_config(env);
	r->owner = eb_strdup(eb_config_replica_id(cfg));
	eb_config_unref(cfg);
	if (r->owner == NULL) {
		eb_free(r);
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cv, NULL);
	eb_metrics_describe(env->metrics, M_RENEWALS, "counter",
	                    "Upstream token renewals by this replica, by "
	                    "tenant and result (ok, denied: the IdP or the "
	                    "access re-check refused the person, unavailable, "
	                    "error, unverified: no refresh token and older "
	                    "than max_unverified_age, lost: the claim ran out "
	                    "and another worker's result counts).");
	eb_metrics_describe(env->metrics, M_FAILING, "gauge",
	                    "Active grants whose IdP has been failing to renew "
	                    "them, fleet-wide; exported only by the replica "
	                    "holding the stats lease, recounted every 60 s.");
	if ((r->pool = eb_workq_create(RENEW_THREADS, RENEW_THREADS)) == NULL)
		goto fail;
	if (pthread_create(&r->thread, NULL, run, r) != 0) {
		eb_workq_destroy(r->pool);
		goto fail;
	}
	log_info("silent renewal started (%d threads)", RENEW_THREADS);
	return r;
fail:
	log_errx("cannot start the renewal threads");
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->lock);
	eb_free(r->owner);
	eb_free(r);
	return NULL;
}

void
eb_renewer_kick(struct eb_renewer *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->kicked = 1;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->lock);
}

void
eb_renewer_stop(struct eb_renewer *r)
{
	size_t i;

	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = 1;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	/* refreshes under way finish (bounded by the upstream timeout);
	 * claims not started are released */
	eb_workq_destroy(r->pool);
	eb_store_lock_release(r->env->store, STATS_LOCK, r->owner);
	for (i = 0; i < r->nts; i++) {
		eb_free(r->ts[i]->id);
		eb_free(r->ts[i]);
	}
	eb_free(r->ts);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->lock);
	eb_free(r->owner);
	eb_free(r);
}
