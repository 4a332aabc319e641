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
    char longname[300];
    memset(longname, 'a', sizeof(longname));
    assert_true(zn_storage_name_valid(zn_slice(longname, 255)));
    assert_false(zn_storage_name_valid(zn_slice(longname, 256)));
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
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_uuids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
