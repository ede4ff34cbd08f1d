/*
 * Store builders for unit tests (tests/unit/fx): the grants the store,
 * token and reseal tests create, filled in one place.
 */
#ifndef EB_TEST_FX_STORE_H
#define EB_TEST_FX_STORE_H

#include <stdint.h>

#include "store/store.h"

/* Fill g as an active BYOD grant id of tenant for alice@appleid.contoso.com
 * (apple-as-web, subject "sub-alice" at https://idp.example), created and
 * updated at t, without an upstream token. g points at id, tenant and
 * string literals; a test sets what else it needs. */
void fx_grant(struct eb_store_grant *g, const char *id, const char *tenant,
              int64_t t);

/* Create an active grant id of tenant for alice@acme.example (subject
 * "sub-alice" at https://idp.acme.example), created now, ending at
 * expires; the test fails when the store refuses it. */
void fx_mk_grant(struct eb_store *s, const char *id, const char *tenant,
                 int64_t expires);

#endif
