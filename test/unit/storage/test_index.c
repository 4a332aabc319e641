/*
 * Unit tests for storage/index.c: an index.json update is a compare-and-swap. A writer that
 * takes no lock (another process, zot) replacing index.json between our read and our write
 * makes the write conflict; the edit is redone on the new content, so neither change is lost.
 */
#include "storage/internal.h"
#include "test/unit/storage/st_helpers.h"

struct edit {
    zn_storage_t *st;
    int calls, interfere; /* interfere: how many of the first calls get a foreign write */
};

/* Adds {"digest":"sha256:<calls>"} to the index; on the first `interfere` calls, a foreign
 * writer replaces index.json meanwhile with one that has an extra "foreign-<n>" tag. */
static zn_err_t add_entry(void *data, json_t *idx, bool *changed)
{
    struct edit *e = data;
    e->calls++;
    if (e->calls <= e->interfere) {
        char text[256];
        json_t *copy = json_deep_copy(idx);
        snprintf(text, sizeof(text), "foreign-%d", e->calls);
        json_array_append_new(json_object_get(copy, "manifests"),
                              json_pack("{s:s,s:s,s:i,s:{s:s}}", "mediaType", "x", "digest", "sha256:f", "size", 1,
                                        "annotations", ST_REF_NAME, text));
        char *dump = json_dumps(copy, JSON_COMPACT);
        json_decref(copy);
        /* a plain replace, no version check: what zot does */
        assert_int_equal(st_ops(e->st)->put(e->st->drv, "r/index.json", dump, strlen(dump), false), ZN_OK);
        free(dump);
    }
    json_array_append_new(json_object_get(idx, "manifests"),
                          json_pack("{s:s,s:s,s:i}", "mediaType", "x", "digest", "sha256:ours", "size", 1));
    *changed = true;
    return ZN_OK;
}

static size_t count_tag(json_t *idx, const char *tag)
{
    json_t *d;
    size_t i, n = 0;
    json_array_foreach(json_object_get(idx, "manifests"), i, d)
    {
        const char *t = st_desc_tag(d);
        n += t != NULL && strcmp(t, tag) == 0;
    }
    return n;
}

static void test_conflict_redone(void **state)
{
    t_store_t *t = *state;
    st_repo_t *r;
    json_t *idx;
    struct edit e = {t->st, 0, 2};

    assert_int_equal(st_repo_create(t->st, "r", &r), ZN_OK);
    assert_int_equal(st_index_edit(t->st, r, add_entry, &e), ZN_OK);
    assert_int_equal(e.calls, 3); /* two conflicts, then the write */
    assert_int_equal(st_index_get(t->st, r, &idx), ZN_OK);
    /* both foreign writes and ours survive, ours once */
    assert_int_equal(count_tag(idx, "foreign-1"), 1);
    assert_int_equal(count_tag(idx, "foreign-2"), 1);
    assert_int_equal(json_array_size(json_object_get(idx, "manifests")), 3);
    json_decref(idx);
}

/* More conflicts in a row than a burst of immediate retries would survive (the old bound
 * was 16): the backoff outlasts them and the edit lands, foreign writes kept. */
static void test_long_contention_outlasted(void **state)
{
    t_store_t *t = *state;
    st_repo_t *r;
    json_t *idx;
    struct edit e = {t->st, 0, 20};

    assert_int_equal(st_repo_create(t->st, "r", &r), ZN_OK);
    assert_int_equal(st_index_edit(t->st, r, add_entry, &e), ZN_OK);
    assert_int_equal(e.calls, 21);
    assert_int_equal(st_index_get(t->st, r, &idx), ZN_OK);
    assert_int_equal(json_array_size(json_object_get(idx, "manifests")), 21);
    json_decref(idx);
}

static void test_gives_up(void **state)
{
    t_store_t *t = *state;
    st_repo_t *r;
    json_t *idx;
    struct edit e = {t->st, 0, 1000};

    t->st->cas_budget_ns = 300 * 1000000ull;
    assert_int_equal(st_repo_create(t->st, "r", &r), ZN_OK);
    uint64_t t0 = zn_now_mono_ns();
    assert_int_equal(st_index_edit(t->st, r, add_entry, &e), ZN_EAGAIN); /* 503 + Retry-After */
    uint64_t took = zn_now_mono_ns() - t0;
    assert_true(e.calls > 1 && e.calls < 1000); /* bounded */
    /* it waited between rounds: at least the shortest backoff of every conflict retried */
    uint64_t least = 0;
    for (int k = 0; k < e.calls - 1; k++)
        least += st_cas_backoff_ns((unsigned)k, 0);
    assert_true(took >= least);
    assert_true(least > 0);
    assert_int_equal(st_index_get(t->st, r, &idx), ZN_OK);
    json_t *d;
    size_t i;
    json_array_foreach(json_object_get(idx, "manifests"), i, d)
    {
        assert_string_not_equal(st_desc_digest(d), "sha256:ours"); /* never written */
    }
    json_decref(idx);
}

/* The backoff: uniform in [d/2, 3d/2], d doubling from 1 ms up to a 100 ms cap, for any
 * random input (including the extremes) and any conflict count. */
static void test_backoff_bounds(void **state)
{
    (void)state;
    const uint64_t ms = 1000000ull;
    uint64_t rnds[] = {0, 1, 12345, 0x8000000000000000ull, UINT64_MAX};
    for (unsigned k = 0; k < 200; k++) {
        uint64_t d = k >= 7 ? 100 * ms : ms << k;
        if (d > 100 * ms)
            d = 100 * ms;
        for (size_t i = 0; i < sizeof(rnds) / sizeof(rnds[0]); i++) {
            uint64_t w = st_cas_backoff_ns(k, rnds[i]);
            assert_true(w >= d / 2 && w <= d / 2 + d);
        }
        assert_int_equal(st_cas_backoff_ns(k, 0), d / 2);
        assert_int_equal(st_cas_backoff_ns(k, d), d / 2 + d);
    }
    assert_int_equal(st_cas_backoff_ns(0, 0), ms / 2);
    assert_int_equal(st_cas_backoff_ns(3, 0), 4 * ms);
    assert_int_equal(st_cas_backoff_ns(40, 0), 50 * ms);
}

/* The cache follows a foreign rewrite: a reader sees the new content, not the cached one. */
static void test_cache_follows_foreign_write(void **state)
{
    t_store_t *t = *state;
    st_repo_t *r;
    json_t *idx;
    static const char foreign[] = "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"sha256:z\","
                                  "\"size\":1,\"annotations\":{\"" ST_REF_NAME "\":\"z\"}}]}";

    assert_int_equal(st_repo_create(t->st, "r", &r), ZN_OK);
    assert_int_equal(st_index_get(t->st, r, &idx), ZN_OK);
    assert_int_equal(json_array_size(json_object_get(idx, "manifests")), 0);
    json_decref(idx);
    assert_int_equal(st_ops(t->st)->put(t->st->drv, "r/index.json", foreign, sizeof(foreign) - 1, false), ZN_OK);
    assert_int_equal(st_index_get(t->st, r, &idx), ZN_OK);
    assert_int_equal(count_tag(idx, "z"), 1);
    json_decref(idx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conflict_redone, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_long_contention_outlasted, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_gives_up, t_setup, t_teardown),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test_setup_teardown(test_cache_follows_foreign_write, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
