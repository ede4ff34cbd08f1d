/*
 * Internals of the MDM proxy (proxy.c decides, proxy_fwd.c forwards),
 * exported for each other and for tests/unit/test_proxy.c only.
 */
#ifndef EB_PROXY_INT_H
#define EB_PROXY_INT_H

#include <stddef.h>

#include <jansson.h>

struct eb_request;
struct eb_tenant;
struct eb_config;
struct eb_bearer;

/* What an MDM request body says about itself. */
enum eb_proxy_msg_kind {
	EB_PROXY_MSG_NONE = 0, /* no body (GET...) */
	EB_PROXY_MSG_CHECKIN,  /* a check-in: a plist dict with MessageType */
	EB_PROXY_MSG_COMMAND   /* any other plist dict: a command result */
};

struct eb_proxy_msg {
	int kind; /* enum eb_proxy_msg_kind */
	/* copies of the plist's top-level strings, NULL when absent */
	char *message_type;
	char *udid;
	char *enrollment_id;
	char *enrollment_user_id;
	char *user_id; /* macOS user channel of a device enrollment */
	char *token_service_type; /* a GetToken's TokenServiceType */
};

/*
 * Parse an MDM request body (content_type may be NULL), whatever its
 * method or Content-Type: an empty body is NONE (but a PUT/POST with a
 * check-in or command Content-Type must have one); any other must be a
 * plist dict whose MessageType, UDID, EnrollmentID, EnrollmentUserID and
 * UserID, where present, are sane strings (printable ASCII, no blank, 1
 * to 256 bytes), and which, in XML, has no duplicate top-level keys nor a
 * second root dict. With MessageType it is a check-in, else a command result
 * (a check-in Content-Type requires MessageType). Returns 0 with msg
 * filled (eb_proxy_msg_finish it either way), or -1 (400, never
 * forwarded) with a reason in err.
 */
int eb_proxy_msg_parse(const char *method, const char *content_type,
                       const void *body, size_t len, size_t max_bytes,
                       struct eb_proxy_msg *msg, char *err, size_t errlen);
void eb_proxy_msg_finish(struct eb_proxy_msg *msg);

/* The binding kind of a grant of enrollment_mode: "UDID" for "ADDE",
 * else "EnrollmentID". */
const char *eb_proxy_binding_kind(const char *enrollment_mode);
/* The identifier of that kind a message names, or NULL. */
const char *eb_proxy_msg_names(const struct eb_proxy_msg *m, const char *kind);

enum {
	EB_PROXY_IDS_OK = 0, /* names the enrollment (kind, value), no other */
	EB_PROXY_IDS_OTHER,  /* names another enrollment, or mixes kinds */
	EB_PROXY_IDS_NONE    /* names no enrollment of that kind */
};
/*
 * Judge every identifier a parsed body carries against the binding (kind,
 * value): for "UDID", no EnrollmentID or EnrollmentUserID may appear; for
 * "EnrollmentID", no UDID, and an EnrollmentUserID only next to the
 * EnrollmentID. The named value is compared ignoring ASCII case. why (a
 * literal) says what was wrong.
 */
int eb_proxy_ids_check(const struct eb_proxy_msg *m, const char *kind,
                       const char *value, const char **why);

/* 1 when m may bind a grant that is not bound yet: an Authenticate, or a
 * macOS user channel's TokenUpdate (with EnrollmentUserID or UserID). */
int eb_proxy_may_bind(const struct eb_proxy_msg *m);

/*
 * 1 when a request without a bearer may be forwarded on the device
 * channel: PUT, a check-in (check-in Content-Type and MessageType) or a
 * command result (command Content-Type), naming an enrollment, to one of
 * paths (each "rest" or "rest?query", matched exactly against rest and
 * the raw query, which may be NULL). 0 otherwise, why saying why.
 */
int eb_proxy_device_channel_ok(const char *method, const char *content_type,
                               const char *rest, const char *query,
                               const struct eb_proxy_msg *m,
                               const char *const *paths, size_t npaths,
                               const char **why);

/*
 * 1 when the path remainder {rest} (percent-decoded) may be forwarded: no
 * dot segment in any spelling ("..", "...", "..;x", ".. "), no control
 * byte, no backslash, well-formed UTF-8 (no overlong "." either), no
 * empty segment at the start. 0 otherwise. An encoded "/" or NUL cannot
 * be seen once decoded: the server refuses those from the raw target.
 */
int eb_proxy_rest_ok(const char *rest);

/*
 * The upstream URL for rest and the raw query (may be "" or NULL):
 * upstream without trailing slashes, "/", rest percent-encoded where it
 * is not a path character, "?query" when there is one. Returns a fresh
 * string (eb_free), or NULL when out of memory or the query holds a byte
 * a URL may not.
 */
char *eb_proxy_upstream_url(const char *upstream, const char *rest,
                            const char *query);
/*
 * The upstream URL from the raw request-target of "/t/{T}/mdm/{rest}"
 * (path and query as received): {rest} normalised once (RFC 3986 6.2.2:
 * escaped unreserved characters decoded, other escapes upper-cased, bytes
 * a path may not hold encoded), so that the MDM sees what the device sent
 * and what the bridge checked, never a reserved character decoded. A
 * fresh string (eb_free), or NULL when the target is not of that form,
 * holds a malformed escape or a query byte a URL may not, or out of
 * memory.
 */
char *eb_proxy_upstream_url_raw(const char *upstream, const char *target);

/*
 * Whether a request header from the device is passed upstream: not
 * hop-by-hop (also not named by the request's Connection header, given as
 * connection, may be NULL), not one that curl computes (Host,
 * Content-Length, Expect), not one of our identity headers nor a
 * forwarding header (X-Enrollbridge-*, X-Forwarded-* included), and a
 * valid token (RFC 9110 tchar only). 1 or 0.
 */
int eb_proxy_request_header_ok(const char *name, const char *connection);
/* Whether an upstream response header is passed back to the device: not
 * hop-by-hop (nor named by connection), not Content-Length, Content-Type
 * (set separately), Date or X-Request-Id (the server's own). 1 or 0. */
int eb_proxy_response_header_ok(const char *name, const char *connection);

/* Identity of an authenticated request, as added to the forwarded one. */
struct eb_proxy_identity {
	int authenticated; /* X-Enrollbridge-Authenticated: 1 or 0 */
	const char *managed_apple_id;
	const char *enrollment_mode;
	const char *grant_id;
	const char *route; /* the grant's route, or NULL */
	json_t *idp;       /* its mdm.claims snapshot (an object), or NULL */
};

/* 1 when t, or one of its routes, has an MDM upstream. */
int eb_proxy_has_upstream(const struct eb_tenant *t);

/*
 * Forward req to tenant t's MDM upstream with the identity given, without
 * blocking: returns EB_ASYNC when the upstream call was started (the
 * response is set and req resumed when it ends), EB_HANDLED when the
 * response was set at once (an error). result labels the request in
 * enrollbridge_proxy_requests_total when the MDM answers ("forwarded",
 * "device_channel"...); failures have their own labels.
 */
int eb_proxy_forward(struct eb_request *req, const struct eb_tenant *t,
                     const struct eb_proxy_identity *id, const char *result);

/* Count one proxied request: enrollbridge_proxy_requests_total. result
 * must be a string literal (its address keys a per-thread cache). */
void eb_proxy_count(struct eb_request *req, const char *result);

/*
 * The bearer verdict the head stage (proxy_head.c) reached for req: its
 * EB_BEARER_* result with *b moved out of the request (eb_bearer_finish
 * it), or -1 when the head stage kept none (then check the bearer).
 */
int eb_proxy_head_take(struct eb_request *req, struct eb_bearer *b);

#endif
