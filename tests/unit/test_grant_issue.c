/*
 * Grant issuing (grant/issue.h) against the SQLite store, without HTTP:
 * an apple-oauth2 sign-in stores an active grant whose upstream refresh
 * token is sealed to the grant's id and a single-use code bound to client
 * and redirect URI; a re-authentication by the same account takes over
 * the grant its flow replaces (old superseded, binding inherited); by
 * another account, or naming another tenant's grant, it takes nothing.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fx_dir.h"
#include "core/config.h"
#include "core/env.h"
#include "core/mem.h"
#include "grant/issue.h"
#include "identity/identity.h"
#include "identity/mapping.h"
#include "jose/seal.h"
#include "oidc/oidc.h"
#include "store/store.h"

#define MAI  "alice@appleid.contoso.com"
#define RURI "apple-remotemanagement-user-login://oauth2"
#define UPRT "upstream-refresh-token"
#define UDID "00008103-000A1B2C3D4E5F60"

struct fx {
	char dir[256];
	char path[320];
	struct eb_env env;
	struct eb_tenant t;
	int64_t now;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	const char *base = getenv("EB_BINARY_DIR");
	uint8_t key[EB_SEAL_KEY_LEN];
	char err[512];
	size_t i;

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "%s/issue-test-XXXXXX",
	         base ? base : "/tmp");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/eb.db", fx->dir);
	fx->env.store = eb_store_open(NULL, fx->path, err, sizeof(err));
	if (fx->env.store == NULL) {
		print_error("open: %s\n", err);
		return -1;
	}
	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	if ((fx->env.seal_ring = eb_seal_ring_of(key)) == NULL)
		return -1;
	fx->t.id = "t1";
	fx->t.default_mode = EB_MODE_BYOD;
	fx->t.tokens.refresh_ttl = 3600;
	fx->t.tokens.code_ttl = 60;
	fx->t.tokens.upstream_renew_interval = 600;
	fx->now = 1700000000;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	eb_store_close(fx->env.store);
	eb_seal_ring_free(fx->env.seal_ring);
	fx_rmtree(fx->dir);
	free(fx);
	return 0;
}

/*
 * Sign in as subject/account through an apple-oauth2 flow that replaces
 * the grant `replaces` (or none), in tenant tid; the new grant's id in
 * gid (caller frees).
 */
/* Issue a grant through an apple-oauth2 flow; the code, or NULL. */
static char *
issue(struct fx *fx, const char *tid, const char *subject, const char *account,
      const char *replaces)
{
	struct eb_grant_issue_in in;
	struct eb_store_flow f;
	struct eb_identity id;
	struct eb_mapping_result map;
	struct eb_oidc_tokens tok;
	struct eb_tenant t = fx->t;
	char extra[256];

	memset(&f, 0, sizeof(f));
	memset(&id, 0, sizeof(id));
	memset(&map, 0, sizeof(map));
	memset(&tok, 0, sizeof(tok));
	t.id = (char *)tid;
	f.kind = EB_STORE_FLOW_OAUTH2_AUTHORIZE;
	f.tenant = (char *)tid;
	f.client_id = "apple-device";
	f.redirect_uri = RURI;
	f.scope = "openid";
	f.user_identifier = "alice@contoso.com";
	if (replaces != NULL) {
		snprintf(extra, sizeof(extra), "{\"replaces\":\"%s\"}",
		         replaces);
		f.extra = extra;
	}
	id.issuer = "https://idp.example";
	id.subject = (char *)subject;
	/* the login SCIM matches: upn before email, lower-case */
	id.upn = "Alice@Contoso.COM";
	id.email = "alice.other@contoso.com";
	map.managed_apple_id = (char *)account;
	tok.refresh_token = UPRT;
	tok.sub = (char *)subject;
	memset(&in, 0, sizeof(in));
	in.t = &t;
	in.f = &f;
	in.id = &id;
	in.map = &map;
	in.tok = &tok;
	in.now = fx->now;
	return eb_grant_issue(&fx->env, NULL, &in);
}

static void
sign_in(struct fx *fx, const char *tid, const char *subject,
        const char *account, const char *replaces, char **gid)
{
	struct eb_store_code cd;
	char hash[EB_STORE_HASH_HEXLEN + 1], *code;

	code = issue(fx, tid, subject, account, replaces);
	assert_non_null(code);
	/* the code: hashed at rest, bound to client and redirect URI */
	assert_int_equal(eb_store_hash_token(code, strlen(code), hash), 0);
	assert_int_equal(eb_store_code_consume(fx->env.store, hash,
	                                       "apple-device", RURI,
	                                       fx->now + 1, &cd),
	                 EB_STORE_OK);
	assert_string_equal(cd.tenant, tid);
	*gid = eb_strdup(cd.grant_id);
	eb_store_code_finish(&cd);
	eb_free_secret_str(code);
}

/* s occurs in the n bytes at p */
static int
contains(const uint8_t *p, size_t n, const char *s)
{
	size_t i, k = strlen(s);

	for (i = 0; i + k <= n; i++)
		if (memcmp(p + i, s, k) == 0)
			return 1;
	return 0;
}

static void
issues_a_sealed_grant_and_a_code(void **state)
{
	struct fx *fx = *state;
	struct eb_store_grant g;
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	char *gid;

	sign_in(fx, "t1", "sub-alice", MAI, NULL, &gid);
	assert_int_equal(eb_store_grant_get(fx->env.store, gid, &g),
	                 EB_STORE_OK);
	assert_int_equal(g.status, EB_STORE_GRANT_ACTIVE);
	assert_string_equal(g.auth_method, "apple-oauth2");
	assert_string_equal(g.managed_apple_id, MAI);
	assert_string_equal(g.enrollment_mode, "BYOD");
	assert_string_equal(g.idp_login, "alice@contoso.com");
	assert_int_equal(g.expires, fx->now + 3600);
	assert_int_equal(g.upstream_next_at, fx->now + 600);
	/* never at rest in the clear, and only this grant's id opens it */
	assert_true(g.upstream_refresh_token_len > strlen(UPRT));
	assert_false(contains(g.upstream_refresh_token,
	                      g.upstream_refresh_token_len, UPRT));
	assert_int_equal(
	    eb_seal_ring_open(fx->env.seal_ring, EB_SEAL_AT_REST, gid,
	                      strlen(gid), g.upstream_refresh_token,
	                      g.upstream_refresh_token_len, &pt, &ptlen, NULL),
	    0);
	assert_int_equal(ptlen, strlen(UPRT));
	assert_memory_equal(pt, UPRT, ptlen);
	eb_free_secret(pt, ptlen);
	assert_int_not_equal(
	    eb_seal_ring_open(fx->env.seal_ring, EB_SEAL_AT_REST, "gother", 6,
	                      g.upstream_refresh_token,
	                      g.upstream_refresh_token_len, &pt, &ptlen, NULL),
	    0);
	eb_store_grant_finish(&g);
	eb_free(gid);
}

/* status and binding value (or NULL) of grant id */
static void
check(struct fx *fx, const char *id, int status, const char *binding)
{
	struct eb_store_grant g;

	assert_int_equal(eb_store_grant_get(fx->env.store, id, &g),
	                 EB_STORE_OK);
	assert_int_equal(g.status, status);
	if (binding == NULL)
		assert_null(g.binding_value);
	else
		assert_string_equal(g.binding_value, binding);
	eb_store_grant_finish(&g);
}

static void
same_account_takes_over(void **state)
{
	struct fx *fx = *state;
	char *a, *b;

	sign_in(fx, "t1", "sub-alice", MAI, NULL, &a);
	assert_int_equal(
	    eb_store_grant_bind(fx->env.store, a, "UDID", UDID, fx->now),
	    EB_STORE_OK);
	fx->now += 100;
	sign_in(fx, "t1", "sub-alice", MAI, a, &b);
	check(fx, a, EB_STORE_GRANT_SUPERSEDED, UDID);
	check(fx, b, EB_STORE_GRANT_ACTIVE, UDID);
	eb_free(a);
	eb_free(b);
}

static void
other_account_takes_nothing(void **state)
{
	struct fx *fx = *state;
	char *a, *b, *c;

	sign_in(fx, "t1", "sub-alice", MAI, NULL, &a);
	assert_int_equal(
	    eb_store_grant_bind(fx->env.store, a, "UDID", UDID, fx->now),
	    EB_STORE_OK);
	/* Mallory, signing in on the flow Alice's device started */
	sign_in(fx, "t1", "sub-mallory", "mallory@appleid.contoso.com", a, &b);
	check(fx, a, EB_STORE_GRANT_ACTIVE, UDID);
	check(fx, b, EB_STORE_GRANT_ACTIVE, NULL);
	/* and her grant cannot bind Alice's device either */
	assert_int_equal(
	    eb_store_grant_bind(fx->env.store, b, "UDID", UDID, fx->now),
	    EB_STORE_TAKEN);
	/* a flow naming another tenant's grant takes nothing there */
	sign_in(fx, "t2", "sub-alice", MAI, a, &c);
	check(fx, a, EB_STORE_GRANT_ACTIVE, UDID);
	check(fx, c, EB_STORE_GRANT_ACTIVE, NULL);
	eb_free(a);
	eb_free(b);
	eb_free(c);
}

/*
 * A person whose SCIM User went inactive while they signed in: the grant
 * stored meanwhile is revoked at once and no credential is handed out;
 * once reactivated they get one.
 */
static void
deprovisioned_meanwhile(void **state)
{
	struct fx *fx = *state;
	struct eb_scim_config sc = {"0123456789abcdef", 16};
	struct eb_store_scim_user u = {.tenant = "t1",
	                               .id = "u1",
	                               .user_name = "ALICE@contoso.com",
	                               .active = 0,
	                               .resource = "{}",
	                               .created = 1,
	                               .updated = 1};
	struct eb_store_grant_filter gf = {.tenant = "t1", .status = -1};
	struct eb_store_grant_list l;
	char *code, *gid;

	fx->t.scim = &sc;
	assert_int_equal(eb_store_scim_user_create(fx->env.store, &u),
	                 EB_STORE_OK);
	code = issue(fx, "t1", "sub-alice", MAI, NULL);
	assert_null(code);
	assert_int_equal(eb_store_grant_list(fx->env.store, &gf, &l),
	                 EB_STORE_OK);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].status, EB_STORE_GRANT_REVOKED);
	assert_string_equal(l.v[0].revoke_reason, "deprovisioned by SCIM");
	eb_store_grant_list_finish(&l);
	/* another tenant's SCIM users do not count */
	sign_in(fx, "t2", "sub-alice", MAI, NULL, &gid);
	eb_free(gid);
	u.active = 1;
	assert_int_equal(eb_store_scim_user_replace(fx->env.store, &u),
	                 EB_STORE_OK);
	sign_in(fx, "t1", "sub-alice", MAI, NULL, &gid);
	check(fx, gid, EB_STORE_GRANT_ACTIVE, NULL);
	eb_free(gid);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(deprovisioned_meanwhile, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(issues_a_sealed_grant_and_a_code,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(same_account_takes_over, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(other_account_takes_nothing, setup,
	                                    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
