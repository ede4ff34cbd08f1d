/*
 * The store conformance suite: every test runs against each backend listed
 * in `backends` through the ops table (a new backend adds one line), in a
 * fresh mkdtemp folder (SQLite) or a fresh schema on the server EB_TEST_PG
 * names (PostgreSQL; without it that run skips, but fails under CI=true).
 * It checks what callers rely on: migrations applied once and a newer
 * schema refused, single-use flows (one winner among concurrent takers),
 * code replay and refresh-token reuse detection with the grant revoked,
 * the grant lifecycle with its audit trail, per-thread connections, clear
 * open errors, clean failure when any allocation fails (torture), and
 * races between handles (each the shape of two replicas) that a naive
 * port loses, each naming the variant it catches. A few checks are
 * backend-only (WAL, file mode; the generation row) and say so.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fx_dir.h"
#include "core/mem.h"
#include "store/pg/pg_import.h"
#include "store/migrations.h"
#include "fx_store.h"
#include "store/store.h"

static const struct {
	const char *name;
	const struct eb_store_ops *ops;
	int pg; /* targets are fresh schemas on EB_TEST_PG */
} backends[] = {
    {"sqlite", &eb_store_sqlite_ops, 0},
    {"postgresql", &eb_store_pg_ops, 1},
};
static const struct eb_store_ops *ops; /* the backend under test */
static int on_pg;                      /* ops is PostgreSQL's */
static const char *pg_base;            /* EB_TEST_PG */

#define T0   1700000000
#define H(c) "000000000000000000000000000000000000000000000000000000000000000" c

#define FX_TARGETS 8

struct fx {
	char dir[256];
	char path[1200]; /* the store's target: a file or a DSN */
	struct eb_store *s;
	/* PostgreSQL: the schemas made for the test, dropped at teardown */
	char targets[FX_TARGETS][1200];
	int ntargets;
};

/*
 * A fresh target for the test: the file name in its folder (SQLite), or a
 * new schema (PostgreSQL), dropped at teardown.
 */
static void
fx_target(struct fx *fx, const char *name, char *out, size_t len)
{
	if (!on_pg) {
		snprintf(out, len, "%s/%s", fx->dir, name);
		return;
	}
	assert_true(fx->ntargets < FX_TARGETS);
	assert_int_equal(eb_store_pg_test_schema(pg_base, out, len), 0);
	snprintf(fx->targets[fx->ntargets++], sizeof(fx->targets[0]), "%s",
	         out);
}

/* What an error about target names it by: its path, or its schema. */
static const char *
target_name(const char *target, char *buf, size_t len)
{
	if (!on_pg)
		return target;
	assert_int_equal(eb_store_pg_test_schema_name(target, buf, len), 0);
	return buf;
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	const char *base = getenv("EB_BINARY_DIR");
	char err[512];

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "%s/store-test-XXXXXX",
	         base ? base : "/tmp");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	*state = fx;
	fx_target(fx, "eb.db", fx->path, sizeof(fx->path));
	fx->s = eb_store_open(ops, fx->path, err, sizeof(err));
	if (fx->s == NULL) {
		print_error("open: %s\n", err);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	int i;

	eb_store_close(fx->s);
	fx_rmtree(fx->dir);
	for (i = 0; i < fx->ntargets; i++)
		eb_store_pg_test_drop(pg_base, fx->targets[i]);
	free(fx);
	return 0;
}

static void
mk_grant(struct eb_store *s, const char *id, const char *tenant)
{
	static uint8_t rt[] = {1, 2, 3, 0, 4};
	struct eb_store_grant g;

	fx_grant(&g, id, tenant, T0);
	g.auth_method = "apple-oauth2";
	g.client_id = "apple-device";
	g.user_identifier = "alice@contoso.com";
	g.idp_tid = "tid-1";
	g.idp_oid = "oid-1";
	g.upstream_refresh_token = rt;
	g.upstream_refresh_token_len = sizeof(rt);
	g.upstream_next_at = T0 + 3600;
	assert_int_equal(eb_store_grant_create(s, &g), EB_STORE_OK);
}

static void
mk_token(struct eb_store_token *t, const char *hash, int kind,
         const char *grant)
{
	memset(t, 0, sizeof(*t));
	t->hash = (char *)hash;
	t->kind = kind;
	t->tenant = "acme";
	t->grant_id = (char *)grant;
	t->client_id = "apple-device";
	t->created = T0;
	t->expires = T0 + 86400;
}

static int
grant_status(struct eb_store *s, const char *id)
{
	struct eb_store_grant g;
	int st;

	assert_int_equal(eb_store_grant_get(s, id, &g), EB_STORE_OK);
	st = g.status;
	eb_store_grant_finish(&g);
	return st;
}

static int
token_status(struct eb_store *s, const char *hash)
{
	struct eb_store_token t;
	int st;

	assert_int_equal(eb_store_token_get(s, hash, &t), EB_STORE_OK);
	st = t.status;
	eb_store_token_finish(&t);
	return st;
}

/* 1 when the tenant's audit log holds event about subject. */
static int
has_event(struct eb_store *s, const char *tenant, const char *event,
          const char *subject)
{
	struct eb_store_audit_list l;
	size_t i;
	int found = 0;

	assert_int_equal(eb_store_audit_list(s, tenant, 1000, &l), 0);
	for (i = 0; i < l.n; i++)
		if (strcmp(l.v[i].event, event) == 0 && l.v[i].subject &&
		    strcmp(l.v[i].subject, subject) == 0)
			found = 1;
	eb_store_audit_list_finish(&l);
	return found;
}

/* ---- lifecycle ---------------------------------------------------------*/

static void
test_migrations_idempotent(void **state)
{
	struct fx *fx = *state;
	int64_t v1, v2;
	char err[512];

	assert_int_equal(eb_store_schema_version(fx->s, &v1), 0);
	assert_true(v1 >= 1);
	assert_int_equal(eb_store_ping(fx->s), EB_STORE_OK);
	mk_grant(fx->s, "g1", "acme");
	eb_store_close(fx->s);

	/* Reopening applies nothing again and keeps the data. */
	fx->s = eb_store_open(ops, fx->path, err, sizeof(err));
	assert_non_null(fx->s);
	assert_int_equal(eb_store_schema_version(fx->s, &v2), 0);
	assert_int_equal(v1, v2);
	assert_int_equal(grant_status(fx->s, "g1"), EB_STORE_GRANT_ACTIVE);
}

static void
test_migration_upgrade(void **state)
{
	struct fx *fx = *state;
	char path[1200], err[512];
	struct eb_store *s;
	int64_t v;

	/* A database made by a binary that knew no migration... */
	fx_target(fx, "old.db", path, sizeof(path));
	eb_store_test_schema_limit(0);
	s = eb_store_open(ops, path, err, sizeof(err));
	eb_store_test_schema_limit(-1);
	assert_non_null(s);
	assert_int_equal(eb_store_schema_version(s, &v), 0);
	assert_int_equal(v, 0);
	eb_store_close(s);
	/* ...is brought up to date by this one. */
	s = eb_store_open(ops, path, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(eb_store_schema_version(s, &v), 0);
	assert_true(v >= 1);
	mk_grant(s, "g1", "acme");
	eb_store_close(s);
}

static void
test_newer_schema_refused(void **state)
{
	struct fx *fx = *state;
	struct eb_store *s;
	char err[512], name[64];

	eb_store_close(fx->s);
	fx->s = NULL;
	eb_store_test_schema_limit(0); /* this "binary" knows no migration */
	s = eb_store_open(ops, fx->path, err, sizeof(err));
	eb_store_test_schema_limit(-1);
	assert_null(s);
	assert_non_null(strstr(err, "newer"));
	assert_non_null(strstr(err, target_name(fx->path, name, sizeof(name))));
	/* The database is untouched and opens with the real binary. */
	fx->s = eb_store_open(ops, fx->path, err, sizeof(err));
	assert_non_null(fx->s);
}

static void
test_missing_parent_dir(void **state)
{
	struct fx *fx = *state;
	char path[400], err[512];

	if (on_pg)
		skip(); /* SQLite only: a file in a folder */
	snprintf(path, sizeof(path), "%s/no/such/dir/eb.db", fx->dir);
	assert_null(eb_store_open(ops, path, err, sizeof(err)));
	assert_non_null(strstr(err, "does not exist"));
	assert_non_null(strstr(err, "/no/such/dir"));
	/* NULL err buffer is allowed. */
	assert_null(eb_store_open(ops, path, NULL, 0));
}

/* SQLite only: WAL journal, 0600 files even under a permissive umask. */
static void
test_sqlite_wal_and_mode(void **state)
{
	struct fx *fx = *state;
	char path[400], wal[420], err[512];
	unsigned char hdr[20];
	struct eb_store *s;
	struct stat sb;
	mode_t old;
	FILE *f;

	if (strcmp(eb_store_backend(fx->s), "sqlite") != 0)
		skip();
	snprintf(path, sizeof(path), "%s/mode.db", fx->dir);
	old = umask(0);
	s = eb_store_open(ops, path, err, sizeof(err));
	umask(old);
	assert_non_null(s);
	mk_grant(s, "g1", "acme");
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	assert_int_equal(stat(wal, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* File format bytes 18/19 are 2 in WAL mode. */
	assert_non_null(f = fopen(path, "rb"));
	assert_int_equal(fread(hdr, 1, sizeof(hdr), f), sizeof(hdr));
	fclose(f);
	assert_int_equal(hdr[18], 2);
	assert_int_equal(hdr[19], 2);
	eb_store_close(s);

	/* A looser file is tightened on open. */
	assert_int_equal(chmod(path, 0644), 0);
	s = eb_store_open(ops, path, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	eb_store_close(s);
}

/* A backend with almost no capabilities fails cleanly, never crashes. */
static int
stub_open(const char *target, void **bep, char *err, size_t errlen)
{
	*bep = NULL;
	return 0;
}

static void
test_missing_capability(void **state)
{
	static const struct eb_store_ops stub = {.name = "stub",
	                                         .open = stub_open};
	struct eb_store_grant g;
	struct eb_store *s;

	(void)state;
	s = eb_store_open(&stub, "x", NULL, 0);
	assert_non_null(s);
	assert_string_equal(eb_store_backend(s), "stub");
	assert_int_equal(eb_store_ping(s), EB_STORE_ERROR);
	assert_int_equal(eb_store_grant_get(s, "x", &g), EB_STORE_ERROR);
	eb_store_close(s);
	eb_store_close(NULL);
	assert_int_equal(eb_store_ping(NULL), EB_STORE_ERROR);
}

static void
test_hash_token(void **state)
{
	char h[EB_STORE_HASH_HEXLEN + 1];

	(void)state;
	assert_int_equal(eb_store_hash_token("abc", 3, h), 0);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223"
	                       "b00361a396177a9cb410ff61f20015ad");
}

/* ---- flows -------------------------------------------------------------*/

static void
mk_flow(struct eb_store_flow *f, const char *id, const char *state,
        int64_t expires)
{
	static uint8_t verifier[] = {9, 8, 7, 0, 6};

	memset(f, 0, sizeof(*f));
	f->id = (char *)id;
	f->tenant = "acme";
	f->kind = EB_STORE_FLOW_APPLE_AS_WEB;
	f->created = T0;
	f->expires = expires;
	f->user_identifier = "alice@contoso.com";
	f->enrollment_mode = "ADDE";
	f->model_family = "Mac";
	f->product = "Mac14,2";
	f->version = "23A344";
	f->language = "en-US";
	f->os_version = "14.0";
	f->udid = "UDID-1";
	f->serial = "SERIAL-1";
	f->upstream_state = (char *)state;
	f->upstream_nonce = "nonce";
	f->pkce_verifier = verifier;
	f->pkce_verifier_len = sizeof(verifier);
	f->browser_binding = H("b");
	f->client_id = "apple-device";
	f->redirect_uri = "apple-remotemanagement-user-login:/oauth2/"
	                  "redirection";
	f->device_state = "dev-state";
	f->scope = "mdm";
	f->extra = "{\"k\":1}";
}

static void
test_flow_single_use(void **state)
{
	struct fx *fx = *state;
	struct eb_store_flow f, out;
	size_t removed;

	mk_flow(&f, "flow1", "st1", T0 + 600);
	assert_int_equal(eb_store_flow_put(fx->s, &f), EB_STORE_OK);
	/* get does not use it up; every field round-trips */
	assert_int_equal(eb_store_flow_get(fx->s, EB_STORE_FLOW_BY_ID, "flow1",
	                                   T0 + 1, &out),
	                 EB_STORE_OK);
	assert_string_equal(out.tenant, "acme");
	assert_int_equal(out.kind, EB_STORE_FLOW_APPLE_AS_WEB);
	assert_int_equal(out.expires, T0 + 600);
	assert_string_equal(out.product, "Mac14,2");
	assert_string_equal(out.serial, "SERIAL-1");
	assert_string_equal(out.redirect_uri, f.redirect_uri);
	assert_int_equal(out.pkce_verifier_len, f.pkce_verifier_len);
	assert_memory_equal(out.pkce_verifier, f.pkce_verifier,
	                    f.pkce_verifier_len);
	assert_string_equal(out.extra, "{\"k\":1}");
	eb_store_flow_finish(&out);
	eb_store_flow_finish(&out); /* finishing twice is harmless */

	/* put again replaces (same id); another id with the same state: no */
	f.kind = EB_STORE_FLOW_OAUTH2_AUTHORIZE;
	assert_int_equal(eb_store_flow_put(fx->s, &f), EB_STORE_OK);
	f.id = "flow2";
	assert_int_equal(eb_store_flow_put(fx->s, &f), EB_STORE_CONFLICT);

	/* take by state: once */
	assert_int_equal(eb_store_flow_take(fx->s, EB_STORE_FLOW_BY_STATE,
	                                    "st1", T0 + 2, &out),
	                 EB_STORE_OK);
	assert_string_equal(out.id, "flow1");
	assert_int_equal(out.kind, EB_STORE_FLOW_OAUTH2_AUTHORIZE);
	eb_store_flow_finish(&out);
	assert_int_equal(eb_store_flow_take(fx->s, EB_STORE_FLOW_BY_ID, "flow1",
	                                    T0 + 2, &out),
	                 EB_STORE_NOT_FOUND);
	assert_null(out.id);

	/* expired: refused, and gone */
	mk_flow(&f, "flow3", NULL, T0 + 10);
	assert_int_equal(eb_store_flow_put(fx->s, &f), EB_STORE_OK);
	assert_int_equal(eb_store_flow_get(fx->s, EB_STORE_FLOW_BY_ID, "flow3",
	                                   T0 + 10, &out),
	                 EB_STORE_EXPIRED);
	assert_int_equal(eb_store_flow_take(fx->s, EB_STORE_FLOW_BY_ID, "flow3",
	                                    T0 + 11, &out),
	                 EB_STORE_EXPIRED);
	assert_null(out.id);
	assert_int_equal(eb_store_flow_take(fx->s, EB_STORE_FLOW_BY_ID, "flow3",
	                                    T0 + 11, &out),
	                 EB_STORE_NOT_FOUND);

	/* sweep drops expired flows only */
	mk_flow(&f, "old", NULL, T0 + 5);
	assert_int_equal(eb_store_flow_put(fx->s, &f), EB_STORE_OK);
	mk_flow(&f, "young", NULL, T0 + 500);
	assert_int_equal(eb_store_flow_put(fx->s, &f), EB_STORE_OK);
	assert_int_equal(eb_store_sweep(fx->s, T0 + 100, &removed), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(
	    eb_store_flow_get(fx->s, EB_STORE_FLOW_BY_ID, "old", T0, &out),
	    EB_STORE_NOT_FOUND);
	assert_int_equal(eb_store_flow_get(fx->s, EB_STORE_FLOW_BY_ID, "young",
	                                   T0 + 100, &out),
	                 EB_STORE_OK);
	eb_store_flow_finish(&out);
}

#define NTHREADS 8

struct race {
	struct eb_store *s;
	pthread_barrier_t *bar;
	const char *id;
	int rc;
};

static void *
take_thread(void *p)
{
	struct race *r = p;
	struct eb_store_flow out;

	pthread_barrier_wait(r->bar);
	r->rc = eb_store_flow_take(r->s, EB_STORE_FLOW_BY_ID, r->id, T0, &out);
	eb_store_flow_finish(&out);
	return NULL;
}

static void
test_flow_concurrent_take(void **state)
{
	struct fx *fx = *state;
	struct race r[NTHREADS];
	pthread_t th[NTHREADS];
	pthread_barrier_t bar;
	struct eb_store_flow f;
	char id[32];
	int round, i, wins;

	for (round = 0; round < 10; round++) {
		snprintf(id, sizeof(id), "race-%d", round);
		mk_flow(&f, id, NULL, T0 + 600);
		assert_int_equal(eb_store_flow_put(fx->s, &f), EB_STORE_OK);
		pthread_barrier_init(&bar, NULL, NTHREADS);
		for (i = 0; i < NTHREADS; i++) {
			r[i] = (struct race){fx->s, &bar, id, 99};
			assert_int_equal(
			    pthread_create(&th[i], NULL, take_thread, &r[i]),
			    0);
		}
		wins = 0;
		for (i = 0; i < NTHREADS; i++) {
			pthread_join(th[i], NULL);
			if (r[i].rc == EB_STORE_OK)
				wins++;
			else
				assert_int_equal(r[i].rc, EB_STORE_NOT_FOUND);
		}
		pthread_barrier_destroy(&bar);
		assert_int_equal(wins, 1);
	}
}

/* ---- codes -------------------------------------------------------------*/

#define REDIR "apple-remotemanagement-user-login:/oauth2/redirection"

static void
mk_code(struct eb_store_code *c, const char *hash, const char *grant)
{
	memset(c, 0, sizeof(*c));
	c->hash = (char *)hash;
	c->tenant = "acme";
	c->grant_id = (char *)grant;
	c->client_id = "apple-device";
	c->redirect_uri = REDIR;
	c->scope = "mdm";
	c->created = T0;
	c->expires = T0 + 60;
}

static void
test_code_replay(void **state)
{
	struct fx *fx = *state;
	struct eb_store_code c, out;
	struct eb_store_token t;

	mk_grant(fx->s, "g1", "acme");
	mk_code(&c, H("1"), "g1");
	assert_int_equal(eb_store_code_put(fx->s, &c), EB_STORE_OK);
	assert_int_equal(eb_store_code_put(fx->s, &c), EB_STORE_CONFLICT);
	mk_code(&c, H("2"), "no-such-grant");
	assert_int_equal(eb_store_code_put(fx->s, &c), EB_STORE_NOT_FOUND);

	assert_int_equal(eb_store_code_consume(fx->s, H("1"), "apple-device",
	                                       REDIR, T0 + 5, &out),
	                 EB_STORE_OK);
	assert_string_equal(out.grant_id, "g1");
	assert_string_equal(out.scope, "mdm");
	eb_store_code_finish(&out);
	mk_token(&t, H("a"), EB_STORE_TOKEN_ACCESS, "g1");
	assert_int_equal(eb_store_token_put(fx->s, &t), EB_STORE_OK);

	/* replay: refused, and what the code gave is revoked */
	assert_int_equal(eb_store_code_consume(fx->s, H("1"), "apple-device",
	                                       REDIR, T0 + 6, &out),
	                 EB_STORE_REPLAY);
	assert_null(out.hash);
	assert_int_equal(grant_status(fx->s, "g1"), EB_STORE_GRANT_REVOKED);
	assert_int_equal(token_status(fx->s, H("a")), EB_STORE_TOKEN_REVOKED);
	assert_true(has_event(fx->s, "acme", "grant.revoked", "g1"));

	/* unknown, mismatched (used up), expired */
	assert_int_equal(eb_store_code_consume(fx->s, H("9"), "apple-device",
	                                       REDIR, T0, NULL),
	                 EB_STORE_NOT_FOUND);
	mk_grant(fx->s, "g2", "acme");
	mk_code(&c, H("3"), "g2");
	assert_int_equal(eb_store_code_put(fx->s, &c), EB_STORE_OK);
	assert_int_equal(eb_store_code_consume(fx->s, H("3"), "other-client",
	                                       REDIR, T0 + 1, NULL),
	                 EB_STORE_MISMATCH);
	assert_int_equal(eb_store_code_consume(fx->s, H("3"), "apple-device",
	                                       REDIR, T0 + 1, NULL),
	                 EB_STORE_REPLAY);
	mk_grant(fx->s, "g3", "acme");
	mk_code(&c, H("4"), "g3");
	assert_int_equal(eb_store_code_put(fx->s, &c), EB_STORE_OK);
	assert_int_equal(eb_store_code_consume(fx->s, H("4"), "apple-device",
	                                       "https://evil.example/", T0 + 1,
	                                       NULL),
	                 EB_STORE_MISMATCH);
	mk_code(&c, H("5"), "g3");
	assert_int_equal(eb_store_code_put(fx->s, &c), EB_STORE_OK);
	assert_int_equal(eb_store_code_consume(fx->s, H("5"), "apple-device",
	                                       REDIR, T0 + 60, NULL),
	                 EB_STORE_EXPIRED);
}

/* ---- refresh rotation --------------------------------------------------*/

static void
test_refresh_rotation_and_reuse(void **state)
{
	struct fx *fx = *state;
	static const uint8_t s1[] = {'S', '1', 0, 'x'}; /* R1, "sealed" */
	struct eb_store_token t, n, a, old;

	mk_grant(fx->s, "g1", "acme");
	mk_token(&t, H("0"), EB_STORE_TOKEN_REFRESH, "g1");
	t.jti = "jti-0";
	assert_int_equal(eb_store_token_put(fx->s, &t), EB_STORE_OK);
	t.hash = H("f");
	assert_int_equal(eb_store_token_put(fx->s, &t), EB_STORE_CONFLICT);

	/* R0 -> R1 (+ access token) */
	mk_token(&n, H("1"), EB_STORE_TOKEN_REFRESH, "g1");
	mk_token(&a, H("a"), EB_STORE_TOKEN_ACCESS, "g1");
	a.jti = "jti-a1";
	assert_int_equal(eb_store_token_rotate_refresh(fx->s, H("0"), &n, s1,
	                                               sizeof(s1), &a, T0 + 100,
	                                               30, &old),
	                 EB_STORE_OK);
	assert_null(old.successor_sealed);
	assert_string_equal(old.hash, H("0"));
	assert_string_equal(old.grant_id, "g1");
	eb_store_token_finish(&old);
	assert_int_equal(eb_store_token_get(fx->s, H("0"), &t), EB_STORE_OK);
	assert_int_equal(t.status, EB_STORE_TOKEN_ROTATED);
	assert_int_equal(t.rotated_at, T0 + 100);
	assert_string_equal(t.replaced_by, H("1"));
	eb_store_token_finish(&t);
	assert_int_equal(eb_store_token_get(fx->s, H("1"), &t), EB_STORE_OK);
	assert_int_equal(t.status, EB_STORE_TOKEN_ACTIVE);
	assert_string_equal(t.parent_hash, H("0"));
	eb_store_token_finish(&t);
	assert_int_equal(token_status(fx->s, H("a")), EB_STORE_TOKEN_ACTIVE);

	/* R0 again within grace while R1 is unused (lost response): the
	 * same R1 comes back (its sealed value), nothing new is stored but
	 * the access token, R1 stays the one live branch */
	mk_token(&n, H("2"), EB_STORE_TOKEN_REFRESH, "g1");
	mk_token(&a, H("b"), EB_STORE_TOKEN_ACCESS, "g1");
	a.jti = "jti-b";
	assert_int_equal(eb_store_token_rotate_refresh(fx->s, H("0"), &n, NULL,
	                                               0, &a, T0 + 110, 30,
	                                               &old),
	                 EB_STORE_RETRY);
	assert_int_equal(old.successor_sealed_len, sizeof(s1));
	assert_memory_equal(old.successor_sealed, s1, sizeof(s1));
	assert_string_equal(old.replaced_by, H("1"));
	eb_store_token_finish(&old);
	assert_int_equal(eb_store_token_get(fx->s, H("2"), &t),
	                 EB_STORE_NOT_FOUND);
	assert_int_equal(token_status(fx->s, H("1")), EB_STORE_TOKEN_ACTIVE);
	assert_int_equal(token_status(fx->s, H("b")), EB_STORE_TOKEN_ACTIVE);
	assert_int_equal(grant_status(fx->s, "g1"), EB_STORE_GRANT_ACTIVE);

	/* R1 -> R3: R1 is used now */
	mk_token(&n, H("3"), EB_STORE_TOKEN_REFRESH, "g1");
	assert_int_equal(eb_store_token_rotate_refresh(fx->s, H("1"), &n, NULL,
	                                               0, NULL, T0 + 120, 30,
	                                               NULL),
	                 EB_STORE_OK);
	/* R0 again, still within its own window but its successor R1 is
	 * used: reuse, the grant is revoked */
	mk_token(&n, H("4"), EB_STORE_TOKEN_REFRESH, "g1");
	assert_int_equal(eb_store_token_rotate_refresh(fx->s, H("0"), &n, NULL,
	                                               0, NULL, T0 + 125, 30,
	                                               &old),
	                 EB_STORE_REUSE);
	assert_string_equal(old.grant_id, "g1");
	eb_store_token_finish(&old);
	assert_int_equal(grant_status(fx->s, "g1"), EB_STORE_GRANT_REVOKED);
	assert_int_equal(token_status(fx->s, H("3")), EB_STORE_TOKEN_REVOKED);
	assert_int_equal(token_status(fx->s, H("a")), EB_STORE_TOKEN_REVOKED);
	assert_int_equal(eb_store_token_get(fx->s, H("4"), &t),
	                 EB_STORE_NOT_FOUND);
	assert_true(has_event(fx->s, "acme", "grant.revoked", "g1"));
	/* the live R3 is now useless too */
	assert_int_equal(eb_store_token_rotate_refresh(fx->s, H("3"), &n, NULL,
	                                               0, NULL, T0 + 201, 30,
	                                               NULL),
	                 EB_STORE_REVOKED);
}

static void
test_refresh_edge_cases(void **state)
{
	struct fx *fx = *state;
	struct eb_store_token t, n;

	mk_grant(fx->s, "g1", "acme");
	mk_grant(fx->s, "g2", "acme");
	mk_token(&t, H("0"), EB_STORE_TOKEN_REFRESH, "g1");
	assert_int_equal(eb_store_token_put(fx->s, &t), EB_STORE_OK);
	mk_token(&t, H("5"), EB_STORE_TOKEN_ACCESS, "g1");
	assert_int_equal(eb_store_token_put(fx->s, &t), EB_STORE_OK);
	mk_token(&t, H("6"), EB_STORE_TOKEN_REFRESH, "nope");
	assert_int_equal(eb_store_token_put(fx->s, &t), EB_STORE_NOT_FOUND);

	/* an immediate rotation reused right away (successor used) */
	mk_token(&n, H("1"), EB_STORE_TOKEN_REFRESH, "g1");
	assert_int_equal(eb_store_token_rotate_refresh(fx->s, H("9"), &n, NULL,
	                                               0, NULL, T0, 30, NULL),
	                 EB_STORE_NOT_FOUND);
	/* not a refresh token */
	assert_int_equal(eb_store_token_rotate_refresh(fx->s, H("5"), &n, NULL,
	                                               0, NULL, T0, 30, NULL),
	                 EB_STORE_NOT_FOUND);
	/* successor for another grant */
	n.grant_id = "g2";
	assert_int_equal(eb_store_token_rotate_refresh(fx->s, H("0"), &n, NULL,
	                                               0, NULL, T0, 30, NULL),
	                 EB_STORE_CONFLICT);
	n.grant_id = "g1";
	/* expired */
	assert_int_equal(eb_store_token_rotate_refresh(fx->s, H("0"), &n, NULL,
	                                               0, NULL, T0 + 86400, 30,
	                                               NULL),
	                 EB_STORE_EXPIRED);
	assert_int_equal(token_status(fx->s, H("0")), EB_STORE_TOKEN_ACTIVE);
	/* a revoked grant refuses refresh without touching the token */
	assert_int_equal(eb_store_grant_set_status(fx->s, "g1",
	                                           EB_STORE_GRANT_REVOKED,
	                                           "admin", T0 + 1),
	                 EB_STORE_OK);
	assert_int_equal(eb_store_token_rotate_refresh(fx->s, H("0"), &n, NULL,
	                                               0, NULL, T0 + 2, 30,
	                                               NULL),
	                 EB_STORE_REVOKED);
	/* RFC 7009 revoke */
	mk_token(&t, H("7"), EB_STORE_TOKEN_WEB, "g2");
	t.expires = 0; /* never */
	assert_int_equal(eb_store_token_put(fx->s, &t), EB_STORE_OK);
	assert_int_equal(eb_store_token_revoke(fx->s, H("7"), T0), 0);
	assert_int_equal(token_status(fx->s, H("7")), EB_STORE_TOKEN_REVOKED);
	assert_int_equal(eb_store_token_revoke(fx->s, H("8"), T0),
	                 EB_STORE_NOT_FOUND);
}

static void
test_sweep(void **state)
{
	struct fx *fx = *state;
	struct eb_store_token t;
	struct eb_store_code c;
	size_t removed;

	mk_grant(fx->s, "g1", "acme");
	mk_token(&t, H("1"), EB_STORE_TOKEN_REFRESH, "g1"); /* T0 + 1 day */
	assert_int_equal(eb_store_token_put(fx->s, &t), 0);
	mk_token(&t, H("2"), EB_STORE_TOKEN_WEB, "g1");
	t.expires = 0; /* never expires, never swept */
	assert_int_equal(eb_store_token_put(fx->s, &t), 0);
	mk_code(&c, H("3"), "g1"); /* expires T0 + 60 */
	assert_int_equal(eb_store_code_put(fx->s, &c), 0);
	assert_int_equal(eb_store_code_consume(fx->s, H("3"), "apple-device",
	                                       REDIR, T0 + 1, NULL),
	                 0);

	/* used codes are kept a while after expiry, to detect replays */
	assert_int_equal(eb_store_sweep(fx->s, T0 + 3600, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(eb_store_code_consume(fx->s, H("3"), "apple-device",
	                                       REDIR, T0 + 3600, NULL),
	                 EB_STORE_REPLAY);
	/* expired tokens too, for reuse detection */
	assert_int_equal(eb_store_sweep(fx->s, T0 + 86400 + 3600, &removed), 0);
	assert_int_equal(removed, 1); /* the code */
	/* still there (and revoked with its grant by the replay above) */
	assert_int_equal(token_status(fx->s, H("1")), EB_STORE_TOKEN_REVOKED);
	assert_int_equal(eb_store_sweep(fx->s, T0 + 3 * 86400, &removed), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(eb_store_token_get(fx->s, H("1"), &t),
	                 EB_STORE_NOT_FOUND);
	assert_int_equal(token_status(fx->s, H("2")), EB_STORE_TOKEN_REVOKED);
}

/* ---- grants ------------------------------------------------------------*/

static void
test_grant_lifecycle(void **state)
{
	struct fx *fx = *state;
	struct eb_store_grant_filter flt = {.status = -1};
	struct eb_store_grant_list l;
	struct eb_store_upstream u;
	struct eb_store_grant g;
	struct eb_store_token t;
	static const uint8_t rt2[] = {0xde, 0xad};

	mk_grant(fx->s, "g1", "acme");
	mk_grant(fx->s, "g2", "acme");
	mk_grant(fx->s, "h1", "other");
	assert_int_equal(eb_store_grant_get(fx->s, "g1", &g), EB_STORE_OK);
	assert_string_equal(g.managed_apple_id, "alice@appleid.contoso.com");
	assert_string_equal(g.idp_oid, "oid-1");
	assert_string_equal(g.enrollment_mode, "BYOD");
	assert_int_equal(g.upstream_refresh_token_len, 5);
	assert_int_equal(g.upstream_refresh_token[4], 4);
	assert_null(g.binding_value);
	eb_store_grant_finish(&g);
	assert_int_equal(eb_store_grant_get(fx->s, "zz", &g),
	                 EB_STORE_NOT_FOUND);
	assert_true(has_event(fx->s, "acme", "grant.created", "g1"));
	{
		struct eb_store_grant dup = {.id = "g1",
		                             .tenant = "acme",
		                             .managed_apple_id = "x@y",
		                             .enrollment_mode = "ADDE"};
		assert_int_equal(eb_store_grant_create(fx->s, &dup),
		                 EB_STORE_CONFLICT);
	}

	/* list by tenant and status */
	flt.tenant = "acme";
	assert_int_equal(eb_store_grant_list(fx->s, &flt, &l), 0);
	assert_int_equal(l.n, 2);
	eb_store_grant_list_finish(&l);
	flt.tenant = NULL;
	flt.limit = 1;
	assert_int_equal(eb_store_grant_list(fx->s, &flt, &l), 0);
	assert_int_equal(l.n, 1);
	eb_store_grant_list_finish(&l);

	/* binding at first check-in */
	assert_int_equal(
	    eb_store_grant_bind(fx->s, "g1", "EnrollmentID", "E-1", T0 + 5),
	    EB_STORE_OK);
	assert_int_equal(
	    eb_store_grant_bind(fx->s, "g1", "EnrollmentID", "E-1", T0 + 6),
	    EB_STORE_OK);
	assert_int_equal(
	    eb_store_grant_bind(fx->s, "g1", "EnrollmentID", "E-2", T0 + 6),
	    EB_STORE_CONFLICT);
	assert_int_equal(eb_store_grant_bind(fx->s, "zz", "UDID", "U", T0),
	                 EB_STORE_NOT_FOUND);
	assert_true(has_event(fx->s, "acme", "grant.bound", "g1"));

	/* list by binding value: exactly as bound, in its tenant */
	memset(&flt, 0, sizeof(flt));
	flt.status = -1;
	flt.tenant = "acme";
	flt.binding_value = "E-1";
	assert_int_equal(eb_store_grant_list(fx->s, &flt, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].id, "g1");
	assert_string_equal(l.v[0].binding_kind, "EnrollmentID");
	eb_store_grant_list_finish(&l);
	flt.binding_value = "E-2";
	assert_int_equal(eb_store_grant_list(fx->s, &flt, &l), 0);
	assert_int_equal(l.n, 0);
	eb_store_grant_list_finish(&l);
	flt.binding_value = "E-1";
	flt.tenant = "other";
	assert_int_equal(eb_store_grant_list(fx->s, &flt, &l), 0);
	assert_int_equal(l.n, 0);
	eb_store_grant_list_finish(&l);
	memset(&flt, 0, sizeof(flt));
	flt.status = -1;

	/* renewal bookkeeping: due list with a lease */
	assert_int_equal(
	    eb_store_grant_list_due(fx->s, "acme", T0 + 100, 0, 10, &l), 0);
	assert_int_equal(l.n, 0);
	eb_store_grant_list_finish(&l);
	assert_int_equal(
	    eb_store_grant_list_due(fx->s, "acme", T0 + 3600, 300, 10, &l), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].upstream_next_at, T0 + 3900);
	eb_store_grant_list_finish(&l);
	assert_int_equal(
	    eb_store_grant_list_due(fx->s, "acme", T0 + 3600, 300, 10, &l), 0);
	assert_int_equal(l.n, 0); /* claimed by the first worker */
	eb_store_grant_list_finish(&l);
	u = (struct eb_store_upstream){.renewed_at = T0 + 3601,
	                               .next_at = T0 + 7200,
	                               .refresh_token = rt2,
	                               .refresh_token_len = sizeof(rt2)};
	assert_int_equal(
	    eb_store_grant_set_upstream(fx->s, "g1", &u, T0 + 3601), 0);
	u = (struct eb_store_upstream){.next_at = T0 + 3700,
	                               .failing_since = T0 + 3602};
	assert_int_equal(
	    eb_store_grant_set_upstream(fx->s, "g2", &u, T0 + 3602), 0);
	assert_int_equal(eb_store_grant_set_upstream(fx->s, "zz", &u, T0),
	                 EB_STORE_NOT_FOUND);
	assert_int_equal(eb_store_grant_get(fx->s, "g1", &g), EB_STORE_OK);
	assert_int_equal(g.upstream_renewed_at, T0 + 3601);
	assert_int_equal(g.upstream_next_at, T0 + 7200);
	assert_int_equal(g.upstream_failing_since, 0);
	assert_int_equal(g.upstream_refresh_token_len, 2);
	assert_int_equal(g.upstream_refresh_token[0], 0xde);
	eb_store_grant_finish(&g);
	assert_int_equal(eb_store_grant_get(fx->s, "g2", &g), EB_STORE_OK);
	assert_int_equal(g.upstream_renewed_at, 0); /* unchanged */
	assert_int_equal(g.upstream_failing_since, T0 + 3602);
	assert_int_equal(g.upstream_refresh_token_len, 5); /* unchanged */
	eb_store_grant_finish(&g);

	/* re-authentication: g2 supersedes g1 and inherits its binding */
	mk_token(&t, H("1"), EB_STORE_TOKEN_WEB, "g1");
	assert_int_equal(eb_store_token_put(fx->s, &t), EB_STORE_OK);
	assert_int_equal(eb_store_grant_supersede(fx->s, "g1", "h1", T0 + 10),
	                 EB_STORE_CONFLICT); /* another tenant */
	assert_int_equal(eb_store_grant_supersede(fx->s, "g1", "g2", T0 + 10),
	                 EB_STORE_OK);
	assert_int_equal(eb_store_grant_get(fx->s, "g1", &g), EB_STORE_OK);
	assert_int_equal(g.status, EB_STORE_GRANT_SUPERSEDED);
	assert_string_equal(g.superseded_by, "g2");
	assert_null(g.upstream_refresh_token);
	eb_store_grant_finish(&g);
	assert_int_equal(token_status(fx->s, H("1")), EB_STORE_TOKEN_REVOKED);
	assert_int_equal(eb_store_grant_get(fx->s, "g2", &g), EB_STORE_OK);
	assert_string_equal(g.binding_kind, "EnrollmentID");
	assert_string_equal(g.binding_value, "E-1");
	eb_store_grant_finish(&g);
	assert_true(has_event(fx->s, "acme", "grant.superseded", "g1"));

	/* revoke with a reason: tokens revoked, secret erased, audited */
	mk_token(&t, H("2"), EB_STORE_TOKEN_REFRESH, "g2");
	assert_int_equal(eb_store_token_put(fx->s, &t), EB_STORE_OK);
	assert_int_equal(eb_store_grant_set_status(fx->s, "g2",
	                                           EB_STORE_GRANT_REVOKED,
	                                           "admin \"bob\"", T0 + 20),
	                 EB_STORE_OK);
	assert_int_equal(eb_store_grant_get(fx->s, "g2", &g), EB_STORE_OK);
	assert_int_equal(g.status, EB_STORE_GRANT_REVOKED);
	assert_string_equal(g.revoke_reason, "admin \"bob\"");
	assert_int_equal(g.revoked_at, T0 + 20);
	assert_null(g.upstream_refresh_token);
	eb_store_grant_finish(&g);
	assert_int_equal(token_status(fx->s, H("2")), EB_STORE_TOKEN_REVOKED);
	assert_true(has_event(fx->s, "acme", "grant.revoked", "g2"));
	/* same status again: fine; back to active or bound: never */
	assert_int_equal(eb_store_grant_set_status(fx->s, "g2",
	                                           EB_STORE_GRANT_REVOKED,
	                                           "again", T0 + 21),
	                 EB_STORE_OK);
	assert_int_equal(eb_store_grant_set_status(
	                     fx->s, "g2", EB_STORE_GRANT_ACTIVE, NULL, T0 + 21),
	                 EB_STORE_CONFLICT);
	assert_int_equal(eb_store_grant_set_status(fx->s, "g2",
	                                           EB_STORE_GRANT_EXPIRED, NULL,
	                                           T0 + 21),
	                 EB_STORE_CONFLICT);
	assert_int_equal(eb_store_grant_bind(fx->s, "g2", "UDID", "U", T0),
	                 EB_STORE_REVOKED);
	assert_int_equal(eb_store_grant_set_status(
	                     fx->s, "zz", EB_STORE_GRANT_REVOKED, NULL, T0),
	                 EB_STORE_NOT_FOUND);
	/* revoked grants are not due for renewal */
	assert_int_equal(
	    eb_store_grant_list_due(fx->s, NULL, T0 + 99999, 0, 0, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].id, "h1");
	eb_store_grant_list_finish(&l);
	flt = (struct eb_store_grant_filter){.tenant = "acme",
	                                     .status = EB_STORE_GRANT_REVOKED};
	assert_int_equal(eb_store_grant_list(fx->s, &flt, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].id, "g2");
	eb_store_grant_list_finish(&l);
}

/* ---- enrollment binding (issue 11) -------------------------------------*/

/* An active BYOD grant of the person subject, bound when value is set. */
static int
mk_person_grant(struct eb_store *s, const char *id, const char *tenant,
                const char *subject, const char *value)
{
	struct eb_store_grant g = {
	    .id = (char *)id,
	    .tenant = (char *)tenant,
	    .status = EB_STORE_GRANT_ACTIVE,
	    .auth_method = "apple-as-web",
	    .managed_apple_id = "someone@appleid.contoso.com",
	    .idp_issuer = "https://idp.example",
	    .idp_subject = (char *)subject,
	    .enrollment_mode = "BYOD",
	    .binding_kind = value ? "EnrollmentID" : NULL,
	    .binding_value = (char *)value,
	    .bound_at = value ? T0 : 0,
	    .created = T0,
	    .updated = T0,
	};

	return eb_store_grant_create(s, &g);
}

static char *
binding_of(struct eb_store *s, const char *id)
{
	struct eb_store_grant g;
	char *v;

	assert_int_equal(eb_store_grant_get(s, id, &g), EB_STORE_OK);
	v = g.binding_value ? eb_strdup(g.binding_value) : NULL;
	eb_store_grant_finish(&g);
	return v;
}

static void
test_binding_one_active(void **state)
{
	struct fx *fx = *state;
	struct eb_store_grant g;
	struct eb_store_token t;
	char *v;

	assert_int_equal(
	    mk_person_grant(fx->s, "a1", "acme", "sub-alice", NULL),
	    EB_STORE_OK);
	assert_int_equal(
	    mk_person_grant(fx->s, "m1", "acme", "sub-mallory", NULL),
	    EB_STORE_OK);
	mk_token(&t, H("a1"), EB_STORE_TOKEN_WEB, "a1");
	assert_int_equal(eb_store_token_put(fx->s, &t), EB_STORE_OK);
	assert_int_equal(
	    eb_store_grant_bind(fx->s, "a1", "EnrollmentID", "E-1", T0 + 1),
	    EB_STORE_OK);

	/* another person cannot take a bound enrollment; nothing changes */
	assert_int_equal(
	    eb_store_grant_bind(fx->s, "m1", "EnrollmentID", "E-1", T0 + 2),
	    EB_STORE_TAKEN);
	assert_null(binding_of(fx->s, "m1"));
	assert_int_equal(grant_status(fx->s, "a1"), EB_STORE_GRANT_ACTIVE);
	assert_int_equal(token_status(fx->s, H("a1")), EB_STORE_TOKEN_ACTIVE);

	/* the store itself refuses a second active holder */
	assert_int_equal(
	    mk_person_grant(fx->s, "x1", "acme", "sub-mallory", "E-1"),
	    EB_STORE_CONFLICT);
	/* nor under another ASCII case (an MDM may fold it) */
	assert_int_equal(
	    mk_person_grant(fx->s, "x2", "acme", "sub-mallory", "e-1"),
	    EB_STORE_CONFLICT);
	assert_int_equal(
	    eb_store_grant_bind(fx->s, "m1", "EnrollmentID", "e-1", T0 + 2),
	    EB_STORE_TAKEN);
	/* the same value in another tenant, or of another kind, is another
	 * enrollment */
	assert_int_equal(
	    mk_person_grant(fx->s, "o1", "other", "sub-mallory", "E-1"),
	    EB_STORE_OK);
	assert_int_equal(
	    eb_store_grant_bind(fx->s, "m1", "UDID", "E-1", T0 + 2),
	    EB_STORE_OK);

	/* the same person again (a re-enrollment): the old grant is
	 * superseded in the same transaction */
	assert_int_equal(
	    mk_person_grant(fx->s, "a2", "acme", "sub-alice", NULL),
	    EB_STORE_OK);
	assert_int_equal(
	    eb_store_grant_bind(fx->s, "a2", "EnrollmentID", "E-1", T0 + 3),
	    EB_STORE_OK);
	assert_int_equal(eb_store_grant_get(fx->s, "a1", &g), EB_STORE_OK);
	assert_int_equal(g.status, EB_STORE_GRANT_SUPERSEDED);
	assert_string_equal(g.superseded_by, "a2");
	eb_store_grant_finish(&g);
	assert_int_equal(token_status(fx->s, H("a1")), EB_STORE_TOKEN_REVOKED);
	assert_true(has_event(fx->s, "acme", "grant.superseded", "a1"));
	assert_non_null(v = binding_of(fx->s, "a2"));
	assert_string_equal(v, "E-1");
	eb_free(v);

	/* a grant of a person without a subject is nobody's: never the same
	 * person as another */
	assert_int_equal(mk_person_grant(fx->s, "n1", "acme", NULL, NULL),
	                 EB_STORE_OK);
	assert_int_equal(mk_person_grant(fx->s, "n2", "acme", NULL, NULL),
	                 EB_STORE_OK);
	assert_int_equal(
	    eb_store_grant_bind(fx->s, "n1", "EnrollmentID", "E-9", T0 + 4),
	    EB_STORE_OK);
	assert_int_equal(
	    eb_store_grant_bind(fx->s, "n2", "EnrollmentID", "E-9", T0 + 4),
	    EB_STORE_TAKEN);

	/* an ended grant holds nothing: its enrollment may be bound again,
	 * and a supersede does not hand it to a third grant */
	assert_int_equal(eb_store_grant_set_status(fx->s, "a2",
	                                           EB_STORE_GRANT_REVOKED,
	                                           "test", T0 + 5),
	                 EB_STORE_OK);
	assert_int_equal(
	    eb_store_grant_bind(fx->s, "m1", "EnrollmentID", "E-1", T0 + 6),
	    EB_STORE_CONFLICT); /* m1 is bound to UDID E-1 already */
	assert_int_equal(
	    mk_person_grant(fx->s, "m2", "acme", "sub-mallory", NULL),
	    EB_STORE_OK);
	assert_int_equal(
	    eb_store_grant_bind(fx->s, "m2", "EnrollmentID", "E-1", T0 + 6),
	    EB_STORE_OK);
	assert_int_equal(
	    mk_person_grant(fx->s, "a3", "acme", "sub-alice", NULL),
	    EB_STORE_OK);
	assert_int_equal(eb_store_grant_supersede(fx->s, "a2", "a3", T0 + 7),
	                 EB_STORE_OK);
	assert_null(binding_of(fx->s, "a3"));
	assert_non_null(v = binding_of(fx->s, "m2"));
	eb_free(v);
	assert_int_equal(grant_status(fx->s, "m2"), EB_STORE_GRANT_ACTIVE);
}

/* A database where two active grants hold one enrollment (made before
 * the store enforced it) is repaired by the migration: both revoked. */
static void
test_binding_migration(void **state)
{
	struct fx *fx = *state;
	struct eb_store_token t;
	struct eb_store *s;
	char path[1200], err[512];

	fx_target(fx, "dup.db", path, sizeof(path));
	eb_store_test_schema_limit(3); /* all but the binding index */
	s = eb_store_open(ops, path, err, sizeof(err));
	eb_store_test_schema_limit(-1);
	assert_non_null(s);
	assert_int_equal(mk_person_grant(s, "a1", "acme", "sub-alice", "E-1"),
	                 EB_STORE_OK);
	assert_int_equal(mk_person_grant(s, "m1", "acme", "sub-mallory", "E-1"),
	                 EB_STORE_OK);
	assert_int_equal(mk_person_grant(s, "b1", "acme", "sub-bob", "E-2"),
	                 EB_STORE_OK);
	mk_token(&t, H("m1"), EB_STORE_TOKEN_WEB, "m1");
	assert_int_equal(eb_store_token_put(s, &t), EB_STORE_OK);
	eb_store_close(s);

	s = eb_store_open(ops, path, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(grant_status(s, "a1"), EB_STORE_GRANT_REVOKED);
	assert_int_equal(grant_status(s, "m1"), EB_STORE_GRANT_REVOKED);
	assert_int_equal(grant_status(s, "b1"), EB_STORE_GRANT_ACTIVE);
	assert_int_equal(token_status(s, H("m1")), EB_STORE_TOKEN_REVOKED);
	assert_int_equal(mk_person_grant(s, "x1", "acme", "sub-x", "E-2"),
	                 EB_STORE_CONFLICT);
	eb_store_close(s);
}

/* The version of the migration named name (the merge of branches may
 * renumber it). */
static int
migration_version(const char *name)
{
	const struct eb_store_migration *m;
	size_t n, i;

	m = eb_store_migrations(&n);
	for (i = 0; i < n; i++)
		if (strcmp(m[i].name, name) == 0)
			return m[i].version;
	fail_msg("no migration \"%s\"", name);
	return -1;
}

/* Grants without an upstream refresh token, left unscheduled by older
 * binaries, become due so the renewer re-verifies them; nothing else. */
static void
test_unverified_migration(void **state)
{
	struct fx *fx = *state;
	struct eb_store_grant g;
	struct eb_store *s;
	char path[1200], err[512];
	int v = migration_version(
	    "grants without an upstream refresh token re-verified");

	fx_target(fx, "unverified.db", path, sizeof(path));
	eb_store_test_schema_limit(v - 1);
	s = eb_store_open(ops, path, err, sizeof(err));
	eb_store_test_schema_limit(-1);
	assert_non_null(s);
	assert_int_equal(mk_person_grant(s, "n1", "acme", "sub-n", NULL),
	                 EB_STORE_OK);
	mk_grant(s, "r1", "acme"); /* with a refresh token, scheduled */
	assert_int_equal(mk_person_grant(s, "x1", "acme", "sub-x", NULL),
	                 EB_STORE_OK);
	assert_int_equal(eb_store_grant_set_status(
	                     s, "x1", EB_STORE_GRANT_REVOKED, "gone", T0),
	                 EB_STORE_OK);
	eb_store_close(s);

	assert_non_null(s = eb_store_open(ops, path, err, sizeof(err)));
	memset(&g, 0, sizeof(g));
	assert_int_equal(eb_store_grant_get(s, "n1", &g), EB_STORE_OK);
	assert_int_equal(g.upstream_next_at, T0); /* its created_at */
	eb_store_grant_finish(&g);
	assert_int_equal(eb_store_grant_get(s, "r1", &g), EB_STORE_OK);
	assert_int_equal(g.upstream_next_at, T0 + 3600);
	eb_store_grant_finish(&g);
	assert_int_equal(eb_store_grant_get(s, "x1", &g), EB_STORE_OK);
	assert_int_equal(g.upstream_next_at, 0);
	eb_store_grant_finish(&g);
	eb_store_close(s);
}

/* ---- audit, keys, mappings ---------------------------------------------*/

static void
test_audit(void **state)
{
	struct fx *fx = *state;
	struct eb_store_audit ev = {.ts = T0,
	                            .tenant = "acme",
	                            .event = "access.deny",
	                            .subject = "bob@contoso.com",
	                            .detail = "{\"reason\":\"group\"}"};
	struct eb_store_audit_list l;
	char subj[32];
	int i;

	for (i = 0; i < 5; i++) {
		snprintf(subj, sizeof(subj), "user%d", i);
		ev.subject = subj;
		ev.ts = T0 + i;
		assert_int_equal(eb_store_audit_add(fx->s, &ev), 0);
	}
	ev.tenant = "other";
	assert_int_equal(eb_store_audit_add(fx->s, &ev), 0);
	assert_int_equal(eb_store_audit_list(fx->s, "acme", 3, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[0].subject, "user4"); /* newest first */
	assert_int_equal(l.v[0].ts, T0 + 4);
	assert_string_equal(l.v[2].subject, "user2");
	assert_string_equal(l.v[0].detail, "{\"reason\":\"group\"}");
	assert_true(l.v[0].id > l.v[1].id);
	eb_store_audit_list_finish(&l);
	assert_int_equal(eb_store_audit_list(fx->s, "other", 10, &l), 0);
	assert_int_equal(l.n, 1);
	eb_store_audit_list_finish(&l);
	assert_int_equal(eb_store_audit_list(fx->s, "none", 10, &l), 0);
	assert_int_equal(l.n, 0);
	eb_store_audit_list_finish(&l);
}

/* The audit query's filters (tenant, event or event prefix, since, after
 * an id), both orders and the retention's prune. */
static void
test_audit_query(void **state)
{
	struct fx *fx = *state;
	static const char *const events[] = {"grant.revoked",
	                                     "admin.grants.list",
	                                     "grant.retired", "access.deny"};
	struct eb_store_audit ev = {.tenant = "acme", .subject = "s"};
	struct eb_store_audit_filter f = {0};
	struct eb_store_audit_list l;
	size_t removed = 0;
	int i;

	for (i = 0; i < 8; i++) {
		ev.ts = T0 + i * 100;
		ev.event = (char *)events[i % 4];
		ev.tenant = i == 7 ? "other" : "acme";
		assert_int_equal(eb_store_audit_add(fx->s, &ev), 0);
	}
	f.tenant = "acme";
	assert_int_equal(eb_store_audit_query(fx->s, &f, &l), 0);
	assert_int_equal(l.n, 7);
	assert_true(l.v[0].id > l.v[6].id); /* newest first */
	eb_store_audit_list_finish(&l);
	f.event = "grant.";
	assert_int_equal(eb_store_audit_query(fx->s, &f, &l), 0);
	assert_int_equal(l.n, 4); /* prefix: revoked and retired, twice */
	eb_store_audit_list_finish(&l);
	f.event = "grant.revoked";
	f.since = T0 + 100;
	assert_int_equal(eb_store_audit_query(fx->s, &f, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].ts, T0 + 400);
	eb_store_audit_list_finish(&l);
	f.event = "grant"; /* no dot: a name, not a prefix */
	f.since = 0;
	assert_int_equal(eb_store_audit_query(fx->s, &f, &l), 0);
	assert_int_equal(l.n, 0);
	eb_store_audit_list_finish(&l);
	/* following: oldest first, after an id, every tenant */
	memset(&f, 0, sizeof(f));
	f.limit = 3;
	assert_int_equal(eb_store_audit_query(fx->s, &f, &l), 0);
	assert_int_equal(l.n, 3);
	f.after_id = l.v[2].id; /* the sixth newest: two follow */
	eb_store_audit_list_finish(&l);
	f.limit = 0;
	f.after_id -= 3;
	assert_int_equal(eb_store_audit_query(fx->s, &f, &l), 0);
	assert_int_equal(l.n, 5);
	assert_true(l.v[0].id > l.v[1].id); /* still newest first */
	eb_store_audit_list_finish(&l);
	f.oldest_first = 1;
	assert_int_equal(eb_store_audit_query(fx->s, &f, &l), 0);
	assert_int_equal(l.n, 5);
	assert_true(l.v[0].id < l.v[1].id);
	assert_string_equal(l.v[4].tenant, "other");
	eb_store_audit_list_finish(&l);
	f.after_id = 0; /* from the first event on */
	f.limit = 2;
	assert_int_equal(eb_store_audit_query(fx->s, &f, &l), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].ts, T0);
	eb_store_audit_list_finish(&l);
	/* retention: before T0 + 300 takes the first three */
	assert_int_equal(eb_store_audit_prune(fx->s, T0 + 300, &removed), 0);
	assert_int_equal(removed, 3);
	memset(&f, 0, sizeof(f));
	assert_int_equal(eb_store_audit_query(fx->s, &f, &l), 0);
	assert_int_equal(l.n, 5);
	assert_int_equal(l.v[4].ts, T0 + 300);
	eb_store_audit_list_finish(&l);
	assert_int_equal(eb_store_audit_prune(fx->s, T0, &removed), 0);
	assert_int_equal(removed, 0);
}

static void
test_keys(void **state)
{
	struct fx *fx = *state;
	static uint8_t priv[] = {1, 0, 2};
	struct eb_store_key k = {.kid = "k1",
	                         .alg = "ES256",
	                         .created = T0,
	                         .public_jwk = "{\"kty\":\"EC\"}",
	                         .private_key = priv,
	                         .private_key_len = sizeof(priv)};
	struct eb_store_key_list l;

	assert_int_equal(eb_store_key_put(fx->s, &k), 0);
	assert_int_equal(eb_store_key_put(fx->s, &k), EB_STORE_CONFLICT);
	k.kid = "k2";
	k.created = T0 + 10;
	k.tenant = "acme";
	assert_int_equal(eb_store_key_put(fx->s, &k), 0);
	k.kid = "k3";
	k.tenant = "other";
	assert_int_equal(eb_store_key_put(fx->s, &k), 0);
	assert_int_equal(eb_store_key_list(fx->s, "acme", &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].kid, "k2");
	assert_string_equal(l.v[1].kid, "k1");
	assert_int_equal(l.v[1].private_key_len, 3);
	assert_int_equal(l.v[1].private_key[2], 2);
	eb_store_key_list_finish(&l);
	assert_int_equal(eb_store_key_retire(fx->s, "k1", T0 + 10, T0 + 99), 0);
	assert_int_equal(eb_store_key_retire(fx->s, "kx", T0, T0),
	                 EB_STORE_NOT_FOUND);
	assert_int_equal(eb_store_key_list(fx->s, NULL, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[2].kid, "k1");
	assert_int_equal(l.v[2].retired_at, T0 + 10);
	assert_int_equal(l.v[2].not_after, T0 + 99);
	eb_store_key_list_finish(&l);
}

static void
test_mapping(void **state)
{
	struct fx *fx = *state;
	struct eb_store_mapping m = {.tenant = "acme",
	                             .subject = "tid-1/oid-1",
	                             .managed_apple_id =
	                                 "a@appleid.contoso.com",
	                             .created = T0};
	struct eb_store_mapping out;

	assert_int_equal(
	    eb_store_mapping_get(fx->s, "acme", "tid-1/oid-1", &out),
	    EB_STORE_NOT_FOUND);
	assert_int_equal(eb_store_mapping_put(fx->s, &m), 0);
	m.managed_apple_id = "b@appleid.contoso.com";
	m.updated = T0 + 5;
	m.note = "renamed";
	assert_int_equal(eb_store_mapping_put(fx->s, &m), 0);
	assert_int_equal(
	    eb_store_mapping_get(fx->s, "acme", "tid-1/oid-1", &out), 0);
	assert_string_equal(out.managed_apple_id, "b@appleid.contoso.com");
	assert_string_equal(out.note, "renamed");
	assert_int_equal(out.created, T0);
	assert_int_equal(out.updated, T0 + 5);
	eb_store_mapping_finish(&out);
	assert_int_equal(
	    eb_store_mapping_get(fx->s, "other", "tid-1/oid-1", &out),
	    EB_STORE_NOT_FOUND);
	assert_int_equal(eb_store_mapping_delete(fx->s, "acme", "tid-1/oid-1"),
	                 0);
	assert_int_equal(eb_store_mapping_delete(fx->s, "acme", "tid-1/oid-1"),
	                 EB_STORE_NOT_FOUND);
}

static void
test_mapping_list(void **state)
{
	struct fx *fx = *state;
	struct eb_store_mapping m = {.tenant = "acme",
	                             .subject = "s2",
	                             .managed_apple_id = "b@appleid.acme.test",
	                             .note = "n",
	                             .created = T0};
	struct eb_store_mapping_list l;

	assert_int_equal(eb_store_mapping_list(fx->s, "acme", &l), 0);
	assert_int_equal(l.n, 0);
	eb_store_mapping_list_finish(&l);
	assert_int_equal(eb_store_mapping_put(fx->s, &m), 0);
	m.subject = "s1";
	m.managed_apple_id = "a@appleid.acme.test";
	m.note = NULL;
	assert_int_equal(eb_store_mapping_put(fx->s, &m), 0);
	m.tenant = "other";
	assert_int_equal(eb_store_mapping_put(fx->s, &m), 0);
	/* one tenant's rows, by subject */
	assert_int_equal(eb_store_mapping_list(fx->s, "acme", &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].subject, "s1");
	assert_string_equal(l.v[0].managed_apple_id, "a@appleid.acme.test");
	assert_null(l.v[0].note);
	assert_string_equal(l.v[1].subject, "s2");
	assert_string_equal(l.v[1].tenant, "acme");
	assert_string_equal(l.v[1].note, "n");
	assert_int_equal(l.v[1].created, T0);
	eb_store_mapping_list_finish(&l);
}

/* ---- threads -----------------------------------------------------------*/

struct worker {
	struct eb_store *s;
	int n;
	int errors;
};

static void *
worker_thread(void *p)
{
	struct worker *w = p;
	struct eb_store_audit ev = {.tenant = "acme", .event = "t"};
	struct eb_store_grant g;
	char id[32];
	int i;

	for (i = 0; i < 25; i++) {
		snprintf(id, sizeof(id), "w%d-%d", w->n, i);
		ev.ts = T0 + i;
		ev.subject = id;
		if (eb_store_audit_add(w->s, &ev) != 0)
			w->errors++;
		{
			struct eb_store_grant ng = {.id = id,
			                            .tenant = "acme",
			                            .managed_apple_id = "a@b.c",
			                            .enrollment_mode = "ADDE",
			                            .created = T0 + i};
			if (eb_store_grant_create(w->s, &ng) != 0)
				w->errors++;
		}
		if (eb_store_grant_get(w->s, id, &g) != 0 ||
		    strcmp(g.id, id) != 0)
			w->errors++;
		eb_store_grant_finish(&g);
		if (eb_store_ping(w->s) != 0)
			w->errors++;
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct fx *fx = *state;
	struct eb_store_grant_filter flt = {.tenant = "acme", .status = -1};
	struct eb_store_grant_list l;
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	int i;

	for (i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){fx->s, i, 0};
		assert_int_equal(
		    pthread_create(&th[i], NULL, worker_thread, &w[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].errors, 0);
	}
	assert_int_equal(eb_store_grant_list(fx->s, &flt, &l), 0);
	assert_int_equal(l.n, NTHREADS * 25);
	eb_store_grant_list_finish(&l);
	/* more threads, each with its own connection closed at exit (ASan) */
	for (i = 0; i < 2; i++) {
		w[i] = (struct worker){fx->s, 100 + i, 0};
		assert_int_equal(
		    pthread_create(&th[i], NULL, worker_thread, &w[i]), 0);
	}
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
}

/* ---- races between handles (SCALEOUT 4.2) ------------------------------*/

/*
 * Each racer has its own handle on the store: on PostgreSQL its own
 * sessions, the shape of two replicas; on SQLite its own connections.
 * They start together at a barrier.
 */
#define RACERS 8

struct racer {
	struct eb_store *s;
	pthread_barrier_t *bar;
	int n;
	int rc;
	void *arg;
	size_t got; /* claims: how many this racer got */
};

typedef void race_fn(struct racer *);

struct race_th {
	struct racer *r;
	race_fn *fn;
};

static void *
race_thread(void *p)
{
	struct race_th *t = p;

	pthread_barrier_wait(t->r->bar);
	t->fn(t->r);
	return NULL;
}

/* Run fn in k racers on their own handles, then close those. */
static void
race(struct fx *fx, int k, race_fn *fn, void *arg, struct racer *r)
{
	struct race_th t[RACERS];
	pthread_t th[RACERS];
	pthread_barrier_t bar;
	char err[512];
	int i;

	assert_true(k <= RACERS);
	for (i = 0; i < k; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].s = eb_store_open(ops, fx->path, err, sizeof(err));
		if (r[i].s == NULL)
			fail_msg("open: %s", err);
		r[i].bar = &bar;
		r[i].n = i;
		r[i].arg = arg;
		r[i].rc = 99;
		t[i] = (struct race_th){&r[i], fn};
	}
	pthread_barrier_init(&bar, NULL, (unsigned)k);
	for (i = 0; i < k; i++)
		assert_int_equal(
		    pthread_create(&th[i], NULL, race_thread, &t[i]), 0);
	for (i = 0; i < k; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	for (i = 0; i < k; i++)
		eb_store_close(r[i].s);
}

/* How many racers answered rc. */
static int
count_rc(const struct racer *r, int k, int rc)
{
	int i, n = 0;

	for (i = 0; i < k; i++)
		n += r[i].rc == rc;
	return n;
}

static void
consume_racer(struct racer *r)
{
	r->rc = eb_store_code_consume(r->s, H("c"), "apple-device", REDIR,
	                              T0 + 1, NULL);
}

/*
 * Catches the naive port of code_consume (SELECT used_at, then UPDATE,
 * under READ COMMITTED): several racers see it unused and all redeem.
 */
static void
test_race_code_consume(void **state)
{
	struct fx *fx = *state;
	struct racer r[RACERS];
	struct eb_store_code c;

	mk_grant(fx->s, "g1", "acme");
	mk_code(&c, H("c"), "g1");
	assert_int_equal(eb_store_code_put(fx->s, &c), EB_STORE_OK);
	race(fx, RACERS, consume_racer, NULL, r);
	assert_int_equal(count_rc(r, RACERS, EB_STORE_OK), 1);
	assert_int_equal(count_rc(r, RACERS, EB_STORE_REPLAY), RACERS - 1);
	assert_int_equal(grant_status(fx->s, "g1"), EB_STORE_GRANT_REVOKED);
}

static void
rotate_racer(struct racer *r)
{
	static const uint8_t sealed[] = {7, 7, 7};
	struct eb_store_token next, old;
	char hash[EB_STORE_HASH_HEXLEN + 1];

	snprintf(hash, sizeof(hash), "%063d", 100 + r->n);
	mk_token(&next, hash, EB_STORE_TOKEN_REFRESH, "g1");
	r->rc = eb_store_token_rotate_refresh(r->s, H("r"), &next, sealed,
	                                      sizeof(sealed), NULL, T0 + 1, 30,
	                                      &old);
	eb_store_token_finish(&old);
}

/*
 * Catches the naive port of rotation (SELECT status, then UPDATE and
 * INSERT): two racers both see the token active and the grant forks into
 * two live refresh tokens.
 */
static void
test_race_refresh_rotation(void **state)
{
	struct fx *fx = *state;
	struct racer r[RACERS];
	struct eb_store_token t;
	char hash[EB_STORE_HASH_HEXLEN + 1];
	int i, active = 0;

	mk_grant(fx->s, "g1", "acme");
	mk_token(&t, H("r"), EB_STORE_TOKEN_REFRESH, "g1");
	assert_int_equal(eb_store_token_put(fx->s, &t), EB_STORE_OK);
	race(fx, RACERS, rotate_racer, NULL, r);
	assert_int_equal(count_rc(r, RACERS, EB_STORE_OK), 1);
	/* the others retried within the grace window: the same successor */
	assert_int_equal(count_rc(r, RACERS, EB_STORE_RETRY), RACERS - 1);
	for (i = 0; i < RACERS; i++) {
		snprintf(hash, sizeof(hash), "%063d", 100 + i);
		if (eb_store_token_get(fx->s, hash, &t) == EB_STORE_OK &&
		    t.status == EB_STORE_TOKEN_ACTIVE)
			active++;
		eb_store_token_finish(&t);
	}
	assert_int_equal(active, 1);
	assert_int_equal(token_status(fx->s, H("r")), EB_STORE_TOKEN_ROTATED);
	assert_int_equal(grant_status(fx->s, "g1"), EB_STORE_GRANT_ACTIVE);
}

static void
bind_racer(struct racer *r)
{
	char value[32];

	snprintf(value, sizeof(value), "E-%d", r->n);
	r->rc = eb_store_grant_bind(r->s, "g1", "EnrollmentID", value, T0 + 1);
}

/*
 * Catches the naive port of bind (read the binding, then set it): two
 * racers both see the grant unbound and the last writer's enrollment
 * wins while an earlier one was told OK.
 */
static void
test_race_bind(void **state)
{
	struct fx *fx = *state;
	struct racer r[RACERS];
	struct eb_store_grant g;
	char want[32];
	int i, winner = -1;

	mk_grant(fx->s, "g1", "acme");
	race(fx, RACERS, bind_racer, NULL, r);
	assert_int_equal(count_rc(r, RACERS, EB_STORE_OK), 1);
	assert_int_equal(count_rc(r, RACERS, EB_STORE_CONFLICT), RACERS - 1);
	for (i = 0; i < RACERS; i++)
		if (r[i].rc == EB_STORE_OK)
			winner = i;
	snprintf(want, sizeof(want), "E-%d", winner);
	assert_int_equal(eb_store_grant_get(fx->s, "g1", &g), EB_STORE_OK);
	assert_string_equal(g.binding_value, want);
	eb_store_grant_finish(&g);
}

static void
supersede_racer(struct racer *r)
{
	const char *const *ids = r->arg;

	if (r->n == 0)
		r->rc = eb_store_grant_supersede(r->s, ids[0], ids[1], T0 + 1);
	else
		r->rc = eb_store_grant_set_status(
		    r->s, ids[0], EB_STORE_GRANT_REVOKED, "admin", T0 + 1);
}

/*
 * Catches a supersede that reads its two grants without a lock order (a
 * deadlock error surfacing, or a lost update leaving A active): A ends
 * revoked or superseded, and neither racer sees a storage error.
 */
static void
test_race_supersede_revoke(void **state)
{
	struct fx *fx = *state;
	struct racer r[2];
	char a[16], b[16];
	const char *ids[2] = {a, b};
	int round, st;

	for (round = 0; round < 10; round++) {
		/* alternate which of the two sorts first */
		snprintf(a, sizeof(a), "%c%d", round % 2 ? 'z' : 'a', round);
		snprintf(b, sizeof(b), "%c%d", round % 2 ? 'a' : 'z', round);
		assert_int_equal(
		    mk_person_grant(fx->s, a, "acme", "sub-alice", NULL),
		    EB_STORE_OK);
		assert_int_equal(
		    mk_person_grant(fx->s, b, "acme", "sub-alice", NULL),
		    EB_STORE_OK);
		race(fx, 2, supersede_racer, (void *)ids, r);
		assert_int_not_equal(r[0].rc, EB_STORE_ERROR);
		assert_int_not_equal(r[1].rc, EB_STORE_ERROR);
		st = grant_status(fx->s, a);
		assert_true(st == EB_STORE_GRANT_REVOKED ||
		            st == EB_STORE_GRANT_SUPERSEDED);
	}
}

struct mig_count {
	pthread_mutex_t mu;
	int applied;
};

static void
count_applied(void *arg, int version, const char *name)
{
	struct mig_count *mc = arg;

	pthread_mutex_lock(&mc->mu);
	mc->applied++;
	pthread_mutex_unlock(&mc->mu);
}

struct mig_race {
	const char *target;
	struct mig_count *mc;
};

static void
migrate_racer(struct racer *r)
{
	struct mig_race *m = r->arg;
	struct eb_store *s;
	char err[512];
	int64_t v = 0;

	s = eb_store_open_flags(ops, m->target, 0, count_applied, m->mc, err,
	                        sizeof(err));
	r->rc = s != NULL && eb_store_schema_version(s, &v) == EB_STORE_OK
	            ? (int)v
	            : -1;
	eb_store_close(s);
}

/*
 * Catches migrations serialised only by CREATE TABLE IF NOT EXISTS (on
 * PostgreSQL concurrent openers of an empty database fail on a duplicate
 * key, or on the table's row type, SQLSTATE 42710, and a replica exits):
 * all open, and each migration is applied exactly once. Several rounds,
 * each on an empty target: one round rarely hits the window.
 */
#define MIG_ROUNDS 6

static void
test_race_migrations(void **state)
{
	struct fx *fx = *state;
	struct mig_count mc = {PTHREAD_MUTEX_INITIALIZER, 0};
	struct mig_race m;
	struct racer r[4];
	char target[1200], name[32];
	int64_t latest;
	int i, round;

	assert_int_equal(eb_store_schema_version(fx->s, &latest), 0);
	for (round = 0; round < MIG_ROUNDS; round++) {
		snprintf(name, sizeof(name), "race%d.db", round);
		fx_target(fx, name, target, sizeof(target));
		m.target = target;
		m.mc = &mc;
		mc.applied = 0;
		race(fx, 4, migrate_racer, &m, r);
		for (i = 0; i < 4; i++)
			assert_int_equal(r[i].rc, (int)latest);
		assert_int_equal(mc.applied, (int)latest);
	}
}

/* ---- renewal claims and named leases (N-replica ops) -------------------*/

/* Skip where this backend has no N-replica ops yet (SQLite, for now). */
static void
need_replica_ops(void)
{
	if (ops->grant_claim_due == NULL || ops->lock_try == NULL)
		skip();
}

static void
mk_due_grant(struct eb_store *s, const char *id, const char *tenant,
             int64_t due)
{
	struct eb_store_grant g = {
	    .id = (char *)id,
	    .tenant = (char *)tenant,
	    .status = EB_STORE_GRANT_ACTIVE,
	    .managed_apple_id = "a@b.c",
	    .enrollment_mode = "ADDE",
	    .created = T0,
	    .updated = T0,
	    .upstream_next_at = due,
	};

	assert_int_equal(eb_store_grant_create(s, &g), EB_STORE_OK);
}

/*
 * Concurrent claimers over many due grants (each claimed once, the work
 * shared) are test_store_replicas.c's test_claim_each_once: one version,
 * on every backend, one handle per claimer as replicas have.
 */

/*
 * Catches a write-back without a fence: a worker whose lease ran out
 * (paused, slow IdP) overwrites the result of the worker that reclaimed
 * the grant.
 */
static void
test_lease_fencing(void **state)
{
	struct fx *fx = *state;
	static const uint8_t late[] = {6, 6}, fresh[] = {9, 9, 9};
	struct eb_store_grant_list l1, l2;
	struct eb_store_upstream u;
	struct eb_store_grant g;
	int64_t n = 0;

	need_replica_ops();
	mk_due_grant(fx->s, "g1", "acme", T0);
	assert_int_equal(
	    eb_store_grant_claim_due(fx->s, "acme", T0, 100, 8, 0, "one", &l1),
	    EB_STORE_OK);
	assert_int_equal(l1.n, 1);
	assert_string_equal(l1.v[0].lease_owner, "one");
	assert_non_null(l1.v[0].lease_token);
	/* within the lease nobody else gets it */
	assert_int_equal(eb_store_grant_claim_due(fx->s, "acme", T0 + 50, 100,
	                                          8, 0, "two", &l2),
	                 EB_STORE_OK);
	assert_int_equal(l2.n, 0);
	eb_store_grant_list_finish(&l2);
	/* the lease ran out: owner two reclaims it with a new fence */
	assert_int_equal(eb_store_grant_claim_due(fx->s, "acme", T0 + 200, 100,
	                                          8, 0, "two", &l2),
	                 EB_STORE_OK);
	assert_int_equal(l2.n, 1);
	assert_string_not_equal(l2.v[0].lease_token, l1.v[0].lease_token);
	/* owner one's late result is dropped */
	memset(&u, 0, sizeof(u));
	u.renewed_at = T0 + 210;
	u.next_at = T0 + 3600;
	u.refresh_token = late;
	u.refresh_token_len = sizeof(late);
	u.lease_token = l1.v[0].lease_token;
	assert_int_equal(eb_store_grant_set_upstream(fx->s, "g1", &u, T0 + 210),
	                 EB_STORE_LOST);
	assert_int_equal(eb_store_grant_get(fx->s, "g1", &g), EB_STORE_OK);
	assert_string_equal(g.lease_token, l2.v[0].lease_token);
	assert_string_equal(g.lease_owner, "two");
	assert_null(g.upstream_refresh_token);
	eb_store_grant_finish(&g);
	assert_int_equal(eb_store_grant_count(fx->s, "acme", -1, 0, &n), 0);
	assert_int_equal(n, 1);
	/* owner two's is kept, and its lease ends */
	u.refresh_token = fresh;
	u.refresh_token_len = sizeof(fresh);
	u.lease_token = l2.v[0].lease_token;
	assert_int_equal(eb_store_grant_set_upstream(fx->s, "g1", &u, T0 + 220),
	                 EB_STORE_OK);
	assert_int_equal(eb_store_grant_get(fx->s, "g1", &g), EB_STORE_OK);
	assert_null(g.lease_token);
	assert_int_equal(g.lease_until, 0);
	assert_int_equal(g.upstream_refresh_token_len, sizeof(fresh));
	assert_int_equal(g.upstream_next_at, T0 + 3600);
	eb_store_grant_finish(&g);
	/* a release of a claim no longer held changes nothing */
	assert_int_equal(
	    eb_store_grant_release(fx->s, "g1", l1.v[0].lease_token, T0 + 230),
	    EB_STORE_OK);
	assert_int_equal(eb_store_grant_get(fx->s, "g1", &g), EB_STORE_OK);
	assert_int_equal(g.upstream_next_at, T0 + 3600);
	eb_store_grant_finish(&g);
	eb_store_grant_list_finish(&l1);
	eb_store_grant_list_finish(&l2);
}

static void
cap_racer(struct racer *r)
{
	struct eb_store_grant_list l;
	char owner[16];

	snprintf(owner, sizeof(owner), "w%d", r->n);
	r->rc =
	    eb_store_grant_claim_due(r->s, "acme", T0, 600, 8, 3, owner, &l);
	r->got = l.n;
	eb_store_grant_list_finish(&l);
}

/*
 * Catches a per-process cap (each claimer counting only its own leases):
 * four claimers with a fleet-wide cap of 3 take 3 grants in all.
 */
static void
test_race_claim_cap(void **state)
{
	struct fx *fx = *state;
	struct eb_store_grant_list l;
	struct racer r[4];
	char id[16];
	size_t total = 0;
	int i;

	need_replica_ops();
	for (i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "g%d", i);
		mk_due_grant(fx->s, id, "acme", T0 - 10);
	}
	race(fx, 4, cap_racer, NULL, r);
	for (i = 0; i < 4; i++) {
		assert_int_equal(r[i].rc, EB_STORE_OK);
		total += r[i].got;
	}
	assert_int_equal(total, 3);
	/* still at the cap while those leases live; free once they end */
	assert_int_equal(eb_store_grant_claim_due(fx->s, "acme", T0 + 1, 600, 8,
	                                          3, "late", &l),
	                 EB_STORE_OK);
	assert_int_equal(l.n, 0);
	eb_store_grant_list_finish(&l);
	assert_int_equal(eb_store_grant_claim_due(fx->s, "acme", T0 + 601, 600,
	                                          8, 3, "late", &l),
	                 EB_STORE_OK);
	assert_int_equal(l.n, 3);
	eb_store_grant_list_finish(&l);
}

static void
lock_racer(struct racer *r)
{
	char owner[16];

	snprintf(owner, sizeof(owner), "w%d", r->n);
	r->rc = eb_store_lock_try(r->s, "sweep", owner, 60, T0);
}

/*
 * Catches a lease taken by read-then-write (two holders of one singleton
 * job): of four takers one holds it; it can be re-taken after expiry.
 */
static void
test_race_lock_try(void **state)
{
	struct fx *fx = *state;
	struct racer r[4];
	char owner[16];
	int i, holder = -1;

	need_replica_ops();
	race(fx, 4, lock_racer, NULL, r);
	assert_int_equal(count_rc(r, 4, EB_STORE_OK), 1);
	assert_int_equal(count_rc(r, 4, EB_STORE_CONFLICT), 3);
	for (i = 0; i < 4; i++)
		if (r[i].rc == EB_STORE_OK)
			holder = i;
	snprintf(owner, sizeof(owner), "w%d", holder);
	/* the holder extends it; another owner waits for its end */
	assert_int_equal(eb_store_lock_try(fx->s, "sweep", owner, 60, T0 + 30),
	                 EB_STORE_OK);
	assert_int_equal(
	    eb_store_lock_try(fx->s, "sweep", "other", 60, T0 + 60),
	    EB_STORE_CONFLICT);
	assert_int_equal(
	    eb_store_lock_try(fx->s, "sweep", "other", 60, T0 + 91),
	    EB_STORE_OK);
	/* released by its holder only */
	assert_int_equal(eb_store_lock_release(fx->s, "sweep", owner),
	                 EB_STORE_OK);
	assert_int_equal(eb_store_lock_try(fx->s, "sweep", owner, 60, T0 + 92),
	                 EB_STORE_CONFLICT);
	assert_int_equal(eb_store_lock_release(fx->s, "sweep", "other"),
	                 EB_STORE_OK);
	assert_int_equal(eb_store_lock_try(fx->s, "sweep", owner, 60, T0 + 93),
	                 EB_STORE_OK);
}

static void
key_racer(struct racer *r)
{
	struct eb_store_key k = {
	    .alg = "ES256", .created = T0, .public_jwk = "{\"kty\":\"EC\"}"};
	char kid[16];

	snprintf(kid, sizeof(kid), "boot-%d", r->n);
	k.kid = kid;
	r->rc = eb_store_key_put(r->s, &k);
}

/* How many keys of tenant (NULL: shared) are current (not retired). */
static int
current_keys(struct eb_store *s, const char *tenant)
{
	struct eb_store_key_list l;
	size_t i;
	int n = 0;

	assert_int_equal(eb_store_key_list(s, tenant, &l), EB_STORE_OK);
	for (i = 0; i < l.n; i++)
		n += l.v[i].retired_at == 0;
	eb_store_key_list_finish(&l);
	return n;
}

/*
 * Catches "list keys, none: add one" done by each of several replicas
 * starting together (SCALEOUT 2.1 #10): one bootstrap key is current, the
 * others are refused; a rotation then retires it and adds the next one in
 * one step.
 */
static void
test_race_key_bootstrap(void **state)
{
	struct fx *fx = *state;
	struct eb_store_key k = {.kid = "next",
	                         .alg = "ES256",
	                         .created = T0 + 10,
	                         .activates_at = T0 + 600,
	                         .public_jwk = "{\"kty\":\"EC\"}"};
	struct eb_store_key_list l;
	struct racer r[4];

	if (ops->key_rotate == NULL)
		skip();
	race(fx, 4, key_racer, NULL, r);
	assert_int_equal(count_rc(r, 4, EB_STORE_OK), 1);
	assert_int_equal(count_rc(r, 4, EB_STORE_CONFLICT), 3);
	assert_int_equal(current_keys(fx->s, NULL), 1);
	assert_int_equal(eb_store_key_rotate(fx->s, &k, T0 + 600, T0 + 9000),
	                 EB_STORE_OK);
	assert_int_equal(current_keys(fx->s, NULL), 1);
	assert_int_equal(eb_store_key_list(fx->s, NULL, &l), EB_STORE_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].kid, "next");
	assert_int_equal(l.v[0].activates_at, T0 + 600);
	assert_int_equal(l.v[1].retired_at, T0 + 600);
	assert_int_equal(l.v[1].not_after, T0 + 9000);
	eb_store_key_list_finish(&l);
	/* a second current key by key_put is refused */
	k.kid = "extra";
	assert_int_equal(eb_store_key_put(fx->s, &k), EB_STORE_CONFLICT);
}

/* The generation row of the store under test (PostgreSQL). */
static int64_t
generation(struct fx *fx)
{
	int64_t n = -1;

	assert_int_equal(eb_store_pg_test_generation(fx->path, &n), 0);
	return n;
}

/* Whether op changed the generation row: 1 bumped, 0 not. */
#define BUMPED(fx, op)                                                         \
	({                                                                     \
		int64_t g0_ = generation(fx);                                  \
		op;                                                            \
		generation(fx) != g0_;                                         \
	})

/*
 * grants retire (issue 13): an active grant ends revoked and marked
 * retired, its tokens revoked, audited once; a revoked grant can be marked
 * later; a superseded one cannot. On PostgreSQL, an invalidation.
 */
static void
test_grant_retire(void **state)
{
	struct fx *fx = *state;
	struct eb_store_grant g;
	struct eb_store_token t;
	int bumped = 1;

	mk_grant(fx->s, "g1", "acme");
	mk_grant(fx->s, "g2", "acme");
	mk_grant(fx->s, "g3", "acme");
	mk_token(&t, H("1"), EB_STORE_TOKEN_ACCESS, "g1");
	assert_int_equal(eb_store_token_put(fx->s, &t), EB_STORE_OK);
	assert_int_equal(eb_store_grant_get(fx->s, "g1", &g), EB_STORE_OK);
	assert_int_equal(g.retired_at, 0);
	eb_store_grant_finish(&g);
	if (on_pg)
		bumped = BUMPED(
		    fx, assert_int_equal(
		            eb_store_grant_retire(fx->s, "g1", "lost", T0 + 10),
		            EB_STORE_OK));
	else
		assert_int_equal(
		    eb_store_grant_retire(fx->s, "g1", "lost", T0 + 10),
		    EB_STORE_OK);
	assert_true(bumped);
	assert_int_equal(eb_store_grant_get(fx->s, "g1", &g), EB_STORE_OK);
	assert_int_equal(g.status, EB_STORE_GRANT_REVOKED);
	assert_int_equal(g.retired_at, T0 + 10);
	assert_int_equal(g.revoked_at, T0 + 10);
	assert_string_equal(g.revoke_reason, "lost");
	assert_null(g.upstream_refresh_token);
	eb_store_grant_finish(&g);
	assert_int_equal(token_status(fx->s, H("1")), EB_STORE_TOKEN_REVOKED);
	assert_true(has_event(fx->s, "acme", "grant.revoked", "g1"));
	assert_true(has_event(fx->s, "acme", "grant.retired", "g1"));
	/* again: nothing changes */
	assert_int_equal(eb_store_grant_retire(fx->s, "g1", "x", T0 + 20),
	                 EB_STORE_OK);
	assert_int_equal(eb_store_grant_get(fx->s, "g1", &g), EB_STORE_OK);
	assert_int_equal(g.retired_at, T0 + 10);
	eb_store_grant_finish(&g);
	/* a revoked grant is marked later; revoke leaves retired_at 0 */
	assert_int_equal(eb_store_grant_set_status(fx->s, "g2",
	                                           EB_STORE_GRANT_REVOKED,
	                                           "admin", T0 + 30),
	                 EB_STORE_OK);
	assert_int_equal(eb_store_grant_get(fx->s, "g2", &g), EB_STORE_OK);
	assert_int_equal(g.retired_at, 0);
	eb_store_grant_finish(&g);
	assert_int_equal(eb_store_grant_retire(fx->s, "g2", NULL, T0 + 40),
	                 EB_STORE_OK);
	assert_int_equal(eb_store_grant_get(fx->s, "g2", &g), EB_STORE_OK);
	assert_int_equal(g.retired_at, T0 + 40);
	assert_int_equal(g.revoked_at, T0 + 30);
	assert_string_equal(g.revoke_reason, "admin");
	eb_store_grant_finish(&g);
	/* the retired grants of a tenant, and only those */
	{
		struct eb_store_grant_filter f = {
		    .tenant = "acme", .status = -1, .retired_only = 1};
		struct eb_store_grant_list l;

		assert_int_equal(eb_store_grant_list(fx->s, &f, &l),
		                 EB_STORE_OK);
		assert_int_equal(l.n, 2);
		assert_true(l.v[0].retired_at != 0 && l.v[1].retired_at != 0);
		eb_store_grant_list_finish(&l);
		f.tenant = "other";
		assert_int_equal(eb_store_grant_list(fx->s, &f, &l),
		                 EB_STORE_OK);
		assert_int_equal(l.n, 0);
		eb_store_grant_list_finish(&l);
		f.tenant = "acme";
		f.retired_only = 0;
		assert_int_equal(eb_store_grant_list(fx->s, &f, &l),
		                 EB_STORE_OK);
		assert_int_equal(l.n, 3);
		eb_store_grant_list_finish(&l);
	}
	/* superseded: refused, unchanged; unknown: NOT_FOUND */
	assert_int_equal(eb_store_grant_supersede(fx->s, "g3", "g1", T0 + 50),
	                 EB_STORE_CONFLICT); /* g1 is not active */
	mk_grant(fx->s, "g4", "acme");
	assert_int_equal(eb_store_grant_supersede(fx->s, "g3", "g4", T0 + 50),
	                 EB_STORE_OK);
	assert_int_equal(eb_store_grant_retire(fx->s, "g3", NULL, T0 + 60),
	                 EB_STORE_CONFLICT);
	assert_int_equal(eb_store_grant_get(fx->s, "g3", &g), EB_STORE_OK);
	assert_int_equal(g.status, EB_STORE_GRANT_SUPERSEDED);
	assert_int_equal(g.retired_at, 0);
	eb_store_grant_finish(&g);
	assert_int_equal(eb_store_grant_retire(fx->s, "zz", NULL, T0),
	                 EB_STORE_NOT_FOUND);
}

/*
 * PostgreSQL (SCALEOUT 3.6): the operations that can make a cached bearer
 * fact wrong bump the generation row in their transaction, so other
 * replicas' feeds learn of them; the hot paths (token_put, a normal
 * rotation, the renewal write-back, claims) never do.
 */
static void
test_pg_invalidations(void **state)
{
	struct fx *fx = *state;
	static const uint8_t sealed[] = {1, 2};
	struct eb_store_grant_list l;
	struct eb_store_upstream u;
	struct eb_store_token t, n, old;
	struct eb_store_code c;
	struct eb_store *q;

	if (!on_pg)
		skip();
	mk_grant(fx->s, "g1", "acme");
	mk_token(&t, H("a"), EB_STORE_TOKEN_ACCESS, "g1");
	assert_false(BUMPED(
	    fx, assert_int_equal(eb_store_token_put(fx->s, &t), EB_STORE_OK)));
	mk_token(&t, H("r"), EB_STORE_TOKEN_REFRESH, "g1");
	assert_int_equal(eb_store_token_put(fx->s, &t), EB_STORE_OK);
	mk_token(&n, H("s"), EB_STORE_TOKEN_REFRESH, "g1");
	assert_false(BUMPED(
	    fx, assert_int_equal(eb_store_token_rotate_refresh(
	                             fx->s, H("r"), &n, sealed, sizeof(sealed),
	                             NULL, T0 + 1, 30, &old),
	                         EB_STORE_OK)));
	eb_store_token_finish(&old);
	memset(&u, 0, sizeof(u));
	u.next_at = T0 + 100;
	assert_false(BUMPED(fx, assert_int_equal(eb_store_grant_set_upstream(
	                                             fx->s, "g1", &u, T0 + 2),
	                                         EB_STORE_OK)));
	assert_false(BUMPED(fx, assert_int_equal(eb_store_grant_claim_due(
	                                             fx->s, "acme", T0 + 200,
	                                             60, 8, 0, "w", &l),
	                                         EB_STORE_OK)));
	assert_int_equal(l.n, 1);
	eb_store_grant_list_finish(&l);
	/* the invalidating ones */
	assert_true(BUMPED(fx, assert_int_equal(eb_store_grant_bind(
	                                            fx->s, "g1", "EnrollmentID",
	                                            "E-1", T0 + 3),
	                                        EB_STORE_OK)));
	assert_true(BUMPED(
	    fx, assert_int_equal(eb_store_token_revoke(fx->s, H("a"), T0 + 4),
	                         EB_STORE_OK)));
	/* a refresh token presented after its window: reuse */
	assert_true(BUMPED(fx, assert_int_equal(eb_store_token_rotate_refresh(
	                                            fx->s, H("r"), &n, NULL, 0,
	                                            NULL, T0 + 99, 30, &old),
	                                        EB_STORE_REUSE)));
	eb_store_token_finish(&old);
	mk_person_grant(fx->s, "g2", "acme", "sub-alice", NULL);
	mk_person_grant(fx->s, "g3", "acme", "sub-alice", NULL);
	assert_true(BUMPED(fx, assert_int_equal(eb_store_grant_supersede(
	                                            fx->s, "g2", "g3", T0 + 5),
	                                        EB_STORE_OK)));
	assert_true(
	    BUMPED(fx, assert_int_equal(eb_store_grant_set_status(
	                                    fx->s, "g3", EB_STORE_GRANT_REVOKED,
	                                    "x", T0 + 6),
	                                EB_STORE_OK)));
	mk_person_grant(fx->s, "g4", "acme", "sub-alice", NULL);
	mk_code(&c, H("c"), "g4");
	assert_int_equal(eb_store_code_put(fx->s, &c), EB_STORE_OK);
	assert_false(
	    BUMPED(fx, assert_int_equal(
	                   eb_store_code_consume(fx->s, H("c"), "apple-device",
	                                         REDIR, T0 + 1, NULL),
	                   EB_STORE_OK)));
	assert_true(
	    BUMPED(fx, assert_int_equal(
	                   eb_store_code_consume(fx->s, H("c"), "apple-device",
	                                         REDIR, T0 + 2, NULL),
	                   EB_STORE_REPLAY)));
	assert_int_equal(grant_status(fx->s, "g4"), EB_STORE_GRANT_REVOKED);
	/* without NOTIFY (database_notify: false) the row still moves */
	assert_non_null(q = eb_store_open_flags(ops, fx->path,
	                                        EB_STORE_OPEN_NO_NOTIFY, NULL,
	                                        NULL, NULL, 0));
	mk_person_grant(q, "g5", "acme", "sub-bob", NULL);
	assert_true(BUMPED(
	    fx,
	    assert_int_equal(eb_store_grant_set_status(
	                         q, "g5", EB_STORE_GRANT_REVOKED, "x", T0 + 7),
	                     EB_STORE_OK)));
	eb_store_close(q);
}

/* PostgreSQL: an unreachable server is a clear error without the
 * password. */
static void
test_pg_unreachable(void **state)
{
	const char *dsn = "host=127.0.0.1 port=1 dbname=eb user=eb"
	                  " password=s3cr3t-pw connect_timeout=2";
	char err[512];

	(void)state;
	if (!on_pg)
		skip();
	assert_null(eb_store_open(ops, dsn, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot connect"));
	assert_non_null(strstr(err, "127.0.0.1"));
	assert_null(strstr(err, "s3cr3t-pw"));
}

/* ---- SCIM users, grants of a person ------------------------------------*/

static int
mk_scim(struct eb_store *s, const char *tenant, const char *id,
        const char *user_name, const char *external_id, int64_t created)
{
	struct eb_store_scim_user u = {.tenant = (char *)tenant,
	                               .id = (char *)id,
	                               .user_name = (char *)user_name,
	                               .external_id = (char *)external_id,
	                               .active = 1,
	                               .resource = "{\"userName\":\"x\"}",
	                               .version = 99, /* ignored */
	                               .created = created,
	                               .updated = created};

	return eb_store_scim_user_create(s, &u);
}

static size_t
scim_count(struct eb_store *s, const char *tenant, int by, const char *value)
{
	struct eb_store_scim_user_list l;
	int64_t total = -1;
	size_t n;

	assert_int_equal(
	    eb_store_scim_user_list(s, tenant, by, value, 0, 100, &l, &total),
	    EB_STORE_OK);
	assert_int_equal(total, (int64_t)l.n);
	n = l.n;
	eb_store_scim_user_list_finish(&l);
	return n;
}

/* Create, read, unique userName in any case per tenant, replace,
 * filters, pages, delete. */
static void
test_scim_users(void **state)
{
	struct fx *fx = *state;
	struct eb_store_scim_user u, r;
	struct eb_store_scim_user_list l;
	int64_t total;
	char id[8];
	int i;

	assert_int_equal(
	    mk_scim(fx->s, "acme", "u1", "Alice@Contoso.com", "oid-1", T0),
	    EB_STORE_OK);
	assert_int_equal(eb_store_scim_user_get(fx->s, "acme", "u1", &u),
	                 EB_STORE_OK);
	assert_string_equal(u.user_name, "Alice@Contoso.com");
	assert_string_equal(u.external_id, "oid-1");
	assert_string_equal(u.resource, "{\"userName\":\"x\"}");
	assert_int_equal(u.active, 1);
	assert_int_equal(u.version, 1);
	assert_int_equal(u.created, T0);
	eb_store_scim_user_finish(&u);
	/* another tenant's id space, and no other tenant sees it */
	assert_int_equal(eb_store_scim_user_get(fx->s, "other", "u1", &u),
	                 EB_STORE_NOT_FOUND);
	/* userName unique per tenant, whatever its case; id unique too */
	assert_int_equal(
	    mk_scim(fx->s, "acme", "u2", "alice@CONTOSO.com", NULL, T0),
	    EB_STORE_CONFLICT);
	assert_int_equal(
	    mk_scim(fx->s, "acme", "u1", "bob@contoso.com", NULL, T0),
	    EB_STORE_CONFLICT);
	assert_int_equal(
	    mk_scim(fx->s, "other", "u1", "alice@contoso.com", NULL, T0),
	    EB_STORE_OK);
	/* filters: userName any case, externalId exact */
	assert_int_equal(scim_count(fx->s, "acme", EB_STORE_SCIM_USER_NAME,
	                            "ALICE@contoso.COM"),
	                 1);
	assert_int_equal(
	    scim_count(fx->s, "acme", EB_STORE_SCIM_EXTERNAL_ID, "oid-1"), 1);
	assert_int_equal(
	    scim_count(fx->s, "acme", EB_STORE_SCIM_EXTERNAL_ID, "OID-1"), 0);
	assert_int_equal(scim_count(fx->s, "acme", EB_STORE_SCIM_USER_NAME,
	                            "nobody@contoso.com"),
	                 0);

	/* replace: the facts change, the version goes up */
	r = (struct eb_store_scim_user){.tenant = "acme",
	                                .id = "u1",
	                                .user_name = "alice@contoso.com",
	                                .external_id = NULL,
	                                .active = 0,
	                                .resource = "{\"active\":false}",
	                                .updated = T0 + 5};
	assert_int_equal(eb_store_scim_user_replace(fx->s, &r), EB_STORE_OK);
	assert_int_equal(eb_store_scim_user_get(fx->s, "acme", "u1", &u),
	                 EB_STORE_OK);
	assert_int_equal(u.active, 0);
	assert_null(u.external_id);
	assert_int_equal(u.version, 2);
	assert_int_equal(u.created, T0);
	assert_int_equal(u.updated, T0 + 5);
	assert_string_equal(u.resource, "{\"active\":false}");
	eb_store_scim_user_finish(&u);
	/* a read-modify-write of version 1 lost to that one: refused */
	r.version = 1;
	r.resource = "{\"lost\":true}";
	assert_int_equal(eb_store_scim_user_replace(fx->s, &r),
	                 EB_STORE_NOT_FOUND);
	r.version = 2;
	assert_int_equal(eb_store_scim_user_replace(fx->s, &r), EB_STORE_OK);
	assert_int_equal(eb_store_scim_user_get(fx->s, "acme", "u1", &u),
	                 EB_STORE_OK);
	assert_int_equal(u.version, 3);
	assert_string_equal(u.resource, "{\"lost\":true}");
	eb_store_scim_user_finish(&u);
	r.version = 0;
	r.id = "nope";
	assert_int_equal(eb_store_scim_user_replace(fx->s, &r),
	                 EB_STORE_NOT_FOUND);
	assert_int_equal(
	    mk_scim(fx->s, "acme", "u3", "carol@contoso.com", NULL, T0 + 1),
	    EB_STORE_OK);
	r.id = "u3"; /* to alice's userName: taken */
	assert_int_equal(eb_store_scim_user_replace(fx->s, &r),
	                 EB_STORE_CONFLICT);

	/* pages, oldest first */
	for (i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "p%d", i);
		char name[32];
		snprintf(name, sizeof(name), "p%d@contoso.com", i);
		assert_int_equal(
		    mk_scim(fx->s, "acme", id, name, NULL, T0 + 10 + i),
		    EB_STORE_OK);
	}
	assert_int_equal(eb_store_scim_user_list(fx->s, "acme",
	                                         EB_STORE_SCIM_ALL, NULL, 2, 2,
	                                         &l, &total),
	                 EB_STORE_OK);
	assert_int_equal(total, 6);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].id, "p0");
	assert_string_equal(l.v[1].id, "p1");
	eb_store_scim_user_list_finish(&l);
	assert_int_equal(eb_store_scim_user_list(fx->s, "acme",
	                                         EB_STORE_SCIM_ALL, NULL, 5, 0,
	                                         &l, &total),
	                 EB_STORE_OK);
	assert_int_equal(total, 6);
	assert_int_equal(l.n, 0);
	/* a filter's page past its one match */
	assert_int_equal(
	    eb_store_scim_user_list(fx->s, "acme", EB_STORE_SCIM_USER_NAME,
	                            "p1@contoso.com", 1, 10, &l, &total),
	    EB_STORE_OK);
	assert_int_equal(total, 1);
	assert_int_equal(l.n, 0);

	assert_int_equal(eb_store_scim_user_delete(fx->s, "acme", "u1"),
	                 EB_STORE_OK);
	assert_int_equal(eb_store_scim_user_delete(fx->s, "acme", "u1"),
	                 EB_STORE_NOT_FOUND);
	assert_int_equal(eb_store_scim_user_get(fx->s, "acme", "u1", &u),
	                 EB_STORE_NOT_FOUND);
	assert_int_equal(eb_store_scim_user_get(fx->s, "other", "u1", &u),
	                 EB_STORE_OK);
	eb_store_scim_user_finish(&u);
	/* the name is free again */
	assert_int_equal(
	    mk_scim(fx->s, "acme", "u4", "ALICE@contoso.com", NULL, T0),
	    EB_STORE_OK);
}

static void
mk_login_grant(struct eb_store *s, const char *id, const char *tenant,
               const char *login, const char *oid, const char *subject,
               int64_t created)
{
	struct eb_store_grant g = {
	    .id = (char *)id,
	    .tenant = (char *)tenant,
	    .status = EB_STORE_GRANT_ACTIVE,
	    .auth_method = "apple-as-web",
	    .managed_apple_id = "someone@appleid.contoso.com",
	    .idp_issuer = "https://idp.example",
	    .idp_subject = (char *)subject,
	    .idp_oid = (char *)oid,
	    .idp_login = (char *)login,
	    .enrollment_mode = "BYOD",
	    .created = created,
	    .updated = created,
	};

	assert_int_equal(eb_store_grant_create(s, &g), EB_STORE_OK);
}

/* The ids of the active grants of a person, newest first, "a,b". */
static void
person_ids(struct eb_store *s, const char *tenant, const char *login,
           const char *oid, char *out, size_t len)
{
	struct eb_store_grant_list l;
	size_t i, n = 0;

	out[0] = '\0';
	assert_int_equal(eb_store_grant_list_person(s, tenant, login, oid, &l),
	                 EB_STORE_OK);
	for (i = 0; i < l.n; i++)
		n += (size_t)snprintf(out + n, len - n, "%s%s", i ? "," : "",
		                      l.v[i].id);
	eb_store_grant_list_finish(&l);
}

/* A person's active grants by login (as stored) or by oid or subject;
 * nobody else's, no other tenant's, no ended ones. */
static void
test_grant_list_person(void **state)
{
	struct fx *fx = *state;
	struct eb_store_grant g;
	char ids[256];

	mk_login_grant(fx->s, "g1", "acme", "alice@contoso.com", "oid-1",
	               "tid:oid-1", T0);
	mk_login_grant(fx->s, "g2", "acme", "alice@contoso.com", "oid-1",
	               "tid:oid-1", T0 + 1);
	mk_login_grant(fx->s, "g3", "acme", "bob@contoso.com", "oid-2",
	               "tid:oid-2", T0 + 2);
	mk_login_grant(fx->s, "g4", "other", "alice@contoso.com", "oid-1",
	               "tid:oid-1", T0 + 3);
	mk_login_grant(fx->s, "g5", "acme", "alice@contoso.com", "oid-1",
	               "tid:oid-1", T0 + 4);
	mk_login_grant(fx->s, "g6", "acme", NULL, NULL, "okta-sub-7", T0 + 5);
	assert_int_equal(eb_store_grant_set_status(fx->s, "g5",
	                                           EB_STORE_GRANT_REVOKED,
	                                           "test", T0 + 6),
	                 EB_STORE_OK);
	assert_int_equal(eb_store_grant_get(fx->s, "g1", &g), EB_STORE_OK);
	assert_string_equal(g.idp_login, "alice@contoso.com");
	eb_store_grant_finish(&g);
	assert_int_equal(eb_store_grant_get(fx->s, "g6", &g), EB_STORE_OK);
	assert_null(g.idp_login);
	eb_store_grant_finish(&g);

	person_ids(fx->s, "acme", "alice@contoso.com", NULL, ids, sizeof(ids));
	assert_string_equal(ids, "g2,g1");
	person_ids(fx->s, "acme", NULL, "oid-1", ids, sizeof(ids));
	assert_string_equal(ids, "g2,g1");
	/* both at once: each grant once */
	person_ids(fx->s, "acme", "alice@contoso.com", "oid-1", ids,
	           sizeof(ids));
	assert_string_equal(ids, "g2,g1");
	/* the subject of a non-Entra IdP */
	person_ids(fx->s, "acme", NULL, "okta-sub-7", ids, sizeof(ids));
	assert_string_equal(ids, "g6");
	person_ids(fx->s, "acme", "bob@contoso.com", "oid-1", ids, sizeof(ids));
	assert_string_equal(ids, "g3,g2,g1");
	person_ids(fx->s, "acme", "nobody@contoso.com", "oid-9", ids,
	           sizeof(ids));
	assert_string_equal(ids, "");
	person_ids(fx->s, "acme", NULL, NULL, ids, sizeof(ids));
	assert_string_equal(ids, "");
	person_ids(fx->s, "other", "alice@contoso.com", NULL, ids, sizeof(ids));
	assert_string_equal(ids, "g4");
}

/* ---- torture -----------------------------------------------------------*/

/* A scenario that must fail cleanly wherever an allocation fails. */
static void
scenario(const char *path)
{
	struct eb_store_audit ev = {.ts = T0, .tenant = "acme", .event = "x"};
	struct eb_store_grant_filter flt = {.status = -1};
	struct eb_store_grant_list gl;
	struct eb_store_audit_list al;
	struct eb_store_token t, n, old;
	struct eb_store_flow f, out;
	struct eb_store_code c;
	struct eb_store *s;
	char err[256];
	int rc;

	err[0] = '\0';
	s = eb_store_open(ops, path, err, sizeof(err));
	if (s == NULL) {
		assert_true(err[0] != '\0');
		return;
	}
	mk_flow(&f, "f1", "st", T0 + 60);
	rc = eb_store_flow_put(s, &f);
	assert_true(rc == EB_STORE_OK || rc == EB_STORE_ERROR);
	rc = eb_store_flow_take(s, EB_STORE_FLOW_BY_STATE, "st", T0, &out);
	assert_true(rc == EB_STORE_OK || rc == EB_STORE_ERROR ||
	            rc == EB_STORE_NOT_FOUND);
	if (rc != EB_STORE_OK)
		assert_null(out.id);
	eb_store_flow_finish(&out);
	{
		struct eb_store_grant g = {.id = "g1",
		                           .tenant = "acme",
		                           .managed_apple_id = "a@b.c",
		                           .enrollment_mode = "BYOD",
		                           .created = T0};
		rc = eb_store_grant_create(s, &g);
	}
	if (rc == EB_STORE_OK) {
		mk_token(&t, H("0"), EB_STORE_TOKEN_REFRESH, "g1");
		if (eb_store_token_put(s, &t) == EB_STORE_OK) {
			mk_token(&n, H("1"), EB_STORE_TOKEN_REFRESH, "g1");
			rc = eb_store_token_rotate_refresh(
			    s, H("0"), &n, NULL, 0, NULL, T0, 30, &old);
			assert_true(rc == EB_STORE_OK || rc == EB_STORE_ERROR);
			eb_store_token_finish(&old);
		}
		mk_code(&c, H("2"), "g1");
		if (eb_store_code_put(s, &c) == EB_STORE_OK)
			(void)eb_store_code_consume(s, H("2"), "apple-device",
			                            REDIR, T0, NULL);
		(void)eb_store_grant_set_status(s, "g1", EB_STORE_GRANT_REVOKED,
		                                "x", T0);
	}
	(void)eb_store_audit_add(s, &ev);
	if (eb_store_audit_list(s, "acme", 10, &al) == EB_STORE_OK)
		eb_store_audit_list_finish(&al);
	if (eb_store_grant_list(s, &flt, &gl) == EB_STORE_OK)
		eb_store_grant_list_finish(&gl);
	eb_store_close(s);
}

static void
test_torture(void **state)
{
	struct fx *fx = *state;
	char path[1200], side[1220];
	long n, used;

	snprintf(path, sizeof(path), "%s/torture.db", fx->dir);
	for (n = 0;; n++) {
		if (on_pg) {
			/* a fresh schema each round (libpq's own
			 * allocations are not injected; ours are) */
			assert_int_equal(eb_store_pg_test_schema(pg_base, path,
			                                         sizeof(path)),
			                 0);
		} else {
			unlink(path);
			snprintf(side, sizeof(side), "%s-wal", path);
			unlink(side);
			snprintf(side, sizeof(side), "%s-shm", path);
			unlink(side);
		}
		eb_mem_fail_after(n);
		scenario(path);
		used = eb_mem_fail_after(-1);
		if (on_pg)
			eb_store_pg_test_drop(pg_base, path);
		if (used <= n)
			break; /* the injected failure was never reached */
	}
	assert_true(n > 20);
}

/*
 * import-sqlite (PostgreSQL only): an SQLite store with a grant, its
 * tokens (rows that reference it: the tables must go parents first) and
 * audit rows (an identity column beside text ones, its sequence moved past
 * the copied ids) lands whole in an empty schema; a second import is
 * refused and changes nothing.
 */
static void
test_import_sqlite(void **state)
{
	struct fx *fx = *state;
	struct eb_store_audit ev = {.ts = T0,
	                            .tenant = "acme",
	                            .event = "grant.created",
	                            .subject = "g-imp"};
	struct eb_store_audit_list l;
	struct eb_store_token t;
	struct eb_store *lite;
	char from[300], err[512];
	size_t n;
	int i;

	if (!on_pg)
		skip();
	snprintf(from, sizeof(from), "%s/import.db", fx->dir);
	lite = eb_store_open(&eb_store_sqlite_ops, from, err, sizeof(err));
	assert_non_null(lite);
	mk_grant(lite, "g-imp", "acme");
	mk_token(&t, H("a"), EB_STORE_TOKEN_ACCESS, "g-imp");
	assert_int_equal(eb_store_token_put(lite, &t), EB_STORE_OK);
	mk_token(&t, H("b"), EB_STORE_TOKEN_REFRESH, "g-imp");
	assert_int_equal(eb_store_token_put(lite, &t), EB_STORE_OK);
	for (i = 0; i < 3; i++)
		assert_int_equal(eb_store_audit_add(lite, &ev), EB_STORE_OK);
	assert_int_equal(eb_store_audit_list(lite, "acme", 100, &l), 0);
	n = l.n;
	eb_store_audit_list_finish(&l);
	assert_true(n >= 3);
	eb_store_close(lite);

	assert_int_equal(
	    eb_store_pg_import_sqlite(from, fx->path, NULL, err, sizeof(err)),
	    0);
	assert_int_equal(grant_status(fx->s, "g-imp"), EB_STORE_GRANT_ACTIVE);
	assert_int_equal(token_status(fx->s, H("b")), EB_STORE_TOKEN_ACTIVE);
	/* a new audit row continues after the imported ids */
	ev.subject = "after";
	assert_int_equal(eb_store_audit_add(fx->s, &ev), EB_STORE_OK);
	assert_int_equal(eb_store_audit_list(fx->s, "acme", 100, &l), 0);
	assert_int_equal(l.n, n + 1);
	assert_string_equal(l.v[0].subject, "after");
	assert_true(l.v[0].id > l.v[1].id);
	eb_store_audit_list_finish(&l);

	assert_int_equal(
	    eb_store_pg_import_sqlite(from, fx->path, NULL, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "already holds data"));
	assert_int_equal(eb_store_audit_list(fx->s, "acme", 100, &l), 0);
	assert_int_equal(l.n, n + 1);
	eb_store_audit_list_finish(&l);
}

/* EB_TEST_PG names a server we can make schemas on. */
static int
pg_usable(void)
{
	char target[1200];

	pg_base = getenv("EB_TEST_PG");
	if (pg_base == NULL || *pg_base == '\0' ||
	    eb_store_pg_test_schema(pg_base, target, sizeof(target)) != 0)
		return 0;
	eb_store_pg_test_drop(pg_base, target);
	return 1;
}

/* Without a usable server the PostgreSQL run skips, but never on CI. */
static int
pg_required(void)
{
	const char *ci = getenv("CI");
	int on_ci = ci != NULL && strcmp(ci, "true") == 0;

	fprintf(stderr, "%s: PostgreSQL conformance run %s: %s\n",
	        on_ci ? "FAIL" : "SKIP", on_ci ? "failed" : "skipped",
	        getenv("EB_TEST_PG") == NULL
	            ? "EB_TEST_PG is not set (contrib/pg-test.sh start)"
	            : "the server in EB_TEST_PG is not usable");
	return on_ci;
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_migrations_idempotent),
	    T(test_migration_upgrade),
	    T(test_newer_schema_refused),
	    T(test_missing_parent_dir),
	    T(test_sqlite_wal_and_mode),
	    cmocka_unit_test(test_missing_capability),
	    cmocka_unit_test(test_hash_token),
	    T(test_flow_single_use),
	    T(test_flow_concurrent_take),
	    T(test_code_replay),
	    T(test_refresh_rotation_and_reuse),
	    T(test_refresh_edge_cases),
	    T(test_sweep),
	    T(test_grant_lifecycle),
	    T(test_grant_retire),
	    T(test_binding_one_active),
	    T(test_binding_migration),
	    T(test_unverified_migration),
	    T(test_audit),
	    T(test_audit_query),
	    T(test_import_sqlite),
	    T(test_keys),
	    T(test_mapping),
	    T(test_mapping_list),
	    T(test_threads),
	    T(test_race_code_consume),
	    T(test_race_refresh_rotation),
	    T(test_race_bind),
	    T(test_race_supersede_revoke),
	    T(test_race_migrations),
	    T(test_lease_fencing),
	    T(test_race_claim_cap),
	    T(test_race_lock_try),
	    T(test_race_key_bootstrap),
	    T(test_pg_invalidations),
	    T(test_scim_users),
	    T(test_grant_list_person),
	    cmocka_unit_test(test_pg_unreachable),
	    T(test_torture),
	};
	size_t i;
	int failed = 0;

	if (getenv("EB_TEST_FILTER") != NULL) /* run some tests only */
		cmocka_set_test_filter(getenv("EB_TEST_FILTER"));
	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		if (backends[i].pg && !pg_usable()) {
			failed |= pg_required();
			continue;
		}
		ops = backends[i].ops;
		on_pg = backends[i].pg;
		failed |= _cmocka_run_group_tests(
		    backends[i].name, tests, sizeof(tests) / sizeof(tests[0]),
		    NULL, NULL);
	}
	return failed;
}
