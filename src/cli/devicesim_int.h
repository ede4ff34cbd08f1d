/*
 * Internal to `enrollbridge device-sim enroll`: the state of one walk, the
 * report helpers (devicesim.c) and the steps (devicesim_steps.c). See
 * devicesim.c for what the command does.
 */
#ifndef EB_CLI_DEVICESIM_INT_H
#define EB_CLI_DEVICESIM_INT_H

#include <stddef.h>
#include <stdint.h>

#include "apple/wwwauth.h"
#include "cli/discover.h"

struct eb_http_response;

#define APPLE_SCHEME "apple-remotemanagement-user-login:"
#define APPLE_RESULT APPLE_SCHEME "//authentication-results?"
#define MAX_DETAIL   1024
#define MAX_SMALL    (64 * 1024)
#define MAX_PASTE    16384
#define CT_CHECKIN   "application/x-apple-aspen-mdm-checkin"
#define CT_COMMAND   "application/x-apple-aspen-mdm"
#define DEVICE_UA    "DeviceManagementClient/1.0"
#define MDM_UA       "MDM/1.0"
#define DEVICE_BUILD "22B83"
#define DEVICE_OS    "18.1"

struct eb_devsim {
	/* command line */
	const char *id;
	const char *base;
	const char *family;
	const char *udid_arg;
	const char *login;
	const char *password;
	const char *cafile;
	int interactive;
	int json;
	int timeout;
	const char *maid_key;  /* --maid-key: check GetToken com.apple.maid */
	const char *maid_uuid; /* --maid-server-uuid: its expected iss */
	/* what the walk learns */
	struct eb_discover_report r;
	size_t printed;
	int adde;
	char *version; /* mdm-byod / mdm-adde */
	char *base_url;
	const char *product;
	char *udid, *serial, *enrollment_id;
	uint8_t *mi; /* the MachineInfo body */
	size_t milen;
	struct eb_wwwauth w; /* the challenge */
	char *token;         /* the access token (secret) */
	char *refresh;       /* apple-oauth2 refresh token (secret) */
	char *topic, *server_url, *checkin_url;
	/* --state FILE: where enroll saves, and checkin reads, the above */
	const char *state_file;
	/* an MDM request got 403 com.apple.unrecognized.device */
	int unenrolled;
};

/* Exit status of enroll and checkin when the device was told to unenroll. */
#define EB_DEVSIM_EXIT_UNENROLLED 3
#define EB_UNRECOGNIZED_DEVICE    "com.apple.unrecognized.device"

/*
 * Record a verdict in s->r (the discover command's report, so the same
 * output). Returns -1 for FAIL, else 0.
 */
int eb_devsim_note(struct eb_devsim *s, enum eb_discover_result res,
                   const char *name, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Print the verdicts not printed yet (text mode). */
void eb_devsim_flush(struct eb_devsim *s);
/* "N chars, fp 0123456789ab": how a secret is shown; returns out. */
const char *eb_devsim_secret_desc(const char *secret, char *out, size_t outlen);
/*
 * One request (headers NULL-terminated; body may be NULL). Returns the
 * response (eb_http_response_free) or NULL with a FAIL noted under name.
 */
struct eb_http_response *
eb_devsim_request(struct eb_devsim *s, const char *name, const char *method,
                  const char *url, const char *const *headers, const void *body,
                  size_t bodylen, size_t max, int follow);
/* A random upper-case UUID: fresh, or NULL. */
char *eb_devsim_uuid(void);

int eb_devsim_discovery(struct eb_devsim *s, const char *url);
int eb_devsim_machineinfo(struct eb_devsim *s);
int eb_devsim_challenge(struct eb_devsim *s);
int eb_devsim_as_web(struct eb_devsim *s);
int eb_devsim_oauth2(struct eb_devsim *s);
int eb_devsim_profile(struct eb_devsim *s);
int eb_devsim_checkin(struct eb_devsim *s);
/*
 * Save what later check-ins need (MDM URLs, enrollment identifiers, the
 * token) to s->state_file, created with mode 0600; load it back (s->product
 * then points at *product, fresh: eb_free it after s). 0 or -1 (message
 * printed).
 */
int eb_devsim_state_save(const struct eb_devsim *s);
int eb_devsim_state_load(struct eb_devsim *s, char **product);
/* `device-sim checkin --state FILE ...` (devicesim_state.c). */
int eb_devsim_cmd_checkin(int argc, char **argv);
/* With --maid-key: GetToken com.apple.maid, its JWT verified (gettoken.c). */
int eb_devsim_gettoken(struct eb_devsim *s);
/* A check-in PUT of type to url; on 200 *keep (when not NULL) gets the
 * response (eb_http_response_free), else it is freed. 0 or -1. */
int eb_devsim_mdm_put(struct eb_devsim *s, const char *name, const char *type,
                      const char *url, const char *ct,
                      struct eb_http_response **keep);

#endif
