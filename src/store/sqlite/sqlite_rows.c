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

int64_t
eb_sq_rd_i64(struct eb_sq_rd *r)
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

/* ---- row readers ------------------------------------------------------ */

static int
read_audit(sqlite3_stmt *st, void *p)
{
	struct eb_store_audit *a = p;
	struct eb_sq_rd r = {st, 0, 0};

	a->id = eb_sq_rd_i64(&r);
	a->ts = eb_sq_rd_i64(&r);
	a->tenant = eb_sq_rd_text(&r);
	a->event = eb_sq_rd_text(&r);
	a->subject = eb_sq_rd_text(&r);
	a->detail = eb_sq_rd_text(&r);
	return r.oom ? -1 : 0;
}

static int
read_flow(sqlite3_stmt *st, void *p)
{
	struct eb_store_flow *f = p;
	struct eb_sq_rd r = {st, 0, 0};

	f->id = eb_sq_rd_text(&r);
	f->tenant = eb_sq_rd_text(&r);
	f->kind = eb_sq_rd_enum(&r, eb_store_flow_kind_name);
	f->created = eb_sq_rd_i64(&r);
	f->expires = eb_sq_rd_i64(&r);
	f->user_identifier = eb_sq_rd_text(&r);
	f->enrollment_mode = eb_sq_rd_text(&r);
	f->model_family = eb_sq_rd_text(&r);
	f->product = eb_sq_rd_text(&r);
	f->version = eb_sq_rd_text(&r);
	f->language = eb_sq_rd_text(&r);
	f->os_version = eb_sq_rd_text(&r);
	f->udid = eb_sq_rd_text(&r);
	f->serial = eb_sq_rd_text(&r);
	f->upstream_state = eb_sq_rd_text(&r);
	f->upstream_nonce = eb_sq_rd_text(&r);
	f->pkce_verifier = eb_sq_rd_blob(&r, &f->pkce_verifier_len);
	f->browser_binding = eb_sq_rd_text(&r);
	f->client_id = eb_sq_rd_text(&r);
	f->redirect_uri = eb_sq_rd_text(&r);
	f->device_state = eb_sq_rd_text(&r);
	f->scope = eb_sq_rd_text(&r);
	f->extra = eb_sq_rd_text(&r);
	f->code_challenge = eb_sq_rd_text(&r);
	return r.oom ? -1 : 0;
}

static int
read_code(sqlite3_stmt *st, void *p)
{
	struct eb_store_code *c = p;
	struct eb_sq_rd r = {st, 0, 0};

	c->hash = eb_sq_rd_text(&r);
	c->tenant = eb_sq_rd_text(&r);
	c->grant_id = eb_sq_rd_text(&r);
	c->client_id = eb_sq_rd_text(&r);
	c->redirect_uri = eb_sq_rd_text(&r);
	c->scope = eb_sq_rd_text(&r);
	c->created = eb_sq_rd_i64(&r);
	c->expires = eb_sq_rd_i64(&r);
	c->used_at = eb_sq_rd_i64(&r);
	c->code_challenge = eb_sq_rd_text(&r);
	return r.oom ? -1 : 0;
}

/* A grant's GRANT_NCOLS columns from r's current column on. */
void
eb_sq_read_grant_rd(struct eb_sq_rd *rp, struct eb_store_grant *g)
{
	struct eb_sq_rd r = *rp;

	g->id = eb_sq_rd_text(&r);
	g->tenant = eb_sq_rd_text(&r);
	g->status = eb_sq_rd_enum(&r, eb_store_grant_status_name);
	g->auth_method = eb_sq_rd_text(&r);
	g->client_id = eb_sq_rd_text(&r);
	g->managed_apple_id = eb_sq_rd_text(&r);
	g->user_identifier = eb_sq_rd_text(&r);
	g->idp_issuer = eb_sq_rd_text(&r);
	g->idp_subject = eb_sq_rd_text(&r);
	g->idp_tid = eb_sq_rd_text(&r);
	g->idp_oid = eb_sq_rd_text(&r);
	g->enrollment_mode = eb_sq_rd_text(&r);
	g->binding_kind = eb_sq_rd_text(&r);
	g->binding_value = eb_sq_rd_text(&r);
	g->bound_at = eb_sq_rd_i64(&r);
	g->created = eb_sq_rd_i64(&r);
	g->updated = eb_sq_rd_i64(&r);
	g->expires = eb_sq_rd_i64(&r);
	g->upstream_refresh_token =
	    eb_sq_rd_blob(&r, &g->upstream_refresh_token_len);
	g->upstream_renewed_at = eb_sq_rd_i64(&r);
	g->upstream_next_at = eb_sq_rd_i64(&r);
	g->upstream_failing_since = eb_sq_rd_i64(&r);
	g->revoked_at = eb_sq_rd_i64(&r);
	g->revoke_reason = eb_sq_rd_text(&r);
	g->superseded_by = eb_sq_rd_text(&r);
	g->extra = eb_sq_rd_text(&r);
	g->lease_owner = eb_sq_rd_text(&r);
	g->lease_token = eb_sq_rd_text(&r);
	g->lease_until = eb_sq_rd_i64(&r);
	*rp = r;
}

static int
read_grant(sqlite3_stmt *st, void *p)
{
	struct eb_sq_rd r = {st, 0, 0};

	eb_sq_read_grant_rd(&r, p);
	return r.oom ? -1 : 0;
}

/* A token's TOKEN_NCOLS columns from r's current column on. */
void
eb_sq_read_token_rd(struct eb_sq_rd *rp, struct eb_store_token *t)
{
	struct eb_sq_rd r = *rp;

	t->hash = eb_sq_rd_text(&r);
	t->kind = eb_sq_rd_enum(&r, eb_store_token_kind_name);
	t->tenant = eb_sq_rd_text(&r);
	t->grant_id = eb_sq_rd_text(&r);
	t->client_id = eb_sq_rd_text(&r);
	t->jti = eb_sq_rd_text(&r);
	t->created = eb_sq_rd_i64(&r);
	t->expires = eb_sq_rd_i64(&r);
	t->status = eb_sq_rd_enum(&r, eb_store_token_status_name);
	t->rotated_at = eb_sq_rd_i64(&r);
	t->parent_hash = eb_sq_rd_text(&r);
	t->replaced_by = eb_sq_rd_text(&r);
	*rp = r;
}

static int
read_token(sqlite3_stmt *st, void *p)
{
	struct eb_sq_rd r = {st, 0, 0};

	eb_sq_read_token_rd(&r, p);
	return r.oom ? -1 : 0;
}

static int
read_key(sqlite3_stmt *st, void *p)
{
	struct eb_store_key *k = p;
	struct eb_sq_rd r = {st, 0, 0};

	k->kid = eb_sq_rd_text(&r);
	k->tenant = eb_sq_rd_text(&r);
	k->alg = eb_sq_rd_text(&r);
	k->created = eb_sq_rd_i64(&r);
	k->retired_at = eb_sq_rd_i64(&r);
	k->not_after = eb_sq_rd_i64(&r);
	k->public_jwk = eb_sq_rd_text(&r);
	k->private_key = eb_sq_rd_blob(&r, &k->private_key_len);
	k->activates_at = eb_sq_rd_i64(&r);
	return r.oom ? -1 : 0;
}

static int
read_mapping(sqlite3_stmt *st, void *p)
{
	struct eb_store_mapping *m = p;
	struct eb_sq_rd r = {st, 0, 0};

	m->tenant = eb_sq_rd_text(&r);
	m->subject = eb_sq_rd_text(&r);
	m->managed_apple_id = eb_sq_rd_text(&r);
	m->note = eb_sq_rd_text(&r);
	m->created = eb_sq_rd_i64(&r);
	m->updated = eb_sq_rd_i64(&r);
	return r.oom ? -1 : 0;
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

const struct eb_sq_rowtype eb_sq_rt_audit = {sizeof(struct eb_store_audit),
                                             read_audit, fin_audit};
const struct eb_sq_rowtype eb_sq_rt_flow = {sizeof(struct eb_store_flow),
                                            read_flow, fin_flow};
const struct eb_sq_rowtype eb_sq_rt_code = {sizeof(struct eb_store_code),
                                            read_code, fin_code};
const struct eb_sq_rowtype eb_sq_rt_grant = {sizeof(struct eb_store_grant),
                                             read_grant, fin_grant};
const struct eb_sq_rowtype eb_sq_rt_token = {sizeof(struct eb_store_token),
                                             read_token, fin_token};
const struct eb_sq_rowtype eb_sq_rt_key = {sizeof(struct eb_store_key),
                                           read_key, fin_key};
const struct eb_sq_rowtype eb_sq_rt_mapping = {sizeof(struct eb_store_mapping),
                                               read_mapping, fin_mapping};

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
		if (rt->read(st, out) != 0) {
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
		if (rt->read(st, v + n * rt->size) != 0) {
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
