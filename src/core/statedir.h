/*
 * The state directory (configuration key state_dir): where the bridge keeps
 * the keys it generates itself, and the store's change file. The directory must
 * be private (no group or other access) and every key file 0600; looser
 * permissions are refused at start-up rather than silently tightened, because
 * they mean someone else may already have read the key.
 */
#ifndef EB_STATEDIR_H
#define EB_STATEDIR_H

#include <stddef.h>
#include <stdint.h>

/*
 * The file in the state directory that a process changing tokens or grants
 * under a running server (the CLI) touches, and that the server watches
 * before answering a bearer check from its cache (store.h, change
 * tracking). It holds only a counter.
 */
#define EB_STATEDIR_STORE_CHANGED "store.changed"

/* out = dir/name (outlen bytes); 0, or -1 when it does not fit. */
int eb_statedir_path(const char *dir, const char *name, char *out,
                     size_t outlen);
/* Create dir (0700) when missing; refuse one others can read or write. */
int eb_statedir_prepare(const char *dir, char *err, size_t errlen);
/*
 * Load the len-byte secret key stored in dir/name, creating it with random
 * bytes (0600, written atomically) when absent. Refuses a file of another
 * size or with permissions looser than 0600.
 */
int eb_statedir_key(const char *dir, const char *name, uint8_t *key, size_t len,
                    char *err, size_t errlen);

#endif
