/*
 * The grants command (grants.h): list and revoke grants in the store. It
 * needs the configuration (for the database path) but no key: grants hold
 * nothing it must open.
 *
 * A running server answers bearer checks from a per-thread cache of token
 * and grant rows (token/bearer_cache.h), so a revocation made here must
 * tell it: the store handle announces every change it makes by touching
 * state_dir/store.changed after the write commits, and the server stats
 * that file before trusting its cache. This is the only command that
 * changes tokens or grants from outside the server: `keys rotate` writes
 * only signing keys (which the bearer check does not cache), `map` only
 * reads, and `device-sim` goes through the server's HTTP interface. A new
 * command that writes tokens or grants must announce them the same way.
 * A backend with a feed (PostgreSQL) needs no file: its invalidating
 * transactions notify every replica's feed, from any host.
 */
#include "cli/grants.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "cli/remote.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/mem.h"
#include "core/statedir.h"
#include "core/str.h"
#include "grant/manage.h"
#include "http/client.h"
#include "store/store.h"

#define MAX_REASON 512

struct grants_args {
	const char *config, *tenant, *reason, *id;
	const char *user; /* --user: an IdP subject or Managed Apple Account */
	int json;
	struct eb_cli_remote remote; /* --server: the admin API */
};

static void
usage(void)
{
	fprintf(stderr,
	        "usage: enrollbridge grants list {-c FILE | --server URL "
	        "[--token-file F]} [--tenant T] "
	        "[--user SUBJECT] [--json]\n"
	        "       enrollbridge grants revoke -c FILE "
	        "{GRANT_ID | --user SUBJECT [--tenant T]} [--reason TEXT]\n"
	        "       enrollbridge grants retire -c FILE "
	        "{GRANT_ID | --user SUBJECT [--tenant T]} [--reason TEXT]\n");
}

/* 0, or -1 on a usage error (message printed). */
static int
parse_args(int argc, char **argv, int revoke, struct grants_args *a)
{
	int i;

	memset(a, 0, sizeof(*a));
	for (i = 2; i < argc; i++) {
		const char *o = argv[i];
		int has_val = i + 1 < argc, ro;

		if ((ro = eb_cli_remote_opt(argc, argv, &i, &a->remote)) == -1)
			return -1;
		if (ro == 1)
			continue;

		if (strcmp(o, "--") == 0) {
			/* the rest are operands, even if they start with '-' */
			if (revoke && a->id == NULL && i + 1 < argc &&
			    i + 2 == argc) {
				a->id = argv[++i];
				continue;
			}
			fprintf(stderr, "grants: one GRANT_ID after --\n");
			return -1;
		}
		if ((strcmp(o, "-c") == 0 || strcmp(o, "--config") == 0) &&
		    has_val)
			a->config = argv[++i];
		else if (strncmp(o, "--config=", 9) == 0)
			a->config = o + 9;
		else if (strcmp(o, "--tenant") == 0 && has_val)
			a->tenant = argv[++i];
		else if (strncmp(o, "--tenant=", 9) == 0)
			a->tenant = o + 9;
		else if (strcmp(o, "--user") == 0 && has_val)
			a->user = argv[++i];
		else if (strncmp(o, "--user=", 7) == 0)
			a->user = o + 7;
		else if (!revoke && strcmp(o, "--json") == 0)
			a->json = 1;
		else if (revoke && strcmp(o, "--reason") == 0 && has_val)
			a->reason = argv[++i];
		else if (revoke && strncmp(o, "--reason=", 9) == 0)
			a->reason = o + 9;
		else if (revoke && o[0] != '-' && a->id == NULL)
			a->id = o;
		else {
			fprintf(stderr,
			        "grants: %s: not an option here, or "
			        "missing its value\n",
			        o);
			return -1;
		}
	}
	if ((a->config == NULL) == (a->remote.server == NULL)) {
		fprintf(
		    stderr,
		    "grants: one of -c FILE and --server URL is required\n");
		return -1;
	}
	if (revoke && (a->id == NULL) == (a->user == NULL)) {
		fprintf(stderr, "grants: %s needs a GRANT_ID or --user\n",
		        argv[1]);
		return -1;
	}
	if (revoke && a->id != NULL && a->tenant != NULL) {
		fprintf(stderr, "grants: --tenant goes with --user only\n");
		return -1;
	}
	if (a->user != NULL && (*a->user == '\0' || strlen(a->user) > 1024)) {
		fprintf(stderr, "grants: --user: empty or too long\n");
		return -1;
	}
	if (a->tenant != NULL && !eb_str_is_tenant_id(a->tenant)) {
		fprintf(stderr, "grants: --tenant: not a tenant id\n");
		return -1;
	}
	if (a->reason != NULL && strlen(a->reason) > MAX_REASON) {
		fprintf(stderr, "grants: --reason: longer than %d bytes\n",
		        MAX_REASON);
		return -1;
	}
	return 0;
}

static void
iso(int64_t t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "-");
}

/*
 * A grant read back from the store may hold bytes that are not UTF-8 (a
 * row written before the server refused them, or by hand): they are
 * printed escaped, never dropped, and said once on stderr.
 */
static void
warn_not_utf8(const struct eb_store_grant *g, const char *key, int json)
{
	const char *id = g->id != NULL && eb_str_is_utf8(g->id, strlen(g->id))
	                     ? g->id
	                     : "(id not UTF-8)";

	if (json)
		fprintf(stderr,
		        "grants: warning: grant %s: %s is not UTF-8: bad bytes "
		        "shown as U+FFFD, all its bytes in %s_hex\n",
		        id, key, key);
	else
		fprintf(stderr,
		        "grants: warning: grant %s: %s is not UTF-8: bad bytes "
		        "shown as \\xNN\n",
		        id, key);
}

/* A field for the space-separated listing: "-" when empty, no whitespace
 * or control characters that would break the columns ('?'), and a byte
 * that is not UTF-8 as \xNN (a backslash as \\, so that both read back). */
static void
field(const struct eb_store_grant *g, const char *key, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, k;

	if (s == NULL || *s == '\0') {
		fputc('-', stdout);
		return;
	}
	n = strlen(s);
	if (!eb_str_is_utf8(s, n))
		warn_not_utf8(g, key, 0);
	while (*p != '\0') {
		if (*p <= ' ' || *p == 0x7f) {
			fputc('?', stdout);
			p++;
		} else if (*p == '\\') {
			fputs("\\\\", stdout);
			p++;
		} else if (*p < 0x80) {
			fputc(*p++, stdout);
		} else if ((k = eb_str_utf8_seq(p, strlen((const char *)p))) >
		           0) {
			/* a C1 control (U+0080..U+009F) is one for terminals */
			if (k == 2 && p[0] == 0xc2 && p[1] < 0xa0)
				fputc('?', stdout);
			else
				fwrite(p, 1, k, stdout);
			p += k;
		} else
			printf("\\x%02X", *p++);
	}
}

static void
print_line(const struct eb_store_grant *g)
{
	char created[32];

	iso(g->created, created, sizeof(created));
	field(g, "id", g->id);
	fputc(' ', stdout);
	field(g, "tenant", g->tenant);
	printf(" %s ", eb_store_grant_status_name(g->status));
	field(g, "managed_apple_id", g->managed_apple_id);
	fputc(' ', stdout);
	field(g, "enrollment_mode", g->enrollment_mode);
	fputc(' ', stdout);
	if (g->binding_kind != NULL && g->binding_value != NULL) {
		field(g, "binding_kind", g->binding_kind);
		fputc('=', stdout);
		field(g, "binding_value", g->binding_value);
	} else
		fputc('-', stdout);
	printf(" %s\n", created);
}

static void
warn_json(const struct eb_store_grant *g, const char *key)
{
	warn_not_utf8(g, key, 1);
}

static int
print_json(const struct eb_store_grant *g)
{
	json_t *o = eb_manage_grant_json(g, warn_json);
	char *s = NULL;
	json_free_t jfree = NULL;

	if (o == NULL)
		return -1;
	if ((s = json_dumps(o, JSON_COMPACT)) != NULL)
		printf("%s\n", s);
	json_get_alloc_funcs(NULL, &jfree);
	if (s != NULL)
		jfree(s);
	json_decref(o);
	return s != NULL ? 0 : -1;
}

static int
list(struct eb_store *store, const struct grants_args *a)
{
	struct eb_store_grant_filter f;
	struct eb_store_grant_list l;
	size_t i;
	int rc = 0;

	memset(&f, 0, sizeof(f));
	f.tenant = a->tenant;
	f.status = -1;
	if (eb_store_grant_list(store, &f, &l) != EB_STORE_OK) {
		fprintf(stderr, "grants: cannot list the grants\n");
		return 1;
	}
	for (i = 0; i < l.n; i++) {
		if (!eb_manage_is_person(&l.v[i], a->user))
			continue;
		if (!a->json)
			print_line(&l.v[i]);
		else if (print_json(&l.v[i]) != 0)
			rc = 1;
	}
	eb_store_grant_list_finish(&l);
	if (fflush(stdout) != 0)
		rc = 1;
	return rc;
}

/* Revoke (retire 0) or retire one grant, saying what happened. */
static int
end_one(struct eb_store *store, const struct grants_args *a, int retire)
{
	const char *done = retire ? "retired" : "revoked";

	/* a one-shot command: no root context, so the real time */
	switch (eb_manage_end_grant(store, a->id, retire, a->reason,
	                            (int64_t)time(NULL))) {
	case EB_MANAGE_ENDED:
		printf("%s %s\n", a->id, done);
		return 0;
	case EB_MANAGE_ALREADY:
		printf(retire ? "%s retired\n" : "%s already revoked\n", a->id);
		return 0;
	case EB_MANAGE_NOT_FOUND:
		fprintf(stderr, "grants: no grant %s\n", a->id);
		return 1;
	case EB_MANAGE_CONFLICT:
		fprintf(stderr,
		        retire ? "grants: grant %s was superseded or expired; "
		                 "not changed\n"
		               : "grants: grant %s is no longer active; not "
		                 "changed\n",
		        a->id);
		return 1;
	default:
		fprintf(stderr, "grants: cannot %s grant %s\n",
		        retire ? "retire" : "revoke", a->id);
		return 1;
	}
}

static int
revoke(struct eb_store *store, const struct grants_args *a)
{
	return end_one(store, a, 0);
}

/* End a grant for unenrollment: its device gets 403 at its next request. */
static int
retire(struct eb_store *store, const struct grants_args *a)
{
	return end_one(store, a, 1);
}

/*
 * revoke or retire (end) every active grant of a->user, of a->tenant when
 * set. 0 when at least one was ended and none failed; 1 otherwise.
 */
static int
end_user(struct eb_store *store, const struct grants_args *a,
         int (*end)(struct eb_store *, const struct grants_args *))
{
	struct eb_store_grant_filter f;
	struct eb_store_grant_list l;
	struct grants_args one;
	size_t i, n = 0;
	int rc = 0;

	memset(&f, 0, sizeof(f));
	f.tenant = a->tenant;
	f.status = EB_STORE_GRANT_ACTIVE;
	if (eb_store_grant_list(store, &f, &l) != EB_STORE_OK) {
		fprintf(stderr, "grants: cannot list the grants\n");
		return 1;
	}
	for (i = 0; i < l.n; i++) {
		if (!eb_manage_is_person(&l.v[i], a->user))
			continue;
		one = *a;
		one.id = l.v[i].id;
		n++;
		if (end(store, &one) != 0)
			rc = 1;
	}
	eb_store_grant_list_finish(&l);
	if (n == 0) {
		fprintf(stderr, "grants: no active grant of that user\n");
		rc = 1;
	}
	return rc;
}

/* ---- through the admin API (--server) ---- */

/* A grant of the API's answer as the listing prints it. */
static void
print_remote(json_t *o, int json)
{
	struct eb_store_grant g;
	json_free_t jfree = NULL;
	char *s;

	if (json) {
		json_get_alloc_funcs(NULL, &jfree);
		if ((s = json_dumps(o, JSON_COMPACT)) != NULL) {
			printf("%s\n", s);
			jfree(s);
		}
		return;
	}
	memset(&g, 0, sizeof(g));
	/* borrowed: print_line only reads */
	g.id = (char *)json_string_value(json_object_get(o, "id"));
	g.tenant = (char *)json_string_value(json_object_get(o, "tenant"));
	g.status = eb_store_grant_status_parse(
	    json_string_value(json_object_get(o, "status")));
	g.managed_apple_id =
	    (char *)json_string_value(json_object_get(o, "managed_apple_id"));
	g.enrollment_mode =
	    (char *)json_string_value(json_object_get(o, "enrollment_mode"));
	g.binding_kind =
	    (char *)json_string_value(json_object_get(o, "binding_kind"));
	g.binding_value =
	    (char *)json_string_value(json_object_get(o, "binding_value"));
	g.created = json_integer_value(json_object_get(o, "created"));
	print_line(&g);
}

static int
list_remote(const struct grants_args *a)
{
	struct eb_cli_query q;
	char off[32];
	json_t *out, *g;
	size_t i;
	long long next = 0;
	int rc;

	do {
		snprintf(off, sizeof(off), "%lld", next);
		eb_cli_query_init(&q, "/admin/v1/grants");
		eb_cli_query_add(&q, "tenant", a->tenant);
		eb_cli_query_add(&q, "user", a->user);
		eb_cli_query_add(&q, "limit", "1000");
		eb_cli_query_add(&q, "offset", off);
		rc = eb_cli_remote_call(&a->remote, "grants", "GET",
		                        eb_cli_query_str(&q), NULL, &out);
		eb_cli_query_finish(&q);
		if (rc != 200) {
			json_decref(out);
			return 1;
		}
		json_array_foreach(json_object_get(out, "grants"), i, g)
		{
			print_remote(g, a->json);
		}
		next = json_integer_value(json_object_get(out, "next_offset"));
		json_decref(out);
	} while (next > 0);
	return fflush(stdout) != 0 ? 1 : 0;
}

/* revoke or retire one grant or one person's through the API */
static int
end_remote(const struct grants_args *a, int retire)
{
	const char *what = retire ? "retire" : "revoke";
	char path[1024];
	json_t *body, *out = NULL, *v;
	size_t i;
	int rc;

	body = json_pack("{s:s?,s:s?,s:s?}", "reason", a->reason, "user",
	                 a->id == NULL ? a->user : NULL, "tenant", a->tenant);
	if (body == NULL)
		return 1;
	if (a->id != NULL) {
		struct eb_buf b;

		eb_buf_init(&b, sizeof(path));
		if (eb_http_urlencode(&b, a->id) == -1 ||
		    snprintf(path, sizeof(path), "/admin/v1/grants/%s/%s",
		             eb_buf_str(&b), what) >= (int)sizeof(path)) {
			eb_buf_finish(&b);
			json_decref(body);
			fprintf(stderr, "grants: GRANT_ID too long\n");
			return 1;
		}
		eb_buf_finish(&b);
	} else
		snprintf(path, sizeof(path), "/admin/v1/person/%s", what);
	rc = eb_cli_remote_call(&a->remote, "grants", "POST", path, body, &out);
	json_decref(body);
	if (a->id != NULL && rc == 200)
		printf("%s %s\n", a->id,
		       json_string_value(json_object_get(out, "result")));
	else if (rc == 200 || rc == 409)
		json_array_foreach(json_object_get(out, "ended"), i, v)
		{
			printf("%s %s\n", json_string_value(v),
			       retire ? "retired" : "revoked");
		}
	json_decref(out);
	return rc == 200 ? 0 : 1;
}

/* Make every change through store touch the server's change file. */
static int
announce_changes(struct eb_store *store, const struct eb_config *cfg)
{
	char path[4096];

	if (eb_statedir_path(cfg->state_dir, EB_STATEDIR_STORE_CHANGED, path,
	                     sizeof(path)) == -1) {
		fprintf(stderr, "grants: %s: state_dir: path too long\n",
		        cfg->file);
		return -1;
	}
	if (eb_store_set_change_file(store, path, 1) == -1) {
		fprintf(stderr, "grants: out of memory\n");
		return -1;
	}
	return 0;
}

int
eb_cli_grants(int argc, char **argv)
{
	struct eb_config_error cerr;
	struct eb_config *cfg;
	struct eb_store *store;
	struct grants_args a;
	char err[512];
	int do_revoke, do_retire, rc;

	if (argc < 2 ||
	    (strcmp(argv[1], "list") != 0 && strcmp(argv[1], "revoke") != 0 &&
	     strcmp(argv[1], "retire") != 0)) {
		usage();
		return 2;
	}
	do_retire = strcmp(argv[1], "retire") == 0;
	do_revoke = do_retire || strcmp(argv[1], "revoke") == 0;
	if (parse_args(argc, argv, do_revoke, &a) != 0) {
		usage();
		return 2;
	}
	if (a.remote.server != NULL)
		return do_revoke ? end_remote(&a, do_retire) : list_remote(&a);
	memset(&cerr, 0, sizeof(cerr));
	if ((cfg = eb_config_load(a.config, &cerr)) == NULL) {
		fprintf(stderr, "grants: %s: %s: %s\n",
		        cerr.file[0] ? cerr.file : a.config,
		        cerr.key[0] ? cerr.key : "-", cerr.reason);
		return 1;
	}
	if ((store = eb_store_open_config(cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "grants: %s: database: %s\n", cfg->file, err);
		eb_config_unref(cfg);
		return 1;
	}
	/* a backend with a feed announces through the database itself */
	if (do_revoke && !eb_store_backend_has_feed(store) &&
	    announce_changes(store, cfg) != 0) {
		eb_store_close(store);
		eb_config_unref(cfg);
		return 1;
	}
	if (!do_revoke)
		rc = list(store, &a);
	else if (a.user != NULL)
		rc = end_user(store, &a, do_retire ? retire : revoke);
	else
		rc = do_retire ? retire(store, &a) : revoke(store, &a);
	eb_store_close(store);
	eb_config_unref(cfg);
	return rc;
}
