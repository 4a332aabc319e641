/* Unit tests for api/sync_util.c: WWW-Authenticate challenges, the credentials file, zot's
 * local -> upstream name mapping (content prefix/destination/stripPrefix) and tag filters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "api/sync_int.h"

static void test_challenge(void **state)
{
    zn_sync_challenge_t c;
    assert_int_equal(zn_sync_challenge_parse("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
                                             "scope=\"repository:library/alpine:pull\"",
                                             &c),
                     ZN_OK);
    assert_string_equal(c.scheme, "Bearer");
    assert_string_equal(c.realm, "https://auth.docker.io/token");
    assert_string_equal(c.service, "registry.docker.io");
    assert_string_equal(c.scope, "repository:library/alpine:pull");
    /* scheme in any case, spaces, unquoted values, unknown and escaped parameters */
    assert_int_equal(zn_sync_challenge_parse("  bearer   realm=http://127.0.0.1:1/t , error=\"insuff\\\"icient\",service=s", &c), ZN_OK);
    assert_string_equal(c.scheme, "Bearer");
    assert_string_equal(c.realm, "http://127.0.0.1:1/t");
    assert_string_equal(c.service, "s");
    assert_string_equal(c.scope, "");
    assert_int_equal(zn_sync_challenge_parse("Basic realm=\"Registry Realm\"", &c), ZN_OK);
    assert_string_equal(c.scheme, "Basic");
    assert_string_equal(c.realm, "Registry Realm");
    assert_int_equal(zn_sync_challenge_parse("Basic", &c), ZN_OK);
    assert_string_equal(c.realm, "");
    /* malformed */
    assert_int_equal(zn_sync_challenge_parse("", &c), ZN_EINVAL);
    assert_int_equal(zn_sync_challenge_parse("Bearer realm=\"unterminated", &c), ZN_EINVAL);
    assert_int_equal(zn_sync_challenge_parse("Bearer realm", &c), ZN_EINVAL);
    assert_int_equal(zn_sync_challenge_parse("Bearer realm=\"a\" service=\"b\"", &c), ZN_EINVAL);
    assert_int_equal(zn_sync_challenge_parse("Negotiate x=1", &c), ZN_OK); /* kept; the mirror answers only Bearer and Basic */
    assert_string_equal(c.scheme, "Negotiate");
    char big[2100];
    memset(big, 'a', sizeof(big));
    memcpy(big, "Bearer realm=", 13);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(zn_sync_challenge_parse(big, &c), ZN_ETOOBIG);
}

static void test_creds(void **state)
{
    zn_sync_creds_t c;
    char err[256];
    const char *ok = "{\"127.0.0.1:5000\":{\"username\":\"u\",\"password\":\"p\"},\"r.io\":{\"Username\":\"U2\",\"PASSWORD\":\"P2\"}}";
    assert_int_equal(zn_sync_creds_parse("creds.json", ok, strlen(ok), &c, err, sizeof(err)), ZN_OK);
    assert_int_equal(c.n, 2);
    const zn_sync_cred_t *e = zn_sync_creds_find(&c, "127.0.0.1:5000");
    assert_non_null(e);
    assert_string_equal(e->user, "u");
    assert_string_equal(e->pass, "p");
    e = zn_sync_creds_find(&c, "r.io");
    assert_string_equal(e->user, "U2");
    assert_string_equal(e->pass, "P2");
    assert_null(zn_sync_creds_find(&c, "127.0.0.1"));
    zn_sync_creds_release(&c);

    const char *bad[] = {"[1]", "{\"h\":1}", "{\"h\":{\"username\":5}}", "{\"h\":{}", "{\"a\":{},\"a\":{}}"};
    const char *msg[] = {"creds.json: expected an object", "creds.json: h: expected", "creds.json: h: expected",
                         "creds.json: line 1: invalid JSON", "creds.json: line 1: invalid JSON"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(zn_sync_creds_parse("creds.json", bad[i], strlen(bad[i]), &c, err, sizeof(err)), ZN_EINVAL);
        assert_int_equal(c.n, 0);
        if (strncmp(err, msg[i], strlen(msg[i])) != 0)
            fail_msg("%s: got %s", bad[i], err);
    }
}

static zn_config_sync_content_t content(const char *prefix, const char *dest, bool strip)
{
    zn_config_sync_content_t c = {0};
    c.prefix = (char *)prefix;
    c.destination = (char *)dest;
    c.strip_prefix = strip;
    return c;
}

static void expect_upstream(zn_config_sync_content_t *cs, size_t n, const char *local, const char *want)
{
    zn_config_sync_registry_t r = {0};
    const zn_config_sync_content_t *c;
    char out[ZN_SYNC_NAME_MAX + 1];
    r.content = cs;
    r.ncontent = n;
    zn_err_t err = zn_sync_upstream_name(&r, local, out, sizeof(out), &c);
    if (want == NULL) {
        if (err != ZN_ENOENT)
            fail_msg("%s: expected no mapping, got %s", local, out);
        return;
    }
    if (err != ZN_OK)
        fail_msg("%s: expected %s, got %s", local, want, zn_err_str(err));
    assert_string_equal(out, want);
    assert_non_null(c);
}

/* The cases of zot's content_test.go (GetRepoSource / GetContentByLocalRepo). */
static void test_names(void **state)
{
    zn_config_sync_content_t a[] = {content("/repo1/repo", "/repo", true)};
    expect_upstream(a, 1, "repo", "repo1/repo");
    expect_upstream(a, 1, "other", NULL);
    zn_config_sync_content_t b[] = {content("/repo1/repo", "/repo", false)};
    expect_upstream(b, 1, "repo/repo1/repo", "repo1/repo");
    expect_upstream(b, 1, "repo1/repo", NULL);
    zn_config_sync_content_t c[] = {content("/repo1/**", "/repo", true)};
    expect_upstream(c, 1, "repo/repo2/x", "repo1/repo2/x");
    expect_upstream(c, 1, "repo/a", "repo1/a");
    zn_config_sync_content_t d[] = {content("/library/**", NULL, false)};
    expect_upstream(d, 1, "library/alpine", "library/alpine");
    expect_upstream(d, 1, "alpine", NULL);
    zn_config_sync_content_t e[] = {content("**", "/", false)};
    expect_upstream(e, 1, "a/b/c", "a/b/c");
    /* first matching entry wins */
    zn_config_sync_content_t f[] = {content("/x/**", "/m", true), content("/y/**", "/m", true)};
    expect_upstream(f, 2, "m/z", "x/z");
    /* no content rules: everything, same name */
    zn_config_sync_registry_t r = {0};
    const zn_config_sync_content_t *cc;
    char out[ZN_SYNC_NAME_MAX + 1];
    assert_int_equal(zn_sync_upstream_name(&r, "library/alpine", out, sizeof(out), &cc), ZN_OK);
    assert_string_equal(out, "library/alpine");
    assert_null(cc);
    assert_int_equal(zn_sync_upstream_name(&r, "library/alpine", out, 5, &cc), ZN_ETOOBIG);
}

static void test_semver(void **state)
{
    const char *ok[] = {"1", "1.2", "1.2.3", "v1.2.3", "1.2.3-rc.1", "1.2.3+build.5", "1.2.3-alpha-1+b", "v0", "10.20.30"};
    const char *no[] = {"", "v", "latest", "1.", "1.2.3.4", "1.2.3-", "1.2.3+", "a1.2", "1.2.3-rc..1", "1.x", "V1.2"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!zn_sync_semver_valid(ok[i]))
            fail_msg("%s should be semver", ok[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (zn_sync_semver_valid(no[i]))
            fail_msg("%s should not be semver", no[i]);
}

static void test_tag_filters(void **state)
{
    zn_config_sync_content_t c = content("**", NULL, false);
    assert_true(zn_sync_tag_allowed(NULL, "anything"));
    assert_true(zn_sync_tag_allowed(&c, "latest"));
    c.tags_regex = "^4\\.";
    assert_true(zn_sync_tag_allowed(&c, "4.1"));
    assert_false(zn_sync_tag_allowed(&c, "14.1"));
    c.tags_regex = "4.*"; /* unanchored, as Go's MatchString */
    assert_true(zn_sync_tag_allowed(&c, "v14"));
    c.tags_exclude_regex = ".*-(amd64|arm64)$";
    assert_true(zn_sync_tag_allowed(&c, "4.1"));
    assert_false(zn_sync_tag_allowed(&c, "4.1-arm64"));
    c.tags_semver = true;
    assert_true(zn_sync_tag_allowed(&c, "4.1.0-rc1"));
    assert_true(zn_sync_tag_allowed(&c, "4-latest")); /* Masterminds: 4 with pre-release "latest" */
    assert_false(zn_sync_tag_allowed(&c, "latest4"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_challenge), cmocka_unit_test(test_creds),       cmocka_unit_test(test_names),
        cmocka_unit_test(test_semver),    cmocka_unit_test(test_tag_filters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
