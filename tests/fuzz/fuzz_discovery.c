/*
 * Fuzz target for the discover command's body checks: the discovery
 * document, the 403 refusal document and the Enrollment SSO document all
 * come from the server being checked. Checks that the report stays
 * consistent with each verdict.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apple/wwwauth.h"
#include "cli/discover.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr,                                        \
			        "fuzz_discovery: %s failed at line "           \
			        "%d\n",                                        \
			        #cond, __LINE__);                              \
			abort();                                               \
		}                                                              \
	} while (0)

static void
check_report(const struct eb_discover_report *r, int rc)
{
	size_t i, fails = 0;

	for (i = 0; i < r->n; i++) {
		CHECK(r->checks[i].name != NULL && r->checks[i].detail != NULL);
		CHECK(strchr(r->checks[i].detail, '\n') == NULL);
		if (r->checks[i].result == EB_DISCOVER_FAIL) {
			CHECK(r->checks[i].hint != NULL);
			fails++;
		}
	}
	if (!r->oom)
		CHECK(fails == r->nfail);
	CHECK(rc == 0 ? r->nfail == 0 : r->nfail > 0 || r->oom);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eb_discover_report r;
	struct eb_discover_server s;
	const char *body = (const char *)data;
	int rc;

	eb_discover_report_init(&r);
	rc = eb_discover_check_body(body, size, &r, &s);
	check_report(&r, rc);
	if (rc == 0) {
		CHECK(s.version != NULL && s.base_url != NULL);
		CHECK(strcmp(s.version, "mdm-byod") == 0 ||
		      strcmp(s.version, "mdm-adde") == 0);
		CHECK(eb_wwwauth_url_ok(s.base_url, NULL, 0));
		eb_discover_server_finish(&s);
	}
	eb_discover_report_finish(&r);

	eb_discover_report_init(&r);
	rc = eb_discover_check_refusal(body, size, &r);
	CHECK(rc == -1 && r.nfail == 1);
	check_report(&r, rc);
	eb_discover_report_finish(&r);

	eb_discover_report_init(&r);
	rc = eb_discover_check_esso_body(body, size, size & 1, &r);
	check_report(&r, rc);
	eb_discover_report_finish(&r);
	return 0;
}
