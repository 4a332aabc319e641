/*
 * pprof/registry.c - which profiles exist and who listens to threads and requests.
 *
 * The index page lists zn_pprof_defs (sorted by name) and /v2/_zot/pprof/{name} dispatches on
 * it; a name that is not here answers 404 "Unknown profile", as Go answers a name it does not
 * know. Profiles that are not implemented are simply absent: the tracing work adds its rows
 * (block, mutex, trace) and its listener here when it lands.
 */
#include <string.h>

#include "pprof/internal.h"
#include "pprof/lockprof.h"
#include "pprof/trace.h"

const zn_pprof_def_t *const zn_pprof_defs[] = {
    &zn_pprof_def_allocs,  &zn_pprof_def_block,  &zn_pprof_def_cmdline,      &zn_pprof_def_delta_block,
    &zn_pprof_def_delta_heap, &zn_pprof_def_delta_mutex, &zn_pprof_def_goroutine,
    &zn_pprof_def_heap,    &zn_pprof_def_mutex,  &zn_pprof_def_profile,      &zn_pprof_def_symbol,
    &zn_pprof_def_threadcreate, &zn_pprof_def_trace,
    NULL,
};

const zn_pprof_listener_t *const zn_pprof_listeners[] = {
    &zn_pprof_cpu_listener,
    &zn_trace_listener,
    NULL,
};

const zn_pprof_def_t *zn_pprof_def_find(zn_slice_t name)
{
    for (size_t i = 0; zn_pprof_defs[i] != NULL; i++) {
        if (strlen(zn_pprof_defs[i]->name) == name.n && memcmp(zn_pprof_defs[i]->name, name.p, name.n) == 0)
            return zn_pprof_defs[i];
    }
    return NULL;
}
