/*
 * api/api.c - the API object (configuration + storage) and the table of OCI routes the
 * server registers. Authorization of the repository param happens in the server before a
 * handler runs (action column); handlers ask ctx->can for decisions that depend on state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "api/internal.h"
#include "api/sync_int.h"
#include "common/pool.h"

/*
 * Routing rule. A repository name may contain every path word of this table ("blobs",
 * "uploads", "manifests", "tags", "list", "referrers": `team/manifests/app`, `x/blobs/uploads`),
 * so a path is read from the right: each row's suffix has a fixed number of segments, the
 * router matches them against the last segments of the path, and the name is all that lies
 * between /v2/ and that suffix, i.e. the name ends before the LAST occurrence of the suffix.
 * No path can match two rows of one method: the segment before the last is a literal that
 * differs between rows (blobs/<digest>, uploads/<uuid> after blobs, manifests/<ref>,
 * tags/list, referrers/<digest>), and upload_start alone ends in "uploads" + "" (the
 * trailing slash). So `GET /v2/a/blobs/uploads/<uuid>` is a session of `a` and never a blob
 * of `a/blobs/uploads`, which would read `GET /v2/a/blobs/uploads/blobs/<digest>`.
 * test/unit/server/test_router.c checks this against the table in both row orders.
 */
#define NAME "/v2/{name+}"

/* Threads of the "storage" pool on a store that may block: each holds one S3 round trip at
 * a time, so this is how many storage calls all requests have in flight at once (they wait
 * on the network, not the CPU). */
#define STORAGE_THREADS 16

static const zn_route_def_t routes[] = {
    {"GET", NAME "/blobs/{digest}", "blob_get", zn_api_blob_get, ZN_ACT_READ, 0, 0},
    {"HEAD", NAME "/blobs/{digest}", "blob_head", zn_api_blob_get, ZN_ACT_READ, 0, 0},
    {"DELETE", NAME "/blobs/{digest}", "blob_delete", zn_api_blob_delete, ZN_ACT_DELETE, 0, 0},
    {"POST", NAME "/blobs/uploads/", "upload_start", zn_api_upload_post, ZN_ACT_CREATE, 0, ZN_ROUTE_STREAM},
    {"PATCH", NAME "/blobs/uploads/{uuid}", "upload_patch", zn_api_upload_patch, ZN_ACT_CREATE, 0, ZN_ROUTE_STREAM},
    {"PUT", NAME "/blobs/uploads/{uuid}", "upload_put", zn_api_upload_put, ZN_ACT_CREATE, 0, ZN_ROUTE_STREAM},
    {"GET", NAME "/blobs/uploads/{uuid}", "upload_status", zn_api_upload_status, ZN_ACT_READ, 0, 0},
    {"DELETE", NAME "/blobs/uploads/{uuid}", "upload_delete", zn_api_upload_delete, ZN_ACT_DELETE, 0, 0},
    {"GET", NAME "/manifests/{reference}", "manifest_get", zn_api_manifest_get, ZN_ACT_READ, 0, 0},
    {"HEAD", NAME "/manifests/{reference}", "manifest_head", zn_api_manifest_get, ZN_ACT_READ, 0, 0},
    {"PUT", NAME "/manifests/{reference}", "manifest_put", zn_api_manifest_put, ZN_ACT_CREATE, 0, 0},
    {"DELETE", NAME "/manifests/{reference}", "manifest_delete", zn_api_manifest_delete, ZN_ACT_DELETE, 0, 0},
    {"GET", NAME "/tags/list", "tags_list", zn_api_tags_list, ZN_ACT_READ, 0, 0},
    {"GET", NAME "/referrers/{digest}", "referrers", zn_api_referrers, ZN_ACT_READ, 0, 0},
    {"GET", "/v2/_catalog", "catalog", zn_api_catalog, 0, -1, ZN_ROUTE_NOREPO_AUTHZ},
};

const zn_route_def_t *zn_api_routes(size_t *n)
{
    *n = sizeof(routes) / sizeof(routes[0]);
    return routes;
}

zn_err_t zn_api_new(const zn_config_t *cfg, zn_api_t **out, char *err, size_t errlen)
{
    zn_api_t *api = zn_calloc(1, sizeof(*api));
    zn_err_t e;
    api->cfg = cfg;
    zn_mutex_init(&api->loops_lock, "api.loops");
    *out = NULL;
    if ((e = zn_storage_open(cfg, &api->st, err, errlen)) != ZN_OK) {
        zn_mutex_destroy(&api->loops_lock);
        free(api);
        return e;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if ((api->pool = zn_pool_new("upload", ncpu < 2 ? 2 : ncpu > 8 ? 8 : (int)ncpu)) == NULL) {
        zn_errf(err, errlen, "cannot start the upload threads");
        zn_api_free(api);
        return ZN_EIO;
    }
    if ((e = zn_sync_new(cfg, api->st, &api->sync, err, errlen)) != ZN_OK) {
        zn_api_free(api);
        return e;
    }
    if (zn_storage_may_block(api->st)) {
        /* storage.h's threading rule: every handler's storage part runs on these threads
         * (api/dispatch.c). The mirror (api/sync*.c) still calls storage on the loop. */
        if (api->sync != NULL) {
            zn_errf(err, errlen, "extensions.sync: the mirror is not supported with storage.storageDriver (s3) yet");
            zn_api_free(api);
            return ZN_EUNSUPP;
        }
        if ((api->storage_pool = zn_pool_new("storage", STORAGE_THREADS)) == NULL) {
            zn_errf(err, errlen, "cannot start the storage threads");
            zn_api_free(api);
            return ZN_EIO;
        }
    }
    *out = api;
    return ZN_OK;
}

void zn_api_start(zn_api_t *api)
{
    zn_storage_start(api->st);
}

void zn_api_stop(zn_api_t *api)
{
    zn_storage_stop(api->st);
}

void zn_api_stop_at(zn_api_t *api, uint64_t deadline_ns)
{
    zn_storage_stop_at(api->st, deadline_ns);
}

const char *zn_api_tmp_dir(zn_api_t *api)
{
    return zn_storage_tmp_dir(api->st);
}

bool zn_api_repo_name_valid(zn_slice_t name)
{
    return zn_storage_name_valid(name);
}

zn_err_t zn_api_repo_usage(const char *root, const char *repo, uint64_t *bytes)
{
    return zn_storage_repo_usage(root, repo, bytes);
}

zn_err_t zn_api_scrub(const zn_config_t *cfg, zn_api_scrub_report_fn report, void *data, zn_api_scrub_stats_t *stats,
                      char *err, size_t errlen)
{
    zn_storage_t *st = NULL;
    zn_storage_scrub_stats_t s;
    zn_err_t e;

    if ((e = zn_storage_open(cfg, &st, err, errlen)) != ZN_OK)
        return e;
    if ((e = zn_storage_scrub(st, NULL, 0, report, data, &s)) != ZN_OK) {
        if (snprintf(err, errlen, "cannot read %s", cfg->storage.root_directory) < 0 && errlen != 0)
            err[0] = '\0';
    } else {
        *stats = (zn_api_scrub_stats_t){s.repos, s.manifests, s.blobs, s.bytes, s.problems};
    }
    zn_storage_free(st);
    return e;
}

void zn_api_free(zn_api_t *api)
{
    if (api == NULL)
        return;
    zn_sync_free(api->sync); /* before the store it writes to */
    zn_pool_free(api->pool); /* its jobs write to storage */
    zn_pool_free(api->storage_pool);
    zn_api_loops_free(api); /* after the pools: a job finishing late checks its loop's mailbox */
    zn_mutex_destroy(&api->loops_lock);
    zn_storage_free(api->st);
    free(api);
}

bool zn_api_sync_stats(zn_api_t *api, zn_api_sync_stats_t *out)
{
    zn_sync_stats_t st;
    if (api->sync == NULL)
        return false;
    zn_sync_stats(api->sync, &st);
    *out = (zn_api_sync_stats_t){st.blob_hits,     st.blob_misses,     st.blob_fetched,     st.blob_failed,
                                 st.manifest_hits, st.manifest_misses, st.manifest_fetched, st.manifest_failed,
                                 st.manifest_revalidated, st.poll_images_copied, st.poll_images_failed, st.poll_runs};
    return true;
}

struct zn_pool *zn_api_pool(zn_api_t *api)
{
    return api->pool;
}
