/* Heap profile accuracy and the delta_heap arithmetic, through the real sampler.
 *
 * With the allocator hooks built in (not in sanitizer builds), 64 MiB are retained in blocks
 * of 4 KiB to 4 MiB (sizes log-uniform from a fixed generator) inside a request
 * (route=manifests.get, repo=library/app); the heap profile's in-use estimate of the blocks
 * carrying those labels must be within 10% of 64 MiB. The sampler's random stream is seeded
 * with fixed values, so the figures are the same on every run; the test tries 64 seeds and
 * every one must pass. Between a scrape before and one after, the delta (godeltaprof's
 * delta_heap) must show the same 64 MiB as allocated, with in-use as it is.
 *
 * In every build, the delta arithmetic on synthetic buckets: alloc_* differences, inuse_* as
 * they are, nothing negative. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "pprof/heap.c"
#ifdef ZN_HEAP_PROFILER
#include "pprof/malloc/malloc.c"
#endif
#include "pprof/pprof.h"

#define ROUTE "manifests.get"
#define REPO "library/app"

/* Sums value k over samples whose labels route/repo are ROUTE/REPO (leaf ignored). */
static int64_t labelled_sum(const zn_pprof_profile_t *p, int k)
{
    int64_t sum = 0;
    for (size_t i = 0; i < p->nsamples; i++) {
        const zn_pprof_sample_t *s = &p->samples[i];
        bool route = false, repo = false;
        for (uint32_t j = 0; j < s->nlabels; j++) {
            route = route || (strcmp(s->labels[j].key, "route") == 0 && strcmp(s->labels[j].str, ROUTE) == 0);
            repo = repo || (strcmp(s->labels[j].key, "repo") == 0 && strcmp(s->labels[j].str, REPO) == 0);
        }
        if (route && repo)
            sum += s->values[k];
    }
    return sum;
}

static int64_t leaf_sum(const zn_pprof_profile_t *p, uintptr_t leaf, int k)
{
    int64_t sum = 0;
    for (size_t i = 0; i < p->nsamples; i++)
        if (p->samples[i].depth > 0 && zn_pprof_sample_pcs(p, &p->samples[i])[0] == leaf)
            sum += p->samples[i].values[k];
    return sum;
}

static void test_delta_arithmetic(void **state)
{
    static const uintptr_t stack[2] = {0x3333, 0x4444};
    enum { SIZE = 2048 };
    double sc = 1.0 / (1.0 - exp(-(double)SIZE / 524288.0));
    zn_pprof_profile_t p0, p1;

    zn_pprof_heap_busy++;
    for (uintptr_t i = 0; i < 10; i++)
        record((void *)(0x700000 + i * 64), SIZE, stack, 2);
    zn_pprof_heap_busy--;
    zn_pprof_profile_init(&p0, &heap_kind);
    assert_int_equal(heap_collect(NULL, &p0), ZN_OK);

    /* between the scrapes: 30 more allocated, 25 of all 40 freed */
    zn_pprof_heap_busy++;
    for (uintptr_t i = 10; i < 40; i++)
        record((void *)(0x700000 + i * 64), SIZE, stack, 2);
    for (uintptr_t i = 0; i < 25; i++)
        zn_pprof_heap_free_slow((void *)(0x700000 + i * 64));
    zn_pprof_heap_busy--;
    zn_pprof_profile_init(&p1, &heap_kind);
    assert_int_equal(heap_collect(NULL, &p1), ZN_OK);

    zn_pprof_delta_apply(&p1, &p0, 2);
    assert_int_equal(leaf_sum(&p1, 0x3333, 0), (int64_t)(40 * sc) - (int64_t)(10 * sc));
    assert_int_equal(leaf_sum(&p1, 0x3333, 1), (int64_t)(40 * SIZE * sc) - (int64_t)(10 * SIZE * sc));
    assert_int_equal(leaf_sum(&p1, 0x3333, 2), (int64_t)(15 * sc)); /* in use now, not a difference */
    assert_int_equal(leaf_sum(&p1, 0x3333, 3), (int64_t)(15 * SIZE * sc));

    /* nothing happened since: the next delta has no allocations; and a counter that went
     * backwards (a bucket gone) is not reported as negative work */
    zn_pprof_profile_t p2, p3;
    zn_pprof_profile_init(&p2, &heap_kind);
    heap_collect(NULL, &p2);
    zn_pprof_profile_init(&p3, &heap_kind);
    heap_collect(NULL, &p3);
    zn_pprof_delta_apply(&p3, &p2, 2);
    assert_int_equal(leaf_sum(&p3, 0x3333, 0), 0);
    assert_int_equal(leaf_sum(&p3, 0x3333, 1), 0);
    assert_int_equal(leaf_sum(&p3, 0x3333, 3), (int64_t)(15 * SIZE * sc));
    zn_pprof_profile_t empty;
    zn_pprof_profile_init(&empty, &heap_kind);
    zn_pprof_delta_apply(&empty, &p2, 2);
    for (size_t i = 0; i < empty.nsamples; i++)
        for (int k = 0; k < 4; k++)
            assert_true(empty.samples[i].values[k] >= 0);
    assert_int_equal(empty.nsamples, 0);

    zn_pprof_heap_busy++;
    for (uintptr_t i = 25; i < 40; i++)
        zn_pprof_heap_free_slow((void *)(0x700000 + i * 64));
    zn_pprof_heap_busy--;
    zn_pprof_profile_release(&p0);
    zn_pprof_profile_release(&p1);
    zn_pprof_profile_release(&p2);
    zn_pprof_profile_release(&p3);
    zn_pprof_profile_release(&empty);
}

/* A block sampled inside a request carries the request's route and repo (interned). */
static void test_request_labels(void **state)
{
    static const uintptr_t stack[2] = {0x5555, 0x6666};
    char repo[32];
    snprintf(repo, sizeof(repo), "%s", REPO); /* a request-pool copy: must not be kept */
    zn_pprof_req_begin(ROUTE, repo);
    zn_pprof_heap_busy++;
    record((void *)0x900000, 4096, stack, 2);
    zn_pprof_heap_busy--;
    zn_pprof_req_end();
    memset(repo, 'x', sizeof(repo) - 1);

    zn_pprof_profile_t p;
    zn_pprof_profile_init(&p, &heap_kind);
    heap_collect(NULL, &p);
    assert_int_equal(labelled_sum(&p, 2), leaf_sum(&p, 0x5555, 2));
    assert_true(labelled_sum(&p, 3) > 0);
    zn_pprof_profile_release(&p);
    zn_pprof_heap_busy++;
    zn_pprof_heap_free_slow((void *)0x900000);
    zn_pprof_heap_busy--;
    assert_null(zn_thread_self()->route);
    assert_null(zn_thread_self()->repo);
}

#ifdef ZN_HEAP_PROFILER
#define TOTAL (64u << 20)
#define SEEDS 64
static void *blocks[4096];

/* Retains TOTAL bytes in blocks of 4 KiB..4 MiB, log-uniform from a fixed LCG. */
__attribute__((noipa)) static size_t zn_test_retain_64m(uint64_t lcg)
{
    size_t n = 0, total = 0;
    while (total < TOTAL) {
        lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(lcg >> 11) / 9007199254740992.0;
        size_t size = (size_t)(4096.0 * pow(1024.0, u));
        if (size > TOTAL - total)
            size = TOTAL - total;
        if (size < 4096 && total + 4096 <= TOTAL)
            size = 4096;
        blocks[n++] = malloc(size);
        total += size;
    }
    __asm__ volatile("" ::: "memory");
    return n;
}

static void test_64mib_estimate(void **state)
{
    double worst = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        zn_pprof_profile_t before, after;
        zn_pprof_profile_init(&before, &heap_kind);
        heap_collect(NULL, &before);

        /* a fixed random stream for this thread's sampler, restarted at a fresh draw */
        rng = 0x9e3779b97f4a7c15ull * seed | 1;
        zn_pprof_heap_countdown = draw();
        zn_pprof_req_begin(ROUTE, REPO);
        size_t n = zn_test_retain_64m(seed * 7919);
        zn_pprof_req_end();

        zn_pprof_profile_init(&after, &heap_kind);
        heap_collect(NULL, &after);
        double inuse = (double)labelled_sum(&after, 3);
        double err = fabs(inuse - TOTAL) / TOTAL;
        worst = err > worst ? err : worst;
        print_message("seed %2llu: %zu blocks, in-use estimate %.2f MiB (%+.1f%%)\n", (unsigned long long)seed, n,
                      inuse / 1048576.0, 100.0 * (inuse - TOTAL) / TOTAL);
        assert_true(err <= 0.10);

        /* delta_heap between the two scrapes: this round's allocations, in-use as it is */
        zn_pprof_delta_apply(&after, &before, 2);
        double alloc = (double)labelled_sum(&after, 1);
        assert_true(fabs(alloc - TOTAL) <= 0.10 * TOTAL);
        assert_int_equal((int64_t)inuse, labelled_sum(&after, 3));

        for (size_t i = 0; i < n; i++)
            free(blocks[i]);
        zn_pprof_profile_release(&before);
        zn_pprof_profile_release(&after);
        zn_pprof_profile_init(&after, &heap_kind);
        heap_collect(NULL, &after);
        assert_int_equal(labelled_sum(&after, 3), 0);
        zn_pprof_profile_release(&after);
    }
    print_message("worst error over %d seeds: %.1f%%\n", SEEDS, 100.0 * worst);
}
#endif

int main(void)
{
    zn_config_t cfg;
    zn_config_init_defaults(&cfg);
    zn_thread_register_self("main");
    assert_int_equal(zn_pprof_init(&cfg), ZN_OK);
    zn_config_release(&cfg); /* zn_pprof_init keeps nothing of it */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delta_arithmetic),
        cmocka_unit_test(test_request_labels),
#ifdef ZN_HEAP_PROFILER
        cmocka_unit_test(test_64mib_estimate),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
