/*
 * api/blobs.c - GET/HEAD /v2/<name>/blobs/<digest> and DELETE.
 *
 * A GET streams the blob from its file with an h2o generator: each `proceed` sends one
 * bounded pread chunk (the shape of h2o's lib/handler/file.c), so memory stays constant
 * whatever the blob size. Range requests get 206 with Content-Range; a malformed,
 * multi-part or unsatisfiable range gets 416 with `Content-Range: bytes *\/size` (Go's
 * http.ServeContent, which docker/distribution uses, does the same). HEAD sends the
 * headers with the full Content-Length and no body.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "api/internal.h"

#define READ_CHUNK (256u << 10)

struct blob_gen {
    h2o_generator_t super;
    int fd;
    uint64_t off, end; /* next byte to send, one past the last */
    char *buf;
};

static void close_gen(struct blob_gen *g)
{
    if (g->fd != -1) {
        close(g->fd);
        g->fd = -1;
    }
}

/* Pool dispose: the file is closed whatever way the request ends. */
static void on_dispose(void *p)
{
    close_gen(p);
}

static void on_proceed(h2o_generator_t *_self, h2o_req_t *req)
{
    struct blob_gen *g = (void *)_self;
    uint64_t left = g->end - g->off;
    size_t want = left < READ_CHUNK ? (size_t)left : READ_CHUNK;
    ssize_t r;

    zn_syscall_begin();
    while ((r = pread(g->fd, g->buf, want, (off_t)g->off)) == -1 && errno == EINTR)
        ;
    zn_syscall_end();
    if (r <= 0) {
        /* the blob shrank or the disk failed: the status is sent, only the stream can stop */
        zn_log(ZN_LOG_ERROR, "blob read failed", ZN_LSTR("error", r == 0 ? "short file" : strerror(errno)));
        close_gen(g);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    g->off += (uint64_t)r;
    h2o_iovec_t vec = h2o_iovec_init(g->buf, (size_t)r);
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

static int stream_blob(h2o_req_t *req, const zn_digest_t *d, int fd, uint64_t size)
{
    zn_slice_t range = zn_api_header(req, H2O_TOKEN_RANGE);
    zn_api_range_t r = {0, size - 1};
    struct blob_gen *g = h2o_mem_alloc_shared(&req->pool, sizeof(*g), on_dispose);
    g->fd = fd; /* closed by on_dispose when the pool goes, if not before */

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
    h2o_start_response(req, &g->super);
    on_proceed(&g->super, req);
    return 0;
}

int zn_api_blob_get(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_api_t *api = ctx->app;
    const char *repo = zn_api_repo_param(req, ctx, 0);
    zn_digest_t d;
    uint64_t size;
    int fd;

    if (repo == NULL || !zn_api_digest_param(req, ctx, 1, &d))
        return 0;
    zn_err_t err = zn_storage_blob_open(api->st, repo, &d, &fd, &size);
    if (err == ZN_ENOENT)
        return zn_api_send_unknown(req, api, repo, ZN_OCI_BLOB_UNKNOWN);
    if (err != ZN_OK)
        return zn_api_send_storage_error(req, err, ZN_OCI_BLOB_UNKNOWN, NULL);
    return stream_blob(req, &d, fd, size);
}

int zn_api_blob_delete(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_api_t *api = ctx->app;
    const char *repo = zn_api_repo_param(req, ctx, 0);
    zn_digest_t d;

    if (repo == NULL || !zn_api_digest_param(req, ctx, 1, &d))
        return 0;
    zn_err_t err = zn_storage_blob_delete(api->st, repo, &d);
    if (err == ZN_ENOENT)
        return zn_api_send_unknown(req, api, repo, ZN_OCI_BLOB_UNKNOWN);
    if (err != ZN_OK)
        return zn_api_send_storage_error(req, err, ZN_OCI_BLOB_UNKNOWN, NULL);
    return zn_api_send_empty(req, 202);
}
