/* Unit tests for api/parse.c: query strings, Range, Content-Range, references, page sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "api/internal.h"

#define S(lit) zn_slice((lit), strlen(lit))
#define D256 "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void test_query_repeated(void **state)
{
    char v[64];
    zn_slice_t q = S("tag=a&digest=x&tag=b%2D1&tags=no&tag=&xtag=no&tag=c");
    static const char *const want[] = {"a", "b-1", "", "c"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(zn_api_query_get_nth(q, "tag", i, v, sizeof(v)), ZN_OK);
        assert_string_equal(v, want[i]);
    }
    assert_int_equal(zn_api_query_get_nth(q, "tag", 4, v, sizeof(v)), ZN_ENOENT);
    assert_int_equal(zn_api_query_get_nth(q, "digest", 1, v, sizeof(v)), ZN_ENOENT);
    assert_int_equal(zn_api_query_get_nth(S("tag=ok&tag=%zz"), "tag", 1, v, sizeof(v)), ZN_EINVAL);
    assert_int_equal(zn_api_query_get_nth(S(""), "tag", 0, v, sizeof(v)), ZN_ENOENT);
}

static void test_query(void **state)
{
    char v[64];
    zn_slice_t q = S("digest=sha256%3Aabc&mount=x&from=a%2Fb&empty=&flag&n=10");
    assert_int_equal(zn_api_query_get(q, "digest", v, sizeof(v)), ZN_OK);
    assert_string_equal(v, "sha256:abc");
    assert_int_equal(zn_api_query_get(q, "from", v, sizeof(v)), ZN_OK);
    assert_string_equal(v, "a/b");
    assert_int_equal(zn_api_query_get(q, "empty", v, sizeof(v)), ZN_OK);
    assert_string_equal(v, "");
    assert_int_equal(zn_api_query_get(q, "flag", v, sizeof(v)), ZN_OK);
    assert_int_equal(zn_api_query_get(q, "n", v, sizeof(v)), ZN_OK);
    assert_string_equal(v, "10");
    assert_int_equal(zn_api_query_get(q, "mountx", v, sizeof(v)), ZN_ENOENT);
    assert_int_equal(zn_api_query_get(q, "moun", v, sizeof(v)), ZN_ENOENT);
    assert_int_equal(zn_api_query_get(S(""), "n", v, sizeof(v)), ZN_ENOENT);
    assert_int_equal(zn_api_query_get(S("a=%zz"), "a", v, sizeof(v)), ZN_EINVAL);
    assert_int_equal(zn_api_query_get(S("a=%2"), "a", v, sizeof(v)), ZN_EINVAL);
    assert_int_equal(zn_api_query_get(S("a=%"), "a", v, sizeof(v)), ZN_EINVAL);
    assert_int_equal(zn_api_query_get(S("a=%00"), "a", v, sizeof(v)), ZN_EINVAL);
    assert_int_equal(zn_api_query_get(S("a=12345"), "a", v, 5), ZN_EINVAL); /* no silent cut */
    assert_int_equal(zn_api_query_get(S("a=1234"), "a", v, 5), ZN_OK);
    assert_int_equal(zn_api_query_get(S("x=1&a=first&a=second"), "a", v, sizeof(v)), ZN_OK);
    assert_string_equal(v, "first");
}

static void range_ok(const char *h, uint64_t size, uint64_t first, uint64_t last)
{
    zn_api_range_t r;
    assert_int_equal(zn_api_range_parse(S(h), size, &r), ZN_OK);
    assert_int_equal(r.first, first);
    assert_int_equal(r.last, last);
}

static void test_range(void **state)
{
    zn_api_range_t r;
    range_ok("bytes=0-0", 10, 0, 0);
    range_ok("bytes=2-5", 10, 2, 5);
    range_ok("bytes=2-", 10, 2, 9);
    range_ok("bytes=2-100", 10, 2, 9);
    range_ok("bytes=-3", 10, 7, 9);
    range_ok("bytes=-30", 10, 0, 9);
    range_ok(" Bytes=1-2 ", 10, 1, 2);
    assert_int_equal(zn_api_range_parse(S("bytes=10-"), 10, &r), ZN_ERANGE);
    assert_int_equal(zn_api_range_parse(S("bytes=0-0"), 0, &r), ZN_ERANGE);
    assert_int_equal(zn_api_range_parse(S("bytes=-0"), 10, &r), ZN_ERANGE);
    assert_int_equal(zn_api_range_parse(S("bytes=5-2"), 10, &r), ZN_EINVAL);
    assert_int_equal(zn_api_range_parse(S("bytes=0-1,3-4"), 10, &r), ZN_EINVAL);
    assert_int_equal(zn_api_range_parse(S("bytes=a-b"), 10, &r), ZN_EINVAL);
    assert_int_equal(zn_api_range_parse(S("bytes="), 10, &r), ZN_EINVAL);
    assert_int_equal(zn_api_range_parse(S("bytes=-"), 10, &r), ZN_EINVAL);
    assert_int_equal(zn_api_range_parse(S("items=0-1"), 10, &r), ZN_EINVAL);
    assert_int_equal(zn_api_range_parse(S("0-1"), 10, &r), ZN_EINVAL);
    assert_int_equal(zn_api_range_parse(S("bytes=99999999999999999999-"), 10, &r), ZN_EINVAL);
}

static void test_content_range(void **state)
{
    zn_api_range_t r;
    assert_int_equal(zn_api_content_range_parse(S("0-99"), &r), ZN_OK);
    assert_true(r.first == 0 && r.last == 99);
    assert_int_equal(zn_api_content_range_parse(S("bytes 100-199/500"), &r), ZN_OK);
    assert_true(r.first == 100 && r.last == 199);
    assert_int_equal(zn_api_content_range_parse(S("bytes=5-5/*"), &r), ZN_OK);
    assert_int_equal(zn_api_content_range_parse(S("5-4"), &r), ZN_EINVAL);
    assert_int_equal(zn_api_content_range_parse(S("5-"), &r), ZN_EINVAL);
    assert_int_equal(zn_api_content_range_parse(S("-5"), &r), ZN_EINVAL);
    assert_int_equal(zn_api_content_range_parse(S("0-9/5"), &r), ZN_EINVAL);
    assert_int_equal(zn_api_content_range_parse(S("0-9/x"), &r), ZN_EINVAL);
    assert_int_equal(zn_api_content_range_parse(S("0-9 junk"), &r), ZN_EINVAL);
    assert_int_equal(zn_api_content_range_parse(S(""), &r), ZN_EINVAL);
}

static void test_ref(void **state)
{
    zn_api_ref_t ref;
    assert_int_equal(zn_api_ref_parse(S("latest"), &ref), ZN_OK);
    assert_false(ref.is_digest);
    assert_string_equal(ref.text, "latest");
    assert_int_equal(zn_api_ref_parse(S(D256), &ref), ZN_OK);
    assert_true(ref.is_digest);
    assert_string_equal(ref.text, D256);
    assert_int_equal(zn_api_ref_parse(S("sha256:abc"), &ref), ZN_EINVAL);
    assert_int_equal(zn_api_ref_parse(S("md5:abc"), &ref), ZN_EUNSUPP);
    assert_int_equal(zn_api_ref_parse(S(".hidden"), &ref), ZN_EINVAL);
    assert_int_equal(zn_api_ref_parse(S(""), &ref), ZN_EINVAL);
    char long_tag[200];
    memset(long_tag, 'a', sizeof(long_tag));
    assert_int_equal(zn_api_ref_parse(zn_slice(long_tag, 129), &ref), ZN_EINVAL);
    assert_int_equal(zn_api_ref_parse(zn_slice(long_tag, 128), &ref), ZN_OK);
}

static void test_page_size(void **state)
{
    size_t n;
    assert_int_equal(zn_api_page_size_parse("10", SIZE_MAX, &n), ZN_OK);
    assert_int_equal(n, 10);
    assert_int_equal(zn_api_page_size_parse("0", SIZE_MAX, &n), ZN_OK);
    assert_int_equal(n, 0);
    assert_int_equal(zn_api_page_size_parse("99999999999999999999999", 1000, &n), ZN_OK);
    assert_int_equal(n, 1000);
    assert_int_equal(zn_api_page_size_parse("-1", SIZE_MAX, &n), ZN_EINVAL);
    assert_int_equal(zn_api_page_size_parse("", SIZE_MAX, &n), ZN_EINVAL);
    assert_int_equal(zn_api_page_size_parse("1x", SIZE_MAX, &n), ZN_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query), cmocka_unit_test(test_query_repeated), cmocka_unit_test(test_range),
        cmocka_unit_test(test_content_range), cmocka_unit_test(test_ref), cmocka_unit_test(test_page_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
