/*
 * PostgreSQL connection pool, prepared statements, transactions and error
 * mapping for the PostgreSQL store (see pg_conn.h for the contract).
 *
 * The pool is a fixed array of connection slots guarded by one mutex; a
 * caller waits on a condition variable (monotonic clock) for a free slot
 * for at most the acquire timeout, so a stalled database turns into
 * EB_STORE_ERROR instead of a thread parked for ever. Connections open
 * outside the lock. Every connection gets the same session settings when
 * it opens or reopens (statement and lock timeouts, a 10 s limit on idle
 * transactions so a frozen replica cannot hold row locks for long) and
 * prepares each statement of the pool's table the first time it runs it.
 *
 * A lost connection is reopened once. A statement outside a transaction is
 * run again only when it cannot have run the first time (the connection
 * was already bad, or the server said it was shutting the session down);
 * a connection that closed without a word leaves a write's outcome
 * unknown, so that is EB_STORE_ERROR. The DSN is kept only here, and
 * every log line names the redacted form.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/rand.h"
#include "store/pg/pg_conn.h"
#include "store/store.h"

#define PG_IDLE_TX_MS   10000 /* idle_in_transaction_session_timeout */
#define PG_MAX_POOL     1000
#define PG_REDACTED_MAX 1024

struct eb_pg_conn {
	struct eb_pg_pool *pool;
	PGconn *pg; /* NULL until opened (or after a failed reopen) */
	unsigned char *prepared; /* per statement of the pool's table */
	int busy;                /* checked out (under pool->mu) */
	int in_tx;               /* inside eb_pg_tx: no statement-level retry */
	int doomed;              /* the server said FATAL: lost */
	char sqlstate[6];        /* of the last failure, "" when none */
	unsigned long prepares;  /* PQprepare calls since opened */
	unsigned long reconnects; /* reopens after a loss */
};

struct eb_pg_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *dsn;      /* may hold a password: never logged */
	char *redacted; /* what logs say instead */
	char *application;
	const struct eb_pg_stmt *stmts;
	size_t nstmts;
	struct eb_pg_pool_limits lim;
	struct eb_pg_conn *conns; /* lim.size slots */
};

static const char *redact_keys[] = {"password", "sslpassword"};

/* Append s (n bytes) to out at *pos; 0, or -1 once it no longer fits. */
static int
put(char *out, size_t outlen, size_t *pos, const char *s, size_t n)
{
	if (outlen == 0 || *pos + n >= outlen) {
		if (outlen > 0) {
			size_t room = outlen - 1 - *pos;

			memcpy(out + *pos, s, room);
			*pos += room;
			out[*pos] = '\0';
		}
		return -1;
	}
	memcpy(out + *pos, s, n);
	*pos += n;
	out[*pos] = '\0';
	return 0;
}

/* A value as libpq reads it back: quoted when empty or holding ' ', '\'' or
 * '\\'. */
static int
put_value(char *out, size_t outlen, size_t *pos, const char *v)
{
	const char *p;

	if (*v != '\0' && strpbrk(v, " \t\n\r\f\v'\\") == NULL)
		return put(out, outlen, pos, v, strlen(v));
	if (put(out, outlen, pos, "'", 1) == -1)
		return -1;
	for (p = v; *p != '\0'; p++) {
		if ((*p == '\'' || *p == '\\') &&
		    put(out, outlen, pos, "\\", 1) == -1)
			return -1;
		if (put(out, outlen, pos, p, 1) == -1)
			return -1;
	}
	return put(out, outlen, pos, "'", 1);
}

int
eb_pg_dsn_redact(const char *dsn, char *out, size_t outlen)
{
	static const char bad[] = "(unparsable DSN)";
	PQconninfoOption *opts, *o;
	char *err = NULL;
	size_t pos = 0, i;
	int rc = 0, first = 1;

	if (outlen > 0)
		out[0] = '\0';
	opts = dsn != NULL ? PQconninfoParse(dsn, &err) : NULL;
	if (opts == NULL) {
		/* err may quote the DSN, password and all: not shown. */
		PQfreemem(err);
		return put(out, outlen, &pos, bad, sizeof(bad) - 1);
	}
	for (o = opts; o->keyword != NULL && rc == 0; o++) {
		int secret = 0;

		if (o->val == NULL)
			continue;
		for (i = 0; i < sizeof(redact_keys) / sizeof(redact_keys[0]);
		     i++)
			if (strcmp(o->keyword, redact_keys[i]) == 0)
				secret = 1;
		if (!first && put(out, outlen, &pos, " ", 1) == -1)
			rc = -1;
		else if (put(out, outlen, &pos, o->keyword,
		             strlen(o->keyword)) == -1 ||
		         put(out, outlen, &pos, "=", 1) == -1)
			rc = -1;
		else if (secret)
			rc = put(out, outlen, &pos, "***", 3);
		else
			rc = put_value(out, outlen, &pos, o->val);
		first = 0;
	}
	PQconninfoFree(opts);
	return rc;
}

int
eb_pg_sqlstate_rc(const char *s)
{
	if (s == NULL || strlen(s) != 5)
		return EB_STORE_ERROR;
	if (strcmp(s, "23505") == 0) /* unique_violation */
		return EB_STORE_CONFLICT;
	if (strcmp(s, "23P01") == 0) /* exclusion_violation */
		return EB_STORE_CONFLICT;
	if (strcmp(s, "23503") == 0) /* foreign_key_violation */
		return EB_STORE_NOT_FOUND;
	if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0)
		return EB_PG_RETRY;
	if (strncmp(s, "08", 2) == 0) /* connection exception */
		return EB_PG_BROKEN;
	/* admin_shutdown, crash_shutdown, cannot_connect_now */
	if (strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 ||
	    strcmp(s, "57P03") == 0)
		return EB_PG_BROKEN;
	/* 57014 statement timeout, 55P03 lock timeout and the rest */
	return EB_STORE_ERROR;
}

/*
 * Server notices (NOTICE, WARNING) go to our log, not to stderr raw. An
 * error that arrives while the connection is idle is the server saying
 * FATAL before it hangs up (terminated, shut down, idle too long): libpq
 * hands it here, and c is marked lost before the hang-up is even read.
 */
static void
notice(void *arg, const PGresult *r)
{
	struct eb_pg_conn *c = arg;
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

	if (sev != NULL &&
	    (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0)) {
		c->doomed = 1;
		snprintf(c->sqlstate, sizeof(c->sqlstate), "%s",
		         st != NULL ? st : "");
	}
	log_debug("postgresql %s: SQLSTATE %s: %s", sev != NULL ? sev : "?",
	          st != NULL ? st : "none", msg != NULL ? msg : "");
}

/* c's connection is now pg (opened or reopened). */
static void
attach(struct eb_pg_conn *c, PGconn *pg)
{
	c->pg = pg;
	c->doomed = 0;
	memset(c->prepared, 0, c->pool->nstmts);
	if (pg != NULL)
		PQsetNoticeReceiver(pg, notice, c);
}

/* libpq's error text, last new line removed, into buf. */
static const char *
pq_msg(const char *m, char *buf, size_t len)
{
	size_t n;

	snprintf(buf, len, "%s", m != NULL && *m != '\0' ? m : "unknown");
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return buf;
}

/*
 * The session settings every connection carries. 0 or -1 (logged). A lock
 * wait gives up at 3/4 of the statement timeout, so that it is reported as
 * one (55P03) rather than as a slow statement (57014).
 */
static int
session_setup(struct eb_pg_pool *p, PGconn *pg)
{
	char sql[256], m[256];
	PGresult *r;
	int ok;

	snprintf(sql, sizeof(sql),
	         "SET statement_timeout = %u; SET lock_timeout = %u; "
	         "SET idle_in_transaction_session_timeout = %u",
	         p->lim.statement_ms,
	         p->lim.statement_ms - p->lim.statement_ms / 4, PG_IDLE_TX_MS);
	r = PQexec(pg, sql);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		log_warnx("%s: session settings refused: %s", p->redacted,
		          pq_msg(PQerrorMessage(pg), m, sizeof(m)));
	PQclear(r);
	return ok ? 0 : -1;
}

/* A new connection with the pool's settings, or NULL (logged). */
static PGconn *
pg_open(struct eb_pg_pool *p)
{
	/* Our defaults first: what the DSN (expanded from dbname) says wins. */
	const char *keys[] = {"connect_timeout",  "keepalives",
	                      "keepalives_idle",  "keepalives_interval",
	                      "keepalives_count", "application_name",
	                      "dbname",           NULL};
	const char *vals[] = {"10",           "1",    "30", "10", "3",
	                      p->application, p->dsn, NULL};
	char m[512];
	PGconn *pg;

	pg = PQconnectdbParams(keys, vals, 1);
	if (pg == NULL) {
		log_errx("%s: out of memory", p->redacted);
		return NULL;
	}
	if (PQstatus(pg) != CONNECTION_OK) {
		log_warnx("cannot connect to %s: %s", p->redacted,
		          pq_msg(PQerrorMessage(pg), m, sizeof(m)));
		PQfinish(pg);
		return NULL;
	}
	if (session_setup(p, pg) == -1) {
		PQfinish(pg);
		return NULL;
	}
	return pg;
}

/* Replace c's lost connection. 0, or -1 with c->pg NULL (logged). */
static int
reconnect(struct eb_pg_conn *c)
{
	struct eb_pg_pool *p = c->pool;

	if (c->pg != NULL) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	attach(c, pg_open(p));
	if (c->pg == NULL) {
		log_warnx("%s: connection lost and not reopened", p->redacted);
		return -1;
	}
	c->reconnects++;
	log_warnx("%s: connection lost (SQLSTATE %s), reopened", p->redacted,
	          c->sqlstate[0] != '\0' ? c->sqlstate : "none");
	return 0;
}

/*
 * The code for failed result r of `what` on c (r is cleared), logged once:
 * outcomes a caller expects (conflict, missing reference, retry) at debug,
 * the rest as warnings. Only the primary message is logged: the detail
 * line quotes row values.
 */
static int
fail(struct eb_pg_conn *c, PGresult *r, const char *what)
{
	const char *st =
	    r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg =
	    r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char m[512];
	int rc;

	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", st != NULL ? st : "");
	rc = eb_pg_sqlstate_rc(st);
	if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD)
		rc = EB_PG_BROKEN;
	if (msg == NULL)
		msg = pq_msg(c->pg != NULL ? PQerrorMessage(c->pg) : NULL, m,
		             sizeof(m));
	if (rc == EB_STORE_CONFLICT || rc == EB_STORE_NOT_FOUND ||
	    rc == EB_PG_RETRY)
		log_debug("%s: SQLSTATE %s: %s", what, c->sqlstate, msg);
	else
		log_warnx("%s on %s: SQLSTATE %s: %s", what, c->pool->redacted,
		          c->sqlstate[0] != '\0' ? c->sqlstate : "none", msg);
	PQclear(r);
	return rc;
}

/*
 * Whether c is usable before a statement is sent: an idle connection has
 * nothing to read unless the server is closing it (it sends FATAL and
 * hangs up when terminated, restarted or idle too long), which this reads
 * without a round trip. -1 when c is lost: a statement sent now would
 * fail without having run, so it is safe to run again elsewhere.
 */
static int
probe(struct eb_pg_conn *c)
{
	struct pollfd pfd;
	int i;

	if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK)
		return -1;
	pfd.fd = PQsocket(c->pg);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (pfd.fd < 0)
		return -1;
	/*
	 * A FATAL message and the hang-up may take more than one read;
	 * PQisBusy parses what was read, handing a FATAL to notice().
	 */
	for (i = 0; i < 8 && !c->doomed && poll(&pfd, 1, 0) > 0; i++) {
		if (PQconsumeInput(c->pg) == 0 ||
		    PQstatus(c->pg) != CONNECTION_OK)
			return -1;
		(void)PQisBusy(c->pg);
	}
	return c->doomed ? -1 : 0;
}

/*
 * Whether c has a transaction open (eb_pg_tx's or a BEGIN sent by hand):
 * a lost connection took it along, so a statement must not be run again
 * on its own on the new one.
 */
static int
in_block(const struct eb_pg_conn *c)
{
	PGTransactionStatusType t;

	if (c->in_tx)
		return 1;
	if (c->pg == NULL)
		return 0;
	t = PQtransactionStatus(c->pg);
	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR ||
	       t == PQTRANS_ACTIVE;
}

/* Whether a statement that failed on c cannot have run at all. */
static int
never_ran(const struct eb_pg_conn *c, int was_bad)
{
	return was_bad || strcmp(c->sqlstate, "57P01") == 0 ||
	       strcmp(c->sqlstate, "57P02") == 0 ||
	       strcmp(c->sqlstate, "57P03") == 0;
}

static int
exec_prepared(struct eb_pg_conn *c, size_t i, const struct eb_pg_args *a,
              PGresult **res)
{
	const struct eb_pg_stmt *st = &c->pool->stmts[i];
	Oid types[EB_PG_MAXARGS];
	PGresult *r;
	int k, n = a != NULL ? a->n : 0;

	c->sqlstate[0] = '\0';
	if (c->pg == NULL || c->doomed || PQstatus(c->pg) != CONNECTION_OK)
		return EB_PG_BROKEN;
	if (!c->prepared[i]) {
		for (k = 0; k < st->nparams; k++)
			types[k] = st->types[k];
		r = PQprepare(c->pg, st->name, st->sql, st->nparams, types);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			return fail(c, r, st->name);
		PQclear(r);
		c->prepared[i] = 1;
		c->prepares++;
	}
	r = PQexecPrepared(c->pg, st->name, n, a != NULL ? a->values : NULL,
	                   a != NULL ? a->lengths : NULL,
	                   a != NULL ? a->formats : NULL, 1);
	if (PQresultStatus(r) != PGRES_TUPLES_OK &&
	    PQresultStatus(r) != PGRES_COMMAND_OK)
		return fail(c, r, st->name);
	if (res != NULL)
		*res = r;
	else
		PQclear(r);
	return EB_STORE_OK;
}

int
eb_pg_exec(struct eb_pg_conn *c, size_t stmt, const struct eb_pg_args *a,
           PGresult **res)
{
	int rc, was_bad, block;

	if (res != NULL)
		*res = NULL;
	if (stmt >= c->pool->nstmts || (a != NULL && a->overflow) ||
	    (a != NULL ? a->n : 0) != c->pool->stmts[stmt].nparams) {
		log_errx("statement %zu: bad call", stmt);
		return EB_STORE_ERROR;
	}
	block = in_block(c);
	was_bad = probe(c) == -1;
	rc = exec_prepared(c, stmt, a, res);
	if (rc != EB_PG_BROKEN || c->in_tx)
		return rc;
	if (reconnect(c) == -1)
		return EB_STORE_ERROR;
	if (block) {
		log_warnx("%s: transaction lost with the connection",
		          c->pool->stmts[stmt].name);
		return EB_STORE_ERROR;
	}
	if (!never_ran(c, was_bad)) {
		log_warnx("%s: outcome unknown after a lost connection",
		          c->pool->stmts[stmt].name);
		return EB_STORE_ERROR;
	}
	rc = exec_prepared(c, stmt, a, res);
	return rc == EB_PG_BROKEN ? EB_STORE_ERROR : rc;
}

/* PQexec without the statement-level retry (used by eb_pg_tx too). */
static int
exec_sql(struct eb_pg_conn *c, const char *sql, PGresult **res)
{
	PGresult *r;

	c->sqlstate[0] = '\0';
	if (c->pg == NULL || c->doomed || PQstatus(c->pg) != CONNECTION_OK)
		return EB_PG_BROKEN;
	r = PQexec(c->pg, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK &&
	    PQresultStatus(r) != PGRES_COMMAND_OK)
		return fail(c, r, "query");
	if (res != NULL)
		*res = r;
	else
		PQclear(r);
	return EB_STORE_OK;
}

int
eb_pg_exec_sql(struct eb_pg_conn *c, const char *sql, PGresult **res)
{
	int rc, was_bad, block;

	if (res != NULL)
		*res = NULL;
	block = in_block(c);
	was_bad = probe(c) == -1;
	rc = exec_sql(c, sql, res);
	if (rc != EB_PG_BROKEN || c->in_tx)
		return rc;
	if (reconnect(c) == -1 || block || !never_ran(c, was_bad))
		return EB_STORE_ERROR;
	rc = exec_sql(c, sql, res);
	return rc == EB_PG_BROKEN ? EB_STORE_ERROR : rc;
}

/* 1-10 ms, so two retrying transactions do not collide again in step. */
static void
jitter(void)
{
	unsigned char b = 0;
	struct timespec ts;

	(void)eb_rand_bytes(&b, 1);
	ts.tv_sec = 0;
	ts.tv_nsec = (long)(1 + b % 10) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* COMMIT; a transaction that had already failed answers ROLLBACK. */
static int
commit(struct eb_pg_conn *c)
{
	PGresult *r = NULL;
	int rc;

	rc = exec_sql(c, "COMMIT", &r);
	if (rc != EB_STORE_OK)
		return rc;
	if (strcmp(PQcmdStatus(r), "COMMIT") != 0) {
		log_warnx("transaction had failed: rolled back, not committed");
		rc = EB_STORE_ERROR;
	}
	PQclear(r);
	return rc;
}

int
eb_pg_tx(struct eb_pg_conn *c, enum eb_pg_iso iso,
         int (*fn)(struct eb_pg_conn *, void *), void *arg)
{
	const char *begin = iso == EB_PG_SERIALIZABLE
	                        ? "BEGIN ISOLATION LEVEL SERIALIZABLE"
	                        : "BEGIN ISOLATION LEVEL READ COMMITTED";
	int rc, retries = 0, reopened = 0, committing;

	for (;;) {
		committing = 0;
		c->in_tx = 1;
		rc = probe(c) == -1 ? EB_PG_BROKEN : exec_sql(c, begin, NULL);
		if (rc == EB_STORE_OK)
			rc = fn(c, arg);
		if (rc == EB_STORE_OK) {
			committing = 1;
			rc = commit(c);
		} else if (c->pg != NULL && PQstatus(c->pg) == CONNECTION_OK &&
		           PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
			char st[sizeof(c->sqlstate)];

			/* The failure's SQLSTATE, not the ROLLBACK's, stays. */
			memcpy(st, c->sqlstate, sizeof(st));
			(void)exec_sql(c, "ROLLBACK", NULL);
			memcpy(c->sqlstate, st, sizeof(st));
		}
		c->in_tx = 0;
		if (rc == EB_PG_RETRY && retries < EB_PG_TX_RETRIES) {
			retries++;
			jitter();
			continue;
		}
		if (rc == EB_PG_RETRY) {
			log_warnx("transaction gave up after %d attempts "
			          "(SQLSTATE %s)",
			          retries + 1, c->sqlstate);
			return EB_STORE_ERROR;
		}
		if (rc == EB_PG_BROKEN) {
			if (reconnect(c) == 0 && !committing && !reopened) {
				reopened = 1;
				continue;
			}
			if (committing)
				log_warnx("connection lost during COMMIT: "
				          "outcome unknown");
			return EB_STORE_ERROR;
		}
		return rc;
	}
}

struct eb_pg_pool *
eb_pg_pool_create(const char *dsn, const struct eb_pg_stmt *stmts,
                  size_t nstmts, const struct eb_pg_pool_limits *lim, char *err,
                  size_t errlen)
{
	struct eb_pg_pool *p;
	pthread_condattr_t ca;
	char red[PG_REDACTED_MAX];
	unsigned i;
	size_t k;

	if (errlen > 0)
		err[0] = '\0';
	if (dsn == NULL || lim == NULL || lim->size == 0 ||
	    lim->size > PG_MAX_POOL) {
		snprintf(err, errlen, "pool size must be 1..%d", PG_MAX_POOL);
		return NULL;
	}
	for (k = 0; k < nstmts; k++)
		if (stmts[k].nparams < 0 || stmts[k].nparams > EB_PG_MAXARGS) {
			snprintf(err, errlen, "statement %s: bad parameters",
			         stmts[k].name);
			return NULL;
		}
	(void)eb_pg_dsn_redact(dsn, red, sizeof(red));
	if ((p = eb_calloc(1, sizeof(*p))) == NULL)
		goto out_oom;
	p->stmts = stmts;
	p->nstmts = nstmts;
	p->lim = *lim;
	p->dsn = eb_strdup(dsn);
	p->redacted = eb_strdup(red);
	p->application = eb_strdup(lim->application != NULL ? lim->application
	                                                    : "enrollbridge");
	p->conns = eb_calloc(lim->size, sizeof(*p->conns));
	if (p->dsn == NULL || p->redacted == NULL || p->application == NULL ||
	    p->conns == NULL)
		goto out_free;
	p->lim.application = p->application;
	for (i = 0; i < lim->size; i++) {
		p->conns[i].pool = p;
		p->conns[i].prepared = eb_calloc(nstmts > 0 ? nstmts : 1, 1);
		if (p->conns[i].prepared == NULL)
			goto out_free;
	}
	if (pthread_condattr_init(&ca) != 0)
		goto out_free;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&p->cv, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		goto out_free;
	}
	pthread_condattr_destroy(&ca);
	if (pthread_mutex_init(&p->mu, NULL) != 0) {
		pthread_cond_destroy(&p->cv);
		goto out_free;
	}
	/* One connection now: a wrong DSN or password fails at start. */
	attach(&p->conns[0], pg_open(p));
	if (p->conns[0].pg == NULL) {
		snprintf(err, errlen, "cannot connect to %s (see log)", red);
		eb_pg_pool_destroy(p);
		return NULL;
	}
	log_info("pool of %u connections to %s", lim->size, red);
	return p;

out_free:
	if (p != NULL) {
		for (i = 0; p->conns != NULL && i < lim->size; i++)
			eb_free(p->conns[i].prepared);
		eb_free(p->conns);
		eb_free(p->application);
		eb_free(p->redacted);
		eb_free_secret_str(p->dsn);
		eb_free(p);
	}
out_oom:
	snprintf(err, errlen, "out of memory");
	return NULL;
}

void
eb_pg_pool_destroy(struct eb_pg_pool *p)
{
	unsigned i;

	if (p == NULL)
		return;
	for (i = 0; i < p->lim.size; i++) {
		if (p->conns[i].busy)
			log_errx("%s: connection %u still checked out",
			         p->redacted, i);
		if (p->conns[i].pg != NULL)
			PQfinish(p->conns[i].pg);
		eb_free(p->conns[i].prepared);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	eb_free(p->conns);
	eb_free(p->application);
	eb_free(p->redacted);
	eb_free_secret_str(p->dsn);
	eb_free(p);
}

/* A free slot, preferring an open connection; NULL when all are busy. */
static struct eb_pg_conn *
take_free(struct eb_pg_pool *p)
{
	struct eb_pg_conn *unopened = NULL;
	unsigned i;

	for (i = 0; i < p->lim.size; i++) {
		if (p->conns[i].busy)
			continue;
		if (p->conns[i].pg != NULL) {
			p->conns[i].busy = 1;
			return &p->conns[i];
		}
		if (unopened == NULL)
			unopened = &p->conns[i];
	}
	if (unopened != NULL)
		unopened->busy = 1;
	return unopened;
}

struct eb_pg_conn *
eb_pg_pool_acquire(struct eb_pg_pool *p)
{
	struct eb_pg_conn *c;
	struct timespec until;
	int e = 0;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += p->lim.acquire_ms / 1000;
	until.tv_nsec += (long)(p->lim.acquire_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->mu);
	while ((c = take_free(p)) == NULL && e != ETIMEDOUT)
		e = pthread_cond_timedwait(&p->cv, &p->mu, &until);
	pthread_mutex_unlock(&p->mu);
	if (c == NULL) {
		log_warnx("%s: all %u connections busy for %u ms", p->redacted,
		          p->lim.size, p->lim.acquire_ms);
		return NULL;
	}
	if (c->pg == NULL) {
		attach(c, pg_open(p));
		if (c->pg == NULL) {
			eb_pg_pool_release(p, c);
			return NULL;
		}
	}
	c->sqlstate[0] = '\0';
	return c;
}

void
eb_pg_pool_release(struct eb_pg_pool *p, struct eb_pg_conn *c)
{
	if (c == NULL)
		return;
	if (c->pg != NULL && PQstatus(c->pg) == CONNECTION_OK &&
	    PQtransactionStatus(c->pg) != PQTRANS_IDLE &&
	    exec_sql(c, "ROLLBACK", NULL) != EB_STORE_OK) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	if (c->pg != NULL && PQstatus(c->pg) != CONNECTION_OK) {
		/* Reopened lazily by the next acquire. */
		PQfinish(c->pg);
		c->pg = NULL;
	}
	c->in_tx = 0;
	pthread_mutex_lock(&p->mu);
	c->busy = 0;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

const char *
eb_pg_conn_sqlstate(const struct eb_pg_conn *c)
{
	return c->sqlstate;
}

int
eb_pg_conn_backend_pid(const struct eb_pg_conn *c)
{
	return c->pg != NULL ? PQbackendPID(c->pg) : 0;
}

unsigned long
eb_pg_conn_prepares(const struct eb_pg_conn *c)
{
	return c->prepares;
}

unsigned long
eb_pg_conn_reconnects(const struct eb_pg_conn *c)
{
	return c->reconnects;
}

void
eb_pg_args_init(struct eb_pg_args *a)
{
	memset(a, 0, sizeof(*a));
}

/* The next slot, or -1 (and overflow set) when there is none. */
static int
next_arg(struct eb_pg_args *a)
{
	if (a->n >= EB_PG_MAXARGS) {
		a->overflow = 1;
		return -1;
	}
	return a->n++;
}

void
eb_pg_args_int8(struct eb_pg_args *a, int64_t v)
{
	uint64_t u = (uint64_t)v;
	int i, k;

	if ((k = next_arg(a)) == -1)
		return;
	for (i = 7; i >= 0; i--) {
		a->int8s[k][i] = (unsigned char)(u & 0xff);
		u >>= 8;
	}
	a->values[k] = (const char *)a->int8s[k];
	a->lengths[k] = 8;
	a->formats[k] = 1;
}

void
eb_pg_args_time(struct eb_pg_args *a, time_t t)
{
	eb_pg_args_int8(a, (int64_t)t);
}

void
eb_pg_args_text(struct eb_pg_args *a, const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	int k;

	if ((k = next_arg(a)) == -1)
		return;
	if (n > (size_t)0x3fffffff) { /* libpq lengths are int */
		a->overflow = 1;
		return;
	}
	a->values[k] = s;
	a->lengths[k] = (int)n;
	a->formats[k] = 1; /* binary text is the bytes themselves */
}

void
eb_pg_args_bytea(struct eb_pg_args *a, const void *p, size_t n)
{
	int k;

	if ((k = next_arg(a)) == -1)
		return;
	if (n > (size_t)0x3fffffff) {
		a->overflow = 1;
		return;
	}
	a->values[k] = p != NULL ? (const char *)p : "";
	a->lengths[k] = (int)n;
	a->formats[k] = 1;
}

int
eb_pg_get_int8(const PGresult *r, int row, int col, int64_t *out)
{
	const unsigned char *v;
	uint64_t u = 0;
	int i;

	if (row < 0 || row >= PQntuples(r) || col < 0 || col >= PQnfields(r) ||
	    PQgetisnull(r, row, col) || PQftype(r, col) != EB_PG_INT8 ||
	    PQfformat(r, col) != 1 || PQgetlength(r, row, col) != 8)
		return -1;
	v = (const unsigned char *)PQgetvalue(r, row, col);
	for (i = 0; i < 8; i++)
		u = (u << 8) | v[i];
	*out = (int64_t)u;
	return 0;
}

int
eb_pg_get_time(const PGresult *r, int row, int col, time_t *out)
{
	int64_t v;

	if (eb_pg_get_int8(r, row, col, &v) == -1)
		return -1;
	*out = (time_t)v;
	return 0;
}
