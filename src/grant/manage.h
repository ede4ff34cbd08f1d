/*
 * What the administrative front ends share (the CLI's grants, keys, map and
 * audit commands, and the admin API, handle/admin.c): the JSON shape of a
 * grant, a signing key, a mapping override and an audit event; who "a
 * person" is; the state of a signing key; and ending a grant (revoke,
 * retire) with one outcome both report the same way.
 */
#ifndef EB_MANAGE_H
#define EB_MANAGE_H

#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

struct eb_seal_ring;

/*
 * Called for a grant field that is not UTF-8 (key names it): the JSON
 * then holds U+FFFD for each bad byte and "<key>_hex" with its bytes.
 */
typedef void (*eb_manage_warn_fn)(const struct eb_store_grant *g,
                                  const char *key);

/* A new JSON object with the grant's fields (times as unix seconds) and its
 * route when it has one; NULL when out of memory. warn may be NULL. */
json_t *eb_manage_grant_json(const struct eb_store_grant *g,
                             eb_manage_warn_fn warn);
/* A mapping override as {tenant, subject, managed_apple_id, note,
 * created_at, updated_at}; NULL when out of memory or not UTF-8. */
json_t *eb_manage_mapping_json(const struct eb_store_mapping *m);
/* An audit event as {id, ts, time, tenant, event, subject, detail}, detail
 * parsed back into JSON (a string when it is not); NULL on failure. */
json_t *eb_manage_audit_json(const struct eb_store_audit *ev);

/*
 * Whether g is the person user names (NULL: anyone): the IdP subject as
 * stored (`sub`, or `tid:oid` for Entra), or the Managed Apple Account
 * (case-insensitive).
 */
int eb_manage_is_person(const struct eb_store_grant *g, const char *user);

/*
 * The state of shared key k among the keys listed before it (newest
 * first): "pending" (not active yet), "current" (the newest usable active
 * key: signs), "standby" or "retired". *have_current carries over between
 * calls (start at 0); *usable says whether this process can open it.
 */
const char *eb_manage_key_state(const struct eb_seal_ring *ring,
                                const struct eb_store_key *k, int64_t now,
                                int *have_current, int *usable);

/* A mapping override's limits (bytes). */
#define EB_MANAGE_MAX_SUBJECT 512
#define EB_MANAGE_MAX_APPLEID 320
#define EB_MANAGE_MAX_NOTE    1024

/*
 * 0 when s is 1..max bytes of UTF-8 without control characters; else -1
 * with "<what>: <reason>" in why.
 */
int eb_manage_text_check(const char *what, const char *s, size_t max, char *why,
                         size_t whylen);
/* The same for a Managed Apple Account (user@domain). */
int eb_manage_apple_id_check(const char *what, const char *id, char *why,
                             size_t whylen);

/*
 * A time for an audit query: unix seconds, "YYYY-MM-DD",
 * "YYYY-MM-DDTHH:MM:SSZ", or an age before now ("90m", "24h", "7d").
 * 0 with *out set, or -1.
 */
int eb_manage_parse_time(const char *s, int64_t now, int64_t *out);

/* What ending a grant did. */
enum eb_manage_end {
	EB_MANAGE_ENDED,     /* revoked / retired now */
	EB_MANAGE_ALREADY,   /* it already was */
	EB_MANAGE_NOT_FOUND, /* no such grant */
	EB_MANAGE_CONFLICT,  /* superseded or expired: not changed */
	EB_MANAGE_FAILED     /* the store failed (logged) */
};

/* Revoke (retire 0) or retire (retire 1) grant id with reason (NULL: the
 * default reason) at now. */
enum eb_manage_end eb_manage_end_grant(struct eb_store *store, const char *id,
                                       int retire, const char *reason,
                                       int64_t now);

#endif
