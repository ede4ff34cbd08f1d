/*
 * The audit command (audit.h): reads the audit table through the store, or
 * asks a running server's admin API (cli/remote.h).
 */
#include "cli/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli/cliopt.h"
#include "cli/remote.h"
#include "core/config.h"
#include "grant/manage.h"
#include "store/store.h"

struct audit_args {
	const char *config, *tenant, *since, *event, *limit;
	int json;
	struct eb_cli_remote remote;
};

static void
usage(void)
{
	fprintf(stderr,
	        "usage: enrollbridge audit list {-c FILE | --server URL "
	        "[--token-file F]} [--tenant T] [--since TIME] "
	        "[--event E] [--limit N] [--json]\n");
}

static int
parse_args(int argc, char **argv, struct audit_args *a)
{
	static const struct {
		const char *name;
		size_t off;
	} opts[] = {
	    {"-c", offsetof(struct audit_args, config)},
	    {"--config", offsetof(struct audit_args, config)},
	    {"--tenant", offsetof(struct audit_args, tenant)},
	    {"--since", offsetof(struct audit_args, since)},
	    {"--event", offsetof(struct audit_args, event)},
	    {"--limit", offsetof(struct audit_args, limit)},
	};
	const char *v;
	size_t k;
	int i, missing = 0;

	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			a->json = 1;
			continue;
		}
		if (eb_cli_remote_opt(argc, argv, &i, &a->remote) == 1)
			continue;
		for (k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
			if ((v = eb_cli_optval(argc, argv, &i, opts[k].name,
			                       &missing)) != NULL) {
				*(const char **)(void *)((char *)a +
				                         opts[k].off) = v;
				break;
			}
		if (k == sizeof(opts) / sizeof(opts[0])) {
			fprintf(stderr, "audit list: %s %s\n", argv[i],
			        missing ? "needs a value" : "is not an option");
			return -1;
		}
	}
	if ((a->config == NULL) == (a->remote.server == NULL)) {
		fprintf(stderr, "audit list: one of -c FILE and --server URL "
		                "is required\n");
		return -1;
	}
	return 0;
}

/* A field for the listing: "-" when empty, blanks as '?'. */
static void
field(const char *s)
{
	if (s == NULL || *s == '\0') {
		fputc('-', stdout);
		return;
	}
	for (; *s != '\0'; s++)
		fputc((unsigned char)*s <= ' ' || *s == 0x7f ? '?' : *s,
		      stdout);
}

/* One event (grant/manage.h's JSON shape) as a line. */
static int
print_event(json_t *o, int json)
{
	json_free_t jfree = NULL;
	char *s;

	json_get_alloc_funcs(NULL, &jfree);
	if (json) {
		if ((s = json_dumps(o, JSON_COMPACT)) == NULL)
			return -1;
		printf("%s\n", s);
		jfree(s);
		return 0;
	}
	field(json_string_value(json_object_get(o, "time")));
	fputc(' ', stdout);
	field(json_string_value(json_object_get(o, "tenant")));
	fputc(' ', stdout);
	field(json_string_value(json_object_get(o, "event")));
	fputc(' ', stdout);
	field(json_string_value(json_object_get(o, "subject")));
	s = json_is_null(json_object_get(o, "detail"))
	        ? NULL
	        : json_dumps(json_object_get(o, "detail"),
	                     JSON_COMPACT | JSON_ENCODE_ANY);
	printf(" %s\n", s != NULL ? s : "-");
	if (s != NULL)
		jfree(s);
	return 0;
}

static int
list_local(const struct audit_args *a)
{
	struct eb_store_audit_filter f;
	struct eb_store_audit_list l;
	struct eb_config *cfg;
	struct eb_store *store = NULL;
	char err[512];
	size_t i;
	int rc = 1;
	json_t *o;

	memset(&f, 0, sizeof(f));
	f.tenant = a->tenant;
	f.event = a->event;
	/* a one-shot command: no root context, so the real time */
	if (a->since != NULL &&
	    eb_manage_parse_time(a->since, (int64_t)time(NULL), &f.since) ==
	        -1) {
		fprintf(stderr, "audit list: --since: unix seconds, "
		                "YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ, or an age "
		                "(30m, 24h, 7d)\n");
		return 2;
	}
	if (a->limit != NULL) {
		char *end;

		f.limit = (size_t)strtoul(a->limit, &end, 10);
		if (a->limit[0] < '0' || a->limit[0] > '9' || *end != '\0' ||
		    f.limit < 1 || f.limit > 1000) {
			fprintf(stderr, "audit list: --limit: 1 to 1000\n");
			return 2;
		}
	}
	if ((cfg = eb_cli_load_config("audit", a->config)) == NULL)
		return 1;
	if ((store = eb_store_open_config(cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "audit: %s: database: %s\n", cfg->file, err);
		goto out;
	}
	if (eb_store_audit_query(store, &f, &l) != EB_STORE_OK) {
		fprintf(stderr, "audit: cannot read the audit events\n");
		goto out;
	}
	rc = 0;
	for (i = 0; i < l.n; i++) {
		if ((o = eb_manage_audit_json(&l.v[i])) == NULL ||
		    print_event(o, a->json) == -1)
			rc = 1;
		json_decref(o);
	}
	eb_store_audit_list_finish(&l);
	if (fflush(stdout) != 0)
		rc = 1;
out:
	eb_store_close(store);
	eb_config_unref(cfg);
	return rc;
}

static int
list_remote(const struct audit_args *a)
{
	struct eb_cli_query qs;
	json_t *out = NULL, *ev;
	size_t i;
	int rc;

	eb_cli_query_init(&qs, "/admin/v1/audit");
	eb_cli_query_add(&qs, "tenant", a->tenant);
	eb_cli_query_add(&qs, "since", a->since);
	eb_cli_query_add(&qs, "event", a->event);
	eb_cli_query_add(&qs, "limit", a->limit);
	rc = eb_cli_remote_call(&a->remote, "audit", "GET",
	                        eb_cli_query_str(&qs), NULL, &out);
	eb_cli_query_finish(&qs);
	if (rc != 200) {
		json_decref(out);
		return 1;
	}
	rc = 0;
	json_array_foreach(json_object_get(out, "events"), i, ev)
	{
		if (print_event(ev, a->json) == -1)
			rc = 1;
	}
	json_decref(out);
	return fflush(stdout) != 0 ? 1 : rc;
}

int
eb_cli_audit(int argc, char **argv)
{
	struct audit_args a;

	memset(&a, 0, sizeof(a));
	if (argc < 2 || strcmp(argv[1], "list") != 0) {
		usage();
		return 2;
	}
	if (parse_args(argc, argv, &a) == -1) {
		usage();
		return 2;
	}
	return a.remote.server != NULL ? list_remote(&a) : list_local(&a);
}
