/*
 * The pages a person sees: the template engine (escaping, sections, a
 * missing slot), the message catalogue (every message in every language,
 * the same {{slots}} everywhere, well-formed UTF-8), Accept-Language
 * negotiation (q-values, region fallback, hostile values) and the contrast
 * ratio used to pick the branding's text colour.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/config_int.h"
#include "core/i18n.h"
#include "core/str.h"
#include "core/tmpl.h"

static char *
render(const char *tmpl, const struct eb_tmpl_slot *s, size_t n, int flags,
       const char **why)
{
	static char out[4096];
	struct eb_buf b;
	int rc;

	eb_buf_init(&b, 4096);
	rc = eb_tmpl_render(&b, tmpl, s, n, flags, why);
	snprintf(out, sizeof(out), "%s", eb_buf_str(&b));
	eb_buf_finish(&b);
	return rc == 0 ? out : NULL;
}

static void
test_tmpl_escapes(void **state)
{
	const struct eb_tmpl_slot s[] = {
	    {"a", "<script>alert('x')</script> & \"q\""},
	    {"b", NULL},
	};
	const char *why, *r;

	(void)state;
	r = render("<p title=\"{{a}}\">{{a}}</p>[{{b}}]", s, 2, 0, &why);
	assert_non_null(r);
	assert_string_equal(
	    r, "<p title=\"&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; "
	       "&amp; &quot;q&quot;\">&lt;script&gt;alert(&#39;x&#39;)&lt;/"
	       "script&gt; &amp; &quot;q&quot;</p>[]");
	/* plain text: for a message later put into the page (and escaped) */
	r = render("x {{a}}", s, 2, EB_TMPL_TEXT, &why);
	assert_string_equal(r, "x <script>alert('x')</script> & \"q\"");
	/* a value that looks like a tag is not expanded again */
	{
		const struct eb_tmpl_slot t[] = {{"a", "{{b}}"}};

		assert_string_equal(render("{{a}}", t, 1, 0, &why), "{{b}}");
	}
}

static void
test_tmpl_sections(void **state)
{
	const struct eb_tmpl_slot s[] = {
	    {"on", "1"}, {"off", ""}, {"name", "N"}, {"nil", NULL}};
	const char *why;

	(void)state;
	assert_string_equal(render("a{{#on}}<b>{{name}}</b>{{#off}}X{{/off}}"
	                           "{{/on}}c{{#nil}}Y{{/nil}}",
	                           s, 4, 0, &why),
	                    "a<b>N</b>c");
}

static void
test_tmpl_errors(void **state)
{
	const struct eb_tmpl_slot s[] = {{"a", "1"}};
	const char *why;

	(void)state;
	assert_null(render("x {{missing}} y", s, 1, 0, &why));
	assert_string_equal(why, "template slot has no value");
	/* also inside a section that is not shown: a typo is always found */
	assert_null(render("{{#missing}}x{{/missing}}", s, 1, 0, &why));
	assert_null(render("x {{a", s, 1, 0, &why));
	assert_string_equal(why, "unclosed {{");
	assert_null(render("{{#a}}x", s, 1, 0, &why));
	assert_string_equal(why, "unclosed section");
	assert_null(render("{{/a}}", s, 1, 0, &why));
	assert_null(render("{{}}", s, 1, 0, &why));
	assert_null(render("{{a b}}", s, 1, 0, &why));
	assert_null(render("{{{a}}}", s, 1, 0, &why)); /* no raw output */
	assert_string_equal(why, "bad slot name");
}

/* The sorted, space-separated {{slots}} of a message. */
static void
slots_of(const char *m, char *out, size_t outlen)
{
	const char *p = m, *e;

	out[0] = '\0';
	while ((p = strstr(p, "{{")) != NULL) {
		assert_non_null(e = strstr(p, "}}"));
		snprintf(out + strlen(out), outlen - strlen(out), "%.*s ",
		         (int)(e - p - 2), p + 2);
		p = e + 2;
	}
}

static void
test_catalogue_complete(void **state)
{
	char want[256], got[256];
	const char *m;
	int l, id;

	(void)state;
	for (id = 0; id < EB_MSG_COUNT; id++) {
		slots_of(eb_i18n_msg(EB_LANG_EN, (enum eb_msg)id), want,
		         sizeof(want));
		for (l = 0; l < EB_LANG_COUNT; l++) {
			m = eb_i18n_raw((enum eb_lang)l, (enum eb_msg)id);
			if (m == NULL || m[0] == '\0')
				fail_msg("message %d missing in %s", id,
				         eb_i18n_tag((enum eb_lang)l));
			assert_true(eb_str_is_utf8(m, strlen(m)));
			slots_of(m, got, sizeof(got));
			if (strcmp(want, got) != 0)
				fail_msg("message %d in %s has slots '%s', "
				         "English '%s'",
				         id, eb_i18n_tag((enum eb_lang)l), got,
				         want);
		}
	}
	assert_string_equal(eb_i18n_msg(EB_LANG_COUNT, EB_MSG_HELP),
	                    "Need help?");
	assert_string_equal(eb_i18n_msg(EB_LANG_DE, EB_MSG_COUNT), "");
}

static void
test_negotiate(void **state)
{
	static const struct {
		const char *h;
		enum eb_lang want;
	} c[] = {
	    {NULL, EB_LANG_EN},
	    {"", EB_LANG_EN},
	    {"de", EB_LANG_DE},
	    {"de-AT", EB_LANG_DE},
	    {"DE-at", EB_LANG_DE},
	    {"ja-JP,ja;q=0.9,en;q=0.8", EB_LANG_JA},
	    {"en;q=0.5, fr;q=0.9", EB_LANG_FR},
	    {"it, es;q=0.1", EB_LANG_ES},
	    {"it, pt-BR", EB_LANG_EN},
	    {"de;q=0, es", EB_LANG_ES},
	    {"de;q=0", EB_LANG_EN},
	    {"de;q=1.0, fr", EB_LANG_DE}, /* a tie: the first */
	    {"  fr-CA ; q=0.7 ,", EB_LANG_FR},
	    {"fr;q = 0.7", EB_LANG_EN},
	    {"*", EB_LANG_EN},
	    {"de;q=2, es;q=0.5", EB_LANG_ES},
	    {"de;q=0.12345, es;q=0.5", EB_LANG_ES},
	    {"de;q=abc", EB_LANG_EN},
	    {"de;x=1", EB_LANG_EN},
	    {"deutschland", EB_LANG_EN},
	    {"de_AT", EB_LANG_EN},
	    {"d\xc3\xa9", EB_LANG_EN},
	    {"<script>,ja", EB_LANG_JA},
	    {",,,;;;===", EB_LANG_EN},
	    {"de;q=", EB_LANG_EN},
	    {"de;q=-1", EB_LANG_EN},
	};
	char big[4096];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(*c); i++)
		if (eb_i18n_negotiate(c[i].h) != c[i].want)
			fail_msg("'%s': got %s, want %s", c[i].h,
			         eb_i18n_tag(eb_i18n_negotiate(c[i].h)),
			         eb_i18n_tag(c[i].want));
	/* only the first items and bytes are looked at */
	big[0] = '\0';
	for (i = 0; i < 40; i++)
		strcat(big, "xx,");
	strcat(big, "ja");
	assert_int_equal(eb_i18n_negotiate(big), EB_LANG_EN);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big + sizeof(big) - 4, ",de", 3);
	assert_int_equal(eb_i18n_negotiate(big), EB_LANG_EN);
	memcpy(big, "es,", 3);
	assert_int_equal(eb_i18n_negotiate(big), EB_LANG_ES);
}

static void
test_contrast(void **state)
{
	(void)state;
	assert_int_equal(eb_cfg_contrast("#ffffff", "#000000"), 2100);
	assert_int_equal(eb_cfg_contrast("#000000", "#ffffff"), 2100);
	assert_int_equal(eb_cfg_contrast("#777777", "#777777"), 100);
	/* #767676 is the lightest grey with 4.5:1 on white */
	assert_true(eb_cfg_contrast("#767676", "#ffffff") >= 450);
	assert_true(eb_cfg_contrast("#777777", "#ffffff") < 450);
	assert_int_equal(eb_cfg_contrast("#fff", "#000000"), -1);
	assert_int_equal(eb_cfg_contrast("#gggggg", "#000000"), -1);
	assert_int_equal(eb_cfg_contrast(NULL, "#000000"), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tmpl_escapes),
	    cmocka_unit_test(test_tmpl_sections),
	    cmocka_unit_test(test_tmpl_errors),
	    cmocka_unit_test(test_catalogue_complete),
	    cmocka_unit_test(test_negotiate),
	    cmocka_unit_test(test_contrast),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
