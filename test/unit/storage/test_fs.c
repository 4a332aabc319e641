/*
 * Unit tests for storage/fs.c with injected failures: the Nth write, fsync, rename or
 * link fails; the caller gets a clean error, the target is untouched and no temp file is
 * left behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <unistd.h>

#include "test/unit/storage/st_helpers.h"

enum { F_WRITE, F_FSYNC, F_RENAME, F_LINK, F_MAX };
static int fail_at[F_MAX] = {-1, -1, -1, -1}; /* countdown per call kind; 0 = fail this one */

static bool should_fail(int kind)
{
    if (fail_at[kind] < 0)
        return false;
    if (fail_at[kind]-- == 0) {
        errno = kind == F_WRITE ? ENOSPC : EIO;
        return true;
    }
    return false;
}

static ssize_t t_write(int fd, const void *p, size_t n)
{
    return should_fail(F_WRITE) ? -1 : write(fd, p, n);
}
static int t_fsync(int fd)
{
    return should_fail(F_FSYNC) ? -1 : fsync(fd);
}
static int t_rename(const char *a, const char *b)
{
    return should_fail(F_RENAME) ? -1 : rename(a, b);
}
static int t_link(const char *a, const char *b)
{
    return should_fail(F_LINK) ? -1 : link(a, b);
}

#define write t_write
#define fsync t_fsync
#define rename t_rename
#define link t_link
#include "storage/fs.c"
#undef write
#undef fsync
#undef rename
#undef link

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static char *slurp(const char *path)
{
    char *buf;
    size_t len;
    return st_read_file(path, 1 << 20, &buf, &len, NULL) == ZN_OK ? buf : NULL;
}

static void test_write_atomic_faults(void **state)
{
    t_store_t *t = t_store_open_cfg(true, true);
    char tmpdir[256], target[256];
    t_wait_rebuild(t);
    snprintf(tmpdir, sizeof(tmpdir), "%s/tmpdir", t->root);
    snprintf(target, sizeof(target), "%s/target", t->root);
    mkdir(tmpdir, 0700);
    assert_int_equal(st_write_atomic(t->st, tmpdir, target, "old", 3, false), ZN_OK);
    /* the first write, the file fsync, the rename: nothing changes */
    for (int kind = F_WRITE; kind <= F_RENAME; kind++) {
        fail_at[kind] = 0;
        assert_int_not_equal(st_write_atomic(t->st, tmpdir, target, "new", 3, false), ZN_OK);
        fail_at[kind] = -1;
        char *content = slurp(target);
        assert_string_equal(content, "old");
        free(content);
        assert_int_equal(count_entries(tmpdir), 0);
    }
    /* the directory fsync after the rename fails: an error, the new content is complete */
    fail_at[F_FSYNC] = 1;
    assert_int_equal(st_write_atomic(t->st, tmpdir, target, "new", 3, false), ZN_EIO);
    fail_at[F_FSYNC] = -1;
    char *content = slurp(target);
    assert_string_equal(content, "new");
    free(content);
    assert_int_equal(count_entries(tmpdir), 0);
    /* exclusive create: link fails, or the target exists; no temp file left either way */
    fail_at[F_LINK] = 0;
    snprintf(target, sizeof(target), "%s/fresh", t->root);
    assert_int_equal(st_write_atomic(t->st, tmpdir, target, "x", 1, true), ZN_EIO);
    assert_int_equal(access(target, F_OK), -1);
    assert_int_equal(st_write_atomic(t->st, tmpdir, target, "x", 1, true), ZN_OK);
    assert_int_equal(st_write_atomic(t->st, tmpdir, target, "y", 1, true), ZN_EEXIST);
    content = slurp(target);
    assert_string_equal(content, "x");
    free(content);
    assert_int_equal(count_entries(tmpdir), 0);
    t_store_close(t);
}

static void test_copy_verified_faults(void **state)
{
    t_store_t *t = t_store_open_cfg(true, true);
    char tmpdir[256], src[256], dst[256];
    t_wait_rebuild(t);
    zn_digest_t d, wrong;
    snprintf(tmpdir, sizeof(tmpdir), "%s/tmpdir", t->root);
    snprintf(src, sizeof(src), "%s/src", t->root);
    snprintf(dst, sizeof(dst), "%s/dst", t->root);
    mkdir(tmpdir, 0700);
    assert_int_equal(st_write_atomic(t->st, tmpdir, src, "payload", 7, false), ZN_OK);
    zn_digest_of(ZN_DIGEST_SHA256, "payload", 7, &d);
    zn_digest_of(ZN_DIGEST_SHA256, "other", 5, &wrong);
    assert_int_equal(st_copy_verified(t->st, src, tmpdir, dst, &wrong), ZN_EDIGEST);
    assert_int_equal(access(dst, F_OK), -1);
    for (int kind = F_WRITE; kind <= F_RENAME; kind++) {
        fail_at[kind] = 0;
        assert_int_not_equal(st_copy_verified(t->st, src, tmpdir, dst, &d), ZN_OK);
        fail_at[kind] = -1;
        assert_int_equal(access(dst, F_OK), -1);
        assert_int_equal(count_entries(tmpdir), 0);
    }
    assert_int_equal(st_copy_verified(t->st, src, tmpdir, dst, &d), ZN_OK);
    char *content = slurp(dst);
    assert_string_equal(content, "payload");
    free(content);
    t_store_close(t);
}

static void test_paths(void **state)
{
    char buf[PATH_MAX], big[PATH_MAX + 10];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(st_path(buf, "%s", "short"), ZN_OK);
    assert_int_equal(st_path(buf, "%s", big), ZN_EINVAL);
    char hex[33];
    st_random_hex(hex, 16);
    assert_int_equal(strlen(hex), 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_atomic_faults),
        cmocka_unit_test(test_copy_verified_faults),
        cmocka_unit_test(test_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
