/*
 * Fuzz target for the forwarding-header reader (src/core/trusted.c): the
 * X-Forwarded-For and Forwarded fields a trusted load balancer passes on,
 * whose left part any client writes. The input is "XFF\nFORWARDED" (either
 * may be empty, meaning absent; no newline: XFF alone). The trusted
 * networks are 10.0.0.0/8 and fd00::/8.
 * Invariants: FOUND gives a non-empty address that parses back as one;
 * BAD comes with a reason; nothing reads or writes out of bounds (the
 * sanitizers).
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/trusted.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr,                                        \
			        "fuzz_trusted: %s failed at line %d\n", #cond, \
			        __LINE__);                                     \
			abort();                                               \
		}                                                              \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The chain variant agrees with eb_trusted_client: the same result, and
 * with FOUND a chain that starts with the client and holds only addresses.
 */
static void
check_chain(const struct eb_trusted *t, const char *xff, const char *fwd,
            enum eb_trusted_result r, const char *client)
{
	static char via[EB_TRUSTED_MAX_HOPS * (INET6_ADDRSTRLEN + 2)];
	char out[INET6_ADDRSTRLEN + 1], *p, *e;
	const char *why = NULL;
	unsigned char addr[16];
	int family;

	CHECK(eb_trusted_client_chain(t, xff, fwd, out, sizeof(out), via,
	                              sizeof(via), &why) == r);
	if (r != EB_TRUSTED_FOUND)
		return;
	CHECK(strcmp(out, client) == 0);
	CHECK(strncmp(via, client, strlen(client)) == 0);
	for (p = via;; p = e + 2) {
		e = strstr(p, ", ");
		CHECK(eb_trusted_parse_addr(
		          p, e != NULL ? (size_t)(e - p) : strlen(p), &family,
		          addr) == 0);
		if (e == NULL)
			break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct eb_cidr nets[2];
	static int ready;
	struct eb_trusted t = {nets, 2};
	char *buf, *fwd, out[INET6_ADDRSTRLEN + 1];
	const char *why = NULL;
	unsigned char addr[16];
	int family = 0;
	enum eb_trusted_result r;

	if (!ready) {
		CHECK(eb_trusted_parse_cidr("10.0.0.0/8", &nets[0], &why) == 0);
		CHECK(eb_trusted_parse_cidr("fd00::/8", &nets[1], &why) == 0);
		ready = 1;
	}
	if (size > 2 * EB_TRUSTED_MAX_HEADER + 2 ||
	    (buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	if (strlen(buf) != size) { /* a header value holds no NUL */
		free(buf);
		return 0;
	}
	if ((fwd = strchr(buf, '\n')) != NULL)
		*fwd++ = '\0';
	out[0] = '\0';
	why = NULL;
	r = eb_trusted_client(&t, buf[0] ? buf : NULL,
	                      fwd != NULL && fwd[0] ? fwd : NULL, out,
	                      sizeof(out), &why);
	switch (r) {
	case EB_TRUSTED_FOUND:
		CHECK(out[0] != '\0');
		CHECK(eb_trusted_parse_addr(out, strlen(out), &family, addr) ==
		      0);
		break;
	case EB_TRUSTED_BAD:
		CHECK(why != NULL && why[0] != '\0');
		break;
	case EB_TRUSTED_NONE:
		break;
	default:
		CHECK(!"unknown result");
	}
	check_chain(&t, buf[0] ? buf : NULL, fwd != NULL && fwd[0] ? fwd : NULL,
	            r, out);
	free(buf);
	return 0;
}
