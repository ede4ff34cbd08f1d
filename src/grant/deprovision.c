/*
 * SCIM deprovisioning (grant/deprovision.h): find the person's active
 * grants through the store's index on login and object id, end each per
 * the tenant's on_access_lost with the same store operations `grants
 * retire|revoke` uses (each one transaction that revokes the grant's
 * tokens and, on PostgreSQL, bumps the invalidation generation), then one
 * audit event with the counts.
 */
#include "grant/deprovision.h"

#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "store/store.h"

#define REASON "deprovisioned by SCIM"

/* One grant: retired or revoked as the tenant says. */
static int
end_one(struct eb_store *s, const struct eb_tenant *t, const char *id,
        int64_t now)
{
	if (t->on_access_lost == EB_ON_ACCESS_LOST_UNENROLL)
		return eb_store_grant_retire(s, id, REASON, now);
	return eb_store_grant_set_status(s, id, EB_STORE_GRANT_REVOKED, REASON,
	                                 now);
}

static void
audit(struct eb_store *s, const struct eb_tenant *t,
      const struct eb_deprovision_in *in, const struct eb_deprovision_out *o)
{
	struct eb_store_audit ev;
	json_free_t jfree = NULL;
	json_t *d;
	char *txt = NULL;

	d = json_pack(
	    "{s:s, s:s?, s:s?, s:s, s:I, s:I, s:I}", "why", in->why, "userName",
	    in->user_name, "externalId", in->external_id, "action",
	    t->on_access_lost == EB_ON_ACCESS_LOST_UNENROLL ? "retire"
	                                                    : "revoke",
	    "grants", (json_int_t)o->found, "ended", (json_int_t)o->ended,
	    "failed", (json_int_t)o->failed);
	if (d == NULL || (txt = json_dumps(d, JSON_COMPACT)) == NULL) {
		log_warnx("tenant %s: scim.deprovision: out of memory", t->id);
		goto out;
	}
	memset(&ev, 0, sizeof(ev));
	ev.ts = in->now;
	ev.tenant = t->id;
	ev.event = "scim.deprovision";
	ev.subject = (char *)(uintptr_t)in->scim_id;
	ev.detail = txt;
	if (eb_store_audit_add(s, &ev) != EB_STORE_OK)
		log_warnx("tenant %s: scim.deprovision: audit event not "
		          "stored",
		          t->id);
out:
	json_get_alloc_funcs(NULL, &jfree);
	if (txt != NULL)
		jfree(txt);
	json_decref(d);
}

int
eb_grant_deprovision(struct eb_store *s, const struct eb_tenant *t,
                     const struct eb_deprovision_in *in,
                     struct eb_deprovision_out *out)
{
	struct eb_store_grant_list l;
	char *login = NULL;
	size_t i;
	int rc, retire = t->on_access_lost == EB_ON_ACCESS_LOST_UNENROLL;

	memset(out, 0, sizeof(*out));
	if (in->user_name != NULL &&
	    (login = eb_strdup(in->user_name)) == NULL) {
		log_warnx("tenant %s: %s: out of memory", t->id, __func__);
		return -1;
	}
	if (login != NULL)
		eb_str_lower(login);
	rc = eb_store_grant_list_person(s, t->id, login, in->external_id, &l);
	eb_free(login);
	if (rc != EB_STORE_OK) {
		log_warnx("tenant %s: SCIM user %s %s: its grants could not be "
		          "read: %s",
		          t->id, in->scim_id, in->why, eb_store_strerror(rc));
		out->failed = 1;
		return -1;
	}
	out->found = l.n;
	for (i = 0; i < l.n; i++) {
		if (end_one(s, t, l.v[i].id, in->now) == EB_STORE_OK) {
			out->ended++;
			log_ev(
			    EB_LOG_INFO,
			    EB_EVT(t->id,
			           retire ? "grant.retired" : "grant.revoked",
			           in->why, l.v[i].id),
			    "SCIM user %s %s: grant %s", in->scim_id, in->why,
			    retire ? "retired" : "revoked");
		} else
			out->failed++;
	}
	eb_store_grant_list_finish(&l);
	log_ev(out->failed == 0 ? EB_LOG_INFO : EB_LOG_WARN,
	       EB_EVT(t->id, "user.deprovisioned", in->why, NULL),
	       "SCIM user %s %s: %zu grant%s %s, %zu failed", in->scim_id,
	       in->why, out->ended, out->ended == 1 ? "" : "s",
	       retire ? "retired" : "revoked", out->failed);
	audit(s, t, in, out);
	return out->failed == 0 ? 0 : -1;
}

/* 1 when a user by (by, value) is inactive, 0 when none, -1 on error. */
static int
inactive_by(struct eb_store *s, const struct eb_tenant *t, int by,
            const char *value)
{
	struct eb_store_scim_user_list l;
	int64_t total;
	size_t i;
	int rc, found = 0;

	rc = eb_store_scim_user_list(s, t->id, by, value, 0, 16, &l, &total);
	if (rc != EB_STORE_OK) {
		log_warnx("tenant %s: SCIM users unreadable: %s", t->id,
		          eb_store_strerror(rc));
		return -1;
	}
	for (i = 0; i < l.n; i++)
		found |= l.v[i].active == 0;
	eb_store_scim_user_list_finish(&l);
	return found;
}

int
eb_grant_scim_inactive(struct eb_store *s, const struct eb_tenant *t,
                       const char *login, const char *oid)
{
	int a = 0, b = 0;

	if (login != NULL)
		a = inactive_by(s, t, EB_STORE_SCIM_USER_NAME, login);
	if (a == 0 && oid != NULL)
		b = inactive_by(s, t, EB_STORE_SCIM_EXTERNAL_ID, oid);
	return a < 0 || b < 0 ? -1 : a || b;
}
