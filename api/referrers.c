/*
 * api/referrers.c - GET /v2/<name>/referrers/<digest>?artifactType=: always 200 with an OCI
 * image index listing the manifests whose subject is <digest> (empty when none, even for an
 * unknown repository, as the spec requires); with a filter, OCI-Filters-Applied says so.
 */
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

int zn_api_referrers(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_api_t *api = ctx->app;
    const char *repo = zn_api_repo_param(req, ctx, 0);
    char artifact_type[ZN_MEDIA_TYPE_MAX];
    zn_digest_t d;
    char *json;
    size_t len;

    if (repo == NULL || !zn_api_digest_param(req, ctx, 1, &d))
        return 0;
    zn_err_t err = zn_api_query_get(zn_api_query(req), "artifactType", artifact_type, sizeof(artifact_type));
    if (err == ZN_EINVAL)
        return zn_api_send_error(req, ZN_OCI_UNSUPPORTED, "artifactType");
    bool filtered = err == ZN_OK && artifact_type[0] != '\0';
    if ((err = zn_storage_referrers(api->st, repo, &d, filtered ? artifact_type : NULL, &json, &len)) != ZN_OK)
        return zn_api_send_storage_error(req, err, ZN_OCI_NAME_UNKNOWN, NULL);
    if (filtered)
        zn_api_header_add_str(req, "oci-filters-applied", "artifactType");
    zn_api_send_body(req, 200, "application/vnd.oci.image.index.v1+json", json, len);
    free(json);
    return 0;
}
