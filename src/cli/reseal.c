/*
 * The reseal command (reseal.h). It opens the store as every other command
 * does and runs beside live servers: each value is opened under the ring,
 * sealed anew under the first key's at-rest subkey, and written back only
 * while the row still holds what was read (a compare and swap), so a
 * renewal that stores a newer upstream token meanwhile wins, and the row is
 * re-read and tried again. The associated data is the row's own name (the
 * grant id, the kid), as the server seals them. Nothing here changes what a
 * bearer check reads (the same secrets, sealed anew), so no change is
 * announced to running servers (cli/grants.c). No secret, plaintext or
 * sealed, is ever printed: only grant ids and kids.
 */
#include "cli/reseal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cliopt.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/sealring.h"
#include "core/statedir.h"
#include "jose/seal.h"
#include "store/store.h"

#define BATCH_DEFAULT 100
#define BATCH_MAX     10000
/* attempts per row when servers keep changing it under us */
#define TRIES 5

#define USAGE "usage: enrollbridge reseal -c FILE [--batch N] [--dry-run]\n"

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    USAGE
	    "\n"
	    "Re-encrypt what the store keeps sealed under an older seal key\n"
	    "or format with the first key of seal_keys: every grant's\n"
	    "upstream refresh token (N grants at a time, default %d) and\n"
	    "every signing key's private key. Safe beside running servers: a\n"
	    "value changed meanwhile is re-read, never overwritten. A rotated\n"
	    "refresh token's successor is left as it is: it is kept only for\n"
	    "its 30-second grace window. --dry-run counts and checks that\n"
	    "everything opens, and writes nothing. Exits 1 when a value opens\n"
	    "under no key of the ring, or cannot be written.\n",
	    BATCH_DEFAULT);
}

/* One kind of sealed value: where it lives and how to swap it. */
struct kind {
	const char *what;  /* "grant", "signing key" */
	const char *field; /* what is sealed */
	/* the row's value now: OK with *blob (NULL: none), NOT_FOUND, ERROR */
	int (*reread)(struct eb_store *, const char *, uint8_t **, size_t *);
	int (*swap)(struct eb_store *, const char *, const uint8_t *, size_t,
	            const uint8_t *, size_t);
};

struct run {
	struct eb_store *store;
	const struct eb_seal_ring *ring;
	size_t batch;
	int dry;
};

/* name when it prints safely (ours always do), a placeholder otherwise */
static const char *
shown(const char *name)
{
	const char *p;

	for (p = name; *p != '\0'; p++)
		if (*p < 0x21 || *p > 0x7e)
			return "(unprintable name)";
	return p - name <= 128 ? name : "(overlong name)";
}

static int
grant_reread(struct eb_store *s, const char *id, uint8_t **blob, size_t *len)
{
	struct eb_store_grant g;
	int rc;

	*blob = NULL;
	*len = 0;
	if ((rc = eb_store_grant_get(s, id, &g)) == EB_STORE_OK) {
		*blob = g.upstream_refresh_token; /* taken over */
		*len = g.upstream_refresh_token_len;
		g.upstream_refresh_token = NULL;
	}
	eb_store_grant_finish(&g);
	return rc;
}

static int
key_reread(struct eb_store *s, const char *kid, uint8_t **blob, size_t *len)
{
	struct eb_store_key_list l;
	size_t i;
	int rc;

	*blob = NULL;
	*len = 0;
	if ((rc = eb_store_key_list(s, NULL, &l)) != EB_STORE_OK)
		return rc;
	rc = EB_STORE_NOT_FOUND;
	for (i = 0; i < l.n; i++)
		if (l.v[i].kid != NULL && strcmp(l.v[i].kid, kid) == 0) {
			*blob = l.v[i].private_key; /* taken over */
			*len = l.v[i].private_key_len;
			l.v[i].private_key = NULL;
			rc = EB_STORE_OK;
			break;
		}
	eb_store_key_list_finish(&l);
	return rc;
}

static const struct kind GRANT = {"grant", "upstream refresh token",
                                  grant_reread, eb_store_grant_reseal};
static const struct kind KEY = {"signing key", "private key", key_reread,
                                eb_store_key_reseal};

/*
 * Open blob (sealed for name) under the ring: -1 when it does not open or
 * cannot be sealed anew (said on stderr), 0 when it is current, 1 when it
 * wants re-sealing, with the new blob in *next unless dry.
 */
static int
prepare(const struct run *r, const struct kind *k, const char *name,
        const uint8_t *blob, size_t len, uint8_t **next, size_t *nlen)
{
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	int stale = 0, rc;

	*next = NULL;
	if (eb_seal_ring_open(r->ring, EB_SEAL_AT_REST, name, strlen(name),
	                      blob, len, &pt, &ptlen, &stale) != 0) {
		fprintf(stderr,
		        "reseal: %s %s: the sealed %s opens under no key of "
		        "seal_keys (add the key it was sealed with back to "
		        "seal_keys)\n",
		        k->what, shown(name), k->field);
		return -1;
	}
	rc = stale;
	if (stale && !r->dry &&
	    eb_seal_ring_seal(r->ring, EB_SEAL_AT_REST, name, strlen(name), pt,
	                      ptlen, next, nlen) != 0) {
		fprintf(stderr, "reseal: %s %s: cannot seal the %s anew\n",
		        k->what, shown(name), k->field);
		rc = -1;
	}
	eb_free_secret(pt, ptlen + 1);
	return rc;
}

/* Bring one row's value (blob, as listed) to the current form. */
static void
reseal_row(const struct run *r, const struct kind *k,
           struct eb_reseal_counts *c, const char *name, const uint8_t *blob,
           size_t len)
{
	uint8_t *cur = NULL, *next = NULL;
	size_t nlen = 0;
	int tries, rc, changed = 0;

	for (tries = 1;; tries++) {
		if ((rc = prepare(r, k, name, blob, len, &next, &nlen)) <= 0 ||
		    r->dry) {
			if (rc < 0)
				c->failed++;
			else if (rc == 0)
				c->current++;
			else
				c->resealed++; /* dry: to reseal */
			break;
		}
		rc = k->swap(r->store, name, blob, len, next, nlen);
		eb_free(next);
		next = NULL;
		if (rc == EB_STORE_OK) {
			c->resealed++;
			break;
		}
		if (rc != EB_STORE_CONFLICT && rc != EB_STORE_NOT_FOUND) {
			fprintf(stderr, "reseal: %s %s: cannot write: %s\n",
			        k->what, shown(name), eb_store_strerror(rc));
			c->failed++;
			break;
		}
		/* a server changed it in between: read it again */
		changed = 1;
		if (tries == TRIES) {
			fprintf(stderr,
			        "reseal: %s %s: changed %d times while being "
			        "resealed; run reseal again\n",
			        k->what, shown(name), TRIES);
			c->failed++;
			break;
		}
		eb_free(cur);
		rc = k->reread(r->store, name, &cur, &len);
		if (rc == EB_STORE_NOT_FOUND ||
		    (rc == EB_STORE_OK && cur == NULL))
			break; /* gone, or erased by its end: nothing to do */
		if (rc != EB_STORE_OK) {
			fprintf(stderr, "reseal: %s %s: cannot read: %s\n",
			        k->what, shown(name), eb_store_strerror(rc));
			c->failed++;
			break;
		}
		blob = cur;
	}
	c->changed += (size_t)changed;
	eb_free(cur);
}

/* Every grant holding an upstream refresh token, a page at a time. */
static int
grants(const struct run *r, struct eb_reseal_counts *c)
{
	struct eb_store_grant_list l;
	char *after = NULL;
	size_t i, n;
	int rc = 0;

	do {
		if (eb_store_grant_list_sealed(r->store, after, r->batch, &l) !=
		    EB_STORE_OK) {
			fprintf(stderr, "reseal: cannot list the grants\n");
			c->failed++;
			rc = -1;
			break;
		}
		for (i = 0; i < l.n; i++)
			if (l.v[i].id != NULL &&
			    l.v[i].upstream_refresh_token != NULL)
				reseal_row(r, &GRANT, c, l.v[i].id,
				           l.v[i].upstream_refresh_token,
				           l.v[i].upstream_refresh_token_len);
		n = l.n;
		eb_free(after);
		after = NULL;
		if (n > 0 && (after = eb_strdup(l.v[n - 1].id)) == NULL) {
			fprintf(stderr, "reseal: out of memory\n");
			c->failed++;
			rc = -1;
			n = 0;
		}
		eb_store_grant_list_finish(&l);
	} while (n == r->batch);
	eb_free(after);
	return rc;
}

/* Every signing key with a private half, of every tenant. */
static int
keys(const struct run *r, struct eb_reseal_counts *c)
{
	struct eb_store_key_list l;
	size_t i;

	if (eb_store_key_list(r->store, NULL, &l) != EB_STORE_OK) {
		fprintf(stderr, "reseal: cannot list the signing keys\n");
		c->failed++;
		return -1;
	}
	for (i = 0; i < l.n; i++)
		if (l.v[i].kid != NULL && l.v[i].private_key != NULL)
			reseal_row(r, &KEY, c, l.v[i].kid, l.v[i].private_key,
			           l.v[i].private_key_len);
	eb_store_key_list_finish(&l);
	return 0;
}

int
eb_reseal_run(struct eb_store *store, const struct eb_seal_ring *ring,
              size_t batch, int dry, struct eb_reseal_report *rep)
{
	struct run r = {store, ring, batch, dry};

	memset(rep, 0, sizeof(*rep));
	if (store == NULL || eb_seal_ring_count(ring) == 0 || batch == 0) {
		rep->grants.failed++;
		return -1;
	}
	grants(&r, &rep->grants);
	keys(&r, &rep->keys);
	return rep->grants.failed + rep->keys.failed > 0 ? -1 : 0;
}

struct args {
	const char *config;
	size_t batch;
	int dry;
};

/* 0, 1 for --help (printed), or -1 on a usage error (said). */
static int
parse_args(int argc, char **argv, struct args *a)
{
	const char *v;
	char *end;
	unsigned long n;
	int i, missing = 0;

	memset(a, 0, sizeof(*a));
	a->batch = BATCH_DEFAULT;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 1;
		}
		if (strcmp(argv[i], "--dry-run") == 0)
			a->dry = 1;
		else if ((v = eb_cli_optval(argc, argv, &i, "-c", &missing)) !=
		             NULL ||
		         (v = eb_cli_optval(argc, argv, &i, "--config",
		                            &missing)) != NULL)
			a->config = v;
		else if ((v = eb_cli_optval(argc, argv, &i, "--batch",
		                            &missing)) != NULL) {
			errno = 0;
			n = strtoul(v, &end, 10);
			if (v[0] < '0' || v[0] > '9' || *end != '\0' ||
			    errno != 0 || n < 1 || n > BATCH_MAX) {
				fprintf(stderr,
				        "reseal: --batch: a number from 1 to "
				        "%d\n",
				        BATCH_MAX);
				return -1;
			}
			a->batch = (size_t)n;
		} else {
			fprintf(stderr, "reseal: %s: %s\n", argv[i],
			        missing ? "needs a value" : "not an option");
			return -1;
		}
	}
	if (a->config == NULL) {
		fprintf(stderr, "reseal: -c FILE is required\n");
		return -1;
	}
	return 0;
}

static void
print_counts(const char *kind, const struct eb_reseal_counts *c, int dry)
{
	printf("%s: %zu %s, %zu already current, %zu changed concurrently "
	       "(retried), %zu failed\n",
	       kind, c->resealed, dry ? "to reseal" : "resealed", c->current,
	       c->changed, c->failed);
}

int
eb_cli_reseal(int argc, char **argv)
{
	struct eb_reseal_report rep;
	struct eb_config_error cerr;
	struct eb_config *cfg;
	struct eb_store *store = NULL;
	struct eb_seal_ring *ring = NULL;
	struct args a;
	char err[512];
	int rc = 1;

	switch (parse_args(argc, argv, &a)) {
	case 1:
		return 0;
	case -1:
		fputs(USAGE, stderr);
		return 2;
	}
	memset(&cerr, 0, sizeof(cerr));
	if ((cfg = eb_config_load(a.config, &cerr)) == NULL) {
		fprintf(stderr, "reseal: %s: %s: %s\n",
		        cerr.file[0] ? cerr.file : a.config,
		        cerr.key[0] ? cerr.key : "-", cerr.reason);
		return 1;
	}
	eb_log_init(cfg->log_level, cfg->log_json);
	if (eb_statedir_prepare(cfg->state_dir, err, sizeof(err)) == -1 ||
	    (ring = eb_sealring_load(cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "reseal: %s: %s\n", cfg->file, err);
		goto out;
	}
	if ((store = eb_store_open_config(cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "reseal: %s: database: %s\n", cfg->file, err);
		goto out;
	}
	rc = eb_reseal_run(store, ring, a.batch, a.dry, &rep) == 0 ? 0 : 1;
	print_counts("grants", &rep.grants, a.dry);
	print_counts("signing keys", &rep.keys, a.dry);
	fflush(stdout);
out:
	eb_seal_ring_free(ring);
	eb_store_close(store);
	eb_config_unref(cfg);
	return rc;
}
