/*
 * Enrollment profiles (see profile.h): the file cache, the fetch from the
 * MDM, validation of the com.apple.mdm payload, the patch, serialization and
 * signing. Plists are handled through plist.c, CMS through cms.c, HTTP
 * through the client in src/http.
 */
#include "apple/profile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apple/cms.h"
#include "apple/plist.h"
#include "core/str.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "http/client.h"

#define CACHE_MAX_ENTRIES     256
#define FETCH_DEFAULT_TIMEOUT 10
#define FETCH_DEFAULT_MAX     (1024 * 1024)
#define FETCH_MAX_HEADERS     32 /* the bearer and identity headers */
#define URL_MAX               8192
#define MDM_PAYLOAD_TYPE      "com.apple.mdm"
#define TOPIC_PREFIX          "com.apple.mgmt."

/* What a file was when we read it: a change in any field means reload. */
struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

enum centry_kind { CENTRY_PROFILE, CENTRY_SIGNER };

struct centry {
	enum centry_kind kind;
	char *path;  /* profile file, or signing certificate */
	char *path2; /* signing key */
	struct file_id id, id2;
	struct eb_plist *profile;     /* validated, never patched */
	struct eb_cms_signer *signer; /* one reference */
};

struct eb_profile_cache {
	pthread_mutex_t lock;
	struct centry *v; /* oldest first */
	size_t n;
};

static void
id_from_stat(struct file_id *id, const struct stat *st)
{
	memset(id, 0, sizeof(*id));
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtime = st->st_mtim;
}

static int
id_eq(const struct file_id *a, const struct file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* The current identity of path; -1 with err filled when it cannot be had. */
static int
stat_id(const char *path, struct file_id *id, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) == -1) {
		eb_errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	id_from_stat(id, &st);
	return 0;
}

/* Read a whole regular file of at most max bytes, noting its identity. */
static uint8_t *
read_file(const char *path, size_t max, size_t *lenp, struct file_id *id,
          char *err, size_t errlen)
{
	struct stat st;
	uint8_t *data = NULL;
	size_t len = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		eb_errf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		eb_errf(err, errlen, "%s: not a regular file", path);
		goto out_close;
	}
	if (st.st_size < 0 || (uintmax_t)st.st_size > max) {
		eb_errf(err, errlen, "%s: larger than %zu bytes", path, max);
		goto out_close;
	}
	if ((data = eb_malloc((size_t)st.st_size + 1)) == NULL) {
		eb_errf(err, errlen, "out of memory");
		goto out_close;
	}
	while (len < (size_t)st.st_size) {
		r = read(fd, data + len, (size_t)st.st_size - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			eb_errf(err, errlen, "%s: %s", path,
			        r == 0 ? "shorter than expected"
			               : strerror(errno));
			eb_free(data);
			data = NULL;
			goto out_close;
		}
		len += (size_t)r;
	}
	data[len] = '\0';
	*lenp = len;
	if (id != NULL)
		id_from_stat(id, &st);
out_close:
	close(fd);
	return data;
}

struct eb_plist *
eb_profile_parse(const void *data, size_t len, char *err, size_t errlen)
{
	struct eb_plist *p;
	enum eb_cms_status cs;
	uint8_t *content = NULL;
	size_t clen = 0;
	char why[256];

	cs = eb_cms_unwrap(data, len, 0, NULL, EB_PROFILE_MAX_BYTES, &content,
	                   &clen, why, sizeof(why));
	if (cs == EB_CMS_INVALID) {
		eb_errf(err, errlen, "signed profile: %s", why);
		return NULL;
	}
	if (cs == EB_CMS_OK) {
		data = content;
		len = clen;
	}
	p = eb_plist_parse(data, len, EB_PROFILE_MAX_BYTES,
	                   EB_PROFILE_MAX_DEPTH, why, sizeof(why));
	eb_free(content);
	if (p == NULL) {
		eb_errf(err, errlen, "profile: %s", why);
		return NULL;
	}
	if (eb_plist_type(p) != EB_PLIST_DICT) {
		eb_errf(err, errlen, "profile is not a dict (%s)",
		        eb_plist_type_name(eb_plist_type(p)));
		eb_plist_free(p);
		return NULL;
	}
	return p;
}

/* eb_profile_read_file() noting the file's identity. */
static struct eb_plist *
read_profile(const char *path, uint8_t **raw, size_t *rawlen,
             struct file_id *id, char *err, size_t errlen)
{
	struct eb_plist *p;
	uint8_t *data;
	size_t len;
	char why[256];

	if ((data = read_file(path, EB_PROFILE_MAX_BYTES, &len, id, err,
	                      errlen)) == NULL)
		return NULL;
	if ((p = eb_profile_parse(data, len, why, sizeof(why))) == NULL)
		eb_errf(err, errlen, "%s: %s", path, why);
	if (p != NULL && raw != NULL) {
		*raw = data;
		*rawlen = len;
	} else
		eb_free(data);
	return p;
}

struct eb_plist *
eb_profile_read_file(const char *path, uint8_t **raw, size_t *rawlen, char *err,
                     size_t errlen)
{
	return read_profile(path, raw, rawlen, NULL, err, errlen);
}

int
eb_profile_foreach_payload(const struct eb_plist *profile,
                           int (*fn)(const char *, const struct eb_plist *,
                                     void *),
                           void *arg, char *err, size_t errlen)
{
	const struct eb_plist *content, *item;
	const char *type;
	size_t i, n;
	int rc;

	if (eb_plist_type(profile) != EB_PLIST_DICT) {
		eb_errf(err, errlen, "profile is not a dict");
		return -1;
	}
	if ((type = eb_plist_dict_get_string(profile, "PayloadType", NULL)) !=
	        NULL &&
	    strcmp(type, "Configuration") != 0) {
		eb_errf(err, errlen,
		        "profile PayloadType is \"%.64s\", not Configuration",
		        type);
		return -1;
	}
	if ((content = eb_plist_dict_get_array(profile, "PayloadContent")) ==
	    NULL) {
		eb_errf(err, errlen, "profile has no PayloadContent array");
		return -1;
	}
	n = eb_plist_array_size(content);
	for (i = 0; i < n; i++) {
		item = eb_plist_array_get(content, i);
		if (eb_plist_type(item) != EB_PLIST_DICT) {
			eb_errf(err, errlen,
			        "PayloadContent[%zu] is not a dict", i);
			return -1;
		}
		if ((type = eb_plist_dict_get_string(item, "PayloadType",
		                                     NULL)) == NULL) {
			eb_errf(err, errlen,
			        "PayloadContent[%zu] has no PayloadType", i);
			return -1;
		}
	}
	for (i = 0; i < n; i++) {
		item = eb_plist_array_get(content, i);
		type = eb_plist_dict_get_string(item, "PayloadType", NULL);
		if ((rc = fn(type, item, arg)) != 0)
			return rc;
	}
	return 0;
}

/* 1 when s is an absolute http(s) URL with a host and no blanks. */
static int
is_http_url(const char *s)
{
	const char *h;
	size_t i;

	if (strncasecmp(s, "https://", 8) == 0)
		h = s + 8;
	else if (strncasecmp(s, "http://", 7) == 0)
		h = s + 7;
	else
		return 0;
	if (*h == '\0' || strchr("/?#", *h) != NULL)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

struct mdm_find {
	struct eb_plist *mdm;
	size_t count;
};

static int
find_mdm(const char *type, const struct eb_plist *payload, void *arg)
{
	struct mdm_find *f = arg;

	if (strcmp(type, MDM_PAYLOAD_TYPE) == 0) {
		f->count++;
		f->mdm = (struct eb_plist *)(uintptr_t)payload;
	}
	return 0;
}

struct eb_plist *
eb_profile_mdm_payload(const struct eb_plist *profile, char *err, size_t errlen)
{
	struct mdm_find f = {NULL, 0};
	const struct eb_plist *v;
	const char *s;

	if (eb_profile_foreach_payload(profile, find_mdm, &f, err, errlen) ==
	    -1)
		return NULL;
	if (f.count != 1) {
		eb_errf(err, errlen,
		        f.count == 0 ? "profile has no com.apple.mdm payload"
		                     : "profile has %zu com.apple.mdm payloads "
		                       "(exactly one is allowed)",
		        f.count);
		return NULL;
	}
	if ((s = eb_plist_dict_get_string(f.mdm, "ServerURL", NULL)) == NULL ||
	    !is_http_url(s)) {
		eb_errf(err, errlen,
		        "com.apple.mdm payload has no http(s) ServerURL");
		return NULL;
	}
	if ((v = eb_plist_dict_get(f.mdm, "CheckInURL")) != NULL &&
	    ((s = eb_plist_string(v, NULL)) == NULL || !is_http_url(s))) {
		eb_errf(err, errlen,
		        "com.apple.mdm payload CheckInURL is not an http(s) "
		        "URL");
		return NULL;
	}
	if ((s = eb_plist_dict_get_string(f.mdm, "Topic", NULL)) == NULL ||
	    strncmp(s, TOPIC_PREFIX, sizeof(TOPIC_PREFIX) - 1) != 0) {
		eb_errf(err, errlen,
		        "com.apple.mdm payload has no Topic starting with "
		        "%s",
		        TOPIC_PREFIX);
		return NULL;
	}
	if ((s = eb_plist_dict_get_string(f.mdm, "IdentityCertificateUUID",
	                                  NULL)) == NULL ||
	    *s == '\0') {
		eb_errf(err, errlen,
		        "com.apple.mdm payload has no "
		        "IdentityCertificateUUID");
		return NULL;
	}
	return f.mdm;
}

char *
eb_profile_proxy_url(const char *orig, const char *proxy_base,
                     const char *upstream)
{
	const char *rest = NULL, *auth;
	struct eb_buf b;
	size_t ul;

	if (orig == NULL || proxy_base == NULL || !is_http_url(orig))
		return NULL;
	/* scheme and host compare case-insensitively; an upstream path
	 * differing only in case is taken as the same (rare, harmless) */
	if (upstream != NULL && (ul = strlen(upstream)) > 0 &&
	    strncasecmp(orig, upstream, ul) == 0 &&
	    (orig[ul] == '\0' || strchr("/?#", orig[ul]) != NULL))
		rest = orig + ul;
	if (rest == NULL) {
		auth = strstr(orig, "://") + 3;
		rest = auth + strcspn(auth, "/?#");
	}
	if (*rest == '/')
		rest++;
	eb_buf_init(&b, URL_MAX);
	if (eb_buf_printf(&b, "%s/%s", proxy_base, rest) == -1) {
		eb_buf_finish(&b);
		return NULL;
	}
	return eb_buf_detach(&b, NULL);
}

static int
proxy_key(struct eb_plist *mdm, const char *key,
          const struct eb_profile_patch *p, char *err, size_t errlen)
{
	const char *orig = eb_plist_dict_get_string(mdm, key, NULL);
	char *url;
	int rc;

	if (orig == NULL)
		return 0; /* optional CheckInURL */
	if ((url = eb_profile_proxy_url(orig, p->proxy_base, p->upstream)) ==
	    NULL) {
		eb_errf(err, errlen, "cannot build the proxy URL for %s", key);
		return -1;
	}
	rc = eb_plist_dict_set_string(mdm, key, url);
	eb_free(url);
	if (rc == -1)
		eb_errf(err, errlen, "out of memory");
	return rc;
}

int
eb_profile_patch(struct eb_plist *profile, const struct eb_profile_patch *p,
                 char *err, size_t errlen)
{
	struct eb_plist *mdm;

	if (p->managed_apple_id == NULL || *p->managed_apple_id == '\0') {
		eb_errf(err, errlen, "no Managed Apple Account to assign");
		return -1;
	}
	if ((mdm = eb_profile_mdm_payload(profile, err, errlen)) == NULL)
		return -1;
	if (eb_plist_dict_set_string(mdm, "EnrollmentMode",
	                             eb_mode_name(p->mode)) == -1 ||
	    eb_plist_dict_set_string(mdm, "AssignedManagedAppleID",
	                             p->managed_apple_id) == -1) {
		eb_errf(err, errlen, "out of memory");
		return -1;
	}
	/* a user enrollment is cancelled by the device if AccessRights is
	 * present; device enrollments need it */
	if (p->mode == EB_MODE_BYOD)
		eb_plist_dict_remove(mdm, "AccessRights");
	eb_plist_dict_remove(mdm, "ManagedAppleID");
	if (p->proxy_base != NULL &&
	    (proxy_key(mdm, "ServerURL", p, err, errlen) == -1 ||
	     proxy_key(mdm, "CheckInURL", p, err, errlen) == -1))
		return -1;
	if (p->token_capability &&
	    eb_plist_dict_add_string(mdm, "ServerCapabilities",
	                             "com.apple.mdm.token") == -1) {
		eb_errf(err, errlen, "ServerCapabilities is not an array");
		return -1;
	}
	return 0;
}

struct eb_profile_cache *
eb_profile_cache_create(void)
{
	struct eb_profile_cache *c;

	if ((c = eb_calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		eb_free(c);
		return NULL;
	}
	return c;
}

static void
centry_finish(struct centry *e)
{
	eb_free(e->path);
	eb_free(e->path2);
	eb_plist_free(e->profile);
	eb_cms_signer_unref(e->signer);
	memset(e, 0, sizeof(*e));
}

void
eb_profile_cache_destroy(struct eb_profile_cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++)
		centry_finish(&c->v[i]);
	eb_free(c->v);
	pthread_mutex_destroy(&c->lock);
	eb_free(c);
}

/* The entry of this kind and paths, or NULL. Called locked. */
static struct centry *
cache_find(struct eb_profile_cache *c, enum centry_kind kind, const char *path,
           const char *path2)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (c->v[i].kind == kind && strcmp(c->v[i].path, path) == 0 &&
		    (path2 == NULL || strcmp(c->v[i].path2, path2) == 0))
			return &c->v[i];
	return NULL;
}

/* Store *e (taking its content), replacing old or evicting the oldest. */
static void
cache_put(struct eb_profile_cache *c, struct centry *old, struct centry *e)
{
	struct centry *v;

	if (old != NULL) {
		centry_finish(old);
		*old = *e;
		return;
	}
	if (c->n == CACHE_MAX_ENTRIES) {
		centry_finish(&c->v[0]);
		memmove(&c->v[0], &c->v[1], (c->n - 1) * sizeof(*c->v));
		c->n--;
	}
	if ((v = eb_realloc(c->v, (c->n + 1) * sizeof(*v))) == NULL) {
		centry_finish(e); /* not cached: the caller has its copy */
		return;
	}
	c->v = v;
	c->v[c->n++] = *e;
}

/*
 * A private, validated copy of the profile file at path (eb_plist_free it),
 * from the cache when the file has not changed.
 */
static struct eb_plist *
load_profile(struct eb_profile_cache *c, const char *path, char *err,
             size_t errlen)
{
	struct eb_plist *p, *copy = NULL;
	struct file_id id;
	struct centry e, *old;
	int hit = 0;

	if (c != NULL) {
		if (stat_id(path, &id, err, errlen) == -1)
			return NULL;
		pthread_mutex_lock(&c->lock);
		if ((old = cache_find(c, CENTRY_PROFILE, path, NULL)) != NULL &&
		    id_eq(&old->id, &id)) {
			hit = 1;
			if ((copy = eb_plist_copy(old->profile)) == NULL)
				eb_errf(err, errlen, "out of memory");
		}
		pthread_mutex_unlock(&c->lock);
		if (hit)
			return copy;
	}
	memset(&e, 0, sizeof(e));
	if ((p = read_profile(path, NULL, NULL, &e.id, err, errlen)) == NULL)
		return NULL;
	if (eb_profile_mdm_payload(p, err, errlen) == NULL) {
		eb_plist_free(p);
		return NULL;
	}
	if (c == NULL)
		return p;
	log_info("enrollment profile %s loaded", path);
	if ((copy = eb_plist_copy(p)) == NULL ||
	    (e.path = eb_strdup(path)) == NULL) {
		eb_plist_free(p);
		return copy; /* NULL, or uncached but usable */
	}
	e.kind = CENTRY_PROFILE;
	e.profile = p;
	pthread_mutex_lock(&c->lock);
	cache_put(c, cache_find(c, CENTRY_PROFILE, path, NULL), &e);
	pthread_mutex_unlock(&c->lock);
	return copy;
}

/* A reference on the signer of these files, from the cache when unchanged.
 */
static struct eb_cms_signer *
load_signer(struct eb_profile_cache *c, const char *cert, const char *key,
            char *err, size_t errlen)
{
	struct eb_cms_signer *s = NULL;
	struct file_id id, id2;
	struct centry e, *old;

	if (stat_id(cert, &id, err, errlen) == -1 ||
	    stat_id(key, &id2, err, errlen) == -1)
		return NULL;
	if (c != NULL) {
		pthread_mutex_lock(&c->lock);
		if ((old = cache_find(c, CENTRY_SIGNER, cert, key)) != NULL &&
		    id_eq(&old->id, &id) && id_eq(&old->id2, &id2))
			s = eb_cms_signer_ref(old->signer);
		pthread_mutex_unlock(&c->lock);
		if (s != NULL)
			return s;
	}
	if ((s = eb_cms_signer_load(cert, key, err, errlen)) == NULL)
		return NULL;
	if (c == NULL)
		return s;
	log_info("profile signing certificate %s loaded", cert);
	memset(&e, 0, sizeof(e));
	if ((e.path = eb_strdup(cert)) == NULL ||
	    (e.path2 = eb_strdup(key)) == NULL) {
		centry_finish(&e);
		return s;
	}
	e.kind = CENTRY_SIGNER;
	/* the identity seen before loading: a change during the load makes
	 * the next build load again rather than keep stale content */
	e.id = id;
	e.id2 = id2;
	e.signer = eb_cms_signer_ref(s);
	pthread_mutex_lock(&c->lock);
	cache_put(c, cache_find(c, CENTRY_SIGNER, cert, key), &e);
	pthread_mutex_unlock(&c->lock);
	return s;
}

/* GET the profile from the MDM; a validated tree or NULL. */
static struct eb_plist *
fetch_profile(const struct eb_tenant *t, const struct eb_profile_opts *o,
              char *err, size_t errlen)
{
	const char *headers[FETCH_MAX_HEADERS + 2] = {
	    "Accept: application/x-apple-aspen-config, application/x-plist, "
	    "*/*"};
	struct eb_http_options ho;
	struct eb_http_response *r;
	struct eb_plist *p = NULL;
	char why[256];
	size_t i;

	for (i = 0; o->fetch_headers != NULL && o->fetch_headers[i] != NULL;
	     i++) {
		if (i == FETCH_MAX_HEADERS) {
			eb_errf(err, errlen, "too many profile fetch headers");
			return NULL;
		}
		headers[i + 1] = o->fetch_headers[i];
	}
	headers[i + 1] = NULL;
	eb_http_options_init(&ho, "GET", t->mdm.profile_url);
	ho.headers = headers;
	ho.timeout =
	    o->fetch_timeout > 0 ? o->fetch_timeout : FETCH_DEFAULT_TIMEOUT;
	ho.connect_timeout = ho.timeout;
	ho.max_response_bytes =
	    o->fetch_max_bytes > 0 ? o->fetch_max_bytes : FETCH_DEFAULT_MAX;
	ho.follow_redirects = 1;
	ho.cafile = o->fetch_cafile;
	if ((r = eb_http_fetch(&ho)) == NULL) {
		eb_errf(err, errlen, "out of memory");
		return NULL;
	}
	if (r->error != EB_HTTP_OK)
		eb_errf(err, errlen, "profile fetch from %s failed (%s): %s",
		        t->mdm.profile_url, eb_http_error_name(r->error),
		        r->message);
	else if (r->status != 200)
		eb_errf(err, errlen, "profile fetch from %s: HTTP %ld",
		        t->mdm.profile_url, r->status);
	else if ((p = eb_profile_parse(r->body, r->body_len, why,
	                               sizeof(why))) == NULL)
		eb_errf(err, errlen, "profile fetched from %s: %s",
		        t->mdm.profile_url, why);
	else if (eb_profile_mdm_payload(p, why, sizeof(why)) == NULL) {
		eb_errf(err, errlen, "profile fetched from %s: %s",
		        t->mdm.profile_url, why);
		eb_plist_free(p);
		p = NULL;
	}
	eb_http_response_free(r);
	return p;
}

enum eb_profile_status
eb_profile_build(const struct eb_tenant *t, const struct eb_profile_opts *o,
                 const char *managed_apple_id, enum eb_enroll_mode mode,
                 uint8_t **out, size_t *outlen, int *is_signed, char *err,
                 size_t errlen)
{
	enum eb_profile_status rc = EB_PROFILE_ERR_INTERNAL;
	struct eb_profile_patch patch;
	struct eb_cms_signer *signer = NULL;
	struct eb_plist *p;
	struct eb_buf base;
	uint8_t *xml = NULL;
	size_t xmllen = 0;

	*out = NULL;
	*outlen = 0;
	if (is_signed != NULL)
		*is_signed = 0;
	eb_buf_init(&base, URL_MAX);
	if (t->mdm.profile_file != NULL) {
		if ((p = load_profile(o->cache, t->mdm.profile_file, err,
		                      errlen)) == NULL)
			return EB_PROFILE_ERR_CONFIG;
	} else if (t->mdm.profile_url != NULL) {
		if ((p = fetch_profile(t, o, err, errlen)) == NULL)
			return EB_PROFILE_ERR_UPSTREAM;
	} else {
		eb_errf(err, errlen,
		        "tenant %s has no enrollment profile (mdm.profile)",
		        t->id);
		return EB_PROFILE_ERR_CONFIG;
	}
	memset(&patch, 0, sizeof(patch));
	patch.mode = mode;
	patch.managed_apple_id = managed_apple_id;
	if (t->mdm.use_proxy) {
		if (o->public_url == NULL ||
		    eb_buf_printf(&base, "%s/t/%s/mdm", o->public_url, t->id) ==
		        -1) {
			eb_errf(err, errlen, "cannot build the proxy URL");
			goto out;
		}
		patch.proxy_base = eb_buf_str(&base);
		patch.upstream = t->mdm.upstream;
		/* only the proxy answers GetToken */
		patch.token_capability = t->apple_business != NULL;
	}
	if (eb_profile_patch(p, &patch, err, errlen) == -1)
		goto out;
	if (eb_plist_to_xml(p, &xml, &xmllen) == -1) {
		eb_errf(err, errlen, "out of memory");
		goto out;
	}
	if (t->mdm.signing_cert == NULL) {
		*out = xml;
		*outlen = xmllen;
		xml = NULL;
		rc = EB_PROFILE_OK;
		goto out;
	}
	if ((signer = load_signer(o->cache, t->mdm.signing_cert,
	                          t->mdm.signing_key, err, errlen)) == NULL) {
		rc = EB_PROFILE_ERR_CONFIG;
		goto out;
	}
	if (eb_cms_sign(signer, xml, xmllen, out, outlen, err, errlen) == -1)
		goto out;
	if (is_signed != NULL)
		*is_signed = 1;
	rc = EB_PROFILE_OK;
out:
	eb_cms_signer_unref(signer);
	eb_free(xml);
	eb_plist_free(p);
	eb_buf_finish(&base);
	return rc;
}

int
eb_profile_check_config(const struct eb_tenant *t, struct eb_profile_cache *c,
                        char *err, size_t errlen)
{
	struct eb_cms_signer *s;
	struct eb_plist *p;
	const struct eb_plist *mdm;
	char why[512];

	if (t->mdm.profile_file != NULL) {
		if ((p = load_profile(c, t->mdm.profile_file, why,
		                      sizeof(why))) == NULL) {
			eb_errf(err, errlen, "mdm.profile.file: %s", why);
			return -1;
		}
		mdm = eb_profile_mdm_payload(p, NULL, 0);
		if (t->mdm.use_proxy &&
		    eb_plist_dict_get(mdm, "ServerURLPinningCertificateUUIDs"))
			log_warnx("tenant %s: the profile pins the MDM's "
			          "certificate, but ServerURL is rewritten to "
			          "the proxy",
			          t->id);
		if (eb_plist_dict_get(mdm, "AccessRights") == NULL &&
		    (t->default_mode == EB_MODE_ADDE ||
		     memchr(t->by_family, EB_MODE_ADDE, sizeof(t->by_family))))
			log_warnx("tenant %s: the profile has no AccessRights, "
			          "which device enrollments (ADDE) need",
			          t->id);
		eb_plist_free(p);
	}
	if (t->mdm.signing_cert != NULL) {
		if ((s = load_signer(c, t->mdm.signing_cert, t->mdm.signing_key,
		                     why, sizeof(why))) == NULL) {
			eb_errf(err, errlen, "mdm.signing_cert: %s", why);
			return -1;
		}
		eb_cms_signer_unref(s);
	}
	return 0;
}
