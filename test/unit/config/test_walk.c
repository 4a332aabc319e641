/* Unit tests for config/walk.c: how values are read (loose types as zot's decoder has them,
 * case-insensitive keys), unknown keys, wrong types, warnings, message formatting, and
 * doublestar glob validation. */
#include "config/internal.h"
#include "helpers.h"

static void test_case_insensitive(void **state)
{
    zn_config_t c;
    warns_t w;
    parse_ok("{\"STORAGE\":{\"RootDirectory\":\"/Data/Mixed\",\"GCDELAY\":\"2h\"},\"Http\":{\"PORT\":1234,"
             "\"Realm\":\"MyRealm\"},\"LOG\":{\"Level\":\"info\"}}",
             &c, &w);
    assert_string_equal(c.storage.root_directory, "/Data/Mixed"); /* values keep their case */
    assert_true(c.storage.gc_delay_ns == 2 * HOUR);
    assert_int_equal(c.http.port, 1234);
    assert_string_equal(c.http.realm, "MyRealm");
    assert_int_equal(c.log.level, ZN_LOG_INFO);
    zn_config_release(&c);
    expect_error("{" ROOT ",\"http\":{\"port\":\"1\",\"Port\":\"2\"}}",
                 "config.json: http.Port: same key as \"port\" (keys are case-insensitive)");
}

static void test_port(void **state)
{
    static const struct {
        const char *json;
        int port;
    } ok[] = {{"\"8080\"", 8080}, {"8080", 8080}, {"5000.0", 5000}, {"\"0\"", 0}, {"0", 0}, {"\"\"", 0}, {"65535", 65535}};
    static const char *const bad[] = {"\"65536\"", "65536", "-1", "\"-1\"", "\"abc\"", "80.5", "true", "[80]", "\" 80\""};
    char json[128];

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        zn_config_t c;
        warns_t w;
        snprintf(json, sizeof(json), "{" ROOT ",\"http\":{\"port\":%s}}", ok[i].json);
        parse_ok(json, &c, &w);
        assert_int_equal(c.http.port, ok[i].port);
        zn_config_release(&c);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(json, sizeof(json), "{" ROOT ",\"http\":{\"port\":%s}}", bad[i]);
        expect_error(json, "config.json: http.port: expected integer 0-65535");
    }
}

static void test_loose_bools(void **state)
{
    static const struct {
        const char *json;
        bool v;
    } ok[] = {{"true", true}, {"false", false}, {"\"true\"", true}, {"\"True\"", true},   {"\"1\"", true},
              {"1", true},    {"0", false},     {"\"f\"", false},   {"\"FALSE\"", false}, {"\"\"", false}};
    char json[128];

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        zn_config_t c;
        warns_t w;
        snprintf(json, sizeof(json), "{\"storage\":{\"rootDirectory\":\"/r\",\"commit\":%s}}", ok[i].json);
        parse_ok(json, &c, &w);
        assert_int_equal(c.storage.commit, ok[i].v);
        zn_config_release(&c);
    }
    expect_error("{\"storage\":{\"rootDirectory\":\"/r\",\"dedupe\":\"yes\"}}", "config.json: storage.dedupe: expected boolean");
    expect_error("{\"storage\":{\"rootDirectory\":\"/r\",\"gc\":[]}}", "config.json: storage.gc: expected boolean");
}

/* ---- errors --------------------------------------------------------------------------- */

static void test_unknown_keys(void **state)
{
    expect_error("{" ROOT ",\"http\":{\"bogus\":1}}", "config.json: http.bogus: unknown key");
    expect_error("{" ROOT ",\"Bogus\":{}}", "config.json: Bogus: unknown key");
    expect_error("{\"storage\":{\"rootDirectory\":\"/r\",\"readOnly\":true}}", "config.json: storage.readOnly: unknown key");
    expect_error("{" ROOT ",\"http\":{\"auth\":{\"htpasswd\":{\"path\":\"/h\",\"file\":\"x\"}}}}",
                 "config.json: http.auth.htpasswd.file: unknown key");
    expect_error("{" ROOT ",\"extensions\":{\"metrics\":{\"enable\":true,\"port\":9}}}",
                 "config.json: extensions.metrics.port: unknown key");
    expect_error("{" ROOT ",\"extensions\":{\"magic\":{}}}", "config.json: extensions.magic: unknown key");
}

static void test_wrong_types(void **state)
{
    expect_error("{\"storage\":[]}", "config.json: storage: expected object");
    expect_error("{\"storage\":{\"rootDirectory\":5}}", "config.json: storage.rootDirectory: expected string");
    expect_error("{" ROOT ",\"http\":{\"realm\":5}}", "config.json: http.realm: expected string");
    expect_error("{" ROOT ",\"http\":\"on\"}", "config.json: http: expected object");
    expect_error("{" ROOT ",\"http\":{\"auth\":{\"failDelay\":\"x\"}}}",
                 "config.json: http.auth.failDelay: expected integer 0-3600");
    expect_error("{" ROOT ",\"http\":{\"workers\":257}}", "config.json: http.workers: expected integer 0-256");
    expect_error("{" ROOT ",\"http\":{\"workers\":-1}}", "config.json: http.workers: expected integer 0-256");
    expect_error("{\"storage\":{\"rootDirectory\":\"/r\",\"maxBlobSize\":0}}",
                 "config.json: storage.maxBlobSize: expected integer 1-9223372036854775807");
    expect_error("{" ROOT ",\"zinc\":{\"profiling\":{\"maxSeconds\":0}}}",
                 "config.json: zinc.profiling.maxSeconds: expected integer 1-86400");
    expect_error("{" ROOT ",\"log\":{\"level\":\"loud\"}}",
                 "config.json: log.level: invalid log level \"loud\" (expected debug, info, warn, error, fatal or panic)");
    expect_error("{" ROOT ",\"log\":{\"level\":3}}", "config.json: log.level: expected string");
}

static void test_error_truncated(void **state)
{
    zn_config_t c;
    warns_t w;
    char err[24];
    assert_int_equal(zn_config_parse("config.json", "{\"http\":{\"bogus\":1}}", 20, &c, on_warn, &w, err, sizeof(err)), ZN_EINVAL);
    assert_string_equal(err, "config.json: http.bo...");
}

/* ---- warnings for zot features zinc lacks --------------------------------------------- */

static void test_warnings(void **state)
{
    expect_one_warning("{" ROOT ",\"extensions\":{\"search\":{\"enable\":true,\"cve\":{\"updateInterval\":\"2h\"}}}}",
                       "config.json: extensions.search: not implemented by zinc, ignored");
    expect_one_warning("{\"storage\":{\"rootDirectory\":\"/r\",\"subPaths\":{\"/a\":{\"rootDirectory\":\"/x\"}}}}",
                       "config.json: storage.subPaths: not implemented by zinc, ignored");
    expect_one_warning("{" ROOT ",\"scheduler\":{\"numWorkers\":3}}", "config.json: scheduler: not implemented by zinc, ignored");
    expect_one_warning("{" ROOT ",\"http\":{\"auth\":{\"bearer\":{\"realm\":\"r\"}}}}",
                       "config.json: http.auth.bearer: not implemented by zinc, ignored");
    expect_one_warning("{" ROOT ",\"http\":{\"Compat\":[\"docker2s2\"]}}",
                       "config.json: http.Compat: not implemented by zinc, ignored");
    /* contents of an unimplemented subtree are not checked */
    expect_one_warning("{" ROOT ",\"scheduler\":{\"anything\":[1,2,{\"x\":null}]}}",
                       "config.json: scheduler: not implemented by zinc, ignored");
}

static void test_warnings_many(void **state)
{
    zn_config_t c;
    warns_t w;
    parse_ok("{\"storage\":{\"rootDirectory\":\"/r\",\"retention\":{},\"gcTimeWindow\":\"01:00-02:00\"},"
             "\"extensions\":{\"sync\":{},\"scrub\":{},\"ui\":{},\"lint\":{},\"trust\":{},\"events\":{},"
             "\"mgmt\":{},\"apikey\":{}},\"http\":{\"ratelimit\":{\"rate\":5},\"allowOrigin\":\"*\"}}",
             &c, &w);
    assert_int_equal(w.n, 10); /* extensions.scrub and sync are implemented: no warning */
    assert_string_equal(w.msg[0], "config.json: storage.retention: not implemented by zinc, ignored");
    assert_string_equal(w.msg[7], "config.json: extensions.apikey: not implemented by zinc, ignored");
    assert_string_equal(w.msg[9], "config.json: http.allowOrigin: not implemented by zinc, ignored");
    assert_true(c.extensions.scrub_enable);
    zn_config_release(&c);
    /* null means "not given": no warning */
    parse_ok("{" ROOT ",\"cluster\":null,\"http\":{\"tls\":null}}", &c, &w);
    assert_int_equal(w.n, 0);
    assert_null(c.http.tls.cert);
    zn_config_release(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_case_insensitive), cmocka_unit_test(test_port),          cmocka_unit_test(test_loose_bools),
        cmocka_unit_test(test_unknown_keys),     cmocka_unit_test(test_wrong_types),   cmocka_unit_test(test_error_truncated),
        cmocka_unit_test(test_warnings),         cmocka_unit_test(test_warnings_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
