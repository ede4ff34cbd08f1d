/*
 * The words of the pages a person sees, in English, German, French,
 * Spanish and Japanese (one table per language in i18n.c), and the choice
 * among them from a browser's Accept-Language (RFC 9110 12.5.4: q-values,
 * "de-AT" falls back to "de", English when nothing fits). A message is a
 * plain-text template (tmpl.h): its {{slots}} are the same in every
 * language, which the unit test checks.
 */
#ifndef EB_I18N_H
#define EB_I18N_H

#include <stddef.h>

enum eb_lang {
	EB_LANG_EN,
	EB_LANG_DE,
	EB_LANG_FR,
	EB_LANG_ES,
	EB_LANG_JA,
	EB_LANG_COUNT
};

enum eb_msg {
	EB_MSG_REFERENCE, /* {{rid}} */
	EB_MSG_HELP,
	EB_MSG_EMAIL,
	EB_MSG_PHONE,
	EB_MSG_WEBSITE,
	EB_MSG_LOGO_ALT, /* {{name}} */
	EB_MSG_DETAILS,  /* {{details}} */
	EB_MSG_EXPIRED_T,
	EB_MSG_EXPIRED,
	EB_MSG_IDP_FAILED_T,
	EB_MSG_IDP_FAILED,
	EB_MSG_NOT_COMPLETED_T,
	EB_MSG_IDP_CANCELLED,
	EB_MSG_IDP_REFUSED,
	EB_MSG_IDP_DENIED,
	EB_MSG_BUSY_T,
	EB_MSG_BUSY,
	EB_MSG_NOT_STARTED_T,
	EB_MSG_TYPED_INVALID,
	EB_MSG_UNAVAILABLE_T,
	EB_MSG_UNAVAILABLE,
	EB_MSG_BAD_REQUEST_T,
	EB_MSG_MALFORMED,
	EB_MSG_INVALID_REQUEST_T,
	EB_MSG_UNKNOWN_CLIENT,
	EB_MSG_BAD_REDIRECT,
	EB_MSG_DENIED_T,
	EB_MSG_DENY_DEVICE_LIMIT,
	EB_MSG_DENY_GROUPS,
	EB_MSG_DENY_DOMAIN,
	EB_MSG_DENY_ACCOUNT,
	EB_MSG_DENY_OTHER,
	EB_MSG_HINT_ADMIN,
	EB_MSG_HINT_DEVICE_LIMIT,
	EB_MSG_HINT_WORK_ACCOUNT,
	EB_MSG_COUNT
};

/* The language's tag ("en", "de", ...). */
const char *eb_i18n_tag(enum eb_lang lang);
/* The message in lang's own table, or NULL (for the catalogue's test). */
const char *eb_i18n_raw(enum eb_lang lang, enum eb_msg id);
/* The message in lang (English when lang's table lacks it); never NULL. */
const char *eb_i18n_msg(enum eb_lang lang, enum eb_msg id);
/*
 * The best language for an Accept-Language value (NULL or anything
 * malformed: English). Items that do not parse are ignored; only the first
 * EB_I18N_MAX_ITEMS items and EB_I18N_MAX_HEADER bytes are looked at.
 */
#define EB_I18N_MAX_ITEMS  32
#define EB_I18N_MAX_HEADER 1024
enum eb_lang eb_i18n_negotiate(const char *accept_language);

#endif
