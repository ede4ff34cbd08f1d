/*
 * The HTML pages a person sees (sign-in errors, refusals): one layout
 * (page.c) filled through the template engine (core/tmpl.h), in the
 * language the browser asks for (core/i18n.h), with the tenant's branding
 * (config.h struct eb_branding) and the request id as "Reference". Sends
 * Content-Language, Vary: Accept-Language and Cache-Control: no-store.
 */
#ifndef EB_PAGE_H
#define EB_PAGE_H

#include "core/i18n.h"
#include "http/http.h"

struct eb_page {
	int status;
	enum eb_msg title;
	enum eb_msg msg;     /* the message; EB_MSG_COUNT when text is used */
	enum eb_msg hint;    /* after the message; EB_MSG_COUNT: none */
	const char *text;    /* a message of our own words not in the
	                        catalogue (a policy's English reason), or NULL */
	const char *details; /* shown after "Details:" as given, or NULL */
	const char *extra;   /* the tenant's deny_message as written, or NULL */
};

/* The language of req's Accept-Language. */
enum eb_lang eb_page_lang(const struct eb_request *req);
/* Send pg as req's answer. Returns 0 or -1 (out of memory). */
int eb_page_send(struct eb_request *req, const struct eb_page *pg);

#endif
