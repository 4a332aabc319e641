/*
 * storage/gc_files.c - the parts of GC that remove files besides blobs: stale upload
 * sessions and temp files in .uploads, empty repositories, and the dedupe index entries of
 * removed blobs; plus the entry points that run GC on one repository or on all of them.
 *
 * Uploads are listed and deleted through the driver; removing an empty repository is still
 * filesystem work (rmdir), done here directly.
 *
 * An upload session is removed only after taking it the way a request does (the `busy`
 * flag of uploads.c), so a request in progress keeps it and a request arriving later finds
 * it gone (404, as after zot's GC). Removed repositories leave the store's table but their
 * st_repo_t lives on (st->retired) because a request may still hold the pointer.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/gc.h"

/* ---- .uploads ---------------------------------------------------------------------------- */

/* Deletes an idle .uploads object; a session (<uuid>, or a <uuid>.<x> sidecar) only while
 * no request holds it, checking its age again once held. */
static bool remove_upload(gc_repo_t *g, const char *key, const char *name)
{
    char uuid[ZN_UUID_LEN + 1];
    struct st_session *s = NULL;
    uint64_t size, mtime;
    bool done = false, is_session = strlen(name) >= ZN_UUID_LEN && (name[ZN_UUID_LEN] == '\0' || name[ZN_UUID_LEN] == '.');

    if (is_session) {
        memcpy(uuid, name, ZN_UUID_LEN);
        uuid[ZN_UUID_LEN] = '\0';
        is_session = zn_storage_uuid_valid(zn_slice(uuid, ZN_UUID_LEN));
    }
    if (is_session && st_session_claim(g->st, g->name, uuid, &s) != ZN_OK)
        return false; /* in use */
    if (st_ops(g->st)->stat(g->st->drv, key, &size, &mtime) == ZN_OK && mtime <= g->cutoff_ns &&
        st_ops(g->st)->del(g->st->drv, key) == ZN_OK) {
        g->stats.uploads++;
        g->stats.bytes += size;
        done = true;
    }
    if (s != NULL)
        st_session_unclaim(g->st, s, done && name[ZN_UUID_LEN] == '\0');
    return done;
}

static bool sweep_upload(void *data, const st_entry_t *e)
{
    gc_repo_t *g = data;
    char key[PATH_MAX];
    if (gc_stopping(g))
        return false;
    if (!e->is_dir && e->mtime_ns <= g->cutoff_ns && st_path(key, "%s/.uploads/%s", g->name, e->name) == ZN_OK)
        remove_upload(g, key, e->name);
    return true;
}

void gc_sweep_uploads(gc_repo_t *g)
{
    char dir[PATH_MAX];
    if (st_repo_key(dir, g->name, ".uploads") == ZN_OK)
        st_ops(g->st)->list(g->st->drv, dir, sweep_upload, g);
}

/* ---- empty repositories ------------------------------------------------------------------ */

/* Whether dir has no entry but, with `subdirs`, empty directories. */
static bool dir_empty(const char *dir, bool subdirs)
{
    char path[PATH_MAX];
    struct dirent *de;
    bool empty = true;
    DIR *dh = opendir(dir);
    if (dh == NULL)
        return errno == ENOENT;
    while (empty && (de = readdir(dh)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        empty = subdirs && st_path(path, "%s/%s", dir, de->d_name) == ZN_OK && dir_empty(path, false);
    }
    closedir(dh);
    return empty;
}

/* Only zinc's/zot's files (and nested repositories' directories) in the repository dir. */
static bool only_layout(const char *dir)
{
    char path[PATH_MAX];
    struct dirent *de;
    struct stat sb;
    bool ok = true;
    DIR *dh = opendir(dir);
    if (dh == NULL)
        return false;
    while (ok && (de = readdir(dh)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strcmp(n, "oci-layout") == 0 || strcmp(n, "index.json") == 0)
            continue;
        if (st_path(path, "%s/%s", dir, n) != ZN_OK || lstat(path, &sb) != 0)
            ok = false;
        else if (strcmp(n, "blobs") == 0 || strcmp(n, ".uploads") == 0)
            ok = S_ISDIR(sb.st_mode) && dir_empty(path, strcmp(n, "blobs") == 0);
        else
            ok = S_ISDIR(sb.st_mode); /* a nested repository's namespace stays */
    }
    closedir(dh);
    return ok;
}

static void retire(gc_repo_t *g)
{
    st_repo_retire_locked(g->st, g->repo); /* repos_lock held */
    json_decref(g->repo->idx);             /* the repository lock is held */
    g->repo->idx = NULL;
}

/* Removes dir and its parents up to (not including) the root while they are empty. */
static void rmdir_up(zn_storage_t *st, char *dir)
{
    size_t rootlen = strlen(st->root);
    while (strlen(dir) > rootlen && rmdir(dir) == 0) {
        char *slash = strrchr(dir, '/');
        if (slash == NULL)
            break;
        *slash = '\0';
    }
}

/* Directories first: if a writer put a file in one since the check, the repository stays
 * (with its directories made again). */
static bool remove_layout(zn_storage_t *st, const char *dir)
{
    static const char *const parts[] = {".uploads", "blobs/sha256", "blobs/sha512", "blobs", "oci-layout", "index.json"};
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        if (st_path(path, "%s/%s", dir, parts[i]) != ZN_OK)
            return false;
        int rc = i < 4 ? rmdir(path) : unlink(path);
        if (rc != 0 && errno != ENOENT) {
            if (errno != ENOTEMPTY)
                zn_log(ZN_LOG_WARN, "gc: cannot remove", ZN_LSTR("path", path), ZN_LSTR("error", strerror(errno)));
            if (st_path(path, "%s/.uploads", dir) == ZN_OK)
                st_mkdirs(st, path);
            if (st_path(path, "%s/blobs/sha256", dir) == ZN_OK)
                st_mkdirs(st, path);
            return false;
        }
    }
    return true;
}

void gc_remove_if_empty(gc_repo_t *g)
{
    char dir[PATH_MAX], path[PATH_MAX];
    struct stat sb;

    if (st_path(dir, "%s/%s", g->st->root, g->name) != ZN_OK || st_path(path, "%s/index.json", dir) != ZN_OK ||
        stat(path, &sb) != 0 || gc_mtime_ns(&sb) > g->cutoff_ns || !only_layout(dir))
        return;
    /* repos_lock: a lookup of this name waits, then finds it gone and creates it anew */
    zn_mutex_lock(&g->st->repos_lock);
    if (remove_layout(g->st, dir)) {
        retire(g);
        rmdir_up(g->st, dir);
        g->stats.removed_repos++;
    }
    zn_mutex_unlock(&g->st->repos_lock);
}

/* ---- the dedupe index -------------------------------------------------------------------- */

void gc_dedupe_forget(gc_repo_t *g, const zn_digest_t *d, bool shared)
{
    char other[ZN_REPO_NAME_MAX + 1];
    /* locate drops an entry whose repository lacks the blob; one naming another holder stays */
    if (zn_storage_blob_locate(g->st, d, other, sizeof(other)) != ZN_OK && shared && g->orphans != NULL)
        st_map_put(g->orphans, d->str, g->orphans);
}

struct refind {
    zn_storage_t *st;
    st_map_t *orphans;
    const char *repo;
    json_t *found;
};

static bool refind_one(void *data, const char *key, void *value)
{
    struct refind *r = data;
    char path[PATH_MAX];
    zn_digest_t d;
    struct stat sb;
    if (zn_digest_parse(zn_slice(key, strlen(key)), &d) == ZN_OK && st_blob_path(r->st, path, r->repo, &d) == ZN_OK &&
        stat(path, &sb) == 0) {
        st_dedupe_record(r->st, r->repo, &d);
        json_array_append_new(r->found, json_string(key));
    }
    return true;
}

static bool refind_repo(void *data, const char *repo)
{
    struct refind *r = data;
    json_t *key;
    size_t i;
    r->repo = repo;
    r->found = json_array();
    st_map_each(r->orphans, refind_one, r);
    json_array_foreach(r->found, i, key)
    {
        st_map_del(r->orphans, json_string_value(key));
    }
    json_decref(r->found);
    return r->orphans->count != 0 && !r->st->stopping;
}

/* Records another holder of each blob whose dedupe entry GC dropped while links remained. */
static void refind_orphans(zn_storage_t *st, st_map_t *orphans)
{
    struct refind r = {st, orphans, NULL, NULL};
    if (orphans->count != 0)
        st_walk_repos(st, refind_repo, &r);
}

/* ---- entry points ------------------------------------------------------------------------ */

static bool removed_any(const zn_storage_gc_stats_t *s)
{
    return s->manifests != 0 || s->blobs != 0 || s->uploads != 0 || s->removed_repos != 0;
}

static zn_err_t gc_one(zn_storage_t *st, const char *repo, uint64_t now_ns, const _Atomic int *stop, st_map_t *orphans,
                       zn_storage_gc_stats_t *out)
{
    uint64_t delay = st->cfg->storage.gc_delay_ns;
    gc_repo_t g = {.st = st, .name = repo, .cutoff_ns = now_ns > delay ? now_ns - delay : 0, .stop = stop, .orphans = orphans};
    zn_err_t err = gc_repo_run(&g);

    g.stats.repos = 1;
    if (err != ZN_OK && err != ZN_ENOENT)
        zn_log(ZN_LOG_ERROR, "gc: repository failed", ZN_LSTR("repo", repo), ZN_LSTR("error", zn_err_str(err)));
    if (removed_any(&g.stats))
        zn_log(ZN_LOG_INFO, "gc: repository collected", ZN_LSTR("repo", repo), ZN_LUINT("manifests", g.stats.manifests),
               ZN_LUINT("blobs", g.stats.blobs), ZN_LUINT("uploads", g.stats.uploads), ZN_LUINT("bytes", g.stats.bytes),
               ZN_LBOOL("removed", g.stats.removed_repos != 0));
    *out = g.stats;
    return err;
}

zn_err_t zn_storage_gc_repo(zn_storage_t *st, const char *repo, uint64_t now_ns, zn_storage_gc_stats_t *stats)
{
    zn_storage_gc_stats_t s;
    st_map_t orphans;
    st_map_init(&orphans);
    zn_err_t err = gc_one(st, repo, now_ns, NULL, &orphans, &s);
    refind_orphans(st, &orphans);
    st_map_release(&orphans, NULL);
    if (stats != NULL)
        *stats = s;
    return err;
}

static bool collect(void *data, const char *repo)
{
    return zn_buf_append(data, repo, strlen(repo) + 1) == ZN_OK;
}

static void stats_add(zn_storage_gc_stats_t *sum, const zn_storage_gc_stats_t *s)
{
    sum->repos += s->repos;
    sum->manifests += s->manifests;
    sum->blobs += s->blobs;
    sum->uploads += s->uploads;
    sum->bytes += s->bytes;
    sum->removed_repos += s->removed_repos;
}

zn_err_t zn_storage_gc(zn_storage_t *st, uint64_t now_ns, const _Atomic int *stop, zn_storage_gc_stats_t *stats)
{
    zn_storage_gc_stats_t sum = {0}, s;
    zn_buf_t names;
    st_map_t orphans;
    uint64_t start = zn_now_mono_ns();
    zn_err_t err;

    zn_buf_init(&names, (size_t)1 << 30);
    st_map_init(&orphans);
    /* names first: removing a repository must not disturb the walk */
    if ((err = st_walk_repos(st, collect, &names)) == ZN_OK) {
        for (size_t off = 0; off < names.len && !(stop != NULL && *stop) && !st->stopping; off += strlen(names.p + off) + 1) {
            gc_one(st, names.p + off, now_ns, stop, &orphans, &s);
            stats_add(&sum, &s);
        }
        refind_orphans(st, &orphans);
    }
    zn_log(removed_any(&sum) ? ZN_LOG_INFO : ZN_LOG_DEBUG, "gc: pass done", ZN_LUINT("repos", sum.repos),
           ZN_LUINT("manifests", sum.manifests), ZN_LUINT("blobs", sum.blobs), ZN_LUINT("uploads", sum.uploads),
           ZN_LUINT("bytes", sum.bytes), ZN_LUINT("removed_repos", sum.removed_repos),
           ZN_LUINT("ms", (zn_now_mono_ns() - start) / 1000000));
    st_map_release(&orphans, NULL);
    zn_buf_release(&names);
    if (stats != NULL)
        *stats = sum;
    return err;
}
