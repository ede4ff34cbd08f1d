/*
 * SCIM 2.0 (RFC 7643, RFC 7644) User resources, without HTTP or storage:
 * checking a resource a provisioning client sends and reading the facts
 * the bridge acts on (userName, externalId, active), applying a PatchOp
 * request the way Microsoft Entra and Okta send them, and parsing the
 * list filters they use. Everything here reads untrusted input: every
 * string, array and operation count has a limit, and a refusal names the
 * RFC 7644 scimType and a detail safe to show the client.
 */
#ifndef EB_SCIM_H
#define EB_SCIM_H

#include <jansson.h>

#define EB_SCIM_USER_SCHEMA  "urn:ietf:params:scim:schemas:core:2.0:User"
#define EB_SCIM_PATCH_SCHEMA "urn:ietf:params:scim:api:messages:2.0:PatchOp"
#define EB_SCIM_LIST_SCHEMA  "urn:ietf:params:scim:api:messages:2.0:ListResponse"
#define EB_SCIM_ERROR_SCHEMA "urn:ietf:params:scim:api:messages:2.0:Error"

#define EB_SCIM_MAX_STR 256 /* bytes of userName, externalId */
#define EB_SCIM_MAX_OPS 64  /* operations of one PATCH */

/* A refusal: HTTP status, RFC 7644 3.12 scimType (or NULL), detail. */
struct eb_scim_err {
	int status;
	const char *scim_type;
	char detail[160];
};

/* What the bridge acts on; the strings point into the resource. */
struct eb_scim_facts {
	const char *user_name;
	const char *external_id; /* NULL when absent */
	int active;              /* 1 unless the resource says false */
};

/*
 * Check User resource res (an object) and read its facts into f: schemas
 * must name the User schema, userName a non-empty string of at most
 * EB_SCIM_MAX_STR bytes without control characters, externalId likewise
 * when present, active a boolean or the string "true"/"false" (any case,
 * as Entra sends "False"). res is normalised in place: "id" and "meta"
 * (ours to set) are dropped, active becomes a boolean. 0, or -1 with err
 * (400 invalidValue / invalidSyntax).
 */
int eb_scim_user_check(json_t *res, struct eb_scim_facts *f,
                       struct eb_scim_err *err);

/*
 * Apply PatchOp request body patch to res in place (RFC 7644 3.5.2):
 * Operations of op add, replace or remove (any case); a path that is an
 * attribute ("active"), a sub-attribute ("name.givenName"), a schema URN
 * qualified attribute, or a value filter on a multi-valued attribute
 * ('emails[type eq "work"].value'); without a path, an object value whose
 * members are each such a path. The caller checks the result with
 * eb_scim_user_check. 0, or -1 with err (400 invalidSyntax, invalidPath,
 * noTarget, invalidValue).
 */
int eb_scim_patch(json_t *res, const json_t *patch, struct eb_scim_err *err);

/* What eb_scim_filter accepts; the values are enum eb_store_scim_by's. */
enum eb_scim_filter_attr {
	EB_SCIM_FILTER_USER_NAME = 1,
	EB_SCIM_FILTER_EXTERNAL_ID = 2,
};

/*
 * Parse a list filter: only 'userName eq "v"' and 'externalId eq "v"'
 * (attribute and operator in any case, the value a JSON string). 0 with
 * *attr and *value (the caller frees it with eb_free), or -1 with err
 * (400 invalidFilter).
 */
int eb_scim_filter(const char *filter, int *attr, char **value,
                   struct eb_scim_err *err);

#endif
