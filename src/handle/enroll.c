/*
 * The discovery BaseURL: POST /t/{T}/enroll (PROTOCOL.md sections 2 and 4).
 *
 * The body is the device's CMS-signed MachineInfo, read within
 * max_body_bytes whatever the Content-Type says; a malformed one is a 400
 * (with or without a bearer), never a crash. Its PRODUCT names the model
 * family, which chooses the enrollment mode exactly as discovery did
 * (eb_tenant_mode_device). The tenant's restrictions (model families,
 * minimum OS versions) are judged on it at every POST: a refused device
 * gets 403 with a JSON code and message (apple/restrict.h) before anyone
 * signs in. Since anyone can self-sign a MachineInfo, a refusal at the
 * anonymous (first) POST is only counted (enrollbridge_enroll_refused_total)
 * and logged at most once a second; one at the authenticated (second) POST,
 * which names a person, is audited as "enroll.refused".
 *
 * Without a valid bearer the device gets 401 and exactly one
 * WWW-Authenticate line in Apple's form for the tenant's auth_method, plus
 * X-Apple-MDM-ESSO when the tenant has Enrollment SSO. For apple-as-web the
 * state of the sign-in lives in the URL path (/t/{T}/auth/{flow}), because
 * the device replaces the URL's query: the login flow holding the
 * MachineInfo and the mode is sealed into that path (handle/flow.h), so
 * that a challenge writes nothing, and it expires after tokens.login_ttl.
 * For apple-oauth2 the flow travels as a query item of the
 * authorization-url, which the device keeps.
 *
 * With a valid bearer: 200 application/x-apple-aspen-config, the tenant's
 * profile patched for this person and mode (profile.c), built on the work
 * queue since it may be fetched from the MDM.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "apple/machineinfo.h"
#include "apple/profile.h"
#include "apple/restrict.h"
#include "apple/wwwauth.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/env.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/workq.h"
#include "handle/flow.h"
#include "handle/handle.h"
#include "handle/idheaders.h"
#include "store/store.h"
#include "token/token.h"

#define EB_FETCH_HEADERS 16 /* bearer and identity headers */

/*
 * The login flow for this enrollment attempt, sealed into the challenge's
 * URL (handle/flow.h): nothing is stored before a valid callback. Its
 * text, or NULL (logged).
 */
static char *
new_flow(struct eb_request *req, const struct eb_tenant *t,
         const struct eb_challenge_ctx *ctx)
{
	struct eb_env *env = eb_req_env(req);
	const struct eb_machineinfo *mi = ctx ? ctx->mi : NULL;
	struct eb_store_flow f;
	char *text = NULL, *extra = NULL;
	int64_t now = eb_now(eb_req_env(req));

	memset(&f, 0, sizeof(f));
	f.tenant = t->id;
	f.kind = t->auth_method == EB_AUTH_OAUTH2
	             ? EB_STORE_FLOW_OAUTH2_AUTHORIZE
	             : EB_STORE_FLOW_APPLE_AS_WEB;
	f.created = now;
	f.expires = now + t->tokens.login_ttl;
	f.enrollment_mode = (char *)(uintptr_t)eb_mode_name(
	    ctx != NULL ? ctx->mode : t->default_mode);
	if (mi != NULL) {
		f.model_family = (char *)(uintptr_t)mi->model_family;
		f.product = mi->product;
		f.version = mi->version;
		f.language = mi->language;
		f.os_version = mi->os_version;
		f.udid = mi->udid;
		f.serial = mi->serial;
	}
	if (ctx != NULL && ctx->replaces != NULL) {
		/* re-authentication of an enrolled device */
		json_t *x = json_pack("{s:s}", "replaces", ctx->replaces);

		extra = x != NULL ? json_dumps(x, JSON_COMPACT) : NULL;
		json_decref(x);
		if (extra == NULL)
			return NULL;
		f.extra = extra;
	}
	(void)eb_flow_seal(env->seal_ring, &f, &text);
	eb_free(extra);
	return text;
}

int
eb_enroll_challenge(struct eb_request *req, const struct eb_tenant *t,
                    const struct eb_challenge_ctx *ctx)
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
	if ((flow = new_flow(req, t, ctx)) == NULL)
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
		/* a route's view (a re-authentication): its own document */
		eb_buf_reset(&url);
		if (eb_buf_printf(&url, "%s/t/%s/esso.json%s%s",
		                  cfg->public_url, t->id,
		                  t->route ? "?route=" : "",
		                  t->route ? t->route : "") == -1 ||
		    eb_resp_header(req, "X-Apple-MDM-ESSO", eb_buf_str(&url)) ==
		        -1)
			goto out;
		if (t->esso->developer_app_ids.n > 0) {
			eb_buf_reset(&url);
			if (eb_buf_printf(&url,
			                  "%s/t/%s/esso.json?developer=1%s%s",
			                  cfg->public_url, t->id,
			                  t->route ? "&route=" : "",
			                  t->route ? t->route : "") == -1 ||
			    eb_resp_header(req, "X-Apple-MDM-ESSO-Developer",
			                   eb_buf_str(&url)) == -1)
				goto out;
		}
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

static void
unavailable(struct eb_request *req, int status, const char *text)
{
	eb_resp_header(req, "Retry-After", "30");
	eb_resp_text(req, status, text);
}

/* The profile for a checked bearer; runs on the work queue. */
struct profile_job {
	struct eb_request *req;
	const struct eb_tenant *t;
	struct eb_bearer b;
	char *token;              /* as presented: the profile fetch's bearer */
	const char *model_family; /* static, or NULL */
	char *serial, *udid;      /* from the MachineInfo, or NULL */
};

static void
job_free(struct profile_job *j)
{
	eb_bearer_finish(&j->b);
	eb_free_secret_str(j->token);
	eb_free(j->serial);
	eb_free(j->udid);
	eb_free(j);
}

/* The header lines of a profile fetch, each allocated. */
struct fetch_headers {
	char *v[EB_FETCH_HEADERS + 1]; /* NULL-terminated */
	size_t n;
};

static int
header_add(void *arg, const char *name, const char *value)
{
	struct fetch_headers *h = arg;
	struct eb_buf b;

	if (h->n == EB_FETCH_HEADERS)
		return -1;
	eb_buf_init(&b, 64 * 1024);
	if (eb_buf_printf(&b, "%s: %s", name, value) == -1) {
		eb_buf_finish_secret(&b);
		return -1;
	}
	h->v[h->n++] = eb_buf_detach(&b, NULL);
	return 0;
}

/* "Authorization: Bearer TOKEN" as the first line. */
static int
bearer_line(struct fetch_headers *h, const char *token)
{
	struct eb_buf b;

	eb_buf_init(&b, EB_TOKEN_MAX_LEN + 64);
	if (eb_buf_printf(&b, "Authorization: Bearer %s", token) == -1) {
		eb_buf_finish_secret(&b);
		return -1;
	}
	h->v[h->n++] = eb_buf_detach(&b, NULL);
	return 0;
}

static void
fetch_headers_finish(struct fetch_headers *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		eb_free_secret_str(h->v[i]); /* the first holds the token */
	h->n = 0;
}

/*
 * What the profile fetch from mdm.profile.url carries about the person:
 * "Authorization: Bearer" with the token the device presented (one of our
 * access tokens: the MDM can verify it with our JWKS) and the identity
 * headers (handle/idheaders.h), the IdP login taken from the grant.
 */
static int
fetch_headers_build(struct profile_job *j, const struct eb_tenant *view,
                    const char *login, struct fetch_headers *h)
{
	struct eb_idheaders ih;

	memset(h, 0, sizeof(*h));
	if (bearer_line(h, j->token) == -1)
		return -1;
	memset(&ih, 0, sizeof(ih));
	ih.managed_apple_id = j->b.managed_apple_id;
	ih.login = login;
	ih.enrollment_mode = j->b.enrollment_mode;
	ih.grant_id = j->b.grant_id;
	ih.route = view->route;
	ih.model_family = j->model_family;
	ih.serial = j->serial;
	ih.udid = j->udid;
	ih.idp = json_object_get(j->b.claims, "idp");
	if (eb_idheaders_each(&ih, header_add, h) != 0) {
		fetch_headers_finish(h);
		return -1;
	}
	h->v[h->n] = NULL;
	return 0;
}

/* The grant's IdP login (lower-case, as SCIM matches it), or NULL. */
static char *
grant_login(struct eb_env *env, const char *grant_id)
{
	struct eb_store_grant g;
	char *login = NULL;

	memset(&g, 0, sizeof(g));
	if (eb_store_grant_get(env->store, grant_id, &g) == EB_STORE_OK &&
	    g.idp_login != NULL)
		login = eb_strdup(g.idp_login);
	eb_store_grant_finish(&g);
	return login;
}

static void
profile_job(void *arg)
{
	struct profile_job *j = arg;
	struct eb_request *req = j->req;
	struct eb_env *env = eb_req_env(req);
	const struct eb_config *cfg = eb_req_config(req);
	struct eb_profile_opts o;
	struct fetch_headers h;
	enum eb_profile_status st;
	enum eb_enroll_mode mode;
	const struct eb_tenant *view;
	const char *route =
	    json_string_value(json_object_get(j->b.claims, "route"));
	uint8_t *prof = NULL;
	size_t len = 0;
	int is_signed = 0;
	char err[256] = "", *login = NULL;

	memset(&h, 0, sizeof(h));
	/* the route the grant took at sign-in; gone from the configuration:
	 * refused (fail closed), never the tenant's own profile */
	if ((view = eb_tenant_route_view(j->t, route)) == NULL) {
		log_errx("tenant %s: grant %.8s takes route %s, which is no "
		         "longer configured: no profile (restore the route, "
		         "or revoke the grant)",
		         j->t->id, j->b.grant_id, route);
		unavailable(req, 503, "enrollment route not configured\n");
		goto out;
	}
	if (view->mdm.profile_url != NULL)
		login = grant_login(env, j->b.grant_id);
	if (view->mdm.profile_url != NULL &&
	    fetch_headers_build(j, view, login, &h) == -1) {
		unavailable(req, 503, "temporarily unavailable\n");
		goto out;
	}
	memset(&o, 0, sizeof(o));
	o.fetch_headers = h.n > 0 ? (const char *const *)h.v : NULL;
	o.public_url = cfg->public_url;
	o.cache = env->profiles;
	o.fetch_timeout = cfg->limits.upstream_timeout;
	o.fetch_max_bytes = cfg->limits.upstream_max_bytes;
	/* the grant's mode: fixed at sign-in, it never changes */
	mode = j->b.enrollment_mode != NULL &&
	               strcmp(j->b.enrollment_mode, "ADDE") == 0
	           ? EB_MODE_ADDE
	           : EB_MODE_BYOD;
	st = eb_profile_build(view, &o, j->b.managed_apple_id, mode, &prof,
	                      &len, &is_signed, err, sizeof(err));
	switch (st) {
	case EB_PROFILE_OK:
		eb_resp_header(req, "Cache-Control", "no-store");
		eb_resp_set_owned(req, 200, "application/x-apple-aspen-config",
		                  (char *)prof, len);
		prof = NULL;
		log_info("tenant %s: enrollment profile (%s, %s%s%s) for "
		         "grant %.8s",
		         j->t->id, eb_mode_name(mode),
		         is_signed ? "signed" : "unsigned",
		         view->route ? ", route " : "",
		         view->route ? view->route : "", j->b.grant_id);
		eb_handle_count(env, "enrollbridge_enrollments_total", j->t->id,
		                "mode", mode == EB_MODE_ADDE ? "adde" : "byod");
		break;
	case EB_PROFILE_ERR_UPSTREAM:
		log_warnx("tenant %s: no profile from the MDM: %s", j->t->id,
		          err);
		unavailable(req, 502, "the MDM did not provide a profile\n");
		break;
	case EB_PROFILE_ERR_CONFIG:
		log_errx("tenant %s: profile unusable: %s", j->t->id, err);
		eb_resp_text(req, 500, "enrollment profile misconfigured\n");
		break;
	default:
		log_warnx("tenant %s: profile: %s", j->t->id, err);
		unavailable(req, 503, "temporarily unavailable\n");
	}
out:
	eb_free(prof);
	eb_free(login);
	fetch_headers_finish(&h);
	job_free(j);
	eb_req_resume(req);
}

/* An audit event written on the work queue (the store may block). */
struct audit_job {
	struct eb_store *store;
	struct eb_store_audit ev;
};

static void
audit_job(void *arg)
{
	struct audit_job *j = arg;

	(void)eb_store_audit_add(j->store, &j->ev);
	eb_free(j->ev.tenant);
	eb_free(j->ev.subject);
	eb_free(j->ev.detail);
	eb_free(j);
}

/*
 * Record "enroll.refused" for a device the restrictions turned away at its
 * authenticated POST: b names the person (their grant).
 */
static void
audit_refusal(struct eb_request *req, const struct eb_tenant *t,
              const struct eb_machineinfo *mi,
              const struct eb_restrict_verdict *v, const struct eb_bearer *b)
{
	struct eb_env *env = eb_req_env(req);
	struct audit_job *j;
	json_t *d;

	if ((j = eb_calloc(1, sizeof(*j))) == NULL)
		return;
	d = json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:s?,s:s?}", "code", v->code,
	              "reason", v->reason, "product", mi->product, "os_version",
	              mi->os_version, "build", mi->version, "grant",
	              b->grant_id, "managed_apple_id", b->managed_apple_id);
	j->store = env->store;
	j->ev.ts = eb_now(eb_req_env(req));
	j->ev.event = "enroll.refused";
	j->ev.tenant = eb_strdup(t->id);
	j->ev.subject = eb_strdup(mi->serial ? mi->serial
	                          : mi->udid ? mi->udid
	                                     : mi->product);
	j->ev.detail = d != NULL ? json_dumps(d, JSON_COMPACT) : NULL;
	json_decref(d);
	if (j->ev.tenant == NULL || j->ev.subject == NULL ||
	    j->ev.detail == NULL ||
	    eb_workq_submit(env->workq, audit_job, j) != 0) {
		log_warnx("tenant %s: enrollment refusal not audited", t->id);
		eb_free(j->ev.tenant);
		eb_free(j->ev.subject);
		eb_free(j->ev.detail);
		eb_free(j);
	}
}

/*
 * Count, and maybe log, a refusal at the anonymous (first) POST: anyone can
 * send these (a self-signed MachineInfo), so they are counted (metrics) and
 * logged at most once a second of the context's clock (env->anon_refusals).
 */
static void
count_refusal(struct eb_request *req, const struct eb_tenant *t,
              const struct eb_restrict_verdict *v)
{
	struct eb_env *env = eb_req_env(req);
	struct eb_log_budget *lb = &env->anon_refusals;
	int64_t now = eb_now(env), last;
	char labels[256];
	unsigned long n;

	snprintf(labels, sizeof(labels), "tenant=\"%s\",code=\"%s\"", t->id,
	         v->code);
	eb_metrics_add(env->metrics, "enrollbridge_enroll_refused_total",
	               labels, 1);
	last = atomic_load(&lb->logged_sec);
	if (last == now ||
	    !atomic_compare_exchange_strong(&lb->logged_sec, &last, now)) {
		atomic_fetch_add(&lb->unlogged, 1);
		return;
	}
	n = atomic_exchange(&lb->unlogged, 0);
	log_info("tenant %s: enrollment refused before sign-in (%s): %s "
	         "(%lu more refusals not logged)",
	         t->id, v->code, v->reason, n);
}

/*
 * The tenant's restrictions on the device (apple/restrict.h): 1 when the
 * request was answered 403 (JSON), 0 when the device may go on. b is the
 * valid bearer of the POST, or NULL for an anonymous one: only a refusal
 * naming a person is audited.
 */
static int
restricted(struct eb_request *req, const struct eb_tenant *t,
           const struct eb_machineinfo *mi, const struct eb_bearer *b)
{
	struct eb_restrict_verdict v;
	char *body;
	size_t len;

	eb_restrict_device(t, mi, &v);
	if (v.allow)
		return 0;
	if (b != NULL) {
		log_info("tenant %s: enrollment of grant %s refused (%s): %s",
		         t->id, b->grant_id, v.code, v.reason);
		audit_refusal(req, t, mi, &v, b);
	} else
		count_refusal(req, t, &v);
	eb_resp_header(req, "Cache-Control", "no-store");
	if ((body = eb_restrict_body(&v, &len)) != NULL)
		/* on failure the server answers 500 (and has freed body) */
		(void)eb_resp_set_owned(req, 403, "application/json", body,
		                        len);
	return 1;
}

/* The token and the MachineInfo's device facts into j: 0 or -1. */
static int
job_take_device(struct profile_job *j, const char *token,
                const struct eb_machineinfo *mi)
{
	j->model_family = mi->model_family;
	if ((j->token = eb_strdup(token)) == NULL ||
	    (mi->serial != NULL &&
	     (j->serial = eb_strdup(mi->serial)) == NULL) ||
	    (mi->udid != NULL && (j->udid = eb_strdup(mi->udid)) == NULL))
		return -1;
	return 0;
}

/*
 * A POST with a bearer: EB_HANDLED or EB_ASYNC when answered (the
 * profile, a refusal by the restrictions, 503), or -1 when the bearer is
 * not valid (logged): then the request is an anonymous one.
 */
static int
enroll_bearer(struct eb_request *req, const struct eb_tenant *t,
              const char *token, const struct eb_machineinfo *mi)
{
	struct eb_env *env = eb_req_env(req);
	struct profile_job *j;
	int r;

	if ((j = eb_calloc(1, sizeof(*j))) == NULL)
		return EB_HANDLED;
	r = eb_bearer_check(env->signer, env->store, eb_req_config(req), t,
	                    token, eb_now(eb_req_env(req)), &j->b);
	if (r != EB_BEARER_OK) {
		eb_bearer_finish(&j->b);
		eb_free(j);
		if (r == EB_BEARER_ERROR) {
			unavailable(req, 503, "temporarily unavailable\n");
			return EB_HANDLED;
		}
		log_info("tenant %s: enrollment bearer refused: %s", t->id,
		         eb_bearer_result_name(r));
		return -1;
	}
	if (restricted(req, t, mi, &j->b)) {
		job_free(j);
		return EB_HANDLED;
	}
	if (job_take_device(j, token, mi) == -1) {
		job_free(j);
		unavailable(req, 503, "temporarily unavailable\n");
		return EB_HANDLED;
	}
	j->req = req;
	j->t = t;
	if (eb_workq_submit_keyed(env->workq, t->id, eb_workq_share(env->workq),
	                          profile_job, j) == 0)
		return EB_ASYNC;
	log_warnx("tenant %s: profile fetch refused: the upstream queue is "
	          "full",
	          t->id);
	job_free(j);
	unavailable(req, 503, "busy\n");
	return EB_HANDLED;
}

int
eb_handle_enroll(struct eb_request *req)
{
	const struct eb_tenant *t = eb_req_tenant(req);
	const char *token =
	    eb_bearer_from_header(eb_req_header(req, "Authorization"));
	struct eb_challenge_ctx ctx;
	struct eb_machineinfo mi;
	const void *body;
	char err[256];
	size_t len;
	int rc;

	memset(&ctx, 0, sizeof(ctx));
	body = eb_req_body(req, &len);
	if (eb_machineinfo_parse(&mi, body, len, t->mdm.device_ca, err,
	                         sizeof(err)) != 0) {
		log_info("tenant %s: enrollment request refused: %s", t->id,
		         err);
		eb_resp_text(req, 400, "malformed device information\n");
		return EB_HANDLED;
	}
	/* the restrictions are judged with the bearer, else before sign-in */
	rc = token != NULL ? enroll_bearer(req, t, token, &mi) : -1;
	if (rc == -1 && restricted(req, t, &mi, NULL))
		rc = EB_HANDLED;
	if (rc != -1) {
		eb_machineinfo_finish(&mi);
		return rc;
	}
	ctx.mi = &mi;
	/* the rule discovery used (core/config.h), on the signed PRODUCT */
	ctx.mode = eb_tenant_mode_device(t, mi.model_family, mi.os_version);
	if (eb_enroll_challenge(req, t, &ctx) == -1) {
		log_warnx("tenant %s: cannot start a login flow", t->id);
		unavailable(req, 503, "temporarily unavailable\n");
	}
	eb_machineinfo_finish(&mi);
	return EB_HANDLED;
}
