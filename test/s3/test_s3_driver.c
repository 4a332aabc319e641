/*
 * The S3 driver (storage/s3_driver.c) against a real S3 engine: the driver contract of
 * test/unit/storage/test_driver.c run unchanged on a store whose storageDriver is S3, then
 * S3-specific cases: a multipart upload session resumed across a store reopen, put_if
 * racing writers, Range reads pinned to the opened version, ListObjectsV2 pagination over
 * more than 1000 keys, the exact keys a store leaves (zot's layout under rootdirectory), and
 * redirectBlobURL: the presigned URL of a blob, fetched without credentials, is its bytes.
 *
 * Run by ctest through test/s3/rgw.py, which starts a private Ceph RGW and passes
 * S3_ENDPOINT / S3_ACCESS_KEY / S3_SECRET_KEY / S3_REGION; every setup makes its own
 * bucket, so cases never see each other's objects. Without those variables it exits 77
 * (skipped): only rgw.py decides to skip, when the Ceph binaries are missing.
 */
#include "test/unit/storage/st_helpers.h"

#include <curl/curl.h>
#include <openssl/sha.h>

#include "storage/internal.h"
#include "storage/s3.h"

static unsigned bucket_seq;

/* A config for a new bucket on the fixture's RGW (created here), with a rootdirectory. */
static void s3_cfg(zn_config_s3_t *c, const char *bucket)
{
    memset(c, 0, sizeof(*c));
    c->name = "s3";
    c->region = getenv("S3_REGION");
    c->bucket = (char *)bucket;
    c->regionendpoint = getenv("S3_ENDPOINT");
    c->rootdirectory = "zot";
    c->accesskey = getenv("S3_ACCESS_KEY");
    c->secretkey = getenv("S3_SECRET_KEY");
    c->secure = false;
    c->forcepathstyle = true; /* RGW on an IP: no bucket.host names */
    c->chunksize = 5u << 20;  /* S3's smallest part, so multipart cases stay small */
}

static void make_bucket(zn_config_s3_t *c)
{
    char err[256];
    st_driver_t *d = st_s3_driver_new(c, err, sizeof(err));
    assert_non_null(d);
    s3_req_t r = {.method = "PUT", .key = NULL, .query = ""};
    assert_int_equal(s3_do((s3_t *)d, &r), ZN_OK);
    d->ops->free(d);
}

static t_store_t *t_s3_store_open(void)
{
    t_store_t *t = calloc(1, sizeof(*t));
    zn_config_s3_t *c = calloc(1, sizeof(*c));
    char *bucket = malloc(64), err[256];
    snprintf(bucket, 64, "zn-%d-%u", (int)getpid(), bucket_seq++);
    s3_cfg(c, bucket);
    make_bucket(c);
    snprintf(t->root, sizeof(t->root), "/tmp/zn-st-XXXXXX");
    assert_non_null(mkdtemp(t->root));
    t->cfg.storage.root_directory = t->root;
    t->cfg.storage.dedupe = true;
    t->cfg.storage.max_blob_size = 64 << 20;
    t->cfg.storage.max_manifest_size = 4 << 20;
    t->cfg.storage.driver = c;
    assert_int_equal(zn_storage_open(&t->cfg, &t->st, err, sizeof(err)), ZN_OK);
    assert_string_equal(t->st->drv->ops->name, "s3");
    assert_true(zn_storage_may_block(t->st));
    return t;
}

static void t_s3_store_close(t_store_t *t)
{
    zn_config_s3_t *c = t->cfg.storage.driver;
    zn_storage_free(t->st);
    nftw(t->root, t_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(c->bucket);
    free(c);
    free(t);
}

/* The contract, on this driver. */
#define t_store_open t_s3_store_open
#define t_store_close t_s3_store_close
#define main contract_main
#include "test/unit/storage/test_driver.c"
#undef main
#undef t_store_open
#undef t_store_close

/* ---- S3-specific -------------------------------------------------------------------------- */

static void fill(char *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (char)(seed >> 56);
    }
}

/* 5 MiB + 1 MiB, close, reopen the store, 5 MiB more (crossing a part), commit: the object
 * is exactly the bytes written, read back through Range reads. */
static void test_multipart_resume(void **state)
{
    c_env_t *e = *state;
    const size_t A = 6u << 20, B = 5u << 20;
    char *data = malloc(A + B), *back = malloc(A + B);
    st_append_t *a;
    uint64_t size;
    bool torn = false;

    fill(data, A + B, 7);
    assert_int_equal(e->ops->append_create(e->d, UPLOAD_KEY, &a), ZN_OK);
    assert_int_equal(e->ops->append_write(a, 0, data, A, &torn), ZN_OK);
    e->ops->append_close(a);
    zn_storage_free(e->t->st);
    char err[256];
    assert_int_equal(zn_storage_open(&e->t->cfg, &e->t->st, err, sizeof(err)), ZN_OK);
    e->d = e->t->st->drv;
    assert_int_equal(e->ops->append_open(e->d, UPLOAD_KEY, &a, &size), ZN_OK);
    assert_int_equal(size, A);
    /* the last MiB (the tail, not a part) reads back; the part does not */
    size_t got;
    assert_int_equal(e->ops->append_read(a, 5u << 20, back, 1u << 20, &got), ZN_OK);
    assert_int_equal(got, 1u << 20);
    assert_memory_equal(back, data + (5u << 20), 1u << 20);
    assert_int_equal(e->ops->append_read(a, 0, back, 16, &got), ZN_EUNSUPP);
    assert_int_equal(e->ops->append_write(a, 0, data, 1, &torn), ZN_EINVAL); /* not at the end */
    assert_int_equal(e->ops->append_write(a, size, data + A, B, &torn), ZN_OK);
    assert_int_equal(e->ops->append_commit(a, e->blob_key, true), ZN_OK);
    e->ops->append_close(a);
    assert_int_equal(e->ops->append_open(e->d, UPLOAD_KEY, &a, &size), ZN_ENOENT);

    st_object_t *o;
    assert_int_equal(e->ops->open(e->d, e->blob_key, &o), ZN_OK);
    assert_int_equal(e->ops->object_size(o), A + B);
    for (size_t off = 0; off < A + B; off += got) {
        assert_int_equal(e->ops->object_read(o, off, back + off, 3u << 20, &got), ZN_OK);
        assert_true(got > 0);
    }
    assert_memory_equal(back, data, A + B);
    e->ops->object_close(o);
    free(data);
    free(back);
}

/* What a crash right after an UploadPart leaves: the tail object saved at the last close
 * (whose bytes now open part 1) beside the part. A second handle opened then stands for
 * the restart: it must count those bytes once (5 MiB), not twice (6 MiB). */
static void test_multipart_crash_window(void **state)
{
    c_env_t *e = *state;
    const size_t T = 1u << 20, W = (4u << 20) + (512u << 10);
    char *data = malloc(T + W);
    st_append_t *a, *b;
    uint64_t size;
    bool torn = false;

    fill(data, T + W, 5);
    assert_int_equal(e->ops->append_create(e->d, UPLOAD_KEY, &a), ZN_OK);
    assert_int_equal(e->ops->append_write(a, 0, data, T, &torn), ZN_OK);
    e->ops->append_close(a); /* tail object: 1 MiB, after 0 parts */
    assert_int_equal(e->ops->append_open(e->d, UPLOAD_KEY, &a, &size), ZN_OK);
    assert_int_equal(size, T);
    assert_int_equal(e->ops->append_write(a, T, data + T, W, &torn), ZN_OK); /* part 1 sent, 512 KiB buffered */
    assert_int_equal(e->ops->append_open(e->d, UPLOAD_KEY, &b, &size), ZN_OK);
    assert_int_equal(size, 5u << 20);
    e->ops->append_close(b);
    e->ops->append_close(a); /* saves the 512 KiB tail after 1 part */
    assert_int_equal(e->ops->append_open(e->d, UPLOAD_KEY, &a, &size), ZN_OK);
    assert_int_equal(size, T + W);
    assert_int_equal(e->ops->append_commit(a, e->blob_key, false), ZN_OK);
    e->ops->append_close(a);
    char *text;
    size_t len;
    assert_int_equal(e->ops->get(e->d, e->blob_key, T + W, &text, &len, NULL), ZN_OK);
    assert_int_equal(len, T + W);
    assert_memory_equal(text, data, T + W);
    free(text);
    free(data);
}

/* Two drivers on one bucket (two replicas). Each remembers the sessions it left, and opens
 * them with a HEAD alone while the tail object is unchanged; a write by the other replica
 * (tail or part) is seen at the next open, and a handle whose remembered tail was replaced
 * meanwhile refuses to append (ZN_EIO) instead of writing over the other's bytes. */
static void test_known_sessions_across_replicas(void **state)
{
    c_env_t *e = *state;
    const size_t T1 = 1u << 20, T2 = 300u << 10, T3 = (4u << 20) + 7, N = T1 + T2 + T3;
    char *data = malloc(N), *back = malloc(N), err[256];
    st_append_t *a, *b;
    uint64_t size;
    bool torn = false;
    size_t got;

    st_driver_t *d2 = st_s3_driver_new(e->t->cfg.storage.driver, err, sizeof(err));
    assert_non_null(d2);
    fill(data, N, 13);
    assert_int_equal(e->ops->append_create(e->d, UPLOAD_KEY, &a), ZN_OK);
    assert_int_equal(e->ops->append_write(a, 0, data, T1 / 2, &torn), ZN_OK);
    e->ops->append_close(a);
    /* known to d: the tail's bytes come on demand, the append lands after them */
    assert_int_equal(e->ops->append_open(e->d, UPLOAD_KEY, &a, &size), ZN_OK);
    assert_int_equal(size, T1 / 2);
    assert_int_equal(e->ops->append_write(a, size, data + size, T1 - size, &torn), ZN_OK);
    e->ops->append_close(a);

    /* d opens (known), then d2 appends and closes: d's stale handle must not append */
    assert_int_equal(e->ops->append_open(e->d, UPLOAD_KEY, &a, &size), ZN_OK);
    assert_int_equal(size, T1);
    assert_int_equal(d2->ops->append_open(d2, UPLOAD_KEY, &b, &size), ZN_OK);
    assert_int_equal(size, T1);
    assert_int_equal(d2->ops->append_write(b, T1, data + T1, T2, &torn), ZN_OK);
    d2->ops->append_close(b);
    assert_int_equal(e->ops->append_write(a, T1, "zz", 2, &torn), ZN_EIO);
    e->ops->append_close(a);

    /* d sees d2's bytes at its next open, and reads them back */
    assert_int_equal(e->ops->append_open(e->d, UPLOAD_KEY, &a, &size), ZN_OK);
    assert_int_equal(size, T1 + T2);
    assert_int_equal(e->ops->append_read(a, 0, back, T1 + T2, &got), ZN_OK);
    assert_int_equal(got, T1 + T2);
    assert_memory_equal(back, data, T1 + T2);
    e->ops->append_close(a);

    /* d2 (which knows the session now) sends a part; d follows again, then commits */
    assert_int_equal(d2->ops->append_open(d2, UPLOAD_KEY, &b, &size), ZN_OK);
    assert_int_equal(size, T1 + T2);
    assert_int_equal(d2->ops->append_write(b, T1 + T2, data + T1 + T2, T3, &torn), ZN_OK);
    d2->ops->append_close(b);
    assert_int_equal(e->ops->append_open(e->d, UPLOAD_KEY, &a, &size), ZN_OK);
    assert_int_equal(size, N);
    assert_int_equal(e->ops->append_commit(a, e->blob_key, false), ZN_OK);
    e->ops->append_close(a);
    char *text;
    size_t len;
    assert_int_equal(e->ops->get(e->d, e->blob_key, N, &text, &len, NULL), ZN_OK);
    assert_int_equal(len, N);
    assert_memory_equal(text, data, N);
    assert_int_equal(d2->ops->append_open(d2, UPLOAD_KEY, &b, &size), ZN_ENOENT);
    free(text);
    d2->ops->free(d2);
    free(data);
    free(back);
}

/* touch moves an object's modification time (GC ages blobs by it) and keeps its bytes.
 * S3 times have one-second resolution: touch until the server's clock has moved on. */
static void test_touch(void **state)
{
    c_env_t *e = *state;
    uint64_t m0, m1 = 0, size;
    char *text;
    size_t len;

    assert_int_equal(e->ops->put(e->d, e->blob_key, "x", 1, false), ZN_OK);
    assert_int_equal(e->ops->stat(e->d, e->blob_key, &size, &m0), ZN_OK);
    assert_true(m0 > 0);
    uint64_t deadline = zn_now_mono_ns() + 20ull * 1000000000ull;
    do {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        e->ops->touch(e->d, e->blob_key);
        assert_int_equal(e->ops->stat(e->d, e->blob_key, &size, &m1), ZN_OK);
    } while (m1 <= m0 && zn_now_mono_ns() < deadline);
    assert_true(m1 > m0);
    assert_int_equal(e->ops->get(e->d, e->blob_key, 16, &text, &len, NULL), ZN_OK);
    assert_string_equal(text, "x");
    free(text);
}

/* GC deletes a stale session by its key: the multipart upload holding its parts goes too. */
static void test_session_delete_aborts(void **state)
{
    c_env_t *e = *state;
    const size_t N = (5u << 20) + 10;
    char *data = malloc(N), id[512];
    st_append_t *a;
    bool torn = false;

    fill(data, N, 11);
    assert_int_equal(e->ops->append_create(e->d, UPLOAD_KEY, &a), ZN_OK);
    assert_int_equal(e->ops->append_write(a, 0, data, N, &torn), ZN_OK);
    e->ops->append_close(a);
    assert_int_equal(s3_upload_find((s3_t *)e->d, UPLOAD_KEY, id, sizeof(id)), ZN_OK);
    assert_true(id[0] != '\0'); /* one part went out */
    assert_int_equal(e->ops->del(e->d, UPLOAD_KEY), ZN_OK);
    assert_int_equal(s3_upload_find((s3_t *)e->d, UPLOAD_KEY, id, sizeof(id)), ZN_OK);
    assert_string_equal(id, "");
    assert_int_equal(e->ops->append_open(e->d, UPLOAD_KEY, &a, &(uint64_t){0}), ZN_ENOENT);
    free(data);
}

/* Range reads of an object larger than what open keeps in memory, and a replaced object
 * reads as ZN_EIO, never as the new version's bytes. */
static void test_range_reads(void **state)
{
    c_env_t *e = *state;
    const size_t N = 1u << 20;
    char *data = malloc(N), buf[4096];
    st_object_t *o;
    size_t got;

    fill(data, N, 3);
    assert_int_equal(e->ops->put(e->d, e->blob_key, data, N, false), ZN_OK);
    assert_int_equal(e->ops->open(e->d, e->blob_key, &o), ZN_OK);
    assert_int_equal(e->ops->object_size(o), N);
    const uint64_t offs[] = {0, 1, 262143, 262144, 500000, N - 4096, N - 1};
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        assert_int_equal(e->ops->object_read(o, offs[i], buf, sizeof(buf), &got), ZN_OK);
        assert_int_equal(got, N - offs[i] < sizeof(buf) ? N - offs[i] : sizeof(buf));
        assert_memory_equal(buf, data + offs[i], got);
    }
    assert_int_equal(e->ops->object_read(o, N, buf, sizeof(buf), &got), ZN_OK);
    assert_int_equal(got, 0);
    data[0] ^= 1;
    assert_int_equal(e->ops->put(e->d, e->blob_key, data, N, false), ZN_OK);
    assert_int_equal(e->ops->object_read(o, 0, buf, sizeof(buf), &got), ZN_EIO);
    e->ops->object_close(o);
    free(data);
}

#define RACERS 8

struct racer {
    c_env_t *e;
    st_version_t from;
    char body[sizeof("writer-") + 11]; /* any int: gcc -O1 checks the whole range */
    _Atomic int *go;
    zn_err_t err;
};

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    while (!*r->go)
        sched_yield();
    r->err = r->e->ops->put_if(r->e->d, INDEX_KEY, r->body, strlen(r->body), &r->from, NULL);
    return NULL;
}

/* Writers holding the same version (and then none, create-only) race: exactly one wins
 * and the object is that winner's. */
static void test_put_if_race(void **state)
{
    c_env_t *e = *state;
    for (int round = 0; round < 2; round++) {
        struct racer r[RACERS];
        pthread_t th[RACERS];
        _Atomic int go = 0;
        st_version_t v = {0};
        if (round == 1) {
            assert_int_equal(e->ops->put(e->d, INDEX_KEY, "base", 4, false), ZN_OK);
            assert_int_equal(e->ops->version(e->d, INDEX_KEY, &v), ZN_OK);
        }
        for (int i = 0; i < RACERS; i++) {
            r[i] = (struct racer){e, v, "", &go, ZN_EIO};
            snprintf(r[i].body, sizeof(r[i].body), "writer-%d", i);
            assert_int_equal(zn_thread_create(&th[i], "t-race", racer_main, &r[i]), 0);
        }
        go = 1;
        int wins = 0, winner = -1;
        for (int i = 0; i < RACERS; i++) {
            pthread_join(th[i], NULL);
            if (r[i].err == ZN_OK) {
                wins++;
                winner = i;
            } else {
                assert_int_equal(r[i].err, ST_ECONFLICT);
            }
        }
        assert_int_equal(wins, 1);
        char *text;
        size_t len;
        assert_int_equal(e->ops->get(e->d, INDEX_KEY, 64, &text, &len, NULL), ZN_OK);
        assert_string_equal(text, r[winner].body);
        free(text);
        assert_int_equal(e->ops->del(e->d, INDEX_KEY), ZN_OK);
    }
}

struct filler {
    c_env_t *e;
    int from, to;
    zn_err_t err;
};

static void *filler_main(void *arg)
{
    struct filler *f = arg;
    char key[64];
    for (int i = f->from; i < f->to && f->err == ZN_OK; i++) {
        snprintf(key, sizeof(key), REPO "/many/k%04d", i);
        f->err = f->e->ops->put(f->e->d, key, "x", 1, false);
    }
    return NULL;
}

static bool collect(void *data, const st_entry_t *en)
{
    char *seen = data;
    int i;
    if (en->is_dir || en->name[0] != 'k' || (i = atoi(en->name + 1)) < 0 || i >= 1100 || en->size != 1)
        return false;
    seen[i]++;
    return true;
}

/* 1100 keys listed in pages of 1000 (S3's largest) and of 128: each seen exactly once. */
static void test_list_pagination(void **state)
{
    c_env_t *e = *state;
    struct filler f[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        f[i] = (struct filler){e, i * 275, (i + 1) * 275, ZN_OK};
        assert_int_equal(zn_thread_create(&th[i], "t-fill", filler_main, &f[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(f[i].err, ZN_OK);
    }
    const unsigned pages[] = {1000, 128};
    for (size_t p = 0; p < 2; p++) {
        char seen[1100] = {0};
        st_s3_driver_set_page_size(e->d, pages[p]);
        assert_int_equal(e->ops->list(e->d, REPO "/many", collect, seen), ZN_OK);
        for (int i = 0; i < 1100; i++)
            assert_int_equal(seen[i], 1);
    }
}

struct keys {
    char names[16][256];
    int n;
};

static bool note_key(void *data, const st_entry_t *en)
{
    struct keys *k = data;
    if (k->n < 16)
        snprintf(k->names[k->n++], 256, "%s%s", en->name, en->is_dir ? "/" : "");
    return true;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* A repository pushed through the storage API leaves exactly zot's keys, under the
 * rootdirectory: listed with a driver on the bare bucket. */
static void test_zot_layout(void **state)
{
    c_env_t *e = *state;
    zn_storage_t *st = e->t->st;
    zn_digest_t layer = t_push_blob(st, "lib/app", "layer-bytes", 11);
    zn_digest_t config = t_push_blob(st, "lib/app", "{}", 2);
    char *m = t_manifest(&config, 2, &layer, 11, NULL, NULL), detail[256];
    zn_storage_put_t res;
    assert_int_equal(zn_storage_manifest_put(st, "lib/app", "v1", NULL, "application/vnd.oci.image.manifest.v1+json", m, strlen(m),
                                             &res, detail, sizeof(detail)),
                     ZN_OK);
    free(m);

    zn_config_s3_t bare = *e->t->cfg.storage.driver;
    bare.rootdirectory = NULL;
    char err[256];
    st_driver_t *d = st_s3_driver_new(&bare, err, sizeof(err));
    struct keys k = {0};
    assert_int_equal(d->ops->list(d, "zot/lib/app", note_key, &k), ZN_OK);
    qsort(k.names, (size_t)k.n, sizeof(k.names[0]), cmp_names);
    assert_int_equal(k.n, 3);
    assert_string_equal(k.names[0], "blobs/");
    assert_string_equal(k.names[1], "index.json");
    assert_string_equal(k.names[2], "oci-layout");
    k.n = 0;
    assert_int_equal(d->ops->list(d, "zot/lib/app/blobs/sha256", note_key, &k), ZN_OK);
    assert_int_equal(k.n, 3); /* config, layer, manifest; no upload session left behind */
    char *text;
    size_t len;
    assert_int_equal(d->ops->get(d, "zot/lib/app/oci-layout", 256, &text, &len, NULL), ZN_OK);
    assert_string_equal(text, "{\"imageLayoutVersion\":\"1.0.0\"}");
    free(text);
    char key[512];
    snprintf(key, sizeof(key), "zot/lib/app/blobs/sha256/%s", layer.str + 7);
    assert_int_equal(d->ops->get(d, key, 256, &text, &len, NULL), ZN_OK);
    assert_string_equal(text, "layer-bytes");
    free(text);
    assert_int_equal(d->ops->get(d, "zot/lib/app/index.json", 1 << 20, &text, &len, NULL), ZN_OK);
    assert_non_null(strstr(text, "\"org.opencontainers.image.ref.name\":\"v1\""));
    assert_non_null(strstr(text, res.digest.str));
    free(text);
    d->ops->free(d);

    /* and the store reads it back after a reopen */
    zn_storage_free(e->t->st);
    assert_int_equal(zn_storage_open(&e->t->cfg, &e->t->st, err, sizeof(err)), ZN_OK);
    e->d = e->t->st->drv;
    zn_storage_manifest_t got;
    assert_int_equal(zn_storage_manifest_get(e->t->st, "lib/app", "v1", true, &got), ZN_OK);
    assert_true(zn_digest_eq(&got.digest, &res.digest));
    zn_storage_manifest_release(&got);
}

/* An upload pushed in three requests (close and reopen between, as PATCHes do) through
 * the storage API: 12 MiB, so parts go out between the requests. */
static void test_upload_in_requests(void **state)
{
    c_env_t *e = *state;
    zn_storage_t *st = e->t->st;
    const size_t N = 4u << 20;
    char *data = malloc(3 * N), uuid[ZN_UUID_LEN + 1];
    zn_upload_t *up;
    zn_digest_t d;

    fill(data, 3 * N, 13);
    zn_digest_of(ZN_DIGEST_SHA256, data, 3 * N, &d);
    assert_int_equal(zn_storage_upload_start(st, "big", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_write(up, data, N), ZN_OK);
    zn_storage_upload_close(up);
    for (int i = 1; i < 3; i++) {
        assert_int_equal(zn_storage_upload_open(st, "big", uuid, &up), ZN_OK);
        assert_int_equal(zn_storage_upload_write(up, data + (size_t)i * N, N), ZN_OK);
        if (i < 2)
            zn_storage_upload_close(up);
    }
    assert_int_equal(zn_storage_upload_finish(up, &d), ZN_OK);
    zn_storage_blob_t *b;
    assert_int_equal(zn_storage_blob_open(st, "big", &d, &b), ZN_OK);
    char *back = malloc(3 * N);
    size_t got;
    for (size_t off = 0; off < 3 * N; off += got) {
        assert_int_equal(zn_storage_blob_read(b, off, back + off, 1u << 20, &got), ZN_OK);
        assert_true(got > 0);
    }
    assert_memory_equal(back, data, 3 * N);
    zn_storage_blob_close(b);
    free(back);
    free(data);
}

static void restart_store(c_env_t *e)
{
    char err[256];
    zn_storage_free(e->t->st);
    assert_int_equal(zn_storage_open(&e->t->cfg, &e->t->st, err, sizeof(err)), ZN_OK);
    e->d = e->t->st->drv;
}

static void check_blob(zn_storage_t *st, const char *repo, const zn_digest_t *d, const char *data, size_t n)
{
    zn_storage_blob_t *b;
    char *back = malloc(n);
    size_t got;
    assert_int_equal(zn_storage_blob_open(st, repo, d, &b), ZN_OK);
    for (size_t off = 0; off < n; off += got) {
        assert_int_equal(zn_storage_blob_read(b, off, back + off, 1u << 20, &got), ZN_OK);
        assert_true(got > 0);
    }
    assert_memory_equal(back, data, n);
    zn_storage_blob_close(b);
    free(back);
}

/* An upload continued after a restart (or on another replica) past its first part: the
 * hash state kept with the tail object resumes the digest, since the parts of an
 * unfinished multipart upload cannot be read back. A wrong digest is still refused and
 * nothing is published. */
static void test_upload_restart_resumes(void **state)
{
    c_env_t *e = *state;
    const size_t N1 = (5u << 20) + 1, N2 = 6u << 20, N3 = (1u << 20) + 3, N = N1 + N2 + N3;
    char *data = malloc(N), uuid[ZN_UUID_LEN + 1], uuid2[ZN_UUID_LEN + 1];
    zn_upload_t *up;
    zn_digest_t d, wrong;

    fill(data, N, 17);
    zn_digest_of(ZN_DIGEST_SHA256, data, N, &d);
    zn_digest_of(ZN_DIGEST_SHA256, data, N - 1, &wrong);
    for (int pass = 0; pass < 2; pass++) {
        char *id = pass == 0 ? uuid : uuid2;
        assert_int_equal(zn_storage_upload_start(e->t->st, "big", id, &up), ZN_OK);
        assert_int_equal(zn_storage_upload_write(up, data, N1), ZN_OK);
        zn_storage_upload_close(up);
        restart_store(e);
        assert_int_equal(zn_storage_upload_open(e->t->st, "big", id, &up), ZN_OK);
        assert_int_equal(zn_storage_upload_size(up), N1);
        assert_int_equal(zn_storage_upload_write(up, data + N1, N2), ZN_OK);
        zn_storage_upload_close(up);
        restart_store(e);
        assert_int_equal(zn_storage_upload_open(e->t->st, "big", id, &up), ZN_OK);
        assert_int_equal(zn_storage_upload_size(up), N1 + N2);
        assert_int_equal(zn_storage_upload_write(up, data + N1 + N2, N3), ZN_OK);
        if (pass == 0) {
            assert_int_equal(zn_storage_upload_finish(up, &wrong), ZN_EDIGEST);
            zn_storage_blob_t *b;
            assert_int_equal(zn_storage_blob_open(e->t->st, "big", &wrong, &b), ZN_ENOENT);
            assert_int_equal(zn_storage_blob_open(e->t->st, "big", &d, &b), ZN_ENOENT);
        } else {
            assert_int_equal(zn_storage_upload_finish(up, &d), ZN_OK);
        }
    }
    check_blob(e->t->st, "big", &d, data, N);
    free(data);
}

/* Reads a session's tail object: its bytes and what its metadata says. */
static void tail_get(c_env_t *e, const char *key, zn_buf_t *body, uint64_t *parts, char *sha)
{
    s3_req_t r = {.method = "GET", .key = key, .query = "", .out = body};
    assert_int_equal(s3_do((s3_t *)e->d, &r), ZN_OK);
    assert_true(r.has_zinc_parts && r.has_zinc_sha256);
    *parts = r.zinc_parts;
    memcpy(sha, r.zinc_sha256, ZN_HASH_STATE_MAX);
}

static void tail_put_raw(c_env_t *e, const char *key, const zn_buf_t *body, uint64_t parts, const char *sha)
{
    char n[24];
    snprintf(n, sizeof(n), "%llu", (unsigned long long)parts);
    s3_req_t r = {.method = "PUT", .key = key, .query = "", .body = body->p, .body_len = body->len};
    s3_req_hdr(&r, "x-amz-meta-zinc-parts", n);
    s3_req_hdr(&r, "x-amz-meta-zinc-sha256", sha);
    assert_int_equal(s3_do((s3_t *)e->d, &r), ZN_OK);
}

/* A crash between an UploadPart and the tail write, with the hash state: the tail object
 * left (3 MiB, after 0 parts, its state) predates part 1. The session goes back to the tail
 * and sends part 1 again; the blob is exactly the bytes the client sent after the 3 MiB it
 * was told of. With two parts past the tail (RGW would refuse a completion leaving out the
 * stale second one), or a tampered state, the session is refused cleanly (ZN_EUNSUPP: the
 * parts cannot be re-read) and nothing is published. */
static void test_upload_crash_window_with_state(void **state)
{
    c_env_t *e = *state;
    const size_t T = 3u << 20, W = 4u << 20, R = 2u << 20, W2 = 8u << 20;
    char *data = malloc(T + W2), uuid[ZN_UUID_LEN + 1], key[PATH_MAX], sha[ZN_HASH_STATE_MAX], id[512];
    zn_upload_t *up;
    zn_buf_t old;
    uint64_t parts;
    zn_digest_t d;

    fill(data, T + W2, 23);
    assert_int_equal(zn_storage_upload_start(e->t->st, "crash", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_write(up, data, T), ZN_OK);
    zn_storage_upload_close(up);
    snprintf(key, sizeof(key), "crash/.uploads/%s", uuid);
    zn_buf_init(&old, 8u << 20);
    tail_get(e, key, &old, &parts, sha);
    assert_int_equal(parts, 0);
    assert_int_equal(old.len, T);

    assert_int_equal(zn_storage_upload_open(e->t->st, "crash", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_write(up, data + T, W), ZN_OK); /* part 1, 2 MiB tail */
    zn_storage_upload_close(up);
    tail_put_raw(e, key, &old, 0, sha); /* as if the process died before writing the tail */
    restart_store(e);

    assert_int_equal(zn_storage_upload_open(e->t->st, "crash", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_size(up), T);
    assert_int_equal(zn_storage_upload_write(up, data + T, R), ZN_OK); /* part 1 again, exactly */
    zn_digest_of(ZN_DIGEST_SHA256, data, T + R, &d);
    assert_int_equal(zn_storage_upload_finish(up, &d), ZN_OK);
    check_blob(e->t->st, "crash", &d, data, T + R);
    assert_int_equal(s3_upload_find((s3_t *)e->d, key, id, sizeof(id)), ZN_OK);
    assert_string_equal(id, ""); /* completed: no multipart upload left open */

    /* two parts past the tail object: refused, not completed short */
    assert_int_equal(zn_storage_upload_start(e->t->st, "crash", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_write(up, data, T), ZN_OK);
    zn_storage_upload_close(up);
    snprintf(key, sizeof(key), "crash/.uploads/%s", uuid);
    old.len = 0;
    tail_get(e, key, &old, &parts, sha);
    assert_int_equal(zn_storage_upload_open(e->t->st, "crash", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_write(up, data + T, W2), ZN_OK); /* parts 1 and 2, 1 MiB tail */
    zn_storage_upload_close(up);
    tail_put_raw(e, key, &old, 0, sha);
    restart_store(e);
    assert_int_equal(zn_storage_upload_open(e->t->st, "crash", uuid, &up), ZN_EUNSUPP);
    assert_null(up);

    /* a state that does not parse is ignored: past a part the session cannot go on */
    assert_int_equal(zn_storage_upload_start(e->t->st, "crash", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_write(up, data, (5u << 20) + 9), ZN_OK);
    zn_storage_upload_close(up);
    snprintf(key, sizeof(key), "crash/.uploads/%s", uuid);
    old.len = 0;
    tail_get(e, key, &old, &parts, sha);
    assert_int_equal(parts, 1);
    sha[strlen(sha) - 1] = 'x';
    tail_put_raw(e, key, &old, 1, sha);
    restart_store(e);
    assert_int_equal(zn_storage_upload_open(e->t->st, "crash", uuid, &up), ZN_EUNSUPP);
    assert_null(up);
    zn_buf_release(&old);
    free(data);
}

/* Multipart uploads open anywhere in the bucket (ListMultipartUploads). */
static int open_uploads(c_env_t *e)
{
    zn_buf_t b;
    int n = 0;
    zn_buf_init(&b, 1u << 20);
    s3_req_t r = {.method = "GET", .key = NULL, .query = "uploads", .out = &b};
    assert_int_equal(s3_do((s3_t *)e->d, &r), ZN_OK);
    for (const char *p = b.p; p != NULL && (p = memmem(p, b.len - (size_t)(p - b.p), "<Upload>", 8)) != NULL; p += 8)
        n++;
    zn_buf_release(&b);
    return n;
}

/* Objects past CopyObject's 5 GiB limit are copied with UploadPartCopy: with the limit
 * lowered to 6 MiB (and 7 MiB copy parts), a 13 MiB push commits through a multipart copy,
 * a cross-repository mount and GC's touch copy it the same way, the bytes stay exact, the
 * mtime moves, and no multipart upload is left open. A copy that fails (its source gone)
 * aborts its upload. */
static void test_copy_past_copy_limit(void **state)
{
    c_env_t *e = *state;
    s3_t *s = (s3_t *)e->d;
    const size_t N = (13u << 20) + 7;
    char *data = malloc(N), key[PATH_MAX];
    zn_digest_t d;
    uint64_t size, m1, m2;

    s->copy_max = 6u << 20;
    s->copy_part = 7u << 20;
    fill(data, N, 31);
    d = t_push_blob(e->t->st, "big/src", data, N);
    check_blob(e->t->st, "big/src", &d, data, N);
    /* the blob is the copy's two 7 MiB-range parts, not the session's three 5 MiB parts */
    assert_int_equal(st_blob_key(key, "big/src", &d), ZN_OK);
    s3_req_t h = {.method = "HEAD", .key = key, .query = ""};
    assert_int_equal(s3_do(s, &h), ZN_OK);
    assert_true(h.etag.len > 2 && memcmp(h.etag.v + h.etag.len - 2, "-2", 2) == 0);
    assert_int_equal(zn_storage_blob_mount(e->t->st, "big/dst", "big/src", &d), ZN_OK);
    check_blob(e->t->st, "big/dst", &d, data, N);
    assert_int_equal(open_uploads(e), 0);

    assert_int_equal(st_blob_key(key, "big/dst", &d), ZN_OK);
    assert_int_equal(e->ops->stat(e->d, key, &size, &m1), ZN_OK);
    assert_int_equal(size, N);
    struct timespec ts = {1, 100000000}; /* S3 mtimes have 1 s resolution */
    nanosleep(&ts, NULL);
    e->ops->touch(e->d, key);
    assert_int_equal(e->ops->stat(e->d, key, &size, &m2), ZN_OK);
    assert_int_equal(size, N);
    assert_true(m2 > m1);
    check_blob(e->t->st, "big/dst", &d, data, N);

    assert_int_equal(s3_copy_object(s, "big/none", "big/copy", N, false), ZN_ENOENT);
    assert_int_equal(e->ops->stat(e->d, "big/copy", &size, NULL), ZN_ENOENT);
    assert_int_equal(open_uploads(e), 0);
    free(data);
}

/* Catalog, tags and GC run on S3: an orphan blob and a stale upload session go, the
 * tagged image's blobs stay, another repository is untouched. */
static void test_gc_and_catalog(void **state)
{
    c_env_t *e = *state;
    zn_storage_t *st = e->t->st;
    zn_storage_list_t l;
    /* an empty bucket is an empty catalog, not an unreadable root */
    assert_int_equal(zn_storage_catalog(st, NULL, SIZE_MAX, NULL, NULL, &l), ZN_OK);
    assert_int_equal(l.count, 0);
    zn_storage_list_release(&l);
    zn_digest_t layer = t_push_blob(st, "lib/app", "layer", 5);
    zn_digest_t config = t_push_blob(st, "lib/app", "{}", 2);
    zn_digest_t orphan = t_push_blob(st, "lib/app", "orphan", 6);
    zn_digest_t other = t_push_blob(st, "other", "kept", 4);
    char *m = t_manifest(&config, 2, &layer, 5, NULL, NULL), detail[256], uuid[ZN_UUID_LEN + 1];
    zn_storage_put_t res;
    zn_upload_t *up;
    assert_int_equal(zn_storage_manifest_put(st, "lib/app", "v1", NULL, "application/vnd.oci.image.manifest.v1+json", m, strlen(m),
                                             &res, detail, sizeof(detail)),
                     ZN_OK);
    free(m);
    assert_int_equal(zn_storage_upload_start(st, "lib/app", uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_write(up, "partial", 7), ZN_OK);
    zn_storage_upload_close(up);

    assert_int_equal(zn_storage_catalog(st, NULL, SIZE_MAX, NULL, NULL, &l), ZN_OK);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.names[0], "lib/app");
    assert_string_equal(l.names[1], "other");
    zn_storage_list_release(&l);
    assert_int_equal(zn_storage_tags_list(st, "lib/app", NULL, 10, &l), ZN_OK);
    assert_int_equal(l.count, 1);
    assert_string_equal(l.names[0], "v1");
    zn_storage_list_release(&l);

    zn_storage_gc_stats_t gs;
    uint64_t later = zn_now_wall_ns() + 3600ull * 1000000000ull;
    assert_int_equal(zn_storage_gc_repo(st, "lib/app", later, &gs), ZN_OK);
    assert_int_equal(gs.blobs, 1);
    assert_int_equal(gs.uploads, 1);
    uint64_t size;
    assert_int_equal(zn_storage_blob_stat(st, "lib/app", &orphan, &size), ZN_ENOENT);
    assert_int_equal(zn_storage_blob_stat(st, "lib/app", &layer, &size), ZN_OK);
    assert_int_equal(zn_storage_blob_stat(st, "lib/app", &config, &size), ZN_OK);
    assert_int_equal(zn_storage_blob_stat(st, "other", &other, &size), ZN_OK);
    zn_storage_manifest_t got;
    assert_int_equal(zn_storage_manifest_get(st, "lib/app", "v1", false, &got), ZN_OK);
    zn_storage_manifest_release(&got);
}

static size_t collect_body(char *p, size_t size, size_t n, void *data)
{
    zn_buf_t *b = data;
    return zn_buf_append(b, p, size * n) == ZN_OK ? size * n : 0;
}

/* GET url with no credentials of ours; the status, and the body into b. */
static long fetch_url(const char *url, zn_buf_t *b)
{
    long status = 0;
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

/* storage.redirectBlobURL: a blob's redirect URL is a presigned GET that RGW answers with
 * the blob's bytes to a client holding no credentials; a tampered one is refused; with the
 * option off there is no URL. */
static void test_redirect_url(void **state)
{
    c_env_t *e = *state;
    zn_storage_t *st = e->t->st;
    const size_t N = (1u << 20) + 17;
    char *data = malloc(N);
    zn_storage_blob_t *b;
    zn_buf_t got;

    fill(data, N, 11);
    zn_digest_t d = t_push_blob(st, "lib/redirect", data, N);
    assert_int_equal(zn_storage_blob_open(st, "lib/redirect", &d, &b), ZN_OK);
    assert_null(zn_storage_blob_redirect_url(b)); /* off by default */
    zn_storage_blob_close(b);

    e->t->cfg.storage.redirect_blob_url = true;
    assert_int_equal(zn_storage_blob_open(st, "lib/redirect", &d, &b), ZN_OK);
    const char *url = zn_storage_blob_redirect_url(b);
    assert_non_null(url);
    assert_non_null(strstr(url, "/lib/redirect/blobs/sha256/"));
    assert_non_null(strstr(url, "X-Amz-Signature="));
    assert_ptr_equal(zn_storage_blob_redirect_url(b), url); /* made once per open */
    zn_buf_init(&got, 4u << 20);
    assert_int_equal(fetch_url(url, &got), 200);
    assert_int_equal(got.len, N);
    assert_memory_equal(got.p, data, N);
    zn_buf_release(&got);

    /* the signature covers the key: another key with the same query is refused */
    char *other = strdup(url);
    char *hex = strstr(other, "/blobs/sha256/") + strlen("/blobs/sha256/");
    hex[0] = hex[0] == '0' ? '1' : '0';
    zn_buf_init(&got, 1u << 20);
    assert_int_equal(fetch_url(other, &got), 403);
    zn_buf_release(&got);
    free(other);
    zn_storage_blob_close(b);
    e->t->cfg.storage.redirect_blob_url = false;
    free(data);
}

int main(void)
{
    if (getenv("S3_ENDPOINT") == NULL) {
        fprintf(stderr, "no S3_ENDPOINT: run through test/s3/rgw.py (ctest does)\n");
        return 77;
    }
    int failed = contract_main();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_multipart_resume, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_multipart_crash_window, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_known_sessions_across_replicas, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_session_delete_aborts, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_touch, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_range_reads, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_put_if_race, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_list_pagination, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_zot_layout, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_gc_and_catalog, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_upload_in_requests, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_upload_restart_resumes, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_upload_crash_window_with_state, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_redirect_url, c_setup, c_teardown),
        cmocka_unit_test_setup_teardown(test_copy_past_copy_limit, c_setup, c_teardown),
    };
    return failed | cmocka_run_group_tests_name("s3", tests, NULL, NULL);
}
