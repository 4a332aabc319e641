/*
 * common/httpc.h - an HTTP client for talking to other registries and object stores,
 * on libcurl's multi interface.
 *
 * One zn_httpc_t owns one curl multi handle and one named thread (zn_thread_create) that
 * drives every transfer of that client; nothing here blocks the caller. A request is
 * started with zn_httpc_start and then read from any single thread: the client calls the
 * request's notify callback (on its own thread) whenever something new is there - the
 * final response's headers, body bytes, the end - and the consumer then calls
 * zn_httpc_poll / zn_httpc_read. An h2o worker posts an h2o_multithread message from
 * notify; a background thread signals a condition (zn_httpc_fetch does exactly that).
 *
 * Backpressure: body bytes wait in a per-request buffer of at most opts.buffer_max bytes;
 * when it is full the transfer is paused (CURL_WRITEFUNC_PAUSE) and resumed once the
 * consumer has read half of it, so a slow consumer never makes memory grow.
 * Retries: a transfer that fails before any response header arrived (connection refused,
 * reset, timeout) is retried opts.retries times, opts.retry_delay_ms apart; once headers
 * were seen the consumer decides. TLS peers are verified unless zn_httpc_tls_new was told
 * otherwise; redirects are followed (at most 5; curl drops an Authorization header set
 * here when the host changes, which is what a registry redirecting to a CDN needs).
 * Every answer is untrusted: sizes of headers (64 KiB) and buffered bodies are capped.
 */
#ifndef ZN_HTTPC_H
#define ZN_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/zn.h"

typedef struct zn_httpc zn_httpc_t;
typedef struct zn_httpc_req zn_httpc_req_t;
typedef struct zn_httpc_tls zn_httpc_tls_t;

/* Starts the client thread, named `name` (< 16 bytes). On ZN_OK the caller owns *out and
 * frees it with zn_httpc_free after every request was released. ZN_EIO if curl cannot be set up. */
zn_err_t zn_httpc_new(const char *name, zn_httpc_t **out);
/* Stops the thread; outstanding requests are aborted (their memory is freed once released). */
void zn_httpc_free(zn_httpc_t *c);

/* TLS settings shared by many requests. verify=false turns off peer and host checks.
 * cert_dir (may be NULL) is read as zot (containers/image) reads a certDir: every *.crt is
 * a CA added to the system bundle, a *.cert with the *.key of the same base name is the
 * client certificate. On ZN_OK the caller owns *out (zn_httpc_tls_free, after the requests
 * using it are released); else ZN_EIO/ZN_EINVAL with a message in err. */
zn_err_t zn_httpc_tls_new(bool verify, const char *cert_dir, zn_httpc_tls_t **out, char *err, size_t errlen);
void zn_httpc_tls_free(zn_httpc_tls_t *t);

typedef struct zn_httpc_opts {
    const char *method;          /* "GET", "HEAD"; NULL = GET */
    const char *url;             /* absolute http(s) URL; copied */
    const char *const *headers;  /* "Name: value" lines, copied; may be NULL */
    size_t nheaders;
    const zn_httpc_tls_t *tls;   /* NULL = verify with the system bundle; borrowed */
    size_t buffer_max;           /* body bytes buffered before pausing; 0 = 1 MiB */
    unsigned retries;            /* extra attempts on failures before any header */
    uint64_t retry_delay_ms;
    uint64_t connect_timeout_ms; /* 0 = 10 s */
    uint64_t idle_timeout_ms;    /* abort when no byte arrives for this long; 0 = 60 s */
    /* Called on the client's thread, with an internal lock held, when the request has news.
     * It must only hand off (post a message, signal a condition) and never call zn_httpc_*.
     * Never called after zn_httpc_release returned. */
    void (*notify)(void *data);
    void *data;
} zn_httpc_opts_t;

/* Starts a request. On ZN_OK the caller owns *out and ends it with zn_httpc_release. */
zn_err_t zn_httpc_start(zn_httpc_t *c, const zn_httpc_opts_t *opts, zn_httpc_req_t **out);

/* What a request is at. */
typedef struct zn_httpc_state {
    bool headers;            /* the final response's status and headers are in */
    int status;              /* HTTP status when headers */
    uint64_t content_length; /* UINT64_MAX if none was given (or HEAD without one) */
    size_t buffered;         /* body bytes ready for zn_httpc_read */
    bool done;               /* the transfer ended (read the buffer out, then check err) */
    zn_err_t err;            /* when done: ZN_OK, or ZN_EIO (transport, TLS, timeout) */
    char errmsg[128];        /* when err != ZN_OK: curl's message */
} zn_httpc_state_t;
void zn_httpc_poll(zn_httpc_req_t *r, zn_httpc_state_t *st);

/* Copies the value of response header `name` (case-insensitive, first occurrence, spaces
 * trimmed) into buf, NUL-terminated. ZN_ENOENT if absent or headers not in yet, ZN_ETOOBIG
 * if it does not fit. */
zn_err_t zn_httpc_header(zn_httpc_req_t *r, const char *name, char *buf, size_t len);

/* Moves up to max buffered body bytes into buf; returns how many (0 when none yet). */
size_t zn_httpc_read(zn_httpc_req_t *r, void *buf, size_t max);

/* Aborts the request if it still runs and gives it back. NULL is a no-op. */
void zn_httpc_release(zn_httpc_req_t *r);

/* Blocking convenience for threads that may wait (never an event-loop thread): runs the
 * request to its end (opts->notify must be NULL). The body, at most max_body bytes, lands
 * in *body (zn_buf_init'ed by the caller) - more is ZN_ETOOBIG. On ZN_OK *status is set and,
 * if www_auth != NULL, the WWW-Authenticate value is copied there (empty if none). */
zn_err_t zn_httpc_fetch(zn_httpc_t *c, const zn_httpc_opts_t *opts, size_t max_body, int *status, zn_buf_t *body,
                        char *www_auth, size_t www_auth_len);

#endif
