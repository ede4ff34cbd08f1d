/*
 * `device-sim enroll --maid-key PEM`: after the first check-ins, the
 * device asks for its Managed Apple Account access management token
 * (GetToken, TokenServiceType com.apple.maid) and checks the answer the
 * way Apple would: a plist with TokenData, a JWT whose signature verifies
 * with the server's public key, and exactly the claims iss (the server
 * UUID, --maid-server-uuid when given), iat (now, within 5 minutes), jti
 * (a UUID) and service_type. The token itself is never printed.
 */
#include "cli/devicesim_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "apple/gettoken.h"
#include "apple/plist.h"
#include "core/mem.h"
#include "http/client.h"
#include "jose/pemkey.h"

#define NAME        "gettoken-maid"
#define MAX_KEYFILE (64 * 1024)
#define IAT_SKEW    300

/* The PEM file at path (NUL-terminated, eb_free it), or NULL. */
static char *
read_small(const char *path, size_t *lenp)
{
	FILE *f;
	char *buf;
	size_t n;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	if ((buf = eb_malloc(MAX_KEYFILE + 1)) == NULL) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, MAX_KEYFILE + 1, f);
	fclose(f);
	if (n == 0 || n > MAX_KEYFILE) {
		eb_free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*lenp = n;
	return buf;
}

/* 1 when s is a UUID (8-4-4-4-12 hex digits). */
static int
is_uuid(const char *s)
{
	size_t i;

	if (s == NULL || strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++)
		if ((i == 8 || i == 13 || i == 18 || i == 23)
		        ? s[i] != '-'
		        : strchr("0123456789abcdefABCDEF", s[i]) == NULL ||
		              s[i] == '\0')
			return 0;
	return 1;
}

/* NULL when the claims are exactly what Apple expects, else why not. */
static const char *
claims_wrong(const struct eb_devsim *s, const json_t *c)
{
	const char *iss = json_string_value(json_object_get(c, "iss"));
	const char *st = json_string_value(json_object_get(c, "service_type"));
	const json_t *iat = json_object_get(c, "iat");
	/* the device simulator runs outside any root context: the real time */
	long long now = (long long)time(NULL);

	if (json_object_size(c) != 4)
		return "claims are not exactly iss, iat, jti, service_type";
	if (!is_uuid(iss))
		return "iss is not a UUID";
	if (s->maid_uuid != NULL && strcasecmp(iss, s->maid_uuid) != 0)
		return "iss is not the server UUID given";
	if (!json_is_integer(iat) || json_integer_value(iat) < now - IAT_SKEW ||
	    json_integer_value(iat) > now + IAT_SKEW)
		return "iat is not now";
	if (!is_uuid(json_string_value(json_object_get(c, "jti"))))
		return "jti is not a UUID";
	if (st == NULL || strcmp(st, EB_GETTOKEN_MAID) != 0)
		return "service_type is not com.apple.maid";
	return NULL;
}

/* Check the answer's body against key; a note either way. */
static int
check_answer(struct eb_devsim *s, const struct eb_pemkey *key,
             const struct eb_http_response *resp)
{
	struct eb_plist *d;
	const uint8_t *td;
	const char *why = NULL;
	json_t *claims = NULL;
	char *jwt = NULL, desc[64];
	size_t tdlen = 0;
	int rc = -1;

	d = eb_plist_parse(resp->body, resp->body_len, 0, 0, NULL, 0);
	if ((td = eb_plist_dict_get_data(d, "TokenData", &tdlen)) == NULL)
		why = "the answer is not a plist dict with TokenData (data)";
	else if ((jwt = eb_malloc(tdlen + 1)) == NULL)
		why = "out of memory";
	else {
		memcpy(jwt, td, tdlen);
		jwt[tdlen] = '\0';
		if (strlen(jwt) == tdlen &&
		    eb_pemkey_verify_jwt(key, jwt, &claims, &why) == 0)
			why = claims_wrong(s, claims);
		else if (why == NULL)
			why = "TokenData is not a JWT";
	}
	if (why != NULL)
		eb_devsim_note(s, EB_DISCOVER_FAIL, NAME,
		               "the proxy answers GetToken com.apple.maid "
		               "only with apple_business set, signed with its "
		               "private_key",
		               "%s", why);
	else {
		eb_devsim_note(
		    s, EB_DISCOVER_PASS, NAME, NULL,
		    "%s JWT (%s) verifies with the key, claims "
		    "exact (iss %s)",
		    eb_pemkey_alg(key),
		    eb_devsim_secret_desc(jwt, desc, sizeof(desc)),
		    json_string_value(json_object_get(claims, "iss")));
		rc = 0;
	}
	json_decref(claims);
	eb_free_secret_str(jwt);
	eb_plist_free(d);
	return rc;
}

int
eb_devsim_gettoken(struct eb_devsim *s)
{
	const char *url = s->checkin_url ? s->checkin_url : s->server_url;
	struct eb_http_response *resp = NULL;
	struct eb_pemkey *key;
	const char *why = "cannot read the file";
	char *pem;
	size_t len = 0;
	int rc;

	if (s->maid_key == NULL)
		return 0;
	if ((pem = read_small(s->maid_key, &len)) != NULL) {
		key = eb_pemkey_load_public(pem, len, &why);
		eb_free(pem);
	} else
		key = NULL;
	if (key == NULL)
		return eb_devsim_note(
		    s, EB_DISCOVER_FAIL, NAME,
		    "--maid-key names the server's public key "
		    "(PEM, RSA or P-256)",
		    "%s: %s", s->maid_key, why);
	rc = eb_devsim_mdm_put(s, "checkin-gettoken", "GetToken", url,
	                       CT_CHECKIN, &resp);
	if (rc == 0)
		rc = check_answer(s, key, resp);
	eb_http_response_free(resp);
	eb_pemkey_destroy(key);
	return rc;
}
