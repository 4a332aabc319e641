/*
 * storage/gc.c - garbage collection of one repository and of the whole store (zot's
 * pkg/storage/gc: retention of untagged manifests, then unreachable blobs, stale uploads,
 * empty repositories), run by the store's "gc" thread (maint.c), never on a worker.
 *
 * Per repository, in two steps under the repository's lock and the driver's repository lock
 * (the ones manifest PUT and DELETE take, via st_index_edit):
 *  1. retention: the kept manifests are the tagged ones, the untagged ones younger than
 *     gcDelay, everything a kept index lists (recursively) and every referrer whose subject
 *     is kept; other untagged entries leave index.json, which is rewritten.
 *  2. sweep (index re-read, nothing written): every blob the manifests now in index.json
 *     reach is marked; blobs neither marked nor younger than gcDelay are deleted (listed
 *     and deleted through the driver). If a manifest cannot be read, its references are
 *     unknown and nothing is deleted.
 * Between the two, .uploads files idle for gcDelay that no request holds are removed
 * (gc_files.c). The age of an object is its mtime; storage sets a blob's mtime to now
 * (driver touch) whenever it is pushed again, mounted or linked, so a blob waiting for its
 * manifest survives.
 * A manifest PUT checks its blobs before taking the lock and again under it, right before
 * its conditional write (a sweep of this process bumps gc_epoch, which makes the PUT also
 * rewrite its own blob; another process's GC is seen by the second check). On a driver
 * without a repository lock (S3) the sweep also stops when index.json's version moved
 * since it marked (index_unmoved), so a replica's tag is not swept from under it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/gc.h"

static int manifest_missing, manifest_bad; /* never written: their addresses mark gc_repo_t.manifests values */

bool gc_stopping(const gc_repo_t *g)
{
    return (g->stop != NULL && *g->stop) || g->st->stopping;
}

uint64_t gc_mtime_ns(const struct stat *sb)
{
    return (uint64_t)sb->st_mtim.tv_sec * 1000000000u + (uint64_t)sb->st_mtim.tv_nsec;
}

static void free_manifest(void *p)
{
    if (p != &manifest_missing && p != &manifest_bad)
        json_decref(p);
}

/* The parsed manifest `digest` of the repository (cached for the run), or NULL; *missing
 * tells a file that is not there from one that cannot be read or parsed. */
static json_t *load(gc_repo_t *g, const char *digest, bool *missing)
{
    char key[PATH_MAX], *text = NULL;
    zn_digest_t d;
    size_t len;
    void *v = st_map_get(&g->manifests, digest);

    if (v == NULL) {
        zn_err_t err = ZN_EINVAL;
        if (zn_digest_parse(zn_slice(digest, strlen(digest)), &d) == ZN_OK && st_blob_key(key, g->name, &d) == ZN_OK)
            err = st_ops(g->st)->get(g->st->drv, key, ST_INDEX_MAX, &text, &len, NULL);
        json_t *root = err == ZN_OK ? json_loadb(text, len, 0, NULL) : NULL;
        free(text);
        if (json_is_object(root))
            v = root;
        else
            v = err == ZN_ENOENT ? &manifest_missing : &manifest_bad;
        if (v != root)
            json_decref(root);
        st_map_put(&g->manifests, digest, v);
    }
    *missing = v == &manifest_missing;
    return v == &manifest_missing || v == &manifest_bad ? NULL : v;
}

static void keep_digest(gc_repo_t *g, const char *digest, json_t *todo)
{
    if (digest != NULL && st_map_get(&g->keep, digest) == NULL) {
        st_map_put(&g->keep, digest, &g->keep);
        if (todo != NULL)
            json_array_append_new(todo, json_string(digest));
    }
}

static void keep_list(gc_repo_t *g, json_t *root, const char *key, json_t *todo)
{
    json_t *desc;
    size_t i;
    json_array_foreach(json_object_get(root, key), i, desc)
    {
        keep_digest(g, st_desc_digest(desc), todo);
    }
}

/* Keeps `digest` and, if it is a manifest, everything it reaches. */
static void mark(gc_repo_t *g, const char *digest)
{
    json_t *todo = json_array();
    bool missing;

    keep_digest(g, digest, todo);
    while (json_array_size(todo) != 0) {
        char *cur = zn_strdup(json_string_value(json_array_get(todo, json_array_size(todo) - 1)));
        json_array_remove(todo, json_array_size(todo) - 1);
        json_t *root = load(g, cur, &missing);
        if (root != NULL) {
            keep_digest(g, json_string_value(json_object_get(json_object_get(root, "config"), "digest")), NULL);
            keep_list(g, root, "layers", NULL);
            keep_list(g, root, "blobs", NULL);
            keep_list(g, root, "manifests", todo); /* index children are manifests */
        }
        free(cur);
    }
    json_decref(todo);
}

/* Like mark, for an index entry: an unreadable manifest makes the sweep unsafe. A missing
 * one references nothing that exists (it cannot be pulled either); logged once per run. */
static void mark_entry(gc_repo_t *g, const char *digest, bool log)
{
    bool missing;
    if (load(g, digest, &missing) == NULL) {
        if (!missing)
            g->unsure = true;
        if (log)
            zn_log(missing ? ZN_LOG_WARN : ZN_LOG_ERROR,
                   missing ? "gc: index.json names a missing manifest" : "gc: unreadable manifest", ZN_LSTR("repo", g->name),
                   ZN_LSTR("digest", digest));
    }
    mark(g, digest);
}

static void keep_reset(gc_repo_t *g)
{
    st_map_release(&g->keep, NULL);
    st_map_init(&g->keep);
    g->unsure = false;
}

/* An untagged entry is a root while its manifest file is younger than gcDelay. */
static bool is_young(gc_repo_t *g, const char *digest)
{
    char key[PATH_MAX];
    zn_digest_t d;
    uint64_t mtime;
    if (zn_digest_parse(zn_slice(digest, strlen(digest)), &d) != ZN_OK || st_blob_key(key, g->name, &d) != ZN_OK ||
        st_ops(g->st)->stat(g->st->drv, key, NULL, &mtime) != ZN_OK)
        return false;
    return mtime > g->cutoff_ns;
}

/* Keeps the referrers of kept manifests until nothing changes (signatures of SBOMs...). */
static void mark_referrers(gc_repo_t *g, json_t *list)
{
    json_t *desc;
    size_t i;
    bool more = true, missing;
    while (more) {
        more = false;
        json_array_foreach(list, i, desc)
        {
            const char *digest = st_desc_digest(desc);
            if (digest == NULL || st_map_get(&g->keep, digest) != NULL)
                continue;
            json_t *root = load(g, digest, &missing);
            const char *subject = json_string_value(json_object_get(json_object_get(root, "subject"), "digest"));
            if (subject != NULL && st_map_get(&g->keep, subject) != NULL) {
                mark(g, digest);
                more = true;
            }
        }
    }
}

static zn_err_t retention_edit(void *data, json_t *idx, bool *changed)
{
    gc_repo_t *g = data;
    json_t *list = json_object_get(idx, "manifests"), *desc;
    size_t i;

    keep_reset(g);
    json_array_foreach(list, i, desc)
    {
        const char *digest = st_desc_digest(desc);
        if (digest != NULL && (st_desc_tag(desc) != NULL || is_young(g, digest)))
            mark_entry(g, digest, false);
    }
    mark_referrers(g, list);
    if (g->unsure)
        return ZN_OK; /* an unreadable index may list any of them */
    json_t *dropped = json_object();
    for (i = 0; i < json_array_size(list);) {
        const char *digest = st_desc_digest(json_array_get(list, i));
        if (digest == NULL || st_map_get(&g->keep, digest) != NULL) {
            i++;
            continue;
        }
        json_object_set_new(dropped, digest, json_true());
        json_array_remove(list, i);
        *changed = true;
    }
    g->stats.manifests += json_object_size(dropped);
    json_decref(dropped);
    return ZN_OK;
}

struct sweep {
    gc_repo_t *g;
    zn_digest_algo_t algo;
};

/* Without a driver repository lock (S3) nothing keeps another replica from tagging a
 * manifest while this sweep runs: before each delete, index.json must still be the version
 * the marks came from, else the sweep stops (the next pass marks again). That leaves a
 * window of one round trip per blob instead of the whole sweep (README, "Replicas"). With
 * the lock (fs) every writer is held off and this costs nothing. */
static bool index_unmoved(gc_repo_t *g)
{
    char key[PATH_MAX];
    st_version_t now;
    if (st_ops(g->st)->lock_repo != NULL)
        return true;
    return st_repo_key(key, g->name, "index.json") == ZN_OK && st_ops(g->st)->version(g->st->drv, key, &now) == ZN_OK &&
           st_version_eq(&now, &g->swept);
}

/* One entry of blobs/<algo>/: removed when it is a blob nothing reaches and old. */
static bool sweep_one(void *data, const st_entry_t *e)
{
    struct sweep *sw = data;
    gc_repo_t *g = sw->g;
    char text[ZN_DIGEST_STR_MAX], key[PATH_MAX];
    zn_digest_t d;

    if (gc_stopping(g))
        return false;
    int n = snprintf(text, sizeof(text), "%s:%s", zn_digest_algo_name(sw->algo), e->name);
    if (e->is_dir || n <= 0 || (size_t)n >= sizeof(text) || zn_digest_parse(zn_slice(text, (size_t)n), &d) != ZN_OK ||
        st_map_get(&g->keep, d.str) != NULL || e->mtime_ns > g->cutoff_ns || st_blob_key(key, g->name, &d) != ZN_OK)
        return true; /* not a blob name (zinc never writes others there), reachable, or young */
    if (!index_unmoved(g)) {
        g->index_moved = true;
        return false;
    }
    if (st_ops(g->st)->del(g->st->drv, key) != ZN_OK)
        return true;
    g->stats.blobs++;
    g->stats.bytes += e->size;
    gc_dedupe_forget(g, &d, e->links > 1);
    return true;
}

/* Removes the unmarked, old blobs of blobs/<algo>. */
static void sweep_algo(gc_repo_t *g, zn_digest_algo_t algo)
{
    char dir[PATH_MAX];
    struct sweep sw = {g, algo};
    if (st_path(dir, "%s/blobs/%s", g->name, zn_digest_algo_name(algo)) == ZN_OK)
        st_ops(g->st)->list(g->st->drv, dir, sweep_one, &sw);
}

static zn_err_t sweep_edit(void *data, json_t *idx, bool *changed)
{
    gc_repo_t *g = data;
    json_t *list = json_object_get(idx, "manifests"), *desc;
    size_t i;
    uint64_t before = g->stats.blobs;

    keep_reset(g);
    json_array_foreach(list, i, desc)
    {
        const char *digest = st_desc_digest(desc);
        if (digest != NULL)
            mark_entry(g, digest, true);
    }
    if (g->unsure) {
        zn_log(ZN_LOG_WARN, "gc: repository has unreadable manifests, no blob removed", ZN_LSTR("repo", g->name));
        return ZN_OK;
    }
    g->index_moved = false;
    sweep_algo(g, ZN_DIGEST_SHA256);
    if (!g->index_moved)
        sweep_algo(g, ZN_DIGEST_SHA512);
    if (g->index_moved)
        zn_log(ZN_LOG_INFO, "gc: index.json changed during the sweep, the rest waits for the next pass",
               ZN_LSTR("repo", g->name));
    if (g->stats.blobs != before)
        g->repo->gc_epoch++; /* under the lock: a PUT that checked before re-checks */
    if (json_array_size(list) == 0 && !gc_stopping(g) && !g->index_moved)
        gc_remove_if_empty(g);
    return ZN_OK;
}

static void gc_release(gc_repo_t *g)
{
    st_map_release(&g->manifests, free_manifest);
    st_map_release(&g->keep, NULL);
}

zn_err_t gc_repo_run(gc_repo_t *g)
{
    zn_err_t err;

    st_map_init(&g->manifests);
    st_map_init(&g->keep);
    if ((err = st_repo_find(g->st, g->name, &g->repo)) != ZN_OK)
        goto done;
    if ((err = st_index_edit(g->st, g->repo, retention_edit, g)) != ZN_OK)
        goto done;
    if (!gc_stopping(g))
        gc_sweep_uploads(g);
    if (!gc_stopping(g))
        err = st_index_edit_seen(g->st, g->repo, sweep_edit, g, &g->swept);
done:
    gc_release(g);
    return err;
}
