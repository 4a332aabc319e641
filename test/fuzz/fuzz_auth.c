/*
 * test/fuzz/fuzz_auth.c - Authorization header values: Basic credentials (auth/basic.c),
 * the Bearer scheme split and token verification (auth/token.c). A token minted for the
 * parsed user name must verify back to that user; no forged input may verify under a key
 * it was not minted with.
 */
#include <openssl/evp.h>

#include "auth/auth.h"
#include "fuzz.h"

static zn_auth_token_key_t key;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    for (size_t i = 0; i < sizeof(key.k); i++)
        key.k[i] = (uint8_t)(i * 7 + 1); /* fixed: reproducible runs */
    return 0;
}

static void check_basic(const char *hdr, size_t len)
{
    zn_auth_creds_t c = {0};
    zn_auth_status_t s = zn_auth_basic_parse(hdr, len, &c);
    FZ_CHECK(s == ZN_AUTH_OK || s == ZN_AUTH_ANONYMOUS || s == ZN_AUTH_FAILED);
    if (s != ZN_AUTH_OK)
        return;
    FZ_CHECK(c.user_len <= ZN_AUTH_USER_MAX && c.pass_len <= ZN_AUTH_PASS_MAX);
    FZ_CHECK(c.user[c.user_len] == '\0' && c.pass[c.pass_len] == '\0');
    FZ_CHECK(memchr(c.user, ':', c.user_len) == NULL && strlen(c.user) == c.user_len);
    FZ_CHECK(strlen(c.pass) == c.pass_len);
    /* the same credentials, encoded afresh, parse to the same thing */
    {
        size_t plain_len = c.user_len + 1 + c.pass_len;
        unsigned char *plain = malloc(plain_len);
        char *hdr2 = malloc(6 + 4 * ((plain_len + 2) / 3) + 1);
        if (plain == NULL || hdr2 == NULL)
            abort();
        memcpy(plain, c.user, c.user_len);
        plain[c.user_len] = ':';
        memcpy(plain + c.user_len + 1, c.pass, c.pass_len);
        memcpy(hdr2, "Basic ", 6);
        int n64 = EVP_EncodeBlock((unsigned char *)hdr2 + 6, plain, (int)plain_len);
        zn_auth_creds_t c2 = {0};
        FZ_CHECK(zn_auth_basic_parse(hdr2, 6 + (size_t)n64, &c2) == ZN_AUTH_OK);
        FZ_CHECK(c2.user_len == c.user_len && memcmp(c2.user, c.user, c.user_len) == 0);
        FZ_CHECK(c2.pass_len == c.pass_len && memcmp(c2.pass, c.pass, c.pass_len) == 0);
        zn_auth_creds_wipe(&c2);
        free(plain);
        free(hdr2);
    }
    /* a name that parses gets a token that verifies back to it */
    char tok[ZN_AUTH_TOKEN_MAX + 1];
    size_t n = zn_auth_token_mint(&key, c.user, 1700000000, 300, tok);
    if (n != 0) {
        zn_auth_creds_t back = {0};
        FZ_CHECK(n <= ZN_AUTH_TOKEN_MAX && strlen(tok) == n);
        zn_auth_status_t v = zn_auth_token_verify(&key, tok, n, 1700000100, &back);
        if (c.user_len != 0)
            FZ_CHECK(v == ZN_AUTH_OK && back.user_len == c.user_len && memcmp(back.user, c.user, c.user_len) == 0);
        FZ_CHECK(zn_auth_token_verify(&key, tok, n, 1700000400, &back) == ZN_AUTH_FAILED); /* expired */
        zn_auth_creds_wipe(&back);
    }
    zn_auth_creds_wipe(&c);
}

static void check_bearer(const char *hdr, size_t len)
{
    const char *tok;
    size_t toklen;
    if (!zn_auth_bearer_token(hdr, len, &tok, &toklen))
        return;
    FZ_CHECK(tok >= hdr && tok + toklen <= hdr + len);
    zn_auth_creds_t c = {0};
    zn_auth_status_t s = zn_auth_token_verify(&key, tok, toklen, 1700000100, &c);
    FZ_CHECK(s == ZN_AUTH_OK || s == ZN_AUTH_ANONYMOUS || s == ZN_AUTH_FAILED);
    if (s == ZN_AUTH_OK)
        FZ_CHECK(c.user_len <= ZN_AUTH_USER_MAX && c.user[c.user_len] == '\0');
    /* another key must reject whatever the first accepted */
    zn_auth_token_key_t other = key;
    other.k[0] ^= 1;
    zn_auth_creds_t c2 = {0};
    FZ_CHECK(zn_auth_token_verify(&other, tok, toklen, 1700000100, &c2) == ZN_AUTH_FAILED);
    zn_auth_creds_wipe(&c);
    zn_auth_creds_wipe(&c2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *hdr = malloc(size != 0 ? size : 1);
    if (hdr == NULL)
        abort();
    memcpy(hdr, data, size);
    check_basic(hdr, size);
    check_bearer(hdr, size);
    /* the token alone, as the fuzzer can shape it without the scheme */
    zn_auth_creds_t c = {0};
    (void)zn_auth_token_verify(&key, hdr, size, 1700000100, &c);
    zn_auth_creds_wipe(&c);
    free(hdr);
    return 0;
}
