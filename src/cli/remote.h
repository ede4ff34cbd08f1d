/*
 * The CLI as a client of a running server's admin API (handle/admin.c):
 * `--server URL` (the admin_listen address, "http://127.0.0.1:9100") with
 * the token from `--token-file F` or the environment variable
 * ENROLLBRIDGE_ADMIN_TOKEN, instead of opening the database from -c FILE.
 * The token is never printed.
 */
#ifndef EB_CLI_REMOTE_H
#define EB_CLI_REMOTE_H

#include <jansson.h>

#include "core/buf.h"

struct eb_config;

struct eb_cli_remote {
	const char *server;     /* NULL: use the database */
	const char *token_file; /* NULL: ENROLLBRIDGE_ADMIN_TOKEN */
};

/*
 * When argv[*i] is --server or --token-file: its value into r (advancing
 * *i) and 1; 0 when it is another argument; -1 when the value is missing
 * (said on stderr).
 */
int eb_cli_remote_opt(int argc, char **argv, int *i, struct eb_cli_remote *r);

/*
 * One call: method on path (with its query) with body (borrowed; NULL:
 * none). Returns the HTTP status with the answer's JSON in *out (the
 * caller decrefs; NULL when not JSON), or -1. Anything but a 2xx is said
 * on stderr as "cmd: server: STATUS: error".
 */
int eb_cli_remote_call(const struct eb_cli_remote *r, const char *cmd,
                       const char *method, const char *path, json_t *body,
                       json_t **out);

/* A path with a query string built one parameter at a time. */
struct eb_cli_query {
	struct eb_buf b;
	int nparams;
};
void eb_cli_query_init(struct eb_cli_query *q, const char *path);
/* Append name=value (encoded); a NULL value is left out. */
void eb_cli_query_add(struct eb_cli_query *q, const char *name,
                      const char *value);
/* The path and query ("" when out of memory). */
const char *eb_cli_query_str(const struct eb_cli_query *q);
void eb_cli_query_finish(struct eb_cli_query *q);

/* Load the configuration at path; NULL when it fails (said as
 * "cmd: file: key: reason"). */
struct eb_config *eb_cli_load_config(const char *cmd, const char *path);

#endif
