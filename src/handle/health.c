/*
 * Liveness, readiness and metrics. /readyz answers 200 while this
 * replica's store answers; one tenant's IdP being down shows in /metrics,
 * never here, so a balancer never takes every replica out for one tenant.
 */
#include <time.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/env.h"
#include "core/log.h"
#include "core/metrics.h"
#include "grant/retired.h"
#include "handle/handle.h"
#include "http/client.h"
#include "store/store.h"
#include "token/bearer_cache.h"
#include "token/token.h"

void
eb_handle_metrics_init(struct eb_metrics *m)
{
	eb_metrics_describe(m, "enrollbridge_signins_total", "counter",
	                    "Finished sign-in callbacks by tenant and result "
	                    "(success, denied, expired, idp_error, "
	                    "unavailable).");
	eb_metrics_describe(m, "enrollbridge_signin_failures_total", "counter",
	                    "Failed or refused sign-ins by tenant and code "
	                    "(the code the error page and log show).");
	eb_metrics_describe(m, "enrollbridge_introspections_total", "counter",
	                    "Token introspection calls (RFC 7662) by tenant "
	                    "and result.");
	eb_metrics_describe(m, "enrollbridge_revocations_total", "counter",
	                    "Token revocation calls (RFC 7009) by tenant and "
	                    "result.");
	eb_metrics_describe(m, "enrollbridge_enrollments_total", "counter",
	                    "Enrollment profiles served by tenant and mode "
	                    "(byod, adde).");
	eb_metrics_describe(m, "enrollbridge_config_last_reload_successful",
	                    "gauge",
	                    "1 when the last configuration load or reload "
	                    "succeeded, 0 when it was refused.");
	eb_metrics_describe(
	    m, "enrollbridge_config_last_reload_success_timestamp_seconds",
	    "gauge", "When the configuration was last loaded successfully.");
	eb_metrics_describe(m, "enrollbridge_signing_key_age_seconds", "gauge",
	                    "Seconds since the current token signing key "
	                    "(shared by all tenants) began to sign.");
	eb_metrics_describe(
	    m, "enrollbridge_tls_certificate_expiry_timestamp_seconds", "gauge",
	    "notAfter of the TLS certificate served (when tls is set).");
}

void
eb_handle_count(struct eb_env *env, const char *name, const char *tenant,
                const char *label, const char *value)
{
	struct eb_buf b;

	eb_buf_init(&b, 1024);
	if (eb_metrics_label(&b, "tenant", tenant) == 0 &&
	    eb_metrics_label(&b, label, value) == 0)
		eb_metrics_add(env->metrics, name, eb_buf_str(&b), 1);
	eb_buf_finish(&b);
}

/* The current signing key's age, when there is one. */
static void
sample_signing_key(struct eb_env *env)
{
	int64_t since = eb_signer_current_since(env->signer);
	int64_t now = eb_now(env);

	if (since > 0)
		eb_metrics_set(env->metrics,
		               "enrollbridge_signing_key_age_seconds", "",
		               since < now ? (double)(now - since) : 0);
}

int
eb_handle_healthz(struct eb_request *req)
{
	eb_resp_header(req, "Cache-Control", "no-store");
	eb_resp_set_static(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
	return EB_HANDLED;
}

int
eb_handle_readyz(struct eb_request *req)
{
	struct eb_env *env = eb_req_env(req);

	eb_resp_header(req, "Cache-Control", "no-store");
	if (eb_store_ping(env->store) != EB_STORE_OK) {
		log_warnx("not ready: the store does not answer");
		eb_resp_header(req, "Retry-After", "5");
		eb_resp_set_static(req, 503, "text/plain; charset=utf-8",
		                   "store unavailable\n", 18);
		return EB_HANDLED;
	}
	eb_resp_set_static(req, 200, "text/plain; charset=utf-8", "ready\n", 6);
	return EB_HANDLED;
}

/* Counters kept outside the registry (atomics on hot paths), copied in
 * at each scrape. */
static void
sample_counters(struct eb_metrics *m)
{
	struct eb_http_async_stats st;
	uint64_t hits, misses;

	eb_http_async_stats(&st);
	eb_metrics_set(m, "enrollbridge_upstream_transfers_total",
	               "client=\"native\"", (double)st.native_transfers);
	eb_metrics_set(m, "enrollbridge_upstream_transfers_total",
	               "client=\"curl\"", (double)st.curl_transfers);
	eb_metrics_set(m, "enrollbridge_upstream_connections_total", "",
	               (double)st.native_connects);
	eb_metrics_set(m, "enrollbridge_upstream_reused_total", "",
	               (double)st.native_reused);
	eb_metrics_set(m, "enrollbridge_upstream_retries_total", "",
	               (double)st.native_retries);
	eb_bearer_cache_stats(&hits, &misses);
	eb_metrics_set(m, "enrollbridge_bearer_cache_total", "result=\"hit\"",
	               (double)hits);
	eb_metrics_set(m, "enrollbridge_bearer_cache_total", "result=\"miss\"",
	               (double)misses);
	eb_retired_cache_stats(&hits, &misses);
	eb_metrics_set(m, "enrollbridge_retired_check_total", "result=\"hit\"",
	               (double)hits);
	eb_metrics_set(m, "enrollbridge_retired_check_total", "result=\"miss\"",
	               (double)misses);
}

/*
 * enrollbridge_config_info{sha256="..."} 1: the hash of the configuration
 * files this request was served with (config.h), so that replicas running
 * different files show in one query. Written here rather than kept in the
 * registry: after a reload the old hash must vanish, not linger at 1.
 */
static int
config_info(const struct eb_config *cfg, struct eb_buf *b)
{
	if (cfg == NULL)
		return 0;
	return eb_buf_printf(b,
	                     "# HELP enrollbridge_config_info SHA-256 of the "
	                     "loaded configuration files.\n"
	                     "# TYPE enrollbridge_config_info gauge\n"
	                     "enrollbridge_config_info{sha256=\"%s\"} 1\n",
	                     cfg->sha256);
}

int
eb_handle_metrics(struct eb_request *req)
{
	struct eb_env *env = eb_req_env(req);
	struct eb_buf b;
	char *body;
	size_t len;

	sample_counters(env->metrics);
	sample_signing_key(env);
	eb_buf_init(&b, 8 << 20);
	if (eb_metrics_render(env->metrics, &b) == -1 ||
	    config_info(eb_req_config(req), &b) == -1) {
		eb_buf_finish(&b);
		return EB_HANDLED;
	}
	body = eb_buf_detach(&b, &len);
	eb_resp_header(req, "Cache-Control", "no-store");
	eb_resp_set_owned(req, 200, "text/plain; version=0.0.4; charset=utf-8",
	                  body, len);
	return EB_HANDLED;
}
