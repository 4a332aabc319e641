/*
 * pprof/lockprof.c - mutex and block profiles (see lockprof.h), with Go's sampling:
 *
 *   block: rate R ns. A wait of c >= R ns is recorded as (1, c); a shorter one is kept with
 *          probability c/R and recorded as (R/c, R), which removes the sampling bias
 *          (golang.org/cl/299991). Values are sent as recorded.
 *   mutex: rate N. One contended release in N is recorded as (1, delay); the proto scales
 *          both values by N (Go's scaleMutexProfile), debug=1 prints them raw with
 *          "sampling period=N".
 *
 * Buckets are keyed by stack and thread (every sample carries thread=<name>). The tables
 * are guarded by raw pthread mutexes, not zn_mutex: the hooks run inside the zn_* lock paths
 * and must not re-enter them. A thread-local flag stops recursion through allocations the
 * hooks make (a heap profiler may take a lock).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "pprof/lockprof.h"
#include "pprof/trace_int.h"

enum { MUTEX, BLOCK };

typedef struct bucket {
    uint32_t off, n;          /* into table.pcs */
    int thread;               /* registry index, -1 when unregistered */
    const char *route, *repo; /* request being handled (static / interned), or NULL */
    double count;
    int64_t delay;
} bucket_t;

typedef struct table {
    pthread_mutex_t lock; /* guards everything below */
    uintptr_t *pcs;
    size_t npcs, cap_pcs;
    bucket_t *b;
    size_t nb, cap_b;
    zn_htab_t index;
} table_t;

#define BUCKETS_MAX 65536 /* past this, new stacks are not recorded (a leak guard) */

static table_t tables[2] = {{.lock = PTHREAD_MUTEX_INITIALIZER}, {.lock = PTHREAD_MUTEX_INITIALIZER}};
static unsigned mutex_rate, block_rate;
static __thread bool in_hook;
static __thread uint64_t rng;

static uint64_t rand64(void)
{
    if (rng == 0)
        rng = zn_now_mono_ns() ^ ((uint64_t)(uintptr_t)&rng << 17) ^ 0x9e3779b97f4a7c15ull;
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

struct key {
    const table_t *t;
    const uintptr_t *pcs;
    uint32_t n;
    int thread;
    const char *route, *repo;
};

static bool bucket_eq(void *ctx, uintptr_t i)
{
    const struct key *k = ctx;
    const bucket_t *b = &k->t->b[i];
    return b->thread == k->thread && b->route == k->route && b->repo == k->repo && b->n == k->n &&
           (k->n == 0 || memcmp(k->t->pcs + b->off, k->pcs, k->n * sizeof(*k->pcs)) == 0);
}

static bucket_t *bucket_add(table_t *t, uint64_t h, const struct key *k)
{
    if (t->nb >= BUCKETS_MAX)
        return NULL;
    if (t->npcs + k->n > t->cap_pcs) {
        t->cap_pcs = t->cap_pcs == 0 ? 4096 : t->cap_pcs * 2;
        t->pcs = zn_realloc(t->pcs, t->cap_pcs * sizeof(*t->pcs));
    }
    if (t->nb == t->cap_b) {
        t->cap_b = t->cap_b == 0 ? 256 : t->cap_b * 2;
        t->b = zn_realloc(t->b, t->cap_b * sizeof(*t->b));
    }
    if (k->n > 0) /* t->pcs may still be NULL */
        memcpy(t->pcs + t->npcs, k->pcs, k->n * sizeof(*k->pcs));
    t->b[t->nb] = (bucket_t){(uint32_t)t->npcs, k->n, k->thread, k->route, k->repo, 0, 0};
    t->npcs += k->n;
    zn_htab_insert(&t->index, h, (uint32_t)t->nb);
    return &t->b[t->nb++];
}

static void record(table_t *t, uintptr_t anchor, double count, int64_t delay)
{
    uintptr_t pcs[ZN_TRACE_STACK_MAX];
    zn_thread_info_t *self = zn_thread_self();
    struct key k = {t, pcs, 0, self != NULL ? self->id : -1, self != NULL ? self->route : NULL, self != NULL ? self->repo : NULL};

    if (in_hook)
        return;
    in_hook = true;
    k.n = (uint32_t)zn_trace_capture(pcs, ZN_TRACE_STACK_MAX, anchor);
    uint64_t h = zn_hash(pcs, k.n * sizeof(*pcs),
                               (uint64_t)k.thread ^ ((uint64_t)(uintptr_t)k.route * 31) ^ ((uint64_t)(uintptr_t)k.repo * 131));
    pthread_mutex_lock(&t->lock);
    uintptr_t i;
    bucket_t *b = zn_htab_find(&t->index, h, bucket_eq, &k, &i) ? &t->b[i] : bucket_add(t, h, &k);
    if (b != NULL) {
        b->count += count;
        b->delay += delay;
    }
    pthread_mutex_unlock(&t->lock);
    in_hook = false;
}

bool zn_lockprof_block_sample(uint64_t wait_ns, uint64_t rate, uint64_t rnd, double *count, int64_t *delay)
{
    uint64_t c = wait_ns != 0 ? wait_ns : 1;
    if (rate == 0)
        return false;
    if (c >= rate) {
        *count = 1;
        *delay = (int64_t)c;
        return true;
    }
    if (rnd % rate > c)
        return false;
    *count = (double)rate / (double)c;
    *delay = (int64_t)rate;
    return true;
}

/* A waiter got its lock, or a condition wait ended, after wait_ns. */
static void on_wait(const void *lock, uint64_t wait_ns)
{
    double count;
    int64_t delay;
    if (block_rate != 0 && zn_lockprof_block_sample(wait_ns, block_rate, rand64(), &count, &delay))
        record(&tables[BLOCK], (uintptr_t)__builtin_return_address(0), count, delay);
}

/* A holder is releasing a lock others waited for; it delayed them by delay_ns. */
static void on_release(const void *lock, uint64_t delay_ns)
{
    if (mutex_rate == 0 || rand64() % mutex_rate != 0)
        return;
    record(&tables[MUTEX], (uintptr_t)__builtin_return_address(0), 1, (int64_t)delay_ns);
}

void zn_lockprof_init(unsigned mrate, unsigned brate)
{
    mutex_rate = mrate;
    block_rate = brate;
    zn_lock_set_hooks(&(zn_lock_hooks_t){on_wait, on_release, zn_trace_lock_begin, zn_trace_lock_end});
}

/* ---- reading the tables ------------------------------------------------------------------------- */

static const zn_pprof_kind_t kind = {
    2, {{"contentions", "count"}, {"delay", "nanoseconds"}}, {"contentions", "count"}, 1, -1,
};

/* Copies table t into p (labels point at registry names, which live forever), values scaled
 * by `scale` (the mutex sampling period) as the proto wants them. */
static void copy_table(table_t *t, zn_pprof_profile_t *p, int64_t scale)
{
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->nb; i++) {
        const bucket_t *b = &t->b[i];
        int64_t values[2] = {(int64_t)b->count * scale, b->delay * scale};
        zn_thread_info_t *th = b->thread >= 0 ? zn_thread_get(b->thread) : NULL;
        zn_pprof_label_t labels[3] = {{"thread", th != NULL ? th->name : "unregistered", 0, NULL}};
        size_t nl = 1;
        if (b->route != NULL)
            labels[nl++] = (zn_pprof_label_t){"route", b->route, 0, NULL};
        if (b->repo != NULL)
            labels[nl++] = (zn_pprof_label_t){"repo", b->repo, 0, NULL};
        zn_pprof_profile_add(p, t->pcs + b->off, b->n, values, labels, nl);
    }
    pthread_mutex_unlock(&t->lock);
}

static zn_err_t collect_mutex(void *tok, zn_pprof_profile_t *out)
{
    copy_table(&tables[MUTEX], out, mutex_rate > 0 ? mutex_rate : 1);
    return ZN_OK;
}

static zn_err_t collect_block(void *tok, zn_pprof_profile_t *out)
{
    copy_table(&tables[BLOCK], out, 1);
    return ZN_OK;
}

static int by_delay(const void *a, const void *b)
{
    const zn_pprof_sample_t *x = a, *y = b;
    return x->values[1] < y->values[1] ? 1 : x->values[1] > y->values[1] ? -1 : 0;
}

/* Go's writeProfileInternal with debug > 0: a header, then per stack (largest delay first)
 * "cycles count @ addrs" and its frames. cycles are nanoseconds: cycles/second = 1e9. Stacks
 * recorded on several threads are summed, as Go has no per-thread buckets. */
static zn_err_t render(table_t *t, const char *name, bool mutex, zn_buf_t *out)
{
    zn_pprof_profile_t p;
    zn_err_t err;

    zn_pprof_profile_init(&p, &kind);
    copy_table(t, &p, 1);
    for (size_t i = 0; i < p.nsamples; i++)
        p.samples[i].nlabels = 0;
    zn_pprof_profile_merge(&p);
    if (p.nsamples > 1) /* samples is NULL when empty: not for qsort */
        qsort(p.samples, p.nsamples, sizeof(*p.samples), by_delay);
    err = zn_buf_printf(out, "--- %s:\ncycles/second=%u\n", name, 1000000000u);
    if (err == ZN_OK && mutex)
        err = zn_buf_printf(out, "sampling period=%u\n", mutex_rate);
    for (size_t i = 0; err == ZN_OK && i < p.nsamples; i++) {
        const zn_pprof_sample_t *s = &p.samples[i];
        const uintptr_t *pcs = zn_pprof_sample_pcs(&p, s);
        if ((err = zn_buf_printf(out, "%" PRId64 " %" PRId64 " @", s->values[1], s->values[0])) == ZN_OK &&
            (err = zn_pprof_text_addrs(out, pcs, s->depth)) == ZN_OK && (err = zn_pprof_text_frames(out, pcs, s->depth)) == ZN_OK)
            err = zn_buf_append(out, "\n", 1);
    }
    zn_pprof_profile_release(&p);
    return err;
}

static zn_err_t text_mutex(void *tok, int debug, zn_buf_t *out)
{
    return render(&tables[MUTEX], "mutex", true, out);
}

static zn_err_t text_block(void *tok, int debug, zn_buf_t *out)
{
    return render(&tables[BLOCK], "contention", false, out);
}

static int count_table(table_t *t)
{
    pthread_mutex_lock(&t->lock);
    int n = (int)t->nb;
    pthread_mutex_unlock(&t->lock);
    return n;
}

static int count_mutex(void)
{
    return count_table(&tables[MUTEX]);
}

static int count_block(void)
{
    return count_table(&tables[BLOCK]);
}

static const zn_pprof_snapshot_ops_t mutex_ops = {.kind = &kind, .delta = true, .collect = collect_mutex, .text = text_mutex};
static const zn_pprof_snapshot_ops_t block_ops = {.kind = &kind, .delta = true, .collect = collect_block, .text = text_block};

const zn_pprof_def_t zn_pprof_def_mutex = {
    .name = "mutex",
    .desc = "Stack traces of holders of contended mutexes",
    .in_index = true,
    .count = count_mutex,
    .snap = &mutex_ops,
};

const zn_pprof_def_t zn_pprof_def_block = {
    .name = "block",
    .desc = "Stack traces that led to blocking on synchronization primitives",
    .in_index = true,
    .count = count_block,
    .snap = &block_ops,
};
