/*
 * pprof/trace.h - the execution tracer's runtime (private to pprof/).
 *
 * One session at a time. Each registered thread is one P and one G (ids: registry index
 * and index + 1) and writes its own events into its own 64 KiB chunks; full chunks go to a
 * lock-free list the HTTP side takes and streams; at the end every thread's partial chunk
 * is collected and the footer (Frequency, Strings, Stacks) is built and symbolized.
 *
 * Start without stopping the world: the starter publishes the session (`on` = epoch), then
 * declares every other thread by CAS on that thread's `decl` word: runnable, or waiting /
 * in syscall when its zn_thread_info_t.state says it is parked. A thread that sees the
 * session before being declared declares itself (GoCreate on its own P). Because a thread
 * stores its state before it loads `on` and the starter stores `on` before it loads the
 * states (all seq_cst), whichever way the race goes both sides agree on what the parser
 * was told. Stop: `on` = 0, then wait until no thread is inside a write (`busy`).
 *
 * Cost when no trace runs: each hook loads `on` once and branches.
 */
#ifndef ZN_PPROF_TRACE_H
#define ZN_PPROF_TRACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/zn.h"
#include "pprof/trace_enc.h"

#define ZN_TRACE_CHUNK_SIZE (64 * 1024)
#define ZN_TRACE_SYSBLOCK_NS 20000 /* a syscall this long is shown blocked (Go's sysmon: 20us) */

/* A flushed batch (or the footer): `len` bytes of trace data, linked oldest first. */
typedef struct zn_trace_chunk {
    struct zn_trace_chunk *next;
    size_t len;
    uint8_t data[];
} zn_trace_chunk_t;

/* Frees a list of chunks. */
void zn_trace_chunks_free(zn_trace_chunk_t *c);

/* Installs the lock and syscall hooks (once, before threads start). */
void zn_trace_init(void);

/* True while a session records (one atomic load). */
bool zn_trace_active(void);

/* Starts a session from the calling (registered) thread, keeping at most max_bytes of trace
 * data in memory (chunks not yet taken); on ZN_OK the start section is written (the caller
 * sends ZN_TRACE_HEADER first). ZN_EBUSY: a session runs already; ZN_EINVAL: the caller is
 * not a registered thread. */
zn_err_t zn_trace_start(size_t max_bytes);

/* Chunks flushed since the last call, oldest first; the caller frees them (or keeps them
 * until h2o is done sending). Only the thread that started the session calls this. */
zn_trace_chunk_t *zn_trace_take(void);

/* Hands the calling thread's partial chunk to the list zn_trace_take reads (the HTTP side
 * calls it every tick so that something is written and a client that left is noticed). */
void zn_trace_flush_self(void);

/* True when the session ended by itself (memory cap reached); zn_trace_stop must still run. */
bool zn_trace_overflowed(void);

/* What the footer needs to name a lookup address: the inline chain, innermost first. */
typedef struct zn_trace_symframe {
    const char *fn, *file;
    int line;
    uintptr_t func_start; /* address of the enclosing ELF symbol (same for every inline frame), 0 = unknown */
} zn_trace_symframe_t;
typedef int (*zn_trace_symbolize_fn)(void *ctx, uintptr_t pc, zn_trace_symframe_t *out, int max);

/* Ends the session: stops recording, waits for writers to leave, and returns the remaining
 * chunks with the footer last (the caller frees them). Symbolizes every address seen with
 * sym (called on this thread; NULL writes no names) and ends each stack at its thread's
 * start function, as Go's stacks end at the goroutine's function (Go 1.22+ names a
 * goroutine by that root frame). Afterwards a new session may start. */
zn_trace_chunk_t *zn_trace_stop(zn_trace_symbolize_fn sym, void *ctx);

struct zn_pprof_listener;
/* Calls zn_trace_req_begin/end around requests (listed in pprof/registry.c). */
extern const struct zn_pprof_listener zn_trace_listener;
extern const struct zn_pprof_def zn_pprof_def_trace;

/* Request task and region (the pprof request listener calls these): a task named route with
 * a region of the same name and, when repo != NULL, a log "repo" = repo; end closes the
 * innermost. Must nest on a thread. */
void zn_trace_req_begin(const char *route, const char *repo);
void zn_trace_req_end(void);

/* Slow paths of the lock wrappers (lockprof.c installs them with its own lock hooks):
 * GoBlockSync (GoBlockCond for conditions) before the wait, GoUnblock + GoStart after. */
void zn_trace_lock_begin(const void *lock, zn_lock_kind_t kind);
void zn_trace_lock_end(const void *lock);

/* The event loop's wait for I/O (pprof/trace_net.c brackets epoll_wait with these): site and
 * frame identify the call site for the stack cache. */
void zn_trace_net_block(uintptr_t site, uintptr_t frame);
void zn_trace_net_unblock(void);
/* True when this executable's epoll_wait is the one the event loop calls (linked with
 * -rdynamic); zn_trace_init logs a warning otherwise. Also keeps trace_net.o linked in. */
bool zn_trace_net_interposed(void);

#endif
