/*
 * The keys command (keys.h): list and rotate the token signing keys. It
 * works on the store directly, with the seal key ring, so it runs beside
 * live servers; they notice a rotation on their own. `rotate
 * --activate-in SECONDS` publishes the new key at once and signs with it
 * only from then on: with several replicas (or MDMs caching the JWKS) a
 * delay of 330 s (the JWKS max-age of 300 s, two lazy refreshes and a
 * margin) means no token is signed by a key a verifier has not seen.
 */
#include "cli/keys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "cli/remote.h"
#include "core/config.h"
#include "core/sealring.h"
#include "core/statedir.h"
#include "jose/jose.h"
#include "jose/seal.h"
#include "grant/manage.h"
#include "store/store.h"
#include "token/token.h"

static void
usage(void)
{
	fprintf(stderr,
	        "usage: enrollbridge keys list -c FILE\n"
	        "       enrollbridge keys rotate -c FILE [--activate-in "
	        "SECONDS]\n"
	        "       (--server URL [--token-file F] instead of -c FILE: "
	        "through the admin API)\n");
}

/* Longest --activate-in: a day (a longer delay is a mistake). */
#define ACTIVATE_IN_MAX 86400

/* SECONDS of --activate-in, 0..ACTIVATE_IN_MAX; -1 (said) when bad. */
static int64_t
seconds(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < 0 ||
	    v > ACTIVATE_IN_MAX) {
		fprintf(stderr,
		        "keys: --activate-in takes whole seconds, 0 to %d\n",
		        ACTIVATE_IN_MAX);
		return -1;
	}
	return (int64_t)v;
}

/*
 * "-c FILE" / "--config FILE" / "--config=FILE" after the action, and for
 * rotate "--activate-in SECONDS" (*activate_in; 0 when not given).
 */
static const char *
config_path(int argc, char **argv, int64_t *activate_in,
            struct eb_cli_remote *r)
{
	const char *path = NULL;
	int i, ro;

	*activate_in = 0;
	for (i = 2; i < argc; i++) {
		if ((ro = eb_cli_remote_opt(argc, argv, &i, r)) == -1)
			return NULL;
		if (ro == 1)
			continue;
		if ((strcmp(argv[i], "-c") == 0 ||
		     strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc)
			path = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			path = argv[i] + 9;
		else if (strcmp(argv[1], "rotate") == 0 &&
		         strcmp(argv[i], "--activate-in") == 0 &&
		         i + 1 < argc) {
			if ((*activate_in = seconds(argv[++i])) < 0)
				return NULL;
		} else if (strcmp(argv[1], "rotate") == 0 &&
		           strncmp(argv[i], "--activate-in=", 14) == 0) {
			if ((*activate_in = seconds(argv[i] + 14)) < 0)
				return NULL;
		} else {
			fprintf(stderr, "keys: %s is not an option\n", argv[i]);
			return NULL;
		}
	}
	if ((path == NULL) == (r->server == NULL)) {
		fprintf(stderr,
		        "keys: one of -c FILE and --server URL is required\n");
		return NULL;
	}
	return path != NULL ? path : r->server;
}

static void
iso(int64_t t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "-");
}

static int
list(struct eb_store *store, const struct eb_seal_ring *ring)
{
	struct eb_store_key_list l;
	char created[32], not_after[32];
	/* a one-shot command: no root context, so the real time */
	int64_t now = (int64_t)time(NULL);
	size_t i;
	int have_current = 0;

	if (eb_store_key_list(store, NULL, &l) != EB_STORE_OK) {
		fprintf(stderr, "keys: cannot list the signing keys\n");
		return 1;
	}
	for (i = 0; i < l.n; i++) {
		const struct eb_store_key *k = &l.v[i];
		const char *state;
		int usable;

		if (k->tenant != NULL && k->tenant[0] != '\0')
			continue;
		state =
		    eb_manage_key_state(ring, k, now, &have_current, &usable);
		iso(k->created, created, sizeof(created));
		iso(k->not_after, not_after, sizeof(not_after));
		printf("%s %s %s %s%s\n", k->kid, state, created, not_after,
		       usable ? "" : " unusable");
	}
	eb_store_key_list_finish(&l);
	return 0;
}

static int
rotate(struct eb_store *store, const struct eb_seal_ring *ring,
       const struct eb_config *cfg, int64_t activate_in)
{
	char kid[EB_JOSE_MAX_KID + 1], err[256];

	if (eb_signer_rotate_ring(store, ring, eb_signer_max_ttl(cfg),
	                          activate_in, kid, sizeof(kid), err,
	                          sizeof(err)) != 0) {
		fprintf(stderr, "keys: rotation failed: %s\n", err);
		return 1;
	}
	printf("%s\n", kid);
	return 0;
}

/* The listing of list() from the admin API's answer. */
static int
list_remote(const struct eb_cli_remote *r)
{
	char created[32], not_after[32];
	json_t *out = NULL, *k;
	size_t i;

	if (eb_cli_remote_call(r, "keys", "GET", "/admin/v1/keys", NULL,
	                       &out) != 200) {
		json_decref(out);
		return 1;
	}
	json_array_foreach(json_object_get(out, "keys"), i, k)
	{
		iso(json_integer_value(json_object_get(k, "created")), created,
		    sizeof(created));
		iso(json_integer_value(json_object_get(k, "not_after")),
		    not_after, sizeof(not_after));
		printf("%s %s %s %s%s\n",
		       json_string_value(json_object_get(k, "kid")),
		       json_string_value(json_object_get(k, "state")), created,
		       not_after,
		       json_is_true(json_object_get(k, "usable"))
		           ? ""
		           : " unusable");
	}
	json_decref(out);
	return 0;
}

static int
rotate_remote(const struct eb_cli_remote *r, int64_t activate_in)
{
	json_t *body =
	    json_pack("{s:I}", "activate_in", (json_int_t)activate_in);
	json_t *out = NULL;
	int rc;

	if (body == NULL)
		return 1;
	rc = eb_cli_remote_call(r, "keys", "POST", "/admin/v1/keys/rotate",
	                        body, &out);
	json_decref(body);
	if (rc == 200)
		printf("%s\n", json_string_value(json_object_get(out, "kid")));
	json_decref(out);
	return rc == 200 ? 0 : 1;
}

int
eb_cli_keys(int argc, char **argv)
{
	struct eb_config_error cerr;
	struct eb_config *cfg = NULL;
	struct eb_store *store = NULL;
	const char *path;
	struct eb_seal_ring *ring = NULL;
	char err[512];
	struct eb_cli_remote remote;
	int64_t activate_in;
	int rc = 1, do_rotate;

	if (argc < 2 ||
	    (strcmp(argv[1], "list") != 0 && strcmp(argv[1], "rotate") != 0)) {
		usage();
		return 2;
	}
	do_rotate = strcmp(argv[1], "rotate") == 0;
	memset(&remote, 0, sizeof(remote));
	if ((path = config_path(argc, argv, &activate_in, &remote)) == NULL) {
		usage();
		return 2;
	}
	if (remote.server != NULL)
		return do_rotate ? rotate_remote(&remote, activate_in)
		                 : list_remote(&remote);
	memset(&cerr, 0, sizeof(cerr));
	if ((cfg = eb_config_load(path, &cerr)) == NULL) {
		fprintf(stderr, "keys: %s: %s: %s\n",
		        cerr.file[0] ? cerr.file : path,
		        cerr.key[0] ? cerr.key : "-", cerr.reason);
		return 1;
	}
	if (eb_statedir_prepare(cfg->state_dir, err, sizeof(err)) == -1 ||
	    (ring = eb_sealring_load(cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "keys: %s\n", err);
		goto out;
	}
	if ((store = eb_store_open_config(cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "keys: %s: database: %s\n", cfg->file, err);
		goto out;
	}
	rc = do_rotate ? rotate(store, ring, cfg, activate_in)
	               : list(store, ring);
out:
	eb_seal_ring_free(ring);
	eb_store_close(store);
	eb_config_unref(cfg);
	return rc;
}
