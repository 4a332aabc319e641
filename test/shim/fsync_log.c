/*
 * test/shim/fsync_log.c - LD_PRELOAD shim for the power-cut test (test/e2e/test_powercut.py).
 *
 * A power cut loses whatever the kernel had not written back: file data not fsynced, and
 * directory entries (a rename, a link) whose directory was not fsynced. Rather than cutting
 * power, this shim records, for files under $ZN_SHIM_ROOT, every call that changes data or
 * makes it durable, one line each with a CLOCK_MONOTONIC timestamp, to $ZN_SHIM_LOG:
 *   W <ns> <path>          write/pwrite/writev/ftruncate on a file
 *   S <ns> <path>          fsync/fdatasync of a file or a directory
 *   R <ns> <from> <to>     rename (also link: L)
 *   M <ns> <path>          mkdir (a new entry in its parent, like a rename)
 * The test replays the log and, for every 201 the client received, checks that the object's
 * bytes were fsynced after their last write and before the rename that published them, and
 * that the directory was fsynced after that rename, all before the 201. What it checks is
 * exactly what survives a power cut on a journalling filesystem (ext4/xfs data=ordered).
 *
 * Each line goes out in one write(2) on an O_APPEND descriptor, so threads never interleave.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_FD 65536

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *paths[MAX_FD]; /* fd -> absolute path, only for files under the root */
static int log_fd = -2;
static const char *root;
static size_t root_len;

#define REAL(name, ret, ...)                                                                                                       \
    static ret (*real_##name)(__VA_ARGS__);                                                                                        \
    if (real_##name == NULL)                                                                                                       \
        real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name);

static ssize_t raw_write(int fd, const void *p, size_t n)
{
    REAL(write, ssize_t, int, const void *, size_t);
    return real_write(fd, p, n);
}

static void init(void)
{
    if (log_fd != -2)
        return;
    const char *lp = getenv("ZN_SHIM_LOG");
    root = getenv("ZN_SHIM_ROOT");
    root_len = root != NULL ? strlen(root) : 0;
    int (*ropen)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
    log_fd = lp != NULL && root != NULL ? ropen(lp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
}

static int under_root(const char *p)
{
    return p != NULL && root_len != 0 && strncmp(p, root, root_len) == 0 && (p[root_len] == '/' || p[root_len] == '\0');
}

static void emit(char kind, const char *a, const char *b)
{
    char line[2 * PATH_MAX + 64];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int n = snprintf(line, sizeof(line), "%c %lld %s%s%s\n", kind, (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec, a,
                     b != NULL ? " " : "", b != NULL ? b : "");
    if (n > 0 && (size_t)n < sizeof(line))
        raw_write(log_fd, line, (size_t)n);
}

/* Logs kind for fd if it is a tracked file. errno is preserved. */
static void fd_event(char kind, int fd)
{
    int e = errno;
    pthread_mutex_lock(&lock);
    init();
    if (log_fd >= 0 && fd >= 0 && fd < MAX_FD && paths[fd] != NULL)
        emit(kind, paths[fd], NULL);
    pthread_mutex_unlock(&lock);
    errno = e;
}

static void track(int fd, int dirfd, const char *path)
{
    char buf[PATH_MAX];
    int e = errno;
    if (fd < 0 || fd >= MAX_FD || path == NULL)
        return;
    if (path[0] != '/') {
        if (dirfd != AT_FDCWD)
            return; /* relative to a directory fd: zinc only reads that way (scrub) */
        if (getcwd(buf, sizeof(buf)) == NULL || strlen(buf) + strlen(path) + 2 > sizeof(buf))
            return;
        strcat(buf, "/");
        strcat(buf, path);
        path = buf;
    }
    pthread_mutex_lock(&lock);
    init();
    free(paths[fd]);
    paths[fd] = under_root(path) ? strdup(path) : NULL;
    pthread_mutex_unlock(&lock);
    errno = e;
}

static int mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    int mode = mode_arg(flags, ap);
    va_end(ap);
    REAL(open, int, const char *, int, ...);
    int fd = real_open(path, flags, mode);
    track(fd, AT_FDCWD, path);
    return fd;
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    int mode = mode_arg(flags, ap);
    va_end(ap);
    REAL(open64, int, const char *, int, ...);
    int fd = real_open64(path, flags, mode);
    track(fd, AT_FDCWD, path);
    return fd;
}

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    int mode = mode_arg(flags, ap);
    va_end(ap);
    REAL(openat, int, int, const char *, int, ...);
    int fd = real_openat(dirfd, path, flags, mode);
    track(fd, dirfd, path);
    return fd;
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    int mode = mode_arg(flags, ap);
    va_end(ap);
    REAL(openat64, int, int, const char *, int, ...);
    int fd = real_openat64(dirfd, path, flags, mode);
    track(fd, dirfd, path);
    return fd;
}

int close(int fd)
{
    REAL(close, int, int);
    if (fd >= 0 && fd < MAX_FD) {
        pthread_mutex_lock(&lock);
        free(paths[fd]);
        paths[fd] = NULL;
        pthread_mutex_unlock(&lock);
    }
    return real_close(fd);
}

ssize_t write(int fd, const void *p, size_t n)
{
    ssize_t r = raw_write(fd, p, n);
    if (r > 0)
        fd_event('W', fd);
    return r;
}

ssize_t pwrite(int fd, const void *p, size_t n, off_t off)
{
    REAL(pwrite, ssize_t, int, const void *, size_t, off_t);
    ssize_t r = real_pwrite(fd, p, n, off);
    if (r > 0)
        fd_event('W', fd);
    return r;
}

ssize_t pwrite64(int fd, const void *p, size_t n, off_t off)
{
    REAL(pwrite64, ssize_t, int, const void *, size_t, off_t);
    ssize_t r = real_pwrite64(fd, p, n, off);
    if (r > 0)
        fd_event('W', fd);
    return r;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    REAL(writev, ssize_t, int, const struct iovec *, int);
    ssize_t r = real_writev(fd, iov, cnt);
    if (r > 0)
        fd_event('W', fd);
    return r;
}

int ftruncate(int fd, off_t len)
{
    REAL(ftruncate, int, int, off_t);
    int r = real_ftruncate(fd, len);
    if (r == 0)
        fd_event('W', fd);
    return r;
}

int ftruncate64(int fd, off_t len)
{
    REAL(ftruncate64, int, int, off_t);
    int r = real_ftruncate64(fd, len);
    if (r == 0)
        fd_event('W', fd);
    return r;
}

int fsync(int fd)
{
    REAL(fsync, int, int);
    int r = real_fsync(fd);
    if (r == 0)
        fd_event('S', fd);
    return r;
}

int fdatasync(int fd)
{
    REAL(fdatasync, int, int);
    int r = real_fdatasync(fd);
    if (r == 0)
        fd_event('S', fd);
    return r;
}

static void path_event(char kind, const char *from, const char *to)
{
    int e = errno;
    pthread_mutex_lock(&lock);
    init();
    if (log_fd >= 0 && (under_root(from) || (to != NULL && under_root(to))))
        emit(kind, from, to);
    pthread_mutex_unlock(&lock);
    errno = e;
}

int rename(const char *from, const char *to)
{
    REAL(rename, int, const char *, const char *);
    int r = real_rename(from, to);
    if (r == 0)
        path_event('R', from, to);
    return r;
}

int link(const char *from, const char *to)
{
    REAL(link, int, const char *, const char *);
    int r = real_link(from, to);
    if (r == 0)
        path_event('L', from, to);
    return r;
}

int mkdir(const char *path, mode_t mode)
{
    REAL(mkdir, int, const char *, mode_t);
    int r = real_mkdir(path, mode);
    if (r == 0)
        path_event('M', path, NULL);
    return r;
}
