/*
 * Managed Apple Account mapping (mapping.h): override, template or claim,
 * then the checks every result must pass whatever its source (lower-case,
 * valid address, managed domain), so that neither a stale override nor an
 * odd claim value can hand out an account outside the organisation.
 */
#include "identity/mapping.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/str.h"
#include "store/store.h"

#define MAX_ADDRESS 254
#define MAX_LOCAL   64
/* Characters of an RFC 5322 dot-atom (besides '.'). */
#define ATEXT                                                                  \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"       \
	"!#$%&'*+/=?^_`{|}~-"

int
eb_mapping_address_ok(const char *addr)
{
	const char *at, *p;
	size_t llen;

	if (addr == NULL || strlen(addr) > MAX_ADDRESS ||
	    (at = strchr(addr, '@')) == NULL || strchr(at + 1, '@') != NULL)
		return 0;
	llen = (size_t)(at - addr);
	if (llen == 0 || llen > MAX_LOCAL || addr[0] == '.' || at[-1] == '.')
		return 0;
	for (p = addr; p < at; p++)
		if ((*p == '.' && p[1] == '.') ||
		    (*p != '.' && strchr(ATEXT, *p) == NULL))
			return 0;
	/* no trailing dot: the address is compared and stored as typed */
	return at[1] != '\0' && at[strlen(at) - 1] != '.' &&
	       eb_str_is_fqdn(at + 1);
}

void
eb_mapping_result_finish(struct eb_mapping_result *out)
{
	if (out == NULL)
		return;
	eb_free(out->managed_apple_id);
	eb_free(out->idp_login);
	eb_free(out->typed);
	memset(out, 0, sizeof(*out));
}

/* The managed domain domain_map gives for domain, or NULL. */
static const char *
map_domain(const struct eb_mapping_config *m, const char *domain)
{
	size_t i;

	for (i = 0; i < m->domain_map.n; i++)
		if (eb_str_ieq(m->domain_map.v[i].key, domain))
			return m->domain_map.v[i].value;
	return NULL;
}

static int
is_managed(const struct eb_mapping_config *m, const char *domain)
{
	size_t i;

	for (i = 0; i < m->domain_map.n; i++)
		if (eb_str_ieq(m->domain_map.v[i].value, domain))
			return 1;
	for (i = 0; i < m->managed_domains.n; i++)
		if (eb_str_ieq(m->managed_domains.v[i], domain))
			return 1;
	return 0;
}

/* The ith managed domain: domain_map values first, then managed_domains. */
static const char *
managed_nth(const struct eb_mapping_config *m, size_t i)
{
	if (i < m->domain_map.n)
		return m->domain_map.v[i].value;
	return m->managed_domains.v[i - m->domain_map.n];
}

/* Every managed domain once, "a, b, c", for a refusal. */
static void
list_managed(const struct eb_mapping_config *m, char *out, size_t outlen)
{
	size_t i, j, n = m->domain_map.n + m->managed_domains.n;
	struct eb_buf b;

	eb_buf_init(&b, outlen > 0 ? outlen - 1 : 0);
	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++)
			if (eb_str_ieq(managed_nth(m, j), managed_nth(m, i)))
				break;
		if (j == i && eb_buf_printf(&b, "%s%s", b.len ? ", " : "",
		                            managed_nth(m, i)) == -1)
			break;
	}
	snprintf(out, outlen, "%s", b.len ? eb_buf_str(&b) : "none");
	eb_buf_finish(&b);
}

/*
 * The admin override for the person: EB_MAPPING_OK with *out set, 1 when
 * there is none, or EB_MAPPING_FAIL.
 */
static int
from_override(const struct eb_tenant *t, struct eb_store *store,
              const struct eb_identity *id, char **out,
              struct eb_policy_verdict *v)
{
	struct eb_store_mapping m;
	int rc;

	memset(&m, 0, sizeof(m));
	rc = eb_store_mapping_get(store, t->id, id->subject, &m);
	if (rc == EB_STORE_NOT_FOUND)
		return 1;
	if (rc != EB_STORE_OK) {
		eb_policy_deny(v, "store_error", NULL,
		               "the mapping overrides could not be read (%s)",
		               eb_store_strerror(rc));
		return EB_MAPPING_FAIL;
	}
	*out = m.managed_apple_id;
	m.managed_apple_id = NULL;
	eb_store_mapping_finish(&m);
	if (*out == NULL) {
		eb_policy_deny(v, "store_error", NULL,
		               "the mapping override has no account");
		return EB_MAPPING_FAIL;
	}
	return EB_MAPPING_OK;
}

/* Split the IdP login into local part and (lower-case) domain. */
static int
split_login(const struct eb_tenant *t, const char *login, char **local,
            char **domain, struct eb_policy_verdict *v)
{
	if (login == NULL) {
		eb_policy_deny(
		    v, "claim_missing",
		    "Ask your IT administrator to check how your "
		    "account is set up.",
		    "your identity provider did not send the \"%s\" "
		    "of your account, which picks your Managed Apple "
		    "Account",
		    t->mapping.claim);
		return EB_MAPPING_DENY;
	}
	if (eb_str_split_identifier(login, local, domain) == -1) {
		eb_policy_deny(v, "claim_invalid",
		               "Ask your IT administrator to check how your "
		               "account is set up.",
		               "the \"%s\" of your account (%.100s) is not an "
		               "address name@domain",
		               t->mapping.claim, login);
		return EB_MAPPING_DENY;
	}
	return EB_MAPPING_OK;
}

/* Expand the tenant's template into b. */
static int
from_template(const struct eb_tenant *t, const struct eb_identity *id,
              const char *login, struct eb_buf *b, struct eb_policy_verdict *v)
{
	const char *p = t->mapping.template, *close, *val;
	char *local = NULL, *domain = NULL, name[128];
	int rc = EB_MAPPING_OK;
	size_t n;

	while (rc == EB_MAPPING_OK && *p != '\0') {
		if (*p != '{' || (close = strchr(p, '}')) == NULL) {
			n = strcspn(p, "{");
			if (n == 0)
				n = 1;
			if (eb_buf_add(b, p, n) == -1)
				goto too_long;
			p += n;
			continue;
		}
		n = (size_t)(close - p + 1);
		if ((n == 7 && strncmp(p, "{local}", 7) == 0) ||
		    (n == 8 && strncmp(p, "{domain}", 8) == 0)) {
			if (local == NULL &&
			    (rc = split_login(t, login, &local, &domain, v)) !=
			        EB_MAPPING_OK)
				break;
			val = p[1] == 'l' ? local : domain;
		} else if (n > 8 && strncmp(p, "{claim:", 7) == 0 &&
		           n - 8 < sizeof(name)) {
			memcpy(name, p + 7, n - 8);
			name[n - 8] = '\0';
			if ((val = eb_identity_claim(id, name)) == NULL ||
			    val[0] == '\0') {
				eb_policy_deny(
				    v, "template_claim_missing",
				    "Ask your IT administrator to check how "
				    "your account is set up.",
				    "your identity provider did not send the "
				    "\"%s\" of your account, which your "
				    "Managed "
				    "Apple Account is made from",
				    name);
				rc = EB_MAPPING_DENY;
				break;
			}
		} else {
			/* config.c refuses other placeholders */
			eb_policy_deny(
			    v, "template_invalid", NULL,
			    "managed_apple_id.template has an unknown "
			    "placeholder");
			rc = EB_MAPPING_FAIL;
			break;
		}
		if (eb_buf_addstr(b, val) == -1)
			goto too_long;
		p = close + 1;
	}
	eb_free(local);
	eb_free(domain);
	return rc;
too_long:
	eb_free(local);
	eb_free(domain);
	eb_policy_deny(v, "address_invalid", NULL,
	               "the Managed Apple Account made from your account is "
	               "too long");
	return EB_MAPPING_DENY;
}

/* The login with its domain rewritten through domain_map, into b. */
static int
from_claim(const struct eb_tenant *t, const char *login, struct eb_buf *b,
           struct eb_policy_verdict *v)
{
	char *local = NULL, *domain = NULL;
	const char *mapped;
	int rc;

	if ((rc = split_login(t, login, &local, &domain, v)) != EB_MAPPING_OK)
		return rc;
	mapped = map_domain(&t->mapping, domain);
	if (eb_buf_printf(b, "%s@%s", local, mapped ? mapped : domain) == -1) {
		eb_policy_deny(v, "address_invalid", NULL,
		               "the Managed Apple Account made from your "
		               "account is too long");
		rc = EB_MAPPING_DENY;
	}
	eb_free(local);
	eb_free(domain);
	return rc;
}

int
eb_mapping_resolve(const struct eb_tenant *t, struct eb_store *store,
                   const struct eb_identity *id, const char *typed,
                   struct eb_mapping_result *out, struct eb_policy_verdict *v)
{
	const char *claim = t->mapping.claim ? t->mapping.claim : "email";
	const char *login = eb_identity_claim(id, claim), *dom;
	struct eb_buf b;
	char *addr = NULL, managed[200];
	int rc;

	memset(out, 0, sizeof(*out));
	eb_policy_allow(v);
	/* the typed identifier is stored with the grant and printed by the
	 * CLI: one that is not UTF-8 (from a flow started before the sign-in
	 * start refused them) is refused here too, never stored */
	if (typed != NULL && !eb_str_is_utf8(typed, strlen(typed))) {
		eb_policy_deny(v, "typed_invalid",
		               "Go back to Settings on your device and type "
		               "your work or school email address again.",
		               "the account name typed on the device is not "
		               "UTF-8");
		return EB_MAPPING_DENY;
	}
	if ((login != NULL && (out->idp_login = eb_strdup(login)) == NULL) ||
	    (typed != NULL && (out->typed = eb_strdup(typed)) == NULL))
		goto oom;
	if (store != NULL && id->subject != NULL) {
		out->store_checked = 1;
		rc = from_override(t, store, id, &addr, v);
		if (rc == EB_MAPPING_FAIL)
			goto fail;
		if (rc == EB_MAPPING_OK)
			out->source = "override";
	}
	if (addr == NULL) {
		eb_buf_init(&b, MAX_ADDRESS * 4);
		if (t->mapping.template != NULL) {
			out->source = "template";
			rc = from_template(t, id, login, &b, v);
		} else {
			out->source = "claim";
			rc = from_claim(t, login, &b, v);
		}
		if (rc != EB_MAPPING_OK) {
			eb_buf_finish(&b);
			goto fail;
		}
		if ((addr = eb_buf_detach(&b, NULL)) == NULL)
			goto oom;
	}
	eb_str_lower(addr);
	if (!eb_mapping_address_ok(addr)) {
		eb_policy_deny(
		    v,
		    strcmp(out->source, "override") == 0 ? "override_invalid"
		                                         : "address_invalid",
		    "Ask your IT administrator to check how your "
		    "account is set up.",
		    "the Managed Apple Account made from your account "
		    "(%.100s, by %s) is not a valid address",
		    addr, out->source);
		rc = EB_MAPPING_DENY;
		goto fail;
	}
	dom = strchr(addr, '@') + 1;
	if (!is_managed(&t->mapping, dom)) {
		list_managed(&t->mapping, managed, sizeof(managed));
		eb_policy_deny(v, "domain_not_managed",
		               "Sign in with your work account, or ask your IT "
		               "administrator which account to use.",
		               "your account maps to %.100s, which is not in "
		               "this organisation's managed domains (%s)",
		               addr, managed);
		rc = EB_MAPPING_DENY;
		goto fail;
	}
	out->managed_apple_id = addr;
	return EB_MAPPING_OK;
oom:
	eb_policy_deny(v, "internal", NULL, "out of memory");
	rc = EB_MAPPING_FAIL;
fail:
	eb_free(addr);
	eb_mapping_result_finish(out);
	return rc;
}
