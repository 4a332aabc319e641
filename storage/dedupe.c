/*
 * storage/dedupe.c - the digest -> repository index behind dedupe and mounts without
 * `from`, and the walk over every repository under the root.
 *
 * <root>/.zinc/dedupe/<algo>/<hex> holds the name of one repository that has the blob (zot
 * ignores dot-directories), an object of the driver like any other. Entries are hints: a reader checks that the blob is still
 * there and drops a stale entry. When the index is missing (first start on a zot root, or
 * someone deleted it) a background thread rebuilds it by walking every repository, and
 * writes .complete at the end; until then lookups simply miss and nothing is deduplicated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"

#define DEDUPE_DIR ".zinc/dedupe"

static zn_err_t entry_key(char *buf, const zn_digest_t *d)
{
    return st_path(buf, DEDUPE_DIR "/%s/%s", zn_digest_algo_name(d->algo), zn_digest_hex(d));
}

zn_err_t zn_storage_blob_locate(zn_storage_t *st, const zn_digest_t *d, char *repo, size_t len)
{
    char key[PATH_MAX], blob[PATH_MAX], *name = NULL;
    const st_driver_ops_t *ops = st_ops(st);
    size_t n;
    zn_err_t err;

    if ((err = entry_key(key, d)) != ZN_OK || (err = ops->get(st->drv, key, ZN_REPO_NAME_MAX, &name, &n, NULL)) != ZN_OK)
        return err == ZN_ETOOBIG ? ZN_ENOENT : err;
    err = ZN_ENOENT;
    if (!zn_storage_name_valid(zn_slice(name, n)) || st_blob_key(blob, name, d) != ZN_OK ||
        ops->stat(st->drv, blob, NULL, NULL) != ZN_OK) {
        ops->del(st->drv, key); /* stale */
        goto done;
    }
    if (n >= len) {
        err = ZN_EINVAL;
        goto done;
    }
    memcpy(repo, name, n + 1);
    err = ZN_OK;
done:
    free(name);
    return err;
}

void st_dedupe_record(zn_storage_t *st, const char *repo, const zn_digest_t *d)
{
    char key[PATH_MAX], dir[PATH_MAX], have[ZN_REPO_NAME_MAX + 1];
    zn_err_t err;

    if (zn_storage_blob_locate(st, d, have, sizeof(have)) == ZN_OK)
        return;
    if ((err = st_path(dir, DEDUPE_DIR "/%s", zn_digest_algo_name(d->algo))) != ZN_OK ||
        (err = st_ops(st)->mkdirs(st->drv, dir)) != ZN_OK || (err = entry_key(key, d)) != ZN_OK ||
        (err = st_ops(st)->put(st->drv, key, repo, strlen(repo), false)) != ZN_OK)
        zn_log(ZN_LOG_WARN, "dedupe index: cannot record blob", ZN_LSTR("digest", d->str), ZN_LSTR("error", zn_err_str(err)));
}

/* ---- walking repositories ---------------------------------------------------------------- */

static bool walk_stop_at_once(void *data, const st_entry_t *e)
{
    return false;
}

struct walk {
    zn_storage_t *st;
    bool (*fn)(void *data, const char *repo);
    void *data;
    bool stop;
};

struct walk_dir {
    struct walk *w;
    char *path; /* the prefix being listed, in a PATH_MAX buffer */
    size_t len;
    int depth;
    bool is_repo;
};

static void walk_dir(struct walk *w, char *path, size_t len, int depth);

/* One entry of a listed prefix: descend into "directories" (not a repository's blobs). */
static bool walk_entry(void *data, const st_entry_t *e)
{
    struct walk_dir *wd = data;
    size_t nlen = strlen(e->name), sep = wd->len != 0 ? 1 : 0;
    if (wd->w->stop || wd->w->st->stopping)
        return false;
    if (!e->is_dir || e->name[0] == '.' || (wd->is_repo && strcmp(e->name, "blobs") == 0) ||
        wd->len + sep + nlen >= PATH_MAX)
        return true;
    /* the listing borrows wd->path's prefix only to build child keys: restore it after */
    char *child = zn_malloc(PATH_MAX);
    memcpy(child, wd->path, wd->len);
    if (sep)
        child[wd->len] = '/';
    memcpy(child + wd->len + sep, e->name, nlen + 1);
    walk_dir(wd->w, child, wd->len + sep + nlen, wd->depth + 1);
    free(child);
    return !wd->w->stop;
}

/* path is the NUL-terminated key prefix ("" = the root) of length len. */
static void walk_dir(struct walk *w, char *path, size_t len, int depth)
{
    char key[PATH_MAX];
    struct walk_dir wd = {w, path, len, depth, false};

    if (depth > ZN_REPO_NAME_MAX / 2 + 1)
        return;
    if (len != 0 && st_path(key, "%s/oci-layout", path) == ZN_OK) {
        wd.is_repo = st_ops(w->st)->stat(w->st->drv, key, NULL, NULL) == ZN_OK;
        if (wd.is_repo && zn_storage_name_valid(zn_slice(path, len)) && !w->fn(w->data, path)) {
            w->stop = true;
            return;
        }
    }
    st_ops(w->st)->list(w->st->drv, path, walk_entry, &wd);
}

zn_err_t st_walk_repos(zn_storage_t *st, bool (*fn)(void *data, const char *repo), void *data)
{
    struct walk w = {st, fn, data, false};
    char root[1] = "";
    /* an unreadable root is an error; a missing one cannot be (open made it) */
    if (st_ops(st)->list(st->drv, "", walk_stop_at_once, NULL) != ZN_OK)
        return ZN_EIO;
    walk_dir(&w, root, 0, 0);
    return ZN_OK;
}

/* ---- rebuilding --------------------------------------------------------------------------- */

struct record {
    zn_storage_t *st;
    const char *repo;
    zn_digest_algo_t algo;
};

static bool record_one(void *data, const st_entry_t *e)
{
    struct record *r = data;
    char text[ZN_DIGEST_STR_MAX];
    zn_digest_t d;
    int n = snprintf(text, sizeof(text), "%s:%s", zn_digest_algo_name(r->algo), e->name);
    if (!e->is_dir && n > 0 && (size_t)n < sizeof(text) && zn_digest_parse(zn_slice(text, (size_t)n), &d) == ZN_OK)
        st_dedupe_record(r->st, r->repo, &d);
    return !r->st->stopping;
}

static void record_repo_blobs(zn_storage_t *st, const char *repo, zn_digest_algo_t algo)
{
    char dir[PATH_MAX];
    struct record r = {st, repo, algo};
    if (st_path(dir, "%s/blobs/%s", repo, zn_digest_algo_name(algo)) == ZN_OK)
        st_ops(st)->list(st->drv, dir, record_one, &r);
}

static bool rebuild_repo(void *data, const char *repo)
{
    zn_storage_t *st = data;
    record_repo_blobs(st, repo, ZN_DIGEST_SHA256);
    record_repo_blobs(st, repo, ZN_DIGEST_SHA512);
    return !st->stopping;
}

static void *rebuild_main(void *arg)
{
    zn_storage_t *st = arg;
    uint64_t start = zn_now_mono_ns();

    st_walk_repos(st, rebuild_repo, st);
    if (st->stopping)
        return NULL;
    st_ops(st)->put(st->drv, DEDUPE_DIR "/.complete", "", 0, false);
    zn_log(ZN_LOG_INFO, "dedupe index rebuilt", ZN_LUINT("ms", (zn_now_mono_ns() - start) / 1000000));
    return NULL;
}

zn_err_t st_dedupe_init(zn_storage_t *st)
{
    zn_err_t err;
    int rc;

    if ((err = st_ops(st)->mkdirs(st->drv, DEDUPE_DIR)) != ZN_OK)
        return err;
    if (st_ops(st)->stat(st->drv, DEDUPE_DIR "/.complete", NULL, NULL) == ZN_OK)
        return ZN_OK;
    if ((rc = zn_thread_create(&st->rebuild_thread, "dedupe-index", rebuild_main, st)) != 0) {
        zn_log(ZN_LOG_WARN, "cannot start the dedupe index rebuild", ZN_LSTR("error", strerror(rc)));
        return ZN_OK;
    }
    st->rebuild_started = true;
    return ZN_OK;
}
