/*
 * A login flow that has not started yet, carried in the challenge's URL
 * (`/t/{T}/auth/{flow}`, `authorize?flow=`) instead of the database.
 *
 * Every 401 challenge, to an enrollment POST or to an MDM request with a
 * refused bearer, opens a login flow. Stored, each cost a database write,
 * and anyone could make them by the thousand without a credential; the
 * rows stayed for login_ttl. Sealed into the URL (AES-256-GCM under the
 * seal ring's flow subkey, bound to the tenant; any key of the ring opens
 * it, so a flow survives a seal_keys rotation), a challenge writes nothing; nor
 * does opening it: the sign-in start carries what its callback needs in the
 * upstream state (below), and the only row is the used state's hash,
 * written after the IdP vouched for the sign-in. The seal keeps the device's
 * identifiers (UDID, serial) out of the URL's readable text and makes the flow
 * unforgeable; its expiry is inside.
 */
#ifndef EB_HANDLE_FLOW_H
#define EB_HANDLE_FLOW_H

#include <stdint.h>

#include "jose/seal.h"
#include "store/store.h"

/* The longest flow text accepted (one carries at most seven MachineInfo
 * strings of 256 bytes, sealed: about 3 KiB; a usual one 300 bytes). */
#define EB_FLOW_MAX_LEN 4096

/*
 * The flow text for f: its kind, times, enrollment mode, MachineInfo and
 * extra, sealed for f->tenant (f->id and the upstream fields are not
 * carried). 0 with *out to eb_free, or -1 (logged).
 */
int eb_flow_seal(const struct eb_seal_ring *ring, const struct eb_store_flow *f,
                 char **out);

enum eb_flow_open_rc {
	EB_FLOW_OPEN_OK = 0,
	EB_FLOW_OPEN_BAD = -1,     /* not ours, another tenant's, or altered */
	EB_FLOW_OPEN_EXPIRED = -2, /* genuine, but past its expiry */
	EB_FLOW_OPEN_ERROR = -3,   /* out of memory */
};

/*
 * Open the flow text for tenant at time now into *f (released with
 * eb_store_flow_finish, also on failure): its fields, f->tenant, and
 * f->id, the lower-case hex SHA-256 of text.
 */
int eb_flow_open(const struct eb_seal_ring *ring, const char *tenant,
                 const char *text, int64_t now, struct eb_store_flow *f);

/*
 * The upstream state: what a started sign-in needs at its callback, sealed
 * into the `state` parameter sent to the IdP instead of a database row.
 *
 * Opening a challenge URL used to write the flow as a row (about 620 bytes,
 * kept login_ttl): an anonymous client could fill the database. Now the
 * start writes nothing. The state carries, sealed for the tenant (AES-256-
 * GCM, associated data distinct from the challenge flow's, so neither text
 * opens as the other): kind, times, enrollment mode, typed identifier,
 * extra, the OIDC nonce and PKCE verifier, the hash of the browser-binding
 * cookie and the device's OAuth 2 request. The MachineInfo stays in the
 * challenge flow: the callback does not need it. Each start makes its own
 * state and cookie, so a second browser opening the same challenge does
 * not disturb the first. Single use is kept at the callback (signin.c).
 */

/* The longest state sent to the IdP; a usual one is about 450 bytes. */
#define EB_FLOW_STATE_MAX_LEN 2048

/*
 * The state text for f: kind, created, expires, enrollment_mode,
 * user_identifier, extra, upstream_nonce, pkce_verifier (the plain
 * verifier text), browser_binding, client_id, redirect_uri, device_state
 * and scope, sealed for f->tenant. 0 with *out to eb_free, or -1 (logged;
 * also when longer than EB_FLOW_STATE_MAX_LEN).
 */
int eb_flow_state_seal(const struct eb_seal_ring *ring,
                       const struct eb_store_flow *f, char **out);

/*
 * Open the state text for tenant at time now into *f (released with
 * eb_store_flow_finish, also on failure): the fields above, f->tenant,
 * f->pkce_verifier NUL-terminated (not counted in its length), and f->id,
 * the lower-case hex SHA-256 of text. Returns enum eb_flow_open_rc;
 * upstream_nonce, pkce_verifier and browser_binding are always set on OK.
 */
int eb_flow_state_open(const struct eb_seal_ring *ring, const char *tenant,
                       const char *text, int64_t now, struct eb_store_flow *f);

#endif
