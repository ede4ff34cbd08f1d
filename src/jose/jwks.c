/*
 * JWKS documents: parse, keep only keys we can safely verify with, and
 * share the result by reference count. Keys are rebuilt from their decoded
 * public members through cjose_jwk_create_{RSA,EC}_spec (never from the raw
 * JSON), so private members a careless IdP might publish are ignored, and we
 * record beside each key what its algs, curve and signature length must be.
 */
#include "jose/jose_int.h"

#include <string.h>

#include "core/log.h"
#include "core/mem.h"

/* 1 when s is a sane kid: 1..EB_JOSE_MAX_KID printable ASCII bytes. */
static int
kid_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > EB_JOSE_MAX_KID)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

/* Strip leading zero bytes of a big-endian integer. */
static void
strip_zeros(const uint8_t **p, size_t *len)
{
	while (*len > 0 && (*p)[0] == 0) {
		(*p)++;
		(*len)--;
	}
}

static size_t
bit_length(const uint8_t *p, size_t len)
{
	size_t bits;
	uint8_t top;

	if (len == 0)
		return 0;
	bits = (len - 1) * 8;
	for (top = p[0]; top != 0; top >>= 1)
		bits++;
	return bits;
}

/* Build an RSA public key into k; 0 on success, -1 to skip the key. */
static int
load_rsa(json_t *j, struct eb_jose_int_key *k)
{
	cjose_jwk_rsa_keyspec spec;
	uint8_t *n = NULL, *e = NULL;
	const uint8_t *np, *ep;
	size_t nlen = 0, elen = 0, bits;
	int rc = -1;

	if (eb_jose_int_member_b64(j, "n", &n, &nlen) != 0 ||
	    eb_jose_int_member_b64(j, "e", &e, &elen) != 0)
		goto out_free;
	np = n;
	ep = e;
	strip_zeros(&np, &nlen);
	strip_zeros(&ep, &elen);
	bits = bit_length(np, nlen);
	if (bits < EB_JOSE_MIN_RSA_BITS || bits > EB_JOSE_MAX_RSA_BITS ||
	    (np[nlen - 1] & 1) == 0) {
		log_info("skipping RSA key of %zu bits", bits);
		goto out_free;
	}
	/* An odd exponent of at most 64 bits, at least 3. */
	if (elen == 0 || elen > 8 || (ep[elen - 1] & 1) == 0 ||
	    (elen == 1 && ep[0] < 3))
		goto out_free;
	memset(&spec, 0, sizeof(spec));
	spec.n = (uint8_t *)np;
	spec.nlen = nlen;
	spec.e = (uint8_t *)ep;
	spec.elen = elen;
	if ((k->jwk = cjose_jwk_create_RSA_spec(&spec, NULL)) == NULL)
		goto out_free;
	k->kty = CJOSE_JWK_KTY_RSA;
	k->crv = 0;
	k->sig_len = nlen;
	k->algs = EB_JOSE_RS256 | EB_JOSE_RS384 | EB_JOSE_RS512 |
	          EB_JOSE_PS256 | EB_JOSE_PS384 | EB_JOSE_PS512;
	rc = 0;
out_free:
	eb_free(n);
	eb_free(e);
	return rc;
}

/* Build an EC public key into k; 0 on success, -1 to skip the key. */
static int
load_ec(json_t *j, struct eb_jose_int_key *k)
{
	const struct eb_jose_alg_info *a = NULL;
	cjose_jwk_ec_keyspec spec;
	uint8_t *x = NULL, *y = NULL;
	size_t xlen = 0, ylen = 0, coord;
	const char *crv = json_string_value(json_object_get(j, "crv"));
	int rc = -1;

	if (crv == NULL)
		return -1;
	if (strcmp(crv, "P-256") == 0)
		a = eb_jose_int_alg(EB_JOSE_ES256);
	else if (strcmp(crv, "P-384") == 0)
		a = eb_jose_int_alg(EB_JOSE_ES384);
	else if (strcmp(crv, "P-521") == 0)
		a = eb_jose_int_alg(EB_JOSE_ES512);
	if (a == NULL)
		return -1;
	coord = a->ec_sig / 2;
	if (eb_jose_int_member_b64(j, "x", &x, &xlen) != 0 ||
	    eb_jose_int_member_b64(j, "y", &y, &ylen) != 0 || xlen != coord ||
	    ylen != coord)
		goto out_free;
	memset(&spec, 0, sizeof(spec));
	spec.crv = (cjose_jwk_ec_curve)a->crv;
	spec.x = x;
	spec.xlen = xlen;
	spec.y = y;
	spec.ylen = ylen;
	/* OpenSSL refuses points that are not on the curve here. */
	if ((k->jwk = cjose_jwk_create_EC_spec(&spec, NULL)) == NULL)
		goto out_free;
	k->kty = CJOSE_JWK_KTY_EC;
	k->crv = a->crv;
	k->sig_len = a->ec_sig;
	k->algs = a->bit;
	rc = 0;
out_free:
	eb_free(x);
	eb_free(y);
	return rc;
}

/* 1 when key_ops is absent or lists "verify". */
static int
ops_allow_verify(json_t *j)
{
	json_t *ops = json_object_get(j, "key_ops"), *v;
	size_t i;

	if (ops == NULL)
		return 1;
	if (!json_is_array(ops))
		return 0;
	json_array_foreach(ops, i, v)
	{
		if (json_is_string(v) &&
		    strcmp(json_string_value(v), "verify") == 0)
			return 1;
	}
	return 0;
}

/*
 * Fill k from one JWK object. 0 when usable, 1 to skip it, -1 when out of
 * memory.
 */
static int
load_key(json_t *j, struct eb_jose_int_key *k)
{
	json_t *kid = json_object_get(j, "kid"), *use, *alg;
	const char *kty;
	unsigned want = 0;

	memset(k, 0, sizeof(*k));
	if (!json_is_object(j))
		return 1;
	kty = json_string_value(json_object_get(j, "kty"));
	use = json_object_get(j, "use");
	alg = json_object_get(j, "alg");
	if (kty == NULL)
		return 1;
	if (use != NULL && (!json_is_string(use) ||
	                    strcmp(json_string_value(use), "sig") != 0))
		return 1;
	if (alg != NULL &&
	    (!json_is_string(alg) ||
	     (want = eb_jose_alg_from_name(json_string_value(alg))) == 0))
		return 1; /* enc algs, HS*, none: not for us */
	if (kid != NULL &&
	    (!json_is_string(kid) ||
	     !kid_ok(json_string_value(kid), json_string_length(kid))))
		return 1;
	if (!ops_allow_verify(j))
		return 1;
	if (strcmp(kty, "RSA") == 0) {
		if (load_rsa(j, k) != 0)
			return 1;
	} else if (strcmp(kty, "EC") == 0) {
		if (load_ec(j, k) != 0)
			return 1;
	} else
		return 1;
	if (want != 0)
		k->algs &= want;
	if (k->algs == 0)
		goto out_release;
	if (kid != NULL &&
	    (k->kid = eb_strdup(json_string_value(kid))) == NULL) {
		cjose_jwk_release(k->jwk);
		k->jwk = NULL;
		return -1;
	}
	return 0;
out_release:
	cjose_jwk_release(k->jwk);
	k->jwk = NULL;
	return 1;
}

struct eb_jose_jwks *
eb_jose_jwks_parse(const char *json, size_t len, size_t max_keys,
                   enum eb_jose_err *errp)
{
	enum eb_jose_err err = EB_JOSE_ERR_BAD_JWKS;
	struct eb_jose_jwks *jwks = NULL;
	json_t *doc = NULL, *keys, *j;
	size_t i, nkeys;
	int rc;

	if (max_keys == 0)
		max_keys = EB_JOSE_MAX_KEYS;
	if (json == NULL || len == 0)
		goto out;
	if (len > EB_JOSE_MAX_JWKS) {
		err = EB_JOSE_ERR_TOO_LARGE;
		goto out;
	}
	if ((doc = eb_jose_json_parse_object(json, len, EB_JOSE_MAX_DEPTH)) ==
	    NULL)
		goto out;
	keys = json_object_get(doc, "keys");
	if (!json_is_array(keys))
		goto out_free_doc;
	nkeys = json_array_size(keys);
	if (nkeys > max_keys) {
		log_warnx("JWKS lists %zu keys, more than %zu: refused", nkeys,
		          max_keys);
		err = EB_JOSE_ERR_TOO_MANY_KEYS;
		goto out_free_doc;
	}
	err = EB_JOSE_ERR_NOMEM;
	if ((jwks = eb_calloc(1, sizeof(*jwks))) == NULL)
		goto out_free_doc;
	atomic_init(&jwks->refs, 1);
	if (nkeys > 0 &&
	    (jwks->keys = eb_calloc(nkeys, sizeof(*jwks->keys))) == NULL)
		goto out_free_jwks;
	json_array_foreach(keys, i, j)
	{
		rc = load_key(j, &jwks->keys[jwks->n]);
		if (rc < 0)
			goto out_free_jwks;
		if (rc == 0)
			jwks->n++;
	}
	json_decref(doc);
	if (errp != NULL)
		*errp = EB_JOSE_OK;
	return jwks;
out_free_jwks:
	eb_jose_jwks_release(jwks);
	jwks = NULL;
out_free_doc:
	json_decref(doc);
out:
	if (errp != NULL)
		*errp = err;
	return NULL;
}

struct eb_jose_jwks *
eb_jose_jwks_retain(struct eb_jose_jwks *jwks)
{
	if (jwks != NULL)
		atomic_fetch_add_explicit(&jwks->refs, 1, memory_order_relaxed);
	return jwks;
}

void
eb_jose_jwks_release(struct eb_jose_jwks *jwks)
{
	size_t i;

	if (jwks == NULL || atomic_fetch_sub_explicit(
	                        &jwks->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (i = 0; i < jwks->n; i++) {
		cjose_jwk_release(jwks->keys[i].jwk);
		eb_free(jwks->keys[i].kid);
	}
	eb_free(jwks->keys);
	eb_free(jwks);
}

size_t
eb_jose_jwks_count(const struct eb_jose_jwks *jwks)
{
	return jwks == NULL ? 0 : jwks->n;
}

int
eb_jose_jwks_has_kid(const struct eb_jose_jwks *jwks, const char *kid)
{
	size_t i;

	if (jwks == NULL || kid == NULL)
		return 0;
	for (i = 0; i < jwks->n; i++)
		if (jwks->keys[i].kid != NULL &&
		    strcmp(jwks->keys[i].kid, kid) == 0)
			return 1;
	return 0;
}
