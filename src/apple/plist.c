/*
 * The libplist wrapper (see plist.h): bounded parsing of XML and binary
 * plists, typed lookups, the few edits profiles need, XML serialization.
 * This is the only file that includes libplist; a struct eb_plist pointer is
 * a libplist plist_t in disguise.
 *
 * libplist allocates with malloc(3) itself; what it returns to us (keys from
 * dict iteration, serialized XML) is copied into eb_malloc'd memory and
 * released with libplist's own free functions.
 */
#include "apple/plist.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <plist/plist.h>

#include "core/str.h"
#include "core/mem.h"

#define BIN_MAGIC       "bplist00"
#define BIN_TRAILER_LEN 32

static plist_t
node(const struct eb_plist *p)
{
	return (plist_t)(uintptr_t)p;
}

static struct eb_plist *
wrap(plist_t p)
{
	return (struct eb_plist *)p;
}

/*
 * Read the object count from a binary plist's trailer (its last 32 bytes:
 * 6 unused, offset size, reference size, then three big-endian 64-bit
 * numbers: object count, root object, offset table start). This is a
 * resource check before libplist parses, not a parser: libplist's binary
 * reader recurses per nesting level, and nesting is bounded by the count.
 */
static int
bin_objects_ok(const uint8_t *p, size_t len, char *err, size_t errlen)
{
	uint64_t n = 0;
	size_t i;

	if (len < sizeof(BIN_MAGIC) - 1 + BIN_TRAILER_LEN) {
		eb_errf(err, errlen, "binary plist truncated");
		return -1;
	}
	for (i = 0; i < 8; i++)
		n = (n << 8) | p[len - BIN_TRAILER_LEN + 8 + i];
	if (n > EB_PLIST_MAX_BIN_OBJECTS) {
		eb_errf(err, errlen, "binary plist has too many objects");
		return -1;
	}
	return 0;
}

/* 1 when the tree under n nests no deeper than max (n itself at depth). */
static int
depth_ok(plist_t n, unsigned depth, unsigned max)
{
	plist_dict_iter it = NULL;
	plist_t v;
	uint32_t i, size;
	int ok = 1;

	switch (plist_get_node_type(n)) {
	case PLIST_ARRAY:
		if (depth > max)
			return 0;
		size = plist_array_get_size(n);
		for (i = 0; i < size && ok; i++)
			ok = depth_ok(plist_array_get_item(n, i), depth + 1,
			              max);
		return ok;
	case PLIST_DICT:
		if (depth > max)
			return 0;
		plist_dict_new_iter(n, &it);
		if (it == NULL)
			return 0;
		for (;;) {
			v = NULL;
			plist_dict_next_item(n, it, NULL, &v);
			if (v == NULL)
				break;
			if (!(ok = depth_ok(v, depth + 1, max)))
				break;
		}
		free(it);
		return ok;
	default:
		return 1;
	}
}

/*
 * 1 when no string or key under root holds a NUL byte. libplist's binary
 * reader keeps such strings with their full length, and its key getter
 * asserts (aborting the process) when length and strlen() differ; its XML
 * writer copies them out whole, so one NUL in the XML reveals them.
 */
static int
no_nul_strings(plist_t root)
{
	char *xml = NULL;
	uint32_t len = 0;
	int ok;

	plist_to_xml(root, &xml, &len);
	if (xml == NULL)
		return 0;
	ok = memchr(xml, '\0', len) == NULL;
	plist_to_xml_free(xml);
	return ok;
}

struct eb_plist *
eb_plist_parse(const void *data, size_t len, size_t max_bytes,
               unsigned max_depth, char *err, size_t errlen)
{
	const uint8_t *p = data;
	plist_t root = NULL;
	char *copy;
	int binary = 0;

	if (max_bytes == 0)
		max_bytes = EB_PLIST_DEFAULT_MAX_BYTES;
	if (max_bytes > UINT32_MAX - 1)
		max_bytes = UINT32_MAX - 1;
	if (max_depth == 0)
		max_depth = EB_PLIST_DEFAULT_MAX_DEPTH;
	if (data == NULL || len == 0) {
		eb_errf(err, errlen, "empty plist");
		return NULL;
	}
	if (len > max_bytes) {
		eb_errf(err, errlen, "plist larger than %zu bytes", max_bytes);
		return NULL;
	}
	if (len >= sizeof(BIN_MAGIC) - 1 &&
	    memcmp(p, BIN_MAGIC, sizeof(BIN_MAGIC) - 1) == 0) {
		if (bin_objects_ok(p, len, err, errlen) == -1)
			return NULL;
		plist_from_bin((const char *)p, (uint32_t)len, &root);
		binary = 1;
	} else {
		/* XML forbids NUL; libplist's reader mangles around one */
		if (memchr(p, '\0', len) != NULL) {
			eb_errf(err, errlen, "NUL byte in XML plist");
			return NULL;
		}
		/* libplist's XML reader is given a NUL-terminated copy so
		 * that no string function of its can run past the input */
		if ((copy = eb_malloc(len + 1)) == NULL) {
			eb_errf(err, errlen, "out of memory");
			return NULL;
		}
		memcpy(copy, p, len);
		copy[len] = '\0';
		plist_from_xml(copy, (uint32_t)len, &root);
		eb_free(copy);
	}
	if (root == NULL) {
		eb_errf(err, errlen, "not a property list");
		return NULL;
	}
	if (!depth_ok(root, 1, max_depth)) {
		plist_free(root);
		eb_errf(err, errlen, "plist nested deeper than %u levels",
		        max_depth);
		return NULL;
	}
	if (binary && !no_nul_strings(root)) {
		plist_free(root);
		eb_errf(err, errlen, "plist string holds a NUL byte");
		return NULL;
	}
	return wrap(root);
}

struct eb_plist *
eb_plist_new_dict(void)
{
	return wrap(plist_new_dict());
}

struct eb_plist *
eb_plist_copy(const struct eb_plist *n)
{
	return n == NULL ? NULL : wrap(plist_copy(node(n)));
}

void
eb_plist_free(struct eb_plist *root)
{
	if (root != NULL)
		plist_free(node(root));
}

enum eb_plist_type
eb_plist_type(const struct eb_plist *n)
{
	if (n == NULL)
		return EB_PLIST_NONE;
	switch (plist_get_node_type(node(n))) {
	case PLIST_DICT:
		return EB_PLIST_DICT;
	case PLIST_ARRAY:
		return EB_PLIST_ARRAY;
	case PLIST_STRING:
		return EB_PLIST_STRING;
	case PLIST_BOOLEAN:
		return EB_PLIST_BOOL;
	case PLIST_UINT:
		return EB_PLIST_INT;
	case PLIST_REAL:
		return EB_PLIST_REAL;
	case PLIST_DATA:
		return EB_PLIST_DATA;
	case PLIST_DATE:
		return EB_PLIST_DATE;
	default:
		return EB_PLIST_OTHER;
	}
}

const char *
eb_plist_type_name(enum eb_plist_type type)
{
	static const char *const names[] = {
	    [EB_PLIST_NONE] = "nothing", [EB_PLIST_DICT] = "dict",
	    [EB_PLIST_ARRAY] = "array",  [EB_PLIST_STRING] = "string",
	    [EB_PLIST_BOOL] = "boolean", [EB_PLIST_INT] = "integer",
	    [EB_PLIST_REAL] = "real",    [EB_PLIST_DATA] = "data",
	    [EB_PLIST_DATE] = "date",    [EB_PLIST_OTHER] = "other"};

	return (unsigned)type < sizeof(names) / sizeof(names[0]) ? names[type]
	                                                         : "other";
}

const char *
eb_plist_string(const struct eb_plist *n, size_t *len)
{
	const char *s;
	uint64_t l = 0;

	if (eb_plist_type(n) != EB_PLIST_STRING)
		return NULL;
	if ((s = plist_get_string_ptr(node(n), &l)) == NULL)
		return NULL;
	if (len != NULL)
		*len = (size_t)l;
	return s;
}

int
eb_plist_bool(const struct eb_plist *n, int *val)
{
	uint8_t b = 0;

	if (eb_plist_type(n) != EB_PLIST_BOOL)
		return -1;
	plist_get_bool_val(node(n), &b);
	*val = b != 0;
	return 0;
}

int
eb_plist_int(const struct eb_plist *n, int64_t *val)
{
	uint64_t u = 0;

	if (eb_plist_type(n) != EB_PLIST_INT)
		return -1;
	/* libplist 2.2 keeps negative integers two's-complement in a uint */
	plist_get_uint_val(node(n), &u);
	*val = (int64_t)u;
	return 0;
}

const uint8_t *
eb_plist_data(const struct eb_plist *n, size_t *len)
{
	const char *p;
	uint64_t l = 0;

	if (eb_plist_type(n) != EB_PLIST_DATA)
		return NULL;
	p = plist_get_data_ptr(node(n), &l);
	if (len != NULL)
		*len = (size_t)l;
	/* empty data has no buffer: hand out a valid pointer anyway */
	return p != NULL ? (const uint8_t *)p : (const uint8_t *)"";
}

struct eb_plist *
eb_plist_dict_get(const struct eb_plist *dict, const char *key)
{
	if (eb_plist_type(dict) != EB_PLIST_DICT || key == NULL)
		return NULL;
	return wrap(plist_dict_get_item(node(dict), key));
}

const char *
eb_plist_dict_get_string(const struct eb_plist *dict, const char *key,
                         size_t *len)
{
	return eb_plist_string(eb_plist_dict_get(dict, key), len);
}

int
eb_plist_dict_get_bool(const struct eb_plist *dict, const char *key, int *val)
{
	return eb_plist_bool(eb_plist_dict_get(dict, key), val);
}

int
eb_plist_dict_get_int(const struct eb_plist *dict, const char *key,
                      int64_t *val)
{
	return eb_plist_int(eb_plist_dict_get(dict, key), val);
}

const uint8_t *
eb_plist_dict_get_data(const struct eb_plist *dict, const char *key,
                       size_t *len)
{
	return eb_plist_data(eb_plist_dict_get(dict, key), len);
}

struct eb_plist *
eb_plist_dict_get_dict(const struct eb_plist *dict, const char *key)
{
	struct eb_plist *v = eb_plist_dict_get(dict, key);

	return eb_plist_type(v) == EB_PLIST_DICT ? v : NULL;
}

struct eb_plist *
eb_plist_dict_get_array(const struct eb_plist *dict, const char *key)
{
	struct eb_plist *v = eb_plist_dict_get(dict, key);

	return eb_plist_type(v) == EB_PLIST_ARRAY ? v : NULL;
}

/* Put a fresh node under key (taking it); frees it when dict is wrong. */
static int
dict_set(struct eb_plist *dict, const char *key, plist_t item)
{
	if (item == NULL)
		return -1;
	if (eb_plist_type(dict) != EB_PLIST_DICT || key == NULL) {
		plist_free(item);
		return -1;
	}
	plist_dict_set_item(node(dict), key, item);
	/* libplist reports no failure: check that the value landed */
	return plist_dict_get_item(node(dict), key) == item ? 0 : -1;
}

int
eb_plist_dict_set_string(struct eb_plist *dict, const char *key,
                         const char *val)
{
	plist_t s;

	if (val == NULL)
		return -1;
	if ((s = plist_new_string(val)) != NULL &&
	    plist_get_string_ptr(s, NULL) == NULL) {
		plist_free(s); /* the string copy failed */
		return -1;
	}
	return dict_set(dict, key, s);
}

int
eb_plist_dict_set_data(struct eb_plist *dict, const char *key,
                       const uint8_t *val, size_t len)
{
	uint64_t n = 0;
	plist_t d;

	if (val == NULL || len == 0)
		return -1;
	if ((d = plist_new_data((const char *)val, len)) != NULL &&
	    (plist_get_data_ptr(d, &n) == NULL || n != len)) {
		plist_free(d); /* the copy failed */
		return -1;
	}
	return dict_set(dict, key, d);
}

int
eb_plist_dict_add_string(struct eb_plist *dict, const char *key,
                         const char *val)
{
	struct eb_plist *a;
	plist_t arr, item;
	size_t i, n;
	const char *s;

	if (val == NULL || eb_plist_type(dict) != EB_PLIST_DICT)
		return -1;
	if ((a = eb_plist_dict_get(dict, key)) == NULL) {
		if (dict_set(dict, key, plist_new_array()) == -1)
			return -1;
		a = eb_plist_dict_get(dict, key);
	}
	if (eb_plist_type(a) != EB_PLIST_ARRAY)
		return -1;
	n = eb_plist_array_size(a);
	for (i = 0; i < n; i++)
		if ((s = eb_plist_string(eb_plist_array_get(a, i), NULL)) !=
		        NULL &&
		    strcmp(s, val) == 0)
			return 0;
	arr = node(a);
	if ((item = plist_new_string(val)) == NULL)
		return -1;
	plist_array_append_item(arr, item);
	return plist_array_get_size(arr) == n + 1 ? 0 : -1;
}

int
eb_plist_dict_set_bool(struct eb_plist *dict, const char *key, int val)
{
	return dict_set(dict, key, plist_new_bool(val != 0));
}

int
eb_plist_dict_set_int(struct eb_plist *dict, const char *key, int64_t val)
{
	return dict_set(dict, key, plist_new_uint((uint64_t)val));
}

int
eb_plist_dict_remove(struct eb_plist *dict, const char *key)
{
	if (eb_plist_dict_get(dict, key) == NULL)
		return 0;
	plist_dict_remove_item(node(dict), key);
	return 1;
}

size_t
eb_plist_dict_size(const struct eb_plist *dict)
{
	if (eb_plist_type(dict) != EB_PLIST_DICT)
		return 0;
	return plist_dict_get_size(node(dict));
}

int
eb_plist_dict_foreach(const struct eb_plist *dict,
                      int (*fn)(const char *, const struct eb_plist *, void *),
                      void *arg)
{
	plist_dict_iter it = NULL;
	plist_t v;
	char *key;
	int rc = 0;

	if (eb_plist_type(dict) != EB_PLIST_DICT)
		return -1;
	plist_dict_new_iter(node(dict), &it);
	if (it == NULL)
		return -1;
	for (;;) {
		key = NULL;
		v = NULL;
		plist_dict_next_item(node(dict), it, &key, &v);
		if (v == NULL) {
			free(key);
			break;
		}
		if (key == NULL) {
			rc = -1; /* the key copy failed */
			break;
		}
		rc = fn(key, wrap(v), arg);
		free(key); /* libplist's strdup */
		if (rc != 0)
			break;
	}
	free(it);
	return rc;
}

size_t
eb_plist_array_size(const struct eb_plist *array)
{
	if (eb_plist_type(array) != EB_PLIST_ARRAY)
		return 0;
	return plist_array_get_size(node(array));
}

struct eb_plist *
eb_plist_array_get(const struct eb_plist *array, size_t i)
{
	if (i >= eb_plist_array_size(array))
		return NULL;
	return wrap(plist_array_get_item(node(array), (uint32_t)i));
}

int
eb_plist_to_xml(const struct eb_plist *n, uint8_t **out, size_t *len)
{
	char *xml = NULL;
	uint32_t l = 0;
	uint8_t *copy;

	*out = NULL;
	*len = 0;
	if (n == NULL)
		return -1;
	plist_to_xml(node(n), &xml, &l);
	if (xml == NULL)
		return -1;
	if ((copy = eb_malloc((size_t)l + 1)) == NULL) {
		plist_to_xml_free(xml);
		return -1;
	}
	memcpy(copy, xml, l);
	copy[l] = '\0';
	plist_to_xml_free(xml);
	*out = copy;
	*len = l;
	return 0;
}

/* ---- the quick look (eb_plist_quick_dict) ---- */

/*
 * A recursive descent over the one narrow form of XML plist that devices
 * and plist libraries write, and nothing else: whatever it does not know,
 * it leaves to libplist (returns "unsure"). It never decides that a body is
 * malformed. Every construct it accepts is one libplist reads the same way,
 * so that 1 from it means eb_plist_parse() would have accepted the body
 * with the same limits, and found the same strings.
 */

#define QUICK_MAX_KEYS   64 /* per dict: more, and the quick look gives up */
#define QUICK_MAX_WANTED 8  /* keys asked for: more, likewise */
#define QUICK_MAX_DEPTH  64 /* a deeper limit, likewise (it recurses) */

/* Character classes, one bit each. */
enum {
	C_WS = 1,    /* blank: space, tab, CR, LF */
	C_TEXT = 2,  /* printable ASCII but '<', '>', '&' */
	C_PLAIN = 4, /* C_TEXT but space */
	C_DECL = 8,  /* C_TEXT but '?', '[', ']', '\'' (declaration bodies) */
	C_B64 = 16,  /* base64 alphabet, '=' not included */
	C_PAD = 32   /* '=' */
};

/* The class bits of each byte: cclass_init() fills it, once. */
static unsigned char cclass[256];
static pthread_once_t cclass_once = PTHREAD_ONCE_INIT;

static void
cclass_init(void)
{
	unsigned c, k;

	for (c = 0; c < 256; c++) {
		k = 0;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			k |= C_WS;
		if (c >= 0x20 && c <= 0x7e && c != '<' && c != '>' &&
		    c != '&') {
			k |= C_TEXT;
			if (c != ' ')
				k |= C_PLAIN;
			if (c != '?' && c != '[' && c != ']' && c != '\'')
				k |= C_DECL;
		}
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/')
			k |= C_B64;
		if (c == '=')
			k |= C_PAD;
		cclass[c] = (unsigned char)k;
	}
}

static int
is(char c, unsigned cls)
{
	return (cclass[(unsigned char)c] & cls) != 0;
}

struct span {
	const char *s;
	size_t len;
};

struct quick {
	const char *p, *end;
	unsigned max_depth;
	const char *const *keys; /* the root dict's keys wanted */
	size_t keylen[QUICK_MAX_WANTED];
	struct eb_plist_str *vals;
	size_t nkeys;
};

static void
q_skip_ws(struct quick *q)
{
	while (q->p < q->end && is(*q->p, C_WS))
		q->p++;
}

/* Consume lit when the input continues with it. */
static int
q_lit(struct quick *q, const char *lit, size_t n)
{
	if ((size_t)(q->end - q->p) < n || memcmp(q->p, lit, n) != 0)
		return 0;
	q->p += n;
	return 1;
}

#define Q_LIT(q, lit) q_lit((q), (lit), sizeof(lit) - 1)

/*
 * Text up to the next '<', all of class cls (printable ASCII without
 * markup, and blanks when cls has them), into *t. 0 when anything else is
 * met first, or the end.
 */
static int
q_text(struct quick *q, unsigned cls, struct span *t)
{
	const char *s = q->p;

	while (q->p < q->end && is(*q->p, cls))
		q->p++;
	t->s = s;
	t->len = (size_t)(q->p - s);
	return q->p < q->end && *q->p == '<';
}

/* <data> content: canonical base64 (padded, '=' only at the end), with
 * blanks anywhere between the characters. */
static int
q_base64(const struct span *t)
{
	size_t i, n = 0, pad = 0;

	for (i = 0; i < t->len; i++) {
		char c = t->s[i];

		if (is(c, C_WS))
			continue;
		if (c == '=') {
			if (++pad > 2)
				return 0;
		} else if (pad > 0 || !is(c, C_B64))
			return 0;
		n++;
	}
	return n % 4 == 0;
}

/* <integer> content: an optional '-' and 1 to 18 digits (no overflow). */
static int
q_integer(const struct span *t)
{
	size_t i = 0;

	if (t->len > 0 && t->s[0] == '-')
		i++;
	if (t->len == i || t->len - i > 18)
		return 0;
	for (; i < t->len; i++)
		if (t->s[i] < '0' || t->s[i] > '9')
			return 0;
	return 1;
}

/* A wanted string: at least one byte, all C_PLAIN. */
static int
q_plain(const struct span *t)
{
	size_t i;

	if (t->len == 0)
		return 0;
	for (i = 0; i < t->len; i++)
		if (!is(t->s[i], C_PLAIN))
			return 0;
	return 1;
}

static int q_value(struct quick *q, unsigned depth, struct span *str);

/* The rest of a <dict> at depth (its opening tag consumed); root: the top
 * one, whose wanted strings are taken. */
static int
q_dict(struct quick *q, unsigned depth, int root)
{
	struct span keys[QUICK_MAX_KEYS], key, str;
	size_t n = 0, i;

	if (depth > q->max_depth)
		return 0;
	for (;;) {
		q_skip_ws(q);
		if (Q_LIT(q, "</dict>"))
			return 1;
		if (n == QUICK_MAX_KEYS || !Q_LIT(q, "<key>") ||
		    !q_text(q, C_TEXT, &key) || key.len == 0 ||
		    !Q_LIT(q, "</key>"))
			return 0;
		for (i = 0; i < n; i++) /* duplicates: libplist's to judge */
			if (keys[i].len == key.len &&
			    memcmp(keys[i].s, key.s, key.len) == 0)
				return 0;
		keys[n++] = key;
		q_skip_ws(q);
		str.s = NULL;
		if (!q_value(q, depth, &str))
			return 0;
		for (i = 0; root && i < q->nkeys; i++) {
			if (q->keylen[i] != key.len ||
			    memcmp(q->keys[i], key.s, key.len) != 0)
				continue;
			/* a wanted key: only a plain string is sure */
			if (str.s == NULL || !q_plain(&str))
				return 0;
			q->vals[i].s = str.s;
			q->vals[i].len = str.len;
		}
	}
}

/*
 * One value inside a container at depth; *str: the text of a <string>,
 * left alone for other types.
 */
static int
q_value(struct quick *q, unsigned depth, struct span *str)
{
	struct span t;

	if (Q_LIT(q, "<string>")) {
		if (!q_text(q, C_TEXT | C_WS, &t) || !Q_LIT(q, "</string>"))
			return 0;
		*str = t;
		return 1;
	}
	if (Q_LIT(q, "<data>"))
		return q_text(q, C_B64 | C_PAD | C_WS, &t) && q_base64(&t) &&
		       Q_LIT(q, "</data>");
	if (Q_LIT(q, "<integer>"))
		return q_text(q, C_TEXT, &t) && q_integer(&t) &&
		       Q_LIT(q, "</integer>");
	if (Q_LIT(q, "<true/>") || Q_LIT(q, "<false/>"))
		return 1;
	/* a container is one level deeper, empty or not */
	if (Q_LIT(q, "<dict/>") || Q_LIT(q, "<array/>"))
		return depth + 1 <= q->max_depth;
	if (Q_LIT(q, "<dict>"))
		return q_dict(q, depth + 1, 0);
	if (Q_LIT(q, "<array>")) {
		if (depth + 1 > q->max_depth)
			return 0;
		for (;;) {
			q_skip_ws(q);
			if (Q_LIT(q, "</array>"))
				return 1;
			t.s = NULL;
			if (!q_value(q, depth + 1, &t))
				return 0;
		}
	}
	return 0;
}

/*
 * <?xml ...?> or <!DOCTYPE ...>: the rest of it after the opening, a blank
 * then C_DECL characters (no internal DTD subset, no single quotes) with
 * double quotes paired (libplist skips quoted parts looking for the end),
 * and close.
 */
static int
q_decl(struct quick *q, const char *close, size_t closelen)
{
	int quoted = 0;

	if (q->p >= q->end || *q->p != ' ')
		return 0;
	for (; q->p < q->end && is(*q->p, C_DECL); q->p++)
		if (*q->p == '"')
			quoted = !quoted;
	return !quoted && q_lit(q, close, closelen);
}

int
eb_plist_quick_dict(const void *data, size_t len, size_t max_bytes,
                    unsigned max_depth, const char *const keys[],
                    struct eb_plist_str vals[], size_t nkeys)
{
	struct quick q;
	size_t i;

	for (i = 0; i < nkeys; i++) {
		vals[i].s = NULL;
		vals[i].len = 0;
	}
	/* eb_plist_parse()'s limits */
	if (max_bytes == 0)
		max_bytes = EB_PLIST_DEFAULT_MAX_BYTES;
	if (max_depth == 0)
		max_depth = EB_PLIST_DEFAULT_MAX_DEPTH;
	if (data == NULL || len == 0 || len > max_bytes ||
	    len > UINT32_MAX - 1 || nkeys > QUICK_MAX_WANTED ||
	    max_depth > QUICK_MAX_DEPTH ||
	    pthread_once(&cclass_once, cclass_init) != 0)
		return 0;
	q.p = data;
	q.end = q.p + len;
	q.max_depth = max_depth;
	q.keys = keys;
	for (i = 0; i < nkeys; i++)
		q.keylen[i] = strlen(keys[i]);
	q.vals = vals;
	q.nkeys = nkeys;
	q_skip_ws(&q);
	if (Q_LIT(&q, "<?xml")) {
		if (!q_decl(&q, "?>", 2))
			goto unsure;
		q_skip_ws(&q);
	}
	if (Q_LIT(&q, "<!DOCTYPE")) {
		if (!q_decl(&q, ">", 1))
			goto unsure;
		q_skip_ws(&q);
	}
	if (!Q_LIT(&q, "<plist>") && !Q_LIT(&q, "<plist version=\"1.0\">"))
		goto unsure;
	q_skip_ws(&q);
	if (!Q_LIT(&q, "<dict>") || !q_dict(&q, 1, 1))
		goto unsure;
	q_skip_ws(&q);
	if (!Q_LIT(&q, "</plist>"))
		goto unsure;
	q_skip_ws(&q);
	if (q.p == q.end)
		return 1;
unsure:
	for (i = 0; i < nkeys; i++) {
		vals[i].s = NULL;
		vals[i].len = 0;
	}
	return 0;
}
