/*
 * Moving an SQLite install into PostgreSQL (enrollbridge import-sqlite).
 */
#ifndef EB_PG_IMPORT_H
#define EB_PG_IMPORT_H

#include <stdio.h>

/*
 * Copy every row of the SQLite database at sqlite_path into the
 * PostgreSQL database dsn, in one transaction. Both must already be at the
 * same schema version (open each through the store first, which migrates
 * it), and the PostgreSQL one must hold no data yet. One line per table
 * ("grants: 12 rows") and a total go to report (may be NULL). 0, or -1
 * with the reason in err (errlen bytes; never a password) and nothing
 * written to PostgreSQL.
 */
int eb_store_pg_import_sqlite(const char *sqlite_path, const char *dsn,
                              FILE *report, char *err, size_t errlen);

#endif
