/*
 * storage/s3.h - private to storage/: the S3 driver's client half (s3_http.c) shared with
 * its driver half (s3_driver.c). One s3_t per store; every request is a blocking libcurl
 * easy transfer on the calling thread (the driver sets ST_DRV_MAY_BLOCK, so storage calls
 * never run on an event-loop worker), signed with SigV4 (s3_sign.c), retried a bounded
 * number of times with backoff on transport errors, 500/502/503/504 and throttling.
 */
#ifndef ZN_STORAGE_S3_H
#define ZN_STORAGE_S3_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/zn.h"
#include "config/config.h"
#include "storage/driver.h"
#include "storage/s3_sign.h"

#define S3_ATTEMPTS 4 /* one try and three retries */
#define S3_ERRBODY_MAX (64u << 10)
#define S3_LIST_MAX (4u << 20) /* a ListObjectsV2 / ListParts page answer */
#define S3_MAX_HDRS 8

typedef struct s3_pool s3_pool_t;
typedef struct s3_known_set s3_known_set_t;

typedef struct s3 {
    st_driver_t base;
    char *base_url;        /* "http(s)://host[:port]" */
    char *host;            /* the Host header (bucket.host for virtual-hosted style) */
    bool path_style;       /* "/<bucket>/<key>" */
    char *bucket, *prefix; /* prefix: "<rootdirectory>/" or "" */
    char *region, *access_key, *secret_key;
    bool skipverify;
    size_t part_size;
    uint64_t copy_max;  /* larger objects are copied part by part (UploadPartCopy): S3_COPY_MAX, tests lower it */
    uint64_t copy_part; /* the range each UploadPartCopy takes (at least size / 10000) */
    unsigned page_size; /* max-keys of one list page (1000, tests lower it) */
    s3_pool_t *pool;    /* idle curl handles, so connections are reused */
    s3_known_set_t *known; /* upload sessions as this process last left them (s3_append.c) */
    _Atomic uint64_t stop_at_ns; /* shutdown: requests give up at this time (0: never) */
} s3_t;

/* One request. The caller fills the first block; s3_do fills the second. */
typedef struct s3_req {
    const char *method;
    const char *key;   /* the driver's key (the prefix is added here), NULL for the bucket itself */
    const char *query; /* encoded "a=1&b", "" for none */
    const void *body;
    size_t body_len;
    st_s3_hdr_t hdrs[S3_MAX_HDRS]; /* extra headers, all signed */
    size_t nhdrs;
    zn_buf_t *out; /* the 2xx body goes here (bounded by its max: ZN_ETOOBIG)... */
    char *dst;     /* ...or into dst[0..dst_cap) (more is ZN_EIO: the server sent too much) */
    size_t dst_cap;

    long status;       /* the last attempt's HTTP status, 0 if none answered */
    size_t got;        /* bytes stored into dst */
    st_version_t etag; /* the ETag header without its quotes (len 0 if none) */
    uint64_t length;   /* Content-Length, when has_length */
    bool has_length;
    uint64_t mtime_ns;    /* Last-Modified, 0 if none */
    uint64_t total;       /* Content-Range's total, 0 if none */
    char code[64];        /* the S3 error <Code> of a failed request */
    unsigned retry_after; /* seconds, from Retry-After, 0 if none */
    uint64_t zinc_parts;  /* x-amz-meta-zinc-parts of a session's tail object (s3_append.c) */
    bool has_zinc_parts;
    char zinc_sha256[ZN_HASH_STATE_MAX]; /* x-amz-meta-zinc-sha256: the hash state the tail follows */
    bool has_zinc_sha256;
} s3_req_t;

/* Adds a header to sign and send (name lower-case). */
void s3_req_hdr(s3_req_t *r, const char *name, const char *value);

/* Sends r, retrying transport errors, 500/502/503/504 and throttling (429, SlowDown) up to
 * S3_ATTEMPTS times with growing backoff. ZN_OK on 2xx. Else: ZN_ENOENT (404), ST_ECONFLICT
 * (412), ZN_ERANGE (416), ZN_EDENIED (401/403), ZN_EAGAIN (still throttled or unavailable
 * after the retries: callers answer 503 + Retry-After), ZN_ETOOBIG (the body passed
 * out's max), ZN_EIO (anything else). r->status and r->code tell more. */
zn_err_t s3_do(s3_t *s, s3_req_t *r);
/* Shutdown (driver.h stop_at): transfers running at deadline_ns are aborted and answer
 * ZN_EAGAIN (logged "s3 request aborted"), retries that would end past it are not made,
 * and requests made after it fail at once. */
void s3_stop_at(s3_t *s, uint64_t deadline_ns);

/* A presigned GET URL for key, valid for expires seconds from now (redirectBlobURL), into
 * *url (the caller's). */
zn_err_t s3_presign_get(s3_t *s, const char *key, unsigned expires, char **url);

/* The next <tag>...</tag> in [*p, end): its inner text in *val, *p moved past it. */
bool s3_xml_next(const char **p, const char *end, const char *tag, zn_slice_t *val);
/* XML text (entities &amp; &lt; &gt; &quot; &apos; decoded) into buf[cap], NUL-terminated.
 * ZN_EINVAL if it does not fit or an entity is unknown. */
zn_err_t s3_xml_text(zn_slice_t v, char *buf, size_t cap);

/* ---- shared by s3_driver.c and s3_append.c ---- */

/* The key fits S3's 1024-byte limit once the prefix is added. */
bool s3_key_ok(const s3_t *s, const char *key);
/* PUT bytes at key, with one condition header if hname is not NULL; the new ETag into *now. */
zn_err_t s3_put_cond(s3_t *s, const char *key, const void *bytes, size_t len, const char *hname, const char *hval,
                     st_version_t *now);
/* Copies from (size bytes) -> to in the bucket, server-side: CopyObject (with replace_meta:
 * new metadata, so a new mtime), or above copy_max a multipart upload on `to` whose parts
 * are UploadPartCopy ranges of from. S3 may answer 200 with an <Error> body: that is ZN_EIO. */
zn_err_t s3_copy_object(s3_t *s, const char *from, const char *to, uint64_t size, bool replace_meta);
/* The multipart half of s3_copy_object (s3_append.c); src is the x-amz-copy-source value. A
 * failed copy aborts its upload: nothing is left behind. */
zn_err_t s3_copy_parts(s3_t *s, const char *src, const char *to, uint64_t size);

zn_err_t s3_append_create(st_driver_t *d, const char *key, st_append_t **out);
zn_err_t s3_append_open(st_driver_t *d, const char *key, st_append_t **out, uint64_t *size);
zn_err_t s3_append_write(st_append_t *a, uint64_t off, const void *p, size_t n, bool *torn);
zn_err_t s3_append_read(st_append_t *a, uint64_t off, void *buf, size_t len, size_t *got);
zn_err_t s3_append_commit(st_append_t *a, const char *key, bool exclusive);
zn_err_t s3_append_remove(st_append_t *a);
void s3_append_close(st_append_t *a);
void s3_append_state_set(st_append_t *a, uint64_t covers, const char *state);
zn_err_t s3_append_state_get(st_append_t *a, char *state);
/* The table of known upload sessions (s3_append.c), made and freed with the driver. */
s3_known_set_t *s3_known_new(void);
void s3_known_free(s3_known_set_t *k);
/* Aborts the multipart upload open on key, if any (GC deletes a stale session by its key). */
zn_err_t s3_upload_abort(s3_t *s, const char *key);
/* The id of the multipart upload open on key into id ("" if none). */
zn_err_t s3_upload_find(s3_t *s, const char *key, char *id, size_t idlen);

#define S3_COPY_MAX (5ull << 30) /* CopyObject's limit */

/* The S3 driver for storage.storageDriver c (checked by config/); NULL with a message in
 * errbuf if it cannot be set up. The config outlives nothing: every string is copied. */
st_driver_t *st_s3_driver_new(const zn_config_s3_t *c, char *errbuf, size_t errlen);
/* Tests: list pages of n keys (1..1000) to exercise pagination. */
void st_s3_driver_set_page_size(st_driver_t *d, unsigned n);

/* The pool of curl handles: new, free. */
s3_pool_t *s3_pool_new(void);
void s3_pool_free(s3_pool_t *p);

#endif
