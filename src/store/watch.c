/*
 * The per-thread inotify watch on a change file (watch.h).
 */
#include "store/watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "core/log.h"
#include "core/str.h"

#define WATCH_EVENTS                                                           \
	(IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF |             \
	 IN_MOVE_SELF | IN_DONT_FOLLOW)
#define RETRY_MS 1000 /* after a failed try to watch */

struct watch {
	uint64_t epoch; /* the handle and change file watched; 0: none */
	int fd;         /* the inotify instance, or -1 */
	uint64_t dev, ino;
	/* bumped by every arming and every batch of events, never reset: a
	 * stamp of this thread is never repeated, even for a file that
	 * reuses a dropped one's inode */
	uint64_t seq;
	long long retry_ms;  /* no try to arm before this */
	uint64_t fail_epoch; /* ... for this epoch */
};

/*
 * Per-thread state: a mutable global, against our rule, because a watch
 * shared by threads would lose the ordering it is there to keep (watch.h).
 * The key only closes a thread's descriptor when it exits.
 */
static _Thread_local struct watch t_w = {0, -1, 0, 0, 0, 0, 0};
static _Thread_local int t_registered;
static pthread_key_t w_key;
static pthread_once_t w_once = PTHREAD_ONCE_INIT;
static int w_key_ok;
static atomic_ullong g_watching;

static void
drop(struct watch *w)
{
	if (w->fd != -1) {
		close(w->fd);
		w->fd = -1;
		atomic_fetch_sub(&g_watching, 1);
	}
	w->epoch = 0;
}

static void
w_exit(void *p)
{
	drop(p);
}

static void
w_key_init(void)
{
	w_key_ok = pthread_key_create(&w_key, w_exit) == 0;
}

/* Register this thread's watch for closing at thread exit; -1: cannot. */
static int
w_register(void)
{
	if (t_registered)
		return 0;
	if (pthread_once(&w_once, w_key_init) != 0 || !w_key_ok ||
	    pthread_setspecific(w_key, &t_w) != 0)
		return -1;
	t_registered = 1;
	return 0;
}

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

int
eb_watch_stamp(const char *path, uint64_t epoch, uint64_t *dev, uint64_t *ino,
               uint64_t *seq)
{
	struct watch *w = &t_w;
	char buf[4096]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	struct stat sb;
	ssize_t n;
	int events = 0;

	if (w->fd == -1)
		return 0;
	if (w->epoch != epoch) {
		drop(w);
		return 0;
	}
	/* drain the queue: any event is a change, whatever it says */
	while ((n = read(w->fd, buf, sizeof(buf))) > 0)
		events = 1;
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
		log_warn("store: change file %s: inotify read (stat(2) "
		         "instead in this thread)",
		         path);
		drop(w);
		w->retry_ms = eb_mono_ms() + RETRY_MS;
		w->fail_epoch = epoch;
		return 0;
	}
	if (events) {
		w->seq++;
		/* the path may name another file now, or none */
		if (lstat(path, &sb) == -1 || !S_ISREG(sb.st_mode) ||
		    (uint64_t)sb.st_dev != w->dev ||
		    (uint64_t)sb.st_ino != w->ino) {
			drop(w);
			return 0;
		}
	}
	*dev = w->dev;
	*ino = w->ino;
	*seq = w->seq;
	return 1;
}

void
eb_watch_arm(const char *path, uint64_t epoch, const struct stat *seen)
{
	struct watch *w = &t_w;
	struct stat sb;
	long long now;
	int fd, e;

	if (w->fd != -1 || !S_ISREG(seen->st_mode))
		return;
	now = eb_mono_ms();
	if (w->fail_epoch == epoch && now < w->retry_ms)
		return;
	if (w_register() == -1 ||
	    (fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1)
		goto fail;
	if (inotify_add_watch(fd, path, WATCH_EVENTS) == -1) {
		e = errno;
		close(fd);
		errno = e;
		if (e == ENOSPC || e == ENOMEM) /* out of watches */
			goto fail;
		return; /* gone meanwhile: the next stamp sees it */
	}
	if (lstat(path, &sb) == -1 || !same_file(&sb, seen)) {
		/* changed meanwhile: the caller's stamp is already stale,
		 * and the next one sees that; try again then */
		close(fd);
		return;
	}
	w->fd = fd;
	w->epoch = epoch;
	w->dev = (uint64_t)sb.st_dev;
	w->ino = (uint64_t)sb.st_ino;
	w->seq++;
	atomic_fetch_add(&g_watching, 1);
	return;
fail:
	/* stat(2) then, as before; logged once per second at most */
	log_debug("store: change file %s: cannot watch it: %s", path,
	          strerror(errno));
	w->retry_ms = now + RETRY_MS;
	w->fail_epoch = epoch;
}

uint64_t
eb_watch_count(void)
{
	return atomic_load(&g_watching);
}
