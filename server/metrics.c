/*
 * server/metrics.c - extensions.metrics: zot's Prometheus metrics (docs/zot.md §6) at
 * prometheus.path, in the text exposition format 0.0.4.
 *
 * Collection: the access logger calls zn_metrics_observe() once per finished request on the
 * worker thread that served it. Each thread gets its own shard (made on first use, kept in
 * thread-local storage, never freed before the zn_metrics_t) holding every counter; the
 * shard's mutex is taken by its own worker per request and by a scrape while it copies the
 * shard, so the request path never shares a lock with another worker. A scrape sums the
 * shards into a snapshot and renders it.
 *
 * Labels: method is one of the standard methods or "other" (a client cannot make new
 * series by inventing methods). repo is the router's match (zn_reqctx_t.repo) of the routes
 * under /v2/<repo>/(manifests|blobs|tags)/ - zot's rule, so not referrers - and only for a
 * valid name on a response below 400 - a client probing random names gets "N/A" - and at
 * most REPOS_MAX names per shard.
 *
 * Help texts and zot_info's value (0) are zot's. zot skips only a literal "/metrics" path;
 * zinc skips the configured one.
 *
 * zot_repo_storage_bytes: as in zot, only repositories written since start (a 2xx PUT, POST,
 * PATCH or DELETE below /v2/<repo>/) are reported. A scrape recomputes a repository's size
 * only when it was written since it was last measured (storage/usage.c walks the
 * directory), so an idle registry's scrape costs no disk access beyond /proc.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "server/server_int.h"

#define METHODS_N 10
#define CODES_N 600
#define BUCKETS_N 7
#define SHARDS_MAX 512
#define REPOS_MAX 4096
#define OUT_MAX (64u << 20)
#define NA_REPO "N/A"

static const char *const methods[METHODS_N] = {"GET",    "HEAD",    "POST",    "PUT",   "PATCH",
                                               "DELETE", "OPTIONS", "CONNECT", "TRACE", "other"};
enum { M_GET = 0, M_HEAD, M_POST, M_PUT, M_PATCH, M_DELETE };
static const double bucket_le[BUCKETS_N] = {0.05, 0.5, 1, 5, 30, 60, 600};
static const char *const bucket_txt[BUCKETS_N] = {"0.05", "0.5", "1", "5", "30", "60", "600"};

typedef struct repo_stat {
    uint64_t uploads, downloads, lat_count, writes;
    double lat_sum;
    uint64_t bytes; /* usage cache only: size measured when `writes` had this value, */
    bool present;   /* and whether the repository existed then */
} repo_stat_t;

typedef struct repo_entry {
    repo_stat_t s;
    size_t len;
    char name[]; /* NUL-terminated */
} repo_entry_t;

/* name -> stats: entries owned by the table, indexed by a zn_htab; its owner's lock guards it. */
typedef struct repo_table {
    zn_htab_t index; /* values: repo_entry_t * */
} repo_table_t;

typedef struct counters {
    uint64_t requests[METHODS_N][CODES_N];
    uint64_t buckets[METHODS_N][BUCKETS_N + 1]; /* non-cumulative; [BUCKETS_N] = above 600 */
    double lat_sum[METHODS_N];
    repo_table_t repos;
} counters_t;

typedef struct shard {
    zn_mutex_t lock; /* guards c: taken by its worker per request, by a scrape while copying */
    counters_t c;
} shard_t;

struct zn_metrics {
    char *path;
    const char *root;
    zn_route_def_t route;
    zn_mutex_t shards_lock; /* guards adding shards (once per thread) */
    shard_t *shards[SHARDS_MAX];
    _Atomic size_t nshards;
    zn_mutex_t scrape_lock; /* guards usage: one scrape measures at a time */
    repo_table_t usage;
    _Atomic int repos_full_warned;
    uint64_t id;
    zn_api_t *api; /* set before workers start */
    const zn_auth_t *auth;
};

/* A thread's shard, for the zn_metrics_t numbered `owner` (numbers are never reused, so a
 * thread never mistakes a freed collector's shard for a new one at the same address). */
static __thread struct {
    uint64_t owner;
    shard_t *shard;
} tls;
static _Atomic uint64_t last_id;

/* ---- repository table --------------------------------------------------------------------- */

struct name_key {
    const char *p;
    size_t n;
};

static bool name_eq(void *ctx, uintptr_t v)
{
    const struct name_key *k = ctx;
    const repo_entry_t *e = (const repo_entry_t *)v;
    return e->len == k->n && memcmp(e->name, k->p, k->n) == 0;
}

/* The stats of `name` (n bytes), added if missing; NULL when max names are already held. */
static repo_stat_t *table_get(repo_table_t *t, const char *name, size_t n, size_t max)
{
    struct name_key k = {name, n};
    uint64_t h = zn_hash(name, n, 0);
    uintptr_t v;
    if (zn_htab_find(&t->index, h, name_eq, &k, &v))
        return &((repo_entry_t *)v)->s;
    if (t->index.n >= max)
        return NULL;
    repo_entry_t *e = zn_calloc(1, sizeof(*e) + n + 1);
    memcpy(e->name, name, n);
    e->len = n;
    zn_htab_insert(&t->index, h, (uintptr_t)e);
    return &e->s;
}

/* The next entry of an iteration started with pos = 0, or NULL at the end. */
static repo_entry_t *table_next(const repo_table_t *t, size_t *pos)
{
    uintptr_t v;
    return zn_htab_next(&t->index, pos, &v) ? (repo_entry_t *)v : NULL;
}

static void table_release(repo_table_t *t)
{
    size_t pos = 0;
    for (repo_entry_t *e; (e = table_next(t, &pos)) != NULL;)
        free(e);
    zn_htab_release(&t->index);
}

/* ---- collection ------------------------------------------------------------------------------ */

static int method_index(zn_slice_t m)
{
    for (int i = 0; i < METHODS_N - 1; i++)
        if (zn_slice_eq(m, methods[i]))
            return i;
    return METHODS_N - 1;
}

/* zot labels /v2/<repo>/(manifests|blobs|tags)/...: every repository route but referrers. */
static bool repo_labeled_route(const zn_reqctx_t *ctx)
{
    return ctx != NULL && ctx->repo.p != NULL && strcmp(ctx->route, "referrers") != 0;
}

static shard_t *shard_of_thread(zn_metrics_t *m)
{
    if (tls.owner == m->id)
        return tls.shard;
    zn_mutex_lock(&m->shards_lock);
    size_t n = atomic_load(&m->nshards);
    shard_t *s = n < SHARDS_MAX ? zn_calloc(1, sizeof(*s)) : m->shards[0];
    if (n < SHARDS_MAX) {
        zn_mutex_init(&s->lock, "metrics.shard");
        m->shards[n] = s;
        atomic_store(&m->nshards, n + 1); /* published after the slot is filled */
    }
    zn_mutex_unlock(&m->shards_lock);
    tls.owner = m->id;
    tls.shard = s;
    return s;
}

/* The repository's stats, or N/A's when the label would be untrusted or over the limit. */
static repo_stat_t *repo_stat(zn_metrics_t *m, shard_t *s, zn_slice_t repo, bool labeled)
{
    repo_stat_t *r = labeled ? table_get(&s->c.repos, repo.p, repo.n, REPOS_MAX) : NULL;
    if (labeled && r == NULL && atomic_exchange(&m->repos_full_warned, 1) == 0)
        zn_log(ZN_LOG_WARN, "metrics: too many repositories in one worker, counting the rest as N/A", ZN_LINT("max", REPOS_MAX));
    return r != NULL ? r : table_get(&s->c.repos, NA_REPO, sizeof(NA_REPO) - 1, SIZE_MAX);
}

void zn_metrics_observe(zn_metrics_t *m, zn_slice_t method, zn_slice_t path, const zn_reqctx_t *ctx, int status,
                        double seconds)
{
    if (m == NULL || (path.n == strlen(m->path) && memcmp(path.p, m->path, path.n) == 0))
        return;
    int mi = method_index(method), b = 0;
    zn_slice_t repo = repo_labeled_route(ctx) ? ctx->repo : zn_slice(NULL, 0);
    bool labeled = repo.p != NULL && status >= 200 && status < 400 && zn_api_repo_name_valid(repo);
    bool ok = status >= 200 && status < 300;
    while (b < BUCKETS_N && seconds > bucket_le[b])
        b++;

    shard_t *s = shard_of_thread(m);
    zn_mutex_lock(&s->lock);
    s->c.requests[mi][status >= 0 && status < CODES_N ? status : 0]++;
    s->c.buckets[mi][b]++;
    s->c.lat_sum[mi] += seconds;
    repo_stat_t *r = repo_stat(m, s, repo, labeled);
    r->lat_count++;
    r->lat_sum += seconds;
    if (labeled && mi == M_GET && status == 200 && strcmp(ctx->route, "manifest_get") == 0)
        r->downloads++;
    if (labeled && mi == M_PUT && status == 201 && strcmp(ctx->route, "manifest_put") == 0)
        r->uploads++;
    if (labeled && ok && (mi == M_PUT || mi == M_POST || mi == M_PATCH || mi == M_DELETE))
        r->writes++;
    zn_mutex_unlock(&s->lock);
}

/* ---- snapshot ----------------------------------------------------------------------------------- */

typedef struct snapshot {
    counters_t c;
    repo_entry_t **sorted; /* into repos, by name */
} snapshot_t;

static void merge_shard(snapshot_t *snap, shard_t *s)
{
    zn_mutex_lock(&s->lock);
    for (int i = 0; i < METHODS_N; i++) {
        for (int c = 0; c < CODES_N; c++)
            snap->c.requests[i][c] += s->c.requests[i][c];
        for (int b = 0; b <= BUCKETS_N; b++)
            snap->c.buckets[i][b] += s->c.buckets[i][b];
        snap->c.lat_sum[i] += s->c.lat_sum[i];
    }
    size_t pos = 0;
    for (repo_entry_t *e; (e = table_next(&s->c.repos, &pos)) != NULL;) {
        repo_stat_t *r = table_get(&snap->c.repos, e->name, e->len, SIZE_MAX);
        r->uploads += e->s.uploads;
        r->downloads += e->s.downloads;
        r->lat_count += e->s.lat_count;
        r->lat_sum += e->s.lat_sum;
        r->writes += e->s.writes;
    }
    zn_mutex_unlock(&s->lock);
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(repo_entry_t *const *)a)->name, (*(repo_entry_t *const *)b)->name);
}

/* On return snap holds the sum of all shards; release with snapshot_release. */
static void snapshot_take(zn_metrics_t *m, snapshot_t *snap)
{
    memset(snap, 0, sizeof(*snap));
    for (size_t i = 0, n = atomic_load(&m->nshards); i < n; i++)
        merge_shard(snap, m->shards[i]);
    snap->sorted = zn_calloc(snap->c.repos.index.n + 1, sizeof(repo_entry_t *));
    size_t pos = 0, j = 0;
    for (repo_entry_t *e; (e = table_next(&snap->c.repos, &pos)) != NULL;)
        snap->sorted[j++] = e;
    qsort(snap->sorted, j, sizeof(repo_entry_t *), by_name);
}

static void snapshot_release(snapshot_t *snap)
{
    free(snap->sorted);
    table_release(&snap->c.repos);
}

/* ---- text format ----------------------------------------------------------------------------------- */

/* A zn_buf_t that remembers its first failure, so rendering needs no check per line. */
typedef struct out {
    zn_buf_t buf;
    zn_err_t err;
} out_t;

__attribute__((format(printf, 2, 3))) static void out_printf(out_t *o, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (o->err == ZN_OK)
        o->err = n < 0 || (size_t)n >= sizeof(tmp) ? ZN_EINVAL : zn_buf_append(&o->buf, tmp, (size_t)n);
}

/* A label value: backslash, double quote and newline escaped (text format 0.0.4). */
static void out_label_value(out_t *o, const char *s)
{
    for (; *s != '\0' && o->err == ZN_OK; s++) {
        if (*s == '\\')
            o->err = zn_buf_append(&o->buf, "\\\\", 2);
        else if (*s == '"')
            o->err = zn_buf_append(&o->buf, "\\\"", 2);
        else if (*s == '\n')
            o->err = zn_buf_append(&o->buf, "\\n", 2);
        else
            o->err = zn_buf_append(&o->buf, s, 1);
    }
}

/* The shortest decimal text that reads back as v (integers in full), or +Inf/-Inf/NaN. */
static void out_double(out_t *o, double v)
{
    char tmp[40];
    if (isnan(v) || isinf(v)) {
        out_printf(o, "%s", isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) { /* integral: never "7e+02" */
        out_printf(o, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        int n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v); /* at most 24 bytes: "-d.16digitse-308" */
        if (n < 0 || (size_t)n >= sizeof(tmp)) {
            o->err = ZN_EINVAL;
            return;
        }
        if (strtod(tmp, NULL) == v)
            break;
    }
    out_printf(o, "%s", tmp);
}

static void out_header(out_t *o, const char *name, const char *type, const char *help)
{
    out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one unlabelled sample. */
static void out_single(out_t *o, const char *name, const char *type, const char *help, double v)
{
    out_header(o, name, type, help);
    out_printf(o, "%s ", name);
    out_double(o, v);
    out_printf(o, "\n");
}

/* name{label="value"} v (counts stay exact up to 2^53) */
static void out_sample(out_t *o, const char *name, const char *label, const char *value, double v)
{
    out_printf(o, "%s{%s=\"", name, label);
    out_label_value(o, value);
    out_printf(o, "\"} ");
    out_double(o, v);
    out_printf(o, "\n");
}

/* ---- the zot families ---------------------------------------------------------------------------- */

static void render_requests(out_t *o, const snapshot_t *snap)
{
    out_header(o, "zot_http_requests_total", "counter", "Total number of http request in zot");
    for (int i = 0; i < METHODS_N; i++)
        for (int c = 0; c < CODES_N; c++)
            if (snap->c.requests[i][c] != 0)
                out_printf(o, "zot_http_requests_total{code=\"%d\",method=\"%s\"} %llu\n", c, methods[i],
                           (unsigned long long)snap->c.requests[i][c]);
}

static void render_method_latency(out_t *o, const snapshot_t *snap)
{
    const char *n = "zot_http_method_latency_seconds";
    out_header(o, n, "histogram", "Latency of serving HTTP requests");
    for (int i = 0; i < METHODS_N; i++) {
        uint64_t cum = 0;
        for (int b = 0; b <= BUCKETS_N; b++)
            cum += snap->c.buckets[i][b];
        if (cum == 0)
            continue;
        cum = 0;
        for (int b = 0; b < BUCKETS_N; b++) {
            cum += snap->c.buckets[i][b];
            out_printf(o, "%s_bucket{method=\"%s\",le=\"%s\"} %llu\n", n, methods[i], bucket_txt[b], (unsigned long long)cum);
        }
        cum += snap->c.buckets[i][BUCKETS_N];
        out_printf(o, "%s_bucket{method=\"%s\",le=\"+Inf\"} %llu\n", n, methods[i], (unsigned long long)cum);
        out_sample(o, "zot_http_method_latency_seconds_sum", "method", methods[i], snap->c.lat_sum[i]);
        out_sample(o, "zot_http_method_latency_seconds_count", "method", methods[i], cum);
    }
}

static void render_repos(out_t *o, const snapshot_t *snap)
{
    out_header(o, "zot_http_repo_latency_seconds", "summary", "Latency of serving HTTP requests");
    for (size_t i = 0; i < snap->c.repos.index.n; i++) {
        const repo_entry_t *e = snap->sorted[i];
        out_sample(o, "zot_http_repo_latency_seconds_sum", "repo", e->name, e->s.lat_sum);
        out_sample(o, "zot_http_repo_latency_seconds_count", "repo", e->name, e->s.lat_count);
    }
    out_header(o, "zot_repo_downloads_total", "counter", "Total number times an image was downloaded");
    for (size_t i = 0; i < snap->c.repos.index.n; i++)
        if (snap->sorted[i]->s.downloads != 0)
            out_sample(o, "zot_repo_downloads_total", "repo", snap->sorted[i]->name, (double)snap->sorted[i]->s.downloads);
    out_header(o, "zot_repo_uploads_total", "counter", "Total number times an image was uploaded");
    for (size_t i = 0; i < snap->c.repos.index.n; i++)
        if (snap->sorted[i]->s.uploads != 0)
            out_sample(o, "zot_repo_uploads_total", "repo", snap->sorted[i]->name, snap->sorted[i]->s.uploads);
}

/* Sizes of the repositories written since start, measured again only after a new write. */
static void render_storage(zn_metrics_t *m, out_t *o, const snapshot_t *snap)
{
    out_header(o, "zot_repo_storage_bytes", "gauge", "Storage used per zot repo");
    zn_mutex_lock(&m->scrape_lock);
    for (size_t i = 0; i < snap->c.repos.index.n; i++) {
        const repo_entry_t *e = snap->sorted[i];
        if (e->s.writes == 0)
            continue;
        repo_stat_t *c = table_get(&m->usage, e->name, e->len, SIZE_MAX);
        if (c->writes != e->s.writes) {
            zn_err_t err = zn_api_repo_usage(m->root, e->name, &c->bytes);
            /* a deleted repository is simply no longer reported; retry an I/O error next time */
            c->writes = err == ZN_OK || err == ZN_ENOENT ? e->s.writes : 0;
            c->present = err == ZN_OK;
        }
        if (c->present)
            out_sample(o, "zot_repo_storage_bytes", "repo", e->name, c->bytes);
    }
    zn_mutex_unlock(&m->scrape_lock);
}

#ifndef ZN_COMMIT
#define ZN_COMMIT ""
#endif

static void render_info(out_t *o)
{
    /* zinc is C: there is no Go version to report. zot sets this gauge to 0, so does zinc. */
    out_header(o, "zot_info", "gauge", "Server general information");
    out_printf(o, "zot_info{binaryType=\"zinc\",commit=\"%s\",goVersion=\"none\",version=\"%s\"} 0\n", ZN_COMMIT, ZN_VERSION);
}

/* client_golang's process collector, from /proc (server/metrics_proc.c). */
static void render_process(out_t *o)
{
    zn_proc_stats_t p;
    zn_proc_stats_read(&p);
    if (p.cpu_seconds >= 0)
        out_single(o, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", p.cpu_seconds);
    if (p.resident_bytes >= 0)
        out_single(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", p.resident_bytes);
    if (p.virtual_bytes >= 0)
        out_single(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", p.virtual_bytes);
    if (p.start_time >= 0)
        out_single(o, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
                   p.start_time);
    if (p.open_fds >= 0)
        out_single(o, "process_open_fds", "gauge", "Number of open file descriptors.", p.open_fds);
    if (p.max_fds >= 0)
        out_single(o, "process_max_fds", "gauge", "Maximum number of open file descriptors.", p.max_fds);
}

/* zinc's pull-through mirror (extensions.sync onDemand): requests in mirrored repositories
 * served from the store (hit) or sent upstream (miss), and how the upstream fetches ended. */
static void render_sync(zn_metrics_t *m, out_t *o)
{
    zn_api_sync_stats_t st;
    if (m->api == NULL || !zn_api_sync_stats(m->api, &st))
        return;
    out_header(o, "zinc_sync_requests_total", "counter", "Requests in mirrored repositories, by kind and hit/miss");
    out_printf(o, "zinc_sync_requests_total{kind=\"blob\",result=\"hit\"} %llu\n", (unsigned long long)st.blob_hits);
    out_printf(o, "zinc_sync_requests_total{kind=\"blob\",result=\"miss\"} %llu\n", (unsigned long long)st.blob_misses);
    out_printf(o, "zinc_sync_requests_total{kind=\"manifest\",result=\"hit\"} %llu\n", (unsigned long long)st.manifest_hits);
    out_printf(o, "zinc_sync_requests_total{kind=\"manifest\",result=\"miss\"} %llu\n", (unsigned long long)st.manifest_misses);
    out_header(o, "zinc_sync_fetches_total", "counter", "Upstream fetches of the mirror, by kind and outcome");
    out_printf(o, "zinc_sync_fetches_total{kind=\"blob\",result=\"ok\"} %llu\n", (unsigned long long)st.blob_fetched);
    out_printf(o, "zinc_sync_fetches_total{kind=\"blob\",result=\"failed\"} %llu\n", (unsigned long long)st.blob_failed);
    out_printf(o, "zinc_sync_fetches_total{kind=\"manifest\",result=\"ok\"} %llu\n", (unsigned long long)st.manifest_fetched);
    out_printf(o, "zinc_sync_fetches_total{kind=\"manifest\",result=\"failed\"} %llu\n", (unsigned long long)st.manifest_failed);
    out_printf(o, "zinc_sync_fetches_total{kind=\"manifest\",result=\"unchanged\"} %llu\n",
               (unsigned long long)st.manifest_revalidated);
    out_header(o, "zinc_sync_poll_images_total", "counter", "Images the periodic sync (pollInterval) copied or failed to copy");
    out_printf(o, "zinc_sync_poll_images_total{result=\"copied\"} %llu\n", (unsigned long long)st.poll_images_copied);
    out_printf(o, "zinc_sync_poll_images_total{result=\"failed\"} %llu\n", (unsigned long long)st.poll_images_failed);
    out_header(o, "zinc_sync_poll_rounds_total", "counter",
               "Rounds of the periodic sync that listed the upstream catalog and ended every copy they started");
    out_printf(o, "zinc_sync_poll_rounds_total %llu\n", (unsigned long long)st.poll_runs);
}

void zn_metrics_set_api(zn_metrics_t *m, zn_api_t *api)
{
    m->api = api;
}

void zn_metrics_set_auth(zn_metrics_t *m, const zn_auth_t *auth)
{
    m->auth = auth;
}

static void render_auth(zn_metrics_t *m, out_t *o)
{
    zn_auth_stats_t st;
    if (m->auth == NULL || !zn_auth_enabled(m->auth))
        return;
    zn_auth_stats(m->auth, &st);
    out_header(o, "zinc_auth_password_checks_total", "counter",
               "Basic-auth password checks: answered from the credential cache, or hashed (bcrypt etc.) with the result");
    out_printf(o, "zinc_auth_password_checks_total{result=\"cached\"} %llu\n", (unsigned long long)st.cache_hits);
    out_printf(o, "zinc_auth_password_checks_total{result=\"verified\"} %llu\n", (unsigned long long)st.verified);
    out_printf(o, "zinc_auth_password_checks_total{result=\"refused\"} %llu\n", (unsigned long long)st.refused);
}

/* ---- scrape ------------------------------------------------------------------------------------------ */

/* Renders every family into o (check o->err). */
static void render(zn_metrics_t *m, out_t *o)
{
    snapshot_t *snap = zn_malloc(sizeof(*snap)); /* ~100 KiB: not on a worker's stack */
    snapshot_take(m, snap);
    render_requests(o, snap);
    render_repos(o, snap);
    render_method_latency(o, snap);
    render_storage(m, o, snap);
    render_info(o);
    render_sync(m, o);
    render_auth(m, o);
    render_process(o);
    snapshot_release(snap);
    free(snap);
}

static int on_metrics(h2o_req_t *req, zn_reqctx_t *ctx)
{
    out_t o = {.err = ZN_OK};

    zn_buf_init(&o.buf, OUT_MAX);
    render(ctx->app, &o);
    if (o.err != ZN_OK) {
        zn_log(ZN_LOG_ERROR, "metrics: cannot render", ZN_LSTR("error", zn_err_str(o.err)));
        zn_buf_release(&o.buf);
        return zn_api_send_error(req, ZN_OCI_INTERNAL, "metrics output too large");
    }
    zn_edge_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", o.buf.p, o.buf.len); /* copied into the pool */
    zn_buf_release(&o.buf);
    return 0;
}

zn_err_t zn_metrics_new(const zn_config_t *cfg, zn_metrics_t **out)
{
    *out = NULL;
    if (!cfg->extensions.metrics_enable)
        return ZN_OK;
    zn_metrics_t *m = zn_calloc(1, sizeof(*m));
    m->path = zn_strdup(cfg->extensions.metrics_path != NULL ? cfg->extensions.metrics_path : "/metrics");
    m->root = cfg->storage.root_directory;
    m->id = atomic_fetch_add(&last_id, 1) + 1;
    m->route = (zn_route_def_t){"GET", m->path, "metrics", on_metrics, 0, -1, ZN_ROUTE_METRICS};
    zn_mutex_init(&m->shards_lock, "metrics.shards");
    zn_mutex_init(&m->scrape_lock, "metrics.scrape");
    *out = m;
    return ZN_OK;
}

const zn_route_def_t *zn_metrics_route(zn_metrics_t *m)
{
    return &m->route;
}

void zn_metrics_free(zn_metrics_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0, n = atomic_load(&m->nshards); i < n; i++) {
        table_release(&m->shards[i]->c.repos);
        zn_mutex_destroy(&m->shards[i]->lock);
        free(m->shards[i]);
    }
    table_release(&m->usage);
    zn_mutex_destroy(&m->shards_lock);
    zn_mutex_destroy(&m->scrape_lock);
    free(m->path);
    free(m);
}
