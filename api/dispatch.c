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
 * message on the request's own loop (its mailbox, below, which drops the job instead once
 * the loop has stopped for good at shutdown).
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

struct zn_api_job {
    zn_pool_job_t pj;
    h2o_multithread_message_t msg;
    h2o_multithread_receiver_t *mb; /* the request's loop's mailbox */
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
    bool closed = zn_api_mailbox_closed(receiver);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        struct zn_api_job *job = H2O_STRUCT_FROM_MEMBER(struct zn_api_job, msg, msg);
        job->in_flight = false;
        if (job->req == NULL || closed) { /* closed: the loop has stopped, its requests with it */
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
    if (zn_api_mailbox_post(job->mb, &job->msg))
        return; /* the job is the loop's again */
    /* The loop stopped for good (shutdown, past the grace period) while this ran: nothing
     * will deliver this or dispose the request, so drop the job here. The request's memory
     * stays as it is (its loop is never run or freed again): the ref is not touched. */
    job->in_flight = false;
    job->ref = NULL;
    job->req = NULL;
    job_free(job);
}

int zn_api_state_run(void *state, zn_api_work_fn work, zn_api_back_fn back)
{
    struct zn_api_job *job = job_of(state);
    if (!job->async) {
        work(job->api, job->ctx, state);
        return back(job->req, state);
    }
    zn_thread_info_t *self = zn_thread_self();
    job->mb = zn_api_mailbox(job->api, job->req->conn->ctx, ZN_API_MB_STORAGE, on_messages);
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

/* ---- mailboxes ------------------------------------------------------------------------------ */

struct mailbox {
    h2o_multithread_receiver_t r;
    struct zn_api_loop *loop;
    bool registered;
};

struct zn_api_loop {
    struct zn_api_loop *next; /* api->loops */
    zn_mutex_t lock;          /* guards closed against posting pool threads */
    bool closed;
    h2o_context_t *ctx;
    struct mailbox box[ZN_API_MB_N];
};

/* This thread's loop record. The key is compared by value only (never dereferenced), so a
 * record of an api freed since is never touched. */
static __thread struct {
    zn_api_t *api;
    h2o_context_t *ctx;
    struct zn_api_loop *loop;
} tls_loop;

h2o_multithread_receiver_t *zn_api_mailbox(zn_api_t *api, h2o_context_t *ctx, int kind, h2o_multithread_receiver_cb cb)
{
    if (tls_loop.api != api || tls_loop.ctx != ctx) {
        struct zn_api_loop *l = zn_calloc(1, sizeof(*l));
        zn_mutex_init(&l->lock, "api.loop mailbox");
        l->ctx = ctx;
        for (int i = 0; i < ZN_API_MB_N; i++)
            l->box[i].loop = l;
        zn_mutex_lock(&api->loops_lock);
        l->next = api->loops;
        api->loops = l;
        zn_mutex_unlock(&api->loops_lock);
        tls_loop.api = api;
        tls_loop.ctx = ctx;
        tls_loop.loop = l;
    }
    struct mailbox *b = &tls_loop.loop->box[kind];
    if (!b->registered) {
        h2o_multithread_register_receiver(ctx->queue, &b->r, cb);
        b->registered = true;
    }
    return &b->r;
}

bool zn_api_mailbox_post(h2o_multithread_receiver_t *mb, h2o_multithread_message_t *msg)
{
    struct mailbox *b = H2O_STRUCT_FROM_MEMBER(struct mailbox, r, mb);
    zn_mutex_lock(&b->loop->lock);
    bool open = !b->loop->closed;
    if (open)
        h2o_multithread_send_message(mb, msg);
    zn_mutex_unlock(&b->loop->lock);
    return open;
}

bool zn_api_mailbox_closed(h2o_multithread_receiver_t *mb)
{
    return H2O_STRUCT_FROM_MEMBER(struct mailbox, r, mb)->loop->closed; /* set on this (the loop's) thread */
}

void zn_api_loop_close(zn_api_t *api, h2o_context_t *ctx)
{
    if (tls_loop.api != api || tls_loop.ctx != ctx)
        return; /* nothing was ever posted to this loop */
    struct zn_api_loop *l = tls_loop.loop;
    zn_mutex_lock(&l->lock);
    l->closed = true;
    zn_mutex_unlock(&l->lock);
    /* No pool thread sends any more (they check closed under the lock), so what was sent
     * and not delivered can be taken off the receivers without the queue's lock; their
     * callbacks drop it (zn_api_mailbox_closed). */
    for (int i = 0; i < ZN_API_MB_N; i++) {
        struct mailbox *b = &l->box[i];
        if (!b->registered)
            continue;
        if (!h2o_linklist_is_empty(&b->r._messages)) {
            h2o_linklist_t pending;
            h2o_linklist_init_anchor(&pending);
            h2o_linklist_insert_list(&pending, &b->r._messages);
            b->r.cb(&b->r, &pending);
        }
        h2o_multithread_unregister_receiver(ctx->queue, &b->r);
        b->registered = false;
    }
    tls_loop.api = NULL;
    tls_loop.ctx = NULL;
    tls_loop.loop = NULL;
}

void zn_api_loops_free(zn_api_t *api)
{
    while (api->loops != NULL) {
        struct zn_api_loop *l = api->loops;
        api->loops = l->next;
        zn_mutex_destroy(&l->lock);
        free(l);
    }
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
