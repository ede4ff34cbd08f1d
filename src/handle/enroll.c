/*
 * The discovery BaseURL: POST /t/{T}/enroll (PROTOCOL.md sections 2 and 4).
 *
 * Without a valid bearer the device gets 401 and exactly one
 * WWW-Authenticate line in Apple's form for the tenant's auth_method, plus
 * X-Apple-MDM-ESSO when the tenant has Enrollment SSO. For apple-as-web the
 * state of the sign-in lives in the URL path (/t/{T}/auth/{flow}), because
 * the device replaces the URL's query; a login flow is stored for it and
 * expires after tokens.login_ttl. For apple-oauth2 the flow travels as a
 * query item of the authorization-url, which the device keeps.
 *
 * The body (CMS-signed MachineInfo) is read within max_body_bytes whatever
 * the Content-Type says.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "apple/wwwauth.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/env.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rand.h"
#include "handle/handle.h"
#include "store/store.h"

#define FLOW_ID_BYTES 32

/* Store a login flow for this enrollment attempt; returns its id. */
static char *
new_flow(struct eb_request *req, const struct eb_tenant *t)
{
	struct eb_env *env = eb_req_env(req);
	struct eb_store_flow f;
	char *id;
	int64_t now = (int64_t)time(NULL);

	if ((id = eb_rand_token(FLOW_ID_BYTES)) == NULL)
		return NULL;
	memset(&f, 0, sizeof(f));
	f.id = id;
	f.tenant = t->id;
	f.kind = t->auth_method == EB_AUTH_OAUTH2
	             ? EB_STORE_FLOW_OAUTH2_AUTHORIZE
	             : EB_STORE_FLOW_APPLE_AS_WEB;
	f.created = now;
	f.expires = now + t->tokens.login_ttl;
	/* the tenant's default until the MachineInfo names the device */
	f.enrollment_mode = (char *)(uintptr_t)eb_mode_name(t->default_mode);
	if (eb_store_flow_put(env->store, &f) != EB_STORE_OK) {
		eb_free(id);
		return NULL;
	}
	return id;
}

/*
 * Set the 401 challenge for tenant t. Returns 0, or -1 when the store or
 * memory failed (the caller answers 503).
 */
int
eb_enroll_challenge(struct eb_request *req, const struct eb_tenant *t)
{
	const struct eb_config *cfg = eb_req_config(req);
	struct eb_wwwauth_challenge c;
	struct eb_buf url, authz, token;
	char *flow, *hdr = NULL;
	int rc = -1;

	memset(&c, 0, sizeof(c));
	eb_buf_init(&url, 4096);
	eb_buf_init(&authz, 4096);
	eb_buf_init(&token, 4096);
	if ((flow = new_flow(req, t)) == NULL)
		goto out;
	if (t->auth_method == EB_AUTH_AS_WEB) {
		c.method = EB_WWWAUTH_METHOD_AS_WEB;
		if (eb_buf_printf(&url, "%s/t/%s/auth/%s", cfg->public_url,
		                  t->id, flow) == -1)
			goto out;
		c.url = eb_buf_str(&url);
	} else {
		c.method = EB_WWWAUTH_METHOD_OAUTH2;
		if (eb_buf_printf(&authz, "%s/t/%s/oauth2/authorize?flow=%s",
		                  cfg->public_url, t->id, flow) == -1 ||
		    eb_buf_printf(&token, "%s/t/%s/oauth2/token",
		                  cfg->public_url, t->id) == -1)
			goto out;
		c.authorization_url = eb_buf_str(&authz);
		c.token_url = eb_buf_str(&token);
		c.redirect_url = t->oauth2.redirect_uri;
		c.client_id = t->oauth2.client_id;
		c.scope = t->oauth2.scope;
	}
	if ((hdr = eb_wwwauth_build(&c)) == NULL)
		goto out;
	if (eb_resp_header(req, "WWW-Authenticate", hdr) == -1)
		goto out;
	if (t->esso != NULL) {
		eb_buf_reset(&url);
		if (eb_buf_printf(&url, "%s/t/%s/esso.json", cfg->public_url,
		                  t->id) == -1 ||
		    eb_resp_header(req, "X-Apple-MDM-ESSO", eb_buf_str(&url)) ==
		        -1)
			goto out;
	}
	eb_resp_header(req, "Cache-Control", "no-store");
	rc = eb_resp_text(req, 401, "authentication required\n");
out:
	eb_free(hdr);
	eb_free(flow);
	eb_buf_finish(&url);
	eb_buf_finish(&authz);
	eb_buf_finish(&token);
	return rc;
}

int
eb_handle_enroll(struct eb_request *req)
{
	const struct eb_tenant *t = eb_req_tenant(req);
	const char *authz = eb_req_header(req, "Authorization");

	if (authz != NULL)
		log_info("tenant %s: enrollment bearer not accepted", t->id);
	if (eb_enroll_challenge(req, t) == -1) {
		log_warnx("tenant %s: cannot start a login flow", t->id);
		eb_resp_header(req, "Retry-After", "5");
		eb_resp_text(req, 503, "temporarily unavailable\n");
	}
	return EB_HANDLED;
}
