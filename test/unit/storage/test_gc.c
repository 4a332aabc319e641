/*
 * Unit tests for storage/gc.c and gc_files.c: repositories built with the storage API on a
 * temp root, files aged with utimensat (gcDelay is 1h), then GC: what goes and what stays.
 */
#include <fcntl.h>

#include "test/unit/storage/st_helpers.h"

#define OCI_MT "application/vnd.oci.image.manifest.v1+json"
#define INDEX_MT "application/vnd.oci.image.index.v1+json"
#define HOUR_NS 3600000000000ull

static int setup(void **state)
{
    t_store_t *t = t_store_open();
    t->cfg.storage.gc = true;
    t->cfg.storage.gc_delay_ns = HOUR_NS;
    t->cfg.storage.gc_interval_ns = HOUR_NS;
    *state = t;
    return 0;
}

/* Sets the mtime of <root>/<rel> two hours back. */
static void age(t_store_t *t, const char *rel)
{
    char path[4096];
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= 7200;
    ts[1] = ts[0];
    snprintf(path, sizeof(path), "%s/%s", t->root, rel);
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static const char *blob_rel(const char *repo, const zn_digest_t *d)
{
    static char rel[512];
    snprintf(rel, sizeof(rel), "%s/blobs/sha256/%s", repo, zn_digest_hex(d));
    return rel;
}

static void age_blob(t_store_t *t, const char *repo, const zn_digest_t *d)
{
    age(t, blob_rel(repo, d));
}

static bool has_blob(t_store_t *t, const char *repo, const zn_digest_t *d)
{
    return t_exists(t, blob_rel(repo, d));
}

static zn_storage_gc_stats_t gc(t_store_t *t, const char *repo)
{
    zn_storage_gc_stats_t s;
    assert_int_equal(zn_storage_gc_repo(t->st, repo, zn_now_wall_ns(), &s), ZN_OK);
    return s;
}

struct img {
    zn_digest_t config, layer, manifest;
};

/* Pushes a config ("{}"), a layer and a manifest naming them (subject: a digest or NULL). */
static struct img push_image(t_store_t *t, const char *repo, const char *tag, const char *layer, const char *subject)
{
    struct img i;
    zn_storage_put_t res;
    char detail[256];
    i.config = t_push_blob(t->st, repo, "{}", 2);
    i.layer = t_push_blob(t->st, repo, layer, strlen(layer));
    char *m = t_manifest(&i.config, 2, &i.layer, strlen(layer), subject, subject != NULL ? "application/x-sig" : NULL);
    assert_int_equal(zn_storage_manifest_put(t->st, repo, tag, NULL, OCI_MT, m, strlen(m), &res, detail, sizeof(detail)), ZN_OK);
    i.manifest = res.digest;
    free(m);
    return i;
}

static void age_image(t_store_t *t, const char *repo, const struct img *i)
{
    age_blob(t, repo, &i->config);
    age_blob(t, repo, &i->layer);
    age_blob(t, repo, &i->manifest);
}

static bool listed(t_store_t *t, const char *repo, const zn_digest_t *d)
{
    zn_storage_manifest_t m;
    bool found = zn_storage_manifest_get(t->st, repo, d->str, false, &m) == ZN_OK;
    zn_storage_manifest_release(&m);
    return found;
}

static void test_blobs(void **state)
{
    t_store_t *t = *state;
    struct img i = push_image(t, "r", "v1", "layer", NULL);
    zn_digest_t old = t_push_blob(t->st, "r", "old orphan", 10), young = t_push_blob(t->st, "r", "young orphan", 12);
    age_image(t, "r", &i);
    age_blob(t, "r", &old);

    zn_storage_gc_stats_t s = gc(t, "r");
    assert_false(has_blob(t, "r", &old));
    assert_true(has_blob(t, "r", &young));
    assert_true(has_blob(t, "r", &i.config));
    assert_true(has_blob(t, "r", &i.layer));
    assert_true(has_blob(t, "r", &i.manifest));
    assert_int_equal(s.blobs, 1);
    assert_int_equal(s.bytes, 10);
    assert_int_equal(s.manifests, 0);
    assert_true(listed(t, "r", &i.manifest));
    /* pushing an old blob again makes it young */
    age_blob(t, "r", &young);
    t_push_blob(t->st, "r", "young orphan", 12);
    gc(t, "r");
    assert_true(has_blob(t, "r", &young));
}

static void test_index_children(void **state)
{
    t_store_t *t = *state;
    struct img a = push_image(t, "r", NULL, "amd64", NULL), b = push_image(t, "r", NULL, "arm64", NULL);
    char body[1024], detail[256];
    zn_storage_put_t res;
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":2,\"mediaType\":\"" INDEX_MT "\",\"manifests\":["
             "{\"mediaType\":\"" OCI_MT "\",\"digest\":\"%s\",\"size\":1},{\"mediaType\":\"" OCI_MT
             "\",\"digest\":\"%s\",\"size\":1}]}",
             a.manifest.str, b.manifest.str);
    assert_int_equal(zn_storage_manifest_put(t->st, "r", "multi", NULL, INDEX_MT, body, strlen(body), &res, detail, sizeof(detail)),
                     ZN_OK);
    age_image(t, "r", &a);
    age_image(t, "r", &b);
    age_blob(t, "r", &res.digest);

    zn_storage_gc_stats_t s = gc(t, "r");
    assert_int_equal(s.blobs, 0);
    assert_int_equal(s.manifests, 0);
    assert_true(listed(t, "r", &a.manifest));
    assert_true(listed(t, "r", &b.manifest));
    assert_true(has_blob(t, "r", &a.layer));
    assert_true(has_blob(t, "r", &b.layer));
    /* untag the index: it and its children go, with their blobs */
    assert_int_equal(zn_storage_manifest_delete(t->st, "r", "multi"), ZN_OK);
    s = gc(t, "r");
    assert_int_equal(s.manifests, 3);
    assert_false(listed(t, "r", &a.manifest));
    assert_false(has_blob(t, "r", &res.digest));
    assert_false(has_blob(t, "r", &b.layer));
    assert_false(has_blob(t, "r", &a.config));
}

/* The mirror's index, stored before its children (zn_storage_manifest_put_mirrored): only
 * that entry point takes one; GC keeps the child that came later, and its blobs, through
 * the index, and a child never fetched does not make the run unsafe. */
static void test_mirrored_index(void **state)
{
    t_store_t *t = *state;
    char body[1024], detail[256];
    zn_storage_put_t res;
    zn_digest_t never;
    zn_digest_of(ZN_DIGEST_SHA256, "never pulled", 12, &never);
    struct img a = push_image(t, "prep", NULL, "amd64", NULL); /* only to know the child's digest */
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":2,\"mediaType\":\"" INDEX_MT "\",\"manifests\":["
             "{\"mediaType\":\"" OCI_MT "\",\"digest\":\"%s\",\"size\":1},{\"mediaType\":\"" OCI_MT
             "\",\"digest\":\"%s\",\"size\":1}]}",
             a.manifest.str, never.str);
    const char *tags[1] = {"multi"};
    assert_int_equal(zn_storage_manifest_put_tags(t->st, "r", tags, 1, NULL, INDEX_MT, body, strlen(body), &res, detail, sizeof(detail)),
                     ZN_ENOENT);
    assert_int_equal(zn_storage_manifest_put_mirrored(t->st, "r", tags, 1, NULL, INDEX_MT, body, strlen(body), &res, detail,
                                                      sizeof(detail)),
                     ZN_OK);
    zn_digest_t index = res.digest;
    /* an image manifest's blobs must still be there */
    char *m = t_manifest(&never, 2, &never, 3, NULL, NULL);
    assert_int_equal(zn_storage_manifest_put_mirrored(t->st, "r", NULL, 0, NULL, OCI_MT, m, strlen(m), &res, detail, sizeof(detail)),
                     ZN_ENOENT);
    free(m);
    /* the platform a client pulled arrives later, untagged */
    struct img child = push_image(t, "r", NULL, "amd64", NULL);
    assert_true(zn_digest_eq(&child.manifest, &a.manifest));
    age_image(t, "r", &child);
    age_blob(t, "r", &index);

    zn_storage_gc_stats_t s = gc(t, "r");
    assert_int_equal(s.manifests, 0);
    assert_int_equal(s.blobs, 0);
    assert_true(listed(t, "r", &child.manifest));
    assert_true(has_blob(t, "r", &child.layer));
    assert_true(has_blob(t, "r", &child.config));
    zn_storage_manifest_t got;
    assert_int_equal(zn_storage_manifest_get(t->st, "r", "multi", true, &got), ZN_OK);
    assert_true(zn_digest_eq(&got.digest, &index));
    zn_storage_manifest_release(&got);
    assert_int_equal(zn_storage_manifest_get(t->st, "r", never.str, false, &got), ZN_ENOENT);
    /* scrub: the platform never pulled is damage in a plain store, expected in a mirror */
    zn_storage_scrub_stats_t ss;
    assert_int_equal(zn_storage_scrub(t->st, NULL, 0, NULL, NULL, &ss), ZN_OK);
    assert_int_equal(ss.problems, 1);
    zn_config_sync_registry_t reg = {.on_demand = true};
    zn_config_sync_t sync = {.enable = true, .registries = &reg, .nregistries = 1};
    t->cfg.extensions.sync = &sync;
    assert_int_equal(zn_storage_scrub(t->st, NULL, 0, NULL, NULL, &ss), ZN_OK);
    t->cfg.extensions.sync = NULL;
    assert_int_equal(ss.problems, 0);
}

static void test_untagged(void **state)
{
    t_store_t *t = *state;
    struct img keep = push_image(t, "r", "v1", "shared", NULL), drop = push_image(t, "r", "v2", "only-v2", NULL);
    assert_int_equal(zn_storage_manifest_delete(t->st, "r", "v2"), ZN_OK);
    /* young: stays */
    zn_storage_gc_stats_t s = gc(t, "r");
    assert_int_equal(s.manifests, 0);
    assert_true(listed(t, "r", &drop.manifest));
    age_image(t, "r", &keep);
    age_image(t, "r", &drop);
    s = gc(t, "r");
    assert_int_equal(s.manifests, 1);
    assert_false(listed(t, "r", &drop.manifest));
    assert_false(has_blob(t, "r", &drop.manifest));
    assert_false(has_blob(t, "r", &drop.layer));
    assert_true(has_blob(t, "r", &drop.config)); /* shared with v1 */
    assert_true(has_blob(t, "r", &keep.layer));
    assert_true(listed(t, "r", &keep.manifest));
}

static void test_referrers(void **state)
{
    t_store_t *t = *state;
    struct img img = push_image(t, "r", "v1", "image", NULL);
    struct img sig = push_image(t, "r", NULL, "signature", img.manifest.str);
    struct img sig2 = push_image(t, "r", NULL, "signature of signature", sig.manifest.str);
    age_image(t, "r", &img);
    age_image(t, "r", &sig);
    age_image(t, "r", &sig2);
    zn_storage_gc_stats_t s = gc(t, "r");
    assert_int_equal(s.manifests, 0);
    assert_true(listed(t, "r", &sig.manifest));
    assert_true(listed(t, "r", &sig2.manifest));
    assert_true(has_blob(t, "r", &sig2.layer));
    /* the subject goes: so do its referrers, after gcDelay */
    assert_int_equal(zn_storage_manifest_delete(t->st, "r", img.manifest.str), ZN_OK);
    s = gc(t, "r");
    assert_int_equal(s.manifests, 2);
    assert_false(listed(t, "r", &sig.manifest));
    assert_false(has_blob(t, "r", &sig.layer));
    assert_false(has_blob(t, "r", &sig2.manifest));
    assert_false(has_blob(t, "r", &img.layer));
}

static void test_uploads(void **state)
{
    t_store_t *t = *state;
    char stale[ZN_UUID_LEN + 1], fresh[ZN_UUID_LEN + 1], busy[ZN_UUID_LEN + 1], rel[512], side[1024];
    zn_upload_t *up, *held;

    assert_int_equal(zn_storage_upload_start(t->st, "r", stale, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_write(up, "abc", 3), ZN_OK);
    zn_storage_upload_close(up);
    assert_int_equal(zn_storage_upload_start(t->st, "r", fresh, NULL), ZN_OK);
    assert_int_equal(zn_storage_upload_start(t->st, "r", busy, &held), ZN_OK);
    snprintf(rel, sizeof(rel), "r/.uploads/%s", stale);
    age(t, rel);
    snprintf(side, sizeof(side), "%s/%s.state", t->root, rel);
    FILE *f = fopen(side, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(side, sizeof(side), "%s.state", rel);
    age(t, side);
    snprintf(rel, sizeof(rel), "r/.uploads/%s", busy);
    age(t, rel);

    zn_storage_gc_stats_t s = gc(t, "r");
    assert_int_equal(s.uploads, 2);
    assert_int_equal(s.bytes, 3);
    assert_false(t_exists(t, side));
    assert_int_equal(zn_storage_upload_open(t->st, "r", stale, &up), ZN_ENOENT);
    assert_true(t_exists(t, rel)); /* a request holds it */
    assert_int_equal(zn_storage_upload_write(held, "x", 1), ZN_OK);
    zn_storage_upload_close(held);
    assert_int_equal(zn_storage_upload_open(t->st, "r", fresh, &up), ZN_OK);
    zn_storage_upload_close(up);
    /* idle and old again: now it goes */
    age(t, rel);
    s = gc(t, "r");
    assert_int_equal(s.uploads, 1);
    assert_int_equal(zn_storage_upload_open(t->st, "r", busy, &up), ZN_ENOENT);
}

static void test_empty_repo(void **state)
{
    t_store_t *t = *state;
    zn_digest_t d = t_push_blob(t->st, "ns/r", "blob", 4);
    age_blob(t, "ns/r", &d);
    assert_int_equal(zn_storage_blob_stat(t->st, "ns/r", &d, &(uint64_t){0}), ZN_OK);
    zn_storage_gc_stats_t s = gc(t, "ns/r");
    assert_int_equal(s.blobs, 1);
    assert_int_equal(s.removed_repos, 0); /* index.json is young */
    age(t, "ns/r/index.json");
    s = gc(t, "ns/r");
    assert_int_equal(s.removed_repos, 1);
    assert_false(t_exists(t, "ns/r"));
    assert_false(t_exists(t, "ns"));
    assert_int_equal(zn_storage_repo_exists(t->st, "ns/r"), ZN_ENOENT);
    assert_int_equal(zn_storage_gc_repo(t->st, "ns/r", zn_now_wall_ns(), NULL), ZN_ENOENT);
    /* and it comes back on the next push */
    d = t_push_blob(t->st, "ns/r", "blob", 4);
    assert_true(has_blob(t, "ns/r", &d));
    assert_int_equal(zn_storage_repo_exists(t->st, "ns/r"), ZN_OK);
}

static void test_nested_repo_kept(void **state)
{
    t_store_t *t = *state;
    zn_digest_t d = t_push_blob(t->st, "a", "x", 1);
    t_push_blob(t->st, "a/b", "y", 1);
    age_blob(t, "a", &d);
    age(t, "a/index.json");
    zn_storage_gc_stats_t s;
    assert_int_equal(zn_storage_gc(t->st, zn_now_wall_ns(), NULL, &s), ZN_OK);
    assert_int_equal(s.repos, 2);
    assert_int_equal(s.removed_repos, 1);
    assert_int_equal(zn_storage_repo_exists(t->st, "a"), ZN_ENOENT);
    assert_int_equal(zn_storage_repo_exists(t->st, "a/b"), ZN_OK);
}

static void test_dedupe_after_gc(void **state)
{
    t_store_t *t = *state;
    char where[ZN_REPO_NAME_MAX + 1], a[1024], b[1024];
    struct stat sa, sb;
    t_wait_rebuild(t);
    zn_digest_t d = t_push_blob(t->st, "one", "shared layer", 12);
    struct img i = push_image(t, "two", "v1", "shared layer", NULL); /* linked to one's copy */
    assert_true(zn_digest_eq(&d, &i.layer));
    assert_int_equal(zn_storage_blob_locate(t->st, &d, where, sizeof(where)), ZN_OK);
    assert_string_equal(where, "one");
    age_blob(t, "one", &d);
    zn_storage_gc_stats_t s = gc(t, "one");
    assert_int_equal(s.blobs, 1);
    assert_false(has_blob(t, "one", &d));
    assert_int_equal(zn_storage_blob_locate(t->st, &d, where, sizeof(where)), ZN_OK);
    assert_string_equal(where, "two");
    /* a third repository still gets a link, not a copy */
    t_push_blob(t->st, "three", "shared layer", 12);
    snprintf(a, sizeof(a), "%s/%s", t->root, blob_rel("two", &d));
    snprintf(b, sizeof(b), "%s/%s", t->root, blob_rel("three", &d));
    assert_int_equal(stat(a, &sa), 0);
    assert_int_equal(stat(b, &sb), 0);
    assert_int_equal(sa.st_ino, sb.st_ino);
}

static void test_mount_is_young(void **state)
{
    t_store_t *t = *state;
    zn_digest_t d = t_push_blob(t->st, "src", "layer", 5);
    age_blob(t, "src", &d);
    assert_int_equal(zn_storage_blob_mount(t->st, "dst", "src", &d), ZN_OK);
    gc(t, "dst");
    assert_true(has_blob(t, "dst", &d)); /* waits for its manifest */
}

static void test_stop(void **state)
{
    t_store_t *t = *state;
    zn_digest_t d = t_push_blob(t->st, "r", "x", 1);
    _Atomic int stop = 1;
    zn_storage_gc_stats_t s;
    age_blob(t, "r", &d);
    assert_int_equal(zn_storage_gc(t->st, zn_now_wall_ns(), &stop, &s), ZN_OK);
    assert_int_equal(s.repos, 0);
    assert_true(has_blob(t, "r", &d));
}

/* A manifest whose file cannot be parsed: its references are unknown, no blob goes. */
static void test_unreadable_manifest(void **state)
{
    t_store_t *t = *state;
    struct img i = push_image(t, "r", "v1", "layer", NULL);
    zn_digest_t old = t_push_blob(t->st, "r", "orphan", 6);
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", t->root, blob_rel("r", &i.manifest));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{not json", f);
    fclose(f);
    age_blob(t, "r", &old);
    zn_storage_gc_stats_t s = gc(t, "r");
    assert_int_equal(s.blobs, 0);
    assert_true(has_blob(t, "r", &old));
}

struct racer {
    t_store_t *t;
    _Atomic int stop;
    int passes;
};

static void *gc_loop(void *arg)
{
    struct racer *r = arg;
    while (!r->stop) {
        /* two hours ahead: every unreferenced file counts as old, even one just pushed */
        zn_storage_gc_repo(r->t->st, "race", zn_now_wall_ns() + 2 * HOUR_NS, NULL);
        r->passes++;
    }
    return NULL;
}

/* GC racing manifest PUTs: a PUT either fails (a blob it names is gone) or leaves a tag whose
 * manifest and blobs all exist. */
static void test_race_with_put(void **state)
{
    t_store_t *t = *state;
    struct racer r = {t, 0, 0};
    pthread_t th;
    char layer[32], tag[16], detail[256];
    int ok = 0;

    char uuid[ZN_UUID_LEN + 1];
    zn_upload_t *held; /* a session in progress: the repository is never empty, never removed */
    assert_int_equal(zn_storage_upload_start(t->st, "race", uuid, &held), ZN_OK);
    assert_int_equal(zn_thread_create(&th, "gc-test", gc_loop, &r), 0);
    for (int n = 0; n < 300; n++) {
        snprintf(layer, sizeof(layer), "layer %d", n);
        snprintf(tag, sizeof(tag), "t%d", n);
        zn_digest_t c = t_push_blob(t->st, "race", "{}", 2), l = t_push_blob(t->st, "race", layer, strlen(layer));
        char *m = t_manifest(&c, 2, &l, strlen(layer), NULL, NULL);
        zn_storage_put_t res;
        zn_err_t err = zn_storage_manifest_put(t->st, "race", tag, NULL, OCI_MT, m, strlen(m), &res, detail, sizeof(detail));
        assert_true(err == ZN_OK || err == ZN_ENOENT);
        ok += err == ZN_OK;
        free(m);
    }
    r.stop = 1;
    pthread_join(th, NULL);
    zn_storage_upload_close(held);
    assert_true(r.passes > 0);
    print_message("%d of 300 PUTs stored, %d GC passes\n", ok, r.passes);

    zn_storage_list_t tags;
    assert_int_equal(zn_storage_tags_list(t->st, "race", NULL, SIZE_MAX, &tags), ZN_OK);
    assert_int_equal(tags.count, ok);
    for (size_t i = 0; i < tags.count; i++) {
        zn_storage_manifest_t m;
        assert_int_equal(zn_storage_manifest_get(t->st, "race", tags.names[i], true, &m), ZN_OK);
        char *at = strstr(m.bytes, "sha256:");
        for (int k = 0; k < 2; k++, at = strstr(at + 1, "sha256:")) {
            zn_digest_t d;
            assert_non_null(at);
            assert_int_equal(zn_digest_parse(zn_slice(at, 71), &d), ZN_OK);
            assert_true(has_blob(t, "race", &d));
        }
        zn_storage_manifest_release(&m);
    }
    zn_storage_list_release(&tags);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_blobs, setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_index_children, setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_mirrored_index, setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_untagged, setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_referrers, setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_uploads, setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_empty_repo, setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_nested_repo_kept, setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_after_gc, setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_mount_is_young, setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_stop, setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_manifest, setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_race_with_put, setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
