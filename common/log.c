/*
 * common/log.c - JSON-lines logger in zot's shape: {"level","time","message",fields...}.
 *
 * Each line is formatted into a stack buffer and written with one write(2) so lines from
 * different threads never interleave. Strings are JSON-escaped; a line longer than the
 * buffer is cut at a field boundary and marked with "truncated":true.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/zn.h"

static _Atomic int log_level = ZN_LOG_INFO;
static _Atomic int log_fd = 2;

static const char *level_names[] = {"debug", "info", "warn", "error", "fatal"};

void zn_log_set_level(zn_log_level_t level)
{
    log_level = level;
}

zn_log_level_t zn_log_get_level(void)
{
    return (zn_log_level_t)log_level;
}

void zn_log_set_fd(int fd)
{
    log_fd = fd;
}

zn_err_t zn_log_level_parse(const char *s, zn_log_level_t *out)
{
    static const struct {
        const char *name;
        zn_log_level_t level;
    } map[] = {{"debug", ZN_LOG_DEBUG}, {"info", ZN_LOG_INFO},   {"warn", ZN_LOG_WARN},  {"warning", ZN_LOG_WARN},
               {"error", ZN_LOG_ERROR}, {"fatal", ZN_LOG_FATAL}, {"panic", ZN_LOG_FATAL}, {"trace", ZN_LOG_DEBUG}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(s, map[i].name) == 0) {
            *out = map[i].level;
            return ZN_OK;
        }
    }
    return ZN_EINVAL;
}

typedef struct {
    char *p;
    size_t len, cap;
    bool full;
} line_t;

static void put(line_t *l, const char *s, size_t n)
{
    if (l->full || n > l->cap - l->len) {
        l->full = true;
        return;
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void put_str(line_t *l, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put(l, "\"", 1);
    for (size_t i = 0; i < n && !l->full; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(l, e, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c == '\t') {
            put(l, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(l, e, 6);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
    put(l, "\"", 1);
}

static void put_field(line_t *l, const zn_log_field_t *f)
{
    char num[64];
    int n = 0;
    put(l, ",", 1);
    put_str(l, f->key, strlen(f->key));
    put(l, ":", 1);
    switch (f->type) {
    case ZN_LF_STR:
        if (f->v.s == NULL)
            put(l, "null", 4);
        else
            put_str(l, f->v.s, f->slen == SIZE_MAX ? strlen(f->v.s) : f->slen);
        return;
    case ZN_LF_INT:
        n = snprintf(num, sizeof(num), "%lld", f->v.i);
        break;
    case ZN_LF_UINT:
        n = snprintf(num, sizeof(num), "%llu", f->v.u);
        break;
    case ZN_LF_DOUBLE:
        n = snprintf(num, sizeof(num), "%.6g", f->v.d);
        break;
    case ZN_LF_BOOL:
        n = snprintf(num, sizeof(num), "%s", f->v.i ? "true" : "false");
        break;
    case ZN_LF_END:
        return;
    }
    if (n > 0 && (size_t)n < sizeof(num))
        put(l, num, (size_t)n);
}

void zn_log_write(zn_log_level_t level, const char *msg, const zn_log_field_t *fields)
{
    if ((int)level < log_level)
        return;
    zn_log_write_fd(log_fd, level, msg, fields);
}

void zn_log_write_fd(int fd, zn_log_level_t level, const char *msg, const zn_log_field_t *fields)
{
    char buf[8192], ts[48];
    line_t l = {buf, 0, sizeof(buf) - 32, false};
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    int n = tl > 0 ? snprintf(ts + tl, sizeof(ts) - tl, ".%09ldZ", now.tv_nsec) : -1;
    if (n < 0 || (size_t)n >= sizeof(ts) - tl)
        ts[0] = '\0'; /* a year past 9999: "time":"" rather than a cut stamp */

    put(&l, "{\"level\":\"", 10);
    put(&l, level_names[level], strlen(level_names[level]));
    put(&l, "\",\"time\":", 9);
    put_str(&l, ts, strlen(ts));
    put(&l, ",\"message\":", 11);
    put_str(&l, msg, strlen(msg));
    for (const zn_log_field_t *f = fields; f != NULL && f->type != ZN_LF_END; f++) {
        size_t before = l.len;
        put_field(&l, f);
        if (l.full) {
            l.len = before;
            l.full = false;
            l.cap = sizeof(buf);
            put(&l, ",\"truncated\":true", 17);
            break;
        }
    }
    l.cap = sizeof(buf);
    put(&l, "}\n", 2);
    ssize_t off = 0;
    while ((size_t)off < l.len) {
        ssize_t w = write(fd, buf + off, l.len - (size_t)off);
        if (w <= 0)
            break;
        off += w;
    }
}
