/*
 * Unit tests of the bearer check's cache (src/token/bearer_cache.c) and
 * the store's change tracking it relies on, against a real SQLite file:
 * a cached token answers without the store and with the same facts; it is
 * refused on the very next check after a revocation made through the
 * store API, through another handle, or by another process that touches
 * the change file (the real `grants revoke` code among them); expiry is
 * still enforced from the cache; an unannounced change from another
 * process is seen after the one-second TTL; "not found" is never cached;
 * every token or grant operation bumps the generation; threads see a
 * revocation as soon as it returns; with a backend's feed (N replicas)
 * the stamp follows the feed's sequence and is refused while the feed is
 * not proved current (no feed, no cache).
 *
 * "Another process" is this test binary run again (/proc/self/exe child
 * ...), so that no SQLite state is inherited across fork.
 */
#define _XOPEN_SOURCE 700
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/grants.h"
#include "core/config.h"
#include "core/mem.h"
#include "fx_store.h"
#include "store/store.h"
#include "store/watch.h"
#include "token/bearer_cache.h"
#include "token/token.h"

extern char **environ;

#define TTL_NS 1000000000LL /* bearer_cache.c CACHE_TTL_NS */

#include "tokenfx.h"

/* ---- a child process that writes the database ----------------------- */

/*
 * argv: child OP DB CHANGE ARGS... where CHANGE is the change file to
 * announce to, or "-" for none. OP "cli" runs eb_cli_grants on ARGS.
 */
static int
child_main(int argc, char **argv)
{
	struct eb_store *store;
	char err[512];
	int64_t now = (int64_t)time(NULL);
	const char *op = argv[2];
	int rc = EB_STORE_ERROR;

	if (strcmp(op, "cli") == 0)
		return eb_cli_grants(argc - 5, argv + 5);
	if ((store = eb_store_open(NULL, argv[3], err, sizeof(err))) == NULL)
		return 3;
	if (strcmp(argv[4], "-") != 0 &&
	    eb_store_set_change_file(store, argv[4], 1) != 0)
		return 3;
	if (strcmp(op, "token-revoke") == 0 && argc == 6)
		rc = eb_store_token_revoke(store, argv[5], now);
	else if (strcmp(op, "grant-revoke") == 0 && argc == 6)
		rc = eb_store_grant_set_status(
		    store, argv[5], EB_STORE_GRANT_REVOKED, "test", now);
	else if (strcmp(op, "supersede") == 0 && argc == 7)
		rc = eb_store_grant_supersede(store, argv[5], argv[6], now);
	else if (strcmp(op, "token-put") == 0 && argc == 8) {
		struct eb_store_token t = {
		    .hash = argv[5],
		    .kind = EB_STORE_TOKEN_ACCESS,
		    .tenant = "acme",
		    .grant_id = argv[6],
		    .jti = argv[7],
		    .created = now,
		    .expires = now + 600,
		};

		rc = eb_store_token_put(store, &t);
	}
	eb_store_close(store);
	return rc == EB_STORE_OK ? 0 : 1;
}

/* Run this binary as "child" with args (NULL-terminated); its exit code. */
static int
run_child(const char *first, ...)
{
	char *argv[16];
	posix_spawn_file_actions_t fa;
	va_list ap;
	pid_t pid;
	int n = 0, st;

	argv[n++] = "test_bearer_cache";
	argv[n++] = "child";
	argv[n++] = (char *)first;
	va_start(ap, first);
	while (n < 15 && (argv[n] = va_arg(ap, char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	assert_int_equal(
	    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0),
	    0);
	assert_int_equal(
	    posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* ---- fixture ---------------------------------------------------------- */

static int
setup(void **state)
{
	return tokenfx_setup(state, "bcache-test", 0, 1);
}

static int
teardown(void **state)
{
	eb_bearer_cache_clear();
	return tokenfx_teardown(state);
}

/* ---- helpers ---------------------------------------------------------- */

static char *
issue(struct fx *fx, const char *gid, int64_t exp)
{
	struct eb_access_claims c = {
	    .grant_id = gid,
	    .sub = "alice@appleid.acme.example",
	    .managed_apple_id = "alice@appleid.acme.example",
	    .enrollment_mode = "BYOD",
	    .client_id = "apple-device",
	    .scope = "mdm",
	    .iat = (int64_t)time(NULL),
	    .exp = exp,
	};
	char *tok = eb_token_issue(fx->s, fx->store, fx->cfg, fx->acme, &c,
	                           EB_STORE_TOKEN_WEB);

	assert_non_null(tok);
	return tok;
}

/* A token signed with claim exp, its hash in *hash (not stored). */
static char *
sign(struct fx *fx, const char *gid, const char *jti, int64_t exp,
     char hash[EB_STORE_HASH_HEXLEN + 1])
{
	json_t *c = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s}", "iss",
	                      "https://eb.example.com/t/acme", "sub", "alice",
	                      "aud", "https://eb.example.com/t/acme/mdm", "exp",
	                      (json_int_t)exp, "iat", (json_int_t)time(NULL),
	                      "jti", jti, "grant_id", gid);
	char *tok = eb_signer_sign(fx->s, "at+jwt", c);

	assert_non_null(tok);
	json_decref(c);
	assert_int_equal(eb_store_hash_token(tok, strlen(tok), hash), 0);
	return tok;
}

static int
check(struct fx *fx, const char *tok, int64_t now)
{
	struct eb_bearer b;
	int r =
	    eb_bearer_check(fx->s, fx->store, fx->cfg, fx->acme, tok, now, &b);

	if (r != EB_BEARER_OK)
		assert_null(b.grant_id); /* nothing handed out */
	eb_bearer_finish(&b);
	return r;
}

static uint64_t
hits(void)
{
	uint64_t h, m;

	eb_bearer_cache_test_stats(&h, &m);
	return h;
}

static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
hash_of(const char *tok, char hash[EB_STORE_HASH_HEXLEN + 1])
{
	assert_int_equal(eb_store_hash_token(tok, strlen(tok), hash), 0);
}

/* Accepted, then accepted again from the cache. */
static void
accepted_and_cached(struct fx *fx, const char *tok, int64_t now)
{
	uint64_t h = hits();

	assert_int_equal(check(fx, tok, now), EB_BEARER_OK);
	assert_int_equal(check(fx, tok, now), EB_BEARER_OK);
	assert_true(hits() > h);
}

/* ---- tests ------------------------------------------------------------ */

static void
test_hit_same_facts(void **state)
{
	struct fx *fx = *state;
	int64_t now = (int64_t)time(NULL);
	struct eb_bearer b1, b2;
	struct eb_store *plain;
	char *tok, err[256];
	uint64_t h;

	fx_mk_grant(fx->store, "g1", "acme", now + 7200);
	assert_int_equal(
	    eb_store_grant_bind(fx->store, "g1", "EnrollmentID", "ENR-1", now),
	    EB_STORE_OK);
	tok = issue(fx, "g1", now + 600);

	/* a miss, then a hit handing out exactly the same facts */
	h = hits();
	assert_int_equal(
	    eb_bearer_check(fx->s, fx->store, fx->cfg, fx->acme, tok, now, &b1),
	    EB_BEARER_OK);
	assert_int_equal(hits(), h);
	assert_int_equal(
	    eb_bearer_check(fx->s, fx->store, fx->cfg, fx->acme, tok, now, &b2),
	    EB_BEARER_OK);
	assert_int_equal(hits(), h + 1);
	assert_string_equal(b2.grant_id, "g1");
	assert_string_equal(b1.grant_id, b2.grant_id);
	assert_string_equal(b1.managed_apple_id, b2.managed_apple_id);
	assert_string_equal(b1.enrollment_mode, b2.enrollment_mode);
	assert_string_equal(b1.client_id, b2.client_id);
	assert_string_equal(b2.binding_kind, "EnrollmentID");
	assert_string_equal(b2.binding_value, "ENR-1");
	assert_string_equal(b1.binding_kind, b2.binding_kind);
	assert_string_equal(b1.binding_value, b2.binding_value);
	assert_string_equal(b1.jti, b2.jti);
	assert_int_equal(b1.exp, b2.exp);
	assert_non_null(b2.claims);
	eb_bearer_finish(&b1);
	eb_bearer_finish(&b2);

	/* a handle without a change file cannot tell: never cached */
	assert_non_null(plain = eb_store_open(NULL, fx->db, err, sizeof(err)));
	h = hits();
	assert_int_equal(
	    eb_bearer_check(fx->s, plain, fx->cfg, fx->acme, tok, now, &b1),
	    EB_BEARER_OK);
	eb_bearer_finish(&b1);
	assert_int_equal(
	    eb_bearer_check(fx->s, plain, fx->cfg, fx->acme, tok, now, &b1),
	    EB_BEARER_OK);
	eb_bearer_finish(&b1);
	assert_int_equal(hits(), h);
	eb_store_close(plain);
	eb_free_secret_str(tok);
}

static void
test_revoke_in_process(void **state)
{
	struct fx *fx = *state;
	int64_t now = (int64_t)time(NULL);
	char *tok, *tok2, hash[EB_STORE_HASH_HEXLEN + 1], err[256];
	struct eb_store *other;
	struct eb_bearer b;

	fx_mk_grant(fx->store, "g1", "acme", now + 7200);
	fx_mk_grant(fx->store, "g2", "acme", now + 7200);
	fx_mk_grant(fx->store, "g3", "acme", now + 7200);
	fx_mk_grant(fx->store, "g3b", "acme", now + 7200);

	/* the token revoked through the store API */
	tok = issue(fx, "g1", now + 600);
	accepted_and_cached(fx, tok, now);
	hash_of(tok, hash);
	assert_int_equal(eb_store_token_revoke(fx->store, hash, now),
	                 EB_STORE_OK);
	assert_int_equal(check(fx, tok, now), EB_BEARER_REVOKED);
	eb_free_secret_str(tok);

	/* the grant revoked */
	tok = issue(fx, "g1", now + 600);
	accepted_and_cached(fx, tok, now);
	assert_int_equal(eb_store_grant_set_status(fx->store, "g1",
	                                           EB_STORE_GRANT_REVOKED,
	                                           "test", now),
	                 EB_STORE_OK);
	assert_int_equal(check(fx, tok, now), EB_BEARER_REVOKED);
	eb_free_secret_str(tok);

	/* through another handle of this process, no change file: the
	 * generation is process-wide */
	assert_non_null(other = eb_store_open(NULL, fx->db, err, sizeof(err)));
	tok = issue(fx, "g2", now + 600);
	accepted_and_cached(fx, tok, now);
	assert_int_equal(eb_store_grant_set_status(
	                     other, "g2", EB_STORE_GRANT_EXPIRED, "test", now),
	                 EB_STORE_OK);
	assert_int_equal(check(fx, tok, now), EB_BEARER_REVOKED);
	eb_free_secret_str(tok);
	eb_store_close(other);

	/* superseded by a re-authentication: the new grant inherits the
	 * binding, and its tokens see it even when cached before */
	tok = issue(fx, "g3", now + 600);
	tok2 = issue(fx, "g3b", now + 600);
	assert_int_equal(
	    eb_store_grant_bind(fx->store, "g3", "UDID", "UDID-3", now),
	    EB_STORE_OK);
	accepted_and_cached(fx, tok, now);
	accepted_and_cached(fx, tok2, now);
	assert_int_equal(eb_store_grant_supersede(fx->store, "g3", "g3b", now),
	                 EB_STORE_OK);
	assert_int_equal(check(fx, tok, now), EB_BEARER_REVOKED);
	assert_int_equal(
	    eb_bearer_check(fx->s, fx->store, fx->cfg, fx->acme, tok2, now, &b),
	    EB_BEARER_OK);
	assert_string_equal(b.binding_value, "UDID-3");
	eb_bearer_finish(&b);
	eb_free_secret_str(tok);
	eb_free_secret_str(tok2);
}

static void
test_revoke_other_process(void **state)
{
	struct fx *fx = *state;
	int64_t now = (int64_t)time(NULL);
	char *tok, *tok2, hash[EB_STORE_HASH_HEXLEN + 1];
	uint64_t gen;

	fx_mk_grant(fx->store, "g1", "acme", now + 7200);
	fx_mk_grant(fx->store, "g2", "acme", now + 7200);
	fx_mk_grant(fx->store, "g3", "acme", now + 7200);
	fx_mk_grant(fx->store, "g3b", "acme", now + 7200);

	/* the real `grants revoke` code, in another process */
	tok = issue(fx, "g1", now + 600);
	accepted_and_cached(fx, tok, now);
	gen = eb_store_generation();
	assert_int_equal(run_child("cli", fx->db, "-", "grants", "revoke", "-c",
	                           fx->cfgpath, "g1", NULL),
	                 0);
	/* nothing in this process knew: only the change file tells */
	assert_int_equal(eb_store_generation(), gen);
	assert_int_equal(check(fx, tok, now), EB_BEARER_REVOKED);
	eb_free_secret_str(tok);

	/* one token revoked by another process that announces it */
	tok = issue(fx, "g2", now + 600);
	accepted_and_cached(fx, tok, now);
	hash_of(tok, hash);
	assert_int_equal(
	    run_child("token-revoke", fx->db, fx->changed, hash, NULL), 0);
	assert_int_equal(check(fx, tok, now), EB_BEARER_REVOKED);
	eb_free_secret_str(tok);

	/* a grant superseded by another process */
	tok = issue(fx, "g3", now + 600);
	tok2 = issue(fx, "g3b", now + 600);
	accepted_and_cached(fx, tok, now);
	accepted_and_cached(fx, tok2, now);
	assert_int_equal(
	    run_child("supersede", fx->db, fx->changed, "g3", "g3b", NULL), 0);
	assert_int_equal(check(fx, tok, now), EB_BEARER_REVOKED);
	assert_int_equal(check(fx, tok2, now), EB_BEARER_OK);
	eb_free_secret_str(tok);
	eb_free_secret_str(tok2);
}

static void
test_expiry_from_cache(void **state)
{
	struct fx *fx = *state;
	int64_t now = (int64_t)time(NULL);
	char *tok, hash[EB_STORE_HASH_HEXLEN + 1];
	uint64_t h;

	/* the grant ends before the token: refused from the cache */
	fx_mk_grant(fx->store, "g1", "acme", now + 10);
	tok = issue(fx, "g1", now + 3600);
	accepted_and_cached(fx, tok, now);
	h = hits();
	assert_int_equal(check(fx, tok, now + 9), EB_BEARER_OK);
	assert_int_equal(check(fx, tok, now + 10), EB_BEARER_REVOKED);
	assert_int_equal(hits(), h + 2);
	eb_free_secret_str(tok);

	/* the stored expiry is earlier than the token's exp claim */
	fx_mk_grant(fx->store, "g2", "acme", now + 7200);
	tok = sign(fx, "g2", "jti-short", now + 3000, hash);
	{
		struct eb_store_token st = {
		    .hash = hash,
		    .kind = EB_STORE_TOKEN_ACCESS,
		    .tenant = "acme",
		    .grant_id = "g2",
		    .jti = "jti-short",
		    .created = now,
		    .expires = now + 100,
		};

		assert_int_equal(eb_store_token_put(fx->store, &st),
		                 EB_STORE_OK);
	}
	accepted_and_cached(fx, tok, now);
	h = hits();
	/* our own tokens get no clock leeway: expired at the stored expiry,
	 * cached or not */
	assert_int_equal(check(fx, tok, now + 99), EB_BEARER_OK);
	assert_int_equal(check(fx, tok, now + 100), EB_BEARER_EXPIRED);
	assert_int_equal(hits(), h + 2);
	eb_free_secret_str(tok);
}

static void
test_ttl_backstop(void **state)
{
	struct fx *fx = *state;
	int64_t now = (int64_t)time(NULL), t0, left;
	struct eb_store_stamp before, after;
	uint64_t h;
	char *tok;
	int r;

	fx_mk_grant(fx->store, "g1", "acme", now + 7200);
	tok = issue(fx, "g1", now + 600);
	assert_int_equal(check(fx, tok, now), EB_BEARER_OK); /* cached */
	t0 = mono_ns();

	/* another process revokes without touching the change file */
	assert_int_equal(eb_store_stamp(fx->store, &before), 0);
	assert_int_equal(run_child("grant-revoke", fx->db, "-", "g1", NULL), 0);
	assert_int_equal(eb_store_stamp(fx->store, &after), 0);
	assert_true(eb_store_stamp_equal(&before, &after));
	/* so the cache cannot know: still accepted while the entry is young
	 * (asserted only when this machine was quick enough to tell) */
	h = hits();
	r = check(fx, tok, now);
	if (mono_ns() - t0 < TTL_NS / 2) {
		assert_int_equal(r, EB_BEARER_OK);
		assert_int_equal(hits(), h + 1);
	}
	/* ...and refused once the entry is a second old */
	left = t0 + TTL_NS + TTL_NS / 10 - mono_ns();
	if (left > 0) {
		struct timespec ts = {left / 1000000000LL, left % 1000000000LL};

		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
	assert_int_equal(check(fx, tok, now), EB_BEARER_REVOKED);
	eb_free_secret_str(tok);
}

static void
test_not_found_not_cached(void **state)
{
	struct fx *fx = *state;
	int64_t now = (int64_t)time(NULL);
	char *tok, hash[EB_STORE_HASH_HEXLEN + 1];
	uint64_t gen;

	fx_mk_grant(fx->store, "g1", "acme", now + 7200);
	tok = sign(fx, "g1", "jti-later", now + 600, hash);
	assert_int_equal(check(fx, tok, now), EB_BEARER_UNKNOWN);
	/* stored by another process that announces nothing: seen at once */
	gen = eb_store_generation();
	assert_int_equal(
	    run_child("token-put", fx->db, "-", hash, "g1", "jti-later", NULL),
	    0);
	assert_int_equal(eb_store_generation(), gen);
	assert_int_equal(check(fx, tok, now), EB_BEARER_OK);
	eb_free_secret_str(tok);
}

/* Did op bump the generation? */
#define BUMPS(op)                                                              \
	do {                                                                   \
		uint64_t g_ = eb_store_generation();                           \
		(void)(op);                                                    \
		assert_true(eb_store_generation() > g_);                       \
	} while (0)
#define KEEPS(op)                                                              \
	do {                                                                   \
		uint64_t g_ = eb_store_generation();                           \
		(void)(op);                                                    \
		assert_int_equal(eb_store_generation(), g_);                   \
	} while (0)

static void
test_generation(void **state)
{
	struct fx *fx = *state;
	struct eb_store *st = fx->store;
	int64_t now = (int64_t)time(NULL);
	char hash[EB_STORE_HASH_HEXLEN + 1], next[EB_STORE_HASH_HEXLEN + 1];
	struct eb_store_grant_list l;
	struct eb_store_token old;
	struct eb_store_grant g;
	size_t n;
	struct eb_store_code code = {
	    .hash = "c1",
	    .tenant = "acme",
	    .grant_id = "g1",
	    .client_id = "apple-device",
	    .redirect_uri = "https://r",
	    .created = now,
	    .expires = now + 60,
	};
	struct eb_store_token rt = {
	    .hash = hash,
	    .kind = EB_STORE_TOKEN_REFRESH,
	    .tenant = "acme",
	    .grant_id = "g1",
	    .jti = "r1",
	    .created = now,
	    .expires = now + 600,
	};
	struct eb_store_token rt2 = rt;
	struct eb_store_mapping m = {
	    .tenant = "acme",
	    .subject = "sub-alice",
	    .managed_apple_id = "other@appleid.acme.example",
	    .created = now,
	};
	struct eb_store_upstream u = {.next_at = now - 1};
	struct eb_store_audit ev = {
	    .ts = now, .tenant = "acme", .event = "test.event"};

	hash_of("refresh-1", hash);
	hash_of("refresh-2", next);
	rt2.hash = next;
	rt2.jti = "r2";

	/* what may change a token or a grant bumps, whatever its result */
	BUMPS(fx_mk_grant(st, "g1", "acme", now + 7200));
	BUMPS(fx_mk_grant(st, "g2", "acme", now + 7200));
	BUMPS(eb_store_grant_bind(st, "g1", "UDID", "U1", now));
	BUMPS(eb_store_grant_bind(st, "g1", "UDID", "OTHER", now)); /* fails */
	BUMPS(eb_store_grant_set_upstream(st, "g1", &u, now));
	BUMPS(eb_store_token_put(st, &rt));
	BUMPS(eb_store_token_rotate_refresh(st, hash, &rt2, NULL, 0, NULL, now,
	                                    30, &old));
	eb_store_token_finish(&old);
	BUMPS(eb_store_token_revoke(st, next, now));
	BUMPS(eb_store_token_revoke(st, "no-such-hash", now)); /* fails */
	BUMPS(eb_store_mapping_put(st, &m));
	BUMPS(eb_store_mapping_delete(st, "acme", "sub-alice"));
	KEEPS(eb_store_code_put(st, &code));
	BUMPS(eb_store_code_consume(st, "c1", "apple-device", "https://r", now,
	                            NULL));
	BUMPS(eb_store_code_consume(st, "c1", "apple-device", "https://r", now,
	                            NULL)); /* replay: revokes g1 */
	assert_int_equal(eb_store_grant_get(st, "g1", &g), EB_STORE_OK);
	assert_int_equal(g.status, EB_STORE_GRANT_REVOKED);
	eb_store_grant_finish(&g);
	BUMPS(fx_mk_grant(st, "g3", "acme", now + 7200));
	BUMPS(eb_store_grant_supersede(st, "g2", "g3", now));
	BUMPS(eb_store_grant_set_status(st, "g3", EB_STORE_GRANT_REVOKED, "t",
	                                now));
	/* renewal claims write grants: a bump when they claim one */
	assert_int_equal(eb_store_grant_set_upstream(st, "g3", &u, now),
	                 EB_STORE_NOT_FOUND);
	BUMPS(fx_mk_grant(st, "g4", "acme", now + 7200));
	BUMPS(eb_store_grant_set_upstream(st, "g4", &u, now));
	KEEPS(eb_store_grant_list_due(st, NULL, now, 0, 10, &l)); /* a read */
	assert_int_equal(l.n, 1);
	eb_store_grant_list_finish(&l);
	BUMPS(eb_store_grant_list_due(st, NULL, now, 60, 10, &l));
	assert_int_equal(l.n, 1);
	eb_store_grant_list_finish(&l);
	KEEPS(eb_store_grant_list_due(st, NULL, now, 60, 10, &l)); /* none */
	assert_int_equal(l.n, 0);
	/* the sweep deletes token rows: a bump when it removes any */
	BUMPS(eb_store_sweep(st, now + 3 * 86400, &n));
	assert_true(n > 0);
	KEEPS(eb_store_sweep(st, now + 3 * 86400, &n));
	assert_int_equal(n, 0);
	/* handles come and go */
	{
		struct eb_store *again;

		BUMPS(again = eb_store_open(NULL, fx->db, NULL, 0));
		BUMPS(eb_store_close(again));
	}

	/* reads, and writes of nothing a bearer check reads, do not */
	KEEPS(eb_store_grant_get(st, "g1", &g));
	eb_store_grant_finish(&g);
	KEEPS(eb_store_token_get(st, hash, &old));
	eb_store_token_finish(&old);
	KEEPS(eb_store_audit_add(st, &ev));
	KEEPS(eb_store_ping(st));
}

static void
test_change_file(void **state)
{
	struct fx *fx = *state;
	struct eb_store_stamp a, b, none;
	struct eb_store *cli;
	struct stat sb, old_sb;
	char path[512], text[64];
	FILE *f;
	int i;

	/* no file yet: a usable stamp, saying so */
	assert_int_equal(eb_store_stamp(fx->store, &a), 0);
	assert_int_equal(a.file, 0);
	/* a handle without a change file has no usable stamp */
	assert_non_null(cli = eb_store_open(NULL, fx->db, NULL, 0));
	assert_int_equal(eb_store_stamp(cli, &none), -1);
	assert_int_equal(eb_store_announce_change(cli), -1);

	/* the CLI's handle: every change touches the file, which is 0600 */
	assert_int_equal(eb_store_set_change_file(cli, fx->changed, 1), 0);
	assert_int_equal(eb_store_stamp(fx->store, &a), 0);
	fx_mk_grant(cli, "g1", "acme", 0);
	assert_int_equal(stat(fx->changed, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(eb_store_stamp(fx->store, &b), 0);
	assert_int_equal(b.file, 1);
	assert_false(eb_store_stamp_equal(&a, &b));

	/* every touch changes the stamp, however quick: a counter, and a
	 * modification time always later than the last, for a thread that
	 * must stat(2) the file (test_change_watch: one that watches it) */
	for (i = 0; i < 200; i++) {
		a = b;
		old_sb = sb;
		assert_int_equal(eb_store_announce_change(cli), 0);
		assert_int_equal(eb_store_stamp(fx->store, &b), 0);
		assert_false(eb_store_stamp_equal(&a, &b));
		assert_int_equal(stat(fx->changed, &sb), 0);
		assert_true(sb.st_mtim.tv_sec > old_sb.st_mtim.tv_sec ||
		            (sb.st_mtim.tv_sec == old_sb.st_mtim.tv_sec &&
		             sb.st_mtim.tv_nsec > old_sb.st_mtim.tv_nsec));
	}
	assert_non_null(f = fopen(fx->changed, "r"));
	assert_non_null(fgets(text, sizeof(text), f));
	fclose(f);
	assert_string_equal(text, "201\n");

	/* not a regular file: no usable stamp, and no touching through it */
	assert_int_equal(unlink(fx->changed), 0);
	snprintf(path, sizeof(path), "%s/elsewhere", fx->dir);
	assert_int_equal(symlink(path, fx->changed), 0);
	assert_int_equal(eb_store_stamp(fx->store, &a), -1);
	assert_int_equal(eb_store_announce_change(cli), -1);
	assert_int_equal(access(path, F_OK), -1); /* nothing created there */
	assert_int_equal(unlink(fx->changed), 0);

	/* no state directory: no server started with it, nothing to tell */
	snprintf(path, sizeof(path), "%s/no-such-dir/store.changed", fx->dir);
	assert_int_equal(eb_store_set_change_file(cli, path, 1), 0);
	assert_int_equal(eb_store_announce_change(cli), 0);
	eb_store_close(cli);
}

/* Stamp twice: the second comes from this thread's watch. */
static void
watched_stamp(struct fx *fx, struct eb_store_stamp *out)
{
	assert_int_equal(eb_store_stamp(fx->store, out), 0);
	assert_int_equal(eb_store_stamp(fx->store, out), 0);
	assert_int_equal(out->file, 1);
	assert_int_equal(out->watched, 1);
}

/* Write text into path by hand (another writer than ours). */
static void
write_file(const char *path, const char *text)
{
	FILE *f;

	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void *
watch_thread(void *p)
{
	struct fx *fx = p;
	struct eb_store_stamp st;
	uint64_t *n = eb_malloc(sizeof(*n));

	assert_non_null(n);
	watched_stamp(fx, &st);
	*n = eb_watch_count();
	return n;
}

static void
test_change_watch(void **state)
{
	struct fx *fx = *state;
	struct eb_store_stamp a, b;
	struct eb_store *cli;
	char tmp[512];
	uint64_t base, *in_thread;
	pthread_t th;
	int i;

	assert_non_null(cli = eb_store_open(NULL, fx->db, NULL, 0));
	assert_int_equal(eb_store_set_change_file(cli, fx->changed, 1), 0);
	/* no file, no watch: stat(2) every time */
	assert_int_equal(eb_store_stamp(fx->store, &a), 0);
	assert_int_equal(eb_store_stamp(fx->store, &a), 0);
	assert_int_equal(a.file, 0);
	assert_int_equal(a.watched, 0);

	/* the file appears: the stamp after the one that saw it watches */
	assert_int_equal(eb_store_announce_change(cli), 0);
	base = eb_watch_count();
	assert_int_equal(eb_store_stamp(fx->store, &a), 0);
	assert_int_equal(a.watched, 0);
	assert_int_equal(eb_watch_count(), base + 1);
	assert_int_equal(eb_store_stamp(fx->store, &b), 0);
	assert_int_equal(b.watched, 1);
	assert_false(eb_store_stamp_equal(&a, &b));

	/* quiet: the same stamp; every touch: another one */
	for (i = 0; i < 200; i++) {
		assert_int_equal(eb_store_stamp(fx->store, &a), 0);
		assert_true(eb_store_stamp_equal(&a, &b));
		if (i % 2) { /* a change through the CLI */
			snprintf(tmp, sizeof(tmp), "g%d", i);
			fx_mk_grant(cli, tmp, "acme", 0);
		} else
			assert_int_equal(eb_store_announce_change(cli), 0);
		assert_int_equal(eb_store_stamp(fx->store, &b), 0);
		assert_int_equal(b.watched, 1);
		assert_false(eb_store_stamp_equal(&a, &b));
	}

	/* any writer at all, even one that leaves the same bytes */
	watched_stamp(fx, &a);
	write_file(fx->changed, "7\n");
	assert_int_equal(eb_store_stamp(fx->store, &b), 0);
	assert_false(eb_store_stamp_equal(&a, &b));
	watched_stamp(fx, &a);
	write_file(fx->changed, "7\n");
	assert_int_equal(eb_store_stamp(fx->store, &b), 0);
	assert_false(eb_store_stamp_equal(&a, &b));

	/* replaced by a rename: seen, and the new file watched next */
	watched_stamp(fx, &a);
	snprintf(tmp, sizeof(tmp), "%s.new", fx->changed);
	write_file(tmp, "1\n");
	assert_int_equal(rename(tmp, fx->changed), 0);
	assert_int_equal(eb_store_stamp(fx->store, &b), 0);
	assert_false(eb_store_stamp_equal(&a, &b));
	assert_int_equal(b.watched, 0);
	watched_stamp(fx, &a);
	assert_true(a.ino == b.ino);

	/* the same file dropped and watched again (a hard link kept it, as
	 * a new file may reuse its inode): never the stamp it had before */
	snprintf(tmp, sizeof(tmp), "%s/keep", fx->dir);
	assert_int_equal(link(fx->changed, tmp), 0);
	assert_int_equal(eb_store_set_change_file(fx->store, fx->changed, 0),
	                 0);
	watched_stamp(fx, &a); /* a new watch, no event since */
	assert_int_equal(unlink(fx->changed), 0);
	assert_int_equal(eb_store_stamp(fx->store, &b), 0);
	assert_int_equal(b.file, 0);
	assert_int_equal(link(tmp, fx->changed), 0);
	assert_int_equal(unlink(tmp), 0);
	watched_stamp(fx, &b);
	assert_true(a.ino == b.ino);
	assert_false(eb_store_stamp_equal(&a, &b));

	/* deleted: no file; a symbolic link in its place: no stamp */
	assert_int_equal(unlink(fx->changed), 0);
	assert_int_equal(eb_store_stamp(fx->store, &b), 0);
	assert_int_equal(b.file, 0);
	snprintf(tmp, sizeof(tmp), "%s/elsewhere", fx->dir);
	write_file(tmp, "1\n");
	assert_int_equal(symlink(tmp, fx->changed), 0);
	assert_int_equal(eb_store_stamp(fx->store, &b), -1);
	assert_int_equal(eb_store_stamp(fx->store, &b), -1);
	assert_int_equal(unlink(fx->changed), 0);

	/* a new change file (or handle) drops the old watch */
	assert_int_equal(eb_store_announce_change(cli), 0);
	watched_stamp(fx, &a);
	assert_int_equal(eb_store_set_change_file(fx->store, fx->changed, 0),
	                 0);
	assert_int_equal(eb_store_stamp(fx->store, &b), 0);
	assert_int_equal(b.watched, 0);
	assert_false(eb_store_stamp_equal(&a, &b));

	/* each thread its own watch, closed when the thread ends */
	watched_stamp(fx, &a);
	base = eb_watch_count();
	assert_int_equal(pthread_create(&th, NULL, watch_thread, fx), 0);
	assert_int_equal(pthread_join(th, (void **)&in_thread), 0);
	assert_int_equal(*in_thread, base + 1);
	eb_free(in_thread);
	assert_int_equal(eb_watch_count(), base);
	eb_store_close(cli);
}

/* ---- threads ---------------------------------------------------------- */

struct racer {
	struct fx *fx;
	const char *tok;
	int64_t now;
	atomic_int *revoked; /* set once the revocation has returned */
	atomic_int ok_before;
	int hits_before, bad_after, checks_after;
};

static void *
racer_main(void *p)
{
	struct racer *r = p;
	uint64_t h0 = hits();
	int done, res;

	for (;;) {
		done = atomic_load(r->revoked);
		res = check(r->fx, r->tok, r->now);
		if (!done) {
			if (res == EB_BEARER_OK)
				atomic_fetch_add(&r->ok_before, 1);
			continue;
		}
		r->checks_after++;
		if (res != EB_BEARER_REVOKED)
			r->bad_after++;
		if (r->checks_after == 50)
			break;
	}
	r->hits_before = (int)(hits() - h0);
	eb_bearer_cache_clear();
	return NULL;
}

static void
test_threads(void **state)
{
	struct fx *fx = *state;
	int64_t now = (int64_t)time(NULL);
	struct racer rs[2];
	pthread_t th[2];
	atomic_int revoked = 0;
	char *tok;
	int i;

	fx_mk_grant(fx->store, "g1", "acme", now + 7200);
	tok = issue(fx, "g1", now + 600);
	for (i = 0; i < 2; i++) {
		memset(&rs[i], 0, sizeof(rs[i]));
		atomic_init(&rs[i].ok_before, 0);
		rs[i].fx = fx;
		rs[i].tok = tok;
		rs[i].now = now;
		rs[i].revoked = &revoked;
		assert_int_equal(
		    pthread_create(&th[i], NULL, racer_main, &rs[i]), 0);
	}
	/* let both threads fill their own caches */
	for (i = 0; i < 2; i++)
		while (atomic_load(&rs[i].ok_before) < 20)
			sched_yield();
	assert_int_equal(eb_store_grant_set_status(fx->store, "g1",
	                                           EB_STORE_GRANT_REVOKED,
	                                           "test", now),
	                 EB_STORE_OK);
	atomic_store(&revoked, 1);
	for (i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_true(atomic_load(&rs[i].ok_before) >= 20);
		assert_true(rs[i].hits_before > 0);
		assert_int_equal(rs[i].bad_after, 0);
	}
	eb_free_secret_str(tok);
}

/* ---- a backend with a feed (the stamp rule for N replicas) ------------ */

/*
 * A backend with no storage, only a feed this test drives by hand: its
 * sequence and last proof are the store handle's, as a real feed's are.
 */
static struct {
	_Atomic uint64_t *seq;
	_Atomic int64_t *alive;
	int fail;    /* feed_start fails */
	int stopped; /* feed_stop calls */
	int closed;  /* close calls, after feed_stop */
} ff;

static int
ff_open(const char *target, void **bep, char *err, size_t errlen)
{
	*bep = &ff;
	return 0;
}

static void
ff_close(void *be)
{
	assert_int_equal(ff.stopped, 1); /* the feed is stopped first */
	ff.closed++;
}

static int64_t
ff_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int
ff_start(void *be, _Atomic uint64_t *seq, _Atomic int64_t *alive_ns)
{
	if (ff.fail)
		return -1;
	ff.seq = seq;
	ff.alive = alive_ns;
	atomic_fetch_add(seq, 1);
	atomic_store(alive_ns, ff_now());
	return 0;
}

static void
ff_stop(void *be)
{
	ff.stopped++;
}

static const struct eb_store_ops ff_ops = {
    .name = "feed-only",
    .open = ff_open,
    .close = ff_close,
    .feed_start = ff_start,
    .feed_stop = ff_stop,
};

/*
 * With a feed: the stamp carries its sequence, is refused while the feed
 * has not proved itself within a second (no feed, no cache: the bearer
 * cache then neither answers nor fills), needs no change file, and a
 * sequence bump makes the cache miss. A feed that cannot start is an
 * error; a backend without one falls back to the change file.
 */
static void
test_feed_stamp(void **state)
{
	struct eb_bearer_cache_facts f = {
	    .kind = EB_STORE_TOKEN_ACCESS,
	    .status = EB_STORE_TOKEN_ACTIVE,
	    .tenant = "acme",
	    .grant_id = "g1",
	    .g_id = "g1",
	    .g_tenant = "acme",
	};
	struct eb_bearer_cache_ctx ctx;
	struct eb_store_stamp a, b;
	struct eb_store *s;
	char hash[EB_STORE_HASH_HEXLEN + 1], err[128];

	memset(&ff, 0, sizeof(ff));
	hash_of("feed-token", hash);
	assert_non_null(s = eb_store_open(&ff_ops, "x", err, sizeof(err)));
	assert_int_equal(eb_store_backend_has_feed(s), 1);
	assert_int_equal(eb_store_stamp(s, &a), -1); /* not started yet */
	assert_int_equal(eb_store_feed_start(s), 1);
	assert_int_equal(eb_store_feed_start(s), 1); /* once */
	/* a change file is not used, nor needed */
	assert_int_equal(eb_store_set_change_file(s, "/nonexistent/x", 0), 0);
	assert_int_equal(eb_store_stamp(s, &a), 0);
	assert_int_equal(a.feed, atomic_load(ff.seq));
	assert_int_equal(a.file, 0);
	assert_int_equal(eb_store_stamp(s, &b), 0);
	assert_true(eb_store_stamp_equal(&a, &b));

	/* cached while the stamp holds, missed after an invalidation */
	assert_null(eb_bearer_cache_get(s, hash, &ctx));
	assert_true(ctx.usable);
	eb_bearer_cache_put(&ctx, &f);
	assert_non_null(eb_bearer_cache_get(s, hash, &ctx));
	atomic_fetch_add(ff.seq, 1);
	assert_int_equal(eb_store_stamp(s, &b), 0);
	assert_false(eb_store_stamp_equal(&a, &b));
	assert_null(eb_bearer_cache_get(s, hash, &ctx));
	eb_bearer_cache_put(&ctx, &f);
	assert_non_null(eb_bearer_cache_get(s, hash, &ctx));

	/* a feed late by more than a second, or down: no cache at all */
	atomic_store(ff.alive, ff_now() - 1100000000LL);
	assert_int_equal(eb_store_stamp(s, &b), -1);
	assert_null(eb_bearer_cache_get(s, hash, &ctx));
	assert_false(ctx.usable);
	atomic_store(ff.alive, ff_now() - 900000000LL);
	assert_int_equal(eb_store_stamp(s, &b), 0);
	atomic_store(ff.alive, 0);
	assert_int_equal(eb_store_stamp(s, &b), -1);
	atomic_store(ff.alive, ff_now());
	assert_non_null(eb_bearer_cache_get(s, hash, &ctx));

	/* closing stops the feed, then closes the backend */
	eb_store_close(s);
	assert_int_equal(ff.stopped, 1);
	assert_int_equal(ff.closed, 1);
	eb_bearer_cache_clear();

	/* a feed that cannot start: an error, and still no cache */
	memset(&ff, 0, sizeof(ff));
	ff.fail = 1;
	ff.stopped = 1; /* close asserts it; nothing to stop here */
	assert_non_null(s = eb_store_open(&ff_ops, "x", err, sizeof(err)));
	assert_int_equal(eb_store_feed_start(s), -1);
	assert_int_equal(eb_store_stamp(s, &a), -1);
	eb_store_close(s);
	assert_int_equal(ff.stopped, 1); /* not called: never started */
}

/* SQLite has no feed: the change file it is. */
static void
test_no_feed_sqlite(void **state)
{
	struct fx *fx = *state;
	struct eb_store *s;
	char err[256];

	assert_non_null(s = eb_store_open(NULL, fx->db, err, sizeof(err)));
	assert_int_equal(eb_store_backend_has_feed(s), 0);
	assert_int_equal(eb_store_feed_start(s), 0);
	eb_store_close(s);
}

int
main(int argc, char **argv)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_hit_same_facts),
	    T(test_revoke_in_process),
	    T(test_revoke_other_process),
	    T(test_expiry_from_cache),
	    T(test_ttl_backstop),
	    T(test_not_found_not_cached),
	    T(test_generation),
	    T(test_change_file),
	    T(test_change_watch),
	    T(test_threads),
	    cmocka_unit_test(test_feed_stamp),
	    T(test_no_feed_sqlite),
	};

	if (argc > 2 && strcmp(argv[1], "child") == 0)
		return child_main(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
