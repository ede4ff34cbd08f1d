/*
 * The SCIM endpoint's discovery documents (RFC 7644 section 4), which
 * provisioning clients such as Entra read before they provision: what the
 * service provider supports (PATCH yes; bulk, sort, etag-matching, change
 * of password no; filter with the two attributes the endpoint accepts),
 * the one resource type (User), and the User schema's attributes the
 * bridge acts on. Also the JSON answers both files send.
 */
#include <string.h>

#include <jansson.h>

#include "core/mem.h"
#include "handle/handle.h"
#include "handle/scim_int.h"
#include "scim/scim.h"

#define SPC_SCHEMA    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
#define RT_SCHEMA     "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
#define SCHEMA_SCHEMA "urn:ietf:params:scim:schemas:core:2.0:Schema"

void
eb_scim_send(struct eb_request *req, int status, json_t *o)
{
	json_free_t jfree = NULL;
	char *body;

	eb_resp_header(req, "Cache-Control", "no-store");
	if (o == NULL || (body = json_dumps(o, JSON_COMPACT)) == NULL) {
		json_decref(o);
		eb_resp_text(req, 500, "internal error\n");
		return;
	}
	json_decref(o);
	eb_resp_set(req, status, SCIM_CT, body, strlen(body));
	json_get_alloc_funcs(NULL, &jfree);
	jfree(body);
}

void
eb_scim_send_error(struct eb_request *req, int status, const char *scim_type,
                   const char *detail)
{
	char st[8];

	snprintf(st, sizeof(st), "%d", status);
	if (status == 401)
		eb_resp_header(req, "WWW-Authenticate",
		               "Bearer realm=\"enrollbridge-scim\"");
	eb_scim_send(req, status,
	             json_pack("{s:[s], s:s, s:s?, s:s}", "schemas",
	                       EB_SCIM_ERROR_SCHEMA, "status", st, "scimType",
	                       scim_type, "detail", detail));
}

static json_t *
service_provider_config(void)
{
	return json_pack(
	    "{s:[s], s:{s:b}, s:{s:b, s:i, s:i}, s:{s:b, s:i}, s:{s:b},"
	    " s:{s:b}, s:{s:b}, s:[{s:s, s:s, s:s, s:b}],"
	    " s:{s:s}}",
	    "schemas", SPC_SCHEMA, "patch", "supported", 1, "bulk", "supported",
	    0, "maxOperations", 0, "maxPayloadSize", 0, "filter", "supported",
	    1, "maxResults", 200, "changePassword", "supported", 0, "sort",
	    "supported", 0, "etag", "supported", 0, "authenticationSchemes",
	    "type", "oauthbearertoken", "name", "OAuth Bearer Token",
	    "description", "The tenant's scim.token as a bearer token",
	    "primary", 1, "meta", "resourceType", "ServiceProviderConfig");
}

static json_t *
resource_type(void)
{
	return json_pack("{s:[s], s:s, s:s, s:s, s:s, s:s, s:{s:s}}", "schemas",
	                 RT_SCHEMA, "id", "User", "name", "User", "endpoint",
	                 "/Users", "description", "User Account", "schema",
	                 EB_SCIM_USER_SCHEMA, "meta", "resourceType",
	                 "ResourceType");
}

/* One attribute of the User schema (RFC 7643 section 7). */
static json_t *
attribute(const char *name, const char *type, int required,
          const char *uniqueness, int case_exact)
{
	return json_pack("{s:s, s:s, s:b, s:b, s:b, s:s, s:s, s:s}", "name",
	                 name, "type", type, "multiValued", 0, "required",
	                 required, "caseExact", case_exact, "mutability",
	                 "readWrite", "returned", "default", "uniqueness",
	                 uniqueness);
}

static json_t *
user_schema(void)
{
	return json_pack("{s:[s], s:s, s:s, s:s, s:[o, o, o, o], s:{s:s}}",
	                 "schemas", SCHEMA_SCHEMA, "id", EB_SCIM_USER_SCHEMA,
	                 "name", "User", "description", "User Account",
	                 "attributes",
	                 attribute("userName", "string", 1, "server", 0),
	                 attribute("externalId", "string", 0, "none", 1),
	                 attribute("displayName", "string", 0, "none", 0),
	                 attribute("active", "boolean", 0, "none", 0), "meta",
	                 "resourceType", "Schema");
}

/* A ListResponse of one resource (o, a reference taken). */
static json_t *
list_of(json_t *o)
{
	return json_pack("{s:[s], s:i, s:i, s:i, s:[o]}", "schemas",
	                 EB_SCIM_LIST_SCHEMA, "totalResults", 1, "startIndex",
	                 1, "itemsPerPage", 1, "Resources", o);
}

void
eb_scim_meta(struct eb_request *req, const char *what)
{
	if (strcmp(eb_req_method(req), "GET") != 0 &&
	    strcmp(eb_req_method(req), "HEAD") != 0) {
		eb_resp_header(req, "Allow", "GET, HEAD");
		eb_scim_send_error(req, 405, NULL, "method not allowed");
		return;
	}
	if (strcmp(what, "ServiceProviderConfig") == 0)
		eb_scim_send(req, 200, service_provider_config());
	else if (strcmp(what, "ResourceTypes") == 0)
		eb_scim_send(req, 200, list_of(resource_type()));
	else if (strcmp(what, "ResourceTypes/User") == 0)
		eb_scim_send(req, 200, resource_type());
	else if (strcmp(what, "Schemas") == 0)
		eb_scim_send(req, 200, list_of(user_schema()));
	else if (strcmp(what, "Schemas/" EB_SCIM_USER_SCHEMA) == 0)
		eb_scim_send(req, 200, user_schema());
	else
		eb_scim_send_error(req, 404, NULL, "no such resource");
}
