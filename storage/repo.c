/*
 * storage/repo.c - opening the store and the table of repositories known to exist.
 *
 * A repository exists when <root>/<name>/oci-layout exists (zot's rule). Entries are added
 * to the table the first time a repository is found or created; each carries the lock and
 * the cached index.json of index.c. Another process on the same store (a replica, zot) may
 * remove a repository: an entry is trusted for ST_REPO_RECHECK_NS (1 s) after its layout
 * was last seen, then looked at again and dropped if gone, and creation always looks. Creation is safe
 * against concurrent creators (this process or another): files are linked into place only
 * if absent, so an existing index.json is never clobbered.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"
#include "storage/s3.h"

static const char layout_json[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
static const char empty_index_json[] = "{\"schemaVersion\":2,\"manifests\":[]}";

zn_err_t st_repo_key(char *buf, const char *repo, const char *rest)
{
    return st_path(buf, "%s/%s", repo, rest);
}

zn_err_t st_blob_key(char *buf, const char *repo, const zn_digest_t *d)
{
    return st_path(buf, "%s/blobs/%s/%s", repo, zn_digest_algo_name(d->algo), zn_digest_hex(d));
}

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

void st_repo_retire_locked(zn_storage_t *st, st_repo_t *repo)
{
    char key[32];
    /* a pointer prints in at most 18 bytes ("0x" + 16 hex digits) */
    if ((size_t)snprintf(key, sizeof(key), "%p", (void *)repo) >= sizeof(key))
        abort();
    if (st_map_get(&st->repos, repo->name) == repo) {
        st_map_del(&st->repos, repo->name);
        st_map_put(&st->retired, key, repo);
    }
    repo->gc_epoch++;
}

/* Whether the cached entry still names a repository: trusted for max_age after its layout
 * was last seen (0: look now). When the layout is gone (another process removed the
 * repository) the entry leaves the table; a backend error keeps it (the request's next
 * call reports that error). */
static bool still_there(zn_storage_t *st, st_repo_t *repo, uint64_t max_age)
{
    char key[PATH_MAX];
    uint64_t now = zn_now_mono_ns();
    if (now - repo->seen_ns < max_age)
        return true;
    if (st_repo_key(key, repo->name, "oci-layout") != ZN_OK)
        return false;
    zn_err_t err = st_ops(st)->stat(st->drv, key, NULL, NULL);
    if (err != ZN_ENOENT) {
        if (err == ZN_OK)
            repo->seen_ns = now;
        return true;
    }
    zn_mutex_lock(&st->repos_lock);
    st_repo_retire_locked(st, repo);
    zn_mutex_unlock(&st->repos_lock);
    return false;
}

static zn_err_t find(zn_storage_t *st, const char *name, uint64_t max_age, st_repo_t **out)
{
    char key[PATH_MAX];
    st_repo_t *repo;

    if (!zn_storage_name_valid(zn_slice(name, strlen(name))))
        return ZN_EINVAL;
    zn_mutex_lock(&st->repos_lock);
    repo = st_map_get(&st->repos, name);
    zn_mutex_unlock(&st->repos_lock);
    if (repo != NULL && still_there(st, repo, max_age)) {
        *out = repo;
        return ZN_OK;
    }
    if (st_repo_key(key, name, "oci-layout") != ZN_OK)
        return ZN_EINVAL;
    zn_err_t err = st_ops(st)->stat(st->drv, key, NULL, NULL);
    /* a backend that failed or is busy (S3 throttling past the retries) is not an absent
     * repository: taken for one, a GET would be a 404 and a push would re-create the layout */
    if (err == ZN_EIO || err == ZN_EAGAIN)
        return err;
    if (err != ZN_OK)
        return ZN_ENOENT;

    repo = zn_calloc(1, sizeof(*repo));
    repo->name = zn_strdup(name);
    repo->seen_ns = zn_now_mono_ns();
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

zn_err_t st_repo_find(zn_storage_t *st, const char *name, st_repo_t **out)
{
    return find(st, name, ST_REPO_RECHECK_NS, out);
}

/*
 * Layout collisions. A repository's directory holds its own layout (oci-layout, index.json,
 * blobs/<algo>/<hex>, .uploads) next to the directories of the repositories nested below
 * it, and the name grammar allows the components "blobs", "index.json" and "oci-layout"
 * (".uploads" cannot be a component). So a repository `x/blobs` would live inside the blob
 * store of a repository `x`, `x/index.json` where x's index belongs, `x/blobs/sha256` among
 * x's blob files, and the reverse when the nested one comes first. The name that comes
 * second is refused (ZN_EEXIST); neither repository is touched. zot performs no such check
 * and would mix the two layouts in one directory.
 */
static bool is_layout_name(const char *p, size_t n)
{
    return (n == 5 && memcmp(p, "blobs", 5) == 0) || (n == 10 && memcmp(p, "index.json", 10) == 0) ||
           (n == 10 && memcmp(p, "oci-layout", 10) == 0);
}

static bool is_object(zn_storage_t *st, const char *key)
{
    return st_ops(st)->stat(st->drv, key, NULL, NULL) == ZN_OK;
}

/* A prefix of name is a repository and the next component is one of its layout entries. */
static bool inside_a_repository(zn_storage_t *st, const char *name)
{
    char key[PATH_MAX];
    for (const char *slash = strchr(name, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
        const char *next = slash + 1, *end = strchr(next, '/');
        size_t n = end != NULL ? (size_t)(end - next) : strlen(next);
        if (!is_layout_name(next, n))
            continue;
        if (st_path(key, "%.*s/oci-layout", (int)(slash - name), name) != ZN_OK || is_object(st, key))
            return true;
    }
    return false;
}

static bool stop_at_first(void *data, const st_entry_t *e)
{
    return false;
}

struct only_blobs {
    size_t hexlen; /* 64 or 128; 0 while listing blobs/ itself */
    zn_storage_t *st;
    const char *name;
    bool ok;
};

/* An entry of blobs/<algo>/: a blob object named by hexlen lower-case hex digits. */
static bool blob_entry_ok(void *data, const st_entry_t *e)
{
    struct only_blobs *o = data;
    size_t n = strlen(e->name);
    o->ok = !e->is_dir && n == o->hexlen && strspn(e->name, "0123456789abcdef") == n;
    return o->ok;
}

/* An entry of blobs/: sha256/ or sha512/ holding only blobs. */
static bool algo_entry_ok(void *data, const st_entry_t *e)
{
    struct only_blobs *o = data, sub = {0, o->st, o->name, true};
    char key[PATH_MAX];
    sub.hexlen = strcmp(e->name, "sha256") == 0 ? 64 : strcmp(e->name, "sha512") == 0 ? 128 : 0;
    if (sub.hexlen == 0 || !e->is_dir || st_path(key, "%s/blobs/%s", o->name, e->name) != ZN_OK) {
        o->ok = false;
        return false;
    }
    zn_err_t err = st_ops(o->st)->list(o->st->drv, key, blob_entry_ok, &sub);
    o->ok = sub.ok && (err == ZN_OK || err == ZN_ENOENT);
    return o->ok;
}

/* Some repository lives below one of name's own layout entries. name is not a repository
 * (yet), so what is there is at most a creation cut short: small, and cheap to look at. */
static bool holds_a_repository(zn_storage_t *st, const char *name)
{
    char key[PATH_MAX];
    struct only_blobs o = {0, st, name, true};

    for (int i = 0; i < 2; i++) {
        /* a prefix (directory) there instead of an object: something is nested below it */
        if (st_path(key, "%s/%s", name, i == 0 ? "index.json" : "oci-layout") != ZN_OK ||
            st_ops(st)->list(st->drv, key, stop_at_first, NULL) != ZN_ENOENT)
            return true;
    }
    if (st_path(key, "%s/blobs", name) != ZN_OK)
        return true;
    zn_err_t err = st_ops(st)->list(st->drv, key, algo_entry_ok, &o);
    if (err == ZN_ENOENT)
        return false;
    return err != ZN_OK || !o.ok;
}

static zn_err_t create_locked(zn_storage_t *st, const char *name)
{
    char key[PATH_MAX];
    const st_driver_ops_t *ops = st_ops(st);
    zn_err_t err;

    if (inside_a_repository(st, name) || holds_a_repository(st, name))
        return ZN_EEXIST;
    if ((err = st_repo_key(key, name, ".uploads")) != ZN_OK || (err = ops->mkdirs(st->drv, key)) != ZN_OK)
        return err;
    if ((err = st_repo_key(key, name, "blobs/sha256")) != ZN_OK || (err = ops->mkdirs(st->drv, key)) != ZN_OK)
        return err;
    /* index.json first: a directory with oci-layout is a repository and must have an index */
    if ((err = st_repo_key(key, name, "index.json")) != ZN_OK)
        return err;
    err = ops->put(st->drv, key, empty_index_json, sizeof(empty_index_json) - 1, true);
    if (err != ZN_OK && err != ZN_EEXIST)
        return err;
    if ((err = st_repo_key(key, name, "oci-layout")) != ZN_OK)
        return err;
    err = ops->put(st->drv, key, layout_json, sizeof(layout_json) - 1, true);
    return err == ZN_EEXIST ? ZN_OK : err;
}

zn_err_t st_repo_create(zn_storage_t *st, const char *name, st_repo_t **out)
{
    /* look at the layout now, not within the table's bound: another process may have
     * removed the repository, and writing into it as if it were there loses the push */
    zn_err_t err = find(st, name, 0, out);

    if (err != ZN_ENOENT)
        return err;
    /* creators of `x` and `x/blobs` must not both pass the collision check */
    zn_mutex_lock(&st->create_lock);
    if ((err = find(st, name, 0, out)) == ZN_ENOENT && (err = create_locked(st, name)) == ZN_OK)
        err = find(st, name, 0, out);
    zn_mutex_unlock(&st->create_lock);
    return err;
}

zn_err_t zn_storage_repo_exists(zn_storage_t *st, const char *repo)
{
    st_repo_t *r;
    return st_repo_find(st, repo, &r);
}

/* The message of a failed open into the caller's errbuf; one that does not fit ends in
 * "..." (it still names the key first), so a cut is never silent. */
static void __attribute__((format(printf, 3, 4))) open_error(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
    if (errlen == 0)
        return;
    if (n < 0)
        errbuf[0] = '\0';
    else if ((size_t)n >= errlen && errlen > 4)
        memcpy(errbuf + errlen - 4, "...", 4);
}

zn_err_t zn_storage_open(const zn_config_t *cfg, zn_storage_t **out, char *errbuf, size_t errlen)
{
    const char *root = cfg->storage.root_directory;
    size_t len = root != NULL ? strlen(root) : 0;
    zn_err_t err;

    while (len > 1 && root[len - 1] == '/')
        len--;
    if (len == 0 || len >= PATH_MAX - 512) {
        open_error(errbuf, errlen, "storage.rootDirectory: %s", len == 0 ? "missing" : "too long");
        return ZN_EINVAL;
    }
    zn_storage_t *st = zn_calloc(1, sizeof(*st));
    st->cfg = cfg;
    st->cas_budget_ns = ST_CAS_BUDGET_NS;
    st->root = zn_slice_dup(zn_slice(root, len));
    zn_mutex_init(&st->repos_lock, "storage.repos");
    zn_mutex_init(&st->uploads_lock, "storage.uploads");
    zn_mutex_init(&st->info_lock, "storage.referrers");
    zn_mutex_init(&st->create_lock, "storage.create");
    st_map_init(&st->repos);
    st_map_init(&st->retired);
    st_map_init(&st->uploads);
    st_map_init(&st->infos);
    if (cfg->storage.driver != NULL) {
        /* S3 holds the repositories; rootDirectory stays the local home of .zinc/tmp and
         * the dedupe index, as zot keeps its cache database there with S3 */
        char derr[256];
        if ((st->drv = st_s3_driver_new(cfg->storage.driver, derr, sizeof(derr))) == NULL) {
            open_error(errbuf, errlen, "%s", derr);
            zn_storage_free(st);
            return ZN_EINVAL;
        }
    } else {
        st->drv = st_fs_driver_new(st);
    }
    if ((err = st_mkdirs(st, st->root)) != ZN_OK || (err = st_tmp_dir_init(st)) != ZN_OK ||
        (err = st_dedupe_init(st)) != ZN_OK) {
        open_error(errbuf, errlen, "storage.rootDirectory: %s: %s", st->root, zn_err_str(err));
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
    st_maint_stop(st);
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
    zn_mutex_destroy(&st->create_lock);
    if (st->drv != NULL)
        st->drv->ops->free(st->drv);
    free(st->tmp_dir);
    free(st->root);
    free(st);
}

const char *zn_storage_tmp_dir(const zn_storage_t *st)
{
    return st->tmp_dir;
}

bool zn_storage_may_block(const zn_storage_t *st)
{
    return (st_ops(st)->flags & ST_DRV_MAY_BLOCK) != 0;
}

void zn_storage_start(zn_storage_t *st)
{
    st_maint_start(st);
}

void zn_storage_stop(zn_storage_t *st)
{
    st_maint_stop(st);
}

void zn_storage_stop_at(zn_storage_t *st, uint64_t deadline_ns)
{
    if (st_ops(st)->stop_at != NULL)
        st_ops(st)->stop_at(st->drv, deadline_ns);
}
