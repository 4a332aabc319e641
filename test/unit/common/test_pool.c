/* Unit tests for common/pool.c: every job runs once, off the caller's thread, on a named
 * pool thread, and freeing the pool drains what is queued. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/pool.h"

struct counter_job {
    zn_pool_job_t super;
    _Atomic int *runs;
    _Atomic int *dones;
    bool off_caller, named;
    pthread_t caller;
};

static void count_run(zn_pool_job_t *_job)
{
    struct counter_job *job = (void *)_job;
    zn_thread_info_t *self = zn_thread_self();
    job->off_caller = !pthread_equal(pthread_self(), job->caller);
    job->named = self != NULL && strncmp(self->name, "tpool-", 6) == 0;
    atomic_fetch_add(job->runs, 1);
}

static void count_done(zn_pool_job_t *_job)
{
    struct counter_job *job = (void *)_job;
    /* run has happened before done, on the same thread */
    assert_true(atomic_load(job->runs) > 0);
    atomic_fetch_add(job->dones, 1);
}

static void test_every_job_runs_once_off_the_caller(void **state)
{
    enum { N = 500 };
    static struct counter_job jobs[N];
    _Atomic int runs = 0, dones = 0;
    zn_pool_t *p = zn_pool_new("tpool", 3);
    assert_non_null(p);
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct counter_job){.super = {.run = count_run, .done = count_done}, .runs = &runs, .dones = &dones,
                                       .caller = pthread_self()};
        zn_pool_submit(p, &jobs[i].super);
    }
    zn_pool_free(p); /* drains the queue before joining */
    assert_int_equal(atomic_load(&runs), N);
    assert_int_equal(atomic_load(&dones), N);
    for (int i = 0; i < N; i++) {
        assert_true(jobs[i].off_caller);
        assert_true(jobs[i].named);
    }
}

/* Pool threads are nicer than their creator, so event loops win the CPU over bulk work. */
struct nice_job {
    zn_pool_job_t super;
    int nice;
};

static void nice_run(zn_pool_job_t *_job)
{
    struct nice_job *job = (void *)_job;
    errno = 0;
    job->nice = getpriority(PRIO_PROCESS, (id_t)gettid());
    assert_int_equal(errno, 0);
}

static void nice_done(zn_pool_job_t *_job)
{
    (void)_job;
}

static void test_pool_threads_are_nicer(void **state)
{
    (void)state;
    errno = 0;
    int mine = getpriority(PRIO_PROCESS, (id_t)gettid());
    assert_int_equal(errno, 0);
    struct nice_job job = {.super = {.run = nice_run, .done = nice_done}, .nice = -100};
    zn_pool_t *p = zn_pool_new("tnice", 1);
    assert_non_null(p);
    zn_pool_submit(p, &job.super);
    zn_pool_free(p);
    assert_int_equal(job.nice, mine + ZN_POOL_NICE > 19 ? 19 : mine + ZN_POOL_NICE);
    /* the caller's own priority is untouched */
    assert_int_equal(getpriority(PRIO_PROCESS, (id_t)gettid()), mine);
}

/* A done callback may re-submit its job (api/body.c chains slices that way). */
struct chain_job {
    zn_pool_job_t super;
    zn_pool_t *p;
    int left;
    _Atomic int *total;
};

static void chain_run(zn_pool_job_t *_job)
{
    struct chain_job *job = (void *)_job;
    atomic_fetch_add(job->total, 1);
}

static void chain_done(zn_pool_job_t *_job)
{
    struct chain_job *job = (void *)_job;
    if (--job->left > 0)
        zn_pool_submit(job->p, &job->super);
}

static void test_done_may_resubmit(void **state)
{
    _Atomic int total = 0;
    zn_pool_t *p = zn_pool_new("tpool", 1);
    struct chain_job job = {.super = {.run = chain_run, .done = chain_done}, .p = p, .left = 10, .total = &total};
    zn_pool_submit(p, &job.super);
    uint64_t deadline = zn_now_mono_ns() + 60ull * 1000000000ull;
    while (atomic_load(&total) < 10 && zn_now_mono_ns() < deadline)
        sched_yield();
    zn_pool_free(p);
    assert_int_equal(atomic_load(&total), 10);
    assert_int_equal(job.left, 0);
}

static void test_free_null_and_pending(void **state)
{
    zn_pool_free(NULL);
    zn_pool_t *p = zn_pool_new("tpool", 1);
    assert_int_equal(zn_pool_pending(p), 0);
    zn_pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_job_runs_once_off_the_caller),
        cmocka_unit_test(test_done_may_resubmit),
        cmocka_unit_test(test_pool_threads_are_nicer),
        cmocka_unit_test(test_free_null_and_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
