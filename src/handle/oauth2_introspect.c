/*
 * Token introspection and revocation, for MDMs and devices:
 *
 *   POST /t/{T}/oauth2/introspect   RFC 7662; an MDM client of the tenant
 *                                   (mdm.clients), Basic or form secret
 *   POST /t/{T}/oauth2/revoke       RFC 7009; an MDM client, or the device's
 *                                   public client (oauth2.client_id) for
 *                                   its own tokens
 *
 * Introspection goes through the same bearer check as every protected
 * endpoint (token/access.c), so it reflects a revocation at once; anything
 * not acceptable is just {"active":false}. Revocation answers 200 whatever
 * the token was (RFC 7009 section 2.2); revoking a refresh token revokes
 * its whole grant. Client secrets are compared in constant time and never
 * logged.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "core/env.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "core/str.h"
#include "handle/handle.h"
#include "http/form.h"
#include "jose/b64.h"
#include "store/store.h"
#include "token/token.h"

#define MAX_FORM       (16 * 1024)
#define MAX_BASIC      1024
#define MAX_CLIENT_STR 512

enum client_kind {
	CLIENT_NONE,   /* no credentials at all */
	CLIENT_BAD,    /* credentials that do not authenticate */
	CLIENT_MDM,    /* one of mdm.clients, secret checked */
	CLIENT_DEVICE, /* the device's public client id, no secret */
};

struct client {
	int kind;
	char id[MAX_CLIENT_STR + 1];
};

/* ---- responses ---- */

static void
send_json(struct eb_request *req, int status, json_t *o)
{
	char *body;
	json_free_t jfree = NULL;

	eb_resp_header(req, "Cache-Control", "no-store");
	if (o == NULL || (body = json_dumps(o, JSON_COMPACT)) == NULL) {
		eb_resp_text(req, 500, "internal error\n");
		return;
	}
	eb_resp_set(req, status, "application/json", body, strlen(body));
	json_get_alloc_funcs(NULL, &jfree);
	jfree(body);
}

static void
send_error(struct eb_request *req, int status, const char *error)
{
	json_t *o = json_pack("{s:s}", "error", error);

	if (status == 401)
		eb_resp_header(req, "WWW-Authenticate",
		               "Basic realm=\"enrollbridge\"");
	if (status == 503)
		eb_resp_header(req, "Retry-After", "5");
	send_json(req, status, o);
	json_decref(o);
}

static void
count(struct eb_request *req, const char *name, const char *result)
{
	eb_handle_count(eb_req_env(req), name, eb_req_tenant(req)->id, "result",
	                result);
}

/* ---- client authentication ---- */

/* application/x-www-form-urlencoded decoding of n bytes at s into out
 * (RFC 6749 2.3.1 encodes id and secret before Basic); -1 when malformed. */
static int
form_decode(const char *s, size_t n, char *out, size_t outlen)
{
	size_t i, o = 0;
	int hi, lo;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (o + 1 >= outlen)
			return -1;
		if (c == '+')
			c = ' ';
		else if (c == '%') {
			if (i + 2 >= n)
				return -1;
			if ((hi = eb_str_hexval((unsigned char)s[i + 1])) < 0 ||
			    (lo = eb_str_hexval((unsigned char)s[i + 2])) < 0 ||
			    (hi | lo) == 0)
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

/*
 * "Basic base64(id:secret)" into id and secret (each decoded per RFC 6749
 * 2.3.1, and also as given, since many clients skip that encoding).
 * Returns 0, or -1 when malformed.
 */
static int
parse_basic(const char *h, char *id, size_t idlen, char *secret,
            size_t secretlen, char *raw, size_t rawlen)
{
	char b64[MAX_BASIC + 1];
	uint8_t *dec = NULL;
	size_t n, i, pad = 0, declen = 0, slen;
	const char *colon, *sp;
	int rc = -1;

	if (strncasecmp(h, "Basic ", 6) != 0)
		return -1;
	h += 6;
	while (*h == ' ')
		h++;
	if ((n = strlen(h)) == 0 || n > MAX_BASIC)
		return -1;
	/* standard base64, padded or not, into the strict base64url decoder */
	memcpy(b64, h, n + 1);
	while (n > 0 && b64[n - 1] == '=' && pad < 2) {
		b64[--n] = '\0';
		pad++;
	}
	if (pad > 0 && (n + pad) % 4 != 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (b64[i] == '+')
			b64[i] = '-';
		else if (b64[i] == '/')
			b64[i] = '_';
		else if (b64[i] == '-' || b64[i] == '_')
			return -1;
	}
	if (eb_b64_url_decode(b64, n, &dec, &declen) != 0)
		return -1;
	if (memchr(dec, '\0', declen) != NULL ||
	    (colon = memchr(dec, ':', declen)) == NULL)
		goto out;
	sp = colon + 1;
	slen = declen - (size_t)(sp - (const char *)dec);
	if (form_decode((const char *)dec, (size_t)(colon - (char *)dec), id,
	                idlen) != 0 ||
	    slen >= rawlen)
		goto out;
	memcpy(raw, sp, slen);
	raw[slen] = '\0';
	if (form_decode(sp, slen, secret, secretlen) != 0)
		snprintf(secret, secretlen, "%s", raw);
	rc = 0;
out:
	eb_free_secret(dec, declen + 1);
	OPENSSL_cleanse(b64, sizeof(b64));
	return rc;
}

/* The MDM client with this id whose secret is secret or alt (may be NULL). */
static int
mdm_client_ok(const struct eb_tenant *t, const char *id, const char *secret,
              const char *alt)
{
	size_t i;
	int ok = 0;

	for (i = 0; i < t->mdm.nclients; i++) {
		const struct eb_mdm_client *c = &t->mdm.clients[i];
		size_t sl;

		if (c->client_id == NULL || c->client_secret == NULL ||
		    strcmp(c->client_id, id) != 0)
			continue;
		sl = strlen(c->client_secret);
		ok |=
		    eb_str_ct_eq(secret, strlen(secret), c->client_secret, sl);
		if (alt != NULL)
			ok |= eb_str_ct_eq(alt, strlen(alt), c->client_secret,
			                   sl);
	}
	return ok;
}

static void
authenticate(struct eb_request *req, const struct eb_tenant *t,
             const struct eb_form *f, int allow_device, struct client *out)
{
	const char *h = eb_req_header(req, "Authorization");
	const char *fid = eb_form_get(f, "client_id");
	const char *fsecret = eb_form_get(f, "client_secret");
	char id[MAX_CLIENT_STR + 1], secret[MAX_CLIENT_STR + 1];
	char raw[MAX_CLIENT_STR + 1];

	memset(out, 0, sizeof(*out));
	out->kind = CLIENT_BAD;
	if (h != NULL) {
		/* one method only (RFC 6749 2.3); a form client_id may
		 * repeat the Basic one */
		if (fsecret == NULL &&
		    eb_req_header_count(req, "Authorization") == 1 &&
		    parse_basic(h, id, sizeof(id), secret, sizeof(secret), raw,
		                sizeof(raw)) == 0 &&
		    (fid == NULL || strcmp(fid, id) == 0) &&
		    mdm_client_ok(t, id, secret, raw)) {
			out->kind = CLIENT_MDM;
			snprintf(out->id, sizeof(out->id), "%s", id);
		}
		OPENSSL_cleanse(secret, sizeof(secret));
		OPENSSL_cleanse(raw, sizeof(raw));
		return;
	}
	if (fid == NULL) {
		out->kind = CLIENT_NONE;
		return;
	}
	if (strlen(fid) > MAX_CLIENT_STR)
		return;
	if (fsecret != NULL) {
		if (mdm_client_ok(t, fid, fsecret, NULL)) {
			out->kind = CLIENT_MDM;
			snprintf(out->id, sizeof(out->id), "%s", fid);
		}
		return;
	}
	if (allow_device && t->oauth2.client_id != NULL &&
	    strcmp(fid, t->oauth2.client_id) == 0) {
		out->kind = CLIENT_DEVICE;
		snprintf(out->id, sizeof(out->id), "%s", fid);
	}
}

/* The request's form body; -1 after answering 400. */
static int
read_form(struct eb_request *req, struct eb_form *f)
{
	const char *ct = eb_req_header(req, "Content-Type");
	const void *body;
	size_t len = 0, n = strlen("application/x-www-form-urlencoded");
	char err[128];

	memset(f, 0, sizeof(*f));
	body = eb_req_body(req, &len);
	if (ct == NULL ||
	    strncasecmp(ct, "application/x-www-form-urlencoded", n) != 0 ||
	    (ct[n] != '\0' && ct[n] != ';' && ct[n] != ' ')) {
		send_error(req, 400, "invalid_request");
		return -1;
	}
	if (len > MAX_FORM ||
	    eb_form_parse(body ? body : "", len, f, err, sizeof(err)) != 0) {
		send_error(req, 400, "invalid_request");
		return -1;
	}
	return 0;
}

/* ---- introspection ---- */

static int
copy_claim(json_t *out, json_t *claims, const char *k)
{
	json_t *v = json_object_get(claims, k);

	if (v == NULL)
		return 0;
	return json_object_set(out, k, v);
}

int
eb_handle_oauth2_introspect(struct eb_request *req)
{
	struct eb_env *env = eb_req_env(req);
	const struct eb_config *cfg = eb_req_config(req);
	const struct eb_tenant *t = eb_req_tenant(req);
	static const char *const keys[] = {"iss",
	                                   "sub",
	                                   "aud",
	                                   "exp",
	                                   "iat",
	                                   "jti",
	                                   "client_id",
	                                   "scope",
	                                   "managed_apple_id",
	                                   "enrollment_mode",
	                                   "grant_id",
	                                   "route",
	                                   "idp"};
	struct eb_form f;
	struct client c;
	struct eb_bearer b;
	const char *token;
	json_t *o = NULL;
	size_t i;
	int r, rc = 0;

	memset(&b, 0, sizeof(b));
	if (read_form(req, &f) != 0)
		return EB_HANDLED;
	authenticate(req, t, &f, 0, &c);
	if (c.kind != CLIENT_MDM) {
		log_info("tenant %s: introspection refused: client %s", t->id,
		         c.kind == CLIENT_NONE ? "not authenticated"
		                               : "credentials not accepted");
		count(req, "enrollbridge_introspections_total", "unauthorized");
		send_error(req, 401, "invalid_client");
		goto out;
	}
	if ((token = eb_form_get(&f, "token")) == NULL) {
		send_error(req, 400, "invalid_request");
		goto out;
	}
	r = eb_bearer_check(env->signer, env->store, cfg, t, token, eb_now(env),
	                    &b);
	count(req, "enrollbridge_introspections_total",
	      eb_bearer_result_name(r));
	if (r == EB_BEARER_ERROR) {
		send_error(req, 503, "temporarily_unavailable");
		goto out;
	}
	if (r != EB_BEARER_OK) {
		log_debug("tenant %s: introspection by %s: inactive (%s)",
		          t->id, c.id, eb_bearer_result_name(r));
		o = json_pack("{s:b}", "active", 0);
		send_json(req, 200, o);
		goto out;
	}
	if ((o = json_pack("{s:b,s:s}", "active", 1, "token_type", "Bearer")) ==
	    NULL)
		goto fail;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		rc |= copy_claim(o, b.claims, keys[i]);
	/* the store's view wins over what the token said at issue */
	rc |= json_object_set_new(
	    o, "managed_apple_id",
	    json_string(b.managed_apple_id ? b.managed_apple_id : ""));
	if (b.binding_kind != NULL && b.binding_value != NULL) {
		rc |= json_object_set_new(o, "binding_kind",
		                          json_string(b.binding_kind));
		rc |= json_object_set_new(o, "binding_value",
		                          json_string(b.binding_value));
	}
	if (rc != 0)
		goto fail;
	log_debug("tenant %s: introspection by %s: active, grant %s", t->id,
	          c.id, b.grant_id);
	send_json(req, 200, o);
	goto out;
fail:
	eb_resp_text(req, 500, "internal error\n");
out:
	json_decref(o);
	eb_bearer_finish(&b);
	eb_form_finish(&f);
	return EB_HANDLED;
}

/* ---- revocation ---- */

static void
audit_revoke(struct eb_store *store, const struct eb_tenant *t,
             const struct eb_store_token *st, const struct client *c,
             int64_t now)
{
	struct eb_store_audit ev;
	json_t *d;
	char *detail = NULL;
	json_free_t jfree = NULL;

	memset(&ev, 0, sizeof(ev));
	d = json_pack("{s:s,s:s,s:s}", "kind",
	              eb_store_token_kind_name(st->kind), "by", c->id, "jti",
	              st->jti ? st->jti : "");
	if (d != NULL)
		detail = json_dumps(d, JSON_COMPACT);
	ev.ts = now;
	ev.tenant = t->id;
	ev.event = "token.revoked";
	ev.subject = st->grant_id;
	ev.detail = detail;
	eb_store_audit_add(store, &ev);
	json_get_alloc_funcs(NULL, &jfree);
	if (detail != NULL)
		jfree(detail);
	json_decref(d);
}

int
eb_handle_oauth2_revoke(struct eb_request *req)
{
	struct eb_env *env = eb_req_env(req);
	const struct eb_tenant *t = eb_req_tenant(req);
	struct eb_form f;
	struct client c;
	struct eb_store_token st;
	char hash[EB_STORE_HASH_HEXLEN + 1];
	const char *token;
	int64_t now = eb_now(eb_req_env(req));
	int rc;

	memset(&st, 0, sizeof(st));
	if (read_form(req, &f) != 0)
		return EB_HANDLED;
	authenticate(req, t, &f, 1, &c);
	if (c.kind != CLIENT_MDM && c.kind != CLIENT_DEVICE) {
		count(req, "enrollbridge_revocations_total", "unauthorized");
		send_error(req, 401, "invalid_client");
		goto out;
	}
	if ((token = eb_form_get(&f, "token")) == NULL) {
		send_error(req, 400, "invalid_request");
		goto out;
	}
	if (strlen(token) > EB_TOKEN_MAX_LEN ||
	    eb_store_hash_token(token, strlen(token), hash) != 0) {
		count(req, "enrollbridge_revocations_total", "unknown");
		goto ok;
	}
	rc = eb_store_token_get(env->store, hash, &st);
	if (rc == EB_STORE_ERROR) {
		send_error(req, 503, "temporarily_unavailable");
		goto out;
	}
	/* unknown, another tenant's, or (device) not its own: nothing to do,
	 * and nothing said about it */
	if (rc != EB_STORE_OK || st.tenant == NULL ||
	    strcmp(st.tenant, t->id) != 0 ||
	    (c.kind == CLIENT_DEVICE &&
	     (st.client_id == NULL || strcmp(st.client_id, c.id) != 0))) {
		count(req, "enrollbridge_revocations_total", "unknown");
		goto ok;
	}
	if (st.kind == EB_STORE_TOKEN_REFRESH && st.grant_id != NULL) {
		rc = eb_store_grant_set_status(
		    env->store, st.grant_id, EB_STORE_GRANT_REVOKED,
		    "refresh token revoked (RFC 7009)", now);
		if (rc == EB_STORE_CONFLICT) /* no longer active anyway */
			rc = eb_store_token_revoke(env->store, hash, now);
	} else if (st.status == EB_STORE_TOKEN_REVOKED)
		rc = EB_STORE_OK;
	else
		rc = eb_store_token_revoke(env->store, hash, now);
	if (rc == EB_STORE_ERROR) {
		send_error(req, 503, "temporarily_unavailable");
		goto out;
	}
	if (st.kind != EB_STORE_TOKEN_REFRESH)
		audit_revoke(env->store, t, &st, &c, now);
	log_info("tenant %s: %s token of grant %s revoked by %s", t->id,
	         eb_store_token_kind_name(st.kind),
	         st.grant_id ? st.grant_id : "-", c.id);
	count(req, "enrollbridge_revocations_total", "revoked");
ok:
	eb_resp_header(req, "Cache-Control", "no-store");
	eb_resp_set_static(req, 200, "application/json", "{}", 2);
out:
	eb_store_token_finish(&st);
	eb_form_finish(&f);
	return EB_HANDLED;
}
