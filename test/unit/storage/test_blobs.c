/*
 * Unit tests for storage/blobs.c and dedupe.c: open/stat, dedupe by hard link across
 * repositories, mounts (linked, or copied when dedupe is off), locate, deleting a blob a
 * manifest still references, and the dedupe index rebuilt after it was removed.
 */
#include <fcntl.h>
#include <pthread.h>

#include "test/unit/storage/st_helpers.h"

static ino_t inode_of(t_store_t *t, const char *repo, const zn_digest_t *d)
{
    char path[512];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%s/blobs/sha256/%s", t->root, repo, zn_digest_hex(d));
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_ino;
}

static void test_open_and_dedupe(void **state)
{
    t_store_t *t = *state;
    zn_digest_t d = t_push_blob(t->st, "one", "shared bytes", 12);
    zn_digest_t e = t_push_blob(t->st, "two", "shared bytes", 12);
    char buf[32];
    uint64_t size;
    size_t got;
    zn_storage_blob_t *b;

    assert_true(zn_digest_eq(&d, &e));
    assert_true(inode_of(t, "one", &d) == inode_of(t, "two", &d));
    assert_int_equal(zn_storage_blob_open(t->st, "two", &d, &b), ZN_OK);
    assert_int_equal(zn_storage_blob_size(b), 12);
    assert_int_equal(zn_storage_blob_read(b, 0, buf, sizeof(buf), &got), ZN_OK);
    assert_int_equal(got, 12);
    assert_memory_equal(buf, "shared bytes", 12);
    assert_int_equal(zn_storage_blob_read(b, 7, buf, sizeof(buf), &got), ZN_OK);
    assert_int_equal(got, 5);
    assert_memory_equal(buf, "bytes", 5);
    assert_int_equal(zn_storage_blob_read(b, 12, buf, sizeof(buf), &got), ZN_OK);
    assert_int_equal(got, 0);
    assert_null(zn_storage_blob_redirect_url(b));
    zn_storage_blob_close(b);
    assert_int_equal(zn_storage_blob_open(t->st, "three", &d, &b), ZN_ENOENT);
    assert_int_equal(zn_storage_blob_open(t->st, "../x", &d, &b), ZN_EINVAL);
    char repo[ZN_REPO_NAME_MAX + 1];
    assert_int_equal(zn_storage_blob_locate(t->st, &d, repo, sizeof(repo)), ZN_OK);
    assert_string_equal(repo, "one");
    /* the located copy goes: the index entry is stale, locate misses, not errs */
    assert_int_equal(zn_storage_blob_delete(t->st, "one", &d), ZN_OK);
    assert_int_equal(zn_storage_blob_locate(t->st, &d, repo, sizeof(repo)), ZN_ENOENT);
    assert_int_equal(zn_storage_blob_stat(t->st, "two", &d, &size), ZN_OK);
    assert_int_equal(zn_storage_blob_delete(t->st, "one", &d), ZN_ENOENT);
}

static void test_mount(void **state)
{
    t_store_t *t = *state;
    zn_digest_t d = t_push_blob(t->st, "src", "mount me", 8), missing;
    uint64_t size;

    zn_digest_of(ZN_DIGEST_SHA256, "nope", 4, &missing);
    assert_int_equal(zn_storage_blob_mount(t->st, "dst/x", "src", &d), ZN_OK);
    assert_int_equal(zn_storage_blob_stat(t->st, "dst/x", &d, &size), ZN_OK);
    assert_true(inode_of(t, "src", &d) == inode_of(t, "dst/x", &d));
    assert_int_equal(zn_storage_blob_mount(t->st, "dst/x", "src", &d), ZN_OK); /* again: no-op */
    assert_int_equal(zn_storage_blob_mount(t->st, "dst/y", "src", &missing), ZN_ENOENT);
    assert_int_equal(zn_storage_blob_mount(t->st, "dst/y", "nosuch", &d), ZN_ENOENT);
    assert_int_equal(zn_storage_repo_exists(t->st, "dst/y"), ZN_ENOENT);
}

static void test_mount_copy_without_dedupe(void **state)
{
    t_store_t *t = t_store_open_cfg(false, true);
    zn_digest_t d = t_push_blob(t->st, "src", "copy me", 7);
    zn_digest_t e = t_push_blob(t->st, "other", "copy me", 7);
    uint64_t size;

    assert_true(inode_of(t, "src", &d) != inode_of(t, "other", &e));
    assert_int_equal(zn_storage_blob_mount(t->st, "dst", "src", &d), ZN_OK);
    assert_int_equal(zn_storage_blob_stat(t->st, "dst", &d, &size), ZN_OK);
    assert_int_equal(size, 7);
    assert_true(inode_of(t, "src", &d) != inode_of(t, "dst", &d));
    t_store_close(t);
}

/* The spec's DELETE is unconditional: a referenced blob goes, and its manifest then fails
 * on pull like any manifest whose blob is missing. */
static void test_delete_referenced(void **state)
{
    t_store_t *t = *state;
    zn_digest_t c = t_push_blob(t->st, "r", "{}", 2), l = t_push_blob(t->st, "r", "layer", 5);
    char *m = t_manifest(&c, 2, &l, 5, NULL, NULL), detail[128];
    zn_storage_put_t res;
    uint64_t size;

    assert_int_equal(zn_storage_manifest_put(t->st, "r", "v1", NULL, NULL, m, strlen(m), &res, detail, sizeof(detail)), ZN_OK);
    assert_int_equal(zn_storage_blob_delete(t->st, "r", &c), ZN_OK);
    assert_int_equal(zn_storage_blob_stat(t->st, "r", &c, &size), ZN_ENOENT);
    assert_int_equal(zn_storage_blob_stat(t->st, "r", &l, &size), ZN_OK);
    /* pushing the manifest again now fails: its config is gone */
    assert_int_equal(zn_storage_manifest_put(t->st, "r", "v2", NULL, NULL, m, strlen(m), &res, detail, sizeof(detail)),
                     ZN_ENOENT);
    free(m);
}

static void test_dedupe_rebuild(void **state)
{
    t_store_t *t = *state;
    zn_digest_t d = t_push_blob(t->st, "deep/repo/name", "rebuild", 7);
    char cmd[512], err[128], repo[ZN_REPO_NAME_MAX + 1];

    zn_storage_free(t->st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s/.zinc/dedupe", t->root);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(zn_storage_open(&t->cfg, &t->st, err, sizeof(err)), ZN_OK);
    t_wait_rebuild(t);
    assert_int_equal(zn_storage_blob_locate(t->st, &d, repo, sizeof(repo)), ZN_OK);
    assert_string_equal(repo, "deep/repo/name");
    /* a new push in another repository is now linked to it */
    t_push_blob(t->st, "again", "rebuild", 7);
    assert_true(inode_of(t, "again", &d) == inode_of(t, "deep/repo/name", &d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_and_dedupe, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_mount, t_setup, t_teardown),
        cmocka_unit_test(test_mount_copy_without_dedupe),
        cmocka_unit_test_setup_teardown(test_delete_referenced, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_rebuild, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
