/*
 * api/tags.c - GET /v2/<name>/tags/list?n=&last=: the repository's tags in byte order,
 * paginated with a Link header when n cuts the list.
 */
#include <stdio.h>

#include "api/internal.h"

struct tags_req {
    const char *repo;
    zn_api_page_t page;
    zn_err_t err;
    zn_storage_list_t l;
};

static void tags_work(zn_api_t *api, zn_reqctx_t *ctx, void *p)
{
    struct tags_req *t = p;
    (void)ctx;
    t->err = zn_storage_tags_list(api->st, t->repo, t->page.has_last ? t->page.last : NULL, t->page.max, &t->l);
}

static int tags_back(h2o_req_t *req, void *p)
{
    struct tags_req *t = p;
    char link[ZN_REPO_NAME_MAX + 32];
    if (t->err != ZN_OK)
        return zn_api_send_storage_error(req, t->err, ZN_OCI_NAME_UNKNOWN, NULL);
    int n = snprintf(link, sizeof(link), "/v2/%s/tags/list", t->repo); /* the name is at most 255 bytes */
    if (n < 0 || (size_t)n >= sizeof(link)) {
        zn_storage_list_release(&t->l);
        return zn_api_send_error(req, ZN_OCI_NAME_INVALID, NULL);
    }
    zn_api_send_page(req, json_pack("{s:s}", "name", t->repo), "tags", &t->l, &t->page, link);
    zn_storage_list_release(&t->l);
    return 0;
}

static void tags_drop(void *p)
{
    zn_storage_list_release(&((struct tags_req *)p)->l);
}

int zn_api_tags_list(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_api_t *api = ctx->app;
    const char *repo = zn_api_repo_param(req, ctx, 0);
    if (repo == NULL)
        return 0;
    struct tags_req *t = zn_api_state_new(api, req, ctx, sizeof(*t), tags_drop);
    if (!zn_api_page_params(req, &t->page))
        return 0;
    t->repo = zn_api_state_strdup(t, repo);
    return zn_api_state_run(t, tags_work, tags_back);
}
