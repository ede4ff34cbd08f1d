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
/*
 * A histogram family: le the bucket upper bounds (ascending, without
 * +Inf), copied. Its series (eb_metrics_series, after this) take
 * observations with eb_metric_observe and render as name_bucket{le},
 * name_sum and name_count.
 */
void eb_metrics_describe_histogram(struct eb_metrics *m, const char *name,
                                   const char *help, const double *le,
                                   size_t nle);
void eb_metric_observe(struct eb_metric *s, double v);
/*
 * Append name="value" to a label set in b (a comma first when b is not
 * empty), value escaped as the exposition format wants (\\, \", \n).
 */
int eb_metrics_label(struct eb_buf *b, const char *name, const char *value);

/* Current value of a named series (0 when absent): for tests and /readyz. */
double eb_metrics_get(struct eb_metrics *m, const char *name,
                      const char *labels);

/* Append the text exposition format to out (process_* included). */
int eb_metrics_render(struct eb_metrics *m, struct eb_buf *out);

/* metrics_proc.c: the process_* families, read from /proc/self. */
int eb_metrics_render_process(struct eb_buf *out);
/*
 * The notAfter of the first certificate of a PEM text, as seconds since
 * the epoch: 0, or -1 when it does not parse.
 */
int eb_metrics_cert_not_after(const char *pem, size_t len, long long *t);

#endif
