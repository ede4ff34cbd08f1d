/*
 * Private to the configuration loader (config.c, config_util.c,
 * config_io.c, config_tenant.c, config_mdm.c): the parse context that carries
 * the file being read and the first error, and typed getters over jansson
 * values. Every getter leaves its output untouched when the key is absent (so
 * defaults are filled afterwards), fails with the full key path when the value
 * is present but wrong, and never puts a value into an error reason.
 */
#ifndef EB_CONFIG_INT_H
#define EB_CONFIG_INT_H

#include <stddef.h>

#include <jansson.h>

#include "core/config.h"

/* Largest configuration file we read, and the most items in a list. */
#define EB_CFG_MAX_FILE    (1024 * 1024)
#define EB_CFG_MAX_LIST    1024
#define EB_CFG_MAX_STR     4096
#define EB_CFG_MAX_TENANTS 10000
#define EB_CFG_MAX_ROUTES  256
/* mdm.claims: how many names, how long each */
#define EB_CFG_MAX_CLAIMS     32
#define EB_CFG_MAX_CLAIM_NAME 128

struct eb_cfg_ctx {
	const char *file; /* the file being parsed, for errors */
	const char *dir;  /* its folder: relative paths resolve here */
	struct eb_config_error *err;
	/* when set, eb_cfg_read_json adds every file's bytes, under
	 * hash_name, to this EVP_MD_CTX (the configuration's sha256) */
	void *hash;
	const char *hash_name;
	/* when set, put before every key path an error names (a route's
	 * sections: "routes[1]" then "mdm.upstream") */
	const char *keyroot;
};

/* Flags for lists, maps and strings. */
#define EB_CFG_FQDN                                                            \
	0x01 /* a DNS name: checked, lower-cased, final dot dropped */
#define EB_CFG_NONEMPTY 0x02 /* at least one item */
#define EB_CFG_NOSPACE  0x04 /* no white space in items */

/* Flags for URLs. */
#define EB_URL_HTTP                                                            \
	0x01 /* http:// allowed for any host (else loopback only)              \
	      */
#define EB_URL_QUERY    0x02 /* a query string is allowed */
#define EB_URL_NO_SLASH 0x04 /* strip trailing slashes */

/*
 * Record the first error: key is prefix.name (either may be NULL or ""),
 * reason from fmt. Returns -1 so callers can "return eb_cfg_fail(...)".
 */
int eb_cfg_fail(struct eb_cfg_ctx *c, const char *prefix, const char *name,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* "prefix.name" (or just one of them) into out. */
void eb_cfg_key(char *out, size_t outlen, const char *prefix, const char *name);

/*
 * Read a whole regular file of at most max bytes (NUL-terminated; wipe it
 * with eb_free_secret(p, *lenp + 1)), or NULL with *why set.
 */
char *eb_cfg_read_file(const char *path, size_t max, size_t *lenp,
                       const char **why);
/* Read and parse a JSON file whose top level must be an object. */
json_t *eb_cfg_read_json(struct eb_cfg_ctx *c, const char *path);
/* Fail on any key of obj not in the NULL-terminated allowed list. */
int eb_cfg_keys(struct eb_cfg_ctx *c, const json_t *obj, const char *prefix,
                const char *const *allowed);

/* A top-level "$schema" (an editor's hint, ignored) must be a string. */
int eb_cfg_schema_ref(struct eb_cfg_ctx *c, const json_t *root);

int eb_cfg_obj(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
               const char *name, json_t **out);
int eb_cfg_str(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
               const char *name, int required, int flags, char **out);
/* One of names (NULL-terminated); *out is its index. */
int eb_cfg_enum(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
                const char *name, const char *const *names, int *out);
int eb_cfg_int(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
               const char *name, long long min, long long max, long long *out);
int eb_cfg_bool(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
                const char *name, int *out);
int eb_cfg_strlist(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
                   const char *name, int flags, struct eb_strlist *out);
/* An object of strings; kflags/vflags apply EB_CFG_FQDN to keys/values. */
int eb_cfg_kvlist(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
                  const char *name, int kflags, int vflags,
                  struct eb_kvlist *out);
int eb_cfg_url(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
               const char *name, int required, int flags, char **out);
/* A file or folder path, made absolute against c->dir. */
int eb_cfg_path(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
                const char *name, int required, char **out);
/* A secret (inline, "file:", "env:"), resolved; its JSON text is wiped. */
int eb_cfg_secret_get(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
                      const char *name, int required, char **out);
/* The same for a PEM secret: line breaks (CR, LF) allowed. */
int eb_cfg_secret_pem(struct eb_cfg_ctx *c, const json_t *o, const char *prefix,
                      const char *name, int required, char **out);

/* The main file's admin_token, audit_retention and audit_stream
 * (config_admin.c). */
int eb_cfg_parse_admin(struct eb_cfg_ctx *c, const json_t *root,
                       struct eb_config *cfg);
/*
 * The keys each object of the two files accepts (NULL-terminated), defined
 * next to their parsers; config_keys.c lists them all by key path for
 * `enrollbridge config-keys` and the configuration reference's test.
 */
extern const char *const eb_cfg_keys_main[];
extern const char *const eb_cfg_keys_tls[];
extern const char *const eb_cfg_keys_limits[];
extern const char *const eb_cfg_keys_log[];
extern const char *const eb_cfg_keys_tenant[];
extern const char *const eb_cfg_keys_enrollment[];
extern const char *const eb_cfg_keys_by_model_family[];
/*
 * Every idp key, NULL-terminated, into out (n slots): the common ones and
 * each provider's config_keys (providers/provider.h). 0, or -1 when n is
 * too small.
 */
#define EB_CFG_MAX_IDP_KEYS 64
#define EB_CFG_MAX_TYPES    16
int eb_cfg_idp_keys(const char **out, size_t n);
/*
 * Fill idp.scopes, when empty, with the first n of openid, email, profile,
 * offline_access. 0 or -1 (out of memory, reported).
 */
int eb_cfg_default_scopes(struct eb_cfg_ctx *c, struct eb_idp_config *idp,
                          size_t n);
/* 1 when the NULL-terminated list (NULL: empty) holds s. */
int eb_cfg_list_has(const char *const *list, const char *s);
extern const char *const eb_cfg_keys_managed_apple_id[];
extern const char *const eb_cfg_keys_access[];
extern const char *const eb_cfg_keys_tokens[];
extern const char *const eb_cfg_keys_oauth2[];
extern const char *const eb_cfg_keys_mdm[];
extern const char *const eb_cfg_keys_mdm_profile[];
extern const char *const eb_cfg_keys_mdm_client[];
extern const char *const eb_cfg_keys_esso[];
extern const char *const eb_cfg_keys_esso_developer[];
extern const char *const eb_cfg_keys_apple_business[];
extern const char *const eb_cfg_keys_restrictions[];
extern const char *const eb_cfg_keys_min_os_version[];
extern const char *const eb_cfg_keys_scim[];
extern const char *const eb_cfg_keys_route[];
extern const char *const eb_cfg_keys_route_match[];
extern const char *const eb_cfg_keys_branding[];
extern const char *const eb_cfg_keys_branding_support[];

/* The tenant's "branding" into t->branding (config_branding.c). */
int eb_cfg_parse_branding(struct eb_cfg_ctx *c, const json_t *root,
                          struct eb_tenant *t);
void eb_cfg_branding_free(struct eb_branding *b);
/* The WCAG 2 contrast ratio of two "#rrggbb" colours, times 100 (100 to
 * 2100), or -1 when either is not such a colour. */
int eb_cfg_contrast(const char *a, const char *b);

/* The main file's "seal_keys" into cfg (config_seal.c); absent is fine. */
int eb_cfg_parse_seal_keys(struct eb_cfg_ctx *c, const json_t *root,
                           struct eb_config *cfg);
/* Wipe and free cfg's seal keys. */
void eb_config_seal_keys_free(struct eb_config *cfg);

/* Set *out to a copy of v unless it is already set. */
int eb_cfg_default_str(struct eb_cfg_ctx *c, const char *prefix,
                       const char *name, char **out, const char *v);

/*
 * Check a URL: http(s) scheme, a host, optional port and path, no user
 * info or fragment. Returns a fresh copy (scheme and host lower-cased,
 * trailing slashes dropped with EB_URL_NO_SLASH) or NULL with *why set.
 */
char *eb_cfg_check_url(const char *s, int flags, const char **why);
/* 1 when host (no brackets) is 127.0.0.0/8, ::1 or localhost. */
int eb_cfg_is_loopback(const char *host);
/* dir/p, or a copy of p when absolute. */
char *eb_cfg_join(const char *dir, const char *p);

void eb_cfg_strlist_free(struct eb_strlist *l);
void eb_cfg_kvlist_free(struct eb_kvlist *l);
int eb_cfg_strlist_has(const struct eb_strlist *l, const char *s);

/* Parse one tenant file's root object; public_url is the main file's. */
struct eb_tenant *eb_cfg_tenant_parse(struct eb_cfg_ctx *c, json_t *root,
                                      const char *public_url);
void eb_cfg_tenant_free(struct eb_tenant *t);
/* Tenant sections in config_mdm.c (t's auth_method must be parsed). */
int eb_cfg_parse_oauth2(struct eb_cfg_ctx *c, const json_t *root,
                        struct eb_tenant *t);
int eb_cfg_parse_mdm(struct eb_cfg_ctx *c, const json_t *root,
                     struct eb_mdm_config *m);
/* "apple_business" (config_apple.c), and freeing it. */
int eb_cfg_parse_apple_business(struct eb_cfg_ctx *c, const json_t *root,
                                struct eb_tenant *t);
void eb_cfg_apple_business_free(struct eb_apple_business_config *ab);
/* "scim" (config_scim.c), and freeing it (the token wiped). */
int eb_cfg_parse_scim(struct eb_cfg_ctx *c, const json_t *root,
                      struct eb_tenant *t);
void eb_cfg_scim_free(struct eb_scim_config *sc);
int eb_cfg_parse_esso(struct eb_cfg_ctx *c, const json_t *root,
                      struct eb_esso_config **out);
/* Free what eb_cfg_parse_mdm / eb_cfg_parse_esso filled. */
void eb_cfg_mdm_free(struct eb_mdm_config *m);
void eb_cfg_esso_free(struct eb_esso_config *e);
/* The "enrollment" section into *mode and by_family (config_tenant.c). */
int eb_cfg_parse_enrollment(struct eb_cfg_ctx *c, const json_t *root,
                            enum eb_enroll_mode *mode,
                            signed char by_family[EB_FAMILY_COUNT]);
/* "routes" (config_route.c): parsed into t (whose other sections are
 * complete, derived values included), views built; and freeing them. */
int eb_cfg_parse_routes(struct eb_cfg_ctx *c, const json_t *root,
                        struct eb_tenant *t);
void eb_cfg_routes_free(struct eb_tenant *t);

#endif
