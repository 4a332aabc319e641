/*
 * config/internal.h - private to config/: the schema walker that turns a jansson tree into
 * zn_config_t, and the Go duration parser underneath zn_config_parse_duration().
 *
 * A schema is a NULL-terminated array of cfg_field_t rows, one per key an object may hold.
 * Each row names the key (matched case-insensitively, as zot lower-cases every key), its
 * kind, and where its value lands relative to a base pointer. Nested objects, maps keyed by
 * user-chosen names and arrays of objects carry their own schema, so the whole config.json
 * is described by tables in config.c, and parse, unknown-key, warning and release logic
 * exists once, here.
 */
#ifndef ZN_CONFIG_INTERNAL_H
#define ZN_CONFIG_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* ---- Go durations --------------------------------------------------------------------- */

/* Parse s[0..n) as Go's time.ParseDuration does: an optional sign, then "0" or a sequence
 * of <decimal><unit> (units ns us µs μs ms s m h). *neg is the sign, *ns the magnitude,
 * at most 2^63 (so a negative result fits int64). ZN_EINVAL on syntax, ZN_ERANGE on
 * overflow. */
zn_err_t cfg_duration_parse(const char *s, size_t n, bool *neg, uint64_t *ns);

/* ---- schema walker -------------------------------------------------------------------- */

typedef enum cfg_kind {
    CFG_OBJ,    /* object; sub fields at base + off */
    CFG_PTROBJ, /* object allocated on first sight: void * at off, elem_size bytes */
    CFG_MAP,    /* object of user-named entries: array at off, count at off_n; each entry is
                   elem_size bytes with its lower-cased name (char *) at offset 0 */
    CFG_ARR,    /* array of objects: array at off, count at off_n, elem_size each */
    CFG_STR,    /* string -> char * (replaces and frees the previous value) */
    CFG_STRV,   /* array of strings (or one string) -> char ** at off, count at off_n */
    CFG_BOOL,   /* true/false, Go ParseBool strings, numbers (non-zero = true) -> bool */
    CFG_INT,    /* integer (or decimal string) in [min, max] -> int */
    CFG_UINT,   /* same -> unsigned */
    CFG_U64,    /* same -> uint64_t */
    CFG_DUR,    /* Go duration string (or the number 0) -> uint64_t ns */
    CFG_LEVEL,  /* log level name -> zn_log_level_t */
    CFG_ACTS,   /* array of action names -> unsigned ZN_ACT_* bits */
    CFG_WARN,   /* zot knows it, zinc does not implement it: one warning, contents unchecked */
    CFG_SKIP,   /* accepted and ignored silently */
} cfg_kind_t;

enum {
    CFG_F_NEG_NONE = 1,    /* CFG_DUR: a negative duration means 0 (none) instead of an error */
    CFG_F_GROUPS = 2,      /* CFG_STRV of group names: warn on upper case (zot never matches) */
    CFG_F_GLOB = 4,        /* CFG_MAP: keys must be valid doublestar patterns */
    CFG_F_PRESENT = 8,     /* set the bool at present_off when the key is given (not null) */
    CFG_F_EMPTY_ZERO = 16, /* CFG_INT/UINT/U64: the string "" means 0 (zot's http.port) */
};

typedef struct cfg_field {
    const char *name; /* canonical spelling, used in messages */
    cfg_kind_t kind;
    size_t off;                  /* value offset from the base */
    size_t off_n;                /* CFG_STRV/MAP/ARR: size_t count offset */
    const struct cfg_field *sub; /* CFG_OBJ/PTROBJ/MAP/ARR: keys of the (element) object */
    size_t elem_size;            /* CFG_PTROBJ/MAP/ARR */
    uint64_t min, max;           /* CFG_INT/UINT/U64 */
    unsigned flags;              /* CFG_F_* */
    size_t present_off;          /* CFG_F_PRESENT: bool offset from the base */
    unsigned seen;               /* bit or-ed into cfg_walk_t.seen when the key is given */
    const char *hint;            /* on the NULL-named row ending a schema: appended to
                                    "unknown key" errors for that object */
} cfg_field_t;

/* Where a value sits in the document: a chain of keys / array indexes on the stack,
 * formatted only when a message is needed. */
typedef struct cfg_keypath {
    const struct cfg_keypath *up;
    const char *key; /* NULL: array element `index` */
    size_t index;
} cfg_keypath_t;

typedef struct cfg_walk {
    const char *name; /* file name used in messages */
    zn_config_warn_fn warn;
    void *warn_data;
    char *errbuf;
    size_t errlen;
    unsigned seen; /* cfg_field_t.seen bits of the keys met so far */
} cfg_walk_t;

/* Walk obj with schema fields, storing into base. On error the message is in w->errbuf
 * and ZN_EINVAL is returned; whatever was stored so far is released by cfg_release(). */
zn_err_t cfg_walk_object(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *obj, const cfg_field_t *fields, void *base);

/* Free everything the schema owns under base (strings, arrays, allocated objects). */
void cfg_release(const cfg_field_t *fields, void *base);

/* Report "<file>: <path>: <message>" as the error (ZN_EINVAL returned) or as a warning.
 * kp may be NULL for messages about the whole file. Messages longer than the buffer end
 * in "...". */
zn_err_t cfg_fail(cfg_walk_t *w, const cfg_keypath_t *kp, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void cfg_warn(cfg_walk_t *w, const cfg_keypath_t *kp, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* extensions.sync (config/sync.c): its schema (a CFG_PTROBJ of zn_config_sync_t) and the
 * checks zot makes on it after the walk. */
extern const cfg_field_t cfg_sync_fields[];
zn_err_t cfg_sync_check(cfg_walk_t *w, zn_config_t *cfg);

/* config/cluster.c: the keys of the top-level "cluster" object, and zot's startup checks of
 * it (validateClusterConfig) plus zinc's: members well-formed and distinct, tls pair. */
extern const cfg_field_t cfg_cluster_fields[];
zn_err_t cfg_check_cluster(cfg_walk_t *w, zn_config_t *cfg);

#endif
