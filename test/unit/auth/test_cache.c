/* Unit tests for auth/cache.c: keyed MACs, hits, staleness, TTL, the size bound, threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>

#include "auth_test.h"

static const uint8_t FP1[ZN_AUTH_FP_LEN] = {1}, FP2[ZN_AUTH_FP_LEN] = {2};
#define SEC 1000000000ull

static void test_mac(void **state)
{
    zn_auth_cache_t c1, c2;
    uint8_t a[32], b[32], x[32];
    zn_auth_cache_init(&c1, 16, SEC);
    zn_auth_cache_init(&c2, 16, SEC);
    zn_auth_cache_mac(&c1, "alice", 5, "pw", 2, a);
    zn_auth_cache_mac(&c1, "alice", 5, "pw", 2, b);
    assert_memory_equal(a, b, 32);
    /* the user/password boundary is part of the key */
    zn_auth_cache_mac(&c1, "alic", 4, "epw", 3, x);
    assert_memory_not_equal(a, x, 32);
    zn_auth_cache_mac(&c1, "alice", 5, "pW", 2, x);
    assert_memory_not_equal(a, x, 32);
    /* a random key per cache (per process): not a plain hash anyone can precompute */
    zn_auth_cache_mac(&c2, "alice", 5, "pw", 2, x);
    assert_memory_not_equal(a, x, 32);
    zn_auth_cache_release(&c1);
    zn_auth_cache_release(&c2);
}

static void test_hit_and_staleness(void **state)
{
    zn_auth_cache_t c;
    uint8_t m[32], other[32];
    uint64_t now = 1000 * SEC;
    zn_auth_cache_init(&c, 1024, 60 * SEC);
    zn_auth_cache_mac(&c, "alice", 5, "pw", 2, m);
    zn_auth_cache_mac(&c, "alice", 5, "wrong", 5, other);
    assert_false(zn_auth_cache_lookup(&c, m, FP1, 0, now));
    zn_auth_cache_insert(&c, m, FP1, 0, now);
    assert_true(zn_auth_cache_lookup(&c, m, FP1, 0, now + SEC));
    assert_false(zn_auth_cache_lookup(&c, other, FP1, 0, now));
    /* the user's hash changed: the entry is dropped, not just skipped */
    assert_false(zn_auth_cache_lookup(&c, m, FP2, 0, now));
    assert_int_equal(zn_auth_cache_count(&c), 0);
    assert_false(zn_auth_cache_lookup(&c, m, FP1, 0, now));
    /* the file was reloaded (generation 1): an entry verified against generation 0 is dead */
    zn_auth_cache_insert(&c, m, FP1, 0, now);
    assert_false(zn_auth_cache_lookup(&c, m, FP1, 1, now));
    assert_int_equal(zn_auth_cache_count(&c), 0);
    /* TTL */
    zn_auth_cache_insert(&c, m, FP1, 1, now);
    assert_true(zn_auth_cache_lookup(&c, m, FP1, 1, now + 59 * SEC));
    assert_false(zn_auth_cache_lookup(&c, m, FP1, 1, now + 61 * SEC));
    /* clear */
    zn_auth_cache_insert(&c, m, FP1, 1, now);
    zn_auth_cache_clear(&c);
    assert_false(zn_auth_cache_lookup(&c, m, FP1, 1, now));
    /* re-inserting the same credential reuses its slot */
    zn_auth_cache_insert(&c, m, FP1, 1, now);
    zn_auth_cache_insert(&c, m, FP2, 1, now);
    assert_int_equal(zn_auth_cache_count(&c), 1);
    assert_true(zn_auth_cache_lookup(&c, m, FP2, 1, now));
    zn_auth_cache_release(&c);
}

static void test_bound_and_lru(void **state)
{
    zn_auth_cache_t c;
    uint8_t m[32];
    char user[32];
    uint64_t now = 1000 * SEC;
    zn_auth_cache_init(&c, 64, 600 * SEC);
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(user, sizeof(user), "user%d", i);
        zn_auth_cache_mac(&c, user, (size_t)n, "pw", 2, m);
        zn_auth_cache_insert(&c, m, FP1, 0, now);
    }
    assert_int_equal(zn_auth_cache_count(&c), 64);
    zn_auth_cache_release(&c);

    /* One set (4 ways): the least recently used goes first. */
    zn_auth_cache_init(&c, ZN_AUTH_CACHE_WAYS, 600 * SEC);
    uint8_t k[ZN_AUTH_CACHE_WAYS + 1][32];
    for (int i = 0; i <= ZN_AUTH_CACHE_WAYS; i++)
        zn_auth_cache_mac(&c, "u", 1, (const char[]){(char)('a' + i)}, 1, k[i]);
    for (int i = 0; i < ZN_AUTH_CACHE_WAYS; i++)
        zn_auth_cache_insert(&c, k[i], FP1, 0, now);
    assert_true(zn_auth_cache_lookup(&c, k[0], FP1, 0, now)); /* k[1] is now the oldest */
    zn_auth_cache_insert(&c, k[ZN_AUTH_CACHE_WAYS], FP1, 0, now);
    assert_false(zn_auth_cache_lookup(&c, k[1], FP1, 0, now));
    assert_true(zn_auth_cache_lookup(&c, k[0], FP1, 0, now));
    assert_true(zn_auth_cache_lookup(&c, k[ZN_AUTH_CACHE_WAYS], FP1, 0, now));
    /* an expired way is reused before a live one, however recent */
    zn_auth_cache_release(&c);
    zn_auth_cache_init(&c, ZN_AUTH_CACHE_WAYS, 10 * SEC);
    zn_auth_cache_insert(&c, k[0], FP1, 0, now - 20 * SEC);
    for (int i = 1; i < ZN_AUTH_CACHE_WAYS; i++)
        zn_auth_cache_insert(&c, k[i], FP1, 0, now);
    zn_auth_cache_insert(&c, k[ZN_AUTH_CACHE_WAYS], FP1, 0, now);
    for (int i = 1; i <= ZN_AUTH_CACHE_WAYS; i++)
        assert_true(zn_auth_cache_lookup(&c, k[i], FP1, 0, now));
    zn_auth_cache_release(&c);
}

typedef struct {
    zn_auth_cache_t *c;
    int id;
    int hits;
} worker_t;

static void *hammer(void *arg)
{
    worker_t *w = arg;
    uint8_t m[32];
    char user[32];
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(user, sizeof(user), "u%d", (i + w->id) % ZN_AUTH_CACHE_WAYS);
        zn_auth_cache_mac(w->c, user, (size_t)n, "pw", 2, m);
        if (zn_auth_cache_lookup(w->c, m, FP1, 0, 1000 * SEC))
            w->hits++;
        else
            zn_auth_cache_insert(w->c, m, FP1, 0, 1000 * SEC);
    }
    return NULL;
}

static void test_threads(void **state)
{
    zn_auth_cache_t c;
    pthread_t t[4];
    worker_t w[4];
    zn_auth_cache_init(&c, 1024, 600 * SEC);
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_t){&c, i * 7, 0};
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        /* As many users as a set has ways fit even if the random key puts them all in one
         * set, so nothing is ever evicted: once a user is in, every later lookup hits, and a
         * thread misses each user at most once, however the threads interleave. */
        assert_true(w[i].hits >= 20000 - ZN_AUTH_CACHE_WAYS);
    }
    assert_int_equal(zn_auth_cache_count(&c), ZN_AUTH_CACHE_WAYS);
    zn_auth_cache_release(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mac),
        cmocka_unit_test(test_hit_and_staleness),
        cmocka_unit_test(test_bound_and_lru),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
