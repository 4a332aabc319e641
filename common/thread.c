/*
 * common/thread.c - the one way zinc starts threads.
 *
 * Every thread gets a name (visible in /proc, gdb and profiles) and a slot in a fixed
 * registry that pprof walks to arm CPU timers, snapshot stacks and list thread creations.
 * Slots are never reused, so a reader can walk [0, count) without locking; a slot's fields
 * are filled before `count` is advanced (release) and `live` is set by the thread itself.
 */
#include <errno.h>
#include <execinfo.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/zn.h"

static zn_thread_info_t registry[ZN_THREADS_MAX];
static _Atomic int registry_count;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER; /* guards slot allocation only */
static zn_thread_hooks_t hooks;
static __thread zn_thread_info_t *self_info;

void zn_thread_set_hooks(const zn_thread_hooks_t *h)
{
    hooks = *h;
}

static zn_thread_info_t *alloc_slot(const char *name)
{
    zn_thread_info_t *t = NULL;
    /* a raw pthread mutex on purpose: the lock wrappers' hooks may want thread info */
    pthread_mutex_lock(&registry_lock);
    int n = atomic_load(&registry_count);
    if (n < ZN_THREADS_MAX) {
        t = &registry[n];
        memset(t, 0, sizeof(*t));
        t->id = n;
        memcpy(t->name, name, strlen(name) + 1); /* callers checked it fits */
        t->created_ns = zn_now_wall_ns();
        atomic_store(&registry_count, n + 1);
    }
    pthread_mutex_unlock(&registry_lock);
    return t;
}

static void bind_self(zn_thread_info_t *t)
{
    t->tid = (pid_t)syscall(SYS_gettid);
    t->pthread = pthread_self();
    t->state = ZN_THREAD_RUNNING;
    self_info = t;
    pthread_setname_np(pthread_self(), t->name);
    atomic_store(&t->live, 1);
    if (hooks.on_start != NULL)
        hooks.on_start(t);
}

zn_thread_info_t *zn_thread_register_self(const char *name)
{
    if (self_info != NULL)
        return self_info;
    if (strlen(name) >= ZN_THREAD_NAME_MAX)
        return NULL;
    zn_thread_info_t *t = alloc_slot(name);
    if (t == NULL)
        return NULL;
    t->create_depth = 0;
    t->start_fn = (uintptr_t)__builtin_return_address(0);
    bind_self(t);
    return t;
}

zn_thread_info_t *zn_thread_self(void)
{
    return self_info;
}

int zn_thread_count(void)
{
    return atomic_load(&registry_count);
}

zn_thread_info_t *zn_thread_get(int i)
{
    if (i < 0 || i >= atomic_load(&registry_count))
        return NULL;
    return &registry[i];
}

struct start_arg {
    zn_thread_info_t *info;
    void *(*fn)(void *);
    void *arg;
};

static void *thread_main(void *p)
{
    struct start_arg sa = *(struct start_arg *)p;
    free(p);
    bind_self(sa.info);
    void *ret = sa.fn(sa.arg);
    sa.info->state = ZN_THREAD_EXITED;
    if (hooks.on_exit != NULL)
        hooks.on_exit(sa.info);
    atomic_store(&sa.info->live, 0);
    return ret;
}

int zn_thread_create(pthread_t *out, const char *name, void *(*fn)(void *), void *arg)
{
    if (strlen(name) >= ZN_THREAD_NAME_MAX)
        return EINVAL; /* a name the kernel would cut is our bug: refused, not cut */
    zn_thread_info_t *t = alloc_slot(name);
    if (t == NULL)
        return EAGAIN;
    t->create_depth = zn_backtrace(t->create_stack, ZN_THREAD_STACK_MAX, 1);
    t->start_fn = (uintptr_t)fn;
    struct start_arg *sa = zn_malloc(sizeof(*sa));
    *sa = (struct start_arg){t, fn, arg};
    int err = pthread_create(out, NULL, thread_main, sa);
    if (err != 0)
        free(sa);
    return err;
}

static zn_syscall_hooks_t syscall_hooks;

void zn_syscall_set_hooks(const zn_syscall_hooks_t *h)
{
    syscall_hooks = *h;
}

void zn_syscall_begin(void)
{
    int saved = errno;
    zn_thread_set_state(self_info, ZN_THREAD_SYSCALL);
    if (syscall_hooks.on_begin != NULL)
        syscall_hooks.on_begin();
    errno = saved;
}

void zn_syscall_end(void)
{
    int saved = errno;
    zn_thread_set_state(self_info, ZN_THREAD_RUNNING);
    if (syscall_hooks.on_end != NULL)
        syscall_hooks.on_end();
    errno = saved;
}

int zn_backtrace(uintptr_t *pcs, int max, int skip)
{
    void *buf[ZN_THREAD_STACK_MAX + 8];
    int want = max + skip + 1;
    if (want > (int)(sizeof(buf) / sizeof(buf[0])))
        want = (int)(sizeof(buf) / sizeof(buf[0]));
    int n = backtrace(buf, want);
    int out = 0;
    for (int i = skip + 1; i < n && out < max; i++)
        pcs[out++] = (uintptr_t)buf[i];
    return out;
}
