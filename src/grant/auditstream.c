/*
 * The audit stream (auditstream.h): one thread, one descriptor, a cursor
 * (the last event id written).
 */
#include "grant/auditstream.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/log.h"
#include "core/mem.h"
#include "grant/manage.h"
#include "store/store.h"

#define FOLLOW_MS 1000
#define BATCH     1000

struct eb_auditstream {
	struct eb_store *store;
	char *path; /* NULL: stdout */
	int fd;
	int64_t after; /* the last id written */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stopping;
};

static int
open_target(struct eb_auditstream *as, char *err, size_t errlen)
{
	int fd;

	if (as->path == NULL) {
		as->fd = STDOUT_FILENO;
		return 0;
	}
	fd = open(as->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1) {
		snprintf(err, errlen, "audit_stream: cannot open %s: %s",
		         as->path, strerror(errno));
		return -1;
	}
	if (as->fd > STDERR_FILENO)
		close(as->fd);
	as->fd = fd;
	return 0;
}

/* Reopen the file when its path no longer names what we write to. */
static void
follow_rotation(struct eb_auditstream *as)
{
	struct stat a, b;
	char err[256];

	if (as->path == NULL)
		return;
	if (stat(as->path, &a) == 0 && fstat(as->fd, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		return;
	if (open_target(as, err, sizeof(err)) == -1)
		log_warnx("%s", err);
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void
write_event(struct eb_auditstream *as, const struct eb_store_audit *ev)
{
	json_free_t jfree = NULL;
	json_t *o = eb_manage_audit_json(ev);
	char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	size_t n;

	json_decref(o);
	if (s == NULL) {
		log_warnx("audit_stream: event %lld not written (out of "
		          "memory)",
		          (long long)ev->id);
		return;
	}
	n = strlen(s);
	s[n] = '\n'; /* the NUL goes; the length says where it ends */
	if (write_all(as->fd, s, n + 1) == -1)
		log_warn("audit_stream: write");
	json_get_alloc_funcs(NULL, &jfree);
	jfree(s);
}

/* Write the events after the cursor; the number written, or -1. */
static int
follow_once(struct eb_auditstream *as)
{
	struct eb_store_audit_filter f;
	struct eb_store_audit_list l;
	size_t i;

	memset(&f, 0, sizeof(f));
	f.after_id = as->after;
	f.oldest_first = 1;
	f.limit = BATCH;
	if (eb_store_audit_query(as->store, &f, &l) != EB_STORE_OK)
		return -1;
	for (i = 0; i < l.n; i++)
		write_event(as, &l.v[i]);
	if (l.n > 0)
		as->after = l.v[l.n - 1].id;
	i = l.n;
	eb_store_audit_list_finish(&l);
	return (int)i;
}

static void *
stream_main(void *arg)
{
	struct eb_auditstream *as = arg;
	struct timespec ts;
	int stop = 0, n;

	while (!stop) {
		follow_rotation(as);
		while ((n = follow_once(as)) == BATCH)
			;
		pthread_mutex_lock(&as->lock);
		if (!as->stopping) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += FOLLOW_MS / 1000;
			pthread_cond_timedwait(&as->cond, &as->lock, &ts);
		}
		stop = as->stopping;
		pthread_mutex_unlock(&as->lock);
	}
	(void)follow_once(as); /* the last events before the stop */
	return NULL;
}

/* The newest event's id: the stream starts after it. */
static int
start_cursor(struct eb_auditstream *as)
{
	struct eb_store_audit_filter f;
	struct eb_store_audit_list l;

	memset(&f, 0, sizeof(f));
	f.limit = 1;
	if (eb_store_audit_query(as->store, &f, &l) != EB_STORE_OK)
		return -1;
	/* an empty log: from the first event on */
	as->after = l.n > 0 ? l.v[0].id : 0;
	eb_store_audit_list_finish(&l);
	return 0;
}

struct eb_auditstream *
eb_auditstream_start(struct eb_store *store, const char *target, char *err,
                     size_t errlen)
{
	struct eb_auditstream *as;

	if ((as = eb_calloc(1, sizeof(*as))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	as->store = store;
	as->fd = -1;
	if (strcmp(target, "stdout") != 0 &&
	    (as->path = eb_strdup(target)) == NULL) {
		snprintf(err, errlen, "out of memory");
		eb_free(as);
		return NULL;
	}
	if (open_target(as, err, errlen) == -1)
		goto fail;
	if (start_cursor(as) == -1) {
		snprintf(err, errlen,
		         "audit_stream: cannot read the audit log");
		goto fail;
	}
	pthread_mutex_init(&as->lock, NULL);
	pthread_cond_init(&as->cond, NULL);
	if (pthread_create(&as->thread, NULL, stream_main, as) != 0) {
		snprintf(err, errlen, "audit_stream: cannot start its thread");
		pthread_mutex_destroy(&as->lock);
		pthread_cond_destroy(&as->cond);
		goto fail;
	}
	return as;
fail:
	if (as->fd > STDERR_FILENO)
		close(as->fd);
	eb_free(as->path);
	eb_free(as);
	return NULL;
}

void
eb_auditstream_stop(struct eb_auditstream *as)
{
	if (as == NULL)
		return;
	pthread_mutex_lock(&as->lock);
	as->stopping = 1;
	pthread_cond_signal(&as->cond);
	pthread_mutex_unlock(&as->lock);
	pthread_join(as->thread, NULL);
	pthread_mutex_destroy(&as->lock);
	pthread_cond_destroy(&as->cond);
	if (as->fd > STDERR_FILENO)
		close(as->fd);
	eb_free(as->path);
	eb_free(as);
}
