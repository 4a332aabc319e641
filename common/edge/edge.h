/*
 * common/edge/edge.h - the HTTP edge every module that answers requests shares (server/,
 * api/, pprof/): small responses, query parameters, request and response headers, a
 * request-owned timer, and the WWW-Authenticate challenge builder. It knows h2o and HTTP,
 * nothing of OCI (api/errors.c builds the OCI error bodies on top of it) nor of pprof.
 *
 * Ownership: everything a function here allocates for a request comes from req->pool and
 * goes with the request; values handed in are copied unless the function says otherwise.
 * The pure parts (query lookup, Go-style quoting, challenges; quote.c) take pointer +
 * length and are unit-tested in test/unit/edge/.
 */
#ifndef ZN_EDGE_H
#define ZN_EDGE_H

#include <h2o.h>

#include "common/zn.h"

/* ---- responses (edge.c) -------------------------------------------------------------- */

/* The reason phrase of status ("Not Found"), "" for one without a common phrase. Static. */
const char *zn_edge_reason(int status);

/* Sends status with Content-Type content_type (NULL: none), Content-Length len and the
 * headers added so far. content_type and body (len bytes) are copied into the request's
 * pool; body may be NULL only when nothing is to be sent after the headers (HEAD, where len
 * is what GET would send). h2o sends no body for HEAD in any case. Returns 0 (h2o handler
 * convention). */
int zn_edge_send(h2o_req_t *req, int status, const char *content_type, const void *body, size_t len);

/* ---- headers (edge.c) ------------------------------------------------------------------ */

/* The value of the first request header `token`, or a slice with p == NULL. */
zn_slice_t zn_edge_header(h2o_req_t *req, const h2o_token_t *token);
/* Adds a response header. The _ref forms do not copy: value must live as long as the
 * request (a literal, or pool memory). The others copy value into the pool. name is a
 * lower-case header name and is never copied (a literal). */
void zn_edge_header_add_ref(h2o_req_t *req, const h2o_token_t *token, const char *value, size_t len);
void zn_edge_header_add_name_ref(h2o_req_t *req, const char *name, const char *value, size_t len);
void zn_edge_header_add(h2o_req_t *req, const h2o_token_t *token, const char *value);
void zn_edge_header_add_name(h2o_req_t *req, const char *name, const char *value);
/* Adds a header with a printf-formatted value (at most 1 KiB); ZN_ETOOBIG (nothing added,
 * logged) if it would be longer: a cut header would lie. */
zn_err_t zn_edge_header_addf(h2o_req_t *req, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
zn_err_t zn_edge_header_vaddf(h2o_req_t *req, const char *name, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

/* ---- query parameters -------------------------------------------------------------------- */

/* The query string of the request (after '?'), possibly empty (edge.c). */
zn_slice_t zn_edge_query(h2o_req_t *req);

/* Treat '+' in a value as a space (Go's url.ParseQuery, what pprof's handlers see); without
 * it '+' is literal (OCI values never hold spaces, and a '+' in them must survive). */
#define ZN_EDGE_QUERY_PLUS_SPACE 1u

/* Finds the nth (0-based) occurrence of key `name` in the query string q (without '?';
 * keys compare raw, byte for byte) and percent-decodes its value into out (NUL-terminated,
 * at most outlen-1 bytes; a key without '=' has the empty value). ZN_ENOENT if there is no
 * such occurrence, ZN_EINVAL if the value is malformed (bad %-escape, an encoded NUL) or
 * longer than outlen-1: never a cut value. Pure (quote.c). */
zn_err_t zn_edge_query_get(zn_slice_t q, const char *name, size_t nth, unsigned flags, char *out, size_t outlen);

/* ---- challenges (quote.c, pure) ---------------------------------------------------------- */

/* Appends s quoted as Go's strconv.Quote (what zot's %q writes): in double quotes, `"` and
 * `\` escaped, \a \b \f \n \r \t \v by name, other control bytes and invalid UTF-8 as \xNN,
 * printable Unicode as is, other runes as \uNNNN / \UNNNNNNNN. Errors of zn_buf_append. */
zn_err_t zn_edge_quote(zn_buf_t *b, zn_slice_t s);
/* Whether Go's strconv.IsPrint(r) holds: letters, marks, numbers, punctuation, symbols (as
 * of the Unicode version of print.inc) and the ASCII space. */
bool zn_edge_is_print(uint32_t r);

typedef struct zn_edge_param {
    const char *key, *value;
} zn_edge_param_t;

/* Appends a WWW-Authenticate value: `<scheme> k1=v1,k2=v2...`. With quote, each value is
 * quoted by zn_edge_quote (`Basic realm="zot"`, `Bearer realm="...",service="..."`);
 * without, it goes as is minus control bytes (zot's lower-case `basic realm=<realm>` on a
 * 200 ping), which a header must never hold. Errors of zn_buf_append. */
zn_err_t zn_edge_challenge(zn_buf_t *b, const char *scheme, const zn_edge_param_t *params, size_t n, bool quote);

/* ---- request-owned timer (edge.c) ---------------------------------------------------------- */

/* Lives in req's pool: when the request goes away (client closed, h2o disposes it) the timer
 * is unlinked and on_cancel(data) runs, unless zn_edge_timer_finish() came first. Callbacks
 * run on the request's worker. */
typedef struct zn_edge_timer zn_edge_timer_t;
zn_edge_timer_t *zn_edge_timer_new(h2o_req_t *req, void (*on_cancel)(void *data), void *data);
/* h2o 2.2.5 does not read an HTTP/1 connection while its request is handled, so it does not
 * see the client leave. With a watcher, each tick before the response started first peeks
 * at the socket: if the client is gone the timer finishes, calls on_cancel(data), then
 * gone(req), which must answer (to nobody) so that h2o ends the request. */
void zn_edge_timer_watch_peer(zn_edge_timer_t *t, void (*gone)(h2o_req_t *req));
/* Calls cb(data) once, on req's loop, after `timeout`'s delay (an h2o_timeout_t of the
 * request's loop that outlives the request, e.g. ctx->hundred_ms_timeout). A linked timer
 * or a finished one stays as it is. */
void zn_edge_timer_arm(zn_edge_timer_t *t, h2o_timeout_t *timeout, void (*cb)(void *data));
/* No more callbacks, no cancel: the owner is about to answer. */
void zn_edge_timer_finish(zn_edge_timer_t *t);
/* The request t belongs to. */
h2o_req_t *zn_edge_timer_req(zn_edge_timer_t *t);

#endif
