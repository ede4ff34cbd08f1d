/*
 * Network fixtures shared by the HTTP client unit tests (test_http_*.c):
 * a listening socket for a fake upstream, and an environment in which the
 * asynchronous client uses its native HTTP/1.1 path.
 */
#ifndef EB_TEST_TESTNET_H
#define EB_TEST_TESTNET_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A socket listening on 127.0.0.1 at a free port (into *port), or -1. */
static inline int
test_listen_loopback(int backlog, int *port)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(fd, backlog) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == -1) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

/* The native client is for requests without a proxy, unless curl is
 * asked for: clear what would send a transfer to curl. */
static inline void
test_native_env(void)
{
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	unsetenv("ENROLLBRIDGE_UPSTREAM_CURL");
}

#endif
