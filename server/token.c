/*
 * server/token.c - the token service classic Docker needs when anonymous and authenticated
 * policies coexist (docs/zot.md §2, zinc point 2).
 *
 * Classic Docker pings /v2/ without credentials and keeps a challenge only from a 401:
 * after a 200 it never sends credentials, so a logged-in user could not push and a wrong
 * `docker login` would "succeed". So, with htpasswd on and some anonymousPolicy present,
 * an anonymous ping from a Docker User-Agent gets 401 with
 *
 *   WWW-Authenticate: Bearer realm="<externalUrl or scheme://Host>/v2/_zinc/token",service="<host>"
 *
 * Docker then GETs the realm (with Basic credentials when logged in, none otherwise) and
 * sends the token it gets as "Authorization: Bearer ..." on every request. The token
 * endpoint is an ordinary route without a repository action: server/access.c has already
 * authenticated the caller (wrong credentials: 401; none: anonymous, since an
 * anonymousPolicy exists) and this file only mints a token naming ctx->user
 * (auth/token.c). scope, service, account and the like are accepted and ignored: tokens
 * carry no access claims, every request is authorized by the policies for that identity.
 *
 * The path sits under /v2/ so that a reverse proxy forwarding only /v2/ also forwards it,
 * and starts with '_' so that it can never be a repository (names cannot start with '_',
 * the convention of /v2/_catalog and zot's /v2/_zot/). Other clients (podman, skopeo,
 * curl, containerd) keep the 200 ping; they may use the endpoint too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <h2o.h>

#include "api/api.h"
#include "auth/auth.h"
#include "common/edge/edge.h"
#include "server/server_int.h"

#define TOKEN_PATH "/v2/_zinc/token"
#define TOKEN_TTL_S 300 /* Docker re-fetches a token when it expires (its floor is 60 s) */
#define DOCKER_UA "docker/"

struct zn_token {
    zn_auth_token_key_t key;
    bool challenge_docker; /* htpasswd on and some anonymousPolicy: Docker pings get a 401 */
    char *realm;           /* externalUrl + TOKEN_PATH, or NULL: built from each request */
    char *service;         /* externalUrl's host[:port], or NULL: the request's Host */
};

/* Bytes that may go between the quotes of a challenge parameter. */
static bool quotable(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] >= 0x7f || p[i] == '"' || p[i] == '\\')
            return false;
    return true;
}

/* A Host header we are willing to echo into a challenge: reg-name or IP literal, port. */
static bool plain_host(h2o_iovec_t h)
{
    if (h.len == 0 || h.len > 255)
        return false;
    for (size_t i = 0; i < h.len; i++) {
        char c = h.base[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
              c == ':' || c == '[' || c == ']'))
            return false;
    }
    return true;
}

static bool set_external_url(zn_token_t *t, const char *url)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    const char *host = strstr(url, "://");
    if (n == 0 || host == NULL || host >= url + n || !quotable(url, n))
        return false;
    host += 3;
    const char *slash = memchr(host, '/', (size_t)(url + n - host));
    size_t hlen = slash != NULL ? (size_t)(slash - host) : (size_t)(url + n - host);
    if (!plain_host(h2o_iovec_init(host, hlen)))
        return false;
    t->realm = zn_malloc(n + sizeof(TOKEN_PATH));
    memcpy(t->realm, url, n);
    memcpy(t->realm + n, TOKEN_PATH, sizeof(TOKEN_PATH));
    t->service = zn_malloc(hlen + 1);
    memcpy(t->service, host, hlen);
    t->service[hlen] = '\0';
    return true;
}

zn_err_t zn_token_new(const zn_config_t *cfg, bool challenge_docker, zn_token_t **out, char *err, size_t errlen)
{
    zn_token_t *t = zn_calloc(1, sizeof(*t));

    *out = NULL;
    if (zn_auth_token_key_init(&t->key) != ZN_OK) {
        zn_errf(err, errlen, "http.auth: cannot make the bearer token key (no randomness)");
        free(t);
        return ZN_EIO;
    }
    t->challenge_docker = challenge_docker;
    if (cfg->http.external_url != NULL && cfg->http.external_url[0] != '\0' && !set_external_url(t, cfg->http.external_url))
        zn_log(ZN_LOG_WARN, "http.externalUrl is not a plain scheme://host[:port][/path] URL; token realms use the "
                            "request's Host instead");
    *out = t;
    return ZN_OK;
}

void zn_token_free(zn_token_t *t)
{
    if (t == NULL)
        return;
    zn_auth_token_key_wipe(&t->key);
    free(t->realm);
    free(t->service);
    free(t);
}

zn_auth_status_t zn_token_check(zn_token_t *t, const char *tok, size_t len, zn_auth_creds_t *out)
{
    return zn_auth_token_verify(&t->key, tok, len, (int64_t)time(NULL), out);
}

static bool from_docker(h2o_req_t *req)
{
    zn_slice_t ua = zn_edge_header(req, H2O_TOKEN_USER_AGENT);
    return ua.p != NULL && h2o_strstr(ua.p, ua.n, H2O_STRLIT(DOCKER_UA)) != SIZE_MAX;
}

/* `Bearer realm="<realm>",service="<service>"` (common/edge's builder) in req's pool. */
static h2o_iovec_t bearer(h2o_req_t *req, const char *realm, const char *service)
{
    zn_edge_param_t p[] = {{"realm", realm}, {"service", service}};
    h2o_iovec_t out = {NULL, 0};
    zn_buf_t b;

    zn_buf_init(&b, 4096);
    if (zn_edge_challenge(&b, "Bearer", p, 2, true) == ZN_OK)
        out = h2o_strdup(&req->pool, b.p, b.len);
    zn_buf_release(&b);
    return out;
}

h2o_iovec_t zn_token_ping_challenge(zn_token_t *t, h2o_req_t *req)
{
    h2o_iovec_t none = {NULL, 0};

    if (t == NULL || !t->challenge_docker || zn_edge_header(req, H2O_TOKEN_AUTHORIZATION).p != NULL || !from_docker(req))
        return none;
    if (t->realm != NULL)
        return bearer(req, t->realm, t->service);
    /* without externalUrl the realm is where the client reached us; a Host we would not
     * quote safely gets the ordinary 200 ping instead */
    if (!plain_host(req->authority) || req->scheme == NULL)
        return none;
    h2o_iovec_t realm = h2o_concat(&req->pool, req->scheme->name, h2o_iovec_init(H2O_STRLIT("://")), req->authority,
                                   h2o_iovec_init(H2O_STRLIT(TOKEN_PATH)));
    return bearer(req, realm.base, h2o_strdup(&req->pool, req->authority.base, req->authority.len).base);
}

/* ---- the token endpoint -------------------------------------------------------------------- */

static int on_token(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_token_t *t = ctx->app;
    char tok[ZN_AUTH_TOKEN_MAX + 1], issued[32];
    time_t now = time(NULL);
    struct tm tm;

    if (gmtime_r(&now, &tm) == NULL || strftime(issued, sizeof(issued), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 ||
        zn_auth_token_mint(&t->key, ctx->user, (int64_t)now, TOKEN_TTL_S, tok) == 0)
        return zn_api_send_error(req, ZN_OCI_INTERNAL, NULL);
    /* the token is hex and digits only: no JSON escaping needed */
    size_t cap = 2 * strlen(tok) + sizeof(issued) + 128;
    char *body = h2o_mem_alloc_pool(&req->pool, cap);
    int n = snprintf(body, cap, "{\"token\":\"%s\",\"access_token\":\"%s\",\"expires_in\":%d,\"issued_at\":\"%s\"}", tok, tok,
                     TOKEN_TTL_S, issued);
    if (n < 0 || (size_t)n >= cap)
        return zn_api_send_error(req, ZN_OCI_INTERNAL, NULL);
    zn_edge_header_add_ref(req, H2O_TOKEN_CACHE_CONTROL, H2O_STRLIT("no-store"));
    return zn_edge_send(req, 200, "application/json", body, (size_t)n);
}

static const zn_route_def_t token_routes[] = {
    {"GET", TOKEN_PATH, "token", on_token, 0, -1, 0},
};

const zn_route_def_t *zn_token_routes(size_t *n)
{
    *n = sizeof(token_routes) / sizeof(token_routes[0]);
    return token_routes;
}
