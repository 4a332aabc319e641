/* Unit tests for auth/token.c: bearer tokens minted, verified, expired, tampered with,
 * signed under another key, and every malformed shape a client could send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth_test.h"

#define NOW 1700000000
#define TTL 300

static zn_auth_token_key_t key, other;

static int setup(void **state)
{
    return zn_auth_token_key_init(&key) == ZN_OK && zn_auth_token_key_init(&other) == ZN_OK ? 0 : -1;
}

static zn_auth_status_t verify_at(const char *tok, int64_t now, zn_auth_creds_t *c)
{
    return zn_auth_token_verify(&key, tok, strlen(tok), now, c);
}

static void test_user_roundtrip(void **state)
{
    char tok[ZN_AUTH_TOKEN_MAX + 1];
    zn_auth_creds_t c;

    size_t n = zn_auth_token_mint(&key, "alice", NOW, TTL, tok);
    assert_int_equal(n, strlen(tok));
    assert_true(strncmp(tok, "zn1.", 4) == 0);
    assert_int_equal(verify_at(tok, NOW, &c), ZN_AUTH_OK);
    assert_string_equal(c.user, "alice");
    assert_int_equal(c.user_len, 5);
    assert_int_equal(c.pass_len, 0);
    /* valid until the last second, refused from expiry on */
    assert_int_equal(verify_at(tok, NOW + TTL - 1, &c), ZN_AUTH_OK);
    assert_int_equal(verify_at(tok, NOW + TTL, &c), ZN_AUTH_FAILED);
    assert_int_equal(verify_at(tok, NOW + 100000, &c), ZN_AUTH_FAILED);
    /* issued far in the future of the verifier's clock: refused; a little: tolerated */
    assert_int_equal(verify_at(tok, NOW - 30, &c), ZN_AUTH_OK);
    assert_int_equal(verify_at(tok, NOW - 120, &c), ZN_AUTH_FAILED);
    /* another process (another key) never accepts it */
    assert_int_equal(zn_auth_token_verify(&other, tok, n, NOW, &c), ZN_AUTH_FAILED);
}

static void test_anonymous_and_odd_names(void **state)
{
    char tok[ZN_AUTH_TOKEN_MAX + 1], name[ZN_AUTH_USER_MAX + 2];
    zn_auth_creds_t c;

    assert_true(zn_auth_token_mint(&key, NULL, NOW, TTL, tok) > 0);
    assert_int_equal(verify_at(tok, NOW, &c), ZN_AUTH_ANONYMOUS);
    assert_int_equal(c.user_len, 0);
    /* "-" as a user name is a user, not anonymous; so are dots and bytes over 0x7f */
    const char *names[] = {"-", "a.b.c", "\xc3\xa9t\xc3\xa9", ""};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert_true(zn_auth_token_mint(&key, names[i], NOW, TTL, tok) > 0);
        assert_int_equal(verify_at(tok, NOW, &c), ZN_AUTH_OK);
        assert_string_equal(c.user, names[i]);
    }
    /* the longest name fits; one byte more is refused at minting */
    memset(name, 'u', ZN_AUTH_USER_MAX);
    name[ZN_AUTH_USER_MAX] = '\0';
    size_t n = zn_auth_token_mint(&key, name, NOW, TTL, tok);
    assert_true(n > 0 && n <= ZN_AUTH_TOKEN_MAX);
    assert_int_equal(verify_at(tok, NOW, &c), ZN_AUTH_OK);
    assert_int_equal(c.user_len, ZN_AUTH_USER_MAX);
    name[ZN_AUTH_USER_MAX] = 'u';
    name[ZN_AUTH_USER_MAX + 1] = '\0';
    assert_int_equal(zn_auth_token_mint(&key, name, NOW, TTL, tok), 0);
    assert_int_equal(zn_auth_token_mint(&key, "alice", -1, TTL, tok), 0);
    assert_int_equal(zn_auth_token_mint(&key, "alice", NOW, 0, tok), 0);
}

/* Every single-character change anywhere in a token invalidates it. */
static void test_tamper(void **state)
{
    char tok[ZN_AUTH_TOKEN_MAX + 1], t2[ZN_AUTH_TOKEN_MAX + 1];
    zn_auth_creds_t c;
    size_t n = zn_auth_token_mint(&key, "alice", NOW, TTL, tok);
    const char repl[] = "0a.-zZ";

    for (size_t i = 0; i < n; i++) {
        for (const char *r = repl; *r != '\0'; r++) {
            if (*r == tok[i])
                continue;
            memcpy(t2, tok, n + 1);
            t2[i] = *r;
            assert_int_equal(verify_at(t2, NOW, &c), ZN_AUTH_FAILED);
        }
    }
    /* a longer expiry spliced into a valid token */
    snprintf(t2, sizeof(t2), "zn1.%d.%d.%s", NOW, NOW + 100000, strstr(tok + 4, ".") + 1 + strlen("1700000300."));
    assert_int_equal(verify_at(t2, NOW + 1000, &c), ZN_AUTH_FAILED);
    /* alice's MAC on bob's name */
    memcpy(t2, tok, n + 1);
    memcpy(strstr(t2, "616c696365"), "626f620000", 10);
    assert_int_equal(verify_at(t2, NOW, &c), ZN_AUTH_FAILED);
    /* truncated anywhere, or with bytes appended */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(zn_auth_token_verify(&key, tok, i, NOW, &c), ZN_AUTH_FAILED);
    memcpy(t2, tok, n + 1);
    t2[n] = '0';
    t2[n + 1] = '\0';
    assert_int_equal(verify_at(t2, NOW, &c), ZN_AUTH_FAILED);
}

static void test_malformed(void **state)
{
    zn_auth_creds_t c;
    char big[ZN_AUTH_TOKEN_MAX + 10];
    const char *bad[] = {
        "",
        "zn1.",
        "garbage",
        "zn1....",
        "zn1.1.2.-.",
        "zn2.1700000000.1700000300.-.0000000000000000000000000000000000000000000000000000000000000000",
        "zn1.1700000000.1700000300.-.000000000000000000000000000000000000000000000000000000000000000",
        "zn1.1700000000.1700000300.-.00000000000000000000000000000000000000000000000000000000000000000",
        "zn1.1700000000.1700000300.-.000000000000000000000000000000000000000000000000000000000000000G",
        "zn1.99999999999999999999999.1700000300.-.0000000000000000000000000000000000000000000000000000000000000000",
        "zn1.-1.1700000300.-.0000000000000000000000000000000000000000000000000000000000000000",
        "zn1.1700000000.1700000300.6.0000000000000000000000000000000000000000000000000000000000000000",
        "zn1.1700000000.1700000300.61.62.0000000000000000000000000000000000000000000000000000000000000000",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(verify_at(bad[i], NOW, &c), ZN_AUTH_FAILED);
    memset(big, 'a', sizeof(big));
    assert_int_equal(zn_auth_token_verify(&key, big, sizeof(big), NOW, &c), ZN_AUTH_FAILED);
    assert_int_equal(zn_auth_token_verify(&key, NULL, 0, NOW, &c), ZN_AUTH_FAILED);
    /* a NUL inside a token never reaches a C string */
    char tok[ZN_AUTH_TOKEN_MAX + 1];
    size_t n = zn_auth_token_mint(&key, "alice", NOW, TTL, tok);
    tok[10] = '\0';
    assert_int_equal(zn_auth_token_verify(&key, tok, n, NOW, &c), ZN_AUTH_FAILED);
}

static void test_bearer_header(void **state)
{
    const char *tok;
    size_t n;
    const char *h = "Bearer zn1.x";
    assert_true(zn_auth_bearer_token(h, strlen(h), &tok, &n));
    assert_int_equal(n, 5);
    assert_memory_equal(tok, "zn1.x", 5);
    h = "bEaReR \t zn1.y  ";
    assert_true(zn_auth_bearer_token(h, strlen(h), &tok, &n));
    assert_int_equal(n, 5);
    assert_memory_equal(tok, "zn1.y", 5);
    h = "Bearer ";
    assert_true(zn_auth_bearer_token(h, strlen(h), &tok, &n));
    assert_int_equal(n, 0);
    h = "Basic YTpi";
    assert_false(zn_auth_bearer_token(h, strlen(h), &tok, &n));
    h = "Bearerzn1";
    assert_false(zn_auth_bearer_token(h, strlen(h), &tok, &n));
    assert_false(zn_auth_bearer_token(NULL, 0, &tok, &n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_roundtrip), cmocka_unit_test(test_anonymous_and_odd_names), cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_malformed),      cmocka_unit_test(test_bearer_header),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
