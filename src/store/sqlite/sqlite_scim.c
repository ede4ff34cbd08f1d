/*
 * The SQLite backend's SCIM provisioning records: the User resources a
 * provisioning client wrote (scim_users), and the active grants of one
 * person as such a client names them (by login or IdP object id), which a
 * deprovisioning ends through the grant operations.
 */
#include "store/sqlite/sqlite_int.h"

#include <string.h>

#include "core/log.h"

/* A size as a LIMIT/OFFSET operand (-1: no limit). */
static int64_t
lim(size_t n)
{
	return n < INT64_MAX ? (int64_t)n : -1;
}

int
eb_sq_grant_list_person(void *be, const char *tenant, const char *login,
                        const char *oid, struct eb_store_grant_list *out)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_GRANT_OF_PERSON)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, tenant) | eb_sq_bind_text(st, 2, login) |
	    eb_sq_bind_text(st, 3, oid))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_all(c, st, &eb_sq_rt_grant, (void **)&out->v, &out->n,
	                 __func__);
}

int
eb_sq_scim_user_create(void *be, const struct eb_store_scim_user *u)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_SCIM_INS)) == NULL)
		return EB_STORE_ERROR;
	if ((rc = eb_sq_bind_row(c, st, &eb_columns_scim_user, u, __func__)) !=
	    0)
		return rc;
	return eb_sq_run(c, st, __func__);
}

int
eb_sq_scim_user_get(void *be, const char *tenant, const char *id,
                    struct eb_store_scim_user *out)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_SCIM_GET)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, tenant) | eb_sq_bind_text(st, 2, id))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_one(c, st, &eb_sq_rt_scim_user, out, __func__);
}

int
eb_sq_scim_user_replace(void *be, const struct eb_store_scim_user *u)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_SCIM_REPLACE)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, u->tenant) | eb_sq_bind_text(st, 2, u->id) |
	    eb_sq_bind_text(st, 3, u->user_name) |
	    eb_sq_bind_text(st, 4, u->external_id) |
	    sqlite3_bind_int64(st, 5, u->active) |
	    eb_sq_bind_text(st, 6, u->resource) |
	    sqlite3_bind_int64(st, 7, u->updated) |
	    sqlite3_bind_int64(st, 8, u->version))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	if ((rc = eb_sq_run(c, st, __func__)) == 0 &&
	    sqlite3_changes(c->db) == 0)
		rc = EB_STORE_NOT_FOUND;
	return rc;
}

int
eb_sq_scim_user_delete(void *be, const char *tenant, const char *id)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_SCIM_DEL)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, tenant) | eb_sq_bind_text(st, 2, id))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	if ((rc = eb_sq_run(c, st, __func__)) == 0 &&
	    sqlite3_changes(c->db) == 0)
		rc = EB_STORE_NOT_FOUND;
	return rc;
}

/* A filter's matches, all of them. */
static int
list_by(struct eb_sq_conn *c, const char *tenant, int by, const char *value,
        struct eb_store_scim_user_list *out, int64_t *total)
{
	sqlite3_stmt *st;
	int rc;

	st = eb_sq_stmt(c, by == EB_STORE_SCIM_USER_NAME ? ST_SCIM_BY_NAME
	                                                 : ST_SCIM_BY_EXT);
	if (st == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, tenant) | eb_sq_bind_text(st, 2, value))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	rc = eb_sq_all(c, st, &eb_sq_rt_scim_user, (void **)&out->v, &out->n,
	               __func__);
	if (rc == EB_STORE_OK)
		*total = (int64_t)out->n;
	return rc;
}

int
eb_sq_scim_user_list(void *be, const char *tenant, int by, const char *value,
                     size_t offset, size_t limit,
                     struct eb_store_scim_user_list *out, int64_t *total)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof(*out));
	*total = 0;
	if ((c = eb_sq_conn(be)) == NULL)
		return EB_STORE_ERROR;
	if (by != EB_STORE_SCIM_ALL)
		return list_by(c, tenant, by, value, out, total);
	if ((st = eb_sq_stmt(c, ST_SCIM_COUNT)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, tenant))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	if ((rc = eb_sq_i64(c, st, total, __func__)) != EB_STORE_OK)
		return rc;
	if (limit == 0 || (st = eb_sq_stmt(c, ST_SCIM_LIST)) == NULL)
		return limit == 0 ? EB_STORE_OK : EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, tenant) |
	    sqlite3_bind_int64(st, 2, lim(offset)) |
	    sqlite3_bind_int64(st, 3, lim(limit)))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_all(c, st, &eb_sq_rt_scim_user, (void **)&out->v, &out->n,
	                 __func__);
}
