/*
 * pprof/cpu.c - the CPU profile: per-thread CPU-time timers and a SIGPROF handler, as Go does
 * since 1.18.
 *
 * While a profile runs, every registered thread has a POSIX timer on its own CPU-time clock
 * (pthread_getcpuclockid) that sends SIGPROF to that very thread (SIGEV_THREAD_ID) every 10 ms
 * of CPU it uses, first expiry random so threads do not tick in step. Threads that start during
 * the profile arm theirs in the start hook; exiting threads delete theirs.
 *
 * The handler (async-signal-safe: no malloc, no lock, no log) checks si_code == SI_TIMER, saves
 * errno, unwinds the interrupted context and pushes {session, route, stack} into the thread's
 * single-producer ring; when the ring is full or missing the sample is counted as lost. The
 * request that started the profile drains every ring on its 100 ms timer into a profile, and at
 * the end disarms the timers and answers. A record carries its session number so a signal that
 * was already in flight when a profile stopped never lands in the next one.
 *
 * One profile at a time: a second request gets Go's 500 "cpu profiling already in use".
 * cpu.lock guards the session pointer and every thread's timer; ring producers never take it.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "pprof/internal.h"

#define RING_SIZE 64 /* records per thread; drained every 100 ms, filled at most 10 per 100 ms */
#define MERGE_MIN 20000 /* samples kept unmerged before merging identical ones */

typedef struct cpu_rec {
    uint64_t session;
    const char *route, *repo;
    uint32_t depth;
    uintptr_t pcs[ZN_PPROF_DEPTH_MAX];
} cpu_rec_t;

struct zn_pprof_cpu_ring {
    _Atomic uint32_t head; /* written by the thread's signal handler */
    _Atomic uint32_t tail; /* written by the drainer, under cpu.lock */
    cpu_rec_t recs[RING_SIZE];
};

typedef struct session {
    h2o_req_t *req;
    zn_pprof_wait_t *wait;
    uint64_t id;
    uint64_t start_ns, deadline_ns;
    uint64_t lost_at_start;
    size_t merge_at;
    zn_pprof_profile_t prof;
} session_t;

static struct {
    zn_mutex_t lock;
    session_t *session;             /* the running profile, NULL when none */
    uint64_t last_id;
    _Atomic uint64_t active;        /* the running session's id, 0 when none; read by the handler */
    _Atomic uint64_t lost;          /* samples dropped by the handler, ever */
} cpu = {.lock = ZN_MUTEX_INITIALIZER("pprof cpu profile")};

static const zn_pprof_kind_t cpu_kind = {
    .nvalues = 2,
    .types = {{"samples", "count"}, {"cpu", "nanoseconds"}},
    .period_type = {"cpu", "nanoseconds"},
    .period = ZN_PPROF_PERIOD_NS,
    .default_type = -1,
};

/* ---- signal side --------------------------------------------------------------------------------- */

static void push(zn_pprof_thread_t *th, uint64_t session, void *uc)
{
    struct zn_pprof_cpu_ring *r = atomic_load_explicit(&th->cpu_ring, memory_order_acquire);
    if (r == NULL) {
        atomic_fetch_add_explicit(&cpu.lost, 1, memory_order_relaxed);
        return;
    }
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head - atomic_load_explicit(&r->tail, memory_order_acquire) >= RING_SIZE) {
        atomic_fetch_add_explicit(&cpu.lost, 1, memory_order_relaxed);
        return;
    }
    cpu_rec_t *rec = &r->recs[head % RING_SIZE];
    rec->session = session;
    rec->route = th->info->route;
    rec->repo = th->info->repo;
    rec->depth = (uint32_t)zn_pprof_unwind_signal(uc, rec->pcs, ZN_PPROF_DEPTH_MAX);
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
}

static void on_sigprof(int sig, siginfo_t *si, void *uc)
{
    if (si->si_code != SI_TIMER)
        return;
    int saved = errno;
    uint64_t session = atomic_load_explicit(&cpu.active, memory_order_acquire);
    zn_pprof_thread_t *th = zn_pprof_thread_self();
    if (session != 0 && th != NULL)
        push(th, session, uc);
    errno = saved;
}

zn_err_t zn_pprof_cpu_init(void)
{
    zn_pprof_unwind_init();
    return zn_pprof_sigaction(SIGPROF, on_sigprof);
}

/* ---- timers (cpu.lock held) ------------------------------------------------------------------------ */

static uint64_t next_random(void)
{
    static _Atomic uint64_t state;
    uint64_t x = atomic_fetch_add(&state, 0x9e3779b97f4a7c15ull) + zn_now_mono_ns();
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    return x;
}

static void arm(zn_pprof_thread_t *th)
{
    clockid_t clock;
    struct sigevent ev;
    if (th->cpu_armed || !zn_thread_running(th->info) || pthread_getcpuclockid(th->info->pthread, &clock) != 0)
        return;
    if (atomic_load_explicit(&th->cpu_ring, memory_order_relaxed) == NULL)
        atomic_store_explicit(&th->cpu_ring, zn_calloc(1, sizeof(struct zn_pprof_cpu_ring)), memory_order_release);
    memset(&ev, 0, sizeof(ev));
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGPROF;
    ev._sigev_un._tid = th->info->tid;
    if (timer_create(clock, &ev, &th->cpu_timer) != 0) {
        zn_log(ZN_LOG_WARN, "pprof: cannot create CPU timer", ZN_LSTR("thread", th->info->name),
               ZN_LSTR("error", strerror(errno)));
        return;
    }
    /* a random first expiry in (0, period] so that threads do not sample in step */
    long first = 1 + (long)(next_random() % ZN_PPROF_PERIOD_NS);
    struct itimerspec its = {.it_interval = {0, ZN_PPROF_PERIOD_NS}, .it_value = {0, first}};
    timer_settime(th->cpu_timer, 0, &its, NULL);
    th->cpu_armed = true;
}

static void disarm(zn_pprof_thread_t *th)
{
    if (!th->cpu_armed)
        return;
    timer_delete(th->cpu_timer);
    th->cpu_armed = false;
}

/* Calls fn on every registered thread that has profiler state. */
static void each_thread(void (*fn)(zn_pprof_thread_t *th))
{
    for (int i = 0; i < zn_thread_count(); i++) {
        zn_pprof_thread_t *th = __atomic_load_n(&zn_thread_get(i)->pprof, __ATOMIC_ACQUIRE);
        if (th != NULL)
            fn(th);
    }
}

static void on_thread_start(zn_pprof_thread_t *th)
{
    zn_mutex_lock(&cpu.lock);
    if (cpu.session != NULL)
        arm(th);
    zn_mutex_unlock(&cpu.lock);
}

static void on_thread_exit(zn_pprof_thread_t *th)
{
    zn_mutex_lock(&cpu.lock);
    disarm(th);
    zn_mutex_unlock(&cpu.lock);
}

const zn_pprof_listener_t zn_pprof_cpu_listener = {.on_start = on_thread_start, .on_exit = on_thread_exit};

/* ---- draining (cpu.lock held) ---------------------------------------------------------------------- */

static void drain_thread(zn_pprof_thread_t *th)
{
    session_t *s = cpu.session;
    struct zn_pprof_cpu_ring *r = atomic_load_explicit(&th->cpu_ring, memory_order_acquire);
    if (r == NULL || s == NULL)
        return;
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    for (; tail != head; tail++) {
        const cpu_rec_t *rec = &r->recs[tail % RING_SIZE];
        if (rec->session != s->id || rec->depth == 0)
            continue;
        zn_pprof_label_t labels[2] = {{.key = "thread", .str = th->info->name}, {.key = "route", .str = rec->route}};
        int64_t v[2] = {1, ZN_PPROF_PERIOD_NS};
        zn_pprof_profile_add(&s->prof, rec->pcs, rec->depth, v, labels, rec->route != NULL ? 2 : 1);
    }
    atomic_store_explicit(&r->tail, tail, memory_order_release);
}

static void drain(session_t *s)
{
    each_thread(drain_thread);
    if (s->prof.nsamples >= s->merge_at) {
        zn_pprof_profile_merge(&s->prof);
        s->merge_at = s->prof.nsamples * 2 > MERGE_MIN ? s->prof.nsamples * 2 : MERGE_MIN;
    }
}

/* ---- the /profile request --------------------------------------------------------------------------- */

/* Ends the session: no more timers, last drain. Lock held. */
static void stop(session_t *s)
{
    atomic_store_explicit(&cpu.active, 0, memory_order_release);
    each_thread(disarm);
    drain(s);
    cpu.session = NULL;
}

static void session_free(session_t *s)
{
    zn_pprof_profile_release(&s->prof);
    free(s);
}

static void on_cancel(void *data)
{
    session_t *s = data;
    zn_mutex_lock(&cpu.lock);
    stop(s);
    zn_mutex_unlock(&cpu.lock);
    session_free(s);
}

static void finish(session_t *s)
{
    zn_mutex_lock(&cpu.lock);
    stop(s);
    uint64_t lost = atomic_load(&cpu.lost) - s->lost_at_start;
    zn_mutex_unlock(&cpu.lock);

    zn_pprof_wait_finish(s->wait);
    s->prof.duration_nanos = (int64_t)(zn_now_mono_ns() - s->start_ns);
    zn_pprof_profile_merge(&s->prof);
    if (lost != 0) {
        zn_pprof_profile_comment(&s->prof, "zinc: %llu samples lost (sample ring full)", (unsigned long long)lost);
        zn_log(ZN_LOG_WARN, "pprof: CPU samples lost", ZN_LUINT("lost", lost));
    }
    zn_pprof_send_profile(s->req, "profile", false, &s->prof);
    session_free(s);
}

static void on_tick(void *data)
{
    session_t *s = data;
    if (zn_now_mono_ns() >= s->deadline_ns) {
        finish(s);
        return;
    }
    zn_mutex_lock(&cpu.lock);
    drain(s);
    zn_mutex_unlock(&cpu.lock);
    zn_pprof_wait_arm(s->wait, on_tick);
}

static int on_profile(h2o_req_t *req, const zn_pprof_def_t *def)
{
    int64_t sec;
    /* as Go: a missing, malformed or non-positive duration means 30 s */
    if (zn_pprof_query_seconds(req, &sec) != ZN_OK || sec <= 0)
        sec = 30;
    sec = zn_pprof_cap_seconds(sec);

    session_t *s = zn_calloc(1, sizeof(*s));
    zn_pprof_profile_init(&s->prof, &cpu_kind);
    s->req = req;
    s->merge_at = MERGE_MIN;
    s->start_ns = zn_now_mono_ns();
    s->deadline_ns = s->start_ns + (uint64_t)sec * 1000000000u;

    zn_mutex_lock(&cpu.lock);
    if (cpu.session != NULL) {
        zn_mutex_unlock(&cpu.lock);
        session_free(s);
        zn_pprof_send_error(req, 500, "Could not enable CPU profiling: cpu profiling already in use");
        return 0;
    }
    s->id = ++cpu.last_id;
    s->lost_at_start = atomic_load(&cpu.lost);
    cpu.session = s;
    atomic_store_explicit(&cpu.active, s->id, memory_order_release);
    each_thread(arm);
    zn_mutex_unlock(&cpu.lock);

    s->wait = zn_pprof_wait_new(req, on_cancel, s);
    zn_pprof_wait_arm(s->wait, on_tick);
    return 0;
}

const zn_pprof_def_t zn_pprof_def_profile = {
    .name = "profile",
    .desc = "CPU profile of every zinc thread (100 Hz, per-thread CPU timers). You can specify the duration in the "
            "seconds GET parameter. After you get the profile file, use the go tool pprof command to investigate "
            "the profile.",
    .in_index = true,
    .handler = on_profile,
};
