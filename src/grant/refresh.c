/*
 * The refresh-token rule (grant/refresh.h): from the presented token's
 * state, its successor's state, the time and the grace window, one of
 * rotate, return the same successor, revoke the grant, or refuse. Pure: no
 * store, no clock, no allocation; each backend reads the rows inside its
 * transaction and acts on the answer there.
 */
#include "grant/refresh.h"

#include <stddef.h>

#include "store/store.h"

static enum eb_grant_refresh_decision
invalid(int *why, int rc)
{
	if (why != NULL)
		*why = rc;
	return EB_GRANT_REFRESH_INVALID;
}

enum eb_grant_refresh_decision
eb_grant_refresh_decide(const struct eb_grant_refresh_token *tok,
                        const struct eb_grant_refresh_successor *succ,
                        int64_t now, int64_t grace, int *why)
{
	if (why != NULL)
		*why = EB_STORE_OK;
	if (tok == NULL || !tok->found || tok->kind != EB_STORE_TOKEN_REFRESH)
		return invalid(why, EB_STORE_NOT_FOUND);
	/* revoked (by RFC 7009, or with its grant), or the grant has ended:
	 * nothing left to protect */
	if (tok->status == EB_STORE_TOKEN_REVOKED || !tok->grant_active)
		return invalid(why, EB_STORE_REVOKED);
	if (tok->status == EB_STORE_TOKEN_ACTIVE) {
		if (tok->expires != 0 && tok->expires <= now)
			return invalid(why, EB_STORE_EXPIRED);
		return EB_GRANT_REFRESH_ROTATE;
	}
	if (tok->status != EB_STORE_TOKEN_ROTATED)
		return invalid(why, EB_STORE_REVOKED);
	/*
	 * Rotated before: a retry after a lost response, or a second holder.
	 * Outside the window it is reuse, whoever presents it (the rotated
	 * token's own expiry does not soften that).
	 */
	if (grace < 0 || now < tok->rotated_at || now - tok->rotated_at > grace)
		return EB_GRANT_REFRESH_REVOKE_GRANT;
	/* within the window: the successor must be the one live branch */
	if (succ == NULL || !succ->found)
		return EB_GRANT_REFRESH_REVOKE_GRANT;
	if (succ->status != EB_STORE_TOKEN_ACTIVE)
		/* used (rotated) or revoked: someone else holds the grant */
		return EB_GRANT_REFRESH_REVOKE_GRANT;
	if (succ->expires != 0 && succ->expires <= now)
		return invalid(why, EB_STORE_EXPIRED);
	/* only the same successor may be handed back; when its value is
	 * gone we cannot, and a new branch is never made */
	if (!tok->has_sealed_successor)
		return EB_GRANT_REFRESH_REVOKE_GRANT;
	return EB_GRANT_REFRESH_RETURN_SUCCESSOR;
}

const char *
eb_grant_refresh_name(int decision)
{
	switch (decision) {
	case EB_GRANT_REFRESH_ROTATE:
		return "rotate";
	case EB_GRANT_REFRESH_RETURN_SUCCESSOR:
		return "return_successor";
	case EB_GRANT_REFRESH_REVOKE_GRANT:
		return "revoke_grant";
	case EB_GRANT_REFRESH_INVALID:
		return "invalid";
	}
	return "unknown";
}
