/*
 * The SQLite backend's authorization codes (single use, replay detection)
 * and tokens by hash: issue, the token-and-grant read, refresh token
 * rotation with its grace window and sealed successor, and revocation.
 */
#include "store/sqlite/sqlite_int.h"

#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "grant/policy.h"
#include "grant/refresh.h"

/* ---- authorization codes ---------------------------------------------- */

int
eb_sq_code_put(void *be, const struct eb_store_code *cd)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_CODE_INS)) == NULL)
		return EB_STORE_ERROR;
	if ((rc = eb_sq_bind_row(c, st, &eb_columns_code, cd, __func__)) != 0)
		return rc;
	return eb_sq_run(c, st, __func__);
}

static int
code_mark_used(struct eb_sq_conn *c, const char *hash, int64_t now)
{
	sqlite3_stmt *st;

	if ((st = eb_sq_stmt(c, ST_CODE_USE)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, hash) | sqlite3_bind_int64(st, 2, now))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_run(c, st, __func__);
}

int
eb_sq_code_consume(void *be, const char *hash, const char *client_id,
                   const char *redirect_uri, int64_t now,
                   struct eb_store_code *out)
{
	struct eb_grant_code_state cs;
	struct eb_store_code cd;
	struct eb_sq_gstate gs;
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	int rc, answer;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (hash == NULL)
		return EB_STORE_NOT_FOUND;
	if ((c = eb_sq_conn(be)) == NULL || eb_sq_tx_begin(c) != 0)
		return EB_STORE_ERROR;
	if ((st = eb_sq_stmt(c, ST_CODE_GET)) == NULL) {
		rc = EB_STORE_ERROR;
		goto out;
	}
	if (eb_sq_bind_text(st, 1, hash)) {
		rc = eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
		goto out;
	}
	if ((rc = eb_sq_one(c, st, &eb_sq_rt_code, &cd, __func__)) != 0)
		goto out;
	memset(&cs, 0, sizeof(cs));
	cs.found = 1;
	cs.used_at = cd.used_at;
	cs.expires = cd.expires;
	cs.client_id = cd.client_id;
	cs.redirect_uri = cd.redirect_uri;
	if (eb_grant_code_decide(&cs, client_id, redirect_uri, now, &answer) ==
	    EB_GRANT_CODE_REVOKE) {
		/* RFC 6749 4.1.2: revoke what the code was redeemed for. */
		if ((rc = eb_sq_gstate_read(c, cd.grant_id, &gs)) ==
		        EB_STORE_OK &&
		    eb_grant_end_decide(gs.status, EB_STORE_GRANT_REVOKED) ==
		        EB_GRANT_END)
			rc = eb_sq_grant_end(
			    c, cd.grant_id, gs.tenant, EB_STORE_GRANT_REVOKED,
			    "authorization code replayed", NULL, now);
		if (rc == EB_STORE_NOT_FOUND)
			rc = EB_STORE_OK;
		eb_sq_gstate_finish(&gs);
	} else {
		/* redeemed or refused, a code is used once */
		cd.used_at = now;
		rc = code_mark_used(c, hash, now);
	}
	if (rc == EB_STORE_OK)
		rc = answer;
	if (rc != EB_STORE_OK && rc != EB_STORE_ERROR)
		log_info("store: authorization code refused: %s",
		         eb_store_strerror(rc));
	rc = eb_sq_tx_end(c, rc, rc != EB_STORE_ERROR);
	if (rc == EB_STORE_OK && out != NULL)
		*out = cd;
	else
		eb_store_code_finish(&cd);
	return rc;
out:
	return eb_sq_tx_end(c, rc, 0);
}

/* ---- tokens ----------------------------------------------------------- */

static int
token_insert(struct eb_sq_conn *c, const struct eb_store_token *t,
             const char *parent)
{
	const char *kind = eb_store_token_kind_name(t->kind);
	struct eb_store_token row;
	sqlite3_stmt *st;
	int rc;

	if (kind == NULL) {
		log_warnx("store: token with a bad kind");
		return EB_STORE_ERROR;
	}
	if ((st = eb_sq_stmt(c, ST_TOKEN_INS)) == NULL)
		return EB_STORE_ERROR;
	/* a new token is active; its parent is the caller's choice */
	row = *t;
	row.parent_hash = (char *)parent;
	if ((rc = eb_sq_bind_row(c, st, &eb_columns_token, &row, __func__)) !=
	    0)
		return rc;
	return eb_sq_run(c, st, __func__);
}

static int
token_select(struct eb_sq_conn *c, const char *hash, struct eb_store_token *out)
{
	sqlite3_stmt *st;

	memset(out, 0, sizeof(*out));
	if (hash == NULL)
		return EB_STORE_NOT_FOUND;
	if ((st = eb_sq_stmt(c, ST_TOKEN_GET)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, hash))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_one(c, st, &eb_sq_rt_token, out, __func__);
}

/*
 * The token by hash and, when it still exists, its grant, in one statement
 * (one snapshot): OK with grant->id NULL when the grant row is gone.
 */
int
eb_sq_token_grant_get(void *be, const char *hash, struct eb_store_token *tok,
                      struct eb_store_grant *grant)
{
	struct eb_sq_conn *c;
	sqlite3_stmt *st;
	struct eb_sq_rd r;
	int rc;

	memset(tok, 0, sizeof(*tok));
	memset(grant, 0, sizeof(*grant));
	if (hash == NULL)
		return EB_STORE_NOT_FOUND;
	if ((c = eb_sq_conn(be)) == NULL ||
	    (st = eb_sq_stmt(c, ST_TOKEN_GRANT_GET)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, hash))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r.st = st;
		r.col = 0;
		r.oom = 0;
		eb_sq_rd_cols(&r, &eb_columns_token, tok);
		/* the grant's columns follow: NULL when it is gone */
		if (sqlite3_column_type(st, r.col) != SQLITE_NULL)
			eb_sq_rd_cols(&r, &eb_columns_grant, grant);
		if (r.oom) {
			eb_store_token_finish(tok);
			eb_store_grant_finish(grant);
			log_warnx("store: out of memory");
			rc = EB_STORE_ERROR;
		} else
			rc = EB_STORE_OK;
	} else if (rc == SQLITE_DONE)
		rc = EB_STORE_NOT_FOUND;
	else
		rc = eb_sq_fail(c, rc, __func__);
	sqlite3_reset(st);
	return rc;
}

static int
token_set_rotated(struct eb_sq_conn *c, const char *hash, int64_t at,
                  const char *successor)
{
	sqlite3_stmt *st;

	if ((st = eb_sq_stmt(c, ST_TOKEN_ROTATED)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, hash) | sqlite3_bind_int64(st, 2, at) |
	    eb_sq_bind_text(st, 3, successor))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_run(c, st, __func__);
}

static int
token_set_revoked(struct eb_sq_conn *c, const char *hash)
{
	sqlite3_stmt *st;

	if ((st = eb_sq_stmt(c, ST_TOKEN_REVOKE)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, hash))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_run(c, st, __func__);
}

int
eb_sq_token_put(void *be, const struct eb_store_token *t)
{
	struct eb_sq_conn *c;

	if ((c = eb_sq_conn(be)) == NULL)
		return EB_STORE_ERROR;
	return token_insert(c, t, t->parent_hash);
}

int
eb_sq_token_get(void *be, const char *hash, struct eb_store_token *out)
{
	struct eb_sq_conn *c;

	memset(out, 0, sizeof(*out));
	if ((c = eb_sq_conn(be)) == NULL)
		return EB_STORE_ERROR;
	return token_select(c, hash, out);
}

/*
 * Keep (blob non-NULL) or wipe (NULL) the sealed successor on the rotated
 * row hash, inside the caller's transaction.
 */
static int
successor_keep(struct eb_sq_conn *c, const char *hash, const uint8_t *blob,
               size_t len, int64_t until)
{
	sqlite3_stmt *st;

	if ((st = eb_sq_stmt(c, ST_TOKEN_SUCC_KEEP)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, hash) | eb_sq_bind_blob(st, 2, blob, len) |
	    sqlite3_bind_int64(st, 3, blob != NULL ? until : 0))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	return eb_sq_run(c, st, __func__);
}

/*
 * The sealed successor kept on the rotated row hash, when it is still
 * within its window at now (until its successor_until second included, as
 * the sweep does): *blob (NULL when none) for the caller to wipe
 * and free.
 */
static int
successor_read(struct eb_sq_conn *c, const char *hash, int64_t now,
               uint8_t **blob, size_t *len)
{
	sqlite3_stmt *st;
	struct eb_sq_rd r;
	int rc;

	*blob = NULL;
	*len = 0;
	if ((st = eb_sq_stmt(c, ST_TOKEN_SUCC_GET)) == NULL)
		return EB_STORE_ERROR;
	if (eb_sq_bind_text(st, 1, hash))
		return eb_sq_fail(c, sqlite3_errcode(c->db), __func__);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = (struct eb_sq_rd){st, 0, 0};
		if (sqlite3_column_int64(st, 1) >= now)
			*blob = eb_sq_rd_blob(&r, len);
		rc = EB_STORE_OK;
		if (r.oom) {
			log_warnx("store: out of memory");
			rc = EB_STORE_ERROR;
		}
	} else if (rc == SQLITE_DONE)
		rc = EB_STORE_OK;
	else
		rc = eb_sq_fail(c, rc, __func__);
	sqlite3_reset(st);
	return rc;
}

/*
 * Rotation (store.h), inside one BEGIN IMMEDIATE transaction, so that of
 * concurrent presenters of one token exactly one sees it active. The rows
 * are read here; what to do is the shared rule's (grant/refresh.h).
 */
int
eb_sq_token_rotate(void *be, const char *old_hash,
                   const struct eb_store_token *next,
                   const uint8_t *next_sealed, size_t next_sealed_len,
                   const struct eb_store_token *access, int64_t now,
                   int64_t grace, struct eb_store_token *old_out)
{
	struct eb_grant_refresh_token pt;
	struct eb_grant_refresh_successor ps;
	struct eb_store_token old, succ;
	struct eb_sq_gstate gs;
	struct eb_sq_conn *c;
	uint8_t *blob = NULL;
	size_t bloblen = 0;
	int rc, commit = 0, why, d;

	if (old_out != NULL)
		memset(old_out, 0, sizeof(*old_out));
	if (next == NULL || next->kind != EB_STORE_TOKEN_REFRESH ||
	    next->hash == NULL) {
		log_warnx("store: rotation needs a new refresh token");
		return EB_STORE_ERROR;
	}
	if ((c = eb_sq_conn(be)) == NULL || eb_sq_tx_begin(c) != 0)
		return EB_STORE_ERROR;
	memset(&gs, 0, sizeof(gs));
	memset(&succ, 0, sizeof(succ));
	if ((rc = token_select(c, old_hash, &old)) != 0)
		goto out;
	if (old.kind != EB_STORE_TOKEN_REFRESH) {
		rc = EB_STORE_NOT_FOUND;
		goto out;
	}
	if (next->grant_id == NULL || strcmp(next->grant_id, old.grant_id)) {
		log_warnx("store: rotation to another grant refused");
		rc = EB_STORE_CONFLICT;
		goto out;
	}
	rc = eb_sq_gstate_read(c, old.grant_id, &gs);
	if (rc != EB_STORE_OK && rc != EB_STORE_NOT_FOUND)
		goto out;
	memset(&pt, 0, sizeof(pt));
	memset(&ps, 0, sizeof(ps));
	pt.found = 1;
	pt.kind = old.kind;
	pt.status = old.status;
	pt.expires = old.expires;
	pt.rotated_at = old.rotated_at;
	pt.grant_active =
	    rc == EB_STORE_OK && gs.status == EB_STORE_GRANT_ACTIVE;
	if (old.status == EB_STORE_TOKEN_ROTATED) {
		if ((rc = successor_read(c, old.hash, now, &blob, &bloblen)) !=
		    EB_STORE_OK)
			goto out;
		pt.has_sealed_successor = blob != NULL;
		rc = token_select(c, old.replaced_by, &succ);
		if (rc != EB_STORE_OK && rc != EB_STORE_NOT_FOUND)
			goto out;
		ps.found = rc == EB_STORE_OK;
		ps.status = succ.status;
		ps.expires = succ.expires;
	}
	d = eb_grant_refresh_decide(&pt, &ps, now, grace, &why);
	switch (d) {
	case EB_GRANT_REFRESH_ROTATE:
		commit = 1;
		if ((rc = token_set_rotated(c, old.hash, now, next->hash)) ==
		        0 &&
		    (rc = successor_keep(c, old.hash, next_sealed,
		                         next_sealed_len, now + grace)) == 0 &&
		    (rc = token_insert(c, next, old.hash)) == 0 &&
		    old.parent_hash != NULL)
			/* the token before old: its successor (old) is now
			 * used, so its retry window is over */
			rc = successor_keep(c, old.parent_hash, NULL, 0, 0);
		break;
	case EB_GRANT_REFRESH_RETURN_SUCCESSOR:
		/* a lost response: the same successor, no new branch */
		commit = 1;
		rc = EB_STORE_OK;
		break;
	case EB_GRANT_REFRESH_REVOKE_GRANT:
		log_warnx("store: refresh token reuse on grant %s: "
		          "revoking it",
		          old.grant_id);
		commit = 1;
		if ((rc = eb_sq_grant_end(
		         c, old.grant_id, gs.tenant, EB_STORE_GRANT_REVOKED,
		         "refresh token reused", NULL, now)) == 0)
			rc = EB_STORE_REUSE;
		break;
	default:
		rc = why != EB_STORE_OK ? why : EB_STORE_REVOKED;
	}
	if (rc == EB_STORE_OK && access != NULL)
		rc = token_insert(c, access, NULL);
	if (rc == EB_STORE_OK && d == EB_GRANT_REFRESH_RETURN_SUCCESSOR)
		rc = EB_STORE_RETRY;
out:
	commit = commit && (rc == EB_STORE_OK || rc == EB_STORE_RETRY ||
	                    rc == EB_STORE_REUSE);
	rc = eb_sq_tx_end(c, rc, commit);
	eb_sq_gstate_finish(&gs);
	eb_store_token_finish(&succ);
	if ((rc == EB_STORE_OK || rc == EB_STORE_RETRY ||
	     rc == EB_STORE_REUSE) &&
	    old_out != NULL) {
		*old_out = old;
		if (rc == EB_STORE_RETRY) {
			old_out->successor_sealed = blob;
			old_out->successor_sealed_len = bloblen;
			blob = NULL;
		}
	} else
		eb_store_token_finish(&old);
	eb_free_secret(blob, bloblen);
	return rc;
}

int
eb_sq_token_revoke(void *be, const char *hash, int64_t now)
{
	struct eb_sq_conn *c;
	int rc;

	if ((c = eb_sq_conn(be)) == NULL)
		return EB_STORE_ERROR;
	if ((rc = token_set_revoked(c, hash)) == 0 &&
	    sqlite3_changes(c->db) == 0)
		rc = EB_STORE_NOT_FOUND;
	return rc;
}
