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

/* Resuming an exported SHA-256 state gives the one-shot digest at every split point around
 * the 64-byte block edges, and across a continued export (an upload moving between three
 * replicas). Fails if OpenSSL's SHA256_CTX layout stops being what digest.c expects. */
static void test_hash_export_import(void **state)
{
    static const size_t splits[] = {0, 1, 55, 56, 63, 64, 65, 127, 128, 1000, 65536 + 7};
    size_t total = 3 * 65536 + 11;
    unsigned char *data = malloc(total);
    for (size_t i = 0; i < total; i++)
        data[i] = (unsigned char)(i * 131 + (i >> 8));
    zn_digest_t want, got;
    zn_digest_of(ZN_DIGEST_SHA256, data, total, &want);
    for (size_t k = 0; k < sizeof(splits) / sizeof(splits[0]); k++) {
        size_t a = splits[k], b = a + (a * 7 + 3) % 300;
        char text[ZN_HASH_STATE_MAX];
        uint64_t count = 99;
        zn_hash_t *h = zn_hash_new(ZN_DIGEST_SHA256), *r;
        zn_hash_update(h, data, a);
        assert_int_equal(zn_hash_export(h, text, &count), ZN_OK);
        assert_int_equal(count, a);
        assert_true(strlen(text) < ZN_HASH_STATE_MAX);
        zn_hash_free(h);
        assert_int_equal(zn_hash_import(text, strlen(text), &r, &count), ZN_OK);
        assert_int_equal(count, a);
        zn_hash_update(r, data + a, b - a);
        assert_int_equal(zn_hash_export(r, text, &count), ZN_OK);
        assert_int_equal(count, b);
        zn_hash_free(r);
        assert_int_equal(zn_hash_import(text, strlen(text), &r, &count), ZN_OK);
        zn_hash_update(r, data + b, total - b);
        zn_hash_final(r, &got);
        zn_hash_free(r);
        assert_string_equal(got.str, want.str);
    }
    free(data);
}

static void test_hash_import_rejects(void **state)
{
    zn_hash_t *h = zn_hash_new(ZN_DIGEST_SHA256), *r = NULL;
    char text[ZN_HASH_STATE_MAX], bad[ZN_HASH_STATE_MAX + 8];
    uint64_t count;
    zn_hash_update(h, "abc", 3);
    assert_int_equal(zn_hash_export(h, text, &count), ZN_OK);
    zn_hash_free(h);
    size_t n = strlen(text);
    assert_int_equal(zn_hash_import(text, n, &r, &count), ZN_OK);
    zn_digest_t d;
    zn_hash_final(r, &d);
    zn_hash_free(r);
    assert_string_equal(d.str, ABC256);

    assert_int_equal(zn_hash_import("", 0, &r, &count), ZN_EINVAL);
    assert_int_equal(zn_hash_import(text, n - 1, &r, &count), ZN_EINVAL); /* a pending byte cut */
    memcpy(bad, text, n + 1);
    bad[0] = '2'; /* an unknown version */
    assert_int_equal(zn_hash_import(bad, n, &r, &count), ZN_EINVAL);
    memcpy(bad, text, n + 1);
    bad[2] = '4'; /* a count that disagrees with the pending bytes */
    assert_int_equal(zn_hash_import(bad, n, &r, &count), ZN_EINVAL);
    memcpy(bad, text, n + 1);
    bad[6] = 'G'; /* not hex */
    assert_int_equal(zn_hash_import(bad, n, &r, &count), ZN_EINVAL);
    memcpy(bad, text, n + 1);
    bad[n - 1] = 'z';
    assert_int_equal(zn_hash_import(bad, n, &r, &count), ZN_EINVAL);
    assert_int_equal(zn_hash_import("1:-1:", 5, &r, &count), ZN_EINVAL);
    memset(bad, '1', sizeof(bad));
    assert_int_equal(zn_hash_import(bad, sizeof(bad), &r, &count), ZN_EINVAL);

    h = zn_hash_new(ZN_DIGEST_SHA512);
    assert_int_equal(zn_hash_export(h, text, &count), ZN_EUNSUPP);
    zn_hash_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_hash_export_import),
        cmocka_unit_test(test_hash_import_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
