/*
 * Tenant "branding" (config.h struct eb_branding): the organisation's name,
 * logo, colour and support contacts on the pages a person sees. The colour
 * is checked to be "#rrggbb" and the text on it is chosen for contrast.
 */
#include <math.h>
#include <string.h>

#include "core/config_int.h"
#include "core/mem.h"

#define MAX_NAME      100
#define MAX_EMAIL     254
#define MAX_PHONE     32
#define DEFAULT_COLOR "#1d1d1f"
#define MIN_CONTRAST  450 /* WCAG 2 AA for normal text: 4.5:1 */

const char *const eb_cfg_keys_branding[] = {"name", "logo_url", "primary_color",
                                            "support", NULL};
const char *const eb_cfg_keys_branding_support[] = {"email", "url", "phone",
                                                    NULL};

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* The relative luminance (WCAG 2) of "#rrggbb", or -1. */
static double
luminance(const char *c)
{
	static const double w[3] = {0.2126, 0.7152, 0.0722};
	double l = 0, v;
	int i, hi, lo;

	if (c == NULL || strlen(c) != 7 || c[0] != '#')
		return -1;
	for (i = 0; i < 3; i++) {
		if ((hi = hexval(c[1 + 2 * i])) == -1 ||
		    (lo = hexval(c[2 + 2 * i])) == -1)
			return -1;
		v = (hi * 16 + lo) / 255.0;
		v = v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4);
		l += w[i] * v;
	}
	return l;
}

int
eb_cfg_contrast(const char *a, const char *b)
{
	double la = luminance(a), lb = luminance(b), t;

	if (la < 0 || lb < 0)
		return -1;
	if (la < lb) {
		t = la;
		la = lb;
		lb = t;
	}
	return (int)((la + 0.05) / (lb + 0.05) * 100);
}

static int
check_color(struct eb_cfg_ctx *c, struct eb_branding *b)
{
	int white, black;

	if (b->primary_color == NULL &&
	    (b->primary_color = eb_strdup(DEFAULT_COLOR)) == NULL)
		return eb_cfg_fail(c, "branding", "primary_color",
		                   "out of memory");
	white = eb_cfg_contrast(b->primary_color, "#ffffff");
	black = eb_cfg_contrast(b->primary_color, "#000000");
	if (white == -1)
		return eb_cfg_fail(c, "branding", "primary_color",
		                   "must be a colour #rrggbb");
	/* one of the two is always at least 4.58:1; checked all the same */
	if (white < MIN_CONTRAST && black < MIN_CONTRAST)
		return eb_cfg_fail(c, "branding", "primary_color",
		                   "has too little contrast for any text");
	memcpy(b->text_color, white >= black ? "#ffffff" : "#000000", 8);
	return 0;
}

static int
check_support(struct eb_cfg_ctx *c, const json_t *o, struct eb_branding *b)
{
	const char *p = "branding.support";
	const char *e;

	if (eb_cfg_keys(c, o, p, eb_cfg_keys_branding_support) == -1 ||
	    eb_cfg_str(c, o, p, "email", 0, 0, &b->support_email) == -1 ||
	    eb_cfg_url(c, o, p, "url", 0, EB_URL_QUERY, &b->support_url) ==
	        -1 ||
	    eb_cfg_str(c, o, p, "phone", 0, 0, &b->support_phone) == -1)
		return -1;
	if ((e = b->support_email) != NULL &&
	    (strlen(e) > MAX_EMAIL || strchr(e, '@') == NULL || e[0] == '@' ||
	     strpbrk(e, " \t<>\"'(),;:[]\\") != NULL))
		return eb_cfg_fail(c, p, "email",
		                   "must be an address "
		                   "name@domain");
	if (b->support_url != NULL && strncmp(b->support_url, "https://", 8))
		return eb_cfg_fail(c, p, "url", "must be an https:// URL");
	if (b->support_phone != NULL &&
	    (b->support_phone[0] == '\0' ||
	     strlen(b->support_phone) > MAX_PHONE ||
	     strspn(b->support_phone, "+0123456789 ()-./") !=
	         strlen(b->support_phone)))
		return eb_cfg_fail(c, p, "phone",
		                   "must be at most 32 of digits, spaces and "
		                   "+()-./");
	return 0;
}

int
eb_cfg_parse_branding(struct eb_cfg_ctx *c, const json_t *root,
                      struct eb_tenant *t)
{
	const char *p = "branding";
	struct eb_branding *b;
	json_t *o, *s;

	if (eb_cfg_obj(c, root, NULL, p, &o) == -1)
		return -1;
	if (o == NULL)
		return 0;
	if ((b = t->branding = eb_calloc(1, sizeof(*b))) == NULL)
		return eb_cfg_fail(c, NULL, p, "out of memory");
	if (eb_cfg_keys(c, o, p, eb_cfg_keys_branding) == -1 ||
	    eb_cfg_str(c, o, p, "name", 1, 0, &b->name) == -1 ||
	    eb_cfg_url(c, o, p, "logo_url", 0, EB_URL_QUERY, &b->logo_url) ==
	        -1 ||
	    eb_cfg_str(c, o, p, "primary_color", 0, 0, &b->primary_color) ==
	        -1 ||
	    eb_cfg_obj(c, o, p, "support", &s) == -1)
		return -1;
	if (b->name[0] == '\0' || strlen(b->name) > MAX_NAME)
		return eb_cfg_fail(c, p, "name", "must be 1 to 100 bytes");
	if (b->logo_url != NULL && strncmp(b->logo_url, "https://", 8) != 0)
		return eb_cfg_fail(c, p, "logo_url", "must be an https:// URL");
	if (check_color(c, b) == -1)
		return -1;
	return s != NULL ? check_support(c, s, b) : 0;
}

void
eb_cfg_branding_free(struct eb_branding *b)
{
	if (b == NULL)
		return;
	eb_free(b->name);
	eb_free(b->logo_url);
	eb_free(b->primary_color);
	eb_free(b->support_email);
	eb_free(b->support_url);
	eb_free(b->support_phone);
	eb_free(b);
}
