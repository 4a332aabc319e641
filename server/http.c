/*
 * server/http.c - request dispatch, the access log and the server's own routes.
 *
 * h2o sees one catch-all handler; it parses the raw path (never h2o's normalised one, so
 * `..` reaches the name validator instead of being resolved), lets the router fill the
 * request's zn_reqctx_t (row, params, repository), lets server/access.c authenticate and
 * authorize - handing it run_handler as the step to resume with when credentials are
 * verified off the loop - marks the worker thread with the route and repository (pprof
 * labels samples with them) and calls the row's handler. Every response carries
 * Docker-Distribution-API-Version. The access log is an h2o logger, so it also sees
 * requests that end early (client gone, 4xx from h2o itself); it reads the user, route and
 * repository from the context the dispatch left in req->env and feeds the metrics too.
 */
#include <stdio.h>
#include <string.h>
#include <netdb.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "api/api.h"
#include "pprof/pprof.h"
#include "server/cluster.h"
#include "server/server_int.h"

typedef struct {
    h2o_handler_t super;
    zn_server_t *srv;
    zn_router_t *router;
} dispatch_handler_t;

typedef struct {
    h2o_logger_t super;
    zn_server_t *srv;
} access_logger_t;

/* Per-request facts the access logger needs travel in req->env (h2o keeps it for the
 * request's lifetime): the request context (route, repository, user) once the request was
 * routed, and the monotonic start time (h2o's own timestamps are cached once per loop pass,
 * too coarse for sub-millisecond requests). */
static const h2o_iovec_t ENV_CTX = {H2O_STRLIT("zn.ctx")};
static const h2o_iovec_t ENV_T0 = {H2O_STRLIT("zn.t0")};

static void env_push(h2o_req_t *req, h2o_iovec_t key, h2o_iovec_t value)
{
    h2o_vector_reserve(&req->pool, &req->env, req->env.size + 2);
    req->env.entries[req->env.size++] = key;
    req->env.entries[req->env.size++] = value;
}

static h2o_iovec_t env_find(h2o_req_t *req, h2o_iovec_t key)
{
    for (size_t i = 0; i + 1 < req->env.size; i += 2)
        if (h2o_memis(req->env.entries[i].base, req->env.entries[i].len, key.base, key.len))
            return req->env.entries[i + 1];
    return h2o_iovec_init(NULL, 0);
}

static void remember_start(h2o_req_t *req)
{
    uint64_t *t0 = h2o_mem_alloc_pool(&req->pool, sizeof(*t0));
    *t0 = zn_now_mono_ns();
    env_push(req, ENV_T0, h2o_iovec_init(t0, sizeof(*t0)));
}

/* The routed request's context, or NULL (404/405, or h2o answered before dispatch). */
static const zn_reqctx_t *find_ctx(h2o_req_t *req)
{
    h2o_iovec_t v = env_find(req, ENV_CTX);
    return v.len == sizeof(zn_reqctx_t) ? (const zn_reqctx_t *)v.base : NULL;
}

/* The part of dispatch after access control: pprof's route label, the row's handler. Also
 * the step access.c resumes a request with after verifying its credentials. */
static int run_handler(h2o_req_t *req, zn_reqctx_t *ctx)
{
    const char *repo = ctx->repo.p != NULL ? h2o_strdup(&req->pool, ctx->repo.p, ctx->repo.n).base : NULL;

    ctx->handled = true;
    zn_pprof_req_begin(ctx->route, repo);
    int ret = ctx->def->fn(req, ctx);
    zn_pprof_req_end();
    return ret;
}

static int on_req(h2o_handler_t *_self, h2o_req_t *req)
{
    dispatch_handler_t *self = (void *)_self;
    size_t plen = req->input.query_at != SIZE_MAX ? req->input.query_at : req->input.path.len;
    zn_slice_t path = zn_slice(req->input.path.base, plen), method = zn_slice(req->method.base, req->method.len);
    zn_reqctx_t *ctx = h2o_mem_alloc_pool(&req->pool, sizeof(*ctx));

    memset(ctx, 0, sizeof(*ctx));
    remember_start(req);
    zn_api_add_version_header(req);
    switch (zn_router_match(self->router, method, path, ctx)) {
    case ZN_ROUTE_FOUND:
        break;
    case ZN_ROUTE_NO_METHOD:
        return zn_api_send_error(req, ZN_OCI_METHOD_UNKNOWN, NULL);
    case ZN_ROUTE_NO_PATH:
        return zn_api_send_error(req, ZN_OCI_NOT_FOUND, NULL);
    }
    env_push(req, ENV_CTX, h2o_iovec_init(ctx, sizeof(*ctx)));
    /* cluster mode: a repository another member owns is served there, auth included */
    if (zn_cluster_route(self->srv->cluster, req, ctx->def, ctx->params, ctx->nparams))
        return 0;
    if (!zn_access_check(self->srv->access, req, ctx, run_handler))
        return 0;
    return run_handler(req, ctx);
}

static double ms_between(const struct timeval *a, const struct timeval *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_usec - a->tv_usec) / 1e3;
}

/* Milliseconds from the request's first byte to now (the logger runs when the response is
 * done). h2o's timestamps are cached once per loop pass, so they only measure the part
 * before dispatch (headers and body arriving); the rest is timed with the monotonic clock. */
static double duration_ms(h2o_req_t *req)
{
    struct timeval now, *begin = &req->timestamps.request_begin_at, *dispatch = &req->processed_at.at;
    h2o_iovec_t t0 = env_find(req, ENV_T0);
    if (t0.len == sizeof(uint64_t)) {
        double before = begin->tv_sec != 0 && dispatch->tv_sec != 0 ? ms_between(begin, dispatch) : 0;
        return before + (double)(zn_now_mono_ns() - *(const uint64_t *)t0.base) / 1e6;
    }
    if (begin->tv_sec == 0)
        return 0;
    gettimeofday(&now, NULL);
    return ms_between(begin, &now);
}

static void peer_host(h2o_req_t *req, char *remote)
{
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    remote[0] = '\0';
    if (sl != 0 && h2o_socket_getnumerichost((struct sockaddr *)&ss, sl, remote) == SIZE_MAX)
        remote[0] = '\0';
}

/* zot's audit log: one line per successful change (POST, PUT, PATCH, DELETE). */
static bool audited(h2o_req_t *req)
{
    h2o_iovec_t m = req->input.method;
    if (req->res.status < 200 || req->res.status >= 300)
        return false;
    return h2o_memis(m.base, m.len, H2O_STRLIT("POST")) || h2o_memis(m.base, m.len, H2O_STRLIT("PUT")) ||
           h2o_memis(m.base, m.len, H2O_STRLIT("PATCH")) || h2o_memis(m.base, m.len, H2O_STRLIT("DELETE"));
}

static void log_access(h2o_logger_t *_self, h2o_req_t *req)
{
    access_logger_t *self = (void *)_self;
    size_t plen = req->input.query_at != SIZE_MAX ? req->input.query_at : req->input.path.len;
    double ms = duration_ms(req);
    bool access = zn_log_get_level() <= ZN_LOG_INFO, audit = self->srv->audit_fd != -1 && audited(req);

    const zn_reqctx_t *ctx = find_ctx(req);

    zn_metrics_observe(self->srv->metrics, zn_slice(req->input.method.base, req->input.method.len),
                       zn_slice(req->input.path.base, plen), ctx, req->res.status, ms / 1e3);
    if (!access && !audit)
        return;
    char remote[NI_MAXHOST];
    peer_host(req, remote);
    /* the user of a request its handler served (a refused one is logged without) */
    zn_log_field_t who = ZN_LSTR("user", ctx != NULL && ctx->handled ? ctx->user : NULL);
    if (access)
        zn_log(ZN_LOG_INFO, "request", ZN_LSTRN("method", req->input.method.base, req->input.method.len),
               ZN_LSTRN("path", req->input.path.base, plen), ZN_LINT("status", req->res.status),
               ZN_LUINT("bytes", req->bytes_sent), ZN_LDBL("duration_ms", ms), ZN_LSTR("remote", remote), who);
    if (audit) {
        who.key = "subject";
        zn_log_field_t f[] = {who,
                              ZN_LSTRN("action", req->input.method.base, req->input.method.len),
                              ZN_LSTRN("object", req->input.path.base, plen),
                              ZN_LINT("status", req->res.status),
                              ZN_LSTR("clientIP", remote),
                              {ZN_LF_END}};
        zn_log_write_fd(self->srv->audit_fd, ZN_LOG_INFO, "audit", f);
    }
}

/* ---- built-in routes ---------------------------------------------------------------------- */

static int send_text(h2o_req_t *req, int status, const char *type, const char *body)
{
    return zn_edge_send(req, status, type, body, strlen(body));
}

static int on_base(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_server_t *srv = ctx->app;
    if (zn_access_ping(srv->access, req))
        return 0;
    zn_access_base_headers(srv->access, req);
    return send_text(req, 200, "application/json", "{}");
}

static int on_livez(h2o_req_t *req, zn_reqctx_t *ctx)
{
    return send_text(req, 200, "text/plain; charset=utf-8", "ok");
}

/* zot listens only after its storage walk; zinc listens at once and says so here. */
static int on_readyz(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_server_t *srv = ctx->app;
    if (!atomic_load(&srv->ready))
        return send_text(req, 500, "text/plain; charset=utf-8", "internal server error: not ready yet");
    return send_text(req, 200, "text/plain; charset=utf-8", "ok");
}

static const zn_route_def_t builtin_routes[] = {
    {"GET", "/v2/", "base", on_base, 0, -1, 0},
    {"HEAD", "/v2/", "base", on_base, 0, -1, 0},
    {"*", "/livez", "livez", on_livez, 0, -1, ZN_ROUTE_NOAUTH},
    {"*", "/readyz", "readyz", on_readyz, 0, -1, ZN_ROUTE_NOAUTH},
    {"*", "/startupz", "startupz", on_readyz, 0, -1, ZN_ROUTE_NOAUTH},
};

void zn_http_setup(zn_server_t *srv)
{
    srv->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("zinc"));
    h2o_hostconf_t *host = h2o_config_register_host(&srv->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    dispatch_handler_t *h = (void *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = on_req;
    h->srv = srv;
    h->router = srv->router;
    zn_cluster_proxy_setup(srv->cluster, path);
    if (srv->cluster != NULL)
        zn_router_add(srv->router, zn_cluster_catalog_route(), 1, srv);
    access_logger_t *lg = (void *)h2o_create_logger(path, sizeof(*lg));
    lg->super.log_access = log_access;
    lg->srv = srv;
    zn_router_add(srv->router, builtin_routes, sizeof(builtin_routes) / sizeof(builtin_routes[0]), srv);
    if (zn_metrics_new(srv->cfg, &srv->metrics) == ZN_OK && srv->metrics != NULL &&
        zn_router_add(srv->router, zn_metrics_route(srv->metrics), 1, srv->metrics) != ZN_OK)
        zn_log(ZN_LOG_ERROR, "metrics: the path cannot be routed, not serving it",
               ZN_LSTR("path", srv->cfg->extensions.metrics_path));
    size_t ntoken;
    const zn_route_def_t *token_routes = zn_token_routes(&ntoken);
    if (zn_access_token(srv->access) != NULL)
        zn_router_add(srv->router, token_routes, ntoken, zn_access_token(srv->access));
    size_t npprof;
    const zn_route_def_t *pprof_routes = zn_pprof_routes(&npprof);
    zn_router_add(srv->router, pprof_routes, npprof, NULL);
}

void zn_http_setup_debug(zn_server_t *srv)
{
    srv->debug_conf.server_name = h2o_iovec_init(H2O_STRLIT("zinc"));
    srv->debug_conf.max_request_entity_size = 1 << 20;
    h2o_hostconf_t *host = h2o_config_register_host(&srv->debug_conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    dispatch_handler_t *h = (void *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = on_req;
    h->srv = srv;
    h->router = srv->debug_router;
    access_logger_t *lg = (void *)h2o_create_logger(path, sizeof(*lg));
    lg->super.log_access = log_access;
    lg->srv = srv;
    size_t n;
    const zn_route_def_t *routes = zn_pprof_debug_routes(&n);
    zn_router_add(srv->debug_router, routes, n, NULL);
}
