/*
 * Managed Apple Account mapping, access policy and the map command: each
 * test writes a tenant configuration into a fresh mkdtemp folder and loads
 * it with the real loader; overrides and audit events go through a real
 * SQLite store in that folder. Covers claim + domain_map, the template
 * with {local}/{domain}/{claim:NAME}, override precedence, the managed
 * domain check, case folding, required groups (including Entra overage),
 * allowed domains, the audit event, and `enrollbridge map` over the
 * sample claims in tests/unit/data/claims/.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "fx_dir.h"
#include "cli/map.h"
#include "core/config.h"
#include "core/mem.h"
#include "identity/identity.h"
#include "identity/mapping.h"
#include "identity/policy.h"
#include "store/store.h"

#define TID "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define G1  "6b0a1f2e-0000-4000-8000-000000000001"

static char dir[256];
static struct eb_config *cfg;
static struct eb_identity id;
static struct eb_mapping_result res;
static struct eb_policy_verdict v;

/* ---- configuration ----------------------------------------------------- */

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

#define OIDC_IDP                                                               \
	"{\"type\": \"oidc\", \"issuer\": \"https://idp.contoso.com\", "       \
	"\"client_id\": \"cid\"}"
#define DOMAIN_MAP  "\"domain_map\": {\"contoso.com\": \"appleid.contoso.com\"}"
#define MAP_DEFAULT "{" DOMAIN_MAP "}"

/* Write tenant "t" (idp, managed_apple_id, access objects; NULL: absent). */
static void
write_tenant(const char *idp, const char *map, const char *access)
{
	char body[4096];

	snprintf(body, sizeof(body),
	         "{\"id\": \"t\", \"domains\": [\"contoso.com\"], "
	         "\"idp\": %s%s%s%s%s}",
	         idp ? idp : OIDC_IDP, map ? ", \"managed_apple_id\": " : "",
	         map ? map : "", access ? ", \"access\": " : "",
	         access ? access : "");
	write_file("config.json", "{\"public_url\": \"https://eb.example\", "
	                          "\"database\": \"eb.db\"}");
	write_file("tenants/t.json", body);
}

static const struct eb_tenant *
tenant(const char *idp, const char *map, const char *access)
{
	struct eb_config_error err;
	char path[512];

	write_tenant(idp, map, access);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	memset(&err, 0, sizeof(err));
	if (cfg != NULL)
		eb_config_unref(cfg);
	if ((cfg = eb_config_load(path, &err)) == NULL)
		fail_msg("config: %s %s %s", err.file, err.key, err.reason);
	return cfg->tenants[0];
}

/* Fill the global identity from claims text. */
static void
identity(const char *claims)
{
	json_error_t jerr;
	json_t *c = json_loads(claims, 0, &jerr);

	if (c == NULL)
		fail_msg("claims: %s", jerr.text);
	eb_identity_finish(&id);
	assert_int_equal(eb_identity_from_claims(&id, "https://idp", c), 0);
	json_decref(c);
}

static struct eb_store *
store_open(void)
{
	struct eb_store *s;
	char err[256];

	s = eb_store_open(NULL, cfg->database, err, sizeof(err));
	if (s == NULL)
		fail_msg("store: %s", err);
	return s;
}

/* Map the global identity (no store); returns the rc. */
static int
map(const struct eb_tenant *t, const char *typed)
{
	eb_mapping_result_finish(&res);
	return eb_mapping_resolve(t, NULL, &id, typed, &res, &v);
}

static int
setup(void **state)
{
	char path[512];

	snprintf(dir, sizeof(dir), "/tmp/eb-mapping-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/tenants", dir);
	cfg = NULL;
	eb_identity_init(&id);
	memset(&res, 0, sizeof(res));
	return mkdir(path, 0700);
}

static int
teardown(void **state)
{
	eb_mapping_result_finish(&res);
	eb_identity_finish(&id);
	if (cfg != NULL)
		eb_config_unref(cfg);
	cfg = NULL;
	return fx_rmtree(dir);
}

/* ---- identity ---------------------------------------------------------- */

static void
test_identity_from_claims(void **state)
{
	json_t *c = json_loads("{\"email\": \"a@b.c\"}", 0, NULL);

	/* sub is required */
	assert_int_equal(eb_identity_from_claims(&id, "i", c), -1);
	assert_null(id.claims);
	json_decref(c);

	identity("{\"sub\": \"s\", \"email\": \"a@b.c\", \"email_verified\": "
	         "\"true\", \"groups\": [\"x\", 3], \"upn\": 5}");
	assert_string_equal(id.issuer, "https://idp");
	assert_string_equal(id.subject, "s");
	assert_int_equal(id.email_verified, 1);
	assert_int_equal(id.groups_known, 0); /* not a list of strings */
	assert_null(id.upn);                  /* not a string */
	assert_null(eb_identity_claim(&id, "upn"));
	assert_string_equal(eb_identity_claim(&id, "email"), "a@b.c");

	/* refilling from the claims it already holds */
	assert_int_equal(eb_identity_from_claims(&id, "again", id.claims), 0);
	assert_string_equal(id.issuer, "again");
	assert_string_equal(id.email, "a@b.c");

	identity("{\"sub\": \"s\", \"groups\": []}");
	assert_int_equal(id.email_verified, -1);
	assert_int_equal(id.groups_known, 1);
	assert_int_equal(id.groups.n, 0);
}

/* ---- mapping ----------------------------------------------------------- */

static void
test_claim_domain_map(void **state)
{
	const struct eb_tenant *t = tenant(NULL, MAP_DEFAULT, NULL);

	identity("{\"sub\": \"s\", \"email\": \"Alice.Smith@Contoso.COM\"}");
	assert_int_equal(map(t, "alice@appleid.contoso.com"), EB_MAPPING_OK);
	assert_string_equal(res.managed_apple_id,
	                    "alice.smith@appleid.contoso.com");
	assert_string_equal(res.source, "claim");
	/* both the IdP login and the typed identifier are kept as sent */
	assert_string_equal(res.idp_login, "Alice.Smith@Contoso.COM");
	assert_string_equal(res.typed, "alice@appleid.contoso.com");
	assert_int_equal(res.store_checked, 0);
	assert_int_equal(v.allow, 1);
}

/* A typed identifier that is not UTF-8 (from a flow started before the
 * sign-in start refused them) is refused, never kept for the grant. */
static void
test_typed_not_utf8(void **state)
{
	const struct eb_tenant *t = tenant(NULL, MAP_DEFAULT, NULL);

	identity("{\"sub\": \"s\", \"email\": \"alice@contoso.com\"}");
	assert_int_equal(map(t, "\xff\xfe"
	                        "alice@appleid.contoso.com"),
	                 EB_MAPPING_DENY);
	assert_string_equal(v.code, "typed_invalid");
	assert_null(res.typed);
	assert_null(res.managed_apple_id);
	assert_int_equal(map(t, "j\xc3\xb6rg@appleid.contoso.com"),
	                 EB_MAPPING_OK);
	assert_string_equal(res.typed, "j\xc3\xb6rg@appleid.contoso.com");
}

static void
test_claim_upn_and_managed_domains(void **state)
{
	const struct eb_tenant *t =
	    tenant(NULL,
	           "{\"claim\": \"upn\", \"managed_domains\": "
	           "[\"contoso.com\"]}",
	           NULL);

	identity("{\"sub\": \"s\", \"email\": \"x@gmail.com\", "
	         "\"upn\": \"Bob@contoso.com\"}");
	assert_int_equal(map(t, NULL), EB_MAPPING_OK);
	assert_string_equal(res.managed_apple_id, "bob@contoso.com");
	assert_string_equal(res.idp_login, "Bob@contoso.com");
	assert_null(res.typed);

	/* no upn: said so, not guessed from another claim */
	identity("{\"sub\": \"s\", \"email\": \"bob@contoso.com\"}");
	assert_int_equal(map(t, NULL), EB_MAPPING_DENY);
	assert_string_equal(v.code, "claim_missing");
	assert_non_null(strstr(v.reason, "\"upn\""));
	assert_null(res.managed_apple_id);

	/* a login that is not an address */
	identity("{\"sub\": \"s\", \"upn\": \"bob\"}");
	assert_int_equal(map(t, NULL), EB_MAPPING_DENY);
	assert_string_equal(v.code, "claim_invalid");
}

static void
test_outside_managed_domains(void **state)
{
	const struct eb_tenant *t = tenant(
	    NULL,
	    "{\"domain_map\": {\"contoso.com\": \"appleid.contoso.com\", "
	    "\"contoso.co.uk\": \"appleid.contoso.com\"}, "
	    "\"managed_domains\": [\"ext.contoso.com\"]}",
	    NULL);

	identity("{\"sub\": \"s\", \"email\": \"eve@fabrikam.com\"}");
	assert_int_equal(map(t, NULL), EB_MAPPING_DENY);
	assert_string_equal(v.code, "domain_not_managed");
	assert_int_equal(v.allow, 0);
	assert_non_null(strstr(v.reason, "eve@fabrikam.com"));
	/* the reason names each managed domain once */
	assert_non_null(
	    strstr(v.reason, "(appleid.contoso.com, ext.contoso.com)"));
	assert_null(res.managed_apple_id);

	/* a managed domain needs no map entry */
	identity("{\"sub\": \"s\", \"email\": \"Eve@EXT.contoso.com\"}");
	assert_int_equal(map(t, NULL), EB_MAPPING_OK);
	assert_string_equal(res.managed_apple_id, "eve@ext.contoso.com");
	/* mapped domains: every key goes to its value */
	identity("{\"sub\": \"s\", \"email\": \"eve@contoso.co.uk\"}");
	assert_int_equal(map(t, NULL), EB_MAPPING_OK);
	assert_string_equal(res.managed_apple_id, "eve@appleid.contoso.com");
}

static void
test_template(void **state)
{
	const struct eb_tenant *t =
	    tenant(NULL,
	           "{\"template\": \"{local}@appleid.{domain}\", "
	           "\"managed_domains\": [\"appleid.contoso.com\"]}",
	           NULL);

	identity("{\"sub\": \"s\", \"email\": \"Carol@Contoso.com\"}");
	assert_int_equal(map(t, NULL), EB_MAPPING_OK);
	assert_string_equal(res.managed_apple_id, "carol@appleid.contoso.com");
	assert_string_equal(res.source, "template");

	t = tenant(
	    NULL,
	    "{\"template\": \"{claim:employee_id}@appleid.contoso.com\", "
	    "\"managed_domains\": [\"appleid.contoso.com\"]}",
	    NULL);
	identity("{\"sub\": \"s\", \"email\": \"carol@contoso.com\", "
	         "\"employee_id\": \"E1042\"}");
	assert_int_equal(map(t, "carol@contoso.com"), EB_MAPPING_OK);
	assert_string_equal(res.managed_apple_id, "e1042@appleid.contoso.com");
	assert_string_equal(res.idp_login, "carol@contoso.com");
	assert_string_equal(res.typed, "carol@contoso.com");

	/* the named claim is missing */
	identity("{\"sub\": \"s\", \"email\": \"carol@contoso.com\"}");
	assert_int_equal(map(t, NULL), EB_MAPPING_DENY);
	assert_string_equal(v.code, "template_claim_missing");
	assert_non_null(strstr(v.reason, "employee_id"));

	/* a claim value cannot smuggle in another domain */
	identity("{\"sub\": \"s\", \"employee_id\": \"x@evil.com#\"}");
	assert_int_equal(map(t, NULL), EB_MAPPING_DENY);
	assert_string_equal(v.code, "address_invalid");
	identity("{\"sub\": \"s\", \"employee_id\": \"a b\"}");
	assert_int_equal(map(t, NULL), EB_MAPPING_DENY);
	assert_string_equal(v.code, "address_invalid");
}

static void
test_override_wins(void **state)
{
	const struct eb_tenant *t = tenant(NULL, MAP_DEFAULT, NULL);
	struct eb_store_mapping m = {
	    .tenant = "t",
	    .subject = "s-1",
	    .managed_apple_id = "Boss@AppleID.Contoso.com",
	    .note = "renamed",
	    .created = 1,
	    .updated = 1,
	};
	struct eb_store *s = store_open();

	assert_int_equal(eb_store_mapping_put(s, &m), EB_STORE_OK);
	identity("{\"sub\": \"s-1\", \"email\": \"alice@contoso.com\"}");
	assert_int_equal(eb_mapping_resolve(t, s, &id, NULL, &res, &v),
	                 EB_MAPPING_OK);
	assert_string_equal(res.managed_apple_id, "boss@appleid.contoso.com");
	assert_string_equal(res.source, "override");
	assert_string_equal(res.idp_login, "alice@contoso.com");
	assert_int_equal(res.store_checked, 1);
	eb_mapping_result_finish(&res);

	/* another person (or tenant) is not overridden */
	identity("{\"sub\": \"s-2\", \"email\": \"alice@contoso.com\"}");
	assert_int_equal(eb_mapping_resolve(t, s, &id, NULL, &res, &v),
	                 EB_MAPPING_OK);
	assert_string_equal(res.source, "claim");
	eb_mapping_result_finish(&res);

	/* an override outside the managed domains is refused too */
	m.subject = "s-3";
	m.managed_apple_id = "x@gmail.com";
	assert_int_equal(eb_store_mapping_put(s, &m), EB_STORE_OK);
	identity("{\"sub\": \"s-3\", \"email\": \"alice@contoso.com\"}");
	assert_int_equal(eb_mapping_resolve(t, s, &id, NULL, &res, &v),
	                 EB_MAPPING_DENY);
	assert_string_equal(v.code, "domain_not_managed");
	m.subject = "s-4";
	m.managed_apple_id = "not an address";
	assert_int_equal(eb_store_mapping_put(s, &m), EB_STORE_OK);
	identity("{\"sub\": \"s-4\", \"email\": \"alice@contoso.com\"}");
	assert_int_equal(eb_mapping_resolve(t, s, &id, NULL, &res, &v),
	                 EB_MAPPING_DENY);
	assert_string_equal(v.code, "override_invalid");
	eb_store_close(s);
}

static void
test_address_syntax(void **state)
{
	assert_true(eb_mapping_address_ok("a.b+c@appleid.contoso.com"));
	assert_true(eb_mapping_address_ok("o'neil@contoso.com"));
	assert_false(eb_mapping_address_ok("@contoso.com"));
	assert_false(eb_mapping_address_ok("a@"));
	assert_false(eb_mapping_address_ok("a@@contoso.com"));
	assert_false(eb_mapping_address_ok("a@b@contoso.com"));
	assert_false(eb_mapping_address_ok(".a@contoso.com"));
	assert_false(eb_mapping_address_ok("a.@contoso.com"));
	assert_false(eb_mapping_address_ok("a..b@contoso.com"));
	assert_false(eb_mapping_address_ok("a b@contoso.com"));
	assert_false(eb_mapping_address_ok("a\"b@contoso.com"));
	assert_false(eb_mapping_address_ok("a@contoso.com."));
	assert_false(eb_mapping_address_ok("a@localhost"));
	assert_false(eb_mapping_address_ok("a@1.2.3.4"));
	assert_false(eb_mapping_address_ok(
	    "a12345678901234567890123456789012345678901234567890123456789012345"
	    "@contoso.com"));
}

/* Every allocation of a mapping failing in turn: a refusal, never a crash,
 * a leak or an account. */
static void
test_mapping_alloc_failures(void **state)
{
	static const char *const maps[] = {
	    MAP_DEFAULT,
	    "{\"template\": \"{claim:employee_id}.{local}@appleid.{domain}\", "
	    "\"managed_domains\": [\"appleid.contoso.com\"]}",
	};
	const struct eb_tenant *t;
	size_t i;
	long n;
	int rc;

	for (i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		t = tenant(NULL, maps[i], NULL);
		identity("{\"sub\": \"s\", \"email\": \"a@contoso.com\", "
		         "\"employee_id\": \"e1\"}");
		for (n = 0; n < 1000; n++) {
			eb_mapping_result_finish(&res);
			eb_mem_fail_after(n);
			rc = eb_mapping_resolve(t, NULL, &id, "typed@x.com",
			                        &res, &v);
			eb_mem_fail_after(-1);
			if (rc == EB_MAPPING_OK)
				break;
			assert_int_equal(v.allow, 0);
			assert_null(res.managed_apple_id);
		}
		assert_int_equal(rc, EB_MAPPING_OK);
		assert_true(n > 2);
		assert_non_null(
		    strstr(res.managed_apple_id, "a@appleid.contoso"));
	}
}

/* ---- policy ------------------------------------------------------------ */

static void
test_policy_groups(void **state)
{
	const struct eb_tenant *t =
	    tenant(NULL, MAP_DEFAULT,
	           "{\"require_groups\": [\"apple-devices\", \"" G1 "\"]}");

	identity("{\"sub\": \"s\", \"groups\": [\"staff\", "
	         "\"apple-devices\"]}");
	assert_int_equal(eb_policy_needs_groups(t, &id), 0);
	assert_int_equal(eb_policy_check(t, &id, NULL, &v), 0);
	assert_int_equal(v.allow, 1);
	assert_string_equal(v.code, "ok");

	/* names are exact */
	identity("{\"sub\": \"s\", \"groups\": [\"Apple-Devices\"]}");
	assert_int_equal(eb_policy_check(t, &id, NULL, &v), -1);
	assert_string_equal(v.code, "group_required");
	assert_int_equal(v.allow, 0);
	assert_true(v.hint[0] != '\0');

	/* GUIDs are not case-sensitive */
	identity("{\"sub\": \"s\", \"groups\": "
	         "[\"6B0A1F2E-0000-4000-8000-000000000001\"]}");
	assert_int_equal(eb_policy_check(t, &id, NULL, &v), 0);

	/* no groups in the token */
	identity("{\"sub\": \"s\"}");
	assert_int_equal(eb_policy_needs_groups(t, &id), 1);
	assert_int_equal(eb_policy_check(t, &id, NULL, &v), -1);
	assert_string_equal(v.code, "groups_unknown");

	/* Entra overage left unresolved */
	identity("{\"sub\": \"s\", \"_claim_names\": {\"groups\": \"src1\"}}");
	assert_int_equal(eb_policy_check(t, &id, NULL, &v), -1);
	assert_string_equal(v.code, "groups_overage");
	assert_non_null(strstr(v.reason, "too large"));

	/* no groups required: none needed */
	t = tenant(NULL, MAP_DEFAULT, NULL);
	assert_int_equal(eb_policy_needs_groups(t, &id), 0);
	assert_int_equal(eb_policy_check(t, &id, NULL, &v), 0);
}

static void
test_policy_domains(void **state)
{
	const struct eb_tenant *t = tenant(
	    NULL,
	    "{\"domain_map\": {\"contoso.com\": \"appleid.contoso.com\", "
	    "\"fabrikam.com\": \"appleid.contoso.com\"}}",
	    "{\"allowed_domains\": [\"contoso.com\"]}");

	identity("{\"sub\": \"s\", \"email\": \"a@Contoso.com\"}");
	assert_int_equal(map(t, NULL), EB_MAPPING_OK);
	assert_int_equal(eb_policy_check(t, &id, &res, &v), 0);

	/* maps fine, but the IdP login's domain is not allowed */
	identity("{\"sub\": \"s\", \"email\": \"a@fabrikam.com\"}");
	assert_int_equal(map(t, NULL), EB_MAPPING_OK);
	assert_int_equal(eb_policy_check(t, &id, &res, &v), -1);
	assert_string_equal(v.code, "domain_not_allowed");
	assert_non_null(strstr(v.reason, "fabrikam.com"));

	/* nothing to check */
	assert_int_equal(eb_policy_check(t, &id, NULL, &v), -1);
	assert_string_equal(v.code, "no_login");
}

static void
test_policy_audit(void **state)
{
	const struct eb_tenant *t = tenant(NULL, MAP_DEFAULT, NULL);
	struct eb_store_audit_list l;
	struct eb_store *s = store_open();
	size_t i;

	identity("{\"sub\": \"s-9\", \"email\": \"a@contoso.com\"}");
	assert_int_equal(map(t, "typed@appleid.contoso.com"), EB_MAPPING_OK);
	assert_int_equal(eb_policy_check(t, &id, &res, &v), 0);
	assert_int_equal(eb_policy_audit(s, t, &id, &res, NULL, &v, 100), 0);
	eb_policy_deny(&v, "group_required", NULL, "no \"group\"\n");
	assert_int_equal(eb_policy_audit(s, t, &id, &res, NULL, &v, 101), 0);

	memset(&l, 0, sizeof(l));
	assert_int_equal(eb_store_audit_list(s, "t", 10, &l), EB_STORE_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].event, "login.deny");
	assert_string_equal(l.v[1].event, "login.allow");
	assert_string_equal(l.v[1].subject, "s-9");
	assert_non_null(strstr(
	    l.v[1].detail, "\"managed_apple_id\":\"a@appleid.contoso.com\""));
	assert_non_null(
	    strstr(l.v[1].detail, "\"typed\":\"typed@appleid.contoso.com\""));
	assert_non_null(strstr(l.v[1].detail, "\"rule\":\"claim\""));
	/* the reason is escaped JSON (control characters replaced) */
	assert_non_null(strstr(l.v[0].detail, "\"code\":\"group_required\""));
	assert_non_null(strstr(l.v[0].detail, "no \\\"group\\\"?"));
	for (i = 0; i < 2; i++) {
		json_t *d = json_loads(l.v[i].detail, 0, NULL);

		assert_non_null(d); /* valid JSON */
		json_decref(d);
	}
	eb_store_audit_list_finish(&l);
	eb_store_close(s);
}

/* ---- the map command --------------------------------------------------- */

/* Run `map` with stdout captured into out; returns its exit code. */
static int
run_map(const char *claims_file, const char *typed, char *out, size_t outlen)
{
	char cpath[512], claims[1024], opath[512];
	const char *src = getenv("EB_SOURCE_DIR");
	char here[512];
	char *argv[10];
	int argc = 0, saved, fd, rc;
	ssize_t n;

	snprintf(cpath, sizeof(cpath), "%s/config.json", dir);
	if (claims_file[0] == '/')
		snprintf(claims, sizeof(claims), "%s", claims_file);
	else {
		if (src == NULL) { /* run by hand: beside this source file */
			snprintf(here, sizeof(here), "%s", __FILE__);
			if (strstr(here, "/tests/unit/") != NULL)
				*strstr(here, "/tests/unit/") = '\0';
			src = here;
		}
		snprintf(claims, sizeof(claims), "%s/tests/unit/data/claims/%s",
		         src, claims_file);
	}
	snprintf(opath, sizeof(opath), "%s/out.txt", dir);
	argv[argc++] = "map";
	argv[argc++] = "-c";
	argv[argc++] = cpath;
	argv[argc++] = "--tenant";
	argv[argc++] = "t";
	argv[argc++] = "--claims";
	argv[argc++] = claims;
	if (typed != NULL) {
		argv[argc++] = "--typed";
		argv[argc++] = (char *)typed;
	}
	argv[argc] = NULL;

	fflush(stdout);
	saved = dup(1);
	fd = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 1);
	close(fd);
	rc = eb_cli_map(argc, argv);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);

	fd = open(opath, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, out, outlen - 1);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	return rc;
}

#define ENTRA_IDP                                                              \
	"{\"type\": \"entra\", \"tenant_id\": \"" TID "\", \"client_id\": "    \
	"\"cid\"}"

static void
test_cli_map(void **state)
{
	char out[4096];
	struct eb_store_mapping m = {
	    .tenant = "t",
	    .subject = TID ":00000000-0000-0000-66f3-3332eca7ea81",
	    .managed_apple_id = "alice@appleid.contoso.com",
	};
	struct eb_store *s;

	tenant(ENTRA_IDP, "{\"claim\": \"upn\", " DOMAIN_MAP "}",
	       "{\"require_groups\": [\"" G1 "\"]}");
	/* allowed, no database yet: overrides skipped and said so */
	assert_int_equal(run_map("entra-user.json", "alice@appleid.contoso.com",
	                         out, sizeof(out)),
	                 0);
	assert_non_null(strstr(out, "overrides: skipped"));
	assert_non_null(
	    strstr(out, "managed_apple_id: alice.smith@appleid.contoso.com\n"));
	assert_non_null(strstr(out, "rule: claim\n"));
	assert_non_null(strstr(out, "decision: allow\n"));
	assert_non_null(strstr(out, "idp_subject: " TID
	                            ":00000000-0000-0000-66f3-3332eca7ea81\n"));
	assert_int_equal(access(cfg->database, F_OK), -1); /* not created */

	/* the override, once the database exists */
	s = store_open();
	assert_int_equal(eb_store_mapping_put(s, &m), EB_STORE_OK);
	eb_store_close(s);
	assert_int_equal(run_map("entra-user.json", NULL, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "overrides: checked"));
	assert_non_null(
	    strstr(out, "managed_apple_id: alice@appleid.contoso.com\n"));
	assert_non_null(strstr(out, "rule: override\n"));

	/* overage with no Graph: denied, with the reason */
	assert_int_equal(run_map("entra-overage.json", NULL, out, sizeof(out)),
	                 1);
	assert_non_null(strstr(out, "decision: deny\n"));
	assert_non_null(strstr(out, "code: groups_overage\n"));

	/* another tenant's token */
	assert_int_equal(
	    run_map("entra-other-tenant.json", NULL, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "code: idp_rule\n"));

	/* a guest of another domain maps outside the managed domains */
	tenant(ENTRA_IDP, "{\"claim\": \"preferred_username\", " DOMAIN_MAP "}",
	       NULL);
	assert_int_equal(run_map("entra-guest.json", NULL, out, sizeof(out)),
	                 1);
	assert_non_null(strstr(out, "code: domain_not_managed\n"));
}

static void
test_cli_map_google_oidc(void **state)
{
	char out[4096];

	tenant("{\"type\": \"google\", \"hosted_domain\": \"contoso.com\", "
	       "\"client_id\": \"c\"}",
	       MAP_DEFAULT, NULL);
	assert_int_equal(run_map("google-user.json", NULL, out, sizeof(out)),
	                 0);
	assert_non_null(
	    strstr(out, "managed_apple_id: dana@appleid.contoso.com\n"));
	assert_int_equal(
	    run_map("google-personal.json", NULL, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "personal Google account"));
	assert_int_equal(
	    run_map("google-unverified.json", NULL, out, sizeof(out)), 1);

	tenant(
	    NULL,
	    "{\"template\": \"{claim:employee_number}@appleid.contoso.com\", "
	    "\"managed_domains\": [\"appleid.contoso.com\"]}",
	    "{\"require_groups\": [\"apple-devices\"]}");
	assert_int_equal(run_map("oidc-user.json", NULL, out, sizeof(out)), 0);
	assert_non_null(
	    strstr(out, "managed_apple_id: e1042@appleid.contoso.com\n"));
	assert_non_null(strstr(out, "rule: template\n"));
	assert_int_equal(
	    run_map("oidc-unverified.json", NULL, out, sizeof(out)),
	    0); /* the template does not read the email */

	tenant(NULL, MAP_DEFAULT, NULL);
	assert_int_equal(
	    run_map("oidc-unverified.json", NULL, out, sizeof(out)), 1);
	assert_int_equal(
	    run_map("oidc-other-domain.json", NULL, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "code: domain_not_managed\n"));
}

static void
test_cli_map_usage(void **state)
{
	char out[4096], bad[512];
	char *argv[] = {"map", "-c", "x", NULL};

	tenant(NULL, MAP_DEFAULT, NULL);
	assert_int_equal(eb_cli_map(3, argv), 2); /* --tenant missing */
	snprintf(bad, sizeof(bad), "%s/bad.json", dir);
	write_file("bad.json", "[1, 2]");
	assert_int_equal(run_map(bad, NULL, out, sizeof(out)), 2);
	write_file("bad.json", "{\"email\": \"a@contoso.com\"}"); /* no sub */
	assert_int_equal(run_map(bad, NULL, out, sizeof(out)), 2);
	assert_int_equal(run_map("no-such.json", NULL, out, sizeof(out)), 2);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_identity_from_claims),
	    T(test_claim_domain_map),
	    T(test_claim_upn_and_managed_domains),
	    T(test_typed_not_utf8),
	    T(test_outside_managed_domains),
	    T(test_template),
	    T(test_override_wins),
	    cmocka_unit_test(test_address_syntax),
	    T(test_mapping_alloc_failures),
	    T(test_policy_groups),
	    T(test_policy_domains),
	    T(test_policy_audit),
	    T(test_cli_map),
	    T(test_cli_map_google_oidc),
	    T(test_cli_map_usage),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
