/*
 * Unit tests of the plist wrapper's quick look (eb_plist_quick_dict,
 * src/apple/plist.c), which the MDM proxy uses on every check-in instead
 * of building a libplist tree. Its one promise: when it answers 1, the
 * full parse (eb_plist_parse, i.e. libplist) accepts the same bytes with
 * the same limits as a dict, and the wanted strings are the ones libplist
 * finds. So it is checked against libplist itself: on the forms devices
 * send, on constructs it must leave to libplist, and on many generated
 * and mutated documents, valid or not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apple/plist.h"

#define NKEYS 4
static const char *const wanted[NKEYS] = {"MessageType", "UDID", "EnrollmentID",
                                          "EnrollmentUserID"};

#define HEAD                                                                   \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                         \
	"<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "              \
	"\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"                \
	"<plist version=\"1.0\">\n"

/*
 * The promise, for len bytes at d: when the quick look answers 1, the full
 * parse gives a dict holding the same wanted strings (and none it did not
 * report). Returns the quick look's answer.
 */
static int
check_promise(const char *d, size_t len, unsigned max_depth)
{
	struct eb_plist_str v[NKEYS];
	struct eb_plist *root;
	char err[200];
	int q, i;

	q = eb_plist_quick_dict(d, len, 1 << 20, max_depth, wanted, v, NKEYS);
	root = eb_plist_parse(d, len, 1 << 20, max_depth, err, sizeof(err));
	if (q != 1) {
		assert_int_equal(q, 0);
		for (i = 0; i < NKEYS; i++)
			assert_null(v[i].s);
		eb_plist_free(root);
		return q;
	}
	if (root == NULL || eb_plist_type(root) != EB_PLIST_DICT)
		fail_msg("quick look accepted what libplist refuses (%s): "
		         "%.*s",
		         root == NULL ? err : "not a dict", (int)len, d);
	for (i = 0; i < NKEYS; i++) {
		struct eb_plist *n = eb_plist_dict_get(root, wanted[i]);
		const char *s;
		size_t slen = 0;

		if (v[i].s == NULL) {
			if (n != NULL)
				fail_msg("%s present, quick look missed it: "
				         "%.*s",
				         wanted[i], (int)len, d);
			continue;
		}
		assert_true(v[i].s >= d && v[i].s + v[i].len <= d + len);
		s = eb_plist_string(n, &slen);
		if (s == NULL || slen != v[i].len ||
		    memcmp(s, v[i].s, slen) != 0)
			fail_msg("%s differs from libplist's: %.*s", wanted[i],
			         (int)len, d);
	}
	eb_plist_free(root);
	return q;
}

static int
promise(const char *d)
{
	return check_promise(d, strlen(d), 16);
}

/* The forms check-ins come in: the quick look answers, as libplist. */
static void
test_quick_devices(void **state)
{
	struct eb_plist_str v[NKEYS];
	const char *tu =
	    HEAD "<dict>\n"
	         "\t<key>MessageType</key>\n\t<string>TokenUpdate</string>\n"
	         "\t<key>Topic</key>\n\t<string>com.apple.mgmt.External.x"
	         "</string>\n"
	         "\t<key>EnrollmentID</key>\n\t<string>4B0B3C8E-0D2F</string>\n"
	         "\t<key>EnrollmentUserID</key>\n\t<string>F1E2D3C4</string>\n"
	         "\t<key>PushMagic</key>\n\t<string>5E0D6F7A 1B2C</string>\n"
	         "\t<key>Token</key>\n\t<data>\n\tc29tZSBwdXNoIHRva2Vu\n"
	         "\tYnl0ZXM=\n\t</data>\n"
	         "\t<key>UnlockToken</key>\n\t<data></data>\n"
	         "\t<key>AwaitingConfiguration</key>\n\t<false/>\n"
	         "\t<key>NotOnConsole</key>\n\t<true/>\n"
	         "\t<key>UserID</key>\n\t<integer>-501</integer>\n"
	         "\t<key>Nested</key>\n\t<dict><key>A</key><array>"
	         "<string>x</string><dict/><array/></array></dict>\n"
	         "</dict>\n</plist>\n";

	(void)state;
	assert_int_equal(promise(tu), 1);
	assert_int_equal(
	    eb_plist_quick_dict(tu, strlen(tu), 0, 0, wanted, v, NKEYS), 1);
	assert_int_equal(v[0].len, strlen("TokenUpdate"));
	assert_memory_equal(v[0].s, "TokenUpdate", v[0].len);
	assert_null(v[1].s);
	assert_memory_equal(v[2].s, "4B0B3C8E-0D2F", v[2].len);
	assert_memory_equal(v[3].s, "F1E2D3C4", v[3].len);

	assert_int_equal(
	    promise("<plist><dict><key>MessageType</key><string>Authenticate"
	            "</string><key>UDID</key><string>00008110-000A</string>"
	            "</dict></plist>"),
	    1);
	assert_int_equal(promise("<plist><dict></dict></plist>"), 1);
	assert_int_equal(promise(" \n<?xml version=\"1.0\"?>\n<plist>"
	                         "<dict></dict></plist>\n\n"),
	                 1);
}

/* What it leaves to libplist, valid or not. */
static void
test_quick_unsure(void **state)
{
#define D(x) "<plist><dict>" x "</dict></plist>"
	static const char *const unsure[] = {
	    /* not for the quick look at all */
	    "",
	    "not a plist",
	    "bplist00",
	    "<plist><array/></plist>",
	    "<plist><dict/></plist>",
	    "<plist><string>x</string></plist>",
	    "<plist version=\"2.0\"><dict></dict></plist>",
	    "<plist><dict></dict></plist>x",
	    "<plist><dict></dict></plist><plist>",
	    "<plist><dict></dict>",
	    "<plist><dict>",
	    "<plist><dict></dict><dict></dict></plist>",
	    "<!-- c --><plist><dict></dict></plist>",
	    "<!DOCTYPE plist [<!ENTITY x \"y\">]><plist><dict></dict></plist>",
	    "<?xml?><plist><dict></dict></plist>",
	    "<?xml version=\"1.0\"><plist><dict></dict></plist>",
	    "\xef\xbb\xbf<plist><dict></dict></plist>",
	    /* wanted keys: anything but a plain string */
	    D("<key>MessageType</key><string></string>"),
	    D("<key>MessageType</key><string/>"),
	    D("<key>MessageType</key><string>a b</string>"),
	    D("<key>MessageType</key><string>a\nb</string>"),
	    D("<key>MessageType</key><string>a&amp;b</string>"),
	    D("<key>MessageType</key><string>\xc3\xa9</string>"),
	    D("<key>MessageType</key><integer>5</integer>"),
	    D("<key>UDID</key><data>QQ==</data>"),
	    D("<key>UDID</key><dict></dict>"),
	    D("<key>UDID</key><true/>"),
	    D("<key>Message&#84;ype</key><string>x</string>"),
	    /* constructs it does not read */
	    D("<key>a</key><string>x</string><key>a</key><string>y</string>"),
	    D("<key>a</key>"),
	    D("<key></key><string>x</string>"),
	    D("<string>x</string>"),
	    D("<key>a</key><key>b</key>"),
	    D("<key>a</key><string>x</string>junk"),
	    D("<key>a</key><string>a&b</string>"),
	    D("<key>a</key><string>a>b</string>"),
	    D("<key>a</key><string><![CDATA[x]]></string>"),
	    D("<key>a</key><string>x<!-- c --></string>"),
	    D("<key>a</key><string >x</string>"),
	    D("<key>a</key><data/>"),
	    D("<key>a</key><data>QQ</data>"),
	    D("<key>a</key><data>QQ=A</data>"),
	    D("<key>a</key><data>Q!Q=</data>"),
	    D("<key>a</key><data>QQ===</data>"),
	    D("<key>a</key><integer></integer>"),
	    D("<key>a</key><integer>1.5</integer>"),
	    D("<key>a</key><integer> 1</integer>"),
	    D("<key>a</key><integer>1234567890123456789</integer>"),
	    D("<key>a</key><real>1.5</real>"),
	    D("<key>a</key><date>2024-01-01T00:00:00Z</date>"),
	    D("<key>a</key><true></true>"),
	    D("<key>a</key><true />"),
	    D("<key>a</key><string>\x01</string>"),
	    D("<key>a</key><string>\x7f</string>"),
	    D("<key>a</key><array><key>b</key></array>"),
	    D("<key>a</key><dict><key>b</key></dict>"),
	    D("<key>a</key><array></dict>"),
	    D("<key>a</key><string>x</string></array>"),
	    D("<key>a</key><string>x</String>"),
	};
	struct eb_plist_str v[NKEYS];
	char nul[] = D("<key>a</key><string>x\0y</string>");
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(unsure) / sizeof(unsure[0]); i++)
		if (promise(unsure[i]) != 0)
			fail_msg("quick look should be unsure of: %s",
			         unsure[i]);
	assert_int_equal(check_promise(nul, sizeof(nul) - 1, 16), 0);
	/* limits: bytes, depth (the root dict is level 1), wanted keys */
	assert_int_equal(
	    eb_plist_quick_dict(D(""), strlen(D("")), 10, 16, wanted, v, NKEYS),
	    0);
	assert_int_equal(
	    check_promise(D("<key>a</key><array><array/></array>"),
	                  strlen(D("<key>a</key><array><array/></array>")), 3),
	    1);
	assert_int_equal(
	    check_promise(D("<key>a</key><array><array/></array>"),
	                  strlen(D("<key>a</key><array><array/></array>")), 2),
	    0);
	assert_int_equal(check_promise(D("<key>a</key><dict></dict>"),
	                               strlen(D("<key>a</key><dict></dict>")),
	                               1),
	                 0);
	assert_int_equal(check_promise(D("<key>a</key><true/>"),
	                               strlen(D("<key>a</key><true/>")), 1),
	                 1);
	assert_int_equal(
	    eb_plist_quick_dict(D(""), strlen(D("")), 0, 0, NULL, NULL, 0), 1);
	/* it recurses: no deeper limit than 64 (libplist's turn then) */
	assert_int_equal(
	    eb_plist_quick_dict(D(""), strlen(D("")), 0, 64, NULL, NULL, 0), 1);
	assert_int_equal(
	    eb_plist_quick_dict(D(""), strlen(D("")), 0, 65, NULL, NULL, 0), 0);
#undef D
}

/* ---- generated documents ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static unsigned
rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

struct doc {
	char b[8192];
	size_t n;
};

static void
put(struct doc *d, const char *s)
{
	size_t l = strlen(s);

	if (d->n + l < sizeof(d->b)) {
		memcpy(d->b + d->n, s, l);
		d->n += l;
	}
}

static void
putc_(struct doc *d, char c)
{
	if (d->n + 1 < sizeof(d->b))
		d->b[d->n++] = c;
}

static void
blanks(struct doc *d)
{
	static const char *const ws[] = {"",   "",       "",  "\n",
	                                 "\t", "\n\t\t", " ", "\r\n"};

	put(d, ws[rnd(8)]);
}

/* Mostly plain text, now and then something the quick look must refuse. */
static void
text(struct doc *d, int plain)
{
	static const char *const odd[] = {" ",
	                                  "\t",
	                                  "\n",
	                                  "&amp;",
	                                  "&lt;",
	                                  "&#65;",
	                                  "&",
	                                  ">",
	                                  "\xc3\xa9",
	                                  "\x01",
	                                  "=",
	                                  "?",
	                                  "[",
	                                  "]",
	                                  "\"",
	                                  "'",
	                                  "<![CDATA[z]]>",
	                                  "/",
	                                  "\x7f"};
	unsigned i, n = plain ? 1 + rnd(12) : rnd(14);

	for (i = 0; i < n; i++) {
		if (rnd(12) == 0)
			put(d, odd[rnd(sizeof(odd) / sizeof(odd[0]))]);
		else
			putc_(d, "abcXYZ019-._:"[rnd(13)]);
	}
}

static void
base64(struct doc *d)
{
	static const char *const b64[] = {"QQ==", "QUI=", "QUJD", "c29t",
	                                  "ZSBw", "+/+/", "AAAA"};
	unsigned i, n = rnd(5);

	for (i = 0; i < n; i++) {
		put(d, b64[rnd(7)]);
		if (rnd(4) == 0)
			blanks(d);
	}
	if (rnd(10) == 0)
		put(d,
		    (const char *const[]){"=", "A", "!", "QQ", "==="}[rnd(5)]);
}

static void value(struct doc *d, unsigned depth);

static void
key(struct doc *d)
{
	static const char *const keys[] = {
	    "MessageType", "UDID",  "EnrollmentID", "EnrollmentUserID",
	    "Topic",       "Token", "PushMagic",    "a",
	    "b",           ""};

	put(d, "<key>");
	if (rnd(8) == 0)
		text(d, 0);
	else
		put(d, keys[rnd(10)]);
	put(d, "</key>");
}

static void
dict(struct doc *d, unsigned depth)
{
	unsigned i, n = rnd(depth == 0 ? 7 : 4);

	put(d, "<dict>");
	for (i = 0; i < n; i++) {
		blanks(d);
		key(d);
		blanks(d);
		value(d, depth + 1);
	}
	blanks(d);
	put(d, "</dict>");
}

static void
value(struct doc *d, unsigned depth)
{
	unsigned i, n;

	switch (rnd(depth > 4 ? 9 : 12)) {
	case 0:
	case 1:
	case 2:
		put(d, "<string>");
		text(d, rnd(3) != 0);
		put(d, "</string>");
		break;
	case 3:
		put(d, "<data>");
		base64(d);
		put(d, "</data>");
		break;
	case 4:
		put(d, "<integer>");
		if (rnd(3) == 0)
			putc_(d, '-');
		n = rnd(20);
		for (i = 0; i < n; i++)
			putc_(d, (char)('0' + rnd(10)));
		put(d, "</integer>");
		break;
	case 5:
		put(d, rnd(2) ? "<true/>" : "<false/>");
		break;
	case 6:
		put(d, (const char *const[]){"<dict/>", "<array/>", "<string/>",
		                             "<real>1.5</real>"}[rnd(4)]);
		break;
	case 7:
	case 8:
		put(d, "<string>");
		text(d, 1);
		put(d, "</string>");
		break;
	case 9:
	case 10:
		dict(d, depth);
		break;
	default:
		put(d, "<array>");
		n = rnd(4);
		for (i = 0; i < n; i++) {
			blanks(d);
			value(d, depth + 1);
		}
		blanks(d);
		put(d, "</array>");
	}
}

/* A declaration's body: mostly attributes, now and then odd bytes. */
static void
decl_body(struct doc *d)
{
	static const char *const odd[] = {"\"", "'", "?",  ">",  "[", "]",
	                                  "<",  "&", "\t", "\n", "=", " "};
	unsigned i, n = rnd(6);

	for (i = 0; i < n; i++) {
		if (rnd(4) == 0)
			put(d, odd[rnd(sizeof(odd) / sizeof(odd[0]))]);
		else
			put(d, (const char *const[]){" a=\"1.0\"", " b=\"x y\"",
			                             " c", "\"q\""}[rnd(4)]);
	}
}

static void
document(struct doc *d)
{
	d->n = 0;
	if (rnd(4) == 0)
		blanks(d);
	switch (rnd(4)) {
	case 0:
		put(d, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
		break;
	case 1:
		put(d, "<?xml");
		decl_body(d);
		put(d, "?>");
		break;
	default:
		break;
	}
	blanks(d);
	switch (rnd(4)) {
	case 0:
		put(d, "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
		       "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">");
		break;
	case 1:
		put(d, "<!DOCTYPE");
		decl_body(d);
		put(d, ">");
		break;
	default:
		break;
	}
	blanks(d);
	put(d, rnd(2) ? "<plist version=\"1.0\">" : "<plist>");
	blanks(d);
	if (rnd(20) == 0)
		value(d, 0);
	else
		dict(d, 0);
	blanks(d);
	put(d, "</plist>");
	blanks(d);
}

/* A few random edits: bytes dropped, inserted, swapped, pieces repeated. */
static void
mutate(struct doc *d)
{
	static const char ins[] = "<>/&=\"'? \n\tax\x80\x01;![]-";
	unsigned k, edits = 1 + rnd(3);
	size_t at, l;

	for (k = 0; k < edits && d->n > 2; k++) {
		at = rnd((unsigned)d->n);
		switch (rnd(4)) {
		case 0:
			memmove(d->b + at, d->b + at + 1, d->n - at - 1);
			d->n--;
			break;
		case 1:
			if (d->n + 1 >= sizeof(d->b))
				break;
			memmove(d->b + at + 1, d->b + at, d->n - at);
			d->b[at] = ins[rnd(sizeof(ins) - 1)];
			d->n++;
			break;
		case 2:
			d->b[at] ^= d->b[at + (at + 1 < d->n)];
			d->b[at] = d->b[at] ? d->b[at] : 'q';
			break;
		default:
			l = 1 + rnd(12);
			if (at + l > d->n || d->n + l >= sizeof(d->b))
				break;
			memmove(d->b + at + l, d->b + at, d->n - at);
			d->n += l;
		}
	}
}

static void
test_quick_generated(void **state)
{
	struct doc *d = malloc(sizeof(*d));
	const char *env = getenv("EB_TEST_PLIST_ROUNDS"); /* longer runs */
	unsigned i, n = 40000, yes = 0, yes_mut = 0, depth;

	(void)state;
	assert_non_null(d);
	if (env != NULL && atoi(env) > 0)
		n = (unsigned)atoi(env);
	if ((env = getenv("EB_TEST_PLIST_SEED")) != NULL)
		rng ^= strtoull(env, NULL, 10) * 0x2545f4914f6cdd1dULL;
	for (i = 0; i < n; i++) {
		document(d);
		depth = rnd(4) == 0 ? 1 + rnd(4) : 16;
		if (i % 2 == 0) {
			yes += check_promise(d->b, d->n, depth) == 1;
		} else {
			mutate(d);
			yes_mut += check_promise(d->b, d->n, depth) == 1;
		}
	}
	/* the quick look must answer often, or this tests little */
	assert_true(yes > 2000);
	assert_true(yes_mut > 200);
	free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_quick_devices),
	    cmocka_unit_test(test_quick_unsure),
	    cmocka_unit_test(test_quick_generated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
