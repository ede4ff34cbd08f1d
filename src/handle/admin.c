/*
 * The admin API on the private listener (admin_listen, DESIGN "Operations"):
 * JSON over HTTP, for the CLI's --server and for automation. Every call
 * carries "Authorization: Bearer <admin_token>"; the token is compared in
 * constant time (over SHA-256 digests, so its length does not show);
 * without admin_token configured the API answers 404, as if absent. Every
 * call, refused ones included, is audited as "admin.<action>" with the
 * caller's address and the outcome, never the token.
 *
 * The store work runs on the work queue, never on the server's threads: a
 * handler checks the token, hands the call to a worker and returns
 * EB_ASYNC; the worker sets the response and resumes the request.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "core/config.h"
#include "core/env.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/workq.h"
#include "grant/manage.h"
#include "handle/admin_int.h"
#include "handle/handle.h"
#include "store/store.h"

#define JSON_CT "application/json"

/* A string json_dumps made (jansson's allocator). */
static void
free_dump(char *s)
{
	json_free_t jfree = NULL;

	json_get_alloc_funcs(NULL, &jfree);
	if (s != NULL && jfree != NULL)
		jfree(s);
}

/* The log line of an admin call: its action, tenant and status as fields;
 * the subject (a grant, a person, a key) through eb_log_pd. */
static void
log_call(const char *action, const char *tenant, const char *subject,
         const json_t *detail)
{
	char event[64], pd[EB_LOG_PD_LEN];
	json_int_t status =
	    json_integer_value(json_object_get(detail, "status"));

	snprintf(event, sizeof(event), "admin.%s", action);
	log_ev(
	    status >= 400 || status == 0 ? EB_LOG_WARN : EB_LOG_INFO,
	    EB_EVT(tenant, event, status >= 400 ? "refused" : NULL, NULL),
	    "admin call %s on %s: status %lld", action,
	    eb_log_pd(subject != NULL && *subject != '\0' ? subject : NULL, pd),
	    (long long)status);
}

/* The audit event of a call (detail holds what it was asked and did). */
static void
audit_call(struct eb_env *env, const char *action, const char *tenant,
           const char *subject, json_t *detail)
{
	struct eb_store_audit ev;
	char event[64];
	char *d = NULL;

	snprintf(event, sizeof(event), "admin.%s", action);
	memset(&ev, 0, sizeof(ev));
	ev.ts = eb_now(env);
	ev.tenant = (char *)(tenant != NULL ? tenant : "");
	ev.event = event;
	ev.subject = (char *)(subject != NULL ? subject : "");
	if (detail != NULL)
		d = json_dumps(detail, JSON_COMPACT);
	ev.detail = d;
	if (eb_store_audit_add(env->store, &ev) != EB_STORE_OK)
		log_warnx("admin: %s: not audited", event);
	free_dump(d);
	log_call(action, tenant, subject, detail);
}

void
eb_admin_send(struct eb_request *req, int status, json_t *o)
{
	char *body;

	eb_resp_header(req, "Cache-Control", "no-store");
	if (o == NULL || (body = json_dumps(o, JSON_COMPACT)) == NULL) {
		json_decref(o);
		eb_resp_set_static(req, 500, JSON_CT,
		                   "{\"error\":\"internal error\"}", 26);
		return;
	}
	json_decref(o);
	if (eb_resp_set(req, status, JSON_CT, body, strlen(body)) == -1)
		log_warnx("admin: out of memory");
	free_dump(body);
}

void
eb_admin_fail(struct admin_call *c, int status, const char *error)
{
	c->status = status;
	json_decref(c->out);
	c->out = json_pack("{s:s}", "error", error);
}

/* 1 when the request carries the configured token. */
static int
token_ok(struct eb_request *req, const char *token)
{
	unsigned char want[SHA256_DIGEST_LENGTH], got[SHA256_DIGEST_LENGTH];
	const char *h = eb_req_header(req, "Authorization");

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	SHA256((const unsigned char *)token, strlen(token), want);
	SHA256((const unsigned char *)h, strlen(h), got);
	return CRYPTO_memcmp(want, got, sizeof(want)) == 0;
}

static void
call_free(struct admin_call *c)
{
	json_decref(c->in);
	json_decref(c->query);
	eb_free(c->id);
	json_decref(c->out);
	json_decref(c->detail);
	eb_free(c->tenant);
	eb_free(c->subject);
	eb_free(c->remote);
	eb_config_unref(c->cfg);
	eb_free(c);
}

/* On a worker: run the action, audit it, answer. */
static void
call_job(void *arg)
{
	struct admin_call *c = arg;
	const struct admin_action *a = c->action;

	c->status = 200;
	if (c->in_error != NULL)
		eb_admin_fail(c, 400, c->in_error);
	else
		a->run(c);
	if (c->detail == NULL)
		c->detail = json_object();
	json_object_set_new(c->detail, "status", json_integer(c->status));
	json_object_set_new(c->detail, "remote", json_string(c->remote));
	audit_call(c->env, a->name, c->tenant, c->subject, c->detail);
	eb_admin_send(c->req, c->status, c->out);
	c->out = NULL;
	eb_req_resume(c->req);
	call_free(c);
}

/* The request's JSON body into c->in ({} when empty), or c->in_error. */
static void
read_body(struct eb_request *req, struct admin_call *c)
{
	json_error_t jerr;
	const void *body;
	size_t len = 0;

	body = eb_req_body(req, &len);
	if (len == 0) {
		c->in = json_object();
		return;
	}
	c->in = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(c->in))
		c->in_error = "the body must be a JSON object";
}

static void
refused_job(void *arg)
{
	struct admin_call *c = arg;

	audit_call(c->env, "unauthorized", NULL, c->action->name, c->detail);
	call_free(c);
}

struct query_copy {
	json_t *q;
	int bad; /* a name or value that is not UTF-8 */
};

static int
copy_param(void *arg, const char *name, const char *value)
{
	struct query_copy *qc = arg;
	json_t *v;

	/* the first one wins, as eb_req_query says */
	if (json_object_get(qc->q, name) != NULL)
		return 0;
	if ((v = json_string(value ? value : "")) == NULL ||
	    json_object_set_new(qc->q, name, v) != 0)
		qc->bad = 1;
	return 0;
}

/* What the worker reads of the request: query, {id}, body. -1: no memory. */
static int
copy_request(struct eb_request *req, struct admin_call *c)
{
	const char *id = eb_req_param(req, "id");
	struct query_copy qc = {NULL, 0};

	if ((c->query = json_object()) == NULL ||
	    (id != NULL && (c->id = eb_strdup(id)) == NULL))
		return -1;
	qc.q = c->query;
	eb_req_query_each(req, copy_param, &qc);
	read_body(req, c);
	if (qc.bad)
		c->in_error = "the query must be UTF-8";
	return 0;
}

/* A refused call: audited off this thread, answered here. */
static void
refuse(struct eb_request *req, const struct admin_action *a)
{
	struct admin_call *c;

	eb_resp_header(req, "WWW-Authenticate",
	               "Bearer realm=\"enrollbridge-admin\"");
	eb_admin_send(req, 401, json_pack("{s:s}", "error", "unauthorized"));
	log_warnx("admin: %s from %s: refused (no or wrong token)", a->name,
	          eb_req_remote(req));
	if ((c = eb_calloc(1, sizeof(*c))) == NULL)
		return;
	c->env = eb_req_env(req);
	c->remote = eb_strdup(eb_req_remote(req));
	c->detail = json_pack("{s:i,s:s?}", "status", 401, "remote", c->remote);
	c->action = a;
	if (eb_workq_submit(c->env->workq, refused_job, c) != 0)
		call_free(c);
}

int
eb_admin_handle(struct eb_request *req, const struct admin_action *a)
{
	const struct eb_config *cfg = eb_req_config(req);
	struct eb_env *env = eb_req_env(req);
	struct admin_call *c;

	if (cfg->admin_token == NULL) {
		eb_resp_text(req, 404, "not found\n");
		return EB_HANDLED;
	}
	if (!token_ok(req, cfg->admin_token)) {
		refuse(req, a);
		return EB_HANDLED;
	}
	if ((c = eb_calloc(1, sizeof(*c))) == NULL ||
	    (c->remote = eb_strdup(eb_req_remote(req))) == NULL) {
		eb_free(c);
		eb_resp_text(req, 500, "out of memory\n");
		return EB_HANDLED;
	}
	c->req = req;
	c->env = env;
	c->cfg = eb_env_config(env);
	c->action = a;
	if (copy_request(req, c) == -1) {
		call_free(c);
		eb_resp_text(req, 500, "out of memory\n");
		return EB_HANDLED;
	}
	if (eb_workq_submit(env->workq, call_job, c) != 0) {
		call_free(c);
		eb_resp_header(req, "Retry-After", "1");
		eb_admin_send(req, 503, json_pack("{s:s}", "error", "busy"));
		return EB_HANDLED;
	}
	return EB_ASYNC;
}
