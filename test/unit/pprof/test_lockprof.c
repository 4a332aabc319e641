/*
 * Unit tests for pprof/lockprof.c: Go's block sampling arithmetic, and mutex/block profiles
 * recorded from real contention through the lock wrappers (stacks name the wrapper and its
 * caller, samples carry the thread, the mutex profile is scaled by its rate, debug=1 text
 * has Go's header).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include "pprof/lockprof.h"

static void test_block_sample_math(void **state)
{
    double count;
    int64_t delay;
    /* off */
    assert_false(zn_lockprof_block_sample(5000, 0, 0, &count, &delay));
    /* a wait at least as long as the rate is always kept, as is */
    assert_true(zn_lockprof_block_sample(5000, 1000, 123, &count, &delay));
    assert_true(count == 1 && delay == 5000);
    /* a short one is kept when rnd % rate <= wait, weighted up */
    assert_true(zn_lockprof_block_sample(100, 1000, 2050, &count, &delay));
    assert_true(count == 10 && delay == 1000);
    assert_false(zn_lockprof_block_sample(100, 1000, 2101, &count, &delay));
    /* a zero wait counts as 1 ns */
    assert_true(zn_lockprof_block_sample(0, 1000, 1, &count, &delay));
    assert_true(count == 1000 && delay == 1000);

    /* unbiased: 100000 waits of 100 ns at rate 1000 estimate 100000 waits and 10 ms */
    uint64_t x = 88172645463325252ull;
    double total_count = 0, total_delay = 0;
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (zn_lockprof_block_sample(100, 1000, x, &count, &delay)) {
            total_count += count;
            total_delay += (double)delay;
        }
    }
    assert_true(total_count > 90000 && total_count < 110000);
    assert_true(total_delay > 9e6 && total_delay < 11e6);
}

/* Before anything was recorded (and with the mutex profile off): Go's headers alone. */
static void test_empty_text(void **state)
{
    zn_buf_t text;
    zn_buf_init(&text, 1 << 20);
    assert_int_equal(zn_pprof_def_mutex.snap->text(NULL, 1, &text), ZN_OK);
    assert_string_equal(text.p, "--- mutex:\ncycles/second=1000000000\nsampling period=0\n");
    zn_buf_release(&text);
    zn_buf_init(&text, 1 << 20);
    assert_int_equal(zn_pprof_def_block.snap->text(NULL, 1, &text), ZN_OK);
    assert_string_equal(text.p, "--- contention:\ncycles/second=1000000000\n");
    zn_buf_release(&text);
}

static zn_mutex_t mu;

static void *contender(void *arg)
{
    for (int i = 0; i < 40; i++) {
        zn_mutex_lock(&mu);
        usleep(1000);
        zn_mutex_unlock(&mu);
    }
    return NULL;
}

/* True when some sample's stack has both functions (by symbol) and its thread label is
 * one of the contenders. */
static bool has_stack(const zn_pprof_profile_t *p, const char *leaf, const char *caller)
{
    for (size_t i = 0; i < p->nsamples; i++) {
        const zn_pprof_sample_t *s = &p->samples[i];
        const uintptr_t *pcs = zn_pprof_sample_pcs(p, s);
        bool a = false, b = false;
        for (uint32_t j = 0; j < s->depth; j++) {
            zn_pprof_sym_t sym;
            zn_pprof_sym_lookup(pcs[j], &sym);
            for (int k = 0; k < sym.nframes; k++) {
                a |= strcmp(sym.frames[k].func, leaf) == 0;
                b |= strcmp(sym.frames[k].func, caller) == 0;
            }
        }
        if (a && b && s->nlabels == 1 && strcmp(s->labels[0].key, "thread") == 0 && strncmp(s->labels[0].str, "lock-", 5) == 0 &&
            s->values[0] > 0 && s->values[1] > 0)
            return true;
    }
    return false;
}

/* Waits (up to 20 s) until thread `name` waits for a lock. */
static void wait_blocked(const char *name)
{
    for (int tries = 0; tries < 20000; tries++) {
        for (int i = 0; i < zn_thread_count(); i++) {
            zn_thread_info_t *t = zn_thread_get(i);
            if (strcmp(t->name, name) == 0 && atomic_load(&t->state) == ZN_THREAD_BLOCKED)
                return;
        }
        usleep(1000);
    }
    fail_msg("thread %s never waited for the lock", name);
}

static void test_contention_profiles(void **state)
{
    pthread_t a, b;
    zn_thread_register_self("main");
    zn_lockprof_init(1, 1000);
    zn_mutex_init(&mu, "test");
    /* both contenders first wait for main, whatever the scheduling: the first to get the
     * lock then releases it with the other still waiting, so a contender's unlock is
     * contended (and both waited) even if one would otherwise run its loop alone */
    zn_mutex_lock(&mu);
    assert_int_equal(zn_thread_create(&a, "lock-a", contender, NULL), 0);
    assert_int_equal(zn_thread_create(&b, "lock-b", contender, NULL), 0);
    wait_blocked("lock-a");
    wait_blocked("lock-b");
    zn_mutex_unlock(&mu);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    assert_true(zn_pprof_def_block.count() > 0 && zn_pprof_def_mutex.count() > 0);

    zn_pprof_profile_t p;
    zn_pprof_profile_init(&p, zn_pprof_def_block.snap->kind);
    assert_int_equal(zn_pprof_def_block.snap->collect(NULL, &p), ZN_OK);
    assert_true(has_stack(&p, "zn_mutex_lock", "contender"));
    zn_pprof_profile_release(&p);

    zn_pprof_profile_init(&p, zn_pprof_def_mutex.snap->kind);
    assert_int_equal(zn_pprof_def_mutex.snap->collect(NULL, &p), ZN_OK);
    assert_true(has_stack(&p, "zn_mutex_unlock", "contender"));
    zn_pprof_profile_release(&p);

    /* the proto is scaled by the sampling period (Go's scaleMutexProfile) */
    zn_lockprof_init(3, 1000);
    zn_pprof_profile_init(&p, zn_pprof_def_mutex.snap->kind);
    assert_int_equal(zn_pprof_def_mutex.snap->collect(NULL, &p), ZN_OK);
    assert_true(p.nsamples > 0);
    for (size_t i = 0; i < p.nsamples; i++)
        assert_true(p.samples[i].values[0] % 3 == 0 && p.samples[i].values[1] % 3 == 0);
    zn_pprof_profile_release(&p);

    zn_buf_t text;
    zn_buf_init(&text, 1 << 20);
    assert_int_equal(zn_pprof_def_mutex.snap->text(NULL, 1, &text), ZN_OK);
    static const char head[] = "--- mutex:\ncycles/second=1000000000\nsampling period=3\n";
    assert_true(text.len > sizeof(head) && memcmp(text.p, head, sizeof(head) - 1) == 0);
    assert_non_null(strstr(text.p, " @ 0x"));
    assert_non_null(strstr(text.p, "\tzn_mutex_unlock+0x"));
    zn_buf_release(&text);
    zn_buf_init(&text, 1 << 20);
    assert_int_equal(zn_pprof_def_block.snap->text(NULL, 1, &text), ZN_OK);
    assert_true(strncmp(text.p, "--- contention:\ncycles/second=1000000000\n", 41) == 0);
    assert_null(strstr(text.p, "sampling period"));
    zn_buf_release(&text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_text),
        cmocka_unit_test(test_block_sample_math),
        cmocka_unit_test(test_contention_profiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
