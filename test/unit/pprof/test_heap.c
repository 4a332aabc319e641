/* Unit tests for pprof/heap.c (and pprof/malloc/malloc.c when the build has the heap profiler):
 * Go's unsampled-estimate scaling, the live table and free accounting, the debug=1 text, and,
 * with the real allocator hooks interposed in this test binary, the estimate of a known
 * retained allocation within 20%, errno kept by free, and the alignment checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* heap.c first: it must not see the hooks' definition when it asks whether they exist */
#include "pprof/heap.c"
#ifdef ZN_HEAP_PROFILER
#include "pprof/malloc/malloc.c"
#endif

/* A stack no real allocation has, to find our synthetic buckets. */
static const uintptr_t fake_stack[2] = {0x1111, 0x2222};

static int64_t sum_for_leaf(const zn_pprof_profile_t *p, uintptr_t leaf, int value)
{
    int64_t sum = 0;
    for (size_t i = 0; i < p->nsamples; i++) {
        const zn_pprof_sample_t *s = &p->samples[i];
        if (s->depth > 0 && zn_pprof_sample_pcs(p, s)[0] == leaf)
            sum += s->values[value];
    }
    return sum;
}

static void test_scaling_and_frees(void **state)
{
    enum { N = 100, SIZE = 1024 };
    zn_pprof_heap_busy++; /* nothing real gets sampled while we build the synthetic bucket */
    for (uintptr_t i = 0; i < N; i++)
        record((void *)(0x100000 + i * 64), SIZE, fake_stack, 2);
    for (uintptr_t i = 0; i < N / 4; i++) {
        assert_int_not_equal(atomic_load(&zn_pprof_heap_filter[zn_pprof_heap_filter_slot((void *)(0x100000 + i * 64))]), 0);
        zn_pprof_heap_free_slow((void *)(0x100000 + i * 64));
    }
    zn_pprof_heap_busy--;

    zn_pprof_profile_t p;
    zn_pprof_profile_init(&p, &heap_kind);
    assert_int_equal(heap_collect(NULL, &p), ZN_OK);
    double scale = 1.0 / (1.0 - exp(-(double)SIZE / 524288.0));
    assert_int_equal(sum_for_leaf(&p, 0x1111, 0), (int64_t)(N * scale));
    assert_int_equal(sum_for_leaf(&p, 0x1111, 1), (int64_t)(N * SIZE * scale));
    assert_int_equal(sum_for_leaf(&p, 0x1111, 2), (int64_t)((N - N / 4) * scale));
    assert_int_equal(sum_for_leaf(&p, 0x1111, 3), (int64_t)((N - N / 4) * SIZE * scale));
    /* labels: the allocating thread and the average block size */
    for (size_t i = 0; i < p.nsamples; i++) {
        if (zn_pprof_sample_pcs(&p, &p.samples[i])[0] != 0x1111)
            continue;
        assert_string_equal(p.samples[i].labels[0].key, "thread");
        assert_string_equal(p.samples[i].labels[1].key, "bytes");
        assert_int_equal(p.samples[i].labels[1].num, SIZE);
    }
    zn_pprof_profile_release(&p);

    /* debug=1: raw sampled counts, Go's legacy header, our stack's record, the trailer */
    zn_buf_t b;
    zn_buf_init(&b, 1 << 24);
    assert_int_equal(heap_text(NULL, 1, &b), ZN_OK);
    assert_true(strncmp(b.p, "heap profile: ", 14) == 0);
    assert_non_null(strstr(b.p, "] @ heap/1048576\n"));
    assert_non_null(strstr(b.p, "\n75: 76800 [100: 102400] @ 0x1111 0x2222\n#\t0x1111\n#\t0x2222\n\n"));
    assert_non_null(strstr(b.p, "# mallinfo2"));
    assert_non_null(strstr(b.p, "# SampleRate = 524288\n"));
    zn_buf_release(&b);

    /* the rest freed; an address freed behind our back and sampled again replaces its entry */
    zn_pprof_heap_busy++;
    for (uintptr_t i = N / 4; i < N; i++)
        zn_pprof_heap_free_slow((void *)(0x100000 + i * 64));
    record((void *)0x100000, SIZE, fake_stack, 2);
    record((void *)0x100000, SIZE, fake_stack, 2);
    zn_pprof_heap_busy--;
    zn_pprof_profile_init(&p, &heap_kind);
    heap_collect(NULL, &p);
    assert_int_equal(sum_for_leaf(&p, 0x1111, 2), (int64_t)(1 * scale));
    zn_pprof_profile_release(&p);
}

#ifdef ZN_HEAP_PROFILER
enum { RETAIN_N = 4096, RETAIN_SIZE = 64 << 10 };
static void *retained[RETAIN_N];

__attribute__((noipa)) void zn_test_retain(void)
{
    for (int i = 0; i < RETAIN_N; i++)
        retained[i] = malloc(RETAIN_SIZE);
    __asm__ volatile("" ::: "memory");
}

/* inuse values of samples whose allocating frame is zn_test_retain */
static void retained_estimate(int64_t *objects, int64_t *bytes)
{
    zn_pprof_profile_t p;
    zn_pprof_profile_init(&p, &heap_kind);
    heap_collect(NULL, &p);
    *objects = *bytes = 0;
    for (size_t i = 0; i < p.nsamples; i++) {
        const zn_pprof_sample_t *s = &p.samples[i];
        zn_pprof_sym_t sym;
        if (s->depth == 0)
            continue;
        zn_pprof_sym_lookup(zn_pprof_sample_pcs(&p, s)[0], &sym);
        if (sym.nframes > 0 && strcmp(sym.frames[sym.nframes - 1].func, "zn_test_retain") == 0) {
            *objects += s->values[2];
            *bytes += s->values[3];
        }
    }
    zn_pprof_profile_release(&p);
}

static void test_known_retained_allocation(void **state)
{
    int64_t objects, bytes;
    const double want = (double)RETAIN_N * RETAIN_SIZE;
    zn_pprof_heap_enable(true);
    zn_test_retain();
    retained_estimate(&objects, &bytes);
    print_message("retained %.0f bytes, estimated %lld (%lld objects of %d)\n", want, (long long)bytes,
                  (long long)objects, RETAIN_N);
    assert_true(fabs((double)bytes - want) <= 0.2 * want);
    assert_true(fabs((double)objects - RETAIN_N) <= 0.2 * RETAIN_N);

    /* free keeps errno, and every sampled block leaves the in-use figures */
    for (int i = 0; i < RETAIN_N; i++) {
        errno = 1234;
        free(retained[i]);
        assert_int_equal(errno, 1234);
    }
    retained_estimate(&objects, &bytes);
    assert_int_equal(bytes, 0);
    assert_int_equal(objects, 0);
    zn_pprof_heap_enable(false);
}

static void test_alignment_contracts(void **state)
{
    void *p = NULL;
    assert_int_equal(posix_memalign(&p, 3, 16), EINVAL);
    assert_int_equal(posix_memalign(&p, 4, 16), EINVAL); /* not a multiple of sizeof(void *) */
    assert_int_equal(posix_memalign(&p, 64, 100), 0);
    assert_int_equal((uintptr_t)p % 64, 0);
    free(p);
    errno = 0;
    assert_null(aligned_alloc(24, 48));
    assert_int_equal(errno, EINVAL);
    p = aligned_alloc(4096, 8192);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 4096, 0);
    free(p);
    volatile size_t huge = SIZE_MAX / 2; /* hidden from the compiler's size check */
    p = calloc(huge, 4);                 /* overflow: fails, nothing counted */
    assert_null(p);
    p = realloc(NULL, 10);
    assert_non_null(p);
    p = realloc(p, 100000);
    free(p);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scaling_and_frees),
#ifdef ZN_HEAP_PROFILER
        cmocka_unit_test(test_known_retained_allocation),
        cmocka_unit_test(test_alignment_contracts),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
