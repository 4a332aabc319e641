/*
 * pprof/snapshot.c - the goroutine profile: a stack of every zinc thread, zinc's analogue of
 * Go's goroutines, with its name and state.
 *
 * A thread's stack can only be read by the thread itself, so the requester sends each live
 * registered thread ZN_PPROF_SIG_SNAPSHOT (tgkill); the handler unwinds the interrupted
 * context into the thread's slot, guarded by a sequence number (seqlock): seq = 0 while
 * writing, then the newest snapshot number. A slot answers a snapshot whose number is <= its
 * own (a stack taken after the request began is a fine answer, so concurrent snapshots need no
 * lock). The requester spins very briefly, then polls on the request's timer (serve.c) for at
 * most a second; threads that never answered are listed as such.
 *
 * Only running threads are listed (zn_thread_running), as Go lists only live goroutines; one
 * that returns while asked is neither waited for nor listed.
 *
 * State comes from the thread registry (lock wrappers mark BLOCKED); a thread the registry
 * calls running but whose stack ends in a blocking call (epoll_wait, a futex wait...) is shown
 * in the matching Go-like wait state, as that is where it really is.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pprof/internal.h"

#define SPIN_NS 2000000u /* answers usually take microseconds */

static _Atomic uint64_t snap_seq; /* number of the newest snapshot, 0 before any */

typedef struct snap_tok {
    uint64_t seq;
    int n;                           /* registry slots when the snapshot began */
    bool sent[ZN_THREADS_MAX];       /* signalled */
    pid_t tid[ZN_THREADS_MAX];       /* as signalled */
} snap_tok_t;

static const zn_pprof_kind_t goroutine_kind = {
    .nvalues = 1,
    .types = {{"goroutine", "count"}},
    .period_type = {"goroutine", "count"},
    .period = 1,
    .default_type = -1,
};

static void on_snapshot(int sig, siginfo_t *si, void *uc)
{
    if (si->si_code != SI_TKILL)
        return;
    int saved = errno;
    zn_pprof_thread_t *th = zn_pprof_thread_self();
    uint64_t seq = atomic_load_explicit(&snap_seq, memory_order_acquire);
    if (th != NULL && seq != 0) {
        atomic_store_explicit(&th->snap.seq, 0, memory_order_relaxed);
        atomic_thread_fence(memory_order_release);
        th->snap.depth = zn_pprof_unwind_signal(uc, th->snap.pcs, ZN_PPROF_DEPTH_MAX);
        th->snap.route = th->info->route;
        th->snap.repo = th->info->repo;
        atomic_store_explicit(&th->snap.seq, seq, memory_order_release);
    }
    errno = saved;
}

zn_err_t zn_pprof_snap_init(void)
{
    return zn_pprof_sigaction(ZN_PPROF_SIG_SNAPSHOT, on_snapshot);
}

static zn_pprof_thread_t *thread_at(int i)
{
    zn_thread_info_t *t = zn_thread_get(i);
    return t != NULL ? __atomic_load_n(&t->pprof, __ATOMIC_ACQUIRE) : NULL;
}

/* Copies thread i's stack if it answers tok; false if it has not (yet). */
static bool read_slot(const snap_tok_t *tok, int i, uintptr_t *pcs, int *depth, const char **route, const char **repo)
{
    zn_pprof_thread_t *th = thread_at(i);
    if (th == NULL || !tok->sent[i])
        return false;
    uint64_t s1 = atomic_load_explicit(&th->snap.seq, memory_order_acquire);
    if (s1 < tok->seq)
        return false;
    int d = th->snap.depth;
    d = d < 0 ? 0 : d > ZN_PPROF_DEPTH_MAX ? ZN_PPROF_DEPTH_MAX : d;
    memcpy(pcs, th->snap.pcs, (size_t)d * sizeof(*pcs));
    const char *ro = th->snap.route, *re = th->snap.repo;
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&th->snap.seq, memory_order_relaxed) != s1)
        return false; /* rewritten while we copied: poll again */
    *depth = d;
    if (route != NULL)
        *route = ro;
    if (repo != NULL)
        *repo = re;
    return true;
}

/* Ready once every thread asked has answered or has ended since: a thread that returns before
 * its signal is handled never answers, and is not listed anyway. */
static bool snap_ready(void *p)
{
    snap_tok_t *tok = p;
    uintptr_t pcs[ZN_PPROF_DEPTH_MAX];
    int depth;
    for (int i = 0; i < tok->n; i++) {
        if (tok->sent[i] && zn_thread_running(zn_thread_get(i)) && !read_slot(tok, i, pcs, &depth, NULL, NULL))
            return false;
    }
    return true;
}

static void *snap_prepare(void)
{
    snap_tok_t *tok = zn_calloc(1, sizeof(*tok));
    pid_t pid = getpid();
    tok->seq = atomic_fetch_add(&snap_seq, 1) + 1;
    tok->n = zn_thread_count();
    for (int i = 0; i < tok->n; i++) {
        zn_pprof_thread_t *th = thread_at(i);
        if (th == NULL || !zn_thread_running(th->info))
            continue;
        tok->tid[i] = th->info->tid;
        tok->sent[i] = syscall(SYS_tgkill, pid, th->info->tid, ZN_PPROF_SIG_SNAPSHOT) == 0;
    }
    uint64_t until = zn_now_mono_ns() + SPIN_NS;
    while (!snap_ready(tok) && zn_now_mono_ns() < until)
        sched_yield();
    return tok;
}

static void snap_release(void *tok)
{
    free(tok);
}

static int snap_count(void)
{
    int n = 0;
    for (int i = 0; i < zn_thread_count(); i++)
        n += zn_thread_running(zn_thread_get(i)) ? 1 : 0;
    return n;
}

/* ---- states ---------------------------------------------------------------------------------- */

static const struct {
    const char *func, *state;
} waits[] = {
    {"epoll_wait", "IO wait"},       {"epoll_pwait", "IO wait"},      {"poll", "IO wait"},
    {"ppoll", "IO wait"},            {"select", "IO wait"},           {"accept4", "IO wait"},
    {"__futex_abstimed_wait_common", "semacquire"}, {"__lll_lock_wait", "semacquire"},
    {"futex_wait", "semacquire"},    {"__GI___futex_abstimed_wait_cancelable64", "semacquire"},
    {"sigwait", "signal wait"},      {"__sigtimedwait", "signal wait"}, {"sigtimedwait", "signal wait"},
    {"__GI___sigtimedwait", "signal wait"}, {"clock_nanosleep", "sleep"}, {"__GI___clock_nanosleep", "sleep"},
    {"nanosleep", "sleep"},          {"__nanosleep", "sleep"},
};

static const char *state_of(int state, const uintptr_t *pcs, int depth)
{
    switch (state) {
    case ZN_THREAD_IDLE:
        return "IO wait";
    case ZN_THREAD_BLOCKED:
        return "semacquire";
    case ZN_THREAD_SYSCALL:
        return "syscall";
    default:
        break;
    }
    zn_pprof_sym_t sym;
    for (int i = 0; i < depth && i < 3; i++) {
        zn_pprof_sym_lookup(pcs[i], &sym);
        const char *f = sym.nframes > 0 ? sym.frames[sym.nframes - 1].func : "";
        for (size_t k = 0; k < sizeof(waits) / sizeof(waits[0]); k++) {
            if (strcmp(f, waits[k].func) == 0)
                return waits[k].state;
        }
    }
    return "running";
}

/* ---- profile and text forms ----------------------------------------------------------------- */

/* The one list every form (proto, debug=1 with its total, debug=2) is made from: threads asked
 * that still run, each with the state read once. One that ended since it was asked is left
 * out, answer or not, so no form lists a dead thread or counts one it does not list. */
static zn_err_t snap_collect(void *p, zn_pprof_profile_t *out)
{
    snap_tok_t *tok = p;
    uintptr_t pcs[ZN_PPROF_DEPTH_MAX];
    int depth;
    for (int i = 0; i < tok->n; i++) {
        zn_pprof_thread_t *th = thread_at(i);
        int state = th != NULL ? th->info->state : ZN_THREAD_EXITED;
        if (!tok->sent[i] || state == ZN_THREAD_EXITED || !th->info->live)
            continue;
        const char *route = NULL, *repo = NULL;
        if (!read_slot(tok, i, pcs, &depth, &route, &repo)) {
            zn_pprof_profile_comment(out, "zinc: thread %s (tid %d) did not answer", th->info->name, (int)tok->tid[i]);
            continue;
        }
        int64_t one = 1;
        zn_pprof_label_t labels[5] = {{.key = "thread", .str = th->info->name},
                                      {.key = "state", .str = state_of(state, pcs, depth)},
                                      {.key = "tid", .num = tok->tid[i]}};
        size_t nl = 3;
        if (route != NULL)
            labels[nl++] = (zn_pprof_label_t){.key = "route", .str = route};
        if (repo != NULL)
            labels[nl++] = (zn_pprof_label_t){.key = "repo", .str = repo};
        zn_pprof_profile_add(out, pcs, (size_t)depth, &one, labels, nl);
    }
    return ZN_OK;
}

/* debug=2: one block per thread, as a Go panic prints goroutines. */
static zn_err_t write_dump_frames(zn_buf_t *b, const uintptr_t *pcs, size_t depth)
{
    zn_err_t err = ZN_OK;
    for (size_t i = 0; err == ZN_OK && i < depth; i++) {
        zn_pprof_sym_t sym;
        zn_pprof_sym_lookup(pcs[i], &sym);
        if (sym.nframes == 0 || sym.func_start == 0) {
            /* nothing known (a library without symbols): Go's traceback shows the bare pc */
            err = zn_buf_printf(b, "?()\n\t?:0 pc=%#lx\n", (unsigned long)pcs[i]);
            continue;
        }
        for (int j = 0; err == ZN_OK && j < sym.nframes; j++) {
            const zn_pprof_frame_t *f = &sym.frames[j];
            const char *fn = f->func[0] != '\0' ? f->func : "?", *file = f->file[0] != '\0' ? f->file : "?";
            if (j + 1 < sym.nframes) /* inlined: Go prints no offset */
                err = zn_buf_printf(b, "%s(...)\n\t%s:%d\n", fn, file, f->line);
            else
                err = zn_buf_printf(b, "%s()\n\t%s:%d +%#lx\n", fn, file, f->line, (unsigned long)(pcs[i] - sym.func_start));
        }
    }
    return err;
}

static zn_err_t snap_text(void *p, int debug, zn_buf_t *b)
{
    zn_pprof_profile_t prof;
    zn_err_t err = ZN_OK;
    zn_pprof_profile_init(&prof, &goroutine_kind);
    snap_collect(p, &prof);
    if (debug == 1)
        err = zn_pprof_text_counts(b, "goroutine", &prof);
    for (size_t i = 0; debug >= 2 && err == ZN_OK && i < prof.nsamples; i++) {
        const zn_pprof_sample_t *s = &prof.samples[i];
        err = zn_buf_printf(b, "goroutine %lld [%s, %s]:\n", (long long)s->labels[2].num, s->labels[0].str, s->labels[1].str);
        if (err == ZN_OK)
            err = write_dump_frames(b, zn_pprof_sample_pcs(&prof, s), s->depth);
        if (err == ZN_OK)
            err = zn_buf_append(b, "\n", 1);
    }
    for (size_t i = 0; debug >= 2 && err == ZN_OK && i < prof.ncomments; i++)
        err = zn_buf_printf(b, "# %s\n", prof.comments[i]);
    zn_pprof_profile_release(&prof);
    return err;
}

static const zn_pprof_snapshot_ops_t goroutine_ops = {
    .kind = &goroutine_kind,
    .delta = true,
    .prepare = snap_prepare,
    .ready = snap_ready,
    .release = snap_release,
    .collect = snap_collect,
    .text = snap_text,
};

const zn_pprof_def_t zn_pprof_def_goroutine = {
    .name = "goroutine",
    .desc = "Stack traces of all current zinc threads (zinc's goroutines), with their names and states. Use "
            "debug=2 as a query parameter to export in the same format as an unrecovered panic.",
    .in_index = true,
    .count = snap_count,
    .snap = &goroutine_ops,
};
