/*
 * CMS (PKCS#7) SignedData as Apple uses it: the device's MachineInfo body
 * and signed configuration profiles come in wrapped; enrollment profiles go
 * out signed with the tenant's profile-signing certificate. OpenSSL does the
 * work; this module keeps its types and error queue away from the callers.
 */
#ifndef EB_CMS_H
#define EB_CMS_H

#include <stddef.h>
#include <stdint.h>

/* eb_cms_unwrap() results */
enum eb_cms_status {
	EB_CMS_OK = 0,
	EB_CMS_NOT_CMS = -1, /* the input is no CMS SignedData at all */
	EB_CMS_INVALID = -2  /* it is, but unusable: see err */
};

/*
 * Unwrap a CMS SignedData with attached content: DER or BER; when that fails
 * and liberal is set, also PEM ("-----BEGIN PKCS7/CMS-----") or bare base64
 * of the DER. The signature over the content is checked against the signer
 * certificate carried in the message (a tampered content fails). When
 * ca_file (a PEM bundle) is given, the signer's chain must also verify up to
 * one of its certificates (an intermediate in the bundle is trusted as an
 * anchor). Content larger than max_content is refused.
 *
 * On EB_CMS_OK *out is a fresh buffer (eb_free it) holding the content,
 * NUL-terminated (the NUL not counted in *outlen). Otherwise *out is NULL
 * and err (if not NULL) says why.
 */
enum eb_cms_status eb_cms_unwrap(const void *data, size_t len, int liberal,
                                 const char *ca_file, size_t max_content,
                                 uint8_t **out, size_t *outlen, char *err,
                                 size_t errlen);

/* A signing identity: certificate, its private key, and chain. */
struct eb_cms_signer;

/*
 * Load a signer from PEM files: cert_file holds the signing certificate
 * and, optionally, its chain (any order; the certificate matching the key
 * signs, the others are included in every signature); key_file holds its
 * unencrypted private key. Returns a signer with one reference, or NULL
 * with err filled.
 */
struct eb_cms_signer *eb_cms_signer_load(const char *cert_file,
                                         const char *key_file, char *err,
                                         size_t errlen);
/* Take another reference (thread-safe); returns s. */
struct eb_cms_signer *eb_cms_signer_ref(struct eb_cms_signer *s);
/* Drop a reference; the last one frees the key. NULL is a no-op. */
void eb_cms_signer_unref(struct eb_cms_signer *s);
/* Subject of the signing certificate, one line, for messages. */
int eb_cms_signer_subject(const struct eb_cms_signer *s, char *buf,
                          size_t buflen);

/*
 * Sign len bytes as a DER CMS SignedData with the content attached (binary:
 * no MIME canonicalization). On success returns 0 and a fresh *out (eb_free
 * it); -1 with err filled otherwise.
 */
int eb_cms_sign(const struct eb_cms_signer *s, const void *data, size_t len,
                uint8_t **out, size_t *outlen, char *err, size_t errlen);

#endif
