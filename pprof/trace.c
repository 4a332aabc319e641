/*
 * pprof/trace.c - the execution tracer's recording side: session start, per-thread
 * buffers, and the events each hook writes (design in pprof/trace.h).
 *
 * Every hook starts with enter(): one load of the session word and a branch when no trace
 * runs. Inside, the thread marks itself busy, re-reads the word (the collector clears it and
 * then waits for busy == 0), joins the session if this is its first event in it, and writes
 * into its own chunk. A full chunk is pushed on a lock-free list for the HTTP side.
 * Parser rules this file keeps: a G's events follow Running -> Waiting -> (unblock) ->
 * Runnable -> Running; a wake-up is written by the woken thread itself from its P's idle
 * context (GoUnblock, then GoStart), so no thread ever writes into another's batch.
 */
#include <execinfo.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pprof/trace_int.h"

zn_trace_thread_t zn_trace_threads[ZN_THREADS_MAX];
zn_trace_session_t zn_trace_sess;
/* guards running, epochs; a raw mutex, not zn_mutex: the tracer records zn_mutex slow paths
 * and must not trace (or re-enter) its own start/stop */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static bool running;
static uint64_t last_epoch;

#define S zn_trace_sess
#define CHUNK_BYTES (sizeof(zn_trace_chunk_t) + ZN_TRACE_CHUNK_SIZE)

bool zn_trace_active(void)
{
    return atomic_load(&S.on) != 0;
}

bool zn_trace_overflowed(void)
{
    return atomic_load(&S.overflow);
}

void zn_trace_chunks_free(zn_trace_chunk_t *c)
{
    while (c != NULL) {
        zn_trace_chunk_t *next = c->next;
        free(c);
        c = next;
    }
}

static inline zn_trace_thread_t *enter(int *ti);
static inline void leave(zn_trace_thread_t *tt);

/* ---- chunks ------------------------------------------------------------------------------ */

static void push_full(zn_trace_chunk_t *c)
{
    zn_trace_chunk_t *head = atomic_load(&S.full);
    do {
        c->next = head;
    } while (!atomic_compare_exchange_weak(&S.full, &head, c));
}

/* Over the memory cap the whole session ends (every thread stops after a complete event),
 * which keeps the trace consistent where dropping single events would not. */
static bool new_chunk(zn_trace_thread_t *tt, int ti, uint64_t ts)
{
    zn_trace_chunk_t *c = NULL;
    if (atomic_fetch_add(&S.bytes, CHUNK_BYTES) + CHUNK_BYTES <= S.max_bytes)
        c = malloc(CHUNK_BYTES);
    if (c == NULL) {
        atomic_fetch_sub(&S.bytes, CHUNK_BYTES);
        atomic_store(&S.overflow, true);
        atomic_store(&S.on, 0);
        return false;
    }
    c->next = NULL;
    c->len = 0;
    tt->chunk = c;
    tt->buf = (zn_trace_buf_t){c->data, 0, ZN_TRACE_CHUNK_SIZE, 0};
    zn_trace_buf_open(&tt->buf, (uint64_t)ti, ts);
    tt->batch_len = tt->buf.len;
    return true;
}

/* Room for `need` bytes of events at time ts (a new batch starts at ts). */
static bool reserve(zn_trace_thread_t *tt, int ti, size_t need, uint64_t ts)
{
    if (tt->chunk != NULL && zn_trace_buf_room(&tt->buf) >= need)
        return true;
    if (tt->chunk != NULL) {
        tt->chunk->len = tt->buf.len;
        push_full(tt->chunk);
        tt->chunk = NULL;
    }
    return new_chunk(tt, ti, ts);
}

void zn_trace_flush_self(void)
{
    int ti;
    zn_trace_thread_t *tt = enter(&ti);
    if (tt == NULL)
        return;
    if (tt->chunk != NULL && tt->buf.len > tt->batch_len) {
        tt->chunk->len = tt->buf.len;
        push_full(tt->chunk);
        tt->chunk = NULL; /* the next event opens a new batch */
    }
    leave(tt);
}

zn_trace_chunk_t *zn_trace_take(void)
{
    zn_trace_chunk_t *c = atomic_exchange(&S.full, NULL), *fifo = NULL;
    while (c != NULL) {
        zn_trace_chunk_t *next = c->next;
        c->next = fifo;
        fifo = c;
        atomic_fetch_sub(&S.bytes, CHUNK_BYTES);
        c = next;
    }
    return fifo;
}

/* ---- stacks -------------------------------------------------------------------------------- */

static uint64_t intern(zn_trace_thread_t *tt, int ti, const uintptr_t *pcs, int n)
{
    return n <= 0 ? 0 : zn_trace_stack_id(ti, zn_trace_stktab_intern(&tt->stk, pcs, (uint32_t)n));
}

static uint64_t capture(zn_trace_thread_t *tt, int ti, uintptr_t anchor)
{
    uintptr_t pcs[ZN_TRACE_STACK_MAX];
    return intern(tt, ti, pcs, zn_trace_capture(pcs, ZN_TRACE_STACK_MAX, anchor));
}

/* Frequent sites (event loop, request begin/end) reuse the stack first seen for the same
 * return address at the same frame address: the same caller at the same depth. */
static uint64_t site_stack(zn_trace_thread_t *tt, int ti, uintptr_t site, uintptr_t frame, uintptr_t anchor)
{
    size_t i = (size_t)((site >> 4) ^ (frame >> 4)) % ZN_TRACE_SITE_CACHE;
    if (tt->sites[i].site == site && tt->sites[i].frame == frame)
        return tt->sites[i].id;
    uint64_t id = capture(tt, ti, anchor);
    tt->sites[i].site = site;
    tt->sites[i].frame = frame;
    tt->sites[i].id = id;
    return id;
}

/* GoCreate for thread t, written by tt (the starter, or t itself): its start function as
 * the goroutine's start stack (the viewer names goroutines by it and needs a frame), and,
 * for a thread created during the trace, the stack that created it. A thread that existed
 * before gets no creator stack: -pprof=sched would count the time until its first event as
 * scheduling latency. */
static void write_create(zn_trace_thread_t *tt, int ti, const zn_thread_info_t *t, zn_trace_g_t *g, uint64_t ts, bool new_thread)
{
    uintptr_t pcs[ZN_THREAD_STACK_MAX];
    uintptr_t start = t->start_fn != 0 ? t->start_fn : 1;
    int n = 0;
    for (int i = 0; new_thread && i < t->create_depth && i < ZN_THREAD_STACK_MAX; i++)
        pcs[n++] = t->create_stack[i] - 1;
    uint64_t start_stk = intern(tt, ti, &start, 1);
    zn_trace_buf_go_create(&tt->buf, ts, g, start_stk, intern(tt, ti, pcs, n));
}

/* ---- joining a session --------------------------------------------------------------------- */

static void reset_owner(zn_trace_thread_t *tt, const zn_thread_info_t *t)
{
    tt->chunk = NULL; /* the collector took or freed the previous one */
    tt->g = (zn_trace_g_t){(uint64_t)t->id + 1, 0};
    tt->park = PARK_NONE;
    tt->park_stk = 0;
    zn_trace_stktab_reset(&tt->stk);
    memset(tt->sites, 0, sizeof(tt->sites));
    tt->nroutes = 0;
    tt->nregions = 0;
    tt->regions_lost = 0;
}

/* First event of thread t in session e: find out (or decide) what the parser was told about
 * its G, and write ProcStart and whatever makes its state current. */
static bool join(zn_trace_thread_t *tt, const zn_thread_info_t *t, uint64_t e, uint64_t *clock)
{
    reset_owner(tt, t);
    if (!new_chunk(tt, t->id, *clock))
        return false;
    uint64_t d = atomic_load(&tt->decl);
    while (d >> 2 != e && !atomic_compare_exchange_weak(&tt->decl, &d, e << 2 | DECL_SELF))
        ;
    int kind = d >> 2 == e ? (int)(d & 3) : DECL_SELF;
    if (kind == DECL_SELF)
        write_create(tt, t->id, t, &tt->g, (*clock)++, t->created_ns > S.t0_wall);
    uint64_t tid = (uint64_t)t->tid;
    zn_trace_buf_event(&tt->buf, (*clock)++, ZN_TEV_PROC_START, &tid, 1);
    if (kind == DECL_WAITING || kind == DECL_INSYSCALL) {
        tt->g.seq = 1; /* GoWaiting/GoInSyscall was written with seq 1 */
        tt->park = kind == DECL_WAITING ? PARK_WAIT : PARK_INSYSCALL;
    } else {
        zn_trace_buf_go_start(&tt->buf, (*clock)++, &tt->g);
    }
    tt->epoch = e;
    return true;
}

static zn_trace_thread_t *enter_slow(int *ti)
{
    zn_thread_info_t *t = zn_thread_self();
    if (t == NULL)
        return NULL;
    zn_trace_thread_t *tt = &zn_trace_threads[t->id];
    /* re-entered from inside a write (a lock taken by malloc or the unwinder) */
    if (atomic_load_explicit(&tt->busy, memory_order_relaxed))
        return NULL;
    atomic_store(&tt->busy, 1);
    uint64_t e = atomic_load(&S.on);
    if (e != 0 && tt->epoch != e) {
        uint64_t now = zn_now_mono_ns(), clock = now > S.t0 + ZN_TRACE_START_SPAN ? now : S.t0 + ZN_TRACE_START_SPAN;
        if (!join(tt, t, e, &clock))
            e = 0;
    }
    if (e == 0) {
        atomic_store_explicit(&tt->busy, 0, memory_order_release);
        return NULL;
    }
    *ti = t->id;
    return tt;
}

/* The one branch every hook pays when no trace runs. */
static inline zn_trace_thread_t *enter(int *ti)
{
    if (__builtin_expect(atomic_load(&S.on) == 0, 1))
        return NULL;
    return enter_slow(ti);
}

static inline void leave(zn_trace_thread_t *tt)
{
    atomic_store_explicit(&tt->busy, 0, memory_order_release);
}

/* ---- starting a session -------------------------------------------------------------------- */

/* The starter's view of thread t: declare it unless it joined by itself already. */
static void declare(zn_trace_thread_t *tt, int ti, const zn_thread_info_t *t, uint64_t e, uint64_t *clock)
{
    zn_trace_thread_t *ot = &zn_trace_threads[t->id];
    uint64_t d = atomic_load(&ot->decl);
    if (d >> 2 == e)
        return;
    int st = atomic_load(&t->state);
    /* the caller saw it running, but it may have returned since: a thread in its exit hooks
     * never writes another event, so declaring it would leave the parser a G that never ends */
    if (st == ZN_THREAD_EXITED || !atomic_load(&t->live))
        return;
    int kind = st == ZN_THREAD_IDLE || st == ZN_THREAD_BLOCKED ? DECL_WAITING
               : st == ZN_THREAD_SYSCALL                       ? DECL_INSYSCALL
                                                               : DECL_RUNNABLE;
    if (!atomic_compare_exchange_strong(&ot->decl, &d, e << 2 | (uint64_t)kind))
        return; /* it joined meanwhile and told the parser itself */
    if (!reserve(tt, ti, 2 * ZN_TRACE_EV_MAX, *clock))
        return;
    zn_trace_g_t g = {(uint64_t)t->id + 1, 0};
    write_create(tt, ti, t, &g, (*clock)++, false);
    if (kind != DECL_RUNNABLE)
        zn_trace_buf_go_parked(&tt->buf, (*clock)++, &g, kind == DECL_INSYSCALL);
}

static bool claim(void)
{
    pthread_mutex_lock(&start_lock);
    bool ok = !running;
    running = true;
    pthread_mutex_unlock(&start_lock);
    return ok;
}

zn_err_t zn_trace_start(size_t max_bytes)
{
    zn_thread_info_t *self = zn_thread_self();
    if (self == NULL)
        return ZN_EINVAL;
    if (!claim())
        return ZN_EBUSY;
    atomic_store(&S.full, NULL);
    atomic_store(&S.bytes, 0);
    atomic_store(&S.overflow, false);
    atomic_store(&S.next_task, 1);
    atomic_store(&S.next_string, ZN_TRACE_STR_REPO + 1);
    S.max_bytes = max_bytes;
    S.epoch = ++last_epoch;
    /* the start section's events are stamped t0, t0 + 1, ... (distinct: Go 1.22+'s viewer
     * needs the starter's GoStart after the first event) and a thread joining by itself
     * stamps its events after t0 + ZN_TRACE_START_SPAN, so the whole start section precedes
     * Gomaxprocs, which ends Go 1.22+'s initialization phase */
    S.t0 = zn_now_mono_ns();
    uint64_t clock = S.t0;
    S.t0_wall = zn_now_wall_ns();
    zn_trace_thread_t *tt = &zn_trace_threads[self->id];
    atomic_store(&tt->busy, 1);
    atomic_store(&S.on, S.epoch);
    if (join(tt, self, S.epoch, &clock)) {
        int n = zn_thread_count();
        for (int i = 0; i < n; i++) {
            zn_thread_info_t *t = zn_thread_get(i);
            if (i != self->id && zn_thread_running(t)) /* one in its exit hooks is gone, as for goroutine */
                declare(tt, self->id, t, S.epoch, &clock);
        }
        uint64_t args[2] = {(uint64_t)n, 0};
        if (reserve(tt, self->id, ZN_TRACE_EV_MAX, clock))
            zn_trace_buf_event(&tt->buf, clock, ZN_TEV_GOMAXPROCS, args, 2);
    }
    leave(tt);
    return ZN_OK;
}

/* At stop, once every writer has left: a G the parser sees running gets GoPreempt, so its
 * last GoStart has an end (the viewer dereferences it). This may go a little past the
 * memory cap: a small chunk of its own when the thread's is full or gone. */
void zn_trace_end_running(uint64_t epoch)
{
    uint64_t now = zn_now_mono_ns(), no_stack = 0;
    int n = zn_thread_count();
    for (int i = 0; i < n; i++) {
        zn_trace_thread_t *tt = &zn_trace_threads[i];
        if (tt->epoch != epoch || (tt->park != PARK_NONE && tt->park != PARK_SYSCALL))
            continue;
        if (tt->chunk == NULL || zn_trace_buf_room(&tt->buf) < ZN_TRACE_EV_MAX) {
            if (tt->chunk != NULL) {
                tt->chunk->len = tt->buf.len;
                push_full(tt->chunk);
            }
            tt->chunk = zn_malloc(sizeof(*tt->chunk) + 2 * ZN_TRACE_EV_MAX);
            tt->chunk->next = NULL;
            tt->buf = (zn_trace_buf_t){tt->chunk->data, 0, 2 * ZN_TRACE_EV_MAX, 0};
            zn_trace_buf_open(&tt->buf, (uint64_t)i, now);
        }
        zn_trace_buf_event(&tt->buf, now, ZN_TEV_GO_PREEMPT, &no_stack, 1);
    }
}

/* Called by trace_footer.c once the session's data is collected. */
void zn_trace_release_session(void)
{
    pthread_mutex_lock(&start_lock);
    running = false;
    pthread_mutex_unlock(&start_lock);
}

/* ---- events ----------------------------------------------------------------------------------- */

/* Running -> waiting, unless the parser already has the G waiting (declared at start). */
static void park(zn_trace_thread_t *tt, int ti, uint8_t ev, uint64_t stk)
{
    uint64_t now = zn_now_mono_ns();
    if (tt->park != PARK_NONE || !reserve(tt, ti, ZN_TRACE_EV_MAX, now))
        return;
    zn_trace_buf_event(&tt->buf, now, ev, &stk, 1);
    tt->park = PARK_WAIT;
    tt->park_stk = stk;
}

/* Waiting -> running: the thread unblocks itself from its P's idle context, then starts. */
static void wake(zn_trace_thread_t *tt, int ti, uintptr_t anchor)
{
    if (tt->park != PARK_WAIT)
        return;
    if (tt->park_stk == 0) /* declared waiting at start: name the place it waited */
        tt->park_stk = capture(tt, ti, anchor);
    uint64_t now = zn_now_mono_ns();
    if (!reserve(tt, ti, 2 * ZN_TRACE_EV_MAX, now))
        return;
    zn_trace_buf_go_unblock(&tt->buf, now, &tt->g, tt->park_stk);
    zn_trace_buf_go_start(&tt->buf, now + 1, &tt->g);
    tt->park = PARK_NONE;
}

void zn_trace_lock_begin(const void *lock, zn_lock_kind_t kind)
{
    int ti;
    zn_trace_thread_t *tt = enter(&ti);
    if (tt == NULL)
        return;
    if (tt->park == PARK_NONE)
        park(tt, ti, kind == ZN_LOCK_COND ? ZN_TEV_GO_BLOCK_COND : ZN_TEV_GO_BLOCK_SYNC,
             capture(tt, ti, (uintptr_t)__builtin_return_address(0)));
    leave(tt);
}

void zn_trace_lock_end(const void *lock)
{
    int ti;
    zn_trace_thread_t *tt = enter(&ti);
    if (tt == NULL)
        return;
    wake(tt, ti, (uintptr_t)__builtin_return_address(0));
    leave(tt);
}

void zn_trace_net_block(uintptr_t site, uintptr_t frame)
{
    int ti;
    zn_trace_thread_t *tt = enter(&ti);
    if (tt == NULL)
        return;
    if (tt->park == PARK_NONE)
        park(tt, ti, ZN_TEV_GO_BLOCK_NET, site_stack(tt, ti, site, frame, (uintptr_t)__builtin_return_address(0)));
    leave(tt);
}

void zn_trace_net_unblock(void)
{
    int ti;
    zn_trace_thread_t *tt = enter(&ti);
    if (tt == NULL)
        return;
    wake(tt, ti, (uintptr_t)__builtin_return_address(0));
    leave(tt);
}

static void on_syscall_begin(void)
{
    int ti;
    zn_trace_thread_t *tt = enter(&ti);
    if (tt == NULL)
        return;
    if (tt->park == PARK_NONE) {
        uint64_t stk = capture(tt, ti, (uintptr_t)__builtin_return_address(0));
        uint64_t now = zn_now_mono_ns();
        if (reserve(tt, ti, ZN_TRACE_EV_MAX, now)) {
            zn_trace_buf_event(&tt->buf, now, ZN_TEV_GO_SYSCALL, &stk, 1);
            tt->park = PARK_SYSCALL;
            tt->park_ts = now;
        }
    }
    leave(tt);
}

/* A syscall that took long is shown as blocked from just after its start (Go's sysmon would
 * have retaken the P); a short one stays the instant GoSysCall already written. */
static void on_syscall_end(void)
{
    int ti;
    zn_trace_thread_t *tt = enter(&ti);
    if (tt == NULL)
        return;
    uint64_t now = zn_now_mono_ns();
    bool blocked = tt->park == PARK_INSYSCALL || (tt->park == PARK_SYSCALL && now - tt->park_ts >= ZN_TRACE_SYSBLOCK_NS);
    uint64_t from = tt->park == PARK_SYSCALL ? tt->park_ts + 1 : now;
    if (blocked && reserve(tt, ti, 3 * ZN_TRACE_EV_MAX, from)) {
        if (tt->park == PARK_SYSCALL)
            zn_trace_buf_event(&tt->buf, from, ZN_TEV_GO_SYSBLOCK, NULL, 0);
        zn_trace_buf_go_sysexit(&tt->buf, now, &tt->g);
        zn_trace_buf_go_start(&tt->buf, now + 1, &tt->g);
    }
    if (tt->park == PARK_SYSCALL || tt->park == PARK_INSYSCALL)
        tt->park = PARK_NONE;
    leave(tt);
}

/* ---- request tasks and regions ------------------------------------------------------------------ */

static uint64_t route_string(zn_trace_thread_t *tt, const char *route)
{
    for (int i = 0; i < tt->nroutes; i++)
        if (tt->routes[i].name == route)
            return tt->routes[i].id;
    if (tt->nroutes == ZN_TRACE_ROUTES_MAX)
        return 0;
    uint64_t id = atomic_fetch_add(&S.next_string, 1);
    tt->routes[tt->nroutes].name = route;
    tt->routes[tt->nroutes++].id = id;
    return id;
}

void zn_trace_req_begin(const char *route, const char *repo)
{
    int ti;
    zn_trace_thread_t *tt = enter(&ti);
    if (tt == NULL)
        return;
    uint64_t name = route_string(tt, route != NULL ? route : "request");
    size_t rlen = repo != NULL ? strlen(repo) : 0;
    uint64_t now = zn_now_mono_ns();
    if (rlen > ZN_TRACE_LOG_MAX)
        rlen = 0; /* no log rather than a cut name */
    if (name == 0 || tt->nregions == ZN_TRACE_REGIONS_MAX || !reserve(tt, ti, 3 * ZN_TRACE_EV_MAX + rlen, now)) {
        tt->regions_lost++;
        goto done;
    }
    uint64_t stk = site_stack(tt, ti, (uintptr_t)__builtin_return_address(0), (uintptr_t)__builtin_frame_address(0),
                              (uintptr_t)__builtin_return_address(0));
    uint64_t task = atomic_fetch_add(&S.next_task, 1);
    uint64_t create[4] = {task, 0 /* no parent */, name, stk}, region[4] = {task, 0 /* start */, name, stk};
    zn_trace_buf_event(&tt->buf, now, ZN_TEV_USER_TASK_CREATE, create, 4);
    zn_trace_buf_event(&tt->buf, now, ZN_TEV_USER_REGION, region, 4);
    if (rlen > 0)
        zn_trace_buf_user_log(&tt->buf, now, task, ZN_TRACE_STR_REPO, stk, repo, rlen);
    tt->regions[tt->nregions].task = task;
    tt->regions[tt->nregions++].name = name;
done:
    leave(tt);
}

void zn_trace_req_end(void)
{
    int ti;
    zn_trace_thread_t *tt = enter(&ti);
    if (tt == NULL)
        return;
    if (tt->regions_lost > 0) {
        tt->regions_lost--;
    } else if (tt->nregions > 0) {
        uint64_t now = zn_now_mono_ns();
        uint64_t stk = site_stack(tt, ti, (uintptr_t)__builtin_return_address(0), (uintptr_t)__builtin_frame_address(0),
                                  (uintptr_t)__builtin_return_address(0));
        tt->nregions--;
        uint64_t task = tt->regions[tt->nregions].task;
        uint64_t region[4] = {task, 1, tt->regions[tt->nregions].name, stk}, end[2] = {task, stk};
        if (reserve(tt, ti, 2 * ZN_TRACE_EV_MAX, now)) {
            zn_trace_buf_event(&tt->buf, now, ZN_TEV_USER_REGION, region, 4);
            zn_trace_buf_event(&tt->buf, now, ZN_TEV_USER_TASK_END, end, 2);
        }
    }
    leave(tt);
}

void zn_trace_init(void)
{
    void *warm[4];
    /* the first backtrace() loads libgcc_s: do it here, not inside a lock hook */
    (void)backtrace(warm, 4);
    zn_syscall_set_hooks(&(zn_syscall_hooks_t){on_syscall_begin, on_syscall_end});
    if (!zn_trace_net_interposed())
        zn_log(ZN_LOG_WARN, "trace: epoll_wait is not interposed (executable not linked with -rdynamic?); "
                            "traces will not show network waits");
}

static void on_req_begin(zn_pprof_thread_t *th, const char *route, const char *repo)
{
    zn_trace_req_begin(route, repo);
}

static void on_req_end(zn_pprof_thread_t *th)
{
    zn_trace_req_end();
}

const zn_pprof_listener_t zn_trace_listener = {.on_req_begin = on_req_begin, .on_req_end = on_req_end};
