/*
 * server/http.c - request dispatch, the access log and the server's own routes.
 *
 * h2o sees one catch-all handler; it parses the raw path (never h2o's normalised one, so
 * `..` reaches the name validator instead of being resolved), finds the router row, lets
 * server/access.c authenticate and authorize, marks the worker thread with the route name
 * (pprof labels CPU samples with it) and calls the row's handler. Every response carries
 * Docker-Distribution-API-Version. The access log is an h2o logger, so it also sees
 * requests that end early (client gone, 4xx from h2o itself).
 */
#include <stdio.h>
#include <string.h>
#include <netdb.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "api/api.h"
#include "pprof/pprof.h"
#include "server/server_int.h"

typedef struct {
    h2o_handler_t super;
    zn_server_t *srv;
} dispatch_handler_t;

typedef struct {
    h2o_logger_t super;
    zn_server_t *srv;
} access_logger_t;

static const h2o_iovec_t ENV_USER = {H2O_STRLIT("zn.user")};

static void remember_user(h2o_req_t *req, const char *user)
{
    h2o_vector_reserve(&req->pool, &req->env, req->env.size + 2);
    req->env.entries[req->env.size++] = ENV_USER;
    req->env.entries[req->env.size++] = h2o_iovec_init(user, strlen(user));
}

static zn_slice_t find_user(h2o_req_t *req)
{
    for (size_t i = 0; i + 1 < req->env.size; i += 2)
        if (h2o_memis(req->env.entries[i].base, req->env.entries[i].len, ENV_USER.base, ENV_USER.len))
            return zn_slice(req->env.entries[i + 1].base, req->env.entries[i + 1].len);
    return zn_slice(NULL, 0);
}

static int on_req(h2o_handler_t *_self, h2o_req_t *req)
{
    dispatch_handler_t *self = (void *)_self;
    zn_server_t *srv = self->srv;
    size_t plen = req->input.query_at != SIZE_MAX ? req->input.query_at : req->input.path.len;
    zn_slice_t path = zn_slice(req->input.path.base, plen), method = zn_slice(req->method.base, req->method.len);
    zn_reqctx_t *ctx = h2o_mem_alloc_pool(&req->pool, sizeof(*ctx));
    const zn_route_def_t *def = NULL;

    memset(ctx, 0, sizeof(*ctx));
    zn_api_add_version_header(req);
    switch (zn_router_match(srv->router, method, path, &def, &ctx->app, ctx->params, &ctx->nparams)) {
    case ZN_ROUTE_FOUND:
        break;
    case ZN_ROUTE_NO_METHOD:
        return zn_api_send_error(req, ZN_OCI_METHOD_UNKNOWN, NULL);
    case ZN_ROUTE_NO_PATH:
        return zn_api_send_error(req, ZN_OCI_NOT_FOUND, NULL);
    }
    ctx->route = def->name;
    if (!zn_access_check(srv->access, req, def, ctx))
        return 0;
    return zn_http_run_handler(req, def, ctx);
}

int zn_http_run_handler(h2o_req_t *req, const zn_route_def_t *def, zn_reqctx_t *ctx)
{
    if (ctx->user != NULL)
        remember_user(req, ctx->user);

    zn_pprof_req_begin(def->name, NULL);
    int ret = def->fn(req, ctx);
    zn_pprof_req_end();
    return ret;
}

/* Milliseconds from the request's first byte to its end (now, when h2o has not stamped it). */
static double duration_ms(h2o_req_t *req)
{
    struct timeval now, *a = &req->timestamps.request_begin_at, *b = &req->timestamps.response_end_at;
    if (a->tv_sec == 0)
        return 0;
    if (b->tv_sec == 0) {
        gettimeofday(&now, NULL);
        b = &now;
    }
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_usec - a->tv_usec) / 1e3;
}

static void log_access(h2o_logger_t *_self, h2o_req_t *req)
{
    if (zn_log_get_level() > ZN_LOG_INFO)
        return;
    char remote[NI_MAXHOST] = "";
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (sl != 0 && h2o_socket_getnumerichost((struct sockaddr *)&ss, sl, remote) == SIZE_MAX)
        remote[0] = '\0';
    zn_slice_t user = find_user(req);
    size_t plen = req->input.query_at != SIZE_MAX ? req->input.query_at : req->input.path.len;
    zn_log(ZN_LOG_INFO, "request", ZN_LSTRN("method", req->input.method.base, req->input.method.len),
           ZN_LSTRN("path", req->input.path.base, plen), ZN_LINT("status", req->res.status),
           ZN_LUINT("bytes", req->bytes_sent),
           ZN_LDBL("duration_ms", duration_ms(req)),
           ZN_LSTR("remote", remote), user.p != NULL ? ZN_LSTRN("user", user.p, user.n) : ZN_LSTR("user", NULL));
}

/* ---- built-in routes ---------------------------------------------------------------------- */

static int send_text(h2o_req_t *req, int status, const char *type, const char *body)
{
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : "Internal Server Error";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen(type));
    req->res.content_length = strlen(body);
    h2o_send_inline(req, body, strlen(body));
    return 0;
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
    access_logger_t *lg = (void *)h2o_create_logger(path, sizeof(*lg));
    lg->super.log_access = log_access;
    lg->srv = srv;
    zn_router_add(srv->router, builtin_routes, sizeof(builtin_routes) / sizeof(builtin_routes[0]), srv);
    size_t ntoken;
    const zn_route_def_t *token_routes = zn_token_routes(&ntoken);
    if (zn_access_token(srv->access) != NULL)
        zn_router_add(srv->router, token_routes, ntoken, zn_access_token(srv->access));
    size_t npprof;
    const zn_route_def_t *pprof_routes = zn_pprof_routes(&npprof);
    zn_router_add(srv->router, pprof_routes, npprof, NULL);
}
