/*
 * common/lock.c - mutex, condition and rwlock wrappers.
 *
 * Every lock zinc owns goes through here so the profiler sees contention without touching
 * call sites: the fast path is one trylock; only when it fails do we read the clock, mark
 * the thread blocked, wait, and report the wait to pprof's hooks (block profile: waiter's
 * wait; mutex profile: reported by the holder at unlock with the delay it caused; trace:
 * begin/end of the slow wait). With no hooks installed the slow path costs two clock reads.
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
    m->_contended_ns = 0;
}

void zn_mutex_destroy(zn_mutex_t *m)
{
    pthread_mutex_destroy(&m->m);
}

static void slow_begin(const void *lock, zn_thread_info_t *self)
{
    zn_thread_set_state(self, ZN_THREAD_BLOCKED);
    if (lock_hooks.on_block_begin != NULL)
        lock_hooks.on_block_begin(lock);
}

static void slow_end(const void *lock, zn_thread_info_t *self, uint64_t waited)
{
    zn_thread_set_state(self, ZN_THREAD_RUNNING);
    if (lock_hooks.on_block_end != NULL)
        lock_hooks.on_block_end(lock);
    if (lock_hooks.on_contended != NULL)
        lock_hooks.on_contended(lock, waited);
}

void zn_mutex_lock(zn_mutex_t *m)
{
    if (pthread_mutex_trylock(&m->m) == 0)
        return;
    zn_thread_info_t *self = zn_thread_self();
    uint64_t t0 = zn_now_mono_ns();
    slow_begin(m, self);
    pthread_mutex_lock(&m->m);
    uint64_t waited = zn_now_mono_ns() - t0;
    m->_contended_ns += waited;
    slow_end(m, self, waited);
}

bool zn_mutex_trylock(zn_mutex_t *m)
{
    return pthread_mutex_trylock(&m->m) == 0;
}

void zn_mutex_unlock(zn_mutex_t *m)
{
    uint64_t delay = m->_contended_ns;
    if (delay != 0) {
        m->_contended_ns = 0;
        if (lock_hooks.on_unlock_contended != NULL)
            lock_hooks.on_unlock_contended(m, delay);
    }
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
    slow_begin(c, self);
    pthread_cond_wait(&c->c, &m->m);
    slow_end(c, self, zn_now_mono_ns() - t0);
}

bool zn_cond_timedwait(zn_cond_t *c, zn_mutex_t *m, uint64_t abs_mono_ns)
{
    struct timespec ts = {(time_t)(abs_mono_ns / 1000000000u), (long)(abs_mono_ns % 1000000000u)};
    zn_thread_info_t *self = zn_thread_self();
    uint64_t t0 = zn_now_mono_ns();
    slow_begin(c, self);
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
}

void zn_rwlock_destroy(zn_rwlock_t *l)
{
    pthread_rwlock_destroy(&l->l);
}

void zn_rwlock_rdlock(zn_rwlock_t *l)
{
    if (pthread_rwlock_tryrdlock(&l->l) == 0)
        return;
    zn_thread_info_t *self = zn_thread_self();
    uint64_t t0 = zn_now_mono_ns();
    slow_begin(l, self);
    pthread_rwlock_rdlock(&l->l);
    slow_end(l, self, zn_now_mono_ns() - t0);
}

void zn_rwlock_wrlock(zn_rwlock_t *l)
{
    if (pthread_rwlock_trywrlock(&l->l) == 0)
        return;
    zn_thread_info_t *self = zn_thread_self();
    uint64_t t0 = zn_now_mono_ns();
    slow_begin(l, self);
    pthread_rwlock_wrlock(&l->l);
    slow_end(l, self, zn_now_mono_ns() - t0);
}

void zn_rwlock_unlock(zn_rwlock_t *l)
{
    pthread_rwlock_unlock(&l->l);
}
