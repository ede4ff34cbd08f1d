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
	const char *sql; /* one or more statements */
};

/* The migrations this binary knows, oldest first; *n is their count. */
const struct eb_store_migration *eb_store_migrations(size_t *n);

#endif
