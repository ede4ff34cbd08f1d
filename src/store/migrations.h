/*
 * The ordered schema migrations of the SQL backends (private to
 * src/store/). Each migration is applied once, in its own transaction, and
 * recorded in schema_migrations; versions are 1, 2, 3... in order.
 */
#ifndef EB_STORE_MIGRATIONS_H
#define EB_STORE_MIGRATIONS_H

#include <stddef.h>

struct eb_store_migration {
	int version;
	const char *name;
	const char *sql;    /* SQLite: one or more statements */
	const char *sql_pg; /* the same change for PostgreSQL */
	/*
	 * The oldest schema version whose binaries still work with the
	 * database once this migration is applied: an additive migration
	 * keeps the previous one's compat, a breaking one raises it. A binary
	 * that knows fewer migrations starts on the database when max(compat)
	 * is one it knows.
	 */
	int compat;
};

/* schema_migrations has its compat column from this version on. */
#define EB_STORE_COMPAT_SINCE 5

/* The migrations this binary knows, oldest first; *n is their count. */
const struct eb_store_migration *eb_store_migrations(size_t *n);

#endif
