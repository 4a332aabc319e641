/*
 * storage/uploads.c - blob upload sessions.
 *
 * A session is the driver's append session <repo>/.uploads/<uuid> (zot's place for it)
 * plus, in memory, the running SHA-256 of its bytes. Appends write first and hash the
 * bytes only once they are all stored, so the hash always covers exactly the session's
 * content; a failed write is cut back. After a restart (or an eviction from the in-memory
 * table) the session is found by its object and the hash is resumed from the state the
 * driver kept with it (S3, whose unfinished parts cannot be read: append_state_*) or rebuilt
 * by re-reading it (the filesystem), so the same session URL keeps working, on any replica. A session is used by one request at a time (`busy`).
 * Finishing verifies the digest and publishes the file as the blob (blobs.c).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"

#define ST_SESSIONS_MAX 4096 /* in-memory hash states; older idle ones are re-hashed on use */

typedef struct st_session {
    char key[ZN_REPO_NAME_MAX + ZN_UUID_LEN + 2]; /* "<repo> <uuid>" */
    zn_hash_t *hash; /* SHA-256 of bytes [0, size); NULL until rebuilt */
    uint64_t size;
    uint64_t used_ns;
    bool busy;
} st_session_t;

struct zn_upload {
    zn_storage_t *st;
    st_session_t *s;
    st_append_t *a;
    zn_hash_t *undo; /* the running hash before the piece in progress (zn_storage_upload_piece_*) */
    char repo[ZN_REPO_NAME_MAX + 1];
};

void st_session_free(void *p)
{
    st_session_t *s = p;
    if (s == NULL)
        return;
    zn_hash_free(s->hash);
    free(s);
}

static bool find_lru(void *data, const char *key, void *value)
{
    st_session_t **lru = data, *s = value;
    if (!s->busy && (*lru == NULL || s->used_ns < (*lru)->used_ns))
        *lru = s;
    return true;
}

/* Inserts s (uploads_lock held), evicting the least recently used idle session if full. */
static void sessions_insert(zn_storage_t *st, st_session_t *s)
{
    if (st->uploads.count >= ST_SESSIONS_MAX) {
        st_session_t *lru = NULL;
        st_map_each(&st->uploads, find_lru, &lru);
        if (lru != NULL)
            st_session_free(st_map_del(&st->uploads, lru->key));
    }
    st_map_put(&st->uploads, s->key, s);
}

static void sessions_remove(zn_storage_t *st, st_session_t *s)
{
    zn_mutex_lock(&st->uploads_lock);
    st_map_del(&st->uploads, s->key);
    zn_mutex_unlock(&st->uploads_lock);
    st_session_free(s);
}

/* Hashes the session's first len bytes in bounded chunks. */
static zn_err_t hash_session(zn_storage_t *st, st_append_t *a, uint64_t len, zn_hash_t *h)
{
    char *buf = zn_malloc(ST_COPY_CHUNK);
    zn_err_t err = ZN_OK;
    for (uint64_t off = 0; off < len && err == ZN_OK;) {
        size_t want = len - off < ST_COPY_CHUNK ? (size_t)(len - off) : ST_COPY_CHUNK, got = 0;
        if ((err = st_ops(st)->append_read(a, off, buf, want, &got)) == ZN_OK && got == 0)
            err = ZN_EIO; /* shorter than it said */
        zn_hash_update(h, buf, got);
        off += got;
    }
    free(buf);
    return err;
}

static void make_uuid(char *out)
{
    char hex[33];
    st_random_hex(hex, 16);
    hex[12] = '4';                          /* version 4 */
    hex[16] = "89ab"[(hex[16] - '0') & 3];  /* variant 10xx */
    int n = snprintf(out, ZN_UUID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
    assert(n == ZN_UUID_LEN); /* 32 hex digits in, always 36 characters out */
    (void)n;
}

/* repo is valid (<= ZN_REPO_NAME_MAX bytes), so it fits. */
static zn_upload_t *upload_new(zn_storage_t *st, st_session_t *s, const char *repo, st_append_t *a)
{
    zn_upload_t *up = zn_malloc(sizeof(*up));
    up->st = st;
    up->s = s;
    up->a = a;
    up->undo = NULL;
    memcpy(up->repo, repo, strlen(repo) + 1);
    return up;
}

static void upload_free(zn_upload_t *up)
{
    zn_hash_free(up->undo);
    free(up);
}

/* Creates the session object; when GC removed the (empty, idle) repository since it was
 * looked up, makes the repository again. */
static zn_err_t create_session(zn_storage_t *st, const char *repo, const char *key, st_append_t **a)
{
    char dir[PATH_MAX];
    st_repo_t *r;
    zn_err_t err = st_ops(st)->append_create(st->drv, key, a);
    if (err != ZN_ENOENT)
        return err;
    if ((err = st_repo_create(st, repo, &r)) != ZN_OK || (err = st_repo_key(dir, repo, ".uploads")) != ZN_OK ||
        (err = st_ops(st)->mkdirs(st->drv, dir)) != ZN_OK)
        return err;
    return st_ops(st)->append_create(st->drv, key, a);
}

/* "<repo> <uuid>", the in-memory table's key. */
static zn_err_t session_key(char *key, size_t size, const char *repo, const char *uuid)
{
    int n = snprintf(key, size, "%s %s", repo, uuid);
    return n < 0 || (size_t)n >= size ? ZN_EINVAL : ZN_OK;
}

zn_err_t zn_storage_upload_start(zn_storage_t *st, const char *repo, char *uuid, zn_upload_t **out)
{
    char key[PATH_MAX];
    st_repo_t *r;
    st_append_t *a;
    zn_err_t err;

    if (out != NULL)
        *out = NULL;
    if ((err = st_repo_create(st, repo, &r)) != ZN_OK)
        return err;
    make_uuid(uuid);
    if ((err = st_path(key, "%s/.uploads/%s", repo, uuid)) != ZN_OK)
        return err;
    st_session_t *s = zn_calloc(1, sizeof(*s));
    if ((err = session_key(s->key, sizeof(s->key), repo, uuid)) != ZN_OK) {
        st_session_free(s);
        return err;
    }
    s->hash = zn_hash_new(ZN_DIGEST_SHA256);
    s->used_ns = zn_now_mono_ns();
    s->busy = true; /* before the object exists: GC never takes a session being created */
    zn_mutex_lock(&st->uploads_lock);
    sessions_insert(st, s);
    zn_mutex_unlock(&st->uploads_lock);
    if ((err = create_session(st, repo, key, &a)) != ZN_OK) {
        sessions_remove(st, s);
        return err;
    }
    if (out == NULL) {
        st_ops(st)->append_close(a);
        zn_mutex_lock(&st->uploads_lock);
        s->busy = false;
        zn_mutex_unlock(&st->uploads_lock);
        return ZN_OK;
    }
    *out = upload_new(st, s, repo, a);
    return ZN_OK;
}

/* Takes the session for exclusive use, creating an empty one (hash NULL) if unknown. */
static zn_err_t session_acquire(zn_storage_t *st, const char *key, st_session_t **out)
{
    zn_err_t err = ZN_OK;
    size_t n = strlen(key);
    if (n >= sizeof(((st_session_t *)NULL)->key))
        return ZN_EINVAL;
    zn_mutex_lock(&st->uploads_lock);
    st_session_t *s = st_map_get(&st->uploads, key);
    if (s == NULL) {
        s = zn_calloc(1, sizeof(*s));
        memcpy(s->key, key, n + 1);
        sessions_insert(st, s);
    } else if (s->busy) {
        err = ZN_EBUSY;
    }
    if (err == ZN_OK) {
        s->busy = true;
        s->used_ns = zn_now_mono_ns();
        *out = s;
    }
    zn_mutex_unlock(&st->uploads_lock);
    return err;
}

zn_err_t st_session_claim(zn_storage_t *st, const char *repo, const char *uuid, st_session_t **out)
{
    char key[ZN_REPO_NAME_MAX + ZN_UUID_LEN + 2];
    zn_err_t err = session_key(key, sizeof(key), repo, uuid);
    return err != ZN_OK ? err : session_acquire(st, key, out);
}

void st_session_unclaim(zn_storage_t *st, st_session_t *s, bool forget)
{
    if (forget) {
        sessions_remove(st, s);
        return;
    }
    zn_mutex_lock(&st->uploads_lock);
    s->busy = false;
    zn_mutex_unlock(&st->uploads_lock);
}

/* Rebuilds the hash when it is unknown or the size changed: from the state kept with the
 * session if it covers `size`, else from the stored bytes. */
static zn_err_t session_sync(zn_storage_t *st, st_session_t *s, st_append_t *a, uint64_t size)
{
    char text[ZN_HASH_STATE_MAX];
    uint64_t covers;
    zn_hash_t *h;
    if (s->hash != NULL && s->size == size)
        return ZN_OK;
    zn_hash_free(s->hash);
    s->hash = NULL;
    if (st_ops(st)->append_state_get != NULL && st_ops(st)->append_state_get(a, text) == ZN_OK &&
        zn_hash_import(text, strlen(text), &h, &covers) == ZN_OK) {
        if (covers == size) {
            s->hash = h;
            s->size = size;
            return ZN_OK;
        }
        zn_hash_free(h);
    }
    s->hash = zn_hash_new(ZN_DIGEST_SHA256);
    s->size = 0;
    zn_err_t err = hash_session(st, a, size, s->hash);
    if (err != ZN_OK) {
        zn_hash_free(s->hash);
        s->hash = NULL;
        return err;
    }
    s->size = size;
    return ZN_OK;
}

zn_err_t zn_storage_upload_open(zn_storage_t *st, const char *repo, const char *uuid, zn_upload_t **out)
{
    char key[ZN_REPO_NAME_MAX + ZN_UUID_LEN + 2], okey[PATH_MAX];
    st_session_t *s;
    st_append_t *a;
    uint64_t size;
    zn_err_t err;

    /* never leave the caller's pointer dangling: it often still holds the session it closed */
    *out = NULL;
    if (!zn_storage_name_valid(zn_slice(repo, strlen(repo))) || !zn_storage_uuid_valid(zn_slice(uuid, strlen(uuid))))
        return ZN_ENOENT;
    if ((err = session_key(key, sizeof(key), repo, uuid)) != ZN_OK || (err = st_path(okey, "%s/.uploads/%s", repo, uuid)) != ZN_OK)
        return err;
    if ((err = session_acquire(st, key, &s)) != ZN_OK)
        return err;
    if ((err = st_ops(st)->append_open(st->drv, okey, &a, &size)) != ZN_OK) {
        sessions_remove(st, s);
        return err;
    }
    if ((err = session_sync(st, s, a, size)) != ZN_OK) {
        st_ops(st)->append_close(a);
        zn_mutex_lock(&st->uploads_lock);
        s->busy = false;
        zn_mutex_unlock(&st->uploads_lock);
        return err;
    }
    *out = upload_new(st, s, repo, a);
    return ZN_OK;
}

uint64_t zn_storage_upload_size(const zn_upload_t *up)
{
    return up->s->size;
}

zn_err_t zn_storage_upload_write(zn_upload_t *up, const void *p, size_t n)
{
    uint64_t max = up->st->cfg->storage.max_blob_size, off = up->s->size;

    if (max != 0 && (n > max || off > max - n))
        return ZN_ETOOBIG;
    bool torn = false;
    zn_err_t err = st_ops(up->st)->append_write(up->a, off, p, n, &torn);
    if (err != ZN_OK) {
        if (torn)
            up->s->size = UINT64_MAX; /* not cut back: forces a re-hash on next open */
        return err;
    }
    zn_hash_update(up->s->hash, p, n);
    up->s->size = off + n;
    return ZN_OK;
}

zn_err_t zn_storage_upload_piece_begin(zn_upload_t *up, zn_upload_piece_t *piece, const void *p, size_t n)
{
    uint64_t max = up->st->cfg->storage.max_blob_size, off = up->s->size;

    if (max != 0 && (n > max || off > max - n))
        return ZN_ETOOBIG;
    *piece = (zn_upload_piece_t){.p = p, .n = n, .off = off, .err = ZN_OK};
    up->undo = zn_hash_copy(up->undo, up->s->hash);
    return ZN_OK;
}

void zn_storage_upload_piece_data(zn_upload_t *up, zn_upload_piece_t *piece)
{
    piece->torn = false;
    piece->err = st_ops(up->st)->append_write(up->a, piece->off, piece->p, piece->n, &piece->torn);
}

void zn_storage_upload_piece_hash(zn_upload_t *up, const zn_upload_piece_t *piece)
{
    zn_hash_update(up->s->hash, piece->p, piece->n);
}

zn_err_t zn_storage_upload_piece_end(zn_upload_t *up, zn_upload_piece_t *piece)
{
    if (piece->err == ZN_OK) {
        up->s->size = piece->off + piece->n;
        return ZN_OK;
    }
    zn_hash_t *h = up->s->hash; /* back to the hash of the bytes before the piece */
    up->s->hash = up->undo;
    up->undo = h;
    if (piece->torn)
        up->s->size = UINT64_MAX; /* as in zn_storage_upload_write: re-hashed on next open */
    return piece->err;
}

void zn_storage_upload_close(zn_upload_t *up)
{
    zn_storage_t *st = up->st;
    char text[ZN_HASH_STATE_MAX];
    uint64_t covers;
    /* the running hash goes with the session, for whichever process continues it */
    if (st_ops(st)->append_state_set != NULL && up->s->hash != NULL && up->s->size != UINT64_MAX &&
        zn_hash_export(up->s->hash, text, &covers) == ZN_OK && covers == up->s->size)
        st_ops(st)->append_state_set(up->a, covers, text);
    st_ops(st)->append_close(up->a);
    zn_mutex_lock(&st->uploads_lock);
    up->s->busy = false;
    up->s->used_ns = zn_now_mono_ns();
    zn_mutex_unlock(&st->uploads_lock);
    upload_free(up);
}

/* The digest of the session's content with d's algorithm. Consumes the running hash. */
static zn_err_t content_digest(zn_upload_t *up, zn_digest_algo_t algo, zn_digest_t *out)
{
    if (algo == ZN_DIGEST_SHA256) {
        zn_hash_final(up->s->hash, out);
        return ZN_OK;
    }
    zn_hash_t *h = zn_hash_new(algo);
    zn_err_t err = hash_session(up->st, up->a, up->s->size, h);
    if (err == ZN_OK)
        zn_hash_final(h, out);
    zn_hash_free(h);
    return err;
}

zn_err_t zn_storage_upload_finish(zn_upload_t *up, const zn_digest_t *d)
{
    zn_digest_t got;
    zn_err_t err;

    if ((err = content_digest(up, d->algo, &got)) != ZN_OK)
        goto done;
    if (!zn_digest_eq(&got, d)) {
        err = ZN_EDIGEST;
        goto done;
    }
    err = st_blob_publish(up->st, up->repo, up->a, d);
done:
    if (err != ZN_OK)
        st_ops(up->st)->append_remove(up->a);
    st_ops(up->st)->append_close(up->a);
    sessions_remove(up->st, up->s);
    upload_free(up);
    return err;
}

zn_err_t zn_storage_upload_cancel(zn_upload_t *up)
{
    zn_err_t err = st_ops(up->st)->append_remove(up->a);
    st_ops(up->st)->append_close(up->a);
    sessions_remove(up->st, up->s);
    upload_free(up);
    return err;
}

zn_err_t zn_storage_upload_follow(const zn_upload_t *up, zn_storage_blob_t **out)
{
    st_object_t *obj;
    if (st_ops(up->st)->append_follow == NULL)
        return ZN_EUNSUPP;
    zn_err_t err = st_ops(up->st)->append_follow(up->a, &obj);
    if (err != ZN_OK)
        return err;
    *out = st_blob_wrap(up->st, obj);
    return ZN_OK;
}
