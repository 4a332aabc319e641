/*
 * api/api.h - the OCI distribution API: route rows for the server's router and the OCI
 * error responses every handler (and the server's 404) sends.
 */
#ifndef ZN_API_H
#define ZN_API_H

#include <h2o.h>

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
    ZN_OCI_UNAUTHORIZED,
    ZN_OCI_DENIED,
    ZN_OCI_UNSUPPORTED,
    ZN_OCI_TOO_MANY_REQUESTS,
    ZN_OCI_RANGE_INVALID, /* 416 BLOB_UPLOAD_INVALID / range not satisfiable */
    ZN_OCI_NOT_FOUND,     /* unknown route */
    ZN_OCI_METHOD_UNKNOWN,
    ZN_OCI_INTERNAL,      /* 500 */
    ZN_OCI_TAG_INVALID,
    ZN_OCI_PAGINATION_NUMBER_INVALID,
    ZN_OCI_CODE_MAX
} zn_oci_code_t;

/* Default HTTP status of a code (one table, api/errors.c). */
int zn_api_error_status(zn_oci_code_t code);

/* Sends `{"errors":[{"code","message","detail"}]}` with the code's status (or `status` if
 * non-zero), Content-Type application/json. detail may be NULL (sent as {}), else a
 * NUL-terminated string sent as a JSON string. Returns 0 (h2o handler convention). */
int zn_api_send_error_status(h2o_req_t *req, int status, zn_oci_code_t code, const char *detail);
static inline int zn_api_send_error(h2o_req_t *req, zn_oci_code_t code, const char *detail)
{
    return zn_api_send_error_status(req, 0, code, detail);
}

/* Adds `Docker-Distribution-API-Version: registry/2.0` (every response carries it). */
void zn_api_add_version_header(h2o_req_t *req);

/* ---- the distribution API ------------------------------------------------------------------ */

typedef struct zn_api zn_api_t;

/* Creates the API and its storage (cfg->storage). cfg must outlive it. On failure returns
 * NULL with a message in err. Free with zn_api_free (NULL is a no-op). */
zn_api_t *zn_api_new(const zn_config_t *cfg, char *err, size_t errlen);
void zn_api_free(zn_api_t *api);
/* The API's store, for the server's maintenance thread (GC). Owned by api. */
struct zn_storage;
struct zn_storage *zn_api_storage(zn_api_t *api);

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

#endif
