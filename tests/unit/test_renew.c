/*
 * Silent renewal (token/renew.c): the decision after each refresh attempt
 * (success and its jittered schedule, IdP refusal, subject mismatch,
 * failures within and past the grace, our own failures), the subject that
 * refreshed ID tokens must carry (raw sub from the grant's extra JSON,
 * Entra's tid:oid never used as a sub), and the worker itself against a
 * real SQLite store and an IdP that does not answer (a closed loopback
 * port): the grant is marked failing, counted in the metrics, revoked once
 * the grace is over, a grant without refresh token is taken off the
 * schedule, and start/kick/stop leave nothing behind (ASan).
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fx_dir.h"
#include "core/config.h"
#include "core/env.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/rand.h"
#include "jose/seal.h"
#include "oidc/oidc.h"
#include "store/store.h"
#include "token/renew.h"

static const struct eb_tokens_config TK = {
    .upstream_renew_interval = 3600,
    .upstream_grace = 86400,
    .renew_concurrency = 4,
};

/* ---- the decision ------------------------------------------------------ */

static void
test_decide_ok_is_jittered(void **state)
{
	struct eb_renewer_outcome o;
	int64_t now = 1700000000, lo = INT64_MAX, hi = 0;
	int i;

	for (i = 0; i < 200; i++) {
		eb_renewer_decide(EB_OIDC_OK, NULL, 0, now, &TK, &o);
		assert_int_equal(o.action, EB_RENEWER_RENEWED);
		assert_string_equal(o.result, "ok");
		assert_int_equal(o.failing_since, 0);
		assert_in_range(o.next_at, now + 3240, now + 3960);
		lo = o.next_at < lo ? o.next_at : lo;
		hi = o.next_at > hi ? o.next_at : hi;
	}
	/* spread, not a fixed schedule */
	assert_true(hi - lo > 100);
	/* a success heals a failing grant */
	eb_renewer_decide(EB_OIDC_OK, NULL, now - 100, now, &TK, &o);
	assert_int_equal(o.failing_since, 0);
}

static void
test_decide_denied_revokes(void **state)
{
	struct eb_renewer_outcome o;

	eb_renewer_decide(EB_OIDC_E_DENIED, "invalid_grant", 0, 1000, &TK, &o);
	assert_int_equal(o.action, EB_RENEWER_REVOKE);
	assert_string_equal(o.result, "denied");
	assert_string_equal(o.reason, "upstream: invalid_grant");
	/* even while the IdP had been failing before */
	eb_renewer_decide(EB_OIDC_E_DENIED, "consent_required", 500, 1000, &TK,
	                  &o);
	assert_int_equal(o.action, EB_RENEWER_REVOKE);
	assert_string_equal(o.reason, "upstream: consent_required");

	/* the access re-check: no longer in a required group */
	eb_renewer_decide(EB_OIDC_E_POLICY, "group_required", 500, 1000, &TK,
	                  &o);
	assert_int_equal(o.action, EB_RENEWER_REVOKE);
	assert_string_equal(o.result, "denied");
	assert_string_equal(o.reason, "access lost: group_required");

	eb_renewer_decide(EB_OIDC_E_TOKEN, "sub_mismatch", 0, 1000, &TK, &o);
	assert_int_equal(o.action, EB_RENEWER_REVOKE);
	assert_string_equal(o.result, "denied");
	assert_non_null(strstr(o.reason, "another subject"));
}

static void
test_decide_unavailable_within_grace(void **state)
{
	struct eb_renewer_outcome o;
	int64_t now = 1700000000;

	/* first failure: failing from now, retried within 5 minutes */
	eb_renewer_decide(EB_OIDC_E_UNAVAILABLE, "idp_unreachable", 0, now, &TK,
	                  &o);
	assert_int_equal(o.action, EB_RENEWER_RETRY);
	assert_string_equal(o.result, "unavailable");
	assert_int_equal(o.failing_since, now);
	assert_in_range(o.next_at, now + 1, now + 330);

	/* later failures keep the first failure's time */
	eb_renewer_decide(EB_OIDC_E_UNAVAILABLE, NULL, now - 3600, now, &TK,
	                  &o);
	assert_int_equal(o.action, EB_RENEWER_RETRY);
	assert_int_equal(o.failing_since, now - 3600);

	/* exactly at the grace: still tolerated, decided again right after */
	eb_renewer_decide(EB_OIDC_E_UNAVAILABLE, NULL, now - 86400, now, &TK,
	                  &o);
	assert_int_equal(o.action, EB_RENEWER_RETRY);
	assert_int_equal(o.next_at, now + 1);

	/* a failing_since in the future (clock stepped back) restarts */
	eb_renewer_decide(EB_OIDC_E_UNAVAILABLE, NULL, now + 500, now, &TK, &o);
	assert_int_equal(o.action, EB_RENEWER_RETRY);
	assert_int_equal(o.failing_since, now);

	/* nonsense answers and bad ID tokens count as failing, not denial */
	eb_renewer_decide(EB_OIDC_E_PROTOCOL, "invalid_client", 0, now, &TK,
	                  &o);
	assert_int_equal(o.action, EB_RENEWER_RETRY);
	assert_string_equal(o.result, "error");
	eb_renewer_decide(EB_OIDC_E_TOKEN, "bad_signature", 0, now, &TK, &o);
	assert_int_equal(o.action, EB_RENEWER_RETRY);
	assert_string_equal(o.result, "error");
}

static void
test_decide_past_grace_revokes(void **state)
{
	struct eb_renewer_outcome o;
	int64_t now = 1700000000;

	eb_renewer_decide(EB_OIDC_E_UNAVAILABLE, "idp_timeout", now - 86401,
	                  now, &TK, &o);
	assert_int_equal(o.action, EB_RENEWER_REVOKE);
	assert_string_equal(o.result, "unavailable");
	assert_string_equal(o.reason,
	                    "upstream unreachable for longer than grace");
	eb_renewer_decide(EB_OIDC_E_PROTOCOL, "invalid_client", now - 90000,
	                  now, &TK, &o);
	assert_int_equal(o.action, EB_RENEWER_REVOKE);
	assert_string_equal(o.reason, "upstream failing (invalid_client) for "
	                              "longer than grace");
}

static void
test_decide_own_failure(void **state)
{
	struct eb_renewer_outcome o;
	int64_t now = 1700000000;

	eb_renewer_decide(EB_OIDC_E_INTERNAL, "nomem", 0, now, &TK, &o);
	assert_int_equal(o.action, EB_RENEWER_LATER);
	assert_string_equal(o.result, "error");
	assert_int_equal(o.failing_since, 0);
	assert_true(o.next_at > now);
	/* never revokes, however long the IdP had been failing */
	eb_renewer_decide(EB_OIDC_E_INTERNAL, "nomem", now - 999999, now, &TK,
	                  &o);
	assert_int_equal(o.action, EB_RENEWER_LATER);
	assert_int_equal(o.failing_since, now - 999999);
}

static void
test_decide_short_interval(void **state)
{
	struct eb_tokens_config tk = TK;
	struct eb_renewer_outcome o;

	tk.upstream_renew_interval = 2;
	tk.upstream_grace = 5;
	eb_renewer_decide(EB_OIDC_OK, NULL, 0, 100, &tk, &o);
	assert_int_equal(o.next_at, 102);
	eb_renewer_decide(EB_OIDC_E_UNAVAILABLE, NULL, 0, 100, &tk, &o);
	assert_int_equal(o.next_at, 102);
	eb_renewer_decide(EB_OIDC_E_UNAVAILABLE, NULL, 96, 100, &tk, &o);
	assert_int_equal(o.next_at, 102); /* 96 + 5 + 1 */
	eb_renewer_decide(EB_OIDC_E_UNAVAILABLE, NULL, 94, 100, &tk, &o);
	assert_int_equal(o.action, EB_RENEWER_REVOKE);
}

/* ---- the expected subject ---------------------------------------------- */

static void
test_expected_sub(void **state)
{
	struct eb_store_grant g;
	char *sub;

	memset(&g, 0, sizeof(g));
	g.idp_subject = "user1";
	assert_int_equal(eb_renewer_expected_sub(&g, &sub), 0);
	assert_string_equal(sub, "user1");
	eb_free(sub);

	/* Entra: the subject is tid:oid, the sub is another thing */
	g.idp_subject = "72f988bf:0000-1111";
	g.idp_tid = "72f988bf";
	g.idp_oid = "0000-1111";
	assert_int_equal(eb_renewer_expected_sub(&g, &sub), 0);
	assert_null(sub);
	g.extra = "{\"sub\": \"AAAApairwise\", \"other\": 1}";
	assert_int_equal(eb_renewer_expected_sub(&g, &sub), 0);
	assert_string_equal(sub, "AAAApairwise");
	eb_free(sub);

	/* damaged or odd extra: fall back, never crash */
	g.extra = "{\"sub\": ";
	assert_int_equal(eb_renewer_expected_sub(&g, &sub), 0);
	assert_null(sub);
	g.extra = "{\"sub\": 42}";
	assert_int_equal(eb_renewer_expected_sub(&g, &sub), 0);
	assert_null(sub);
	g.idp_tid = g.idp_oid = NULL;
	g.idp_subject = "plain";
	g.extra = "[1,2]";
	assert_int_equal(eb_renewer_expected_sub(&g, &sub), 0);
	assert_string_equal(sub, "plain");
	eb_free(sub);
}

/* ---- the worker -------------------------------------------------------- */

static char dir[256];
/* the seal ring's one key; grants are seeded with version 1 blobs */
static uint8_t seal_key[EB_SEAL_KEY_LEN];

static int
setup(void **state)
{
	char path[512];

	snprintf(dir, sizeof(dir), "/tmp/eb-renew-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/tenants", dir);
	return mkdir(path, 0700);
}

static int
teardown(void **state)
{
	return fx_rmtree(dir);
}

static void
write_file(const char *rel, const char *content)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	assert_non_null(f = fopen(path, "w"));
	assert_true(fputs(content, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* A grant of tenant t, due now, with a sealed refresh token when rt. */
static void
put_grant(struct eb_env *env, const char *id, const char *rt, int64_t now)
{
	struct eb_store_grant g;
	uint8_t *sealed = NULL;
	size_t sealed_len = 0;

	memset(&g, 0, sizeof(g));
	g.id = (char *)(uintptr_t)id;
	g.tenant = "t";
	g.status = EB_STORE_GRANT_ACTIVE;
	g.auth_method = "apple-as-web";
	g.managed_apple_id = "user1@appleid.contoso.com";
	g.idp_issuer = "http://127.0.0.1:1";
	g.idp_subject = "user1";
	g.enrollment_mode = "BYOD";
	g.created = g.updated = now - 10;
	g.expires = now + 86400;
	if (rt != NULL) {
		assert_int_equal(eb_seal_seal(seal_key, id, strlen(id), rt,
		                              strlen(rt), &sealed, &sealed_len),
		                 0);
		g.upstream_refresh_token = sealed;
		g.upstream_refresh_token_len = sealed_len;
	}
	g.upstream_renewed_at = now - 10;
	g.upstream_next_at = now - 1;
	assert_int_equal(eb_store_grant_create(env->store, &g), EB_STORE_OK);
	eb_free(sealed);
}

static void
get_grant(struct eb_env *env, const char *id, struct eb_store_grant *g)
{
	eb_store_grant_finish(g);
	assert_int_equal(eb_store_grant_get(env->store, id, g), EB_STORE_OK);
}

/* The failing gauge of tenant t once it reads want (recounted from the
 * store at the renewer's next cycle after a change), or after 5 s. */
static double
gauge_until(struct eb_env *env, double want)
{
	double v = -1;
	int i;

	for (i = 0; i < 50; i++) {
		v = eb_metrics_get(env->metrics,
		                   "enrollbridge_upstream_failing_grants",
		                   "tenant=\"t\"");
		if (v == want)
			break;
		usleep(100 * 1000);
	}
	return v;
}

static void
test_worker_idp_down(void **state)
{
	struct eb_oidc_opts oo = {
	    .timeout = 2, .max_bytes = 1 << 20, .jwks_max_keys = 16};
	struct eb_config_error err;
	struct eb_store_upstream u;
	struct eb_store_grant g;
	struct eb_config *cfg;
	struct eb_env *env;
	struct eb_renewer *r;
	char path[512], serr[256];
	int64_t now = (int64_t)time(NULL), failing;
	int i;

	/* an IdP on a closed port: every attempt is E_UNAVAILABLE */
	write_file("config.json", "{\"public_url\": \"https://eb.example\", "
	                          "\"database\": \"eb.db\"}");
	write_file("tenants/t.json",
	           "{\"id\": \"t\", \"domains\": [\"contoso.com\"], "
	           "\"idp\": {\"type\": \"oidc\", \"issuer\": "
	           "\"http://127.0.0.1:1\", \"client_id\": \"cid\", "
	           "\"client_secret\": \"s\"}, \"tokens\": "
	           "{\"upstream_renew_interval\": 1, \"upstream_grace\": 2, "
	           "\"max_unverified_age\": 4}}");
	snprintf(path, sizeof(path), "%s/config.json", dir);
	memset(&err, 0, sizeof(err));
	if ((cfg = eb_config_load(path, &err)) == NULL)
		fail_msg("config: %s %s %s", err.file, err.key, err.reason);
	assert_non_null(env = eb_env_create(path, cfg));
	assert_non_null(env->metrics = eb_metrics_create(NULL, 0));
	assert_non_null(env->store = eb_store_open(NULL, cfg->database, serr,
	                                           sizeof(serr)));
	assert_int_equal(eb_rand_bytes(seal_key, sizeof(seal_key)), 0);
	assert_non_null(env->seal_ring = eb_seal_ring_of(seal_key));
	oo.metrics = env->metrics;
	oo.clock = &env->clock;
	assert_non_null(env->oidc = eb_oidc_create(&oo));

	put_grant(env, "g-down", "upstream-refresh-secret", now);
	put_grant(env, "g-none", NULL, now);
	/* signed in just now, without a refresh token */
	put_grant(env, "g-young", NULL, now);
	memset(&u, 0, sizeof(u));
	u.renewed_at = now;
	u.next_at = now - 1;
	assert_int_equal(
	    eb_store_grant_set_upstream(env->store, "g-young", &u, now),
	    EB_STORE_OK);
	memset(&g, 0, sizeof(g));

	assert_non_null(r = eb_renewer_start(env));
	eb_renewer_kick(r);
	/* the first attempt fails: failing, not revoked, counted */
	for (i = 0; i < 100; i++) {
		get_grant(env, "g-down", &g);
		if (g.upstream_failing_since != 0)
			break;
		usleep(100 * 1000);
	}
	assert_int_not_equal(g.upstream_failing_since, 0);
	failing = g.upstream_failing_since;
	assert_int_equal(g.status, EB_STORE_GRANT_ACTIVE);
	assert_non_null(g.upstream_refresh_token);
	assert_true(eb_metrics_get(env->metrics, "enrollbridge_renewals_total",
	                           "tenant=\"t\",result=\"unavailable\"") >= 1);
	/* failing_since came through the claim's fenced write-back */
	assert_true(eb_metrics_get(env->metrics, "enrollbridge_renewals_total",
	                           "tenant=\"t\",result=\"lost\"") == 0);
	/* counted from the store by the holder of the stats lease: us */
	assert_true(gauge_until(env, 1) == 1);
	/* without a refresh token and signed in longer than
	 * max_unverified_age ago: revoked, the device signs in again */
	get_grant(env, "g-none", &g);
	assert_int_equal(g.status, EB_STORE_GRANT_REVOKED);
	assert_non_null(strstr(g.revoke_reason, "unverified"));
	assert_int_equal(g.retired_at, 0);
	assert_true(eb_metrics_get(env->metrics, "enrollbridge_renewals_total",
	                           "tenant=\"t\",result=\"unverified\"") >= 1);
	/* a younger one is scheduled for when it gets that old */
	get_grant(env, "g-young", &g);
	assert_int_equal(g.status, EB_STORE_GRANT_ACTIVE);
	assert_int_equal(g.upstream_next_at, now + 4);

	/* past the 2 s grace: revoked, and no longer counted as failing */
	for (i = 0; i < 100; i++) {
		get_grant(env, "g-down", &g);
		if (g.status != EB_STORE_GRANT_ACTIVE)
			break;
		usleep(100 * 1000);
	}
	assert_int_equal(g.status, EB_STORE_GRANT_REVOKED);
	assert_string_equal(g.revoke_reason,
	                    "upstream unreachable for longer than grace");
	assert_true(g.revoked_at - failing > 2);
	assert_null(g.upstream_refresh_token);
	assert_true(gauge_until(env, 0) == 0);
	/* and the younger one ends once it is old enough */
	for (i = 0; i < 100; i++) {
		get_grant(env, "g-young", &g);
		if (g.status != EB_STORE_GRANT_ACTIVE)
			break;
		usleep(100 * 1000);
	}
	assert_int_equal(g.status, EB_STORE_GRANT_REVOKED);
	assert_true(g.revoked_at >= now + 4);
	eb_store_grant_finish(&g);

	eb_renewer_stop(r);
	eb_renewer_stop(NULL);
	eb_renewer_kick(NULL);
	eb_oidc_destroy(env->oidc);
	eb_store_close(env->store);
	eb_metrics_destroy(env->metrics);
	eb_seal_ring_free(env->seal_ring);
	eb_env_destroy(env);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decide_ok_is_jittered),
	    cmocka_unit_test(test_decide_denied_revokes),
	    cmocka_unit_test(test_decide_unavailable_within_grace),
	    cmocka_unit_test(test_decide_past_grace_revokes),
	    cmocka_unit_test(test_decide_own_failure),
	    cmocka_unit_test(test_decide_short_interval),
	    cmocka_unit_test(test_expected_sub),
	    cmocka_unit_test_setup_teardown(test_worker_idp_down, setup,
	                                    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
