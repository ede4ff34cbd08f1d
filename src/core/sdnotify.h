/*
 * The service manager's readiness protocol (sd_notify(3)): tell systemd
 * when the bridge is ready, reloading and stopping, feed its watchdog and
 * keep a one-line STATUS for `systemctl status`. Built without libsystemd
 * (EB_SYSTEMD off) every function does nothing; outside a Type=notify
 * service (no NOTIFY_SOCKET) libsystemd does nothing either.
 */
#ifndef EB_SDNOTIFY_H
#define EB_SDNOTIFY_H

#include <stdint.h>

/* READY=1 with STATUS=status (may be NULL): start-up, or a reload, done. */
void eb_sdnotify_ready(const char *status);
/*
 * RELOADING=1 with MONOTONIC_USEC=now (systemd 253+ matches it against
 * the reload it ordered; older managers ignore it) and STATUS=status.
 * Follow it with eb_sdnotify_ready() whatever the reload's outcome.
 */
void eb_sdnotify_reloading(const char *status);
/* STOPPING=1 with STATUS=status: draining, then exit. */
void eb_sdnotify_stopping(const char *status);
/* STATUS=status alone. */
void eb_sdnotify_status(const char *status);
/*
 * The interval at which to call eb_sdnotify_watchdog(), in microseconds:
 * half of the WATCHDOG_USEC the manager set for this process, or 0 when
 * it wants no watchdog pings (or libsystemd is not built in).
 */
uint64_t eb_sdnotify_watchdog_interval(void);
/* WATCHDOG=1: the caller's loop is alive. */
void eb_sdnotify_watchdog(void);

#endif /* EB_SDNOTIFY_H */
