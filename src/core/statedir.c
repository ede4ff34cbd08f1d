/*
 * State directory and the secret keys kept in it. See statedir.h.
 */
#include "core/statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/log.h"
#include "core/rand.h"

int
eb_statedir_path(const char *dir, const char *name, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int
eb_statedir_prepare(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "state_dir %s: cannot create: %s", dir,
		         strerror(errno));
		return -1;
	}
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "state_dir %s: not a directory", dir);
		return -1;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen,
		         "state_dir %s: permissions %03o let other users in; "
		         "run: chmod 700 %s",
		         dir, (unsigned)(st.st_mode & 0777), dir);
		return -1;
	}
	return 0;
}

static int
read_key(const char *path, uint8_t *key, size_t len, char *err, size_t errlen)
{
	struct stat st;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
		         strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen,
		         "%s: permissions %03o are looser than 0600; the key "
		         "may have been read by others: replace it, or run: "
		         "chmod 600 %s",
		         path, (unsigned)(st.st_mode & 0777), path);
		goto fail;
	}
	if ((size_t)st.st_size != len || (n = read(fd, key, len)) < 0 ||
	    (size_t)n != len) {
		snprintf(err, errlen, "%s: not a %zu-byte key", path, len);
		goto fail;
	}
	close(fd);
	return 0;
fail:
	OPENSSL_cleanse(key, len);
	close(fd);
	return -1;
}

static int
create_key(const char *dir, const char *path, uint8_t *key, size_t len,
           char *err, size_t errlen)
{
	char tmp[4096];
	ssize_t n;
	int fd;

	uint8_t tag[8];

	/*
	 * The temporary name is this creator's own (replicas starting at once
	 * on one state_dir each write theirs): with a shared one, a second
	 * creator unlinked or replaced the first one's file before its link,
	 * so one failed ("cannot create") or kept a key that was not the one
	 * on disk.
	 */
	if (eb_rand_bytes(tag, sizeof(tag)) == -1 ||
	    eb_rand_bytes(key, len) == -1) {
		snprintf(err, errlen, "random number generator failed");
		return -1;
	}
	if (snprintf(tmp, sizeof(tmp),
	             "%s/.newkey.%ld.%02x%02x%02x%02x%02x%02x%02x%02x.tmp", dir,
	             (long)getpid(), tag[0], tag[1], tag[2], tag[3], tag[4],
	             tag[5], tag[6], tag[7]) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", dir);
		goto fail;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	          0600);
	if (fd == -1) {
		snprintf(err, errlen, "%s: cannot create: %s", tmp,
		         strerror(errno));
		goto fail;
	}
	n = write(fd, key, len);
	if (n < 0 || (size_t)n != len || fsync(fd) == -1) {
		snprintf(err, errlen, "%s: cannot write: %s", tmp,
		         strerror(errno));
		close(fd);
		unlink(tmp);
		goto fail;
	}
	close(fd);
	/* link(2) fails if another process created the key meanwhile */
	if (link(tmp, path) == -1) {
		unlink(tmp);
		if (errno == EEXIST)
			return read_key(path, key, len, err, errlen);
		snprintf(err, errlen, "%s: cannot create: %s", path,
		         strerror(errno));
		goto fail;
	}
	unlink(tmp);
	log_info("generated a new key %s", path);
	return 0;
fail:
	OPENSSL_cleanse(key, len);
	return -1;
}

int
eb_statedir_key(const char *dir, const char *name, uint8_t *key, size_t len,
                char *err, size_t errlen)
{
	char path[4096];

	if (eb_statedir_path(dir, name, path, sizeof(path)) == -1) {
		snprintf(err, errlen, "%s: path too long", dir);
		return -1;
	}
	if (access(path, F_OK) == 0)
		return read_key(path, key, len, err, errlen);
	if (errno != ENOENT) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return create_key(dir, path, key, len, err, errlen);
}
