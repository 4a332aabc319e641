/*
 * storage/blobs.c - blobs of a repository: lookup, open for streaming, delete, cross-repo
 * mount, and publishing a verified upload under its digest.
 *
 * A blob is the file <repo>/blobs/<algo>/<hex>; it only ever appears by rename or link of
 * a complete, verified file, so a reader never sees a partial blob. With storage.dedupe a
 * blob that another repository already has is hard-linked instead of stored twice.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/internal.h"

zn_err_t zn_storage_blob_stat(zn_storage_t *st, const char *repo, const zn_digest_t *d, uint64_t *size)
{
    char path[PATH_MAX];
    struct stat sb;
    if (!zn_storage_name_valid(zn_slice(repo, strlen(repo))) || st_blob_path(st, path, repo, d) != ZN_OK)
        return ZN_EINVAL;
    if (stat(path, &sb) != 0)
        return st_errno(errno);
    if (!S_ISREG(sb.st_mode))
        return ZN_ENOENT;
    *size = (uint64_t)sb.st_size;
    return ZN_OK;
}

zn_err_t zn_storage_blob_open(zn_storage_t *st, const char *repo, const zn_digest_t *d, int *fd, uint64_t *size)
{
    char path[PATH_MAX];
    struct stat sb;
    if (!zn_storage_name_valid(zn_slice(repo, strlen(repo))) || st_blob_path(st, path, repo, d) != ZN_OK)
        return ZN_EINVAL;
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f == -1)
        return st_errno(errno);
    if (fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(f);
        return ZN_ENOENT;
    }
    *fd = f;
    *size = (uint64_t)sb.st_size;
    return ZN_OK;
}

zn_err_t zn_storage_blob_delete(zn_storage_t *st, const char *repo, const zn_digest_t *d)
{
    char path[PATH_MAX];
    st_repo_t *r;
    zn_err_t err;

    if ((err = st_repo_find(st, repo, &r)) != ZN_OK || (err = st_blob_path(st, path, repo, d)) != ZN_OK)
        return err;
    if (unlink(path) != 0)
        return st_errno(errno);
    return st_sync_parent(st, path);
}

/* Links or copies src to the blob path dst of repo. */
static zn_err_t link_or_copy(zn_storage_t *st, const char *repo, const char *src, const char *dst, const zn_digest_t *d)
{
    char tmpdir[PATH_MAX];
    zn_err_t err;
    if (st->cfg->storage.dedupe) {
        if (link(src, dst) == 0 || errno == EEXIST)
            return st_sync_parent(st, dst);
        if (errno == ENOENT)
            return ZN_ENOENT;
        /* EXDEV, EMLINK, EPERM...: dedupe is silently off for this blob, as in zot */
    }
    if ((err = st_path(tmpdir, "%s/%s/.uploads", st->root, repo)) != ZN_OK)
        return err;
    return st_copy_verified(st, src, tmpdir, dst, d);
}

static zn_err_t blob_dir(zn_storage_t *st, const char *repo, const zn_digest_t *d)
{
    char dir[PATH_MAX];
    zn_err_t err = st_path(dir, "%s/%s/blobs/%s", st->root, repo, zn_digest_algo_name(d->algo));
    return err != ZN_OK ? err : st_mkdirs(st, dir);
}

zn_err_t zn_storage_blob_mount(zn_storage_t *st, const char *repo, const char *from, const zn_digest_t *d)
{
    char src[PATH_MAX], dst[PATH_MAX];
    struct stat sb;
    st_repo_t *r;
    zn_err_t err;

    if ((err = st_repo_find(st, from, &r)) != ZN_OK || (err = st_blob_path(st, src, from, d)) != ZN_OK)
        return err;
    if (stat(src, &sb) != 0)
        return ZN_ENOENT;
    if ((err = st_repo_create(st, repo, &r)) != ZN_OK || (err = st_blob_path(st, dst, repo, d)) != ZN_OK)
        return err;
    if (stat(dst, &sb) != 0) {
        if ((err = blob_dir(st, repo, d)) != ZN_OK || (err = link_or_copy(st, repo, src, dst, d)) != ZN_OK)
            return err;
    }
    st_blob_touch(dst); /* a mounted blob waits for its manifest like a pushed one (gcDelay) */
    return ZN_OK;
}

/* Hard-links an existing copy from another repository to dst. */
static bool dedupe_link(zn_storage_t *st, const char *repo, const char *dst, const zn_digest_t *d)
{
    char other[ZN_REPO_NAME_MAX + 1], src[PATH_MAX];
    if (!st->cfg->storage.dedupe || zn_storage_blob_locate(st, d, other, sizeof(other)) != ZN_OK ||
        strcmp(other, repo) == 0 || st_blob_path(st, src, other, d) != ZN_OK)
        return false;
    return link(src, dst) == 0 || errno == EEXIST;
}

/* Two repositories that published the same new blob at once both missed the index; the
 * one that finds the other's entry now replaces its copy by a link to it. */
static void converge(zn_storage_t *st, const char *repo, const char *dst, const zn_digest_t *d)
{
    char other[ZN_REPO_NAME_MAX + 1], src[PATH_MAX], tmp[PATH_MAX], rnd[33];
    struct stat a, b;

    if (!st->cfg->storage.dedupe || zn_storage_blob_locate(st, d, other, sizeof(other)) != ZN_OK) {
        st_dedupe_record(st, repo, d);
        return;
    }
    if (strcmp(other, repo) == 0 || st_blob_path(st, src, other, d) != ZN_OK || stat(src, &a) != 0 ||
        stat(dst, &b) != 0 || a.st_ino == b.st_ino)
        return;
    st_random_hex(rnd, 16);
    if (st_path(tmp, "%s/%s/.uploads/tmp-%s", st->root, repo, rnd) != ZN_OK || link(src, tmp) != 0)
        return;
    if (st_rename(tmp, dst) != ZN_OK)
        unlink(tmp);
}

zn_err_t st_blob_publish(zn_storage_t *st, const char *repo, const char *tmp, const zn_digest_t *d)
{
    char dst[PATH_MAX];
    struct stat sb;
    zn_err_t err;

    if ((err = st_blob_path(st, dst, repo, d)) != ZN_OK || (err = blob_dir(st, repo, d)) != ZN_OK)
        return err;
    if (stat(dst, &sb) == 0 || dedupe_link(st, repo, dst, d)) {
        unlink(tmp); /* the same content is already in place */
        st_blob_touch(dst); /* ...but just pushed again: GC's gcDelay counts from now */
        return st_sync_parent(st, dst);
    }
    if ((err = st_rename(tmp, dst)) != ZN_OK || (err = st_sync_parent(st, dst)) != ZN_OK)
        return err;
    converge(st, repo, dst, d);
    st_blob_touch(dst);
    return ZN_OK;
}
