/*
 * The MDM proxy's head stage: run once a request's headers are in, before
 * any byte of its body is read (route table, eb_route.head). It checks the
 * bearer and sets how much body the request may send, so that a client
 * without a credential cannot make the server hold its body:
 *
 *   - a valid bearer: limits.max_body_bytes;
 *   - a genuine but stale token (expired, revoked, unknown to the store):
 *     a small limit, enough for the CheckOut such a token may still
 *     deliver (PROTOCOL.md 5);
 *   - no Authorization where the tenant allows the unauthenticated device
 *     channel: limits.max_body_bytes (the MDM checks the device);
 *   - anything else (no bearer, a forged or malformed one, another
 *     tenant's, a store failure): no body at all. The handler then runs
 *     at once on the headers alone; proxy.c judges the bearer before it
 *     looks at any body, so it answers 401 with the tenant's challenge
 *     (or 503), and the connection closes after the response.
 *
 * proxy.c checks the bearer again on the whole request (binding, CheckOut):
 * this stage only decides what the body may cost, so the two can never
 * answer differently.
 */
#include <stdint.h>
#include <time.h>

#include "core/config.h"
#include "core/env.h"
#include "core/log.h"
#include "handle/handle.h"
#include "handle/proxy_int.h"
#include "token/token.h"

#define STALE_BODY_BYTES (16 * 1024) /* a CheckOut is a few hundred bytes */

void
eb_proxy_head(struct eb_request *req)
{
	const struct eb_tenant *t = eb_req_tenant(req);
	struct eb_env *env = eb_req_env(req);
	const char *authz = eb_req_header(req, "Authorization");
	struct eb_bearer b;
	int r;

	if (t == NULL || t->mdm.upstream == NULL) {
		/* nothing is forwarded: the handler answers, bodiless */
		eb_req_set_body_limit(req, 0);
		return;
	}
	if (authz == NULL && t->mdm.allow_unauthenticated_device_channel)
		return;
	r = eb_bearer_check(env->signer, env->store, eb_req_config(req), t,
	                    eb_bearer_from_header(authz), (int64_t)time(NULL),
	                    &b);
	eb_bearer_finish(&b);
	switch (r) {
	case EB_BEARER_OK:
		return;
	case EB_BEARER_EXPIRED:
	case EB_BEARER_REVOKED:
	case EB_BEARER_UNKNOWN:
		eb_req_set_body_limit(req, STALE_BODY_BYTES);
		return;
	default:
		/* no bearer, a forged or malformed one, another tenant's, or
		 * a store failure: no body is read; the handler runs at once
		 * on the headers alone and answers as for any such request
		 * (the challenge, or 503), and the connection closes */
		eb_req_set_body_limit(req, 0);
		return;
	}
}
