/*
 * Enrollment Single Sign-On (PROTOCOL.md section 6): GET /t/{T}/esso.json,
 * the document the device fetches from the X-Apple-MDM-ESSO URL of the 401
 * challenge, and with ?developer=1 the developer-mode variant (AppIDs
 * instead of iTunesStoreID) named by X-Apple-MDM-ESSO-Developer. Built by
 * apple/esso.c from the tenant's esso settings.
 */
#include <string.h>

#include "apple/esso.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "handle/handle.h"

int
eb_handle_esso(struct eb_request *req)
{
	const char *dev = eb_req_query(req, "developer");
	/* ?route=NAME: that route's document (a re-authentication's
	 * challenge names it); an unknown route has none */
	const struct eb_tenant *t = eb_tenant_route_view(
	    eb_req_tenant(req), eb_req_query(req, "route"));
	int developer = dev != NULL && strcmp(dev, "1") == 0;
	char err[256] = "", *doc;
	size_t len = 0;

	if (t == NULL || t->esso == NULL ||
	    (developer && t->esso->developer_app_ids.n == 0)) {
		eb_resp_text(req, 404, "not found\n");
		return EB_HANDLED;
	}
	if ((doc = eb_esso_build(t, developer, &len, err, sizeof(err))) ==
	    NULL) {
		log_errx("tenant %s: Enrollment SSO document: %s", t->id, err);
		eb_resp_text(req, 500, "Enrollment SSO misconfigured\n");
		return EB_HANDLED;
	}
	eb_resp_header(req, "Cache-Control", "no-store");
	eb_resp_set_owned(req, 200, "application/json", doc, len);
	return EB_HANDLED;
}
