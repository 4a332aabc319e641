/*
 * pprof/heap.c - the heap sampler behind the allocator hooks, and the heap/allocs profiles.
 *
 * Sampling (as Go's MemProfileRate): the bytes a thread allocates form a stream in which sample
 * points fall as a Poisson process of mean spacing 512 KiB; an allocation that contains a point
 * is sampled, so a block of s bytes is sampled with probability 1 - exp(-s/R). The thread-local
 * countdown is the distance to the next point (an exponential draw). A sampled allocation adds
 * to the bucket of its (stack, thread) and its address goes into the live table, which free()
 * consults only when the counting filter says the address may be there.
 *
 * The sampler runs inside malloc, so it must not allocate through malloc or take a lock that
 * the code it interrupted could hold: its tables grow with __libc_realloc under one plain
 * pthread mutex (not zn_mutex: lock profiling may allocate), and the thread-local busy flag
 * keeps nested calls (libunwind) out. Buckets are never freed (as Go's); at BUCKETS_MAX
 * further stacks share one bucket without a stack.
 *
 * Reading: the profile copies the buckets under the lock into __libc memory. Estimates are
 * per block, not per bucket: each sampled block of s bytes counts 1 / (1 - exp(-s/R)) objects
 * and s times that in bytes (the inverse of its sampling probability, so the sum is unbiased
 * whatever mix of sizes a stack allocates), added at malloc and taken away at free. Go's
 * scaleHeapSample scales a whole bucket by its average size instead, which undercounts a
 * stack that allocates both small and large blocks (-12% for 64 MiB of 4 KiB..4 MiB blocks,
 * as test_heap_accuracy measured); for blocks of one size both are the same. Without the hooks linked
 * in (sanitizer builds) or with zinc.profiling.heap off, the profiles are valid and empty with
 * a comment that says why, as a Go program with MemProfileRate = 0 answers.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pprof/heap.h"
#include "pprof/internal.h"

extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_malloc(size_t n);
extern void __libc_free(void *p);

#define BUCKET_HEADS (1u << 14)
#define LIVE_HEADS (1u << 16)
#define BUCKETS_MAX (1u << 16)

__thread int64_t zn_pprof_heap_countdown __attribute__((tls_model("initial-exec")));
__thread int zn_pprof_heap_busy __attribute__((tls_model("initial-exec")));
static __thread uint64_t rng __attribute__((tls_model("initial-exec")));
_Atomic uint32_t zn_pprof_heap_filter[1u << ZN_PPROF_HEAP_FILTER_BITS];
extern const int zn_pprof_heap_hooked __attribute__((weak));

typedef struct bucket {
    uint64_t hash;
    uint32_t next; /* index + 1 in the hash chain */
    int thread;    /* registry index, -1 when unregistered */
    const char *route, *repo; /* the request being handled (static / interned strings), or NULL */
    uint32_t depth;
    uint64_t allocs, alloc_bytes, frees, free_bytes;               /* sampled, raw (debug=1) */
    double est_allocs, est_alloc_bytes, est_frees, est_free_bytes; /* unsampled estimates */
    uintptr_t pcs[ZN_PPROF_DEPTH_MAX];
} bucket_t;

typedef struct live {
    void *p;
    size_t size;
    uint32_t bucket;
    uint32_t next; /* index + 1: hash chain, or free list */
} live_t;

static struct {
    pthread_mutex_t lock; /* guards all below; raw: taken inside malloc, where zn_mutex's hooks could allocate */
    bucket_t *buckets;
    uint32_t nbuckets, cap_buckets;
    uint32_t bheads[BUCKET_HEADS];
    live_t *lives;
    uint32_t nlives, cap_lives, free_live, live_count;
    uint32_t lheads[LIVE_HEADS];
} H = {.lock = PTHREAD_MUTEX_INITIALIZER};

static _Atomic bool enabled;

void zn_pprof_heap_enable(bool on)
{
    atomic_store(&enabled, on);
}

static bool hooked(void)
{
    return &zn_pprof_heap_hooked != NULL;
}

/* ---- sampling (inside malloc) ----------------------------------------------------------------------- */

/* An exponential draw with mean ZN_PPROF_HEAP_RATE bytes. */
static int64_t draw(void)
{
    if (rng == 0)
        rng = ((uint64_t)syscall(SYS_gettid) << 32 ^ zn_now_mono_ns()) | 1;
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    double u = (double)((rng * 0x2545f4914f6cdd1dull) >> 11) + 1.0; /* (0, 2^53] */
    return (int64_t)(-log(u / 9007199254740992.0) * ZN_PPROF_HEAP_RATE) + 1;
}

/* Objects one sampled block of size bytes stands for: 1 / P(sampled) = 1 / (1 - exp(-size/R)). */
static double weight(size_t size)
{
    return size == 0 ? 1.0 : 1.0 / -expm1(-(double)size / ZN_PPROF_HEAP_RATE);
}

static void *grow(void *arr, uint32_t *cap, size_t elem)
{
    uint32_t ncap = *cap == 0 ? 256 : *cap * 2;
    void *p = __libc_realloc(arr, (size_t)ncap * elem);
    if (p != NULL)
        *cap = ncap;
    return p;
}

static uint32_t bucket_of(const uintptr_t *pcs, uint32_t depth, int thread, const char *route, const char *repo)
{
    uint64_t seed = (uint64_t)(thread + 1) ^ ((uint64_t)(uintptr_t)route * 31) ^ ((uint64_t)(uintptr_t)repo * 131);
    uint64_t h = zn_hash(pcs, depth * sizeof(*pcs), seed);
    for (uint32_t i = H.bheads[h % BUCKET_HEADS]; i != 0; i = H.buckets[i - 1].next) {
        bucket_t *b = &H.buckets[i - 1];
        if (b->hash == h && b->thread == thread && b->route == route && b->repo == repo && b->depth == depth &&
            memcmp(b->pcs, pcs, depth * sizeof(*pcs)) == 0)
            return i - 1;
    }
    if (H.nbuckets >= BUCKETS_MAX && depth != 0)
        return bucket_of(pcs, 0, -1, NULL, NULL); /* the shared stackless bucket */
    if (H.nbuckets == H.cap_buckets) {
        bucket_t *nb = grow(H.buckets, &H.cap_buckets, sizeof(*nb));
        if (nb == NULL)
            return UINT32_MAX;
        H.buckets = nb;
    }
    bucket_t *b = &H.buckets[H.nbuckets];
    memset(b, 0, sizeof(*b));
    b->hash = h;
    b->thread = thread;
    b->route = route;
    b->repo = repo;
    b->depth = depth;
    memcpy(b->pcs, pcs, depth * sizeof(*pcs));
    b->next = H.bheads[h % BUCKET_HEADS];
    H.bheads[h % BUCKET_HEADS] = ++H.nbuckets;
    return H.nbuckets - 1;
}

static size_t live_head(const void *p)
{
    return (size_t)(((uintptr_t)p >> 4) * 0xff51afd7ed558ccdull >> 48) % LIVE_HEADS;
}

/* Removes p from the live table, counting it freed; false if it was not there. */
static bool live_remove(void *p)
{
    uint32_t *link = &H.lheads[live_head(p)];
    for (uint32_t i = *link; i != 0; link = &H.lives[i - 1].next, i = *link) {
        live_t *l = &H.lives[i - 1];
        if (l->p != p)
            continue;
        double w = weight(l->size);
        H.buckets[l->bucket].frees++;
        H.buckets[l->bucket].free_bytes += l->size;
        H.buckets[l->bucket].est_frees += w;
        H.buckets[l->bucket].est_free_bytes += w * (double)l->size;
        *link = l->next;
        l->next = H.free_live;
        H.free_live = i;
        H.live_count--;
        atomic_fetch_sub_explicit(&zn_pprof_heap_filter[zn_pprof_heap_filter_slot(p)], 1, memory_order_relaxed);
        return true;
    }
    return false;
}

static void live_add(void *p, size_t size, uint32_t bucket)
{
    /* p is still in the table if it was freed behind our back (glibc-internal free): it is gone */
    live_remove(p);
    uint32_t i = H.free_live;
    if (i != 0) {
        H.free_live = H.lives[i - 1].next;
    } else {
        if (H.nlives == H.cap_lives) {
            live_t *nl = grow(H.lives, &H.cap_lives, sizeof(*nl));
            if (nl == NULL)
                return;
            H.lives = nl;
        }
        i = ++H.nlives;
    }
    H.lives[i - 1] = (live_t){p, size, bucket, H.lheads[live_head(p)]};
    H.lheads[live_head(p)] = i;
    H.live_count++;
    atomic_fetch_add_explicit(&zn_pprof_heap_filter[zn_pprof_heap_filter_slot(p)], 1, memory_order_relaxed);
}

/* Records a sampled block; pcs are the allocating stack (leaf first). Busy flag set. */
static void record(void *p, size_t size, const uintptr_t *pcs, uint32_t depth)
{
    zn_thread_info_t *t = zn_thread_self();
    pthread_mutex_lock(&H.lock);
    uint32_t b = t != NULL ? bucket_of(pcs, depth, t->id, t->route, t->repo) : bucket_of(pcs, depth, -1, NULL, NULL);
    if (b != UINT32_MAX) {
        double w = weight(size);
        H.buckets[b].allocs++;
        H.buckets[b].alloc_bytes += size;
        H.buckets[b].est_allocs += w;
        H.buckets[b].est_alloc_bytes += w * (double)size;
        live_add(p, size, b);
    }
    pthread_mutex_unlock(&H.lock);
}

void zn_pprof_heap_alloc_slow(void *p, size_t size)
{
    static __thread bool started __attribute__((tls_model("initial-exec")));
    if (zn_pprof_heap_busy)
        return; /* the outer call refills the countdown */
    int saved = errno;
    zn_pprof_heap_busy++;
    if (!started) {
        /* the thread's stream starts with this allocation: its first point is one draw away */
        started = true;
        int64_t first = draw();
        if (first > (int64_t)size) {
            zn_pprof_heap_countdown = first - (int64_t)size;
            goto done;
        }
    }
    if (atomic_load_explicit(&enabled, memory_order_relaxed)) {
        uintptr_t pcs[ZN_PPROF_DEPTH_MAX];
        /* skip this function and the malloc hook: the stack starts at malloc's caller */
        int depth = zn_pprof_unwind_here(pcs, ZN_PPROF_DEPTH_MAX, 2);
        record(p, size, pcs, (uint32_t)depth);
    }
    zn_pprof_heap_countdown = draw();
done:
    zn_pprof_heap_busy--;
    errno = saved;
}

void zn_pprof_heap_free_slow(void *p)
{
    int saved = errno;
    zn_pprof_heap_busy++;
    pthread_mutex_lock(&H.lock);
    live_remove(p);
    pthread_mutex_unlock(&H.lock);
    zn_pprof_heap_busy--;
    errno = saved;
}

/* ---- reading ------------------------------------------------------------------------------------------ */

/* A copy of the buckets taken under the lock (in __libc memory: no sampling, no recursion). */
typedef struct snapshot {
    bucket_t *b;
    uint32_t n, live;
} snapshot_t;

static void snapshot_take(snapshot_t *s)
{
    zn_pprof_heap_busy++;
    pthread_mutex_lock(&H.lock);
    s->n = H.nbuckets;
    s->live = H.live_count;
    s->b = s->n != 0 ? __libc_malloc((size_t)s->n * sizeof(bucket_t)) : NULL;
    if (s->b != NULL)
        memcpy(s->b, H.buckets, (size_t)s->n * sizeof(bucket_t));
    else
        s->n = 0;
    pthread_mutex_unlock(&H.lock);
    zn_pprof_heap_busy--;
}

static void snapshot_release(snapshot_t *s)
{
    __libc_free(s->b);
}

static const char *why_empty(void)
{
    if (!hooked())
        return "zinc: heap sampling is not built in (ZN_HEAP_PROFILER=OFF, as in sanitizer builds): no samples";
    if (!atomic_load(&enabled))
        return "zinc: heap sampling is off (zinc.profiling.heap = false): no samples";
    return NULL;
}

static zn_err_t heap_collect(void *tok, zn_pprof_profile_t *out)
{
    snapshot_t s;
    const char *why = why_empty();
    if (why != NULL)
        zn_pprof_profile_comment(out, "%s", why);
    snapshot_take(&s);
    for (uint32_t i = 0; i < s.n; i++) {
        const bucket_t *b = &s.b[i];
        int64_t v[4];
        if (b->allocs == 0)
            continue;
        v[0] = (int64_t)b->est_allocs;
        v[1] = (int64_t)b->est_alloc_bytes;
        v[2] = b->allocs == b->frees ? 0 : (int64_t)(b->est_allocs - b->est_frees);
        v[3] = b->allocs == b->frees ? 0 : (int64_t)(b->est_alloc_bytes - b->est_free_bytes);
        const zn_thread_info_t *t = b->thread >= 0 ? zn_thread_get(b->thread) : NULL;
        zn_pprof_label_t labels[4] = {{.key = "thread", .str = t != NULL ? t->name : "unregistered"},
                                      {.key = "bytes", .num = (int64_t)(b->alloc_bytes / b->allocs), .unit = "bytes"}};
        size_t nl = 2;
        if (b->route != NULL)
            labels[nl++] = (zn_pprof_label_t){.key = "route", .str = b->route};
        if (b->repo != NULL)
            labels[nl++] = (zn_pprof_label_t){.key = "repo", .str = b->repo};
        zn_pprof_profile_add(out, b->pcs, b->depth, v, labels, nl);
    }
    snapshot_release(&s);
    return ZN_OK;
}

static int heap_count(void)
{
    return (int)H.nbuckets;
}

static void heap_gc(void)
{
    malloc_trim(0);
}

/* ---- debug=1 text (Go's legacy heap profile format, raw sampled counts) ------------------------------- */

static const zn_pprof_kind_t raw_kind = {.nvalues = 4, .default_type = -1};

static int cmp_inuse(const void *a, const void *b)
{
    const zn_pprof_sample_t *x = a, *y = b;
    return x->values[3] != y->values[3] ? (x->values[3] > y->values[3] ? -1 : 1) : 0;
}

static zn_err_t write_mallinfo(zn_buf_t *b, uint32_t live, uint32_t nbuckets)
{
    struct mallinfo2 mi = mallinfo2();
    return zn_buf_printf(b,
                         "\n# mallinfo2 (glibc malloc statistics)\n# Arena = %zu\n# Ordblks = %zu\n# Smblks = %zu\n"
                         "# Hblks = %zu\n# Hblkhd = %zu\n# Fsmblks = %zu\n# Uordblks = %zu\n# Fordblks = %zu\n"
                         "# Keepcost = %zu\n# zinc heap sampler\n# SampleRate = %d\n# SampledLiveBlocks = %u\n"
                         "# Buckets = %u\n",
                         mi.arena, mi.ordblks, mi.smblks, mi.hblks, mi.hblkhd, mi.fsmblks, mi.uordblks, mi.fordblks,
                         mi.keepcost, ZN_PPROF_HEAP_RATE, live, nbuckets);
}

static zn_err_t heap_text(void *tok, int debug, zn_buf_t *b)
{
    snapshot_t s;
    zn_pprof_profile_t p;
    int64_t tot[4] = {0, 0, 0, 0};
    zn_err_t err;

    /* per stack, threads merged, as Go's records are */
    zn_pprof_profile_init(&p, &raw_kind);
    snapshot_take(&s);
    for (uint32_t i = 0; i < s.n; i++) {
        const bucket_t *k = &s.b[i];
        int64_t v[4] = {(int64_t)k->allocs, (int64_t)k->alloc_bytes, (int64_t)(k->allocs - k->frees),
                        (int64_t)(k->alloc_bytes - k->free_bytes)};
        zn_pprof_profile_add(&p, k->pcs, k->depth, v, NULL, 0);
        for (int j = 0; j < 4; j++)
            tot[j] += v[j];
    }
    zn_pprof_profile_merge(&p);
    if (p.nsamples > 1)
        qsort(p.samples, p.nsamples, sizeof(*p.samples), cmp_inuse);
    err = zn_buf_printf(b, "heap profile: %" PRId64 ": %" PRId64 " [%" PRId64 ": %" PRId64 "] @ heap/%d\n", tot[2], tot[3],
                        tot[0], tot[1], 2 * ZN_PPROF_HEAP_RATE);
    for (size_t i = 0; err == ZN_OK && i < p.nsamples; i++) {
        const zn_pprof_sample_t *r = &p.samples[i];
        const int64_t *v = r->values;
        if ((err = zn_buf_printf(b, "%" PRId64 ": %" PRId64 " [%" PRId64 ": %" PRId64 "] @", v[2], v[3], v[0], v[1])) ==
                ZN_OK &&
            (err = zn_pprof_text_addrs(b, zn_pprof_sample_pcs(&p, r), r->depth)) == ZN_OK &&
            (err = zn_pprof_text_frames(b, zn_pprof_sample_pcs(&p, r), r->depth)) == ZN_OK)
            err = zn_buf_append(b, "\n", 1);
    }
    if (err == ZN_OK && why_empty() != NULL)
        err = zn_buf_printf(b, "# %s\n", why_empty());
    if (err == ZN_OK)
        err = write_mallinfo(b, s.live, s.n);
    snapshot_release(&s);
    zn_pprof_profile_release(&p);
    return err;
}

static const zn_pprof_kind_t heap_kind = {
    .nvalues = 4,
    .types = {{"alloc_objects", "count"}, {"alloc_space", "bytes"}, {"inuse_objects", "count"}, {"inuse_space", "bytes"}},
    .period_type = {"space", "bytes"},
    .period = ZN_PPROF_HEAP_RATE,
    .default_type = -1, /* pprof then shows the last type, inuse_space */
};

static const zn_pprof_kind_t allocs_kind = {
    .nvalues = 4,
    .types = {{"alloc_objects", "count"}, {"alloc_space", "bytes"}, {"inuse_objects", "count"}, {"inuse_space", "bytes"}},
    .period_type = {"space", "bytes"},
    .period = ZN_PPROF_HEAP_RATE,
    .default_type = 1,
};

static const zn_pprof_snapshot_ops_t heap_ops = {
    .kind = &heap_kind, .delta = true, .collect = heap_collect, .text = heap_text, .gc = heap_gc};
static const zn_pprof_snapshot_ops_t allocs_ops = {
    .kind = &allocs_kind, .delta = true, .collect = heap_collect, .text = heap_text, .gc = heap_gc};

const zn_pprof_def_t zn_pprof_def_heap = {
    .name = "heap",
    .desc = "A sampling of memory allocations of live objects (every malloc in the process, libraries included). "
            "You can specify the gc GET parameter to return free memory to the system (malloc_trim) before "
            "taking the heap sample.",
    .in_index = true,
    .count = heap_count,
    .snap = &heap_ops,
};

const zn_pprof_def_t zn_pprof_def_allocs = {
    .name = "allocs",
    .desc = "A sampling of all past memory allocations",
    .in_index = true,
    .count = heap_count,
    .snap = &allocs_ops,
};
