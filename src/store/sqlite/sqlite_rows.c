/*
 * The SQLite backend's rows: binding values, reading a row's columns into
 * the store's records, and stepping a bound statement for one row, every
 * row or one integer.
 */
#include "store/sqlite/sqlite_int.h"

#include <limits.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"

int
eb_sq_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

int
eb_sq_bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	if (p == NULL)
		return sqlite3_bind_null(st, i);
	if (n > INT_MAX)
		return SQLITE_TOOBIG;
	return sqlite3_bind_blob(st, i, p, (int)n, SQLITE_STATIC);
}

char *
eb_sq_rd_text(struct eb_sq_rd *r)
{
	const unsigned char *t;
	char *s;
	int i = r->col++;

	if (sqlite3_column_type(r->st, i) == SQLITE_NULL)
		return NULL;
	t = sqlite3_column_text(r->st, i);
	if (t == NULL ||
	    (s = eb_strndup((const char *)t,
	                    (size_t)sqlite3_column_bytes(r->st, i))) == NULL) {
		r->oom = 1;
		return NULL;
	}
	return s;
}

static int64_t
rd_i64(struct eb_sq_rd *r)
{
	return sqlite3_column_int64(r->st, r->col++);
}

uint8_t *
eb_sq_rd_blob(struct eb_sq_rd *r, size_t *len)
{
	const void *p;
	uint8_t *b;
	int i = r->col++, n;

	*len = 0;
	if (sqlite3_column_type(r->st, i) == SQLITE_NULL)
		return NULL;
	p = sqlite3_column_blob(r->st, i);
	n = sqlite3_column_bytes(r->st, i);
	if ((p == NULL && n > 0) || (b = eb_malloc((size_t)n)) == NULL) {
		r->oom = 1;
		return NULL;
	}
	if (n > 0)
		memcpy(b, p, (size_t)n);
	*len = (size_t)n;
	return b;
}

/* The enum value whose name (through namef) is the column's text, or -1. */
int
eb_sq_rd_enum(struct eb_sq_rd *r, const char *(*namef)(int))
{
	const unsigned char *t = sqlite3_column_text(r->st, r->col++);
	const char *n;
	int i;

	for (i = 0; t != NULL && (n = namef(i)) != NULL; i++)
		if (strcmp(n, (const char *)t) == 0)
			return i;
	return -1;
}

/* ---- records through their column lists (store/columns.h) ------------- */

/* Bind one column of rec to parameter i: SQLITE_OK or SQLite's error. */
static int
bind_col(sqlite3_stmt *st, int i, const struct eb_col *col,
         const unsigned char *rec)
{
	const void *p = rec + col->off;

	switch (col->kind) {
	case EB_COL_TEXT:
		return eb_sq_bind_text(st, i, *(char *const *)p);
	case EB_COL_I64:
		return sqlite3_bind_int64(st, i, *(const int64_t *)p);
	case EB_COL_BLOB:
		return eb_sq_bind_blob(st, i, *(uint8_t *const *)p,
		                       *(const size_t *)(rec + col->len_off));
	case EB_COL_ENUM:
		return eb_sq_bind_text(st, i, col->enum_name(*(const int *)p));
	}
	return SQLITE_MISUSE;
}

int
eb_sq_bind_row(struct eb_sq_conn *c, sqlite3_stmt *st,
               const struct eb_columns *cols, const void *rec, const char *fn)
{
	const unsigned char *b = rec;
	const struct eb_col *col;
	size_t k;
	int i = 0;

	for (k = 0; k < cols->n; k++) {
		col = &cols->v[k];
		if (col->write != EB_COL_BOUND)
			continue;
		if (col->kind == EB_COL_ENUM &&
		    col->enum_name(*(const int *)(b + col->off)) == NULL) {
			eb_log(EB_LOG_WARN, fn, "store: bad %s value %d",
			       col->name, *(const int *)(b + col->off));
			return EB_STORE_ERROR;
		}
		if (bind_col(st, ++i, col, b) != SQLITE_OK)
			return eb_sq_fail(c, sqlite3_errcode(c->db), fn);
	}
	return EB_STORE_OK;
}

void
eb_sq_rd_cols(struct eb_sq_rd *r, const struct eb_columns *cols, void *rec)
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
			*(char **)p = eb_sq_rd_text(r);
			break;
		case EB_COL_I64:
			*(int64_t *)p = rd_i64(r);
			break;
		case EB_COL_BLOB:
			*(uint8_t **)p =
			    eb_sq_rd_blob(r, (size_t *)(b + col->len_off));
			break;
		case EB_COL_ENUM:
			*(int *)p = eb_sq_rd_enum(r, col->enum_name);
			break;
		}
	}
}

/* Read the current row of st into out (zeroed): 0, or -1 out of memory. */
static int
row_read(sqlite3_stmt *st, const struct eb_sq_rowtype *rt, void *out)
{
	struct eb_sq_rd r = {st, 0, 0};

	if (rt->cols == NULL)
		return rt->read(st, out);
	eb_sq_rd_cols(&r, rt->cols, out);
	return r.oom ? -1 : 0;
}

#define RECORD(C)                                                              \
	const struct eb_sq_rowtype eb_sq_rt_##C = {                            \
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

/*
 * Step a bound statement expected to yield at most one row into out
 * (zeroed first). OK, NOT_FOUND or ERROR; the statement is reset.
 */
int
eb_sq_one(struct eb_sq_conn *c, sqlite3_stmt *st,
          const struct eb_sq_rowtype *rt, void *out, const char *fn)
{
	int rc;

	memset(out, 0, rt->size);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (row_read(st, rt, out) != 0) {
			rt->finish(out);
			log_warnx("store: out of memory");
			rc = EB_STORE_ERROR;
		} else
			rc = EB_STORE_OK;
	} else if (rc == SQLITE_DONE)
		rc = EB_STORE_NOT_FOUND;
	else
		rc = eb_sq_fail(c, rc, fn);
	sqlite3_reset(st);
	return rc;
}

/* Step a bound statement, collecting every row into *vp / *np. */
int
eb_sq_all(struct eb_sq_conn *c, sqlite3_stmt *st,
          const struct eb_sq_rowtype *rt, void **vp, size_t *np, const char *fn)
{
	unsigned char *v = NULL, *nv;
	size_t n = 0, cap = 0, i;
	int rc;

	*vp = NULL;
	*np = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			if ((nv = eb_realloc(v, cap * rt->size)) == NULL)
				goto out_oom;
			v = nv;
		}
		memset(v + n * rt->size, 0, rt->size);
		if (row_read(st, rt, v + n * rt->size) != 0) {
			rt->finish(v + n * rt->size);
			goto out_oom;
		}
		n++;
	}
	if (rc != SQLITE_DONE) {
		rc = eb_sq_fail(c, rc, fn);
		goto out_free;
	}
	sqlite3_reset(st);
	*vp = v;
	*np = n;
	return EB_STORE_OK;

out_oom:
	log_warnx("store: out of memory");
	rc = EB_STORE_ERROR;
out_free:
	for (i = 0; i < n; i++)
		rt->finish(v + i * rt->size);
	eb_free(v);
	sqlite3_reset(st);
	return rc;
}

/* Step a bound statement whose one row is one integer into *out. */
int
eb_sq_i64(struct eb_sq_conn *c, sqlite3_stmt *st, int64_t *out, const char *fn)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = EB_STORE_OK;
	} else if (rc == SQLITE_DONE)
		rc = EB_STORE_NOT_FOUND;
	else
		rc = eb_sq_fail(c, rc, fn);
	sqlite3_reset(st);
	return rc;
}
