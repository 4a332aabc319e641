/*
 * pprof/pprof.c - the module's entry points: settings, thread hooks, request marks.
 *
 * Every zinc thread gets a zn_pprof_thread_t when it starts (zn_thread_info_t.pprof), and the
 * collectors' listeners (registry.c) see it start and exit on the thread itself. Threads
 * registered before zn_pprof_init (main) are adopted at init.
 */
#include "pprof/internal.h"
#include "pprof/lockprof.h"
#include "pprof/trace.h"
#include "pprof/pprof.h"

zn_pprof_settings_t zn_pprof_settings = {
    .max_seconds = 600,
    .heap_sampling = true,
    .mutex_rate = 1,
    .block_rate_ns = 10000,
};

static void adopt(zn_thread_info_t *t)
{
    zn_pprof_thread_t *th = zn_calloc(1, sizeof(*th));
    th->info = t;
    /* other threads (a profile starting) walk the registry and read this pointer */
    __atomic_store_n(&t->pprof, th, __ATOMIC_RELEASE);
    for (size_t i = 0; zn_pprof_listeners[i] != NULL; i++) {
        if (zn_pprof_listeners[i]->on_start != NULL)
            zn_pprof_listeners[i]->on_start(th);
    }
}

static void on_thread_exit(zn_thread_info_t *t)
{
    zn_pprof_thread_t *th = __atomic_load_n(&t->pprof, __ATOMIC_ACQUIRE);
    if (th == NULL)
        return;
    for (size_t i = 0; zn_pprof_listeners[i] != NULL; i++) {
        if (zn_pprof_listeners[i]->on_exit != NULL)
            zn_pprof_listeners[i]->on_exit(th);
    }
}

static const zn_thread_hooks_t hooks = {adopt, on_thread_exit};

zn_err_t zn_pprof_init(const zn_config_t *cfg)
{
    zn_err_t err;

    if (cfg->zinc.profile_max_seconds > 0)
        zn_pprof_settings.max_seconds = cfg->zinc.profile_max_seconds;
    zn_pprof_settings.heap_sampling = cfg->zinc.heap_sampling;
    zn_pprof_settings.mutex_rate = cfg->zinc.mutex_rate;
    zn_pprof_settings.block_rate_ns = cfg->zinc.block_rate_ns;

    if ((err = zn_pprof_cmdline_init()) != ZN_OK || (err = zn_pprof_cpu_init()) != ZN_OK ||
        (err = zn_pprof_snap_init()) != ZN_OK) {
        zn_log(ZN_LOG_ERROR, "pprof: cannot initialise", ZN_LSTR("error", zn_err_str(err)));
        return err;
    }
    zn_trace_init();
    zn_lockprof_init(zn_pprof_settings.mutex_rate, zn_pprof_settings.block_rate_ns);
    zn_thread_set_hooks(&hooks);
    for (int i = 0; i < zn_thread_count(); i++) {
        zn_thread_info_t *t = zn_thread_get(i);
        if (t->live && t->pprof == NULL)
            adopt(t);
    }
    zn_pprof_heap_enable(zn_pprof_settings.heap_sampling);
    return ZN_OK;
}

void zn_pprof_req_begin(const char *route, const char *repo)
{
    zn_pprof_thread_t *th = zn_pprof_thread_self();
    if (th == NULL)
        return;
    /* the signal handlers and malloc hooks read these two: repo must already be interned */
    th->info->repo = zn_pprof_label_intern(repo);
    th->info->route = route;
    for (size_t i = 0; zn_pprof_listeners[i] != NULL; i++) {
        if (zn_pprof_listeners[i]->on_req_begin != NULL)
            zn_pprof_listeners[i]->on_req_begin(th, route, repo);
    }
}

void zn_pprof_req_end(void)
{
    zn_pprof_thread_t *th = zn_pprof_thread_self();
    if (th == NULL)
        return;
    for (size_t i = 0; zn_pprof_listeners[i] != NULL; i++) {
        if (zn_pprof_listeners[i]->on_req_end != NULL)
            zn_pprof_listeners[i]->on_req_end(th);
    }
    th->info->route = NULL;
    th->info->repo = NULL;
}
