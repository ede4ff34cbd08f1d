/*
 * The PostgreSQL backend's inserts against their records' column tables
 * (store/columns.h), without a server: each insert names the columns it
 * writes (BOUND and FIXED, in list order, no AUTO one), gives a BOUND
 * column $n numbered in list order and a FIXED one its constant, and
 * declares one parameter per BOUND column typed by its kind, as
 * eb_pg_args_row binds them. The $n are the one part written by hand.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "store/pg/pg_int.h"

#define ITEM_MAX 128

/* The next item of a list in s, up to ',' or one of the ends, trimmed,
 * into buf; s moved past it (onto the end it stopped at). */
static void
next_item(const char **s, const char *ends, char *buf)
{
	const char *p = *s, *e;
	size_t n;

	while (*p == ' ')
		p++;
	e = p;
	while (*e != '\0' && *e != ',' && strchr(ends, *e) == NULL)
		e++;
	n = (size_t)(e - p);
	while (n > 0 && p[n - 1] == ' ')
		n--;
	assert_true(n > 0 && n < ITEM_MAX);
	memcpy(buf, p, n);
	buf[n] = '\0';
	*s = e;
}

/* The parameter type a BOUND column of this kind binds with. */
static uint32_t
kind_type(enum eb_col_kind k)
{
	switch (k) {
	case EB_COL_I64:
		return EB_PG_INT8;
	case EB_COL_BLOB:
		return EB_PG_BYTEA;
	case EB_COL_TEXT:
	case EB_COL_ENUM:
		break;
	}
	return EB_PG_TEXT;
}

/*
 * Statement id inserts one record of cols into table: its column list,
 * its VALUES (or SELECT) list and its first parameters agree with cols.
 */
static void
check_insert(int id, const char *table, const struct eb_columns *cols)
{
	const struct eb_pg_stmt *st = &eb_pg_stmts[id];
	char head[128], item[ITEM_MAX], want[ITEM_MAX];
	const struct eb_col *col;
	const char *s;
	size_t k;
	int nbound = 0;

	snprintf(head, sizeof(head), "INSERT INTO %s (", table);
	assert_non_null(s = strstr(st->sql, head));
	s += strlen(head);
	for (k = 0; k < cols->n; k++) {
		if (cols->v[k].write == EB_COL_AUTO)
			continue;
		if (*s == ',')
			s++;
		next_item(&s, ")", item);
		assert_string_equal(item, cols->v[k].name);
	}
	assert_true(*s == ')');
	s++;
	if (strncmp(s, " VALUES (", 9) == 0)
		s += 9;
	else if (strncmp(s, " SELECT ", 8) == 0)
		s += 8;
	else
		fail_msg("%s: no VALUES after the column list", st->name);
	for (k = 0; k < cols->n; k++) {
		col = &cols->v[k];
		if (col->write == EB_COL_AUTO)
			continue;
		if (*s == ',')
			s++;
		next_item(&s, ") ", item);
		if (col->write == EB_COL_FIXED) {
			assert_string_equal(item, col->fixed);
			continue;
		}
		snprintf(want, sizeof(want), "$%d", ++nbound);
		assert_string_equal(item, want);
		assert_true(nbound <= st->nparams);
		assert_int_equal(st->types[nbound - 1], kind_type(col->kind));
	}
	assert_true(*s == ')' || *s == ' ');
}

/* Each insert of a record, checked against the record's table. */
static void
test_inserts(void **state)
{
	(void)state;
	check_insert(PS_AUDIT_ADD, "audit_events", &eb_columns_audit);
	check_insert(PS_FLOW_PUT, "login_flows", &eb_columns_flow);
	check_insert(PS_CODE_INS, "auth_codes", &eb_columns_code);
	check_insert(PS_GRANT_INS, "grants", &eb_columns_grant);
	check_insert(PS_TOKEN_INS, "tokens", &eb_columns_token);
	check_insert(PS_KEY_INS, "signing_keys", &eb_columns_key);
	check_insert(PS_MAP_PUT, "mapping_overrides", &eb_columns_mapping);
}

/* What the inserts bind beyond their record: the grant's audit detail. */
static void
test_extra_params(void **state)
{
	const struct eb_pg_stmt *g = &eb_pg_stmts[PS_GRANT_INS];

	(void)state;
	assert_int_equal(g->nparams, EB_COLUMNS_NBOUND(EB_COLUMNS_GRANT) + 1);
	assert_int_equal(g->types[g->nparams - 1], EB_PG_TEXT);
	assert_non_null(strstr(g->sql, "$27"));
	assert_int_equal(eb_pg_stmts[PS_AUDIT_ADD].nparams,
	                 EB_COLUMNS_NBOUND(EB_COLUMNS_AUDIT));
	assert_int_equal(eb_pg_stmts[PS_MAP_PUT].nparams,
	                 EB_COLUMNS_NBOUND(EB_COLUMNS_MAPPING));
}

/* An AUTO column is never named by an insert: the grant's lease columns
 * may not exist yet (before migration 6), the audit id is a sequence's. */
static void
test_auto_left_out(void **state)
{
	(void)state;
	assert_null(strstr(eb_pg_stmts[PS_GRANT_INS].sql, "lease_"));
	assert_null(strstr(eb_pg_stmts[PS_AUDIT_ADD].sql, "(id"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_inserts),
	    cmocka_unit_test(test_extra_params),
	    cmocka_unit_test(test_auto_left_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
