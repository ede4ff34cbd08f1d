/*
 * The enrollment profile (PROTOCOL.md section 4): loaded from the tenant's
 * mobileconfig file (mdm.profile.file, possibly CMS-signed) or fetched from
 * its MDM (mdm.profile.url), then patched in its single com.apple.mdm
 * payload:
 *	EnrollmentMode          "BYOD" or "ADDE"
 *	AssignedManagedAppleID  the mapped Managed Apple Account
 *	AccessRights            removed for BYOD, kept for ADDE
 *	ManagedAppleID          removed (the old profile-based key)
 *	ServerURL, CheckInURL   with mdm.use_proxy: {public_url}/t/{T}/mdm/...
 * Everything else is kept as it was. The result is an XML plist, signed as
 * CMS SignedData with mdm.signing_cert/signing_key when those are set.
 *
 * Proxy URLs keep the original path and query: with upstream
 * https://mdm.example, https://mdm.example/mdm/server?x=1 becomes
 * {public_url}/t/{T}/mdm/mdm/server?x=1. When the original URL lies under
 * mdm.upstream and upstream has a path of its own, the part after upstream
 * is used, so that the proxy's {upstream}/{rest} reaches the same place.
 *
 * A profile is usable when it is a dict whose PayloadContent holds exactly
 * one com.apple.mdm payload with a ServerURL (http/https), a Topic
 * (com.apple.mgmt.*) and an IdentityCertificateUUID.
 */
#ifndef EB_PROFILE_H
#define EB_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

struct eb_plist;

#define EB_PROFILE_MAX_BYTES (4 * 1024 * 1024) /* a profile file */
#define EB_PROFILE_MAX_DEPTH 32

/* Why eb_profile_build() failed, for the HTTP status. */
enum eb_profile_status {
	EB_PROFILE_OK = 0,
	EB_PROFILE_ERR_CONFIG,   /* tenant's profile or signer unusable: 500 */
	EB_PROFILE_ERR_UPSTREAM, /* the MDM gave no usable profile: 502 */
	EB_PROFILE_ERR_INTERNAL  /* out of memory and the like: 500/503 */
};

/*
 * A cache of parsed profile files and loaded signers, keyed by path and the
 * file's identity (device, inode, size, mtime), so that a per-request build
 * reads the disk only after a file changed. Thread-safe; one per process
 * (it belongs in the root context). Holds at most 256 entries.
 */
struct eb_profile_cache;

struct eb_profile_cache *eb_profile_cache_create(void);
/* Free the cache and everything in it; NULL is a no-op. */
void eb_profile_cache_destroy(struct eb_profile_cache *c);

/* Process-level inputs of a build; only public_url is required. */
struct eb_profile_opts {
	const char *public_url;         /* no trailing slash */
	struct eb_profile_cache *cache; /* NULL: read files on every build */
	int fetch_timeout;              /* seconds, MDM fetch; 0: 10 */
	size_t fetch_max_bytes;         /* MDM fetch; 0: 1 MiB */
	const char *fetch_cafile;       /* tests: trust these CAs (PEM) */
	/* more request headers for the mdm.profile.url fetch ("Name: value",
	 * NULL-terminated; may be NULL): the person's bearer and identity
	 * (handle/enroll.c) */
	const char *const *fetch_headers;
};

/*
 * Build the enrollment profile of tenant t for managed_apple_id in mode.
 * Blocks while fetching from the MDM (profile_url): call it from a worker,
 * not from the HTTP event thread. On EB_PROFILE_OK *out is a fresh buffer
 * (eb_free it) of *outlen bytes: DER CMS when the tenant signs, else an XML
 * plist; *is_signed (if not NULL) says which. Otherwise *out is NULL and err
 * says why (for the log; nothing partial is ever returned).
 */
enum eb_profile_status eb_profile_build(const struct eb_tenant *t,
                                        const struct eb_profile_opts *o,
                                        const char *managed_apple_id,
                                        enum eb_enroll_mode mode, uint8_t **out,
                                        size_t *outlen, int *is_signed,
                                        char *err, size_t errlen);

/*
 * Start-up / check-config validation of t's profile setup: the profile file
 * parses and is usable (see above), the signing certificate and key load
 * and match. A profile_url is not fetched. With a cache, what was loaded
 * stays in it. Returns 0, or -1 with err filled.
 */
int eb_profile_check_config(const struct eb_tenant *t,
                            struct eb_profile_cache *c, char *err,
                            size_t errlen);

/*
 * Parse profile bytes: a CMS-signed profile is unwrapped (its signature
 * must verify with the certificate it carries; the chain is not checked),
 * then the plist must be a dict. Returns a tree (eb_plist_free it) or NULL
 * with err filled.
 */
struct eb_plist *eb_profile_parse(const void *data, size_t len, char *err,
                                  size_t errlen);
/*
 * Read and parse a profile file (at most EB_PROFILE_MAX_BYTES) as
 * eb_profile_parse(). When raw is not NULL, the file's bytes are handed
 * over too (*raw, *rawlen; eb_free it).
 */
struct eb_plist *eb_profile_read_file(const char *path, uint8_t **raw,
                                      size_t *rawlen, char *err, size_t errlen);
/*
 * The PayloadType of every item of profile's PayloadContent, checked: each
 * item is a dict with a string PayloadType. Calls fn(type, payload, arg)
 * for each, stopping at a non-zero return (returned). Returns 0, or -1 with
 * err filled when PayloadContent is missing or malformed.
 */
int eb_profile_foreach_payload(const struct eb_plist *profile,
                               int (*fn)(const char *type,
                                         const struct eb_plist *payload,
                                         void *arg),
                               void *arg, char *err, size_t errlen);
/*
 * The single com.apple.mdm payload of a usable profile (borrowed), or NULL
 * with err filled (none, several, or missing required keys).
 */
struct eb_plist *eb_profile_mdm_payload(const struct eb_plist *profile,
                                        char *err, size_t errlen);

/* What eb_profile_patch() changes. */
struct eb_profile_patch {
	enum eb_enroll_mode mode;
	const char *managed_apple_id;
	/* NULL: leave ServerURL/CheckInURL alone; else the proxy base
	 * "{public_url}/t/{T}/mdm" (no trailing slash) */
	const char *proxy_base;
	const char *upstream; /* mdm.upstream, for proxy URLs; may be NULL */
	/* the proxy answers GetToken: ServerCapabilities gains
	 * com.apple.mdm.token */
	int token_capability;
};

/*
 * Patch a usable profile in place (see the top of this file). Returns 0, or
 * -1 with err filled (profile not usable, out of memory).
 */
int eb_profile_patch(struct eb_plist *profile, const struct eb_profile_patch *p,
                     char *err, size_t errlen);
/*
 * The proxy URL for orig (an absolute http/https URL): a fresh string
 * (eb_free it), or NULL when orig is not such a URL or out of memory.
 */
char *eb_profile_proxy_url(const char *orig, const char *proxy_base,
                           const char *upstream);

#endif
