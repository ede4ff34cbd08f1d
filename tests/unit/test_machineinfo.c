/*
 * Unit tests for src/apple/machineinfo.c (and the CMS and plist layers under
 * it): MachineInfo bodies signed in-test with OpenSSL the way devices sign
 * them. A user enrollment body (no UDID), a device enrollment body (UDID,
 * SERIAL), the device CA check (right CA, wrong CA, self-signed device),
 * tampered content, a detached or certificate-less signature, garbage,
 * oversize bodies, a bare plist without CMS, PEM/base64 wrapping, bad values
 * (missing PRODUCT, too long, control characters), a binary plist, deep
 * nesting, and every allocation failing in turn.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apple/machineinfo.h"
#include "apple/plist.h"
#include "apple_testpki.h"
#include "core/mem.h"

#define PLIST_HEAD                                                             \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                         \
	"<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "              \
	"\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"                \
	"<plist version=\"1.0\">\n<dict>\n"
#define PLIST_TAIL "</dict>\n</plist>\n"

/* What an iPhone sends for account-driven User Enrollment (observed). */
static const char byod_xml[] =
    PLIST_HEAD "\t<key>LANGUAGE</key>\n\t<string>en-US</string>\n"
               "\t<key>OS_VERSION</key>\n\t<string>18.1</string>\n"
               "\t<key>PRODUCT</key>\n\t<string>iPhone17,2</string>\n"
               "\t<key>VERSION</key>\n\t<string>22B83</string>\n" PLIST_TAIL;

/* A Mac doing account-driven Device Enrollment. */
static const char adde_xml[] =
    PLIST_HEAD "\t<key>LANGUAGE</key>\n\t<string>de-CH</string>\n"
               "\t<key>OS_VERSION</key>\n\t<string>15.1</string>\n"
               "\t<key>PRODUCT</key>\n\t<string>Mac15,3</string>\n"
               "\t<key>SERIAL</key>\n\t<string>C02XK1ZJJGH5</string>\n"
               "\t<key>UDID</key>\n"
               "\t<string>00008112-001A2C3E0E91401E</string>\n"
               "\t<key>VERSION</key>\n\t<string>24B83</string>\n" PLIST_TAIL;

/* {PRODUCT: iPad16,3, VERSION: 22B83} as a binary plist (plistutil). */
static const unsigned char ipad_bin[] = {
    0x62, 0x70, 0x6c, 0x69, 0x73, 0x74, 0x30, 0x30, 0xd2, 0x01, 0x03, 0x02,
    0x04, 0x57, 0x50, 0x52, 0x4f, 0x44, 0x55, 0x43, 0x54, 0x58, 0x69, 0x50,
    0x61, 0x64, 0x31, 0x36, 0x2c, 0x33, 0x57, 0x56, 0x45, 0x52, 0x53, 0x49,
    0x4f, 0x4e, 0x55, 0x32, 0x32, 0x42, 0x38, 0x33, 0x08, 0x0d, 0x15, 0x1e,
    0x26, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2c};

static struct tp_id ca, other_ca, device, selfsigned;
static char ca_file[256], other_ca_file[256];

static int
setup(void **state)
{
	X509 *certs[2] = {NULL, NULL};

	(void)state;
	ca = tp_make("Test Device CA", NULL, 1);
	other_ca = tp_make("Some Other CA", NULL, 1);
	device = tp_make("00008112-001A2C3E0E91401E", &ca, 0);
	selfsigned = tp_make("Anonymous Device", NULL, 0);
	snprintf(ca_file, sizeof(ca_file), "%s/device-ca.pem", tp_tmpdir());
	snprintf(other_ca_file, sizeof(other_ca_file), "%s/other-ca.pem",
	         tp_tmpdir());
	certs[0] = ca.cert;
	tp_write_certs(ca_file, certs);
	certs[0] = other_ca.cert;
	tp_write_certs(other_ca_file, certs);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tp_free(&ca);
	tp_free(&other_ca);
	tp_free(&device);
	tp_free(&selfsigned);
	tp_rmdir();
	return 0;
}

static unsigned char *
sign_by(const struct tp_id *id, const char *xml, size_t *len)
{
	return tp_cms_sign(id, NULL, xml, strlen(xml), 0, len);
}

/* Parse and expect failure with a reason containing want. */
static void
expect_fail(const void *body, size_t len, const char *ca_path, const char *want)
{
	struct eb_machineinfo mi;
	char err[256] = "";

	assert_int_equal(
	    eb_machineinfo_parse(&mi, body, len, ca_path, err, sizeof(err)),
	    -1);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, want);
	assert_null(mi.product);
}

static void
test_byod_body(void **state)
{
	struct eb_machineinfo mi;
	unsigned char *body;
	size_t len;
	char err[256];

	(void)state;
	body = sign_by(&selfsigned, byod_xml, &len);
	assert_int_equal(
	    eb_machineinfo_parse(&mi, body, len, NULL, err, sizeof(err)), 0);
	assert_string_equal(mi.product, "iPhone17,2");
	assert_string_equal(mi.language, "en-US");
	assert_string_equal(mi.version, "22B83");
	assert_string_equal(mi.os_version, "18.1");
	assert_string_equal(mi.model_family, "iPhone");
	assert_null(mi.udid);
	assert_null(mi.serial);
	assert_null(mi.imei);
	assert_int_equal(mi.ca_verified, 0);
	eb_machineinfo_finish(&mi);
	assert_null(mi.product);
	eb_machineinfo_finish(&mi); /* twice is fine */
	free(body);
}

static void
test_adde_body(void **state)
{
	struct eb_machineinfo mi;
	unsigned char *body;
	size_t len;
	char err[256];

	(void)state;
	body = sign_by(&device, adde_xml, &len);
	assert_int_equal(
	    eb_machineinfo_parse(&mi, body, len, NULL, err, sizeof(err)), 0);
	assert_string_equal(mi.product, "Mac15,3");
	assert_string_equal(mi.model_family, "Mac");
	assert_string_equal(mi.udid, "00008112-001A2C3E0E91401E");
	assert_string_equal(mi.serial, "C02XK1ZJJGH5");
	assert_string_equal(mi.language, "de-CH");
	eb_machineinfo_finish(&mi);
	free(body);
}

static void
test_device_ca(void **state)
{
	struct eb_machineinfo mi;
	unsigned char *body, *self_body;
	size_t len, self_len;
	char err[256];

	(void)state;
	body = sign_by(&device, adde_xml, &len);
	assert_int_equal(
	    eb_machineinfo_parse(&mi, body, len, ca_file, err, sizeof(err)), 0);
	assert_int_equal(mi.ca_verified, 1);
	eb_machineinfo_finish(&mi);
	/* signed correctly, but by a device the configured CA never issued */
	expect_fail(body, len, other_ca_file, "not trusted");
	self_body = sign_by(&selfsigned, byod_xml, &self_len);
	expect_fail(self_body, self_len, ca_file, "not trusted");
	/* an unreadable bundle is an error, not a pass */
	expect_fail(body, len, "/nonexistent/ca.pem", "CA bundle");
	free(body);
	free(self_body);
}

static void
test_tampered(void **state)
{
	unsigned char *body, *p;
	size_t len, i;

	(void)state;
	body = sign_by(&selfsigned, byod_xml, &len);
	for (p = NULL, i = 0; i + 10 <= len; i++)
		if (memcmp(body + i, "iPhone17,2", 10) == 0) {
			p = body + i;
			break;
		}
	assert_non_null(p);
	p[9] = '9'; /* iPhone17,9: same length, still a valid plist */
	expect_fail(body, len, NULL, "bad signature");
	free(body);
}

static void
test_detached_and_nocerts(void **state)
{
	unsigned char *body;
	size_t len;

	(void)state;
	body = tp_cms_sign(&selfsigned, NULL, byod_xml, strlen(byod_xml),
	                   CMS_DETACHED, &len);
	expect_fail(body, len, NULL, "no content");
	free(body);
	/* the signer certificate is not in the message: nothing to check
	 * the signature with */
	body = tp_cms_sign(&selfsigned, NULL, byod_xml, strlen(byod_xml),
	                   CMS_NOCERTS, &len);
	expect_fail(body, len, NULL, "bad signature");
	free(body);
}

static void
test_garbage_and_plain(void **state)
{
	static const unsigned char der_junk[] = {0x30, 0x82, 0xff, 0xff, 0x06,
	                                         0x09, 0x2a, 0x86, 0x48};
	unsigned char *big;

	(void)state;
	expect_fail("hello world", 11, NULL, "not a CMS");
	expect_fail(der_junk, sizeof(der_junk), NULL, "not a CMS");
	expect_fail("", 0, NULL, "empty");
	/* a bare MachineInfo plist, unsigned: refused */
	expect_fail(byod_xml, strlen(byod_xml), NULL, "not a CMS");
	expect_fail(ipad_bin, sizeof(ipad_bin), NULL, "not a CMS");
	/* base64 alphabet that is not base64 of a CMS */
	expect_fail("QUJDRA==", 8, NULL, "not a CMS");
	big = calloc(1, EB_MACHINEINFO_MAX_BYTES + 1);
	assert_non_null(big);
	expect_fail(big, EB_MACHINEINFO_MAX_BYTES + 1, NULL, "larger");
	free(big);
}

static void
test_oversize_content(void **state)
{
	struct eb_machineinfo mi;
	unsigned char *body;
	char *xml, err[256];
	size_t len, n = EB_MACHINEINFO_MAX_BYTES + 100, off;

	(void)state;
	/* a valid MachineInfo past the limit, signed, and bare */
	xml = malloc(n + 64);
	assert_non_null(xml);
	off = (size_t)sprintf(xml, "%s<key>PRODUCT</key><string>", PLIST_HEAD);
	memset(xml + off, 'A', n - off);
	strcpy(xml + n, "</string>" PLIST_TAIL);
	body = sign_by(&selfsigned, xml, &len);
	assert_true(len > EB_MACHINEINFO_MAX_BYTES);
	expect_fail(body, len, NULL, "larger");
	assert_int_equal(
	    eb_machineinfo_parse_plist(&mi, xml, strlen(xml), err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "larger"));
	free(body);
	free(xml);
}

static void
test_wrapped(void **state)
{
	struct eb_machineinfo mi;
	unsigned char *body;
	size_t len;
	char err[256];
	BIO *b64, *mem;
	char *text, *pem;
	long n;

	(void)state;
	body = sign_by(&selfsigned, byod_xml, &len);
	mem = BIO_new(BIO_s_mem());
	b64 = BIO_push(BIO_new(BIO_f_base64()), mem);
	BIO_write(b64, body, (int)len);
	(void)BIO_flush(b64);
	n = BIO_get_mem_data(mem, &text);
	assert_true(n > 0);
	assert_int_equal(
	    eb_machineinfo_parse(&mi, text, (size_t)n, NULL, err, sizeof(err)),
	    0);
	assert_string_equal(mi.product, "iPhone17,2");
	eb_machineinfo_finish(&mi);
	pem = malloc((size_t)n + 64);
	assert_non_null(pem);
	sprintf(pem, "-----BEGIN PKCS7-----\n%.*s-----END PKCS7-----\n", (int)n,
	        text);
	assert_int_equal(
	    eb_machineinfo_parse(&mi, pem, strlen(pem), NULL, err, sizeof(err)),
	    0);
	assert_string_equal(mi.version, "22B83");
	eb_machineinfo_finish(&mi);
	free(pem);
	BIO_free_all(b64);
	free(body);
}

static void
test_binary_plist(void **state)
{
	struct eb_machineinfo mi;
	unsigned char *body;
	size_t len;
	char err[256];

	(void)state;
	body =
	    tp_cms_sign(&selfsigned, NULL, ipad_bin, sizeof(ipad_bin), 0, &len);
	assert_int_equal(
	    eb_machineinfo_parse(&mi, body, len, NULL, err, sizeof(err)), 0);
	assert_string_equal(mi.product, "iPad16,3");
	assert_string_equal(mi.model_family, "iPad");
	assert_null(mi.language);
	eb_machineinfo_finish(&mi);
	free(body);
}

/* Sign a MachineInfo made of these dict entries and expect a failure. */
static void
expect_bad_plist(const char *entries, const char *want)
{
	unsigned char *body;
	char xml[4096];
	size_t len;

	snprintf(xml, sizeof(xml), "%s%s%s", PLIST_HEAD, entries, PLIST_TAIL);
	body = sign_by(&selfsigned, xml, &len);
	expect_fail(body, len, NULL, want);
	free(body);
}

static void
test_bad_values(void **state)
{
	char entries[1024], longv[300];

	(void)state;
	expect_bad_plist("<key>LANGUAGE</key><string>en</string>",
	                 "no PRODUCT");
	expect_bad_plist("<key>PRODUCT</key><string></string>", "empty");
	expect_bad_plist("<key>PRODUCT</key><integer>17</integer>",
	                 "not a string");
	expect_bad_plist("<key>PRODUCT</key><string>iPhone17,2</string>"
	                 "<key>UDID</key><array/>",
	                 "UDID is not a string (array)");
	memset(longv, 'x', 257);
	longv[257] = '\0';
	snprintf(entries, sizeof(entries),
	         "<key>PRODUCT</key><string>iPhone17,2</string>"
	         "<key>LANGUAGE</key><string>%s</string>",
	         longv);
	expect_bad_plist(entries, "longer than 256");
	expect_bad_plist("<key>PRODUCT</key><string>iPhone&#10;17</string>",
	                 "control characters");
	expect_bad_plist("<key>PRODUCT</key><string>iPhone\x1b[31m</string>",
	                 "control characters");
	expect_bad_plist("<key>PRODUCT</key><string>iPhone\xc0\xaf</string>",
	                 "not UTF-8");
	/* the signed content is no plist at all */
	{
		unsigned char *body;
		size_t len;

		body = tp_cms_sign(&selfsigned, NULL, "PRODUCT=iPhone", 14, 0,
		                   &len);
		expect_fail(body, len, NULL, "not a plist");
		free(body);
		body = tp_cms_sign(&selfsigned, NULL, "<plist><array/></plist>",
		                   23, 0, &len);
		expect_fail(body, len, NULL, "not a dict (array)");
		free(body);
	}
	/* exactly 256 bytes and UTF-8 are fine */
	{
		struct eb_machineinfo mi;
		unsigned char *body;
		char xml[2048], err[256];
		size_t len;

		memset(longv, 'y', 256);
		longv[256] = '\0';
		snprintf(xml, sizeof(xml),
		         "%s<key>PRODUCT</key><string>iPhone17,2</string>"
		         "<key>LANGUAGE</key><string>%s</string>"
		         "<key>OS_VERSION</key><string>Z\xc3\xbcrich "
		         "\xe2\x82\xac</string>%s",
		         PLIST_HEAD, longv, PLIST_TAIL);
		body = sign_by(&selfsigned, xml, &len);
		assert_int_equal(eb_machineinfo_parse(&mi, body, len, NULL, err,
		                                      sizeof(err)),
		                 0);
		assert_int_equal(strlen(mi.language), 256);
		assert_string_equal(mi.os_version,
		                    "Z\xc3\xbcrich \xe2\x82\xac");
		eb_machineinfo_finish(&mi);
		free(body);
	}
}

static void
test_deep_nesting(void **state)
{
	struct eb_machineinfo mi;
	char xml[8192], err[256];
	size_t off;
	int i;

	(void)state;
	off = (size_t)snprintf(xml, sizeof(xml),
	                       "%s<key>PRODUCT</key><string>iPhone17,2</string>"
	                       "<key>X</key>",
	                       PLIST_HEAD);
	for (i = 0; i < 200; i++)
		off +=
		    (size_t)snprintf(xml + off, sizeof(xml) - off, "<array>");
	for (i = 0; i < 200; i++)
		off +=
		    (size_t)snprintf(xml + off, sizeof(xml) - off, "</array>");
	snprintf(xml + off, sizeof(xml) - off, "%s", PLIST_TAIL);
	assert_int_equal(
	    eb_machineinfo_parse_plist(&mi, xml, strlen(xml), err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "deeper"));
}

static void
test_family(void **state)
{
	static const char *const cases[][2] = {
	    {"iPhone17,2", "iPhone"},
	    {"iPhone1,1", "iPhone"},
	    {"iPad16,3", "iPad"},
	    {"Mac15,3", "Mac"},
	    {"MacBookPro18,1", "Mac"},
	    {"MacBookAir10,1", "Mac"},
	    {"iMac21,1", "Mac"},
	    {"Macmini9,1", "Mac"},
	    {"MacPro7,1", "Mac"},
	    {"VirtualMac2,1", "Mac"},
	    {"AppleTV14,1", "AppleTV"},
	    {"Watch7,1", "Watch"},
	    {"RealityDevice14,1", "RealityDevice"},
	    {"iPod9,1", NULL},
	    {"AudioAccessory5,1", NULL},
	    {"iphone17,2", NULL},
	    {"", NULL},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *f = eb_machineinfo_family(cases[i][0]);

		if (cases[i][1] == NULL)
			assert_null(f);
		else
			assert_string_equal(f, cases[i][1]);
	}
	assert_null(eb_machineinfo_family(NULL));
}

/* Every one of our allocations failing in turn: an error, never a crash
 * or a leak (LeakSanitizer checks the latter). */
static void
test_alloc_failures(void **state)
{
	struct eb_machineinfo mi;
	unsigned char *body;
	size_t len;
	char err[256];
	long n, total;
	int rc;

	(void)state;
	body = sign_by(&device, adde_xml, &len);
	eb_mem_fail_after(-1);
	for (n = 0;; n++) {
		eb_mem_fail_after(n);
		rc = eb_machineinfo_parse(&mi, body, len, NULL, err,
		                          sizeof(err));
		total = eb_mem_fail_after(-1);
		if (rc == 0) {
			assert_string_equal(mi.udid,
			                    "00008112-001A2C3E0E91401E");
			eb_machineinfo_finish(&mi);
			if (n >= total)
				break;
		}
		assert_true(n < 100);
	}
	free(body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_byod_body),
	    cmocka_unit_test(test_adde_body),
	    cmocka_unit_test(test_device_ca),
	    cmocka_unit_test(test_tampered),
	    cmocka_unit_test(test_detached_and_nocerts),
	    cmocka_unit_test(test_garbage_and_plain),
	    cmocka_unit_test(test_oversize_content),
	    cmocka_unit_test(test_wrapped),
	    cmocka_unit_test(test_binary_plist),
	    cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_deep_nesting),
	    cmocka_unit_test(test_family),
	    cmocka_unit_test(test_alloc_failures),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
