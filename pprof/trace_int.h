/*
 * pprof/trace_int.h - what trace.c, trace_stk.c and trace_footer.c share.
 *
 * Per-thread state lives in a static array indexed by the thread's registry id (slots are
 * never reused). Fields marked "owner" are touched only by that thread while it is inside a
 * write (busy == 1) and by the collector once every writer has left; `decl` and `busy` are
 * the only fields two threads race on.
 */
#ifndef ZN_PPROF_TRACE_INT_H
#define ZN_PPROF_TRACE_INT_H

#include "pprof/internal.h"
#include "pprof/trace.h"

/* decl = epoch << 2 | how the G was declared to the parser in that session */
enum { DECL_RUNNABLE = 0, DECL_WAITING = 1, DECL_INSYSCALL = 2, DECL_SELF = 3 };

/* Where the G is, as the parser was told. */
enum {
    PARK_NONE = 0, /* running */
    PARK_WAIT,     /* GoBlock* written (or declared waiting): the wake writes GoUnblock + GoStart */
    PARK_SYSCALL,  /* GoSysCall written: the return decides about GoSysBlock */
    PARK_INSYSCALL /* declared in a syscall: the return writes GoSysExit + GoStart */
};

/* Interned stacks of one thread: lookup addresses stored flat, indexed by hash. */
typedef struct zn_trace_stktab {
    uintptr_t *pcs;
    size_t npcs, cap_pcs;
    struct zn_trace_stkent {
        uint32_t off, n;
    } * ents;
    size_t nents, cap_ents;
    zn_htab_t index;
} zn_trace_stktab_t;

#define ZN_TRACE_STKTAB_MAX (1u << 20) /* stacks per thread; ids must fit 32 bits for Go 1.22+ */
#define ZN_TRACE_SITE_CACHE 32
#define ZN_TRACE_ROUTES_MAX 64
#define ZN_TRACE_REGIONS_MAX 8

typedef struct zn_trace_thread {
    _Atomic uint64_t decl;
    _Atomic int busy;
    /* owner */
    uint64_t epoch;
    zn_trace_chunk_t *chunk;
    zn_trace_buf_t buf;
    size_t batch_len; /* bytes of the Batch header: more means the chunk holds events */
    zn_trace_g_t g;
    int park;
    uint64_t park_stk, park_ts;
    zn_trace_stktab_t stk;
    struct {
        uintptr_t site, frame;
        uint64_t id;
    } sites[ZN_TRACE_SITE_CACHE];
    struct {
        const char *name;
        uint64_t id;
    } routes[ZN_TRACE_ROUTES_MAX];
    int nroutes;
    struct {
        uint64_t task, name;
    } regions[ZN_TRACE_REGIONS_MAX];
    int nregions, regions_lost;
} zn_trace_thread_t;

extern zn_trace_thread_t zn_trace_threads[ZN_THREADS_MAX];

/* Nanoseconds reserved after t0 for the start section (at most 3 + 2 * 255 + 1 events). */
#define ZN_TRACE_START_SPAN 4096

#define ZN_TRACE_STR_REPO 1 /* string id of "repo", written by every footer */

/* Session state shared by the starter/consumer and the writers. */
typedef struct zn_trace_session {
    _Atomic uint64_t on;              /* epoch while recording, else 0 */
    _Atomic(zn_trace_chunk_t *) full; /* flushed chunks, newest first */
    _Atomic size_t bytes;             /* chunk memory not yet taken */
    _Atomic bool overflow;
    _Atomic uint64_t next_task, next_string;
    size_t max_bytes;
    uint64_t t0;      /* timestamp of the start section */
    uint64_t t0_wall; /* the same moment on the wall clock (thread creation times) */
    uint64_t epoch;   /* of the session being collected */
} zn_trace_session_t;
extern zn_trace_session_t zn_trace_sess;

/* trace_stk.c */
void zn_trace_stktab_reset(zn_trace_stktab_t *t);
/* Index of the stack (added if new), or UINT32_MAX when the table is full. */
uint32_t zn_trace_stktab_intern(zn_trace_stktab_t *t, const uintptr_t *pcs, uint32_t n);
/* Captures the calling thread's stack as lookup addresses, starting at the frame whose
 * return address is `anchor` (found among the first frames; else from the caller). */
int zn_trace_capture(uintptr_t *pcs, int max, uintptr_t anchor);
/* The trace stack id for thread index `ti`'s stack number idx (0 = none). */
static inline uint64_t zn_trace_stack_id(int ti, uint32_t idx)
{
    return idx == UINT32_MAX ? 0 : ((uint64_t)(idx + 1) << 8) | (uint64_t)ti;
}

#endif
