/*
 * The store builders of fx_store.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "fx_store.h"

void
fx_grant(struct eb_store_grant *g, const char *id, const char *tenant,
         int64_t t)
{
	memset(g, 0, sizeof(*g));
	g->id = (char *)id;
	g->tenant = (char *)tenant;
	g->status = EB_STORE_GRANT_ACTIVE;
	g->auth_method = "apple-as-web";
	g->managed_apple_id = "alice@appleid.contoso.com";
	g->idp_issuer = "https://idp.example";
	g->idp_subject = "sub-alice";
	g->enrollment_mode = "BYOD";
	g->created = t;
	g->updated = t;
}

void
fx_mk_grant(struct eb_store *s, const char *id, const char *tenant,
            int64_t expires)
{
	struct eb_store_grant g;

	fx_grant(&g, id, tenant, (int64_t)time(NULL));
	g.managed_apple_id = "alice@appleid.acme.example";
	g.user_identifier = "alice@acme.example";
	g.idp_issuer = "https://idp.acme.example";
	g.expires = expires;
	assert_int_equal(eb_store_grant_create(s, &g), EB_STORE_OK);
}
