/*
 * What to do when a refresh token is presented: the one rule every storage
 * backend applies inside its rotation transaction (DESIGN.md "Refresh
 * tokens, PKCE"), kept here as a pure function so that SQLite and the
 * PostgreSQL backend decide alike and the rule is tested on its own.
 *
 * A refresh token rotates on every use. Presenting the token that was just
 * rotated again, within the grace window and while its successor is still
 * unused, is a retry after a lost response: the client gets the SAME
 * successor back, never a new branch. Any other use of a rotated token
 * (after the window, or once the successor has been used) means two parties
 * hold the grant: it is revoked, whoever presents it.
 */
#ifndef EB_GRANT_REFRESH_H
#define EB_GRANT_REFRESH_H

#include <stdint.h>

enum eb_grant_refresh_decision {
	EB_GRANT_REFRESH_ROTATE = 0, /* active: mint and store a successor */
	EB_GRANT_REFRESH_RETURN_SUCCESSOR =
	    1,                             /* a retry: hand back the same one */
	EB_GRANT_REFRESH_REVOKE_GRANT = 2, /* reuse: end the grant */
	EB_GRANT_REFRESH_INVALID = 3,      /* refuse; nothing changes */
};

/* The presented token's row as stored, and its grant. */
struct eb_grant_refresh_token {
	int found;       /* 0: no such token */
	int kind;        /* enum eb_store_token_kind */
	int status;      /* enum eb_store_token_status */
	int64_t expires; /* 0: never */
	int64_t rotated_at;
	int grant_active;         /* its grant exists and is active */
	int has_sealed_successor; /* the successor's sealed value is kept */
};

/* The row its replaced_by names (only read when the token is rotated). */
struct eb_grant_refresh_successor {
	int found;  /* 0: replaced_by names no row (or none) */
	int status; /* enum eb_store_token_status */
	int64_t expires;
};

/*
 * The decision for token tok (its successor succ, may be NULL when it has
 * none) presented at now, with a grace window of grace seconds after its
 * rotation. For EB_GRANT_REFRESH_INVALID, *why (may be NULL) is the store code
 * to answer: EB_STORE_NOT_FOUND, EB_STORE_EXPIRED or EB_STORE_REVOKED;
 * otherwise it is set to EB_STORE_OK.
 */
enum eb_grant_refresh_decision
eb_grant_refresh_decide(const struct eb_grant_refresh_token *tok,
                        const struct eb_grant_refresh_successor *succ,
                        int64_t now, int64_t grace, int *why);

/* "rotate", "return_successor", "revoke_grant", "invalid". */
const char *eb_grant_refresh_name(int decision);

#endif
