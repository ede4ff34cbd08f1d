/*
 * Configuration loading: the main file (listen address, public URL, paths,
 * limits, logging), the scan of tenants_dir (every "*.json", sorted by
 * name), the cross-tenant checks (duplicate id, a domain claimed twice),
 * reference counting, and the lookups request handlers use. Tenant files
 * themselves are parsed in config_tenant.c; the typed getters are in
 * config_util.c.
 *
 * Defaults not spelled out in config.h: tenants_dir "tenants", state_dir
 * "state" and database "{state_dir}/enrollbridge.db", all relative to the
 * main file's folder.
 */
#include "core/config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/digest.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/str.h"
#include "http/tls.h"
#include <pthread.h>
#include <openssl/rand.h>

static const char *const family_names[EB_FAMILY_COUNT] = {
    "iPhone", "iPad", "Mac", "AppleTV", "Watch", "RealityDevice"};

/* The absolute folder holding path. */
static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char cwd[4096], *d, *abs;

	if (slash == NULL)
		d = eb_strdup(".");
	else
		d = eb_strndup(path,
		               slash == path ? 1 : (size_t)(slash - path));
	if (d == NULL || d[0] == '/')
		return d;
	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		eb_free(d);
		return NULL;
	}
	abs = eb_cfg_join(cwd, d);
	eb_free(d);
	return abs;
}

/* One "host:port" or "[v6]:port" into l; key names it in errors. */
static int
parse_listen_one(struct eb_cfg_ctx *c, const char *key, const char *s,
                 struct eb_listen *l)
{
	const char *host, *port, *p;
	unsigned char a[16];
	size_t hl;
	long v = 0;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':')
			goto bad;
		host = s + 1;
		hl = (size_t)(rb - host);
		port = rb + 2;
	} else {
		const char *colon = strrchr(s, ':');

		if (colon == NULL || memchr(s, ':', (size_t)(colon - s)))
			goto bad;
		host = s;
		hl = (size_t)(colon - s);
		port = colon + 1;
	}
	for (p = port; isdigit((unsigned char)*p) && p - port < 5; p++)
		v = v * 10 + (*p - '0');
	if (*p != '\0' || p == port || v < 1 || v > 65535 || hl == 0)
		goto bad;
	if ((l->host = eb_strndup(host, hl)) == NULL)
		return eb_cfg_fail(c, NULL, key, "out of memory");
	if (s[0] == '['
	        ? inet_pton(AF_INET6, l->host, a) != 1
	        : strspn(l->host,
	                 "abcdefghijklmnopqrstuvwxyz"
	                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != hl)
		goto bad;
	l->port = (uint16_t)v;
	return 0;
bad:
	return eb_cfg_fail(
	    c, NULL, key,
	    "must be \"host:port\" (\"[address]:port\" for IPv6)");
}

/* "admin_listen": one "host:port" (absent: no admin listener). */
static int
parse_admin_listen(struct eb_cfg_ctx *c, const json_t *root,
                   struct eb_config *cfg)
{
	struct eb_listen l;
	char *s = NULL;
	int rc;

	if (eb_cfg_str(c, root, NULL, "admin_listen", 0, 0, &s) == -1)
		return -1;
	if (s == NULL)
		return 0;
	memset(&l, 0, sizeof(l));
	rc = parse_listen_one(c, "admin_listen", s, &l);
	eb_free(s);
	if (rc == -1) {
		eb_free(l.host);
		return -1;
	}
	cfg->admin_listen_host = l.host;
	cfg->admin_listen_port = l.port;
	return 0;
}

/* Refuse listen[i] when an earlier entry is the same address. */
static int
listen_unique(struct eb_cfg_ctx *c, const struct eb_config *cfg, size_t i)
{
	char key[32];
	size_t j;

	for (j = 0; j < i; j++)
		if (cfg->listen[j].port == cfg->listen[i].port &&
		    strcasecmp(cfg->listen[j].host, cfg->listen[i].host) == 0) {
			snprintf(key, sizeof(key), "listen[%zu]", i);
			return eb_cfg_fail(
			    c, NULL, key, "the same address as listen[%zu]", j);
		}
	return 0;
}

/*
 * "listen": "host:port" or a list of them (dual stack: ["0.0.0.0:8443",
 * "[::]:8443"]); default "127.0.0.1:8080".
 */
static int
parse_listen(struct eb_cfg_ctx *c, const json_t *root, struct eb_config *cfg)
{
	const json_t *v = json_object_get(root, "listen");
	char key[32];
	size_t i, n;

	n = json_is_array(v) ? json_array_size(v) : 1;
	if (v != NULL && !json_is_string(v) && !json_is_array(v))
		return eb_cfg_fail(c, NULL, "listen",
		                   "must be a string or a list of strings");
	if (n == 0 || n > EB_CONFIG_MAX_LISTEN)
		return eb_cfg_fail(c, NULL, "listen",
		                   "must name 1 to %d addresses",
		                   EB_CONFIG_MAX_LISTEN);
	if ((cfg->listen = eb_calloc(n, sizeof(*cfg->listen))) == NULL)
		return eb_cfg_fail(c, NULL, "listen", "out of memory");
	cfg->nlisten = n;
	for (i = 0; i < n; i++) {
		const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;

		if (json_is_array(v))
			snprintf(key, sizeof(key), "listen[%zu]", i);
		else
			snprintf(key, sizeof(key), "listen");
		if (e != NULL && !json_is_string(e))
			return eb_cfg_fail(c, NULL, key, "must be a string");
		if (parse_listen_one(c, key,
		                     e != NULL ? json_string_value(e)
		                               : "127.0.0.1:8080",
		                     &cfg->listen[i]) == -1 ||
		    listen_unique(c, cfg, i) == -1)
			return -1;
	}
	cfg->listen_host = cfg->listen[0].host;
	cfg->listen_port = cfg->listen[0].port;
	return 0;
}

/* "tls": {"cert", "key", "min_version", "priorities"}. */
static int
parse_tls(struct eb_cfg_ctx *c, const json_t *tls, struct eb_config *cfg)
{
	const char *key;
	char why[160];

	if (tls == NULL)
		return 0;
	if (eb_cfg_keys(c, tls, "tls", eb_cfg_keys_tls) == -1 ||
	    eb_cfg_path(c, tls, "tls", "cert", 1, &cfg->tls_cert) == -1 ||
	    eb_cfg_path(c, tls, "tls", "key", 1, &cfg->tls_key) == -1 ||
	    eb_cfg_str(c, tls, "tls", "min_version", 0, 0,
	               &cfg->tls_min_version) == -1 ||
	    eb_cfg_str(c, tls, "tls", "priorities", 0, EB_CFG_NONEMPTY,
	               &cfg->tls_priorities) == -1)
		return -1;
	if (eb_tls_check_policy(cfg->tls_min_version, cfg->tls_priorities, &key,
	                        why, sizeof(why)) == -1)
		return eb_cfg_fail(c, "tls", key, "%s", why);
	return 0;
}

const char *const eb_cfg_keys_limits[] = {"max_body_bytes",
                                          "max_header_bytes",
                                          "upstream_timeout",
                                          "upstream_max_bytes",
                                          "jwks_max_keys",
                                          "max_connections",
                                          "per_ip_connections",
                                          "connection_timeout",
                                          "threads",
                                          "head_timeout",
                                          "min_body_rate",
                                          "body_budget_bytes",
                                          "db_pool",
                                          "db_timeout",
                                          "renew_lease",
                                          NULL};

static int
parse_limits(struct eb_cfg_ctx *c, const json_t *root, struct eb_limits *l)
{
	const char *p = "limits";
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	long long v;
	json_t *o;

	l->max_body_bytes = 1024 * 1024;
	l->max_header_bytes = 16 * 1024;
	l->upstream_timeout = 10;
	l->upstream_max_bytes = 1024 * 1024;
	l->jwks_max_keys = 64;
	l->max_connections = 4096;
	l->per_ip_connections = 256;
	l->connection_timeout = 30;
	l->threads = cores < 1 ? 1 : cores > 256 ? 256 : (unsigned)cores;
	l->head_timeout = 10;
	l->min_body_rate = 1024;
	l->body_budget_bytes = 128 * 1024 * 1024;
	l->db_pool = 0; /* derived from threads after parsing */
	l->db_timeout = 5;
	l->renew_lease = 0; /* derived from upstream_timeout */
	if (eb_cfg_obj(c, root, NULL, p, &o) == -1)
		return -1;
	if (o == NULL)
		return 0;
	if (eb_cfg_keys(c, o, p, eb_cfg_keys_limits) == -1)
		return -1;
#define LIMIT(field, lo, hi)                                                   \
	do {                                                                   \
		v = (long long)l->field;                                       \
		if (eb_cfg_int(c, o, p, #field, lo, hi, &v) == -1)             \
			return -1;                                             \
		l->field = v;                                                  \
	} while (0)
	LIMIT(max_body_bytes, 1024, 64LL * 1024 * 1024);
	LIMIT(max_header_bytes, 1024, 1024 * 1024);
	LIMIT(upstream_timeout, 1, 300);
	LIMIT(upstream_max_bytes, 1024, 64LL * 1024 * 1024);
	LIMIT(jwks_max_keys, 1, 1024);
	LIMIT(max_connections, 1, 1000000);
	LIMIT(per_ip_connections, 0, 1000000); /* 0: off */
	LIMIT(connection_timeout, 1, 3600);
	LIMIT(threads, 1, 1024);
	LIMIT(head_timeout, 1, 3600);
	LIMIT(min_body_rate, 0, 1LL << 30);
	LIMIT(body_budget_bytes, 64 * 1024, 1LL << 40);
	LIMIT(db_pool, 1, 64);
	LIMIT(db_timeout, 1, 300);
	LIMIT(renew_lease, 10, 86400);
#undef LIMIT
	if (l->per_ip_connections > l->max_connections)
		return eb_cfg_fail(c, p, "per_ip_connections",
		                   "must not exceed limits.max_connections");
	/* a renewal starts its IdP calls only with 3 x upstream_timeout of
	 * its claim left (grant/policy.h): a shorter claim never renews */
	if (l->renew_lease != 0 &&
	    l->renew_lease < 3LL * l->upstream_timeout + 10)
		return eb_cfg_fail(
		    c, p, "renew_lease",
		    "must be at least 3 x limits.upstream_timeout "
		    "+ 10 seconds (the IdP calls and the "
		    "write-back of one renewal)");
	return 0;
}

const char *const eb_cfg_keys_log[] = {"format", "level", "access",
                                       "personal_data", NULL};

static int
parse_log(struct eb_cfg_ctx *c, const json_t *root, struct eb_config *cfg)
{
	static const char *const formats[] = {"text", "json", NULL};
	static const char *const levels[] = {"debug", "info", "warn", "error",
	                                     NULL};
	json_t *o;

	cfg->log_json = 1;
	cfg->log_level = EB_LOG_INFO;
	cfg->access_log = 1;
	cfg->log_personal = 1;
	if (eb_cfg_obj(c, root, NULL, "log", &o) == -1)
		return -1;
	if (o == NULL)
		return 0;
	return eb_cfg_keys(c, o, "log", eb_cfg_keys_log) == -1 ||
	               eb_cfg_enum(c, o, "log", "format", formats,
	                           &cfg->log_json) == -1 ||
	               eb_cfg_enum(c, o, "log", "level", levels,
	                           &cfg->log_level) == -1 ||
	               eb_cfg_bool(c, o, "log", "access", &cfg->access_log) ==
	                   -1 ||
	               eb_cfg_bool(c, o, "log", "personal_data",
	                           &cfg->log_personal) == -1
	           ? -1
	           : 0;
}

/* "trusted_proxies": a list of CIDRs (trusted.h). */
static int
parse_trusted(struct eb_cfg_ctx *c, const json_t *root, struct eb_trusted *t)
{
	const json_t *a = json_object_get(root, "trusted_proxies");
	const char *why;
	char key[64];
	size_t i;

	if (a == NULL)
		return 0;
	if (!json_is_array(a))
		return eb_cfg_fail(c, NULL, "trusted_proxies",
		                   "must be a list of CIDRs");
	if (json_array_size(a) > EB_TRUSTED_MAX_CIDRS)
		return eb_cfg_fail(c, NULL, "trusted_proxies",
		                   "more than %d CIDRs", EB_TRUSTED_MAX_CIDRS);
	if (json_array_size(a) == 0)
		return 0;
	if ((t->v = eb_calloc(json_array_size(a), sizeof(*t->v))) == NULL)
		return eb_cfg_fail(c, NULL, "trusted_proxies", "out of memory");
	for (i = 0; i < json_array_size(a); i++) {
		const json_t *e = json_array_get(a, i);

		snprintf(key, sizeof(key), "trusted_proxies[%zu]", i);
		if (!json_is_string(e))
			return eb_cfg_fail(c, NULL, key, "must be a string");
		if (eb_trusted_parse_cidr(json_string_value(e), &t->v[i],
		                          &why) == -1)
			return eb_cfg_fail(c, NULL, key, "%s", why);
		t->n++;
	}
	return 0;
}

int
eb_config_dsn_is_pg(const char *target)
{
	/* libpq connection keywords a key=value DSN may start with */
	static const char *const keys[] = {"host",
	                                   "hostaddr",
	                                   "port",
	                                   "dbname",
	                                   "user",
	                                   "password",
	                                   "passfile",
	                                   "service",
	                                   "sslmode",
	                                   "connect_timeout",
	                                   "options",
	                                   "application_name",
	                                   "target_session_attrs",
	                                   NULL};
	size_t i, n;

	if (target == NULL)
		return 0;
	if (strncmp(target, "postgresql://", 13) == 0 ||
	    strncmp(target, "postgres://", 11) == 0)
		return 1;
	while (*target == ' ' || *target == '\t')
		target++;
	for (i = 0; keys[i] != NULL; i++) {
		n = strlen(keys[i]);
		if (strncmp(target, keys[i], n) != 0)
			continue;
		target += n;
		while (*target == ' ' || *target == '\t')
			target++;
		return *target == '=';
	}
	return 0;
}

/*
 * "database": an SQLite file path (relative to the main file's folder), or
 * a PostgreSQL DSN (URI or libpq key=value), which may be given through a
 * secret reference ("env:NAME", "file:PATH") so that its password stays
 * out of the file. A DSN is kept verbatim.
 */
static int
parse_database(struct eb_cfg_ctx *c, const json_t *root, struct eb_config *cfg)
{
	json_t *v = json_object_get(root, "database");
	const char *s;

	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return eb_cfg_fail(c, NULL, "database", "must be a string");
	s = json_string_value(v);
	if (strncmp(s, "env:", 4) != 0 && strncmp(s, "file:", 5) != 0 &&
	    !eb_config_dsn_is_pg(s))
		return eb_cfg_path(c, root, NULL, "database", 0,
		                   &cfg->database);
	if (eb_cfg_secret_get(c, root, NULL, "database", 0, &cfg->database) ==
	    -1)
		return -1;
	if (!eb_config_dsn_is_pg(cfg->database))
		return eb_cfg_fail(c, NULL, "database",
		                   "a secret reference must hold a PostgreSQL "
		                   "DSN (postgresql://... or key=value)");
	cfg->database_pg = 1;
	return 0;
}

const char *const eb_cfg_keys_main[] = {"$schema",
                                        "listen",
                                        "public_url",
                                        "database",
                                        "state_dir",
                                        "tenants_dir",
                                        "tls",
                                        "limits",
                                        "log",
                                        "trusted_proxies",
                                        "database_migrate",
                                        "seal_keys",
                                        "database_notify",
                                        "replica_id",
                                        "admin_listen",
                                        "admin_token",
                                        "audit_retention",
                                        "audit_stream",
                                        NULL};

const char *const eb_cfg_keys_tls[] = {"cert", "key", "min_version",
                                       "priorities", NULL};

static int
parse_main(struct eb_cfg_ctx *c, const json_t *root, struct eb_config *cfg)
{
	json_t *tls;

	if (eb_cfg_keys(c, root, NULL, eb_cfg_keys_main) == -1 ||
	    eb_cfg_schema_ref(c, root) == -1)
		return -1;
	cfg->database_notify = 1;
	if (parse_listen(c, root, cfg) == -1 ||
	    parse_admin_listen(c, root, cfg) == -1 ||
	    eb_cfg_parse_admin(c, root, cfg) == -1 ||
	    eb_cfg_url(c, root, NULL, "public_url", 1, EB_URL_NO_SLASH,
	               &cfg->public_url) == -1 ||
	    eb_cfg_path(c, root, NULL, "state_dir", 0, &cfg->state_dir) == -1 ||
	    parse_database(c, root, cfg) == -1 ||
	    /* SQLite: serve migrates by default; PostgreSQL: a separate
	     * `enrollbridge migrate` step (SCALEOUT 3.11) */
	    (cfg->database_migrate = !cfg->database_pg, 0) ||
	    eb_cfg_bool(c, root, NULL, "database_migrate",
	                &cfg->database_migrate) == -1 ||
	    eb_cfg_bool(c, root, NULL, "database_notify",
	                &cfg->database_notify) == -1 ||
	    eb_cfg_str(c, root, NULL, "replica_id", 0, EB_CFG_NONEMPTY,
	               &cfg->replica_id) == -1 ||
	    eb_cfg_path(c, root, NULL, "tenants_dir", 0, &cfg->tenants_dir) ==
	        -1 ||
	    eb_cfg_obj(c, root, NULL, "tls", &tls) == -1 ||
	    parse_limits(c, root, &cfg->limits) == -1 ||
	    parse_log(c, root, cfg) == -1 ||
	    parse_trusted(c, root, &cfg->trusted_proxies) == -1 ||
	    eb_cfg_parse_seal_keys(c, root, cfg) == -1)
		return -1;
	if (parse_tls(c, tls, cfg) == -1)
		return -1;
	if (cfg->state_dir == NULL &&
	    (cfg->state_dir = eb_cfg_join(c->dir, "state")) == NULL)
		return eb_cfg_fail(c, NULL, "state_dir", "out of memory");
	if (cfg->database == NULL &&
	    (cfg->database = eb_cfg_join(cfg->state_dir, "enrollbridge.db")) ==
	        NULL)
		return eb_cfg_fail(c, NULL, "database", "out of memory");
	if (cfg->tenants_dir == NULL &&
	    (cfg->tenants_dir = eb_cfg_join(c->dir, "tenants")) == NULL)
		return eb_cfg_fail(c, NULL, "tenants_dir", "out of memory");
	if (cfg->database_pg && cfg->nseal_keys == 0)
		return eb_cfg_fail(c, NULL, "seal_keys",
		                   "is required when database is PostgreSQL: "
		                   "every replica must open what another "
		                   "sealed, so no per-host key is made");
	if (cfg->limits.db_pool == 0)
		cfg->limits.db_pool =
		    cfg->limits.threads + 8 > 64 ? 64 : cfg->limits.threads + 8;
	if (cfg->limits.renew_lease == 0)
		cfg->limits.renew_lease = 4 * cfg->limits.upstream_timeout + 60;
	return 0;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted "*.json" names in dir; *np of them. */
static char **
list_tenant_files(struct eb_cfg_ctx *c, const char *dir, size_t *np)
{
	struct dirent *de;
	char **v = NULL, **nv;
	size_t n = 0, len;
	DIR *d;

	*np = 0;
	if ((d = opendir(dir)) == NULL) {
		eb_cfg_fail(c, NULL, "tenants_dir", "cannot open folder %s: %s",
		            dir, strerror(errno));
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len <= 5 ||
		    strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		if (n >= EB_CFG_MAX_TENANTS) {
			eb_cfg_fail(c, NULL, "tenants_dir",
			            "more than %d tenant files",
			            EB_CFG_MAX_TENANTS);
			goto fail;
		}
		if ((nv = eb_realloc(v, (n + 1) * sizeof(*v))) == NULL)
			goto oom;
		v = nv;
		if ((v[n] = eb_strdup(de->d_name)) == NULL)
			goto oom;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_names);
	*np = n;
	return v != NULL ? v : eb_calloc(1, sizeof(*v));
oom:
	eb_cfg_fail(c, NULL, "tenants_dir", "out of memory");
fail:
	closedir(d);
	while (n > 0)
		eb_free(v[--n]);
	eb_free(v);
	return NULL;
}

/* Refuse a tenant whose id or a domain another tenant already has. */
static int
check_unique(struct eb_cfg_ctx *c, const struct eb_config *cfg,
             const struct eb_tenant *t)
{
	const struct eb_tenant *o;
	char key[64];
	size_t i;

	if ((o = eb_config_tenant(cfg, t->id)) != NULL)
		return eb_cfg_fail(c, NULL, "id",
		                   "tenant id \"%s\" is already used by %s",
		                   t->id, o->file);
	for (i = 0; i < t->domains.n; i++)
		if ((o = eb_config_tenant_by_domain(cfg, t->domains.v[i])) !=
		    NULL) {
			snprintf(key, sizeof(key), "domains[%zu]", i);
			return eb_cfg_fail(
			    c, NULL, key,
			    "domain %s is already claimed by tenant \"%s\" "
			    "(%s)",
			    t->domains.v[i], o->id, o->file);
		}
	return 0;
}

static int
load_tenants(struct eb_cfg_ctx *mc, struct eb_config *cfg)
{
	struct eb_cfg_ctx c = {NULL, cfg->tenants_dir, mc->err, NULL, NULL,
	                       NULL};
	struct eb_tenant *t;
	struct stat st;
	char **names, *path = NULL;
	size_t n, i;
	json_t *root;
	int rc = -1;

	if ((names = list_tenant_files(mc, cfg->tenants_dir, &n)) == NULL)
		return -1;
	if ((cfg->tenants = eb_calloc(n ? n : 1, sizeof(*cfg->tenants))) ==
	    NULL) {
		eb_cfg_fail(mc, NULL, "tenants_dir", "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		eb_free(path);
		if ((path = eb_cfg_join(cfg->tenants_dir, names[i])) == NULL) {
			eb_cfg_fail(mc, NULL, "tenants_dir", "out of memory");
			goto out;
		}
		if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
			continue; /* a folder called x.json: not ours */
		c.file = path;
		c.hash = mc->hash;
		c.hash_name = names[i];
		if ((root = eb_cfg_read_json(&c, path)) == NULL)
			goto out;
		t = eb_cfg_tenant_parse(&c, root, cfg->public_url);
		json_decref(root);
		if (t == NULL)
			goto out;
		if (check_unique(&c, cfg, t) == -1) {
			eb_cfg_tenant_free(t);
			goto out;
		}
		cfg->tenants[cfg->ntenants++] = t;
	}
	if (cfg->ntenants == 0) {
		eb_cfg_fail(
		    mc, NULL, "tenants_dir",
		    "no tenant file (*.json) in %s: at least one tenant is "
		    "required",
		    cfg->tenants_dir);
		goto out;
	}
	rc = 0;
out:
	eb_free(path);
	for (i = 0; i < n; i++)
		eb_free(names[i]);
	eb_free(names);
	return rc;
}

static void
config_free(struct eb_config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->ntenants; i++)
		eb_cfg_tenant_free(cfg->tenants[i]);
	eb_free(cfg->tenants);
	eb_free(cfg->file);
	for (i = 0; i < cfg->nlisten; i++)
		eb_free(cfg->listen[i].host); /* listen_host is listen[0] */
	eb_free(cfg->listen);
	eb_free(cfg->admin_listen_host);
	eb_free_secret_str(cfg->admin_token);
	eb_free(cfg->audit_stream);
	eb_free(cfg->public_url);
	eb_free_secret_str(cfg->database); /* a DSN may hold a password */
	eb_free(cfg->replica_id);
	eb_free(cfg->state_dir);
	eb_free(cfg->tenants_dir);
	eb_free(cfg->tls_cert);
	eb_free(cfg->tls_key);
	eb_free(cfg->tls_min_version);
	eb_free(cfg->tls_priorities);
	eb_free(cfg->trusted_proxies.v);
	eb_config_seal_keys_free(cfg);
	eb_free(cfg);
}

struct eb_config *
eb_config_load(const char *path, struct eb_config_error *err)
{
	struct eb_config_error local;
	struct eb_cfg_ctx c;
	struct eb_config *cfg;
	unsigned char digest[32];
	EVP_MD_CTX *md = NULL;
	size_t i;
	json_t *root;
	char *dir;
	int rc;

	if (err == NULL)
		err = &local;
	memset(err, 0, sizeof(*err));
	memset(&c, 0, sizeof(c));
	c.file = path;
	c.err = err;
	c.dir = NULL;
	if ((cfg = eb_calloc(1, sizeof(*cfg))) == NULL ||
	    (cfg->file = eb_strdup(path)) == NULL ||
	    (dir = dir_of(path)) == NULL) {
		eb_cfg_fail(&c, NULL, NULL, "out of memory");
		if (cfg != NULL)
			config_free(cfg);
		return NULL;
	}
	cfg->refs = 1;
	c.dir = dir;
	rc = -1;
	c.hash_name = "main";
	if ((c.hash = md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, eb_sha256_md(), NULL) != 1)
		eb_cfg_fail(&c, NULL, NULL, "cannot hash the configuration");
	else if ((root = eb_cfg_read_json(&c, path)) != NULL) {
		rc = parse_main(&c, root, cfg);
		json_decref(root);
	}
	if (rc == 0)
		rc = load_tenants(&c, cfg);
	if (rc == 0 && EVP_DigestFinal_ex(md, digest, NULL) != 1)
		rc = eb_cfg_fail(&c, NULL, NULL,
		                 "cannot hash the configuration");
	for (i = 0; rc == 0 && i < 32; i++)
		snprintf(cfg->sha256 + 2 * i, 3, "%02x", digest[i]);
	EVP_MD_CTX_free(md);
	eb_free(dir);
	if (rc == -1) {
		config_free(cfg);
		return NULL;
	}
	log_debug("loaded %s: %zu tenant(s)", path, cfg->ntenants);
	return cfg;
}

struct eb_config *
eb_config_ref(struct eb_config *cfg)
{
	if (cfg != NULL)
		__atomic_add_fetch(&cfg->refs, 1, __ATOMIC_RELAXED);
	return cfg;
}

void
eb_config_unref(struct eb_config *cfg)
{
	if (cfg != NULL &&
	    __atomic_sub_fetch(&cfg->refs, 1, __ATOMIC_ACQ_REL) == 0)
		config_free(cfg);
}

const struct eb_tenant *
eb_config_tenant(const struct eb_config *cfg, const char *id)
{
	size_t i;

	for (i = 0; i < cfg->ntenants; i++)
		if (strcmp(cfg->tenants[i]->id, id) == 0)
			return cfg->tenants[i];
	return NULL;
}

/* Domains are stored lower-case without a final dot; tolerate either. */
static int
domain_eq(const char *stored, const char *d)
{
	size_t sl = strlen(stored), dl = strlen(d), i;

	if (dl == sl + 1 && d[sl] == '.')
		dl--;
	if (dl != sl)
		return 0;
	for (i = 0; i < sl; i++)
		if (tolower((unsigned char)d[i]) != stored[i])
			return 0;
	return 1;
}

const struct eb_tenant *
eb_config_tenant_by_domain(const struct eb_config *cfg, const char *domain)
{
	size_t i, j;

	/* linear: tenants are few; an index can replace this unchanged */
	for (i = 0; i < cfg->ntenants; i++)
		for (j = 0; j < cfg->tenants[i]->domains.n; j++)
			if (domain_eq(cfg->tenants[i]->domains.v[j], domain))
				return cfg->tenants[i];
	return NULL;
}

int
eb_model_family_parse(const char *s)
{
	int i;

	if (s == NULL)
		return -1;
	for (i = 0; i < EB_FAMILY_COUNT; i++)
		if (eb_str_ieq(s, family_names[i]))
			return i;
	return -1;
}

const char *
eb_os_name(int os)
{
	static const char *const names[EB_OS_COUNT] = {"iOS", "iPadOS", "macOS",
	                                               "visionOS"};

	return os >= 0 && os < EB_OS_COUNT ? names[os] : NULL;
}

int
eb_family_os(int family)
{
	switch (family) {
	case EB_FAMILY_IPHONE:
		return EB_OS_IOS;
	case EB_FAMILY_IPAD:
		return EB_OS_IPADOS;
	case EB_FAMILY_MAC:
		return EB_OS_MACOS;
	case EB_FAMILY_REALITY:
		return EB_OS_VISIONOS;
	default:
		return -1;
	}
}

#define OS_VERSION_PARTS 4

/* The leading numeric components of s into v (missing ones 0); the count,
 * or -1 when s does not start with a digit or a number is too long. */
static int
os_version_split(const char *s, long v[OS_VERSION_PARTS])
{
	int n = 0, digits;

	memset(v, 0, OS_VERSION_PARTS * sizeof(long));
	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	while (n < OS_VERSION_PARTS && *s >= '0' && *s <= '9') {
		for (digits = 0; *s >= '0' && *s <= '9'; s++, digits++) {
			if (digits == 5)
				return -1;
			v[n] = v[n] * 10 + (*s - '0');
		}
		n++;
		if (*s != '.' || s[1] < '0' || s[1] > '9')
			break;
		s++;
	}
	return n;
}

int
eb_os_version_cmp(const char *a, const char *b)
{
	long va[OS_VERSION_PARTS], vb[OS_VERSION_PARTS];
	int i;

	if (os_version_split(a, va) == -1 || os_version_split(b, vb) == -1)
		return -2;
	for (i = 0; i < OS_VERSION_PARTS; i++)
		if (va[i] != vb[i])
			return va[i] < vb[i] ? -1 : 1;
	return 0;
}

int
eb_os_version_valid(const char *s)
{
	int parts = 0, digits = 0;

	if (s == NULL)
		return 0;
	for (;; s++) {
		if (*s >= '0' && *s <= '9') {
			if (++digits > 5)
				return 0;
		} else if ((*s == '.' || *s == '\0') && digits > 0) {
			if (++parts > OS_VERSION_PARTS)
				return 0;
			if (*s == '\0')
				return 1;
			digits = 0;
		} else
			return 0;
	}
}

enum eb_enroll_mode
eb_tenant_mode(const struct eb_tenant *t, const char *model_family)
{
	int f = eb_model_family_parse(model_family);

	if (f >= 0 && t->by_family[f] >= 0)
		return (enum eb_enroll_mode)t->by_family[f];
	return t->default_mode;
}

/* The first version of each OS that sends discovery's model-family. */
static const char *const family_since[EB_OS_COUNT] = {
    [EB_OS_IOS] = "17.0",
    [EB_OS_IPADOS] = "17.0",
    [EB_OS_MACOS] = "14.0",
    [EB_OS_VISIONOS] = "1.0",
};

enum eb_enroll_mode
eb_tenant_mode_device(const struct eb_tenant *t, const char *model_family,
                      const char *os_version)
{
	int os = eb_family_os(eb_model_family_parse(model_family));

	/* an OS that sent no model-family was answered the default */
	if (os_version != NULL && os >= 0 &&
	    eb_os_version_cmp(os_version, family_since[os]) == -1)
		model_family = NULL;
	return eb_tenant_mode(t, model_family);
}

const char *
eb_mode_name(enum eb_enroll_mode m)
{
	return m == EB_MODE_ADDE ? "ADDE" : "BYOD";
}

const char *
eb_mode_version(enum eb_enroll_mode m)
{
	return m == EB_MODE_ADDE ? "mdm-adde" : "mdm-byod";
}

static char replica_default[128];
static pthread_once_t replica_once = PTHREAD_ONCE_INIT;

static void
replica_make(void)
{
	char host[64] = "host";
	unsigned char r[2] = {0, 0};

	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "host");
	host[sizeof(host) - 1] = '\0';
	if (RAND_bytes(r, sizeof(r)) != 1)
		r[0] = r[1] = 0; /* unique enough with the pid */
	snprintf(replica_default, sizeof(replica_default), "%s:%ld:%02x%02x",
	         host, (long)getpid(), r[0], r[1]);
}

const char *
eb_config_replica_id(const struct eb_config *cfg)
{
	if (cfg != NULL && cfg->replica_id != NULL)
		return cfg->replica_id;
	pthread_once(&replica_once, replica_make);
	return replica_default;
}
