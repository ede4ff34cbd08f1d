/*
 * The silent-renewal worker (see renew.h): one scheduling thread, a small
 * pool of its own for the blocking IdP calls, per-tenant in-flight counts,
 * and the decision taken after each refresh.
 *
 * Scheduling: each tick the thread takes a reference on the current
 * configuration and walks its tenants (starting one further each time, so
 * no tenant is always last), claiming at most
 *   min(renew_concurrency - in flight for the tenant, free pool threads)
 * due grants with a lease long enough for a refresh to finish (several IdP
 * calls of limits.upstream_timeout each). Nothing waits in the pool's
 * queue, so a lease never runs out while a grant waits its turn. When a
 * tenant had more due than it could claim, every finished renewal wakes
 * the thread again, so a backlog drains at the concurrency limit rather
 * than one batch per tick.
 *
 * The failing-grants gauge is kept from each renewal's transition
 * (healthy -> failing -> healthy or revoked) and recounted from the store
 * now and then (at start and every RECOUNT_EVERY seconds, while none of the
 * tenant's renewals is in flight), so admin revocations and restarts do
 * not leave it wrong for long.
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

#define RENEW_THREADS 8   /* the pool: refreshes in flight, all tenants */
#define TICK_MAX      5   /* seconds between cycles at most */
#define RETRY_MAX     300 /* seconds between attempts while failing */
#define RECOUNT_EVERY 300 /* seconds between recounts of the gauge */
#define EXTRA_MAX     65536

#define M_RENEWALS "enrollbridge_renewals_total"
#define M_FAILING  "enrollbridge_upstream_failing_grants"

/* What the renewer remembers about one tenant (by id, across reloads). */
struct tstate {
	char *id;
	unsigned inflight;
	int backlog;        /* the last claim was cut short by the limits */
	long failing;       /* the gauge's value */
	int64_t counted_at; /* last recount from the store; 0: never */
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

/* Publish ts->failing; called with r->lock held. */
static void
gauge_locked(struct eb_renewer *r, struct tstate *ts)
{
	char labels[96];

	if (ts->failing < 0)
		ts->failing = 0;
	snprintf(labels, sizeof(labels), "tenant=\"%s\"", ts->id);
	eb_metrics_set(r->env->metrics, M_FAILING, labels, (double)ts->failing);
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

/* Recount the tenant's failing grants from the store (none in flight). */
static void
recount(struct eb_renewer *r, struct tstate *ts, int64_t now)
{
	struct eb_store_grant_filter f;
	struct eb_store_grant_list l;
	long n = 0;
	size_t i;

	memset(&f, 0, sizeof(f));
	f.tenant = ts->id;
	f.status = EB_STORE_GRANT_ACTIVE;
	if (eb_store_grant_list(r->env->store, &f, &l) != EB_STORE_OK)
		return;
	for (i = 0; i < l.n; i++)
		if (l.v[i].upstream_failing_since != 0)
			n++;
	eb_store_grant_list_finish(&l);
	pthread_mutex_lock(&r->lock);
	ts->failing = n;
	ts->counted_at = now;
	gauge_locked(r, ts);
	pthread_mutex_unlock(&r->lock);
}

/* ---- one renewal (a pool thread) --------------------------------------- */

/*
 * 1 while the grant is active (an admin may have revoked or a new sign-in
 * superseded it meanwhile), 0 when not, -1 when the store fails.
 */
static int
still_active(struct eb_renewer *r, const char *id)
{
	struct eb_store_grant cur;
	int active, rc;

	memset(&cur, 0, sizeof(cur));
	if ((rc = eb_store_grant_get(r->env->store, id, &cur)) != EB_STORE_OK)
		return rc == EB_STORE_NOT_FOUND ? 0 : -1;
	active = cur.status == EB_STORE_GRANT_ACTIVE;
	eb_store_grant_finish(&cur);
	return active;
}

/*
 * Renew grant g of tenant t. Returns the change to the failing gauge
 * (-1, 0, +1).
 */
static int
renew(struct eb_renewer *r, const struct eb_tenant *t,
      const struct eb_store_grant *g)
{
	struct eb_env *env = r->env;
	struct eb_store_upstream u;
	struct eb_renewer_outcome o;
	struct eb_oidc_tokens tok;
	struct eb_oidc_error err;
	uint8_t *rt = NULL, *sealed = NULL;
	size_t rt_len = 0, sealed_len = 0;
	const char *keep;
	char *sub = NULL, fp[13];
	int rotated = 0;
	int64_t now = (int64_t)time(NULL);
	int was_failing = g->upstream_failing_since != 0, delta = 0, rc;
	int stale = 0;

	memset(&u, 0, sizeof(u));
	memset(&tok, 0, sizeof(tok));
	memset(&err, 0, sizeof(err));
	if (g->upstream_refresh_token == NULL) {
		/* the IdP gave none at sign-in: nothing to renew with, and
		 * no reason to hold that against the person */
		log_info("tenant %s: grant %s has no upstream refresh token; "
		         "it is not renewed",
		         t->id, g->id);
		u.failing_since = 0;
		u.next_at = 0;
		eb_store_grant_set_upstream(env->store, g->id, &u, now);
		return was_failing ? -1 : 0;
	}
	if (eb_seal_ring_open(env->seal_ring, EB_SEAL_AT_REST, g->id,
	                      strlen(g->id), g->upstream_refresh_token,
	                      g->upstream_refresh_token_len, &rt, &rt_len,
	                      &stale) != 0 ||
	    eb_renewer_expected_sub(g, &sub) != 0) {
		log_warnx("tenant %s: grant %s: the sealed upstream refresh "
		          "token does not open under any seal key (seal_keys "
		          "changed?) or no memory",
		          t->id, g->id);
		eb_renewer_decide(EB_OIDC_E_INTERNAL, "unsealed",
		                  g->upstream_failing_since, now, &t->tokens,
		                  &o);
		goto record;
	}
	rc = eb_oidc_refresh_subject(env->oidc, t, (const char *)rt, sub, &tok,
	                             &err);
	now = (int64_t)time(NULL);
	eb_renewer_decide(rc == 0 ? EB_OIDC_OK : (int)err.kind, err.code,
	                  g->upstream_failing_since, now, &t->tokens, &o);
	/* store the token the IdP rotated to, or the same one when it opened
	 * in an older form (version, key): it moves to the current one */
	rotated = tok.refresh_token != NULL &&
	          strcmp(tok.refresh_token, (const char *)rt) != 0;
	keep = rotated ? tok.refresh_token : (const char *)rt;
	if (o.action == EB_RENEWER_RENEWED && (rotated || stale) &&
	    eb_seal_ring_seal(env->seal_ring, EB_SEAL_AT_REST, g->id,
	                      strlen(g->id), keep, strlen(keep), &sealed,
	                      &sealed_len) != 0) {
		/* the old one may be dead now: try again soon */
		log_warnx("tenant %s: grant %s: cannot seal the rotated "
		          "upstream refresh token",
		          t->id, g->id);
		eb_renewer_decide(EB_OIDC_E_INTERNAL, "seal",
		                  g->upstream_failing_since, now, &t->tokens,
		                  &o);
	}
record:
	switch (still_active(r, g->id)) {
	case 0:
		log_debug("tenant %s: grant %s ended during its renewal", t->id,
		          g->id);
		delta = was_failing ? -1 : 0;
		goto out;
	case -1:
		/* its lease runs out and it is tried again */
		goto out;
	}
	count(r, t->id, o.result);
	switch (o.action) {
	case EB_RENEWER_REVOKE:
		log_warnx("tenant %s: grant %s (%s) revoked: %s (%s)", t->id,
		          g->id,
		          g->managed_apple_id ? g->managed_apple_id : "-",
		          o.reason, err.reason[0] ? err.reason : "-");
		if (eb_store_grant_set_status(env->store, g->id,
		                              EB_STORE_GRANT_REVOKED, o.reason,
		                              now) == EB_STORE_OK)
			delta = was_failing ? -1 : 0;
		goto out;
	case EB_RENEWER_RENEWED:
		u.renewed_at = now;
		u.refresh_token = sealed;
		u.refresh_token_len = sealed_len;
		if (sealed != NULL && !rotated)
			log_info("tenant %s: grant %s: upstream refresh token "
			         "re-sealed under the first seal key",
			         t->id, g->id);
		if (sealed != NULL && rotated) {
			eb_log_fp(tok.refresh_token, strlen(tok.refresh_token),
			          fp);
			log_debug(
			    "tenant %s: grant %s: IdP rotated its refresh "
			    "token (now %s)",
			    t->id, g->id, fp);
		}
		if (was_failing) {
			log_info("tenant %s: grant %s renewed; the IdP answers "
			         "again",
			         t->id, g->id);
			delta = -1;
		} else
			log_debug("tenant %s: grant %s renewed", t->id, g->id);
		break;
	case EB_RENEWER_RETRY:
		/* loud once per grant; the gauge shows how many are failing */
		eb_log(was_failing ? EB_LOG_DEBUG : EB_LOG_WARN, __func__,
		       "tenant %s: grant %s not renewed, failing since %lld "
		       "(grace %ds), retry in %llds: %s",
		       t->id, g->id, (long long)o.failing_since,
		       t->tokens.upstream_grace, (long long)(o.next_at - now),
		       err.code[0] ? err.code : o.result);
		delta = was_failing ? 0 : 1;
		break;
	default:
		break;
	}
	u.next_at = o.next_at;
	u.failing_since = o.failing_since;
	if (eb_store_grant_set_upstream(env->store, g->id, &u, now) !=
	    EB_STORE_OK) {
		log_warnx("tenant %s: grant %s: renewal outcome not recorded",
		          t->id, g->id);
		delta = 0;
	}
out:
	if (rt != NULL)
		eb_free_secret(rt, rt_len + 1);
	eb_free(sealed);
	eb_free(sub);
	eb_oidc_tokens_finish(&tok);
	return delta;
}

static void
job_run(void *arg)
{
	struct job *j = arg;
	struct eb_renewer *r = j->r;
	int stopping, delta = 0;

	pthread_mutex_lock(&r->lock);
	stopping = r->stopping;
	pthread_mutex_unlock(&r->lock);
	/* when stopping, the lease runs out and the next process renews */
	if (!stopping)
		delta = renew(r, j->t, &j->g);
	pthread_mutex_lock(&r->lock);
	j->ts->inflight--;
	r->inflight--;
	if (delta != 0) {
		j->ts->failing += delta;
		gauge_locked(r, j->ts);
	}
	if (j->ts->backlog || r->starved) {
		r->kicked = 1;
		pthread_cond_signal(&r->cv);
	}
	pthread_mutex_unlock(&r->lock);
	eb_store_grant_finish(&j->g);
	eb_config_unref(j->cfg);
	eb_free(j);
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
	int64_t lease;

	pthread_mutex_lock(&r->lock);
	ts = tstate_locked(r, t->id);
	if (ts != NULL && ts->inflight == 0 &&
	    (ts->counted_at == 0 || now - ts->counted_at >= RECOUNT_EVERY)) {
		pthread_mutex_unlock(&r->lock);
		recount(r, ts, now);
		pthread_mutex_lock(&r->lock);
	}
	slots = 0;
	if (ts != NULL && r->inflight < RENEW_THREADS)
		slots = eb_grant_lease_slots(t->tokens.renew_concurrency,
		                             ts->inflight,
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
	/* metadata, token and JWKS calls, then the store */
	lease = eb_grant_lease_length(cfg->limits.upstream_timeout);
	if (eb_store_grant_list_due(r->env->store, t->id, now, lease, slots,
	                            &l) != EB_STORE_OK)
		return;
	pthread_mutex_lock(&r->lock);
	ts->backlog = l.n == slots;
	pthread_mutex_unlock(&r->lock);
	for (i = 0; i < l.n; i++) {
		if ((j = eb_calloc(1, sizeof(*j))) == NULL) {
			eb_store_grant_finish(&l.v[i]);
			continue; /* its lease runs out: renewed later */
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
	int period;

	for (;;) {
		cfg = eb_env_config(r->env);
		now = (int64_t)time(NULL);
		n = cfg->ntenants;
		pthread_mutex_lock(&r->lock);
		start = n > 0 ? r->rotate++ % n : 0;
		r->starved = 0;
		pthread_mutex_unlock(&r->lock);
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
	struct eb_renewer *r;

	if ((r = eb_calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->env = env;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cv, NULL);
	eb_metrics_describe(env->metrics, M_RENEWALS, "counter",
	                    "Upstream token renewals by tenant and result.");
	eb_metrics_describe(env->metrics, M_FAILING, "gauge",
	                    "Active grants whose IdP has been failing to renew "
	                    "them.");
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
	/* refreshes under way finish (bounded by the upstream timeout) */
	eb_workq_destroy(r->pool);
	for (i = 0; i < r->nts; i++) {
		eb_free(r->ts[i]->id);
		eb_free(r->ts[i]);
	}
	eb_free(r->ts);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->lock);
	eb_free(r);
}
