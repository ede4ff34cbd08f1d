/*
 * Inside the admin API (admin.c, the transport; admin_ops.c, the actions).
 */
#ifndef EB_ADMIN_INT_H
#define EB_ADMIN_INT_H

#include <jansson.h>

#include "http/http.h"

struct admin_call;

/* One API action: its audit name ("grants.list" -> "admin.grants.list")
 * and what it does, on a worker thread. */
struct admin_action {
	const char *name;
	void (*run)(struct admin_call *c);
};

/* One call under way, owned by the worker running it. */
struct admin_call {
	struct eb_request *req;
	struct eb_env *env;
	struct eb_config *cfg; /* a reference for the call's life */
	const struct admin_action *action;
	json_t *in; /* the request body, an object ({} when none) */
	/* the query parameters (the first of each name) and the path's
	 * {id}, copied on the server's thread: the worker reads these */
	json_t *query;
	char *id;
	const char *in_error; /* why the body was refused, or NULL */
	/* set by the action: the status (200 unless said), the answer, and
	 * what the audit event records (tenant, subject, detail) */
	int status;
	json_t *out;
	json_t *detail;
	char *tenant, *subject;
	char *remote; /* the caller's address */
};

/* Check the token, then run a on the work queue (the route handlers). */
int eb_admin_handle(struct eb_request *req, const struct admin_action *a);
/* Answer with o (taken; NULL: 500) as JSON. */
void eb_admin_send(struct eb_request *req, int status, json_t *o);
/* The call fails with status and {"error": error}. */
void eb_admin_fail(struct admin_call *c, int status, const char *error);

#endif
