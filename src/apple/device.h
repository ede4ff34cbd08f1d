/*
 * The device's side of the protocol, for the tools that play a device
 * (`enrollbridge discover`, `enrollbridge device-sim`) and for tests: a
 * MachineInfo plist CMS-signed the way a device's identity signs it. The
 * signing identity is an ephemeral P-256 key with a self-signed
 * certificate, made per call: it proves nothing about any real device.
 */
#ifndef EB_DEVICE_H
#define EB_DEVICE_H

#include <stddef.h>
#include <stdint.h>

struct eb_device_info {
	const char *product;    /* "iPhone17,2" (required) */
	const char *version;    /* OS build, "22B83" */
	const char *os_version; /* "18.1" */
	const char *language;   /* "en-US" */
	const char *udid;       /* ADDE only */
	const char *serial;     /* ADDE only */
	/* MDM_CAN_REQUEST_SOFTWARE_UPDATE true (Setup Assistant devices) */
	int can_request_update;
};

/*
 * A CMS SignedData (DER) wrapping the MachineInfo plist for d. On success
 * *out is fresh (eb_free) and 0 is returned; -1 with err filled otherwise.
 */
int eb_device_machineinfo(const struct eb_device_info *d, uint8_t **out,
                          size_t *outlen, char *err, size_t errlen);
/* A plausible PRODUCT for a model family ("iPhone", "Mac", ...), or NULL. */
const char *eb_device_product_for(const char *model_family);

#endif
