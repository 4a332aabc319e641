/*
 * api/referrers.c - GET /v2/<name>/referrers/<digest>?artifactType=: always 200 with an OCI
 * image index listing the manifests whose subject is <digest> (empty when none, even for an
 * unknown repository, as the spec requires); with a filter, OCI-Filters-Applied says so.
 */
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

struct referrers_req {
    const char *repo;
    zn_digest_t d;
    char artifact_type[ZN_MEDIA_TYPE_MAX];
    bool filtered;
    zn_err_t err;
    char *json;
    size_t len;
};

static void referrers_work(zn_api_t *api, zn_reqctx_t *ctx, void *p)
{
    struct referrers_req *r = p;
    (void)ctx;
    r->err = zn_storage_referrers(api->st, r->repo, &r->d, r->filtered ? r->artifact_type : NULL, &r->json, &r->len);
}

static int referrers_back(h2o_req_t *req, void *p)
{
    struct referrers_req *r = p;
    if (r->err != ZN_OK)
        return zn_api_send_storage_error(req, r->err, ZN_OCI_NAME_UNKNOWN, NULL);
    if (r->filtered)
        zn_api_header_add_str(req, "oci-filters-applied", "artifactType");
    zn_api_send_body(req, 200, "application/vnd.oci.image.index.v1+json", r->json, r->len);
    free(r->json);
    r->json = NULL;
    return 0;
}

static void referrers_drop(void *p)
{
    free(((struct referrers_req *)p)->json);
}

int zn_api_referrers(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_api_t *api = ctx->app;
    const char *repo = zn_api_repo_param(req, ctx, 0);
    if (repo == NULL)
        return 0;
    struct referrers_req *r = zn_api_state_new(api, req, ctx, sizeof(*r), referrers_drop);
    if (!zn_api_digest_param(req, ctx, 1, &r->d))
        return 0;
    zn_err_t err = zn_api_query_get(zn_api_query(req), "artifactType", r->artifact_type, sizeof(r->artifact_type));
    if (err == ZN_EINVAL)
        return zn_api_send_error(req, ZN_OCI_UNSUPPORTED, "artifactType");
    r->filtered = err == ZN_OK && r->artifact_type[0] != '\0';
    r->repo = zn_api_state_strdup(r, repo);
    return zn_api_state_run(r, referrers_work, referrers_back);
}
