/*
 * The provider registry: the const table of every identity-provider
 * plug-in, looked up by the tenant's idp.type, and the small helpers the
 * plug-ins share (provider_int.h).
 */
#include "providers/provider.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "http/client.h"
#include "providers/provider_int.h"

static const struct eb_provider_ops *const builtin[] = {
    &eb_provider_oidc,
    &eb_provider_entra,
    &eb_provider_google,
};

#define NBUILTIN (sizeof(builtin) / sizeof(builtin[0]))
#define NEXTRA   8

static const struct eb_provider_ops *extra[NEXTRA];
static size_t nextra;

const struct eb_provider_ops *
eb_provider_at(size_t i)
{
	if (i < NBUILTIN)
		return builtin[i];
	i -= NBUILTIN;
	return i < nextra ? extra[i] : NULL;
}

const struct eb_provider_ops *
eb_provider_find(const char *type)
{
	const struct eb_provider_ops *p;
	size_t i;

	if (type == NULL)
		return NULL;
	for (i = 0; (p = eb_provider_at(i)) != NULL; i++)
		if (strcmp(p->type, type) == 0)
			return p;
	return NULL;
}

int
eb_provider_register(const struct eb_provider_ops *ops)
{
	if (ops == NULL || ops->type == NULL || nextra == NEXTRA ||
	    eb_provider_find(ops->type) != NULL)
		return -1;
	extra[nextra++] = ops;
	return 0;
}

void
eb_provider_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	char *p;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	/* claim values quoted in a reason must not break a log line */
	for (p = why; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

int
eb_provider_copy_issuer(const char *issuer, char *out, size_t outlen, char *why,
                        size_t whylen)
{
	size_t n;

	if (issuer == NULL || (n = strlen(issuer)) == 0) {
		eb_provider_why(why, whylen, "the provider has no issuer");
		return EB_PROVIDER_FAIL;
	}
	if (n >= outlen) {
		eb_provider_why(why, whylen, "the issuer is too long");
		return EB_PROVIDER_FAIL;
	}
	memcpy(out, issuer, n + 1);
	return EB_PROVIDER_OK;
}

int
eb_provider_meta_issuer(const struct eb_tenant *t, const char *meta_issuer,
                        json_t *claims, char *out, size_t outlen, char *why,
                        size_t whylen)
{
	if (meta_issuer != NULL && strstr(meta_issuer, "{tenantid}") != NULL) {
		/* a template is only meaningful to the entra provider */
		eb_provider_why(why, whylen,
		                "the provider metadata issuer is a template "
		                "(%s); use idp.type \"entra\" with "
		                "idp.allowed_tenants",
		                meta_issuer);
		return EB_PROVIDER_FAIL;
	}
	return eb_provider_copy_issuer(meta_issuer, out, outlen, why, whylen);
}

int
eb_provider_extra_has(const struct eb_tenant *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->idp.extra_auth_params.n; i++)
		if (strcmp(t->idp.extra_auth_params.v[i].key, name) == 0)
			return 1;
	return 0;
}

int
eb_provider_add_default(const struct eb_tenant *t, struct eb_buf *q,
                        const char *name, const char *value)
{
	if (value == NULL || eb_provider_extra_has(t, name))
		return 0;
	return eb_http_form_add(q, name, value);
}

int
eb_provider_add_extra(const struct eb_tenant *t, struct eb_buf *q)
{
	const struct eb_kvlist *kv = &t->idp.extra_auth_params;
	size_t i;

	for (i = 0; i < kv->n; i++)
		if (eb_http_form_add(q, kv->v[i].key, kv->v[i].value) == -1)
			return -1;
	return 0;
}

int
eb_provider_mapping_uses(const struct eb_tenant *t, const char *name)
{
	const char *tpl = t->mapping.template, *p;
	const char *claim = t->mapping.claim ? t->mapping.claim : "email";
	size_t n = strlen(name);

	/*
	 * The mapping claim is read by the claim rule, by a template's
	 * {local}/{domain}, and by access.allowed_domains (the IdP login).
	 */
	if (strcmp(claim, name) == 0 &&
	    (tpl == NULL || strstr(tpl, "{local}") != NULL ||
	     strstr(tpl, "{domain}") != NULL ||
	     t->access.allowed_domains.n > 0))
		return 1;
	for (p = tpl; p != NULL && (p = strstr(p, "{claim:")) != NULL; p++)
		if (strncmp(p + 7, name, n) == 0 && p[7 + n] == '}')
			return 1;
	return 0;
}
