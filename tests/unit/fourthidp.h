/*
 * A fourth identity-provider type, compiled only into the unit tests
 * (header-only; include after <cmocka.h>): what adding an IdP takes
 * without touching the core. Type "acmeidp", one key of its own,
 * idp.realm (required, no spaces), and a default issuer built from it,
 * https://login.acme.test/<realm>. Register it with
 * eb_provider_register(&fourth_provider) before loading a configuration.
 */
#ifndef EB_TEST_FOURTHIDP_H
#define EB_TEST_FOURTHIDP_H

#include <stdio.h>

#include "core/config_int.h"
#include "core/mem.h"
#include "providers/provider.h"

struct fourth_conf {
	char *realm;
};

static const char *const fourth_keys[] = {"realm", NULL};

static void
fourth_config_free(void *priv)
{
	struct fourth_conf *fc = priv;

	if (fc == NULL)
		return;
	eb_free(fc->realm);
	eb_free(fc);
}

static int
fourth_config_parse(struct eb_cfg_ctx *c, const json_t *o,
                    struct eb_idp_config *idp, void **priv)
{
	struct fourth_conf *fc;
	char iss[512];

	if ((fc = eb_calloc(1, sizeof(*fc))) == NULL)
		return eb_cfg_fail(c, NULL, "idp", "out of memory");
	*priv = fc;
	if (eb_cfg_str(c, o, "idp", "realm", 1, EB_CFG_NOSPACE, &fc->realm) ==
	    -1)
		return -1;
	snprintf(iss, sizeof(iss), "https://login.acme.test/%s", fc->realm);
	return eb_cfg_default_str(c, "idp", "issuer", &idp->issuer, iss);
}

static const struct eb_provider_ops fourth_provider = {
    .type = "acmeidp",
    .config_keys = fourth_keys,
    .config_parse = fourth_config_parse,
    .config_free = fourth_config_free,
};

#endif
