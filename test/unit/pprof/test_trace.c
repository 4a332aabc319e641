/*
 * Unit tests for the tracer runtime (pprof/trace.c, trace_stk.c, trace_footer.c,
 * trace_net.c): real threads that wait on a contended mutex, a condition, epoll and a slow
 * syscall, some parked when the trace starts, one created while it runs, and a request
 * task on the starter. The trace is checked structurally here (every G created once, its
 * sequence numbers gap-free, every referenced stack present) and, when Go is installed,
 * by Go's parser: `go tool trace -d` (1.19) and `-d=1` (1.23 from bookworm-backports).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pprof/trace_int.h"

static zn_mutex_t mu;
static zn_cond_t cv;
static int cv_go, stop_all, sys_done, polled;
static int pipefd[2], sys_pipe[2];

static void *locker(void *arg)
{
    while (!__atomic_load_n(&stop_all, __ATOMIC_ACQUIRE)) {
        zn_mutex_lock(&mu);
        usleep(2000); /* hold it so the other locker waits */
        zn_mutex_unlock(&mu);
        usleep(100);
    }
    return NULL;
}

static void *cond_waiter(void *arg)
{
    zn_mutex_lock(&mu);
    while (!cv_go)
        zn_cond_wait(&cv, &mu);
    zn_mutex_unlock(&mu);
    return NULL;
}

static void *syscaller(void *arg)
{
    char c;
    /* the first one spans the trace start: it ends when the starter writes, after it */
    zn_syscall_begin();
    ssize_t r = read(sys_pipe[0], &c, 1);
    zn_syscall_end();
    for (int i = 0; r == 1 && i < 2; i++) {
        usleep(1000);
        zn_syscall_begin();
        usleep(30000);
        zn_syscall_end();
    }
    __atomic_store_n(&sys_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Waits (up to 20 s) until *flag >= want. */
static void wait_flag(int *flag, int want)
{
    for (int tries = 0; tries < 20000 && __atomic_load_n(flag, __ATOMIC_ACQUIRE) < want; tries++)
        usleep(1000);
    if (__atomic_load_n(flag, __ATOMIC_ACQUIRE) < want)
        fail_msg("flag never reached %d", want);
}

/* Waits (up to 5 s) until thread `name` is in state st: the test needs them parked. */
static void wait_state(const char *name, zn_thread_state_t st)
{
    for (int tries = 0; tries < 5000; tries++) {
        for (int i = 0; i < zn_thread_count(); i++) {
            zn_thread_info_t *t = zn_thread_get(i);
            if (strcmp(t->name, name) == 0 && atomic_load(&t->state) == (int)st)
                return;
        }
        usleep(1000);
    }
    fail_msg("thread %s never reached state %d", name, (int)st);
}

static void *poller(void *arg)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, pipefd[0], &ev);
    /* no timeout: a loaded machine must not make it give up before the 3 bytes come */
    for (int i = 0; i < 3; i++) {
        char c;
        if (epoll_wait(ep, &out, 1, -1) != 1 || read(pipefd[0], &c, 1) != 1)
            break;
        __atomic_add_fetch(&polled, 1, __ATOMIC_RELEASE);
    }
    close(ep);
    return NULL;
}

static int sym_dladdr(void *ctx, uintptr_t pc, zn_trace_symframe_t *out, int max)
{
    Dl_info info;
    if (dladdr((void *)pc, &info) == 0 || info.dli_sname == NULL)
        return 0;
    out[0] = (zn_trace_symframe_t){info.dli_sname, info.dli_fname, 0, (uintptr_t)info.dli_saddr};
    return 1;
}

#include "trace_decode.h"

/* Runs `cmd` (a Go tool on the trace) if the go binary exists; returns 1 when it ran. */
static int run_go(const char *go, const char *args, const char *path)
{
    char cmd[1024];
    if (access(go, X_OK) != 0)
        return 0;
    int n = snprintf(cmd, sizeof(cmd), "%s tool trace %s %s >/dev/null", go, args, path);
    assert_true(n > 0 && (size_t)n < sizeof(cmd));
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "rejected by Go: %s\n", cmd);
    assert_int_equal(rc, 0);
    return 1;
}

static void check_trace(zn_trace_chunk_t *chunks, const char *path)
{
    zn_buf_t all;
    zn_buf_init(&all, 256u << 20);
    assert_int_equal(zn_buf_append(&all, ZN_TRACE_HEADER, ZN_TRACE_HEADER_LEN), ZN_OK);
    for (zn_trace_chunk_t *c = chunks; c != NULL; c = c->next)
        assert_int_equal(zn_buf_append(&all, c->data, c->len), ZN_OK);
    td_stats_t d = td_decode((const uint8_t *)all.p, all.len);
    assert_int_equal(d.creates, 6);                    /* main, cond, sys, poll, lock-a, lock-b */
    assert_true(d.count[ZN_TEV_GO_WAITING] >= 2);      /* cond and poll were parked */
    assert_int_equal(d.count[ZN_TEV_GO_INSYSCALL], 1); /* sys was in its syscall */
    assert_true(d.count[ZN_TEV_GO_BLOCK_SYNC] >= 1);
    assert_true(d.count[ZN_TEV_GO_BLOCK_NET] >= 1);
    assert_true(d.count[ZN_TEV_GO_SYSCALL] >= 1 && d.count[ZN_TEV_GO_SYSBLOCK] >= 1);
    assert_true(d.count[ZN_TEV_GO_SYSEXIT] >= 2);
    assert_int_equal(d.count[ZN_TEV_USER_TASK_CREATE], 1);
    assert_int_equal(d.count[ZN_TEV_USER_TASK_END], 1);
    assert_int_equal(d.count[ZN_TEV_USER_REGION], 2);
    assert_int_equal(d.count[ZN_TEV_USER_LOG], 1);
    td_release(&d);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(all.p, 1, all.len, f), all.len);
    assert_int_equal(fclose(f), 0);
    zn_buf_release(&all);
    int ran = run_go("/usr/bin/go", "-d", path);
    ran += run_go("/usr/lib/go-1.23/bin/go", "-d=1", path);
    if (ran == 0)
        fprintf(stderr, "note: no Go toolchain found, %s checked structurally only\n", path);
}

static void test_trace_threads(void **state)
{
    pthread_t th[6];
    zn_thread_register_self("main");
    zn_trace_init();
    zn_lock_set_hooks(&(zn_lock_hooks_t){NULL, NULL, zn_trace_lock_begin, zn_trace_lock_end});
    zn_mutex_init(&mu, "test");
    zn_cond_init(&cv);
    assert_int_equal(pipe(pipefd), 0);
    assert_int_equal(pipe(sys_pipe), 0);
    assert_int_equal(zn_thread_create(&th[0], "cond", cond_waiter, NULL), 0);
    assert_int_equal(zn_thread_create(&th[1], "sys", syscaller, NULL), 0);
    assert_int_equal(zn_thread_create(&th[2], "poll", poller, NULL), 0);
    assert_int_equal(zn_thread_create(&th[3], "lock-a", locker, NULL), 0);
    wait_state("cond", ZN_THREAD_BLOCKED);
    wait_state("sys", ZN_THREAD_SYSCALL);
    wait_state("poll", ZN_THREAD_IDLE);

    assert_int_equal(zn_trace_start(64u << 20), ZN_OK);
    assert_int_equal(zn_trace_start(64u << 20), ZN_EBUSY);
    assert_true(zn_trace_active());
    assert_int_equal(write(sys_pipe[1], "s", 1), 1); /* sys leaves its syscall, makes two more */
    zn_trace_req_begin("blob_get", "library/alpine");
    assert_int_equal(write(pipefd[1], "x", 1), 1);
    wait_flag(&polled, 1); /* poll woke and waits again */
    zn_mutex_lock(&mu);
    /* joins by itself, and blocks on mu while we hold it */
    assert_int_equal(zn_thread_create(&th[4], "lock-b", locker, NULL), 0);
    wait_state("lock-b", ZN_THREAD_BLOCKED);
    cv_go = 1;
    zn_cond_signal(&cv);
    zn_mutex_unlock(&mu);
    assert_int_equal(write(pipefd[1], "yz", 2), 2);
    zn_trace_req_end();
    wait_flag(&polled, 3);
    wait_flag(&sys_done, 1);
    zn_trace_chunk_t *chunks = zn_trace_stop(sym_dladdr, NULL);
    assert_false(zn_trace_active());

    __atomic_store_n(&stop_all, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 5; i++)
        pthread_join(th[i], NULL);
    check_trace(chunks, "test_trace.out");
    zn_trace_chunks_free(chunks);
    /* a second session may start once the first is collected */
    assert_int_equal(zn_trace_start(64u << 20), ZN_OK);
    zn_trace_chunks_free(zn_trace_stop(sym_dladdr, NULL));
}

static int exit_pipe[2];

static void *blocked_reader(void *arg)
{
    char c;
    return read(exit_pipe[0], &c, 1) == 1 ? NULL : arg;
}

/* How many Gs a trace started and stopped right away declares. */
static size_t creates_of_short_trace(void)
{
    zn_buf_t all;
    assert_int_equal(zn_trace_start(64u << 20), ZN_OK);
    zn_trace_chunk_t *chunks = zn_trace_stop(sym_dladdr, NULL);
    zn_buf_init(&all, 256u << 20);
    assert_int_equal(zn_buf_append(&all, ZN_TRACE_HEADER, ZN_TRACE_HEADER_LEN), ZN_OK);
    for (zn_trace_chunk_t *c = chunks; c != NULL; c = c->next)
        assert_int_equal(zn_buf_append(&all, c->data, c->len), ZN_OK);
    td_stats_t d = td_decode((const uint8_t *)all.p, all.len);
    size_t n = d.creates;
    td_release(&d);
    zn_buf_release(&all);
    zn_trace_chunks_free(chunks);
    return n;
}

/* A thread past its function (state EXITED, exit hooks still running, so `live` is still 1)
 * is gone for the trace as for the goroutine profile: the start section does not declare it. */
static void test_trace_skips_exiting(void **state)
{
    pthread_t th;
    zn_thread_info_t *t = NULL;
    zn_thread_register_self("main");
    zn_trace_init();
    assert_int_equal(pipe(exit_pipe), 0);
    assert_int_equal(zn_thread_create(&th, "exiting", blocked_reader, NULL), 0);
    for (int i = 0; i < zn_thread_count(); i++)
        if (strcmp(zn_thread_get(i)->name, "exiting") == 0)
            t = zn_thread_get(i);
    assert_non_null(t);
    for (int tries = 0; tries < 5000 && !atomic_load(&t->live); tries++)
        usleep(1000); /* registered before it runs; live once it started */
    assert_true(atomic_load(&t->live));
    size_t running = creates_of_short_trace();
    atomic_store(&t->state, ZN_THREAD_EXITED); /* as thread_main sets it before the exit hooks */
    size_t exiting = creates_of_short_trace();
    atomic_store(&t->state, ZN_THREAD_RUNNING);
    assert_int_equal(exiting + 1, running);
    assert_int_equal(write(exit_pipe[1], "x", 1), 1);
    pthread_join(th, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_threads),
        cmocka_unit_test(test_trace_skips_exiting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
