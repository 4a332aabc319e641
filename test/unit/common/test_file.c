/* Unit tests for common/file.c: the bounded whole-file reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/zn.h"

static char dir[64];

static int setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof(dir), "/tmp/zn_test_file_XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *path_of(const char *name)
{
    static char p[128];
    assert_true((size_t)snprintf(p, sizeof(p), "%s/%s", dir, name) < sizeof(p));
    return p;
}

static void write_file(const char *path, const char *s, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void test_bound(void **state)
{
    const char *p = path_of("ten");
    zn_buf_t b;
    struct stat st;
    write_file(p, "0123456789", 10);
    /* exactly max bytes is fine, one more is not */
    assert_int_equal(zn_file_read(p, 10, &b, &st), ZN_OK);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.p, "0123456789");
    assert_int_equal(st.st_size, 10);
    zn_buf_release(&b);
    assert_int_equal(zn_file_read(p, 9, &b, NULL), ZN_ETOOBIG);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_int_equal(zn_file_read(p, 0, &b, NULL), ZN_ETOOBIG);
}

static void test_empty(void **state)
{
    const char *p = path_of("empty");
    zn_buf_t b;
    write_file(p, "", 0);
    assert_int_equal(zn_file_read(p, 100, &b, NULL), ZN_OK);
    assert_int_equal(b.len, 0);
    assert_non_null(b.p);
    assert_string_equal(b.p, "");
    zn_buf_release(&b);
    /* max 0 accepts only an empty file */
    assert_int_equal(zn_file_read(p, 0, &b, NULL), ZN_OK);
    assert_non_null(b.p);
    zn_buf_release(&b);
}

static void test_missing(void **state)
{
    zn_buf_t b;
    errno = 0;
    assert_int_equal(zn_file_read(path_of("nope"), 100, &b, NULL), ZN_ENOENT);
    assert_int_equal(errno, ENOENT); /* kept for the caller's message */
    assert_null(b.p);
    write_file(path_of("plain"), "x", 1);
    assert_int_equal(zn_file_read(path_of("plain/below"), 100, &b, NULL), ZN_ENOENT);
    /* a directory opens but cannot be read */
    assert_int_equal(zn_file_read(dir, 100, &b, NULL), ZN_EIO);
    assert_int_equal(errno, EISDIR);
    assert_null(b.p);
}

/* A writer that hands the reader its bytes a few at a time through a FIFO, so every read()
 * is short and fstat gives no size. */
struct writer {
    const char *path;
    size_t n;
};

static void *write_slowly(void *arg)
{
    struct writer *w = arg;
    int fd = open(w->path, O_WRONLY | O_CLOEXEC);
    char piece[3];
    for (size_t i = 0; fd != -1 && i < w->n; i += sizeof(piece)) {
        size_t k = w->n - i < sizeof(piece) ? w->n - i : sizeof(piece);
        for (size_t j = 0; j < k; j++)
            piece[j] = (char)('a' + (i + j) % 26);
        if (write(fd, piece, k) != (ssize_t)k)
            break;
    }
    if (fd != -1)
        close(fd);
    return NULL;
}

static void read_fifo(size_t n, size_t max, zn_err_t want)
{
    const char *p = path_of("fifo");
    struct writer w = {p, n};
    pthread_t t;
    zn_buf_t b;
    unlink(p);
    assert_int_equal(mkfifo(p, 0600), 0);
    assert_int_equal(zn_thread_create(&t, "test-writer", write_slowly, &w), 0);
    assert_int_equal(zn_file_read(p, max, &b, NULL), want);
    if (want == ZN_OK) {
        assert_int_equal(b.len, n);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(b.p[i], 'a' + i % 26);
        assert_int_equal(b.p[n], '\0');
        zn_buf_release(&b);
    } else {
        assert_null(b.p);
    }
    /* past max + 1 the reader has closed: the writer's next write fails (EPIPE) and it ends */
    pthread_join(t, NULL);
}

static void test_short_reads(void **state)
{
    read_fifo(10000, 20000, ZN_OK); /* several chunks, each from many short reads */
    read_fifo(4096, 4096, ZN_OK);   /* exactly the bound, exactly one chunk */
    read_fifo(4097, 4096, ZN_ETOOBIG);
    read_fifo(0, 10, ZN_OK);
}

static void test_proc(void **state)
{
    /* /proc files say st_size 0: read to EOF anyway */
    zn_buf_t b;
    assert_int_equal(zn_file_read("/proc/self/maps", 16u << 20, &b, NULL), ZN_OK);
    assert_true(b.len > 0);
    assert_non_null(strstr(b.p, "[stack]"));
    zn_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound),       cmocka_unit_test(test_empty), cmocka_unit_test(test_missing),
        cmocka_unit_test(test_short_reads), cmocka_unit_test(test_proc),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
