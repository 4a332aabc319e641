/*
 * auth/cache.c - verified credentials, so Basic auth on every request does not cost a
 * bcrypt each time.
 *
 * The key is HMAC-SHA256 under a random per-process key of (user length, user, password):
 * the password is never kept, nor anything that could be tested offline without that key. Each entry also records the htpasswd generation and the fingerprint of the hash it
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
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"

static void die(const char *what)
{
    zn_log(ZN_LOG_FATAL, what);
    abort();
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
    if (RAND_bytes(key, sizeof(key)) != 1 || (c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
        die("auth: cannot set up the credential cache key");
    /* RFC 2104 with a 32-byte key: the key, zero-padded to the block, xor ipad / opad */
    for (size_t i = 0; i < sizeof(c->ipad); i++) {
        uint8_t k = i < sizeof(key) ? key[i] : 0;
        c->ipad[i] = k ^ 0x36;
        c->opad[i] = k ^ 0x5c;
    }
    OPENSSL_cleanse(key, sizeof(key));
}

void zn_auth_cache_release(zn_auth_cache_t *c)
{
    if (c->entries == NULL)
        return;
    OPENSSL_cleanse(c->entries, c->nsets * ZN_AUTH_CACHE_WAYS * sizeof(*c->entries));
    OPENSSL_cleanse(c->ipad, sizeof(c->ipad));
    OPENSSL_cleanse(c->opad, sizeof(c->opad));
    EVP_MD_free(c->sha256);
    free(c->entries);
    c->entries = NULL;
    zn_mutex_destroy(&c->lock);
}

/* One digest context per thread, reused: allocating one per MAC costs as much as hashing. */
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void free_md(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void make_md_key(void)
{
    if (pthread_key_create(&md_key, free_md) != 0)
        die("auth: pthread_key_create failed");
}

static EVP_MD_CTX *thread_md(void)
{
    pthread_once(&md_once, make_md_key);
    EVP_MD_CTX *ctx = pthread_getspecific(md_key);
    if (ctx == NULL) {
        if ((ctx = EVP_MD_CTX_new()) == NULL || pthread_setspecific(md_key, ctx) != 0)
            die("auth: cannot allocate a digest context");
    }
    return ctx;
}

/* HMAC-SHA256 by its definition over a pre-fetched digest: OpenSSL 3's EVP_MAC costs a
 * context duplication per call, several times the hashing itself, and this runs on every
 * authenticated request. */
void zn_auth_cache_mac(const zn_auth_cache_t *c, const char *user, size_t ulen, const char *pass, size_t plen,
                       uint8_t mac[32])
{
    /* The user's length goes first so ("ab","c") and ("a","bc") never collide. */
    uint8_t n[8], inner[32];
    for (int i = 0; i < 8; i++)
        n[i] = (uint8_t)((uint64_t)ulen >> (56 - 8 * i));
    EVP_MD_CTX *ctx = thread_md();
    unsigned len = 0;

    if (EVP_DigestInit_ex2(ctx, c->sha256, NULL) != 1 || EVP_DigestUpdate(ctx, c->ipad, sizeof(c->ipad)) != 1 ||
        EVP_DigestUpdate(ctx, n, sizeof(n)) != 1 || EVP_DigestUpdate(ctx, user, ulen) != 1 ||
        EVP_DigestUpdate(ctx, pass, plen) != 1 || EVP_DigestFinal_ex(ctx, inner, &len) != 1 ||
        EVP_DigestInit_ex2(ctx, c->sha256, NULL) != 1 || EVP_DigestUpdate(ctx, c->opad, sizeof(c->opad)) != 1 ||
        EVP_DigestUpdate(ctx, inner, sizeof(inner)) != 1 || EVP_DigestFinal_ex(ctx, mac, &len) != 1 || len != 32)
        die("auth: HMAC-SHA256 failed");
    OPENSSL_cleanse(inner, sizeof(inner));
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
