/*
 * The backend-independent half of the store: the handle (a backend's ops
 * and its own state), the eb_store_* functions that dispatch through the
 * ops, the release functions for the records the store hands out, the enum
 * names that are also the stored text, and the token hash.
 */
#include "store/store.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/digest.h"
#include "core/log.h"
#include "core/mem.h"

struct eb_store {
	const struct eb_store_ops *ops;
	void *be;
};

const char *
eb_store_strerror(int rc)
{
	switch (rc) {
	case EB_STORE_OK:
		return "ok";
	case EB_STORE_ERROR:
		return "storage error";
	case EB_STORE_NOT_FOUND:
		return "not found";
	case EB_STORE_EXPIRED:
		return "expired";
	case EB_STORE_REPLAY:
		return "code replayed";
	case EB_STORE_REUSE:
		return "refresh token reused";
	case EB_STORE_REVOKED:
		return "revoked";
	case EB_STORE_CONFLICT:
		return "conflict";
	case EB_STORE_MISMATCH:
		return "client or redirect mismatch";
	}
	return "unknown store result";
}

int
eb_store_hash_token(const void *tok, size_t len,
                    char out[EB_STORE_HASH_HEXLEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	out[0] = '\0';
	if (tok == NULL && len > 0)
		return -1;
	if (EVP_Digest(tok == NULL ? "" : tok, len, md, &mdlen, eb_sha256_md(),
	               NULL) != 1 ||
	    mdlen != EB_STORE_HASH_HEXLEN / 2)
		return -1;
	for (i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[2 * mdlen] = '\0';
	return 0;
}

/* ---- enum names ------------------------------------------------------- */

static const char *const flow_kinds[] = {"apple-as-web", "oauth2-authorize"};
static const char *const grant_statuses[] = {"active", "revoked", "expired",
                                             "superseded"};
static const char *const token_kinds[] = {"access", "refresh", "web"};
static const char *const token_statuses[] = {"active", "rotated", "revoked"};

#define NAME_OF(tab, v)                                                        \
	((v) >= 0 && (size_t)(v) < sizeof(tab) / sizeof(tab[0]) ? tab[v] : NULL)

const char *
eb_store_flow_kind_name(int kind)
{
	return NAME_OF(flow_kinds, kind);
}

const char *
eb_store_grant_status_name(int status)
{
	return NAME_OF(grant_statuses, status);
}

const char *
eb_store_token_kind_name(int kind)
{
	return NAME_OF(token_kinds, kind);
}

const char *
eb_store_token_status_name(int status)
{
	return NAME_OF(token_statuses, status);
}

int
eb_store_grant_status_parse(const char *name)
{
	size_t i;

	for (i = 0; name != NULL &&
	            i < sizeof(grant_statuses) / sizeof(grant_statuses[0]);
	     i++)
		if (strcmp(name, grant_statuses[i]) == 0)
			return (int)i;
	return -1;
}

/* ---- lifecycle -------------------------------------------------------- */

struct eb_store *
eb_store_open(const struct eb_store_ops *ops, const char *target, char *err,
              size_t errlen)
{
	struct eb_store *s;
	char local[256];

	if (err == NULL || errlen == 0) {
		err = local;
		errlen = sizeof(local);
	}
	err[0] = '\0';
	if (ops == NULL)
		ops = &eb_store_sqlite_ops;
	if (target == NULL || ops->open == NULL) {
		snprintf(err, errlen, "store: no %s",
		         target ? "backend" : "path");
		log_warnx("%s", err);
		return NULL;
	}
	if ((s = eb_calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "store: out of memory");
		log_warnx("%s", err);
		return NULL;
	}
	s->ops = ops;
	if (ops->open(target, &s->be, err, errlen) != 0) {
		eb_free(s);
		return NULL;
	}
	return s;
}

void
eb_store_close(struct eb_store *s)
{
	if (s == NULL)
		return;
	if (s->ops->close != NULL)
		s->ops->close(s->be);
	eb_free(s);
}

const char *
eb_store_backend(const struct eb_store *s)
{
	return s == NULL ? NULL : s->ops->name;
}

/*
 * Dispatch to an operation; a missing store or operation is a logged
 * backend failure, never a crash.
 */
#define DISPATCH(s, op, ...)                                                   \
	do {                                                                   \
		if ((s) == NULL || (s)->ops->op == NULL) {                     \
			log_warnx("store: operation %s not available", #op);   \
			return EB_STORE_ERROR;                                 \
		}                                                              \
		return (s)->ops->op((s)->be, __VA_ARGS__);                     \
	} while (0)

/* Out records are zeroed first: finishing one after a failure is safe. */
#define ZERO(p) memset((p), 0, sizeof(*(p)))

int
eb_store_ping(struct eb_store *s)
{
	if (s == NULL || s->ops->ping == NULL)
		return EB_STORE_ERROR;
	return s->ops->ping(s->be);
}

int
eb_store_schema_version(struct eb_store *s, int64_t *version)
{
	DISPATCH(s, schema_version, version);
}

int
eb_store_sweep(struct eb_store *s, int64_t now, size_t *removed)
{
	DISPATCH(s, sweep, now, removed);
}

int
eb_store_audit_add(struct eb_store *s, const struct eb_store_audit *ev)
{
	DISPATCH(s, audit_add, ev);
}

int
eb_store_audit_list(struct eb_store *s, const char *tenant, size_t limit,
                    struct eb_store_audit_list *out)
{
	ZERO(out);
	DISPATCH(s, audit_list, tenant, limit, out);
}

int
eb_store_flow_put(struct eb_store *s, const struct eb_store_flow *f)
{
	DISPATCH(s, flow_put, f);
}

int
eb_store_flow_get(struct eb_store *s, int by, const char *key, int64_t now,
                  struct eb_store_flow *out)
{
	ZERO(out);
	DISPATCH(s, flow_get, by, key, now, out);
}

int
eb_store_flow_take(struct eb_store *s, int by, const char *key, int64_t now,
                   struct eb_store_flow *out)
{
	ZERO(out);
	DISPATCH(s, flow_take, by, key, now, out);
}

int
eb_store_code_put(struct eb_store *s, const struct eb_store_code *c)
{
	DISPATCH(s, code_put, c);
}

int
eb_store_code_consume(struct eb_store *s, const char *hash,
                      const char *client_id, const char *redirect_uri,
                      int64_t now, struct eb_store_code *out)
{
	if (out != NULL)
		ZERO(out);
	DISPATCH(s, code_consume, hash, client_id, redirect_uri, now, out);
}

int
eb_store_grant_create(struct eb_store *s, const struct eb_store_grant *g)
{
	DISPATCH(s, grant_create, g);
}

int
eb_store_grant_get(struct eb_store *s, const char *id,
                   struct eb_store_grant *out)
{
	ZERO(out);
	DISPATCH(s, grant_get, id, out);
}

int
eb_store_grant_list(struct eb_store *s, const struct eb_store_grant_filter *f,
                    struct eb_store_grant_list *out)
{
	ZERO(out);
	DISPATCH(s, grant_list, f, out);
}

int
eb_store_grant_set_status(struct eb_store *s, const char *id, int status,
                          const char *reason, int64_t now)
{
	DISPATCH(s, grant_set_status, id, status, reason, now);
}

int
eb_store_grant_supersede(struct eb_store *s, const char *old_id,
                         const char *new_id, int64_t now)
{
	DISPATCH(s, grant_supersede, old_id, new_id, now);
}

int
eb_store_grant_bind(struct eb_store *s, const char *id, const char *kind,
                    const char *value, int64_t now)
{
	DISPATCH(s, grant_bind, id, kind, value, now);
}

int
eb_store_grant_set_upstream(struct eb_store *s, const char *id,
                            const struct eb_store_upstream *u, int64_t now)
{
	DISPATCH(s, grant_set_upstream, id, u, now);
}

int
eb_store_grant_list_due(struct eb_store *s, const char *tenant, int64_t now,
                        int64_t lease, size_t limit,
                        struct eb_store_grant_list *out)
{
	ZERO(out);
	DISPATCH(s, grant_list_due, tenant, now, lease, limit, out);
}

int
eb_store_token_put(struct eb_store *s, const struct eb_store_token *t)
{
	DISPATCH(s, token_put, t);
}

int
eb_store_token_get(struct eb_store *s, const char *hash,
                   struct eb_store_token *out)
{
	ZERO(out);
	DISPATCH(s, token_get, hash, out);
}

int
eb_store_token_grant_get(struct eb_store *s, const char *hash,
                         struct eb_store_token *tok,
                         struct eb_store_grant *grant)
{
	int rc;

	ZERO(tok);
	ZERO(grant);
	if (s != NULL && s->ops->token_grant_get != NULL)
		return s->ops->token_grant_get(s->be, hash, tok, grant);
	if ((rc = eb_store_token_get(s, hash, tok)) != EB_STORE_OK ||
	    tok->grant_id == NULL)
		return rc;
	rc = eb_store_grant_get(s, tok->grant_id, grant);
	return rc == EB_STORE_NOT_FOUND ? EB_STORE_OK : rc;
}

int
eb_store_token_rotate_refresh(struct eb_store *s, const char *old_hash,
                              const struct eb_store_token *next,
                              const struct eb_store_token *access, int64_t now,
                              int64_t grace, struct eb_store_token *old_out)
{
	if (old_out != NULL)
		ZERO(old_out);
	DISPATCH(s, token_rotate, old_hash, next, access, now, grace, old_out);
}

int
eb_store_token_revoke(struct eb_store *s, const char *hash, int64_t now)
{
	DISPATCH(s, token_revoke, hash, now);
}

int
eb_store_key_put(struct eb_store *s, const struct eb_store_key *k)
{
	DISPATCH(s, key_put, k);
}

int
eb_store_key_list(struct eb_store *s, const char *tenant,
                  struct eb_store_key_list *out)
{
	ZERO(out);
	DISPATCH(s, key_list, tenant, out);
}

int
eb_store_key_retire(struct eb_store *s, const char *kid, int64_t retired_at,
                    int64_t not_after)
{
	DISPATCH(s, key_retire, kid, retired_at, not_after);
}

int
eb_store_mapping_put(struct eb_store *s, const struct eb_store_mapping *m)
{
	DISPATCH(s, mapping_put, m);
}

int
eb_store_mapping_get(struct eb_store *s, const char *tenant,
                     const char *subject, struct eb_store_mapping *out)
{
	ZERO(out);
	DISPATCH(s, mapping_get, tenant, subject, out);
}

int
eb_store_mapping_delete(struct eb_store *s, const char *tenant,
                        const char *subject)
{
	DISPATCH(s, mapping_delete, tenant, subject);
}

/* ---- releasing records ------------------------------------------------ */

void
eb_store_audit_finish(struct eb_store_audit *ev)
{
	if (ev == NULL)
		return;
	eb_free(ev->tenant);
	eb_free(ev->event);
	eb_free(ev->subject);
	eb_free(ev->detail);
	memset(ev, 0, sizeof(*ev));
}

void
eb_store_audit_list_finish(struct eb_store_audit_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		eb_store_audit_finish(&l->v[i]);
	eb_free(l->v);
	memset(l, 0, sizeof(*l));
}

void
eb_store_flow_finish(struct eb_store_flow *f)
{
	if (f == NULL)
		return;
	eb_free(f->id);
	eb_free(f->tenant);
	eb_free(f->user_identifier);
	eb_free(f->enrollment_mode);
	eb_free(f->model_family);
	eb_free(f->product);
	eb_free(f->version);
	eb_free(f->language);
	eb_free(f->os_version);
	eb_free(f->udid);
	eb_free(f->serial);
	eb_free_secret_str(f->upstream_state);
	eb_free_secret_str(f->upstream_nonce);
	eb_free_secret(f->pkce_verifier, f->pkce_verifier_len);
	eb_free(f->browser_binding);
	eb_free(f->client_id);
	eb_free(f->redirect_uri);
	eb_free(f->device_state);
	eb_free(f->scope);
	eb_free(f->extra);
	memset(f, 0, sizeof(*f));
}

void
eb_store_code_finish(struct eb_store_code *c)
{
	if (c == NULL)
		return;
	eb_free(c->hash);
	eb_free(c->tenant);
	eb_free(c->grant_id);
	eb_free(c->client_id);
	eb_free(c->redirect_uri);
	eb_free(c->scope);
	memset(c, 0, sizeof(*c));
}

void
eb_store_grant_finish(struct eb_store_grant *g)
{
	if (g == NULL)
		return;
	eb_free(g->id);
	eb_free(g->tenant);
	eb_free(g->auth_method);
	eb_free(g->client_id);
	eb_free(g->managed_apple_id);
	eb_free(g->user_identifier);
	eb_free(g->idp_issuer);
	eb_free(g->idp_subject);
	eb_free(g->idp_tid);
	eb_free(g->idp_oid);
	eb_free(g->enrollment_mode);
	eb_free(g->binding_kind);
	eb_free(g->binding_value);
	eb_free_secret(g->upstream_refresh_token,
	               g->upstream_refresh_token_len);
	eb_free(g->revoke_reason);
	eb_free(g->superseded_by);
	eb_free(g->extra);
	memset(g, 0, sizeof(*g));
}

void
eb_store_grant_list_finish(struct eb_store_grant_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		eb_store_grant_finish(&l->v[i]);
	eb_free(l->v);
	memset(l, 0, sizeof(*l));
}

void
eb_store_token_finish(struct eb_store_token *t)
{
	if (t == NULL)
		return;
	eb_free(t->hash);
	eb_free(t->tenant);
	eb_free(t->grant_id);
	eb_free(t->client_id);
	eb_free(t->jti);
	eb_free(t->parent_hash);
	eb_free(t->replaced_by);
	memset(t, 0, sizeof(*t));
}

void
eb_store_key_finish(struct eb_store_key *k)
{
	if (k == NULL)
		return;
	eb_free(k->kid);
	eb_free(k->tenant);
	eb_free(k->alg);
	eb_free(k->public_jwk);
	eb_free_secret(k->private_key, k->private_key_len);
	memset(k, 0, sizeof(*k));
}

void
eb_store_key_list_finish(struct eb_store_key_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		eb_store_key_finish(&l->v[i]);
	eb_free(l->v);
	memset(l, 0, sizeof(*l));
}

void
eb_store_mapping_finish(struct eb_store_mapping *m)
{
	if (m == NULL)
		return;
	eb_free(m->tenant);
	eb_free(m->subject);
	eb_free(m->managed_apple_id);
	eb_free(m->note);
	memset(m, 0, sizeof(*m));
}
