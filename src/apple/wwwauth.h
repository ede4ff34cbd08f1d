/*
 * Apple's WWW-Authenticate challenge (PROTOCOL.md section 2): the builder the
 * enroll handler uses to answer 401, and a parser for challenges received
 * from servers (the discover command, tests).
 *
 * The builder produces only Apple's exact form: scheme "Bearer", every value
 * quoted, parameters separated by ", ", e.g.
 *	Bearer method="apple-as-web", url="https://bridge/t/T/auth/F"
 *
 * The parser reads one challenge in RFC 7235 auth-param syntax, tolerant of
 * what real servers send (token or quoted-string values, backslash escapes,
 * optional whitespace, any case in parameter names), and records every
 * deviation from Apple's exact form; in strict mode any deviation is an
 * error. Its input is untrusted: it is bounded (EB_WWWAUTH_MAX_LEN bytes,
 * EB_WWWAUTH_MAX_PARAMS parameters) and fuzzed (tests/fuzz/fuzz_wwwauth.c).
 */
#ifndef EB_WWWAUTH_H
#define EB_WWWAUTH_H

#include <stddef.h>

#define EB_WWWAUTH_MAX_LEN    8192
#define EB_WWWAUTH_MAX_PARAMS 32

/* eb_wwwauth_parse() flags */
#define EB_WWWAUTH_STRICT 0x01 /* any deviation below is an error */

/* Deviations from Apple's exact form, as recorded by the parser. */
#define EB_WWWAUTH_DEV_SCHEME_CASE 0x0001 /* "bearer" instead of "Bearer" */
#define EB_WWWAUTH_DEV_SCHEME      0x0002 /* not Bearer at all */
#define EB_WWWAUTH_DEV_UNQUOTED    0x0004 /* a value given as a bare token */
#define EB_WWWAUTH_DEV_SEPARATOR                                               \
	0x0008 /* not exactly ", " (or one space after the scheme) */
#define EB_WWWAUTH_DEV_WHITESPACE                                              \
	0x0010                       /* blanks around '=' or at either end */
#define EB_WWWAUTH_DEV_ESCAPE 0x0020 /* backslash escape in a quoted value */
#define EB_WWWAUTH_DEV_EMPTY_ELEMENT                                           \
	0x0040 /* empty list element or trailing comma */
#define EB_WWWAUTH_DEV_NAME_CASE 0x0080 /* parameter name not lower-case */

enum eb_wwwauth_method {
	EB_WWWAUTH_METHOD_UNKNOWN = 0, /* absent or not one of Apple's */
	EB_WWWAUTH_METHOD_AS_WEB,      /* "apple-as-web" */
	EB_WWWAUTH_METHOD_OAUTH2       /* "apple-oauth2" */
};

struct eb_wwwauth_param {
	char *name;  /* lower-cased */
	char *value; /* unquoted and unescaped */
};

/* A parsed challenge; caller-owned, released with eb_wwwauth_finish(). */
struct eb_wwwauth {
	char *scheme; /* as received */
	struct eb_wwwauth_param params[EB_WWWAUTH_MAX_PARAMS];
	size_t nparams;      /* in the order received; names are unique */
	unsigned deviations; /* EB_WWWAUTH_DEV_* bits */
};

/* What to put in a challenge (strings are not copied). */
struct eb_wwwauth_challenge {
	enum eb_wwwauth_method method;
	const char *url; /* apple-as-web */
	/* apple-oauth2 */
	const char *authorization_url;
	const char *token_url;
	const char *redirect_url;
	const char *client_id;
	const char *scope;
};

/*
 * Build the header value (without "WWW-Authenticate: ") for c. Refuses
 * (NULL) a missing or empty value (scope may be empty), and any value with
 * '"', '\\', a control character or a non-ASCII byte. Returns a string to
 * eb_free, or NULL.
 */
char *eb_wwwauth_build(const struct eb_wwwauth_challenge *c);

/*
 * Parse the len bytes at s as one challenge into w (overwritten; always call
 * eb_wwwauth_finish() afterwards, whatever the result). Returns 0, or -1 on
 * a syntax error, a limit exceeded, a duplicate parameter, more than one
 * challenge, or (with EB_WWWAUTH_STRICT) any deviation; err (may be NULL)
 * then says why. w->deviations is filled in every case.
 */
int eb_wwwauth_parse(struct eb_wwwauth *w, const char *s, size_t len,
                     unsigned flags, char *err, size_t errlen);
/* Free what eb_wwwauth_parse() put in w; leaves w empty. */
void eb_wwwauth_finish(struct eb_wwwauth *w);

/* Value of the parameter named name (case-insensitive), or NULL. */
const char *eb_wwwauth_param(const struct eb_wwwauth *w, const char *name);
/* The method parameter, classified. */
enum eb_wwwauth_method eb_wwwauth_method(const struct eb_wwwauth *w);

/*
 * Serialise w in Apple's exact form: the scheme as parsed, then every
 * parameter as name="value" joined by ", ". Refuses (NULL) what the builder
 * refuses. Returns a string to eb_free.
 */
char *eb_wwwauth_format(const struct eb_wwwauth *w);

/*
 * Check that w is a challenge a device accepts: scheme exactly "Bearer",
 * method apple-as-web with an acceptable url, or apple-oauth2 with
 * acceptable authorization-url and token-url and non-empty redirect-url and
 * client-id, and a scope. Returns 0, or -1 with err saying what is wrong.
 */
int eb_wwwauth_check_apple(const struct eb_wwwauth *w, char *err,
                           size_t errlen);

/*
 * The URL rule used for Apple-facing URLs (challenge URLs, discovery
 * BaseURL): absolute, https with a host, no user:password part and no
 * blank or control character; http only for a loopback host (localhost,
 * 127.0.0.0/8, [::1]). Returns 1 when acceptable, else 0 with err filled.
 */
int eb_wwwauth_url_ok(const char *url, char *err, size_t errlen);

/*
 * "; "-joined descriptions of the deviation bits in devs, written into out
 * (truncated to outlen, always NUL-terminated).
 */
void eb_wwwauth_describe(unsigned devs, char *out, size_t outlen);

#endif
