/* Unit tests for server/cluster_proxy.c: the check that keeps a path from splitting the
 * request line sent to the owning member. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/cluster_proxy.c"

static bool safe(const char *s, size_t n)
{
    return zn_cluster_wire_safe(h2o_iovec_init(s, n));
}

static void test_wire_safe(void **state)
{
    assert_true(safe(H2O_STRLIT("/v2/library/alpine/manifests/latest")));
    assert_true(safe(H2O_STRLIT("/v2/a/blobs/uploads/u?digest=sha256:00&x=%20")));
    assert_true(safe(H2O_STRLIT("/v2/\xc3\xa9/tags/list"))); /* non-ASCII is the owner's to reject */
    assert_false(safe(H2O_STRLIT("/v2/a b/tags/list")));
    assert_false(safe(H2O_STRLIT("/v2/a/tags/list\r\nX-Evil: 1")));
    assert_false(safe(H2O_STRLIT("/v2/a/tags/list\n")));
    assert_false(safe("/v2/a\0b/tags/list", 17));
    assert_false(safe(H2O_STRLIT("/v2/a\x7f/tags/list")));
    assert_false(safe(H2O_STRLIT("/v2/a\t/tags/list")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
