/*
 * pprof/http.c - the HTTP side every pprof endpoint shares: answers with the headers Go's
 * net/http/pprof sends (so `go tool pprof` shows our error messages as it shows Go's), query
 * parameters parsed as Go parses them, and a request-owned timer for handlers that must wait
 * (CPU profile, delta profiles, stack snapshots) without blocking their worker.
 *
 * The timer lives in the request's pool (h2o_mem_alloc_shared), so when the client goes away
 * and h2o disposes the request, the timer is unlinked and the owner's cancel callback stops
 * whatever it had started.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "pprof/internal.h"

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 413:
        return "Payload Too Large";
    default:
        return "Internal Server Error";
    }
}

static void add_header(h2o_req_t *req, const h2o_token_t *token, const char *name, const char *value)
{
    if (token != NULL)
        h2o_add_header(&req->pool, &req->res.headers, token, NULL, value, strlen(value));
    else
        h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, value, strlen(value));
}

/* Sends len bytes (already in req's pool) with status and the headers set so far. */
static void send_body(h2o_req_t *req, int status, const char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_iovec_t buf = h2o_iovec_init(body, len);

    req->res.status = status;
    req->res.reason = reason_of(status);
    req->res.content_length = len;
    add_header(req, NULL, "x-content-type-options", "nosniff");
    h2o_start_response(req, &generator);
    h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

static char *pool_copy(h2o_req_t *req, const char *p, size_t n)
{
    char *dst = h2o_mem_alloc_pool(&req->pool, n + 1);
    if (n != 0)
        memcpy(dst, p, n);
    dst[n] = '\0';
    return dst;
}

void zn_pprof_send_error(h2o_req_t *req, int status, const char *msg)
{
    size_t n = strlen(msg);
    char *body = h2o_mem_alloc_pool(&req->pool, n + 2);
    memcpy(body, msg, n);
    body[n] = '\n';
    add_header(req, H2O_TOKEN_CONTENT_TYPE, NULL, "text/plain; charset=utf-8");
    add_header(req, NULL, "x-go-pprof", "1");
    send_body(req, status, body, n + 1);
}

void zn_pprof_send_binary(h2o_req_t *req, const char *name, bool delta, const zn_buf_t *body)
{
    char disp[128];
    int n = snprintf(disp, sizeof(disp), "attachment; filename=\"%s%s\"", name, delta ? "-delta" : "");
    if (n < 0 || (size_t)n >= sizeof(disp)) {
        zn_pprof_send_error(req, 500, "profile name too long");
        return;
    }
    add_header(req, H2O_TOKEN_CONTENT_TYPE, NULL, "application/octet-stream");
    add_header(req, H2O_TOKEN_CONTENT_DISPOSITION, NULL, pool_copy(req, disp, (size_t)n));
    send_body(req, 200, pool_copy(req, body->p, body->len), body->len);
}

void zn_pprof_send_text(h2o_req_t *req, const zn_buf_t *body)
{
    add_header(req, H2O_TOKEN_CONTENT_TYPE, NULL, "text/plain; charset=utf-8");
    send_body(req, 200, pool_copy(req, body->p, body->len), body->len);
}

void zn_pprof_send_profile(h2o_req_t *req, const char *name, bool delta, const zn_pprof_profile_t *p)
{
    zn_buf_t out;
    zn_buf_init(&out, ZN_PPROF_BODY_MAX);
    zn_err_t err = zn_pprof_profile_encode(p, &out);
    if (err == ZN_OK) {
        zn_pprof_send_binary(req, name, delta, &out);
    } else {
        zn_log(ZN_LOG_ERROR, "pprof: cannot encode profile", ZN_LSTR("profile", name), ZN_LSTR("error", zn_err_str(err)));
        zn_pprof_send_error(req, 500, "failed to encode profile");
    }
    zn_buf_release(&out);
}

/* ---- query parameters ------------------------------------------------------------------------ */

bool zn_pprof_query(h2o_req_t *req, const char *name, zn_slice_t *val)
{
    if (req->input.query_at == SIZE_MAX)
        return false;
    const char *p = req->input.path.base + req->input.query_at + 1, *end = req->input.path.base + req->input.path.len;
    size_t nlen = strlen(name);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq != NULL ? eq : stop;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            *val = eq != NULL ? zn_slice(eq + 1, (size_t)(stop - eq - 1)) : zn_slice(stop, 0);
            return true;
        }
        p = stop + 1;
    }
    return false;
}

/* Go's strconv.ParseInt(s, 10, 64): optional sign, decimal digits, no overflow. */
static zn_err_t parse_int(zn_slice_t s, int64_t *out)
{
    bool neg = s.n > 0 && s.p[0] == '-';
    size_t i = s.n > 0 && (s.p[0] == '-' || s.p[0] == '+') ? 1 : 0;
    uint64_t v;
    if (zn_parse_u64(zn_slice(s.p + i, s.n - i), neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX, &v) != ZN_OK)
        return ZN_EINVAL;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return ZN_OK;
}

int64_t zn_pprof_query_int(h2o_req_t *req, const char *name)
{
    zn_slice_t v;
    int64_t n;
    if (!zn_pprof_query(req, name, &v) || parse_int(v, &n) != ZN_OK)
        return 0;
    return n;
}

zn_err_t zn_pprof_query_seconds(h2o_req_t *req, int64_t *out)
{
    zn_slice_t v;
    /* Go's FormValue: an empty value is the same as no value */
    if (!zn_pprof_query(req, "seconds", &v) || v.n == 0)
        return ZN_ENOENT;
    return parse_int(v, out);
}

int64_t zn_pprof_cap_seconds(int64_t seconds)
{
    int64_t max = zn_pprof_settings.max_seconds;
    if (seconds <= max)
        return seconds;
    zn_log(ZN_LOG_INFO, "pprof: duration capped by zinc.profiling.maxSeconds", ZN_LINT("requested", seconds),
           ZN_LINT("max", max));
    return max;
}

/* ---- request-owned timer --------------------------------------------------------------------- */

struct zn_pprof_wait {
    h2o_timeout_entry_t entry;
    h2o_req_t *req;
    h2o_context_t *ctx;
    void (*cb)(void *data);
    void (*on_cancel)(void *data);
    void *data;
    bool finished;
};

/* h2o 2.2.5 does not read an HTTP/1 connection while its request is being handled, so it does
 * not see the client leave; we peek at the socket. EOF (or an error) means nobody will read the
 * answer. Pending bytes (a pipelined request, a TLS alert) hide the EOF: the wait then runs to
 * its end. HTTP/2 streams are reset by h2o itself, which disposes the request. */
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
    zn_pprof_wait_t *w = H2O_STRUCT_FROM_MEMBER(zn_pprof_wait_t, entry, entry);
    if (w->finished)
        return;
    /* only while nothing was sent: a streaming response (trace) learns of the client from its
     * own writes, and must not get a second response started on it */
    if (w->req->_generator == NULL && peer_gone(w->req)) {
        /* as Go's handlers when the request context is cancelled: stop, answer 500 to nobody */
        w->finished = true;
        w->on_cancel(w->data);
        zn_pprof_send_error(w->req, 500, "context canceled");
        return;
    }
    w->cb(w->data);
}

static void on_dispose(void *p)
{
    zn_pprof_wait_t *w = p;
    if (h2o_timeout_is_linked(&w->entry))
        h2o_timeout_unlink(&w->entry);
    if (!w->finished) {
        w->finished = true;
        w->on_cancel(w->data);
    }
}

zn_pprof_wait_t *zn_pprof_wait_new(h2o_req_t *req, void (*on_cancel)(void *data), void *data)
{
    zn_pprof_wait_t *w = h2o_mem_alloc_shared(&req->pool, sizeof(*w), on_dispose);
    memset(w, 0, sizeof(*w));
    w->entry.cb = on_timeout;
    w->req = req;
    w->ctx = req->conn->ctx;
    w->on_cancel = on_cancel;
    w->data = data;
    return w;
}

void zn_pprof_wait_arm(zn_pprof_wait_t *w, void (*cb)(void *data))
{
    w->cb = cb;
    if (!w->finished && !h2o_timeout_is_linked(&w->entry))
        h2o_timeout_link(w->ctx->loop, &w->ctx->hundred_ms_timeout, &w->entry);
}

void zn_pprof_wait_finish(zn_pprof_wait_t *w)
{
    w->finished = true;
    if (h2o_timeout_is_linked(&w->entry))
        h2o_timeout_unlink(&w->entry);
}
