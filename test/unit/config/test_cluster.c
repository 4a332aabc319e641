/* Unit tests for config/cluster.c: zot's "cluster" section read into zn_config_t, zot's own
 * startup checks (members not empty, hashKey of 16 characters) with their key named, zinc's
 * extra checks (member form, duplicates, tls pair) and zn_config_split_hostport. */
#include "helpers.h"

#define KEY "\"hashKey\":\"loremipsumdolors\""

static void test_cluster_read(void **state)
{
    zn_config_t c;
    warns_t w;

    parse_ok("{" ROOT ",\"cluster\":{\"members\":[\"127.0.0.1:9000\",\"[::1]:9001\",\"zot-2.local:9002\"]," KEY "}}", &c, &w);
    assert_int_equal(w.n, 0);
    assert_true(c.cluster.present);
    assert_int_equal(c.cluster.nmembers, 3);
    assert_string_equal(c.cluster.members[1], "[::1]:9001");
    assert_string_equal(c.cluster.hash_key, "loremipsumdolors");
    assert_null(c.cluster.tls.cert);
    zn_config_release(&c);
    /* zot lower-cases keys: any case works */
    parse_ok("{" ROOT ",\"Cluster\":{\"MEMBERS\":[\"a:1\"],\"hashkey\":\"0123456789abcdef\"}}", &c, &w);
    assert_true(c.cluster.present);
    assert_int_equal(c.cluster.nmembers, 1);
    zn_config_release(&c);
    /* absent or null: not clustered */
    parse_ok("{" ROOT "}", &c, &w);
    assert_false(c.cluster.present);
    zn_config_release(&c);
    parse_ok("{" ROOT ",\"cluster\":null}", &c, &w);
    assert_false(c.cluster.present);
    zn_config_release(&c);
}

static void test_cluster_errors(void **state)
{
    expect_error("{" ROOT ",\"cluster\":{" KEY "}}", "config.json: cluster.members: cannot have 0 members in a scale out cluster");
    expect_error("{" ROOT ",\"cluster\":{\"members\":[]," KEY "}}",
                 "config.json: cluster.members: cannot have 0 members in a scale out cluster");
    expect_error("{" ROOT ",\"cluster\":{\"members\":[\"a:1\"]}}",
                 "config.json: cluster.hashKey: hashKey for scale out cluster must have 16 characters, got 0");
    expect_error("{" ROOT ",\"cluster\":{\"members\":[\"a:1\"],\"hashKey\":\"short\"}}",
                 "config.json: cluster.hashKey: hashKey for scale out cluster must have 16 characters, got 5");
    expect_error("{" ROOT ",\"cluster\":{\"members\":[\"a:1\"],\"hashKey\":\"loremipsumdolorsX\"}}",
                 "config.json: cluster.hashKey: hashKey for scale out cluster must have 16 characters, got 17");
    expect_error("{" ROOT ",\"cluster\":{\"members\":[\"a:1\"],\"hashKey\":16}}", "config.json: cluster.hashKey: expected string");
    expect_error("{" ROOT ",\"cluster\":{\"members\":[\"a:1\",\"b\"]," KEY "}}",
                 "config.json: cluster.members[1]: expected \"host:port\" (port 1-65535, IPv6 in brackets), got \"b\"");
    expect_error("{" ROOT ",\"cluster\":{\"members\":[\"a:70000\"]," KEY "}}",
                 "config.json: cluster.members[0]: expected \"host:port\" (port 1-65535, IPv6 in brackets), got \"a:70000\"");
    expect_error("{" ROOT ",\"cluster\":{\"members\":[\"::1:80\"]," KEY "}}",
                 "config.json: cluster.members[0]: expected \"host:port\" (port 1-65535, IPv6 in brackets), got \"::1:80\"");
    expect_error("{" ROOT ",\"cluster\":{\"members\":[\"a:1\",\"b:2\",\"A:1\"]," KEY "}}",
                 "config.json: cluster.members[2]: \"A:1\" is already members[0]");
    expect_error("{" ROOT ",\"cluster\":{\"members\":[\"a:1\"]," KEY ",\"tls\":{\"cert\":\"/c\"}}}",
                 "config.json: cluster.tls: cert and key must be given together");
    expect_error("{" ROOT ",\"cluster\":{\"members\":[\"a:1\"]," KEY ",\"replicas\":2}}",
                 "config.json: cluster.replicas: unknown key");
}

static void test_cluster_tls_warning(void **state)
{
    expect_one_warning("{" ROOT ",\"cluster\":{\"members\":[\"a:1\"]," KEY ",\"tls\":{\"cacert\":\"/ca.pem\"}}}",
                       "config.json: cluster.tls: ignored: members are reached over https only when http.tls is set (as in zot)");
    zn_config_t c;
    warns_t w;
    parse_ok("{" ROOT ",\"http\":{\"tls\":{\"cert\":\"/s.crt\",\"key\":\"/s.key\"}},\"cluster\":{\"members\":[\"a:1\"]," KEY
             ",\"tls\":{\"cert\":\"/c.crt\",\"key\":\"/c.key\",\"cacert\":\"/ca.pem\"}}}",
             &c, &w);
    assert_int_equal(w.n, 0);
    assert_string_equal(c.cluster.tls.cert, "/c.crt");
    assert_string_equal(c.cluster.tls.key, "/c.key");
    assert_string_equal(c.cluster.tls.cacert, "/ca.pem");
    zn_config_release(&c);
}

static void test_split_hostport(void **state)
{
    char host[16];
    int port = 0;

    assert_int_equal(zn_config_split_hostport("127.0.0.1:8080", host, sizeof(host), &port), ZN_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(zn_config_split_hostport("[::1]:1", host, sizeof(host), &port), ZN_OK);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 1);
    assert_int_equal(zn_config_split_hostport("zot:65535", host, sizeof(host), &port), ZN_OK);
    assert_int_equal(port, 65535);
    const char *bad[] = {"",     ":80",    "a",     "a:",      "a:0",   "a:65536",  "a:8x",
                         "a:-1", "::1:80", "[::1]", "[::1]80", "[]:80", "[a]b]:80", "averyveryverylonghostname:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (zn_config_split_hostport(bad[i], host, sizeof(host), &port) != ZN_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_read),
        cmocka_unit_test(test_cluster_errors),
        cmocka_unit_test(test_cluster_tls_warning),
        cmocka_unit_test(test_split_hostport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
