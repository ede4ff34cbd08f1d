/*
 * The device-facing sections of a tenant file: "oauth2" (the apple-oauth2
 * challenge's client), "mdm" (upstream, profile source, token audience,
 * introspection clients, signing) and "esso" (Enrollment SSO document).
 */
#include "core/config_int.h"

#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/str.h"

const char *const eb_cfg_keys_oauth2[] = {"client_id", "redirect_uri", "scope",
                                          NULL};

int
eb_cfg_parse_oauth2(struct eb_cfg_ctx *c, const json_t *root,
                    struct eb_tenant *t)
{
	static const char scheme[] = "apple-remotemanagement-user-login:";
	struct eb_oauth2_config *o2 = &t->oauth2;
	const char *p = "oauth2";
	json_t *o;

	if (eb_cfg_obj(c, root, NULL, p, &o) == -1)
		return -1;
	if (o != NULL && t->auth_method != EB_AUTH_OAUTH2)
		return eb_cfg_fail(
		    c, NULL, p,
		    "is only used with auth_method \"apple-oauth2\"");
	if (o != NULL && (eb_cfg_keys(c, o, p, eb_cfg_keys_oauth2) == -1 ||
	                  eb_cfg_str(c, o, p, "client_id", 0, EB_CFG_NOSPACE,
	                             &o2->client_id) == -1 ||
	                  eb_cfg_str(c, o, p, "redirect_uri", 0, EB_CFG_NOSPACE,
	                             &o2->redirect_uri) == -1 ||
	                  eb_cfg_str(c, o, p, "scope", 0, 0, &o2->scope) == -1))
		return -1;
	if (o2->redirect_uri != NULL &&
	    (!eb_str_has_prefix(o2->redirect_uri, scheme) ||
	     o2->redirect_uri[sizeof(scheme) - 1] == '\0'))
		return eb_cfg_fail(
		    c, p, "redirect_uri",
		    "must use the scheme apple-remotemanagement-user-login:");
	return eb_cfg_default_str(c, p, "client_id", &o2->client_id,
	                          "apple-device") == -1 ||
	               eb_cfg_default_str(
	                   c, p, "redirect_uri", &o2->redirect_uri,
	                   "apple-remotemanagement-user-login:/oauth2/"
	                   "redirection") == -1 ||
	               eb_cfg_default_str(c, p, "scope", &o2->scope, "mdm") ==
	                   -1
	           ? -1
	           : 0;
}

const char *const eb_cfg_keys_mdm_client[] = {"client_id", "client_secret",
                                              NULL};

static int
parse_clients(struct eb_cfg_ctx *c, const json_t *o, struct eb_mdm_config *m)
{
	json_t *v = json_object_get(o, "clients"), *item;
	char p[64];
	size_t i, j, n;

	if (v == NULL)
		return 0;
	if (!json_is_array(v))
		return eb_cfg_fail(c, "mdm", "clients",
		                   "must be a list of objects");
	if ((n = json_array_size(v)) > EB_CFG_MAX_LIST)
		return eb_cfg_fail(c, "mdm", "clients", "has too many items");
	if ((m->clients = eb_calloc(n ? n : 1, sizeof(*m->clients))) == NULL)
		return eb_cfg_fail(c, "mdm", "clients", "out of memory");
	json_array_foreach(v, i, item)
	{
		struct eb_mdm_client *cl = &m->clients[i];

		snprintf(p, sizeof(p), "mdm.clients[%zu]", i);
		if (!json_is_object(item))
			return eb_cfg_fail(c, p, NULL, "must be an object");
		m->nclients = i + 1;
		if (eb_cfg_keys(c, item, p, eb_cfg_keys_mdm_client) == -1 ||
		    eb_cfg_str(c, item, p, "client_id", 1, EB_CFG_NOSPACE,
		               &cl->client_id) == -1 ||
		    eb_cfg_secret_get(c, item, p, "client_secret", 1,
		                      &cl->client_secret) == -1)
			return -1;
		for (j = 0; j < i; j++)
			if (strcmp(m->clients[j].client_id, cl->client_id) == 0)
				return eb_cfg_fail(c, p, "client_id",
				                   "is a duplicate");
	}
	return 0;
}

/*
 * mdm.device_channel_paths: where a request without a bearer may go (the
 * macOS device channel's CheckInURL and ServerURL, as path remainders
 * under /t/{T}/mdm/). Each is a relative path of URL path characters
 * without "." or ".." segments or empty ones, and at most one "?" before
 * a query, so that it can only ever name a path the proxy forwards.
 */
static int
check_channel_paths(struct eb_cfg_ctx *c, const char *p,
                    const struct eb_strlist *l)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
	                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	                         "-._~!$&'()*+,;=:@/";
	const char *s, *q, *seg;
	char key[64];
	size_t i, n;

	for (i = 0; i < l->n; i++) {
		s = l->v[i];
		snprintf(key, sizeof(key), "device_channel_paths[%zu]", i);
		q = strchr(s, '?');
		n = q ? (size_t)(q - s) : strlen(s);
		if (n == 0 || s[0] == '/' || s[n - 1] == '/' ||
		    strspn(s, ok) != n ||
		    (q != NULL && (q[1] == '\0' || strchr(q + 1, '?') != NULL ||
		                   strspn(q + 1, ok) != strlen(q + 1))))
			return eb_cfg_fail(
			    c, p, key,
			    "must be a path under /t/{T}/mdm/ "
			    "(no leading \"/\"), with an optional "
			    "?query");
		for (seg = s; seg < s + n;) {
			size_t m = strcspn(seg, "/?");

			if (seg + m > s + n)
				m = (size_t)(s + n - seg);
			if (m == 0 || (m == 1 && seg[0] == '.') ||
			    (m == 2 && seg[0] == '.' && seg[1] == '.'))
				return eb_cfg_fail(c, p, key,
				                   "has an empty, \".\" or "
				                   "\"..\" segment");
			seg += m + 1;
		}
	}
	return 0;
}

/*
 * mdm.claims: IdP claim names, each copied into the grant at sign-in. A
 * handful, short, printable, no duplicates: they become JSON keys in the
 * access token and in the identity headers.
 */
static int
check_claim_names(struct eb_cfg_ctx *c, const char *p,
                  const struct eb_strlist *l)
{
	char key[64];
	size_t i, j, n;

	if (l->n > EB_CFG_MAX_CLAIMS)
		return eb_cfg_fail(c, p, "claims", "has more than %d names",
		                   EB_CFG_MAX_CLAIMS);
	for (i = 0; i < l->n; i++) {
		snprintf(key, sizeof(key), "claims[%zu]", i);
		n = strlen(l->v[i]);
		if (n == 0 || n > EB_CFG_MAX_CLAIM_NAME)
			return eb_cfg_fail(c, p, key,
			                   "must be 1 to %d characters",
			                   EB_CFG_MAX_CLAIM_NAME);
		for (j = 0; j < n; j++)
			if ((unsigned char)l->v[i][j] < 0x21 ||
			    (unsigned char)l->v[i][j] > 0x7e)
				return eb_cfg_fail(c, p, key,
				                   "must be printable ASCII");
		for (j = 0; j < i; j++)
			if (strcmp(l->v[j], l->v[i]) == 0)
				return eb_cfg_fail(c, p, key, "is a duplicate");
	}
	return 0;
}

const char *const eb_cfg_keys_mdm[] = {"upstream",
                                       "profile",
                                       "audience",
                                       "clients",
                                       "allow_unauthenticated_device_channel",
                                       "device_channel_paths",
                                       "use_proxy",
                                       "signing_cert",
                                       "signing_key",
                                       "device_ca",
                                       "claims",
                                       NULL};

const char *const eb_cfg_keys_mdm_profile[] = {"url", "file", NULL};

int
eb_cfg_parse_mdm(struct eb_cfg_ctx *c, const json_t *root,
                 struct eb_mdm_config *m)
{
	const char *p = "mdm";
	json_t *o, *prof;
	int use_proxy = -1;

	if (eb_cfg_obj(c, root, NULL, p, &o) == -1)
		return -1;
	if (o == NULL)
		return 0;
	if (eb_cfg_keys(c, o, p, eb_cfg_keys_mdm) == -1 ||
	    eb_cfg_url(c, o, p, "upstream", 0, EB_URL_HTTP | EB_URL_NO_SLASH,
	               &m->upstream) == -1 ||
	    eb_cfg_obj(c, o, p, "profile", &prof) == -1 ||
	    eb_cfg_str(c, o, p, "audience", 0, EB_CFG_NOSPACE, &m->audience) ==
	        -1 ||
	    parse_clients(c, o, m) == -1 ||
	    eb_cfg_bool(c, o, p, "allow_unauthenticated_device_channel",
	                &m->allow_unauthenticated_device_channel) == -1 ||
	    eb_cfg_strlist(c, o, p, "device_channel_paths",
	                   EB_CFG_NONEMPTY | EB_CFG_NOSPACE,
	                   &m->device_channel_paths) == -1 ||
	    check_channel_paths(c, p, &m->device_channel_paths) == -1 ||
	    eb_cfg_bool(c, o, p, "use_proxy", &use_proxy) == -1 ||
	    eb_cfg_path(c, o, p, "signing_cert", 0, &m->signing_cert) == -1 ||
	    eb_cfg_path(c, o, p, "signing_key", 0, &m->signing_key) == -1 ||
	    eb_cfg_path(c, o, p, "device_ca", 0, &m->device_ca) == -1 ||
	    eb_cfg_strlist(c, o, p, "claims", EB_CFG_NOSPACE, &m->claims) ==
	        -1 ||
	    check_claim_names(c, p, &m->claims) == -1)
		return -1;
	if (prof != NULL &&
	    (eb_cfg_keys(c, prof, "mdm.profile", eb_cfg_keys_mdm_profile) ==
	         -1 ||
	     eb_cfg_url(c, prof, "mdm.profile", "url", 0,
	                EB_URL_HTTP | EB_URL_QUERY, &m->profile_url) == -1 ||
	     eb_cfg_path(c, prof, "mdm.profile", "file", 0, &m->profile_file) ==
	         -1))
		return -1;
	if (prof != NULL &&
	    (m->profile_url == NULL) == (m->profile_file == NULL))
		return eb_cfg_fail(c, p, "profile",
		                   "needs exactly one of \"url\" or \"file\"");
	if ((m->signing_cert == NULL) != (m->signing_key == NULL))
		return eb_cfg_fail(
		    c, p, m->signing_cert ? "signing_key" : "signing_cert",
		    "is required when mdm.%s is set",
		    m->signing_cert ? "signing_cert" : "signing_key");
	if (m->upstream == NULL && use_proxy == 1)
		return eb_cfg_fail(c, p, "use_proxy", "needs mdm.upstream");
	if (m->upstream == NULL && m->allow_unauthenticated_device_channel)
		return eb_cfg_fail(c, p, "allow_unauthenticated_device_channel",
		                   "needs mdm.upstream");
	if (m->device_channel_paths.n > 0 &&
	    !m->allow_unauthenticated_device_channel)
		return eb_cfg_fail(
		    c, p, "device_channel_paths",
		    "needs allow_unauthenticated_device_channel");
	m->use_proxy = use_proxy == -1 ? m->upstream != NULL : use_proxy;
	return 0;
}

const char *const eb_cfg_keys_esso[] = {
    "app_store_id", "associated_domains", "enable_direct_downloads",
    "profile_file", "developer",          NULL};

const char *const eb_cfg_keys_esso_developer[] = {"app_ids", NULL};

int
eb_cfg_parse_esso(struct eb_cfg_ctx *c, const json_t *root,
                  struct eb_esso_config **out)
{
	const char *p = "esso";
	struct eb_esso_config *e;
	long long id = 0;
	json_t *o, *dev;

	if (eb_cfg_obj(c, root, NULL, p, &o) == -1)
		return -1;
	if (o == NULL)
		return 0;
	if ((e = *out = eb_calloc(1, sizeof(*e))) == NULL)
		return eb_cfg_fail(c, NULL, p, "out of memory");
	if (eb_cfg_keys(c, o, p, eb_cfg_keys_esso) == -1 ||
	    eb_cfg_int(c, o, p, "app_store_id", 1, 99999999999LL, &id) == -1 ||
	    eb_cfg_strlist(c, o, p, "associated_domains", EB_CFG_NOSPACE,
	                   &e->associated_domains) == -1 ||
	    eb_cfg_bool(c, o, p, "enable_direct_downloads",
	                &e->enable_direct_downloads) == -1 ||
	    eb_cfg_path(c, o, p, "profile_file", 0, &e->profile_file) == -1 ||
	    eb_cfg_obj(c, o, p, "developer", &dev) == -1)
		return -1;
	if (id == 0)
		return eb_cfg_fail(c, p, "app_store_id", "is required");
	e->app_store_id = (long)id;
	if (dev != NULL &&
	    (eb_cfg_keys(c, dev, "esso.developer",
	                 eb_cfg_keys_esso_developer) == -1 ||
	     eb_cfg_strlist(c, dev, "esso.developer", "app_ids", EB_CFG_NOSPACE,
	                    &e->developer_app_ids) == -1))
		return -1;
	return 0;
}

void
eb_cfg_mdm_free(struct eb_mdm_config *m)
{
	size_t i;

	eb_free(m->upstream);
	eb_free(m->profile_url);
	eb_free(m->profile_file);
	eb_free(m->audience);
	for (i = 0; i < m->nclients; i++) {
		eb_free(m->clients[i].client_id);
		eb_free_secret_str(m->clients[i].client_secret);
	}
	eb_free(m->clients);
	eb_free(m->signing_cert);
	eb_free(m->signing_key);
	eb_free(m->device_ca);
	eb_cfg_strlist_free(&m->device_channel_paths);
	eb_cfg_strlist_free(&m->claims);
	memset(m, 0, sizeof(*m));
}

void
eb_cfg_esso_free(struct eb_esso_config *e)
{
	if (e == NULL)
		return;
	eb_cfg_strlist_free(&e->associated_domains);
	eb_free(e->profile_file);
	eb_cfg_strlist_free(&e->developer_app_ids);
	eb_free(e);
}
