/* Unit tests for pprof/cpu.c without HTTP: a session started by hand samples a thread that is
 * created while it runs (threads join a running profile), each sample carries the thread's
 * name and the stack of what it was doing, the route label follows zn_pprof_req_begin/end,
 * and a ring nobody drains counts its overflow as lost samples. No count depends on a timer's
 * rate: the burner runs until its ring took a number of samples, and the overflow test
 * injects its signals one by one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "pprof/cpu.c"
#include "pprof/pprof.h"

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define BURN_SAMPLES 30             /* the burner runs until its timer took this many samples */
#define BURN_CPU_MAX 20000000000ull /* or until 20 s of CPU: the timer never fired, a failure */

/* Burns CPU until the calling thread's ring received `want` records: a count of timer
 * expirations, not a duration, so a loaded machine that merges expirations only makes it
 * run longer. */
__attribute__((noipa)) void zn_test_burn(uint32_t want)
{
    struct zn_pprof_cpu_ring *r = atomic_load(&zn_pprof_thread_self()->cpu_ring);
    uint64_t end = thread_cpu_ns() + BURN_CPU_MAX;
    volatile uint64_t x = 0;
    while (r != NULL && atomic_load(&r->head) < want && thread_cpu_ns() < end)
        for (int i = 0; i < 10000; i++)
            x += (uint64_t)i;
}

static void *burner(void *arg)
{
    zn_pprof_req_begin("test_route", NULL);
    zn_test_burn(BURN_SAMPLES);
    zn_pprof_req_end();
    return NULL;
}

/* One session per test, released by the teardown even when an assertion jumped out. */
static session_t sess;

/* Starts a session by hand; with timers=false no timer is armed and only the calling thread
 * gets a ring, so that nothing but injected signals produce samples. */
static void session_begin(session_t *s, bool timers)
{
    memset(s, 0, sizeof(*s));
    zn_pprof_profile_init(&s->prof, &cpu_kind);
    s->merge_at = MERGE_MIN;
    zn_mutex_lock(&cpu.lock);
    s->id = ++cpu.last_id;
    s->lost_at_start = atomic_load(&cpu.lost);
    cpu.session = s;
    atomic_store(&cpu.active, s->id);
    if (timers) {
        each_thread(arm);
    } else {
        zn_pprof_thread_t *th = zn_pprof_thread_self();
        if (atomic_load(&th->cpu_ring) == NULL)
            atomic_store(&th->cpu_ring, zn_calloc(1, sizeof(struct zn_pprof_cpu_ring)));
    }
    zn_mutex_unlock(&cpu.lock);
}

static void session_stop(session_t *s)
{
    zn_mutex_lock(&cpu.lock);
    if (cpu.session == s)
        stop(s);
    zn_mutex_unlock(&cpu.lock);
}

/* Runs a burner thread while the session runs, draining every 20 ms (the ring holds less
 * than BURN_SAMPLES, so without draining records would be lost), then stops the session. */
static void burn_in_thread(session_t *s)
{
    pthread_t t;
    assert_int_equal(zn_thread_create(&t, "burner", burner, NULL), 0);
    while (pthread_tryjoin_np(t, NULL) != 0) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
        zn_mutex_lock(&cpu.lock);
        drain(s);
        zn_mutex_unlock(&cpu.lock);
    }
    session_stop(s);
}

/* Delivers SIGPROF to the calling thread as its CPU timer would (si_code SI_TIMER). The
 * kernel runs the handler before the syscall returns, so one call is exactly one sample. */
static void inject_sigprof(void)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    si.si_signo = SIGPROF;
    si.si_code = SI_TIMER;
    assert_int_equal(syscall(SYS_rt_tgsigqueueinfo, getpid(), (pid_t)syscall(SYS_gettid), SIGPROF, &si), 0);
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

static int teardown(void **state)
{
    session_stop(&sess);
    zn_pprof_profile_release(&sess.prof);
    return 0;
}

static void test_new_thread_joins_and_is_labelled(void **state)
{
    session_t *s = &sess;
    session_begin(s, true);
    burn_in_thread(s);
    int64_t burner_samples = 0, in_burn = 0, routed = 0;
    for (size_t i = 0; i < s->prof.nsamples; i++) {
        const zn_pprof_sample_t *smp = &s->prof.samples[i];
        if (strcmp(smp->labels[0].str, "burner") != 0)
            continue;
        burner_samples += smp->values[0];
        assert_int_equal(smp->values[1], smp->values[0] * ZN_PPROF_PERIOD_NS);
        if (smp->nlabels == 2 && strcmp(smp->labels[1].key, "route") == 0 && strcmp(smp->labels[1].str, "test_route") == 0)
            routed += smp->values[0];
        for (uint32_t k = 0; k < smp->depth; k++) {
            zn_pprof_sym_t sym;
            zn_pprof_sym_lookup(zn_pprof_sample_pcs(&s->prof, smp)[k], &sym);
            if (sym.nframes > 0 && strcmp(sym.frames[sym.nframes - 1].func, "zn_test_burn") == 0) {
                in_burn += smp->values[0];
                break;
            }
        }
    }
    print_message("burner: %lld samples, %lld in zn_test_burn, %lld with the route\n", (long long)burner_samples,
                  (long long)in_burn, (long long)routed);
    /* every record the burner's ring took became a sample (none with an empty stack, none
     * lost: drained every 20 ms while the ring fills in 640 ms of CPU at most) */
    assert_true(burner_samples >= BURN_SAMPLES);
    assert_true(in_burn >= burner_samples * 9 / 10);
    assert_true(routed >= burner_samples * 9 / 10);
    assert_int_equal(atomic_load(&cpu.active), 0);
    assert_null(cpu.session);
}

static void test_undrained_ring_counts_lost(void **state)
{
    session_t *s = &sess;
    session_begin(s, false);
    for (int i = 0; i < RING_SIZE + 20; i++)
        inject_sigprof();
    session_stop(s);
    uint64_t lost = atomic_load(&cpu.lost) - s->lost_at_start;
    print_message("kept %zu samples, lost %llu\n", s->prof.nsamples, (unsigned long long)lost);
    assert_int_equal(s->prof.nsamples, RING_SIZE);
    assert_int_equal(lost, 20);
    /* and a signal after the session stopped lands nowhere */
    inject_sigprof();
    assert_int_equal(atomic_load(&cpu.lost) - s->lost_at_start, 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_new_thread_joins_and_is_labelled, teardown),
        cmocka_unit_test_teardown(test_undrained_ring_counts_lost, teardown),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
