/* Unit tests for auth/basic.c: every shape of Authorization header a client may send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth_test.h"

static zn_auth_status_t parse(const char *hdr, zn_auth_creds_t *c)
{
    return zn_auth_basic_parse(hdr, hdr != NULL ? strlen(hdr) : 0, c);
}

static void test_valid(void **state)
{
    zn_auth_creds_t c;
    assert_int_equal(parse("Basic YWxpY2U6czNjcmV0", &c), ZN_AUTH_OK); /* alice:s3cret */
    assert_string_equal(c.user, "alice");
    assert_string_equal(c.pass, "s3cret");
    assert_int_equal(c.user_len, 5);
    assert_int_equal(c.pass_len, 6);
    /* scheme is case-insensitive; extra blanks tolerated */
    assert_int_equal(parse("basic YWxpY2U6czNjcmV0", &c), ZN_AUTH_OK);
    assert_int_equal(parse("BASIC   YWxpY2U6czNjcmV0  ", &c), ZN_AUTH_OK);
    assert_int_equal(parse("bAsIc\tYWxpY2U6czNjcmV0", &c), ZN_AUTH_OK);
    assert_string_equal(c.user, "alice");
    /* split at the first colon: the password may hold more */
    assert_int_equal(parse("Basic YTpiOmM=", &c), ZN_AUTH_OK); /* a:b:c */
    assert_string_equal(c.user, "a");
    assert_string_equal(c.pass, "b:c");
    /* empty password is a credential (and will fail to verify) */
    assert_int_equal(parse("Basic YWxpY2U6", &c), ZN_AUTH_OK); /* alice: */
    assert_int_equal(c.pass_len, 0);
    /* empty user with a password too */
    assert_int_equal(parse("Basic OnB3", &c), ZN_AUTH_OK); /* :pw */
    assert_int_equal(c.user_len, 0);
    /* unpadded base64 */
    assert_int_equal(parse("Basic YTpiOmM", &c), ZN_AUTH_OK);
    assert_string_equal(c.pass, "b:c");
    zn_auth_creds_wipe(&c);
}

static void test_anonymous(void **state)
{
    zn_auth_creds_t c;
    assert_int_equal(parse(NULL, &c), ZN_AUTH_ANONYMOUS);
    assert_int_equal(zn_auth_basic_parse("x", 0, &c), ZN_AUTH_ANONYMOUS);
    /* zot: "Basic Og==" (":") is no credentials */
    assert_int_equal(parse("Basic Og==", &c), ZN_AUTH_ANONYMOUS);
    assert_int_equal(parse("basic Og", &c), ZN_AUTH_ANONYMOUS);
}

static void test_failures(void **state)
{
    static const char *bad[] = {
        "Basic",                    /* no token */
        "Basic ",                   /* empty token */
        "Basic YWxpY2U=",           /* "alice": no colon */
        "Basic YWxpY2U6czNjcmV0=",  /* wrong padding */
        "Basic YWxp=Y2U6",          /* '=' inside */
        "Basic YWxpY2U6czNjcmV0!!", /* outside the alphabet */
        "Basic YWxpY2U6c-NjcmV0",   /* URL-safe alphabet is not Basic's */
        "Basic Y",                  /* length 1 mod 4 */
        "Basic ===",
        "Basicx YWxpY2U6czNjcmV0",  /* not the Basic scheme */
        "BasicYWxpY2U6czNjcmV0",
        "Bearer abc.def.ghi",
        "Digest username=\"alice\"",
        "YWxpY2U6czNjcmV0",
        " ",
        "Basic YWxp Y2U6czNjcmV0",  /* a space inside the token */
        "Basic YQBiOmM=",           /* "a\0b:c": a NUL in the user */
        "Basic YTpiAGM=",           /* "a:b\0c": a NUL in the password */
    };
    zn_auth_creds_t c;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&c, 'Z', sizeof(c));
        if (parse(bad[i], &c) != ZN_AUTH_FAILED)
            fail_msg("accepted: %s", bad[i]);
        /* nothing decoded is left behind */
        assert_int_equal(c.user_len, 0);
        assert_int_equal(c.pass_len, 0);
        assert_int_equal(c.user[0], 0);
    }
}

static void b64(const unsigned char *in, size_t n, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        out[o++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
}

static void test_limits(void **state)
{
    static char raw[8192], hdr[16384];
    zn_auth_creds_t c;
    /* the largest header we accept: 4096 bytes in all, password just fits */
    size_t rawlen = (ZN_AUTH_HEADER_MAX - 6) / 4 * 3;
    memcpy(raw, "u:", 2);
    memset(raw + 2, 'p', rawlen - 2);
    memcpy(hdr, "Basic ", 6);
    b64((unsigned char *)raw, rawlen, hdr + 6);
    assert_true(strlen(hdr) <= ZN_AUTH_HEADER_MAX);
    assert_int_equal(parse(hdr, &c), ZN_AUTH_OK);
    assert_int_equal(c.pass_len, rawlen - 2);
    /* one block more: over 4 KiB, refused before decoding */
    memset(raw + 2, 'p', rawlen + 3 - 2);
    b64((unsigned char *)raw, rawlen + 3, hdr + 6);
    assert_true(strlen(hdr) > ZN_AUTH_HEADER_MAX);
    assert_int_equal(parse(hdr, &c), ZN_AUTH_FAILED);
    /* a huge header */
    memset(hdr + 6, 'A', sizeof(hdr) - 7);
    hdr[sizeof(hdr) - 1] = '\0';
    assert_int_equal(parse(hdr, &c), ZN_AUTH_FAILED);
    /* user name: 255 fits, 256 does not */
    memset(raw, 'u', 256);
    raw[256] = ':';
    raw[257] = 'p';
    b64((unsigned char *)raw, 258, hdr + 6);
    assert_int_equal(parse(hdr, &c), ZN_AUTH_FAILED);
    b64((unsigned char *)raw + 1, 257, hdr + 6);
    assert_int_equal(parse(hdr, &c), ZN_AUTH_OK);
    assert_int_equal(c.user_len, 255);
    zn_auth_creds_wipe(&c);
}

static void test_binary_fuzzish(void **state)
{
    /* Random bytes never crash the parser and never yield a user with a NUL. */
    unsigned seed = 12345;
    char hdr[600];
    zn_auth_creds_t c;
    for (int round = 0; round < 20000; round++) {
        size_t n = (seed = seed * 1103515245 + 12345) % sizeof(hdr);
        memcpy(hdr, "Basic ", 6);
        for (size_t i = 6; i < n; i++) {
            seed = seed * 1103515245 + 12345;
            hdr[i] = round % 2 ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="[(seed >> 16) % 65]
                               : (char)(seed >> 16);
        }
        zn_auth_status_t st = zn_auth_basic_parse(hdr, n < 6 ? 6 : n, &c);
        if (st == ZN_AUTH_OK) {
            assert_int_equal(strlen(c.user), c.user_len);
            assert_int_equal(strlen(c.pass), c.pass_len);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),  cmocka_unit_test(test_anonymous),      cmocka_unit_test(test_failures),
        cmocka_unit_test(test_limits), cmocka_unit_test(test_binary_fuzzish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
