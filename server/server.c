/*
 * server/server.c - worker threads, listeners, signals and graceful shutdown.
 *
 * Each worker owns an h2o event loop and its own SO_REUSEPORT listening socket (bound by
 * the main thread before any worker starts, so a busy port fails at startup). The main
 * thread blocks SIGTERM/SIGINT in every thread and waits for them with sigwait(); then it
 * posts a stop message to each worker's loop. A worker that gets it closes its listener,
 * asks h2o to shut connections down (idle keep-alives close, in-flight requests finish)
 * and keeps running its loop until no connection is left or the grace period ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "server/cluster.h"
#include "server/server_int.h"

static int open_listener_at(const char *host, int port_num, const char *key, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[8];
    int fd = -1, on = 1, gai;

    if (port_num < 0 || port_num > 65535 || snprintf(port, sizeof(port), "%d", port_num) < 1) {
        zn_errf(err, errlen, "%s: port %d out of range", key, port_num);
        return -1;
    }
    if ((gai = getaddrinfo(host, port, &hints, &res)) != 0) {
        zn_errf(err, errlen, "%s: cannot resolve %s: %s", key, host ? host : "*", gai_strerror(gai));
        return -1;
    }
    if ((fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0)) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
        listen(fd, SOMAXCONN) != 0) {
        zn_errf(err, errlen, "%s: cannot listen on %s:%d: %s", key, host ? host : "*", port_num, strerror(errno));
        if (fd != -1)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int open_listener(const zn_config_t *cfg, char *err, size_t errlen)
{
    const char *host = cfg->http.address != NULL && cfg->http.address[0] != '\0' ? cfg->http.address : NULL;
    return open_listener_at(host, cfg->http.port, "http", err, errlen);
}

/* Large request bodies are kept by h2o in a file-backed buffer once they pass the
 * threshold; put those files in the store's temp directory (on the storage filesystem,
 * made and cleaned by storage) and allow bodies up to the configured blob size. */
static bool setup_body_buffers(zn_server_t *srv, char *err, size_t errlen)
{
    const char *dir = zn_api_tmp_dir(srv->api);
    h2o_buffer_mmap_settings_t *mm = &h2o_socket_buffer_mmap_settings;
    /* h2o's evloop reads a socket until EAGAIN before calling back, so even a body that is
     * streamed away at once (h1stream.c) sits in the input buffer up to a TCP receive
     * window (several MiB on loopback); below 16 MiB such buffers stay in memory, so a full
     * disk fails the session write (a clean 5xx) rather than h2o's buffer (a reset). */
    mm->threshold = 16 * 1024 * 1024;
    if ((size_t)snprintf(mm->fn_template, sizeof(mm->fn_template), "%s/body.XXXXXX", dir) >= sizeof(mm->fn_template)) {
        zn_errf(err, errlen, "storage.rootDirectory: path too long for body buffers");
        return false;
    }
    srv->globalconf.max_request_entity_size = (size_t)srv->cfg->storage.max_blob_size;
    /* h2o 2.2.5 times a whole HTTP/1 request (body included) with one timer, whatever the
     * progress. zot's 60 s readTimeout cuts big pushes that way (zot #4079); zinc gives
     * h2o's timer at least ZN_REQ_TIMEOUT_MIN_MS, as a backstop, and enforces readTimeout
     * itself as idle, header and no-progress deadlines (guard.c). */
    uint64_t ms = srv->cfg->http.read_timeout_ns / 1000000u;
    srv->globalconf.http1.req_timeout = ms > ZN_REQ_TIMEOUT_MIN_MS ? ms : ZN_REQ_TIMEOUT_MIN_MS;
    return true;
}

/* Every connection is a descriptor and shells often start us with a soft limit of 1024: take
 * the hard limit, as Go's runtime does for zot. Failing that is not fatal, only logged. */
static void raise_nofile_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == rl.rlim_max)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        zn_log(ZN_LOG_WARN, "cannot raise the open files limit", ZN_LSTR("error", strerror(errno)), ZN_LUINT("limit", was));
    else
        zn_log(ZN_LOG_DEBUG, "open files limit raised", ZN_LUINT("from", was), ZN_LUINT("to", rl.rlim_cur));
}

static int worker_count(const zn_config_t *cfg)
{
    long n = cfg->http.workers > 0 ? cfg->http.workers : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    return n > ZN_WORKERS_MAX ? ZN_WORKERS_MAX : (int)n;
}

zn_err_t zn_server_new(const zn_config_t *cfg, zn_server_t **out, char *err, size_t errlen)
{
    zn_server_t *srv = zn_calloc(1, sizeof(*srv));
    zn_err_t e = ZN_EIO; /* what the steps that say only "failed" report */
    *out = NULL;
    srv->cfg = cfg;
    srv->audit_fd = -1;
    err[0] = '\0';
    raise_nofile_limit();
    h2o_config_init(&srv->globalconf);
    h2o_config_init(&srv->debug_conf);
    srv->router = zn_router_new();
    srv->debug_router = zn_router_new();
    zn_api_t *api = NULL; /* srv->api is untyped (server_int.h does not include api/) */
    if ((e = zn_api_new(cfg, &api, err, errlen)) != ZN_OK)
        goto fail;
    srv->api = api;
    e = ZN_EIO;
    if (!setup_body_buffers(srv, err, errlen))
        goto fail;
    if (cfg->log.audit != NULL &&
        (srv->audit_fd = open(cfg->log.audit, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) == -1) {
        zn_errf(err, errlen, "log.audit: cannot open %s: %s", cfg->log.audit, strerror(errno));
        goto fail;
    }
    if ((e = zn_access_new(cfg, &srv->access, err, errlen)) != ZN_OK)
        goto fail;
    if ((e = zn_tls_ctx_new(cfg, &srv->ssl_ctx, err, errlen)) != ZN_OK)
        goto fail;
    if ((e = zn_cluster_new(cfg, &srv->cluster, err, errlen)) != ZN_OK)
        goto fail;
    e = ZN_EIO;
    zn_http_setup(srv);
    if (cfg->zinc.debug_address != NULL)
        zn_http_setup_debug(srv);
    if (srv->metrics != NULL) {
        zn_metrics_set_api(srv->metrics, srv->api); /* the mirror's counters */
        zn_metrics_set_auth(srv->metrics, zn_access_auth(srv->access));
    }
    size_t nroutes;
    const zn_route_def_t *routes = zn_api_routes(&nroutes);
    zn_router_add(srv->router, routes, nroutes, srv->api);
    zn_h1stream_enable(srv);
    srv->nworkers = worker_count(cfg);
    srv->workers = zn_calloc((size_t)srv->nworkers, sizeof(zn_worker_t));
    for (int i = 0; i < srv->nworkers; i++) {
        srv->workers[i].srv = srv;
        srv->workers[i].index = i;
        srv->workers[i].debug_fd = -1;
        if ((srv->workers[i].listen_fd = open_listener(cfg, err, errlen)) == -1)
            goto fail;
    }
    /* one worker serves the debug listener: its handlers never block the loop */
    if (cfg->zinc.debug_address != NULL &&
        (srv->workers[0].debug_fd =
             open_listener_at(cfg->zinc.debug_host, cfg->zinc.debug_port, "zinc.profiling.debugAddress", err, errlen)) == -1)
        goto fail;
    *out = srv;
    return ZN_OK;
fail:
    zn_server_free(srv);
    return e;
}

void zn_server_free(zn_server_t *srv)
{
    if (srv == NULL)
        return;
    zn_h1stream_enable(NULL);
    for (int i = 0; srv->workers != NULL && i < srv->nworkers; i++) {
        if (srv->workers[i].listen_fd > 0)
            close(srv->workers[i].listen_fd);
        if (srv->workers[i].debug_fd > 0)
            close(srv->workers[i].debug_fd);
    }
    free(srv->workers);
    if (srv->audit_fd != -1)
        close(srv->audit_fd);
    zn_access_free(srv->access);
    zn_metrics_free(srv->metrics);
    zn_api_free(srv->api);
    zn_cluster_free(srv->cluster);
    if (srv->ssl_ctx != NULL)
        SSL_CTX_free(srv->ssl_ctx);
    zn_router_free(srv->router);
    zn_router_free(srv->debug_router);
    h2o_config_dispose(&srv->globalconf);
    h2o_config_dispose(&srv->debug_conf);
    free(srv);
}

static void on_accept(h2o_socket_t *listener, const char *err);

static void on_accept_resume(h2o_timeout_entry_t *entry)
{
    zn_worker_t *w = H2O_STRUCT_FROM_MEMBER(zn_worker_t, accept_resume, entry);
    if (w->listener != NULL)
        h2o_socket_read_start(w->listener, on_accept);
}

/* Out of descriptors the pending connection stays in the backlog and the listener stays
 * readable: accepting again at once would spin the worker at full CPU. Rest it instead;
 * the connections being served go on, and close (readTimeout) to make room. */
static void pause_accepting(zn_worker_t *w)
{
    uint64_t now = zn_now_mono_ns();
    if (w->accept_warned_ns == 0 || now - w->accept_warned_ns >= ZN_ACCEPT_WARN_NS) {
        w->accept_warned_ns = now;
        zn_log(ZN_LOG_WARN, "out of file descriptors, pausing accept", ZN_LSTR("error", strerror(errno)),
               ZN_LINT("worker", w->index), ZN_LINT("pause_ms", ZN_ACCEPT_PAUSE_MS));
    }
    h2o_socket_read_stop(w->listener);
    if (!h2o_timeout_is_linked(&w->accept_resume))
        h2o_timeout_link(w->loop, &w->accept_pause, &w->accept_resume);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    zn_worker_t *w = listener->data;
    h2o_socket_t *sock;
    if (err != NULL)
        return;
    /* accept a few per wake-up; the other workers share the load through SO_REUSEPORT */
    for (int i = 0; i < 16; i++) {
        if ((sock = h2o_evloop_socket_accept(listener)) == NULL) {
            if (errno == EMFILE || errno == ENFILE)
                pause_accepting(w);
            return;
        }
        zn_guard_track(w->guard, sock);
        h2o_accept(&w->accept_ctx, sock);
    }
}

static void on_debug_accept(h2o_socket_t *listener, const char *err)
{
    zn_worker_t *w = listener->data;
    h2o_socket_t *sock;
    if (err != NULL)
        return;
    for (int i = 0; i < 16 && (sock = h2o_evloop_socket_accept(listener)) != NULL; i++)
        h2o_accept(&w->debug_accept_ctx, sock);
}

static void on_stop(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    zn_worker_t *w = H2O_STRUCT_FROM_MEMBER(zn_worker_t, stop_receiver, receiver);
    while (!h2o_linklist_is_empty(messages))
        h2o_linklist_unlink(messages->next);
    if (w->stopping)
        return;
    w->stopping = true;
    if (h2o_timeout_is_linked(&w->accept_resume))
        h2o_timeout_unlink(&w->accept_resume);
    if (w->listener != NULL) {
        h2o_socket_read_stop(w->listener);
        h2o_socket_close(w->listener);
        w->listener = NULL;
    }
    if (w->debug_listener != NULL) {
        h2o_socket_read_stop(w->debug_listener);
        h2o_socket_close(w->debug_listener);
        w->debug_listener = NULL;
    }
    h2o_context_request_shutdown(&w->ctx);
}

static int http1_req_started(h2o_req_t *req, void *cbdata)
{
    /* an idle keep-alive connection's request has no method yet: it is not in flight */
    return req->input.method.len != 0;
}

/* True while a request is in flight: an HTTP/1 request whose headers have arrived (its
 * body may still be coming), or any HTTP/2 connection (h2o sent GOAWAY; it closes them
 * once their streams are done). Idle HTTP/1 keep-alives do not hold the shutdown. */
static bool has_connections(zn_worker_t *w)
{
    h2o_protocol_callbacks_t *h1 = &w->srv->globalconf.http1.callbacks;
    if (!h2o_linklist_is_empty(&w->ctx.http2._conns))
        return true;
    return h1->foreach_request != NULL && h1->foreach_request(&w->ctx, http1_req_started, NULL) != 0;
}

static void *worker_main(void *arg)
{
    zn_worker_t *w = arg;
    w->loop = h2o_evloop_create();
    h2o_context_init(&w->ctx, w->loop, &w->srv->globalconf);
    w->accept_ctx = (h2o_accept_ctx_t){.ctx = &w->ctx, .hosts = w->srv->globalconf.hosts, .ssl_ctx = w->srv->ssl_ctx};
    zn_guard_new(&w->ctx, w->srv->cfg, &w->guard); /* cannot fail; NULL when both timeouts are off */
    h2o_timeout_init(w->loop, &w->accept_pause, ZN_ACCEPT_PAUSE_MS);
    w->accept_resume.cb = on_accept_resume;
    w->queue = h2o_multithread_create_queue(w->loop);
    h2o_multithread_register_receiver(w->queue, &w->stop_receiver, on_stop);
    w->listener = h2o_evloop_socket_create(w->loop, w->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    w->listen_fd = -1; /* the socket owns it now */
    w->listener->data = w;
    h2o_socket_read_start(w->listener, on_accept);
    if (w->debug_fd != -1) {
        /* plain HTTP/1 only, hosts of the debug config: nothing but /debug/pprof/ is routed there */
        w->debug_accept_ctx = (h2o_accept_ctx_t){.ctx = &w->ctx, .hosts = w->srv->debug_conf.hosts};
        w->debug_listener = h2o_evloop_socket_create(w->loop, w->debug_fd, H2O_SOCKET_FLAG_DONT_READ);
        w->debug_fd = -1;
        w->debug_listener->data = w;
        h2o_socket_read_start(w->debug_listener, on_debug_accept);
    }
    atomic_store(&w->started, 1);

    while (!w->stopping)
        h2o_evloop_run(w->loop, INT32_MAX);
    uint64_t deadline = zn_now_mono_ns() + ZN_SHUTDOWN_GRACE_NS;
    while (has_connections(w) && zn_now_mono_ns() < deadline)
        h2o_evloop_run(w->loop, 100);
    if (has_connections(w))
        zn_log(ZN_LOG_WARN, "shutdown grace period over, closing connections", ZN_LINT("worker", w->index));
    /* the loop never runs again: pool jobs still out (a request stalled at S3) are dropped
     * when they finish, not posted to this loop (api/dispatch.c mailboxes) */
    zn_api_loop_close(w->srv->api, &w->ctx);
    return NULL;
}

int zn_server_run(zn_server_t *srv)
{
    sigset_t set;
    int sig = 0;
    char name[ZN_THREAD_NAME_MAX];

    /* main() blocked these before any thread started, so only this sigwait takes them */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);

    for (int i = 0; i < srv->nworkers; i++) {
        int e = snprintf(name, sizeof(name), "worker-%d", i) < (int)sizeof(name) ? 0 : EINVAL; /* i < ZN_WORKERS_MAX */
        if (e == 0)
            e = zn_thread_create(&srv->workers[i].thread, name, worker_main, &srv->workers[i]);
        if (e != 0) {
            zn_log(ZN_LOG_FATAL, "cannot start worker thread", ZN_LSTR("error", strerror(e)));
            return 1;
        }
    }
    atomic_store(&srv->ready, 1);
    zn_api_start(srv->api); /* storage's gc / scrub threads; zn_api_free stops them */
    zn_log(ZN_LOG_INFO, "listening", ZN_LSTR("address", srv->cfg->http.address), ZN_LINT("port", srv->cfg->http.port),
           ZN_LINT("workers", srv->nworkers), ZN_LBOOL("tls", srv->ssl_ctx != NULL));
    while (sigwait(&set, &sig) != 0 || (sig != SIGTERM && sig != SIGINT))
        ;
    zn_log(ZN_LOG_INFO, "shutting down", ZN_LSTR("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    /* a storage call stalled at S3 (a request's job, GC) gives up when the workers' grace
     * period ends, so that shutdown never waits on a backend that does not answer */
    zn_api_stop_at(srv->api, zn_now_mono_ns() + ZN_SHUTDOWN_GRACE_NS);
    zn_api_stop(srv->api); /* prompt: a GC or scrub pass stops between files */
    for (int i = 0; i < srv->nworkers; i++) {
        while (!atomic_load(&srv->workers[i].started))
            usleep(1000); /* main thread only: a worker still starting up */
        h2o_multithread_send_message(&srv->workers[i].stop_receiver, &srv->workers[i].stop_msg);
    }
    for (int i = 0; i < srv->nworkers; i++)
        pthread_join(srv->workers[i].thread, NULL);
    zn_log(ZN_LOG_INFO, "stopped");
    return 0;
}
