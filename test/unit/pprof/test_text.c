/* Unit tests for pprof/text.c: Go's count-profile text (grouping by stack, order by count,
 * "N @ 0x.." lines, "#\t0xPC\tfunc+0xOFF\tfile:line" frames). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "pprof/internal.h"

static const zn_pprof_kind_t kind = {
    .nvalues = 1, .types = {{"goroutine", "count"}}, .period_type = {"goroutine", "count"}, .period = 1, .default_type = -1};

__attribute__((noipa)) int zn_test_text_fn(int x)
{
    return x + 1;
}

static void add(zn_pprof_profile_t *p, uintptr_t a, uintptr_t b, const char *thread)
{
    uintptr_t pcs[2] = {a, b};
    int64_t one = 1;
    zn_pprof_label_t l = {.key = "thread", .str = thread};
    zn_pprof_profile_add(p, pcs, 2, &one, &l, 1);
}

static void test_counts_grouped_and_ordered(void **state)
{
    zn_pprof_profile_t p;
    zn_buf_t b;
    zn_pprof_profile_init(&p, &kind);
    add(&p, 0x30, 0x40, "worker-2");
    add(&p, 0x10, 0x20, "worker-0");
    add(&p, 0x10, 0x20, "worker-1"); /* same stack, other thread: grouped */
    add(&p, 0x08, 0x40, "main");
    zn_buf_init(&b, 1 << 16);
    assert_int_equal(zn_pprof_text_counts(&b, "goroutine", &p), ZN_OK);
    assert_string_equal(b.p, "goroutine profile: total 4\n"
                             "2 @ 0x10 0x20\n#\t0x10\n#\t0x20\n\n"
                             "1 @ 0x8 0x40\n#\t0x8\n#\t0x40\n\n"
                             "1 @ 0x30 0x40\n#\t0x30\n#\t0x40\n\n");
    zn_buf_release(&b);
    zn_pprof_profile_release(&p);
}

static void test_frames_of_known_function(void **state)
{
    zn_buf_t b;
    uintptr_t pc = (uintptr_t)zn_test_text_fn + 1;
    char want[128];
    zn_buf_init(&b, 1 << 16);
    assert_int_equal(zn_pprof_text_frames(&b, &pc, 1), ZN_OK);
    snprintf(want, sizeof(want), "#\t%#lx\tzn_test_text_fn+0x1\t", (unsigned long)pc);
    assert_true(strncmp(b.p, want, strlen(want)) == 0);
    assert_non_null(strstr(b.p, "test_text.c:"));
    assert_int_equal(b.p[b.len - 1], '\n');
    zn_buf_release(&b);

    zn_buf_init(&b, 1 << 16);
    assert_int_equal(zn_pprof_text_addrs(&b, &pc, 1), ZN_OK);
    snprintf(want, sizeof(want), " %#lx\n", (unsigned long)pc);
    assert_string_equal(b.p, want);
    zn_buf_release(&b);
}

static void test_empty(void **state)
{
    zn_pprof_profile_t p;
    zn_buf_t b;
    zn_pprof_profile_init(&p, &kind);
    zn_buf_init(&b, 1 << 16);
    assert_int_equal(zn_pprof_text_counts(&b, "threadcreate", &p), ZN_OK);
    assert_string_equal(b.p, "threadcreate profile: total 0\n");
    zn_buf_release(&b);
    zn_pprof_profile_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_grouped_and_ordered),
        cmocka_unit_test(test_frames_of_known_function),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
