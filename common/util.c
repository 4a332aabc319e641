/*
 * common/util.c - error strings, allocation wrappers, bounded buffers, number parsing and
 * clocks shared by every module.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/zn.h"

const char *zn_err_str(zn_err_t err)
{
    switch (err) {
    case ZN_OK:
        return "ok";
    case ZN_ENOENT:
        return "not found";
    case ZN_EEXIST:
        return "already exists";
    case ZN_EINVAL:
        return "invalid input";
    case ZN_EDIGEST:
        return "digest mismatch";
    case ZN_ERANGE:
        return "range not satisfiable";
    case ZN_ETOOBIG:
        return "too large";
    case ZN_EIO:
        return "I/O error";
    case ZN_ENOMEM:
        return "out of memory";
    case ZN_EBUSY:
        return "busy";
    case ZN_EUNSUPP:
        return "unsupported";
    case ZN_EDENIED:
        return "denied";
    case ZN_EAGAIN:
        return "backend busy, retry later";
    }
    return "unknown error";
}

static void oom(size_t n)
{
    char msg[64];
    int len = snprintf(msg, sizeof(msg), "zinc: out of memory allocating %zu bytes\n", n);
    if (len > 0 && write(2, msg, (size_t)len) < 0) {
        /* nothing more to do */
    }
    abort();
}

void *zn_malloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL && n != 0)
        oom(n);
    return p;
}

void *zn_calloc(size_t n, size_t sz)
{
    void *p = calloc(n, sz);
    if (p == NULL && n != 0 && sz != 0)
        oom(n * sz);
    return p;
}

void *zn_realloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL && n != 0)
        oom(n);
    return q;
}

char *zn_strdup(const char *s)
{
    size_t n = strlen(s);
    char *p = zn_malloc(n + 1);
    memcpy(p, s, n + 1);
    return p;
}

bool zn_slice_eq(zn_slice_t a, const char *lit)
{
    size_t n = strlen(lit);
    return a.n == n && memcmp(a.p, lit, n) == 0;
}

char *zn_slice_dup(zn_slice_t s)
{
    char *p = zn_malloc(s.n + 1);
    if (s.n != 0)
        memcpy(p, s.p, s.n);
    p[s.n] = '\0';
    return p;
}

void zn_buf_init(zn_buf_t *b, size_t max)
{
    b->p = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void zn_buf_release(zn_buf_t *b)
{
    free(b->p);
    zn_buf_init(b, b->max);
}

static zn_err_t buf_reserve(zn_buf_t *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return ZN_ETOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return ZN_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    b->p = zn_realloc(b->p, cap);
    b->cap = cap;
    return ZN_OK;
}

zn_err_t zn_buf_reserve(zn_buf_t *b, size_t extra)
{
    zn_err_t err = buf_reserve(b, extra);
    if (err == ZN_OK)
        b->p[b->len] = '\0';
    return err;
}

zn_err_t zn_buf_append(zn_buf_t *b, const void *p, size_t n)
{
    zn_err_t err;
    if ((err = buf_reserve(b, n)) != ZN_OK)
        return err;
    if (n != 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return ZN_OK;
}

zn_err_t zn_buf_printf(zn_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return ZN_EINVAL;
    if ((size_t)n < sizeof(small))
        return zn_buf_append(b, small, (size_t)n);
    zn_err_t err;
    if ((err = buf_reserve(b, (size_t)n)) != ZN_OK)
        return err;
    va_start(ap, fmt);
    int again = vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (again != n) { /* the same format and arguments: only a broken libc differs */
        b->p[b->len] = '\0';
        return ZN_EINVAL;
    }
    b->len += (size_t)n;
    return ZN_OK;
}

bool zn_errf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (cap == 0)
        return false;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n < 0) {
        buf[0] = '\0';
        return false;
    }
    if ((size_t)n < cap)
        return true;
    if (cap > 4)
        memcpy(buf + cap - 4, "...", 4);
    return false;
}

char *zn_buf_detach(zn_buf_t *b, size_t *len)
{
    char *p = b->p;
    if (p == NULL)
        p = zn_strdup("");
    if (len != NULL)
        *len = b->len;
    zn_buf_init(b, b->max);
    return p;
}

zn_err_t zn_parse_u64(zn_slice_t s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (s.n == 0 || s.n > 20)
        return ZN_EINVAL;
    for (size_t i = 0; i < s.n; i++) {
        unsigned d = (unsigned char)s.p[i] - '0';
        if (d > 9)
            return ZN_EINVAL;
        if (v > (UINT64_MAX - d) / 10)
            return ZN_ERANGE;
        v = v * 10 + d;
    }
    if (v > max)
        return ZN_ERANGE;
    *out = v;
    return ZN_OK;
}

int zn_hex_digit(char c, bool any_case)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (any_case && c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

uint64_t zn_now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t zn_now_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
