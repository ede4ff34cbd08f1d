/*
 * The MDM proxy: * /t/{T}/mdm/{rest} (PROTOCOL.md section 5, DESIGN.md).
 * This file decides whether a request may reach the tenant's MDM and as
 * whom; proxy_fwd.c carries it there and back without blocking.
 *
 *   - The body is classified first: a check-in (PUT
 *     application/x-apple-aspen-mdm-checkin, or any plist dict with
 *     MessageType) or a command result (application/x-apple-aspen-mdm)
 *     must be a well-formed plist, else 400 even with a good bearer.
 *   - Every request needs a good bearer (eb_bearer_check), except a
 *     CheckOut, which is forwarded even with a stale token, and, when the
 *     tenant allows it, a request with no Authorization header at all (the
 *     macOS device channel); both are forwarded marked unauthenticated.
 *     A refused bearer gets 401 with the tenant's full challenge; a store
 *     failure 503 with Retry-After, never 401.
 *   - Binding: the first Authenticate or TokenUpdate check-in binds the
 *     grant to its enrollment, EnrollmentID for user enrollment (BYOD),
 *     UDID for ADDE. Afterwards a body naming an enrollment must name that
 *     one, else 401: a token is refused from any other enrollment.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "apple/plist.h"
#include "core/config.h"
#include "core/env.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "handle/handle.h"
#include "handle/proxy_int.h"
#include "store/store.h"
#include "token/token.h"

#define CT_CHECKIN      "application/x-apple-aspen-mdm-checkin"
#define CT_COMMAND      "application/x-apple-aspen-mdm"
#define MAX_ID_LEN      256 /* UDID, EnrollmentID... */
#define PLIST_MAX_DEPTH 16

/* ---- the body ---- */

/* The media type of a Content-Type value equals type (parameters ignored). */
static int
media_type_is(const char *ctype, const char *type)
{
	size_t n = strlen(type), m;

	if (ctype == NULL)
		return 0;
	while (*ctype == ' ')
		ctype++;
	m = strcspn(ctype, "; \t");
	return m == n && strncasecmp(ctype, type, n) == 0;
}

/* Whether body starts like a plist (XML or binary), blanks skipped. */
static int
looks_like_plist(const char *body, size_t len)
{
	while (len > 0 && (*body == ' ' || *body == '\t' || *body == '\r' ||
	                   *body == '\n')) {
		body++;
		len--;
	}
	return (len >= 8 && memcmp(body, "bplist00", 8) == 0) ||
	       (len >= 5 && memcmp(body, "<?xml", 5) == 0) ||
	       (len >= 6 && memcmp(body, "<plist", 6) == 0) ||
	       (len >= 9 && memcmp(body, "<!DOCTYPE", 9) == 0);
}

/* The top-level strings a message is judged by, in struct eb_proxy_msg
 * order. */
enum { K_MESSAGE_TYPE, K_UDID, K_ENROLLMENT_ID, K_ENROLLMENT_USER_ID, K_N };
static const char *const msg_keys[K_N] = {"MessageType", "UDID", "EnrollmentID",
                                          "EnrollmentUserID"};

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
	default:
		return &msg->enrollment_user_id;
	}
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
	if ((s = eb_plist_string(v, &len)) == NULL || len == 0 ||
	    len > MAX_ID_LEN || strlen(s) != len)
		return -1;
	return (*out = eb_strndup(s, len)) == NULL ? -1 : 0;
}

/*
 * The body's strings by eb_plist_quick_dict(), without building a tree:
 * 1 (msg filled), or 0 when the quick look is unsure or a string is not
 * sane (msg untouched): then the whole parse decides, as it always did.
 * The quick look answers only for plists the parse would accept as a dict
 * with the same strings, so the outcome is the same either way.
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
		if (v[i].s != NULL && v[i].len > MAX_ID_LEN)
			return 0; /* not sane: the parse says why */
	for (i = 0; i < K_N; i++)
		if (v[i].s != NULL && (*msg_field(msg, i) = eb_strndup(
		                           v[i].s, v[i].len)) == NULL) {
			eb_proxy_msg_finish(msg);
			return 0;
		}
	return 1;
}

int
eb_proxy_msg_parse(const char *method, const char *content_type,
                   const void *body, size_t len, size_t max_bytes,
                   struct eb_proxy_msg *msg, char *err, size_t errlen)
{
	struct eb_plist *root = NULL;
	int is_checkin = media_type_is(content_type, CT_CHECKIN);
	int is_command = media_type_is(content_type, CT_COMMAND);
	int must = (is_checkin || is_command) && strcmp(method, "GET") != 0 &&
	           strcmp(method, "HEAD") != 0;
	int rc = -1, i;

	memset(msg, 0, sizeof(msg[0]));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len == 0 && !must)
		return 0;
	if (!must && !looks_like_plist(body, len))
		return 0;
	if (quick_strings(body, len, max_bytes, msg))
		goto classify;
	root =
	    eb_plist_parse(body, len, max_bytes, PLIST_MAX_DEPTH, err, errlen);
	if (root == NULL || eb_plist_type(root) != EB_PLIST_DICT) {
		if (!must) {
			/* not a plist after all: passed on as it is */
			rc = 0;
			goto out;
		}
		if (root != NULL)
			snprintf(err, errlen,
			         "the body is a plist %s, not a "
			         "dict",
			         eb_plist_type_name(eb_plist_type(root)));
		goto out;
	}
	for (i = 0; i < K_N; i++)
		if (take_string(root, msg_keys[i], msg_field(msg, i)) == -1) {
			snprintf(err, errlen,
			         "MessageType, UDID, EnrollmentID or "
			         "EnrollmentUserID is not a sane string");
			goto out;
		}
classify:
	if (msg->message_type != NULL)
		msg->kind = EB_PROXY_MSG_CHECKIN;
	else if (is_checkin && must) {
		snprintf(err, errlen, "check-in without MessageType");
		goto out;
	} else if (is_command && must)
		msg->kind = EB_PROXY_MSG_COMMAND;
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
	memset(msg, 0, sizeof(*msg));
}

static int
is_message(const struct eb_proxy_msg *m, const char *type)
{
	return m->kind == EB_PROXY_MSG_CHECKIN && m->message_type != NULL &&
	       strcmp(m->message_type, type) == 0;
}

/* ---- the decision ---- */

static int
challenge(struct eb_request *req, const struct eb_tenant *t, const char *why)
{
	struct eb_env *env = eb_req_env(req);
	struct eb_challenge_ctx ctx;
	const char *token =
	    eb_bearer_from_header(eb_req_header(req, "Authorization"));
	char *replaces = NULL;

	log_info("tenant %s: MDM request refused: %s", t->id, why);
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
		        EB_STORE_OK &&
		    old.enrollment_mode != NULL)
			ctx.mode = strcmp(old.enrollment_mode, "ADDE") == 0
			               ? EB_MODE_ADDE
			               : EB_MODE_BYOD;
		eb_store_grant_finish(&old);
	}
	if (eb_enroll_challenge(req, t, &ctx) == -1) {
		log_warnx("tenant %s: cannot start a login flow", t->id);
		eb_resp_header(req, "Retry-After", "5");
		eb_resp_text(req, 503, "temporarily unavailable\n");
	}
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

/* The enrollment the body names, of the kind a grant of mode binds. */
static const char *
presented_id(const struct eb_proxy_msg *m, const char *kind)
{
	return strcmp(kind, "UDID") == 0 ? m->udid : m->enrollment_id;
}

enum { BIND_OK = 0, BIND_REFUSED = -1, BIND_ERROR = -2 };

/*
 * Check (and at the first Authenticate/TokenUpdate, make) the binding of
 * the bearer's grant to the enrollment the body names. Returns BIND_OK,
 * BIND_REFUSED (why says why) or BIND_ERROR (the store failed).
 */
static int
check_binding(struct eb_request *req, const struct eb_tenant *t,
              const struct eb_bearer *b, const struct eb_proxy_msg *m,
              const char **why)
{
	struct eb_env *env = eb_req_env(req);
	const char *kind, *value;
	int rc;

	*why = "token bound to another enrollment";
	if (m->udid == NULL && m->enrollment_id == NULL)
		return BIND_OK; /* the body names no enrollment */
	if (b->binding_kind != NULL) {
		value = presented_id(m, b->binding_kind);
		if (value == NULL || b->binding_value == NULL ||
		    strcmp(value, b->binding_value) != 0)
			return BIND_REFUSED;
		return BIND_OK;
	}
	if (!is_message(m, "Authenticate") && !is_message(m, "TokenUpdate"))
		return BIND_OK; /* bound at the first of those */
	kind = b->enrollment_mode != NULL &&
	               strcmp(b->enrollment_mode, "ADDE") == 0
	           ? "UDID"
	           : "EnrollmentID";
	if ((value = presented_id(m, kind)) == NULL) {
		*why = strcmp(kind, "UDID") == 0
		           ? "ADDE check-in without UDID"
		           : "user-enrollment check-in without EnrollmentID";
		return BIND_REFUSED;
	}
	rc = eb_store_grant_bind(env->store, b->grant_id, kind, value,
	                         (int64_t)time(NULL));
	switch (rc) {
	case EB_STORE_OK:
		log_info("tenant %s: grant %.8s bound to its enrollment (%s)",
		         t->id, b->grant_id, kind);
		return BIND_OK;
	case EB_STORE_CONFLICT:
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

int
eb_handle_proxy(struct eb_request *req)
{
	const struct eb_tenant *t = eb_req_tenant(req);
	const struct eb_config *cfg = eb_req_config(req);
	struct eb_env *env = eb_req_env(req);
	struct eb_proxy_identity id;
	struct eb_proxy_msg m;
	struct eb_bearer b;
	const char *authz, *token, *why;
	const void *body;
	size_t len;
	char err[160];
	int r, rc;

	memset(&b, 0, sizeof(b));
	memset(&id, 0, sizeof(id));
	if (t->mdm.upstream == NULL) {
		eb_resp_text(req, 404, "no MDM upstream for this tenant\n");
		return EB_HANDLED;
	}
	if (!eb_proxy_rest_ok(eb_req_param(req, "rest"))) {
		eb_proxy_count(req, "bad_request");
		eb_resp_text(req, 400, "bad request path\n");
		return EB_HANDLED;
	}
	body = eb_req_body(req, &len);
	if (eb_proxy_msg_parse(
	        eb_req_method(req), eb_req_header(req, "Content-Type"), body,
	        len, cfg->limits.max_body_bytes, &m, err, sizeof(err)) == -1) {
		log_info("tenant %s: malformed MDM message: %s", t->id, err);
		eb_proxy_count(req, "bad_request");
		eb_resp_text(req, 400, "malformed check-in message\n");
		return EB_HANDLED;
	}
	authz = eb_req_header(req, "Authorization");
	if (authz == NULL && t->mdm.allow_unauthenticated_device_channel) {
		/* macOS device channel: the MDM checks the device identity */
		rc = eb_proxy_forward(req, t, &id, "device_channel");
		goto out;
	}
	token = eb_bearer_from_header(authz);
	r = eb_bearer_check(env->signer, env->store, cfg, t, token,
	                    (int64_t)time(NULL), &b);
	why = eb_bearer_result_name(r);
	if (r == EB_BEARER_OK) {
		switch (check_binding(req, t, &b, &m, &why)) {
		case BIND_OK:
			break;
		case BIND_REFUSED:
			r = EB_BEARER_WRONG_BINDING;
			break;
		default:
			r = EB_BEARER_ERROR;
			break;
		}
	}
	if (r == EB_BEARER_ERROR) {
		log_warnx("tenant %s: bearer check failed (store)", t->id);
		rc = unavailable(req);
		goto out;
	}
	if (r != EB_BEARER_OK) {
		if (is_message(&m, "CheckOut")) {
			/* accepted with a stale token (PROTOCOL.md 5) */
			log_info(
			    "tenant %s: CheckOut forwarded unauthenticated "
			    "(%s)",
			    t->id, why);
			rc = eb_proxy_forward(req, t, &id,
			                      "checkout_unauthenticated");
			goto out;
		}
		rc = challenge(req, t, why);
		goto out;
	}
	id.authenticated = 1;
	id.managed_apple_id = b.managed_apple_id;
	id.enrollment_mode = b.enrollment_mode;
	id.grant_id = b.grant_id;
	rc = eb_proxy_forward(req, t, &id, "forwarded");
out:
	eb_bearer_finish(&b);
	eb_proxy_msg_finish(&m);
	return rc;
}
