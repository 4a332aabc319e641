/*
 * config/walk.c - the schema walker: one code path for every key of config.json.
 *
 * cfg_walk_object() matches each key of a JSON object against a schema (case-insensitively,
 * as zot lower-cases keys; two keys equal but for case are an error, since zot would keep
 * one of them at random), then hands the value to the setter of the row's kind. Unknown
 * keys are errors, CFG_WARN rows produce one warning, JSON null means "not given". Setters
 * accept what zot's weakly typed decoder accepts where that is unambiguous: numbers for
 * strings of digits, "true"/1 for booleans, a single string for a list. Messages name the
 * file and the key path ("config.json: http.port: expected integer 0-65535").
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/internal.h"

typedef zn_err_t (*setter_fn)(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *v, const cfg_field_t *f, char *base);

/* ---- messages ------------------------------------------------------------------------- */

typedef struct msg {
    char *buf;
    size_t cap, len;
    bool cut;
} msg_t;

static void msg_vadd(msg_t *m, const char *fmt, va_list ap)
{
    if (m->cut)
        return;
    int n = vsnprintf(m->buf + m->len, m->cap - m->len, fmt, ap);
    if (n < 0 || (size_t)n >= m->cap - m->len) {
        m->cut = true;
        m->len = m->cap - 1;
        return;
    }
    m->len += (size_t)n;
}

static void msg_add(msg_t *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    msg_vadd(m, fmt, ap);
    va_end(ap);
}

static void msg_path(msg_t *m, const cfg_keypath_t *kp)
{
    if (kp == NULL)
        return;
    msg_path(m, kp->up);
    if (kp->key == NULL)
        msg_add(m, "[%zu]", kp->index);
    else
        msg_add(m, "%s%s", kp->up != NULL ? "." : "", kp->key);
}

/* "<file>: <path>: <text>" into buf; a message cut short ends in "...". */
static void msg_compose(char *buf, size_t cap, const cfg_walk_t *w, const cfg_keypath_t *kp, const char *fmt, va_list ap)
{
    msg_t m = {buf, cap, 0, false};

    if (cap == 0)
        return;
    buf[0] = '\0';
    msg_add(&m, "%s: ", w->name);
    msg_path(&m, kp);
    if (kp != NULL)
        msg_add(&m, ": ");
    msg_vadd(&m, fmt, ap);
    if (m.cut && cap > 4)
        memcpy(buf + cap - 4, "...", 4);
}

zn_err_t cfg_fail(cfg_walk_t *w, const cfg_keypath_t *kp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    msg_compose(w->errbuf, w->errlen, w, kp, fmt, ap);
    va_end(ap);
    return ZN_EINVAL;
}

void cfg_warn(cfg_walk_t *w, const cfg_keypath_t *kp, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    if (w->warn == NULL)
        return;
    va_start(ap, fmt);
    msg_compose(buf, sizeof(buf), w, kp, fmt, ap);
    va_end(ap);
    w->warn(w->warn_data, buf);
}

/* ---- scalar conversions --------------------------------------------------------------- */

/* A non-negative integer: JSON integer, integral JSON real, or a string of decimal digits
 * (zot's decoder turns every JSON number into a float and accepts numeric strings). */
static bool json_to_u64(json_t *v, uint64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        *out = (uint64_t)i;
        return i >= 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d >= 0 && d < 18446744073709551616.0) || (double)(uint64_t)d != d)
            return false;
        *out = (uint64_t)d;
        return true;
    }
    if (json_is_string(v))
        return zn_parse_u64(zn_slice(json_string_value(v), json_string_length(v)), UINT64_MAX, out) == ZN_OK;
    return false;
}

/* Go's strconv.ParseBool, plus "" = false as zot's weak decoding has it. */
static bool str_to_bool(const char *s, bool *out)
{
    static const struct {
        const char *s;
        bool v;
    } words[] = {{"1", true},  {"t", true},  {"T", true},  {"TRUE", true},   {"true", true},   {"True", true},  {"", false},
                 {"0", false}, {"f", false}, {"F", false}, {"FALSE", false}, {"false", false}, {"False", false}};

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcmp(s, words[i].s) == 0) {
            *out = words[i].v;
            return true;
        }
    }
    return false;
}

static void store_str(char **slot, const char *s)
{
    free(*slot);
    *slot = zn_strdup(s);
}

/* ---- setters -------------------------------------------------------------------------- */

static zn_err_t set_str(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *v, const cfg_field_t *f, char *base)
{
    if (!json_is_string(v))
        return cfg_fail(w, kp, "expected string");
    store_str((char **)(base + f->off), json_string_value(v));
    return ZN_OK;
}

static zn_err_t set_bool(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *v, const cfg_field_t *f, char *base)
{
    bool *slot = (bool *)(base + f->off);

    if (json_is_boolean(v))
        *slot = json_is_true(v);
    else if (json_is_number(v))
        *slot = json_number_value(v) != 0;
    else if (!json_is_string(v) || !str_to_bool(json_string_value(v), slot))
        return cfg_fail(w, kp, "expected boolean");
    return ZN_OK;
}

static zn_err_t set_int(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *v, const cfg_field_t *f, char *base)
{
    uint64_t n = 0;
    bool empty = json_is_string(v) && json_string_length(v) == 0;

    if (!(empty && (f->flags & CFG_F_EMPTY_ZERO)) && (!json_to_u64(v, &n) || n < f->min || n > f->max))
        return cfg_fail(w, kp, "expected integer %llu-%llu", (unsigned long long)f->min, (unsigned long long)f->max);
    if (f->kind == CFG_INT)
        *(int *)(base + f->off) = (int)n;
    else if (f->kind == CFG_UINT)
        *(unsigned *)(base + f->off) = (unsigned)n;
    else
        *(uint64_t *)(base + f->off) = n;
    return ZN_OK;
}

static zn_err_t set_dur(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *v, const cfg_field_t *f, char *base)
{
    uint64_t ns = 0;
    bool neg = false;

    if (json_is_number(v) && json_number_value(v) != 0)
        return cfg_fail(w, kp, "bare number %g: write a duration with a unit, such as \"90s\"", json_number_value(v));
    if (json_is_string(v)) {
        zn_err_t err = cfg_duration_parse(json_string_value(v), json_string_length(v), &neg, &ns);
        if (err == ZN_ERANGE)
            return cfg_fail(w, kp, "duration \"%s\" out of range", json_string_value(v));
        if (err != ZN_OK)
            return cfg_fail(w, kp, "invalid duration \"%s\"", json_string_value(v));
        if (neg && ns != 0 && !(f->flags & CFG_F_NEG_NONE))
            return cfg_fail(w, kp, "negative duration \"%s\"", json_string_value(v));
    } else if (!json_is_number(v)) {
        return cfg_fail(w, kp, "expected duration string, such as \"90s\"");
    }
    *(uint64_t *)(base + f->off) = neg ? 0 : ns;
    return ZN_OK;
}

static zn_err_t set_level(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *v, const cfg_field_t *f, char *base)
{
    if (!json_is_string(v))
        return cfg_fail(w, kp, "expected string");
    if (zn_log_level_parse(json_string_value(v), (zn_log_level_t *)(base + f->off)) != ZN_OK)
        return cfg_fail(w, kp, "invalid log level \"%s\" (expected debug, info, warn, error, fatal or panic)",
                        json_string_value(v));
    return ZN_OK;
}

static zn_err_t set_warn(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *v, const cfg_field_t *f, char *base)
{
    cfg_warn(w, kp, "not implemented by zinc, ignored");
    return ZN_OK;
}

static zn_err_t set_skip(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *v, const cfg_field_t *f, char *base)
{
    return ZN_OK;
}

/* ---- string lists --------------------------------------------------------------------- */

typedef zn_err_t (*each_fn)(cfg_walk_t *w, const cfg_keypath_t *kp, const char *s, size_t i, const cfg_field_t *f, char *base);

/* Calls fn for each string of v: an array of strings, or one string standing for a list of
 * one (zot's decoder does the same). */
static zn_err_t each_string(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *v, const cfg_field_t *f, char *base, each_fn fn)
{
    size_t i;
    json_t *e;
    zn_err_t err;

    if (json_is_string(v))
        return fn(w, kp, json_string_value(v), 0, f, base);
    if (!json_is_array(v))
        return cfg_fail(w, kp, "expected array of strings");
    json_array_foreach(v, i, e)
    {
        cfg_keypath_t ekp = {kp, NULL, i};
        if (!json_is_string(e))
            return cfg_fail(w, &ekp, "expected string");
        if ((err = fn(w, &ekp, json_string_value(e), i, f, base)) != ZN_OK)
            return err;
    }
    return ZN_OK;
}

static bool has_upper(const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s >= 'A' && *s <= 'Z')
            return true;
    }
    return false;
}

static zn_err_t put_string(cfg_walk_t *w, const cfg_keypath_t *kp, const char *s, size_t i, const cfg_field_t *f, char *base)
{
    char **list = *(char ***)(base + f->off);

    if ((f->flags & CFG_F_GROUPS) && has_upper(s))
        cfg_warn(w, kp, "group \"%s\" has upper-case letters; zot lower-cases group names, so it never matches", s);
    list[i] = zn_strdup(s);
    *(size_t *)(base + f->off_n) = i + 1;
    return ZN_OK;
}

static void free_strv(char ***list, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*list)[i]);
    free(*list);
    *list = NULL;
    *n = 0;
}

static zn_err_t set_strv(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *v, const cfg_field_t *f, char *base)
{
    char ***list = (char ***)(base + f->off);

    free_strv(list, (size_t *)(base + f->off_n));
    *list = zn_calloc(json_is_array(v) ? json_array_size(v) + 1 : 1, sizeof(char *));
    return each_string(w, kp, v, f, base, put_string);
}

static zn_err_t put_action(cfg_walk_t *w, const cfg_keypath_t *kp, const char *s, size_t i, const cfg_field_t *f, char *base)
{
    static const struct {
        const char *name;
        unsigned bit;
    } acts[] = {{"read", ZN_ACT_READ}, {"create", ZN_ACT_CREATE}, {"update", ZN_ACT_UPDATE}, {"delete", ZN_ACT_DELETE}};

    for (size_t k = 0; k < sizeof(acts) / sizeof(acts[0]); k++) {
        if (strcmp(s, acts[k].name) == 0) {
            *(unsigned *)(base + f->off) |= acts[k].bit;
            return ZN_OK;
        }
    }
    if (strcmp(s, "detectManifestCollision") == 0) {
        cfg_warn(w, kp, "action \"%s\" not implemented by zinc, ignored", s);
        return ZN_OK;
    }
    return cfg_fail(w, kp, "unknown action \"%s\" (expected read, create, update or delete)", s);
}

static zn_err_t set_acts(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *v, const cfg_field_t *f, char *base)
{
    *(unsigned *)(base + f->off) = 0;
    return each_string(w, kp, v, f, base, put_action);
}

/* ---- objects, maps, arrays ------------------------------------------------------------ */

static char *elem(const cfg_field_t *f, char *base, size_t i)
{
    return *(char **)(base + f->off) + i * f->elem_size;
}

static void release_elems(const cfg_field_t *f, char *base)
{
    char **arr = (char **)(base + f->off);
    size_t *n = (size_t *)(base + f->off_n);

    for (size_t i = 0; i < *n; i++) {
        cfg_release(f->sub, elem(f, base, i));
        if (f->kind == CFG_MAP)
            free(*(char **)elem(f, base, i));
    }
    free(*arr);
    *arr = NULL;
    *n = 0;
}

/* zot lower-cases user-chosen map keys too (group names, repository patterns); ASCII only,
 * as repository names are. */
static char *lower_dup(const char *s)
{
    char *d = zn_strdup(s);
    for (char *p = d; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    }
    return d;
}

/* Keys equal but for case: zot would keep one of them, picked by Go's map order. */
static zn_err_t check_twin(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *obj, const char *key)
{
    const char *k;
    json_t *v;

    json_object_foreach(obj, k, v)
    {
        if (k == key)
            break;
        if (strcasecmp(k, key) == 0)
            return cfg_fail(w, kp, "same key as \"%s\" (keys are case-insensitive)", k);
    }
    return ZN_OK;
}

static zn_err_t set_obj(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *v, const cfg_field_t *f, char *base)
{
    return cfg_walk_object(w, kp, v, f->sub, base + f->off);
}

static zn_err_t set_ptrobj(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *v, const cfg_field_t *f, char *base)
{
    void **p = (void **)(base + f->off);

    if (*p == NULL)
        *p = zn_calloc(1, f->elem_size);
    return cfg_walk_object(w, kp, v, f->sub, *p);
}

static zn_err_t set_arr(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *v, const cfg_field_t *f, char *base)
{
    size_t i;
    json_t *e;
    zn_err_t err;

    if (!json_is_array(v))
        return cfg_fail(w, kp, "expected array of objects");
    release_elems(f, base);
    *(char **)(base + f->off) = zn_calloc(json_array_size(v) + 1, f->elem_size);
    *(size_t *)(base + f->off_n) = json_array_size(v);
    json_array_foreach(v, i, e)
    {
        cfg_keypath_t ekp = {kp, NULL, i};
        if ((err = cfg_walk_object(w, &ekp, e, f->sub, elem(f, base, i))) != ZN_OK)
            return err;
    }
    return ZN_OK;
}

/* A repositories key: compiled by the parser auth matches with, so both agree on it. */
static zn_err_t check_glob(cfg_walk_t *w, const cfg_keypath_t *kp, const char *pattern)
{
    zn_glob_t g;
    zn_err_t err = zn_glob_compile(pattern, &g);
    if (err == ZN_ETOOBIG)
        return cfg_fail(w, kp, "more than %d {} alternatives", ZN_GLOB_ALTS_MAX);
    if (err != ZN_OK)
        return cfg_fail(w, kp, "invalid glob pattern");
    zn_glob_release(&g);
    return ZN_OK;
}

/* One map entry: its lower-cased name at offset 0, then its object (null = empty). */
static zn_err_t map_entry(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *map, json_t *v, const cfg_field_t *f, char *entry)
{
    zn_err_t err;

    if ((err = check_twin(w, kp, map, kp->key)) != ZN_OK)
        return err;
    *(char **)entry = lower_dup(kp->key);
    if ((f->flags & CFG_F_GLOB) && (err = check_glob(w, kp, *(char **)entry)) != ZN_OK)
        return err;
    return json_is_null(v) ? ZN_OK : cfg_walk_object(w, kp, v, f->sub, entry);
}

static zn_err_t set_map(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *v, const cfg_field_t *f, char *base)
{
    size_t *n = (size_t *)(base + f->off_n);
    const char *key;
    json_t *e;
    zn_err_t err;

    if (!json_is_object(v))
        return cfg_fail(w, kp, "expected object");
    release_elems(f, base);
    *(char **)(base + f->off) = zn_calloc(json_object_size(v) + 1, f->elem_size);
    json_object_foreach(v, key, e)
    {
        cfg_keypath_t ekp = {kp, key, 0};
        if ((err = map_entry(w, &ekp, v, e, f, elem(f, base, (*n)++))) != ZN_OK)
            return err;
    }
    return ZN_OK;
}

static const setter_fn setters[] = {
    [CFG_OBJ] = set_obj,   [CFG_PTROBJ] = set_ptrobj, [CFG_MAP] = set_map,   [CFG_ARR] = set_arr,   [CFG_STR] = set_str,
    [CFG_STRV] = set_strv, [CFG_BOOL] = set_bool,     [CFG_INT] = set_int,   [CFG_UINT] = set_int,  [CFG_U64] = set_int,
    [CFG_DUR] = set_dur,   [CFG_LEVEL] = set_level,   [CFG_ACTS] = set_acts, [CFG_WARN] = set_warn, [CFG_SKIP] = set_skip,
};

/* The row for key, or the schema's terminating row (name NULL) when none matches. */
static const cfg_field_t *find_field(const cfg_field_t *f, const char *key)
{
    while (f->name != NULL && strcasecmp(f->name, key) != 0)
        f++;
    return f;
}

static zn_err_t walk_key(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *obj, json_t *v, const cfg_field_t *fields, char *base)
{
    const cfg_field_t *f = find_field(fields, kp->key);
    zn_err_t err;

    if ((err = check_twin(w, kp, obj, kp->key)) != ZN_OK)
        return err;
    if (f->name == NULL)
        return cfg_fail(w, kp, "unknown key%s%s", f->hint != NULL ? "; " : "", f->hint != NULL ? f->hint : "");
    if (json_is_null(v))
        return ZN_OK;
    if (f->flags & CFG_F_PRESENT)
        *(bool *)(base + f->present_off) = true;
    w->seen |= f->seen;
    return setters[f->kind](w, kp, v, f, base);
}

zn_err_t cfg_walk_object(cfg_walk_t *w, const cfg_keypath_t *kp, json_t *obj, const cfg_field_t *fields, void *base)
{
    const char *key;
    json_t *v;
    zn_err_t err;

    if (!json_is_object(obj))
        return cfg_fail(w, kp, "expected object");
    json_object_foreach(obj, key, v)
    {
        cfg_keypath_t ckp = {kp, key, 0};
        if ((err = walk_key(w, &ckp, obj, v, fields, base)) != ZN_OK)
            return err;
    }
    return ZN_OK;
}

void cfg_release(const cfg_field_t *fields, void *vbase)
{
    char *base = vbase;

    for (const cfg_field_t *f = fields; f->name != NULL; f++) {
        if (f->kind == CFG_OBJ) {
            cfg_release(f->sub, base + f->off);
        } else if (f->kind == CFG_PTROBJ && *(void **)(base + f->off) != NULL) {
            cfg_release(f->sub, *(void **)(base + f->off));
            free(*(void **)(base + f->off));
            *(void **)(base + f->off) = NULL;
        } else if (f->kind == CFG_MAP || f->kind == CFG_ARR) {
            release_elems(f, base);
        } else if (f->kind == CFG_STR) {
            free(*(char **)(base + f->off));
            *(char **)(base + f->off) = NULL;
        } else if (f->kind == CFG_STRV) {
            free_strv((char ***)(base + f->off), (size_t *)(base + f->off_n));
        }
    }
}
