/* Unit tests for api/sync_util.c: WWW-Authenticate challenges, the credentials file, zot's
 * local -> upstream name mapping (content prefix/destination/stripPrefix) and tag filters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
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

static void expect_local(zn_config_sync_content_t *cs, size_t n, const char *upstream, const char *want)
{
    zn_config_sync_registry_t r = {0};
    const zn_config_sync_content_t *c;
    char out[ZN_SYNC_NAME_MAX + 1];
    r.content = cs;
    r.ncontent = n;
    zn_err_t err = zn_sync_local_name(&r, upstream, out, sizeof(out), &c);
    if (want == NULL) {
        if (err != ZN_ENOENT)
            fail_msg("%s: expected no mapping, got %s", upstream, out);
        return;
    }
    if (err != ZN_OK)
        fail_msg("%s: expected %s, got error %d", upstream, want, err);
    assert_string_equal(out, want);
    assert_non_null(c);
}

/* upstream -> local (periodic sync), zot's getRepoDestination, and back again */
static void test_local_names(void **state)
{
    zn_config_sync_content_t a[] = {content("/repo1/repo", "/repo", true)};
    expect_local(a, 1, "repo1/repo", "repo");
    expect_local(a, 1, "repo1/other", NULL);
    zn_config_sync_content_t b[] = {content("/repo1/repo", "/repo", false)};
    expect_local(b, 1, "repo1/repo", "repo/repo1/repo");
    zn_config_sync_content_t c[] = {content("/repo1/**", "/repo", true)};
    expect_local(c, 1, "repo1/repo2/x", "repo/repo2/x");
    expect_local(c, 1, "repo2/x", NULL);
    zn_config_sync_content_t d[] = {content("library/**", NULL, false)};
    expect_local(d, 1, "library/alpine", "library/alpine");
    expect_local(d, 1, "alpine", NULL);
    zn_config_sync_content_t e[] = {content("/other/**", "/mirrored", true), content("lib/**", NULL, false)};
    expect_local(e, 2, "other/tool", "mirrored/tool");
    expect_local(e, 2, "lib/app", "lib/app");
    expect_local(e, 2, "skip/me", NULL);
    /* a name whose local form maps back to another upstream is refused: upstream "a/y" would
     * be local "lib/y", which the on-demand direction (first rule wins) reads as "x/y" */
    zn_config_sync_content_t f[] = {content("x/**", "/lib", true), content("a/**", "/lib", true)};
    expect_local(f, 2, "x/y", "lib/y");
    expect_local(f, 2, "a/y", NULL);
    zn_config_sync_registry_t r = {0};
    const zn_config_sync_content_t *cc;
    char out[ZN_SYNC_NAME_MAX + 1];
    assert_int_equal(zn_sync_local_name(&r, "library/alpine", out, sizeof(out), &cc), ZN_OK);
    assert_string_equal(out, "library/alpine");
    assert_int_equal(zn_sync_local_name(&r, "", out, sizeof(out), &cc), ZN_ENOENT);
    assert_int_equal(zn_sync_local_name(&r, "library/alpine", out, 5, &cc), ZN_ETOOBIG);
}

static void test_link_next(void **state)
{
    char out[256];
    assert_int_equal(zn_sync_link_next("</v2/_catalog?last=b&n=100>; rel=\"next\"", out, sizeof(out)), ZN_OK);
    assert_string_equal(out, "/v2/_catalog?last=b&n=100");
    /* absolute URLs keep their path only; unquoted rel; several links; rel lists */
    assert_int_equal(zn_sync_link_next("<https://evil.example:1/v2/r/tags/list?n=2&last=x>;rel=next", out, sizeof(out)), ZN_OK);
    assert_string_equal(out, "/v2/r/tags/list?n=2&last=x");
    assert_int_equal(zn_sync_link_next("</v2/a?p=1>; rel=\"prev\", </v2/a?p=3>; title=\"x, y\"; rel=\"last next\"", out, sizeof(out)),
                     ZN_OK);
    assert_string_equal(out, "/v2/a?p=3");
    assert_int_equal(zn_sync_link_next("</v2/a?p=1>; REL=\"Next\"", out, sizeof(out)), ZN_OK);
    assert_string_equal(out, "/v2/a?p=1");
    /* no next link */
    assert_int_equal(zn_sync_link_next("</v2/a?p=1>; rel=\"prev\"", out, sizeof(out)), ZN_ENOENT);
    assert_int_equal(zn_sync_link_next("", out, sizeof(out)), ZN_ENOENT);
    assert_int_equal(zn_sync_link_next("</v2/a>; rel=\"nextpage\"", out, sizeof(out)), ZN_ENOENT);
    /* malformed, or not a registry path */
    assert_int_equal(zn_sync_link_next("/v2/a; rel=next", out, sizeof(out)), ZN_EINVAL);
    assert_int_equal(zn_sync_link_next("</v2/a; rel=next", out, sizeof(out)), ZN_EINVAL);
    assert_int_equal(zn_sync_link_next("</other/path>; rel=next", out, sizeof(out)), ZN_EINVAL);
    assert_int_equal(zn_sync_link_next("<http://host>; rel=next", out, sizeof(out)), ZN_EINVAL);
    assert_int_equal(zn_sync_link_next("</v2/a b>; rel=next", out, sizeof(out)), ZN_EINVAL);
    assert_int_equal(zn_sync_link_next("</v2/_catalog?last=b&n=100>; rel=next", out, 10), ZN_ETOOBIG);
}

static void test_tokens(void **state)
{
    char out[512];
    zn_sync_cred_t cred = {.host = "h", .user = "user", .pass = "pa:ss"};
    assert_true(zn_sync_basic_auth(&cred, out, sizeof(out)));
    assert_string_equal(out, "Basic dXNlcjpwYTpzcw==");
    assert_true(zn_sync_basic_auth(NULL, out, sizeof(out)));
    assert_string_equal(out, "");
    assert_false(zn_sync_basic_auth(&cred, out, 10));
    zn_sync_challenge_t ch = {.scheme = "Bearer", .realm = "https://auth.example/token", .service = "registry example"};
    assert_true(zn_sync_token_url(&ch, "repository:lib/a:pull", out, sizeof(out)));
    assert_string_equal(out, "https://auth.example/token?service=registry%20example&scope=repository%3Alib%2Fa%3Apull");
    memcpy(ch.realm, "https://a/t?x=1", 16);
    assert_true(zn_sync_token_url(&ch, "registry:catalog:*", out, sizeof(out)));
    assert_string_equal(out, "https://a/t?x=1&service=registry%20example&scope=registry%3Acatalog%3A%2A");
    assert_false(zn_sync_token_url(&ch, "repository:lib/a:pull", out, 20));
    zn_sync_challenge_t basic = {.scheme = "Basic", .realm = "r"};
    assert_false(zn_sync_token_url(&basic, "x", out, sizeof(out)));
    uint64_t ttl;
    const char *t1 = "{\"token\":\"abc\",\"expires_in\":300}";
    assert_true(zn_sync_token_parse(t1, strlen(t1), out, sizeof(out), &ttl));
    assert_string_equal(out, "Bearer abc");
    assert_true(ttl == 295);
    const char *t2 = "{\"access_token\":\"xyz\"}";
    assert_true(zn_sync_token_parse(t2, strlen(t2), out, sizeof(out), &ttl));
    assert_string_equal(out, "Bearer xyz");
    assert_true(ttl == 55);
    const char *t3 = "{\"token\":\"\"}";
    assert_false(zn_sync_token_parse(t3, strlen(t3), out, sizeof(out), &ttl));
    assert_false(zn_sync_token_parse("not json", 8, out, sizeof(out), &ttl));
    assert_false(zn_sync_token_parse(t1, strlen(t1), out, 8, &ttl));
    char host[64];
    zn_sync_url_host("https://reg.example:5000", host, sizeof(host));
    assert_string_equal(host, "reg.example:5000");
    zn_sync_url_host("https://reg.example:5000", host, 4);
    assert_string_equal(host, "");
}

static void test_schema_tag(void **state)
{
    const char *hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char t[128];
    assert_true(snprintf(t, sizeof(t), "sha256-%s", hex) < (int)sizeof(t));
    assert_true(zn_sync_schema_tag(t));
    assert_true(snprintf(t, sizeof(t), "sha256-%s.sig", hex) < (int)sizeof(t));
    assert_true(zn_sync_schema_tag(t));
    assert_true(snprintf(t, sizeof(t), "sha256-%s.sbom", hex) < (int)sizeof(t));
    assert_true(zn_sync_schema_tag(t));
    assert_true(snprintf(t, sizeof(t), "sha256-%s.tar", hex) < (int)sizeof(t));
    assert_false(zn_sync_schema_tag(t));
    assert_true(snprintf(t, sizeof(t), "sha256-%.63s", hex) < (int)sizeof(t));
    assert_false(zn_sync_schema_tag(t));
    assert_true(snprintf(t, sizeof(t), "sha256-%sa", hex) < (int)sizeof(t));
    assert_false(zn_sync_schema_tag(t));
    assert_false(zn_sync_schema_tag("sha256-XYZ"));
    assert_false(zn_sync_schema_tag("v1.0.0"));
}

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static zn_err_t refs_of(const char *json, zn_sync_refs_t *r)
{
    return zn_sync_manifest_refs(json, strlen(json), r);
}

/* What has to be in the store before a manifest, in order */
static void test_manifest_refs(void **state)
{
    zn_sync_refs_t *r = malloc(sizeof(*r));
    assert_int_equal(refs_of("{\"config\":{\"digest\":\"" D1 "\"},\"layers\":[{\"digest\":\"" D2 "\"},{\"digest\":\"" D3
                             "\"},{\"digest\":\"" D2 "\"}],\"subject\":{\"digest\":\"" D3 "\"}}",
                             r),
                     ZN_OK);
    assert_false(r->index);
    assert_int_equal(r->nchildren, 0);
    assert_int_equal(r->nblobs, 3); /* config first, a repeated layer once, the subject is no dependency */
    assert_string_equal(r->blobs[0].str, D1);
    assert_string_equal(r->blobs[1].str, D2);
    assert_string_equal(r->blobs[2].str, D3);
    assert_int_equal(refs_of("{\"manifests\":[{\"digest\":\"" D2 "\"},{\"digest\":\"" D1 "\"}]}", r), ZN_OK);
    assert_true(r->index);
    assert_int_equal(r->nchildren, 2);
    assert_string_equal(r->children[0].str, D2);
    assert_string_equal(r->children[1].str, D1);
    assert_int_equal(r->nblobs, 0);
    assert_int_equal(refs_of("{\"blobs\":[{\"digest\":\"" D1 "\"}]}", r), ZN_OK);
    assert_int_equal(r->nblobs, 1);
    assert_int_equal(refs_of("{\"manifests\":[]}", r), ZN_OK);
    assert_true(r->index);
    /* malformed */
    assert_int_equal(refs_of("[]", r), ZN_EINVAL);
    assert_int_equal(refs_of("{\"layers\":{}}", r), ZN_EINVAL);
    assert_int_equal(refs_of("{\"layers\":[{\"digest\":\"sha256:12\"}]}", r), ZN_EINVAL);
    assert_int_equal(refs_of("{\"layers\":[{\"size\":1}]}", r), ZN_EINVAL);
    assert_int_equal(refs_of("{\"config\":\"" D1 "\"}", r), ZN_EINVAL);
    assert_int_equal(refs_of("{\"manifests\":[{\"digest\":\"" D2 "\"}],\"config\":{\"digest\":\"" D1 "\"}}", r), ZN_EINVAL);
    assert_int_equal(r->nchildren, 0); /* cleared on error */
    /* too many */
    char *big = malloc(100 * (ZN_SYNC_REFS_MAX + 2));
    size_t n = (size_t)sprintf(big, "{\"layers\":[");
    for (int i = 0; i <= ZN_SYNC_REFS_MAX; i++)
        n += (size_t)sprintf(big + n, "%s{\"digest\":\"sha256:%064x\"}", i ? "," : "", i);
    sprintf(big + n, "]}");
    assert_int_equal(refs_of(big, r), ZN_ETOOBIG);
    free(big);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_challenge), cmocka_unit_test(test_creds),       cmocka_unit_test(test_names),
        cmocka_unit_test(test_semver),    cmocka_unit_test(test_tag_filters),
        cmocka_unit_test(test_local_names), cmocka_unit_test(test_link_next), cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_manifest_refs), cmocka_unit_test(test_schema_tag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
