/* Unit tests for config/config.c: zot's config.json read as zot reads it (defaults, loose
 * types, case-insensitive keys, durations), every kind of invalid input with its exact
 * message, warnings for zot features zinc lacks, accessControl, and real-shaped zot example
 * files (test/data/config/) plus zinc's own examples/. */
#include <dirent.h>

#include "helpers.h"

/* ---- defaults and basic reading ------------------------------------------------------- */

static void test_defaults(void **state)
{
    zn_config_t c;
    zn_config_init_defaults(&c);
    assert_null(c.path);
    assert_string_equal(c.dist_spec_version, "1.1.1");
    assert_string_equal(c.storage.root_directory, "./data");
    assert_true(c.storage.dedupe && c.storage.gc && !c.storage.commit && c.storage.mount_without_from);
    assert_true(c.storage.gc_delay_ns == HOUR && c.storage.gc_interval_ns == HOUR);
    assert_true(c.storage.max_blob_size == 64ull << 30);
    assert_true(c.storage.max_manifest_size == 4u << 20);
    assert_string_equal(c.http.address, "127.0.0.1");
    assert_int_equal(c.http.port, 8080);
    assert_string_equal(c.http.realm, "");
    assert_int_equal(c.http.workers, 0);
    assert_true(c.http.read_timeout_ns == 60 * SEC && c.http.write_timeout_ns == 60 * SEC);
    assert_null(c.http.tls.cert);
    assert_null(c.http.auth.htpasswd_path);
    assert_int_equal(c.http.auth.fail_delay, 0);
    assert_null(c.http.access);
    assert_null(c.http.external_url);
    assert_int_equal(c.log.level, ZN_LOG_DEBUG);
    assert_null(c.log.output);
    assert_null(c.log.audit);
    assert_false(c.extensions.metrics_enable);
    assert_string_equal(c.extensions.metrics_path, "/metrics");
    assert_int_equal(c.zinc.profile_max_seconds, 600);
    assert_int_equal(c.zinc.mutex_rate, 1);
    assert_int_equal(c.zinc.block_rate_ns, 10000);
    assert_true(c.zinc.heap_sampling);
    zn_config_release(&c);
    zn_config_release(&c); /* released twice is harmless */
}

/* zinc.profiling.debugAddress: loopback when only a port is given, IPv6 in brackets */
static void test_debug_address(void **state)
{
    static const struct {
        const char *value, *host;
        int port;
    } ok[] = {{":6060", "127.0.0.1", 6060}, {"6061", "127.0.0.1", 6061}, {"0.0.0.0:7000", "0.0.0.0", 7000},
              {"[::1]:7001", "::1", 7001}, {"localhost:1", "localhost", 1}};
    char json[256];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        zn_config_t c;
        warns_t w;
        snprintf(json, sizeof(json), "{" ROOT ",\"zinc\":{\"profiling\":{\"debugAddress\":\"%s\"}}}", ok[i].value);
        parse_ok(json, &c, &w);
        assert_string_equal(c.zinc.debug_address, ok[i].value);
        assert_string_equal(c.zinc.debug_host, ok[i].host);
        assert_int_equal(c.zinc.debug_port, ok[i].port);
        zn_config_release(&c);
    }
    zn_config_t c;
    warns_t w;
    parse_ok("{" ROOT ",\"zinc\":{\"profiling\":{\"debugAddress\":\"\"}}}", &c, &w);
    assert_null(c.zinc.debug_address); /* "" = off, as unset */
    zn_config_release(&c);
    static const char *const bad[] = {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "h:x", ":"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(json, sizeof(json), "{" ROOT ",\"zinc\":{\"profiling\":{\"debugAddress\":\"%s\"}}}", bad[i]);
        expect_error(json, "config.json: zinc.profiling.debugAddress: expected HOST:PORT or :PORT with a port from 1 to 65535");
    }
}

static void test_minimal(void **state)
{
    zn_config_t c;
    warns_t w;
    parse_ok("{" ROOT "}", &c, &w);
    assert_int_equal(w.n, 0);
    assert_string_equal(c.path, "config.json");
    assert_string_equal(c.storage.root_directory, "/r");
    assert_int_equal(c.http.port, 8080);
    assert_true(c.storage.gc_delay_ns == HOUR);
    zn_config_release(&c);
}

static void test_full(void **state)
{
    zn_config_t c;
    warns_t w;
    parse_ok("{\"distSpecVersion\":\"1.0.0\",\"goVersion\":\"go1.22\",\"commit\":\"abc\",\"releaseTag\":\"v2\","
             "\"binaryType\":\"full\",\"storage\":{\"rootDirectory\":\"/r\",\"dedupe\":false,\"gc\":true,"
             "\"commit\":true,\"gcDelay\":\"90s\",\"gcInterval\":\"1.5h\",\"maxBlobSize\":1048576,"
             "\"maxManifestSize\":\"65536\",\"mountWithoutFrom\":false},\"http\":{\"address\":\"0.0.0.0\","
             "\"port\":\"5000\",\"realm\":\"zot\",\"externalUrl\":\"https://r.example\",\"workers\":4,"
             "\"readTimeout\":\"0\",\"writeTimeout\":\"5m\",\"auth\":{\"htpasswd\":{\"path\":\"/h\"},"
             "\"failDelay\":2}},\"log\":{\"level\":\"warn\",\"output\":\"/tmp/o.log\",\"audit\":\"/tmp/a.log\"},"
             "\"zinc\":{\"profiling\":{\"maxSeconds\":30,\"mutexRate\":5,\"blockRate\":0,\"heap\":false}}}",
             &c, &w);
    /* writeTimeout is enforced (server/guard.c): no warning is left */
    assert_int_equal(w.n, 0);
    assert_true(c.http.read_timeout_ns == 0 && c.http.write_timeout_ns == 5 * 60 * SEC);
    assert_string_equal(c.dist_spec_version, "1.1.1"); /* zot replaces it by its own */
    assert_true(!c.storage.dedupe && c.storage.commit && !c.storage.mount_without_from);
    assert_true(c.storage.gc_delay_ns == 90 * SEC && c.storage.gc_interval_ns == 90 * 60 * SEC);
    assert_true(c.storage.max_blob_size == 1048576 && c.storage.max_manifest_size == 65536);
    assert_string_equal(c.http.address, "0.0.0.0");
    assert_int_equal(c.http.port, 5000);
    assert_string_equal(c.http.realm, "zot");
    assert_string_equal(c.http.external_url, "https://r.example");
    assert_int_equal(c.http.workers, 4);
    assert_true(c.http.read_timeout_ns == 0 && c.http.write_timeout_ns == 300 * SEC);
    assert_string_equal(c.http.auth.htpasswd_path, "/h");
    assert_int_equal(c.http.auth.fail_delay, 2);
    assert_int_equal(c.log.level, ZN_LOG_WARN);
    assert_string_equal(c.log.output, "/tmp/o.log");
    assert_string_equal(c.log.audit, "/tmp/a.log");
    assert_int_equal(c.zinc.profile_max_seconds, 30);
    assert_int_equal(c.zinc.mutex_rate, 5);
    assert_int_equal(c.zinc.block_rate_ns, 0);
    assert_false(c.zinc.heap_sampling);
    zn_config_release(&c);
}

static void test_durations(void **state)
{
    zn_config_t c;
    warns_t w;
    parse_ok("{\"storage\":{\"rootDirectory\":\"/r\",\"gcDelay\":0,\"gcInterval\":\"1h30m\"},"
             "\"http\":{\"readTimeout\":\"-1s\",\"writeTimeout\":\"250ms\"}}",
             &c, &w);
    assert_true(c.storage.gc_delay_ns == 0 && c.storage.gc_interval_ns == 90 * 60 * SEC);
    assert_true(c.http.read_timeout_ns == 0); /* <= 0: no timeout */
    assert_true(c.http.write_timeout_ns == 250000000);
    zn_config_release(&c);
    expect_error("{\"storage\":{\"rootDirectory\":\"/r\",\"gcDelay\":\"5x\"}}",
                 "config.json: storage.gcDelay: invalid duration \"5x\"");
    expect_error("{\"storage\":{\"rootDirectory\":\"/r\",\"gcDelay\":\"1d\"}}",
                 "config.json: storage.gcDelay: invalid duration \"1d\"");
    expect_error("{\"storage\":{\"rootDirectory\":\"/r\",\"gcDelay\":300}}",
                 "config.json: storage.gcDelay: bare number 300: write a duration with a unit, such as \"90s\"");
    expect_error("{\"storage\":{\"rootDirectory\":\"/r\",\"gcInterval\":\"-1h\"}}",
                 "config.json: storage.gcInterval: negative duration \"-1h\"");
    expect_error("{\"storage\":{\"rootDirectory\":\"/r\",\"gcInterval\":\"9999999999h\"}}",
                 "config.json: storage.gcInterval: duration \"9999999999h\" out of range");
    expect_error("{\"storage\":{\"rootDirectory\":\"/r\",\"gcDelay\":true}}",
                 "config.json: storage.gcDelay: expected duration string, such as \"90s\"");
}

static void test_gc_off(void **state)
{
    zn_config_t c;
    warns_t w;
    parse_ok("{\"storage\":{\"rootDirectory\":\"/r\",\"gc\":false}}", &c, &w);
    assert_true(c.storage.gc_delay_ns == 0 && c.storage.gc_interval_ns == 0);
    assert_int_equal(w.n, 0);
    zn_config_release(&c);
    parse_ok("{\"storage\":{\"rootDirectory\":\"/r\",\"gc\":false,\"gcDelay\":\"2h\"}}", &c, &w);
    assert_true(c.storage.gc_delay_ns == 2 * HOUR && c.storage.gc_interval_ns == 0);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.msg[0], "config.json: storage.gcDelay: ignored because storage.gc is false");
    zn_config_release(&c);
}

static void test_bad_files(void **state)
{
    expect_error("", "config.json: empty file");
    expect_error(" \n\t\n", "config.json: empty file");
    expect_error("{}", "config.json: no settings (empty object)");
    expect_error("[1]", "config.json: expected a JSON object");
    expect_error("{\n  \"storage\": {\n    \"rootDirectory\": \"/r\",\n  }\n}",
                 "config.json: line 4, column 3: invalid JSON: string or '}' expected near '}'");
    expect_error("{\"storage\":{\"rootDirectory\":\"/r\"}} x",
                 "config.json: line 1, column 36: invalid JSON: end of file expected near 'x'");
    expect_error("{\"log\":{\"level\":\"info\"}}", "config.json: storage.rootDirectory: required");
    expect_error("{\"storage\":{\"rootDirectory\":\"\"}}", "config.json: storage.rootDirectory: required");
    expect_error("{\"storage\":{\"rootDirectory\":null}}", "config.json: storage.rootDirectory: required");
}

static void test_load_errors(void **state)
{
    zn_config_t c;
    char err[ERRLEN];
    assert_int_equal(zn_config_load("/nonexistent/config.json", &c, NULL, NULL, err, sizeof(err)), ZN_ENOENT);
    assert_string_equal(err, "/nonexistent/config.json: cannot open: No such file or directory");
    assert_null(c.path);
    assert_int_equal(zn_config_load(ZN_TEST_DATA, &c, NULL, NULL, err, sizeof(err)), ZN_EIO);
    assert_non_null(strstr(err, ": cannot read: Is a directory"));
}

/* ---- accessControl -------------------------------------------------------------------- */

#define HTPASSWD "\"auth\":{\"htpasswd\":{\"path\":\"/h\"}}"

static void test_access_control(void **state)
{
    zn_config_t c;
    warns_t w;
    parse_ok("{" ROOT ",\"http\":{" HTPASSWD ",\"accessControl\":{"
             "\"groups\":{\"Devs\":{\"users\":[\"Alice\",\"bob\"]},\"ops\":{\"users\":\"carol\"}},"
             "\"repositories\":{\"Team/**\":{\"policies\":[{\"users\":[\"Alice\"],\"groups\":[\"devs\"],"
             "\"actions\":[\"read\",\"create\"]},{\"groups\":[\"ops\"],\"actions\":\"delete\"}],"
             "\"defaultPolicy\":[\"read\"]},\"pub/*\":{\"anonymousPolicy\":[]},\"x\":null},"
             "\"adminPolicy\":{\"users\":[\"root\"],\"groups\":[],\"actions\":[\"read\",\"update\"]},"
             "\"metrics\":{\"users\":[\"prom\"],\"anonymousPolicy\":[\"read\"]}}}}",
             &c, &w);
    assert_int_equal(w.n, 0);
    const zn_config_access_t *a = c.http.access;
    assert_non_null(a);
    assert_int_equal(a->ngroups, 2);
    assert_string_equal(a->groups[0].name, "devs"); /* zot lower-cases map keys */
    assert_int_equal(a->groups[0].nusers, 2);
    assert_string_equal(a->groups[0].users[0], "Alice");
    assert_string_equal(a->groups[1].name, "ops");
    assert_int_equal(a->groups[1].nusers, 1); /* one string stands for a list of one */
    assert_string_equal(a->groups[1].users[0], "carol");
    assert_int_equal(a->nrepos, 3);
    const zn_config_repo_access_t *r = &a->repos[0];
    assert_string_equal(r->pattern, "team/**");
    assert_int_equal(r->npolicies, 2);
    assert_int_equal(r->policies[0].nusers, 1);
    assert_string_equal(r->policies[0].groups[0], "devs");
    assert_int_equal(r->policies[0].actions, ZN_ACT_READ | ZN_ACT_CREATE);
    assert_int_equal(r->policies[1].nusers, 0);
    assert_int_equal(r->policies[1].actions, ZN_ACT_DELETE);
    assert_int_equal(r->default_actions, ZN_ACT_READ);
    assert_false(r->has_anonymous);
    assert_string_equal(a->repos[1].pattern, "pub/*");
    assert_true(a->repos[1].has_anonymous); /* present, even empty */
    assert_int_equal(a->repos[1].anonymous_actions, 0);
    assert_string_equal(a->repos[2].pattern, "x");
    assert_int_equal(a->repos[2].npolicies, 0);
    assert_true(a->has_admin);
    assert_string_equal(a->admin.users[0], "root");
    assert_int_equal(a->admin.ngroups, 0);
    assert_int_equal(a->admin.actions, ZN_ACT_READ | ZN_ACT_UPDATE);
    assert_int_equal(a->metrics.nusers, 1);
    assert_int_equal(a->metrics.actions, ZN_ACT_READ);
    zn_config_release(&c);
}

static void test_access_errors(void **state)
{
    expect_error("{" ROOT ",\"http\":{" HTPASSWD ",\"accessControl\":{\"repositories\":{\"a/[\":{}}}}}",
                 "config.json: http.accessControl.repositories.a/[: invalid glob pattern");
    /* the parser auth matches with: what it refuses is a config error naming the key */
    expect_error("{" ROOT ",\"http\":{" HTPASSWD ",\"accessControl\":{\"repositories\":{\"a}\":{}}}}}",
                 "config.json: http.accessControl.repositories.a}: invalid glob pattern");
    expect_error("{" ROOT ",\"http\":{" HTPASSWD ",\"accessControl\":{\"repositories\":{"
                 "\"{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}\":{}}}}}",
                 "config.json: http.accessControl.repositories.{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}: more than 256 {} "
                 "alternatives");
    expect_error("{" ROOT ",\"http\":{" HTPASSWD ",\"accessControl\":{\"repositories\":{\"**\":"
                 "{\"policies\":[{\"users\":[\"a\"],\"actions\":[\"read\",\"Write\"]}]}}}}}",
                 "config.json: http.accessControl.repositories.**.policies[0].actions[1]: unknown action \"Write\" "
                 "(expected read, create, update or delete)");
    expect_error("{" ROOT ",\"http\":{" HTPASSWD ",\"accessControl\":{\"repositories\":{\"**\":"
                 "{\"policies\":[{\"users\":[\"a\",7]}]}}}}}",
                 "config.json: http.accessControl.repositories.**.policies[0].users[1]: expected string");
    expect_error("{" ROOT ",\"http\":{" HTPASSWD ",\"accessControl\":{\"repositories\":{\"**\":"
                 "{\"policies\":{\"users\":[\"a\"]}}}}}}",
                 "config.json: http.accessControl.repositories.**.policies: expected array of objects");
    expect_error("{" ROOT ",\"http\":{" HTPASSWD ",\"accessControl\":{\"repositories\":{\"A/**\":{},\"a/**\":{}}}}}",
                 "config.json: http.accessControl.repositories.a/**: same key as \"A/**\" (keys are case-insensitive)");
    expect_error("{" ROOT ",\"http\":{" HTPASSWD ",\"accessControl\":{\"**\":{\"defaultPolicy\":[\"read\"]}}}}",
                 "config.json: http.accessControl.**: unknown key; repository patterns go under "
                 "http.accessControl.repositories (zot 2 layout)");
    expect_error("{" ROOT ",\"http\":{\"accessControl\":{\"repositories\":{\"**\":{\"defaultPolicy\":[\"read\"]}}}}}",
                 "config.json: http.accessControl: needs authentication (http.auth.htpasswd) unless only "
                 "anonymousPolicy is used");
    expect_error("{" ROOT ",\"http\":{\"accessControl\":{}}}",
                 "config.json: http.accessControl: needs authentication (http.auth.htpasswd) unless only "
                 "anonymousPolicy is used");
    expect_error("{" ROOT ",\"http\":{\"accessControl\":{\"repositories\":{\"**\":{\"anonymousPolicy\":[\"read\"]}},"
                 "\"adminPolicy\":{\"users\":[\"admin\"]}}}}",
                 "config.json: http.accessControl: needs authentication (http.auth.htpasswd) unless only "
                 "anonymousPolicy is used");
}

static void test_access_auth_rule(void **state)
{
    zn_config_t c;
    warns_t w;
    /* only anonymousPolicy: no authentication needed */
    parse_ok("{" ROOT ",\"http\":{\"accessControl\":{\"repositories\":{\"**\":{\"anonymousPolicy\":[\"read\"],"
             "\"policies\":[{\"groups\":[\"g\"]}]}}}}}",
             &c, &w);
    zn_config_release(&c);
    /* zot counts LDAP as authentication: accepted, with the warning */
    parse_ok("{" ROOT ",\"http\":{\"auth\":{\"ldap\":{\"address\":\"l\"}},\"accessControl\":{\"repositories\":"
             "{\"**\":{\"defaultPolicy\":[\"read\"]}}}}}",
             &c, &w);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.msg[0], "config.json: http.auth.ldap: not implemented by zinc, ignored");
    zn_config_release(&c);
}

static void test_access_warnings(void **state)
{
    zn_config_t c;
    warns_t w;
    parse_ok("{" ROOT ",\"http\":{" HTPASSWD ",\"accessControl\":{\"groups\":{\"Devs\":{\"users\":[\"a\"]}},"
             "\"repositories\":{\"**\":{\"policies\":[{\"groups\":[\"Devs\"],\"actions\":[\"read\","
             "\"detectManifestCollision\"],\"conditions\":[\"x\"]}]}},\"adminPolicy\":{\"groups\":[\"Admins\"]}}}}",
             &c, &w);
    assert_int_equal(w.n, 4);
    assert_string_equal(w.msg[0], "config.json: http.accessControl.repositories.**.policies[0].groups[0]: group "
                                  "\"Devs\" has upper-case letters; zot lower-cases group names, so it never matches");
    assert_string_equal(w.msg[1], "config.json: http.accessControl.repositories.**.policies[0].actions[1]: action "
                                  "\"detectManifestCollision\" not implemented by zinc, ignored");
    assert_string_equal(w.msg[2], "config.json: http.accessControl.repositories.**.policies[0].conditions: not "
                                  "implemented by zinc, ignored");
    assert_string_equal(w.msg[3], "config.json: http.accessControl.adminPolicy.groups[0]: group \"Admins\" has "
                                  "upper-case letters; zot lower-cases group names, so it never matches");
    assert_string_equal(c.http.access->groups[0].name, "devs");
    assert_string_equal(c.http.access->repos[0].policies[0].groups[0], "Devs"); /* kept: never matches, as in zot */
    assert_int_equal(c.http.access->repos[0].policies[0].actions, ZN_ACT_READ);
    zn_config_release(&c);
}

/* ---- metrics and TLS ------------------------------------------------------------------ */

static void test_metrics(void **state)
{
    zn_config_t c;
    warns_t w;
    parse_ok("{" ROOT ",\"extensions\":{\"metrics\":{}}}", &c, &w);
    assert_true(c.extensions.metrics_enable); /* a section without "enable" is on */
    assert_string_equal(c.extensions.metrics_path, "/metrics");
    zn_config_release(&c);
    parse_ok("{" ROOT ",\"extensions\":{\"metrics\":{\"enable\":false,\"prometheus\":{\"path\":\"/ops/metrics\"}}}}", &c, &w);
    assert_false(c.extensions.metrics_enable);
    assert_string_equal(c.extensions.metrics_path, "/ops/metrics");
    zn_config_release(&c);
    static const char *const bad[] = {"metrics", "", "/metrics/", "//m", "/a/../m", "/a/./m", "/.."};
    char json[160], want[160];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(json, sizeof(json), "{" ROOT ",\"extensions\":{\"metrics\":{\"prometheus\":{\"path\":\"%s\"}}}}", bad[i]);
        snprintf(want, sizeof(want), "config.json: extensions.metrics.prometheus.path: \"%s\" is not a clean absolute path",
                 bad[i]);
        expect_error(json, want);
    }
    expect_error("{" ROOT ",\"extensions\":{\"metrics\":{\"prometheus\":{\"path\":\"/v2\"}}}}",
                 "config.json: extensions.metrics.prometheus.path: \"/v2\" is taken by the registry API");
    expect_error("{" ROOT ",\"extensions\":{\"metrics\":{\"prometheus\":{\"path\":\"/\"}}}}",
                 "config.json: extensions.metrics.prometheus.path: \"/\" is taken by the registry API");
}

static void test_tls(void **state)
{
    zn_config_t c;
    warns_t w;
    parse_ok("{" ROOT ",\"http\":{\"tls\":{\"cert\":\"/c\",\"key\":\"/k\",\"cacert\":\"\"}}}", &c, &w);
    assert_string_equal(c.http.tls.cert, "/c");
    assert_string_equal(c.http.tls.key, "/k");
    assert_null(c.http.tls.cacert);
    zn_config_release(&c);
    expect_error("{" ROOT ",\"http\":{\"tls\":{\"cert\":\"/c\"}}}", "config.json: http.tls: cert and key must be given together");
    expect_error("{" ROOT ",\"http\":{\"tls\":{\"cert\":\"/c\",\"key\":\"\"}}}",
                 "config.json: http.tls: cert and key must be given together");
    expect_error("{" ROOT ",\"http\":{\"tls\":{\"cacert\":\"/ca\"}}}",
                 "config.json: http.tls: cacert (client certificates) needs cert and key");
}

/* ---- files ---------------------------------------------------------------------------- */

static void test_zot_examples(void **state)
{
    zn_config_t c;
    warns_t w;
    load_ok(ZN_TEST_DATA "/config/zot-minimal.json", &c, &w);
    assert_int_equal(w.n, 0);
    assert_string_equal(c.storage.root_directory, "/tmp/zot");
    zn_config_release(&c);

    load_ok(ZN_TEST_DATA "/config/zot-example.json", &c, &w);
    assert_int_equal(w.n, 1);
    assert_non_null(strstr(w.msg[0], "zot-example.json: http.auth.ldap: not implemented by zinc, ignored"));
    assert_string_equal(c.http.tls.key, "test/data/server.key");
    assert_int_equal(c.http.auth.fail_delay, 5);
    assert_string_equal(c.log.audit, "/tmp/zot-audit.log");
    zn_config_release(&c);

    load_ok(ZN_TEST_DATA "/config/zot-tls.json", &c, &w);
    assert_int_equal(w.n, 0);
    assert_string_equal(c.http.tls.cacert, "test/data/ca.crt");
    zn_config_release(&c);

    load_ok(ZN_TEST_DATA "/config/zot-policy.json", &c, &w);
    assert_int_equal(w.n, 0);
    assert_int_equal(c.http.access->ngroups, 2);
    assert_int_equal(c.http.access->nrepos, 4);
    assert_string_equal(c.http.access->repos[2].pattern, "infra/*");
    assert_int_equal(c.http.access->repos[2].policies[1].actions, ZN_ACT_CREATE | ZN_ACT_READ);
    assert_true(c.http.access->repos[1].has_anonymous);
    zn_config_release(&c);
}

static void test_zot_examples_more(void **state)
{
    zn_config_t c;
    warns_t w;
    char err[ERRLEN];
    load_ok(ZN_TEST_DATA "/config/zot-anonymous-authz.json", &c, &w);
    assert_int_equal(w.n, 0);
    assert_null(c.http.auth.htpasswd_path);
    assert_int_equal(c.http.access->repos[1].anonymous_actions, ZN_ACT_READ | ZN_ACT_CREATE | ZN_ACT_UPDATE);
    zn_config_release(&c);

    load_ok(ZN_TEST_DATA "/config/zot-metrics-authz.json", &c, &w);
    assert_int_equal(w.n, 0);
    assert_true(c.extensions.metrics_enable);
    assert_string_equal(c.http.access->metrics.users[0], "metrics");
    zn_config_release(&c);

    load_ok(ZN_TEST_DATA "/config/zot-allextensions.json", &c, &w);
    assert_int_equal(w.n, 3); /* storage.retention, search, ui (scrub and sync's pollInterval are implemented) */
    assert_true(c.extensions.scrub_enable);
    assert_true(c.extensions.scrub_interval_ns == 24 * 3600 * SEC);
    assert_true(c.extensions.sync != NULL && c.extensions.sync->enable && c.extensions.sync->nregistries == 1);
    assert_true(c.extensions.metrics_enable);
    assert_false(c.storage.dedupe);
    assert_true(c.storage.gc_interval_ns == 90 * 60 * SEC);
    assert_int_equal(c.log.level, ZN_LOG_INFO);
    zn_config_release(&c);

    assert_int_equal(zn_config_load(ZN_TEST_DATA "/config/zot-v1-policy.json", &c, NULL, NULL, err, sizeof(err)), ZN_EINVAL);
    assert_non_null(strstr(err, "zot-v1-policy.json: http.accessControl.**: unknown key; repository patterns go under"));
}

/* Every .json file in examples/ must load without a warning; the three named ones must exist. */
static void test_examples_dir(void **state)
{
    char path[512];
    int seen = 0;
    zn_config_t c;
    warns_t w;
    struct dirent *de;
    DIR *d = opendir(EXAMPLES);

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        assert_true((size_t)snprintf(path, sizeof(path), "%s%s", EXAMPLES, de->d_name) < sizeof(path));
        load_ok(path, &c, &w);
        if (w.n != 0)
            fail_msg("%s", w.msg[0]);
        seen += strcmp(de->d_name, "config-minimal.json") == 0 || strcmp(de->d_name, "config-tls.json") == 0 ||
                strcmp(de->d_name, "config-htpasswd-acl.json") == 0;
        zn_config_release(&c);
    }
    closedir(d);
    assert_int_equal(seen, 3);
}

static void test_examples_content(void **state)
{
    zn_config_t c;
    warns_t w;

    load_ok(EXAMPLES "config-htpasswd-acl.json", &c, &w);
    assert_non_null(c.http.auth.htpasswd_path);
    assert_int_equal(c.http.access->ngroups, 2);
    assert_int_equal(c.http.access->nrepos, 3);
    assert_true(c.http.access->repos[0].has_anonymous);
    assert_int_equal(c.http.access->repos[1].npolicies, 2);
    assert_true(c.http.access->has_admin);
    zn_config_release(&c);
    load_ok(EXAMPLES "config-tls.json", &c, &w);
    assert_non_null(c.http.tls.cert);
    assert_non_null(c.http.tls.key);
    assert_non_null(c.http.tls.cacert);
    zn_config_release(&c);
    load_ok(EXAMPLES "config-minimal.json", &c, &w);
    assert_int_equal(c.http.port, 5000);
    zn_config_release(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_debug_address),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_gc_off),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_access_control),
        cmocka_unit_test(test_access_errors),
        cmocka_unit_test(test_access_auth_rule),
        cmocka_unit_test(test_access_warnings),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_zot_examples),
        cmocka_unit_test(test_zot_examples_more),
        cmocka_unit_test(test_examples_dir),
        cmocka_unit_test(test_examples_content),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
