/*
 * Root context and configuration reload.
 */
#include "core/env.h"

#include <string.h>

#include <openssl/crypto.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"

struct eb_env *
eb_env_create(const char *config_path, struct eb_config *cfg)
{
	struct eb_env *env;

	if ((env = eb_calloc(1, sizeof(*env))) == NULL)
		return NULL;
	if ((env->config_path = eb_strdup(config_path)) == NULL) {
		eb_free(env);
		return NULL;
	}
	pthread_mutex_init(&env->cfg_lock, NULL);
	env->cfg = cfg;
	return env;
}

void
eb_env_destroy(struct eb_env *env)
{
	if (env == NULL)
		return;
	eb_config_unref(env->cfg);
	pthread_mutex_destroy(&env->cfg_lock);
	eb_free(env->config_path);
	eb_free(env);
}

struct eb_config *
eb_env_config(struct eb_env *env)
{
	struct eb_config *cfg;

	pthread_mutex_lock(&env->cfg_lock);
	cfg = eb_config_ref(env->cfg);
	pthread_mutex_unlock(&env->cfg_lock);
	return cfg;
}

static int
str_differs(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

void
eb_env_reload_result(struct eb_env *env, int ok)
{
	eb_metrics_set(env->metrics,
	               "enrollbridge_config_last_reload_successful", "",
	               ok ? 1 : 0);
	if (ok)
		eb_metrics_set(
		    env->metrics,
		    "enrollbridge_config_last_reload_success_timestamp_seconds",
		    "", (double)eb_now(env));
}

/* 1 when the "listen" addresses of a and b differ. */
static int
listen_differs(const struct eb_config *a, const struct eb_config *b)
{
	size_t i;

	if (a->nlisten != b->nlisten)
		return 1;
	for (i = 0; i < a->nlisten; i++)
		if (a->listen[i].port != b->listen[i].port ||
		    str_differs(a->listen[i].host, b->listen[i].host))
			return 1;
	return 0;
}

int
eb_env_reload(struct eb_env *env)
{
	struct eb_config_error err;
	struct eb_config *ncfg, *old;

	memset(&err, 0, sizeof(err));
	if ((ncfg = eb_config_load(env->config_path, &err)) == NULL) {
		log_warnx("reload refused, old configuration keeps serving: "
		          "%s: %s: %s",
		          err.file, err.key[0] ? err.key : "-", err.reason);
		eb_metrics_add(env->metrics,
		               "enrollbridge_config_reloads_total",
		               "result=\"failed\"", 1);
		eb_env_reload_result(env, 0);
		return -1;
	}
	if (env->validate != NULL) {
		char why[512] = "";

		if (env->validate(ncfg, why, sizeof(why)) != 0) {
			log_warnx("reload refused, old configuration keeps "
			          "serving: %s",
			          why);
			eb_metrics_add(env->metrics,
			               "enrollbridge_config_reloads_total",
			               "result=\"failed\"", 1);
			eb_env_reload_result(env, 0);
			eb_config_unref(ncfg);
			return -1;
		}
	}
	old = eb_env_config(env);
	if (listen_differs(old, ncfg) ||
	    str_differs(old->database, ncfg->database) ||
	    str_differs(old->tls_cert, ncfg->tls_cert) ||
	    str_differs(old->tls_key, ncfg->tls_key) ||
	    str_differs(old->state_dir, ncfg->state_dir) ||
	    str_differs(old->admin_listen_host, ncfg->admin_listen_host) ||
	    old->admin_listen_port != ncfg->admin_listen_port ||
	    str_differs(old->audit_stream, ncfg->audit_stream))
		log_warnx("reload: listen, admin_listen, tls paths, database, "
		          "state_dir and audit_stream changes take effect only "
		          "after a restart");
	/* the seal key ring is built once, at start (core/sealring.h) */
	if (old->nseal_keys != ncfg->nseal_keys ||
	    (old->nseal_keys > 0 &&
	     CRYPTO_memcmp(old->seal_keys, ncfg->seal_keys,
	                   old->nseal_keys * sizeof(*old->seal_keys)) != 0))
		log_warnx("reload: seal_keys changes take effect only after a "
		          "restart");
	eb_config_unref(old);

	pthread_mutex_lock(&env->cfg_lock);
	old = env->cfg;
	env->cfg = ncfg;
	pthread_mutex_unlock(&env->cfg_lock);
	eb_config_unref(old);
	eb_log_init(ncfg->log_level, ncfg->log_json);
	eb_log_set_personal(ncfg->log_personal);
	log_info("configuration reloaded: %zu tenant(s)", ncfg->ntenants);
	eb_metrics_add(env->metrics, "enrollbridge_config_reloads_total",
	               "result=\"ok\"", 1);
	eb_env_reload_result(env, 1);
	eb_metrics_set(env->metrics, "enrollbridge_tenants", "",
	               (double)ncfg->ntenants);
	return 0;
}
