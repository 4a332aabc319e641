/* Unit tests for config/sync.c: extensions.sync read as zot reads it, defaults, every
 * refused value with its exact message, and the warnings for keys zinc does not implement. */
#include "helpers.h"

#define SYNC(reg) "{" ROOT ",\"extensions\":{\"sync\":{\"registries\":[" reg "]}}}"
#define OD "\"urls\":[\"http://127.0.0.1:5000\"],\"onDemand\":true"

static void test_sync_full(void **state)
{
    zn_config_t c;
    warns_t w;
    parse_ok("{" ROOT ",\"extensions\":{\"sync\":{\"credentialsFile\":\"/c.json\",\"registries\":[{"
             "\"urls\":[\"https://a.example:5000/\",\"http://b\"],\"onDemand\":true,\"tlsVerify\":false,"
             "\"certDir\":\"/certs\",\"maxRetries\":3,\"retryDelay\":\"5s\",\"manifestCheckInterval\":\"10m\","
             "\"content\":[{\"prefix\":\"/library/**\",\"destination\":\"/hub\",\"stripPrefix\":true,"
             "\"tags\":{\"regex\":\"^4\\\\.\",\"excludeRegex\":\"-rc$\",\"semver\":true}}]}]}}}",
             &c, &w);
    assert_int_equal(w.n, 0);
    zn_config_sync_t *s = c.extensions.sync;
    assert_non_null(s);
    assert_true(s->enable);
    assert_string_equal(s->credentials_file, "/c.json");
    assert_int_equal(s->nregistries, 1);
    zn_config_sync_registry_t *r = &s->registries[0];
    assert_int_equal(r->nurls, 2);
    assert_string_equal(r->urls[0], "https://a.example:5000"); /* trailing '/' dropped */
    assert_string_equal(r->urls[1], "http://b");
    assert_true(r->on_demand && !r->tls_verify);
    assert_string_equal(r->cert_dir, "/certs");
    assert_int_equal(r->max_retries, 3);
    assert_true(r->retry_delay_ns == 5 * SEC);
    assert_true(r->manifest_check_interval_ns == 600 * SEC);
    assert_int_equal(r->ncontent, 1);
    assert_string_equal(r->content[0].prefix, "/library/**");
    assert_string_equal(r->content[0].destination, "/hub");
    assert_true(r->content[0].strip_prefix && r->content[0].tags_semver);
    assert_string_equal(r->content[0].tags_regex, "^4\\.");
    assert_string_equal(r->content[0].tags_exclude_regex, "-rc$");
    zn_config_release(&c);
}

static void test_sync_defaults(void **state)
{
    zn_config_t c;
    warns_t w;
    parse_ok(SYNC("{" OD "}"), &c, &w);
    assert_int_equal(w.n, 0);
    zn_config_sync_registry_t *r = &c.extensions.sync->registries[0];
    assert_true(c.extensions.sync->enable);   /* a section without enable is on */
    assert_true(r->tls_verify);               /* verified unless tlsVerify is false */
    assert_int_equal(r->max_retries, 0);
    assert_true(r->manifest_check_interval_ns == 0);
    assert_null(c.extensions.sync->credentials_file);
    zn_config_release(&c);
    parse_ok("{" ROOT ",\"extensions\":{\"sync\":{\"enable\":false,\"registries\":[{\"urls\":[]}]}}}", &c, &w);
    assert_false(c.extensions.sync->enable); /* disabled: not checked further */
    zn_config_release(&c);
    /* periodic sync is implemented: pollInterval alone, or with onDemand, warns about nothing */
    parse_ok(SYNC("{\"urls\":[\"http://x\"],\"pollInterval\":\"6h\"}"), &c, &w);
    assert_int_equal(w.n, 0);
    assert_true(c.extensions.sync->registries[0].poll_interval_ns == 6 * 3600 * 1000000000ull);
    zn_config_release(&c);
    parse_ok(SYNC("{" OD ",\"pollInterval\":\"6h\"}"), &c, &w);
    assert_int_equal(w.n, 0);
    zn_config_release(&c);
    expect_error(SYNC("{\"urls\":[\"http://x\"],\"pollInterval\":\"6h\",\"onlySigned\":true}"),
                 "config.json: extensions.sync.registries[0].onlySigned: not implemented by zinc (signatures are not "
                 "verified); remove it or set it to false");
    parse_ok("{" ROOT "}", &c, &w);
    assert_null(c.extensions.sync);
    zn_config_release(&c);
}

static void test_sync_errors(void **state)
{
    expect_error(SYNC("{\"onDemand\":true}"), "config.json: extensions.sync.registries[0].urls: at least one URL is required");
    expect_error(SYNC("{\"urls\":[\"ftp://x\"],\"onDemand\":true}"),
                 "config.json: extensions.sync.registries[0].urls[0]: \"ftp://x\": expected http(s)://host[:port] without path "
                 "or credentials");
    expect_error(SYNC("{\"urls\":[\"https://u:p@x\"],\"onDemand\":true}"),
                 "config.json: extensions.sync.registries[0].urls[0]: \"https://u:p@x\": expected http(s)://host[:port] "
                 "without path or credentials");
    expect_error(SYNC("{\"urls\":[\"https://x/v2\"],\"onDemand\":true}"),
                 "config.json: extensions.sync.registries[0].urls[0]: \"https://x/v2\": expected http(s)://host[:port] "
                 "without path or credentials");
    expect_error(SYNC("{" OD ",\"maxRetries\":2}"),
                 "config.json: extensions.sync.registries[0].maxRetries: retryDelay is required when using maxRetries (as in "
                 "zot)");
    expect_error(SYNC("{\"urls\":[\"http://x\"],\"pollInterval\":\"1h\",\"manifestCheckInterval\":\"1m\"}"),
                 "config.json: extensions.sync.registries[0].manifestCheckInterval: requires onDemand to be enabled (as in zot)");
    expect_error(SYNC("{" OD ",\"onlySigned\":true}"),
                 "config.json: extensions.sync.registries[0].onlySigned: not implemented by zinc (signatures are not "
                 "verified); remove it or set it to false");
    expect_error(SYNC("{" OD ",\"content\":[{\"destination\":\"/x\"}]}"),
                 "config.json: extensions.sync.registries[0].content[0].prefix: required");
    expect_error(SYNC("{" OD ",\"content\":[{\"prefix\":\"a/[\"}]}"),
                 "config.json: extensions.sync.registries[0].content[0].prefix: \"a/[\" is not a valid glob pattern");
    expect_error(SYNC("{" OD ",\"content\":[{\"prefix\":\"a\",\"tags\":{\"regex\":\"(\"}}]}"),
                 "config.json: extensions.sync.registries[0].content[0].tags.regex: invalid regular expression \"(\": "
                 "Unmatched ( or \\(");
    expect_error(SYNC("{" OD ",\"bogus\":1}"), "config.json: extensions.sync.registries[0].bogus: unknown key");
    expect_error(SYNC("{" OD ",\"maxRetries\":-1,\"retryDelay\":\"1s\"}"),
                 "config.json: extensions.sync.registries[0].maxRetries: expected integer 0-1000");
}

static void test_sync_warnings(void **state)
{
    expect_one_warning(SYNC("{" OD ",\"reqConcurrent\":30}"),
                       "config.json: extensions.sync.registries[0].reqConcurrent: not implemented by zinc, ignored");
    expect_one_warning(SYNC("{\"urls\":[\"http://x\"]}"),
                       "config.json: extensions.sync.registries[0]: neither onDemand nor pollInterval: this registry is not used");
    expect_one_warning("{" ROOT ",\"extensions\":{\"sync\":{\"downloadDir\":\"/tmp\",\"registries\":[{" OD "}]}}}",
                       "config.json: extensions.sync.downloadDir: not implemented by zinc, ignored");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_full),
        cmocka_unit_test(test_sync_defaults),
        cmocka_unit_test(test_sync_errors),
        cmocka_unit_test(test_sync_warnings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
