/* Unit tests for storage/digest.c: digest syntax and hashing. */
#include "test/unit/storage/st_helpers.h"

#define ABC256 "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define ABC512                                                                                                         \
    "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643" \
    "ce80e2a9ac94fa54ca49f"

static zn_err_t parse(const char *s, zn_digest_t *d)
{
    return zn_digest_parse(zn_slice(s, strlen(s)), d);
}

static void test_parse(void **state)
{
    zn_digest_t d;
    assert_int_equal(parse(ABC256, &d), ZN_OK);
    assert_int_equal(d.algo, ZN_DIGEST_SHA256);
    assert_string_equal(d.str, ABC256);
    assert_string_equal(zn_digest_hex(&d), ABC256 + 7);
    assert_int_equal(parse(ABC512, &d), ZN_OK);
    assert_int_equal(d.algo, ZN_DIGEST_SHA512);
    assert_int_equal(parse("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", &d), ZN_EINVAL);
    assert_int_equal(parse("sha256:ba7816bf", &d), ZN_EINVAL);
    assert_int_equal(parse("sha256:", &d), ZN_EINVAL);
    assert_int_equal(parse("sha256", &d), ZN_EINVAL);
    assert_int_equal(parse(":abc", &d), ZN_EINVAL);
    assert_int_equal(parse("", &d), ZN_EINVAL);
    assert_int_equal(parse("sha256:../../etc/passwd", &d), ZN_EINVAL);
    assert_int_equal(parse("SHA256:abc", &d), ZN_EINVAL);
    assert_int_equal(parse("md5:d41d8cd98f00b204e9800998ecf8427e", &d), ZN_EUNSUPP);
    assert_int_equal(parse("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", &d), ZN_EUNSUPP);
    assert_int_equal(parse("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", &d), ZN_EUNSUPP);
    assert_int_equal(parse("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0", &d), ZN_EINVAL);
}

static void test_hash(void **state)
{
    zn_digest_t d, e;
    zn_digest_of(ZN_DIGEST_SHA256, "abc", 3, &d);
    assert_string_equal(d.str, ABC256);
    zn_digest_of(ZN_DIGEST_SHA512, "abc", 3, &d);
    assert_string_equal(d.str, ABC512);
    zn_hash_t *h = zn_hash_new(ZN_DIGEST_SHA256);
    zn_hash_update(h, "a", 1);
    zn_hash_update(h, "", 0);
    zn_hash_update(h, "bc", 2);
    zn_hash_final(h, &e);
    zn_hash_free(h);
    assert_string_equal(e.str, ABC256);
    assert_true(zn_digest_eq(&e, &(zn_digest_t){0}) == false);
    assert_int_equal(parse(ABC256, &d), ZN_OK);
    assert_true(zn_digest_eq(&d, &e));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
