/*
 * `enrollbridge device-sim`: play an Apple device.
 *
 *   device-sim machineinfo [--model-family F | --product P] [--udid U]
 *       [--serial S] [--version V] [--os-version O] [--language L]
 *     writes the CMS-signed MachineInfo a device would POST to BaseURL
 *     (DER) to standard output.
 */
#include "cli/devicesim.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "apple/device.h"
#include "core/mem.h"

static void
usage(void)
{
	fprintf(stderr,
	        "usage: enrollbridge device-sim machineinfo [--model-family F |"
	        " --product P]\n"
	        "           [--udid U] [--serial S] [--version V] "
	        "[--os-version O] [--language L]\n");
}

static int
cmd_machineinfo(int argc, char **argv)
{
	struct eb_device_info d;
	const char *family = NULL;
	uint8_t *out = NULL;
	size_t len = 0, off = 0;
	char err[256];
	int i;

	memset(&d, 0, sizeof(d));
	d.version = "22B83";
	d.os_version = "18.1";
	d.language = "en-US";
	for (i = 1; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL) {
			usage();
			return 2;
		}
		if (strcmp(k, "--model-family") == 0)
			family = v;
		else if (strcmp(k, "--product") == 0)
			d.product = v;
		else if (strcmp(k, "--udid") == 0)
			d.udid = v;
		else if (strcmp(k, "--serial") == 0)
			d.serial = v;
		else if (strcmp(k, "--version") == 0)
			d.version = v;
		else if (strcmp(k, "--os-version") == 0)
			d.os_version = v;
		else if (strcmp(k, "--language") == 0)
			d.language = v;
		else {
			usage();
			return 2;
		}
		i++;
	}
	if (d.product == NULL &&
	    (d.product = eb_device_product_for(family)) == NULL) {
		fprintf(stderr, "device-sim: unknown model family \"%s\"\n",
		        family);
		return 2;
	}
	if (eb_device_machineinfo(&d, &out, &len, err, sizeof(err)) != 0) {
		fprintf(stderr, "device-sim: %s\n", err);
		return 1;
	}
	while (off < len) {
		ssize_t n = write(STDOUT_FILENO, out + off, len - off);

		if (n <= 0) {
			eb_free(out);
			return 1;
		}
		off += (size_t)n;
	}
	eb_free(out);
	return 0;
}

int
eb_cli_device_sim(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "machineinfo") == 0)
		return cmd_machineinfo(argc - 1, argv + 1);
	usage();
	return 2;
}
