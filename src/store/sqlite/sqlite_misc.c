/*
 * The rest of the SQLite backend's operations: audit events (and the event
 * of a grant change), login flows, named leases, signing keys and their
 * rotation, re-sealing (enrollbridge reseal), mapping overrides and the
 * sweep of expired rows.
 */
#include "store/sqlite/sqlite_int.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "grant/policy.h"

/* ---- audit ------------------------------------------------------------ */

static int
audit_insert(struct eb_sq_conn *c, const struct eb_store_audit *ev)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = eb_sq_stmt(c, ST_AUDIT_ADD)) == NULL)
		return EB_STORE_ERROR;
	if ((rc = eb_sq_bind_row(c, st, &eb_columns_audit, ev, __func__)) != 0)
		return rc;
	return eb_sq_run(c, st, __func__);
}

/*
 * Record a change of grant id as event "grant.<what>", with up to two
 * string fields as detail (NULL values left out), in the caller's
 * transaction.
 */
int
eb_sq_audit_grant(struct eb_sq_conn *c, const char *tenant, const char *what,
                  const char *id, int64_t now, const char *k1, const char *v1,
                  const char *k2, const char *v2)
{
	struct eb_buf b;
	struct eb_store_audit ev = {0};
	char event[48];
	int rc = EB_STORE_ERROR, sep = 0;

	snprintf(event, sizeof(event), "grant.%s", what);
	eb_buf_init(&b, AUDIT_DETAIL_MAX);
	if (eb_buf_addc(&b, '{') != 0)
		goto out;
	if (v1 != NULL) {
		if (eb_buf_add_json_str(&b, k1) || eb_buf_addc(&b, ':') ||
		    eb_buf_add_json_str(&b, v1))
			goto out;
		sep = 1;
	}
	if (v2 != NULL) {
		if ((sep && eb_buf_addc(&b, ',')) ||
		    eb_buf_add_json_str(&b, k2) || eb_buf_addc(&b, ':') ||
		    eb_buf_add_json_str(&b, v2))
			goto out;
	}
	if (eb_buf_addc(&b, '}') != 0)
		goto out;
	/* the record is only read: its strings stay the caller's */
	ev.ts = now;
	ev.tenant = (char *)tenant;
	ev.event = event;
	ev.subject = (char *)id;
	ev.detail = (char *)eb_buf_str(&b);
	rc = audit_insert(c, &ev);
out:
	if (rc == EB_STORE_ERROR && b.len == 0)
		log_warnx("store: out of memory");
	eb_buf_finish(&b);
	return rc;
}

int
eb_sq_audit_add(void *be, const struct eb_store_audit *ev)
{
	struct eb_sq_conn *c;

	if ((c = eb_sq_conn(be)) == NULL)
		return EB_STORE_ERROR;
	return audit_insert(c, ev);
}

int
eb_sq_audit_list(void *be, const char *tenant, size_t limit,
                 struct eb_store_audit_list *out)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if (limit == 0 || limit > AUDIT_LIST_MAX)
		limit = AUDIT_LIST_MAX;
	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_AUDIT_LIST)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, tenant) |
	    sqlite3_bind_int64(st, 2, (int64_t)limit))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_all(c, st, &eb_sq_rt_audit, (void **)&out->v, &out->n,
	                 __func__);
}

int
eb_sq_audit_query(void *be, const struct eb_store_audit_filter *f,
                  struct eb_store_audit_list *out)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	size_t limit = f->limit;

	memset(out, 0, sizeof(*out));
	if (limit == 0 || limit > AUDIT_LIST_MAX)
		limit = AUDIT_LIST_MAX;
	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_AUDIT_QUERY)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, f->tenant) |
	    eb_sq_bind_text(st, 2, f->event) |
	    sqlite3_bind_int64(st, 3, f->since) |
	    sqlite3_bind_int64(st, 4, f->after_id > 0 ? f->after_id : 0) |
	    sqlite3_bind_int64(st, 5, (int64_t)limit) |
	    sqlite3_bind_int(st, 6, f->oldest_first != 0))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_all(c, st, &eb_sq_rt_audit, (void **)&out->v, &out->n,
	                 __func__);
}

/* Batches of AUDIT_PRUNE_BATCH rows, each its own implicit transaction,
 * so that a large backlog never holds the write lock for long. */
int
eb_sq_audit_prune(void *be, int64_t before, size_t *removed)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	size_t n;
	int rc;

	*removed = 0;
	if ((c = eb_sq_conn(be)) == NULL)
		return EB_STORE_ERROR;
	do {
		if ((st = eb_sq_stmt(c, ST_AUDIT_PRUNE)) == NULL)
			return EB_STORE_ERROR;
		if (sqlite3_bind_int64(st, 1, before) |
		    sqlite3_bind_int64(st, 2, AUDIT_PRUNE_BATCH))
			return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
		if ((rc = eb_sq_run(c, st, __func__)) != EB_STORE_OK)
			return rc;
		n = (size_t)sqlite3_changes(c->db);
		*removed += n;
	} while (n == AUDIT_PRUNE_BATCH);
	return EB_STORE_OK;
}

/* ---- login flows ------------------------------------------------------ */

static int
flow_select(struct eb_sq_conn *c, int by, const char *key,
            struct eb_store_flow *out)
{
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if (key == NULL)
		return EB_STORE_NOT_FOUND;
	st = eb_sq_stmt(c, by == EB_STORE_FLOW_BY_STATE ? ST_FLOW_BY_STATE
	                                                : ST_FLOW_BY_ID);
	if (st == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, key))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_one(c, st, &eb_sq_rt_flow, out, __func__);
}

static int
flow_delete(struct eb_sq_conn *c, const char *id)
{
	sqlite3_stmt *st;

	if ((st = eb_sq_stmt(c, ST_FLOW_DEL)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, id))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_run(c, st, __func__);
}

int
eb_sq_flow_put(void *be, const struct eb_store_flow *f)
{
	const char *kind = eb_store_flow_kind_name(f->kind);
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	int rc;

	if (kind == NULL || f->id == NULL) {
		log_warnx("store: flow without id or with a bad kind");
		return EB_STORE_ERROR;
	}
	if ((c = eb_sq_conn(be)) == NULL || eb_sq_tx_begin(c) != 0)
		return EB_STORE_ERROR;
	if ((rc = flow_delete(c, f->id)) != 0)
		goto out;
	if ((st = eb_sq_stmt(c, ST_FLOW_INS)) == NULL) {
		rc = EB_STORE_ERROR;
		goto out;
	}
	if ((rc = eb_sq_bind_row(c, st, &eb_columns_flow, f, __func__)) != 0)
		goto out;
	rc = eb_sq_run(c, st, __func__);
out:
	return eb_sq_tx_end(c, rc, rc == EB_STORE_OK);
}

int
eb_sq_flow_get(void *be, int by, const char *key, int64_t now,
               struct eb_store_flow *out)
{
	struct eb_sq_conn *c;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((c = eb_sq_conn(be)) == NULL)
		return EB_STORE_ERROR;
	if ((rc = flow_select(c, by, key, out)) == EB_STORE_OK &&
	    out->expires <= now) {
		eb_store_flow_finish(out);
		rc = EB_STORE_EXPIRED;
	}
	return rc;
}

int
eb_sq_flow_take(void *be, int by, const char *key, int64_t now,
                struct eb_store_flow *out)
{
	struct eb_sq_conn *c;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((c = eb_sq_conn(be)) == NULL || eb_sq_tx_begin(c) != 0)
		return EB_STORE_ERROR;
	rc = flow_select(c, by, key, out);
	if (rc == EB_STORE_OK) {
		if ((rc = flow_delete(c, out->id)) == EB_STORE_OK &&
		    out->expires <= now)
			rc = EB_STORE_EXPIRED;
	}
	rc = eb_sq_tx_end(c, rc, rc == EB_STORE_OK || rc == EB_STORE_EXPIRED);
	if (rc != EB_STORE_OK)
		eb_store_flow_finish(out);
	return rc;
}

/* ---- named leases ----------------------------------------------------- */

int
eb_sq_lock_try(void *be, const char *name, const char *owner, int64_t ttl,
               int64_t now)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	int rc;

	if (name == NULL || owner == NULL || ttl <= 0) {
		log_warnx("store: lock_try needs a name, an owner and a ttl");
		return EB_STORE_ERROR;
	}
	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_LOCK_TRY)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, name) | eb_sq_bind_text(st, 2, owner) |
	    sqlite3_bind_int64(st, 3, now) | sqlite3_bind_int64(st, 4, ttl))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	/* no row written: another owner's lease is still live */
	if ((rc = eb_sq_run(c, st, __func__)) == 0 &&
	    sqlite3_changes(c->db) == 0)
		rc = EB_STORE_CONFLICT;
	return rc;
}

int
eb_sq_lock_release(void *be, const char *name, const char *owner)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;

	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_LOCK_RELEASE)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, name) | eb_sq_bind_text(st, 2, owner))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_run(c, st, __func__);
}

/* ---- signing keys ----------------------------------------------------- */

static int
key_insert(struct eb_sq_conn *c, const struct eb_store_key *k)
{
	struct eb_store_key row;
	sqlite3_stmt *st;
	int rc;

	if ((st = eb_sq_stmt(c, ST_KEY_INS)) == NULL)
		return EB_STORE_ERROR;
	row = *k;
	if (row.tenant == NULL)
		row.tenant = (char *)""; /* shared by all tenants */
	if ((rc = eb_sq_bind_row(c, st, &eb_columns_key, &row, __func__)) != 0)
		return rc;
	/* a second current key of the tenant is CONFLICT (migration 7) */
	return eb_sq_run(c, st, __func__);
}

int
eb_sq_key_put(void *be, const struct eb_store_key *k)
{
	struct eb_sq_conn *c;

	if ((c = eb_sq_conn(be)) == NULL)
		return EB_STORE_ERROR;
	return key_insert(c, k);
}

/*
 * Inside the rotation's transaction: CONFLICT when the tenant's current
 * key is not active yet at k->created (another rotation is pending: this
 * one would retire a key before it ever signed).
 */
static int
rotation_free(struct eb_sq_conn *c, const struct eb_store_key *k)
{
	sqlite3_stmt *st;
	int rc = EB_STORE_OK, step;

	if ((st = eb_sq_stmt(c, ST_KEY_CURRENT)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, k->tenant ? k->tenant : ""))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		if (!eb_key_rotation_free(sqlite3_column_int64(st, 1),
		                          k->created))
			rc = EB_STORE_CONFLICT;
	if (step != SQLITE_DONE)
		rc = eb_sq_fail(c, step, __func__);
	sqlite3_reset(st);
	return rc;
}

int
eb_sq_key_rotate(void *be, const struct eb_store_key *k, int64_t retire_at,
                 int64_t not_after)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	int rc;

	if (k->retired_at != 0) {
		log_warnx("store: key_rotate of a retired key");
		return EB_STORE_ERROR;
	}
	if ((c = eb_sq_conn(be)) == NULL || eb_sq_tx_begin(c) != 0)
		return EB_STORE_ERROR;
	if ((rc = rotation_free(c, k)) != EB_STORE_OK)
		goto out;
	if ((st = eb_sq_stmt(c, ST_KEY_RETIRE_CURRENT)) == NULL) {
		rc = EB_STORE_ERROR;
		goto out;
	}
	if (eb_sq_bind_text(st, 1, k->tenant ? k->tenant : "") |
	    sqlite3_bind_int64(st, 2, retire_at) |
	    sqlite3_bind_int64(st, 3, not_after)) {
		rc = eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
		goto out;
	}
	if ((rc = eb_sq_run(c, st, __func__)) == EB_STORE_OK)
		rc = key_insert(c, k);
out:
	return eb_sq_tx_end(c, rc, rc == EB_STORE_OK);
}

int
eb_sq_key_list(void *be, const char *tenant, struct eb_store_key_list *out)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_KEY_LIST)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, tenant))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_all(c, st, &eb_sq_rt_key, (void **)&out->v, &out->n,
	                 __func__);
}

int
eb_sq_key_retire(void *be, const char *kid, int64_t retired_at,
                 int64_t not_after)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_KEY_RETIRE)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, kid) |
	    sqlite3_bind_int64(st, 2, retired_at) |
	    sqlite3_bind_int64(st, 3, not_after))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	if ((rc = eb_sq_run(c, st, __func__)) == 0 &&
	    sqlite3_changes(c->db) == 0)
		rc = EB_STORE_NOT_FOUND;
	return rc;
}

/* ---- re-sealing (enrollbridge reseal) ---------------------------------- */

int
eb_sq_grant_list_sealed(void *be, const char *after, size_t limit,
                        struct eb_store_grant_list *out)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_GRANT_SEALED)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, after != NULL ? after : "") |
	    sqlite3_bind_int64(
	        st, 2, limit > 0 && limit < INT64_MAX ? (int64_t)limit : -1))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_all(c, st, &eb_sq_rt_grant, (void **)&out->v, &out->n,
	                 __func__);
}

/*
 * Compare and swap with statement cas (?1 the row's key, ?2 the old value,
 * ?3 the new one); when it changed nothing, exists (?1) tells CONFLICT
 * from NOT_FOUND.
 */
static int
cas_blob(void *be, enum eb_sq_stmt_id cas, enum eb_sq_stmt_id exists,
         const char *key, const uint8_t *old, size_t old_len,
         const uint8_t *next, size_t next_len, const char *fn)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = eb_sq_conn(be)) == NULL || (st = eb_sq_stmt(c, cas)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, key) | eb_sq_bind_blob(st, 2, old, old_len) |
	    eb_sq_bind_blob(st, 3, next, next_len))
		return eb_sq_fail(c, sqlite3_errcode(c->db), fn);
	if ((rc = eb_sq_run(c, st, fn)) != EB_STORE_OK ||
	    sqlite3_changes(c->db) > 0)
		return rc;
	if ((st = eb_sq_stmt(c, exists)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, key))
		return eb_sq_fail(c, sqlite3_errcode(c->db), fn);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = EB_STORE_CONFLICT;
	else if (rc == SQLITE_DONE)
		rc = EB_STORE_NOT_FOUND;
	else
		rc = eb_sq_fail(c, rc, fn);
	sqlite3_reset(st);
	return rc;
}

int
eb_sq_grant_reseal(void *be, const char *id, const uint8_t *old, size_t old_len,
                   const uint8_t *next, size_t next_len)
{
	return cas_blob(be, ST_GRANT_RESEAL, ST_GRANT_EXISTS, id, old, old_len,
	                next, next_len, __func__);
}

int
eb_sq_key_reseal(void *be, const char *kid, const uint8_t *old, size_t old_len,
                 const uint8_t *next, size_t next_len)
{
	return cas_blob(be, ST_KEY_RESEAL, ST_KEY_EXISTS, kid, old, old_len,
	                next, next_len, __func__);
}

/* ---- mapping overrides ------------------------------------------------ */

int
eb_sq_mapping_put(void *be, const struct eb_store_mapping *m)
{
	struct eb_sq_conn *c;
	struct eb_store_mapping row;
	sqlite3_stmt *st;
	int rc;

	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_MAP_PUT)) == NULL)
		return EB_STORE_ERROR;
	/* one time for both, as before: updated, else created (an upsert
	 * keeps created_at and takes updated_at) */
	row = *m;
	row.created = row.updated = m->updated ? m->updated : m->created;
	if ((rc = eb_sq_bind_row(c, st, &eb_columns_mapping, &row, __func__)) !=
	    0)
		return rc;
	return eb_sq_run(c, st, __func__);
}

int
eb_sq_mapping_get(void *be, const char *tenant, const char *subject,
                  struct eb_store_mapping *out)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_MAP_GET)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, tenant) | eb_sq_bind_text(st, 2, subject))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_one(c, st, &eb_sq_rt_mapping, out, __func__);
}

int
eb_sq_mapping_delete(void *be, const char *tenant, const char *subject)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_MAP_DEL)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, tenant) | eb_sq_bind_text(st, 2, subject))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	if ((rc = eb_sq_run(c, st, __func__)) == 0 &&
	    sqlite3_changes(c->db) == 0)
		rc = EB_STORE_NOT_FOUND;
	return rc;
}

/* ---- sweep ------------------------------------------------------------ */

int
eb_sq_sweep(void *be, int64_t now, size_t *removed)
{
	static const struct {
		enum eb_sq_stmt_id id;
		int64_t retain;
	} steps[] = {
	    {ST_FLOW_SWEEP, 0},
	    {ST_CODE_SWEEP, RETAIN_CODES},
	    {ST_TOKEN_SWEEP, RETAIN_TOKENS},
	    {ST_TOKEN_SUCC_SWEEP, 0}, /* wipes, also counted */
	};
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	size_t i, n = 0;
	int rc = EB_STORE_OK;

	if (removed != NULL)
		*removed = 0;
	if ((c = eb_sq_conn(be)) == NULL || eb_sq_tx_begin(c) != 0)
		return EB_STORE_ERROR;
	for (i = 0; rc == EB_STORE_OK && i < sizeof(steps) / sizeof(steps[0]);
	     i++) {
		if ((st = eb_sq_stmt(c, steps[i].id)) == NULL) {
			rc = EB_STORE_ERROR;
			break;
		}
		if (sqlite3_bind_int64(st, 1, now - steps[i].retain)) {
			rc = eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
			break;
		}
		if ((rc = eb_sq_run(c, st, __func__)) == 0)
			n += (size_t)sqlite3_changes(c->db);
	}
	rc = eb_sq_tx_end(c, rc, rc == EB_STORE_OK);
	if (rc == EB_STORE_OK && removed != NULL)
		*removed = n;
	return rc;
}

int
eb_sq_mapping_list(void *be, const char *tenant,
                   struct eb_store_mapping_list *out)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_MAP_LIST)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, tenant))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_all(c, st, &eb_sq_rt_mapping, (void **)&out->v, &out->n,
	                 __func__);
}
