/*
 * common/edge/edge.c - the h2o side of the edge: small responses, headers, the query
 * string and the request-owned timer (contracts in edge.h).
 *
 * The timer lives in the request's pool (h2o_mem_alloc_shared), so when the client goes away
 * and h2o disposes the request, the timer is unlinked and the owner's cancel callback stops
 * whatever it had started.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "common/edge/edge.h"

#define HEADER_MAX 1024

const char *zn_edge_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 416:
        return "Range Not Satisfiable";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "";
    }
}

int zn_edge_send(h2o_req_t *req, int status, const char *content_type, const void *body, size_t len)
{
    req->res.status = status;
    req->res.reason = zn_edge_reason(status);
    req->res.content_length = len;
    if (content_type != NULL) /* copied: it may be the caller's (a stored manifest's media type) */
        zn_edge_header_add(req, H2O_TOKEN_CONTENT_TYPE, content_type);
    /* h2o_send_inline copies the bytes into the pool and sends none for HEAD */
    h2o_send_inline(req, body != NULL ? body : "", body != NULL ? len : 0);
    return 0;
}

/* ---- headers ------------------------------------------------------------------------------- */

zn_slice_t zn_edge_header(h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    if (i == -1)
        return zn_slice(NULL, 0);
    return zn_slice(req->headers.entries[i].value.base, req->headers.entries[i].value.len);
}

void zn_edge_header_add_ref(h2o_req_t *req, const h2o_token_t *token, const char *value, size_t len)
{
    h2o_add_header(&req->pool, &req->res.headers, token, NULL, value, len);
}

void zn_edge_header_add_name_ref(h2o_req_t *req, const char *name, const char *value, size_t len)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, value, len);
}

void zn_edge_header_add(h2o_req_t *req, const h2o_token_t *token, const char *value)
{
    h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
    zn_edge_header_add_ref(req, token, v.base, v.len);
}

void zn_edge_header_add_name(h2o_req_t *req, const char *name, const char *value)
{
    h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
    zn_edge_header_add_name_ref(req, name, v.base, v.len);
}

zn_err_t zn_edge_header_addf(h2o_req_t *req, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    zn_err_t err = zn_edge_header_vaddf(req, name, fmt, ap);
    va_end(ap);
    return err;
}

zn_err_t zn_edge_header_vaddf(h2o_req_t *req, const char *name, const char *fmt, va_list ap)
{
    char buf[HEADER_MAX];
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        zn_log(ZN_LOG_ERROR, "response header too long, not sent", ZN_LSTR("header", name));
        return ZN_ETOOBIG;
    }
    zn_edge_header_add_name_ref(req, name, h2o_strdup(&req->pool, buf, (size_t)n).base, (size_t)n);
    return ZN_OK;
}

zn_slice_t zn_edge_query(h2o_req_t *req)
{
    if (req->input.query_at == SIZE_MAX)
        return zn_slice("", 0);
    size_t at = req->input.query_at + 1;
    return zn_slice(req->input.path.base + at, req->input.path.len - at);
}

/* ---- request-owned timer ----------------------------------------------------------------------- */

struct zn_edge_timer {
    h2o_timeout_entry_t entry;
    h2o_req_t *req;
    h2o_loop_t *loop;
    void (*cb)(void *data);
    void (*on_cancel)(void *data);
    void (*gone)(h2o_req_t *req);
    void *data;
    bool finished;
};

/* EOF (or an error) on the peeked socket means nobody will read the answer. Pending bytes (a
 * pipelined request, a TLS alert) hide the EOF: the wait then runs to its end. HTTP/2 streams
 * are reset by h2o itself, which disposes the request. */
static bool peer_gone(h2o_req_t *req)
{
    h2o_socket_t *sock;
    char c;
    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL ||
        (sock = req->conn->callbacks->get_socket(req->conn)) == NULL)
        return false;
    ssize_t n = recv(h2o_socket_get_fd(sock), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void on_timeout(h2o_timeout_entry_t *entry)
{
    zn_edge_timer_t *t = H2O_STRUCT_FROM_MEMBER(zn_edge_timer_t, entry, entry);
    if (t->finished)
        return;
    /* only while nothing was sent: a streaming response learns of the client from its own
     * writes, and must not get a second response started on it */
    if (t->gone != NULL && t->req->_generator == NULL && peer_gone(t->req)) {
        t->finished = true;
        t->on_cancel(t->data);
        t->gone(t->req);
        return;
    }
    t->cb(t->data);
}

static void on_dispose(void *p)
{
    zn_edge_timer_t *t = p;
    if (h2o_timeout_is_linked(&t->entry))
        h2o_timeout_unlink(&t->entry);
    if (!t->finished) {
        t->finished = true;
        t->on_cancel(t->data);
    }
}

zn_edge_timer_t *zn_edge_timer_new(h2o_req_t *req, void (*on_cancel)(void *data), void *data)
{
    zn_edge_timer_t *t = h2o_mem_alloc_shared(&req->pool, sizeof(*t), on_dispose);
    memset(t, 0, sizeof(*t));
    t->entry.cb = on_timeout;
    t->req = req;
    t->loop = req->conn->ctx->loop;
    t->on_cancel = on_cancel;
    t->data = data;
    return t;
}

void zn_edge_timer_watch_peer(zn_edge_timer_t *t, void (*gone)(h2o_req_t *req))
{
    t->gone = gone;
}

void zn_edge_timer_arm(zn_edge_timer_t *t, h2o_timeout_t *timeout, void (*cb)(void *data))
{
    t->cb = cb;
    if (!t->finished && !h2o_timeout_is_linked(&t->entry))
        h2o_timeout_link(t->loop, timeout, &t->entry);
}

void zn_edge_timer_finish(zn_edge_timer_t *t)
{
    t->finished = true;
    if (h2o_timeout_is_linked(&t->entry))
        h2o_timeout_unlink(&t->entry);
}

h2o_req_t *zn_edge_timer_req(zn_edge_timer_t *t)
{
    return t->req;
}
