/*
 * TLS for the HTTP server: the certificate and key of the main file's
 * "tls", re-read on SIGHUP, and the protocol policy (tls.min_version,
 * tls.priorities). The only user of GnuTLS (the library libmicrohttpd
 * runs TLS with). New handshakes take the current certificate; a
 * connection keeps the one it began with.
 */
#ifndef EB_TLS_H
#define EB_TLS_H

#include <stddef.h>

struct eb_config;
struct eb_tls;
struct MHD_OptionItem;

/* The most certificates in tls.cert (the leaf and its chain). */
#define EB_TLS_MAX_CHAIN 8

/*
 * Check tls.min_version ("1.2" or "1.3"; NULL: "1.2") and tls.priorities
 * (a GnuTLS priority string without protocol versions; NULL: "NORMAL").
 * Returns 0, or -1 with the key ("min_version" or "priorities") in *key
 * and a reason in why.
 */
int eb_tls_check_policy(const char *min_version, const char *priorities,
                        const char **key, char *why, size_t whylen);
/*
 * Check that cert (PEM, leaf first) and key (PEM) load, match and the leaf
 * has not expired. Returns 0, or -1 with "FILE: reason" in err.
 */
int eb_tls_check_pair(const char *cert, const char *key, char *err,
                      size_t errlen);

/*
 * Load cfg's tls pair and policy. Returns NULL with "FILE: tls: reason" in
 * err. Free with eb_tls_destroy (NULL is a no-op).
 */
struct eb_tls *eb_tls_create(const struct eb_config *cfg, char *err,
                             size_t errlen);
void eb_tls_destroy(struct eb_tls *t);
/*
 * Re-read cfg's pair: new handshakes get it. Returns 1 when it changed, 0
 * when the files hold what is served, -1 (the old pair keeps serving) with
 * "FILE: reason" in err. Call from one thread at a time.
 */
int eb_tls_reload(struct eb_tls *t, const struct eb_config *cfg, char *err,
                  size_t errlen);
/* 1 when cfg's policy differs from the one t was created with. */
int eb_tls_policy_differs(const struct eb_tls *t, const struct eb_config *cfg);
/* Make t the one this thread's handshakes use (each worker thread). */
void eb_tls_bind(struct eb_tls *t);
/*
 * Fill opt (room for n >= 2) with the daemon options for t (certificate
 * callback, priorities); returns how many were filled.
 */
size_t eb_tls_mhd_options(struct eb_tls *t, struct MHD_OptionItem *opt,
                          size_t n);

#endif
