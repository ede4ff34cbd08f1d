/*
 * Device-side MachineInfo: plist through the plist module, CMS signing with
 * OpenSSL under an ephemeral self-signed P-256 identity. See device.h.
 */
#include "apple/device.h"

#include <stdio.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "apple/plist.h"
#include "core/mem.h"

static const struct {
	const char *family;
	const char *product;
} products[] = {
    {"iPhone", "iPhone17,2"}, {"iPad", "iPad16,3"},
    {"Mac", "Mac16,1"},       {"AppleTV", "AppleTV14,1"},
    {"Watch", "Watch7,5"},    {"RealityDevice", "RealityDevice14,1"},
};

const char *
eb_device_product_for(const char *model_family)
{
	size_t i;

	if (model_family == NULL)
		return "iPhone17,2";
	for (i = 0; i < sizeof(products) / sizeof(products[0]); i++)
		if (strcmp(products[i].family, model_family) == 0)
			return products[i].product;
	return NULL;
}

/* An ephemeral P-256 key and a self-signed certificate for it. */
static int
identity(EVP_PKEY **keyp, X509 **certp)
{
	EVP_PKEY *key;
	X509 *cert;
	X509_NAME *name;

	*keyp = NULL;
	*certp = NULL;
	if ((key = EVP_EC_gen("P-256")) == NULL)
		return -1;
	if ((cert = X509_new()) == NULL)
		goto fail_key;
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                           (const unsigned char *)"enrollbridge device "
	                                                  "simulator",
	                           -1, -1, 0);
	X509_set_issuer_name(cert, name);
	if (X509_set_pubkey(cert, key) != 1 ||
	    X509_sign(cert, key, EVP_sha256()) == 0) {
		X509_free(cert);
		goto fail_key;
	}
	*keyp = key;
	*certp = cert;
	return 0;
fail_key:
	EVP_PKEY_free(key);
	return -1;
}

static int
set(struct eb_plist *d, const char *k, const char *v)
{
	return v == NULL ? 0 : eb_plist_dict_set_string(d, k, v);
}

int
eb_device_machineinfo(const struct eb_device_info *d, uint8_t **out,
                      size_t *outlen, char *err, size_t errlen)
{
	struct eb_plist *pl = NULL;
	uint8_t *xml = NULL;
	size_t xmllen = 0;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	BIO *in = NULL, *mem = NULL;
	CMS_ContentInfo *cms = NULL;
	BUF_MEM *bm;
	int rc = -1;

	*out = NULL;
	*outlen = 0;
	if (d == NULL || d->product == NULL) {
		snprintf(err, errlen, "no PRODUCT");
		return -1;
	}
	if ((pl = eb_plist_new_dict()) == NULL ||
	    set(pl, "PRODUCT", d->product) != 0 ||
	    set(pl, "VERSION", d->version) != 0 ||
	    set(pl, "OS_VERSION", d->os_version) != 0 ||
	    set(pl, "LANGUAGE", d->language) != 0 ||
	    set(pl, "UDID", d->udid) != 0 ||
	    set(pl, "SERIAL", d->serial) != 0 ||
	    (d->can_request_update &&
	     eb_plist_dict_set_bool(pl, "MDM_CAN_REQUEST_SOFTWARE_UPDATE", 1) !=
	         0) ||
	    eb_plist_to_xml(pl, &xml, &xmllen) != 0) {
		snprintf(err, errlen, "cannot build the MachineInfo plist");
		goto out;
	}
	if (identity(&key, &cert) != 0) {
		snprintf(err, errlen, "cannot make a signing identity");
		goto out;
	}
	if ((in = BIO_new_mem_buf(xml, (int)xmllen)) == NULL ||
	    (cms = CMS_sign(cert, key, NULL, in, CMS_BINARY)) == NULL ||
	    (mem = BIO_new(BIO_s_mem())) == NULL ||
	    i2d_CMS_bio(mem, cms) != 1) {
		snprintf(err, errlen, "cannot sign the MachineInfo");
		goto out;
	}
	BIO_get_mem_ptr(mem, &bm);
	if ((*out = eb_malloc(bm->length)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	memcpy(*out, bm->data, bm->length);
	*outlen = bm->length;
	rc = 0;
out:
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(mem);
	X509_free(cert);
	EVP_PKEY_free(key);
	eb_free(xml);
	eb_plist_free(pl);
	return rc;
}
