/*
 * Moving an SQLite install into PostgreSQL (`enrollbridge import-sqlite`):
 * every row of every table the two schemas share is copied, in one
 * PostgreSQL transaction, into a database that holds no data yet, so that
 * no grant is lost and no device has to sign in again. Both databases must
 * be at the same schema version (the caller opens both through the store
 * first, which migrates them); the tables and their columns are then read
 * from the two catalogues rather than listed here, so a later migration
 * needs no change in this file. Rows travel through COPY into a temporary
 * table and then one INSERT ... OVERRIDING SYSTEM VALUE, so identity ids
 * (audit events) keep their values; their sequences are moved past them.
 *
 * The SQLite file is read inside one read transaction: a snapshot, even if
 * a server still writes it (stop it first all the same: what it writes
 * after the snapshot is not copied).
 */
#include "store/pg/pg_import.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"

/* Bookkeeping tables each database keeps for itself. */
static const char *const skip_tables[] = {"schema_migrations", "eb_locks",
                                          "eb_generation",     "renew_slots",
                                          "sqlite_sequence",   NULL};

#define MAX_TABLES  64
#define MAX_COLUMNS 64

struct imp {
	sqlite3 *lite;
	PGconn *pg;
	FILE *report;
	char *err;
	size_t errlen;
};

static int
fail(struct imp *im, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(im->err, im->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int
skipped(const char *name)
{
	size_t i;

	for (i = 0; skip_tables[i] != NULL; i++)
		if (strcmp(name, skip_tables[i]) == 0)
			return 1;
	return 0;
}

/* Run sql on PostgreSQL; 0, or -1 with the server's message in err. */
static int
pg_cmd(struct imp *im, const char *sql, int nparams, const char *const *params,
       PGresult **out)
{
	PGresult *r;
	ExecStatusType st;

	r = PQexecParams(im->pg, sql, nparams, NULL, params, NULL, NULL, 0);
	st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		fail(im, "PostgreSQL: %s", PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	if (out != NULL)
		*out = r;
	else
		PQclear(r);
	return 0;
}

static int
lite_version(struct imp *im, int64_t *v)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(im->lite,
	                       "SELECT coalesce(max(version), 0) FROM "
	                       "schema_migrations",
	                       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*v = sqlite3_column_int64(st, 0);
		rc = 0;
	} else
		fail(im, "SQLite: %s", sqlite3_errmsg(im->lite));
	sqlite3_finalize(st);
	return rc;
}

static int
pg_version(struct imp *im, int64_t *v)
{
	PGresult *r;

	if (pg_cmd(im,
	           "SELECT coalesce(max(version), 0)::text FROM "
	           "schema_migrations",
	           0, NULL, &r) == -1)
		return -1;
	*v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return 0;
}

/* The column names of an SQLite table, in order. */
static int
lite_columns(struct imp *im, const char *table, char **cols, size_t *n)
{
	sqlite3_stmt *st = NULL;
	char sql[160];
	int rc;

	*n = 0;
	snprintf(sql, sizeof(sql), "SELECT name FROM pragma_table_info('%s')",
	         table);
	if (sqlite3_prepare_v2(im->lite, sql, -1, &st, NULL) != SQLITE_OK)
		return fail(im, "SQLite: %s", sqlite3_errmsg(im->lite));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == MAX_COLUMNS) {
			sqlite3_finalize(st);
			return fail(im, "table %s: too many columns", table);
		}
		if ((cols[*n] = eb_strdup(
		         (const char *)sqlite3_column_text(st, 0))) == NULL) {
			sqlite3_finalize(st);
			return fail(im, "out of memory");
		}
		(*n)++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return fail(im, "SQLite: %s", sqlite3_errmsg(im->lite));
	return 0;
}

/*
 * Check that PostgreSQL has table with exactly these columns; *bytea gets
 * a bit per column whose type is bytea.
 */
static int
pg_check_columns(struct imp *im, const char *table, char **cols, size_t n,
                 uint64_t *bytea)
{
	const char *params[1] = {table};
	PGresult *r;
	size_t i;
	int j, found;

	*bytea = 0;
	if (pg_cmd(im,
	           "SELECT column_name::text, data_type::text FROM "
	           "information_schema.columns WHERE table_schema = "
	           "current_schema() AND table_name = $1",
	           1, params, &r) == -1)
		return -1;
	if ((size_t)PQntuples(r) != n) {
		fail(im,
		     "table %s: %d columns in PostgreSQL, %zu in SQLite: "
		     "the schemas differ",
		     table, PQntuples(r), n);
		PQclear(r);
		return -1;
	}
	for (i = 0; i < n; i++) {
		for (found = 0, j = 0; j < PQntuples(r) && !found; j++)
			if (strcmp(PQgetvalue(r, j, 0), cols[i]) == 0) {
				found = 1;
				if (strcmp(PQgetvalue(r, j, 1), "bytea") == 0)
					*bytea |= 1ULL << i;
			}
		if (!found) {
			PQclear(r);
			return fail(im,
			            "table %s: column %s missing in "
			            "PostgreSQL",
			            table, cols[i]);
		}
	}
	PQclear(r);
	return 0;
}

/* Append one value in COPY text format. */
static int
copy_value(struct eb_buf *b, sqlite3_stmt *st, int col, int is_bytea)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p;
	char num[32];
	int i, len;

	switch (sqlite3_column_type(st, col)) {
	case SQLITE_NULL:
		return eb_buf_add(b, "\\N", 2);
	case SQLITE_INTEGER:
		len = snprintf(num, sizeof(num), "%" PRId64,
		               (int64_t)sqlite3_column_int64(st, col));
		return eb_buf_add(b, num, (size_t)len);
	case SQLITE_FLOAT:
		len = snprintf(num, sizeof(num), "%.17g",
		               sqlite3_column_double(st, col));
		return eb_buf_add(b, num, (size_t)len);
	case SQLITE_BLOB:
		if (!is_bytea)
			return -2;
		p = sqlite3_column_blob(st, col);
		len = sqlite3_column_bytes(st, col);
		if (eb_buf_add(b, "\\\\x", 3) == -1)
			return -1;
		for (i = 0; i < len; i++) {
			char h[2] = {hex[p[i] >> 4], hex[p[i] & 15]};

			if (eb_buf_add(b, h, 2) == -1)
				return -1;
		}
		return 0;
	default: /* TEXT */
		p = sqlite3_column_text(st, col);
		len = sqlite3_column_bytes(st, col);
		for (i = 0; i < len; i++) {
			const char *esc = NULL;

			switch (p[i]) {
			case '\\':
				esc = "\\\\";
				break;
			case '\t':
				esc = "\\t";
				break;
			case '\n':
				esc = "\\n";
				break;
			case '\r':
				esc = "\\r";
				break;
			}
			if (esc != NULL
			        ? eb_buf_add(b, esc, 2) == -1
			        : eb_buf_add(b, (const char *)p + i, 1) == -1)
				return -1;
		}
		return 0;
	}
}

static void
free_cols(char **cols, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		eb_free(cols[i]);
}

/* A comma-separated, quoted column list. */
static int
col_list(struct eb_buf *b, char **cols, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (eb_buf_printf(b, "%s\"%s\"", i ? ", " : "", cols[i]) == -1)
			return -1;
	return 0;
}

/*
 * Move the sequence behind table.col (identity or serial), if it has one,
 * past the copied values. Asked column by column: a query naming max(col)
 * of a text column beside setval's bigint would not even parse.
 */
static int
reset_sequence(struct imp *im, const char *table, const char *col)
{
	const char *params[2];
	struct eb_buf sql;
	PGresult *r;
	char qtable[160];
	int rc = -1;

	snprintf(qtable, sizeof(qtable), "\"%s\"", table);
	params[0] = qtable;
	params[1] = col;
	if (pg_cmd(im, "SELECT pg_get_serial_sequence($1, $2)", 2, params,
	           &r) == -1)
		return -1;
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
		PQclear(r);
		return 0;
	}
	PQclear(r);
	eb_buf_init(&sql, 4096);
	if (eb_buf_printf(&sql,
	                  "SELECT setval(pg_get_serial_sequence($1, $2),"
	                  " coalesce((SELECT max(\"%s\") FROM \"%s\"), 1),"
	                  " (SELECT count(*) > 0 FROM \"%s\"))",
	                  col, table, table) == -1)
		fail(im, "out of memory");
	else
		rc = pg_cmd(im, eb_buf_str(&sql), 2, params, NULL);
	eb_buf_finish(&sql);
	return rc;
}

/* Copy one table; *rows counts what was copied. */
static int
copy_table(struct imp *im, const char *table, int64_t *rows)
{
	char *cols[MAX_COLUMNS];
	size_t n = 0, i;
	uint64_t bytea;
	struct eb_buf sql, line;
	sqlite3_stmt *st = NULL;
	PGresult *r;
	int rc = -1, step, v;

	*rows = 0;
	eb_buf_init(&sql, 64 * 1024);
	eb_buf_init(&line, 16 * 1024 * 1024);
	if (lite_columns(im, table, cols, &n) == -1 ||
	    pg_check_columns(im, table, cols, n, &bytea) == -1)
		goto out;
	if (eb_buf_printf(&sql,
	                  "CREATE TEMP TABLE eb_import (LIKE \"%s\") ON "
	                  "COMMIT DROP",
	                  table) == -1 ||
	    pg_cmd(im, eb_buf_str(&sql), 0, NULL, NULL) == -1)
		goto out;
	eb_buf_reset(&sql);
	if (eb_buf_add(&sql, "COPY eb_import (", 16) == -1 ||
	    col_list(&sql, cols, n) == -1 ||
	    eb_buf_add(&sql, ") FROM STDIN", 12) == -1) {
		fail(im, "out of memory");
		goto out;
	}
	r = PQexec(im->pg, eb_buf_str(&sql));
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		fail(im, "PostgreSQL: %s", PQresultErrorMessage(r));
		PQclear(r);
		goto out;
	}
	PQclear(r);

	eb_buf_reset(&sql);
	if (eb_buf_add(&sql, "SELECT ", 7) == -1 ||
	    col_list(&sql, cols, n) == -1 ||
	    eb_buf_printf(&sql, " FROM \"%s\"", table) == -1) {
		fail(im, "out of memory");
		PQputCopyEnd(im->pg, "out of memory");
		goto finish_copy;
	}
	if (sqlite3_prepare_v2(im->lite, eb_buf_str(&sql), -1, &st, NULL) !=
	    SQLITE_OK) {
		fail(im, "SQLite: %s", sqlite3_errmsg(im->lite));
		PQputCopyEnd(im->pg, "SQLite read failed");
		goto finish_copy;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		eb_buf_reset(&line);
		for (i = 0; i < n; i++) {
			if (i > 0 && eb_buf_add(&line, "\t", 1) == -1)
				break;
			if ((v = copy_value(&line, st, (int)i,
			                    (bytea >> i) & 1)) != 0) {
				if (v == -2)
					fail(im,
					     "table %s: a binary value in "
					     "column %s, which is not bytea "
					     "in PostgreSQL",
					     table, cols[i]);
				else
					fail(im, "out of memory");
				break;
			}
		}
		if (i < n || eb_buf_add(&line, "\n", 1) == -1 ||
		    PQputCopyData(im->pg, line.data, (int)line.len) != 1) {
			if (im->err[0] == '\0')
				fail(im, "PostgreSQL: %s",
				     PQerrorMessage(im->pg));
			PQputCopyEnd(im->pg, "import failed");
			goto finish_copy;
		}
		(*rows)++;
	}
	if (step != SQLITE_DONE) {
		fail(im, "SQLite: %s", sqlite3_errmsg(im->lite));
		PQputCopyEnd(im->pg, "SQLite read failed");
		goto finish_copy;
	}
	if (PQputCopyEnd(im->pg, NULL) != 1) {
		fail(im, "PostgreSQL: %s", PQerrorMessage(im->pg));
		goto finish_copy;
	}
	rc = 0;
finish_copy:
	/* collect the COPY's result, whatever happened above */
	while ((r = PQgetResult(im->pg)) != NULL) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0) {
			fail(im, "PostgreSQL: %s", PQresultErrorMessage(r));
			rc = -1;
		}
		PQclear(r);
	}
	if (rc == -1)
		goto out;
	rc = -1;
	eb_buf_reset(&sql);
	if (eb_buf_printf(&sql, "INSERT INTO \"%s\" (", table) == -1 ||
	    col_list(&sql, cols, n) == -1 ||
	    eb_buf_add(&sql, ") OVERRIDING SYSTEM VALUE SELECT ", 32) == -1 ||
	    col_list(&sql, cols, n) == -1 ||
	    eb_buf_add(&sql, " FROM eb_import", 15) == -1) {
		fail(im, "out of memory");
		goto out;
	}
	if (pg_cmd(im, eb_buf_str(&sql), 0, NULL, NULL) == -1 ||
	    pg_cmd(im, "DROP TABLE eb_import", 0, NULL, NULL) == -1)
		goto out;
	/* identity and serial columns continue after the copied ids */
	for (i = 0; i < n; i++)
		if (reset_sequence(im, table, cols[i]) == -1)
			goto out;
	rc = 0;
out:
	sqlite3_finalize(st);
	eb_buf_finish(&sql);
	eb_buf_finish_secret(&line); /* rows hold sealed secrets */
	free_cols(cols, n);
	return rc;
}

/* The tables to copy: SQLite's, minus the bookkeeping ones. */
static int
list_tables(struct imp *im, char **names, size_t *n)
{
	sqlite3_stmt *st = NULL;
	const char *name;
	int rc;

	*n = 0;
	if (sqlite3_prepare_v2(im->lite,
	                       "SELECT name FROM sqlite_master WHERE type = "
	                       "'table' AND name NOT LIKE 'sqlite_%' ORDER "
	                       "BY name",
	                       -1, &st, NULL) != SQLITE_OK)
		return fail(im, "SQLite: %s", sqlite3_errmsg(im->lite));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		name = (const char *)sqlite3_column_text(st, 0);
		if (skipped(name))
			continue;
		if (*n == MAX_TABLES || strchr(name, '"') != NULL ||
		    strchr(name, '\'') != NULL) {
			sqlite3_finalize(st);
			return fail(im, "unexpected table %s", name);
		}
		if ((names[(*n)++] = eb_strdup(name)) == NULL) {
			sqlite3_finalize(st);
			return fail(im, "out of memory");
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return fail(im, "SQLite: %s", sqlite3_errmsg(im->lite));
	return 0;
}

/* Whether PostgreSQL's foreign keys (fk: child, parent rows) make child
 * wait for a table among names[from..n) other than itself. */
static int
waits(PGresult *fk, const char *child, char **names, size_t from, size_t n)
{
	int k;
	size_t j;

	for (k = 0; k < PQntuples(fk); k++) {
		if (strcmp(PQgetvalue(fk, k, 0), child) != 0 ||
		    strcmp(PQgetvalue(fk, k, 1), child) == 0)
			continue;
		for (j = from; j < n; j++)
			if (strcmp(PQgetvalue(fk, k, 1), names[j]) == 0)
				return 1;
	}
	return 0;
}

/*
 * Put the tables in an order the target's foreign keys accept: a table
 * after every table it references (grants before tokens and codes).
 */
static int
order_tables(struct imp *im, char **names, size_t n)
{
	PGresult *fk;
	size_t done, i;
	char *t;

	if (pg_cmd(im,
	           "SELECT c.relname, p.relname FROM pg_constraint k"
	           " JOIN pg_class c ON c.oid = k.conrelid"
	           " JOIN pg_class p ON p.oid = k.confrelid"
	           " WHERE k.contype = 'f'"
	           " AND c.relnamespace = current_schema()::regnamespace",
	           0, NULL, &fk) == -1)
		return -1;
	for (done = 0; done < n;) {
		for (i = done; i < n; i++)
			if (!waits(fk, names[i], names, done, n))
				break;
		if (i == n) {
			PQclear(fk);
			return fail(im,
			            "the foreign keys of table %s form a "
			            "cycle",
			            names[done]);
		}
		t = names[i];
		memmove(&names[done + 1], &names[done],
		        (i - done) * sizeof(*names));
		names[done++] = t;
	}
	PQclear(fk);
	return 0;
}

/* 0 when every table to copy is empty in PostgreSQL. */
static int
pg_check_empty(struct imp *im, char **tables, size_t n)
{
	struct eb_buf sql;
	PGresult *r;
	size_t i;
	int rc = 0;

	eb_buf_init(&sql, 4096);
	for (i = 0; i < n && rc == 0; i++) {
		eb_buf_reset(&sql);
		if (eb_buf_printf(&sql,
		                  "SELECT EXISTS (SELECT 1 FROM \"%s\")::text",
		                  tables[i]) == -1) {
			rc = fail(im, "out of memory");
			break;
		}
		if (pg_cmd(im, eb_buf_str(&sql), 0, NULL, &r) == -1) {
			rc = -1;
			break;
		}
		if (strcmp(PQgetvalue(r, 0, 0), "true") == 0)
			rc = fail(im,
			          "the PostgreSQL database already holds data "
			          "(table %s): import only into a new one",
			          tables[i]);
		PQclear(r);
	}
	eb_buf_finish(&sql);
	return rc;
}

int
eb_store_pg_import_sqlite(const char *sqlite_path, const char *dsn,
                          FILE *report, char *err, size_t errlen)
{
	struct imp im = {.report = report, .err = err, .errlen = errlen};
	char *tables[MAX_TABLES];
	size_t n = 0, i;
	int64_t vl = 0, vp = 0, rows, total = 0;
	int rc = -1, in_tx = 0;

	err[0] = '\0';
	if (sqlite3_open_v2(sqlite_path, &im.lite, SQLITE_OPEN_READONLY,
	                    NULL) != SQLITE_OK) {
		fail(&im, "SQLite %s: %s", sqlite_path,
		     im.lite ? sqlite3_errmsg(im.lite) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(im.lite, 5000);
	im.pg = PQconnectdb(dsn);
	if (PQstatus(im.pg) != CONNECTION_OK) {
		/* libpq's message names host and user, never the password */
		fail(&im, "PostgreSQL: %s", PQerrorMessage(im.pg));
		goto out;
	}
	/* one snapshot of the SQLite file from here on */
	if (sqlite3_exec(im.lite, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    lite_version(&im, &vl) == -1)
		goto out;
	if (pg_cmd(&im, "BEGIN ISOLATION LEVEL SERIALIZABLE", 0, NULL, NULL) ==
	    -1)
		goto out;
	in_tx = 1;
	/* one import (or migration) at a time */
	if (pg_cmd(&im,
	           "INSERT INTO eb_locks (name, owner, until_at) VALUES "
	           "('migrate', 'import-sqlite', 0) ON CONFLICT DO NOTHING",
	           0, NULL, NULL) == -1 ||
	    pg_cmd(&im,
	           "SELECT 1 FROM eb_locks WHERE name = 'migrate' FOR UPDATE",
	           0, NULL, NULL) == -1 ||
	    pg_version(&im, &vp) == -1)
		goto out;
	if (vl != vp) {
		fail(&im,
		     "schema versions differ (SQLite %" PRId64
		     ", PostgreSQL %" PRId64 "): migrate both first",
		     vl, vp);
		goto out;
	}
	if (list_tables(&im, tables, &n) == -1 ||
	    order_tables(&im, tables, n) == -1 ||
	    pg_check_empty(&im, tables, n) == -1)
		goto out;
	for (i = 0; i < n; i++) {
		if (copy_table(&im, tables[i], &rows) == -1)
			goto out;
		if (report != NULL)
			fprintf(report, "%s: %" PRId64 " rows\n", tables[i],
			        rows);
		total += rows;
	}
	/* replicas already running drop what they cached */
	if (pg_cmd(&im, "UPDATE eb_generation SET n = n + 1 WHERE id = 1", 0,
	           NULL, NULL) == -1 ||
	    pg_cmd(&im, "COMMIT", 0, NULL, NULL) == -1)
		goto out;
	in_tx = 0;
	if (report != NULL)
		fprintf(report,
		        "imported %" PRId64 " rows at schema version "
		        "%" PRId64 "\n",
		        total, vl);
	rc = 0;
out:
	if (in_tx)
		PQclear(PQexec(im.pg, "ROLLBACK"));
	for (i = 0; i < n; i++)
		eb_free(tables[i]);
	if (im.pg != NULL)
		PQfinish(im.pg);
	if (im.lite != NULL)
		sqlite3_close(im.lite);
	return rc;
}
