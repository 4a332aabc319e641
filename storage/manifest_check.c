/*
 * storage/manifest_check.c - validation of a pushed manifest before it is stored.
 *
 * Accepted: OCI image manifest and index, Docker schema2 manifest and manifest list
 * (schemaVersion 2). The media type comes from the body's mediaType, else the request's
 * Content-Type, else the shape (manifests[] = index); a body and header that disagree are
 * invalid. Every descriptor must be well formed; config and layers (except foreign layers
 * with urls) and index children must exist in the repository. A subject only needs to be a
 * well-formed descriptor: it may be pushed later (OCI 1.1). A pull-through mirror stores an
 * index before its children (lazy_children): they are fetched when a client asks for them,
 * as Distribution's proxy does, so a platform nobody pulled is never fetched.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "storage/internal.h"

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

struct check {
    zn_storage_t *st;
    const char *repo;
    char *detail;
    size_t detail_len;
    bool lazy_children; /* index children need not be in the store */
};

static zn_err_t fail(struct check *c, zn_err_t err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static zn_err_t fail(struct check *c, zn_err_t err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (c->detail_len != 0 && vsnprintf(c->detail, c->detail_len, fmt, ap) >= (int)c->detail_len)
        c->detail[c->detail_len - 1] = '\0'; /* a detail message may be cut; it is only a hint */
    va_end(ap);
    return err;
}

static bool is_index_type(const char *mt)
{
    return strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0;
}

static bool is_known_type(const char *mt)
{
    return strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0 || is_index_type(mt);
}

/* Content-Type without parameters or surrounding blanks, into buf. */
static const char *bare_content_type(const char *ct, char *buf, size_t len)
{
    if (ct == NULL)
        return NULL;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    if (n == 0 || n >= len)
        return NULL;
    memcpy(buf, ct, n);
    buf[n] = '\0';
    return buf;
}

static zn_err_t pick_media_type(struct check *c, json_t *root, const char *content_type, char *out)
{
    char ctbuf[ZN_MEDIA_TYPE_MAX];
    const char *ct = bare_content_type(content_type, ctbuf, sizeof(ctbuf)), *mt = NULL;
    json_t *jmt = json_object_get(root, "mediaType");

    if (jmt != NULL && !json_is_string(jmt))
        return fail(c, ZN_EINVAL, "mediaType must be a string");
    if (jmt != NULL) {
        mt = json_string_value(jmt);
        if (ct != NULL && is_known_type(ct) && strcmp(ct, mt) != 0)
            return fail(c, ZN_EINVAL, "mediaType %s does not match Content-Type %s", mt, ct);
    } else if (ct != NULL && is_known_type(ct)) {
        mt = ct;
    } else {
        mt = json_object_get(root, "manifests") != NULL ? MT_OCI_INDEX : MT_OCI_MANIFEST;
    }
    if (!is_known_type(mt))
        return fail(c, ZN_EINVAL, "unsupported manifest media type");
    /* is_known_type: one of the media types zinc stores, all far shorter than the field */
    if ((size_t)snprintf(out, ZN_MEDIA_TYPE_MAX, "%s", mt) >= ZN_MEDIA_TYPE_MAX)
        return fail(c, ZN_EINVAL, "unsupported manifest media type");
    return ZN_OK;
}

/* A descriptor: mediaType string, valid digest, non-negative integer size. */
static zn_err_t check_desc(struct check *c, json_t *desc, const char *what, zn_digest_t *d)
{
    json_t *size = json_object_get(desc, "size");
    const char *digest = json_string_value(json_object_get(desc, "digest"));

    if (!json_is_object(desc))
        return fail(c, ZN_EINVAL, "%s: not a descriptor object", what);
    if (!json_is_string(json_object_get(desc, "mediaType")))
        return fail(c, ZN_EINVAL, "%s: mediaType missing", what);
    if (digest == NULL || zn_digest_parse(zn_slice(digest, strlen(digest)), d) != ZN_OK)
        return fail(c, ZN_EINVAL, "%s: invalid digest", what);
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return fail(c, ZN_EINVAL, "%s: invalid size", what);
    if (json_object_get(desc, "artifactType") != NULL && !json_is_string(json_object_get(desc, "artifactType")))
        return fail(c, ZN_EINVAL, "%s: artifactType must be a string", what);
    return ZN_OK;
}

static zn_err_t check_exists(struct check *c, const zn_digest_t *d, const char *what)
{
    uint64_t size;
    zn_err_t err = zn_storage_blob_stat(c->st, c->repo, d, &size);
    if (err == ZN_ENOENT)
        return fail(c, ZN_ENOENT, "%s %s unknown to the repository", what, d->str);
    /* busy stays busy (503 with Retry-After, not 500): the client may push again later */
    return err == ZN_OK ? ZN_OK : fail(c, err == ZN_EAGAIN ? ZN_EAGAIN : ZN_EIO, "cannot check %s %s", what, d->str);
}

/* Checks every element of array `key`; children/blobs must exist unless foreign (urls). */
static zn_err_t check_list(struct check *c, json_t *root, const char *key, bool required)
{
    json_t *list = json_object_get(root, key), *desc;
    zn_digest_t d;
    size_t i;
    zn_err_t err;

    if (list == NULL && !required)
        return ZN_OK;
    if (!json_is_array(list))
        return fail(c, ZN_EINVAL, "%s must be an array", key);
    json_array_foreach(list, i, desc)
    {
        if ((err = check_desc(c, desc, key, &d)) != ZN_OK)
            return err;
        json_t *urls = json_object_get(desc, "urls");
        if (json_array_size(urls) != 0)
            continue; /* non-distributable layer: fetched from its urls, never pushed */
        if (c->lazy_children && strcmp(key, "manifests") == 0)
            continue;
        if ((err = check_exists(c, &d, strcmp(key, "manifests") == 0 ? "manifest" : "blob")) != ZN_OK)
            return err;
    }
    return ZN_OK;
}

static zn_err_t check_body(struct check *c, json_t *root, st_manifest_check_t *out)
{
    zn_err_t err;
    zn_digest_t d;
    json_t *subject = json_object_get(root, "subject"), *at = json_object_get(root, "artifactType");

    if (at != NULL && !json_is_string(at))
        return fail(c, ZN_EINVAL, "artifactType must be a string");
    if (subject != NULL) {
        if ((err = check_desc(c, subject, "subject", &out->subject)) != ZN_OK)
            return err;
        out->has_subject = true;
    }
    if (is_index_type(out->media_type))
        return check_list(c, root, "manifests", true);
    if (json_object_get(root, "manifests") != NULL)
        return fail(c, ZN_EINVAL, "an image manifest has no manifests list");
    if ((err = check_desc(c, json_object_get(root, "config"), "config", &d)) != ZN_OK)
        return err;
    if ((err = check_exists(c, &d, "config blob")) != ZN_OK)
        return err;
    return check_list(c, root, "layers", true);
}

zn_err_t st_manifest_check(zn_storage_t *st, const char *repo, const char *content_type, const char *bytes, size_t len,
                           bool lazy_children, st_manifest_check_t *out, char *detail, size_t detail_len)
{
    struct check c = {st, repo, detail, detail_len, lazy_children};
    json_error_t jerr;
    zn_err_t err;

    memset(out, 0, sizeof(*out));
    if (detail_len != 0)
        detail[0] = '\0';
    json_t *root = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        err = fail(&c, ZN_EINVAL, "invalid JSON: %s (line %d)", jerr.text, jerr.line);
        goto done;
    }
    if (!json_is_object(root)) {
        err = fail(&c, ZN_EINVAL, "manifest is not a JSON object");
        goto done;
    }
    json_t *sv = json_object_get(root, "schemaVersion");
    if (!json_is_integer(sv) || json_integer_value(sv) != 2) {
        err = fail(&c, ZN_EINVAL, "schemaVersion must be 2");
        goto done;
    }
    if ((err = pick_media_type(&c, root, content_type, out->media_type)) != ZN_OK)
        goto done;
    err = check_body(&c, root, out);
done:
    json_decref(root);
    return err;
}
