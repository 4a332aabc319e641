/*
 * common/edge/quote.c - the edge's pure string work: query parameter lookup with
 * percent-decoding, Go's strconv.Quote, and WWW-Authenticate challenges (contracts in
 * edge.h). No h2o calls: unit-tested in test/unit/edge/test_quote.c. The table of printable
 * runes is generated (print.inc, by gen_print.py).
 *
 * Quoting follows Go's strconv.Quote rune by rune: the input is decoded as UTF-8 the way
 * Go's utf8.DecodeRuneInString does (shortest form only, no surrogates, at most U+10FFFF;
 * anything else is one invalid byte), and each rune is kept or escaped by the rules of
 * strconv.appendEscapedRune. zot writes its realm with %q, so a realm holding quotes,
 * backslashes, control bytes or non-ASCII text gets the same challenge from zinc.
 */
#include <string.h>

#include "common/edge/edge.h"

/* ---- query parameters ----------------------------------------------------------------------- */

static zn_err_t decode(zn_slice_t v, unsigned flags, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < v.n; i++) {
        char c = v.p[i];
        if (c == '%') {
            int hi, lo;
            if (v.n - i < 3 || (hi = zn_hex_digit(v.p[i + 1], true)) < 0 || (lo = zn_hex_digit(v.p[i + 2], true)) < 0)
                return ZN_EINVAL;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && (flags & ZN_EDGE_QUERY_PLUS_SPACE)) {
            c = ' ';
        }
        if (c == '\0' || n + 1 >= outlen)
            return ZN_EINVAL;
        out[n++] = c;
    }
    if (outlen == 0)
        return ZN_EINVAL;
    out[n] = '\0';
    return ZN_OK;
}

zn_err_t zn_edge_query_get(zn_slice_t q, const char *name, size_t nth, unsigned flags, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    const char *p = q.p, *end = q.p + q.n;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *pend = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pend - p));
        const char *kend = eq != NULL ? eq : pend;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0 && nth-- == 0) {
            zn_slice_t v = eq != NULL ? zn_slice(eq + 1, (size_t)(pend - eq - 1)) : zn_slice("", 0);
            return decode(v, flags, out, outlen);
        }
        p = pend + 1;
    }
    return ZN_ENOENT;
}

/* ---- Go's strconv.Quote ------------------------------------------------------------------------ */

#include "common/edge/print.inc"

bool zn_edge_is_print(uint32_t r)
{
    if (r < 0x80)
        return r >= 0x20 && r < 0x7f;
    size_t lo = 0, hi = sizeof(print_ranges) / sizeof(print_ranges[0]);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r < print_ranges[mid][0])
            hi = mid;
        else if (r > print_ranges[mid][1])
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

/* One rune at p (n > 0 bytes left): its value and length, or *r = -1 and length 1 when the
 * bytes are not the shortest UTF-8 form of a valid rune (Go's RuneError, width 1). */
static size_t utf8_decode(const unsigned char *p, size_t n, int32_t *r)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t v, min;

    *r = -1;
    if (c < 0x80) {
        *r = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, v = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, v = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, v = c & 0x07, min = 0x10000;
    else
        return 1;
    if (n < len)
        return 1;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 1;
        v = v << 6 | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 1;
    *r = (int32_t)v;
    return len;
}

static zn_err_t append_hex(zn_buf_t *b, const char *prefix, uint32_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[12];
    size_t n = strlen(prefix);
    memcpy(tmp, prefix, n);
    for (int i = digits - 1; i >= 0; i--)
        tmp[n++] = hex[(v >> (4 * i)) & 0xf];
    return zn_buf_append(b, tmp, n);
}

/* strconv.appendEscapedRune for a valid rune r whose UTF-8 bytes are p[0..len). */
static zn_err_t append_rune(zn_buf_t *b, uint32_t r, const unsigned char *p, size_t len)
{
    static const char named[] = {['\a'] = 'a', ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n',
                                 ['\r'] = 'r', ['\t'] = 't', ['\v'] = 'v'};
    char esc[2] = {'\\', 0};

    if (r == '"' || r == '\\') {
        esc[1] = (char)r;
        return zn_buf_append(b, esc, 2);
    }
    if (zn_edge_is_print(r))
        return zn_buf_append(b, p, len);
    if (r < sizeof(named) && named[r] != 0) {
        esc[1] = named[r];
        return zn_buf_append(b, esc, 2);
    }
    if (r < ' ' || r == 0x7f)
        return append_hex(b, "\\x", r, 2);
    return r < 0x10000 ? append_hex(b, "\\u", r, 4) : append_hex(b, "\\U", r, 8);
}

zn_err_t zn_edge_quote(zn_buf_t *b, zn_slice_t s)
{
    const unsigned char *p = (const unsigned char *)s.p, *end = p + s.n;
    zn_err_t err = zn_buf_append(b, "\"", 1);

    while (err == ZN_OK && p < end) {
        int32_t r;
        size_t len = utf8_decode(p, (size_t)(end - p), &r);
        err = r < 0 ? append_hex(b, "\\x", *p, 2) : append_rune(b, (uint32_t)r, p, len);
        p += len;
    }
    return err == ZN_OK ? zn_buf_append(b, "\"", 1) : err;
}

/* ---- challenges --------------------------------------------------------------------------------- */

static zn_err_t append_raw(zn_buf_t *b, const char *s)
{
    zn_err_t err = ZN_OK;
    for (const unsigned char *p = (const unsigned char *)s; err == ZN_OK && *p != '\0'; p++)
        if (*p >= 0x20 && *p != 0x7f)
            err = zn_buf_append(b, p, 1);
    return err;
}

zn_err_t zn_edge_challenge(zn_buf_t *b, const char *scheme, const zn_edge_param_t *params, size_t n, bool quote)
{
    zn_err_t err = zn_buf_append(b, scheme, strlen(scheme));
    for (size_t i = 0; err == ZN_OK && i < n; i++) {
        if ((err = zn_buf_append(b, i == 0 ? " " : ",", 1)) != ZN_OK ||
            (err = zn_buf_append(b, params[i].key, strlen(params[i].key))) != ZN_OK || (err = zn_buf_append(b, "=", 1)) != ZN_OK)
            break;
        err = quote ? zn_edge_quote(b, zn_slice(params[i].value, strlen(params[i].value))) : append_raw(b, params[i].value);
    }
    return err;
}
