/*
 * The MachineInfo a device sends in its enrollment POSTs (PROTOCOL.md
 * section 2): a CMS SignedData, signed by the device identity, wrapping a
 * plist with LANGUAGE, PRODUCT, VERSION, maybe OS_VERSION and, for
 * account-driven Device Enrollment only, UDID/SERIAL/IMEI/MEID.
 *
 * The body is untrusted and read whatever its Content-Type: DER is what
 * devices send; PEM or bare base64 of the DER are accepted too. The
 * signature must verify with the certificate in the message; with a device
 * CA bundle the signer must also chain up to it. Every failure is a reason
 * string for the 400 answer and the log, never a crash
 * (tests/fuzz/fuzz_machineinfo.c).
 */
#ifndef EB_MACHINEINFO_H
#define EB_MACHINEINFO_H

#include <stddef.h>

#define EB_MACHINEINFO_MAX_BYTES  (64 * 1024) /* body, and signed plist */
#define EB_MACHINEINFO_MAX_STRING 256         /* any value kept */

/* What we keep of a MachineInfo; strings are owned (eb_machineinfo_finish).
 */
struct eb_machineinfo {
	char *product;    /* "iPhone17,2"; always set */
	char *language;   /* "en-US"; NULL when absent */
	char *version;    /* OS build, "22B83"; NULL when absent */
	char *os_version; /* "18.1"; NULL when absent */
	char *udid;       /* ADDE only; NULL when absent */
	char *serial;     /* ADDE only */
	char *imei;       /* ADDE only */
	char *meid;       /* ADDE only */
	/* model family derived from product ("iPhone", "iPad", "Mac",
	 * "AppleTV", "Watch", "RealityDevice"), static; NULL if unknown */
	const char *model_family;
	int ca_verified; /* 1 when the signer chained up to device_ca */
	/* MDM_CAN_REQUEST_SOFTWARE_UPDATE true: the device says it can act on
	 * Apple's com.apple.softwareupdate.required answer */
	int can_request_update;
};

/*
 * Parse a device's POST body. device_ca, when not NULL, is a PEM bundle the
 * signer's certificate chain must verify against (t->mdm.device_ca). On
 * success returns 0 with *mi filled; else -1 with *mi zeroed and a reason in
 * err ("not a CMS SignedData message", "bad signature: ...", "MachineInfo
 * has no PRODUCT", ...).
 */
int eb_machineinfo_parse(struct eb_machineinfo *mi, const void *body,
                         size_t len, const char *device_ca, char *err,
                         size_t errlen);
/*
 * Parse the MachineInfo plist itself (what the CMS wraps), with the same
 * limits and checks. Returns 0 or -1 as eb_machineinfo_parse().
 */
int eb_machineinfo_parse_plist(struct eb_machineinfo *mi, const void *data,
                               size_t len, char *err, size_t errlen);
/* Free the strings of *mi and zero it; a zeroed *mi is fine. */
void eb_machineinfo_finish(struct eb_machineinfo *mi);
/*
 * The model family of a PRODUCT string (as discovery's model-family), or
 * NULL when it is not recognised. The result is a static string.
 */
const char *eb_machineinfo_family(const char *product);

#endif
