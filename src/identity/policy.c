/*
 * Access policy (policy.h): required groups and allowed login domains over
 * a signed-in, mapped person, the verdict the 403 page and the audit trail
 * show, and the audit event itself.
 */
#include "identity/policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/str.h"
#include "identity/mapping.h"
#include "store/store.h"

/* Audit detail JSON is small; claim values are clipped before it. */
#define MAX_DETAIL 4096

static const char hint_admin[] =
    "Ask your IT administrator to give you access to enroll this device.";

void
eb_policy_allow(struct eb_policy_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->allow = 1;
	snprintf(v->code, sizeof(v->code), "ok");
}

void
eb_policy_deny(struct eb_policy_verdict *v, const char *code, const char *hint,
               const char *fmt, ...)
{
	va_list ap;
	char *p;

	memset(v, 0, sizeof(*v));
	v->allow = 0;
	snprintf(v->code, sizeof(v->code), "%s", code);
	snprintf(v->hint, sizeof(v->hint), "%s", hint ? hint : "");
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
	/* claim values quoted in a reason must not break a log line or page */
	for (p = v->reason; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

int
eb_policy_needs_groups(const struct eb_tenant *t, const struct eb_identity *id)
{
	return t->access.require_groups.n > 0 && !id->groups_known;
}

/*
 * Group ids: Entra's are GUIDs, which compare case-insensitively (admins
 * paste them in either case); names from other IdPs compare exactly.
 */
int
eb_policy_group_eq(const char *want, const char *have)
{
	size_t i;

	if (strcmp(want, have) == 0)
		return 1;
	if (strlen(want) != 36)
		return 0;
	for (i = 0; i < 36; i++)
		if ((i == 8 || i == 13 || i == 18 || i == 23)
		        ? want[i] != '-'
		        : strchr("0123456789abcdefABCDEF", want[i]) == NULL)
			return 0;
	return eb_str_ieq(want, have);
}

int
eb_policy_groups_overage(const struct eb_identity *id)
{
	return json_object_get(json_object_get(id->claims, "_claim_names"),
	                       "groups") != NULL ||
	       json_is_true(json_object_get(id->claims, "hasgroups"));
}

static int
check_groups(const struct eb_tenant *t, const struct eb_identity *id,
             struct eb_policy_verdict *v)
{
	const struct eb_strlist *req = &t->access.require_groups;
	size_t i, j;

	if (req->n == 0)
		return 0;
	if (!id->groups_known) {
		if (eb_policy_groups_overage(id))
			eb_policy_deny(
			    v, "groups_overage", hint_admin,
			    "your group membership is too large for "
			    "the sign-in token and could not be looked "
			    "up, so it cannot be checked");
		else
			eb_policy_deny(
			    v, "groups_unknown", hint_admin,
			    "your identity provider did not say which "
			    "groups you belong to, so your access "
			    "cannot be checked");
		return -1;
	}
	for (i = 0; i < req->n; i++)
		for (j = 0; j < id->groups.n; j++)
			if (eb_policy_group_eq(req->v[i], id->groups.v[j]))
				return 0;
	eb_policy_deny(v, "group_required", hint_admin,
	               "you are not a member of a group allowed to enroll "
	               "devices");
	return -1;
}

static int
check_domains(const struct eb_tenant *t, const struct eb_mapping_result *map,
              struct eb_policy_verdict *v)
{
	const struct eb_strlist *ok = &t->access.allowed_domains;
	const char *login = map ? map->idp_login : NULL, *at;
	size_t i;

	if (ok->n == 0)
		return 0;
	if (login == NULL || (at = strrchr(login, '@')) == NULL ||
	    at[1] == '\0') {
		eb_policy_deny(v, "no_login", hint_admin,
		               "your account has no sign-in address whose "
		               "domain can be checked");
		return -1;
	}
	for (i = 0; i < ok->n; i++)
		if (eb_str_ieq(ok->v[i], at + 1))
			return 0;
	eb_policy_deny(
	    v, "domain_not_allowed", "Sign in with your work account.",
	    "accounts of %.100s may not enroll devices here", at + 1);
	return -1;
}

int
eb_policy_check(const struct eb_tenant *t, const struct eb_identity *id,
                const struct eb_mapping_result *map,
                struct eb_policy_verdict *v)
{
	eb_policy_allow(v);
	if (check_groups(t, id, v) == -1 || check_domains(t, map, v) == -1)
		return -1;
	return 0;
}

/* ,"key":"value" (value clipped to 512 bytes) unless value is NULL. */
static int
add_field(struct eb_buf *b, const char *key, const char *value)
{
	char clip[513];
	size_t n;

	if (value == NULL)
		return 0;
	snprintf(clip, sizeof(clip), "%s", value);
	/* never cut a UTF-8 sequence in two */
	if ((n = strlen(clip)) == sizeof(clip) - 1) {
		while (n > 0 && ((unsigned char)value[n] & 0xc0) == 0x80)
			n--;
		clip[n] = '\0';
	}
	return eb_buf_printf(b, "%s\"%s\":", b->len > 1 ? "," : "", key) ==
	                   -1 ||
	               eb_buf_add_json_str(b, clip) == -1
	           ? -1
	           : 0;
}

int
eb_policy_audit(struct eb_store *s, const struct eb_tenant *t,
                const struct eb_identity *id,
                const struct eb_mapping_result *map, const char *typed,
                const struct eb_policy_verdict *v, int64_t now)
{
	struct eb_store_audit ev;
	struct eb_buf b;
	int rc = -1;

	eb_buf_init(&b, MAX_DETAIL);
	if (eb_buf_addc(&b, '{') == -1 ||
	    add_field(&b, "code", v->code) == -1 ||
	    add_field(&b, "reason", v->allow ? NULL : v->reason) == -1 ||
	    add_field(&b, "issuer", id ? id->issuer : NULL) == -1 ||
	    add_field(&b, "idp_login", map ? map->idp_login : NULL) == -1 ||
	    add_field(&b, "managed_apple_id",
	              map ? map->managed_apple_id : NULL) == -1 ||
	    add_field(&b, "rule", map ? map->source : NULL) == -1 ||
	    add_field(&b, "typed",
	              typed ? typed
	              : map ? map->typed
	                    : NULL) == -1 ||
	    eb_buf_addc(&b, '}') == -1)
		goto out;
	memset(&ev, 0, sizeof(ev));
	ev.ts = now;
	ev.tenant = t->id;
	ev.event = v->allow ? "login.allow" : "login.deny";
	ev.subject = id && id->subject ? id->subject : "-";
	ev.detail = (char *)eb_buf_str(&b);
	rc = eb_store_audit_add(s, &ev) == EB_STORE_OK ? 0 : -1;
out:
	eb_buf_finish(&b);
	return rc;
}
