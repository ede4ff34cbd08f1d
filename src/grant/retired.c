/*
 * The retired-enrollment check and its per-thread cache (retired.h): a
 * thread's table holds up to CACHE_TENANTS sets, each the sorted binding
 * values (kind and value) of one tenant's retired grants, read under a
 * store stamp, with the answer for each value once looked up.
 */
#include "grant/retired.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"
#include "store/store.h"
#include "token/bearer_cache.h"

#define CACHE_TENANTS 8    /* sets a thread keeps */
#define CACHE_VALUES  4096 /* retired values a set holds */
/* for changes nothing announces (another replica's re-enrollment) */
#define CACHE_TTL_NS 1000000000LL

static const char *const kinds[] = {"EnrollmentID", "UDID"};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

struct rvalue {
	int kind;    /* index in kinds */
	int verdict; /* -1: not looked up yet, else 0 or 1 */
	char *value;
};

struct rset {
	const struct eb_store *store;
	char *tenant;
	struct eb_store_stamp stamp;
	int64_t read_ns;
	int overflow; /* more retired values than CACHE_VALUES */
	struct rvalue *v;
	size_t n;
};

struct table {
	struct rset *set[CACHE_TENANTS];
	size_t next; /* the slot to reuse when all are taken */
};

/*
 * Per-thread state, as the bearer cache's (a stamp from a watch means
 * something only to the thread that took it); the key frees a table at
 * thread exit. The counters are for /metrics.
 */
static _Thread_local struct table *t_table;
static atomic_ullong g_hits, g_misses;
static atomic_int g_overflow_logged;
static pthread_key_t table_key;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static int table_key_ok;

static void
rset_free(struct rset *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++)
		eb_free(r->v[i].value);
	eb_free(r->v);
	eb_free(r->tenant);
	eb_free(r);
}

static void
table_free(void *p)
{
	struct table *t = p;
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < CACHE_TENANTS; i++)
		rset_free(t->set[i]);
	eb_free(t);
}

static void
table_key_init(void)
{
	table_key_ok = pthread_key_create(&table_key, table_free) == 0;
}

/* This thread's table, made on first use; NULL when that fails. */
static struct table *
table_get(void)
{
	struct table *t;

	if (t_table != NULL)
		return t_table;
	if (pthread_once(&table_once, table_key_init) != 0 || !table_key_ok ||
	    (t = eb_calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if (pthread_setspecific(table_key, t) != 0) {
		eb_free(t);
		return NULL;
	}
	return t_table = t;
}

static int
mono_ns(int64_t *out)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return -1;
	*out = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	return 0;
}

static int
kind_index(const char *kind)
{
	size_t i;

	for (i = 0; kind != NULL && i < NKINDS; i++)
		if (strcmp(kind, kinds[i]) == 0)
			return (int)i;
	return -1;
}

/*
 * The store's answer for one enrollment: 1 retired, 0 not, -1 the store
 * failed (logged).
 */
static int
lookup(struct eb_store *s, const char *tenant, int kind, const char *value)
{
	struct eb_store_grant_filter f;
	struct eb_store_grant_list l;
	size_t i, n;
	int rc, active = 0, retired = 0;

	memset(&f, 0, sizeof(f));
	f.tenant = tenant;
	f.status = -1;
	f.binding_value = value;
	f.limit = 16; /* newest first: re-authentications add grants */
	if ((rc = eb_store_grant_list(s, &f, &l)) != EB_STORE_OK) {
		log_warnx("tenant %s: cannot look an enrollment up: %s", tenant,
		          eb_store_strerror(rc));
		return -1;
	}
	for (i = n = 0; i < l.n; i++) {
		if (kind_index(l.v[i].binding_kind) != kind)
			continue;
		if (n++ == 0)
			retired = l.v[i].retired_at != 0;
		active |= l.v[i].status == EB_STORE_GRANT_ACTIVE;
	}
	eb_store_grant_list_finish(&l);
	return retired && !active;
}

static int
rvalue_cmp(const void *a, const void *b)
{
	const struct rvalue *x = a, *y = b;
	int c = strcmp(x->value, y->value);

	return c != 0 ? c : x->kind - y->kind;
}

/* Fill r's values from l (sorted, without duplicates): 0, or -1 (memory). */
static int
rset_fill(struct rset *r, const struct eb_store_grant_list *l)
{
	size_t i, n;
	int k;

	if (l->n > 0 && (r->v = eb_calloc(l->n, sizeof(*r->v))) == NULL)
		return -1;
	for (i = 0; i < l->n; i++) {
		if ((k = kind_index(l->v[i].binding_kind)) == -1 ||
		    l->v[i].binding_value == NULL)
			continue;
		r->v[r->n].kind = k;
		r->v[r->n].verdict = -1;
		if ((r->v[r->n].value = eb_strdup(l->v[i].binding_value)) ==
		    NULL)
			return -1;
		r->n++;
	}
	if (r->n > 0)
		qsort(r->v, r->n, sizeof(*r->v), rvalue_cmp);
	for (i = n = 0; i < r->n; i++) {
		if (n > 0 && rvalue_cmp(&r->v[n - 1], &r->v[i]) == 0)
			eb_free(r->v[i].value);
		else
			r->v[n++] = r->v[i];
	}
	r->n = n;
	return 0;
}

/*
 * Read tenant's retired values under stamp st taken at now: the new set,
 * or NULL with *err set (1: the store failed, logged; 0: out of memory).
 */
static struct rset *
rset_load(struct eb_store *s, const char *tenant,
          const struct eb_store_stamp *st, int64_t now, int *err)
{
	struct eb_store_grant_filter f;
	struct eb_store_grant_list l;
	struct rset *r;
	int rc;

	*err = 0;
	memset(&f, 0, sizeof(f));
	f.tenant = tenant;
	f.status = -1;
	f.retired_only = 1;
	f.limit = CACHE_VALUES + 1;
	if ((rc = eb_store_grant_list(s, &f, &l)) != EB_STORE_OK) {
		log_warnx("tenant %s: cannot list retired enrollments: %s",
		          tenant, eb_store_strerror(rc));
		*err = 1;
		return NULL;
	}
	if ((r = eb_calloc(1, sizeof(*r))) == NULL ||
	    (r->tenant = eb_strdup(tenant)) == NULL)
		goto fail;
	r->store = s;
	r->stamp = *st;
	r->read_ns = now;
	if (l.n > CACHE_VALUES) {
		r->overflow = 1;
		if (atomic_exchange(&g_overflow_logged, 1) == 0)
			log_warnx(
			    "tenant %s: more than %d retired enrollments: "
			    "token-less requests are checked in the "
			    "store each time",
			    tenant, CACHE_VALUES);
	} else if (rset_fill(r, &l) == -1)
		goto fail;
	eb_store_grant_list_finish(&l);
	return r;
fail:
	eb_store_grant_list_finish(&l);
	rset_free(r);
	return NULL;
}

/* This thread's slot for (s, tenant): its current one, or one to fill. */
static struct rset **
slot_of(struct table *t, const struct eb_store *s, const char *tenant)
{
	size_t i;

	for (i = 0; i < CACHE_TENANTS; i++)
		if (t->set[i] != NULL && t->set[i]->store == s &&
		    strcmp(t->set[i]->tenant, tenant) == 0)
			return &t->set[i];
	for (i = 0; i < CACHE_TENANTS; i++)
		if (t->set[i] == NULL)
			return &t->set[i];
	i = t->next++ % CACHE_TENANTS;
	rset_free(t->set[i]);
	t->set[i] = NULL;
	return &t->set[i];
}

static int
fresh(const struct rset *r, const struct eb_store_stamp *st, int64_t now)
{
	return eb_store_stamp_equal(&r->stamp, st) && now >= r->read_ns &&
	       now - r->read_ns < CACHE_TTL_NS;
}

/*
 * This thread's current set of tenant's retired values, read now when
 * missing or stale (*read set to 1); NULL when it cannot be had: then
 * *err is 1 when the store failed, 0 when the caller is to look up.
 */
static struct rset *
current_set(struct eb_store *s, const char *tenant, int *read, int *err)
{
	struct eb_store_stamp st;
	struct table *t;
	struct rset **sp;
	int64_t now;

	*err = 0;
	/* stamp and time before the read: what it returns is as new */
	if (eb_token_caches_off() || eb_store_stamp(s, &st) != 0 ||
	    mono_ns(&now) != 0 || (t = table_get()) == NULL)
		return NULL;
	sp = slot_of(t, s, tenant);
	if (*sp != NULL && fresh(*sp, &st, now))
		return *sp;
	rset_free(*sp);
	*read = 1;
	*sp = rset_load(s, tenant, &st, now, err);
	return *sp;
}

/* The answer for (kind, value) with set r at hand; *read as above. */
static int
from_set(struct eb_store *s, struct rset *r, int kind, const char *value,
         int *read)
{
	struct rvalue key, *e;

	if (r->overflow) {
		*read = 1;
		return lookup(s, r->tenant, kind, value);
	}
	key.kind = kind;
	key.value = (char *)value;
	if (r->n == 0 ||
	    (e = bsearch(&key, r->v, r->n, sizeof(*r->v), rvalue_cmp)) == NULL)
		return 0; /* no retired grant holds it */
	if (e->verdict == -1) {
		*read = 1;
		e->verdict = lookup(s, r->tenant, kind, value);
	}
	return e->verdict;
}

int
eb_retired_enrollment(struct eb_store *s, const char *tenant, const char *kind,
                      const char *value)
{
	struct rset *r;
	int k, rc, read = 0, err;

	if (s == NULL || tenant == NULL || value == NULL ||
	    (k = kind_index(kind)) == -1)
		return 0;
	if ((r = current_set(s, tenant, &read, &err)) != NULL)
		rc = from_set(s, r, k, value, &read);
	else if (err)
		rc = -1;
	else {
		read = 1;
		rc = lookup(s, tenant, k, value);
	}
	atomic_fetch_add_explicit(read ? &g_misses : &g_hits, 1,
	                          memory_order_relaxed);
	return rc;
}

void
eb_retired_cache_stats(uint64_t *hits, uint64_t *misses)
{
	*hits = atomic_load_explicit(&g_hits, memory_order_relaxed);
	*misses = atomic_load_explicit(&g_misses, memory_order_relaxed);
}

void
eb_retired_cache_clear(void)
{
	if (t_table == NULL)
		return;
	pthread_setspecific(table_key, NULL);
	table_free(t_table);
	t_table = NULL;
}
