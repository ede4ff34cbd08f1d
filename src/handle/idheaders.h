/*
 * The identity headers enrollbridge sends an MDM about the person behind a
 * request: with every proxied request of a grant (handle/proxy_fwd.c) and
 * with the enrollment profile fetch from mdm.profile.url
 * (handle/enroll.c). One list, one encoding, so that both say the same:
 *
 *   X-Enrollbridge-Managed-Apple-Account  the Managed Apple Account
 *   X-Enrollbridge-Login                  the IdP login (profile fetch)
 *   X-Enrollbridge-Enrollment-Mode        BYOD | ADDE
 *   X-Enrollbridge-Grant-ID               the grant
 *   X-Enrollbridge-Route                  the grant's route, when any
 *   X-Enrollbridge-Model-Family, -Serial, -UDID
 *                                         from the device's MachineInfo
 *                                         (profile fetch, when present)
 *   X-Enrollbridge-Claims                 the grant's mdm.claims snapshot:
 *                                         base64url (no padding) of its
 *                                         compact JSON object
 *
 * Every other value is UTF-8, percent-encoded (RFC 3986): each byte
 * outside printable ASCII (0x21-0x7E), and '%' itself, is "%XX". A value
 * is read back with one URL-decode, and no header can carry CR or LF.
 */
#ifndef EB_IDHEADERS_H
#define EB_IDHEADERS_H

#include <jansson.h>

struct eb_idheaders {
	const char *managed_apple_id, *login, *enrollment_mode, *grant_id;
	const char *route, *model_family, *serial, *udid;
	json_t *idp; /* an object, or NULL */
};

/*
 * Call add(arg, name, value) for each field of h that is set, its value
 * encoded as above. Returns 0, -1 when out of memory, or the first
 * non-zero value add returned.
 */
int eb_idheaders_each(const struct eb_idheaders *h,
                      int (*add)(void *arg, const char *name,
                                 const char *value),
                      void *arg);
/* v percent-encoded as above: a fresh string (eb_free), or NULL. */
char *eb_idheaders_encode(const char *v);

#endif
