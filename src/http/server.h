/*
 * The HTTP server: the only user of libmicrohttpd. An internal thread pool
 * with epoll sized to the cores, suspend/resume for handlers that wait on
 * upstreams, connection and per-IP limits, idle timeout, header and body
 * limits (431/413), a JSON access-log line and metrics for every request.
 */
#ifndef EB_SERVER_H
#define EB_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

struct eb_env;
struct eb_server;

/*
 * Start serving the route table on the "listen" addresses in env's
 * configuration. Returns NULL with a reason in err when a socket cannot be
 * bound or the TLS pair cannot be loaded.
 */
struct eb_server *eb_server_start(struct eb_env *env,
                                  const struct eb_route *routes, size_t nroutes,
                                  char *err, size_t errlen);
/*
 * Re-read the TLS certificate and key of env's configuration (after a
 * reload): new connections get the new pair, open ones keep theirs. A pair
 * that does not load is logged and the old one keeps serving.
 */
void eb_server_reload_tls(struct eb_server *srv);
/*
 * The same on admin_listen, in plain HTTP with the same limits: a second
 * listener with its own route table, a slice of the table the metrics were
 * created with that starts at index metrics_base.
 */
struct eb_server *eb_server_start_admin(struct eb_env *env,
                                        const struct eb_route *routes,
                                        size_t nroutes, size_t metrics_base,
                                        char *err, size_t errlen);
/* The port actually bound for the first "listen" address (with port 0). */
uint16_t eb_server_port(const struct eb_server *srv);
/* Stop accepting new connections (existing ones are served). */
void eb_server_quiesce(struct eb_server *srv);
/* Wait until no request is in flight, at most timeout_ms; 0 when drained. */
int eb_server_drain(struct eb_server *srv, int timeout_ms);
/* Stop and free; eb_server_stop(NULL) is a no-op. */
void eb_server_stop(struct eb_server *srv);

#endif
