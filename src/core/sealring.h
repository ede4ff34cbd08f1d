/*
 * The seal key ring a process uses (jose/seal.h), built from the
 * configuration: with "seal_keys", those keys in order (the first seals)
 * followed, when state_dir/seal.key exists, by that key as a last, open-only
 * entry so data sealed before seal_keys was set still opens; without
 * "seal_keys", the state_dir key alone, created when absent, as before.
 */
#ifndef EB_SEALRING_H
#define EB_SEALRING_H

#include <stddef.h>

struct eb_config;
struct eb_seal_ring;

/*
 * The ring for cfg (eb_seal_ring_free it), or NULL with err set (never
 * holding key material). The state directory must have been prepared.
 */
struct eb_seal_ring *eb_sealring_load(const struct eb_config *cfg, char *err,
                                      size_t errlen);

#endif
