/*
 * Fuzz target for the configuration loader: the input becomes the only
 * tenant file next to a fixed, valid main file, and is loaded and freed.
 * It must never crash, hang or leak, whatever the bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"

static char dir[64];
static char main_path[128];
static char tenant_path[128];

static void
cleanup(void)
{
	char p[128];

	unlink(tenant_path);
	unlink(main_path);
	snprintf(p, sizeof(p), "%s/tenants", dir);
	rmdir(p);
	rmdir(dir);
}

static int
init(void)
{
	static const char main_json[] =
	    "{\"public_url\": \"https://eb.example.com\", "
	    "\"tenants_dir\": \"tenants\"}\n";
	char p[128];
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/eb-fuzz-config-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(p, sizeof(p), "%s/tenants", dir);
	snprintf(main_path, sizeof(main_path), "%s/config.json", dir);
	snprintf(tenant_path, sizeof(tenant_path), "%s/tenants/t.json", dir);
	if (mkdir(p, 0700) == -1 || (f = fopen(main_path, "w")) == NULL)
		return -1;
	fputs(main_json, f);
	fclose(f);
	atexit(cleanup);
	/* the example seeds take their secrets from the environment */
	setenv("ENTRA_CLIENT_SECRET", "x", 0);
	setenv("GOOGLE_CLIENT_SECRET", "x", 0);
	setenv("OIDC_CLIENT_SECRET", "x", 0);
	setenv("MDM_INTROSPECT_SECRET", "x", 0);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct eb_config_error err;
	struct eb_config *cfg;
	FILE *f;

	if (!ready) {
		if (init() == -1)
			abort();
		ready = 1;
	}
	if ((f = fopen(tenant_path, "w")) == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	cfg = eb_config_load(main_path, &err);
	if (cfg == NULL && err.reason[0] == '\0')
		abort(); /* a failure must always say why */
	eb_config_unref(cfg);
	return 0;
}
