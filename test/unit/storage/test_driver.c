/*
 * The storage driver contract (storage/driver.h), written against the interface only: every
 * driver must pass it. It runs on the filesystem driver of a throw-away store; a second
 * driver adds its own setup (open a store on it) and reuses the same tests.
 *
 * Keys follow the store's layout (<repo>/index.json, <repo>/blobs/sha256/<hex>,
 * <repo>/.uploads/<uuid>) because a driver may place temp objects by it.
 */
#include <pthread.h>

#include "storage/internal.h"
#include "test/unit/storage/st_helpers.h"

#define REPO "contract"
#define INDEX_KEY REPO "/index.json"
#define UPLOAD_KEY REPO "/.uploads/0b7e1c3a-5d2f-4a6b-9c8d-1e2f3a4b5c6d"

typedef struct c_env {
    t_store_t *t;
    st_driver_t *d;
    const st_driver_ops_t *ops;
    char blob_key[PATH_MAX];
} c_env_t;

static int c_setup(void **state)
{
    c_env_t *e = calloc(1, sizeof(*e));
    zn_digest_t dg;
    e->t = t_store_open();
    e->d = e->t->st->drv;
    e->ops = e->d->ops;
    zn_digest_of(ZN_DIGEST_SHA256, "x", 1, &dg);
    assert_int_equal(st_blob_key(e->blob_key, REPO, &dg), ZN_OK);
    assert_int_equal(e->ops->mkdirs(e->d, REPO "/.uploads"), ZN_OK);
    assert_int_equal(e->ops->mkdirs(e->d, REPO "/blobs/sha256"), ZN_OK);
    *state = e;
    return 0;
}

static int c_teardown(void **state)
{
    c_env_t *e = *state;
    t_store_close(e->t);
    free(e);
    return 0;
}

static void test_object_read(void **state)
{
    c_env_t *e = *state;
    st_object_t *o;
    char buf[16];
    size_t got;
    uint64_t size;

    assert_int_equal(e->ops->put(e->d, e->blob_key, "0123456789", 10, false), ZN_OK);
    assert_int_equal(e->ops->stat(e->d, e->blob_key, &size, NULL), ZN_OK);
    assert_int_equal(size, 10);
    assert_int_equal(e->ops->open(e->d, e->blob_key, &o), ZN_OK);
    assert_int_equal(e->ops->object_size(o), 10);
    assert_int_equal(e->ops->object_read(o, 0, buf, 4, &got), ZN_OK);
    assert_int_equal(got, 4);
    assert_memory_equal(buf, "0123", 4);
    assert_int_equal(e->ops->object_read(o, 6, buf, sizeof(buf), &got), ZN_OK);
    assert_int_equal(got, 4); /* short at the end */
    assert_memory_equal(buf, "6789", 4);
    assert_int_equal(e->ops->object_read(o, 10, buf, sizeof(buf), &got), ZN_OK);
    assert_int_equal(got, 0);
    assert_int_equal(e->ops->object_read(o, 1000, buf, sizeof(buf), &got), ZN_OK);
    assert_int_equal(got, 0);
    /* the handle reads what it opened, whatever happens to the key afterwards */
    assert_int_equal(e->ops->put(e->d, e->blob_key, "abcdefghijklmnop", 16, false), ZN_OK);
    assert_int_equal(e->ops->object_read(o, 0, buf, sizeof(buf), &got), ZN_OK);
    assert_int_equal(got, 10);
    assert_memory_equal(buf, "0123456789", 10);
    assert_int_equal(e->ops->del(e->d, e->blob_key), ZN_OK);
    assert_int_equal(e->ops->object_read(o, 2, buf, 3, &got), ZN_OK);
    assert_memory_equal(buf, "234", 3);
    e->ops->object_close(o);
}

static void test_missing(void **state)
{
    c_env_t *e = *state;
    st_object_t *o = NULL;
    st_version_t v;
    char *text = NULL;
    size_t len;

    assert_int_equal(e->ops->stat(e->d, e->blob_key, NULL, NULL), ZN_ENOENT);
    assert_int_equal(e->ops->open(e->d, e->blob_key, &o), ZN_ENOENT);
    assert_null(o);
    assert_int_equal(e->ops->get(e->d, e->blob_key, 1024, &text, &len, &v), ZN_ENOENT);
    assert_null(text);
    assert_int_equal(e->ops->version(e->d, e->blob_key, &v), ZN_ENOENT);
    assert_int_equal(e->ops->del(e->d, e->blob_key), ZN_ENOENT);
    assert_int_equal(e->ops->list(e->d, REPO "/nothing", NULL, NULL), ZN_ENOENT);
}

static void test_get_limit_and_exclusive(void **state)
{
    c_env_t *e = *state;
    char *text;
    size_t len;

    assert_int_equal(e->ops->put(e->d, INDEX_KEY, "first", 5, true), ZN_OK);
    assert_int_equal(e->ops->put(e->d, INDEX_KEY, "second", 6, true), ZN_EEXIST);
    assert_int_equal(e->ops->get(e->d, INDEX_KEY, 4, &text, &len, NULL), ZN_ETOOBIG);
    assert_int_equal(e->ops->get(e->d, INDEX_KEY, 5, &text, &len, NULL), ZN_OK);
    assert_int_equal(len, 5);
    assert_string_equal(text, "first"); /* NUL-terminated */
    free(text);
}

/* ---- atomic put: a reader never sees a partial object ---------------------------------- */

#define BIG (512u << 10)
#define PUT_ROUNDS 40

struct race {
    c_env_t *e;
    _Atomic int done;
    _Atomic int bad, reads;
};

static void *reader_main(void *arg)
{
    struct race *r = arg;
    while (!r->done) {
        char *text = NULL;
        size_t len;
        zn_err_t err = r->e->ops->get(r->e->d, r->e->blob_key, BIG, &text, &len, NULL);
        if (err == ZN_OK) {
            /* either version, whole: one repeated byte, full length */
            bool whole = len == BIG && (text[0] == 'a' || text[0] == 'b');
            for (size_t i = 1; whole && i < len; i++)
                whole = text[i] == text[0];
            r->bad += !whole;
            r->reads++;
        } else {
            r->bad++;
        }
        free(text);
    }
    return NULL;
}

static void test_put_atomic(void **state)
{
    c_env_t *e = *state;
    char *a = malloc(BIG), *b = malloc(BIG);
    struct race r = {e, 0, 0, 0};
    pthread_t th;

    memset(a, 'a', BIG);
    memset(b, 'b', BIG);
    assert_int_equal(e->ops->put(e->d, e->blob_key, a, BIG, false), ZN_OK);
    assert_int_equal(zn_thread_create(&th, "t-reader", reader_main, &r), 0);
    for (int i = 0; i < PUT_ROUNDS; i++)
        assert_int_equal(e->ops->put(e->d, e->blob_key, i % 2 ? a : b, BIG, false), ZN_OK);
    while (r.reads < 5) /* at least a few reads overlapped the writes: wait for them, no sleep */
        sched_yield();
    r.done = 1;
    pthread_join(th, NULL);
    assert_int_equal(r.bad, 0);
    free(a);
    free(b);
}

/* ---- compare-and-swap -------------------------------------------------------------------- */

static void test_cas_conflict(void **state)
{
    c_env_t *e = *state;
    st_version_t v0, v1, v2, now;
    char *text;
    size_t len;

    /* create-only with the empty version: one creator wins */
    st_version_t none = {0};
    assert_int_equal(e->ops->put_if(e->d, INDEX_KEY, "v0", 2, &none, &v0), ZN_OK);
    assert_int_equal(e->ops->put_if(e->d, INDEX_KEY, "vX", 2, &none, NULL), ST_ECONFLICT);
    assert_int_equal(e->ops->get(e->d, INDEX_KEY, 64, &text, &len, &v1), ZN_OK);
    free(text);
    assert_true(st_version_eq(&v0, &v1));
    v2 = v1;
    /* two writers from the same token: exactly one wins */
    assert_int_equal(e->ops->put_if(e->d, INDEX_KEY, "w1", 2, &v1, &now), ZN_OK);
    assert_false(st_version_eq(&now, &v1));
    assert_int_equal(e->ops->put_if(e->d, INDEX_KEY, "w2", 2, &v2, NULL), ST_ECONFLICT);
    assert_int_equal(e->ops->get(e->d, INDEX_KEY, 64, &text, &len, &v2), ZN_OK);
    assert_string_equal(text, "w1"); /* the loser wrote nothing */
    free(text);
    assert_true(st_version_eq(&v2, &now));
    /* ...and retries from a fresh read */
    assert_int_equal(e->ops->put_if(e->d, INDEX_KEY, "w2", 2, &v2, NULL), ZN_OK);
    assert_int_equal(e->ops->get(e->d, INDEX_KEY, 64, &text, &len, NULL), ZN_OK);
    assert_string_equal(text, "w2");
    free(text);
    assert_int_equal(e->ops->version(e->d, INDEX_KEY, &v0), ZN_OK);
    assert_false(st_version_eq(&v0, &v2));
}

#define CAS_WRITERS 4
#define CAS_INCREMENTS 25

struct counter {
    c_env_t *e;
    int conflicts;
};

/* Increments the number in INDEX_KEY CAS_INCREMENTS times, retrying on conflicts. */
static void *incrementer(void *arg)
{
    struct counter *c = arg;
    for (int i = 0; i < CAS_INCREMENTS; i++) {
        zn_err_t err;
        do {
            char *text = NULL, next[32];
            size_t len;
            st_version_t v;
            if (c->e->ops->get(c->e->d, INDEX_KEY, 64, &text, &len, &v) != ZN_OK)
                return (void *)1;
            int n = snprintf(next, sizeof(next), "%ld", strtol(text, NULL, 10) + 1);
            free(text);
            err = c->e->ops->put_if(c->e->d, INDEX_KEY, next, (size_t)n, &v, NULL);
            c->conflicts += err == ST_ECONFLICT;
        } while (err == ST_ECONFLICT);
        if (err != ZN_OK)
            return (void *)1;
    }
    return NULL;
}

static void test_cas_no_lost_update(void **state)
{
    c_env_t *e = *state;
    pthread_t th[CAS_WRITERS];
    struct counter c[CAS_WRITERS];
    char *text;
    size_t len;

    assert_int_equal(e->ops->put(e->d, INDEX_KEY, "0", 1, false), ZN_OK);
    for (int i = 0; i < CAS_WRITERS; i++) {
        c[i] = (struct counter){e, 0};
        assert_int_equal(zn_thread_create(&th[i], "t-cas", incrementer, &c[i]), 0);
    }
    for (int i = 0; i < CAS_WRITERS; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    assert_int_equal(e->ops->get(e->d, INDEX_KEY, 64, &text, &len, NULL), ZN_OK);
    assert_int_equal(strtol(text, NULL, 10), CAS_WRITERS * CAS_INCREMENTS);
    free(text);
}

/* ---- listing and delete ------------------------------------------------------------------ */

struct seen {
    int files, dirs, other;
};

static bool count_entry(void *data, const st_entry_t *en)
{
    struct seen *s = data;
    if (!en->is_dir && (strcmp(en->name, "index.json") == 0 || strcmp(en->name, "oci-layout") == 0) && en->size == 2)
        s->files++;
    else if (en->is_dir && (strcmp(en->name, "blobs") == 0 || strcmp(en->name, ".uploads") == 0))
        s->dirs++;
    else
        s->other++;
    return true;
}

static bool stop_now(void *data, const st_entry_t *en)
{
    (*(int *)data)++;
    return false;
}

static void test_list_and_delete(void **state)
{
    c_env_t *e = *state;
    struct seen s = {0};
    int calls = 0;

    st_append_t *a;
    assert_int_equal(e->ops->put(e->d, INDEX_KEY, "{}", 2, false), ZN_OK);
    assert_int_equal(e->ops->put(e->d, REPO "/oci-layout", "{}", 2, false), ZN_OK);
    /* a "directory" lists once a key is under it (S3 has no empty prefixes) */
    assert_int_equal(e->ops->put(e->d, e->blob_key, "x", 1, false), ZN_OK);
    assert_int_equal(e->ops->append_create(e->d, UPLOAD_KEY, &a), ZN_OK);
    e->ops->append_close(a);
    assert_int_equal(e->ops->list(e->d, REPO, count_entry, &s), ZN_OK);
    assert_int_equal(s.files, 2);
    assert_int_equal(s.dirs, 2);
    assert_int_equal(s.other, 0);
    assert_int_equal(e->ops->list(e->d, REPO, stop_now, &calls), ZN_OK);
    assert_int_equal(calls, 1);
    assert_int_equal(e->ops->del(e->d, REPO "/oci-layout"), ZN_OK);
    assert_int_equal(e->ops->stat(e->d, REPO "/oci-layout", NULL, NULL), ZN_ENOENT);
    s = (struct seen){0};
    assert_int_equal(e->ops->list(e->d, REPO, count_entry, &s), ZN_OK);
    assert_int_equal(s.files, 1);
}

/* ---- append sessions ---------------------------------------------------------------------- */

static void test_append_resume(void **state)
{
    c_env_t *e = *state;
    st_append_t *a;
    uint64_t size;
    char buf[32], *text;
    size_t got, len;
    bool torn = false;

    assert_int_equal(e->ops->append_create(e->d, UPLOAD_KEY, &a), ZN_OK);
    assert_int_equal(e->ops->append_write(a, 0, "hello ", 6, &torn), ZN_OK);
    e->ops->append_close(a);
    assert_int_equal(e->ops->append_create(e->d, UPLOAD_KEY, &a), ZN_EEXIST);
    /* a fresh store on the same root stands for a restart */
    t_store_t *t = e->t;
    zn_storage_free(t->st);
    char err[256];
    assert_int_equal(zn_storage_open(&t->cfg, &t->st, err, sizeof(err)), ZN_OK);
    e->d = t->st->drv;
    e->ops = e->d->ops;
    assert_int_equal(e->ops->append_open(e->d, UPLOAD_KEY, &a, &size), ZN_OK);
    assert_int_equal(size, 6);
    assert_int_equal(e->ops->append_write(a, size, "world", 5, &torn), ZN_OK);
    assert_false(torn);
    assert_int_equal(e->ops->append_read(a, 0, buf, sizeof(buf), &got), ZN_OK);
    assert_int_equal(got, 11);
    assert_memory_equal(buf, "hello world", 11);
    /* nothing at the target until commit, then the whole object at once */
    assert_int_equal(e->ops->stat(e->d, e->blob_key, NULL, NULL), ZN_ENOENT);
    assert_int_equal(e->ops->append_commit(a, e->blob_key, false), ZN_OK);
    e->ops->append_close(a);
    assert_int_equal(e->ops->get(e->d, e->blob_key, 64, &text, &len, NULL), ZN_OK);
    assert_string_equal(text, "hello world");
    free(text);
    assert_int_equal(e->ops->append_open(e->d, UPLOAD_KEY, &a, &size), ZN_ENOENT);
    /* exclusive commit: an existing object wins, the session stays */
    assert_int_equal(e->ops->append_create(e->d, UPLOAD_KEY, &a), ZN_OK);
    assert_int_equal(e->ops->append_write(a, 0, "other", 5, &torn), ZN_OK);
    assert_int_equal(e->ops->append_commit(a, e->blob_key, true), ZN_EEXIST);
    assert_int_equal(e->ops->append_remove(a), ZN_OK);
    e->ops->append_close(a);
    assert_int_equal(e->ops->append_open(e->d, UPLOAD_KEY, &a, &size), ZN_ENOENT);
    assert_int_equal(e->ops->get(e->d, e->blob_key, 64, &text, &len, NULL), ZN_OK);
    assert_string_equal(text, "hello world");
    free(text);
}

/* ---- optional capabilities ---------------------------------------------------------------- */

static void test_link_or_copy(void **state)
{
    c_env_t *e = *state;
    char other[PATH_MAX], *text;
    size_t len;
    zn_digest_t dg, wrong;

    zn_digest_of(ZN_DIGEST_SHA256, "x", 1, &dg);
    zn_digest_of(ZN_DIGEST_SHA256, "y", 1, &wrong);
    assert_int_equal(e->ops->put(e->d, e->blob_key, "x", 1, false), ZN_OK);
    assert_int_equal(e->ops->mkdirs(e->d, "other/.uploads"), ZN_OK);
    assert_int_equal(e->ops->mkdirs(e->d, "other/blobs/sha256"), ZN_OK);
    assert_int_equal(st_blob_key(other, "other", &dg), ZN_OK);
    assert_int_equal(e->ops->copy(e->d, e->blob_key, other, &wrong), ZN_EDIGEST);
    assert_int_equal(e->ops->stat(e->d, other, NULL, NULL), ZN_ENOENT);
    assert_int_equal(e->ops->copy(e->d, e->blob_key, other, &dg), ZN_OK);
    assert_int_equal(e->ops->get(e->d, other, 64, &text, &len, NULL), ZN_OK);
    assert_string_equal(text, "x");
    free(text);
    if ((e->ops->flags & ST_DRV_LINK) == 0)
        return;
    assert_int_equal(e->ops->del(e->d, other), ZN_OK);
    assert_int_equal(e->ops->link(e->d, e->blob_key, other, false), ZN_OK);
    assert_int_equal(e->ops->link(e->d, e->blob_key, other, false), ZN_OK); /* already there */
    assert_int_equal(e->ops->link(e->d, e->blob_key, other, true), ZN_OK);
    assert_int_equal(e->ops->get(e->d, other, 64, &text, &len, NULL), ZN_OK);
    assert_string_equal(text, "x");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_object_read, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_missing, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_get_limit_and_exclusive, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_put_atomic, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_cas_conflict, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_cas_no_lost_update, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_list_and_delete, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_append_resume, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_link_or_copy, c_setup, c_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
