/*
 * Unit tests for src/apple/profile.c against a realistic enrollment profile
 * (tests/unit/data/profiles/enroll.mobileconfig: root CA, SCEP identity and
 * com.apple.mdm payloads). Every key PROTOCOL.md section 4 names is checked
 * for BYOD and ADDE, and the rest of the profile must come out exactly as
 * it went in. Also: proxy URL rewriting, CMS signing (verified here with
 * OpenSSL against the signing CA, chain included), signed input profiles,
 * profiles without (or with two) com.apple.mdm payloads, fetching from an
 * MDM (working, failing, dead), the file cache, and start-up checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fx_http.h"

#include "apple/plist.h"
#include "apple/profile.h"
#include "apple_testpki.h"
#include "core/mem.h"

#define PUBLIC_URL "https://bridge.example.com"
#define MAID       "alice@appleid.contoso.com"

static char src_dir[512];
static struct tp_id sign_ca, signer, mdm_signer;
static char chain_file[256], key_file[256], wrong_key_file[256];

static const char *
fixture(const char *name)
{
	static char path[4][768];
	static int i;

	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/tests/unit/data/profiles/%s",
	         src_dir, name);
	return path[i];
}

static const char *
tmpfile_path(const char *name)
{
	static char path[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/%s", tp_tmpdir(), name);
	return path[i];
}

static unsigned char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void
spit(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static int
setup(void **state)
{
	const char *s = getenv("EB_SOURCE_DIR");
	X509 *certs[3] = {NULL, NULL, NULL};
	struct tp_id other;

	(void)state;
	snprintf(src_dir, sizeof(src_dir), "%s", s ? s : ".");
	sign_ca = tp_make("Contoso Profile Signing CA", NULL, 1);
	signer = tp_make("Contoso Enrollment Profile Signer", &sign_ca, 0);
	mdm_signer = tp_make("mdm.example", NULL, 0);
	other = tp_make("Unrelated", NULL, 0);
	snprintf(chain_file, sizeof(chain_file), "%s/signing.pem", tp_tmpdir());
	snprintf(key_file, sizeof(key_file), "%s/signing.key", tp_tmpdir());
	snprintf(wrong_key_file, sizeof(wrong_key_file), "%s/wrong.key",
	         tp_tmpdir());
	/* chain first, signer second: the order must not matter */
	certs[0] = sign_ca.cert;
	certs[1] = signer.cert;
	tp_write_certs(chain_file, certs);
	tp_write_key(key_file, signer.key);
	tp_write_key(wrong_key_file, other.key);
	tp_free(&other);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tp_free(&sign_ca);
	tp_free(&signer);
	tp_free(&mdm_signer);
	tp_rmdir();
	return 0;
}

static struct eb_tenant
tenant(const char *profile_file)
{
	struct eb_tenant t;

	memset(&t, 0, sizeof(t));
	t.id = (char *)"acme";
	t.mdm.profile_file = (char *)profile_file;
	t.mdm.upstream = (char *)"https://mdm.example";
	return t;
}

static struct eb_profile_opts
opts(struct eb_profile_cache *c)
{
	struct eb_profile_opts o;

	memset(&o, 0, sizeof(o));
	o.public_url = PUBLIC_URL;
	o.cache = c;
	o.fetch_timeout = 5;
	return o;
}

/* Build for t and parse the result back (unsigned expected). */
static struct eb_plist *
build_parse(const struct eb_tenant *t, enum eb_enroll_mode mode,
            uint8_t **xml_out, size_t *xml_len)
{
	struct eb_profile_opts o = opts(NULL);
	struct eb_plist *p;
	uint8_t *out;
	size_t len;
	char err[512] = "";
	int is_signed = -1;

	if (eb_profile_build(t, &o, MAID, mode, &out, &len, &is_signed, err,
	                     sizeof(err)) != EB_PROFILE_OK)
		fail_msg("build failed: %s", err);
	assert_int_equal(is_signed, 0);
	assert_non_null(strstr((char *)out, "<?xml"));
	p = eb_profile_parse(out, len, err, sizeof(err));
	assert_non_null(p);
	if (xml_out != NULL) {
		*xml_out = out;
		*xml_len = len;
	} else
		eb_free(out);
	return p;
}

static const struct eb_plist *
payload_of_type(const struct eb_plist *profile, const char *type)
{
	const struct eb_plist *content, *item;
	const char *t;
	size_t i;

	content = eb_plist_dict_get_array(profile, "PayloadContent");
	for (i = 0; (item = eb_plist_array_get(content, i)) != NULL; i++)
		if ((t = eb_plist_dict_get_string(item, "PayloadType", NULL)) &&
		    strcmp(t, type) == 0)
			return item;
	return NULL;
}

/* The MDM payload keys that must survive any patch unchanged. */
static void
check_usual_keys(const struct eb_plist *mdm)
{
	const struct eb_plist *caps;
	int b = 0;

	assert_string_equal(
	    eb_plist_dict_get_string(mdm, "IdentityCertificateUUID", NULL),
	    "BEE605B8-D0A2-460A-9263-1D846DC9DA1D");
	assert_string_equal(
	    eb_plist_dict_get_string(mdm, "Topic", NULL),
	    "com.apple.mgmt.External.2FA13595-ABA7-450C-A735-31592421DF9E");
	assert_int_equal(eb_plist_dict_get_bool(mdm, "SignMessage", &b), 0);
	assert_true(b);
	assert_int_equal(eb_plist_dict_get_bool(mdm, "CheckOutWhenRemoved", &b),
	                 0);
	assert_true(b);
	caps = eb_plist_dict_get_array(mdm, "ServerCapabilities");
	assert_int_equal(eb_plist_array_size(caps), 3);
	assert_string_equal(eb_plist_string(eb_plist_array_get(caps, 0), NULL),
	                    "com.apple.mdm.per-user-connections");
	assert_string_equal(eb_plist_string(eb_plist_array_get(caps, 1), NULL),
	                    "com.apple.mdm.bootstraptoken");
	assert_string_equal(eb_plist_string(eb_plist_array_get(caps, 2), NULL),
	                    "com.apple.mdm.token");
}

/*
 * The fixture with exactly the edits PROTOCOL.md asks for, made by hand:
 * the build must produce the same bytes (nothing else changed).
 */
static void
expect_only_patched(const uint8_t *out, size_t len, enum eb_enroll_mode mode)
{
	struct eb_plist *orig, *mdm;
	uint8_t *want;
	size_t wantlen;
	char err[256];

	orig = eb_profile_read_file(fixture("enroll.mobileconfig"), NULL, NULL,
	                            err, sizeof(err));
	assert_non_null(orig);
	mdm = (struct eb_plist *)payload_of_type(orig, "com.apple.mdm");
	assert_non_null(mdm);
	assert_int_equal(
	    eb_plist_dict_set_string(mdm, "EnrollmentMode",
	                             mode == EB_MODE_BYOD ? "BYOD" : "ADDE"),
	    0);
	assert_int_equal(
	    eb_plist_dict_set_string(mdm, "AssignedManagedAppleID", MAID), 0);
	if (mode == EB_MODE_BYOD)
		assert_int_equal(eb_plist_dict_remove(mdm, "AccessRights"), 1);
	assert_int_equal(eb_plist_dict_remove(mdm, "ManagedAppleID"), 1);
	assert_int_equal(eb_plist_to_xml(orig, &want, &wantlen), 0);
	assert_int_equal(len, wantlen);
	assert_memory_equal(out, want, len);
	eb_free(want);
	eb_plist_free(orig);
}

static void
test_byod(void **state)
{
	struct eb_tenant t = tenant(fixture("enroll.mobileconfig"));
	const struct eb_plist *mdm, *scep, *root;
	struct eb_plist *p;
	const uint8_t *der;
	uint8_t *xml;
	size_t len, xmllen;
	int64_t v = 0;

	(void)state;
	p = build_parse(&t, EB_MODE_BYOD, &xml, &xmllen);
	mdm = eb_profile_mdm_payload(p, NULL, 0);
	assert_non_null(mdm);
	assert_string_equal(
	    eb_plist_dict_get_string(mdm, "EnrollmentMode", NULL), "BYOD");
	assert_string_equal(
	    eb_plist_dict_get_string(mdm, "AssignedManagedAppleID", NULL),
	    MAID);
	assert_null(eb_plist_dict_get(mdm, "AccessRights"));
	assert_null(eb_plist_dict_get(mdm, "ManagedAppleID"));
	/* not proxied: the MDM's own URLs */
	assert_string_equal(eb_plist_dict_get_string(mdm, "ServerURL", NULL),
	                    "https://mdm.example/mdm/server");
	assert_string_equal(eb_plist_dict_get_string(mdm, "CheckInURL", NULL),
	                    "https://mdm.example/mdm/checkin?tenant=acme");
	check_usual_keys(mdm);
	/* the other payloads are untouched */
	scep = payload_of_type(p, "com.apple.security.scep");
	assert_non_null(scep);
	assert_int_equal(
	    eb_plist_dict_get_int(
	        eb_plist_dict_get_dict(scep, "PayloadContent"), "Keysize", &v),
	    0);
	assert_int_equal(v, 2048);
	root = payload_of_type(p, "com.apple.security.root");
	der = eb_plist_dict_get_data(root, "PayloadContent", &len);
	assert_non_null(der);
	assert_true(len > 400 && der[0] == 0x30);
	assert_string_equal(
	    eb_plist_dict_get_string(p, "PayloadIdentifier", NULL),
	    "com.example.mdm.enroll");
	expect_only_patched(xml, xmllen, EB_MODE_BYOD);
	eb_free(xml);
	eb_plist_free(p);
}

static void
test_adde(void **state)
{
	struct eb_tenant t = tenant(fixture("enroll.mobileconfig"));
	const struct eb_plist *mdm;
	struct eb_plist *p;
	uint8_t *xml;
	size_t xmllen;
	int64_t rights = 0;

	(void)state;
	p = build_parse(&t, EB_MODE_ADDE, &xml, &xmllen);
	mdm = eb_profile_mdm_payload(p, NULL, 0);
	assert_string_equal(
	    eb_plist_dict_get_string(mdm, "EnrollmentMode", NULL), "ADDE");
	assert_string_equal(
	    eb_plist_dict_get_string(mdm, "AssignedManagedAppleID", NULL),
	    MAID);
	assert_int_equal(eb_plist_dict_get_int(mdm, "AccessRights", &rights),
	                 0);
	assert_int_equal(rights, 8191);
	assert_null(eb_plist_dict_get(mdm, "ManagedAppleID"));
	check_usual_keys(mdm);
	expect_only_patched(xml, xmllen, EB_MODE_ADDE);
	eb_free(xml);
	eb_plist_free(p);
}

static void
test_proxy(void **state)
{
	struct eb_tenant t = tenant(fixture("enroll.mobileconfig"));
	const struct eb_plist *mdm;
	struct eb_plist *p;

	(void)state;
	t.mdm.use_proxy = 1;
	p = build_parse(&t, EB_MODE_BYOD, NULL, NULL);
	mdm = eb_profile_mdm_payload(p, NULL, 0);
	assert_string_equal(eb_plist_dict_get_string(mdm, "ServerURL", NULL),
	                    PUBLIC_URL "/t/acme/mdm/mdm/server");
	assert_string_equal(eb_plist_dict_get_string(mdm, "CheckInURL", NULL),
	                    PUBLIC_URL "/t/acme/mdm/mdm/checkin?tenant=acme");
	check_usual_keys(mdm);
	eb_plist_free(p);

	/* an upstream with a path of its own: the part under it is kept */
	t.mdm.upstream = (char *)"https://mdm.example/mdm";
	p = build_parse(&t, EB_MODE_ADDE, NULL, NULL);
	mdm = eb_profile_mdm_payload(p, NULL, 0);
	assert_string_equal(eb_plist_dict_get_string(mdm, "ServerURL", NULL),
	                    PUBLIC_URL "/t/acme/mdm/server");
	assert_string_equal(eb_plist_dict_get_string(mdm, "CheckInURL", NULL),
	                    PUBLIC_URL "/t/acme/mdm/checkin?tenant=acme");
	eb_plist_free(p);
}

static void
test_proxy_url(void **state)
{
	static const char *const cases[][4] = {
	    /* orig, upstream, expected (base is B) */
	    {"https://mdm.example/mdm/server", "https://mdm.example",
	     "B/mdm/server"},
	    {"https://mdm.example/mdm/checkin?a=1&b=2", "https://mdm.example",
	     "B/mdm/checkin?a=1&b=2"},
	    {"https://MDM.example/mdm/server", "https://mdm.example",
	     "B/mdm/server"},
	    {"https://mdm.example/micromdm/mdm/connect",
	     "https://mdm.example/micromdm", "B/mdm/connect"},
	    /* the profile names the public host, upstream an internal one */
	    {"https://mdm.contoso.com/mdm/server", "http://10.0.0.5:9000",
	     "B/mdm/server"},
	    {"https://mdm.example:8443/server", NULL, "B/server"},
	    {"https://mdm.example", NULL, "B/"},
	    {"https://mdm.example?x=1", NULL, "B/?x=1"},
	    {"https://mdm.example/", NULL, "B/"},
	    /* a look-alike host is no prefix of upstream */
	    {"https://mdm.example.evil/x", "https://mdm.example", "B/x"},
	    {"https://mdm.example/micromdmX/y", "https://mdm.example/micromdm",
	     "B/micromdmX/y"},
	    {"ftp://mdm.example/x", NULL, NULL},
	    {"https:///x", NULL, NULL},
	    {"mdm.example/x", NULL, NULL},
	    {"https://mdm.example/a b", NULL, NULL},
	};
	size_t i;
	char *s;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = eb_profile_proxy_url(cases[i][0], "B", cases[i][1]);
		if (cases[i][2] == NULL) {
			assert_null(s);
			continue;
		}
		if (s == NULL || strcmp(s, cases[i][2]) != 0)
			fail_msg("%s -> %s, want %s", cases[i][0],
			         s ? s : "NULL", cases[i][2]);
		eb_free(s);
	}
}

static void
test_no_checkin_url(void **state)
{
	struct eb_profile_patch patch;
	struct eb_plist *p, *mdm;
	char err[256];

	(void)state;
	p = eb_profile_read_file(fixture("enroll.mobileconfig"), NULL, NULL,
	                         err, sizeof(err));
	assert_non_null(p);
	mdm = eb_profile_mdm_payload(p, err, sizeof(err));
	assert_int_equal(eb_plist_dict_remove(mdm, "CheckInURL"), 1);
	memset(&patch, 0, sizeof(patch));
	patch.mode = EB_MODE_BYOD;
	patch.managed_apple_id = MAID;
	patch.proxy_base = PUBLIC_URL "/t/acme/mdm";
	assert_int_equal(eb_profile_patch(p, &patch, err, sizeof(err)), 0);
	assert_null(eb_plist_dict_get(mdm, "CheckInURL"));
	assert_string_equal(eb_plist_dict_get_string(mdm, "ServerURL", NULL),
	                    PUBLIC_URL "/t/acme/mdm/mdm/server");
	/* no account: refused */
	patch.managed_apple_id = "";
	assert_int_equal(eb_profile_patch(p, &patch, err, sizeof(err)), -1);
	eb_plist_free(p);
}

/* With apple_business the proxy answers GetToken: the profile says the
 * server can (com.apple.mdm.token), once; without it nothing is added. */
static void
test_token_capability(void **state)
{
	struct eb_profile_patch patch;
	struct eb_plist *p, *mdm, *caps;
	char err[256];

	(void)state;
	p = eb_profile_read_file(fixture("enroll.mobileconfig"), NULL, NULL,
	                         err, sizeof(err));
	assert_non_null(p);
	mdm = eb_profile_mdm_payload(p, err, sizeof(err));
	assert_non_null(mdm);
	memset(&patch, 0, sizeof(patch));
	patch.mode = EB_MODE_BYOD;
	patch.managed_apple_id = MAID;
	patch.proxy_base = PUBLIC_URL "/t/acme/mdm";
	/* already listed: not repeated */
	patch.token_capability = 1;
	assert_int_equal(eb_profile_patch(p, &patch, err, sizeof(err)), 0);
	check_usual_keys(mdm);
	/* absent: not added unless asked */
	assert_int_equal(eb_plist_dict_remove(mdm, "ServerCapabilities"), 1);
	patch.token_capability = 0;
	assert_int_equal(eb_profile_patch(p, &patch, err, sizeof(err)), 0);
	assert_null(eb_plist_dict_get(mdm, "ServerCapabilities"));
	patch.token_capability = 1;
	assert_int_equal(eb_profile_patch(p, &patch, err, sizeof(err)), 0);
	caps = eb_plist_dict_get_array(mdm, "ServerCapabilities");
	assert_int_equal(eb_plist_array_size(caps), 1);
	assert_string_equal(eb_plist_string(eb_plist_array_get(caps, 0), NULL),
	                    "com.apple.mdm.token");
	/* not an array: refused */
	assert_int_equal(
	    eb_plist_dict_set_string(mdm, "ServerCapabilities", "x"), 0);
	assert_int_equal(eb_profile_patch(p, &patch, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "ServerCapabilities"));
	eb_plist_free(p);
}

static void
test_mdm_payload_checks(void **state)
{
	struct eb_plist *p, *mdm;
	char err[256];

	(void)state;
	p = eb_profile_read_file(fixture("enroll.mobileconfig"), NULL, NULL,
	                         err, sizeof(err));
	mdm = eb_profile_mdm_payload(p, err, sizeof(err));
	assert_non_null(mdm);
	assert_int_equal(eb_plist_dict_set_string(mdm, "Topic", "com.example"),
	                 0);
	assert_null(eb_profile_mdm_payload(p, err, sizeof(err)));
	assert_non_null(strstr(err, "Topic"));
	eb_plist_free(p);

	p = eb_profile_read_file(fixture("enroll.mobileconfig"), NULL, NULL,
	                         err, sizeof(err));
	mdm = eb_profile_mdm_payload(p, err, sizeof(err));
	assert_int_equal(
	    eb_plist_dict_set_string(mdm, "ServerURL", "mdm.example/server"),
	    0);
	assert_null(eb_profile_mdm_payload(p, err, sizeof(err)));
	assert_non_null(strstr(err, "ServerURL"));
	eb_plist_free(p);

	p = eb_profile_read_file(fixture("enroll.mobileconfig"), NULL, NULL,
	                         err, sizeof(err));
	mdm = eb_profile_mdm_payload(p, err, sizeof(err));
	assert_int_equal(eb_plist_dict_remove(mdm, "IdentityCertificateUUID"),
	                 1);
	assert_null(eb_profile_mdm_payload(p, err, sizeof(err)));
	assert_non_null(strstr(err, "IdentityCertificateUUID"));
	eb_plist_free(p);
}

static void
test_missing_mdm(void **state)
{
	struct eb_profile_opts o = opts(NULL);
	struct eb_tenant t = tenant(fixture("no-mdm.mobileconfig"));
	uint8_t *out = (uint8_t *)"x";
	size_t len = 1;
	char err[512];

	(void)state;
	assert_int_equal(eb_profile_build(&t, &o, MAID, EB_MODE_BYOD, &out,
	                                  &len, NULL, err, sizeof(err)),
	                 EB_PROFILE_ERR_CONFIG);
	assert_null(out);
	assert_int_equal(len, 0);
	assert_non_null(strstr(err, "no com.apple.mdm payload"));
	assert_int_equal(eb_profile_check_config(&t, NULL, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "no com.apple.mdm payload"));

	t = tenant(fixture("two-mdm.mobileconfig"));
	assert_int_equal(eb_profile_check_config(&t, NULL, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "2 com.apple.mdm payloads"));
	assert_int_equal(eb_profile_build(&t, &o, MAID, EB_MODE_BYOD, &out,
	                                  &len, NULL, err, sizeof(err)),
	                 EB_PROFILE_ERR_CONFIG);

	t = tenant(fixture("does-not-exist.mobileconfig"));
	assert_int_equal(eb_profile_check_config(&t, NULL, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "does-not-exist"));

	/* no source at all */
	t = tenant(NULL);
	assert_int_equal(eb_profile_build(&t, &o, MAID, EB_MODE_BYOD, &out,
	                                  &len, NULL, err, sizeof(err)),
	                 EB_PROFILE_ERR_CONFIG);
	assert_int_equal(eb_profile_check_config(&t, NULL, err, sizeof(err)),
	                 0);
}

/* Verify a signed profile with OpenSSL against the signing CA. */
static struct eb_plist *
verify_signed(const uint8_t *der, size_t len)
{
	CMS_ContentInfo *cms;
	STACK_OF(X509) * certs, *signers;
	X509_STORE *st;
	BIO *in, *out;
	struct eb_plist *p;
	char *content, err[256];
	long n;

	in = BIO_new_mem_buf(der, (int)len);
	cms = d2i_CMS_bio(in, NULL);
	assert_non_null(cms);
	st = X509_STORE_new();
	X509_STORE_add_cert(st, sign_ca.cert);
	X509_STORE_set_purpose(st, X509_PURPOSE_ANY);
	out = BIO_new(BIO_s_mem());
	assert_int_equal(CMS_verify(cms, NULL, st, NULL, out, CMS_BINARY), 1);
	/* the chain travels with the signature */
	certs = CMS_get1_certs(cms);
	assert_int_equal(sk_X509_num(certs), 2);
	signers = CMS_get0_signers(cms);
	assert_int_equal(sk_X509_num(signers), 1);
	assert_int_equal(X509_cmp(sk_X509_value(signers, 0), signer.cert), 0);
	n = BIO_get_mem_data(out, &content);
	assert_true(n > 0);
	assert_int_equal(strncmp(content, "<?xml", 5), 0);
	p = eb_profile_parse(content, (size_t)n, err, sizeof(err));
	assert_non_null(p);
	sk_X509_free(signers);
	sk_X509_pop_free(certs, X509_free);
	BIO_free(in);
	BIO_free(out);
	X509_STORE_free(st);
	CMS_ContentInfo_free(cms);
	return p;
}

static void
test_signed_output(void **state)
{
	struct eb_profile_cache *c = eb_profile_cache_create();
	struct eb_profile_opts o = opts(c);
	struct eb_tenant t = tenant(fixture("enroll.mobileconfig"));
	const struct eb_plist *mdm;
	struct eb_plist *p;
	uint8_t *out;
	size_t len;
	char err[512];
	int is_signed = 0, i;

	(void)state;
	t.mdm.signing_cert = chain_file;
	t.mdm.signing_key = key_file;
	assert_int_equal(eb_profile_check_config(&t, c, err, sizeof(err)), 0);
	for (i = 0; i < 2; i++) { /* the second build uses the cache */
		assert_int_equal(eb_profile_build(&t, &o, MAID, EB_MODE_BYOD,
		                                  &out, &len, &is_signed, err,
		                                  sizeof(err)),
		                 EB_PROFILE_OK);
		assert_int_equal(is_signed, 1);
		assert_int_equal(out[0], 0x30); /* DER */
		p = verify_signed(out, len);
		mdm = eb_profile_mdm_payload(p, NULL, 0);
		assert_string_equal(
		    eb_plist_dict_get_string(mdm, "EnrollmentMode", NULL),
		    "BYOD");
		assert_string_equal(eb_plist_dict_get_string(
		                        mdm, "AssignedManagedAppleID", NULL),
		                    MAID);
		assert_null(eb_plist_dict_get(mdm, "AccessRights"));
		/* our own parser takes it too (unwrapping the signature) */
		eb_plist_free(p);
		p = eb_profile_parse(out, len, err, sizeof(err));
		assert_non_null(p);
		eb_plist_free(p);
		eb_free(out);
	}

	/* a key that does not belong to the certificate */
	t.mdm.signing_key = wrong_key_file;
	assert_int_equal(eb_profile_check_config(&t, c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no certificate matching"));
	assert_int_equal(eb_profile_build(&t, &o, MAID, EB_MODE_BYOD, &out,
	                                  &len, NULL, err, sizeof(err)),
	                 EB_PROFILE_ERR_CONFIG);
	assert_null(out);
	t.mdm.signing_key = (char *)"/nonexistent/key.pem";
	assert_int_equal(eb_profile_check_config(&t, c, err, sizeof(err)), -1);
	eb_profile_cache_destroy(c);
}

static void
test_signed_input(void **state)
{
	struct eb_tenant t;
	const struct eb_plist *mdm;
	struct eb_plist *p;
	unsigned char *raw, *der;
	size_t rawlen, derlen, i;
	char err[512];

	(void)state;
	/* an MDM that exports its enrollment profile signed */
	raw = slurp(fixture("enroll.mobileconfig"), &rawlen);
	der = tp_cms_sign(&mdm_signer, NULL, raw, rawlen, 0, &derlen);
	spit(tmpfile_path("signed.mobileconfig"), der, derlen);
	t = tenant(tmpfile_path("signed.mobileconfig"));
	assert_int_equal(eb_profile_check_config(&t, NULL, err, sizeof(err)),
	                 0);
	p = build_parse(&t, EB_MODE_ADDE, NULL, NULL);
	mdm = eb_profile_mdm_payload(p, NULL, 0);
	assert_string_equal(
	    eb_plist_dict_get_string(mdm, "EnrollmentMode", NULL), "ADDE");
	eb_plist_free(p);

	/* tampered: refused, not taken as a plain file */
	for (i = 0; i + 6 < derlen; i++)
		if (memcmp(der + i, "8191", 4) == 0) {
			der[i] = '7';
			break;
		}
	assert_true(i + 6 < derlen);
	spit(tmpfile_path("tampered.mobileconfig"), der, derlen);
	t = tenant(tmpfile_path("tampered.mobileconfig"));
	assert_int_equal(eb_profile_check_config(&t, NULL, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "bad signature"));
	free(raw);
	free(der);
}

static void
test_cache(void **state)
{
	struct eb_profile_cache *c = eb_profile_cache_create();
	struct eb_profile_opts o = opts(c);
	const char *path = tmpfile_path("cached.mobileconfig");
	struct eb_tenant t = tenant(path);
	unsigned char *good, *bad, *junk;
	size_t goodlen, badlen;
	uint8_t *out;
	size_t len;
	char err[512];
	struct stat st;
	struct timespec times[2];
	int fd;

	(void)state;
	good = slurp(fixture("enroll.mobileconfig"), &goodlen);
	bad = slurp(fixture("no-mdm.mobileconfig"), &badlen);
	spit(path, good, goodlen);
	assert_int_equal(eb_profile_build(&t, &o, MAID, EB_MODE_BYOD, &out,
	                                  &len, NULL, err, sizeof(err)),
	                 EB_PROFILE_OK);
	eb_free(out);

	/* same inode, size and mtime: the cached copy is used, the disk is
	 * not read again (the junk would not parse) */
	assert_int_equal(stat(path, &st), 0);
	junk = malloc(goodlen);
	memset(junk, '#', goodlen);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, goodlen), (ssize_t)goodlen);
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	assert_int_equal(futimens(fd, times), 0);
	close(fd);
	assert_int_equal(eb_profile_build(&t, &o, MAID, EB_MODE_BYOD, &out,
	                                  &len, NULL, err, sizeof(err)),
	                 EB_PROFILE_OK);
	eb_free(out);
	/* without the cache the junk is seen */
	o.cache = NULL;
	assert_int_equal(eb_profile_build(&t, &o, MAID, EB_MODE_BYOD, &out,
	                                  &len, NULL, err, sizeof(err)),
	                 EB_PROFILE_ERR_CONFIG);
	o.cache = c;

	/* a changed file is read again */
	spit(path, bad, badlen);
	assert_int_equal(eb_profile_build(&t, &o, MAID, EB_MODE_BYOD, &out,
	                                  &len, NULL, err, sizeof(err)),
	                 EB_PROFILE_ERR_CONFIG);
	assert_non_null(strstr(err, "com.apple.mdm"));
	spit(path, good, goodlen);
	assert_int_equal(eb_profile_build(&t, &o, MAID, EB_MODE_ADDE, &out,
	                                  &len, NULL, err, sizeof(err)),
	                 EB_PROFILE_OK);
	eb_free(out);
	/* a file gone: an error, not the stale copy */
	unlink(path);
	assert_int_equal(eb_profile_build(&t, &o, MAID, EB_MODE_BYOD, &out,
	                                  &len, NULL, err, sizeof(err)),
	                 EB_PROFILE_ERR_CONFIG);
	free(good);
	free(bad);
	free(junk);
	eb_profile_cache_destroy(c);
	eb_profile_cache_destroy(NULL);
}

static void
test_fetch(void **state)
{
	struct eb_profile_opts o = opts(NULL);
	struct eb_tenant t = tenant(NULL);
	const struct eb_plist *mdm;
	struct eb_plist *p;
	struct fx_http *m;
	unsigned char *raw, *der;
	size_t rawlen, derlen, len;
	uint8_t *out;
	char url[128], err[512];

	(void)state;
	raw = slurp(fixture("enroll.mobileconfig"), &rawlen);
	der = tp_cms_sign(&mdm_signer, NULL, raw, rawlen, 0, &derlen);
	m = fx_http_start();
	fx_http_set_body(m, "/mdm/enroll", 200,
	                 "application/x-apple-aspen-config", der, derlen, 0);
	snprintf(url, sizeof(url), "%s/mdm/enroll", fx_http_base(m));
	t.mdm.profile_url = url;
	t.mdm.use_proxy = 1;
	assert_int_equal(eb_profile_build(&t, &o, MAID, EB_MODE_BYOD, &out,
	                                  &len, NULL, err, sizeof(err)),
	                 EB_PROFILE_OK);
	p = eb_profile_parse(out, len, err, sizeof(err));
	mdm = eb_profile_mdm_payload(p, NULL, 0);
	assert_string_equal(
	    eb_plist_dict_get_string(mdm, "EnrollmentMode", NULL), "BYOD");
	assert_string_equal(eb_plist_dict_get_string(mdm, "ServerURL", NULL),
	                    PUBLIC_URL "/t/acme/mdm/mdm/server");
	assert_null(eb_plist_dict_get(mdm, "AccessRights"));
	eb_plist_free(p);
	eb_free(out);
	/* start-up does not fetch */
	assert_int_equal(eb_profile_check_config(&t, NULL, err, sizeof(err)),
	                 0);

	/* the MDM fails: 502-worthy, nothing partial */
	fx_http_set_body(m, "/mdm/enroll", 500,
	                 "application/x-apple-aspen-config", der, derlen, 0);
	out = (uint8_t *)"x";
	assert_int_equal(eb_profile_build(&t, &o, MAID, EB_MODE_BYOD, &out,
	                                  &len, NULL, err, sizeof(err)),
	                 EB_PROFILE_ERR_UPSTREAM);
	assert_null(out);
	assert_non_null(strstr(err, "HTTP 500"));
	/* an HTML login page instead of a profile */
	fx_http_set_body(m, "/mdm/enroll", 200, "text/html",
	                 "<html><body>Sign in</body></html>", 33, 0);
	assert_int_equal(eb_profile_build(&t, &o, MAID, EB_MODE_BYOD, &out,
	                                  &len, NULL, err, sizeof(err)),
	                 EB_PROFILE_ERR_UPSTREAM);
	assert_null(out);
	/* bigger than allowed */
	fx_http_set_body(m, "/mdm/enroll", 200, "text/html", raw, rawlen, 0);
	o.fetch_max_bytes = 1000;
	assert_int_equal(eb_profile_build(&t, &o, MAID, EB_MODE_BYOD, &out,
	                                  &len, NULL, err, sizeof(err)),
	                 EB_PROFILE_ERR_UPSTREAM);
	assert_null(out);
	assert_int_equal(fx_http_hits(m, "/mdm/enroll"), 4);
	fx_http_free(m);
	free(raw);
	free(der);
}

static void
test_fetch_dead(void **state)
{
	struct eb_profile_opts o = opts(NULL);
	struct eb_tenant t = tenant(NULL);
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	uint8_t *out = (uint8_t *)"x";
	size_t len = 1;
	char url[128], err[512];
	int fd;

	(void)state;
	/* a port that was just free: nobody listens there */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/enroll",
	         ntohs(sa.sin_port));
	t.mdm.profile_url = url;
	assert_int_equal(eb_profile_build(&t, &o, MAID, EB_MODE_BYOD, &out,
	                                  &len, NULL, err, sizeof(err)),
	                 EB_PROFILE_ERR_UPSTREAM);
	assert_null(out);
	assert_int_equal(len, 0);
	assert_non_null(strstr(err, "connect"));
}

static void
test_parse_rejects(void **state)
{
	char err[256];

	(void)state;
	assert_null(eb_profile_parse("hello", 5, err, sizeof(err)));
	assert_null(
	    eb_profile_parse("<plist><array/></plist>", 23, err, sizeof(err)));
	assert_non_null(strstr(err, "not a dict"));
	assert_null(
	    eb_profile_read_file(fixture(""), NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "not a regular file"));
}

/* Every one of our allocations failing in turn, signed and cached: an
 * error, never a crash, a leak or a partial profile. */
static void
test_alloc_failures(void **state)
{
	struct eb_profile_cache *c;
	struct eb_profile_opts o;
	struct eb_tenant t = tenant(fixture("enroll.mobileconfig"));
	enum eb_profile_status rc;
	uint8_t *out;
	size_t len;
	char err[512];
	long n, total;
	int pass;

	(void)state;
	t.mdm.use_proxy = 1;
	t.mdm.signing_cert = chain_file;
	t.mdm.signing_key = key_file;
	for (pass = 0; pass < 2; pass++) {
		c = pass ? eb_profile_cache_create() : NULL;
		o = opts(c);
		eb_mem_fail_after(-1);
		for (n = 0;; n++) {
			assert_true(n < 1000);
			eb_mem_fail_after(n);
			rc = eb_profile_build(&t, &o, MAID, EB_MODE_BYOD, &out,
			                      &len, NULL, err, sizeof(err));
			total = eb_mem_fail_after(-1);
			if (rc != EB_PROFILE_OK) {
				assert_null(out);
				continue;
			}
			eb_free(out);
			if (n >= total)
				break;
		}
		eb_profile_cache_destroy(c);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_byod),
	    cmocka_unit_test(test_adde),
	    cmocka_unit_test(test_proxy),
	    cmocka_unit_test(test_proxy_url),
	    cmocka_unit_test(test_no_checkin_url),
	    cmocka_unit_test(test_mdm_payload_checks),
	    cmocka_unit_test(test_missing_mdm),
	    cmocka_unit_test(test_signed_output),
	    cmocka_unit_test(test_signed_input),
	    cmocka_unit_test(test_cache),
	    cmocka_unit_test(test_fetch),
	    cmocka_unit_test(test_fetch_dead),
	    cmocka_unit_test(test_token_capability),
	    cmocka_unit_test(test_parse_rejects),
	    cmocka_unit_test(test_alloc_failures),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
