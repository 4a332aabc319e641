/*
 * storage/repo.c - opening the store and the table of repositories known to exist.
 *
 * A repository exists when <root>/<name>/oci-layout exists (zot's rule). Entries are added
 * to the table the first time a repository is found or created and live as long as the
 * store; each carries the lock and the cached index.json of index.c. Creation is safe
 * against concurrent creators (this process or another): files are linked into place only
 * if absent, so an existing index.json is never clobbered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/internal.h"

static const char layout_json[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
static const char empty_index_json[] = "{\"schemaVersion\":2,\"manifests\":[]}";

void st_repo_free(void *p)
{
    st_repo_t *repo = p;
    if (repo == NULL)
        return;
    json_decref(repo->idx);
    for (int i = 0; i < ST_MCACHE_SLOTS; i++)
        free(repo->mcache[i].bytes);
    zn_mutex_destroy(&repo->lock);
    free(repo->name);
    free(repo);
}

zn_err_t st_repo_find(zn_storage_t *st, const char *name, st_repo_t **out)
{
    char path[PATH_MAX];
    struct stat sb;
    st_repo_t *repo;

    if (!zn_storage_name_valid(zn_slice(name, strlen(name))))
        return ZN_EINVAL;
    zn_mutex_lock(&st->repos_lock);
    repo = st_map_get(&st->repos, name);
    zn_mutex_unlock(&st->repos_lock);
    if (repo != NULL) {
        *out = repo;
        return ZN_OK;
    }
    if (st_path(path, "%s/%s/oci-layout", st->root, name) != ZN_OK)
        return ZN_EINVAL;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return ZN_ENOENT;

    repo = zn_calloc(1, sizeof(*repo));
    repo->name = zn_strdup(name);
    zn_mutex_init(&repo->lock, "storage.repo");
    zn_mutex_lock(&st->repos_lock);
    st_repo_t *raced = st_map_get(&st->repos, name);
    if (raced == NULL)
        st_map_put(&st->repos, name, repo);
    zn_mutex_unlock(&st->repos_lock);
    if (raced != NULL) {
        st_repo_free(repo);
        repo = raced;
    }
    *out = repo;
    return ZN_OK;
}

/* "blobs" below the first component would land in a parent repository's blob store. */
static bool name_creatable(const char *name)
{
    for (const char *p = strchr(name, '/'); p != NULL; p = strchr(p + 1, '/'))
        if (strncmp(p + 1, "blobs", 5) == 0 && (p[6] == '/' || p[6] == '\0'))
            return false;
    return true;
}

zn_err_t st_repo_create(zn_storage_t *st, const char *name, st_repo_t **out)
{
    char dir[PATH_MAX], path[PATH_MAX];
    zn_err_t err = st_repo_find(st, name, out);

    if (err != ZN_ENOENT)
        return err;
    if (!name_creatable(name))
        return ZN_EINVAL;
    if ((err = st_path(dir, "%s/%s/.uploads", st->root, name)) != ZN_OK || (err = st_mkdirs(st, dir)) != ZN_OK)
        return err;
    if ((err = st_path(path, "%s/%s/blobs/sha256", st->root, name)) != ZN_OK || (err = st_mkdirs(st, path)) != ZN_OK)
        return err;
    /* index.json first: a directory with oci-layout is a repository and must have an index */
    if ((err = st_path(path, "%s/%s/index.json", st->root, name)) != ZN_OK)
        return err;
    err = st_write_atomic(st, dir, path, empty_index_json, sizeof(empty_index_json) - 1, true);
    if (err != ZN_OK && err != ZN_EEXIST)
        return err;
    if ((err = st_path(path, "%s/%s/oci-layout", st->root, name)) != ZN_OK)
        return err;
    err = st_write_atomic(st, dir, path, layout_json, sizeof(layout_json) - 1, true);
    if (err != ZN_OK && err != ZN_EEXIST)
        return err;
    return st_repo_find(st, name, out);
}

zn_err_t zn_storage_repo_exists(zn_storage_t *st, const char *repo)
{
    st_repo_t *r;
    return st_repo_find(st, repo, &r);
}

zn_err_t zn_storage_open(const zn_config_t *cfg, zn_storage_t **out, char *errbuf, size_t errlen)
{
    const char *root = cfg->storage.root_directory;
    size_t len = root != NULL ? strlen(root) : 0;
    zn_err_t err;

    while (len > 1 && root[len - 1] == '/')
        len--;
    if (len == 0 || len >= PATH_MAX - 512) {
        snprintf(errbuf, errlen, "storage.rootDirectory: %s", len == 0 ? "missing" : "too long");
        return ZN_EINVAL;
    }
    zn_storage_t *st = zn_calloc(1, sizeof(*st));
    st->cfg = cfg;
    st->root = zn_slice_dup(zn_slice(root, len));
    zn_mutex_init(&st->repos_lock, "storage.repos");
    zn_mutex_init(&st->uploads_lock, "storage.uploads");
    zn_mutex_init(&st->info_lock, "storage.referrers");
    st_map_init(&st->repos);
    st_map_init(&st->retired);
    st_map_init(&st->uploads);
    st_map_init(&st->infos);
    if ((err = st_mkdirs(st, st->root)) != ZN_OK || (err = st_dedupe_init(st)) != ZN_OK) {
        snprintf(errbuf, errlen, "storage.rootDirectory: %s: %s", st->root, zn_err_str(err));
        zn_storage_free(st);
        return err;
    }
    *out = st;
    return ZN_OK;
}

void zn_storage_free(zn_storage_t *st)
{
    if (st == NULL)
        return;
    st->stopping = 1;
    if (st->rebuild_started)
        pthread_join(st->rebuild_thread, NULL);
    st_map_release(&st->repos, st_repo_free);
    st_map_release(&st->retired, st_repo_free);
    st_map_release(&st->uploads, st_session_free);
    st_map_release(&st->infos, st_minfo_free);
    zn_mutex_destroy(&st->repos_lock);
    zn_mutex_destroy(&st->uploads_lock);
    zn_mutex_destroy(&st->info_lock);
    free(st->root);
    free(st);
}
