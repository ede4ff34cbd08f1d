/*
 * Unit tests of src/token/: the signer (first key generated and sealed,
 * sign/verify, rotation keeping the old key published until not_after,
 * refresh picking up a rotation made through another store handle, rows
 * that do not open under our seal key ignored, concurrent readers during
 * rotation) and access tokens (claims, and every class of refused bearer:
 * missing, malformed, tampered, wrong typ, expired, wrong tenant or
 * audience, unknown to the store, token or grant revoked, grant expired).
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

#include <ftw.h>
#include <sys/stat.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/config.h"
#include "core/mem.h"
#include "jose/jose.h"
#include "jose/seal.h"
#include "fx_store.h"
#include "store/store.h"
#include "token/token.h"

#include "tokenfx.h"

static int
setup(void **state)
{
	return tokenfx_setup(state, "token-test", 1, 0);
}

static int
teardown(void **state)
{
	return tokenfx_teardown(state);
}

/* ---- helpers ---------------------------------------------------------- */

static char *
kid_of(struct eb_signer *s)
{
	static char kid[EB_JOSE_MAX_KID + 1];

	assert_int_equal(eb_signer_current_kid(s, kid, sizeof(kid)), 0);
	return kid;
}

/* 1 when the signer's JWKS lists kid. */
static int
jwks_has(struct eb_signer *s, const char *kid)
{
	size_t len = 0, i;
	char *j = eb_signer_jwks(s, &len);
	json_t *doc, *k;
	int found = 0;

	assert_non_null(j);
	assert_int_equal(strlen(j), len);
	assert_non_null(doc = json_loads(j, 0, NULL));
	json_array_foreach(json_object_get(doc, "keys"), i, k)
	{
		const char *v = json_string_value(json_object_get(k, "kid"));

		assert_null(json_object_get(k, "d")); /* public only */
		if (v != NULL && strcmp(v, kid) == 0)
			found = 1;
	}
	json_decref(doc);
	eb_free(j);
	return found;
}

static size_t
jwks_count(struct eb_signer *s)
{
	char *j = eb_signer_jwks(s, NULL);
	json_t *doc = json_loads(j, 0, NULL);
	size_t n = json_array_size(json_object_get(doc, "keys"));

	json_decref(doc);
	eb_free(j);
	return n;
}

static char *
issue(struct fx *fx, const struct eb_tenant *t, const char *gid, int64_t exp)
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
	char *tok = eb_token_issue(fx->s, fx->store, fx->cfg, t, &c,
	                           EB_STORE_TOKEN_WEB);

	assert_non_null(tok);
	return tok;
}

/* Sign claims ourselves and (optionally) record the token in the store. */
static char *
forge(struct fx *fx, const char *typ, const char *iss, const char *aud,
      const char *gid, int64_t exp, int store_it)
{
	json_t *c = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s}", "iss", iss,
	                      "sub", "alice", "aud", aud, "exp",
	                      (json_int_t)exp, "iat", (json_int_t)time(NULL),
	                      "jti", "jti-forged", "grant_id", gid);
	char *tok = eb_signer_sign(fx->s, typ, c);
	char hash[EB_STORE_HASH_HEXLEN + 1];

	assert_non_null(tok);
	json_decref(c);
	if (store_it) {
		struct eb_store_token st = {
		    .hash = hash,
		    .kind = EB_STORE_TOKEN_ACCESS,
		    .tenant = "acme",
		    .grant_id = (char *)gid,
		    .jti = "jti-forged",
		    .created = (int64_t)time(NULL),
		    .expires = exp,
		};

		assert_int_equal(eb_store_hash_token(tok, strlen(tok), hash),
		                 0);
		assert_int_equal(eb_store_token_put(fx->store, &st),
		                 EB_STORE_OK);
	}
	return tok;
}

static int
check(struct fx *fx, const struct eb_tenant *t, const char *tok, int64_t now)
{
	struct eb_bearer b;
	int r = eb_bearer_check(fx->s, fx->store, fx->cfg, t, tok, now, &b);

	if (r != EB_BEARER_OK)
		assert_null(b.grant_id); /* nothing handed out */
	eb_bearer_finish(&b);
	return r;
}

/* ---- signer ----------------------------------------------------------- */

static void
test_first_key_sealed(void **state)
{
	struct fx *fx = *state;
	struct eb_store_key_list l;
	struct eb_signer *again, *wrong;
	struct eb_seal_ring *ring;
	uint8_t other_seal[32], *pt = NULL;
	size_t ptlen = 0;
	char err[256], kid[EB_JOSE_MAX_KID + 1];

	/* one key, generated at first open, sealed with AD = kid */
	assert_int_equal(eb_store_key_list(fx->store, NULL, &l), EB_STORE_OK);
	assert_int_equal(l.n, 1);
	snprintf(kid, sizeof(kid), "%s", kid_of(fx->s));
	assert_string_equal(l.v[0].kid, kid);
	assert_string_equal(l.v[0].alg, "ES256");
	assert_int_equal(l.v[0].retired_at, 0);
	assert_non_null(l.v[0].private_key);
	assert_null(
	    memmem(l.v[0].private_key, l.v[0].private_key_len, "\"d\"", 3));
	/* sealed as a ring blob (version 3) under the one key */
	assert_int_equal(l.v[0].private_key[0], EB_SEAL_VERSION3);
	assert_non_null(ring = eb_seal_ring_of(fx->seal));
	assert_int_equal(eb_seal_ring_open(ring, EB_SEAL_AT_REST, kid,
	                                   strlen(kid), l.v[0].private_key,
	                                   l.v[0].private_key_len, &pt, &ptlen,
	                                   NULL),
	                 0);
	assert_non_null(strstr((char *)pt, "\"d\""));
	eb_free_secret(pt, ptlen + 1);
	assert_int_not_equal(eb_seal_ring_open(ring, EB_SEAL_AT_REST, "other",
	                                       5, l.v[0].private_key,
	                                       l.v[0].private_key_len, &pt,
	                                       &ptlen, NULL),
	                     0);
	/* nor for another purpose */
	assert_int_not_equal(eb_seal_ring_open(ring, EB_SEAL_FLOW, kid,
	                                       strlen(kid), l.v[0].private_key,
	                                       l.v[0].private_key_len, &pt,
	                                       &ptlen, NULL),
	                     0);
	eb_seal_ring_free(ring);
	assert_int_equal(eb_signer_key_usable(fx->seal, &l.v[0]), 1);
	eb_store_key_list_finish(&l);

	/* a second open uses it, no new key */
	again = eb_signer_open(fx->store, fx->seal, MAX_TTL, err, sizeof(err));
	assert_non_null(again);
	assert_string_equal(kid_of(again), kid);
	eb_signer_close(again);
	assert_int_equal(eb_store_key_list(fx->store, NULL, &l), EB_STORE_OK);
	assert_int_equal(l.n, 1);
	eb_store_key_list_finish(&l);

	/* another seal key opens nothing: refused, nothing generated */
	memset(other_seal, 0x11, sizeof(other_seal));
	wrong =
	    eb_signer_open(fx->store, other_seal, MAX_TTL, err, sizeof(err));
	assert_null(wrong);
	assert_int_equal(eb_store_key_list(fx->store, NULL, &l), EB_STORE_OK);
	assert_int_equal(l.n, 1);
	eb_store_key_list_finish(&l);
	assert_true(jwks_has(fx->s, kid));
	assert_int_equal(jwks_count(fx->s), 1);
}

static void
test_sign_verify(void **state)
{
	struct fx *fx = *state;
	json_t *c = json_pack("{s:s,s:I}", "sub", "x", "exp", (json_int_t)1);
	json_t *out = NULL;
	char *tok = eb_signer_sign(fx->s, "at+jwt", c), *bad;
	size_t n;

	assert_non_null(tok);
	assert_int_equal(eb_signer_verify(fx->s, tok, "at+jwt", &out), 0);
	assert_string_equal(json_string_value(json_object_get(out, "sub")),
	                    "x");
	json_decref(out);
	/* typ is checked */
	assert_int_equal(eb_signer_verify(fx->s, tok, "JWT", &out), -1);
	assert_null(out);
	/* any altered byte of the signature */
	bad = eb_strdup(tok);
	n = strlen(bad);
	bad[n - 5] = bad[n - 5] == 'A' ? 'B' : 'A';
	assert_int_equal(eb_signer_verify(fx->s, bad, "at+jwt", &out), -1);
	eb_free(bad);
	assert_int_equal(eb_signer_verify(fx->s, "a.b.c", "at+jwt", &out), -1);
	assert_int_equal(eb_signer_verify(fx->s, "", "at+jwt", &out), -1);
	eb_free(tok);
	json_decref(c);
}

static void
test_rotate_and_refresh(void **state)
{
	struct fx *fx = *state;
	struct eb_store *other;
	struct eb_store_key_list l;
	json_t *c = json_pack("{s:s}", "sub", "x"), *out = NULL;
	char old[EB_JOSE_MAX_KID + 1], nkid[EB_JOSE_MAX_KID + 1], err[256];
	char *t_old, *t_new;
	int64_t now = (int64_t)time(NULL);
	size_t i;

	snprintf(old, sizeof(old), "%s", kid_of(fx->s));
	t_old = eb_signer_sign(fx->s, "at+jwt", c);
	assert_non_null(t_old);

	/* rotation through another handle, as `keys rotate` does */
	other = eb_store_open(NULL, fx->db, err, sizeof(err));
	assert_non_null(other);
	assert_int_equal(eb_signer_rotate(other, fx->seal, MAX_TTL, nkid,
	                                  sizeof(nkid), err, sizeof(err)),
	                 0);
	assert_string_not_equal(nkid, old);
	assert_int_equal(eb_store_key_list(other, NULL, &l), EB_STORE_OK);
	assert_int_equal(l.n, 2);
	for (i = 0; i < l.n; i++) {
		if (strcmp(l.v[i].kid, old) == 0) {
			assert_in_range(l.v[i].retired_at, now, now + 5);
			/* published for the longest token life + a margin */
			assert_true(l.v[i].not_after >= now + MAX_TTL + 60);
		} else
			assert_int_equal(l.v[i].retired_at, 0);
	}
	eb_store_key_list_finish(&l);

	/* the running signer picks it up on refresh */
	assert_int_equal(eb_signer_refresh(fx->s), 0);
	assert_string_equal(kid_of(fx->s), nkid);
	assert_true(jwks_has(fx->s, old));
	assert_true(jwks_has(fx->s, nkid));
	assert_int_equal(jwks_count(fx->s), 2);
	/* old tokens still verify, new ones use the new key */
	assert_int_equal(eb_signer_verify(fx->s, t_old, "at+jwt", &out), 0);
	json_decref(out);
	t_new = eb_signer_sign(fx->s, "at+jwt", c);
	assert_non_null(t_new);
	assert_int_equal(eb_signer_verify(fx->s, t_new, "at+jwt", &out), 0);
	json_decref(out);

	/* a refresh with nothing changed keeps everything */
	assert_int_equal(eb_signer_refresh(fx->s), 0);
	assert_string_equal(kid_of(fx->s), nkid);
	assert_int_equal(jwks_count(fx->s), 2);

	/* once the old key is past not_after it leaves the JWKS and its
	 * tokens stop verifying */
	assert_int_equal(eb_store_key_retire(other, old, now - 10, now - 1),
	                 EB_STORE_OK);
	assert_int_equal(eb_signer_refresh(fx->s), 0);
	assert_false(jwks_has(fx->s, old));
	assert_true(jwks_has(fx->s, nkid));
	assert_int_equal(eb_signer_verify(fx->s, t_old, "at+jwt", &out), -1);
	assert_int_equal(eb_signer_verify(fx->s, t_new, "at+jwt", &out), 0);
	json_decref(out);

	eb_store_close(other);
	eb_free(t_old);
	eb_free(t_new);
	json_decref(c);
}

/* A key another process added becomes usable on an unknown kid, without
 * waiting for the periodic refresh. */
static void
test_unknown_kid_refresh(void **state)
{
	struct fx *fx = *state;
	struct eb_signer *s2;
	json_t *c = json_pack("{s:s}", "sub", "x"), *out = NULL;
	char nkid[EB_JOSE_MAX_KID + 1], err[256], *tok;

	assert_int_equal(eb_signer_rotate(fx->store, fx->seal, MAX_TTL, nkid,
	                                  sizeof(nkid), err, sizeof(err)),
	                 0);
	s2 = eb_signer_open(fx->store, fx->seal, MAX_TTL, err, sizeof(err));
	assert_non_null(s2);
	assert_string_equal(kid_of(s2), nkid);
	tok = eb_signer_sign(s2, "at+jwt", c);
	assert_int_equal(eb_signer_verify(fx->s, tok, "at+jwt", &out), 0);
	json_decref(out);
	eb_signer_close(s2);
	eb_free(tok);
	json_decref(c);
}

/* A key rotated with a delay is published at once and signs only from its
 * activation; a second rotation while it is pending is refused. */
static void
test_rotate_delayed(void **state)
{
	struct fx *fx = *state;
	struct eb_seal_ring *ring;
	struct eb_signer *s2;
	char old[EB_JOSE_MAX_KID + 1], nkid[EB_JOSE_MAX_KID + 1], err[256];
	char k2[EB_JOSE_MAX_KID + 1], *tok;
	json_t *c = json_pack("{s:s}", "sub", "x");
	int i;

	snprintf(old, sizeof(old), "%s", kid_of(fx->s));
	assert_non_null(ring = eb_seal_ring_of(fx->seal));
	assert_int_equal(eb_signer_rotate_ring(fx->store, ring, MAX_TTL, 2,
	                                       nkid, sizeof(nkid), err,
	                                       sizeof(err)),
	                 0);
	assert_int_equal(eb_signer_refresh(fx->s), 0);
	/* published before it signs: every verifier knows it in time */
	assert_true(jwks_has(fx->s, nkid));
	assert_string_equal(kid_of(fx->s), old);
	/* a signer opened now (another replica) signs with the old key too,
	 * and makes no key of its own */
	s2 = eb_signer_open(fx->store, fx->seal, MAX_TTL, err, sizeof(err));
	assert_non_null(s2);
	assert_string_equal(kid_of(s2), old);
	/* a second rotation would retire the pending key before it signed */
	assert_int_equal(eb_signer_rotate_ring(fx->store, ring, MAX_TTL, 2, k2,
	                                       sizeof(k2), err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "pending"));
	sleep(3);
	/* at its activation every signer switches, without a store change
	 * (signing looks at the store at most every 2 s) */
	for (i = 0; i < 2; i++) {
		struct eb_signer *sg = i == 0 ? fx->s : s2;

		assert_non_null(tok = eb_signer_sign(sg, "at+jwt", c));
		eb_free(tok);
		assert_string_equal(kid_of(sg), nkid);
	}
	assert_true(jwks_has(fx->s, old));

	/* a signer that did not look at the store before the activation
	 * publishes the new key first, and signs with it one refresh later */
	assert_int_equal(eb_signer_rotate_ring(fx->store, ring, MAX_TTL, 1, k2,
	                                       sizeof(k2), err, sizeof(err)),
	                 0);
	sleep(2);
	assert_int_equal(eb_signer_refresh(s2), 0);
	assert_true(jwks_has(s2, k2));
	assert_string_equal(kid_of(s2), nkid);
	sleep(1);
	assert_int_equal(eb_signer_refresh(s2), 0);
	assert_string_equal(kid_of(s2), k2);
	eb_signer_close(s2);
	eb_seal_ring_free(ring);
	json_decref(c);
}

/* A row whose private half does not open under our seal key is never
 * published nor trusted, even when "retired" (public key only needed). */
static void
test_untrusted_row_ignored(void **state)
{
	struct fx *fx = *state;
	struct eb_jose_key *k = eb_jose_key_generate();
	char *pub = eb_jose_key_public_json(k), *priv, *tok;
	uint8_t other_seal[32], *sealed = NULL;
	size_t privlen = 0, sealed_len = 0;
	json_t *c = json_pack("{s:s}", "sub", "x"), *out = NULL;
	struct eb_store_key row;
	int64_t now = (int64_t)time(NULL);

	memset(other_seal, 0x22, sizeof(other_seal));
	priv = eb_jose_key_private_json(k, &privlen);
	assert_int_equal(eb_seal_seal(other_seal, eb_jose_key_kid(k),
	                              strlen(eb_jose_key_kid(k)), priv, privlen,
	                              &sealed, &sealed_len),
	                 0);
	memset(&row, 0, sizeof(row));
	row.kid = (char *)eb_jose_key_kid(k);
	row.tenant = "";
	row.alg = "ES256";
	row.created = now + 100; /* newest: would be current if trusted */
	/* signing (active, retired only later), beside the one current
	 * key the store allows */
	row.retired_at = now + 1000;
	row.public_jwk = pub;
	row.private_key = sealed;
	row.private_key_len = sealed_len;
	assert_int_equal(eb_store_key_put(fx->store, &row), EB_STORE_OK);
	assert_int_equal(eb_signer_refresh(fx->s), 0);
	assert_false(jwks_has(fx->s, row.kid));
	assert_string_not_equal(kid_of(fx->s), row.kid);
	assert_int_equal(eb_signer_key_usable(fx->seal, &row), 0);
	tok = eb_jose_key_sign(k, "at+jwt", c);
	assert_int_equal(eb_signer_verify(fx->s, tok, "at+jwt", &out), -1);
	eb_free(tok);
	eb_free_secret(priv, privlen);
	eb_free(pub);
	eb_free(sealed);
	eb_jose_key_destroy(k);
	json_decref(c);
}

struct hammer {
	struct fx *fx;
	char *tok;
	volatile int stop;
	int failures;
};

static void *
hammer_main(void *arg)
{
	struct hammer *h = arg;
	json_t *out;
	char *j;

	while (!h->stop) {
		out = NULL;
		if (eb_signer_verify(h->fx->s, h->tok, "at+jwt", &out) != 0)
			__atomic_add_fetch(&h->failures, 1, __ATOMIC_RELAXED);
		json_decref(out);
		if ((j = eb_signer_jwks(h->fx->s, NULL)) == NULL)
			__atomic_add_fetch(&h->failures, 1, __ATOMIC_RELAXED);
		eb_free(j);
	}
	return NULL;
}

/* Readers never see a half-swapped key set while rotations happen. */
static void
test_concurrent_rotation(void **state)
{
	struct fx *fx = *state;
	struct hammer h;
	pthread_t th[4];
	json_t *c = json_pack("{s:s}", "sub", "x");
	char kid[EB_JOSE_MAX_KID + 1], err[256];
	int i;

	memset(&h, 0, sizeof(h));
	h.fx = fx;
	h.tok = eb_signer_sign(fx->s, "at+jwt", c);
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer_main, &h),
		                 0);
	for (i = 0; i < 5; i++) {
		assert_int_equal(eb_signer_rotate(fx->store, fx->seal, MAX_TTL,
		                                  kid, sizeof(kid), err,
		                                  sizeof(err)),
		                 0);
		assert_int_equal(eb_signer_refresh(fx->s), 0);
		assert_string_equal(kid_of(fx->s), kid);
	}
	h.stop = 1;
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(h.failures, 0);
	assert_int_equal(jwks_count(fx->s), 6);
	eb_free(h.tok);
	json_decref(c);
}

/* ---- access tokens ---------------------------------------------------- */

static void
test_issue_claims(void **state)
{
	struct fx *fx = *state;
	int64_t now = (int64_t)time(NULL);
	char *tok, hash[EB_STORE_HASH_HEXLEN + 1];
	struct eb_store_token st;
	struct eb_bearer b;
	json_t *out = NULL;

	fx_mk_grant(fx->store, "g1", "acme", now + 7200);
	tok = issue(fx, fx->acme, "g1", now + 600);
	assert_int_equal(eb_signer_verify(fx->s, tok, "at+jwt", &out), 0);
	assert_string_equal(json_string_value(json_object_get(out, "iss")),
	                    "https://eb.example.com/t/acme");
	assert_string_equal(json_string_value(json_object_get(out, "aud")),
	                    "https://eb.example.com/t/acme/mdm");
	assert_string_equal(json_string_value(json_object_get(out, "grant_id")),
	                    "g1");
	assert_string_equal(
	    json_string_value(json_object_get(out, "enrollment_mode")), "BYOD");
	assert_string_equal(json_string_value(json_object_get(out, "scope")),
	                    "mdm");
	assert_int_equal(json_integer_value(json_object_get(out, "exp")),
	                 now + 600);
	assert_true(json_is_string(json_object_get(out, "jti")));
	assert_true(json_is_integer(json_object_get(out, "iat")));
	/* the store holds the SHA-256 of the whole token, with the jti */
	assert_int_equal(eb_store_hash_token(tok, strlen(tok), hash), 0);
	memset(&st, 0, sizeof(st));
	assert_int_equal(eb_store_token_get(fx->store, hash, &st), EB_STORE_OK);
	assert_int_equal(st.kind, EB_STORE_TOKEN_WEB);
	assert_string_equal(st.grant_id, "g1");
	assert_string_equal(st.tenant, "acme");
	assert_string_equal(st.jti,
	                    json_string_value(json_object_get(out, "jti")));
	assert_int_equal(st.expires, now + 600);
	eb_store_token_finish(&st);
	json_decref(out);

	/* accepted, with the grant's facts */
	assert_int_equal(
	    eb_bearer_check(fx->s, fx->store, fx->cfg, fx->acme, tok, now, &b),
	    EB_BEARER_OK);
	assert_string_equal(b.grant_id, "g1");
	assert_string_equal(b.managed_apple_id, "alice@appleid.acme.example");
	assert_string_equal(b.enrollment_mode, "BYOD");
	assert_string_equal(b.client_id, "apple-device");
	assert_null(b.binding_kind);
	assert_int_equal(b.exp, now + 600);
	assert_non_null(b.claims);
	eb_bearer_finish(&b);
	assert_null(b.grant_id);

	/* two tokens never share a jti or a hash */
	{
		char *tok2 = issue(fx, fx->acme, "g1", now + 600);

		assert_string_not_equal(tok, tok2);
		eb_free_secret_str(tok2);
	}
	eb_free_secret_str(tok);
}

/* The grant's route and mdm.claims snapshot travel in its tokens. */
static void
test_grant_extra_claims(void **state)
{
	struct fx *fx = *state;
	int64_t now = (int64_t)time(NULL);
	struct eb_access_claims c = {
	    .grant_id = "g1",
	    .sub = "alice@appleid.acme.example",
	    .managed_apple_id = "alice@appleid.acme.example",
	    .enrollment_mode = "BYOD",
	    .grant_extra =
	        "{\"sub\":\"s\",\"route\":\"eng\",\"login\":\"a\","
	        "\"idp\":{\"name\":\"Zo\\u00eb\",\"groups\":[\"g\"]}}",
	    .iat = now,
	    .exp = now + 600,
	};
	json_t *out = NULL, *idp;
	char *tok;

	fx_mk_grant(fx->store, "g1", "acme", now + 7200);
	tok = eb_token_issue(fx->s, fx->store, fx->cfg, fx->acme, &c,
	                     EB_STORE_TOKEN_WEB);
	assert_non_null(tok);
	assert_int_equal(eb_signer_verify(fx->s, tok, "at+jwt", &out), 0);
	assert_string_equal(json_string_value(json_object_get(out, "route")),
	                    "eng");
	idp = json_object_get(out, "idp");
	assert_true(json_is_object(idp));
	assert_string_equal(json_string_value(json_object_get(idp, "name")),
	                    "Zo\xc3\xab");
	assert_int_equal(json_array_size(json_object_get(idp, "groups")), 1);
	/* the rest of extra stays in the grant */
	assert_null(json_object_get(out, "login"));
	assert_string_equal(json_string_value(json_object_get(out, "sub")),
	                    "alice@appleid.acme.example");
	json_decref(out);
	eb_free_secret_str(tok);
	/* no extra, or an unreadable one: neither claim */
	c.grant_extra = "not json";
	tok = eb_token_issue(fx->s, fx->store, fx->cfg, fx->acme, &c,
	                     EB_STORE_TOKEN_WEB);
	assert_non_null(tok);
	assert_int_equal(eb_signer_verify(fx->s, tok, "at+jwt", &out), 0);
	assert_null(json_object_get(out, "route"));
	assert_null(json_object_get(out, "idp"));
	json_decref(out);
	eb_free_secret_str(tok);
}

static void
test_bearer_refusals(void **state)
{
	struct fx *fx = *state;
	int64_t now = (int64_t)time(NULL);
	char *tok, *bad, *big, hash[EB_STORE_HASH_HEXLEN + 1];
	size_t n;

	fx_mk_grant(fx->store, "g1", "acme", now + 7200);
	tok = issue(fx, fx->acme, "g1", now + 600);
	assert_int_equal(check(fx, fx->acme, tok, now), EB_BEARER_OK);

	/* missing, malformed, oversize, tampered */
	assert_int_equal(check(fx, fx->acme, NULL, now), EB_BEARER_MISSING);
	assert_int_equal(check(fx, fx->acme, "", now), EB_BEARER_MISSING);
	assert_int_equal(check(fx, fx->acme, "not-a-jwt", now),
	                 EB_BEARER_MALFORMED);
	big = calloc(1, EB_TOKEN_MAX_LEN + 2);
	memset(big, 'a', EB_TOKEN_MAX_LEN + 1);
	assert_int_equal(check(fx, fx->acme, big, now), EB_BEARER_MALFORMED);
	free(big);
	bad = eb_strdup(tok);
	n = strlen(bad);
	bad[n - 3] = bad[n - 3] == 'x' ? 'y' : 'x';
	assert_int_equal(check(fx, fx->acme, bad, now), EB_BEARER_MALFORMED);
	/* payload swapped for another one: signature no longer matches */
	{
		char *dot1 = strchr(bad, '.');

		memcpy(bad, tok, n);
		dot1[1] = dot1[1] == 'e' ? 'f' : 'e';
		assert_int_equal(check(fx, fx->acme, bad, now),
		                 EB_BEARER_MALFORMED);
	}
	eb_free(bad);

	/* expiry: our own tokens get no clock leeway (RFC 7519 4.1.4: not
	 * accepted on or after exp), cached or not */
	assert_int_equal(check(fx, fx->acme, tok, now + 600 - 1), EB_BEARER_OK);
	assert_int_equal(check(fx, fx->acme, tok, now + 600),
	                 EB_BEARER_EXPIRED);
	assert_int_equal(check(fx, fx->acme, tok, now + 600 + 5),
	                 EB_BEARER_EXPIRED);

	/* presented to another tenant (iss differs) */
	assert_int_equal(check(fx, fx->other, tok, now),
	                 EB_BEARER_WRONG_TENANT);

	/* right iss, wrong aud */
	bad = forge(fx, "at+jwt", "https://eb.example.com/t/acme",
	            "https://mdm.elsewhere.example", "g1", now + 600, 1);
	assert_int_equal(check(fx, fx->acme, bad, now), EB_BEARER_WRONG_TENANT);
	eb_free(bad);

	/* our signature, typ JWT (an ID-token-like thing): refused */
	bad = forge(fx, "JWT", "https://eb.example.com/t/acme",
	            "https://eb.example.com/t/acme/mdm", "g1", now + 600, 0);
	assert_int_equal(check(fx, fx->acme, bad, now), EB_BEARER_MALFORMED);
	eb_free(bad);

	/* well signed, all claims right, but never issued (not in store) */
	bad = forge(fx, "at+jwt", "https://eb.example.com/t/acme",
	            "https://eb.example.com/t/acme/mdm", "g1", now + 600, 0);
	assert_int_equal(check(fx, fx->acme, bad, now), EB_BEARER_UNKNOWN);
	eb_free(bad);

	/* the token revoked alone */
	assert_int_equal(eb_store_hash_token(tok, strlen(tok), hash), 0);
	assert_int_equal(eb_store_token_revoke(fx->store, hash, now),
	                 EB_STORE_OK);
	assert_int_equal(check(fx, fx->acme, tok, now), EB_BEARER_REVOKED);
	eb_free_secret_str(tok);

	/* the grant revoked: every token of it refused at once */
	tok = issue(fx, fx->acme, "g1", now + 600);
	assert_int_equal(check(fx, fx->acme, tok, now), EB_BEARER_OK);
	assert_int_equal(eb_store_grant_set_status(fx->store, "g1",
	                                           EB_STORE_GRANT_REVOKED,
	                                           "test", now),
	                 EB_STORE_OK);
	assert_int_equal(check(fx, fx->acme, tok, now), EB_BEARER_REVOKED);
	eb_free_secret_str(tok);

	/* the grant expired before the token */
	fx_mk_grant(fx->store, "g2", "acme", now + 10);
	tok = issue(fx, fx->acme, "g2", now + 3600);
	assert_int_equal(check(fx, fx->acme, tok, now), EB_BEARER_OK);
	assert_int_equal(check(fx, fx->acme, tok, now + 20), EB_BEARER_REVOKED);
	eb_free_secret_str(tok);

	/* a token of tenant acme naming another tenant's grant */
	fx_mk_grant(fx->store, "g3", "other", now + 7200);
	tok = issue(fx, fx->acme, "g3", now + 600);
	assert_int_equal(check(fx, fx->acme, tok, now), EB_BEARER_WRONG_TENANT);
	eb_free_secret_str(tok);
}

static void
test_bearer_header(void **state)
{
	const char *p;

	assert_string_equal(eb_bearer_from_header("Bearer abc.def-_~+/=="),
	                    "abc.def-_~+/==");
	assert_string_equal(eb_bearer_from_header("bearer abc"), "abc");
	assert_string_equal(eb_bearer_from_header("BEARER  abc"), "abc");
	assert_null(eb_bearer_from_header(NULL));
	assert_null(eb_bearer_from_header(""));
	assert_null(eb_bearer_from_header("Bearer"));
	assert_null(eb_bearer_from_header("Bearer "));
	assert_null(eb_bearer_from_header("Basic abc"));
	assert_null(eb_bearer_from_header("Bearerabc"));
	assert_null(eb_bearer_from_header("Bearer abc def"));
	assert_null(eb_bearer_from_header("Bearer abc "));
	assert_null(eb_bearer_from_header("Bearer abc,def"));
	assert_null(eb_bearer_from_header("Bearer a=b"));
	assert_null(eb_bearer_from_header("Bearer\tabc"));
	p = eb_bearer_from_header("Bearer x");
	assert_string_equal(p, "x");
	assert_string_equal(eb_bearer_result_name(EB_BEARER_OK), "ok");
	assert_string_equal(eb_bearer_result_name(EB_BEARER_WRONG_TENANT),
	                    "wrong_tenant");
	assert_string_equal(eb_bearer_result_name(99), "invalid");
}

static void
test_max_ttl(void **state)
{
	struct fx *fx = *state;

	/* defaults: refresh_ttl 7776000 is the longest */
	assert_int_equal(eb_signer_max_ttl(fx->cfg), 7776000);
	assert_int_equal(eb_signer_max_ttl(NULL), 0);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_first_key_sealed),
	    T(test_sign_verify),
	    T(test_rotate_and_refresh),
	    T(test_unknown_kid_refresh),
	    T(test_rotate_delayed),
	    T(test_untrusted_row_ignored),
	    T(test_concurrent_rotation),
	    T(test_issue_claims),
	    T(test_grant_extra_claims),
	    T(test_bearer_refusals),
	    cmocka_unit_test(test_bearer_header),
	    T(test_max_ttl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
