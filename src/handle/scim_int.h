/*
 * What the SCIM endpoint's two files share (handle/scim.c: the Users
 * resource; handle/scim_meta.c: the discovery documents and the answers).
 */
#ifndef EB_HANDLE_SCIM_INT_H
#define EB_HANDLE_SCIM_INT_H

#include <jansson.h>

#include "http/http.h"

#define SCIM_CT "application/scim+json"

/* Answer o (a reference taken) with status, as SCIM JSON. */
void eb_scim_send(struct eb_request *req, int status, json_t *o);
/* Answer a SCIM error (RFC 7644 3.12); scim_type may be NULL. */
void eb_scim_send_error(struct eb_request *req, int status,
                        const char *scim_type, const char *detail);
/* GET of a discovery document: /ServiceProviderConfig, /ResourceTypes,
 * /Schemas and their single resources; 404 for anything else. */
void eb_scim_meta(struct eb_request *req, const char *what);

#endif
