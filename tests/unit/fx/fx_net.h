/*
 * Network helpers for unit tests (tests/unit/fx): a listening socket for a
 * fake upstream, piecewise writes, and an environment in which the
 * asynchronous HTTP client uses its native HTTP/1.1 path.
 */
#ifndef EB_TEST_FX_NET_H
#define EB_TEST_FX_NET_H

#include <stddef.h>

/* A socket listening on 127.0.0.1 at a free port (into *port), or -1. */
int fx_listen_loopback(int backlog, int *port);
/* The native client is for requests without a proxy, unless curl is
 * asked for: clear what would send a transfer to curl. */
void fx_native_env(void);
/* Send n bytes piece at a time (0: at once) with delay_us between;
 * 0, or -1 when the connection failed. */
int fx_send_all(int fd, const char *p, size_t n, size_t piece, int delay_us);

#endif
