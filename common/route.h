/*
 * common/route.h - the router contract: the rows a module hands to the server's router
 * (server/router.c), and the request context the router's match fills and every handler
 * receives.
 *
 * api/ and pprof/ export rows; server/ owns the table, matches each request against it,
 * runs access control and then the row's handler. What the match found (the row, the path
 * parameters, the repository) travels with the request in zn_reqctx_t, so the access log,
 * the metrics and the profiler labels read it there instead of parsing the path again.
 * The server also puts its policy seams here: `can` (may the caller do an action on a
 * repository?) and `deny` (refuse the request the way the server refuses: failDelay,
 * challenge, zot's bodies). Nothing here includes h2o.
 */
#ifndef ZN_ROUTE_H
#define ZN_ROUTE_H

#include "common/zn.h"

struct st_h2o_req_t;

#define ZN_ROUTE_PARAMS_MAX 4

struct zn_route_def;

/* What the router hands to a handler. Lives in the request's pool; the slices point into
 * the request's path. */
typedef struct zn_reqctx {
    const struct zn_route_def *def;         /* the matched row */
    const char *route;                      /* its name, e.g. "manifest_get" */
    zn_slice_t params[ZN_ROUTE_PARAMS_MAX]; /* path parameters in pattern order */
    int nparams;
    zn_slice_t repo;                        /* the row's repository param (not validated); p NULL if none */
    void *app;                              /* the handler's registered data */
    const char *user;                       /* authenticated user, NULL if anonymous */
    bool is_admin;
    bool handled;                           /* access control passed and the handler ran */
    /* Authorization callback set by the server: may the caller do `action` on `repo`?
     * Handlers call it for decisions that depend on state (tag create vs update, mount
     * source). Always non-NULL. */
    bool (*can)(struct zn_reqctx *ctx, const char *repo, unsigned action);
    /* Refusal set by the server: 401 with the challenge for an anonymous caller, 403 for a
     * user, zot's bodies, after http.auth.failDelay (a timer: the response may come after
     * the handler returned). A handler returns its result. Always non-NULL. */
    int (*deny)(struct st_h2o_req_t *req, struct zn_reqctx *ctx);
    void *authz; /* server's data for can() and deny() */
} zn_reqctx_t;

/* A handler: returns 0 once it has started or sent a response (h2o convention). */
typedef int (*zn_handler_fn)(struct st_h2o_req_t *req, zn_reqctx_t *ctx);

enum {
    ZN_ROUTE_ADMIN = 1,        /* only admins when auth is on (pprof) */
    ZN_ROUTE_NOAUTH = 2,       /* never authenticated (health checks) */
    ZN_ROUTE_NOREPO_AUTHZ = 4, /* authenticated, but the handler checks access itself (catalog) */
    ZN_ROUTE_METRICS = 8,      /* the /metrics rule: accessControl.metrics (zot.md §3) */
    ZN_ROUTE_STREAM = 16,      /* the body may be streamed to the handler (upload fast path) */
};

/* One row of the router table. Patterns are literal segments, `{x}` (one segment) and at
 * most one `{x+}` (one or more segments, matched so that the segments after it match from
 * the right, as OCI paths must be parsed). A trailing `/` in the pattern is significant.
 * method "*" matches any method. Params land in ctx->params in pattern order; the one at
 * repo_param also in ctx->repo. */
typedef struct zn_route_def {
    const char *method;
    const char *pattern;
    const char *name; /* route label: logs, pprof `route` tag, metrics */
    zn_handler_fn fn;
    unsigned action;  /* ZN_ACT_* the caller needs on the repository param, 0 = none */
    int repo_param;   /* index of the repository param, -1 if none */
    unsigned flags;   /* ZN_ROUTE_* */
} zn_route_def_t;

#endif
