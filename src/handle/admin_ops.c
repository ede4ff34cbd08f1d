/*
 * The admin API's actions (README "Admin API"), each on a worker thread
 * with the store: grants (list with filters and paging, get, revoke,
 * retire, by person), signing keys (list, rotate), mapping overrides
 * (list, set, unset) and the audit query. They share with the CLI what
 * grant/manage.h holds, so that both say the same things the same way.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/env.h"
#include "core/mem.h"
#include "grant/manage.h"
#include "handle/admin_int.h"
#include "handle/handle.h"
#include "jose/jose.h"
#include "store/store.h"
#include "token/token.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX     1000
#define MAX_REASON   512
#define ACTIVATE_MAX 86400 /* as `keys rotate --activate-in` */

/* A query parameter (NULL when absent; a value that is not UTF-8 reads as
 * absent, jansson holds only UTF-8). */
static const char *
q(struct admin_call *c, const char *name)
{
	return json_string_value(json_object_get(c->query, name));
}

/*
 * Body member key as a string into *out (NULL when absent); -1 (the call
 * failed with 400) when it is not a string or breaks the text rules.
 */
static int
in_str(struct admin_call *c, const char *key, size_t max, const char **out)
{
	json_t *v = json_object_get(c->in, key);
	char why[256];

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		snprintf(why, sizeof(why), "%s: must be a string", key);
		eb_admin_fail(c, 400, why);
		return -1;
	}
	if (eb_manage_text_check(key, json_string_value(v), max, why,
	                         sizeof(why)) == -1) {
		eb_admin_fail(c, 400, why);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

/* A query number in 0..max (def when absent); -1 (400) when malformed. */
static int
q_size(struct admin_call *c, const char *name, size_t def, size_t max,
       size_t *out)
{
	const char *s = q(c, name);
	char *end;
	unsigned long long v;
	char why[128];

	*out = def;
	if (s == NULL)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v > max) {
		snprintf(why, sizeof(why), "%s: must be a number from 0 to %zu",
		         name, max);
		eb_admin_fail(c, 400, why);
		return -1;
	}
	*out = (size_t)v;
	return 0;
}

/* tenant (query or body) must name a configured tenant; -1 (404). */
static int
tenant_known(struct admin_call *c, const char *tenant)
{
	if (tenant == NULL || eb_config_tenant(c->cfg, tenant) != NULL)
		return 0;
	eb_admin_fail(c, 404, "no such tenant");
	return -1;
}

static void
set_audit(struct admin_call *c, const char *tenant, const char *subject)
{
	if (tenant != NULL && c->tenant == NULL)
		c->tenant = eb_strdup(tenant);
	if (subject != NULL && c->subject == NULL)
		c->subject = eb_strdup(subject);
}

/* ---- grants ---- */

struct grants_q {
	const char *tenant, *user, *apple_id, *status;
	size_t limit, offset;
};

static int
grants_query(struct admin_call *c, struct grants_q *g,
             struct eb_store_grant_filter *f)
{
	memset(f, 0, sizeof(*f));
	g->tenant = q(c, "tenant");
	g->user = q(c, "user");
	g->apple_id = q(c, "managed_apple_id");
	g->status = q(c, "status");
	if (q_size(c, "limit", PAGE_DEFAULT, PAGE_MAX, &g->limit) == -1 ||
	    q_size(c, "offset", 0, (size_t)1 << 30, &g->offset) == -1 ||
	    tenant_known(c, g->tenant) == -1)
		return -1;
	if (g->limit == 0)
		g->limit = PAGE_DEFAULT;
	f->tenant = g->tenant;
	f->managed_apple_id = g->apple_id;
	f->status = -1;
	if (g->status != NULL &&
	    (f->status = eb_store_grant_status_parse(g->status)) == -1) {
		eb_admin_fail(c, 400, "status: not a grant status");
		return -1;
	}
	c->detail = json_pack(
	    "{s:s?,s:s?,s:s?,s:s?,s:I,s:I}", "tenant", g->tenant, "user",
	    g->user, "managed_apple_id", g->apple_id, "status", g->status,
	    "limit", (json_int_t)g->limit, "offset", (json_int_t)g->offset);
	return 0;
}

static void
grants_list(struct admin_call *c)
{
	struct eb_store_grant_filter f;
	struct eb_store_grant_list l;
	struct grants_q g;
	json_t *arr;
	size_t i, seen = 0;
	int more = 0;

	if (grants_query(c, &g, &f) == -1)
		return;
	set_audit(c, g.tenant, g.user);
	/* without a person filter the store pages; with one, the person's
	 * grants are taken from the tenant's (or every) list */
	if (g.user == NULL)
		f.limit = g.offset + g.limit + 1;
	if (eb_store_grant_list(c->env->store, &f, &l) != EB_STORE_OK) {
		eb_admin_fail(c, 503, "the store does not answer");
		return;
	}
	if ((arr = json_array()) == NULL)
		goto out;
	for (i = 0; i < l.n; i++) {
		if (!eb_manage_is_person(&l.v[i], g.user))
			continue;
		if (seen++ < g.offset)
			continue;
		if (json_array_size(arr) == g.limit) {
			more = 1;
			break;
		}
		json_array_append_new(arr, eb_manage_grant_json(&l.v[i], NULL));
	}
	c->out = json_pack("{s:o,s:o}", "grants", arr, "next_offset",
	                   more ? json_integer((json_int_t)(g.offset + g.limit))
	                        : json_null());
out:
	eb_store_grant_list_finish(&l);
}

static void
grant_get(struct admin_call *c)
{
	const char *id = c->id;
	struct eb_store_grant g;
	int rc;

	set_audit(c, NULL, id);
	memset(&g, 0, sizeof(g));
	rc = eb_store_grant_get(c->env->store, id, &g);
	if (rc == EB_STORE_NOT_FOUND)
		eb_admin_fail(c, 404, "no such grant");
	else if (rc != EB_STORE_OK)
		eb_admin_fail(c, 503, "the store does not answer");
	else {
		set_audit(c, g.tenant, NULL);
		c->out = eb_manage_grant_json(&g, NULL);
	}
	eb_store_grant_finish(&g);
}

static const char *
end_result(enum eb_manage_end r, int retire, int *status)
{
	*status = 200;
	switch (r) {
	case EB_MANAGE_ENDED:
		return retire ? "retired" : "revoked";
	case EB_MANAGE_ALREADY:
		return retire ? "already retired" : "already revoked";
	case EB_MANAGE_NOT_FOUND:
		*status = 404;
		return "no such grant";
	case EB_MANAGE_CONFLICT:
		*status = 409;
		return retire ? "superseded or expired: not changed"
		              : "no longer active: not changed";
	default:
		*status = 503;
		return "the store failed";
	}
}

static void
grant_end(struct admin_call *c, int retire)
{
	const char *id = c->id, *reason, *res;
	int status;

	set_audit(c, NULL, id);
	if (in_str(c, "reason", MAX_REASON, &reason) == -1)
		return;
	c->detail = json_pack("{s:s?}", "reason", reason);
	res = end_result(eb_manage_end_grant(c->env->store, id, retire, reason,
	                                     eb_now(c->env)),
	                 retire, &status);
	json_object_set_new(c->detail, "result", json_string(res));
	if (status != 200) {
		eb_admin_fail(c, status, res);
		return;
	}
	c->out = json_pack("{s:s,s:s}", "id", id, "result", res);
}

static void
grant_revoke(struct admin_call *c)
{
	grant_end(c, 0);
}

static void
grant_retire(struct admin_call *c)
{
	grant_end(c, 1);
}

/* revoke or retire every active grant of one person ("user"), of one
 * tenant when "tenant" is given */
static void
person_end(struct admin_call *c, int retire)
{
	struct eb_store_grant_filter f;
	struct eb_store_grant_list l;
	const char *user, *tenant, *reason, *res;
	json_t *ended, *failed;
	size_t i;
	int status;

	if (in_str(c, "user", EB_MANAGE_MAX_SUBJECT, &user) == -1 ||
	    in_str(c, "tenant", 64, &tenant) == -1 ||
	    in_str(c, "reason", MAX_REASON, &reason) == -1 ||
	    tenant_known(c, tenant) == -1)
		return;
	if (user == NULL) {
		eb_admin_fail(c, 400, "user: required");
		return;
	}
	set_audit(c, tenant, user);
	c->detail = json_pack("{s:s?}", "reason", reason);
	memset(&f, 0, sizeof(f));
	f.tenant = tenant;
	f.status = EB_STORE_GRANT_ACTIVE;
	if (eb_store_grant_list(c->env->store, &f, &l) != EB_STORE_OK) {
		eb_admin_fail(c, 503, "the store does not answer");
		return;
	}
	ended = json_array();
	failed = json_array();
	for (i = 0; i < l.n; i++) {
		if (!eb_manage_is_person(&l.v[i], user))
			continue;
		res = end_result(eb_manage_end_grant(c->env->store, l.v[i].id,
		                                     retire, reason,
		                                     eb_now(c->env)),
		                 retire, &status);
		json_array_append_new(status == 200 ? ended : failed,
		                      json_string(l.v[i].id));
		(void)res;
	}
	eb_store_grant_list_finish(&l);
	json_object_set(c->detail, "ended", ended);
	c->out = json_pack("{s:o,s:o}", "ended", ended, "failed", failed);
	if (json_array_size(ended) + json_array_size(failed) == 0)
		eb_admin_fail(c, 404, "no active grant of that person");
	else if (json_array_size(failed) > 0)
		c->status = 409;
}

static void
person_revoke(struct admin_call *c)
{
	person_end(c, 0);
}

static void
person_retire(struct admin_call *c)
{
	person_end(c, 1);
}

/* ---- signing keys ---- */

static void
keys_list(struct admin_call *c)
{
	struct eb_store_key_list l;
	int64_t now = eb_now(c->env);
	const char *state;
	json_t *arr;
	size_t i;
	int have = 0, usable;

	if (eb_store_key_list(c->env->store, NULL, &l) != EB_STORE_OK) {
		eb_admin_fail(c, 503, "the store does not answer");
		return;
	}
	arr = json_array();
	for (i = 0; i < l.n; i++) {
		const struct eb_store_key *k = &l.v[i];

		if (k->tenant != NULL && k->tenant[0] != '\0')
			continue;
		state = eb_manage_key_state(c->env->seal_ring, k, now, &have,
		                            &usable);
		json_array_append_new(
		    arr,
		    json_pack("{s:s,s:s,s:s?,s:I,s:I,s:I,s:I,s:b}", "kid",
		              k->kid, "state", state, "alg", k->alg, "created",
		              (json_int_t)k->created, "activates_at",
		              (json_int_t)k->activates_at, "retired_at",
		              (json_int_t)k->retired_at, "not_after",
		              (json_int_t)k->not_after, "usable", usable));
	}
	eb_store_key_list_finish(&l);
	c->out = json_pack("{s:o}", "keys", arr);
}

static void
keys_rotate(struct admin_call *c)
{
	char kid[EB_JOSE_MAX_KID + 1], err[256];
	json_t *v = json_object_get(c->in, "activate_in");
	json_int_t in = 0;

	if (v != NULL &&
	    (!json_is_integer(v) || (in = json_integer_value(v)) < 0 ||
	     in > ACTIVATE_MAX)) {
		eb_admin_fail(c, 400,
		              "activate_in: must be seconds from 0 to 86400");
		return;
	}
	if (eb_signer_rotate_ring(c->env->store, c->env->seal_ring,
	                          eb_signer_max_ttl(c->cfg), (int64_t)in, kid,
	                          sizeof(kid), err, sizeof(err)) != 0) {
		c->detail = json_pack("{s:s}", "error", err);
		eb_admin_fail(c, 409, err);
		return;
	}
	(void)eb_signer_refresh(c->env->signer);
	set_audit(c, NULL, kid);
	c->detail = json_pack("{s:I}", "activate_in", in);
	c->out = json_pack("{s:s,s:I}", "kid", kid, "activate_in", in);
}

/* ---- mapping overrides ---- */

static void
mappings_list(struct admin_call *c)
{
	struct eb_store_mapping_list l;
	const char *tenant = q(c, "tenant");
	json_t *arr;
	size_t i;

	if (tenant == NULL) {
		eb_admin_fail(c, 400, "tenant: required");
		return;
	}
	if (tenant_known(c, tenant) == -1)
		return;
	set_audit(c, tenant, NULL);
	if (eb_store_mapping_list(c->env->store, tenant, &l) != EB_STORE_OK) {
		eb_admin_fail(c, 503, "the store does not answer");
		return;
	}
	arr = json_array();
	for (i = 0; i < l.n; i++)
		json_array_append_new(arr, eb_manage_mapping_json(&l.v[i]));
	eb_store_mapping_list_finish(&l);
	c->out = json_pack("{s:o}", "mappings", arr);
}

static void
mapping_set(struct admin_call *c)
{
	struct eb_store_mapping m;
	const char *tenant, *subject, *apple_id, *note;
	char why[512];
	int rc;

	if (in_str(c, "tenant", 64, &tenant) == -1 ||
	    in_str(c, "subject", EB_MANAGE_MAX_SUBJECT, &subject) == -1 ||
	    in_str(c, "managed_apple_id", EB_MANAGE_MAX_APPLEID, &apple_id) ==
	        -1 ||
	    in_str(c, "note", EB_MANAGE_MAX_NOTE, &note) == -1)
		return;
	if (tenant == NULL || subject == NULL || apple_id == NULL) {
		eb_admin_fail(c, 400,
		              "tenant, subject and managed_apple_id: required");
		return;
	}
	if (eb_manage_apple_id_check("managed_apple_id", apple_id, why,
	                             sizeof(why)) == -1) {
		eb_admin_fail(c, 400, why);
		return;
	}
	if (tenant_known(c, tenant) == -1)
		return;
	set_audit(c, tenant, subject);
	c->detail =
	    json_pack("{s:s,s:s?}", "managed_apple_id", apple_id, "note", note);
	memset(&m, 0, sizeof(m));
	m.tenant = (char *)(uintptr_t)tenant;
	m.subject = (char *)(uintptr_t)subject;
	m.managed_apple_id = (char *)(uintptr_t)apple_id;
	m.note = (char *)(uintptr_t)note;
	m.created = m.updated = eb_now(c->env);
	if ((rc = eb_store_mapping_put(c->env->store, &m)) != EB_STORE_OK) {
		eb_admin_fail(c, 503, eb_store_strerror(rc));
		return;
	}
	c->out = eb_manage_mapping_json(&m);
}

static void
mapping_unset(struct admin_call *c)
{
	const char *tenant = q(c, "tenant"), *subject = q(c, "subject");
	int rc;

	if (tenant == NULL || subject == NULL) {
		eb_admin_fail(c, 400, "tenant and subject: required");
		return;
	}
	if (tenant_known(c, tenant) == -1)
		return;
	set_audit(c, tenant, subject);
	rc = eb_store_mapping_delete(c->env->store, tenant, subject);
	if (rc == EB_STORE_NOT_FOUND)
		eb_admin_fail(c, 404, "no override for that subject");
	else if (rc != EB_STORE_OK)
		eb_admin_fail(c, 503, eb_store_strerror(rc));
	else
		c->out = json_pack("{s:s,s:s,s:b}", "tenant", tenant, "subject",
		                   subject, "removed", 1);
}

/* ---- audit ---- */

static void
audit_query(struct admin_call *c)
{
	struct eb_store_audit_filter f;
	struct eb_store_audit_list l;
	const char *since = q(c, "since");
	json_t *arr;
	size_t i;

	memset(&f, 0, sizeof(f));
	f.tenant = q(c, "tenant");
	f.event = q(c, "event");
	if (q_size(c, "limit", PAGE_DEFAULT, PAGE_MAX, &f.limit) == -1)
		return;
	if (since != NULL &&
	    eb_manage_parse_time(since, eb_now(c->env), &f.since) == -1) {
		eb_admin_fail(c, 400,
		              "since: unix seconds, YYYY-MM-DD, "
		              "YYYY-MM-DDTHH:MM:SSZ, or an age (30m, 24h, 7d)");
		return;
	}
	set_audit(c, f.tenant, NULL);
	c->detail = json_pack("{s:s?,s:s?,s:I}", "event", f.event, "since",
	                      since, "limit", (json_int_t)f.limit);
	if (eb_store_audit_query(c->env->store, &f, &l) != EB_STORE_OK) {
		eb_admin_fail(c, 503, "the store does not answer");
		return;
	}
	arr = json_array();
	for (i = 0; i < l.n; i++)
		json_array_append_new(arr, eb_manage_audit_json(&l.v[i]));
	eb_store_audit_list_finish(&l);
	c->out = json_pack("{s:o}", "events", arr);
}

/* ---- the route handlers (handle.h) ---- */

#define ACTION(fn, label)                                                      \
	static const struct admin_action act_##fn = {label, fn};               \
	int eb_handle_admin_##fn(struct eb_request *req)                       \
	{                                                                      \
		return eb_admin_handle(req, &act_##fn);                        \
	}

ACTION(grants_list, "grants.list")
ACTION(grant_get, "grants.get")
ACTION(grant_revoke, "grants.revoke")
ACTION(grant_retire, "grants.retire")
ACTION(person_revoke, "grants.revoke_person")
ACTION(person_retire, "grants.retire_person")
ACTION(keys_list, "keys.list")
ACTION(keys_rotate, "keys.rotate")
ACTION(mappings_list, "mappings.list")
ACTION(mapping_set, "mappings.set")
ACTION(mapping_unset, "mappings.unset")
ACTION(audit_query, "audit.list")
