/*
 * `enrollbridge audit list -c FILE [--tenant T] [--since TIME] [--event E]
 * [--limit N] [--json]` (or `--server URL` for the admin API instead of the
 * database): the audit events, newest first.
 *
 * TIME is unix seconds, YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ, or an age
 * ("30m", "24h", "7d"); E is an event name ("grant.revoked") or a prefix
 * ending in '.' ("admin."). Each line is
 *
 *     TIME TENANT EVENT SUBJECT DETAIL
 *
 * (UTC ISO 8601, "-" for an empty field, DETAIL as compact JSON); with
 * --json one JSON object per line: id, ts, time, tenant, event, subject,
 * detail. Exit 0, 1 when the store cannot be read, 2 on a usage error.
 */
#ifndef EB_CLI_AUDIT_H
#define EB_CLI_AUDIT_H

/* argv[0] is "audit". */
int eb_cli_audit(int argc, char **argv);

#endif
