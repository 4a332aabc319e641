/*
 * api/uploads.c - blob uploads: POST /v2/<name>/blobs/uploads/ (session, monolithic with
 * ?digest=, cross-repository mount), PATCH/PUT/GET/DELETE on the session URL.
 *
 * The session URL is /v2/<name>/blobs/uploads/<uuid> and carries no state in its query, so
 * it stays valid after every chunk and across restarts (storage re-opens the session from
 * its file). Opening a session (which may re-hash its file), writing the body (streamed
 * while it arrives on HTTP/1, else from h2o's buffer) and finishing (digest check, fsync,
 * publish) run on the background pool (api/body.c); the digest is verified before the blob
 * becomes visible. Every size and Content-Range check happens before a byte is stored.
 */
#include <string.h>

#include "api/internal.h"

/* What a handler hands over to its body-done callback (request pool). */
struct upload_req {
    zn_api_t *api;
    int (*next)(h2o_req_t *req, struct upload_req *u, zn_upload_t *up); /* once the session is open */
    const char *repo;
    const char *uuid;
    zn_digest_t digest;
};

static int send_blob_created(h2o_req_t *req, const char *repo, const zn_digest_t *d)
{
    zn_api_header_addf(req, "location", "/v2/%s/blobs/%s", repo, d->str);
    zn_api_header_add_str(req, "docker-content-digest", d->str);
    return zn_api_send_empty(req, 201);
}

static void add_session_headers(h2o_req_t *req, const char *repo, const char *uuid, uint64_t size)
{
    zn_api_header_addf(req, "location", "/v2/%s/blobs/uploads/%s", repo, uuid);
    zn_api_header_add_str(req, "docker-upload-uuid", uuid);
    zn_api_add_upload_range(req, size);
}

/* Reads a digest query parameter; *present tells whether it was given at all. */
static zn_err_t query_digest(h2o_req_t *req, const char *name, zn_digest_t *d, bool *present)
{
    char buf[ZN_DIGEST_STR_MAX + 16];
    zn_err_t err = zn_api_query_get(zn_api_query(req), name, buf, sizeof(buf));
    *present = err != ZN_ENOENT;
    if (err != ZN_OK)
        return err;
    return zn_digest_parse(zn_slice(buf, strlen(buf)), d);
}

/* Tries a cross-repository mount; true if the blob is now in repo. */
static bool try_mount(h2o_req_t *req, zn_reqctx_t *ctx, const char *repo, const zn_digest_t *d)
{
    zn_api_t *api = ctx->app;
    char from[ZN_REPO_NAME_MAX + 1];
    uint64_t size;

    if (zn_storage_blob_stat(api->st, repo, d, &size) == ZN_OK)
        return true;
    zn_err_t err = zn_api_query_get(zn_api_query(req), "from", from, sizeof(from));
    if (err == ZN_ENOENT) {
        if (!api->cfg->storage.mount_without_from || zn_storage_blob_locate(api->st, d, from, sizeof(from)) != ZN_OK)
            return false;
    } else if (err != ZN_OK || !zn_storage_name_valid(zn_slice(from, strlen(from)))) {
        return false;
    }
    if (!ctx->can(ctx, from, ZN_ACT_READ))
        return false;
    return zn_storage_blob_mount(api->st, repo, from, d) == ZN_OK;
}

static int on_finished(h2o_req_t *req, zn_err_t err, void *data)
{
    struct upload_req *u = data;
    if (err != ZN_OK)
        return zn_api_send_storage_error(req, err, ZN_OCI_BLOB_UPLOAD_UNKNOWN, NULL);
    return send_blob_created(req, u->repo, &u->digest);
}

/* The body is in the session: verify and publish it (monolithic POST and final PUT) on the
 * background pool, since publishing may fsync. */
static int on_final_body(h2o_req_t *req, zn_upload_t *up, zn_err_t err, void *data)
{
    struct upload_req *u = data;
    if (err != ZN_OK) {
        zn_storage_upload_close(up);
        return zn_api_send_storage_error(req, err, ZN_OCI_BLOB_UPLOAD_UNKNOWN, NULL);
    }
    return zn_api_upload_finish_async(u->api, req, up, &u->digest, on_finished, u);
}

/* A failed monolithic upload leaves no session behind. */
static int on_monolithic_body(h2o_req_t *req, zn_upload_t *up, zn_err_t err, void *data)
{
    if (err == ZN_OK)
        return on_final_body(req, up, err, data);
    zn_storage_upload_cancel(up);
    return zn_api_send_storage_error(req, err, ZN_OCI_BLOB_UPLOAD_UNKNOWN, NULL);
}

/* Whether a body of known length fits under storage.maxBlobSize after `have` bytes
 * (checked before anything is stored; chunked bodies are checked as they are written). */
static bool body_fits(h2o_req_t *req, zn_api_t *api, uint64_t have)
{
    uint64_t max = api->cfg->storage.max_blob_size, len = zn_api_body_length(req);
    return max == 0 || len == UINT64_MAX || (len <= max && have <= max - len);
}

int zn_api_upload_post(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_api_t *api = ctx->app;
    struct upload_req *u = h2o_mem_alloc_pool(&req->pool, sizeof(*u));
    char *uuid = h2o_mem_alloc_pool(&req->pool, ZN_UUID_LEN + 1);
    zn_upload_t *up;
    bool present;
    zn_err_t err;

    u->api = api;
    if ((u->repo = zn_api_repo_param(req, ctx, 0)) == NULL)
        return 0;
    /* a mount that cannot be done, bad arguments included, is an ordinary session (spec) */
    if (query_digest(req, "mount", &u->digest, &present) == ZN_OK && try_mount(req, ctx, u->repo, &u->digest))
        return send_blob_created(req, u->repo, &u->digest);
    if ((err = query_digest(req, "digest", &u->digest, &present)) != ZN_OK && present)
        return zn_api_send_error(req, ZN_OCI_DIGEST_INVALID, NULL);
    if (present && !body_fits(req, api, 0))
        return zn_api_send_error_status(req, 413, ZN_OCI_SIZE_INVALID, NULL);
    if ((err = zn_storage_upload_start(api->st, u->repo, uuid, present ? &up : NULL)) != ZN_OK)
        return zn_api_send_storage_error(req, err, ZN_OCI_NAME_UNKNOWN, NULL);
    if (present)
        return zn_api_body_write(api, req, up, true, on_monolithic_body, u);
    add_session_headers(req, u->repo, uuid, 0);
    return zn_api_send_empty(req, 202);
}

/* Continues a request once its session is open (the opening ran on the background pool). */
typedef int (*session_fn)(h2o_req_t *req, struct upload_req *u, zn_upload_t *up);

static int on_opened(h2o_req_t *req, zn_upload_t *up, zn_err_t err, void *data)
{
    struct upload_req *u = data;
    if (err == ZN_EBUSY)
        return zn_api_send_error(req, ZN_OCI_BLOB_UPLOAD_INVALID, "another request is writing to this upload");
    if (err != ZN_OK)
        return zn_api_send_storage_error(req, err, ZN_OCI_BLOB_UPLOAD_UNKNOWN, NULL);
    return u->next(req, u, up);
}

/* Opens the session named by the path off the loop, then calls next with it; errors are
 * answered here. */
static int with_session(h2o_req_t *req, zn_reqctx_t *ctx, struct upload_req *u, session_fn next)
{
    u->api = ctx->app;
    u->next = next;
    if ((u->repo = zn_api_repo_param(req, ctx, 0)) == NULL)
        return 0;
    u->uuid = h2o_strdup(&req->pool, ctx->params[1].p, ctx->params[1].n).base;
    return zn_api_upload_open_async(u->api, req, u->repo, u->uuid, on_opened, u);
}

/* Whether Content-Range (if any) starts at the session's size and describes the body. */
static bool chunk_fits(h2o_req_t *req, zn_upload_t *up)
{
    zn_slice_t cr = zn_api_header(req, H2O_TOKEN_CONTENT_RANGE);
    uint64_t len = zn_api_body_length(req); /* never UINT64_MAX here: chunked + Content-Range is buffered */
    zn_api_range_t r;

    if (cr.p == NULL)
        return true;
    return zn_api_content_range_parse(cr, &r) == ZN_OK && r.first == zn_storage_upload_size(up) &&
           r.last - r.first + 1 == len;
}

/* Checks the chunk against the open session; false once a response was sent. */
static bool check_chunk(h2o_req_t *req, struct upload_req *u, zn_upload_t *up)
{
    if (!body_fits(req, u->api, zn_storage_upload_size(up))) {
        zn_storage_upload_close(up);
        zn_api_send_error_status(req, 413, ZN_OCI_SIZE_INVALID, NULL);
        return false;
    }
    if (chunk_fits(req, up))
        return true;
    uint64_t size = zn_storage_upload_size(up);
    zn_storage_upload_close(up); /* before answering: the client may ask for the status at once */
    add_session_headers(req, u->repo, u->uuid, size);
    zn_api_send_error(req, ZN_OCI_RANGE_INVALID, NULL);
    return false;
}

static int on_patch_body(h2o_req_t *req, zn_upload_t *up, zn_err_t err, void *data)
{
    struct upload_req *u = data;
    uint64_t size = zn_storage_upload_size(up);
    zn_storage_upload_close(up);
    if (err != ZN_OK)
        return zn_api_send_storage_error(req, err, ZN_OCI_BLOB_UPLOAD_UNKNOWN, NULL);
    add_session_headers(req, u->repo, u->uuid, size);
    return zn_api_send_empty(req, 202);
}

static int patch_opened(h2o_req_t *req, struct upload_req *u, zn_upload_t *up)
{
    return check_chunk(req, u, up) ? zn_api_body_write(u->api, req, up, false, on_patch_body, u) : 0;
}

int zn_api_upload_patch(h2o_req_t *req, zn_reqctx_t *ctx)
{
    struct upload_req *u = h2o_mem_alloc_pool(&req->pool, sizeof(*u));
    return with_session(req, ctx, u, patch_opened);
}

static int put_opened(h2o_req_t *req, struct upload_req *u, zn_upload_t *up)
{
    return check_chunk(req, u, up) ? zn_api_body_write(u->api, req, up, false, on_final_body, u) : 0;
}

int zn_api_upload_put(h2o_req_t *req, zn_reqctx_t *ctx)
{
    struct upload_req *u = h2o_mem_alloc_pool(&req->pool, sizeof(*u));
    bool present;

    if (query_digest(req, "digest", &u->digest, &present) != ZN_OK)
        return zn_api_send_error(req, ZN_OCI_DIGEST_INVALID, present ? NULL : "digest parameter missing");
    return with_session(req, ctx, u, put_opened);
}

static int status_opened(h2o_req_t *req, struct upload_req *u, zn_upload_t *up)
{
    uint64_t size = zn_storage_upload_size(up);
    zn_storage_upload_close(up);
    add_session_headers(req, u->repo, u->uuid, size);
    return zn_api_send_empty(req, 204);
}

int zn_api_upload_status(h2o_req_t *req, zn_reqctx_t *ctx)
{
    struct upload_req *u = h2o_mem_alloc_pool(&req->pool, sizeof(*u));
    return with_session(req, ctx, u, status_opened);
}

static int delete_opened(h2o_req_t *req, struct upload_req *u, zn_upload_t *up)
{
    zn_err_t err = zn_storage_upload_cancel(up);
    if (err != ZN_OK)
        return zn_api_send_storage_error(req, err, ZN_OCI_BLOB_UPLOAD_UNKNOWN, NULL);
    return zn_api_send_empty(req, 204);
}

int zn_api_upload_delete(h2o_req_t *req, zn_reqctx_t *ctx)
{
    struct upload_req *u = h2o_mem_alloc_pool(&req->pool, sizeof(*u));
    return with_session(req, ctx, u, delete_opened);
}
