/*
 * The Enrollment Single Sign-On document (PROTOCOL.md section 6), served at
 * /t/{T}/esso.json when the tenant has an "esso" section:
 *	{"iTunesStoreID": 123, "AssociatedDomains": ["..."],
 *	 "AssociatedDomainsEnableDirectDownloads": false,
 *	 "ConfigurationProfile": "<base64 of the SSO profile file>"}
 * and its developer-mode variant with "AppIDs": [...] in place of
 * iTunesStoreID. AssociatedDomains (and its flag) appear when domains are
 * configured, ConfigurationProfile when a profile file is.
 *
 * The SSO profile may hold only com.apple.extensiblesso payloads (at least
 * one) and certificate payloads (com.apple.security.root, .pkcs1, .pem,
 * .pkcs12).
 */
#ifndef EB_ESSO_H
#define EB_ESSO_H

#include <stddef.h>

#include "core/config.h"

struct eb_plist;

/*
 * The document for tenant t (which must have esso set): the developer
 * variant when developer is non-zero (it needs esso.developer.app_ids).
 * Reads and validates the profile file on each call. Returns compact JSON,
 * NUL-terminated (eb_free it; length in *len when len is not NULL), or NULL
 * with err filled.
 */
char *eb_esso_build(const struct eb_tenant *t, int developer, size_t *len,
                    char *err, size_t errlen);
/* Check an SSO profile's payload types. Returns 0, or -1 with err filled. */
int eb_esso_check_profile(const struct eb_plist *profile, char *err,
                          size_t errlen);
/*
 * Start-up validation of t's esso section (nothing to do without one):
 * the profile file reads and passes eb_esso_check_profile(). Returns 0, or
 * -1 with err filled.
 */
int eb_esso_check_config(const struct eb_tenant *t, char *err, size_t errlen);

#endif
