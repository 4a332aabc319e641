/*
 * api/internal.h - private to api/: the API object, the request parsers (parse.c) and the
 * response helpers (respond.c) every handler file shares. Query parameters, headers and
 * small responses are the HTTP edge's (common/edge/edge.h); the zn_api_* names below are
 * thin wrappers kept for the handlers. Errors go through api/errors.c's tables; a refusal
 * a handler decides goes through ctx->deny (the server's).
 */
#ifndef ZN_API_INTERNAL_H
#define ZN_API_INTERNAL_H

#include <jansson.h>

#include "api/api.h"
#include "storage/storage.h"

struct zn_sync;

struct zn_api {
    const zn_config_t *cfg;
    zn_storage_t *st;
    struct zn_pool *pool; /* background threads: body hashing/writing, fsync, re-hash */
    struct zn_sync *sync; /* the pull-through mirror (api/sync.c), NULL when not configured */
    struct zn_pool *storage_pool; /* "storage" threads for a store that may block, else NULL */
    zn_mutex_t loops_lock;        /* guards loops */
    struct zn_api_loop *loops;    /* every worker loop's mailboxes (dispatch.c), freed with the api */
};

/* The API's background pool (api.c). */
struct zn_pool *zn_api_pool(zn_api_t *api);

/* ---- dispatch.c: a handler's storage calls off the loop on a store that may block --------
 * A handler keeps its state in one struct from zn_api_state_new and runs its storage part
 * (work) and its respond part (back) with zn_api_state_run. Filesystem store: the state is
 * request-pool memory, work and back run at once, inline. A store that may block: work runs
 * on the storage pool, back on the request's loop afterwards; if the request went away
 * meanwhile back is not called. work must touch no h2o object and no request-pool memory
 * (copy inputs with zn_api_state_keep); ctx in work is the request's or a safe copy (its
 * user and ->can work, its path params are empty). back may run another stage. */
typedef void (*zn_api_work_fn)(zn_api_t *api, zn_reqctx_t *ctx, void *state);
typedef int (*zn_api_back_fn)(h2o_req_t *req, void *state);
/* Called (async path only) once when the state is freed, i.e. when the request has ended
 * and no work is in flight: releases what the state still holds (each back NULLs what it
 * released or handed on). */
typedef void (*zn_api_drop_fn)(void *state);

/* Zeroed state of `size` bytes, living until the request ends. */
void *zn_api_state_new(zn_api_t *api, h2o_req_t *req, zn_reqctx_t *ctx, size_t size, zn_api_drop_fn drop);
/* The same, but work always runs off the loop: on the storage pool, or on the filesystem
 * store on the background pool (for the few calls there that may wait on the disk: creating
 * a session's file, reading a manifest the cache does not hold). */
void *zn_api_state_new_off_loop(zn_api_t *api, h2o_req_t *req, zn_reqctx_t *ctx, size_t size, zn_api_drop_fn drop);
/* Whether state's work runs on a pool (inputs must be kept, drop is called). */
bool zn_api_state_is_async(void *state);
/* p itself on the inline path, else a copy of n bytes (plus a NUL) owned by the state. */
const void *zn_api_state_keep(void *state, const void *p, size_t n);
const char *zn_api_state_strdup(void *state, const char *s);
/* The ctx work receives. */
zn_reqctx_t *zn_api_state_ctx(void *state);
/* Runs work then back (see above). Returns 0, or back's result on the inline path. */
int zn_api_state_run(void *state, zn_api_work_fn work, zn_api_back_fn back);
/* Whether handlers dispatch (the store may block). */
static inline bool zn_api_async(const zn_api_t *api)
{
    return api->storage_pool != NULL;
}
/* Closes (or cancels) a session without waiting: inline on the filesystem store, else on
 * the storage pool. For sessions whose request is gone or already answered. */
void zn_api_upload_release(zn_api_t *api, zn_upload_t *up, bool cancel);

/* ---- dispatch.c: where pool threads post results back to a worker loop ------------------
 * A mailbox is one h2o multithread receiver on a worker's queue. It is heap memory owned by
 * the api (not the worker thread's TLS, which dies with the thread) and outlives every
 * pool job. Once the worker has stopped (zn_api_loop_close) nothing is delivered: post
 * returns false and the pool thread drops the job itself; what was already posted but not
 * yet delivered is handed to the mailbox's callback on the loop, with
 * zn_api_mailbox_closed(receiver) true, to be dropped there. */
enum { ZN_API_MB_STORAGE, ZN_API_MB_BODY, ZN_API_MB_N };
/* This loop's mailbox of that kind (registered with cb on first use). Loop thread only. */
h2o_multithread_receiver_t *zn_api_mailbox(zn_api_t *api, h2o_context_t *ctx, int kind, h2o_multithread_receiver_cb cb);
/* From a pool thread: sends msg, or returns false when the loop is closed (msg not sent). */
bool zn_api_mailbox_post(h2o_multithread_receiver_t *mb, h2o_multithread_message_t *msg);
/* In the callback: the loop has stopped, drop what is delivered. */
bool zn_api_mailbox_closed(h2o_multithread_receiver_t *mb);
/* At zn_api_free, once every pool is joined. */
void zn_api_loops_free(zn_api_t *api);

/* ---- parse.c: pure parsers (unit-tested) ----------------------------------------------- */

/* Query parameters (the edge's reader, '+' literal): the first or the nth (0-based)
 * occurrence of `name` percent-decoded into out (NUL-terminated, at most outlen-1 bytes).
 * ZN_ENOENT if absent, ZN_EINVAL if malformed or too long (never cut). */
static inline zn_err_t zn_api_query_get_nth(zn_slice_t q, const char *name, size_t nth, char *out, size_t outlen)
{
    return zn_edge_query_get(q, name, nth, 0, out, outlen);
}
static inline zn_err_t zn_api_query_get(zn_slice_t q, const char *name, char *out, size_t outlen)
{
    return zn_edge_query_get(q, name, 0, 0, out, outlen);
}

/* A byte range [first, last] resolved against a size. */
typedef struct zn_api_range {
    uint64_t first, last;
} zn_api_range_t;

/* Parses a Range header ("bytes=a-b", "bytes=a-", "bytes=-n") against size. ZN_OK with
 * *out set; ZN_ERANGE when well formed but not satisfiable (start past the end, empty
 * blob); ZN_EINVAL when malformed or a multi-range (zinc answers both with 416). */
zn_err_t zn_api_range_parse(zn_slice_t header, uint64_t size, zn_api_range_t *out);

/* Parses a PATCH Content-Range: "<first>-<last>", also with a "bytes " or "bytes=" prefix
 * and an optional "/<total>" or "/\*" suffix. ZN_EINVAL if malformed or last < first. */
zn_err_t zn_api_content_range_parse(zn_slice_t header, zn_api_range_t *out);

/* A manifest reference: a tag or a digest. */
typedef struct zn_api_ref {
    bool is_digest;
    zn_digest_t digest; /* when is_digest */
    char text[ZN_DIGEST_STR_MAX]; /* the tag or the digest text, NUL-terminated */
} zn_api_ref_t;

/* Classifies ref: contains ':' => digest (errors of zn_digest_parse), else a tag
 * (ZN_EINVAL if not a valid tag). */
zn_err_t zn_api_ref_parse(zn_slice_t ref, zn_api_ref_t *out);

/* Parses a decimal `n` page size (0..max). ZN_EINVAL if not a number. */
zn_err_t zn_api_page_size_parse(const char *s, size_t max, size_t *out);

/* ---- respond.c: request and response helpers ------------------------------------------- */

/* The repository named by path param `idx`, validated and NUL-terminated in the request
 * pool. On failure sends 400 NAME_INVALID and returns NULL. */
const char *zn_api_repo_param(h2o_req_t *req, zn_reqctx_t *ctx, int idx);
/* The digest named by path param `idx`. On failure sends 400 DIGEST_INVALID, returns false. */
bool zn_api_digest_param(h2o_req_t *req, zn_reqctx_t *ctx, int idx, zn_digest_t *d);
/* Sends `code` (e.g. BLOB_UNKNOWN) if the repository exists, else NAME_UNKNOWN. */
int zn_api_send_unknown(h2o_req_t *req, zn_api_t *api, const char *repo, zn_oci_code_t code);
/* The same when the storage part already asked (repo_exists). */
static inline int zn_api_send_unknown_as(h2o_req_t *req, bool repo_exists, zn_oci_code_t code)
{
    return zn_api_send_error(req, repo_exists ? code : ZN_OCI_NAME_UNKNOWN, NULL);
}
/* Thin names over the HTTP edge (common/edge/edge.h), kept for the handlers' call sites. */
static inline zn_slice_t zn_api_query(h2o_req_t *req)
{
    return zn_edge_query(req);
}
static inline zn_slice_t zn_api_header(h2o_req_t *req, const h2o_token_t *token)
{
    return zn_edge_header(req, token);
}
static inline void zn_api_header_add(h2o_req_t *req, const h2o_token_t *token, const char *value)
{
    zn_edge_header_add(req, token, value);
}
static inline void zn_api_header_add_str(h2o_req_t *req, const char *name, const char *value)
{
    zn_edge_header_add_name(req, name, value);
}
/* A header with a printf-formatted value; one that would not fit is logged and not sent. */
void zn_api_header_addf(h2o_req_t *req, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sends body (copied into the pool) with the given Content-Type and Content-Length: len;
 * HEAD gets headers only. body may be NULL only for HEAD (len is then what GET would send). */
static inline int zn_api_send_body(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len)
{
    return zn_edge_send(req, status, content_type, body, len);
}
/* Sends status with no body (Content-Length: 0). */
static inline int zn_api_send_empty(h2o_req_t *req, int status)
{
    return zn_edge_send(req, status, NULL, "", 0);
}
/* Sends the OCI error matching a storage error (api/errors.c's table); `code` is used for
 * ZN_ENOENT, NAME_INVALID for ZN_EINVAL. ZN_EIO and other internal failures become 500
 * and are logged. */
static inline int zn_api_send_storage_error(h2o_req_t *req, zn_err_t err, zn_oci_code_t enoent_code, const char *detail)
{
    zn_api_codes_t as = {enoent_code, ZN_OCI_NAME_INVALID};
    return zn_api_send_err(req, err, &as, detail);
}
/* Range: 0-<size-1> as the spec shows it ("0-0" for an empty upload). */
void zn_api_add_upload_range(h2o_req_t *req, uint64_t size);

/* ---- body.c: request body -> upload session ----------------------------------------------- */

/* Called once the body is written (err == ZN_OK) or a storage error happened. Owns up
 * from then on. */
typedef int (*zn_api_body_done_fn)(h2o_req_t *req, zn_upload_t *up, zn_err_t err, void *data);

/* Writes the request body to up on the background pool (hashing it on the way), then calls
 * done on the worker. The body is either a stream still arriving (zn_api_body_stream, the
 * HTTP/1 fast path) or req->entity (never copied). Small entities are written inline and
 * done is called before this returns. A malformed streamed body (broken chunked encoding)
 * gets 400 BLOB_UPLOAD_INVALID from here, and the session is closed (cancelled when
 * cancel_on_abort) without calling done. If the request goes away first, up is closed (or
 * cancelled when cancel_on_abort) once no pool thread uses it, and done is never called.
 * Takes ownership of up; data (request-pool memory) is passed to done. Returns 0. */
int zn_api_body_write(zn_api_t *api, h2o_req_t *req, zn_upload_t *up, bool cancel_on_abort, zn_api_body_done_fn done,
                      void *data);
/* The body's length: the streamed Content-Length (UINT64_MAX for chunked transfer), or
 * req->entity's. */
uint64_t zn_api_body_length(h2o_req_t *req);

/* Runs zn_storage_upload_finish(up, d) (digest check, fsync, publish) on the background
 * pool, then after(req, err, data) on the worker. up is consumed whatever happens; if the
 * request goes away first, the finish still completes and after is not called. Returns 0. */
typedef int (*zn_api_finish_fn)(h2o_req_t *req, zn_err_t err, void *data);
/* Runs zn_storage_upload_open(repo, uuid) (which may re-hash the session file) on the
 * background pool, then then(req, up, err, data) on the worker; on success then owns up.
 * repo and uuid are copied. If the request goes away first, up is closed and then is not
 * called. Returns 0 (or then's result when it is called at once for an impossible name). */
typedef int (*zn_api_open_fn)(h2o_req_t *req, zn_upload_t *up, zn_err_t err, void *data);
int zn_api_upload_open_async(zn_api_t *api, h2o_req_t *req, const char *repo, const char *uuid, zn_api_open_fn then,
                             void *data);
int zn_api_upload_finish_async(zn_api_t *api, h2o_req_t *req, zn_upload_t *up, const zn_digest_t *d, zn_api_finish_fn after,
                               void *data);

/* Pagination parameters ?n=&last= of tags/list and _catalog. */
typedef struct zn_api_page {
    size_t max; /* SIZE_MAX without n */
    bool has_n, has_last;
    char last[ZN_REPO_NAME_MAX + 1];
} zn_api_page_t;
/* Reads n and last; on a malformed value sends 400 and returns false. */
bool zn_api_page_params(h2o_req_t *req, zn_api_page_t *page);
/* Sends body (consumed) with body[key] = the names, and a Link to the next page
 * (link_path?n=..&last=..) when more remain and n was given. */
int zn_api_send_page(h2o_req_t *req, json_t *body, const char *key, const zn_storage_list_t *l, const zn_api_page_t *page,
                     const char *link_path);

/* ---- handlers (one file per resource) -------------------------------------------------------- */

int zn_api_blob_get(h2o_req_t *req, zn_reqctx_t *ctx);
int zn_api_blob_delete(h2o_req_t *req, zn_reqctx_t *ctx);
int zn_api_upload_post(h2o_req_t *req, zn_reqctx_t *ctx);
int zn_api_upload_patch(h2o_req_t *req, zn_reqctx_t *ctx);
int zn_api_upload_put(h2o_req_t *req, zn_reqctx_t *ctx);
int zn_api_upload_status(h2o_req_t *req, zn_reqctx_t *ctx);
int zn_api_upload_delete(h2o_req_t *req, zn_reqctx_t *ctx);
int zn_api_manifest_get(h2o_req_t *req, zn_reqctx_t *ctx);
int zn_api_manifest_put(h2o_req_t *req, zn_reqctx_t *ctx);
int zn_api_manifest_delete(h2o_req_t *req, zn_reqctx_t *ctx);
int zn_api_tags_list(h2o_req_t *req, zn_reqctx_t *ctx);
int zn_api_catalog(h2o_req_t *req, zn_reqctx_t *ctx);
int zn_api_referrers(h2o_req_t *req, zn_reqctx_t *ctx);

#endif
