/*
 * The SQLite backend's grants: creation, reads and lists, status changes,
 * the enrollment binding and the supersede of an earlier grant of the same
 * person, the upstream renewal bookkeeping with its fenced write-back,
 * renewal claims and their leases, and counts. Each multi-step write is one
 * BEGIN IMMEDIATE transaction that records its own audit event.
 */
#include "store/sqlite/sqlite_int.h"

#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/rand.h"
#include "grant/policy.h"
#include "grant/refresh.h"

/* ---- grants ----------------------------------------------------------- */

void
eb_sq_gstate_finish(struct eb_sq_gstate *g)
{
	eb_free(g->tenant);
	eb_free(g->bkind);
	eb_free(g->bvalue);
	memset(g, 0, sizeof(*g));
}

int
eb_sq_gstate_read(struct eb_sq_conn *c, const char *id, struct eb_sq_gstate *g)
{
	sqlite3_stmt *st;
	struct eb_sq_rd r;
	int rc;

	memset(g, 0, sizeof(*g));
	if (id == NULL)
		return EB_STORE_NOT_FOUND;
	if ((st = eb_sq_stmt(c, ST_GRANT_STATE)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, id))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = (struct eb_sq_rd){st, 0, 0};
		g->status = eb_sq_rd_enum(&r, eb_store_grant_status_name);
		g->tenant = eb_sq_rd_text(&r);
		g->bkind = eb_sq_rd_text(&r);
		g->bvalue = eb_sq_rd_text(&r);
		rc = EB_STORE_OK;
		if (r.oom) {
			eb_sq_gstate_finish(g);
			log_warnx("store: out of memory");
			rc = EB_STORE_ERROR;
		}
	} else if (rc == SQLITE_DONE)
		rc = EB_STORE_NOT_FOUND;
	else
		rc = eb_sq_fail(c, rc, __func__);
	sqlite3_reset(st);
	return rc;
}

/*
 * End an active grant (revoked/expired/superseded), inside the caller's
 * transaction: status and reason set, upstream secret erased, every token
 * revoked, the change audited.
 */
int
eb_sq_grant_end(struct eb_sq_conn *c, const char *id, const char *tenant,
                int status, const char *reason, const char *superseded_by,
                int64_t now)
{
	const char *name = eb_store_grant_status_name(status);
	sqlite3_stmt *st;
	int rc;

	if ((st = eb_sq_stmt(c, ST_GRANT_END)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, id) | eb_sq_bind_text(st, 2, name) |
	    eb_sq_bind_text(st, 3, reason) | sqlite3_bind_int64(st, 4, now) |
	    eb_sq_bind_text(st, 5, superseded_by))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	if ((rc = eb_sq_run(c, st, __func__)) != 0)
		return rc;
	if ((st = eb_sq_stmt(c, ST_TOKEN_REVOKE_GRANT)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, id))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	if ((rc = eb_sq_run(c, st, __func__)) != 0)
		return rc;
	return eb_sq_audit_grant(c, tenant, name, id, now, "reason", reason,
	                         "superseded_by", superseded_by);
}

/* The login of a new grant (a column an insert leaves out: columns.h). */
static int
set_login(struct eb_sq_conn *c, const struct eb_store_grant *g)
{
	sqlite3_stmt *st;

	if ((st = eb_sq_stmt(c, ST_GRANT_SET_LOGIN)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, g->id) |
	    eb_sq_bind_text(st, 2, g->idp_login))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_run(c, st, __func__);
}

int
eb_sq_grant_create(void *be, const struct eb_store_grant *g)
{
	const char *status = eb_store_grant_status_name(g->status);
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	int rc;

	if (status == NULL) {
		log_warnx("store: grant with a bad status");
		return EB_STORE_ERROR;
	}
	if ((c = eb_sq_conn(be)) == NULL || eb_sq_tx_begin(c) != 0)
		return EB_STORE_ERROR;
	if ((st = eb_sq_stmt(c, ST_GRANT_INS)) == NULL) {
		rc = EB_STORE_ERROR;
		goto out;
	}
	if ((rc = eb_sq_bind_row(c, st, &eb_columns_grant, g, __func__)) != 0)
		goto out;
	if ((rc = eb_sq_run(c, st, __func__)) != 0)
		goto out;
	if (g->idp_login != NULL && (rc = set_login(c, g)) != 0)
		goto out;
	rc = eb_sq_audit_grant(c, g->tenant, "created", g->id, g->created,
	                       "managed_apple_id", g->managed_apple_id,
	                       "enrollment_mode", g->enrollment_mode);
out:
	return eb_sq_tx_end(c, rc, rc == EB_STORE_OK);
}

int
eb_sq_grant_get(void *be, const char *id, struct eb_store_grant *out)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_GRANT_GET)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, id))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_one(c, st, &eb_sq_rt_grant, out, __func__);
}

int
eb_sq_grant_list(void *be, const struct eb_store_grant_filter *f,
                 struct eb_store_grant_list *out)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_GRANT_LIST)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, f ? f->tenant : NULL) |
	    eb_sq_bind_text(st, 2,
	                    f && f->status >= 0
	                        ? eb_store_grant_status_name(f->status)
	                        : NULL) |
	    eb_sq_bind_text(st, 3, f ? f->managed_apple_id : NULL) |
	    sqlite3_bind_int64(st, 4,
	                       f && f->limit > 0 && f->limit < INT64_MAX
	                           ? (int64_t)f->limit
	                           : -1) |
	    eb_sq_bind_text(st, 5, f ? f->binding_value : NULL) |
	    sqlite3_bind_int(st, 6, f && f->retired_only ? 1 : 0))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_all(c, st, &eb_sq_rt_grant, (void **)&out->v, &out->n,
	                 __func__);
}

int
eb_sq_grant_set_status(void *be, const char *id, int status, const char *reason,
                       int64_t now)
{
	struct eb_sq_gstate gs;
	struct eb_sq_conn *c;
	int rc;

	if (eb_store_grant_status_name(status) == NULL) {
		log_warnx("store: bad grant status %d", status);
		return EB_STORE_ERROR;
	}
	if ((c = eb_sq_conn(be)) == NULL || eb_sq_tx_begin(c) != 0)
		return EB_STORE_ERROR;
	if ((rc = eb_sq_gstate_read(c, id, &gs)) != 0)
		goto out;
	switch (eb_grant_end_decide(gs.status, status)) {
	case EB_GRANT_END:
		rc = eb_sq_grant_end(c, id, gs.tenant, status, reason, NULL,
		                     now);
		break;
	case EB_GRANT_END_NOOP:
		rc = EB_STORE_OK; /* nothing to change */
		break;
	default:
		rc = EB_STORE_CONFLICT;
	}
	eb_sq_gstate_finish(&gs);
out:
	return eb_sq_tx_end(c, rc, rc == EB_STORE_OK);
}

/* Mark a revoked grant retired (once), audited. */
static int
grant_mark_retired(struct eb_sq_conn *c, const char *id, const char *tenant,
                   const char *reason, int64_t now)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = eb_sq_stmt(c, ST_GRANT_RETIRE)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, id) | sqlite3_bind_int64(st, 2, now))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	if ((rc = eb_sq_run(c, st, __func__)) != 0)
		return rc;
	if (sqlite3_changes(c->db) == 0)
		return EB_STORE_OK; /* already retired */
	return eb_sq_audit_grant(c, tenant, "retired", id, now, "reason",
	                         reason, NULL, NULL);
}

int
eb_sq_grant_retire(void *be, const char *id, const char *reason, int64_t now)
{
	struct eb_sq_gstate gs;
	struct eb_sq_conn *c;
	int rc;

	if ((c = eb_sq_conn(be)) == NULL || eb_sq_tx_begin(c) != 0)
		return EB_STORE_ERROR;
	if ((rc = eb_sq_gstate_read(c, id, &gs)) != 0)
		goto out;
	switch (eb_grant_end_decide(gs.status, EB_STORE_GRANT_REVOKED)) {
	case EB_GRANT_END:
		rc = eb_sq_grant_end(c, id, gs.tenant, EB_STORE_GRANT_REVOKED,
		                     reason, NULL, now);
		if (rc == EB_STORE_OK)
			rc = grant_mark_retired(c, id, gs.tenant, reason, now);
		break;
	case EB_GRANT_END_NOOP: /* revoked already */
		rc = grant_mark_retired(c, id, gs.tenant, reason, now);
		break;
	default:
		rc = EB_STORE_CONFLICT;
	}
	eb_sq_gstate_finish(&gs);
out:
	return eb_sq_tx_end(c, rc, rc == EB_STORE_OK);
}

static int
grant_set_binding(struct eb_sq_conn *c, const char *id, const char *tenant,
                  const char *kind, const char *value, int64_t now,
                  const char *from)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = eb_sq_stmt(c, ST_GRANT_BIND)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, id) | eb_sq_bind_text(st, 2, kind) |
	    eb_sq_bind_text(st, 3, value) | sqlite3_bind_int64(st, 4, now))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	if ((rc = eb_sq_run(c, st, __func__)) != 0)
		return rc;
	return eb_sq_audit_grant(c, tenant, "bound", id, now, kind, value,
	                         "inherited_from", from);
}

/* Who a grant's person is at the IdP: issuer and subject, as stored. */
struct person {
	char *id; /* the grant's, for holder() */
	char *issuer, *subject;
};

static void
person_finish(struct person *p)
{
	eb_free(p->id);
	eb_free(p->issuer);
	eb_free(p->subject);
	memset(p, 0, sizeof(*p));
}

/* Fill p from the current row of st: [id,] issuer, subject; 0, or -1
 * when out of memory (p finished). */
static int
person_read(sqlite3_stmt *st, int with_id, struct person *p)
{
	struct eb_sq_rd r = {st, 0, 0};

	if (with_id)
		p->id = eb_sq_rd_text(&r);
	p->issuer = eb_sq_rd_text(&r);
	p->subject = eb_sq_rd_text(&r);
	if (r.oom) {
		person_finish(p);
		return -1;
	}
	return 0;
}
static int
read_person(sqlite3_stmt *st, void *p)
{
	return person_read(st, 0, p);
}
static int
read_holder(sqlite3_stmt *st, void *p)
{
	return person_read(st, 1, p);
}
static void
fin_person(void *p)
{
	person_finish(p);
}
static const struct eb_sq_rowtype RT_PERSON = {sizeof(struct person), NULL,
                                               read_person, fin_person};
static const struct eb_sq_rowtype RT_HOLDER = {sizeof(struct person), NULL,
                                               read_holder, fin_person};

/* The same person signed in for both grants (grant/policy.h). */
static int
same_person(const struct person *a, const struct person *b)
{
	return eb_grant_same_person(a->issuer, a->subject, b->issuer,
	                            b->subject);
}

static int
grant_person(struct eb_sq_conn *c, const char *id, struct person *p)
{
	sqlite3_stmt *st;

	memset(p, 0, sizeof(*p));
	if ((st = eb_sq_stmt(c, ST_GRANT_PERSON)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, id))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_one(c, st, &RT_PERSON, p, __func__);
}

/*
 * The active grant other than id that holds the enrollment (kind, value)
 * in tenant: OK with h filled, NOT_FOUND when there is none.
 */
static int
grant_holder(struct eb_sq_conn *c, const char *tenant, const char *kind,
             const char *value, const char *id, struct person *h)
{
	sqlite3_stmt *st;

	memset(h, 0, sizeof(*h));
	if ((st = eb_sq_stmt(c, ST_GRANT_HOLDER)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, tenant) | eb_sq_bind_text(st, 2, kind) |
	    eb_sq_bind_text(st, 3, value) | eb_sq_bind_text(st, 4, id))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_one(c, st, &RT_HOLDER, h, __func__);
}

/*
 * One active grant per enrollment (grant/policy.h): read, inside the
 * caller's transaction, the active grant other than id that holds (kind,
 * value) in tenant, into h, and whether its person is id's. The partial
 * unique index grants_active_binding (migration 4) refuses a second
 * holder even if the rule were bypassed.
 */
static int
enrollment_holder(struct eb_sq_conn *c, const char *id, const char *tenant,
                  const char *kind, const char *value,
                  struct eb_grant_bind_in *in, struct person *h)
{
	struct person me;
	int rc;

	if ((rc = grant_holder(c, tenant, kind, value, id, h)) ==
	    EB_STORE_NOT_FOUND)
		return EB_STORE_OK;
	if (rc != EB_STORE_OK)
		return rc;
	in->holder_found = 1;
	if ((rc = grant_person(c, id, &me)) != EB_STORE_OK)
		return rc;
	in->holder_same_person = same_person(&me, h);
	person_finish(&me);
	return EB_STORE_OK;
}

int
eb_sq_grant_supersede(void *be, const char *old_id, const char *new_id,
                      int64_t now)
{
	struct eb_grant_supersede_plan plan;
	struct eb_grant_supersede_in in;
	struct eb_sq_gstate o, n;
	struct person h;
	struct eb_sq_conn *c;
	int rc;

	if ((c = eb_sq_conn(be)) == NULL || eb_sq_tx_begin(c) != 0)
		return EB_STORE_ERROR;
	memset(&o, 0, sizeof(o));
	memset(&h, 0, sizeof(h));
	if ((rc = eb_sq_gstate_read(c, new_id, &n)) != 0)
		goto out;
	if ((rc = eb_sq_gstate_read(c, old_id, &o)) != 0)
		goto out_free;
	memset(&in, 0, sizeof(in));
	in.same_id = strcmp(old_id, new_id) == 0;
	in.same_tenant = strcmp(o.tenant, n.tenant) == 0;
	in.old_status = o.status;
	in.new_status = n.status;
	in.old_bound = o.bvalue != NULL;
	in.new_bound = n.bvalue != NULL;
	if (in.old_bound && !in.new_bound) {
		/* who else holds old's enrollment; old itself, about to
		 * end, does not count (one active holder: the index) */
		rc = grant_holder(c, n.tenant, o.bkind, o.bvalue, new_id, &h);
		if (rc != EB_STORE_OK && rc != EB_STORE_NOT_FOUND)
			goto out_free;
		in.holder_found =
		    rc == EB_STORE_OK && strcmp(h.id, old_id) != 0;
	}
	eb_grant_supersede_decide(&in, &plan);
	if ((rc = plan.rc) != EB_STORE_OK)
		goto out_free;
	if (plan.end_old && (rc = eb_sq_grant_end(
	                         c, old_id, o.tenant, EB_STORE_GRANT_SUPERSEDED,
	                         "re-authenticated", new_id, now)) != 0)
		goto out_free;
	if (plan.inherit)
		rc = grant_set_binding(c, new_id, n.tenant, o.bkind, o.bvalue,
		                       now, old_id);
out_free:
	person_finish(&h);
	eb_sq_gstate_finish(&o);
	eb_sq_gstate_finish(&n);
out:
	return eb_sq_tx_end(c, rc, rc == EB_STORE_OK);
}

int
eb_sq_grant_bind(void *be, const char *id, const char *kind, const char *value,
                 int64_t now)
{
	struct eb_grant_bind_in in;
	struct eb_sq_gstate gs;
	struct person h;
	struct eb_sq_conn *c;
	int rc;

	memset(&in, 0, sizeof(in));
	memset(&h, 0, sizeof(h));
	in.kind = kind;
	in.value = value;
	if (eb_grant_bind_decide(&in, &rc) == EB_GRANT_BIND_BAD)
		return rc;
	if ((c = eb_sq_conn(be)) == NULL || eb_sq_tx_begin(c) != 0)
		return EB_STORE_ERROR;
	if ((rc = eb_sq_gstate_read(c, id, &gs)) != 0)
		goto out;
	in.status = gs.status;
	in.bkind = gs.bkind;
	in.bvalue = gs.bvalue;
	/* the holder matters only to an active grant not yet bound */
	if (gs.status == EB_STORE_GRANT_ACTIVE && gs.bkind == NULL &&
	    gs.bvalue == NULL &&
	    (rc = enrollment_holder(c, id, gs.tenant, kind, value, &in, &h)) !=
	        EB_STORE_OK)
		goto out_free;
	switch (eb_grant_bind_decide(&in, &rc)) {
	case EB_GRANT_BIND_SUPERSEDE:
		if ((rc = eb_sq_grant_end(
		         c, h.id, gs.tenant, EB_STORE_GRANT_SUPERSEDED,
		         "re-enrolled", id, now)) != EB_STORE_OK)
			break;
		/* FALLTHROUGH */
	case EB_GRANT_BIND:
		rc =
		    grant_set_binding(c, id, gs.tenant, kind, value, now, NULL);
		break;
	default:
		break; /* rc is the rule's answer */
	}
out_free:
	person_finish(&h);
	eb_sq_gstate_finish(&gs);
out:
	return eb_sq_tx_end(c, rc, rc == EB_STORE_OK);
}

/* Bind a renewal outcome for ST_GRANT_UPSTREAM(_FENCED). */
static int
bind_upstream(sqlite3_stmt *st, const char *id,
              const struct eb_store_upstream *u, int64_t now)
{
	return eb_sq_bind_text(st, 1, id) |
	       sqlite3_bind_int64(st, 2, u->renewed_at) |
	       sqlite3_bind_int64(st, 3, u->next_at) |
	       sqlite3_bind_int64(st, 4, u->failing_since) |
	       eb_sq_bind_blob(st, 5, u->refresh_token, u->refresh_token_len) |
	       sqlite3_bind_int64(st, 6, now);
}

/*
 * Inside the caller's transaction: OK when grant id still holds the claim
 * token (the fence rule, grant/policy.h), LOST when not, NOT_FOUND when
 * there is no such grant or it is no longer active (nobody's work).
 */
static int
lease_held(struct eb_sq_conn *c, const char *id, const char *token)
{
	const char *held, *status;
	sqlite3_stmt *st;
	int rc;

	if ((st = eb_sq_stmt(c, ST_GRANT_LEASE_GET)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, id))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		held = (const char *)sqlite3_column_text(st, 0);
		status = (const char *)sqlite3_column_text(st, 1);
		if (eb_store_grant_status_parse(status) !=
		    EB_STORE_GRANT_ACTIVE)
			rc = EB_STORE_NOT_FOUND;
		else
			rc = eb_grant_lease_fenced(held, token) ? EB_STORE_OK
			                                        : EB_STORE_LOST;
	} else if (rc == SQLITE_DONE)
		rc = EB_STORE_NOT_FOUND;
	else
		rc = eb_sq_fail(c, rc, __func__);
	sqlite3_reset(st);
	return rc;
}

int
eb_sq_grant_set_upstream(void *be, const char *id,
                         const struct eb_store_upstream *u, int64_t now)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = eb_sq_conn(be)) == NULL)
		return EB_STORE_ERROR;
	if (u->lease_token == NULL) {
		/* unfenced (admin tools): the lease is left as is */
		if ((st = eb_sq_stmt(c, ST_GRANT_UPSTREAM)) == NULL)
			return EB_STORE_ERROR;
		if (bind_upstream(st, id, u, now))
			return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
		if ((rc = eb_sq_run(c, st, __func__)) == 0 &&
		    sqlite3_changes(c->db) == 0)
			rc = EB_STORE_NOT_FOUND;
		return rc;
	}
	if (eb_sq_tx_begin(c) != 0)
		return EB_STORE_ERROR;
	if ((rc = lease_held(c, id, u->lease_token)) != EB_STORE_OK)
		goto out;
	if ((st = eb_sq_stmt(c, ST_GRANT_UPSTREAM_FENCED)) == NULL) {
		rc = EB_STORE_ERROR;
		goto out;
	}
	if (bind_upstream(st, id, u, now)) {
		rc = eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
		goto out;
	}
	if ((rc = eb_sq_run(c, st, __func__)) == 0 &&
	    sqlite3_changes(c->db) == 0)
		rc = EB_STORE_NOT_FOUND; /* ended meanwhile */
out:
	return eb_sq_tx_end(c, rc, rc == EB_STORE_OK);
}

/*
 * The claim rule (grant/policy.h) on the rows the due query returned: the
 * query is an index range, the rule decides; a row it refuses is dropped
 * and never leased.
 */
static void
due_only(struct eb_store_grant_list *l, int64_t now)
{
	struct eb_grant_lease_state ls;
	size_t i, n = 0;

	for (i = 0; i < l->n; i++) {
		ls.status = l->v[i].status;
		ls.upstream_next_at = l->v[i].upstream_next_at;
		ls.expires = l->v[i].expires;
		ls.lease_until = l->v[i].lease_until;
		if (eb_grant_lease_claimable(&ls, now)) {
			if (n != i)
				l->v[n] = l->v[i];
			n++;
			continue;
		}
		log_warnx("store: grant %.8s is not due; not claimed",
		          l->v[i].id);
		eb_store_grant_finish(&l->v[i]);
	}
	l->n = n;
}

int
eb_sq_grant_list_due(void *be, const char *tenant, int64_t now, int64_t lease,
                     size_t limit, struct eb_store_grant_list *out)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((c = eb_sq_conn(be)) == NULL ||
	    (lease > 0 && eb_sq_tx_begin(c) != 0))
		return EB_STORE_ERROR;
	if ((st = eb_sq_stmt(c, ST_GRANT_DUE)) == NULL) {
		rc = EB_STORE_ERROR;
		goto out;
	}
	if (eb_sq_bind_text(st, 1, tenant) | sqlite3_bind_int64(st, 2, now) |
	    sqlite3_bind_int64(
	        st, 3, limit > 0 && limit < INT64_MAX ? (int64_t)limit : -1)) {
		rc = eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
		goto out;
	}
	rc = eb_sq_all(c, st, &eb_sq_rt_grant, (void **)&out->v, &out->n,
	               __func__);
	if (rc == EB_STORE_OK)
		due_only(out, now);
	for (i = 0; rc == EB_STORE_OK && lease > 0 && i < out->n; i++) {
		if ((st = eb_sq_stmt(c, ST_GRANT_LEASE)) == NULL) {
			rc = EB_STORE_ERROR;
			break;
		}
		if (eb_sq_bind_text(st, 1, out->v[i].id) |
		    sqlite3_bind_int64(st, 2, now + lease)) {
			rc = eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
			break;
		}
		if ((rc = eb_sq_run(c, st, __func__)) == 0)
			out->v[i].upstream_next_at = now + lease;
	}
out:
	if (lease > 0)
		rc = eb_sq_tx_end(c, rc, rc == EB_STORE_OK);
	if (rc != EB_STORE_OK)
		eb_store_grant_list_finish(out);
	return rc;
}

/* The tenant's live leases at now, every owner's. */
static int
live_leases(struct eb_sq_conn *c, const char *tenant, int64_t now, size_t *out)
{
	sqlite3_stmt *st;
	int64_t n = 0;
	int rc;

	*out = 0;
	if ((st = eb_sq_stmt(c, ST_GRANT_LIVE)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, tenant) | sqlite3_bind_int64(st, 2, now))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	if ((rc = eb_sq_i64(c, st, &n, __func__)) == EB_STORE_OK && n > 0)
		*out = (size_t)n;
	return rc;
}

/* Give g (a claimable row) to owner until until, with a fresh fence. */
static int
claim_one(struct eb_sq_conn *c, struct eb_store_grant *g, const char *owner,
          int64_t until)
{
	sqlite3_stmt *st;
	char *token, *own;
	int rc;

	if ((token = eb_rand_token(16)) == NULL ||
	    (own = eb_strdup(owner)) == NULL) {
		eb_free(token);
		log_warnx("store: no lease token (out of memory or entropy)");
		return EB_STORE_ERROR;
	}
	if ((st = eb_sq_stmt(c, ST_GRANT_CLAIM)) == NULL) {
		rc = EB_STORE_ERROR;
		goto out;
	}
	if (eb_sq_bind_text(st, 1, g->id) | sqlite3_bind_int64(st, 2, until) |
	    eb_sq_bind_text(st, 3, owner) | eb_sq_bind_text(st, 4, token)) {
		rc = eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
		goto out;
	}
	if ((rc = eb_sq_run(c, st, __func__)) != EB_STORE_OK)
		goto out;
	eb_free(g->lease_owner);
	eb_free(g->lease_token);
	g->lease_owner = own;
	g->lease_token = token;
	g->lease_until = until;
	g->upstream_next_at = until;
	return EB_STORE_OK;
out:
	eb_free(own);
	eb_free(token);
	return rc;
}

int
eb_sq_grant_claim_due(void *be, const char *tenant, int64_t now, int64_t lease,
                      size_t limit, size_t cap, const char *owner,
                      struct eb_store_grant_list *out)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	size_t live = 0, n, i;
	int rc = EB_STORE_OK;

	memset(out, 0, sizeof(*out));
	if ((c = eb_sq_conn(be)) == NULL || eb_sq_tx_begin(c) != 0)
		return EB_STORE_ERROR;
	/* one writer at a time (BEGIN IMMEDIATE): the count holds until
	 * the claims below are committed */
	if (cap > 0 && (rc = live_leases(c, tenant, now, &live)) != 0)
		goto out;
	if ((n = eb_grant_lease_claim_max(limit, cap, live)) == 0)
		goto out;
	if ((st = eb_sq_stmt(c, ST_GRANT_CLAIMABLE)) == NULL) {
		rc = EB_STORE_ERROR;
		goto out;
	}
	if (eb_sq_bind_text(st, 1, tenant) | sqlite3_bind_int64(st, 2, now) |
	    sqlite3_bind_int64(st, 3,
	                       n < INT64_MAX ? (int64_t)n : (int64_t)-1)) {
		rc = eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
		goto out;
	}
	rc = eb_sq_all(c, st, &eb_sq_rt_grant, (void **)&out->v, &out->n,
	               __func__);
	if (rc == EB_STORE_OK)
		due_only(out, now);
	for (i = 0; rc == EB_STORE_OK && i < out->n; i++)
		rc = claim_one(c, &out->v[i], owner, now + lease);
out:
	rc = eb_sq_tx_end(c, rc, rc == EB_STORE_OK);
	if (rc != EB_STORE_OK)
		eb_store_grant_list_finish(out);
	return rc;
}

int
eb_sq_grant_release(void *be, const char *id, const char *lease_token,
                    int64_t now)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = eb_sq_conn(be)) == NULL || eb_sq_tx_begin(c) != 0)
		return EB_STORE_ERROR;
	rc = lease_held(c, id, lease_token);
	if (rc == EB_STORE_LOST || rc == EB_STORE_NOT_FOUND) {
		rc = EB_STORE_OK; /* no longer ours: nothing to hand back */
		goto out;
	}
	if (rc != EB_STORE_OK)
		goto out;
	if ((st = eb_sq_stmt(c, ST_GRANT_RELEASE)) == NULL) {
		rc = EB_STORE_ERROR;
		goto out;
	}
	if (eb_sq_bind_text(st, 1, id) | sqlite3_bind_int64(st, 2, now)) {
		rc = eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
		goto out;
	}
	rc = eb_sq_run(c, st, __func__);
out:
	return eb_sq_tx_end(c, rc, rc == EB_STORE_OK);
}

int
eb_sq_grant_count(void *be, const char *tenant, int status, int failing_only,
                  int64_t *out)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;

	*out = 0;
	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_GRANT_COUNT)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, tenant) |
	    eb_sq_bind_text(st, 2,
	                    status >= 0 ? eb_store_grant_status_name(status)
	                                : NULL) |
	    sqlite3_bind_int(st, 3, failing_only != 0))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_i64(c, st, out, __func__);
}
