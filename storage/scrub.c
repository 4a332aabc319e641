/*
 * storage/scrub.c - re-verify the whole store: every index.json parses, every manifest it
 * lists is present and names blobs that are present, and every file under blobs/<algo>/
 * hashes to its own name. Problems are reported (repository, digest or file, what is
 * wrong) through a callback; nothing is repaired, except that a blob whose bytes no longer
 * match its digest is quarantined: moved to <root>/.zinc/quarantine/<algo>-<hex>.<random>
 * (a dot-directory zot ignores, nothing deletes it), so later GETs answer BLOB_UNKNOWN
 * instead of streaming bad bytes, and the operator keeps the file to look at.
 *
 * A pass only reads (one bounded buffer, pread in ST_COPY_CHUNK pieces); it runs on the
 * calling thread, which is the CLI's main thread or the "scrub" maintenance thread, never
 * a worker. `max_bps` (0 = unlimited) paces it so a periodic pass over a big store does
 * not compete with clients; *stop is read between chunks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
static zn_err_t hash_file(scrub_t *s, int fd, zn_digest_algo_t algo, zn_digest_t *got)
{
    zn_hash_t *h = zn_hash_new(algo);
    zn_err_t err = ZN_OK;
    off_t off = 0;
    while (1) {
        if (stopping(s)) {
            err = ZN_EBUSY;
            break;
        }
        ssize_t r = pread(fd, s->buf, ST_COPY_CHUNK, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            err = r == 0 ? ZN_OK : ZN_EIO;
            break;
        }
        zn_hash_update(h, s->buf, (size_t)r);
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
    if (!zn_storage_name_valid(zn_slice(repo, strlen(repo))) || (err = st_blob_path(st, src, repo, d)) != ZN_OK)
        return ZN_EINVAL;
    st_random_hex(rnd, 8);
    if ((err = st_path(dir, "%s/.zinc/quarantine", st->root)) != ZN_OK || (err = st_mkdirs(st, dir)) != ZN_OK ||
        (err = st_path(dst, "%s/%s-%s.%s", dir, zn_digest_algo_name(d->algo), zn_digest_hex(d), rnd)) != ZN_OK)
        return err;
    if ((err = st_rename(src, dst)) != ZN_OK)
        return err;
    zn_log(ZN_LOG_ERROR, "corrupt blob quarantined", ZN_LSTR("repo", repo), ZN_LSTR("digest", d->str), ZN_LSTR("path", dst));
    return st_sync_parent(st, src);
}

static void scrub_blobs(scrub_t *s, const char *repo, zn_digest_algo_t algo)
{
    char dir[PATH_MAX], text[ZN_DIGEST_STR_MAX + 256];
    const char *an = zn_digest_algo_name(algo);
    if (st_path(dir, "%s/%s/blobs/%s", s->st->root, repo, an) != ZN_OK)
        return;
    DIR *dh = opendir(dir);
    if (dh == NULL) {
        if (errno != ENOENT)
            problem(s, repo, dir, "blob directory unreadable");
        return;
    }
    struct dirent *de;
    while (!stopping(s) && (de = readdir(dh)) != NULL) {
        zn_digest_t want, got;
        struct stat sb;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int n = snprintf(text, sizeof(text), "%s:%s", an, de->d_name);
        if (n < 0 || (size_t)n >= sizeof(text) || zn_digest_parse(zn_slice(text, (size_t)n), &want) != ZN_OK) {
            problem(s, repo, de->d_name, "stray file in the blob directory (not named by a digest)");
            continue;
        }
        int fd = openat(dirfd(dh), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd == -1 && errno == ENOENT)
            continue; /* deleted (GC, a client) since readdir */
        if (fd == -1 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            problem(s, repo, want.str, "blob unreadable");
            if (fd != -1)
                close(fd);
            continue;
        }
        zn_err_t err = hash_file(s, fd, algo, &got);
        close(fd);
        if (err == ZN_EBUSY)
            break;
        s->stats.blobs++;
        if (err != ZN_OK) {
            problem(s, repo, want.str, "blob unreadable");
        } else if (!zn_digest_eq(&want, &got)) {
            problem(s, repo, want.str, "corrupt blob (content does not match its digest), quarantined");
            zn_storage_blob_quarantine(s->st, repo, &want);
        }
    }
    closedir(dh);
}

/* The blob named by descriptor-ish object `o` ("digest" member) must exist in repo. */
static void check_ref(scrub_t *s, const char *repo, const char *manifest, json_t *o, const char *what)
{
    const char *ds = json_string_value(json_object_get(o, "digest"));
    zn_digest_t d;
    char path[PATH_MAX], msg[ZN_DIGEST_STR_MAX + 96];
    struct stat sb;
    if (ds == NULL || zn_digest_parse(zn_slice(ds, strlen(ds)), &d) != ZN_OK) {
        snprintf(msg, sizeof(msg), "manifest has an invalid %s digest", what);
        problem(s, repo, manifest, msg);
        return;
    }
    if (st_blob_path(s->st, path, repo, &d) != ZN_OK || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(msg, sizeof(msg), "missing %s blob, referenced by manifest %s", what, manifest);
        problem(s, repo, d.str, msg);
    }
}

static void scrub_manifest(scrub_t *s, const char *repo, const zn_digest_t *d)
{
    char path[PATH_MAX], *bytes = NULL;
    size_t len;
    zn_digest_t got;
    json_t *m = NULL;
    if (st_blob_path(s->st, path, repo, d) != ZN_OK)
        return;
    zn_err_t err = st_read_file(path, ST_INDEX_MAX, &bytes, &len, NULL);
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
        check_ref(s, repo, d->str, cfg, "config");
    if ((list = json_object_get(m, "layers")) != NULL && json_is_array(list))
        json_array_foreach(list, i, e) check_ref(s, repo, d->str, e, "layer");
    if ((list = json_object_get(m, "manifests")) != NULL && json_is_array(list))
        json_array_foreach(list, i, e) check_ref(s, repo, d->str, e, "child manifest");
done:
    json_decref(m);
    free(bytes);
}

static void scrub_index(scrub_t *s, const char *repo)
{
    char path[PATH_MAX], *bytes = NULL;
    size_t len, i;
    json_t *idx = NULL, *list, *e;
    if (st_path(path, "%s/%s/index.json", s->st->root, repo) != ZN_OK)
        return;
    zn_err_t err = st_read_file(path, ST_INDEX_MAX, &bytes, &len, NULL);
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
