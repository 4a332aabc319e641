/*
 * storage/s3_driver.c - the S3 driver (driver.h) on any S3 engine (AWS, Ceph RGW, MinIO):
 * zot's keys (storage.storageDriver, distribution's s3-aws layout: object key =
 * rootdirectory + "/" + the driver key), every call a blocking round trip (ST_DRV_MAY_BLOCK).
 *
 *  - versions are ETags: put_if sends If-Match: <etag> (bare: RGW 16 compares the raw
 *    stored value and answers 412 to the quoted form AWS also accepts) or If-None-Match: *
 *    for create-only; both are atomic on RGW 16 (one of 8 concurrent creators wins).
 *  - object handles: objects up to SMALL_MAX are read whole at open (one GET; the handle
 *    then keeps reading what it opened even after a replace or delete, as on POSIX).
 *    Larger ones are read with Range GETs pinned to the opened ETag with If-Match: a
 *    replaced object reads as ZN_EIO, never as a mix of two versions. Deleted: ZN_EIO too.
 *  - append sessions: the session key <repo>/.uploads/<uuid> holds, as a plain object, the
 *    bytes not yet sent as a multipart part (less than one part, so memory stays bounded
 *    by chunksize per open session and nothing goes to local disk). Full parts go to a
 *    multipart upload created on that same key when the first part fills; reopening lists
 *    the upload (ListMultipartUploads) and its parts (ListParts) and reads the tail object
 *    back. The tail object is rewritten at close, so bytes written since the last close are
 *    lost if the process dies (the client's next upload status shows the shorter size).
 *    commit: a session that never filled a part is one PUT at the target (If-None-Match: *
 *    when exclusive); else the tail goes as the last part, CompleteMultipartUpload
 *    publishes the session key, CopyObject moves it to the target and the session key is
 *    deleted. RGW ignores If-None-Match on CompleteMultipartUpload, hence the copy (with
 *    an existence check first when exclusive: a racing writer of the same content-addressed
 *    blob writes the same bytes, so the check-then-copy window loses nothing).
 *  - copy: server-side CopyObject up to 5 GiB (its limit); larger objects are copied as a
 *    multipart upload of UploadPartCopy ranges (1 GiB each, more past 10 TB so that 10,000
 *    parts cover it), completed onto the target, aborted on failure. The digest is checked against the source key
 *    when it is a blob key (blobs/<algo>/<hex>), the bytes are not read.
 *  - list: ListObjectsV2 with prefix and delimiter '/', paginated by continuation token;
 *    unfinished multipart uploads are not objects and do not show (their tail objects do).
 *  - errors: 404 ZN_ENOENT, 412 ST_ECONFLICT (or ZN_EEXIST for an exclusive put), 403
 *    ZN_EDENIED, throttling (503, 429, SlowDown) that outlasts the bounded retries
 *    ZN_EAGAIN (the API answers 503 with Retry-After), anything else ZN_EIO.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/internal.h"
#include "storage/s3.h"

#define SMALL_MAX (256u << 10)

#define MIN_PART (5u << 20)

#define KEY_MAX 1024 /* S3's limit on a key, prefix included */

static s3_t *S(st_driver_t *d)
{
    return (s3_t *)d;
}

bool s3_key_ok(const s3_t *s, const char *key)
{
    return strlen(s->prefix) + strlen(key) < KEY_MAX;
}

/* ---- whole objects ---------------------------------------------------------------------- */

static zn_err_t s3_head(s3_t *s, const char *key, s3_req_t *r)
{
    *r = (s3_req_t){.method = "HEAD", .key = key, .query = ""};
    if (!s3_key_ok(s, key))
        return ZN_EINVAL;
    return s3_do(s, r);
}

static zn_err_t d_stat(st_driver_t *d, const char *key, uint64_t *size, uint64_t *mtime_ns)
{
    s3_req_t r;
    zn_err_t err = s3_head(S(d), key, &r);
    if (err != ZN_OK)
        return err;
    if (!r.has_length)
        return ZN_EIO;
    if (size != NULL)
        *size = r.length;
    if (mtime_ns != NULL)
        *mtime_ns = r.mtime_ns;
    return ZN_OK;
}

static zn_err_t d_version(st_driver_t *d, const char *key, st_version_t *ver)
{
    s3_req_t r;
    zn_err_t err = s3_head(S(d), key, &r);
    if (err == ZN_OK && r.etag.len == 0)
        err = ZN_EIO; /* every S3 object has an ETag: a server without one cannot do CAS */
    if (err == ZN_OK)
        *ver = r.etag;
    return err;
}

static zn_err_t d_get(st_driver_t *d, const char *key, size_t max, char **out, size_t *len, st_version_t *ver)
{
    s3_t *s = S(d);
    zn_buf_t b;
    zn_buf_init(&b, max);
    s3_req_t r = {.method = "GET", .key = key, .query = "", .out = &b};
    *out = NULL;
    zn_err_t err = s3_key_ok(s, key) ? s3_do(s, &r) : ZN_EINVAL;
    if (err == ZN_OK && r.has_length && r.length != b.len)
        err = ZN_EIO; /* cut short */
    if (err == ZN_OK && ver != NULL && r.etag.len == 0)
        err = ZN_EIO;
    if (err != ZN_OK) {
        zn_buf_release(&b);
        return err;
    }
    if (ver != NULL)
        *ver = r.etag;
    *out = zn_buf_detach(&b, len);
    return ZN_OK;
}

zn_err_t s3_put_cond(s3_t *s, const char *key, const void *bytes, size_t len, const char *hname, const char *hval,
                     st_version_t *now)
{
    s3_req_t r = {.method = "PUT", .key = key, .query = "", .body = bytes, .body_len = len};
    if (!s3_key_ok(s, key))
        return ZN_EINVAL;
    if (hname != NULL)
        s3_req_hdr(&r, hname, hval);
    zn_err_t err = s3_do(s, &r);
    if (err == ZN_OK && now != NULL) {
        if (r.etag.len == 0)
            return ZN_EIO;
        *now = r.etag;
    }
    return err;
}

static zn_err_t d_put(st_driver_t *d, const char *key, const void *bytes, size_t len, bool exclusive)
{
    zn_err_t err = s3_put_cond(S(d), key, bytes, len, exclusive ? "if-none-match" : NULL, "*", NULL);
    return exclusive && err == ST_ECONFLICT ? ZN_EEXIST : err;
}

static zn_err_t d_put_if(st_driver_t *d, const char *key, const void *bytes, size_t len, const st_version_t *expect,
                         st_version_t *now)
{
    char etag[ST_VERSION_MAX + 1];
    if (expect->len == 0)
        return s3_put_cond(S(d), key, bytes, len, "if-none-match", "*", now);
    if (expect->len >= sizeof(etag))
        return ZN_EINVAL;
    memcpy(etag, expect->v, expect->len);
    etag[expect->len] = '\0';
    return s3_put_cond(S(d), key, bytes, len, "if-match", etag, now);
}

static zn_err_t d_del(st_driver_t *d, const char *key)
{
    s3_t *s = S(d);
    s3_req_t r;
    /* S3 answers 204 whether or not the key existed; the contract wants ZN_ENOENT */
    zn_err_t err = s3_head(s, key, &r);
    if (err != ZN_OK)
        return err;
    r = (s3_req_t){.method = "DELETE", .key = key, .query = ""};
    if ((err = s3_do(s, &r)) != ZN_OK)
        return err;
    /* an upload session's parts would stay (and be billed) after GC deletes its key */
    if (strstr(key, "/.uploads/") != NULL && s3_upload_abort(s, key) != ZN_OK)
        zn_log(ZN_LOG_WARN, "s3: could not abort the multipart upload of a deleted session", ZN_LSTR("key", key));
    return ZN_OK;
}

/* ---- listing ------------------------------------------------------------------------------ */

/* ISO 8601 "2026-12-02T16:00:00.000Z" to ns since the epoch; 0 if malformed. */
static uint64_t parse_iso(const char *v)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(v, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL)
        return 0;
    time_t t = timegm(&tm);
    return t < 0 ? 0 : (uint64_t)t * 1000000000ull;
}

typedef struct list_state {
    st_list_fn fn;
    void *data;
    size_t plen; /* the listed prefix's length, prefix and '/' included */
    bool any, stopped;
} list_state_t;

/* One page's <Contents> and <CommonPrefixes>; the token of the next page into next. */
static zn_err_t list_page(const zn_buf_t *b, list_state_t *ls, char *next, size_t nextlen)
{
    const char *p = b->p, *end = b->p + b->len, *q;
    zn_slice_t blk, v;
    char name[KEY_MAX + 1], num[32];
    uint64_t size;

    next[0] = '\0';
    for (q = p; !ls->stopped && s3_xml_next(&q, end, "Contents", &blk);) {
        const char *c = blk.p, *ce = blk.p + blk.n;
        st_entry_t e = {.links = 1};
        if (!s3_xml_next(&c, ce, "Key", &v) || s3_xml_text(v, name, sizeof(name)) != ZN_OK || strlen(name) <= ls->plen)
            return ZN_EIO;
        c = blk.p;
        if (!s3_xml_next(&c, ce, "Size", &v) || s3_xml_text(v, num, sizeof(num)) != ZN_OK ||
            zn_parse_u64(zn_slice(num, strlen(num)), UINT64_MAX / 2, &size) != ZN_OK)
            return ZN_EIO;
        c = blk.p;
        if (s3_xml_next(&c, ce, "LastModified", &v) && s3_xml_text(v, num, sizeof(num)) == ZN_OK)
            e.mtime_ns = parse_iso(num);
        e.name = name + ls->plen;
        e.size = size;
        ls->any = true;
        if (strchr(e.name, '/') == NULL && !ls->fn(ls->data, &e))
            ls->stopped = true;
    }
    for (q = p; !ls->stopped && s3_xml_next(&q, end, "CommonPrefixes", &blk);) {
        const char *c = blk.p;
        if (!s3_xml_next(&c, blk.p + blk.n, "Prefix", &v) || s3_xml_text(v, name, sizeof(name)) != ZN_OK)
            return ZN_EIO;
        size_t n = strlen(name);
        if (n <= ls->plen + 1 || name[n - 1] != '/')
            return ZN_EIO;
        name[n - 1] = '\0';
        st_entry_t e = {.name = name + ls->plen, .is_dir = true, .links = 1};
        ls->any = true;
        if (!ls->fn(ls->data, &e))
            ls->stopped = true;
    }
    q = p;
    if (s3_xml_next(&q, end, "IsTruncated", &v) && zn_slice_eq(v, "true")) {
        q = p;
        if (!s3_xml_next(&q, end, "NextContinuationToken", &v) || v.n == 0 || s3_xml_text(v, next, nextlen) != ZN_OK)
            return ZN_EIO; /* truncated without a way on: do not loop forever */
    }
    return ZN_OK;
}

static zn_err_t d_list(st_driver_t *d, const char *prefix, st_list_fn fn, void *data)
{
    s3_t *s = S(d);
    zn_err_t err = ZN_OK;
    zn_buf_t q, b, full;
    char token[1024] = "";
    list_state_t ls = {fn, data, 0, false, false};

    zn_buf_init(&q, 8192);
    zn_buf_init(&b, S3_LIST_MAX);
    zn_buf_init(&full, KEY_MAX + 2);
    /* "" is the store's root: rootdirectory's own prefix (or the bucket's top) */
    if (zn_buf_printf(&full, "%s%s%s", s->prefix, prefix, prefix[0] != '\0' ? "/" : "") != ZN_OK) {
        err = ZN_EINVAL;
        goto done;
    }
    ls.plen = full.len;
    do {
        q.len = 0;
        if (zn_buf_printf(&q, "list-type=2&delimiter=%%2F&max-keys=%u&prefix=", s->page_size) != ZN_OK ||
            st_s3_uri_encode(&q, full.p, full.len, false) != ZN_OK ||
            (token[0] != '\0' && (zn_buf_append(&q, "&continuation-token=", 20) != ZN_OK ||
                                  st_s3_uri_encode(&q, token, strlen(token), false) != ZN_OK))) {
            err = ZN_EINVAL;
            goto done;
        }
        s3_req_t r = {.method = "GET", .key = NULL, .query = q.p, .out = &b};
        if ((err = s3_do(s, &r)) != ZN_OK || (err = list_page(&b, &ls, token, sizeof(token))) != ZN_OK)
            goto done;
    } while (token[0] != '\0' && !ls.stopped);
    if (!ls.any && prefix[0] != '\0')
        err = ZN_ENOENT; /* the root exists while empty, as the filesystem root does */
done:
    zn_buf_release(&q);
    zn_buf_release(&b);
    zn_buf_release(&full);
    return err;
}

static void d_stop_at(st_driver_t *d, uint64_t deadline_ns)
{
    s3_stop_at(S(d), deadline_ns);
}

/* ---- copy, touch, mkdirs -------------------------------------------------------------------- */

zn_err_t s3_copy_object(s3_t *s, const char *from, const char *to, uint64_t size, bool replace_meta)
{
    zn_buf_t src, b;
    zn_err_t err;
    zn_buf_init(&src, 3 * KEY_MAX + 128);
    zn_buf_init(&b, S3_ERRBODY_MAX);
    s3_req_t r = {.method = "PUT", .key = to, .query = "", .out = &b};
    if (!s3_key_ok(s, from) || !s3_key_ok(s, to) || zn_buf_printf(&src, "/%s/", s->bucket) != ZN_OK ||
        st_s3_uri_encode(&src, s->prefix, strlen(s->prefix), true) != ZN_OK ||
        st_s3_uri_encode(&src, from, strlen(from), true) != ZN_OK) {
        err = ZN_EINVAL;
        goto done;
    }
    if (size > s->copy_max) {
        err = s3_copy_parts(s, src.p, to, size);
        goto done;
    }
    s3_req_hdr(&r, "x-amz-copy-source", src.p);
    if (replace_meta)
        s3_req_hdr(&r, "x-amz-metadata-directive", "REPLACE");
    if ((err = s3_do(s, &r)) == ZN_OK && b.p != NULL && memmem(b.p, b.len, "<Error>", 7) != NULL)
        err = ZN_EIO;
done:
    zn_buf_release(&src);
    zn_buf_release(&b);
    return err;
}

/* The digest a blob key names ("<repo>/blobs/<algo>/<hex>"), if it is one. */
static bool key_digest(const char *key, zn_digest_t *d)
{
    const char *b = strstr(key, "/blobs/");
    if (b == NULL)
        return false;
    const char *algo = b + 7, *slash = strchr(algo, '/');
    char s[ZN_DIGEST_STR_MAX];
    if (slash == NULL || strchr(slash + 1, '/') != NULL)
        return false;
    int n = snprintf(s, sizeof(s), "%.*s:%s", (int)(slash - algo), algo, slash + 1);
    return n > 0 && (size_t)n < sizeof(s) && zn_digest_parse(zn_slice(s, (size_t)n), d) == ZN_OK;
}

static zn_err_t d_copy(st_driver_t *d, const char *from, const char *to, const zn_digest_t *digest)
{
    s3_t *s = S(d);
    zn_digest_t named;
    uint64_t size;
    zn_err_t err;
    if (digest != NULL && key_digest(from, &named) && strcmp(named.str, digest->str) != 0)
        return ZN_EDIGEST;
    if ((err = d_stat(d, from, &size, NULL)) != ZN_OK)
        return err;
    return s3_copy_object(s, from, to, size, false);
}

/* GC ages objects by their modification time: copying an object onto itself with new
 * metadata is the one S3 way to move it. */
static void d_touch(st_driver_t *d, const char *key)
{
    uint64_t size;
    if (d_stat(d, key, &size, NULL) == ZN_OK)
        (void)s3_copy_object(S(d), key, key, size, true);
}

static zn_err_t d_mkdirs(st_driver_t *d, const char *prefix)
{
    return ZN_OK; /* S3 has no directories: a prefix exists when a key under it does */
}

/* ---- object handles -------------------------------------------------------------------------- */

typedef struct s3_obj {
    s3_t *s;
    char *key;
    uint64_t size;
    st_version_t etag;
    char *bytes; /* whole content when size <= SMALL_MAX */
    char *url;   /* presigned GET, made on the first object_redirect */
} s3_obj_t;

static zn_err_t d_open(st_driver_t *d, const char *key, st_object_t **out)
{
    s3_t *s = S(d);
    s3_obj_t *o = zn_calloc(1, sizeof(*o));
    zn_buf_t b;
    zn_err_t err;

    /* one ranged GET for the first SMALL_MAX bytes: small objects are then whole in
     * memory, larger ones tell their size (Content-Range) and ETag */
    zn_buf_init(&b, SMALL_MAX + 1);
    s3_req_t r = {.method = "GET", .key = key, .query = "", .out = &b};
    char range[64];
    int n = snprintf(range, sizeof(range), "bytes=0-%u", SMALL_MAX - 1);
    if (n < 0 || (size_t)n >= sizeof(range) || !s3_key_ok(s, key)) {
        err = ZN_EINVAL;
        goto fail;
    }
    s3_req_hdr(&r, "range", range);
    err = s3_do(s, &r);
    if (err == ZN_ERANGE) { /* a zero-length object has no byte 0 */
        r = (s3_req_t){.method = "GET", .key = key, .query = "", .out = &b};
        err = s3_do(s, &r);
    }
    if (err != ZN_OK)
        goto fail;
    if (r.etag.len == 0) {
        err = ZN_EIO;
        goto fail;
    }
    o->s = s;
    o->key = zn_strdup(key);
    o->etag = r.etag;
    if (r.status == 206 && r.total > b.len) {
        o->size = r.total;
        zn_buf_release(&b);
    } else {
        if (r.status == 206 && r.total != b.len) {
            err = ZN_EIO;
            goto fail;
        }
        o->size = b.len;
        size_t len;
        o->bytes = b.len > 0 ? zn_buf_detach(&b, &len) : zn_strdup("");
        zn_buf_release(&b);
    }
    *out = (st_object_t *)o;
    return ZN_OK;
fail:
    zn_buf_release(&b);
    free(o->key);
    free(o);
    return err;
}

static uint64_t d_object_size(const st_object_t *o)
{
    return ((const s3_obj_t *)o)->size;
}

static zn_err_t d_object_read(st_object_t *_o, uint64_t off, void *buf, size_t len, size_t *got)
{
    s3_obj_t *o = (s3_obj_t *)_o;
    char range[64], etag[ST_VERSION_MAX + 1];
    *got = 0;
    if (off >= o->size || len == 0)
        return ZN_OK;
    if (len > o->size - off)
        len = (size_t)(o->size - off);
    if (o->bytes != NULL) {
        memcpy(buf, o->bytes + off, len);
        *got = len;
        return ZN_OK;
    }
    int n = snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)off, (unsigned long long)(off + len - 1));
    if (n < 0 || (size_t)n >= sizeof(range))
        return ZN_EINVAL;
    memcpy(etag, o->etag.v, o->etag.len);
    etag[o->etag.len] = '\0';
    s3_req_t r = {.method = "GET", .key = o->key, .query = "", .dst = buf, .dst_cap = len};
    s3_req_hdr(&r, "range", range);
    s3_req_hdr(&r, "if-match", etag);
    zn_err_t err = s3_do(o->s, &r);
    if (err == ST_ECONFLICT || err == ZN_ENOENT)
        return ZN_EIO; /* replaced or deleted since open: never hand out another version's bytes */
    if (err != ZN_OK)
        return err;
    if (r.got != len)
        return ZN_EIO;
    *got = r.got;
    return ZN_OK;
}

/* How long a redirect stays valid: distribution's s3 driver's URLFor default, long enough
 * for a slow pull of a big layer to start (S3 checks the expiry when the GET begins). */
#define PRESIGN_EXPIRES (20u * 60u)

static const char *d_object_redirect(st_object_t *_o)
{
    s3_obj_t *o = (s3_obj_t *)_o;
    if (o->url == NULL && s3_presign_get(o->s, o->key, PRESIGN_EXPIRES, &o->url) != ZN_OK)
        return NULL; /* cannot sign (a key too long for a URL): the bytes are streamed instead */
    return o->url;
}

static void d_object_close(st_object_t *_o)
{
    s3_obj_t *o = (s3_obj_t *)_o;
    if (o == NULL)
        return;
    free(o->bytes);
    free(o->url);
    free(o->key);
    free(o);
}

/* ---- the driver ------------------------------------------------------------------------------ */

static void d_free(st_driver_t *d)
{
    s3_t *s = S(d);
    s3_pool_free(s->pool);
    s3_known_free(s->known);
    free(s->base_url);
    free(s->host);
    free(s->bucket);
    free(s->prefix);
    free(s->region);
    free(s->access_key);
    free(s->secret_key);
    free(s);
}

static const st_driver_ops_t s3_ops = {
    .name = "s3",
    .flags = ST_DRV_MAY_BLOCK,
    .free = d_free,
    .stop_at = d_stop_at,
    .stat = d_stat,
    .open = d_open,
    .get = d_get,
    .version = d_version,
    .put = d_put,
    .put_if = d_put_if,
    .del = d_del,
    .list = d_list,
    .copy = d_copy,
    .mkdirs = d_mkdirs,
    .touch = d_touch,
    .object_size = d_object_size,
    .object_read = d_object_read,
    .object_redirect = d_object_redirect,
    .object_close = d_object_close,
    .append_create = s3_append_create,
    .append_open = s3_append_open,
    .append_write = s3_append_write,
    .append_read = s3_append_read,
    .append_state_set = s3_append_state_set,
    .append_state_get = s3_append_state_get,
    .append_commit = s3_append_commit,
    .append_remove = s3_append_remove,
    .append_close = s3_append_close,
};

static char *dupf(const char *fmt, const char *a, const char *b)
{
    zn_buf_t buf;
    zn_buf_init(&buf, 4096);
    if (zn_buf_printf(&buf, fmt, a, b) != ZN_OK) {
        zn_buf_release(&buf);
        return NULL;
    }
    size_t len;
    return zn_buf_detach(&buf, &len);
}

st_driver_t *st_s3_driver_new(const zn_config_s3_t *c, char *errbuf, size_t errlen)
{
    s3_t *s = zn_calloc(1, sizeof(*s));
    const char *ep = c->regionendpoint, *scheme = c->secure ? "https://" : "http://";
    char awshost[128];

    s->base.ops = &s3_ops;
    if (ep == NULL) {
        int n = snprintf(awshost, sizeof(awshost), "s3.%s.amazonaws.com", c->region);
        if (n < 0 || (size_t)n >= sizeof(awshost))
            goto fail;
        ep = awshost;
        scheme = "https://";
    }
    if (strncmp(ep, "http://", 7) == 0 || strncmp(ep, "https://", 8) == 0) {
        scheme = ep[4] == 's' ? "https://" : "http://";
        ep = strchr(ep, ':') + 3;
    }
    s->path_style = c->forcepathstyle;
    s->host = s->path_style ? zn_strdup(ep) : dupf("%s.%s", c->bucket, ep);
    s->base_url = dupf("%s%s", scheme, s->host != NULL ? s->host : "");
    s->prefix = c->rootdirectory != NULL ? dupf("%s%s", c->rootdirectory, "/") : zn_strdup("");
    if (s->host == NULL || s->base_url == NULL || s->prefix == NULL)
        goto fail;
    s->bucket = zn_strdup(c->bucket);
    s->region = zn_strdup(c->region);
    s->access_key = zn_strdup(c->accesskey);
    s->secret_key = zn_strdup(c->secretkey);
    s->skipverify = c->skipverify;
    s->part_size = c->chunksize >= MIN_PART ? (size_t)c->chunksize : MIN_PART;
    s->copy_max = S3_COPY_MAX;
    s->copy_part = 1ull << 30;
    s->page_size = 1000;
    s->pool = s3_pool_new();
    s->known = s3_known_new();
    return &s->base;
fail:
    if (snprintf(errbuf, errlen, "storage.storageDriver.regionendpoint: too long") < 0 && errlen > 0)
        errbuf[0] = '\0';
    d_free(&s->base);
    return NULL;
}

void st_s3_driver_set_page_size(st_driver_t *d, unsigned n)
{
    S(d)->page_size = n > 0 && n <= 1000 ? n : 1000;
}
