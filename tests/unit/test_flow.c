/*
 * Unit tests for login flows sealed into the challenge URL
 * (src/handle/flow.c): what goes in comes out, for its tenant only, until
 * its expiry; an altered, truncated, foreign or oversized text never
 * opens; the row id is the hash of the text. The same for the upstream
 * state a sign-in start seals for its callback (flow.h), which also never
 * opens as a challenge flow nor the other way round. Across a seal_keys
 * rotation a flow sealed under the old first key still opens, and so does
 * one sealed before the ring's flow subkeys (a version 1 blob).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/mem.h"
#include "jose/b64.h"
#include "handle/flow.h"
#include "store/store.h"

static const uint8_t key[EB_SEAL_KEY_LEN] = "0123456789abcdef0123456789abcde";
static const uint8_t other_key[EB_SEAL_KEY_LEN] =
    "fedcba9876543210fedcba987654321";
/* rings of key and of other_key (setup) */
static struct eb_seal_ring *ring, *other_ring;

static struct eb_store_flow
full_flow(void)
{
	struct eb_store_flow f;

	memset(&f, 0, sizeof(f));
	f.id = "ignored";
	f.tenant = "acme";
	f.kind = EB_STORE_FLOW_APPLE_AS_WEB;
	f.created = 1000;
	f.expires = 1600;
	f.enrollment_mode = "BYOD";
	f.model_family = "iPhone";
	f.product = "iPhone15,2";
	f.version = "21A329";
	f.language = "en-US";
	f.os_version = "17.0";
	f.udid = "00008120-0011223344556677";
	f.serial = "F2LXK0AAHG7F";
	f.extra = "{\"replaces\":\"g-123\"}";
	f.upstream_state = "not carried";
	return f;
}

static void
test_round_trip(void **state)
{
	struct eb_store_flow in = full_flow(), out;
	char *text, hash[EB_STORE_HASH_HEXLEN + 1];

	(void)state;
	assert_int_equal(eb_flow_seal(ring, &in, &text), 0);
	/* URL-safe as it is, and no identifier readable in it */
	assert_true(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
	                         "rstuvwxyz0123456789-_") == strlen(text));
	assert_null(strstr(text, "F2LXK0AAHG7F"));
	assert_true(strlen(text) < 512);

	assert_int_equal(eb_flow_open(ring, "acme", text, 1599, &out),
	                 EB_FLOW_OPEN_OK);
	assert_int_equal(eb_store_hash_token(text, strlen(text), hash), 0);
	assert_string_equal(out.id, hash);
	assert_string_equal(out.tenant, "acme");
	assert_int_equal(out.kind, EB_STORE_FLOW_APPLE_AS_WEB);
	assert_int_equal(out.created, 1000);
	assert_int_equal(out.expires, 1600);
	assert_string_equal(out.enrollment_mode, "BYOD");
	assert_string_equal(out.model_family, "iPhone");
	assert_string_equal(out.product, "iPhone15,2");
	assert_string_equal(out.version, "21A329");
	assert_string_equal(out.language, "en-US");
	assert_string_equal(out.os_version, "17.0");
	assert_string_equal(out.udid, "00008120-0011223344556677");
	assert_string_equal(out.serial, "F2LXK0AAHG7F");
	assert_string_equal(out.extra, "{\"replaces\":\"g-123\"}");
	assert_null(out.upstream_state);
	assert_null(out.user_identifier);
	eb_store_flow_finish(&out);

	/* two challenges, two flows: the seal is randomised */
	{
		char *again;

		assert_int_equal(eb_flow_seal(ring, &in, &again), 0);
		assert_string_not_equal(text, again);
		eb_free(again);
	}
	eb_free(text);
}

static void
test_minimal(void **state)
{
	struct eb_store_flow in, out;
	char *text;

	(void)state;
	memset(&in, 0, sizeof(in));
	in.tenant = "t1";
	in.kind = EB_STORE_FLOW_OAUTH2_AUTHORIZE;
	in.created = 5;
	in.expires = 65;
	assert_int_equal(eb_flow_seal(ring, &in, &text), 0);
	assert_int_equal(eb_flow_open(ring, "t1", text, 6, &out),
	                 EB_FLOW_OPEN_OK);
	assert_int_equal(out.kind, EB_STORE_FLOW_OAUTH2_AUTHORIZE);
	assert_null(out.enrollment_mode);
	assert_null(out.udid);
	assert_null(out.extra);
	eb_store_flow_finish(&out);
	eb_free(text);
	/* no tenant: nothing to bind it to */
	in.tenant = NULL;
	assert_int_equal(eb_flow_seal(ring, &in, &text), -1);
	eb_free(text);
}

static void
test_refused(void **state)
{
	struct eb_store_flow in = full_flow(), out;
	char *text, *bad;
	size_t i, n;

	(void)state;
	assert_int_equal(eb_flow_seal(ring, &in, &text), 0);
	n = strlen(text);
	/* its expiry passed */
	assert_int_equal(eb_flow_open(ring, "acme", text, 1600, &out),
	                 EB_FLOW_OPEN_EXPIRED);
	eb_store_flow_finish(&out);
	/* another tenant's path, another key */
	assert_int_equal(eb_flow_open(ring, "acme2", text, 1000, &out),
	                 EB_FLOW_OPEN_BAD);
	assert_null(out.udid);
	eb_store_flow_finish(&out);
	assert_int_equal(eb_flow_open(ring, "acm", text, 1000, &out),
	                 EB_FLOW_OPEN_BAD);
	eb_store_flow_finish(&out);
	assert_int_equal(eb_flow_open(other_ring, "acme", text, 1000, &out),
	                 EB_FLOW_OPEN_BAD);
	eb_store_flow_finish(&out);
	/* any one character changed, or the text cut anywhere */
	assert_non_null(bad = eb_strdup(text));
	for (i = 0; i < n; i++) {
		char c = bad[i];

		bad[i] = c == 'A' ? 'B' : 'A';
		assert_int_not_equal(
		    eb_flow_open(ring, "acme", bad, 1000, &out),
		    EB_FLOW_OPEN_OK);
		eb_store_flow_finish(&out);
		bad[i] = c;
	}
	for (i = 0; i < n; i++) {
		bad[i] = '\0';
		assert_int_equal(eb_flow_open(ring, "acme", bad, 1000, &out),
		                 EB_FLOW_OPEN_BAD);
		eb_store_flow_finish(&out);
		bad[i] = text[i];
	}
	eb_free(bad);
	/* not base64url, empty, oversized */
	assert_int_equal(eb_flow_open(ring, "acme", "notaflow!", 1000, &out),
	                 EB_FLOW_OPEN_BAD);
	eb_store_flow_finish(&out);
	assert_int_equal(eb_flow_open(ring, "acme", "", 1000, &out),
	                 EB_FLOW_OPEN_BAD);
	eb_store_flow_finish(&out);
	assert_non_null(bad = eb_malloc(EB_FLOW_MAX_LEN + 2));
	memset(bad, 'A', EB_FLOW_MAX_LEN + 1);
	bad[EB_FLOW_MAX_LEN + 1] = '\0';
	assert_int_equal(eb_flow_open(ring, "acme", bad, 1000, &out),
	                 EB_FLOW_OPEN_BAD);
	eb_store_flow_finish(&out);
	eb_free(bad);
	eb_free(text);
}

/* The largest flow a device can cause still fits the limit. */
static void
test_largest(void **state)
{
	struct eb_store_flow in = full_flow(), out;
	char big[7][257], *text;
	int i;

	(void)state;
	for (i = 0; i < 7; i++) {
		/* 256 bytes of three-byte characters: JSON keeps them raw */
		memset(big[i], 0, sizeof(big[i]));
		while (strlen(big[i]) + 3 <= 255)
			strcat(big[i], "\xe2\x82\xac");
		while (strlen(big[i]) < 256)
			strcat(big[i], "\"");
	}
	in.model_family = big[0];
	in.product = big[1];
	in.version = big[2];
	in.language = big[3];
	in.os_version = big[4];
	in.udid = big[5];
	in.serial = big[6];
	assert_int_equal(eb_flow_seal(ring, &in, &text), 0);
	assert_true(strlen(text) <= EB_FLOW_MAX_LEN);
	assert_int_equal(eb_flow_open(ring, "acme", text, 1000, &out),
	                 EB_FLOW_OPEN_OK);
	assert_string_equal(out.serial, big[6]);
	eb_store_flow_finish(&out);
	eb_free(text);
}

#define VERIFIER "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define NONCE    "n-0S6_WzA2Mj_n-0S6_WzA2Mj_n-0S6_WzA2Mj_xyz"
#define BINDING                                                                \
	"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static struct eb_store_flow
state_flow(void)
{
	struct eb_store_flow f;

	memset(&f, 0, sizeof(f));
	f.id = "ignored";
	f.tenant = "acme";
	f.kind = EB_STORE_FLOW_APPLE_AS_WEB;
	f.created = 1100;
	f.expires = 1600;
	f.enrollment_mode = "ADDE";
	f.user_identifier = "alice@example.com";
	f.extra = "{\"replaces\":\"g-123\"}";
	f.upstream_nonce = NONCE;
	f.pkce_verifier = (uint8_t *)VERIFIER;
	f.pkce_verifier_len = strlen(VERIFIER);
	f.browser_binding = BINDING;
	f.udid = "00008120-0011223344556677"; /* not carried */
	f.upstream_state = "not carried";
	return f;
}

static void
test_state_round_trip(void **state)
{
	struct eb_store_flow in = state_flow(), out;
	char *text, *again, hash[EB_STORE_HASH_HEXLEN + 1];

	(void)state;
	assert_int_equal(eb_flow_state_seal(ring, &in, &text), 0);
	assert_true(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
	                         "rstuvwxyz0123456789-_") == strlen(text));
	/* a usual state stays well under the limit, and no secret shows */
	assert_true(strlen(text) < 600);
	assert_null(strstr(text, "alice"));
	assert_int_equal(eb_flow_state_open(ring, "acme", text, 1599, &out),
	                 EB_FLOW_OPEN_OK);
	assert_int_equal(eb_store_hash_token(text, strlen(text), hash), 0);
	assert_string_equal(out.id, hash);
	assert_string_equal(out.tenant, "acme");
	assert_int_equal(out.kind, EB_STORE_FLOW_APPLE_AS_WEB);
	assert_int_equal(out.created, 1100);
	assert_int_equal(out.expires, 1600);
	assert_string_equal(out.enrollment_mode, "ADDE");
	assert_string_equal(out.user_identifier, "alice@example.com");
	assert_string_equal(out.extra, "{\"replaces\":\"g-123\"}");
	assert_string_equal(out.upstream_nonce, NONCE);
	assert_int_equal(out.pkce_verifier_len, strlen(VERIFIER));
	assert_string_equal((const char *)out.pkce_verifier, VERIFIER);
	assert_string_equal(out.browser_binding, BINDING);
	assert_null(out.udid);
	assert_null(out.upstream_state);
	assert_null(out.client_id);
	eb_store_flow_finish(&out);
	/* two starts of one flow: two states */
	assert_int_equal(eb_flow_state_seal(ring, &in, &again), 0);
	assert_string_not_equal(text, again);
	eb_free(again);
	eb_free(text);

	/* apple-oauth2 carries the device's request */
	in.kind = EB_STORE_FLOW_OAUTH2_AUTHORIZE;
	in.client_id = "apple-device";
	in.redirect_uri = "apple-remotemanagement-user-login:/oauth2/redirect";
	in.device_state = "dev-state";
	in.scope = "mdm";
	assert_int_equal(eb_flow_state_seal(ring, &in, &text), 0);
	assert_int_equal(eb_flow_state_open(ring, "acme", text, 1200, &out),
	                 EB_FLOW_OPEN_OK);
	assert_int_equal(out.kind, EB_STORE_FLOW_OAUTH2_AUTHORIZE);
	assert_string_equal(out.client_id, "apple-device");
	assert_string_equal(
	    out.redirect_uri,
	    "apple-remotemanagement-user-login:/oauth2/redirect");
	assert_string_equal(out.device_state, "dev-state");
	assert_string_equal(out.scope, "mdm");
	eb_store_flow_finish(&out);
	eb_free(text);
}

static void
test_state_refused(void **state)
{
	struct eb_store_flow in = state_flow(), out;
	char *text, *flow, *bad;
	size_t i, n;

	(void)state;
	assert_int_equal(eb_flow_state_seal(ring, &in, &text), 0);
	n = strlen(text);
	assert_int_equal(eb_flow_state_open(ring, "acme", text, 1600, &out),
	                 EB_FLOW_OPEN_EXPIRED);
	eb_store_flow_finish(&out);
	assert_int_equal(eb_flow_state_open(ring, "acme2", text, 1000, &out),
	                 EB_FLOW_OPEN_BAD);
	assert_null(out.pkce_verifier);
	assert_null(out.upstream_nonce);
	eb_store_flow_finish(&out);
	assert_int_equal(
	    eb_flow_state_open(other_ring, "acme", text, 1000, &out),
	    EB_FLOW_OPEN_BAD);
	eb_store_flow_finish(&out);
	/* a state is not a challenge flow, nor a flow a state */
	assert_int_equal(eb_flow_open(ring, "acme", text, 1000, &out),
	                 EB_FLOW_OPEN_BAD);
	eb_store_flow_finish(&out);
	{
		struct eb_store_flow fl = full_flow();

		assert_int_equal(eb_flow_seal(ring, &fl, &flow), 0);
		assert_int_equal(
		    eb_flow_state_open(ring, "acme", flow, 1000, &out),
		    EB_FLOW_OPEN_BAD);
		eb_store_flow_finish(&out);
		eb_free(flow);
	}
	/* any one character changed */
	assert_non_null(bad = eb_strdup(text));
	for (i = 0; i < n; i++) {
		char c = bad[i];

		bad[i] = c == 'A' ? 'B' : 'A';
		assert_int_not_equal(
		    eb_flow_state_open(ring, "acme", bad, 1000, &out),
		    EB_FLOW_OPEN_OK);
		eb_store_flow_finish(&out);
		bad[i] = c;
	}
	eb_free(bad);
	eb_free(text);
	/* what the callback cannot do without is never sealed out */
	in.browser_binding = NULL;
	assert_int_equal(eb_flow_state_seal(ring, &in, &text), -1);
	assert_null(text);
	in = state_flow();
	in.pkce_verifier_len = 42;
	assert_int_equal(eb_flow_state_seal(ring, &in, &text), -1);
	in = state_flow();
	in.upstream_nonce = NULL;
	assert_int_equal(eb_flow_state_seal(ring, &in, &text), -1);
	/* over the limit: refused, not truncated */
	{
		char big[EB_FLOW_STATE_MAX_LEN];

		in = state_flow();
		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		in.device_state = big;
		assert_int_equal(eb_flow_state_seal(ring, &in, &text), -1);
		assert_null(text);
		bad = eb_malloc(EB_FLOW_STATE_MAX_LEN + 2);
		assert_non_null(bad);
		memset(bad, 'A', EB_FLOW_STATE_MAX_LEN + 1);
		bad[EB_FLOW_STATE_MAX_LEN + 1] = '\0';
		assert_int_equal(
		    eb_flow_state_open(ring, "acme", bad, 1000, &out),
		    EB_FLOW_OPEN_BAD);
		eb_store_flow_finish(&out);
		eb_free(bad);
	}
}

/* The largest state a device and a person can cause at a start still fits
 * (typed identifier 320, device state 512 at authorize; the client, its
 * redirect URI and the default scope are the tenant's and do not travel),
 * and adding a 512-byte scope of its own is refused, not truncated. */
static void
test_state_largest(void **state)
{
	struct eb_store_flow in = state_flow(), out;
	char typed[321], ds[513], sc[513], *text;

	(void)state;
	memset(typed, 'u', 320);
	typed[320] = '\0';
	memset(ds, 'd', 512);
	ds[512] = '\0';
	memset(sc, 's', 512);
	sc[512] = '\0';
	in.kind = EB_STORE_FLOW_OAUTH2_AUTHORIZE;
	in.user_identifier = typed;
	in.device_state = ds;
	assert_int_equal(eb_flow_state_seal(ring, &in, &text), 0);
	assert_true(strlen(text) <= EB_FLOW_STATE_MAX_LEN);
	assert_int_equal(eb_flow_state_open(ring, "acme", text, 1000, &out),
	                 EB_FLOW_OPEN_OK);
	assert_string_equal(out.device_state, ds);
	assert_string_equal(out.user_identifier, typed);
	eb_store_flow_finish(&out);
	eb_free(text);
	in.scope = sc;
	assert_int_equal(eb_flow_state_seal(ring, &in, &text), -1);
	assert_null(text);
}

/* [A] seals; [B, A] opens it; [B] does not; a version 1 text opens too. */
static void
test_rotation(void **state)
{
	static const char ad[] = "enrollbridge login flow v1:acme";
	static const char pt[] = "{\"k\":0,\"c\":1000,\"e\":1600,\"u\":\"U1\"}";
	struct eb_store_flow in = full_flow(), out;
	struct eb_seal_ring *ba;
	uint8_t *blob;
	size_t len;
	char *text;

	(void)state;
	assert_non_null(ba = eb_seal_ring_of(other_key));
	assert_int_equal(eb_seal_ring_add(ba, key), 0);
	assert_int_equal(eb_flow_seal(ring, &in, &text), 0);
	assert_int_equal(eb_flow_open(ba, "acme", text, 1000, &out),
	                 EB_FLOW_OPEN_OK);
	assert_string_equal(out.udid, in.udid);
	eb_store_flow_finish(&out);
	assert_int_equal(eb_flow_open(other_ring, "acme", text, 1000, &out),
	                 EB_FLOW_OPEN_BAD);
	eb_store_flow_finish(&out);
	eb_free(text);
	/* sealed before the flow subkeys, with the raw key */
	assert_int_equal(
	    eb_seal_seal(key, ad, strlen(ad), pt, strlen(pt), &blob, &len), 0);
	assert_non_null(text = eb_b64_url_encode(blob, len));
	eb_free(blob);
	assert_int_equal(eb_flow_open(ba, "acme", text, 1000, &out),
	                 EB_FLOW_OPEN_OK);
	assert_string_equal(out.udid, "U1");
	eb_store_flow_finish(&out);
	assert_int_equal(eb_flow_open(other_ring, "acme", text, 1000, &out),
	                 EB_FLOW_OPEN_BAD);
	eb_store_flow_finish(&out);
	eb_free(text);
	eb_seal_ring_free(ba);
}

static int
setup(void **state)
{
	(void)state;
	ring = eb_seal_ring_of(key);
	other_ring = eb_seal_ring_of(other_key);
	return ring == NULL || other_ring == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	eb_seal_ring_free(ring);
	eb_seal_ring_free(other_ring);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_minimal),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_largest),
	    cmocka_unit_test(test_state_round_trip),
	    cmocka_unit_test(test_state_refused),
	    cmocka_unit_test(test_state_largest),
	    cmocka_unit_test(test_rotation),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
