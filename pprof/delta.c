/*
 * pprof/delta.c - godeltaprof's endpoints (delta_heap, delta_mutex, delta_block), which
 * continuous profilers (Grafana Pyroscope's `godeltaprof_*` jobs) scrape instead of the
 * cumulative profiles: each answer is the difference of the cumulative counters since the
 * previous scrape of the same endpoint.
 *
 *   delta_heap   alloc_objects / alloc_space: current - previous; inuse_*: as they are now
 *   delta_mutex, delta_block: contentions / delay: current - previous
 *
 * The first scrape of an endpoint answers the whole cumulative profile (nothing to subtract,
 * as godeltaprof does). Counters never decrease, but a bucket may be dropped from the
 * collector's table; a negative difference is then reported as 0, not as negative work.
 * Each prefix (/v2/_zot/pprof/ and the debug listener's /debug/pprof/) keeps its own
 * previous profile, so two scrapers on two prefixes do not steal each other's deltas. The
 * previous profiles are owned here and live until exit; one mutex serializes scrapes.
 */
#include <string.h>

#include "pprof/internal.h"
#include "pprof/lockprof.h"

#define PREFIXES 2

typedef struct delta_state {
    bool have;
    zn_pprof_profile_t prev;
} delta_state_t;

static zn_mutex_t delta_lock = ZN_MUTEX_INITIALIZER("pprof delta");
static delta_state_t states[PREFIXES][3];

/* Numeric labels are dropped: heap's bytes=<average block size> moves as a bucket grows, and
 * a sample must match its previous self by stack and string labels alone. */
static void copy_profile(zn_pprof_profile_t *dst, const zn_pprof_profile_t *src)
{
    zn_pprof_profile_init(dst, src->kind);
    for (size_t i = 0; i < src->nsamples; i++) {
        const zn_pprof_sample_t *s = &src->samples[i];
        zn_pprof_label_t labels[ZN_PPROF_LABELS_MAX];
        size_t n = 0;
        for (uint32_t j = 0; j < s->nlabels; j++)
            if (s->labels[j].str != NULL)
                labels[n++] = s->labels[j];
        zn_pprof_profile_add(dst, zn_pprof_sample_pcs(src, s), s->depth, s->values, labels, n);
    }
    dst->time_nanos = src->time_nanos;
    dst->duration_nanos = src->duration_nanos;
}

void zn_pprof_delta_apply(zn_pprof_profile_t *cur, const zn_pprof_profile_t *prev, size_t ncumulative)
{
    zn_pprof_profile_t base, stripped;
    copy_profile(&stripped, cur);
    stripped.comments = cur->comments; /* moved: "why empty" notes survive */
    stripped.ncomments = cur->ncomments;
    cur->comments = NULL;
    cur->ncomments = 0;
    zn_pprof_profile_release(cur);
    *cur = stripped;
    copy_profile(&base, prev);
    /* values past the cumulative ones (heap's inuse_*) are reported as they are now */
    for (size_t i = 0; i < base.nsamples; i++)
        for (size_t k = ncumulative; k < base.kind->nvalues; k++)
            base.samples[i].values[k] = 0;
    zn_pprof_profile_sub(cur, &base);
    for (size_t i = 0; i < cur->nsamples; i++)
        for (size_t k = 0; k < cur->kind->nvalues; k++)
            if (cur->samples[i].values[k] < 0)
                cur->samples[i].values[k] = 0;
    zn_pprof_profile_merge(cur); /* drops the samples that became all zero */
    zn_pprof_profile_release(&base);
}

static int prefix_of(h2o_req_t *req)
{
    static const char debug[] = "/debug/";
    return req->input.path.len >= sizeof(debug) - 1 && memcmp(req->input.path.base, debug, sizeof(debug) - 1) == 0;
}

static int serve_delta(h2o_req_t *req, const zn_pprof_def_t *def, const zn_pprof_def_t *base, int which, size_t ncumulative)
{
    const zn_pprof_snapshot_ops_t *ops = base->snap;
    zn_pprof_profile_t cur;

    if (zn_pprof_query_int(req, "debug") != 0) {
        zn_pprof_send_error(req, 400, "debug is not supported for delta profiles");
        return 0;
    }
    zn_pprof_profile_init(&cur, ops->kind);
    zn_mutex_lock(&delta_lock);
    if (ops->collect(NULL, &cur) != ZN_OK) {
        zn_mutex_unlock(&delta_lock);
        zn_pprof_profile_release(&cur);
        zn_pprof_send_error(req, 500, "failed to collect profile");
        return 0;
    }
    delta_state_t *st = &states[prefix_of(req)][which];
    zn_pprof_profile_t next;
    copy_profile(&next, &cur);
    if (st->have) {
        zn_pprof_delta_apply(&cur, &st->prev, ncumulative);
        zn_pprof_profile_release(&st->prev);
    }
    st->prev = next;
    st->have = true;
    zn_mutex_unlock(&delta_lock);
    zn_pprof_send_profile(req, def->name, false, &cur);
    zn_pprof_profile_release(&cur);
    return 0;
}

static int on_delta_heap(h2o_req_t *req, const zn_pprof_def_t *def)
{
    if (zn_pprof_def_heap.snap->gc != NULL && zn_pprof_query_int(req, "gc") > 0)
        zn_pprof_def_heap.snap->gc();
    return serve_delta(req, def, &zn_pprof_def_heap, 0, 2);
}

static int on_delta_mutex(h2o_req_t *req, const zn_pprof_def_t *def)
{
    return serve_delta(req, def, &zn_pprof_def_mutex, 1, 2);
}

static int on_delta_block(h2o_req_t *req, const zn_pprof_def_t *def)
{
    return serve_delta(req, def, &zn_pprof_def_block, 2, 2);
}

const zn_pprof_def_t zn_pprof_def_delta_heap = {
    .name = "delta_heap",
    .desc = "The heap profile's allocations since the previous scrape of this endpoint (godeltaprof), live memory as it is",
    .in_index = false, /* as godeltaprof, which net/http/pprof's index does not list */
    .handler = on_delta_heap,
};

const zn_pprof_def_t zn_pprof_def_delta_mutex = {
    .name = "delta_mutex",
    .desc = "The mutex profile since the previous scrape of this endpoint (godeltaprof)",
    .in_index = false, /* as godeltaprof, which net/http/pprof's index does not list */
    .handler = on_delta_mutex,
};

const zn_pprof_def_t zn_pprof_def_delta_block = {
    .name = "delta_block",
    .desc = "The block profile since the previous scrape of this endpoint (godeltaprof)",
    .in_index = false, /* as godeltaprof, which net/http/pprof's index does not list */
    .handler = on_delta_block,
};
