/*
 * storage/scrub.c - re-verify the whole store: every index.json parses, every manifest it
 * lists is present and names blobs that are present, and every file under blobs/<algo>/
 * hashes to its own name. Problems are reported (repository, digest or file, what is
 * wrong) through a callback; nothing is repaired, except that a blob whose bytes no longer
 * match its digest is quarantined: moved to <root>/.zinc/quarantine/<algo>-<hex>.<random>
 * (a dot-directory zot ignores, nothing deletes it), so later GETs answer BLOB_UNKNOWN
 * instead of streaming bad bytes, and the operator keeps the file to look at.
 *
 * A pass only reads through the driver (one bounded buffer, ST_COPY_CHUNK pieces); it runs
 * on the calling thread, which is the CLI's main thread or the store's "scrub" thread
 * (maint.c), never a worker. Quarantine is a rename on the filesystem (fs-only for now).
 * `max_bps` (0 = unlimited) paces it so a periodic pass over a big store does not compete
 * with clients; *stop is read between chunks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/internal.h"

typedef struct scrub {
    zn_storage_t *st;
    const _Atomic int *stop;
    uint64_t max_bps, start_ns;
    zn_storage_scrub_report_fn report;
    void *data;
    zn_storage_scrub_stats_t stats;
    char *buf;
} scrub_t;

static bool stopping(const scrub_t *s)
{
    return (s->stop != NULL && *s->stop) || s->st->stopping;
}

static void problem(scrub_t *s, const char *repo, const char *object, const char *what)
{
    s->stats.problems++;
    if (s->report != NULL)
        s->report(s->data, repo, object, what);
}

/* Sleeps (in slices, watching stop) until the bytes hashed so far fit the rate. */
static void pace(scrub_t *s)
{
    if (s->max_bps == 0)
        return;
    while (!stopping(s)) {
        uint64_t due = s->start_ns + s->stats.bytes * 1000000000ull / s->max_bps, now = zn_now_mono_ns();
        if (now >= due)
            return;
        uint64_t wait = due - now < 50000000ull ? due - now : 50000000ull;
        struct timespec ts = {(time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull)};
        nanosleep(&ts, NULL);
    }
}

/* ZN_OK and *got set, or ZN_EIO on a read error; ZN_EBUSY when stopped halfway. */
static zn_err_t hash_object(scrub_t *s, st_object_t *o, zn_digest_algo_t algo, zn_digest_t *got)
{
    zn_hash_t *h = zn_hash_new(algo);
    zn_err_t err = ZN_OK;
    uint64_t off = 0;
    while (1) {
        size_t r = 0;
        if (stopping(s)) {
            err = ZN_EBUSY;
            break;
        }
        if ((err = st_ops(s->st)->object_read(o, off, s->buf, ST_COPY_CHUNK, &r)) != ZN_OK || r == 0)
            break;
        zn_hash_update(h, s->buf, r);
        off += r;
        s->stats.bytes += (uint64_t)r;
        pace(s);
    }
    if (err == ZN_OK)
        zn_hash_final(h, got);
    zn_hash_free(h);
    return err;
}

zn_err_t zn_storage_blob_quarantine(zn_storage_t *st, const char *repo, const zn_digest_t *d)
{
    char src[PATH_MAX], dir[PATH_MAX], dst[PATH_MAX], rnd[17];
    zn_err_t err;
    if (!zn_storage_name_valid(zn_slice(repo, strlen(repo))))
        return ZN_EINVAL;
    st_random_hex(rnd, 8);
    if (!(st_ops(st)->flags & ST_DRV_LINK)) {
        /* an object store (S3): no rename, so copy to the quarantine key, then delete; the
         * copy is not checked against d (these bytes are known not to match it) */
        if ((err = st_blob_key(src, repo, d)) != ZN_OK ||
            (err = st_path(dst, ".zinc/quarantine/%s-%s.%s", zn_digest_algo_name(d->algo), zn_digest_hex(d), rnd)) != ZN_OK)
            return err;
        if ((err = st_ops(st)->copy(st->drv, src, dst, NULL)) != ZN_OK && err != ZN_ETOOBIG)
            return err;
        if ((err = st_ops(st)->del(st->drv, src)) != ZN_OK) /* too big to copy: removed all the same */
            return err;
        zn_log(ZN_LOG_ERROR, "corrupt blob quarantined", ZN_LSTR("repo", repo), ZN_LSTR("digest", d->str), ZN_LSTR("key", dst));
        return ZN_OK;
    }
    if ((err = st_blob_path(st, src, repo, d)) != ZN_OK)
        return ZN_EINVAL;
    if ((err = st_path(dir, "%s/.zinc/quarantine", st->root)) != ZN_OK || (err = st_mkdirs(st, dir)) != ZN_OK ||
        (err = st_path(dst, "%s/%s-%s.%s", dir, zn_digest_algo_name(d->algo), zn_digest_hex(d), rnd)) != ZN_OK)
        return err;
    if ((err = st_rename(src, dst)) != ZN_OK)
        return err;
    zn_log(ZN_LOG_ERROR, "corrupt blob quarantined", ZN_LSTR("repo", repo), ZN_LSTR("digest", d->str), ZN_LSTR("path", dst));
    return st_sync_parent(st, src);
}

struct scrub_dir {
    scrub_t *s;
    const char *repo, *dir;
    zn_digest_algo_t algo;
};

/* One entry of blobs/<algo>/: named by a digest, and hashing to it. */
static bool scrub_blob(void *data, const st_entry_t *e)
{
    struct scrub_dir *sd = data;
    scrub_t *s = sd->s;
    char text[ZN_DIGEST_STR_MAX + 256], key[PATH_MAX];
    zn_digest_t want, got;
    st_object_t *o;

    int n = snprintf(text, sizeof(text), "%s:%s", zn_digest_algo_name(sd->algo), e->name);
    if (e->is_dir || n < 0 || (size_t)n >= sizeof(text) || zn_digest_parse(zn_slice(text, (size_t)n), &want) != ZN_OK) {
        problem(s, sd->repo, e->name, "stray file in the blob directory (not named by a digest)");
        return !stopping(s);
    }
    if (st_path(key, "%s/%s", sd->dir, e->name) != ZN_OK)
        return true;
    zn_err_t err = st_ops(s->st)->open(s->st->drv, key, &o);
    if (err == ZN_ENOENT)
        return true; /* deleted (GC, a client) since the listing */
    if (err != ZN_OK) {
        problem(s, sd->repo, want.str, "blob unreadable");
        return true;
    }
    err = hash_object(s, o, sd->algo, &got);
    st_ops(s->st)->object_close(o);
    if (err == ZN_EBUSY)
        return false;
    s->stats.blobs++;
    if (err != ZN_OK) {
        problem(s, sd->repo, want.str, "blob unreadable");
    } else if (!zn_digest_eq(&want, &got)) {
        problem(s, sd->repo, want.str, "corrupt blob (content does not match its digest), quarantined");
        zn_storage_blob_quarantine(s->st, sd->repo, &want);
    }
    return !stopping(s);
}

static void scrub_blobs(scrub_t *s, const char *repo, zn_digest_algo_t algo)
{
    char dir[PATH_MAX];
    struct scrub_dir sd = {s, repo, dir, algo};
    if (st_path(dir, "%s/blobs/%s", repo, zn_digest_algo_name(algo)) != ZN_OK)
        return;
    zn_err_t err = st_ops(s->st)->list(s->st->drv, dir, scrub_blob, &sd);
    if (err != ZN_OK && err != ZN_ENOENT)
        problem(s, repo, dir, "blob directory unreadable");
}

/* Whether repo's index.json lists manifest d now. GC and clients change a repository while
 * a pass runs (GC drops a manifest from index.json first, then deletes its files): what a
 * pass found missing is reported only if the index, read again after the miss, still lists
 * the manifest that wants it. An index.json that cannot be read or parsed counts as
 * listing it, so nothing goes unreported. */
static bool still_listed(scrub_t *s, const char *repo, const zn_digest_t *d)
{
    char key[PATH_MAX], *bytes = NULL;
    size_t len, i;
    json_t *idx = NULL, *list, *e;
    bool found = true;
    if (st_repo_key(key, repo, "index.json") != ZN_OK)
        return true;
    zn_err_t err = st_ops(s->st)->get(s->st->drv, key, ST_INDEX_MAX, &bytes, &len, NULL);
    if (err == ZN_ENOENT)
        return false; /* the repository itself went (GC of an emptied one, a delete) */
    if (err == ZN_OK && (idx = json_loadb(bytes, len, 0, NULL)) != NULL &&
        json_is_array(list = json_object_get(idx, "manifests"))) {
        found = false;
        json_array_foreach(list, i, e)
        {
            const char *ds = st_desc_digest(e);
            zn_digest_t ld;
            if (ds != NULL && zn_digest_parse(zn_slice(ds, strlen(ds)), &ld) == ZN_OK && zn_digest_eq(&ld, d)) {
                found = true;
                break;
            }
        }
    }
    json_decref(idx);
    free(bytes);
    return found;
}

static bool present(scrub_t *s, const char *key)
{
    return st_ops(s->st)->stat(s->st->drv, key, NULL, NULL) == ZN_OK;
}

/* The blob named by descriptor-ish object `o` ("digest" member) must exist in repo. */
static void check_ref(scrub_t *s, const char *repo, const zn_digest_t *md, json_t *o, const char *what)
{
    const char *manifest = md->str;
    const char *ds = json_string_value(json_object_get(o, "digest"));
    zn_digest_t d;
    char key[PATH_MAX], msg[ZN_DIGEST_STR_MAX + 96];
    /* what and manifest are ours and short (a word, a digest): msg holds them; the fixed
     * texts are there so that even a cut message never goes unreported */
    if (ds == NULL || zn_digest_parse(zn_slice(ds, strlen(ds)), &d) != ZN_OK) {
        int n = snprintf(msg, sizeof(msg), "manifest has an invalid %s digest", what);
        problem(s, repo, manifest, n >= 0 && (size_t)n < sizeof(msg) ? msg : "manifest has an invalid digest");
        return;
    }
    if (st_blob_key(key, repo, &d) != ZN_OK)
        return;
    /* missing now: still a problem once the index was read again and the blob looked for
     * again, in that order (a manifest pushed anew after GC brings its blobs first) */
    if (!present(s, key) && still_listed(s, repo, md) && !present(s, key)) {
        int n = snprintf(msg, sizeof(msg), "missing %s blob, referenced by manifest %s", what, manifest);
        problem(s, repo, d.str, n >= 0 && (size_t)n < sizeof(msg) ? msg : "missing blob, referenced by a manifest");
    }
}

/* The configuration enables the on-demand mirror (extensions.sync, some onDemand registry). */
static bool mirrors_on_demand(const zn_config_t *cfg)
{
    const zn_config_sync_t *sc = cfg->extensions.sync;
    for (size_t i = 0; sc != NULL && sc->enable && i < sc->nregistries; i++)
        if (sc->registries[i].on_demand)
            return true;
    return false;
}

static void scrub_manifest(scrub_t *s, const char *repo, const zn_digest_t *d)
{
    char key[PATH_MAX], *bytes = NULL;
    size_t len;
    zn_digest_t got;
    json_t *m = NULL;
    if (st_blob_key(key, repo, d) != ZN_OK)
        return;
    zn_err_t err = st_ops(s->st)->get(s->st->drv, key, ST_INDEX_MAX, &bytes, &len, NULL);
    if (err == ZN_ENOENT && (!still_listed(s, repo, d) || present(s, key)))
        return; /* deleted (GC, a client) since index.json was read, or pushed again meanwhile */
    if (err != ZN_OK) {
        problem(s, repo, d->str, err == ZN_ENOENT ? "missing manifest (listed in index.json)" : "manifest unreadable");
        return;
    }
    s->stats.manifests++;
    zn_digest_of(d->algo, bytes, len, &got);
    if (!zn_digest_eq(&got, d)) {
        problem(s, repo, d->str, "corrupt manifest (content does not match its digest)");
        goto done;
    }
    if ((m = json_loadb(bytes, len, 0, NULL)) == NULL || !json_is_object(m)) {
        problem(s, repo, d->str, "manifest is not a JSON object");
        goto done;
    }
    json_t *cfg = json_object_get(m, "config"), *list, *e;
    size_t i;
    if (cfg != NULL)
        check_ref(s, repo, d, cfg, "config");
    if ((list = json_object_get(m, "layers")) != NULL && json_is_array(list))
        json_array_foreach(list, i, e) check_ref(s, repo, d, e, "layer");
    /* a pull-through mirror stores an index before its platforms (zn_storage_manifest_put_mirrored):
     * there a missing child is a platform nobody pulled yet, not damage */
    if ((list = json_object_get(m, "manifests")) != NULL && json_is_array(list) && !mirrors_on_demand(s->st->cfg))
        json_array_foreach(list, i, e) check_ref(s, repo, d, e, "child manifest");
done:
    json_decref(m);
    free(bytes);
}

static void scrub_index(scrub_t *s, const char *repo)
{
    char key[PATH_MAX], *bytes = NULL;
    size_t len, i;
    json_t *idx = NULL, *list, *e;
    if (st_repo_key(key, repo, "index.json") != ZN_OK)
        return;
    zn_err_t err = st_ops(s->st)->get(s->st->drv, key, ST_INDEX_MAX, &bytes, &len, NULL);
    if (err == ZN_ENOENT)
        goto done; /* a repository nothing was pushed to yet */
    if (err != ZN_OK) {
        problem(s, repo, "index.json", "index.json unreadable");
        goto done;
    }
    if ((idx = json_loadb(bytes, len, 0, NULL)) == NULL || !json_is_object(idx) ||
        !json_is_array(list = json_object_get(idx, "manifests"))) {
        problem(s, repo, "index.json", "index.json is not a valid OCI index");
        goto done;
    }
    json_array_foreach(list, i, e)
    {
        const char *ds = st_desc_digest(e);
        zn_digest_t d;
        if (ds == NULL || zn_digest_parse(zn_slice(ds, strlen(ds)), &d) != ZN_OK) {
            problem(s, repo, "index.json", "index.json lists a descriptor without a valid digest");
            continue;
        }
        scrub_manifest(s, repo, &d);
        if (stopping(s))
            break;
    }
done:
    json_decref(idx);
    free(bytes);
}

static bool scrub_repo(void *data, const char *repo)
{
    scrub_t *s = data;
    s->stats.repos++;
    scrub_index(s, repo);
    scrub_blobs(s, repo, ZN_DIGEST_SHA256);
    scrub_blobs(s, repo, ZN_DIGEST_SHA512);
    return !stopping(s);
}

zn_err_t zn_storage_scrub(zn_storage_t *st, const _Atomic int *stop, uint64_t max_bps, zn_storage_scrub_report_fn report,
                          void *data, zn_storage_scrub_stats_t *stats)
{
    scrub_t s = {st, stop, max_bps, zn_now_mono_ns(), report, data, {0}, zn_malloc(ST_COPY_CHUNK)};
    zn_err_t err = st_walk_repos(st, scrub_repo, &s);
    free(s.buf);
    if (stats != NULL)
        *stats = s.stats;
    return err;
}
