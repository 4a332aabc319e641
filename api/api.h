/*
 * api/api.h - the OCI distribution API: route rows for the server's router and the OCI
 * error responses every handler (and the server's 404 and refusals) sends.
 *
 * api/errors.c holds the one table of OCI errors (wire code, message, HTTP status, zot's
 * detail) and the one table mapping each internal zn_err_t to an OCI error; the bytes go
 * out through the HTTP edge (common/edge/edge.h).
 */
#ifndef ZN_API_H
#define ZN_API_H

#include <h2o.h>

#include "common/edge/edge.h"
#include "common/route.h"
#include "common/zn.h"
#include "config/config.h"

/* OCI error codes (distribution-spec) plus zinc's NOT_FOUND for unknown routes. */
typedef enum zn_oci_code {
    ZN_OCI_BLOB_UNKNOWN,
    ZN_OCI_BLOB_UPLOAD_INVALID,
    ZN_OCI_BLOB_UPLOAD_UNKNOWN,
    ZN_OCI_DIGEST_INVALID,
    ZN_OCI_MANIFEST_BLOB_UNKNOWN,
    ZN_OCI_MANIFEST_INVALID,
    ZN_OCI_MANIFEST_UNKNOWN,
    ZN_OCI_NAME_INVALID,
    ZN_OCI_NAME_UNKNOWN,
    ZN_OCI_SIZE_INVALID,
    ZN_OCI_UNAUTHORIZED,     /* 401, authorization refused an anonymous caller (zot's body) */
    ZN_OCI_DENIED,           /* 403, authorization refused a user (zot's body) */
    ZN_OCI_UNSUPPORTED,
    ZN_OCI_TOO_MANY_REQUESTS,
    ZN_OCI_RANGE_INVALID, /* 416 BLOB_UPLOAD_INVALID / range not satisfiable */
    ZN_OCI_NOT_FOUND,     /* unknown route */
    ZN_OCI_METHOD_UNKNOWN,
    ZN_OCI_INTERNAL,      /* 500 */
    ZN_OCI_TAG_INVALID,
    ZN_OCI_PAGINATION_NUMBER_INVALID,
    ZN_OCI_AUTHN_REQUIRED, /* 401, authentication failed: zot's single object, not a list */
    ZN_OCI_SIZE_TOO_LARGE, /* 413 SIZE_INVALID: a body over a configured maximum */
    ZN_OCI_BACKEND_BUSY,   /* 503 TOOMANYREQUESTS + Retry-After: the storage backend throttles */
    ZN_OCI_UNAVAILABLE,    /* 502 UNAVAILABLE: the cluster member owning the repository is down */
    ZN_OCI_CODE_MAX
} zn_oci_code_t;

/* The code's row in the table (api/errors.c): wire code ("BLOB_UNKNOWN"), message, status,
 * and the detail sent when the caller gives none (NULL = {}; zot's {"description":...}
 * objects for UNAUTHORIZED, DENIED, AUTHN_REQUIRED, as JSON text). Static. */
typedef struct zn_oci_error {
    const char *code;
    const char *message;
    int status;
    const char *detail_json;
    bool bare; /* the body is the error object itself, not {"errors":[...]} (zot's authn 401) */
    int retry_after; /* seconds for a Retry-After header, 0 = none */
} zn_oci_error_t;
/* Never NULL: codes out of range give INTERNAL's row. */
const zn_oci_error_t *zn_api_error(zn_oci_code_t code);

/* Default HTTP status of a code. */
int zn_api_error_status(zn_oci_code_t code);

/* Sends `{"errors":[{"code","message","detail"}]}` (or the bare object) with the code's
 * status (or `status` if non-zero), Content-Type application/json. detail may be NULL (the
 * table's detail, else {}), else a NUL-terminated string sent as a JSON string (invalid
 * UTF-8: {}). Returns 0 (h2o handler convention). */
int zn_api_send_error_status(h2o_req_t *req, int status, zn_oci_code_t code, const char *detail);
/* The JSON body such an answer carries, in the request's pool (len 0 if out of memory): for
 * a response another module assembles (the cluster proxy's 502). */
h2o_iovec_t zn_api_error_body(h2o_req_t *req, zn_oci_code_t code, const char *detail);
static inline int zn_api_send_error(h2o_req_t *req, zn_oci_code_t code, const char *detail)
{
    return zn_api_send_error_status(req, 0, code, detail);
}

/* What an internal error means for the resource a handler works on: the code for "does
 * not exist" (ZN_ENOENT: BLOB_UNKNOWN, MANIFEST_UNKNOWN...) and for "malformed" (ZN_EINVAL:
 * NAME_INVALID, or MANIFEST_INVALID for a manifest body). */
typedef struct zn_api_codes {
    zn_oci_code_t enoent, einval;
} zn_api_codes_t;

/* The OCI error for err (the table in api/errors.c; every zn_err_t has a row). *internal is
 * set when it is a server failure (500) that the sender logs. Pure. */
zn_oci_code_t zn_api_err_code(zn_err_t err, const zn_api_codes_t *as, bool *internal);

/* Sends the OCI error for err (zn_api_err_code); detail as zn_api_send_error, or the row's
 * default detail. Internal failures are logged here with method, path and the error. */
int zn_api_send_err(h2o_req_t *req, zn_err_t err, const zn_api_codes_t *as, const char *detail);

/* Adds `Docker-Distribution-API-Version: registry/2.0` (every response carries it). */
void zn_api_add_version_header(h2o_req_t *req);

/* ---- the distribution API ------------------------------------------------------------------ */

typedef struct zn_api zn_api_t;

/* Creates the API and its storage (cfg->storage) into *out. cfg must outlive it. On failure
 * returns zn_storage_open's error with *out NULL and a message in err. Free with zn_api_free
 * (NULL is a no-op). */
zn_err_t zn_api_new(const zn_config_t *cfg, zn_api_t **out, char *err, size_t errlen);
void zn_api_free(zn_api_t *api);
/* Starts the store's background threads (GC every storage.gcInterval, scrub when
 * extensions.scrub is on); zn_api_stop stops them (promptly: a pass ends between files),
 * zn_api_free too. The server calls start once its workers run. */
void zn_api_start(zn_api_t *api);
void zn_api_stop(zn_api_t *api);
/* Shutdown: storage calls still waiting on the backend at deadline_ns give up then
 * (zn_storage_stop_at). Call before zn_api_stop, which waits for the GC thread. */
void zn_api_stop_at(zn_api_t *api, uint64_t deadline_ns);
/* A worker calls it on its loop thread as it stops for good (after its last loop run):
 * pool jobs that finish later are dropped instead of being posted to a loop that never
 * runs again (their requests are abandoned with the loop). */
void zn_api_loop_close(zn_api_t *api, h2o_context_t *ctx);
/* The store's local temp directory (<root>/.zinc/tmp, made and cleaned by storage) for
 * request-body buffers. Owned by the API, lives as long as it. */
const char *zn_api_tmp_dir(zn_api_t *api);

/* A repository name as the distribution spec allows it (storage's grammar). */
bool zn_api_repo_name_valid(zn_slice_t name);
/* Bytes stored for repository `repo` under storage root `root` (zot_repo_storage_bytes),
 * without a store. ZN_ENOENT if no such repository, ZN_EINVAL for a bad name, ZN_EIO. */
zn_err_t zn_api_repo_usage(const char *root, const char *repo, uint64_t *bytes);

/* `zinc scrub`: opens the store of cfg, re-verifies all of it on the calling thread (never
 * a worker) and calls report once per problem (strings borrowed for the call). On ZN_OK
 * *stats holds the counts; else err holds a message. */
typedef struct zn_api_scrub_stats {
    uint64_t repos, manifests, blobs, bytes, problems;
} zn_api_scrub_stats_t;
typedef void (*zn_api_scrub_report_fn)(void *data, const char *repo, const char *object, const char *problem);
zn_err_t zn_api_scrub(const zn_config_t *cfg, zn_api_scrub_report_fn report, void *data, zn_api_scrub_stats_t *stats,
                      char *err, size_t errlen);

/* Counters of the pull-through mirror (extensions.sync onDemand) for /metrics: requests in
 * mirrored repositories served from the store (hits), that had to go upstream (misses;
 * concurrent requests for one object count once), and how those fetches ended. */
typedef struct zn_api_sync_stats {
    uint64_t blob_hits, blob_misses, blob_fetched, blob_failed;
    uint64_t manifest_hits, manifest_misses, manifest_fetched, manifest_failed, manifest_revalidated;
    /* periodic sync (pollInterval): images copied or updated, images that failed, rounds done */
    uint64_t poll_images_copied, poll_images_failed, poll_runs;
} zn_api_sync_stats_t;
/* False (out untouched) when no mirror is configured. Thread-safe. */
bool zn_api_sync_stats(zn_api_t *api, zn_api_sync_stats_t *out);

/* The OCI router rows (static; *n set to their count). Register them with app = the
 * zn_api_t. They cover blobs, uploads, manifests, tags, catalog and referrers; /v2/ itself
 * and the 404 fallback are the server's. */
const zn_route_def_t *zn_api_routes(size_t *n);

/* GET /v2/_catalog of a cluster member (ctx->app = the zn_api_t, after access control): this
 * member's repositories the caller may read merged with `extra` (names other members
 * returned for the same n/last, each already filtered by its owner; borrowed), in byte
 * order, paginated by the request's n/last. extra_more: some member has more after its
 * page. Sends the response (or a 400 for bad n/last) and returns 0. */
int zn_api_catalog_merged(h2o_req_t *req, zn_reqctx_t *ctx, char *const *extra, size_t nextra, bool extra_more);

/* ---- request bodies still arriving (the HTTP/1 upload fast path, docs/design-uploads.md) --- */

/* A body the server hands over while it is still arriving on the connection, instead of
 * waiting for h2o to buffer all of it (server/h1stream.c implements it). The consumer
 * calls start once; on_data then gets the body's bytes in order, on the worker's loop, and
 * returns how many it took (the pointer is only valid during the call); taking fewer
 * pauses the stream until resume. on_end comes once: err NULL when the whole body was
 * delivered, else the reason (client gone, broken chunked encoding); after on_end nothing
 * else is called. The stream lives in the request's pool. */
typedef struct zn_body_stream zn_body_stream_t;
typedef size_t (*zn_body_data_fn)(void *arg, const char *p, size_t n);
typedef void (*zn_body_end_fn)(void *arg, const char *err);
struct zn_body_stream {
    uint64_t length; /* Content-Length, or UINT64_MAX for chunked transfer */
    void (*start)(zn_body_stream_t *s, zn_body_data_fn on_data, zn_body_end_fn on_end, void *arg);
    void (*resume)(zn_body_stream_t *s);
};

/* Attaches s to req (the server, before dispatching the request). */
void zn_api_body_stream_attach(h2o_req_t *req, zn_body_stream_t *s);
/* The stream attached to req, or NULL when the body is all in req->entity. */
zn_body_stream_t *zn_api_body_stream(h2o_req_t *req);

#endif
