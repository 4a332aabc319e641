/*
 * common/httpc.c - libcurl multi interface on one named thread (contract in httpc.h).
 *
 * Callers never touch curl: zn_httpc_start queues the request and wakes the thread
 * (curl_multi_wakeup); the thread adds it to the multi handle, runs curl_multi_poll and
 * perform, and curl's callbacks fill the request's header and body buffers under the
 * client lock, then call notify. Pause/resume, aborts and retries are also commands the
 * thread applies, so every curl call happens on the client thread. A request has two
 * references, the caller's (dropped by zn_httpc_release) and the thread's (dropped once
 * its easy handle left the multi handle); the last one frees it.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/httpc.h"

#define HEADERS_MAX (64u << 10)
#define DEFAULT_BUFFER (1u << 20)
#define SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"
#define CA_FILE_MAX (4u << 20)

struct zn_httpc {
    CURLM *multi;
    pthread_t thread;
    bool started;
    zn_mutex_t lock;      /* guards cmds, stop, and the shared fields of every request */
    zn_httpc_req_t *cmds; /* requests with something for the thread to do */
    bool stop;
};

struct zn_httpc_tls {
    bool verify;
    char *ca;   /* PEM bundle: system CAs + certDir's *.crt; NULL = curl's default */
    size_t ca_len;
    char *cert; /* client certificate and key files, NULL if none */
    char *key;
};

struct zn_httpc_req {
    zn_httpc_t *c;
    CURL *easy;               /* thread only */
    struct curl_slist *hdrs;  /* thread only */
    char *url;
    char method[8];
    zn_httpc_opts_t o;        /* url/headers pointers not kept */
    /* shared, under c->lock */
    int refs;
    bool released, in_multi, paused, want_resume, want_start, queued, finished;
    zn_httpc_req_t *next_cmd;
    zn_buf_t head;            /* the latest response's header lines */
    bool got_body, headers, done;
    int status;
    uint64_t clen;
    char *buf;                /* body bytes [start, start+len) */
    size_t start, len;
    zn_err_t err;
    char errmsg[128];
    unsigned attempts;
    uint64_t retry_at;        /* mono ns; 0 = no retry pending */
    char curl_err[CURL_ERROR_SIZE];
};

static void req_unref_locked(zn_httpc_req_t *r, bool *freed)
{
    *freed = --r->refs == 0;
}

static void req_free(zn_httpc_req_t *r)
{
    zn_buf_release(&r->head);
    free(r->buf);
    free(r->url);
    free(r);
}

/* Queue r for the thread (lock held). */
static void queue_cmd(zn_httpc_req_t *r)
{
    if (r->queued)
        return;
    r->queued = true;
    r->refs++; /* the queue's, dropped by run_cmd */
    r->next_cmd = r->c->cmds;
    r->c->cmds = r;
}

static void notify(zn_httpc_req_t *r)
{
    if (!r->released && r->o.notify != NULL)
        r->o.notify(r->o.data);
}

/* Final headers are known once the first body byte comes, or the transfer ends. */
static void publish_headers(zn_httpc_req_t *r)
{
    long code = 0;
    curl_off_t cl = -1;
    if (r->headers)
        return;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    r->status = (int)code;
    r->clen = cl >= 0 ? (uint64_t)cl : UINT64_MAX;
    r->headers = true;
}

static size_t on_header(char *p, size_t size, size_t n, void *data)
{
    zn_httpc_req_t *r = data;
    size_t len = size * n;
    zn_mutex_lock(&r->c->lock);
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
        r->head.len = 0; /* a new response (redirect, 100 Continue): keep only the last */
    zn_err_t err = zn_buf_append(&r->head, p, len);
    bool abort = r->released;
    zn_mutex_unlock(&r->c->lock);
    return err != ZN_OK || abort ? 0 : len;
}

static size_t on_body(char *p, size_t size, size_t n, void *data)
{
    zn_httpc_req_t *r = data;
    size_t len = size * n;
    zn_mutex_lock(&r->c->lock);
    if (r->released) {
        zn_mutex_unlock(&r->c->lock);
        return 0; /* abort: CURLE_WRITE_ERROR */
    }
    r->got_body = true;
    publish_headers(r);
    if (r->o.buffer_max - r->len < len) {
        r->paused = true;
        zn_mutex_unlock(&r->c->lock);
        return CURL_WRITEFUNC_PAUSE; /* curl hands the same bytes again after the resume */
    }
    if (r->start + r->len + len > r->o.buffer_max) {
        memmove(r->buf, r->buf + r->start, r->len);
        r->start = 0;
    }
    memcpy(r->buf + r->start + r->len, p, len);
    r->len += len;
    notify(r);
    zn_mutex_unlock(&r->c->lock);
    return len;
}

static void apply_tls(CURL *e, const zn_httpc_tls_t *t)
{
    if (t == NULL)
        return;
    if (!t->verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (t->ca != NULL) {
        struct curl_blob blob = {t->ca, t->ca_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (t->cert != NULL) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, t->cert);
        curl_easy_setopt(e, CURLOPT_SSLKEY, t->key);
    }
}

/* Thread only: a fresh easy handle for an attempt. */
static bool setup_easy(zn_httpc_req_t *r)
{
    CURL *e = curl_easy_init();
    if (e == NULL)
        return false;
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->curl_err);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->o.connect_timeout_ms);
    /* idle timeout: abort below 1 byte/s for the whole period */
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)((r->o.idle_timeout_ms + 999) / 1000));
    if (strcmp(r->method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(r->method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    if (r->hdrs != NULL)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    apply_tls(e, r->o.tls);
    r->easy = e;
    return true;
}

zn_err_t zn_httpc_start(zn_httpc_t *c, const zn_httpc_opts_t *opts, zn_httpc_req_t **out)
{
    const char *m = opts->method != NULL ? opts->method : "GET";
    *out = NULL;
    if (strlen(m) >= sizeof(((zn_httpc_req_t *)0)->method) || opts->url == NULL)
        return ZN_EINVAL;
    zn_httpc_req_t *r = zn_calloc(1, sizeof(*r));
    r->c = c;
    r->o = *opts;
    r->o.url = NULL;
    r->o.headers = NULL;
    if (r->o.buffer_max == 0)
        r->o.buffer_max = DEFAULT_BUFFER;
    if (r->o.buffer_max < CURL_MAX_WRITE_SIZE)
        r->o.buffer_max = CURL_MAX_WRITE_SIZE; /* one curl chunk must always fit */
    if (r->o.connect_timeout_ms == 0)
        r->o.connect_timeout_ms = 10000;
    if (r->o.idle_timeout_ms == 0)
        r->o.idle_timeout_ms = 60000;
    memcpy(r->method, m, strlen(m) + 1); /* length checked above */
    r->url = zn_strdup(opts->url);
    r->buf = zn_malloc(r->o.buffer_max);
    zn_buf_init(&r->head, HEADERS_MAX);
    for (size_t i = 0; i < opts->nheaders; i++) {
        struct curl_slist *l = curl_slist_append(r->hdrs, opts->headers[i]);
        if (l == NULL) {
            curl_slist_free_all(r->hdrs);
            req_free(r);
            return ZN_ENOMEM;
        }
        r->hdrs = l;
    }
    r->refs = 2; /* caller + thread; queue_cmd adds the queue's */
    zn_mutex_lock(&c->lock);
    r->want_start = true;
    queue_cmd(r);
    zn_mutex_unlock(&c->lock);
    curl_multi_wakeup(c->multi);
    *out = r;
    return ZN_OK;
}

/* Thread: the transfer of r is over for good (lock not held). */
static void finish(zn_httpc_req_t *r, zn_err_t err, const char *msg)
{
    bool freed;
    if (r->finished)
        return;
    r->finished = true; /* thread-only field */
    if (r->easy != NULL) {
        if (r->in_multi)
            curl_multi_remove_handle(r->c->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    curl_slist_free_all(r->hdrs);
    r->hdrs = NULL;
    zn_mutex_lock(&r->c->lock);
    r->in_multi = false;
    r->headers = true; /* status already set by publish_headers, or 0 on a transport error */
    r->done = true;
    r->err = err;
    if (err != ZN_OK)
        if (snprintf(r->errmsg, sizeof(r->errmsg), "%s", msg) >= (int)sizeof(r->errmsg))
            memcpy(r->errmsg + sizeof(r->errmsg) - 4, "...", 4);
    notify(r);
    req_unref_locked(r, &freed);
    zn_mutex_unlock(&r->c->lock);
    if (freed)
        req_free(r);
}

/* Returns true when r waits for a retry (the thread's reference keeps it alive); else r
 * is finished and may be freed already. */
static bool on_done(zn_httpc_t *c, CURL *e, CURLcode rc)
{
    zn_httpc_req_t *r;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
    zn_mutex_lock(&c->lock);
    bool released = r->released, body = r->got_body;
    if (rc == CURLE_OK)
        publish_headers(r);
    zn_mutex_unlock(&c->lock);
    if (rc != CURLE_OK && !released && !body && r->head.len == 0 && r->attempts < r->o.retries) {
        /* nothing reached the consumer: try again after the delay, on a fresh handle */
        curl_multi_remove_handle(c->multi, e);
        curl_easy_cleanup(e);
        r->easy = NULL;
        r->in_multi = false;
        r->attempts++;
        r->retry_at = zn_now_mono_ns() + r->o.retry_delay_ms * 1000000u;
        zn_log(ZN_LOG_INFO, "httpc: request failed before any answer, retrying", ZN_LSTR("url", r->url),
               ZN_LUINT("attempt", r->attempts), ZN_LSTR("error", r->curl_err[0] != '\0' ? r->curl_err : curl_easy_strerror(rc)));
        return true;
    }
    const char *msg = r->curl_err[0] != '\0' ? r->curl_err : curl_easy_strerror(rc);
    finish(r, rc == CURLE_OK ? ZN_OK : ZN_EIO, msg);
    return false;
}

/* Thread: (re)adds r, or fails it. */
static void add(zn_httpc_t *c, zn_httpc_req_t *r)
{
    r->retry_at = 0;
    r->curl_err[0] = '\0';
    if (!setup_easy(r)) {
        finish(r, ZN_EIO, "curl_easy_init failed");
        return;
    }
    if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
        finish(r, ZN_EIO, "curl_multi_add_handle failed");
        return;
    }
    r->in_multi = true;
}

/* Thread: applies one queued command. */
static void run_cmd(zn_httpc_t *c, zn_httpc_req_t *r)
{
    zn_mutex_lock(&c->lock);
    bool released = r->released, start = r->want_start, resume = r->want_resume;
    r->want_start = r->want_resume = false;
    if (resume)
        r->paused = false;
    zn_mutex_unlock(&c->lock);
    if (released)
        finish(r, ZN_EIO, "aborted");
    else if (start)
        add(c, r);
    else if (resume && r->easy != NULL && !r->finished)
        curl_easy_pause(r->easy, CURLPAUSE_CONT); /* may call on_body at once: lock not held */
    bool freed;
    zn_mutex_lock(&c->lock);
    req_unref_locked(r, &freed);
    zn_mutex_unlock(&c->lock);
    if (freed)
        req_free(r);
}

/* Thread: requests waiting for their retry delay (rare, so a plain array). */
typedef struct retry_set {
    zn_httpc_req_t **v;
    size_t n, cap;
} retry_set_t;

static void *client_main(void *arg)
{
    zn_httpc_t *c = arg;
    retry_set_t retry = {NULL, 0, 0};
    int running = 0;

    for (;;) {
        zn_mutex_lock(&c->lock);
        bool stop = c->stop;
        zn_httpc_req_t *cmds = c->cmds;
        c->cmds = NULL;
        for (zn_httpc_req_t *r = cmds; r != NULL; r = r->next_cmd)
            r->queued = false;
        zn_mutex_unlock(&c->lock);
        for (zn_httpc_req_t *r = cmds, *next; r != NULL; r = next) {
            next = r->next_cmd;
            run_cmd(c, r);
        }
        if (stop)
            break;
        curl_multi_perform(c->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            CURL *e = m->easy_handle;
            CURLcode rc = m->data.result;
            zn_httpc_req_t *r;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
            if (on_done(c, e, rc)) {
                if (retry.n == retry.cap) {
                    retry.cap = retry.cap ? retry.cap * 2 : 8;
                    retry.v = zn_realloc(retry.v, retry.cap * sizeof(*retry.v));
                }
                zn_mutex_lock(&c->lock);
                r->refs++; /* the retry set's */
                zn_mutex_unlock(&c->lock);
                retry.v[retry.n++] = r;
            }
        }
        uint64_t now = zn_now_mono_ns(), wait_ms = 1000;
        for (size_t i = 0; i < retry.n;) {
            zn_httpc_req_t *r = retry.v[i];
            zn_mutex_lock(&c->lock);
            bool released = r->released;
            zn_mutex_unlock(&c->lock);
            if (released || r->finished || r->retry_at <= now) {
                bool freed;
                retry.v[i] = retry.v[--retry.n];
                if (!released && !r->finished)
                    add(c, r);
                zn_mutex_lock(&c->lock); /* a released one was finished by its abort command */
                req_unref_locked(r, &freed);
                zn_mutex_unlock(&c->lock);
                if (freed)
                    req_free(r);
                continue;
            }
            uint64_t ms = (r->retry_at - now) / 1000000u + 1;
            if (ms < wait_ms)
                wait_ms = ms;
            i++;
        }
        zn_thread_set_state(zn_thread_self(), ZN_THREAD_IDLE);
        curl_multi_poll(c->multi, NULL, 0, (int)wait_ms, NULL);
        zn_thread_set_state(zn_thread_self(), ZN_THREAD_RUNNING);
    }
    for (size_t i = 0; i < retry.n; i++) {
        bool freed;
        finish(retry.v[i], ZN_EIO, "client stopped");
        zn_mutex_lock(&c->lock);
        req_unref_locked(retry.v[i], &freed);
        zn_mutex_unlock(&c->lock);
        if (freed)
            req_free(retry.v[i]);
    }
    free(retry.v);
    return NULL;
}

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

zn_err_t zn_httpc_new(const char *name, zn_httpc_t **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init);
    zn_httpc_t *c = zn_calloc(1, sizeof(*c));
    zn_mutex_init(&c->lock, "httpc requests");
    *out = NULL;
    if ((c->multi = curl_multi_init()) == NULL) {
        zn_httpc_free(c);
        return ZN_EIO;
    }
    if (zn_thread_create(&c->thread, name, client_main, c) != 0) {
        zn_httpc_free(c);
        return ZN_EIO;
    }
    c->started = true;
    *out = c;
    return ZN_OK;
}

void zn_httpc_free(zn_httpc_t *c)
{
    if (c == NULL)
        return;
    if (c->started) {
        zn_mutex_lock(&c->lock);
        c->stop = true;
        zn_mutex_unlock(&c->lock);
        curl_multi_wakeup(c->multi);
        pthread_join(c->thread, NULL);
    }
    if (c->multi != NULL)
        curl_multi_cleanup(c->multi);
    zn_mutex_destroy(&c->lock);
    free(c);
}

void zn_httpc_poll(zn_httpc_req_t *r, zn_httpc_state_t *st)
{
    memset(st, 0, sizeof(*st));
    zn_mutex_lock(&r->c->lock);
    st->headers = r->headers;
    st->status = r->status;
    st->content_length = r->headers ? r->clen : UINT64_MAX;
    st->buffered = r->len;
    st->done = r->done;
    st->err = r->err;
    if (r->done && r->err != ZN_OK)
        memcpy(st->errmsg, r->errmsg, sizeof(st->errmsg));
    zn_mutex_unlock(&r->c->lock);
}

/* The value of header `name` in the header block [p, end), or NULL. */
static const char *find_header(const char *p, const char *end, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol != NULL ? eol : end;
        if ((size_t)(le - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1, *ve = le;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = le + 1;
    }
    return NULL;
}

zn_err_t zn_httpc_header(zn_httpc_req_t *r, const char *name, char *buf, size_t len)
{
    zn_err_t err = ZN_ENOENT;
    size_t vlen;
    zn_mutex_lock(&r->c->lock);
    const char *v = r->headers ? find_header(r->head.p, r->head.p + r->head.len, name, &vlen) : NULL;
    if (v != NULL && vlen < len) {
        memcpy(buf, v, vlen);
        buf[vlen] = '\0';
        err = ZN_OK;
    } else if (v != NULL) {
        err = ZN_ETOOBIG;
    }
    zn_mutex_unlock(&r->c->lock);
    return err;
}

size_t zn_httpc_read(zn_httpc_req_t *r, void *buf, size_t max)
{
    bool wake = false;
    zn_mutex_lock(&r->c->lock);
    size_t n = r->len < max ? r->len : max;
    memcpy(buf, r->buf + r->start, n);
    r->start += n;
    r->len -= n;
    if (r->len == 0)
        r->start = 0;
    if (r->paused && !r->want_resume && r->len <= r->o.buffer_max / 2) {
        r->want_resume = true;
        queue_cmd(r);
        wake = true;
    }
    zn_mutex_unlock(&r->c->lock);
    if (wake)
        curl_multi_wakeup(r->c->multi);
    return n;
}

void zn_httpc_release(zn_httpc_req_t *r)
{
    bool freed;
    if (r == NULL)
        return;
    zn_httpc_t *c = r->c;
    zn_mutex_lock(&c->lock);
    r->released = true;
    if (!r->done)
        queue_cmd(r);
    req_unref_locked(r, &freed);
    zn_mutex_unlock(&c->lock);
    if (freed)
        req_free(r);
    else
        curl_multi_wakeup(c->multi);
}

/* ---- blocking fetch ------------------------------------------------------------------- */

struct waiter {
    zn_mutex_t m;
    zn_cond_t cv;
    bool news;
};

static void wake_waiter(void *data)
{
    struct waiter *w = data;
    zn_mutex_lock(&w->m);
    w->news = true;
    zn_cond_signal(&w->cv);
    zn_mutex_unlock(&w->m);
}

zn_err_t zn_httpc_fetch(zn_httpc_t *c, const zn_httpc_opts_t *opts, size_t max_body, int *status, zn_buf_t *body,
                        char *www_auth, size_t www_auth_len)
{
    struct waiter w = {.news = false};
    zn_httpc_opts_t o = *opts;
    zn_httpc_req_t *r;
    zn_httpc_state_t st;
    char chunk[16384];
    zn_err_t err;

    zn_mutex_init(&w.m, "httpc fetch");
    zn_cond_init(&w.cv);
    o.notify = wake_waiter;
    o.data = &w;
    if ((err = zn_httpc_start(c, &o, &r)) != ZN_OK)
        goto done;
    for (;;) {
        size_t n;
        while ((n = zn_httpc_read(r, chunk, sizeof(chunk))) > 0) {
            if (body->len + n > max_body || zn_buf_append(body, chunk, n) != ZN_OK) {
                err = ZN_ETOOBIG;
                goto done;
            }
        }
        zn_httpc_poll(r, &st);
        if (st.done && st.buffered == 0)
            break;
        zn_mutex_lock(&w.m);
        while (!w.news)
            zn_cond_wait(&w.cv, &w.m);
        w.news = false;
        zn_mutex_unlock(&w.m);
    }
    if ((err = st.err) != ZN_OK)
        goto done;
    *status = st.status;
    if (www_auth != NULL && zn_httpc_header(r, "WWW-Authenticate", www_auth, www_auth_len) != ZN_OK && www_auth_len > 0)
        www_auth[0] = '\0';
done:
    zn_httpc_release(r);
    zn_cond_destroy(&w.cv);
    zn_mutex_destroy(&w.m);
    return err;
}

/* ---- TLS ------------------------------------------------------------------------------ */

static zn_err_t append_file(zn_buf_t *b, const char *path)
{
    char chunk[16384];
    ssize_t n;
    zn_err_t err = ZN_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return ZN_EIO;
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || zn_buf_append(b, chunk, (size_t)n) != ZN_OK) {
            err = n < 0 ? ZN_EIO : ZN_ETOOBIG;
            break;
        }
    }
    close(fd);
    if (err == ZN_OK)
        err = zn_buf_append(b, "\n", 1);
    return err;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

zn_err_t zn_httpc_tls_new(bool verify, const char *cert_dir, zn_httpc_tls_t **out, char *err, size_t errlen)
{
    zn_httpc_tls_t *t = zn_calloc(1, sizeof(*t));
    char path[4096];
    zn_buf_t ca;
    DIR *d = NULL;
    zn_err_t e = ZN_OK;
    bool any_ca = false;

    t->verify = verify;
    *out = NULL;
    zn_buf_init(&ca, CA_FILE_MAX);
    if (cert_dir != NULL && (d = opendir(cert_dir)) == NULL) {
        zn_errf(err, errlen, "%s: %s", cert_dir, strerror(errno));
        e = ZN_EIO;
        goto done;
    }
    if (d != NULL && access(SYSTEM_CA, R_OK) == 0 && (e = append_file(&ca, SYSTEM_CA)) != ZN_OK) {
        zn_errf(err, errlen, "%s: cannot read", SYSTEM_CA); /* certDir adds to the system CAs, as in zot */
        goto done;
    }
    for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;) {
        if (snprintf(path, sizeof(path), "%s/%s", cert_dir, de->d_name) >= (int)sizeof(path))
            continue;
        if (ends_with(de->d_name, ".crt")) {
            if ((e = append_file(&ca, path)) != ZN_OK) {
                zn_errf(err, errlen, "%s: cannot read", path);
                goto done;
            }
            any_ca = true;
        } else if (ends_with(de->d_name, ".cert")) {
            char key[4096];
            int n = snprintf(key, sizeof(key), "%.*s.key", (int)(strlen(path) - 5), path);
            if (n < 0 || n >= (int)sizeof(key) || access(key, R_OK) != 0) {
                zn_errf(err, errlen, "%s: no matching .key file", path);
                e = ZN_EINVAL;
                goto done;
            }
            free(t->cert);
            free(t->key);
            t->cert = zn_strdup(path);
            t->key = zn_strdup(key);
        }
    }
    if (any_ca)
        t->ca = zn_buf_detach(&ca, &t->ca_len);
done:
    if (d != NULL)
        closedir(d);
    zn_buf_release(&ca);
    if (e != ZN_OK) {
        zn_httpc_tls_free(t);
        return e;
    }
    *out = t;
    return ZN_OK;
}

void zn_httpc_tls_free(zn_httpc_tls_t *t)
{
    if (t == NULL)
        return;
    free(t->ca);
    free(t->cert);
    free(t->key);
    free(t);
}
