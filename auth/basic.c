/*
 * auth/basic.c - "Authorization: Basic <base64(user:password)>" (RFC 7617).
 *
 * Every byte here comes from the network. The header is bounded before anything else is
 * looked at, decoded with a strict base64 decoder into a fixed buffer, split at the first
 * ':' and refused if a NUL could cut a name short in the C string world. The decoded bytes
 * are wiped from the stack before returning. "Basic Og==" (":": empty user and password)
 * means no credentials, as in zot.
 */
#include <openssl/crypto.h>
#include <string.h>
#include <strings.h>

#include "auth/auth_int.h"

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Standard alphabet; padding optional but, when present, correct. *outlen counts the bytes
 * written, also when it fails. */
static bool b64_decode(const char *s, size_t n, char *out, size_t max, size_t *outlen)
{
    size_t pad = 0, o = 0;
    uint32_t acc = 0;
    int bits = 0;

    *outlen = 0;
    while (n > 0 && s[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if ((pad != 0 && (n + pad) % 4 != 0) || n % 4 == 1)
        return false;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == max)
                return false;
            out[o++] = (char)((acc >> bits) & 0xff);
            *outlen = o; /* also on failure: the caller wipes what was written */
        }
    }
    return true;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* The base64 token of a Basic header, or false for another scheme or a missing token. */
static bool basic_token(const char *p, const char *end, const char **tok, size_t *toklen)
{
    static const char scheme[] = "basic";
    while (p < end && is_space(*p))
        p++;
    while (end > p && is_space(end[-1]))
        end--;
    if ((size_t)(end - p) < sizeof(scheme) || strncasecmp(p, scheme, sizeof(scheme) - 1) != 0 ||
        !is_space(p[sizeof(scheme) - 1]))
        return false;
    p += sizeof(scheme) - 1;
    while (p < end && is_space(*p))
        p++;
    *tok = p;
    *toklen = (size_t)(end - p);
    return true;
}

/* Split "user:password" into out. */
static zn_auth_status_t split(const char *dec, size_t n, zn_auth_creds_t *out)
{
    const char *colon = memchr(dec, ':', n);
    if (colon == NULL || memchr(dec, '\0', n) != NULL)
        return ZN_AUTH_FAILED;
    size_t ulen = (size_t)(colon - dec), plen = n - ulen - 1;
    if (ulen == 0 && plen == 0)
        return ZN_AUTH_ANONYMOUS;
    if (ulen > ZN_AUTH_USER_MAX || plen > ZN_AUTH_PASS_MAX)
        return ZN_AUTH_FAILED;
    memcpy(out->user, dec, ulen);
    out->user[ulen] = '\0';
    out->user_len = ulen;
    memcpy(out->pass, colon + 1, plen);
    out->pass[plen] = '\0';
    out->pass_len = plen;
    return ZN_AUTH_OK;
}

zn_auth_status_t zn_auth_basic_parse(const char *hdr, size_t len, zn_auth_creds_t *out)
{
    zn_auth_status_t st = ZN_AUTH_FAILED;
    char dec[ZN_AUTH_HEADER_MAX / 4 * 3];
    const char *tok;
    size_t toklen, n;

    out->user_len = out->pass_len = 0;
    out->user[0] = out->pass[0] = '\0';
    if (hdr == NULL || len == 0)
        return ZN_AUTH_ANONYMOUS;
    if (len > ZN_AUTH_HEADER_MAX || !basic_token(hdr, hdr + len, &tok, &toklen))
        return ZN_AUTH_FAILED;
    if (b64_decode(tok, toklen, dec, sizeof(dec), &n))
        st = split(dec, n, out);
    OPENSSL_cleanse(dec, n);
    if (st != ZN_AUTH_OK)
        zn_auth_creds_wipe(out);
    return st;
}

void zn_auth_creds_wipe(zn_auth_creds_t *c)
{
    /* only what was written: this runs on every request and the struct is 3 KiB */
    OPENSSL_cleanse(c->user, (c->user_len < ZN_AUTH_USER_MAX ? c->user_len : ZN_AUTH_USER_MAX) + 1);
    OPENSSL_cleanse(c->pass, (c->pass_len < ZN_AUTH_PASS_MAX ? c->pass_len : ZN_AUTH_PASS_MAX) + 1);
    c->user_len = c->pass_len = 0;
}
