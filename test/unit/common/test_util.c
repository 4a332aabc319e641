/* Unit tests for common/util.c: bounded buffers and number parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/zn.h"

static void test_errf(void **state)
{
    char buf[8];
    assert_true(zn_errf(buf, sizeof(buf), "%s", "1234567"));
    assert_string_equal(buf, "1234567");
    /* cut: says so */
    assert_false(zn_errf(buf, sizeof(buf), "%s", "12345678"));
    assert_string_equal(buf, "1234...");
    assert_false(zn_errf(buf, 0, "x"));
}

static void test_buf_max(void **state)
{
    zn_buf_t b;
    zn_buf_init(&b, 8);
    assert_int_equal(zn_buf_append(&b, "12345", 5), ZN_OK);
    assert_int_equal(zn_buf_append(&b, "678", 3), ZN_OK);
    assert_int_equal(zn_buf_append(&b, "9", 1), ZN_ETOOBIG);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.p, "12345678");
    zn_buf_release(&b);
    zn_buf_init(&b, 100);
    assert_int_equal(zn_buf_printf(&b, "%s-%d", "a", 7), ZN_OK);
    assert_string_equal(b.p, "a-7");
    size_t n;
    char *p = zn_buf_detach(&b, &n);
    assert_int_equal(n, 3);
    free(p);
}

static void test_parse_u64(void **state)
{
    uint64_t v;
    assert_int_equal(zn_parse_u64(ZN_SLICE_LIT("123"), 1000, &v), ZN_OK);
    assert_int_equal(v, 123);
    assert_int_equal(zn_parse_u64(ZN_SLICE_LIT("1001"), 1000, &v), ZN_ERANGE);
    assert_int_equal(zn_parse_u64(ZN_SLICE_LIT(""), 1000, &v), ZN_EINVAL);
    assert_int_equal(zn_parse_u64(ZN_SLICE_LIT("-1"), 1000, &v), ZN_EINVAL);
    assert_int_equal(zn_parse_u64(ZN_SLICE_LIT("18446744073709551616"), UINT64_MAX, &v), ZN_ERANGE);
    assert_int_equal(zn_parse_u64(ZN_SLICE_LIT("18446744073709551615"), UINT64_MAX, &v), ZN_OK);
    assert_true(v == UINT64_MAX);
}

static void test_hex_digit(void **state)
{
    (void)state;
    static const char digits[] = "0123456789abcdef", upper[] = "ABCDEF";
    for (int i = 0; i < 16; i++) {
        assert_int_equal(zn_hex_digit(digits[i], false), i);
        assert_int_equal(zn_hex_digit(digits[i], true), i);
    }
    for (int i = 0; i < 6; i++) {
        assert_int_equal(zn_hex_digit(upper[i], false), -1);
        assert_int_equal(zn_hex_digit(upper[i], true), 10 + i);
    }
    /* every other byte is no digit either way, including the ones that differ from a digit by
     * one case bit (0x10-0x19, 0x41-0x46 | 0x20 ...) */
    for (int c = -128; c < 128; c++) {
        if (memchr(digits, c, 16) != NULL || memchr(upper, c, 6) != NULL)
            continue;
        assert_int_equal(zn_hex_digit((char)c, true), -1);
        assert_int_equal(zn_hex_digit((char)c, false), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_max), cmocka_unit_test(test_errf),
        cmocka_unit_test(test_parse_u64), cmocka_unit_test(test_hex_digit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
