/*
 * server/cluster_proxy.c - forwarding a request to the member that owns its repository.
 *
 * zot wraps every repository route (manifests, blobs, uploads, tags, referrers) in
 * ClusterProxy (pkg/api/proxy.go): when the name hashes to another member, the request is
 * sent there with every header (Authorization included) plus X-Zot-Cluster-Hop-Count: 1,
 * over https when this member serves https (client certificate and CA from cluster.tls),
 * and the answer is copied back. A request that carries the hop header and still is not
 * ours means the members' configs differ; zot exits on it, zinc answers 508.
 *
 * The forwarding is h2o's own reverse proxy (lib/core/proxy.c), entered through
 * h2o_reprocess_request with req->overrides pointing at this worker's client context and
 * the owner as the authority: the request body (already whole in req->entity in h2o
 * 2.2.5) is written upstream, the response head and body are streamed back as they come,
 * all on the worker's loop without blocking it. Each proxied request opens its own
 * connection to the owner: h2o 2.2.5's keep-alive pool needs a once-a-second timer on some
 * loop to expire idle sockets (and crashes without one), which zinc does not want idle.
 *
 * When the owner cannot be reached h2o answers 502 with a text body; the filter below sees
 * that response (h2o logged the failure under "lib/core/proxy.c") and replaces it with an
 * OCI error naming the member, so clients get JSON like every other zinc error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "api/api.h"
#include "server/cluster.h"

/* No progress from a member for this long (connect, send, first byte, each read) fails the
 * request with 502; the owner streams as it works, so only a hung member reaches it. */
#define ZN_CLUSTER_IO_TIMEOUT_MS (120u * 1000u)

typedef struct {
    h2o_filter_t super;
    zn_cluster_t *c;
} cluster_filter_t;

/* One per worker: h2o's upstream client context on this loop, and one overrides record per
 * member that a proxied request carries (its index tells the filter which member failed). */
typedef struct {
    h2o_http1client_ctx_t client;
    h2o_timeout_t io_timeout;
    h2o_req_overrides_t *ov;
    size_t n;
} cluster_worker_t;

static bool ssl_fail(char *err, size_t errlen, const char *key, const char *path)
{
    char reason[256];
    ERR_error_string_n(ERR_get_error(), reason, sizeof(reason));
    zn_errf(err, errlen, "%s: cannot load %s: %s", key, path, reason);
    return false;
}

/* zot's CreateHTTPClient with VerifyTLS: the member's certificate is always verified (CA
 * from cluster.tls.cacert, else the system's), and cluster.tls cert/key is presented. */
static bool client_ssl_new(zn_cluster_t *c, char *err, size_t errlen)
{
    const char *cert = c->cfg->cluster.tls.cert, *key = c->cfg->cluster.tls.key, *ca = c->cfg->cluster.tls.cacert;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        return ssl_fail(err, errlen, "cluster.tls", "an SSL context");
    c->client_ssl = ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (ca != NULL ? SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 : SSL_CTX_set_default_verify_paths(ctx) != 1)
        return ssl_fail(err, errlen, "cluster.tls.cacert", ca != NULL ? ca : "the system CA store");
    if (cert != NULL && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        return ssl_fail(err, errlen, "cluster.tls.cert", cert);
    if (key != NULL && (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1))
        return ssl_fail(err, errlen, "cluster.tls.key", key);
    return true;
}

bool zn_cluster_proxy_init(zn_cluster_t *c, char *err, size_t errlen)
{
    return !c->https || client_ssl_new(c, err, errlen);
}

void zn_cluster_proxy_release(zn_cluster_t *c)
{
    if (c->client_ssl != NULL)
        SSL_CTX_free(c->client_ssl);
    c->client_ssl = NULL;
}

/* ---- per worker ----------------------------------------------------------------------- */

static void on_context_init(h2o_filter_t *_self, h2o_context_t *ctx)
{
    cluster_filter_t *self = (void *)_self;
    zn_cluster_t *c = self->c;
    cluster_worker_t *w = zn_calloc(1, sizeof(*w));

    h2o_timeout_init(ctx->loop, &w->io_timeout, ZN_CLUSTER_IO_TIMEOUT_MS);
    w->client.loop = ctx->loop;
    w->client.getaddr_receiver = &ctx->receivers.hostinfo_getaddr;
    w->client.io_timeout = &w->io_timeout;
    w->client.ssl_ctx = c->client_ssl;
    w->n = c->n;
    w->ov = zn_calloc(c->n, sizeof(*w->ov));
    for (size_t i = 0; i < c->n; i++)
        w->ov[i].client_ctx = &w->client;
    h2o_context_set_filter_context(ctx, &self->super, w);
}

static void on_context_dispose(h2o_filter_t *self, h2o_context_t *ctx)
{
    cluster_worker_t *w = h2o_context_get_filter_context(ctx, self);
    if (w == NULL)
        return;
    h2o_timeout_dispose(ctx->loop, &w->io_timeout);
    free(w->ov);
    free(w);
}

/* The member a request was proxied to, or -1 when it was not proxied by us. */
static long proxied_to(h2o_filter_t *self, h2o_req_t *req)
{
    if (req->overrides == NULL)
        return -1;
    cluster_worker_t *w = h2o_context_get_filter_context(req->conn->ctx, self);
    if (w == NULL || req->overrides < w->ov || req->overrides >= w->ov + w->n)
        return -1;
    return (long)(req->overrides - w->ov);
}

/* ---- h2o's 502 as an OCI error -------------------------------------------------------- */

typedef struct {
    h2o_ostream_t super;
    h2o_iovec_t body;
} error_ostream_t;

/* h2o sends its error page in one final call; the JSON goes in its place. */
static void error_send(h2o_ostream_t *_self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state)
{
    error_ostream_t *self = (void *)_self;
    bool head = h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"));

    if (h2o_send_state_is_in_progress(state)) {
        h2o_ostream_send_next(&self->super, req, NULL, 0, state);
        return;
    }
    h2o_ostream_send_next(&self->super, req, head ? NULL : &self->body, head ? 0 : 1, state);
}

static const char *proxy_error(h2o_req_t *req)
{
    for (size_t i = 0; i < req->error_logs.size; i++)
        if (strcmp(req->error_logs.entries[i].module, "lib/core/proxy.c") == 0)
            return h2o_strdup(&req->pool, req->error_logs.entries[i].msg.base, req->error_logs.entries[i].msg.len).base;
    return NULL;
}

/* The OCI error body (in req's pool) for a member that cannot answer: the table's UNAVAILABLE,
 * detail naming the member and why. base NULL if it cannot be built. */
static h2o_iovec_t unavailable_body(h2o_req_t *req, const char *member, const char *why)
{
    char detail[512];

    if ((size_t)snprintf(detail, sizeof(detail), "cluster member %s: %s", member, why) >= sizeof(detail))
        detail[sizeof(detail) - 1] = '\0'; /* the member and h2o's reason are bounded; never reached */
    return zn_api_error_body(req, ZN_OCI_UNAVAILABLE, detail);
}

static void on_setup_ostream(h2o_filter_t *_self, h2o_req_t *req, h2o_ostream_t **slot)
{
    cluster_filter_t *self = (void *)_self;
    long to = proxied_to(&self->super, req);
    const char *why;

    if (to >= 0 && req->res.status == 502 && (why = proxy_error(req)) != NULL) {
        const char *member = zn_cluster_member(self->c, (size_t)to);
        char owner_why[256];
        if ((size_t)snprintf(owner_why, sizeof(owner_why), "%s (it owns this repository)", why) >= sizeof(owner_why))
            owner_why[sizeof(owner_why) - 1] = '\0'; /* h2o's reasons are short: not reached */
        h2o_iovec_t body = unavailable_body(req, member, owner_why);
        zn_log(ZN_LOG_ERROR, "cluster: proxying to the owner failed", ZN_LSTR("member", member), ZN_LSTR("error", why),
               ZN_LSTRN("path", req->input.path.base, req->input.path.len));
        if (body.base != NULL) {
            memset(&req->res.headers, 0, sizeof(req->res.headers));
            req->res.reason = "Bad Gateway";
            req->res.content_length = body.len;
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
            zn_api_add_version_header(req);
            error_ostream_t *os = (void *)h2o_add_ostream(req, sizeof(*os), slot);
            os->super.do_send = error_send;
            os->body = body;
            slot = &os->super.next;
        }
    }
    h2o_setup_next_ostream(req, slot);
}

void zn_cluster_proxy_setup(zn_cluster_t *c, h2o_pathconf_t *path)
{
    if (c == NULL)
        return;
    cluster_filter_t *f = (void *)h2o_create_filter(path, sizeof(*f));
    f->super.on_context_init = on_context_init;
    f->super.on_context_dispose = on_context_dispose;
    f->super.on_setup_ostream = on_setup_ostream;
    f->c = c;
    c->filter = &f->super;
}

h2o_http1client_ctx_t *zn_cluster_client(zn_cluster_t *c, h2o_context_t *ctx)
{
    cluster_worker_t *w = c->filter != NULL ? h2o_context_get_filter_context(ctx, c->filter) : NULL;
    return w != NULL ? &w->client : NULL;
}

/* ---- routing -------------------------------------------------------------------------- */

/* The path goes upstream byte for byte in the request line: a space or control byte in it
 * could split or add lines. */
bool zn_cluster_wire_safe(h2o_iovec_t v)
{
    for (size_t i = 0; i < v.len; i++)
        if ((unsigned char)v.base[i] <= 0x20 || (unsigned char)v.base[i] == 0x7f)
            return false;
    return true;
}

bool zn_cluster_route(zn_cluster_t *c, h2o_req_t *req, const zn_route_def_t *def, const zn_slice_t *params, int nparams)
{
    if (c == NULL || def->repo_param < 0 || def->repo_param >= nparams)
        return false;
    zn_slice_t name = params[def->repo_param];
    if (zn_cluster_is_local(c, name))
        return false;
    size_t owner = zn_cluster_owner(c, name);
    const char *member = zn_cluster_member(c, owner);
    if (h2o_find_header_by_str(&req->headers, H2O_STRLIT(ZN_CLUSTER_HOP_HEADER), -1) != -1) {
        zn_log(ZN_LOG_ERROR,
               "cluster: a proxied request reached a member that does not own its repository; "
               "members, hashKey or member order differ between configs",
               ZN_LSTRN("repository", name.p, name.n), ZN_LSTR("owner", member));
        zn_api_send_error_status(req, 508, ZN_OCI_INTERNAL,
                                 "cluster: this request was already proxied once; the members' cluster configs differ");
        return true;
    }
    if (!zn_cluster_wire_safe(req->input.path)) {
        zn_api_send_error_status(req, 400, ZN_OCI_NAME_INVALID, "the request path holds a space or a control character");
        return true;
    }
    cluster_worker_t *w = h2o_context_get_filter_context(req->conn->ctx, c->filter);
    if (w == NULL) /* not a context of the main listener */
        return false;
    h2o_add_header_by_str(&req->pool, &req->headers, H2O_STRLIT(ZN_CLUSTER_HOP_HEADER), 0, NULL, H2O_STRLIT("1"));
    h2o_reprocess_request(req, req->method, c->https ? &H2O_URL_SCHEME_HTTPS : &H2O_URL_SCHEME_HTTP,
                          h2o_iovec_init(member, strlen(member)), req->input.path, &w->ov[owner], 0);
    return true;
}
