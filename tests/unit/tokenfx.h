/*
 * The fixture of the token unit tests (test_token.c, test_bearer_cache.c):
 * a temporary directory holding a configuration (tenant acme, and tenant
 * other when asked), a SQLite store and a signer. Include after cmocka.
 */
#ifndef EB_TEST_TOKENFX_H
#define EB_TEST_TOKENFX_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fx_dir.h"
#include "core/config.h"
#include "store/store.h"
#include "token/token.h"

#define MAX_TTL 3600

struct fx {
	char dir[256];
	char db[320];
	char cfgpath[320];
	char changed[320]; /* state_dir/store.changed */
	struct eb_store *store;
	struct eb_config *cfg;
	const struct eb_tenant *acme, *other;
	uint8_t seal[32];
	struct eb_signer *s;
};

static inline void
tokenfx_write(const char *dir, const char *name, const char *text)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

#define TENANT_FMT                                                             \
	"{\"id\":\"%s\",\"domains\":[\"%s.example\"],"                         \
	"\"enrollment\":{\"default\":\"byod\"},"                               \
	"\"auth_method\":\"apple-as-web\","                                    \
	"\"idp\":{\"type\":\"oidc\",\"issuer\":\"https://idp.%s.example\","    \
	"\"client_id\":\"c\",\"client_secret\":\"s\"},"                        \
	"\"managed_apple_id\":{\"claim\":\"email\",\"domain_map\":"            \
	"{\"%s.example\":\"appleid.%s.example\"}}}"

/*
 * A fresh fixture in *state under $EB_BINARY_DIR/<name>-XXXXXX. with_other
 * adds tenant other; watch makes state_dir at once and has the store
 * watch state_dir/store.changed, as the server does. 0 or -1.
 */
static inline int
tokenfx_setup(void **state, const char *name, int with_other, int watch)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	const char *base = getenv("EB_BINARY_DIR");
	char path[512], buf[1024], err[512];
	struct eb_config_error cerr;

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "%s/%s-XXXXXX", base ? base : "/tmp",
	         name);
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/tenants", fx->dir);
	if (mkdir(path, 0700) != 0)
		return -1;
	if (watch) {
		snprintf(buf, sizeof(buf), "%s/state", fx->dir);
		if (mkdir(buf, 0700) != 0)
			return -1;
	}
	snprintf(fx->db, sizeof(fx->db), "%s/eb.db", fx->dir);
	snprintf(fx->changed, sizeof(fx->changed), "%s/state/store.changed",
	         fx->dir);
	snprintf(buf, sizeof(buf),
	         "{\"public_url\":\"https://eb.example.com\","
	         "\"database\":\"%s\",\"state_dir\":\"%s/state\","
	         "\"tenants_dir\":\"tenants\"}",
	         fx->db, fx->dir);
	tokenfx_write(fx->dir, "main.json", buf);
	snprintf(buf, sizeof(buf), TENANT_FMT, "acme", "acme", "acme", "acme",
	         "acme");
	tokenfx_write(path, "acme.json", buf);
	if (with_other) {
		snprintf(buf, sizeof(buf), TENANT_FMT, "other", "other",
		         "other", "other", "other");
		tokenfx_write(path, "other.json", buf);
	}
	snprintf(fx->cfgpath, sizeof(fx->cfgpath), "%s/main.json", fx->dir);
	memset(&cerr, 0, sizeof(cerr));
	if ((fx->cfg = eb_config_load(fx->cfgpath, &cerr)) == NULL) {
		print_error("config: %s %s %s\n", cerr.file, cerr.key,
		            cerr.reason);
		return -1;
	}
	fx->acme = eb_config_tenant(fx->cfg, "acme");
	fx->other = eb_config_tenant(fx->cfg, "other");
	if ((fx->store = eb_store_open(NULL, fx->db, err, sizeof(err))) ==
	    NULL) {
		print_error("store: %s\n", err);
		return -1;
	}
	/* as the server does (main.c): watch, do not announce */
	if (watch && eb_store_set_change_file(fx->store, fx->changed, 0) != 0)
		return -1;
	memset(fx->seal, 0x5a, sizeof(fx->seal));
	fx->s = eb_signer_open(fx->store, fx->seal, MAX_TTL, err, sizeof(err));
	if (fx->s == NULL) {
		print_error("signer: %s\n", err);
		return -1;
	}
	*state = fx;
	return 0;
}

static inline int
tokenfx_teardown(void **state)
{
	struct fx *fx = *state;

	eb_signer_close(fx->s);
	eb_store_close(fx->store);
	eb_config_unref(fx->cfg);
	fx_rmtree(fx->dir);
	free(fx);
	return 0;
}

#endif
