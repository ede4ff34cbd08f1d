/*
 * An independent downstream verifier of our access tokens: liboauth2's
 * oauth2_token_verify() with a "jwks_uri" verifier, configured the way
 * mod_oauth2 configures it (OAuth2TokenVerify jwks_uri URL options), then
 * the iss / aud / typ checks a mod_oauth2 deployment adds with "Require
 * claim". Used by tests/integration/tokens.test.mjs; not linked with any
 * enrollbridge code.
 *
 *   liboauth2_verify JWKS_URI TOKEN ISSUER AUDIENCE
 *
 * Prints the verified payload (JSON) on stdout and exits 0, or exits 1
 * with liboauth2's reason on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <oauth2/cfg.h>
#include <oauth2/log.h>
#include <oauth2/mem.h>
#include <oauth2/oauth2.h>
#include <oauth2/util.h>

/* The protected header's "typ", which liboauth2 does not look at. */
static int
typ_is_at_jwt(const char *token)
{
	const char *dot = strchr(token, '.');
	char b64[1024];
	uint8_t *dec = NULL;
	size_t n, declen = 0;
	json_t *h;
	int ok;

	if (dot == NULL || (n = (size_t)(dot - token)) >= sizeof(b64))
		return 0;
	memcpy(b64, token, n);
	b64[n] = '\0';
	if (oauth2_base64url_decode(NULL, b64, &dec, &declen) == false)
		return 0;
	h = json_loadb((const char *)dec, declen, 0, NULL);
	oauth2_mem_free(dec);
	ok =
	    h != NULL && json_is_string(json_object_get(h, "typ")) &&
	    strcmp(json_string_value(json_object_get(h, "typ")), "at+jwt") == 0;
	json_decref(h);
	return ok;
}

int
main(int argc, char **argv)
{
	oauth2_log_t *log;
	oauth2_cfg_token_verify_t *verify = NULL;
	json_t *payload = NULL, *aud;
	char *rv, *s;
	int rc = 1;

	if (argc != 5) {
		fprintf(stderr, "usage: liboauth2_verify JWKS_URI TOKEN "
		                "ISSUER AUDIENCE\n");
		return 2;
	}
	log = oauth2_init(OAUTH2_LOG_WARN, NULL);
	rv = oauth2_cfg_token_verify_add_options(
	    log, &verify, "jwks_uri", argv[1],
	    "verify.exp=required&verify.iat=required&jwks_uri.ssl_verify="
	    "false");
	if (rv != NULL) {
		fprintf(stderr, "liboauth2 configuration: %s\n", rv);
		oauth2_mem_free(rv);
		goto out;
	}
	if (!oauth2_token_verify(log, NULL, verify, argv[2], &payload)) {
		fprintf(stderr, "oauth2_token_verify: refused\n");
		goto out;
	}
	aud = json_object_get(payload, "aud");
	if (!json_is_string(json_object_get(payload, "iss")) ||
	    strcmp(json_string_value(json_object_get(payload, "iss")),
	           argv[3]) != 0) {
		fprintf(stderr, "iss mismatch\n");
		goto out;
	}
	if (!json_is_string(aud) ||
	    strcmp(json_string_value(aud), argv[4]) != 0) {
		fprintf(stderr, "aud mismatch\n");
		goto out;
	}
	if (!typ_is_at_jwt(argv[2])) {
		fprintf(stderr, "typ is not at+jwt\n");
		goto out;
	}
	if ((s = json_dumps(payload, JSON_COMPACT)) != NULL) {
		json_free_t jfree = NULL;

		printf("%s\n", s);
		json_get_alloc_funcs(NULL, &jfree);
		jfree(s);
	}
	rc = 0;
out:
	json_decref(payload);
	oauth2_cfg_token_verify_free(log, verify);
	oauth2_shutdown(log);
	return rc;
}
