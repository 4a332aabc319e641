/*
 * api/body.c - moving a request body into an upload session off the event loop.
 *
 * The bytes are hashed and written by the background pool (common/pool.h), never on the
 * worker. A body comes from one of two sources:
 *   - a stream (zn_body_stream_t, the server's HTTP/1 fast path): bytes arrive while the
 *     client sends them. They are copied into one of two BATCH-sized (1 MiB) buffers: the worker
 *     fills one while a pool thread writes and hashes the other, so receiving, hashing and
 *     writing overlap. When both are busy the stream is paused (the socket is not read),
 *     so an upload holds at most 2 x BATCH of memory however fast the client sends.
 *   - req->entity (HTTP/2, small HTTP/1 bodies that arrived with their head): h2o already
 *     has all of it; it is handed to the pool in SLICE pieces without copying.
 * One job is in flight per upload, so the session sees its bytes in order. Results come
 * back to the worker through an h2o multithread message on the context's queue.
 *
 * The job is malloc'd, not in the request's pool, because a pool thread may still be
 * writing when the client goes away: the request's dispose hook only marks the job
 * orphaned, and whoever finishes last closes (or cancels) the session and frees it.
 * After a storage error the rest of the body is read and dropped, so the client receives
 * the error once it has sent everything instead of a reset mid-body (disk full).
 */
#include <stdatomic.h>
#include <stdio.h>

#include "api/internal.h"
#include "common/pool.h"

#define SLICE (8u << 20)       /* one pool job over req->entity */
/* One pool job over streamed bytes; two per upload at most. What is buffered when the last
 * byte arrives is written after it: 1 MiB keeps that tail short, and a hand-off per MiB
 * (a queue push and an eventfd wake-up) costs nothing next to hashing and writing it. */
#define BATCH (1u << 20)
#define INLINE_MAX (64u << 10) /* smaller entities are written on the loop: a handoff costs more */
/* From this size on a piece is hashed and written by two pool threads at once (the halves of
 * zn_storage_upload_piece_*): SHA-256 and the page-cache copy under pwrite are each about
 * half of a push's CPU, so one after the other on one thread they set its pace. */
#define SPLIT_MIN (128u << 10)

static const h2o_iovec_t ENV_STREAM = {H2O_STRLIT("zn.body")};

struct body_ref {
    struct body_job *job; /* NULL once the job no longer needs the request */
};

struct body_job {
    zn_pool_job_t pj;
    zn_pool_job_t pj_hash; /* a split piece: pj writes, pj_hash hashes */
    atomic_int halves;     /* halves of a split piece still running */
    zn_upload_piece_t piece;
    h2o_multithread_message_t msg;
    void (*on_back)(struct body_job *job); /* on the worker, once pj is done */
    zn_api_t *api;
    h2o_context_t *ctx;
    h2o_multithread_receiver_t *mb; /* the worker's mailbox (dispatch.c), set on the worker before submitting */
    h2o_req_t *req; /* NULL once the request is gone */
    struct body_ref *ref;
    h2o_timeout_entry_t kick;
    zn_upload_t *up;
    bool cancel_on_abort;
    zn_api_body_done_fn done;
    void *data;
    const char *route; /* the profiler's route label, restored for later callbacks */

    zn_body_stream_t *stream; /* NULL: the body is req->entity */
    size_t off;               /* entity: bytes handed to the pool so far */
    char *bufs[2];
    size_t fill_len;   /* bytes waiting in bufs[fill] */
    int fill;          /* index of the buffer being filled */
    const char *work_p; /* in flight: what the pool thread writes */
    size_t work_len;
    bool in_flight, paused, ended;
    const char *end_err; /* the stream's reason when it ended early */
    zn_err_t err;        /* the first storage error */
};

/* ---- posting back to the worker ------------------------------------------------------------ */

static void orphan_finish(struct body_job *job);

static void on_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    bool closed = zn_api_mailbox_closed(receiver);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        struct body_job *job = H2O_STRUCT_FROM_MEMBER(struct body_job, msg, msg);
        if (closed) { /* the loop has stopped for good: let go as if the client had gone */
            job->in_flight = false;
            orphan_finish(job);
            continue;
        }
        zn_thread_info_t *self = zn_thread_self();
        if (self != NULL)
            self->route = job->route;
        job->on_back(job);
        if (self != NULL)
            self->route = NULL;
    }
}

static void post_back(zn_pool_job_t *pj)
{
    struct body_job *job = H2O_STRUCT_FROM_MEMBER(struct body_job, pj, pj);
    if (zn_api_mailbox_post(job->mb, &job->msg))
        return;
    /* the loop stopped for good while this ran (shutdown past the grace period): nothing
     * else will touch the job, its request or its loop, so let go of it here */
    job->in_flight = false;
    orphan_finish(job);
}

/* Called on the worker: the receiver is the worker's thread-local one, and must exist
 * before a pool thread posts to it. */
static void prepare(struct body_job *job, void (*run)(zn_pool_job_t *), void (*on_back)(struct body_job *))
{
    job->mb = zn_api_mailbox(job->api, job->ctx, ZN_API_MB_BODY, on_messages);
    job->msg = (h2o_multithread_message_t){{NULL, NULL}};
    job->pj.run = run;
    job->pj.done = post_back;
    job->on_back = on_back;
    job->in_flight = true;
}

static void submit(struct body_job *job, void (*run)(zn_pool_job_t *), void (*on_back)(struct body_job *))
{
    prepare(job, run, on_back);
    zn_pool_submit(zn_api_pool(job->api), &job->pj);
}

/* ---- lifetime -------------------------------------------------------------------------------- */

static void job_free(struct body_job *job)
{
    if (h2o_timeout_is_linked(&job->kick))
        h2o_timeout_unlink(&job->kick);
    if (job->ref != NULL)
        job->ref->job = NULL;
    free(job->bufs[0]);
    free(job->bufs[1]);
    free(job);
}

/* The request is gone and nothing is in flight: let go of the session. A chunk written so
 * far stays in the session (resumable at its size); a monolithic upload leaves nothing. */
static void orphan_finish(struct body_job *job)
{
    zn_api_upload_release(job->api, job->up, job->cancel_on_abort); /* off the loop on S3 */
    job->up = NULL;
    job_free(job);
}

static void on_dispose(void *p)
{
    struct body_ref *ref = p;
    struct body_job *job = ref->job;
    if (job == NULL)
        return;
    job->ref = NULL;
    job->req = NULL;
    if (h2o_timeout_is_linked(&job->kick))
        h2o_timeout_unlink(&job->kick);
    if (!job->in_flight)
        orphan_finish(job);
}

/* Everything is written (or failed): answer through done, on the worker. */
static void finish(struct body_job *job)
{
    h2o_req_t *req = job->req;
    zn_upload_t *up = job->up;
    job->up = NULL;
    if (job->end_err != NULL && job->err == ZN_OK) {
        /* the client's body was malformed; what it sent of a chunk stays in the session */
        zn_api_upload_release(job->api, up, job->cancel_on_abort);
        job_free(job);
        zn_api_send_error(req, ZN_OCI_BLOB_UPLOAD_INVALID, "malformed request body");
        return;
    }
    zn_api_body_done_fn done = job->done;
    void *data = job->data;
    zn_err_t err = job->err;
    job_free(job);
    done(req, up, err, data);
}

static void on_kick(h2o_timeout_entry_t *entry)
{
    struct body_job *job = H2O_STRUCT_FROM_MEMBER(struct body_job, kick, entry);
    finish(job);
}

/* Finishes on a later loop turn: callers may be inside the stream's callbacks. */
static void finish_later(struct body_job *job)
{
    if (!h2o_timeout_is_linked(&job->kick))
        h2o_timeout_link(job->ctx->loop, &job->ctx->zero_timeout, &job->kick);
}

/* ---- the pool side --------------------------------------------------------------------------- */

static void run_write(zn_pool_job_t *pj)
{
    struct body_job *job = H2O_STRUCT_FROM_MEMBER(struct body_job, pj, pj);
    zn_thread_info_t *self = zn_thread_self();
    if (self != NULL)
        self->route = job->route; /* CPU samples of the pool thread carry the request's route */
    if (job->err == ZN_OK)
        job->err = zn_storage_upload_write(job->up, job->work_p, job->work_len);
    if (self != NULL)
        self->route = NULL;
}

static void half_done(struct body_job *job)
{
    if (atomic_fetch_sub_explicit(&job->halves, 1, memory_order_acq_rel) != 1)
        return;
    /* both halves are done (and visible, acq_rel): settle the session here, before anything
     * on the worker (or an orphaned job's release) can look at it */
    job->err = zn_storage_upload_piece_end(job->up, &job->piece);
    post_back(&job->pj);
}

static void route_in(struct body_job *job, bool on)
{
    zn_thread_info_t *self = zn_thread_self();
    if (self != NULL)
        self->route = on ? job->route : NULL;
}

static void run_data(zn_pool_job_t *pj)
{
    struct body_job *job = H2O_STRUCT_FROM_MEMBER(struct body_job, pj, pj);
    route_in(job, true);
    zn_storage_upload_piece_data(job->up, &job->piece);
    route_in(job, false);
}

static void data_done(zn_pool_job_t *pj)
{
    half_done(H2O_STRUCT_FROM_MEMBER(struct body_job, pj, pj));
}

static void run_hash(zn_pool_job_t *pj)
{
    struct body_job *job = H2O_STRUCT_FROM_MEMBER(struct body_job, pj_hash, pj);
    route_in(job, true);
    zn_storage_upload_piece_hash(job->up, &job->piece);
    route_in(job, false);
}

static void hash_done(zn_pool_job_t *pj)
{
    half_done(H2O_STRUCT_FROM_MEMBER(struct body_job, pj_hash, pj));
}

/* Hands work_p/work_len to the pool: split in two halves when big enough and the session
 * takes it, else one job doing both in turn (also when the size limit is passed: run_write
 * then reports it). */
static void submit_work(struct body_job *job, void (*on_back)(struct body_job *))
{
    if (job->err != ZN_OK || job->work_len < SPLIT_MIN ||
        (job->err = zn_storage_upload_piece_begin(job->up, &job->piece, job->work_p, job->work_len)) != ZN_OK) {
        submit(job, run_write, on_back);
        return;
    }
    prepare(job, run_data, on_back);
    job->pj.done = data_done;
    job->pj_hash = (zn_pool_job_t){.run = run_hash, .done = hash_done};
    atomic_store_explicit(&job->halves, 2, memory_order_relaxed); /* published by the submits */
    zn_pool_submit(zn_api_pool(job->api), &job->pj);
    zn_pool_submit(zn_api_pool(job->api), &job->pj_hash);
}

/* ---- req->entity source ---------------------------------------------------------------------- */

static void entity_next(struct body_job *job);

static void entity_back(struct body_job *job)
{
    job->in_flight = false;
    if (job->req == NULL) {
        orphan_finish(job);
        return;
    }
    entity_next(job);
}

static void entity_next(struct body_job *job)
{
    size_t len = job->req->entity.base != NULL ? job->req->entity.len : 0;
    if (job->err != ZN_OK || job->off == len) {
        finish(job);
        return;
    }
    job->work_p = job->req->entity.base + job->off;
    job->work_len = len - job->off < SLICE ? len - job->off : SLICE;
    job->off += job->work_len;
    submit_work(job, entity_back);
}

/* ---- stream source --------------------------------------------------------------------------- */

static void stream_submit(struct body_job *job);

static void stream_back(struct body_job *job)
{
    job->in_flight = false;
    if (job->req == NULL) {
        orphan_finish(job);
        return;
    }
    if (job->fill_len > 0)
        stream_submit(job);
    if (job->ended) {
        if (!job->in_flight)
            finish_later(job);
        return;
    }
    if (job->paused) {
        job->paused = false;
        job->stream->resume(job->stream);
    }
}

/* Hands the filled buffer to the pool (nothing in flight). */
static void stream_submit(struct body_job *job)
{
    if (job->err != ZN_OK) {
        job->fill_len = 0;
        return;
    }
    job->work_p = job->bufs[job->fill];
    job->work_len = job->fill_len;
    job->fill ^= 1;
    job->fill_len = 0;
    submit_work(job, stream_back);
}

static size_t stream_data(void *arg, const char *p, size_t n)
{
    struct body_job *job = arg;
    size_t took = 0;
    if (job->err != ZN_OK)
        return n; /* storage failed: drain the rest so the client reads our answer */
    while (took < n) {
        if (job->fill_len == BATCH) {
            if (job->in_flight) {
                job->paused = true;
                break;
            }
            stream_submit(job);
        }
        size_t c = n - took < BATCH - job->fill_len ? n - took : BATCH - job->fill_len;
        memcpy(job->bufs[job->fill] + job->fill_len, p + took, c);
        job->fill_len += c;
        took += c;
    }
    if (!job->in_flight && job->fill_len > 0)
        stream_submit(job); /* the pool is idle for this upload: give it what we have */
    return took;
}

static void stream_end(void *arg, const char *err)
{
    struct body_job *job = arg;
    job->ended = true;
    job->end_err = err;
    if (job->in_flight)
        return; /* stream_back goes on */
    if (job->fill_len > 0)
        stream_submit(job);
    if (!job->in_flight)
        finish_later(job);
}

/* ---- entry points ---------------------------------------------------------------------------- */

void zn_api_body_stream_attach(h2o_req_t *req, zn_body_stream_t *s)
{
    h2o_vector_reserve(&req->pool, &req->env, req->env.size + 2);
    req->env.entries[req->env.size++] = ENV_STREAM;
    req->env.entries[req->env.size++] = h2o_iovec_init(s, sizeof(*s));
}

zn_body_stream_t *zn_api_body_stream(h2o_req_t *req)
{
    for (size_t i = 0; i + 1 < req->env.size; i += 2)
        if (h2o_memis(req->env.entries[i].base, req->env.entries[i].len, ENV_STREAM.base, ENV_STREAM.len))
            return (zn_body_stream_t *)req->env.entries[i + 1].base;
    return NULL;
}

uint64_t zn_api_body_length(h2o_req_t *req)
{
    zn_body_stream_t *s = zn_api_body_stream(req);
    if (s != NULL)
        return s->length;
    return req->entity.base != NULL ? req->entity.len : 0;
}

int zn_api_body_write(zn_api_t *api, h2o_req_t *req, zn_upload_t *up, bool cancel_on_abort, zn_api_body_done_fn done,
                      void *data)
{
    zn_body_stream_t *stream = zn_api_body_stream(req);
    size_t len = req->entity.base != NULL ? req->entity.len : 0;

    if (stream == NULL && len <= INLINE_MAX && !zn_api_async(api)) /* S3: a write may send a part */
        return done(req, up, len != 0 ? zn_storage_upload_write(up, req->entity.base, len) : ZN_OK, data);

    struct body_job *job = zn_calloc(1, sizeof(*job));
    zn_thread_info_t *self = zn_thread_self();
    *job = (struct body_job){.api = api,
                             .ctx = req->conn->ctx,
                             .req = req,
                             .up = up,
                             .cancel_on_abort = cancel_on_abort,
                             .done = done,
                             .data = data,
                             .route = self != NULL ? self->route : NULL,
                             .stream = stream};
    job->kick.cb = on_kick;
    job->ref = h2o_mem_alloc_shared(&req->pool, sizeof(*job->ref), on_dispose);
    job->ref->job = job;
    if (stream == NULL) {
        entity_next(job);
        return 0;
    }
    job->bufs[0] = zn_malloc(BATCH);
    job->bufs[1] = zn_malloc(BATCH);
    stream->start(stream, stream_data, stream_end, job);
    return 0;
}

/* ---- finishing off the loop ------------------------------------------------------------------ */

struct finish_job {
    struct body_job base; /* only the posting fields are used */
    zn_upload_t *up;
    zn_digest_t digest;
    zn_err_t err;
    zn_api_finish_fn after;
    void *data;
};

static void run_finish(zn_pool_job_t *pj)
{
    struct finish_job *f = (void *)H2O_STRUCT_FROM_MEMBER(struct body_job, pj, pj);
    f->err = zn_storage_upload_finish(f->up, &f->digest);
}

static void finish_back(struct body_job *job)
{
    struct finish_job *f = (void *)job;
    job->in_flight = false;
    h2o_req_t *req = job->req;
    zn_api_finish_fn after = f->after;
    void *data = f->data;
    zn_err_t err = f->err;
    job_free(job);
    if (req != NULL)
        after(req, err, data);
}

static void on_finish_dispose(void *p)
{
    struct body_ref *ref = p;
    if (ref->job != NULL) {
        ref->job->req = NULL; /* the pool finishes anyway; nobody is told */
        ref->job->ref = NULL;
    }
}

int zn_api_upload_finish_async(zn_api_t *api, h2o_req_t *req, zn_upload_t *up, const zn_digest_t *d, zn_api_finish_fn after,
                               void *data)
{
    struct finish_job *f = zn_calloc(1, sizeof(*f));
    zn_thread_info_t *self = zn_thread_self();
    f->base.api = api;
    f->base.ctx = req->conn->ctx;
    f->base.req = req;
    f->base.route = self != NULL ? self->route : NULL;
    f->base.kick.cb = on_kick; /* never linked */
    f->base.ref = h2o_mem_alloc_shared(&req->pool, sizeof(*f->base.ref), on_finish_dispose);
    f->base.ref->job = &f->base;
    f->up = up;
    f->digest = *d;
    f->after = after;
    f->data = data;
    submit(&f->base, run_finish, finish_back);
    return 0;
}

/* ---- opening a session off the loop ---------------------------------------------------------
 * Opening re-hashes the session file when its running hash is not in memory (after a
 * restart, or an eviction from storage's table): seconds for a big session, so always on
 * the pool. repo and uuid are copied: the request may be gone when the pool runs. */

struct open_job {
    struct body_job base; /* only the posting fields are used */
    char repo[ZN_REPO_NAME_MAX + 1];
    char uuid[ZN_UUID_LEN + 1];
    zn_upload_t *up;
    zn_err_t err;
    zn_api_open_fn then;
    void *data;
};

static void run_open(zn_pool_job_t *pj)
{
    struct open_job *o = (void *)H2O_STRUCT_FROM_MEMBER(struct body_job, pj, pj);
    o->err = zn_storage_upload_open(o->base.api->st, o->repo, o->uuid, &o->up);
}

static void open_back(struct body_job *job)
{
    struct open_job *o = (void *)job;
    job->in_flight = false;
    h2o_req_t *req = job->req;
    zn_upload_t *up = o->up;
    zn_api_open_fn then = o->then;
    void *data = o->data;
    zn_err_t err = o->err;
    zn_api_t *api = job->api;
    job_free(job);
    if (req == NULL) {
        zn_api_upload_release(api, up, false);
        return;
    }
    then(req, up, err, data);
}

int zn_api_upload_open_async(zn_api_t *api, h2o_req_t *req, const char *repo, const char *uuid, zn_api_open_fn then,
                             void *data)
{
    struct open_job *o = zn_calloc(1, sizeof(*o));
    zn_thread_info_t *self = zn_thread_self();
    int n1 = snprintf(o->repo, sizeof(o->repo), "%s", repo), n2 = snprintf(o->uuid, sizeof(o->uuid), "%s", uuid);
    if (n1 < 0 || (size_t)n1 >= sizeof(o->repo) || n2 < 0 || (size_t)n2 >= sizeof(o->uuid)) {
        free(o);
        return then(req, NULL, ZN_ENOENT, data); /* no such session can exist */
    }
    o->base.api = api;
    o->base.ctx = req->conn->ctx;
    o->base.req = req;
    o->base.route = self != NULL ? self->route : NULL;
    o->base.kick.cb = on_kick; /* never linked */
    o->base.ref = h2o_mem_alloc_shared(&req->pool, sizeof(*o->base.ref), on_finish_dispose);
    o->base.ref->job = &o->base;
    o->then = then;
    o->data = data;
    submit(&o->base, run_open, open_back);
    return 0;
}
