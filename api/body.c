/*
 * api/body.c - moving a request body into an upload session without stalling the worker.
 *
 * h2o 2.2.5 hands the handler the whole body (req->entity), kept in a file-backed mapping
 * once it is large. Hashing and writing several GiB in one go would hold the event loop
 * for seconds, so the body is consumed in slices: up to TURN_BYTES per loop turn, then the
 * job re-arms itself on the context's zero timeout and the loop serves other connections
 * in between. The job lives in the request's pool; its dispose callback unlinks the timer
 * and releases the session if the connection dies before the job ends.
 */
#include "api/internal.h"

#define SLICE (1u << 20)        /* one storage write: bounds what a failed write can leave */
#define TURN_BYTES (16u << 20) /* per event-loop turn: ~10 ms of hashing and page-cache writes */

struct body_job {
    h2o_timeout_entry_t timer;
    h2o_req_t *req;
    zn_upload_t *up; /* NULL once handed to done */
    size_t off;
    bool cancel_on_abort;
    zn_api_body_done_fn done;
    void *data;
    const char *route; /* the profiler's route label, restored for later turns */
};

static void on_dispose(void *p)
{
    struct body_job *job = p;
    if (h2o_timeout_is_linked(&job->timer))
        h2o_timeout_unlink(&job->timer);
    if (job->up == NULL)
        return;
    if (job->cancel_on_abort)
        zn_storage_upload_cancel(job->up);
    else
        zn_storage_upload_close(job->up);
    job->up = NULL;
}

static void finish(struct body_job *job, zn_err_t err)
{
    zn_upload_t *up = job->up;
    job->up = NULL;
    job->done(job->req, up, err, job->data);
}

/* Writes up to TURN_BYTES; true when the body is done (or failed, after calling done). */
static bool write_turn(struct body_job *job)
{
    size_t len = job->req->entity.base != NULL ? job->req->entity.len : 0, turn = 0;
    while (job->off < len && turn < TURN_BYTES) {
        size_t n = len - job->off < SLICE ? len - job->off : SLICE;
        zn_err_t err = zn_storage_upload_write(job->up, job->req->entity.base + job->off, n);
        if (err != ZN_OK) {
            finish(job, err);
            return true;
        }
        job->off += n;
        turn += n;
    }
    if (job->off < len)
        return false;
    finish(job, ZN_OK);
    return true;
}

static void on_turn(h2o_timeout_entry_t *entry)
{
    struct body_job *job = H2O_STRUCT_FROM_MEMBER(struct body_job, timer, entry);
    zn_thread_info_t *self = zn_thread_self();
    if (self != NULL)
        self->route = job->route;
    if (!write_turn(job))
        h2o_timeout_link(job->req->conn->ctx->loop, &job->req->conn->ctx->zero_timeout, &job->timer);
    if (self != NULL)
        self->route = NULL;
}

int zn_api_body_write(h2o_req_t *req, zn_upload_t *up, bool cancel_on_abort, zn_api_body_done_fn done, void *data)
{
    struct body_job *job = h2o_mem_alloc_shared(&req->pool, sizeof(*job), on_dispose);
    zn_thread_info_t *self = zn_thread_self();
    *job = (struct body_job){.req = req, .up = up, .cancel_on_abort = cancel_on_abort, .done = done, .data = data};
    job->route = self != NULL ? self->route : NULL;
    job->timer.cb = on_turn;
    if (!write_turn(job))
        h2o_timeout_link(req->conn->ctx->loop, &req->conn->ctx->zero_timeout, &job->timer);
    return 0;
}
