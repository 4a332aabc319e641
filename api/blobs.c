/*
 * api/blobs.c - GET/HEAD /v2/<name>/blobs/<digest> and DELETE.
 *
 * A GET streams the blob from storage's blob object with an h2o generator: each `proceed`
 * reads one bounded chunk into the request's buffer and sends it (the shape of h2o's
 * lib/handler/file.c: one pread per call on the filesystem driver, nothing copied or
 * allocated per chunk), so memory stays constant whatever the blob size. Range requests get
 * 206 with Content-Range; a malformed, multi-part or unsatisfiable range gets 416 with
 * `Content-Range: bytes *\/size` (Go's http.ServeContent, which docker/distribution uses,
 * does the same). HEAD sends the headers with the full Content-Length and no body.
 *
 * A whole-blob GET hashes the bytes as it streams them and holds back the last chunk until
 * the digest is known: when the file no longer matches its digest (bit rot, a hand edit)
 * that chunk is never sent, the stream ends in error (HTTP/1.1: the connection closes
 * short of Content-Length; HTTP/2: RST_STREAM), so no client ever receives a complete bad
 * body, and the blob is quarantined, so later GETs answer BLOB_UNKNOWN. Hashing costs one
 * SHA-256 pass over bytes already in the buffer (measured in the README; zinc.verifyBlobReads
 * false turns it off and leaves bit rot to the scrub). A Range GET
 * cannot be checked that way (the rest of the file is not read); it is served unverified,
 * and the periodic scrub (extensions.scrub) is what catches such a blob.
 *
 * Threading: on the filesystem store the reads run inline on the worker (storage.h's
 * threading rule allows it: zn_storage_may_block() is false), the code below the async
 * section. On a store that may block (S3) every storage call goes through api/dispatch.c:
 * the open (with the repository check of a 404) is one storage stage, and each chunk is
 * another: zn_storage_blob_read, the hash update and, on a mismatch, the quarantine run on
 * the storage pool, and the send runs on the request's loop when the pool posts back. The
 * chunks are 2 MiB there (a read is a ranged GET: a round trip whatever its size) and two
 * of them alternate: chunk k+1 is read while h2o sends chunk k, and is sent once h2o calls
 * proceed; so one read is in flight per request and memory stays two chunks. A client that goes away mid-stream (RST_STREAM,
 * closed socket) disposes the request: h2o calls stop, the read in flight finishes on its
 * pool thread, and dispatch drops the state (closing the blob) at the post-back instead of
 * calling back.
 */
#include <string.h>

#include "api/internal.h"
#include "api/sync_int.h"

#define READ_CHUNK (256u << 10)
/* On a store that may block a read is a round trip (a ranged GET on S3, ~3 ms on RGW
 * whatever its size up to a few MiB): 256 KiB reads capped a pull at ~90 MB/s. */
#define ASYNC_READ_CHUNK (2u << 20)

struct blob_gen {
    h2o_generator_t super;
    zn_storage_blob_t *blob;
    uint64_t off, end; /* next byte to send, one past the last */
    char *buf;
    zn_hash_t *hash; /* whole-blob GETs only */
    zn_digest_t digest;
    zn_storage_t *st;
    const char *repo; /* pool */
};

static void close_gen(struct blob_gen *g)
{
    zn_storage_blob_close(g->blob);
    g->blob = NULL;
    zn_hash_free(g->hash);
    g->hash = NULL;
}

/* Pool dispose: the blob is closed whatever way the request ends. */
static void on_dispose(void *p)
{
    close_gen(p);
}

static void on_proceed(h2o_generator_t *_self, h2o_req_t *req)
{
    struct blob_gen *g = (void *)_self;
    uint64_t left = g->end - g->off;
    size_t want = left < READ_CHUNK ? (size_t)left : READ_CHUNK, r = 0;

    zn_err_t err = zn_storage_blob_read(g->blob, g->off, g->buf, want, &r);
    if (err != ZN_OK || r == 0) {
        /* the blob shrank or the disk failed: the status is sent, only the stream can stop */
        zn_log(ZN_LOG_ERROR, "blob read failed", ZN_LSTR("error", err != ZN_OK ? zn_err_str(err) : "short file"));
        close_gen(g);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    g->off += (uint64_t)r;
    if (g->hash != NULL) {
        zn_hash_update(g->hash, g->buf, r);
        if (g->off == g->end) {
            zn_digest_t got;
            zn_hash_final(g->hash, &got);
            if (!zn_digest_eq(&got, &g->digest)) {
                zn_log(ZN_LOG_ERROR, "blob does not match its digest, response aborted", ZN_LSTR("repo", g->repo),
                       ZN_LSTR("digest", g->digest.str), ZN_LSTR("got", got.str));
                close_gen(g);
                zn_storage_blob_quarantine(g->st, g->repo, &g->digest);
                h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
                return;
            }
        }
    }
    h2o_iovec_t vec = h2o_iovec_init(g->buf, r);
    h2o_send_state_t state = g->off == g->end ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS;
    if (state == H2O_SEND_STATE_FINAL)
        close_gen(g);
    h2o_send(req, &vec, 1, state);
}

static void on_stop(h2o_generator_t *_self, h2o_req_t *req)
{
    close_gen((struct blob_gen *)_self);
}

static int send_range_error(h2o_req_t *req, uint64_t size)
{
    zn_api_header_addf(req, "content-range", "bytes */%llu", (unsigned long long)size);
    return zn_api_send_error(req, ZN_OCI_RANGE_INVALID, NULL);
}

/* 307 to the store's URL for the blob (redirectBlobURL). Not h2o_send_redirect: it drops
 * the headers set so far and adds an HTML body; this keeps Docker-Content-Digest. */
static int send_blob_redirect(h2o_req_t *req, const zn_digest_t *d, const char *url)
{
    req->res.status = 307;
    req->res.reason = "Temporary Redirect";
    zn_api_header_add_str(req, "location", url);
    zn_api_header_add_str(req, "docker-content-digest", d->str);
    req->res.content_length = 0;
    h2o_send_inline(req, "", 0);
    return 0;
}

static int stream_blob(h2o_req_t *req, zn_api_t *api, const char *repo, const zn_digest_t *d, zn_storage_blob_t *blob)
{
    uint64_t size = zn_storage_blob_size(blob);
    zn_slice_t range = zn_api_header(req, H2O_TOKEN_RANGE);
    zn_api_range_t r = {0, size - 1};
    struct blob_gen *g = h2o_mem_alloc_shared(&req->pool, sizeof(*g), on_dispose);
    memset(g, 0, sizeof(*g));
    g->blob = blob; /* closed by on_dispose when the pool goes, if not before */

    /* zot's redirectBlobURL: a whole-blob GET goes to the store (an S3 presigned URL); HEAD
     * and Range requests are answered here, as zot does */
    bool whole_get = range.p == NULL && h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"));
    const char *url = whole_get ? zn_storage_blob_redirect_url(blob) : NULL;
    if (url != NULL)
        return send_blob_redirect(req, d, url); /* g (and blob) go with the pool */
    req->res.status = 200;
    if (range.p != NULL) {
        zn_err_t err = zn_api_range_parse(range, size, &r);
        if (err != ZN_OK)
            return send_range_error(req, size);
        req->res.status = 206;
        zn_api_header_addf(req, "content-range", "bytes %llu-%llu/%llu", (unsigned long long)r.first,
                           (unsigned long long)r.last, (unsigned long long)size);
    }
    req->res.reason = "";
    zn_api_header_add(req, H2O_TOKEN_CONTENT_TYPE, "application/octet-stream");
    zn_api_header_add(req, H2O_TOKEN_ACCEPT_RANGES, "bytes");
    zn_api_header_add_str(req, "docker-content-digest", d->str);
    req->res.content_length = size == 0 ? 0 : r.last - r.first + 1;
    if (size == 0 || h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        h2o_send_inline(req, "", 0);
        return 0;
    }
    g->super.proceed = on_proceed;
    g->super.stop = on_stop;
    g->off = r.first;
    g->end = r.last + 1;
    g->buf = h2o_mem_alloc_pool(&req->pool, READ_CHUNK);
    if (range.p == NULL && api->cfg->zinc.verify_blob_reads) {
        g->hash = zn_hash_new(d->algo);
        g->digest = *d;
        g->st = api->st;
        g->repo = h2o_strdup(&req->pool, repo, SIZE_MAX).base;
    }
    h2o_start_response(req, &g->super);
    on_proceed(&g->super, req);
    return 0;
}

/* ---- a store that may block: storage stages through api/dispatch.c ---------------------------- */

struct ablob {
    h2o_generator_t super;
    zn_api_t *api;
    const char *repo;
    zn_digest_t d;
    bool head, repo_exists;
    const char *range; /* the Range header (kept), NULL if none */
    zn_err_t err;
    zn_storage_blob_t *blob;
    const char *redirect;
    uint64_t off, end; /* off: the next byte to send */
    uint64_t read_off; /* the next byte to read (off + what is read but not yet sent) */
    /* Two buffers, so that the next chunk is read while h2o sends this one: bufs[fill] is
     * what the read in flight (or the finished one, `ready`) fills; the other is h2o's. */
    char *bufs[2];
    size_t chunk;
    int fill;
    bool want;  /* h2o is done with the last chunk sent (proceed came, or none sent yet) */
    bool ready; /* the read into bufs[fill] has finished (got, err, bad_digest) */
    size_t got;
    zn_hash_t *hash;
    bool bad_digest;
};

static void ablob_drop(void *p)
{
    struct ablob *b = p;
    zn_storage_blob_close(b->blob);
    b->blob = NULL;
    zn_hash_free(b->hash);
    b->hash = NULL;
    for (int i = 0; i < 2; i++) {
        free(b->bufs[i]);
        b->bufs[i] = NULL;
    }
}

static void ablob_read_work(zn_api_t *api, zn_reqctx_t *ctx, void *p)
{
    struct ablob *b = p;
    uint64_t left = b->end - b->read_off;
    size_t want = left < b->chunk ? (size_t)left : b->chunk;
    char *buf = b->bufs[b->fill];
    (void)ctx;
    b->got = 0;
    b->err = zn_storage_blob_read(b->blob, b->read_off, buf, want, &b->got);
    if (b->err != ZN_OK || b->got == 0 || b->hash == NULL)
        return;
    zn_hash_update(b->hash, buf, b->got);
    if (b->read_off + b->got == b->end) {
        zn_digest_t got;
        zn_hash_final(b->hash, &got);
        zn_hash_free(b->hash);
        b->hash = NULL;
        if (!zn_digest_eq(&got, &b->d)) {
            zn_log(ZN_LOG_ERROR, "blob does not match its digest, response aborted", ZN_LSTR("repo", b->repo),
                   ZN_LSTR("digest", b->d.str), ZN_LSTR("got", got.str));
            b->bad_digest = true;
            zn_storage_blob_quarantine(api->st, b->repo, &b->d);
        }
    }
}

static int ablob_read_back(h2o_req_t *req, void *p);

/* Sends the chunk that is ready (h2o wants one), and starts reading the next one into the
 * buffer h2o has just given back, before the send: the read overlaps the client's. */
static void ablob_deliver(h2o_req_t *req, struct ablob *b)
{
    b->want = false;
    b->ready = false;
    if (b->err != ZN_OK || b->got == 0 || b->bad_digest) {
        if (!b->bad_digest)
            zn_log(ZN_LOG_ERROR, "blob read failed", ZN_LSTR("error", b->err != ZN_OK ? zn_err_str(b->err) : "short object"));
        ablob_drop(b);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    h2o_iovec_t vec = h2o_iovec_init(b->bufs[b->fill], b->got);
    b->off += (uint64_t)b->got;
    b->read_off = b->off;
    h2o_send_state_t state = b->off == b->end ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS;
    b->fill ^= 1;
    if (state == H2O_SEND_STATE_IN_PROGRESS)
        zn_api_state_run(b, ablob_read_work, ablob_read_back);
    /* bufs[fill ^ 1] is h2o's until the next proceed; dispatch frees both with the state */
    h2o_send(req, &vec, 1, state);
}

static int ablob_read_back(h2o_req_t *req, void *p)
{
    struct ablob *b = p;
    b->ready = true;
    if (b->want)
        ablob_deliver(req, b);
    return 0;
}

static void ablob_proceed(h2o_generator_t *self, h2o_req_t *req)
{
    struct ablob *b = H2O_STRUCT_FROM_MEMBER(struct ablob, super, self);
    b->want = true;
    if (b->ready)
        ablob_deliver(req, b);
}

static void ablob_stop(h2o_generator_t *self, h2o_req_t *req)
{
    /* the request is going: a read in flight still uses the blob, so dispatch's drop closes it */
    (void)self;
    (void)req;
}

static void ablob_open_work(zn_api_t *api, zn_reqctx_t *ctx, void *p)
{
    struct ablob *b = p;
    (void)ctx;
    b->err = zn_storage_blob_open(api->st, b->repo, &b->d, &b->blob);
    if (b->err == ZN_ENOENT)
        b->repo_exists = zn_storage_repo_exists(api->st, b->repo) == ZN_OK;
    if (b->err == ZN_OK && b->range == NULL && !b->head) /* redirectBlobURL: whole GETs only, as zot */
        b->redirect = zn_storage_blob_redirect_url(b->blob);
}

static int ablob_open_back(h2o_req_t *req, void *p)
{
    struct ablob *b = p;
    if (b->err == ZN_ENOENT)
        return zn_api_send_unknown_as(req, b->repo_exists, ZN_OCI_BLOB_UNKNOWN);
    if (b->err != ZN_OK)
        return zn_api_send_storage_error(req, b->err, ZN_OCI_BLOB_UNKNOWN, NULL);
    if (b->redirect != NULL)
        return send_blob_redirect(req, &b->d, b->redirect);
    uint64_t size = zn_storage_blob_size(b->blob);
    zn_api_range_t r = {0, size - 1};
    req->res.status = 200;
    if (b->range != NULL) {
        if (zn_api_range_parse(zn_slice(b->range, strlen(b->range)), size, &r) != ZN_OK)
            return send_range_error(req, size);
        req->res.status = 206;
        zn_api_header_addf(req, "content-range", "bytes %llu-%llu/%llu", (unsigned long long)r.first,
                           (unsigned long long)r.last, (unsigned long long)size);
    }
    req->res.reason = "";
    zn_api_header_add(req, H2O_TOKEN_CONTENT_TYPE, "application/octet-stream");
    zn_api_header_add(req, H2O_TOKEN_ACCEPT_RANGES, "bytes");
    zn_api_header_add_str(req, "docker-content-digest", b->d.str);
    req->res.content_length = size == 0 ? 0 : r.last - r.first + 1;
    if (size == 0 || b->head) {
        h2o_send_inline(req, "", 0);
        return 0;
    }
    b->super.proceed = ablob_proceed;
    b->super.stop = ablob_stop;
    b->off = b->read_off = r.first;
    b->end = r.last + 1;
    b->chunk = b->end - b->off < ASYNC_READ_CHUNK ? (size_t)(b->end - b->off) : ASYNC_READ_CHUNK;
    b->bufs[0] = zn_malloc(b->chunk);
    if (b->chunk < b->end - b->off)
        b->bufs[1] = zn_malloc(b->chunk); /* a second chunk will be read while the first is sent */
    if (b->range == NULL && b->api->cfg->zinc.verify_blob_reads)
        b->hash = zn_hash_new(b->d.algo);
    h2o_start_response(req, &b->super);
    b->want = true; /* the first chunk goes out as soon as it is read */
    return zn_api_state_run(b, ablob_read_work, ablob_read_back);
}

static int blob_get_async(h2o_req_t *req, zn_reqctx_t *ctx, zn_api_t *api, const char *repo)
{
    struct ablob *b = zn_api_state_new(api, req, ctx, sizeof(*b), ablob_drop);
    if (!zn_api_digest_param(req, ctx, 1, &b->d))
        return 0;
    b->api = api;
    b->repo = zn_api_state_strdup(b, repo);
    b->head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    zn_slice_t range = zn_api_header(req, H2O_TOKEN_RANGE);
    if (range.p != NULL)
        b->range = zn_api_state_keep(b, range.p, range.n);
    return zn_api_state_run(b, ablob_open_work, ablob_open_back);
}

/* ---- the filesystem store: inline ------------------------------------------------------------ */

int zn_api_blob_get(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_api_t *api = ctx->app;
    const char *repo = zn_api_repo_param(req, ctx, 0);
    zn_digest_t d;
    zn_storage_blob_t *blob;

    if (repo != NULL && zn_api_async(api))
        return blob_get_async(req, ctx, api, repo);
    if (repo == NULL || !zn_api_digest_param(req, ctx, 1, &d))
        return 0;
    zn_err_t err = zn_storage_blob_open(api->st, repo, &d, &blob);
    /* the mirror's miss hook: fetches and streams the blob when an upstream covers repo */
    if (api->sync != NULL && err == ZN_ENOENT && zn_sync_blob_miss(api->sync, req, repo, &d) == 0)
        return 0;
    if (api->sync != NULL && err == ZN_OK)
        zn_sync_blob_hit(api->sync, repo);
    if (err == ZN_ENOENT)
        return zn_api_send_unknown(req, api, repo, ZN_OCI_BLOB_UNKNOWN);
    if (err != ZN_OK)
        return zn_api_send_storage_error(req, err, ZN_OCI_BLOB_UNKNOWN, NULL);
    return stream_blob(req, api, repo, &d, blob);
}

struct bdel {
    const char *repo;
    zn_digest_t d;
    bool repo_exists;
    zn_err_t err;
};

static void bdel_work(zn_api_t *api, zn_reqctx_t *ctx, void *p)
{
    struct bdel *b = p;
    (void)ctx;
    b->err = zn_storage_blob_delete(api->st, b->repo, &b->d);
    if (b->err == ZN_ENOENT)
        b->repo_exists = zn_storage_repo_exists(api->st, b->repo) == ZN_OK;
}

static int bdel_back(h2o_req_t *req, void *p)
{
    struct bdel *b = p;
    if (b->err == ZN_ENOENT)
        return zn_api_send_unknown_as(req, b->repo_exists, ZN_OCI_BLOB_UNKNOWN);
    if (b->err != ZN_OK)
        return zn_api_send_storage_error(req, b->err, ZN_OCI_BLOB_UNKNOWN, NULL);
    return zn_api_send_empty(req, 202);
}

int zn_api_blob_delete(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_api_t *api = ctx->app;
    const char *repo = zn_api_repo_param(req, ctx, 0);
    if (repo == NULL)
        return 0;
    struct bdel *b = zn_api_state_new(api, req, ctx, sizeof(*b), NULL);
    if (!zn_api_digest_param(req, ctx, 1, &b->d))
        return 0;
    b->repo = zn_api_state_strdup(b, repo);
    return zn_api_state_run(b, bdel_work, bdel_back);
}
