/*
 * What the PostgreSQL operation files share: reading result rows (binary
 * format) into the store's records, running a statement for one row, all
 * rows or a count, running an operation on a pooled connection or in one
 * transaction, the invalidation that ends an invalidating transaction,
 * and the audit event of a grant change.
 */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/pg/pg_int.h"

/* ---- column readers ---- */

void
eb_pg_rd_init(struct eb_pg_rd *rd, const PGresult *r, int row)
{
	rd->r = r;
	rd->row = row;
	rd->col = 0;
	rd->bad = 0;
}

char *
eb_pg_rd_text(struct eb_pg_rd *rd)
{
	int i = rd->col++;
	char *s;

	if (i >= PQnfields(rd->r)) {
		rd->bad = 1;
		return NULL;
	}
	if (PQgetisnull(rd->r, rd->row, i))
		return NULL;
	s = eb_strndup(PQgetvalue(rd->r, rd->row, i),
	               (size_t)PQgetlength(rd->r, rd->row, i));
	if (s == NULL)
		rd->bad = 1;
	return s;
}

int64_t
eb_pg_rd_i64(struct eb_pg_rd *rd)
{
	int64_t v = 0;
	int i = rd->col++;

	if (i < PQnfields(rd->r) && PQgetisnull(rd->r, rd->row, i))
		return 0;
	if (eb_pg_get_int8(rd->r, rd->row, i, &v) != 0)
		rd->bad = 1;
	return v;
}

uint8_t *
eb_pg_rd_blob(struct eb_pg_rd *rd, size_t *len)
{
	int i = rd->col++, n;
	uint8_t *b;

	*len = 0;
	if (i >= PQnfields(rd->r)) {
		rd->bad = 1;
		return NULL;
	}
	if (PQgetisnull(rd->r, rd->row, i))
		return NULL;
	n = PQgetlength(rd->r, rd->row, i);
	if ((b = eb_malloc(n > 0 ? (size_t)n : 1)) == NULL) {
		rd->bad = 1;
		return NULL;
	}
	memcpy(b, PQgetvalue(rd->r, rd->row, i), (size_t)n);
	*len = (size_t)n;
	return b;
}

int
eb_pg_rd_enum(struct eb_pg_rd *rd, const char *(*namef)(int))
{
	int i = rd->col++, k;
	const char *v, *n;

	if (i >= PQnfields(rd->r) || PQgetisnull(rd->r, rd->row, i))
		return -1;
	v = PQgetvalue(rd->r, rd->row, i);
	for (k = 0; (n = namef(k)) != NULL; k++)
		if (strcmp(n, v) == 0)
			return k;
	return -1;
}

/* ---- records ---- */

static void
read_audit(struct eb_pg_rd *r, void *p)
{
	struct eb_store_audit *a = p;

	a->id = eb_pg_rd_i64(r);
	a->ts = eb_pg_rd_i64(r);
	a->tenant = eb_pg_rd_text(r);
	a->event = eb_pg_rd_text(r);
	a->subject = eb_pg_rd_text(r);
	a->detail = eb_pg_rd_text(r);
}

static void
read_flow(struct eb_pg_rd *r, void *p)
{
	struct eb_store_flow *f = p;

	f->id = eb_pg_rd_text(r);
	f->tenant = eb_pg_rd_text(r);
	f->kind = eb_pg_rd_enum(r, eb_store_flow_kind_name);
	f->created = eb_pg_rd_i64(r);
	f->expires = eb_pg_rd_i64(r);
	f->user_identifier = eb_pg_rd_text(r);
	f->enrollment_mode = eb_pg_rd_text(r);
	f->model_family = eb_pg_rd_text(r);
	f->product = eb_pg_rd_text(r);
	f->version = eb_pg_rd_text(r);
	f->language = eb_pg_rd_text(r);
	f->os_version = eb_pg_rd_text(r);
	f->udid = eb_pg_rd_text(r);
	f->serial = eb_pg_rd_text(r);
	f->upstream_state = eb_pg_rd_text(r);
	f->upstream_nonce = eb_pg_rd_text(r);
	f->pkce_verifier = eb_pg_rd_blob(r, &f->pkce_verifier_len);
	f->browser_binding = eb_pg_rd_text(r);
	f->client_id = eb_pg_rd_text(r);
	f->redirect_uri = eb_pg_rd_text(r);
	f->device_state = eb_pg_rd_text(r);
	f->scope = eb_pg_rd_text(r);
	f->extra = eb_pg_rd_text(r);
	f->code_challenge = eb_pg_rd_text(r);
}

static void
read_code(struct eb_pg_rd *r, void *p)
{
	struct eb_store_code *c = p;

	c->hash = eb_pg_rd_text(r);
	c->tenant = eb_pg_rd_text(r);
	c->grant_id = eb_pg_rd_text(r);
	c->client_id = eb_pg_rd_text(r);
	c->redirect_uri = eb_pg_rd_text(r);
	c->scope = eb_pg_rd_text(r);
	c->created = eb_pg_rd_i64(r);
	c->expires = eb_pg_rd_i64(r);
	c->used_at = eb_pg_rd_i64(r);
	c->code_challenge = eb_pg_rd_text(r);
}

void
eb_pg_read_grant(struct eb_pg_rd *r, void *p)
{
	struct eb_store_grant *g = p;

	g->id = eb_pg_rd_text(r);
	g->tenant = eb_pg_rd_text(r);
	g->status = eb_pg_rd_enum(r, eb_store_grant_status_name);
	g->auth_method = eb_pg_rd_text(r);
	g->client_id = eb_pg_rd_text(r);
	g->managed_apple_id = eb_pg_rd_text(r);
	g->user_identifier = eb_pg_rd_text(r);
	g->idp_issuer = eb_pg_rd_text(r);
	g->idp_subject = eb_pg_rd_text(r);
	g->idp_tid = eb_pg_rd_text(r);
	g->idp_oid = eb_pg_rd_text(r);
	g->enrollment_mode = eb_pg_rd_text(r);
	g->binding_kind = eb_pg_rd_text(r);
	g->binding_value = eb_pg_rd_text(r);
	g->bound_at = eb_pg_rd_i64(r);
	g->created = eb_pg_rd_i64(r);
	g->updated = eb_pg_rd_i64(r);
	g->expires = eb_pg_rd_i64(r);
	g->upstream_refresh_token =
	    eb_pg_rd_blob(r, &g->upstream_refresh_token_len);
	g->upstream_renewed_at = eb_pg_rd_i64(r);
	g->upstream_next_at = eb_pg_rd_i64(r);
	g->upstream_failing_since = eb_pg_rd_i64(r);
	g->revoked_at = eb_pg_rd_i64(r);
	g->revoke_reason = eb_pg_rd_text(r);
	g->superseded_by = eb_pg_rd_text(r);
	g->extra = eb_pg_rd_text(r);
	g->lease_owner = eb_pg_rd_text(r);
	g->lease_token = eb_pg_rd_text(r);
	g->lease_until = eb_pg_rd_i64(r);
}

void
eb_pg_read_token(struct eb_pg_rd *r, void *p)
{
	struct eb_store_token *t = p;

	t->hash = eb_pg_rd_text(r);
	t->kind = eb_pg_rd_enum(r, eb_store_token_kind_name);
	t->tenant = eb_pg_rd_text(r);
	t->grant_id = eb_pg_rd_text(r);
	t->client_id = eb_pg_rd_text(r);
	t->jti = eb_pg_rd_text(r);
	t->created = eb_pg_rd_i64(r);
	t->expires = eb_pg_rd_i64(r);
	t->status = eb_pg_rd_enum(r, eb_store_token_status_name);
	t->rotated_at = eb_pg_rd_i64(r);
	t->parent_hash = eb_pg_rd_text(r);
	t->replaced_by = eb_pg_rd_text(r);
}

static void
read_key(struct eb_pg_rd *r, void *p)
{
	struct eb_store_key *k = p;

	k->kid = eb_pg_rd_text(r);
	k->tenant = eb_pg_rd_text(r);
	k->alg = eb_pg_rd_text(r);
	k->created = eb_pg_rd_i64(r);
	k->retired_at = eb_pg_rd_i64(r);
	k->not_after = eb_pg_rd_i64(r);
	k->public_jwk = eb_pg_rd_text(r);
	k->private_key = eb_pg_rd_blob(r, &k->private_key_len);
	k->activates_at = eb_pg_rd_i64(r);
}

static void
read_mapping(struct eb_pg_rd *r, void *p)
{
	struct eb_store_mapping *m = p;

	m->tenant = eb_pg_rd_text(r);
	m->subject = eb_pg_rd_text(r);
	m->managed_apple_id = eb_pg_rd_text(r);
	m->note = eb_pg_rd_text(r);
	m->created = eb_pg_rd_i64(r);
	m->updated = eb_pg_rd_i64(r);
}

static void
fin_audit(void *p)
{
	eb_store_audit_finish(p);
}
static void
fin_flow(void *p)
{
	eb_store_flow_finish(p);
}
static void
fin_code(void *p)
{
	eb_store_code_finish(p);
}
static void
fin_grant(void *p)
{
	eb_store_grant_finish(p);
}
static void
fin_token(void *p)
{
	eb_store_token_finish(p);
}
static void
fin_key(void *p)
{
	eb_store_key_finish(p);
}
static void
fin_mapping(void *p)
{
	eb_store_mapping_finish(p);
}

const struct eb_pg_rowtype eb_pg_rt_audit = {sizeof(struct eb_store_audit),
                                             read_audit, fin_audit};
const struct eb_pg_rowtype eb_pg_rt_flow = {sizeof(struct eb_store_flow),
                                            read_flow, fin_flow};
const struct eb_pg_rowtype eb_pg_rt_code = {sizeof(struct eb_store_code),
                                            read_code, fin_code};
const struct eb_pg_rowtype eb_pg_rt_grant = {sizeof(struct eb_store_grant),
                                             eb_pg_read_grant, fin_grant};
const struct eb_pg_rowtype eb_pg_rt_token = {sizeof(struct eb_store_token),
                                             eb_pg_read_token, fin_token};
const struct eb_pg_rowtype eb_pg_rt_key = {sizeof(struct eb_store_key),
                                           read_key, fin_key};
const struct eb_pg_rowtype eb_pg_rt_mapping = {sizeof(struct eb_store_mapping),
                                               read_mapping, fin_mapping};

/* ---- statements ---- */

/* Read row i of r into out (zeroed first); 0, or -1 (out finished). */
static int
read_row(const PGresult *r, int i, const struct eb_pg_rowtype *rt, void *out)
{
	struct eb_pg_rd rd;

	memset(out, 0, rt->size);
	eb_pg_rd_init(&rd, r, i);
	rt->read(&rd, out);
	if (!rd.bad)
		return 0;
	rt->finish(out);
	log_warnx("store: out of memory or a malformed row");
	return -1;
}

int
eb_pg_one(struct eb_pg_conn *c, int stmt, const struct eb_pg_args *a,
          const struct eb_pg_rowtype *rt, void *out)
{
	PGresult *r;
	int rc;

	memset(out, 0, rt->size);
	if ((rc = eb_pg_exec(c, (size_t)stmt, a, &r)) != EB_STORE_OK)
		return rc;
	if (PQntuples(r) == 0)
		rc = EB_STORE_NOT_FOUND;
	else if (read_row(r, 0, rt, out) != 0)
		rc = EB_STORE_ERROR;
	PQclear(r);
	return rc;
}

int
eb_pg_all(struct eb_pg_conn *c, int stmt, const struct eb_pg_args *a,
          const struct eb_pg_rowtype *rt, void **vp, size_t *np)
{
	unsigned char *v = NULL;
	PGresult *r;
	size_t n, i;
	int rc;

	*vp = NULL;
	*np = 0;
	if ((rc = eb_pg_exec(c, (size_t)stmt, a, &r)) != EB_STORE_OK)
		return rc;
	n = (size_t)PQntuples(r);
	if (n > 0 && (v = eb_calloc(n, rt->size)) == NULL) {
		log_warnx("store: out of memory");
		PQclear(r);
		return EB_STORE_ERROR;
	}
	for (i = 0; i < n; i++)
		if (read_row(r, (int)i, rt, v + i * rt->size) != 0)
			break;
	PQclear(r);
	if (i < n) {
		while (i-- > 0)
			rt->finish(v + i * rt->size);
		eb_free(v);
		return EB_STORE_ERROR;
	}
	*vp = v;
	*np = n;
	return EB_STORE_OK;
}

int
eb_pg_run(struct eb_pg_conn *c, int stmt, const struct eb_pg_args *a, size_t *n)
{
	PGresult *r;
	const char *t;
	int rc;

	if (n != NULL)
		*n = 0;
	if ((rc = eb_pg_exec(c, (size_t)stmt, a, &r)) != EB_STORE_OK)
		return rc;
	if (n != NULL) {
		t = PQcmdTuples(r);
		if (PQresultStatus(r) == PGRES_TUPLES_OK)
			*n = (size_t)PQntuples(r);
		else if (t != NULL && *t != '\0')
			*n = (size_t)strtoul(t, NULL, 10);
	}
	PQclear(r);
	return EB_STORE_OK;
}

void
eb_pg_args_blob(struct eb_pg_args *a, const void *p, size_t n)
{
	if (p == NULL)
		eb_pg_args_text(a, NULL);
	else
		eb_pg_args_bytea(a, p, n);
}

/* ---- connections ---- */

int
eb_pg_with(struct eb_pg_store *ps, int (*fn)(struct eb_pg_conn *, void *),
           void *arg)
{
	struct eb_pg_conn *c;
	int rc;

	if ((c = eb_pg_pool_acquire(ps->pool)) == NULL)
		return EB_STORE_ERROR;
	rc = fn(c, arg);
	eb_pg_pool_release(ps->pool, c);
	/* the codes only pg_conn knows are failures to callers */
	return rc == EB_PG_RETRY || rc == EB_PG_BROKEN ? EB_STORE_ERROR : rc;
}

int
eb_pg_in_tx(struct eb_pg_store *ps, int (*fn)(struct eb_pg_conn *, void *),
            void *arg)
{
	struct eb_pg_conn *c;
	int rc;

	if ((c = eb_pg_pool_acquire(ps->pool)) == NULL)
		return EB_STORE_ERROR;
	rc = eb_pg_tx(c, EB_PG_READ_COMMITTED, fn, arg);
	eb_pg_pool_release(ps->pool, c);
	return rc == EB_PG_RETRY || rc == EB_PG_BROKEN ? EB_STORE_ERROR : rc;
}

/* ---- invalidation and audit ---- */

int
eb_pg_invalidate(struct eb_pg_conn *c, int notify)
{
	return eb_pg_run(c, notify ? PS_INVAL_NOTIFY : PS_INVAL_QUIET, NULL,
	                 NULL);
}

int
eb_pg_detail(struct eb_buf *b, const char *k1, const char *v1, const char *k2,
             const char *v2)
{
	int sep = 0;

	eb_buf_init(b, EB_PG_DETAIL_MAX);
	if (eb_buf_addc(b, '{') != 0)
		goto out_fail;
	if (v1 != NULL) {
		if (eb_buf_add_json_str(b, k1) || eb_buf_addc(b, ':') ||
		    eb_buf_add_json_str(b, v1))
			goto out_fail;
		sep = 1;
	}
	if (v2 != NULL) {
		if ((sep && eb_buf_addc(b, ',')) ||
		    eb_buf_add_json_str(b, k2) || eb_buf_addc(b, ':') ||
		    eb_buf_add_json_str(b, v2))
			goto out_fail;
	}
	if (eb_buf_addc(b, '}') != 0)
		goto out_fail;
	return 0;

out_fail:
	log_warnx("store: audit detail too long or out of memory");
	eb_buf_finish(b);
	return -1;
}
