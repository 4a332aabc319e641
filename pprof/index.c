/*
 * pprof/index.c - the routes under /v2/_zot/pprof/ and the small endpoints: the HTML index
 * (rows from the registry with live counts), cmdline and symbol, all shaped like Go's
 * net/http/pprof so `go tool pprof` and a browser see what they expect from a Go server.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pprof/internal.h"
#include "pprof/pprof.h"

#define SYMBOL_BODY_MAX (1u << 20)
#define CMDLINE_MAX (64u << 10)

/* ---- index --------------------------------------------------------------------------------- */

#define PREFIX_ZOT "/v2/_zot/pprof/"
#define PREFIX_DEBUG "/debug/pprof/"

/* The prefix a request came under: the debug listener's Go-style one or zot's. */
static const char *prefix_of(h2o_req_t *req)
{
    return req->input.path.len >= 6 && memcmp(req->input.path.base, "/debug", 6) == 0 ? PREFIX_DEBUG : PREFIX_ZOT;
}

static zn_err_t write_index(zn_buf_t *b, const char *prefix)
{
    zn_err_t err = zn_buf_printf(b,
                                 "<html>\n<head>\n<title>%s</title>\n<style>\n.profile-name{\n"
                                 "\tdisplay:inline-block;\n\twidth:6rem;\n}\n</style>\n</head>\n<body>\n"
                                 "%s<br>\n<br>\nTypes of profiles available:\n<table>\n"
                                 "<thead><td>Count</td><td>Profile</td></thead>\n",
                                 prefix, prefix);
    for (size_t i = 0; err == ZN_OK && zn_pprof_defs[i] != NULL; i++) {
        const zn_pprof_def_t *d = zn_pprof_defs[i];
        if (d->in_index)
            err = zn_buf_printf(b, "<tr><td>%d</td><td><a href='%s?debug=1'>%s</a></td></tr>\n",
                                d->count != NULL ? d->count() : 0, d->name, d->name);
    }
    if (err == ZN_OK)
        err = zn_buf_printf(b, "</table>\n<a href=\"goroutine?debug=2\">full goroutine stack dump</a>\n<br>\n<p>\n"
                               "Profile Descriptions:\n<ul>\n");
    for (size_t i = 0; err == ZN_OK && zn_pprof_defs[i] != NULL; i++) {
        const zn_pprof_def_t *d = zn_pprof_defs[i];
        if (d->in_index)
            err = zn_buf_printf(b, "<li><div class=profile-name>%s: </div> %s</li>\n", d->name, d->desc);
    }
    if (err == ZN_OK)
        err = zn_buf_printf(b, "</ul>\n</p>\n</body>\n</html>\n");
    return err;
}

static int on_index(h2o_req_t *req, zn_reqctx_t *ctx)
{
    zn_buf_t b;
    zn_buf_init(&b, 64 << 10);
    if (write_index(&b, prefix_of(req)) != ZN_OK) {
        zn_pprof_send_error(req, 500, "failed to write index");
    } else {
        zn_pprof_send_html(req, 200, b.p, b.len);
    }
    zn_buf_release(&b);
    return 0;
}

/* Links on the index are relative, so the directory needs its slash (as Go's ServeMux redirects). */
static int on_redirect(h2o_req_t *req, zn_reqctx_t *ctx)
{
    const char *prefix = prefix_of(req);
    char *body = h2o_mem_alloc_pool(&req->pool, 64);
    int n = snprintf(body, 64, "<a href=\"%s\">Moved Permanently</a>.\n", prefix);
    if (n < 0 || n >= 64) {
        zn_pprof_send_error(req, 500, "redirect too long");
        return 0;
    }
    /* by hand: h2o_send_redirect drops the headers set before it (nosniff) */
    zn_edge_header_add_ref(req, H2O_TOKEN_LOCATION, prefix, strlen(prefix));
    zn_pprof_send_html(req, 301, body, (size_t)n);
    return 0;
}

static int on_named(h2o_req_t *req, zn_reqctx_t *ctx)
{
    const zn_pprof_def_t *def = ctx->nparams > 0 ? zn_pprof_def_find(ctx->params[0]) : NULL;
    if (def == NULL) {
        zn_pprof_send_error(req, 404, "Unknown profile");
        return 0;
    }
    return def->handler != NULL ? def->handler(req, def) : zn_pprof_serve_snapshot(req, def);
}

static const zn_route_def_t routes[] = {
    {"*", "/v2/_zot/pprof", "pprof", on_redirect, 0, -1, ZN_ROUTE_ADMIN},
    {"*", "/v2/_zot/pprof/", "pprof", on_index, 0, -1, ZN_ROUTE_ADMIN},
    {"*", "/v2/_zot/pprof/{name}", "pprof", on_named, 0, -1, ZN_ROUTE_ADMIN},
};

const zn_route_def_t *zn_pprof_routes(size_t *n)
{
    *n = sizeof(routes) / sizeof(routes[0]);
    return routes;
}

/* The same handlers under Go's own paths, for the debug listener (which never authenticates). */
static const zn_route_def_t debug_routes[] = {
    {"*", "/debug/pprof", "pprof", on_redirect, 0, -1, ZN_ROUTE_NOAUTH},
    {"*", "/debug/pprof/", "pprof", on_index, 0, -1, ZN_ROUTE_NOAUTH},
    {"*", "/debug/pprof/{name}", "pprof", on_named, 0, -1, ZN_ROUTE_NOAUTH},
};

const zn_route_def_t *zn_pprof_debug_routes(size_t *n)
{
    *n = sizeof(debug_routes) / sizeof(debug_routes[0]);
    return debug_routes;
}

/* ---- cmdline ---------------------------------------------------------------------------------- */

/* Read once at init: argv as the kernel has it, NUL-separated; the trailing NUL is dropped. */
static zn_buf_t cmdline;

zn_err_t zn_pprof_cmdline_init(void)
{
    zn_err_t err = zn_file_read("/proc/self/cmdline", CMDLINE_MAX, &cmdline, NULL);
    if (err != ZN_OK)
        return err;
    if (cmdline.len > 0 && cmdline.p[cmdline.len - 1] == '\0')
        cmdline.len--;
    return ZN_OK;
}

static int on_cmdline(h2o_req_t *req, const zn_pprof_def_t *def)
{
    zn_pprof_send_text(req, &cmdline);
    return 0;
}

/* ---- symbol ----------------------------------------------------------------------------------- */

/* Go's strconv.ParseUint(word, 0, 64): 0x hex, leading-0 octal, else decimal; 0 on error. */
static uint64_t parse_addr(const char *p, size_t n)
{
    unsigned base = 10;
    uint64_t v = 0;
    if (n > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16, p += 2, n -= 2;
    } else if (n > 1 && p[0] == '0') {
        base = 8, p++, n--;
    }
    for (size_t i = 0; i < n; i++) {
        char c = p[i] | 0x20;
        unsigned d = p[i] >= '0' && p[i] <= '9' ? (unsigned)(p[i] - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 99;
        if (d >= base || v > (UINT64_MAX - d) / base)
            return 0;
        v = v * base + d;
    }
    return v;
}

zn_err_t zn_pprof_symbol_write(zn_slice_t words, zn_buf_t *out)
{
    zn_err_t err = zn_buf_printf(out, "num_symbols: 1\n");
    const char *p = words.p, *end = words.p + words.n;
    while (err == ZN_OK && p < end) {
        const char *plus = memchr(p, '+', (size_t)(end - p));
        const char *stop = plus != NULL ? plus : end;
        uint64_t pc = parse_addr(p, (size_t)(stop - p));
        zn_pprof_sym_t sym;
        if (pc != 0) {
            zn_pprof_sym_lookup((uintptr_t)pc, &sym);
            if (sym.nframes > 0 && sym.frames[0].func[0] != '\0')
                err = zn_buf_printf(out, "%#" PRIx64 " %s\n", pc, sym.frames[0].func);
        }
        p = stop + 1;
    }
    return err;
}

static int on_symbol(h2o_req_t *req, const zn_pprof_def_t *def)
{
    zn_slice_t words = zn_slice("", 0);
    zn_buf_t out;

    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        if (req->entity.len > SYMBOL_BODY_MAX) {
            zn_pprof_send_error(req, 413, "request body too large");
            return 0;
        }
        if (req->entity.base != NULL)
            words = zn_slice(req->entity.base, req->entity.len);
    } else if (req->input.query_at != SIZE_MAX) {
        words = zn_slice(req->input.path.base + req->input.query_at + 1, req->input.path.len - req->input.query_at - 1);
    }
    zn_buf_init(&out, ZN_PPROF_BODY_MAX);
    if (zn_pprof_symbol_write(words, &out) == ZN_OK)
        zn_pprof_send_text(req, &out);
    else
        zn_pprof_send_error(req, 500, "failed to write symbols");
    zn_buf_release(&out);
    return 0;
}

const zn_pprof_def_t zn_pprof_def_cmdline = {
    .name = "cmdline",
    .desc = "The command line invocation of the current program",
    .in_index = true,
    .handler = on_cmdline,
};

const zn_pprof_def_t zn_pprof_def_symbol = {
    .name = "symbol",
    .desc = "Looks up the function of program counters (GET ?0xADDR+0xADDR or POST the same)",
    .in_index = false,
    .handler = on_symbol,
};
