/*
 * pprof/internal.h - what the files of the pprof module share; no other module includes it.
 *
 * Layers, bottom up:
 *   - per-thread profiler state (zn_pprof_thread_t, hung off zn_thread_info_t.pprof) and the
 *     listeners that collectors register to see threads start and exit and requests begin/end;
 *   - the symbolizer (symbol.c): pc -> inline chain of {function, file, line}, plus the table
 *     of executable mappings with build ids; results are cached and live forever;
 *   - a profile in memory (zn_pprof_profile_t, profile.c): samples of lookup addresses,
 *     values and labels, delta (p1 - p0), and the profile.proto encoder (encode.c) that
 *     symbolizes every address and gzips the result;
 *   - text renderings shared by the debug=1/2 formats (text.c);
 *   - HTTP helpers (http.c): errors and bodies with the headers net/http/pprof sends, query
 *     parsing, and a request-owned timer to wait without blocking the worker;
 *   - the table of profiles the index lists and /v2/_zot/pprof/{name} dispatches (registry.c),
 *     and the shared handler for snapshot profiles with ?debug and ?seconds (serve.c).
 * Collectors (cpu.c, heap.c, snapshot.c, threadcreate.c; trace*.c and lockprof*.c from the
 * tracing work) plug into the listeners and the registry.
 */
#ifndef ZN_PPROF_INTERNAL_H
#define ZN_PPROF_INTERNAL_H

#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include <h2o.h>

#include "common/edge/edge.h"
#include "common/route.h"
#include "common/zn.h"
#include "config/config.h"

/* ---- limits ------------------------------------------------------------------------------ */

#define ZN_PPROF_DEPTH_MAX 64   /* frames kept per stack */
#define ZN_PPROF_VALUES_MAX 4   /* values per sample (heap has 4) */
#define ZN_PPROF_LABELS_MAX 5   /* labels per sample (goroutine: thread, state, tid, route, repo) */
#define ZN_PPROF_INLINE_MAX 8   /* inline frames per address */
#define ZN_PPROF_MAPPINGS_MAX 1024 /* executable mappings the symbolizer tracks */
#define ZN_PPROF_BODY_MAX (256u << 20) /* largest response we build */
#define ZN_PPROF_PERIOD_NS 10000000    /* 100 Hz CPU sampling */
#define ZN_PPROF_HEAP_RATE 524288      /* mean bytes between heap samples */

/* Signal a thread is sent to snapshot its own stack (goroutine profile). SIGPROF is the CPU
 * timer's. Tracing (issue 6) must pick another one. */
#define ZN_PPROF_SIG_SNAPSHOT (SIGRTMIN + 2)

/* ---- module settings (zn_pprof_init; read-only afterwards) -------------------------------- */

typedef struct zn_pprof_settings {
    unsigned max_seconds; /* zinc.profiling.maxSeconds */
    bool heap_sampling;   /* zinc.profiling.heap */
    unsigned mutex_rate;  /* zinc.profiling.mutexRate */
    unsigned block_rate_ns;
} zn_pprof_settings_t;
extern zn_pprof_settings_t zn_pprof_settings;

/* ---- per-thread state ---------------------------------------------------------------------- */

/* A stack a thread wrote about itself from a signal handler, guarded by a sequence number
 * (seqlock): the handler sets seq to 0, writes, then stores the snapshot's seq (release). */
typedef struct zn_pprof_snap_slot {
    _Atomic uint64_t seq;
    int depth;
    const char *route, *repo; /* the thread's request when it answered, or NULL */
    uintptr_t pcs[ZN_PPROF_DEPTH_MAX];
} zn_pprof_snap_slot_t;

struct zn_pprof_cpu_ring;

/* One per registered thread, allocated when the thread starts (or at zn_pprof_init for threads
 * registered before it) and never freed: registry slots are never reused, and signal handlers
 * may still look at it. */
typedef struct zn_pprof_thread {
    zn_thread_info_t *info;
    /* cpu.c: the sample ring (allocated when a profile first needs it) and the timer, both
     * guarded by the CPU profiler's lock except the ring's producer side (signal handler). */
    struct zn_pprof_cpu_ring *_Atomic cpu_ring;
    timer_t cpu_timer;
    bool cpu_armed;
    /* snapshot.c */
    zn_pprof_snap_slot_t snap;
    /* owned by trace*.c / lockprof*.c */
    void *trace;
    void *lockprof;
} zn_pprof_thread_t;

/* The calling thread's state, NULL if it is not registered. Async-signal-safe. */
static inline zn_pprof_thread_t *zn_pprof_thread_self(void)
{
    zn_thread_info_t *t = zn_thread_self();
    return t != NULL ? t->pprof : NULL;
}

/* Collectors that want to know about threads and requests. Every callback may be NULL and runs
 * on the thread concerned. on_start runs before the thread does any work, on_exit as it ends. */
typedef struct zn_pprof_listener {
    void (*on_start)(zn_pprof_thread_t *th);
    void (*on_exit)(zn_pprof_thread_t *th);
    void (*on_req_begin)(zn_pprof_thread_t *th, const char *route, const char *repo);
    void (*on_req_end)(zn_pprof_thread_t *th);
} zn_pprof_listener_t;
/* NULL-terminated, in registry.c. */
extern const zn_pprof_listener_t *const zn_pprof_listeners[];

/* ---- symbolizer (symbol.c) ----------------------------------------------------------------- */

typedef struct zn_pprof_frame {
    const char *func; /* "" when unknown; no @VERSION suffix */
    const char *file; /* "" when unknown */
    int line;         /* 0 when unknown */
    int start_line;   /* declaration line of the function, 0 when unknown */
} zn_pprof_frame_t;

typedef struct zn_pprof_sym {
    uintptr_t pc;
    uintptr_t func_start; /* address of the enclosing ELF symbol, 0 when unknown */
    int mapping;          /* index for zn_pprof_sym_mapping(), -1 when outside every mapping */
    int nframes;          /* inline chain, innermost first; 0 when nothing is known */
    zn_pprof_frame_t frames[ZN_PPROF_INLINE_MAX];
} zn_pprof_sym_t;

typedef struct zn_pprof_mapping {
    uintptr_t start, limit, offset;
    const char *file;     /* path as in /proc/self/maps ("[vdso]" too) */
    const char *build_id; /* lower-case hex, "" when unknown */
    bool is_main;         /* the zinc executable */
} zn_pprof_mapping_t;

/* Symbolizes lookup address pc (exact pc of an interrupted leaf, return address - 1 for a
 * caller) into *out; the strings it points to are interned and live until exit. Results are
 * cached by address. Thread-safe (one lock); never call it from a signal handler or from
 * inside malloc. An address outside every mapping yields mapping -1 and no frames. */
void zn_pprof_sym_lookup(uintptr_t pc, zn_pprof_sym_t *out);
/* Executable mappings seen so far (the table only grows; entries are immutable and live until
 * exit). The main executable's text comes first. */
int zn_pprof_sym_mapping_count(void);
const zn_pprof_mapping_t *zn_pprof_sym_mapping(int i);

/* ---- profiles in memory (profile.c) and their encoding (encode.c) --------------------------- */

typedef struct zn_pprof_vtype {
    const char *type, *unit;
} zn_pprof_vtype_t;

/* What a profile measures; static tables in the collectors. */
typedef struct zn_pprof_kind {
    size_t nvalues;
    zn_pprof_vtype_t types[ZN_PPROF_VALUES_MAX];
    zn_pprof_vtype_t period_type;
    int64_t period;
    int default_type; /* index into types, -1 for none */
} zn_pprof_kind_t;

/* A label: string when str != NULL, else numeric (unit may be NULL). The strings are not copied:
 * they must outlive the profile (static strings, route names, registry thread names). */
typedef struct zn_pprof_label {
    const char *key;
    const char *str;
    int64_t num;
    const char *unit;
} zn_pprof_label_t;

typedef struct zn_pprof_sample {
    size_t pcs_off; /* into profile->pcs */
    uint32_t depth;
    uint32_t nlabels;
    int64_t values[ZN_PPROF_VALUES_MAX];
    zn_pprof_label_t labels[ZN_PPROF_LABELS_MAX];
} zn_pprof_sample_t;

typedef struct zn_pprof_profile {
    const zn_pprof_kind_t *kind;
    zn_pprof_sample_t *samples;
    size_t nsamples, _cap_samples;
    uintptr_t *pcs; /* every sample's lookup addresses, leaf first */
    size_t npcs, _cap_pcs;
    int64_t time_nanos, duration_nanos;
    char **comments; /* owned */
    size_t ncomments;
} zn_pprof_profile_t;

void zn_pprof_profile_init(zn_pprof_profile_t *p, const zn_pprof_kind_t *kind);
void zn_pprof_profile_release(zn_pprof_profile_t *p);
/* Appends a sample; pcs (at most ZN_PPROF_DEPTH_MAX are kept) and kind->nvalues values are
 * copied, labels (at most ZN_PPROF_LABELS_MAX) are copied by pointer. Dies on OOM. */
void zn_pprof_profile_add(zn_pprof_profile_t *p, const uintptr_t *pcs, size_t depth, const int64_t *values,
                          const zn_pprof_label_t *labels, size_t nlabels);
void zn_pprof_profile_comment(zn_pprof_profile_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline const uintptr_t *zn_pprof_sample_pcs(const zn_pprof_profile_t *p, const zn_pprof_sample_t *s)
{
    return p->pcs + s->pcs_off;
}
/* Merges samples with the same stack and labels (summing values), in first-seen order. */
void zn_pprof_profile_merge(zn_pprof_profile_t *p);
/* p1 becomes p1 - p0 (as net/http/pprof's delta: p0 scaled by -1 and merged), samples whose
 * values are all zero are dropped, duration = p1.time - p0.time. Both need the same kind. */
void zn_pprof_profile_sub(zn_pprof_profile_t *p1, const zn_pprof_profile_t *p0);

/* Serializes p as profile.proto, symbolizing every address; appended to out (not gzip'd). */
zn_err_t zn_pprof_profile_serialize(const zn_pprof_profile_t *p, zn_buf_t *out);
/* Same, gzip'd (what the endpoints send). */
zn_err_t zn_pprof_profile_encode(const zn_pprof_profile_t *p, zn_buf_t *out);
/* gzip (zlib windowBits 31, fast level) of in, appended to out. */
zn_err_t zn_pprof_gzip(const void *in, size_t len, zn_buf_t *out);

/* ---- text formats (text.c) ------------------------------------------------------------------ */

/* "#\t0xPC\tfunc+0xOFF\tfile:line\n" per frame (inline frames get a line each), as Go's
 * printStackRecord; addresses nobody knows print as "#\t0xPC\n". */
zn_err_t zn_pprof_text_frames(zn_buf_t *b, const uintptr_t *pcs, size_t depth);
/* " 0xPC 0xPC..." (Go's "@" line without the "@"), then "\n". */
zn_err_t zn_pprof_text_addrs(zn_buf_t *b, const uintptr_t *pcs, size_t depth);
/* Go's count profile text (debug=1 goroutine, threadcreate): "NAME profile: total N", then
 * identical stacks grouped, largest count first: "COUNT @ 0x.. 0x..", frames, blank line.
 * Counts are values[0]. */
zn_err_t zn_pprof_text_counts(zn_buf_t *b, const char *name, const zn_pprof_profile_t *p);

/* ---- HTTP helpers (http.c) --------------------------------------------------------------------- */

/* net/http/pprof's serveError: status, text/plain, X-Go-Pprof: 1, nosniff, body = msg + "\n". */
void zn_pprof_send_error(h2o_req_t *req, int status, const char *msg);
/* A binary profile: application/octet-stream, attachment; filename="NAME" (or "NAME-delta"),
 * nosniff. body's bytes are copied into the request's pool; body itself is left to the caller. */
void zn_pprof_send_binary(h2o_req_t *req, const char *name, bool delta, const zn_buf_t *body);
/* text/plain; charset=utf-8 + nosniff. Same ownership as zn_pprof_send_binary. */
void zn_pprof_send_text(h2o_req_t *req, const zn_buf_t *body);
/* Encodes p and sends it as zn_pprof_send_binary does; 500 if encoding fails. */
void zn_pprof_send_profile(h2o_req_t *req, const char *name, bool delta, const zn_pprof_profile_t *p);

/* text/html; charset=utf-8 + nosniff; body copied. */
void zn_pprof_send_html(h2o_req_t *req, int status, const char *body, size_t len);

/* Query parameter `name` as Go's FormValue reads it (the edge's reader, '+' = space): the
 * first value percent-decoded into out. Errors of zn_edge_query_get. */
zn_err_t zn_pprof_query(h2o_req_t *req, const char *name, char *out, size_t outlen);
/* Go's strconv.Atoi of the value: 0 when missing or not an integer. */
int64_t zn_pprof_query_int(h2o_req_t *req, const char *name);
/* Go's ParseInt of `seconds`: ZN_ENOENT when absent, ZN_EINVAL when not a decimal integer
 * (including overflow), else ZN_OK with *out (may be <= 0). */
zn_err_t zn_pprof_query_seconds(h2o_req_t *req, int64_t *out);
/* Clamps a requested duration to zinc.profiling.maxSeconds (logging when it does). */
int64_t zn_pprof_cap_seconds(int64_t seconds);

/* The edge's request-owned timer (common/edge/edge.h) as pprof uses it: a request that goes
 * away (client closed) unlinks it and calls on_cancel(data) unless zn_pprof_wait_finish()
 * was called first. While the response has not started, a tick also checks whether the
 * HTTP/1 client closed (h2o does not read the connection then): if so it calls on_cancel and
 * answers 500 "context canceled" itself. */
typedef zn_edge_timer_t zn_pprof_wait_t;
zn_pprof_wait_t *zn_pprof_wait_new(h2o_req_t *req, void (*on_cancel)(void *data), void *data);
/* Calls cb(data) on req's loop after about 100 ms (h2o's hundred_ms_timeout). */
void zn_pprof_wait_arm(zn_pprof_wait_t *w, void (*cb)(void *data));
/* No more callbacks, no cancel: the owner is about to answer. */
void zn_pprof_wait_finish(zn_pprof_wait_t *w);

/* ---- the profiles (registry.c, serve.c) ---------------------------------------------------------- */

typedef struct zn_pprof_def zn_pprof_def_t;

/* Snapshot profiles (heap, allocs, goroutine, threadcreate, mutex, block) are served by
 * zn_pprof_serve_snapshot from these: an optional asynchronous preparation (goroutine signals
 * every thread: prepare() starts it, ready() is polled until true or the deadline passed), then
 * either text(tok, debug) or collect(tok) into a profile; release(tok) at the end. */
typedef struct zn_pprof_snapshot_ops {
    const zn_pprof_kind_t *kind;
    bool delta;                     /* ?seconds allowed */
    void *(*prepare)(void);         /* NULL = nothing to prepare */
    bool (*ready)(void *tok);
    void (*release)(void *tok);
    zn_err_t (*collect)(void *tok, zn_pprof_profile_t *out);
    zn_err_t (*text)(void *tok, int debug, zn_buf_t *out); /* NULL = debug ignored */
    void (*gc)(void);               /* ?gc=1 before collecting, may be NULL */
} zn_pprof_snapshot_ops_t;

struct zn_pprof_def {
    const char *name;
    const char *desc;      /* one line for the index */
    bool in_index;         /* listed on the index page (symbol is not) */
    int (*count)(void);    /* index count; NULL shows 0 */
    /* Either a handler of its own (profile, cmdline, symbol, trace)... */
    int (*handler)(h2o_req_t *req, const zn_pprof_def_t *def);
    /* ...or a snapshot profile. */
    const zn_pprof_snapshot_ops_t *snap;
};

/* Every profile, sorted by name (registry.c). */
extern const zn_pprof_def_t *const zn_pprof_defs[];
const zn_pprof_def_t *zn_pprof_def_find(zn_slice_t name);

/* The handler of snapshot profiles; 0 as h2o handlers return. */
int zn_pprof_serve_snapshot(h2o_req_t *req, const zn_pprof_def_t *def);

/* ---- collectors' entry points ---------------------------------------------------------------------- */

extern const zn_pprof_def_t zn_pprof_def_allocs, zn_pprof_def_heap, zn_pprof_def_goroutine, zn_pprof_def_threadcreate,
    zn_pprof_def_profile, zn_pprof_def_cmdline, zn_pprof_def_symbol, zn_pprof_def_delta_heap, zn_pprof_def_delta_mutex,
    zn_pprof_def_delta_block;
extern const zn_pprof_listener_t zn_pprof_cpu_listener;

/* labels.c: a copy of s that lives until exit, the same pointer for equal strings (so that
 * collectors compare labels by pointer); past a bound on distinct values, "other". NULL for
 * NULL. Takes a lock; not for signal handlers or malloc hooks. */
const char *zn_pprof_label_intern(const char *s);
/* delta.c: cur becomes cur - prev for its first ncumulative values (the later ones are kept as
 * they are in cur), negative differences clamped to 0, all-zero samples dropped. Both profiles
 * need the same kind; prev is not changed. */
void zn_pprof_delta_apply(zn_pprof_profile_t *cur, const zn_pprof_profile_t *prev, size_t ncumulative);
/* heap.c: turns the recording of sampled allocations on or off (zinc.profiling.heap). */
void zn_pprof_heap_enable(bool on);
/* index.c: reads /proc/self/cmdline once (at init). */
zn_err_t zn_pprof_cmdline_init(void);
/* index.c: the symbol endpoint's answer for "0xADDR+0xADDR..." (Go's format), appended to out. */
zn_err_t zn_pprof_symbol_write(zn_slice_t words, zn_buf_t *out);
/* cpu.c: SIGPROF handler installation (at init). */
zn_err_t zn_pprof_cpu_init(void);
/* snapshot.c: snapshot signal handler installation (at init). */
zn_err_t zn_pprof_snap_init(void);
/* unwind.c: sets libunwind up (at init, before any signal handler may unwind). */
void zn_pprof_unwind_init(void);
/* unwind.c: installs an SA_SIGINFO handler for sig (restarting syscalls, all signals blocked
 * while it runs). ZN_EIO if sigaction fails. */
zn_err_t zn_pprof_sigaction(int sig, void (*fn)(int sig, siginfo_t *si, void *uc));
/* Unwinds the interrupted context uc (a signal handler's third argument) into pcs as lookup
 * addresses: the exact pc first, then return addresses - 1. Async-signal-safe. */
int zn_pprof_unwind_signal(void *uc, uintptr_t *pcs, int max);
/* Unwinds the caller's stack skipping `skip` frames, as lookup addresses (return address - 1).
 * Normal context and the heap sampler (does not allocate). */
int zn_pprof_unwind_here(uintptr_t *pcs, int max, int skip);

#endif
