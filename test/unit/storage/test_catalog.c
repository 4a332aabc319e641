/* Unit tests for storage/catalog.c: walk, filter, order, paging; dot-dirs and blobs skipped. */
#include "test/unit/storage/st_helpers.h"

static bool no_secret(void *data, const char *repo)
{
    return strncmp(repo, "secret", 6) != 0;
}

static void test_catalog(void **state)
{
    t_store_t *t = *state;
    const char *repos[] = {"b", "a/z", "a", "secret/x", "c/d/e", "a-b"};
    char uuid[ZN_UUID_LEN + 1], path[512];
    zn_storage_list_t l;

    for (size_t i = 0; i < 6; i++)
        assert_int_equal(zn_storage_upload_start(t->st, repos[i], uuid, NULL), ZN_OK);
    snprintf(path, sizeof(path), "%s/notarepo/deeper", t->root);
    mkdir(path, 0700);
    assert_int_equal(zn_storage_catalog(t->st, NULL, SIZE_MAX, no_secret, NULL, &l), ZN_OK);
    assert_int_equal(l.count, 5);
    assert_string_equal(l.names[0], "a");
    assert_string_equal(l.names[1], "a-b");
    assert_string_equal(l.names[2], "a/z");
    assert_string_equal(l.names[3], "b");
    assert_string_equal(l.names[4], "c/d/e");
    zn_storage_list_release(&l);
    assert_int_equal(zn_storage_catalog(t->st, "a-b", 2, NULL, NULL, &l), ZN_OK);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.names[0], "a/z");
    assert_string_equal(l.names[1], "b");
    assert_true(l.more);
    zn_storage_list_release(&l);
    /* "blobs" right below a repository would be inside its blob store (test_repo.c) */
    assert_int_equal(zn_storage_upload_start(t->st, "a/blobs", uuid, NULL), ZN_EEXIST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_catalog, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
