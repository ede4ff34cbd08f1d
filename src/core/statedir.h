/*
 * The state directory (configuration key state_dir): where the bridge keeps
 * the keys it generates itself. The directory must be private (no group or
 * other access) and every key file 0600; looser permissions are refused at
 * start-up rather than silently tightened, because they mean someone else
 * may already have read the key.
 */
#ifndef EB_STATEDIR_H
#define EB_STATEDIR_H

#include <stddef.h>
#include <stdint.h>

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
