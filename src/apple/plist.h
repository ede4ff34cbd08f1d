/*
 * Property lists: the only user of libplist. Everything else in enrollbridge
 * (MachineInfo bodies, enrollment and SSO profiles, check-in messages) sees
 * plists through this small wrapper.
 *
 * Parsing is bounded: a byte limit, a nesting-depth limit (the parsed tree is
 * walked and refused when too deep) and, for binary plists, an object-count
 * limit checked before libplist sees the data (its binary reader recurses
 * once per nesting level, so a deep binary plist could exhaust the stack).
 *
 * A tree is a struct eb_plist pointer: the root returned by eb_plist_parse()
 * or eb_plist_new_dict() is owned by the caller and freed with
 * eb_plist_free(); every node reached from it (dict values, array items)
 * is borrowed and lives as long as the root, unless removed. A tree may be
 * read by one thread at a time (libplist builds lookup tables lazily).
 */
#ifndef EB_PLIST_H
#define EB_PLIST_H

#include <stddef.h>
#include <stdint.h>

/* Defaults for eb_plist_parse() limits given as 0. */
#define EB_PLIST_DEFAULT_MAX_BYTES (1024 * 1024)
#define EB_PLIST_DEFAULT_MAX_DEPTH 32
/* Binary plists holding more objects than this are refused. */
#define EB_PLIST_MAX_BIN_OBJECTS 20000

struct eb_plist;

enum eb_plist_type {
	EB_PLIST_NONE = 0, /* NULL node */
	EB_PLIST_DICT,
	EB_PLIST_ARRAY,
	EB_PLIST_STRING,
	EB_PLIST_BOOL,
	EB_PLIST_INT,
	EB_PLIST_REAL,
	EB_PLIST_DATA,
	EB_PLIST_DATE,
	EB_PLIST_OTHER /* UID, key: nothing a profile should hold */
};

/*
 * Parse len bytes of an XML or binary plist (detected by content). Refuses
 * more than max_bytes (0: EB_PLIST_DEFAULT_MAX_BYTES) and trees nested
 * deeper than max_depth containers (0: EB_PLIST_DEFAULT_MAX_DEPTH; the root
 * container is depth 1). Returns a tree to eb_plist_free(), or NULL with a
 * reason in err (which may be NULL).
 */
struct eb_plist *eb_plist_parse(const void *data, size_t len, size_t max_bytes,
                                unsigned max_depth, char *err, size_t errlen);
/* A string of a plist, in the caller's buffer (not NUL-terminated). */
struct eb_plist_str {
	const char *s; /* NULL: absent */
	size_t len;
};

/*
 * A quick look at a small XML plist whose root is a dict, for a hot path
 * that wants a few of its top-level strings (the MDM proxy's check-ins):
 * no tree, no allocation. It knows only the plain form devices and plist
 * libraries write: an optional <?xml ...?> and <!DOCTYPE ...>, <plist> or
 * <plist version="1.0">, a <dict> root, and inside containers only <key>,
 * <string>, <data> (canonical base64), <integer>, <true/>, <false/>,
 * <dict> and <array> (and their empty forms), blanks between elements,
 * printable ASCII text without entities, no duplicate keys.
 *
 * Returns 1 when data is such a plist within the limits (as for
 * eb_plist_parse(), which would then accept it too and find the same
 * strings) and each of the nkeys keys[i] is either absent from the root
 * dict (vals[i].s NULL) or names a string of printable ASCII without
 * blanks, at least one byte (vals[i]: it, inside data). Returns 0 (vals
 * all NULL) when unsure, never "malformed": the caller then parses the
 * body with eb_plist_parse(), which decides. Unsure, too, of anything
 * when max_depth is above 64 or nkeys above 8.
 */
int eb_plist_quick_dict(const void *data, size_t len, size_t max_bytes,
                        unsigned max_depth, const char *const keys[],
                        struct eb_plist_str vals[], size_t nkeys);
/* An empty dictionary (root), or NULL when out of memory. */
struct eb_plist *eb_plist_new_dict(void);
/* A deep copy of node as a new root, or NULL when out of memory. */
struct eb_plist *eb_plist_copy(const struct eb_plist *node);
/* Free a root and everything under it; NULL is a no-op. */
void eb_plist_free(struct eb_plist *root);

/* The type of node (EB_PLIST_NONE for NULL). */
enum eb_plist_type eb_plist_type(const struct eb_plist *node);
/* "dict", "array", "string"... for messages. */
const char *eb_plist_type_name(enum eb_plist_type type);

/*
 * Scalar values of a node. Each returns the value (or 0 on success), or
 * NULL (-1) when node is NULL or of another type. Strings and data point
 * into the tree: valid until the node is changed or freed. A string's
 * length is stored in *len when len is not NULL (a string may hold NUL
 * bytes: compare the length with strlen() when that matters).
 */
const char *eb_plist_string(const struct eb_plist *node, size_t *len);
int eb_plist_bool(const struct eb_plist *node, int *val);
int eb_plist_int(const struct eb_plist *node, int64_t *val);
const uint8_t *eb_plist_data(const struct eb_plist *node, size_t *len);

/* The value under key in dict, or NULL (absent, or dict not a dict). */
struct eb_plist *eb_plist_dict_get(const struct eb_plist *dict,
                                   const char *key);
/* Typed lookups: as the scalar getters above on eb_plist_dict_get(). */
const char *eb_plist_dict_get_string(const struct eb_plist *dict,
                                     const char *key, size_t *len);
int eb_plist_dict_get_bool(const struct eb_plist *dict, const char *key,
                           int *val);
int eb_plist_dict_get_int(const struct eb_plist *dict, const char *key,
                          int64_t *val);
const uint8_t *eb_plist_dict_get_data(const struct eb_plist *dict,
                                      const char *key, size_t *len);
/* The dict / array under key, or NULL when absent or of another type. */
struct eb_plist *eb_plist_dict_get_dict(const struct eb_plist *dict,
                                        const char *key);
struct eb_plist *eb_plist_dict_get_array(const struct eb_plist *dict,
                                         const char *key);

/*
 * Set key in dict to a new value, replacing any value it had (in place: the
 * key keeps its position; a new key is appended). Returns 0, or -1 when dict
 * is not a dict or out of memory (dict unchanged).
 */
int eb_plist_dict_set_string(struct eb_plist *dict, const char *key,
                             const char *val);
/* A copy of len (at least 1) bytes at val, as a data value. */
int eb_plist_dict_set_data(struct eb_plist *dict, const char *key,
                           const uint8_t *val, size_t len);
/*
 * Add the string val to the array under key in dict (made when absent)
 * unless it holds it already. Returns 0, or -1 when the key holds
 * something other than an array or out of memory.
 */
int eb_plist_dict_add_string(struct eb_plist *dict, const char *key,
                             const char *val);
int eb_plist_dict_set_bool(struct eb_plist *dict, const char *key, int val);
int eb_plist_dict_set_int(struct eb_plist *dict, const char *key, int64_t val);
/*
 * Remove key (and free its value) from dict. Returns 1 when it was there,
 * 0 when not.
 */
int eb_plist_dict_remove(struct eb_plist *dict, const char *key);
/* Number of entries of a dict, 0 for anything else. */
size_t eb_plist_dict_size(const struct eb_plist *dict);
/*
 * Call fn(key, value, arg) for each entry of dict in order; key and value
 * are valid during the call only, and fn must not change dict. Stops at the
 * first non-zero return of fn and returns it; 0 when every entry was seen,
 * -1 when dict is not a dict or out of memory.
 */
int eb_plist_dict_foreach(const struct eb_plist *dict,
                          int (*fn)(const char *key,
                                    const struct eb_plist *value, void *arg),
                          void *arg);

/* Number of items of an array, 0 for anything else. */
size_t eb_plist_array_size(const struct eb_plist *array);
/* Item i of array, or NULL when out of range or not an array. */
struct eb_plist *eb_plist_array_get(const struct eb_plist *array, size_t i);

/*
 * Serialize node and everything under it as an XML plist. On success *out
 * is a fresh NUL-terminated buffer (eb_free it; the NUL is not counted in
 * *len) and 0 is returned; -1 when out of memory.
 */
int eb_plist_to_xml(const struct eb_plist *node, uint8_t **out, size_t *len);

#endif
