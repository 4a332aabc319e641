/*
 * server/guard.c - per-connection read and write deadlines that h2o 2.2.5 does not have.
 *
 * h2o 2.2.5 times an HTTP/1 request with one deadline from the end of the previous
 * response to the end of the body, whatever the progress, and has no timer at all on
 * writing a response: a client that stops reading holds its connection, its buffers and a
 * file descriptor forever. Each worker keeps its accepted sockets in a list (the socket's
 * on_close hook unlinks them) and, while the list is not empty, wakes every `period` ms
 * to look at each one. It closes a connection that:
 *   - waits for its next request, or is still sending request headers, readTimeout after
 *     that began (slowloris trickles bytes, so headers get a deadline, not a progress rule);
 *   - sends a request body and made no progress for readTimeout (big pushes may take hours);
 *   - has a response write pending, data in the kernel's send queue and nothing of it
 *     acknowledged by the peer for writeTimeout (its receive window stays shut).
 * A handler still preparing its answer (a CPU profile, a delayed 401) is never cut.
 * HTTP/1 state comes from h2o's foreach_request; other sockets (HTTP/2, TLS handshakes,
 * which h2o times itself) only get the write rule. Closing is shutdown(2) on the fd with
 * SO_LINGER 0: h2o sees EOF or EPIPE and tears the connection down on its own path, and
 * the kernel drops unsent data at once instead of keeping it for an absent reader.
 * Progress is read from TCP_INFO (bytes received, bytes acknowledged): h2o 2.2.5's
 * socket counters hold the size of the last read, not a total.
 */
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "server/server_int.h"

enum { ST_UNKNOWN, ST_IDLE, ST_HEADERS, ST_BODY, ST_RESPONSE };

typedef struct guard_conn {
    h2o_linklist_t link;
    zn_guard_t *g;
    h2o_socket_t *sock;
    int state, seen_state; /* last observed HTTP/1 state; seen_state is set by this tick's scan */
    bool closing;
    uint64_t last_rx, last_acked; /* tcpi_bytes_received, tcpi_bytes_acked at the last look */
    uint64_t read_since, write_since; /* ms: start of the current read phase, last write progress */
} guard_conn_t;

struct zn_guard {
    h2o_context_t *ctx;
    uint64_t read_ms, write_ms; /* 0 = rule off */
    h2o_timeout_t tick;
    h2o_timeout_entry_t entry;
    h2o_linklist_t conns;
    size_t nconns;
};

static uint64_t now_ms(void)
{
    return zn_now_mono_ns() / 1000000u;
}

static void on_sock_close(void *data)
{
    guard_conn_t *c = data;
    h2o_linklist_unlink(&c->link);
    c->g->nconns--;
    if (c->g->nconns == 0 && h2o_timeout_is_linked(&c->g->entry))
        h2o_timeout_unlink(&c->g->entry);
    free(c);
}

static int http1_state(h2o_req_t *req)
{
    /* picohttpparser fills the method of a partial request in place; only a complete header
     * block sets the version (h2o clears the request again after each response) */
    if (req->version == 0)
        return ST_HEADERS; /* refined to ST_IDLE by the caller when nothing is buffered */
    return req->processed_at.at.tv_sec == 0 ? ST_BODY : ST_RESPONSE;
}

static int note_http1(h2o_req_t *req, void *cbdata)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
    if (sock == NULL || sock->on_close.cb != on_sock_close)
        return 0;
    guard_conn_t *c = sock->on_close.data;
    c->seen_state = http1_state(req);
    if (c->seen_state == ST_HEADERS && (sock->input == NULL || sock->input->size == 0))
        c->seen_state = ST_IDLE;
    return 0;
}

static void close_conn(guard_conn_t *c, const char *why)
{
    struct linger lg = {1, 0};
    int fd = h2o_socket_get_fd(c->sock);
    c->closing = true;
    if (fd == -1)
        return;
    zn_log(ZN_LOG_INFO, "closing connection", ZN_LSTR("reason", why), ZN_LUINT("bytes_received", c->last_rx),
           ZN_LUINT("bytes_acked", c->last_acked));
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    shutdown(fd, SHUT_RDWR);
}

/* The kernel's totals for this connection; false when it cannot say (then no rule fires). */
static bool tcp_totals(guard_conn_t *c, uint64_t *rx, uint64_t *acked)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    int fd = h2o_socket_get_fd(c->sock);
    memset(&ti, 0, sizeof(ti));
    if (fd == -1 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
        return false;
    *rx = ti.tcpi_bytes_received;
    *acked = ti.tcpi_bytes_acked;
    return true;
}

/* The read rules; true when the connection is to be closed (why says which). */
static bool read_expired(guard_conn_t *c, uint64_t now, bool read_more, const char **why)
{
    int st = c->seen_state;

    /* a new phase, a body that grew, or an idle keep-alive that served requests since */
    if (st != c->state || (st == ST_IDLE && read_more) || (st == ST_BODY && read_more))
        c->read_since = now;
    c->state = st;
    if (c->g->read_ms == 0 || (st != ST_IDLE && st != ST_HEADERS && st != ST_BODY) || now - c->read_since < c->g->read_ms)
        return false;
    *why = st == ST_IDLE ? "idle timeout" : st == ST_HEADERS ? "request header timeout" : "request body stalled";
    return true;
}

/* The write rule: a write in flight, bytes queued in the kernel and none acknowledged. */
static bool write_expired(guard_conn_t *c, uint64_t now, bool acked_more)
{
    int outq = 0, fd = h2o_socket_get_fd(c->sock);
    if (!h2o_socket_is_writing(c->sock) || acked_more || fd == -1 || ioctl(fd, SIOCOUTQ, &outq) != 0 || outq <= 0) {
        c->write_since = now;
        return false;
    }
    return c->g->write_ms != 0 && now - c->write_since >= c->g->write_ms;
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    zn_guard_t *g = H2O_STRUCT_FROM_MEMBER(zn_guard_t, entry, entry);
    h2o_protocol_callbacks_t *h1 = &g->ctx->globalconf->http1.callbacks;
    uint64_t now = now_ms();
    h2o_linklist_t *node;

    for (node = g->conns.next; node != &g->conns; node = node->next)
        H2O_STRUCT_FROM_MEMBER(guard_conn_t, link, node)->seen_state = ST_UNKNOWN;
    if (h1->foreach_request != NULL)
        h1->foreach_request(g->ctx, note_http1, g);
    for (node = g->conns.next; node != &g->conns; node = node->next) {
        guard_conn_t *c = H2O_STRUCT_FROM_MEMBER(guard_conn_t, link, node);
        const char *why = NULL;
        uint64_t rx, acked;
        if (c->closing || !tcp_totals(c, &rx, &acked))
            continue;
        bool read_more = rx != c->last_rx, acked_more = acked != c->last_acked;
        c->last_rx = rx;
        c->last_acked = acked;
        if (read_expired(c, now, read_more, &why) || (write_expired(c, now, acked_more) && (why = "response write stalled")))
            close_conn(c, why);
    }
    if (g->nconns != 0)
        h2o_timeout_link(g->ctx->loop, &g->tick, &g->entry);
}

zn_err_t zn_guard_new(h2o_context_t *ctx, const zn_config_t *cfg, zn_guard_t **out)
{
    uint64_t r = cfg->http.read_timeout_ns / 1000000u, w = cfg->http.write_timeout_ns / 1000000u;
    *out = NULL;
    if (r == 0 && w == 0)
        return ZN_OK; /* off */
    zn_guard_t *g = zn_calloc(1, sizeof(*g));
    g->ctx = ctx;
    g->read_ms = r;
    g->write_ms = w;
    /* a deadline is met within an eighth of it (and within a second for long ones) */
    uint64_t shortest = r == 0 ? w : w == 0 ? r : (r < w ? r : w), period = shortest / 8;
    period = period < 25 ? 25 : period > 1000 ? 1000 : period;
    h2o_timeout_init(ctx->loop, &g->tick, period);
    g->entry.cb = on_tick;
    h2o_linklist_init_anchor(&g->conns);
    *out = g;
    return ZN_OK;
}

void zn_guard_track(zn_guard_t *g, h2o_socket_t *sock)
{
    if (g == NULL || sock->on_close.cb != NULL)
        return; /* someone else owns the hook: leave that socket to h2o's own timers */
    guard_conn_t *c = zn_calloc(1, sizeof(*c));
    uint64_t now = now_ms();
    c->g = g;
    c->sock = sock;
    c->state = ST_UNKNOWN;
    c->read_since = c->write_since = now;
    sock->on_close.cb = on_sock_close;
    sock->on_close.data = c;
    h2o_linklist_insert(&g->conns, &c->link);
    if (g->nconns++ == 0)
        h2o_timeout_link(g->ctx->loop, &g->tick, &g->entry);
}

size_t zn_guard_count(zn_guard_t *g)
{
    return g == NULL ? 0 : g->nconns;
}
