/*
 * api/respond.c - what every handler file shares: path/query/header access, response
 * headers, empty and small bodies, the mapping of storage errors to OCI errors, denials
 * and pagination.
 */
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

zn_slice_t zn_api_query(h2o_req_t *req)
{
    if (req->input.query_at == SIZE_MAX)
        return zn_slice("", 0);
    size_t at = req->input.query_at + 1;
    return zn_slice(req->input.path.base + at, req->input.path.len - at);
}

zn_slice_t zn_api_header(h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    if (i == -1)
        return zn_slice(NULL, 0);
    return zn_slice(req->headers.entries[i].value.base, req->headers.entries[i].value.len);
}

void zn_api_header_add(h2o_req_t *req, const h2o_token_t *token, const char *value)
{
    h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
    h2o_add_header(&req->pool, &req->res.headers, token, NULL, v.base, v.len);
}

void zn_api_header_add_str(h2o_req_t *req, const char *name, const char *value)
{
    h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, v.base, v.len);
}

void zn_api_header_addf(h2o_req_t *req, const char *name, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        /* every caller formats names, digests and numbers that fit; a cut header would lie */
        zn_log(ZN_LOG_ERROR, "response header too long, not sent", ZN_LSTR("header", name));
        return;
    }
    zn_api_header_add_str(req, name, buf);
}

int zn_api_send_body(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = "";
    req->res.content_length = len;
    if (content_type != NULL)
        zn_api_header_add(req, H2O_TOKEN_CONTENT_TYPE, content_type);
    h2o_send_inline(req, body != NULL ? body : "", body != NULL ? len : 0);
    return 0;
}

int zn_api_send_empty(h2o_req_t *req, int status)
{
    return zn_api_send_body(req, status, NULL, "", 0);
}

int zn_api_send_storage_error(h2o_req_t *req, zn_err_t err, zn_oci_code_t enoent_code, const char *detail)
{
    switch (err) {
    case ZN_ENOENT:
        return zn_api_send_error(req, enoent_code, detail);
    case ZN_EINVAL:
        return zn_api_send_error(req, ZN_OCI_NAME_INVALID, detail);
    case ZN_EEXIST: /* storage: the name would collide with another repository's layout */
        return zn_api_send_error(req, ZN_OCI_NAME_INVALID,
                                 detail != NULL ? detail : "name collides with the layout of another repository");
    case ZN_EDIGEST:
        return zn_api_send_error(req, ZN_OCI_DIGEST_INVALID, detail);
    case ZN_ETOOBIG:
        return zn_api_send_error_status(req, 413, ZN_OCI_SIZE_INVALID, detail);
    case ZN_EUNSUPP:
        return zn_api_send_error(req, ZN_OCI_UNSUPPORTED, detail);
    case ZN_EAGAIN: /* S3 throttling (SlowDown, 503) outlasted the driver's bounded retries */
        zn_api_header_addf(req, "retry-after", "%d", 1);
        return zn_api_send_error_status(req, 503, ZN_OCI_TOO_MANY_REQUESTS, "storage backend busy, retry later");
    default:
        break;
    }
    zn_log(ZN_LOG_ERROR, "storage failure", ZN_LSTRN("method", req->method.base, req->method.len),
           ZN_LSTRN("path", req->input.path.base, req->input.path.len), ZN_LSTR("error", zn_err_str(err)));
    return zn_api_send_error(req, ZN_OCI_INTERNAL, NULL);
}

void zn_api_add_upload_range(h2o_req_t *req, uint64_t size)
{
    zn_api_header_addf(req, "range", "0-%llu", (unsigned long long)(size > 0 ? size - 1 : 0));
}

int zn_api_send_denied(h2o_req_t *req, zn_reqctx_t *ctx, const zn_config_t *cfg)
{
    if (ctx->user != NULL)
        return zn_api_send_error(req, ZN_OCI_DENIED, NULL);
    zn_api_header_addf(req, "www-authenticate", "Basic realm=\"%s\"", cfg->http.realm != NULL ? cfg->http.realm : "");
    return zn_api_send_error(req, ZN_OCI_UNAUTHORIZED, NULL);
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
