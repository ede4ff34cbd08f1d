/*
 * Fuzz the device simulator's HTML form reader (pages from an IdP it is
 * pointed at: untrusted): never crash, leak or read past the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/devicesim_web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eb_devicesim_form f;
	char *copy;

	/* an exact-size copy, so that ASan sees any over-read */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	memset(&f, 0, sizeof(f));
	(void)eb_devicesim_form_find(copy, size, &f);
	eb_devicesim_form_finish(&f);
	free(copy);
	return 0;
}
