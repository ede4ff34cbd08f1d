/*
 * Trusted proxies: the client address behind a load balancer. The main
 * file's "trusted_proxies" is a list of CIDRs (IPv4 and IPv6); only when the
 * TCP peer is inside one of them is the client address taken from the
 * forwarding headers, X-Forwarded-For or RFC 7239 Forwarded, as the
 * right-most address that is not itself a trusted proxy. Everything here is
 * pure (no I/O, no logging) so that it can be tested on its own; the HTTP
 * server decides what to log.
 */
#ifndef EB_TRUSTED_H
#define EB_TRUSTED_H

#include <stddef.h>

/* Longest forwarding header (all its lines together) we look at, and the
 * most hops in it: beyond either, the header is malformed. */
#define EB_TRUSTED_MAX_HEADER 8192
#define EB_TRUSTED_MAX_HOPS   64
/* Most CIDRs in trusted_proxies. */
#define EB_TRUSTED_MAX_CIDRS 1024

/* One network: family 4 or 6, bits significant bits of addr. */
struct eb_cidr {
	unsigned char family;
	unsigned char bits;
	unsigned char addr[16];
};

struct eb_trusted {
	struct eb_cidr *v;
	size_t n;
};

/*
 * Parse "a.b.c.d/n", "x::y/n" or a bare address (a /32 or /128). Host bits
 * set beyond the prefix are refused (a typo more often than intent).
 * Returns 0, or -1 with *why set to a reason that never quotes the input.
 */
int eb_trusted_parse_cidr(const char *s, struct eb_cidr *out, const char **why);

/*
 * Parse an address as it appears in a forwarding hop: IPv4, IPv6, "[IPv6]",
 * each optionally followed by ":port" (IPv6 only when bracketed). family
 * 4 or 6 and the address bytes (IPv4-mapped IPv6 becomes IPv4). 0 or -1.
 */
int eb_trusted_parse_addr(const char *s, size_t len, int *family,
                          unsigned char addr[16]);

/* 1 when family/addr is inside one of t's networks (t may be NULL). */
int eb_trusted_contains(const struct eb_trusted *t, int family,
                        const unsigned char *addr);

/* Outcome of eb_trusted_client. */
enum eb_trusted_result {
	EB_TRUSTED_NONE = 0,  /* no usable header: use the peer address */
	EB_TRUSTED_FOUND = 1, /* out holds the client address */
	EB_TRUSTED_BAD = -1   /* malformed: use the peer address, and say so */
};

/*
 * The client address from the forwarding headers of a request whose peer is
 * trusted. xff and fwd are the X-Forwarded-For and Forwarded fields (all
 * lines of each joined with ", "), or NULL when absent. Hops are read from
 * the right; the first that is not a trusted proxy is the client (when all
 * are trusted, the left-most). An obfuscated or "unknown" Forwarded node in
 * that place leaves the peer address (NONE). When both headers name
 * different clients, one of them came from the client unchecked: BAD, never
 * a guess. out gets the canonical text form (inet_ntop); *why a reason for
 * BAD that never quotes the header.
 */
enum eb_trusted_result eb_trusted_client(const struct eb_trusted *t,
                                         const char *xff, const char *fwd,
                                         char *out, size_t outlen,
                                         const char **why);
/*
 * eb_trusted_client, and with FOUND also the client and the trusted hops
 * right of it, as "client, hop, hop" (canonical addresses, spoofed hops
 * left of the client dropped) in via (vialen bytes; too small: BAD): what
 * a proxy forwards in X-Forwarded-For before appending its peer.
 */
enum eb_trusted_result eb_trusted_client_chain(const struct eb_trusted *t,
                                               const char *xff, const char *fwd,
                                               char *out, size_t outlen,
                                               char *via, size_t vialen,
                                               const char **why);

#endif
