/*
 * Apple service discovery (PROTOCOL.md section 1):
 * GET /.well-known/com.apple.remotemanagement and its per-tenant twin
 * /t/{T}/.well-known/com.apple.remotemanagement.
 *
 * The tenant is chosen by the domain of user-identifier (split at its only
 * '@', case-insensitive), else by the Host header; the per-tenant URL names
 * it outright. The answer is the tenant's prebuilt JSON for the enrollment
 * mode (eb_tenant_mode_device: the model-family's override, else the
 * tenant default; the enrollment POST applies the same rule to the
 * MachineInfo's PRODUCT, so the profile agrees), served as exactly
 * "application/json" with "Cache-Control: no-store". Anyone we cannot or
 * will not serve gets Apple's 403 com.apple.well-known.failed document,
 * which iOS 17.5+ shows to the user and which makes iOS 18.2+ fall back to
 * Apple Business/School Manager.
 */
#include <string.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "handle/handle.h"

#define WELL_KNOWN_FAILED "com.apple.well-known.failed"

static int
refuse(struct eb_request *req, const char *description, const char *message)
{
	struct eb_buf b;
	char *body;
	size_t len;

	eb_buf_init(&b, 4096);
	eb_buf_addstr(&b,
	              "{\"code\":\"" WELL_KNOWN_FAILED "\",\"description\":");
	eb_buf_add_json_str(&b, description);
	eb_buf_addstr(&b, ",\"message\":");
	if (eb_buf_add_json_str(&b, message) == -1 ||
	    eb_buf_addc(&b, '}') == -1) {
		eb_buf_finish(&b);
		return EB_HANDLED; /* no response set: the server answers 500 */
	}
	body = eb_buf_detach(&b, &len);
	eb_resp_header(req, "Cache-Control", "no-store");
	eb_resp_set_owned(req, 403, "application/json", body, len);
	return EB_HANDLED;
}

/* The Host header without port and trailing dot, lower-cased, or NULL. */
static char *
host_domain(struct eb_request *req)
{
	const char *host = eb_req_header(req, "Host");
	const char *end;
	char *d;
	size_t n;

	if (host == NULL || *host == '[')
		return NULL;
	end = strchr(host, ':');
	n = end ? (size_t)(end - host) : strlen(host);
	if (n > 0 && host[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || (d = eb_strndup(host, n)) == NULL)
		return NULL;
	if (!eb_str_is_fqdn(d)) {
		eb_free(d);
		return NULL;
	}
	return eb_str_lower(d);
}

/* 1 when some model family enrolls in another mode than the default. */
static int
mode_varies(const struct eb_tenant *t)
{
	int i;

	for (i = 0; i < EB_FAMILY_COUNT; i++)
		if (t->by_family[i] >= 0 &&
		    t->by_family[i] != (signed char)t->default_mode)
			return 1;
	return 0;
}

int
eb_handle_discovery(struct eb_request *req)
{
	const struct eb_config *cfg = eb_req_config(req);
	const struct eb_tenant *t = eb_req_tenant(req), *owner;
	const char *uid = eb_req_query(req, "user-identifier");
	const char *family = eb_req_query(req, "model-family");
	char *local = NULL, *domain = NULL;
	enum eb_enroll_mode mode;

	if (uid != NULL) {
		if (eb_str_split_identifier(uid, &local, &domain) == -1) {
			log_info("discovery refused: malformed user-identifier"
			         "%s",
			         eb_str_is_utf8(uid, strlen(uid))
			             ? ""
			             : " (not UTF-8)");
			return refuse(
			    req, "user-identifier is not an address",
			    "Enter your work or school email address, for "
			    "example name@example.com.");
		}
		owner = eb_config_tenant_by_domain(cfg, domain);
		if (t == NULL)
			t = owner;
		else if (owner != NULL && owner != t)
			t = NULL; /* the domain belongs to another tenant */
		if (t == NULL)
			log_info("discovery refused: no tenant serves %s",
			         domain);
		eb_free(local);
		eb_free(domain);
	} else if (t == NULL) {
		char *h = host_domain(req);

		if (h != NULL)
			t = eb_config_tenant_by_domain(cfg, h);
		eb_free(h);
	}
	if (t == NULL)
		return refuse(
		    req, "no enrollment service for this account",
		    "This account can't be used to enroll this device. "
		    "Contact your IT department.");
	eb_req_set_tenant(req, t);
	/* the rule the enrollment POST applies to the MachineInfo too */
	mode = eb_tenant_mode_device(t, family, NULL);
	if (family == NULL && mode_varies(t))
		log_info("tenant %s: discovery without model-family: answered "
		         "the default mode %s (an OS older than iOS 17/macOS "
		         "14, or a redirect that dropped the query)",
		         t->id, eb_mode_name(mode));
	eb_resp_header(req, "Cache-Control", "no-store");
	eb_resp_set_static(req, 200, "application/json", t->disco_body[mode],
	                   t->disco_len[mode]);
	return EB_HANDLED;
}
