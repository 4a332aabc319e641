/*
 * pprof/heap.h - between the allocator hooks (pprof/malloc/malloc.c, linked into the
 * executable itself) and the heap sampler (pprof/heap.c). Private to pprof.
 *
 * The hooks' fast path is a thread-local byte countdown (allocations) and one load from a
 * counting filter of sampled addresses (frees); everything else happens in heap.c.
 */
#ifndef ZN_PPROF_HEAP_H
#define ZN_PPROF_HEAP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes left before the next sampled allocation on this thread; heap.c refills it. */
extern __thread int64_t zn_pprof_heap_countdown __attribute__((tls_model("initial-exec")));
/* Non-zero while this thread is inside the sampler: allocations it makes are not sampled and
 * its frees are not looked up (they never free a sampled block). */
extern __thread int zn_pprof_heap_busy __attribute__((tls_model("initial-exec")));

/* How many sampled live blocks hash to each slot: free() looks up only when non-zero. */
#define ZN_PPROF_HEAP_FILTER_BITS 17
extern _Atomic uint32_t zn_pprof_heap_filter[1u << ZN_PPROF_HEAP_FILTER_BITS];
static inline size_t zn_pprof_heap_filter_slot(const void *p)
{
    return (size_t)((((uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ull) >> (64 - ZN_PPROF_HEAP_FILTER_BITS));
}

/* The countdown went below zero on an allocation of size bytes that returned p (not NULL). */
void zn_pprof_heap_alloc_slow(void *p, size_t size);
/* p is about to be freed and the filter says it may be a sampled block. */
void zn_pprof_heap_free_slow(void *p);

/* Defined by malloc.c: its presence tells heap.c that allocations are hooked. */
extern const int zn_pprof_heap_hooked;

#endif
