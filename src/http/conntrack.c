/*
 * Connection tracking for one HTTP worker (see conntrack.h). Connections
 * waiting for a head sit on a list ordered by the time they started
 * waiting (the accept or the end of the previous response): the head
 * deadline and the eviction of the oldest both take from its front.
 * Connections reading a body sit on a second list, checked once a second
 * against the minimum rate. A shut-down connection leaves both lists but
 * stays counted until libmicrohttpd closes it.
 */
#include "http/conntrack.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/mem.h"

enum ct_state { CT_HEAD, CT_BODY, CT_BUSY, CT_CLOSING, CT_DOOMED };

struct eb_ct_conn {
	struct eb_ct_conn *prev, *next; /* on a list while HEAD or BODY */
	struct eb_conntrack *ct;
	int fd;
	enum ct_state state;
	int64_t since;  /* HEAD: waiting since; BODY: head done at;
	                   CLOSING: to be shut down at */
	uint64_t bytes; /* BODY: received so far */
};

struct eb_conntrack {
	struct eb_ct_conn heads;   /* list head: oldest first */
	struct eb_ct_conn bodies;  /* list head */
	struct eb_ct_conn closing; /* list head: soonest first */
	unsigned limit;
	unsigned count;
	unsigned doomed; /* shut down, not yet removed */
	unsigned evicted;
	int64_t head_timeout;
	size_t min_body_rate;
};

#define BODY_SWEEP_MS  1000
#define CLOSE_AFTER_MS 1000

int64_t
eb_conntrack_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
list_init(struct eb_ct_conn *h)
{
	h->prev = h->next = h;
}

static void
unlink_conn(struct eb_ct_conn *c)
{
	if (c->next != NULL) {
		c->prev->next = c->next;
		c->next->prev = c->prev;
		c->prev = c->next = NULL;
	}
}

static void
append(struct eb_ct_conn *h, struct eb_ct_conn *c)
{
	c->prev = h->prev;
	c->next = h;
	h->prev->next = c;
	h->prev = c;
}

struct eb_conntrack *
eb_conntrack_create(unsigned limit, int64_t head_timeout_ms,
                    size_t min_body_rate)
{
	struct eb_conntrack *ct;

	if ((ct = eb_calloc(1, sizeof(*ct))) == NULL)
		return NULL;
	list_init(&ct->heads);
	list_init(&ct->bodies);
	list_init(&ct->closing);
	ct->limit = limit > 0 ? limit : 1;
	ct->head_timeout = head_timeout_ms;
	ct->min_body_rate = min_body_rate;
	return ct;
}

static void
free_list(struct eb_ct_conn *h)
{
	struct eb_ct_conn *c;

	while ((c = h->next) != h) {
		unlink_conn(c);
		c->ct = NULL;
	}
}

void
eb_conntrack_destroy(struct eb_conntrack *ct)
{
	if (ct == NULL)
		return;
	/* records still held by connections are the daemon's to remove;
	 * the daemon is stopped before this, so none should be left */
	free_list(&ct->heads);
	free_list(&ct->bodies);
	free_list(&ct->closing);
	eb_free(ct);
}

/* End c's connection: the daemon sees the shutdown and closes it. */
static void
doom(struct eb_ct_conn *c)
{
	unlink_conn(c);
	c->state = CT_DOOMED;
	c->ct->doomed++;
	(void)shutdown(c->fd, SHUT_RDWR);
}

struct eb_ct_conn *
eb_conntrack_add(struct eb_conntrack *ct, int fd, int64_t now)
{
	struct eb_ct_conn *c, *old;
	unsigned batch, reserve;

	if ((c = eb_calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->ct = ct;
	c->fd = fd;
	c->state = CT_HEAD;
	c->since = now;
	append(&ct->heads, c);
	ct->count++;
	/*
	 * The table is (nearly) full: make room by ending the connections
	 * that have waited longest for a head (a slow client trickling one,
	 * or an idle keep-alive one), a batch at a time so that a flood of
	 * new ones does not pay this on every accept. Never the one just
	 * accepted. Room is made before the table is quite full: a full
	 * daemon stops accepting, and a new client would wait in the
	 * kernel's backlog behind the flood until something else closed.
	 */
	reserve = 1 + ct->limit / 64;
	if (ct->count - ct->doomed + reserve > ct->limit) {
		batch = reserve;
		while (batch-- > 0 && (old = ct->heads.next) != c) {
			doom(old);
			ct->evicted++;
		}
	}
	return c;
}

void
eb_conntrack_remove(struct eb_ct_conn *c)
{
	if (c == NULL)
		return;
	if (c->ct != NULL) {
		unlink_conn(c);
		if (c->state == CT_DOOMED)
			c->ct->doomed--;
		c->ct->count--;
	}
	eb_free(c);
}

void
eb_conntrack_head_wait(struct eb_ct_conn *c, int64_t now)
{
	if (c == NULL || c->ct == NULL || c->state == CT_DOOMED ||
	    c->state == CT_CLOSING)
		return;
	unlink_conn(c);
	c->state = CT_HEAD;
	c->since = now;
	append(&c->ct->heads, c);
}

void
eb_conntrack_head_done(struct eb_ct_conn *c, int body, int64_t now)
{
	if (c == NULL || c->ct == NULL || c->state == CT_DOOMED)
		return;
	unlink_conn(c);
	if (body && c->ct->min_body_rate > 0) {
		c->state = CT_BODY;
		c->since = now;
		c->bytes = 0;
		append(&c->ct->bodies, c);
	} else
		c->state = CT_BUSY;
}

void
eb_conntrack_body_bytes(struct eb_ct_conn *c, size_t n)
{
	if (c != NULL && c->state == CT_BODY)
		c->bytes += n;
}

void
eb_conntrack_close_after(struct eb_ct_conn *c, int64_t now)
{
	if (c == NULL || c->ct == NULL || c->state == CT_DOOMED)
		return;
	unlink_conn(c);
	c->state = CT_CLOSING;
	c->since = now + CLOSE_AFTER_MS;
	append(&c->ct->closing, c);
}

void
eb_conntrack_busy(struct eb_ct_conn *c)
{
	if (c == NULL || c->ct == NULL || c->state == CT_DOOMED ||
	    c->state == CT_CLOSING)
		return;
	unlink_conn(c);
	c->state = CT_BUSY;
}

/* c's body is behind the minimum rate: after a grace of one head
 * timeout, min_body_rate bytes for every second since. */
static int
body_too_slow(const struct eb_conntrack *ct, const struct eb_ct_conn *c,
              int64_t now)
{
	int64_t t = now - c->since - ct->head_timeout;

	return t > 0 && c->bytes < (uint64_t)t * ct->min_body_rate / 1000;
}

int64_t
eb_conntrack_sweep(struct eb_conntrack *ct, int64_t now, unsigned *heads,
                   unsigned *bodies)
{
	struct eb_ct_conn *c, *next;
	unsigned nh = 0, nb = 0;
	int64_t due = -1;

	while ((c = ct->heads.next) != &ct->heads &&
	       now - c->since >= ct->head_timeout) {
		doom(c);
		nh++;
	}
	while ((c = ct->closing.next) != &ct->closing && now >= c->since)
		doom(c);
	for (c = ct->bodies.next; c != &ct->bodies; c = next) {
		next = c->next;
		if (body_too_slow(ct, c, now)) {
			doom(c);
			nb++;
		}
	}
	if ((c = ct->heads.next) != &ct->heads)
		due = c->since + ct->head_timeout - now;
	if ((c = ct->closing.next) != &ct->closing &&
	    (due < 0 || c->since - now < due))
		due = c->since - now;
	if (ct->bodies.next != &ct->bodies && (due < 0 || due > BODY_SWEEP_MS))
		due = BODY_SWEEP_MS;
	if (heads != NULL)
		*heads = nh;
	if (bodies != NULL)
		*bodies = nb;
	return due;
}

unsigned
eb_conntrack_take_evicted(struct eb_conntrack *ct)
{
	unsigned n = ct->evicted;

	ct->evicted = 0;
	return n;
}

unsigned
eb_conntrack_count(const struct eb_conntrack *ct)
{
	return ct->count;
}

size_t
eb_conntrack_addr_key(const struct sockaddr *sa, size_t len,
                      unsigned char out[16])
{
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 4;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(out, a->s6_addr + 12, 4);
			return 4;
		}
		memcpy(out, a->s6_addr, 8);
		return 8;
	}
	return 0;
}
