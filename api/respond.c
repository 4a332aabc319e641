/*
 * api/respond.c - what every handler file shares on top of the HTTP edge
 * (common/edge/edge.h): validated path parameters, the unknown-repository rule, the upload
 * Range header and pagination. Small responses, headers and query parameters are the
 * edge's (thin names in internal.h); errors are api/errors.c's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

const char *zn_api_repo_param(h2o_req_t *req, zn_reqctx_t *ctx, int idx)
{
    if (idx >= ctx->nparams || !zn_storage_name_valid(ctx->params[idx])) {
        zn_api_send_error(req, ZN_OCI_NAME_INVALID, NULL);
        return NULL;
    }
    return h2o_strdup(&req->pool, ctx->params[idx].p, ctx->params[idx].n).base;
}

bool zn_api_digest_param(h2o_req_t *req, zn_reqctx_t *ctx, int idx, zn_digest_t *d)
{
    if (idx < ctx->nparams && zn_digest_parse(ctx->params[idx], d) == ZN_OK)
        return true;
    zn_api_send_error(req, ZN_OCI_DIGEST_INVALID, NULL);
    return false;
}

int zn_api_send_unknown(h2o_req_t *req, zn_api_t *api, const char *repo, zn_oci_code_t code)
{
    bool repo_exists = zn_storage_repo_exists(api->st, repo) == ZN_OK;
    return zn_api_send_error(req, repo_exists ? code : ZN_OCI_NAME_UNKNOWN, NULL);
}

void zn_api_header_addf(h2o_req_t *req, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* every caller formats names, digests and numbers that fit; the edge logs one that does not */
    (void)zn_edge_header_vaddf(req, name, fmt, ap);
    va_end(ap);
}

void zn_api_add_upload_range(h2o_req_t *req, uint64_t size)
{
    zn_api_header_addf(req, "range", "0-%llu", (unsigned long long)(size > 0 ? size - 1 : 0));
}

bool zn_api_page_params(h2o_req_t *req, zn_api_page_t *page)
{
    char n[32];
    zn_err_t err = zn_api_query_get(zn_api_query(req), "n", n, sizeof(n));
    page->max = SIZE_MAX;
    page->has_n = err != ZN_ENOENT;
    if (page->has_n && (err != ZN_OK || zn_api_page_size_parse(n, SIZE_MAX, &page->max) != ZN_OK)) {
        zn_api_send_error(req, ZN_OCI_PAGINATION_NUMBER_INVALID, NULL);
        return false;
    }
    err = zn_api_query_get(zn_api_query(req), "last", page->last, sizeof(page->last));
    if (err == ZN_EINVAL) {
        zn_api_send_error(req, ZN_OCI_PAGINATION_NUMBER_INVALID, "last");
        return false;
    }
    page->has_last = err == ZN_OK;
    return true;
}

int zn_api_send_page(h2o_req_t *req, json_t *body, const char *key, const zn_storage_list_t *l, const zn_api_page_t *page,
                     const char *link_path)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < l->count; i++)
        json_array_append_new(arr, json_string(l->names[i]));
    json_object_set_new(body, key, arr);
    if (l->more && page->has_n && l->count != 0)
        zn_api_header_addf(req, "link", "<%s?n=%zu&last=%s>; rel=\"next\"", link_path, page->max, l->names[l->count - 1]);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL)
        return zn_api_send_storage_error(req, ZN_ENOMEM, ZN_OCI_INTERNAL, NULL);
    zn_api_send_body(req, 200, "application/json", text, strlen(text));
    free(text);
    return 0;
}
