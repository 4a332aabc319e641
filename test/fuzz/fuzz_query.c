/*
 * test/fuzz/fuzz_query.c - query strings: the API's percent-decoding lookup (api/internal.h
 * zn_api_query_get, used for digest, mount, from, n, last, artifactType), the page size `n`
 * (both the HTTP edge's reader, common/edge/quote.c zn_edge_query_get), and pprof's Go-style
 * lookup and integer parameters (pprof/http.c zn_pprof_query*, fed a request whose path holds
 * the query as h2o leaves it), and Go-style quoting of the same bytes (zn_edge_quote).
 * Input: "<name>\n<query>"; the first byte of the name also picks the output buffer size.
 */
#include <h2o.h>

#include "api/internal.h"
#include "common/edge/edge.h"
#include "fuzz.h"
#include "pprof/internal.h"

static const char *const names[] = {"digest", "mount", "from", "n", "last", "artifactType", "seconds", "debug", "gc"};

static void check_api(zn_slice_t q, const char *name, size_t outlen)
{
    char out[300];
    memset(out, 'X', sizeof(out));
    zn_err_t err = zn_api_query_get(q, name, out, outlen);
    FZ_CHECK(err == ZN_OK || err == ZN_ENOENT || err == ZN_EINVAL);
    if (err == ZN_OK) {
        FZ_CHECK(memchr(out, '\0', outlen) != NULL);
        /* a decoded value is never longer than the raw one */
        FZ_CHECK(strlen(out) <= q.n);
    }
    for (size_t i = outlen; i < sizeof(out); i++)
        FZ_CHECK(out[i] == 'X');
    if (err == ZN_OK && name[0] != '\0' && strpbrk(name, "&=") == NULL) {
        /* percent-encoding every byte of the value and asking again gives it back */
        size_t vlen = strlen(out), nlen = strlen(name);
        char *enc = malloc(nlen + 1 + 3 * vlen + 1), again[300]; /* + snprintf's NUL */
        if (enc == NULL)
            abort();
        memcpy(enc, name, nlen);
        enc[nlen] = '=';
        for (size_t i = 0; i < vlen; i++)
            snprintf(enc + nlen + 1 + 3 * i, 4, "%%%02X", (unsigned char)out[i]);
        FZ_CHECK(zn_api_query_get(zn_slice(enc, nlen + 1 + 3 * vlen), name, again, outlen) == ZN_OK);
        FZ_CHECK(strcmp(again, out) == 0);
        free(enc);
    }
    if (err == ZN_OK) {
        size_t n;
        if (zn_api_page_size_parse(out, 1000, &n) == ZN_OK)
            FZ_CHECK(n <= 1000);
    }
}

static void check_pprof(zn_slice_t q, const char *name)
{
    static const char prefix[] = "/debug/pprof/profile?";
    size_t plen = sizeof(prefix) - 1;
    char *path = malloc(plen + q.n);
    if (path == NULL)
        abort();
    memcpy(path, prefix, plen);
    memcpy(path + plen, q.p, q.n);

    h2o_req_t req;
    memset(&req, 0, sizeof(req));
    req.input.path = h2o_iovec_init(path, plen + q.n);
    req.input.query_at = plen - 1;
    char v[64];
    zn_err_t qerr = zn_pprof_query(&req, name, v, sizeof(v));
    FZ_CHECK(qerr == ZN_OK || qerr == ZN_ENOENT || qerr == ZN_EINVAL);
    if (qerr == ZN_OK) /* '+' became a space, nothing grew */
        FZ_CHECK(strlen(v) <= q.n);
    (void)zn_pprof_query_int(&req, name);
    int64_t secs;
    zn_err_t err = zn_pprof_query_seconds(&req, &secs);
    FZ_CHECK(err == ZN_OK || err == ZN_ENOENT || err == ZN_EINVAL);

    req.input.query_at = SIZE_MAX; /* no '?' at all */
    FZ_CHECK(zn_pprof_query(&req, name, v, sizeof(v)) == ZN_ENOENT);
    free(path);
}

/* Go-style quoting (common/edge/quote.c) of any bytes, as a realm lands in a challenge: the
 * result is one quoted string that a header may hold - no control byte, no bare quote or
 * backslash inside, never shorter than the input plus its quotes. */
static void check_quote(zn_slice_t s)
{
    zn_buf_t b;
    zn_buf_init(&b, 16 * s.n + 16);
    FZ_CHECK(zn_edge_quote(&b, s) == ZN_OK);
    FZ_CHECK(b.len >= s.n + 2 && b.p[0] == '"' && b.p[b.len - 1] == '"');
    for (size_t i = 1; i + 1 < b.len; i++) {
        unsigned char c = (unsigned char)b.p[i];
        FZ_CHECK(c >= 0x20 && c != 0x7f && c != '"');
        if (c == '\\') { /* an escape: \\ \" or a letter that starts one */
            FZ_CHECK(i + 2 < b.len && strchr("\\\"abfnrtvxuU", b.p[i + 1]) != NULL);
            i++;
        }
    }
    zn_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n;
    char *q, *name = fz_head_body(data, size, &q, &n);
    size_t outlen = 1 + (size != 0 ? data[0] : 0);
    /* the fuzzer's own name, and the ones zinc asks for */
    check_api(zn_slice(q, n), name, outlen);
    check_pprof(zn_slice(q, n), name);
    check_quote(zn_slice(q, n));
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        check_api(zn_slice(q, n), names[i], outlen);
        check_pprof(zn_slice(q, n), names[i]);
    }
    free(q);
    free(name);
    return 0;
}
