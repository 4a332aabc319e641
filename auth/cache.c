/*
 * auth/cache.c - verified credentials, so Basic auth on every request does not cost a
 * bcrypt each time.
 *
 * The key is HMAC-SHA256 under a random per-process key of (user length, user, password):
 * neither the password nor anything an attacker could test offline without that key is
 * kept. Each entry also records the htpasswd generation and the fingerprint of the hash it
 * was verified against, so a reloaded file or a changed password makes it worthless even
 * if a verification that raced with the reload inserted it late.
 *
 * Shape: a fixed set-associative table (ZN_AUTH_CACHE_WAYS ways per set, set chosen by the
 * MAC), so size is bounded without allocation and eviction is O(ways): an expired or
 * dead way first, else the least recently used. One mutex guards it; every hold is a
 * handful of 32-byte compares. Only successes are ever inserted.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"

static void die(const char *what)
{
    zn_log(ZN_LOG_FATAL, what);
    abort();
}

/* An HMAC-SHA256 context keyed once; each MAC works on a copy, so threads share it read-only. */
static EVP_MAC_CTX *new_hmac(const uint8_t *key, size_t len)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0), OSSL_PARAM_END};

    if (ctx == NULL || EVP_MAC_init(ctx, key, len, params) != 1)
        die("auth: cannot set up HMAC-SHA256");
    EVP_MAC_free(mac);
    return ctx;
}

void zn_auth_cache_init(zn_auth_cache_t *c, size_t capacity, uint64_t ttl_ns)
{
    uint8_t key[32];

    memset(c, 0, sizeof(*c));
    zn_mutex_init(&c->lock, "auth.cache");
    c->nsets = (capacity + ZN_AUTH_CACHE_WAYS - 1) / ZN_AUTH_CACHE_WAYS;
    if (c->nsets == 0)
        c->nsets = 1;
    c->entries = zn_calloc(c->nsets * ZN_AUTH_CACHE_WAYS, sizeof(*c->entries));
    c->ttl_ns = ttl_ns;
    /* Without a secret key the cache would be a table of unsalted hashes: refuse to run. */
    if (RAND_bytes(key, sizeof(key)) != 1)
        die("auth: no randomness for the credential cache key");
    c->hmac = new_hmac(key, sizeof(key));
    OPENSSL_cleanse(key, sizeof(key));
}

void zn_auth_cache_release(zn_auth_cache_t *c)
{
    if (c->entries == NULL)
        return;
    OPENSSL_cleanse(c->entries, c->nsets * ZN_AUTH_CACHE_WAYS * sizeof(*c->entries));
    EVP_MAC_CTX_free(c->hmac);
    free(c->entries);
    c->entries = NULL;
    zn_mutex_destroy(&c->lock);
}

void zn_auth_cache_mac(const zn_auth_cache_t *c, const char *user, size_t ulen, const char *pass, size_t plen,
                       uint8_t mac[32])
{
    /* The user's length goes first so ("ab","c") and ("a","bc") never collide. */
    uint8_t n[8];
    for (int i = 0; i < 8; i++)
        n[i] = (uint8_t)((uint64_t)ulen >> (56 - 8 * i));
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(c->hmac);
    size_t out = 0;

    if (ctx == NULL || EVP_MAC_update(ctx, n, sizeof(n)) != 1 || EVP_MAC_update(ctx, (const uint8_t *)user, ulen) != 1 ||
        EVP_MAC_update(ctx, (const uint8_t *)pass, plen) != 1 || EVP_MAC_final(ctx, mac, &out, 32) != 1 || out != 32)
        die("auth: HMAC-SHA256 failed");
    EVP_MAC_CTX_free(ctx);
}

static zn_auth_cache_entry_t *set_of(zn_auth_cache_t *c, const uint8_t mac[32])
{
    uint64_t h;
    memcpy(&h, mac, sizeof(h));
    return &c->entries[(h % c->nsets) * ZN_AUTH_CACHE_WAYS];
}

bool zn_auth_cache_lookup(zn_auth_cache_t *c, const uint8_t mac[32], const uint8_t fp[ZN_AUTH_FP_LEN], uint64_t gen,
                          uint64_t now_ns)
{
    bool hit = false;

    zn_mutex_lock(&c->lock);
    zn_auth_cache_entry_t *set = set_of(c, mac);
    for (int i = 0; i < ZN_AUTH_CACHE_WAYS; i++) {
        zn_auth_cache_entry_t *e = &set[i];
        if (!e->live || CRYPTO_memcmp(e->mac, mac, 32) != 0)
            continue;
        if (e->gen == gen && CRYPTO_memcmp(e->fp, fp, ZN_AUTH_FP_LEN) == 0 && now_ns < e->expires_ns) {
            e->used = ++c->tick;
            hit = true;
        } else {
            memset(e, 0, sizeof(*e));
        }
        break;
    }
    zn_mutex_unlock(&c->lock);
    return hit;
}

/* The way to (re)use for mac: its own entry, a free or expired one, else the LRU. */
static zn_auth_cache_entry_t *pick_way(zn_auth_cache_entry_t *set, const uint8_t mac[32], uint64_t now_ns)
{
    zn_auth_cache_entry_t *victim = &set[0];
    for (int i = 0; i < ZN_AUTH_CACHE_WAYS; i++) {
        zn_auth_cache_entry_t *e = &set[i];
        if (e->live && CRYPTO_memcmp(e->mac, mac, 32) == 0)
            return e;
        if (!e->live || now_ns >= e->expires_ns)
            victim = e;
        else if (victim->live && now_ns < victim->expires_ns && e->used < victim->used)
            victim = e;
    }
    return victim;
}

void zn_auth_cache_insert(zn_auth_cache_t *c, const uint8_t mac[32], const uint8_t fp[ZN_AUTH_FP_LEN], uint64_t gen,
                          uint64_t now_ns)
{
    zn_mutex_lock(&c->lock);
    zn_auth_cache_entry_t *e = pick_way(set_of(c, mac), mac, now_ns);
    memcpy(e->mac, mac, 32);
    memcpy(e->fp, fp, ZN_AUTH_FP_LEN);
    e->gen = gen;
    e->expires_ns = now_ns + c->ttl_ns;
    e->used = ++c->tick;
    e->live = true;
    zn_mutex_unlock(&c->lock);
}

void zn_auth_cache_clear(zn_auth_cache_t *c)
{
    zn_mutex_lock(&c->lock);
    memset(c->entries, 0, c->nsets * ZN_AUTH_CACHE_WAYS * sizeof(*c->entries));
    zn_mutex_unlock(&c->lock);
}

size_t zn_auth_cache_count(zn_auth_cache_t *c)
{
    size_t n = 0;
    zn_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->nsets * ZN_AUTH_CACHE_WAYS; i++)
        n += c->entries[i].live;
    zn_mutex_unlock(&c->lock);
    return n;
}
