/*
 * `enrollbridge map set|unset|list` (map.h): the administrator's mapping
 * overrides, written through the store. A running server reads the
 * override at each sign-in, so a change applies to the next one.
 */
#include "cli/map.h"
#include "cli/cliopt.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli/remote.h"
#include "core/config.h"
#include "core/mem.h"
#include "core/str.h"
#include "grant/manage.h"
#include "store/store.h"

#define MAX_SUBJECT EB_MANAGE_MAX_SUBJECT
#define MAX_NOTE    EB_MANAGE_MAX_NOTE

enum { OP_SET, OP_UNSET, OP_LIST };

struct edit_args {
	int op, json;
	const char *config, *tenant, *subject, *apple_id, *note;
	struct eb_cli_remote remote; /* --server: the admin API */
};

static void
usage(void)
{
	fprintf(stderr,
	        "usage: enrollbridge map set -c FILE --tenant T --subject S "
	        "--apple-id USER@DOMAIN [--note TEXT]\n"
	        "       enrollbridge map unset -c FILE --tenant T --subject S\n"
	        "       enrollbridge map list -c FILE --tenant T [--json]\n"
	        "       (--server URL [--token-file F] instead of -c FILE: "
	        "through the admin API)\n");
}

/* 0 when s is 1..max bytes of UTF-8 without control characters. */
static int
text_ok(const char *what, const char *s, size_t max)
{
	char why[256];

	if (eb_manage_text_check(what, s, max, why, sizeof(why)) == 0)
		return 0;
	fprintf(stderr, "map: %s\n", why);
	return -1;
}

static int
apple_id_ok(const char *id)
{
	char why[512];

	if (eb_manage_apple_id_check("--apple-id", id, why, sizeof(why)) == 0)
		return 0;
	fprintf(stderr, "map: %s\n", why);
	return -1;
}

/* One option into a; 0, or -1 (message printed). */
static int
one_opt(int argc, char **argv, int *i, struct edit_args *a)
{
	static const struct {
		const char *name;
		size_t off;
		int ops; /* bit per op */
	} opts[] = {
	    {"-c", offsetof(struct edit_args, config), 7},
	    {"--config", offsetof(struct edit_args, config), 7},
	    {"--tenant", offsetof(struct edit_args, tenant), 7},
	    {"--subject", offsetof(struct edit_args, subject), 3},
	    {"--apple-id", offsetof(struct edit_args, apple_id), 1},
	    {"--note", offsetof(struct edit_args, note), 1},
	};
	const char *v;
	size_t k;
	int missing = 0;

	if (a->op == OP_LIST && strcmp(argv[*i], "--json") == 0) {
		a->json = 1;
		return 0;
	}
	for (k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
		if (!(opts[k].ops & (1 << a->op)))
			continue;
		if ((v = eb_cli_optval(argc, argv, i, opts[k].name,
		                       &missing)) != NULL) {
			*(const char **)(void *)((char *)a + opts[k].off) = v;
			return 0;
		}
		if (missing)
			break;
	}
	fprintf(stderr, "map %s: %s %s\n", argv[0], argv[*i],
	        missing ? "needs a value" : "is not an option here");
	return -1;
}

/* 0, 1 for --help, -1 on a usage error (message printed). */
static int
parse_args(int argc, char **argv, struct edit_args *a)
{
	int i, ro;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			return 1;
		if ((ro = eb_cli_remote_opt(argc, argv, &i, &a->remote)) == -1)
			return -1;
		if (ro == 0 && one_opt(argc, argv, &i, a) == -1)
			return -1;
	}
	if ((a->config == NULL) == (a->remote.server == NULL) ||
	    a->tenant == NULL) {
		fprintf(stderr,
		        "map %s: -c and --tenant are required (or --server "
		        "URL instead of -c)\n",
		        argv[0]);
		return -1;
	}
	if (a->op != OP_LIST && a->subject == NULL) {
		fprintf(stderr, "map %s: --subject is required\n", argv[0]);
		return -1;
	}
	if (a->op == OP_SET && a->apple_id == NULL) {
		fprintf(stderr, "map set: --apple-id is required\n");
		return -1;
	}
	if ((a->subject != NULL &&
	     text_ok("--subject", a->subject, MAX_SUBJECT) == -1) ||
	    (a->apple_id != NULL && apple_id_ok(a->apple_id) == -1) ||
	    (a->note != NULL && text_ok("--note", a->note, MAX_NOTE) == -1))
		return -1;
	return 0;
}

static int
do_set(struct eb_store *st, const struct edit_args *a)
{
	struct eb_store_mapping m;
	int rc;

	memset(&m, 0, sizeof(m));
	m.tenant = (char *)(uintptr_t)a->tenant;
	m.subject = (char *)(uintptr_t)a->subject;
	m.managed_apple_id = (char *)(uintptr_t)a->apple_id;
	m.note = (char *)(uintptr_t)a->note;
	/* a one-shot command: no root context, so the real time */
	m.created = m.updated = (int64_t)time(NULL);
	if ((rc = eb_store_mapping_put(st, &m)) != EB_STORE_OK) {
		fprintf(stderr, "map set: cannot store the override: %s\n",
		        eb_store_strerror(rc));
		return 1;
	}
	printf("%s %s -> %s\n", a->tenant, a->subject, a->apple_id);
	return 0;
}

static int
do_unset(struct eb_store *st, const struct edit_args *a)
{
	int rc = eb_store_mapping_delete(st, a->tenant, a->subject);

	if (rc == EB_STORE_NOT_FOUND) {
		fprintf(stderr,
		        "map unset: tenant %s has no override for "
		        "\"%s\"\n",
		        a->tenant, a->subject);
		return 1;
	}
	if (rc != EB_STORE_OK) {
		fprintf(stderr, "map unset: cannot remove the override: %s\n",
		        eb_store_strerror(rc));
		return 1;
	}
	printf("%s %s removed\n", a->tenant, a->subject);
	return 0;
}

static int
print_json(const struct eb_store_mapping *m)
{
	json_free_t jfree = NULL;
	json_t *o;
	char *s = NULL;

	if ((o = eb_manage_mapping_json(m)) == NULL)
		return -1;
	if ((s = json_dumps(o, JSON_COMPACT)) != NULL)
		printf("%s\n", s);
	json_get_alloc_funcs(NULL, &jfree);
	if (s != NULL && jfree != NULL)
		jfree(s);
	json_decref(o);
	return s != NULL ? 0 : -1;
}

static int
do_list(struct eb_store *st, const struct edit_args *a)
{
	struct eb_store_mapping_list l;
	size_t i;
	int rc;

	if ((rc = eb_store_mapping_list(st, a->tenant, &l)) != EB_STORE_OK) {
		fprintf(stderr, "map list: cannot read the overrides: %s\n",
		        eb_store_strerror(rc));
		return 1;
	}
	for (i = 0; i < l.n; i++) {
		if (a->json) {
			if (print_json(&l.v[i]) == -1) {
				fprintf(stderr,
				        "map list: cannot print the override "
				        "of row %zu as JSON (out of memory, "
				        "or text that is not UTF-8)\n",
				        i + 1);
				rc = 1;
				break;
			}
		} else
			printf("%s %s%s%s\n", l.v[i].subject,
			       l.v[i].managed_apple_id, l.v[i].note ? " " : "",
			       l.v[i].note ? l.v[i].note : "");
	}
	eb_store_mapping_list_finish(&l);
	return rc == EB_STORE_OK ? 0 : 1;
}

/* set, unset or list through the admin API; printed as locally. */
static int
edit_remote(const struct edit_args *a)
{
	static const char *const method[] = {"POST", "DELETE", "GET"};
	struct eb_cli_query q;
	json_free_t jfree = NULL;
	json_t *body = NULL, *out = NULL, *m;
	char *s;
	size_t i;
	int rc;

	eb_cli_query_init(&q, "/admin/v1/mappings");
	if (a->op == OP_SET)
		body = json_pack("{s:s,s:s,s:s,s:s?}", "tenant", a->tenant,
		                 "subject", a->subject, "managed_apple_id",
		                 a->apple_id, "note", a->note);
	else {
		eb_cli_query_add(&q, "tenant", a->tenant);
		eb_cli_query_add(&q, "subject", a->subject);
	}
	rc = eb_cli_remote_call(&a->remote, "map", method[a->op],
	                        eb_cli_query_str(&q), body, &out);
	eb_cli_query_finish(&q);
	json_decref(body);
	if (rc == 200 && a->op == OP_SET)
		printf("%s %s -> %s\n", a->tenant, a->subject, a->apple_id);
	else if (rc == 200 && a->op == OP_UNSET)
		printf("%s %s removed\n", a->tenant, a->subject);
	json_get_alloc_funcs(NULL, &jfree);
	if (rc == 200 && a->op == OP_LIST)
		json_array_foreach(json_object_get(out, "mappings"), i, m)
		{
			const char *note =
			    json_string_value(json_object_get(m, "note"));

			if (!a->json)
				printf("%s %s%s%s\n",
				       json_string_value(
				           json_object_get(m, "subject")),
				       json_string_value(json_object_get(
				           m, "managed_apple_id")),
				       note ? " " : "", note ? note : "");
			else if ((s = json_dumps(m, JSON_COMPACT)) != NULL) {
				printf("%s\n", s);
				jfree(s);
			}
		}
	json_decref(out);
	return rc == 200 ? 0 : 1;
}

int
eb_cli_map_edit(int argc, char **argv)
{
	struct eb_config_error cerr;
	struct eb_config *cfg;
	struct eb_store *st;
	struct edit_args a;
	char err[512];
	int rc;

	memset(&a, 0, sizeof(a));
	a.op = strcmp(argv[0], "set") == 0     ? OP_SET
	       : strcmp(argv[0], "unset") == 0 ? OP_UNSET
	                                       : OP_LIST;
	if ((rc = parse_args(argc, argv, &a)) != 0) {
		usage();
		return rc == 1 ? 0 : 2;
	}
	if (a.remote.server != NULL)
		return edit_remote(&a);
	memset(&cerr, 0, sizeof(cerr));
	if ((cfg = eb_config_load(a.config, &cerr)) == NULL) {
		fprintf(stderr, "map: %s: %s: %s\n",
		        cerr.file[0] ? cerr.file : a.config,
		        cerr.key[0] ? cerr.key : "-", cerr.reason);
		return 2;
	}
	rc = 2;
	if (eb_config_tenant(cfg, a.tenant) == NULL) {
		fprintf(stderr, "map: no tenant \"%s\" in %s\n", a.tenant,
		        a.config);
		goto out;
	}
	rc = 1;
	/* a DSN may hold a password: the error names the file only */
	if ((st = eb_store_open_config(cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "map: %s: database: %s\n", cfg->file, err);
		goto out;
	}
	rc = a.op == OP_SET     ? do_set(st, &a)
	     : a.op == OP_UNSET ? do_unset(st, &a)
	                        : do_list(st, &a);
	eb_store_close(st);
out:
	eb_config_unref(cfg);
	return rc;
}
