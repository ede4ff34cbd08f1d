/*
 * `enrollbridge keys list -c FILE` and `enrollbridge keys rotate -c FILE`:
 * the token signing keys in the store (token/signer.c).
 *
 * list prints one key per line, newest first:
 *
 *     KID STATE CREATED NOT_AFTER
 *
 * STATE is "current" (the key signing now), "retired" (no longer signing;
 * published in the JWKS until NOT_AFTER) or "standby" (not retired but not
 * the newest: left by two rotations racing). Times are UTC ISO 8601, "-"
 * for none. A key whose sealed private half does not open under this
 * state_dir's seal key gets a fifth column "unusable" (the server ignores
 * it).
 *
 * rotate makes a new current key and retires the old one, which stays
 * published for the longest token lifetime of any tenant plus a margin;
 * it prints the new kid. A running server picks the new key up by itself.
 */
#ifndef EB_CLI_KEYS_H
#define EB_CLI_KEYS_H

/* argv[0] is "keys". Returns 0, 1 on failure, 2 on a usage error. */
int eb_cli_keys(int argc, char **argv);

#endif
