/*
 * common/glob.c - doublestar (v4) globs, the keys of accessControl.repositories: the one
 * parser of their grammar. config/ compiles each key to validate it (so a bad pattern is
 * reported with its file and key) and auth/ compiles it again to match.
 *
 * Grammar: doublestar's ValidatePattern. A class "[...]" is closed and not empty (a ']'
 * right after '[', '[!' or '[^' is an empty class, not a literal), '\' escapes the next byte
 * (none left is an error), every '}' closes a '{' and every '{' is closed.
 *
 * Compile: "{a,b}" alternatives (nested too) are expanded up front into brace-free
 * patterns. Patterns come from the config, so the expansion is capped rather than trusted.
 *
 * Match works on '/' segments. A segment that is exactly "**" matches zero or more name
 * segments; anything else matches one segment with '*' (any run of bytes), '?' (one
 * byte), "[...]" classes and '\' escapes. Both levels use the classic wildcard loop that
 * only backtracks to the most recent star, so a match is O(pattern x name) even for a
 * hostile repository name: the name comes from the network.
 */
#include <stdlib.h>
#include <string.h>

#include "common/zn.h"

/* ---- classes and single bytes --------------------------------------------------------------- */

/* p points just after '['. Returns the position just after the closing ']', or NULL if the
 * class is unclosed or empty; *hit says whether byte c is in it. */
static const char *class_match(const char *p, const char *end, unsigned char c, bool *hit)
{
    bool neg = false, in = false;
    int items = 0;

    if (p < end && (*p == '!' || *p == '^')) {
        neg = true;
        p++;
    }
    for (;;) {
        if (p >= end)
            return NULL;
        if (*p == ']') {
            if (items == 0)
                return NULL; /* "[]", "[!]": doublestar's empty class */
            break;
        }
        unsigned char lo = (unsigned char)*p++, hi;
        if (lo == '\\') {
            if (p >= end)
                return NULL;
            lo = (unsigned char)*p++;
        }
        hi = lo;
        if (p + 1 < end && *p == '-' && p[1] != ']') {
            p++;
            hi = (unsigned char)*p++;
            if (hi == '\\') {
                if (p >= end)
                    return NULL;
                hi = (unsigned char)*p++;
            }
        }
        if (lo <= c && c <= hi)
            in = true;
        items++;
    }
    *hit = in != neg;
    return p + 1;
}

/* Match one non-'*' pattern element at *pp against byte c; advance *pp past it. */
static bool elem_match(const char **pp, const char *end, unsigned char c)
{
    const char *p = *pp;
    bool hit = false;

    switch (*p) {
    case '?':
        *pp = p + 1;
        return true;
    case '[':
        if ((*pp = class_match(p + 1, end, c, &hit)) == NULL) {
            *pp = end; /* unreachable for a compiled pattern */
            return false;
        }
        return hit;
    case '\\':
        if (p + 1 < end)
            p++;
        /* fallthrough */
    default:
        *pp = p + 1;
        return (unsigned char)*p == c;
    }
}

/* One pattern segment [p, pend) against one name segment [s, send); *steps counts the
 * loop's turns (the cost bound the unit test checks). */
static bool seg_match(const char *p, const char *pend, const char *s, const char *send, uint64_t *steps)
{
    const char *star = NULL, *mark = NULL;

    while (s < send) {
        ++*steps;
        if (p < pend && *p == '*') {
            star = ++p;
            mark = s;
            continue;
        }
        const char *next = p;
        if (p < pend && elem_match(&next, pend, (unsigned char)*s)) {
            p = next;
            s++;
            continue;
        }
        if (star == NULL)
            return false;
        p = star;
        s = ++mark;
    }
    while (p < pend && *p == '*')
        p++;
    return p == pend;
}

/* ---- segments --------------------------------------------------------------------------------- */

/* End of the pattern segment starting at p: the next '/' outside a class and not escaped. */
static const char *pat_seg_end(const char *p)
{
    while (*p != '\0' && *p != '/') {
        if (*p == '\\' && p[1] != '\0') {
            p += 2;
        } else if (*p == '[') {
            bool hit;
            const char *q = class_match(p + 1, p + strlen(p), 0, &hit);
            p = q != NULL ? q : p + 1;
        } else {
            p++;
        }
    }
    return p;
}

static bool is_globstar(zn_slice_t s)
{
    return s.n == 2 && s.p[0] == '*' && s.p[1] == '*';
}

/* The wildcard loop again, one level up: elements are segments and "**" is the star. */
static bool path_match(const zn_slice_t *pat, size_t np, const zn_slice_t *name, size_t nn, uint64_t *steps)
{
    size_t i = 0, j = 0, star_i = SIZE_MAX, star_j = 0;

    while (j < nn) {
        ++*steps;
        if (i < np && is_globstar(pat[i])) {
            star_i = i++;
            star_j = j;
            continue;
        }
        if (i < np && seg_match(pat[i].p, pat[i].p + pat[i].n, name[j].p, name[j].p + name[j].n, steps)) {
            i++;
            j++;
            continue;
        }
        if (star_i == SIZE_MAX)
            return false;
        /* let the last "**" swallow one more name segment */
        i = star_i + 1;
        j = ++star_j;
    }
    while (i < np && is_globstar(pat[i]))
        i++;
    return i == np;
}

/* ---- compile ------------------------------------------------------------------------------------ */

/* Where the element at p ends: past an escape or a whole class. NULL for an unclosed class
 * or a dangling '\'. */
static const char *skip_elem(const char *p, const char *end)
{
    bool hit;
    if (*p == '\\')
        return p + 1 < end ? p + 2 : NULL;
    if (*p == '[')
        return class_match(p + 1, end, 0, &hit);
    return p + 1;
}

/* The first top-level "{...}" of [p, end): ZN_OK with *open and *close, ZN_ENOENT if there
 * is none, ZN_EINVAL if a brace or class is unclosed or a '\' dangles. */
static zn_err_t find_brace(const char *p, const char *end, const char **open, const char **close)
{
    int depth = 0;
    while (p < end) {
        if (*p == '{' && depth++ == 0)
            *open = p;
        if (*p == '}' && depth == 0)
            return ZN_EINVAL; /* closes nothing */
        if (*p == '}' && --depth == 0) {
            *close = p;
            return ZN_OK;
        }
        if ((p = skip_elem(p, end)) == NULL)
            return ZN_EINVAL;
    }
    return depth > 0 ? ZN_EINVAL : ZN_ENOENT;
}

/* The next ',' at depth 0 in [p, close), or close. */
static const char *next_comma(const char *p, const char *close)
{
    int depth = 0;
    while (p < close) {
        if (*p == ',' && depth == 0)
            return p;
        depth += *p == '{' ? 1 : *p == '}' ? -1 : 0;
        const char *q = skip_elem(p, close);
        p = q != NULL ? q : close;
    }
    return close;
}

static void split_segs(zn_glob_alt_t *a)
{
    size_t cap = 4;
    const char *p = a->pat;

    a->segs = zn_malloc(cap * sizeof(*a->segs));
    a->nsegs = 0;
    for (;;) {
        const char *e = pat_seg_end(p);
        if (a->nsegs == cap)
            a->segs = zn_realloc(a->segs, (cap *= 2) * sizeof(*a->segs));
        a->segs[a->nsegs++] = zn_slice(p, (size_t)(e - p));
        if (*e == '\0')
            break;
        p = e + 1;
    }
}

static zn_err_t add_alt(zn_glob_t *g, const char *pat, size_t len)
{
    if (g->nalts == ZN_GLOB_ALTS_MAX)
        return ZN_ETOOBIG;
    g->alts = zn_realloc(g->alts, (g->nalts + 1) * sizeof(*g->alts));
    zn_glob_alt_t *a = &g->alts[g->nalts++];
    a->pat = zn_slice_dup(zn_slice(pat, len));
    split_segs(a);
    return ZN_OK;
}

/* Expand the first brace of [pat, pat+len) into each alternative and recurse on the result. */
static zn_err_t expand(zn_glob_t *g, const char *pat, size_t len)
{
    const char *open = NULL, *close = NULL, *end = pat + len;
    zn_err_t err = find_brace(pat, end, &open, &close);

    if (err == ZN_ENOENT)
        return add_alt(g, pat, len);
    for (const char *piece = open + 1; err == ZN_OK && piece <= close;) {
        const char *comma = next_comma(piece, close);
        zn_buf_t b;
        zn_buf_init(&b, len);
        /* the pieces without the braces and one alternative: shorter than pat, they fit */
        if (zn_buf_append(&b, pat, (size_t)(open - pat)) != ZN_OK || zn_buf_append(&b, piece, (size_t)(comma - piece)) != ZN_OK ||
            zn_buf_append(&b, close + 1, (size_t)(end - close - 1)) != ZN_OK)
            err = ZN_ETOOBIG;
        else
            err = expand(g, b.p != NULL ? b.p : "", b.len);
        zn_buf_release(&b);
        piece = comma + 1;
    }
    return err;
}

zn_err_t zn_glob_compile(const char *pattern, zn_glob_t *g)
{
    zn_err_t err;

    g->alts = NULL;
    g->nalts = 0;
    if ((err = expand(g, pattern, strlen(pattern))) != ZN_OK)
        zn_glob_release(g);
    return err;
}

void zn_glob_release(zn_glob_t *g)
{
    for (size_t i = 0; i < g->nalts; i++) {
        free(g->alts[i].pat);
        free(g->alts[i].segs);
    }
    free(g->alts);
    g->alts = NULL;
    g->nalts = 0;
}

/* ---- match -------------------------------------------------------------------------------------- */

#define NAME_SEGS_INLINE 32

bool zn_glob_match_counted(const zn_glob_t *g, const char *name, uint64_t *steps)
{
    zn_slice_t inline_segs[NAME_SEGS_INLINE], *segs = inline_segs;
    size_t n = 1, i = 0;
    bool hit = false;

    for (const char *p = name; *p != '\0'; p++)
        n += *p == '/';
    if (n > NAME_SEGS_INLINE)
        segs = zn_malloc(n * sizeof(*segs));
    for (const char *p = name;; i++) {
        const char *e = strchrnul(p, '/');
        segs[i] = zn_slice(p, (size_t)(e - p));
        if (*e == '\0')
            break;
        p = e + 1;
    }
    for (size_t a = 0; a < g->nalts && !hit; a++)
        hit = path_match(g->alts[a].segs, g->alts[a].nsegs, segs, n, steps);
    if (segs != inline_segs)
        free(segs);
    return hit;
}

bool zn_glob_match(const zn_glob_t *g, const char *name)
{
    uint64_t steps = 0;
    return zn_glob_match_counted(g, name, &steps);
}

bool zn_glob_matches(const char *pattern, const char *name)
{
    zn_glob_t g;
    if (zn_glob_compile(pattern, &g) != ZN_OK)
        return false;
    bool m = zn_glob_match(&g, name);
    zn_glob_release(&g);
    return m;
}
