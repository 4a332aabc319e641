/* Unit tests for config/duration.c: Go time.ParseDuration semantics (cases from Go's own
 * table, rewritten) and zinc's rule that a duration is never negative. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "config/internal.h"

#define SEC 1000000000ull
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

static void expect_ns(const char *s, bool neg, uint64_t ns)
{
    bool n;
    uint64_t v = 12345;
    zn_err_t err = cfg_duration_parse(s, strlen(s), &n, &v);
    if (err != ZN_OK || n != neg || v != ns)
        fail_msg("\"%s\": err %d neg %d ns %llu, want neg %d ns %llu", s, err, n, (unsigned long long)v, neg,
                 (unsigned long long)ns);
}

static void expect_bad(const char *s, zn_err_t want)
{
    bool n;
    uint64_t v;
    zn_err_t err = cfg_duration_parse(s, strlen(s), &n, &v);
    if (err != want)
        fail_msg("\"%s\": err %d, want %d", s, err, want);
}

static void test_simple(void **state)
{
    expect_ns("0", false, 0);
    expect_ns("-0", true, 0);
    expect_ns("+0", false, 0);
    expect_ns("5s", false, 5 * SEC);
    expect_ns("30s", false, 30 * SEC);
    expect_ns("1478s", false, 1478 * SEC);
    expect_ns("-5s", true, 5 * SEC);
    expect_ns("+5s", false, 5 * SEC);
    expect_ns("-0s", true, 0);
    expect_ns("90s", false, 90 * SEC);
    expect_ns("1h", false, HOUR);
    expect_ns("24h", false, 24 * HOUR);
}

static void test_decimal(void **state)
{
    expect_ns("5.0s", false, 5 * SEC);
    expect_ns("5.6s", false, 5 * SEC + 600000000);
    expect_ns("5.s", false, 5 * SEC);
    expect_ns(".5s", false, SEC / 2);
    expect_ns("1.004s", false, SEC + 4000000);
    expect_ns("100.00100s", false, 100 * SEC + 1000000);
    expect_ns("1.5h", false, 90 * MIN);
    expect_ns("0.3333333333333333333h", false, 20 * MIN);
}

static void test_units(void **state)
{
    expect_ns("10ns", false, 10);
    expect_ns("11us", false, 11000);
    expect_ns("12\xc2\xb5s", false, 12000); /* U+00B5 micro sign */
    expect_ns("12\xce\xbcs", false, 12000); /* U+03BC Greek mu */
    expect_ns("13ms", false, 13000000);
    expect_ns("15m", false, 15 * MIN);
    expect_ns("1h30m", false, 90 * MIN);
    expect_ns("3h30m", false, 210 * MIN);
    expect_ns("10.5s4m", false, 4 * MIN + 10 * SEC + SEC / 2);
    expect_ns("-2m3.4s", true, 2 * MIN + 3 * SEC + 400000000);
    expect_ns("1h2m3s4ms5us6ns", false, HOUR + 2 * MIN + 3 * SEC + 4000000 + 5000 + 6);
    expect_ns("39h9m14.425s", false, 39 * HOUR + 9 * MIN + 14 * SEC + 425000000);
}

static void test_limits(void **state)
{
    expect_ns("9223372036854775807ns", false, INT64_MAX);
    expect_ns("-9223372036854775808ns", true, (uint64_t)1 << 63);
    expect_ns("2562047h", false, 2562047 * HOUR);
    expect_bad("9223372036854775808ns", ZN_ERANGE);
    expect_bad("9223372036854775810ns", ZN_ERANGE);
    expect_bad("2562048h", ZN_ERANGE);
    expect_bad("99999999999999999999999s", ZN_ERANGE);
    expect_bad("2562047h2562047h", ZN_ERANGE);
}

static void test_invalid(void **state)
{
    static const char *const bad[] = {"",   "3",      "-",   "+",  "s",   ".",      "-.",       ".s",       "+.s",    "1d",
                                      "5x", "1h 30m", " 1h", "1H", "1hh", "1.2.3s", "\x85\x85", "\xff\xff", "1h-30m", "0x10s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_bad(bad[i], ZN_EINVAL);
}

static void test_public(void **state)
{
    uint64_t ns = 7;
    assert_int_equal(zn_config_parse_duration("1h30m", &ns), ZN_OK);
    assert_true(ns == 90 * MIN);
    assert_int_equal(zn_config_parse_duration("0", &ns), ZN_OK);
    assert_true(ns == 0);
    assert_int_equal(zn_config_parse_duration("-0s", &ns), ZN_OK);
    assert_true(ns == 0);
    ns = 7;
    assert_int_equal(zn_config_parse_duration("-1s", &ns), ZN_ERANGE);
    assert_int_equal(zn_config_parse_duration("300", &ns), ZN_EINVAL);
    assert_int_equal(zn_config_parse_duration("5x", &ns), ZN_EINVAL);
    assert_true(ns == 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple), cmocka_unit_test(test_decimal), cmocka_unit_test(test_units),
        cmocka_unit_test(test_limits), cmocka_unit_test(test_invalid), cmocka_unit_test(test_public),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
