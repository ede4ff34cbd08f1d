/*
 * The PostgreSQL backend's authorization codes and tokens. Single use is
 * kept by row locks (SCALEOUT 3.5): code_consume takes the code row FOR
 * UPDATE, then the grant's; a rotation takes the grant row FOR UPDATE and
 * then the token's (the lock-order rule of SCALEOUT 3.4: grant first, then
 * tokens), so of concurrent presenters of one refresh token exactly one
 * sees it active and the others see it rotated. What to do is decided by
 * the shared rules (grant/policy.h, grant/refresh.h). A replayed code, a
 * reused refresh token and a revoked token end their transaction with the
 * invalidation (SCALEOUT 3.6); nothing else here does.
 */
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "grant/policy.h"
#include "grant/refresh.h"
#include "store/pg/pg_int.h"

#define TOKEN_NCOLS EB_COLUMNS_COUNT(EB_COLUMNS_TOKEN)

/* ---- authorization codes ---- */

static int
code_put_fn(struct eb_pg_conn *c, void *arg)
{
	const struct eb_store_code *cd = arg;
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	if (eb_pg_args_row(&a, &eb_columns_code, cd) != 0)
		return EB_STORE_ERROR;
	return eb_pg_run(c, PS_CODE_INS, &a, NULL);
}

int
eb_pg_code_put(void *be, const struct eb_store_code *cd)
{
	return eb_pg_with(be, code_put_fn, (void *)cd);
}

struct consume {
	struct eb_pg_store *ps;
	const char *hash, *client_id, *redirect_uri;
	int64_t now;
	struct eb_store_code cd; /* the code, as read */
	int answer;              /* the rule's store code */
};

/* RFC 6749 4.1.2: a replay revokes what the code was redeemed for. */
static int
code_replayed(struct eb_pg_conn *c, struct consume *q)
{
	struct eb_pg_gstate gs;
	int rc;

	rc = eb_pg_gstate_lock(c, q->cd.grant_id, &gs);
	if (rc == EB_STORE_OK &&
	    eb_grant_end_decide(gs.status, EB_STORE_GRANT_REVOKED) ==
	        EB_GRANT_END)
		rc = eb_pg_grant_end(c, q->cd.grant_id, EB_STORE_GRANT_REVOKED,
		                     "authorization code replayed", NULL,
		                     q->now);
	eb_pg_gstate_finish(&gs);
	if (rc == EB_STORE_NOT_FOUND)
		rc = EB_STORE_OK;
	if (rc == EB_STORE_OK)
		rc = eb_pg_invalidate(c, q->ps->notify);
	return rc;
}

static int
consume_tx(struct eb_pg_conn *c, void *arg)
{
	struct consume *q = arg;
	struct eb_grant_code_state cs;
	struct eb_pg_args a;
	int rc;

	eb_store_code_finish(&q->cd);
	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->hash);
	/* the code row first, FOR UPDATE: one redeemer, the rest wait */
	if ((rc = eb_pg_one(c, PS_CODE_LOCK, &a, &eb_pg_rt_code, &q->cd)) !=
	    EB_STORE_OK)
		return rc;
	memset(&cs, 0, sizeof(cs));
	cs.found = 1;
	cs.used_at = q->cd.used_at;
	cs.expires = q->cd.expires;
	cs.client_id = q->cd.client_id;
	cs.redirect_uri = q->cd.redirect_uri;
	if (eb_grant_code_decide(&cs, q->client_id, q->redirect_uri, q->now,
	                         &q->answer) == EB_GRANT_CODE_REVOKE)
		return code_replayed(c, q);
	/* redeemed or refused, a code is used once */
	q->cd.used_at = q->now;
	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->hash);
	eb_pg_args_int8(&a, q->now);
	return eb_pg_run(c, PS_CODE_USE, &a, NULL);
}

int
eb_pg_code_consume(void *be, const char *hash, const char *client_id,
                   const char *redirect_uri, int64_t now,
                   struct eb_store_code *out)
{
	struct consume q;
	int rc;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (hash == NULL)
		return EB_STORE_NOT_FOUND;
	memset(&q, 0, sizeof(q));
	q.ps = be;
	q.hash = hash;
	q.client_id = client_id;
	q.redirect_uri = redirect_uri;
	q.now = now;
	if ((rc = eb_pg_in_tx(be, consume_tx, &q)) == EB_STORE_OK)
		rc = q.answer;
	if (rc != EB_STORE_OK && rc != EB_STORE_ERROR)
		log_info("store: authorization code refused: %s",
		         eb_store_strerror(rc));
	if (rc == EB_STORE_OK && out != NULL)
		*out = q.cd;
	else
		eb_store_code_finish(&q.cd);
	return rc;
}

/* ---- tokens ---- */

static int
token_insert(struct eb_pg_conn *c, const struct eb_store_token *t,
             const char *parent)
{
	const char *kind = eb_store_token_kind_name(t->kind);
	struct eb_pg_args a;

	if (kind == NULL) {
		log_warnx("store: token with a bad kind");
		return EB_STORE_ERROR;
	}
	eb_pg_args_init(&a);
	eb_pg_args_text(&a, t->hash);
	eb_pg_args_text(&a, kind);
	eb_pg_args_text(&a, t->tenant);
	eb_pg_args_text(&a, t->grant_id);
	eb_pg_args_text(&a, t->client_id);
	eb_pg_args_text(&a, t->jti);
	eb_pg_args_int8(&a, t->created);
	eb_pg_args_int8(&a, t->expires);
	eb_pg_args_text(&a, parent);
	return eb_pg_run(c, PS_TOKEN_INS, &a, NULL);
}

static int
token_put_fn(struct eb_pg_conn *c, void *arg)
{
	const struct eb_store_token *t = arg;

	return token_insert(c, t, t->parent_hash);
}

int
eb_pg_token_put(void *be, const struct eb_store_token *t)
{
	return eb_pg_with(be, token_put_fn, (void *)t);
}

struct token_q {
	const char *hash;
	struct eb_store_token *tok;
	struct eb_store_grant *grant;
};

static int
token_get_fn(struct eb_pg_conn *c, void *arg)
{
	struct token_q *q = arg;
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->hash);
	return eb_pg_one(c, PS_TOKEN_GET, &a, &eb_pg_rt_token, q->tok);
}

int
eb_pg_token_get(void *be, const char *hash, struct eb_store_token *out)
{
	struct token_q q = {hash, out, NULL};

	memset(out, 0, sizeof(*out));
	if (hash == NULL)
		return EB_STORE_NOT_FOUND;
	return eb_pg_with(be, token_get_fn, &q);
}

static int
token_grant_fn(struct eb_pg_conn *c, void *arg)
{
	struct token_q *q = arg;
	struct eb_pg_args a;
	struct eb_pg_rd rd;
	PGresult *r;
	int rc;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->hash);
	if ((rc = eb_pg_exec(c, PS_TOKEN_GRANT_GET, &a, &r)) != EB_STORE_OK)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return EB_STORE_NOT_FOUND;
	}
	eb_pg_rd_init(&rd, r, 0);
	eb_pg_read_token(&rd, q->tok);
	if (!PQgetisnull(r, 0, TOKEN_NCOLS))
		eb_pg_read_grant(&rd, q->grant);
	PQclear(r);
	if (!rd.bad)
		return EB_STORE_OK;
	eb_store_token_finish(q->tok);
	eb_store_grant_finish(q->grant);
	log_warnx("store: out of memory or a malformed row");
	return EB_STORE_ERROR;
}

int
eb_pg_token_grant_get(void *be, const char *hash, struct eb_store_token *tok,
                      struct eb_store_grant *grant)
{
	struct token_q q = {hash, tok, grant};

	memset(tok, 0, sizeof(*tok));
	memset(grant, 0, sizeof(*grant));
	if (hash == NULL)
		return EB_STORE_NOT_FOUND;
	/* one statement: token and grant from one snapshot */
	return eb_pg_with(be, token_grant_fn, &q);
}

/* ---- rotation ---- */

struct rotate {
	struct eb_pg_store *ps;
	const char *old_hash;
	const struct eb_store_token *next, *access;
	const uint8_t *next_sealed;
	size_t next_sealed_len;
	int64_t now, grace;
	/* out, reset at every run of the transaction */
	struct eb_store_token old;
	uint8_t *blob; /* the kept successor, for RETRY */
	size_t bloblen;
	int answer;
};

static void
rotate_reset(struct rotate *q)
{
	eb_store_token_finish(&q->old);
	eb_free_secret(q->blob, q->bloblen);
	q->blob = NULL;
	q->bloblen = 0;
	q->answer = EB_STORE_OK;
}

/*
 * The presented token, row locked, and its kept successor while within
 * its window (successor_until second included, as the sweep). With
 * PS_TOKEN_GRANT_LOCK the grant row is locked first in the same
 * statement and *active says whether it is active; with PS_TOKEN_LOCK
 * only the token (active NULL).
 */
static int
token_lock(struct eb_pg_conn *c, struct rotate *q, int stmt, int *active)
{
	struct eb_pg_args a;
	struct eb_pg_rd rd;
	PGresult *r;
	uint8_t *b;
	size_t blen = 0;
	int64_t until;
	int rc;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->old_hash);
	if (active != NULL)
		eb_pg_args_text(&a, q->next->grant_id);
	if ((rc = eb_pg_exec(c, stmt, &a, &r)) != EB_STORE_OK)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return EB_STORE_NOT_FOUND;
	}
	eb_pg_rd_init(&rd, r, 0);
	eb_pg_read_token(&rd, &q->old);
	b = eb_pg_rd_blob(&rd, &blen);
	until = eb_pg_rd_i64(&rd);
	if (active != NULL)
		*active = eb_pg_rd_i64(&rd) == 1;
	PQclear(r);
	if (rd.bad) {
		eb_free_secret(b, blen);
		log_warnx("store: out of memory or a malformed row");
		return EB_STORE_ERROR;
	}
	if (b != NULL && until >= q->now) {
		q->blob = b;
		q->bloblen = blen;
	} else
		eb_free_secret(b, blen);
	return EB_STORE_OK;
}

/* What the rule needs of the rotated token's successor. */
static int
successor_state(struct eb_pg_conn *c, const char *hash,
                struct eb_grant_refresh_successor *ps)
{
	struct eb_store_token succ;
	struct eb_pg_args a;
	int rc;

	memset(ps, 0, sizeof(*ps));
	if (hash == NULL)
		return EB_STORE_OK;
	eb_pg_args_init(&a);
	eb_pg_args_text(&a, hash);
	rc = eb_pg_one(c, PS_TOKEN_GET, &a, &eb_pg_rt_token, &succ);
	if (rc == EB_STORE_OK) {
		ps->found = 1;
		ps->status = succ.status;
		ps->expires = succ.expires;
	}
	eb_store_token_finish(&succ);
	return rc == EB_STORE_NOT_FOUND ? EB_STORE_OK : rc;
}

/* A token row's columns but its hash, for PS_TOKEN_ROTATE_WRITE (t NULL:
 * none). */
static int
rotate_args_token(struct eb_pg_args *a, const struct eb_store_token *t)
{
	const char *kind = NULL;

	if (t != NULL && (kind = eb_store_token_kind_name(t->kind)) == NULL) {
		log_warnx("store: token with a bad kind");
		return -1;
	}
	eb_pg_args_text(a, kind);
	eb_pg_args_text(a, t != NULL ? t->tenant : NULL);
	eb_pg_args_text(a, t != NULL ? t->grant_id : NULL);
	eb_pg_args_text(a, t != NULL ? t->client_id : NULL);
	eb_pg_args_text(a, t != NULL ? t->jti : NULL);
	eb_pg_args_int8(a, t != NULL ? t->created : 0);
	eb_pg_args_int8(a, t != NULL ? t->expires : 0);
	return 0;
}

/*
 * Rotate: the presented token marked rotated (its successor sealed on
 * it), its parent's sealed successor wiped (the parent's successor, the
 * presented token, is now used, so that retry window is over), the
 * successor and the access token inserted: one statement.
 */
static int
rotate_apply(struct eb_pg_conn *c, struct rotate *q)
{
	struct eb_pg_args a;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->old.hash);
	eb_pg_args_int8(&a, q->now);
	eb_pg_args_text(&a, q->next->hash);
	eb_pg_args_blob(&a, q->next_sealed, q->next_sealed_len);
	eb_pg_args_int8(&a, q->next_sealed != NULL ? q->now + q->grace : 0);
	eb_pg_args_text(&a, q->old.parent_hash);
	if (rotate_args_token(&a, q->next) != 0)
		return EB_STORE_ERROR;
	eb_pg_args_text(&a, q->access != NULL ? q->access->hash : NULL);
	if (rotate_args_token(&a, q->access) != 0)
		return EB_STORE_ERROR;
	return eb_pg_run(c, PS_TOKEN_ROTATE_WRITE, &a, NULL);
}

/* The rule's decision, carried out; q->answer is what the caller gets. */
static int
rotate_decide(struct eb_pg_conn *c, struct rotate *q, int grant_active)
{
	struct eb_grant_refresh_token pt;
	struct eb_grant_refresh_successor ps;
	int rc = EB_STORE_OK, why, d;

	memset(&pt, 0, sizeof(pt));
	memset(&ps, 0, sizeof(ps));
	pt.found = 1;
	pt.kind = q->old.kind;
	pt.status = q->old.status;
	pt.expires = q->old.expires;
	pt.rotated_at = q->old.rotated_at;
	pt.grant_active = grant_active;
	pt.has_sealed_successor = q->blob != NULL;
	if (q->old.status == EB_STORE_TOKEN_ROTATED &&
	    (rc = successor_state(c, q->old.replaced_by, &ps)) != EB_STORE_OK)
		return rc;
	d = eb_grant_refresh_decide(&pt, &ps, q->now, q->grace, &why);
	switch (d) {
	case EB_GRANT_REFRESH_ROTATE:
		return rotate_apply(c, q);
	case EB_GRANT_REFRESH_RETURN_SUCCESSOR:
		/* a lost response: the same successor, no new branch */
		q->answer = EB_STORE_RETRY;
		break;
	case EB_GRANT_REFRESH_REVOKE_GRANT:
		log_warnx("store: refresh token reuse on grant %s: "
		          "revoking it",
		          q->old.grant_id);
		q->answer = EB_STORE_REUSE;
		if ((rc = eb_pg_grant_end(
		         c, q->old.grant_id, EB_STORE_GRANT_REVOKED,
		         "refresh token reused", NULL, q->now)) == EB_STORE_OK)
			rc = eb_pg_invalidate(c, q->ps->notify);
		return rc;
	default:
		return why != EB_STORE_OK ? why : EB_STORE_REVOKED;
	}
	if (rc == EB_STORE_OK && q->access != NULL)
		rc = token_insert(c, q->access, NULL);
	return rc;
}

/*
 * The locks of a rotation, grant row first, then the token's (SCALEOUT
 * 3.4). The grant is the successor's: when the presented token turns out
 * to be of another grant, nothing is written and the transaction rolls
 * back. In one statement when both rows exist; else one at a time, to
 * tell a missing token from a missing grant.
 */
static int
rotate_lock(struct eb_pg_conn *c, struct rotate *q, int *active)
{
	struct eb_pg_gstate gs;
	int rc;

	rc = token_lock(c, q, PS_TOKEN_GRANT_LOCK, active);
	if (rc != EB_STORE_NOT_FOUND)
		return rc;
	eb_store_token_finish(&q->old);
	rc = eb_pg_gstate_lock(c, q->next->grant_id, &gs);
	*active = rc == EB_STORE_OK && gs.status == EB_STORE_GRANT_ACTIVE;
	eb_pg_gstate_finish(&gs);
	if (rc != EB_STORE_OK && rc != EB_STORE_NOT_FOUND)
		return rc;
	return token_lock(c, q, PS_TOKEN_LOCK, NULL);
}

static int
rotate_tx(struct eb_pg_conn *c, void *arg)
{
	struct rotate *q = arg;
	int rc, active = 0;

	rotate_reset(q);
	if ((rc = rotate_lock(c, q, &active)) != EB_STORE_OK)
		return rc;
	if (q->old.kind != EB_STORE_TOKEN_REFRESH)
		return EB_STORE_NOT_FOUND;
	if (q->old.grant_id == NULL ||
	    strcmp(q->next->grant_id, q->old.grant_id) != 0) {
		log_warnx("store: rotation to another grant refused");
		return EB_STORE_CONFLICT;
	}
	return rotate_decide(c, q, active);
}

int
eb_pg_token_rotate(void *be, const char *old_hash,
                   const struct eb_store_token *next,
                   const uint8_t *next_sealed, size_t next_sealed_len,
                   const struct eb_store_token *access, int64_t now,
                   int64_t grace, struct eb_store_token *old_out)
{
	struct rotate q;
	int rc;

	if (old_out != NULL)
		memset(old_out, 0, sizeof(*old_out));
	if (next == NULL || next->kind != EB_STORE_TOKEN_REFRESH ||
	    next->hash == NULL) {
		log_warnx("store: rotation needs a new refresh token");
		return EB_STORE_ERROR;
	}
	if (next->grant_id == NULL) {
		log_warnx("store: rotation to another grant refused");
		return EB_STORE_CONFLICT;
	}
	if (old_hash == NULL)
		return EB_STORE_NOT_FOUND;
	memset(&q, 0, sizeof(q));
	q.ps = be;
	q.old_hash = old_hash;
	q.next = next;
	q.access = access;
	q.next_sealed = next_sealed;
	q.next_sealed_len = next_sealed_len;
	q.now = now;
	q.grace = grace;
	if ((rc = eb_pg_in_tx(be, rotate_tx, &q)) == EB_STORE_OK)
		rc = q.answer;
	if ((rc == EB_STORE_OK || rc == EB_STORE_RETRY ||
	     rc == EB_STORE_REUSE) &&
	    old_out != NULL) {
		*old_out = q.old;
		memset(&q.old, 0, sizeof(q.old));
		if (rc == EB_STORE_RETRY) {
			old_out->successor_sealed = q.blob;
			old_out->successor_sealed_len = q.bloblen;
			q.blob = NULL;
		}
	}
	rotate_reset(&q);
	return rc;
}

/* ---- revocation ---- */

struct revoke {
	struct eb_pg_store *ps;
	const char *hash;
};

static int
revoke_tx(struct eb_pg_conn *c, void *arg)
{
	struct revoke *q = arg;
	struct eb_pg_args a;
	size_t n = 0;
	int rc;

	eb_pg_args_init(&a);
	eb_pg_args_text(&a, q->hash);
	/* the token row only: a revocation never waits for a grant */
	if ((rc = eb_pg_run(c, PS_TOKEN_REVOKE, &a, &n)) != EB_STORE_OK)
		return rc;
	if (n == 0)
		return EB_STORE_NOT_FOUND;
	return eb_pg_invalidate(c, q->ps->notify);
}

int
eb_pg_token_revoke(void *be, const char *hash, int64_t now)
{
	struct revoke q = {be, hash};

	if (hash == NULL)
		return EB_STORE_NOT_FOUND;
	return eb_pg_in_tx(be, revoke_tx, &q);
}
