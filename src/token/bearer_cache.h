/*
 * The bearer check's cache of what the store says about a token (its row
 * and its grant's row), so that a device's check-ins do not each begin a
 * database read. Per thread: no locks, and nothing shared to go stale in
 * another thread's hands. Keyed by the token's hash; it never holds a
 * token.
 *
 * The invariant: an entry is used only while nothing can have changed the
 * rows it copies. It records the store's stamp (store.h, change tracking)
 * taken before the rows were read; it is used only while the stamp is
 * unchanged (no token or grant operation in this process since, no touch
 * of the change file by another process, no invalidation the store's feed
 * learnt of from another replica) and for at most a second (for changes
 * nothing announces: an edit by hand). "Not found" is never cached, nor
 * anything from a store with neither a change file nor a feed proved
 * current within the last second: with the feed down, caching is off.
 * Across replicas on PostgreSQL (DESIGN "Scale-out") a revocation is so
 * refused on every replica for requests that start 100 ms after the
 * revoking call returned. Expiry is not decided here: the caller compares
 * the cached expiry times with its now on every check.
 */
#ifndef EB_BEARER_CACHE_H
#define EB_BEARER_CACHE_H

#include <stdint.h>

#include "store/store.h"

/*
 * The fields of a token row and of its grant's row that the bearer check
 * decides on. Strings may be NULL where the column is. The cache copies
 * exactly these: a field the check starts to read must be added here.
 */
struct eb_bearer_cache_facts {
	/* the token */
	int kind;   /* enum eb_store_token_kind */
	int status; /* enum eb_store_token_status */
	int64_t expires;
	const char *tenant, *grant_id, *jti;
	/* its grant; g_id is NULL when the grant row is gone */
	const char *g_id, *g_tenant;
	int g_status; /* enum eb_store_grant_status */
	int64_t g_expires;
	const char *managed_apple_id, *enrollment_mode, *client_id;
	const char *binding_kind, *binding_value;
};

/* One lookup, from eb_bearer_cache_get to eb_bearer_cache_put. */
struct eb_bearer_cache_ctx {
	const struct eb_store *store;
	char hash[EB_STORE_HASH_HEXLEN + 1];
	struct eb_store_stamp stamp; /* taken before the store is read */
	int64_t read_ns;             /* CLOCK_MONOTONIC, likewise */
	int usable;                  /* 0: neither read nor fill the cache */
};

/*
 * Look up the token with hash (hex SHA-256) of store, first taking the
 * store's stamp and the time into ctx. The cached facts (the cache's
 * memory, valid until this thread's next eb_bearer_cache_put), or NULL:
 * then read the store and, when it has the token, eb_bearer_cache_put.
 */
const struct eb_bearer_cache_facts *
eb_bearer_cache_get(struct eb_store *store, const char *hash,
                    struct eb_bearer_cache_ctx *ctx);
/*
 * Remember f (copied), read from the store after eb_bearer_cache_get
 * missed with ctx. Does nothing when ctx is not usable or memory is short.
 */
void eb_bearer_cache_put(const struct eb_bearer_cache_ctx *ctx,
                         const struct eb_bearer_cache_facts *f);
/* Forget this thread's entries (also done when the thread exits). */
void eb_bearer_cache_clear(void);
#ifdef EB_TEST_HOOKS
/* Test builds only: this thread's hits and misses so far (of usable
 * lookups). */
void eb_bearer_cache_test_stats(uint64_t *hits, uint64_t *misses);
#endif
/* Lookups answered from the cache and not, since start, all threads. */
void eb_bearer_cache_stats(uint64_t *hits, uint64_t *misses);

/*
 * 1 when ENROLLBRIDGE_NO_TOKEN_CACHE=1 was set at start: the bearer check
 * then reads the store and verifies the signature on every request (this
 * cache and the signer's verified-signature cache are both off), to
 * measure a fleet where each request comes from another device, or to
 * rule the caches out when diagnosing.
 */
int eb_token_caches_off(void);

#endif
