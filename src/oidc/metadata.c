/*
 * Provider metadata: parsing and checking a discovery document
 * ({issuer}/.well-known/openid-configuration) and the per-issuer cache.
 *
 * A cached document is fresh for metadata_ttl seconds. After that the next
 * caller refreshes it; while it does, everyone else keeps using the old
 * copy (no stampede), and when the refresh fails the old copy stays in
 * service (the IdP being down must not stop sign-ins that can still work).
 * Fetch attempts for one issuer are at least min_refresh_interval apart,
 * whatever happens, so an IdP that is down is not hammered. Callers that
 * have no copy at all wait for the one fetch in flight.
 */
#include "oidc/oidc_int.h"

#include "core/clock.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"

#define MAX_METADATA_BYTES (512 * 1024)
#define WELL_KNOWN         "/.well-known/openid-configuration"

/* A published document: immutable, shared by reference. */
struct meta_obj {
	struct eb_oidc_meta pub; /* first: callers see only this */
	atomic_int refs;
};

struct eb_oidc_meta_entry {
	struct eb_oidc_meta_entry *next;
	char *issuer;         /* configured issuer (the cache key) */
	struct meta_obj *cur; /* NULL until a fetch succeeded */
	int64_t fresh_until;  /* monotonic */
	int64_t last_attempt; /* monotonic; valid when attempted */
	int attempted;
	int fetching;
	struct eb_oidc_error last_err;
};

/* ---- parsing ---------------------------------------------------------- */

void
eb_oidc_meta_finish(struct eb_oidc_meta *m)
{
	if (m == NULL)
		return;
	eb_free(m->issuer);
	eb_free(m->authorization_endpoint);
	eb_free(m->token_endpoint);
	eb_free(m->jwks_uri);
	eb_free(m->userinfo_endpoint);
	memset(m, 0, sizeof(*m));
}

/* Copy the URL member name of doc into *out (NULL when absent and not
 * required). */
static int
get_url(json_t *doc, const char *name, int required, char **out,
        struct eb_oidc_error *err)
{
	json_t *v = json_object_get(doc, name);
	const char *s;

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (!required)
			return 0;
		return eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL,
		                      "metadata_missing_field",
		                      "metadata has no %s", name);
	}
	if ((s = json_string_value(v)) == NULL)
		return eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL,
		                      "malformed_metadata",
		                      "metadata %s is not a string", name);
	if (!eb_oidc_url_ok(s))
		return eb_oidc_seterr(
		    err, EB_OIDC_E_PROTOCOL, "insecure_endpoint",
		    "metadata %s is not an https URL (http only for loopback)",
		    name);
	if ((*out = eb_strdup(s)) == NULL)
		return eb_oidc_seterr(err, EB_OIDC_E_INTERNAL, "nomem",
		                      "out of memory");
	return 0;
}

int
eb_oidc_meta_parse(const char *json, size_t len, const char *configured_issuer,
                   struct eb_oidc_meta *m, struct eb_oidc_error *err)
{
	json_t *doc, *v, *a;
	const char *iss;
	size_t i;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	if (len > MAX_METADATA_BYTES)
		return eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL,
		                      "metadata_too_large",
		                      "metadata document of %zu bytes", len);
	if ((doc = eb_jose_json_parse_object(json, len, EB_OIDC_JSON_DEPTH)) ==
	    NULL)
		return eb_oidc_seterr(
		    err, EB_OIDC_E_PROTOCOL, "malformed_json",
		    "metadata is not a JSON object within limits");
	if ((iss = json_string_value(json_object_get(doc, "issuer"))) == NULL) {
		eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL,
		               "metadata_missing_field",
		               "metadata has no issuer");
		goto out_decref;
	}
	/* Exact match; or the document is a "{tenantid}" template that the
	 * configured issuer fills (Entra multi-tenant). */
	if (configured_issuer == NULL ||
	    !eb_oidc_issuer_matches(iss, configured_issuer)) {
		eb_oidc_seterr(
		    err, EB_OIDC_E_PROTOCOL, "issuer_mismatch",
		    "metadata issuer differs from the configured issuer");
		goto out_decref;
	}
	if (strlen(iss) > EB_OIDC_MAX_URL ||
	    (m->issuer = eb_strdup(iss)) == NULL) {
		eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL, "malformed_metadata",
		               "metadata issuer unusable");
		goto out_finish;
	}
	if (get_url(doc, "authorization_endpoint", 1,
	            &m->authorization_endpoint, err) ||
	    get_url(doc, "token_endpoint", 1, &m->token_endpoint, err) ||
	    get_url(doc, "jwks_uri", 1, &m->jwks_uri, err) ||
	    get_url(doc, "userinfo_endpoint", 0, &m->userinfo_endpoint, err))
		goto out_finish;

	/* Advertised ID-token algs, kept only where we accept them; an IdP
	 * that advertises none we accept cannot sign in anyone. */
	a = json_object_get(doc, "id_token_signing_alg_values_supported");
	if (a != NULL && !json_is_null(a)) {
		if (!json_is_array(a)) {
			eb_oidc_seterr(
			    err, EB_OIDC_E_PROTOCOL, "malformed_metadata",
			    "id_token_signing_alg_values_supported is not a "
			    "list");
			goto out_finish;
		}
		json_array_foreach(a, i, v)
		{
			const char *name = json_string_value(v);

			if (name != NULL)
				m->id_token_algs |= eb_jose_alg_from_name(name);
		}
		m->id_token_algs &= EB_OIDC_ALGS_ALLOWED;
		if (m->id_token_algs == 0) {
			eb_oidc_seterr(
			    err, EB_OIDC_E_PROTOCOL, "no_usable_alg",
			    "the IdP signs ID tokens with no algorithm we "
			    "accept");
			goto out_finish;
		}
	}
	m->iss_parameter_supported = json_is_true(json_object_get(
	    doc, "authorization_response_iss_parameter_supported"));
	/* no context here: meta_fetch stamps it again on its clock */
	m->fetched_at = (int64_t)time(NULL);
	rc = 0;
	goto out_decref;
out_finish:
	eb_oidc_meta_finish(m);
out_decref:
	json_decref(doc);
	return rc;
}

/* ---- the cache -------------------------------------------------------- */

static void
meta_obj_unref(struct meta_obj *mo)
{
	if (mo == NULL || atomic_fetch_sub(&mo->refs, 1) != 1)
		return;
	eb_oidc_meta_finish(&mo->pub);
	eb_free(mo);
}

void
eb_oidc_meta_release(struct eb_oidc *o, const struct eb_oidc_meta *m)
{
	(void)o;
	/* pub is the first member of struct meta_obj */
	meta_obj_unref((struct meta_obj *)(void *)m);
}

void
eb_oidc_meta_cache_clear(struct eb_oidc *o)
{
	struct eb_oidc_meta_entry *e, *next;

	for (e = o->metas; e != NULL; e = next) {
		next = e->next;
		meta_obj_unref(e->cur);
		eb_free(e->issuer);
		eb_free(e);
	}
	o->metas = NULL;
	o->nmetas = 0;
}

/* Fetch and parse the document of issuer (no lock held). */
static struct meta_obj *
meta_fetch(struct eb_oidc *o, const char *tenant, const char *issuer,
           struct eb_oidc_error *err)
{
	static const char *const hdrs[] = {"Accept: application/json", NULL};
	struct eb_http_options ho;
	struct eb_http_response *r;
	struct meta_obj *mo = NULL;
	struct eb_buf url;
	size_t ilen = strlen(issuer);

	if (!eb_oidc_url_ok(issuer) || strchr(issuer, '?') != NULL) {
		eb_oidc_seterr(
		    err, EB_OIDC_E_PROTOCOL, "bad_issuer",
		    "configured issuer is not an https URL without query");
		return NULL;
	}
	while (ilen > 0 && issuer[ilen - 1] == '/')
		ilen--;
	eb_buf_init(&url, EB_OIDC_MAX_URL + sizeof(WELL_KNOWN));
	if (eb_buf_add(&url, issuer, ilen) || eb_buf_addstr(&url, WELL_KNOWN)) {
		eb_buf_finish(&url);
		eb_oidc_seterr(err, EB_OIDC_E_INTERNAL, "nomem", "no memory");
		return NULL;
	}
	eb_http_options_init(&ho, "GET", eb_buf_str(&url));
	ho.headers = hdrs;
	r = eb_oidc_fetch(o, &ho, tenant, issuer, EB_OIDC_EP_METADATA,
	                  "metadata_too_large", err);
	eb_buf_finish(&url);
	if (r == NULL)
		return NULL;
	if (r->status != 200) {
		if (r->status >= 500 || r->status == 429)
			eb_oidc_seterr(err, EB_OIDC_E_UNAVAILABLE,
			               "idp_server_error", "metadata: HTTP %ld",
			               r->status);
		else
			eb_oidc_seterr(err, EB_OIDC_E_PROTOCOL,
			               "idp_bad_status", "metadata: HTTP %ld",
			               r->status);
		goto out_fail;
	}
	if ((mo = eb_calloc(1, sizeof(*mo))) == NULL) {
		eb_oidc_seterr(err, EB_OIDC_E_INTERNAL, "nomem", "no memory");
		goto out_fail;
	}
	if (eb_oidc_meta_parse(r->body, r->body_len, issuer, &mo->pub, err)) {
		eb_free(mo);
		mo = NULL;
		goto out_fail;
	}
	mo->pub.fetched_at = eb_clock_now(o->opts.clock);
	atomic_init(&mo->refs, 1);
	eb_oidc_metric_request(o, tenant, EB_OIDC_EP_METADATA, 1, issuer, 1);
	eb_http_response_free(r);
	return mo;
out_fail:
	eb_oidc_metric_request(o, tenant, EB_OIDC_EP_METADATA, 0, issuer, 0);
	eb_http_response_free(r);
	return NULL;
}

static struct eb_oidc_meta_entry *
entry_get(struct eb_oidc *o, const char *issuer)
{
	struct eb_oidc_meta_entry *e;

	for (e = o->metas; e != NULL; e = e->next)
		if (strcmp(e->issuer, issuer) == 0)
			return e;
	if (o->nmetas >= EB_OIDC_MAX_CACHE_ENTRIES ||
	    (e = eb_calloc(1, sizeof(*e))) == NULL)
		return NULL;
	if ((e->issuer = eb_strdup(issuer)) == NULL) {
		eb_free(e);
		return NULL;
	}
	e->next = o->metas;
	o->metas = e;
	o->nmetas++;
	return e;
}

static const struct eb_oidc_meta *
take_ref(struct meta_obj *mo)
{
	atomic_fetch_add(&mo->refs, 1);
	return &mo->pub;
}

static int
meta_get(struct eb_oidc *o, const char *tenant, const char *issuer,
         const struct eb_oidc_meta **out, struct eb_oidc_error *err)
{
	struct eb_oidc_meta_entry *e;
	struct eb_oidc_error ferr = {0};
	struct meta_obj *mo;
	int64_t now;

	*out = NULL;
	if (issuer == NULL)
		return eb_oidc_seterr(err, EB_OIDC_E_INTERNAL, "bad_issuer",
		                      "no issuer configured");
	pthread_mutex_lock(&o->lock);
	if ((e = entry_get(o, issuer)) == NULL) {
		pthread_mutex_unlock(&o->lock);
		return eb_oidc_seterr(err, EB_OIDC_E_INTERNAL, "cache_full",
		                      "metadata cache full or out of memory");
	}
	for (;;) {
		now = eb_oidc_mono_locked(o);
		if (e->cur != NULL && now < e->fresh_until)
			goto out_cur;
		if (e->fetching) {
			if (e->cur != NULL)
				goto out_cur; /* stale while someone refreshes
				               */
			pthread_cond_wait(&o->cond, &o->lock);
			continue;
		}
		if (e->attempted &&
		    now - e->last_attempt < o->opts.min_refresh_interval) {
			if (e->cur != NULL)
				goto out_cur;
			if (err != NULL)
				*err = e->last_err;
			pthread_mutex_unlock(&o->lock);
			return -1;
		}
		break;
	}
	e->fetching = 1;
	e->attempted = 1;
	e->last_attempt = now;
	pthread_mutex_unlock(&o->lock);

	mo = meta_fetch(o, tenant, issuer, &ferr);

	pthread_mutex_lock(&o->lock);
	e->fetching = 0;
	pthread_cond_broadcast(&o->cond);
	if (mo != NULL) {
		meta_obj_unref(e->cur);
		e->cur = mo;
		e->fresh_until = eb_oidc_mono_locked(o) + o->opts.metadata_ttl;
		log_debug("metadata for %s fetched", issuer);
		goto out_cur;
	}
	e->last_err = ferr;
	if (e->cur != NULL) {
		log_warnx("tenant %s: metadata for %s not refreshed (%s: %s); "
		          "serving the copy fetched at %lld",
		          tenant ? tenant : "-", issuer, ferr.code, ferr.reason,
		          (long long)e->cur->pub.fetched_at);
		goto out_cur;
	}
	pthread_mutex_unlock(&o->lock);
	log_warnx("tenant %s: metadata for %s unavailable (%s: %s)",
	          tenant ? tenant : "-", issuer, ferr.code, ferr.reason);
	if (err != NULL)
		*err = ferr;
	return -1;
out_cur:
	*out = take_ref(e->cur);
	pthread_mutex_unlock(&o->lock);
	return 0;
}

int
eb_oidc_metadata(struct eb_oidc *o, const char *issuer,
                 const struct eb_oidc_meta **out, struct eb_oidc_error *err)
{
	return meta_get(o, NULL, issuer, out, err);
}

int
eb_oidc_metadata_for(struct eb_oidc *o, const struct eb_tenant *t,
                     const struct eb_oidc_meta **out, struct eb_oidc_error *err)
{
	return meta_get(o, t->id, t->idp.issuer, out, err);
}
