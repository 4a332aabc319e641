/*
 * pprof/pprof.h - zinc's self-profiling, served the way Go's net/http/pprof serves it.
 *
 * The module installs thread hooks (CPU timers, stack snapshots), samples the heap through
 * malloc interposition (when built with ZN_HEAP_PROFILER), symbolizes its own addresses and
 * answers /v2/_zot/pprof/... with gzip'd profile.proto files `go tool pprof` reads as is.
 * It knows nothing about OCI; the server registers its routes and tells it when a worker
 * starts and ends handling a request.
 */
#ifndef ZN_PPROF_H
#define ZN_PPROF_H

#include "common/route.h"
#include "common/zn.h"
#include "config/config.h"

/* Reads the profiling settings of cfg (zinc.profiling.*), installs the thread hooks and the
 * signal handlers, and enables heap sampling. Call once from main, before any thread other
 * than main is created (threads registered earlier are adopted). cfg need not outlive the
 * call. ZN_EIO if a signal handler or /proc/self cannot be set up. */
zn_err_t zn_pprof_init(const zn_config_t *cfg);

/* Router rows for every /v2/_zot/pprof path ("/v2/_zot/pprof" redirects to the slash form,
 * "/v2/_zot/pprof/" is the index, "/v2/_zot/pprof/{name}" the profiles), all flagged
 * ZN_ROUTE_ADMIN (the server enforces it). Static; *n receives the count. Register the rows
 * with a NULL app pointer. */
const zn_route_def_t *zn_pprof_routes(size_t *n);

/* Router rows for the debug listener (zinc.profiling.debugAddress): the same profiles under
 * Go's paths, /debug/pprof, /debug/pprof/ and /debug/pprof/{name}, flagged ZN_ROUTE_NOAUTH (the
 * listener is meant for loopback scrapers). Static, as zn_pprof_routes. */
const zn_route_def_t *zn_pprof_debug_routes(size_t *n);

/* Called by the server on the worker thread around the synchronous part of handling one
 * request: CPU samples taken in between carry the label route=<route>. route must be a
 * static string (the router row's name); repo may be NULL and is only borrowed for the call. */
void zn_pprof_req_begin(const char *route, const char *repo);
void zn_pprof_req_end(void);

#endif
