/*
 * Fuzz the MDM proxy's check-in and command body parser (untrusted bytes
 * from devices, parsed before anything is forwarded): never crash or leak,
 * whatever Content-Type the body claims; a parsed message's strings are
 * NUL-terminated copies. And the quick look the parser tries first
 * (eb_plist_quick_dict) keeps its promise: whatever it accepts, libplist
 * accepts as a dict with the same strings. And no non-empty body is ever
 * waved through unread (issue 11): parsed means a dict, a check-in or a
 * command result, whose identifiers the binding check can judge.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apple/plist.h"
#include "handle/proxy_int.h"

#define NKEYS 5

/* Abort when the quick look accepts data and libplist disagrees. */
static void
quick_promise(const uint8_t *data, size_t size)
{
	static const char *const keys[NKEYS] = {"MessageType", "UDID",
	                                        "EnrollmentID",
	                                        "EnrollmentUserID", "UserID"};
	struct eb_plist_str v[NKEYS];
	struct eb_plist *root, *n;
	const char *s;
	size_t len, i;

	if (eb_plist_quick_dict(data, size, 1 << 20, 16, keys, v, NKEYS) != 1)
		return;
	root = eb_plist_parse(data, size, 1 << 20, 16, NULL, 0);
	if (eb_plist_type(root) != EB_PLIST_DICT)
		abort();
	for (i = 0; i < NKEYS; i++) {
		n = eb_plist_dict_get(root, keys[i]);
		if (v[i].s == NULL) {
			if (n != NULL)
				abort();
			continue;
		}
		if ((s = eb_plist_string(n, &len)) == NULL || len != v[i].len ||
		    memcmp(s, v[i].s, len) != 0)
			abort();
	}
	eb_plist_free(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = {
	    "application/x-apple-aspen-mdm-checkin",
	    "application/x-apple-aspen-mdm", NULL, "application/octet-stream"};
	struct eb_proxy_msg m;
	const char *why;
	char err[256];
	size_t i;

	quick_promise(data, size);
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		memset(&m, 0, sizeof(m));
		if (eb_proxy_msg_parse(i % 2 ? "GET" : "PUT", types[i], data,
		                       size, 1 << 20, &m, err,
		                       sizeof(err)) == 0) {
			if (m.message_type != NULL &&
			    strlen(m.message_type) > size)
				abort();
			if (size > 0 && m.kind == EB_PROXY_MSG_NONE)
				abort();
			(void)eb_proxy_ids_check(&m, "UDID", "U", &why);
			(void)eb_proxy_ids_check(&m, "EnrollmentID", "E", &why);
			(void)eb_proxy_may_bind(&m);
		}
		eb_proxy_msg_finish(&m);
	}
	return 0;
}
