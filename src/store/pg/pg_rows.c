/*
 * What the PostgreSQL operation files share: reading result rows (binary
 * format) into the store's records and binding a record as an insert's
 * parameters, both through its column table (store/columns.h), running a
 * statement for one row, all rows or a count, running an operation on a pooled
 * connection or in one transaction, the invalidation that ends an invalidating
 * transaction, and the audit event of a grant change.
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

/* ---- records through their column lists (store/columns.h) ---- */

void
eb_pg_rd_cols(struct eb_pg_rd *rd, const struct eb_columns *cols, void *rec)
{
	unsigned char *b = rec;
	const struct eb_col *col;
	void *p;
	size_t k;

	for (k = 0; k < cols->n; k++) {
		col = &cols->v[k];
		p = b + col->off;
		switch (col->kind) {
		case EB_COL_TEXT:
			*(char **)p = eb_pg_rd_text(rd);
			break;
		case EB_COL_I64:
			*(int64_t *)p = eb_pg_rd_i64(rd);
			break;
		case EB_COL_BLOB:
			*(uint8_t **)p =
			    eb_pg_rd_blob(rd, (size_t *)(b + col->len_off));
			break;
		case EB_COL_ENUM:
			*(int *)p = eb_pg_rd_enum(rd, col->enum_name);
			break;
		}
	}
}

int
eb_pg_args_row(struct eb_pg_args *a, const struct eb_columns *cols,
               const void *rec)
{
	const unsigned char *b = rec;
	const struct eb_col *col;
	const char *name;
	const void *p;
	size_t k;

	for (k = 0; k < cols->n; k++) {
		col = &cols->v[k];
		if (col->write != EB_COL_BOUND)
			continue;
		p = b + col->off;
		switch (col->kind) {
		case EB_COL_TEXT:
			eb_pg_args_text(a, *(char *const *)p);
			break;
		case EB_COL_I64:
			eb_pg_args_int8(a, *(const int64_t *)p);
			break;
		case EB_COL_BLOB:
			eb_pg_args_blob(a, *(uint8_t *const *)p,
			                *(const size_t *)(b + col->len_off));
			break;
		case EB_COL_ENUM:
			if ((name = col->enum_name(*(const int *)p)) == NULL) {
				log_warnx("store: bad %s value %d", col->name,
				          *(const int *)p);
				return -1;
			}
			eb_pg_args_text(a, name);
			break;
		}
	}
	return 0;
}

void
eb_pg_read_grant(struct eb_pg_rd *rd, void *g)
{
	eb_pg_rd_cols(rd, &eb_columns_grant, g);
}

void
eb_pg_read_token(struct eb_pg_rd *rd, void *t)
{
	eb_pg_rd_cols(rd, &eb_columns_token, t);
}

#define RECORD(C)                                                              \
	const struct eb_pg_rowtype eb_pg_rt_##C = {                            \
	    sizeof(struct eb_store_##C), &eb_columns_##C, NULL,                \
	    eb_columns_finish_##C}

RECORD(audit);
RECORD(flow);
RECORD(code);
RECORD(grant);
RECORD(token);
RECORD(key);
RECORD(mapping);
RECORD(scim_user);

/* ---- statements ---- */

/* Read row i of r into out (zeroed first); 0, or -1 (out finished). */
static int
read_row(const PGresult *r, int i, const struct eb_pg_rowtype *rt, void *out)
{
	struct eb_pg_rd rd;

	memset(out, 0, rt->size);
	eb_pg_rd_init(&rd, r, i);
	if (rt->cols != NULL)
		eb_pg_rd_cols(&rd, rt->cols, out);
	else
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
