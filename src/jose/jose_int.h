/*
 * Shared by the files of src/jose/ only (never included elsewhere): the
 * in-memory form of a JWKS, the per-alg facts the pre-verification checks
 * need, and the one place that pulls in cjose.
 */
#ifndef EB_JOSE_INT_H
#define EB_JOSE_INT_H

#include <stdatomic.h>
#include <stddef.h>

#include <cjose/cjose.h>

#include "jose/jose.h"

/* What an alg demands of its key and signature. */
struct eb_jose_alg_info {
	unsigned bit;
	const char *name;
	cjose_jwk_kty_t kty;
	int crv;       /* EC: the curve NID; RSA: 0 */
	size_t ec_sig; /* EC: bytes of R || S; RSA: 0 (modulus size) */
};

/* Facts of the alg with this bit; NULL unless exactly one known bit. */
const struct eb_jose_alg_info *eb_jose_int_alg(unsigned bit);

/* One usable verification key of a JWKS. */
struct eb_jose_int_key {
	cjose_jwk_t *jwk;
	char *kid; /* NULL when the JWK has none */
	cjose_jwk_kty_t kty;
	int crv;        /* EC curve NID, 0 for RSA */
	size_t sig_len; /* exact signature length its algs produce */
	unsigned algs;  /* algs it may verify (kty, curve and "alg") */
};

struct eb_jose_jwks {
	atomic_long refs;
	size_t n;
	struct eb_jose_int_key *keys;
};

/* 1 when the n bytes at s are all base64url characters. */
int eb_jose_int_is_b64url(const char *s, size_t n);
/* Decoded bytes of a base64url JSON string member, or -1; *out eb_malloc'd. */
int eb_jose_int_member_b64(json_t *obj, const char *name, uint8_t **out,
                           size_t *outlen);

#endif
