/*
 * auth/token.c - short-lived bearer tokens that name an identity (docs/zot.md §2, zinc 2).
 *
 * Classic Docker only sends credentials to a token service named in a Bearer challenge;
 * the server mints a token there and accepts "Authorization: Bearer <token>" afterwards.
 * A token is opaque to clients and carries no access claims: it only says who the caller
 * is, and every request is authorized as if that user had sent Basic credentials.
 *
 *   zn1.<issued>.<expires>.<user>.<mac>
 *
 * issued and expires are Unix seconds in decimal, user is "-" for anonymous or the user
 * name in lower-case hex (so any byte of a name survives, and "-" cannot be a name), mac
 * is HMAC-SHA256 under a random per-process key over everything before the last '.', in
 * lower-case hex. A restart invalidates every token; Docker then simply fetches another.
 * Verification parses the fixed shape with a cursor, compares the MAC in constant time
 * before looking at the user, and enforces expiry; anything malformed is FAILED.
 */
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth/auth.h"

#define TOKEN_PREFIX "zn1."
#define MAC_LEN 32
#define NUM_MAX_DIGITS 18 /* below 2^63: no overflow while parsing */
/* a token issued a little "in the future" is tolerated (another worker's clock read) */
#define ISSUED_SKEW_S 60

static const char hexdigits[] = "0123456789abcdef";

zn_err_t zn_auth_token_key_init(zn_auth_token_key_t *k)
{
    return RAND_bytes(k->k, sizeof(k->k)) == 1 ? ZN_OK : ZN_EIO;
}

void zn_auth_token_key_wipe(zn_auth_token_key_t *k)
{
    OPENSSL_cleanse(k->k, sizeof(k->k));
}

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdigits[in[i] >> 4];
        out[2 * i + 1] = hexdigits[in[i] & 15];
    }
}

/* Strict lower-case hex of exactly 2*n characters into out[n]. */
static bool hex_decode(const char *in, size_t inlen, uint8_t *out, size_t n)
{
    if (inlen != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int hi = zn_hex_digit(in[2 * i], false), lo = zn_hex_digit(in[2 * i + 1], false);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static void token_mac(const zn_auth_token_key_t *k, const char *msg, size_t len, uint8_t mac[MAC_LEN])
{
    unsigned maclen = MAC_LEN;
    if (HMAC(EVP_sha256(), k->k, sizeof(k->k), (const unsigned char *)msg, len, mac, &maclen) == NULL || maclen != MAC_LEN) {
        /* never accept or mint a token without a MAC: out of memory in OpenSSL is fatal */
        zn_log(ZN_LOG_FATAL, "auth: HMAC-SHA256 failed");
        abort();
    }
}

size_t zn_auth_token_mint(const zn_auth_token_key_t *k, const char *user, int64_t now, int64_t ttl, char *out)
{
    size_t ulen = user != NULL ? strlen(user) : 0;
    uint8_t mac[MAC_LEN];

    if (ulen > ZN_AUTH_USER_MAX || now < 0 || ttl <= 0 || now > 999999999999 || ttl > 999999999999)
        return 0;
    int n = snprintf(out, ZN_AUTH_TOKEN_MAX + 1, TOKEN_PREFIX "%lld.%lld.", (long long)now, (long long)(now + ttl));
    if (n < 0 || (size_t)n + 2 * ulen + 2 + 2 * MAC_LEN > ZN_AUTH_TOKEN_MAX)
        return 0;
    size_t len = (size_t)n;
    if (user == NULL) {
        out[len++] = '-';
    } else {
        hex_encode((const uint8_t *)user, ulen, out + len);
        len += 2 * ulen;
    }
    token_mac(k, out, len, mac);
    out[len++] = '.';
    hex_encode(mac, MAC_LEN, out + len);
    len += 2 * MAC_LEN;
    out[len] = '\0';
    return len;
}

/* A decimal field of 1..NUM_MAX_DIGITS digits ending at '.'; advances *p past the dot. */
static bool parse_num(const char **p, const char *end, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    while (s < end && *s >= '0' && *s <= '9' && s - *p < NUM_MAX_DIGITS)
        v = v * 10 + (*s++ - '0');
    if (s == *p || s == end || *s != '.')
        return false;
    *p = s + 1;
    *out = v;
    return true;
}

/* Split tok into the signed part [tok, mac_dot) and check its shape, the MAC and the
 * times; on success *user_field and *user_flen are the user field (still encoded). */
static bool check_token(const zn_auth_token_key_t *k, const char *tok, size_t len, int64_t now, const char **user_field,
                        size_t *user_flen)
{
    const char *p = tok, *end = tok + len;
    int64_t issued, expires;
    uint8_t want[MAC_LEN], got[MAC_LEN];

    if (len > ZN_AUTH_TOKEN_MAX || len < sizeof(TOKEN_PREFIX) - 1 + 2 * MAC_LEN + 6 ||
        memcmp(p, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1) != 0)
        return false;
    p += sizeof(TOKEN_PREFIX) - 1;
    if (!parse_num(&p, end, &issued) || !parse_num(&p, end, &expires))
        return false;
    const char *mac_dot = end - 2 * MAC_LEN - 1;
    if (mac_dot < p || *mac_dot != '.' || memchr(p, '.', (size_t)(mac_dot - p)) != NULL ||
        !hex_decode(mac_dot + 1, 2 * MAC_LEN, got, MAC_LEN))
        return false;
    token_mac(k, tok, (size_t)(mac_dot - tok), want);
    if (CRYPTO_memcmp(want, got, MAC_LEN) != 0)
        return false;
    /* signed by us, so the times are ours; expiry is still enforced on every use */
    if (now >= expires || issued > now + ISSUED_SKEW_S)
        return false;
    *user_field = p;
    *user_flen = (size_t)(mac_dot - p);
    return true;
}

zn_auth_status_t zn_auth_token_verify(const zn_auth_token_key_t *k, const char *tok, size_t len, int64_t now, zn_auth_creds_t *out)
{
    const char *uf;
    size_t uflen;

    out->user_len = out->pass_len = 0;
    out->user[0] = out->pass[0] = '\0';
    if (tok == NULL || !check_token(k, tok, len, now, &uf, &uflen))
        return ZN_AUTH_FAILED;
    if (uflen == 1 && uf[0] == '-')
        return ZN_AUTH_ANONYMOUS;
    /* a name with a NUL could not have come from us, but a C string must never be cut */
    if (uflen % 2 != 0 || uflen / 2 > ZN_AUTH_USER_MAX || !hex_decode(uf, uflen, (uint8_t *)out->user, uflen / 2) ||
        memchr(out->user, '\0', uflen / 2) != NULL) {
        out->user_len = uflen / 2 <= ZN_AUTH_USER_MAX ? uflen / 2 : 0;
        zn_auth_creds_wipe(out);
        return ZN_AUTH_FAILED;
    }
    out->user_len = uflen / 2;
    out->user[out->user_len] = '\0';
    return ZN_AUTH_OK;
}

bool zn_auth_bearer_token(const char *hdr, size_t len, const char **tok, size_t *toklen)
{
    static const char scheme[] = "bearer ";
    const char *p = hdr, *end = hdr + len;

    if (hdr == NULL || len < sizeof(scheme) - 1 || strncasecmp(p, scheme, sizeof(scheme) - 1) != 0)
        return false;
    p += sizeof(scheme) - 1;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *tok = p;
    *toklen = (size_t)(end - p);
    return true;
}
