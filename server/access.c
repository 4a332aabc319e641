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
 * request resumes on its own worker when the answer is posted back, through the resume
 * step the dispatcher passed in. Then the route's rule: admin routes (pprof) need an admin,
 * the metrics route what accessControl.metrics grants, repository routes the row's action
 * on the repository the router matched (ctx->repo), anything else (/v2/, the catalog) only
 * the authentication; handlers ask ctx->can for decisions that depend on state, and refuse
 * through ctx->deny, which is this file's refusal too.
 *
 * Every refusal is api/errors.c's zot body plus the Basic challenge built once by the edge
 * (common/edge) from http.realm. Refusals wait http.auth.failDelay seconds on a
 * request-owned timer - before every authorization 401/403, before an authentication 401
 * only when credentials were sent (zot) - so a slow answer never holds the worker.
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
#include "common/edge/edge.h"
#include "server/server_int.h"

#define VERIFY_QUEUE_MAX 1024
#define VERIFY_THREADS_MAX 8

typedef enum { DENY_AUTHN_401, DENY_AUTHZ_401, DENY_AUTHZ_403 } deny_t;

struct zn_access {
    zn_auth_t *auth;
    zn_token_t *token;          /* bearer tokens, NULL without authentication */
    h2o_iovec_t challenge;      /* `Basic realm="<realm>"` for 401s */
    h2o_iovec_t base_challenge; /* "basic realm=<realm>" for 200s on /v2/, empty without auth */
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
    zn_reqctx_t *ctx;
    zn_access_resume_fn resume;
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

/* zot's bodies (api/errors.c's table): the authentication 401 is a single object, the
 * authorization 401 and 403 are lists. */
static const zn_oci_code_t deny_codes[] = {
    [DENY_AUTHN_401] = ZN_OCI_AUTHN_REQUIRED,
    [DENY_AUTHZ_401] = ZN_OCI_UNAUTHORIZED,
    [DENY_AUTHZ_403] = ZN_OCI_DENIED,
};

static void send_refusal(h2o_req_t *req, deny_t kind, h2o_iovec_t challenge)
{
    zn_edge_header_add_ref(req, H2O_TOKEN_WWW_AUTHENTICATE, challenge.base, challenge.len);
    zn_api_send_error(req, deny_codes[kind], NULL);
}

typedef struct delayed_deny {
    zn_edge_timer_t *timer;
    h2o_req_t *req;
    zn_access_t *access;
    deny_t kind;
} delayed_deny_t;

static void on_delay(void *data)
{
    delayed_deny_t *d = data;
    zn_edge_timer_finish(d->timer);
    send_refusal(d->req, d->kind, d->access->challenge);
}

/* The request went away during the delay: nobody to answer. */
static void on_delay_cancel(void *data)
{
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

/* Refuse, after failDelay when `delayed` (a request-owned timer, never a sleep). */
static void deny(zn_access_t *a, h2o_req_t *req, deny_t kind, bool delayed)
{
    if (!delayed || zn_auth_fail_delay_ms(a->auth) == 0) {
        send_refusal(req, kind, a->challenge);
        return;
    }
    worker_state_t *w = worker_state(a, req);
    delayed_deny_t *d = h2o_mem_alloc_pool(&req->pool, sizeof(*d));
    *d = (delayed_deny_t){zn_edge_timer_new(req, on_delay_cancel, d), req, a, kind};
    zn_edge_timer_arm(d->timer, &w->delay, on_delay);
}

/* ctx->deny: a handler's refusal (a decision that depended on state) is the server's. */
static int deny_cb(h2o_req_t *req, zn_reqctx_t *ctx)
{
    deny(ctx->authz, req, ctx->user == NULL ? DENY_AUTHZ_401 : DENY_AUTHZ_403, true);
    return 0;
}

/* ---- authorization -------------------------------------------------------------------------- */

static bool can_cb(zn_reqctx_t *ctx, const char *repo, unsigned action)
{
    zn_access_t *a = ctx->authz;
    return zn_auth_can(a->auth, ctx->user, repo, action);
}

/* The route's rule for an authenticated (or anonymous) caller; refuses itself if not met. */
static bool authorize(zn_access_t *a, h2o_req_t *req, zn_reqctx_t *ctx)
{
    const zn_route_def_t *def = ctx->def;
    zn_authz_t d = ZN_AUTHZ_ALLOW;

    if (def->flags & ZN_ROUTE_ADMIN) {
        d = zn_auth_authorize_admin(a->auth, ctx->user);
    } else if (def->flags & ZN_ROUTE_METRICS) {
        d = zn_auth_authorize_metrics(a->auth, ctx->user);
    } else if (def->action != 0 && ctx->repo.p != NULL) {
        zn_slice_t name = ctx->repo;
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
static bool enqueue(zn_access_t *a, h2o_req_t *req, zn_reqctx_t *ctx, zn_access_resume_fn resume, const zn_auth_creds_t *c)
{
    worker_state_t *w = worker_state(a, req);
    verify_job_t *job = zn_calloc(1, sizeof(*job));
    job->receiver = &w->receiver;
    job->access = a;
    job->creds = *c;
    job->req = req;
    job->ctx = ctx;
    job->resume = resume;
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
    if (authorize(a, job->req, job->ctx) && job->resume(job->req, job->ctx) != 0)
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

bool zn_access_check(zn_access_t *a, h2o_req_t *req, zn_reqctx_t *ctx, zn_access_resume_fn resume)
{
    const zn_route_def_t *def = ctx->def;
    zn_auth_creds_t creds;
    bool ok = false;

    ctx->user = NULL;
    ctx->is_admin = zn_auth_is_admin(a->auth, NULL);
    ctx->can = can_cb;
    ctx->deny = deny_cb;
    ctx->authz = a;
    if (def->flags & ZN_ROUTE_NOAUTH)
        return true;
    if (!zn_auth_enabled(a->auth))
        return authorize(a, req, ctx);
    creds.user_len = creds.pass_len = 0;
    switch (authenticate(a, req, &creds)) {
    case ZN_AUTH_ANONYMOUS:
        if (zn_auth_anonymous_allowed(a->auth))
            ok = authorize(a, req, ctx);
        else
            deny(a, req, DENY_AUTHN_401, false);
        break;
    case ZN_AUTH_OK:
        set_user(a, ctx, h2o_strdup(&req->pool, creds.user, creds.user_len).base);
        ok = authorize(a, req, ctx);
        break;
    case ZN_AUTH_FAILED:
        authn_failed(a, req, creds.user_len != 0 ? creds.user : NULL);
        break;
    case ZN_AUTH_PENDING:
        if (!enqueue(a, req, ctx, resume, &creds))
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
        zn_edge_header_add_ref(req, H2O_TOKEN_WWW_AUTHENTICATE, a->base_challenge.base, a->base_challenge.len);
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

/* The realm's challenges (common/edge): `Basic realm="<realm>"` quoted as zot's %q for 401s
 * (an empty realm is zot's "Authorization Required"), and the lower-case, unquoted one zot
 * adds to a 200 on /v2/. Malloc'd into *out; ZN_ETOOBIG for a realm over 64 KiB. */
static zn_err_t make_challenge(const char *realm, bool base, h2o_iovec_t *out)
{
    zn_edge_param_t p = {"realm", base || realm[0] != '\0' ? realm : "Authorization Required"};
    zn_buf_t b;
    zn_buf_init(&b, 64u << 10);
    zn_err_t err = zn_edge_challenge(&b, base ? "basic" : "Basic", &p, 1, !base);
    if (err != ZN_OK) {
        zn_buf_release(&b);
        return err;
    }
    out->base = zn_buf_detach(&b, &out->len);
    return ZN_OK;
}

const struct zn_auth *zn_access_auth(const zn_access_t *a)
{
    return a->auth;
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
    if (make_challenge(zn_auth_realm(a->auth), false, &a->challenge) != ZN_OK ||
        (zn_auth_enabled(a->auth) && make_challenge(zn_auth_realm(a->auth), true, &a->base_challenge) != ZN_OK)) {
        zn_errf(err, errlen, "http.realm: longer than 64 KiB");
        zn_access_free(a);
        return ZN_EINVAL;
    }
    if (!zn_auth_enabled(a->auth)) {
        *out = a;
        return ZN_OK;
    }
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
    free(a->challenge.base);
    free(a->base_challenge.base);
    zn_token_free(a->token);
    zn_auth_free(a->auth);
    free(a);
}
