/*
 * Prometheus metrics. Request counters and latency histograms by route are
 * lock-free atomics indexed by route (the hot path); anything else (IdP
 * errors by tenant, renewals, reloads) goes through a small named registry
 * under a mutex, for events far rarer than requests.
 */
#ifndef EB_METRICS_H
#define EB_METRICS_H

#include <stddef.h>

#include "core/buf.h"
#include "http/http.h"

struct eb_metrics;

/* Metrics for a route table (route names label the series). */
struct eb_metrics *eb_metrics_create(const struct eb_route *routes,
                                     size_t nroutes);
void eb_metrics_destroy(struct eb_metrics *m);

/* Count one finished request; route -1 means no route matched. */
void eb_metrics_request(struct eb_metrics *m, int route, int status,
                        double seconds);
/* In-flight requests gauge. */
void eb_metrics_inflight(struct eb_metrics *m, int delta);

/*
 * Named series: name is a Prometheus metric name, labels a preformatted
 * label set without braces ("tenant=\"contoso\"", or "" for none). Declare a
 * name once with its type ("counter" or "gauge") and help text.
 */
void eb_metrics_describe(struct eb_metrics *m, const char *name,
                         const char *type, const char *help);
void eb_metrics_add(struct eb_metrics *m, const char *name, const char *labels,
                    double v);
void eb_metrics_set(struct eb_metrics *m, const char *name, const char *labels,
                    double v);
/*
 * A handle on one named series (created when new), valid as long as m: for
 * hot paths, which then add without a lock or a lookup. NULL when out of
 * memory (eb_metric_add(NULL, v) does nothing).
 */
struct eb_metric;
struct eb_metric *eb_metrics_series(struct eb_metrics *m, const char *name,
                                    const char *labels);
void eb_metric_add(struct eb_metric *s, double v);
/* Current value of a named series (0 when absent): for tests and /readyz. */
double eb_metrics_get(struct eb_metrics *m, const char *name,
                      const char *labels);

/* Append the text exposition format to out. */
int eb_metrics_render(struct eb_metrics *m, struct eb_buf *out);

#endif
