/*
 * pprof/malloc/malloc.c - malloc and friends, defined in the zinc executable so that every
 * allocation in the process (ours, libh2o's, OpenSSL's, zlib's) passes here on its way to
 * glibc's allocator (__libc_*), as glibc documents for replacing malloc.
 *
 * Cost on the fast path: one thread-local subtraction per allocation, one filter load per
 * free. When the countdown runs out, heap.c decides whether this allocation is a sample and
 * records its stack (pprof/heap.c). posix_memalign and aligned_alloc are built on
 * __libc_memalign after the argument checks the standard asks for. Built only with
 * ZN_HEAP_PROFILER (off for sanitizer builds, whose runtime owns malloc).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "pprof/heap.h"

extern void *__libc_malloc(size_t n);
extern void __libc_free(void *p);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void *__libc_valloc(size_t n);
extern void *__libc_pvalloc(size_t n);

const int zn_pprof_heap_hooked = 1;

/* The sampler skips exactly one frame for the hook: never inline one into its caller (LTO, or a
 * test that includes this file). */
#define HOOK __attribute__((noinline))

static inline void *sampled(void *p, size_t n)
{
    if (__builtin_expect((zn_pprof_heap_countdown -= (int64_t)n) < 0, 0) && p != NULL)
        zn_pprof_heap_alloc_slow(p, n);
    return p;
}

static inline void unsample(void *p)
{
    if (p != NULL &&
        __builtin_expect(atomic_load_explicit(&zn_pprof_heap_filter[zn_pprof_heap_filter_slot(p)], memory_order_relaxed) != 0,
                         0) &&
        !zn_pprof_heap_busy)
        zn_pprof_heap_free_slow(p);
}

static bool valid_alignment(size_t align)
{
    return align != 0 && (align & (align - 1)) == 0;
}

HOOK void *malloc(size_t n)
{
    return sampled(__libc_malloc(n), n);
}

HOOK void free(void *p)
{
    unsample(p);
    __libc_free(p);
}

HOOK void *calloc(size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total))
        total = 0; /* glibc fails it with ENOMEM; nothing to count */
    return sampled(__libc_calloc(n, size), total);
}

HOOK void *realloc(void *p, size_t n)
{
    /* the block may move or be freed: it stops being the sampled block either way */
    unsample(p);
    return sampled(__libc_realloc(p, n), n);
}

HOOK void *memalign(size_t align, size_t n)
{
    return sampled(__libc_memalign(align, n), n);
}

HOOK void *aligned_alloc(size_t align, size_t n)
{
    if (!valid_alignment(align)) {
        errno = EINVAL;
        return NULL;
    }
    return sampled(__libc_memalign(align, n), n);
}

HOOK int posix_memalign(void **out, size_t align, size_t n)
{
    if (!valid_alignment(align) || align % sizeof(void *) != 0)
        return EINVAL;
    int saved = errno;
    void *p = __libc_memalign(align, n);
    if (p == NULL)
        return ENOMEM;
    errno = saved; /* posix_memalign reports through its result, not errno */
    *out = sampled(p, n);
    return 0;
}

HOOK void *valloc(size_t n)
{
    return sampled(__libc_valloc(n), n);
}

HOOK void *pvalloc(size_t n)
{
    return sampled(__libc_pvalloc(n), n);
}
