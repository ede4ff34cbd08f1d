/*
 * Unit tests for the MDM proxy's pure parts (src/handle/proxy*.c): how a
 * body is classified and what is taken from it, which paths may be
 * forwarded and how the upstream URL is built, and which headers cross in
 * each direction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/mem.h"
#include "handle/proxy_int.h"

#define CT_CHECKIN "application/x-apple-aspen-mdm-checkin"
#define CT_COMMAND "application/x-apple-aspen-mdm"

#define PLIST_HEAD                                                             \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                         \
	"<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "              \
	"\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"                \
	"<plist version=\"1.0\"><dict>"
#define PLIST_TAIL "</dict></plist>\n"

static int
parse(const char *method, const char *ct, const char *body,
      struct eb_proxy_msg *m)
{
	char err[160];

	return eb_proxy_msg_parse(method, ct, body, strlen(body), 1 << 20, m,
	                          err, sizeof(err));
}

static void
test_checkin_byod(void **state)
{
	struct eb_proxy_msg m;
	const char *body = PLIST_HEAD
	    "<key>MessageType</key><string>Authenticate</string>"
	    "<key>EnrollmentID</key><string>E1-abc</string>"
	    "<key>EnrollmentUserID</key><string>U1</string>"
	    "<key>Topic</key><string>com.apple.mgmt.x</string>" PLIST_TAIL;

	assert_int_equal(parse("PUT", CT_CHECKIN, body, &m), 0);
	assert_int_equal(m.kind, EB_PROXY_MSG_CHECKIN);
	assert_string_equal(m.message_type, "Authenticate");
	assert_string_equal(m.enrollment_id, "E1-abc");
	assert_string_equal(m.enrollment_user_id, "U1");
	assert_null(m.udid);
	eb_proxy_msg_finish(&m);

	/* parameters on the media type, case-insensitive */
	assert_int_equal(
	    parse("PUT", "Application/X-Apple-Aspen-MDM-Checkin; charset=x",
	          body, &m),
	    0);
	assert_int_equal(m.kind, EB_PROXY_MSG_CHECKIN);
	eb_proxy_msg_finish(&m);

	/* any plist body with MessageType is a check-in */
	assert_int_equal(parse("PUT", "text/plain", body, &m), 0);
	assert_int_equal(m.kind, EB_PROXY_MSG_CHECKIN);
	eb_proxy_msg_finish(&m);
	assert_int_equal(parse("POST", NULL, body, &m), 0);
	assert_int_equal(m.kind, EB_PROXY_MSG_CHECKIN);
	eb_proxy_msg_finish(&m);
}

static void
test_command(void **state)
{
	struct eb_proxy_msg m;
	const char *body =
	    PLIST_HEAD "<key>UDID</key><string>0000-UDID</string>"
	               "<key>Status</key><string>Idle</string>" PLIST_TAIL;

	assert_int_equal(parse("PUT", CT_COMMAND, body, &m), 0);
	assert_int_equal(m.kind, EB_PROXY_MSG_COMMAND);
	assert_null(m.message_type);
	assert_string_equal(m.udid, "0000-UDID");
	eb_proxy_msg_finish(&m);
}

static void
test_malformed(void **state)
{
	struct eb_proxy_msg m;

	/* a check-in content type promises a plist */
	assert_int_equal(parse("PUT", CT_CHECKIN, "<plist><dict><key>", &m),
	                 -1);
	assert_int_equal(parse("PUT", CT_CHECKIN, "", &m), -1);
	assert_int_equal(parse("PUT", CT_COMMAND, "not a plist", &m), -1);
	/* a dict without MessageType is no check-in */
	assert_int_equal(parse("PUT", CT_CHECKIN,
	                       PLIST_HEAD
	                       "<key>UDID</key><string>x</string>" PLIST_TAIL,
	                       &m),
	                 -1);
	/* not a dict */
	assert_int_equal(parse("PUT", CT_CHECKIN,
	                       "<?xml version=\"1.0\"?><plist><array/></plist>",
	                       &m),
	                 -1);
	/* identifiers of the wrong type, or absurd */
	assert_int_equal(
	    parse("PUT", CT_CHECKIN,
	          PLIST_HEAD
	          "<key>MessageType</key><integer>1</integer>" PLIST_TAIL,
	          &m),
	    -1);
	assert_int_equal(
	    parse("PUT", CT_CHECKIN,
	          PLIST_HEAD
	          "<key>MessageType</key><string>TokenUpdate</string>"
	          "<key>UDID</key><string></string>" PLIST_TAIL,
	          &m),
	    -1);
}

static void
test_not_a_message(void **state)
{
	struct eb_proxy_msg m;

	/* GET without a body; JSON; bytes that only look like XML */
	assert_int_equal(parse("GET", NULL, "", &m), 0);
	assert_int_equal(m.kind, EB_PROXY_MSG_NONE);
	eb_proxy_msg_finish(&m);
	assert_int_equal(parse("PUT", "application/json", "{\"a\":1}", &m), 0);
	assert_int_equal(m.kind, EB_PROXY_MSG_NONE);
	eb_proxy_msg_finish(&m);
	assert_int_equal(parse("PUT", "application/xml", "<?xml junk", &m), 0);
	assert_int_equal(m.kind, EB_PROXY_MSG_NONE);
	eb_proxy_msg_finish(&m);
	/* a GET with the check-in type has nothing to parse */
	assert_int_equal(parse("GET", CT_CHECKIN, "", &m), 0);
	assert_int_equal(m.kind, EB_PROXY_MSG_NONE);
	eb_proxy_msg_finish(&m);
}

static void
test_paths(void **state)
{
	char *u;

	assert_true(eb_proxy_rest_ok("checkin"));
	assert_true(eb_proxy_rest_ok("mdm/connect"));
	assert_true(eb_proxy_rest_ok("a/b.c/..d/"));
	assert_false(eb_proxy_rest_ok(""));
	assert_false(eb_proxy_rest_ok("/x"));
	assert_false(eb_proxy_rest_ok(".."));
	assert_false(eb_proxy_rest_ok("a/../b"));
	assert_false(eb_proxy_rest_ok("a/./b"));
	assert_false(eb_proxy_rest_ok("a/.."));
	assert_false(eb_proxy_rest_ok("a\r\nb"));

	u = eb_proxy_upstream_url("http://mdm:8080/api/", "checkin", "");
	assert_string_equal(u, "http://mdm:8080/api/checkin");
	eb_free(u);
	u = eb_proxy_upstream_url("http://mdm", "a b/c%d", "x=1&y=%20");
	assert_string_equal(u, "http://mdm/a%20b/c%25d?x=1&y=%20");
	eb_free(u);
	/* a query byte no URL may hold */
	assert_null(eb_proxy_upstream_url("http://mdm", "a", "x=\"1\""));
	assert_null(eb_proxy_upstream_url("http://mdm", "a", "x=\x01"));
}

static void
test_headers(void **state)
{
	/* requests */
	assert_true(eb_proxy_request_header_ok("Authorization", NULL));
	assert_true(eb_proxy_request_header_ok("Content-Type", NULL));
	assert_true(eb_proxy_request_header_ok("Mdm-Signature", NULL));
	assert_true(eb_proxy_request_header_ok("User-Agent", NULL));
	assert_false(eb_proxy_request_header_ok("connection", NULL));
	assert_false(eb_proxy_request_header_ok("Keep-Alive", NULL));
	assert_false(eb_proxy_request_header_ok("Proxy-Authorization", NULL));
	assert_false(eb_proxy_request_header_ok("TE", NULL));
	assert_false(eb_proxy_request_header_ok("Trailer", NULL));
	assert_false(eb_proxy_request_header_ok("Transfer-Encoding", NULL));
	assert_false(eb_proxy_request_header_ok("Upgrade", NULL));
	assert_false(eb_proxy_request_header_ok("Host", NULL));
	assert_false(eb_proxy_request_header_ok("Content-Length", NULL));
	assert_false(eb_proxy_request_header_ok("x-managed-apple-id", NULL));
	assert_false(eb_proxy_request_header_ok("X-Enrollment-Mode", NULL));
	assert_false(eb_proxy_request_header_ok("X-Grant-ID", NULL));
	assert_false(
	    eb_proxy_request_header_ok("X-Enrollbridge-Authenticated", NULL));
	assert_false(eb_proxy_request_header_ok("X-Forwarded-For", NULL));
	assert_false(eb_proxy_request_header_ok("Forwarded", NULL));
	/* named by Connection */
	assert_false(eb_proxy_request_header_ok("X-Secret", "close, x-secret"));
	assert_true(eb_proxy_request_header_ok("X-Secretive", "x-secret"));

	/* responses */
	assert_true(eb_proxy_response_header_ok("Set-Cookie", NULL));
	assert_true(eb_proxy_response_header_ok("X-Mdm", NULL));
	assert_false(eb_proxy_response_header_ok("Transfer-Encoding", NULL));
	assert_false(eb_proxy_response_header_ok("Connection", NULL));
	assert_false(eb_proxy_response_header_ok("Content-Length", NULL));
	assert_false(eb_proxy_response_header_ok("Date", NULL));
	assert_false(eb_proxy_response_header_ok("X-Hop", "X-Hop"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_checkin_byod),
	    cmocka_unit_test(test_command),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_not_a_message),
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_headers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
