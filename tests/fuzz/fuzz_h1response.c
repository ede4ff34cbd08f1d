/*
 * Fuzz target for the native HTTP/1.1 client's response parser
 * (src/http/client_h1.c): an MDM upstream's answer is untrusted input that
 * the proxy hands back to devices. Input: byte 0 flags (bit 0: the request
 * was HEAD), byte 1 the size of the pieces the response arrives in, bytes
 * 2-3 the body limit, then the response. Checks that the outcome does not
 * depend on how the bytes arrive (all at once or in pieces) nor on how the
 * body is taken (gathered, or streamed to a receiver), and that an
 * accepted response is sane: a final status, no body for HEAD, 204 and
 * 304, a body within the limit, header names and values without CR, LF or
 * NUL.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/client_int.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr,                                        \
			        "fuzz_h1response: %s failed at line %d\n",     \
			        #cond, __LINE__);                              \
			abort();                                               \
		}                                                              \
	} while (0)

static int
token_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?={}", c) == NULL;
}

static void
sane(const struct eb_http_response *r, int head_req, size_t max)
{
	size_t i;
	const char *p;

	CHECK(r->status >= 200 && r->status <= 599);
	CHECK(r->body != NULL && r->body[r->body_len] == '\0');
	CHECK(r->body_len <= max);
	if (head_req || r->status == 204 || r->status == 304)
		CHECK(r->body_len == 0);
	for (i = 0; i < r->nheaders; i++) {
		CHECK(r->headers[i].name[0] != '\0');
		for (p = r->headers[i].name; *p; p++)
			CHECK(token_char((unsigned char)*p));
		for (p = r->headers[i].value; *p; p++)
			CHECK(*p != '\r' && *p != '\n');
	}
}

static void
same(const struct eb_http_response *a, const struct eb_http_response *b)
{
	size_t i;

	CHECK(a->error == b->error);
	if (a->error != EB_HTTP_OK)
		return;
	CHECK(a->status == b->status);
	CHECK(a->body_len == b->body_len);
	CHECK(memcmp(a->body, b->body, a->body_len) == 0);
	CHECK(a->nheaders == b->nheaders);
	for (i = 0; i < a->nheaders; i++) {
		CHECK(strcmp(a->headers[i].name, b->headers[i].name) == 0);
		CHECK(strcmp(a->headers[i].value, b->headers[i].value) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eb_http_response *whole, *split, *streamed;
	size_t max, piece;
	int head_req;

	if (size < 4)
		return 0;
	head_req = data[0] & 1;
	piece = 1 + data[1] % 64;
	max = 1 + ((size_t)data[2] << 8 | data[3]);
	data += 4;
	size -= 4;
	whole = eb_h1_parse_response(data, size, head_req, max, 0, 0);
	split = eb_h1_parse_response(data, size, head_req, max, piece, 0);
	streamed = eb_h1_parse_response(data, size, head_req, max, piece, 1);
	if (whole != NULL && split != NULL) {
		same(whole, split);
		if (whole->error == EB_HTTP_OK)
			sane(whole, head_req, max);
	}
	if (whole != NULL && streamed != NULL)
		same(whole, streamed);
	eb_http_response_free(whole);
	eb_http_response_free(split);
	eb_http_response_free(streamed);
	return 0;
}
