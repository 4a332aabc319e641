/* Unit tests for common/glob.c: doublestar v4 semantics, compile errors, worst cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/zn.h"

static const struct {
    const char *pattern, *name;
    bool match;
} cases[] = {
    /* zot.md §3 examples */
    {"tmp/**", "tmp", true},
    {"tmp/**", "tmp/a", true},
    {"tmp/**", "tmp/a/b", true},
    {"tmp/**", "tmpx", false},
    {"tmp/**", "tmpx/a", false},
    {"tmp/**", "x/tmp/a", false},
    {"tmp/*", "tmp", false},
    {"tmp/*", "tmp/a", true},
    {"tmp/*", "tmp/a/b", false},
    {"**/x", "x", true},
    {"**/x", "a/x", true},
    {"**/x", "a/b/x", true},
    {"**/x", "a/xy", false},
    {"**/x", "a/x/b", false},
    /* globstar */
    {"**", "a", true},
    {"**", "a/b/c", true},
    {"**/**", "a", true},
    {"**/**", "a/b", true},
    {"a/**/b", "a/b", true},
    {"a/**/b", "a/x/b", true},
    {"a/**/b", "a/x/y/b", true},
    {"a/**/b", "a/x/y/c", false},
    {"a/**/b", "b", false},
    {"a/**/b", "a/b/c", false},
    {"a/**/**/b", "a/b", true},
    {"a/**/b/**/c", "a/b/c", true},
    {"a/**/b/**/c", "a/x/b/y/z/c", true},
    {"a/**/b/**/c", "a/x/c/b", false},
    {"**/b/**", "b", true},
    {"**/b/**", "x/b/y", true},
    {"**/b/**", "x/bb/y", false},
    /* '**' not a whole segment is a plain '*' */
    {"a**", "abc", true},
    {"a**", "a/b", false},
    {"**x", "ax", true},
    {"**x", "a/x", false},
    /* star within one segment */
    {"*", "a", true},
    {"*", "a/b", false},
    {"*/*", "a/b", true},
    {"*/*", "a", false},
    {"*/*", "a/b/c", false},
    {"team/app", "team/app", true},
    {"team/app", "team/app2", false},
    {"team/app", "team/ap", false},
    {"team/app", "team/app/x", false},
    {"team/app*", "team/app", true},
    {"team/app*", "team/app2", true},
    {"team/app*", "team/app/x", false},
    {"x*y*z", "xaybz", true},
    {"x*y*z", "xyz", true},
    {"x*y*z", "xazb", false},
    {"*a", "aaa", true},
    {"*.txt", "foo.txt", true},
    {"*", ".hidden", true},
    /* ? and classes */
    {"?", "a", true},
    {"?", "ab", false},
    {"a?c", "abc", true},
    {"a?c", "a/c", false},
    {"[ab]x", "ax", true},
    {"[ab]x", "bx", true},
    {"[ab]x", "cx", false},
    {"[a-c]x", "bx", true},
    {"[a-c]x", "dx", false},
    {"[!a]x", "bx", true},
    {"[!a]x", "ax", false},
    {"[^a]x", "bx", true},
    {"[^a]x", "ax", false},
    {"[a-]x", "-x", true},
    {"[\\]]x", "]x", true},
    {"a[/]b", "a/b", false},
    {"v[0-9]/*", "v1/x", true},
    {"v[0-9]/*", "vx/x", false},
    /* braces */
    {"{a,b}/c", "a/c", true},
    {"{a,b}/c", "b/c", true},
    {"{a,b}/c", "c/c", false},
    {"{a,b/**}", "b/x/y", true},
    {"{a,b/**}", "a/x", false},
    {"x{,y}", "x", true},
    {"x{,y}", "xy", true},
    {"x{,y}", "xz", false},
    {"{a,{b,c}}d", "cd", true},
    {"{a,{b,c}}d", "ad", true},
    {"{a,{b,c}}d", "d", false},
    {"{a,b}{1,2}", "b2", true},
    {"{a,b}{1,2}", "ab", false},
    {"[{]x", "{x", true},
    {"a,b", "a,b", true},
    /* escapes */
    {"a\\*", "a*", true},
    {"a\\*", "ab", false},
    {"a\\?", "a?", true},
    {"\\[x]", "[x]", true},
};

static void test_table(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        zn_glob_t g;
        if (zn_glob_compile(cases[i].pattern, &g) != ZN_OK)
            fail_msg("compile %s", cases[i].pattern);
        if (zn_glob_match(&g, cases[i].name) != cases[i].match)
            fail_msg("%s vs %s: want %d", cases[i].pattern, cases[i].name, cases[i].match);
        zn_glob_release(&g);
    }
}

/* doublestar's ValidatePattern decides what compiles; config/ reports the rest as errors */
static void test_compile_errors(void **state)
{
    static const char *const ok[] = {"**",      "tmp/**",    "a/*",  "a/b",     "a?c", "a/[bc]/d", "a/[!b]", "[^b]",
                                     "{a,b}/c", "{a,{b,c}}", "a\\[", "a/[\\]]", "x]",  "",         "**/x", "a,b"};
    static const char *const bad[] = {"a/[", "[a",  "a\\", "{a,b", "{",   "a/{b,[c}", "[!",   "[\\",  "[]",
                                      "[!]", "[^",  "a}",  "a}b{", "{{a}", "{a}b}",    "[]a]", "[]]x", "a/[b"};
    zn_glob_t g;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (zn_glob_compile(ok[i], &g) != ZN_OK)
            fail_msg("\"%s\" should compile", ok[i]);
        zn_glob_release(&g);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (zn_glob_compile(bad[i], &g) != ZN_EINVAL)
            fail_msg("\"%s\" compiled", bad[i]);
        assert_int_equal(g.nalts, 0);
    }
    /* 2^9 = 512 alternatives: refused, not allocated */
    assert_int_equal(zn_glob_compile("{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}", &g), ZN_ETOOBIG);
    assert_int_equal(zn_glob_compile("{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}", &g), ZN_OK);
    assert_int_equal(g.nalts, 256);
    zn_glob_release(&g);
}

static void test_many_segments(void **state)
{
    /* more name segments than the matcher keeps on its stack */
    char name[512] = "";
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(name + n, sizeof(name) - n, "%sx", i ? "/" : "");
    zn_glob_t g;
    assert_int_equal(zn_glob_compile("x/**/x", &g), ZN_OK);
    assert_true(zn_glob_match(&g, name));
    zn_glob_release(&g);
    assert_int_equal(zn_glob_compile("x/**/y", &g), ZN_OK);
    assert_false(zn_glob_match(&g, name));
    zn_glob_release(&g);
}

static void test_no_blowup(void **state)
{
    /* Exponential matchers take ages on these; ours is quadratic at worst: its loops turn
     * at most (pattern bytes + 1) x name bytes times, counted, not timed. */
    char name[4096];
    zn_glob_t g;
    uint64_t steps = 0;
    const char *p1 = "*a*a*a*a*a*a*a*a*a*a*b", *p2 = "**/a/**/a/**/a/**/a/**/a/**/b";
    const uint64_t n = sizeof(name) - 1;
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_int_equal(zn_glob_compile(p1, &g), ZN_OK);
    assert_false(zn_glob_match_counted(&g, name, &steps));
    zn_glob_release(&g);
    assert_true(steps >= n); /* it did look at the name */
    assert_true(steps <= (strlen(p1) + 1) * n);
    for (size_t i = 1; i < sizeof(name) - 1; i += 2)
        name[i] = '/';
    steps = 0;
    assert_int_equal(zn_glob_compile(p2, &g), ZN_OK);
    assert_false(zn_glob_match_counted(&g, name, &steps));
    zn_glob_release(&g);
    /* 2048 name segments of one byte: segment turns plus byte turns, each bounded */
    assert_true(steps >= n / 2);
    assert_true(steps <= 2 * (strlen(p2) + 1) * n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_many_segments),
        cmocka_unit_test(test_no_blowup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
