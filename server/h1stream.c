/*
 * server/h1stream.c - the upload fast path: HTTP/1 request bodies handed to the handler
 * while they arrive, instead of after h2o 2.2.5 has buffered all of them.
 *
 * h2o parses a request's head, then keeps reading the body into the socket's input buffer
 * (a file-backed mapping once it is big) and calls the handler only when the last byte is
 * in. zinc sits on the connection's read callback: the library calls h2o_socket_read_start
 * through its PLT, so the definition below (the zinc binary exports its symbols) sees every
 * call and puts on_h1_read in front of lib/http1.c's reqread_on_read (learnt from the first
 * call made inside h2o_http1_accept, also interposed). On each read of a connection whose
 * head h2o has parsed and whose body is still coming, take_over asks the one predicate
 * zn_stream_eligible; if it says yes, the request leaves h2o's entity reader: the head is
 * consumed from the input, the reader and h2o's request timer are dropped, and the request
 * is dispatched at once (routing, authentication, access control, metrics and logs run as
 * for any request) with a zn_body_stream_t attached. The handler starts the stream and gets
 * the bytes as they land; Content-Length and chunked framing are followed here (the chunked
 * decoder state is carried over from h2o's reader), so bytes after the body (a pipelined
 * request) stay in the input for h2o. Until the whole body has been read the request is
 * marked non-persistent, so an early answer closes the connection instead of letting h2o
 * parse body bytes as a request; at the end the keep-alive flag is restored and h2o goes on
 * with the next request on the same connection after the response.
 *
 * HTTP/2 bodies (stream->_req_body and flow-control windows in lib/http2/connection.c) are
 * not taken over: they take the buffered path. The h2o fields used here are mirrored in
 * h1_internals.h and pinned by test/unit/server/test_h1stream.c.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "api/api.h"
#include "server/cluster.h"
#include "server/h1_internals.h"
#include "server/server_int.h"

typedef void (*read_start_fn)(h2o_socket_t *sock, h2o_socket_cb cb);
typedef void (*http1_accept_fn)(h2o_accept_ctx_t *ctx, h2o_socket_t *sock, struct timeval connected_at);

static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;
static read_start_fn real_read_start;
static http1_accept_fn real_http1_accept;
static _Atomic(h2o_socket_cb) h2o_reqread; /* lib/http1.c's reqread_on_read, learnt at the first accept */
static zn_server_t *stream_srv;            /* set once before the workers start; NULL: fast path off */
static __thread h2o_socket_t *accepting;   /* the socket inside h2o_http1_accept on this thread */

#define DRAIN_MAX (64u << 20) /* body read and dropped behind an early answer, then we close */
/* Receive buffer of a streamed upload. h2o's evloop reads a socket until EAGAIN, so with
 * Linux's autotuned window (tcp_rmem up to 32 MiB) one wake-up could pull tens of MiB into
 * the input buffer, which h2o then compacts with memmove as we consume it. And what sits in
 * the kernel's buffer when the client sends its last byte is still to be written and hashed
 * before the 201: with 4 MiB (8 MiB after the kernel doubles it) that backlog alone was
 * 50-100 ms of a loaded disk (bench/push.py, last byte -> 201). 1 MiB (2 MiB doubled) halved
 * it without costing throughput on loopback, and still allows ~40 MB/s per connection at
 * 50 ms RTT; wide-area clients push many layers at once. */
#define STREAM_RCVBUF (1 << 20)

typedef struct h1_stream {
    zn_body_stream_t super;
    zn_h1_conn_t *conn;
    /* an answer sent before the body was read: held until the body is drained */
    void (*do_send)(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state);
    h2o_iovec_t *held;
    size_t nheld;
    h2o_send_state_t held_state;
    uint64_t drained;
    h2o_timeout_entry_t idle; /* readTimeout without a byte of body while we wait for one */
    zn_body_data_fn on_data;
    zn_body_end_fn on_end;
    void *arg;
    bool chunked, complete, started, reading, ended, persistent;
    struct phr_chunked_decoder decoder;
    size_t decoded; /* chunked: input[0, decoded) is body not yet delivered */
    uint64_t left;  /* Content-Length: body bytes still to deliver */
} h1_stream_t;

/* This worker's readTimeout for streamed bodies (h2o timeouts belong to one loop). */
static __thread struct {
    h2o_loop_t *loop;
    h2o_timeout_t timeout;
} idle_timeout;

static void on_idle(h2o_timeout_entry_t *entry)
{
    h1_stream_t *st = H2O_STRUCT_FROM_MEMBER(h1_stream_t, idle, entry);
    struct linger lg = {1, 0};
    int fd = h2o_socket_get_fd(st->conn->sock);
    /* as guard.c closes: h2o sees the error on its own read path and tears down */
    if (fd != -1) {
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        shutdown(fd, SHUT_RDWR);
    }
}

/* Arms (or re-arms) the no-progress deadline while the stream waits for the client. */
static void idle_arm(h1_stream_t *st, bool on)
{
    uint64_t ms = stream_srv != NULL ? stream_srv->cfg->http.read_timeout_ns / 1000000u : 0;
    if (h2o_timeout_is_linked(&st->idle))
        h2o_timeout_unlink(&st->idle);
    if (!on || ms == 0)
        return;
    h2o_loop_t *loop = st->conn->super.ctx->loop;
    if (idle_timeout.loop != loop) {
        idle_timeout.loop = loop;
        h2o_timeout_init(loop, &idle_timeout.timeout, ms);
    }
    h2o_timeout_link(loop, &idle_timeout.timeout, &st->idle);
}

static void on_stream_dispose(void *p)
{
    h1_stream_t *st = p;
    if (h2o_timeout_is_linked(&st->idle))
        h2o_timeout_unlink(&st->idle);
}

static void resolve(void)
{
    real_read_start = (read_start_fn)dlsym(RTLD_NEXT, "h2o_socket_read_start");
    real_http1_accept = (http1_accept_fn)dlsym(RTLD_NEXT, "h2o_http1_accept");
    if (real_read_start == NULL || real_http1_accept == NULL) {
        zn_log(ZN_LOG_FATAL, "cannot find libh2o's h2o_socket_read_start / h2o_http1_accept");
        abort(); /* our own invariant: the binary is linked against libh2o-evloop */
    }
}

static void on_h1_read(h2o_socket_t *sock, const char *err);

void h2o_socket_read_start(h2o_socket_t *sock, h2o_socket_cb cb)
{
    pthread_once(&resolve_once, resolve);
    h2o_socket_cb reqread = atomic_load(&h2o_reqread);
    if (reqread == NULL && sock == accepting) {
        /* the first read_start inside h2o_http1_accept is reqread_start's (lib/http1.c) */
        atomic_store(&h2o_reqread, cb);
        reqread = cb;
    }
    if (stream_srv != NULL && cb == reqread)
        cb = on_h1_read;
    real_read_start(sock, cb);
}

void h2o_http1_accept(h2o_accept_ctx_t *ctx, h2o_socket_t *sock, struct timeval connected_at)
{
    pthread_once(&resolve_once, resolve);
    h2o_socket_t *was = accepting;
    accepting = sock;
    real_http1_accept(ctx, sock, connected_at);
    accepting = was;
}

void zn_h1stream_enable(zn_server_t *srv)
{
    pthread_once(&resolve_once, resolve);
    stream_srv = srv;
}

bool zn_stream_eligible(zn_server_t *srv, h2o_req_t *req, bool chunked)
{
    /* h2o sets query_at only when it dispatches, which has not happened yet */
    const char *q = memchr(req->input.path.base, '?', req->input.path.len);
    size_t plen = q != NULL ? (size_t)(q - req->input.path.base) : req->input.path.len;
    zn_reqctx_t ctx;

    /* the main listener only: the debug listener's hosts route nothing that takes a body */
    if (req->conn->hosts != srv->globalconf.hosts)
        return false;
    memset(&ctx, 0, sizeof(ctx));
    if (zn_router_match(srv->router, zn_slice(req->input.method.base, req->input.method.len),
                        zn_slice(req->input.path.base, plen), &ctx) != ZN_ROUTE_FOUND)
        return false;
    if ((ctx.def->flags & ZN_ROUTE_STREAM) == 0)
        return false;
    /* cluster mode: another member's repository is proxied, and h2o's proxy forwards only a
     * body h2o has buffered */
    if (!zn_cluster_is_local(srv->cluster, ctx.repo))
        return false;
    /* with chunked transfer the length is known only at the end, too late to reject a
     * Content-Range that does not match before storing: such requests stay buffered */
    if (chunked && h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_RANGE, -1) != -1)
        return false;
    return true;
}

/* Reads the framing of the request whose head is at the start of the input, and checks it
 * against what h2o's reader holds; false when anything disagrees (then h2o keeps it). */
static bool read_framing(zn_h1_conn_t *conn, size_t *headlen, bool *chunked, uint64_t *length)
{
    h2o_buffer_t *in = conn->sock->input;
    struct phr_header headers[H2O_MAX_HEADERS];
    size_t nheaders = H2O_MAX_HEADERS, mlen, plen;
    const char *m, *p;
    int minor, cl_index = -1;

    int n = phr_parse_request(in->bytes, in->size < H2O_MAX_REQLEN ? in->size : H2O_MAX_REQLEN, &m, &mlen, &p, &plen, &minor,
                              headers, &nheaders, 0);
    if (n <= 0)
        return false;
    *headlen = (size_t)n;
    *chunked = false;
    for (size_t i = 0; i < nheaders; i++) {
        if (headers[i].name_len == 17 && strncasecmp(headers[i].name, "transfer-encoding", 17) == 0)
            *chunked = true;
        else if (headers[i].name_len == 14 && strncasecmp(headers[i].name, "content-length", 14) == 0 && cl_index == -1)
            cl_index = (int)i;
    }
    if (*chunked) {
        zn_h1_chunked_reader_t *r = (void *)conn->_req_entity_reader;
        *length = UINT64_MAX;
        return conn->_reqsize == *headlen && r->prev_input_size >= *headlen && r->prev_input_size <= in->size;
    }
    if (cl_index == -1)
        return false;
    zn_h1_length_reader_t *r = (void *)conn->_req_entity_reader;
    size_t cl = h2o_strtosize(headers[cl_index].value, headers[cl_index].value_len);
    *length = cl;
    return cl != SIZE_MAX && r->content_length == cl && conn->_reqsize == *headlen + cl;
}

static h1_stream_t *stream_of(zn_h1_conn_t *conn)
{
    zn_body_stream_t *s = zn_api_body_stream(&conn->req);
    return s != NULL ? H2O_STRUCT_FROM_MEMBER(h1_stream_t, super, s) : NULL;
}

static void on_stream_read(h2o_socket_t *sock, const char *err);

static void set_reading(h1_stream_t *st, bool on)
{
    idle_arm(st, on); /* a paused stream waits for us, not for the client */
    if (on == st->reading)
        return;
    st->reading = on;
    if (on)
        h2o_socket_read_start(st->conn->sock, on_stream_read);
    else
        h2o_socket_read_stop(st->conn->sock);
}

static void end(h1_stream_t *st, const char *err)
{
    set_reading(st, false);
    st->ended = true;
    if (err == NULL)
        st->conn->req.http1_is_persistent = st->persistent;
    st->on_end(st->arg, err);
}

/* Decodes what arrived since the last call (chunked); false after a framing error. */
static bool decode(h1_stream_t *st)
{
    h2o_buffer_t *in = st->conn->sock->input;
    if (st->complete || in->size <= st->decoded)
        return true;
    size_t bufsz = in->size - st->decoded;
    ssize_t ret = phr_decode_chunked(&st->decoder, in->bytes + st->decoded, &bufsz);
    in->size = st->decoded + bufsz;
    st->decoded = in->size;
    if (ret == -1)
        return false;
    if (ret >= 0) {
        st->complete = true;
        in->size += (size_t)ret; /* what follows the body stays for h2o */
    }
    return true;
}

/* Hands buffered body bytes to the consumer until it pauses, the input is empty or the
 * body ends. */
static void pump(h1_stream_t *st)
{
    while (!st->ended) {
        if (st->chunked && !decode(st)) {
            end(st, "broken chunked encoding");
            return;
        }
        h2o_buffer_t *in = st->conn->sock->input;
        size_t avail = st->chunked ? st->decoded : (in->size < st->left ? in->size : (size_t)st->left);
        if (avail == 0) {
            if (st->chunked ? st->complete : st->left == 0) {
                end(st, NULL);
                return;
            }
            /* h2o frees an input buffer we emptied; the evloop would then grow a new one
             * from 4 KiB by doubling (a memcpy each time) on every wake-up. One allocation
             * of a receive window's size instead. */
            if (st->conn->sock->input->size == 0)
                h2o_buffer_reserve(&st->conn->sock->input, 2 * STREAM_RCVBUF);
            set_reading(st, true);
            return;
        }
        size_t took = st->on_data(st->arg, in->bytes, avail);
        if (took > avail)
            took = avail;
        h2o_buffer_consume(&st->conn->sock->input, took);
        if (st->chunked)
            st->decoded -= took;
        else
            st->left -= took;
        if (took < avail) {
            set_reading(st, false); /* backpressure: the consumer resumes us */
            return;
        }
    }
}

static void on_stream_read(h2o_socket_t *sock, const char *err)
{
    zn_h1_conn_t *conn = sock->data;
    h1_stream_t *st = stream_of(conn);
    if (err != NULL || st == NULL || st->ended) {
        if (st != NULL && !st->ended) {
            st->reading = false;
            st->ended = true;
            st->on_end(st->arg, err != NULL ? err : "connection closed");
        }
        /* h2o's reader closes the connection on an error (no entity reader is set) */
        atomic_load(&h2o_reqread)(sock, err != NULL ? err : "connection closed");
        return;
    }
    pump(st);
}

static void stream_start(zn_body_stream_t *s, zn_body_data_fn on_data, zn_body_end_fn on_end, void *arg)
{
    h1_stream_t *st = (void *)s;
    st->on_data = on_data;
    st->on_end = on_end;
    st->arg = arg;
    st->started = true;
    pump(st);
}

static void stream_resume(zn_body_stream_t *s)
{
    h1_stream_t *st = (void *)s;
    if (st->started && !st->ended)
        pump(st);
}

/* ---- answers sent before the body was read ----------------------------------------------------
 * Closing a socket with unread input makes the kernel send a reset, which can destroy the
 * answer before the client reads it (an early 401/413/416, a disk-full 500). So the answer
 * is held, the body read and dropped (up to DRAIN_MAX), and the answer sent after it. */

static void send_held(h1_stream_t *st)
{
    h2o_ostream_t *os = &st->conn->_ostr_final.super;
    os->do_send = st->do_send;
    st->do_send(os, &st->conn->req, st->held, st->nheld, st->held_state);
}

static size_t drain_data(void *arg, const char *p, size_t n)
{
    h1_stream_t *st = arg;
    st->drained += n;
    if (st->drained > DRAIN_MAX) {
        /* enough: answer now and close (the client may see a reset) */
        set_reading(st, false);
        st->ended = true;
        send_held(st);
        return 0;
    }
    return n;
}

static void drain_end(void *arg, const char *err)
{
    h1_stream_t *st = arg;
    if (err == NULL)
        send_held(st); /* on an error h2o closes the connection right after this */
}

static void send_after_body(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state)
{
    zn_h1_conn_t *conn = H2O_STRUCT_FROM_MEMBER(zn_h1_conn_t, _ostr_final.super, self);
    h1_stream_t *st = stream_of(conn);
    if (st == NULL || st->ended || st->held != NULL) {
        if (st != NULL && st->held == NULL) {
            self->do_send = st->do_send;
            st->do_send(self, req, bufs, bufcnt, state);
        }
        return;
    }
    st->held = h2o_mem_alloc_pool(&req->pool, sizeof(*bufs) * (bufcnt + 1));
    memcpy(st->held, bufs, sizeof(*bufs) * bufcnt);
    st->nheld = bufcnt;
    st->held_state = state;
    st->on_data = drain_data;
    st->on_end = drain_end;
    st->arg = st;
    st->started = true;
    pump(st);
}

/* Moves the request out of h2o's entity reader and dispatches it; false to leave it. */
static bool take_over(h2o_socket_t *sock)
{
    zn_h1_conn_t *conn = sock->data;
    h2o_req_t *req = &conn->req;
    size_t headlen;
    bool chunked;
    uint64_t length;

    if (conn->sock != sock || conn->_req_entity_reader == NULL || req->version == 0 || req->processed_at.at.tv_sec != 0)
        return false;
    if (!read_framing(conn, &headlen, &chunked, &length) || !zn_stream_eligible(stream_srv, req, chunked))
        return false;

    h1_stream_t *st = h2o_mem_alloc_shared(&req->pool, sizeof(*st), on_stream_dispose);
    *st = (h1_stream_t){.super = {.length = length, .start = stream_start, .resume = stream_resume},
                        .conn = conn,
                        .chunked = chunked,
                        .left = length,
                        .persistent = req->http1_is_persistent};
    st->idle.cb = on_idle;
    if (chunked) {
        zn_h1_chunked_reader_t *r = (void *)conn->_req_entity_reader;
        st->decoder = r->decoder;
        st->decoded = r->prev_input_size - headlen;
    }
    /* what on_entity_read_complete does in lib/http1.c, minus the wait for the body */
    conn->_req_entity_reader = NULL;
    if (conn->_timeout != NULL) {
        h2o_timeout_unlink(&conn->_timeout_entry);
        conn->_timeout_entry.cb = NULL;
        conn->_timeout = NULL;
    }
    h2o_socket_read_stop(sock);
    int fd = h2o_socket_get_fd(sock), rcvbuf = STREAM_RCVBUF;
    if (fd != -1)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)); /* best effort */
    st->do_send = conn->_ostr_final.super.do_send;
    conn->_ostr_final.super.do_send = send_after_body;
    h2o_buffer_consume(&sock->input, headlen);
    conn->_reqsize = 0; /* h2o consumes this much after the response: the body is ours */
    conn->_prevreqlen = 0;
    req->http1_is_persistent = 0; /* until the whole body is read */
    zn_api_body_stream_attach(req, &st->super);
    h2o_process_request(req);
    return true;
}

static void on_h1_read(h2o_socket_t *sock, const char *err)
{
    if (err == NULL && take_over(sock))
        return;
    atomic_load(&h2o_reqread)(sock, err);
}
