/*
 * `enrollbridge grants list -c FILE [--tenant T] [--user SUBJECT] [--json]`
 * and `enrollbridge grants revoke|retire -c FILE {GRANT_ID | --user SUBJECT
 * [--tenant T]} [--reason TEXT]`.
 *
 * --user names one person: the IdP subject as stored (idp_subject) or the
 * Managed Apple Account (case-insensitive). list shows only their grants;
 * revoke and retire end each of their active grants (of tenant T when
 * given), exit 1 when there is none.
 *
 * list prints one grant per line, newest first, starting with its id:
 *
 *     ID TENANT STATUS MANAGED_APPLE_ID MODE BINDING CREATED
 *
 * BINDING is "EnrollmentID=VALUE" / "UDID=VALUE", or "-" before the first
 * check-in; CREATED is UTC ISO 8601. With --json each line is instead one
 * JSON object (JSON Lines) with the grant's fields, times as unix seconds.
 *
 * revoke moves an active grant to revoked (its tokens stop working at
 * once: a running server is told through state_dir/store.changed; the
 * store writes the audit event). Exit 0 when the grant is
 * revoked (or already was), 1 when it does not exist or can no longer be
 * revoked (expired, superseded), 2 on a usage error.
 *
 * retire ends the grant for unenrollment (eb_store_grant_retire): revoked
 * as above and marked retired_at, which --json lists. Exit 0 when retired
 * (or already was; a revoked grant is marked), 1 when it does not exist or
 * was superseded or expired, 2 on a usage error.
 */
#ifndef EB_CLI_GRANTS_H
#define EB_CLI_GRANTS_H

/* argv[0] is "grants". */
int eb_cli_grants(int argc, char **argv);

#endif
