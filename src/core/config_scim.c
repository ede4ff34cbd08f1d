/*
 * A tenant's "scim" section: the bearer token its SCIM 2.0 endpoint
 * (handle/scim.c) requires of a provisioning client. A secret reference
 * like every other secret; it must be long enough that guessing it is out
 * of the question, since it lets the caller end anyone's access.
 */
#include "core/config_int.h"

#include <string.h>

#include "core/mem.h"

#define SCIM_TOKEN_MIN 16 /* bytes */
#define SCIM_TOKEN_MAX 4096

const char *const eb_cfg_keys_scim[] = {"token", NULL};

int
eb_cfg_parse_scim(struct eb_cfg_ctx *c, const json_t *root, struct eb_tenant *t)
{
	const char *p = "scim";
	struct eb_scim_config *sc;
	json_t *o;

	if (eb_cfg_obj(c, root, NULL, p, &o) == -1)
		return -1;
	if (o == NULL)
		return 0;
	if ((sc = t->scim = eb_calloc(1, sizeof(*sc))) == NULL)
		return eb_cfg_fail(c, NULL, p, "out of memory");
	if (eb_cfg_keys(c, o, p, eb_cfg_keys_scim) == -1 ||
	    eb_cfg_secret_get(c, o, p, "token", 1, &sc->token) == -1)
		return -1;
	sc->token_len = strlen(sc->token);
	if (sc->token_len < SCIM_TOKEN_MIN || sc->token_len > SCIM_TOKEN_MAX)
		return eb_cfg_fail(c, p, "token", "must be %d to %d bytes long",
		                   SCIM_TOKEN_MIN, SCIM_TOKEN_MAX);
	return 0;
}

void
eb_cfg_scim_free(struct eb_scim_config *sc)
{
	if (sc == NULL)
		return;
	eb_free_secret_str(sc->token);
	eb_free(sc);
}
