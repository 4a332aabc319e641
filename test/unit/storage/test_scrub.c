/*
 * Unit tests for storage/scrub.c: what a pass reports when objects go missing, and that a
 * manifest (or a blob it names) that GC or a client removes while the pass runs is not
 * reported. The removal is made at the very moment the pass looks for the object, by a
 * driver whose get/stat delete first (as GC does: index.json first, then the files), so the
 * race is hit every time instead of by scheduling luck.
 */
#include "storage/internal.h"
#include "test/unit/storage/st_helpers.h"

#define OCI_MT "application/vnd.oci.image.manifest.v1+json"

struct img {
    zn_digest_t config, layer, manifest;
};

static struct img push_image(t_store_t *t, const char *repo, const char *tag, const char *layer)
{
    struct img i;
    zn_storage_put_t res;
    char detail[256];
    i.config = t_push_blob(t->st, repo, "{}", 2);
    i.layer = t_push_blob(t->st, repo, layer, strlen(layer));
    char *m = t_manifest(&i.config, 2, &i.layer, strlen(layer), NULL, NULL);
    assert_int_equal(zn_storage_manifest_put(t->st, repo, tag, NULL, OCI_MT, m, strlen(m), &res, detail, sizeof(detail)), ZN_OK);
    i.manifest = res.digest;
    free(m);
    return i;
}

static void blob_path(const t_store_t *t, const char *repo, const zn_digest_t *d, char *out, size_t n)
{
    snprintf(out, n, "%s/%s/blobs/sha256/%s", t->root, repo, zn_digest_hex(d));
}

struct found {
    int n;
    char object[8][160], what[8][160];
};

static void on_problem(void *data, const char *repo, const char *object, const char *what)
{
    struct found *f = data;
    if (f->n < 8) {
        snprintf(f->object[f->n], sizeof(f->object[0]), "%s", object);
        snprintf(f->what[f->n], sizeof(f->what[0]), "%s", what);
    }
    f->n++;
}

static struct found scrub(t_store_t *t)
{
    struct found f = {0};
    zn_storage_scrub_stats_t s;
    assert_int_equal(zn_storage_scrub(t->st, NULL, 0, on_problem, &f, &s), ZN_OK);
    assert_int_equal(s.problems, (uint64_t)f.n);
    return f;
}

/* ---- a driver that removes an image the moment the pass looks for one of its objects ---- */

static struct {
    const st_driver_ops_t *real;
    st_driver_ops_t ops;
    t_store_t *t;
    char key[PATH_MAX]; /* the driver key whose get or stat triggers the removal */
    struct img img;
    bool fired;
} gcdrv;

/* What GC does to an untagged old image: index.json loses it, then its files go (not the
 * config "{}", which the kept image shares). */
static void remove_image(void)
{
    char path[PATH_MAX];
    gcdrv.fired = true;
    assert_int_equal(zn_storage_manifest_delete(gcdrv.t->st, "r", gcdrv.img.manifest.str), ZN_OK);
    const zn_digest_t *files[] = {&gcdrv.img.manifest, &gcdrv.img.layer};
    for (size_t i = 0; i < 2; i++) {
        blob_path(gcdrv.t, "r", files[i], path, sizeof(path));
        unlink(path);
    }
}

static zn_err_t gc_get(st_driver_t *d, const char *key, size_t max, char **out, size_t *len, st_version_t *ver)
{
    if (!gcdrv.fired && strcmp(key, gcdrv.key) == 0)
        remove_image();
    return gcdrv.real->get(d, key, max, out, len, ver);
}

static zn_err_t gc_stat(st_driver_t *d, const char *key, uint64_t *size, uint64_t *mtime_ns)
{
    if (!gcdrv.fired && strcmp(key, gcdrv.key) == 0)
        remove_image();
    return gcdrv.real->stat(d, key, size, mtime_ns);
}

static void gcdrv_install(t_store_t *t, const struct img *img, const zn_digest_t *trigger)
{
    gcdrv.t = t;
    gcdrv.img = *img;
    gcdrv.fired = false;
    assert_int_equal(st_blob_key(gcdrv.key, "r", trigger), ZN_OK);
    gcdrv.real = t->st->drv->ops;
    gcdrv.ops = *gcdrv.real;
    gcdrv.ops.get = gc_get;
    gcdrv.ops.stat = gc_stat;
    t->st->drv->ops = &gcdrv.ops;
}

static void gcdrv_remove(t_store_t *t)
{
    t->st->drv->ops = gcdrv.real;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_clean_store(void **state)
{
    t_store_t *t = *state;
    push_image(t, "r", "v1", "layer one");
    struct found f = scrub(t);
    assert_int_equal(f.n, 0);
}

/* Objects really missing are reported: a layer, and a manifest index.json lists. */
static void test_missing_objects_reported(void **state)
{
    t_store_t *t = *state;
    char path[PATH_MAX];
    struct img a = push_image(t, "r", "a", "layer a"), b = push_image(t, "r", "b", "layer b");
    blob_path(t, "r", &a.layer, path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    blob_path(t, "r", &b.manifest, path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    struct found f = scrub(t);
    assert_int_equal(f.n, 2);
    int layer = strcmp(f.object[0], a.layer.str) == 0 ? 0 : 1;
    assert_string_equal(f.object[layer], a.layer.str);
    assert_non_null(strstr(f.what[layer], "missing layer blob, referenced by manifest"));
    assert_string_equal(f.object[1 - layer], b.manifest.str);
    assert_string_equal(f.what[1 - layer], "missing manifest (listed in index.json)");
}

/* index.json was read with the manifest in it; GC removes it before the pass reads it. */
static void test_manifest_removed_mid_pass(void **state)
{
    t_store_t *t = *state;
    struct img keep = push_image(t, "r", "keep", "kept layer");
    struct img gone = push_image(t, "r", NULL, "collected layer");
    gcdrv_install(t, &gone, &gone.manifest);
    struct found f = scrub(t);
    gcdrv_remove(t);
    assert_true(gcdrv.fired);
    assert_int_equal(f.n, 0);
    assert_int_equal(scrub(t).n, 0);
    (void)keep;
}

/* The manifest was read; GC removes it and its layer before the pass looks for the layer. */
static void test_layer_removed_mid_pass(void **state)
{
    t_store_t *t = *state;
    push_image(t, "r", "keep", "kept layer");
    struct img gone = push_image(t, "r", NULL, "collected layer");
    gcdrv_install(t, &gone, &gone.layer);
    struct found f = scrub(t);
    gcdrv_remove(t);
    assert_true(gcdrv.fired);
    assert_int_equal(f.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clean_store, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_missing_objects_reported, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_manifest_removed_mid_pass, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_layer_removed_mid_pass, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
