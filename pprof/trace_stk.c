/*
 * pprof/trace_stk.c - stack capture and the per-thread stack tables of the tracer.
 *
 * Each thread interns the stacks of its own events, so no lock is taken while recording;
 * ids carry the thread index in their low byte and are unique across the trace. Stacks are
 * stored as lookup addresses (return address - 1) so that the footer symbolizes the call
 * line, as pprof expects for callers. Capture uses glibc's backtrace() (the DWARF unwinder:
 * libh2o and libc have no frame pointers) and drops the tracer's own frames by looking for
 * the hook's return address.
 */
#include <execinfo.h>
#include <stdlib.h>
#include <string.h>

#include "pprof/trace_int.h"

void zn_trace_stktab_reset(zn_trace_stktab_t *t)
{
    free(t->pcs);
    free(t->ents);
    zn_htab_release(&t->index);
    memset(t, 0, sizeof(*t));
}

struct key {
    const zn_trace_stktab_t *t;
    const uintptr_t *pcs;
    uint32_t n;
};

static bool eq(void *ctx, uintptr_t i)
{
    const struct key *k = ctx;
    const struct zn_trace_stkent *e = &k->t->ents[i];
    return e->n == k->n && memcmp(k->t->pcs + e->off, k->pcs, k->n * sizeof(*k->pcs)) == 0;
}

static uint32_t add(zn_trace_stktab_t *t, uint64_t h, const uintptr_t *pcs, uint32_t n)
{
    if (t->npcs + n > t->cap_pcs) {
        t->cap_pcs = t->cap_pcs == 0 ? 1024 : t->cap_pcs * 2;
        if (t->cap_pcs < t->npcs + n)
            t->cap_pcs = t->npcs + n;
        t->pcs = zn_realloc(t->pcs, t->cap_pcs * sizeof(*t->pcs));
    }
    if (t->nents == t->cap_ents) {
        t->cap_ents = t->cap_ents == 0 ? 64 : t->cap_ents * 2;
        t->ents = zn_realloc(t->ents, t->cap_ents * sizeof(*t->ents));
    }
    memcpy(t->pcs + t->npcs, pcs, n * sizeof(*pcs));
    t->ents[t->nents] = (struct zn_trace_stkent){(uint32_t)t->npcs, n};
    t->npcs += n;
    zn_htab_insert(&t->index, h, (uint32_t)t->nents);
    return (uint32_t)t->nents++;
}

uint32_t zn_trace_stktab_intern(zn_trace_stktab_t *t, const uintptr_t *pcs, uint32_t n)
{
    struct key k = {t, pcs, n};
    uint64_t h = zn_hash(pcs, n * sizeof(*pcs), n);
    uintptr_t i;
    if (zn_htab_find(&t->index, h, eq, &k, &i))
        return (uint32_t)i;
    if (t->nents >= ZN_TRACE_STKTAB_MAX)
        return UINT32_MAX;
    return add(t, h, pcs, n);
}

int zn_trace_capture(uintptr_t *pcs, int max, uintptr_t anchor)
{
    void *buf[ZN_TRACE_STACK_MAX + 8];
    int n = backtrace(buf, ZN_TRACE_STACK_MAX + 8);
    int first = 1; /* buf[0] is in this function */
    for (int i = 1; i < n && i < 8; i++) {
        if ((uintptr_t)buf[i] == anchor) {
            first = i;
            break;
        }
    }
    int out = 0;
    for (int i = first; i < n && out < max; i++)
        pcs[out++] = (uintptr_t)buf[i] - 1;
    return out;
}
