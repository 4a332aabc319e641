/*
 * test/fuzz/fuzz_manifest.c - validation of pushed manifests and indexes (storage/
 * manifest_check.c st_manifest_check), run against a throw-away store whose repository
 * "fuzz/repo" holds one blob, the 2 bytes "{}" (sha256:44136fa3...), so the seeds can reach
 * the existence checks and past them. Input: "<Content-Type>\n<body>". An accepted manifest
 * has a known media type and a canonical subject digest; a rejection says why.
 */
#include <ftw.h>
#include <pthread.h>
#include <unistd.h>

#include "fuzz.h"
#include "storage/internal.h"

static char root[64];
static zn_config_t cfg;
static zn_storage_t *st;

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void cleanup(void)
{
    zn_storage_free(st);
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256], uuid[ZN_UUID_LEN + 1];
    zn_upload_t *up;
    zn_digest_t d;

    fz_quiet_logs();
    snprintf(root, sizeof(root), "/tmp/zn-fuzz-XXXXXX");
    if (mkdtemp(root) == NULL)
        abort();
    cfg.storage.root_directory = root;
    cfg.storage.max_blob_size = 1 << 20;
    cfg.storage.max_manifest_size = 4 << 20;
    if (zn_storage_open(&cfg, &st, err, sizeof(err)) != ZN_OK) {
        fprintf(stderr, "fuzz_manifest: %s\n", err);
        abort();
    }
    /* Nothing of the store runs beside the fuzzer: wait for the dedupe-index rebuild the
     * open started (an empty store: it only writes the index). Left running, it could still
     * be in RAND_bytes when main returned and OpenSSL's atexit cleanup had freed its state
     * (a SEGV in a loaded CI run). */
    if (st->rebuild_started) {
        pthread_join(st->rebuild_thread, NULL);
        st->rebuild_started = false;
    }
    atexit(cleanup);
    zn_digest_of(ZN_DIGEST_SHA256, "{}", 2, &d);
    if (zn_storage_upload_start(st, "fuzz/repo", uuid, &up) != ZN_OK || zn_storage_upload_write(up, "{}", 2) != ZN_OK ||
        zn_storage_upload_finish(up, &d) != ZN_OK)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n;
    char *body, *ct = fz_head_body(data, size, &body, &n);

    st_manifest_check_t out;
    char detail[160];
    zn_err_t err = st_manifest_check(st, "fuzz/repo", ct[0] != '\0' ? ct : NULL, body, n, false, &out, detail, sizeof(detail));
    FZ_CHECK(err == ZN_OK || err == ZN_EINVAL || err == ZN_ENOENT || err == ZN_EUNSUPP);
    if (err == ZN_OK) {
        FZ_CHECK(strcmp(out.media_type, "application/vnd.oci.image.manifest.v1+json") == 0 ||
                 strcmp(out.media_type, "application/vnd.oci.image.index.v1+json") == 0 ||
                 strcmp(out.media_type, "application/vnd.docker.distribution.manifest.v2+json") == 0 ||
                 strcmp(out.media_type, "application/vnd.docker.distribution.manifest.list.v2+json") == 0);
        if (out.has_subject) {
            zn_digest_t again;
            FZ_CHECK(zn_digest_parse(zn_slice(out.subject.str, out.subject.len), &again) == ZN_OK);
        }
    } else {
        FZ_CHECK(memchr(detail, '\0', sizeof(detail)) != NULL && detail[0] != '\0');
    }
    free(body);
    free(ct);
    return 0;
}
