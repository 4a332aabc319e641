/*
 * api/catalog.c - GET /v2/_catalog?n=&last=: every repository the caller may read, in byte
 * order, paginated like tags/list. The route is authenticated but not tied to one
 * repository; each candidate is checked with ctx->can(read). In cluster mode the server
 * gathers the other members' pages and zn_api_catalog_merged folds them into this one's.
 */
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

static bool may_read(void *data, const char *repo)
{
    zn_reqctx_t *ctx = data;
    return ctx->can(ctx, repo, ZN_ACT_READ);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct catalog_req {
    zn_api_page_t page;
    char *const *extra; /* request-pool strings: read in the respond part only */
    size_t nextra;
    bool extra_more;
    zn_err_t err;
    zn_storage_list_t l;
};

static void catalog_work(zn_api_t *api, zn_reqctx_t *ctx, void *p)
{
    struct catalog_req *c = p;
    c->err = zn_storage_catalog(api->st, c->page.has_last ? c->page.last : NULL, c->page.max, may_read, ctx, &c->l);
}

static int catalog_back(h2o_req_t *req, void *p)
{
    struct catalog_req *c = p;
    zn_api_page_t *page = &c->page;
    zn_storage_list_t *l = &c->l;
    if (c->err != ZN_OK)
        return zn_api_send_storage_error(req, c->err, ZN_OCI_INTERNAL, NULL);
    /* names are request-pool pointers: the merged view owns none of them */
    char **all = h2o_mem_alloc_pool(&req->pool, (l->count + c->nextra + 1) * sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < l->count; i++)
        all[n++] = h2o_strdup(&req->pool, l->names[i], SIZE_MAX).base;
    for (size_t i = 0; i < c->nextra; i++)
        if (!page->has_last || strcmp(c->extra[i], page->last) > 0)
            all[n++] = c->extra[i];
    qsort(all, n, sizeof(*all), cmp_names);
    size_t out = 0;
    for (size_t i = 0; i < n; i++) /* a repository has one owner, but a stale copy may linger elsewhere */
        if (out == 0 || strcmp(all[out - 1], all[i]) != 0)
            all[out++] = all[i];
    zn_storage_list_t merged = {all, out < page->max ? out : page->max, l->more || c->extra_more || out > page->max};
    zn_storage_list_release(l);
    return zn_api_send_page(req, json_object(), "repositories", &merged, page, "/v2/_catalog");
}

static void catalog_drop(void *p)
{
    zn_storage_list_release(&((struct catalog_req *)p)->l);
}

int zn_api_catalog_merged(h2o_req_t *req, zn_reqctx_t *ctx, char *const *extra, size_t nextra, bool extra_more)
{
    zn_api_t *api = ctx->app;
    struct catalog_req *c = zn_api_state_new(api, req, ctx, sizeof(*c), catalog_drop);
    if (!zn_api_page_params(req, &c->page))
        return 0;
    c->extra = extra;
    c->nextra = nextra;
    c->extra_more = extra_more;
    return zn_api_state_run(c, catalog_work, catalog_back);
}

int zn_api_catalog(h2o_req_t *req, zn_reqctx_t *ctx)
{
    return zn_api_catalog_merged(req, ctx, NULL, 0, false);
}
