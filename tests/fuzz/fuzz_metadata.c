/*
 * Fuzz target: OIDC discovery-document parsing (eb_oidc_meta_parse in
 * src/oidc/metadata.c). Each input is parsed against two configured
 * issuers, a plain one and an Entra-style one that fills a "{tenantid}"
 * template; a document that parses must have every endpoint set and pass
 * the URL rule again, and its alg bits must stay inside what we accept.
 * Seeds: tests/fuzz/corpus/metadata/.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "oidc/oidc.h"
#include "oidc/oidc_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
try_issuer(const char *json, size_t len, const char *issuer)
{
	struct eb_oidc_meta m;
	struct eb_oidc_error err;

	memset(&err, 0, sizeof(err));
	if (eb_oidc_meta_parse(json, len, issuer, &m, &err) != 0) {
		if (err.code[0] == '\0' || m.issuer != NULL)
			__builtin_trap();
		return;
	}
	if (m.issuer == NULL || m.authorization_endpoint == NULL ||
	    m.token_endpoint == NULL || m.jwks_uri == NULL ||
	    !eb_oidc_url_ok(m.token_endpoint) || !eb_oidc_url_ok(m.jwks_uri) ||
	    !eb_oidc_url_ok(m.authorization_endpoint) ||
	    (m.userinfo_endpoint != NULL &&
	     !eb_oidc_url_ok(m.userinfo_endpoint)) ||
	    (m.id_token_algs & ~EB_OIDC_ALGS_ALLOWED) != 0 ||
	    !eb_oidc_issuer_matches(m.issuer, issuer))
		__builtin_trap();
	eb_oidc_meta_finish(&m);
	eb_oidc_meta_finish(&m); /* idempotent */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	try_issuer((const char *)data, size, "https://idp.example.com");
	try_issuer((const char *)data, size,
	           "https://login.microsoftonline.com/"
	           "9188040d-6c67-4c5b-b112-36a304b66dad/v2.0");
	return 0;
}
