/*
 * The signed-in person (identity.h): the common fields read once from the
 * validated claims, so that providers, the Managed Apple Account mapping
 * and the access policy never parse claims themselves. Provider-specific
 * rules (Entra's tid:oid subject, Google's hd) are the providers' job.
 */
#include "identity/identity.h"

#include <string.h>

#include "core/mem.h"

/* Most groups kept from a token; Entra switches to overage past 200. */
#define MAX_TOKEN_GROUPS 4096

void
eb_identity_init(struct eb_identity *id)
{
	memset(id, 0, sizeof(*id));
	id->email_verified = -1;
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

void
eb_identity_finish(struct eb_identity *id)
{
	if (id == NULL)
		return;
	eb_free(id->issuer);
	eb_free(id->subject);
	eb_free(id->tid);
	eb_free(id->oid);
	eb_free(id->email);
	eb_free(id->upn);
	eb_free(id->preferred_username);
	eb_free(id->name);
	eb_free(id->hd);
	groups_free(&id->groups);
	if (id->claims != NULL)
		json_decref(id->claims);
	eb_identity_init(id);
}

const char *
eb_identity_claim(const struct eb_identity *id, const char *name)
{
	if (id == NULL || id->claims == NULL || name == NULL)
		return NULL;
	return json_string_value(json_object_get(id->claims, name));
}

const char *
eb_identity_login(const struct eb_identity *id)
{
	if (id->preferred_username != NULL && id->preferred_username[0])
		return id->preferred_username;
	if (id->upn != NULL && id->upn[0])
		return id->upn;
	if (id->email != NULL && id->email[0])
		return id->email;
	return NULL;
}

/* A copy of string claim name into *out; 0, or -1 when out of memory. */
static int
copy_claim(const struct eb_identity *id, const char *name, char **out)
{
	const char *v = eb_identity_claim(id, name);

	if (v == NULL)
		return 0;
	return (*out = eb_strdup(v)) == NULL ? -1 : 0;
}

/*
 * email_verified is a boolean in the spec; some providers send the strings
 * "true"/"false". Anything else is unknown.
 */
static int
read_verified(const json_t *v)
{
	const char *s;

	if (json_is_boolean(v))
		return json_is_true(v) ? 1 : 0;
	if ((s = json_string_value(v)) != NULL) {
		if (strcmp(s, "true") == 0)
			return 1;
		if (strcmp(s, "false") == 0)
			return 0;
	}
	return -1;
}

/* groups: only a list made entirely of strings counts as known. */
static int
read_groups(struct eb_identity *id, const json_t *g)
{
	const json_t *item;
	size_t i, n;

	if (!json_is_array(g))
		return 0;
	n = json_array_size(g);
	if (n > MAX_TOKEN_GROUPS)
		return 0;
	for (i = 0; i < n; i++)
		if (!json_is_string(json_array_get(g, i)))
			return 0;
	if (n > 0 && (id->groups.v = eb_calloc(n, sizeof(char *))) == NULL)
		return -1;
	json_array_foreach(g, i, item)
	{
		if ((id->groups.v[i] = eb_strdup(json_string_value(item))) ==
		    NULL)
			return -1;
		id->groups.n = i + 1;
	}
	id->groups_known = 1;
	return 0;
}

int
eb_identity_from_claims(struct eb_identity *id, const char *issuer,
                        json_t *claims)
{
	static const struct {
		const char *name;
		size_t off;
	} fields[] = {
#define F(c, m) {c, offsetof(struct eb_identity, m)}
	    F("sub", subject), F("email", email),
	    F("upn", upn),     F("preferred_username", preferred_username),
	    F("name", name),   F("hd", hd),
	    F("tid", tid),     F("oid", oid),
#undef F
	};
	size_t i;

	/* the reference first: claims may be the object id already holds */
	json_incref(claims);
	eb_identity_finish(id);
	if (!json_is_object(claims)) {
		json_decref(claims);
		return -1;
	}
	id->claims = claims;
	if (eb_identity_claim(id, "sub") == NULL ||
	    eb_identity_claim(id, "sub")[0] == '\0')
		goto fail;
	if (issuer != NULL && (id->issuer = eb_strdup(issuer)) == NULL)
		goto fail;
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (copy_claim(id, fields[i].name,
		               (char **)((char *)id + fields[i].off)) == -1)
			goto fail;
	id->email_verified =
	    read_verified(json_object_get(claims, "email_verified"));
	if (read_groups(id, json_object_get(claims, "groups")) == -1)
		goto fail;
	return 0;
fail:
	eb_identity_finish(id);
	return -1;
}
