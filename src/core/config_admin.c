/*
 * The main file's operations keys: "admin_token", the bearer token the
 * admin API (handle/admin.c) requires, a secret reference like every other
 * secret and long enough that guessing it is out of the question (it can
 * end anyone's access and rotate the signing keys); "audit_retention", how
 * long audit events are kept; "audit_stream", where audit events are also
 * written as JSON lines for a SIEM. "admin_listen" is parsed with "listen"
 * (config.c).
 */
#include "core/config_int.h"

#include <string.h>

#include "core/mem.h"

#define ADMIN_TOKEN_MIN  32 /* bytes */
#define ADMIN_TOKEN_MAX  4096
#define AUDIT_RETENTION  (90LL * 86400) /* default: 90 days */
#define AUDIT_RETAIN_MAX (10LL * 366 * 86400)

int
eb_cfg_parse_admin(struct eb_cfg_ctx *c, const json_t *root,
                   struct eb_config *cfg)
{
	long long retention = AUDIT_RETENTION;
	char *s = NULL;

	if (eb_cfg_secret_get(c, root, NULL, "admin_token", 0,
	                      &cfg->admin_token) == -1)
		return -1;
	if (cfg->admin_token != NULL &&
	    (strlen(cfg->admin_token) < ADMIN_TOKEN_MIN ||
	     strlen(cfg->admin_token) > ADMIN_TOKEN_MAX))
		return eb_cfg_fail(c, NULL, "admin_token",
		                   "must be %d to %d bytes long",
		                   ADMIN_TOKEN_MIN, ADMIN_TOKEN_MAX);
	if (eb_cfg_int(c, root, NULL, "audit_retention", 1, AUDIT_RETAIN_MAX,
	               &retention) == -1)
		return -1;
	cfg->audit_retention = (int64_t)retention;
	if (eb_cfg_str(c, root, NULL, "audit_stream", 0, EB_CFG_NONEMPTY, &s) ==
	    -1)
		return -1;
	if (s == NULL)
		return 0;
	if (strcmp(s, "stdout") == 0) {
		cfg->audit_stream = s;
		return 0;
	}
	eb_free(s);
	return eb_cfg_path(c, root, NULL, "audit_stream", 0,
	                   &cfg->audit_stream);
}
