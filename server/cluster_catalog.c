/*
 * server/cluster_catalog.c - GET /v2/_catalog across the members of a cluster.
 *
 * zot answers the catalog locally even in cluster mode: its members share one storage, so
 * every member sees every repository. zinc's members share nothing, so the member a client
 * reaches asks each other member for the same page (same n and last, the caller's
 * Authorization, the hop header so they answer from their own storage only), and folds
 * the answers into its own page (api/catalog.c). Each member filters by what the caller
 * may read. The first n names after `last` of the union are among the first n of each
 * member, so one round trip per member is enough for any page. A member that cannot
 * answer makes the catalog a 502 naming it rather than a silently partial list.
 *
 * The requests run on the worker's loop with h2o's HTTP/1 client; each answer is bounded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/api.h"
#include "server/cluster.h"
#include "server/server_int.h"

#define ZN_CLUSTER_CATALOG_MAX (16u << 20) /* one member's answer */

struct catalog_job;

typedef struct {
    struct catalog_job *job;
    size_t member;
    h2o_http1client_t *client; /* NULL once finished */
    h2o_iovec_t reqbuf;
    zn_buf_t body;
    int status;
    bool more; /* the member sent a Link to a next page */
    const char *error;
} catalog_fetch_t;

typedef struct catalog_job {
    h2o_req_t *req;
    zn_reqctx_t *ctx;
    zn_cluster_t *c;
    size_t pending, nf;
    catalog_fetch_t *f;
} catalog_job_t;

/* The request pool owns the job: a client gone before the members answered cancels them. */
static void job_dispose(void *_job)
{
    catalog_job_t *job = _job;
    for (size_t i = 0; i < job->nf; i++) {
        if (job->f[i].client != NULL)
            h2o_http1client_cancel(job->f[i].client);
        zn_buf_release(&job->f[i].body);
    }
}

/* The names of one member's answer, copied into the request's pool; false when it is not
 * the catalog JSON. */
static bool collect(h2o_req_t *req, catalog_fetch_t *f, char ***names, size_t *n, size_t *cap)
{
    json_t *doc = json_loadb(f->body.p != NULL ? f->body.p : "", f->body.len, 0, NULL);
    json_t *arr = json_object_get(doc, "repositories"), *v;
    size_t i;
    bool ok = json_is_array(arr);

    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v)) {
            ok = false;
            break;
        }
        if (*n == *cap) {
            size_t ncap = *cap * 2 + 64;
            char **grown = h2o_mem_alloc_pool(&req->pool, ncap * sizeof(char *));
            if (*n != 0)
                memcpy(grown, *names, *n * sizeof(char *));
            *names = grown;
            *cap = ncap;
        }
        (*names)[(*n)++] = h2o_strdup(&req->pool, json_string_value(v), SIZE_MAX).base;
    }
    json_decref(doc);
    return ok;
}

static void send_unavailable(catalog_job_t *job, catalog_fetch_t *f, const char *why)
{
    const char *member = zn_cluster_member(job->c, f->member);
    char detail[512];

    zn_log(ZN_LOG_ERROR, "cluster: catalog of a member failed", ZN_LSTR("member", member), ZN_LSTR("error", why));
    zn_errf(detail, sizeof(detail), "cluster member %s: %s", member, why); /* cut with "..." if ever too long */
    zn_api_send_error_status(job->req, 0, ZN_OCI_UNAVAILABLE, detail);
}

static void complete(catalog_job_t *job)
{
    char **names = NULL, why[64];
    size_t n = 0, cap = 0;
    bool more = false;

    for (size_t i = 0; i < job->nf; i++) {
        catalog_fetch_t *f = &job->f[i];
        if (f->error != NULL) {
            send_unavailable(job, f, f->error);
            return;
        }
        if (f->status != 200) {
            if ((size_t)snprintf(why, sizeof(why), "answered the catalog with status %d", f->status) >= sizeof(why))
                why[sizeof(why) - 1] = '\0';
            send_unavailable(job, f, why);
            return;
        }
        if (!collect(job->req, f, &names, &n, &cap)) {
            send_unavailable(job, f, "answered the catalog with something else than a catalog");
            return;
        }
        more |= f->more;
    }
    zn_api_catalog_merged(job->req, job->ctx, names, n, more);
}

static void finish(catalog_fetch_t *f, const char *error)
{
    f->client = NULL;
    if (error != NULL && f->error == NULL)
        f->error = error;
    if (--f->job->pending == 0)
        complete(f->job);
}

static int on_body(h2o_http1client_t *client, const char *errstr)
{
    catalog_fetch_t *f = client->data;
    h2o_buffer_t *in = client->sock->input;

    if (zn_buf_append(&f->body, in->bytes, in->size) != ZN_OK) {
        finish(f, "catalog answer too large");
        return -1;
    }
    h2o_buffer_consume(&client->sock->input, in->size);
    if (errstr != NULL)
        finish(f, errstr == h2o_http1client_error_is_eos ? NULL : errstr);
    return 0;
}

static h2o_http1client_body_cb on_head(h2o_http1client_t *client, const char *errstr, int minor_version, int status,
                                       h2o_iovec_t msg, h2o_header_t *headers, size_t num_headers, int rlen)
{
    catalog_fetch_t *f = client->data;

    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        finish(f, errstr);
        return NULL;
    }
    f->status = status;
    for (size_t i = 0; i < num_headers; i++)
        if (h2o_lcstris(headers[i].name->base, headers[i].name->len, H2O_STRLIT("link")))
            f->more = true;
    if (errstr == h2o_http1client_error_is_eos) {
        finish(f, NULL);
        return NULL;
    }
    return on_body;
}

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client, const char *errstr, h2o_iovec_t **reqbufs, size_t *reqbufcnt,
                                          int *method_is_head)
{
    catalog_fetch_t *f = client->data;

    if (errstr != NULL) {
        finish(f, errstr);
        return NULL;
    }
    *reqbufs = &f->reqbuf;
    *reqbufcnt = 1;
    *method_is_head = 0;
    return on_head;
}

/* "GET /v2/_catalog?<query> ..." for member i, with the caller's Authorization. */
static bool build_request(catalog_job_t *job, size_t i, h2o_iovec_t *out)
{
    h2o_req_t *req = job->req;
    size_t q = req->input.query_at;
    h2o_iovec_t query = q != SIZE_MAX ? h2o_iovec_init(req->input.path.base + q, req->input.path.len - q) : h2o_iovec_init("", 0);
    ssize_t ai = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    zn_buf_t b;
    bool ok;

    zn_buf_init(&b, 64 << 10);
    ok = zn_buf_printf(&b, "GET /v2/_catalog%.*s HTTP/1.1\r\nhost: %s\r\n" ZN_CLUSTER_HOP_HEADER ": 1\r\nconnection: close\r\n",
                       (int)query.len, query.base, zn_cluster_member(job->c, i)) == ZN_OK;
    if (ok && ai != -1)
        ok = zn_buf_printf(&b, "authorization: %.*s\r\n", (int)req->headers.entries[ai].value.len,
                           req->headers.entries[ai].value.base) == ZN_OK;
    ok = ok && zn_buf_append(&b, "\r\n", 2) == ZN_OK;
    if (ok)
        *out = h2o_strdup(&req->pool, b.p, b.len);
    zn_buf_release(&b);
    return ok;
}

static int on_catalog(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_server_t *srv = ctx->app;
    zn_cluster_t *c = srv->cluster;
    h2o_http1client_ctx_t *cctx = zn_cluster_client(c, req->conn->ctx);
    char host[256];
    int port;

    ctx->app = srv->api;
    /* asked by another member, or outside the main listener: this member's part only */
    if (cctx == NULL || h2o_find_header_by_str(&req->headers, H2O_STRLIT(ZN_CLUSTER_HOP_HEADER), -1) != -1)
        return zn_api_catalog_merged(req, ctx, NULL, 0, false);
    if (!zn_cluster_wire_safe(req->input.path))
        return zn_api_send_error_status(req, 400, ZN_OCI_UNSUPPORTED, "the request path holds a space or a control character");
    catalog_job_t *job = h2o_mem_alloc_shared(&req->pool, sizeof(*job), job_dispose);
    *job = (catalog_job_t){req, ctx, c, 1, 0, NULL};
    job->f = h2o_mem_alloc_pool(&req->pool, zn_cluster_size(c) * sizeof(catalog_fetch_t));
    memset(job->f, 0, zn_cluster_size(c) * sizeof(catalog_fetch_t));
    for (size_t i = 0; i < zn_cluster_size(c); i++) {
        if (i == zn_cluster_self(c))
            continue;
        catalog_fetch_t *f = &job->f[job->nf++];
        f->job = job;
        f->member = i;
        zn_buf_init(&f->body, ZN_CLUSTER_CATALOG_MAX);
        if (zn_config_split_hostport(zn_cluster_member(c, i), host, sizeof(host), &port) != ZN_OK ||
            !build_request(job, i, &f->reqbuf)) {
            f->error = "cannot build the request";
            continue;
        }
        job->pending++;
        h2o_iovec_t h = h2o_strdup(&req->pool, host, SIZE_MAX);
        h2o_http1client_connect(&f->client, f, cctx, h, (uint16_t)port, c->https, on_connect);
    }
    /* the extra count held above keeps an answer that comes back at once from completing early */
    if (--job->pending == 0)
        complete(job);
    return 0;
}

static const zn_route_def_t catalog_route = {"GET", "/v2/_catalog", "catalog", on_catalog, 0, -1, ZN_ROUTE_NOREPO_AUTHZ};

const zn_route_def_t *zn_cluster_catalog_route(void)
{
    return &catalog_route;
}
