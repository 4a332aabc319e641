/*
 * server/server_int.h - private to server/: the server struct shared by server.c (threads,
 * listeners, shutdown) and http.c (dispatch, access log, built-in routes).
 */
#ifndef ZN_SERVER_INT_H
#define ZN_SERVER_INT_H

#include <h2o.h>

#include "auth/auth.h"
#include "common/edge/edge.h"
#include "server/server.h"

#define ZN_WORKERS_MAX 256
#define ZN_SHUTDOWN_GRACE_NS (10ull * 1000000000ull)
#define ZN_ACCEPT_PAUSE_MS 100
#define ZN_ACCEPT_WARN_NS (10ull * 1000000000ull)
#define ZN_REQ_TIMEOUT_MIN_MS (3600ull * 1000ull) /* one hour per HTTP/1 request */

typedef struct zn_worker {
    struct zn_server *srv;
    int index;
    pthread_t thread;
    int listen_fd;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    /* worker 0 only, when zinc.profiling.debugAddress is set: the /debug/pprof/ listener */
    int debug_fd;
    h2o_accept_ctx_t debug_accept_ctx;
    h2o_socket_t *debug_listener;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t stop_receiver;
    h2o_multithread_message_t stop_msg;
    struct zn_guard *guard; /* read/write deadlines of accepted sockets, NULL when both are off */
    h2o_timeout_t accept_pause; /* out of descriptors: the listener rests this long */
    h2o_timeout_entry_t accept_resume;
    uint64_t accept_warned_ns; /* last "out of descriptors" warning (one per ZN_ACCEPT_WARN_NS) */
    _Atomic int started; /* 1 when the loop is up (stop messages can be delivered) */
    bool stopping;
} zn_worker_t;

struct zn_server {
    const zn_config_t *cfg;
    h2o_globalconf_t globalconf;
    zn_router_t *router;
    /* the debug listener's own host (so the main listener can never reach it) and routes */
    h2o_globalconf_t debug_conf;
    zn_router_t *debug_router;
    zn_access_t *access;
    SSL_CTX *ssl_ctx;
    void *api; /* zn_api_t */
    int nworkers;
    int audit_fd; /* log.audit, -1 when unset */
    zn_worker_t *workers;
    _Atomic int ready; /* storage is usable: readyz/startupz say ok */
    struct zn_metrics *metrics; /* NULL unless extensions.metrics is enabled */
    struct zn_cluster *cluster; /* cluster mode (server/cluster.h), NULL when not clustered */
};

/* guard.c: readTimeout / writeTimeout for one worker's connections (rules atop guard.c).
 * zn_guard_new: ZN_OK with *out NULL when both timeouts are 0 (it cannot fail otherwise); ctx and cfg must outlive it, and it lives as
 * long as the worker's loop. zn_guard_track: call on the worker's thread for each accepted
 * socket before handing it to h2o; the record goes away with the socket (g NULL: no-op).
 * zn_guard_count: the sockets tracked now. */
typedef struct zn_guard zn_guard_t;
zn_err_t zn_guard_new(h2o_context_t *ctx, const zn_config_t *cfg, zn_guard_t **out);
void zn_guard_track(zn_guard_t *g, h2o_socket_t *sock);
size_t zn_guard_count(zn_guard_t *g);

/* http.c: registers the catch-all h2o handler and the access logger on the global config,
 * and the built-in routes (base, health) in the router. */
void zn_http_setup(struct zn_server *srv);
/* http.c: the debug listener's host on srv->debug_conf, routing only /debug/pprof/... without
 * authentication. Call after zn_http_setup when zinc.profiling.debugAddress is set. */
void zn_http_setup_debug(struct zn_server *srv);
/* h1stream.c: the HTTP/1 upload fast path (design in docs/design-uploads.md).
 * zn_h1stream_enable: turn it on for srv's main listener (before the workers start; NULL
 * turns it off again, after they stopped). zn_stream_eligible: THE decision whether a
 * request whose head has arrived gets its body streamed to the handler instead of buffered
 * by h2o; every feature that must see the whole body first vetoes it here. */
void zn_h1stream_enable(struct zn_server *srv);
bool zn_stream_eligible(struct zn_server *srv, h2o_req_t *req, bool chunked);

/* ---- metrics.c: extensions.metrics (docs/zot.md §6) -------------------------------------- */

typedef struct zn_metrics zn_metrics_t;
/* The collector into *out; it borrows cfg (which must outlive it). ZN_OK with *out NULL when
 * extensions.metrics is disabled (it cannot fail otherwise: OOM is fatal). Free with
 * zn_metrics_free (NULL is a no-op) after the workers have stopped. */
zn_err_t zn_metrics_new(const zn_config_t *cfg, zn_metrics_t **out);
/* The API whose mirror counters (zinc_sync_*) a scrape renders; borrowed, outlives m. */
struct zn_api;
void zn_metrics_set_api(zn_metrics_t *m, struct zn_api *api);
/* The password-check counters' source (zinc_auth_password_checks_total), when auth is on. */
void zn_metrics_set_auth(zn_metrics_t *m, const zn_auth_t *auth);
void zn_metrics_free(zn_metrics_t *m);
/* The GET <prometheus.path> router row (owned by m; register it with app = m). */
const zn_route_def_t *zn_metrics_route(zn_metrics_t *m);
/* Counts one finished request (the access logger calls it on the worker's thread): method,
 * raw path without the query, the router's match (NULL when the request was not routed),
 * final status (0 = none sent), duration in seconds. Requests to the metrics path are not
 * counted. Lock-free across workers; m may be NULL. */
void zn_metrics_observe(zn_metrics_t *m, zn_slice_t method, zn_slice_t path, const zn_reqctx_t *ctx, int status,
                        double seconds);

/* metrics_proc.c: the process collector's values; a field is -1 when it cannot be read. */
typedef struct zn_proc_stats {
    double cpu_seconds, resident_bytes, virtual_bytes, start_time, open_fds, max_fds;
} zn_proc_stats_t;
void zn_proc_stats_read(zn_proc_stats_t *out);

/* access.c: on an anonymous GET/HEAD /v2/ from classic Docker in mixed mode, send the 401
 * with the Bearer challenge (token.c) and return true; else false (the ordinary 200). */
bool zn_access_ping(zn_access_t *a, h2o_req_t *req);
/* access.c: the token service, or NULL when authentication is off. Owned by a. */
typedef struct zn_token zn_token_t;
zn_token_t *zn_access_token(zn_access_t *a);

/* token.c: bearer tokens for classic Docker (docs/zot.md §2, zinc point 2). With
 * challenge_docker, anonymous Docker pings get the Bearer challenge. cfg is borrowed and
 * must outlive the result. ZN_OK with the issuer in *out; ZN_EIO with *out NULL and a message
 * in err if no key can be made. */
zn_err_t zn_token_new(const zn_config_t *cfg, bool challenge_docker, zn_token_t **out, char *err, size_t errlen);
void zn_token_free(zn_token_t *t);
/* Verify a bearer token now: ZN_AUTH_OK (out->user set), ZN_AUTH_ANONYMOUS or ZN_AUTH_FAILED. */
zn_auth_status_t zn_token_check(zn_token_t *t, const char *tok, size_t len, zn_auth_creds_t *out);
/* The Bearer challenge for this ping (in req's pool), or an empty iovec when it does not
 * apply: t NULL or not challenging, an Authorization header present, a User-Agent without
 * "docker/", or a Host that cannot be echoed safely (and no externalUrl). */
h2o_iovec_t zn_token_ping_challenge(zn_token_t *t, h2o_req_t *req);
/* The token endpoint's rows (GET /v2/_zinc/token); register them with app = the zn_token_t. */
const zn_route_def_t *zn_token_routes(size_t *n);

#endif
