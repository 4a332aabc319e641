/*
 * storage/dedupe.c - the digest -> repository index behind dedupe and mounts without
 * `from`, and the walk over every repository under the root.
 *
 * <root>/.zinc/dedupe/<algo>/<hex> holds the name of one repository that has the blob (zot
 * ignores dot-directories). Entries are hints: a reader checks that the blob is still
 * there and drops a stale entry. When the index is missing (first start on a zot root, or
 * someone deleted it) a background thread rebuilds it by walking every repository, and
 * writes .complete at the end; until then lookups simply miss and nothing is deduplicated.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

struct walk {
    zn_storage_t *st;
    bool (*fn)(void *data, const char *repo);
    void *data;
    size_t rootlen;
    bool stop;
};

static bool is_dir_entry(const char *path, struct dirent *de)
{
    struct stat sb;
    if (de->d_type == DT_DIR)
        return true;
    if (de->d_type != DT_UNKNOWN)
        return false; /* symlinks are not followed */
    return lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* path is a NUL-terminated directory path of length len inside a PATH_MAX buffer. */
static void walk_dir(struct walk *w, char *path, size_t len, int depth)
{
    struct stat sb;
    bool is_repo = false;

    if (depth > ZN_REPO_NAME_MAX / 2 + 1 || len + 12 >= PATH_MAX)
        return;
    if (len > w->rootlen) {
        memcpy(path + len, "/oci-layout", 12);
        is_repo = stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
        path[len] = '\0';
        const char *name = path + w->rootlen + 1;
        if (is_repo && zn_storage_name_valid(zn_slice(name, strlen(name))) && !w->fn(w->data, name)) {
            w->stop = true;
            return;
        }
    }
    DIR *dir = opendir(path);
    if (dir == NULL)
        return;
    struct dirent *de;
    while (!w->stop && !w->st->stopping && (de = readdir(dir)) != NULL) {
        size_t nlen = strlen(de->d_name);
        if (de->d_name[0] == '.' || (is_repo && strcmp(de->d_name, "blobs") == 0) || len + 1 + nlen >= PATH_MAX)
            continue;
        path[len] = '/';
        memcpy(path + len + 1, de->d_name, nlen + 1);
        if (is_dir_entry(path, de))
            walk_dir(w, path, len + 1 + nlen, depth + 1);
        path[len] = '\0';
    }
    closedir(dir);
}

zn_err_t st_walk_repos(zn_storage_t *st, bool (*fn)(void *data, const char *repo), void *data)
{
    struct walk w = {st, fn, data, strlen(st->root), false};
    char *path = zn_malloc(PATH_MAX);
    zn_err_t err = ZN_OK;
    memcpy(path, st->root, w.rootlen + 1);
    if (access(path, R_OK | X_OK) != 0)
        err = ZN_EIO;
    else
        walk_dir(&w, path, w.rootlen, 0);
    free(path);
    return err;
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
