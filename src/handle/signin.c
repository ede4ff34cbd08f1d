/*
 * The upstream sign-in, as the browser of Apple's web authentication sees
 * it (PROTOCOL.md section 3, DESIGN.md):
 *
 *   GET /t/{T}/auth/{flow}?user-identifier=...   start: 302 to the IdP
 *   GET /t/{T}/oidc/callback?code=&state=&iss=    finish: 308 to the device
 *
 * The login flow was sealed into the URL when the device got its 401
 * challenge (flow.h). Start stores nothing: it seals what the callback
 * needs (the flow's mode and extra, the typed identifier, the nonce, the
 * PKCE verifier) into the state sent to the IdP, bound to this browser by
 * the hash of a fresh cookie, so a stolen callback URL is useless elsewhere
 * and an anonymous client opening sign-in URLs by the thousand costs no
 * storage. The callback opens the state, checks the cookie, lets the OIDC
 * core exchange the code and validate the ID token, records the state as
 * used (single use, after the IdP vouched for it), maps the person to their
 * Managed Apple Account, applies the access policy, and has grant/issue.h
 * create the grant whose token the device receives; this file speaks HTTP.
 *
 * Everything that talks to the IdP runs on the work queue: the request is
 * suspended meanwhile and no server thread waits on the network.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/env.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/rand.h"
#include "core/str.h"
#include "core/workq.h"
#include "grant/deprovision.h"
#include "grant/issue.h"
#include "grant/limit.h"
#include "handle/flow.h"
#include "handle/handle.h"
#include "handle/page.h"
#include "http/client.h"
#include "http/form.h"
#include "identity/identity.h"
#include "identity/mapping.h"
#include "identity/policy.h"
#include "identity/route.h"
#include "oidc/oidc.h"
#include "store/store.h"
#include "token/pkce.h"

#define COOKIE_NAME   "eb_login"
#define MAX_PARAM     4096 /* code, state, iss, error... */
#define MAX_TYPED     320
#define RETRY_AFTER   "30"
#define IDP_ERR_SHOW  64  /* bytes of the IdP's error code shown */
#define IDP_DESC_SHOW 300 /* bytes of its error_description shown */
#define IDP_DESC_LOG  512 /* and logged */
#define APPLE_CALLBACK                                                         \
	"apple-remotemanagement-user-login://authentication-results"

struct job {
	struct eb_request *req;
	const struct eb_tenant *t;
	int kind; /* enum eb_store_flow_kind of the flow being started */
	char *flow_id;
	char *typed;
	char *state, *code, *iss, *error, *error_desc;
	char *cookie;
	/* apple-oauth2: the device's authorization request */
	char *client_id, *redirect_uri, *device_state, *scope;
	char *code_challenge; /* RFC 7636 S256, or NULL */
};

static void
job_free(struct job *j)
{
	if (j == NULL)
		return;
	eb_free(j->flow_id);
	eb_free(j->typed);
	eb_free(j->state);
	eb_free_secret_str(j->code);
	eb_free(j->iss);
	eb_free(j->error);
	eb_free(j->error_desc);
	eb_free_secret_str(j->cookie);
	eb_free(j->client_id);
	eb_free(j->redirect_uri);
	eb_free(j->device_state);
	eb_free(j->scope);
	eb_free(j->code_challenge);
	eb_free(j);
}

/* A copy of a query value, or NULL when absent or over max bytes. */
static char *
param(struct eb_request *req, const char *name, size_t max, int *too_long)
{
	const char *v = eb_req_query(req, name);

	if (v == NULL)
		return NULL;
	if (strlen(v) > max) {
		*too_long = 1;
		return NULL;
	}
	return eb_strdup(v);
}

static void
send_page(struct eb_request *req, const struct eb_page *pg)
{
	if (pg->status >= 500)
		eb_resp_header(req, "Retry-After", RETRY_AFTER);
	eb_page_send(req, pg);
}

static void
page(struct eb_request *req, int status, enum eb_msg title, enum eb_msg msg)
{
	struct eb_page pg = {status, title, msg, EB_MSG_COUNT,
	                     NULL,   NULL,  NULL};

	send_page(req, &pg);
}

static void
expired_page(struct eb_request *req)
{
	page(req, 400, EB_MSG_EXPIRED_T, EB_MSG_EXPIRED);
}

static void
idp_failed_page(struct eb_request *req)
{
	page(req, 502, EB_MSG_IDP_FAILED_T, EB_MSG_IDP_FAILED);
}

/* n, or less so that s[0..n) does not end inside a UTF-8 sequence */
static size_t
utf8_cut(const char *s, size_t n)
{
	size_t i = n;

	if (strlen(s) <= n)
		return strlen(s);
	while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80)
		i--;
	return i;
}

/*
 * The IdP's error redirect (RFC 6749 4.1.2.1): the page says what the IdP
 * said (e.g. an Entra AADSTS code), bounded; the page escapes it.
 */
static void
idp_error_page(struct eb_request *req, const char *error, const char *desc)
{
	struct eb_page pg = {502,
	                     EB_MSG_IDP_FAILED_T,
	                     EB_MSG_IDP_REFUSED,
	                     EB_MSG_COUNT,
	                     NULL,
	                     NULL,
	                     NULL};
	struct eb_buf b;
	size_t n;

	if (strcmp(error, "access_denied") == 0) {
		pg.status = 403;
		pg.title = EB_MSG_NOT_COMPLETED_T;
		pg.msg = EB_MSG_IDP_CANCELLED;
	}
	eb_buf_init(&b, 2048);
	n = utf8_cut(error, IDP_ERR_SHOW);
	eb_buf_add(&b, error, n);
	if (desc != NULL && desc[0] != '\0') {
		eb_buf_addstr(&b, " - ");
		n = utf8_cut(desc, IDP_DESC_SHOW);
		eb_buf_add(&b, desc, n);
		if (n < strlen(desc))
			eb_buf_addstr(&b, "...");
	}
	pg.details = eb_buf_str(&b);
	send_page(req, &pg);
	eb_buf_finish(&b);
}

static char *
redirect_uri(const struct eb_config *cfg, const struct eb_tenant *t)
{
	struct eb_buf b;

	eb_buf_init(&b, 4096);
	if (eb_buf_printf(&b, "%s/t/%s/oidc/callback", cfg->public_url,
	                  t->id) == -1) {
		eb_buf_finish(&b);
		return NULL;
	}
	return eb_buf_detach(&b, NULL);
}

static void
count_error(struct eb_request *req, const char *code)
{
	eb_handle_count(eb_req_env(req), "enrollbridge_signin_failures_total",
	                eb_req_tenant(req)->id, "code", code);
}

/*
 * The eb_login cookie, set to value for max_age seconds, or cleared (value
 * "" and Max-Age=0). A clearing cookie must carry the Path and attributes
 * of the one it clears, or the browser keeps that one.
 */
static int
login_cookie(struct eb_request *req, const struct eb_tenant *t,
             const char *value, int max_age)
{
	const struct eb_config *cfg = eb_req_config(req);
	struct eb_buf c;
	int rc;

	eb_buf_init(&c, 1024);
	rc = eb_buf_printf(
	    &c,
	    "%s=%s; Path=/t/%s/; Max-Age=%d; HttpOnly; "
	    "SameSite=Lax%s",
	    COOKIE_NAME, value, t->id, max_age,
	    eb_str_has_prefix(cfg->public_url, "https:") ? "; Secure" : "");
	if (rc != -1)
		rc = eb_resp_header(req, "Set-Cookie", eb_buf_str(&c));
	eb_buf_finish_secret(&c);
	return rc == -1 ? -1 : 0;
}

/* ---- start ---- */

struct state_arg {
	const struct eb_seal_ring *ring;
	const struct eb_store_flow *s; /* all but the nonce and verifier */
};

/* eb_oidc_state_fn: the sign-in's state, sealed with the request's nonce
 * and PKCE verifier (handle/flow.h). */
static char *
seal_state(void *arg, const char *nonce, const char *verifier)
{
	const struct state_arg *a = arg;
	struct eb_store_flow s = *a->s; /* borrowed members: not finished */
	char *out = NULL;

	s.upstream_nonce = (char *)(uintptr_t)nonce;
	s.pkce_verifier = (uint8_t *)(uintptr_t)verifier;
	s.pkce_verifier_len = strlen(verifier);
	if (eb_flow_state_seal(a->ring, &s, &out) != 0)
		return NULL;
	return out;
}

/*
 * Start a sign-in: open the challenge's flow, and send the browser to the
 * IdP with a state that carries, sealed, all the callback needs. Nothing is
 * stored: opening a sign-in URL costs an anonymous client's target only
 * CPU, and each opening (another browser, a reload) is its own attempt
 * that leaves the others intact.
 */
static void
start_job(void *arg)
{
	struct job *j = arg;
	struct eb_request *req = j->req;
	struct eb_env *env = eb_req_env(req);
	const struct eb_config *cfg = eb_req_config(req);
	const struct eb_tenant *t = j->t;
	const struct eb_oidc_meta *meta = NULL;
	struct eb_oidc_request oreq;
	struct eb_oidc_error oerr;
	struct eb_store_flow f, s;
	struct state_arg sa;
	char hash[EB_STORE_HASH_HEXLEN + 1], *cookie = NULL, *ruri = NULL;
	char *hint = NULL, *local = NULL, *domain = NULL;
	int64_t now = eb_now(eb_req_env(req));
	int rc;

	memset(&oreq, 0, sizeof(oreq));
	memset(&oerr, 0, sizeof(oerr));
	memset(&f, 0, sizeof(f));
	memset(&s, 0, sizeof(s));
	/* the flow the challenge sealed into the URL (handle/flow.h) */
	rc = eb_flow_open(env->seal_ring, t->id, j->flow_id, now, &f);
	if (rc == EB_FLOW_OPEN_OK && f.kind != j->kind)
		rc = EB_FLOW_OPEN_BAD;
	if (rc != EB_FLOW_OPEN_OK) {
		log_ev(EB_LOG_INFO,
		       EB_EV("signin.start", "flow_unusable", NULL),
		       "sign-in start for %s flow",
		       rc == EB_FLOW_OPEN_EXPIRED ? "an expired"
		       : rc == EB_FLOW_OPEN_ERROR ? "an unreadable (out of "
		                                    "memory)"
		                                  : "an unknown");
		count_error(req, rc == EB_FLOW_OPEN_EXPIRED ? "flow_expired"
		                                            : "flow_unknown");
		expired_page(req);
		goto out;
	}
	if (eb_oidc_metadata(env->oidc, t->idp.issuer, &meta, &oerr) !=
	    EB_OIDC_OK) {
		log_ev(EB_LOG_WARN, EB_EV("signin.failed", oerr.code, NULL),
		       "IdP metadata unavailable: %s (%s)", oerr.code,
		       oerr.reason);
		count_error(req, oerr.code[0] ? oerr.code : "metadata");
		idp_failed_page(req);
		goto out;
	}
	/* the typed identifier is only a hint upstream: pass it when sane */
	if (j->typed != NULL &&
	    eb_str_split_identifier(j->typed, &local, &domain) == 0)
		hint = j->typed;
	/* what the callback needs (not the MachineInfo), bound to this
	 * browser by the hash of a fresh cookie; its expiry the flow's */
	s.tenant = (char *)(uintptr_t)t->id;
	s.kind = f.kind;
	s.created = now;
	s.expires = f.expires;
	s.enrollment_mode = f.enrollment_mode;
	s.extra = f.extra;
	s.user_identifier = j->typed;
	s.browser_binding = hash;
	/* the device's client and redirect URI are the tenant's (authorize
	 * checked them), and so is the scope when it asked for none: only
	 * what differs travels, to keep the state short */
	if (j->kind == EB_STORE_FLOW_OAUTH2_AUTHORIZE) {
		s.device_state = j->device_state;
		s.code_challenge = j->code_challenge; /* RFC 7636 */
		if (t->oauth2.scope == NULL ||
		    strcmp(j->scope, t->oauth2.scope) != 0)
			s.scope = j->scope;
	}
	sa.ring = env->seal_ring;
	sa.s = &s;
	if ((ruri = redirect_uri(cfg, t)) == NULL ||
	    (cookie = eb_rand_token(32)) == NULL ||
	    eb_store_hash_token(cookie, strlen(cookie), hash) != 0 ||
	    eb_oidc_begin_state(env->oidc, t, meta, ruri, hint, seal_state, &sa,
	                        &oreq) != 0) {
		log_warnx("tenant %s: cannot build the upstream request",
		          t->id);
		idp_failed_page(req);
		goto out;
	}
	if (eb_resp_header(req, "Location", oreq.url) == -1 ||
	    login_cookie(req, t, cookie, t->tokens.login_ttl) == -1 ||
	    eb_resp_header(req, "Cache-Control", "no-store") == -1 ||
	    eb_resp_set_static(req, 302, "text/plain; charset=utf-8",
	                       "redirecting to your organization\n", 33) == -1)
		goto out;
	log_ev(EB_LOG_INFO, EB_EV("signin.start", NULL, NULL),
	       "sign-in started, upstream %s", meta->authorization_endpoint);
out:
	eb_free_secret_str(cookie);
	eb_free(ruri);
	eb_free(local);
	eb_free(domain);
	eb_oidc_request_finish(&oreq);
	eb_store_flow_finish(&f);
	if (meta != NULL)
		eb_oidc_meta_release(env->oidc, meta);
	job_free(j);
	eb_req_resume(req);
}

static int
submit(struct eb_request *req, struct job *j, eb_work_fn fn)
{
	struct eb_env *env = eb_req_env(req);
	int rc;

	rc = eb_workq_submit_keyed(env->workq, j->t->id,
	                           eb_workq_share(env->workq), fn, j);
	if (rc == 0)
		return EB_ASYNC;
	log_ev(EB_LOG_WARN, EB_EV("signin.failed", "queue_full", NULL),
	       "sign-in queue full");
	job_free(j);
	page(req, 503, EB_MSG_BUSY_T, EB_MSG_BUSY);
	return EB_HANDLED;
}

int
eb_handle_auth_start(struct eb_request *req)
{
	const struct eb_tenant *t = eb_req_tenant(req);
	const char *flow = eb_req_param(req, "flow");
	struct job *j;
	int too_long = 0;

	if (strlen(flow) > EB_FLOW_MAX_LEN) {
		expired_page(req);
		return EB_HANDLED;
	}
	if ((j = eb_calloc(1, sizeof(*j))) == NULL)
		return EB_HANDLED;
	j->req = req;
	j->t = t;
	j->kind = EB_STORE_FLOW_APPLE_AS_WEB;
	j->flow_id = eb_strdup(flow);
	j->typed = param(req, "user-identifier", MAX_TYPED, &too_long);
	if (j->typed != NULL && !eb_str_is_utf8(j->typed, strlen(j->typed))) {
		log_ev(EB_LOG_INFO,
		       EB_EV("signin.refused", "user_identifier", NULL),
		       "sign-in refused: user-identifier is not UTF-8");
		job_free(j);
		page(req, 400, EB_MSG_NOT_STARTED_T, EB_MSG_TYPED_INVALID);
		return EB_HANDLED;
	}
	if (j->flow_id == NULL) {
		job_free(j);
		return EB_HANDLED;
	}
	return submit(req, j, start_job);
}

/* ---- callback ---- */

/* A refusal's short form in the catalogue, by its verdict code. */
static void
deny_msgs(const char *code, struct eb_page *pg)
{
	static const struct {
		const char *code;
		enum eb_msg msg, hint;
	} map[] = {
	    {"device_limit", EB_MSG_DENY_DEVICE_LIMIT,
	     EB_MSG_HINT_DEVICE_LIMIT},
	    {"group_required", EB_MSG_DENY_GROUPS, EB_MSG_HINT_ADMIN},
	    {"groups_overage", EB_MSG_DENY_GROUPS, EB_MSG_HINT_ADMIN},
	    {"groups_unknown", EB_MSG_DENY_GROUPS, EB_MSG_HINT_ADMIN},
	    {"domain_not_allowed", EB_MSG_DENY_DOMAIN,
	     EB_MSG_HINT_WORK_ACCOUNT},
	    {"no_login", EB_MSG_DENY_ACCOUNT, EB_MSG_HINT_ADMIN},
	    {"claim_missing", EB_MSG_DENY_ACCOUNT, EB_MSG_HINT_ADMIN},
	    {"claim_invalid", EB_MSG_DENY_ACCOUNT, EB_MSG_HINT_ADMIN},
	    {"template_claim_missing", EB_MSG_DENY_ACCOUNT, EB_MSG_HINT_ADMIN},
	    {"address_invalid", EB_MSG_DENY_ACCOUNT, EB_MSG_HINT_ADMIN},
	    {"override_invalid", EB_MSG_DENY_ACCOUNT, EB_MSG_HINT_ADMIN},
	    {"domain_not_managed", EB_MSG_DENY_ACCOUNT,
	     EB_MSG_HINT_WORK_ACCOUNT},
	};
	size_t i;

	pg->msg = EB_MSG_DENY_OTHER;
	pg->hint = EB_MSG_HINT_ADMIN;
	for (i = 0; i < sizeof(map) / sizeof(*map); i++)
		if (strcmp(map[i].code, code) == 0) {
			pg->msg = map[i].msg;
			pg->hint = map[i].hint;
		}
}

/*
 * In English the policy's own words ("Reason. Hint", with numbers and
 * domains); in other languages the catalogue's short form for its code.
 * The tenant's deny_message is shown as written in every language.
 */
static void
deny_page(struct eb_request *req, const struct eb_tenant *t,
          const struct eb_policy_verdict *v)
{
	struct eb_page pg = {
	    403, EB_MSG_DENIED_T, EB_MSG_COUNT, EB_MSG_COUNT, NULL, NULL, NULL};
	struct eb_buf b;
	size_t n;

	if (t->access.deny_message != NULL && t->access.deny_message[0])
		pg.extra = t->access.deny_message;
	eb_buf_init(&b, 2048);
	if (eb_page_lang(req) != EB_LANG_EN) {
		deny_msgs(v->code, &pg);
	} else {
		/* sentences, whatever case the reason came in */
		eb_buf_addstr(&b, v->reason);
		if (b.len > 0 && b.data[0] >= 'a' && b.data[0] <= 'z')
			b.data[0] = (char)(b.data[0] - 'a' + 'A');
		n = b.len;
		if (n > 0 && strchr(".!?", b.data[n - 1]) == NULL)
			eb_buf_addc(&b, '.');
		if (v->hint[0] != '\0') {
			eb_buf_addc(&b, ' ');
			eb_buf_addstr(&b, v->hint);
		}
		pg.text = eb_buf_str(&b);
	}
	send_page(req, &pg);
	eb_buf_finish(&b);
}

/* *dst, when the state did not carry it: a copy of the tenant's value. */
static int
fill(char **dst, const char *value)
{
	if (*dst != NULL || value == NULL)
		return 0;
	return (*dst = eb_strdup(value)) == NULL ? -1 : 0;
}

/*
 * Record that the state f (f->id, the hash of its text) has been used: a
 * small row keyed by a random id whose upstream_state is that hash, unique
 * in the store, kept until the state expires. CONFLICT when another
 * callback recorded it first, on any replica.
 */
static int
mark_used(struct eb_env *env, const struct eb_tenant *t,
          const struct eb_store_flow *f, int64_t now)
{
	struct eb_store_flow u;
	int rc;

	memset(&u, 0, sizeof(u));
	if ((u.id = eb_rand_token(18)) == NULL)
		return EB_STORE_ERROR;
	u.tenant = (char *)(uintptr_t)t->id;
	u.kind = f->kind;
	u.created = now;
	u.expires = f->expires;
	u.upstream_state = f->id;
	rc = eb_store_flow_put(env->store, &u);
	eb_free(u.id);
	return rc;
}

/*
 * A person the tenant's SCIM client deactivated may not enroll until it
 * reactivates them (their IdP account may well still sign in: Entra
 * deactivates a user taken out of the app's scope). 0 with v set to deny
 * ("scim_inactive") or left as it was; -1 when the store cannot say.
 */
static int
scim_refuses(struct eb_env *env, const struct eb_tenant *t,
             const struct eb_identity *id, struct eb_policy_verdict *v)
{
	int rc;

	if (t->scim == NULL)
		return 0;
	rc = eb_grant_scim_inactive(env->store, t, eb_identity_login(id),
	                            id->oid != NULL ? id->oid : id->subject);
	if (rc == 1)
		eb_policy_deny(
		    v, "scim_inactive",
		    "Ask your IT department to reactivate your "
		    "account.",
		    "Your organization has deactivated your account.");
	return rc < 0 ? -1 : 0;
}

/*
 * enrollbridge_signins_total{result}: what the callback's answer says,
 * from a small fixed set (the failure's code is in signin_failures_total).
 */
static void
count_signin(struct eb_request *req, const struct eb_tenant *t)
{
	int st = eb_resp_status(req);
	const char *result = st >= 200 && st < 400 ? "success"
	                     : st == 403           ? "denied"
	                     : st == 400           ? "expired"
	                     : st == 502           ? "idp_error"
	                                           : "unavailable";

	eb_handle_count(eb_req_env(req), "enrollbridge_signins_total", t->id,
	                "result", result);
}

static void
callback_job(void *arg)
{
	struct job *j = arg;
	struct eb_request *req = j->req;
	struct eb_env *env = eb_req_env(req);
	const struct eb_config *cfg = eb_req_config(req);
	const struct eb_tenant *t = j->t;
	struct eb_store_flow f;
	struct eb_identity id;
	struct eb_oidc_tokens tok;
	struct eb_oidc_error oerr;
	struct eb_mapping_result map;
	struct eb_policy_verdict v;
	struct eb_grant_issue_in gi;
	char hash[EB_STORE_HASH_HEXLEN + 1], *ruri = NULL, *token = NULL;
	struct eb_store_flow used;
	struct eb_buf loc;
	int64_t now = eb_now(eb_req_env(req));
	char pd[EB_LOG_PD_LEN];
	int rc;

	memset(&f, 0, sizeof(f));
	memset(&tok, 0, sizeof(tok));
	memset(&oerr, 0, sizeof(oerr));
	memset(&map, 0, sizeof(map));
	memset(&v, 0, sizeof(v));
	eb_identity_init(&id);
	eb_buf_init(&loc, 8192);

	/*
	 * Open the state (ours, this tenant's, not expired), then check the
	 * browser: a callback from a browser that did not start this sign-in
	 * is refused before anything else. The IdP's single-use code and the
	 * nonce stop replays; the state is also marked used once the code is
	 * exchanged (mark_used), so a flow is used once fleet-wide.
	 */
	rc = j->state == NULL
	         ? EB_FLOW_OPEN_BAD
	         : eb_flow_state_open(env->seal_ring, t->id, j->state, now, &f);
	if (rc != EB_FLOW_OPEN_OK) {
		log_ev(EB_LOG_INFO,
		       EB_EV("signin.refused", "state_unusable", NULL),
		       "callback with %s state",
		       rc == EB_FLOW_OPEN_EXPIRED ? "an expired"
		       : rc == EB_FLOW_OPEN_ERROR
		           ? "an unreadable (out of memory)"
		           : "an unknown, altered or another tenant's");
		count_error(req, rc == EB_FLOW_OPEN_EXPIRED ? "state_expired"
		                                            : "state_unknown");
		expired_page(req);
		goto out;
	}
	if (f.kind == EB_STORE_FLOW_OAUTH2_AUTHORIZE &&
	    (fill(&f.client_id, t->oauth2.client_id) != 0 ||
	     fill(&f.redirect_uri, t->oauth2.redirect_uri) != 0 ||
	     fill(&f.scope, t->oauth2.scope) != 0)) {
		page(req, 503, EB_MSG_UNAVAILABLE_T, EB_MSG_UNAVAILABLE);
		goto out;
	}
	if (j->cookie == NULL ||
	    eb_store_hash_token(j->cookie, strlen(j->cookie), hash) != 0 ||
	    !eb_str_ct_eq(hash, strlen(hash), f.browser_binding,
	                  strlen(f.browser_binding))) {
		log_ev(EB_LOG_WARN,
		       EB_EV("signin.refused", "browser_mismatch", NULL),
		       "callback from a browser that did not start this "
		       "sign-in (cookie %s); refused",
		       j->cookie ? "mismatch" : "missing");
		count_error(req, "browser_mismatch");
		expired_page(req);
		goto out;
	}
	/* a replay of a finished callback: refused without asking the IdP */
	memset(&used, 0, sizeof(used));
	rc = eb_store_flow_get(env->store, EB_STORE_FLOW_BY_STATE, f.id, now,
	                       &used);
	eb_store_flow_finish(&used);
	if (rc == EB_STORE_OK || rc == EB_STORE_EXPIRED) {
		log_ev(EB_LOG_INFO,
		       EB_EV("signin.refused", "state_unknown", NULL),
		       "callback with a used state");
		count_error(req, "state_unknown");
		expired_page(req);
		goto out;
	}
	if (rc != EB_STORE_NOT_FOUND) {
		page(req, 503, EB_MSG_UNAVAILABLE_T, EB_MSG_UNAVAILABLE);
		goto out;
	}
	if (j->error != NULL) {
		log_ev(EB_LOG_INFO, EB_EV("signin.failed", "idp_error", NULL),
		       "IdP answered error=%.64s error_description=%.*s",
		       j->error, IDP_DESC_LOG,
		       j->error_desc != NULL ? j->error_desc : "");
		count_error(req, "idp_error");
		idp_error_page(req, j->error, j->error_desc);
		goto out;
	}
	if (j->code == NULL) {
		count_error(req, "code_missing");
		idp_failed_page(req);
		goto out;
	}
	if ((ruri = redirect_uri(cfg, t)) == NULL)
		goto out;
	rc = eb_oidc_finish(env->oidc, t, ruri, j->code,
	                    (const char *)f.pkce_verifier, f.upstream_nonce,
	                    j->iss, &id, &tok, &oerr);
	if (rc != EB_OIDC_OK) {
		log_ev(EB_LOG_WARN, EB_EV("signin.failed", oerr.code, NULL),
		       "sign-in failed: %s: %s", oerr.code, oerr.reason);
		count_error(req, oerr.code[0] ? oerr.code : "oidc");
		if (oerr.kind == EB_OIDC_E_POLICY) {
			/* the provider's reason is written for the person */
			eb_policy_deny(
			    &v, oerr.code,
			    "Contact your IT department if you think "
			    "this is wrong.",
			    "%s",
			    oerr.reason[0] ? oerr.reason
			                   : "Your account is not allowed "
			                     "to enroll devices here");
			eb_policy_audit(env->store, t, id.subject ? &id : NULL,
			                NULL, f.user_identifier, &v, now);
			deny_page(req, t, &v);
		} else if (oerr.kind == EB_OIDC_E_DENIED)
			page(req, 403, EB_MSG_NOT_COMPLETED_T,
			     EB_MSG_IDP_DENIED);
		else
			idp_failed_page(req);
		goto out;
	}
	/* the IdP vouched for this sign-in: from now on its state is used */
	if ((rc = mark_used(env, t, &f, now)) != EB_STORE_OK) {
		if (rc == EB_STORE_CONFLICT) {
			log_ev(EB_LOG_WARN,
			       EB_EV("signin.refused", "state_replayed", NULL),
			       "a state was used twice; the second callback "
			       "is refused");
			count_error(req, "state_unknown");
			expired_page(req);
		} else
			page(req, 503, EB_MSG_UNAVAILABLE_T,
			     EB_MSG_UNAVAILABLE);
		goto out;
	}
	rc =
	    eb_mapping_resolve(t, env->store, &id, f.user_identifier, &map, &v);
	if (rc == EB_MAPPING_FAIL) {
		page(req, 503, EB_MSG_UNAVAILABLE_T, EB_MSG_UNAVAILABLE);
		goto out;
	}
	if (rc == EB_MAPPING_OK)
		eb_policy_check(t, &id, &map, &v);
	if (v.allow && scim_refuses(env, t, &id, &v) != 0) {
		page(req, 503, EB_MSG_UNAVAILABLE_T, EB_MSG_UNAVAILABLE);
		goto out;
	}
	/* restrictions.max_devices_per_user, after the policy */
	if (v.allow &&
	    eb_grant_limit_check(env->store, t, &f, map.managed_apple_id, now,
	                         &v) == -1) {
		page(req, 503, EB_MSG_UNAVAILABLE_T, EB_MSG_UNAVAILABLE);
		goto out;
	}
	eb_policy_audit(env->store, t, &id, rc == EB_MAPPING_OK ? &map : NULL,
	                f.user_identifier, &v, now);
	if (!v.allow) {
		log_ev(EB_LOG_INFO, EB_EV("signin.denied", v.code, NULL),
		       "enrollment refused: %s", v.code);
		count_error(req, v.code);
		deny_page(req, t, &v);
		goto out;
	}
	gi.t = t;
	gi.f = &f;
	gi.id = &id;
	gi.map = &map;
	gi.tok = &tok;
	if ((gi.route = eb_route_match(t, &id)) != NULL)
		log_info("%s takes route %s",
		         eb_log_pd(map.managed_apple_id, pd), gi.route->name);
	gi.now = eb_now(env); /* after the IdP's answer */
	if ((token = eb_grant_issue(env, cfg, &gi)) == NULL) {
		log_ev(EB_LOG_WARN, EB_EV("signin.failed", "store", NULL),
		       "cannot store the grant");
		page(req, 503, EB_MSG_UNAVAILABLE_T, EB_MSG_UNAVAILABLE);
		goto out;
	}
	if (f.kind == EB_STORE_FLOW_OAUTH2_AUTHORIZE) {
		/* token is the authorization code; RFC 6749 4.1.2 */
		if (eb_buf_printf(&loc, "%s%scode=", f.redirect_uri,
		                  strchr(f.redirect_uri, '?') ? "&" : "?") ==
		        -1 ||
		    eb_http_urlencode(&loc, token) == -1 ||
		    (f.device_state != NULL &&
		     (eb_buf_addstr(&loc, "&state=") == -1 ||
		      eb_http_urlencode(&loc, f.device_state) == -1)))
			goto out;
	} else if (eb_buf_printf(&loc, "%s?access-token=%s", APPLE_CALLBACK,
	                         token) == -1)
		goto out;
	if (eb_resp_header(req, "Location", eb_buf_str(&loc)) == -1)
		goto out;
	eb_resp_header(req, "Cache-Control", "no-store");
	login_cookie(req, t, "", 0);
	eb_resp_set_static(req, 308, "text/plain; charset=utf-8", "signed in\n",
	                   10);
	log_ev(EB_LOG_INFO, EB_EV("signin.ok", NULL, NULL), "signed in as %s",
	       eb_log_pd(map.managed_apple_id, pd));
out:
	count_signin(req, t);
	eb_buf_finish_secret(&loc);
	eb_free_secret_str(token);
	eb_free(ruri);
	eb_mapping_result_finish(&map);
	eb_oidc_tokens_finish(&tok);
	eb_identity_finish(&id);
	eb_store_flow_finish(&f);
	job_free(j);
	eb_req_resume(req);
}

int
eb_handle_oidc_callback(struct eb_request *req)
{
	const char *raw = eb_req_raw_query(req);
	struct eb_form q;
	struct job *j;
	char err[128];
	size_t i;

	if (eb_form_parse(raw, strlen(raw), &q, err, sizeof(err)) == -1) {
		log_ev(EB_LOG_INFO,
		       EB_EV("signin.refused", "callback_malformed", NULL),
		       "callback refused: %s", err);
		count_error(req, "callback_malformed");
		page(req, 400, EB_MSG_BAD_REQUEST_T, EB_MSG_MALFORMED);
		return EB_HANDLED;
	}
	for (i = 0; i < q.n; i++)
		if (strlen(q.v[i].value) > MAX_PARAM) {
			eb_form_finish(&q);
			page(req, 400, EB_MSG_BAD_REQUEST_T, EB_MSG_MALFORMED);
			return EB_HANDLED;
		}
	if ((j = eb_calloc(1, sizeof(*j))) == NULL) {
		eb_form_finish(&q);
		return EB_HANDLED;
	}
	j->req = req;
	j->t = eb_req_tenant(req);
	j->state = eb_strdup(eb_form_get(&q, "state"));
	j->code = eb_strdup(eb_form_get(&q, "code"));
	j->iss = eb_strdup(eb_form_get(&q, "iss"));
	j->error = eb_strdup(eb_form_get(&q, "error"));
	j->error_desc = eb_strdup(eb_form_get(&q, "error_description"));
	eb_form_finish(&q);
	if (eb_req_cookie(req, COOKIE_NAME) != NULL)
		j->cookie = eb_strndup(eb_req_cookie(req, COOKIE_NAME), 256);
	return submit(req, j, callback_job);
}

/* ---- apple-oauth2: the device's authorization request ---- */

static void
authorize_error(struct eb_request *req, enum eb_msg msg)
{
	/* never redirect when client or redirect URI is wrong (RFC 6749
	 * 4.1.2.1): the error is shown here */
	page(req, 400, EB_MSG_INVALID_REQUEST_T, msg);
}

int
eb_oauth2_error_uri(struct eb_buf *b, const char *ruri, const char *error,
                    const char *desc, const char *state)
{
	(void)eb_buf_printf(b, "%s%serror=%s", ruri,
	                    strchr(ruri, '?') != NULL ? "&" : "?", error);
	if (desc != NULL) {
		(void)eb_buf_addstr(b, "&error_description=");
		(void)eb_http_urlencode(b, desc);
	}
	if (state != NULL) {
		(void)eb_buf_addstr(b, "&state=");
		(void)eb_http_urlencode(b, state);
	}
	return eb_buf_check(b);
}

int
eb_handle_oauth2_authorize(struct eb_request *req)
{
	const struct eb_tenant *t = eb_req_tenant(req);
	const char *client_id = eb_req_query(req, "client_id");
	const char *ruri = eb_req_query(req, "redirect_uri");
	const char *rtype = eb_req_query(req, "response_type");
	const char *state = eb_req_query(req, "state");
	const char *scope = eb_req_query(req, "scope");
	const char *flow = eb_req_query(req, "flow");
	const char *hint = eb_req_query(req, "login_hint");
	const char *challenge = eb_req_query(req, "code_challenge");
	const char *pkce_why = NULL;
	struct job *j;
	int pkce_bad;

	if (t->auth_method != EB_AUTH_OAUTH2) {
		eb_resp_text(req, 404, "not found\n");
		return EB_HANDLED;
	}
	if (client_id == NULL || strcmp(client_id, t->oauth2.client_id) != 0) {
		log_ev(EB_LOG_INFO,
		       EB_EV("authorize.refused", "client_id", NULL),
		       "authorize: unknown client_id");
		authorize_error(req, EB_MSG_UNKNOWN_CLIENT);
		return EB_HANDLED;
	}
	if (ruri == NULL || strcmp(ruri, t->oauth2.redirect_uri) != 0) {
		log_ev(EB_LOG_INFO,
		       EB_EV("authorize.refused", "redirect_uri", NULL),
		       "authorize: redirect_uri not registered");
		authorize_error(req, EB_MSG_BAD_REDIRECT);
		return EB_HANDLED;
	}
	/* PKCE when sent: S256 only (token/pkce.h) */
	pkce_bad = eb_pkce_check_request(
	               challenge, eb_req_query(req, "code_challenge_method"),
	               &pkce_why) != 0;
	if (pkce_bad)
		log_ev(EB_LOG_INFO, EB_EV("authorize.refused", "pkce", NULL),
		       "authorize: PKCE refused: %s", pkce_why);
	if (rtype == NULL || strcmp(rtype, "code") != 0 || pkce_bad ||
	    (state != NULL && strlen(state) > 512) ||
	    (scope != NULL && strlen(scope) > 512) || flow == NULL ||
	    (hint != NULL && !eb_str_is_utf8(hint, strlen(hint))) ||
	    strlen(flow) > EB_FLOW_MAX_LEN) {
		struct eb_buf b;

		/* the redirect URI is the registered one: errors go back */
		eb_buf_init(&b, EB_OAUTH2_ERROR_URI_MAX);
		if (eb_oauth2_error_uri(
		        &b, ruri,
		        rtype == NULL || strcmp(rtype, "code") != 0
		            ? "unsupported_response_type"
		            : "invalid_request",
		        pkce_bad ? pkce_why : NULL,
		        state != NULL && strlen(state) <= 512 ? state : NULL) ==
		    -1) {
			/* too long to carry the state back: not a cut URL */
			eb_buf_finish(&b);
			authorize_error(req, EB_MSG_BAD_REDIRECT);
			return EB_HANDLED;
		}
		eb_resp_header(req, "Location", eb_buf_str(&b));
		eb_resp_header(req, "Cache-Control", "no-store");
		eb_resp_set_static(req, 302, "text/plain; charset=utf-8",
		                   "error\n", 6);
		eb_buf_finish(&b);
		return EB_HANDLED;
	}
	if ((j = eb_calloc(1, sizeof(*j))) == NULL)
		return EB_HANDLED;
	j->req = req;
	j->t = t;
	j->kind = EB_STORE_FLOW_OAUTH2_AUTHORIZE;
	j->flow_id = eb_strdup(flow);
	j->client_id = eb_strdup(client_id);
	j->redirect_uri = eb_strdup(ruri);
	j->device_state = state ? eb_strdup(state) : NULL;
	j->scope = eb_strdup(scope ? scope : t->oauth2.scope);
	if (challenge != NULL &&
	    (j->code_challenge = eb_strdup(challenge)) == NULL) {
		job_free(j);
		return EB_HANDLED;
	}
	if (hint != NULL && strlen(hint) <= MAX_TYPED)
		j->typed = eb_strdup(hint);
	if (j->flow_id == NULL || j->client_id == NULL ||
	    j->redirect_uri == NULL || j->scope == NULL) {
		job_free(j);
		return EB_HANDLED;
	}
	return submit(req, j, start_job);
}
