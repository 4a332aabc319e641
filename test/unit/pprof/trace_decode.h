/*
 * test/unit/pprof/trace_decode.h - a small independent reader of Go 1.19 traces for the
 * tracer's tests (included by test_trace_enc.c and test_trace.c; not a test itself).
 *
 * It checks what Go's parser relies on without sharing code with the encoder: the header,
 * a Batch before any event, argument counts per event type, length-prefixed sizes within
 * Go 1.22's 2048-byte limit, one GoCreate per G, gap-free sequence numbers per G, and that
 * every stack id an event names has a Stack record.
 */
#ifndef ZN_TEST_TRACE_DECODE_H
#define ZN_TEST_TRACE_DECODE_H

#include <stdlib.h>

#include "pprof/trace_enc.h"

/* Arguments after the type byte (timestamp included) of each type zinc writes; -1 unknown. */
static int td_want_args(uint8_t type)
{
    switch (type) {
    case ZN_TEV_BATCH:
        return 2;
    case ZN_TEV_FREQUENCY:
    case ZN_TEV_PROC_STOP:
    case ZN_TEV_GO_END:
    case ZN_TEV_GO_SYSBLOCK:
        return 1;
    case ZN_TEV_PROC_START:
    case ZN_TEV_GO_WAITING:
    case ZN_TEV_GO_INSYSCALL:
    case ZN_TEV_GO_BLOCK_SYNC:
    case ZN_TEV_GO_BLOCK_COND:
    case ZN_TEV_GO_BLOCK_NET:
    case ZN_TEV_GO_SYSCALL:
    case ZN_TEV_GO_PREEMPT:
        return 2;
    case ZN_TEV_GOMAXPROCS:
    case ZN_TEV_GO_START:
    case ZN_TEV_USER_TASK_END:
        return 3;
    case ZN_TEV_GO_CREATE:
    case ZN_TEV_GO_UNBLOCK:
    case ZN_TEV_GO_SYSEXIT:
    case ZN_TEV_USER_LOG:
        return 4;
    case ZN_TEV_USER_TASK_CREATE:
    case ZN_TEV_USER_REGION:
        return 5;
    }
    return -1;
}

typedef struct td_pair {
    uint64_t a, b;
} td_pair_t;

typedef struct td_stats {
    int events, batches, strings, stacks, creates;
    int count[64];      /* events per type */
    td_pair_t *seqs;    /* (g, seq) of GoWaiting/GoInSyscall (seq 1), GoStart, GoUnblock, GoSysExit */
    size_t nseqs;
    td_pair_t *stk_refs; /* (stack id, 0) named by events */
    size_t nrefs;
    uint64_t *stk_defs;
    size_t ndefs;
    uint64_t *gs_created;
    size_t ncreated;
} td_stats_t;

static void td_push(td_pair_t **v, size_t *n, uint64_t a, uint64_t b)
{
    *v = realloc(*v, (*n + 1) * sizeof(**v));
    assert_non_null(*v);
    (*v)[(*n)++] = (td_pair_t){a, b};
}

static void td_args(const uint8_t **p, const uint8_t *end, uint8_t b0, uint64_t *args, int max, int *n)
{
    int inl = (b0 >> 6) + 1;
    *n = 0;
    if (inl < 4) {
        for (; *n < inl; (*n)++)
            assert_int_equal(zn_trace_get_uvarint(p, end, &args[*n]), 0);
        return;
    }
    uint64_t len;
    assert_int_equal(zn_trace_get_uvarint(p, end, &len), 0);
    assert_true(len <= 2048 && len <= (uint64_t)(end - *p));
    const uint8_t *aend = *p + len;
    while (*p < aend) {
        assert_true(*n < max);
        assert_int_equal(zn_trace_get_uvarint(p, aend, &args[(*n)++]), 0);
    }
}

static void td_skip_bytes(const uint8_t **p, const uint8_t *end, int allow_empty)
{
    uint64_t v;
    assert_int_equal(zn_trace_get_uvarint(p, end, &v), 0);
    assert_true((allow_empty || v > 0) && v <= (uint64_t)(end - *p));
    *p += v;
}

static void td_note(td_stats_t *d, uint8_t type, const uint64_t *a, int n)
{
    if (type == ZN_TEV_GO_START || type == ZN_TEV_GO_UNBLOCK || type == ZN_TEV_GO_SYSEXIT)
        td_push(&d->seqs, &d->nseqs, a[1], a[2]);
    if (type == ZN_TEV_GO_WAITING || type == ZN_TEV_GO_INSYSCALL)
        td_push(&d->seqs, &d->nseqs, a[1], 1);
    if (type == ZN_TEV_GO_CREATE) {
        d->creates++;
        d->gs_created = realloc(d->gs_created, (d->ncreated + 1) * sizeof(uint64_t));
        d->gs_created[d->ncreated++] = a[1];
        td_push(&d->stk_refs, &d->nrefs, a[2], 0); /* the start stack must exist: the viewer reads it */
    }
    static const uint8_t with_stack[] = {ZN_TEV_GO_CREATE,    ZN_TEV_GO_UNBLOCK, ZN_TEV_GO_BLOCK_SYNC, ZN_TEV_GO_BLOCK_COND,
                                         ZN_TEV_GO_BLOCK_NET, ZN_TEV_GO_SYSCALL, ZN_TEV_USER_TASK_CREATE,
                                         ZN_TEV_USER_TASK_END, ZN_TEV_USER_REGION, ZN_TEV_USER_LOG};
    for (size_t i = 0; i < sizeof(with_stack); i++)
        if (type == with_stack[i] && a[n - 1] != 0)
            td_push(&d->stk_refs, &d->nrefs, a[n - 1], 0);
}

static void td_event(td_stats_t *d, const uint8_t **p, const uint8_t *end)
{
    uint64_t a[2 + 4 * ZN_TRACE_STACK_MAX];
    int n;
    uint8_t b0 = *(*p)++, type = b0 & 0x3f;
    if (type == ZN_TEV_STRING) {
        uint64_t id;
        assert_int_equal(zn_trace_get_uvarint(p, end, &id), 0);
        assert_true(id != 0);
        td_skip_bytes(p, end, 0);
        d->strings++;
        return;
    }
    assert_true(d->batches > 0 || type == ZN_TEV_BATCH); /* Go 1.22+: a batch comes first */
    td_args(p, end, b0, a, 2 + 4 * ZN_TRACE_STACK_MAX, &n);
    if (type == ZN_TEV_STACK) {
        assert_true(n >= 2 && a[1] <= ZN_TRACE_STACK_MAX && n == 2 + 4 * (int)a[1]);
        assert_true(a[0] != 0 && a[0] <= UINT32_MAX);
        d->stk_defs = realloc(d->stk_defs, (d->ndefs + 1) * sizeof(uint64_t));
        d->stk_defs[d->ndefs++] = a[0];
        d->stacks++;
        return;
    }
    assert_int_equal(n, td_want_args(type));
    d->batches += type == ZN_TEV_BATCH;
    d->events++;
    d->count[type]++;
    td_note(d, type, a, n);
    if (type == ZN_TEV_USER_LOG)
        td_skip_bytes(p, end, 1);
}

static int td_cmp(const void *x, const void *y)
{
    const td_pair_t *a = x, *b = y;
    return a->a != b->a ? (a->a < b->a ? -1 : 1) : a->b != b->b ? (a->b < b->b ? -1 : 1) : 0;
}

static int td_cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static void td_check_links(td_stats_t *d)
{
    /* per G the sequence numbers are exactly 1, 2, ... k */
    qsort(d->seqs, d->nseqs, sizeof(td_pair_t), td_cmp);
    for (size_t i = 0; i < d->nseqs; i++) {
        uint64_t want = i == 0 || d->seqs[i - 1].a != d->seqs[i].a ? 1 : d->seqs[i - 1].b + 1;
        assert_true(d->seqs[i].b == want);
    }
    qsort(d->gs_created, d->ncreated, sizeof(uint64_t), td_cmp_u64);
    for (size_t i = 1; i < d->ncreated; i++)
        assert_true(d->gs_created[i] != d->gs_created[i - 1]); /* one GoCreate per G */
    qsort(d->stk_defs, d->ndefs, sizeof(uint64_t), td_cmp_u64);
    for (size_t i = 1; i < d->ndefs; i++)
        assert_true(d->stk_defs[i] != d->stk_defs[i - 1]);
    for (size_t i = 0; i < d->nrefs; i++)
        assert_non_null(bsearch(&d->stk_refs[i].a, d->stk_defs, d->ndefs, sizeof(uint64_t), td_cmp_u64));
}

/* Decodes and checks a whole trace; the caller releases with td_release(). */
static td_stats_t td_decode(const uint8_t *p, size_t len)
{
    td_stats_t d;
    memset(&d, 0, sizeof(d));
    const uint8_t *end = p + len;
    assert_true(len > ZN_TRACE_HEADER_LEN);
    assert_memory_equal(p, ZN_TRACE_HEADER, ZN_TRACE_HEADER_LEN);
    for (p += ZN_TRACE_HEADER_LEN; p < end;)
        td_event(&d, &p, end);
    td_check_links(&d);
    return d;
}

static void td_release(td_stats_t *d)
{
    free(d->seqs);
    free(d->stk_refs);
    free(d->stk_defs);
    free(d->gs_created);
}

#endif
