/*
 * server/maintenance.c - the "gc" thread: every storage.gcInterval it runs a GC pass over
 * the whole store (storage/gc*.c), so that the unlinks, renames and fsyncs of many files
 * happen here and never on a worker.
 *
 * Between passes it sleeps in zn_cond_timedwait on its own mutex; zn_maint_stop sets
 * `stop` and signals the condition, so shutdown wakes it at once, and a pass in progress
 * reads `stop` between files and returns early.
 */
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"
#include "storage/storage.h"

struct zn_maint {
    zn_storage_t *st;
    uint64_t interval_ns;
    pthread_t thread;
    zn_mutex_t lock; /* guards the wait on `wake` */
    zn_cond_t wake;
    _Atomic int stop;
};

static void *maint_main(void *arg)
{
    zn_maint_t *m = arg;

    zn_mutex_lock(&m->lock);
    while (!m->stop) {
        uint64_t deadline = zn_now_mono_ns() + m->interval_ns;
        while (!m->stop && zn_now_mono_ns() < deadline)
            zn_cond_timedwait(&m->wake, &m->lock, deadline);
        if (m->stop)
            break;
        zn_mutex_unlock(&m->lock);
        zn_storage_gc(m->st, zn_now_wall_ns(), &m->stop, NULL); /* it logs its summary */
        zn_mutex_lock(&m->lock);
    }
    zn_mutex_unlock(&m->lock);
    return NULL;
}

zn_maint_t *zn_maint_start(const zn_config_t *cfg, zn_storage_t *st)
{
    if (!cfg->storage.gc || cfg->storage.gc_interval_ns == 0 || st == NULL)
        return NULL;
    zn_maint_t *m = zn_calloc(1, sizeof(*m));
    m->st = st;
    m->interval_ns = cfg->storage.gc_interval_ns;
    zn_mutex_init(&m->lock, "maintenance.wake");
    zn_cond_init(&m->wake);
    int e = zn_thread_create(&m->thread, "gc", maint_main, m);
    if (e != 0) {
        zn_log(ZN_LOG_ERROR, "cannot start the gc thread, garbage is not collected", ZN_LSTR("error", strerror(e)));
        zn_cond_destroy(&m->wake);
        zn_mutex_destroy(&m->lock);
        free(m);
        return NULL;
    }
    zn_log(ZN_LOG_INFO, "gc scheduled", ZN_LUINT("interval_ms", m->interval_ns / 1000000),
           ZN_LUINT("delay_ms", cfg->storage.gc_delay_ns / 1000000));
    return m;
}

void zn_maint_stop(zn_maint_t *m)
{
    if (m == NULL)
        return;
    zn_mutex_lock(&m->lock);
    m->stop = 1;
    zn_cond_signal(&m->wake);
    zn_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    zn_cond_destroy(&m->wake);
    zn_mutex_destroy(&m->lock);
    free(m);
}
