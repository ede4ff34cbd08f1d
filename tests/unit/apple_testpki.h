/*
 * Test PKI for the Apple unit tests (test_machineinfo.c, test_profile.c):
 * EC P-256 keys, a self-signed CA, leaf certificates issued by it, CMS
 * SignedData the way devices and MDMs produce it, PEM files in a temporary
 * directory. Everything aborts on failure: a broken fixture is no test.
 */
#ifndef EB_TEST_APPLE_TESTPKI_H
#define EB_TEST_APPLE_TESTPKI_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

struct tp_id {
	EVP_PKEY *key;
	X509 *cert;
};

static inline void
tp_check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "test PKI: %s failed\n", what);
		abort();
	}
}

static inline void
tp_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	tp_check(ext != NULL && X509_add_ext(cert, ext, -1) == 1, "extension");
	X509_EXTENSION_free(ext);
}

/* A new identity named cn, issued by issuer (NULL: self-signed). */
static inline struct tp_id
tp_make(const char *cn, const struct tp_id *issuer, int is_ca)
{
	static long serial = 1000;
	struct tp_id id;
	X509_NAME *name;

	id.key = EVP_EC_gen("P-256");
	tp_check(id.key != NULL, "key");
	id.cert = X509_new();
	tp_check(id.cert != NULL, "cert");
	X509_set_version(id.cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(id.cert), serial++);
	X509_gmtime_adj(X509_getm_notBefore(id.cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(id.cert), 3600L * 24 * 365);
	X509_set_pubkey(id.cert, id.key);
	name = X509_get_subject_name(id.cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                           (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(
	    id.cert, issuer ? X509_get_subject_name(issuer->cert) : name);
	tp_ext(id.cert, issuer ? issuer->cert : id.cert, NID_basic_constraints,
	       is_ca ? "critical,CA:TRUE" : "CA:FALSE");
	if (is_ca)
		tp_ext(id.cert, id.cert, NID_key_usage,
		       "critical,keyCertSign,cRLSign");
	tp_ext(id.cert, issuer ? issuer->cert : id.cert,
	       NID_subject_key_identifier, "hash");
	tp_check(
	    X509_sign(id.cert, issuer ? issuer->key : id.key, EVP_sha256()) > 0,
	    "sign cert");
	return id;
}

static inline void
tp_free(struct tp_id *id)
{
	EVP_PKEY_free(id->key);
	X509_free(id->cert);
	id->key = NULL;
	id->cert = NULL;
}

/*
 * CMS SignedData over data by id (DER, content attached unless flags has
 * CMS_DETACHED), with extra certificates from chain (may be NULL).
 */
static inline unsigned char *
tp_cms_sign(const struct tp_id *id, X509 *chain_cert, const void *data,
            size_t len, unsigned flags, size_t *outlen)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	CMS_ContentInfo *cms;
	BIO *in, *out;
	unsigned char *buf, *der;
	long n;

	if (chain_cert != NULL)
		sk_X509_push(chain, chain_cert);
	in = BIO_new_mem_buf(data, (int)len);
	out = BIO_new(BIO_s_mem());
	cms = CMS_sign(id->cert, id->key, chain, in, CMS_BINARY | flags);
	tp_check(cms != NULL && i2d_CMS_bio(out, cms) == 1, "CMS_sign");
	n = BIO_get_mem_data(out, &der);
	buf = malloc((size_t)n);
	tp_check(buf != NULL, "malloc");
	memcpy(buf, der, (size_t)n);
	*outlen = (size_t)n;
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(out);
	sk_X509_free(chain);
	return buf;
}

/* Write certificates (NULL-terminated) as one PEM file at path. */
static inline void
tp_write_certs(const char *path, X509 *const *certs)
{
	FILE *f = fopen(path, "w");

	tp_check(f != NULL, path);
	for (; *certs != NULL; certs++)
		tp_check(PEM_write_X509(f, *certs) == 1, "PEM_write_X509");
	fclose(f);
}

static inline void
tp_write_key(const char *path, EVP_PKEY *key)
{
	FILE *f = fopen(path, "w");

	tp_check(f != NULL, path);
	tp_check(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1,
	         "PEM_write_PrivateKey");
	fclose(f);
}

/* A fresh temporary directory (mkdtemp); its path is static. */
static inline const char *
tp_tmpdir(void)
{
	static char dir[] = "/tmp/eb-apple-test-XXXXXX";
	static int made;

	/* a flag, not a look at the template: mkdtemp's random suffix may
	 * itself end in 'X' (one run in 62 failed that way) */
	if (!made) {
		tp_check(mkdtemp(dir) != NULL, "mkdtemp");
		made = 1;
	}
	return dir;
}

/* Remove the temporary directory and the files in it. */
static inline void
tp_rmdir(void)
{
	const char *dir = tp_tmpdir();
	struct dirent *de;
	char path[512];
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

#endif
