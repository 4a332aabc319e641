/*
 * test/unit/storage/st_helpers.h - a throw-away store for storage unit tests: a temp root,
 * a config pointing at it, and helpers to push blobs and manifests.
 */
#ifndef ZN_TEST_ST_HELPERS_H
#define ZN_TEST_ST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage.h"

typedef struct t_store {
    char root[128];
    zn_config_t cfg;
    zn_storage_t *st;
} t_store_t;

static inline int t_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static inline t_store_t *t_store_open_cfg(bool dedupe, bool commit)
{
    t_store_t *t = calloc(1, sizeof(*t));
    char err[256];
    snprintf(t->root, sizeof(t->root), "/tmp/zn-st-XXXXXX");
    assert_non_null(mkdtemp(t->root));
    t->cfg.storage.root_directory = t->root;
    t->cfg.storage.dedupe = dedupe;
    t->cfg.storage.commit = commit;
    t->cfg.storage.max_blob_size = 1 << 20;
    t->cfg.storage.max_manifest_size = 4 << 20;
    assert_int_equal(zn_storage_open(&t->cfg, &t->st, err, sizeof(err)), ZN_OK);
    return t;
}

/* Waits for the background dedupe-index rebuild a fresh store starts (it writes files too,
 * which matters to tests that inject I/O failures). */
static inline void t_wait_rebuild(const t_store_t *t)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/.zinc/dedupe/.complete", t->root);
    for (int i = 0; i < 500 && access(path, F_OK) != 0; i++)
        usleep(10000);
    assert_int_equal(access(path, F_OK), 0);
}

static inline t_store_t *t_store_open(void)
{
    return t_store_open_cfg(true, false);
}

static inline void t_store_close(t_store_t *t)
{
    zn_storage_free(t->st);
    nftw(t->root, t_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(t);
}

static inline int t_setup(void **state)
{
    *state = t_store_open();
    return 0;
}

static inline int t_teardown(void **state)
{
    t_store_close(*state);
    return 0;
}

/* Pushes bytes as a blob of repo through an upload session; returns its digest. */
static inline zn_digest_t t_push_blob(zn_storage_t *st, const char *repo, const char *bytes, size_t len)
{
    char uuid[ZN_UUID_LEN + 1];
    zn_upload_t *up;
    zn_digest_t d;
    zn_digest_of(ZN_DIGEST_SHA256, bytes, len, &d);
    assert_int_equal(zn_storage_upload_start(st, repo, uuid, &up), ZN_OK);
    assert_int_equal(zn_storage_upload_write(up, bytes, len), ZN_OK);
    assert_int_equal(zn_storage_upload_finish(up, &d), ZN_OK);
    return d;
}

static inline bool t_exists(const t_store_t *t, const char *rel)
{
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%s", t->root, rel);
    return stat(path, &sb) == 0;
}

/* An OCI image manifest naming config and one layer (and a subject digest if not NULL). */
static inline char *t_manifest(const zn_digest_t *config, size_t config_len, const zn_digest_t *layer, size_t layer_len,
                        const char *subject, const char *artifact_type)
{
    char *out = malloc(4096);
    char extra[512] = "";
    if (subject != NULL)
        snprintf(extra, sizeof(extra), ",\"subject\":{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                                       "\"digest\":\"%s\",\"size\":123}", subject);
    if (artifact_type != NULL)
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), ",\"artifactType\":\"%s\"", artifact_type);
    snprintf(out, 4096,
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
             "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
             "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%zu}],"
             "\"annotations\":{\"a\":\"b\"}%s}",
             config->str, config_len, layer->str, layer_len, extra);
    return out;
}

#endif
