/*
 * The backend-independent half of the store: the handle (a backend's ops
 * and its own state), the eb_store_* functions that dispatch through the
 * ops, the change tracking that lets callers cache token and grant state
 * (the generation bumped by every operation that may change it, and the
 * change file other processes touch), the release functions for the
 * records the store hands out, the enum names that are also the stored
 * text, and the token hash.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/config.h"
#include "core/digest.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/watch.h"

struct eb_store {
	const struct eb_store_ops *ops;
	void *be;
	char *change_path; /* the change file, or NULL */
	int announce;      /* touch it after every change made through us */
	uint64_t epoch;    /* this handle with this change file (watch.h) */
	/* the backend's feed (eb_store_feed_start), when has_feed */
	int has_feed;
	_Atomic uint64_t feed_seq;     /* bumped on every invalidation or gap */
	_Atomic int64_t feed_alive_ns; /* CLOCK_MONOTONIC of its last proof */
};

/* How long a feed's last proof of being current lets stamps be used. */
#define FEED_FRESH_NS 1000000000LL

/*
 * The token/grant generation. A mutable global, against our rule, because
 * it must be process-wide: two handles on one database in one process
 * (a test, or a future second subsystem) must see each other's changes
 * without the change file. Sequentially consistent: a bump is ordered
 * after the backend's commit, a cache's load before its read.
 */
static _Atomic uint64_t generation = 1;
/* The last epoch given to a handle's change file (watch.h). */
static _Atomic uint64_t epochs;

const char *
eb_store_strerror(int rc)
{
	switch (rc) {
	case EB_STORE_OK:
		return "ok";
	case EB_STORE_ERROR:
		return "storage error";
	case EB_STORE_NOT_FOUND:
		return "not found";
	case EB_STORE_EXPIRED:
		return "expired";
	case EB_STORE_REPLAY:
		return "code replayed";
	case EB_STORE_REUSE:
		return "refresh token reused";
	case EB_STORE_REVOKED:
		return "revoked";
	case EB_STORE_CONFLICT:
		return "conflict";
	case EB_STORE_MISMATCH:
		return "client or redirect mismatch";
	case EB_STORE_RETRY:
		return "refresh retried within the grace window";
	case EB_STORE_TAKEN:
		return "enrollment bound to another person's grant";
	case EB_STORE_LOST:
		return "renewal lease lost; result dropped";
	}
	return "unknown store result";
}

int
eb_store_hash_token(const void *tok, size_t len,
                    char out[EB_STORE_HASH_HEXLEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	out[0] = '\0';
	if (tok == NULL && len > 0)
		return -1;
	if (EVP_Digest(tok == NULL ? "" : tok, len, md, &mdlen, eb_sha256_md(),
	               NULL) != 1 ||
	    mdlen != EB_STORE_HASH_HEXLEN / 2)
		return -1;
	for (i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[2 * mdlen] = '\0';
	return 0;
}

/* ---- enum names ------------------------------------------------------- */

static const char *const flow_kinds[] = {"apple-as-web", "oauth2-authorize"};
static const char *const grant_statuses[] = {"active", "revoked", "expired",
                                             "superseded"};
static const char *const token_kinds[] = {"access", "refresh", "web"};
static const char *const token_statuses[] = {"active", "rotated", "revoked"};

#define NAME_OF(tab, v)                                                        \
	((v) >= 0 && (size_t)(v) < sizeof(tab) / sizeof(tab[0]) ? tab[v] : NULL)

const char *
eb_store_flow_kind_name(int kind)
{
	return NAME_OF(flow_kinds, kind);
}

const char *
eb_store_grant_status_name(int status)
{
	return NAME_OF(grant_statuses, status);
}

const char *
eb_store_token_kind_name(int kind)
{
	return NAME_OF(token_kinds, kind);
}

const char *
eb_store_token_status_name(int status)
{
	return NAME_OF(token_statuses, status);
}

int
eb_store_grant_status_parse(const char *name)
{
	size_t i;

	for (i = 0; name != NULL &&
	            i < sizeof(grant_statuses) / sizeof(grant_statuses[0]);
	     i++)
		if (strcmp(name, grant_statuses[i]) == 0)
			return (int)i;
	return -1;
}

/* ---- backend selection ------------------------------------------------ */

int
eb_store_target_is_pg(const char *target)
{
	return eb_config_dsn_is_pg(target);
}

const struct eb_store_ops *
eb_store_ops_for(const char *target)
{
	return eb_store_target_is_pg(target) ? &eb_store_pg_ops
	                                     : &eb_store_sqlite_ops;
}

/* ---- lifecycle -------------------------------------------------------- */

struct eb_store *
eb_store_open(const struct eb_store_ops *ops, const char *target, char *err,
              size_t errlen)
{
	return eb_store_open_flags(ops, target, 0, NULL, NULL, err, errlen);
}

/* Open cfg's database with flags (EB_STORE_OPEN_NO_NOTIFY added from
 * cfg) and cfg's connection settings. */
static struct eb_store *
open_config(const struct eb_config *cfg, int flags,
            eb_store_applied_fn *applied, void *arg, char *err, size_t errlen)
{
	struct eb_store_open_opts opts;
	char app[128];

	memset(&opts, 0, sizeof(opts));
	opts.pool = cfg->limits.db_pool;
	opts.timeout_ms = cfg->limits.db_timeout > 0
	                      ? (unsigned)cfg->limits.db_timeout * 1000u
	                      : 0;
	snprintf(app, sizeof(app), "enrollbridge/%s",
	         eb_config_replica_id(cfg));
	opts.application = app;
	if (!cfg->database_notify)
		flags |= EB_STORE_OPEN_NO_NOTIFY;
	return eb_store_open_with(eb_store_ops_for(cfg->database),
	                          cfg->database, flags, &opts, applied, arg,
	                          err, errlen);
}

struct eb_store *
eb_store_open_config(const struct eb_config *cfg, char *err, size_t errlen)
{
	return open_config(cfg,
	                   cfg->database_migrate ? 0 : EB_STORE_OPEN_NO_MIGRATE,
	                   NULL, NULL, err, errlen);
}

struct eb_store *
eb_store_open_config_migrate(const struct eb_config *cfg,
                             eb_store_applied_fn *applied, void *arg, char *err,
                             size_t errlen)
{
	return open_config(cfg, 0, applied, arg, err, errlen);
}

struct eb_store *
eb_store_open_flags(const struct eb_store_ops *ops, const char *target,
                    int flags, eb_store_applied_fn *applied, void *arg,
                    char *err, size_t errlen)
{
	return eb_store_open_with(ops, target, flags, NULL, applied, arg, err,
	                          errlen);
}

struct eb_store *
eb_store_open_with(const struct eb_store_ops *ops, const char *target,
                   int flags, const struct eb_store_open_opts *opts,
                   eb_store_applied_fn *applied, void *arg, char *err,
                   size_t errlen)
{
	int rc;

	struct eb_store *s;
	char local[256];

	if (err == NULL || errlen == 0) {
		err = local;
		errlen = sizeof(local);
	}
	err[0] = '\0';
	if (ops == NULL)
		ops = &eb_store_sqlite_ops;
	if (target == NULL || ops->open == NULL) {
		snprintf(err, errlen, "store: no %s",
		         target ? "backend" : "path");
		log_warnx("%s", err);
		return NULL;
	}
	if ((s = eb_calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "store: out of memory");
		log_warnx("%s", err);
		return NULL;
	}
	s->ops = ops;
	if (ops->open_flags != NULL)
		rc = ops->open_flags(target, flags, opts, applied, arg, &s->be,
		                     err, errlen);
	else if ((flags & ~EB_STORE_OPEN_NO_NOTIFY) == 0 && applied == NULL)
		rc = ops->open(target, &s->be, err, errlen);
	else {
		snprintf(err, errlen,
		         "store: the %s backend cannot open "
		         "with flags",
		         ops->name ? ops->name : "?");
		log_warnx("%s", err);
		rc = -1;
	}
	if (rc != 0) {
		eb_free(s);
		return NULL;
	}
	/* a new handle may reuse a closed one's address: no entry survives */
	atomic_fetch_add(&generation, 1);
	return s;
}

void
eb_store_close(struct eb_store *s)
{
	if (s == NULL)
		return;
	/* no stamp may be taken from a feed that is being torn down */
	if (s->has_feed) {
		atomic_store(&s->feed_alive_ns, 0);
		if (s->ops->feed_stop != NULL)
			s->ops->feed_stop(s->be);
	}
	atomic_fetch_add(&generation, 1);
	if (s->ops->close != NULL)
		s->ops->close(s->be);
	eb_free(s->change_path);
	eb_free(s);
}

const char *
eb_store_backend(const struct eb_store *s)
{
	return s == NULL ? NULL : s->ops->name;
}

/* ---- change tracking -------------------------------------------------- */

uint64_t
eb_store_generation(void)
{
	return atomic_load(&generation);
}

int
eb_store_feed_start(struct eb_store *s)
{
	if (s == NULL)
		return -1;
	if (s->ops->feed_start == NULL)
		return 0;
	if (s->has_feed)
		return 1;
	atomic_store(&s->feed_alive_ns, 0);
	if (s->ops->feed_start(s->be, &s->feed_seq, &s->feed_alive_ns) != 0) {
		log_warnx("store: the %s backend cannot follow other "
		          "processes' changes",
		          s->ops->name ? s->ops->name : "?");
		return -1;
	}
	s->has_feed = 1;
	/* stamps taken without the feed mean nothing now */
	atomic_fetch_add(&generation, 1);
	return 1;
}

int
eb_store_backend_has_feed(const struct eb_store *s)
{
	return s != NULL && s->ops->feed_start != NULL;
}

/* The feed's part of a stamp: 0, or -1 while it is not proved current. */
static int
stamp_feed(struct eb_store *s, struct eb_store_stamp *out)
{
	struct timespec ts;
	int64_t alive, now;

	out->feed = atomic_load(&s->feed_seq);
	alive = atomic_load(&s->feed_alive_ns);
	if (alive <= 0 || clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return -1;
	now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	return now - alive > FEED_FRESH_NS ? -1 : 0;
}

int
eb_store_set_change_file(struct eb_store *s, const char *path, int announce)
{
	char *p = NULL;

	if (s == NULL)
		return -1;
	/* the feed tells of other processes' changes; the database of ours */
	if (s->has_feed)
		return 0;
	if (path != NULL && (p = eb_strdup(path)) == NULL)
		return -1;
	eb_free(s->change_path);
	s->change_path = p;
	s->announce = p != NULL && announce;
	s->epoch = atomic_fetch_add(&epochs, 1) + 1;
	/* stamps of another file (or of none) mean nothing now */
	atomic_fetch_add(&generation, 1);
	return 0;
}

static void
stamp_file(const struct stat *sb, struct eb_store_stamp *out)
{
	out->file = 1;
	out->dev = (uint64_t)sb->st_dev;
	out->ino = (uint64_t)sb->st_ino;
	out->size = (int64_t)sb->st_size;
	out->mtime_sec = (int64_t)sb->st_mtim.tv_sec;
	out->mtime_nsec = (int64_t)sb->st_mtim.tv_nsec;
	out->ctime_sec = (int64_t)sb->st_ctim.tv_sec;
	out->ctime_nsec = (int64_t)sb->st_ctim.tv_nsec;
}

int
eb_store_stamp(struct eb_store *s, struct eb_store_stamp *out)
{
	struct stat sb;

	memset(out, 0, sizeof(*out));
	out->generation = atomic_load(&generation);
	if (s != NULL && s->has_feed)
		return stamp_feed(s, out);
	if (s == NULL || s->change_path == NULL)
		return -1;
	/* a watcher's thread with its watch in place: no path walk */
	if (!s->announce && eb_watch_stamp(s->change_path, s->epoch, &out->dev,
	                                   &out->ino, &out->seq) == 1) {
		out->file = 1;
		out->watched = 1;
		return 0;
	}
	/* lstat: a symbolic link there is nothing our writers touch */
	if (lstat(s->change_path, &sb) == -1)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISREG(sb.st_mode))
		return -1;
	stamp_file(&sb, out);
	if (!s->announce)
		eb_watch_arm(s->change_path, s->epoch, &sb);
	return 0;
}

int
eb_store_stamp_equal(const struct eb_store_stamp *a,
                     const struct eb_store_stamp *b)
{
	return a->generation == b->generation && a->feed == b->feed &&
	       a->file == b->file && a->watched == b->watched &&
	       a->seq == b->seq && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime_sec == b->mtime_sec &&
	       a->mtime_nsec == b->mtime_nsec && a->ctime_sec == b->ctime_sec &&
	       a->ctime_nsec == b->ctime_nsec;
}

static int
ts_cmp(const struct timespec *a, const struct timespec *b)
{
	if (a->tv_sec != b->tv_sec)
		return a->tv_sec < b->tv_sec ? -1 : 1;
	if (a->tv_nsec != b->tv_nsec)
		return a->tv_nsec < b->tv_nsec ? -1 : 1;
	return 0;
}

static struct timespec
ts_plus(struct timespec t, long ns)
{
	t.tv_sec += ns / 1000000000L;
	t.tv_nsec += ns % 1000000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/*
 * Set fd's modification time strictly after old: the clock's time, or old
 * plus a step when the clock is not later (coarse, or set back). Checked,
 * and retried a second later, because a file system may keep coarser
 * times than we set; then a watcher's stamp changes whatever the clock.
 */
static int
mtime_after(int fd, const struct timespec *old)
{
	static const long step_ns[] = {1, 1000000000L};
	struct timespec ts[2], now;
	struct stat sb;
	size_t i;

	if (clock_gettime(CLOCK_REALTIME, &now) == -1)
		now = *old;
	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	for (i = 0; i < sizeof(step_ns) / sizeof(step_ns[0]); i++) {
		ts[1] = ts_plus(*old, step_ns[i]);
		if (ts_cmp(&now, &ts[1]) > 0)
			ts[1] = now;
		if (futimens(fd, ts) == -1 || fstat(fd, &sb) == -1)
			return -1;
		if (ts_cmp(&sb.st_mtim, old) > 0)
			return 0;
	}
	errno = ERANGE;
	return -1;
}

/* Replace the counter in fd by the next value (none or garbage: 0). */
static int
write_next_count(int fd)
{
	unsigned long long n = 0;
	char buf[32];
	ssize_t len;
	int w;

	if ((len = pread(fd, buf, sizeof(buf) - 1, 0)) > 0) {
		buf[len] = '\0';
		n = strtoull(buf, NULL, 10);
	}
	w = snprintf(buf, sizeof(buf), "%llu\n", n + 1);
	if (w < 0 || (size_t)w >= sizeof(buf) ||
	    pwrite(fd, buf, (size_t)w, 0) != (ssize_t)w ||
	    ftruncate(fd, (off_t)w) == -1)
		return -1;
	return 0;
}

int
eb_store_announce_change(struct eb_store *s)
{
	struct stat sb;
	int fd, rc = -1;

	if (s == NULL || s->change_path == NULL)
		return -1;
	fd = open(s->change_path,
	          O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd == -1) {
		/* no state directory yet: no server has started with it */
		if (errno == ENOENT)
			return 0;
		log_warn("store: change file %s: cannot open (a running "
		         "server may not see this change at once)",
		         s->change_path);
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode))
		log_warnx("store: change file %s: not a regular file (a "
		          "running server may not see this change at once)",
		          s->change_path);
	else if (write_next_count(fd) == -1 || mtime_after(fd, &sb.st_mtim))
		log_warn("store: change file %s: cannot update (a running "
		         "server may not see this change at once)",
		         s->change_path);
	else
		rc = 0;
	close(fd);
	return rc;
}

/*
 * Dispatch to an operation; a missing store or operation is a logged
 * backend failure, never a crash.
 */
#define DISPATCH(s, op, ...)                                                   \
	do {                                                                   \
		if ((s) == NULL || (s)->ops->op == NULL) {                     \
			log_warnx("store: operation %s not available", #op);   \
			return EB_STORE_ERROR;                                 \
		}                                                              \
		return (s)->ops->op((s)->be, __VA_ARGS__);                     \
	} while (0)

/* Out records are zeroed first: finishing one after a failure is safe. */
#define ZERO(p) memset((p), 0, sizeof(*(p)))

/*
 * After an operation that may have changed a token or a grant, whatever
 * its result (a failure may have come part-way, and a commit may have
 * succeeded behind an error): bump the generation, and touch the change
 * file when we announce. Returns rc.
 */
static int
changed(struct eb_store *s, int rc)
{
	atomic_fetch_add(&generation, 1);
	if (s->announce)
		eb_store_announce_change(s);
	return rc;
}

/* DISPATCH for an operation that may change a token or a grant. */
#define DISPATCH_CHANGE(s, op, ...)                                            \
	do {                                                                   \
		if ((s) == NULL || (s)->ops->op == NULL) {                     \
			log_warnx("store: operation %s not available", #op);   \
			return EB_STORE_ERROR;                                 \
		}                                                              \
		return changed((s), (s)->ops->op((s)->be, __VA_ARGS__));       \
	} while (0)

int
eb_store_ping(struct eb_store *s)
{
	if (s == NULL || s->ops->ping == NULL)
		return EB_STORE_ERROR;
	return s->ops->ping(s->be);
}

int
eb_store_schema_version(struct eb_store *s, int64_t *version)
{
	DISPATCH(s, schema_version, version);
}

/* Deletes token rows: a change, unless nothing was removed. */
int
eb_store_sweep(struct eb_store *s, int64_t now, size_t *removed)
{
	size_t n = 0;
	int rc;

	if (removed != NULL)
		*removed = 0;
	if (s == NULL || s->ops->sweep == NULL) {
		log_warnx("store: operation sweep not available");
		return EB_STORE_ERROR;
	}
	rc = s->ops->sweep(s->be, now, &n);
	if (rc != EB_STORE_OK || n > 0)
		changed(s, rc);
	if (rc == EB_STORE_OK && removed != NULL)
		*removed = n;
	return rc;
}

int
eb_store_audit_add(struct eb_store *s, const struct eb_store_audit *ev)
{
	DISPATCH(s, audit_add, ev);
}

int
eb_store_audit_list(struct eb_store *s, const char *tenant, size_t limit,
                    struct eb_store_audit_list *out)
{
	ZERO(out);
	DISPATCH(s, audit_list, tenant, limit, out);
}

int
eb_store_audit_query(struct eb_store *s, const struct eb_store_audit_filter *f,
                     struct eb_store_audit_list *out)
{
	ZERO(out);
	DISPATCH(s, audit_query, f, out);
}

int
eb_store_audit_prune(struct eb_store *s, int64_t before, size_t *removed)
{
	size_t n = 0;
	int rc;

	if (removed != NULL)
		*removed = 0;
	if (s == NULL || s->ops->audit_prune == NULL) {
		log_warnx("store: operation audit_prune not available");
		return EB_STORE_ERROR;
	}
	rc = s->ops->audit_prune(s->be, before, &n);
	if (rc == EB_STORE_OK && removed != NULL)
		*removed = n;
	return rc;
}

int
eb_store_flow_put(struct eb_store *s, const struct eb_store_flow *f)
{
	DISPATCH(s, flow_put, f);
}

int
eb_store_flow_get(struct eb_store *s, int by, const char *key, int64_t now,
                  struct eb_store_flow *out)
{
	ZERO(out);
	DISPATCH(s, flow_get, by, key, now, out);
}

int
eb_store_flow_take(struct eb_store *s, int by, const char *key, int64_t now,
                   struct eb_store_flow *out)
{
	ZERO(out);
	DISPATCH(s, flow_take, by, key, now, out);
}

int
eb_store_code_put(struct eb_store *s, const struct eb_store_code *c)
{
	DISPATCH(s, code_put, c);
}

int
eb_store_code_consume(struct eb_store *s, const char *hash,
                      const char *client_id, const char *redirect_uri,
                      int64_t now, struct eb_store_code *out)
{
	if (out != NULL)
		ZERO(out);
	/* a replayed code revokes its grant */
	DISPATCH_CHANGE(s, code_consume, hash, client_id, redirect_uri, now,
	                out);
}

int
eb_store_grant_create(struct eb_store *s, const struct eb_store_grant *g)
{
	DISPATCH_CHANGE(s, grant_create, g);
}

int
eb_store_grant_get(struct eb_store *s, const char *id,
                   struct eb_store_grant *out)
{
	ZERO(out);
	DISPATCH(s, grant_get, id, out);
}

int
eb_store_grant_list(struct eb_store *s, const struct eb_store_grant_filter *f,
                    struct eb_store_grant_list *out)
{
	ZERO(out);
	DISPATCH(s, grant_list, f, out);
}

int
eb_store_grant_list_person(struct eb_store *s, const char *tenant,
                           const char *login, const char *oid,
                           struct eb_store_grant_list *out)
{
	ZERO(out);
	if (login == NULL && oid == NULL)
		return EB_STORE_OK;
	DISPATCH(s, grant_list_person, tenant, login, oid, out);
}

int
eb_store_grant_set_status(struct eb_store *s, const char *id, int status,
                          const char *reason, int64_t now)
{
	DISPATCH_CHANGE(s, grant_set_status, id, status, reason, now);
}

int
eb_store_grant_retire(struct eb_store *s, const char *id, const char *reason,
                      int64_t now)
{
	DISPATCH_CHANGE(s, grant_retire, id, reason, now);
}

int
eb_store_grant_supersede(struct eb_store *s, const char *old_id,
                         const char *new_id, int64_t now)
{
	DISPATCH_CHANGE(s, grant_supersede, old_id, new_id, now);
}

int
eb_store_grant_bind(struct eb_store *s, const char *id, const char *kind,
                    const char *value, int64_t now)
{
	DISPATCH_CHANGE(s, grant_bind, id, kind, value, now);
}

int
eb_store_grant_set_upstream(struct eb_store *s, const char *id,
                            const struct eb_store_upstream *u, int64_t now)
{
	/* no field the bearer check reads, but a grant write all the same */
	DISPATCH_CHANGE(s, grant_set_upstream, id, u, now);
}

/* With a lease it writes the grants it claims: a change, unless none. */
int
eb_store_grant_list_due(struct eb_store *s, const char *tenant, int64_t now,
                        int64_t lease, size_t limit,
                        struct eb_store_grant_list *out)
{
	int rc;

	ZERO(out);
	if (s == NULL || s->ops->grant_list_due == NULL) {
		log_warnx("store: operation grant_list_due not available");
		return EB_STORE_ERROR;
	}
	rc = s->ops->grant_list_due(s->be, tenant, now, lease, limit, out);
	if (lease > 0 && (rc != EB_STORE_OK || out->n > 0))
		changed(s, rc);
	return rc;
}

/* Claims write the grants they return: a change, unless none. */
int
eb_store_grant_claim_due(struct eb_store *s, const char *tenant, int64_t now,
                         int64_t lease, size_t limit, size_t cap,
                         const char *owner, struct eb_store_grant_list *out)
{
	int rc;

	ZERO(out);
	if (s == NULL || s->ops->grant_claim_due == NULL) {
		log_warnx("store: operation grant_claim_due not available");
		return EB_STORE_ERROR;
	}
	if (owner == NULL || lease <= 0 || (cap > 0 && tenant == NULL)) {
		log_warnx("store: grant_claim_due needs an owner, a lease, and "
		          "a tenant with a cap");
		return EB_STORE_ERROR;
	}
	rc = s->ops->grant_claim_due(s->be, tenant, now, lease, limit, cap,
	                             owner, out);
	if (rc != EB_STORE_OK || out->n > 0)
		changed(s, rc);
	return rc;
}

int
eb_store_grant_release(struct eb_store *s, const char *id,
                       const char *lease_token, int64_t now)
{
	DISPATCH_CHANGE(s, grant_release, id, lease_token, now);
}

int
eb_store_grant_count(struct eb_store *s, const char *tenant, int status,
                     int failing_only, int64_t *out)
{
	*out = 0;
	DISPATCH(s, grant_count, tenant, status, failing_only, out);
}

int
eb_store_lock_try(struct eb_store *s, const char *name, const char *owner,
                  int64_t ttl, int64_t now)
{
	DISPATCH(s, lock_try, name, owner, ttl, now);
}

int
eb_store_lock_release(struct eb_store *s, const char *name, const char *owner)
{
	DISPATCH(s, lock_release, name, owner);
}

int
eb_store_key_rotate(struct eb_store *s, const struct eb_store_key *k,
                    int64_t retire_at, int64_t not_after)
{
	DISPATCH(s, key_rotate, k, retire_at, not_after);
}

int
eb_store_token_put(struct eb_store *s, const struct eb_store_token *t)
{
	DISPATCH_CHANGE(s, token_put, t);
}

int
eb_store_token_get(struct eb_store *s, const char *hash,
                   struct eb_store_token *out)
{
	ZERO(out);
	DISPATCH(s, token_get, hash, out);
}

int
eb_store_token_grant_get(struct eb_store *s, const char *hash,
                         struct eb_store_token *tok,
                         struct eb_store_grant *grant)
{
	int rc;

	ZERO(tok);
	ZERO(grant);
	if (s != NULL && s->ops->token_grant_get != NULL)
		return s->ops->token_grant_get(s->be, hash, tok, grant);
	if ((rc = eb_store_token_get(s, hash, tok)) != EB_STORE_OK ||
	    tok->grant_id == NULL)
		return rc;
	rc = eb_store_grant_get(s, tok->grant_id, grant);
	return rc == EB_STORE_NOT_FOUND ? EB_STORE_OK : rc;
}

int
eb_store_token_rotate_refresh(struct eb_store *s, const char *old_hash,
                              const struct eb_store_token *next,
                              const uint8_t *next_sealed,
                              size_t next_sealed_len,
                              const struct eb_store_token *access, int64_t now,
                              int64_t grace, struct eb_store_token *old_out)
{
	if (old_out != NULL)
		ZERO(old_out);
	/* also revokes the whole grant on reuse */
	DISPATCH_CHANGE(s, token_rotate, old_hash, next, next_sealed,
	                next_sealed_len, access, now, grace, old_out);
}

int
eb_store_token_revoke(struct eb_store *s, const char *hash, int64_t now)
{
	DISPATCH_CHANGE(s, token_revoke, hash, now);
}

int
eb_store_key_put(struct eb_store *s, const struct eb_store_key *k)
{
	DISPATCH(s, key_put, k);
}

int
eb_store_key_list(struct eb_store *s, const char *tenant,
                  struct eb_store_key_list *out)
{
	ZERO(out);
	DISPATCH(s, key_list, tenant, out);
}

int
eb_store_key_retire(struct eb_store *s, const char *kid, int64_t retired_at,
                    int64_t not_after)
{
	DISPATCH(s, key_retire, kid, retired_at, not_after);
}

int
eb_store_grant_list_sealed(struct eb_store *s, const char *after, size_t limit,
                           struct eb_store_grant_list *out)
{
	ZERO(out);
	DISPATCH(s, grant_list_sealed, after, limit, out);
}

/* A compare-and-swap needs both values: an empty one is a caller's bug. */
static int
reseal_args(const char *what, const char *id, const uint8_t *old,
            size_t old_len, const uint8_t *next, size_t next_len)
{
	if (id != NULL && old != NULL && old_len > 0 && next != NULL &&
	    next_len > 0)
		return 0;
	log_warnx("store: %s: an id, the old and the new value are needed",
	          what);
	return -1;
}

int
eb_store_grant_reseal(struct eb_store *s, const char *id, const uint8_t *old,
                      size_t old_len, const uint8_t *next, size_t next_len)
{
	if (reseal_args("grant_reseal", id, old, old_len, next, next_len) != 0)
		return EB_STORE_ERROR;
	/* the same secret, sealed anew: nothing a bearer check reads */
	DISPATCH(s, grant_reseal, id, old, old_len, next, next_len);
}

int
eb_store_key_reseal(struct eb_store *s, const char *kid, const uint8_t *old,
                    size_t old_len, const uint8_t *next, size_t next_len)
{
	if (reseal_args("key_reseal", kid, old, old_len, next, next_len) != 0)
		return EB_STORE_ERROR;
	DISPATCH(s, key_reseal, kid, old, old_len, next, next_len);
}

int
eb_store_mapping_put(struct eb_store *s, const struct eb_store_mapping *m)
{
	/* the Managed Apple ID of later grants: err on the side of a bump */
	DISPATCH_CHANGE(s, mapping_put, m);
}

int
eb_store_scim_user_create(struct eb_store *s,
                          const struct eb_store_scim_user *u)
{
	DISPATCH(s, scim_user_create, u);
}

int
eb_store_scim_user_get(struct eb_store *s, const char *tenant, const char *id,
                       struct eb_store_scim_user *out)
{
	ZERO(out);
	DISPATCH(s, scim_user_get, tenant, id, out);
}

int
eb_store_scim_user_replace(struct eb_store *s,
                           const struct eb_store_scim_user *u)
{
	DISPATCH(s, scim_user_replace, u);
}

int
eb_store_scim_user_delete(struct eb_store *s, const char *tenant,
                          const char *id)
{
	DISPATCH(s, scim_user_delete, tenant, id);
}

/*
 * Keep the page [offset, offset + limit) of l, the others finished: a
 * filter's matches come whole from the backend (a userName has one).
 */
static void
scim_slice(struct eb_store_scim_user_list *l, size_t offset, size_t limit)
{
	size_t i, keep;

	keep = offset < l->n ? l->n - offset : 0;
	if (keep > limit)
		keep = limit;
	for (i = 0; i < l->n; i++)
		if (i < offset || i >= offset + keep)
			eb_store_scim_user_finish(&l->v[i]);
	if (keep > 0 && offset > 0)
		memmove(l->v, l->v + offset, keep * sizeof(*l->v));
	l->n = keep;
	if (keep == 0) {
		eb_free(l->v);
		l->v = NULL;
	}
}

int
eb_store_scim_user_list(struct eb_store *s, const char *tenant, int by,
                        const char *value, size_t offset, size_t limit,
                        struct eb_store_scim_user_list *out, int64_t *total)
{
	int rc;

	ZERO(out);
	*total = 0;
	if (s == NULL || s->ops->scim_user_list == NULL) {
		log_warnx("store: operation scim_user_list not available");
		return EB_STORE_ERROR;
	}
	if (by != EB_STORE_SCIM_ALL && by != EB_STORE_SCIM_USER_NAME &&
	    by != EB_STORE_SCIM_EXTERNAL_ID) {
		log_warnx("store: %s: bad filter %d", __func__, by);
		return EB_STORE_ERROR;
	}
	if (by != EB_STORE_SCIM_ALL && value == NULL) {
		log_warnx("store: %s: a filter without a value", __func__);
		return EB_STORE_ERROR;
	}
	rc = s->ops->scim_user_list(s->be, tenant, by, value, offset, limit,
	                            out, total);
	if (rc == EB_STORE_OK && by != EB_STORE_SCIM_ALL)
		scim_slice(out, offset, limit);
	return rc;
}

void
eb_store_scim_user_finish(struct eb_store_scim_user *u)
{
	if (u == NULL)
		return;
	eb_free(u->tenant);
	eb_free(u->id);
	eb_free(u->user_name);
	eb_free(u->external_id);
	eb_free(u->resource);
	memset(u, 0, sizeof(*u));
}

void
eb_store_scim_user_list_finish(struct eb_store_scim_user_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		eb_store_scim_user_finish(&l->v[i]);
	eb_free(l->v);
	memset(l, 0, sizeof(*l));
}

int
eb_store_mapping_get(struct eb_store *s, const char *tenant,
                     const char *subject, struct eb_store_mapping *out)
{
	ZERO(out);
	DISPATCH(s, mapping_get, tenant, subject, out);
}

int
eb_store_mapping_delete(struct eb_store *s, const char *tenant,
                        const char *subject)
{
	DISPATCH_CHANGE(s, mapping_delete, tenant, subject);
}

int
eb_store_mapping_list(struct eb_store *s, const char *tenant,
                      struct eb_store_mapping_list *out)
{
	ZERO(out);
	DISPATCH(s, mapping_list, tenant, out);
}

/* ---- releasing records ------------------------------------------------ */

void
eb_store_audit_finish(struct eb_store_audit *ev)
{
	if (ev == NULL)
		return;
	eb_free(ev->tenant);
	eb_free(ev->event);
	eb_free(ev->subject);
	eb_free(ev->detail);
	memset(ev, 0, sizeof(*ev));
}

void
eb_store_audit_list_finish(struct eb_store_audit_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		eb_store_audit_finish(&l->v[i]);
	eb_free(l->v);
	memset(l, 0, sizeof(*l));
}

void
eb_store_flow_finish(struct eb_store_flow *f)
{
	if (f == NULL)
		return;
	eb_free(f->id);
	eb_free(f->tenant);
	eb_free(f->user_identifier);
	eb_free(f->enrollment_mode);
	eb_free(f->model_family);
	eb_free(f->product);
	eb_free(f->version);
	eb_free(f->language);
	eb_free(f->os_version);
	eb_free(f->udid);
	eb_free(f->serial);
	eb_free_secret_str(f->upstream_state);
	eb_free_secret_str(f->upstream_nonce);
	eb_free_secret(f->pkce_verifier, f->pkce_verifier_len);
	eb_free(f->browser_binding);
	eb_free(f->client_id);
	eb_free(f->redirect_uri);
	eb_free(f->device_state);
	eb_free(f->scope);
	eb_free(f->extra);
	eb_free(f->code_challenge);
	memset(f, 0, sizeof(*f));
}

void
eb_store_code_finish(struct eb_store_code *c)
{
	if (c == NULL)
		return;
	eb_free(c->hash);
	eb_free(c->tenant);
	eb_free(c->grant_id);
	eb_free(c->client_id);
	eb_free(c->redirect_uri);
	eb_free(c->scope);
	eb_free(c->code_challenge);
	memset(c, 0, sizeof(*c));
}

void
eb_store_grant_finish(struct eb_store_grant *g)
{
	if (g == NULL)
		return;
	eb_free(g->id);
	eb_free(g->tenant);
	eb_free(g->auth_method);
	eb_free(g->client_id);
	eb_free(g->managed_apple_id);
	eb_free(g->user_identifier);
	eb_free(g->idp_issuer);
	eb_free(g->idp_subject);
	eb_free(g->idp_tid);
	eb_free(g->idp_oid);
	eb_free(g->enrollment_mode);
	eb_free(g->binding_kind);
	eb_free(g->binding_value);
	eb_free_secret(g->upstream_refresh_token,
	               g->upstream_refresh_token_len);
	eb_free(g->revoke_reason);
	eb_free(g->superseded_by);
	eb_free(g->extra);
	eb_free(g->lease_owner);
	eb_free(g->lease_token);
	eb_free(g->idp_login);
	memset(g, 0, sizeof(*g));
}

void
eb_store_grant_list_finish(struct eb_store_grant_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		eb_store_grant_finish(&l->v[i]);
	eb_free(l->v);
	memset(l, 0, sizeof(*l));
}

void
eb_store_token_finish(struct eb_store_token *t)
{
	if (t == NULL)
		return;
	eb_free(t->hash);
	eb_free(t->tenant);
	eb_free(t->grant_id);
	eb_free(t->client_id);
	eb_free(t->jti);
	eb_free(t->parent_hash);
	eb_free(t->replaced_by);
	eb_free_secret(t->successor_sealed, t->successor_sealed_len);
	memset(t, 0, sizeof(*t));
}

void
eb_store_key_finish(struct eb_store_key *k)
{
	if (k == NULL)
		return;
	eb_free(k->kid);
	eb_free(k->tenant);
	eb_free(k->alg);
	eb_free(k->public_jwk);
	eb_free_secret(k->private_key, k->private_key_len);
	memset(k, 0, sizeof(*k));
}

void
eb_store_key_list_finish(struct eb_store_key_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		eb_store_key_finish(&l->v[i]);
	eb_free(l->v);
	memset(l, 0, sizeof(*l));
}

void
eb_store_mapping_list_finish(struct eb_store_mapping_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		eb_store_mapping_finish(&l->v[i]);
	eb_free(l->v);
	memset(l, 0, sizeof(*l));
}

void
eb_store_mapping_finish(struct eb_store_mapping *m)
{
	if (m == NULL)
		return;
	eb_free(m->tenant);
	eb_free(m->subject);
	eb_free(m->managed_apple_id);
	eb_free(m->note);
	memset(m, 0, sizeof(*m));
}
