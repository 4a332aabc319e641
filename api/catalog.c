/*
 * api/catalog.c - GET /v2/_catalog?n=&last=: every repository the caller may read, in byte
 * order, paginated like tags/list. The route is authenticated but not tied to one
 * repository; each candidate is checked with ctx->can(read).
 */
#include "api/internal.h"

static bool may_read(void *data, const char *repo)
{
    zn_reqctx_t *ctx = data;
    return ctx->can(ctx, repo, ZN_ACT_READ);
}

int zn_api_catalog(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_api_t *api = ctx->app;
    zn_api_page_t page;
    zn_storage_list_t l;

    if (!zn_api_page_params(req, &page))
        return 0;
    zn_err_t err = zn_storage_catalog(api->st, page.has_last ? page.last : NULL, page.max, may_read, ctx, &l);
    if (err != ZN_OK)
        return zn_api_send_storage_error(req, err, ZN_OCI_INTERNAL, NULL);
    zn_api_send_page(req, json_object(), "repositories", &l, &page, "/v2/_catalog");
    zn_storage_list_release(&l);
    return 0;
}
