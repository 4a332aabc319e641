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

int zn_api_manifest_get(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_api_t *api = ctx->app;
    const char *repo = zn_api_repo_param(req, ctx, 0);
    bool head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    zn_storage_manifest_t m;
    zn_api_ref_t ref;

    if (repo == NULL || !ref_param(req, ctx, true, &ref))
        return 0;
    zn_err_t err = zn_storage_manifest_get(api->st, repo, ref.text, !head, &m);
    /* the mirror's hook: fetch a missing manifest, or revalidate a tag that is due */
    if (api->sync != NULL && (err == ZN_OK || err == ZN_ENOENT) &&
        zn_sync_manifest(api->sync, req, repo, ref.text, ref.is_digest, err == ZN_OK ? &m : NULL) == 0) {
        if (err == ZN_OK)
            zn_storage_manifest_release(&m);
        return 0;
    }
    if (err == ZN_ENOENT)
        return zn_api_send_unknown(req, api, repo, ZN_OCI_MANIFEST_UNKNOWN);
    if (err != ZN_OK)
        return zn_api_send_storage_error(req, err, ZN_OCI_MANIFEST_UNKNOWN, NULL);
    zn_api_header_add_str(req, "docker-content-digest", m.digest.str);
    zn_api_header_addf(req, "etag", "\"%s\"", m.digest.str);
    zn_api_send_body(req, 200, m.media_type, m.bytes, (size_t)m.size);
    zn_storage_manifest_release(&m);
    return 0;
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

int zn_api_manifest_put(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_api_t *api = ctx->app;
    const char *repo = zn_api_repo_param(req, ctx, 0);
    uint64_t max = api->cfg->storage.max_manifest_size;
    size_t len = req->entity.base != NULL ? req->entity.len : 0;
    char detail[512];
    zn_storage_put_t res;
    struct put_tags tags;
    zn_api_ref_t ref;

    if (repo == NULL || !ref_param(req, ctx, false, &ref) || !put_tags(req, &ref, &tags))
        return 0;
    if (max != 0 && len > max)
        return zn_api_send_error(req, ZN_OCI_SIZE_TOO_LARGE, "manifest too large");
    const char *body = len != 0 ? req->entity.base : "";
    for (size_t i = 0; i < tags.n; i++)
        if (!may_put(ctx, api, repo, tags.v[i], body, len))
            return ctx->deny(req, ctx);
    zn_slice_t ct = zn_api_header(req, H2O_TOKEN_CONTENT_TYPE);
    const char *content_type = ct.p != NULL ? h2o_strdup(&req->pool, ct.p, ct.n).base : NULL;
    zn_err_t err = zn_storage_manifest_put_tags(api->st, repo, tags.v, tags.n, ref.is_digest ? &ref.digest : NULL, content_type,
                                                body, len, &res, detail, sizeof(detail));
    if (err != ZN_OK)
        return send_put_error(req, err, detail);
    zn_api_header_addf(req, "location", "/v2/%s/manifests/%s", repo, res.digest.str);
    zn_api_header_add_str(req, "docker-content-digest", res.digest.str);
    if (res.has_subject)
        zn_api_header_add_str(req, "oci-subject", res.subject.str);
    /* one OCI-Tag per tag applied: how a client learns the tag parameters were honoured */
    for (size_t i = 0; i < tags.n; i++)
        zn_api_header_add_str(req, "oci-tag", tags.v[i]);
    return zn_api_send_empty(req, 201);
}

int zn_api_manifest_delete(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_api_t *api = ctx->app;
    const char *repo = zn_api_repo_param(req, ctx, 0);
    zn_api_ref_t ref;

    if (repo == NULL || !ref_param(req, ctx, false, &ref))
        return 0;
    zn_err_t err = zn_storage_manifest_delete(api->st, repo, ref.text);
    if (err == ZN_ENOENT)
        return zn_api_send_unknown(req, api, repo, ZN_OCI_MANIFEST_UNKNOWN);
    if (err != ZN_OK)
        return zn_api_send_storage_error(req, err, ZN_OCI_MANIFEST_UNKNOWN, NULL);
    return zn_api_send_empty(req, 202);
}
