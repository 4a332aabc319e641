/*
 * Unit tests for storage/manifests.c and manifest_check.c: PUT by tag and by digest, exact
 * bytes kept, tag moves, GET, DELETE by tag and digest, tag list paging, and every
 * validation failure leaving the repository untouched.
 */
#include "test/unit/storage/st_helpers.h"
#include "storage/internal.h"

#define OCI_MT "application/vnd.oci.image.manifest.v1+json"

struct img {
    zn_digest_t config, layer;
    char *manifest;
};

static struct img push_image(t_store_t *t, const char *repo, const char *layer)
{
    struct img i;
    i.config = t_push_blob(t->st, repo, "{}", 2);
    i.layer = t_push_blob(t->st, repo, layer, strlen(layer));
    i.manifest = t_manifest(&i.config, 2, &i.layer, strlen(layer), NULL, NULL);
    return i;
}

static char *read_index(t_store_t *t, const char *repo)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s/index.json", t->root, repo);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static zn_err_t put(t_store_t *t, const char *repo, const char *tag, const char *ct, const char *body, zn_storage_put_t *res)
{
    char detail[256];
    return zn_storage_manifest_put(t->st, repo, tag, NULL, ct, body, strlen(body), res, detail, sizeof(detail));
}

static void test_put_get(void **state)
{
    t_store_t *t = *state;
    struct img i = push_image(t, "r", "layer-1");
    zn_storage_put_t res;
    zn_storage_manifest_t m;
    zn_digest_t d;

    assert_int_equal(put(t, "r", "v1", OCI_MT, i.manifest, &res), ZN_OK);
    zn_digest_of(ZN_DIGEST_SHA256, i.manifest, strlen(i.manifest), &d);
    assert_true(zn_digest_eq(&res.digest, &d));
    assert_false(res.has_subject);
    assert_int_equal(zn_storage_manifest_get(t->st, "r", "v1", true, &m), ZN_OK);
    assert_string_equal(m.bytes, i.manifest);
    assert_string_equal(m.media_type, OCI_MT);
    assert_int_equal(m.size, strlen(i.manifest));
    zn_storage_manifest_release(&m);
    assert_int_equal(zn_storage_manifest_get(t->st, "r", d.str, false, &m), ZN_OK);
    assert_null(m.bytes);
    assert_int_equal(zn_storage_manifest_get(t->st, "r", "v2", false, &m), ZN_ENOENT);
    assert_int_equal(zn_storage_manifest_get(t->st, "nope", "v1", false, &m), ZN_ENOENT);
    /* by digest, with a matching and a mismatching digest */
    char detail[128];
    assert_int_equal(zn_storage_manifest_put(t->st, "r", NULL, &d, OCI_MT, i.manifest, strlen(i.manifest), &res, detail,
                                             sizeof(detail)),
                     ZN_OK);
    zn_digest_t other;
    zn_digest_of(ZN_DIGEST_SHA256, "x", 1, &other);
    assert_int_equal(zn_storage_manifest_put(t->st, "r", NULL, &other, OCI_MT, i.manifest, strlen(i.manifest), &res,
                                             detail, sizeof(detail)),
                     ZN_EDIGEST);
    char *idx = read_index(t, "r");
    assert_non_null(strstr(idx, "\"org.opencontainers.image.ref.name\":\"v1\""));
    assert_null(strstr(strstr(idx, d.str) + 1, d.str)); /* one entry: the tag's */
    free(idx);
    free(i.manifest);
}

static void test_tag_moves_and_deletes(void **state)
{
    t_store_t *t = *state;
    struct img a = push_image(t, "r", "layer-a"), b = push_image(t, "r", "layer-b");
    zn_storage_put_t ra, rb;
    zn_storage_manifest_t m;
    zn_storage_list_t l;

    assert_int_equal(put(t, "r", "x", OCI_MT, a.manifest, &ra), ZN_OK);
    assert_int_equal(put(t, "r", "y", OCI_MT, a.manifest, &ra), ZN_OK);
    assert_int_equal(put(t, "r", "x", OCI_MT, b.manifest, &rb), ZN_OK);
    assert_int_equal(zn_storage_manifest_get(t->st, "r", "x", false, &m), ZN_OK);
    assert_true(zn_digest_eq(&m.digest, &rb.digest));
    /* delete tag y: a stays, untagged */
    assert_int_equal(zn_storage_manifest_delete(t->st, "r", "y"), ZN_OK);
    assert_int_equal(zn_storage_manifest_get(t->st, "r", "y", false, &m), ZN_ENOENT);
    assert_int_equal(zn_storage_manifest_get(t->st, "r", ra.digest.str, false, &m), ZN_OK);
    assert_int_equal(zn_storage_manifest_delete(t->st, "r", "y"), ZN_ENOENT);
    /* delete by digest: entries and blob go */
    assert_int_equal(zn_storage_manifest_delete(t->st, "r", rb.digest.str), ZN_OK);
    assert_int_equal(zn_storage_manifest_get(t->st, "r", "x", false, &m), ZN_ENOENT);
    uint64_t size;
    assert_int_equal(zn_storage_blob_stat(t->st, "r", &rb.digest, &size), ZN_ENOENT);
    assert_int_equal(zn_storage_manifest_delete(t->st, "r", rb.digest.str), ZN_ENOENT);
    assert_int_equal(zn_storage_tags_list(t->st, "r", NULL, SIZE_MAX, &l), ZN_OK);
    assert_int_equal(l.count, 0);
    zn_storage_list_release(&l);
    free(a.manifest);
    free(b.manifest);
}

/* The in-memory manifest cache: more manifests than slots all read back exactly, by tag and
 * by digest, twice (second round from the cache); a deleted manifest is gone even though its
 * bytes were cached; put back, it is served again. */
static void test_manifest_cache(void **state)
{
    t_store_t *t = *state;
    enum { N = ST_MCACHE_SLOTS + 4 };
    struct img imgs[N];
    zn_storage_put_t res[N];
    zn_storage_manifest_t m;
    char tag[16], layer[32];

    for (int i = 0; i < N; i++) {
        snprintf(layer, sizeof(layer), "cache-layer-%d", i);
        imgs[i] = push_image(t, "c", layer);
        snprintf(tag, sizeof(tag), "t%d", i);
        assert_int_equal(put(t, "c", tag, OCI_MT, imgs[i].manifest, &res[i]), ZN_OK);
    }
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(tag, sizeof(tag), "t%d", i);
            assert_int_equal(zn_storage_manifest_get(t->st, "c", i % 2 ? tag : res[i].digest.str, true, &m), ZN_OK);
            assert_string_equal(m.bytes, imgs[i].manifest);
            assert_int_equal(m.size, strlen(imgs[i].manifest));
            assert_true(zn_digest_eq(&m.digest, &res[i].digest));
            zn_storage_manifest_release(&m);
        }
    }
    assert_int_equal(zn_storage_manifest_get(t->st, "c", res[N - 1].digest.str, true, &m), ZN_OK);
    zn_storage_manifest_release(&m);
    /* HEAD: the size from the cache, no bytes */
    assert_int_equal(zn_storage_manifest_get(t->st, "c", "t11", false, &m), ZN_OK);
    assert_null(m.bytes);
    assert_int_equal(m.size, strlen(imgs[N - 1].manifest));
    assert_int_equal(zn_storage_manifest_delete(t->st, "c", res[N - 1].digest.str), ZN_OK);
    assert_int_equal(zn_storage_manifest_get(t->st, "c", res[N - 1].digest.str, false, &m), ZN_ENOENT);
    assert_int_equal(zn_storage_manifest_get(t->st, "c", res[N - 1].digest.str, true, &m), ZN_ENOENT);
    assert_int_equal(zn_storage_manifest_get(t->st, "c", "t11", true, &m), ZN_ENOENT);
    assert_int_equal(put(t, "c", "again", OCI_MT, imgs[N - 1].manifest, &res[N - 1]), ZN_OK);
    assert_int_equal(zn_storage_manifest_get(t->st, "c", "again", true, &m), ZN_OK);
    assert_string_equal(m.bytes, imgs[N - 1].manifest);
    zn_storage_manifest_release(&m);
    for (int i = 0; i < N; i++)
        free(imgs[i].manifest);
}

/* zn_storage_manifest_peek answers only from memory: ZN_EAGAIN where index.json changed on
 * the store (another process wrote it) or the bytes are not cached, never a stale answer;
 * after a real read the same lookup is a hit. */
static void test_peek(void **state)
{
    t_store_t *t = *state;
    struct img i = push_image(t, "p", "peek-layer");
    zn_storage_put_t res;
    zn_storage_manifest_t m;

    assert_int_equal(put(t, "p", "v1", OCI_MT, i.manifest, &res), ZN_OK);
    assert_int_equal(zn_storage_manifest_get(t->st, "p", "v1", true, &m), ZN_OK);
    zn_storage_manifest_release(&m);
    assert_int_equal(zn_storage_manifest_peek(t->st, "p", "v1", true, &m), ZN_OK);
    assert_string_equal(m.bytes, i.manifest);
    zn_storage_manifest_release(&m);
    assert_int_equal(zn_storage_manifest_peek(t->st, "p", "nope", true, &m), ZN_ENOENT); /* the index is current */

    /* another writer moves v1 away: the cached index is stale, so peek must not answer */
    char *text = read_index(t, "p");
    char *tagged = strstr(text, "\"v1\"");
    assert_non_null(tagged);
    tagged[2] = '2'; /* v1 -> v2 */
    assert_int_equal(st_ops(t->st)->put(t->st->drv, "p/index.json", text, strlen(text), false), ZN_OK);
    free(text);
    assert_int_equal(zn_storage_manifest_peek(t->st, "p", "v2", true, &m), ZN_EAGAIN);
    assert_int_equal(zn_storage_manifest_peek(t->st, "p", "v1", false, &m), ZN_EAGAIN);
    assert_int_equal(zn_storage_manifest_get(t->st, "p", "v1", false, &m), ZN_ENOENT);
    assert_int_equal(zn_storage_manifest_peek(t->st, "p", "v2", true, &m), ZN_OK); /* bytes cached by digest */
    assert_string_equal(m.bytes, i.manifest);
    zn_storage_manifest_release(&m);
    free(i.manifest);
}

static void test_tags_list(void **state)
{
    t_store_t *t = *state;
    struct img a = push_image(t, "r", "layer-a");
    zn_storage_put_t res;
    zn_storage_list_t l;
    const char *tags[] = {"b", "a", "C", "c", "a1"};

    for (size_t i = 0; i < 5; i++)
        assert_int_equal(put(t, "r", tags[i], OCI_MT, a.manifest, &res), ZN_OK);
    assert_int_equal(zn_storage_tags_list(t->st, "r", NULL, SIZE_MAX, &l), ZN_OK);
    assert_int_equal(l.count, 5);
    assert_string_equal(l.names[0], "C");
    assert_string_equal(l.names[1], "a");
    assert_string_equal(l.names[2], "a1");
    assert_false(l.more);
    zn_storage_list_release(&l);
    assert_int_equal(zn_storage_tags_list(t->st, "r", "a", 2, &l), ZN_OK);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.names[0], "a1");
    assert_string_equal(l.names[1], "b");
    assert_true(l.more);
    zn_storage_list_release(&l);
    assert_int_equal(zn_storage_tags_list(t->st, "r", NULL, 0, &l), ZN_OK);
    assert_int_equal(l.count, 0);
    assert_true(l.more);
    zn_storage_list_release(&l);
    assert_int_equal(zn_storage_tags_list(t->st, "nope", NULL, 10, &l), ZN_ENOENT);
    free(a.manifest);
}

/* Each bad manifest fails with `want` and leaves index.json byte-identical. */
static void expect_bad(t_store_t *t, const char *ct, const char *body, zn_err_t want)
{
    zn_storage_put_t res;
    char *before = read_index(t, "r");
    assert_int_equal(put(t, "r", "bad", ct, body, &res), want);
    char *after = read_index(t, "r");
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_invalid(void **state)
{
    t_store_t *t = *state;
    struct img a = push_image(t, "r", "layer-a");
    zn_digest_t missing;
    char body[2048];

    zn_digest_of(ZN_DIGEST_SHA256, "missing", 7, &missing);
    expect_bad(t, OCI_MT, "not json", ZN_EINVAL);
    expect_bad(t, OCI_MT, "[]", ZN_EINVAL);
    expect_bad(t, OCI_MT, "{\"schemaVersion\":1}", ZN_EINVAL);
    expect_bad(t, OCI_MT, "{\"schemaVersion\":\"2\"}", ZN_EINVAL);
    expect_bad(t, OCI_MT, "{\"schemaVersion\":2,\"config\":{}}", ZN_EINVAL);
    expect_bad(t, OCI_MT, "{\"schemaVersion\":2,\"schemaVersion\":2}", ZN_EINVAL);
    expect_bad(t, "application/vnd.docker.distribution.manifest.v2+json", a.manifest, ZN_EINVAL); /* type clash */
    expect_bad(t, "application/vnd.docker.distribution.manifest.v1+prettyjws", "{\"schemaVersion\":1}", ZN_EINVAL);
    expect_bad(t, OCI_MT, "{\"schemaVersion\":2,\"mediaType\":\"text/plain\",\"config\":{},\"layers\":[]}", ZN_EINVAL);
    char *m = t_manifest(&a.config, 2, &missing, 7, NULL, NULL);
    expect_bad(t, OCI_MT, m, ZN_ENOENT);
    free(m);
    m = t_manifest(&missing, 2, &a.layer, 7, NULL, NULL);
    expect_bad(t, OCI_MT, m, ZN_ENOENT);
    free(m);
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":"
             "[{\"mediaType\":\"" OCI_MT "\",\"digest\":\"%s\",\"size\":7}]}",
             missing.str);
    expect_bad(t, NULL, body, ZN_ENOENT);
    expect_bad(t, OCI_MT,
               "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"sha256:zz\",\"size\":2},\"layers\":[]}",
               ZN_EINVAL);
    /* a too-big manifest */
    char *big = malloc((4 << 20) + 2);
    memset(big, ' ', (4 << 20) + 1);
    big[(4 << 20) + 1] = '\0';
    expect_bad(t, OCI_MT, big, ZN_ETOOBIG);
    free(big);
    free(a.manifest);
}

static void test_index_and_docker(void **state)
{
    t_store_t *t = *state;
    struct img a = push_image(t, "r", "layer-a");
    zn_storage_put_t res, child;
    zn_storage_manifest_t m;
    char body[2048];

    /* Docker schema2 without Content-Type: the body's mediaType decides */
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
             "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"%s\",\"size\":2},"
             "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"%s\","
             "\"size\":7}]}",
             a.config.str, a.layer.str);
    assert_int_equal(put(t, "r", "docker", NULL, body, &res), ZN_OK);
    assert_int_equal(zn_storage_manifest_get(t->st, "r", "docker", false, &m), ZN_OK);
    assert_string_equal(m.media_type, "application/vnd.docker.distribution.manifest.v2+json");
    assert_int_equal(put(t, "r", NULL, OCI_MT, a.manifest, &child), ZN_OK);
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.list.v2+json\","
             "\"manifests\":[{\"mediaType\":\"" OCI_MT "\",\"digest\":\"%s\",\"size\":%zu,"
             "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}],\"x-unknown\":{\"kept\":true}}",
             child.digest.str, strlen(a.manifest));
    assert_int_equal(put(t, "r", "list", NULL, body, &res), ZN_OK);
    assert_int_equal(zn_storage_manifest_get(t->st, "r", "list", true, &m), ZN_OK);
    assert_string_equal(m.media_type, "application/vnd.docker.distribution.manifest.list.v2+json");
    assert_string_equal(m.bytes, body);
    zn_storage_manifest_release(&m);
    free(a.manifest);
}

/* Several tags in one PUT: all point at the manifest, moved ones included; one bad tag and
 * nothing is stored. */
static void test_put_tags(void **state)
{
    t_store_t *t = *state;
    struct img a = push_image(t, "r", "layer-a"), b = push_image(t, "r", "layer-b");
    const char *tags[] = {"x", "y", "x", "moved"}, *bad[] = {"ok", "-no"};
    zn_storage_put_t res;
    zn_storage_manifest_t m;
    zn_storage_list_t l;
    zn_digest_t d;
    char detail[256];

    assert_int_equal(put(t, "r", "moved", OCI_MT, a.manifest, &res), ZN_OK);
    zn_digest_of(ZN_DIGEST_SHA512, b.manifest, strlen(b.manifest), &d);
    assert_int_equal(zn_storage_manifest_put_tags(t->st, "r", tags, 4, &d, OCI_MT, b.manifest, strlen(b.manifest), &res, detail,
                                                  sizeof(detail)),
                     ZN_OK);
    assert_true(zn_digest_eq(&res.digest, &d));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(zn_storage_manifest_get(t->st, "r", tags[i], false, &m), ZN_OK);
        assert_true(zn_digest_eq(&m.digest, &d));
    }
    char rel[300];
    snprintf(rel, sizeof(rel), "r/blobs/sha512/%s", d.str + 7);
    assert_true(t_exists(t, rel));
    assert_int_equal(zn_storage_tags_list(t->st, "r", NULL, SIZE_MAX, &l), ZN_OK);
    assert_int_equal(l.count, 3); /* moved, x, y: the digest's entries, no duplicate */
    zn_storage_list_release(&l);
    /* all or nothing */
    char *before = read_index(t, "r");
    struct img c = push_image(t, "r", "layer-c");
    assert_int_equal(zn_storage_manifest_put_tags(t->st, "r", bad, 2, NULL, OCI_MT, c.manifest, strlen(c.manifest), &res, detail,
                                                  sizeof(detail)),
                     ZN_EINVAL);
    char *after = read_index(t, "r");
    assert_string_equal(before, after);
    assert_int_equal(zn_storage_manifest_get(t->st, "r", "ok", false, &m), ZN_ENOENT);
    free(before);
    free(after);
    free(a.manifest);
    free(b.manifest);
    free(c.manifest);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_tag_moves_and_deletes, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_manifest_cache, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_peek, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_tags_list, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_invalid, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_index_and_docker, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_put_tags, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
