/*
 * storage/driver.h - private to storage/: the seam between the store's logic (repositories,
 * index.json, manifests, uploads, dedupe, GC) and where the bytes live. The filesystem
 * driver (fs_driver.c, on the primitives of fs.c) is the first; an S3 driver is the second.
 *
 * Keys. Every object is named by a key relative to the store's root, '/'-separated, exactly
 * zot's layout, so the same key set maps to files under storage.rootDirectory and to S3
 * object keys under storageDriver.rootdirectory:
 *   <repo>/oci-layout, <repo>/index.json, <repo>/blobs/<algo>/<hex>, <repo>/.uploads/<uuid>,
 *   .zinc/... (zinc's own: dedupe index, quarantine, tmp)
 * Storage builds keys from validated names only; a driver may rely on that (no "..", no
 * leading '/', no empty component).
 *
 * Contract every driver provides (test/unit/storage/test_driver.c checks it on each driver):
 *  - objects appear whole: put/put_if/append_commit publish a complete object atomically;
 *    a concurrent reader sees the old object, the new one, or none, never a prefix.
 *  - object handles read at any offset; a read at or past the end returns 0 bytes. A handle
 *    stays readable after the object is deleted or replaced (POSIX unlink semantics; on S3
 *    the driver pins the version it opened with If-Match or reports ZN_EIO on read).
 *  - versions: get_versioned returns an opaque token naming the exact content read;
 *    put_if writes only when the object still has that version (or, for an empty token,
 *    does not exist yet) and returns ST_ECONFLICT otherwise. Two writers holding the same
 *    token: exactly one succeeds. The token is compared by the driver only (on S3: the ETag,
 *    sent as If-Match / If-None-Match: *), never parsed by storage.
 *  - append sessions: a session object grows only at its end (write at offset == size); it
 *    survives close and a restart (reopen gives its size back); commit moves it to a key
 *    as a complete object (on S3: CompleteMultipartUpload, or copy); remove drops it.
 *  - errors are zn_err_t: ZN_ENOENT (no such object), ZN_EEXIST (exclusive put lost),
 *    ST_ECONFLICT (version changed), ZN_EIO (the backend failed), ZN_EINVAL (key too long).
 *
 * Threading. Every operation is thread-safe and may be called from any thread. A driver
 * whose calls are network round trips sets ST_DRV_MAY_BLOCK; zn_storage_may_block() tells
 * callers, and the rule for them is in storage.h: on a store that may block, no storage
 * call runs on an event-loop thread; the caller hands it to the background pool
 * (common/pool) and resumes the request when the pool posts back. The fs driver does not
 * set the flag: its calls complete inline (page cache), fsync only with storage.commit, as
 * design.md allows.
 *
 * Optional capabilities (flags, and NULL function pointers when absent):
 *  - ST_DRV_LINK (link): a second key for the same bytes at no cost (hard link): dedupe
 *    across repositories and cross-repository mounts use it; without it storage copies
 *    (copy), which on S3 is a server-side CopyObject, as zot does with dedupe off.
 *  - lock_repo/unlock: an advisory lock on a repository held across an index update (fs:
 *    flock on the repository directory, so that two zinc processes on one root serialise
 *    GC against pushes as before). Correctness does not depend on it: the index is always
 *    written with put_if.
 *  - redirect: a URL the client may fetch the object from directly (zot's redirectBlobURL,
 *    S3 presigned GET); fs has none.
 */
#ifndef ZN_STORAGE_DRIVER_H
#define ZN_STORAGE_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/zn.h"
#include "storage/storage.h"

/* The version changed under a put_if (HTTP 412 on S3). Internal to storage: callers of the
 * public API see ZN_EBUSY if retries run out. */
#define ST_ECONFLICT ZN_EBUSY

#define ST_DRV_MAY_BLOCK 1u /* operations are network round trips: never call on a worker loop */
#define ST_DRV_LINK 2u      /* link() gives a second key to the same bytes */

#define ST_VERSION_MAX 96

/* An opaque version token; len 0 = "the object does not exist". */
typedef struct st_version {
    size_t len;
    char v[ST_VERSION_MAX];
} st_version_t;

static inline bool st_version_eq(const st_version_t *a, const st_version_t *b)
{
    return a->len == b->len && __builtin_memcmp(a->v, b->v, a->len) == 0;
}

typedef struct st_driver st_driver_t;
typedef struct st_object st_object_t; /* an open readable object */
typedef struct st_append st_append_t; /* an open append session */

/* What one list() entry is. */
typedef struct st_entry {
    const char *name; /* the last component, borrowed for the callback */
    bool is_dir;      /* a prefix with more keys below (S3: a CommonPrefix) */
    uint64_t size, mtime_ns;
    unsigned links; /* keys naming the same bytes (fs: hard links); 1 without ST_DRV_LINK */
} st_entry_t;
/* Return false to stop the listing. */
typedef bool (*st_list_fn)(void *data, const st_entry_t *e);

typedef struct st_driver_ops {
    const char *name;
    unsigned flags; /* ST_DRV_* */
    void (*free)(st_driver_t *d);
    /* Optional. The process is shutting down: calls still in flight at deadline_ns (zn_now_mono_ns
     * clock) end with ZN_EAGAIN instead of waiting on a stalled backend, and later ones fail at
     * once. Any thread, any time. */
    void (*stop_at)(st_driver_t *d, uint64_t deadline_ns);

    /* ---- whole objects ---- */
    /* Size and modification time (ns since the epoch). ZN_ENOENT if absent. */
    zn_err_t (*stat)(st_driver_t *d, const char *key, uint64_t *size, uint64_t *mtime_ns);
    /* Opens for reading; on ZN_OK the caller owns *out (object_close). */
    zn_err_t (*open)(st_driver_t *d, const char *key, st_object_t **out);
    /* Reads a whole object of at most max bytes (else ZN_ETOOBIG) into *out (malloc'd,
     * NUL-terminated, the caller's), and its version when ver != NULL. */
    zn_err_t (*get)(st_driver_t *d, const char *key, size_t max, char **out, size_t *len, st_version_t *ver);
    /* The current version without the content (ZN_ENOENT if absent). */
    zn_err_t (*version)(st_driver_t *d, const char *key, st_version_t *ver);
    /* Atomically replaces (or with exclusive, creates only: else ZN_EEXIST) key with bytes. */
    zn_err_t (*put)(st_driver_t *d, const char *key, const void *bytes, size_t len, bool exclusive);
    /* Compare-and-swap: writes only if key still has version *expect (len 0: key absent);
     * else ST_ECONFLICT. On ZN_OK *now (may be NULL) is the new version. */
    zn_err_t (*put_if)(st_driver_t *d, const char *key, const void *bytes, size_t len, const st_version_t *expect,
                       st_version_t *now);
    /* Removes key. ZN_ENOENT if absent. */
    zn_err_t (*del)(st_driver_t *d, const char *key);
    /* Calls fn for each entry directly under prefix (a "directory" key), unordered.
     * ZN_ENOENT if there is none. */
    zn_err_t (*list)(st_driver_t *d, const char *prefix, st_list_fn fn, void *data);
    /* ST_DRV_LINK: makes `to` name the bytes of `from`. Without replace an existing `to`
     * stays and counts as done; with replace `to` is atomically swapped for `from`'s bytes. */
    zn_err_t (*link)(st_driver_t *d, const char *from, const char *to, bool replace);
    /* Copies from to to (atomically, an existing `to` replaced), checking the bytes against
     * d where the driver reads them (fs: it does; S3 CopyObject: server-side, unread).
     * ZN_EDIGEST if they do not match (nothing written), ZN_ENOENT if from is absent. */
    zn_err_t (*copy)(st_driver_t *d, const char *from, const char *to, const zn_digest_t *digest);
    /* Makes sure the "directory" prefix exists (fs: mkdir -p, parents fsynced with commit;
     * S3: nothing, and a prefix lists only once a key is under it). put and append_create
     * need their key's directory to exist. */
    zn_err_t (*mkdirs)(st_driver_t *d, const char *prefix);
    /* Sets the object's modification time to now (GC ages objects by it). Best effort. */
    void (*touch)(st_driver_t *d, const char *key);
    /* Optional advisory repository lock (see above); *token is the driver's. */
    zn_err_t (*lock_repo)(st_driver_t *d, const char *repo, void **token);
    void (*unlock_repo)(st_driver_t *d, void *token);

    /* ---- object handles ---- */
    uint64_t (*object_size)(const st_object_t *o);
    /* Reads up to len bytes at off into buf; *got = 0 at or past the end. No allocation. */
    zn_err_t (*object_read)(st_object_t *o, uint64_t off, void *buf, size_t len, size_t *got);
    /* A URL to fetch the object directly, or NULL (the string lives as long as o). */
    const char *(*object_redirect)(st_object_t *o);
    void (*object_close)(st_object_t *o);

    /* ---- append sessions ---- */
    /* Creates an empty session object at key (exclusive). */
    zn_err_t (*append_create)(st_driver_t *d, const char *key, st_append_t **out);
    /* Reopens an existing one; *size is what it holds. ZN_ENOENT if absent. */
    zn_err_t (*append_open)(st_driver_t *d, const char *key, st_append_t **out, uint64_t *size);
    /* Appends n bytes at off (the session's size). All or nothing: on error the session
     * is cut back to off, or, when even that failed, *torn is set (its size is unknown
     * until the next append_open). */
    zn_err_t (*append_write)(st_append_t *a, uint64_t off, const void *p, size_t n, bool *torn);
    /* Reads back [off, off+len) of the session (re-hashing after a restart). S3 cannot read
     * back the parts of an unfinished multipart upload (ZN_EUNSUPP): it keeps the running
     * hash state with the session instead (append_state_*). */
    zn_err_t (*append_read)(st_append_t *a, uint64_t off, void *buf, size_t len, size_t *got);
    /* Optional (NULL: the session is read back to rebuild its hash). Gives the driver the
     * running SHA-256 state (zn_hash_export's text) of the session's first `covers` bytes; it
     * is stored with the session at its next write-back (append_close) if covers is then the
     * session's size, so that another process can resume the hash (Distribution keeps its
     * _uploads/<id>/hashstates for the same reason). */
    void (*append_state_set)(st_append_t *a, uint64_t covers, const char *state);
    /* The state stored with the session as opened, if it covers exactly the size append_open
     * gave: ZN_OK with the text in state[ZN_HASH_STATE_MAX]; ZN_ENOENT if none. */
    zn_err_t (*append_state_get)(st_append_t *a, char *state);
    /* Optional (NULL: not offered). A reader of the session's bytes while they grow, for
     * another thread than the writer's: object_read is not clamped to a size (it returns what
     * is written so far), object_size is UINT64_MAX, and the reader stays valid after the
     * session is committed or removed, until object_close. */
    zn_err_t (*append_follow)(st_append_t *a, st_object_t **out);
    /* Makes the session's bytes durable (storage.commit) and publishes them as `key`;
     * with exclusive an existing key wins (ZN_EEXIST, session untouched). */
    zn_err_t (*append_commit)(st_append_t *a, const char *key, bool exclusive);
    /* Removes the session's object (the handle stays to be closed). */
    zn_err_t (*append_remove)(st_append_t *a);
    void (*append_close)(st_append_t *a);
} st_driver_ops_t;

/* Every driver struct starts with this. */
struct st_driver {
    const st_driver_ops_t *ops;
};

/* The filesystem driver of st (its root; fsync when storage.commit). st outlives it. */
struct zn_storage;
st_driver_t *st_fs_driver_new(struct zn_storage *st);

#endif
