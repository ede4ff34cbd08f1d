/*
 * CMS SignedData in and out (see cms.h), on OpenSSL's CMS API. Incoming
 * messages are untrusted (device bodies): every size is checked before
 * OpenSSL sees it, and OpenSSL's error queue is drained on every path so
 * that nothing leaks into the next request handled by the same thread.
 */
#include "apple/cms.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "core/str.h"
#include "core/mem.h"

struct eb_cms_signer {
	X509 *cert;
	EVP_PKEY *key;
	STACK_OF(X509) * chain;
	int refs;
};

/* The reason of OpenSSL's last error (for messages), and drain the queue. */
static const char *
ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r != NULL ? r : "unknown reason";
}

/* 1 when every byte is base64 alphabet, padding or white space. */
static int
looks_base64(const uint8_t *p, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if ((p[i] >= 'A' && p[i] <= 'Z') ||
		    (p[i] >= 'a' && p[i] <= 'z') ||
		    (p[i] >= '0' && p[i] <= '9') || p[i] == '+' ||
		    p[i] == '/' || p[i] == '=')
			n++;
		else if (p[i] != '\r' && p[i] != '\n' && p[i] != ' ' &&
		         p[i] != '\t')
			return 0;
	}
	return n >= 4;
}

/* The base64 between PEM armour lines, or all of p; NULL if none. */
static const uint8_t *
pem_body(const uint8_t *p, size_t len, size_t *bodylen)
{
	static const char begin[] = "-----BEGIN ", end[] = "-----END ";
	const uint8_t *s, *e, *nl;
	size_t i;

	if (len < sizeof(begin) - 1 || memcmp(p, begin, sizeof(begin) - 1))
		return NULL;
	if ((nl = memchr(p, '\n', len)) == NULL)
		return NULL;
	s = nl + 1;
	for (e = NULL, i = (size_t)(s - p); i + sizeof(end) - 1 <= len; i++)
		if (memcmp(p + i, end, sizeof(end) - 1) == 0) {
			e = p + i;
			break;
		}
	if (e == NULL)
		return NULL;
	*bodylen = (size_t)(e - s);
	return s;
}

/* Decode base64 (white space allowed) into a fresh buffer; NULL on error. */
static uint8_t *
b64_decode(const uint8_t *p, size_t len, size_t *outlen)
{
	EVP_ENCODE_CTX *ctx;
	uint8_t *out;
	int n = 0, fin = 0;

	if (len > INT_MAX || (out = eb_malloc(len / 4 * 3 + 4)) == NULL)
		return NULL;
	if ((ctx = EVP_ENCODE_CTX_new()) == NULL) {
		eb_free(out);
		return NULL;
	}
	EVP_DecodeInit(ctx);
	if (EVP_DecodeUpdate(ctx, out, &n, p, (int)len) < 0 ||
	    EVP_DecodeFinal(ctx, out + n, &fin) != 1) {
		EVP_ENCODE_CTX_free(ctx);
		eb_free(out);
		ERR_clear_error();
		return NULL;
	}
	EVP_ENCODE_CTX_free(ctx);
	*outlen = (size_t)n + (size_t)fin;
	return out;
}

static CMS_ContentInfo *
der_to_cms(const void *p, size_t len)
{
	CMS_ContentInfo *cms;
	BIO *b;

	if (len == 0 || len > INT_MAX)
		return NULL;
	if ((b = BIO_new_mem_buf(p, (int)len)) == NULL)
		return NULL;
	cms = d2i_CMS_bio(b, NULL);
	BIO_free(b);
	ERR_clear_error();
	return cms;
}

/* Parse DER, then (liberal) PEM or bare base64 of DER. */
static CMS_ContentInfo *
read_cms(const uint8_t *p, size_t len, int liberal)
{
	CMS_ContentInfo *cms;
	const uint8_t *body;
	uint8_t *der;
	size_t bodylen, derlen;

	if ((cms = der_to_cms(p, len)) != NULL || !liberal)
		return cms;
	if ((body = pem_body(p, len, &bodylen)) == NULL) {
		body = p;
		bodylen = len;
	}
	if (!looks_base64(body, bodylen) ||
	    (der = b64_decode(body, bodylen, &derlen)) == NULL)
		return NULL;
	cms = der_to_cms(der, derlen);
	eb_free(der);
	return cms;
}

static X509_STORE *
load_store(const char *ca_file, char *err, size_t errlen)
{
	X509_STORE *st;

	if ((st = X509_STORE_new()) == NULL) {
		eb_errf(err, errlen, "out of memory");
		return NULL;
	}
	if (X509_STORE_load_file(st, ca_file) != 1 ||
	    sk_X509_OBJECT_num(X509_STORE_get0_objects(st)) == 0) {
		eb_errf(err, errlen, "cannot load CA bundle %s: %s", ca_file,
		        ssl_reason());
		X509_STORE_free(st);
		return NULL;
	}
	/* device certificates carry no S/MIME usage; an intermediate CA in
	 * the bundle is enough of an anchor. Apple's older device CAs sign
	 * with SHA-1 and RSA-1024, which the system security level refuses:
	 * the anchors here are the administrator's explicit choice. */
	X509_STORE_set_purpose(st, X509_PURPOSE_ANY);
	X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
	X509_VERIFY_PARAM_set_auth_level(X509_STORE_get0_param(st), 0);
	return st;
}

/* Check signature and (with ca_file) chain; copy the content out. */
static enum eb_cms_status
verify_cms(CMS_ContentInfo *cms, const char *ca_file, size_t max_content,
           uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
	enum eb_cms_status rc = EB_CMS_INVALID;
	ASN1_OCTET_STRING **content;
	X509_STORE *st = NULL;
	BIO *bout = NULL;
	char *data;
	long n;

	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		eb_errf(err, errlen, "CMS message is not SignedData");
		return EB_CMS_NOT_CMS;
	}
	if ((content = CMS_get0_content(cms)) == NULL || *content == NULL) {
		eb_errf(err, errlen, "CMS message carries no content");
		goto out;
	}
	if ((size_t)ASN1_STRING_length(*content) > max_content) {
		eb_errf(err, errlen, "signed content larger than %zu bytes",
		        max_content);
		goto out;
	}
	if (sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) <= 0) {
		eb_errf(err, errlen, "CMS message has no signer");
		goto out;
	}
	if ((bout = BIO_new(BIO_s_mem())) == NULL) {
		eb_errf(err, errlen, "out of memory");
		goto out;
	}
	if (CMS_verify(cms, NULL, NULL, NULL, bout,
	               CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1) {
		eb_errf(err, errlen, "bad signature: %s", ssl_reason());
		goto out;
	}
	if (ca_file != NULL) {
		if ((st = load_store(ca_file, err, errlen)) == NULL)
			goto out;
		if (CMS_verify(cms, NULL, st, NULL, NULL,
		               CMS_BINARY | CMS_NO_CONTENT_VERIFY |
		                   CMS_NO_ATTR_VERIFY) != 1) {
			eb_errf(err, errlen,
			        "signer certificate not trusted by %s: %s",
			        ca_file, ssl_reason());
			goto out;
		}
	}
	n = BIO_get_mem_data(bout, &data);
	if (n < 0 || (size_t)n > max_content) {
		eb_errf(err, errlen, "signed content larger than %zu bytes",
		        max_content);
		goto out;
	}
	if ((*out = eb_malloc((size_t)n + 1)) == NULL) {
		eb_errf(err, errlen, "out of memory");
		goto out;
	}
	memcpy(*out, data, (size_t)n);
	(*out)[n] = '\0';
	*outlen = (size_t)n;
	rc = EB_CMS_OK;
out:
	X509_STORE_free(st);
	BIO_free(bout);
	ERR_clear_error();
	return rc;
}

enum eb_cms_status
eb_cms_unwrap(const void *data, size_t len, int liberal, const char *ca_file,
              size_t max_content, uint8_t **out, size_t *outlen, char *err,
              size_t errlen)
{
	CMS_ContentInfo *cms;
	enum eb_cms_status rc;

	*out = NULL;
	*outlen = 0;
	if (data == NULL || (cms = read_cms(data, len, liberal)) == NULL) {
		eb_errf(err, errlen, "not a CMS SignedData message");
		return EB_CMS_NOT_CMS;
	}
	rc = verify_cms(cms, ca_file, max_content, out, outlen, err, errlen);
	CMS_ContentInfo_free(cms);
	return rc;
}

/* Never prompt for a pass phrase: encrypted keys are refused. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

struct eb_cms_signer *
eb_cms_signer_load(const char *cert_file, const char *key_file, char *err,
                   size_t errlen)
{
	struct eb_cms_signer *s;
	X509 *x;
	BIO *b;
	int i;

	if ((s = eb_calloc(1, sizeof(*s))) == NULL ||
	    (s->chain = sk_X509_new_null()) == NULL) {
		eb_free(s);
		eb_errf(err, errlen, "out of memory");
		return NULL;
	}
	s->refs = 1;
	if ((b = BIO_new_file(key_file, "r")) == NULL) {
		eb_errf(err, errlen, "cannot open %s: %s", key_file,
		        ssl_reason());
		goto out_fail;
	}
	s->key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
	BIO_free(b);
	if (s->key == NULL) {
		eb_errf(err, errlen, "%s: no unencrypted PEM private key (%s)",
		        key_file, ssl_reason());
		goto out_fail;
	}
	if ((b = BIO_new_file(cert_file, "r")) == NULL) {
		eb_errf(err, errlen, "cannot open %s: %s", cert_file,
		        ssl_reason());
		goto out_fail;
	}
	while ((x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL) {
		if (s->cert == NULL && X509_check_private_key(x, s->key) == 1)
			s->cert = x;
		else if (sk_X509_push(s->chain, x) <= 0) {
			X509_free(x);
			BIO_free(b);
			eb_errf(err, errlen, "out of memory");
			goto out_fail;
		}
	}
	BIO_free(b);
	ERR_clear_error(); /* the end of the file reads as an error */
	if (s->cert == NULL) {
		eb_errf(err, errlen,
		        "%s holds no certificate matching the key in %s",
		        cert_file, key_file);
		goto out_fail;
	}
	for (i = 0; i < sk_X509_num(s->chain); i++)
		if (X509_cmp(sk_X509_value(s->chain, i), s->cert) == 0)
			X509_free(sk_X509_delete(s->chain, i--));
	return s;
out_fail:
	eb_cms_signer_unref(s);
	ERR_clear_error();
	return NULL;
}

struct eb_cms_signer *
eb_cms_signer_ref(struct eb_cms_signer *s)
{
	if (s != NULL)
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	return s;
}

void
eb_cms_signer_unref(struct eb_cms_signer *s)
{
	if (s == NULL || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	X509_free(s->cert);
	EVP_PKEY_free(s->key); /* OpenSSL clears private key material */
	sk_X509_pop_free(s->chain, X509_free);
	eb_free(s);
}

int
eb_cms_signer_subject(const struct eb_cms_signer *s, char *buf, size_t buflen)
{
	if (buflen == 0 || buflen > INT_MAX)
		return -1;
	buf[0] = '\0';
	if (X509_NAME_oneline(X509_get_subject_name(s->cert), buf,
	                      (int)buflen) == NULL)
		return -1;
	return 0;
}

int
eb_cms_sign(const struct eb_cms_signer *s, const void *data, size_t len,
            uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
	CMS_ContentInfo *cms = NULL;
	BIO *in = NULL, *bout = NULL;
	char *der;
	long n;
	int rc = -1;

	*out = NULL;
	*outlen = 0;
	if (len > INT_MAX) {
		eb_errf(err, errlen, "content too large to sign");
		return -1;
	}
	if ((in = BIO_new_mem_buf(data, (int)len)) == NULL ||
	    (bout = BIO_new(BIO_s_mem())) == NULL) {
		eb_errf(err, errlen, "out of memory");
		goto out;
	}
	if ((cms = CMS_sign(s->cert, s->key, s->chain, in, CMS_BINARY)) ==
	        NULL ||
	    i2d_CMS_bio(bout, cms) != 1) {
		eb_errf(err, errlen, "CMS signing failed: %s", ssl_reason());
		goto out;
	}
	if ((n = BIO_get_mem_data(bout, &der)) <= 0 ||
	    (*out = eb_malloc((size_t)n)) == NULL) {
		eb_errf(err, errlen, "out of memory");
		goto out;
	}
	memcpy(*out, der, (size_t)n);
	*outlen = (size_t)n;
	rc = 0;
out:
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(bout);
	ERR_clear_error();
	return rc;
}
