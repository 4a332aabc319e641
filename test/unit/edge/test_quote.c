/* Unit tests for common/edge/quote.c and print.c: Go's strconv.Quote (what zot's %q writes
 * into its realm challenge) byte for byte, including control bytes, invalid UTF-8 and
 * non-ASCII runes; the challenge builder; the query parameter reader (percent-decoding,
 * '+', repeated keys, never a cut value). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/edge/edge.h"

#define S(lit) zn_slice((lit), sizeof(lit) - 1)

static void expect_quote(zn_slice_t in, const char *want)
{
    zn_buf_t b;
    zn_buf_init(&b, 1024);
    assert_int_equal(zn_edge_quote(&b, in), ZN_OK);
    assert_int_equal(zn_buf_append(&b, "", 1), ZN_OK);
    if (strcmp(b.p, want) != 0)
        fail_msg("quote: got %s, want %s", b.p, want);
    zn_buf_release(&b);
}

/* The expected strings are what Go's strconv.Quote returns for the same bytes. */
static void test_quote_ascii(void **state)
{
    expect_quote(S(""), "\"\"");
    expect_quote(S("zot"), "\"zot\"");
    expect_quote(S("my \"zot\" \\ reg"), "\"my \\\"zot\\\" \\\\ reg\"");
    expect_quote(S("'single' ok"), "\"'single' ok\"");
    expect_quote(S("\a\b\f\n\r\t\v"), "\"\\a\\b\\f\\n\\r\\t\\v\"");
    expect_quote(S("\x00\x01\x1b\x1f\x7f"), "\"\\x00\\x01\\x1b\\x1f\\x7f\"");
    expect_quote(S("a\r\nSet-Cookie: x"), "\"a\\r\\nSet-Cookie: x\"");
}

static void test_quote_unicode(void **state)
{
    /* printable runes stay as they are */
    expect_quote(S("h\xc3\xa9llo"), "\"h\xc3\xa9llo\"");                      /* héllo */
    expect_quote(S("\xe6\x97\xa5\xe6\x9c\xac"), "\"\xe6\x97\xa5\xe6\x9c\xac\""); /* 日本 */
    expect_quote(S("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");               /* U+1F600 */
    expect_quote(S("\xef\xbf\xbd"), "\"\xef\xbf\xbd\"");                       /* U+FFFD itself is printable */
    /* not printable: \u for the BMP, \U beyond */
    expect_quote(S("\xc2\xa0"), "\"\\u00a0\"");             /* no-break space (Zs) */
    expect_quote(S("\xc2\xad"), "\"\\u00ad\"");             /* soft hyphen (Cf) */
    expect_quote(S("\xc2\x85"), "\"\\u0085\"");             /* C1 control */
    expect_quote(S("\xe2\x80\xa8"), "\"\\u2028\"");         /* line separator */
    expect_quote(S("\xef\xbb\xbf"), "\"\\ufeff\"");         /* BOM */
    expect_quote(S("\xf3\xa0\x80\x81"), "\"\\U000e0001\""); /* language tag (Cf) */
    expect_quote(S("\xf4\x8f\xbf\xbf"), "\"\\U0010ffff\""); /* noncharacter */
    /* invalid UTF-8: each bad byte as \x, the rest decodes again */
    expect_quote(S("\xff"), "\"\\xff\"");
    expect_quote(S("a\xc3"), "\"a\\xc3\"");                    /* cut sequence */
    expect_quote(S("\xc0\xaf"), "\"\\xc0\\xaf\"");             /* overlong '/' */
    expect_quote(S("\xe0\x80\xaf"), "\"\\xe0\\x80\\xaf\"");    /* overlong, 3 bytes */
    expect_quote(S("\xed\xa0\x80"), "\"\\xed\\xa0\\x80\"");    /* UTF-16 surrogate */
    expect_quote(S("\xf4\x90\x80\x80"), "\"\\xf4\\x90\\x80\\x80\""); /* past U+10FFFF */
    expect_quote(S("\xe2\x82z"), "\"\\xe2\\x82z\"");
    expect_quote(S("\x80\xc3\xa9"), "\"\\x80\xc3\xa9\"");
}

static void test_is_print(void **state)
{
    assert_true(zn_edge_is_print(' '));
    assert_true(zn_edge_is_print('~'));
    assert_false(zn_edge_is_print('\t'));
    assert_false(zn_edge_is_print(0x7f));
    assert_false(zn_edge_is_print(0xa0));
    assert_true(zn_edge_is_print(0xa1));
    assert_true(zn_edge_is_print(0x4e2d)); /* 中 */
    assert_false(zn_edge_is_print(0x3000)); /* ideographic space */
    assert_false(zn_edge_is_print(0xe000)); /* private use */
    assert_false(zn_edge_is_print(0x110000));
}

static void expect_challenge(const char *scheme, const zn_edge_param_t *p, size_t n, bool quote, const char *want)
{
    zn_buf_t b;
    zn_buf_init(&b, 1024);
    assert_int_equal(zn_edge_challenge(&b, scheme, p, n, quote), ZN_OK);
    assert_int_equal(zn_buf_append(&b, "", 1), ZN_OK);
    assert_string_equal(b.p, want);
    zn_buf_release(&b);
}

static void test_challenge(void **state)
{
    zn_edge_param_t basic[] = {{"realm", "my \"zot\"\n"}};
    zn_edge_param_t bearer[] = {{"realm", "https://r.example:5000/v2/_zinc/token"}, {"service", "r.example:5000"}};
    zn_edge_param_t raw[] = {{"realm", "z\"o\tt\x7f\xc3\xa9"}};

    expect_challenge("Basic", basic, 1, true, "Basic realm=\"my \\\"zot\\\"\\n\"");
    expect_challenge("Bearer", bearer, 2, true,
                     "Bearer realm=\"https://r.example:5000/v2/_zinc/token\",service=\"r.example:5000\"");
    /* zot's 200 ping: unquoted, control bytes dropped, the rest as is */
    expect_challenge("basic", raw, 1, false, "basic realm=z\"ot\xc3\xa9");
    expect_challenge("Basic", NULL, 0, true, "Basic");

    /* a bounded buffer: the builder reports the limit, it does not cut silently */
    zn_buf_t b;
    zn_buf_init(&b, 8);
    assert_int_equal(zn_edge_challenge(&b, "Basic", basic, 1, true), ZN_ETOOBIG);
    zn_buf_release(&b);
}

static void test_query_get(void **state)
{
    char v[32];
    zn_slice_t q = S("digest=sha256%3Aab&from=a%2Fb&empty=&flag&n=10&plus=a+b&tag=x&tag=y%21&tag=");

    assert_int_equal(zn_edge_query_get(q, "digest", 0, 0, v, sizeof(v)), ZN_OK);
    assert_string_equal(v, "sha256:ab");
    assert_int_equal(zn_edge_query_get(q, "from", 0, 0, v, sizeof(v)), ZN_OK);
    assert_string_equal(v, "a/b");
    assert_int_equal(zn_edge_query_get(q, "empty", 0, 0, v, sizeof(v)), ZN_OK);
    assert_string_equal(v, "");
    assert_int_equal(zn_edge_query_get(q, "flag", 0, 0, v, sizeof(v)), ZN_OK);
    assert_string_equal(v, "");
    /* '+' is literal for OCI values, a space as Go's ParseQuery reads it */
    assert_int_equal(zn_edge_query_get(q, "plus", 0, 0, v, sizeof(v)), ZN_OK);
    assert_string_equal(v, "a+b");
    assert_int_equal(zn_edge_query_get(q, "plus", 0, ZN_EDGE_QUERY_PLUS_SPACE, v, sizeof(v)), ZN_OK);
    assert_string_equal(v, "a b");
    assert_int_equal(zn_edge_query_get(S("s=%2B5"), "s", 0, ZN_EDGE_QUERY_PLUS_SPACE, v, sizeof(v)), ZN_OK);
    assert_string_equal(v, "+5");
    /* repeated keys, in order */
    assert_int_equal(zn_edge_query_get(q, "tag", 0, 0, v, sizeof(v)), ZN_OK);
    assert_string_equal(v, "x");
    assert_int_equal(zn_edge_query_get(q, "tag", 1, 0, v, sizeof(v)), ZN_OK);
    assert_string_equal(v, "y!");
    assert_int_equal(zn_edge_query_get(q, "tag", 2, 0, v, sizeof(v)), ZN_OK);
    assert_string_equal(v, "");
    assert_int_equal(zn_edge_query_get(q, "tag", 3, 0, v, sizeof(v)), ZN_ENOENT);
    /* keys compare whole and raw */
    assert_int_equal(zn_edge_query_get(q, "dig", 0, 0, v, sizeof(v)), ZN_ENOENT);
    assert_int_equal(zn_edge_query_get(q, "digestx", 0, 0, v, sizeof(v)), ZN_ENOENT);
    assert_int_equal(zn_edge_query_get(S("a%62=1"), "ab", 0, 0, v, sizeof(v)), ZN_ENOENT);
    assert_int_equal(zn_edge_query_get(S(""), "n", 0, 0, v, sizeof(v)), ZN_ENOENT);
    assert_int_equal(zn_edge_query_get(S("&&n=1&"), "n", 0, 0, v, sizeof(v)), ZN_OK);
    assert_string_equal(v, "1");
    /* malformed escapes and encoded NULs are errors, never a guess */
    assert_int_equal(zn_edge_query_get(S("a=%zz"), "a", 0, 0, v, sizeof(v)), ZN_EINVAL);
    assert_int_equal(zn_edge_query_get(S("a=%2"), "a", 0, 0, v, sizeof(v)), ZN_EINVAL);
    assert_int_equal(zn_edge_query_get(S("a=%"), "a", 0, 0, v, sizeof(v)), ZN_EINVAL);
    assert_int_equal(zn_edge_query_get(S("a=%00"), "a", 0, 0, v, sizeof(v)), ZN_EINVAL);
    assert_int_equal(zn_edge_query_get(S("a=ok&a=%zz"), "a", 1, 0, v, sizeof(v)), ZN_EINVAL);
    assert_int_equal(zn_edge_query_get(S("a=%e2%82%ac"), "a", 0, 0, v, sizeof(v)), ZN_OK);
    assert_string_equal(v, "\xe2\x82\xac");
    /* too long for out: an error, not a cut value */
    assert_int_equal(zn_edge_query_get(S("a=12345"), "a", 0, 0, v, 5), ZN_EINVAL);
    assert_int_equal(zn_edge_query_get(S("a=1234"), "a", 0, 0, v, 5), ZN_OK);
    assert_string_equal(v, "1234");
    assert_int_equal(zn_edge_query_get(S("a=%41%42%43%44"), "a", 0, 0, v, 5), ZN_OK);
    assert_string_equal(v, "ABCD");
    assert_int_equal(zn_edge_query_get(S("a="), "a", 0, 0, v, 0), ZN_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quote_ascii), cmocka_unit_test(test_quote_unicode), cmocka_unit_test(test_is_print),
        cmocka_unit_test(test_challenge),   cmocka_unit_test(test_query_get),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
