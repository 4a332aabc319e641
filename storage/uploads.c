/*
 * storage/uploads.c - blob upload sessions.
 *
 * A session is the file <repo>/.uploads/<uuid> (zot's place for it) plus, in memory, the
 * running SHA-256 of its bytes. Appends write the file first and hash the bytes only once
 * they are all on disk, so the hash always covers exactly the file's content; a failed
 * write truncates back. After a restart (or an eviction from the in-memory table) the
 * session is found by its file and the hash is rebuilt by re-reading it, so the same
 * session URL keeps working. A session is used by one request at a time (`busy`).
 * Finishing verifies the digest and publishes the file as the blob (blobs.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    int fd;
    char repo[ZN_REPO_NAME_MAX + 1];
    char path[PATH_MAX];
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

static void make_uuid(char *out)
{
    char hex[33];
    st_random_hex(hex, 16);
    hex[12] = '4';                          /* version 4 */
    hex[16] = "89ab"[(hex[16] - '0') & 3];  /* variant 10xx */
    snprintf(out, ZN_UUID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static zn_upload_t *upload_new(zn_storage_t *st, st_session_t *s, const char *repo, const char *path, int fd)
{
    zn_upload_t *up = zn_malloc(sizeof(*up));
    up->st = st;
    up->s = s;
    up->fd = fd;
    snprintf(up->repo, sizeof(up->repo), "%s", repo);
    snprintf(up->path, sizeof(up->path), "%s", path);
    return up;
}

/* Creates the session file; when GC removed the (empty, idle) repository since it was
 * looked up, makes the repository again. */
static int create_file(zn_storage_t *st, const char *repo, const char *path)
{
    char dir[PATH_MAX];
    st_repo_t *r;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd != -1 || errno != ENOENT)
        return fd;
    if (st_repo_create(st, repo, &r) != ZN_OK || st_path(dir, "%s/%s/.uploads", st->root, repo) != ZN_OK ||
        st_mkdirs(st, dir) != ZN_OK) {
        errno = ENOENT;
        return -1;
    }
    return open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
}

zn_err_t zn_storage_upload_start(zn_storage_t *st, const char *repo, char *uuid, zn_upload_t **out)
{
    char path[PATH_MAX];
    st_repo_t *r;
    zn_err_t err;
    int fd;

    if (out != NULL)
        *out = NULL;
    if ((err = st_repo_create(st, repo, &r)) != ZN_OK)
        return err;
    make_uuid(uuid);
    if ((err = st_path(path, "%s/%s/.uploads/%s", st->root, repo, uuid)) != ZN_OK)
        return err;
    st_session_t *s = zn_calloc(1, sizeof(*s));
    snprintf(s->key, sizeof(s->key), "%s %s", repo, uuid);
    s->hash = zn_hash_new(ZN_DIGEST_SHA256);
    s->used_ns = zn_now_mono_ns();
    s->busy = true; /* before the file exists: GC never takes a session being created */
    zn_mutex_lock(&st->uploads_lock);
    sessions_insert(st, s);
    zn_mutex_unlock(&st->uploads_lock);
    if ((fd = create_file(st, repo, path)) == -1) {
        err = st_errno(errno);
        sessions_remove(st, s);
        return err;
    }
    if (out == NULL) {
        close(fd);
        zn_mutex_lock(&st->uploads_lock);
        s->busy = false;
        zn_mutex_unlock(&st->uploads_lock);
        return ZN_OK;
    }
    *out = upload_new(st, s, repo, path, fd);
    return ZN_OK;
}

/* Takes the session for exclusive use, creating an empty one (hash NULL) if unknown. */
static zn_err_t session_acquire(zn_storage_t *st, const char *key, st_session_t **out)
{
    zn_err_t err = ZN_OK;
    zn_mutex_lock(&st->uploads_lock);
    st_session_t *s = st_map_get(&st->uploads, key);
    if (s == NULL) {
        s = zn_calloc(1, sizeof(*s));
        snprintf(s->key, sizeof(s->key), "%s", key);
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
    if (snprintf(key, sizeof(key), "%s %s", repo, uuid) >= (int)sizeof(key))
        return ZN_EINVAL;
    return session_acquire(st, key, out);
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

/* Rebuilds the hash from the file when it is unknown or the file changed size. */
static zn_err_t session_sync(st_session_t *s, int fd)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return ZN_EIO;
    if (s->hash != NULL && s->size == (uint64_t)sb.st_size)
        return ZN_OK;
    zn_hash_free(s->hash);
    s->hash = zn_hash_new(ZN_DIGEST_SHA256);
    s->size = 0;
    zn_err_t err = st_hash_fd(fd, (uint64_t)sb.st_size, s->hash);
    if (err != ZN_OK) {
        zn_hash_free(s->hash);
        s->hash = NULL;
        return err;
    }
    s->size = (uint64_t)sb.st_size;
    return ZN_OK;
}

zn_err_t zn_storage_upload_open(zn_storage_t *st, const char *repo, const char *uuid, zn_upload_t **out)
{
    char key[ZN_REPO_NAME_MAX + ZN_UUID_LEN + 2], path[PATH_MAX];
    st_session_t *s;
    zn_err_t err;
    int fd;

    /* never leave the caller's pointer dangling: it often still holds the session it closed */
    *out = NULL;
    if (!zn_storage_name_valid(zn_slice(repo, strlen(repo))) || !zn_storage_uuid_valid(zn_slice(uuid, strlen(uuid))))
        return ZN_ENOENT;
    snprintf(key, sizeof(key), "%s %s", repo, uuid);
    if ((err = st_path(path, "%s/%s/.uploads/%s", st->root, repo, uuid)) != ZN_OK)
        return err;
    if ((err = session_acquire(st, key, &s)) != ZN_OK)
        return err;
    if ((fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) == -1) {
        err = st_errno(errno);
        sessions_remove(st, s);
        return err;
    }
    if ((err = session_sync(s, fd)) != ZN_OK) {
        close(fd);
        zn_mutex_lock(&st->uploads_lock);
        s->busy = false;
        zn_mutex_unlock(&st->uploads_lock);
        return err;
    }
    *out = upload_new(st, s, repo, path, fd);
    return ZN_OK;
}

uint64_t zn_storage_upload_size(const zn_upload_t *up)
{
    return up->s->size;
}

zn_err_t zn_storage_upload_write(zn_upload_t *up, const void *p, size_t n)
{
    uint64_t max = up->st->cfg->storage.max_blob_size, off = up->s->size;
    const char *cur = p;
    size_t left = n;

    if (max != 0 && (n > max || off > max - n))
        return ZN_ETOOBIG;
    while (left != 0) {
        zn_syscall_begin();
        ssize_t w = pwrite(up->fd, cur, left, (off_t)(off + (uint64_t)(cur - (const char *)p)));
        zn_syscall_end();
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            zn_err_t err = w < 0 ? st_errno(errno) : ZN_EIO;
            if (ftruncate(up->fd, (off_t)off) != 0)
                up->s->size = UINT64_MAX; /* forces a re-hash on next open */
            return err;
        }
        cur += w;
        left -= (size_t)w;
    }
    zn_hash_update(up->s->hash, p, n);
    up->s->size = off + n;
    return ZN_OK;
}

void zn_storage_upload_close(zn_upload_t *up)
{
    zn_storage_t *st = up->st;
    close(up->fd);
    zn_mutex_lock(&st->uploads_lock);
    up->s->busy = false;
    up->s->used_ns = zn_now_mono_ns();
    zn_mutex_unlock(&st->uploads_lock);
    free(up);
}

/* The digest of the session's content with d's algorithm. Consumes the running hash. */
static zn_err_t content_digest(zn_upload_t *up, zn_digest_algo_t algo, zn_digest_t *out)
{
    if (algo == ZN_DIGEST_SHA256) {
        zn_hash_final(up->s->hash, out);
        return ZN_OK;
    }
    zn_hash_t *h = zn_hash_new(algo);
    zn_err_t err = st_hash_fd(up->fd, up->s->size, h);
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
    if ((err = st_sync_fd(up->st, up->fd)) != ZN_OK)
        goto done;
    err = st_blob_publish(up->st, up->repo, up->path, d);
done:
    close(up->fd);
    if (err != ZN_OK)
        unlink(up->path);
    sessions_remove(up->st, up->s);
    free(up);
    return err;
}

zn_err_t zn_storage_upload_cancel(zn_upload_t *up)
{
    zn_err_t err = unlink(up->path) == 0 ? ZN_OK : st_errno(errno);
    close(up->fd);
    sessions_remove(up->st, up->s);
    free(up);
    return err;
}

zn_err_t zn_storage_upload_path(const zn_upload_t *up, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s", up->path);
    return n < 0 || (size_t)n >= len ? ZN_ETOOBIG : ZN_OK;
}
