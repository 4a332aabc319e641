/*
 * Unit tests for storage/uploads.c: sessions, chunked appends, resume after a "restart"
 * (a fresh store on the same root), digest checks, cancel, size limit, and a failed write
 * (injected) that must leave the session consistent; the same for pieces written and hashed
 * on two threads at once (zn_storage_upload_piece_*).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "test/unit/storage/st_helpers.h"

static int fail_pwrite_after = -1; /* -1: never; n: the (n+1)th call fails with ENOSPC */

static ssize_t t_pwrite(int fd, const void *p, size_t n, off_t off)
{
    if (fail_pwrite_after == 0) {
        fail_pwrite_after = -1;
        /* a short write first, as a full disk gives, then the error */
        if (n > 1 && pwrite(fd, p, 1, off) != 1)
            return -1;
        errno = ENOSPC;
        return -1;
    }
    if (fail_pwrite_after > 0)
        fail_pwrite_after--;
    return pwrite(fd, p, n, off);
}

/* the session's appends are the filesystem driver's pwrite calls */
#define pwrite t_pwrite
#include "storage/fs_driver.c"
#undef pwrite
#include "storage/uploads.c"

static void test_chunked(void **state)
{
    t_store_t *t = *state;
    char uuid[ZN_UUID_LEN + 1], path[256];
    zn_upload_t *up;
    zn_digest_t d, bad;

    zn_digest_of(ZN_DIGEST_SHA256, "hello world", 11, &d);
    assert_int_equal(zn_storage_upload_start(t->st, "a/b", uuid, NULL), ZN_OK);
    assert_true(zn_storage_uuid_valid(zn_slice(uuid, strlen(uuid))));
    assert_true(t_exists(t, "a/b/oci-layout") && t_exists(t, "a/b/index.json"));
    snprintf(path, sizeof(path), "a/b/.uploads/%s", uuid);
    assert_true(t_exists(t, path));
    assert_int_equal(zn_storage_upload_open(t->st, "a/b", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_open(t->st, "a/b", uuid, &(zn_upload_t *){NULL}), ZN_EBUSY);
    assert_int_equal(zn_storage_upload_write(up, "hello", 5), ZN_OK);
    zn_storage_upload_close(up);
    assert_int_equal(zn_storage_upload_open(t->st, "a/c", uuid, &up), ZN_ENOENT);
    assert_int_equal(zn_storage_upload_open(t->st, "a/b", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_size(up), 5);
    assert_int_equal(zn_storage_upload_write(up, " world", 6), ZN_OK);
    zn_storage_upload_close(up);
    /* a wrong digest: nothing stored, session gone */
    zn_digest_of(ZN_DIGEST_SHA256, "other", 5, &bad);
    assert_int_equal(zn_storage_upload_open(t->st, "a/b", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_finish(up, &bad), ZN_EDIGEST);
    assert_false(t_exists(t, path));
    uint64_t size;
    assert_int_equal(zn_storage_blob_stat(t->st, "a/b", &bad, &size), ZN_ENOENT);
    assert_int_equal(zn_storage_blob_stat(t->st, "a/b", &d, &size), ZN_ENOENT);
    assert_int_equal(zn_storage_upload_open(t->st, "a/b", uuid, &up), ZN_ENOENT);
    /* the right one */
    d = t_push_blob(t->st, "a/b", "hello world", 11);
    assert_int_equal(zn_storage_blob_stat(t->st, "a/b", &d, &size), ZN_OK);
    assert_int_equal(size, 11);
}

static void test_resume_after_restart(void **state)
{
    t_store_t *t = *state;
    char uuid[ZN_UUID_LEN + 1], err[128];
    zn_upload_t *up;
    zn_digest_t d;

    assert_int_equal(zn_storage_upload_start(t->st, "r", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_write(up, "part one,", 9), ZN_OK);
    zn_storage_upload_close(up);
    zn_storage_free(t->st);
    assert_int_equal(zn_storage_open(&t->cfg, &t->st, err, sizeof(err)), ZN_OK);
    assert_int_equal(zn_storage_upload_open(t->st, "r", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_size(up), 9);
    assert_int_equal(zn_storage_upload_write(up, " part two", 9), ZN_OK);
    zn_digest_of(ZN_DIGEST_SHA256, "part one, part two", 18, &d);
    assert_int_equal(zn_storage_upload_finish(up, &d), ZN_OK);
    uint64_t size;
    assert_int_equal(zn_storage_blob_stat(t->st, "r", &d, &size), ZN_OK);
    assert_int_equal(size, 18);
}

static void test_sha512_and_cancel(void **state)
{
    t_store_t *t = *state;
    char uuid[ZN_UUID_LEN + 1];
    zn_upload_t *up;
    zn_digest_t d;
    uint64_t size;

    zn_digest_of(ZN_DIGEST_SHA512, "abc", 3, &d);
    assert_int_equal(zn_storage_upload_start(t->st, "r", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_write(up, "abc", 3), ZN_OK);
    assert_int_equal(zn_storage_upload_finish(up, &d), ZN_OK);
    assert_int_equal(zn_storage_blob_stat(t->st, "r", &d, &size), ZN_OK);
    assert_true(t_exists(t, "r/blobs/sha512"));

    assert_int_equal(zn_storage_upload_start(t->st, "r", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_write(up, "abc", 3), ZN_OK);
    assert_int_equal(zn_storage_upload_cancel(up), ZN_OK);
    assert_int_equal(zn_storage_upload_open(t->st, "r", uuid, &up), ZN_ENOENT);
    assert_int_equal(zn_storage_upload_open(t->st, "r", "../../../etc/passwd-0000-0000-000000", &up), ZN_ENOENT);
}

static void test_size_limit(void **state)
{
    t_store_t *t = *state;
    char uuid[ZN_UUID_LEN + 1];
    zn_upload_t *up;
    char *big = calloc(1, (1 << 20) + 1);

    assert_int_equal(zn_storage_upload_start(t->st, "r", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_write(up, big, 1 << 20), ZN_OK);
    assert_int_equal(zn_storage_upload_write(up, big, 1), ZN_ETOOBIG);
    assert_int_equal(zn_storage_upload_size(up), 1 << 20);
    zn_storage_upload_cancel(up);
    free(big);
}

static void test_failed_write(void **state)
{
    t_store_t *t = *state;
    char uuid[ZN_UUID_LEN + 1];
    zn_upload_t *up;
    zn_digest_t d;
    uint64_t size;

    assert_int_equal(zn_storage_upload_start(t->st, "r", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_write(up, "0123", 4), ZN_OK);
    t_wait_rebuild(t);
    fail_pwrite_after = 0;
    assert_int_equal(zn_storage_upload_write(up, "4567", 4), ZN_EIO);
    assert_int_equal(zn_storage_upload_size(up), 4);
    zn_storage_upload_close(up);
    /* the partial byte was truncated away: the session resumes at 4 and completes */
    assert_int_equal(zn_storage_upload_open(t->st, "r", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_size(up), 4);
    assert_int_equal(zn_storage_upload_write(up, "4567", 4), ZN_OK);
    zn_digest_of(ZN_DIGEST_SHA256, "01234567", 8, &d);
    assert_int_equal(zn_storage_upload_finish(up, &d), ZN_OK);
    assert_int_equal(zn_storage_blob_stat(t->st, "r", &d, &size), ZN_OK);
    assert_int_equal(size, 8);
}

struct data_half {
    zn_upload_t *up;
    zn_upload_piece_t *piece;
};

static void *run_data_half(void *arg)
{
    struct data_half *d = arg;
    zn_storage_upload_piece_data(d->up, d->piece);
    return NULL;
}

/* One piece: the bytes written on another thread while this one hashes them. */
static zn_err_t write_piece(zn_upload_t *up, const void *p, size_t n)
{
    zn_upload_piece_t piece;
    zn_err_t err = zn_storage_upload_piece_begin(up, &piece, p, n);
    if (err != ZN_OK)
        return err;
    struct data_half d = {up, &piece};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_data_half, &d), 0);
    zn_storage_upload_piece_hash(up, &piece);
    assert_int_equal(pthread_join(th, NULL), 0);
    return zn_storage_upload_piece_end(up, &piece);
}

static void test_pieces(void **state)
{
    t_store_t *t = *state;
    char uuid[ZN_UUID_LEN + 1];
    zn_upload_t *up;
    zn_digest_t d;
    size_t n = 3u << 20;
    char *all = malloc(n);
    for (size_t i = 0; i < n; i++)
        all[i] = (char)(i * 131 + (i >> 12));
    t->cfg.storage.max_blob_size = 0; /* pieces of 1 MiB and more */

    assert_int_equal(zn_storage_upload_start(t->st, "r", uuid, &up), ZN_OK);
    assert_int_equal(write_piece(up, all, 1u << 20), ZN_OK);
    assert_int_equal(zn_storage_upload_size(up), 1u << 20);
    assert_int_equal(zn_storage_upload_write(up, all + (1u << 20), 5), ZN_OK); /* mixed with plain writes */
    assert_int_equal(write_piece(up, all + (1u << 20) + 5, n - (1u << 20) - 5), ZN_OK);
    assert_int_equal(zn_storage_upload_size(up), n);
    zn_storage_upload_close(up);
    /* the exported running hash covers what the pieces wrote */
    assert_int_equal(zn_storage_upload_open(t->st, "r", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_size(up), n);
    zn_digest_of(ZN_DIGEST_SHA256, all, n, &d);
    assert_int_equal(zn_storage_upload_finish(up, &d), ZN_OK);
    free(all);
}

static void test_piece_limit(void **state)
{
    t_store_t *t = *state;
    char uuid[ZN_UUID_LEN + 1];
    zn_upload_t *up;
    zn_upload_piece_t piece;
    char *big = calloc(1, (1 << 20) + 1);

    assert_int_equal(zn_storage_upload_start(t->st, "r", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_piece_begin(up, &piece, big, (1 << 20) + 1), ZN_ETOOBIG);
    assert_int_equal(write_piece(up, big, 1 << 20), ZN_OK);
    assert_int_equal(zn_storage_upload_piece_begin(up, &piece, big, 1), ZN_ETOOBIG);
    assert_int_equal(zn_storage_upload_size(up), 1 << 20);
    zn_storage_upload_cancel(up);
    free(big);
}

/* The hash half has already taken the bytes in when the write fails: the session must go on
 * from its former size with its former hash, in this process (no re-hash from disk). */
static void test_failed_piece(void **state)
{
    t_store_t *t = *state;
    char uuid[ZN_UUID_LEN + 1];
    zn_upload_t *up;
    zn_upload_piece_t piece;
    zn_digest_t d;
    uint64_t size;

    assert_int_equal(zn_storage_upload_start(t->st, "r", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_write(up, "0123", 4), ZN_OK);
    t_wait_rebuild(t);
    assert_int_equal(zn_storage_upload_piece_begin(up, &piece, "WXYZ", 4), ZN_OK);
    zn_storage_upload_piece_hash(up, &piece);
    fail_pwrite_after = 0;
    zn_storage_upload_piece_data(up, &piece);
    assert_int_equal(zn_storage_upload_piece_end(up, &piece), ZN_EIO);
    assert_int_equal(zn_storage_upload_size(up), 4);
    assert_int_equal(write_piece(up, "4567", 4), ZN_OK);
    zn_digest_of(ZN_DIGEST_SHA256, "01234567", 8, &d);
    assert_int_equal(zn_storage_upload_finish(up, &d), ZN_OK);
    assert_int_equal(zn_storage_blob_stat(t->st, "r", &d, &size), ZN_OK);
    assert_int_equal(size, 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chunked, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_restart, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_sha512_and_cancel, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_size_limit, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_failed_write, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_pieces, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_piece_limit, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_failed_piece, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
