/*
 * Every key the two configuration files accept, by key path: the very
 * lists the parsers check objects against (config_int.h), so that
 * `enrollbridge config-keys` and the test that holds docs/configuration.md
 * and docs/config.schema.json complete cannot drift from the parser. A new
 * object gets its list here too; "[]" in a path stands for a list's items.
 * A route's enrollment, mdm and esso are read by the tenant's own parsers
 * and so accept the tenant's keys (minus mdm's tenant-wide ones).
 */
#include "core/config_int.h"

#include <stdio.h>

static const struct {
	const char *file; /* "main" or "tenant" */
	const char *path; /* the object's key path, "" for the top level */
	const char *const *keys;
} keysets[] = {
    {"main", "", eb_cfg_keys_main},
    {"main", "tls", eb_cfg_keys_tls},
    {"main", "limits", eb_cfg_keys_limits},
    {"main", "log", eb_cfg_keys_log},
    {"tenant", "", eb_cfg_keys_tenant},
    {"tenant", "enrollment", eb_cfg_keys_enrollment},
    {"tenant", "enrollment.by_model_family", eb_cfg_keys_by_model_family},
    {"tenant", "idp", NULL}, /* eb_cfg_idp_keys: the providers' too */
    {"tenant", "managed_apple_id", eb_cfg_keys_managed_apple_id},
    {"tenant", "access", eb_cfg_keys_access},
    {"tenant", "tokens", eb_cfg_keys_tokens},
    {"tenant", "oauth2", eb_cfg_keys_oauth2},
    {"tenant", "mdm", eb_cfg_keys_mdm},
    {"tenant", "mdm.profile", eb_cfg_keys_mdm_profile},
    {"tenant", "mdm.clients[]", eb_cfg_keys_mdm_client},
    {"tenant", "esso", eb_cfg_keys_esso},
    {"tenant", "esso.developer", eb_cfg_keys_esso_developer},
    {"tenant", "apple_business", eb_cfg_keys_apple_business},
    {"tenant", "restrictions", eb_cfg_keys_restrictions},
    {"tenant", "restrictions.min_os_version", eb_cfg_keys_min_os_version},
    {"tenant", "scim", eb_cfg_keys_scim},
    {"tenant", "routes[]", eb_cfg_keys_route},
    {"tenant", "routes[].match", eb_cfg_keys_route_match},
    {"tenant", "branding", eb_cfg_keys_branding},
    {"tenant", "branding.support", eb_cfg_keys_branding_support},
};

int
eb_config_keys_write(FILE *fp)
{
	const char *idp[EB_CFG_MAX_IDP_KEYS];
	const char *const *keys;
	size_t i, j;

	if (eb_cfg_idp_keys(idp, EB_CFG_MAX_IDP_KEYS) == -1)
		return -1;
	for (i = 0; i < sizeof(keysets) / sizeof(keysets[0]); i++) {
		keys = keysets[i].keys != NULL ? keysets[i].keys : idp;
		for (j = 0; keys[j] != NULL; j++)
			if (fprintf(fp, "%s\t%s%s%s\n", keysets[i].file,
			            keysets[i].path,
			            keysets[i].path[0] ? "." : "", keys[j]) < 0)
				return -1;
	}
	return fflush(fp) == 0 ? 0 : -1;
}
