/*
 * The calling thread's inotify watch on a change file (private to
 * src/store/; store.c's eb_store_stamp uses it). A stamp from lstat(2)
 * costs a path walk on every bearer check; a watched file costs one
 * non-blocking read(2) of an inotify descriptor that is empty until the
 * file changes.
 *
 * Strict like the lstat it replaces: the kernel queues an event to every
 * watch of the file before the writer's write, truncate, utimens or close
 * returns, so a check that starts after a writer's announcement has
 * returned sees it. Each thread has its own inotify instance: with a
 * shared one, the thread that read an event could still be about to count
 * it while another thread found the queue empty.
 *
 * Any event at all counts as a change. After one, the path is lstat'ed
 * again: when it no longer names the watched file (deleted, renamed, or
 * replaced), the watch is dropped and the caller is back on lstat, which
 * arms a new watch when a regular file is there again. A thread that
 * cannot get an inotify instance (fs.inotify.max_user_instances) stays on
 * lstat and tries again a second later.
 */
#ifndef EB_STORE_WATCH_H
#define EB_STORE_WATCH_H

#include <stdint.h>
#include <sys/stat.h>

/*
 * The watch's view of path for handle epoch (a number no other handle or
 * change file ever had: the watch of another is dropped): 1 with the
 * watched file's device and inode and a number that changes with every
 * batch of events and every new watch, never repeating in a thread; 0
 * when this thread has no watch on it (lstat it, then eb_watch_arm).
 */
int eb_watch_stamp(const char *path, uint64_t epoch, uint64_t *dev,
                   uint64_t *ino, uint64_t *seq);
/*
 * After an lstat of path that found the regular file described by seen:
 * try to watch it, unless a try failed less than a second ago. The watch
 * is armed only when path still names the same unchanged file once the
 * watch is in place, so that no change can fall between seen and the
 * first event.
 */
void eb_watch_arm(const char *path, uint64_t epoch, const struct stat *seen);
/* How many threads watch a change file now (tests, metrics). */
uint64_t eb_watch_count(void);

#endif
