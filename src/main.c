/*
 * enrollbridge: argv, subcommands, start-up and signals.
 *
 * The subcommands are the commands[] table below (serve, check-config,
 * migrate, import-sqlite, discover, device-sim, map, keys, reseal, grants,
 * audit, version, and the hidden config-keys); `enrollbridge help` prints
 * each one's synopsis and text from there.
 *
 * serve: requests are served by the HTTP server's own worker threads, each
 * an event loop over libmicrohttpd daemons in external epoll mode and the
 * asynchronous upstream client (http/server.c); blocking upstream work (IdP
 * calls) goes to the work queue's threads (core/workq.h), the audit stream
 * has a thread of its own. The main thread only waits for
 * signals: SIGHUP reloads the configuration (a bad one is logged and the
 * old one keeps serving), SIGTERM/SIGINT stop accepting, drain the requests
 * under way (10 s at most) and exit.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "cli/audit.h"
#include "cli/discover.h"
#include "cli/grants.h"
#include "cli/importdb.h"
#include "cli/keys.h"
#include "cli/reseal.h"
#include "apple/esso.h"
#include "apple/profile.h"
#include "cli/devicesim.h"
#include "cli/map.h"
#include "core/config.h"
#include "core/env.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/sdnotify.h"
#include "core/sealring.h"
#include "core/statedir.h"
#include "core/workq.h"
#include "grant/auditstream.h"
#include "handle/handle.h"
#include "http/client.h"
#include "http/server.h"
#include "http/tls.h"
#include "jose/seal.h"
#include "oidc/oidc.h"
#include "store/store.h"
#include "token/renew.h"
#include "token/token.h"

#define DRAIN_MS         10000
#define SWEEP_EVERY      60 /* seconds between sweeps of expired flows, codes */
#define SWEEP_TTL        120 /* the "sweep" lease outlives two sweeps */
#define SWEEP_LOCK       "sweep"
#define UPSTREAM_THREADS 16
#define UPSTREAM_QUEUE   1024

static void usage(FILE *f);

/* Parse "-c FILE" / "--config FILE"; returns the path or NULL. */
static const char *
config_arg(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'}, {NULL, 0, NULL, 0}};
	const char *path = NULL;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		if (ch == 'c')
			path = optarg;
		else
			return NULL;
	}
	if (optind != argc)
		return NULL;
	return path;
}

static struct eb_config *
load_or_explain(const char *path)
{
	struct eb_config_error err;
	struct eb_config *cfg;

	memset(&err, 0, sizeof(err));
	if ((cfg = eb_config_load(path, &err)) == NULL)
		fprintf(stderr, "enrollbridge: %s: %s: %s\n",
		        err.file[0] ? err.file : path,
		        err.key[0] ? err.key : "-", err.reason);
	return cfg;
}

/*
 * What loading a configuration cannot see: the tenants' profile files (a
 * profile without a com.apple.mdm payload is a configuration error) and
 * Enrollment SSO profiles (nothing but extensible SSO and certificates).
 */
/* One tenant, or one route's view of it (key names the route). */
static int
check_view(const struct eb_tenant *t, const char *key, char *err, size_t errlen)
{
	char why[384];

	why[0] = '\0';
	if (t->mdm.profile_file != NULL &&
	    eb_profile_check_config(t, NULL, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s: %smdm.profile: %s", t->file, key,
		         why);
		return -1;
	}
	if (t->esso != NULL && eb_esso_check_config(t, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s: %sesso: %s", t->file, key, why);
		return -1;
	}
	return 0;
}

static int
check_files(const struct eb_config *cfg, char *err, size_t errlen)
{
	char key[48], why[400];
	size_t i, j;

	if (cfg->tls_cert != NULL &&
	    eb_tls_check_pair(cfg->tls_cert, cfg->tls_key, why, sizeof(why)) !=
	        0) {
		snprintf(err, errlen, "%s: tls: %s", cfg->file, why);
		return -1;
	}

	for (i = 0; i < cfg->ntenants; i++) {
		const struct eb_tenant *t = cfg->tenants[i];

		if (check_view(t, "", err, errlen) == -1)
			return -1;
		for (j = 0; j < t->nroutes; j++) {
			snprintf(key, sizeof(key), "routes[%zu].", j);
			if (check_view(&t->routes[j].view, key, err, errlen) ==
			    -1)
				return -1;
		}
	}
	return 0;
}

static int
cmd_check_config(int argc, char **argv)
{
	struct eb_config *cfg;
	const char *path = config_arg(argc, argv);
	size_t i;

	if (path == NULL) {
		usage(stderr);
		return 2;
	}
	if ((cfg = load_or_explain(path)) == NULL)
		return 1;
	{
		char err[512];

		if (check_files(cfg, err, sizeof(err)) != 0) {
			fprintf(stderr, "enrollbridge: %s\n", err);
			eb_config_unref(cfg);
			return 1;
		}
	}
	printf("%s: ok, %zu tenant(s):", path, cfg->ntenants);
	for (i = 0; i < cfg->ntenants; i++)
		printf(" %s", cfg->tenants[i]->id);
	printf("\n");
	eb_config_unref(cfg);
	return 0;
}

static void
announce(const struct eb_config *cfg, uint16_t port)
{
	const struct eb_tenant *t;

	if (cfg->ntenants == 0)
		return;
	t = cfg->tenants[0];
	log_info("ready: public URL %s; try: curl -i '%s/t/%s/.well-known/"
	         "com.apple.remotemanagement?user-identifier=user@%s"
	         "&model-family=iPhone'",
	         cfg->public_url, cfg->public_url, t->id,
	         t->domains.n ? t->domains.v[0] : "example.com");
	(void)port;
}

/*
 * Watch the state directory's change file, which `grants revoke` touches
 * after revoking under us: the bearer check answers from its cache only
 * while the file is unchanged (token/bearer_cache.h, store/watch.h).
 * Before any thread uses the store.
 */
static int
watch_store_changes(struct eb_store *store, const struct eb_config *cfg)
{
	char path[4096];

	if (eb_statedir_path(cfg->state_dir, EB_STATEDIR_STORE_CHANGED, path,
	                     sizeof(path)) == -1) {
		log_errx("%s: state_dir %s: path too long", cfg->file,
		         cfg->state_dir);
		return -1;
	}
	if (eb_store_set_change_file(store, path, 0) == -1) {
		log_errx("out of memory");
		return -1;
	}
	/*
	 * Have the file there, so that the workers watch it from their first
	 * check rather than stat it until a first revocation. Touching it is
	 * one announcement more; failing to is logged and costs only that.
	 */
	(void)eb_store_announce_change(store);
	return 0;
}

/*
 * Learn of the changes other processes make: through the backend's feed
 * when it has one (PostgreSQL: other replicas, the CLI on any host), else
 * through the change file. A feed that cannot start is fatal: serving
 * without it would leave revocations made elsewhere unseen.
 */
static int
follow_store_changes(struct eb_store *store, const struct eb_config *cfg)
{
	switch (eb_store_feed_start(store)) {
	case 1:
		return 0;
	case 0:
		return watch_store_changes(store, cfg);
	default:
		log_errx("%s: database: cannot follow the changes other "
		         "replicas make (see above); not starting",
		         cfg->file);
		return -1;
	}
}

/*
 * The sweep, on the one replica holding the "sweep" lease: expired records,
 * and audit events older than audit_retention.
 */
static void
sweep(struct eb_env *env, const char *owner)
{
	struct eb_config *cfg = eb_env_config(env);
	int64_t now = eb_now(env);
	size_t removed = 0;

	if (eb_store_lock_try(env->store, SWEEP_LOCK, owner, SWEEP_TTL, now) !=
	    EB_STORE_OK)
		goto out; /* another replica sweeps */
	if (eb_store_sweep(env->store, now, &removed) == EB_STORE_OK &&
	    removed > 0)
		log_debug("swept %zu expired records", removed);
	if (eb_store_audit_prune(env->store, now - cfg->audit_retention,
	                         &removed) == EB_STORE_OK &&
	    removed > 0)
		log_info("audit_retention: deleted %zu audit events older than "
		         "%lld s",
		         removed, (long long)cfg->audit_retention);
out:
	eb_config_unref(cfg);
}

/*
 * The listeners: without admin_listen, every route but the admin API on
 * listen; with it, /metrics and the admin API move to admin_listen, and
 * /healthz and /readyz are on both (handle/routes.c).
 */
static int
start_servers(struct eb_env *env, const struct eb_config *cfg, char *err,
              size_t errlen)
{
	size_t shared = eb_route_index("healthz");
	size_t metrics = eb_route_index("metrics");

	if (shared >= metrics || metrics >= eb_nroutes) {
		snprintf(err, errlen,
		         "route table: healthz, metrics misplaced");
		return -1;
	}
	if ((env->server = eb_server_start(
	         env, eb_routes, cfg->admin_listen_host ? metrics : metrics + 1,
	         err, errlen)) == NULL)
		return -1;
	if (cfg->admin_listen_host == NULL)
		return 0;
	if ((env->admin_server = eb_server_start_admin(
	         env, eb_routes + shared, eb_nroutes - shared, shared, err,
	         errlen)) == NULL)
		return -1;
	if (cfg->admin_token == NULL)
		log_info("admin_listen: no admin_token: the admin API is off");
	return 0;
}

/* Seconds on the monotonic clock. */
static time_t
mono_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return 0;
	return ts.tv_sec;
}

/* READY=1 and a STATUS line for `systemctl status`; note may be NULL. */
static void
notify_serving(struct eb_env *env, const char *note)
{
	struct eb_config *cfg = eb_env_config(env);
	char status[256];

	snprintf(status, sizeof(status), "serving %zu tenant(s) on port %u%s%s",
	         cfg->ntenants, (unsigned)eb_server_port(env->server),
	         note != NULL ? "; " : "", note != NULL ? note : "");
	eb_config_unref(cfg);
	eb_sdnotify_ready(status);
}

/* SIGHUP: reload, telling the service manager before and after. */
static void
reload(struct eb_env *env, const char *path)
{
	log_info("SIGHUP: reloading %s", path);
	eb_sdnotify_reloading("reloading the configuration");
	if (eb_env_reload(env) == 0) {
		eb_server_reload_tls(env->server);
		notify_serving(env, NULL);
	} else
		notify_serving(env, "last reload refused, the previous "
		                    "configuration keeps serving");
}

/*
 * The main thread's loop: wait for a signal, sweep every SWEEP_EVERY
 * seconds and, under a service manager that asks for it, feed the watchdog
 * at half its timeout: each ping proves this loop still turns. Returns 0
 * after SIGTERM or SIGINT once the requests under way have drained.
 */
static int
serve_loop(struct eb_env *env, const sigset_t *set, const char *owner)
{
	uint64_t wd = eb_sdnotify_watchdog_interval();
	time_t next_sweep = mono_now() + SWEEP_EVERY;
	int sig;

	for (;;) {
		struct timespec ts = {SWEEP_EVERY, 0};
		time_t now;

		if (wd > 0 && wd < (uint64_t)SWEEP_EVERY * 1000000) {
			ts.tv_sec = (time_t)(wd / 1000000);
			ts.tv_nsec = (long)(wd % 1000000) * 1000;
		}
		sig = sigtimedwait(set, NULL, &ts);
		if (wd > 0)
			eb_sdnotify_watchdog();
		if ((now = mono_now()) >= next_sweep) {
			sweep(env, owner);
			/* picks up `keys rotate` made by another process */
			eb_signer_refresh(env->signer);
			next_sweep = now + SWEEP_EVERY;
		}
		if (sig == -1)
			continue;
		if (sig == SIGHUP) {
			reload(env, env->config_path);
			continue;
		}
		break;
	}
	log_info("%s: draining requests under way",
	         sig == SIGTERM ? "SIGTERM" : "SIGINT");
	eb_sdnotify_stopping("draining requests under way");
	eb_server_quiesce(env->server);
	eb_server_quiesce(env->admin_server);
	if (eb_server_drain(env->server, DRAIN_MS) != 0 ||
	    (env->admin_server != NULL &&
	     eb_server_drain(env->admin_server, DRAIN_MS) != 0))
		log_warnx("requests still under way after %d ms; "
		          "stopping anyway",
		          DRAIN_MS);
	return 0;
}

static int
cmd_serve(int argc, char **argv)
{
	struct eb_config *cfg;
	struct eb_env *env = NULL;
	const char *path = config_arg(argc, argv);
	struct eb_auditstream *stream = NULL;
	char err[512], owner[256];
	sigset_t set;
	int rc = 1;

	if (path == NULL) {
		usage(stderr);
		return 2;
	}
	if ((cfg = load_or_explain(path)) == NULL)
		return 1;
	eb_log_init(cfg->log_level, cfg->log_json);
	eb_log_set_personal(cfg->log_personal);
	/* this process in leases, for its whole life (reloads keep it) */
	if (snprintf(owner, sizeof(owner), "%s", eb_config_replica_id(cfg)) >=
	    (int)sizeof(owner)) {
		log_errx("%s: replica_id: longer than %zu bytes", path,
		         sizeof(owner) - 1);
		eb_config_unref(cfg);
		return 1;
	}

	/* Signals are handled by this thread only: block them before any
	 * thread is created so that every thread inherits the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((env = eb_env_create(path, cfg)) == NULL) {
		eb_config_unref(cfg);
		log_errx("out of memory");
		return 1;
	}
	if ((env->metrics = eb_metrics_create(eb_routes, eb_nroutes)) == NULL)
		goto out;
	eb_metrics_describe(env->metrics, "enrollbridge_config_reloads_total",
	                    "counter", "Configuration reloads by result.");
	eb_metrics_describe(env->metrics, "enrollbridge_tenants", "gauge",
	                    "Tenants in the configuration.");
	eb_metrics_describe(env->metrics,
	                    "enrollbridge_upstream_transfers_total", "counter",
	                    "Asynchronous upstream transfers (MDM proxy) by "
	                    "client: the native HTTP/1.1 one or libcurl.");
	eb_metrics_describe(
	    env->metrics, "enrollbridge_upstream_connections_total", "counter",
	    "Upstream connections the native client opened.");
	eb_metrics_describe(env->metrics, "enrollbridge_upstream_reused_total",
	                    "counter",
	                    "Native upstream transfers on a kept-alive "
	                    "connection.");
	eb_metrics_describe(env->metrics, "enrollbridge_upstream_retries_total",
	                    "counter",
	                    "Native upstream transfers retried once on a new "
	                    "connection after a kept-alive one proved closed.");
	eb_metrics_describe(env->metrics, "enrollbridge_bearer_cache_total",
	                    "counter",
	                    "Bearer checks answered from the token cache (hit) "
	                    "or the store (miss).");
	eb_metrics_describe(env->metrics, "enrollbridge_retired_check_total",
	                    "counter",
	                    "Retired-enrollment checks of token-less MDM "
	                    "requests answered from memory (hit) or with a "
	                    "store read (miss).");
	eb_metrics_describe(env->metrics, "enrollbridge_enroll_refused_total",
	                    "counter",
	                    "Enrollments refused by restrictions at the "
	                    "anonymous first request, by tenant and code.");
	eb_metrics_set(env->metrics, "enrollbridge_tenants", "",
	               (double)cfg->ntenants);
	eb_handle_metrics_init(env->metrics);
	eb_env_reload_result(env, 1);
	if ((env->store = eb_store_open_config(cfg, err, sizeof(err))) ==
	    NULL) {
		log_errx("%s: database: %s", cfg->file, err);
		goto out;
	}
	if (check_files(cfg, err, sizeof(err)) != 0) {
		log_errx("%s", err);
		goto out;
	}
	env->validate = check_files;
	if ((env->profiles = eb_profile_cache_create()) == NULL)
		goto out;
	if (eb_statedir_prepare(cfg->state_dir, err, sizeof(err)) == -1 ||
	    (env->seal_ring = eb_sealring_load(cfg, err, sizeof(err))) ==
	        NULL) {
		log_errx("%s: %s", cfg->file, err);
		goto out;
	}
	if (follow_store_changes(env->store, cfg) != 0)
		goto out;
	if ((env->signer = eb_signer_open_ring(env->store, env->seal_ring,
	                                       eb_signer_max_ttl(cfg), err,
	                                       sizeof(err))) == NULL) {
		log_errx("%s: signing keys: %s", cfg->file, err);
		goto out;
	}
	{
		struct eb_oidc_opts oo;

		memset(&oo, 0, sizeof(oo));
		oo.timeout = cfg->limits.upstream_timeout;
		oo.max_bytes = cfg->limits.upstream_max_bytes;
		oo.jwks_max_keys = cfg->limits.jwks_max_keys;
		oo.metrics = env->metrics;
		oo.clock = &env->clock;
		if ((env->oidc = eb_oidc_create(&oo)) == NULL)
			goto out;
	}
	if ((env->workq = eb_workq_create(UPSTREAM_THREADS, UPSTREAM_QUEUE)) ==
	    NULL) {
		log_errx("cannot start the upstream worker threads");
		goto out;
	}
	if (cfg->audit_stream != NULL &&
	    (stream = eb_auditstream_start(env->store, cfg->audit_stream, err,
	                                   sizeof(err))) == NULL) {
		log_errx("%s: %s", cfg->file, err);
		goto out;
	}
	if (start_servers(env, cfg, err, sizeof(err)) == -1) {
		log_errx("%s", err);
		goto out;
	}
	announce(cfg, eb_server_port(env->server));
	if ((env->renewer = eb_renewer_start(env)) == NULL)
		goto out;
	sweep(env, owner); /* at once: a restart applies audit_retention */
	notify_serving(env, NULL);

	rc = serve_loop(env, &set, owner);
out:
	eb_server_stop(env->server);
	eb_server_stop(env->admin_server);
	eb_renewer_stop(env->renewer);
	eb_auditstream_stop(stream);
	if (env->store != NULL)
		eb_store_lock_release(env->store, SWEEP_LOCK, owner);
	eb_workq_destroy(env->workq);
	eb_oidc_destroy(env->oidc);
	eb_signer_close(env->signer);
	eb_seal_ring_free(env->seal_ring);
	eb_store_close(env->store);
	eb_profile_cache_destroy(env->profiles);
	eb_metrics_destroy(env->metrics);
	eb_env_destroy(env);
	if (rc == 0)
		log_info("stopped");
	return rc;
}

/* Print one applied migration (enrollbridge migrate). */
static void
print_applied(void *arg, int version, const char *name)
{
	int *count = arg;

	printf("applied migration %d: %s\n", version, name);
	(*count)++;
}

/*
 * enrollbridge migrate -c FILE: apply the pending migrations (whatever
 * database_migrate says: running this is the explicit request) and exit;
 * for a Kubernetes Job or a pre-start hook when serve does not migrate.
 */
static int
cmd_migrate(int argc, char **argv)
{
	struct eb_config *cfg;
	struct eb_store *store = NULL;
	const char *path = config_arg(argc, argv);
	char err[512];
	int64_t version = 0;
	int count = 0, rc = 1;

	if (path == NULL) {
		usage(stderr);
		return 2;
	}
	if ((cfg = load_or_explain(path)) == NULL)
		return 1;
	eb_log_init(cfg->log_level, cfg->log_json);
	if ((store = eb_store_open_config_migrate(cfg, print_applied, &count,
	                                          err, sizeof(err))) == NULL) {
		fprintf(stderr, "migrate: %s: database: %s\n", cfg->file, err);
		goto out;
	}
	if (eb_store_schema_version(store, &version) != EB_STORE_OK) {
		fprintf(stderr,
		        "migrate: %s: database: cannot read the schema "
		        "version\n",
		        cfg->file);
		goto out;
	}
	if (count == 0)
		printf("schema version %lld: up to date\n", (long long)version);
	else
		printf("schema version %lld\n", (long long)version);
	fflush(stdout);
	rc = 0;
out:
	eb_store_close(store);
	eb_config_unref(cfg);
	return rc;
}

static int
cmd_version(int argc, char **argv)
{
	printf("enrollbridge %s\n", EB_VERSION);
	return 0;
}

static int
cmd_discover(int argc, char **argv)
{
	return eb_cli_discover(argc, argv);
}

static int
cmd_device_sim(int argc, char **argv)
{
	return eb_cli_device_sim(argc, argv);
}

static int
cmd_map(int argc, char **argv)
{
	return eb_cli_map(argc, argv);
}

static int
cmd_config_keys(int argc, char **argv)
{
	return eb_config_keys_write(stdout) == 0 ? 0 : 1;
}

/*
 * The subcommands. Their synopsis and text are the one source of `--help`
 * and of the enrollbridge(8) manual page, which the build makes from
 * `--help` (docs/CMakeLists). A command without a synopsis is hidden.
 */
static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *synopsis; /* lines after "enrollbridge " */
	const char *text;
} commands[] = {
    {"serve", cmd_serve, "serve -c FILE",
     "Run the bridge with the main configuration FILE and its tenant "
     "files. SIGHUP reloads the configuration (a bad one is logged and the "
     "old one keeps serving); SIGTERM or SIGINT drain the requests under "
     "way (10 seconds at most) and exit."},
    {"check-config", cmd_check_config, "check-config -c FILE",
     "Load FILE and every tenant file as serve would, and the profiles "
     "they name; print \"file: key: reason\" for the first error. Exit 0 "
     "when valid, 1 when not."},
    {"migrate", cmd_migrate, "migrate -c FILE",
     "Apply the database schema migrations still pending (PostgreSQL "
     "needs this step before serve; SQLite migrates at start unless "
     "database_migrate is false)."},
    {"import-sqlite", eb_cli_import_sqlite, "import-sqlite -c FILE SQLITE_PATH",
     "Copy an SQLite installation's database into the PostgreSQL "
     "database that FILE names."},
    {"discover", cmd_discover,
     "discover USER@DOMAIN [--base URL] [--model-family F] [--cafile PEM] "
     "[--timeout SECONDS] [--json]",
     "Check a deployment as a device would: the well-known service "
     "discovery of DOMAIN, the enrollment endpoint and its "
     "authentication challenge. Exit 0 when every step passed."},
    {"device-sim", cmd_device_sim,
     "device-sim machineinfo [--model-family F | --product P] ...\n"
     "device-sim enroll USER@DOMAIN [--base URL] [--login L --password P "
     "| --interactive] [--state FILE] [--json] ...\n"
     "device-sim checkin --state FILE [--message "
     "Authenticate|TokenUpdate|CheckOut|Idle] [--no-token]",
     "Play an Apple device against a running bridge: build a signed "
     "MachineInfo, sign in through the IdP and enroll, then check in to "
     "the MDM. `enrollbridge device-sim --help` lists every option. Exit "
     "0 passed, 1 a step failed, 2 usage error, 3 unenrolled."},
    {"map", cmd_map,
     "map -c FILE --tenant T --claims FILE.json [--typed USER@DOMAIN]\n"
     "map set -c FILE --tenant T --subject S --apple-id USER@DOMAIN "
     "[--note TEXT]\n"
     "map unset -c FILE --tenant T --subject S\n"
     "map list -c FILE --tenant T [--json]",
     "Show which Managed Apple Account (and route) a set of IdP claims "
     "maps to and why; set, unset and list per-person overrides (these "
     "three also with --server URL [--token-file F] instead of -c FILE)."},
    {"keys", eb_cli_keys,
     "keys list -c FILE\n"
     "keys rotate -c FILE [--activate-in SECONDS]",
     "List the token signing keys; make a new one (active now or after "
     "SECONDS, at most a day) while the old ones keep verifying. Also "
     "with --server URL [--token-file F]: the admin API of a running "
     "server."},
    {"reseal", eb_cli_reseal, "reseal -c FILE [--batch N] [--dry-run]",
     "Re-encrypt every sealed secret in the database under the first of "
     "seal_keys, after a seal key rotation."},
    {"grants", eb_cli_grants,
     "grants list -c FILE [--tenant T] [--user SUBJECT] [--json]\n"
     "grants revoke|retire -c FILE {GRANT_ID | --user SUBJECT [--tenant "
     "T]} [--reason TEXT]",
     "List enrollment grants; revoke one (its tokens stop working at "
     "once) or retire it (revoked and marked retired: the device "
     "unenrolls); --user ends every grant of one person. Also with "
     "--server URL [--token-file F] instead of -c FILE: the admin API of "
     "a running server."},
    {"audit", eb_cli_audit,
     "audit list -c FILE [--tenant T] [--since TIME] [--event E] "
     "[--limit N] [--json]",
     "Read the audit events (newest first), from the database or, with "
     "--server URL [--token-file F], from a running server's admin API."},
    {"version", cmd_version, "version", "Print the version."},
    {"config-keys", cmd_config_keys, NULL, NULL},
};

/* Print text folded at 72 columns, each line indented by ind spaces. */
static void
fold(FILE *f, const char *text, int ind)
{
	const char *p = text, *sp;
	int col = 0, n;

	while (*p != '\0') {
		sp = strchr(p, ' ');
		n = sp ? (int)(sp - p) : (int)strlen(p);
		if (col > 0 && col + 1 + n > 72) {
			fputc('\n', f);
			col = 0;
		}
		col += col == 0 ? fprintf(f, "%*s%.*s", ind, "", n, p)
		                : fprintf(f, " %.*s", n, p);
		p += n;
		while (*p == ' ')
			p++;
	}
	fputc('\n', f);
}

static void
usage(FILE *f)
{
	const char *s, *nl;
	size_t i;

	fprintf(f, "Usage: enrollbridge COMMAND [OPTION]...\n\n");
	fold(f,
	     "An identity provider federation bridge between Apple devices "
	     "and MDMs: an OpenID Connect relying party for account-driven "
	     "enrollment, the issuer of the tokens the MDM trusts, and a proxy "
	     "in front of the MDM.",
	     0);
	fprintf(f, "\nCommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (commands[i].synopsis == NULL)
			continue;
		for (s = commands[i].synopsis; s != NULL; s = nl) {
			nl = strchr(s, '\n');
			fprintf(f, "  enrollbridge %.*s\n",
			        nl ? (int)(nl - s) : (int)strlen(s), s);
			if (nl != NULL)
				nl++;
		}
		fold(f, commands[i].text, 8);
	}
	fprintf(f, "\nOptions:\n"
	           "  -c, --config FILE\n"
	           "        The main configuration file (JSON); tenant files "
	           "are read from\n"
	           "        its tenants_dir.\n"
	           "  -h, --help\n"
	           "        Print this help and exit.\n");
	fprintf(f, "\nExit status:\n"
	           "  0 success, 1 failure, 2 usage error.\n");
}

int
main(int argc, char **argv)
{
	size_t i;
	int rc;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	eb_log_init(EB_LOG_INFO, 1);
	json_set_alloc_funcs(eb_malloc, eb_free);
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0) {
			eb_http_client_global_init();
			rc = commands[i].fn(argc - 1, argv + 1);
			eb_http_client_global_cleanup();
			return rc;
		}
	fprintf(stderr, "enrollbridge: unknown command: %s\n", argv[1]);
	usage(stderr);
	return 2;
}
