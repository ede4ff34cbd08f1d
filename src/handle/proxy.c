/*
 * The MDM proxy: * /t/{T}/mdm/{rest} (PROTOCOL.md section 5, DESIGN.md
 * "Enrollment binding"). This file decides whether a request may reach
 * the tenant's MDM and as whom; proxy_fwd.c carries it there and back
 * without blocking.
 *
 *   - The bearer is judged first (eb_bearer_check), from the headers: a
 *     refused or absent one gets 401 with the tenant's full challenge
 *     whatever the body (the body of such a request may not even have
 *     been read); a store failure 503 with Retry-After, never 401.
 *   - Then the body, decided from what it is, not from what it is
 *     labelled: every non-empty body must be a plist dict whose
 *     identifiers (MessageType, UDID, EnrollmentID, EnrollmentUserID,
 *     UserID) are sane strings, else 400 and nothing is forwarded; an
 *     XML body must read the same in any parser (no duplicate keys, one
 *     root dict). A check-in (any dict with MessageType) or command
 *     result it is.
 *   - Binding: a grant is bound to one enrollment, EnrollmentID for user
 *     enrollment (BYOD), UDID for ADDE. Until bound it may send only its
 *     first Authenticate (or, on macOS, where the device channel carries
 *     no bearer, the user channel's first TokenUpdate), which binds it;
 *     an enrollment held by another person's active grant is refused
 *     with 403, one held by the same person's older grant passes to the
 *     new one (the store does both atomically). Once bound, every body
 *     must name that enrollment and no other identifier: another one is
 *     401 (PROTOCOL.md 5: the token is refused from another enrollment).
 *   - No credential, no forwarding. Without a bearer only a tenant with
 *     mdm.allow_unauthenticated_device_channel forwards, and then only a
 *     PUT check-in or command result, with its content type, to one of
 *     mdm.device_channel_paths, marked unauthenticated. A stale (expired
 *     or revoked) but genuine token of this tenant may still deliver a
 *     CheckOut (PROTOCOL.md 5), and only for its grant's own enrollment.
 *   - Retired enrollments: a request without a valid token (none, unknown,
 *     expired, revoked) whose body names an enrollment whose newest grant
 *     was retired, and that no active grant holds since, gets 403
 *     com.apple.unrecognized.device, so that a device that lost its token
 *     unenrolls too; its CheckOut still reaches the MDM.
 *
 * Every refusal is logged once with its reason, never with the token.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "apple/gettoken.h"
#include "apple/plist.h"
#include "core/config.h"
#include "core/env.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "grant/retired.h"
#include "handle/handle.h"
#include "handle/proxy_int.h"
#include "store/store.h"
#include "token/token.h"

#define CT_CHECKIN      "application/x-apple-aspen-mdm-checkin"
#define CT_COMMAND      "application/x-apple-aspen-mdm"
#define MAX_ID_LEN      256 /* UDID, EnrollmentID... */
#define PLIST_MAX_DEPTH 16

/*
 * Where the bearer-less device channel may go when the tenant names no
 * mdm.device_channel_paths: the check-in and command paths of common MDM
 * servers (MicroMDM /mdm/checkin and /mdm/connect, NanoMDM /mdm, and
 * plain /checkin, /server), relative to /t/{T}/mdm/, without a query.
 */
static const char *const default_channel_paths[] = {
    "checkin",     "server",     "connect",     "mdm",
    "mdm/checkin", "mdm/server", "mdm/connect", NULL};

/* ---- the body ---- */

/* The media type of a Content-Type value equals type (parameters ignored,
 * anything else after it makes it another type). */
static int
media_type_is(const char *ctype, const char *type)
{
	size_t n = strlen(type), m;

	if (ctype == NULL)
		return 0;
	while (*ctype == ' ' || *ctype == '\t')
		ctype++;
	m = strcspn(ctype, "; \t");
	if (m != n || strncasecmp(ctype, type, n) != 0)
		return 0;
	ctype += n;
	while (*ctype == ' ' || *ctype == '\t')
		ctype++;
	return *ctype == '\0' || *ctype == ';';
}

/* The top-level strings a message is judged by, in struct eb_proxy_msg
 * order. */
enum {
	K_MESSAGE_TYPE,
	K_UDID,
	K_ENROLLMENT_ID,
	K_ENROLLMENT_USER_ID,
	K_USER_ID,
	K_TOKEN_SERVICE_TYPE,
	K_N
};
static const char *const msg_keys[K_N] = {"MessageType",  "UDID",
                                          "EnrollmentID", "EnrollmentUserID",
                                          "UserID",       "TokenServiceType"};

/* The struct eb_proxy_msg field of key i. */
static char **
msg_field(struct eb_proxy_msg *msg, int i)
{
	switch (i) {
	case K_MESSAGE_TYPE:
		return &msg->message_type;
	case K_UDID:
		return &msg->udid;
	case K_ENROLLMENT_ID:
		return &msg->enrollment_id;
	case K_ENROLLMENT_USER_ID:
		return &msg->enrollment_user_id;
	case K_TOKEN_SERVICE_TYPE:
		return &msg->token_service_type;
	default:
		return &msg->user_id;
	}
}

/* Printable ASCII without blanks: what identifiers are, and what
 * eb_plist_quick_dict() answers for (so both paths agree). Compared
 * without regard to case (an MDM may fold it), ASCII is needed for that. */
static int
sane_id(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > MAX_ID_LEN)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

/* A copy of the string under key; -1 when present but not a sane string. */
static int
take_string(const struct eb_plist *d, const char *key, char **out)
{
	struct eb_plist *v = eb_plist_dict_get(d, key);
	const char *s;
	size_t len;

	*out = NULL;
	if (v == NULL)
		return 0;
	if ((s = eb_plist_string(v, &len)) == NULL || strlen(s) != len ||
	    !sane_id(s, len))
		return -1;
	return (*out = eb_strndup(s, len)) == NULL ? -1 : 0;
}

/*
 * The body's strings by eb_plist_quick_dict(), without building a tree:
 * 1 (msg filled), or 0 when the quick look is unsure or a string is not
 * sane (msg untouched): then the whole parse decides. The quick look
 * answers only for plists the parse would accept as a dict with the same
 * strings (and refuses duplicate keys), so the outcome is the same
 * either way.
 */
static int
quick_strings(const void *body, size_t len, size_t max_bytes,
              struct eb_proxy_msg *msg)
{
	struct eb_plist_str v[K_N];
	int i;

	if (eb_plist_quick_dict(body, len, max_bytes, PLIST_MAX_DEPTH, msg_keys,
	                        v, K_N) != 1)
		return 0;
	for (i = 0; i < K_N; i++)
		if (v[i].s != NULL && !sane_id(v[i].s, v[i].len))
			return 0; /* not sane: the parse says why */
	for (i = 0; i < K_N; i++)
		if (v[i].s != NULL && (*msg_field(msg, i) = eb_strndup(
		                           v[i].s, v[i].len)) == NULL) {
			eb_proxy_msg_finish(msg);
			return 0;
		}
	return 1;
}

/* Whether [p, end) starts with the literal s. */
static int
starts(const char *p, const char *end, const char *s)
{
	size_t n = strlen(s);

	return (size_t)(end - p) >= n && memcmp(p, s, n) == 0;
}

/* The first s in [p, end), or NULL. */
static const char *
find(const char *p, const char *end, const char *s)
{
	size_t n = strlen(s);

	for (; (size_t)(end - p) >= n; p++)
		if (memcmp(p, s, n) == 0)
			return p;
	return NULL;
}

/*
 * The number of <key> elements of an XML plist that sit directly in a
 * top-level <dict> (any of them, if there are several), or -1 when the
 * markup is not plain enough to count (a DOCTYPE with an internal subset,
 * an unterminated construct). libplist keeps the last of duplicate keys
 * and the first of several root dicts, and ignores what trails; an MDM
 * may do otherwise. A body where this count and the parsed dict's size
 * differ is refused: what the proxy judged is then what the MDM reads.
 */
static long
xml_top_keys(const char *p, size_t len)
{
	const char *end = p + len, *q, *name;
	long n = 0;
	int depth = 0, closing;
	size_t nl;

	while ((p = memchr(p, '<', (size_t)(end - p))) != NULL) {
		if (starts(p, end, "<!--"))
			q = find(p + 4, end, "-->");
		else if (starts(p, end, "<![CDATA["))
			q = find(p + 9, end, "]]>");
		else if (starts(p, end, "<?"))
			q = find(p + 2, end, "?>");
		else
			q = memchr(p, '>', (size_t)(end - p));
		if (q == NULL)
			return -1;
		if (p[1] == '!' && !starts(p, end, "<!--") &&
		    !starts(p, end, "<![CDATA[") &&
		    memchr(p, '[', (size_t)(q - p)) != NULL)
			return -1; /* a DOCTYPE's internal subset */
		closing = p[1] == '/';
		name = p + 1 + closing;
		for (nl = 0;
		     name + nl < q && name[nl] != ' ' && name[nl] != '\t' &&
		     name[nl] != '\r' && name[nl] != '\n' && name[nl] != '/';
		     nl++)
			;
		if ((nl == 4 && memcmp(name, "dict", 4) == 0) ||
		    (nl == 5 && memcmp(name, "array", 5) == 0)) {
			if (closing)
				depth--;
			else if (q[-1] != '/')
				depth++;
		} else if (nl == 3 && memcmp(name, "key", 3) == 0 && !closing &&
		           depth == 1)
			n++;
		p = q + 1;
	}
	return n;
}

int
eb_proxy_msg_parse(const char *method, const char *content_type,
                   const void *body, size_t len, size_t max_bytes,
                   struct eb_proxy_msg *msg, char *err, size_t errlen)
{
	struct eb_plist *root = NULL;
	int is_checkin = media_type_is(content_type, CT_CHECKIN);
	int is_command = media_type_is(content_type, CT_COMMAND);
	int rc = -1, i;

	memset(msg, 0, sizeof(msg[0]));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len == 0) {
		/* a check-in or command PUT/POST promises a body */
		if ((is_checkin || is_command) && strcmp(method, "GET") != 0 &&
		    strcmp(method, "HEAD") != 0) {
			snprintf(err, errlen, "empty check-in or command body");
			return -1;
		}
		return 0;
	}
	/* Whatever its Content-Type or method: a body the binding check
	 * cannot read is not forwarded (a leading comment, a GET with a
	 * body, a mislabelled plist all used to slip past). */
	if (quick_strings(body, len, max_bytes, msg))
		goto classify;
	root =
	    eb_plist_parse(body, len, max_bytes, PLIST_MAX_DEPTH, err, errlen);
	if (root == NULL)
		goto out; /* err says why */
	if (eb_plist_type(root) != EB_PLIST_DICT) {
		snprintf(err, errlen, "the body is a plist %s, not a dict",
		         eb_plist_type_name(eb_plist_type(root)));
		goto out;
	}
	if (!starts(body, (const char *)body + len, "bplist") &&
	    xml_top_keys(body, len) != (long)eb_plist_dict_size(root)) {
		snprintf(err, errlen,
		         "duplicate keys, several root dicts or markup too "
		         "odd to check");
		goto out;
	}
	for (i = 0; i < K_N; i++)
		if (take_string(root, msg_keys[i], msg_field(msg, i)) == -1) {
			snprintf(err, errlen,
			         "%s is not a sane string (printable ASCII, 1 "
			         "to %d bytes)",
			         msg_keys[i], MAX_ID_LEN);
			goto out;
		}
classify:
	if (msg->message_type != NULL)
		msg->kind = EB_PROXY_MSG_CHECKIN;
	else if (is_checkin) {
		snprintf(err, errlen, "check-in without MessageType");
		goto out;
	} else
		msg->kind = EB_PROXY_MSG_COMMAND; /* a command result */
	rc = 0;
out:
	eb_plist_free(root);
	if (rc == -1)
		eb_proxy_msg_finish(msg);
	return rc;
}

void
eb_proxy_msg_finish(struct eb_proxy_msg *msg)
{
	if (msg == NULL)
		return;
	eb_free(msg->message_type);
	eb_free(msg->udid);
	eb_free(msg->enrollment_id);
	eb_free(msg->enrollment_user_id);
	eb_free(msg->user_id);
	eb_free(msg->token_service_type);
	memset(msg, 0, sizeof(*msg));
}

static int
is_message(const struct eb_proxy_msg *m, const char *type)
{
	return m->kind == EB_PROXY_MSG_CHECKIN && m->message_type != NULL &&
	       strcmp(m->message_type, type) == 0;
}

/* ---- the binding, as the body shows it ---- */

const char *
eb_proxy_binding_kind(const char *enrollment_mode)
{
	return enrollment_mode != NULL && strcmp(enrollment_mode, "ADDE") == 0
	           ? "UDID"
	           : "EnrollmentID";
}

const char *
eb_proxy_msg_names(const struct eb_proxy_msg *m, const char *kind)
{
	return strcmp(kind, "UDID") == 0 ? m->udid : m->enrollment_id;
}

int
eb_proxy_ids_check(const struct eb_proxy_msg *m, const char *kind,
                   const char *value, const char **why)
{
	const char *named = eb_proxy_msg_names(m, kind);

	*why = "the body names another enrollment";
	if (strcmp(kind, "UDID") == 0) {
		/* an ADDE device: user-enrollment identifiers are another
		 * enrollment's */
		if (m->enrollment_id != NULL || m->enrollment_user_id != NULL)
			return EB_PROXY_IDS_OTHER;
	} else {
		/* a user enrollment has no UDID; its EnrollmentUserID comes
		 * with its EnrollmentID */
		if (m->udid != NULL)
			return EB_PROXY_IDS_OTHER;
		if (m->enrollment_user_id != NULL && m->enrollment_id == NULL) {
			*why = "EnrollmentUserID without its EnrollmentID";
			return EB_PROXY_IDS_OTHER;
		}
	}
	if (named == NULL) {
		*why = "the body names no enrollment";
		return EB_PROXY_IDS_NONE;
	}
	/* ASCII case folded: an MDM that folds it must not see one
	 * enrollment under two bindings (the store's index folds it too) */
	if (value == NULL || strcasecmp(named, value) != 0)
		return EB_PROXY_IDS_OTHER;
	return EB_PROXY_IDS_OK;
}

int
eb_proxy_may_bind(const struct eb_proxy_msg *m)
{
	if (is_message(m, "Authenticate"))
		return 1;
	/*
	 * macOS sends the bearer only on the user channel (PROTOCOL.md 5);
	 * the device channel's Authenticate goes without it, so the first
	 * message a Mac's grant carries is the user channel's TokenUpdate,
	 * which names the user (EnrollmentUserID, or UserID for ADDE) next
	 * to the enrollment. It binds as an Authenticate would, under the
	 * same rules; a device-channel TokenUpdate (no user) does not.
	 */
	return is_message(m, "TokenUpdate") &&
	       (m->enrollment_user_id != NULL || m->user_id != NULL);
}

int
eb_proxy_device_channel_ok(const char *method, const char *content_type,
                           const char *rest, const char *query,
                           const struct eb_proxy_msg *m,
                           const char *const *paths, size_t npaths,
                           const char **why)
{
	size_t i, n, rlen = rest ? strlen(rest) : 0;
	const char *p, *q;

	*why = "device channel: only PUT";
	if (strcmp(method, "PUT") != 0)
		return 0;
	*why = "device channel: only a check-in or a command result";
	if (media_type_is(content_type, CT_CHECKIN)) {
		if (m->kind != EB_PROXY_MSG_CHECKIN)
			return 0;
	} else if (media_type_is(content_type, CT_COMMAND)) {
		if (m->kind != EB_PROXY_MSG_COMMAND)
			return 0;
	} else
		return 0;
	if (m->udid == NULL && m->enrollment_id == NULL) {
		*why = "device channel: the body names no enrollment";
		return 0;
	}
	if (query != NULL && *query == '\0')
		query = NULL;
	for (i = 0; rest != NULL && i < npaths; i++) {
		p = paths[i];
		q = strchr(p, '?');
		n = q ? (size_t)(q - p) : strlen(p);
		if (n != rlen || strncmp(p, rest, n) != 0)
			continue;
		if (q == NULL ? query == NULL
		              : query != NULL && strcmp(q + 1, query) == 0)
			return 1;
	}
	*why = "device channel: not a configured check-in or server path";
	return 0;
}

/* ---- the decision ---- */

/* The route named by a grant's extra JSON (grant/issue.h), or NULL. */
static char *
extra_route(const char *extra)
{
	json_t *x;
	char *r = NULL;
	const char *v;

	if (extra == NULL ||
	    (x = json_loads(extra, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return NULL;
	if ((v = json_string_value(json_object_get(x, "route"))) != NULL)
		r = eb_strdup(v);
	json_decref(x);
	return r;
}

static int
challenge(struct eb_request *req, const struct eb_tenant *t, const char *why)
{
	struct eb_env *env = eb_req_env(req);
	struct eb_challenge_ctx ctx;
	const char *token =
	    eb_bearer_from_header(eb_req_header(req, "Authorization"));
	const struct eb_tenant *view;
	char *replaces = NULL, *route = NULL;

	log_ev(EB_LOG_INFO, EB_EV("proxy.refused", "unauthorized", NULL),
	       "MDM request refused: %s", why);
	eb_proxy_count(req, "unauthorized");
	/* an enrolled device signing in again: its new grant will take over
	 * the enrollment of the one its token names */
	memset(&ctx, 0, sizeof(ctx));
	ctx.mode = t->default_mode;
	if (token != NULL)
		replaces = eb_bearer_grant_hint(env->signer, eb_req_config(req),
		                                t, token);
	ctx.replaces = replaces;
	if (replaces != NULL) {
		struct eb_store_grant old;

		/* EnrollmentMode never changes: the new grant keeps the old's
		 */
		memset(&old, 0, sizeof(old));
		if (eb_store_grant_get(env->store, replaces, &old) ==
		    EB_STORE_OK) {
			if (old.enrollment_mode != NULL)
				ctx.mode =
				    strcmp(old.enrollment_mode, "ADDE") == 0
				        ? EB_MODE_ADDE
				        : EB_MODE_BYOD;
			route = extra_route(old.extra);
		}
		eb_store_grant_finish(&old);
	}
	/* the old grant's route names the ESSO document (when it is still
	 * configured; the sign-in decides the new grant's route anew) */
	if ((view = eb_tenant_route_view(t, route)) == NULL)
		view = t;
	if (eb_enroll_challenge(req, view, &ctx) == -1) {
		log_warnx("tenant %s: cannot start a login flow", t->id);
		eb_resp_header(req, "Retry-After", "5");
		eb_resp_text(req, 503, "temporarily unavailable\n");
	}
	eb_free(route);
	eb_free(replaces);
	return EB_HANDLED;
}

static int
unavailable(struct eb_request *req)
{
	eb_proxy_count(req, "unavailable");
	eb_resp_header(req, "Retry-After", "5");
	eb_resp_text(req, 503, "temporarily unavailable\n");
	return EB_HANDLED;
}

static int
bad_request(struct eb_request *req, const struct eb_tenant *t, const char *why,
            const char *text)
{
	log_ev(EB_LOG_INFO, EB_EV("proxy.refused", "bad_request", NULL),
	       "MDM request refused (400): %s", why);
	eb_proxy_count(req, "bad_request");
	eb_resp_text(req, 400, text);
	return EB_HANDLED;
}

static int
forbidden(struct eb_request *req, const struct eb_tenant *t,
          const char *grant_id, const char *why)
{
	log_ev(EB_LOG_WARN, EB_EV("proxy.refused", "forbidden", grant_id),
	       "MDM request refused (403): %s", why);
	eb_proxy_count(req, "forbidden");
	eb_resp_text(req, 403, "forbidden\n");
	return EB_HANDLED;
}

/*
 * The answer to a device whose grant was retired (`grants retire`): the
 * MDM protocol's "unrecognized device", so that it unenrolls (DESIGN
 * "Lifecycle and identity"). Nothing is forwarded.
 */
static const char unenroll_body[] =
    "{\"code\":\"com.apple.unrecognized.device\","
    "\"message\":\"This device's enrollment has ended; it is to be "
    "removed.\"}\n";

static int
unenroll(struct eb_request *req, const struct eb_tenant *t)
{
	log_ev(EB_LOG_INFO, EB_EV("proxy.refused", "retired", NULL),
	       "MDM request of a retired grant: 403, the device is to "
	       "unenroll");
	eb_proxy_count(req, "retired");
	/* on failure (allocation) the server answers 500 */
	(void)eb_resp_set_static(req, 403, "application/json", unenroll_body,
	                         sizeof(unenroll_body) - 1);
	return EB_HANDLED;
}

/*
 * Whether the revoked token's grant (of tenant t) was retired: 1 yes, 0
 * no (or not ours), -1 the store failed.
 */
static int
grant_retired(struct eb_request *req, const struct eb_tenant *t,
              const char *token)
{
	struct eb_env *env = eb_req_env(req);
	struct eb_store_grant g;
	char *gid;
	int rc, retired;

	if ((gid = eb_bearer_grant_hint(env->signer, eb_req_config(req), t,
	                                token)) == NULL)
		return 0;
	memset(&g, 0, sizeof(g));
	rc = eb_store_grant_get(env->store, gid, &g);
	retired = rc == EB_STORE_OK && g.tenant != NULL &&
	          strcmp(g.tenant, t->id) == 0 && g.retired_at != 0;
	eb_store_grant_finish(&g);
	eb_free(gid);
	if (rc != EB_STORE_OK && rc != EB_STORE_NOT_FOUND) {
		log_warnx("tenant %s: cannot read a grant: %s", t->id,
		          eb_store_strerror(rc));
		return -1;
	}
	return retired;
}

/*
 * Whether the enrollment m names (its EnrollmentID or UDID) was retired,
 * for a request without a valid token, which may have lost it (DESIGN
 * "Lifecycle and identity"); from memory in the common case
 * (grant/retired.h). 1 yes, 0 no, -1 the store failed.
 */
static int
enrollment_retired(struct eb_request *req, const struct eb_tenant *t,
                   const struct eb_proxy_msg *m)
{
	struct eb_store *s = eb_req_env(req)->store;
	int rc;

	if (m->enrollment_id != NULL &&
	    (rc = eb_retired_enrollment(s, t->id, "EnrollmentID",
	                                m->enrollment_id)) != 0)
		return rc;
	if (m->udid != NULL)
		return eb_retired_enrollment(s, t->id, "UDID", m->udid);
	return 0;
}

/* Parse the request's body into m: 0, or -1 with the reason in err. */
static int
parse_body(struct eb_request *req, struct eb_proxy_msg *m, char *err,
           size_t errlen)
{
	const void *body;
	size_t len;

	body = eb_req_body(req, &len);
	return eb_proxy_msg_parse(
	    eb_req_method(req), eb_req_header(req, "Content-Type"), body, len,
	    eb_req_config(req)->limits.max_body_bytes, m, err, errlen);
}

enum {
	BIND_OK = 0,
	BIND_REFUSED = -1,
	BIND_ERROR = -2,
	BIND_TAKEN = -3,
	BIND_BAD = -4
};

/*
 * Check (and at the first Authenticate, make) the binding of the
 * bearer's grant to the enrollment the body names. Returns BIND_OK,
 * BIND_REFUSED (401), BIND_TAKEN (403: another person's enrollment),
 * BIND_BAD (400: a body naming no enrollment) or BIND_ERROR (the store
 * failed); why says why.
 */
static int
check_binding(struct eb_request *req, const struct eb_tenant *t,
              const struct eb_bearer *b, const struct eb_proxy_msg *m,
              const char **why)
{
	struct eb_env *env = eb_req_env(req);
	const char *kind, *value;
	int rc;

	if (b->binding_kind != NULL) {
		if (m->kind == EB_PROXY_MSG_NONE)
			return BIND_OK; /* no body: names no enrollment */
		switch (eb_proxy_ids_check(m, b->binding_kind, b->binding_value,
		                           why)) {
		case EB_PROXY_IDS_OK:
			return BIND_OK;
		case EB_PROXY_IDS_NONE:
			return BIND_BAD;
		default:
			return BIND_REFUSED;
		}
	}
	if (!eb_proxy_may_bind(m)) {
		*why = "grant not bound yet: only its first Authenticate "
		       "may be sent";
		return BIND_REFUSED;
	}
	kind = eb_proxy_binding_kind(b->enrollment_mode);
	if ((value = eb_proxy_msg_names(m, kind)) == NULL) {
		*why = strcmp(kind, "UDID") == 0
		           ? "ADDE check-in without UDID"
		           : "user-enrollment check-in without EnrollmentID";
		return BIND_REFUSED;
	}
	if (eb_proxy_ids_check(m, kind, value, why) != EB_PROXY_IDS_OK)
		return BIND_REFUSED;
	rc = eb_store_grant_bind(env->store, b->grant_id, kind, value,
	                         eb_now(eb_req_env(req)));
	switch (rc) {
	case EB_STORE_OK:
		log_info("tenant %s: grant %.8s bound to its enrollment (%s)",
		         t->id, b->grant_id, kind);
		return BIND_OK;
	case EB_STORE_TAKEN:
		*why = "the enrollment is bound to another person's active "
		       "grant";
		return BIND_TAKEN;
	case EB_STORE_CONFLICT:
		*why = "token bound to another enrollment";
		return BIND_REFUSED;
	case EB_STORE_REVOKED:
	case EB_STORE_NOT_FOUND:
		*why = "grant no longer active";
		return BIND_REFUSED;
	default:
		log_warnx("tenant %s: cannot bind grant %.8s: %s", t->id,
		          b->grant_id, eb_store_strerror(rc));
		return BIND_ERROR;
	}
}

/*
 * A CheckOut with a stale token (PROTOCOL.md 5): 1 when it is a check-in
 * PUT and token is one of ours for tenant t (signature verified, expired
 * or revoked) whose grant is bound to the enrollment the CheckOut names;
 * 0 when not; -1 when the store failed. why says why not.
 */
/* Where a CheckOut of grant g goes: its route's view (NULL when the route
 * is gone or has no upstream: not forwarded). */
static const struct eb_tenant *
checkout_view(const struct eb_tenant *t, const struct eb_store_grant *g,
              const char **why)
{
	const struct eb_tenant *view;
	char *route = extra_route(g->extra);

	view = eb_tenant_route_view(t, route);
	if (view == NULL || view->mdm.upstream == NULL) {
		log_ev(EB_LOG_ERR, EB_EV("proxy.refused", "route_gone", g->id),
		       "CheckOut not forwarded: the grant's route %s is no "
		       "longer configured or has no upstream",
		       route ? route : "-");
		*why = "CheckOut of a grant whose route has no MDM";
		view = NULL;
	}
	eb_free(route);
	return view;
}

static int
stale_checkout(struct eb_request *req, const struct eb_tenant *t,
               const char *token, const struct eb_proxy_msg *m,
               const char **why, const struct eb_tenant **view)
{
	struct eb_env *env = eb_req_env(req);
	struct eb_store_grant g;
	char *gid;
	int rc, ok = 0;

	if (strcmp(eb_req_method(req), "PUT") != 0 ||
	    !media_type_is(eb_req_header(req, "Content-Type"), CT_CHECKIN)) {
		*why = "CheckOut with a stale token: only as a check-in PUT";
		return 0;
	}
	if ((gid = eb_bearer_grant_hint(env->signer, eb_req_config(req), t,
	                                token)) == NULL) {
		*why = "CheckOut with a token that is not ours";
		return 0;
	}
	memset(&g, 0, sizeof(g));
	rc = eb_store_grant_get(env->store, gid, &g);
	if (rc == EB_STORE_OK && g.tenant != NULL &&
	    strcmp(g.tenant, t->id) == 0 && g.binding_kind != NULL)
		ok = eb_proxy_ids_check(m, g.binding_kind, g.binding_value,
		                        why) == EB_PROXY_IDS_OK &&
		     (*view = checkout_view(t, &g, why)) != NULL;
	else if (rc == EB_STORE_OK || rc == EB_STORE_NOT_FOUND)
		*why = "CheckOut with the token of a grant never bound";
	eb_store_grant_finish(&g);
	eb_free(gid);
	if (rc != EB_STORE_OK && rc != EB_STORE_NOT_FOUND) {
		log_warnx("tenant %s: cannot read a grant: %s", t->id,
		          eb_store_strerror(rc));
		return -1;
	}
	return ok;
}

/*
 * A message without a valid token naming a retired enrollment: a CheckOut
 * (a check-in PUT) still reaches the MDM, unauthenticated; anything else
 * gets the unenroll answer. 1 when answered (*rc set), 0 when the
 * enrollment is not retired.
 */
static int
retired_answer(struct eb_request *req, const struct eb_tenant *t,
               const struct eb_proxy_msg *m, int *rc)
{
	struct eb_proxy_identity id;

	switch (enrollment_retired(req, t, m)) {
	case 0:
		return 0;
	case -1:
		*rc = unavailable(req);
		return 1;
	}
	if (is_message(m, "CheckOut") &&
	    strcmp(eb_req_method(req), "PUT") == 0 &&
	    media_type_is(eb_req_header(req, "Content-Type"), CT_CHECKIN)) {
		memset(&id, 0, sizeof(id));
		log_info(
		    "tenant %s: CheckOut of a retired enrollment forwarded "
		    "unauthenticated",
		    t->id);
		*rc = eb_proxy_forward(req, t, &id, "checkout_unauthenticated");
		return 1;
	}
	*rc = unenroll(req, t);
	return 1;
}

/* No Authorization at all, on a tenant that lets the macOS device
 * channel through: forwarded, marked unauthenticated, when it is that
 * channel's check-in or command result to its path; else the challenge. */
static int
device_channel(struct eb_request *req, const struct eb_tenant *t)
{
	const struct eb_strlist *l = &t->mdm.device_channel_paths;
	const char *const *paths;
	struct eb_proxy_identity id;
	struct eb_proxy_msg m;
	const char *why;
	char err[160];
	size_t n;
	int rc;

	memset(&id, 0, sizeof(id));
	if (parse_body(req, &m, err, sizeof(err)) == -1)
		return bad_request(req, t, err, "malformed check-in message\n");
	if (l->n > 0)
		paths = (const char *const *)l->v, n = l->n;
	else
		for (paths = default_channel_paths, n = 0; paths[n] != NULL;)
			n++;
	/* a retired enrollment's device channel unenrolls too */
	if (retired_answer(req, t, &m, &rc)) {
		eb_proxy_msg_finish(&m);
		return rc;
	}
	if (eb_proxy_device_channel_ok(
	        eb_req_method(req), eb_req_header(req, "Content-Type"),
	        eb_req_param(req, "rest"), eb_req_raw_query(req), &m, paths, n,
	        &why))
		/* macOS device channel: the MDM checks the device identity */
		rc = eb_proxy_forward(req, t, &id, "device_channel");
	else
		rc = challenge(req, t, why);
	eb_proxy_msg_finish(&m);
	return rc;
}

/*
 * A bound, authenticated GetToken for Managed Apple Account access
 * management, on a tenant with apple_business: answered here with the
 * token signed by the tenant's key (nothing reaches the MDM). 1 when
 * answered (rc set), 0 when the message is anything else.
 */
static int
maid_token(struct eb_request *req, const struct eb_tenant *t,
           const struct eb_proxy_msg *m, const char *grant_id, int *rc)
{
	uint8_t *xml;
	size_t len;

	if (t->apple_business == NULL || !is_message(m, "GetToken") ||
	    m->token_service_type == NULL ||
	    strcmp(m->token_service_type, EB_GETTOKEN_MAID) != 0)
		return 0;
	if (eb_gettoken_response(t->apple_business, eb_now(eb_req_env(req)),
	                         &xml, &len) == -1) {
		log_warnx("tenant %s: cannot make the %s token of grant %.8s",
		          t->id, EB_GETTOKEN_MAID, grant_id);
		eb_proxy_count(req, "error");
		eb_resp_text(req, 500, "internal error\n");
		*rc = EB_HANDLED;
		return 1;
	}
	log_info("tenant %s: GetToken %s answered for grant %.8s", t->id,
	         EB_GETTOKEN_MAID, grant_id);
	eb_proxy_count(req, "gettoken");
	/* on failure the server answers 500 (and has freed xml) */
	(void)eb_resp_set_owned(req, 200, "application/xml", (char *)xml, len);
	*rc = EB_HANDLED;
	return 1;
}

/*
 * The tenant as the grant's route sees it (its mdm.upstream is where the
 * request goes), or NULL with *rc answered: the route is no longer in the
 * configuration (fail closed: 503, nothing forwarded, logged as the
 * configuration error it is) or has no upstream (404).
 */
static const struct eb_tenant *
route_view(struct eb_request *req, const struct eb_tenant *t, const char *route,
           const char *grant_id, int *rc)
{
	const struct eb_tenant *view = eb_tenant_route_view(t, route);

	if (view == NULL) {
		log_ev(EB_LOG_ERR,
		       EB_EV("proxy.refused", "route_gone", grant_id),
		       "the grant takes route %s, which is no longer "
		       "configured: refused (restore the route, or revoke the "
		       "grant so that the person signs in again)",
		       route);
		eb_proxy_count(req, "route_gone");
		eb_resp_header(req, "Retry-After", "300");
		eb_resp_text(req, 503, "enrollment route not configured\n");
		*rc = EB_HANDLED;
		return NULL;
	}
	if (view->mdm.upstream == NULL) {
		eb_proxy_count(req, "no_upstream");
		eb_resp_text(req, 404, "no MDM upstream for this route\n");
		*rc = EB_HANDLED;
		return NULL;
	}
	return view;
}

int
eb_handle_proxy(struct eb_request *req)
{
	const struct eb_tenant *t = eb_req_tenant(req), *view;
	const struct eb_config *cfg = eb_req_config(req);
	struct eb_env *env = eb_req_env(req);
	struct eb_proxy_identity id;
	struct eb_proxy_msg m;
	struct eb_bearer b;
	const char *authz, *token, *why;
	char err[160];
	int r, rc, parsed = 0; /* the body: 1 parsed, 2 malformed */

	memset(&b, 0, sizeof(b));
	memset(&id, 0, sizeof(id));
	memset(&m, 0, sizeof(m));
	if (!eb_proxy_has_upstream(t)) {
		eb_resp_text(req, 404, "no MDM upstream for this tenant\n");
		return EB_HANDLED;
	}
	if (!eb_proxy_rest_ok(eb_req_param(req, "rest"))) {
		eb_proxy_count(req, "bad_request");
		eb_resp_text(req, 400, "bad request path\n");
		return EB_HANDLED;
	}
	authz = eb_req_header(req, "Authorization");
	if (authz == NULL && t->mdm.allow_unauthenticated_device_channel)
		return device_channel(req, t);
	token = eb_bearer_from_header(authz);
	/* the head stage's verdict (proxy_head.c), else a check now */
	if ((r = eb_proxy_head_take(req, &b)) < 0)
		r = eb_bearer_check(env->signer, env->store, cfg, t, token,
		                    eb_now(eb_req_env(req)), &b);
	why = eb_bearer_result_name(r);
	if (r == EB_BEARER_ERROR) {
		log_warnx("tenant %s: bearer check failed (store)", t->id);
		rc = unavailable(req);
		goto out;
	}
	if (r == EB_BEARER_EXPIRED || r == EB_BEARER_REVOKED) {
		/* genuine but stale: a CheckOut of its own enrollment may
		 * still go (PROTOCOL.md 5), unauthenticated; nothing else */
		parsed = parse_body(req, &m, err, sizeof(err)) == 0 ? 1 : 2;
		if (parsed == 1 && is_message(&m, "CheckOut")) {
			switch (
			    stale_checkout(req, t, token, &m, &why, &view)) {
			case 1:
				log_info("tenant %s: CheckOut forwarded "
				         "unauthenticated (token %s)",
				         t->id, eb_bearer_result_name(r));
				rc = eb_proxy_forward(
				    req, view, &id, "checkout_unauthenticated");
				goto out;
			case -1:
				rc = unavailable(req);
				goto out;
			}
		}
	}
	if (r == EB_BEARER_REVOKED) {
		switch (grant_retired(req, t, token)) {
		case 1:
			rc = unenroll(req, t);
			goto out;
		case -1:
			rc = unavailable(req);
			goto out;
		}
	}
	if (r != EB_BEARER_OK) {
		/* no valid token, maybe lost: a retired enrollment unenrolls */
		if (parsed == 0)
			parsed =
			    parse_body(req, &m, err, sizeof(err)) == 0 ? 1 : 2;
		if (parsed == 1 && retired_answer(req, t, &m, &rc) != 0)
			goto out;
		rc = challenge(req, t, why);
		goto out;
	}
	if (parse_body(req, &m, err, sizeof(err)) == -1) {
		rc = bad_request(req, t, err, "malformed check-in message\n");
		goto out;
	}
	switch (check_binding(req, t, &b, &m, &why)) {
	case BIND_OK:
		break;
	case BIND_TAKEN:
		rc = forbidden(req, t, b.grant_id, why);
		goto out;
	case BIND_BAD:
		rc = bad_request(req, t, why, "the body names no enrollment\n");
		goto out;
	case BIND_REFUSED:
		rc = challenge(req, t, why);
		goto out;
	default:
		rc = unavailable(req);
		goto out;
	}
	if (maid_token(req, t, &m, b.grant_id, &rc))
		goto out;
	id.route = json_string_value(json_object_get(b.claims, "route"));
	if ((view = route_view(req, t, id.route, b.grant_id, &rc)) == NULL)
		goto out;
	id.authenticated = 1;
	id.managed_apple_id = b.managed_apple_id;
	id.enrollment_mode = b.enrollment_mode;
	id.grant_id = b.grant_id;
	id.idp = json_object_get(b.claims, "idp");
	rc = eb_proxy_forward(req, view, &id, "forwarded");
out:
	eb_bearer_finish(&b);
	eb_proxy_msg_finish(&m);
	return rc;
}
