/*
 * api/sync.c - the on-demand pull-through mirror (zot's extensions.sync, onDemand: true).
 *
 * A GET/HEAD that misses locally in a repository some registry's content rules cover
 * becomes a fetch: one `struct obj` per (repository, blob digest | manifest reference),
 * shared by every request that wants it while it runs (a second client of the same blob
 * joins the first one's fetch instead of starting another). The mirror's control thread
 * ("sync-ondemand") drives every fetch as a small state machine over common/httpc: try the
 * registries and their URLs in order, answer a 401 with the challenge's token flow (Bearer:
 * GET realm?service=&scope=repository:<name>:pull with the credentialsFile's Basic
 * credentials, or Basic directly), and on 200 write the body into an upload session through
 * zn_storage_upload_* as it arrives; zn_storage_upload_finish verifies the digest before the
 * blob becomes visible, and a failed or cut transfer cancels the session, so the store never
 * holds a partial or wrong blob. Manifests are read into memory (storage.maxManifestSize),
 * checked against the digest asked for and the upstream's Docker-Content-Digest, and stored
 * with zn_storage_manifest_put_mirrored. An index (manifest list) is stored at once, without
 * its children: each platform's manifest is fetched when a client asks for it, so what one
 * `docker pull` fetched is served from the cache alone later and a platform nobody pulled
 * is never fetched (Distribution's proxy works the same way). An image manifest is stored
 * once the store has its config and layers; until then it waits in a short pending list
 * that each finished fetch in the repository retries.
 *
 * Clients are served while the data arrives: a blob's waiters get the response headers as
 * soon as the upstream's Content-Length is known and then follow the growing upload session
 * (zn_storage_upload_follow reads up to the bytes written), woken through one
 * h2o_multithread message per worker.
 * The last byte is held back until the digest is verified, so no client ever receives a
 * complete body that does not match; when the fetch fails after the headers went out, the
 * response is cut (HTTP/1.1: connection closed short of Content-Length; HTTP/2: RST_STREAM).
 * A Range GET of a missing blob starts the same (whole-blob) fetch and is answered 206 with
 * Content-Range from the same growing session, as soon as the range's first bytes are
 * there; its last byte, too, waits for the digest check. The upstream's Content-Length
 * settles whether the range is satisfiable (without one the answer waits for the end).
 *
 * Tags are revalidated after the registry's manifestCheckInterval (zot's key; 0 = never):
 * the request waits for a HEAD upstream; an unchanged digest serves the local copy, a new
 * one is fetched and stored, and an unreachable upstream serves the local copy.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/internal.h"
#include "api/sync_int.h"
#include "common/httpc.h"

#define WORKERS_MAX 64
#define CHUNK (256u << 10)
#define TOKEN_MAX (64u << 10)
#define PENDING_MAX 256
#define AUTH_MAX 8192
#define ACCEPT_MANIFESTS                                                                                                           \
    "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "                             \
    "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"

enum { K_BLOB, K_MANIFEST };
enum { O_PENDING, O_STREAMING, O_DONE, O_FAILED };
enum { S_START, S_REQ, S_TOKEN, S_BODY };

struct wctx;

/* One fetch. Fields marked (lock) are under s->lock; (ctl) belong to the control thread. */
struct obj {
    struct obj *next;        /* s->objs (lock) */
    int kind;
    char repo[ZN_REPO_NAME_MAX + 1];
    char ref[ZN_DIGEST_STR_MAX]; /* digest text, or the tag */
    bool by_digest;
    zn_digest_t digest;      /* blob / manifest-by-digest: what was asked */
    bool revalidate;         /* manifest by tag present locally: HEAD first */
    zn_digest_t local;       /* its local digest */
    int refs;                /* (lock) table + control thread + waiters */
    int state;               /* (lock) O_* */
    int fail_status;         /* (lock) 404 or 502 */
    uint64_t size, written;  /* (lock) blob: Content-Length (UINT64_MAX unknown), bytes in the session */
    zn_storage_blob_t *rd;   /* blob: a reader following the session (storage), set before O_STREAMING */
    bool unchanged;          /* (lock) revalidation found the local digest upstream */
    char *bytes;             /* manifest result, set before O_DONE */
    size_t len;
    char media_type[ZN_MEDIA_TYPE_MAX];
    zn_digest_t mdigest;
    uint64_t kick_mask;      /* (lock) workers with waiters */
    /* (ctl) */
    int step;
    size_t reg, url;
    bool any_error, tried_auth, head_first;
    char up[ZN_SYNC_NAME_MAX + 1];
    char auth[AUTH_MAX];
    zn_httpc_req_t *hr;
    zn_upload_t *upl;
    zn_buf_t body;
    struct obj *next_active;
};

struct pending {
    char repo[ZN_REPO_NAME_MAX + 1];
    char tag[ZN_DIGEST_STR_MAX]; /* "" = by digest */
    char media_type[ZN_MEDIA_TYPE_MAX];
    zn_digest_t digest;
    char *bytes;
    size_t len;
};

/* A credential that worked for (registry, URL, upstream repository): the next fetch sends it
 * at once instead of meeting the 401 first. Control thread only. */
struct authc {
    size_t reg, url;
    char up[ZN_SYNC_NAME_MAX + 1];
    char auth[AUTH_MAX];
    uint64_t expires_ns; /* monotonic */
};
#define AUTHC_MAX 64

struct checked {
    char key[ZN_REPO_NAME_MAX + ZN_TAG_MAX + 2];
    uint64_t at_ns;
};

struct zn_sync {
    const zn_config_t *cfg;
    const zn_config_sync_t *sc;
    zn_storage_t *st;
    zn_sync_creds_t creds;
    zn_httpc_tls_t **tls;    /* per registry */
    zn_httpc_t *http;
    pthread_t thread;
    bool started;
    zn_mutex_t lock;         /* guards objs, the (lock) fields, wctx registration, checked, stats */
    zn_cond_t wake_cv;
    bool wake, stop;
    struct obj *objs;        /* every live fetch */
    struct obj *fresh;       /* new fetches for the control thread (via next_active) */
    struct wctx *wctx[WORKERS_MAX];
    int nwctx;
    struct checked *checked; /* last revalidation per repo:tag */
    size_t nchecked;
    zn_sync_stats_t stats;
    zn_sync_poll_t *poll;    /* periodic sync (sync_poll.c), NULL without pollInterval */
    /* control thread only */
    char *chunk; /* CHUNK bytes */
    struct authc authc[AUTHC_MAX];
    size_t nauthc;
    struct pending pending[PENDING_MAX];
    size_t npending;
};

/* Per worker: one receiver on the worker's h2o queue, kicked when a fetch has news. */
struct wctx {
    zn_sync_t *s;
    int idx;
    h2o_multithread_receiver_t recv;
    h2o_multithread_message_t msg;
    _Atomic int queued;
    h2o_linklist_t waiters;
};

static __thread struct wctx *tls_wctx;

/* ---- shared helpers ------------------------------------------------------------------------ */

/* snprintf that says whether everything fitted. */
__attribute__((format(printf, 3, 4))) static bool fmt(char *buf, size_t len, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(buf, len, f, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < len;
}

/* httpc notify: on the httpc thread, with its lock held; only signal. */
static void on_http_news(void *data)
{
    zn_sync_t *s = data;
    zn_mutex_lock(&s->lock);
    s->wake = true;
    zn_cond_signal(&s->wake_cv);
    zn_mutex_unlock(&s->lock);
}

/* Lock held. Wakes every worker with waiters on o. */
static void kick_locked(zn_sync_t *s, struct obj *o)
{
    for (int i = 0; i < s->nwctx; i++) {
        if (!(o->kick_mask & (1ull << i)))
            continue;
        struct wctx *w = s->wctx[i];
        if (atomic_exchange(&w->queued, 1) == 0)
            h2o_multithread_send_message(&w->recv, &w->msg);
    }
}

static void obj_free(struct obj *o)
{
    if (o->rd != NULL)
        zn_storage_blob_close(o->rd);
    free(o->bytes);
    zn_buf_release(&o->body);
    free(o);
}

/* Lock held; returns true if the caller must obj_free(o) after unlocking. */
static bool unref_locked(zn_sync_t *s, struct obj *o)
{
    if (--o->refs > 0)
        return false;
    for (struct obj **p = &s->objs; *p != NULL; p = &(*p)->next) {
        if (*p == o) {
            *p = o->next;
            break;
        }
    }
    return true;
}

static void unref(zn_sync_t *s, struct obj *o)
{
    zn_mutex_lock(&s->lock);
    bool f = unref_locked(s, o);
    zn_mutex_unlock(&s->lock);
    if (f)
        obj_free(o);
}

/* ---- control thread: one fetch's state machine ------------------------------------------------ */

static void set_state(zn_sync_t *s, struct obj *o, int state, int fail_status)
{
    zn_mutex_lock(&s->lock);
    o->state = state;
    o->fail_status = fail_status;
    if (state == O_DONE || state == O_FAILED) {
        /* finished: later requests start afresh (or find the stored object) */
        for (struct obj **p = &s->objs; *p != NULL; p = &(*p)->next) {
            if (*p == o) {
                *p = o->next;
                o->refs--; /* the table's */
                break;
            }
        }
        if (o->kind == K_BLOB)
            state == O_DONE ? s->stats.blob_fetched++ : s->stats.blob_failed++;
        else if (!o->unchanged)
            state == O_DONE ? s->stats.manifest_fetched++ : s->stats.manifest_failed++;
    }
    kick_locked(s, o);
    zn_mutex_unlock(&s->lock);
}

/* The next registry/URL that covers o->repo, or false when none is left. */
static bool pick_upstream(zn_sync_t *s, struct obj *o)
{
    const zn_config_sync_content_t *c;
    for (; o->reg < s->sc->nregistries; o->reg++, o->url = 0) {
        const zn_config_sync_registry_t *r = &s->sc->registries[o->reg];
        if (!r->on_demand || o->url >= r->nurls)
            continue;
        if (zn_sync_upstream_name(r, o->repo, o->up, sizeof(o->up), &c) != ZN_OK)
            continue;
        if (o->kind == K_MANIFEST && !o->by_digest && !zn_sync_tag_allowed(c, o->ref))
            continue;
        return true;
    }
    return false;
}

static void next_upstream(struct obj *o)
{
    o->url++;
    o->tried_auth = false;
    o->auth[0] = '\0';
    o->step = S_START;
}

static const zn_sync_cred_t *creds_for(zn_sync_t *s, const char *url)
{
    char host[512];
    zn_sync_url_host(url, host, sizeof(host));
    return zn_sync_creds_find(&s->creds, host);
}

static zn_err_t start_http(zn_sync_t *s, struct obj *o, const char *method, const char *url, const char *auth, bool manifest)
{
    const zn_config_sync_registry_t *r = &s->sc->registries[o->reg];
    const char *hdrs[2];
    size_t nh = 0;
    char authz[AUTH_MAX + 32];
    if (manifest)
        hdrs[nh++] = ACCEPT_MANIFESTS;
    if (auth != NULL && auth[0] != '\0') {
        if (snprintf(authz, sizeof(authz), "Authorization: %s", auth) >= (int)sizeof(authz))
            return ZN_ETOOBIG;
        hdrs[nh++] = authz;
    }
    zn_httpc_opts_t opts = {.method = method,
                            .url = url,
                            .headers = hdrs,
                            .nheaders = nh,
                            .tls = s->tls[o->reg],
                            .buffer_max = 4u << 20,
                            .retries = r->max_retries,
                            .retry_delay_ms = r->retry_delay_ns / 1000000u,
                            .notify = on_http_news,
                            .data = s};
    return zn_httpc_start(s->http, &opts, &o->hr);
}

static void fail_fetch(zn_sync_t *s, struct obj *o)
{
    zn_httpc_release(o->hr);
    o->hr = NULL;
    if (o->upl != NULL) {
        zn_storage_upload_cancel(o->upl);
        o->upl = NULL;
    }
    set_state(s, o, O_FAILED, o->any_error ? 502 : 404);
}

static struct authc *authc_find(zn_sync_t *s, const struct obj *o)
{
    for (size_t i = 0; i < s->nauthc; i++) {
        struct authc *a = &s->authc[i];
        if (a->reg == o->reg && a->url == o->url && strcmp(a->up, o->up) == 0)
            return a;
    }
    return NULL;
}

/* Remembers o->auth for ttl_s seconds (the oldest entry makes room). */
static void authc_put(zn_sync_t *s, const struct obj *o, uint64_t ttl_s)
{
    struct authc *a = authc_find(s, o);
    if (a == NULL) {
        if (s->nauthc == AUTHC_MAX)
            memmove(&s->authc[0], &s->authc[1], (AUTHC_MAX - 1) * sizeof(s->authc[0]));
        else
            s->nauthc++;
        a = &s->authc[s->nauthc - 1];
    }
    a->reg = o->reg;
    a->url = o->url;
    memcpy(a->up, o->up, sizeof(a->up));
    memcpy(a->auth, o->auth, sizeof(a->auth));
    a->expires_ns = zn_now_mono_ns() + ttl_s * 1000000000ull;
}

static void step_start(zn_sync_t *s, struct obj *o)
{
    char url[4096];
    if (!pick_upstream(s, o)) {
        fail_fetch(s, o);
        return;
    }
    struct authc *a;
    if (o->auth[0] == '\0' && !o->tried_auth && (a = authc_find(s, o)) != NULL && a->expires_ns > zn_now_mono_ns())
        memcpy(o->auth, a->auth, sizeof(o->auth)); /* a 401 still gets a fresh token: tried_auth is unset */
    const char *base = s->sc->registries[o->reg].urls[o->url];
    bool head = o->kind == K_MANIFEST && o->head_first;
    int n = snprintf(url, sizeof(url), "%s/v2/%s/%s/%s", base, o->up, o->kind == K_BLOB ? "blobs" : "manifests", o->ref);
    if (n < 0 || n >= (int)sizeof(url) || start_http(s, o, head ? "HEAD" : "GET", url, o->auth, o->kind == K_MANIFEST) != ZN_OK) {
        o->any_error = true;
        next_upstream(o);
        return;
    }
    o->step = S_REQ;
}

/* A 401: answer its challenge. Returns false if it cannot be answered. */
static bool handle_401(zn_sync_t *s, struct obj *o)
{
    char hdr[2048], url[4096], basic[1500], want[ZN_SYNC_NAME_MAX + 32];
    zn_sync_challenge_t ch;
    const zn_sync_cred_t *cred = creds_for(s, s->sc->registries[o->reg].urls[o->url]);

    if (o->tried_auth || zn_httpc_header(o->hr, "WWW-Authenticate", hdr, sizeof(hdr)) != ZN_OK ||
        zn_sync_challenge_parse(hdr, &ch) != ZN_OK)
        return false;
    o->tried_auth = true;
    if (!zn_sync_basic_auth(cred, basic, sizeof(basic)))
        basic[0] = '\0';
    zn_httpc_release(o->hr);
    o->hr = NULL;
    if (strcmp(ch.scheme, "Basic") == 0) {
        if (basic[0] == '\0' || !fmt(o->auth, sizeof(o->auth), "%s", basic))
            return false;
        authc_put(s, o, 300);
        o->step = S_START;
        return true;
    }
    if (!fmt(want, sizeof(want), "repository:%s:pull", o->up) || !zn_sync_token_url(&ch, want, url, sizeof(url)) ||
        start_http(s, o, "GET", url, basic, false) != ZN_OK)
        return false;
    zn_buf_release(&o->body);
    zn_buf_init(&o->body, TOKEN_MAX);
    o->step = S_TOKEN;
    return true;
}

/* Reads whatever the request buffered into o->body; false if over its maximum. */
static bool drain_to_buf(struct obj *o)
{
    char chunk[16384];
    size_t n;
    while ((n = zn_httpc_read(o->hr, chunk, sizeof(chunk))) > 0)
        if (zn_buf_append(&o->body, chunk, n) != ZN_OK)
            return false;
    return true;
}

static void step_token(zn_sync_t *s, struct obj *o)
{
    zn_httpc_state_t st;
    if (!drain_to_buf(o)) {
        o->any_error = true;
        zn_httpc_release(o->hr);
        o->hr = NULL;
        next_upstream(o);
        return;
    }
    zn_httpc_poll(o->hr, &st);
    if (!st.done)
        return;
    uint64_t ttl;
    zn_httpc_release(o->hr);
    o->hr = NULL;
    if (st.err != ZN_OK || st.status != 200 || !zn_sync_token_parse(o->body.p, o->body.len, o->auth, sizeof(o->auth), &ttl)) {
        zn_log(ZN_LOG_WARN, "sync: no token from the upstream's token service", ZN_LSTR("repo", o->repo),
               ZN_LINT("status", st.status));
        o->auth[0] = '\0';
        o->any_error = true;
        next_upstream(o);
        return;
    }
    authc_put(s, o, ttl);
    o->step = S_START; /* tried_auth stays set: a second 401 moves on */
}

/* 200 to a blob GET: open the session the body goes to. */
static bool begin_blob(zn_sync_t *s, struct obj *o, const zn_httpc_state_t *st)
{
    char uuid[ZN_UUID_LEN + 1];
    uint64_t max = s->cfg->storage.max_blob_size;
    if (st->content_length != UINT64_MAX && max != 0 && st->content_length > max)
        return false;
    if (zn_storage_upload_start(s->st, o->repo, uuid, &o->upl) != ZN_OK)
        return false;
    if (zn_storage_upload_follow(o->upl, &o->rd) != ZN_OK) {
        zn_storage_upload_cancel(o->upl);
        o->upl = NULL;
        return false;
    }
    zn_mutex_lock(&s->lock);
    o->size = st->content_length;
    zn_mutex_unlock(&s->lock);
    set_state(s, o, O_STREAMING, 0);
    return true;
}

static void retry_pending(zn_sync_t *s, const char *repo);

static void end_blob(zn_sync_t *s, struct obj *o, const zn_httpc_state_t *st)
{
    zn_err_t err = st->err != ZN_OK ? ZN_EIO : ZN_OK;
    if (err == ZN_OK && o->size != UINT64_MAX && zn_storage_upload_size(o->upl) != o->size)
        err = ZN_EINVAL;
    if (err != ZN_OK) {
        zn_log(ZN_LOG_WARN, "sync: upstream blob transfer failed", ZN_LSTR("repo", o->repo), ZN_LSTR("digest", o->ref),
               ZN_LSTR("error", st->err != ZN_OK ? st->errmsg : "size differs from Content-Length"));
        o->any_error = true;
        fail_fetch(s, o);
        return;
    }
    zn_upload_t *up = o->upl;
    o->upl = NULL;
    zn_httpc_release(o->hr);
    o->hr = NULL;
    if ((err = zn_storage_upload_finish(up, &o->digest)) != ZN_OK) {
        zn_log(ZN_LOG_WARN, "sync: upstream blob not stored", ZN_LSTR("repo", o->repo), ZN_LSTR("digest", o->ref),
               ZN_LSTR("error", err == ZN_EDIGEST ? "content does not match its digest" : zn_err_str(err)));
        o->any_error = true;
        set_state(s, o, O_FAILED, 502);
        return;
    }
    set_state(s, o, O_DONE, 0);
    retry_pending(s, o->repo);
}

static void step_blob_body(zn_sync_t *s, struct obj *o)
{
    char *chunk = s->chunk;
    zn_httpc_state_t st;
    size_t n;
    bool moved = false;
    while ((n = zn_httpc_read(o->hr, chunk, CHUNK)) > 0) {
        if ((o->size != UINT64_MAX && zn_storage_upload_size(o->upl) + n > o->size) ||
            zn_storage_upload_write(o->upl, chunk, n) != ZN_OK) {
            zn_log(ZN_LOG_WARN, "sync: upstream blob larger than announced or not writable", ZN_LSTR("repo", o->repo),
                   ZN_LSTR("digest", o->ref));
            o->any_error = true;
            fail_fetch(s, o);
            return;
        }
        moved = true;
    }
    if (moved) {
        zn_mutex_lock(&s->lock);
        o->written = zn_storage_upload_size(o->upl);
        kick_locked(s, o);
        zn_mutex_unlock(&s->lock);
    }
    zn_httpc_poll(o->hr, &st);
    if (st.done && st.buffered == 0)
        end_blob(s, o, &st);
}

/* Bare media type of a Content-Type value. */
static void bare_type(const char *ct, char *out, size_t len)
{
    size_t n = strcspn(ct, "; \t");
    if (n >= len || !fmt(out, len, "%.*s", (int)n, ct))
        out[0] = '\0'; /* no usable type: storage reads mediaType from the manifest */
}

static void store_manifest(zn_sync_t *s, const char *repo, const char *tag, const zn_digest_t *d, const char *mt, const char *bytes,
                           size_t len)
{
    char detail[256];
    zn_storage_put_t res;
    const char *tags[1] = {tag};
    zn_err_t err = zn_storage_manifest_put_mirrored(s->st, repo, tags, tag != NULL ? 1 : 0, d, mt, bytes, len, &res, detail, sizeof(detail));
    if (err == ZN_OK) {
        retry_pending(s, repo);
        return;
    }
    if (err != ZN_ENOENT) {
        zn_log(ZN_LOG_WARN, "sync: upstream manifest not stored", ZN_LSTR("repo", repo), ZN_LSTR("digest", d->str),
               ZN_LSTR("error", detail));
        return;
    }
    /* references not in the store yet: retried after each fetch in this repository */
    if (s->npending == PENDING_MAX) {
        free(s->pending[0].bytes);
        memmove(&s->pending[0], &s->pending[1], (PENDING_MAX - 1) * sizeof(s->pending[0]));
        s->npending--;
    }
    struct pending *p = &s->pending[s->npending];
    if (!fmt(p->repo, sizeof(p->repo), "%s", repo) || !fmt(p->tag, sizeof(p->tag), "%s", tag != NULL ? tag : "") ||
        !fmt(p->media_type, sizeof(p->media_type), "%s", mt != NULL ? mt : ""))
        return; /* validated names always fit */
    s->npending++;
    p->digest = *d;
    p->bytes = zn_malloc(len + 1);
    memcpy(p->bytes, bytes, len);
    p->len = len;
}

static void retry_pending(zn_sync_t *s, const char *repo)
{
    for (bool progress = true; progress;) {
        progress = false;
        for (size_t i = 0; i < s->npending; i++) {
            struct pending *p = &s->pending[i];
            char detail[256];
            zn_storage_put_t res;
            const char *tags[1] = {p->tag};
            if (strcmp(p->repo, repo) != 0)
                continue;
            zn_err_t err = zn_storage_manifest_put_mirrored(s->st, repo, tags, p->tag[0] != '\0' ? 1 : 0, &p->digest, p->media_type,
                                                            p->bytes, p->len, &res, detail, sizeof(detail));
            if (err == ZN_ENOENT)
                continue;
            free(p->bytes);
            s->pending[i] = s->pending[--s->npending];
            progress = true;
            break;
        }
    }
}

static uint64_t check_interval(zn_sync_t *s, const char *repo);
static struct checked *checked_locked(zn_sync_t *s, const char *repo, const char *tag);

static void end_manifest(zn_sync_t *s, struct obj *o, const zn_httpc_state_t *st)
{
    char ct[ZN_MEDIA_TYPE_MAX + 64], dcd[ZN_DIGEST_STR_MAX + 8];
    zn_digest_t got, theirs;
    bool has_dcd = zn_httpc_header(o->hr, "Docker-Content-Digest", dcd, sizeof(dcd)) == ZN_OK &&
                   zn_digest_parse(zn_slice(dcd, strlen(dcd)), &theirs) == ZN_OK;
    if (o->head_first) {
        zn_httpc_release(o->hr);
        o->hr = NULL;
        if (has_dcd && zn_digest_eq(&theirs, &o->local)) {
            zn_mutex_lock(&s->lock);
            o->unchanged = true;
            s->stats.manifest_revalidated++;
            zn_mutex_unlock(&s->lock);
            set_state(s, o, O_DONE, 0);
            return;
        }
        o->head_first = false; /* changed (or no digest given): fetch it */
        o->step = S_START;
        return;
    }
    if (zn_httpc_header(o->hr, "Content-Type", ct, sizeof(ct)) != ZN_OK)
        ct[0] = '\0';
    zn_httpc_release(o->hr);
    o->hr = NULL;
    zn_digest_of(o->by_digest ? o->digest.algo : (has_dcd ? theirs.algo : ZN_DIGEST_SHA256), o->body.p != NULL ? o->body.p : "",
                 o->body.len, &got);
    if ((o->by_digest && !zn_digest_eq(&got, &o->digest)) || (has_dcd && !zn_digest_eq(&got, &theirs))) {
        zn_log(ZN_LOG_WARN, "sync: upstream manifest does not match its digest", ZN_LSTR("repo", o->repo), ZN_LSTR("ref", o->ref));
        o->any_error = true;
        next_upstream(o);
        return;
    }
    o->len = o->body.len;
    o->bytes = zn_buf_detach(&o->body, NULL);
    if (o->bytes == NULL)
        o->bytes = zn_strdup("");
    o->mdigest = got;
    bare_type(ct, o->media_type, sizeof(o->media_type));
    store_manifest(s, o->repo, o->by_digest ? NULL : o->ref, &got, o->media_type[0] != '\0' ? o->media_type : NULL, o->bytes,
                   o->len);
    if (!o->by_digest && check_interval(s, o->repo) != 0) {
        /* just fetched: the interval to the next upstream check starts now */
        zn_mutex_lock(&s->lock);
        struct checked *ck = checked_locked(s, o->repo, o->ref);
        if (ck != NULL)
            ck->at_ns = zn_now_mono_ns();
        zn_mutex_unlock(&s->lock);
    }
    set_state(s, o, O_DONE, 0);
}

static void step_req(zn_sync_t *s, struct obj *o)
{
    zn_httpc_state_t st;
    zn_httpc_poll(o->hr, &st);
    if (!st.headers)
        return;
    if (st.status == 401 && !st.done)
        return; /* let the (small) error body finish, then answer the challenge */
    if (st.status == 401) {
        if (!handle_401(s, o)) {
            zn_httpc_release(o->hr);
            o->hr = NULL;
            o->any_error = true;
            next_upstream(o);
        }
        return;
    }
    if (st.err != ZN_OK || st.status != 200) {
        if (st.err != ZN_OK || st.status != 404)
            o->any_error = true;
        if (st.err != ZN_OK)
            zn_log(ZN_LOG_WARN, "sync: upstream unreachable", ZN_LSTR("url", s->sc->registries[o->reg].urls[o->url]),
                   ZN_LSTR("error", st.errmsg));
        zn_httpc_release(o->hr);
        o->hr = NULL;
        next_upstream(o);
        return;
    }
    if (o->kind == K_BLOB) {
        if (!begin_blob(s, o, &st)) {
            o->any_error = true;
            zn_httpc_release(o->hr);
            o->hr = NULL;
            next_upstream(o);
            return;
        }
        o->step = S_BODY;
        step_blob_body(s, o);
        return;
    }
    zn_buf_release(&o->body);
    zn_buf_init(&o->body, s->cfg->storage.max_manifest_size);
    o->step = S_BODY;
}

static void step_manifest_body(zn_sync_t *s, struct obj *o)
{
    zn_httpc_state_t st;
    if (!drain_to_buf(o)) {
        zn_log(ZN_LOG_WARN, "sync: upstream manifest too large", ZN_LSTR("repo", o->repo), ZN_LSTR("ref", o->ref));
        zn_httpc_release(o->hr);
        o->hr = NULL;
        o->any_error = true;
        next_upstream(o);
        return;
    }
    zn_httpc_poll(o->hr, &st);
    if (!st.done || st.buffered != 0)
        return;
    if (st.err != ZN_OK) {
        zn_httpc_release(o->hr);
        o->hr = NULL;
        o->any_error = true;
        next_upstream(o);
        return;
    }
    end_manifest(s, o, &st);
}

/* Advances o as far as it can go now; false once it is finished. */
static bool step(zn_sync_t *s, struct obj *o)
{
    for (int guard = 0; guard < 16; guard++) {
        int before = o->step;
        zn_mutex_lock(&s->lock);
        int state = o->state;
        zn_mutex_unlock(&s->lock);
        if (state == O_DONE || state == O_FAILED)
            return false;
        switch (o->step) {
        case S_START:
            step_start(s, o);
            break;
        case S_REQ:
            step_req(s, o);
            break;
        case S_TOKEN:
            step_token(s, o);
            break;
        case S_BODY:
            if (o->kind == K_BLOB)
                step_blob_body(s, o);
            else if (o->head_first) {
                zn_httpc_state_t st;
                zn_httpc_poll(o->hr, &st);
                if (st.done)
                    end_manifest(s, o, &st);
            } else
                step_manifest_body(s, o);
            break;
        }
        zn_mutex_lock(&s->lock);
        state = o->state;
        zn_mutex_unlock(&s->lock);
        if (state == O_DONE || state == O_FAILED)
            return false;
        if (o->step == before && o->step != S_START)
            return true; /* waiting for the network */
    }
    return true;
}

static void *ctl_main(void *arg)
{
    zn_sync_t *s = arg;
    struct obj *active = NULL;
    for (;;) {
        zn_mutex_lock(&s->lock);
        while (!s->wake && !s->stop) {
            zn_thread_set_state(zn_thread_self(), ZN_THREAD_IDLE);
            zn_cond_wait(&s->wake_cv, &s->lock);
        }
        zn_thread_set_state(zn_thread_self(), ZN_THREAD_RUNNING);
        s->wake = false;
        bool stop = s->stop;
        while (s->fresh != NULL) {
            struct obj *o = s->fresh;
            s->fresh = o->next_active;
            o->next_active = active;
            active = o;
        }
        zn_mutex_unlock(&s->lock);
        for (struct obj **p = &active; *p != NULL;) {
            struct obj *o = *p;
            zn_mutex_lock(&s->lock);
            bool finished = o->state == O_DONE || o->state == O_FAILED;
            zn_mutex_unlock(&s->lock);
            if (stop && !finished) {
                o->any_error = true;
                fail_fetch(s, o);
            }
            if (stop || !step(s, o)) {
                *p = o->next_active;
                unref(s, o); /* the control thread's */
                continue;
            }
            p = &o->next_active;
        }
        if (stop)
            break;
    }
    return NULL;
}

/* Worker: the fetch for (kind, repo, ref), joined or started; a reference for the caller. */
static struct obj *obj_get(zn_sync_t *s, int kind, const char *repo, const char *ref, bool by_digest, const zn_digest_t *d,
                           const zn_storage_manifest_t *local, int widx)
{
    zn_mutex_lock(&s->lock);
    struct obj *o;
    for (o = s->objs; o != NULL; o = o->next)
        if (o->kind == kind && strcmp(o->repo, repo) == 0 && strcmp(o->ref, ref) == 0)
            break;
    if (o == NULL) {
        o = zn_calloc(1, sizeof(*o));
        o->kind = kind;
        /* repo and ref were validated by the router: they fit (checked all the same) */
        if (!fmt(o->repo, sizeof(o->repo), "%s", repo) || !fmt(o->ref, sizeof(o->ref), "%s", ref)) {
            zn_mutex_unlock(&s->lock);
            free(o);
            return NULL;
        }
        o->by_digest = by_digest;
        if (d != NULL)
            o->digest = *d;
        if (local != NULL) {
            o->revalidate = o->head_first = true;
            o->local = local->digest;
        }
        o->size = UINT64_MAX;
        zn_buf_init(&o->body, 1);
        o->refs = 2; /* table + control thread */
        o->next = s->objs;
        s->objs = o;
        o->next_active = s->fresh;
        s->fresh = o;
        s->wake = true;
        zn_cond_signal(&s->wake_cv);
        kind == K_BLOB ? s->stats.blob_misses++ : s->stats.manifest_misses++;
    }
    o->refs++;
    o->kick_mask |= 1ull << widx;
    zn_mutex_unlock(&s->lock);
    return o;
}

/* ---- worker side ------------------------------------------------------------------------------- */

struct waiter {
    h2o_generator_t gen;
    h2o_linklist_t link;
    h2o_req_t *req;
    zn_sync_t *s;
    struct obj *o;
    bool started, blocked, head;
    uint64_t sent, end; /* blob: next byte to send, one past the last (UINT64_MAX: the upstream's end) */
    char *buf;
    zn_storage_manifest_t local; /* revalidation: the stored copy (bytes in the pool) */
    bool has_local;
};

static void waiter_end(struct waiter *w)
{
    if (h2o_linklist_is_linked(&w->link))
        h2o_linklist_unlink(&w->link);
    if (w->o != NULL) {
        unref(w->s, w->o);
        w->o = NULL;
    }
}

static void on_waiter_dispose(void *p)
{
    waiter_end(p);
}

static void on_gen_stop(h2o_generator_t *g, h2o_req_t *req)
{
    waiter_end((struct waiter *)g);
}

static void blob_step(struct waiter *w);

static void on_gen_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    struct waiter *w = (void *)g;
    w->blocked = true;
    blob_step(w);
}

/* The response headers for a blob whose fetch has begun (size: the upstream's Content-Length,
 * UINT64_MAX unknown, written bytes so far). A Range is answered 206 (416 when it cannot be
 * satisfied, sent here); w->sent and w->end become the bytes to send. false when it sent an
 * answer or must wait (an unknown size settles a Range only at the end). */
static bool blob_headers(struct waiter *w, int state, uint64_t size, uint64_t written)
{
    h2o_req_t *req = w->req;
    zn_slice_t range = zn_api_header(req, H2O_TOKEN_RANGE);
    if (range.p != NULL && size == UINT64_MAX) {
        if (state != O_DONE)
            return false;
        size = written;
    }
    w->end = size;
    if (range.p != NULL) {
        zn_api_range_t r;
        if (zn_api_range_parse(range, size, &r) != ZN_OK) {
            waiter_end(w);
            zn_api_header_addf(req, "content-range", "bytes */%llu", (unsigned long long)size);
            zn_api_send_error(req, ZN_OCI_RANGE_INVALID, NULL);
            return false;
        }
        req->res.status = 206;
        req->res.reason = "Partial Content";
        zn_api_header_addf(req, "content-range", "bytes %llu-%llu/%llu", (unsigned long long)r.first, (unsigned long long)r.last,
                           (unsigned long long)size);
        req->res.content_length = r.last - r.first + 1;
        w->sent = r.first;
        w->end = r.last + 1;
    } else {
        req->res.status = 200;
        req->res.reason = "OK";
        req->res.content_length = size != UINT64_MAX ? size : SIZE_MAX;
    }
    zn_api_header_add(req, H2O_TOKEN_CONTENT_TYPE, "application/octet-stream");
    zn_api_header_add(req, H2O_TOKEN_ACCEPT_RANGES, "bytes");
    zn_api_header_add_str(req, "docker-content-digest", w->o->digest.str);
    return true;
}

/* Sends what the fetch has written beyond what this client got (up to its range's end),
 * holding back the last byte until the blob is verified. */
static void blob_step(struct waiter *w)
{
    zn_sync_t *s = w->s;
    struct obj *o = w->o;
    if (o == NULL)
        return;
    zn_mutex_lock(&s->lock);
    int state = o->state, fail = o->fail_status;
    uint64_t size = o->size, written = o->written;
    zn_mutex_unlock(&s->lock);
    if (!w->started) {
        if (state == O_PENDING || (size == 0 && state == O_STREAMING))
            return; /* an empty blob still needs its verification */
        if (state == O_FAILED) {
            waiter_end(w);
            zn_api_send_error_status(w->req, fail, ZN_OCI_BLOB_UNKNOWN,
                                     fail == 404 ? "not found upstream" : "upstream unreachable or its answer was refused");
            return;
        }
        if (!blob_headers(w, state, size, written))
            return;
        if (w->head || w->end == w->sent) {
            waiter_end(w);
            h2o_send_inline(w->req, "", 0);
            return;
        }
        w->started = true;
        w->blocked = true;
        w->gen.proceed = on_gen_proceed;
        w->gen.stop = on_gen_stop;
        w->buf = h2o_mem_alloc_pool(&w->req->pool, CHUNK);
        h2o_start_response(w->req, &w->gen);
    }
    if (!w->blocked)
        return;
    if (state == O_FAILED) {
        waiter_end(w);
        h2o_send(w->req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    uint64_t end = w->end == UINT64_MAX && state == O_DONE ? written : w->end;
    uint64_t upto = written < end ? written : end;
    uint64_t avail = upto > w->sent ? upto - w->sent : 0;
    if (state != O_DONE && avail > 0 && w->sent + avail >= end)
        avail = end - 1 - w->sent; /* the last byte waits for the digest check */
    if (avail == 0 && !(state == O_DONE && w->sent == end))
        return;
    size_t want = avail < CHUNK ? (size_t)avail : CHUNK;
    size_t r = 0;
    if (want > 0) {
        zn_err_t rerr = zn_storage_blob_read(o->rd, w->sent, w->buf, want, &r);
        if (rerr != ZN_OK || r == 0) {
            zn_log(ZN_LOG_ERROR, "sync: cannot read the blob being fetched", ZN_LSTR("error", rerr != ZN_OK ? zn_err_str(rerr) : "short"));
            waiter_end(w);
            h2o_send(w->req, NULL, 0, H2O_SEND_STATE_ERROR);
            return;
        }
    }
    w->sent += r;
    bool final = state == O_DONE && w->sent == end;
    h2o_iovec_t vec = h2o_iovec_init(w->buf, r);
    w->blocked = false;
    if (final)
        waiter_end(w);
    h2o_send(w->req, &vec, 1, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void send_manifest(h2o_req_t *req, const zn_digest_t *d, const char *mt, const char *bytes, size_t len, bool head)
{
    zn_api_header_add_str(req, "docker-content-digest", d->str);
    zn_api_header_addf(req, "etag", "\"%s\"", d->str);
    zn_api_send_body(req, 200, mt, head ? NULL : bytes, len);
}

static void manifest_step(struct waiter *w)
{
    zn_sync_t *s = w->s;
    struct obj *o = w->o;
    zn_mutex_lock(&s->lock);
    int state = o->state, fail = o->fail_status;
    bool unchanged = o->unchanged;
    zn_mutex_unlock(&s->lock);
    if (state != O_DONE && state != O_FAILED)
        return;
    h2o_req_t *req = w->req;
    if (w->has_local && (unchanged || state == O_FAILED)) {
        /* unchanged upstream, or upstream unreachable: serve the cached copy */
        waiter_end(w);
        send_manifest(req, &w->local.digest, w->local.media_type, w->local.bytes, (size_t)w->local.size, w->head);
        return;
    }
    if (state == O_FAILED) {
        waiter_end(w);
        zn_api_send_error_status(req, fail, ZN_OCI_MANIFEST_UNKNOWN,
                                 fail == 404 ? "not found upstream" : "upstream unreachable or its answer was refused");
        return;
    }
    if (unchanged) {
        /* joined a revalidation without a local copy of our own: the store has it */
        zn_storage_manifest_t m;
        zn_err_t err = zn_storage_manifest_get(s->st, o->repo, o->ref, !w->head, &m);
        waiter_end(w);
        if (err != ZN_OK) {
            zn_api_send_error(req, ZN_OCI_MANIFEST_UNKNOWN, NULL);
            return;
        }
        send_manifest(req, &m.digest, m.media_type, m.bytes, (size_t)m.size, w->head);
        zn_storage_manifest_release(&m);
        return;
    }
    const char *mt = o->media_type[0] != '\0' ? o->media_type : "application/vnd.oci.image.manifest.v1+json";
    /* o->bytes stays alive while we hold our reference; send_body copies it */
    send_manifest(req, &o->mdigest, mt, o->bytes, o->len, w->head);
    waiter_end(w);
}

static void on_kick(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    struct wctx *wc = H2O_STRUCT_FROM_MEMBER(struct wctx, recv, recv);
    while (!h2o_linklist_is_empty(messages))
        h2o_linklist_unlink(messages->next);
    atomic_store(&wc->queued, 0);
    /* a step may end its waiter (unlinking it): walk with the next one saved */
    for (h2o_linklist_t *l = wc->waiters.next, *next; l != &wc->waiters; l = next) {
        next = l->next;
        struct waiter *w = H2O_STRUCT_FROM_MEMBER(struct waiter, link, l);
        if (w->o != NULL && w->o->kind == K_BLOB)
            blob_step(w);
        else if (w->o != NULL)
            manifest_step(w);
    }
}

/* This worker's context, registered on its h2o queue on first use. NULL past WORKERS_MAX. */
static struct wctx *worker_ctx(zn_sync_t *s, h2o_req_t *req)
{
    if (tls_wctx != NULL && tls_wctx->s == s)
        return tls_wctx;
    zn_mutex_lock(&s->lock);
    if (s->nwctx == WORKERS_MAX) {
        zn_mutex_unlock(&s->lock);
        return NULL;
    }
    struct wctx *wc = zn_calloc(1, sizeof(*wc));
    wc->s = s;
    wc->idx = s->nwctx;
    s->wctx[s->nwctx++] = wc;
    zn_mutex_unlock(&s->lock);
    h2o_linklist_init_anchor(&wc->waiters);
    h2o_multithread_register_receiver(req->conn->ctx->queue, &wc->recv, on_kick);
    tls_wctx = wc;
    return wc;
}

static struct waiter *waiter_new(zn_sync_t *s, h2o_req_t *req, struct wctx *wc)
{
    struct waiter *w = h2o_mem_alloc_shared(&req->pool, sizeof(*w), on_waiter_dispose);
    memset(w, 0, sizeof(*w));
    w->req = req;
    w->s = s;
    w->head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    h2o_linklist_insert(&wc->waiters, &w->link);
    return w;
}

/* Some onDemand registry covers repo (and tag, when given). */
static bool covered(zn_sync_t *s, const char *repo, const char *tag)
{
    char up[ZN_SYNC_NAME_MAX + 1];
    const zn_config_sync_content_t *c;
    for (size_t i = 0; i < s->sc->nregistries; i++) {
        const zn_config_sync_registry_t *r = &s->sc->registries[i];
        if (r->on_demand && zn_sync_upstream_name(r, repo, up, sizeof(up), &c) == ZN_OK &&
            (tag == NULL || zn_sync_tag_allowed(c, tag)))
            return true;
    }
    return false;
}

int zn_sync_blob_miss(zn_sync_t *s, h2o_req_t *req, const char *repo, const zn_digest_t *d)
{
    struct wctx *wc;
    if (!covered(s, repo, NULL) || (wc = worker_ctx(s, req)) == NULL)
        return -1;
    struct waiter *w = waiter_new(s, req, wc);
    if ((w->o = obj_get(s, K_BLOB, repo, d->str, true, d, NULL, wc->idx)) == NULL) {
        waiter_end(w);
        return -1;
    }
    blob_step(w);
    return 0;
}

void zn_sync_blob_hit(zn_sync_t *s, const char *repo)
{
    if (!covered(s, repo, NULL))
        return;
    zn_mutex_lock(&s->lock);
    s->stats.blob_hits++;
    zn_mutex_unlock(&s->lock);
}

/* manifestCheckInterval of the first onDemand registry with a non-zero one that covers repo
 * (0 = its tags are never re-checked). */
static uint64_t check_interval(zn_sync_t *s, const char *repo)
{
    char up[ZN_SYNC_NAME_MAX + 1];
    const zn_config_sync_content_t *c;
    for (size_t i = 0; i < s->sc->nregistries; i++) {
        const zn_config_sync_registry_t *r = &s->sc->registries[i];
        if (r->on_demand && r->manifest_check_interval_ns != 0 && zn_sync_upstream_name(r, repo, up, sizeof(up), &c) == ZN_OK)
            return r->manifest_check_interval_ns;
    }
    return 0;
}

/* The revalidation entry of repo:tag, created (checked at 0: never) when missing. NULL when
 * the key does not fit. Lock held. */
static struct checked *checked_locked(zn_sync_t *s, const char *repo, const char *tag)
{
    char key[sizeof(((struct checked *)0)->key)];
    if (snprintf(key, sizeof(key), "%s:%s", repo, tag) >= (int)sizeof(key))
        return NULL;
    for (size_t i = 0; i < s->nchecked; i++)
        if (strcmp(s->checked[i].key, key) == 0)
            return &s->checked[i];
    s->checked = zn_realloc(s->checked, (s->nchecked + 1) * sizeof(*s->checked));
    struct checked *c = &s->checked[s->nchecked++];
    memcpy(c->key, key, sizeof(key));
    c->at_ns = 0;
    return c;
}

/* A tag whose last upstream check (or fetch) is older than the registry's
 * manifestCheckInterval; marks it checked now. Lock held. */
static bool due_locked(zn_sync_t *s, const char *repo, const char *tag)
{
    uint64_t interval = check_interval(s, repo), now = zn_now_mono_ns();
    struct checked *ck;
    if (interval == 0 || (ck = checked_locked(s, repo, tag)) == NULL)
        return false;
    if (ck->at_ns != 0 && now - ck->at_ns < interval)
        return false;
    ck->at_ns = now;
    return true;
}

int zn_sync_manifest(zn_sync_t *s, h2o_req_t *req, const char *repo, const char *ref, bool by_digest,
                     const zn_storage_manifest_t *local)
{
    struct wctx *wc;
    if (!covered(s, repo, by_digest ? NULL : ref))
        return -1;
    if (local != NULL) {
        zn_mutex_lock(&s->lock);
        bool due = !by_digest && due_locked(s, repo, ref);
        if (!due)
            s->stats.manifest_hits++;
        zn_mutex_unlock(&s->lock);
        if (!due)
            return -1;
    }
    if ((wc = worker_ctx(s, req)) == NULL)
        return -1;
    struct waiter *w = waiter_new(s, req, wc);
    zn_digest_t d;
    bool have_d = by_digest && zn_digest_parse(zn_slice(ref, strlen(ref)), &d) == ZN_OK;
    if (local != NULL) {
        w->has_local = true;
        w->local = *local;
        w->local.bytes = local->bytes != NULL ? h2o_strdup(&req->pool, local->bytes, (size_t)local->size).base : NULL;
    }
    if ((w->o = obj_get(s, K_MANIFEST, repo, ref, by_digest, have_d ? &d : NULL, local, wc->idx)) == NULL) {
        waiter_end(w);
        return -1;
    }
    manifest_step(w);
    return 0;
}

void zn_sync_stats(zn_sync_t *s, zn_sync_stats_t *out)
{
    zn_mutex_lock(&s->lock);
    *out = s->stats;
    zn_mutex_unlock(&s->lock);
    zn_sync_poll_stats(s->poll, out);
}

/* ---- lifecycle ------------------------------------------------------------------------------------ */

static zn_err_t load_creds(zn_sync_t *s, const char *path, char *err, size_t errlen)
{
    zn_buf_t b;
    zn_err_t e = zn_file_read(path, 1u << 20, &b, NULL);
    if (e != ZN_OK) {
        zn_errf(err, errlen, "extensions.sync.credentialsFile: %s: %s", path, e == ZN_ETOOBIG ? "larger than 1 MiB" : strerror(errno));
        return e;
    }
    e = zn_sync_creds_parse(path, b.p, b.len, &s->creds, err, errlen);
    zn_buf_release(&b);
    return e;
}

zn_err_t zn_sync_new(const zn_config_t *cfg, zn_storage_t *st, zn_sync_t **out, char *err, size_t errlen)
{
    const zn_config_sync_t *sc = cfg->extensions.sync;
    bool any = false;
    zn_err_t e;

    *out = NULL;
    for (size_t i = 0; sc != NULL && sc->enable && i < sc->nregistries; i++)
        any = any || sc->registries[i].on_demand || sc->registries[i].poll_interval_ns > 0;
    if (!any)
        return ZN_OK;
    zn_sync_t *s = zn_calloc(1, sizeof(*s));
    s->cfg = cfg;
    s->sc = sc;
    s->st = st;
    zn_mutex_init(&s->lock, "sync fetches");
    zn_cond_init(&s->wake_cv);
    s->tls = zn_calloc(sc->nregistries, sizeof(*s->tls));
    s->chunk = zn_malloc(CHUNK);
    if (sc->credentials_file != NULL && (e = load_creds(s, sc->credentials_file, err, errlen)) != ZN_OK)
        goto fail;
    for (size_t i = 0; i < sc->nregistries; i++) {
        char msg[256];
        const zn_config_sync_registry_t *r = &sc->registries[i];
        if ((e = zn_httpc_tls_new(r->tls_verify, r->cert_dir, &s->tls[i], msg, sizeof(msg))) != ZN_OK) {
            zn_errf(err, errlen, "extensions.sync.registries[%zu].certDir: %s", i, msg);
            goto fail;
        }
    }
    if ((e = zn_httpc_new("sync-http", &s->http)) != ZN_OK) {
        zn_errf(err, errlen, "extensions.sync: cannot start the HTTP client");
        goto fail;
    }
    if (zn_thread_create(&s->thread, "sync-ondemand", ctl_main, s) != 0) {
        zn_errf(err, errlen, "extensions.sync: cannot start its thread");
        e = ZN_EIO;
        goto fail;
    }
    s->started = true;
    if ((e = zn_sync_poll_new(cfg, st, &s->creds, s->tls, s->http, &s->poll, err, errlen)) != ZN_OK)
        goto fail;
    *out = s;
    return ZN_OK;
fail:
    zn_sync_free(s);
    return e;
}

void zn_sync_free(zn_sync_t *s)
{
    if (s == NULL)
        return;
    zn_sync_poll_free(s->poll); /* before the client and settings it borrows */
    if (s->started) {
        zn_mutex_lock(&s->lock);
        s->stop = true;
        zn_cond_signal(&s->wake_cv);
        zn_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
    }
    zn_httpc_free(s->http);
    for (size_t i = 0; s->tls != NULL && i < s->sc->nregistries; i++)
        zn_httpc_tls_free(s->tls[i]);
    free(s->tls);
    for (size_t i = 0; i < s->npending; i++)
        free(s->pending[i].bytes);
    while (s->objs != NULL) {
        struct obj *o = s->objs;
        s->objs = o->next;
        obj_free(o);
    }
    for (int i = 0; i < s->nwctx; i++)
        free(s->wctx[i]);
    free(s->checked);
    free(s->chunk);
    zn_sync_creds_release(&s->creds);
    zn_cond_destroy(&s->wake_cv);
    zn_mutex_destroy(&s->lock);
    free(s);
}
