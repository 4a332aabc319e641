/* Unit tests for common/htab.c: insert, find, delete, growth and iteration, checked against a
 * plain array model, with hashes chosen to collide (runs that wrap around the end). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/zn.h"

/* Values are key + 1 (0 is a value too, but keeps the model simple to read). */
static bool key_eq(void *ctx, uintptr_t val)
{
    return val == *(uintptr_t *)ctx + 1;
}

static bool find(const zn_htab_t *h, uint64_t hash, uintptr_t key, uintptr_t *val)
{
    return zn_htab_find(h, hash, key_eq, &key, val);
}

static void test_basic(void **state)
{
    zn_htab_t h;
    uintptr_t v = 99, k = 5;
    zn_htab_init(&h);
    assert_false(find(&h, 1, 5, &v)); /* empty, nothing allocated */
    assert_int_equal(v, 99);
    assert_false(zn_htab_delete(&h, 1, key_eq, &k, NULL));
    zn_htab_insert(&h, 1, 6);
    zn_htab_insert(&h, 0, 8); /* hash 0 is a valid hash */
    assert_true(find(&h, 1, 5, &v));
    assert_int_equal(v, 6);
    assert_true(find(&h, 0, 7, &v));
    assert_int_equal(v, 8);
    assert_false(find(&h, 1, 9, NULL)); /* same hash, not equal */
    assert_int_equal(h.n, 2);
    assert_true(zn_htab_delete(&h, 1, key_eq, &k, &v));
    assert_int_equal(v, 6);
    assert_false(find(&h, 1, 5, NULL));
    assert_true(find(&h, 0, 7, NULL));
    assert_int_equal(h.n, 1);
    zn_htab_release(&h);
    assert_null(h.slots);
    assert_int_equal(h.n, 0);
}

#define KEYS 5000

/* hash_of: few distinct hashes, so runs are long and cross the end of the array */
static uint64_t hash_of(uintptr_t key, int spread)
{
    return spread ? zn_hash(&key, sizeof(key), 1) : (uint64_t)(key % 13) * 0x9e3779b97f4a7c15ull + (key % 2 ? 0 : ~0ull - 3);
}

static void check_model(const zn_htab_t *h, const bool *in, int spread)
{
    size_t n = 0;
    for (uintptr_t k = 0; k < KEYS; k++) {
        uintptr_t v = 0;
        bool found = find(h, hash_of(k, spread), k, &v);
        if (found != in[k])
            fail_msg("key %lu: found %d, want %d", (unsigned long)k, found, in[k]);
        if (found && v != k + 1)
            fail_msg("key %lu: value %lu", (unsigned long)k, (unsigned long)v);
        n += in[k];
    }
    assert_int_equal(h->n, n);
    /* iteration sees every entry exactly once */
    bool *seen = calloc(KEYS, sizeof(*seen));
    size_t pos = 0, count = 0;
    uintptr_t v;
    while (zn_htab_next(h, &pos, &v)) {
        assert_true(v >= 1 && v <= KEYS);
        assert_true(in[v - 1]);
        assert_false(seen[v - 1]);
        seen[v - 1] = true;
        count++;
    }
    assert_int_equal(count, n);
    assert_false(zn_htab_next(h, &pos, &v)); /* stays at the end */
    free(seen);
}

static void churn(int spread)
{
    zn_htab_t h;
    bool *in = calloc(KEYS, sizeof(*in));
    unsigned seed = 12345;
    zn_htab_init(&h);
    /* grow from empty through several doublings */
    for (uintptr_t k = 0; k < KEYS; k += 2) {
        zn_htab_insert(&h, hash_of(k, spread), k + 1);
        in[k] = true;
    }
    assert_true(h.cap >= 2 * h.n);
    check_model(&h, in, spread);
    /* random deletes and inserts: the back-shift must keep every other key reachable */
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < KEYS; i++) {
            uintptr_t k = (uintptr_t)(rand_r(&seed) % KEYS);
            if (in[k]) {
                uintptr_t v = 0;
                assert_true(zn_htab_delete(&h, hash_of(k, spread), key_eq, &k, &v));
                assert_int_equal(v, k + 1);
                in[k] = false;
            } else {
                zn_htab_insert(&h, hash_of(k, spread), k + 1);
                in[k] = true;
            }
        }
        check_model(&h, in, spread);
    }
    /* delete all: back to empty but still usable */
    for (uintptr_t k = 0; k < KEYS; k++)
        if (in[k]) {
            assert_true(zn_htab_delete(&h, hash_of(k, spread), key_eq, &k, NULL));
            in[k] = false;
        }
    check_model(&h, in, spread);
    zn_htab_insert(&h, hash_of(3, spread), 4);
    assert_true(find(&h, hash_of(3, spread), 3, NULL));
    zn_htab_release(&h);
    free(in);
}

static void test_churn_collisions(void **state)
{
    churn(0);
}

static void test_churn_spread(void **state)
{
    churn(1);
}

static void test_hash(void **state)
{
    /* the seed matters, and so does every byte */
    assert_int_not_equal(zn_hash("abc", 3, 0), zn_hash("abc", 3, 1));
    assert_int_not_equal(zn_hash("abc", 3, 0), zn_hash("abd", 3, 0));
    assert_int_equal(zn_hash("abc", 3, 7), zn_hash("abc", 3, 7));
    /* the low bits (the slot index) differ for keys that differ in one high byte */
    assert_int_not_equal(zn_hash("a/0", 3, 0) & 0xff, zn_hash("b/0", 3, 0) & 0xff);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_churn_collisions),
        cmocka_unit_test(test_churn_spread),
        cmocka_unit_test(test_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
