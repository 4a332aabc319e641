/*
 * storage/internal.h - private to storage/: the store struct, the per-repository cache and
 * the filesystem helpers the storage files share. Nothing outside storage/ includes this.
 */
#ifndef ZN_STORAGE_INTERNAL_H
#define ZN_STORAGE_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>

#include <jansson.h>

#include "storage/driver.h"
#include "storage/storage.h"

#define ST_REF_NAME "org.opencontainers.image.ref.name"
#define ST_INDEX_MAX (64u << 20) /* index.json larger than this is treated as corrupt */
#define ST_COPY_CHUNK (256u << 10)

/* ---- string-keyed hash map (no lock: its owner's lock guards it) --------------------------- */

typedef struct st_map_entry {
    void *value;
    char key[];
} st_map_entry_t;

/* Entries (key copy + value) in the common hash table (common/zn.h zn_htab). */
typedef struct st_map {
    zn_htab_t h;
    size_t count;
} st_map_t;

void st_map_init(st_map_t *m);
/* Frees the entries; values are the caller's (free_value(NULL-safe) called on each if given). */
void st_map_release(st_map_t *m, void (*free_value)(void *));
void *st_map_get(const st_map_t *m, const char *key);
/* Inserts or replaces; the key is copied. Returns the previous value or NULL. */
void *st_map_put(st_map_t *m, const char *key, void *value);
/* Removes and returns the value, or NULL. */
void *st_map_del(st_map_t *m, const char *key);
/* Calls fn on every entry until it returns false. */
void st_map_each(const st_map_t *m, bool (*fn)(void *data, const char *key, void *value), void *data);

/* ---- the store ------------------------------------------------------------------------------- */

/* Recently read manifests of a repository, by digest. Content is immutable for a digest
 * and a GET finds the digest in index.json first (whose version is checked on every
 * request, index.c), so entries never go stale, whatever another process does. */
#define ST_MCACHE_SLOTS 8
#define ST_MCACHE_ENTRY_MAX (64 * 1024)
typedef struct st_mcache_entry {
    zn_digest_t digest;
    char *bytes; /* NULL: empty slot */
    size_t len;
    uint64_t used; /* LRU clock */
} st_mcache_entry_t;

/* A repository found in the table is trusted to exist for this long after its oci-layout
 * was last seen; then the next lookup looks again, and drops the entry if another process
 * (a replica's GC) removed the repository. Creating one always looks (st_repo_create). */
#define ST_REPO_RECHECK_NS 1000000000ull

/* One repository known to exist. Never freed before the store. */
typedef struct st_repo {
    char *name;
    zn_mutex_t lock; /* guards idx, the idx_* stamp and mcache; held across an index.json rewrite */
    st_mcache_entry_t mcache[ST_MCACHE_SLOTS];
    uint64_t mcache_clock;
    json_t *idx;     /* parsed index.json, never mutated once published (readers incref it) */
    st_version_t idx_ver; /* the driver's version of index.json that idx was parsed from */
    _Atomic uint64_t gc_epoch; /* bumped under `lock` whenever GC removed blobs (gc.c) */
    _Atomic uint64_t seen_ns;  /* monotonic time its oci-layout was last seen (repo.c) */
} st_repo_t;

struct zn_storage {
    const zn_config_t *cfg;
    char *root;
    st_driver_t *drv; /* where the bytes live (driver.h) */
    char *tmp_dir;    /* <root>/.zinc/tmp, created and emptied at open (zn_storage_tmp_dir) */

    zn_mutex_t repos_lock; /* guards repos */
    st_map_t repos;        /* name -> st_repo_t* */
    st_map_t retired;      /* guarded by repos_lock: "%p" -> st_repo_t* GC removed (callers may still hold them) */

    zn_mutex_t uploads_lock; /* guards uploads and every session's `busy` flag */
    st_map_t uploads;        /* "<repo>\n<uuid>" -> struct st_session* */

    zn_mutex_t info_lock; /* guards infos */
    st_map_t infos;       /* manifest digest -> struct st_minfo* (referrers cache) */

    zn_mutex_t create_lock; /* held while a repository's layout is checked and made (repo.c) */

    pthread_t rebuild_thread;
    bool rebuild_started;
    _Atomic int stopping;
    uint64_t cas_budget_ns; /* how long an index.json update retries conflicts (index.c) */
    struct st_maint *gc, *scrub; /* background passes (maint.c), NULL when off */
};

/* The driver's operations (driver.h). */
static inline const st_driver_ops_t *st_ops(const zn_storage_t *st)
{
    return st->drv->ops;
}
/* The key "<repo>/<rest>" (e.g. "index.json") into buf (PATH_MAX); ZN_EINVAL if too long. */
zn_err_t st_repo_key(char *buf, const char *repo, const char *rest);
/* "<repo>/blobs/<algo>/<hex>" */
zn_err_t st_blob_key(char *buf, const char *repo, const zn_digest_t *d);

/* ---- background passes (maint.c) ------------------------------------------------------------ */

/* Starts the gc / scrub threads the config asks for (idempotent). */
void st_maint_start(zn_storage_t *st);
/* Wakes and joins them; a pass in progress stops between files. */
void st_maint_stop(zn_storage_t *st);

/* ---- paths and files (fs.c) ---------------------------------------------------------------- */

/* snprintf into buf (PATH_MAX); ZN_EINVAL if it does not fit. */
zn_err_t st_path(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* <root>/<repo>/blobs/<algo>/<hex> */
zn_err_t st_blob_path(zn_storage_t *st, char *buf, const char *repo, const zn_digest_t *d);
/* Random lower-case hex of 2*n chars into out (2*n+1 bytes). */
void st_random_hex(char *out, size_t n);
/* Creates dir and missing parents with mode 0700. With storage.commit, the parent of every
 * directory created is fsynced (a new entry is lost in a power cut otherwise), and so is the
 * parent of one found just created (by a racing thread that may not have synced it yet). */
zn_err_t st_mkdirs(zn_storage_t *st, const char *dir);
/* fsync(fd) when storage.commit is on. */
zn_err_t st_sync_fd(zn_storage_t *st, int fd);
/* fsync the directory holding path when storage.commit is on (after a rename or link). */
zn_err_t st_sync_parent(zn_storage_t *st, const char *path);
/* rename(2) with errno mapped. */
zn_err_t st_rename(const char *from, const char *to);
/* Writes bytes to a new temp file in tmpdir and renames it over path (or, with exclusive,
 * links it there so an existing file wins: then ZN_EEXIST). */
zn_err_t st_write_atomic(zn_storage_t *st, const char *tmpdir, const char *path, const void *bytes, size_t len,
                         bool exclusive);
/* Reads a whole small file (at most max bytes, else ZN_ETOOBIG). On ZN_OK *out is malloc'd
 * (NUL-terminated) and owned by the caller. ZN_ENOENT if missing. */
zn_err_t st_read_file(const char *path, size_t max, char **out, size_t *len, struct stat *sb);
/* Hashes the file's first `len` bytes (all of it when len is UINT64_MAX). */
zn_err_t st_hash_fd(int fd, uint64_t len, zn_hash_t *h);
/* Copies src to a temp file in tmpdir, checks it against d, renames it to dst. */
zn_err_t st_copy_verified(zn_storage_t *st, const char *src, const char *tmpdir, const char *dst, const zn_digest_t *d);
/* Creates <root>/.zinc/tmp, removes crash left-overs in it, sets st->tmp_dir. */
zn_err_t st_tmp_dir_init(zn_storage_t *st);
/* Maps an errno to ZN_ENOENT / ZN_EEXIST / ZN_EIO... */
zn_err_t st_errno(int e);

/* ---- repositories (repo.c) ------------------------------------------------------------------- */

/* The cached repository, or ZN_ENOENT if it does not exist (nothing is cached then). An
 * entry older than ST_REPO_RECHECK_NS is checked again first. */
zn_err_t st_repo_find(zn_storage_t *st, const char *name, st_repo_t **out);
/* Takes repo out of the table (repos_lock held) when it is still the entry for its name,
 * into st->retired: a request may still hold the pointer. Bumps its gc_epoch, so that a
 * manifest PUT that checked its blobs before checks again. */
void st_repo_retire_locked(zn_storage_t *st, st_repo_t *repo);
/* Creates the layout if missing (safe against concurrent creators) and returns it. */
zn_err_t st_repo_create(zn_storage_t *st, const char *name, st_repo_t **out);
void st_repo_free(void *repo);

/* ---- index.json (index.c) ---------------------------------------------------------------------- */

/* A new reference to the repository's current index (re-read when the file changed on
 * disk). The caller json_decref()s it and must not modify it. */
zn_err_t st_index_get(zn_storage_t *st, st_repo_t *repo, json_t **out);
/* The same; with cached_only, ZN_EAGAIN instead of reading index.json (its version is still
 * checked: one stat, or a HEAD on S3). */
zn_err_t st_index_get_if(zn_storage_t *st, st_repo_t *repo, bool cached_only, json_t **out);
/* Read-modify-write under the repository's mutex (and the driver's repository lock, if it
 * has one): fn edits a private copy of the index as read with its version; when it returns
 * ZN_OK and sets *changed, the copy replaces index.json only if the version is unchanged
 * (driver put_if). On a conflict fn runs again on a fresh read, so it must be redoable
 * (it is called with a fresh copy and *changed false each time), after a randomised
 * backoff; when conflicts go on for st->cas_budget_ns (or a bounded number of rounds)
 * ZN_EAGAIN. fn must not return ZN_EBUSY (ST_ECONFLICT) itself. */
typedef zn_err_t (*st_index_edit_fn)(void *data, json_t *index, bool *changed);
zn_err_t st_index_edit(zn_storage_t *st, st_repo_t *repo, st_index_edit_fn fn, void *data);
/* The same, with the version of the index fn is given written to *seen before each call. */
zn_err_t st_index_edit_seen(zn_storage_t *st, st_repo_t *repo, st_index_edit_fn fn, void *data, st_version_t *seen);
/* The wait before retrying after the conflicts-th conflict in a row (0-based), given a random
 * number: uniform in [d/2, 3d/2] for d = min(1 ms << conflicts, 100 ms). */
uint64_t st_cas_backoff_ns(unsigned conflicts, uint64_t rnd);
#define ST_CAS_BUDGET_NS (10 * 1000000000ull) /* default cas_budget_ns */
/* Sorts names[0..n) (pointers borrowed), drops duplicates and fills out with copies of those
 * after `last` (NULL = all), at most max; out->more tells whether some were left. */
void st_list_page(const char **names, size_t n, const char *last, size_t max, zn_storage_list_t *out);
/* The tag of an index descriptor, or NULL. */
const char *st_desc_tag(json_t *desc);
/* The descriptor's digest string, or NULL. */
const char *st_desc_digest(json_t *desc);

/* ---- dedupe index (dedupe.c) ------------------------------------------------------------------ */

/* Records that repo holds d (best effort: failures are logged, not returned). */
void st_dedupe_record(zn_storage_t *st, const char *repo, const zn_digest_t *d);
/* Starts the background rebuild if <root>/.zinc/dedupe is missing. */
zn_err_t st_dedupe_init(zn_storage_t *st);
/* Walks every repository under the root; calls fn(data, repo name) for each. Stops early
 * when fn returns false. */
zn_err_t st_walk_repos(zn_storage_t *st, bool (*fn)(void *data, const char *repo), void *data);

/* ---- blobs (blobs.c) ------------------------------------------------------------------------ */

/* Publishes the verified session as blob d of repo: an existing copy wins, else a dedupe
 * link, else the session is committed. The session's object is gone afterwards on success
 * (the handle is still the caller's to close). */
/* Wraps a driver object as a zn_storage_blob_t (taking it over). */
zn_storage_blob_t *st_blob_wrap(zn_storage_t *st, st_object_t *obj);
zn_err_t st_blob_publish(zn_storage_t *st, const char *repo, st_append_t *session, const zn_digest_t *d);

/* ---- upload sessions (uploads.c) ------------------------------------------------------------ */

void st_session_free(void *session);
/* For GC: takes session <repo> <uuid> for exclusive use as zn_storage_upload_open does, without
 * opening or hashing its file. ZN_EBUSY while a request holds it. Give it back with
 * st_session_unclaim; with `forget` it leaves memory too (its file is gone). */
struct st_session;
zn_err_t st_session_claim(zn_storage_t *st, const char *repo, const char *uuid, struct st_session **out);
void st_session_unclaim(zn_storage_t *st, struct st_session *s, bool forget);

/* ---- manifests (manifest.c / referrers.c) ---------------------------------------------------- */

typedef struct st_manifest_check {
    char media_type[ZN_MEDIA_TYPE_MAX];
    bool has_subject;
    zn_digest_t subject;
} st_manifest_check_t;

/* Parses and validates a manifest against the repository (referenced blobs must exist
 * there; with lazy_children an index's child manifests need not). Errors as
 * zn_storage_manifest_put. */
zn_err_t st_manifest_check(zn_storage_t *st, const char *repo, const char *content_type, const char *bytes, size_t len,
                           bool lazy_children, st_manifest_check_t *out, char *detail, size_t detail_len);
void st_minfo_free(void *info);

#endif
