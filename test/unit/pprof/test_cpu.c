/* Unit tests for pprof/cpu.c without HTTP: a session started by hand samples a thread that is
 * created while it runs (threads join a running profile), each sample carries the thread's
 * name and the stack of what it was doing, the route label follows zn_pprof_req_begin/end,
 * and a ring nobody drains counts its overflow as lost samples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <time.h>

#include "pprof/cpu.c"
#include "pprof/pprof.h"

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((noipa)) void zn_test_burn(uint64_t ns)
{
    uint64_t end = thread_cpu_ns() + ns;
    volatile uint64_t x = 0;
    while (thread_cpu_ns() < end)
        for (int i = 0; i < 10000; i++)
            x += (uint64_t)i;
}

static void *burner(void *arg)
{
    zn_pprof_req_begin("test_route", NULL);
    zn_test_burn(*(uint64_t *)arg);
    zn_pprof_req_end();
    return NULL;
}

static void session_begin(session_t *s)
{
    memset(s, 0, sizeof(*s));
    zn_pprof_profile_init(&s->prof, &cpu_kind);
    s->merge_at = MERGE_MIN;
    zn_mutex_lock(&cpu.lock);
    s->id = ++cpu.last_id;
    s->lost_at_start = atomic_load(&cpu.lost);
    cpu.session = s;
    atomic_store(&cpu.active, s->id);
    each_thread(arm);
    zn_mutex_unlock(&cpu.lock);
}

/* Runs a burner thread for `ns` of CPU while the session runs, draining every 20 ms if asked. */
static void burn_in_thread(session_t *s, uint64_t ns, bool drain_meanwhile)
{
    pthread_t t;
    assert_int_equal(zn_thread_create(&t, "burner", burner, &ns), 0);
    while (drain_meanwhile && pthread_tryjoin_np(t, NULL) != 0) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
        zn_mutex_lock(&cpu.lock);
        drain(s);
        zn_mutex_unlock(&cpu.lock);
    }
    if (!drain_meanwhile)
        pthread_join(t, NULL);
    zn_mutex_lock(&cpu.lock);
    stop(s);
    zn_mutex_unlock(&cpu.lock);
}

static int setup(void **state)
{
    zn_config_t cfg;
    zn_config_init_defaults(&cfg);
    zn_thread_register_self("main");
    assert_int_equal(zn_pprof_init(&cfg), ZN_OK);
    zn_config_release(&cfg);
    return 0;
}

static void test_new_thread_joins_and_is_labelled(void **state)
{
    session_t s;
    session_begin(&s);
    burn_in_thread(&s, 400000000u, true);
    int64_t burner_samples = 0, in_burn = 0, routed = 0;
    for (size_t i = 0; i < s.prof.nsamples; i++) {
        const zn_pprof_sample_t *smp = &s.prof.samples[i];
        if (strcmp(smp->labels[0].str, "burner") != 0)
            continue;
        burner_samples += smp->values[0];
        assert_int_equal(smp->values[1], smp->values[0] * ZN_PPROF_PERIOD_NS);
        if (smp->nlabels == 2 && strcmp(smp->labels[1].key, "route") == 0 && strcmp(smp->labels[1].str, "test_route") == 0)
            routed += smp->values[0];
        for (uint32_t k = 0; k < smp->depth; k++) {
            zn_pprof_sym_t sym;
            zn_pprof_sym_lookup(zn_pprof_sample_pcs(&s.prof, smp)[k], &sym);
            if (sym.nframes > 0 && strcmp(sym.frames[sym.nframes - 1].func, "zn_test_burn") == 0) {
                in_burn += smp->values[0];
                break;
            }
        }
    }
    print_message("burner: %lld samples, %lld in zn_test_burn, %lld with the route\n", (long long)burner_samples,
                  (long long)in_burn, (long long)routed);
    /* 400 ms of CPU at 100 Hz is 40 samples; leave room for a loaded machine */
    assert_true(burner_samples >= 25 && burner_samples <= 45);
    assert_true(in_burn >= burner_samples * 9 / 10);
    assert_true(routed >= burner_samples * 9 / 10);
    assert_int_equal(atomic_load(&cpu.active), 0);
    assert_null(cpu.session);
    zn_pprof_profile_release(&s.prof);
}

static void test_undrained_ring_counts_lost(void **state)
{
    session_t s;
    session_begin(&s);
    /* 1 s of CPU is ~100 samples, the ring holds RING_SIZE, nobody drains until the end */
    burn_in_thread(&s, 1000000000u, false);
    uint64_t lost = atomic_load(&cpu.lost) - s.lost_at_start;
    print_message("kept %zu samples, lost %llu\n", s.prof.nsamples, (unsigned long long)lost);
    assert_true(lost >= 20);
    zn_pprof_profile_release(&s.prof);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_thread_joins_and_is_labelled),
        cmocka_unit_test(test_undrained_ring_counts_lost),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
