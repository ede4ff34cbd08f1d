/*
 * Connection tracking (src/http/conntrack.c): the head deadline from the
 * accept and from the end of a response, the oldest head-waiting
 * connections ended first when the table is full, the minimum body rate,
 * and the per-address key (IPv6 per /64). Connections are socketpairs: a
 * connection the tracker ends reads EOF on the peer side.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/conntrack.h"

#define MAXC 16

struct pair {
	int ours, peer;
};

static void
open_pair(struct pair *p)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	p->ours = sv[0];
	p->peer = sv[1];
	fcntl(p->peer, F_SETFL, O_NONBLOCK);
}

static void
close_pair(struct pair *p)
{
	close(p->ours);
	close(p->peer);
}

/* 1 when our side was shut down (the peer reads EOF), 0 when it is open. */
static int
ended(const struct pair *p)
{
	char c;
	ssize_t n = read(p->peer, &c, 1);

	if (n == 0)
		return 1;
	assert_true(n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK));
	return 0;
}

static void
test_head_deadline(void **state)
{
	struct eb_conntrack *ct = eb_conntrack_create(100, 10000, 0);
	struct pair a, b;
	struct eb_ct_conn *ca, *cb;
	unsigned heads, bodies;

	(void)state;
	open_pair(&a);
	open_pair(&b);
	ca = eb_conntrack_add(ct, a.ours, 1000);
	cb = eb_conntrack_add(ct, b.ours, 5000);
	/* nothing due yet; the next sweep when a's deadline comes */
	assert_int_equal(eb_conntrack_sweep(ct, 10999, &heads, &bodies), 1);
	assert_int_equal(heads, 0);
	assert_false(ended(&a));
	/* a still trickling its head at 11000: ended; b not yet */
	eb_conntrack_sweep(ct, 11000, &heads, &bodies);
	assert_int_equal(heads, 1);
	assert_true(ended(&a));
	assert_false(ended(&b));
	/* b's head came in: served, no deadline; then a response ended at
	 * 20000, and the next head is due by 30000 */
	eb_conntrack_head_done(cb, 0, 6000);
	eb_conntrack_sweep(ct, 16000, &heads, &bodies);
	assert_int_equal(heads, 0);
	eb_conntrack_head_wait(cb, 20000);
	eb_conntrack_sweep(ct, 29999, &heads, &bodies);
	assert_false(ended(&b));
	eb_conntrack_sweep(ct, 30000, &heads, &bodies);
	assert_int_equal(heads, 1);
	assert_true(ended(&b));
	assert_int_equal(eb_conntrack_count(ct), 2); /* until removed */
	eb_conntrack_remove(ca);
	eb_conntrack_remove(cb);
	assert_int_equal(eb_conntrack_count(ct), 0);
	assert_int_equal(eb_conntrack_sweep(ct, 40000, NULL, NULL), -1);
	eb_conntrack_destroy(ct);
	close_pair(&a);
	close_pair(&b);
}

static void
test_full_table_evicts_oldest_head(void **state)
{
	struct eb_conntrack *ct = eb_conntrack_create(8, 60000, 0);
	struct pair p[MAXC];
	struct eb_ct_conn *c[MAXC];
	int i;

	(void)state;
	for (i = 0; i < 9; i++)
		open_pair(&p[i]);
	/* 0 and 1 are busy (their heads are in): never evicted */
	for (i = 0; i < 7; i++) {
		c[i] = eb_conntrack_add(ct, p[i].ours, 100 + i);
		if (i < 2)
			eb_conntrack_head_done(c[i], 0, 100 + i);
	}
	for (i = 0; i < 7; i++)
		assert_false(ended(&p[i]));
	/* the eighth fills the table: the oldest head-waiting one (2) goes */
	c[7] = eb_conntrack_add(ct, p[7].ours, 200);
	assert_false(ended(&p[0]));
	assert_false(ended(&p[1]));
	assert_true(ended(&p[2]));
	for (i = 3; i < 8; i++)
		assert_false(ended(&p[i]));
	assert_int_equal(eb_conntrack_take_evicted(ct), 1);
	/* once it is closed, the next one ends the next oldest (3) */
	eb_conntrack_remove(c[2]);
	c[8] = eb_conntrack_add(ct, p[8].ours, 300);
	assert_true(ended(&p[3]));
	assert_false(ended(&p[8]));
	/* a kept-alive connection whose response just ended is the newest */
	eb_conntrack_remove(c[3]);
	eb_conntrack_head_wait(c[0], 400); /* 0 now waits, newest */
	c[2] = eb_conntrack_add(ct, p[2].ours, 500);
	assert_true(ended(&p[4]));
	assert_false(ended(&p[0]));
	for (i = 0; i < 9; i++)
		if (i != 3)
			eb_conntrack_remove(c[i]);
	assert_int_equal(eb_conntrack_count(ct), 0);
	eb_conntrack_destroy(ct);
	for (i = 0; i < 9; i++)
		close_pair(&p[i]);
}

static void
test_body_rate(void **state)
{
	/* 2 s of grace, then 1000 bytes/s */
	struct eb_conntrack *ct = eb_conntrack_create(10, 2000, 1000);
	struct pair fast, slow;
	struct eb_ct_conn *cf, *cs;
	unsigned heads, bodies;

	(void)state;
	open_pair(&fast);
	open_pair(&slow);
	cf = eb_conntrack_add(ct, fast.ours, 0);
	cs = eb_conntrack_add(ct, slow.ours, 0);
	eb_conntrack_head_done(cf, 1, 100);
	eb_conntrack_head_done(cs, 1, 100);
	/* body sweeps come once a second */
	assert_int_equal(eb_conntrack_sweep(ct, 1100, &heads, &bodies), 1000);
	eb_conntrack_body_bytes(cf, 3000);
	eb_conntrack_body_bytes(cs, 10);
	/* at 4100: 2 s past the grace, 2000 bytes due */
	eb_conntrack_sweep(ct, 4100, &heads, &bodies);
	assert_int_equal(bodies, 1);
	assert_int_equal(heads, 0);
	assert_true(ended(&slow));
	assert_false(ended(&fast));
	/* the fast one's body is in: no rate applies any more */
	eb_conntrack_busy(cf);
	eb_conntrack_sweep(ct, 100000, &heads, &bodies);
	assert_int_equal(bodies, 0);
	assert_false(ended(&fast));
	eb_conntrack_remove(cf);
	eb_conntrack_remove(cs);
	eb_conntrack_destroy(ct);
	close_pair(&fast);
	close_pair(&slow);
}

static void
test_close_after(void **state)
{
	struct eb_conntrack *ct = eb_conntrack_create(10, 10000, 100);
	struct pair a, b;
	struct eb_ct_conn *ca, *cb;

	(void)state;
	open_pair(&a);
	open_pair(&b);
	ca = eb_conntrack_add(ct, a.ours, 0);
	cb = eb_conntrack_add(ct, b.ours, 0);
	/* a answered before its body at 500: ended a second later, whatever
	 * else is reported for it meanwhile (its response completing) */
	eb_conntrack_head_done(ca, 1, 400);
	eb_conntrack_close_after(ca, 500);
	eb_conntrack_head_wait(ca, 600);
	eb_conntrack_busy(ca);
	assert_int_equal(eb_conntrack_sweep(ct, 600, NULL, NULL), 900);
	assert_false(ended(&a));
	eb_conntrack_sweep(ct, 1500, NULL, NULL);
	assert_true(ended(&a));
	assert_false(ended(&b));
	eb_conntrack_remove(ca);
	eb_conntrack_remove(cb);
	eb_conntrack_destroy(ct);
	close_pair(&a);
	close_pair(&b);
}

static void
test_addr_key(void **state)
{
	struct sockaddr_in6 a6, b6;
	struct sockaddr_in a4;
	unsigned char ka[16], kb[16];

	(void)state;
	memset(&a6, 0, sizeof(a6));
	a6.sin6_family = AF_INET6;
	b6 = a6;
	inet_pton(AF_INET6, "2001:db8:1:2::1", &a6.sin6_addr);
	inet_pton(AF_INET6, "2001:db8:1:2:ffff:ee:dd:cc", &b6.sin6_addr);
	/* two addresses of one /64: one key */
	assert_int_equal(
	    eb_conntrack_addr_key((struct sockaddr *)&a6, sizeof(a6), ka), 8);
	assert_int_equal(
	    eb_conntrack_addr_key((struct sockaddr *)&b6, sizeof(b6), kb), 8);
	assert_memory_equal(ka, kb, 8);
	/* another /64: another key */
	inet_pton(AF_INET6, "2001:db8:1:3::1", &b6.sin6_addr);
	eb_conntrack_addr_key((struct sockaddr *)&b6, sizeof(b6), kb);
	assert_memory_not_equal(ka, kb, 8);
	/* IPv4, and IPv4-mapped IPv6, by the whole address */
	memset(&a4, 0, sizeof(a4));
	a4.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.7", &a4.sin_addr);
	assert_int_equal(
	    eb_conntrack_addr_key((struct sockaddr *)&a4, sizeof(a4), ka), 4);
	inet_pton(AF_INET6, "::ffff:192.0.2.7", &b6.sin6_addr);
	assert_int_equal(
	    eb_conntrack_addr_key((struct sockaddr *)&b6, sizeof(b6), kb), 4);
	assert_memory_equal(ka, kb, 4);
	/* short or other families: no key */
	assert_int_equal(eb_conntrack_addr_key((struct sockaddr *)&a6, 8, ka),
	                 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_head_deadline),
	    cmocka_unit_test(test_full_table_evicts_oldest_head),
	    cmocka_unit_test(test_body_rate),
	    cmocka_unit_test(test_close_after),
	    cmocka_unit_test(test_addr_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
