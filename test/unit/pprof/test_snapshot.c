/* Unit tests for pprof/snapshot.c: every registered thread answers the snapshot signal with its
 * own stack; names, tids and states (a thread in nanosleep is "sleep"); the debug=1 and
 * debug=2 texts; threads not asked are not listed, nor threads that have ended (as Go lists no
 * dead goroutine), and one ending while asked is not waited for. Also threadcreate's stacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "pprof/internal.h"
#include "pprof/pprof.h"

static atomic_int stop;

static void *sleeper(void *arg)
{
    while (!atomic_load(&stop)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static int setup(void **state)
{
    zn_config_t cfg;
    zn_config_init_defaults(&cfg);
    zn_thread_register_self("main");
    assert_int_equal(zn_pprof_init(&cfg), ZN_OK);
    zn_config_release(&cfg);
    pthread_t t;
    assert_int_equal(zn_thread_create(&t, "sleeper", sleeper, NULL), 0);
    /* the snapshot asks only threads that are running and adopted by pprof */
    while (zn_thread_count() < 2 || !zn_thread_get(1)->live || zn_thread_get(1)->pprof == NULL) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    *state = (void *)t;
    return 0;
}

static int teardown(void **state)
{
    atomic_store(&stop, 1);
    pthread_join((pthread_t)*state, NULL);
    return 0;
}

static void *take(void)
{
    const zn_pprof_snapshot_ops_t *ops = zn_pprof_def_goroutine.snap;
    void *tok = ops->prepare();
    uint64_t until = zn_now_mono_ns() + 2000000000u;
    while (!ops->ready(tok) && zn_now_mono_ns() < until) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_true(ops->ready(tok));
    return tok;
}

static void test_profile_labels(void **state)
{
    const zn_pprof_snapshot_ops_t *ops = zn_pprof_def_goroutine.snap;
    zn_pprof_profile_t p;
    void *tok = take();
    zn_pprof_profile_init(&p, ops->kind);
    assert_int_equal(ops->collect(tok, &p), ZN_OK);
    ops->release(tok);
    assert_int_equal(p.nsamples, 2);
    assert_int_equal(zn_pprof_def_goroutine.count(), 2);
    bool seen_main = false, seen_sleeper = false;
    for (size_t i = 0; i < p.nsamples; i++) {
        const zn_pprof_sample_t *s = &p.samples[i];
        assert_int_equal(s->nlabels, 3);
        assert_string_equal(s->labels[0].key, "thread");
        assert_true(s->depth > 2);
        if (strcmp(s->labels[0].str, "main") == 0) {
            seen_main = true;
            assert_string_equal(s->labels[1].str, "running");
        } else if (strcmp(s->labels[0].str, "sleeper") == 0) {
            seen_sleeper = true;
            assert_string_equal(s->labels[1].str, "sleep");
        }
    }
    assert_true(seen_main && seen_sleeper);
    zn_pprof_profile_release(&p);
}

static void test_texts(void **state)
{
    const zn_pprof_snapshot_ops_t *ops = zn_pprof_def_goroutine.snap;
    zn_buf_t b;
    void *tok = take();
    zn_buf_init(&b, 1 << 20);
    assert_int_equal(ops->text(tok, 2, &b), ZN_OK);
    assert_non_null(strstr(b.p, " [main, running]:\n"));
    assert_non_null(strstr(b.p, " [sleeper, sleep]:\n"));
    assert_non_null(strstr(b.p, "sleeper()\n\t"));
    assert_non_null(strstr(b.p, "test_snapshot.c:"));
    assert_true(strncmp(b.p, "goroutine ", 10) == 0);
    zn_buf_release(&b);

    zn_buf_init(&b, 1 << 20);
    assert_int_equal(ops->text(tok, 1, &b), ZN_OK);
    assert_true(strncmp(b.p, "goroutine profile: total 2\n1 @ 0x", 33) == 0);
    assert_non_null(strstr(b.p, "\tsleeper+0x"));
    zn_buf_release(&b);
    ops->release(tok);
}

static void test_threadcreate(void **state)
{
    const zn_pprof_snapshot_ops_t *ops = zn_pprof_def_threadcreate.snap;
    zn_buf_t b;
    zn_buf_init(&b, 1 << 20);
    assert_int_equal(ops->text(NULL, 1, &b), ZN_OK);
    assert_true(strncmp(b.p, "threadcreate profile: total 1\n1 @ 0x", 36) == 0);
    assert_non_null(strstr(b.p, "\tsetup+0x"));
    zn_buf_release(&b);
}

/* A thread that returned from its function but is still unregistering (state EXITED, live):
 * `phase` walks it through the steps so that each check sees one known state. */
static atomic_int phase;

static void wait_phase(int want)
{
    while (atomic_load(&phase) < want) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static void *ending(void *arg)
{
    if (arg != NULL) { /* deaf to the snapshot signal until it has ended */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, ZN_PPROF_SIG_SNAPSHOT);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        atomic_store(&phase, 1);
        wait_phase(2);
    }
    /* what thread_main does once the function returned, before the exit hooks */
    zn_thread_set_state(zn_thread_self(), ZN_THREAD_EXITED);
    atomic_store(&phase, 3);
    wait_phase(4);
    return NULL;
}

/* The snapshot's forms agree and list only main and sleeper: no "dead" thread, no comment. */
static void assert_lists_two(void *tok)
{
    const zn_pprof_snapshot_ops_t *ops = zn_pprof_def_goroutine.snap;
    zn_pprof_profile_t p;
    zn_buf_t b;

    zn_pprof_profile_init(&p, ops->kind);
    assert_int_equal(ops->collect(tok, &p), ZN_OK);
    assert_int_equal(p.nsamples, 2);
    assert_int_equal(p.ncomments, 0);
    for (size_t i = 0; i < p.nsamples; i++)
        assert_string_not_equal(p.samples[i].labels[0].str, "ending");
    zn_pprof_profile_release(&p);
    assert_int_equal(zn_pprof_def_goroutine.count(), 2);

    zn_buf_init(&b, 1 << 20);
    assert_int_equal(ops->text(tok, 1, &b), ZN_OK);
    assert_true(strncmp(b.p, "goroutine profile: total 2\n", 27) == 0);
    zn_buf_release(&b);
    zn_buf_init(&b, 1 << 20);
    assert_int_equal(ops->text(tok, 2, &b), ZN_OK);
    assert_null(strstr(b.p, " [ending, "));
    assert_null(strstr(b.p, ", dead]"));
    zn_buf_release(&b);
}

static void test_ended_thread_is_not_listed(void **state)
{
    pthread_t t;
    atomic_store(&phase, 0);
    assert_int_equal(zn_thread_create(&t, "ending", ending, NULL), 0);
    wait_phase(3);
    void *tok = take();
    assert_lists_two(tok);
    zn_pprof_def_goroutine.snap->release(tok);
    atomic_store(&phase, 4);
    pthread_join(t, NULL);
}

static void test_thread_ending_while_asked_is_not_awaited(void **state)
{
    const zn_pprof_snapshot_ops_t *ops = zn_pprof_def_goroutine.snap;
    pthread_t t;
    atomic_store(&phase, 0);
    assert_int_equal(zn_thread_create(&t, "ending", ending, (void *)1), 0);
    wait_phase(1);
    void *tok = ops->prepare();
    assert_false(ops->ready(tok)); /* it was asked and cannot answer */
    atomic_store(&phase, 2);
    wait_phase(3);
    assert_true(ops->ready(tok)); /* it ended: nothing left to wait for */
    assert_lists_two(tok);
    ops->release(tok);
    atomic_store(&phase, 4);
    pthread_join(t, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profile_labels),
        cmocka_unit_test(test_texts),
        cmocka_unit_test(test_threadcreate),
        /* last: they create threads, which threadcreate counts */
        cmocka_unit_test(test_ended_thread_is_not_listed),
        cmocka_unit_test(test_thread_ending_while_asked_is_not_awaited),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
