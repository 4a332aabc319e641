/*
 * api/parse.c - parsers for what arrives on the wire: query parameters, Range and
 * Content-Range headers, manifest references and page sizes. Pure functions on
 * pointer + length with explicit maxima; unit-tested in test/unit/api/test_parse.c.
 */
#include <string.h>
#include <strings.h>

#include "api/internal.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static zn_err_t decode(zn_slice_t v, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < v.n; i++) {
        char c = v.p[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= v.n)
                return ZN_EINVAL;
            if ((hi = hexval(v.p[i + 1])) < 0 || (lo = hexval(v.p[i + 2])) < 0)
                return ZN_EINVAL;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0' || n + 1 >= outlen)
            return ZN_EINVAL;
        out[n++] = c;
    }
    out[n] = '\0';
    return ZN_OK;
}

zn_err_t zn_api_query_get_nth(zn_slice_t q, const char *name, size_t nth, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    const char *p = q.p, *end = q.p + q.n;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *pend = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pend - p));
        const char *kend = eq != NULL ? eq : pend;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0 && nth-- == 0) {
            zn_slice_t v = eq != NULL ? zn_slice(eq + 1, (size_t)(pend - eq - 1)) : zn_slice("", 0);
            return decode(v, out, outlen);
        }
        p = pend + 1;
    }
    return ZN_ENOENT;
}

zn_err_t zn_api_query_get(zn_slice_t q, const char *name, char *out, size_t outlen)
{
    return zn_api_query_get_nth(q, name, 0, out, outlen);
}

/* Reads digits at *p (before end) into *v; ZN_EINVAL if none or overflow. */
static zn_err_t read_num(const char **p, const char *end, uint64_t *v)
{
    const char *s = *p;
    while (*p < end && **p >= '0' && **p <= '9')
        (*p)++;
    if (*p == s)
        return ZN_EINVAL;
    return zn_parse_u64(zn_slice(s, (size_t)(*p - s)), UINT64_MAX, v) == ZN_OK ? ZN_OK : ZN_EINVAL;
}

static zn_slice_t trim(zn_slice_t s)
{
    while (s.n != 0 && (s.p[0] == ' ' || s.p[0] == '\t'))
        s.p++, s.n--;
    while (s.n != 0 && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t'))
        s.n--;
    return s;
}

zn_err_t zn_api_range_parse(zn_slice_t header, uint64_t size, zn_api_range_t *out)
{
    zn_slice_t h = trim(header);
    uint64_t a = 0, b = UINT64_MAX;
    if (h.n < 6 || strncasecmp(h.p, "bytes=", 6) != 0)
        return ZN_EINVAL;
    const char *p = h.p + 6, *end = h.p + h.n;
    while (p < end && *p == ' ')
        p++;
    if (p < end && *p == '-') { /* suffix: the last n bytes */
        p++;
        if (read_num(&p, end, &b) != ZN_OK || p != end)
            return ZN_EINVAL;
        if (b == 0 || size == 0)
            return ZN_ERANGE;
        out->first = b >= size ? 0 : size - b;
        out->last = size - 1;
        return ZN_OK;
    }
    if (read_num(&p, end, &a) != ZN_OK || p == end || *p++ != '-')
        return ZN_EINVAL;
    if (p != end && (read_num(&p, end, &b) != ZN_OK || b < a))
        return ZN_EINVAL;
    if (p != end)
        return ZN_EINVAL; /* trailing bytes, or a multi-range */
    if (a >= size)
        return ZN_ERANGE;
    out->first = a;
    out->last = b >= size ? size - 1 : b;
    return ZN_OK;
}

zn_err_t zn_api_content_range_parse(zn_slice_t header, zn_api_range_t *out)
{
    zn_slice_t h = trim(header);
    uint64_t a, b, total;
    if (h.n >= 6 && (strncasecmp(h.p, "bytes ", 6) == 0 || strncasecmp(h.p, "bytes=", 6) == 0))
        h = trim(zn_slice(h.p + 6, h.n - 6));
    const char *p = h.p, *end = h.p + h.n;
    if (read_num(&p, end, &a) != ZN_OK || p == end || *p++ != '-' || read_num(&p, end, &b) != ZN_OK || b < a)
        return ZN_EINVAL;
    if (p != end) {
        if (*p++ != '/')
            return ZN_EINVAL;
        if (!(p + 1 == end && *p == '*') && (read_num(&p, end, &total) != ZN_OK || p != end || total <= b))
            return ZN_EINVAL;
    }
    out->first = a;
    out->last = b;
    return ZN_OK;
}

zn_err_t zn_api_ref_parse(zn_slice_t ref, zn_api_ref_t *out)
{
    zn_err_t err;
    memset(out, 0, sizeof(*out));
    if (ref.n != 0 && memchr(ref.p, ':', ref.n) != NULL) {
        if ((err = zn_digest_parse(ref, &out->digest)) != ZN_OK)
            return err;
        out->is_digest = true;
        memcpy(out->text, out->digest.str, out->digest.len + 1);
        return ZN_OK;
    }
    if (!zn_storage_tag_valid(ref))
        return ZN_EINVAL;
    memcpy(out->text, ref.p, ref.n);
    out->text[ref.n] = '\0';
    return ZN_OK;
}

zn_err_t zn_api_page_size_parse(const char *s, size_t max, size_t *out)
{
    size_t len = strlen(s);
    uint64_t v;
    if (len == 0 || strspn(s, "0123456789") != len)
        return ZN_EINVAL;
    if (zn_parse_u64(zn_slice(s, len), UINT64_MAX, &v) != ZN_OK || v > max)
        v = max; /* more than there can be: the caller asked for everything */
    *out = (size_t)v;
    return ZN_OK;
}
