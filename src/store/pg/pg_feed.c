/*
 * The PostgreSQL change feed (pg_feed.h): the thread, its connection and
 * the rules for when the sequence moves.
 *
 * Everything the thread does on the connection is asynchronous (libpq's
 * connect-poll and send/consume calls) and waits in poll(2) on the socket
 * and on a pipe that eb_pg_feed_stop writes to, each wait bounded: so a
 * server that stops answering costs a reconnect, never a stuck thread,
 * and stopping never waits for the network.
 *
 * The sequence is the feed's own counter, not the database's n: it moves
 * when the n the feed observes rises (a notification or a heartbeat), when
 * a heartbeat finds n lower than before (the database was restored), and
 * on every gap (connection lost; connected again). Copying n itself would
 * not do: after a gap bump the next invalidation could carry an n no
 * higher than the counter, and the caches would miss it.
 */
#include "store/pg/pg_feed.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "core/log.h"
#include "core/mem.h"
#include "store/pg/pg_conn.h"

#define FEED_POLL_MS        250   /* heartbeat after this long without news */
#define FEED_QUERY_MS       5000  /* longest wait for a statement's answer */
#define FEED_CONNECT_MS     10000 /* longest connection set-up */
#define FEED_BACKOFF_MIN_MS 100
#define FEED_BACKOFF_MAX_MS 5000
#define FEED_CHANNEL_MAX    63 /* NAMEDATALEN - 1: longer names are cut */
#define FEED_REDACTED_MAX   1024
#define MS                  1000000LL

struct eb_pg_feed {
	pthread_t thread;
	int wake[2]; /* eb_pg_feed_stop writes to wake[1] */
	atomic_int stopping;
	char *dsn; /* may hold a password: never logged */
	char *redacted;
	char *application;
	_Atomic uint64_t *seq;
	_Atomic int64_t *alive_ns;
	_Atomic uint64_t keys;
	_Atomic uint64_t reconnects;
	atomic_int pid;
	/* the thread's alone (the starting caller's before it runs) */
	PGconn *pg;
	char inval[FEED_CHANNEL_MAX + 1], keychan[FEED_CHANNEL_MAX + 1];
	int64_t last_n;   /* the highest generation observed */
	int64_t proof_ns; /* last proof of being current, 0: none */
	char fatal[6];    /* SQLSTATE of a FATAL the server sent, "" none */
};

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* libpq's message, on one line, into buf. */
static const char *
one_line(const char *m, char *buf, size_t len)
{
	char *p;

	snprintf(buf, len, "%s", m != NULL && *m != '\0' ? m : "unknown");
	for (p = buf; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	while (p > buf && p[-1] == ' ')
		*--p = '\0';
	return buf;
}

/* Server notices go to our log at debug, never to stderr raw. */
static void
notice(void *arg, const PGresult *r)
{
	const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	struct eb_pg_feed *f = arg;

	/* an error while idle: the server's last word before it hangs up */
	if (sev != NULL && strcmp(sev, "FATAL") == 0)
		snprintf(f->fatal, sizeof(f->fatal), "%s", st ? st : "");
	log_debug("feed: server says: SQLSTATE %s: %s", st ? st : "none",
	          msg ? msg : "");
}

/*
 * Wait until fd (none when -1) is ready for events, the deadline passes or
 * the feed is stopped: 1, 0 or -1.
 */
static int
wait_io(struct eb_pg_feed *f, int fd, short events, int64_t deadline)
{
	struct pollfd pfd[2];
	int64_t left;
	int n;

	for (;;) {
		if (atomic_load(&f->stopping))
			return -1;
		left = deadline - now_ns();
		if (left <= 0)
			return 0;
		pfd[0].fd = f->wake[0];
		pfd[0].events = POLLIN;
		pfd[1].fd = fd;
		pfd[1].events = events;
		pfd[0].revents = pfd[1].revents = 0;
		n = poll(pfd, 2, (int)((left + MS - 1) / MS));
		if (n == -1 && errno != EINTR)
			return -1;
		if (n <= 0)
			continue;
		if (pfd[0].revents != 0)
			return -1;
		if (pfd[1].revents != 0)
			return 1;
	}
}

/* Set the proof time (and what callers see) to t. */
static void
proven(struct eb_pg_feed *f, int64_t t)
{
	f->proof_ns = t;
	atomic_store(f->alive_ns, t);
}

/*
 * Generation v observed; authoritative: read from the table (so a lower
 * value means the row went back, not a late notification).
 */
static void
observe(struct eb_pg_feed *f, int64_t v, int authoritative)
{
	if (v > f->last_n || (authoritative && v < f->last_n)) {
		f->last_n = v;
		atomic_fetch_add(f->seq, 1);
	}
}

/* Act on every notification libpq has read. */
static void
drain(struct eb_pg_feed *f)
{
	PGnotify *n;
	char *end;
	long long v;

	while ((n = PQnotifies(f->pg)) != NULL) {
		if (strcmp(n->relname, f->inval) == 0) {
			errno = 0;
			v = strtoll(n->extra, &end, 10);
			if (errno != 0 || end == n->extra || *end != '\0') {
				/* not ours to read: assume a change */
				log_debug("feed: unreadable payload on %s",
				          f->inval);
				atomic_fetch_add(f->seq, 1);
			} else
				observe(f, (int64_t)v, 0);
			proven(f, now_ns());
		} else if (strcmp(n->relname, f->keychan) == 0) {
			atomic_fetch_add(&f->keys, 1);
			proven(f, now_ns());
		}
		PQfreemem(n);
	}
}

/*
 * The reason of failed result r: its SQLSTATE and primary message only
 * (the rest may quote the statement or row values).
 */
static void
failed(const PGresult *r, char *err, size_t errlen)
{
	const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	char m[256];

	snprintf(err, errlen, "SQLSTATE %s: %s", st != NULL ? st : "none",
	         one_line(msg, m, sizeof(m)));
}

/*
 * Run sql (one or more statements) and wait for all its results, reading
 * notifications as they come. 0 with the last rows result in *out (when
 * out is not NULL, for the caller to PQclear), or -1 with a reason in err.
 */
static int
query(struct eb_pg_feed *f, const char *sql, PGresult **out, char *err,
      size_t errlen)
{
	int64_t deadline = now_ns() + FEED_QUERY_MS * MS;
	char m[256];
	PGresult *r;
	int rc = 0, w;

	if (out != NULL)
		*out = NULL;
	if (!PQsendQuery(f->pg, sql)) {
		snprintf(err, errlen, "%s",
		         one_line(PQerrorMessage(f->pg), m, sizeof(m)));
		return -1;
	}
	for (;;) {
		while (PQisBusy(f->pg)) {
			w = wait_io(f, PQsocket(f->pg), POLLIN, deadline);
			if (w <= 0) {
				snprintf(err, errlen, "%s",
				         w == 0 ? "no answer in time"
				                : "stopped");
				return -1;
			}
			if (!PQconsumeInput(f->pg)) {
				snprintf(err, errlen, "%s",
				         one_line(PQerrorMessage(f->pg), m,
				                  sizeof(m)));
				return -1;
			}
			drain(f);
		}
		if ((r = PQgetResult(f->pg)) == NULL)
			break;
		if (PQresultStatus(r) == PGRES_TUPLES_OK && out != NULL &&
		    rc == 0) {
			PQclear(*out);
			*out = r;
			continue;
		}
		if (PQresultStatus(r) != PGRES_COMMAND_OK &&
		    PQresultStatus(r) != PGRES_TUPLES_OK && rc == 0) {
			failed(r, err, errlen);
			rc = -1;
		}
		PQclear(r);
	}
	drain(f);
	if (rc == -1 && out != NULL) {
		PQclear(*out);
		*out = NULL;
	}
	return rc;
}

/* The BIGINT in row 0, column 0 of text result r: 0, or -1. */
static int
first_int8(const PGresult *r, int64_t *v)
{
	const char *s;
	char *end;
	long long x;

	if (r == NULL || PQntuples(r) != 1 || PQnfields(r) < 1 ||
	    PQgetisnull(r, 0, 0))
		return -1;
	s = PQgetvalue(r, 0, 0);
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*v = (int64_t)x;
	return 0;
}

/* Open f->pg without blocking past the deadline or a stop. 0, or -1. */
static int
connect_async(struct eb_pg_feed *f, char *err, size_t errlen)
{
	/* Our defaults first: what the DSN (expanded from dbname) says wins. */
	const char *keys[] = {"connect_timeout",  "keepalives",
	                      "keepalives_idle",  "keepalives_interval",
	                      "keepalives_count", "application_name",
	                      "dbname",           NULL};
	const char *vals[] = {"10",           "1",    "30", "10", "3",
	                      f->application, f->dsn, NULL};
	int64_t deadline = now_ns() + FEED_CONNECT_MS * MS;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	char m[256];
	int w;

	f->fatal[0] = '\0';
	if ((f->pg = PQconnectStartParams(keys, vals, 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	PQsetNoticeReceiver(f->pg, notice, f);
	while (PQstatus(f->pg) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
	       st != PGRES_POLLING_FAILED) {
		w = wait_io(f, PQsocket(f->pg),
		            st == PGRES_POLLING_READING ? POLLIN : POLLOUT,
		            deadline);
		if (w <= 0) {
			snprintf(err, errlen, "%s",
			         w == 0 ? "connecting timed out" : "stopped");
			return -1;
		}
		st = PQconnectPoll(f->pg);
	}
	if (PQstatus(f->pg) != CONNECTION_OK) {
		snprintf(err, errlen, "%s",
		         one_line(PQerrorMessage(f->pg), m, sizeof(m)));
		return -1;
	}
	return 0;
}

/* The schema's channel names; 0, or -1 when they would be cut. */
static int
channels(struct eb_pg_feed *f, const char *schema, char *err, size_t errlen)
{
	int a, b;

	a = snprintf(f->inval, sizeof(f->inval), "%s.eb_inval", schema);
	b = snprintf(f->keychan, sizeof(f->keychan), "%s.eb_keys", schema);
	if (a < 0 || b < 0 || (size_t)a >= sizeof(f->inval) ||
	    (size_t)b >= sizeof(f->keychan)) {
		snprintf(err, errlen,
		         "schema name too long for a channel name (at most "
		         "%d bytes with \".eb_inval\")",
		         FEED_CHANNEL_MAX);
		return -1;
	}
	return 0;
}

/* LISTEN on both channels, then read the generation. 0, or -1. */
static int
listen_and_read(struct eb_pg_feed *f, char *err, size_t errlen)
{
	char *qi = NULL, *qk = NULL, *sql = NULL;
	PGresult *r = NULL;
	int64_t n, t0;
	size_t len;
	int rc = -1;

	qi = PQescapeIdentifier(f->pg, f->inval, strlen(f->inval));
	qk = PQescapeIdentifier(f->pg, f->keychan, strlen(f->keychan));
	if (qi == NULL || qk == NULL) {
		snprintf(err, errlen, "cannot quote the channel names");
		goto out;
	}
	len = strlen(qi) + strlen(qk) + 128;
	if ((sql = eb_malloc(len)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	snprintf(sql, len,
	         "LISTEN %s; LISTEN %s; "
	         "SELECT n FROM eb_generation WHERE id = 1",
	         qi, qk);
	t0 = now_ns();
	if (query(f, sql, &r, err, errlen) == -1)
		goto out;
	if (first_int8(r, &n) == -1) {
		snprintf(err, errlen, "eb_generation has no row 1");
		goto out;
	}
	f->last_n = n;
	proven(f, t0);
	rc = 0;
out:
	PQclear(r);
	eb_free(sql);
	PQfreemem(qk);
	PQfreemem(qi);
	return rc;
}

/*
 * Connect, LISTEN and read the generation; then bump seq (whatever came
 * before is a gap). 0, or -1 with f->pg closed and a reason in err.
 */
static int
setup(struct eb_pg_feed *f, char *err, size_t errlen)
{
	PGresult *r = NULL;

	if (connect_async(f, err, errlen) == -1)
		goto out_close;
	if (query(f, "SELECT current_schema()", &r, err, errlen) == -1)
		goto out_close;
	if (r == NULL || PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
		snprintf(err, errlen,
		         "no current schema (search_path names none that "
		         "exists)");
		goto out_close;
	}
	if (channels(f, PQgetvalue(r, 0, 0), err, errlen) == -1 ||
	    listen_and_read(f, err, errlen) == -1)
		goto out_close;
	PQclear(r);
	atomic_store(&f->pid, PQbackendPID(f->pg));
	atomic_fetch_add(f->seq, 1);
	atomic_fetch_add(&f->keys, 1);
	return 0;

out_close:
	PQclear(r);
	PQfinish(f->pg);
	f->pg = NULL;
	return -1;
}

/* The connection is gone or useless: no more caching, and a gap. */
static void
lose(struct eb_pg_feed *f, const char *why)
{
	atomic_store(f->alive_ns, 0);
	f->proof_ns = 0;
	atomic_fetch_add(f->seq, 1);
	atomic_fetch_add(&f->keys, 1);
	atomic_store(&f->pid, 0);
	PQfinish(f->pg);
	f->pg = NULL;
	if (!atomic_load(&f->stopping))
		log_warnx("feed %s: %s; caching off until reconnected",
		          f->redacted, why);
}

/* Read the generation now: a proof of being current. 0, or -1. */
static int
heartbeat(struct eb_pg_feed *f, char *err, size_t errlen)
{
	int64_t t0 = now_ns(), n;
	PGresult *r = NULL;
	int rc = -1;

	if (query(f, "SELECT n FROM eb_generation WHERE id = 1", &r, err,
	          errlen) == 0) {
		if (first_int8(r, &n) == 0) {
			observe(f, n, 1);
			proven(f, t0);
			rc = 0;
		} else
			snprintf(err, errlen, "eb_generation has no row 1");
	}
	PQclear(r);
	return rc;
}

/* One wait on the connection, then notifications or a heartbeat. */
static void
follow(struct eb_pg_feed *f)
{
	char err[256], m[256];
	int w;

	w = wait_io(f, PQsocket(f->pg), POLLIN,
	            f->proof_ns + FEED_POLL_MS * MS);
	if (w < 0)
		return;
	if (w == 1) {
		if (!PQconsumeInput(f->pg) ||
		    PQstatus(f->pg) != CONNECTION_OK) {
			if (f->fatal[0] != '\0')
				snprintf(m, sizeof(m),
				         "the server closed the session "
				         "(SQLSTATE %s)",
				         f->fatal);
			else
				one_line(PQerrorMessage(f->pg), m, sizeof(m));
			lose(f, m);
		} else
			drain(f);
		return;
	}
	if (heartbeat(f, err, sizeof(err)) == -1 && !atomic_load(&f->stopping))
		lose(f, err);
}

/* Reconnect after a loss; *backoff_ms grows while it fails. */
static void
reconnect(struct eb_pg_feed *f, int *backoff_ms)
{
	char err[256];

	if (setup(f, err, sizeof(err)) == 0) {
		atomic_fetch_add(&f->reconnects, 1);
		log_info("feed %s: reconnected", f->redacted);
		*backoff_ms = FEED_BACKOFF_MIN_MS;
		return;
	}
	if (atomic_load(&f->stopping))
		return;
	log_debug("feed %s: cannot reconnect (%s); next try in %d ms",
	          f->redacted, err, *backoff_ms);
	(void)wait_io(f, -1, 0, now_ns() + *backoff_ms * MS);
	*backoff_ms = *backoff_ms * 2 > FEED_BACKOFF_MAX_MS
	                  ? FEED_BACKOFF_MAX_MS
	                  : *backoff_ms * 2;
}

static void *
feed_main(void *arg)
{
	struct eb_pg_feed *f = arg;
	int backoff_ms = FEED_BACKOFF_MIN_MS;

	while (!atomic_load(&f->stopping)) {
		if (f->pg == NULL)
			reconnect(f, &backoff_ms);
		else
			follow(f);
	}
	return NULL;
}

static void
feed_free(struct eb_pg_feed *f)
{
	if (f->pg != NULL)
		PQfinish(f->pg);
	if (f->wake[0] != -1)
		close(f->wake[0]);
	if (f->wake[1] != -1)
		close(f->wake[1]);
	eb_free_secret_str(f->dsn);
	eb_free(f->redacted);
	eb_free(f->application);
	eb_free(f);
}

/* A stopped feed's state for dsn: 0, or -1 with a reason in err. */
static struct eb_pg_feed *
feed_new(const char *dsn, const char *application, _Atomic uint64_t *seq,
         _Atomic int64_t *alive_ns, char *err, size_t errlen)
{
	struct eb_pg_feed *f;
	char red[FEED_REDACTED_MAX];
	int i;

	(void)eb_pg_dsn_redact(dsn, red, sizeof(red));
	if ((f = eb_calloc(1, sizeof(*f))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f->wake[0] = f->wake[1] = -1;
	f->seq = seq;
	f->alive_ns = alive_ns;
	f->dsn = eb_strdup(dsn);
	f->redacted = eb_strdup(red);
	f->application =
	    eb_strdup(application != NULL ? application : "enrollbridge-feed");
	if (f->dsn == NULL || f->redacted == NULL || f->application == NULL) {
		snprintf(err, errlen, "out of memory");
		feed_free(f);
		return NULL;
	}
	if (pipe(f->wake) == -1) {
		f->wake[0] = f->wake[1] = -1;
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		feed_free(f);
		return NULL;
	}
	for (i = 0; i < 2; i++)
		if (fcntl(f->wake[i], F_SETFD, FD_CLOEXEC) == -1 ||
		    fcntl(f->wake[i], F_SETFL, O_NONBLOCK) == -1) {
			snprintf(err, errlen, "fcntl: %s", strerror(errno));
			feed_free(f);
			return NULL;
		}
	return f;
}

struct eb_pg_feed *
eb_pg_feed_start_as(const char *dsn, const char *application,
                    _Atomic uint64_t *seq, _Atomic int64_t *alive_ns, char *err,
                    size_t errlen)
{
	struct eb_pg_feed *f;
	PQconninfoOption *opts;
	char why[256], *perr = NULL;

	if (errlen > 0)
		err[0] = '\0';
	if (dsn == NULL || seq == NULL || alive_ns == NULL) {
		snprintf(err, errlen, "feed: no database");
		return NULL;
	}
	atomic_store(alive_ns, 0);
	/* libpq's reason may quote the DSN, password and all: not shown */
	if ((opts = PQconninfoParse(dsn, &perr)) == NULL) {
		PQfreemem(perr);
		snprintf(err, errlen,
		         "feed: the database DSN cannot be parsed");
		log_warnx("%s", err);
		return NULL;
	}
	PQconninfoFree(opts);
	if ((f = feed_new(dsn, application, seq, alive_ns, why, sizeof(why))) ==
	    NULL) {
		snprintf(err, errlen, "feed: %s", why);
		log_warnx("%s", err);
		return NULL;
	}
	if (setup(f, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "feed: cannot follow %s: %s", f->redacted,
		         why);
		goto out_free;
	}
	if (pthread_create(&f->thread, NULL, feed_main, f) != 0) {
		snprintf(err, errlen, "feed: cannot start its thread");
		goto out_free;
	}
	log_info("feed %s: following \"%s\"", f->redacted, f->inval);
	return f;

out_free:
	log_warnx("%s", err);
	atomic_store(alive_ns, 0);
	feed_free(f);
	return NULL;
}

struct eb_pg_feed *
eb_pg_feed_start(const char *dsn, _Atomic uint64_t *seq,
                 _Atomic int64_t *alive_ns, char *err, size_t errlen)
{
	return eb_pg_feed_start_as(dsn, NULL, seq, alive_ns, err, errlen);
}

void
eb_pg_feed_stop(struct eb_pg_feed *f)
{
	ssize_t w;

	if (f == NULL)
		return;
	atomic_store(&f->stopping, 1);
	do
		w = write(f->wake[1], "x", 1);
	while (w == -1 && errno == EINTR);
	pthread_join(f->thread, NULL);
	atomic_store(f->alive_ns, 0);
	feed_free(f);
}

uint64_t
eb_pg_feed_keys(const struct eb_pg_feed *f)
{
	return f == NULL ? 0 : atomic_load(&((struct eb_pg_feed *)f)->keys);
}

int
eb_pg_feed_backend_pid(const struct eb_pg_feed *f)
{
	return f == NULL ? 0 : atomic_load(&((struct eb_pg_feed *)f)->pid);
}

uint64_t
eb_pg_feed_reconnects(const struct eb_pg_feed *f)
{
	return f == NULL ? 0
	                 : atomic_load(&((struct eb_pg_feed *)f)->reconnects);
}
