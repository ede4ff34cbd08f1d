/*
 * Prometheus metrics: per-route request counters by status code and latency
 * histograms (atomics), plus a mutex-guarded registry of named series.
 */
#include "core/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"

#define NSTATUS  600
#define NBUCKETS 14

static const double bucket_le[NBUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,  0.05,    0.1,    0.25,  1,      5,     10};

struct route_stats {
	atomic_ulong status[NSTATUS];
	atomic_ulong bucket[NBUCKETS];
	atomic_ulong count;
	atomic_ullong sum_ns;
};

/* A named series; allocated one by one and never moved or freed before
 * the registry, so that a handle (eb_metrics_series) stays valid. A
 * histogram's series also counts observations per bucket (bits: the sum). */
struct eb_metric {
	char *name;
	char *labels;
	_Atomic uint64_t bits; /* the double value's bits */
	const double *le;      /* the family's bucket bounds, or NULL */
	size_t nle;
	atomic_ullong *bucket; /* nle: not cumulative */
	atomic_ullong count;
};

struct desc {
	char *name;
	char *type;
	char *help;
	double *le; /* histograms: bucket upper bounds, ascending */
	size_t nle;
};

struct eb_metrics {
	const struct eb_route *routes;
	size_t nroutes;
	struct route_stats *stats; /* nroutes + 1: last is "unmatched" */
	atomic_long inflight;
	time_t started;
	pthread_mutex_t lock;
	struct eb_metric **series;
	size_t nseries;
	struct desc *descs;
	size_t ndescs;
};

static void series_free(struct eb_metric *s);

struct eb_metrics *
eb_metrics_create(const struct eb_route *routes, size_t nroutes)
{
	struct eb_metrics *m;

	if ((m = eb_calloc(1, sizeof(*m))) == NULL)
		return NULL;
	if ((m->stats = eb_calloc(nroutes + 1, sizeof(*m->stats))) == NULL) {
		eb_free(m);
		return NULL;
	}
	m->routes = routes;
	m->nroutes = nroutes;
	/* the process start time: the real time by definition */
	m->started = time(NULL);
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

void
eb_metrics_destroy(struct eb_metrics *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nseries; i++)
		series_free(m->series[i]);
	for (i = 0; i < m->ndescs; i++) {
		eb_free(m->descs[i].name);
		eb_free(m->descs[i].type);
		eb_free(m->descs[i].help);
		eb_free(m->descs[i].le);
	}
	eb_free(m->series);
	eb_free(m->descs);
	pthread_mutex_destroy(&m->lock);
	eb_free(m->stats);
	eb_free(m);
}

void
eb_metrics_request(struct eb_metrics *m, int route, int status, double seconds)
{
	struct route_stats *s;
	int b;

	if (m == NULL)
		return;
	if (route < 0 || (size_t)route >= m->nroutes)
		route = (int)m->nroutes;
	s = &m->stats[route];
	if (status < 0 || status >= NSTATUS)
		status = 0;
	atomic_fetch_add_explicit(&s->status[status], 1, memory_order_relaxed);
	for (b = 0; b < NBUCKETS; b++)
		if (seconds <= bucket_le[b]) {
			atomic_fetch_add_explicit(&s->bucket[b], 1,
			                          memory_order_relaxed);
			break;
		}
	atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->sum_ns,
	                          (unsigned long long)(seconds * 1e9),
	                          memory_order_relaxed);
}

void
eb_metrics_inflight(struct eb_metrics *m, int delta)
{
	if (m != NULL)
		atomic_fetch_add_explicit(&m->inflight, delta,
		                          memory_order_relaxed);
}

static uint64_t
dbits(double v)
{
	uint64_t b;

	memcpy(&b, &v, sizeof(b));
	return b;
}

static double
dval(uint64_t b)
{
	double v;

	memcpy(&v, &b, sizeof(v));
	return v;
}

static double
load(struct eb_metric *s)
{
	return dval(atomic_load_explicit(&s->bits, memory_order_relaxed));
}

void
eb_metric_add(struct eb_metric *s, double v)
{
	uint64_t old;

	if (s == NULL)
		return;
	old = atomic_load_explicit(&s->bits, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(
	    &s->bits, &old, dbits(dval(old) + v), memory_order_relaxed,
	    memory_order_relaxed))
		;
}

static struct desc *
find_desc(struct eb_metrics *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->ndescs; i++)
		if (strcmp(m->descs[i].name, name) == 0)
			return &m->descs[i];
	return NULL;
}

static void
series_free(struct eb_metric *s)
{
	eb_free(s->name);
	eb_free(s->labels);
	eb_free(s->bucket);
	eb_free(s);
}

static struct eb_metric *
series_new(struct eb_metrics *m, const char *name, const char *labels)
{
	struct eb_metric *ns;
	struct desc *d = find_desc(m, name);

	if ((ns = eb_calloc(1, sizeof(*ns))) == NULL)
		return NULL;
	ns->name = eb_strdup(name);
	ns->labels = eb_strdup(labels);
	if (d != NULL && d->le != NULL) {
		ns->le = d->le;
		ns->nle = d->nle;
		ns->bucket = eb_calloc(d->nle, sizeof(*ns->bucket));
	}
	if (ns->name == NULL || ns->labels == NULL ||
	    (ns->le != NULL && ns->bucket == NULL)) {
		series_free(ns);
		return NULL;
	}
	atomic_store(&ns->bits, dbits(0));
	return ns;
}

static struct eb_metric *
find_series(struct eb_metrics *m, const char *name, const char *labels,
            int create)
{
	struct eb_metric **arr, *ns;
	size_t i;

	for (i = 0; i < m->nseries; i++)
		if (strcmp(m->series[i]->name, name) == 0 &&
		    strcmp(m->series[i]->labels, labels) == 0)
			return m->series[i];
	if (!create)
		return NULL;
	arr = eb_realloc(m->series, (m->nseries + 1) * sizeof(*arr));
	if (arr == NULL)
		return NULL;
	m->series = arr;
	if ((ns = series_new(m, name, labels)) == NULL)
		return NULL;
	m->series[m->nseries++] = ns;
	return ns;
}

static void
describe_locked(struct eb_metrics *m, const char *name, const char *type,
                const char *help, const double *le, size_t nle)
{
	struct desc *nd;

	if (find_desc(m, name) != NULL)
		return;
	if ((nd = eb_realloc(m->descs, (m->ndescs + 1) * sizeof(*nd))) == NULL)
		return;
	m->descs = nd;
	nd = &m->descs[m->ndescs];
	memset(nd, 0, sizeof(*nd));
	nd->name = eb_strdup(name);
	nd->type = eb_strdup(type);
	nd->help = eb_strdup(help);
	if (nle > 0 && (nd->le = eb_calloc(nle, sizeof(*le))) != NULL) {
		memcpy(nd->le, le, nle * sizeof(*le));
		nd->nle = nle;
	}
	if (nd->name && nd->type && nd->help && (nle == 0 || nd->le))
		m->ndescs++;
	else {
		eb_free(nd->name);
		eb_free(nd->type);
		eb_free(nd->help);
		eb_free(nd->le);
	}
}

void
eb_metrics_describe(struct eb_metrics *m, const char *name, const char *type,
                    const char *help)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	describe_locked(m, name, type, help, NULL, 0);
	pthread_mutex_unlock(&m->lock);
}

void
eb_metrics_describe_histogram(struct eb_metrics *m, const char *name,
                              const char *help, const double *le, size_t nle)
{
	if (m == NULL || le == NULL || nle == 0)
		return;
	pthread_mutex_lock(&m->lock);
	describe_locked(m, name, "histogram", help, le, nle);
	pthread_mutex_unlock(&m->lock);
}

void
eb_metric_observe(struct eb_metric *s, double v)
{
	size_t b;

	if (s == NULL || s->bucket == NULL)
		return;
	for (b = 0; b < s->nle; b++)
		if (v <= s->le[b]) {
			atomic_fetch_add_explicit(&s->bucket[b], 1,
			                          memory_order_relaxed);
			break;
		}
	atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
	eb_metric_add(s, v);
}

int
eb_metrics_label(struct eb_buf *b, const char *name, const char *value)
{
	const char *p;
	int rc;

	rc = eb_buf_printf(b, "%s%s=\"", b->len ? "," : "", name);
	for (p = value ? value : ""; *p != '\0' && rc != -1; p++) {
		if (*p == '"' || *p == '\\')
			rc = eb_buf_printf(b, "\\%c", *p);
		else if (*p == '\n')
			rc = eb_buf_addstr(b, "\\n");
		else
			rc = eb_buf_addc(b, *p);
	}
	if (rc == -1 || eb_buf_addc(b, '"') == -1)
		return -1;
	return 0;
}

void
eb_metrics_add(struct eb_metrics *m, const char *name, const char *labels,
               double v)
{
	struct eb_metric *s;

	if (m == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	s = find_series(m, name, labels ? labels : "", 1);
	pthread_mutex_unlock(&m->lock);
	eb_metric_add(s, v);
}

void
eb_metrics_set(struct eb_metrics *m, const char *name, const char *labels,
               double v)
{
	struct eb_metric *s;

	if (m == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	if ((s = find_series(m, name, labels ? labels : "", 1)) != NULL)
		atomic_store_explicit(&s->bits, dbits(v), memory_order_relaxed);
	pthread_mutex_unlock(&m->lock);
}

double
eb_metrics_get(struct eb_metrics *m, const char *name, const char *labels)
{
	struct eb_metric *s;
	double v = 0;

	if (m == NULL)
		return 0;
	pthread_mutex_lock(&m->lock);
	if ((s = find_series(m, name, labels ? labels : "", 0)) != NULL)
		v = load(s);
	pthread_mutex_unlock(&m->lock);
	return v;
}

struct eb_metric *
eb_metrics_series(struct eb_metrics *m, const char *name, const char *labels)
{
	struct eb_metric *s;

	if (m == NULL)
		return NULL;
	pthread_mutex_lock(&m->lock);
	s = find_series(m, name, labels ? labels : "", 1);
	pthread_mutex_unlock(&m->lock);
	return s;
}

static const char *
route_name(const struct eb_metrics *m, size_t r)
{
	return r < m->nroutes ? m->routes[r].name : "unmatched";
}

/* The index of the first series named like series j. */
static size_t
first_of(const struct eb_metrics *m, size_t j)
{
	size_t i;

	for (i = 0; i < j; i++)
		if (strcmp(m->series[i]->name, m->series[j]->name) == 0)
			break;
	return i;
}

/* name{labels[,le="x"]}: the labels and an extra pair, in braces or not. */
static int
series_head(struct eb_buf *o, const char *name, const char *suffix,
            const char *labels, const char *le)
{
	const char *sep = labels[0] && le ? "," : "";

	if (!labels[0] && !le)
		return eb_buf_printf(o, "%s%s ", name, suffix);
	return eb_buf_printf(o, "%s%s{%s%s%s%s%s} ", name, suffix, labels, sep,
	                     le ? "le=\"" : "", le ? le : "", le ? "\"" : "");
}

static int
render_histogram(const struct eb_metric *s, struct eb_buf *o)
{
	unsigned long long cum = 0, count;
	char le[32];
	size_t b;
	int rc = 0;

	/* count first: a bucket observed meanwhile shows in no total */
	count = atomic_load_explicit(&s->count, memory_order_relaxed);
	for (b = 0; b < s->nle; b++) {
		cum +=
		    atomic_load_explicit(&s->bucket[b], memory_order_relaxed);
		if (cum > count)
			cum = count;
		snprintf(le, sizeof(le), "%g", s->le[b]);
		rc |= series_head(o, s->name, "_bucket", s->labels, le);
		rc |= eb_buf_printf(o, "%llu\n", cum);
	}
	rc |= series_head(o, s->name, "_bucket", s->labels, "+Inf");
	rc |= eb_buf_printf(o, "%llu\n", count);
	rc |= series_head(o, s->name, "_sum", s->labels, NULL);
	rc |= eb_buf_printf(o, "%.17g\n", load((struct eb_metric *)s));
	rc |= series_head(o, s->name, "_count", s->labels, NULL);
	rc |= eb_buf_printf(o, "%llu\n", count);
	return rc;
}

/* Every series of the family name; the lock is held. */
static int
render_family(struct eb_metrics *m, const char *name, struct eb_buf *o)
{
	struct eb_metric *s;
	size_t j;
	int rc = 0;

	for (j = 0; j < m->nseries; j++) {
		s = m->series[j];
		if (strcmp(s->name, name) != 0)
			continue;
		if (s->bucket != NULL) {
			rc |= render_histogram(s, o);
			continue;
		}
		rc |= series_head(o, s->name, "", s->labels, NULL);
		rc |= eb_buf_printf(o, "%.17g\n", load(s));
	}
	return rc;
}

int
eb_metrics_render(struct eb_metrics *m, struct eb_buf *o)
{
	size_t r, i, j;
	int st, b, rc = 0;

	rc |= eb_buf_printf(
	    o,
	    "# HELP enrollbridge_build_info Build information.\n"
	    "# TYPE enrollbridge_build_info gauge\n"
	    "enrollbridge_build_info{version=\"%s\"} 1\n"
	    "# HELP enrollbridge_start_time_seconds Start time of the "
	    "process.\n"
	    "# TYPE enrollbridge_start_time_seconds gauge\n"
	    "enrollbridge_start_time_seconds %lld\n"
	    "# HELP enrollbridge_http_inflight_requests Requests being "
	    "served.\n"
	    "# TYPE enrollbridge_http_inflight_requests gauge\n"
	    "enrollbridge_http_inflight_requests %ld\n",
	    EB_VERSION, (long long)m->started, (long)atomic_load(&m->inflight));
	rc |= eb_buf_addstr(
	    o, "# HELP enrollbridge_http_requests_total HTTP requests by route "
	       "and "
	       "status.\n# TYPE enrollbridge_http_requests_total counter\n");
	for (r = 0; r <= m->nroutes; r++)
		for (st = 0; st < NSTATUS; st++) {
			unsigned long n = atomic_load_explicit(
			    &m->stats[r].status[st], memory_order_relaxed);
			if (n != 0)
				rc |=
				    eb_buf_printf(o,
				                  "enrollbridge_http_requests_"
				                  "total{route=\"%s\","
				                  "status=\"%d\"} %lu\n",
				                  route_name(m, r), st, n);
		}
	rc |= eb_buf_addstr(
	    o,
	    "# HELP enrollbridge_http_request_duration_seconds Request latency "
	    "by route.\n# TYPE enrollbridge_http_request_duration_seconds "
	    "histogram\n");
	for (r = 0; r <= m->nroutes; r++) {
		struct route_stats *s = &m->stats[r];
		unsigned long cum = 0, count = atomic_load(&s->count);

		if (count == 0)
			continue;
		for (b = 0; b < NBUCKETS; b++) {
			cum += atomic_load(&s->bucket[b]);
			rc |= eb_buf_printf(
			    o,
			    "enrollbridge_http_request_duration_seconds_bucket{"
			    "route=\"%s\",le=\"%g\"} %lu\n",
			    route_name(m, r), bucket_le[b], cum);
		}
		rc |= eb_buf_printf(o,
		                    "enrollbridge_http_request_duration_"
		                    "seconds_bucket{route=\"%s\","
		                    "le=\"+Inf\"} %lu\n"
		                    "enrollbridge_http_request_duration_"
		                    "seconds_sum{route=\"%s\"} "
		                    "%.6f\n"
		                    "enrollbridge_http_request_duration_"
		                    "seconds_count{route=\"%s\"} "
		                    "%lu\n",
		                    route_name(m, r), count, route_name(m, r),
		                    (double)atomic_load(&s->sum_ns) / 1e9,
		                    route_name(m, r), count);
	}
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->ndescs; i++) {
		rc |= eb_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n",
		                    m->descs[i].name, m->descs[i].help,
		                    m->descs[i].name, m->descs[i].type);
		rc |= render_family(m, m->descs[i].name, o);
	}
	/* series never described are still shown, untyped, by family */
	for (j = 0; j < m->nseries; j++) {
		const char *name = m->series[j]->name;

		if (find_desc(m, name) != NULL || first_of(m, j) != j)
			continue;
		rc |= eb_buf_printf(o,
		                    "# HELP %s Undocumented.\n"
		                    "# TYPE %s untyped\n",
		                    name, name);
		rc |= render_family(m, name, o);
	}
	pthread_mutex_unlock(&m->lock);
	rc |= eb_metrics_render_process(o);
	return rc ? -1 : 0;
}
