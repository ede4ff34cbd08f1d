/*
 * The map command (map.h): load the configuration and a claims document,
 * then run the same provider check, Managed Apple Account mapping and
 * access policy a live sign-in runs, and say what they decide.
 */
#include "cli/map.h"
#include "cli/cliopt.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/config.h"
#include "identity/identity.h"
#include "identity/mapping.h"
#include "identity/policy.h"
#include "identity/route.h"
#include "providers/provider.h"
#include "store/store.h"

/* A claims document is small; refuse anything that is plainly not one. */
#define MAX_CLAIMS_BYTES (1024 * 1024)

struct map_args {
	const char *config, *tenant, *claims, *typed;
};

static void
usage(void)
{
	fprintf(stderr, "usage: enrollbridge map -c FILE --tenant T --claims "
	                "FILE.json [--typed USER@DOMAIN]\n");
}

/* 0, 1 for --help, -1 on a usage error (message printed). */
static int
parse_args(int argc, char **argv, struct map_args *a)
{
	const char *v;
	int i, missing = 0;

	memset(a, 0, sizeof(*a));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			return 1;
		if ((v = eb_cli_optval(argc, argv, &i, "-c", &missing)) !=
		        NULL ||
		    (v = eb_cli_optval(argc, argv, &i, "--config", &missing)) !=
		        NULL)
			a->config = v;
		else if ((v = eb_cli_optval(argc, argv, &i, "--tenant",
		                            &missing)))
			a->tenant = v;
		else if ((v = eb_cli_optval(argc, argv, &i, "--claims",
		                            &missing)))
			a->claims = v;
		else if ((v = eb_cli_optval(argc, argv, &i, "--typed",
		                            &missing)))
			a->typed = v;
		else {
			fprintf(stderr, "map: %s %s\n", argv[i],
			        missing ? "needs a value" : "is not an option");
			return -1;
		}
	}
	if (a->config == NULL || a->tenant == NULL || a->claims == NULL) {
		fprintf(stderr,
		        "map: -c, --tenant and --claims are required\n");
		return -1;
	}
	return 0;
}

/* The claims object in path, or NULL (message printed). */
static json_t *
read_claims(const char *path)
{
	json_error_t jerr;
	struct stat st;
	json_t *claims;

	if (stat(path, &st) == -1 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "map: %s: cannot read the claims file\n", path);
		return NULL;
	}
	if (st.st_size > MAX_CLAIMS_BYTES) {
		fprintf(stderr, "map: %s: larger than %d bytes\n", path,
		        MAX_CLAIMS_BYTES);
		return NULL;
	}
	if ((claims = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		fprintf(stderr, "map: %s:%d: %s\n", path, jerr.line, jerr.text);
		return NULL;
	}
	if (!json_is_object(claims)) {
		fprintf(stderr, "map: %s: must be a JSON object of claims\n",
		        path);
		json_decref(claims);
		return NULL;
	}
	return claims;
}

static void
print_verdict(const struct eb_policy_verdict *v)
{
	printf("decision: %s\n", v->allow ? "allow" : "deny");
	printf("code: %s\n", v->code);
	if (!v->allow) {
		printf("reason: %s\n", v->reason);
		if (v->hint[0] != '\0')
			printf("hint: %s\n", v->hint);
	}
}

/* The provider's own rules; 0 or -1 with v filled. */
static int
provider_check(const struct eb_tenant *t, const struct eb_provider_ops *ops,
               struct eb_identity *id, struct eb_policy_verdict *v)
{
	char why[256] = "";
	int rc;

	if (ops->check_identity == NULL)
		return 0;
	rc = ops->check_identity(t, id, why, sizeof(why));
	if (rc == EB_PROVIDER_OK)
		return 0;
	eb_policy_deny(v, rc == EB_PROVIDER_DENY ? "idp_rule" : "idp_error",
	               NULL, "%s", why);
	return -1;
}

/*
 * The store, when the configured database exists (a dry run never creates
 * an SQLite file; a PostgreSQL database is always there to ask). *st is
 * NULL when skipped; returns -1 only when opening failed.
 */
static int
open_store(const struct eb_config *cfg, struct eb_store **st)
{
	const char *where;
	char err[256] = "";

	*st = NULL;
	if (cfg->database == NULL ||
	    (!cfg->database_pg && access(cfg->database, F_OK) == -1)) {
		printf("overrides: skipped (no database at %s)\n",
		       cfg->database ? cfg->database : "-");
		return 0;
	}
	/* a DSN may hold a password: never printed */
	where = cfg->database_pg ? "the PostgreSQL database" : cfg->database;
	if ((*st = eb_store_open_config(cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "map: %s: %s\n", where, err);
		return -1;
	}
	printf("overrides: checked (%s)\n", where);
	return 0;
}

/* The route a sign-in with these claims takes, and where it leads. */
static void
print_route(const struct eb_tenant *t, const struct eb_identity *id)
{
	const struct eb_tenant_route *r = eb_route_match(t, id);
	const struct eb_tenant *view = r != NULL ? &r->view : t;

	if (r == NULL)
		printf(
		    "route: - (the tenant's own enrollment, mdm and esso)\n");
	else
		printf("route: %s (overrides%s%s%s)\n", r->name,
		       r->overrides & EB_ROUTE_ENROLLMENT ? " enrollment" : "",
		       r->overrides & EB_ROUTE_MDM ? " mdm" : "",
		       r->overrides & EB_ROUTE_ESSO ? " esso" : "");
	printf("mdm_upstream: %s\n",
	       view->mdm.upstream ? view->mdm.upstream : "-");
	printf("mdm_profile: %s\n",
	       view->mdm.profile_url    ? view->mdm.profile_url
	       : view->mdm.profile_file ? view->mdm.profile_file
	                                : "-");
	if (eb_route_needs_groups(t) && !id->groups_known)
		printf("note: no groups in the claims; a live sign-in may "
		       "read them from the identity provider\n");
}

static int
run(const struct eb_config *cfg, const struct eb_tenant *t, json_t *claims,
    const char *typed)
{
	const struct eb_provider_ops *ops = eb_provider_find(t->idp.type);
	struct eb_mapping_result map;
	struct eb_policy_verdict v;
	struct eb_identity id;
	struct eb_store *st = NULL;
	const char *iss = json_string_value(json_object_get(claims, "iss"));
	const char *login;
	int rc = 2;

	memset(&map, 0, sizeof(map));
	eb_identity_init(&id);
	if (ops == NULL) {
		fprintf(stderr, "map: no provider for idp.type \"%s\"\n",
		        t->idp.type);
		return 2;
	}
	if (eb_identity_from_claims(&id, iss ? iss : t->idp.issuer, claims) ==
	    -1) {
		fprintf(stderr, "map: the claims have no \"sub\"\n");
		return 2;
	}
	printf("tenant: %s\nprovider: %s\n", t->id, ops->type);
	if (open_store(cfg, &st) == -1)
		goto out;
	rc = 1;
	if (provider_check(t, ops, &id, &v) == -1)
		goto out_print;
	login = eb_identity_claim(&id, t->mapping.claim);
	printf("idp_subject: %s\nidp_login: %s (claim \"%s\")\n", id.subject,
	       login ? login : "-", t->mapping.claim);
	if (typed != NULL)
		printf("typed: %s\n", typed);
	if (eb_mapping_resolve(t, st, &id, typed, &map, &v) != EB_MAPPING_OK)
		goto out_print;
	printf("managed_apple_id: %s\nrule: %s\n", map.managed_apple_id,
	       map.source);
	if (eb_policy_needs_groups(t, &id) && ops->resolve_groups != NULL)
		printf("note: the groups are not in the token; a live "
		       "sign-in asks the identity provider for them (not "
		       "done in a dry run)\n");
	if (eb_policy_check(t, &id, &map, &v) == 0)
		rc = 0;
	print_route(t, &id);
out_print:
	print_verdict(&v);
out:
	eb_mapping_result_finish(&map);
	eb_identity_finish(&id);
	eb_store_close(st);
	return rc;
}

int
eb_cli_map(int argc, char **argv)
{
	struct eb_config_error err;
	const struct eb_tenant *t;
	struct eb_config *cfg;
	struct map_args a;
	json_t *claims;
	int rc;

	if (argc >= 2 &&
	    (strcmp(argv[1], "set") == 0 || strcmp(argv[1], "unset") == 0 ||
	     strcmp(argv[1], "list") == 0))
		return eb_cli_map_edit(argc - 1, argv + 1);
	if ((rc = parse_args(argc, argv, &a)) != 0) {
		usage();
		return rc == 1 ? 0 : 2;
	}
	memset(&err, 0, sizeof(err));
	if ((cfg = eb_config_load(a.config, &err)) == NULL) {
		fprintf(stderr, "map: %s: %s: %s\n",
		        err.file[0] ? err.file : a.config,
		        err.key[0] ? err.key : "-", err.reason);
		return 2;
	}
	rc = 2;
	if ((t = eb_config_tenant(cfg, a.tenant)) == NULL) {
		fprintf(stderr, "map: no tenant \"%s\" in %s\n", a.tenant,
		        a.config);
		goto out_unref;
	}
	if ((claims = read_claims(a.claims)) == NULL)
		goto out_unref;
	rc = run(cfg, t, claims, a.typed);
	json_decref(claims);
out_unref:
	eb_config_unref(cfg);
	return rc;
}
