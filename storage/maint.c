/*
 * storage/maint.c - the store's own background threads, started by zn_storage_start and
 * stopped by zn_storage_free. The "gc" thread: every storage.gcInterval it runs a GC pass
 * over the whole store (gc*.c), so that the unlinks, renames and fsyncs of many files
 * happen here and never on a worker. The "scrub" thread (extensions.scrub) has the same
 * shape: at startup and then every scrub.interval (at least 2h) a scrub pass re-hashes the store, paced at
 * zinc.scrubRate bytes/s so that it stays cheap next to clients; problems are logged.
 *
 * Between passes it sleeps in zn_cond_timedwait on its own mutex; st_maint_stop sets
 * `stop` and signals the condition, so shutdown wakes it at once, and a pass in progress
 * reads `stop` between files and returns early.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"

typedef struct st_maint maint_t;

struct st_maint {
    zn_storage_t *st;
    void (*pass)(maint_t *m);
    uint64_t interval_ns, rate;
    bool at_start; /* first pass right away (scrub, as zot's scheduler does), else after an interval */
    pthread_t thread;
    zn_mutex_t lock; /* guards the wait on `wake` */
    zn_cond_t wake;
    _Atomic int stop;
};

static void *maint_main(void *arg)
{
    maint_t *m = arg;

    zn_mutex_lock(&m->lock);
    bool first = true;
    while (!m->stop) {
        uint64_t deadline = zn_now_mono_ns() + (first && m->at_start ? 0 : m->interval_ns);
        first = false;
        while (!m->stop && zn_now_mono_ns() < deadline)
            zn_cond_timedwait(&m->wake, &m->lock, deadline);
        if (m->stop)
            break;
        zn_mutex_unlock(&m->lock);
        m->pass(m);
        zn_mutex_lock(&m->lock);
    }
    zn_mutex_unlock(&m->lock);
    return NULL;
}

static void gc_pass(maint_t *m)
{
    zn_storage_gc(m->st, zn_now_wall_ns(), &m->stop, NULL); /* it logs its summary */
}

static void scrub_report(void *data, const char *repo, const char *object, const char *problem)
{
    zn_log(ZN_LOG_ERROR, "scrub: problem found", ZN_LSTR("repo", repo), ZN_LSTR("object", object),
           ZN_LSTR("problem", problem));
}

static void scrub_pass(maint_t *m)
{
    zn_storage_scrub_stats_t s;
    uint64_t start = zn_now_mono_ns();
    zn_storage_scrub(m->st, &m->stop, m->rate, scrub_report, NULL, &s);
    zn_log(s.problems != 0 ? ZN_LOG_ERROR : ZN_LOG_INFO, "scrub done", ZN_LUINT("repos", s.repos),
           ZN_LUINT("manifests", s.manifests), ZN_LUINT("blobs", s.blobs), ZN_LUINT("bytes", s.bytes),
           ZN_LUINT("problems", s.problems), ZN_LUINT("ms", (zn_now_mono_ns() - start) / 1000000));
}

static maint_t *start(zn_storage_t *st, const char *name, void (*pass)(maint_t *), uint64_t interval_ns,
                         uint64_t rate, bool at_start)
{
    maint_t *m = zn_calloc(1, sizeof(*m));
    m->st = st;
    m->rate = rate;
    m->at_start = at_start;
    m->pass = pass;
    m->interval_ns = interval_ns;
    zn_mutex_init(&m->lock, "maintenance.wake");
    zn_cond_init(&m->wake);
    int e = zn_thread_create(&m->thread, name, maint_main, m);
    if (e != 0) {
        zn_log(ZN_LOG_ERROR, "cannot start a maintenance thread", ZN_LSTR("thread", name), ZN_LSTR("error", strerror(e)));
        zn_cond_destroy(&m->wake);
        zn_mutex_destroy(&m->lock);
        free(m);
        return NULL;
    }
    return m;
}

static maint_t *start_scrub(zn_storage_t *st)
{
    const zn_config_t *cfg = st->cfg;
    if (!cfg->extensions.scrub_enable)
        return NULL;
    maint_t *m = start(st, "scrub", scrub_pass, cfg->extensions.scrub_interval_ns, cfg->zinc.scrub_rate, true);
    if (m != NULL) {
        zn_log(ZN_LOG_INFO, "scrub scheduled", ZN_LUINT("interval_ms", m->interval_ns / 1000000),
               ZN_LUINT("rate_bytes_per_s", m->rate));
    }
    return m;
}

static maint_t *start_gc(zn_storage_t *st)
{
    const zn_config_t *cfg = st->cfg;
    if (!cfg->storage.gc || cfg->storage.gc_interval_ns == 0)
        return NULL;
    maint_t *m = start(st, "gc", gc_pass, cfg->storage.gc_interval_ns, 0, false);
    if (m == NULL)
        return NULL;
    zn_log(ZN_LOG_INFO, "gc scheduled", ZN_LUINT("interval_ms", m->interval_ns / 1000000),
           ZN_LUINT("delay_ms", cfg->storage.gc_delay_ns / 1000000));
    return m;
}

static void stop(maint_t *m)
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

void st_maint_start(zn_storage_t *st)
{
    if (st->gc == NULL)
        st->gc = start_gc(st);
    if (st->scrub == NULL)
        st->scrub = start_scrub(st);
}

void st_maint_stop(zn_storage_t *st)
{
    stop(st->gc); /* prompt: a GC pass stops between files */
    st->gc = NULL;
    stop(st->scrub);
    st->scrub = NULL;
}
