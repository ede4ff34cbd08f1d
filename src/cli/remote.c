/*
 * The CLI's admin API client (remote.h): one blocking request per call
 * through the HTTP client, the bearer token read at each call and wiped
 * after it.
 */
#include "cli/remote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cliopt.h"
#include "core/config.h"
#include "core/config_int.h"
#include "core/mem.h"
#include "http/client.h"

#define TOKEN_ENV    "ENROLLBRIDGE_ADMIN_TOKEN"
#define TOKEN_MAX    4096
#define CALL_TIMEOUT 30 /* seconds */
#define ANSWER_MAX   (64u << 20)
#define AUTH_HDR_MAX (TOKEN_MAX + 32)

int
eb_cli_remote_opt(int argc, char **argv, int *i, struct eb_cli_remote *r)
{
	const char *v;
	int missing = 0;

	if ((v = eb_cli_optval(argc, argv, i, "--server", &missing)) != NULL)
		r->server = v;
	else if (!missing && (v = eb_cli_optval(argc, argv, i, "--token-file",
	                                        &missing)) != NULL)
		r->token_file = v;
	if (missing) {
		fprintf(stderr, "%s: %s needs a value\n", argv[0], argv[*i]);
		return -1;
	}
	return v != NULL;
}

/* The token into out (NUL-terminated, trailing newline dropped); -1. */
static int
read_token(const struct eb_cli_remote *r, const char *cmd, char *out,
           size_t outlen)
{
	const char *env, *why = NULL;
	char *s;
	size_t len;

	if (r->token_file != NULL) {
		if ((s = eb_cfg_read_file(r->token_file, TOKEN_MAX, &len,
		                          &why)) == NULL) {
			fprintf(stderr, "%s: --token-file: %s: %s\n", cmd,
			        r->token_file,
			        why != NULL ? why : "unreadable");
			return -1;
		}
		while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
			s[--len] = '\0';
		snprintf(out, outlen, "%s", s);
		eb_free_secret_str(s);
	} else if ((env = getenv(TOKEN_ENV)) != NULL)
		snprintf(out, outlen, "%s", env);
	else {
		fprintf(stderr,
		        "%s: --server needs the admin token: --token-file F "
		        "or %s\n",
		        cmd, TOKEN_ENV);
		return -1;
	}
	if (out[0] == '\0' || strchr(out, '\n') != NULL ||
	    strchr(out, '\r') != NULL) {
		fprintf(stderr,
		        "%s: the admin token is empty or holds a line "
		        "break\n",
		        cmd);
		return -1;
	}
	return 0;
}

static int
say_failure(const char *cmd, long status, json_t *out)
{
	const char *e = json_string_value(json_object_get(out, "error"));

	fprintf(stderr, "%s: server: %ld: %s\n", cmd, status,
	        e != NULL       ? e
	        : status == 401 ? "unauthorized (check the admin token)"
	        : status == 404 ? "not found (is admin_token set?)"
	                        : "failed");
	return (int)status;
}

int
eb_cli_remote_call(const struct eb_cli_remote *r, const char *cmd,
                   const char *method, const char *path, json_t *body,
                   json_t **out)
{
	struct eb_http_options o;
	struct eb_http_response *resp = NULL;
	char token[TOKEN_MAX + 1], auth[AUTH_HDR_MAX], *url = NULL, *b = NULL;
	const char *hdrs[3] = {auth, "Content-Type: application/json", NULL};
	json_free_t jfree = NULL;
	size_t n;
	int rc = -1;

	*out = NULL;
	if (read_token(r, cmd, token, sizeof(token)) == -1)
		goto out;
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	n = strlen(r->server);
	if (n > 0 && r->server[n - 1] == '/')
		n--; /* path starts with one */
	if ((url = eb_malloc(n + strlen(path) + 1)) == NULL)
		goto out;
	snprintf(url, n + strlen(path) + 1, "%.*s%s", (int)n, r->server, path);
	eb_http_options_init(&o, method, url);
	o.headers = hdrs;
	o.timeout = CALL_TIMEOUT;
	o.max_response_bytes = ANSWER_MAX;
	if (body != NULL) {
		if ((b = json_dumps(body, JSON_COMPACT)) == NULL)
			goto out;
		o.body = b;
		o.body_len = strlen(b);
	}
	if ((resp = eb_http_fetch(&o)) == NULL)
		goto out;
	if (resp->error != EB_HTTP_OK) {
		fprintf(stderr, "%s: server: %s\n", cmd, resp->message);
		goto out;
	}
	*out = json_loadb(resp->body, resp->body_len, 0, NULL);
	rc = (int)resp->status;
	if (rc < 200 || rc > 299)
		say_failure(cmd, resp->status, *out);
out:
	OPENSSL_cleanse(token, sizeof(token));
	OPENSSL_cleanse(auth, sizeof(auth));
	json_get_alloc_funcs(NULL, &jfree);
	if (b != NULL)
		jfree(b);
	eb_free(url);
	eb_http_response_free(resp);
	return rc;
}

void
eb_cli_query_init(struct eb_cli_query *q, const char *path)
{
	eb_buf_init(&q->b, 16384);
	q->nparams = 0;
	(void)eb_buf_addstr(&q->b, path);
}

void
eb_cli_query_add(struct eb_cli_query *q, const char *name, const char *value)
{
	if (value == NULL)
		return;
	(void)eb_buf_addstr(&q->b, q->nparams++ == 0 ? "?" : "&");
	(void)eb_buf_addstr(&q->b, name);
	(void)eb_buf_addstr(&q->b, "=");
	(void)eb_http_urlencode(&q->b, value);
}

const char *
eb_cli_query_str(const struct eb_cli_query *q)
{
	const char *s = eb_buf_str(&q->b);

	return s != NULL ? s : "";
}

void
eb_cli_query_finish(struct eb_cli_query *q)
{
	eb_buf_finish(&q->b);
}

struct eb_config *
eb_cli_load_config(const char *cmd, const char *path)
{
	struct eb_config_error err;
	struct eb_config *cfg;

	memset(&err, 0, sizeof(err));
	if ((cfg = eb_config_load(path, &err)) == NULL)
		fprintf(stderr, "%s: %s: %s: %s\n", cmd,
		        err.file[0] ? err.file : path,
		        err.key[0] ? err.key : "-", err.reason);
	return cfg;
}
