/*
 * storage/manifests.c - manifests and tags: PUT (validate, store the exact bytes as a
 * blob, point the index at it), GET by tag or digest, DELETE, and the tag list.
 *
 * index.json follows zot: one descriptor per tag (annotation org.opencontainers.image.ref.name)
 * plus one untagged descriptor for a manifest pushed by digest that no tag names. Moving a
 * tag replaces its descriptor; deleting a manifest's last tag leaves it untagged; deleting
 * by digest removes every descriptor of it and its blob.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"

void zn_storage_manifest_release(zn_storage_manifest_t *m)
{
    free(m->bytes);
    m->bytes = NULL;
}

static bool is_digest_ref(const char *ref)
{
    return strchr(ref, ':') != NULL;
}

/* The first descriptor naming ref (a tag, or a digest text), or NULL. Borrowed from idx. */
static json_t *find_desc(json_t *idx, const char *ref, size_t *at)
{
    json_t *desc, *list = json_object_get(idx, "manifests");
    size_t i;
    bool by_digest = is_digest_ref(ref);
    json_array_foreach(list, i, desc)
    {
        const char *v = by_digest ? st_desc_digest(desc) : st_desc_tag(desc);
        if (v != NULL && strcmp(v, ref) == 0) {
            if (at != NULL)
                *at = i;
            return desc;
        }
    }
    return NULL;
}

/* A cached manifest's length, and (bytes != NULL) a malloc'd copy into *bytes; or false. */
static bool mcache_get(st_repo_t *r, const zn_digest_t *d, char **bytes, size_t *len)
{
    bool hit = false;
    zn_mutex_lock(&r->lock);
    for (int i = 0; i < ST_MCACHE_SLOTS && !hit; i++) {
        st_mcache_entry_t *e = &r->mcache[i];
        if (e->bytes == NULL || !zn_digest_eq(&e->digest, d))
            continue;
        e->used = ++r->mcache_clock;
        if (bytes != NULL) {
            *bytes = zn_malloc(e->len + 1);
            memcpy(*bytes, e->bytes, e->len + 1);
        }
        *len = e->len;
        hit = true;
    }
    zn_mutex_unlock(&r->lock);
    return hit;
}

/* Keeps a copy of a small manifest just read from disk, evicting the least recently used. */
static void mcache_put(st_repo_t *r, const zn_digest_t *d, const char *bytes, size_t len)
{
    if (len > ST_MCACHE_ENTRY_MAX)
        return;
    char *copy = zn_malloc(len + 1);
    memcpy(copy, bytes, len);
    copy[len] = '\0';
    zn_mutex_lock(&r->lock);
    st_mcache_entry_t *victim = &r->mcache[0];
    for (int i = 0; i < ST_MCACHE_SLOTS; i++) {
        st_mcache_entry_t *e = &r->mcache[i];
        if (e->bytes != NULL && zn_digest_eq(&e->digest, d)) {
            victim = NULL; /* another request cached it meanwhile */
            break;
        }
        if (e->bytes == NULL || (victim->bytes != NULL && e->used < victim->used))
            victim = e;
    }
    if (victim != NULL) {
        free(victim->bytes);
        *victim = (st_mcache_entry_t){*d, copy, len, ++r->mcache_clock};
        copy = NULL;
    }
    zn_mutex_unlock(&r->lock);
    free(copy);
}

static zn_err_t manifest_get(zn_storage_t *st, const char *repo, const char *ref, bool want_bytes, bool cached_only,
                             zn_storage_manifest_t *out);

zn_err_t zn_storage_manifest_get(zn_storage_t *st, const char *repo, const char *ref, bool want_bytes,
                                 zn_storage_manifest_t *out)
{
    return manifest_get(st, repo, ref, want_bytes, false, out);
}

zn_err_t zn_storage_manifest_peek(zn_storage_t *st, const char *repo, const char *ref, bool want_bytes,
                                  zn_storage_manifest_t *out)
{
    return manifest_get(st, repo, ref, want_bytes, true, out);
}

static zn_err_t manifest_get(zn_storage_t *st, const char *repo, const char *ref, bool want_bytes, bool cached_only,
                             zn_storage_manifest_t *out)
{
    char key[PATH_MAX];
    st_repo_t *r;
    json_t *idx = NULL;
    size_t len = 0;
    uint64_t size = 0;
    zn_err_t err;

    memset(out, 0, sizeof(*out));
    if ((err = st_repo_find(st, repo, &r)) != ZN_OK || (err = st_index_get_if(st, r, cached_only, &idx)) != ZN_OK)
        return err;
    json_t *desc = find_desc(idx, ref, NULL);
    const char *digest = st_desc_digest(desc), *mt = json_string_value(json_object_get(desc, "mediaType"));
    if (digest == NULL || zn_digest_parse(zn_slice(digest, strlen(digest)), &out->digest) != ZN_OK) {
        err = ZN_ENOENT;
        goto done;
    }
    mt = mt != NULL ? mt : "application/vnd.oci.image.manifest.v1+json";
    if (strlen(mt) >= sizeof(out->media_type)) {
        err = ZN_EIO; /* index.json names a media type no client sent us: not ours */
        goto done;
    }
    memcpy(out->media_type, mt, strlen(mt) + 1);
    if (mcache_get(r, &out->digest, want_bytes ? &out->bytes : NULL, &len)) {
        out->size = len;
        goto done;
    }
    if (cached_only && want_bytes) {
        err = ZN_EAGAIN;
        goto done;
    }
    if ((err = st_blob_key(key, repo, &out->digest)) != ZN_OK)
        goto done;
    if (want_bytes && (err = st_ops(st)->get(st->drv, key, ST_INDEX_MAX, &out->bytes, &len, NULL)) == ZN_OK) {
        zn_digest_t got;
        zn_digest_of(out->digest.algo, out->bytes, len, &got); /* small: a corrupt manifest is never served */
        if (!zn_digest_eq(&got, &out->digest)) {
            zn_log(ZN_LOG_ERROR, "manifest does not match its digest", ZN_LSTR("repo", repo),
                   ZN_LSTR("digest", out->digest.str));
            free(out->bytes);
            out->bytes = NULL;
            err = ZN_EDIGEST;
            goto done;
        }
        mcache_put(r, &out->digest, out->bytes, len);
        size = len;
    } else if (!want_bytes) {
        err = st_ops(st)->stat(st->drv, key, &size, NULL);
    }
    out->size = size;
done:
    json_decref(idx);
    return err;
}

/* ---- PUT ---------------------------------------------------------------------------------- */

struct put_check {
    zn_storage_t *st;
    const char *repo, *content_type, *bytes;
    size_t len;
    st_manifest_check_t *chk;
    char *detail;
    size_t detail_len;
    const zn_digest_t *digest;
    bool lazy_children;
};

static zn_err_t store_bytes(zn_storage_t *st, const char *repo, const zn_digest_t *d, const char *bytes, size_t len);

static zn_err_t put_check(struct put_check *c)
{
    return st_manifest_check(c->st, c->repo, c->content_type, c->bytes, c->len, c->lazy_children, c->chk, c->detail, c->detail_len);
}

/* Under the lock, after GC removed blobs: the references and the manifest's own file again. */
static zn_err_t put_recheck(struct put_check *c)
{
    zn_err_t err = put_check(c);
    return err != ZN_OK ? err : store_bytes(c->st, c->repo, c->digest, c->bytes, c->len);
}

struct put_edit {
    const char *const *tags;
    size_t ntags;
    const char *digest;
    const char *media_type;
    size_t size;
    /* GC may have removed a referenced blob after the check: then check again, under the lock */
    st_repo_t *checked_repo; /* the repository as it was when checked, NULL if it did not exist */
    uint64_t checked_epoch;
    struct put_check *check;
};

static json_t *new_desc(const struct put_edit *e, const char *tag)
{
    json_t *desc = json_pack("{s:s,s:s,s:I}", "mediaType", e->media_type, "digest", e->digest, "size", (json_int_t)e->size);
    if (tag != NULL)
        json_object_set_new(desc, "annotations", json_pack("{s:s}", ST_REF_NAME, tag));
    return desc;
}

/* Points one tag at e->digest in idx; *changed when idx was edited. */
static void put_tag(const struct put_edit *e, json_t *idx, const char *tag, bool *changed)
{
    json_t *list = json_object_get(idx, "manifests"), *desc;
    size_t i = 0;

    desc = find_desc(idx, tag, &i);
    if (desc != NULL && strcmp(st_desc_digest(desc) ? st_desc_digest(desc) : "", e->digest) == 0)
        return;
    /* drop the tag's old descriptor and the digest's untagged one */
    while (i < json_array_size(list)) {
        desc = json_array_get(list, i);
        const char *t = st_desc_tag(desc), *d = st_desc_digest(desc);
        bool same_tag = t != NULL && strcmp(t, tag) == 0;
        bool untagged_same = t == NULL && d != NULL && strcmp(d, e->digest) == 0;
        if (same_tag || untagged_same)
            json_array_remove(list, i);
        else
            i++;
    }
    json_array_append_new(list, new_desc(e, tag));
    *changed = true;
}

static zn_err_t put_edit(void *data, json_t *idx, bool *changed)
{
    struct put_edit *e = data;
    zn_err_t err;

    bool stale = e->checked_repo == NULL || e->checked_repo->gc_epoch != e->checked_epoch;
    if (stale && (err = put_recheck(e->check)) != ZN_OK)
        return err;
    /* another process's GC may have run since (gc_epoch tells only ours): the blobs again,
     * right before the write; the manifest's own blob this PUT touched is young for GC */
    if (!stale && (err = put_check(e->check)) != ZN_OK)
        return err;

    if (e->ntags == 0) {
        if (find_desc(idx, e->digest, NULL) != NULL)
            return ZN_OK; /* already known, tagged or not */
        json_array_append_new(json_object_get(idx, "manifests"), new_desc(e, NULL));
        *changed = true;
        return ZN_OK;
    }
    for (size_t i = 0; i < e->ntags; i++)
        put_tag(e, idx, e->tags[i], changed);
    return ZN_OK;
}

static zn_err_t store_bytes(zn_storage_t *st, const char *repo, const zn_digest_t *d, const char *bytes, size_t len)
{
    char dir[PATH_MAX], key[PATH_MAX];
    const st_driver_ops_t *ops = st_ops(st);
    zn_err_t err;

    if ((err = st_blob_key(key, repo, d)) != ZN_OK)
        return err;
    if (ops->stat(st->drv, key, NULL, NULL) == ZN_OK) {
        ops->touch(st->drv, key); /* pushed again: young for GC's gcDelay */
        return ZN_OK;
    }
    if ((err = st_path(dir, "%s/blobs/%s", repo, zn_digest_algo_name(d->algo))) != ZN_OK ||
        (err = ops->mkdirs(st->drv, dir)) != ZN_OK)
        return err;
    err = ops->put(st->drv, key, bytes, len, true);
    if (err == ZN_OK)
        st_dedupe_record(st, repo, d);
    return err == ZN_EEXIST ? ZN_OK : err;
}

static zn_err_t put_tags(zn_storage_t *st, const char *repo, const char *const *tags, size_t ntags, const zn_digest_t *by_digest,
                         const char *content_type, const char *bytes, size_t len, bool lazy_children, zn_storage_put_t *res,
                         char *detail, size_t detail_len)
{
    uint64_t max = st->cfg->storage.max_manifest_size;
    st_manifest_check_t chk;
    struct put_check pc = {st, repo, content_type, bytes, len, &chk, detail, detail_len, &res->digest, lazy_children};
    st_repo_t *r, *before = NULL;
    zn_err_t err;

    memset(res, 0, sizeof(*res));
    if (detail_len != 0)
        detail[0] = '\0';
    if (max != 0 && len > max)
        return ZN_ETOOBIG;
    for (size_t i = 0; i < ntags; i++)
        if (!zn_storage_tag_valid(zn_slice(tags[i], strlen(tags[i]))))
            return ZN_EINVAL;
    zn_digest_of(by_digest != NULL ? by_digest->algo : ZN_DIGEST_SHA256, bytes, len, &res->digest);
    if (by_digest != NULL && !zn_digest_eq(by_digest, &res->digest))
        return ZN_EDIGEST;
    if ((err = st_repo_find(st, repo, &before)) != ZN_OK) {
        if (err != ZN_ENOENT)
            return err;
        before = NULL;
    }
    uint64_t epoch = before != NULL ? before->gc_epoch : 0;
    if ((err = put_check(&pc)) != ZN_OK)
        return err;
    res->has_subject = chk.has_subject;
    res->subject = chk.subject;
    if ((err = st_repo_create(st, repo, &r)) != ZN_OK || (err = store_bytes(st, repo, &res->digest, bytes, len)) != ZN_OK)
        return err;
    /* put_edit checks the blobs again under the lock. With a driver repository lock (fs:
     * flock) another zinc's GC on the same root sweeps under the same lock, so that closes
     * the race with it too. Without one (S3) it narrows it to a round trip; the sweep checks
     * index.json's version before each delete (gc.c), and gcDelay guards the rest (README). */
    struct put_edit e = {tags, ntags, res->digest.str, chk.media_type, len, before == r ? before : NULL, epoch, &pc};
    return st_index_edit(st, r, put_edit, &e);
}

zn_err_t zn_storage_manifest_put_tags(zn_storage_t *st, const char *repo, const char *const *tags, size_t ntags,
                                      const zn_digest_t *by_digest, const char *content_type, const char *bytes, size_t len,
                                      zn_storage_put_t *res, char *detail, size_t detail_len)
{
    return put_tags(st, repo, tags, ntags, by_digest, content_type, bytes, len, false, res, detail, detail_len);
}

zn_err_t zn_storage_manifest_put_mirrored(zn_storage_t *st, const char *repo, const char *const *tags, size_t ntags,
                                          const zn_digest_t *by_digest, const char *content_type, const char *bytes, size_t len,
                                          zn_storage_put_t *res, char *detail, size_t detail_len)
{
    return put_tags(st, repo, tags, ntags, by_digest, content_type, bytes, len, true, res, detail, detail_len);
}

zn_err_t zn_storage_manifest_put(zn_storage_t *st, const char *repo, const char *tag, const zn_digest_t *by_digest,
                                 const char *content_type, const char *bytes, size_t len, zn_storage_put_t *res,
                                 char *detail, size_t detail_len)
{
    return zn_storage_manifest_put_tags(st, repo, &tag, tag != NULL ? 1 : 0, by_digest, content_type, bytes, len, res, detail,
                                        detail_len);
}

/* ---- DELETE ----------------------------------------------------------------------------- */

static zn_err_t delete_digest_edit(void *data, json_t *idx, bool *changed)
{
    const char *digest = data;
    json_t *list = json_object_get(idx, "manifests");
    size_t i = 0;
    while (i < json_array_size(list)) {
        const char *d = st_desc_digest(json_array_get(list, i));
        if (d != NULL && strcmp(d, digest) == 0) {
            json_array_remove(list, i);
            *changed = true;
        } else {
            i++;
        }
    }
    return *changed ? ZN_OK : ZN_ENOENT;
}

static zn_err_t delete_tag_edit(void *data, json_t *idx, bool *changed)
{
    const char *tag = data;
    json_t *list = json_object_get(idx, "manifests");
    size_t at;
    json_t *desc = find_desc(idx, tag, &at);
    if (desc == NULL)
        return ZN_ENOENT;
    json_t *copy = json_deep_copy(desc);
    const char *digest = st_desc_digest(copy);
    json_array_remove(list, at);
    if (digest != NULL && find_desc(idx, digest, NULL) == NULL) {
        /* the manifest's last tag: keep it, untagged */
        json_t *ann = json_object_get(copy, "annotations");
        json_object_del(ann, ST_REF_NAME);
        if (json_object_size(ann) == 0)
            json_object_del(copy, "annotations");
        json_array_insert(list, at, copy);
    }
    json_decref(copy);
    *changed = true;
    return ZN_OK;
}

zn_err_t zn_storage_manifest_delete(zn_storage_t *st, const char *repo, const char *ref)
{
    char key[PATH_MAX];
    st_repo_t *r;
    zn_digest_t d;
    zn_err_t err;

    if ((err = st_repo_find(st, repo, &r)) != ZN_OK)
        return err;
    if (!is_digest_ref(ref))
        return st_index_edit(st, r, delete_tag_edit, (void *)ref);
    if ((err = zn_digest_parse(zn_slice(ref, strlen(ref)), &d)) != ZN_OK)
        return err;
    if ((err = st_index_edit(st, r, delete_digest_edit, (void *)ref)) != ZN_OK)
        return err;
    if ((err = st_blob_key(key, repo, &d)) != ZN_OK)
        return err;
    err = st_ops(st)->del(st->drv, key);
    return err == ZN_ENOENT ? ZN_OK : err;
}

/* ---- tags ------------------------------------------------------------------------------- */

void zn_storage_list_release(zn_storage_list_t *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof(*l));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts names[0..n) (pointers borrowed), drops duplicates, and copies the page into out. */
void st_list_page(const char **names, size_t n, const char *last, size_t max, zn_storage_list_t *out)
{
    memset(out, 0, sizeof(*out));
    qsort(names, n, sizeof(*names), cmp_str);
    out->names = zn_calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        if ((i > 0 && strcmp(names[i], names[i - 1]) == 0) || (last != NULL && strcmp(names[i], last) <= 0))
            continue;
        if (out->count == max) {
            out->more = true;
            break;
        }
        out->names[out->count++] = zn_strdup(names[i]);
    }
}

zn_err_t zn_storage_tags_list(zn_storage_t *st, const char *repo, const char *last, size_t max, zn_storage_list_t *out)
{
    st_repo_t *r;
    json_t *idx = NULL, *desc;
    size_t i, n = 0;
    zn_err_t err;

    memset(out, 0, sizeof(*out));
    if ((err = st_repo_find(st, repo, &r)) != ZN_OK || (err = st_index_get(st, r, &idx)) != ZN_OK)
        return err;
    json_t *list = json_object_get(idx, "manifests");
    const char **tags = zn_calloc(json_array_size(list) + 1, sizeof(*tags));
    json_array_foreach(list, i, desc)
    {
        const char *tag = st_desc_tag(desc);
        if (tag != NULL)
            tags[n++] = tag;
    }
    st_list_page(tags, n, last, max, out);
    free(tags);
    json_decref(idx);
    return ZN_OK;
}
