/*
 * The PostgreSQL change feed (SCALEOUT 3.6): one thread per store handle,
 * on a connection of its own (outside the pool: LISTEN needs a session),
 * that follows the invalidations other replicas and the CLI commit, so
 * that the bearer cache of this process never answers from rows another
 * process has since changed.
 *
 * An invalidating transaction bumps the row of eb_generation and sends its
 * new n on the channel "<current_schema>.eb_inval". The feed listens on
 * that channel, reads n after LISTEN (closing the gap between connecting
 * and listening), and then waits on the socket for 250 ms at a time: a
 * notification, or a heartbeat read of n when none came, is a proof that
 * it is current. Whenever it sees n move, or loses the connection (a gap:
 * it cannot know what it missed), it bumps *seq; each proof sets *alive_ns
 * (CLOCK_MONOTONIC, ns), and a loss sets it to 0 until it has reconnected.
 * A caller therefore caches only while *seq is unchanged and *alive_ns is
 * recent (store.c: within the last second).
 *
 * It also listens on "<schema>.eb_keys" (key rotation) and counts those
 * notifications, and gaps, in a second counter the signer may poll.
 *
 * The DSN may hold a password: it is never logged nor put in err; both
 * show eb_pg_dsn_redact() of it.
 */
#ifndef EB_PG_FEED_H
#define EB_PG_FEED_H

#include <stddef.h>
#include <stdint.h>

struct eb_pg_feed;

/*
 * Connect to dsn (libpq key=value or URI), LISTEN, read the generation and
 * start the feed's thread, which then owns the connection; seq and
 * alive_ns (caller's memory, outliving the feed) are updated as above:
 * *seq is bumped once at start, *alive_ns set. The connection carries
 * TCP keepalives and application_name `application` (NULL:
 * "enrollbridge-feed"; an application_name in the DSN wins). NULL on
 * failure, with a reason in err that holds no password (and the log).
 */
struct eb_pg_feed *eb_pg_feed_start_as(const char *dsn, const char *application,
                                       _Atomic uint64_t *seq,
                                       _Atomic int64_t *alive_ns, char *err,
                                       size_t errlen);
/* eb_pg_feed_start_as with the default application_name. */
struct eb_pg_feed *eb_pg_feed_start(const char *dsn, _Atomic uint64_t *seq,
                                    _Atomic int64_t *alive_ns, char *err,
                                    size_t errlen);
/*
 * Stop the thread (promptly: it is woken, not waited out), close the
 * connection and free f. *alive_ns is left at 0. NULL is a no-op.
 */
void eb_pg_feed_stop(struct eb_pg_feed *f);

/* Key-change notifications and gaps seen so far (bumped like seq). */
uint64_t eb_pg_feed_keys(const struct eb_pg_feed *f);
/* The server process of the feed's connection, 0 while it has none. */
int eb_pg_feed_backend_pid(const struct eb_pg_feed *f);
/* Times the feed lost its connection and reconnected (tests, metrics). */
uint64_t eb_pg_feed_reconnects(const struct eb_pg_feed *f);

#endif
