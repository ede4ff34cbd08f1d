/*
 * `enrollbridge map -c FILE --tenant T --claims FILE.json [--typed ID]`: a
 * dry run of the sign-in rules for administrators. It reads a claims
 * document (the JSON payload of an ID token, as the IdP would send it),
 * applies the tenant's provider rules (no network: Microsoft Graph is not
 * asked), the Managed Apple Account mapping (with the store's overrides
 * when the database exists) and the access policy, and prints the outcome
 * as "key: value" lines: managed_apple_id, rule, decision (allow|deny),
 * code, reason.
 */
#ifndef EB_CLI_MAP_H
#define EB_CLI_MAP_H

/*
 * argv[0] is the subcommand name. Prints to stdout (usage and
 * configuration errors to stderr). Returns 0 when the person would be
 * allowed, 1 when refused, 2 on a usage, configuration or claims-file
 * error.
 */
int eb_cli_map(int argc, char **argv);

/*
 * `map set -c FILE --tenant T --subject S --apple-id A [--note N]`,
 * `map unset -c FILE --tenant T --subject S`,
 * `map list -c FILE --tenant T [--json]`: the mapping overrides in the
 * store (both backends). argv[0] is "set", "unset" or "list". Returns 0,
 * 1 when the store fails or unset finds no override, 2 on a usage or
 * configuration error.
 */
int eb_cli_map_edit(int argc, char **argv);

#endif
