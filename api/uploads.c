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
 *
 * The other storage calls (mount, session start, closing or cancelling a session, which
 * on S3 writes or deletes objects) are storage stages through api/dispatch.c: inline on the
 * filesystem store, on the storage pool when the store may block. A session is closed
 * before the response that reports its size is sent: the client may ask for the status at
 * once, and must find the session free and at that size.
 */
#include <string.h>

#include "api/internal.h"

/* A handler's state (api/dispatch.c), kept until the request ends. */
struct upload_req {
    zn_api_t *api;
    int (*next)(h2o_req_t *req, struct upload_req *u, zn_upload_t *up); /* once the session is open */
    const char *repo;
    const char *uuid;
    zn_digest_t digest;
    /* POST's storage stage */
    zn_digest_t mount_digest;
    bool mount, from_given, present, digest_bad, too_big, mounted;
    const char *from; /* the mount source (kept), NULL if none or invalid */
    char new_uuid[ZN_UUID_LEN + 1];
    zn_err_t err;
    /* a session being let go of before answering */
    zn_upload_t *up;
    bool cancel;
    uint64_t size;
    int status; /* what to answer after the release; 0 = the storage error in err */
    zn_oci_code_t code;
};

static void upload_drop(void *p)
{
    struct upload_req *u = p;
    zn_api_upload_release(u->api, u->up, u->cancel);
    u->up = NULL;
}

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

/* ---- letting go of the session, then answering ----------------------------------------------- */

static void release_work(zn_api_t *api, zn_reqctx_t *ctx, void *p)
{
    struct upload_req *u = p;
    (void)api;
    (void)ctx;
    if (u->cancel) {
        zn_err_t err = zn_storage_upload_cancel(u->up);
        if (err != ZN_OK && u->status != 0) { /* a failed upload keeps its own error */
            u->status = 0;
            u->err = err;
        }
    } else {
        zn_storage_upload_close(u->up);
    }
    u->up = NULL;
}

static int release_back(h2o_req_t *req, void *p)
{
    struct upload_req *u = p;
    switch (u->status) {
    case 0:
        return zn_api_send_storage_error(req, u->err, ZN_OCI_BLOB_UPLOAD_UNKNOWN, NULL);
    case 413:
        return zn_api_send_error_status(req, 413, ZN_OCI_SIZE_INVALID, NULL);
    case 416:
        add_session_headers(req, u->repo, u->uuid, u->size);
        return zn_api_send_error(req, ZN_OCI_RANGE_INVALID, NULL);
    default: /* 202 after a chunk, 204 for the status or a cancelled session */
        if (u->status != 204 || !u->cancel)
            add_session_headers(req, u->repo, u->uuid, u->size);
        return zn_api_send_empty(req, u->status);
    }
}

/* Closes (cancel: deletes) up, then answers `status` (0: the storage error err). */
static int release_then(struct upload_req *u, zn_upload_t *up, bool cancel, int status, zn_err_t err)
{
    u->up = up;
    u->cancel = cancel;
    u->size = zn_storage_upload_size(up);
    u->status = status;
    u->err = err;
    return zn_api_state_run(u, release_work, release_back);
}

/* ---- POST ------------------------------------------------------------------------------------ */

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

/* Tries a cross-repository mount (storage stage); true if the blob is now in repo. */
static bool try_mount(zn_api_t *api, zn_reqctx_t *ctx, struct upload_req *u)
{
    char located[ZN_REPO_NAME_MAX + 1];
    const char *from = u->from;
    uint64_t size;

    if (zn_storage_blob_stat(api->st, u->repo, &u->mount_digest, &size) == ZN_OK)
        return true;
    if (!u->from_given) {
        if (!api->cfg->storage.mount_without_from ||
            zn_storage_blob_locate(api->st, &u->mount_digest, located, sizeof(located)) != ZN_OK)
            return false;
        from = located;
    } else if (from == NULL) {
        return false;
    }
    if (!ctx->can(ctx, from, ZN_ACT_READ))
        return false;
    return zn_storage_blob_mount(api->st, u->repo, from, &u->mount_digest) == ZN_OK;
}

static void post_work(zn_api_t *api, zn_reqctx_t *ctx, void *p)
{
    struct upload_req *u = p;
    if (u->mount && (u->mounted = try_mount(api, ctx, u)))
        return;
    if (u->digest_bad || u->too_big)
        return;
    u->err = zn_storage_upload_start(api->st, u->repo, u->new_uuid, u->present ? &u->up : NULL);
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
    if (err != ZN_OK)
        return release_then(u, up, false, 0, err);
    return zn_api_upload_finish_async(u->api, req, up, &u->digest, on_finished, u);
}

/* A failed monolithic upload leaves no session behind. */
static int on_monolithic_body(h2o_req_t *req, zn_upload_t *up, zn_err_t err, void *data)
{
    struct upload_req *u = data;
    if (err == ZN_OK)
        return on_final_body(req, up, err, data);
    return release_then(u, up, true, 0, err);
}

/* Whether a body of known length fits under storage.maxBlobSize after `have` bytes
 * (checked before anything is stored; chunked bodies are checked as they are written). */
static bool body_fits(h2o_req_t *req, zn_api_t *api, uint64_t have)
{
    uint64_t max = api->cfg->storage.max_blob_size, len = zn_api_body_length(req);
    return max == 0 || len == UINT64_MAX || (len <= max && have <= max - len);
}

static int post_back(h2o_req_t *req, void *p)
{
    struct upload_req *u = p;
    if (u->mounted)
        return send_blob_created(req, u->repo, &u->mount_digest);
    if (u->digest_bad)
        return zn_api_send_error(req, ZN_OCI_DIGEST_INVALID, NULL);
    if (u->too_big)
        return zn_api_send_error_status(req, 413, ZN_OCI_SIZE_INVALID, NULL);
    if (u->err != ZN_OK)
        return zn_api_send_storage_error(req, u->err, ZN_OCI_NAME_UNKNOWN, NULL);
    if (u->present) {
        zn_upload_t *up = u->up;
        u->up = NULL; /* the body writer owns it now */
        return zn_api_body_write(u->api, req, up, true, on_monolithic_body, u);
    }
    add_session_headers(req, u->repo, u->new_uuid, 0);
    return zn_api_send_empty(req, 202);
}

int zn_api_upload_post(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_api_t *api = ctx->app;
    const char *repo = zn_api_repo_param(req, ctx, 0);
    char from[ZN_REPO_NAME_MAX + 1];
    bool present;

    if (repo == NULL)
        return 0;
    /* off the loop on every store: creating the session's file (and a mount's link) waits
     * on the disk, milliseconds on a busy one (issue 13 target 3) */
    struct upload_req *u = zn_api_state_new_off_loop(api, req, ctx, sizeof(*u), upload_drop);
    u->api = api;
    u->repo = zn_api_state_strdup(u, repo);
    /* a mount that cannot be done, bad arguments included, is an ordinary session (spec) */
    if (query_digest(req, "mount", &u->mount_digest, &present) == ZN_OK) {
        u->mount = true;
        zn_err_t err = zn_api_query_get(zn_api_query(req), "from", from, sizeof(from));
        u->from_given = err != ZN_ENOENT;
        if (err == ZN_OK && zn_storage_name_valid(zn_slice(from, strlen(from))))
            u->from = zn_api_state_strdup(u, h2o_strdup(&req->pool, from, SIZE_MAX).base);
    }
    u->digest_bad = query_digest(req, "digest", &u->digest, &u->present) != ZN_OK && u->present;
    u->too_big = !u->digest_bad && u->present && !body_fits(req, api, 0);
    return zn_api_state_run(u, post_work, post_back);
}

/* ---- the session URL -------------------------------------------------------------------------- */

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
static int with_session(h2o_req_t *req, zn_reqctx_t *ctx, session_fn next, const zn_digest_t *digest)
{
    const char *repo = zn_api_repo_param(req, ctx, 0);
    if (repo == NULL)
        return 0;
    struct upload_req *u = zn_api_state_new(ctx->app, req, ctx, sizeof(*u), upload_drop);
    u->api = ctx->app;
    u->next = next;
    u->repo = zn_api_state_strdup(u, repo);
    u->uuid = h2o_strdup(&req->pool, ctx->params[1].p, ctx->params[1].n).base;
    u->uuid = zn_api_state_strdup(u, u->uuid);
    if (digest != NULL)
        u->digest = *digest;
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

/* Checks the chunk against the open session, then writes it with done; a chunk that does
 * not fit gets its answer once the session is closed. */
static int write_chunk(h2o_req_t *req, struct upload_req *u, zn_upload_t *up, zn_api_body_done_fn done)
{
    if (!body_fits(req, u->api, zn_storage_upload_size(up)))
        return release_then(u, up, false, 413, ZN_OK);
    if (!chunk_fits(req, up))
        return release_then(u, up, false, 416, ZN_OK);
    return zn_api_body_write(u->api, req, up, false, done, u);
}

static int on_patch_body(h2o_req_t *req, zn_upload_t *up, zn_err_t err, void *data)
{
    (void)req;
    return release_then(data, up, false, err != ZN_OK ? 0 : 202, err);
}

static int patch_opened(h2o_req_t *req, struct upload_req *u, zn_upload_t *up)
{
    return write_chunk(req, u, up, on_patch_body);
}

int zn_api_upload_patch(h2o_req_t *req, zn_reqctx_t *ctx)
{
    return with_session(req, ctx, patch_opened, NULL);
}

static int put_opened(h2o_req_t *req, struct upload_req *u, zn_upload_t *up)
{
    return write_chunk(req, u, up, on_final_body);
}

int zn_api_upload_put(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_digest_t d;
    bool present;

    if (query_digest(req, "digest", &d, &present) != ZN_OK)
        return zn_api_send_error(req, ZN_OCI_DIGEST_INVALID, present ? NULL : "digest parameter missing");
    return with_session(req, ctx, put_opened, &d);
}

static int status_opened(h2o_req_t *req, struct upload_req *u, zn_upload_t *up)
{
    (void)req;
    return release_then(u, up, false, 204, ZN_OK);
}

int zn_api_upload_status(h2o_req_t *req, zn_reqctx_t *ctx)
{
    return with_session(req, ctx, status_opened, NULL);
}

static int delete_opened(h2o_req_t *req, struct upload_req *u, zn_upload_t *up)
{
    (void)req;
    return release_then(u, up, true, 204, ZN_OK);
}

int zn_api_upload_delete(h2o_req_t *req, zn_reqctx_t *ctx)
{
    return with_session(req, ctx, delete_opened, NULL);
}
