/*
 * test/shim/hold_open.c - LD_PRELOAD shim that makes chosen opens wait, for the tests that
 * show which thread does a piece of disk work (test/e2e/test_off_loop.py).
 *
 * While the file $ZN_HOLD_FILE exists, an open(2)/openat(2) of a path containing
 * $ZN_HOLD_MATCH waits: it first appends "<thread name> <path>\n" to $ZN_HELD_LOG (one
 * write on an O_APPEND descriptor), then polls every millisecond until $ZN_HOLD_FILE is
 * gone, then opens for real. So a test can stall exactly the disk access it cares about,
 * learn from the log that it has started and on which thread (zinc names every thread),
 * check that the server still answers meanwhile, and release it by deleting the file.
 * Without the variables set the shim only forwards.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);

static void hold(const char *path)
{
    const char *match = getenv("ZN_HOLD_MATCH"), *file = getenv("ZN_HOLD_FILE"), *log = getenv("ZN_HELD_LOG");
    struct stat sb;
    if (match == NULL || file == NULL || log == NULL || path == NULL || strstr(path, match) == NULL)
        return;
    if (stat(file, &sb) != 0)
        return;
    static open_fn real_open;
    if (real_open == NULL)
        real_open = (open_fn)dlsym(RTLD_NEXT, "open");
    char name[32] = "?", line[4200];
    pthread_getname_np(pthread_self(), name, sizeof(name));
    int n = snprintf(line, sizeof(line), "%s %s\n", name, path);
    int fd = real_open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (n > 0 && (size_t)n < sizeof(line) && write(fd, line, (size_t)n) != n) {
            /* nothing to do: the test times out waiting for the line */
        }
        close(fd);
    }
    struct timespec ms = {0, 1000000};
    while (stat(file, &sb) == 0)
        nanosleep(&ms, NULL);
}

static mode_t mode_of(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

#define OPEN_WRAPPER(fname)                                                                                            \
    int fname(const char *path, int flags, ...)                                                                        \
    {                                                                                                                  \
        static open_fn real;                                                                                           \
        va_list ap;                                                                                                    \
        va_start(ap, flags);                                                                                           \
        mode_t mode = mode_of(flags, ap);                                                                              \
        va_end(ap);                                                                                                    \
        if (real == NULL)                                                                                              \
            real = (open_fn)dlsym(RTLD_NEXT, #fname);                                                                  \
        hold(path);                                                                                                    \
        return real(path, flags, mode);                                                                                \
    }

#define OPENAT_WRAPPER(fname)                                                                                          \
    int fname(int dirfd, const char *path, int flags, ...)                                                             \
    {                                                                                                                  \
        static openat_fn real;                                                                                         \
        va_list ap;                                                                                                    \
        va_start(ap, flags);                                                                                           \
        mode_t mode = mode_of(flags, ap);                                                                              \
        va_end(ap);                                                                                                    \
        if (real == NULL)                                                                                              \
            real = (openat_fn)dlsym(RTLD_NEXT, #fname);                                                                \
        hold(path);                                                                                                    \
        return real(dirfd, path, flags, mode);                                                                         \
    }

OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)
OPENAT_WRAPPER(openat)
OPENAT_WRAPPER(openat64)
