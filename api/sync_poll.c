/*
 * api/sync_poll.c - periodic sync (zot's extensions.sync registries[].pollInterval).
 *
 * Per registry with pollInterval > 0: one poll thread ("sync-poll-N") and COPIERS copier
 * threads ("sync-copy-N"). Every pollInterval (the first round at startup) the poll thread
 * lists the upstream's /v2/_catalog page by page (n/last, following the Link header), keeps
 * the repositories some content prefix glob matches (mapped to local names as the on-demand
 * side maps them back), lists each one's tags page by page, applies the tag filters, and
 * queues one job per image. Copiers take jobs: GET the manifest by tag; if the local tag
 * already names that digest the image is up to date, else the image is copied bottom-up so
 * the store accepts each piece: an index's children first (each with its blobs), an image's
 * config and layers (blobs present locally are skipped; the others stream to disk through
 * the upload API, zn_storage_upload_finish verifying the digest), then the manifest under
 * its tag. Then the referrers of every manifest copied (GET /v2/<name>/referrers/<digest>,
 * or the referrers tag schema sha256-<hex> when the upstream has no referrers API).
 *
 * Why COPIERS = 3: copying is network-bound; a few images in flight hide one image's slow
 * layer behind the small requests of others, while the upstream (think Docker Hub's rate
 * limits) and the local disk see a modest, fixed load whatever the number of repositories.
 *
 * Requests are blocking for these threads (never an h2o worker): a request waits on the
 * registry's condition, which the HTTP client's notify and shutdown both signal, so stopping
 * is prompt. A request that fails in transport, or answers 429/5xx, is tried again up to
 * maxRetries times, retryDelay apart (waited on the same condition). Authentication is the
 * on-demand side's: credentialsFile Basic, or the Bearer token flow through sync_util.c.
 * Every upstream answer is checked: manifest digests against what was asked and the
 * Docker-Content-Digest, sizes against storage.maxManifestSize/maxBlobSize, JSON shapes.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "api/sync_int.h"

#define COPIERS 3
#define CHUNK (256u << 10)
#define AUTH_MAX 8192
#define LIST_BODY_MAX (4u << 20)
#define REPOS_MAX 10000
#define TAGS_MAX 10000
#define PAGE 100
#define DEPTH_MAX 4
#define ACCEPT_MANIFESTS                                                                                                           \
    "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "                                \
    "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"
#define REFERRERS_TYPE "application/vnd.oci.image.index.v1+json"

struct job {
    char repo[ZN_REPO_NAME_MAX + 1];
    char up[ZN_SYNC_NAME_MAX + 1];
    char tag[ZN_TAG_MAX + 1];
};

struct preg;

/* One thread's connection state: the credential that last worked, for one upstream scope. */
struct conn {
    struct preg *R;
    char scope[ZN_SYNC_NAME_MAX + 32];
    char auth[AUTH_MAX];
    uint64_t auth_expires_ns;
    char *chunk;
};

struct preg {
    zn_sync_poll_t *P;
    size_t idx;
    const zn_config_sync_registry_t *r;
    zn_mutex_t lock; /* guards everything below */
    zn_cond_t cv;    /* HTTP news, new jobs, jobs done, stop */
    uint64_t news;
    bool stop;
    struct job *jobs;
    size_t njobs, next_job, jobs_done;
    pthread_t poller, copiers[COPIERS];
    int nthreads; /* started: poller + copiers */
};

struct zn_sync_poll {
    const zn_config_t *cfg;
    zn_storage_t *st;
    const zn_sync_creds_t *creds;
    zn_httpc_tls_t *const *tls;
    zn_httpc_t *http;
    struct preg *regs;
    size_t nregs;
    _Atomic uint64_t copied, failed, runs;
};

/* ---- blocking requests ------------------------------------------------------------------------ */

static void on_news(void *data)
{
    struct preg *R = data;
    zn_mutex_lock(&R->lock);
    R->news++;
    zn_cond_broadcast(&R->cv);
    zn_mutex_unlock(&R->lock);
}

/* Waits until the HTTP client has news after *seen (or shutdown) and moves *seen on;
 * returns false on shutdown. */
static bool wait_news(struct preg *R, uint64_t *seen)
{
    zn_mutex_lock(&R->lock);
    while (R->news == *seen && !R->stop)
        zn_cond_wait(&R->cv, &R->lock);
    bool ok = !R->stop;
    *seen = R->news;
    zn_mutex_unlock(&R->lock);
    return ok;
}

/* Sleeps ns unless shut down first; false on shutdown. */
static bool pause_ns(struct preg *R, uint64_t ns)
{
    uint64_t until = zn_now_mono_ns() + ns;
    zn_mutex_lock(&R->lock);
    while (!R->stop && zn_now_mono_ns() < until)
        zn_cond_timedwait(&R->cv, &R->lock, until);
    bool ok = !R->stop;
    zn_mutex_unlock(&R->lock);
    return ok;
}

typedef struct resp {
    int status;
    zn_err_t err; /* ZN_OK; ZN_EIO transport; ZN_ETOOBIG body too large; ZN_ECANCELED-like: stop */
    char errmsg[128];
    char www_auth[2048];
    char link[2048];
    char dcd[ZN_DIGEST_STR_MAX + 8];
    char ctype[ZN_MEDIA_TYPE_MAX + 64];
    zn_buf_t body; /* when not streaming into an upload */
} resp_t;

/* One request, run to its end. With upl, a 200's body goes into the upload session (at most
 * max bytes and exactly the Content-Length when one is given), else into out->body (at most
 * max). Returns false on shutdown. */
static bool run_once(struct conn *c, const char *method, const char *url, const char *auth, bool manifest, size_t max,
                     zn_upload_t *upl, resp_t *out)
{
    struct preg *R = c->R;
    const char *hdrs[2];
    size_t nh = 0;
    char authz[AUTH_MAX + 32];
    zn_httpc_req_t *hr = NULL;

    out->status = 0;
    out->err = ZN_OK;
    out->errmsg[0] = out->www_auth[0] = out->link[0] = out->dcd[0] = out->ctype[0] = '\0';
    zn_buf_release(&out->body);
    zn_buf_init(&out->body, max);
    if (manifest)
        hdrs[nh++] = ACCEPT_MANIFESTS;
    if (auth != NULL && auth[0] != '\0') {
        int n = snprintf(authz, sizeof(authz), "Authorization: %s", auth);
        if (n < 0 || (size_t)n >= sizeof(authz)) {
            out->err = ZN_ETOOBIG;
            return true;
        }
        hdrs[nh++] = authz;
    }
    zn_httpc_opts_t opts = {.method = method,
                            .url = url,
                            .headers = hdrs,
                            .nheaders = nh,
                            .tls = R->P->tls[R->idx],
                            .buffer_max = 4u << 20,
                            .notify = on_news,
                            .data = R};
    /* retries are ours (run_req), so that a shutdown interrupts their delay */
    zn_mutex_lock(&R->lock);
    uint64_t seen = R->news;
    zn_mutex_unlock(&R->lock);
    if (zn_httpc_start(R->P->http, &opts, &hr) != ZN_OK) {
        out->err = ZN_EIO;
        snprintf(out->errmsg, sizeof(out->errmsg), "cannot start the request");
        return true;
    }
    bool headers_seen = false, ok = true;
    uint64_t written = 0, clen = UINT64_MAX;
    for (;;) {
        zn_httpc_state_t st;
        zn_httpc_poll(hr, &st);
        if (st.headers && !headers_seen) {
            headers_seen = true;
            out->status = st.status;
            clen = st.content_length;
            if (zn_httpc_header(hr, "WWW-Authenticate", out->www_auth, sizeof(out->www_auth)) != ZN_OK)
                out->www_auth[0] = '\0';
            if (zn_httpc_header(hr, "Link", out->link, sizeof(out->link)) != ZN_OK)
                out->link[0] = '\0';
            if (zn_httpc_header(hr, "Docker-Content-Digest", out->dcd, sizeof(out->dcd)) != ZN_OK)
                out->dcd[0] = '\0';
            if (zn_httpc_header(hr, "Content-Type", out->ctype, sizeof(out->ctype)) != ZN_OK)
                out->ctype[0] = '\0';
            if (upl != NULL && st.status == 200 && clen != UINT64_MAX && max != 0 && clen > max) {
                out->err = ZN_ETOOBIG;
                break;
            }
            if (upl != NULL && st.status != 200) {
                zn_buf_release(&out->body);
                zn_buf_init(&out->body, 64u << 10); /* an error's body: small or refused */
            }
        }
        if (!st.headers && !st.done) {
            if (!(ok = wait_news(R, &seen)))
                break;
            continue;
        }
        size_t n;
        bool stream = upl != NULL && out->status == 200;
        while ((n = zn_httpc_read(hr, c->chunk, CHUNK)) > 0) {
            if (stream) {
                written += n;
                if ((clen != UINT64_MAX && written > clen) || (max != 0 && written > max)) {
                    out->err = ZN_ETOOBIG;
                    break;
                }
                if (zn_storage_upload_write(upl, c->chunk, n) != ZN_OK) {
                    out->err = ZN_EIO;
                    snprintf(out->errmsg, sizeof(out->errmsg), "cannot write the upload session");
                    break;
                }
            } else if (zn_buf_append(&out->body, c->chunk, n) != ZN_OK) {
                out->err = ZN_ETOOBIG;
                break;
            }
        }
        if (out->err != ZN_OK)
            break;
        zn_httpc_poll(hr, &st); /* done is final: a buffer found empty after it stays empty */
        if (st.done && st.buffered == 0) {
            if (st.err != ZN_OK) {
                out->err = ZN_EIO;
                if (snprintf(out->errmsg, sizeof(out->errmsg), "%s", st.errmsg) >= (int)sizeof(out->errmsg))
                    memcpy(out->errmsg + sizeof(out->errmsg) - 4, "...", 4);
            } else if (stream && clen != UINT64_MAX && written != clen) {
                out->err = ZN_EIO;
                snprintf(out->errmsg, sizeof(out->errmsg), "body shorter than its Content-Length");
            }
            break;
        }
        if (st.buffered == 0 && !(ok = wait_news(R, &seen)))
            break;
    }
    zn_httpc_release(hr);
    if (out->err == ZN_ETOOBIG && out->errmsg[0] == '\0')
        snprintf(out->errmsg, sizeof(out->errmsg), "answer larger than allowed");
    return ok;
}

static bool retryable(const resp_t *r)
{
    return r->err == ZN_EIO || r->status == 429 || r->status >= 500;
}

/* A GET/HEAD of `path` (starting "/v2/") on the registry's URL `url` for `scope`, with the
 * credential this thread holds for it, answering a 401 once with the challenge's flow, and
 * retried maxRetries times. For a blob (upl_repo != NULL) a 200's body lands in a fresh upload
 * session, returned in *upl (the caller finishes or cancels it). false on shutdown. */
static bool run_req(struct conn *c, const char *base, const char *path, const char *scope, const char *method, bool manifest,
                    size_t max, const char *upl_repo, zn_upload_t **upl, resp_t *out)
{
    struct preg *R = c->R;
    char url[4096];
    int n = snprintf(url, sizeof(url), "%s%s", base, path);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        out->err = ZN_ETOOBIG;
        snprintf(out->errmsg, sizeof(out->errmsg), "URL too long");
        return true;
    }
    if (strcmp(c->scope, scope) != 0 || zn_now_mono_ns() >= c->auth_expires_ns) {
        c->auth[0] = '\0';
        if (snprintf(c->scope, sizeof(c->scope), "%s", scope) >= (int)sizeof(c->scope))
            c->scope[0] = '\0';
    }
    bool tried_auth = false;
    for (unsigned attempt = 0;; attempt++) {
        if (upl != NULL) {
            char uuid[ZN_UUID_LEN + 1];
            if (zn_storage_upload_start(R->P->st, upl_repo, uuid, upl) != ZN_OK) {
                out->err = ZN_EIO;
                snprintf(out->errmsg, sizeof(out->errmsg), "cannot start an upload session");
                return true;
            }
        }
        if (!run_once(c, method, url, c->auth, manifest, max, upl != NULL ? *upl : NULL, out)) {
            if (upl != NULL) {
                zn_storage_upload_cancel(*upl);
                *upl = NULL;
            }
            return false;
        }
        if (out->err == ZN_OK && out->status == 200)
            return true;
        if (upl != NULL) {
            zn_storage_upload_cancel(*upl);
            *upl = NULL;
        }
        if (out->err == ZN_OK && out->status == 401 && !tried_auth) {
            tried_auth = true;
            zn_sync_challenge_t ch;
            char host[512], basic[1500], turl[4096];
            zn_sync_url_host(base, host, sizeof(host));
            const zn_sync_cred_t *cred = zn_sync_creds_find(R->P->creds, host);
            if (zn_sync_challenge_parse(out->www_auth, &ch) != ZN_OK || !zn_sync_basic_auth(cred, basic, sizeof(basic)))
                return true;
            if (strcmp(ch.scheme, "Basic") == 0) {
                if (basic[0] == '\0')
                    return true;
                memcpy(c->auth, basic, strlen(basic) + 1);
                c->auth_expires_ns = zn_now_mono_ns() + 300 * 1000000000ull;
            } else {
                uint64_t ttl;
                resp_t tr = {0};
                if (!zn_sync_token_url(&ch, scope, turl, sizeof(turl)))
                    return true;
                if (!run_once(c, "GET", turl, basic, false, 64u << 10, NULL, &tr)) {
                    zn_buf_release(&tr.body);
                    return false;
                }
                bool got = tr.err == ZN_OK && tr.status == 200 &&
                           zn_sync_token_parse(tr.body.p, tr.body.len, c->auth, sizeof(c->auth), &ttl);
                zn_buf_release(&tr.body);
                if (!got) {
                    c->auth[0] = '\0';
                    zn_log(ZN_LOG_WARN, "sync poll: no token from the upstream's token service", ZN_LSTR("url", base),
                           ZN_LINT("status", tr.status));
                    return true;
                }
                c->auth_expires_ns = zn_now_mono_ns() + ttl * 1000000000ull;
            }
            attempt--; /* answering the challenge is no retry */
            continue;
        }
        if (!retryable(out) || attempt >= R->r->max_retries)
            return true;
        zn_log(ZN_LOG_INFO, "sync poll: request failed, retrying", ZN_LSTR("url", url), ZN_LINT("status", out->status),
               ZN_LSTR("error", out->errmsg), ZN_LUINT("attempt", attempt + 1));
        if (!pause_ns(R, R->r->retry_delay_ns))
            return false;
    }
}

/* ---- copying ------------------------------------------------------------------------------------ */

/* Context of one image copy. */
struct copy {
    struct conn *c;
    const char *base; /* the registry URL in use */
    const struct job *j;
    char scope[ZN_SYNC_NAME_MAX + 32];
    bool stopped;
    bool stored;   /* the job's tagged manifest went into the store */
    char why[256]; /* first failure */
};

__attribute__((format(printf, 2, 3))) static void copy_fail(struct copy *k, const char *f, ...)
{
    if (k->why[0] != '\0')
        return;
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(k->why, sizeof(k->why), f, ap);
    va_end(ap);
    if ((n < 0 || (size_t)n >= sizeof(k->why)) && sizeof(k->why) >= 4)
        memcpy(k->why + sizeof(k->why) - 4, "...", 4);
}

static bool local_manifest(struct copy *k, const char *ref, zn_digest_t *d)
{
    zn_storage_manifest_t m;
    if (zn_storage_manifest_get(k->c->R->P->st, k->j->repo, ref, false, &m) != ZN_OK)
        return false;
    if (d != NULL)
        *d = m.digest;
    zn_storage_manifest_release(&m);
    return true;
}

static bool copy_blob(struct copy *k, const zn_digest_t *d)
{
    zn_storage_t *st = k->c->R->P->st;
    uint64_t size;
    char path[ZN_SYNC_NAME_MAX + ZN_DIGEST_STR_MAX + 16];
    char from[ZN_REPO_NAME_MAX + 1];
    if (zn_storage_blob_stat(st, k->j->repo, d, &size) == ZN_OK)
        return true;
    /* another repository of the store has it (dedupe index): mounted, not fetched again */
    if (zn_storage_blob_locate(st, d, from, sizeof(from)) == ZN_OK && zn_storage_blob_mount(st, k->j->repo, from, d) == ZN_OK)
        return true;
    if (snprintf(path, sizeof(path), "/v2/%s/blobs/%s", k->j->up, d->str) >= (int)sizeof(path)) {
        copy_fail(k, "name too long");
        return false;
    }
    resp_t r = {0};
    zn_upload_t *upl = NULL;
    if (!run_req(k->c, k->base, path, k->scope, "GET", false, k->c->R->P->cfg->storage.max_blob_size, k->j->repo, &upl, &r)) {
        k->stopped = true;
        zn_buf_release(&r.body);
        return false;
    }
    zn_buf_release(&r.body);
    if (upl == NULL) {
        copy_fail(k, "blob %s: %s", d->str, r.err != ZN_OK ? r.errmsg : (r.status == 404 ? "not found upstream" : "refused"));
        return false;
    }
    zn_err_t err = zn_storage_upload_finish(upl, d);
    if (err != ZN_OK) {
        copy_fail(k, "blob %s: %s", d->str, err == ZN_EDIGEST ? "content does not match its digest" : zn_err_str(err));
        return false;
    }
    return true;
}

/* GETs manifest `ref` (tag or digest) into r; checks it against `want` (when given) and the
 * Docker-Content-Digest; *got is its digest. */
static bool get_manifest(struct copy *k, const char *ref, const zn_digest_t *want, resp_t *r, zn_digest_t *got, bool *missing)
{
    char path[ZN_SYNC_NAME_MAX + ZN_DIGEST_STR_MAX + 32];
    zn_digest_t theirs;
    *missing = false;
    if (snprintf(path, sizeof(path), "/v2/%s/manifests/%s", k->j->up, ref) >= (int)sizeof(path)) {
        copy_fail(k, "name too long");
        return false;
    }
    if (!run_req(k->c, k->base, path, k->scope, "GET", true, k->c->R->P->cfg->storage.max_manifest_size, NULL, NULL, r)) {
        k->stopped = true;
        return false;
    }
    if (r->err != ZN_OK || r->status != 200) {
        *missing = r->err == ZN_OK && r->status == 404;
        copy_fail(k, "manifest %s: %s", ref, r->err != ZN_OK ? r->errmsg : (r->status == 404 ? "not found upstream" : "refused"));
        return false;
    }
    bool has_dcd = r->dcd[0] != '\0' && zn_digest_parse(zn_slice(r->dcd, strlen(r->dcd)), &theirs) == ZN_OK;
    zn_digest_of(want != NULL ? want->algo : (has_dcd ? theirs.algo : ZN_DIGEST_SHA256), r->body.p != NULL ? r->body.p : "",
                 r->body.len, got);
    if ((want != NULL && !zn_digest_eq(got, want)) || (has_dcd && !zn_digest_eq(got, &theirs))) {
        copy_fail(k, "manifest %s: content does not match its digest", ref);
        return false;
    }
    return true;
}

static void media_type_of(const resp_t *r, char *out, size_t len)
{
    size_t n = strcspn(r->ctype, "; \t");
    if (n >= len || snprintf(out, len, "%.*s", (int)n, r->ctype) >= (int)len)
        out[0] = '\0';
}

static bool copy_referrers(struct copy *k, const zn_digest_t *subject, int depth);

/* Stores manifest bytes (digest d) after what it references; tag may be NULL. */
static bool copy_manifest_body(struct copy *k, const char *tag, const zn_digest_t *d, const char *mt, const char *bytes, size_t len,
                               int depth)
{
    zn_sync_refs_t *refs = zn_malloc(sizeof(*refs));
    bool ok = true;
    zn_err_t err = zn_sync_manifest_refs(bytes, len, refs);
    if (err != ZN_OK) {
        copy_fail(k, "manifest %s: %s", d->str, err == ZN_ETOOBIG ? "references too many objects" : "not a valid manifest");
        free(refs);
        return false;
    }
    /* children before their index, blobs before their manifest */
    for (size_t i = 0; ok && i < refs->nchildren; i++) {
        if (local_manifest(k, refs->children[i].str, NULL))
            continue;
        if (depth >= DEPTH_MAX) {
            copy_fail(k, "manifest %s: indexes nested too deep", d->str);
            ok = false;
            break;
        }
        resp_t r = {0};
        zn_digest_t got;
        bool missing;
        char cmt[ZN_MEDIA_TYPE_MAX];
        ok = get_manifest(k, refs->children[i].str, &refs->children[i], &r, &got, &missing);
        if (ok) {
            media_type_of(&r, cmt, sizeof(cmt));
            ok = copy_manifest_body(k, NULL, &got, cmt, r.body.p != NULL ? r.body.p : "", r.body.len, depth + 1);
        }
        zn_buf_release(&r.body);
    }
    for (size_t i = 0; ok && i < refs->nblobs; i++)
        ok = copy_blob(k, &refs->blobs[i]);
    free(refs);
    if (!ok)
        return false;
    char detail[256];
    zn_storage_put_t res;
    const char *tags[1] = {tag};
    err = zn_storage_manifest_put_tags(k->c->R->P->st, k->j->repo, tags, tag != NULL ? 1 : 0, d, mt[0] != '\0' ? mt : NULL, bytes,
                                       len, &res, detail, sizeof(detail));
    if (err != ZN_OK) {
        copy_fail(k, "manifest %s not stored: %s", d->str, detail);
        return false;
    }
    if (tag != NULL && depth == 0)
        k->stored = true;
    return copy_referrers(k, d, depth);
}

/* Copies the referrers of subject: from the referrers API, or the referrers tag schema. */
static bool copy_referrers(struct copy *k, const zn_digest_t *subject, int depth)
{
    char path[ZN_SYNC_NAME_MAX + ZN_DIGEST_STR_MAX + 32], schema_tag[ZN_DIGEST_STR_MAX + 8];
    const char *hex = strchr(subject->str, ':');
    if (depth >= DEPTH_MAX || hex == NULL)
        return true;
    if (snprintf(path, sizeof(path), "/v2/%s/referrers/%s", k->j->up, subject->str) >= (int)sizeof(path) ||
        snprintf(schema_tag, sizeof(schema_tag), "%.*s-%s", (int)(hex - subject->str), subject->str, hex + 1) >=
            (int)sizeof(schema_tag))
        return true;
    resp_t r = {0};
    const char *tag = NULL;
    zn_digest_t idx_digest;
    char mt[ZN_MEDIA_TYPE_MAX] = "";
    if (!run_req(k->c, k->base, path, k->scope, "GET", false, LIST_BODY_MAX, NULL, NULL, &r)) {
        k->stopped = true;
        zn_buf_release(&r.body);
        return false;
    }
    bool api = r.err == ZN_OK && r.status == 200 && strncmp(r.ctype, REFERRERS_TYPE, strlen(REFERRERS_TYPE)) == 0;
    if (!api) {
        /* no referrers API (404, or an answer that is not an index): the tag schema */
        if (r.err != ZN_OK || (r.status != 404 && r.status != 200 && r.status != 400 && r.status != 405)) {
            copy_fail(k, "referrers of %s: %s", subject->str, r.err != ZN_OK ? r.errmsg : "refused");
            zn_buf_release(&r.body);
            return false;
        }
        bool missing;
        k->why[0] = '\0';
        if (!get_manifest(k, schema_tag, NULL, &r, &idx_digest, &missing)) {
            zn_buf_release(&r.body);
            if (missing && !k->stopped) {
                k->why[0] = '\0';
                return true; /* no referrers */
            }
            return false;
        }
        tag = schema_tag;
        media_type_of(&r, mt, sizeof(mt));
    }
    json_t *j = json_loadb(r.body.p != NULL ? r.body.p : "", r.body.len, 0, NULL);
    json_t *ms = json_object_get(j, "manifests");
    bool ok = json_is_array(ms);
    if (!ok)
        copy_fail(k, "referrers of %s: not an index", subject->str);
    size_t i;
    json_t *desc;
    json_array_foreach(ms, i, desc)
    {
        if (!ok)
            break;
        json_t *dg = json_object_get(desc, "digest");
        zn_digest_t d;
        if (!json_is_string(dg) || zn_digest_parse(zn_slice(json_string_value(dg), strlen(json_string_value(dg))), &d) != ZN_OK) {
            copy_fail(k, "referrers of %s: a descriptor without a valid digest", subject->str);
            ok = false;
            break;
        }
        if (local_manifest(k, d.str, NULL))
            continue;
        resp_t m = {0};
        zn_digest_t got;
        bool missing;
        char cmt[ZN_MEDIA_TYPE_MAX];
        ok = get_manifest(k, d.str, &d, &m, &got, &missing);
        if (ok) {
            media_type_of(&m, cmt, sizeof(cmt));
            ok = copy_manifest_body(k, NULL, &got, cmt, m.body.p != NULL ? m.body.p : "", m.body.len, depth + 1);
        }
        zn_buf_release(&m.body);
    }
    json_decref(j);
    /* the tag schema's index itself, under its tag, once what it lists is here */
    if (ok && tag != NULL) {
        zn_digest_t cur;
        if (!local_manifest(k, tag, &cur) || !zn_digest_eq(&cur, &idx_digest)) {
            char detail[256];
            zn_storage_put_t res;
            const char *tags[1] = {tag};
            if (zn_storage_manifest_put_tags(k->c->R->P->st, k->j->repo, tags, 1, &idx_digest, mt[0] != '\0' ? mt : NULL,
                                             r.body.p != NULL ? r.body.p : "", r.body.len, &res, detail, sizeof(detail)) != ZN_OK) {
                copy_fail(k, "referrers tag %s not stored: %s", tag, detail);
                ok = false;
            }
        }
    }
    zn_buf_release(&r.body);
    return ok;
}

/* Copies one image (job j) from the registry's first URL that answers. */
static void copy_image(struct conn *c, const struct job *j)
{
    struct preg *R = c->R;
    struct copy k = {.c = c, .j = j};
    if (snprintf(k.scope, sizeof(k.scope), "repository:%s:pull", j->up) >= (int)sizeof(k.scope))
        return;
    bool done = false;
    for (size_t u = 0; u < R->r->nurls && !done && !k.stopped; u++) {
        k.base = R->r->urls[u];
        k.why[0] = '\0';
        resp_t r = {0};
        zn_digest_t got, cur;
        bool missing;
        char mt[ZN_MEDIA_TYPE_MAX];
        if (get_manifest(&k, j->tag, NULL, &r, &got, &missing)) {
            if (local_manifest(&k, j->tag, &cur) && zn_digest_eq(&cur, &got)) {
                done = copy_referrers(&k, &got, 0); /* up to date; signatures may still come */
            } else {
                media_type_of(&r, mt, sizeof(mt));
                done = copy_manifest_body(&k, j->tag, &got, mt, r.body.p != NULL ? r.body.p : "", r.body.len, 0);
                if (k.stored) {
                    /* counted even when its referrers failed: those are retried next round */
                    atomic_fetch_add(&R->P->copied, 1);
                    zn_log(ZN_LOG_INFO, "sync poll: image copied", ZN_LSTR("repo", j->repo), ZN_LSTR("tag", j->tag),
                           ZN_LSTR("digest", got.str));
                }
            }
        }
        zn_buf_release(&r.body);
    }
    if (!done && !k.stopped) {
        atomic_fetch_add(&R->P->failed, 1);
        zn_log(ZN_LOG_WARN, "sync poll: image not copied", ZN_LSTR("repo", j->repo), ZN_LSTR("tag", j->tag),
               ZN_LSTR("error", k.why));
    }
}

/* ---- listing --------------------------------------------------------------------------------------- */

/* Pages through `first` (a /v2/ path) collecting the strings of array `key`; calls add for
 * each. false on shutdown; *ok false when the listing failed. */
static bool list_pages(struct conn *c, const char *base, const char *first, const char *scope, const char *key, size_t max,
                       bool (*add)(void *ctx, const char *s), void *ctx, bool *ok)
{
    char path[2048];
    size_t total = 0;
    *ok = false;
    if (snprintf(path, sizeof(path), "%s", first) >= (int)sizeof(path))
        return true;
    for (int pages = 0; pages < 100000; pages++) {
        resp_t r = {0};
        if (!run_req(c, base, path, scope, "GET", false, LIST_BODY_MAX, NULL, NULL, &r)) {
            zn_buf_release(&r.body);
            return false;
        }
        if (r.err != ZN_OK || r.status != 200) {
            zn_log(ZN_LOG_WARN, "sync poll: listing failed", ZN_LSTR("url", base), ZN_LSTR("path", path),
                   ZN_LINT("status", r.status), ZN_LSTR("error", r.errmsg));
            zn_buf_release(&r.body);
            return true;
        }
        json_t *j = json_loadb(r.body.p != NULL ? r.body.p : "", r.body.len, 0, NULL);
        zn_buf_release(&r.body);
        json_t *a = json_object_get(j, key);
        if (!json_is_array(a) && !json_is_null(a) && a != NULL) {
            zn_log(ZN_LOG_WARN, "sync poll: listing is not what the spec says", ZN_LSTR("url", base), ZN_LSTR("path", path));
            json_decref(j);
            return true;
        }
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v)
        {
            if (!json_is_string(v))
                continue;
            if (++total > max) {
                zn_log(ZN_LOG_WARN, "sync poll: listing cut short", ZN_LSTR("path", first), ZN_LUINT("max", max));
                json_decref(j);
                *ok = true;
                return true;
            }
            add(ctx, json_string_value(v));
        }
        json_decref(j);
        if (r.link[0] == '\0' || zn_sync_link_next(r.link, path, sizeof(path)) != ZN_OK)
            break;
    }
    *ok = true;
    return true;
}

struct strv {
    char **v;
    size_t n;
};

static bool strv_add(void *ctx, const char *s)
{
    struct strv *l = ctx;
    l->v = zn_realloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n++] = zn_strdup(s);
    return true;
}

static void strv_free(struct strv *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* One round: list, filter, hand the images to the copiers and wait for them. */
static bool poll_round(struct conn *c)
{
    struct preg *R = c->R;
    const zn_config_sync_registry_t *r = R->r;
    struct job *jobs = NULL;
    size_t njobs = 0;
    bool listed = false;
    char first[64];
    if (snprintf(first, sizeof(first), "/v2/_catalog?n=%d", PAGE) >= (int)sizeof(first))
        return true;
    for (size_t u = 0; u < r->nurls && !listed; u++) {
        struct strv repos = {0};
        bool ok;
        if (!list_pages(c, r->urls[u], first, "registry:catalog:*", "repositories", REPOS_MAX, strv_add, &repos, &ok)) {
            strv_free(&repos);
            free(jobs);
            return false;
        }
        if (!ok) {
            strv_free(&repos);
            continue;
        }
        listed = true;
        for (size_t i = 0; i < repos.n; i++) {
            char local[ZN_REPO_NAME_MAX + 1], path[ZN_SYNC_NAME_MAX + 64], scope[ZN_SYNC_NAME_MAX + 32];
            const zn_config_sync_content_t *ct;
            if (strlen(repos.v[i]) > ZN_SYNC_NAME_MAX || zn_sync_local_name(r, repos.v[i], local, sizeof(local), &ct) != ZN_OK ||
                !zn_storage_name_valid(zn_slice(local, strlen(local))))
                continue;
            if (snprintf(path, sizeof(path), "/v2/%s/tags/list?n=%d", repos.v[i], PAGE) >= (int)sizeof(path) ||
                snprintf(scope, sizeof(scope), "repository:%s:pull", repos.v[i]) >= (int)sizeof(scope))
                continue;
            struct strv tags = {0};
            if (!list_pages(c, r->urls[u], path, scope, "tags", TAGS_MAX, strv_add, &tags, &ok)) {
                strv_free(&tags);
                strv_free(&repos);
                free(jobs);
                return false;
            }
            for (size_t t = 0; ok && t < tags.n; t++) {
                if (!zn_storage_tag_valid(zn_slice(tags.v[t], strlen(tags.v[t]))) || !zn_sync_tag_allowed(ct, tags.v[t]))
                    continue;
                if (zn_sync_schema_tag(tags.v[t]))
                    continue;
                jobs = zn_realloc(jobs, (njobs + 1) * sizeof(*jobs));
                struct job *j = &jobs[njobs];
                if (snprintf(j->repo, sizeof(j->repo), "%s", local) < (int)sizeof(j->repo) &&
                    snprintf(j->up, sizeof(j->up), "%s", repos.v[i]) < (int)sizeof(j->up) &&
                    snprintf(j->tag, sizeof(j->tag), "%s", tags.v[t]) < (int)sizeof(j->tag))
                    njobs++;
            }
            strv_free(&tags);
        }
        strv_free(&repos);
    }
    if (!listed)
        zn_log(ZN_LOG_WARN, "sync poll: no upstream URL answered the catalog", ZN_LSTR("url", r->urls[0]));
    zn_mutex_lock(&R->lock);
    R->jobs = jobs;
    R->njobs = njobs;
    R->next_job = R->jobs_done = 0;
    zn_cond_broadcast(&R->cv);
    while (!R->stop && R->jobs_done < R->njobs)
        zn_cond_wait(&R->cv, &R->lock);
    bool stop = R->stop;
    /* copiers that are still on a job (only at shutdown) hold no pointer into jobs: they copied it */
    zn_mutex_unlock(&R->lock);
    if (stop)
        return false; /* jobs are freed once the copiers are joined */
    zn_mutex_lock(&R->lock);
    R->jobs = NULL;
    R->njobs = 0;
    zn_mutex_unlock(&R->lock);
    free(jobs);
    if (listed)
        atomic_fetch_add(&R->P->runs, 1);
    zn_log(ZN_LOG_INFO, "sync poll: round done", ZN_LSTR("url", r->urls[0]), ZN_LUINT("images", njobs));
    return true;
}

static void conn_init(struct conn *c, struct preg *R)
{
    memset(c, 0, sizeof(*c));
    c->R = R;
    c->chunk = zn_malloc(CHUNK);
}

static void *poll_main(void *arg)
{
    struct preg *R = arg;
    struct conn c;
    conn_init(&c, R);
    for (;;) {
        uint64_t started = zn_now_mono_ns();
        if (!poll_round(&c))
            break;
        uint64_t took = zn_now_mono_ns() - started;
        zn_thread_set_state(zn_thread_self(), ZN_THREAD_IDLE);
        bool go = pause_ns(R, took < R->r->poll_interval_ns ? R->r->poll_interval_ns - took : 0);
        zn_thread_set_state(zn_thread_self(), ZN_THREAD_RUNNING);
        if (!go)
            break;
    }
    free(c.chunk);
    return NULL;
}

static void *copier_main(void *arg)
{
    struct preg *R = arg;
    struct conn c;
    conn_init(&c, R);
    zn_mutex_lock(&R->lock);
    for (;;) {
        while (!R->stop && R->next_job >= R->njobs) {
            zn_thread_set_state(zn_thread_self(), ZN_THREAD_IDLE);
            zn_cond_wait(&R->cv, &R->lock);
        }
        zn_thread_set_state(zn_thread_self(), ZN_THREAD_RUNNING);
        if (R->stop)
            break;
        struct job j = R->jobs[R->next_job++];
        zn_mutex_unlock(&R->lock);
        copy_image(&c, &j);
        zn_mutex_lock(&R->lock);
        R->jobs_done++;
        zn_cond_broadcast(&R->cv);
    }
    zn_mutex_unlock(&R->lock);
    free(c.chunk);
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------------------------------------- */

zn_err_t zn_sync_poll_new(const zn_config_t *cfg, zn_storage_t *st, const zn_sync_creds_t *creds, zn_httpc_tls_t *const *tls,
                          zn_httpc_t *http, zn_sync_poll_t **out, char *err, size_t errlen)
{
    const zn_config_sync_t *sc = cfg->extensions.sync;
    size_t n = 0;
    *out = NULL;
    for (size_t i = 0; sc != NULL && sc->enable && i < sc->nregistries; i++)
        n += sc->registries[i].poll_interval_ns > 0;
    if (n == 0)
        return ZN_OK;
    zn_sync_poll_t *p = zn_calloc(1, sizeof(*p));
    p->cfg = cfg;
    p->st = st;
    p->creds = creds;
    p->tls = tls;
    p->http = http;
    p->regs = zn_calloc(n, sizeof(*p->regs));
    for (size_t i = 0; i < sc->nregistries; i++) {
        if (sc->registries[i].poll_interval_ns == 0)
            continue;
        struct preg *R = &p->regs[p->nregs++];
        R->P = p;
        R->idx = i;
        R->r = &sc->registries[i];
        zn_mutex_init(&R->lock, "sync poll registry");
        zn_cond_init(&R->cv);
    }
    for (size_t i = 0; i < p->nregs; i++) {
        struct preg *R = &p->regs[i];
        char name[16];
        if (snprintf(name, sizeof(name), "sync-copy-%zu", R->idx % 100000) >= (int)sizeof(name))
            name[0] = '\0';
        for (int t = 0; t < COPIERS; t++) {
            if (zn_thread_create(&R->copiers[t], name, copier_main, R) != 0)
                goto fail;
            R->nthreads++;
        }
        if (snprintf(name, sizeof(name), "sync-poll-%zu", R->idx % 100000) >= (int)sizeof(name))
            name[0] = '\0';
        if (zn_thread_create(&R->poller, name, poll_main, R) != 0)
            goto fail;
        R->nthreads++;
    }
    *out = p;
    return ZN_OK;
fail:
    if (snprintf(err, errlen, "extensions.sync: cannot start the periodic sync threads") >= (int)errlen && errlen > 0)
        err[errlen - 1] = '\0';
    zn_sync_poll_free(p);
    return ZN_EIO;
}

void zn_sync_poll_free(zn_sync_poll_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nregs; i++) {
        struct preg *R = &p->regs[i];
        zn_mutex_lock(&R->lock);
        R->stop = true;
        zn_cond_broadcast(&R->cv);
        zn_mutex_unlock(&R->lock);
    }
    for (size_t i = 0; i < p->nregs; i++) {
        struct preg *R = &p->regs[i];
        for (int t = 0; t < R->nthreads && t < COPIERS; t++)
            pthread_join(R->copiers[t], NULL);
        if (R->nthreads > COPIERS)
            pthread_join(R->poller, NULL);
        free(R->jobs);
        zn_cond_destroy(&R->cv);
        zn_mutex_destroy(&R->lock);
    }
    free(p->regs);
    free(p);
}

void zn_sync_poll_stats(zn_sync_poll_t *p, zn_sync_stats_t *out)
{
    if (p == NULL)
        return;
    out->poll_images_copied = atomic_load(&p->copied);
    out->poll_images_failed = atomic_load(&p->failed);
    out->poll_runs = atomic_load(&p->runs);
}
