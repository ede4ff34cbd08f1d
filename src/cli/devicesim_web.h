/*
 * The headless "browser" of `enrollbridge device-sim`: what an
 * ASWebAuthenticationSession does for a device, minus the person. It
 * follows redirects by hand with a small cookie jar, reads the sign-in
 * pages' HTML forms (action, method, input names and values: the test IdP's
 * login and consent forms, or any IdP with a plain form), fills the login
 * and password fields, and stops at the first redirect whose Location
 * starts with a given prefix (apple-remotemanagement-user-login:), which
 * it returns without requesting it.
 *
 * Pages come from the network: the form reader is bounded (page size,
 * field count, value length) and never trusts what it reads.
 */
#ifndef EB_CLI_DEVICESIM_WEB_H
#define EB_CLI_DEVICESIM_WEB_H

#include <stddef.h>

#define EB_DEVICESIM_WEB_MAX_PAGE   (512 * 1024) /* one HTML page */
#define EB_DEVICESIM_WEB_MAX_FIELDS 64           /* fields of one form */
#define EB_DEVICESIM_WEB_MAX_VALUE  4096 /* one attribute value, decoded */
#define EB_DEVICESIM_WEB_MAX_HOPS   40   /* requests of one drive */

struct eb_devicesim_field {
	char *name;
	char *value;
	char *type; /* lower-cased; "text" when absent */
};

/* One HTML form: caller-owned, released with eb_devicesim_form_finish(). */
struct eb_devicesim_form {
	char *action; /* entities decoded; "" when absent (the page itself) */
	char *method; /* "get" or "post" */
	/* successful controls: inputs (unchecked boxes left out) and the
	 * first named submit button */
	struct eb_devicesim_field f[EB_DEVICESIM_WEB_MAX_FIELDS];
	size_t n;
	int has_password; /* an <input type="password"> is present */
};

/*
 * Find a form in the len bytes of html: the first one holding a password
 * input, else the first one. Fills form (overwritten). Returns 0, or -1
 * when there is no usable form (none, or over a limit).
 */
int eb_devicesim_form_find(const char *html, size_t len,
                           struct eb_devicesim_form *form);
void eb_devicesim_form_finish(struct eb_devicesim_form *form);

/* Why eb_devicesim_web_drive() stopped without a result. */
enum eb_devicesim_web_error {
	EB_DEVICESIM_WEB_TRANSPORT = 1, /* DNS, connect, TLS, timeout... */
	EB_DEVICESIM_WEB_LOGIN_FAILED,  /* the login form came back */
	EB_DEVICESIM_WEB_NEED_LOGIN,    /* a login form, but no --login */
	EB_DEVICESIM_WEB_PAGE, /* an error page or a page without a form */
	EB_DEVICESIM_WEB_LOOP, /* too many requests */
	EB_DEVICESIM_WEB_OTHER /* out of memory, bad URL... */
};

struct eb_devicesim_web_opts {
	const char *login;       /* may be NULL: then no login form is filled */
	const char *password;    /* with login */
	const char *stop_prefix; /* e.g. "apple-remotemanagement-user-login:" */
	const char *cafile;      /* may be NULL */
	int timeout;             /* seconds per request */
};

/* What a drive did, for the report. */
struct eb_devicesim_web_result {
	enum eb_devicesim_web_error error; /* 0 on success */
	int requests;                      /* made */
	int logins;                        /* login forms submitted */
	int other_forms;                   /* consent and other forms */
	long status;                       /* of the last response */
	char last_url[512];                /* of the last request */
};

/*
 * GET url and walk on as described at the top of this file. Returns the
 * Location that starts with o->stop_prefix (a fresh string: eb_free it),
 * or NULL with res->error set and err saying what happened (a page's
 * title and error text included; no cookie or form value).
 */
char *eb_devicesim_web_drive(const char *url,
                             const struct eb_devicesim_web_opts *o,
                             struct eb_devicesim_web_result *res, char *err,
                             size_t errlen);

/*
 * Resolve ref (a Location or form action) against the absolute http(s) URL
 * base. Returns a fresh string (eb_free it), or NULL.
 */
char *eb_devicesim_web_resolve(const char *base, const char *ref);

#endif
