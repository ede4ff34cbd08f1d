/*
 * Configuration loader tests: each test writes a main file and tenant files
 * into a fresh mkdtemp folder, loads it, and checks either the loaded values
 * (defaults, derived discovery bodies, lookups) or the error an operator
 * would see (file, key path, reason), including that a secret never shows
 * up in a reason. The plain error cases of the main and tenant files are
 * data: tests/data/config, run by test_config_cases.
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
#include "core/config.h"
#include "core/mem.h"
#include "providers/provider_int.h"

static char dir[256];
static struct eb_config_error err;

#define MAIN_OK "{\"public_url\": \"https://eb.example.com/\"}"
#define IDP_OK                                                                 \
	"\"idp\": {\"type\": \"oidc\", \"issuer\": "                           \
	"\"https://idp.example.com\", \"client_id\": \"cid\", "                \
	"\"client_secret\": \"s3cret-value\"}"
#define TENANT_OK                                                              \
	"{\"id\": \"acme\", \"domains\": [\"acme.example\"], " IDP_OK "}"

static void
write_file(const char *rel, const char *content)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fputs(content, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void
write_tenant(const char *name, const char *content)
{
	char rel[256];

	snprintf(rel, sizeof(rel), "tenants/%s", name);
	write_file(rel, content);
}

static struct eb_config *
load(void)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/config.json", dir);
	return eb_config_load(path, &err);
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The load must fail in file (suffix) at key with reason containing why. */
static void
expect_fail_at(const char *file, const char *key, const char *why, int line)
{
	struct eb_config *cfg = load();

	if (cfg != NULL) {
		eb_config_unref(cfg);
		fail_msg("line %d: load succeeded, expected %s: %s", line, key,
		         why);
	}
	if (!ends_with(err.file, file) || strcmp(err.key, key) != 0 ||
	    strstr(err.reason, why) == NULL)
		fail_msg("line %d: got file=%s key=%s reason=%s; want %s %s %s",
		         line, err.file, err.key, err.reason, file, key, why);
}
#define expect_fail(f, k, w) expect_fail_at(f, k, w, __LINE__)

/* Load with the good main file and one tenant file holding body. */
static struct eb_config *
load_tenant(const char *body)
{
	write_file("config.json", MAIN_OK);
	write_tenant("t.json", body);
	return load();
}

#define expect_tenant_fail(body, key, why)                                     \
	do {                                                                   \
		write_file("config.json", MAIN_OK);                            \
		write_tenant("t.json", body);                                  \
		expect_fail("tenants/t.json", key, why);                       \
	} while (0)

static int
setup(void **state)
{
	char path[512];

	snprintf(dir, sizeof(dir), "/tmp/eb-config-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/tenants", dir);
	memset(&err, 0, sizeof(err));
	return mkdir(path, 0700);
}

static int
teardown(void **state)
{
	return fx_rmtree(dir);
}

static void
test_minimal_defaults(void **state)
{
	struct eb_config *cfg = load_tenant(
	    "{\"id\": \"acme\", \"domains\": [\"Acme.Example.\"], " IDP_OK "}");
	const struct eb_tenant *t;
	char want[512];

	assert_non_null(cfg);
	assert_string_equal(cfg->listen_host, "127.0.0.1");
	assert_int_equal(cfg->listen_port, 8080);
	assert_string_equal(cfg->public_url, "https://eb.example.com");
	snprintf(want, sizeof(want), "%s/state/enrollbridge.db", dir);
	assert_string_equal(cfg->database, want);
	snprintf(want, sizeof(want), "%s/tenants", dir);
	assert_string_equal(cfg->tenants_dir, want);
	assert_null(cfg->tls_cert);
	assert_int_equal(cfg->limits.max_body_bytes, 1024 * 1024);
	assert_int_equal(cfg->limits.max_header_bytes, 16 * 1024);
	assert_int_equal(cfg->limits.upstream_timeout, 10);
	assert_int_equal(cfg->limits.jwks_max_keys, 64);
	assert_int_equal(cfg->limits.max_connections, 4096);
	assert_true(cfg->limits.threads >= 1);
	assert_int_equal(cfg->log_json, 1);
	assert_int_equal(cfg->access_log, 1);
	assert_int_equal(cfg->ntenants, 1);

	t = cfg->tenants[0];
	assert_string_equal(t->id, "acme");
	assert_int_equal(t->domains.n, 1);
	assert_string_equal(t->domains.v[0], "acme.example");
	assert_int_equal(t->default_mode, EB_MODE_BYOD);
	assert_int_equal(t->auth_method, EB_AUTH_AS_WEB);
	assert_int_equal(t->on_access_lost, EB_ON_ACCESS_LOST_REAUTH);
	assert_string_equal(t->idp.client_secret, "s3cret-value");
	assert_int_equal(t->idp.client_auth, EB_CLIENT_AUTH_BASIC);
	assert_int_equal(t->idp.scopes.n, 4);
	assert_string_equal(t->idp.scopes.v[0], "openid");
	assert_string_equal(t->idp.scopes.v[3], "offline_access");
	assert_string_equal(t->mapping.claim, "email");
	assert_int_equal(t->mapping.managed_domains.n, 1);
	assert_string_equal(t->mapping.managed_domains.v[0], "acme.example");
	assert_int_equal(t->tokens.access_ttl, 3600);
	assert_int_equal(t->tokens.refresh_ttl, 7776000);
	assert_int_equal(t->tokens.upstream_renew_interval, 3600);
	assert_int_equal(t->tokens.upstream_grace, 86400);
	assert_int_equal(t->tokens.max_unverified_age, 7 * 86400);
	assert_int_equal(t->tokens.renew_concurrency, 4);
	assert_int_equal(t->tokens.code_ttl, 60);
	assert_int_equal(t->tokens.login_ttl, 600);
	assert_string_equal(t->oauth2.client_id, "apple-device");
	assert_string_equal(
	    t->oauth2.redirect_uri,
	    "apple-remotemanagement-user-login:/oauth2/redirection");
	assert_string_equal(t->oauth2.scope, "mdm");
	assert_string_equal(t->mdm.audience,
	                    "https://eb.example.com/t/acme/mdm");
	assert_int_equal(t->mdm.use_proxy, 0);
	assert_null(t->esso);
	assert_string_equal(t->base_url,
	                    "https://eb.example.com/t/acme/enroll");
	eb_config_unref(cfg);
}

static void
test_full_main(void **state)
{
	struct eb_config *cfg;
	char want[512];

	write_file(
	    "config.json",
	    "{\"listen\": \"[::1]:9443\", \"public_url\": "
	    "\"HTTPS://EB.Example.com:8443/base//\", \"database\": "
	    "\"/var/db/eb.db\", \"state_dir\": \"st\", \"tenants_dir\": "
	    "\"tenants\", \"tls\": {\"cert\": \"tls/c.pem\", \"key\": "
	    "\"tls/k.pem\"}, \"limits\": {\"max_body_bytes\": 2048, "
	    "\"threads\": 3, \"upstream_timeout\": 5, \"per_ip_connections\": "
	    "8}, \"log\": {\"format\": \"text\", \"level\": \"debug\", "
	    "\"access\": false}}");
	write_tenant("a.json", TENANT_OK);
	assert_non_null(cfg = load());
	assert_string_equal(cfg->listen_host, "::1");
	assert_int_equal(cfg->listen_port, 9443);
	assert_string_equal(cfg->public_url,
	                    "https://eb.example.com:8443/base");
	assert_string_equal(cfg->database, "/var/db/eb.db");
	snprintf(want, sizeof(want), "%s/st", dir);
	assert_string_equal(cfg->state_dir, want);
	snprintf(want, sizeof(want), "%s/tls/k.pem", dir);
	assert_string_equal(cfg->tls_key, want);
	assert_int_equal(cfg->limits.max_body_bytes, 2048);
	assert_int_equal(cfg->limits.threads, 3);
	assert_int_equal(cfg->limits.upstream_timeout, 5);
	assert_int_equal(cfg->limits.per_ip_connections, 8);
	assert_int_equal(cfg->log_json, 0);
	assert_int_equal(cfg->log_level, 0);
	assert_int_equal(cfg->access_log, 0);
	assert_string_equal(cfg->tenants[0]->base_url,
	                    "https://eb.example.com:8443/base/t/acme/enroll");
	eb_config_unref(cfg);
}

static void
test_listen_list(void **state)
{
	struct eb_config *cfg;

	write_file("config.json",
	           "{\"public_url\": \"https://a.example\", \"listen\": "
	           "[\"0.0.0.0:8443\", \"[::]:8443\"], \"tls\": {\"cert\": "
	           "\"c\", \"key\": \"k\", \"min_version\": \"1.3\", "
	           "\"priorities\": \"NORMAL:-CHACHA20-POLY1305\"}}");
	write_tenant("a.json", TENANT_OK);
	assert_non_null(cfg = load());
	assert_int_equal(cfg->nlisten, 2);
	assert_string_equal(cfg->listen[0].host, "0.0.0.0");
	assert_string_equal(cfg->listen[1].host, "::");
	assert_int_equal(cfg->listen[1].port, 8443);
	assert_string_equal(cfg->listen_host, "0.0.0.0");
	assert_string_equal(cfg->tls_min_version, "1.3");
	assert_string_equal(cfg->tls_priorities, "NORMAL:-CHACHA20-POLY1305");
	eb_config_unref(cfg);
}

/* Both files take a "$schema" string (an editor's hint) and ignore it. */
static void
test_schema_key(void **state)
{
	struct eb_config *cfg;

	write_file("config.json",
	           "{\"$schema\": \"../docs/config.schema.json\", "
	           "\"public_url\": \"https://a.example\"}");
	write_tenant(
	    "t.json",
	    "{\"$schema\": \"https://example.com/s.json\", "
	    "\"id\": \"acme\", \"domains\": [\"acme.example\"], " IDP_OK "}");
	assert_non_null(cfg = load());
	eb_config_unref(cfg);
	write_file("config.json",
	           "{\"$schema\": 1, \"public_url\": \"https://a.example\"}");
	expect_fail("config.json", "$schema", "must be a string");
	write_file("config.json", MAIN_OK);
	write_tenant("t.json", "{\"$schema\": [], \"id\": \"acme\", "
	                       "\"domains\": [\"acme.example\"], " IDP_OK "}");
	expect_fail("tenants/t.json", "$schema", "must be a string");
	/* only that one extra key: "$id" or "$comment" are still unknown */
	write_tenant("t.json", "{\"$id\": \"x\", \"id\": \"acme\", "
	                       "\"domains\": [\"acme.example\"], " IDP_OK "}");
	expect_fail("tenants/t.json", "$id", "unknown key");
	/* and nowhere but at the top level */
	write_tenant("t.json", "{\"id\": \"acme\", \"domains\": "
	                       "[\"acme.example\"], \"access\": {\"$schema\": "
	                       "\"x\"}, " IDP_OK "}");
	expect_fail("tenants/t.json", "access.$schema", "unknown key");
}

static void
test_public_url(void **state)
{
	static const struct {
		const char *url;
		int ok;
	} cases[] = {
	    {"http://127.0.0.1:8080", 1},
	    {"http://127.9.9.9", 1},
	    {"http://localhost:8080/x/", 1},
	    {"http://[::1]:8080/", 1},
	    {"https://eb.example.com/base", 1},
	    {"http://eb.example.com", 0},
	    {"http://10.0.0.1:8080", 0},
	    {"http://127.0.0.1.example.com", 0},
	    {"http://[::2]", 0},
	    {"https://eb.example.com/?a=b", 0},
	    {"https://eb.example.com/#frag", 0},
	    {"ftp://eb.example.com", 0},
	    {"https://user@eb.example.com", 0},
	    {"https://", 0},
	    {"https://eb.example.com:0", 0},
	    {"https://eb.example.com/a b", 0},
	    {"https://eb.example.com/a\\\"b", 0}, /* JSON-escaped quote */
	};
	char main[256];
	struct eb_config *cfg;
	size_t i;

	write_tenant("a.json", TENANT_OK);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(main, sizeof(main), "{\"public_url\": \"%s\"}",
		         cases[i].url);
		write_file("config.json", main);
		cfg = load();
		if (cases[i].ok) {
			if (cfg == NULL)
				fail_msg("%s: %s", cases[i].url, err.reason);
			eb_config_unref(cfg);
			continue;
		}
		if (cfg != NULL)
			fail_msg("%s accepted", cases[i].url);
		if (strcmp(err.key, "public_url") != 0)
			fail_msg("%s: key %s: %s", cases[i].url, err.key,
			         err.reason);
	}
	write_file("config.json",
	           "{\"public_url\": \"http://eb.example.com\"}");
	expect_fail("config.json", "public_url", "loopback");
}

static void
test_on_access_lost(void **state)
{
	struct eb_config *cfg;

	(void)state;
	cfg = load_tenant("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                  "\"on_access_lost\": \"unenroll\", " IDP_OK "}");
	if (cfg == NULL)
		fail_msg("%s %s %s", err.file, err.key, err.reason);
	assert_int_equal(cfg->tenants[0]->on_access_lost,
	                 EB_ON_ACCESS_LOST_UNENROLL);
	eb_config_unref(cfg);
	cfg = load_tenant("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                  "\"on_access_lost\": \"reauth\", " IDP_OK "}");
	assert_non_null(cfg);
	assert_int_equal(cfg->tenants[0]->on_access_lost,
	                 EB_ON_ACCESS_LOST_REAUTH);
	eb_config_unref(cfg);
}

#define T_HEAD "{\"id\": \"acme\", \"domains\": [\"a.example\"], " IDP_OK ", "
#define T_MDM                                                                  \
	"\"mdm\": {\"upstream\": \"https://a.example\", \"audience\": "        \
	"\"aud-a\", \"claims\": [\"name\"]}, "
#define T_ROUTE(body) T_HEAD "\"routes\": [" body "]}"

static void
test_routes(void **state)
{
	struct eb_config *cfg;
	const struct eb_tenant *t, *v;

	(void)state;
	cfg = load_tenant(
	    T_HEAD T_MDM
	    "\"enrollment\": {\"default\": \"byod\"}, "
	    "\"routes\": [{\"name\": \"b\", \"match\": {\"groups\": "
	    "[\"g1\"], \"claims\": {\"dept\": \"it\"}}, \"mdm\": "
	    "{\"upstream\": \"https://b.example/\", \"claims\": "
	    "[\"email\", \"groups\"]}, \"enrollment\": {\"default\": "
	    "\"adde\"}}, {\"name\": \"all\", \"match\": {}, \"esso\": "
	    "{\"app_store_id\": 42}}]}");
	if (cfg == NULL)
		fail_msg("%s %s %s", err.file, err.key, err.reason);
	t = cfg->tenants[0];
	assert_int_equal(t->nroutes, 2);
	assert_ptr_equal(eb_tenant_route_view(t, NULL), t);
	assert_ptr_equal(eb_tenant_route_view(t, ""), t);
	assert_null(eb_tenant_route_view(t, "gone"));
	v = eb_tenant_route_view(t, "b");
	assert_non_null(v);
	assert_string_equal(v->route, "b");
	assert_string_equal(v->id, "acme");
	assert_string_equal(v->mdm.upstream, "https://b.example");
	/* tenant-wide keys stay the tenant's */
	assert_string_equal(v->mdm.audience, "aud-a");
	assert_int_equal(v->mdm.claims.n, 2);
	assert_int_equal(v->default_mode, EB_MODE_ADDE);
	assert_null(v->esso);
	assert_int_equal(t->default_mode, EB_MODE_BYOD);
	assert_string_equal(t->mdm.upstream, "https://a.example");
	assert_int_equal(t->mdm.claims.n, 1);
	v = eb_tenant_route_view(t, "all");
	assert_non_null(v->esso);
	assert_int_equal(v->esso->app_store_id, 42);
	assert_string_equal(v->mdm.upstream, "https://a.example");
	assert_null(t->esso);
	eb_config_unref(cfg);

	expect_tenant_fail(T_HEAD "\"routes\": {}}", "routes", "list");
	expect_tenant_fail(T_ROUTE("{\"name\": \"x\", \"match\": {}, \"mdm\": "
	                           "{\"upstream\": \"ftp://x\"}}"),
	                   "routes[0].mdm.upstream", "");
	expect_tenant_fail(T_ROUTE("{\"name\": \"x\", \"match\": {}, \"mdm\": "
	                           "{\"clients\": []}}"),
	                   "routes[0].mdm.clients", "tenant-wide");
	expect_tenant_fail(T_ROUTE("{\"name\": \"x\", \"match\": {}, \"mdm\": "
	                           "{}}, {\"name\": \"x\", \"match\": {}, "
	                           "\"mdm\": {}}"),
	                   "routes[1].name", "duplicate");
	expect_tenant_fail(
	    T_ROUTE("{\"name\": \"a.b\", \"match\": {}, \"mdm\": {}}"),
	    "routes[0].name", "A-Z");
	expect_tenant_fail(T_ROUTE("{\"name\": \"x\", \"match\": {\"claims\": "
	                           "{\"a\": 1}}, \"mdm\": {}}"),
	                   "routes[0].match.claims.a", "");
	expect_tenant_fail(T_ROUTE("{\"name\": \"x\", \"match\": {}}"),
	                   "routes[0]", "overrides nothing");
	expect_tenant_fail(T_ROUTE("{\"name\": \"x\", \"mdm\": {}}"),
	                   "routes[0].match", "required");
	expect_tenant_fail(
	    T_ROUTE("{\"name\": \"x\", \"match\": {}, \"esso\": {}}"),
	    "routes[0].esso.app_store_id", "required");
	expect_tenant_fail(T_HEAD "\"mdm\": {\"claims\": [\"a b\"]}}",
	                   "mdm.claims[0]", "spaces");
	expect_tenant_fail(T_HEAD "\"mdm\": {\"claims\": [\"a\", \"a\"]}}",
	                   "mdm.claims[1]", "duplicate");
}

/* "branding": name required, https logo, #rrggbb colour with its text
 * colour chosen for contrast, support contacts checked. */
static void
test_branding(void **state)
{
	struct eb_config *cfg;
	const struct eb_branding *b;

	(void)state;
	cfg = load_tenant(
	    "{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	    "\"branding\": {\"name\": \"Contoso\", \"logo_url\": "
	    "\"https://cdn.example/l.png\", \"primary_color\": \"#FFD700\", "
	    "\"support\": {\"email\": \"help@a.example\", \"url\": "
	    "\"https://help.a.example/\", \"phone\": \"+49 30 "
	    "1234-5\"}}, " IDP_OK "}");
	if (cfg == NULL)
		fail_msg("%s %s %s", err.file, err.key, err.reason);
	assert_non_null(b = cfg->tenants[0]->branding);
	assert_string_equal(b->name, "Contoso");
	assert_string_equal(b->text_color, "#000000"); /* gold: dark text */
	assert_string_equal(b->support_phone, "+49 30 1234-5");
	eb_config_unref(cfg);
	cfg = load_tenant("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                  "\"branding\": {\"name\": \"N\", \"primary_color\": "
	                  "\"#0b3d91\"}, " IDP_OK "}");
	assert_non_null(cfg);
	assert_string_equal(cfg->tenants[0]->branding->text_color, "#ffffff");
	eb_config_unref(cfg);

#define T_BR "{\"id\": \"acme\", \"domains\": [\"a.example\"], " IDP_OK ", "
	expect_tenant_fail(T_BR "\"branding\": {}}", "branding.name",
	                   "required");
	expect_tenant_fail(T_BR "\"branding\": {\"name\": \"\"}}",
	                   "branding.name", "empty");
	expect_tenant_fail(T_BR "\"branding\": {\"name\": \"N\", "
	                        "\"primary_color\": \"red\"}}",
	                   "branding.primary_color", "#rrggbb");
	expect_tenant_fail(T_BR "\"branding\": {\"name\": \"N\", "
	                        "\"primary_color\": \"#12345g\"}}",
	                   "branding.primary_color", "#rrggbb");
	expect_tenant_fail(T_BR "\"branding\": {\"name\": \"N\", "
	                        "\"logo_url\": \"http://127.0.0.1/l.png\"}}",
	                   "branding.logo_url", "https://");
	expect_tenant_fail(T_BR "\"branding\": {\"name\": \"N\", "
	                        "\"support\": {\"email\": \"nobody\"}}}",
	                   "branding.support.email", "name@domain");
	expect_tenant_fail(T_BR "\"branding\": {\"name\": \"N\", "
	                        "\"support\": {\"phone\": \"call me\"}}}",
	                   "branding.support.phone", "digits");
	expect_tenant_fail(T_BR "\"branding\": {\"name\": \"N\", "
	                        "\"support\": {\"fax\": \"1\"}}}",
	                   "branding.support.fax", "");
#undef T_BR
}

/* "scim": a token secret reference of sane length; absent: no endpoint. */
static void
test_scim(void **state)
{
	struct eb_config *cfg;

	(void)state;
	write_tenant("scim.txt", "0123456789abcdef-from-a-file\n");
	cfg = load_tenant("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                  "\"scim\": {\"token\": \"file:scim.txt\"}, " IDP_OK
	                  "}");
	if (cfg == NULL)
		fail_msg("%s %s %s", err.file, err.key, err.reason);
	assert_non_null(cfg->tenants[0]->scim);
	assert_string_equal(cfg->tenants[0]->scim->token,
	                    "0123456789abcdef-from-a-file");
	assert_int_equal(cfg->tenants[0]->scim->token_len, 28);
	eb_config_unref(cfg);
	cfg = load_tenant("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                  "" IDP_OK "}");
	assert_non_null(cfg);
	assert_null(cfg->tenants[0]->scim);
	eb_config_unref(cfg);

	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"scim\": {\"token\": \"SHORTSECRET\"}, " IDP_OK
	                   "}",
	                   "scim.token", "16 to 4096 bytes");
	assert_null(strstr(err.reason, "SHORTSECRET"));
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"scim\": {}, " IDP_OK "}",
	                   "scim.token", "is required");
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"scim\": {\"token\": \"0123456789abcdef0\", "
	                   "\"url\": \"x\"}, " IDP_OK "}",
	                   "scim.url", "");
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"scim\": \"0123456789abcdef0\", " IDP_OK "}",
	                   "scim", "");
}

static void
test_oauth2_mdm_esso(void **state)
{
	struct eb_config *cfg;
	const struct eb_tenant *t;
	char want[512];

	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"oauth2\": {}, " IDP_OK "}",
	                   "oauth2", "apple-oauth2");
	expect_tenant_fail(
	    "{\"id\": \"acme\", \"domains\": [\"a.example\"], \"auth_method\": "
	    "\"apple-oauth2\", \"oauth2\": {\"redirect_uri\": "
	    "\"https://x.example/cb\"}, " IDP_OK "}",
	    "oauth2.redirect_uri", "apple-remotemanagement-user-login");
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"mdm\": {\"profile\": {\"url\": "
	                   "\"https://m.example/p\", \"file\": \"p\"}}, "
	                   "" IDP_OK "}",
	                   "mdm.profile", "exactly one");
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"mdm\": {\"profile\": {}}, " IDP_OK "}",
	                   "mdm.profile", "exactly one");
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"mdm\": {\"use_proxy\": true}, " IDP_OK "}",
	                   "mdm.use_proxy", "needs mdm.upstream");
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"mdm\": {\"signing_cert\": \"c.pem\"}, " IDP_OK
	                   "}",
	                   "mdm.signing_key", "is required");
	expect_tenant_fail(
	    "{\"id\": \"acme\", \"domains\": [\"a.example\"], \"mdm\": "
	    "{\"clients\": [{\"client_id\": \"m\", \"client_secret\": \"1\"}, "
	    "{\"client_id\": \"m\", \"client_secret\": \"2\"}]}, " IDP_OK "}",
	    "mdm.clients[1].client_id", "duplicate");
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"mdm\": {\"clients\": [{\"client_id\": \"m\"}]}, "
	                   "" IDP_OK "}",
	                   "mdm.clients[0].client_secret", "is required");
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"esso\": {\"associated_domains\": []}, " IDP_OK
	                   "}",
	                   "esso.app_store_id", "is required");
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"esso\": {\"app_store_id\": 1, \"developer\": "
	                   "{\"ids\": []}}, " IDP_OK "}",
	                   "esso.developer.ids", "unknown key");

	cfg = load_tenant(
	    "{\"id\": \"acme\", \"domains\": [\"a.example\"], \"auth_method\": "
	    "\"apple-oauth2\", \"oauth2\": {\"client_id\": \"dev\"}, \"mdm\": "
	    "{\"upstream\": \"http://mdm.internal:8080/\", \"profile\": "
	    "{\"file\": \"profiles/p.mobileconfig\"}, \"audience\": \"urn:x\", "
	    "\"clients\": [{\"client_id\": \"m\", \"client_secret\": \"ms\"}], "
	    "\"allow_unauthenticated_device_channel\": true}, \"esso\": "
	    "{\"app_store_id\": 1234567890, \"associated_domains\": "
	    "[\"authsrv:a.example\"], \"developer\": {\"app_ids\": "
	    "[\"TEAM.com.example.app\"]}}, " IDP_OK "}");
	if (cfg == NULL)
		fail_msg("%s %s %s", err.file, err.key, err.reason);
	t = cfg->tenants[0];
	assert_int_equal(t->auth_method, EB_AUTH_OAUTH2);
	assert_string_equal(t->oauth2.client_id, "dev");
	assert_string_equal(t->oauth2.scope, "mdm");
	assert_string_equal(t->mdm.upstream, "http://mdm.internal:8080");
	assert_int_equal(t->mdm.use_proxy, 1);
	snprintf(want, sizeof(want), "%s/tenants/profiles/p.mobileconfig", dir);
	assert_string_equal(t->mdm.profile_file, want);
	assert_null(t->mdm.profile_url);
	assert_string_equal(t->mdm.audience, "urn:x");
	assert_int_equal(t->mdm.nclients, 1);
	assert_string_equal(t->mdm.clients[0].client_secret, "ms");
	assert_non_null(t->esso);
	assert_int_equal(t->esso->app_store_id, 1234567890);
	assert_string_equal(t->esso->developer_app_ids.v[0],
	                    "TEAM.com.example.app");
	eb_config_unref(cfg);
}

/* mdm.device_channel_paths (issue 11): where a bearer-less request may
 * go; only relative paths under /t/{T}/mdm/, and only with the channel. */
static void
test_device_channel_paths(void **state)
{
#define DCP_PRE                                                                \
	"{\"id\": \"acme\", \"domains\": [\"a.example\"], \"mdm\": "           \
	"{\"upstream\": \"http://mdm.internal:8080/\", "                       \
	"\"allow_unauthenticated_device_channel\": true, "                     \
	"\"device_channel_paths\": "
	static const char *const bad[] = {
	    "[\"/checkin\"]",     "[\"mdm/../admin\"]", "[\"./checkin\"]",
	    "[\"mdm//checkin\"]", "[\"checkin?\"]",     "[\"a?b?c\"]",
	    "[\"mdm/%2e%2e\"]",   "[\"a\\\\b\"]",       "[\"?x=1\"]",
	    "[\"mdm/\"]",         "[\"mdm/..\"]"};
	struct eb_config *cfg;
	const struct eb_tenant *t;
	char doc[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(doc, sizeof(doc), DCP_PRE "%s}, " IDP_OK "}", bad[i]);
		expect_tenant_fail(doc, "mdm.device_channel_paths[0]", "");
	}
	expect_tenant_fail(DCP_PRE "[]}, " IDP_OK "}",
	                   "mdm.device_channel_paths", "empty");
	expect_tenant_fail(
	    "{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	    "\"mdm\": {\"upstream\": \"http://m.internal/\", "
	    "\"device_channel_paths\": [\"checkin\"]}, " IDP_OK "}",
	    "mdm.device_channel_paths", "allow_unauthenticated_device_channel");
	cfg = load_tenant(
	    DCP_PRE "[\"mdm/checkin?tenant=acme\", \"server\"]}, " IDP_OK "}");
	if (cfg == NULL)
		fail_msg("%s %s %s", err.file, err.key, err.reason);
	t = cfg->tenants[0];
	assert_int_equal(t->mdm.device_channel_paths.n, 2);
	assert_string_equal(t->mdm.device_channel_paths.v[0],
	                    "mdm/checkin?tenant=acme");
	eb_config_unref(cfg);
#undef DCP_PRE
}

static void
test_providers(void **state)
{
	struct eb_config *cfg;
	const struct eb_idp_config *idp;

	cfg = load_tenant("{\"id\": \"a\", \"domains\": [\"a.example\"], "
	                  "\"idp\": {\"type\": \"entra\", \"tenant_id\": "
	                  "\"0000-1111\", \"client_id\": \"c\"}}");
	assert_non_null(cfg);
	idp = &cfg->tenants[0]->idp;
	assert_string_equal(idp->issuer,
	                    "https://login.microsoftonline.com/0000-1111/v2.0");
	assert_string_equal(
	    ((struct eb_entra_conf *)idp->provider_conf)->graph_url,
	    "https://graph.microsoft.com");
	assert_int_equal(idp->scopes.n, 4);
	eb_config_unref(cfg);

	cfg = load_tenant(
	    "{\"id\": \"a\", \"domains\": [\"a.example\"], \"idp\": {\"type\": "
	    "\"entra\", \"allowed_tenants\": [\"t1\", \"t2\"], \"client_id\": "
	    "\"c\"}}");
	assert_non_null(cfg);
	assert_string_equal(
	    cfg->tenants[0]->idp.issuer,
	    "https://login.microsoftonline.com/organizations/v2.0");
	eb_config_unref(cfg);

	/* an explicit issuer always wins (tests use a local IdP) */
	cfg = load_tenant(
	    "{\"id\": \"a\", \"domains\": [\"a.example\"], \"idp\": {\"type\": "
	    "\"entra\", \"tenant_id\": \"t1\", \"issuer\": "
	    "\"http://127.0.0.1:3000/t1\", \"client_id\": \"c\"}}");
	assert_non_null(cfg);
	assert_string_equal(cfg->tenants[0]->idp.issuer,
	                    "http://127.0.0.1:3000/t1");
	eb_config_unref(cfg);

	cfg = load_tenant("{\"id\": \"a\", \"domains\": [\"a.example\"], "
	                  "\"idp\": {\"type\": \"google\", \"hosted_domain\": "
	                  "\"A.Example\", \"client_id\": \"c\", "
	                  "\"client_auth\": \"client_secret_post\"}}");
	assert_non_null(cfg);
	idp = &cfg->tenants[0]->idp;
	assert_string_equal(idp->issuer, "https://accounts.google.com");
	assert_string_equal(
	    ((struct eb_google_conf *)idp->provider_conf)->hosted_domain,
	    "a.example");
	assert_int_equal(idp->client_auth, EB_CLIENT_AUTH_POST);
	assert_int_equal(idp->scopes.n, 3);
	eb_config_unref(cfg);

	expect_tenant_fail("{\"id\": \"a\", \"domains\": [\"a.example\"], "
	                   "\"idp\": {\"type\": \"entra\", \"client_id\": "
	                   "\"c\"}}",
	                   "idp.tenant_id", "is required");
	expect_tenant_fail("{\"id\": \"a\", \"domains\": [\"a.example\"], "
	                   "\"idp\": {\"type\": \"entra\", \"client_id\": "
	                   "\"c\", \"tenant_id\": \"x\", \"allowed_tenants\": "
	                   "[\"y\"]}}",
	                   "idp.allowed_tenants", "cannot be combined");
}

static void
test_duplicates_across_tenants(void **state)
{
	write_file("config.json", MAIN_OK);
	write_tenant("a.json", TENANT_OK);
	write_tenant("b.json", "{\"id\": \"acme\", \"domains\": "
	                       "[\"b.example\"], " IDP_OK "}");
	expect_fail("tenants/b.json", "id", "a.json");
	assert_non_null(strstr(err.reason, "already used"));

	write_tenant("b.json",
	             "{\"id\": \"beta\", \"domains\": [\"b.example\", "
	             "\"ACME.example.\"], " IDP_OK "}");
	expect_fail("tenants/b.json", "domains[1]", "acme.example");
	assert_non_null(strstr(err.reason, "tenant \"acme\""));
}

static void
test_no_tenants(void **state)
{
	write_file("config.json", MAIN_OK);
	write_tenant("README", "not a tenant");
	write_tenant("x.json.bak", "{");
	write_tenant(".hidden.json", "{");
	expect_fail("config.json", "tenants_dir", "at least one tenant");
	/* the ignored files stay ignored when a tenant is present */
	write_tenant("a.json", TENANT_OK);
	eb_config_unref(load());
	assert_string_equal(err.reason, "");
}

static void
test_secrets(void **state)
{
	struct eb_config *cfg;
	const struct eb_tenant *t;

	write_tenant("secret.txt", "from-a-file\n");
	setenv("EB_TEST_MDM_SECRET", "from-env", 1);
	cfg = load_tenant(
	    "{\"id\": \"acme\", \"domains\": [\"a.example\"], \"idp\": "
	    "{\"type\": \"oidc\", \"issuer\": \"https://i.example\", "
	    "\"client_id\": \"c\", \"client_secret\": \"file:secret.txt\"}, "
	    "\"mdm\": {\"clients\": [{\"client_id\": \"m\", \"client_secret\": "
	    "\"env:EB_TEST_MDM_SECRET\"}]}}");
	if (cfg == NULL)
		fail_msg("%s %s", err.key, err.reason);
	t = cfg->tenants[0];
	assert_string_equal(t->idp.client_secret, "from-a-file");
	assert_string_equal(t->mdm.clients[0].client_secret, "from-env");
	eb_config_unref(cfg);

	unsetenv("EB_TEST_UNSET_SECRET");
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"idp\": {\"type\": \"oidc\", \"issuer\": "
	                   "\"https://i.example\", \"client_id\": \"c\", "
	                   "\"client_secret\": \"env:EB_TEST_UNSET_SECRET\"}}",
	                   "idp.client_secret",
	                   "EB_TEST_UNSET_SECRET is not set");
	setenv("EB_TEST_EMPTY_SECRET", "", 1);
	expect_tenant_fail(
	    "{\"id\": \"acme\", \"domains\": [\"a.example\"], \"mdm\": "
	    "{\"clients\": [{\"client_id\": \"m\", \"client_secret\": "
	    "\"env:EB_TEST_EMPTY_SECRET\"}]}, " IDP_OK "}",
	    "mdm.clients[0].client_secret", "is empty");
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"idp\": {\"type\": \"oidc\", \"issuer\": "
	                   "\"https://i.example\", \"client_id\": \"c\", "
	                   "\"client_secret\": \"file:missing.txt\"}}",
	                   "idp.client_secret", "missing.txt");
	assert_non_null(strstr(err.reason, "cannot read"));

	/* a failed load never quotes an inline secret, even in bad JSON */
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"idp\": {\"type\": \"oidc\", \"issuer\": "
	                   "\"https://i.example\", \"client_id\": \"c\", "
	                   "\"client_secret\": \"TOPSECRET\" \"MORESECRET\"}}",
	                   "", "invalid JSON");
	assert_null(strstr(err.reason, "SECRET"));
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"idp\": {\"type\": \"oidc\", \"issuer\": "
	                   "\"https://i.example\", \"client_id\": \"c\", "
	                   "\"client_secret\": [\"TOPSECRET\"]}}",
	                   "idp.client_secret", "must be a string");
	assert_null(strstr(err.reason, "SECRET"));
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"idp\": {\"type\": \"oidc\", \"issuer\": "
	                   "\"https://i.example\", \"client_id\": \"c\", "
	                   "\"client_secret\": \"TOP\\u0001SECRET\"}}",
	                   "idp.client_secret", "");
	assert_null(strstr(err.reason, "SECRET"));
}

static void
test_secret_refs(void **state)
{
	char reason[256], path[512], *s;

	s = eb_config_secret("literal", NULL, reason, sizeof(reason));
	assert_string_equal(s, "literal");
	eb_free_secret_str(s);
	write_file("crlf", "abc\r\n");
	s = eb_config_secret("file:crlf", dir, reason, sizeof(reason));
	assert_string_equal(s, "abc");
	eb_free_secret_str(s);
	snprintf(path, sizeof(path), "file:%s/crlf", dir);
	s = eb_config_secret(path, "/nonexistent", reason, sizeof(reason));
	assert_string_equal(s, "abc");
	eb_free_secret_str(s);
	write_file("empty", "\n");
	assert_null(
	    eb_config_secret("file:empty", dir, reason, sizeof(reason)));
	assert_non_null(strstr(reason, "empty"));
	assert_null(eb_config_secret("file:", dir, reason, sizeof(reason)));
	assert_null(eb_config_secret("env:1BAD", dir, reason, sizeof(reason)));
	assert_null(eb_config_secret("", dir, reason, sizeof(reason)));
	assert_null(eb_config_secret("file:.", dir, reason, sizeof(reason)));
	assert_non_null(strstr(reason, "regular file"));
}

#define SEAL_OK "\"seal_keys\": [\"0123456789abcdef0123456789ABCDEF\"]"

/*
 * "database" naming PostgreSQL (issue 12): a DSN is kept verbatim, never
 * joined to the config folder; it may come from a file: or env:
 * reference (the password out of the main file); seal_keys is required
 * with it, and migrating is then a separate step by default.
 */
static void
test_database_pg(void **state)
{
	static const char dsn[] =
	    "host=db.internal port=5432 dbname=eb user=eb password=pw-1";
	static const char uri[] = "postgresql://eb:pw-2@db.internal/eb";
	struct eb_config *cfg;
	char body[512];

	(void)state;
	write_tenant("t.json", TENANT_OK);
	snprintf(body, sizeof(body),
	         "{\"public_url\": \"https://eb.example.com/\","
	         " \"database\": \"%s\", " SEAL_OK "}",
	         dsn);
	write_file("config.json", body);
	cfg = load();
	if (cfg == NULL)
		fail_msg("%s: %s: %s", err.file, err.key, err.reason);
	assert_string_equal(cfg->database, dsn);
	assert_int_equal(cfg->database_pg, 1);
	assert_int_equal(cfg->database_migrate, 0);
	assert_int_equal(cfg->database_notify, 1);
	eb_config_unref(cfg);

	snprintf(body, sizeof(body),
	         "{\"public_url\": \"https://eb.example.com/\","
	         " \"database\": \"%s\", \"database_migrate\": true,"
	         " \"database_notify\": false, " SEAL_OK "}",
	         uri);
	write_file("config.json", body);
	assert_non_null(cfg = load());
	assert_string_equal(cfg->database, uri);
	assert_int_equal(cfg->database_migrate, 1);
	assert_int_equal(cfg->database_notify, 0);
	eb_config_unref(cfg);

	/* through a file: reference, relative to the config folder */
	write_file("db.dsn", "postgres://eb:pw-3@db.internal/eb\n");
	write_file("config.json",
	           "{\"public_url\": \"https://eb.example.com/\","
	           " \"database\": \"file:db.dsn\", " SEAL_OK "}");
	assert_non_null(cfg = load());
	assert_string_equal(cfg->database, "postgres://eb:pw-3@db.internal/eb");
	assert_int_equal(cfg->database_pg, 1);
	eb_config_unref(cfg);

	/* a reference must hold a DSN, and the reason shows no value */
	write_file("db.dsn", "/var/db/eb.db\n");
	expect_fail("config.json", "database", "PostgreSQL DSN");
	assert_null(strstr(err.reason, "/var/db"));

	/* no seal_keys: refused, naming the key, the DSN's password unseen */
	snprintf(body, sizeof(body),
	         "{\"public_url\": \"https://eb.example.com/\","
	         " \"database\": \"%s\"}",
	         dsn);
	write_file("config.json", body);
	expect_fail("config.json", "seal_keys", "PostgreSQL");
	assert_null(strstr(err.reason, "pw-1"));

	/* an SQLite path is still joined to the config folder */
	write_file("config.json",
	           "{\"public_url\": \"https://eb.example.com/\","
	           " \"database\": \"eb.db\"}");
	assert_non_null(cfg = load());
	assert_true(ends_with(cfg->database, "/eb.db"));
	assert_true(strncmp(cfg->database, dir, strlen(dir)) == 0);
	assert_int_equal(cfg->database_pg, 0);
	assert_int_equal(cfg->database_migrate, 1);
	eb_config_unref(cfg);
}

static void
test_domains_and_lookup(void **state)
{
	struct eb_config *cfg;

	write_file("config.json", MAIN_OK);
	write_tenant("a.json", "{\"id\": \"acme\", \"domains\": "
	                       "[\"ACME.Example\", \"Mail.Acme.Example.\"], "
	                       "" IDP_OK "}");
	write_tenant("b.json", "{\"id\": \"beta\", \"domains\": "
	                       "[\"beta.example\"], " IDP_OK "}");
	assert_non_null(cfg = load());
	assert_int_equal(cfg->ntenants, 2);
	assert_string_equal(cfg->tenants[0]->id, "acme"); /* sorted by file */
	assert_string_equal(cfg->tenants[0]->domains.v[0], "acme.example");
	assert_string_equal(cfg->tenants[0]->domains.v[1], "mail.acme.example");
	assert_ptr_equal(eb_config_tenant_by_domain(cfg, "acme.example"),
	                 cfg->tenants[0]);
	assert_ptr_equal(eb_config_tenant_by_domain(cfg, "mail.acme.example"),
	                 cfg->tenants[0]);
	assert_ptr_equal(eb_config_tenant_by_domain(cfg, "ACME.EXAMPLE"),
	                 cfg->tenants[0]);
	assert_ptr_equal(eb_config_tenant_by_domain(cfg, "beta.example."),
	                 cfg->tenants[1]);
	assert_null(eb_config_tenant_by_domain(cfg, "example"));
	assert_null(eb_config_tenant_by_domain(cfg, "xacme.example"));
	assert_null(eb_config_tenant_by_domain(cfg, ""));
	assert_ptr_equal(eb_config_tenant(cfg, "beta"), cfg->tenants[1]);
	assert_null(eb_config_tenant(cfg, "BETA"));
	assert_null(eb_config_tenant(cfg, "gamma"));
	eb_config_unref(cfg);
}

static void
test_discovery_bodies(void **state)
{
	static const char byod[] = "{\"Servers\":[{\"Version\":\"mdm-byod\","
	                           "\"BaseURL\":\"https://eb.example.com/base/"
	                           "t/acme/enroll\"}]}";
	static const char adde[] = "{\"Servers\":[{\"Version\":\"mdm-adde\","
	                           "\"BaseURL\":\"https://eb.example.com/base/"
	                           "t/acme/enroll\"}]}";
	struct eb_config *cfg;
	const struct eb_tenant *t;

	write_file("config.json",
	           "{\"public_url\": \"https://eb.example.com/base/\"}");
	write_tenant("a.json", TENANT_OK);
	assert_non_null(cfg = load());
	t = cfg->tenants[0];
	assert_string_equal(t->base_url,
	                    "https://eb.example.com/base/t/acme/enroll");
	assert_int_equal(t->disco_len[EB_MODE_BYOD], sizeof(byod) - 1);
	assert_memory_equal(t->disco_body[EB_MODE_BYOD], byod, sizeof(byod));
	assert_int_equal(t->disco_len[EB_MODE_ADDE], sizeof(adde) - 1);
	assert_memory_equal(t->disco_body[EB_MODE_ADDE], adde, sizeof(adde));
	eb_config_unref(cfg);
}

static void
test_mode_by_family(void **state)
{
	struct eb_config *cfg;
	const struct eb_tenant *t;

	cfg = load_tenant(
	    "{\"id\": \"acme\", \"domains\": [\"a.example\"], \"enrollment\": "
	    "{\"default\": \"adde\", \"by_model_family\": {\"iPhone\": "
	    "\"byod\", \"iPad\": \"byod\", \"Mac\": \"adde\"}}, " IDP_OK "}");
	assert_non_null(cfg);
	t = cfg->tenants[0];
	assert_int_equal(eb_tenant_mode(t, "iPhone"), EB_MODE_BYOD);
	assert_int_equal(eb_tenant_mode(t, "iphone"), EB_MODE_BYOD);
	assert_int_equal(eb_tenant_mode(t, "iPad"), EB_MODE_BYOD);
	assert_int_equal(eb_tenant_mode(t, "Mac"), EB_MODE_ADDE);
	assert_int_equal(eb_tenant_mode(t, "AppleTV"), EB_MODE_ADDE);
	assert_int_equal(eb_tenant_mode(t, "Toaster"), EB_MODE_ADDE);
	assert_int_equal(eb_tenant_mode(t, NULL), EB_MODE_ADDE);
	eb_config_unref(cfg);

	assert_int_equal(eb_model_family_parse("RealityDevice"),
	                 EB_FAMILY_REALITY);
	assert_int_equal(eb_model_family_parse("Watch"), EB_FAMILY_WATCH);
	assert_int_equal(eb_model_family_parse("Vision"), -1);
	assert_int_equal(eb_model_family_parse(NULL), -1);
	assert_string_equal(eb_mode_name(EB_MODE_BYOD), "BYOD");
	assert_string_equal(eb_mode_name(EB_MODE_ADDE), "ADDE");
	assert_string_equal(eb_mode_version(EB_MODE_BYOD), "mdm-byod");
	assert_string_equal(eb_mode_version(EB_MODE_ADDE), "mdm-adde");
}

static void *
ref_worker(void *arg)
{
	struct eb_config *cfg = arg;
	int i;

	for (i = 0; i < 20000; i++)
		eb_config_unref(eb_config_ref(cfg));
	return NULL;
}

static void
test_refcount(void **state)
{
	struct eb_config *cfg = load_tenant(TENANT_OK);
	pthread_t th[4];
	int i;

	assert_non_null(cfg);
	assert_int_equal(cfg->refs, 1);
	assert_ptr_equal(eb_config_ref(cfg), cfg);
	assert_int_equal(cfg->refs, 2);
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, ref_worker, cfg),
		                 0);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(cfg->refs, 2);
	eb_config_unref(cfg);
	/* still usable with one reference left */
	assert_string_equal(cfg->tenants[0]->id, "acme");
	eb_config_unref(cfg); /* frees; ASan reports a leak or double free */
	assert_null(eb_config_ref(NULL));
	eb_config_unref(NULL);
}

static void
test_examples(void **state)
{
	static const char *const names[] = {"entra", "google", "oidc"};
	const char *src = getenv("EB_SOURCE_DIR");
	char main[1024];
	struct eb_config *cfg;
	size_t i;

	if (src == NULL)
		skip();
	setenv("ENTRA_CLIENT_SECRET", "x", 1);
	setenv("GOOGLE_CLIENT_SECRET", "x", 1);
	setenv("OIDC_CLIENT_SECRET", "x", 1);
	setenv("MDM_INTROSPECT_SECRET", "x", 1);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char tdir[512], from[1024], to[1024], buf[65536];
		FILE *in, *out;
		size_t n;

		/* each example alone in a tenants folder */
		snprintf(tdir, sizeof(tdir), "%s/ex-%s", dir, names[i]);
		assert_int_equal(mkdir(tdir, 0700), 0);
		snprintf(from, sizeof(from), "%s/config/examples/%s.json", src,
		         names[i]);
		snprintf(to, sizeof(to), "%s/%s.json", tdir, names[i]);
		assert_non_null(in = fopen(from, "r"));
		assert_non_null(out = fopen(to, "w"));
		n = fread(buf, 1, sizeof(buf), in);
		assert_int_equal(fwrite(buf, 1, n, out), n);
		fclose(in);
		fclose(out);
		snprintf(main, sizeof(main),
		         "{\"public_url\": \"https://eb.example.com\", "
		         "\"tenants_dir\": \"ex-%s\"}",
		         names[i]);
		write_file("config.json", main);
		if ((cfg = load()) == NULL)
			fail_msg("%s: %s %s", names[i], err.key, err.reason);
		assert_string_equal(cfg->tenants[0]->idp.type, names[i]);
		eb_config_unref(cfg);
	}
}

/* Every allocation failing in turn: a clean error, never a crash or leak. */
static void
test_alloc_failures(void **state)
{
	struct eb_config *cfg = NULL;
	long i;

	write_file("config.json", MAIN_OK);
	write_tenant(
	    "a.json",
	    "{\"id\": \"acme\", \"domains\": [\"a.example\", \"b.example\"], "
	    "\"enrollment\": {\"by_model_family\": {\"Mac\": \"adde\"}}, "
	    "\"managed_apple_id\": {\"domain_map\": {\"a.example\": "
	    "\"m.example\"}}, \"access\": {\"require_groups\": [\"g\"]}, "
	    "\"mdm\": {\"upstream\": \"https://m.example\", \"clients\": "
	    "[{\"client_id\": \"m\", \"client_secret\": \"s\"}]}, \"esso\": "
	    "{\"app_store_id\": 1}, " IDP_OK "}");
	for (i = 0; i < 5000 && cfg == NULL; i++) {
		eb_mem_fail_after(i);
		cfg = load();
		eb_mem_fail_after(-1);
		if (cfg == NULL)
			assert_true(err.reason[0] != '\0');
	}
	assert_non_null(cfg);
	eb_config_unref(cfg);
}

static void
test_restrictions(void **state)
{
	struct eb_config *cfg;
	const struct eb_restrictions *r;

	(void)state;
	cfg = load_tenant("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                  "\"restrictions\": {\"max_devices_per_user\": 2, "
	                  "\"min_os_version\": {\"iOS\": \"17.0\", "
	                  "\"macOS\": \"14.6.1\"}, \"model_families\": "
	                  "[\"iPhone\", \"Mac\"]}, " IDP_OK "}");
	if (cfg == NULL)
		fail_msg("%s %s %s", err.file, err.key, err.reason);
	r = &cfg->tenants[0]->restrictions;
	assert_int_equal(r->max_devices_per_user, 2);
	assert_string_equal(r->min_os_version[EB_OS_IOS], "17.0");
	assert_string_equal(r->min_os_version[EB_OS_MACOS], "14.6.1");
	assert_null(r->min_os_version[EB_OS_IPADOS]);
	assert_int_equal(r->families,
	                 (1u << EB_FAMILY_IPHONE) | (1u << EB_FAMILY_MAC));
	eb_config_unref(cfg);
	/* absent: no restriction */
	cfg = load_tenant(
	    "{\"id\": \"acme\", \"domains\": [\"a.example\"], " IDP_OK "}");
	assert_non_null(cfg);
	assert_int_equal(cfg->tenants[0]->restrictions.max_devices_per_user, 0);
	assert_int_equal(cfg->tenants[0]->restrictions.families, 0);
	eb_config_unref(cfg);
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"restrictions\": {\"max_devices\": 2}, " IDP_OK
	                   "}",
	                   "restrictions.max_devices", "");
	expect_tenant_fail(
	    "{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	    "\"restrictions\": {\"max_devices_per_user\": 0}, " IDP_OK "}",
	    "restrictions.max_devices_per_user", "between 1 and");
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"restrictions\": {\"min_os_version\": "
	                   "{\"tvOS\": \"17.0\"}}, " IDP_OK "}",
	                   "restrictions.min_os_version.tvOS", "");
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"restrictions\": {\"min_os_version\": "
	                   "{\"iOS\": \"17.x\"}}, " IDP_OK "}",
	                   "restrictions.min_os_version.iOS",
	                   "numbers separated by dots");
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"restrictions\": {\"min_os_version\": "
	                   "{\"iOS\": 17}}, " IDP_OK "}",
	                   "restrictions.min_os_version.iOS", "");
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"restrictions\": {\"model_families\": "
	                   "[\"iPhone\", \"Vision\"]}, " IDP_OK "}",
	                   "restrictions.model_families[1]",
	                   "unknown model family \"Vision\"");
	expect_tenant_fail("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                   "\"restrictions\": {\"model_families\": []}, " IDP_OK
	                   "}",
	                   "restrictions.model_families", "must not be empty");
}

static void
test_os_version(void **state)
{
	(void)state;
	assert_true(eb_os_version_cmp("17.0", "17") == 0);
	assert_true(eb_os_version_cmp("17.10", "17.9") > 0);
	assert_true(eb_os_version_cmp("16.7.10", "17.0") < 0);
	assert_true(eb_os_version_cmp("14.6.1", "14.6") > 0);
	assert_true(eb_os_version_cmp("17.0 (a)", "17.0") == 0);
	assert_int_equal(eb_os_version_cmp("", "17.0"), -2);
	assert_int_equal(eb_os_version_cmp("x17", "17.0"), -2);
	assert_int_equal(eb_os_version_cmp("17.0", NULL), -2);
	assert_int_equal(eb_os_version_cmp("1234567", "17.0"), -2);
	assert_true(eb_os_version_valid("17"));
	assert_true(eb_os_version_valid("14.6.1"));
	assert_true(eb_os_version_valid("1.2.3.4"));
	assert_false(eb_os_version_valid("1.2.3.4.5"));
	assert_false(eb_os_version_valid("17."));
	assert_false(eb_os_version_valid(".17"));
	assert_false(eb_os_version_valid("17..0"));
	assert_false(eb_os_version_valid("17.0 "));
	assert_false(eb_os_version_valid("123456"));
	assert_false(eb_os_version_valid(""));
}

static void
test_mode_rule(void **state)
{
	struct eb_config *cfg;
	const struct eb_tenant *t;

	(void)state;
	cfg = load_tenant("{\"id\": \"acme\", \"domains\": [\"a.example\"], "
	                  "\"enrollment\": {\"default\": \"byod\", "
	                  "\"by_model_family\": {\"Mac\": \"adde\"}}, " IDP_OK
	                  "}");
	assert_non_null(cfg);
	t = cfg->tenants[0];
	/* discovery: the model-family, or the default without one */
	assert_int_equal(eb_tenant_mode_device(t, "Mac", NULL), EB_MODE_ADDE);
	assert_int_equal(eb_tenant_mode_device(t, NULL, NULL), EB_MODE_BYOD);
	/* the POST: the PRODUCT's family on an OS that sends model-family */
	assert_int_equal(eb_tenant_mode_device(t, "Mac", "14.0"), EB_MODE_ADDE);
	assert_int_equal(eb_tenant_mode_device(t, "Mac", "15.1"), EB_MODE_ADDE);
	/* an older one asked discovery without model-family: the default */
	assert_int_equal(eb_tenant_mode_device(t, "Mac", "13.6"), EB_MODE_BYOD);
	assert_int_equal(eb_tenant_mode_device(t, "iPhone", "18.1"),
	                 EB_MODE_BYOD);
	eb_config_unref(cfg);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_minimal_defaults),
	    T(test_full_main),
	    T(test_listen_list),
	    T(test_schema_key),
	    T(test_public_url),
	    T(test_on_access_lost),
	    T(test_restrictions),
	    T(test_os_version),
	    T(test_mode_rule),
	    T(test_routes),
	    T(test_scim),
	    T(test_branding),
	    T(test_oauth2_mdm_esso),
	    T(test_providers),
	    T(test_duplicates_across_tenants),
	    T(test_no_tenants),
	    T(test_secrets),
	    T(test_secret_refs),
	    T(test_database_pg),
	    T(test_domains_and_lookup),
	    T(test_discovery_bodies),
	    T(test_mode_by_family),
	    T(test_refcount),
	    T(test_examples),
	    T(test_alloc_failures),
	    T(test_device_channel_paths),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
