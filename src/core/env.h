/*
 * The one root context, created in main and passed down: the current
 * configuration (swapped atomically on reload), the store, metrics, the
 * server and the clock (eb_now; tests move it).
 *
 * Process-wide state that remains outside it, and why:
 *  - libcurl's global init and its share handle, the HTTP engines and
 *    their loops (http/client*.c): a library's process state, started once.
 *  - the log sink and its options, the personal-data key and the
 *    per-thread request context (core/log.c): logging precedes the context
 *    and outlives it, and every thread writes to the one sink.
 *  - per-thread caches (token/bearer_cache.c, grant/retired.c,
 *    handle/proxy_fwd.c series, http/tls.c, http/server.c worker): they
 *    belong to the thread, keyed by the store they came from, and their
 *    hit counters are process totals for the metrics page.
 *  - transfer counters (http/client_h1.c, client_async.c): process totals.
 *  - tables built once (apple/plist.c, core/digest.c) and the default
 *    replica name (core/config.c, the host's): immutable once made.
 *  - signal dispositions and masks (main.c blocks them in every thread
 *    and waits for them): a signal reaches the process, not a context.
 *  - the allocation failure injection (core/mem.c): test builds only.
 */
#ifndef EB_ENV_H
#define EB_ENV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "core/clock.h"
#include "core/config.h"

#include <stdint.h>

struct eb_store;
struct eb_metrics;
struct eb_server;
struct eb_oidc;
struct eb_workq;
struct eb_signer;
struct eb_renewer;
struct eb_profile_cache;

struct eb_seal_ring;

/* A log line budget: the second last logged, and how many lines were left
 * out since (logged with the next one). */
struct eb_log_budget {
	_Atomic int64_t logged_sec;
	atomic_ulong unlogged;
};

struct eb_env {
	char *config_path;
	pthread_mutex_t
	    cfg_lock; /* guards cfg (the pointer, not its content) */
	struct eb_config *cfg;
	struct eb_store *store;
	struct eb_metrics *metrics;
	struct eb_server *server;
	struct eb_server *admin_server; /* admin_listen, or NULL */
	struct eb_oidc *oidc;   /* upstream OIDC caches, shared by tenants */
	struct eb_workq *workq; /* where handlers send blocking upstream work */
	struct eb_signer *signer;   /* our token signing keys (token/token.h) */
	struct eb_renewer *renewer; /* silent renewal (token/renew.h) */
	struct eb_profile_cache *profiles; /* parsed profile files */
	/* checks a new configuration's files before a reload swaps it in */
	int (*validate)(const struct eb_config *cfg, char *err, size_t errlen);
	/* keys sealing secrets at rest and URL flows (jose/seal.h,
	 * core/sealring.h): the first seals, every one opens */
	struct eb_seal_ring *seal_ring;
	/* the time of this context (eb_now); tests move it */
	struct eb_clock clock;
	/* refusals at the anonymous enrollment POST (handle/enroll.c) */
	struct eb_log_budget anon_refusals;
};

/* Seconds since the epoch on env's clock. */
#define eb_now(env) eb_clock_now(&(env)->clock)

/* A context owning cfg's reference. */
struct eb_env *eb_env_create(const char *config_path, struct eb_config *cfg);
void eb_env_destroy(struct eb_env *env);
/* A new reference on the current configuration (eb_config_unref it). */
struct eb_config *eb_env_config(struct eb_env *env);
/*
 * Load the configuration file again; when it is valid and compatible with
 * the running process, swap it in (requests under way keep the old one).
 * Returns 0 when swapped, -1 when the old one keeps serving (logged).
 */
int eb_env_reload(struct eb_env *env);
/* enrollbridge_config_last_reload_successful (and, when ok, its success
 * timestamp): set by every reload, and once at start. */
void eb_env_reload_result(struct eb_env *env, int ok);

#endif
