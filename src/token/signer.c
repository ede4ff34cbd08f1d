/*
 * The signer: our ES256 signing keys, kept in the store's signing_keys
 * table with their private halves sealed (AES-GCM under the state_dir seal
 * key, associated data = kid), and everything made from them: the signing
 * key, the published JWKS, and the key set our own tokens are verified
 * against.
 *
 * The newest key that is active (activates_at <= now) and not retired
 * (retired_at 0 or later than now) signs. Every key is published (and
 * accepted) until its not_after, including one not active yet: a rotation
 * made with a delay is in every replica's JWKS before anyone signs with
 * it (SCALEOUT 3.8). The store keeps one current key (retired_at 0); a
 * rotation retires the old one at the new one's activation. A delayed key
 * also waits, in each signer, until that signer has published it once: a
 * signer that last looked before the activation keeps its old key for one
 * more reload (the old key stays published well beyond).
 *
 * A key is only trusted when its sealed private half opens under our seal
 * key: a row slipped into the database by someone without that key is
 * ignored, never published.
 *
 * A loaded key set is an immutable, reference-counted snapshot. Readers
 * take a reference under a short mutex; a reload builds a new snapshot off
 * to the side and swaps it in. Reloading is cheap when nothing changed: one
 * listing of the (small) key table, compared by fingerprint.
 */
#include "token/token.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/buf.h"
#include "core/digest.h"
#include "core/log.h"
#include "core/mem.h"
#include "jose/jose.h"
#include "jose/seal.h"
#include "store/store.h"
#include "token/bearer_cache.h"

/* How long after a rotation a running server may keep signing with the old
 * key before it notices (its periodic refresh), plus clock skew: added to
 * the retired key's publication so every token it signed stays verifiable. */
#define ROTATE_MARGIN 600
/* The JWKS and signing paths look at the store at most this often. */
#define LAZY_REFRESH_EVERY 2
/* A token with an unknown kid makes us look at the store at most this often
 * (anyone can send one). */
#define UNKNOWN_KID_REFRESH_EVERY 5
#define FP_MAX                    (64 * 1024)
#define JWKS_MAX                  (64 * 1024)

/* One loaded key set; immutable once published. */
struct keyset {
	unsigned refs; /* guarded by the signer's lock */
	struct eb_jose_key *current;
	int64_t current_since; /* when current began to sign (its row) */
	char *jwks_json;
	size_t jwks_len;
	struct eb_jose_jwks *jwks;
	char *fp;            /* fingerprint of the rows it was built from */
	int64_t next_change; /* earliest future activation, retirement or
	                        not_after of a key, or 0: rebuild then */
	uint64_t gen;        /* distinct for every key set ever built */
};

/*
 * Verified-token cache: checking an ES256 signature is most of what a
 * bearer check costs, and an MDM device presents the same token on every
 * request. A slot remembers that the token with SHA-256 h verified with
 * typ under key set gen; any change of the key set makes every slot stale.
 * The key is the hash of the whole token and the whole typ, so the bearer
 * check hashes a token once for this cache and the store lookup alike.
 * Only signature verification is cached: expiry and the store's view
 * (revocation) are checked by the callers on every request, so a revoked
 * token is refused at once. Slots are fixed (no allocation on the hot
 * path), lock-striped.
 */
#define VCACHE_SLOTS   4096 /* power of two */
#define VCACHE_STRIPES 16
#define VCACHE_TYP_MAX 16 /* longer typs are verified, never cached */

struct vslot {
	unsigned char h[32];
	char typ[VCACHE_TYP_MAX]; /* NUL-terminated */
	uint64_t gen;             /* 0: empty */
	json_t *claims;           /* shared, read-only */
};

struct eb_signer {
	struct eb_store *store;
	struct eb_seal_ring *ring; /* our copy: the first key seals */
	int64_t max_ttl;
	pthread_mutex_t lock; /* ks, refs, last_* */
	pthread_mutex_t reload_lock;
	struct keyset *ks;
	_Atomic uint64_t ks_gen; /* ks->gen, for readers without the lock */
	int64_t last_check;
	int64_t last_unknown;
	uint64_t next_gen;
	struct vslot *vcache;
	pthread_mutex_t vlock[VCACHE_STRIPES];
};

static void
keyset_free(struct keyset *ks)
{
	if (ks == NULL)
		return;
	eb_jose_key_destroy(ks->current);
	eb_free(ks->jwks_json);
	eb_jose_jwks_release(ks->jwks);
	eb_free(ks->fp);
	eb_free(ks);
}

static struct keyset *
ks_get(struct eb_signer *s)
{
	struct keyset *ks;

	pthread_mutex_lock(&s->lock);
	if ((ks = s->ks) != NULL)
		ks->refs++;
	pthread_mutex_unlock(&s->lock);
	return ks;
}

static void
ks_put(struct eb_signer *s, struct keyset *ks)
{
	int last;

	if (ks == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	last = --ks->refs == 0;
	pthread_mutex_unlock(&s->lock);
	if (last)
		keyset_free(ks);
}

static int
is_shared(const struct eb_store_key *k)
{
	return k->tenant == NULL || k->tenant[0] == '\0';
}

static int
is_published(const struct eb_store_key *k, int64_t now)
{
	return k->retired_at == 0 || k->not_after == 0 || k->not_after > now;
}

/* May sign at now: active, and not retired yet. */
static int
is_signing(const struct eb_store_key *k, int64_t now)
{
	return k->activates_at <= now &&
	       (k->retired_at == 0 || k->retired_at > now);
}

/* Lower *next to t when t is a future instant before it. */
static void
next_event(int64_t *next, int64_t t, int64_t now)
{
	if (t > now && (*next == 0 || t < *next))
		*next = t;
}

/* The fingerprint of the rows that matter: any change means a reload. */
static char *
fingerprint(const struct eb_store_key_list *l)
{
	struct eb_buf b;
	size_t i;

	eb_buf_init(&b, FP_MAX);
	for (i = 0; i < l->n; i++) {
		const struct eb_store_key *k = &l->v[i];

		if (!is_shared(k) || k->kid == NULL)
			continue;
		if (eb_buf_printf(&b, "%s|%lld|%lld|%lld|%lld;", k->kid,
		                  (long long)k->created,
		                  (long long)k->activates_at,
		                  (long long)k->retired_at,
		                  (long long)k->not_after) == -1) {
			eb_buf_finish(&b);
			return NULL;
		}
	}
	return eb_buf_detach(&b, NULL);
}

/* The private key of row k, when its sealed half opens under a ring key. */
static struct eb_jose_key *
unseal(const struct eb_seal_ring *ring, const struct eb_store_key *k)
{
	struct eb_jose_key *key;
	enum eb_jose_err jerr = EB_JOSE_OK;
	uint8_t *pt = NULL;
	size_t ptlen = 0;

	if (k->kid == NULL || k->private_key == NULL || k->alg == NULL ||
	    strcmp(k->alg, "ES256") != 0)
		return NULL;
	if (eb_seal_ring_open(ring, EB_SEAL_AT_REST, k->kid, strlen(k->kid),
	                      k->private_key, k->private_key_len, &pt, &ptlen,
	                      NULL) != 0) {
		log_warnx("signing key %s does not open with any of our seal "
		          "keys; ignored",
		          k->kid);
		return NULL;
	}
	key = eb_jose_key_import((const char *)pt, ptlen, &jerr);
	eb_free_secret(pt, ptlen + 1);
	if (key == NULL) {
		log_warnx("signing key %s: %s; ignored", k->kid,
		          eb_jose_strerror(jerr));
		return NULL;
	}
	if (strcmp(eb_jose_key_kid(key), k->kid) != 0) {
		log_warnx("signing key %s: sealed key has another kid; ignored",
		          k->kid);
		eb_jose_key_destroy(key);
		return NULL;
	}
	return key;
}

/* The candidates for the current key while a key set is built. */
struct pick {
	struct eb_jose_key *newest; /* the newest key signing now */
	struct eb_jose_key *known;  /* the newest of those published before */
	struct eb_jose_key *prev;   /* the last set's current key */
};

/*
 * Whether this signer may sign with row k, given its last key set prev: a
 * key rotated with a delay signs only once this signer has published it
 * in an earlier key set, so its own JWKS listed the key before any token
 * signed with it. A key meant to sign at once (activates_at <= created)
 * and a first load need no such wait.
 */
static int
published_before(const struct keyset *prev, const struct eb_store_key *k)
{
	return prev == NULL || k->activates_at <= k->created ||
	       eb_jose_jwks_has_kid(prev->jwks, k->kid);
}

/* Offer key (row k) as a candidate: 1 when p keeps it, 0 when not. */
static int
pick_offer(struct pick *p, struct eb_jose_key *key,
           const struct eb_store_key *k, const struct keyset *prev, int64_t now)
{
	int kept = 0;

	if (is_signing(k, now)) {
		if (p->newest == NULL) {
			p->newest = key;
			kept = 1;
		}
		if (p->known == NULL && published_before(prev, k)) {
			p->known = key;
			kept = 1;
		}
	}
	if (p->prev == NULL && prev != NULL &&
	    strcmp(k->kid, eb_jose_key_kid(prev->current)) == 0) {
		p->prev = key;
		kept = 1;
	}
	return kept;
}

/*
 * The current key: the newest signing key published before, else (a new
 * key just activated that this signer never published) the last current
 * key for one more round, else the newest. The others are destroyed.
 */
static struct eb_jose_key *
pick_finish(struct pick *p)
{
	struct eb_jose_key *cur = p->known  ? p->known
	                          : p->prev ? p->prev
	                                    : p->newest;

	if (p->newest != cur)
		eb_jose_key_destroy(p->newest);
	if (p->known != cur && p->known != p->newest)
		eb_jose_key_destroy(p->known);
	if (p->prev != cur && p->prev != p->newest && p->prev != p->known)
		eb_jose_key_destroy(p->prev);
	memset(p, 0, sizeof(*p));
	return cur;
}

/* When the row of kid began to sign: its activation, else its creation. */
static int64_t
key_since(const struct eb_store_key_list *l, const char *kid)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i].kid, kid) == 0)
			return l->v[i].activates_at > l->v[i].created
			           ? l->v[i].activates_at
			           : l->v[i].created;
	return 0;
}

/*
 * Build a key set from the store's rows (newest first) at now, for a
 * signer whose current key set is prev (NULL: none yet).
 */
static struct keyset *
keyset_build(const struct eb_seal_ring *ring, const struct eb_store_key_list *l,
             int64_t now, const struct keyset *prev, char *err, size_t errlen)
{
	struct pick pk = {NULL, NULL, NULL};
	struct keyset *ks;
	struct eb_buf b;
	enum eb_jose_err jerr = EB_JOSE_OK;
	size_t i, npub = 0;

	if ((ks = eb_calloc(1, sizeof(*ks))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ks->refs = 1;
	eb_buf_init(&b, JWKS_MAX);
	if (eb_buf_addstr(&b, "{\"keys\":[") == -1)
		goto oom;
	for (i = 0; i < l->n; i++) {
		const struct eb_store_key *k = &l->v[i];
		struct eb_jose_key *key;
		char *pub;

		if (!is_shared(k) || !is_published(k, now))
			continue;
		if (npub == EB_JOSE_MAX_KEYS) {
			log_warnx("more than %d published signing keys; the "
			          "oldest are left out",
			          EB_JOSE_MAX_KEYS);
			break;
		}
		if ((key = unseal(ring, k)) == NULL)
			continue;
		if ((pub = eb_jose_key_public_json(key)) == NULL) {
			eb_jose_key_destroy(key);
			goto oom;
		}
		if ((npub > 0 && eb_buf_addc(&b, ',') == -1) ||
		    eb_buf_addstr(&b, pub) == -1) {
			eb_free(pub);
			eb_jose_key_destroy(key);
			goto oom;
		}
		eb_free(pub);
		npub++;
		next_event(&ks->next_change, k->activates_at, now);
		next_event(&ks->next_change, k->retired_at, now);
		next_event(&ks->next_change, k->not_after, now);
		if (!pick_offer(&pk, key, k, prev, now))
			eb_jose_key_destroy(key);
	}
	/* the newest key signing now, once we have published it */
	if (pk.known != pk.newest)
		next_event(&ks->next_change, now + 1, now);
	ks->current = pick_finish(&pk);
	if (eb_buf_addstr(&b, "]}") == -1)
		goto oom;
	if (ks->current == NULL) {
		snprintf(err, errlen, "no usable signing key in the store");
		goto fail;
	}
	ks->current_since = key_since(l, eb_jose_key_kid(ks->current));
	ks->jwks_json = eb_buf_detach(&b, &ks->jwks_len);
	if ((ks->fp = fingerprint(l)) == NULL)
		goto oom;
	if ((ks->jwks = eb_jose_jwks_parse(ks->jwks_json, ks->jwks_len,
	                                   EB_JOSE_MAX_KEYS, &jerr)) == NULL ||
	    !eb_jose_jwks_has_kid(ks->jwks, eb_jose_key_kid(ks->current))) {
		snprintf(err, errlen, "our own JWKS does not parse: %s",
		         eb_jose_strerror(jerr));
		goto fail;
	}
	return ks;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	eb_jose_key_destroy(pick_finish(&pk)); /* candidates not placed */
	eb_buf_finish(&b);
	keyset_free(ks);
	return NULL;
}

/* A new key: generated, its private half sealed. */
struct newkey {
	struct eb_jose_key *key;
	struct eb_store_key row; /* borrows from key and the buffers */
	char *pub;
	uint8_t *sealed;
};

static void
newkey_finish(struct newkey *nk)
{
	eb_free(nk->pub);
	eb_free(nk->sealed);
	eb_jose_key_destroy(nk->key);
	memset(nk, 0, sizeof(*nk));
}

static int
newkey_make(struct newkey *nk, const struct eb_seal_ring *ring, int64_t now,
            int64_t activates_at, char *err, size_t errlen)
{
	char *priv = NULL;
	size_t privlen = 0, sealed_len = 0;
	int rc = -1;

	memset(nk, 0, sizeof(*nk));
	if ((nk->key = eb_jose_key_generate()) == NULL) {
		snprintf(err, errlen, "cannot generate a signing key");
		return -1;
	}
	nk->row.kid = (char *)(uintptr_t)eb_jose_key_kid(nk->key);
	if ((priv = eb_jose_key_private_json(nk->key, &privlen)) == NULL ||
	    (nk->pub = eb_jose_key_public_json(nk->key)) == NULL ||
	    eb_seal_ring_seal(ring, EB_SEAL_AT_REST, nk->row.kid,
	                      strlen(nk->row.kid), priv, privlen, &nk->sealed,
	                      &sealed_len) != 0) {
		snprintf(err, errlen, "cannot seal the new signing key");
		goto out;
	}
	nk->row.tenant = "";
	nk->row.alg = "ES256";
	nk->row.created = now;
	nk->row.activates_at = activates_at;
	nk->row.public_jwk = nk->pub;
	nk->row.private_key = nk->sealed;
	nk->row.private_key_len = sealed_len;
	rc = 0;
out:
	if (priv != NULL)
		eb_free_secret(priv, privlen);
	if (rc != 0)
		newkey_finish(nk);
	return rc;
}

/*
 * The first key of an empty store, active at once. 0 when stored or when
 * another process stored one first (CONFLICT: the caller reloads).
 */
static int
bootstrap_key(struct eb_store *store, const struct eb_seal_ring *ring,
              int64_t now, char *err, size_t errlen)
{
	struct newkey nk;
	int rc;

	if (newkey_make(&nk, ring, now, now, err, errlen) != 0)
		return -1;
	rc = eb_store_key_put(store, &nk.row);
	if (rc == EB_STORE_OK)
		log_info("new signing key %s", nk.row.kid);
	else if (rc == EB_STORE_CONFLICT)
		log_info("another process stored the first signing key");
	else
		snprintf(err, errlen, "cannot store the new signing key");
	newkey_finish(&nk);
	return rc == EB_STORE_OK || rc == EB_STORE_CONFLICT ? 0 : -1;
}

/* A shared key signs now or will: the current one (retired_at 0), or
 * one that signs until a pending key activates. */
static int
has_signing_key(const struct eb_store_key_list *l, int64_t now)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (is_shared(&l->v[i]) &&
		    (l->v[i].retired_at == 0 || is_signing(&l->v[i], now)))
			return 1;
	return 0;
}

/*
 * Reload from the store. force: rebuild even when the rows look the same.
 * Returns 0 (reloaded or unchanged), -1 (old set kept, logged).
 */
static int
reload(struct eb_signer *s, int64_t now, int force)
{
	struct eb_store_key_list l;
	struct keyset *ks, *cur, *old;
	char *fp = NULL, err[256];
	int rc = -1;

	pthread_mutex_lock(&s->reload_lock);
	if (eb_store_key_list(s->store, NULL, &l) != EB_STORE_OK) {
		pthread_mutex_unlock(&s->reload_lock);
		return -1;
	}
	/* only reload() replaces s->ks, and reload_lock is held */
	cur = s->ks;
	if (!force && cur != NULL && (fp = fingerprint(&l)) != NULL &&
	    strcmp(fp, cur->fp) == 0 &&
	    (cur->next_change == 0 || now < cur->next_change)) {
		rc = 0;
		goto out;
	}
	if ((ks = keyset_build(s->ring, &l, now, cur, err, sizeof(err))) ==
	    NULL) {
		log_errx("signing keys not reloaded: %s", err);
		goto out;
	}
	if (cur == NULL || strcmp(eb_jose_key_kid(cur->current),
	                          eb_jose_key_kid(ks->current)) != 0)
		log_info("signing with key %s", eb_jose_key_kid(ks->current));
	pthread_mutex_lock(&s->lock);
	ks->gen = ++s->next_gen; /* stales every cached verification */
	old = s->ks;
	s->ks = ks;
	atomic_store(&s->ks_gen, ks->gen);
	pthread_mutex_unlock(&s->lock);
	ks_put(s, old); /* the signer's own reference */
	rc = 0;
out:
	eb_free(fp);
	eb_store_key_list_finish(&l);
	pthread_mutex_unlock(&s->reload_lock);
	return rc;
}

/*
 * The signer reads the real time (time(NULL) here and below): it is made
 * from a store and a seal ring alone, also by the key commands of the CLI,
 * which have no root context, and key states follow the wall clock every
 * replica shares.
 */

/* Reload when the last look at the store is more than every seconds old. */
static void
maybe_refresh(struct eb_signer *s, int64_t *last, int every)
{
	int64_t now = (int64_t)time(NULL);
	int due;

	pthread_mutex_lock(&s->lock);
	due = now - *last >= every || now < *last;
	if (due)
		*last = now;
	pthread_mutex_unlock(&s->lock);
	if (due)
		reload(s, now, 0);
}

struct eb_signer *
eb_signer_open(struct eb_store *store, const uint8_t seal_key[32],
               int64_t max_token_ttl, char *err, size_t errlen)
{
	struct eb_seal_ring *ring;
	struct eb_signer *s;

	if (seal_key == NULL) {
		snprintf(err, errlen, "bad arguments");
		return NULL;
	}
	if ((ring = eb_seal_ring_of(seal_key)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s = eb_signer_open_ring(store, ring, max_token_ttl, err, errlen);
	eb_seal_ring_free(ring);
	return s;
}

struct eb_signer *
eb_signer_open_ring(struct eb_store *store, const struct eb_seal_ring *ring,
                    int64_t max_token_ttl, char *err, size_t errlen)
{
	struct eb_signer *s;
	struct eb_store_key_list l;
	int64_t now = (int64_t)time(NULL);
	int need;

	if (store == NULL || eb_seal_ring_count(ring) == 0 ||
	    max_token_ttl < 0) {
		snprintf(err, errlen, "bad arguments");
		return NULL;
	}
	if (eb_store_key_list(store, NULL, &l) != EB_STORE_OK) {
		snprintf(err, errlen, "cannot list the signing keys");
		return NULL;
	}
	need = !has_signing_key(&l, now);
	eb_store_key_list_finish(&l);
	if (need && bootstrap_key(store, ring, now, err, errlen) != 0)
		return NULL;
	if ((s = eb_calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->store = store;
	if ((s->ring = eb_seal_ring_dup(ring)) == NULL) {
		snprintf(err, errlen, "out of memory");
		eb_free(s);
		return NULL;
	}
	s->max_ttl = max_token_ttl;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->reload_lock, NULL);
	for (int i = 0; i < VCACHE_STRIPES; i++)
		pthread_mutex_init(&s->vlock[i], NULL);
	if ((s->vcache = eb_calloc(VCACHE_SLOTS, sizeof(*s->vcache))) == NULL) {
		snprintf(err, errlen, "out of memory");
		eb_signer_close(s);
		return NULL;
	}
	s->last_check = now;
	if (reload(s, now, 1) != 0 || s->ks == NULL) {
		snprintf(err, errlen,
		         "no usable signing key (is the seal key the one the "
		         "keys were sealed with?)");
		eb_signer_close(s);
		return NULL;
	}
	return s;
}

void
eb_signer_close(struct eb_signer *s)
{
	if (s == NULL)
		return;
	ks_put(s, s->ks);
	if (s->vcache != NULL)
		for (size_t i = 0; i < VCACHE_SLOTS; i++)
			json_decref(s->vcache[i].claims);
	eb_free(s->vcache);
	for (int i = 0; i < VCACHE_STRIPES; i++)
		pthread_mutex_destroy(&s->vlock[i]);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->reload_lock);
	eb_seal_ring_free(s->ring);
	eb_free(s);
}

int
eb_signer_refresh(struct eb_signer *s)
{
	int64_t now = (int64_t)time(NULL);

	pthread_mutex_lock(&s->lock);
	s->last_check = now;
	pthread_mutex_unlock(&s->lock);
	return reload(s, now, 0);
}

int
eb_signer_rotate(struct eb_store *store, const uint8_t seal_key[32],
                 int64_t max_token_ttl, char *kid_out, size_t kidlen, char *err,
                 size_t errlen)
{
	struct eb_seal_ring *ring;
	int rc;

	if ((ring = eb_seal_ring_of(seal_key)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = eb_signer_rotate_ring(store, ring, max_token_ttl, 0, kid_out,
	                           kidlen, err, errlen);
	eb_seal_ring_free(ring);
	return rc;
}

int
eb_signer_rotate_ring(struct eb_store *store, const struct eb_seal_ring *ring,
                      int64_t max_token_ttl, int64_t activate_in, char *kid_out,
                      size_t kidlen, char *err, size_t errlen)
{
	struct newkey nk;
	int64_t now = (int64_t)time(NULL), at;
	int rc;

	if (max_token_ttl < 0 || activate_in < 0) {
		snprintf(err, errlen, "bad arguments");
		return -1;
	}
	at = now + activate_in;
	if (newkey_make(&nk, ring, now, at, err, errlen) != 0)
		return -1;
	/* one step: the old key signs until the new one does, and is
	 * published for as long as a token it signed may live */
	rc = eb_store_key_rotate(store, &nk.row, at,
	                         at + max_token_ttl + ROTATE_MARGIN);
	if (rc == EB_STORE_CONFLICT)
		snprintf(err, errlen,
		         "another rotation got there first, or the last one "
		         "is still pending (its key not active yet)");
	else if (rc != EB_STORE_OK)
		snprintf(err, errlen, "cannot store the new signing key");
	else {
		log_info("new signing key %s, signing from +%llds; the "
		         "previous one published until +%llds after",
		         nk.row.kid, (long long)activate_in,
		         (long long)(max_token_ttl + ROTATE_MARGIN));
		if (kid_out != NULL)
			snprintf(kid_out, kidlen, "%s", nk.row.kid);
	}
	newkey_finish(&nk);
	return rc == EB_STORE_OK ? 0 : -1;
}

int64_t
eb_signer_max_ttl(const struct eb_config *cfg)
{
	int64_t m = 0;
	size_t i;

	for (i = 0; cfg != NULL && i < cfg->ntenants; i++) {
		const struct eb_tokens_config *tc = &cfg->tenants[i]->tokens;

		if (tc->access_ttl > m)
			m = tc->access_ttl;
		if (tc->refresh_ttl > m)
			m = tc->refresh_ttl;
	}
	return m;
}

char *
eb_signer_jwks(struct eb_signer *s, size_t *lenp)
{
	struct keyset *ks;
	char *out = NULL;

	maybe_refresh(s, &s->last_check, LAZY_REFRESH_EVERY);
	if ((ks = ks_get(s)) == NULL)
		return NULL;
	if ((out = eb_malloc(ks->jwks_len + 1)) != NULL) {
		memcpy(out, ks->jwks_json, ks->jwks_len + 1);
		if (lenp != NULL)
			*lenp = ks->jwks_len;
	}
	ks_put(s, ks);
	return out;
}

char *
eb_signer_sign(struct eb_signer *s, const char *typ, json_t *claims)
{
	struct keyset *ks;
	char *out;

	maybe_refresh(s, &s->last_check, LAZY_REFRESH_EVERY);
	if ((ks = ks_get(s)) == NULL)
		return NULL;
	out = eb_jose_key_sign(ks->current, typ, claims);
	ks_put(s, ks);
	return out;
}

/* One verification against the current snapshot; *gen: that snapshot's. */
static enum eb_jose_err
verify_once(struct eb_signer *s, const char *token, size_t len,
            const struct eb_jose_verify_opts *o, json_t **claims,
            struct eb_jose_verify_info *info, uint64_t *gen)
{
	struct keyset *ks;
	enum eb_jose_err e;

	*gen = 0;
	if ((ks = ks_get(s)) == NULL)
		return EB_JOSE_ERR_INTERNAL;
	e = eb_jose_verify(ks->jwks, token, len, o, claims, info);
	*gen = ks->gen;
	ks_put(s, ks);
	return e;
}

int64_t
eb_signer_current_since(struct eb_signer *s)
{
	struct keyset *ks;
	int64_t since = 0;

	if (s == NULL || (ks = ks_get(s)) == NULL)
		return 0;
	since = ks->current_since;
	ks_put(s, ks);
	return since;
}

/* The generation of the current key set (0: none yet). */
static uint64_t
current_gen(struct eb_signer *s)
{
	return atomic_load(&s->ks_gen);
}

static size_t
vcache_slot(const unsigned char h[32])
{
	return ((size_t)h[0] | (size_t)h[1] << 8) & (VCACHE_SLOTS - 1);
}

/* Whether verifications with typ may be cached at all. */
static int
vcache_typ_ok(const char *typ)
{
	return typ == NULL || strlen(typ) < VCACHE_TYP_MAX;
}

/* 0 with *claims (a new reference) when the token with SHA-256 h verified
 * with typ before under the current key set. */
static int
vcache_get(struct eb_signer *s, const unsigned char h[32], const char *typ,
           json_t **claims)
{
	struct vslot *v;
	uint64_t gen;
	size_t i;
	int rc = -1;

	if (s->vcache == NULL || eb_token_caches_off() || !vcache_typ_ok(typ) ||
	    (gen = current_gen(s)) == 0)
		return -1;
	if (typ == NULL)
		typ = "";
	i = vcache_slot(h);
	v = &s->vcache[i];
	pthread_mutex_lock(&s->vlock[i % VCACHE_STRIPES]);
	if (v->gen == gen && v->claims != NULL &&
	    CRYPTO_memcmp(v->h, h, sizeof(v->h)) == 0 &&
	    strcmp(v->typ, typ) == 0) {
		*claims = json_incref(v->claims);
		rc = 0;
	}
	pthread_mutex_unlock(&s->vlock[i % VCACHE_STRIPES]);
	return rc;
}

/* Remember that the token with SHA-256 h verified with typ under key set
 * gen (the one that verified it: a set swapped in meanwhile is not
 * vouched for). */
static void
vcache_put(struct eb_signer *s, const unsigned char h[32], const char *typ,
           uint64_t gen, json_t *claims)
{
	struct vslot *v;
	json_t *old;
	size_t i;

	if (s->vcache == NULL || eb_token_caches_off() || !vcache_typ_ok(typ) ||
	    gen == 0)
		return;
	if (typ == NULL)
		typ = "";
	i = vcache_slot(h);
	v = &s->vcache[i];
	pthread_mutex_lock(&s->vlock[i % VCACHE_STRIPES]);
	old = v->claims;
	memcpy(v->h, h, sizeof(v->h));
	memcpy(v->typ, typ, strlen(typ) + 1);
	v->gen = gen;
	v->claims = json_incref(claims);
	pthread_mutex_unlock(&s->vlock[i % VCACHE_STRIPES]);
	json_decref(old);
}

int
eb_signer_verify_hashed(struct eb_signer *s, const char *token, size_t len,
                        const unsigned char sha256[32], const char *typ,
                        json_t **claims)
{
	struct eb_jose_verify_opts o;
	struct eb_jose_verify_info info;
	enum eb_jose_err e;
	uint64_t gen;

	*claims = NULL;
	if (token == NULL || len > EB_TOKEN_MAX_LEN)
		return -1;
	if (vcache_get(s, sha256, typ, claims) == 0)
		return 0;
	memset(&o, 0, sizeof(o));
	o.algs = EB_JOSE_ES256;
	o.max_len = EB_TOKEN_MAX_LEN;
	o.typ = typ;
	e = verify_once(s, token, len, &o, claims, &info, &gen);
	if (e == EB_JOSE_ERR_UNKNOWN_KID) {
		/* another process may have rotated: look once, rate-limited */
		maybe_refresh(s, &s->last_unknown, UNKNOWN_KID_REFRESH_EVERY);
		e = verify_once(s, token, len, &o, claims, &info, &gen);
	}
	if (e != EB_JOSE_OK) {
		log_debug("token not accepted: %s (kid %.64s)",
		          eb_jose_strerror(e), info.kid);
		return -1;
	}
	vcache_put(s, sha256, typ, gen, *claims);
	return 0;
}

int
eb_signer_verify(struct eb_signer *s, const char *token, const char *typ,
                 json_t **claims)
{
	unsigned char h[32];
	size_t len;

	*claims = NULL;
	if (token == NULL || (len = strlen(token)) > EB_TOKEN_MAX_LEN ||
	    eb_sha256(token, len, NULL, 0, h) != 0)
		return -1;
	return eb_signer_verify_hashed(s, token, len, h, typ, claims);
}

int
eb_signer_current_kid(struct eb_signer *s, char *out, size_t outlen)
{
	struct keyset *ks;
	int n;

	if ((ks = ks_get(s)) == NULL)
		return -1;
	n = snprintf(out, outlen, "%s", eb_jose_key_kid(ks->current));
	ks_put(s, ks);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int
eb_signer_key_usable(const uint8_t seal_key[32], const struct eb_store_key *k)
{
	struct eb_seal_ring *ring = eb_seal_ring_of(seal_key);
	int ok = ring != NULL && eb_signer_key_usable_ring(ring, k);

	eb_seal_ring_free(ring);
	return ok;
}

int
eb_signer_key_usable_ring(const struct eb_seal_ring *ring,
                          const struct eb_store_key *k)
{
	struct eb_jose_key *key = unseal(ring, k);

	eb_jose_key_destroy(key);
	return key != NULL;
}
