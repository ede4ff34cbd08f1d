/*
 * Microsoft Entra ID. What sets it apart from a generic OIDC provider:
 *
 * - Tenants. A single-tenant app has the issuer
 *   https://login.microsoftonline.com/{tid}/v2.0; a multi-tenant app's
 *   metadata issuer is a template holding "{tenantid}", filled with the
 *   token's own tid, and that tid must be in idp.allowed_tenants (a
 *   template with no allow-list would let any Entra tenant in: refused).
 * - Users are keyed by tid:oid. upn and preferred_username change on a
 *   rename and are missing for guests; they stay available to the mapping.
 * - Groups overage: past about 200 groups the token carries
 *   _claim_names.groups / hasgroups instead of a list. They are then read
 *   from Microsoft Graph with the user's access token when idp.graph_groups
 *   is set, else the sign-in is refused with a clear reason (never a silent
 *   allow).
 * - Entra sends no email_verified, so it is never required; but an email
 *   whose domain Entra marks as not verified by its owner (xms_edov false)
 *   is not used to pick a Managed Apple Account.
 */
#include "providers/provider.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/config_int.h"
#include "core/mem.h"
#include "core/str.h"
#include "http/client.h"
#include "providers/provider_int.h"

#define TENANT_TEMPLATE "{tenantid}"
#define GRAPH_DEFAULT   "https://graph.microsoft.com"
#define GRAPH_PATH      "/v1.0/me/getMemberObjects"
#define MAX_TID         64
#define MAX_GROUPS      100000

static const char overage_no_graph[] =
    "group membership too large for the token and Microsoft Graph lookup "
    "is not configured";

/* A tenant GUID: 8-4-4-4-12 hex digits. */
static int
is_guid(const char *s)
{
	size_t i;

	if (s == NULL || strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (strchr("0123456789abcdefABCDEF", s[i]) == NULL)
			return 0;
	}
	return 1;
}

/* A tid fit to be put into an issuer URL. */
static int
tid_ok(const char *tid)
{
	size_t n = tid ? strlen(tid) : 0;

	return n > 0 && n <= MAX_TID &&
	       strspn(tid,
	              "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	              "0123456789.-") == n;
}

/* "common", "organizations", "consumers": any tenant, not one. */
static int
is_multi_alias(const char *tid)
{
	return tid != NULL &&
	       (eb_str_ieq(tid, "common") || eb_str_ieq(tid, "organizations") ||
	        eb_str_ieq(tid, "consumers"));
}

/*
 * The token's tid against the tenant configuration: in allowed_tenants
 * (then required), or equal to a GUID tenant_id when the token has one. A
 * tenant_id given as a domain name cannot be compared with the tid: the
 * tenant-specific metadata issuer (which names the GUID) binds it instead.
 */
static int
check_tid(const struct eb_tenant *t, const char *tid, char *why, size_t whylen)
{
	const struct eb_entra_conf *ec = t->idp.provider_conf;
	size_t i;

	if (ec->allowed_tenants.n > 0) {
		if (tid == NULL) {
			eb_provider_why(
			    why, whylen,
			    "the sign-in does not say which Microsoft "
			    "Entra organisation (tid) the account "
			    "belongs to");
			return EB_PROVIDER_DENY;
		}
		for (i = 0; i < ec->allowed_tenants.n; i++)
			if (eb_str_ieq(ec->allowed_tenants.v[i], tid))
				return EB_PROVIDER_OK;
		eb_provider_why(why, whylen,
		                "your organisation's Microsoft Entra tenant "
		                "(%.64s) is not allowed to enroll devices here",
		                tid);
		return EB_PROVIDER_DENY;
	}
	if (is_multi_alias(ec->tenant_id)) {
		eb_provider_why(
		    why, whylen,
		    "idp.tenant_id \"%s\" accepts any Microsoft Entra "
		    "tenant; list the allowed ones in "
		    "idp.allowed_tenants",
		    ec->tenant_id);
		return EB_PROVIDER_FAIL;
	}
	if (tid != NULL && is_guid(ec->tenant_id) &&
	    !eb_str_ieq(ec->tenant_id, tid)) {
		eb_provider_why(why, whylen,
		                "you signed in with an account of another "
		                "Microsoft Entra organisation (tenant %.64s)",
		                tid);
		return EB_PROVIDER_DENY;
	}
	return EB_PROVIDER_OK;
}

static int
entra_auth_params(const struct eb_tenant *t, struct eb_buf *q)
{
	const struct eb_entra_conf *ec = t->idp.provider_conf;

	if (eb_provider_add_default(t, q, "domain_hint", ec->domain_hint) == -1)
		return -1;
	return eb_provider_add_extra(t, q);
}

/* Fill every {tenantid} of tpl with tid into out. */
static int
fill_template(const char *tpl, const char *tid, char *out, size_t outlen,
              char *why, size_t whylen)
{
	size_t tl = strlen(TENANT_TEMPLATE), il = strlen(tid), o = 0, n;
	const char *p = tpl, *hit;

	while (1) {
		hit = strstr(p, TENANT_TEMPLATE);
		n = hit ? (size_t)(hit - p) : strlen(p);
		if (o + n + (hit ? il : 0) >= outlen)
			goto too_long;
		memcpy(out + o, p, n);
		o += n;
		if (hit == NULL)
			break;
		memcpy(out + o, tid, il);
		o += il;
		p = hit + tl;
	}
	out[o] = '\0';
	return EB_PROVIDER_OK;
too_long:
	eb_provider_why(why, whylen, "the issuer is too long");
	return EB_PROVIDER_FAIL;
}

static int
entra_expected_issuer(const struct eb_tenant *t, const char *meta_issuer,
                      json_t *claims, char *out, size_t outlen, char *why,
                      size_t whylen)
{
	const struct eb_entra_conf *ec = t->idp.provider_conf;
	const char *tid = json_string_value(json_object_get(claims, "tid"));
	int rc;

	if ((rc = check_tid(t, tid, why, whylen)) != EB_PROVIDER_OK)
		return rc;
	if (meta_issuer == NULL || strstr(meta_issuer, TENANT_TEMPLATE) == NULL)
		return eb_provider_copy_issuer(meta_issuer, out, outlen, why,
		                               whylen);
	/* multi-tenant metadata: only a known tenant may fill the template */
	if (ec->allowed_tenants.n == 0 && !is_guid(ec->tenant_id)) {
		eb_provider_why(why, whylen,
		                "the issuer %s is multi-tenant but "
		                "idp.allowed_tenants is not set",
		                meta_issuer);
		return EB_PROVIDER_FAIL;
	}
	if (tid == NULL) {
		eb_provider_why(
		    why, whylen,
		    "the sign-in does not say which Microsoft Entra "
		    "organisation (tid) the account belongs to");
		return EB_PROVIDER_DENY;
	}
	if (!tid_ok(tid)) {
		eb_provider_why(why, whylen,
		                "the token's tid is not a tenant identifier");
		return EB_PROVIDER_FAIL;
	}
	return fill_template(meta_issuer, tid, out, outlen, why, whylen);
}

static int
has_overage(const struct eb_identity *id)
{
	json_t *names = json_object_get(id->claims, "_claim_names");

	return json_object_get(names, "groups") != NULL ||
	       json_is_true(json_object_get(id->claims, "hasgroups"));
}

static int
entra_check_identity(const struct eb_tenant *t, struct eb_identity *id,
                     char *why, size_t whylen)
{
	struct eb_buf b;
	int rc;

	if ((rc = check_tid(t, id->tid, why, whylen)) != EB_PROVIDER_OK)
		return rc;
	if (id->tid == NULL || id->oid == NULL || id->tid[0] == '\0' ||
	    id->oid[0] == '\0') {
		eb_provider_why(
		    why, whylen,
		    "Microsoft Entra sent no %s claim: the ID token "
		    "needs tid and oid (request the \"profile\" "
		    "scope)",
		    id->oid == NULL || id->oid[0] == '\0' ? "oid" : "tid");
		return EB_PROVIDER_FAIL;
	}
	/* nOAuth: an email of a domain its owner did not verify */
	if (json_is_false(json_object_get(id->claims, "xms_edov")) &&
	    id->email != NULL && eb_provider_mapping_uses(t, "email")) {
		eb_provider_why(
		    why, whylen,
		    "Microsoft Entra says the domain of this "
		    "account's email address is not verified by its "
		    "owner");
		return EB_PROVIDER_DENY;
	}
	eb_buf_init(&b, 2 * 1024);
	if (eb_buf_printf(&b, "%s:%s", id->tid, id->oid) == -1) {
		eb_buf_finish(&b);
		eb_provider_why(why, whylen, "out of memory");
		return EB_PROVIDER_FAIL;
	}
	eb_free(id->subject);
	id->subject = eb_buf_detach(&b, NULL);
	if (has_overage(id) && id->groups.n == 0)
		id->groups_known = 0;
	return EB_PROVIDER_OK;
}

static void
groups_free(struct eb_strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		eb_free(l->v[i]);
	eb_free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Graph's {"value": ["id", ...]} into id->groups. */
static int
read_member_objects(struct eb_identity *id, const char *body, size_t len,
                    char *why, size_t whylen)
{
	struct eb_strlist l = {NULL, 0};
	json_error_t jerr;
	json_t *root, *v, *item;
	size_t i, n;
	int rc = EB_PROVIDER_FAIL;

	if ((root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		eb_provider_why(why, whylen,
		                "Microsoft Graph answered malformed JSON");
		return EB_PROVIDER_FAIL;
	}
	v = json_object_get(root, "value");
	if (!json_is_array(v) || (n = json_array_size(v)) > MAX_GROUPS) {
		eb_provider_why(why, whylen,
		                "Microsoft Graph answered without a list of "
		                "groups");
		goto out_decref;
	}
	if (n > 0 && (l.v = eb_calloc(n, sizeof(char *))) == NULL)
		goto oom;
	json_array_foreach(v, i, item)
	{
		if (!json_is_string(item)) {
			eb_provider_why(why, whylen,
			                "Microsoft Graph answered a group that "
			                "is not a string");
			goto out_free;
		}
		if ((l.v[i] = eb_strdup(json_string_value(item))) == NULL)
			goto oom;
		l.n = i + 1;
	}
	groups_free(&id->groups);
	id->groups = l;
	id->groups_known = 1;
	l.v = NULL;
	l.n = 0;
	rc = EB_PROVIDER_OK;
	goto out_decref;
oom:
	eb_provider_why(why, whylen, "out of memory");
out_free:
	groups_free(&l);
out_decref:
	json_decref(root);
	return rc;
}

static int
entra_resolve_groups(const struct eb_tenant *t, struct eb_identity *id,
                     const char *access_token, int timeout, size_t max_bytes,
                     char *why, size_t whylen)
{
	static const char body[] = "{\"securityEnabledOnly\":false}";
	struct eb_http_options opts;
	struct eb_http_response *r;
	struct eb_buf url, auth;
	const char *headers[4];
	const struct eb_entra_conf *ec = t->idp.provider_conf;
	int rc = EB_PROVIDER_FAIL;

	if (!ec->graph_groups) {
		eb_provider_why(why, whylen, "%s", overage_no_graph);
		return EB_PROVIDER_DENY;
	}
	if (access_token == NULL || access_token[0] == '\0') {
		eb_provider_why(
		    why, whylen,
		    "no access token to ask Microsoft Graph for the "
		    "groups");
		return EB_PROVIDER_FAIL;
	}
	eb_buf_init(&url, 4 * 1024);
	eb_buf_init(&auth, 64 * 1024);
	if (eb_buf_printf(&url, "%s%s",
	                  ec->graph_url ? ec->graph_url : GRAPH_DEFAULT,
	                  GRAPH_PATH) == -1 ||
	    eb_buf_printf(&auth, "Authorization: Bearer %s", access_token) ==
	        -1) {
		eb_provider_why(why, whylen, "out of memory");
		goto out_free;
	}
	headers[0] = eb_buf_str(&auth);
	headers[1] = "Content-Type: application/json";
	headers[2] = "Accept: application/json";
	headers[3] = NULL;
	eb_http_options_init(&opts, "POST", eb_buf_str(&url));
	opts.headers = headers;
	opts.body = body;
	opts.body_len = sizeof(body) - 1;
	opts.timeout = timeout;
	opts.connect_timeout = timeout;
	opts.max_response_bytes = max_bytes;
	if ((r = eb_http_fetch(&opts)) == NULL) {
		eb_provider_why(why, whylen, "out of memory");
		goto out_free;
	}
	if (r->error != EB_HTTP_OK)
		eb_provider_why(why, whylen,
		                "Microsoft Graph could not be asked for the "
		                "groups (%s): %s",
		                eb_http_error_name(r->error), r->message);
	else if (r->status == 401 || r->status == 403)
		eb_provider_why(
		    why, whylen,
		    "Microsoft Graph refused the group lookup (HTTP "
		    "%ld): check the app's Microsoft Graph "
		    "permissions",
		    r->status);
	else if (r->status != 200)
		eb_provider_why(
		    why, whylen,
		    "Microsoft Graph answered HTTP %ld to the group "
		    "lookup",
		    r->status);
	else
		rc = read_member_objects(id, r->body, r->body_len, why, whylen);
	eb_http_response_free(r);
out_free:
	eb_buf_finish(&url);
	eb_buf_finish_secret(&auth);
	return rc;
}

static const char *const entra_keys[] = {"tenant_id",   "allowed_tenants",
                                         "domain_hint", "graph_groups",
                                         "graph_url",   NULL};

static void
entra_config_free(void *priv)
{
	struct eb_entra_conf *ec = priv;

	if (ec == NULL)
		return;
	eb_free(ec->tenant_id);
	eb_cfg_strlist_free(&ec->allowed_tenants);
	eb_free(ec->domain_hint);
	eb_free(ec->graph_url);
	eb_free(ec);
}

/* tenant_id and allowed_tenants together, and the default issuer. */
static int
entra_config_check(struct eb_cfg_ctx *c, struct eb_idp_config *idp,
                   struct eb_entra_conf *ec)
{
	const char *p = "idp", *tid = ec->tenant_id;
	char iss[512];

	if (tid != NULL && ec->allowed_tenants.n > 0)
		return eb_cfg_fail(c, p, "allowed_tenants",
		                   "cannot be combined with idp.tenant_id");
	if (tid != NULL &&
	    strspn(tid,
	           "abcdefghijklmnopqrstuvwxyz"
	           "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != strlen(tid))
		return eb_cfg_fail(c, p, "tenant_id",
		                   "must be a tenant GUID or domain name");
	if (idp->issuer == NULL && tid == NULL && ec->allowed_tenants.n == 0)
		return eb_cfg_fail(
		    c, p, "tenant_id",
		    "is required for entra (or idp.allowed_tenants, "
		    "or an explicit idp.issuer)");
	snprintf(iss, sizeof(iss), "https://login.microsoftonline.com/%s/v2.0",
	         tid ? tid : "organizations");
	if (eb_cfg_default_str(c, p, "issuer", &idp->issuer, iss) == -1 ||
	    eb_cfg_default_str(c, p, "graph_url", &ec->graph_url,
	                       GRAPH_DEFAULT) == -1)
		return -1;
	return 0;
}

static int
entra_config_parse(struct eb_cfg_ctx *c, const json_t *o,
                   struct eb_idp_config *idp, void **priv)
{
	const char *p = "idp";
	struct eb_entra_conf *ec;

	if ((ec = eb_calloc(1, sizeof(*ec))) == NULL)
		return eb_cfg_fail(c, NULL, p, "out of memory");
	*priv = ec;
	if (eb_cfg_str(c, o, p, "tenant_id", 0, EB_CFG_NOSPACE,
	               &ec->tenant_id) == -1 ||
	    eb_cfg_strlist(c, o, p, "allowed_tenants",
	                   EB_CFG_NONEMPTY | EB_CFG_NOSPACE,
	                   &ec->allowed_tenants) == -1 ||
	    eb_cfg_str(c, o, p, "domain_hint", 0, EB_CFG_NOSPACE,
	               &ec->domain_hint) == -1 ||
	    eb_cfg_bool(c, o, p, "graph_groups", &ec->graph_groups) == -1 ||
	    eb_cfg_url(c, o, p, "graph_url", 0, EB_URL_NO_SLASH,
	               &ec->graph_url) == -1)
		return -1;
	return entra_config_check(c, idp, ec);
}

const struct eb_provider_ops eb_provider_entra = {
    .type = "entra",
    .config_keys = entra_keys,
    .config_parse = entra_config_parse,
    .config_free = entra_config_free,
    .auth_params = entra_auth_params,
    .expected_issuer = entra_expected_issuer,
    .check_identity = entra_check_identity,
    .resolve_groups = entra_resolve_groups,
};
