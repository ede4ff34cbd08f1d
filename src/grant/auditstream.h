/*
 * audit_stream: the audit log also as JSON lines (grant/manage.h's shape,
 * one event a line, oldest first) on stdout or appended to a file, for a
 * SIEM. A thread follows the audit table once a second from the events
 * present at start, so it sees every event: the ones the store writes
 * inside its own transactions (grant changes) as well as those of other
 * replicas and of the CLI. A file moved away (log rotation) is opened
 * anew at its path.
 */
#ifndef EB_AUDITSTREAM_H
#define EB_AUDITSTREAM_H

#include <stddef.h>

struct eb_store;
struct eb_auditstream;

/* Follow store's audit events to target ("stdout" or a file path). NULL
 * with err set when the file cannot be opened or the thread started. */
struct eb_auditstream *eb_auditstream_start(struct eb_store *store,
                                            const char *target, char *err,
                                            size_t errlen);
/* Write what is left, stop and free; NULL is a no-op. */
void eb_auditstream_stop(struct eb_auditstream *as);

#endif
