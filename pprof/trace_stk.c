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
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

static uint64_t hash_pcs(const uintptr_t *pcs, uint32_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (uint32_t i = 0; i < n; i++) {
        h ^= (uint64_t)pcs[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h;
}

static void grow_slots(zn_trace_stktab_t *t)
{
    size_t n = t->nslots == 0 ? 256 : t->nslots * 2;
    uint32_t *slots = zn_calloc(n, sizeof(*slots));
    for (size_t i = 0; i < t->nents; i++) {
        size_t j = t->ents[i].hash & (n - 1);
        while (slots[j] != 0)
            j = (j + 1) & (n - 1);
        slots[j] = (uint32_t)i + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = n;
}

static uint32_t add(zn_trace_stktab_t *t, uint64_t h, const uintptr_t *pcs, uint32_t n, size_t slot)
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
    t->ents[t->nents] = (struct zn_trace_stkent){h, (uint32_t)t->npcs, n};
    t->npcs += n;
    t->slots[slot] = (uint32_t)++t->nents;
    return (uint32_t)t->nents - 1;
}

static uint32_t find(const zn_trace_stktab_t *t, uint64_t h, const uintptr_t *pcs, uint32_t n, size_t *slot)
{
    size_t j = h & (t->nslots - 1);
    for (; t->slots[j] != 0; j = (j + 1) & (t->nslots - 1)) {
        const struct zn_trace_stkent *e = &t->ents[t->slots[j] - 1];
        if (e->hash == h && e->n == n && memcmp(t->pcs + e->off, pcs, n * sizeof(*pcs)) == 0)
            return t->slots[j] - 1;
    }
    *slot = j;
    return UINT32_MAX;
}

uint32_t zn_trace_stktab_intern(zn_trace_stktab_t *t, const uintptr_t *pcs, uint32_t n)
{
    bool full = t->nents >= ZN_TRACE_STKTAB_MAX;
    size_t slot = 0;

    /* growing at half load keeps empty slots even when full, so find() ends */
    if (!full && t->nents * 2 >= t->nslots)
        grow_slots(t);
    uint64_t h = hash_pcs(pcs, n);
    uint32_t idx = find(t, h, pcs, n, &slot);
    if (idx != UINT32_MAX || full)
        return idx;
    return add(t, h, pcs, n, slot);
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
