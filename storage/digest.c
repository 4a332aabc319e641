/*
 * storage/digest.c - digests: parsing the "algorithm:encoded" text and hashing with
 * OpenSSL's EVP interface, incrementally (uploads) or in one call (manifests).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "storage/storage.h"

struct zn_hash {
    zn_digest_algo_t algo;
    EVP_MD_CTX *ctx;
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
    zn_hash_t *h = zn_malloc(sizeof(*h));
    h->algo = algo;
    if ((h->ctx = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(h->ctx, evp_md(algo), NULL) != 1) {
        zn_log(ZN_LOG_FATAL, "EVP digest init failed");
        abort();
    }
    return h;
}

void zn_hash_update(zn_hash_t *h, const void *p, size_t n)
{
    if (n != 0)
        EVP_DigestUpdate(h->ctx, p, n);
}

void zn_hash_final(zn_hash_t *h, zn_digest_t *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(h->ctx, md, &mdlen);
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

void zn_hash_free(zn_hash_t *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

void zn_digest_of(zn_digest_algo_t algo, const void *p, size_t n, zn_digest_t *out)
{
    zn_hash_t *h = zn_hash_new(algo);
    zn_hash_update(h, p, n);
    zn_hash_final(h, out);
    zn_hash_free(h);
}
