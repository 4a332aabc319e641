/*
 * test/fuzz/fuzz.h - shared by the fuzz targets. FZ_CHECK states an invariant of a parser's
 * result; it aborts (a crash to libFuzzer, a failure to the replay) in every build, NDEBUG
 * or not, since the release replay runs with assert() compiled out.
 */
#ifndef ZN_FUZZ_H
#define ZN_FUZZ_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zn.h"

#define FZ_CHECK(cond)                                                                                                      \
    do {                                                                                                                    \
        if (!(cond)) {                                                                                                      \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);                                   \
            abort();                                                                                                        \
        }                                                                                                                   \
    } while (0)

/* Parsers log what they reject; at millions of inputs a second that is only noise. */
static inline void fz_quiet_logs(void)
{
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd != -1)
        zn_log_set_fd(fd);
    zn_log_set_level(ZN_LOG_FATAL);
}

/* An exact-size heap copy of data, not NUL-terminated, so that ASan reports a parser that
 * reads one byte past its input (libFuzzer's own buffer may have slack). The caller frees it. */
static inline char *fz_copy(const uint8_t *data, size_t size)
{
    char *s = malloc(size != 0 ? size : 1);
    if (s == NULL)
        abort();
    memcpy(s, data, size);
    return s;
}

/* A NUL-terminated heap copy of data (the caller frees it). */
static inline char *fz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Splits data at the first '\n': the head goes to *a (NUL-terminated copy, caller frees), the
 * rest is left in *rest / *rest_n. No newline: everything is the head. */
static inline char *fz_split(const uint8_t *data, size_t size, const uint8_t **rest, size_t *rest_n)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t n = nl != NULL ? (size_t)(nl - data) : size;
    *rest = nl != NULL ? nl + 1 : data + size;
    *rest_n = nl != NULL ? size - n - 1 : 0;
    return fz_cstr(data, n);
}

/* The "<head>\n<body>" inputs: the head as a NUL-terminated copy (returned), the body as an
 * exact-size fz_copy in *body / *body_n. The caller frees both. */
static inline char *fz_head_body(const uint8_t *data, size_t size, char **body, size_t *body_n)
{
    const uint8_t *rest;
    char *head = fz_split(data, size, &rest, body_n);
    *body = fz_copy(rest, *body_n);
    return head;
}

#endif
