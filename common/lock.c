/*
 * common/lock.c - mutex, condition and rwlock wrappers.
 *
 * Every lock zinc owns goes through here so the profiler sees contention without touching
 * call sites: the fast path is one trylock; only when it fails do we read the clock, mark
 * the thread blocked, wait, and report the wait to pprof's hooks (block profile: the
 * waiter's wait; trace: begin/end of the slow wait). A waiter also announces itself in the
 * lock's zn_lock_wait_t so that the holder, on release, reports the delay it caused (mutex
 * profile, as Go's: the time since the first waiter arrived or since the previous release
 * that found waiters). Unlock without waiters costs one relaxed load and a branch.
 * With no hooks installed the slow path costs two clock reads.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "common/zn.h"

static zn_lock_hooks_t lock_hooks;

void zn_lock_set_hooks(const zn_lock_hooks_t *h)
{
    lock_hooks = *h;
}

void zn_mutex_init(zn_mutex_t *m, const char *name)
{
    pthread_mutex_init(&m->m, NULL);
    m->name = name;
    atomic_init(&m->_wait.waiters, 0);
    atomic_init(&m->_wait.since, 0);
}

void zn_mutex_destroy(zn_mutex_t *m)
{
    pthread_mutex_destroy(&m->m);
}

/* Inlined, so that a stack captured in a hook starts in the zn_* wrapper (Go shows
 * sync.(*Mutex).Lock there). */
static inline __attribute__((always_inline)) void slow_begin(const void *lock, zn_lock_kind_t kind, zn_thread_info_t *self)
{
    zn_thread_set_state(self, ZN_THREAD_BLOCKED);
    if (lock_hooks.on_block_begin != NULL)
        lock_hooks.on_block_begin(lock, kind);
}

static inline __attribute__((always_inline)) void slow_end(const void *lock, zn_thread_info_t *self, uint64_t waited)
{
    zn_thread_set_state(self, ZN_THREAD_RUNNING);
    if (lock_hooks.on_block_end != NULL)
        lock_hooks.on_block_end(lock);
    if (lock_hooks.on_contended != NULL)
        lock_hooks.on_contended(lock, waited);
    /* not a tail call: the hook's stack must still show the zn_* wrapper */
    __asm__ __volatile__("");
}

static void wait_enter(zn_lock_wait_t *w, uint64_t t0)
{
    uint64_t none = 0;
    atomic_fetch_add(&w->waiters, 1);
    atomic_compare_exchange_strong(&w->since, &none, t0);
}

/* Called by a waiter once it holds the lock: the last one clears `since` so that a later
 * contention starts its own measure (a racing newcomer may lose its start: under-report). */
static void wait_leave(zn_lock_wait_t *w)
{
    if (atomic_fetch_sub(&w->waiters, 1) == 1)
        atomic_store(&w->since, 0);
}

/* The holder is about to release: if others wait, report the delay since the first of them
 * arrived (or since the previous such release) and restart the measure from now. */
static inline __attribute__((always_inline)) void wait_release(const void *lock, zn_lock_wait_t *w)
{
    if (atomic_load_explicit(&w->waiters, memory_order_relaxed) == 0)
        return;
    uint64_t now = zn_now_mono_ns();
    uint64_t since = atomic_exchange(&w->since, now);
    if (since != 0 && now > since && lock_hooks.on_unlock_contended != NULL)
        lock_hooks.on_unlock_contended(lock, now - since);
}

void zn_mutex_lock(zn_mutex_t *m)
{
    if (pthread_mutex_trylock(&m->m) == 0)
        return;
    zn_thread_info_t *self = zn_thread_self();
    uint64_t t0 = zn_now_mono_ns();
    wait_enter(&m->_wait, t0);
    slow_begin(m, ZN_LOCK_MUTEX, self);
    pthread_mutex_lock(&m->m);
    wait_leave(&m->_wait);
    slow_end(m, self, zn_now_mono_ns() - t0);
}

bool zn_mutex_trylock(zn_mutex_t *m)
{
    return pthread_mutex_trylock(&m->m) == 0;
}

void zn_mutex_unlock(zn_mutex_t *m)
{
    wait_release(m, &m->_wait);
    pthread_mutex_unlock(&m->m);
}

void zn_cond_init(zn_cond_t *c)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->c, &attr);
    pthread_condattr_destroy(&attr);
}

void zn_cond_destroy(zn_cond_t *c)
{
    pthread_cond_destroy(&c->c);
}

void zn_cond_wait(zn_cond_t *c, zn_mutex_t *m)
{
    zn_thread_info_t *self = zn_thread_self();
    uint64_t t0 = zn_now_mono_ns();
    slow_begin(c, ZN_LOCK_COND, self);
    pthread_cond_wait(&c->c, &m->m);
    slow_end(c, self, zn_now_mono_ns() - t0);
}

bool zn_cond_timedwait(zn_cond_t *c, zn_mutex_t *m, uint64_t abs_mono_ns)
{
    struct timespec ts = {(time_t)(abs_mono_ns / 1000000000u), (long)(abs_mono_ns % 1000000000u)};
    zn_thread_info_t *self = zn_thread_self();
    uint64_t t0 = zn_now_mono_ns();
    slow_begin(c, ZN_LOCK_COND, self);
    int r = pthread_cond_timedwait(&c->c, &m->m, &ts);
    slow_end(c, self, zn_now_mono_ns() - t0);
    return r != ETIMEDOUT;
}

void zn_cond_signal(zn_cond_t *c)
{
    pthread_cond_signal(&c->c);
}

void zn_cond_broadcast(zn_cond_t *c)
{
    pthread_cond_broadcast(&c->c);
}

void zn_rwlock_init(zn_rwlock_t *l, const char *name)
{
    pthread_rwlock_init(&l->l, NULL);
    l->name = name;
    atomic_init(&l->_wait.waiters, 0);
    atomic_init(&l->_wait.since, 0);
}

void zn_rwlock_destroy(zn_rwlock_t *l)
{
    pthread_rwlock_destroy(&l->l);
}

static inline __attribute__((always_inline)) void rwlock_slow(zn_rwlock_t *l, int (*lock)(pthread_rwlock_t *))
{
    zn_thread_info_t *self = zn_thread_self();
    uint64_t t0 = zn_now_mono_ns();
    wait_enter(&l->_wait, t0);
    slow_begin(l, ZN_LOCK_RWLOCK, self);
    lock(&l->l);
    wait_leave(&l->_wait);
    slow_end(l, self, zn_now_mono_ns() - t0);
}

void zn_rwlock_rdlock(zn_rwlock_t *l)
{
    if (pthread_rwlock_tryrdlock(&l->l) != 0)
        rwlock_slow(l, pthread_rwlock_rdlock);
}

void zn_rwlock_wrlock(zn_rwlock_t *l)
{
    if (pthread_rwlock_trywrlock(&l->l) != 0)
        rwlock_slow(l, pthread_rwlock_wrlock);
}

void zn_rwlock_unlock(zn_rwlock_t *l)
{
    wait_release(l, &l->_wait);
    pthread_rwlock_unlock(&l->l);
}
