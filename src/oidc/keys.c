/*
 * The JWKS cache, one entry per jwks_uri: the IdP's signing keys as an
 * immutable, reference-counted eb_jose_jwks that is swapped whole when a
 * new document arrives.
 *
 * Keys are refetched after metadata_ttl, and early when a token names a
 * kid we do not hold (the IdP rotated). Every fetch of one jwks_uri is at
 * least min_refresh_interval after the previous attempt, so a stream of
 * forged tokens with random kids costs the IdP at most one request per
 * interval. One fetch at a time per document: a caller that needs fresh
 * keys while another fetches waits for that fetch instead of starting its
 * own. A failed fetch, an oversized or empty key set keeps the keys we
 * had.
 */
#include "oidc/oidc_int.h"

#include <string.h>

#include "core/log.h"
#include "core/mem.h"

struct eb_oidc_jwks_entry {
	struct eb_oidc_jwks_entry *next;
	char *uri;
	struct eb_jose_jwks *cur; /* NULL until a fetch succeeded */
	int64_t fresh_until;      /* monotonic */
	int64_t last_attempt;     /* monotonic; valid when attempted */
	int attempted;
	int fetching;
	struct eb_oidc_error last_err;
};

void
eb_oidc_jwks_cache_clear(struct eb_oidc *o)
{
	struct eb_oidc_jwks_entry *e, *next;

	for (e = o->jwks; e != NULL; e = next) {
		next = e->next;
		eb_jose_jwks_release(e->cur);
		eb_free(e->uri);
		eb_free(e);
	}
	o->jwks = NULL;
	o->njwks = 0;
}

static struct eb_oidc_jwks_entry *
entry_get(struct eb_oidc *o, const char *uri)
{
	struct eb_oidc_jwks_entry *e;

	for (e = o->jwks; e != NULL; e = e->next)
		if (strcmp(e->uri, uri) == 0)
			return e;
	if (o->njwks >= EB_OIDC_MAX_CACHE_ENTRIES ||
	    (e = eb_calloc(1, sizeof(*e))) == NULL)
		return NULL;
	if ((e->uri = eb_strdup(uri)) == NULL) {
		eb_free(e);
		return NULL;
	}
	e->next = o->jwks;
	o->jwks = e;
	o->njwks++;
	return e;
}

/* Parse a JWKS document with our key limit; NULL with err set. */
static struct eb_jose_jwks *
jwks_parse(struct eb_oidc *o, const char *body, size_t len,
           struct eb_oidc_error *err)
{
	struct eb_jose_jwks *jwks;
	enum eb_jose_err jerr = EB_JOSE_OK;

	jwks = eb_jose_jwks_parse(body, len, o->opts.jwks_max_keys, &jerr);
	if (jwks == NULL) {
		if (jerr == EB_JOSE_ERR_TOO_MANY_KEYS ||
		    jerr == EB_JOSE_ERR_TOO_LARGE)
			eb_oidc_seterr(
			    err, EB_OIDC_E_PROTOCOL, "jwks_too_large",
			    "JWKS refused: over %zu keys or too large",
			    o->opts.jwks_max_keys);
		else if (jerr == EB_JOSE_ERR_NOMEM)
			eb_oidc_seterr(err, EB_OIDC_E_INTERNAL, "nomem",
			               "out of memory parsing the JWKS");
		else
			eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL,
			               "malformed_jwks", "JWKS refused (%s)",
			               eb_jose_strerror(jerr));
		return NULL;
	}
	if (eb_jose_jwks_count(jwks) == 0) {
		eb_jose_jwks_release(jwks);
		eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL, "jwks_no_usable_key",
		               "JWKS holds no key we can use");
		return NULL;
	}
	return jwks;
}

/* Fetch and parse uri (no lock held). */
static struct eb_jose_jwks *
jwks_fetch(struct eb_oidc *o, const char *tenant, const char *issuer,
           const char *uri, struct eb_oidc_error *err)
{
	static const char *const hdrs[] = {
	    "Accept: application/jwk-set+json, application/json", NULL};
	struct eb_http_options ho;
	struct eb_http_response *r;
	struct eb_jose_jwks *jwks = NULL;

	eb_http_options_init(&ho, "GET", uri);
	ho.headers = hdrs;
	r = eb_oidc_fetch(o, &ho, tenant, issuer, EB_OIDC_EP_JWKS,
	                  "jwks_too_large", err);
	if (r == NULL)
		return NULL;
	if (r->status != 200) {
		if (r->status >= 500 || r->status == 429)
			eb_oidc_seterr(err, EB_OIDC_E_UNAVAILABLE,
			               "idp_server_error", "JWKS: HTTP %ld",
			               r->status);
		else
			eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL,
			               "idp_bad_status", "JWKS: HTTP %ld",
			               r->status);
	} else
		jwks = jwks_parse(o, r->body, r->body_len, err);
	eb_oidc_metric_request(o, tenant, EB_OIDC_EP_JWKS, jwks != NULL, issuer,
	                       jwks != NULL || r->status < 500 ? 1 : 0);
	eb_http_response_free(r);
	return jwks;
}

struct eb_jose_jwks *
eb_oidc_jwks_get(struct eb_oidc *o, const char *tenant, const char *issuer,
                 const char *uri, const struct eb_jose_jwks *have,
                 struct eb_oidc_error *err)
{
	struct eb_oidc_jwks_entry *e;
	struct eb_oidc_error ferr = {0};
	struct eb_jose_jwks *jwks;
	int64_t now;

	if (uri == NULL) {
		eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL,
		               "metadata_missing_field", "no jwks_uri");
		return NULL;
	}
	pthread_mutex_lock(&o->lock);
	if ((e = entry_get(o, uri)) == NULL) {
		pthread_mutex_unlock(&o->lock);
		eb_oidc_seterr(err, EB_OIDC_E_INTERNAL, "cache_full",
		               "JWKS cache full or out of memory");
		return NULL;
	}
	for (;;) {
		now = eb_oidc_mono_locked(o);
		if (e->cur != NULL) {
			/* someone already refreshed past the caller's set */
			if (have != NULL && e->cur != have)
				goto out_cur;
			if (have == NULL && now < e->fresh_until)
				goto out_cur;
		}
		if (e->fetching) {
			if (e->cur != NULL && have == NULL)
				goto out_cur; /* stale while refreshing */
			pthread_cond_wait(&o->cond, &o->lock);
			continue;
		}
		if (e->attempted &&
		    now - e->last_attempt < o->opts.min_refresh_interval) {
			if (e->cur != NULL) {
				if (have != NULL)
					log_debug("tenant %s: JWKS refresh of "
					          "%s rate-limited",
					          tenant ? tenant : "-", uri);
				goto out_cur;
			}
			if (err != NULL)
				*err = e->last_err;
			pthread_mutex_unlock(&o->lock);
			return NULL;
		}
		break;
	}
	e->fetching = 1;
	e->attempted = 1;
	e->last_attempt = now;
	pthread_mutex_unlock(&o->lock);

	jwks = jwks_fetch(o, tenant, issuer, uri, &ferr);

	pthread_mutex_lock(&o->lock);
	e->fetching = 0;
	pthread_cond_broadcast(&o->cond);
	if (jwks != NULL) {
		eb_jose_jwks_release(e->cur);
		e->cur = jwks;
		e->fresh_until = eb_oidc_mono_locked(o) + o->opts.metadata_ttl;
		log_info("tenant %s: JWKS %s fetched (%zu keys)",
		         tenant ? tenant : "-", uri, eb_jose_jwks_count(jwks));
		goto out_cur;
	}
	e->last_err = ferr;
	log_warnx("tenant %s: JWKS %s not fetched (%s: %s)%s",
	          tenant ? tenant : "-", uri, ferr.code, ferr.reason,
	          e->cur != NULL ? "; keeping the keys we had" : "");
	if (e->cur != NULL)
		goto out_cur;
	pthread_mutex_unlock(&o->lock);
	if (err != NULL)
		*err = ferr;
	return NULL;
out_cur:
	jwks = eb_jose_jwks_retain(e->cur);
	pthread_mutex_unlock(&o->lock);
	return jwks;
}

#ifdef EB_TEST_HOOKS
int
eb_oidc_test_seed_jwks(struct eb_oidc *o, const char *jwks_uri,
                       const char *json, size_t len)
{
	struct eb_oidc_jwks_entry *e;
	struct eb_jose_jwks *jwks;

	if ((jwks = jwks_parse(o, json, len, NULL)) == NULL)
		return -1;
	pthread_mutex_lock(&o->lock);
	if ((e = entry_get(o, jwks_uri)) == NULL) {
		pthread_mutex_unlock(&o->lock);
		eb_jose_jwks_release(jwks);
		return -1;
	}
	eb_jose_jwks_release(e->cur);
	e->cur = jwks;
	e->fresh_until = eb_oidc_mono_locked(o) + o->opts.metadata_ttl;
	pthread_mutex_unlock(&o->lock);
	return 0;
}
#endif
