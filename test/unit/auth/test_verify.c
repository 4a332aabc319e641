/* Unit tests for auth/verify.c: hash syntax and password verification per scheme. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth_test.h"

static void check_scheme(const char *hash, zn_auth_hash_kind_t kind)
{
    assert_int_equal(zn_auth_hash_kind(hash, strlen(hash)), kind);
    assert_true(zn_auth_hash_verify(hash, "s3cret", 6));
    assert_false(zn_auth_hash_verify(hash, "s3creT", 6));
    assert_false(zn_auth_hash_verify(hash, "s3cret ", 7));
    assert_false(zn_auth_hash_verify(hash, "s3cre", 5));
    assert_false(zn_auth_hash_verify(hash, "", 0));
    /* a NUL would make crypt see "s3cret" only */
    assert_false(zn_auth_hash_verify(hash, "s3cret\0x", 8));
}

static void test_bcrypt_variants(void **state)
{
    char h[128];
    check_scheme(t_crypt("$2y$", 4, "s3cret", h, sizeof(h)), ZN_AUTH_HASH_BCRYPT);
    check_scheme(t_crypt("$2b$", 4, "s3cret", h, sizeof(h)), ZN_AUTH_HASH_BCRYPT);
    check_scheme(t_crypt("$2a$", 4, "s3cret", h, sizeof(h)), ZN_AUTH_HASH_BCRYPT);
    /* htpasswd -B uses $2y$ and cost 5 by default */
    t_crypt("$2y$", 5, "s3cret", h, sizeof(h));
    assert_memory_equal(h, "$2y$05$", 7);
    check_scheme(h, ZN_AUTH_HASH_BCRYPT);
}

static void test_shacrypt(void **state)
{
    char h[256];
    check_scheme(t_crypt("$5$", 1000, "s3cret", h, sizeof(h)), ZN_AUTH_HASH_SHACRYPT);
    check_scheme(t_crypt("$6$", 1000, "s3cret", h, sizeof(h)), ZN_AUTH_HASH_SHACRYPT);
    /* default rounds: no "rounds=" field */
    check_scheme(t_crypt("$6$", 0, "s3cret", h, sizeof(h)), ZN_AUTH_HASH_SHACRYPT);
    assert_null(strstr(h, "rounds="));
}

static void test_argon2id(void **state)
{
    char h[256];
    check_scheme(t_argon2id("s3cret", h, sizeof(h)), ZN_AUTH_HASH_ARGON2ID);
}

static void test_syntax_rejects(void **state)
{
    char h[256];
    static const char *bad[] = {
        "",
        "s3cret",                                         /* plain text */
        "$apr1$abcdefgh$0123456789012345678901",         /* Apache MD5: zot rejects it too */
        "$1$abcdefgh$0123456789012345678901",            /* MD5-crypt */
        "{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=",             /* htpasswd -s */
        "$2y$10$tooshort",
        "$2x$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", /* $2x$ not accepted */
        "$2y$03$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", /* cost < 4 */
        "$2y$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ012!4", /* alphabet */
        "$5$salt$tooshort",
        "$6$rounds=$salt$0123456789012345678901234567890123456789012345678901234567890123456789012345678901234",
        "$argon2i$v=19$m=256,t=1,p=1$c2FsdA$aGFzaA",     /* argon2i, not argon2id */
        "$argon2id$",
    };
    /* control: the shape the bad bcrypt rows below are altered from */
    const char *good = "$2y$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
    assert_int_equal(zn_auth_hash_kind(good, strlen(good)), ZN_AUTH_HASH_BCRYPT);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(zn_auth_hash_kind(bad[i], strlen(bad[i])), ZN_AUTH_HASH_UNKNOWN);
        assert_false(zn_auth_hash_verify(bad[i], "s3cret", 6));
    }
    /* a valid hash with a CR (a CRLF htpasswd file) is not valid any more */
    t_bcrypt("s3cret", h, sizeof(h));
    assert_int_equal(zn_auth_hash_kind(h, strlen(h) + 1), ZN_AUTH_HASH_UNKNOWN); /* with its NUL */
    h[strlen(h) + 1] = '\0';
    h[strlen(h)] = '\r';
    assert_int_equal(zn_auth_hash_kind(h, strlen(h)), ZN_AUTH_HASH_UNKNOWN);
    t_crypt("$6$", 1000, "s3cret", h, sizeof(h));
    h[strlen(h) + 1] = '\0';
    h[strlen(h)] = '\r';
    assert_int_equal(zn_auth_hash_kind(h, strlen(h)), ZN_AUTH_HASH_UNKNOWN);
    /* over-long */
    char big[ZN_AUTH_HASH_MAX + 20] = "$argon2id$";
    memset(big + 10, 'a', sizeof(big) - 11);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(zn_auth_hash_kind(big, strlen(big)), ZN_AUTH_HASH_UNKNOWN);
}

static void test_fingerprint(void **state)
{
    uint8_t a[ZN_AUTH_FP_LEN], b[ZN_AUTH_FP_LEN], c[ZN_AUTH_FP_LEN];
    zn_auth_hash_fingerprint("$2y$x", 5, a);
    zn_auth_hash_fingerprint("$2y$x", 5, b);
    zn_auth_hash_fingerprint("$2y$y", 5, c);
    assert_memory_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, c, sizeof(a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bcrypt_variants), cmocka_unit_test(test_shacrypt), cmocka_unit_test(test_argon2id),
        cmocka_unit_test(test_syntax_rejects),  cmocka_unit_test(test_fingerprint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
