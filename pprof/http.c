/*
 * pprof/http.c - the HTTP side every pprof endpoint shares, on top of the HTTP edge
 * (common/edge): answers with the headers Go's net/http/pprof sends (so `go tool pprof`
 * shows our error messages as it shows Go's), query parameters read as Go's FormValue reads
 * them, and the request-owned timer for handlers that must wait (CPU profile, delta
 * profiles, stack snapshots, trace) without blocking their worker: the edge's timer ticking
 * every 100 ms, watching for an HTTP/1 client that left, which gets Go's "context canceled".
 */
#include <string.h>

#include "pprof/internal.h"

#define QUERY_VALUE_MAX 64 /* every value we read is a number */

/* Sends len bytes with status and the headers set so far, plus Go's nosniff. */
static void send_body(h2o_req_t *req, int status, const char *type, const char *body, size_t len)
{
    zn_edge_header_add_name_ref(req, "x-content-type-options", H2O_STRLIT("nosniff"));
    zn_edge_send(req, status, type, body, len);
}

void zn_pprof_send_error(h2o_req_t *req, int status, const char *msg)
{
    size_t n = strlen(msg);
    char *body = h2o_mem_alloc_pool(&req->pool, n + 2);
    memcpy(body, msg, n);
    body[n] = '\n';
    zn_edge_header_add_name_ref(req, "x-go-pprof", H2O_STRLIT("1"));
    send_body(req, status, "text/plain; charset=utf-8", body, n + 1);
}

void zn_pprof_send_binary(h2o_req_t *req, const char *name, bool delta, const zn_buf_t *body)
{
    char disp[128];
    int n = snprintf(disp, sizeof(disp), "attachment; filename=\"%s%s\"", name, delta ? "-delta" : "");
    if (n < 0 || (size_t)n >= sizeof(disp)) {
        zn_pprof_send_error(req, 500, "profile name too long");
        return;
    }
    zn_edge_header_add(req, H2O_TOKEN_CONTENT_DISPOSITION, disp);
    send_body(req, 200, "application/octet-stream", body->p, body->len);
}

void zn_pprof_send_text(h2o_req_t *req, const zn_buf_t *body)
{
    send_body(req, 200, "text/plain; charset=utf-8", body->p, body->len);
}

void zn_pprof_send_html(h2o_req_t *req, int status, const char *body, size_t len)
{
    send_body(req, status, "text/html; charset=utf-8", body, len);
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

zn_err_t zn_pprof_query(h2o_req_t *req, const char *name, char *out, size_t outlen)
{
    return zn_edge_query_get(zn_edge_query(req), name, 0, ZN_EDGE_QUERY_PLUS_SPACE, out, outlen);
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
    char v[QUERY_VALUE_MAX];
    int64_t n;
    if (zn_pprof_query(req, name, v, sizeof(v)) != ZN_OK || parse_int(zn_slice(v, strlen(v)), &n) != ZN_OK)
        return 0;
    return n;
}

zn_err_t zn_pprof_query_seconds(h2o_req_t *req, int64_t *out)
{
    char v[QUERY_VALUE_MAX];
    zn_err_t err = zn_pprof_query(req, "seconds", v, sizeof(v));
    /* Go's FormValue: an empty value is the same as no value */
    if (err == ZN_ENOENT || (err == ZN_OK && v[0] == '\0'))
        return ZN_ENOENT;
    return err == ZN_OK ? parse_int(zn_slice(v, strlen(v)), out) : ZN_EINVAL;
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

/* As Go's handlers when the request context is cancelled: stop, answer 500 to nobody. */
static void on_gone(h2o_req_t *req)
{
    zn_pprof_send_error(req, 500, "context canceled");
}

zn_pprof_wait_t *zn_pprof_wait_new(h2o_req_t *req, void (*on_cancel)(void *data), void *data)
{
    zn_edge_timer_t *t = zn_edge_timer_new(req, on_cancel, data);
    zn_edge_timer_watch_peer(t, on_gone);
    return t;
}

void zn_pprof_wait_arm(zn_pprof_wait_t *w, void (*cb)(void *data))
{
    zn_edge_timer_arm(w, &zn_edge_timer_req(w)->conn->ctx->hundred_ms_timeout, cb);
}

void zn_pprof_wait_finish(zn_pprof_wait_t *w)
{
    zn_edge_timer_finish(w);
}
