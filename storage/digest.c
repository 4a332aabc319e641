/*
 * storage/digest.c - digests: parsing the "algorithm:encoded" text and hashing,
 * incrementally (uploads) or in one call (manifests).
 *
 * SHA-256 uses OpenSSL's low-level SHA256_* functions rather than EVP: they run the same
 * assembly, and their context is a public struct (openssl/sha.h), so an upload's running
 * hash can be written out and resumed by another process (zn_hash_export/import: an S3
 * session past its first part cannot be read back to rebuild it, as Distribution keeps
 * its hashstates). OpenSSL 3 marks them deprecated but ships them; test_digest.c pins the
 * layout this relies on (resumed hashes must equal one-shot digests). SHA-512 stays on EVP.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "storage/storage.h"

struct zn_hash {
    zn_digest_algo_t algo;
    EVP_MD_CTX *ctx; /* SHA-512 */
    SHA256_CTX sha256;
};

static const struct {
    const char *name;
    size_t hexlen;
} algos[] = {
    [ZN_DIGEST_SHA256] = {"sha256", 64},
    [ZN_DIGEST_SHA512] = {"sha512", 128},
};

const char *zn_digest_algo_name(zn_digest_algo_t algo)
{
    return algos[algo].name;
}

const char *zn_digest_hex(const zn_digest_t *d)
{
    return d->str + strlen(algos[d->algo].name) + 1;
}

static bool is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* The spec's grammar: algorithm = component (separator component)*, component = [a-z0-9]+,
 * separator = [+._-]; encoded = [a-zA-Z0-9=_-]+. */
static bool grammar_valid(const char *p, size_t algolen, const char *enc, size_t enclen)
{
    bool need_alnum = true;
    for (size_t i = 0; i < algolen; i++) {
        char c = p[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            need_alnum = false;
        } else if (!need_alnum && (c == '+' || c == '.' || c == '_' || c == '-')) {
            need_alnum = true;
        } else {
            return false;
        }
    }
    if (need_alnum || enclen == 0)
        return false;
    for (size_t i = 0; i < enclen; i++) {
        char c = enc[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '=' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

zn_err_t zn_digest_parse(zn_slice_t s, zn_digest_t *out)
{
    const char *colon = s.n != 0 ? memchr(s.p, ':', s.n) : NULL;
    if (colon == NULL || s.n >= ZN_DIGEST_STR_MAX + 64)
        return ZN_EINVAL;
    size_t algolen = (size_t)(colon - s.p), enclen = s.n - algolen - 1;
    if (!grammar_valid(s.p, algolen, colon + 1, enclen))
        return ZN_EINVAL;
    for (size_t a = 0; a < sizeof(algos) / sizeof(algos[0]); a++) {
        if (strlen(algos[a].name) != algolen || memcmp(algos[a].name, s.p, algolen) != 0)
            continue;
        if (enclen != algos[a].hexlen)
            return ZN_EINVAL;
        for (size_t i = 0; i < enclen; i++)
            if (!is_lower_hex(colon[1 + i]))
                return ZN_EINVAL;
        out->algo = (zn_digest_algo_t)a;
        out->len = s.n;
        memcpy(out->str, s.p, s.n);
        out->str[s.n] = '\0';
        return ZN_OK;
    }
    return ZN_EUNSUPP;
}

static const EVP_MD *evp_md(zn_digest_algo_t algo)
{
    return algo == ZN_DIGEST_SHA512 ? EVP_sha512() : EVP_sha256();
}

zn_hash_t *zn_hash_new(zn_digest_algo_t algo)
{
    zn_hash_t *h = zn_calloc(1, sizeof(*h));
    h->algo = algo;
    if (algo == ZN_DIGEST_SHA256) {
        SHA256_Init(&h->sha256);
        return h;
    }
    if ((h->ctx = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(h->ctx, evp_md(algo), NULL) != 1) {
        zn_log(ZN_LOG_FATAL, "EVP digest init failed");
        abort();
    }
    return h;
}

void zn_hash_update(zn_hash_t *h, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (h->algo == ZN_DIGEST_SHA256)
        SHA256_Update(&h->sha256, p, n);
    else
        EVP_DigestUpdate(h->ctx, p, n);
}

void zn_hash_final(zn_hash_t *h, zn_digest_t *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (h->algo == ZN_DIGEST_SHA256) {
        SHA256_Final(md, &h->sha256);
        mdlen = SHA256_DIGEST_LENGTH;
    } else {
        EVP_DigestFinal_ex(h->ctx, md, &mdlen);
    }
    size_t namelen = strlen(algos[h->algo].name);
    memcpy(out->str, algos[h->algo].name, namelen);
    out->str[namelen] = ':';
    char *p = out->str + namelen + 1;
    for (unsigned i = 0; i < mdlen; i++) {
        *p++ = hex[md[i] >> 4];
        *p++ = hex[md[i] & 15];
    }
    *p = '\0';
    out->algo = h->algo;
    out->len = (size_t)(p - out->str);
}

zn_hash_t *zn_hash_copy(zn_hash_t *dst, const zn_hash_t *src)
{
    if (dst != NULL && dst->algo != src->algo) {
        zn_hash_free(dst);
        dst = NULL;
    }
    if (dst == NULL)
        dst = zn_hash_new(src->algo);
    if (src->algo == ZN_DIGEST_SHA256) {
        dst->sha256 = src->sha256;
    } else if (EVP_MD_CTX_copy_ex(dst->ctx, src->ctx) != 1) {
        zn_log(ZN_LOG_FATAL, "EVP digest copy failed");
        abort();
    }
    return dst;
}

void zn_hash_free(zn_hash_t *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

/* ---- resumable SHA-256 state ------------------------------------------------------------------
 * Text: "1:<bytes hashed>:<h0..h7, 8 hex digits each>:<the bytes of the unfinished block, hex>",
 * at most 2 + 20 + 1 + 64 + 1 + 126 characters. */

zn_err_t zn_hash_export(const zn_hash_t *h, char out[ZN_HASH_STATE_MAX], uint64_t *count)
{
    static const char hex[] = "0123456789abcdef";
    const SHA256_CTX *c = &h->sha256;
    if (h->algo != ZN_DIGEST_SHA256)
        return ZN_EUNSUPP;
    uint64_t bits = (uint64_t)c->Nh << 32 | c->Nl;
    if (bits % 8 != 0 || c->num != (bits / 8) % SHA256_CBLOCK)
        return ZN_EINVAL; /* not the layout this code knows */
    int n = snprintf(out, ZN_HASH_STATE_MAX, "1:%llu:", (unsigned long long)(bits / 8));
    if (n < 0 || (size_t)n + 64 + 1 + 2 * SHA256_CBLOCK >= ZN_HASH_STATE_MAX)
        return ZN_EINVAL;
    char *p = out + n;
    for (int i = 0; i < 8; i++) {
        p += snprintf(p, 9, "%08x", (unsigned)c->h[i]);
    }
    *p++ = ':';
    const unsigned char *pending = (const unsigned char *)c->data;
    for (unsigned i = 0; i < c->num; i++) {
        *p++ = hex[pending[i] >> 4];
        *p++ = hex[pending[i] & 15];
    }
    *p = '\0';
    *count = bits / 8;
    return ZN_OK;
}

zn_err_t zn_hash_import(const char *text, size_t len, zn_hash_t **out, uint64_t *count)
{
    uint64_t bytes;
    const char *end = text + len, *p;
    if (len < 2 || len >= ZN_HASH_STATE_MAX || memcmp(text, "1:", 2) != 0)
        return ZN_EINVAL;
    const char *c1 = memchr(text + 2, ':', len - 2);
    if (c1 == NULL || zn_parse_u64(zn_slice(text + 2, (size_t)(c1 - text - 2)), UINT64_MAX / 8, &bytes) != ZN_OK)
        return ZN_EINVAL;
    p = c1 + 1;
    size_t pending = (size_t)(bytes % SHA256_CBLOCK);
    if ((size_t)(end - p) != 64 + 1 + 2 * pending || p[64] != ':')
        return ZN_EINVAL;
    zn_hash_t *h = zn_hash_new(ZN_DIGEST_SHA256);
    SHA256_CTX *c = &h->sha256;
    for (int i = 0; i < 8; i++) {
        uint32_t w = 0;
        for (int k = 0; k < 8; k++) {
            int v = zn_hex_digit(p[i * 8 + k], false);
            if (v < 0) {
                zn_hash_free(h);
                return ZN_EINVAL;
            }
            w = w << 4 | (uint32_t)v;
        }
        c->h[i] = w;
    }
    p += 65;
    unsigned char *data = (unsigned char *)c->data;
    for (size_t i = 0; i < pending; i++) {
        int hi = zn_hex_digit(p[2 * i], false), lo = zn_hex_digit(p[2 * i + 1], false);
        if (hi < 0 || lo < 0) {
            zn_hash_free(h);
            return ZN_EINVAL;
        }
        data[i] = (unsigned char)(hi << 4 | lo);
    }
    c->Nl = (SHA_LONG)(bytes * 8);
    c->Nh = (SHA_LONG)((bytes * 8) >> 32);
    c->num = (unsigned int)pending;
    *out = h;
    *count = bytes;
    return ZN_OK;
}

void zn_digest_of(zn_digest_algo_t algo, const void *p, size_t n, zn_digest_t *out)
{
    zn_hash_t *h = zn_hash_new(algo);
    zn_hash_update(h, p, n);
    zn_hash_final(h, out);
    zn_hash_free(h);
}
