/*
 * The PostgreSQL backend's SCIM provisioning records: the User resources a
 * provisioning client wrote (scim_users), and the active grants of one
 * person as such a client names them (by login or IdP object id), which a
 * deprovisioning ends through the grant operations (each bumping the
 * invalidation generation in its own transaction).
 */
#include "store/pg/pg_int.h"

#include <string.h>

struct person_q {
	const char *tenant, *login, *oid;
	struct eb_store_grant_list *out;
};

static int
person_fn(struct eb_pg_conn *c, void *arg)
{
	struct person_q *q = arg;
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->tenant);
	eb_pg_args_text(&a, q->login);
	eb_pg_args_text(&a, q->oid);
	return eb_pg_all(c, PS_GRANT_OF_PERSON, &a, &eb_pg_rt_grant,
	                 (void **)&q->out->v, &q->out->n);
}

int
eb_pg_grant_list_person(void *be, const char *tenant, const char *login,
                        const char *oid, struct eb_store_grant_list *out)
{
	struct person_q q = {tenant, login, oid, out};

	memset(out, 0, sizeof(*out));
	return eb_pg_with(be, person_fn, &q);
}

static int
create_fn(struct eb_pg_conn *c, void *arg)
{
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	if (eb_pg_args_row(&a, &eb_columns_scim_user, arg) != 0)
		return EB_STORE_ERROR;
	return eb_pg_run(c, PS_SCIM_INS, &a, NULL);
}

int
eb_pg_scim_user_create(void *be, const struct eb_store_scim_user *u)
{
	return eb_pg_with(be, create_fn, (void *)u);
}

struct user_q {
	const char *tenant, *id;
	struct eb_store_scim_user *out; /* NULL: delete */
};

static int
user_fn(struct eb_pg_conn *c, void *arg)
{
	struct user_q *q = arg;
	struct eb_pg_args a;
	size_t n = 0;
	int rc;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->tenant);
	eb_pg_args_text(&a, q->id);
	if (q->out != NULL)
		return eb_pg_one(c, PS_SCIM_GET, &a, &eb_pg_rt_scim_user,
		                 q->out);
	if ((rc = eb_pg_run(c, PS_SCIM_DEL, &a, &n)) != EB_STORE_OK)
		return rc;
	return n > 0 ? EB_STORE_OK : EB_STORE_NOT_FOUND;
}

int
eb_pg_scim_user_get(void *be, const char *tenant, const char *id,
                    struct eb_store_scim_user *out)
{
	struct user_q q = {tenant, id, out};

	memset(out, 0, sizeof(*out));
	return eb_pg_with(be, user_fn, &q);
}

int
eb_pg_scim_user_delete(void *be, const char *tenant, const char *id)
{
	struct user_q q = {tenant, id, NULL};

	return eb_pg_with(be, user_fn, &q);
}

static int
replace_fn(struct eb_pg_conn *c, void *arg)
{
	const struct eb_store_scim_user *u = arg;
	struct eb_pg_args a;
	size_t n = 0;
	int rc;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, u->tenant);
	eb_pg_args_text(&a, u->id);
	eb_pg_args_text(&a, u->user_name);
	eb_pg_args_text(&a, u->external_id);
	eb_pg_args_int8(&a, u->active);
	eb_pg_args_text(&a, u->resource);
	eb_pg_args_int8(&a, u->updated);
	eb_pg_args_int8(&a, u->version);
	if ((rc = eb_pg_run(c, PS_SCIM_REPLACE, &a, &n)) != EB_STORE_OK)
		return rc;
	return n > 0 ? EB_STORE_OK : EB_STORE_NOT_FOUND;
}

int
eb_pg_scim_user_replace(void *be, const struct eb_store_scim_user *u)
{
	return eb_pg_with(be, replace_fn, (void *)u);
}

struct list_q {
	const char *tenant, *value;
	int by;
	size_t offset, limit;
	struct eb_store_scim_user_list *out;
	int64_t *total;
};

/* by ALL: the count, then the page; a filter: all its matches. */
static int
list_fn(struct eb_pg_conn *c, void *arg)
{
	struct list_q *q = arg;
	struct eb_pg_args a;
	PGresult *r;
	int rc;

	eb_store_scim_user_list_finish(q->out); /* a retried transaction */
	*q->total = 0;
	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->tenant);
	if (q->by != EB_STORE_SCIM_ALL) {
		eb_pg_args_text(&a, q->value);
		rc = eb_pg_all(
		    c,
		    q->by == EB_STORE_SCIM_USER_NAME ? PS_SCIM_BY_NAME
		                                     : PS_SCIM_BY_EXT,
		    &a, &eb_pg_rt_scim_user, (void **)&q->out->v, &q->out->n);
		*q->total = (int64_t)q->out->n;
		return rc;
	}
	if ((rc = eb_pg_exec(c, PS_SCIM_COUNT, &a, &r)) != EB_STORE_OK)
		return rc;
	if (eb_pg_get_int8(r, 0, 0, q->total) != 0)
		rc = EB_STORE_ERROR;
	PQclear(r);
	if (rc != EB_STORE_OK || q->limit == 0)
		return rc;
	eb_pg_args_int8(&a, q->offset < INT64_MAX ? (int64_t)q->offset : 0);
	eb_pg_args_int8(&a,
	                q->limit < INT64_MAX ? (int64_t)q->limit : INT64_MAX);
	return eb_pg_all(c, PS_SCIM_LIST, &a, &eb_pg_rt_scim_user,
	                 (void **)&q->out->v, &q->out->n);
}

int
eb_pg_scim_user_list(void *be, const char *tenant, int by, const char *value,
                     size_t offset, size_t limit,
                     struct eb_store_scim_user_list *out, int64_t *total)
{
	struct list_q q = {tenant, value, by, offset, limit, out, total};

	memset(out, 0, sizeof(*out));
	*total = 0;
	if (by == EB_STORE_SCIM_ALL)
		return eb_pg_in_tx(be, list_fn, &q);
	return eb_pg_with(be, list_fn, &q);
}
