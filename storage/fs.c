/*
 * storage/fs.c - the filesystem primitives every storage file uses: bounded path building,
 * temp file + fsync (storage.commit) + rename, small whole-file reads with a maximum,
 * chunked hashing and verified copies. Large files are only ever touched in bounded chunks.
 *
 * fsync and rename are the slow calls: they go through st_sync_fd / st_sync_parent /
 * st_rename so that syscall instrumentation has one place to hook. The filesystem driver
 * (fs_driver.c) is built on these; storage code outside the two files reaches the disk
 * through the driver interface (driver.h), except for the parts listed in storage.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "storage/internal.h"

zn_err_t st_errno(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return ZN_ENOENT;
    case EEXIST:
        return ZN_EEXIST;
    case ENOMEM:
        return ZN_ENOMEM;
    case EACCES:
    case EPERM:
        return ZN_EDENIED;
    default:
        return ZN_EIO;
    }
}

zn_err_t st_path(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, PATH_MAX, fmt, ap);
    va_end(ap);
    return n < 0 || n >= PATH_MAX ? ZN_EINVAL : ZN_OK;
}

zn_err_t st_blob_path(zn_storage_t *st, char *buf, const char *repo, const zn_digest_t *d)
{
    return st_path(buf, "%s/%s/blobs/%s/%s", st->root, repo, zn_digest_algo_name(d->algo), zn_digest_hex(d));
}

void st_random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    if (n > sizeof(raw))
        n = sizeof(raw); /* callers ask for at most 16 */
    if (RAND_bytes(raw, (int)n) != 1) {
        zn_log(ZN_LOG_FATAL, "RAND_bytes failed");
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * n] = '\0';
}

#define ST_DIR_YOUNG_NS 10000000000ull /* a directory created this recently may not be synced yet */

/* fsyncs the directory holding path. Used with storage.commit only (callers check). */
static zn_err_t sync_dir_of(const char *path)
{
    char buf[PATH_MAX];
    if (st_path(buf, "%s", path) != ZN_OK)
        return ZN_EINVAL;
    zn_syscall_begin();
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e = errno;
    int r = fd != -1 ? fsync(fd) : -1;
    zn_syscall_end();
    if (fd == -1)
        return st_errno(e);
    close(fd);
    return r == 0 ? ZN_OK : ZN_EIO;
}

/* dir exists: make sure its entry (and its young parents') are durable. */
static zn_err_t settle_dir(char *buf, uint64_t now)
{
    struct stat sb;
    size_t n = strlen(buf);
    while (n > 1 && stat(buf, &sb) == 0 &&
           (uint64_t)sb.st_ctim.tv_sec * 1000000000ull + (uint64_t)sb.st_ctim.tv_nsec + ST_DIR_YOUNG_NS > now) {
        zn_err_t err = sync_dir_of(buf);
        if (err != ZN_OK)
            return err;
        char *slash = strrchr(buf, '/');
        if (slash == NULL || slash == buf)
            break;
        *slash = '\0';
        n = strlen(buf);
    }
    return ZN_OK;
}

static zn_err_t mkdirs(zn_storage_t *st, char *buf)
{
    if (mkdir(buf, 0700) == 0)
        return st->cfg->storage.commit ? sync_dir_of(buf) : ZN_OK;
    if (errno == EEXIST)
        return st->cfg->storage.commit ? settle_dir(buf, zn_now_wall_ns()) : ZN_OK;
    if (errno != ENOENT)
        return st_errno(errno);
    char *slash = strrchr(buf, '/');
    if (slash == NULL || slash == buf)
        return ZN_ENOENT;
    *slash = '\0';
    zn_err_t err = mkdirs(st, buf);
    *slash = '/';
    if (err != ZN_OK)
        return err;
    if (mkdir(buf, 0700) == 0)
        return st->cfg->storage.commit ? sync_dir_of(buf) : ZN_OK;
    if (errno == EEXIST)
        return st->cfg->storage.commit ? settle_dir(buf, zn_now_wall_ns()) : ZN_OK;
    return st_errno(errno);
}

zn_err_t st_mkdirs(zn_storage_t *st, const char *dir)
{
    char buf[PATH_MAX];
    size_t n = strlen(dir);
    if (n >= sizeof(buf))
        return ZN_EINVAL;
    memcpy(buf, dir, n + 1);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';
    return mkdirs(st, buf);
}

zn_err_t st_sync_fd(zn_storage_t *st, int fd)
{
    if (!st->cfg->storage.commit)
        return ZN_OK;
    zn_syscall_begin();
    int r = fsync(fd);
    zn_syscall_end();
    return r == 0 ? ZN_OK : ZN_EIO;
}

zn_err_t st_sync_parent(zn_storage_t *st, const char *path)
{
    return st->cfg->storage.commit ? sync_dir_of(path) : ZN_OK;
}

zn_err_t st_rename(const char *from, const char *to)
{
    zn_syscall_begin();
    int r = rename(from, to);
    zn_syscall_end(); /* preserves errno */
    return r == 0 ? ZN_OK : st_errno(errno);
}

static zn_err_t write_all(int fd, const void *bytes, size_t len)
{
    const char *p = bytes;
    while (len != 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return st_errno(errno);
        }
        p += w;
        len -= (size_t)w;
    }
    return ZN_OK;
}

/* Creates <tmpdir>/tmp-<random>, 0600. */
static zn_err_t open_temp(const char *tmpdir, char *path, int *fd)
{
    char rnd[33];
    st_random_hex(rnd, 16);
    if (st_path(path, "%s/tmp-%s", tmpdir, rnd) != ZN_OK)
        return ZN_EINVAL;
    if ((*fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1)
        return st_errno(errno);
    return ZN_OK;
}

zn_err_t st_write_atomic(zn_storage_t *st, const char *tmpdir, const char *path, const void *bytes, size_t len,
                         bool exclusive)
{
    char tmp[PATH_MAX];
    int fd = -1;
    zn_err_t err;

    if ((err = open_temp(tmpdir, tmp, &fd)) != ZN_OK)
        return err;
    if ((err = write_all(fd, bytes, len)) != ZN_OK || (err = st_sync_fd(st, fd)) != ZN_OK)
        goto done;
    if (close(fd) != 0) {
        fd = -1;
        err = ZN_EIO;
        goto done;
    }
    fd = -1;
    if (exclusive)
        err = link(tmp, path) == 0 ? ZN_OK : st_errno(errno);
    else
        err = st_rename(tmp, path);
    if (err == ZN_OK)
        err = st_sync_parent(st, path);
done:
    if (fd != -1)
        close(fd);
    if (exclusive || err != ZN_OK)
        unlink(tmp);
    return err;
}

zn_err_t st_read_file(const char *path, size_t max, char **out, size_t *len, struct stat *sbp)
{
    zn_buf_t b;
    zn_err_t err = zn_file_read(path, max, &b, sbp);
    if (err == ZN_OK)
        *out = zn_buf_detach(&b, len);
    return err;
}

zn_err_t st_hash_fd(int fd, uint64_t len, zn_hash_t *h)
{
    char *buf = zn_malloc(ST_COPY_CHUNK);
    zn_err_t err = ZN_OK;
    uint64_t off = 0;
    while (off < len) {
        size_t want = len - off < ST_COPY_CHUNK ? (size_t)(len - off) : ST_COPY_CHUNK;
        ssize_t r = pread(fd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = ZN_EIO;
            break;
        }
        if (r == 0) {
            err = len == UINT64_MAX ? ZN_OK : ZN_EIO;
            break;
        }
        zn_hash_update(h, buf, (size_t)r);
        off += (uint64_t)r;
    }
    free(buf);
    return err;
}

/* Copies all of in to out in bounded chunks, hashing as it goes. */
static zn_err_t copy_hashing(int in, int out, zn_hash_t *h)
{
    char *buf = zn_malloc(ST_COPY_CHUNK);
    zn_err_t err = ZN_OK;
    while (1) {
        ssize_t r = read(in, buf, ST_COPY_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            err = r == 0 ? ZN_OK : ZN_EIO;
            break;
        }
        zn_hash_update(h, buf, (size_t)r);
        if ((err = write_all(out, buf, (size_t)r)) != ZN_OK)
            break;
    }
    free(buf);
    return err;
}

zn_err_t st_copy_verified(zn_storage_t *st, const char *src, const char *tmpdir, const char *dst, const zn_digest_t *d)
{
    char tmp[PATH_MAX];
    int in = -1, out = -1;
    zn_hash_t *h = zn_hash_new(d->algo);
    zn_digest_t got;
    zn_err_t err;

    tmp[0] = '\0';
    if ((in = open(src, O_RDONLY | O_CLOEXEC)) == -1) {
        err = st_errno(errno);
        goto done;
    }
    if ((err = open_temp(tmpdir, tmp, &out)) != ZN_OK)
        goto done;
    if ((err = copy_hashing(in, out, h)) != ZN_OK || (err = st_sync_fd(st, out)) != ZN_OK)
        goto done;
    zn_hash_final(h, &got);
    if (!zn_digest_eq(&got, d)) {
        err = ZN_EDIGEST;
        goto done;
    }
    if (close(out) != 0) {
        out = -1;
        err = ZN_EIO;
        goto done;
    }
    out = -1;
    if ((err = st_rename(tmp, dst)) == ZN_OK)
        err = st_sync_parent(st, dst);
done:
    if (out != -1)
        close(out);
    if (in != -1)
        close(in);
    if (err != ZN_OK && tmp[0] != '\0')
        unlink(tmp);
    zn_hash_free(h);
    return err;
}

#define ST_TMP_STALE_NS (3600ull * 1000000000ull)

/* <root>/.zinc/tmp: local scratch space for whoever buffers request bodies (h2o's file-
 * backed buffers). Files idle for an hour are left-overs of a crash (h2o unlinks its
 * buffers right after creating them; another zinc process on the same root may be using
 * younger ones) and are removed. */
zn_err_t st_tmp_dir_init(zn_storage_t *st)
{
    char dir[PATH_MAX], path[PATH_MAX];
    struct dirent *de;
    struct stat sb;
    uint64_t now = zn_now_wall_ns();
    zn_err_t err;

    if ((err = st_path(dir, "%s/.zinc/tmp", st->root)) != ZN_OK || (err = st_mkdirs(st, dir)) != ZN_OK)
        return err;
    DIR *dh = opendir(dir);
    if (dh == NULL)
        return st_errno(errno);
    while ((de = readdir(dh)) != NULL) {
        if (st_path(path, "%s/%s", dir, de->d_name) != ZN_OK || lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        uint64_t mt = (uint64_t)sb.st_mtim.tv_sec * 1000000000ull + (uint64_t)sb.st_mtim.tv_nsec;
        if (mt + ST_TMP_STALE_NS < now)
            unlink(path);
    }
    closedir(dh);
    st->tmp_dir = zn_strdup(dir);
    return ZN_OK;
}
