/*
 * The configuration loader's contact with the outside: bounded file reads,
 * path joining, URL syntax (and the loopback exception for http://), and
 * secret references ("file:PATH", "env:NAME", or the literal). A reason
 * written here names a file or a variable, never a secret's value.
 */
#include "core/config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/mem.h"
#include "core/str.h"

#define SECRET_MAX (64 * 1024)

char *
eb_cfg_read_file(const char *path, size_t max, size_t *lenp, const char **why)
{
	struct stat st;
	char *buf;
	size_t len = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		*why = strerror(errno);
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		*why = "not a regular file";
		close(fd);
		return NULL;
	}
	if ((buf = eb_malloc(max + 1)) == NULL) {
		*why = "out of memory";
		close(fd);
		return NULL;
	}
	for (;;) {
		n = read(fd, buf + len, max + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len > max)
			break;
	}
	close(fd);
	if (n < 0 || len > max) {
		*why = n < 0 ? strerror(errno) : "file too large";
		eb_free_secret(buf, max + 1);
		return NULL;
	}
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

int
eb_cfg_is_loopback(const char *host)
{
	unsigned char a[16];

	if (eb_str_ieq(host, "localhost"))
		return 1;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, host, a) == 1) {
		static const unsigned char one[16] = {[15] = 1};
		return memcmp(a, one, 16) == 0;
	}
	return 0;
}

static int
host_ok(const char *h, size_t n)
{
	size_t i;

	if (n == 0 || n > 253 || h[0] == '.' || h[0] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		if (h[i] == '.' && i + 1 < n && h[i + 1] == '.')
			return 0;
		if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '.')
			return 0;
	}
	return 1;
}

char *
eb_cfg_check_url(const char *s, int flags, const char **why)
{
	const char *auth, *end, *host, *port = NULL, *p;
	char hostbuf[256], *d;
	size_t hostlen, len, i;
	int https;

	if (strncasecmp(s, "https://", 8) == 0) {
		https = 1;
		auth = s + 8;
	} else if (strncasecmp(s, "http://", 7) == 0) {
		https = 0;
		auth = s + 7;
	} else {
		*why = "must be an https:// URL";
		return NULL;
	}
	for (p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f ||
		    strchr("\"<>\\^`{|}", *p) != NULL) {
			*why = "must not contain spaces, control characters "
			       "or any of \"<>\\^`{|}";
			return NULL;
		}
	if (strchr(s, '#') != NULL) {
		*why = "must not have a fragment (#...)";
		return NULL;
	}
	if (!(flags & EB_URL_QUERY) && strchr(s, '?') != NULL) {
		*why = "must not have a query (?...)";
		return NULL;
	}
	end = auth + strcspn(auth, "/?");
	if (memchr(auth, '@', (size_t)(end - auth)) != NULL) {
		*why = "must not contain user information (user@)";
		return NULL;
	}
	if (*auth == '[') {
		const char *rb = memchr(auth, ']', (size_t)(end - auth));

		if (rb == NULL || (rb + 1 < end && rb[1] != ':')) {
			*why = "has a malformed IPv6 host";
			return NULL;
		}
		host = auth + 1;
		hostlen = (size_t)(rb - host);
		port = rb + 1 < end ? rb + 2 : NULL;
	} else {
		const char *colon = memchr(auth, ':', (size_t)(end - auth));

		host = auth;
		hostlen = (size_t)((colon ? colon : end) - auth);
		port = colon ? colon + 1 : NULL;
	}
	if (hostlen == 0 || hostlen >= sizeof(hostbuf)) {
		*why = "has no valid host";
		return NULL;
	}
	memcpy(hostbuf, host, hostlen);
	hostbuf[hostlen] = '\0';
	if (*auth == '[') {
		unsigned char a6[16];

		if (inet_pton(AF_INET6, hostbuf, a6) != 1) {
			*why = "has a malformed IPv6 host";
			return NULL;
		}
	} else if (!host_ok(hostbuf, hostlen)) {
		*why = "has no valid host";
		return NULL;
	}
	if (port != NULL) {
		long v = 0;

		for (p = port; p < end; p++) {
			if (!isdigit((unsigned char)*p) || p - port >= 5)
				break;
			v = v * 10 + (*p - '0');
		}
		if (p != end || p == port || v < 1 || v > 65535) {
			*why = "has an invalid port";
			return NULL;
		}
	}
	if (!https && !(flags & EB_URL_HTTP) && !eb_cfg_is_loopback(hostbuf)) {
		*why = "may use http:// only for a loopback host (127.0.0.0/8, "
		       "::1, localhost); use https://";
		return NULL;
	}
	if ((d = eb_strdup(s)) == NULL) {
		*why = "out of memory";
		return NULL;
	}
	/* scheme and authority are case-insensitive: normalise them */
	for (i = 0; i < (size_t)(end - s); i++)
		d[i] = (char)tolower((unsigned char)d[i]);
	len = strlen(d);
	if (flags & EB_URL_NO_SLASH)
		while (len > (size_t)(end - s) && d[len - 1] == '/')
			d[--len] = '\0';
	return d;
}

char *
eb_cfg_join(const char *dir, const char *p)
{
	size_t dl, pl;
	char *d;

	if (p[0] == '/' || dir == NULL || dir[0] == '\0')
		return eb_strdup(p);
	dl = strlen(dir);
	pl = strlen(p);
	if ((d = eb_malloc(dl + pl + 2)) == NULL)
		return NULL;
	memcpy(d, dir, dl);
	d[dl] = '/';
	memcpy(d + dl + 1, p, pl + 1);
	return d;
}

static int
env_name_ok(const char *s)
{
	size_t i;

	if (!isalpha((unsigned char)s[0]) && s[0] != '_')
		return 0;
	for (i = 0; s[i]; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return 0;
	return i <= 255;
}

char *
eb_config_secret(const char *ref, const char *base_dir, char *reason,
                 size_t reasonlen)
{
	const char *why = NULL;
	char *path, *buf;
	size_t len;

	if (reasonlen > 0)
		reason[0] = '\0';
	if (ref == NULL || ref[0] == '\0') {
		snprintf(reason, reasonlen, "must not be empty");
		return NULL;
	}
	if (strncmp(ref, "env:", 4) == 0) {
		const char *v;

		if (!env_name_ok(ref + 4)) {
			snprintf(
			    reason, reasonlen,
			    "\"env:\" must be followed by a variable name");
			return NULL;
		}
		if ((v = getenv(ref + 4)) == NULL || v[0] == '\0') {
			snprintf(reason, reasonlen,
			         "environment variable %s is %s", ref + 4,
			         v == NULL ? "not set" : "empty");
			return NULL;
		}
		if ((buf = eb_strdup(v)) == NULL)
			snprintf(reason, reasonlen, "out of memory");
		return buf;
	}
	if (strncmp(ref, "file:", 5) != 0) {
		if ((buf = eb_strdup(ref)) == NULL)
			snprintf(reason, reasonlen, "out of memory");
		return buf;
	}
	if (ref[5] == '\0') {
		snprintf(reason, reasonlen,
		         "\"file:\" must be followed by a path");
		return NULL;
	}
	if ((path = eb_cfg_join(base_dir, ref + 5)) == NULL) {
		snprintf(reason, reasonlen, "out of memory");
		return NULL;
	}
	if ((buf = eb_cfg_read_file(path, SECRET_MAX, &len, &why)) == NULL) {
		snprintf(reason, reasonlen, "cannot read secret file %s: %s",
		         path, why);
		eb_free(path);
		return NULL;
	}
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	if (len == 0 || memchr(buf, '\0', len) != NULL) {
		snprintf(reason, reasonlen, "secret file %s is %s", path,
		         len == 0 ? "empty" : "binary (contains a NUL byte)");
		eb_free_secret(buf, len + 1);
		eb_free(path);
		return NULL;
	}
	eb_free(path);
	return buf;
}
