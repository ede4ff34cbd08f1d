/*
 * The PostgreSQL backend's simpler operations: audit events, login flows
 * (a take is one DELETE ... RETURNING, so of concurrent takers exactly one
 * gets the row), signing keys (one current key per tenant, kept by a lock
 * row all key writers queue on), mapping overrides, the sweep (batches of
 * EB_PG_SWEEP_BATCH rows, each its own statement, so no long transaction
 * holds locks) and named leases (SCALEOUT 3.10).
 */
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "grant/policy.h"
#include "store/pg/pg_int.h"

/* ---- audit ---- */

static int
audit_add_fn(struct eb_pg_conn *c, void *arg)
{
	const struct eb_store_audit *ev = arg;
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	if (eb_pg_args_row(&a, &eb_columns_audit, ev) != 0)
		return EB_STORE_ERROR;
	return eb_pg_run(c, PS_AUDIT_ADD, &a, NULL);
}

int
eb_pg_audit_add(void *be, const struct eb_store_audit *ev)
{
	return eb_pg_with(be, audit_add_fn, (void *)ev);
}

struct audit_list {
	const char *tenant;
	size_t limit;
	struct eb_store_audit_list *out;
};

static int
audit_list_fn(struct eb_pg_conn *c, void *arg)
{
	struct audit_list *q = arg;
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->tenant);
	eb_pg_args_int8(&a, (int64_t)q->limit);
	return eb_pg_all(c, PS_AUDIT_LIST, &a, &eb_pg_rt_audit,
	                 (void **)&q->out->v, &q->out->n);
}

int
eb_pg_audit_list(void *be, const char *tenant, size_t limit,
                 struct eb_store_audit_list *out)
{
	struct audit_list q = {tenant, limit, out};

	memset(out, 0, sizeof(*out));
	if (limit == 0 || limit > EB_PG_AUDIT_MAX)
		q.limit = EB_PG_AUDIT_MAX;
	return eb_pg_with(be, audit_list_fn, &q);
}

struct audit_query {
	const struct eb_store_audit_filter *f;
	size_t limit;
	struct eb_store_audit_list *out;
};

static int
audit_query_fn(struct eb_pg_conn *c, void *arg)
{
	struct audit_query *q = arg;
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->f->tenant);
	eb_pg_args_text(&a, q->f->event);
	eb_pg_args_int8(&a, q->f->since);
	eb_pg_args_int8(&a, q->f->after_id > 0 ? q->f->after_id : 0);
	eb_pg_args_int8(&a, (int64_t)q->limit);
	eb_pg_args_int8(&a, q->f->oldest_first != 0);
	return eb_pg_all(c, PS_AUDIT_QUERY, &a, &eb_pg_rt_audit,
	                 (void **)&q->out->v, &q->out->n);
}

int
eb_pg_audit_query(void *be, const struct eb_store_audit_filter *f,
                  struct eb_store_audit_list *out)
{
	struct audit_query q = {f, f->limit, out};

	memset(out, 0, sizeof(*out));
	if (q.limit == 0 || q.limit > EB_PG_AUDIT_MAX)
		q.limit = EB_PG_AUDIT_MAX;
	return eb_pg_with(be, audit_query_fn, &q);
}

struct audit_prune {
	int64_t before;
	size_t removed;
};

/* Batches of EB_PG_SWEEP_BATCH rows, each its own statement, as the sweep. */
static int
audit_prune_fn(struct eb_pg_conn *c, void *arg)
{
	struct audit_prune *q = arg;
	struct eb_pg_args a;
	size_t n;
	int rc;

	do {
		eb_pg_args_init(&a);
		eb_pg_args_int8(&a, q->before);
		eb_pg_args_int8(&a, EB_PG_SWEEP_BATCH);
		if ((rc = eb_pg_run(c, PS_AUDIT_PRUNE, &a, &n)) != EB_STORE_OK)
			return rc;
		q->removed += n;
	} while (n == EB_PG_SWEEP_BATCH);
	return EB_STORE_OK;
}

int
eb_pg_audit_prune(void *be, int64_t before, size_t *removed)
{
	struct audit_prune q = {before, 0};
	int rc;

	rc = eb_pg_with(be, audit_prune_fn, &q);
	*removed = q.removed;
	return rc;
}

/* ---- login flows ---- */

static int
flow_put_fn(struct eb_pg_conn *c, void *arg)
{
	const struct eb_store_flow *f = arg;
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	if (eb_pg_args_row(&a, &eb_columns_flow, f) != 0)
		return EB_STORE_ERROR;
	return eb_pg_run(c, PS_FLOW_PUT, &a, NULL);
}

int
eb_pg_flow_put(void *be, const struct eb_store_flow *f)
{
	if (eb_store_flow_kind_name(f->kind) == NULL || f->id == NULL) {
		log_warnx("store: flow without id or with a bad kind");
		return EB_STORE_ERROR;
	}
	/* one upsert: concurrent puts of one id replace, never collide */
	return eb_pg_with(be, flow_put_fn, (void *)f);
}

struct flow_q {
	int stmt;
	const char *key;
	struct eb_store_flow *out;
};

static int
flow_q_fn(struct eb_pg_conn *c, void *arg)
{
	struct flow_q *q = arg;
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->key);
	return eb_pg_one(c, q->stmt, &a, &eb_pg_rt_flow, q->out);
}

/*
 * Run stmt for the flow keyed key into out: EXPIRED (nothing handed out)
 * when it has expired at now. flow_get reads; flow_take's statement is a
 * DELETE ... RETURNING, so the row goes to one taker only.
 */
static int
flow_by(void *be, int stmt, const char *key, int64_t now,
        struct eb_store_flow *out)
{
	struct flow_q q = {stmt, key, out};
	int rc;

	memset(out, 0, sizeof(*out));
	if (key == NULL)
		return EB_STORE_NOT_FOUND;
	if ((rc = eb_pg_with(be, flow_q_fn, &q)) == EB_STORE_OK &&
	    out->expires <= now) {
		eb_store_flow_finish(out);
		rc = EB_STORE_EXPIRED;
	}
	return rc;
}

int
eb_pg_flow_get(void *be, int by, const char *key, int64_t now,
               struct eb_store_flow *out)
{
	return flow_by(
	    be, by == EB_STORE_FLOW_BY_STATE ? PS_FLOW_BY_STATE : PS_FLOW_BY_ID,
	    key, now, out);
}

int
eb_pg_flow_take(void *be, int by, const char *key, int64_t now,
                struct eb_store_flow *out)
{
	return flow_by(be,
	               by == EB_STORE_FLOW_BY_STATE ? PS_FLOW_TAKE_STATE
	                                            : PS_FLOW_TAKE_ID,
	               key, now, out);
}

/* ---- signing keys ---- */

/* k's parameters; a key without tenant is everyone's (""). */
static int
key_args(struct eb_pg_args *a, const struct eb_store_key *k)
{
	struct eb_store_key row = *k;

	if (row.tenant == NULL)
		row.tenant = "";
	eb_pg_args_init(a);
	return eb_pg_args_row(a, &eb_columns_key, &row);
}

/* Queue behind other key writers (the lock row), in the caller's tx. */
static int
key_guard(struct eb_pg_conn *c)
{
	int rc;

	if ((rc = eb_pg_run(c, PS_KEY_GUARD_ADD, NULL, NULL)) != EB_STORE_OK)
		return rc;
	return eb_pg_run(c, PS_KEY_GUARD_LOCK, NULL, NULL);
}

/* Insert k; CONFLICT on a duplicate kid or a second current key. */
static int
key_insert(struct eb_pg_conn *c, const struct eb_store_key *k)
{
	struct eb_pg_args a;
	size_t n = 0;
	int rc;

	if (key_args(&a, k) != 0)
		return EB_STORE_ERROR;
	if ((rc = eb_pg_run(c, PS_KEY_INS, &a, &n)) != EB_STORE_OK)
		return rc;
	return n == 1 ? EB_STORE_OK : EB_STORE_CONFLICT;
}

static int
key_put_tx(struct eb_pg_conn *c, void *arg)
{
	int rc;

	if ((rc = key_guard(c)) != EB_STORE_OK)
		return rc;
	return key_insert(c, arg);
}

int
eb_pg_key_put(void *be, const struct eb_store_key *k)
{
	return eb_pg_in_tx(be, key_put_tx, (void *)k);
}

struct key_rot {
	const struct eb_store_key *k;
	int64_t retire_at, not_after;
};

/*
 * Under the key guard: CONFLICT when the tenant's current key is still
 * pending at k->created (the rotation rule, grant/policy.h).
 */
static int
rotation_free(struct eb_pg_conn *c, const struct eb_store_key *k)
{
	struct eb_pg_args a;
	PGresult *r;
	int64_t at;
	int i, rc;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, k->tenant != NULL ? k->tenant : "");
	if ((rc = eb_pg_exec(c, PS_KEY_CURRENT, &a, &r)) != EB_STORE_OK)
		return rc;
	for (i = 0; rc == EB_STORE_OK && i < PQntuples(r); i++) {
		if (eb_pg_get_int8(r, i, 0, &at) != 0)
			rc = EB_STORE_ERROR;
		else if (!eb_key_rotation_free(at, k->created))
			rc = EB_STORE_CONFLICT;
	}
	PQclear(r);
	return rc;
}

static int
key_rotate_tx(struct eb_pg_conn *c, void *arg)
{
	struct key_rot *q = arg;
	struct eb_pg_args a;
	int rc;

	if ((rc = key_guard(c)) != EB_STORE_OK ||
	    (rc = rotation_free(c, q->k)) != EB_STORE_OK)
		return rc;
	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->k->tenant != NULL ? q->k->tenant : "");
	eb_pg_args_int8(&a, q->retire_at);
	eb_pg_args_int8(&a, q->not_after);
	if ((rc = eb_pg_run(c, PS_KEY_RETIRE_CURRENT, &a, NULL)) != EB_STORE_OK)
		return rc;
	return key_insert(c, q->k);
}

int
eb_pg_key_rotate(void *be, const struct eb_store_key *k, int64_t retire_at,
                 int64_t not_after)
{
	struct key_rot q = {k, retire_at, not_after};

	if (k == NULL || k->retired_at != 0) {
		log_warnx("store: key rotation needs a current key");
		return EB_STORE_ERROR;
	}
	return eb_pg_in_tx(be, key_rotate_tx, &q);
}

struct key_q {
	const char *tenant;
	struct eb_store_key_list *out;
};

static int
key_list_fn(struct eb_pg_conn *c, void *arg)
{
	struct key_q *q = arg;
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->tenant);
	return eb_pg_all(c, PS_KEY_LIST, &a, &eb_pg_rt_key, (void **)&q->out->v,
	                 &q->out->n);
}

int
eb_pg_key_list(void *be, const char *tenant, struct eb_store_key_list *out)
{
	struct key_q q = {tenant, out};

	memset(out, 0, sizeof(*out));
	return eb_pg_with(be, key_list_fn, &q);
}

struct key_ret {
	const char *kid;
	int64_t retired_at, not_after;
};

static int
key_retire_fn(struct eb_pg_conn *c, void *arg)
{
	struct key_ret *q = arg;
	struct eb_pg_args a;
	size_t n = 0;
	int rc;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->kid);
	eb_pg_args_int8(&a, q->retired_at);
	eb_pg_args_int8(&a, q->not_after);
	if ((rc = eb_pg_run(c, PS_KEY_RETIRE, &a, &n)) != EB_STORE_OK)
		return rc;
	return n > 0 ? EB_STORE_OK : EB_STORE_NOT_FOUND;
}

int
eb_pg_key_retire(void *be, const char *kid, int64_t retired_at,
                 int64_t not_after)
{
	struct key_ret q = {kid, retired_at, not_after};

	return eb_pg_with(be, key_retire_fn, &q);
}

/* ---- mapping overrides ---- */

static int
map_put_fn(struct eb_pg_conn *c, void *arg)
{
	const struct eb_store_mapping *m = arg;
	struct eb_store_mapping row = *m;
	struct eb_pg_args a;

	/* one time for both, updated, else created (an upsert keeps
	 * created_at and takes updated_at) */
	row.created = row.updated = m->updated ? m->updated : m->created;
	eb_pg_args_init(&a);
	if (eb_pg_args_row(&a, &eb_columns_mapping, &row) != 0)
		return EB_STORE_ERROR;
	return eb_pg_run(c, PS_MAP_PUT, &a, NULL);
}

int
eb_pg_mapping_put(void *be, const struct eb_store_mapping *m)
{
	return eb_pg_with(be, map_put_fn, (void *)m);
}

struct map_q {
	const char *tenant, *subject;
	struct eb_store_mapping *out;
};

static int
map_q_fn(struct eb_pg_conn *c, void *arg)
{
	struct map_q *q = arg;
	struct eb_pg_args a;
	size_t n = 0;
	int rc;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->tenant);
	eb_pg_args_text(&a, q->subject);
	if (q->out != NULL)
		return eb_pg_one(c, PS_MAP_GET, &a, &eb_pg_rt_mapping, q->out);
	if ((rc = eb_pg_run(c, PS_MAP_DEL, &a, &n)) != EB_STORE_OK)
		return rc;
	return n > 0 ? EB_STORE_OK : EB_STORE_NOT_FOUND;
}

int
eb_pg_mapping_get(void *be, const char *tenant, const char *subject,
                  struct eb_store_mapping *out)
{
	struct map_q q = {tenant, subject, out};

	memset(out, 0, sizeof(*out));
	return eb_pg_with(be, map_q_fn, &q);
}

int
eb_pg_mapping_delete(void *be, const char *tenant, const char *subject)
{
	struct map_q q = {tenant, subject, NULL};

	return eb_pg_with(be, map_q_fn, &q);
}

struct map_list_q {
	const char *tenant;
	struct eb_store_mapping_list *out;
};

static int
map_list_fn(struct eb_pg_conn *c, void *arg)
{
	struct map_list_q *q = arg;
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->tenant);
	return eb_pg_all(c, PS_MAP_LIST, &a, &eb_pg_rt_mapping,
	                 (void **)&q->out->v, &q->out->n);
}

int
eb_pg_mapping_list(void *be, const char *tenant,
                   struct eb_store_mapping_list *out)
{
	struct map_list_q q = {tenant, out};

	memset(out, 0, sizeof(*out));
	return eb_pg_with(be, map_list_fn, &q);
}

/* ---- sweep ---- */

struct sweep {
	int64_t now;
	size_t removed;
};

static int
sweep_fn(struct eb_pg_conn *c, void *arg)
{
	static const struct {
		int stmt;
		int64_t retain;
	} steps[] = {
	    {PS_FLOW_SWEEP, 0},
	    {PS_CODE_SWEEP, EB_PG_RETAIN},
	    {PS_TOKEN_SWEEP, EB_PG_RETAIN},
	    {PS_TOKEN_SUCC_SWEEP, 0}, /* wipes, also counted */
	};
	struct sweep *q = arg;
	struct eb_pg_args a;
	size_t i, n;
	int rc;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		do {
			eb_pg_args_init(&a);
			eb_pg_args_int8(&a, q->now - steps[i].retain);
			eb_pg_args_int8(&a, EB_PG_SWEEP_BATCH);
			if ((rc = eb_pg_run(c, steps[i].stmt, &a, &n)) !=
			    EB_STORE_OK)
				return rc;
			q->removed += n;
		} while (n == EB_PG_SWEEP_BATCH);
	}
	return EB_STORE_OK;
}

int
eb_pg_sweep(void *be, int64_t now, size_t *removed)
{
	struct sweep q = {now, 0};
	int rc;

	if (removed != NULL)
		*removed = 0;
	/* each batch commits on its own: idempotent, and no long locks */
	rc = eb_pg_with(be, sweep_fn, &q);
	if (removed != NULL)
		*removed = q.removed;
	return rc;
}

/* ---- named leases ---- */

struct lock_q {
	const char *name, *owner;
	int64_t ttl, now;
};

static int
lock_try_fn(struct eb_pg_conn *c, void *arg)
{
	struct lock_q *q = arg;
	struct eb_pg_args a;
	size_t n = 0;
	int rc;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->name);
	eb_pg_args_text(&a, q->owner);
	eb_pg_args_int8(&a, q->now);
	eb_pg_args_int8(&a, q->ttl);
	if ((rc = eb_pg_run(c, PS_LOCK_TRY, &a, &n)) != EB_STORE_OK)
		return rc;
	return n == 1 ? EB_STORE_OK : EB_STORE_CONFLICT;
}

int
eb_pg_lock_try(void *be, const char *name, const char *owner, int64_t ttl,
               int64_t now)
{
	struct lock_q q = {name, owner, ttl, now};

	if (name == NULL || owner == NULL || ttl <= 0) {
		log_warnx("store: lock without a name, an owner or a time");
		return EB_STORE_ERROR;
	}
	return eb_pg_with(be, lock_try_fn, &q);
}

static int
lock_release_fn(struct eb_pg_conn *c, void *arg)
{
	struct lock_q *q = arg;
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->name);
	eb_pg_args_text(&a, q->owner);
	return eb_pg_run(c, PS_LOCK_RELEASE, &a, NULL);
}

int
eb_pg_lock_release(void *be, const char *name, const char *owner)
{
	struct lock_q q = {name, owner, 0, 0};

	if (name == NULL || owner == NULL)
		return EB_STORE_OK;
	return eb_pg_with(be, lock_release_fn, &q);
}

/* ---- re-sealing (enrollbridge reseal) ---- */

struct sealed_q {
	const char *after;
	size_t limit;
	struct eb_store_grant_list *out;
};

static int
list_sealed_fn(struct eb_pg_conn *c, void *arg)
{
	struct sealed_q *q = arg;
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->after != NULL ? q->after : "");
	if (q->limit > 0 && q->limit < INT64_MAX)
		eb_pg_args_int8(&a, (int64_t)q->limit);
	else
		eb_pg_args_text(&a, NULL); /* LIMIT NULL: all */
	return eb_pg_all(c, PS_GRANT_SEALED, &a, &eb_pg_rt_grant,
	                 (void **)&q->out->v, &q->out->n);
}

int
eb_pg_grant_list_sealed(void *be, const char *after, size_t limit,
                        struct eb_store_grant_list *out)
{
	struct sealed_q q = {after, limit, out};

	memset(out, 0, sizeof(*out));
	return eb_pg_with(be, list_sealed_fn, &q);
}

/* A compare and swap: statement cas ($1 the row's key, $2 the old value,
 * $3 the new one); when it changed nothing, exists ($1) tells CONFLICT
 * from NOT_FOUND. */
struct cas_q {
	int cas, exists;
	const char *key;
	const uint8_t *old, *next;
	size_t old_len, next_len;
};

static int
cas_fn(struct eb_pg_conn *c, void *arg)
{
	struct cas_q *q = arg;
	struct eb_pg_args a;
	size_t n = 0;
	int rc;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->key);
	eb_pg_args_blob(&a, q->old, q->old_len);
	eb_pg_args_blob(&a, q->next, q->next_len);
	if ((rc = eb_pg_run(c, q->cas, &a, &n)) != EB_STORE_OK || n > 0)
		return rc;
	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->key);
	if ((rc = eb_pg_run(c, q->exists, &a, &n)) != EB_STORE_OK)
		return rc;
	return n > 0 ? EB_STORE_CONFLICT : EB_STORE_NOT_FOUND;
}

int
eb_pg_grant_reseal(void *be, const char *id, const uint8_t *old, size_t old_len,
                   const uint8_t *next, size_t next_len)
{
	struct cas_q q = {PS_GRANT_RESEAL, PS_GRANT_EXISTS, id, old, next,
	                  old_len,         next_len};

	if (id == NULL || old == NULL || old_len == 0 || next == NULL ||
	    next_len == 0)
		return EB_STORE_ERROR;
	return eb_pg_with(be, cas_fn, &q);
}

int
eb_pg_key_reseal(void *be, const char *kid, const uint8_t *old, size_t old_len,
                 const uint8_t *next, size_t next_len)
{
	struct cas_q q = {PS_KEY_RESEAL, PS_KEY_EXISTS, kid,     old,
	                  next,          old_len,       next_len};

	if (kid == NULL || old == NULL || old_len == 0 || next == NULL ||
	    next_len == 0)
		return EB_STORE_ERROR;
	return eb_pg_with(be, cas_fn, &q);
}
