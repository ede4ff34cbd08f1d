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

/* A GetToken's TokenServiceType is read by both the quick look and the
 * full parse (a leading comment forces the latter); a non-string one is
 * not sane and refused. */
static void
test_gettoken(void **state)
{
	struct eb_proxy_msg m;
	const char *quick = PLIST_HEAD
	    "<key>MessageType</key><string>GetToken</string>"
	    "<key>TokenServiceType</key><string>com.apple.maid</string>"
	    "<key>EnrollmentID</key><string>E1</string>" PLIST_TAIL;
	const char *full =
	    "<!-- c -->" PLIST_HEAD
	    "<key>MessageType</key><string>GetToken</string>"
	    "<key>TokenServiceType</key><string>com.apple.watch.pairing"
	    "</string><key>UDID</key><string>U1</string>" PLIST_TAIL;
	const char *bad = PLIST_HEAD
	    "<key>MessageType</key><string>GetToken</string>"
	    "<key>TokenServiceType</key><integer>1</integer>" PLIST_TAIL;

	(void)state;
	assert_int_equal(parse("PUT", CT_CHECKIN, quick, &m), 0);
	assert_string_equal(m.message_type, "GetToken");
	assert_string_equal(m.token_service_type, "com.apple.maid");
	eb_proxy_msg_finish(&m);
	assert_int_equal(parse("PUT", CT_CHECKIN, full, &m), 0);
	assert_string_equal(m.token_service_type, "com.apple.watch.pairing");
	assert_string_equal(m.udid, "U1");
	eb_proxy_msg_finish(&m);
	assert_int_equal(parse("PUT", CT_CHECKIN, bad, &m), -1);
	assert_null(m.token_service_type);
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
test_no_body(void **state)
{
	struct eb_proxy_msg m;

	assert_int_equal(parse("GET", NULL, "", &m), 0);
	assert_int_equal(m.kind, EB_PROXY_MSG_NONE);
	eb_proxy_msg_finish(&m);
	/* a GET with the check-in type has nothing to parse */
	assert_int_equal(parse("GET", CT_CHECKIN, "", &m), 0);
	assert_int_equal(m.kind, EB_PROXY_MSG_NONE);
	eb_proxy_msg_finish(&m);
	assert_int_equal(parse("DELETE", "text/plain", "", &m), 0);
	assert_int_equal(m.kind, EB_PROXY_MSG_NONE);
	eb_proxy_msg_finish(&m);
}

/* Issue 11, finding 2: a body that cannot be checked is refused, whatever
 * it is labelled. */
static void
test_not_checkable(void **state)
{
	struct eb_proxy_msg m;

	assert_int_equal(parse("PUT", "application/json", "{\"a\":1}", &m), -1);
	assert_int_equal(parse("PUT", "application/xml", "<?xml junk", &m), -1);
	assert_int_equal(parse("POST", "text/plain", "hello mdm", &m), -1);
	assert_int_equal(parse("GET", NULL, "x", &m), -1);
	/* a plist that is not a dict */
	assert_int_equal(
	    parse("PUT", "text/plain",
	          "<?xml version=\"1.0\"?><plist><string>x</string></plist>",
	          &m),
	    -1);
	/* identifiers that are not sane strings */
	assert_int_equal(parse("PUT", NULL,
	                       PLIST_HEAD
	                       "<key>UDID</key><string>a b</string>" PLIST_TAIL,
	                       &m),
	                 -1);
	assert_int_equal(parse("PUT", NULL,
	                       PLIST_HEAD "<key>EnrollmentUserID</key>"
	                                  "<integer>7</integer>" PLIST_TAIL,
	                       &m),
	                 -1);
	assert_int_equal(parse("PUT", NULL,
	                       PLIST_HEAD
	                       "<key>EnrollmentID</key>"
	                       "<string>caf\xc3\xa9</string>" PLIST_TAIL,
	                       &m),
	                 -1);
}

/* What the proxy judged must be what the MDM reads: libplist keeps the
 * last of duplicate keys and the first of several root dicts, an MDM
 * might keep the others. */
static void
test_parser_differentials(void **state)
{
	struct eb_proxy_msg m;

	/* duplicate identifier keys (and a data block, so that the quick
	 * look leaves the body to the whole parse) */
	assert_int_equal(
	    parse("PUT", CT_CHECKIN,
	          PLIST_HEAD
	          "<key>MessageType</key><string>CheckOut</string>"
	          "<key>Token</key><data>\nAAAA\n</data>"
	          "<key>EnrollmentID</key><string>ALICE</string>"
	          "<key>EnrollmentID</key><string>MINE</string>" PLIST_TAIL,
	          &m),
	    -1);
	/* two root dicts */
	assert_int_equal(
	    parse("PUT", CT_CHECKIN,
	          "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict>"
	          "<key>MessageType</key><string>CheckOut</string>"
	          "<key>EnrollmentID</key><string>MINE</string></dict>"
	          "<dict><key>EnrollmentID</key><string>ALICE</string>"
	          "</dict></plist>",
	          &m),
	    -1);
	/* a DOCTYPE with an internal subset (entities) */
	assert_int_equal(
	    parse("PUT", CT_CHECKIN,
	          "<?xml version=\"1.0\"?><!DOCTYPE plist [<!ENTITY a \"b\">]>"
	          "<plist version=\"1.0\"><dict><key>MessageType</key>"
	          "<string>CheckOut</string></dict></plist>",
	          &m),
	    -1);
	/* keys inside comments, CDATA and nested dicts are not the root's */
	assert_int_equal(parse("PUT", CT_COMMAND,
	                       PLIST_HEAD
	                       "<!-- <key>UDID</key> -->"
	                       "<key>UDID</key><string>D1</string>"
	                       "<key>Q</key><dict><key>UDID</key>"
	                       "<string>D1</string></dict>"
	                       "<key>S</key><string><![CDATA[<key>x</key>]]>"
	                       "</string>"
	                       "<key>A</key><array><dict><key>UDID</key>"
	                       "<string>D1</string></dict><dict/></array>"
	                       "<key>E</key><dict/>" PLIST_TAIL,
	                       &m),
	                 0);
	assert_string_equal(m.udid, "D1");
	eb_proxy_msg_finish(&m);
}

/* The body is judged by what it is: a check-in hidden behind a comment,
 * another label, a GET, or a Content-Type with a trailing comma is still
 * parsed and its identifiers taken. */
static void
test_any_label(void **state)
{
	static const char *const cts[] = {"text/plain", NULL, CT_CHECKIN ",",
	                                  "application/x-apple-aspen-mdm,",
	                                  "application/octet-stream"};
	const char *body =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<!-- hello -->\n<plist version=\"1.0\"><dict>"
	    "<key>MessageType</key><string>CheckOut</string>"
	    "<key>EnrollmentID</key><string>ALICE</string>" PLIST_TAIL;
	struct eb_proxy_msg m;
	size_t i;

	for (i = 0; i < sizeof(cts) / sizeof(cts[0]); i++) {
		assert_int_equal(parse("PUT", cts[i], body, &m), 0);
		assert_int_equal(m.kind, EB_PROXY_MSG_CHECKIN);
		assert_string_equal(m.enrollment_id, "ALICE");
		eb_proxy_msg_finish(&m);
		assert_int_equal(parse("GET", cts[i], body, &m), 0);
		assert_string_equal(m.message_type, "CheckOut");
		eb_proxy_msg_finish(&m);
	}
	/* a dict without MessageType under any other label: a command
	 * result, its identifiers taken */
	assert_int_equal(parse("POST", "text/plain",
	                       PLIST_HEAD
	                       "<key>UDID</key><string>U-1</string>"
	                       "<key>UserID</key><string>u</string>" PLIST_TAIL,
	                       &m),
	                 0);
	assert_int_equal(m.kind, EB_PROXY_MSG_COMMAND);
	assert_string_equal(m.udid, "U-1");
	assert_string_equal(m.user_id, "u");
	eb_proxy_msg_finish(&m);
}

static void
mk_msg(struct eb_proxy_msg *m, const char *type, const char *udid,
       const char *eid, const char *euid, const char *uid)
{
	memset(m, 0, sizeof(*m));
	m->kind = type ? EB_PROXY_MSG_CHECKIN : EB_PROXY_MSG_COMMAND;
	m->message_type = (char *)type;
	m->udid = (char *)udid;
	m->enrollment_id = (char *)eid;
	m->enrollment_user_id = (char *)euid;
	m->user_id = (char *)uid;
}

static void
test_ids_check(void **state)
{
	struct eb_proxy_msg m;
	const char *why;

	/* user enrollment bound to E1 */
	mk_msg(&m, NULL, NULL, "E1", "U1", NULL);
	assert_int_equal(eb_proxy_ids_check(&m, "EnrollmentID", "E1", &why),
	                 EB_PROXY_IDS_OK);
	mk_msg(&m, NULL, NULL, "e1", NULL, NULL); /* ASCII case folded */
	assert_int_equal(eb_proxy_ids_check(&m, "EnrollmentID", "E1", &why),
	                 EB_PROXY_IDS_OK);
	mk_msg(&m, NULL, NULL, "E2", NULL, NULL);
	assert_int_equal(eb_proxy_ids_check(&m, "EnrollmentID", "E1", &why),
	                 EB_PROXY_IDS_OTHER);
	/* its own EnrollmentID next to another enrollment's UDID */
	mk_msg(&m, "TokenUpdate", "ALICE-UDID", "E1", NULL, NULL);
	assert_int_equal(eb_proxy_ids_check(&m, "EnrollmentID", "E1", &why),
	                 EB_PROXY_IDS_OTHER);
	/* EnrollmentUserID without its EnrollmentID */
	mk_msg(&m, NULL, NULL, NULL, "U1", NULL);
	assert_int_equal(eb_proxy_ids_check(&m, "EnrollmentID", "E1", &why),
	                 EB_PROXY_IDS_OTHER);
	mk_msg(&m, NULL, NULL, NULL, NULL, NULL);
	assert_int_equal(eb_proxy_ids_check(&m, "EnrollmentID", "E1", &why),
	                 EB_PROXY_IDS_NONE);

	/* ADDE bound to a UDID */
	mk_msg(&m, NULL, "D1", NULL, NULL, "user-guid");
	assert_int_equal(eb_proxy_ids_check(&m, "UDID", "D1", &why),
	                 EB_PROXY_IDS_OK);
	mk_msg(&m, NULL, "D1", "E-ALICE", NULL, NULL);
	assert_int_equal(eb_proxy_ids_check(&m, "UDID", "D1", &why),
	                 EB_PROXY_IDS_OTHER);
	mk_msg(&m, NULL, "D1", NULL, "U1", NULL);
	assert_int_equal(eb_proxy_ids_check(&m, "UDID", "D1", &why),
	                 EB_PROXY_IDS_OTHER);
	mk_msg(&m, NULL, "D2", NULL, NULL, NULL);
	assert_int_equal(eb_proxy_ids_check(&m, "UDID", "D1", &why),
	                 EB_PROXY_IDS_OTHER);
	assert_int_equal(eb_proxy_ids_check(&m, "UDID", NULL, &why),
	                 EB_PROXY_IDS_OTHER);

	assert_string_equal(eb_proxy_binding_kind("ADDE"), "UDID");
	assert_string_equal(eb_proxy_binding_kind("BYOD"), "EnrollmentID");
	assert_string_equal(eb_proxy_binding_kind(NULL), "EnrollmentID");
}

/* Issue 11, finding 1: until bound, a grant sends only its first
 * Authenticate (or a Mac user channel's first TokenUpdate). */
static void
test_may_bind(void **state)
{
	struct eb_proxy_msg m;

	mk_msg(&m, "Authenticate", NULL, "E1", NULL, NULL);
	assert_true(eb_proxy_may_bind(&m));
	mk_msg(&m, "TokenUpdate", NULL, "E1", "U1", NULL);
	assert_true(eb_proxy_may_bind(&m));
	mk_msg(&m, "TokenUpdate", "D1", NULL, NULL, "user-guid");
	assert_true(eb_proxy_may_bind(&m));
	mk_msg(&m, "TokenUpdate", "D1", NULL, NULL, NULL);
	assert_false(eb_proxy_may_bind(&m));
	mk_msg(&m, "GetBootstrapToken", "D1", NULL, NULL, NULL);
	assert_false(eb_proxy_may_bind(&m));
	mk_msg(&m, "CheckOut", NULL, "E1", NULL, NULL);
	assert_false(eb_proxy_may_bind(&m));
	mk_msg(&m, NULL, NULL, "E1", NULL, NULL); /* a command result */
	assert_false(eb_proxy_may_bind(&m));
	memset(&m, 0, sizeof(m)); /* no body */
	assert_false(eb_proxy_may_bind(&m));
}

/* Issue 11, finding 3: what the bearer-less device channel may carry. */
static void
test_device_channel(void **state)
{
	static const char *const paths[] = {"mdm/checkin?tenant=acme",
	                                    "mdm/server"};
	struct eb_proxy_msg ci, cmd, none;
	const char *why;

	mk_msg(&ci, "TokenUpdate", "D1", NULL, NULL, NULL);
	mk_msg(&cmd, NULL, "D1", NULL, NULL, NULL);
	mk_msg(&none, "CheckOut", NULL, NULL, NULL, NULL);
	assert_true(eb_proxy_device_channel_ok("PUT", CT_CHECKIN, "mdm/checkin",
	                                       "tenant=acme", &ci, paths, 2,
	                                       &why));
	assert_true(eb_proxy_device_channel_ok("PUT", CT_COMMAND, "mdm/server",
	                                       NULL, &cmd, paths, 2, &why));
	assert_true(eb_proxy_device_channel_ok("PUT", CT_COMMAND, "mdm/server",
	                                       "", &cmd, paths, 2, &why));
	/* other methods, content types, bodies, paths, queries */
	assert_false(eb_proxy_device_channel_ok("POST", CT_CHECKIN,
	                                        "mdm/checkin", "tenant=acme",
	                                        &ci, paths, 2, &why));
	assert_false(eb_proxy_device_channel_ok(
	    "DELETE", CT_COMMAND, "mdm/server", NULL, &cmd, paths, 2, &why));
	assert_false(eb_proxy_device_channel_ok(
	    "PUT", "text/plain", "mdm/server", NULL, &cmd, paths, 2, &why));
	assert_false(eb_proxy_device_channel_ok(
	    "PUT", CT_COMMAND ",", "mdm/server", NULL, &cmd, paths, 2, &why));
	assert_false(eb_proxy_device_channel_ok("PUT", CT_COMMAND, "mdm/server",
	                                        NULL, &ci, paths, 2, &why));
	assert_false(eb_proxy_device_channel_ok("PUT", CT_CHECKIN,
	                                        "mdm/checkin", "tenant=acme",
	                                        &cmd, paths, 2, &why));
	assert_false(eb_proxy_device_channel_ok("PUT", CT_CHECKIN,
	                                        "mdm/checkin", "tenant=acme",
	                                        &none, paths, 2, &why));
	assert_false(eb_proxy_device_channel_ok(
	    "PUT", CT_CHECKIN, "mdm/checkin", NULL, &ci, paths, 2, &why));
	assert_false(eb_proxy_device_channel_ok(
	    "PUT", CT_CHECKIN, "mdm/checkin", "tenant=x", &ci, paths, 2, &why));
	assert_false(eb_proxy_device_channel_ok(
	    "PUT", CT_COMMAND, "mdm/server", "admin=1", &cmd, paths, 2, &why));
	assert_false(eb_proxy_device_channel_ok(
	    "PUT", CT_COMMAND, "admin/users", NULL, &cmd, paths, 2, &why));
	assert_false(eb_proxy_device_channel_ok("PUT", CT_COMMAND, "mdm/serve",
	                                        NULL, &cmd, paths, 2, &why));
	assert_false(eb_proxy_device_channel_ok(
	    "PUT", CT_COMMAND, "mdm/server/x", NULL, &cmd, paths, 2, &why));
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
	    cmocka_unit_test(test_no_body),
	    cmocka_unit_test(test_not_checkable),
	    cmocka_unit_test(test_any_label),
	    cmocka_unit_test(test_parser_differentials),
	    cmocka_unit_test(test_ids_check),
	    cmocka_unit_test(test_may_bind),
	    cmocka_unit_test(test_device_channel),
	    cmocka_unit_test(test_gettoken),
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_headers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
