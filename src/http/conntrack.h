/*
 * Connection tracking for one HTTP worker: which of its connections are
 * waiting for a request head, since when, and which are reading a body and
 * how fast. It enforces the head deadline (limits.head_timeout, from the
 * accept or from the end of the previous response), the minimum body rate
 * (limits.min_body_rate) and, when the worker's share of the connection
 * table is full, closes the oldest connections still waiting for a head so
 * that a new client is served (slowloris). A connection is ended with
 * shutdown(2) on its descriptor: libmicrohttpd sees the event and closes
 * it, which removes it here.
 *
 * A tracker is used only on its worker's thread (the thread that runs the
 * worker's libmicrohttpd daemon), so it needs no lock; times are monotonic
 * milliseconds passed in by the caller (tests pass their own).
 */
#ifndef EB_CONNTRACK_H
#define EB_CONNTRACK_H

#include <stddef.h>
#include <stdint.h>

struct eb_conntrack;
struct eb_ct_conn;

/*
 * A tracker for at most limit connections. head_timeout_ms: the longest a
 * connection may take to deliver a complete request head. min_body_rate:
 * bytes per second a body must average once head_timeout_ms have passed
 * since its head (0: no minimum). NULL when out of memory.
 */
struct eb_conntrack *eb_conntrack_create(unsigned limit,
                                         int64_t head_timeout_ms,
                                         size_t min_body_rate);
/* Free the tracker and every connection record still in it. */
void eb_conntrack_destroy(struct eb_conntrack *ct);

/*
 * A connection on descriptor fd was accepted at now: it waits for a head.
 * When the table is then (nearly) full, the oldest connections waiting for a
 * head are shut down. The record, or NULL when out of memory (the connection is
 * then not tracked).
 */
struct eb_ct_conn *eb_conntrack_add(struct eb_conntrack *ct, int fd,
                                    int64_t now);
/* The connection is closed: forget it (NULL is a no-op). */
void eb_conntrack_remove(struct eb_ct_conn *c);
/* A response ended at now: on a kept-alive connection the next head is
 * due within the head deadline from now. */
void eb_conntrack_head_wait(struct eb_ct_conn *c, int64_t now);
/* The head is in. body: a body follows (the minimum rate applies to it
 * until eb_conntrack_busy); else the request is being served. */
void eb_conntrack_head_done(struct eb_ct_conn *c, int body, int64_t now);
/* n more body bytes arrived. */
void eb_conntrack_body_bytes(struct eb_ct_conn *c, size_t n);
/*
 * The request was answered without reading its body and the connection
 * must end: it is shut down a second after now at the latest (time for
 * the client to read the answer), whatever libmicrohttpd does meanwhile.
 */
void eb_conntrack_close_after(struct eb_ct_conn *c, int64_t now);
/* The request is being served: no deadline applies (the idle timeout of
 * libmicrohttpd still does). */
void eb_conntrack_busy(struct eb_ct_conn *c);

/*
 * Shut down every connection past its head deadline or below the body
 * rate at now. Returns the milliseconds until the next sweep is due
 * (-1: none). *heads and *bodies (when not NULL) receive how many were
 * shut down for each reason, for the caller's log line.
 */
int64_t eb_conntrack_sweep(struct eb_conntrack *ct, int64_t now,
                           unsigned *heads, unsigned *bodies);
/* Connections shut down because the table was full, since the last call
 * (for the log). */
unsigned eb_conntrack_take_evicted(struct eb_conntrack *ct);
/* Connections tracked (shut-down ones included until they are removed). */
unsigned eb_conntrack_count(const struct eb_conntrack *ct);

struct sockaddr;
/*
 * The key a client address is counted under by the per-address connection
 * limit: 4 bytes for IPv4 (an IPv4-mapped IPv6 address too), the 8 bytes
 * of the /64 for IPv6 (a host or subscriber gets a whole /64: counting
 * each of its addresses apart would make the limit void). Returns the
 * key's length, 0 when sa is neither family.
 */
size_t eb_conntrack_addr_key(const struct sockaddr *sa, size_t len,
                             unsigned char out[16]);

/* The monotonic clock in milliseconds. */
int64_t eb_conntrack_now(void);

#endif
