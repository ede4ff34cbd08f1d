/*
 * One tenant file (DESIGN.md, "Configuration" and "Contract details"):
 * strict parsing of every section (the idp keys common to every provider
 * type; each provider reads, checks and defaults its own through its
 * config_parse, providers/provider.h), and the values derived once at load
 * time (enrollment BaseURL, discovery bodies, token audience). The
 * device-facing sections (oauth2, mdm, esso) are in config_mdm.c;
 * cross-tenant checks (duplicate id or domain) in config.c.
 */
#include "core/config_int.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/str.h"
#include "providers/provider.h"

static const char *const modes[] = {"byod", "adde", NULL};
/* enrollment.by_model_family's keys, and restrictions.model_families's values
 */
const char *const eb_cfg_keys_by_model_family[] = {
    "iPhone", "iPad", "Mac", "AppleTV", "Watch", "RealityDevice", NULL};

const char *const eb_cfg_keys_enrollment[] = {"default", "by_model_family",
                                              NULL};

int
eb_cfg_parse_enrollment(struct eb_cfg_ctx *c, const json_t *root,
                        enum eb_enroll_mode *mode,
                        signed char by_family[EB_FAMILY_COUNT])
{
	const char *p = "enrollment", *pf = "enrollment.by_model_family";
	json_t *o, *bm;
	int m = EB_MODE_BYOD, i;

	if (eb_cfg_obj(c, root, NULL, p, &o) == -1)
		return -1;
	if (o == NULL)
		return 0;
	if (eb_cfg_keys(c, o, p, eb_cfg_keys_enrollment) == -1 ||
	    eb_cfg_enum(c, o, p, "default", modes, &m) == -1 ||
	    eb_cfg_obj(c, o, p, "by_model_family", &bm) == -1)
		return -1;
	*mode = (enum eb_enroll_mode)m;
	if (bm == NULL)
		return 0;
	if (eb_cfg_keys(c, bm, pf, eb_cfg_keys_by_model_family) == -1)
		return -1;
	for (i = 0; i < EB_FAMILY_COUNT; i++) {
		m = -1;
		if (eb_cfg_enum(c, bm, pf, eb_cfg_keys_by_model_family[i],
		                modes, &m) == -1)
			return -1;
		by_family[i] = (signed char)m;
	}
	return 0;
}

const char *const eb_cfg_keys_min_os_version[] = {"iOS", "iPadOS", "macOS",
                                                  "visionOS", NULL};

/* restrictions.min_os_version: {"iOS": "17.0", ...} */
static int
parse_min_os(struct eb_cfg_ctx *c, const json_t *r, struct eb_restrictions *rs)
{
	const char *p = "restrictions.min_os_version";
	json_t *o;
	int i;

	if (eb_cfg_obj(c, r, "restrictions", "min_os_version", &o) == -1)
		return -1;
	if (o == NULL)
		return 0;
	if (eb_cfg_keys(c, o, p, eb_cfg_keys_min_os_version) == -1)
		return -1;
	for (i = 0; i < EB_OS_COUNT; i++) {
		if (eb_cfg_str(c, o, p, eb_cfg_keys_min_os_version[i], 0, 0,
		               &rs->min_os_version[i]) == -1)
			return -1;
		if (rs->min_os_version[i] != NULL &&
		    !eb_os_version_valid(rs->min_os_version[i]))
			return eb_cfg_fail(c, p, eb_cfg_keys_min_os_version[i],
			                   "must be a version like \"17.0\" "
			                   "(numbers separated by dots)");
	}
	return 0;
}

/* restrictions.model_families: ["iPhone", "iPad", ...] */
static int
parse_families(struct eb_cfg_ctx *c, const json_t *r,
               struct eb_restrictions *rs)
{
	struct eb_strlist l;
	char key[64];
	size_t i;
	int f, rc = 0;

	memset(&l, 0, sizeof(l));
	if (eb_cfg_strlist(c, r, "restrictions", "model_families",
	                   EB_CFG_NONEMPTY, &l) == -1) {
		eb_cfg_strlist_free(&l);
		return -1;
	}
	for (i = 0; i < l.n && rc == 0; i++) {
		for (f = 0; eb_cfg_keys_by_model_family[f] != NULL; f++)
			if (strcmp(eb_cfg_keys_by_model_family[f], l.v[i]) == 0)
				break;
		if (eb_cfg_keys_by_model_family[f] == NULL) {
			snprintf(key, sizeof(key), "model_families[%zu]", i);
			rc = eb_cfg_fail(c, "restrictions", key,
			                 "unknown model family \"%s\" (one of "
			                 "iPhone, iPad, Mac, AppleTV, Watch, "
			                 "RealityDevice)",
			                 l.v[i]);
		} else
			rs->families |= 1u << f;
	}
	eb_cfg_strlist_free(&l);
	return rc;
}

const char *const eb_cfg_keys_restrictions[] = {
    "max_devices_per_user", "min_os_version", "model_families", NULL};

static int
parse_restrictions(struct eb_cfg_ctx *c, const json_t *root,
                   struct eb_restrictions *rs)
{
	const char *p = "restrictions";
	long long max = 0;
	json_t *o;

	if (eb_cfg_obj(c, root, NULL, p, &o) == -1)
		return -1;
	if (o == NULL)
		return 0;
	if (eb_cfg_keys(c, o, p, eb_cfg_keys_restrictions) == -1 ||
	    eb_cfg_int(c, o, p, "max_devices_per_user", 1, 10000, &max) == -1 ||
	    parse_min_os(c, o, rs) == -1 || parse_families(c, o, rs) == -1)
		return -1;
	rs->max_devices_per_user = (long)max;
	return 0;
}

/* Keys another provider type understands but this one does not. */
static int
check_type_keys(struct eb_cfg_ctx *c, const json_t *o,
                const struct eb_provider_ops *mine)
{
	const struct eb_provider_ops *pr;
	size_t i, j;

	for (i = 0; (pr = eb_provider_at(i)) != NULL; i++) {
		if (pr == mine || pr->config_keys == NULL)
			continue;
		for (j = 0; pr->config_keys[j] != NULL; j++)
			if (json_object_get(o, pr->config_keys[j]) != NULL &&
			    !eb_cfg_list_has(mine->config_keys,
			                     pr->config_keys[j]))
				return eb_cfg_fail(
				    c, "idp", pr->config_keys[j],
				    "is only valid when idp.type is \"%s\"",
				    pr->type);
	}
	return 0;
}

int
eb_cfg_default_scopes(struct eb_cfg_ctx *c, struct eb_idp_config *idp, size_t n)
{
	static const char *const base[] = {"openid", "email", "profile",
	                                   "offline_access"};
	size_t i;

	if (idp->scopes.n > 0)
		return 0;
	if (n > sizeof(base) / sizeof(base[0]))
		n = sizeof(base) / sizeof(base[0]);
	if ((idp->scopes.v = eb_calloc(n, sizeof(char *))) == NULL)
		return eb_cfg_fail(c, "idp", "scopes", "out of memory");
	for (i = 0; i < n; i++) {
		if ((idp->scopes.v[i] = eb_strdup(base[i])) == NULL)
			return eb_cfg_fail(c, "idp", "scopes", "out of memory");
		idp->scopes.n++;
	}
	return 0;
}

static int
check_auth_params(struct eb_cfg_ctx *c, const struct eb_kvlist *kv)
{
	/* parameters the OIDC client sets itself */
	static const char *const reserved[] = {"response_type",
	                                       "client_id",
	                                       "redirect_uri",
	                                       "scope",
	                                       "state",
	                                       "nonce",
	                                       "code_challenge",
	                                       "code_challenge_method",
	                                       "response_mode",
	                                       "request",
	                                       "request_uri",
	                                       "client_secret",
	                                       NULL};
	size_t i, j;

	for (i = 0; i < kv->n; i++)
		for (j = 0; reserved[j] != NULL; j++)
			if (strcmp(kv->v[i].key, reserved[j]) == 0)
				return eb_cfg_fail(
				    c, "idp.extra_auth_params", reserved[j],
				    "is set by enrollbridge and cannot be "
				    "overridden");
	return 0;
}

/*
 * The idp keys every type accepts: the head, then each provider's own
 * (eb_provider_ops.config_keys), then the tail.
 */
static const char *const idp_keys_head[] = {
    "type",   "issuer",      "client_id", "client_secret",
    "scopes", "client_auth", "userinfo",  NULL};
static const char *const idp_keys_tail[] = {"extra_auth_params", NULL};

static int
keys_add(const char **out, size_t n, size_t *k, const char *const *keys)
{
	for (; keys != NULL && *keys != NULL; keys++) {
		if (*k + 1 >= n)
			return -1;
		out[(*k)++] = *keys;
	}
	return 0;
}

int
eb_cfg_idp_keys(const char **out, size_t n)
{
	const struct eb_provider_ops *pr;
	size_t i, k = 0;

	if (n == 0 || keys_add(out, n, &k, idp_keys_head) == -1)
		return -1;
	for (i = 0; (pr = eb_provider_at(i)) != NULL; i++)
		if (keys_add(out, n, &k, pr->config_keys) == -1)
			return -1;
	if (keys_add(out, n, &k, idp_keys_tail) == -1)
		return -1;
	out[k] = NULL;
	return 0;
}

/* idp.type: one of the provider types; its ops into idp->provider. */
static int
parse_idp_type(struct eb_cfg_ctx *c, const json_t *o, struct eb_idp_config *idp)
{
	const char *types[EB_CFG_MAX_TYPES + 1];
	const struct eb_provider_ops *pr;
	size_t i;
	int type = -1;

	for (i = 0; i < EB_CFG_MAX_TYPES && (pr = eb_provider_at(i)) != NULL;
	     i++)
		types[i] = pr->type;
	types[i] = NULL;
	if (eb_cfg_enum(c, o, "idp", "type", types, &type) == -1)
		return -1;
	if (type < 0)
		return eb_cfg_fail(c, "idp", "type", "is required");
	idp->provider = eb_provider_at((size_t)type);
	if ((idp->type = eb_strdup(types[type])) == NULL)
		return eb_cfg_fail(c, "idp", "type", "out of memory");
	return 0;
}

static int
parse_idp(struct eb_cfg_ctx *c, const json_t *root, struct eb_idp_config *idp)
{
	static const char *const cauth[] = {"client_secret_basic",
	                                    "client_secret_post", NULL};
	const char *p = "idp", *keys[EB_CFG_MAX_IDP_KEYS];
	json_t *o;
	int ca = EB_CLIENT_AUTH_BASIC;

	if (eb_cfg_obj(c, root, NULL, p, &o) == -1)
		return -1;
	if (o == NULL)
		return eb_cfg_fail(c, NULL, p, "is required");
	if (eb_cfg_idp_keys(keys, EB_CFG_MAX_IDP_KEYS) == -1)
		return eb_cfg_fail(c, NULL, p, "too many provider keys");
	if (eb_cfg_keys(c, o, p, keys) == -1 || parse_idp_type(c, o, idp) == -1)
		return -1;
	/* a provider with no config_parse has no default issuer */
	if (check_type_keys(c, o, idp->provider) == -1 ||
	    eb_cfg_url(c, o, p, "issuer", idp->provider->config_parse == NULL,
	               0, &idp->issuer) == -1 ||
	    eb_cfg_str(c, o, p, "client_id", 1, 0, &idp->client_id) == -1 ||
	    eb_cfg_secret_get(c, o, p, "client_secret", 0,
	                      &idp->client_secret) == -1 ||
	    eb_cfg_strlist(c, o, p, "scopes", EB_CFG_NONEMPTY | EB_CFG_NOSPACE,
	                   &idp->scopes) == -1 ||
	    eb_cfg_enum(c, o, p, "client_auth", cauth, &ca) == -1 ||
	    eb_cfg_bool(c, o, p, "userinfo", &idp->use_userinfo) == -1)
		return -1;
	idp->client_auth = (enum eb_client_auth)ca;
	if (idp->scopes.n > 0 && !eb_cfg_strlist_has(&idp->scopes, "openid"))
		return eb_cfg_fail(c, p, "scopes", "must include \"openid\"");
	if ((idp->provider->config_parse != NULL &&
	     idp->provider->config_parse(c, o, idp, &idp->provider_conf) ==
	         -1) ||
	    eb_cfg_kvlist(c, o, p, "extra_auth_params", EB_CFG_NOSPACE, 0,
	                  &idp->extra_auth_params) == -1 ||
	    check_auth_params(c, &idp->extra_auth_params) == -1 ||
	    eb_cfg_default_scopes(c, idp, 4) == -1)
		return -1;
	if (idp->issuer == NULL)
		return eb_cfg_fail(c, p, "issuer", "is required");
	return 0;
}

static int
check_template(struct eb_cfg_ctx *c, const char *tpl)
{
	const char *p = tpl, *close;

	if (strchr(tpl, '@') == NULL)
		return eb_cfg_fail(c, "managed_apple_id", "template",
		                   "must contain '@'");
	while ((p = strpbrk(p, "{}")) != NULL) {
		if (*p == '}' || (close = strchr(p, '}')) == NULL)
			goto bad;
		if (!((close - p == 6 && strncmp(p, "{local}", 7) == 0) ||
		      (close - p == 7 && strncmp(p, "{domain}", 8) == 0) ||
		      (close - p > 7 && strncmp(p, "{claim:", 7) == 0 &&
		       memchr(p + 1, '{', (size_t)(close - p - 1)) == NULL)))
			goto bad;
		p = close + 1;
	}
	return 0;
bad:
	return eb_cfg_fail(
	    c, "managed_apple_id", "template",
	    "placeholders must be {local}, {domain} or {claim:NAME}");
}

const char *const eb_cfg_keys_managed_apple_id[] = {
    "claim", "domain_map", "template", "managed_domains", NULL};

static int
parse_mapping(struct eb_cfg_ctx *c, const json_t *root, struct eb_tenant *t)
{
	struct eb_mapping_config *m = &t->mapping;
	const char *p = "managed_apple_id";
	json_t *o;
	size_t i;

	if (eb_cfg_obj(c, root, NULL, p, &o) == -1)
		return -1;
	if (o != NULL &&
	    (eb_cfg_keys(c, o, p, eb_cfg_keys_managed_apple_id) == -1 ||
	     eb_cfg_str(c, o, p, "claim", 0, EB_CFG_NOSPACE, &m->claim) == -1 ||
	     eb_cfg_kvlist(c, o, p, "domain_map", EB_CFG_FQDN, EB_CFG_FQDN,
	                   &m->domain_map) == -1 ||
	     eb_cfg_str(c, o, p, "template", 0, EB_CFG_NOSPACE, &m->template) ==
	         -1 ||
	     (m->template != NULL && check_template(c, m->template) == -1) ||
	     eb_cfg_strlist(c, o, p, "managed_domains", EB_CFG_FQDN,
	                    &m->managed_domains) == -1))
		return -1;
	if (eb_cfg_default_str(c, p, "claim", &m->claim, "email") == -1)
		return -1;
	if (m->domain_map.n > 0 || m->managed_domains.n > 0)
		return 0;
	/* neither given: users' own domains are the managed domains */
	if ((m->managed_domains.v = eb_calloc(t->domains.n, sizeof(char *))) ==
	    NULL)
		return eb_cfg_fail(c, p, "managed_domains", "out of memory");
	for (i = 0; i < t->domains.n; i++) {
		if ((m->managed_domains.v[i] = eb_strdup(t->domains.v[i])) ==
		    NULL)
			return eb_cfg_fail(c, p, "managed_domains",
			                   "out of memory");
		m->managed_domains.n++;
	}
	return 0;
}

const char *const eb_cfg_keys_access[] = {"require_groups", "allowed_domains",
                                          "deny_message", NULL};

static int
parse_access(struct eb_cfg_ctx *c, const json_t *root,
             struct eb_access_config *a)
{
	const char *p = "access";
	json_t *o;

	if (eb_cfg_obj(c, root, NULL, p, &o) == -1)
		return -1;
	if (o == NULL)
		return 0;
	return eb_cfg_keys(c, o, p, eb_cfg_keys_access) == -1 ||
	               eb_cfg_strlist(c, o, p, "require_groups", 0,
	                              &a->require_groups) == -1 ||
	               eb_cfg_strlist(c, o, p, "allowed_domains", EB_CFG_FQDN,
	                              &a->allowed_domains) == -1 ||
	               eb_cfg_str(c, o, p, "deny_message", 0, 0,
	                          &a->deny_message) == -1
	           ? -1
	           : 0;
}

/* tokens.*: name, default, minimum, maximum (seconds but for
 * renew_concurrency) */
#define EB_TOKENS_FIELDS(X)                                                    \
	/* minimum 1 s: tests watch an access token expire */                  \
	X(access_ttl, 3600, 1, 7 * 86400)                                      \
	X(refresh_ttl, 7776000, 3600, 10 * 366 * 86400)                        \
	/* minimum 1 s: tests shorten the renewal cycle and grace */           \
	X(upstream_renew_interval, 3600, 1, 7 * 86400)                         \
	X(upstream_grace, 86400, 1, 90 * 86400)                                \
	/* minimum 1 s: tests watch an unverified grant end */                 \
	X(max_unverified_age, 7 * 86400, 1, 10 * 366 * 86400)                  \
	X(renew_concurrency, 4, 1, 256)                                        \
	X(code_ttl, 60, 10, 600)                                               \
	X(login_ttl, 600, 60, 3600)

#define TK_NAME(k, d, lo, hi) #k,
const char *const eb_cfg_keys_tokens[] = {EB_TOKENS_FIELDS(TK_NAME) NULL};
#undef TK_NAME

static int
parse_tokens(struct eb_cfg_ctx *c, const json_t *root,
             struct eb_tokens_config *tk)
{
	static const struct {
		const char *key;
		size_t off;
		int def, min, max;
	} f[] = {
#define TK(k, d, lo, hi) {#k, offsetof(struct eb_tokens_config, k), d, lo, hi},
	    EB_TOKENS_FIELDS(TK)
#undef TK
	};
	const char *p = "tokens";
	json_t *o;
	size_t i;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		*(int *)((char *)tk + f[i].off) = f[i].def;
	if (eb_cfg_obj(c, root, NULL, p, &o) == -1)
		return -1;
	if (o == NULL)
		return 0;
	if (eb_cfg_keys(c, o, p, eb_cfg_keys_tokens) == -1)
		return -1;
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		long long v = f[i].def;

		if (eb_cfg_int(c, o, p, f[i].key, f[i].min, f[i].max, &v) == -1)
			return -1;
		*(int *)((char *)tk + f[i].off) = (int)v;
	}
	if (tk->refresh_ttl < tk->access_ttl)
		return eb_cfg_fail(
		    c, p, "refresh_ttl",
		    "must not be shorter than tokens.access_ttl");
	return 0;
}

static int
derive(struct eb_cfg_ctx *c, struct eb_tenant *t, const char *public_url)
{
	struct eb_buf b;
	int m;

	eb_buf_init(&b, 64 * 1024);
	if (eb_buf_printf(&b, "%s/t/%s/enroll", public_url, t->id) == -1)
		goto oom;
	t->base_url = eb_buf_detach(&b, NULL);
	for (m = EB_MODE_BYOD; m <= EB_MODE_ADDE; m++) {
		if (eb_buf_addstr(&b, "{\"Servers\":[{\"Version\":") == -1 ||
		    eb_buf_add_json_str(&b, eb_mode_version(m)) == -1 ||
		    eb_buf_addstr(&b, ",\"BaseURL\":") == -1 ||
		    eb_buf_add_json_str(&b, t->base_url) == -1 ||
		    eb_buf_addstr(&b, "}]}") == -1)
			goto oom;
		t->disco_body[m] = eb_buf_detach(&b, &t->disco_len[m]);
	}
	if (t->mdm.audience == NULL) {
		if (eb_buf_printf(&b, "%s/t/%s/mdm", public_url, t->id) == -1)
			goto oom;
		t->mdm.audience = eb_buf_detach(&b, NULL);
	}
	if (t->base_url && t->disco_body[0] && t->disco_body[1] &&
	    t->mdm.audience)
		return 0;
oom:
	eb_buf_finish(&b);
	return eb_cfg_fail(c, NULL, "id", "out of memory");
}

const char *const eb_cfg_keys_tenant[] = {"$schema",
                                          "id",
                                          "domains",
                                          "enrollment",
                                          "auth_method",
                                          "idp",
                                          "managed_apple_id",
                                          "access",
                                          "tokens",
                                          "oauth2",
                                          "mdm",
                                          "esso",
                                          "apple_business",
                                          "on_access_lost",
                                          "restrictions",
                                          "routes",
                                          "scim",
                                          "branding",
                                          NULL};

struct eb_tenant *
eb_cfg_tenant_parse(struct eb_cfg_ctx *c, json_t *root, const char *public_url)
{
	static const char *const methods[] = {"apple-as-web", "apple-oauth2",
	                                      NULL};
	static const char *const lost[] = {"reauth", "unenroll", NULL};
	struct eb_tenant *t;
	int am = EB_AUTH_AS_WEB, ol = EB_ON_ACCESS_LOST_REAUTH;

	if ((t = eb_calloc(1, sizeof(*t))) == NULL) {
		eb_cfg_fail(c, NULL, NULL, "out of memory");
		return NULL;
	}
	memset(t->by_family, -1, sizeof(t->by_family));
	if ((t->file = eb_strdup(c->file)) == NULL) {
		eb_cfg_fail(c, NULL, NULL, "out of memory");
		goto fail;
	}
	if (eb_cfg_keys(c, root, NULL, eb_cfg_keys_tenant) == -1 ||
	    eb_cfg_schema_ref(c, root) == -1 ||
	    eb_cfg_str(c, root, NULL, "id", 1, 0, &t->id) == -1)
		goto fail;
	if (!eb_str_is_tenant_id(t->id)) {
		eb_cfg_fail(c, NULL, "id",
		            "must be 1 to 63 of a-z, 0-9 and '-'");
		goto fail;
	}
	if (json_object_get(root, "domains") == NULL) {
		eb_cfg_fail(c, NULL, "domains", "is required");
		goto fail;
	}
	if (eb_cfg_strlist(c, root, NULL, "domains",
	                   EB_CFG_FQDN | EB_CFG_NONEMPTY, &t->domains) == -1 ||
	    eb_cfg_parse_enrollment(c, root, &t->default_mode, t->by_family) ==
	        -1 ||
	    eb_cfg_enum(c, root, NULL, "auth_method", methods, &am) == -1 ||
	    eb_cfg_enum(c, root, NULL, "on_access_lost", lost, &ol) == -1)
		goto fail;
	t->auth_method = (enum eb_auth_method)am;
	t->on_access_lost = (enum eb_on_access_lost)ol;
	if (parse_idp(c, root, &t->idp) == -1 ||
	    parse_mapping(c, root, t) == -1 ||
	    parse_access(c, root, &t->access) == -1 ||
	    parse_tokens(c, root, &t->tokens) == -1 ||
	    eb_cfg_parse_oauth2(c, root, t) == -1 ||
	    eb_cfg_parse_mdm(c, root, &t->mdm) == -1 ||
	    eb_cfg_parse_esso(c, root, &t->esso) == -1 ||
	    eb_cfg_parse_apple_business(c, root, t) == -1 ||
	    parse_restrictions(c, root, &t->restrictions) == -1 ||
	    eb_cfg_parse_scim(c, root, t) == -1 ||
	    eb_cfg_parse_branding(c, root, t) == -1 ||
	    derive(c, t, public_url) == -1 ||
	    eb_cfg_parse_routes(c, root, t) == -1)
		goto fail;
	return t;
fail:
	eb_cfg_tenant_free(t);
	return NULL;
}

void
eb_cfg_tenant_free(struct eb_tenant *t)
{
	struct eb_idp_config *idp;
	size_t i;

	if (t == NULL)
		return;
	idp = &t->idp;
	eb_free(t->id);
	eb_free(t->file);
	eb_cfg_strlist_free(&t->domains);
	eb_free(idp->type);
	eb_free(idp->issuer);
	eb_free(idp->client_id);
	eb_free_secret_str(idp->client_secret);
	eb_cfg_strlist_free(&idp->scopes);
	if (idp->provider != NULL && idp->provider->config_free != NULL)
		idp->provider->config_free(idp->provider_conf);
	eb_cfg_kvlist_free(&idp->extra_auth_params);
	eb_free(t->mapping.claim);
	eb_cfg_kvlist_free(&t->mapping.domain_map);
	eb_free(t->mapping.template);
	eb_cfg_strlist_free(&t->mapping.managed_domains);
	eb_cfg_strlist_free(&t->access.require_groups);
	eb_cfg_strlist_free(&t->access.allowed_domains);
	eb_free(t->access.deny_message);
	eb_free(t->oauth2.client_id);
	eb_free(t->oauth2.redirect_uri);
	eb_free(t->oauth2.scope);
	eb_cfg_mdm_free(&t->mdm);
	eb_cfg_esso_free(t->esso);
	eb_cfg_routes_free(t);
	eb_cfg_apple_business_free(t->apple_business);
	for (i = 0; i < EB_OS_COUNT; i++)
		eb_free(t->restrictions.min_os_version[i]);
	eb_cfg_scim_free(t->scim);
	eb_cfg_branding_free(t->branding);
	eb_free(t->base_url);
	eb_free(t->disco_body[0]);
	eb_free(t->disco_body[1]);
	eb_free(t);
}
