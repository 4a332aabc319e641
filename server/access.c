/*
 * server/access.c - authentication and authorization of each request (docs/zot.md §2-3),
 * on top of auth/.
 *
 * Per request: health routes skip everything. With htpasswd on, the Authorization header
 * is parsed: two of them, a malformed one or wrong credentials get the authentication 401;
 * none means anonymous if some anonymousPolicy allows that, else the same 401. A Bearer
 * token from server/token.c stands for the identity it names (checked with one HMAC, no
 * pool); an anonymous Docker ping in mixed mode gets token.c's Bearer challenge. Credentials
 * found in auth's cache pass at once. Others are verified on a small pool of threads -
 * bcrypt costs milliseconds and must not stall the worker's other connections - and the
 * request resumes on its own worker when the answer is posted back. Then the route's rule:
 * admin routes (pprof) need an admin, the metrics route what accessControl.metrics grants,
 * repository routes the row's action on the repository, anything else (/v2/, the catalog)
 * only the authentication; handlers ask ctx->can for decisions that depend on state.
 *
 * Refusals wait http.auth.failDelay seconds on an h2o timer - before every authorization
 * 401/403, before an authentication 401 only when credentials were sent (zot) - so a slow
 * answer never holds the worker.
 *
 * Per-worker state (the queue verification results come back on, the delay timer) is made
 * on first use on the worker's own thread and kept thread-local; it lives as long as the
 * worker. One server per process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <h2o.h>

#include "api/api.h"
#include "auth/auth.h"
#include "server/server_int.h"

#define VERIFY_QUEUE_MAX 1024
#define VERIFY_THREADS_MAX 8

typedef enum { DENY_AUTHN_401, DENY_AUTHZ_401, DENY_AUTHZ_403 } deny_t;

struct zn_access {
    zn_auth_t *auth;
    zn_token_t *token;          /* bearer tokens, NULL without authentication */
    h2o_iovec_t base_challenge; /* "basic realm=<realm>" for 200s on /v2/ */
    zn_mutex_t lock;            /* guards jobs, njobs, stopping */
    zn_cond_t cond;
    h2o_linklist_t jobs;
    size_t njobs;
    bool stopping;
    pthread_t threads[VERIFY_THREADS_MAX];
    int nthreads;
};

typedef struct job_anchor job_anchor_t;

/* One credential check handed to the pool. The pool thread touches only creds and result;
 * the rest belongs to the worker thread, and req turns NULL if the request is disposed
 * (client gone) before the answer is back. */
typedef struct verify_job {
    h2o_linklist_t link;
    h2o_multithread_message_t msg;
    h2o_multithread_receiver_t *receiver;
    zn_access_t *access;
    zn_auth_creds_t creds;
    zn_auth_status_t result;
    h2o_req_t *req;
    const zn_route_def_t *def;
    zn_reqctx_t *ctx;
    const char *user; /* in req's pool */
    job_anchor_t *anchor;
} verify_job_t;

/* Lives in the request's pool; its dispose tells a pending job that the request is gone. */
struct job_anchor {
    verify_job_t *job;
};

typedef struct worker_state {
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t receiver;
    h2o_timeout_t delay; /* initialised when failDelay is set */
} worker_state_t;

static __thread worker_state_t *tls_state;

static void on_verified(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);

/* ---- answers ------------------------------------------------------------------------------ */

#define AUTHN_ERROR                                                                                                        \
    "{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\",\"detail\":{\"description\":\"The access "         \
    "controller was unable to authenticate the client. Often this will be accompanied by a WWW-Authenticate HTTP "         \
    "response header indicating how to authenticate.\"}}"

/* zot's bodies, byte for byte: the authentication 401 is a single object, not a list. */
static const h2o_iovec_t deny_bodies[] = {
    [DENY_AUTHN_401] = {H2O_STRLIT(AUTHN_ERROR)},
    [DENY_AUTHZ_401] = {H2O_STRLIT("{\"errors\":[" AUTHN_ERROR "]}")},
    [DENY_AUTHZ_403] = {H2O_STRLIT("{\"errors\":[{\"code\":\"DENIED\",\"message\":\"requested access to the resource is "
                                   "denied\",\"detail\":{\"description\":\"The access controller denied access for the "
                                   "operation on a resource.\"}}]}")},
};

static void send_refusal(h2o_req_t *req, deny_t kind, h2o_iovec_t challenge)
{
    req->res.status = kind == DENY_AUTHZ_403 ? 403 : 401;
    req->res.reason = kind == DENY_AUTHZ_403 ? "Forbidden" : "Unauthorized";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, challenge.base, challenge.len);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    req->res.content_length = deny_bodies[kind].len;
    h2o_send_inline(req, deny_bodies[kind].base, deny_bodies[kind].len);
}

static void send_deny(zn_access_t *a, h2o_req_t *req, deny_t kind)
{
    const char *challenge = zn_auth_challenge(a->auth);
    send_refusal(req, kind, h2o_iovec_init(challenge, strlen(challenge)));
}

typedef struct delayed_deny {
    h2o_timeout_entry_t entry;
    h2o_req_t *req;
    zn_access_t *access;
    deny_t kind;
} delayed_deny_t;

static void on_delay_dispose(void *p)
{
    delayed_deny_t *d = p;
    if (h2o_timeout_is_linked(&d->entry))
        h2o_timeout_unlink(&d->entry);
}

static void on_delay(h2o_timeout_entry_t *entry)
{
    delayed_deny_t *d = H2O_STRUCT_FROM_MEMBER(delayed_deny_t, entry, entry);
    send_deny(d->access, d->req, d->kind);
}

static worker_state_t *worker_state(zn_access_t *a, h2o_req_t *req)
{
    if (tls_state == NULL) {
        h2o_loop_t *loop = req->conn->ctx->loop;
        worker_state_t *w = zn_calloc(1, sizeof(*w));
        w->queue = h2o_multithread_create_queue(loop);
        h2o_multithread_register_receiver(w->queue, &w->receiver, on_verified);
        uint64_t ms = zn_auth_fail_delay_ms(a->auth);
        if (ms != 0)
            h2o_timeout_init(loop, &w->delay, ms);
        tls_state = w;
    }
    return tls_state;
}

/* Refuse, after failDelay when `delayed` (a timer, never a sleep). */
static void deny(zn_access_t *a, h2o_req_t *req, deny_t kind, bool delayed)
{
    if (!delayed || zn_auth_fail_delay_ms(a->auth) == 0) {
        send_deny(a, req, kind);
        return;
    }
    worker_state_t *w = worker_state(a, req);
    delayed_deny_t *d = h2o_mem_alloc_shared(&req->pool, sizeof(*d), on_delay_dispose);
    memset(d, 0, sizeof(*d));
    d->entry.cb = on_delay;
    d->req = req;
    d->access = a;
    d->kind = kind;
    h2o_timeout_link(req->conn->ctx->loop, &w->delay, &d->entry);
}

/* ---- authorization -------------------------------------------------------------------------- */

static bool can_cb(zn_reqctx_t *ctx, const char *repo, unsigned action)
{
    zn_access_t *a = ctx->authz;
    return zn_auth_can(a->auth, ctx->user, repo, action);
}

/* The route's rule for an authenticated (or anonymous) caller; refuses itself if not met. */
static bool authorize(zn_access_t *a, h2o_req_t *req, const zn_route_def_t *def, zn_reqctx_t *ctx)
{
    zn_authz_t d = ZN_AUTHZ_ALLOW;

    if (def->flags & ZN_ROUTE_ADMIN) {
        d = zn_auth_authorize_admin(a->auth, ctx->user);
    } else if (def->flags & ZN_ROUTE_METRICS) {
        d = zn_auth_authorize_metrics(a->auth, ctx->user);
    } else if (def->action != 0 && def->repo_param >= 0 && def->repo_param < ctx->nparams) {
        zn_slice_t name = ctx->params[def->repo_param];
        /* the raw path never holds a NUL (h2o refuses it), but a C string must not be cut */
        const char *repo = memchr(name.p, '\0', name.n) == NULL ? h2o_strdup(&req->pool, name.p, name.n).base : NULL;
        d = repo != NULL ? zn_auth_authorize(a->auth, ctx->user, repo, def->action)
                         : (ctx->user == NULL ? ZN_AUTHZ_CHALLENGE : ZN_AUTHZ_DENY);
    }
    if (d == ZN_AUTHZ_ALLOW)
        return true;
    deny(a, req, d == ZN_AUTHZ_CHALLENGE ? DENY_AUTHZ_401 : DENY_AUTHZ_403, true);
    return false;
}

static void set_user(zn_access_t *a, zn_reqctx_t *ctx, const char *user)
{
    ctx->user = user;
    ctx->is_admin = zn_auth_is_admin(a->auth, user);
}

/* A client-chosen user name goes to the log only if it is printable ASCII. */
static const char *loggable(const char *user)
{
    for (const char *p = user; p != NULL && *p != '\0'; p++)
        if (*p < 0x20 || *p > 0x7e)
            return NULL;
    return user;
}

static void authn_failed(zn_access_t *a, h2o_req_t *req, const char *user)
{
    /* the user name helps an operator; the password and the header never reach the log */
    zn_log(ZN_LOG_INFO, "authentication failed", ZN_LSTR("user", loggable(user)));
    deny(a, req, DENY_AUTHN_401, true);
}

/* ---- verification pool ------------------------------------------------------------------------ */

static void *verify_main(void *arg)
{
    zn_access_t *a = arg;

    zn_mutex_lock(&a->lock);
    for (;;) {
        while (!a->stopping && h2o_linklist_is_empty(&a->jobs))
            zn_cond_wait(&a->cond, &a->lock);
        if (a->stopping)
            break;
        verify_job_t *job = H2O_STRUCT_FROM_MEMBER(verify_job_t, link, a->jobs.next);
        h2o_linklist_unlink(&job->link);
        a->njobs--;
        zn_mutex_unlock(&a->lock);
        job->result = zn_auth_verify(a->auth, &job->creds);
        zn_auth_creds_wipe(&job->creds);
        h2o_multithread_send_message(job->receiver, &job->msg);
        zn_mutex_lock(&a->lock);
    }
    zn_mutex_unlock(&a->lock);
    return NULL;
}

static void on_job_req_dispose(void *p)
{
    job_anchor_t *anchor = p;
    if (anchor->job != NULL)
        anchor->job->req = NULL;
}

/* Queue a credential check; false when the queue is full (the caller answers 429). */
static bool enqueue(zn_access_t *a, h2o_req_t *req, const zn_route_def_t *def, zn_reqctx_t *ctx,
                    const zn_auth_creds_t *c)
{
    worker_state_t *w = worker_state(a, req);
    verify_job_t *job = zn_calloc(1, sizeof(*job));
    job->receiver = &w->receiver;
    job->access = a;
    job->creds = *c;
    job->req = req;
    job->def = def;
    job->ctx = ctx;
    job->user = h2o_strdup(&req->pool, c->user, c->user_len).base;
    job->anchor = h2o_mem_alloc_shared(&req->pool, sizeof(*job->anchor), on_job_req_dispose);
    job->anchor->job = job;

    zn_mutex_lock(&a->lock);
    bool ok = a->njobs < VERIFY_QUEUE_MAX && !a->stopping;
    if (ok) {
        h2o_linklist_insert(&a->jobs, &job->link);
        a->njobs++;
        zn_cond_signal(&a->cond);
    }
    zn_mutex_unlock(&a->lock);
    if (!ok) {
        job->anchor->job = NULL;
        zn_auth_creds_wipe(&job->creds);
        free(job);
    }
    return ok;
}

static void resume(verify_job_t *job)
{
    zn_access_t *a = job->access;

    if (job->result != ZN_AUTH_OK) {
        authn_failed(a, job->req, job->user);
        return;
    }
    set_user(a, job->ctx, job->user);
    if (authorize(a, job->req, job->def, job->ctx) && zn_http_run_handler(job->req, job->def, job->ctx) != 0)
        zn_api_send_error(job->req, ZN_OCI_NOT_FOUND, NULL);
}

static void on_verified(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        verify_job_t *job = H2O_STRUCT_FROM_MEMBER(verify_job_t, msg.link, messages->next);
        h2o_linklist_unlink(&job->msg.link);
        if (job->req != NULL) {
            job->anchor->job = NULL;
            resume(job);
        }
        free(job);
    }
}

/* ---- the seam ------------------------------------------------------------------------------- */

static zn_auth_status_t authenticate(zn_access_t *a, h2o_req_t *req, zn_auth_creds_t *creds)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i == -1)
        return zn_auth_basic_parse(NULL, 0, creds);
    /* zot: two or more Authorization headers are an authentication failure */
    if (h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, i) != -1)
        return ZN_AUTH_FAILED;
    h2o_iovec_t v = req->headers.entries[i].value;
    const char *tok;
    size_t toklen;
    if (a->token != NULL && zn_auth_bearer_token(v.base, v.len, &tok, &toklen))
        return zn_token_check(a->token, tok, toklen, creds);
    zn_auth_status_t st = zn_auth_basic_parse(v.base, v.len, creds);
    return st == ZN_AUTH_OK ? zn_auth_check(a->auth, creds, false) : st;
}

bool zn_access_check(zn_access_t *a, h2o_req_t *req, const zn_route_def_t *def, zn_reqctx_t *ctx)
{
    zn_auth_creds_t creds;
    bool ok = false;

    ctx->user = NULL;
    ctx->is_admin = zn_auth_is_admin(a->auth, NULL);
    ctx->can = can_cb;
    ctx->authz = a;
    if (def->flags & ZN_ROUTE_NOAUTH)
        return true;
    if (!zn_auth_enabled(a->auth))
        return authorize(a, req, def, ctx);
    creds.user_len = creds.pass_len = 0;
    switch (authenticate(a, req, &creds)) {
    case ZN_AUTH_ANONYMOUS:
        if (zn_auth_anonymous_allowed(a->auth))
            ok = authorize(a, req, def, ctx);
        else
            deny(a, req, DENY_AUTHN_401, false);
        break;
    case ZN_AUTH_OK:
        set_user(a, ctx, h2o_strdup(&req->pool, creds.user, creds.user_len).base);
        ok = authorize(a, req, def, ctx);
        break;
    case ZN_AUTH_FAILED:
        authn_failed(a, req, creds.user_len != 0 ? creds.user : NULL);
        break;
    case ZN_AUTH_PENDING:
        if (!enqueue(a, req, def, ctx, &creds))
            zn_api_send_error(req, ZN_OCI_TOO_MANY_REQUESTS, NULL);
        break;
    }
    zn_auth_creds_wipe(&creds);
    return ok;
}

void zn_access_base_headers(zn_access_t *a, h2o_req_t *req)
{
    /* zot adds a lower-case, unquoted challenge to a 200 when authentication is on;
     * podman and skopeo read it from the ping */
    if (a->base_challenge.len != 0)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, a->base_challenge.base,
                       a->base_challenge.len);
}

bool zn_access_ping(zn_access_t *a, h2o_req_t *req)
{
    h2o_iovec_t challenge = zn_token_ping_challenge(a->token, req);
    if (challenge.len == 0)
        return false;
    /* no credentials came, so no failDelay (zot) */
    send_refusal(req, DENY_AUTHN_401, challenge);
    return true;
}

zn_token_t *zn_access_token(zn_access_t *a)
{
    return a->token;
}

/* ---- lifecycle ---------------------------------------------------------------------------------- */

/* "basic realm=<realm>" with control bytes (a header must not hold them) dropped. */
static h2o_iovec_t make_base_challenge(const char *realm)
{
    size_t n = strlen(realm), o = sizeof("basic realm=") - 1;
    char *p = zn_malloc(o + n + 1);
    memcpy(p, "basic realm=", o);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)realm[i] >= 0x20 && realm[i] != 0x7f)
            p[o++] = realm[i];
    p[o] = '\0';
    return h2o_iovec_init(p, o);
}

static int verify_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN) / 2;
    return n < 1 ? 1 : n > VERIFY_THREADS_MAX ? VERIFY_THREADS_MAX : (int)n;
}

zn_err_t zn_access_new(const zn_config_t *cfg, zn_access_t **out, char *err, size_t errlen)
{
    zn_access_t *a = zn_calloc(1, sizeof(*a));
    char name[ZN_THREAD_NAME_MAX];
    zn_err_t e;

    *out = NULL;

    if ((e = zn_auth_new(cfg, &a->auth, err, errlen)) != ZN_OK) {
        free(a);
        return e;
    }
    zn_mutex_init(&a->lock, "access.verify");
    zn_cond_init(&a->cond);
    h2o_linklist_init_anchor(&a->jobs);
    if (!zn_auth_enabled(a->auth)) {
        *out = a;
        return ZN_OK;
    }
    a->base_challenge = make_base_challenge(zn_auth_realm(a->auth));
    if ((e = zn_token_new(cfg, zn_auth_anonymous_allowed(a->auth), &a->token, err, errlen)) != ZN_OK) {
        zn_access_free(a);
        return e;
    }
    for (int i = 0, n = verify_threads(); i < n; i++) {
        int w = snprintf(name, sizeof(name), "auth-verify-%d", i % 10);
        if (w < 0 || (size_t)w >= sizeof(name) || zn_thread_create(&a->threads[a->nthreads], name, verify_main, a) != 0) {
            zn_errf(err, errlen, "http.auth: cannot start the credential verification threads");
            zn_access_free(a);
            return ZN_EIO;
        }
        a->nthreads++;
    }
    *out = a;
    return ZN_OK;
}

void zn_access_free(zn_access_t *a)
{
    if (a == NULL)
        return;
    zn_mutex_lock(&a->lock);
    a->stopping = true;
    zn_cond_broadcast(&a->cond);
    zn_mutex_unlock(&a->lock);
    for (int i = 0; i < a->nthreads; i++)
        pthread_join(a->threads[i], NULL);
    /* the workers are gone: jobs still queued have nobody to answer */
    while (!h2o_linklist_is_empty(&a->jobs)) {
        verify_job_t *job = H2O_STRUCT_FROM_MEMBER(verify_job_t, link, a->jobs.next);
        h2o_linklist_unlink(&job->link);
        zn_auth_creds_wipe(&job->creds);
        free(job);
    }
    zn_mutex_destroy(&a->lock);
    zn_cond_destroy(&a->cond);
    free(a->base_challenge.base);
    zn_token_free(a->token);
    zn_auth_free(a->auth);
    free(a);
}
