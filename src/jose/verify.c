/*
 * Compact JWS verification. Everything cjose would trust is checked first,
 * in this order: size; exactly three strict base64url parts; a header that
 * is a JSON object without duplicates or "crit"; "alg" on the allow-list;
 * "kid" and "typ"; a key chosen by exact kid whose type, curve and "alg" fit;
 * the signature length that key and alg produce. Only then do cjose_jws_import
 * and cjose_jws_verify see the token (cjose 0.6.2.1 over-reads when alg and
 * key type disagree). The payload is parsed after the signature holds.
 */
#include "jose/jose_int.h"

#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "jose/b64.h"

/* The three parts of a compact JWS, as offsets into the token. */
struct parts {
	const char *hdr, *pay, *sig;
	size_t hdr_len, pay_len, sig_len;
};

static enum eb_jose_err
split(const char *t, size_t len, struct parts *p)
{
	const char *d1, *d2;

	if ((d1 = memchr(t, '.', len)) == NULL)
		return EB_JOSE_ERR_BAD_FORMAT;
	if ((d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - t))) == NULL)
		return EB_JOSE_ERR_BAD_FORMAT;
	if (memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - t)) != NULL)
		return EB_JOSE_ERR_BAD_FORMAT; /* JWE or junk */
	p->hdr = t;
	p->hdr_len = (size_t)(d1 - t);
	p->pay = d1 + 1;
	p->pay_len = (size_t)(d2 - p->pay);
	p->sig = d2 + 1;
	p->sig_len = len - (size_t)(p->sig - t);
	if (!eb_jose_int_is_b64url(p->hdr, p->hdr_len) ||
	    !eb_jose_int_is_b64url(p->pay, p->pay_len) ||
	    !eb_jose_int_is_b64url(p->sig, p->sig_len))
		return EB_JOSE_ERR_BAD_FORMAT;
	if (p->hdr_len == 0 || p->pay_len == 0 ||
	    eb_b64_url_decoded_len(p->hdr_len) < 0 ||
	    eb_b64_url_decoded_len(p->pay_len) < 0 ||
	    eb_b64_url_decoded_len(p->sig_len) < 0)
		return EB_JOSE_ERR_BAD_FORMAT;
	return EB_JOSE_OK;
}

/* typ matches want, case-insensitively, with an optional "application/". */
static int
typ_ok(const char *typ, const char *want)
{
	if (typ == NULL)
		return 0;
	if (strncasecmp(typ, "application/", 12) == 0)
		typ += 12;
	return strcasecmp(typ, want) == 0;
}

/* Check the decoded header; fills *alg and *kid (owned by hdr). */
static enum eb_jose_err
check_header(json_t *hdr, const struct eb_jose_verify_opts *opts,
             unsigned allowed, unsigned *alg, const char **kid)
{
	json_t *a = json_object_get(hdr, "alg"), *k, *typ;

	if (!json_is_string(a))
		return EB_JOSE_ERR_BAD_HEADER;
	*alg = eb_jose_alg_from_name(json_string_value(a));
	if (*alg == 0 || (*alg & allowed) == 0)
		return EB_JOSE_ERR_ALG_NOT_ALLOWED;
	/* We implement no extension, so any "crit" must fail (RFC 7515 4.1.11).
	 */
	if (json_object_get(hdr, "crit") != NULL)
		return EB_JOSE_ERR_CRIT;
	*kid = NULL;
	if ((k = json_object_get(hdr, "kid")) != NULL) {
		if (!json_is_string(k) || json_string_length(k) == 0 ||
		    json_string_length(k) > EB_JOSE_MAX_KID)
			return EB_JOSE_ERR_BAD_HEADER;
		*kid = json_string_value(k);
	}
	if (opts != NULL && opts->typ != NULL) {
		typ = json_object_get(hdr, "typ");
		if (!typ_ok(json_string_value(typ), opts->typ))
			return EB_JOSE_ERR_BAD_HEADER;
	}
	return EB_JOSE_OK;
}

/* Choose the key for alg (and kid); see eb_jose_verify. */
static enum eb_jose_err
select_key(const struct eb_jose_jwks *jwks, unsigned alg, const char *kid,
           const struct eb_jose_int_key **out)
{
	const struct eb_jose_int_key *k, *found = NULL;
	size_t i, fits = 0, named = 0;

	for (i = 0; i < jwks->n; i++) {
		k = &jwks->keys[i];
		if (kid != NULL) {
			if (k->kid == NULL || strcmp(k->kid, kid) != 0)
				continue;
			named++;
		}
		if ((k->algs & alg) == 0)
			continue;
		if (fits++ == 0)
			found = k;
	}
	if (kid != NULL) {
		if (named == 0)
			return EB_JOSE_ERR_UNKNOWN_KID;
		if (fits == 0)
			return EB_JOSE_ERR_KTY_MISMATCH;
		*out = found; /* the first of the keys carrying that kid */
		return EB_JOSE_OK;
	}
	if (fits == 1) {
		*out = found;
		return EB_JOSE_OK;
	}
	if (fits == 0 && jwks->n > 0)
		return EB_JOSE_ERR_KTY_MISMATCH;
	return EB_JOSE_ERR_NO_KEY;
}

/* The checks cjose relies on, repeated against cjose's own key object. */
static int
key_fits(const struct eb_jose_int_key *k, const struct eb_jose_alg_info *a)
{
	if (cjose_jwk_get_kty(k->jwk, NULL) != a->kty || k->kty != a->kty)
		return 0;
	if (a->kty == CJOSE_JWK_KTY_EC &&
	    ((int)cjose_jwk_EC_get_curve(k->jwk, NULL) != a->crv ||
	     k->crv != a->crv))
		return 0;
	return 1;
}

/* cjose's parse of the header must name the alg we checked. */
static int
cjose_alg_is(cjose_jws_t *jws, const char *name)
{
	cjose_header_t *h = cjose_jws_get_protected(jws);
	const char *got;

	if (h == NULL)
		return 0;
	got = cjose_header_get(h, CJOSE_HDR_ALG, NULL);
	return got != NULL && strcmp(got, name) == 0;
}

enum eb_jose_err
eb_jose_verify(const struct eb_jose_jwks *jwks, const char *token, size_t len,
               const struct eb_jose_verify_opts *opts, json_t **claims,
               struct eb_jose_verify_info *info)
{
	const struct eb_jose_int_key *key = NULL;
	const struct eb_jose_alg_info *ai;
	size_t max = EB_JOSE_MAX_TOKEN, hlen = 0, plen = 0;
	unsigned allowed = EB_JOSE_ALGS_DEFAULT, alg = 0;
	uint8_t *hbuf = NULL, *pbuf = NULL, *sbuf = NULL;
	cjose_jws_t *jws = NULL;
	const char *kid = NULL;
	json_t *hdr = NULL;
	struct parts p;
	long siglen;
	enum eb_jose_err err;

	*claims = NULL;
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	if (opts != NULL && opts->algs != 0)
		allowed = opts->algs & EB_JOSE_ALGS_ALL;
	if (opts != NULL && opts->max_len != 0 && opts->max_len < max)
		max = opts->max_len;
	if (token == NULL || len == 0)
		return EB_JOSE_ERR_BAD_FORMAT;
	if (len > max)
		return EB_JOSE_ERR_TOO_LARGE;
	if ((err = split(token, len, &p)) != EB_JOSE_OK)
		return err;

	if (eb_b64_url_decode(p.hdr, p.hdr_len, &hbuf, &hlen) != 0 ||
	    eb_b64_url_decode(p.pay, p.pay_len, &pbuf, &plen) != 0 ||
	    eb_b64_url_decode(p.sig, p.sig_len, &sbuf, NULL) != 0) {
		err = EB_JOSE_ERR_BAD_FORMAT;
		goto out_free;
	}
	if ((hdr = eb_jose_json_parse_object((const char *)hbuf, hlen, 4)) ==
	    NULL) {
		err = EB_JOSE_ERR_BAD_FORMAT;
		goto out_free;
	}
	if ((err = check_header(hdr, opts, allowed, &alg, &kid)) != EB_JOSE_OK)
		goto out_free;
	if (info != NULL) {
		info->alg = alg;
		if (kid != NULL)
			memcpy(info->kid, kid, strlen(kid) + 1);
	}
	if (jwks == NULL) {
		err = EB_JOSE_ERR_NO_KEY;
		goto out_free;
	}
	if ((err = select_key(jwks, alg, kid, &key)) != EB_JOSE_OK)
		goto out_free;
	ai = eb_jose_int_alg(alg);
	if (ai == NULL || !key_fits(key, ai)) {
		err = EB_JOSE_ERR_KTY_MISMATCH;
		goto out_free;
	}
	siglen = eb_b64_url_decoded_len(p.sig_len);
	if (siglen < 0 || (size_t)siglen != key->sig_len) {
		err = EB_JOSE_ERR_BAD_SIGNATURE;
		goto out_free;
	}

	if ((jws = cjose_jws_import(token, len, NULL)) == NULL ||
	    !cjose_alg_is(jws, ai->name)) {
		err = EB_JOSE_ERR_BAD_FORMAT;
		goto out_free;
	}
	if (!cjose_jws_verify(jws, key->jwk, NULL)) {
		err = EB_JOSE_ERR_BAD_SIGNATURE;
		goto out_free;
	}

	*claims = eb_jose_json_parse_object((const char *)pbuf, plen,
	                                    EB_JOSE_MAX_DEPTH);
	err = *claims == NULL ? EB_JOSE_ERR_BAD_PAYLOAD : EB_JOSE_OK;
out_free:
	cjose_jws_release(jws);
	json_decref(hdr);
	eb_free(hbuf);
	eb_free(sbuf);
	eb_free_secret(pbuf, plen + 1);
	return err;
}
