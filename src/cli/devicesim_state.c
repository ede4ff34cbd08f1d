/*
 * `device-sim enroll --state FILE` and `device-sim checkin --state FILE`:
 * an enrolled simulated device kept between runs, so that what happens to
 * it later (a retired grant, an expired token) can be played.
 *
 *   device-sim checkin --state FILE [--message TYPE] [--no-token] [--json]
 *     sends one MDM message of the enrolled device (TYPE Authenticate,
 *     TokenUpdate, CheckOut, or Idle, the default: a command poll to
 *     ServerURL; the others are check-ins to CheckInURL) with its token
 *     (none with --no-token: a device that lost it). Exit 0 when the MDM
 *     answered 200, 3 when the server said 403
 *     com.apple.unrecognized.device (the device unenrolls: "UNENROLLED"),
 *     1 on any other answer, 2 on a usage error.
 *
 * The state file holds the token: it is created with mode 0600.
 */
#include "cli/devicesim_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cliopt.h"
#include "core/mem.h"
#include "http/client.h"

#define STATE_MAX_BYTES (256 * 1024)

int
eb_devsim_state_save(const struct eb_devsim *s)
{
	json_t *j;
	char *text = NULL;
	size_t len, off = 0;
	ssize_t n;
	int fd, rc = -1;

	j = json_pack("{s:s, s:s?, s:s?, s:s?, s:b, s:s?, s:s?, s:s?, s:s?}",
	              "server_url", s->server_url, "checkin_url",
	              s->checkin_url, "topic", s->topic, "product", s->product,
	              "adde", s->adde, "udid", s->udid, "serial", s->serial,
	              "enrollment_id", s->enrollment_id, "token", s->token);
	if (j == NULL || (text = json_dumps(j, JSON_INDENT(2))) == NULL) {
		fprintf(stderr, "device-sim: out of memory\n");
		goto out;
	}
	(void)unlink(s->state_file); /* a fresh file gets mode 0600 */
	if ((fd = open(s->state_file, O_WRONLY | O_CREAT | O_EXCL, 0600)) ==
	    -1) {
		fprintf(stderr, "device-sim: %s: %s\n", s->state_file,
		        strerror(errno));
		goto out;
	}
	len = strlen(text);
	while (off < len && (n = write(fd, text + off, len - off)) > 0)
		off += (size_t)n;
	if (close(fd) == 0 && off == len)
		rc = 0;
	else
		fprintf(stderr, "device-sim: %s: cannot write\n",
		        s->state_file);
out:
	eb_free_secret_str(text);
	json_decref(j);
	return rc;
}

/* A copy of the string under key (NULL when absent); -1 on a bad type. */
static int
take(const json_t *j, const char *key, char **out)
{
	const json_t *v = json_object_get(j, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) ||
	    (*out = eb_strdup(json_string_value(v))) == NULL)
		return -1;
	return 0;
}

int
eb_devsim_state_load(struct eb_devsim *s, char **product)
{
	json_error_t e;
	json_t *j;
	int rc = -1;

	if ((j = json_load_file(s->state_file, 0, &e)) == NULL) {
		fprintf(stderr, "device-sim: %s: %s\n", s->state_file, e.text);
		return -1;
	}
	if (take(j, "server_url", &s->server_url) == -1 ||
	    take(j, "checkin_url", &s->checkin_url) == -1 ||
	    take(j, "topic", &s->topic) == -1 ||
	    take(j, "product", product) == -1 ||
	    take(j, "udid", &s->udid) == -1 ||
	    take(j, "serial", &s->serial) == -1 ||
	    take(j, "enrollment_id", &s->enrollment_id) == -1 ||
	    take(j, "token", &s->token) == -1)
		fprintf(stderr, "device-sim: %s: a value is not a string\n",
		        s->state_file);
	else if (s->server_url == NULL ||
	         (s->udid == NULL && s->enrollment_id == NULL))
		fprintf(stderr,
		        "device-sim: %s: not the state of an enrolled device\n",
		        s->state_file);
	else
		rc = 0;
	s->adde = json_is_true(json_object_get(j, "adde"));
	s->product = *product;
	json_decref(j);
	return rc;
}

static void
checkin_usage(void)
{
	fprintf(stderr, "usage: enrollbridge device-sim checkin --state FILE "
	                "[--message Authenticate|TokenUpdate|CheckOut|Idle]\n"
	                "           [--no-token]\n");
}

/* 0, 1 for --help, -1 on a usage error (message printed). */
static int
parse_checkin_args(int argc, char **argv, struct eb_devsim *s,
                   const char **type, int *no_token)
{
	static const char *const types[] = {"Authenticate", "TokenUpdate",
	                                    "CheckOut", "Idle", NULL};
	const char *v;
	int i, k, missing = 0;

	s->timeout = 10;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			return 1;
		if (strcmp(argv[i], "--no-token") == 0)
			*no_token = 1;
		else if ((v = eb_cli_optval(argc, argv, &i, "--state",
		                            &missing)))
			s->state_file = v;
		else if ((v = eb_cli_optval(argc, argv, &i, "--message",
		                            &missing))) {
			for (k = 0; types[k] != NULL; k++)
				if (strcmp(types[k], v) == 0)
					break;
			if (types[k] == NULL) {
				fprintf(stderr,
				        "device-sim: unknown --message %s\n",
				        v);
				return -1;
			}
			*type = types[k];
		} else {
			fprintf(stderr, "device-sim: %s %s\n",
			        missing ? "a value is missing after"
			                : "unknown argument",
			        argv[i]);
			return -1;
		}
	}
	if (s->state_file == NULL) {
		fprintf(stderr, "device-sim: --state FILE is required\n");
		return -1;
	}
	return 0;
}

int
eb_devsim_cmd_checkin(int argc, char **argv)
{
	struct eb_devsim s;
	const char *type = "Idle", *url;
	char *product = NULL;
	int rc, no_token = 0;

	memset(&s, 0, sizeof(s));
	if ((rc = parse_checkin_args(argc, argv, &s, &type, &no_token)) != 0) {
		checkin_usage();
		return rc == 1 ? 0 : 2;
	}
	if (eb_devsim_state_load(&s, &product) == -1) {
		rc = 2;
		goto out;
	}
	if (no_token) { /* a device that lost its token */
		eb_free_secret_str(s.token);
		s.token = NULL;
	}
	if (eb_http_client_global_init() == -1) {
		fprintf(stderr, "device-sim: cannot initialise HTTP\n");
		rc = 2;
		goto out;
	}
	eb_discover_report_init(&s.r);
	url = strcmp(type, "Idle") == 0 || s.checkin_url == NULL
	          ? s.server_url
	          : s.checkin_url;
	rc = eb_devsim_mdm_put(
	    &s, strcmp(type, "Idle") == 0 ? "command" : "checkin", type, url,
	    strcmp(type, "Idle") == 0 ? CT_COMMAND : CT_CHECKIN, NULL);
	eb_devsim_flush(&s);
	if (s.unenrolled) {
		printf("UNENROLLED: the server ended this enrollment (403 %s); "
		       "a device removes its MDM profile now\n",
		       EB_UNRECOGNIZED_DEVICE);
		rc = EB_DEVSIM_EXIT_UNENROLLED;
	} else if (rc == 0 && s.r.nfail == 0) {
		printf("OK: %s accepted\n", type);
	} else {
		printf("FAILED: %s was not accepted\n", type);
		rc = 1;
	}
	eb_discover_report_finish(&s.r);
	eb_http_client_global_cleanup();
out:
	eb_free(product);
	eb_free(s.server_url);
	eb_free(s.checkin_url);
	eb_free(s.topic);
	eb_free(s.udid);
	eb_free(s.serial);
	eb_free(s.enrollment_id);
	eb_free_secret_str(s.token);
	return rc;
}
