/*
 * Unit tests of src/oidc/: discovery-document checks, the URL rule, PKCE
 * (RFC 7636 appendix B), the authorization URL, every ID-token check
 * (alg none, HS256, alg allow-list, signature, iss, aud, azp, exp, iat,
 * nbf, nonce, sub), the JWKS refresh on an unknown kid and its rate limit,
 * the metadata cache serving a stale copy while the IdP is down, and the
 * code exchange and refresh against the fake HTTP server of tests/unit/fx
 * on 127.0.0.1, which counts the requests it gets and keeps the last one
 * so client authentication can be checked.
 * RSA tokens are signed here with OpenSSL, ES256 ones with src/jose.
 */
#define _GNU_SOURCE /* strcasestr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include "fx_http.h"

#include "core/buf.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/str.h"
#include "jose/b64.h"
#include "jose/jose.h"
#include "core/clock.h"
#include "oidc/oidc.h"
#include "oidc/oidc_int.h"

#define CLIENT_ID     "client-1"
#define CLIENT_SECRET "s3cr3t:&"
#define NONCE         "n-0S6_WzA2Mj"
#define ISS_STATIC    "https://idp.test"

/* ---- keys and tokens ---------------------------------------------------- */

static EVP_PKEY *rsa1, *rsa2;
static struct eb_jose_key *ec1, *ec2;

static char *
b64(const void *p, size_t n)
{
	char *s = eb_b64_url_encode(p, n);

	assert_non_null(s);
	return s;
}

static char *
bn_b64(EVP_PKEY *pk, const char *param)
{
	BIGNUM *bn = NULL;
	unsigned char buf[1024];
	int n;

	assert_int_equal(EVP_PKEY_get_bn_param(pk, param, &bn), 1);
	n = BN_bn2bin(bn, buf);
	BN_free(bn);
	return b64(buf, (size_t)n);
}

static char *
rsa_jwk(EVP_PKEY *pk, const char *kid)
{
	char *n = bn_b64(pk, OSSL_PKEY_PARAM_RSA_N);
	char *e = bn_b64(pk, OSSL_PKEY_PARAM_RSA_E);
	struct eb_buf b;

	eb_buf_init(&b, 1 << 20);
	eb_buf_printf(
	    &b,
	    "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\",\"kid\":\"%s\","
	    "\"use\":\"sig\",\"alg\":\"RS256\"}",
	    n, e, kid);
	eb_free(n);
	eb_free(e);
	return eb_buf_detach(&b, NULL);
}

/* {"keys":[...]} of the public JWKs of the keys given (NULL-terminated:
 * EC keys as eb_jose_key, then "rsa1" / "rsa2" names). */
static char *
jwks_of(struct eb_jose_key *a, struct eb_jose_key *b, int with_rsa1)
{
	struct eb_buf d;
	char *s;
	int first = 1;

	eb_buf_init(&d, 1 << 20);
	eb_buf_addstr(&d, "{\"keys\":[");
	if (a != NULL) {
		s = eb_jose_key_public_json(a);
		eb_buf_printf(&d, "%s", s);
		eb_free(s);
		first = 0;
	}
	if (b != NULL) {
		s = eb_jose_key_public_json(b);
		eb_buf_printf(&d, "%s%s", first ? "" : ",", s);
		eb_free(s);
		first = 0;
	}
	if (with_rsa1) {
		s = rsa_jwk(rsa1, "rsa1");
		eb_buf_printf(&d, "%s%s", first ? "" : ",", s);
		eb_free(s);
	}
	eb_buf_addstr(&d, "]}");
	return eb_buf_detach(&d, NULL);
}

static char *
rsa_token(EVP_PKEY *pk, const char *hdr, json_t *claims)
{
	char *payload = json_dumps(claims, JSON_COMPACT);
	char *h = b64(hdr, strlen(hdr)), *p = b64(payload, strlen(payload));
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	struct eb_buf b;
	char *s;

	eb_buf_init(&b, 1 << 20);
	eb_buf_printf(&b, "%s.%s", h, p);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pk),
	                 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &siglen,
	                                (const unsigned char *)b.data, b.len),
	                 1);
	EVP_MD_CTX_free(ctx);
	s = b64(sig, siglen);
	eb_buf_printf(&b, ".%s", s);
	eb_free(s);
	eb_free(h);
	eb_free(p);
	free(payload);
	return eb_buf_detach(&b, NULL);
}

/* header.payload.sig with the given raw signature. */
static char *
raw_token(const char *hdr, json_t *claims, const void *sig, size_t siglen)
{
	char *payload = json_dumps(claims, JSON_COMPACT);
	char *h = b64(hdr, strlen(hdr)), *p = b64(payload, strlen(payload));
	struct eb_buf b;
	char *s = siglen ? b64(sig, siglen) : NULL;

	eb_buf_init(&b, 1 << 20);
	eb_buf_printf(&b, "%s.%s.%s", h, p, s ? s : "");
	eb_free(s);
	eb_free(h);
	eb_free(p);
	free(payload);
	return eb_buf_detach(&b, NULL);
}

static json_t *
claims_for(const char *iss)
{
	int64_t now = (int64_t)time(NULL);
	json_t *c =
	    json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:b}", "iss", iss,
	              "sub", "user-1", "aud", CLIENT_ID, "exp",
	              (json_int_t)(now + 300), "iat", (json_int_t)now, "nonce",
	              NONCE, "email", "alice@example.com", "email_verified", 1);

	assert_non_null(c);
	return c;
}

static char *
es_token(struct eb_jose_key *k, json_t *claims)
{
	char *t = eb_jose_key_sign(k, NULL, claims);

	assert_non_null(t);
	return t;
}

/* ---- fixtures ------------------------------------------------------------ */

static char *scopes_v[] = {"openid", "email"};

static void
tenant_init(struct eb_tenant *t, const char *issuer)
{
	memset(t, 0, sizeof(*t));
	t->id = "acme";
	t->idp.type = "oidc";
	t->idp.issuer = (char *)issuer;
	t->idp.client_id = CLIENT_ID;
	t->idp.client_secret = CLIENT_SECRET;
	t->idp.scopes.v = scopes_v;
	t->idp.scopes.n = 2;
	t->idp.client_auth = EB_CLIENT_AUTH_BASIC;
}

static char *
metadata_doc(const char *base, const char *extra)
{
	struct eb_buf b;

	eb_buf_init(&b, 1 << 16);
	eb_buf_printf(
	    &b,
	    "{\"issuer\":\"%s\",\"authorization_endpoint\":\"%s/auth\","
	    "\"token_endpoint\":\"%s/token\",\"jwks_uri\":\"%s/jwks\","
	    "\"userinfo_endpoint\":\"%s/userinfo\","
	    "\"id_token_signing_alg_values_supported\":[\"RS256\",\"ES256\","
	    "\"HS256\",\"none\"]%s}",
	    base, base, base, base, base, extra ? extra : "");
	return eb_buf_detach(&b, NULL);
}

/* A running IdP double with metadata, JWKS (ec1 + rsa1), and an oidc
 * context (with metrics) pointed at it. */
struct idp {
	struct fx_http *srv;
	struct eb_oidc *o;
	struct eb_metrics *metrics;
	struct eb_tenant t;
	struct eb_clock clock; /* o's; the tests move it */
};

static struct idp *
idp_start(int timeout, size_t max_bytes, size_t max_keys)
{
	struct idp *d = calloc(1, sizeof(*d));
	struct eb_oidc_opts opts = {0};
	char *doc;

	assert_non_null(d);
	d->srv = fx_http_start();
	doc = metadata_doc(fx_http_base(d->srv), NULL);
	fx_http_set(d->srv, "/.well-known/openid-configuration", 200, doc, 0);
	eb_free(doc);
	doc = jwks_of(ec1, NULL, 1);
	fx_http_set(d->srv, "/jwks", 200, doc, 0);
	eb_free(doc);
	d->metrics = eb_metrics_create(NULL, 0);
	opts.timeout = timeout;
	opts.max_bytes = max_bytes;
	opts.jwks_max_keys = max_keys;
	opts.metadata_ttl = 600;
	opts.min_refresh_interval = 30;
	opts.metrics = d->metrics;
	opts.clock = &d->clock;
	d->o = eb_oidc_create(&opts);
	assert_non_null(d->o);
	tenant_init(&d->t, fx_http_base(d->srv));
	return d;
}

static void
idp_free(struct idp *d)
{
	eb_oidc_destroy(d->o);
	eb_metrics_destroy(d->metrics);
	fx_http_free(d->srv);
	free(d);
}

static double
metric(struct idp *d, const char *name, const char *labels)
{
	return eb_metrics_get(d->metrics, name, labels);
}

static int
group_setup(void **state)
{
	rsa1 = EVP_RSA_gen(2048);
	rsa2 = EVP_RSA_gen(2048);
	ec1 = eb_jose_key_generate();
	ec2 = eb_jose_key_generate();
	return rsa1 && rsa2 && ec1 && ec2 ? 0 : -1;
}

static int
group_teardown(void **state)
{
	EVP_PKEY_free(rsa1);
	EVP_PKEY_free(rsa2);
	eb_jose_key_destroy(ec1);
	eb_jose_key_destroy(ec2);
	return 0;
}

/* ---- metadata parsing and URLs ------------------------------------------- */

static void
test_url_rule(void **state)
{
	static const char *good[] = {
	    "https://idp.example.com",   "https://idp.example.com:8443/a?b=c",
	    "http://127.0.0.1:3000/x",   "http://127.255.0.9/",
	    "http://localhost:80/x",     "http://[::1]:9/x",
	    "HTTPS://IDP.EXAMPLE.COM/x", NULL};
	static const char *bad[] = {"http://idp.example.com/x",
	                            "http://128.0.0.1/",
	                            "http://127.0.0.1.evil.com/",
	                            "http://localhost.evil.com/",
	                            "https://u@idp.example.com/",
	                            "https://idp.example.com/#f",
	                            "https:///x",
	                            "ftp://idp/",
	                            "https://idp.example.com:abc/",
	                            "https://idp.example.com/ a",
	                            "http://[::2]/",
	                            "http://127.0.0.1:99999999/",
	                            "",
	                            NULL};
	int i;

	for (i = 0; good[i] != NULL; i++)
		assert_true(eb_oidc_url_ok(good[i]));
	for (i = 0; bad[i] != NULL; i++) {
		if (eb_oidc_url_ok(bad[i]))
			fail_msg("accepted %s", bad[i]);
	}
	assert_false(eb_oidc_url_ok(NULL));
}

static int
parse_code(const char *doc, const char *issuer, struct eb_oidc_meta *m,
           struct eb_oidc_error *err)
{
	memset(err, 0, sizeof(*err));
	return eb_oidc_meta_parse(doc, strlen(doc), issuer, m, err);
}

static void
test_meta_parse(void **state)
{
	struct eb_oidc_meta m;
	struct eb_oidc_error err;
	char *doc = metadata_doc(
	    "https://idp.example.com",
	    ",\"authorization_response_iss_parameter_supported\":true");
	static const char tmpl[] =
	    "{\"issuer\":\"https://login.microsoftonline.com/{tenantid}/v2.0\","
	    "\"authorization_endpoint\":\"https://login.microsoftonline.com/"
	    "common/oauth2/v2.0/authorize\",\"token_endpoint\":\"https://"
	    "login.microsoftonline.com/common/oauth2/v2.0/token\",\"jwks_uri\":"
	    "\"https://login.microsoftonline.com/common/discovery/v2.0/keys\"}";

	assert_int_equal(parse_code(doc, "https://idp.example.com", &m, &err),
	                 0);
	assert_string_equal(m.issuer, "https://idp.example.com");
	assert_string_equal(m.token_endpoint, "https://idp.example.com/token");
	assert_string_equal(m.userinfo_endpoint,
	                    "https://idp.example.com/userinfo");
	/* HS256 and none dropped from the advertised list */
	assert_int_equal(m.id_token_algs, EB_JOSE_RS256 | EB_JOSE_ES256);
	assert_true(m.iss_parameter_supported);
	eb_oidc_meta_finish(&m);

	/* the issuer must match exactly: no trailing slash, no case games */
	assert_int_equal(parse_code(doc, "https://idp.example.com/", &m, &err),
	                 -1);
	assert_string_equal(err.code, "issuer_mismatch");
	assert_null(m.issuer);
	assert_int_equal(parse_code(doc, "https://IDP.example.com", &m, &err),
	                 -1);
	assert_string_equal(err.code, "issuer_mismatch");
	eb_free(doc);

	/* Entra's template: accepted for a tid in its place, not otherwise */
	assert_int_equal(parse_code(tmpl,
	                            "https://login.microsoftonline.com/"
	                            "9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
	                            &m, &err),
	                 0);
	assert_string_equal(
	    m.issuer, "https://login.microsoftonline.com/{tenantid}/v2.0");
	assert_int_equal(m.id_token_algs, 0);
	eb_oidc_meta_finish(&m);
	assert_int_equal(parse_code(tmpl, tmpl + 11, &m, &err), -1);
	assert_int_equal(
	    parse_code(tmpl, "https://login.microsoftonline.com/a/b/v2.0", &m,
	               &err),
	    -1);
	assert_string_equal(err.code, "issuer_mismatch");
	assert_int_equal(parse_code(tmpl,
	                            "https://login.microsoftonline.com/../v2.0",
	                            &m, &err),
	                 -1);

	/* plain http endpoints only on loopback */
	doc = metadata_doc("http://idp.example.com", NULL);
	assert_int_equal(parse_code(doc, "http://idp.example.com", &m, &err),
	                 -1);
	assert_string_equal(err.code, "insecure_endpoint");
	eb_free(doc);
	doc = metadata_doc("http://127.0.0.1:3000", NULL);
	assert_int_equal(parse_code(doc, "http://127.0.0.1:3000", &m, &err), 0);
	eb_oidc_meta_finish(&m);
	eb_free(doc);

	assert_int_equal(
	    parse_code("{\"issuer\":\"https://i.example\","
	               "\"authorization_endpoint\":\"https://i.example/a\","
	               "\"token_endpoint\":\"https://i.example/t\","
	               "\"jwks_uri\":\"https://i.example/k\","
	               "\"id_token_signing_alg_values_supported\":[\"none\","
	               "\"HS256\"]}",
	               "https://i.example", &m, &err),
	    -1);
	assert_string_equal(err.code, "no_usable_alg");
	assert_int_equal(
	    parse_code("{\"issuer\":\"https://i.example\","
	               "\"authorization_endpoint\":\"https://i.example/a\","
	               "\"token_endpoint\":\"https://i.example/t\"}",
	               "https://i.example", &m, &err),
	    -1);
	assert_string_equal(err.code, "metadata_missing_field");
	assert_int_equal(
	    parse_code("{\"issuer\":", "https://i.example", &m, &err), -1);
	assert_string_equal(err.code, "malformed_json");
	assert_int_equal(err.kind, EB_OIDC_E_PROTOCOL);
	/* duplicate keys are refused, not resolved either way */
	assert_int_equal(
	    parse_code("{\"issuer\":\"https://i.example\",\"issuer\":\"https:"
	               "//i.example\"}",
	               "https://i.example", &m, &err),
	    -1);
	assert_string_equal(err.code, "malformed_json");
}

/* ---- PKCE and the authorization URL ---------------------------------------
 */

static void
test_pkce_vector(void **state)
{
	char ch[44];

	/* RFC 7636 appendix B */
	assert_int_equal(eb_oidc_pkce_challenge(
	                     "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", ch),
	                 0);
	assert_string_equal(ch, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
	assert_int_equal(eb_oidc_pkce_challenge("too-short", ch), -1);
}

/* The decoded value of query parameter name in url (a fresh string), or
 * NULL; fails when it appears more than once. */
static char *
query_param(const char *url, const char *name)
{
	const char *p = strchr(url, '?'), *end;
	size_t n = strlen(name);
	char *out = NULL, *o;
	int count = 0;

	assert_non_null(p);
	for (p++; *p != '\0'; p = *end ? end + 1 : end) {
		end = p + strcspn(p, "&");
		if ((size_t)(end - p) > n && strncmp(p, name, n) == 0 &&
		    p[n] == '=') {
			count++;
			out = o = calloc(1, (size_t)(end - p));
			for (p += n + 1; p < end; p++) {
				unsigned v;
				if (*p == '%' &&
				    sscanf(p + 1, "%2x", &v) == 1) {
					*o++ = (char)v;
					p += 2;
				} else {
					assert_true(*p != '+' && *p != ' ');
					*o++ = *p;
				}
			}
		}
	}
	assert_true(count <= 1);
	return out;
}

static void
test_begin_url(void **state)
{
	struct eb_oidc *o = eb_oidc_create(NULL);
	struct eb_oidc_meta m = {.issuer = ISS_STATIC,
	                         .authorization_endpoint =
	                             "https://idp.test/authorize?tenant=x",
	                         .token_endpoint = "https://idp.test/token",
	                         .jwks_uri = "https://idp.test/jwks"};
	struct eb_oidc_request r, r2;
	struct eb_tenant t;
	struct eb_kv extra[] = {{"prompt", "select_account"}};
	const char *redirect = "https://bridge.example/t/acme/oidc/callback";
	char ch[44], *v;

	tenant_init(&t, ISS_STATIC);
	t.idp.scopes.v = scopes_v + 1; /* "email": openid is added */
	t.idp.scopes.n = 1;
	t.idp.extra_auth_params.v = extra;
	t.idp.extra_auth_params.n = 1;
	assert_int_equal(
	    eb_oidc_begin(o, &t, &m, redirect, "alice+x@example.com", &r), 0);
	assert_true(eb_str_has_prefix(
	    r.url, "https://idp.test/authorize?tenant=x&response_type=code&"));
	assert_int_equal(strlen(r.state), 43);
	assert_int_equal(strlen(r.nonce), 43);
	assert_int_equal(strlen(r.verifier), 43);
	assert_int_equal(eb_oidc_pkce_challenge(r.verifier, ch), 0);
#define EXPECT(name, want)                                                     \
	do {                                                                   \
		v = query_param(r.url, name);                                  \
		assert_non_null(v);                                            \
		assert_string_equal(v, want);                                  \
		free(v);                                                       \
	} while (0)
	EXPECT("response_type", "code");
	EXPECT("client_id", CLIENT_ID);
	EXPECT("redirect_uri", redirect);
	EXPECT("scope", "openid email");
	EXPECT("state", r.state);
	EXPECT("nonce", r.nonce);
	EXPECT("code_challenge", ch);
	EXPECT("code_challenge_method", "S256");
	EXPECT("login_hint", "alice+x@example.com");
	EXPECT("prompt", "select_account");
#undef EXPECT
	/* encoded, not raw */
	assert_non_null(strstr(r.url, "redirect_uri=https%3A%2F%2Fbridge"));
	assert_non_null(strstr(r.url, "login_hint=alice%2Bx%40example.com"));
	assert_non_null(strstr(r.url, "scope=openid%20email"));
	/* and the verifier never travels */
	assert_null(strstr(r.url, r.verifier));

	assert_int_equal(eb_oidc_begin(o, &t, &m, redirect, NULL, &r2), 0);
	assert_string_not_equal(r.state, r2.state);
	assert_string_not_equal(r.nonce, r2.nonce);
	assert_string_not_equal(r.verifier, r2.verifier);
	v = query_param(r2.url, "login_hint");
	assert_null(v);
	eb_oidc_request_finish(&r2);
	eb_oidc_request_finish(&r);
	eb_oidc_request_finish(&r); /* idempotent */

	/* configuration may not override the core's parameters */
	extra[0].key = "state";
	assert_int_equal(eb_oidc_begin(o, &t, &m, redirect, NULL, &r), -1);
	assert_null(r.url);
	eb_oidc_destroy(o);
	eb_oidc_destroy(NULL);
}

/* eb_oidc_state_fn for test_begin_state: "st." + nonce + verifier, as a
 * caller sealing both into the state would; NULL when arg says so. */
static char *
state_of(void *arg, const char *nonce, const char *verifier)
{
	int *calls = arg;
	size_t n = strlen(nonce), v = strlen(verifier);
	char *s;

	if (++*calls > 1)
		return NULL;
	if ((s = eb_malloc(3 + n + v + 1)) != NULL) {
		memcpy(s, "st.", 3);
		memcpy(s + 3, nonce, n);
		memcpy(s + 3 + n, verifier, v + 1);
	}
	return s;
}

/* The caller's state is built from the request's own nonce and verifier,
 * and is what the URL carries; no state, no request. */
static void
test_begin_state(void **state)
{
	struct eb_oidc *o = eb_oidc_create(NULL);
	struct eb_oidc_meta m = {.issuer = ISS_STATIC,
	                         .authorization_endpoint =
	                             "https://idp.test/authorize",
	                         .token_endpoint = "https://idp.test/token",
	                         .jwks_uri = "https://idp.test/jwks"};
	const char *redirect = "https://bridge.example/t/acme/oidc/callback";
	struct eb_oidc_request r;
	struct eb_tenant t;
	char *v;
	int calls = 0;

	(void)state;
	tenant_init(&t, ISS_STATIC);
	assert_int_equal(eb_oidc_begin_state(o, &t, &m, redirect, NULL,
	                                     state_of, &calls, &r),
	                 0);
	assert_int_equal(calls, 1);
	assert_true(eb_str_has_prefix(r.state, "st."));
	assert_true(strncmp(r.state + 3, r.nonce, strlen(r.nonce)) == 0);
	assert_string_equal(r.state + 3 + strlen(r.nonce), r.verifier);
	v = query_param(r.url, "state");
	assert_non_null(v);
	assert_string_equal(v, r.state);
	free(v);
	eb_oidc_request_finish(&r);
	/* the state function failed: so does the request */
	assert_int_equal(eb_oidc_begin_state(o, &t, &m, redirect, NULL,
	                                     state_of, &calls, &r),
	                 -1);
	assert_null(r.url);
	assert_null(r.state);
	assert_null(r.verifier);
	eb_oidc_destroy(o);
}

/* ---- ID-token validation ----------------------------------------------------
 */

struct vctx {
	struct idp *d;
	struct eb_oidc_meta m;
	char jwks_uri[128];
};

static void
vctx_init(struct vctx *v)
{
	char *jwks = jwks_of(ec1, NULL, 1);

	v->d = idp_start(2, 0, 0);
	snprintf(v->jwks_uri, sizeof(v->jwks_uri), "%s/jwks",
	         fx_http_base(v->d->srv));
	memset(&v->m, 0, sizeof(v->m));
	v->m.issuer = ISS_STATIC;
	v->m.jwks_uri = v->jwks_uri;
	v->d->t.idp.issuer = ISS_STATIC;
	assert_int_equal(
	    eb_oidc_test_seed_jwks(v->d->o, v->jwks_uri, jwks, strlen(jwks)),
	    0);
	eb_free(jwks);
}

/* Validate tok; returns the error code ("" on success). */
static const char *
validate(struct vctx *v, const char *tok, const char *nonce)
{
	static struct eb_oidc_error err;
	json_t *claims = NULL;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = eb_oidc_validate_id_token(v->d->o, &v->d->t, &v->m, tok, nonce,
	                               (int64_t)time(NULL), &claims, &err);
	if (rc == 0) {
		assert_non_null(claims);
		assert_string_equal(
		    json_string_value(json_object_get(claims, "sub")),
		    "user-1");
		json_decref(claims);
		return "";
	}
	assert_null(claims);
	assert_true(err.kind != EB_OIDC_OK);
	assert_true(err.code[0] != '\0');
	return err.code;
}

/* Sign c with ec1 and validate it with nonce NONCE. */
static const char *
check_es(struct vctx *v, json_t *c)
{
	char *tok = es_token(ec1, c);
	const char *code = validate(v, tok, NONCE);

	eb_free(tok);
	json_decref(c);
	return code;
}

static void
test_validate_good(void **state)
{
	struct vctx v;
	json_t *c;
	char *tok;

	vctx_init(&v);
	assert_string_equal(check_es(&v, claims_for(ISS_STATIC)), "");
	c = claims_for(ISS_STATIC);
	tok = rsa_token(rsa1, "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", c);
	assert_string_equal(validate(&v, tok, NONCE), "");
	/* the IdP advertising only ES256: the RS256 token is refused before
	 * its signature is looked at */
	v.m.id_token_algs = EB_JOSE_ES256;
	assert_string_equal(validate(&v, tok, NONCE), "alg_not_allowed");
	v.m.id_token_algs = 0;
	eb_free(tok);
	/* an RS256 token signed by another key under the same kid */
	tok = rsa_token(rsa2, "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", c);
	assert_string_equal(validate(&v, tok, NONCE), "bad_signature");
	eb_free(tok);
	json_decref(c);
	/* no nonce expected (refresh): none required */
	c = claims_for(ISS_STATIC);
	json_object_del(c, "nonce");
	tok = es_token(ec1, c);
	assert_string_equal(validate(&v, tok, NULL), "");
	assert_string_equal(validate(&v, tok, NONCE), "nonce_missing");
	eb_free(tok);
	json_decref(c);
	assert_int_equal(fx_http_hits(v.d->srv, "/jwks"), 0); /* seeded */
	assert_true(metric(v.d, "enrollbridge_idp_errors_total",
	                   "tenant=\"acme\",code=\"nonce_missing\"") == 1);
	idp_free(v.d);
}

static void
test_validate_alg_none_hs256(void **state)
{
	struct vctx v;
	json_t *c = claims_for(ISS_STATIC);
	unsigned char mac[32];
	unsigned maclen = sizeof(mac);
	char *jwk, *tok;

	vctx_init(&v);
	tok = raw_token("{\"alg\":\"none\"}", c, NULL, 0);
	assert_string_equal(validate(&v, tok, NONCE), "alg_not_allowed");
	eb_free(tok);
	tok = raw_token("{\"alg\":\"none\",\"kid\":\"rsa1\"}", c, "x", 1);
	assert_string_equal(validate(&v, tok, NONCE), "alg_not_allowed");
	eb_free(tok);
	/* HS256 keyed with the RSA public key (key confusion) */
	jwk = rsa_jwk(rsa1, "rsa1");
	{
		char *payload = json_dumps(c, JSON_COMPACT);
		const char *hdr = "{\"alg\":\"HS256\",\"kid\":\"rsa1\"}";
		char *h = b64(hdr, strlen(hdr));
		char *p = b64(payload, strlen(payload));
		struct eb_buf si;

		eb_buf_init(&si, 1 << 16);
		eb_buf_printf(&si, "%s.%s", h, p);
		HMAC(EVP_sha256(), jwk, (int)strlen(jwk),
		     (const unsigned char *)si.data, si.len, mac, &maclen);
		tok = raw_token(hdr, c, mac, maclen);
		eb_buf_finish(&si);
		eb_free(h);
		eb_free(p);
		free(payload);
	}
	assert_string_equal(validate(&v, tok, NONCE), "alg_not_allowed");
	eb_free(tok);
	eb_free(jwk);
	json_decref(c);
	assert_int_equal(fx_http_hits(v.d->srv, "/jwks"), 0);
	idp_free(v.d);
}

static void
test_validate_claims(void **state)
{
	struct vctx v;
	int64_t now = (int64_t)time(NULL);
	json_t *c;
	char *tok, big[EB_JOSE_MAX_TOKEN + 10];

	vctx_init(&v);
	c = claims_for("https://evil.test");
	assert_string_equal(check_es(&v, c), "wrong_iss");
	c = claims_for(ISS_STATIC);
	json_object_del(c, "iss");
	assert_string_equal(check_es(&v, c), "wrong_iss");

	c = claims_for(ISS_STATIC);
	json_object_set_new(c, "aud", json_string("other"));
	assert_string_equal(check_es(&v, c), "wrong_aud");
	c = claims_for(ISS_STATIC);
	json_object_del(c, "aud");
	assert_string_equal(check_es(&v, c), "wrong_aud");
	c = claims_for(ISS_STATIC);
	json_object_set_new(c, "aud", json_pack("[s,i]", CLIENT_ID, 3));
	assert_string_equal(check_es(&v, c), "wrong_aud");
	c = claims_for(ISS_STATIC);
	json_object_set_new(c, "aud", json_pack("[s,s]", "other", CLIENT_ID));
	assert_string_equal(check_es(&v, c), "azp_missing");
	c = claims_for(ISS_STATIC);
	json_object_set_new(c, "aud", json_pack("[s,s]", "other", CLIENT_ID));
	json_object_set_new(c, "azp", json_string(CLIENT_ID));
	assert_string_equal(check_es(&v, c), "");
	c = claims_for(ISS_STATIC);
	json_object_set_new(c, "aud", json_pack("[s,s]", "other", CLIENT_ID));
	json_object_set_new(c, "azp", json_string("other"));
	assert_string_equal(check_es(&v, c), "wrong_azp");
	c = claims_for(ISS_STATIC);
	json_object_set_new(c, "azp", json_string("other"));
	assert_string_equal(check_es(&v, c), "wrong_azp");
	c = claims_for(ISS_STATIC);
	json_object_set_new(c, "aud", json_pack("[s]", CLIENT_ID));
	assert_string_equal(check_es(&v, c), "");

	c = claims_for(ISS_STATIC);
	json_object_set_new(c, "exp", json_integer(now - 120));
	assert_string_equal(check_es(&v, c), "expired");
	c = claims_for(ISS_STATIC);
	json_object_set_new(c, "exp", json_integer(now - 30)); /* in skew */
	assert_string_equal(check_es(&v, c), "");
	c = claims_for(ISS_STATIC);
	json_object_del(c, "exp");
	assert_string_equal(check_es(&v, c), "exp_missing");
	c = claims_for(ISS_STATIC);
	json_object_set_new(c, "exp", json_string("soon"));
	assert_string_equal(check_es(&v, c), "exp_missing");
	c = claims_for(ISS_STATIC);
	json_object_set_new(c, "iat", json_integer(now + 300));
	assert_string_equal(check_es(&v, c), "iat_future");
	c = claims_for(ISS_STATIC);
	json_object_del(c, "iat");
	assert_string_equal(check_es(&v, c), "iat_missing");
	c = claims_for(ISS_STATIC);
	json_object_set_new(c, "nbf", json_integer(now + 300));
	assert_string_equal(check_es(&v, c), "not_yet_valid");

	c = claims_for(ISS_STATIC);
	json_object_set_new(c, "nonce", json_string("n-0S6_WzA2Mk"));
	assert_string_equal(check_es(&v, c), "nonce_mismatch");
	c = claims_for(ISS_STATIC);
	json_object_set_new(c, "nonce", json_string(NONCE "x"));
	assert_string_equal(check_es(&v, c), "nonce_mismatch");
	c = claims_for(ISS_STATIC);
	json_object_set_new(c, "nonce", json_integer(1));
	assert_string_equal(check_es(&v, c), "nonce_missing");
	c = claims_for(ISS_STATIC);
	json_object_del(c, "nonce");
	assert_string_equal(check_es(&v, c), "nonce_missing");
	c = claims_for(ISS_STATIC);
	json_object_del(c, "sub");
	assert_string_equal(check_es(&v, c), "sub_missing");
	c = claims_for(ISS_STATIC);
	json_object_set_new(c, "sub", json_string(""));
	assert_string_equal(check_es(&v, c), "sub_missing");

	/* tampered payload, garbage, too large */
	c = claims_for(ISS_STATIC);
	tok = es_token(ec1, c);
	{
		char *dot = strchr(tok, '.') + 1;
		*dot = *dot == 'e' ? 'f' : 'e';
	}
	assert_string_equal(validate(&v, tok, NONCE), "bad_signature");
	eb_free(tok);
	json_decref(c);
	assert_string_equal(validate(&v, "not.a.jwt", NONCE),
	                    "malformed_token");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_string_equal(validate(&v, big, NONCE), "token_too_large");
	assert_int_equal(fx_http_hits(v.d->srv, "/jwks"), 0);
	idp_free(v.d);
}

/* A forged token naming random kids makes at most one JWKS fetch per
 * min_refresh_interval; a rotated key is picked up; a failed refresh
 * keeps the keys we had. */
static void
test_unknown_kid_rate_limit(void **state)
{
	struct vctx v;
	json_t *c = claims_for(ISS_STATIC);
	char hdr[128], *tok, *tok2 = es_token(ec2, c), *jwks;
	int i;

	vctx_init(&v);
	for (i = 0; i < 20; i++) {
		snprintf(hdr, sizeof(hdr),
		         "{\"alg\":\"RS256\",\"kid\":\"forged-%d\"}", i);
		tok = rsa_token(rsa2, hdr, c);
		assert_string_equal(validate(&v, tok, NONCE), "unknown_kid");
		eb_free(tok);
	}
	assert_string_equal(validate(&v, tok2, NONCE), "unknown_kid");
	assert_int_equal(fx_http_hits(v.d->srv, "/jwks"), 1);
	/* after the interval, one more fetch */
	eb_clock_advance(&v.d->clock, 31);
	for (i = 0; i < 5; i++)
		assert_string_equal(validate(&v, tok2, NONCE), "unknown_kid");
	assert_int_equal(fx_http_hits(v.d->srv, "/jwks"), 2);
	/* the IdP rotates in ec2 */
	jwks = jwks_of(ec1, ec2, 0);
	fx_http_set(v.d->srv, "/jwks", 200, jwks, 0);
	eb_free(jwks);
	eb_clock_advance(&v.d->clock, 31);
	assert_string_equal(validate(&v, tok2, NONCE), "");
	assert_int_equal(fx_http_hits(v.d->srv, "/jwks"), 3);
	assert_string_equal(check_es(&v, claims_for(ISS_STATIC)), "");
	/* the IdP goes away: known keys keep working, past their TTL too */
	fx_http_stop(v.d->srv);
	eb_clock_advance(&v.d->clock, 700);
	assert_string_equal(validate(&v, tok2, NONCE), "");
	assert_string_equal(check_es(&v, claims_for(ISS_STATIC)), "");
	assert_true(metric(v.d, "enrollbridge_idp_requests_total",
	                   "tenant=\"acme\",endpoint=\"jwks\",result=\"ok\"") ==
	            3);
	assert_true(
	    metric(v.d, "enrollbridge_idp_requests_total",
	           "tenant=\"acme\",endpoint=\"jwks\",result=\"error\"") == 1);
	eb_free(tok2);
	json_decref(c);
	idp_free(v.d);
}

static void
test_jwks_too_large(void **state)
{
	struct idp *d = idp_start(2, 0, 3);
	struct eb_jose_key *k[4];
	struct eb_oidc_meta m = {.issuer = ISS_STATIC};
	struct eb_oidc_error err = {0};
	struct eb_buf doc;
	json_t *c = claims_for(ISS_STATIC), *claims = NULL;
	char uri[128], *s, *tok;
	int i;

	eb_buf_init(&doc, 1 << 20);
	eb_buf_addstr(&doc, "{\"keys\":[");
	for (i = 0; i < 4; i++) {
		k[i] = i == 0 ? ec1 : eb_jose_key_generate();
		s = eb_jose_key_public_json(k[i]);
		eb_buf_printf(&doc, "%s%s", i ? "," : "", s);
		eb_free(s);
		if (i)
			eb_jose_key_destroy(k[i]);
	}
	eb_buf_addstr(&doc, "]}");
	fx_http_set(d->srv, "/jwks", 200, eb_buf_str(&doc), 0);
	eb_buf_finish(&doc);
	snprintf(uri, sizeof(uri), "%s/jwks", fx_http_base(d->srv));
	m.jwks_uri = uri;
	d->t.idp.issuer = ISS_STATIC;
	tok = es_token(ec1, c);
	assert_int_equal(eb_oidc_validate_id_token(d->o, &d->t, &m, tok, NONCE,
	                                           0, &claims, &err),
	                 -1);
	assert_string_equal(err.code, "jwks_too_large");
	assert_int_equal(err.kind, EB_OIDC_E_PROTOCOL);
	/* and the failure is not retried before the interval */
	assert_int_equal(eb_oidc_validate_id_token(d->o, &d->t, &m, tok, NONCE,
	                                           0, &claims, &err),
	                 -1);
	assert_string_equal(err.code, "jwks_too_large");
	assert_int_equal(fx_http_hits(d->srv, "/jwks"), 1);
	eb_free(tok);
	json_decref(c);
	idp_free(d);
}

/* ---- metadata cache
 * ------------------------------------------------------------ */

static void
test_metadata_stale_served(void **state)
{
	struct idp *d = idp_start(2, 0, 0);
	const struct eb_oidc_meta *m, *m2;
	struct eb_oidc_error err = {0};
	struct eb_oidc *o2;
	struct eb_tenant t;
	/* by tenant, never by issuer */
	const char *labels = "tenant=\"acme\"";

	tenant_init(&t, fx_http_base(d->srv));
	assert_int_equal(eb_oidc_metadata_for(d->o, &t, &m, &err), 0);
	assert_string_equal(m->issuer, fx_http_base(d->srv));
	assert_non_null(m->userinfo_endpoint);
	assert_int_equal(eb_oidc_metadata_for(d->o, &t, &m2, &err), 0);
	assert_ptr_equal(m, m2); /* cached */
	eb_oidc_meta_release(d->o, m2);
	assert_int_equal(
	    fx_http_hits(d->srv, "/.well-known/openid-configuration"), 1);
	assert_true(metric(d, "enrollbridge_idp_up", labels) == 1);
	/* past the TTL: refreshed, the old copy stays valid for its holder */
	eb_clock_advance(&d->clock, 601);
	assert_int_equal(eb_oidc_metadata_for(d->o, &t, &m2, &err), 0);
	assert_int_equal(
	    fx_http_hits(d->srv, "/.well-known/openid-configuration"), 2);
	assert_ptr_not_equal(m, m2);
	assert_string_equal(m->token_endpoint, m2->token_endpoint);
	eb_oidc_meta_release(d->o, m);
	eb_oidc_meta_release(d->o, m2);

	/* the IdP goes down: the stale copy is served */
	fx_http_stop(d->srv);
	eb_clock_advance(&d->clock, 601);
	assert_int_equal(eb_oidc_metadata_for(d->o, &t, &m, &err), 0);
	assert_string_equal(m->issuer, fx_http_base(d->srv));
	eb_oidc_meta_release(d->o, m);
	assert_true(metric(d, "enrollbridge_idp_up", labels) == 0);
	/* and retried at most once per min_refresh_interval */
	assert_int_equal(eb_oidc_metadata_for(d->o, &t, &m, &err), 0);
	eb_oidc_meta_release(d->o, m);
	assert_true(
	    metric(d, "enrollbridge_idp_requests_total",
	           "tenant=\"acme\",endpoint=\"metadata\",result=\"error\"") ==
	    1);
	eb_clock_advance(&d->clock, 31);
	assert_int_equal(eb_oidc_metadata_for(d->o, &t, &m, &err), 0);
	eb_oidc_meta_release(d->o, m);
	assert_true(
	    metric(d, "enrollbridge_idp_requests_total",
	           "tenant=\"acme\",endpoint=\"metadata\",result=\"error\"") ==
	    2);

	/* without a copy, the error says why */
	o2 = eb_oidc_create(&(struct eb_oidc_opts){.timeout = 2});
	assert_int_equal(eb_oidc_metadata(o2, fx_http_base(d->srv), &m, &err),
	                 -1);
	assert_null(m);
	assert_int_equal(err.kind, EB_OIDC_E_UNAVAILABLE);
	assert_string_equal(err.code, "idp_unreachable");
	eb_oidc_destroy(o2);
	idp_free(d);
}

struct stampede_arg {
	struct idp *d;
	int rc;
};

static void *
stampede_main(void *p)
{
	struct stampede_arg *a = p;
	const struct eb_oidc_meta *m = NULL;
	struct eb_oidc_error err;

	a->rc = eb_oidc_metadata(a->d->o, fx_http_base(a->d->srv), &m, &err);
	if (m != NULL)
		eb_oidc_meta_release(a->d->o, m);
	return NULL;
}

/* Concurrent callers with no copy wait for the one fetch in flight; with a
 * stale copy they use it while one caller refreshes. */
static void
test_metadata_no_stampede(void **state)
{
	struct idp *d = idp_start(5, 0, 0);
	struct stampede_arg a[8];
	pthread_t th[8];
	int i;

	{
		char *doc = metadata_doc(fx_http_base(d->srv), NULL);
		fx_http_set(d->srv, "/.well-known/openid-configuration", 200,
		            doc, 300);
		eb_free(doc);
	}
	for (i = 0; i < 8; i++) {
		a[i].d = d;
		a[i].rc = -2;
		assert_int_equal(
		    pthread_create(&th[i], NULL, stampede_main, &a[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(a[i].rc, 0);
	}
	assert_int_equal(
	    fx_http_hits(d->srv, "/.well-known/openid-configuration"), 1);
	eb_clock_advance(&d->clock, 601);
	for (i = 0; i < 8; i++)
		assert_int_equal(
		    pthread_create(&th[i], NULL, stampede_main, &a[i]), 0);
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(a[i].rc, 0);
	}
	assert_int_equal(
	    fx_http_hits(d->srv, "/.well-known/openid-configuration"), 2);
	idp_free(d);
}

static void
test_metadata_refused(void **state)
{
	struct idp *d = idp_start(2, 0, 0);
	const struct eb_oidc_meta *m;
	struct eb_oidc_error err = {0};
	char *doc = metadata_doc("http://127.0.0.1:1", NULL);

	fx_http_set(d->srv, "/.well-known/openid-configuration", 200, doc, 0);
	eb_free(doc);
	assert_int_equal(eb_oidc_metadata(d->o, fx_http_base(d->srv), &m, &err),
	                 -1);
	assert_string_equal(err.code, "issuer_mismatch");
	fx_http_set(d->srv, "/.well-known/openid-configuration", 503, "{}", 0);
	eb_clock_advance(&d->clock, 31);
	assert_int_equal(eb_oidc_metadata(d->o, fx_http_base(d->srv), &m, &err),
	                 -1);
	assert_int_equal(err.kind, EB_OIDC_E_UNAVAILABLE);
	fx_http_set(d->srv, "/.well-known/openid-configuration", 200,
	            "{\"a\":", 0);
	eb_clock_advance(&d->clock, 31);
	assert_int_equal(eb_oidc_metadata(d->o, fx_http_base(d->srv), &m, &err),
	                 -1);
	assert_string_equal(err.code, "malformed_json");
	/* http issuer off loopback is refused without a request */
	assert_int_equal(
	    eb_oidc_metadata(d->o, "http://idp.example.com", &m, &err), -1);
	assert_string_equal(err.code, "bad_issuer");
	idp_free(d);
}

/* ---- code exchange and refresh
 * ------------------------------------------------------ */

static void
set_token_response(struct idp *d, json_t *c, const char *extra)
{
	struct eb_buf b;
	char *tok = c ? es_token(ec1, c) : NULL;

	eb_buf_init(&b, 1 << 20);
	eb_buf_printf(&b,
	              "{\"access_token\":\"at-1\",\"token_type\":\"bearer\","
	              "\"expires_in\":3600,\"refresh_token\":\"rt-1\"");
	if (tok != NULL)
		eb_buf_printf(&b, ",\"id_token\":\"%s\"", tok);
	eb_buf_printf(&b, "%s}", extra ? extra : "");
	fx_http_set(d->srv, "/token", 200, eb_buf_str(&b), 0);
	eb_buf_finish(&b);
	eb_free(tok);
	json_decref(c);
}

static int
finish(struct idp *d, const char *iss_param, struct eb_identity *id,
       struct eb_oidc_tokens *tk, struct eb_oidc_error *err)
{
	memset(err, 0, sizeof(*err));
	return eb_oidc_finish(d->o, &d->t, "https://bridge.example/cb",
	                      "code-1",
	                      "verifier-0123456789012345678901234567890123",
	                      NONCE, iss_param, id, tk, err);
}

static void
test_finish_basic(void **state)
{
	struct idp *d = idp_start(2, 0, 0);
	struct eb_identity id;
	struct eb_oidc_tokens tk;
	struct eb_oidc_error err;
	char *last, *expect_auth;
	const char *cred = CLIENT_ID ":s3cr3t%3A%26";
	unsigned char enc[128];

	set_token_response(d, claims_for(fx_http_base(d->srv)), NULL);
	assert_int_equal(finish(d, fx_http_base(d->srv), &id, &tk, &err), 0);
	assert_string_equal(id.subject, "user-1");
	assert_string_equal(id.issuer, fx_http_base(d->srv));
	assert_string_equal(id.email, "alice@example.com");
	assert_string_equal(tk.access_token, "at-1");
	assert_string_equal(tk.refresh_token, "rt-1");
	assert_string_equal(tk.sub, "user-1");
	assert_true(tk.expires_at > (int64_t)time(NULL));
	eb_identity_finish(&id);
	eb_oidc_tokens_finish(&tk);

	last = fx_http_last(d->srv, "/token");
	assert_true(strncmp(last, "POST /token ", 12) == 0);
	assert_non_null(strstr(last, "grant_type=authorization_code"));
	assert_non_null(strstr(last, "code=code-1"));
	assert_non_null(strstr(
	    last, "code_verifier=verifier-0123456789012345678901234567890123"));
	assert_non_null(
	    strstr(last, "redirect_uri=https%3A%2F%2Fbridge.example%2Fcb"));
	assert_null(strstr(last, "client_secret="));
	assert_null(strstr(last, "s3cr3t"));
	assert_non_null(strcasestr(last, "\naccept: application/json"));
	EVP_EncodeBlock(enc, (const unsigned char *)cred, (int)strlen(cred));
	expect_auth = calloc(1, 256);
	snprintf(expect_auth, 256, "Authorization: Basic %s\r\n", enc);
	assert_non_null(strstr(last, expect_auth));
	free(expect_auth);
	free(last);
	assert_true(
	    metric(d, "enrollbridge_idp_requests_total",
	           "tenant=\"acme\",endpoint=\"token\",result=\"ok\"") == 1);

	/* client_secret_post: in the body, no Authorization header */
	d->t.idp.client_auth = EB_CLIENT_AUTH_POST;
	set_token_response(d, claims_for(fx_http_base(d->srv)), NULL);
	assert_int_equal(finish(d, NULL, NULL, NULL, &err), 0);
	last = fx_http_last(d->srv, "/token");
	assert_non_null(strstr(last, "client_id=client-1"));
	assert_non_null(strstr(last, "client_secret=s3cr3t%3A%26"));
	assert_null(strcasestr(last, "authorization:"));
	free(last);
	idp_free(d);
}

static void
test_finish_errors(void **state)
{
	struct idp *d = idp_start(1, 4096, 0);
	struct eb_oidc_error err;
	json_t *c;
	char big[6000];

#define EXPECT_FAIL(kind_, code_)                                              \
	do {                                                                   \
		assert_int_equal(finish(d, NULL, NULL, NULL, &err), -1);       \
		assert_string_equal(err.code, code_);                          \
		assert_int_equal(err.kind, kind_);                             \
	} while (0)
	fx_http_set(
	    d->srv, "/token", 400,
	    "{\"error\":\"invalid_grant\",\"error_description\":\"used\"}", 0);
	EXPECT_FAIL(EB_OIDC_E_DENIED, "invalid_grant");
	fx_http_set(d->srv, "/token", 401, "{\"error\":\"invalid_client\"}", 0);
	EXPECT_FAIL(EB_OIDC_E_PROTOCOL, "invalid_client");
	fx_http_set(d->srv, "/token", 502, "bad gateway", 0);
	EXPECT_FAIL(EB_OIDC_E_UNAVAILABLE, "idp_server_error");
	fx_http_set(d->srv, "/token", 302, "", 0);
	EXPECT_FAIL(EB_OIDC_E_PROTOCOL, "unexpected_redirect");
	fx_http_set(d->srv, "/token", 200, "{\"access_token\":", 0);
	EXPECT_FAIL(EB_OIDC_E_PROTOCOL, "malformed_json");
	fx_http_set(d->srv, "/token", 200,
	            "{\"access_token\":\"a\",\"token_type\":\"mac\"}", 0);
	EXPECT_FAIL(EB_OIDC_E_PROTOCOL, "bad_token_type");
	set_token_response(d, NULL, NULL);
	EXPECT_FAIL(EB_OIDC_E_PROTOCOL, "id_token_missing");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	fx_http_set(d->srv, "/token", 200, big, 0);
	EXPECT_FAIL(EB_OIDC_E_PROTOCOL, "token_too_large");
	/* an ID token that fails validation */
	c = claims_for(fx_http_base(d->srv));
	json_object_set_new(c, "nonce", json_string("other"));
	set_token_response(d, c, NULL);
	EXPECT_FAIL(EB_OIDC_E_TOKEN, "nonce_mismatch");
	/* the provider's rule: an unverified email is refused */
	c = claims_for(fx_http_base(d->srv));
	json_object_set_new(c, "email_verified", json_false());
	set_token_response(d, c, NULL);
	EXPECT_FAIL(EB_OIDC_E_POLICY, "policy_denied");
	/* groups required but not sent */
	{
		char *g[] = {"staff"};
		d->t.access.require_groups.v = g;
		d->t.access.require_groups.n = 1;
		set_token_response(d, claims_for(fx_http_base(d->srv)), NULL);
		EXPECT_FAIL(EB_OIDC_E_POLICY, "groups_unknown");
		c = claims_for(fx_http_base(d->srv));
		json_object_set_new(c, "groups", json_pack("[s]", "staff"));
		set_token_response(d, c, NULL);
		assert_int_equal(finish(d, NULL, NULL, NULL, &err), 0);
		d->t.access.require_groups.n = 0;
	}
	/* RFC 9207 mix-up */
	set_token_response(d, claims_for(fx_http_base(d->srv)), NULL);
	assert_int_equal(finish(d, "https://evil.example", NULL, NULL, &err),
	                 -1);
	assert_string_equal(err.code, "iss_param_mismatch");
	/* an IdP that never answers */
	fx_http_set(d->srv, "/token", 200, "{}", 3000);
	EXPECT_FAIL(EB_OIDC_E_UNAVAILABLE, "idp_timeout");
	fx_http_set(d->srv, "/token", 200, "{}", 0);
	assert_true(metric(d, "enrollbridge_idp_errors_total",
	                   "tenant=\"acme\",code=\"invalid_grant\"") == 1);
#undef EXPECT_FAIL
	idp_free(d);
}

static void
test_finish_iss_param_required(void **state)
{
	struct idp *d = idp_start(2, 0, 0);
	struct eb_oidc_error err;
	char *doc = metadata_doc(
	    fx_http_base(d->srv),
	    ",\"authorization_response_iss_parameter_supported\":true");

	fx_http_set(d->srv, "/.well-known/openid-configuration", 200, doc, 0);
	eb_free(doc);
	set_token_response(d, claims_for(fx_http_base(d->srv)), NULL);
	assert_int_equal(finish(d, NULL, NULL, NULL, &err), -1);
	assert_string_equal(err.code, "iss_param_missing");
	assert_int_equal(fx_http_hits(d->srv, "/token"), 0);
	assert_int_equal(finish(d, fx_http_base(d->srv), NULL, NULL, &err), 0);
	idp_free(d);
}

static void
test_finish_userinfo(void **state)
{
	struct idp *d = idp_start(2, 0, 0);
	struct eb_identity id;
	struct eb_oidc_error err;
	json_t *c;
	char *last;

	d->t.idp.use_userinfo = 1;
	c = claims_for(fx_http_base(d->srv));
	json_object_del(c, "email");
	set_token_response(d, c, NULL);
	fx_http_set(d->srv, "/userinfo", 200,
	            "{\"sub\":\"user-1\",\"email\":\"bob@example.com\","
	            "\"iss\":\"https://evil.example\"}",
	            0);
	assert_int_equal(finish(d, NULL, &id, NULL, &err), 0);
	assert_string_equal(id.email, "bob@example.com");
	assert_string_equal(id.issuer, fx_http_base(d->srv));
	assert_string_equal(
	    json_string_value(json_object_get(id.claims, "iss")),
	    fx_http_base(d->srv));
	eb_identity_finish(&id);
	last = fx_http_last(d->srv, "/userinfo");
	assert_true(strncmp(last, "GET /userinfo ", 14) == 0);
	assert_non_null(strstr(last, "Authorization: Bearer at-1\r\n"));
	free(last);
	fx_http_set(d->srv, "/userinfo", 200, "{\"sub\":\"user-2\"}", 0);
	assert_int_equal(finish(d, NULL, &id, NULL, &err), -1);
	assert_string_equal(err.code, "userinfo_sub_mismatch");
	idp_free(d);
}

static void
test_refresh(void **state)
{
	struct idp *d = idp_start(2, 0, 0);
	struct eb_oidc_tokens tk;
	struct eb_oidc_error err = {0};
	json_t *c;
	char *last;

	fx_http_set(d->srv, "/token", 200,
	            "{\"access_token\":\"at-2\",\"token_type\":\"Bearer\","
	            "\"expires_in\":\"3599\"}",
	            0);
	assert_int_equal(eb_oidc_refresh(d->o, &d->t, "rt-1", &tk, &err), 0);
	assert_string_equal(tk.access_token, "at-2");
	assert_null(tk.refresh_token); /* not rotated: keep the old one */
	assert_null(tk.id_token);
	eb_oidc_tokens_finish(&tk);
	last = fx_http_last(d->srv, "/token");
	assert_non_null(strstr(last, "grant_type=refresh_token"));
	assert_non_null(strstr(last, "refresh_token=rt-1"));
	free(last);

	/* a new ID token: validated without nonce, same sub required */
	c = claims_for(fx_http_base(d->srv));
	json_object_del(c, "nonce");
	set_token_response(d, c, NULL);
	assert_int_equal(
	    eb_oidc_refresh_subject(d->o, &d->t, "rt-1", "user-1", &tk, &err),
	    0);
	assert_string_equal(tk.sub, "user-1");
	assert_string_equal(tk.refresh_token, "rt-1");
	eb_oidc_tokens_finish(&tk);
	assert_int_equal(
	    eb_oidc_refresh_subject(d->o, &d->t, "rt-1", "user-9", &tk, &err),
	    -1);
	assert_string_equal(err.code, "sub_mismatch");
	assert_null(tk.access_token);
	c = claims_for("https://evil.example");
	set_token_response(d, c, NULL);
	assert_int_equal(eb_oidc_refresh(d->o, &d->t, "rt-1", &tk, &err), -1);
	assert_string_equal(err.code, "wrong_iss");

	fx_http_set(d->srv, "/token", 400, "{\"error\":\"invalid_grant\"}", 0);
	assert_int_equal(eb_oidc_refresh(d->o, &d->t, "rt-1", &tk, &err), -1);
	assert_int_equal(err.kind, EB_OIDC_E_DENIED);
	assert_string_equal(err.code, "invalid_grant");
	fx_http_set(d->srv, "/token", 503, "", 0);
	assert_int_equal(eb_oidc_refresh(d->o, &d->t, "rt-1", &tk, &err), -1);
	assert_int_equal(err.kind, EB_OIDC_E_UNAVAILABLE);
	/* the IdP is gone: cached metadata, unreachable token endpoint */
	fx_http_stop(d->srv);
	assert_int_equal(eb_oidc_refresh(d->o, &d->t, "rt-1", &tk, &err), -1);
	assert_int_equal(err.kind, EB_OIDC_E_UNAVAILABLE);
	assert_string_equal(err.code, "idp_unreachable");
	idp_free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_url_rule),
	    cmocka_unit_test(test_meta_parse),
	    cmocka_unit_test(test_pkce_vector),
	    cmocka_unit_test(test_begin_url),
	    cmocka_unit_test(test_begin_state),
	    cmocka_unit_test(test_validate_good),
	    cmocka_unit_test(test_validate_alg_none_hs256),
	    cmocka_unit_test(test_validate_claims),
	    cmocka_unit_test(test_unknown_kid_rate_limit),
	    cmocka_unit_test(test_jwks_too_large),
	    cmocka_unit_test(test_metadata_stale_served),
	    cmocka_unit_test(test_metadata_no_stampede),
	    cmocka_unit_test(test_metadata_refused),
	    cmocka_unit_test(test_finish_basic),
	    cmocka_unit_test(test_finish_errors),
	    cmocka_unit_test(test_finish_iss_param_required),
	    cmocka_unit_test(test_finish_userinfo),
	    cmocka_unit_test(test_refresh),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
