/*
 * pprof/trace_http.c - GET /v2/_zot/pprof/trace?seconds=N, as net/http/pprof's Trace:
 * `seconds` is a float (missing, invalid or <= 0 means 1), a second trace while one runs
 * is answered 500 "Could not enable tracing: tracing is already enabled", and the trace is
 * streamed as it is recorded: the header at once, then every ~100 ms the chunks threads
 * have filled, then at the deadline the partial chunks and the footer.
 *
 * Nothing sleeps: a request-owned timer (zn_pprof_wait, the edge's) ticks on the worker's loop. The
 * generator lives in the request's pool. Every tick writes something (the starting
 * worker's own partial chunk at least), so a client that went away makes a write fail; h2o
 * then calls stop(): the trace ends at once and its data is dropped. Chunks are freed when
 * the pool is disposed, after h2o no longer looks at them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pprof/internal.h"
#include "pprof/trace.h"

#define TRACE_MEM_MAX (64u << 20) /* recorded but not yet sent; past it the trace ends early */

typedef struct trace_gen {
    h2o_generator_t super;
    h2o_req_t *req;
    zn_pprof_wait_t *wait;
    uint64_t deadline_ns;
    zn_trace_chunk_t *pending;  /* taken from the tracer, not yet given to h2o */
    zn_trace_chunk_t *inflight; /* given to h2o, kept until the pool goes */
    bool sending;               /* h2o has not called proceed for the last send */
    bool running;               /* our session is still recording */
    bool final_ready;           /* the footer is in pending */
    bool done;                  /* final send made, or the client went away */
} trace_gen_t;

static int symbolize(void *ctx, uintptr_t pc, zn_trace_symframe_t *out, int max)
{
    zn_pprof_sym_t s;
    zn_pprof_sym_lookup(pc, &s);
    int n = s.nframes < max ? s.nframes : max;
    for (int i = 0; i < n; i++)
        out[i] = (zn_trace_symframe_t){s.frames[i].func, s.frames[i].file, s.frames[i].line, s.func_start};
    return n;
}

static void append(zn_trace_chunk_t **list, zn_trace_chunk_t *more)
{
    while (*list != NULL)
        list = &(*list)->next;
    *list = more;
}

/* Gives every pending chunk to h2o in one send (final once the footer is among them). */
static void send_pending(trace_gen_t *g)
{
    size_t n = 0;
    for (zn_trace_chunk_t *c = g->pending; c != NULL; c = c->next)
        n++;
    if (g->done || g->sending || (n == 0 && !g->final_ready))
        return;
    h2o_iovec_t *bufs = h2o_mem_alloc_pool(&g->req->pool, sizeof(*bufs) * (n + 1));
    size_t i = 0;
    for (zn_trace_chunk_t *c = g->pending; c != NULL; c = c->next)
        bufs[i++] = h2o_iovec_init(c->data, c->len);
    append(&g->inflight, g->pending);
    g->pending = NULL;
    g->sending = true;
    if (g->final_ready)
        g->done = true;
    h2o_send(g->req, bufs, n, g->final_ready ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

/* Ends our session; with keep == false (client gone) the data is dropped unsymbolized. */
static void end_session(trace_gen_t *g, bool keep)
{
    if (!g->running)
        return;
    g->running = false;
    uint64_t t0 = zn_now_mono_ns();
    zn_trace_chunk_t *rest = zn_trace_stop(keep ? symbolize : NULL, NULL);
    zn_log(ZN_LOG_DEBUG, "pprof: trace stopped", ZN_LBOOL("sent", keep), ZN_LUINT("stop_us", (zn_now_mono_ns() - t0) / 1000));
    if (keep) {
        append(&g->pending, rest);
        g->final_ready = true;
    } else {
        zn_trace_chunks_free(rest);
    }
}

static void on_tick(void *data)
{
    trace_gen_t *g = data;
    zn_trace_flush_self();
    append(&g->pending, zn_trace_take());
    if (zn_now_mono_ns() >= g->deadline_ns || zn_trace_overflowed()) {
        if (zn_trace_overflowed())
            zn_log(ZN_LOG_WARN, "pprof: trace ended early, client too slow for the data rate",
                   ZN_LUINT("limit_bytes", TRACE_MEM_MAX));
        zn_pprof_wait_finish(g->wait);
        end_session(g, true);
    } else {
        zn_pprof_wait_arm(g->wait, on_tick);
    }
    send_pending(g);
}

static void on_proceed(h2o_generator_t *_g, h2o_req_t *req)
{
    trace_gen_t *g = (void *)_g;
    g->sending = false;
    send_pending(g);
}

/* The client went away (h2o stops the generator) or the request is being torn down. */
static void on_stop(h2o_generator_t *_g, h2o_req_t *req)
{
    trace_gen_t *g = (void *)_g;
    g->done = true;
    end_session(g, false);
}

/* The request is disposed before the trace ended (h2o stopped the generator first). */
static void on_cancel(void *data)
{
    on_stop(data, NULL);
}

static void on_dispose(void *data)
{
    trace_gen_t *g = data;
    end_session(g, false);
    zn_trace_chunks_free(g->pending);
    zn_trace_chunks_free(g->inflight);
}

/* Go's strconv.ParseFloat as net/http/pprof uses it: anything unparsable or <= 0 is 1 s. */
static double parse_seconds(h2o_req_t *req)
{
    char tmp[32], *end;
    if (zn_pprof_query(req, "seconds", tmp, sizeof(tmp)) != ZN_OK || tmp[0] == '\0')
        return 1;
    double s = strtod(tmp, &end);
    if (*end != '\0' || !isfinite(s) || s <= 0)
        return 1;
    return s;
}

static int on_trace(h2o_req_t *req, const zn_pprof_def_t *def)
{
    double seconds = parse_seconds(req);
    if (seconds > zn_pprof_settings.max_seconds) {
        zn_log(ZN_LOG_INFO, "pprof: trace duration capped by zinc.profiling.maxSeconds", ZN_LDBL("requested", seconds),
               ZN_LUINT("max", zn_pprof_settings.max_seconds));
        seconds = zn_pprof_settings.max_seconds;
    }
    zn_err_t err = zn_trace_start(TRACE_MEM_MAX);
    if (err != ZN_OK) {
        zn_pprof_send_error(req, 500,
                            err == ZN_EBUSY ? "Could not enable tracing: tracing is already enabled"
                                            : "Could not enable tracing: not a registered worker thread");
        return 0;
    }
    trace_gen_t *g = h2o_mem_alloc_shared(&req->pool, sizeof(*g), on_dispose);
    *g = (trace_gen_t){.super = {on_proceed, on_stop}, .req = req};
    g->running = true;
    g->deadline_ns = zn_now_mono_ns() + (uint64_t)(seconds * 1e9);
    g->wait = zn_pprof_wait_new(req, on_cancel, g);
    req->res.status = 200;
    req->res.reason = zn_edge_reason(200);
    zn_edge_header_add_ref(req, H2O_TOKEN_CONTENT_TYPE, H2O_STRLIT("application/octet-stream"));
    zn_edge_header_add_ref(req, H2O_TOKEN_CONTENT_DISPOSITION, H2O_STRLIT("attachment; filename=\"trace\""));
    zn_edge_header_add_name_ref(req, "x-content-type-options", H2O_STRLIT("nosniff"));
    h2o_start_response(req, &g->super);
    h2o_iovec_t head = h2o_iovec_init(ZN_TRACE_HEADER, ZN_TRACE_HEADER_LEN);
    g->sending = true;
    h2o_send(req, &head, 1, H2O_SEND_STATE_IN_PROGRESS);
    zn_pprof_wait_arm(g->wait, on_tick);
    return 0;
}

const zn_pprof_def_t zn_pprof_def_trace = {
    .name = "trace",
    .desc = "A trace of execution of the current program. You can specify the duration in the seconds GET parameter. "
            "After you get the trace file, use the go tool trace command to investigate the trace.",
    .in_index = true,
    .handler = on_trace,
};
