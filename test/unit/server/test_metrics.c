/* Unit tests for server/metrics.c: label-value escaping, float text, the repo label's path
 * parsing, per-thread shards summed at render, histogram buckets, the metrics path not
 * counted, and a rendering that crosses the output limit failing instead of cutting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <unistd.h>

#include "server/metrics.c"

static char *label(const char *v)
{
    out_t o = {.err = ZN_OK};
    zn_buf_init(&o.buf, 1024);
    out_label_value(&o, v);
    assert_int_equal(o.err, ZN_OK);
    return zn_buf_detach(&o.buf, NULL);
}

static void test_label_escaping(void **state)
{
    char *s = label("plain/repo-1");
    assert_string_equal(s, "plain/repo-1");
    free(s);
    s = label("a\"b\\c\nd");
    assert_string_equal(s, "a\\\"b\\\\c\\nd");
    free(s);
    s = label("tab\there\r");
    assert_string_equal(s, "tab\there\r"); /* only \\, \" and \n are escaped in 0.0.4 */
    free(s);
    s = label("");
    assert_string_equal(s, "");
    free(s);
}

static void expect_double(double v, const char *want)
{
    out_t o = {.err = ZN_OK};
    zn_buf_init(&o.buf, 64);
    out_double(&o, v);
    assert_int_equal(o.err, ZN_OK);
    assert_string_equal(o.buf.p, want);
    zn_buf_release(&o.buf);
}

static void test_double_text(void **state)
{
    expect_double(0, "0");
    expect_double(700, "700");
    expect_double(-2, "-2");
    expect_double(1e20, "1e+20");
    expect_double(3, "3");
    expect_double(0.05, "0.05");
    expect_double(0.1 + 0.2, "0.30000000000000004");
    expect_double(1e-7, "1e-07");
    expect_double(1795631292.43, "1795631292.43");
    expect_double(INFINITY, "+Inf");
    expect_double(-INFINITY, "-Inf");
    expect_double(NAN, "NaN");
}

static zn_config_t test_cfg(void)
{
    zn_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.extensions.metrics_enable = true;
    cfg.extensions.metrics_path = "/metrics";
    cfg.storage.root_directory = "/nonexistent-zinc-root";
    return cfg;
}

static char *render_all(zn_metrics_t *m, size_t max, zn_err_t *err)
{
    out_t o = {.err = ZN_OK};
    zn_buf_init(&o.buf, max);
    render(m, &o);
    *err = o.err;
    if (o.err != ZN_OK) {
        zn_buf_release(&o.buf);
        return NULL;
    }
    return zn_buf_detach(&o.buf, NULL);
}

/* Observes a request as the access logger does: with the match of the real API routes. */
static void observe(zn_metrics_t *m, const char *method, const char *path, int status, double s)
{
    zn_router_t *r = zn_router_new();
    size_t n;
    const zn_route_def_t *rows = zn_api_routes(&n);
    zn_reqctx_t ctx;

    assert_int_equal(zn_router_add(r, rows, n, NULL), ZN_OK);
    memset(&ctx, 0, sizeof(ctx));
    zn_slice_t mt = zn_slice(method, strlen(method)), p = zn_slice(path, strlen(path));
    bool routed = zn_router_match(r, mt, p, &ctx) == ZN_ROUTE_FOUND;
    zn_metrics_observe(m, mt, p, routed ? &ctx : NULL, status, s);
    zn_router_free(r);
}

static void assert_line(const char *text, const char *line)
{
    char want[512];
    snprintf(want, sizeof(want), "\n%s\n", line);
    if (strstr(text, want) == NULL)
        fail_msg("missing line %s in:\n%s", line, text);
}

/* Which requests carry a repository label: the router's repository of the blob, upload,
 * manifest and tag routes (zot's /v2/<repo>/(blobs|tags|manifests)/), not referrers. */
static void test_repo_label(void **state)
{
    zn_config_t cfg = test_cfg();
    zn_metrics_t *m;
    zn_err_t err;

    assert_int_equal(zn_metrics_new(&cfg, &m), ZN_OK);

    observe(m, "GET", "/v2/team/app/tags/list", 200, 0.01);
    observe(m, "GET", "/v2/a/blobs/sha256:abc", 200, 0.01);
    observe(m, "POST", "/v2/a/b/blobs/uploads/", 202, 0.01);
    observe(m, "GET", "/v2/blobs/manifests/x", 200, 0.01); /* names may hold the keywords */
    observe(m, "GET", "/v2/a/manifests/b/manifests/x", 200, 0.01);
    observe(m, "GET", "/v2/ref/referrers/sha256:abc", 200, 0.01);
    observe(m, "GET", "/v2/_catalog", 200, 0.01);
    char *text = render_all(m, OUT_MAX, &err);
    assert_int_equal(err, ZN_OK);
    assert_line(text, "zot_http_repo_latency_seconds_count{repo=\"team/app\"} 1");
    assert_line(text, "zot_http_repo_latency_seconds_count{repo=\"a\"} 1");
    assert_line(text, "zot_http_repo_latency_seconds_count{repo=\"a/b\"} 1");
    assert_line(text, "zot_http_repo_latency_seconds_count{repo=\"blobs\"} 1");
    assert_line(text, "zot_http_repo_latency_seconds_count{repo=\"a/manifests/b\"} 1");
    assert_line(text, "zot_repo_downloads_total{repo=\"a/manifests/b\"} 1");
    assert_line(text, "zot_http_repo_latency_seconds_count{repo=\"N/A\"} 2");
    assert_null(strstr(text, "repo=\"ref\""));
    free(text);
    zn_metrics_free(m);
}

static void test_render_counts(void **state)
{
    zn_config_t cfg = test_cfg();
    zn_metrics_t *m;
    assert_int_equal(zn_metrics_new(&cfg, &m), ZN_OK);
    zn_err_t err;

    observe(m, "GET", "/v2/", 200, 0.01);
    observe(m, "GET", "/v2/team/app/manifests/v1", 200, 0.3);
    observe(m, "PUT", "/v2/team/app/manifests/v1", 201, 700);
    observe(m, "HEAD", "/v2/team/app/manifests/v1", 200, 0.01);
    observe(m, "GET", "/v2/ghost/manifests/v1", 404, 0.01);
    observe(m, "BREW", "/v2/", 405, 0);
    observe(m, "GET", "/metrics", 200, 0.01);
    observe(m, "GET", "/v2/Bad_Name/manifests/v1", 200, 0.01);
    char *text = render_all(m, OUT_MAX, &err);
    assert_int_equal(err, ZN_OK);
    assert_line(text, "zot_http_requests_total{code=\"200\",method=\"GET\"} 3");
    assert_line(text, "zot_http_requests_total{code=\"201\",method=\"PUT\"} 1");
    assert_line(text, "zot_http_requests_total{code=\"405\",method=\"other\"} 1");
    assert_line(text, "zot_repo_downloads_total{repo=\"team/app\"} 1");
    assert_line(text, "zot_repo_uploads_total{repo=\"team/app\"} 1");
    assert_line(text, "zot_http_repo_latency_seconds_count{repo=\"team/app\"} 3");
    assert_line(text, "zot_http_repo_latency_seconds_count{repo=\"N/A\"} 4");
    assert_line(text, "zot_http_method_latency_seconds_bucket{method=\"GET\",le=\"0.05\"} 3");
    assert_line(text, "zot_http_method_latency_seconds_bucket{method=\"GET\",le=\"0.5\"} 4");
    assert_line(text, "zot_http_method_latency_seconds_bucket{method=\"GET\",le=\"+Inf\"} 4");
    assert_line(text, "zot_http_method_latency_seconds_count{method=\"GET\"} 4");
    assert_line(text, "zot_http_method_latency_seconds_bucket{method=\"PUT\",le=\"600\"} 0");
    assert_line(text, "zot_http_method_latency_seconds_bucket{method=\"PUT\",le=\"+Inf\"} 1");
    assert_line(text, "zot_http_method_latency_seconds_sum{method=\"PUT\"} 700");
    assert_null(strstr(text, "ghost"));
    assert_null(strstr(text, "Bad_Name"));
    assert_null(strstr(text, "BREW"));
    /* the repository does not exist under the root: no storage series */
    assert_null(strstr(text, "zot_repo_storage_bytes{"));
    assert_non_null(strstr(text, "# TYPE zot_repo_storage_bytes gauge\n"));
    free(text);

    assert_null(render_all(m, 200, &err));
    assert_int_equal(err, ZN_ETOOBIG);
    zn_metrics_free(m);
}

static void *observer(void *arg)
{
    for (int i = 0; i < 1000; i++)
        observe(arg, "GET", "/v2/r/tags/list", 200, 0.001);
    return NULL;
}

static void test_shards_sum(void **state)
{
    zn_config_t cfg = test_cfg();
    zn_metrics_t *m;
    assert_int_equal(zn_metrics_new(&cfg, &m), ZN_OK);
    pthread_t t[4];
    zn_err_t err;

    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, observer, m), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&m->nshards), 4);
    char *text = render_all(m, OUT_MAX, &err);
    assert_line(text, "zot_http_requests_total{code=\"200\",method=\"GET\"} 4000");
    assert_line(text, "zot_http_repo_latency_seconds_count{repo=\"r\"} 4000");
    free(text);
    zn_metrics_free(m);
}

/* A thread's cached shard belongs to one collector, even if the next one gets its address. */
static void test_collectors_in_turn(void **state)
{
    zn_config_t cfg = test_cfg();
    zn_err_t err;

    for (int round = 0; round < 3; round++) {
        zn_metrics_t *m;
    assert_int_equal(zn_metrics_new(&cfg, &m), ZN_OK);
        observe(m, "PATCH", "/v2/x/blobs/uploads/u", 202, 0.001);
        char *text = render_all(m, OUT_MAX, &err);
        assert_line(text, "zot_http_requests_total{code=\"202\",method=\"PATCH\"} 1");
        free(text);
        zn_metrics_free(m);
    }
}

static void test_proc_stats(void **state)
{
    zn_proc_stats_t a, b;
    zn_proc_stats_read(&a);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    zn_proc_stats_read(&b);
    close(fd);
    assert_true(b.open_fds == a.open_fds + 1);
    assert_true(a.cpu_seconds >= 0 && a.resident_bytes > 0 && a.virtual_bytes >= a.resident_bytes);
    assert_true(a.max_fds >= a.open_fds);
    double now = (double)zn_now_wall_ns() / 1e9;
    assert_true(a.start_time > now - 600 && a.start_time <= now + 1);
}

static void test_disabled(void **state)
{
    zn_config_t cfg = test_cfg();
    cfg.extensions.metrics_enable = false;
    zn_metrics_t *m = (zn_metrics_t *)1;
    assert_int_equal(zn_metrics_new(&cfg, &m), ZN_OK); /* off, not failed */
    assert_null(m);
    zn_metrics_observe(NULL, ZN_SLICE_LIT("GET"), ZN_SLICE_LIT("/v2/"), NULL, 200, 0); /* no-op */
    zn_metrics_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_escaping), cmocka_unit_test(test_double_text), cmocka_unit_test(test_repo_label),
        cmocka_unit_test(test_render_counts),  cmocka_unit_test(test_shards_sum),  cmocka_unit_test(test_collectors_in_turn),
        cmocka_unit_test(test_proc_stats),     cmocka_unit_test(test_disabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
