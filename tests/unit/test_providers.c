/*
 * Identity-provider plug-in tests (providers/): each test writes a tenant
 * configuration into a fresh mkdtemp folder, loads it with the real loader,
 * and drives the provider's hooks the way the OIDC callback does: Entra's
 * single- and multi-tenant issuers, tid allow-list, tid:oid subject and
 * groups overage (Microsoft Graph answered by a tiny HTTP server on
 * 127.0.0.1, or not configured: a clear deny); Google's hd and
 * email_verified; the generic provider's email_verified and extra
 * parameters.
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
#include <unistd.h>

#include <jansson.h>

#include "fx_dir.h"
#include "fx_http.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/mem.h"
#include "identity/identity.h"
#include "providers/provider.h"

#include "fourthidp.h"

#define TID_A "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define TID_B "11111111-2222-3333-4444-555555555555"
#define TID_C "99999999-9999-9999-9999-999999999999"
#define MS    "https://login.microsoftonline.com/"

static char dir[256];
static struct eb_config *cfg;

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

/* Load one tenant "t" whose idp object is idp and mapping object map. */
static const struct eb_tenant *
tenant(const char *idp, const char *map, const char *access)
{
	struct eb_config_error err;
	char body[4096];

	snprintf(body, sizeof(body),
	         "{\"id\": \"t\", \"domains\": [\"contoso.com\"], "
	         "\"idp\": %s%s%s%s%s}",
	         idp, map ? ", \"managed_apple_id\": " : "", map ? map : "",
	         access ? ", \"access\": " : "", access ? access : "");
	write_file("config.json", "{\"public_url\": \"https://eb.example\"}");
	write_file("tenants/t.json", body);
	memset(&err, 0, sizeof(err));
	if (cfg != NULL)
		eb_config_unref(cfg);
	if ((cfg = eb_config_load(
	         (snprintf(body, sizeof(body), "%s/config.json", dir), body),
	         &err)) == NULL)
		fail_msg("config: %s %s %s", err.file, err.key, err.reason);
	return cfg->tenants[0];
}

static int
setup(void **state)
{
	char path[512];

	snprintf(dir, sizeof(dir), "/tmp/eb-providers-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/tenants", dir);
	cfg = NULL;
	return mkdir(path, 0700);
}

static int
teardown(void **state)
{
	if (cfg != NULL)
		eb_config_unref(cfg);
	cfg = NULL;
	return fx_rmtree(dir);
}

/* ---- helpers ----------------------------------------------------------- */

static json_t *
claims_of(const char *text)
{
	json_error_t jerr;
	json_t *c = json_loads(text, 0, &jerr);

	if (c == NULL)
		fail_msg("claims: %s", jerr.text);
	return c;
}

/* Run expected_issuer; returns the verdict, out and why filled. */
static int
issuer_of(const struct eb_tenant *t, const char *meta, const char *claims,
          char *out, size_t outlen, char *why, size_t whylen)
{
	const struct eb_provider_ops *ops = eb_provider_find(t->idp.type);
	json_t *c = claims_of(claims);
	int rc;

	assert_non_null(ops);
	out[0] = why[0] = '\0';
	rc = ops->expected_issuer(t, meta, c, out, outlen, why, whylen);
	json_decref(c);
	return rc;
}

/* Build an identity from claims and run check_identity. */
static int
check_of(const struct eb_tenant *t, const char *claims, struct eb_identity *id,
         char *why, size_t whylen)
{
	const struct eb_provider_ops *ops = eb_provider_find(t->idp.type);
	json_t *c = claims_of(claims);

	assert_non_null(ops);
	eb_identity_init(id);
	assert_int_equal(eb_identity_from_claims(id, t->idp.issuer, c), 0);
	json_decref(c);
	why[0] = '\0';
	return ops->check_identity(t, id, why, whylen);
}

static char *
params_of(const struct eb_tenant *t)
{
	const struct eb_provider_ops *ops = eb_provider_find(t->idp.type);
	struct eb_buf q;

	eb_buf_init(&q, 8192);
	assert_int_equal(eb_buf_addstr(&q, "response_type=code"), 0);
	assert_int_equal(ops->auth_params(t, &q), 0);
	return eb_buf_detach(&q, NULL);
}

/* ---- registry ---------------------------------------------------------- */

static void
test_registry(void **state)
{
	assert_ptr_equal(eb_provider_find("oidc"), &eb_provider_oidc);
	assert_ptr_equal(eb_provider_find("entra"), &eb_provider_entra);
	assert_ptr_equal(eb_provider_find("google"), &eb_provider_google);
	assert_null(eb_provider_find("Entra"));
	assert_null(eb_provider_find("saml"));
	assert_null(eb_provider_find(NULL));
}

/* ---- Entra ID ---------------------------------------------------------- */

#define ENTRA_SINGLE                                                           \
	"{\"type\": \"entra\", \"tenant_id\": \"" TID_A "\", "                 \
	"\"client_id\": \"cid\", \"domain_hint\": \"contoso.com\"}"
#define ENTRA_MULTI                                                            \
	"{\"type\": \"entra\", \"allowed_tenants\": [\"" TID_A "\", "          \
	"\"" TID_B "\"], \"client_id\": \"cid\"}"

static void
test_entra_single_issuer(void **state)
{
	const struct eb_tenant *t = tenant(ENTRA_SINGLE, NULL, NULL);
	char out[512], why[256];

	assert_string_equal(t->idp.issuer, MS TID_A "/v2.0");
	assert_int_equal(issuer_of(t, MS TID_A "/v2.0",
	                           "{\"tid\": \"" TID_A "\"}", out, sizeof(out),
	                           why, sizeof(why)),
	                 EB_PROVIDER_OK);
	assert_string_equal(out, MS TID_A "/v2.0");
	/* GUIDs compare in any case */
	assert_int_equal(issuer_of(t, MS TID_A "/v2.0",
	                           "{\"tid\": \"72F988BF-86F1-41AF-91AB-"
	                           "2D7CD011DB47\"}",
	                           out, sizeof(out), why, sizeof(why)),
	                 EB_PROVIDER_OK);
	/* a token of another tenant */
	assert_int_equal(issuer_of(t, MS TID_A "/v2.0",
	                           "{\"tid\": \"" TID_B "\"}", out, sizeof(out),
	                           why, sizeof(why)),
	                 EB_PROVIDER_DENY);
	assert_non_null(strstr(why, "another Microsoft Entra organisation"));
}

static void
test_entra_explicit_issuer_wins(void **state)
{
	const struct eb_tenant *t = tenant(
	    "{\"type\": \"entra\", \"tenant_id\": \"" TID_A "\", "
	    "\"issuer\": \"http://127.0.0.1:9999/idp\", \"client_id\": \"c\"}",
	    NULL, NULL);
	char out[512], why[256];

	assert_string_equal(t->idp.issuer, "http://127.0.0.1:9999/idp");
	assert_int_equal(issuer_of(t, "http://127.0.0.1:9999/idp",
	                           "{\"tid\": \"" TID_A "\"}", out, sizeof(out),
	                           why, sizeof(why)),
	                 EB_PROVIDER_OK);
	assert_string_equal(out, "http://127.0.0.1:9999/idp");
}

static void
test_entra_multi_issuer(void **state)
{
	const struct eb_tenant *t = tenant(ENTRA_MULTI, NULL, NULL);
	const char *meta = MS "{tenantid}/v2.0";
	char out[512], why[256];

	assert_int_equal(issuer_of(t, meta, "{\"tid\": \"" TID_B "\"}", out,
	                           sizeof(out), why, sizeof(why)),
	                 EB_PROVIDER_OK);
	assert_string_equal(out, MS TID_B "/v2.0");

	/* tid not in allowed_tenants: a clear deny */
	assert_int_equal(issuer_of(t, meta, "{\"tid\": \"" TID_C "\"}", out,
	                           sizeof(out), why, sizeof(why)),
	                 EB_PROVIDER_DENY);
	assert_non_null(strstr(why, TID_C));
	assert_non_null(strstr(why, "not allowed"));
	assert_string_equal(out, "");

	/* no tid at all */
	assert_int_equal(issuer_of(t, meta, "{\"sub\": \"x\"}", out,
	                           sizeof(out), why, sizeof(why)),
	                 EB_PROVIDER_DENY);
	assert_non_null(strstr(why, "tid"));

	/* a tid that would bend the issuer URL */
	assert_int_equal(issuer_of(t, meta, "{\"tid\": \"a/../b\"}", out,
	                           sizeof(out), why, sizeof(why)),
	                 EB_PROVIDER_DENY);

	/* the output buffer is respected */
	assert_int_equal(issuer_of(t, meta, "{\"tid\": \"" TID_A "\"}", out, 20,
	                           why, sizeof(why)),
	                 EB_PROVIDER_FAIL);
}

static void
test_entra_template_without_allow_list(void **state)
{
	/* an "organizations" issuer with no allow-list would admit anyone */
	const struct eb_tenant *t =
	    tenant("{\"type\": \"entra\", \"issuer\": "
	           "\"" MS "organizations/v2.0\", \"client_id\": \"c\"}",
	           NULL, NULL);
	char out[512], why[256];

	assert_int_equal(issuer_of(t, MS "{tenantid}/v2.0",
	                           "{\"tid\": \"" TID_C "\"}", out, sizeof(out),
	                           why, sizeof(why)),
	                 EB_PROVIDER_FAIL);
	assert_non_null(strstr(why, "allowed_tenants"));

	t = tenant("{\"type\": \"entra\", \"tenant_id\": \"common\", "
	           "\"client_id\": \"c\"}",
	           NULL, NULL);
	assert_int_equal(issuer_of(t, MS "{tenantid}/v2.0",
	                           "{\"tid\": \"" TID_C "\"}", out, sizeof(out),
	                           why, sizeof(why)),
	                 EB_PROVIDER_FAIL);
}

static void
test_entra_subject_and_tid(void **state)
{
	const struct eb_tenant *t = tenant(ENTRA_MULTI, NULL, NULL);
	struct eb_identity id;
	char why[256];

	assert_int_equal(
	    check_of(t,
	             "{\"sub\": \"pairwise\", \"tid\": \"" TID_A "\", "
	             "\"oid\": \"o-1\", \"upn\": \"a@contoso.com\", "
	             "\"groups\": [\"g1\"]}",
	             &id, why, sizeof(why)),
	    EB_PROVIDER_OK);
	assert_string_equal(id.subject, TID_A ":o-1");
	assert_string_equal(id.upn, "a@contoso.com");
	assert_int_equal(id.email_verified, -1);
	assert_int_equal(id.groups_known, 1);
	eb_identity_finish(&id);

	/* no oid: the IdP did not send what we key users by */
	assert_int_equal(check_of(t, "{\"sub\": \"s\", \"tid\": \"" TID_A "\"}",
	                          &id, why, sizeof(why)),
	                 EB_PROVIDER_FAIL);
	assert_non_null(strstr(why, "oid"));
	eb_identity_finish(&id);

	/* tid outside the allow-list is refused here too */
	assert_int_equal(check_of(t,
	                          "{\"sub\": \"s\", \"tid\": \"" TID_C
	                          "\", \"oid\": \"o\"}",
	                          &id, why, sizeof(why)),
	                 EB_PROVIDER_DENY);
	eb_identity_finish(&id);
}

static void
test_entra_no_email_verified_needed(void **state)
{
	const struct eb_tenant *t = tenant(ENTRA_SINGLE, NULL, NULL);
	struct eb_identity id;
	char why[256];

	/* email is the mapping claim and Entra sends no email_verified */
	assert_int_equal(check_of(t,
	                          "{\"sub\": \"s\", \"tid\": \"" TID_A
	                          "\", \"oid\": \"o\", "
	                          "\"email\": \"a@contoso.com\"}",
	                          &id, why, sizeof(why)),
	                 EB_PROVIDER_OK);
	eb_identity_finish(&id);
	/* but an email whose domain owner is unverified (nOAuth) is not used */
	assert_int_equal(
	    check_of(t,
	             "{\"sub\": \"s\", \"tid\": \"" TID_A "\", \"oid\": \"o\", "
	             "\"email\": \"ceo@contoso.com\", \"xms_edov\": false}",
	             &id, why, sizeof(why)),
	    EB_PROVIDER_DENY);
	eb_identity_finish(&id);
}

static void
test_entra_auth_params(void **state)
{
	const struct eb_tenant *t =
	    tenant("{\"type\": \"entra\", \"tenant_id\": \"" TID_A "\", "
	           "\"client_id\": \"cid\", \"domain_hint\": \"contoso.com\", "
	           "\"extra_auth_params\": {\"prompt\": \"select account\"}}",
	           NULL, NULL);
	char *q = params_of(t);

	assert_string_equal(q, "response_type=code&domain_hint=contoso.com"
	                       "&prompt=select%20account");
	eb_free(q);
}

#define OVERAGE_CLAIMS                                                         \
	"{\"sub\": \"s\", \"tid\": \"" TID_A "\", \"oid\": \"o\", "            \
	"\"_claim_names\": {\"groups\": \"src1\"}, \"_claim_sources\": "       \
	"{\"src1\": {\"endpoint\": \"https://graph.windows.net/x\"}}}"

static void
test_entra_overage_without_graph(void **state)
{
	const struct eb_tenant *t = tenant(ENTRA_SINGLE, NULL, NULL);
	struct eb_identity id;
	char why[256];

	assert_int_equal(check_of(t, OVERAGE_CLAIMS, &id, why, sizeof(why)),
	                 EB_PROVIDER_OK);
	assert_int_equal(id.groups_known, 0);
	assert_int_equal(eb_provider_entra.resolve_groups(
	                     t, &id, "at", 5, 65536, why, sizeof(why)),
	                 EB_PROVIDER_DENY);
	assert_string_equal(why, "group membership too large for the token "
	                         "and Microsoft Graph lookup is not "
	                         "configured");
	assert_int_equal(id.groups_known, 0);
	eb_identity_finish(&id);

	/* hasgroups: true is the implicit-flow form of the same */
	assert_int_equal(check_of(t,
	                          "{\"sub\": \"s\", \"tid\": \"" TID_A "\", "
	                          "\"oid\": \"o\", \"hasgroups\": true}",
	                          &id, why, sizeof(why)),
	                 EB_PROVIDER_OK);
	assert_int_equal(id.groups_known, 0);
	eb_identity_finish(&id);
}

/* ---- the fake HTTP server (tests/unit/fx) standing in for Graph ------- */

/* A server answering any path with status and body. */
static struct fx_http *
graph_start(int status, const char *body)
{
	struct fx_http *g = fx_http_start();

	fx_http_set(g, "*", status, body, 0);
	return g;
}

static const struct eb_tenant *
graph_tenant(int port)
{
	char idp[512];

	snprintf(idp, sizeof(idp),
	         "{\"type\": \"entra\", \"tenant_id\": \"" TID_A "\", "
	         "\"client_id\": \"cid\", \"graph_groups\": true, "
	         "\"graph_url\": \"http://127.0.0.1:%d/\"}",
	         port);
	return tenant(idp, NULL, NULL);
}

static void
test_entra_overage_with_graph(void **state)
{
	struct fx_http *g;
	char *req;
	const struct eb_tenant *t;
	struct eb_identity id;
	char why[256];

	g = graph_start(200, "{\"@odata.context\": \"x\", \"value\": [\"g-1\", "
	                     "\"6b0a1f2e-0000-4000-8000-000000000001\"]}");
	t = graph_tenant(fx_http_port(g));
	assert_int_equal(check_of(t, OVERAGE_CLAIMS, &id, why, sizeof(why)),
	                 EB_PROVIDER_OK);
	assert_int_equal(id.groups_known, 0);
	assert_int_equal(eb_provider_entra.resolve_groups(
	                     t, &id, "upstream-at", 5, 65536, why, sizeof(why)),
	                 EB_PROVIDER_OK);
	req = fx_http_last(g, "*");
	fx_http_free(g);
	assert_int_equal(id.groups_known, 1);
	assert_int_equal(id.groups.n, 2);
	assert_string_equal(id.groups.v[0], "g-1");
	/* the request Graph saw */
	assert_int_equal(strncmp(req, "POST /v1.0/me/getMemberObjects ", 31),
	                 0);
	assert_non_null(strstr(req, "Bearer upstream-at\r\n"));
	assert_non_null(strstr(req, "{\"securityEnabledOnly\":false}"));
	free(req);
	eb_identity_finish(&id);
}

static void
test_entra_graph_errors(void **state)
{
	struct fx_http *g;
	const struct eb_tenant *t;
	struct eb_identity id;
	char why[256];

	/* Graph refuses: an IdP-side failure, never an allow */
	g = graph_start(403, "{\"error\": {\"code\": \"Authorization\"}}");
	t = graph_tenant(fx_http_port(g));
	assert_int_equal(check_of(t, OVERAGE_CLAIMS, &id, why, sizeof(why)),
	                 EB_PROVIDER_OK);
	assert_int_equal(eb_provider_entra.resolve_groups(
	                     t, &id, "at", 5, 65536, why, sizeof(why)),
	                 EB_PROVIDER_FAIL);
	fx_http_free(g);
	assert_non_null(strstr(why, "403"));
	assert_int_equal(id.groups_known, 0);

	/* an answer larger than allowed */
	g = graph_start(200,
	                "{\"value\": [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]}");
	t = graph_tenant(fx_http_port(g));
	assert_int_equal(eb_provider_entra.resolve_groups(t, &id, "at", 5, 16,
	                                                  why, sizeof(why)),
	                 EB_PROVIDER_FAIL);
	fx_http_free(g);
	assert_int_equal(id.groups_known, 0);

	/* malformed: value is not a list of strings */
	g = graph_start(200, "{\"value\": [1, 2]}");
	t = graph_tenant(fx_http_port(g));
	assert_int_equal(eb_provider_entra.resolve_groups(
	                     t, &id, "at", 5, 65536, why, sizeof(why)),
	                 EB_PROVIDER_FAIL);
	fx_http_free(g);
	assert_int_equal(id.groups_known, 0);
	eb_identity_finish(&id);
}

/* ---- Google Workspace -------------------------------------------------- */

#define GOOGLE                                                                 \
	"{\"type\": \"google\", \"hosted_domain\": \"contoso.com\", "          \
	"\"client_id\": \"cid\"}"

static void
test_google_hd(void **state)
{
	const struct eb_tenant *t = tenant(GOOGLE, NULL, NULL);
	struct eb_identity id;
	char why[256];

	assert_string_equal(t->idp.issuer, "https://accounts.google.com");
	/* a personal account has no hd */
	assert_int_equal(
	    check_of(t,
	             "{\"sub\": \"1\", \"email\": \"a@gmail.com\", "
	             "\"email_verified\": true}",
	             &id, why, sizeof(why)),
	    EB_PROVIDER_DENY);
	assert_non_null(strstr(why, "personal Google account"));
	eb_identity_finish(&id);
	/* another Workspace */
	assert_int_equal(check_of(t,
	                          "{\"sub\": \"1\", \"hd\": \"evil.com\", "
	                          "\"email\": \"a@evil.com\", "
	                          "\"email_verified\": true}",
	                          &id, why, sizeof(why)),
	                 EB_PROVIDER_DENY);
	assert_non_null(strstr(why, "evil.com"));
	eb_identity_finish(&id);
	/* ours, any case */
	assert_int_equal(check_of(t,
	                          "{\"sub\": \"1\", \"hd\": \"Contoso.COM\", "
	                          "\"email\": \"a@contoso.com\", "
	                          "\"email_verified\": true}",
	                          &id, why, sizeof(why)),
	                 EB_PROVIDER_OK);
	assert_string_equal(id.subject, "1");
	eb_identity_finish(&id);
}

static void
test_google_email_verified(void **state)
{
	const struct eb_tenant *t = tenant(GOOGLE, NULL, NULL);
	struct eb_identity id;
	char why[256];

	assert_int_equal(check_of(t,
	                          "{\"sub\": \"1\", \"hd\": \"contoso.com\", "
	                          "\"email\": \"a@contoso.com\", "
	                          "\"email_verified\": false}",
	                          &id, why, sizeof(why)),
	                 EB_PROVIDER_DENY);
	assert_non_null(strstr(why, "not verified"));
	eb_identity_finish(&id);
	/* absent is not good enough for Google */
	assert_int_equal(check_of(t,
	                          "{\"sub\": \"1\", \"hd\": \"contoso.com\", "
	                          "\"email\": \"a@contoso.com\"}",
	                          &id, why, sizeof(why)),
	                 EB_PROVIDER_DENY);
	eb_identity_finish(&id);
}

static void
test_google_params_and_issuer(void **state)
{
	const struct eb_tenant *t = tenant(GOOGLE, NULL, NULL);
	char *q = params_of(t), out[256], why[256];

	assert_string_equal(q, "response_type=code&hd=contoso.com"
	                       "&access_type=offline&prompt=consent");
	eb_free(q);
	/* Google documents both forms of its issuer */
	assert_int_equal(issuer_of(t, "https://accounts.google.com",
	                           "{\"iss\": \"accounts.google.com\"}", out,
	                           sizeof(out), why, sizeof(why)),
	                 EB_PROVIDER_OK);
	assert_string_equal(out, "accounts.google.com");
	assert_int_equal(issuer_of(t, "https://accounts.google.com",
	                           "{\"iss\": \"https://evil.example\"}", out,
	                           sizeof(out), why, sizeof(why)),
	                 EB_PROVIDER_OK);
	assert_string_equal(out, "https://accounts.google.com");

	/* the admin's prompt replaces ours */
	t = tenant("{\"type\": \"google\", \"hosted_domain\": \"contoso.com\", "
	           "\"client_id\": \"cid\", \"extra_auth_params\": "
	           "{\"prompt\": \"select_account consent\"}}",
	           NULL, NULL);
	q = params_of(t);
	assert_string_equal(q, "response_type=code&hd=contoso.com"
	                       "&access_type=offline"
	                       "&prompt=select_account%20consent");
	eb_free(q);
}

/* ---- generic OIDC ------------------------------------------------------ */

#define OIDC                                                                   \
	"{\"type\": \"oidc\", \"issuer\": \"https://idp.example\", "           \
	"\"client_id\": \"cid\", \"extra_auth_params\": "                      \
	"{\"acr_values\": \"urn:mfa phr\", \"kc_idp_hint\": \"a&b=c\"}}"

static void
test_oidc_email_verified(void **state)
{
	const struct eb_tenant *t = tenant(OIDC, NULL, NULL);
	struct eb_identity id;
	char why[256];

	assert_int_equal(
	    check_of(t,
	             "{\"sub\": \"1\", \"email\": \"a@contoso.com\", "
	             "\"email_verified\": false}",
	             &id, why, sizeof(why)),
	    EB_PROVIDER_DENY);
	assert_non_null(strstr(why, "not verified"));
	eb_identity_finish(&id);
	/* some IdPs send the string form */
	assert_int_equal(
	    check_of(t,
	             "{\"sub\": \"1\", \"email\": \"a@contoso.com\", "
	             "\"email_verified\": \"false\"}",
	             &id, why, sizeof(why)),
	    EB_PROVIDER_DENY);
	eb_identity_finish(&id);
	/* absent: accepted */
	assert_int_equal(check_of(t,
	                          "{\"sub\": \"1\", \"email\": "
	                          "\"a@contoso.com\"}",
	                          &id, why, sizeof(why)),
	                 EB_PROVIDER_OK);
	assert_string_equal(id.subject, "1");
	eb_identity_finish(&id);

	/* mapping by upn: an unverified email is not used, so no matter */
	t = tenant(OIDC, "{\"claim\": \"upn\"}", NULL);
	assert_int_equal(check_of(t,
	                          "{\"sub\": \"1\", \"email\": \"a@x.com\", "
	                          "\"upn\": \"a@contoso.com\", "
	                          "\"email_verified\": false}",
	                          &id, why, sizeof(why)),
	                 EB_PROVIDER_OK);
	eb_identity_finish(&id);
	/* ... unless the template reads it */
	t = tenant(OIDC,
	           "{\"claim\": \"upn\", \"template\": "
	           "\"{claim:email}@appleid.contoso.com\"}",
	           NULL);
	assert_int_equal(check_of(t,
	                          "{\"sub\": \"1\", \"email\": \"a@x.com\", "
	                          "\"upn\": \"a@contoso.com\", "
	                          "\"email_verified\": false}",
	                          &id, why, sizeof(why)),
	                 EB_PROVIDER_DENY);
	eb_identity_finish(&id);
}

static void
test_oidc_params_and_issuer(void **state)
{
	const struct eb_tenant *t = tenant(OIDC, NULL, NULL);
	char *q = params_of(t), out[256], why[256];

	assert_string_equal(q, "response_type=code"
	                       "&acr_values=urn%3Amfa%20phr"
	                       "&kc_idp_hint=a%26b%3Dc");
	eb_free(q);
	assert_int_equal(issuer_of(t, "https://idp.example",
	                           "{\"iss\": \"https://other\"}", out,
	                           sizeof(out), why, sizeof(why)),
	                 EB_PROVIDER_OK);
	assert_string_equal(out, "https://idp.example");
	/* a template issuer means nothing to the generic provider */
	assert_int_equal(issuer_of(t, "https://idp.example/{tenantid}",
	                           "{\"tid\": \"x\"}", out, sizeof(out), why,
	                           sizeof(why)),
	                 EB_PROVIDER_FAIL);
}

/* ---- a fourth type, from the tests alone ------------------------------ */

/* Load tenant "t" with idp object idp; it must fail at key with reason. */
static void
tenant_fails(const char *idp, const char *key, const char *reason)
{
	struct eb_config_error err;
	char body[1024], path[512];

	snprintf(body, sizeof(body),
	         "{\"id\": \"t\", \"domains\": [\"contoso.com\"], "
	         "\"idp\": %s}",
	         idp);
	write_file("config.json", "{\"public_url\": \"https://eb.example\"}");
	write_file("tenants/t.json", body);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	memset(&err, 0, sizeof(err));
	assert_null(eb_config_load(path, &err));
	assert_string_equal(err.key, key);
	if (strstr(err.reason, reason) == NULL)
		fail_msg("%s: \"%s\" lacks \"%s\"", key, err.reason, reason);
}

static void
test_fourth_provider(void **state)
{
	const struct eb_tenant *t;
	const struct fourth_conf *fc;
	const char *keys[EB_CFG_MAX_IDP_KEYS];
	size_t i;

	/* unknown before the test registers it */
	assert_null(eb_provider_find("acmeidp"));
	tenant_fails("{\"type\": \"acmeidp\", \"client_id\": \"c\"}",
	             "idp.type", "one of: oidc, entra, google");
	tenant_fails("{\"type\": \"oidc\", \"client_id\": \"c\", "
	             "\"realm\": \"r\"}",
	             "idp.realm", "unknown key");
	assert_int_equal(eb_provider_register(&fourth_provider), 0);
	assert_int_equal(eb_provider_register(&fourth_provider), -1);
	assert_int_equal(eb_provider_register(&eb_provider_entra), -1);
	assert_ptr_equal(eb_provider_find("acmeidp"), &fourth_provider);

	t = tenant("{\"type\": \"acmeidp\", \"client_id\": \"c\", "
	           "\"realm\": \"north\"}",
	           NULL, NULL);
	assert_ptr_equal(t->idp.provider, &fourth_provider);
	assert_string_equal(t->idp.type, "acmeidp");
	assert_string_equal(t->idp.issuer, "https://login.acme.test/north");
	assert_int_equal(t->idp.scopes.n, 4);
	fc = t->idp.provider_conf;
	assert_string_equal(fc->realm, "north");

	/* its key is its own; the others stay theirs */
	tenant_fails("{\"type\": \"acmeidp\", \"client_id\": \"c\"}",
	             "idp.realm", "is required");
	tenant_fails("{\"type\": \"acmeidp\", \"client_id\": \"c\", "
	             "\"realm\": \"a b\"}",
	             "idp.realm", "");
	tenant_fails("{\"type\": \"oidc\", \"issuer\": \"https://i.example\", "
	             "\"client_id\": \"c\", \"realm\": \"north\"}",
	             "idp.realm", "is only valid when idp.type is \"acmeidp\"");
	tenant_fails("{\"type\": \"acmeidp\", \"client_id\": \"c\", "
	             "\"realm\": \"north\", \"hosted_domain\": \"a.example\"}",
	             "idp.hosted_domain",
	             "is only valid when idp.type is \"google\"");
	tenant_fails("{\"type\": \"acmeidp\", \"client_id\": \"c\", "
	             "\"realm\": \"north\", \"saml\": 1}",
	             "idp.saml", "unknown key");

	/* and the key list (enrollbridge config-keys) holds it */
	assert_int_equal(eb_cfg_idp_keys(keys, EB_CFG_MAX_IDP_KEYS), 0);
	for (i = 0; keys[i] != NULL; i++)
		if (strcmp(keys[i], "realm") == 0)
			break;
	assert_non_null(keys[i]);
	assert_string_equal(keys[i + 1], "extra_auth_params");
	assert_null(keys[i + 2]);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_registry),
	    T(test_entra_single_issuer),
	    T(test_entra_explicit_issuer_wins),
	    T(test_entra_multi_issuer),
	    T(test_entra_template_without_allow_list),
	    T(test_entra_subject_and_tid),
	    T(test_entra_no_email_verified_needed),
	    T(test_entra_auth_params),
	    T(test_entra_overage_without_graph),
	    T(test_entra_overage_with_graph),
	    T(test_entra_graph_errors),
	    T(test_google_hd),
	    T(test_google_email_verified),
	    T(test_google_params_and_issuer),
	    T(test_oidc_email_verified),
	    T(test_oidc_params_and_issuer),
	    T(test_fourth_provider), /* last: it registers a type */
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
