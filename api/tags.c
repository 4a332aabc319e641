/*
 * api/tags.c - GET /v2/<name>/tags/list?n=&last=: the repository's tags in byte order,
 * paginated with a Link header when n cuts the list.
 */
#include <stdio.h>

#include "api/internal.h"

int zn_api_tags_list(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_api_t *api = ctx->app;
    const char *repo = zn_api_repo_param(req, ctx, 0);
    char link[ZN_REPO_NAME_MAX + 32];
    zn_api_page_t page;
    zn_storage_list_t l;

    if (repo == NULL || !zn_api_page_params(req, &page))
        return 0;
    zn_err_t err = zn_storage_tags_list(api->st, repo, page.has_last ? page.last : NULL, page.max, &l);
    if (err != ZN_OK)
        return zn_api_send_storage_error(req, err, ZN_OCI_NAME_UNKNOWN, NULL);
    int n = snprintf(link, sizeof(link), "/v2/%s/tags/list", repo); /* the name is at most 255 bytes */
    if (n < 0 || (size_t)n >= sizeof(link)) {
        zn_storage_list_release(&l);
        return zn_api_send_error(req, ZN_OCI_NAME_INVALID, NULL);
    }
    zn_api_send_page(req, json_pack("{s:s}", "name", repo), "tags", &l, &page, link);
    zn_storage_list_release(&l);
    return 0;
}
