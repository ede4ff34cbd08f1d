/*
 * GetToken for com.apple.maid (gettoken.h): the claims Apple documents for
 * the Managed Apple Account access management token (iss = the server's
 * UUID, iat, jti, service_type), signed with the configured key, and the
 * plist that carries it back to the device.
 */
#include "apple/gettoken.h"

#include <stdio.h>
#include <string.h>

#include "apple/plist.h"
#include "core/mem.h"
#include "core/rand.h"
#include "jose/pemkey.h"

/* A random (version 4) UUID into out; 0 or -1. */
static int
random_uuid(char out[37])
{
	uint8_t b[16];

	if (eb_rand_bytes(b, sizeof(b)) == -1)
		return -1;
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37,
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	         "%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
	         b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

json_t *
eb_gettoken_claims(const char *server_uuid, int64_t now)
{
	char jti[37];

	if (server_uuid == NULL || random_uuid(jti) == -1)
		return NULL;
	return json_pack("{s:s,s:I,s:s,s:s}", "iss", server_uuid, "iat",
	                 (json_int_t)now, "jti", jti, "service_type",
	                 EB_GETTOKEN_MAID);
}

int
eb_gettoken_response(const struct eb_apple_business_config *ab, int64_t now,
                     uint8_t **xml, size_t *len)
{
	struct eb_plist *d = NULL;
	json_t *claims;
	char *jwt = NULL;
	int rc = -1;

	*xml = NULL;
	if ((claims = eb_gettoken_claims(ab->server_uuid, now)) == NULL)
		return -1;
	if ((jwt = eb_pemkey_sign_jwt(ab->key, claims)) == NULL ||
	    (d = eb_plist_new_dict()) == NULL ||
	    eb_plist_dict_set_data(d, "TokenData", (const uint8_t *)jwt,
	                           strlen(jwt)) == -1 ||
	    eb_plist_to_xml(d, xml, len) == -1)
		goto out;
	rc = 0;
out:
	eb_plist_free(d);
	eb_free(jwt);
	json_decref(claims);
	return rc;
}
