/*
 * `enrollbridge discover USER@DOMAIN`: checks a deployment's account-driven
 * enrollment discovery the way a device walks it (PROTOCOL.md sections 1,
 * 2 and 6) and prints one PASS/FAIL/WARN/INFO line per check, each failure
 * with a hint for the administrator.
 *
 * The checks that only look at bytes (discovery body, content type, 403
 * refusal, challenge headers, ESSO document) are exported so that unit
 * tests and the fuzzer (tests/fuzz/fuzz_discovery.c) can drive them; they
 * append their verdicts to a report and never touch the network.
 */
#ifndef EB_CLI_DISCOVER_H
#define EB_CLI_DISCOVER_H

#include <stddef.h>

/* Largest discovery answer read (bytes); a device's document is tiny. */
#define EB_DISCOVER_MAX_BODY (64 * 1024)
/* Largest ESSO document read (it may carry a base64 profile). */
#define EB_DISCOVER_MAX_ESSO (4 * 1024 * 1024)

enum eb_discover_result {
	EB_DISCOVER_PASS,
	EB_DISCOVER_WARN,
	EB_DISCOVER_FAIL,
	EB_DISCOVER_INFO
};

struct eb_discover_check {
	enum eb_discover_result result;
	char *name;   /* stable, e.g. "content-type" */
	char *detail; /* one line; server-supplied text has controls replaced */
	char *hint;   /* how to fix it; NULL for PASS and INFO */
};

/* The verdicts so far, in order. Caller-owned. */
struct eb_discover_report {
	struct eb_discover_check *checks;
	size_t n;
	size_t nfail;
	size_t nwarn;
	int oom; /* a verdict could not be recorded: treat as failed */
};

/* What a valid discovery body names. */
struct eb_discover_server {
	char *version;  /* "mdm-byod" or "mdm-adde" */
	char *base_url; /* acceptable per eb_wwwauth_url_ok() */
};

/*
 * `enrollbridge discover USER@DOMAIN [--base URL] [--model-family F]
 * [--cafile PEM] [--timeout SECONDS] [--json]`. argv[0] is the subcommand
 * name. Prints to stdout (usage errors to stderr). Returns 0 when every
 * check passed (warnings allowed), 1 when one failed, 2 on a usage error.
 */
int eb_cli_discover(int argc, char **argv);

void eb_discover_report_init(struct eb_discover_report *r);
void eb_discover_report_finish(struct eb_discover_report *r);
/* The last check named name, or NULL. */
const struct eb_discover_check *
eb_discover_report_find(const struct eb_discover_report *r, const char *name);
/* "PASS", "WARN", "FAIL", "INFO". */
const char *eb_discover_result_name(enum eb_discover_result res);

/*
 * Check a 200 discovery body: a JSON object (at most EB_DISCOVER_MAX_BODY
 * bytes) {"Servers":[{"Version":"mdm-byod"|"mdm-adde","BaseURL":URL}]} with
 * exactly one server and an acceptable BaseURL. Adds checks "json",
 * "servers", "version", "base-url" to r (as far as it gets). out (may be
 * NULL) receives the server on success; free it with
 * eb_discover_server_finish(). Returns 0 when all passed, else -1.
 */
int eb_discover_check_body(const char *body, size_t len,
                           struct eb_discover_report *r,
                           struct eb_discover_server *out);
void eb_discover_server_finish(struct eb_discover_server *s);

/* Check "content-type": exactly application/json. 0 or -1. */
int eb_discover_check_content_type(const char *content_type,
                                   struct eb_discover_report *r);
/* Check "cache-control" holds no-store (a WARN otherwise). 0 or -1. */
int eb_discover_check_cache_control(const char *cache_control,
                                    struct eb_discover_report *r);
/*
 * Describe a 403 discovery answer as a FAIL "status": with Apple's
 * {"code":"com.apple.well-known.failed","description":..,"message":..} the
 * detail reports the refusal, else the hint explains that format. Always -1.
 */
int eb_discover_check_refusal(const char *body, size_t len,
                              struct eb_discover_report *r);
/*
 * Check the WWW-Authenticate values of the 401 to the first enrollment
 * POST: exactly one ("challenge"), in Apple's exact form, with a usable
 * method and URLs ("challenge-method"). 0 or -1.
 */
int eb_discover_check_challenge(const char *const *values, size_t n,
                                struct eb_discover_report *r);
/*
 * Check an Enrollment SSO document ("esso-document"): a JSON object with
 * an integer iTunesStoreID (or, in developer mode, an AppIDs list of
 * strings), optional keys of the right type. 0 or -1.
 */
int eb_discover_check_esso_body(const char *body, size_t len, int developer,
                                struct eb_discover_report *r);

/*
 * The discovery URL a device queries for identifier id: base (trailing
 * slashes dropped) or https://domain, then
 * /.well-known/com.apple.remotemanagement?user-identifier=ID[&model-family=F],
 * values URL-encoded. A fresh string, or NULL.
 */
char *eb_discover_url(const char *base, const char *domain, const char *id,
                      const char *family);

#endif
