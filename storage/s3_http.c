/*
 * storage/s3_http.c - the S3 driver's HTTP client: one signed request at a time on the
 * calling thread, through a libcurl easy handle taken from a small pool (so connections are
 * kept alive between requests), with bounded retries. Everything the server sends is
 * untrusted: bodies go into bounded buffers, headers are parsed with limits, and XML is
 * read with a cursor that never runs past the body.
 */
#include <assert.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "storage/s3.h"

#define POOL_MAX 16
#define URL_MAX 4096

/* A pooled easy handle and the socket its connection uses (tracked through curl's open and
 * close socket callbacks, so it is never a descriptor curl has closed). */
typedef struct s3_conn {
    CURL *c;
    curl_socket_t fd;
} s3_conn_t;

struct s3_pool {
    zn_mutex_t lock; /* guards idle / nidle */
    s3_conn_t *idle[POOL_MAX];
    size_t nidle;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

s3_pool_t *s3_pool_new(void)
{
    pthread_once(&curl_once, curl_init_once);
    s3_pool_t *p = zn_calloc(1, sizeof(*p));
    zn_mutex_init(&p->lock, "storage.s3.pool");
    return p;
}

static void conn_free(s3_conn_t *k)
{
    curl_easy_cleanup(k->c); /* closes its connections through on_close_socket */
    free(k);
}

void s3_pool_free(s3_pool_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nidle; i++)
        conn_free(p->idle[i]);
    zn_mutex_destroy(&p->lock);
    free(p);
}

static curl_socket_t on_open_socket(void *data, curlsocktype purpose, struct curl_sockaddr *a)
{
    s3_conn_t *k = data;
    (void)purpose;
    curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd != CURL_SOCKET_BAD)
        k->fd = fd;
    return fd;
}

static int on_close_socket(void *data, curl_socket_t fd)
{
    s3_conn_t *k = data;
    if (k->fd == fd)
        k->fd = CURL_SOCKET_BAD;
    return close(fd);
}

/* The callbacks are set once per handle and survive curl_easy_reset only if set again. */
static void conn_hooks(s3_conn_t *k)
{
    curl_easy_setopt(k->c, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(k->c, CURLOPT_OPENSOCKETDATA, k);
    curl_easy_setopt(k->c, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(k->c, CURLOPT_CLOSESOCKETDATA, k);
}

static s3_conn_t *pool_take(s3_pool_t *p)
{
    s3_conn_t *k = NULL;
    zn_mutex_lock(&p->lock);
    if (p->nidle > 0)
        k = p->idle[--p->nidle];
    zn_mutex_unlock(&p->lock);
    if (k == NULL) {
        k = zn_calloc(1, sizeof(*k));
        k->fd = CURL_SOCKET_BAD;
        if ((k->c = curl_easy_init()) == NULL) {
            free(k);
            return NULL;
        }
    }
    curl_easy_reset(k->c);
    conn_hooks(k);
    return k;
}

static void pool_give(s3_pool_t *p, s3_conn_t *k)
{
    zn_mutex_lock(&p->lock);
    if (p->nidle < POOL_MAX) {
        p->idle[p->nidle++] = k;
        k = NULL;
    }
    zn_mutex_unlock(&p->lock);
    if (k != NULL)
        conn_free(k);
}

void s3_req_hdr(s3_req_t *r, const char *name, const char *value)
{
    assert(r->nhdrs < S3_MAX_HDRS); /* our own call sites add at most a few */
    r->hdrs[r->nhdrs++] = (st_s3_hdr_t){name, value};
}

/* ---- response sinks ------------------------------------------------------------------------- */

typedef struct xfer {
    s3_req_t *r;
    const curl_socket_t *fd; /* the connection's socket (s3_conn_t) */
    zn_buf_t err; /* a failed request's body (S3's <Error>), bounded */
    bool overflow, too_big;
    const char *upload; /* request body cursor */
    size_t upload_left;
} xfer_t;

static size_t on_body(char *p, size_t size, size_t n, void *data)
{
    xfer_t *x = data;
    s3_req_t *r = x->r;
    size_t len = size * n;
    if (r->status < 200 || r->status > 299) {
        if (zn_buf_append(&x->err, p, len) != ZN_OK) {
            /* past S3_ERRBODY_MAX: the <Code> is at the top, the rest is dropped */
        }
        return len;
    }
    if (r->out != NULL) {
        if (zn_buf_append(r->out, p, len) != ZN_OK) {
            x->too_big = true;
            return 0; /* aborts the transfer */
        }
        return len;
    }
    if (r->dst != NULL) {
        if (len > r->dst_cap - r->got) {
            x->overflow = true;
            return 0;
        }
        memcpy(r->dst + r->got, p, len);
        r->got += len;
        return len;
    }
    return len; /* a body nobody asked for (e.g. CompleteMultipartUpload's) is dropped */
}

static size_t on_upload(char *p, size_t size, size_t n, void *data)
{
    xfer_t *x = data;
    size_t len = size * n < x->upload_left ? size * n : x->upload_left;
    memcpy(p, x->upload, len);
    x->upload += len;
    x->upload_left -= len;
    return len;
}

/* "HTTP/1.1 200 OK" status lines reset per-response state (redirects are off, but a
 * 100 Continue comes before the real answer). */
static bool hdr_is(const char *p, size_t n, const char *name, const char **val, size_t *vlen)
{
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(p, name, nl) != 0 || p[nl] != ':')
        return false;
    const char *v = p + nl + 1, *end = p + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    *val = v;
    *vlen = (size_t)(end - v);
    return true;
}

static uint64_t parse_http_date(const char *v, size_t n)
{
    char buf[64];
    struct tm tm;
    if (n >= sizeof(buf))
        return 0;
    memcpy(buf, v, n);
    buf[n] = '\0';
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == NULL || *end != '\0')
        return 0;
    time_t t = timegm(&tm);
    return t < 0 ? 0 : (uint64_t)t * 1000000000ull;
}

static size_t on_header(char *p, size_t size, size_t n, void *data)
{
    xfer_t *x = data;
    s3_req_t *r = x->r;
    size_t len = size * n;
    const char *v;
    size_t vn;
    uint64_t u;

    if ((len == 2 && p[0] == '\r' && p[1] == '\n') || (len == 1 && p[0] == '\n')) {
        /* The end of the headers. RGW (beast, without tcp_nodelay) writes its headers and
         * its body as two segments under Nagle: the body waits for the ACK of the headers,
         * which Linux delays ~40 ms. Asking for a quick ACK now sends the pending one at once
         * (it also leaves delayed-ACK mode for a few segments). It measured 120 -> 2 ms for a
         * small GET; on S3 itself it changes nothing. Best effort. */
        if (x->fd != NULL && *x->fd != CURL_SOCKET_BAD) {
            int one = 1;
            (void)setsockopt(*x->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
        }
    } else if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', len);
        r->status = 0;
        if (sp != NULL && (size_t)(p + len - (sp + 1)) >= 3 && zn_parse_u64(zn_slice(sp + 1, 3), 999, &u) == ZN_OK)
            r->status = (long)u;
        r->etag.len = 0;
        r->has_length = false;
        r->total = 0;
    } else if (hdr_is(p, len, "etag", &v, &vn)) {
        if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') { /* RGW matches If-Match against the bare value */
            v++;
            vn -= 2;
        }
        if (vn < sizeof(r->etag.v)) {
            memcpy(r->etag.v, v, vn);
            r->etag.len = vn;
        }
    } else if (hdr_is(p, len, "content-length", &v, &vn)) {
        r->has_length = zn_parse_u64(zn_slice(v, vn), UINT64_MAX / 2, &r->length) == ZN_OK;
    } else if (hdr_is(p, len, "last-modified", &v, &vn)) {
        r->mtime_ns = parse_http_date(v, vn);
    } else if (hdr_is(p, len, "content-range", &v, &vn)) {
        const char *slash = memchr(v, '/', vn);
        if (slash != NULL && zn_parse_u64(zn_slice(slash + 1, vn - (size_t)(slash + 1 - v)), UINT64_MAX / 2, &u) == ZN_OK)
            r->total = u;
    } else if (hdr_is(p, len, "x-amz-meta-zinc-parts", &v, &vn)) {
        r->has_zinc_parts = zn_parse_u64(zn_slice(v, vn), 100000, &r->zinc_parts) == ZN_OK;
    } else if (hdr_is(p, len, "x-amz-meta-zinc-sha256", &v, &vn)) {
        r->has_zinc_sha256 = vn < sizeof(r->zinc_sha256);
        if (r->has_zinc_sha256) {
            memcpy(r->zinc_sha256, v, vn);
            r->zinc_sha256[vn] = '\0';
        }
    } else if (hdr_is(p, len, "retry-after", &v, &vn)) {
        if (zn_parse_u64(zn_slice(v, vn), 3600, &u) == ZN_OK)
            r->retry_after = (unsigned)u;
    }
    return len;
}

/* ---- XML ------------------------------------------------------------------------------------ */

bool s3_xml_next(const char **p, const char *end, const char *tag, zn_slice_t *val)
{
    char open[80], close[80];
    int on = snprintf(open, sizeof(open), "<%s>", tag), cn = snprintf(close, sizeof(close), "</%s>", tag);
    if (on < 0 || (size_t)on >= sizeof(open) || cn < 0 || (size_t)cn >= sizeof(close) || *p >= end)
        return false;
    const char *a = memmem(*p, (size_t)(end - *p), open, (size_t)on);
    if (a == NULL)
        return false;
    a += on;
    const char *b = memmem(a, (size_t)(end - a), close, (size_t)cn);
    if (b == NULL)
        return false;
    *val = zn_slice(a, (size_t)(b - a));
    *p = b + cn;
    return true;
}

zn_err_t s3_xml_text(zn_slice_t v, char *buf, size_t cap)
{
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t o = 0;
    for (size_t i = 0; i < v.n;) {
        char c = v.p[i];
        size_t adv = 1;
        if (c == '&') {
            size_t k;
            for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
                size_t el = strlen(ents[k].ent);
                if (v.n - i >= el && memcmp(v.p + i, ents[k].ent, el) == 0) {
                    c = ents[k].c;
                    adv = el;
                    break;
                }
            }
            if (k == sizeof(ents) / sizeof(ents[0]))
                return ZN_EINVAL;
        }
        if (o + 1 >= cap)
            return ZN_EINVAL;
        buf[o++] = c;
        i += adv;
    }
    if (cap == 0)
        return ZN_EINVAL;
    buf[o] = '\0';
    return ZN_OK;
}

/* ---- one request ------------------------------------------------------------------------------ */

/* path = "/<bucket>/<key>" (path style) or "/<key>", encoded. */
static zn_err_t build_path(s3_t *s, const s3_req_t *r, zn_buf_t *path)
{
    zn_err_t err = ZN_OK;
    if (s->path_style)
        err = zn_buf_printf(path, "/%s", s->bucket);
    if (err == ZN_OK)
        err = zn_buf_append(path, "/", 1);
    if (err == ZN_OK && r->key != NULL) {
        if ((err = st_s3_uri_encode(path, s->prefix, strlen(s->prefix), true)) == ZN_OK)
            err = st_s3_uri_encode(path, r->key, strlen(r->key), true);
    }
    return err;
}

static bool retryable(const s3_req_t *r, CURLcode cc)
{
    if (cc != CURLE_OK)
        return cc == CURLE_COULDNT_CONNECT || cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR ||
               cc == CURLE_GOT_NOTHING || cc == CURLE_PARTIAL_FILE;
    return r->status == 500 || r->status == 502 || r->status == 503 || r->status == 504 || r->status == 429;
}

static zn_err_t map_status(const s3_req_t *r)
{
    switch (r->status) {
    case 404:
        return ZN_ENOENT;
    case 412:
        return ST_ECONFLICT;
    case 416:
        return ZN_ERANGE;
    case 401:
    case 403:
        return ZN_EDENIED;
    case 429:
    case 503:
        return ZN_EAGAIN;
    default:
        return strcmp(r->code, "SlowDown") == 0 ? ZN_EAGAIN : ZN_EIO;
    }
}

void s3_stop_at(s3_t *s, uint64_t deadline_ns)
{
    atomic_store(&s->stop_at_ns, deadline_ns != 0 ? deadline_ns : 1);
}

static bool past_stop(s3_t *s)
{
    uint64_t t = atomic_load(&s->stop_at_ns);
    return t != 0 && zn_now_mono_ns() >= t;
}

/* libcurl calls it often while bytes move and about once a second while a server stalls. */
static int on_progress(void *p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return past_stop(p) ? 1 : 0; /* nonzero: CURLE_ABORTED_BY_CALLBACK */
}

static CURLcode attempt(s3_t *s, CURL *c, s3_req_t *r, const char *url, const char *path, xfer_t *x)
{
    char date[17], auth[ST_S3_AUTH_MAX], phash[65], line[1024];
    st_s3_hdr_t h[S3_MAX_HDRS + 3];
    struct curl_slist *list = NULL, *l;
    CURLcode cc = CURLE_OUT_OF_MEMORY;

    st_s3_amz_date(time(NULL), date);
    /* the body is in memory, so sign it: the server checks it arrived intact */
    st_s3_sha256_hex(r->body != NULL ? r->body : "", r->body_len, phash);
    size_t n = 0;
    h[n++] = (st_s3_hdr_t){"host", s->host};
    h[n++] = (st_s3_hdr_t){"x-amz-content-sha256", phash};
    h[n++] = (st_s3_hdr_t){"x-amz-date", date};
    for (size_t i = 0; i < r->nhdrs; i++)
        h[n++] = r->hdrs[i];
    st_s3_sign_t sg = {s->access_key, s->secret_key, s->region, "s3", r->method, path, r->query, h, n, phash, date};
    if (st_s3_sign(&sg, auth, sizeof(auth)) != ZN_OK)
        return CURLE_BAD_FUNCTION_ARGUMENT;
    for (size_t i = 1; i < n; i++) { /* curl sets Host itself from the URL */
        int k = snprintf(line, sizeof(line), "%s: %s", h[i].name, h[i].value);
        if (k < 0 || (size_t)k >= sizeof(line) || (l = curl_slist_append(list, line)) == NULL)
            goto done;
        list = l;
    }
    int k = snprintf(line, sizeof(line), "authorization: %s", auth);
    if (k < 0 || (size_t)k >= sizeof(line) || (l = curl_slist_append(list, line)) == NULL)
        goto done;
    list = l;
    /* no "Expect: 100-continue" round trip; no default content type on PUT/POST */
    if ((l = curl_slist_append(list, "expect:")) == NULL || (list = l, (l = curl_slist_append(list, "content-type:")) == NULL))
        goto done;
    list = l;

    r->status = 0;
    r->got = 0;
    r->etag.len = 0;
    r->has_length = false;
    r->mtime_ns = 0;
    r->total = 0;
    r->code[0] = '\0';
    r->retry_after = 0;
    r->has_zinc_parts = false;
    r->has_zinc_sha256 = false;
    if (r->out != NULL)
        r->out->len = 0;
    x->err.len = 0;
    x->overflow = x->too_big = false;
    x->upload = r->body;
    x->upload_left = r->body_len;

    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    /* a stalled server: less than 1 KiB/s for 60 s ends the attempt */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    /* shutdown: a transfer still running at the stop deadline is aborted */
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (s->skipverify) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_upload);
        curl_easy_setopt(c, CURLOPT_READDATA, x);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
    } else if (strcmp(r->method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
    }
    cc = curl_easy_perform(c);
    long st = 0;
    if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st) == CURLE_OK && st != 0)
        r->status = st;
done:
    curl_slist_free_all(list);
    return cc;
}

/* S3's <Error><Code>...</Code> into r->code. */
static void error_code(s3_req_t *r, const zn_buf_t *body)
{
    const char *p = body->p;
    zn_slice_t v;
    if (p != NULL && s3_xml_next(&p, body->p + body->len, "Code", &v) && s3_xml_text(v, r->code, sizeof(r->code)) == ZN_OK)
        return;
    r->code[0] = '\0';
}

static void backoff(unsigned attempt_no, unsigned retry_after)
{
    /* 50 ms, 200 ms, 800 ms, plus up to 50% jitter; a server's Retry-After is honoured up
     * to 2 s, longer ones end the retries (the API passes ZN_EAGAIN on as 503). The driver
     * may block by contract (ST_DRV_MAY_BLOCK): this never runs on an event loop. */
    uint64_t ms = 50ull << (2 * attempt_no);
    if (retry_after > 0)
        ms = retry_after * 1000ull;
    ms += zn_now_mono_ns() % (ms / 2 + 1);
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

zn_err_t s3_do(s3_t *s, s3_req_t *r)
{
    zn_err_t err = ZN_EIO;
    zn_buf_t path;
    char url[URL_MAX];
    xfer_t x = {.r = r};
    s3_conn_t *k = NULL;

    zn_buf_init(&path, URL_MAX - 256);
    zn_buf_init(&x.err, S3_ERRBODY_MAX);
    if (build_path(s, r, &path) != ZN_OK) {
        err = ZN_EINVAL;
        goto done;
    }
    int n = snprintf(url, sizeof(url), "%s%s%s%s", s->base_url, path.p, r->query[0] != '\0' ? "?" : "", r->query);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        err = ZN_EINVAL;
        goto done;
    }
    if ((k = pool_take(s->pool)) == NULL) {
        err = ZN_ENOMEM;
        goto done;
    }
    for (unsigned i = 0; i < S3_ATTEMPTS; i++) {
        x.fd = &k->fd;
        if (past_stop(s)) {
            err = ZN_EAGAIN; /* shutting down, past the grace period: no new request */
            goto done;
        }
        CURLcode cc = attempt(s, k->c, r, url, path.p, &x);
        if (cc == CURLE_ABORTED_BY_CALLBACK) {
            zn_log(ZN_LOG_WARN, "s3 request aborted: shutting down and the grace period is over", ZN_LSTR("method", r->method),
                   ZN_LSTR("key", r->key != NULL ? r->key : ""));
            err = ZN_EAGAIN;
            goto done;
        }
        if (cc == CURLE_OK && r->status >= 200 && r->status <= 299) {
            err = ZN_OK;
            goto done;
        }
        if (x.too_big) {
            err = ZN_ETOOBIG;
            goto done;
        }
        if (x.overflow) {
            err = ZN_EIO; /* more bytes than asked for: not a server we can trust with this */
            goto done;
        }
        if (cc == CURLE_OK)
            error_code(r, &x.err);
        bool again = retryable(r, cc) || strcmp(r->code, "SlowDown") == 0;
        err = cc != CURLE_OK ? ZN_EIO : map_status(r);
        if (cc != CURLE_OK && again)
            err = ZN_EAGAIN; /* unreachable after every retry: as throttled, try later */
        if (!again || i + 1 == S3_ATTEMPTS || r->retry_after > 2 || atomic_load(&s->stop_at_ns) != 0)
            goto done; /* (no retries once shutdown began: its grace period is shorter) */
        backoff(i, r->retry_after);
    }
done:
    if (k != NULL)
        pool_give(s->pool, k);
    zn_buf_release(&path);
    zn_buf_release(&x.err);
    return err;
}

zn_err_t s3_presign_get(s3_t *s, const char *key, unsigned expires, char **url)
{
    zn_buf_t path;
    char date[17];
    s3_req_t r = {.method = "GET", .key = key, .query = ""};

    *url = NULL;
    zn_buf_init(&path, URL_MAX - 256);
    zn_err_t err = build_path(s, &r, &path);
    if (err == ZN_OK) {
        st_s3_amz_date(time(NULL), date);
        st_s3_sign_t sg = {.access_key = s->access_key, .secret_key = s->secret_key, .region = s->region, .service = "s3",
                           .method = "GET", .path = path.p, .query = "", .amz_date = date};
        err = st_s3_presign(&sg, s->base_url, expires, url);
    }
    zn_buf_release(&path);
    return err;
}
