/* Unit tests for auth/htpasswd.c: parsing, bad lines, duplicates, lookup and reload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth_test.h"

static char H1[128], H2[128], H3[256];

static int setup(void **state)
{
    t_bcrypt("one", H1, sizeof(H1));
    t_bcrypt("two", H2, sizeof(H2));
    t_crypt("$6$", 1000, "three", H3, sizeof(H3));
    return 0;
}

static const zn_auth_htpasswd_entry_t *find(const zn_auth_htpasswd_table_t *t, const char *user)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->entries[i].user, user) == 0)
            return &t->entries[i];
    return NULL;
}

static void parse(const char *text, zn_auth_htpasswd_table_t *t, char **log)
{
    int fd = t_log_begin();
    zn_auth_htpasswd_parse("users.htpasswd", text, strlen(text), t);
    *log = t_log_end(fd);
}

static void test_parse_good_and_bad(void **state)
{
    char text[2048], *log;
    zn_auth_htpasswd_table_t t;
    snprintf(text, sizeof(text),
             "alice:%s\n"         /* 1 */
             "no colon here\n"    /* 2: bad */
             "\n"                 /* 3: blank, skipped quietly */
             ":%s\n"              /* 4: empty user */
             "bob:%s\r\n"         /* 5: CRLF: the hash ends in \r */
             "carol:plaintext\n"  /* 6: unsupported */
             "dave:%s\n"          /* 7 */
             "erin :%s",          /* 8: no trimming, no final newline */
             H1, H1, H2, H3, H2);
    parse(text, &t, &log);
    assert_int_equal(t.n, 3);
    assert_non_null(find(&t, "alice"));
    assert_string_equal(find(&t, "alice")->hash, H1);
    assert_string_equal(find(&t, "dave")->hash, H3);
    assert_string_equal(find(&t, "erin ")->hash, H2);
    assert_null(find(&t, "erin"));
    assert_null(find(&t, "bob"));
    assert_null(find(&t, "carol"));
    for (int line = 2; line <= 6; line++) {
        char want[64];
        snprintf(want, sizeof(want), "\"line\":%d", line);
        if (line == 3)
            assert_null(strstr(log, want));
        else
            assert_non_null(strstr(log, want));
    }
    assert_non_null(strstr(log, "\"file\":\"users.htpasswd\""));
    assert_null(strstr(log, "\"line\":1,"));
    /* the log never carries a hash */
    assert_null(strstr(log, H1 + 7));
    assert_null(strstr(log, H2 + 7));
    free(log);
    zn_auth_htpasswd_table_release(&t);
}

static void test_duplicates_last_wins(void **state)
{
    char text[1024], *log;
    zn_auth_htpasswd_table_t t;
    snprintf(text, sizeof(text), "u:%s\nv:%s\nu:%s\nw:%s\nu:%s\n", H1, H1, H2, H2, H3);
    parse(text, &t, &log);
    assert_int_equal(t.n, 3);
    assert_string_equal(find(&t, "u")->hash, H3);
    assert_int_equal(find(&t, "u")->line, 5);
    /* sorted: bsearch relies on it */
    for (size_t i = 1; i < t.n; i++)
        assert_true(strcmp(t.entries[i - 1].user, t.entries[i].user) < 0);
    free(log);
    zn_auth_htpasswd_table_release(&t);
}

static void test_user_limits(void **state)
{
    char text[1024], user[ZN_AUTH_USER_MAX + 2], *log;
    zn_auth_htpasswd_table_t t;
    memset(user, 'x', sizeof(user) - 1);
    user[sizeof(user) - 1] = '\0';
    snprintf(text, sizeof(text), "%s:%s\n%.*s:%s\nb:c:%s\n", user, H1, ZN_AUTH_USER_MAX, user, H2, H1);
    parse(text, &t, &log);
    /* 256 characters is refused, 255 kept; "b:c:<hash>" is user "b" with hash "c:<hash>" */
    assert_int_equal(t.n, 1);
    assert_int_equal(strlen(t.entries[0].user), ZN_AUTH_USER_MAX);
    assert_non_null(strstr(log, "\"line\":1"));
    assert_non_null(strstr(log, "\"line\":3"));
    free(log);
    zn_auth_htpasswd_table_release(&t);
    /* a NUL in the middle of the file spoils only its own line */
    static const char nul[] = "a\0b:x\n";
    char buf[256];
    size_t n = sizeof(nul) - 1;
    memcpy(buf, nul, n);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "c:%s\n", H1);
    int fd = t_log_begin();
    zn_auth_htpasswd_parse("f", buf, n, &t);
    free(t_log_end(fd));
    assert_int_equal(t.n, 1);
    assert_string_equal(t.entries[0].user, "c");
    zn_auth_htpasswd_table_release(&t);
}

static void test_init_lookup_reload(void **state)
{
    char dir[64], path[128], text[1024], hash[ZN_AUTH_HASH_MAX + 1], err[256];
    uint8_t fp[ZN_AUTH_FP_LEN], fp2[ZN_AUTH_FP_LEN];
    uint64_t gen, gen2;
    zn_auth_htpasswd_t h;

    t_tmpdir(dir);
    snprintf(path, sizeof(path), "%s/htpasswd", dir);
    assert_int_equal(zn_auth_htpasswd_init(&h, path, err, sizeof(err)), ZN_ENOENT);
    assert_non_null(strstr(err, "No such file"));
    snprintf(text, sizeof(text), "alice:%s\nbob:%s\n", H1, H2);
    t_write(path, text);
    assert_int_equal(zn_auth_htpasswd_init(&h, path, err, sizeof(err)), ZN_OK);
    assert_int_equal(zn_auth_htpasswd_lookup(&h, "alice", hash, fp, &gen), ZN_OK);
    assert_string_equal(hash, H1);
    assert_int_equal(zn_auth_htpasswd_lookup(&h, "carol", hash, fp, &gen), ZN_ENOENT);
    uint64_t now = zn_now_mono_ns();
    /* not due yet: the file is not even looked at */
    snprintf(text, sizeof(text), "alice:%s\ncarol:%s\n", H2, H3);
    t_write(path, text);
    assert_false(zn_auth_htpasswd_maybe_reload(&h, now));
    assert_int_equal(zn_auth_htpasswd_lookup(&h, "carol", hash, fp, &gen), ZN_ENOENT);
    /* due: alice's hash changed, bob removed, carol added */
    now += 2 * h.check_interval_ns;
    assert_true(zn_auth_htpasswd_maybe_reload(&h, now));
    assert_int_equal(zn_auth_htpasswd_lookup(&h, "alice", hash, fp2, &gen2), ZN_OK);
    assert_string_equal(hash, H2);
    assert_true(gen2 == gen + 1);
    assert_memory_not_equal(fp, fp2, sizeof(fp));
    assert_int_equal(zn_auth_htpasswd_lookup(&h, "bob", hash, fp, &gen), ZN_ENOENT);
    assert_int_equal(zn_auth_htpasswd_lookup(&h, "carol", hash, fp, &gen), ZN_OK);
    /* due again but unchanged: no reload */
    now += 2 * h.check_interval_ns;
    assert_false(zn_auth_htpasswd_maybe_reload(&h, now));
    /* the file disappears: keep the users, log once */
    unlink(path);
    int fd = t_log_begin();
    now += 2 * h.check_interval_ns;
    assert_false(zn_auth_htpasswd_maybe_reload(&h, now));
    now += 2 * h.check_interval_ns;
    assert_false(zn_auth_htpasswd_maybe_reload(&h, now));
    char *log = t_log_end(fd);
    assert_non_null(strstr(log, "htpasswd reload failed"));
    assert_null(strstr(strstr(log, "htpasswd reload failed") + 1, "htpasswd reload failed"));
    free(log);
    assert_int_equal(zn_auth_htpasswd_lookup(&h, "carol", hash, fp, &gen), ZN_OK);
    /* it comes back, with a user less */
    snprintf(text, sizeof(text), "alice:%s\n", H2);
    t_write(path, text);
    now += 2 * h.check_interval_ns;
    assert_true(zn_auth_htpasswd_maybe_reload(&h, now));
    assert_int_equal(zn_auth_htpasswd_lookup(&h, "carol", hash, fp, &gen), ZN_ENOENT);
    zn_auth_htpasswd_release(&h);
    unlink(path);
    rmdir(dir);
}

static void test_in_place_edit_same_size(void **state)
{
    /* An in-place rewrite keeps the inode and the size, and done within one kernel tick
     * even the timestamps; a file that recent is compared by content. */
    char dir[64], path[128], text[1024], hash[ZN_AUTH_HASH_MAX + 1], err[256];
    uint8_t fp[ZN_AUTH_FP_LEN];
    uint64_t gen;
    zn_auth_htpasswd_t h;

    t_tmpdir(dir);
    snprintf(path, sizeof(path), "%s/htpasswd", dir);
    snprintf(text, sizeof(text), "alice:%s\n", H1);
    t_write(path, text);
    assert_int_equal(zn_auth_htpasswd_init(&h, path, err, sizeof(err)), ZN_OK);
    assert_true(h.racy);
    snprintf(text, sizeof(text), "alicf:%s\n", H1);
    FILE *f = fopen(path, "r+");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_true(zn_auth_htpasswd_maybe_reload(&h, zn_now_mono_ns() + 2 * h.check_interval_ns));
    assert_int_equal(zn_auth_htpasswd_lookup(&h, "alice", hash, fp, &gen), ZN_ENOENT);
    assert_int_equal(zn_auth_htpasswd_lookup(&h, "alicf", hash, fp, &gen), ZN_OK);
    assert_true(gen == 1);
    /* touched, same bytes: no new generation (the cache survives) */
    assert_int_equal(utimensat(AT_FDCWD, path, NULL, 0), 0);
    assert_false(zn_auth_htpasswd_maybe_reload(&h, zn_now_mono_ns() + 4 * h.check_interval_ns));
    assert_int_equal(zn_auth_htpasswd_lookup(&h, "alicf", hash, fp, &gen), ZN_OK);
    assert_true(gen == 1);
    zn_auth_htpasswd_release(&h);
    unlink(path);
    rmdir(dir);
}

static void test_too_big(void **state)
{
    char dir[64], path[128], err[256];
    zn_auth_htpasswd_t h;
    t_tmpdir(dir);
    snprintf(path, sizeof(path), "%s/htpasswd", dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, ZN_AUTH_HTPASSWD_MAX + 1), 0);
    close(fd);
    assert_int_equal(zn_auth_htpasswd_init(&h, path, err, sizeof(err)), ZN_ETOOBIG);
    assert_non_null(strstr(err, "larger than"));
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good_and_bad), cmocka_unit_test(test_duplicates_last_wins),
        cmocka_unit_test(test_user_limits),        cmocka_unit_test(test_init_lookup_reload),
        cmocka_unit_test(test_in_place_edit_same_size), cmocka_unit_test(test_too_big),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
