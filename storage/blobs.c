/*
 * storage/blobs.c - blobs of a repository: lookup, open for streaming, delete, cross-repo
 * mount, and publishing a verified upload under its digest.
 *
 * A blob is the object <repo>/blobs/<algo>/<hex>; it only ever appears whole (an append
 * session committed, a link or a copy of a complete, verified object), so a reader never
 * sees a partial blob. With storage.dedupe and a driver that can link (ST_DRV_LINK: hard
 * links on the filesystem), a blob that another repository already has is linked instead
 * of stored twice; without links a mount copies (on S3 a server-side copy, as zot does).
 */
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"

struct zn_storage_blob {
    const st_driver_ops_t *ops;
    st_object_t *obj;
    bool redirect; /* storage.redirectBlobURL, for a stored blob (not an upload's follower) */
};

static zn_err_t blob_key(zn_storage_t *st, char *key, const char *repo, const zn_digest_t *d)
{
    if (!zn_storage_name_valid(zn_slice(repo, strlen(repo))))
        return ZN_EINVAL;
    return st_blob_key(key, repo, d);
}

zn_err_t zn_storage_blob_stat(zn_storage_t *st, const char *repo, const zn_digest_t *d, uint64_t *size)
{
    char key[PATH_MAX];
    zn_err_t err = blob_key(st, key, repo, d);
    return err != ZN_OK ? err : st_ops(st)->stat(st->drv, key, size, NULL);
}

zn_err_t zn_storage_blob_open(zn_storage_t *st, const char *repo, const zn_digest_t *d, zn_storage_blob_t **out)
{
    char key[PATH_MAX];
    st_object_t *obj;
    zn_err_t err;
    if ((err = blob_key(st, key, repo, d)) != ZN_OK || (err = st_ops(st)->open(st->drv, key, &obj)) != ZN_OK)
        return err;
    *out = st_blob_wrap(st, obj);
    (*out)->redirect = st->cfg->storage.redirect_blob_url;
    return ZN_OK;
}

zn_storage_blob_t *st_blob_wrap(zn_storage_t *st, st_object_t *obj)
{
    zn_storage_blob_t *b = zn_malloc(sizeof(*b));
    b->ops = st_ops(st);
    b->obj = obj;
    b->redirect = false;
    return b;
}

uint64_t zn_storage_blob_size(const zn_storage_blob_t *b)
{
    return b->ops->object_size(b->obj);
}

zn_err_t zn_storage_blob_read(zn_storage_blob_t *b, uint64_t off, void *buf, size_t len, size_t *got)
{
    return b->ops->object_read(b->obj, off, buf, len, got);
}

const char *zn_storage_blob_redirect_url(zn_storage_blob_t *b)
{
    return b->redirect && b->ops->object_redirect != NULL ? b->ops->object_redirect(b->obj) : NULL;
}

void zn_storage_blob_close(zn_storage_blob_t *b)
{
    if (b == NULL)
        return;
    b->ops->object_close(b->obj);
    free(b);
}

zn_err_t zn_storage_blob_delete(zn_storage_t *st, const char *repo, const zn_digest_t *d)
{
    char key[PATH_MAX];
    st_repo_t *r;
    zn_err_t err;

    if ((err = st_repo_find(st, repo, &r)) != ZN_OK || (err = st_blob_key(key, repo, d)) != ZN_OK)
        return err;
    return st_ops(st)->del(st->drv, key);
}

static bool can_link(zn_storage_t *st)
{
    return st->cfg->storage.dedupe && (st_ops(st)->flags & ST_DRV_LINK) != 0;
}

/* Links or copies the blob src to the blob key dst. */
static zn_err_t link_or_copy(zn_storage_t *st, const char *src, const char *dst, const zn_digest_t *d)
{
    if (can_link(st)) {
        zn_err_t err = st_ops(st)->link(st->drv, src, dst, false);
        if (err == ZN_OK || err == ZN_ENOENT)
            return err;
        /* EXDEV, EMLINK, EPERM...: dedupe is silently off for this blob, as in zot */
    }
    return st_ops(st)->copy(st->drv, src, dst, d);
}

static zn_err_t blob_dir(zn_storage_t *st, const char *repo, const zn_digest_t *d)
{
    char dir[PATH_MAX];
    zn_err_t err = st_path(dir, "%s/blobs/%s", repo, zn_digest_algo_name(d->algo));
    return err != ZN_OK ? err : st_ops(st)->mkdirs(st->drv, dir);
}

zn_err_t zn_storage_blob_mount(zn_storage_t *st, const char *repo, const char *from, const zn_digest_t *d)
{
    char src[PATH_MAX], dst[PATH_MAX];
    const st_driver_ops_t *ops = st_ops(st);
    st_repo_t *r;
    zn_err_t err;

    if ((err = st_repo_find(st, from, &r)) != ZN_OK || (err = st_blob_key(src, from, d)) != ZN_OK)
        return err;
    if (ops->stat(st->drv, src, NULL, NULL) != ZN_OK)
        return ZN_ENOENT;
    if ((err = st_repo_create(st, repo, &r)) != ZN_OK || (err = st_blob_key(dst, repo, d)) != ZN_OK)
        return err;
    if (ops->stat(st->drv, dst, NULL, NULL) != ZN_OK) {
        if ((err = blob_dir(st, repo, d)) != ZN_OK || (err = link_or_copy(st, src, dst, d)) != ZN_OK)
            return err;
    }
    ops->touch(st->drv, dst); /* a mounted blob waits for its manifest like a pushed one (gcDelay) */
    return ZN_OK;
}

/* Links an existing copy from another repository to dst. */
static bool dedupe_link(zn_storage_t *st, const char *repo, const char *dst, const zn_digest_t *d)
{
    char other[ZN_REPO_NAME_MAX + 1], src[PATH_MAX];
    if (!can_link(st) || zn_storage_blob_locate(st, d, other, sizeof(other)) != ZN_OK || strcmp(other, repo) == 0 ||
        st_blob_key(src, other, d) != ZN_OK)
        return false;
    return st_ops(st)->link(st->drv, src, dst, false) == ZN_OK;
}

/* Two repositories that published the same new blob at once both missed the index; the
 * one that finds the other's entry now replaces its copy by a link to it. */
static void converge(zn_storage_t *st, const char *repo, const char *dst, const zn_digest_t *d)
{
    char other[ZN_REPO_NAME_MAX + 1], src[PATH_MAX];

    if (!can_link(st) || zn_storage_blob_locate(st, d, other, sizeof(other)) != ZN_OK) {
        st_dedupe_record(st, repo, d);
        return;
    }
    if (strcmp(other, repo) == 0 || st_blob_key(src, other, d) != ZN_OK)
        return;
    st_ops(st)->link(st->drv, src, dst, true); /* best effort: the copy stays if it fails */
}

zn_err_t st_blob_publish(zn_storage_t *st, const char *repo, st_append_t *session, const zn_digest_t *d)
{
    char dst[PATH_MAX];
    const st_driver_ops_t *ops = st_ops(st);
    zn_err_t err;

    if ((err = st_blob_key(dst, repo, d)) != ZN_OK || (err = blob_dir(st, repo, d)) != ZN_OK)
        return err;
    if (ops->stat(st->drv, dst, NULL, NULL) == ZN_OK || dedupe_link(st, repo, dst, d)) {
        ops->append_remove(session); /* the same content is already in place */
        ops->touch(st->drv, dst);    /* ...but just pushed again: GC's gcDelay counts from now */
        return ZN_OK;
    }
    if ((err = ops->append_commit(session, dst, false)) != ZN_OK)
        return err;
    converge(st, repo, dst, d);
    ops->touch(st->drv, dst);
    return ZN_OK;
}
