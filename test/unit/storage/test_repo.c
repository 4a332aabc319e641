/* Unit tests for storage/repo.c: repository creation where a name's components are the
 * layout's own entries (blobs, index.json, oci-layout), in both orders, and the catalog of
 * such names. */
#include <pthread.h>

#include "test/unit/storage/st_helpers.h"

static zn_err_t create(t_store_t *t, const char *repo)
{
    char uuid[ZN_UUID_LEN + 1];
    return zn_storage_upload_start(t->st, repo, uuid, NULL);
}

/* Pushes a config, a layer and a manifest tagged v1 into repo. */
static void push_image(t_store_t *t, const char *repo)
{
    zn_digest_t c = t_push_blob(t->st, repo, "cfg", 3), l = t_push_blob(t->st, repo, "layer", 5);
    char *m = t_manifest(&c, 3, &l, 5, NULL, NULL), detail[256];
    zn_storage_put_t res;
    assert_int_equal(zn_storage_manifest_put(t->st, repo, "v1", NULL, NULL, m, strlen(m), &res, detail, sizeof(detail)), ZN_OK);
    free(m);
}

static void assert_image(t_store_t *t, const char *repo)
{
    zn_storage_manifest_t m;
    zn_storage_list_t l;
    assert_int_equal(zn_storage_manifest_get(t->st, repo, "v1", true, &m), ZN_OK);
    zn_storage_manifest_release(&m);
    assert_int_equal(zn_storage_tags_list(t->st, repo, NULL, SIZE_MAX, &l), ZN_OK);
    assert_int_equal(l.count, 1);
    zn_storage_list_release(&l);
}

static void test_nested_in_a_repository_refused(void **state)
{
    t_store_t *t = *state;
    static const char *const bad[] = {"x/blobs", "x/blobs/sha256", "x/blobs/sha512/y", "x/index.json", "x/oci-layout",
                                      "x/blobs/z", "x/index.json/a"};
    push_image(t, "x");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (create(t, bad[i]) != ZN_EEXIST)
            fail_msg("%s: not refused", bad[i]);
        assert_int_equal(zn_storage_repo_exists(t->st, bad[i]), ZN_ENOENT);
    }
    zn_digest_t d;
    zn_digest_of(ZN_DIGEST_SHA256, "layer", 5, &d);
    assert_int_equal(zn_storage_blob_mount(t->st, "x/blobs", "x", &d), ZN_EEXIST);
    char *m = t_manifest(&d, 5, &d, 5, NULL, NULL), detail[256];
    zn_storage_put_t res;
    /* the blobs it names are "there" only through x's own store: still refused */
    zn_err_t err = zn_storage_manifest_put(t->st, "x/blobs", "v1", NULL, NULL, m, strlen(m), &res, detail, sizeof(detail));
    assert_true(err == ZN_EEXIST || err == ZN_ENOENT);
    free(m);
    assert_false(t_exists(t, "x/blobs/oci-layout"));
    assert_false(t_exists(t, "x/blobs/index.json"));
    assert_false(t_exists(t, "x/blobs/sha256/oci-layout"));
    assert_image(t, "x");
    /* deeper down, or under a component that is not a layout entry, is a namespace */
    assert_int_equal(create(t, "x/y/blobs"), ZN_OK);
    assert_int_equal(create(t, "x/blobsy"), ZN_OK);
    assert_int_equal(create(t, "x/manifests"), ZN_OK);
    assert_image(t, "x");
}

static void test_parent_of_a_repository_refused(void **state)
{
    t_store_t *t = *state;
    static const char *const nested[] = {"p/blobs", "q/blobs/sha256", "r/index.json", "s/oci-layout", "u/blobs/sha512/v",
                                         "w/blobs/sha256/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"};
    static const char *const parent[] = {"p", "q", "r", "s", "u", "w"};
    for (size_t i = 0; i < sizeof(nested) / sizeof(nested[0]); i++)
        push_image(t, nested[i]);
    for (size_t i = 0; i < sizeof(parent) / sizeof(parent[0]); i++) {
        if (create(t, parent[i]) != ZN_EEXIST)
            fail_msg("%s above %s: not refused", parent[i], nested[i]);
        assert_int_equal(zn_storage_repo_exists(t->st, parent[i]), ZN_ENOENT);
        assert_image(t, nested[i]);
    }
    assert_false(t_exists(t, "p/oci-layout"));
    assert_false(t_exists(t, "p/blobs/sha256"));
}

/* A creation cut short (directories made, no oci-layout yet) is finished, not refused. */
static void test_interrupted_creation_completes(void **state)
{
    t_store_t *t = *state;
    char path[512];
    snprintf(path, sizeof(path), "%s/k", t->root);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/k/blobs", t->root);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/k/blobs/sha256", t->root);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(create(t, "k"), ZN_OK);
    push_image(t, "k");
    assert_image(t, "k");
}

static void test_catalog_of_tricky_names(void **state)
{
    t_store_t *t = *state;
    static const char *const repos[] = {"blobs", "blobs/uploads", "team/manifests/app", "t/tags/list", "a/referrers",
                                        "n/blobs", "n/blobs/uploads/blobs/uploads", "y", "y/sub"};
    zn_storage_list_t l;
    for (size_t i = 0; i < sizeof(repos) / sizeof(repos[0]); i++)
        push_image(t, repos[i]);
    assert_int_equal(zn_storage_catalog(t->st, NULL, SIZE_MAX, NULL, NULL, &l), ZN_OK);
    assert_int_equal(l.count, 9);
    static const char *const want[] = {"a/referrers",   "blobs", "blobs/uploads", "n/blobs", "n/blobs/uploads/blobs/uploads",
                                       "t/tags/list",   "team/manifests/app", "y", "y/sub"};
    for (size_t i = 0; i < l.count; i++)
        assert_string_equal(l.names[i], want[i]);
    zn_storage_list_release(&l);
    for (size_t i = 0; i < sizeof(repos) / sizeof(repos[0]); i++)
        assert_image(t, repos[i]);
}

struct racer {
    t_store_t *t;
    char name[64];
    pthread_barrier_t *go;
    zn_err_t err;
};

static void *race(void *p)
{
    struct racer *r = p;
    pthread_barrier_wait(r->go);
    r->err = create(r->t, r->name);
    return NULL;
}

/* Creators of x and x/blobs started together: exactly one wins, whatever the interleaving. */
static void test_concurrent_creators(void **state)
{
    t_store_t *t = *state;
    pthread_barrier_t go;
    for (int i = 0; i < 100; i++) {
        struct racer r[2] = {{t, "", &go, ZN_EIO}, {t, "", &go, ZN_EIO}};
        pthread_t th[2];
        snprintf(r[0].name, sizeof(r[0].name), "c%d", i);
        snprintf(r[1].name, sizeof(r[1].name), "c%d/blobs", i);
        pthread_barrier_init(&go, NULL, 2);
        for (int k = 0; k < 2; k++)
            assert_int_equal(pthread_create(&th[k], NULL, race, &r[k]), 0);
        for (int k = 0; k < 2; k++)
            pthread_join(th[k], NULL);
        pthread_barrier_destroy(&go);
        int won = (r[0].err == ZN_OK) + (r[1].err == ZN_OK);
        if (won != 1 || (r[0].err != ZN_OK && r[0].err != ZN_EEXIST) || (r[1].err != ZN_OK && r[1].err != ZN_EEXIST))
            fail_msg("round %d: %s -> %d, %s -> %d", i, r[0].name, r[0].err, r[1].name, r[1].err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nested_in_a_repository_refused, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_parent_of_a_repository_refused, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_creation_completes, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_catalog_of_tricky_names, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_creators, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
