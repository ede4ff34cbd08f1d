/*
 * sd_notify(3) messages for the service manager (core/sdnotify.h). The one
 * file that includes libsystemd. A message that cannot be sent is logged at
 * debug level and otherwise ignored: the manager then times the service
 * out, which says more than anything we could do here.
 */
#include <stdio.h>
#include <time.h>

#include "core/log.h"
#include "core/sdnotify.h"

#ifdef EB_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

/* Send "head" and, when status is set, "STATUS=status". */
static void
notify(const char *head, const char *status)
{
	char msg[1024];
	int n, rc;

	if (status != NULL)
		n = snprintf(msg, sizeof(msg), "%s%sSTATUS=%s", head,
		             head[0] != '\0' ? "\n" : "", status);
	else
		n = snprintf(msg, sizeof(msg), "%s", head);
	if (n < 0 || (size_t)n >= sizeof(msg)) {
		log_debug("message too long, not sent");
		return;
	}
	if ((rc = sd_notify(0, msg)) < 0)
		log_debug("sd_notify failed (%d)", rc);
}

void
eb_sdnotify_reloading(const char *status)
{
	struct timespec ts;
	char head[96];

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1) {
		notify("RELOADING=1", status);
		return;
	}
	snprintf(head, sizeof(head), "RELOADING=1\nMONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * 1000000ULL +
	             (unsigned long long)ts.tv_nsec / 1000ULL);
	notify(head, status);
}

uint64_t
eb_sdnotify_watchdog_interval(void)
{
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec / 2;
}

#else /* built without libsystemd: nothing to tell */

static void
notify(const char *head, const char *status)
{
	(void)head;
	(void)status;
}

void
eb_sdnotify_reloading(const char *status)
{
	notify("RELOADING=1", status);
}

uint64_t
eb_sdnotify_watchdog_interval(void)
{
	return 0;
}

#endif

void
eb_sdnotify_ready(const char *status)
{
	notify("READY=1", status);
}

void
eb_sdnotify_stopping(const char *status)
{
	notify("STOPPING=1", status);
}

void
eb_sdnotify_status(const char *status)
{
	notify("", status);
}

void
eb_sdnotify_watchdog(void)
{
	notify("WATCHDOG=1", NULL);
}
