/* Unit tests for storage/names.c: repository names, tags, upload ids. */
#include "test/unit/storage/st_helpers.h"

static bool name_ok(const char *s)
{
    return zn_storage_name_valid(zn_slice(s, strlen(s)));
}

static void test_names(void **state)
{
    assert_true(name_ok("a"));
    assert_true(name_ok("library/alpine"));
    assert_true(name_ok("a/b/c/d"));
    assert_true(name_ok("a.b_c__d---e"));
    assert_true(name_ok("0abc9"));
    assert_false(name_ok(""));
    assert_false(name_ok(".."));
    assert_false(name_ok("a/../b"));
    assert_false(name_ok("a/./b"));
    assert_false(name_ok("%2e%2e"));
    assert_false(name_ok("a/%2e%2e/b"));
    assert_false(name_ok("Alpine"));
    assert_false(name_ok("a//b"));
    assert_false(name_ok("/a"));
    assert_false(name_ok("a/"));
    assert_false(name_ok("a___b"));
    assert_false(name_ok("a._b"));
    assert_false(name_ok("a-"));
    assert_false(name_ok("-a"));
    assert_false(name_ok(".uploads"));
    assert_false(name_ok("a/.zinc"));
    assert_false(name_ok("a b"));
    assert_false(zn_storage_name_valid(zn_slice("a\0b", 3)));
}

/* Components the grammar allows although they are route literals or layout entries: the
 * name is valid; routing (server/router.c) and creation (storage/repo.c) deal with them. */
static void test_names_tricky(void **state)
{
    static const char *const ok[] = {"blobs", "a/blobs", "blobs/uploads", "x/blobs/uploads", "team/manifests/app",
                                     "t/tags/list", "tags/list", "a/referrers", "uploads", "a/index.json", "a/oci-layout",
                                     "a__b/c--d", "a---b", "a.b.c/d_e__f", "v2/v2", "sha256", "a/sha256/blobs"};
    static const char *const bad[] = {"a/blobs/", "/blobs", "A/blobs", "a//blobs", "a/../blobs", "a/./b", "a/.uploads",
                                      "__a", "a__", "a_.b", "a.-b", "a/-b", "a/_catalog", "_catalog", "a/b:c", "a/b@c",
                                      "a..b", "a/blobs/sha256:00", "a/B"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!name_ok(ok[i]))
            fail_msg("'%s' should be valid", ok[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (name_ok(bad[i]))
            fail_msg("'%s' should be invalid", bad[i]);
}

static void test_names_length(void **state)
{
    char longname[300];
    memset(longname, 'a', sizeof(longname));
    assert_true(zn_storage_name_valid(zn_slice(longname, 255)));
    assert_false(zn_storage_name_valid(zn_slice(longname, 256)));
    /* 255 with every kind of separator and route literals as components */
    char n[300] = "";
    while (strlen(n) < 240)
        strcat(n, "a__b--c.d/blobs/"); /* test-only; sizes known */
    size_t len = strlen(n);
    memset(n + len, 'z', 255 - len);
    n[255] = '\0';
    assert_true(name_ok(n));
    n[255] = 'z';
    n[256] = '\0';
    assert_false(name_ok(n));
}

static bool tag_ok(const char *s)
{
    return zn_storage_tag_valid(zn_slice(s, strlen(s)));
}

static void test_tags(void **state)
{
    assert_true(tag_ok("latest"));
    assert_true(tag_ok("v1.2.3-rc_1"));
    assert_true(tag_ok("_x"));
    assert_true(tag_ok("UPPER"));
    assert_false(tag_ok(""));
    assert_false(tag_ok(".x"));
    assert_false(tag_ok("-x"));
    assert_false(tag_ok("a/b"));
    assert_false(tag_ok("a:b"));
    assert_false(tag_ok("sha256:abc"));
    char t[200];
    memset(t, 'x', sizeof(t));
    assert_true(zn_storage_tag_valid(zn_slice(t, 128)));
    assert_false(zn_storage_tag_valid(zn_slice(t, 129)));
}

static void test_uuids(void **state)
{
    assert_true(zn_storage_uuid_valid(ZN_SLICE_LIT("0123abcd-0123-4567-89ab-0123456789ab")));
    assert_false(zn_storage_uuid_valid(ZN_SLICE_LIT("0123ABCD-0123-4567-89ab-0123456789ab")));
    assert_false(zn_storage_uuid_valid(ZN_SLICE_LIT("0123abcd-0123-4567-89ab-0123456789a")));
    assert_false(zn_storage_uuid_valid(ZN_SLICE_LIT("0123abcd/0123-4567-89ab-0123456789ab")));
    assert_false(zn_storage_uuid_valid(ZN_SLICE_LIT("../../../../../../../../../etc/passwd")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_names_tricky),
        cmocka_unit_test(test_names_length),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_uuids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
