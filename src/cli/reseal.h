/*
 * `enrollbridge reseal -c FILE [--batch N] [--dry-run]`: move every secret
 * the store keeps sealed (jose/seal.h) to the current form, version 3
 * under the first key of seal_keys, so that an older key can be dropped
 * (README, "Rotating seal keys"). It goes through the grants' upstream
 * refresh tokens, N at a time, and the signing keys' private halves, and
 * rewrites each one that is not yet current with a compare and swap
 * (eb_store_grant_reseal, eb_store_key_reseal): a value a server changed in
 * between (a renewal storing a newer upstream token) is re-read and tried
 * again, never overwritten. A rotated refresh token's successor, kept
 * sealed for one 30-second grace window, is left alone: it is gone before
 * an old key could be dropped.
 *
 * It prints one line per kind:
 *
 *     grants: R resealed, C already current, X changed concurrently
 *     (retried), F failed
 *
 * ("to reseal" instead of "resealed" with --dry-run, which writes
 * nothing), names on stderr each grant or kid whose value opens under no
 * key of the ring (never the value), and exits 1 when anything failed.
 */
#ifndef EB_CLI_RESEAL_H
#define EB_CLI_RESEAL_H

#include <stddef.h>

struct eb_store;
struct eb_seal_ring;

/*
 * Per kind: rows rewritten (or, dry, to rewrite), already current, failed
 * (opens under no key, or a store or sealing failure), and rows found
 * changed by someone else between the read and the swap (each then
 * re-read, and also counted by how it ended, unless it was gone).
 */
struct eb_reseal_counts {
	size_t resealed, current, changed, failed;
};

struct eb_reseal_report {
	struct eb_reseal_counts grants, keys;
};

/*
 * Re-seal what store holds under ring's current form, batch grants at a
 * time (batch >= 1); with dry, only count. Failures are named on stderr.
 * 0 when nothing failed, -1 otherwise (see rep).
 */
int eb_reseal_run(struct eb_store *store, const struct eb_seal_ring *ring,
                  size_t batch, int dry, struct eb_reseal_report *rep);

/* argv[0] is "reseal". Returns 0, 1 on failure, 2 on a usage error. */
int eb_cli_reseal(int argc, char **argv);

#endif
