/*
 * api/dispatch.c - storage calls off the event loop on a store that may block (storage.h's
 * threading rule; docs/design-storage-dispatch.md).
 *
 * A handler splits into a storage part (work: storage calls only, no h2o object) and a
 * respond part (back: on the request's loop, with the request). Its state is one struct
 * made by zn_api_state_new. On the filesystem store the state is request-pool memory and
 * zn_api_state_run calls work then back inline: the old code path, plus one branch.
 * On a store that may block the state is malloc'd with a small header, work runs on the
 * "storage" pool, and back runs when the pool posts back through an h2o multithread
 * message on the request's own loop.
 *
 * Cancellation. The request may be disposed (client gone, RST_STREAM) while a pool thread
 * is in work: the request's pool holds a small ref whose dispose hook clears job->req. The
 * header is touched only on the loop, except work's own run, and freed only on the loop:
 * by the dispose hook when nothing is in flight, or at the post-back when the request is
 * gone; then drop(state) releases what the state still holds and back is never called.
 * Nothing is counted because ownership is never shared: the job is either queued/running
 * on the pool or sitting on the loop. Inputs that work reads (names, bodies, the user for
 * ctx->can) must not be request-pool memory on this path: zn_api_state_keep copies them.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "common/pool.h"

struct keep {
    struct keep *next;
    _Alignas(max_align_t) char bytes[];
};

struct job_ref {
    struct zn_api_job *job; /* NULL once the job is freed */
};

struct disp_recv {
    h2o_multithread_receiver_t r;
    h2o_context_t *ctx;
};
static __thread struct disp_recv tls_recv;

struct zn_api_job {
    zn_pool_job_t pj;
    h2o_multithread_message_t msg;
    struct disp_recv *recv;
    zn_api_t *api;
    struct zn_pool *pool; /* where work runs (async only) */
    h2o_req_t *req; /* NULL once the request is gone (async only) */
    struct job_ref *ref;
    zn_reqctx_t *ctx; /* the request's (inline) or ctx_copy (async) */
    zn_reqctx_t ctx_copy;
    zn_api_work_fn work;
    zn_api_back_fn back;
    zn_api_drop_fn drop;
    const char *route; /* the profiler's route label, carried to the pool thread */
    struct keep *keeps;
    bool async, in_flight, in_back;
    _Alignas(max_align_t) char state[];
};

static struct zn_api_job *job_of(void *state)
{
    return (struct zn_api_job *)((char *)state - offsetof(struct zn_api_job, state));
}

static void job_free(struct zn_api_job *job)
{
    if (job->ref != NULL)
        job->ref->job = NULL;
    if (job->drop != NULL)
        job->drop(job->state);
    while (job->keeps != NULL) {
        struct keep *k = job->keeps;
        job->keeps = k->next;
        free(k);
    }
    free(job);
}

static void on_dispose(void *p)
{
    struct job_ref *ref = p;
    struct zn_api_job *job = ref->job;
    if (job == NULL)
        return;
    job->ref = NULL;
    job->req = NULL;
    if (!job->in_flight && !job->in_back)
        job_free(job);
}

const void *zn_api_state_keep(void *state, const void *p, size_t n)
{
    struct zn_api_job *job = job_of(state);
    if (!job->async || p == NULL)
        return p;
    struct keep *k = zn_malloc(sizeof(*k) + n + 1);
    memcpy(k->bytes, p, n);
    k->bytes[n] = '\0';
    k->next = job->keeps;
    job->keeps = k;
    return k->bytes;
}

const char *zn_api_state_strdup(void *state, const char *s)
{
    return s != NULL ? zn_api_state_keep(state, s, strlen(s)) : NULL;
}

static void *state_new_async(zn_api_t *api, struct zn_pool *pool, h2o_req_t *req, zn_reqctx_t *ctx, size_t size,
                             zn_api_drop_fn drop)
{
    struct zn_api_job *job = zn_calloc(1, sizeof(*job) + size);
    job->api = api;
    job->pool = pool;
    job->req = req;
    job->async = true;
    job->drop = drop;
    job->ref = h2o_mem_alloc_shared(&req->pool, sizeof(*job->ref), on_dispose);
    job->ref->job = job;
    /* work may call ctx->can on a pool thread after the request is gone: a copy that points
     * at nothing in the request (path params dropped, the user kept) */
    job->ctx_copy = *ctx;
    memset(job->ctx_copy.params, 0, sizeof(job->ctx_copy.params));
    job->ctx_copy.nparams = 0;
    job->ctx_copy.repo = (zn_slice_t){NULL, 0};
    job->ctx_copy.user = zn_api_state_strdup(job->state, ctx->user);
    job->ctx = &job->ctx_copy;
    return job->state;
}

void *zn_api_state_new(zn_api_t *api, h2o_req_t *req, zn_reqctx_t *ctx, size_t size, zn_api_drop_fn drop)
{
    if (api->storage_pool != NULL)
        return state_new_async(api, api->storage_pool, req, ctx, size, drop);
    struct zn_api_job *job = h2o_mem_alloc_pool(&req->pool, sizeof(*job) + size);
    memset(job, 0, sizeof(*job) + size);
    job->api = api;
    job->req = req;
    job->ctx = ctx;
    return job->state;
}

void *zn_api_state_new_off_loop(zn_api_t *api, h2o_req_t *req, zn_reqctx_t *ctx, size_t size, zn_api_drop_fn drop)
{
    return state_new_async(api, api->storage_pool != NULL ? api->storage_pool : api->pool, req, ctx, size, drop);
}

bool zn_api_state_is_async(void *state)
{
    return job_of(state)->async;
}

zn_reqctx_t *zn_api_state_ctx(void *state)
{
    return job_of(state)->ctx;
}

/* ---- posting back ------------------------------------------------------------------------------ */

static void on_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        struct zn_api_job *job = H2O_STRUCT_FROM_MEMBER(struct zn_api_job, msg, msg);
        job->in_flight = false;
        if (job->req == NULL) {
            job_free(job);
            continue;
        }
        zn_thread_info_t *self = zn_thread_self();
        if (self != NULL)
            self->route = job->route;
        job->in_back = true;
        job->back(job->req, job->state);
        job->in_back = false;
        if (self != NULL)
            self->route = NULL;
        /* back's response may have ended the request at once */
        if (job->req == NULL && !job->in_flight)
            job_free(job);
    }
}

static void run_work(zn_pool_job_t *pj)
{
    struct zn_api_job *job = H2O_STRUCT_FROM_MEMBER(struct zn_api_job, pj, pj);
    zn_thread_info_t *self = zn_thread_self();
    if (self != NULL)
        self->route = job->route; /* CPU samples of the storage thread carry the request's route */
    job->work(job->api, job->ctx, job->state);
    if (self != NULL)
        self->route = NULL;
}

static void post_back(zn_pool_job_t *pj)
{
    struct zn_api_job *job = H2O_STRUCT_FROM_MEMBER(struct zn_api_job, pj, pj);
    h2o_multithread_send_message(&job->recv->r, &job->msg); /* the job is the loop's again */
}

int zn_api_state_run(void *state, zn_api_work_fn work, zn_api_back_fn back)
{
    struct zn_api_job *job = job_of(state);
    if (!job->async) {
        work(job->api, job->ctx, state);
        return back(job->req, state);
    }
    h2o_context_t *hctx = job->req->conn->ctx;
    if (tls_recv.ctx != hctx) {
        tls_recv.ctx = hctx;
        h2o_multithread_register_receiver(hctx->queue, &tls_recv.r, on_messages);
    }
    zn_thread_info_t *self = zn_thread_self();
    job->recv = &tls_recv;
    job->msg = (h2o_multithread_message_t){{NULL, NULL}};
    job->work = work;
    job->back = back;
    job->route = self != NULL ? self->route : NULL;
    job->pj.run = run_work;
    job->pj.done = post_back;
    job->in_flight = true;
    zn_pool_submit(job->pool, &job->pj);
    return 0;
}

/* ---- letting go of a session -------------------------------------------------------------------- */

struct release_job {
    zn_pool_job_t pj;
    zn_upload_t *up;
    bool cancel;
};

static void run_release(zn_pool_job_t *pj)
{
    struct release_job *r = (struct release_job *)pj;
    if (r->cancel)
        zn_storage_upload_cancel(r->up);
    else
        zn_storage_upload_close(r->up);
}

static void release_done(zn_pool_job_t *pj)
{
    free(pj);
}

void zn_api_upload_release(zn_api_t *api, zn_upload_t *up, bool cancel)
{
    if (up == NULL)
        return;
    if (api->storage_pool == NULL) {
        if (cancel)
            zn_storage_upload_cancel(up);
        else
            zn_storage_upload_close(up);
        return;
    }
    struct release_job *r = zn_calloc(1, sizeof(*r));
    r->pj.run = run_release;
    r->pj.done = release_done;
    r->up = up;
    r->cancel = cancel;
    zn_pool_submit(api->storage_pool, &r->pj);
}
