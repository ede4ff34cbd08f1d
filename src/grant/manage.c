/*
 * The administrative operations the CLI and the admin API share
 * (manage.h): JSON shapes, person matching, key states and ending grants.
 * Nothing here prints: each front end says what happened its own way.
 */
#include "grant/manage.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/log.h"
#include "core/str.h"
#include "token/token.h"

#define REVOKE_REASON "revoked by an administrator"
#define RETIRE_REASON "retired by an administrator"

/*
 * A string member; JSON text is UTF-8, so a value that is not (jansson
 * refuses it) gets U+FFFD for each bad byte and its exact bytes in hex as
 * "<k>_hex", with a warning: nothing is lost.
 */
static int
set_s_of(json_t *o, const struct eb_store_grant *g, const char *k,
         const char *v, eb_manage_warn_fn warn)
{
	static const char hex[] = "0123456789abcdef";
	struct eb_buf fixed, hx;
	char hk[64];
	size_t i, n, len;
	int rc;

	if (v == NULL)
		return json_object_set_new(o, k, json_null());
	len = strlen(v);
	if (eb_str_is_utf8(v, len))
		return json_object_set_new(o, k, json_string(v));
	if (warn != NULL)
		warn(g, k);
	eb_buf_init(&fixed, 3 * len + 1);
	eb_buf_init(&hx, 2 * len + 1);
	for (i = 0; i < len; i += n) {
		if ((n = eb_str_utf8_seq(v + i, len - i)) > 0)
			eb_buf_add(&fixed, v + i, n);
		else {
			eb_buf_add(&fixed, "\xef\xbf\xbd", 3);
			n = 1;
		}
	}
	for (i = 0; i < len; i++) {
		eb_buf_addc(&hx, hex[(unsigned char)v[i] >> 4]);
		eb_buf_addc(&hx, hex[(unsigned char)v[i] & 0xf]);
	}
	snprintf(hk, sizeof(hk), "%s_hex", k);
	rc = json_object_set_new(o, k, json_string(eb_buf_str(&fixed)));
	rc |= json_object_set_new(o, hk, json_string(eb_buf_str(&hx)));
	eb_buf_finish(&fixed);
	eb_buf_finish(&hx);
	return rc;
}

static int
set_i(json_t *o, const char *k, int64_t v)
{
	return json_object_set_new(o, k, json_integer(v));
}

/* The grant's route (its extra JSON, grant/issue.h) as "route", when any. */
static int
set_route(json_t *o, const char *extra)
{
	json_t *x, *r;
	int rc = 0;

	if (extra == NULL ||
	    (x = json_loads(extra, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return 0;
	if (json_is_string(r = json_object_get(x, "route")))
		rc = json_object_set(o, "route", r);
	json_decref(x);
	return rc;
}

json_t *
eb_manage_grant_json(const struct eb_store_grant *g, eb_manage_warn_fn w)
{
	json_t *o = json_object();
	int rc;

	if (o == NULL)
		return NULL;
	rc = set_s_of(o, g, "id", g->id, w);
	rc |= set_s_of(o, g, "tenant", g->tenant, w);
	rc |=
	    set_s_of(o, g, "status", eb_store_grant_status_name(g->status), w);
	rc |= set_s_of(o, g, "auth_method", g->auth_method, w);
	rc |= set_s_of(o, g, "client_id", g->client_id, w);
	rc |= set_s_of(o, g, "managed_apple_id", g->managed_apple_id, w);
	rc |= set_s_of(o, g, "user_identifier", g->user_identifier, w);
	rc |= set_s_of(o, g, "idp_issuer", g->idp_issuer, w);
	rc |= set_s_of(o, g, "idp_subject", g->idp_subject, w);
	rc |= set_s_of(o, g, "idp_login", g->idp_login, w);
	rc |= set_s_of(o, g, "enrollment_mode", g->enrollment_mode, w);
	rc |= set_s_of(o, g, "binding_kind", g->binding_kind, w);
	rc |= set_s_of(o, g, "binding_value", g->binding_value, w);
	rc |= set_i(o, "bound_at", g->bound_at);
	rc |= set_i(o, "created", g->created);
	rc |= set_i(o, "updated", g->updated);
	rc |= set_i(o, "expires", g->expires);
	rc |= set_i(o, "upstream_renewed_at", g->upstream_renewed_at);
	rc |= set_i(o, "upstream_failing_since", g->upstream_failing_since);
	rc |= set_i(o, "revoked_at", g->revoked_at);
	rc |= set_i(o, "retired_at", g->retired_at);
	rc |= set_s_of(o, g, "revoke_reason", g->revoke_reason, w);
	rc |= set_s_of(o, g, "superseded_by", g->superseded_by, w);
	rc |= set_route(o, g->extra);
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *
eb_manage_mapping_json(const struct eb_store_mapping *m)
{
	json_t *o;
	int rc;

	if ((o = json_object()) == NULL)
		return NULL;
	rc = json_object_set_new(o, "tenant", json_string(m->tenant));
	rc |= json_object_set_new(o, "subject", json_string(m->subject));
	rc |= json_object_set_new(o, "managed_apple_id",
	                          json_string(m->managed_apple_id));
	rc |= json_object_set_new(o, "note",
	                          m->note ? json_string(m->note) : json_null());
	rc |= json_object_set_new(o, "created_at", json_integer(m->created));
	rc |= json_object_set_new(o, "updated_at", json_integer(m->updated));
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

json_t *
eb_manage_audit_json(const struct eb_store_audit *ev)
{
	time_t tt = (time_t)ev->ts;
	struct tm tm;
	char when[32] = "";
	json_t *o, *d = NULL;
	int rc;

	if (gmtime_r(&tt, &tm) != NULL)
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (ev->detail != NULL &&
	    (d = json_loads(ev->detail, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		d = json_string(ev->detail);
	if ((o = json_object()) == NULL) {
		json_decref(d);
		return NULL;
	}
	rc = json_object_set_new(o, "id", json_integer(ev->id));
	rc |= json_object_set_new(o, "ts", json_integer(ev->ts));
	rc |= json_object_set_new(o, "time", json_string(when));
	rc |= json_object_set_new(o, "tenant", str_or_null(ev->tenant));
	rc |= json_object_set_new(o, "event", str_or_null(ev->event));
	rc |= json_object_set_new(o, "subject", str_or_null(ev->subject));
	rc |= json_object_set_new(o, "detail", d != NULL ? d : json_null());
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int
eb_manage_is_person(const struct eb_store_grant *g, const char *user)
{
	if (user == NULL)
		return 1;
	if (g->idp_subject != NULL && strcmp(g->idp_subject, user) == 0)
		return 1;
	return g->managed_apple_id != NULL &&
	       strcasecmp(g->managed_apple_id, user) == 0;
}

const char *
eb_manage_key_state(const struct eb_seal_ring *ring,
                    const struct eb_store_key *k, int64_t now,
                    int *have_current, int *usable)
{
	const char *state = "retired";

	*usable = eb_signer_key_usable_ring(ring, k);
	/* the signer's rule: the newest usable key active and not retired
	 * at now signs; a key not active yet is pending */
	if (k->activates_at > now)
		state = "pending";
	else if (k->retired_at == 0 || k->retired_at > now) {
		state = !*have_current && *usable ? "current" : "standby";
		if (*usable)
			*have_current = 1;
	}
	return state;
}

static enum eb_manage_end
end_rc(int rc, const char *id, const char *what)
{
	switch (rc) {
	case EB_STORE_OK:
		return EB_MANAGE_ENDED;
	case EB_STORE_NOT_FOUND:
		return EB_MANAGE_NOT_FOUND;
	case EB_STORE_CONFLICT:
		return EB_MANAGE_CONFLICT;
	default:
		log_warnx("cannot %s grant %s: %s", what, id,
		          eb_store_strerror(rc));
		return EB_MANAGE_FAILED;
	}
}

enum eb_manage_end
eb_manage_end_grant(struct eb_store *store, const char *id, int retire,
                    const char *reason, int64_t now)
{
	struct eb_store_grant g;
	int rc;

	memset(&g, 0, sizeof(g));
	rc = eb_store_grant_get(store, id, &g);
	if (rc != EB_STORE_OK)
		return end_rc(rc, id, "read");
	if (retire ? g.retired_at != 0 : g.status == EB_STORE_GRANT_REVOKED) {
		eb_store_grant_finish(&g);
		return EB_MANAGE_ALREADY;
	}
	eb_store_grant_finish(&g);
	if (retire)
		rc = eb_store_grant_retire(
		    store, id, reason ? reason : RETIRE_REASON, now);
	else
		rc = eb_store_grant_set_status(
		    store, id, EB_STORE_GRANT_REVOKED,
		    reason ? reason : REVOKE_REASON, now);
	return end_rc(rc, id, retire ? "retire" : "revoke");
}

int
eb_manage_text_check(const char *what, const char *s, size_t max, char *why,
                     size_t whylen)
{
	const unsigned char *p;

	if (s[0] == '\0' || strlen(s) > max) {
		snprintf(why, whylen, "%s: must be 1 to %zu bytes", what, max);
		return -1;
	}
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(why, whylen,
			         "%s: control characters are not allowed",
			         what);
			return -1;
		}
	if (!eb_str_is_utf8(s, strlen(s))) {
		snprintf(why, whylen, "%s: not UTF-8", what);
		return -1;
	}
	return 0;
}

int
eb_manage_apple_id_check(const char *what, const char *id, char *why,
                         size_t whylen)
{
	char *local = NULL, *domain = NULL;
	int rc;

	if (eb_manage_text_check(what, id, EB_MANAGE_MAX_APPLEID, why,
	                         whylen) == -1)
		return -1;
	rc = eb_str_split_identifier(id, &local, &domain);
	eb_free(local);
	eb_free(domain);
	if (rc == -1 || strchr(id, ' ') != NULL) {
		snprintf(why, whylen,
		         "%s: \"%s\" is not an address like "
		         "user@appleid.example.com",
		         what, id);
		return -1;
	}
	return 0;
}

/* Digits only, at most 18 of them: *out. */
static int
parse_digits(const char *s, size_t n, int64_t *out)
{
	int64_t v = 0;
	size_t i;

	if (n == 0 || n > 18)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ" (UTC) into *tm. */
static int
parse_date(const char *s, struct tm *tm)
{
	/* offset and length of each number, its bounds */
	static const struct {
		size_t off, len;
		int64_t min, max;
	} f[] = {{0, 4, 1970, 9999}, {5, 2, 1, 12},  {8, 2, 1, 31},
	         {11, 2, 0, 23},     {14, 2, 0, 59}, {17, 2, 0, 60}};
	int64_t v[6] = {0};
	size_t n = strlen(s), i, nf;

	if (n == 10)
		nf = 3;
	else if (n == 20 && s[10] == 'T' && s[13] == ':' && s[16] == ':' &&
	         s[19] == 'Z')
		nf = 6;
	else
		return -1;
	if (s[4] != '-' || s[7] != '-')
		return -1;
	for (i = 0; i < nf; i++)
		if (parse_digits(s + f[i].off, f[i].len, &v[i]) == -1 ||
		    v[i] < f[i].min || v[i] > f[i].max)
			return -1;
	memset(tm, 0, sizeof(*tm));
	tm->tm_year = (int)v[0] - 1900;
	tm->tm_mon = (int)v[1] - 1;
	tm->tm_mday = (int)v[2];
	tm->tm_hour = (int)v[3];
	tm->tm_min = (int)v[4];
	tm->tm_sec = (int)v[5];
	return 0;
}

int
eb_manage_parse_time(const char *s, int64_t now, int64_t *out)
{
	static const struct {
		char unit;
		int64_t secs;
	} ages[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
	size_t n = strlen(s), i;
	struct tm tm;
	int64_t v;

	if (parse_digits(s, n, out) == 0)
		return 0;
	for (i = 0; n > 1 && i < sizeof(ages) / sizeof(ages[0]); i++)
		if (s[n - 1] == ages[i].unit) {
			if (parse_digits(s, n - 1, &v) == -1 ||
			    v > now / ages[i].secs)
				return -1;
			*out = now - v * ages[i].secs;
			return 0;
		}
	if (parse_date(s, &tm) == -1)
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}
