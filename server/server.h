/*
 * server/server.h - zinc's HTTP server: worker threads each running one h2o event loop,
 * listeners (plain or TLS), the router table, access logging, signals and graceful
 * shutdown. main.c is a thin CLI over this.
 */
#ifndef ZN_SERVER_H
#define ZN_SERVER_H

#include <openssl/ssl.h>

#include "common/route.h"
#include "common/zn.h"
#include "config/config.h"

/* ---- router (pure; unit-tested) ------------------------------------------------------ */

typedef struct zn_router zn_router_t;

/* Empty table. Caller frees with zn_router_free(). */
zn_router_t *zn_router_new(void);
void zn_router_free(zn_router_t *r);

/* Appends rows (copied by pointer: defs must outlive the router), each bound to app.
 * Earlier rows win. ZN_EINVAL if a pattern is malformed (then nothing is added). */
zn_err_t zn_router_add(zn_router_t *r, const zn_route_def_t *defs, size_t n, void *app);

typedef enum zn_route_result { ZN_ROUTE_FOUND, ZN_ROUTE_NO_PATH, ZN_ROUTE_NO_METHOD } zn_route_result_t;

/* Matches method + path (no query string) against the table. On ZN_ROUTE_FOUND the match
 * is in ctx: def, route, app, params[] and repo (slices into path); the other fields are
 * left alone. Otherwise ctx is untouched. */
zn_route_result_t zn_router_match(const zn_router_t *r, zn_slice_t method, zn_slice_t path, zn_reqctx_t *ctx);

/* ---- server ------------------------------------------------------------------------------- */

typedef struct zn_server zn_server_t;

/* Builds the server for cfg (which must outlive it) into *out: storage, auth, routes, listeners
 * bound (so a busy port fails here). On failure returns an error with *out NULL and a message
 * in err. */
zn_err_t zn_server_new(const zn_config_t *cfg, zn_server_t **out, char *err, size_t errlen);

/* Starts the workers and blocks until SIGTERM/SIGINT, then stops accepting, lets
 * in-flight requests finish (bounded) and returns 0. */
int zn_server_run(zn_server_t *srv);
void zn_server_free(zn_server_t *srv);

/* `zinc probe URL` or `zinc probe --config FILE [PATH]` (argv after "probe"): GET an
 * http[s]:// URL, or PATH (default /livez) on the listener FILE configures; 0 when the
 * answer is 2xx, 1 when not (or FILE is invalid), 2 on bad usage. For health checks. */
int zn_probe_main(int argc, char **argv);

/* ---- seams implemented in their own files ------------------------------------------- */

struct st_h2o_req_t;

/* server/access.c: authentication and authorization of one request whose route ctx holds
 * (ctx->def). Fills ctx->user, ctx->is_admin, ctx->can, ctx->deny. Returns true if the
 * handler may run now; false if it has answered itself (401/403, at once or after the fail
 * delay; 429 when the verification queue is full) or will resume the request later: once
 * credentials were verified off the event loop, it calls resume(req, ctx) on the request's
 * worker (a non-zero result gets a 404). */
typedef struct zn_access zn_access_t;
typedef int (*zn_access_resume_fn)(struct st_h2o_req_t *req, zn_reqctx_t *ctx);
/* ZN_OK with *out set (also without authentication: it then lets everyone in); else an error
 * with *out NULL and a message in err. */
zn_err_t zn_access_new(const zn_config_t *cfg, zn_access_t **out, char *err, size_t errlen);
void zn_access_free(zn_access_t *a);
/* The authentication tables it checks against (never NULL). */
const struct zn_auth *zn_access_auth(const zn_access_t *a);
bool zn_access_check(zn_access_t *a, struct st_h2o_req_t *req, zn_reqctx_t *ctx, zn_access_resume_fn resume);
/* Headers for a 200 on GET /v2/ (zot adds a lower-case challenge when auth is on). */
void zn_access_base_headers(zn_access_t *a, struct st_h2o_req_t *req);

/* server/tls.c: SSL_CTX for http.tls (HTTP/2 by ALPN, client certs when cacert is set) into
 * *out, which the caller frees with SSL_CTX_free. ZN_OK with *out NULL when TLS is not
 * configured; else ZN_EINVAL (bad settings) or ZN_EIO (files), with a message in err. */
zn_err_t zn_tls_ctx_new(const zn_config_t *cfg, SSL_CTX **out, char *err, size_t errlen);

#endif
