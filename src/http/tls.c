/*
 * TLS for the HTTP server (tls.h). libmicrohttpd runs TLS with GnuTLS; the
 * certificate is handed over per handshake by a callback, so that SIGHUP can
 * swap it while the daemons run. A pair is a "generation": loaded, checked
 * (the key matches the leaf, the leaf is not expired), then published with
 * one atomic store. A replaced generation is kept until the server stops: a
 * connection that began on it may still use it, and GnuTLS gives no sign
 * when it is done with it. Generations are made only when the files'
 * bytes change, so they number the certificate renewals.
 */
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "http/tls.h"

struct gen {
	struct gen *next; /* older, replaced generations */
	gnutls_pcert_st pcert[EB_TLS_MAX_CHAIN];
	unsigned npcert;
	gnutls_privkey_t key;
	unsigned char digest[32]; /* SHA-256 of the cert and key bytes */
};

struct eb_tls {
	_Atomic(struct gen *) cur;
	struct gen *old;
	char *priorities; /* the full GnuTLS string given to the daemons */
	char *min_version;
	char *user_priorities;
};

/* The handshakes of a worker thread use its server's TLS state: the
 * certificate callback has no argument of its own. */
static _Thread_local struct eb_tls *t_tls;

/* 1 when s names a protocol version ("VERS-" in any case). */
static int
names_versions(const char *s)
{
	for (; *s != '\0'; s++)
		if (strncasecmp(s, "VERS-", 5) == 0)
			return 1;
	return 0;
}

/* The priority string for a policy, or NULL (out of memory). */
static char *
priority_string(const char *min_version, const char *priorities)
{
	const char *vers =
	    min_version != NULL && strcmp(min_version, "1.3") == 0
	        ? ":-VERS-ALL:+VERS-TLS1.3"
	        : ":-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
	const char *base = priorities != NULL ? priorities : "NORMAL";
	size_t n = strlen(base) + strlen(vers) + 1;
	char *s;

	if ((s = eb_malloc(n)) != NULL)
		snprintf(s, n, "%s%s", base, vers);
	return s;
}

int
eb_tls_check_policy(const char *min_version, const char *priorities,
                    const char **key, char *why, size_t whylen)
{
	gnutls_priority_t pc;
	const char *pos = NULL;
	char *s;
	int rc;

	*key = "min_version";
	if (min_version != NULL && strcmp(min_version, "1.2") != 0 &&
	    strcmp(min_version, "1.3") != 0) {
		snprintf(why, whylen, "must be \"1.2\" or \"1.3\"");
		return -1;
	}
	*key = "priorities";
	if (priorities != NULL && names_versions(priorities)) {
		snprintf(why, whylen,
		         "names protocol versions: tls.min_version sets them");
		return -1;
	}
	if ((s = priority_string(min_version, priorities)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	rc = gnutls_priority_init(&pc, s, &pos);
	if (rc == GNUTLS_E_SUCCESS)
		gnutls_priority_deinit(pc);
	else if (pos != NULL && pos >= s && (size_t)(pos - s) < strlen(s))
		snprintf(why, whylen,
		         "not a GnuTLS priority string (at \"%.40s\")", pos);
	else
		snprintf(why, whylen, "not a GnuTLS priority string (%s)",
		         gnutls_strerror(rc));
	eb_free(s);
	return rc == GNUTLS_E_SUCCESS ? 0 : -1;
}

static void
gen_free(struct gen *g)
{
	unsigned i;

	if (g == NULL)
		return;
	for (i = 0; i < g->npcert; i++)
		gnutls_pcert_deinit(&g->pcert[i]);
	if (g->key != NULL)
		gnutls_privkey_deinit(g->key);
	eb_free(g);
}

/* The leaf's key id matches the private key's; 0 or -1 with why. */
static int
gen_key_matches(struct gen *g, const char **why)
{
	unsigned char a[64], b[64];
	size_t al = sizeof(a), bl = sizeof(b);
	gnutls_pubkey_t pub;
	int ok;

	if (gnutls_pubkey_init(&pub) < 0) {
		*why = "out of memory";
		return -1;
	}
	ok = gnutls_pubkey_import_privkey(pub, g->key, 0, 0) == 0 &&
	     gnutls_pubkey_get_key_id(pub, 0, a, &al) == 0 &&
	     gnutls_pubkey_get_key_id(g->pcert[0].pubkey, 0, b, &bl) == 0 &&
	     al == bl && memcmp(a, b, al) == 0;
	gnutls_pubkey_deinit(pub);
	if (!ok)
		*why = "the key does not belong to the certificate";
	return ok ? 0 : -1;
}

/* The leaf is within its validity; 0 or -1 with why. */
static int
gen_valid_now(struct gen *g, const char **why)
{
	gnutls_x509_crt_t crt;
	/* checked at load, before a root context exists: the real time */
	time_t now = time(NULL), from, until;
	int rc;

	if (gnutls_x509_crt_init(&crt) < 0) {
		*why = "out of memory";
		return -1;
	}
	rc =
	    gnutls_x509_crt_import(crt, &g->pcert[0].cert, GNUTLS_X509_FMT_DER);
	from = gnutls_x509_crt_get_activation_time(crt);
	until = gnutls_x509_crt_get_expiration_time(crt);
	gnutls_x509_crt_deinit(crt);
	if (rc < 0)
		*why = "the certificate cannot be read";
	else if (until != (time_t)-1 && until < now)
		*why = "the certificate has expired";
	else if (from != (time_t)-1 && from > now + 300)
		*why = "the certificate is not valid yet";
	else
		return 0;
	return -1;
}

/* Parse the bytes of a pair into g; 0, or -1 with *why and in *bad_key
 * what it is about: 0 the certificate, 1 the key, 2 the two together. */
static int
gen_parse(struct gen *g, const gnutls_datum_t *c, const gnutls_datum_t *k,
          int *bad_key, const char **why)
{
	unsigned n = EB_TLS_MAX_CHAIN;
	int rc;

	*bad_key = 0;
	rc = gnutls_pcert_list_import_x509_raw(
	    g->pcert, &n, c, GNUTLS_X509_FMT_PEM,
	    GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
	if (rc == GNUTLS_E_SHORT_MEMORY_BUFFER) {
		*why = "more certificates than the chain may hold (8)";
		return -1;
	}
	if (rc < 0 || n == 0) {
		*why = rc == GNUTLS_E_CERTIFICATE_LIST_UNSORTED
		           ? "the chain is not in order (leaf first)"
		           : "no PEM certificate in it";
		return -1;
	}
	g->npcert = n;
	*bad_key = 1;
	if (gnutls_privkey_init(&g->key) < 0) {
		*why = "out of memory";
		return -1;
	}
	if (gnutls_privkey_import_x509_raw(g->key, k, GNUTLS_X509_FMT_PEM, NULL,
	                                   0) < 0) {
		*why = "no unencrypted PEM private key in it";
		return -1;
	}
	*bad_key = 0;
	if (gen_valid_now(g, why) == -1)
		return -1;
	*bad_key = 2; /* the pair: named by both files */
	return gen_key_matches(g, why);
}

/* Wipe and free what gnutls_load_file gave. */
static void
datum_free(gnutls_datum_t *d, int secret)
{
	if (d->data == NULL)
		return;
	if (secret)
		gnutls_memset(d->data, 0, d->size);
	gnutls_free(d->data);
	d->data = NULL;
}

/*
 * Load the pair at cert and key. Returns the generation, or NULL with
 * "FILE: reason" in err. When old is given and the bytes are the same,
 * returns old.
 */
static struct gen *
gen_load(const char *cert, const char *key, struct gen *old, char *err,
         size_t errlen)
{
	gnutls_datum_t c = {NULL, 0}, k = {NULL, 0};
	struct gen *g = NULL;
	const char *why = "out of memory";
	int bad_key = 0;
	gnutls_hash_hd_t h;

	if (gnutls_load_file(cert, &c) < 0) {
		snprintf(err, errlen, "%s: cannot read it", cert);
		goto out;
	}
	if (gnutls_load_file(key, &k) < 0) {
		snprintf(err, errlen, "%s: cannot read it", key);
		goto out;
	}
	if ((g = eb_calloc(1, sizeof(*g))) == NULL ||
	    gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0) {
		snprintf(err, errlen, "%s: out of memory", cert);
		goto fail;
	}
	(void)gnutls_hash(h, c.data, c.size);
	(void)gnutls_hash(h, k.data, k.size);
	gnutls_hash_deinit(h, g->digest);
	if (old != NULL && memcmp(old->digest, g->digest, 32) == 0) {
		gen_free(g);
		g = old;
		goto out;
	}
	if (gen_parse(g, &c, &k, &bad_key, &why) == -1) {
		if (bad_key == 2)
			snprintf(err, errlen, "%s with %s: %s", cert, key, why);
		else
			snprintf(err, errlen, "%s: %s", bad_key ? key : cert,
			         why);
		goto fail;
	}
	goto out;
fail:
	gen_free(g);
	g = NULL;
out:
	datum_free(&c, 0);
	datum_free(&k, 1);
	return g;
}

int
eb_tls_check_pair(const char *cert, const char *key, char *err, size_t errlen)
{
	struct gen *g = gen_load(cert, key, NULL, err, errlen);

	gen_free(g);
	return g != NULL ? 0 : -1;
}

struct eb_tls *
eb_tls_create(const struct eb_config *cfg, char *err, size_t errlen)
{
	struct eb_tls *t;
	struct gen *g;
	char why[256];

	if ((t = eb_calloc(1, sizeof(*t))) == NULL)
		goto oom;
	if ((cfg->tls_min_version != NULL &&
	     (t->min_version = eb_strdup(cfg->tls_min_version)) == NULL) ||
	    (cfg->tls_priorities != NULL &&
	     (t->user_priorities = eb_strdup(cfg->tls_priorities)) == NULL) ||
	    (t->priorities = priority_string(cfg->tls_min_version,
	                                     cfg->tls_priorities)) == NULL)
		goto oom;
	if ((g = gen_load(cfg->tls_cert, cfg->tls_key, NULL, why,
	                  sizeof(why))) == NULL) {
		snprintf(err, errlen, "%s: tls: %s", cfg->file, why);
		eb_tls_destroy(t);
		return NULL;
	}
	atomic_store(&t->cur, g);
	return t;
oom:
	snprintf(err, errlen, "%s: tls: out of memory", cfg->file);
	eb_tls_destroy(t);
	return NULL;
}

void
eb_tls_destroy(struct eb_tls *t)
{
	struct gen *g;

	if (t == NULL)
		return;
	gen_free(atomic_load(&t->cur));
	while ((g = t->old) != NULL) {
		t->old = g->next;
		gen_free(g);
	}
	eb_free(t->priorities);
	eb_free(t->min_version);
	eb_free(t->user_priorities);
	eb_free(t);
}

int
eb_tls_reload(struct eb_tls *t, const struct eb_config *cfg, char *err,
              size_t errlen)
{
	struct gen *cur = atomic_load(&t->cur), *g;

	if ((g = gen_load(cfg->tls_cert, cfg->tls_key, cur, err, errlen)) ==
	    NULL)
		return -1;
	if (g == cur)
		return 0;
	atomic_store(&t->cur, g);
	cur->next = t->old; /* handshakes under way may still hold it */
	t->old = cur;
	return 1;
}

static int
str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

int
eb_tls_policy_differs(const struct eb_tls *t, const struct eb_config *cfg)
{
	return str_differs(t->min_version, cfg->tls_min_version) ||
	       str_differs(t->user_priorities, cfg->tls_priorities);
}

void
eb_tls_bind(struct eb_tls *t)
{
	t_tls = t;
}

/* GnuTLS asks for the certificate of a handshake: the current one. */
static int
cert_cb(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
        const gnutls_pk_algorithm_t *pk_algos, int npk_algos,
        gnutls_pcert_st **pcert, unsigned int *npcert, gnutls_privkey_t *key)
{
	struct gen *g;

	(void)session, (void)req_ca_dn, (void)nreqs, (void)pk_algos,
	    (void)npk_algos;
	if (t_tls == NULL || (g = atomic_load(&t_tls->cur)) == NULL)
		return -1;
	*pcert = g->pcert;
	*npcert = g->npcert;
	*key = g->key;
	return 0;
}

size_t
eb_tls_mhd_options(struct eb_tls *t, struct MHD_OptionItem *opt, size_t n)
{
	static gnutls_certificate_retrieve_function2 *const cb = cert_cb;

	if (n < 2)
		return 0;
	opt[0].option = MHD_OPTION_HTTPS_CERT_CALLBACK;
	opt[0].value = 0;
	opt[0].ptr_value = (void *)(uintptr_t)cb;
	opt[1].option = MHD_OPTION_HTTPS_PRIORITIES;
	opt[1].value = 0;
	opt[1].ptr_value = t->priorities;
	return 2;
}
