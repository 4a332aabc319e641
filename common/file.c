/*
 * common/file.c - the one bounded whole-file reader (htpasswd, config.json, /proc files).
 *
 * A regular file is sized with fstat and read into one allocation of that size, so a
 * stable file costs one malloc and no copy (htpasswd wipes the buffer afterwards: no stale
 * copy of a hash is left behind by a realloc). A file whose size fstat does not tell
 * (/proc, a pipe) or that grows while it is read is read on until EOF, growing the buffer.
 * Reading one byte past the bound is the only way to tell "exactly max bytes" from "more",
 * so that byte goes through a one-byte probe rather than a bigger allocation.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/zn.h"

#define FILE_CHUNK 4096

/* read(2) that retries EINTR. */
static ssize_t read_some(int fd, void *p, size_t n)
{
    ssize_t r;
    while ((r = read(fd, p, n)) < 0 && errno == EINTR)
        ;
    return r;
}

/* Reads fd to EOF into b (which bounds it). */
static zn_err_t read_fd(int fd, size_t hint, zn_buf_t *b)
{
    for (;;) {
        size_t room = b->cap > b->len + 1 ? b->cap - b->len - 1 : 0;
        ssize_t r;
        if (room == 0) {
            char probe;
            if ((r = read_some(fd, &probe, 1)) <= 0)
                return r == 0 ? ZN_OK : ZN_EIO;
            if (zn_buf_append(b, &probe, 1) != ZN_OK)
                return ZN_ETOOBIG;
            /* more than fstat said (or it said nothing): grow by at least a chunk */
            size_t want = hint > b->len ? hint - b->len : FILE_CHUNK;
            if (want > b->max - b->len)
                want = b->max - b->len;
            if (want != 0)
                zn_buf_reserve(b, want);
            continue;
        }
        if ((r = read_some(fd, b->p + b->len, room)) < 0)
            return ZN_EIO;
        if (r == 0)
            return ZN_OK;
        b->len += (size_t)r;
        b->p[b->len] = '\0';
    }
}

zn_err_t zn_file_read(const char *path, size_t max, zn_buf_t *out, struct stat *st)
{
    zn_err_t err = ZN_EIO;
    struct stat local;
    int fd = -1, saved;

    zn_buf_init(out, max);
    if (st == NULL)
        st = &local;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
        err = errno == ENOENT || errno == ENOTDIR ? ZN_ENOENT : ZN_EIO;
        goto done;
    }
    if (fstat(fd, st) != 0)
        goto done;
    if (S_ISREG(st->st_mode) && (uint64_t)st->st_size > max) {
        err = ZN_ETOOBIG;
        goto done;
    }
    /* st_size 0 (/proc, pipes, an empty file): start from a chunk, grown on demand */
    size_t hint = S_ISREG(st->st_mode) && st->st_size > 0 ? (size_t)st->st_size : (max < FILE_CHUNK ? max : FILE_CHUNK);
    if (hint != 0)
        zn_buf_reserve(out, hint);
    if ((err = read_fd(fd, hint, out)) == ZN_OK)
        zn_buf_reserve(out, 0); /* an empty file still gives a NUL-terminated p */
done:
    saved = errno;
    if (fd != -1)
        close(fd);
    if (err != ZN_OK)
        zn_buf_release(out);
    errno = saved;
    return err;
}
