/*
 * server/access.c - authentication and authorization of each request.
 *
 * This is the open server: with no http.auth configured everyone may do everything and
 * is an admin (zot's behaviour without authentication). Authentication (htpasswd) and
 * accessControl are implemented by the auth module and wired here; until then a config
 * that asks for them is refused at startup rather than served open.
 */
#include <stdio.h>
#include <stdlib.h>

#include <h2o.h>

#include "server/server.h"

struct zn_access {
    const zn_config_t *cfg;
};

static bool can_always(zn_reqctx_t *ctx, const char *repo, unsigned action)
{
    return true;
}

zn_access_t *zn_access_new(const zn_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->http.auth.htpasswd_path != NULL) {
        snprintf(err, errlen, "http.auth.htpasswd: authentication is not available in this build yet");
        return NULL;
    }
    zn_access_t *a = zn_calloc(1, sizeof(*a));
    a->cfg = cfg;
    return a;
}

void zn_access_free(zn_access_t *a)
{
    free(a);
}

bool zn_access_check(zn_access_t *a, h2o_req_t *req, const zn_route_def_t *def, zn_reqctx_t *ctx)
{
    ctx->user = NULL;
    ctx->is_admin = true;
    ctx->can = can_always;
    ctx->authz = a;
    return true;
}

void zn_access_base_headers(zn_access_t *a, h2o_req_t *req)
{
}
