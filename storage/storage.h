/*
 * storage/storage.h - the content store, on the zot storage layout.
 *
 * Every repository is an OCI image layout under the root directory:
 *   <root>/<repo>/oci-layout, index.json, blobs/<algo>/<hex>, .uploads/<uuid>
 * Tags are index.json descriptors annotated org.opencontainers.image.ref.name. Objects become
 * visible only whole (on disk: temp file in <repo>/.uploads, fsync when storage.commit,
 * rename); blobs are verified against their digest first. index.json is rewritten under a
 * per-repository mutex, as a compare-and-swap on its version (another process on the same
 * root, zot included, sees whole files only, and a concurrent writer's change is never
 * lost: the update is redone on top of it). Identical blobs are hard-linked across
 * repositories (storage.dedupe) using a digest -> repository index kept in <root>/.zinc/dedupe.
 *
 * Where the bytes live is a driver's business (storage/driver.h: the filesystem driver
 * today, S3 next): callers never see a path or a file descriptor. Blobs are read through
 * zn_storage_blob_t objects (read at an offset, size, close, optional redirect URL),
 * uploads are append-only sessions, and index.json changes are compare-and-swap updates
 * retried on conflict inside storage.
 *
 * Threading rule. All functions are thread-safe. When zn_storage_may_block() is false (the
 * filesystem driver) they complete inline and may be called on an event-loop thread, as
 * design.md allows for local disks (page cache; fsync only with storage.commit). When it is
 * true (a network driver) every call is a round trip: a caller on an event loop must not
 * make it there, but hand it to a background pool (common/pool) and resume the request
 * when the pool posts back; the functions stay synchronous so that one rule covers them
 * all. GC and scrub run on the store's own threads (zn_storage_start).
 *
 * Names, tags and digests passed in must have been validated
 * with the zn_storage_*_valid / zn_digest_parse functions below; storage re-checks names
 * before touching the filesystem, so a bad name is ZN_EINVAL, never a path outside the root.
 * Whatever creates a repository (upload start, mount, manifest PUT) fails with ZN_EEXIST
 * when the name collides with another repository's layout (`x/blobs` next to `x`, see repo.c).
 * Errors are zn_err_t; storage never knows about HTTP.
 */
#ifndef ZN_STORAGE_H
#define ZN_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/zn.h"
#include "config/config.h"

/* ---- names, tags, digests ------------------------------------------------------------- */

#define ZN_REPO_NAME_MAX 255
#define ZN_TAG_MAX 128
#define ZN_UUID_LEN 36

/* Repository name: components [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* joined by '/', <= 255 bytes. */
bool zn_storage_name_valid(zn_slice_t name);
/* Tag: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. */
bool zn_storage_tag_valid(zn_slice_t tag);
/* Upload session id as zinc makes them: 8-4-4-4-12 lower-case hex. */
bool zn_storage_uuid_valid(zn_slice_t uuid);

typedef enum zn_digest_algo { ZN_DIGEST_SHA256, ZN_DIGEST_SHA512 } zn_digest_algo_t;

#define ZN_DIGEST_STR_MAX (7 + 128 + 1)

/* A parsed digest. `str` is the canonical "algo:hex" text, NUL-terminated. */
typedef struct zn_digest {
    zn_digest_algo_t algo;
    size_t len; /* strlen(str) */
    char str[ZN_DIGEST_STR_MAX];
} zn_digest_t;

/* Parses "sha256:<64 lower hex>" or "sha512:<128 lower hex>". ZN_EUNSUPP for a digest that
 * follows the grammar algorithm ":" encoded but names another algorithm, ZN_EINVAL for
 * anything else (wrong length, upper-case hex, missing colon...). */
zn_err_t zn_digest_parse(zn_slice_t s, zn_digest_t *out);
/* "sha256" / "sha512". Static. */
const char *zn_digest_algo_name(zn_digest_algo_t algo);
/* The hex part of d->str. Points into d. */
const char *zn_digest_hex(const zn_digest_t *d);
static inline bool zn_digest_eq(const zn_digest_t *a, const zn_digest_t *b)
{
    return a->len == b->len && __builtin_memcmp(a->str, b->str, a->len) == 0;
}

/* Incremental hashing (OpenSSL EVP). _new never fails (OOM is fatal); _free(NULL) is a no-op. */
typedef struct zn_hash zn_hash_t;
zn_hash_t *zn_hash_new(zn_digest_algo_t algo);
void zn_hash_update(zn_hash_t *h, const void *p, size_t n);
/* Writes the digest of everything fed so far; the hash can be finalised only once. */
void zn_hash_final(zn_hash_t *h, zn_digest_t *out);
void zn_hash_free(zn_hash_t *h);
/* Makes dst (reused when it has src's algorithm, else freed; NULL makes a new one) the same
 * state as src and returns it: a snapshot to go back to. */
zn_hash_t *zn_hash_copy(zn_hash_t *dst, const zn_hash_t *src);
/* A SHA-256 hash's running state as text (NUL-terminated, < ZN_HASH_STATE_MAX), to be resumed
 * by zn_hash_import in another process; *count is the bytes hashed so far. ZN_EUNSUPP for
 * other algorithms. */
#define ZN_HASH_STATE_MAX 256
zn_err_t zn_hash_export(const zn_hash_t *h, char out[ZN_HASH_STATE_MAX], uint64_t *count);
/* A SHA-256 hash resumed from zn_hash_export's text (len bytes); ZN_EINVAL if malformed. */
zn_err_t zn_hash_import(const char *text, size_t len, zn_hash_t **out, uint64_t *count);
/* Digest of a buffer in one call. */
void zn_digest_of(zn_digest_algo_t algo, const void *p, size_t n, zn_digest_t *out);

/* ---- the store -------------------------------------------------------------------------- */

typedef struct zn_storage zn_storage_t;

/* Opens the store at cfg->storage.root_directory, creating it (0700) if missing, and starts
 * rebuilding the dedupe index in the background when it is missing. cfg must outlive the
 * store. On ZN_OK the caller owns *out (zn_storage_free). Else err holds a message. */
zn_err_t zn_storage_open(const zn_config_t *cfg, zn_storage_t **out, char *err, size_t errlen);
/* Starts the store's background threads that the config asks for: "gc" every
 * storage.gcInterval (storage.gc on), "scrub" at once and every extensions.scrub.interval
 * (extensions.scrub on), both paced and interruptible. Idempotent. A store used by a
 * command-line tool (zinc scrub) or a test simply does not call it. */
void zn_storage_start(zn_storage_t *st);
/* Stops them (a pass in progress ends between files) and waits; zn_storage_start may start
 * them again. zn_storage_free does it too. */
void zn_storage_stop(zn_storage_t *st);
/* Shutdown: backend calls (S3 requests) still running at deadline_ns, or started after it,
 * give up (ZN_EAGAIN), so that no thread waits on a stalled backend past the grace period.
 * Any thread; for the server's shutdown only (the store is not usable for writes after). */
void zn_storage_stop_at(zn_storage_t *st, uint64_t deadline_ns);
/* Stops the background threads (a pass in progress ends between files), waits for the
 * dedupe rebuild, frees everything. NULL is a no-op. */
void zn_storage_free(zn_storage_t *st);
/* <root>/.zinc/tmp: a local directory on the storage filesystem, made and cleaned of crash
 * left-overs by zn_storage_open, for request-body buffers (h2o's mmap'd buffers). Owned by
 * the store. */
const char *zn_storage_tmp_dir(const zn_storage_t *st);
/* Whether storage calls are network round trips (see the threading rule above). */
bool zn_storage_may_block(const zn_storage_t *st);

/* ZN_OK if the repository exists (its directory holds oci-layout), ZN_ENOENT if not. */
zn_err_t zn_storage_repo_exists(zn_storage_t *st, const char *repo);

/* A sorted (byte order) page of names. Owned by the caller: zn_storage_list_release. */
typedef struct zn_storage_list {
    char **names;
    size_t count;
    bool more; /* entries exist after the last one returned */
} zn_storage_list_t;
void zn_storage_list_release(zn_storage_list_t *l);

/* Filter for the catalog: return true to include `repo`. */
typedef bool (*zn_storage_repo_filter_fn)(void *data, const char *repo);

/* Repositories sorted by name, those after `last` (NULL = from the start), at most `max`
 * (SIZE_MAX = all) of those `filter` accepts (NULL = all). ZN_EIO if the root is unreadable. */
zn_err_t zn_storage_catalog(zn_storage_t *st, const char *last, size_t max, zn_storage_repo_filter_fn filter,
                            void *filter_data, zn_storage_list_t *out);

/* Bytes of the regular files under <root>/<repo> (zot's zot_repo_storage_bytes: a blob
 * hard-linked into several repositories counts in each), nested repositories excluded.
 * Needs no store (the metrics scrape calls it with storage.rootDirectory); root is borrowed.
 * ZN_OK with *bytes; ZN_ENOENT if no such repository, ZN_EINVAL for a bad name, ZN_EIO if a
 * directory cannot be read. Cost: one stat per file of the repository. */
zn_err_t zn_storage_repo_usage(const char *root, const char *repo, uint64_t *bytes);

/* ---- blobs ---------------------------------------------------------------------------- */

/* ZN_OK with *size set if the blob is in the repository; ZN_ENOENT if not (or no repo). */
zn_err_t zn_storage_blob_stat(zn_storage_t *st, const char *repo, const zn_digest_t *d, uint64_t *size);
/* A blob opened for reading. It reads the content it was opened with, even if the blob is
 * deleted or replaced meanwhile. Not shared between threads at once. */
typedef struct zn_storage_blob zn_storage_blob_t;
/* Opens the blob. On ZN_OK the caller owns *out (zn_storage_blob_close). ZN_ENOENT if the
 * repository lacks it, ZN_EINVAL for a bad name, ZN_EIO. */
zn_err_t zn_storage_blob_open(zn_storage_t *st, const char *repo, const zn_digest_t *d, zn_storage_blob_t **out);
/* Its size in bytes. */
uint64_t zn_storage_blob_size(const zn_storage_blob_t *b);
/* Reads up to len bytes at off into buf (the caller's; nothing is allocated or copied on
 * the way). *got is what was read: less than len only at the end, 0 at or past it. ZN_EIO
 * on a read error. */
zn_err_t zn_storage_blob_read(zn_storage_blob_t *b, uint64_t off, void *buf, size_t len, size_t *got);
/* A URL the client may be redirected to for the content (a driver that can give one and a
 * config that wants it: zot's redirectBlobURL), else NULL. Lives as long as b. */
const char *zn_storage_blob_redirect_url(zn_storage_blob_t *b);
/* Releases b. NULL is a no-op. */
void zn_storage_blob_close(zn_storage_blob_t *b);
/* Removes the blob from the repository. ZN_ENOENT if absent. Whether a manifest still
 * references it is not checked: the distribution spec (and its conformance suite, which
 * deletes a config blob before its manifest) wants 202; a manifest left without its blob
 * fails on pull like any missing blob. */
zn_err_t zn_storage_blob_delete(zn_storage_t *st, const char *repo, const zn_digest_t *d);
/* Makes the blob `d` of repository `from` available in `repo` (created if needed): hard
 * link, or a verified copy when dedupe is off or linking fails. ZN_ENOENT if `from` lacks it. */
zn_err_t zn_storage_blob_mount(zn_storage_t *st, const char *repo, const char *from, const zn_digest_t *d);
/* Finds a repository holding `d` through the dedupe index. On ZN_OK writes its name to
 * repo (NUL-terminated, at most len bytes). ZN_ENOENT if none is known. */
zn_err_t zn_storage_blob_locate(zn_storage_t *st, const zn_digest_t *d, char *repo, size_t len);

/* ---- upload sessions -------------------------------------------------------------------- */

typedef struct zn_upload zn_upload_t;

/* Starts a session in `repo`, creating the repository if needed. On ZN_OK uuid holds the
 * NUL-terminated session id (ZN_UUID_LEN + 1 bytes) and the caller owns *out if out != NULL
 * (close with zn_storage_upload_close; on error *out is NULL); pass NULL to only create it. */
zn_err_t zn_storage_upload_start(zn_storage_t *st, const char *repo, char *uuid, zn_upload_t **out);
/* Opens an existing session for exclusive use, also one started before a restart (its data
 * is re-hashed then). ZN_ENOENT if unknown, ZN_EBUSY if another request holds it. On ZN_OK
 * the caller owns *out and must call exactly one of _close, _finish, _cancel; on error *out
 * is NULL. */
zn_err_t zn_storage_upload_open(zn_storage_t *st, const char *repo, const char *uuid, zn_upload_t **out);
/* Bytes received so far. */
uint64_t zn_storage_upload_size(const zn_upload_t *up);
/* Appends n bytes (and hashes them). All or nothing: on error the session keeps its former
 * size. ZN_ETOOBIG past storage.maxBlobSize, ZN_EIO on a write error. */
zn_err_t zn_storage_upload_write(zn_upload_t *up, const void *p, size_t n);
/* zn_storage_upload_write in two halves that may run at the same time on two threads, so
 * hashing a piece overlaps writing it (api/body.c). _piece_begin (ZN_ETOOBIG past the limit;
 * then nothing else is called) remembers the hash; then _piece_data (the bytes, at the
 * session's size) and _piece_hash, each exactly once, in any order or concurrently, and
 * nothing else on the session meanwhile; then _piece_end, once both have returned: the
 * session grows by n, or on a write error keeps its former size and hash (all or nothing as
 * above) and the error is returned. */
typedef struct zn_upload_piece {
    const void *p;
    size_t n;
    uint64_t off; /* set by _piece_begin */
    zn_err_t err; /* set by _piece_data */
    bool torn;
} zn_upload_piece_t;
zn_err_t zn_storage_upload_piece_begin(zn_upload_t *up, zn_upload_piece_t *piece, const void *p, size_t n);
void zn_storage_upload_piece_data(zn_upload_t *up, zn_upload_piece_t *piece);
void zn_storage_upload_piece_hash(zn_upload_t *up, const zn_upload_piece_t *piece);
zn_err_t zn_storage_upload_piece_end(zn_upload_t *up, zn_upload_piece_t *piece);
/* A reader that follows the session while it grows, for other threads than the writer's
 * (the mirror streams a blob being fetched to its clients): zn_storage_blob_read returns the
 * bytes written so far (got 0 at the current end), zn_storage_blob_size is UINT64_MAX, and the
 * reader stays valid after the session ends (finish, cancel) until zn_storage_blob_close; it
 * then reads what the session held. ZN_EUNSUPP if the driver cannot follow a session. */
zn_err_t zn_storage_upload_follow(const zn_upload_t *up, zn_storage_blob_t **out);
/* Releases the session; it stays resumable. */
void zn_storage_upload_close(zn_upload_t *up);
/* Checks the content against d and publishes it as blob d; the session ends either way.
 * ZN_EDIGEST if the content does not match (nothing stored), ZN_EIO on a filesystem error.
 * Frees up. */
zn_err_t zn_storage_upload_finish(zn_upload_t *up, const zn_digest_t *d);
/* Deletes the session and its data. Frees up. */
zn_err_t zn_storage_upload_cancel(zn_upload_t *up);

/* ---- manifests and tags ------------------------------------------------------------------ */

#define ZN_MEDIA_TYPE_MAX 256

/* A manifest as stored. bytes is malloc'd and owned by the struct (zn_storage_manifest_release). */
typedef struct zn_storage_manifest {
    zn_digest_t digest;
    char media_type[ZN_MEDIA_TYPE_MAX];
    uint64_t size;
    char *bytes; /* NULL unless asked for */
} zn_storage_manifest_t;
void zn_storage_manifest_release(zn_storage_manifest_t *m);

/* Looks `ref` (a valid tag or digest text) up in the index. With want_bytes, loads the
 * content too. ZN_ENOENT if the repository or the reference is unknown. */
zn_err_t zn_storage_manifest_get(zn_storage_t *st, const char *repo, const char *ref, bool want_bytes,
                                 zn_storage_manifest_t *out);
/* The same from memory only: ZN_EAGAIN where it would read index.json or the manifest's
 * bytes from the store (it still checks index.json's version, and a HEAD may stat). For a
 * loop thread that sends the misses to a pool. */
zn_err_t zn_storage_manifest_peek(zn_storage_t *st, const char *repo, const char *ref, bool want_bytes,
                                  zn_storage_manifest_t *out);

/* Result of a manifest PUT. */
typedef struct zn_storage_put {
    zn_digest_t digest;
    bool has_subject;
    zn_digest_t subject;
} zn_storage_put_t;

/* Validates and stores a manifest, then points `tag` (NULL = none) at it. The digest is of
 * the exact bytes, with `by_digest`'s algorithm when given (and must equal it: ZN_EDIGEST).
 * content_type is the request's Content-Type (NULL if absent). Failures, with a message in
 * detail: ZN_ETOOBIG (over storage.maxManifestSize), ZN_EINVAL (not a valid manifest of a
 * supported media type), ZN_ENOENT (a referenced blob or child manifest is missing),
 * ZN_EDIGEST, ZN_EIO. Nothing is stored unless ZN_OK. Creates the repository if needed. */
zn_err_t zn_storage_manifest_put(zn_storage_t *st, const char *repo, const char *tag, const zn_digest_t *by_digest,
                                 const char *content_type, const char *bytes, size_t len, zn_storage_put_t *res,
                                 char *detail, size_t detail_len);
/* The same with ntags tags (0 = untagged; duplicates allowed), all pointed at the manifest in
 * one index.json rewrite: every tag is applied or, on any failure, none (an invalid tag is
 * ZN_EINVAL before anything is stored). tags and the strings are the caller's. */
zn_err_t zn_storage_manifest_put_tags(zn_storage_t *st, const char *repo, const char *const *tags, size_t ntags,
                                      const zn_digest_t *by_digest, const char *content_type, const char *bytes, size_t len,
                                      zn_storage_put_t *res, char *detail, size_t detail_len);
/* zn_storage_manifest_put_tags for the pull-through mirror: an index (manifest list) is
 * stored before its child manifests, which are fetched when a client asks for one (as
 * Distribution's proxy and zot store them), so one platform can be pulled and served from
 * the cache alone. GC keeps a present child through its index and ignores a missing one;
 * an image manifest's config and layers must still be in the store. */
zn_err_t zn_storage_manifest_put_mirrored(zn_storage_t *st, const char *repo, const char *const *tags, size_t ntags,
                                          const zn_digest_t *by_digest, const char *content_type, const char *bytes, size_t len,
                                          zn_storage_put_t *res, char *detail, size_t detail_len);

/* Deletes by digest (every index entry of it and its blob) or by tag (that tag only; the
 * manifest stays, untagged if no other tag names it). ZN_ENOENT if unknown. */
zn_err_t zn_storage_manifest_delete(zn_storage_t *st, const char *repo, const char *ref);

/* Tags of the repository sorted by name, after `last` (NULL = start), at most `max`.
 * ZN_ENOENT if the repository does not exist. */
zn_err_t zn_storage_tags_list(zn_storage_t *st, const char *repo, const char *last, size_t max, zn_storage_list_t *out);

/* The referrers of `subject` in `repo` as the JSON text of an OCI image index (always valid,
 * empty "manifests" when none or no repository). artifact_type (NULL = no filter) keeps only
 * entries of that artifact type. On ZN_OK the caller frees *json. */
zn_err_t zn_storage_referrers(zn_storage_t *st, const char *repo, const zn_digest_t *subject, const char *artifact_type,
                              char **json, size_t *len);

/* ---- garbage collection (gc.c) ------------------------------------------------------------ */

/* What one GC run removed. */
typedef struct zn_storage_gc_stats {
    uint64_t repos;     /* repositories visited */
    uint64_t manifests; /* untagged manifests dropped from index.json */
    uint64_t blobs;     /* blob files removed (manifests' own files included) */
    uint64_t uploads;   /* files removed from .uploads (stale sessions, temp files) */
    uint64_t bytes;     /* sizes of the removed blob and upload files */
    uint64_t removed_repos; /* empty repositories removed */
} zn_storage_gc_stats_t;

/* Collects garbage in `repo` as of now_ns (wall clock, ns since the epoch), zot's way with
 * delay = storage.gcDelay: untagged manifests older than delay that no kept index lists and
 * that are no referrer of a kept manifest leave index.json; then blob files no manifest in
 * index.json reaches (config, layers, index children, recursively) and older than delay are
 * removed, and so are .uploads files idle for delay that no request holds. An empty
 * repository idle for delay is removed. Everything a manifest references survives; when a
 * manifest cannot be read, no blob of the repository is removed. *stats is set (NULL: not
 * wanted). ZN_ENOENT if the repository does not exist, ZN_EIO if its index is unreadable. */
zn_err_t zn_storage_gc_repo(zn_storage_t *st, const char *repo, uint64_t now_ns, zn_storage_gc_stats_t *stats);
/* zn_storage_gc_repo on every repository under the root, logging a line for each one where
 * something was removed. Returns early (ZN_OK) once *stop (may be NULL) is non-zero; it is
 * read between files, so a shutdown never waits for a whole pass. *stats sums the repos. */
zn_err_t zn_storage_gc(zn_storage_t *st, uint64_t now_ns, const _Atomic int *stop, zn_storage_gc_stats_t *stats);

/* ---- scrub (scrub.c) -------------------------------------------------------------------------- */

/* What one scrub pass saw. */
typedef struct zn_storage_scrub_stats {
    uint64_t repos, manifests, blobs; /* visited; blobs re-hashed (manifests' files included) */
    uint64_t bytes;                   /* bytes re-hashed */
    uint64_t problems;                /* corrupt, missing or stray objects reported */
} zn_storage_scrub_stats_t;

/* Called once per problem: repo, the object (a digest, "index.json" or a file name) and what
 * is wrong. The strings are borrowed for the call. */
typedef void (*zn_storage_scrub_report_fn)(void *data, const char *repo, const char *object, const char *problem);

/* Re-verifies every repository: index.json parses as an OCI index; every manifest it lists
 * exists, matches its digest and names config/layers/children present in the repository
 * (children not checked while an onDemand mirror is configured: it stores an index before its
 * platforms, zn_storage_manifest_put_mirrored); every file in blobs/<algo>/ is named by a digest and hashes to it. A blob that does not is
 * quarantined (zn_storage_blob_quarantine). Runs on the calling thread (never call it on a
 * worker): max_bps (0 = unlimited) paces the hashing, *stop (may be NULL) stops it early.
 * *stats is set (NULL: not wanted). ZN_OK even when problems were found (see stats->problems);
 * ZN_EIO if the root cannot be read. */
zn_err_t zn_storage_scrub(zn_storage_t *st, const _Atomic int *stop, uint64_t max_bps, zn_storage_scrub_report_fn report,
                          void *data, zn_storage_scrub_stats_t *stats);
/* Moves blob d of repo out of the way, to <root>/.zinc/quarantine/, so it is no longer served
 * (GETs answer BLOB_UNKNOWN). Logs it. ZN_ENOENT if it is not there. */
zn_err_t zn_storage_blob_quarantine(zn_storage_t *st, const char *repo, const zn_digest_t *d);

#endif
