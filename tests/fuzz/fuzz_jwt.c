/*
 * Fuzz target: compact JWS parsing and verification (src/jose/verify.c)
 * against a fixed JWKS (P-256 "ec1", RSA-2048 "rsa1" for RS256 and
 * "rsa1-pss" for PS256, P-384 "ec384"). The seed corpus
 * tests/fuzz/corpus/jwt/ holds tokens validly signed by those keys (private
 * halves discarded) and broken variants: alg none, HS256 key confusion,
 * alg/kty mismatch, crit, tampering, bad base64url.
 */
#include <stddef.h>
#include <stdint.h>

#include "jose/jose.h"

static const char jwks_json[] =
    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"6-"
    "NIW4Ei1MQ4CUraAR2MB2O2Q102"
    "BO0uVE0nEG-8r3w\",\"y\":\"HwVh2IBAZ12Vc3l4vBhRfYxBe9h4_DeZQZlwM4htots\",\""
    "use\":\"sig\",\"kid\":\"ec1\"},{\"kty\":\"RSA\",\"n\":"
    "\"rj4o34H0zl3OcSWimFuFu1dsPC"
    "_NkrKaT-lbIOWkfuW0InolF6Of-ZGth14Vfl10lFzZTGBRee9rrIAmNYGghp7xxXFaX1"
    "HiTiV2n7p418K9i9Jb1y84bZqehXjWhbFhP9i2ciJXA3g0_cvEfa3S6zoSTDAz-dJdHy"
    "RDM_eerJTMvAOxmJfjea3wGuSAZrFzSnq-58ib3p1Z0nA_96YH7BsJZ7WWVli8gB4_Y3"
    "e3oi4PWLe24jUkDVX6xyE_ahK5IkqiTjXOlms63g9uJ-9XHKfcRVuAeNG06432AeHyls"
    "ZMvjUTNUWaOqdyNn0EU-fiu7XRbrhKMqtyK34kQ9YwqQ\",\"e\":\"AQAB\",\"kid\":"
    "\"rsa1"
    "\",\"use\":\"sig\",\"alg\":\"RS256\"},{\"kty\":\"RSA\",\"n\":"
    "\"rj4o34H0zl3OcSWimFuFu"
    "1dsPC_NkrKaT-lbIOWkfuW0InolF6Of-ZGth14Vfl10lFzZTGBRee9rrIAmNYGghp7xx"
    "XFaX1HiTiV2n7p418K9i9Jb1y84bZqehXjWhbFhP9i2ciJXA3g0_cvEfa3S6zoSTDAz-"
    "dJdHyRDM_eerJTMvAOxmJfjea3wGuSAZrFzSnq-58ib3p1Z0nA_96YH7BsJZ7WWVli8g"
    "B4_Y3e3oi4PWLe24jUkDVX6xyE_ahK5IkqiTjXOlms63g9uJ-9XHKfcRVuAeNG06432A"
    "eHylsZMvjUTNUWaOqdyNn0EU-fiu7XRbrhKMqtyK34kQ9YwqQ\",\"e\":\"AQAB\","
    "\"kid\":"
    "\"rsa1-pss\",\"alg\":\"PS256\"},{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":"
    "\"rSiwbbwZ4FB"
    "SvTM6Yw1vAOwXC42XOIeoeestSAA315X_94SdFArW_oVnoZKOh7-W\",\"y\":\"BuC_f-0d"
    "IWg9_MWXoBTh0Bn244uICN-188UddzyGDk7VFnkvPddBf3Blpltz195W\",\"use\":\"sig"
    "\",\"kid\":\"ec384\"}]}";

static struct eb_jose_jwks *jwks;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
run(const uint8_t *data, size_t size, unsigned algs, const char *typ)
{
	struct eb_jose_verify_opts o = {.algs = algs, .typ = typ};
	struct eb_jose_verify_info info;
	json_t *claims = NULL;
	enum eb_jose_err err;

	err =
	    eb_jose_verify(jwks, (const char *)data, size, &o, &claims, &info);
	if ((err == EB_JOSE_OK) != (claims != NULL))
		__builtin_trap();
	(void)eb_jose_strerror(err);
	json_decref(claims);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (jwks == NULL) {
		jwks = eb_jose_jwks_parse(jwks_json, sizeof(jwks_json) - 1, 0,
		                          NULL);
		if (jwks == NULL || eb_jose_jwks_count(jwks) != 4)
			__builtin_trap();
	}
	run(data, size, 0, NULL);
	run(data, size, EB_JOSE_ALGS_ALL, NULL);
	run(data, size, EB_JOSE_ES256, "at+jwt");
	return 0;
}
