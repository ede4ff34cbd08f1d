/*
 * `enrollbridge import-sqlite -c FILE SQLITE_PATH`: move an SQLite install
 * into the PostgreSQL database the configuration names (its `database` is
 * a DSN), keeping every grant, token, code, login flow, signing key,
 * mapping override and audit event, so that no device signs in again.
 *
 * Both databases are first migrated to this binary's schema (the SQLite
 * file in place, as `serve` would; PostgreSQL as `enrollbridge migrate`),
 * then every row is copied in one PostgreSQL transaction, into a database
 * that holds no data yet. Prints one "TABLE: N rows" line per table and a
 * total; exit 0 when everything was copied, 1 when nothing was (the
 * reason is printed; PostgreSQL is left as it was), 2 on a usage error.
 * Stop the SQLite server first: rows it writes after the copy started are
 * not copied. The seal keys travel separately: put the SQLite install's
 * key (state_dir/seal.key) in `seal_keys`, so that what it sealed opens.
 */
#ifndef EB_CLI_IMPORTDB_H
#define EB_CLI_IMPORTDB_H

/* argv[0] is "import-sqlite". */
int eb_cli_import_sqlite(int argc, char **argv);

#endif
