/*
 * The SCIM 2.0 endpoint of a tenant with "scim" (RFC 7644), for
 * provisioning clients such as Microsoft Entra and Okta:
 *
 *   GET, POST            /t/{T}/scim/v2/Users     (list with filter, create)
 *   GET, PUT, PATCH, DELETE /t/{T}/scim/v2/Users/{id}
 *   GET                  /t/{T}/scim/v2/{ServiceProviderConfig,
 *                        ResourceTypes, Schemas} (scim_meta.c)
 *
 * Every request carries the tenant's scim.token as a bearer token
 * (compared in constant time, never logged); a tenant without "scim" has
 * no such endpoint (404). A User written with active false, or deleted,
 * ends the person's grants before the answer is sent
 * (grant/deprovision.h), as the tenant's on_access_lost says.
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "core/config.h"
#include "core/env.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rand.h"
#include "core/str.h"
#include "grant/deprovision.h"
#include "handle/handle.h"
#include "handle/scim_int.h"
#include "jose/jose.h"
#include "scim/scim.h"
#include "store/store.h"

#define MAX_DEPTH    16          /* JSON nesting of a request body */
#define MAX_RESOURCE (32 * 1024) /* bytes of a stored User */
#define MAX_PAGE     200         /* users per list page */
#define AUTH_MAX     4200        /* bytes of an Authorization header */

/* ---- answers ---------------------------------------------------------- */

static void
iso_time(int64_t t, char out[32])
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "1970-01-01T00:00:00Z");
}

/* The resource as a client reads it: ours plus id, active and meta. */
static json_t *
render(const struct eb_config *cfg, const struct eb_store_scim_user *u)
{
	char created[32], modified[32], version[32], *loc = NULL;
	json_t *o, *meta;
	size_t n;

	if ((o = json_loads(u->resource, 0, NULL)) == NULL ||
	    !json_is_object(o)) {
		json_decref(o);
		log_warnx("tenant %s: SCIM user %s: stored resource unreadable",
		          u->tenant, u->id);
		return NULL;
	}
	iso_time(u->created, created);
	iso_time(u->updated, modified);
	snprintf(version, sizeof(version), "W/\"%lld\"", (long long)u->version);
	n = strlen(cfg->public_url) + strlen(u->tenant) + strlen(u->id) + 32;
	if ((loc = eb_malloc(n)) != NULL)
		snprintf(loc, n, "%s/t/%s/scim/v2/Users/%s", cfg->public_url,
		         u->tenant, u->id);
	meta = json_pack("{s:s, s:s, s:s, s:s, s:s?}", "resourceType", "User",
	                 "created", created, "lastModified", modified,
	                 "version", version, "location", loc);
	eb_free(loc);
	if (meta == NULL || json_object_set_new(o, "meta", meta) != 0 ||
	    json_object_set_new(o, "id", json_string(u->id)) != 0 ||
	    json_object_set_new(o, "active", json_boolean(u->active)) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Answer one user: 200 or 201 (with Location), ETag. */
static void
send_user(struct eb_request *req, int status,
          const struct eb_store_scim_user *u)
{
	json_t *o = render(eb_req_config(req), u);
	const char *loc;
	char etag[32];

	if (o == NULL) {
		eb_scim_send_error(req, 500, NULL, "internal error");
		return;
	}
	snprintf(etag, sizeof(etag), "W/\"%lld\"", (long long)u->version);
	eb_resp_header(req, "ETag", etag);
	loc = json_string_value(
	    json_object_get(json_object_get(o, "meta"), "location"));
	if (status == 201 && loc != NULL)
		eb_resp_header(req, "Location", loc);
	eb_scim_send(req, status, o);
}

static void
send_store_error(struct eb_request *req, int rc)
{
	if (rc == EB_STORE_NOT_FOUND)
		eb_scim_send_error(req, 404, NULL, "no such user");
	else if (rc == EB_STORE_CONFLICT)
		eb_scim_send_error(req, 409, "uniqueness",
		                   "a user of that userName exists");
	else
		eb_scim_send_error(req, 503, NULL, "store unavailable");
}

static void
send_err(struct eb_request *req, const struct eb_scim_err *e)
{
	eb_scim_send_error(req, e->status, e->scim_type, e->detail);
}

/* ---- requests --------------------------------------------------------- */

/* 1 when the request carries the tenant's token as its bearer. */
static int
authorized(struct eb_request *req, const struct eb_tenant *t)
{
	const char *h = eb_req_header(req, "Authorization");
	size_t n;

	if (h == NULL || eb_req_header_count(req, "Authorization") != 1 ||
	    (n = strlen(h)) > AUTH_MAX || n < 7 ||
	    strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	for (h += 7; *h == ' '; h++)
		;
	return eb_str_ct_eq(h, strlen(h), t->scim->token, t->scim->token_len);
}

/* The request body as a JSON object, or NULL (answered: 400). */
static json_t *
body_object(struct eb_request *req)
{
	size_t len;
	const char *b = eb_req_body(req, &len);
	json_t *o = NULL;

	if (b != NULL && len > 0)
		o = eb_jose_json_parse_object(b, len, MAX_DEPTH);
	if (o == NULL)
		eb_scim_send_error(req, 400, "invalidSyntax",
		                   "the body must be a JSON object");
	return o;
}

/* A resource as stored: its text within MAX_RESOURCE, or NULL. */
static char *
resource_text(struct eb_request *req, const json_t *res)
{
	char *txt = json_dumps(res, JSON_COMPACT);

	if (txt == NULL)
		eb_scim_send_error(req, 500, NULL, "internal error");
	else if (strlen(txt) > MAX_RESOURCE) {
		eb_scim_send_error(req, 413, NULL, "the User is too large");
		eb_free(txt);
		txt = NULL;
	}
	return txt;
}

/*
 * A user active no more, or deleted: end their grants now. 0, or -1
 * answered with 503: the client retries, and ending again is harmless.
 */
static int
deprovision(struct eb_request *req, const struct eb_store_scim_user *u,
            const char *why)
{
	struct eb_env *env = eb_req_env(req);
	struct eb_deprovision_in in = {u->id, u->user_name, u->external_id, why,
	                               eb_now(eb_req_env(req))};
	struct eb_deprovision_out out;

	if (eb_grant_deprovision(env->store, eb_req_tenant(req), &in, &out) ==
	    0)
		return 0;
	eb_resp_header(req, "Retry-After", "5");
	eb_scim_send_error(req, 503, NULL,
	                   "not every grant of the user could be ended; "
	                   "try again");
	return -1;
}

/*
 * Store res (checked and normalised here) as user id of the tenant: a new
 * one (create) or a replacement (of version, when not 0); then deprovision
 * when it is inactive, and answer it. The caller keeps res. Returns 0, or
 * 1 without answering when version was given and the user has another one
 * now (the caller reads it again).
 */
static int
store_user(struct eb_request *req, const char *id, json_t *res, int create,
           int64_t version)
{
	struct eb_env *env = eb_req_env(req);
	const struct eb_tenant *t = eb_req_tenant(req);
	struct eb_store_scim_user u, back;
	struct eb_scim_facts f;
	struct eb_scim_err e;
	int rc;

	if (eb_scim_user_check(res, &f, &e) != 0) {
		send_err(req, &e);
		return 0;
	}
	memset(&u, 0, sizeof(u));
	u.tenant = t->id;
	u.id = (char *)(uintptr_t)id;
	u.user_name = (char *)(uintptr_t)f.user_name;
	u.external_id = (char *)(uintptr_t)f.external_id;
	u.active = f.active;
	u.version = version;
	u.created = u.updated = eb_now(eb_req_env(req));
	if ((u.resource = resource_text(req, res)) == NULL)
		return 0;
	rc = create ? eb_store_scim_user_create(env->store, &u)
	            : eb_store_scim_user_replace(env->store, &u);
	eb_free(u.resource);
	if (rc == EB_STORE_NOT_FOUND && version != 0)
		return 1;
	if (rc == EB_STORE_OK)
		rc = eb_store_scim_user_get(env->store, t->id, id, &back);
	if (rc != EB_STORE_OK) {
		send_store_error(req, rc);
		return 0;
	}
	log_info("tenant %s: SCIM user %s %s (active %s)", t->id, id,
	         create ? "created" : "replaced", f.active ? "true" : "false");
	if (back.active || deprovision(req, &back, "deactivated") == 0)
		send_user(req, create ? 201 : 200, &back);
	eb_store_scim_user_finish(&back);
	return 0;
}

static void
create(struct eb_request *req)
{
	json_t *res;
	char *id;

	if ((res = body_object(req)) == NULL)
		return;
	if ((id = eb_rand_token(16)) == NULL)
		eb_scim_send_error(req, 500, NULL, "internal error");
	else
		store_user(req, id, res, 1, 0);
	eb_free(id);
	json_decref(res);
}

static void
replace(struct eb_request *req, const char *id)
{
	json_t *res;

	if ((res = body_object(req)) == NULL)
		return;
	store_user(req, id, res, 0, 0);
	json_decref(res);
}

/*
 * One read-patch-write of user id: 0 (answered), or 1 when another write
 * came in between (nothing answered: try again).
 */
static int
patch_once(struct eb_request *req, const char *id, const json_t *p)
{
	struct eb_env *env = eb_req_env(req);
	struct eb_store_scim_user u;
	struct eb_scim_err e;
	json_t *res = NULL;
	int rc, again = 0;

	rc = eb_store_scim_user_get(env->store, eb_req_tenant(req)->id, id, &u);
	if (rc != EB_STORE_OK)
		send_store_error(req, rc);
	else if ((res = json_loads(u.resource, 0, NULL)) == NULL)
		eb_scim_send_error(req, 500, NULL, "internal error");
	else if (eb_scim_patch(res, p, &e) != 0)
		send_err(req, &e);
	else
		again = store_user(req, id, res, 0, u.version);
	eb_store_scim_user_finish(&u);
	json_decref(res);
	return again;
}

static void
patch(struct eb_request *req, const char *id)
{
	json_t *p;
	int i;

	if ((p = body_object(req)) == NULL)
		return;
	for (i = 0; i < 3 && patch_once(req, id, p) != 0; i++)
		;
	if (i == 3)
		eb_scim_send_error(req, 409, NULL,
		                   "the user changes too fast; try again");
	json_decref(p);
}

static void
remove_user(struct eb_request *req, const char *id)
{
	struct eb_env *env = eb_req_env(req);
	const struct eb_tenant *t = eb_req_tenant(req);
	struct eb_store_scim_user u;
	int rc;

	/* the grants first: when that fails the user is still there, and
	 * the client's retry ends them */
	rc = eb_store_scim_user_get(env->store, t->id, id, &u);
	if (rc != EB_STORE_OK)
		send_store_error(req, rc);
	else if (deprovision(req, &u, "deleted") == 0) {
		rc = eb_store_scim_user_delete(env->store, t->id, id);
		if (rc != EB_STORE_OK)
			send_store_error(req, rc);
		else {
			log_info("tenant %s: SCIM user %s deleted", t->id, id);
			eb_resp_header(req, "Cache-Control", "no-store");
			eb_resp_set(req, 204, NULL, "", 0);
		}
	}
	eb_store_scim_user_finish(&u);
}

static void
get_one(struct eb_request *req, const char *id)
{
	struct eb_env *env = eb_req_env(req);
	struct eb_store_scim_user u;
	int rc;

	rc = eb_store_scim_user_get(env->store, eb_req_tenant(req)->id, id, &u);
	if (rc != EB_STORE_OK)
		send_store_error(req, rc);
	else
		send_user(req, 200, &u);
	eb_store_scim_user_finish(&u);
}

/* A query integer: def when absent, -1 when not a number. */
static long
query_int(struct eb_request *req, const char *name, long def)
{
	const char *s = eb_req_query(req, name);
	char *end;
	long v;

	if (s == NULL)
		return def;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < -1000000 || v > 1000000)
		return -1000001;
	return v;
}

/* The list answer of users l (total in all, from startIndex start). */
static json_t *
list_answer(const struct eb_config *cfg,
            const struct eb_store_scim_user_list *l, int64_t total, long start)
{
	json_t *o, *arr = json_array(), *u;
	size_t i;

	for (i = 0; arr != NULL && i < l->n; i++)
		if ((u = render(cfg, &l->v[i])) == NULL ||
		    json_array_append_new(arr, u) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	if (arr == NULL)
		return NULL;
	o = json_pack("{s:[s], s:I, s:i, s:i, s:o}", "schemas",
	              EB_SCIM_LIST_SCHEMA, "totalResults", (json_int_t)total,
	              "startIndex", (int)start, "itemsPerPage", (int)l->n,
	              "Resources", arr);
	return o;
}

static void
list(struct eb_request *req)
{
	struct eb_env *env = eb_req_env(req);
	struct eb_store_scim_user_list l;
	const char *filter = eb_req_query(req, "filter");
	long start = query_int(req, "startIndex", 1);
	long count = query_int(req, "count", MAX_PAGE);
	struct eb_scim_err e;
	char *value = NULL;
	int by = EB_STORE_SCIM_ALL, rc;
	int64_t total;

	if (start < -1000000 || count < -1000000) {
		eb_scim_send_error(req, 400, "invalidValue",
		                   "startIndex and count are integers");
		return;
	}
	start = start < 1 ? 1 : start; /* RFC 7644 3.4.2.4 */
	count = count < 0 ? 0 : count > MAX_PAGE ? MAX_PAGE : count;
	if (filter != NULL && eb_scim_filter(filter, &by, &value, &e) != 0) {
		send_err(req, &e);
		return;
	}
	rc = eb_store_scim_user_list(env->store, eb_req_tenant(req)->id, by,
	                             value, (size_t)(start - 1), (size_t)count,
	                             &l, &total);
	eb_free(value);
	if (rc != EB_STORE_OK)
		send_store_error(req, rc);
	else
		eb_scim_send(req, 200,
		             list_answer(eb_req_config(req), &l, total, start));
	eb_store_scim_user_list_finish(&l);
}

/* ---- dispatch --------------------------------------------------------- */

static int
method_is(struct eb_request *req, const char *m)
{
	return strcmp(eb_req_method(req), m) == 0;
}

/* The checks every SCIM request passes first: 0, or answered. */
static int
gate(struct eb_request *req)
{
	const struct eb_tenant *t = eb_req_tenant(req);

	if (t->scim == NULL) {
		eb_scim_send_error(req, 404, NULL, "no SCIM endpoint here");
		return -1;
	}
	if (!authorized(req, t)) {
		log_info("tenant %s: SCIM request from %s without the token",
		         t->id, eb_req_remote(req));
		eb_scim_send_error(req, 401, NULL, "bearer token required");
		return -1;
	}
	return 0;
}

static void
not_allowed(struct eb_request *req, const char *allow)
{
	eb_resp_header(req, "Allow", allow);
	eb_scim_send_error(req, 405, NULL, "method not allowed");
}

int
eb_handle_scim_users(struct eb_request *req)
{
	if (gate(req) != 0)
		return EB_HANDLED;
	if (method_is(req, "GET") || method_is(req, "HEAD"))
		list(req);
	else if (method_is(req, "POST"))
		create(req);
	else
		not_allowed(req, "GET, HEAD, POST");
	return EB_HANDLED;
}

int
eb_handle_scim_user(struct eb_request *req)
{
	const char *id = eb_req_param(req, "id");

	if (gate(req) != 0)
		return EB_HANDLED;
	if (id == NULL || strlen(id) > 64) {
		eb_scim_send_error(req, 404, NULL, "no such user");
		return EB_HANDLED;
	}
	if (method_is(req, "GET") || method_is(req, "HEAD"))
		get_one(req, id);
	else if (method_is(req, "PUT"))
		replace(req, id);
	else if (method_is(req, "PATCH"))
		patch(req, id);
	else if (method_is(req, "DELETE"))
		remove_user(req, id);
	else
		not_allowed(req, "GET, HEAD, PUT, PATCH, DELETE");
	return EB_HANDLED;
}

int
eb_handle_scim_meta(struct eb_request *req)
{
	if (gate(req) == 0)
		eb_scim_meta(req, eb_req_param(req, "rest"));
	return EB_HANDLED;
}
