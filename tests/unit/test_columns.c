/*
 * The column lists of store/columns.h: each table has the list's columns
 * in its order, names and fields that do not collide, what each kind and
 * write policy needs, and the column-list strings agree with the tables.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "store/columns.h"

/* The table's names joined by ", " must be exactly sql. */
static void
check_sql(const struct eb_columns *t, const char *sql)
{
	char buf[2048];
	size_t i, len = 0;
	int n;

	buf[0] = '\0';
	for (i = 0; i < t->n; i++) {
		n = snprintf(buf + len, sizeof(buf) - len, "%s%s",
		             i > 0 ? ", " : "", t->v[i].name);
		assert_true(n > 0 && (size_t)n < sizeof(buf) - len);
		len += (size_t)n;
	}
	assert_string_equal(buf, sql);
}

static void
check_table(const struct eb_columns *t, size_t count, size_t nbound,
            size_t size, const char *sql)
{
	const struct eb_col *a, *b;
	size_t i, j, bound = 0;

	assert_int_equal(t->n, count);
	assert_int_equal(t->size, size);
	check_sql(t, sql);
	for (i = 0; i < t->n; i++) {
		a = &t->v[i];
		assert_true(a->off < t->size);
		switch (a->kind) {
		case EB_COL_BLOB:
			assert_true(a->len_off < t->size);
			assert_true(a->len_off != a->off);
			break;
		case EB_COL_ENUM:
			assert_non_null(a->enum_name);
			assert_non_null(a->enum_name(0));
			assert_null(a->enum_name(-1));
			break;
		default:
			assert_null(a->enum_name);
		}
		if (a->write == EB_COL_FIXED)
			assert_non_null(a->fixed);
		else
			assert_null(a->fixed);
		bound += a->write == EB_COL_BOUND;
		for (j = 0; j < i; j++) {
			b = &t->v[j];
			assert_true(strcmp(a->name, b->name) != 0);
			assert_true(a->off != b->off);
		}
	}
	assert_int_equal(bound, nbound);
}

#define CHECK(C, LIST)                                                         \
	check_table(&eb_columns_##C, EB_COLUMNS_COUNT(LIST),                   \
	            EB_COLUMNS_NBOUND(LIST), sizeof(struct eb_store_##C),      \
	            EB_COLUMNS_SQL(LIST))

static void
test_tables(void **state)
{
	(void)state;
	CHECK(audit, EB_COLUMNS_AUDIT);
	CHECK(flow, EB_COLUMNS_FLOW);
	CHECK(code, EB_COLUMNS_CODE);
	CHECK(grant, EB_COLUMNS_GRANT);
	CHECK(token, EB_COLUMNS_TOKEN);
	CHECK(key, EB_COLUMNS_KEY);
	CHECK(mapping, EB_COLUMNS_MAPPING);
}

/* The qualified list is the plain one with each name qualified. */
static void
test_qualified(void **state)
{
	(void)state;
	assert_string_equal(EB_COLUMNS_QSQL(EB_COLUMNS_MAPPING, "m."),
	                    "m.tenant, m.subject, m.managed_apple_id, m.note,"
	                    " m.created_at, m.updated_at");
}

/* What a new row is written with names states the enums still have. */
static void
test_fixed_values(void **state)
{
	const struct eb_columns *t = &eb_columns_token;
	char want[32];
	size_t i;
	int seen = 0;

	(void)state;
	for (i = 0; i < t->n; i++) {
		if (t->v[i].kind != EB_COL_ENUM ||
		    t->v[i].write != EB_COL_FIXED)
			continue;
		snprintf(want, sizeof(want), "'%s'",
		         eb_store_token_status_name(EB_STORE_TOKEN_ACTIVE));
		assert_string_equal(t->v[i].name, "status");
		assert_string_equal(t->v[i].fixed, want);
		seen++;
	}
	assert_int_equal(seen, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tables),
	    cmocka_unit_test(test_qualified),
	    cmocka_unit_test(test_fixed_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
