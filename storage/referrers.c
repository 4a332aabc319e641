/*
 * storage/referrers.c - the referrers API: which manifests of a repository name a given
 * subject.
 *
 * Answering needs each manifest's subject and artifact type; manifests are immutable, so
 * what was read once is cached by digest (st_minfo_t, bounded: the table is emptied when
 * full). Cached entries are read-only; descriptors for a response are built under the
 * cache lock from deep copies, so an eviction never frees what a response uses.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"

#define ST_MINFO_MAX 65536

typedef struct st_minfo {
    bool has_subject;
    zn_digest_t subject;
    char *artifact_type; /* artifactType, else config.mediaType, else NULL */
    json_t *annotations; /* NULL if none */
} st_minfo_t;

void st_minfo_free(void *p)
{
    st_minfo_t *info = p;
    if (info == NULL)
        return;
    free(info->artifact_type);
    json_decref(info->annotations);
    free(info);
}

static json_t *load_manifest(zn_storage_t *st, const char *repo, const zn_digest_t *d)
{
    char key[PATH_MAX], *text = NULL;
    size_t len;
    if (st_blob_key(key, repo, d) != ZN_OK || st_ops(st)->get(st->drv, key, ST_INDEX_MAX, &text, &len, NULL) != ZN_OK)
        return NULL;
    json_t *root = json_loadb(text, len, 0, NULL);
    free(text);
    if (!json_is_object(root)) {
        json_decref(root);
        return NULL;
    }
    return root;
}

static st_minfo_t *minfo_load(zn_storage_t *st, const char *repo, const zn_digest_t *d)
{
    json_t *root = load_manifest(st, repo, d);
    if (root == NULL)
        return NULL;
    st_minfo_t *info = zn_calloc(1, sizeof(*info));
    const char *subject = json_string_value(json_object_get(json_object_get(root, "subject"), "digest"));
    if (subject != NULL && zn_digest_parse(zn_slice(subject, strlen(subject)), &info->subject) == ZN_OK)
        info->has_subject = true;
    const char *at = json_string_value(json_object_get(root, "artifactType"));
    if (at == NULL)
        at = json_string_value(json_object_get(json_object_get(root, "config"), "mediaType"));
    if (at != NULL)
        info->artifact_type = zn_strdup(at);
    json_t *ann = json_object_get(root, "annotations");
    if (json_is_object(ann) && json_object_size(ann) != 0)
        info->annotations = json_deep_copy(ann);
    json_decref(root);
    return info;
}

/* Appends to `out` the referrer descriptor for index entry `desc` if it names subject. */
static void add_if_referrer(zn_storage_t *st, const char *repo, json_t *desc, const zn_digest_t *subject,
                            const char *filter, json_t *out)
{
    const char *digest = st_desc_digest(desc);
    zn_digest_t d;
    if (digest == NULL || zn_digest_parse(zn_slice(digest, strlen(digest)), &d) != ZN_OK)
        return;
    zn_mutex_lock(&st->info_lock);
    st_minfo_t *info = st_map_get(&st->infos, digest);
    zn_mutex_unlock(&st->info_lock);
    if (info == NULL) {
        if ((info = minfo_load(st, repo, &d)) == NULL)
            return;
        zn_mutex_lock(&st->info_lock);
        if (st->infos.count >= ST_MINFO_MAX) {
            st_map_release(&st->infos, st_minfo_free);
            st_map_init(&st->infos);
        }
        st_minfo_free(st_map_put(&st->infos, digest, info));
        zn_mutex_unlock(&st->info_lock);
    }
    zn_mutex_lock(&st->info_lock);
    info = st_map_get(&st->infos, digest);
    if (info != NULL && info->has_subject && zn_digest_eq(&info->subject, subject) &&
        (filter == NULL || (info->artifact_type != NULL && strcmp(info->artifact_type, filter) == 0))) {
        json_t *r = json_pack("{s:O,s:s,s:O}", "mediaType", json_object_get(desc, "mediaType"), "digest", digest, "size",
                              json_object_get(desc, "size"));
        if (r != NULL && info->artifact_type != NULL)
            json_object_set_new(r, "artifactType", json_string(info->artifact_type));
        if (r != NULL && info->annotations != NULL)
            json_object_set_new(r, "annotations", json_deep_copy(info->annotations));
        if (r != NULL)
            json_array_append_new(out, r);
    }
    zn_mutex_unlock(&st->info_lock);
}

zn_err_t zn_storage_referrers(zn_storage_t *st, const char *repo, const zn_digest_t *subject, const char *artifact_type,
                              char **json, size_t *len)
{
    json_t *idx = NULL, *desc, *list = json_array();
    st_repo_t *r;
    size_t i;
    zn_err_t err = st_repo_find(st, repo, &r);

    if (err == ZN_OK && (err = st_index_get(st, r, &idx)) == ZN_OK) {
        json_t *seen = json_object();
        json_array_foreach(json_object_get(idx, "manifests"), i, desc)
        {
            const char *digest = st_desc_digest(desc);
            if (digest == NULL || json_object_get(seen, digest) != NULL)
                continue;
            json_object_set_new(seen, digest, json_true());
            add_if_referrer(st, repo, desc, subject, artifact_type, list);
        }
        json_decref(seen);
        json_decref(idx);
    }
    if (err != ZN_OK && err != ZN_ENOENT) {
        json_decref(list);
        return err;
    }
    json_t *root = json_pack("{s:i,s:s,s:o}", "schemaVersion", 2, "mediaType", "application/vnd.oci.image.index.v1+json",
                             "manifests", list);
    *json = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (*json == NULL)
        return ZN_ENOMEM;
    *len = strlen(*json);
    return ZN_OK;
}
