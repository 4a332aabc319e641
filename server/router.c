/*
 * server/router.c - the one table mapping method + path pattern to a handler.
 *
 * Patterns are split into segments at '/': literals, `{x}` (exactly one non-empty segment)
 * and at most one `{x+}` (one or more segments). OCI repository names contain '/', so the
 * segments before a `{x+}` match from the left and those after it from the right, and the
 * multi-segment param is whatever lies between (it is validated by the handler). Matching
 * is a linear scan over a small table with no allocation. The match (row, params, the
 * repository) goes into the request's zn_reqctx_t (common/route.h), where access control,
 * handlers, the access log and the metrics read it.
 */
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

#define MAX_SEGS 12

typedef enum { SEG_LIT, SEG_ONE, SEG_MULTI } seg_kind_t;

typedef struct {
    seg_kind_t kind;
    zn_slice_t lit;
} seg_t;

typedef struct {
    const zn_route_def_t *def;
    void *app;
    seg_t segs[MAX_SEGS];
    int nsegs;
    int multi; /* index of the SEG_MULTI segment or -1 */
} route_t;

struct zn_router {
    route_t *routes;
    size_t n, cap;
};

zn_router_t *zn_router_new(void)
{
    return zn_calloc(1, sizeof(zn_router_t));
}

void zn_router_free(zn_router_t *r)
{
    if (r == NULL)
        return;
    free(r->routes);
    free(r);
}

/* Splits "/a/b/" into {"a","b",""}; the path must start with '/'. Returns -1 when there
 * are more than max segments. */
static int split(zn_slice_t path, zn_slice_t *out, int max)
{
    if (path.n == 0 || path.p[0] != '/')
        return -1;
    int n = 0;
    const char *p = path.p + 1, *end = path.p + path.n;
    for (;;) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *e = slash != NULL ? slash : end;
        if (n == max)
            return -1;
        out[n++] = zn_slice(p, (size_t)(e - p));
        if (slash == NULL)
            return n;
        p = slash + 1;
    }
}

static zn_err_t compile(route_t *rt)
{
    zn_slice_t parts[MAX_SEGS];
    int n = split(zn_slice(rt->def->pattern, strlen(rt->def->pattern)), parts, MAX_SEGS);
    if (n < 0)
        return ZN_EINVAL;
    rt->nsegs = n;
    rt->multi = -1;
    for (int i = 0; i < n; i++) {
        zn_slice_t s = parts[i];
        if (s.n >= 2 && s.p[0] == '{' && s.p[s.n - 1] == '}') {
            bool multi = s.n >= 3 && s.p[s.n - 2] == '+';
            if (multi && rt->multi != -1)
                return ZN_EINVAL;
            if (multi)
                rt->multi = i;
            rt->segs[i].kind = multi ? SEG_MULTI : SEG_ONE;
        } else {
            rt->segs[i].kind = SEG_LIT;
            rt->segs[i].lit = s;
        }
    }
    return ZN_OK;
}

zn_err_t zn_router_add(zn_router_t *r, const zn_route_def_t *defs, size_t n, void *app)
{
    route_t *tmp = zn_calloc(n ? n : 1, sizeof(*tmp));
    for (size_t i = 0; i < n; i++) {
        tmp[i].def = &defs[i];
        tmp[i].app = app;
        if (compile(&tmp[i]) != ZN_OK) {
            free(tmp);
            return ZN_EINVAL;
        }
    }
    if (r->n + n > r->cap) {
        r->cap = (r->n + n) * 2;
        r->routes = zn_realloc(r->routes, r->cap * sizeof(route_t));
    }
    memcpy(r->routes + r->n, tmp, n * sizeof(route_t));
    r->n += n;
    free(tmp);
    return ZN_OK;
}

static bool seg_match(const seg_t *seg, zn_slice_t s, zn_slice_t *params, int *np)
{
    if (seg->kind == SEG_LIT)
        return s.n == seg->lit.n && memcmp(s.p, seg->lit.p, s.n) == 0;
    if (s.n == 0)
        return false;
    params[(*np)++] = s;
    return true;
}

/* Matches one route; fills params in pattern order. */
static bool route_match(const route_t *rt, const zn_slice_t *segs, int n, zn_slice_t *params, int *np)
{
    *np = 0;
    if (rt->multi == -1) {
        if (n != rt->nsegs)
            return false;
        for (int i = 0; i < n; i++)
            if (!seg_match(&rt->segs[i], segs[i], params, np))
                return false;
        return true;
    }
    int after = rt->nsegs - rt->multi - 1;
    if (n < rt->nsegs)
        return false;
    for (int i = 0; i < rt->multi; i++)
        if (!seg_match(&rt->segs[i], segs[i], params, np))
            return false;
    const char *mstart = segs[rt->multi].p;
    const zn_slice_t *mlast = &segs[n - after - 1];
    params[(*np)++] = zn_slice(mstart, (size_t)(mlast->p + mlast->n - mstart));
    for (int i = 0; i < after; i++)
        if (!seg_match(&rt->segs[rt->multi + 1 + i], segs[n - after + i], params, np))
            return false;
    return true;
}

static bool method_match(const char *want, zn_slice_t method)
{
    return strcmp(want, "*") == 0 || zn_slice_eq(method, want);
}

zn_route_result_t zn_router_match(const zn_router_t *r, zn_slice_t method, zn_slice_t path, zn_reqctx_t *ctx)
{
    /* long enough for any real OCI path; a repository name has at most 255 bytes */
    zn_slice_t segs[160];
    int n = split(path, segs, (int)(sizeof(segs) / sizeof(segs[0])));
    zn_route_result_t res = ZN_ROUTE_NO_PATH;
    if (n < 0)
        return res;
    for (size_t i = 0; i < r->n; i++) {
        const route_t *rt = &r->routes[i];
        zn_slice_t tmp[ZN_ROUTE_PARAMS_MAX + MAX_SEGS];
        int np;
        if (!route_match(rt, segs, n, tmp, &np))
            continue;
        if (!method_match(rt->def->method, method)) {
            res = ZN_ROUTE_NO_METHOD;
            continue;
        }
        ctx->def = rt->def;
        ctx->route = rt->def->name;
        ctx->app = rt->app;
        ctx->nparams = np < ZN_ROUTE_PARAMS_MAX ? np : ZN_ROUTE_PARAMS_MAX;
        memcpy(ctx->params, tmp, (size_t)ctx->nparams * sizeof(zn_slice_t));
        int rp = rt->def->repo_param;
        ctx->repo = rp >= 0 && rp < ctx->nparams ? ctx->params[rp] : zn_slice(NULL, 0);
        return ZN_ROUTE_FOUND;
    }
    return res;
}
