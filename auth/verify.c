/*
 * auth/verify.c - checking a password against one stored htpasswd hash.
 *
 * bcrypt ($2a$ $2b$ $2y$) and SHA-crypt ($5$ $6$) go through libxcrypt's crypt_rn with a
 * heap scratch area (struct crypt_data is 32 KiB: too much for a worker's stack to carry
 * for nothing); argon2id (a zinc extra) through libargon2. The recomputed hash is compared
 * with the stored one in constant time. Syntax is checked when the file is read
 * (zn_auth_hash_kind) so a bad line can be reported with its line number, and so that
 * nothing we cannot verify reaches crypt.
 */
#include <argon2.h>
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"

static bool is_crypt64(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '/';
}

static bool all_crypt64(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_crypt64(p[i]))
            return false;
    return true;
}

/* $2y$NN$ + 22 salt + 31 hash characters = 60 bytes. */
static bool is_bcrypt(const char *h, size_t len)
{
    if (len != 60 || memcmp(h, "$2", 2) != 0 || (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') || h[3] != '$')
        return false;
    if (h[4] < '0' || h[4] > '3' || h[5] < '0' || h[5] > '9' || h[6] != '$')
        return false;
    int cost = (h[4] - '0') * 10 + (h[5] - '0');
    return cost >= 4 && cost <= 31 && all_crypt64(h + 7, 53);
}

/* SHA-crypt salts may hold any byte but '$', ':' and control bytes (openssl passwd -salt). */
static bool salt_ok(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == ':' || (unsigned char)p[i] < 0x20)
            return false;
    return true;
}

/* $5$[rounds=N$]salt$hash, salt at most 16 characters, hash 43 (SHA-256) or 86 (SHA-512). */
static bool is_shacrypt(const char *h, size_t len)
{
    if (len < 4 || h[0] != '$' || (h[1] != '5' && h[1] != '6') || h[2] != '$')
        return false;
    size_t want = h[1] == '5' ? 43 : 86;
    const char *p = h + 3, *end = h + len;
    if ((size_t)(end - p) > 7 && memcmp(p, "rounds=", 7) == 0) {
        p += 7;
        const char *digits = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == digits || p - digits > 9 || p == end || *p != '$')
            return false;
        p++;
    }
    const char *salt = p;
    while (p < end && *p != '$')
        p++;
    if (p == end || p - salt > 16 || !salt_ok(salt, (size_t)(p - salt)))
        return false;
    p++;
    return (size_t)(end - p) == want && all_crypt64(p, want);
}

/* $argon2id$v=19$m=..,t=..,p=..$salt$hash in unpadded base64; libargon2 parses the rest. */
static bool is_argon2id(const char *h, size_t len)
{
    static const char prefix[] = "$argon2id$";
    if (len <= sizeof(prefix) - 1 || memcmp(h, prefix, sizeof(prefix) - 1) != 0)
        return false;
    for (size_t i = sizeof(prefix) - 1; i < len; i++) {
        char c = h[i];
        if (!(is_crypt64(c) || c == '+' || c == '$' || c == '=' || c == ','))
            return false;
    }
    return true;
}

zn_auth_hash_kind_t zn_auth_hash_kind(const char *hash, size_t len)
{
    if (len > ZN_AUTH_HASH_MAX)
        return ZN_AUTH_HASH_UNKNOWN;
    if (is_bcrypt(hash, len))
        return ZN_AUTH_HASH_BCRYPT;
    if (is_shacrypt(hash, len))
        return ZN_AUTH_HASH_SHACRYPT;
    if (is_argon2id(hash, len))
        return ZN_AUTH_HASH_ARGON2ID;
    return ZN_AUTH_HASH_UNKNOWN;
}

static bool crypt_verify(const char *hash, const char *pass)
{
    bool ok = false;
    struct crypt_data *data = zn_calloc(1, sizeof(*data));
    const char *out = crypt_rn(pass, hash, data, (int)sizeof(*data));
    if (out != NULL) {
        size_t n = strlen(out);
        ok = n == strlen(hash) && CRYPTO_memcmp(out, hash, n) == 0;
    }
    OPENSSL_cleanse(data, sizeof(*data));
    free(data);
    return ok;
}

bool zn_auth_hash_verify(const char *hash, const char *pass, size_t pass_len)
{
    /* crypt and the C string world stop at NUL: a password with one would be cut short. */
    if (memchr(pass, '\0', pass_len) != NULL)
        return false;
    switch (zn_auth_hash_kind(hash, strlen(hash))) {
    case ZN_AUTH_HASH_BCRYPT:
    case ZN_AUTH_HASH_SHACRYPT:
        return crypt_verify(hash, pass);
    case ZN_AUTH_HASH_ARGON2ID:
        return argon2id_verify(hash, pass, pass_len) == ARGON2_OK;
    case ZN_AUTH_HASH_UNKNOWN:
        break;
    }
    return false;
}

void zn_auth_hash_fingerprint(const char *hash, size_t len, uint8_t fp[ZN_AUTH_FP_LEN])
{
    SHA256((const unsigned char *)hash, len, fp);
}
