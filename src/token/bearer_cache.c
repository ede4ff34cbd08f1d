/*
 * The bearer check's per-thread cache (bearer_cache.h): a direct-mapped
 * table of CACHE_SLOTS entries by token hash, each entry one allocation
 * holding the facts and their strings, the store it came from, and the
 * stamp and time it was read under. A thread's table is made at its first
 * fill and freed when the thread exits.
 */
#include "token/bearer_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "core/str.h"

#define CACHE_SLOTS 1024 /* a power of two */
/* for changes nothing announces (a feed's invalidations are announced) */
#define CACHE_TTL_NS 1000000000LL

struct entry {
	char hash[EB_STORE_HASH_HEXLEN + 1];
	const struct eb_store *store;
	struct eb_store_stamp stamp;
	int64_t read_ns;
	struct eb_bearer_cache_facts f; /* strings point into text */
	char text[];
};

struct table {
	struct entry *slot[CACHE_SLOTS];
};

/*
 * Per-thread state: mutable globals, against our rule, because a cache
 * shared by threads would need a lock on every request, which is what the
 * cache is there to save. The key only frees a table at thread exit.
 */
static _Thread_local struct table *t_table;
static _Thread_local uint64_t t_hits, t_misses;
/* The same, for the whole process (/metrics). */
static atomic_ullong g_hits, g_misses;
static pthread_key_t table_key;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static int table_key_ok;

static void
table_free(void *p)
{
	struct table *t = p;
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < CACHE_SLOTS; i++)
		eb_free(t->slot[i]);
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

/* A hex digit's value; 0 for anything else (the caller checked the
 * hash's length, and a bad digit only picks another slot). */
static size_t
hexval(char c)
{
	int v = eb_str_hexval((unsigned char)c);

	return v < 0 ? 0 : (size_t)v;
}

/* A SHA-256 is uniform: its first 12 bits pick the slot. */
static size_t
slot_of(const char *hash)
{
	size_t v =
	    hexval(hash[0]) << 8 | hexval(hash[1]) << 4 | hexval(hash[2]);

	return v & (CACHE_SLOTS - 1);
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

/* Could the rows have changed since e was read (or may we not tell)? */
static int
stale(const struct entry *e, const struct eb_bearer_cache_ctx *ctx)
{
	return !eb_store_stamp_equal(&e->stamp, &ctx->stamp) ||
	       ctx->read_ns < e->read_ns ||
	       ctx->read_ns - e->read_ns >= CACHE_TTL_NS;
}

/* This thread's entry for ctx's token, dropping a stale one; or NULL. */
static struct entry *
lookup(const struct eb_bearer_cache_ctx *ctx)
{
	struct entry **sp;

	if (t_table == NULL)
		return NULL;
	sp = &t_table->slot[slot_of(ctx->hash)];
	if (*sp != NULL && stale(*sp, ctx)) {
		eb_free(*sp);
		*sp = NULL;
	}
	/* the key is a hash of a verified token: comparing it leaks nothing */
	if (*sp == NULL || (*sp)->store != ctx->store ||
	    strcmp((*sp)->hash, ctx->hash) != 0)
		return NULL;
	return *sp;
}

static pthread_once_t g_off_once = PTHREAD_ONCE_INIT;
static int g_off;

static void
read_off(void)
{
	const char *v = getenv("ENROLLBRIDGE_NO_TOKEN_CACHE");

	g_off = v != NULL && strcmp(v, "1") == 0;
}

int
eb_token_caches_off(void)
{
	pthread_once(&g_off_once, read_off);
	return g_off;
}

const struct eb_bearer_cache_facts *
eb_bearer_cache_get(struct eb_store *store, const char *hash,
                    struct eb_bearer_cache_ctx *ctx)
{
	struct entry *e;

	memset(ctx, 0, sizeof(*ctx));
	if (eb_token_caches_off() || store == NULL || hash == NULL ||
	    strlen(hash) != EB_STORE_HASH_HEXLEN)
		return NULL;
	/* stamp and time before the read: what it returns is at least as new */
	if (eb_store_stamp(store, &ctx->stamp) != 0 ||
	    mono_ns(&ctx->read_ns) != 0)
		return NULL;
	ctx->store = store;
	memcpy(ctx->hash, hash, sizeof(ctx->hash));
	ctx->usable = 1;
	if ((e = lookup(ctx)) == NULL) {
		t_misses++;
		atomic_fetch_add_explicit(&g_misses, 1, memory_order_relaxed);
		return NULL;
	}
	t_hits++;
	atomic_fetch_add_explicit(&g_hits, 1, memory_order_relaxed);
	return &e->f;
}

/* A new entry holding a copy of f; NULL when out of memory. */
static struct entry *
entry_new(const struct eb_bearer_cache_ctx *ctx,
          const struct eb_bearer_cache_facts *f)
{
	struct entry *e;
	size_t n;
	char *p;

	n = eb_str_room(f->tenant) + eb_str_room(f->grant_id) +
	    eb_str_room(f->jti) + eb_str_room(f->g_id) +
	    eb_str_room(f->g_tenant) + eb_str_room(f->managed_apple_id) +
	    eb_str_room(f->enrollment_mode) + eb_str_room(f->client_id) +
	    eb_str_room(f->binding_kind) + eb_str_room(f->binding_value);
	if ((e = eb_malloc(sizeof(*e) + n)) == NULL)
		return NULL;
	memcpy(e->hash, ctx->hash, sizeof(e->hash));
	e->store = ctx->store;
	e->stamp = ctx->stamp;
	e->read_ns = ctx->read_ns;
	e->f = *f;
	p = e->text;
	e->f.tenant = eb_str_put(&p, f->tenant);
	e->f.grant_id = eb_str_put(&p, f->grant_id);
	e->f.jti = eb_str_put(&p, f->jti);
	e->f.g_id = eb_str_put(&p, f->g_id);
	e->f.g_tenant = eb_str_put(&p, f->g_tenant);
	e->f.managed_apple_id = eb_str_put(&p, f->managed_apple_id);
	e->f.enrollment_mode = eb_str_put(&p, f->enrollment_mode);
	e->f.client_id = eb_str_put(&p, f->client_id);
	e->f.binding_kind = eb_str_put(&p, f->binding_kind);
	e->f.binding_value = eb_str_put(&p, f->binding_value);
	return e;
}

void
eb_bearer_cache_put(const struct eb_bearer_cache_ctx *ctx,
                    const struct eb_bearer_cache_facts *f)
{
	struct table *t;
	struct entry *e;
	size_t i;

	if (!ctx->usable || (t = table_get()) == NULL ||
	    (e = entry_new(ctx, f)) == NULL)
		return;
	i = slot_of(ctx->hash);
	eb_free(t->slot[i]);
	t->slot[i] = e;
}

void
eb_bearer_cache_clear(void)
{
	if (t_table == NULL)
		return;
	pthread_setspecific(table_key, NULL);
	table_free(t_table);
	t_table = NULL;
}

void
eb_bearer_cache_stats(uint64_t *hits, uint64_t *misses)
{
	*hits = atomic_load_explicit(&g_hits, memory_order_relaxed);
	*misses = atomic_load_explicit(&g_misses, memory_order_relaxed);
}

#ifdef EB_TEST_HOOKS
void
eb_bearer_cache_test_stats(uint64_t *hits, uint64_t *misses)
{
	*hits = t_hits;
	*misses = t_misses;
}
#endif
