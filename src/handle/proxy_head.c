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
 *   - no bearer, with a Content-Length of at most that small limit: the
 *     body is read, so that a message naming a retired enrollment gets
 *     the unenroll answer (proxy.c); a larger or chunked one is not;
 *   - anything else (no bearer and a larger or chunked body, a forged or
 *     malformed bearer, another tenant's, a store failure): no body at
 *     all. The handler then runs at once on the headers alone; proxy.c
 *     judges the bearer before it looks at any body, so it answers 401
 *     with the tenant's challenge (or 503), and the connection closes
 *     after the response.
 *
 * The verdict is kept with the request (eb_proxy_head_take), so proxy.c
 * judges the whole request (binding, CheckOut) on the same verdict without
 * checking the bearer a second time; this stage only decides what the
 * body may cost, so the two can never answer differently.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/env.h"
#include "core/mem.h"
#include "handle/handle.h"
#include "handle/proxy_int.h"
#include "token/token.h"

#define STALE_BODY_BYTES (16 * 1024) /* a CheckOut is a few hundred bytes */

/* The verdict of the head stage, kept as the request's data. */
struct head_verdict {
	int r; /* EB_BEARER_* */
	struct eb_bearer b;
};

static void
verdict_free(void *p)
{
	struct head_verdict *v = p;

	if (v == NULL)
		return;
	eb_bearer_finish(&v->b);
	eb_free(v);
}

int
eb_proxy_head_take(struct eb_request *req, struct eb_bearer *b)
{
	struct head_verdict *v = eb_req_data(req);
	int r;

	if (v == NULL)
		return -1;
	r = v->r;
	*b = v->b; /* moved: the request's copy is emptied */
	memset(&v->b, 0, sizeof(v->b));
	v->r = -1;
	return r;
}

/* A Content-Length of at most STALE_BODY_BYTES (not chunked): 1, else 0. */
static int
small_body(struct eb_request *req)
{
	const char *cl = eb_req_header(req, "Content-Length");
	size_t n = 0;

	if (cl == NULL || *cl == '\0' ||
	    eb_req_header(req, "Transfer-Encoding") != NULL)
		return 0;
	for (; *cl != '\0'; cl++) {
		if (*cl < '0' || *cl > '9')
			return 0;
		n = n * 10 + (size_t)(*cl - '0');
		if (n > STALE_BODY_BYTES)
			return 0;
	}
	return 1;
}

void
eb_proxy_head(struct eb_request *req)
{
	const struct eb_tenant *t = eb_req_tenant(req);
	struct eb_env *env = eb_req_env(req);
	const char *authz = eb_req_header(req, "Authorization");
	struct head_verdict *v;
	size_t limit = 0;

	if (t == NULL || !eb_proxy_has_upstream(t)) {
		/* nothing is forwarded: the handler answers, bodiless */
		eb_req_set_body_limit(req, 0);
		return;
	}
	if (authz == NULL && t->mdm.allow_unauthenticated_device_channel)
		return;
	if ((v = eb_calloc(1, sizeof(*v))) == NULL) {
		/* the handler checks the bearer itself, on no body */
		eb_req_set_body_limit(req, 0);
		return;
	}
	v->r = eb_bearer_check(env->signer, env->store, eb_req_config(req), t,
	                       eb_bearer_from_header(authz),
	                       eb_now(eb_req_env(req)), &v->b);
	switch (v->r) {
	case EB_BEARER_OK:
		limit = eb_req_body_limit(req);
		break;
	case EB_BEARER_EXPIRED:
	case EB_BEARER_REVOKED:
	case EB_BEARER_UNKNOWN:
		limit = STALE_BODY_BYTES;
		break;
	case EB_BEARER_MISSING:
		/* a device that lost its token may name a retired
		 * enrollment (proxy.c): a small announced body is read */
		limit = small_body(req) ? STALE_BODY_BYTES : 0;
		break;
	default:
		/* no bearer, a forged or malformed one, another tenant's, or
		 * a store failure: no body is read; the handler runs at once
		 * on the headers alone and answers as for any such request
		 * (the challenge, or 503), and the connection closes */
		limit = 0;
		break;
	}
	eb_req_set_body_limit(req, limit);
	eb_req_set_data(req, v, verdict_free);
}
