/*
 * Unit tests for src/apple/restrict.c: the tenant's device restrictions
 * judged on a MachineInfo (parsed from the plists devices send), the code
 * chosen (software update only for a device that says it can act on it,
 * on an OS that knows the answer), and the 403 JSON body.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "apple/machineinfo.h"
#include "apple/restrict.h"
#include "core/config.h"
#include "core/mem.h"

#define HEAD                                                                   \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist "                  \
	"version=\"1.0\"><dict>"
#define TAIL     "</dict></plist>"
#define KV(k, v) "<key>" k "</key><string>" v "</string>"

static void
parse(struct eb_machineinfo *mi, const char *xml)
{
	char err[256];

	if (eb_machineinfo_parse_plist(mi, xml, strlen(xml), err,
	                               sizeof(err)) != 0)
		fail_msg("%s", err);
}

static struct eb_tenant *
tenant(void)
{
	static struct eb_tenant t;

	memset(&t, 0, sizeof(t));
	t.id = "acme";
	t.restrictions.min_os_version[EB_OS_IOS] = "17.0";
	t.restrictions.min_os_version[EB_OS_MACOS] = "14.6";
	t.restrictions.families =
	    (1u << EB_FAMILY_IPHONE) | (1u << EB_FAMILY_MAC);
	return &t;
}

static void
judge(const char *xml, struct eb_restrict_verdict *v)
{
	struct eb_machineinfo mi;

	parse(&mi, xml);
	eb_restrict_device(tenant(), &mi, v);
	eb_machineinfo_finish(&mi);
}

static void
test_allowed(void **state)
{
	struct eb_restrict_verdict v;
	struct eb_tenant *t;
	struct eb_machineinfo mi;

	(void)state;
	judge(HEAD KV("PRODUCT", "iPhone17,2") KV("OS_VERSION", "18.1") TAIL,
	      &v);
	assert_true(v.allow);
	judge(HEAD KV("PRODUCT", "iPhone15,2") KV("OS_VERSION", "17.0") TAIL,
	      &v);
	assert_true(v.allow);
	judge(HEAD KV("PRODUCT", "Mac16,1") KV("OS_VERSION", "14.10") TAIL, &v);
	assert_true(v.allow);
	/* no restrictions at all: anything, even an unknown product */
	t = tenant();
	memset(&t->restrictions, 0, sizeof(t->restrictions));
	parse(&mi, HEAD KV("PRODUCT", "Toaster1,1") TAIL);
	eb_restrict_device(t, &mi, &v);
	assert_true(v.allow);
	eb_machineinfo_finish(&mi);
}

static void
test_old_os(void **state)
{
	struct eb_restrict_verdict v;
	char *body;
	size_t len;
	json_t *j;

	(void)state;
	judge(HEAD KV("PRODUCT", "iPhone14,2") KV("OS_VERSION", "16.7.10") TAIL,
	      &v);
	assert_false(v.allow);
	assert_string_equal(v.code, EB_RESTRICT_RESTRICTED);
	assert_string_equal(v.min_os, "17.0");
	assert_non_null(strstr(v.message, "iOS 16.7.10"));
	assert_non_null(strstr(v.message, "iOS 17.0 or later"));
	body = eb_restrict_body(&v, &len);
	assert_non_null(body);
	j = json_loadb(body, len, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "code")),
	                    EB_RESTRICT_RESTRICTED);
	assert_string_equal(json_string_value(json_object_get(j, "message")),
	                    v.message);
	assert_null(json_object_get(j, "details"));
	json_decref(j);
	eb_free(body);
	/* a Mac below 14.6, numerically (14.10 passed above) */
	judge(HEAD KV("PRODUCT", "Mac14,2") KV("OS_VERSION", "14.5") TAIL, &v);
	assert_false(v.allow);
	assert_non_null(strstr(v.reason, "macOS 14.5 is below 14.6"));
	/* no OS_VERSION: nothing shows it meets the minimum */
	judge(HEAD KV("PRODUCT", "iPhone17,2") TAIL, &v);
	assert_false(v.allow);
	assert_string_equal(v.code, EB_RESTRICT_RESTRICTED);
	assert_non_null(strstr(v.message, "did not report"));
}

static void
test_software_update_code(void **state)
{
	struct eb_restrict_verdict v;
	char *body;
	size_t len;
	json_t *j, *d;

	(void)state;
	/* a Setup Assistant device on macOS 14.x below the minimum */
	judge(HEAD KV("PRODUCT", "Mac14,2")
	          KV("OS_VERSION", "14.2") "<key>MDM_CAN_REQUEST_SOFTWARE_"
	                                   "UPDATE</key><true/>" TAIL,
	      &v);
	assert_false(v.allow);
	assert_string_equal(v.code, EB_RESTRICT_UPDATE_REQUIRED);
	body = eb_restrict_body(&v, &len);
	assert_non_null(body);
	j = json_loadb(body, len, 0, NULL);
	assert_non_null(j);
	d = json_object_get(j, "details");
	assert_string_equal(json_string_value(json_object_get(d, "OSVersion")),
	                    "14.6");
	json_decref(j);
	eb_free(body);
	/* iOS 16 cannot act on the answer, whatever it says */
	judge(HEAD KV("PRODUCT", "iPhone14,2")
	          KV("OS_VERSION", "16.7") "<key>MDM_CAN_REQUEST_SOFTWARE_"
	                                   "UPDATE</key><true/>" TAIL,
	      &v);
	assert_string_equal(v.code, EB_RESTRICT_RESTRICTED);
	/* the flag false */
	judge(HEAD KV("PRODUCT", "Mac14,2")
	          KV("OS_VERSION", "14.2") "<key>MDM_CAN_REQUEST_SOFTWARE_"
	                                   "UPDATE</key><false/>" TAIL,
	      &v);
	assert_string_equal(v.code, EB_RESTRICT_RESTRICTED);
}

static void
test_family(void **state)
{
	struct eb_restrict_verdict v;

	(void)state;
	judge(HEAD KV("PRODUCT", "iPad16,3") KV("OS_VERSION", "18.1") TAIL, &v);
	assert_false(v.allow);
	assert_string_equal(v.code, EB_RESTRICT_RESTRICTED);
	assert_non_null(strstr(v.message, "(iPad)"));
	judge(HEAD KV("PRODUCT", "RealityDevice14,1") KV("OS_VERSION", "2.0")
	          TAIL,
	      &v);
	assert_false(v.allow);
	/* an unknown product when families are listed */
	judge(HEAD KV("PRODUCT", "Toaster1,1") KV("OS_VERSION", "18.1") TAIL,
	      &v);
	assert_false(v.allow);
	assert_non_null(strstr(v.reason, "no known family"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_allowed),
	    cmocka_unit_test(test_old_os),
	    cmocka_unit_test(test_software_update_code),
	    cmocka_unit_test(test_family),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
