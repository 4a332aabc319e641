/*
 * api/manifests.c - HEAD/GET/PUT/DELETE /v2/<name>/manifests/<reference>.
 *
 * The reference is a tag or a digest. GET and HEAD answer with the stored media type (as
 * zot does, whatever Accept says), Docker-Content-Digest and the exact stored bytes. PUT
 * validates and stores (storage/manifest_check.c), needs `update` rather than `create`
 * when it moves an existing tag, and echoes the subject in OCI-Subject. A malformed
 * reference on a read is simply unknown (404); on a write it is a client error (400).
 * A PUT also applies every `tag` query parameter (?tag=a&tag=b, distribution-spec 1.1.1),
 * all or none, and names each tag applied in an OCI-Tag response header.
 */
#include <string.h>

#include "api/internal.h"
#include "api/sync_int.h"

/* The reference param; on a malformed one sends the error for `method` and returns false. */
static bool ref_param(h2o_req_t *req, zn_reqctx_t *ctx, bool is_read, zn_api_ref_t *ref)
{
    zn_err_t err = zn_api_ref_parse(ctx->params[1], ref);
    if (err == ZN_OK)
        return true;
    bool digest_like = memchr(ctx->params[1].p, ':', ctx->params[1].n) != NULL;
    if (is_read || (!digest_like && h2o_memis(req->method.base, req->method.len, H2O_STRLIT("DELETE"))))
        zn_api_send_error(req, ZN_OCI_MANIFEST_UNKNOWN, NULL);
    else
        zn_api_send_error(req, digest_like ? ZN_OCI_DIGEST_INVALID : ZN_OCI_TAG_INVALID, NULL);
    return false;
}

/* A GET or HEAD: the lookup is the storage part, the answer the respond part (dispatch.c). */
struct mget {
    zn_api_t *api;
    const char *repo;
    zn_api_ref_t ref;
    bool head, repo_exists;
    bool peek; /* inline on the loop: from memory only, ZN_EAGAIN sends it to the pool */
    zn_err_t err;
    zn_storage_manifest_t m;
};

static void mget_drop(void *p);

static void mget_work(zn_api_t *api, zn_reqctx_t *ctx, void *p)
{
    struct mget *g = p;
    (void)ctx;
    if (g->peek) {
        if ((g->err = zn_storage_manifest_peek(api->st, g->repo, g->ref.text, !g->head, &g->m)) == ZN_EAGAIN)
            return;
    } else {
        g->err = zn_storage_manifest_get(api->st, g->repo, g->ref.text, !g->head, &g->m);
    }
    if (g->err == ZN_ENOENT && api->sync == NULL)
        g->repo_exists = zn_storage_repo_exists(api->st, g->repo) == ZN_OK;
}

static int mget_back(h2o_req_t *req, void *p)
{
    struct mget *g = p;
    zn_api_t *api = g->api;
    zn_err_t err = g->err;
    if (err == ZN_EAGAIN && g->peek) {
        /* a cache miss on the filesystem store: index.json or the manifest must be read
         * from the disk, which may take milliseconds; not on the loop (issue 13 target 3) */
        struct mget *off = zn_api_state_new_off_loop(api, req, zn_api_state_ctx(g), sizeof(*off), mget_drop);
        off->api = api;
        off->repo = zn_api_state_strdup(off, g->repo);
        off->ref = g->ref;
        off->head = g->head;
        return zn_api_state_run(off, mget_work, mget_back);
    }
    /* the mirror's hook (never on a store that may block: api.c): fetch a missing manifest,
     * or revalidate a tag that is due */
    if (api->sync != NULL && (err == ZN_OK || err == ZN_ENOENT) &&
        zn_sync_manifest(api->sync, req, g->repo, g->ref.text, g->ref.is_digest, err == ZN_OK ? &g->m : NULL) == 0) {
        if (err == ZN_OK)
            zn_storage_manifest_release(&g->m);
        return 0;
    }
    if (err == ZN_ENOENT)
        return api->sync != NULL ? zn_api_send_unknown(req, api, g->repo, ZN_OCI_MANIFEST_UNKNOWN)
                                 : zn_api_send_unknown_as(req, g->repo_exists, ZN_OCI_MANIFEST_UNKNOWN);
    if (err != ZN_OK)
        return zn_api_send_storage_error(req, err, ZN_OCI_MANIFEST_UNKNOWN, NULL);
    zn_api_header_add_str(req, "docker-content-digest", g->m.digest.str);
    zn_api_header_addf(req, "etag", "\"%s\"", g->m.digest.str);
    zn_api_send_body(req, 200, g->m.media_type, g->m.bytes, (size_t)g->m.size);
    zn_storage_manifest_release(&g->m);
    return 0;
}

static void mget_drop(void *p)
{
    zn_storage_manifest_release(&((struct mget *)p)->m);
}

int zn_api_manifest_get(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_api_t *api = ctx->app;
    const char *repo = zn_api_repo_param(req, ctx, 0);
    if (repo == NULL)
        return 0;
    struct mget *g = zn_api_state_new(api, req, ctx, sizeof(*g), mget_drop);
    if (!ref_param(req, ctx, true, &g->ref))
        return 0;
    g->api = api;
    g->repo = zn_api_state_strdup(g, repo);
    g->head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    g->peek = !zn_api_state_is_async(g);
    return zn_api_state_run(g, mget_work, mget_back);
}

/* Moving an existing tag needs `update` (zot); a new tag or a digest needs `create`, and
 * so does pushing again what a tag already names (clients re-push whole images; the tag
 * does not move). */
static bool may_put(zn_reqctx_t *ctx, zn_api_t *api, const char *repo, const char *tag, const char *body, size_t len)
{
    zn_storage_manifest_t m;
    zn_digest_t d;
    if (zn_storage_manifest_get(api->st, repo, tag, false, &m) != ZN_OK)
        return true;
    zn_digest_of(m.digest.algo, body, len, &d);
    return zn_digest_eq(&d, &m.digest) || ctx->can(ctx, repo, ZN_ACT_UPDATE);
}

#define MAX_PUT_TAGS 64

struct put_tags {
    const char *v[MAX_PUT_TAGS + 1];
    size_t n;
};

static void add_tag(struct put_tags *t, const char *tag)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i], tag) == 0)
            return;
    t->v[t->n++] = tag;
}

/* The tags a PUT applies: a tag reference and every `tag` query parameter (distribution-spec
 * 1.1.1, for pushes by digest). All are checked before anything is stored: one bad tag
 * fails the request (400 TAG_INVALID, sent here). */
static bool put_tags(h2o_req_t *req, const zn_api_ref_t *ref, struct put_tags *t)
{
    zn_slice_t q = zn_api_query(req);
    char buf[ZN_TAG_MAX + 2];
    zn_err_t err;

    t->n = 0;
    if (!ref->is_digest)
        add_tag(t, ref->text);
    for (size_t i = 0; (err = zn_api_query_get_nth(q, "tag", i, buf, sizeof(buf))) != ZN_ENOENT; i++) {
        if (err != ZN_OK || !zn_storage_tag_valid(zn_slice(buf, strlen(buf)))) {
            zn_api_send_error(req, ZN_OCI_TAG_INVALID, "invalid tag query parameter");
            return false;
        }
        if (t->n == MAX_PUT_TAGS) {
            zn_api_send_error(req, ZN_OCI_TAG_INVALID, "too many tag query parameters");
            return false;
        }
        add_tag(t, h2o_strdup(&req->pool, buf, SIZE_MAX).base);
    }
    return true;
}

/* A manifest body that storage rejects is MANIFEST_INVALID, a reference it lacks
 * MANIFEST_BLOB_UNKNOWN (api/errors.c maps the rest). */
static int send_put_error(h2o_req_t *req, zn_err_t err, const char *detail)
{
    static const zn_api_codes_t as = {ZN_OCI_MANIFEST_BLOB_UNKNOWN, ZN_OCI_MANIFEST_INVALID};
    const char *d = err == ZN_EDIGEST ? "digest does not match the manifest" : detail[0] != '\0' ? detail : NULL;
    return zn_api_send_err(req, err, &as, d);
}

struct mput {
    const char *repo;
    zn_api_ref_t ref;
    struct put_tags tags;
    const char *body, *content_type;
    size_t len;
    bool denied;
    zn_err_t err;
    zn_storage_put_t res;
    char detail[512];
};

static void mput_work(zn_api_t *api, zn_reqctx_t *ctx, void *p)
{
    struct mput *u = p;
    for (size_t i = 0; i < u->tags.n; i++)
        if (!may_put(ctx, api, u->repo, u->tags.v[i], u->body, u->len)) {
            u->denied = true;
            return;
        }
    u->err = zn_storage_manifest_put_tags(api->st, u->repo, u->tags.v, u->tags.n, u->ref.is_digest ? &u->ref.digest : NULL,
                                          u->content_type, u->body, u->len, &u->res, u->detail, sizeof(u->detail));
}

static int mput_back(h2o_req_t *req, void *p)
{
    struct mput *u = p;
    if (u->denied) {
        zn_reqctx_t *ctx = zn_api_state_ctx(u);
        return ctx->deny(req, ctx);
    }
    if (u->err != ZN_OK)
        return send_put_error(req, u->err, u->detail);
    zn_api_header_addf(req, "location", "/v2/%s/manifests/%s", u->repo, u->res.digest.str);
    zn_api_header_add_str(req, "docker-content-digest", u->res.digest.str);
    if (u->res.has_subject)
        zn_api_header_add_str(req, "oci-subject", u->res.subject.str);
    /* one OCI-Tag per tag applied: how a client learns the tag parameters were honoured */
    for (size_t i = 0; i < u->tags.n; i++)
        zn_api_header_add_str(req, "oci-tag", u->tags.v[i]);
    return zn_api_send_empty(req, 201);
}

int zn_api_manifest_put(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_api_t *api = ctx->app;
    const char *repo = zn_api_repo_param(req, ctx, 0);
    uint64_t max = api->cfg->storage.max_manifest_size;
    size_t len = req->entity.base != NULL ? req->entity.len : 0;

    if (repo == NULL)
        return 0;
    struct mput *u = zn_api_state_new(api, req, ctx, sizeof(*u), NULL);
    if (!ref_param(req, ctx, false, &u->ref) || !put_tags(req, &u->ref, &u->tags))
        return 0;
    if (max != 0 && len > max)
        return zn_api_send_error(req, ZN_OCI_SIZE_TOO_LARGE, "manifest too large");
    /* what the storage part reads is the state's (copies when it runs on the pool) */
    u->repo = zn_api_state_strdup(u, repo);
    for (size_t i = 0; i < u->tags.n; i++)
        u->tags.v[i] = zn_api_state_strdup(u, u->tags.v[i]);
    u->len = len;
    u->body = len != 0 ? zn_api_state_keep(u, req->entity.base, len) : "";
    zn_slice_t ct = zn_api_header(req, H2O_TOKEN_CONTENT_TYPE);
    u->content_type = ct.p != NULL ? zn_api_state_keep(u, h2o_strdup(&req->pool, ct.p, ct.n).base, ct.n) : NULL;
    return zn_api_state_run(u, mput_work, mput_back);
}

struct mdel {
    const char *repo;
    zn_api_ref_t ref;
    bool repo_exists;
    zn_err_t err;
};

static void mdel_work(zn_api_t *api, zn_reqctx_t *ctx, void *p)
{
    struct mdel *m = p;
    (void)ctx;
    m->err = zn_storage_manifest_delete(api->st, m->repo, m->ref.text);
    if (m->err == ZN_ENOENT)
        m->repo_exists = zn_storage_repo_exists(api->st, m->repo) == ZN_OK;
}

static int mdel_back(h2o_req_t *req, void *p)
{
    struct mdel *m = p;
    if (m->err == ZN_ENOENT)
        return zn_api_send_unknown_as(req, m->repo_exists, ZN_OCI_MANIFEST_UNKNOWN);
    if (m->err != ZN_OK)
        return zn_api_send_storage_error(req, m->err, ZN_OCI_MANIFEST_UNKNOWN, NULL);
    return zn_api_send_empty(req, 202);
}

int zn_api_manifest_delete(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_api_t *api = ctx->app;
    const char *repo = zn_api_repo_param(req, ctx, 0);
    if (repo == NULL)
        return 0;
    struct mdel *m = zn_api_state_new(api, req, ctx, sizeof(*m), NULL);
    if (!ref_param(req, ctx, false, &m->ref))
        return 0;
    m->repo = zn_api_state_strdup(m, repo);
    return zn_api_state_run(m, mdel_work, mdel_back);
}
