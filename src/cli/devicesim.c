/*
 * `enrollbridge device-sim`: play an Apple device.
 *
 *   device-sim machineinfo [--model-family F | --product P] [--udid U]
 *       [--serial S] [--version V] [--os-version O] [--language L]
 *     writes the CMS-signed MachineInfo a device would POST to BaseURL
 *     (DER) to standard output.
 *
 *   device-sim enroll USER@DOMAIN [--base URL] [--model-family F]
 *       [--udid U] [--login L --password P | --interactive] [--cafile PEM]
 *       [--timeout SECONDS] [--json]
 *       [--maid-key PUBLIC-PEM [--maid-server-uuid UUID]]
 *     walks a whole account-driven enrollment against a deployment, the
 *     way a device does (PROTOCOL.md sections 1-5): discovery, the first
 *     POST and its challenge, the web sign-in (driven headlessly through
 *     the IdP's forms, or by a person with --interactive), the apple-oauth2
 *     code and refresh exchanges, the enrollment profile and its checks,
 *     and the first check-ins. One PASS/FAIL/WARN/INFO line per check, in
 *     the report style of `enrollbridge discover` (whose byte-level checks
 *     are reused); exit 0 when the enrollment passed, 1 when a step
 *     failed, 2 on a usage error. Tokens and codes are never printed: only
 *     their length and a short fingerprint. With --maid-key, the device
 *     then asks for its Managed Apple Account access management token
 *     (GetToken, com.apple.maid) and verifies it (devicesim_maid.c).
 *     With --state FILE the enrolled device is saved for `device-sim
 *     checkin` (devicesim_state.c). An MDM request answered 403
 *     com.apple.unrecognized.device prints "UNENROLLED" and exits 3.
 */
#include "cli/devicesim.h"
#include "cli/cliopt.h"

#include "cli/devicesim_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "apple/cms.h"
#include "apple/device.h"
#include "apple/plist.h"
#include "apple/profile.h"
#include "apple/wwwauth.h"
#include "cli/devicesim_web.h"
#include "cli/discover.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rand.h"
#include "core/str.h"
#include "http/client.h"
#include "http/form.h"

static void
usage(void)
{
	fprintf(
	    stderr,
	    "usage: enrollbridge device-sim machineinfo [--model-family F |"
	    " --product P]\n"
	    "           [--udid U] [--serial S] [--version V] "
	    "[--os-version O] [--language L]\n"
	    "           [--can-request-update true|false]\n"
	    "       enrollbridge device-sim enroll USER@DOMAIN [--base URL] "
	    "[--model-family F]\n"
	    "           [--udid U] [--login L --password P | "
	    "--interactive]\n"
	    "           [--cafile PEM] [--timeout SECONDS] [--json]\n"
	    "           [--maid-key PUBLIC-PEM [--maid-server-uuid UUID]] "
	    "[--state FILE]\n"
	    "       enrollbridge device-sim checkin --state FILE "
	    "[--message Authenticate|TokenUpdate|CheckOut|Idle]\n"
	    "           [--no-token]\n"
	    "exit status: 0 passed, 1 a step failed, 2 usage error, 3 "
	    "unenrolled (an MDM\n"
	    "request got 403 com.apple.unrecognized.device: the device "
	    "removes its profile)\n");
}

static int
cmd_machineinfo(int argc, char **argv)
{
	struct eb_device_info d;
	const char *family = NULL;
	uint8_t *out = NULL;
	size_t len = 0, off = 0;
	char err[256];
	int i;

	memset(&d, 0, sizeof(d));
	d.version = "22B83";
	d.os_version = "18.1";
	d.language = "en-US";
	for (i = 1; i < argc; i += 2) { /* --option value pairs */
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL) {
			usage();
			return 2;
		}
		if (strcmp(k, "--model-family") == 0)
			family = v;
		else if (strcmp(k, "--product") == 0)
			d.product = v;
		else if (strcmp(k, "--udid") == 0)
			d.udid = v;
		else if (strcmp(k, "--serial") == 0)
			d.serial = v;
		else if (strcmp(k, "--version") == 0)
			d.version = v;
		else if (strcmp(k, "--os-version") == 0)
			d.os_version = v;
		else if (strcmp(k, "--language") == 0)
			d.language = v;
		else if (strcmp(k, "--can-request-update") == 0 &&
		         (strcmp(v, "true") == 0 || strcmp(v, "false") == 0))
			d.can_request_update = strcmp(v, "true") == 0;
		else {
			usage();
			return 2;
		}
	}
	if (d.product == NULL &&
	    (d.product = eb_device_product_for(family)) == NULL) {
		fprintf(stderr, "device-sim: unknown model family \"%s\"\n",
		        family);
		return 2;
	}
	if (eb_device_machineinfo(&d, &out, &len, err, sizeof(err)) != 0) {
		fprintf(stderr, "device-sim: %s\n", err);
		return 1;
	}
	while (off < len) {
		ssize_t n = write(STDOUT_FILENO, out + off, len - off);

		if (n <= 0) {
			eb_free(out);
			return 1;
		}
		off += (size_t)n;
	}
	eb_free(out);
	return 0;
}

/* ---- the enroll walk: state and report ---------------------------------- */

static char *
sanitize(char *s)
{
	unsigned char *p;

	for (p = (unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
	return s;
}

int
eb_devsim_note(struct eb_devsim *s, enum eb_discover_result res,
               const char *name, const char *hint, const char *fmt, ...)
{
	struct eb_discover_report *r = &s->r;
	struct eb_discover_check *c;
	char buf[MAX_DETAIL];
	va_list ap;
	int rc = res == EB_DISCOVER_FAIL ? -1 : 0;

	if (res == EB_DISCOVER_FAIL)
		r->nfail++;
	else if (res == EB_DISCOVER_WARN)
		r->nwarn++;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	c = eb_realloc(r->checks, (r->n + 1) * sizeof(*c));
	if (c == NULL) {
		r->oom = 1;
		return rc;
	}
	r->checks = c;
	c = &r->checks[r->n];
	c->result = res;
	c->name = eb_strdup(name);
	c->detail = eb_strdup(sanitize(buf));
	c->hint = hint != NULL ? eb_strdup(hint) : NULL;
	if (c->name == NULL || c->detail == NULL ||
	    (hint != NULL && c->hint == NULL)) {
		eb_free(c->name);
		eb_free(c->detail);
		eb_free(c->hint);
		r->oom = 1;
		return rc;
	}
	r->n++;
	return rc;
}

/* Print the verdicts not printed yet (text mode). */
void
eb_devsim_flush(struct eb_devsim *s)
{
	const struct eb_discover_check *c;

	if (s->json)
		return;
	for (; s->printed < s->r.n; s->printed++) {
		c = &s->r.checks[s->printed];
		printf("%s %s: %s\n", eb_discover_result_name(c->result),
		       c->name, c->detail);
		if (c->hint != NULL && (c->result == EB_DISCOVER_FAIL ||
		                        c->result == EB_DISCOVER_WARN))
			printf("  hint: %s\n", c->hint);
	}
	fflush(stdout);
}

/* "N chars, fp 0123456789ab": how a secret is shown. */
const char *
eb_devsim_secret_desc(const char *secret, char *out, size_t outlen)
{
	char fp[13];

	eb_log_fp(secret, strlen(secret), fp);
	snprintf(out, outlen, "%zu chars, fp %s", strlen(secret), fp);
	return out;
}

static const char *
transport_hint(enum eb_http_error e)
{
	switch (e) {
	case EB_HTTP_ERR_DNS:
		return "publish a DNS record for the host";
	case EB_HTTP_ERR_CONNECT:
		return "make the host reachable on the URL's port (listener, "
		       "firewall, load balancer)";
	case EB_HTTP_ERR_TLS:
		return "serve a certificate chain devices trust for this "
		       "host name; for a private test CA use --cafile";
	case EB_HTTP_ERR_TIMEOUT:
		return "the server did not answer in time (--timeout)";
	case EB_HTTP_ERR_TOO_LARGE:
		return "the answer is far larger than it should be";
	default:
		return "check the URL and the server";
	}
}

/*
 * One request. headers is NULL-terminated; body may be NULL. Returns the
 * response (eb_http_response_free) or NULL with a FAIL noted under name.
 */
struct eb_http_response *
eb_devsim_request(struct eb_devsim *s, const char *name, const char *method,
                  const char *url, const char *const *headers, const void *body,
                  size_t bodylen, size_t max, int follow)
{
	struct eb_http_response *resp;
	struct eb_http_options o;

	eb_http_options_init(&o, method, url);
	o.headers = headers;
	o.body = body;
	o.body_len = bodylen;
	o.timeout = s->timeout;
	o.connect_timeout = s->timeout;
	o.max_response_bytes = max;
	o.cafile = s->cafile;
	o.follow_redirects = follow;
	if ((resp = eb_http_fetch(&o)) == NULL) {
		s->r.oom = 1;
		return NULL;
	}
	if (resp->error != EB_HTTP_OK) {
		eb_devsim_note(s, EB_DISCOVER_FAIL, name,
		               transport_hint(resp->error),
		               "%s %.300s: %s error: %s", method, url,
		               eb_http_error_name(resp->error), resp->message);
		eb_http_response_free(resp);
		return NULL;
	}
	return resp;
}

/* A random UUID, upper-case: fresh, or NULL. */
char *
eb_devsim_uuid(void)
{
	unsigned char b[16];
	char out[37];

	if (eb_rand_bytes(b, sizeof(b)) == -1)
		return NULL;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, sizeof(out),
	         "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-"
	         "%02X%02X%02X%02X%02X%02X",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
	         b[10], b[11], b[12], b[13], b[14], b[15]);
	return eb_strdup(out);
}

/* ---- output and command line -------------------------------------------- */

static void
print_json(const struct eb_devsim *s, const char *url, int ok)
{
	const struct eb_discover_report *r = &s->r;
	json_t *root, *arr, *o;
	char *out, res[8];
	size_t i, j;

	root = json_pack("{s:s, s:s, s:b}", "identifier", s->id, "url", url,
	                 "ok", ok);
	arr = json_array();
	if (root == NULL || arr == NULL)
		goto out_free;
	if (s->version != NULL)
		json_object_set_new(root, "version", json_string(s->version));
	for (i = 0; i < r->n; i++) {
		snprintf(res, sizeof(res), "%s",
		         eb_discover_result_name(r->checks[i].result));
		for (j = 0; res[j] != '\0'; j++)
			res[j] = (char)(res[j] - 'A' + 'a');
		o = json_pack("{s:s, s:s, s:s}", "name", r->checks[i].name,
		              "result", res, "detail", r->checks[i].detail);
		if (o == NULL)
			goto out_free;
		if (r->checks[i].hint != NULL)
			json_object_set_new(o, "hint",
			                    json_string(r->checks[i].hint));
		json_array_append_new(arr, o);
	}
	json_object_set(root, "steps", arr);
	if ((out = json_dumps(root, JSON_INDENT(2))) == NULL)
		goto out_free;
	printf("%s\n", out);
	free(out); /* allocated by jansson */
out_free:
	json_decref(arr);
	json_decref(root);
}

/* 0, 1 for --help, -1 on a usage error (message printed). */
static int
parse_enroll_args(int argc, char **argv, struct eb_devsim *s)
{
	const char *v;
	char *end;
	int i, missing = 0;
	long t;

	s->timeout = 10;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			return 1;
		if (strcmp(argv[i], "--json") == 0)
			s->json = 1;
		else if (strcmp(argv[i], "--interactive") == 0)
			s->interactive = 1;
		else if ((v = eb_cli_optval(argc, argv, &i, "--base",
		                            &missing)))
			s->base = v;
		else if ((v = eb_cli_optval(argc, argv, &i, "--model-family",
		                            &missing)))
			s->family = v;
		else if ((v = eb_cli_optval(argc, argv, &i, "--udid",
		                            &missing)))
			s->udid_arg = v;
		else if ((v = eb_cli_optval(argc, argv, &i, "--login",
		                            &missing)))
			s->login = v;
		else if ((v = eb_cli_optval(argc, argv, &i, "--password",
		                            &missing)))
			s->password = v;
		else if ((v = eb_cli_optval(argc, argv, &i, "--cafile",
		                            &missing)))
			s->cafile = v;
		else if ((v = eb_cli_optval(argc, argv, &i, "--state",
		                            &missing)))
			s->state_file = v;
		else if ((v = eb_cli_optval(argc, argv, &i, "--maid-key",
		                            &missing)))
			s->maid_key = v;
		else if ((v = eb_cli_optval(argc, argv, &i,
		                            "--maid-server-uuid", &missing)))
			s->maid_uuid = v;
		else if ((v = eb_cli_optval(argc, argv, &i, "--timeout",
		                            &missing))) {
			t = strtol(v, &end, 10);
			if (*v == '\0' || *end != '\0' || t < 1 || t > 600) {
				fprintf(stderr,
				        "device-sim: bad --timeout \"%s\"\n",
				        v);
				return -1;
			}
			s->timeout = (int)t;
		} else if (missing) {
			fprintf(stderr, "device-sim: %s needs a value\n",
			        argv[i]);
			return -1;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "device-sim: unknown option %s\n",
			        argv[i]);
			return -1;
		} else if (s->id != NULL) {
			fprintf(stderr, "device-sim: one identifier only\n");
			return -1;
		} else {
			s->id = argv[i];
		}
	}
	if (s->id == NULL) {
		fprintf(stderr, "device-sim: missing USER@DOMAIN\n");
		return -1;
	}
	if (s->maid_uuid != NULL && s->maid_key == NULL) {
		fprintf(stderr,
		        "device-sim: --maid-server-uuid needs --maid-key\n");
		return -1;
	}
	if ((s->login == NULL) != (s->password == NULL)) {
		fprintf(stderr,
		        "device-sim: --login and --password go together\n");
		return -1;
	}
	if (s->interactive && s->login != NULL) {
		fprintf(stderr, "device-sim: --interactive or --login, not "
		                "both\n");
		return -1;
	}
	if (s->family != NULL && !eb_cli_family_ok(s->family)) {
		fprintf(stderr, "device-sim: unknown model family \"%s\"\n",
		        s->family);
		return -1;
	}
	if (s->base != NULL && strncasecmp(s->base, "https://", 8) != 0 &&
	    strncasecmp(s->base, "http://", 7) != 0) {
		fprintf(stderr, "device-sim: --base must be an http(s) URL\n");
		return -1;
	}
	return 0;
}

/*
 * The walk itself: each step runs only when the previous ones passed.
 * Returns 0 when every step passed, else -1.
 */
static int
walk(struct eb_devsim *s, const char *url)
{
	enum eb_wwwauth_method m;

	if (eb_devsim_discovery(s, url) == -1)
		return -1;
	eb_devsim_flush(s);
	if (eb_devsim_machineinfo(s) == -1 || eb_devsim_challenge(s) == -1)
		return -1;
	eb_devsim_flush(s);
	m = eb_wwwauth_method(&s->w);
	if ((m == EB_WWWAUTH_METHOD_AS_WEB ? eb_devsim_as_web(s)
	                                   : eb_devsim_oauth2(s)) == -1)
		return -1;
	eb_devsim_flush(s);
	if (eb_devsim_profile(s) == -1)
		return -1;
	eb_devsim_flush(s);
	if (eb_devsim_checkin(s) == -1)
		return -1;
	return eb_devsim_gettoken(s);
}

static int
cmd_enroll(int argc, char **argv)
{
	struct eb_devsim s;
	char *local = NULL, *domain = NULL, *url = NULL;
	int rc;

	memset(&s, 0, sizeof(s));
	if ((rc = parse_enroll_args(argc, argv, &s)) != 0) {
		usage();
		return rc == 1 ? 0 : 2;
	}
	if (eb_str_split_identifier(s.id, &local, &domain) == -1) {
		fprintf(stderr,
		        "device-sim: \"%s\" is not an identifier a device "
		        "accepts (one '@', a fully qualified domain)\n",
		        s.id);
		return 2;
	}
	rc = 2;
	if ((url = eb_discover_url(s.base, domain, s.id, s.family)) == NULL) {
		fprintf(stderr, "device-sim: URL too long or out of memory\n");
		goto out_free;
	}
	if (eb_http_client_global_init() == -1) {
		fprintf(stderr, "device-sim: cannot initialise HTTP\n");
		goto out_free;
	}
	eb_discover_report_init(&s.r);
	if (walk(&s, url) == -1 && s.r.nfail == 0 && !s.r.oom && !s.unenrolled)
		eb_devsim_note(
		    &s, EB_DISCOVER_FAIL, "internal", NULL,
		    "the walk stopped (out of memory or no randomness)");
	if (s.r.oom)
		eb_devsim_note(&s, EB_DISCOVER_FAIL, "internal", NULL,
		               "out of memory");
	rc = s.r.nfail > 0 || s.r.oom ? 1 : 0;
	/* an enrolled device (profile installed) is kept for `checkin` */
	if (s.state_file != NULL && s.server_url != NULL && s.token != NULL &&
	    eb_devsim_state_save(&s) == -1)
		rc = 1;
	if (s.unenrolled && !s.r.oom)
		rc = EB_DEVSIM_EXIT_UNENROLLED;
	if (s.json) {
		print_json(&s, url, rc == 0);
	} else {
		eb_devsim_flush(&s);
		if (rc == EB_DEVSIM_EXIT_UNENROLLED)
			printf("UNENROLLED: the server ended this enrollment "
			       "(403 %s)\n",
			       EB_UNRECOGNIZED_DEVICE);
		else if (rc == 0)
			printf("OK: the whole enrollment passed (%s, %zu "
			       "warning%s)\n",
			       s.version, s.r.nwarn, s.r.nwarn == 1 ? "" : "s");
		else
			printf("FAILED: %zu step%s failed\n", s.r.nfail,
			       s.r.nfail == 1 ? "" : "s");
	}
	eb_discover_report_finish(&s.r);
	eb_wwwauth_finish(&s.w);
	eb_http_client_global_cleanup();
	eb_free(s.version);
	eb_free(s.base_url);
	eb_free(s.udid);
	eb_free(s.serial);
	eb_free(s.enrollment_id);
	eb_free(s.mi);
	eb_free_secret_str(s.token);
	eb_free_secret_str(s.refresh);
	eb_free(s.topic);
	eb_free(s.server_url);
	eb_free(s.checkin_url);
out_free:
	eb_free(url);
	eb_free(local);
	eb_free(domain);
	return rc;
}

int
eb_cli_device_sim(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "machineinfo") == 0)
		return cmd_machineinfo(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "enroll") == 0)
		return cmd_enroll(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "checkin") == 0)
		return eb_devsim_cmd_checkin(argc - 1, argv + 1);
	usage();
	return 2;
}
