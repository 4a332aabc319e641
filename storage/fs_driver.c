/*
 * storage/fs_driver.c - the filesystem driver (driver.h): keys are paths under the store's
 * root, objects are files, versions are (inode, size, mtime) stamps, append sessions are
 * files grown with pwrite, and commit is fsync + rename. Together with the primitives of
 * fs.c this is where the store's POSIX calls live.
 *
 * Temp files. An atomic put writes a temp file next to where zot keeps its own: in the
 * repository's .uploads for a repository key (<repo>/index.json, <repo>/blobs/...), in the
 * key's own directory under .zinc/. So a rename never crosses a directory tree GC or scrub
 * would misread, and GC removes what a crash leaves (stale tmp- files in .uploads).
 *
 * Versions. A replaced file always gets a new inode (temp + rename), and the old inode is
 * still alive when the new one is made, so the stamp of a file written by put_if differs
 * from the stamp it replaced. put_if compares under an flock on the file it replaces, so
 * two writers (threads or zinc processes on one root) cannot both win. A writer that takes no lock
 * (zot) and replaces the file twice within one timestamp tick with a file of the same size
 * could recycle the inode and fool the compare; zot itself has no such check at all.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "storage/internal.h"

typedef struct fs_driver {
    st_driver_t super;
    zn_storage_t *st;
} fs_driver_t;

struct st_object {
    int fd;
    uint64_t size;
};

struct st_append {
    fs_driver_t *d;
    int fd;
    char path[PATH_MAX];
};

static zn_err_t key_path(st_driver_t *_d, char *buf, const char *key)
{
    fs_driver_t *d = (void *)_d;
    return st_path(buf, "%s/%s", d->st->root, key);
}

/* Whether key[0..n) ends with "/<part>" (and what precedes it is not empty). */
static bool ends_with(const char *key, size_t n, const char *part)
{
    size_t m = strlen(part);
    return n > m + 1 && key[n - m - 1] == '/' && memcmp(key + n - m, part, m) == 0;
}

/* Where a temp file for key goes (see the top of the file): the directory of a .zinc/ or
 * .uploads/ key; <repo>/.uploads for a blob <repo>/blobs/<algo>/<hex> and for any other
 * file of a repository <repo>/<file>. */
static zn_err_t tmp_dir_for(st_driver_t *_d, char *buf, const char *key)
{
    fs_driver_t *d = (void *)_d;
    const char *slash = strrchr(key, '/');
    if (slash == NULL)
        return ZN_EINVAL;
    size_t dir = (size_t)(slash - key), hex = strlen(slash + 1);
    if (strncmp(key, ".zinc/", 6) == 0 || ends_with(key, dir, ".uploads"))
        return st_path(buf, "%s/%.*s", d->st->root, (int)dir, key);
    bool algo = ends_with(key, dir, "sha256") || ends_with(key, dir, "sha512");
    if (algo && (hex == 64 || hex == 128) && strspn(slash + 1, "0123456789abcdef") == hex && ends_with(key, dir - 7, "blobs"))
        dir -= 7 + 6; /* "/blobs" + "/sha256": the repository's own directory */
    return st_path(buf, "%s/%.*s/.uploads", d->st->root, (int)dir, key);
}

static void stamp(const struct stat *sb, st_version_t *ver)
{
    int n = snprintf(ver->v, sizeof(ver->v), "%llx:%llx:%lld.%09ld", (unsigned long long)sb->st_ino,
                     (unsigned long long)sb->st_size, (long long)sb->st_mtim.tv_sec, sb->st_mtim.tv_nsec);
    ver->len = n > 0 && (size_t)n < sizeof(ver->v) ? (size_t)n : 0; /* cannot overflow: 16+16+20+9+3 < 96 */
}

static uint64_t mtime_ns(const struct stat *sb)
{
    return (uint64_t)sb->st_mtim.tv_sec * 1000000000ull + (uint64_t)sb->st_mtim.tv_nsec;
}

/* ---- whole objects ------------------------------------------------------------------------ */

/* stat(2) of the file behind key. */
static zn_err_t stat_key(st_driver_t *d, const char *key, struct stat *sb)
{
    char path[PATH_MAX];
    zn_err_t err = key_path(d, path, key);
    if (err != ZN_OK)
        return err;
    return stat(path, sb) == 0 ? ZN_OK : st_errno(errno);
}

static zn_err_t fs_stat(st_driver_t *d, const char *key, uint64_t *size, uint64_t *mtime)
{
    struct stat sb;
    zn_err_t err = stat_key(d, key, &sb);
    if (err != ZN_OK)
        return err;
    if (!S_ISREG(sb.st_mode))
        return ZN_ENOENT;
    if (size != NULL)
        *size = (uint64_t)sb.st_size;
    if (mtime != NULL)
        *mtime = mtime_ns(&sb);
    return ZN_OK;
}

static zn_err_t fs_open(st_driver_t *d, const char *key, st_object_t **out)
{
    char path[PATH_MAX];
    struct stat sb;
    zn_err_t err = key_path(d, path, key);
    if (err != ZN_OK)
        return err;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return st_errno(errno);
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return ZN_ENOENT;
    }
    st_object_t *o = zn_malloc(sizeof(*o));
    o->fd = fd;
    o->size = (uint64_t)sb.st_size;
    *out = o;
    return ZN_OK;
}

static zn_err_t fs_get(st_driver_t *d, const char *key, size_t max, char **out, size_t *len, st_version_t *ver)
{
    char path[PATH_MAX];
    struct stat sb;
    zn_err_t err = key_path(d, path, key);
    if (err != ZN_OK || (err = st_read_file(path, max, out, len, &sb)) != ZN_OK)
        return err;
    if (ver != NULL)
        stamp(&sb, ver);
    return ZN_OK;
}

static zn_err_t fs_version(st_driver_t *d, const char *key, st_version_t *ver)
{
    struct stat sb;
    zn_err_t err = stat_key(d, key, &sb);
    if (err != ZN_OK)
        return err;
    stamp(&sb, ver);
    return ZN_OK;
}

static zn_err_t fs_put(st_driver_t *_d, const char *key, const void *bytes, size_t len, bool exclusive)
{
    fs_driver_t *d = (void *)_d;
    char path[PATH_MAX], tmpdir[PATH_MAX];
    zn_err_t err;
    if ((err = key_path(_d, path, key)) != ZN_OK || (err = tmp_dir_for(_d, tmpdir, key)) != ZN_OK)
        return err;
    return st_write_atomic(d->st, tmpdir, path, bytes, len, exclusive);
}

/* Opens and flocks the file at path (the version a put_if is about to replace), or -1
 * with errno (ENOENT: there is none). */
static int lock_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -1;
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
    }
    return fd;
}

static zn_err_t fs_put_if(st_driver_t *_d, const char *key, const void *bytes, size_t len, const st_version_t *expect,
                          st_version_t *now)
{
    fs_driver_t *d = (void *)_d;
    char path[PATH_MAX], tmpdir[PATH_MAX];
    st_version_t cur = {0};
    struct stat sb;
    zn_err_t err;

    if ((err = key_path(_d, path, key)) != ZN_OK || (err = tmp_dir_for(_d, tmpdir, key)) != ZN_OK)
        return err;
    /* The lock is on the inode being replaced: a second writer waits on the same inode,
     * then finds the path naming a new one. An absent key needs none: exclusive create
     * (link) lets one creator win. */
    int lfd = expect->len != 0 ? lock_file(path) : -1;
    if (lfd == -1 && expect->len != 0) {
        err = errno == ENOENT ? ST_ECONFLICT : st_errno(errno);
        goto done;
    }
    if (stat(path, &sb) == 0)
        stamp(&sb, &cur);
    else if (errno != ENOENT) {
        err = st_errno(errno);
        goto done;
    }
    if (!st_version_eq(&cur, expect)) {
        err = ST_ECONFLICT;
        goto done;
    }
    if ((err = st_write_atomic(d->st, tmpdir, path, bytes, len, expect->len == 0)) != ZN_OK) {
        if (err == ZN_EEXIST)
            err = ST_ECONFLICT;
        goto done;
    }
    if (now != NULL && stat(path, &sb) == 0)
        stamp(&sb, now);
    else if (now != NULL)
        now->len = 0;
done:
    if (lfd != -1)
        close(lfd);
    return err;
}

static zn_err_t fs_del(st_driver_t *_d, const char *key)
{
    fs_driver_t *d = (void *)_d;
    char path[PATH_MAX];
    zn_err_t err = key_path(_d, path, key);
    if (err != ZN_OK)
        return err;
    zn_syscall_begin();
    int r = unlink(path);
    zn_syscall_end();
    if (r != 0)
        return st_errno(errno);
    return st_sync_parent(d->st, path);
}

static zn_err_t fs_list(st_driver_t *d, const char *prefix, st_list_fn fn, void *data)
{
    char dir[PATH_MAX], path[PATH_MAX];
    struct stat sb;
    struct dirent *de;
    zn_err_t err = key_path(d, dir, prefix);
    if (err != ZN_OK)
        return err;
    DIR *dh = opendir(dir);
    if (dh == NULL)
        return st_errno(errno);
    while ((de = readdir(dh)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (st_path(path, "%s/%s", dir, de->d_name) != ZN_OK || lstat(path, &sb) != 0)
            continue; /* gone since readdir, or a name too long to be ours */
        if (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode))
            continue; /* symlinks and the like are not objects */
        st_entry_t e = {de->d_name, S_ISDIR(sb.st_mode), (uint64_t)sb.st_size, mtime_ns(&sb), (unsigned)sb.st_nlink};
        if (!fn(data, &e))
            break;
    }
    closedir(dh);
    return ZN_OK;
}

static zn_err_t fs_link(st_driver_t *_d, const char *from, const char *to, bool replace)
{
    fs_driver_t *d = (void *)_d;
    char src[PATH_MAX], dst[PATH_MAX], tmpdir[PATH_MAX], tmp[PATH_MAX], rnd[33];
    zn_err_t err;
    if ((err = key_path(_d, src, from)) != ZN_OK || (err = key_path(_d, dst, to)) != ZN_OK)
        return err;
    if (!replace) {
        if (link(src, dst) != 0 && errno != EEXIST)
            return st_errno(errno);
        return st_sync_parent(d->st, dst);
    }
    st_random_hex(rnd, 16);
    if ((err = tmp_dir_for(_d, tmpdir, to)) != ZN_OK || (err = st_path(tmp, "%s/tmp-%s", tmpdir, rnd)) != ZN_OK)
        return err;
    if (link(src, tmp) != 0)
        return st_errno(errno);
    if ((err = st_rename(tmp, dst)) != ZN_OK) {
        unlink(tmp);
        return err;
    }
    return st_sync_parent(d->st, dst);
}

static zn_err_t fs_copy(st_driver_t *_d, const char *from, const char *to, const zn_digest_t *digest)
{
    fs_driver_t *d = (void *)_d;
    char src[PATH_MAX], dst[PATH_MAX], tmpdir[PATH_MAX];
    zn_err_t err;
    if ((err = key_path(_d, src, from)) != ZN_OK || (err = key_path(_d, dst, to)) != ZN_OK ||
        (err = tmp_dir_for(_d, tmpdir, to)) != ZN_OK)
        return err;
    return st_copy_verified(d->st, src, tmpdir, dst, digest);
}

static zn_err_t fs_mkdirs(st_driver_t *_d, const char *prefix)
{
    fs_driver_t *d = (void *)_d;
    char dir[PATH_MAX];
    zn_err_t err = prefix[0] == '\0' ? st_path(dir, "%s", d->st->root) : key_path(_d, dir, prefix);
    return err != ZN_OK ? err : st_mkdirs(d->st, dir);
}

static void fs_touch(st_driver_t *d, const char *key)
{
    char path[PATH_MAX];
    if (key_path(d, path, key) == ZN_OK)
        utimensat(AT_FDCWD, path, NULL, 0);
}

static zn_err_t fs_lock_repo(st_driver_t *d, const char *repo, void **token)
{
    char dir[PATH_MAX];
    zn_err_t err = key_path(d, dir, repo);
    if (err != ZN_OK)
        return err;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1)
        return st_errno(errno);
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            close(fd);
            return ZN_EIO;
        }
    }
    *token = (void *)(intptr_t)(fd + 1);
    return ZN_OK;
}

static void fs_unlock_repo(st_driver_t *d, void *token)
{
    if (token != NULL)
        close((int)(intptr_t)token - 1); /* drops the flock */
}

/* ---- object handles -------------------------------------------------------------------- */

static uint64_t fs_object_size(const st_object_t *o)
{
    return o->size;
}

static zn_err_t pread_some(int fd, uint64_t off, void *buf, size_t len, size_t *got)
{
    ssize_t r;
    zn_syscall_begin();
    while ((r = pread(fd, buf, len, (off_t)off)) == -1 && errno == EINTR)
        ;
    zn_syscall_end();
    if (r < 0)
        return ZN_EIO;
    *got = (size_t)r;
    return ZN_OK;
}

static zn_err_t fs_object_read(st_object_t *o, uint64_t off, void *buf, size_t len, size_t *got)
{
    if (off >= o->size) {
        *got = 0;
        return ZN_OK;
    }
    if (len > o->size - off)
        len = (size_t)(o->size - off);
    return pread_some(o->fd, off, buf, len, got);
}

static const char *fs_object_redirect(st_object_t *o)
{
    return NULL;
}

static void fs_object_close(st_object_t *o)
{
    if (o == NULL)
        return;
    close(o->fd);
    free(o);
}

/* ---- append sessions ------------------------------------------------------------------- */

static st_append_t *append_new(st_driver_t *d, const char *path, int fd)
{
    st_append_t *a = zn_malloc(sizeof(*a));
    a->d = (void *)d;
    a->fd = fd;
    memcpy(a->path, path, strlen(path) + 1); /* both PATH_MAX */
    return a;
}

static zn_err_t fs_append_create(st_driver_t *d, const char *key, st_append_t **out)
{
    char path[PATH_MAX];
    zn_err_t err = key_path(d, path, key);
    if (err != ZN_OK)
        return err;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd == -1)
        return st_errno(errno);
    *out = append_new(d, path, fd);
    return ZN_OK;
}

static zn_err_t fs_append_open(st_driver_t *d, const char *key, st_append_t **out, uint64_t *size)
{
    char path[PATH_MAX];
    struct stat sb;
    zn_err_t err = key_path(d, path, key);
    if (err != ZN_OK)
        return err;
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd == -1)
        return st_errno(errno);
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return ZN_EIO;
    }
    *size = (uint64_t)sb.st_size;
    *out = append_new(d, path, fd);
    return ZN_OK;
}

static zn_err_t fs_append_write(st_append_t *a, uint64_t off, const void *p, size_t n, bool *torn)
{
    const char *cur = p;
    size_t left = n;
    while (left != 0) {
        zn_syscall_begin();
        ssize_t w = pwrite(a->fd, cur, left, (off_t)(off + (uint64_t)(cur - (const char *)p)));
        zn_syscall_end();
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            zn_err_t err = w < 0 ? st_errno(errno) : ZN_EIO;
            *torn = ftruncate(a->fd, (off_t)off) != 0;
            return err;
        }
        cur += w;
        left -= (size_t)w;
    }
    return ZN_OK;
}

static zn_err_t fs_append_read(st_append_t *a, uint64_t off, void *buf, size_t len, size_t *got)
{
    return pread_some(a->fd, off, buf, len, got);
}

/* The reader holds the file itself, so it keeps reading the same bytes after the rename that
 * publishes the session (or the unlink that cancels it). */
static zn_err_t fs_append_follow(st_append_t *a, st_object_t **out)
{
    int fd = open(a->path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return st_errno(errno);
    st_object_t *o = zn_malloc(sizeof(*o));
    o->fd = fd;
    o->size = UINT64_MAX;
    *out = o;
    return ZN_OK;
}

static zn_err_t fs_append_commit(st_append_t *a, const char *key, bool exclusive)
{
    char dst[PATH_MAX];
    zn_err_t err;
    if ((err = key_path(&a->d->super, dst, key)) != ZN_OK || (err = st_sync_fd(a->d->st, a->fd)) != ZN_OK)
        return err;
    if (exclusive) {
        if (link(a->path, dst) != 0)
            return st_errno(errno);
        unlink(a->path);
    } else if ((err = st_rename(a->path, dst)) != ZN_OK) {
        return err;
    }
    return st_sync_parent(a->d->st, dst);
}

static zn_err_t fs_append_remove(st_append_t *a)
{
    return unlink(a->path) == 0 ? ZN_OK : st_errno(errno);
}

static void fs_append_close(st_append_t *a)
{
    if (a == NULL)
        return;
    close(a->fd);
    free(a);
}

static void fs_free(st_driver_t *d)
{
    free(d);
}

static const st_driver_ops_t fs_ops = {
    .name = "filesystem",
    .flags = ST_DRV_LINK,
    .free = fs_free,
    .stat = fs_stat,
    .open = fs_open,
    .get = fs_get,
    .version = fs_version,
    .put = fs_put,
    .put_if = fs_put_if,
    .del = fs_del,
    .list = fs_list,
    .link = fs_link,
    .copy = fs_copy,
    .mkdirs = fs_mkdirs,
    .touch = fs_touch,
    .lock_repo = fs_lock_repo,
    .unlock_repo = fs_unlock_repo,
    .object_size = fs_object_size,
    .object_read = fs_object_read,
    .object_redirect = fs_object_redirect,
    .object_close = fs_object_close,
    .append_create = fs_append_create,
    .append_open = fs_append_open,
    .append_write = fs_append_write,
    .append_read = fs_append_read,
    .append_follow = fs_append_follow,
    .append_commit = fs_append_commit,
    .append_remove = fs_append_remove,
    .append_close = fs_append_close,
};

st_driver_t *st_fs_driver_new(zn_storage_t *st)
{
    fs_driver_t *d = zn_calloc(1, sizeof(*d));
    d->super.ops = &fs_ops;
    d->st = st;
    return &d->super;
}
