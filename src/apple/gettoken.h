/*
 * The answer to a GetToken check-in for Managed Apple Account access
 * management (TokenServiceType com.apple.maid): a JWT signed with the
 * tenant's Apple Business Manager server key, carried as TokenData in a
 * plist dict.
 */
#ifndef EB_GETTOKEN_H
#define EB_GETTOKEN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/config.h"

#define EB_GETTOKEN_MAID "com.apple.maid"

/*
 * The claims {"iss": server_uuid, "iat": now, "jti": a random UUID,
 * "service_type": "com.apple.maid"}; one reference (json_decref it), NULL
 * when out of memory or out of randomness.
 */
json_t *eb_gettoken_claims(const char *server_uuid, int64_t now);
/*
 * The whole response body for ab at time now: an XML plist dict whose
 * TokenData is the signed JWT. 0 with *xml (eb_free it) and *len set, or
 * -1 on failure.
 */
int eb_gettoken_response(const struct eb_apple_business_config *ab, int64_t now,
                         uint8_t **xml, size_t *len);

#endif
