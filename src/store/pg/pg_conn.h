/*
 * PostgreSQL connections for the store: a bounded pool, typed prepared
 * statements in binary format, a transaction helper that retries
 * serialization failures and deadlocks, and the SQLSTATE to store-code map.
 * Only files under src/store/pg/ include <libpq-fe.h>; this header is one
 * of them and is private to that folder.
 *
 * A pool holds at most `size` connections, opened lazily (the first one
 * when the pool is created, so a bad DSN fails at once). A caller checks
 * one out with eb_pg_pool_acquire, which waits at most the acquire timeout
 * when all are taken, and gives it back with eb_pg_pool_release. A
 * connection the server dropped is reconnected once, the first time it is
 * used again; if that fails the call returns EB_STORE_ERROR.
 *
 * The DSN may carry a password: it is never logged. Logs show
 * eb_pg_dsn_redact() of it.
 */
#ifndef EB_PG_CONN_H
#define EB_PG_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <libpq-fe.h>

/* Type OIDs of the parameters we bind (pg_type.h is server-only). */
#define EB_PG_INT8  20
#define EB_PG_TEXT  25
#define EB_PG_BYTEA 17

/* Most parameters one statement takes. */
#define EB_PG_MAXARGS 32

/*
 * Codes below the store's (enum eb_store_rc) that only this folder sees:
 * the transaction helper consumes them and returns EB_STORE_ERROR when it
 * gives up.
 */
#define EB_PG_RETRY  (-100) /* 40001 serialization, 40P01 deadlock */
#define EB_PG_BROKEN (-101) /* connection lost (08xxx, 57P01...) */

/* A prepared statement: name (unique in its table), text, parameter types. */
struct eb_pg_stmt {
	const char *name;
	const char *sql;
	int nparams;
	uint32_t types[EB_PG_MAXARGS]; /* EB_PG_INT8, EB_PG_TEXT... */
};

struct eb_pg_pool_limits {
	unsigned size;       /* connections, 1..1000 */
	unsigned acquire_ms; /* longest wait for a free connection */
	/* statement_timeout, and lock_timeout at 3/4 of it; 0: none */
	unsigned statement_ms;
	const char *application; /* application_name, or NULL */
};

struct eb_pg_pool;
struct eb_pg_conn;

/*
 * A pool for `dsn` (libpq key=value or URI) whose statements are
 * stmts[0..nstmts-1] (the table must outlive the pool). Opens one
 * connection to check the DSN. NULL on failure, with a reason in err that
 * holds no password.
 */
struct eb_pg_pool *eb_pg_pool_create(const char *dsn,
                                     const struct eb_pg_stmt *stmts,
                                     size_t nstmts,
                                     const struct eb_pg_pool_limits *lim,
                                     char *err, size_t errlen);
/* Close every connection; all must have been released. NULL is a no-op. */
void eb_pg_pool_destroy(struct eb_pg_pool *p);

/*
 * A connection for the caller alone, opened if need be, or NULL when none
 * came free within the acquire timeout or opening failed (logged).
 */
struct eb_pg_conn *eb_pg_pool_acquire(struct eb_pg_pool *p);
/* Give c back. A connection left inside a transaction is rolled back. */
void eb_pg_pool_release(struct eb_pg_pool *p, struct eb_pg_conn *c);

/* Parameters of one statement, bound in binary format. */
struct eb_pg_args {
	int n;
	const char *values[EB_PG_MAXARGS];
	int lengths[EB_PG_MAXARGS];
	int formats[EB_PG_MAXARGS];
	unsigned char int8s[EB_PG_MAXARGS][8];
	int overflow; /* more than EB_PG_MAXARGS were added */
};

void eb_pg_args_init(struct eb_pg_args *a);
void eb_pg_args_int8(struct eb_pg_args *a, int64_t v);
/* A time as BIGINT seconds since the epoch. */
void eb_pg_args_time(struct eb_pg_args *a, time_t t);
/* s NUL-terminated, or NULL for SQL NULL. */
void eb_pg_args_text(struct eb_pg_args *a, const char *s);
void eb_pg_args_bytea(struct eb_pg_args *a, const void *p, size_t n);

/*
 * Run statement number `stmt` of the pool's table on c with args a (NULL:
 * none), preparing it on c the first time. On EB_STORE_OK *res (when res
 * is not NULL) holds the result, binary format, for the caller to PQclear.
 * Otherwise the mapped code (eb_pg_sqlstate_rc), the error logged once.
 * Outside a transaction, a lost connection is reconnected and the
 * statement run again, once.
 */
int eb_pg_exec(struct eb_pg_conn *c, size_t stmt, const struct eb_pg_args *a,
               PGresult **res);
/* Run SQL without parameters (DDL, tests); same codes as eb_pg_exec. */
int eb_pg_exec_sql(struct eb_pg_conn *c, const char *sql, PGresult **res);

enum eb_pg_iso { EB_PG_READ_COMMITTED = 0, EB_PG_SERIALIZABLE = 1 };

/*
 * Run fn(c, arg) inside BEGIN ... COMMIT at isolation iso. fn returns
 * EB_STORE_OK to commit, or a code to roll back and return. On a
 * serialization failure or deadlock (in fn or at COMMIT) the transaction
 * is rolled back and run again after 1-10 ms, at most EB_PG_TX_RETRIES
 * more times; on a lost connection before COMMIT, once more on a new
 * connection. fn must be pure database work: it may run more than once.
 * A connection lost during COMMIT is EB_STORE_ERROR (the outcome is not
 * known; never retried). c must not be in a transaction already, and fn
 * must not call eb_pg_tx (no nesting). fn passes on the codes of
 * eb_pg_exec as they are (EB_PG_RETRY, EB_PG_BROKEN included).
 */
#define EB_PG_TX_RETRIES 3
int eb_pg_tx(struct eb_pg_conn *c, enum eb_pg_iso iso,
             int (*fn)(struct eb_pg_conn *, void *), void *arg);

/* The store code for a SQLSTATE (NULL or "": EB_STORE_ERROR). */
int eb_pg_sqlstate_rc(const char *sqlstate);
/* SQLSTATE of c's last failed statement, "" when none. */
const char *eb_pg_conn_sqlstate(const struct eb_pg_conn *c);
/* The server process of c (tests), 0 when not connected. */
int eb_pg_conn_backend_pid(const struct eb_pg_conn *c);
/* How many PQprepare calls c has made since it was opened (tests). */
unsigned long eb_pg_conn_prepares(const struct eb_pg_conn *c);
/* How many times c was reconnected after a loss (tests). */
unsigned long eb_pg_conn_reconnects(const struct eb_pg_conn *c);

/*
 * Read a BIGINT (binary format) at row, col of r into *out: -1 when it is
 * NULL, of another type or malformed.
 */
int eb_pg_get_int8(const PGresult *r, int row, int col, int64_t *out);
int eb_pg_get_time(const PGresult *r, int row, int col, time_t *out);

/*
 * Write dsn to out (outlen bytes) as key=value pairs with the password
 * value replaced by ***. A DSN libpq cannot parse becomes
 * "(unparsable DSN)" (its text could hold a password). Returns 0, or -1
 * when out was too small (out then holds a truncated but redacted
 * string, or "" when outlen is 0).
 */
int eb_pg_dsn_redact(const char *dsn, char *out, size_t outlen);

#endif
