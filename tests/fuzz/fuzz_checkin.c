/*
 * Fuzz the MDM proxy's check-in and command body parser (untrusted bytes
 * from devices, parsed before anything is forwarded): never crash or leak,
 * whatever Content-Type the body claims; a parsed message's strings are
 * NUL-terminated copies.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handle/proxy_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = {
	    "application/x-apple-aspen-mdm-checkin",
	    "application/x-apple-aspen-mdm", NULL, "application/octet-stream"};
	struct eb_proxy_msg m;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		memset(&m, 0, sizeof(m));
		if (eb_proxy_msg_parse("PUT", types[i], data, size, 1 << 20, &m,
		                       err, sizeof(err)) == 0 &&
		    m.message_type != NULL && strlen(m.message_type) > size)
			abort();
		eb_proxy_msg_finish(&m);
	}
	return 0;
}
