/*
 * The PostgreSQL backend's grants. A change takes the grant row FOR UPDATE
 * first (two grants in id order: SCALEOUT 3.4), asks the shared rule
 * (grant/policy.h) and writes what it says, with its audit event in the
 * same statement. Ending a grant, superseding one and binding one end
 * their transaction with the invalidation (SCALEOUT 3.6). Renewal work is
 * claimed in one statement over a FOR UPDATE SKIP LOCKED subquery, so
 * concurrent claimers never get the same grant, under the tenant's
 * renew_slots row when a fleet-wide cap applies (SCALEOUT 3.7); the
 * write-back is fenced by the claim's lease_token.
 */
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rand.h"
#include "grant/policy.h"
#include "store/pg/pg_int.h"

/* ---- shared ---- */

void
eb_pg_gstate_finish(struct eb_pg_gstate *g)
{
	eb_free(g->tenant);
	eb_free(g->bkind);
	eb_free(g->bvalue);
	eb_free(g->issuer);
	eb_free(g->subject);
	memset(g, 0, sizeof(*g));
}

static void
read_gstate(struct eb_pg_rd *r, void *p)
{
	struct eb_pg_gstate *g = p;

	g->status = eb_pg_rd_enum(r, eb_store_grant_status_name);
	g->tenant = eb_pg_rd_text(r);
	g->bkind = eb_pg_rd_text(r);
	g->bvalue = eb_pg_rd_text(r);
	g->issuer = eb_pg_rd_text(r);
	g->subject = eb_pg_rd_text(r);
}

static void
fin_gstate(void *p)
{
	eb_pg_gstate_finish(p);
}

static const struct eb_pg_rowtype rt_gstate = {sizeof(struct eb_pg_gstate),
                                               NULL, read_gstate, fin_gstate};

int
eb_pg_gstate_lock(struct eb_pg_conn *c, const char *id, struct eb_pg_gstate *g)
{
	struct eb_pg_args a;

	memset(g, 0, sizeof(*g));
	if (id == NULL)
		return EB_STORE_NOT_FOUND;
	eb_pg_args_init(&a);
	eb_pg_args_text(&a, id);
	return eb_pg_one(c, PS_GRANT_LOCK, &a, &rt_gstate, g);
}

int
eb_pg_grant_end(struct eb_pg_conn *c, const char *id, int status,
                const char *reason, const char *superseded_by, int64_t now)
{
	const char *name = eb_store_grant_status_name(status);
	struct eb_pg_args a;
	struct eb_buf det;
	char event[48];
	int rc;

	if (name == NULL || eb_pg_detail(&det, "reason", reason,
	                                 "superseded_by", superseded_by) != 0)
		return EB_STORE_ERROR;
	snprintf(event, sizeof(event), "grant.%s", name);
	eb_pg_args_init(&a);
	eb_pg_args_text(&a, id);
	eb_pg_args_text(&a, name);
	eb_pg_args_text(&a, reason);
	eb_pg_args_int8(&a, now);
	eb_pg_args_text(&a, superseded_by);
	eb_pg_args_text(&a, event);
	eb_pg_args_text(&a, eb_buf_str(&det));
	rc = eb_pg_run(c, PS_GRANT_END, &a, NULL);
	eb_buf_finish(&det);
	return rc;
}

static int
set_binding(struct eb_pg_conn *c, const char *id, const char *kind,
            const char *value, int64_t now, const char *from)
{
	struct eb_pg_args a;
	struct eb_buf det;
	int rc;

	if (eb_pg_detail(&det, kind, value, "inherited_from", from) != 0)
		return EB_STORE_ERROR;
	eb_pg_args_init(&a);
	eb_pg_args_text(&a, id);
	eb_pg_args_text(&a, kind);
	eb_pg_args_text(&a, value);
	eb_pg_args_int8(&a, now);
	eb_pg_args_text(&a, eb_buf_str(&det));
	rc = eb_pg_run(c, PS_GRANT_BIND, &a, NULL);
	eb_buf_finish(&det);
	/*
	 * The unique index refused: another grant bound the enrollment
	 * since the holder was read. Run the transaction again: it then
	 * sees that holder and the rule decides.
	 */
	return rc == EB_STORE_CONFLICT ? EB_PG_RETRY : rc;
}

/* Who holds an enrollment. */
struct holder {
	char *id, *issuer, *subject;
};

static void
read_holder(struct eb_pg_rd *r, void *p)
{
	struct holder *h = p;

	h->id = eb_pg_rd_text(r);
	h->issuer = eb_pg_rd_text(r);
	h->subject = eb_pg_rd_text(r);
}

static void
fin_holder(void *p)
{
	struct holder *h = p;

	eb_free(h->id);
	eb_free(h->issuer);
	eb_free(h->subject);
	memset(h, 0, sizeof(*h));
}

static const struct eb_pg_rowtype rt_holder = {sizeof(struct holder), NULL,
                                               read_holder, fin_holder};

/* The active grant other than id holding (kind, value) in tenant, locked:
 * OK with h filled, or NOT_FOUND. */
static int
grant_holder(struct eb_pg_conn *c, const char *tenant, const char *kind,
             const char *value, const char *id, struct holder *h)
{
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, tenant);
	eb_pg_args_text(&a, kind);
	eb_pg_args_text(&a, value);
	eb_pg_args_text(&a, id);
	return eb_pg_one(c, PS_GRANT_HOLDER, &a, &rt_holder, h);
}

/* ---- create, read ---- */

static int
grant_create_fn(struct eb_pg_conn *c, void *arg)
{
	const struct eb_store_grant *g = arg;
	struct eb_pg_args a;
	struct eb_buf det;
	int rc;

	if (eb_pg_detail(&det, "managed_apple_id", g->managed_apple_id,
	                 "enrollment_mode", g->enrollment_mode) != 0)
		return EB_STORE_ERROR;
	eb_pg_args_init(&a);
	if (eb_pg_args_row(&a, &eb_columns_grant, g) != 0) {
		eb_buf_finish(&det);
		return EB_STORE_ERROR;
	}
	eb_pg_args_text(&a, eb_buf_str(&det));
	/* one statement: the grant and its "grant.created" event */
	rc = eb_pg_run(c, PS_GRANT_INS, &a, NULL);
	eb_buf_finish(&det);
	if (rc != EB_STORE_OK || g->idp_login == NULL)
		return rc;
	/* its login, a column an insert leaves out (columns.h), in the
	 * same transaction */
	eb_pg_args_init(&a);
	eb_pg_args_text(&a, g->id);
	eb_pg_args_text(&a, g->idp_login);
	return eb_pg_run(c, PS_GRANT_SET_LOGIN, &a, NULL);
}

int
eb_pg_grant_create(void *be, const struct eb_store_grant *g)
{
	if (eb_store_grant_status_name(g->status) == NULL) {
		log_warnx("store: grant with a bad status");
		return EB_STORE_ERROR;
	}
	if (g->idp_login != NULL)
		return eb_pg_in_tx(be, grant_create_fn, (void *)g);
	return eb_pg_with(be, grant_create_fn, (void *)g);
}

struct grant_q {
	const char *id;
	struct eb_store_grant *out;
};

static int
grant_get_fn(struct eb_pg_conn *c, void *arg)
{
	struct grant_q *q = arg;
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->id);
	return eb_pg_one(c, PS_GRANT_GET, &a, &eb_pg_rt_grant, q->out);
}

int
eb_pg_grant_get(void *be, const char *id, struct eb_store_grant *out)
{
	struct grant_q q = {id, out};

	memset(out, 0, sizeof(*out));
	if (id == NULL)
		return EB_STORE_NOT_FOUND;
	return eb_pg_with(be, grant_get_fn, &q);
}

struct list_q {
	const struct eb_store_grant_filter *f;
	struct eb_store_grant_list *out;
};

static int
grant_list_fn(struct eb_pg_conn *c, void *arg)
{
	struct list_q *q = arg;
	const struct eb_store_grant_filter *f = q->f;
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, f != NULL ? f->tenant : NULL);
	eb_pg_args_text(&a, f != NULL && f->status >= 0
	                        ? eb_store_grant_status_name(f->status)
	                        : NULL);
	eb_pg_args_text(&a, f != NULL ? f->managed_apple_id : NULL);
	if (f != NULL && f->limit > 0 && f->limit < INT64_MAX)
		eb_pg_args_int8(&a, (int64_t)f->limit);
	else
		eb_pg_args_text(&a, NULL); /* LIMIT NULL: all */
	eb_pg_args_text(&a, f != NULL ? f->binding_value : NULL);
	eb_pg_args_int8(&a, f != NULL && f->retired_only ? 1 : 0);
	return eb_pg_all(c, PS_GRANT_LIST, &a, &eb_pg_rt_grant,
	                 (void **)&q->out->v, &q->out->n);
}

int
eb_pg_grant_list(void *be, const struct eb_store_grant_filter *f,
                 struct eb_store_grant_list *out)
{
	struct list_q q = {f, out};

	memset(out, 0, sizeof(*out));
	return eb_pg_with(be, grant_list_fn, &q);
}

/* ---- status, supersede, bind ---- */

struct change {
	struct eb_pg_store *ps;
	const char *id, *other; /* other: the new grant / holder (none) */
	const char *kind, *value;
	const char *reason;
	int status;
	int64_t now;
};

static int
set_status_tx(struct eb_pg_conn *c, void *arg)
{
	struct change *q = arg;
	struct eb_pg_gstate gs;
	int rc;

	if ((rc = eb_pg_gstate_lock(c, q->id, &gs)) != EB_STORE_OK)
		return rc;
	switch (eb_grant_end_decide(gs.status, q->status)) {
	case EB_GRANT_END:
		rc = eb_pg_grant_end(c, q->id, q->status, q->reason, NULL,
		                     q->now);
		if (rc == EB_STORE_OK)
			rc = eb_pg_invalidate(c, q->ps->notify);
		break;
	case EB_GRANT_END_NOOP:
		rc = EB_STORE_OK; /* nothing to change */
		break;
	default:
		rc = EB_STORE_CONFLICT;
	}
	eb_pg_gstate_finish(&gs);
	return rc;
}

int
eb_pg_grant_set_status(void *be, const char *id, int status, const char *reason,
                       int64_t now)
{
	struct change q = {
	    .ps = be, .id = id, .reason = reason, .status = status, .now = now};

	if (eb_store_grant_status_name(status) == NULL) {
		log_warnx("store: bad grant status %d", status);
		return EB_STORE_ERROR;
	}
	return eb_pg_in_tx(be, set_status_tx, &q);
}

static int
retire_tx(struct eb_pg_conn *c, void *arg)
{
	struct change *q = arg;
	struct eb_pg_gstate gs;
	struct eb_pg_args a;
	struct eb_buf det;
	int rc;

	if ((rc = eb_pg_gstate_lock(c, q->id, &gs)) != EB_STORE_OK)
		return rc;
	switch (eb_grant_end_decide(gs.status, EB_STORE_GRANT_REVOKED)) {
	case EB_GRANT_END:
		rc = eb_pg_grant_end(c, q->id, EB_STORE_GRANT_REVOKED,
		                     q->reason, NULL, q->now);
		break;
	case EB_GRANT_END_NOOP: /* revoked already: mark it */
		rc = EB_STORE_OK;
		break;
	default:
		rc = EB_STORE_CONFLICT;
	}
	eb_pg_gstate_finish(&gs);
	if (rc != EB_STORE_OK)
		return rc;
	if (eb_pg_detail(&det, "reason", q->reason, NULL, NULL) != 0)
		return EB_STORE_ERROR;
	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->id);
	eb_pg_args_int8(&a, q->now);
	eb_pg_args_text(&a, eb_buf_str(&det));
	rc = eb_pg_run(c, PS_GRANT_RETIRE, &a, NULL);
	eb_buf_finish(&det);
	if (rc == EB_STORE_OK)
		rc = eb_pg_invalidate(c, q->ps->notify);
	return rc;
}

int
eb_pg_grant_retire(void *be, const char *id, const char *reason, int64_t now)
{
	struct change q = {.ps = be, .id = id, .reason = reason, .now = now};

	return eb_pg_in_tx(be, retire_tx, &q);
}

/* Lock old and new grants in id order, reading both. */
static int
lock_pair(struct eb_pg_conn *c, const char *old_id, const char *new_id,
          struct eb_pg_gstate *o, struct eb_pg_gstate *n)
{
	int rc, old_first = strcmp(old_id, new_id) < 0;

	memset(o, 0, sizeof(*o));
	memset(n, 0, sizeof(*n));
	if ((rc = eb_pg_gstate_lock(c, old_first ? old_id : new_id,
	                            old_first ? o : n)) != EB_STORE_OK)
		return rc;
	return eb_pg_gstate_lock(c, old_first ? new_id : old_id,
	                         old_first ? n : o);
}

static int
supersede_tx(struct eb_pg_conn *c, void *arg)
{
	struct change *q = arg;
	struct eb_grant_supersede_plan plan;
	struct eb_grant_supersede_in in;
	struct eb_pg_gstate o, n;
	struct holder h;
	int rc;

	memset(&h, 0, sizeof(h));
	if ((rc = lock_pair(c, q->id, q->other, &o, &n)) != EB_STORE_OK)
		goto out;
	memset(&in, 0, sizeof(in));
	in.same_id = strcmp(q->id, q->other) == 0;
	in.same_tenant = strcmp(o.tenant, n.tenant) == 0;
	in.old_status = o.status;
	in.new_status = n.status;
	in.old_bound = o.bvalue != NULL;
	in.new_bound = n.bvalue != NULL;
	if (in.old_bound && !in.new_bound) {
		/* who else holds old's enrollment; old itself, about to
		 * end, does not count */
		rc = grant_holder(c, n.tenant, o.bkind, o.bvalue, q->other, &h);
		if (rc != EB_STORE_OK && rc != EB_STORE_NOT_FOUND)
			goto out;
		in.holder_found = rc == EB_STORE_OK && strcmp(h.id, q->id) != 0;
	}
	eb_grant_supersede_decide(&in, &plan);
	if ((rc = plan.rc) != EB_STORE_OK)
		goto out;
	if (plan.end_old &&
	    (rc = eb_pg_grant_end(c, q->id, EB_STORE_GRANT_SUPERSEDED,
	                          "re-authenticated", q->other, q->now)) !=
	        EB_STORE_OK)
		goto out;
	if (plan.inherit && (rc = set_binding(c, q->other, o.bkind, o.bvalue,
	                                      q->now, q->id)) != EB_STORE_OK)
		goto out;
	if (plan.end_old || plan.inherit)
		rc = eb_pg_invalidate(c, q->ps->notify);
out:
	fin_holder(&h);
	eb_pg_gstate_finish(&o);
	eb_pg_gstate_finish(&n);
	return rc;
}

int
eb_pg_grant_supersede(void *be, const char *old_id, const char *new_id,
                      int64_t now)
{
	struct change q = {.ps = be, .id = old_id, .other = new_id, .now = now};

	if (old_id == NULL || new_id == NULL)
		return EB_STORE_NOT_FOUND;
	return eb_pg_in_tx(be, supersede_tx, &q);
}

static int
bind_tx(struct eb_pg_conn *c, void *arg)
{
	struct change *q = arg;
	struct eb_grant_bind_in in;
	struct eb_pg_gstate gs;
	struct holder h;
	int rc;

	memset(&h, 0, sizeof(h));
	memset(&in, 0, sizeof(in));
	if ((rc = eb_pg_gstate_lock(c, q->id, &gs)) != EB_STORE_OK)
		return rc;
	in.kind = q->kind;
	in.value = q->value;
	in.status = gs.status;
	in.bkind = gs.bkind;
	in.bvalue = gs.bvalue;
	/* the holder matters only to an active grant not yet bound */
	if (gs.status == EB_STORE_GRANT_ACTIVE && gs.bkind == NULL &&
	    gs.bvalue == NULL) {
		rc = grant_holder(c, gs.tenant, q->kind, q->value, q->id, &h);
		if (rc != EB_STORE_OK && rc != EB_STORE_NOT_FOUND)
			goto out;
		in.holder_found = rc == EB_STORE_OK;
		in.holder_same_person =
		    in.holder_found &&
		    eb_grant_same_person(gs.issuer, gs.subject, h.issuer,
		                         h.subject);
	}
	switch (eb_grant_bind_decide(&in, &rc)) {
	case EB_GRANT_BIND_SUPERSEDE:
		if ((rc = eb_pg_grant_end(c, h.id, EB_STORE_GRANT_SUPERSEDED,
		                          "re-enrolled", q->id, q->now)) !=
		    EB_STORE_OK)
			break;
		/* FALLTHROUGH */
	case EB_GRANT_BIND:
		rc = set_binding(c, q->id, q->kind, q->value, q->now, NULL);
		if (rc == EB_STORE_OK)
			rc = eb_pg_invalidate(c, q->ps->notify);
		break;
	default:
		break; /* rc is the rule's answer */
	}
out:
	fin_holder(&h);
	eb_pg_gstate_finish(&gs);
	return rc;
}

int
eb_pg_grant_bind(void *be, const char *id, const char *kind, const char *value,
                 int64_t now)
{
	struct change q = {
	    .ps = be, .id = id, .kind = kind, .value = value, .now = now};
	struct eb_grant_bind_in in;
	int rc;

	memset(&in, 0, sizeof(in));
	in.kind = kind;
	in.value = value;
	if (eb_grant_bind_decide(&in, &rc) == EB_GRANT_BIND_BAD)
		return rc;
	return eb_pg_in_tx(be, bind_tx, &q);
}

/* ---- renewal ---- */

struct upstream_q {
	const char *id;
	const struct eb_store_upstream *u;
	int64_t now;
};

static int
upstream_fn(struct eb_pg_conn *c, void *arg)
{
	struct upstream_q *q = arg;
	struct eb_pg_args a;
	PGresult *r;
	int64_t n = 0;
	int rc, active;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->id);
	eb_pg_args_int8(&a, q->u->renewed_at);
	eb_pg_args_int8(&a, q->u->next_at);
	eb_pg_args_int8(&a, q->u->failing_since);
	eb_pg_args_blob(&a, q->u->refresh_token, q->u->refresh_token_len);
	eb_pg_args_int8(&a, q->now);
	eb_pg_args_text(&a, q->u->lease_token);
	if ((rc = eb_pg_exec(c, PS_GRANT_UPSTREAM, &a, &r)) != EB_STORE_OK)
		return rc;
	if (PQntuples(r) != 1 || eb_pg_get_int8(r, 0, 0, &n) != 0) {
		PQclear(r);
		return EB_STORE_ERROR;
	}
	active =
	    !PQgetisnull(r, 0, 1) && strcmp(PQgetvalue(r, 0, 1), "active") == 0;
	PQclear(r);
	if (n > 0)
		return EB_STORE_OK;
	/* an active grant that no longer holds the fence: lease lost */
	return active && q->u->lease_token != NULL ? EB_STORE_LOST
	                                           : EB_STORE_NOT_FOUND;
}

int
eb_pg_grant_set_upstream(void *be, const char *id,
                         const struct eb_store_upstream *u, int64_t now)
{
	struct upstream_q q = {id, u, now};

	if (id == NULL || u == NULL)
		return EB_STORE_NOT_FOUND;
	return eb_pg_with(be, upstream_fn, &q);
}

/*
 * Run a due or claim statement (rows: GRANT_COLS, then the row's next_at
 * and lease_until before the claim) into out, most overdue first. The claim
 * rule (grant/policy.h) is checked again on every row, as sqlite.c does: the
 * SQL selects with the same condition, so a row it refuses is a bug,
 * logged and dropped.
 */
static int
claimed_rows(struct eb_pg_conn *c, int stmt, const struct eb_pg_args *a,
             int64_t now, struct eb_store_grant_list *out)
{
	struct eb_grant_lease_state ls;
	struct eb_pg_rd rd;
	PGresult *r;
	size_t i, n;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = eb_pg_exec(c, (size_t)stmt, a, &r)) != EB_STORE_OK)
		return rc;
	n = (size_t)PQntuples(r);
	if (n > 0 && (out->v = eb_calloc(n, sizeof(*out->v))) == NULL) {
		log_warnx("store: out of memory");
		PQclear(r);
		return EB_STORE_ERROR;
	}
	for (i = 0; i < n; i++) {
		struct eb_store_grant *g = &out->v[out->n];

		eb_pg_rd_init(&rd, r, (int)i);
		eb_pg_read_grant(&rd, g);
		/* the state before the claim, as the statement returned it */
		ls.status = g->status;
		ls.upstream_next_at = eb_pg_rd_i64(&rd);
		ls.lease_until = eb_pg_rd_i64(&rd);
		ls.expires = g->expires;
		if (rd.bad) {
			eb_store_grant_finish(g);
			eb_store_grant_list_finish(out);
			PQclear(r);
			log_warnx("store: out of memory or a malformed row");
			return EB_STORE_ERROR;
		}
		if (!eb_grant_lease_claimable(&ls, now)) {
			log_warnx("store: grant %.8s is not due; not claimed",
			          g->id != NULL ? g->id : "?");
			eb_store_grant_finish(g);
			continue;
		}
		out->n++;
	}
	PQclear(r);
	return EB_STORE_OK;
}

struct due_q {
	const char *tenant, *owner;
	int64_t now, lease;
	size_t limit, cap;
	struct eb_store_grant_list *out;
};

static void
limit_arg(struct eb_pg_args *a, size_t limit)
{
	if (limit > 0 && limit < INT64_MAX)
		eb_pg_args_int8(a, (int64_t)limit);
	else
		eb_pg_args_text(a, NULL); /* LIMIT NULL: all */
}

static int
due_fn(struct eb_pg_conn *c, void *arg)
{
	struct due_q *q = arg;
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->tenant);
	eb_pg_args_int8(&a, q->now);
	limit_arg(&a, q->limit);
	if (q->lease <= 0)
		return claimed_rows(c, PS_GRANT_DUE, &a, q->now, q->out);
	eb_pg_args_int8(&a, q->lease);
	return claimed_rows(c, PS_GRANT_DUE_LEASE, &a, q->now, q->out);
}

int
eb_pg_grant_list_due(void *be, const char *tenant, int64_t now, int64_t lease,
                     size_t limit, struct eb_store_grant_list *out)
{
	struct due_q q = {.tenant = tenant,
	                  .now = now,
	                  .lease = lease,
	                  .limit = limit,
	                  .out = out};

	memset(out, 0, sizeof(*out));
	return eb_pg_with(be, due_fn, &q);
}

/* The tenant's live leases (every replica's), counted under its
 * renew_slots row: claimers of one tenant queue there. */
static int
live_leases(struct eb_pg_conn *c, struct due_q *q, size_t *live)
{
	struct eb_pg_args a;
	PGresult *r;
	int64_t n = 0;
	int rc;

	*live = 0;
	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->tenant);
	if ((rc = eb_pg_run(c, PS_GRANT_SLOT_ADD, &a, NULL)) != EB_STORE_OK ||
	    (rc = eb_pg_run(c, PS_GRANT_SLOT_LOCK, &a, NULL)) != EB_STORE_OK)
		return rc;
	eb_pg_args_int8(&a, q->now);
	if ((rc = eb_pg_exec(c, PS_GRANT_LIVE, &a, &r)) != EB_STORE_OK)
		return rc;
	if (eb_pg_get_int8(r, 0, 0, &n) != 0)
		rc = EB_STORE_ERROR;
	PQclear(r);
	if (n > 0)
		*live = (size_t)n;
	return rc;
}

static int
claim_fn(struct eb_pg_conn *c, void *arg)
{
	static const char hex[] = "0123456789abcdef";
	struct due_q *q = arg;
	struct eb_pg_args a;
	unsigned char rnd[12];
	char fence[2 * sizeof(rnd) + 1];
	size_t i, n, live = 0;
	int rc;

	eb_store_grant_list_finish(q->out);
	if (q->cap > 0 && (rc = live_leases(c, q, &live)) != EB_STORE_OK)
		return rc;
	/* the shared cap rule; at the cap what is due waits */
	if ((n = eb_grant_lease_claim_max(q->limit, q->cap, live)) == 0)
		return EB_STORE_OK;
	/* the fence: new random per claim, made unique per row by its id */
	if (eb_rand_bytes(rnd, sizeof(rnd)) != 0)
		return EB_STORE_ERROR;
	for (i = 0; i < sizeof(rnd); i++) {
		fence[2 * i] = hex[rnd[i] >> 4];
		fence[2 * i + 1] = hex[rnd[i] & 0xf];
	}
	fence[2 * sizeof(rnd)] = '\0';
	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->tenant);
	eb_pg_args_int8(&a, q->now);
	limit_arg(&a, n == SIZE_MAX ? 0 : n);
	eb_pg_args_int8(&a, q->lease);
	eb_pg_args_text(&a, q->owner);
	eb_pg_args_text(&a, fence);
	return claimed_rows(c, PS_GRANT_CLAIM, &a, q->now, q->out);
}

int
eb_pg_grant_claim_due(void *be, const char *tenant, int64_t now, int64_t lease,
                      size_t limit, size_t cap, const char *owner,
                      struct eb_store_grant_list *out)
{
	struct due_q q = {tenant, owner, now, lease, limit, cap, out};

	memset(out, 0, sizeof(*out));
	if (owner == NULL || lease <= 0 || (cap > 0 && tenant == NULL)) {
		log_warnx("store: a claim needs an owner, a lease and, with "
		          "a cap, a tenant");
		return EB_STORE_ERROR;
	}
	if (cap == 0)
		return eb_pg_with(be, claim_fn, &q);
	return eb_pg_in_tx(be, claim_fn, &q);
}

struct release_q {
	const char *id, *token;
	int64_t now;
};

static int
release_fn(struct eb_pg_conn *c, void *arg)
{
	struct release_q *q = arg;
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->id);
	eb_pg_args_text(&a, q->token);
	eb_pg_args_int8(&a, q->now);
	return eb_pg_run(c, PS_GRANT_RELEASE, &a, NULL);
}

int
eb_pg_grant_release(void *be, const char *id, const char *lease_token,
                    int64_t now)
{
	struct release_q q = {id, lease_token, now};

	if (id == NULL || lease_token == NULL)
		return EB_STORE_OK;
	return eb_pg_with(be, release_fn, &q);
}

struct count_q {
	const char *tenant;
	int status, failing_only;
	int64_t *out;
};

static int
count_fn(struct eb_pg_conn *c, void *arg)
{
	struct count_q *q = arg;
	struct eb_pg_args a;
	PGresult *r;
	int rc;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->tenant);
	eb_pg_args_text(
	    &a, q->status >= 0 ? eb_store_grant_status_name(q->status) : NULL);
	eb_pg_args_int8(&a, q->failing_only ? 1 : 0);
	if ((rc = eb_pg_exec(c, PS_GRANT_COUNT, &a, &r)) != EB_STORE_OK)
		return rc;
	if (eb_pg_get_int8(r, 0, 0, q->out) != 0)
		rc = EB_STORE_ERROR;
	PQclear(r);
	return rc;
}

int
eb_pg_grant_count(void *be, const char *tenant, int status, int failing_only,
                  int64_t *out)
{
	struct count_q q = {tenant, status, failing_only, out};

	*out = 0;
	if (status >= 0 && eb_store_grant_status_name(status) == NULL)
		return EB_STORE_ERROR;
	return eb_pg_with(be, count_fn, &q);
}
