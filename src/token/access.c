/*
 * Our access tokens (RFC 9068, DESIGN.md): minting them for a grant, and
 * the one check every protected endpoint applies to a presented bearer.
 *
 * A token is accepted only when all of these hold: it is at most
 * EB_TOKEN_MAX_LEN bytes, signed ES256 by one of our published keys with
 * typ at+jwt, its iss and aud are the tenant's, it has not expired (no
 * clock leeway: we minted it with our own clock, so exp is exact; leeway is
 * for the IdP's ID tokens only), the store knows its hash as an active access
 * or web token of this tenant, and its grant is active, unexpired and of this
 * tenant.
 *
 * The token and grant rows may come from a per-thread cache
 * (bearer_cache.h) instead of the database, but only while nothing can have
 * changed them: every store operation that may change a token or a grant
 * bumps a process-wide generation before it returns, a CLI revoking under
 * a running server touches the change file the cache stats, and an entry
 * lives a second at most. So on one host with SQLite a revocation takes
 * effect at once: the first check that starts after it returns (or after
 * `grants revoke` exits) reads the store again. Across replicas on one
 * PostgreSQL database (DESIGN "Scale-out") the bound is weaker: another
 * replica learns of it through its store feed, and refuses the token on
 * every request that starts 100 ms after the revoking call returned (the
 * doorbell takes milliseconds; without it the feed's 250 ms heartbeat
 * read catches up). While a replica's feed is down or late by more than a
 * second it does not cache at all. Expiry is compared with now on every
 * check, cached or not.
 */
#include "token/token.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/buf.h"
#include "core/digest.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/rand.h"
#include "core/str.h"
#include "store/store.h"
#include "token/bearer_cache.h"

/* How far in the future an iat or nbf may be: another replica's clock. It
 * never extends a token's life; exp gets no leeway at all. */
#define CLOCK_SKEW 60
#define JTI_BYTES  16
#define ISS_MAX    2048

static char *
issuer_of(const struct eb_config *cfg, const struct eb_tenant *t)
{
	struct eb_buf b;

	eb_buf_init(&b, ISS_MAX);
	if (eb_buf_printf(&b, "%s/t/%s", cfg->public_url, t->id) == -1) {
		eb_buf_finish(&b);
		return NULL;
	}
	return eb_buf_detach(&b, NULL);
}

static int
set_str(json_t *o, const char *k, const char *v)
{
	if (v == NULL)
		return 0;
	return json_object_set_new(o, k, json_string(v));
}

/* The grant's "route" and "idp" into claims; 0 or -1. An unreadable
 * extra copies nothing (it was written by us, as JSON). */
static int
copy_grant_extra(json_t *claims, const char *extra)
{
	json_t *x, *v;
	int rc = 0;

	if (extra == NULL ||
	    (x = json_loads(extra, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return 0;
	if (json_is_string(v = json_object_get(x, "route")))
		rc |= json_object_set(claims, "route", v);
	if (json_is_object(v = json_object_get(x, "idp")))
		rc |= json_object_set(claims, "idp", v);
	json_decref(x);
	return rc;
}

int
eb_token_mint(struct eb_signer *s, const struct eb_config *cfg,
              const struct eb_tenant *t, const struct eb_access_claims *c,
              int kind, struct eb_token_minted *m)
{
	json_t *claims = NULL;
	char *iss = NULL;
	int64_t iat, exp;
	int rc;

	memset(m, 0, sizeof(*m));
	if (s == NULL || cfg == NULL || t == NULL || c == NULL ||
	    c->grant_id == NULL || c->sub == NULL ||
	    (kind != EB_STORE_TOKEN_ACCESS && kind != EB_STORE_TOKEN_WEB))
		return -1;
	/* a caller with a context passes iat (eb_now); the signer has no
	 * clock of its own: the real time */
	iat = c->iat != 0 ? c->iat : (int64_t)time(NULL);
	exp = c->exp != 0 ? c->exp : iat + t->tokens.access_ttl;
	if (exp <= iat)
		return -1;
	if ((iss = issuer_of(cfg, t)) == NULL ||
	    (m->jti = eb_rand_token(JTI_BYTES)) == NULL ||
	    (claims = json_object()) == NULL)
		goto fail;
	rc = set_str(claims, "iss", iss);
	rc |= set_str(claims, "sub", c->sub);
	rc |= set_str(claims, "aud", t->mdm.audience);
	rc |= json_object_set_new(claims, "exp", json_integer(exp));
	rc |= json_object_set_new(claims, "iat", json_integer(iat));
	rc |= set_str(claims, "jti", m->jti);
	rc |= set_str(claims, "client_id", c->client_id);
	rc |= set_str(claims, "managed_apple_id", c->managed_apple_id);
	rc |= set_str(claims, "enrollment_mode", c->enrollment_mode);
	rc |= set_str(claims, "grant_id", c->grant_id);
	rc |= set_str(claims, "scope", c->scope);
	rc |= copy_grant_extra(claims, c->grant_extra);
	if (rc != 0 ||
	    (m->token = eb_signer_sign(s, "at+jwt", claims)) == NULL ||
	    eb_store_hash_token(m->token, strlen(m->token), m->hash) != 0)
		goto fail;
	json_decref(claims);
	eb_free(iss);
	m->row.hash = m->hash;
	m->row.kind = kind;
	m->row.tenant = t->id;
	m->row.grant_id = (char *)(uintptr_t)c->grant_id;
	m->row.client_id = (char *)(uintptr_t)c->client_id;
	m->row.jti = m->jti;
	m->row.created = iat;
	m->row.expires = exp;
	return 0;
fail:
	json_decref(claims);
	eb_free(iss);
	eb_token_minted_finish(m);
	return -1;
}

void
eb_token_minted_finish(struct eb_token_minted *m)
{
	eb_free_secret_str(m->token);
	eb_free(m->jti);
	memset(m, 0, sizeof(*m));
}

char *
eb_token_issue(struct eb_signer *s, struct eb_store *store,
               const struct eb_config *cfg, const struct eb_tenant *t,
               const struct eb_access_claims *c, int kind)
{
	struct eb_token_minted m;
	char *tok;
	int rc;

	if (store == NULL || eb_token_mint(s, cfg, t, c, kind, &m) != 0)
		return NULL;
	if ((rc = eb_store_token_put(store, &m.row)) != EB_STORE_OK) {
		log_warnx("tenant %s: cannot store a token for grant %s: %s",
		          t->id, c->grant_id, eb_store_strerror(rc));
		eb_token_minted_finish(&m);
		return NULL;
	}
	tok = m.token;
	m.token = NULL;
	eb_token_minted_finish(&m);
	return tok;
}

/* ---- the bearer check ---- */

static const char *
claim_str(json_t *claims, const char *k)
{
	json_t *v = json_object_get(claims, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int
claim_int(json_t *claims, const char *k, int64_t *out)
{
	json_t *v = json_object_get(claims, k);

	if (!json_is_integer(v))
		return -1;
	*out = (int64_t)json_integer_value(v);
	return 0;
}

/* aud is our audience, alone or in an array. */
static int
aud_ok(json_t *claims, const char *aud)
{
	json_t *v = json_object_get(claims, "aud"), *e;
	size_t i;

	if (json_is_string(v))
		return strcmp(json_string_value(v), aud) == 0;
	if (!json_is_array(v))
		return 0;
	json_array_foreach(v, i, e)
	{
		if (json_is_string(e) && strcmp(json_string_value(e), aud) == 0)
			return 1;
	}
	return 0;
}

/* Whether issuer_of(cfg, t) fits in ISS_MAX bytes (it cannot fail else). */
static int
issuer_fits(const struct eb_config *cfg, const struct eb_tenant *t)
{
	return strlen(cfg->public_url) + 3 + strlen(t->id) <= ISS_MAX;
}

/* Whether iss is issuer_of(cfg, t), "{public_url}/t/{id}", compared in
 * place: this runs on every request. */
static int
issuer_is(const struct eb_config *cfg, const struct eb_tenant *t,
          const char *iss)
{
	size_t ulen = strlen(cfg->public_url);

	return strncmp(iss, cfg->public_url, ulen) == 0 &&
	       strncmp(iss + ulen, "/t/", 3) == 0 &&
	       strcmp(iss + ulen + 3, t->id) == 0;
}

/* The token's claims only: signature, typ, iss, aud, exp. sha256: the
 * token's hash. */
static int
check_claims(struct eb_signer *s, const struct eb_config *cfg,
             const struct eb_tenant *t, const char *token, size_t len,
             const unsigned char sha256[32], int64_t now, json_t **claimsp)
{
	json_t *claims = NULL;
	const char *v;
	int64_t exp, iat, nbf;
	int r = EB_BEARER_MALFORMED;

	if (eb_signer_verify_hashed(s, token, len, sha256, "at+jwt", &claims) !=
	    0)
		return EB_BEARER_MALFORMED;
	if (!issuer_fits(cfg, t)) {
		r = EB_BEARER_ERROR;
		goto out;
	}
	if (claim_int(claims, "exp", &exp) != 0 ||
	    claim_str(claims, "jti") == NULL ||
	    claim_str(claims, "grant_id") == NULL ||
	    (v = claim_str(claims, "iss")) == NULL)
		goto out;
	if (!issuer_is(cfg, t, v) || !aud_ok(claims, t->mdm.audience)) {
		r = EB_BEARER_WRONG_TENANT;
		goto out;
	}
	/* RFC 7519 4.1.4: not accepted on or after exp; no leeway */
	if (now >= exp) {
		r = EB_BEARER_EXPIRED;
		goto out;
	}
	if ((claim_int(claims, "iat", &iat) == 0 && iat > now + CLOCK_SKEW) ||
	    (claim_int(claims, "nbf", &nbf) == 0 && nbf > now + CLOCK_SKEW))
		goto out;
	r = EB_BEARER_OK;
	*claimsp = claims;
	claims = NULL;
out:
	json_decref(claims);
	return r;
}

/* The facts of the token and grant records the store handed out. */
static void
facts_of(const struct eb_store_token *st, const struct eb_store_grant *g,
         struct eb_bearer_cache_facts *f)
{
	memset(f, 0, sizeof(*f));
	f->kind = st->kind;
	f->status = st->status;
	f->expires = st->expires;
	f->tenant = st->tenant;
	f->grant_id = st->grant_id;
	f->jti = st->jti;
	f->g_id = g->id;
	f->g_tenant = g->tenant;
	f->g_status = g->status;
	f->g_expires = g->expires;
	f->managed_apple_id = g->managed_apple_id;
	f->enrollment_mode = g->enrollment_mode;
	f->client_id = g->client_id;
	f->binding_kind = g->binding_kind;
	f->binding_value = g->binding_value;
}

/*
 * The store's view of the token (f: fresh or cached, the same either way),
 * its row then its grant's. Expiry is compared with now here, on every
 * check, never remembered. Reads only what struct eb_bearer_cache_facts
 * holds.
 */
static int
decide(const struct eb_bearer_cache_facts *f, const struct eb_tenant *t,
       json_t *claims, int64_t now, struct eb_bearer *b)
{
	const char *gid = claim_str(claims, "grant_id");
	const char *jti = claim_str(claims, "jti");
	const char *cid = claim_str(claims, "client_id");
	char *p;

	if ((f->kind != EB_STORE_TOKEN_ACCESS &&
	     f->kind != EB_STORE_TOKEN_WEB) ||
	    f->grant_id == NULL || strcmp(f->grant_id, gid) != 0 ||
	    (f->jti != NULL && strcmp(f->jti, jti) != 0))
		return EB_BEARER_MALFORMED;
	if (f->tenant == NULL || strcmp(f->tenant, t->id) != 0)
		return EB_BEARER_WRONG_TENANT;
	if (f->status != EB_STORE_TOKEN_ACTIVE)
		return EB_BEARER_REVOKED;
	if (f->expires != 0 && now >= f->expires)
		return EB_BEARER_EXPIRED;
	if (f->g_id == NULL) /* the grant row is gone */
		return EB_BEARER_REVOKED;
	if (f->g_tenant == NULL || strcmp(f->g_tenant, t->id) != 0)
		return EB_BEARER_WRONG_TENANT;
	if (f->g_status != EB_STORE_GRANT_ACTIVE ||
	    (f->g_expires != 0 && now >= f->g_expires))
		return EB_BEARER_REVOKED;
	if (!cid)
		cid = f->client_id;
	/* the strings in one allocation (b->mem_): this runs per request */
	if ((b->mem_ = eb_malloc(
	         eb_str_room(f->g_id) + eb_str_room(f->managed_apple_id) +
	         eb_str_room(f->enrollment_mode) + eb_str_room(cid) +
	         eb_str_room(f->binding_kind) + eb_str_room(f->binding_value) +
	         eb_str_room(jti))) == NULL)
		return EB_BEARER_ERROR;
	p = b->mem_;
	b->grant_id = eb_str_put(&p, f->g_id);
	b->managed_apple_id = eb_str_put(&p, f->managed_apple_id);
	b->enrollment_mode = eb_str_put(&p, f->enrollment_mode);
	b->client_id = eb_str_put(&p, cid);
	b->binding_kind = eb_str_put(&p, f->binding_kind);
	b->binding_value = eb_str_put(&p, f->binding_value);
	b->jti = eb_str_put(&p, jti);
	if (claim_int(claims, "exp", &b->exp) != 0)
		return EB_BEARER_ERROR;
	b->claims = json_incref(claims);
	return EB_BEARER_OK;
}

/*
 * The store's view: the token row and its grant, from this thread's cache
 * while nothing can have changed them since they were read (see
 * bearer_cache.h for why that never lets a revoked token through), else
 * in one lookup, remembered when the token was found.
 */
static int
check_store(struct eb_store *store, const struct eb_tenant *t, const char *hash,
            json_t *claims, int64_t now, struct eb_bearer *b)
{
	const struct eb_bearer_cache_facts *cached;
	struct eb_bearer_cache_ctx ctx;
	struct eb_bearer_cache_facts f;
	struct eb_store_token st;
	struct eb_store_grant g;
	int rc, r;

	/* the rows as read under the current stamp less than a second ago */
	if ((cached = eb_bearer_cache_get(store, hash, &ctx)) != NULL)
		return decide(cached, t, claims, now, b);
	/* else as they are now, in one lookup */
	rc = eb_store_token_grant_get(store, hash, &st, &g);
	if (rc == EB_STORE_OK) {
		facts_of(&st, &g, &f);
		eb_bearer_cache_put(&ctx, &f);
		r = decide(&f, t, claims, now, b);
	} else if (rc == EB_STORE_NOT_FOUND)
		r = EB_BEARER_UNKNOWN; /* never cached: it may be stored later
		                        */
	else
		r = EB_BEARER_ERROR;
	eb_store_token_finish(&st);
	eb_store_grant_finish(&g);
	return r;
}

/* hex: the lowercase hex of sha256, as eb_store_hash_token() writes it. */
static void
hex_of(const unsigned char sha256[32], char hex[EB_STORE_HASH_HEXLEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < 32; i++) {
		hex[2 * i] = digits[sha256[i] >> 4];
		hex[2 * i + 1] = digits[sha256[i] & 0xf];
	}
	hex[64] = '\0';
}

int
eb_bearer_check(struct eb_signer *s, struct eb_store *store,
                const struct eb_config *cfg, const struct eb_tenant *t,
                const char *token, int64_t now, struct eb_bearer *b)
{
	json_t *claims = NULL;
	unsigned char sha256[32];
	char hash[EB_STORE_HASH_HEXLEN + 1];
	size_t len;
	int r;

	memset(b, 0, sizeof(*b));
	if (token == NULL || token[0] == '\0')
		return EB_BEARER_MISSING;
	if ((len = strnlen(token, EB_TOKEN_MAX_LEN + 1)) > EB_TOKEN_MAX_LEN)
		return EB_BEARER_MALFORMED;
	if (s == NULL || store == NULL || cfg == NULL || t == NULL)
		return EB_BEARER_ERROR;
	/* one hash of the whole token: the verified-signature cache's key,
	 * and (in hex) the store's */
	if (eb_sha256(token, len, NULL, 0, sha256) != 0)
		return EB_BEARER_ERROR;
	if ((r = check_claims(s, cfg, t, token, len, sha256, now, &claims)) !=
	    EB_BEARER_OK)
		return r;
	hex_of(sha256, hash);
	r = check_store(store, t, hash, claims, now, b);
	json_decref(claims);
	if (r != EB_BEARER_OK)
		eb_bearer_finish(b);
	return r;
}

char *
eb_bearer_grant_hint(struct eb_signer *s, const struct eb_config *cfg,
                     const struct eb_tenant *t, const char *token)
{
	json_t *claims = NULL;
	const char *iss, *gid;
	char *want, *out = NULL;

	if (s == NULL || token == NULL ||
	    strnlen(token, EB_TOKEN_MAX_LEN + 1) > EB_TOKEN_MAX_LEN ||
	    eb_signer_verify(s, token, "at+jwt", &claims) != 0)
		return NULL;
	if ((want = issuer_of(cfg, t)) != NULL &&
	    (iss = claim_str(claims, "iss")) != NULL &&
	    strcmp(iss, want) == 0 &&
	    (gid = claim_str(claims, "grant_id")) != NULL)
		out = eb_strdup(gid);
	eb_free(want);
	json_decref(claims);
	return out;
}

/* RFC 6750 b64token characters (but '=', only at the end): 1 each. */
static const unsigned char b64token[256] = {
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
    ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
    ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1,
    ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1,
    ['x'] = 1, ['y'] = 1, ['z'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1,
    ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['-'] = 1,
    ['.'] = 1, ['_'] = 1, ['~'] = 1, ['+'] = 1, ['/'] = 1};

const char *
eb_bearer_from_header(const char *authorization)
{
	const unsigned char *p;
	size_t i;

	if (authorization == NULL ||
	    strncasecmp(authorization, "Bearer ", 7) != 0)
		return NULL;
	p = (const unsigned char *)authorization + 7;
	while (*p == ' ')
		p++;
	/* a table lookup per byte: a token is a kilobyte, on every request */
	for (i = 0; b64token[p[i]]; i++)
		if (i > EB_TOKEN_MAX_LEN)
			return NULL;
	while (p[i] == '=')
		i++;
	/* one token, nothing after it */
	if (i == 0 || p[i] != '\0')
		return NULL;
	return (const char *)p;
}

const char *
eb_bearer_result_name(int r)
{
	switch (r) {
	case EB_BEARER_OK:
		return "ok";
	case EB_BEARER_MISSING:
		return "missing";
	case EB_BEARER_MALFORMED:
		return "malformed";
	case EB_BEARER_EXPIRED:
		return "expired";
	case EB_BEARER_REVOKED:
		return "revoked";
	case EB_BEARER_UNKNOWN:
		return "unknown";
	case EB_BEARER_WRONG_TENANT:
		return "wrong_tenant";
	case EB_BEARER_WRONG_BINDING:
		return "wrong_binding";
	case EB_BEARER_ERROR:
		return "error";
	}
	return "invalid";
}

void
eb_bearer_finish(struct eb_bearer *b)
{
	if (b == NULL)
		return;
	eb_free(b->mem_); /* every string of b */
	json_decref(b->claims);
	memset(b, 0, sizeof(*b));
}
