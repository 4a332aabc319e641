/*
 * pprof/serve.c - the handler shared by snapshot profiles (heap, allocs, goroutine,
 * threadcreate, and mutex/block from the tracing work), with net/http/pprof's semantics:
 *
 *   ?debug=N   N > 0: the profile's text form, else gzip'd profile.proto
 *   ?gc=N      N > 0: the profile's gc hook first (heap: malloc_trim)
 *   ?seconds=N a delta: take p0, wait N s on a timer, take p1, send p1 - p0 as "NAME-delta";
 *              errors exactly as Go's serveDeltaProfile words them
 *
 * Taking a snapshot may need a preparation that completes asynchronously (goroutine signals
 * every thread and waits for their answers): the job polls ops->ready on the request timer,
 * at most PREPARE_MAX_NS, then collects whatever it has. The job lives in the request's pool;
 * if the client goes away the timer's cancel callback releases what the job holds.
 */
#include <string.h>

#include "pprof/internal.h"

#define PREPARE_MAX_NS 1000000000u

typedef struct job {
    h2o_req_t *req;
    const zn_pprof_def_t *def;
    const zn_pprof_snapshot_ops_t *ops;
    zn_pprof_wait_t *wait;
    int debug;
    int64_t seconds;      /* > 0 for a delta */
    bool second_half;     /* delta: p0 taken, taking p1 */
    uint64_t deadline_ns; /* of the preparation, or of the delta wait */
    void *tok;
    zn_pprof_profile_t p0;
} job_t;

static void take(job_t *j);

static void release_tok(job_t *j)
{
    if (j->tok != NULL && j->ops->release != NULL)
        j->ops->release(j->tok);
    j->tok = NULL;
}

static void on_cancel(void *data)
{
    job_t *j = data;
    release_tok(j);
    zn_pprof_profile_release(&j->p0);
}

static void finish_error(job_t *j, const char *msg)
{
    zn_pprof_wait_finish(j->wait);
    on_cancel(j);
    zn_pprof_send_error(j->req, 500, msg);
}

static void on_poll(void *data)
{
    job_t *j = data;
    if (j->ops->ready(j->tok) || zn_now_mono_ns() >= j->deadline_ns) {
        take(j);
        return;
    }
    zn_pprof_wait_arm(j->wait, on_poll);
}

/* Starts a snapshot: prepares it and takes it now or once ready. */
static void begin(job_t *j)
{
    if (j->ops->prepare != NULL) {
        if ((j->tok = j->ops->prepare()) == NULL) {
            finish_error(j, "failed to collect profile");
            return;
        }
        if (!j->ops->ready(j->tok)) {
            j->deadline_ns = zn_now_mono_ns() + PREPARE_MAX_NS;
            zn_pprof_wait_arm(j->wait, on_poll);
            return;
        }
    }
    take(j);
}

static void on_delta_wait(void *data)
{
    job_t *j = data;
    if (zn_now_mono_ns() < j->deadline_ns) {
        zn_pprof_wait_arm(j->wait, on_delta_wait);
        return;
    }
    j->second_half = true;
    begin(j);
}

static void send_text(job_t *j)
{
    zn_buf_t out;
    zn_buf_init(&out, ZN_PPROF_BODY_MAX);
    zn_err_t err = j->ops->text(j->tok, j->debug, &out);
    zn_pprof_wait_finish(j->wait);
    on_cancel(j);
    if (err == ZN_OK)
        zn_pprof_send_text(j->req, &out);
    else
        zn_pprof_send_error(j->req, 500, "failed to write profile");
    zn_buf_release(&out);
}

static void take(job_t *j)
{
    zn_pprof_profile_t p;

    if (j->debug > 0 && j->ops->text != NULL) {
        send_text(j);
        return;
    }
    zn_pprof_profile_init(&p, j->ops->kind);
    if (j->ops->collect(j->tok, &p) != ZN_OK) {
        zn_pprof_profile_release(&p);
        finish_error(j, "failed to collect profile");
        return;
    }
    release_tok(j);
    if (j->seconds > 0 && !j->second_half) {
        j->p0 = p;
        j->deadline_ns = zn_now_mono_ns() + (uint64_t)j->seconds * 1000000000u;
        zn_pprof_wait_arm(j->wait, on_delta_wait);
        return;
    }
    zn_pprof_wait_finish(j->wait);
    if (j->seconds > 0)
        zn_pprof_profile_sub(&p, &j->p0);
    zn_pprof_send_profile(j->req, j->def->name, j->seconds > 0, &p);
    zn_pprof_profile_release(&p);
    zn_pprof_profile_release(&j->p0);
}

/* ?seconds: 0 when absent, -1 after sending the 400 Go sends. */
static int64_t delta_seconds(h2o_req_t *req, const zn_pprof_snapshot_ops_t *ops, int debug)
{
    int64_t sec;
    zn_err_t err = zn_pprof_query_seconds(req, &sec);
    if (err == ZN_ENOENT)
        return 0;
    if (err != ZN_OK || sec <= 0) {
        zn_pprof_send_error(req, 400, "invalid value for \"seconds\" - must be a positive integer");
        return -1;
    }
    if (!ops->delta) {
        zn_pprof_send_error(req, 400, "\"seconds\" parameter is not supported for this profile type");
        return -1;
    }
    if (debug != 0) {
        zn_pprof_send_error(req, 400, "seconds and debug params are incompatible");
        return -1;
    }
    return zn_pprof_cap_seconds(sec);
}

int zn_pprof_serve_snapshot(h2o_req_t *req, const zn_pprof_def_t *def)
{
    const zn_pprof_snapshot_ops_t *ops = def->snap;
    int64_t debug = zn_pprof_query_int(req, "debug");
    int64_t seconds = delta_seconds(req, ops, debug != 0);
    if (seconds < 0)
        return 0;
    if (ops->gc != NULL && zn_pprof_query_int(req, "gc") > 0)
        ops->gc();

    job_t *j = h2o_mem_alloc_pool(&req->pool, sizeof(*j));
    memset(j, 0, sizeof(*j));
    j->req = req;
    j->def = def;
    j->ops = ops;
    j->debug = debug > 0 ? (debug > 2 ? 2 : (int)debug) : 0;
    j->seconds = seconds;
    j->wait = zn_pprof_wait_new(req, on_cancel, j);
    begin(j);
    return 0;
}
