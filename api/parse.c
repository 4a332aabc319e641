/*
 * api/parse.c - parsers for what arrives on the wire: Range and Content-Range headers,
 * manifest references and page sizes (query parameters are the edge's, common/edge/). Pure functions on
 * pointer + length with explicit maxima; unit-tested in test/unit/api/test_parse.c.
 */
#include <string.h>
#include <strings.h>

#include "api/internal.h"

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
