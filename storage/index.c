/*
 * storage/index.c - index.json: the cached copy readers share and the compare-and-swap
 * update that changes it.
 *
 * Readers get a reference to an immutable parsed index; it is re-read when the driver's
 * version of index.json differs from the cached one (another process, zot included, may
 * have rewritten it). A writer reads the index with its version, edits a private copy and
 * writes it back only if the version is unchanged (driver put_if: rename under a lock on
 * the replaced file on disk, If-Match on S3); on a conflict it starts over from a fresh
 * read, a bounded number of times. Within this process the repository's mutex serialises
 * writers so conflicts come only from other processes; the fs driver also takes an flock
 * on the repository directory across the update (lock_repo), which keeps two zinc
 * processes on one root from interleaving GC with a push, as before the driver seam.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/internal.h"

const char *st_desc_tag(json_t *desc)
{
    return json_string_value(json_object_get(json_object_get(desc, "annotations"), ST_REF_NAME));
}

const char *st_desc_digest(json_t *desc)
{
    return json_string_value(json_object_get(desc, "digest"));
}

/* Conflicts in a row are met with a randomised exponential backoff: the writers that keep
 * colliding are other processes on the same bucket or root (within a process the repo's
 * mutex serialises them), and retrying at once only re-creates the same race, so a slow
 * replica (a loaded machine, a sanitizer build) could lose every round to faster ones. The
 * k-th conflict waits uniform(0.5, 1.5) x min(INDEX_CAS_BASE_NS << k, INDEX_CAS_CAP_NS); the
 * update gives up after INDEX_CAS_TRIES conflicts or once st->cas_budget_ns has passed,
 * whichever comes first, with ZN_EAGAIN (503 + Retry-After: the client may retry). Only
 * conflicting writers sleep; on the fs driver, whose lock_repo excludes other zinc
 * processes, that means a foreign writer (zot) and never a zinc on the event loop. */
#define INDEX_CAS_TRIES 64
#define INDEX_CAS_BASE_NS 1000000ull  /* 1 ms */
#define INDEX_CAS_CAP_NS 100000000ull /* 100 ms */

uint64_t st_cas_backoff_ns(unsigned conflicts, uint64_t rnd)
{
    uint64_t d = conflicts >= 7 ? INDEX_CAS_CAP_NS : INDEX_CAS_BASE_NS << conflicts;
    if (d > INDEX_CAS_CAP_NS)
        d = INDEX_CAS_CAP_NS;
    return d / 2 + rnd % (d + 1); /* [d/2, 3d/2] */
}

static uint64_t cas_rand(void)
{
    static _Thread_local uint64_t x;
    if (x == 0)
        x = zn_now_mono_ns() ^ ((uint64_t)(uintptr_t)&x << 16) ^ 0x9e3779b97f4a7c15ull;
    x ^= x << 13; /* xorshift64: jitter only, no secrecy needed */
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

static void cas_sleep(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Reads and parses index.json with its version; "manifests": null (zot's fresh index)
 * becomes []. */
static zn_err_t load_index(zn_storage_t *st, const char *repo, json_t **out, st_version_t *ver)
{
    char key[PATH_MAX], *text = NULL;
    size_t len;
    json_error_t jerr;
    zn_err_t err;

    if ((err = st_repo_key(key, repo, "index.json")) != ZN_OK)
        return err;
    if ((err = st_ops(st)->get(st->drv, key, ST_INDEX_MAX, &text, &len, ver)) != ZN_OK)
        return err;
    json_t *idx = json_loadb(text, len, 0, &jerr);
    free(text);
    json_t *m = json_object_get(idx, "manifests");
    if (!json_is_object(idx) || (m != NULL && !json_is_array(m) && !json_is_null(m))) {
        zn_log(ZN_LOG_ERROR, "corrupt index.json", ZN_LSTR("repo", repo), ZN_LSTR("error", jerr.text));
        json_decref(idx);
        return ZN_EIO;
    }
    if (!json_is_array(m))
        json_object_set_new(idx, "manifests", json_array());
    *out = idx;
    return ZN_OK;
}

zn_err_t st_index_get(zn_storage_t *st, st_repo_t *repo, json_t **out)
{
    return st_index_get_if(st, repo, false, out);
}

zn_err_t st_index_get_if(zn_storage_t *st, st_repo_t *repo, bool cached_only, json_t **out)
{
    char key[PATH_MAX];
    st_version_t ver;
    zn_err_t err;

    if ((err = st_repo_key(key, repo->name, "index.json")) != ZN_OK)
        return err;
    if ((err = st_ops(st)->version(st->drv, key, &ver)) != ZN_OK)
        return err;
    zn_mutex_lock(&repo->lock);
    if (repo->idx == NULL || !st_version_eq(&repo->idx_ver, &ver)) {
        json_t *idx;
        if (cached_only) {
            zn_mutex_unlock(&repo->lock);
            return ZN_EAGAIN;
        }
        if ((err = load_index(st, repo->name, &idx, &ver)) != ZN_OK) {
            zn_mutex_unlock(&repo->lock);
            return err;
        }
        json_decref(repo->idx);
        repo->idx = idx;
        repo->idx_ver = ver;
    }
    *out = json_incref(repo->idx);
    zn_mutex_unlock(&repo->lock);
    return ZN_OK;
}

/* Writes idx if index.json still has version *ver; publishes it as the cached index. */
static zn_err_t write_index(zn_storage_t *st, st_repo_t *repo, json_t *idx, const st_version_t *ver)
{
    char key[PATH_MAX];
    st_version_t now;
    zn_err_t err;

    char *text = json_dumps(idx, JSON_COMPACT);
    if (text == NULL)
        return ZN_ENOMEM;
    if ((err = st_repo_key(key, repo->name, "index.json")) != ZN_OK)
        goto done;
    if ((err = st_ops(st)->put_if(st->drv, key, text, strlen(text), ver, &now)) != ZN_OK)
        goto done;
    json_decref(repo->idx);
    repo->idx = json_incref(idx);
    repo->idx_ver = now; /* len 0 when unknown: never equal to a real version, forces a reload */
done:
    free(text);
    return err;
}

zn_err_t st_index_edit(zn_storage_t *st, st_repo_t *repo, st_index_edit_fn fn, void *data)
{
    return st_index_edit_seen(st, repo, fn, data, NULL);
}

zn_err_t st_index_edit_seen(zn_storage_t *st, st_repo_t *repo, st_index_edit_fn fn, void *data, st_version_t *seen)
{
    void *lock = NULL;
    zn_err_t err;

    zn_mutex_lock(&repo->lock);
    if (st_ops(st)->lock_repo != NULL && (err = st_ops(st)->lock_repo(st->drv, repo->name, &lock)) != ZN_OK)
        goto done;
    uint64_t start = zn_now_mono_ns();
    unsigned conflicts = 0;
    for (;;) {
        json_t *idx = NULL;
        st_version_t ver;
        bool changed = false;
        /* never trust the cache here: another process may have written since */
        if ((err = load_index(st, repo->name, &idx, &ver)) == ZN_OK && seen != NULL)
            *seen = ver;
        if (err == ZN_OK && (err = fn(data, idx, &changed)) == ZN_OK && changed)
            err = write_index(st, repo, idx, &ver);
        json_decref(idx);
        if (err != ST_ECONFLICT)
            break;
        uint64_t wait = st_cas_backoff_ns(conflicts, cas_rand());
        if (++conflicts >= INDEX_CAS_TRIES || zn_now_mono_ns() - start + wait > st->cas_budget_ns) {
            zn_log(ZN_LOG_WARN, "index.json kept changing under an update, gave up", ZN_LSTR("repo", repo->name),
                   ZN_LINT("conflicts", conflicts), ZN_LINT("ms", (int64_t)((zn_now_mono_ns() - start) / 1000000u)));
            err = ZN_EAGAIN;
            break;
        }
        cas_sleep(wait);
    }
    if (conflicts > 0 && err == ZN_OK)
        zn_log(ZN_LOG_DEBUG, "index.json update won after conflicts", ZN_LSTR("repo", repo->name), ZN_LINT("conflicts", conflicts));
    if (lock != NULL)
        st_ops(st)->unlock_repo(st->drv, lock);
done:
    zn_mutex_unlock(&repo->lock);
    return err;
}
