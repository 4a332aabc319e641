/*
 * storage/s3_append.c - the S3 driver's append sessions (see s3_driver.c's header for the
 * layout): a tail object at the session key holding the bytes not yet sent as a part,
 * plus a multipart upload on the same key for the full parts.
 *
 * The tail object carries x-amz-meta-zinc-parts: how many parts existed when it was
 * written. A part is only sent when the buffer (which starts with the tail's bytes) is
 * full, so a tail recorded before the last part is a prefix of a part already sent: on
 * reopen it is dropped, never counted twice. That is what makes a crash between an
 * UploadPart and the next tail write safe (the session reopens at the parts' size).
 *
 * The tail object also carries x-amz-meta-zinc-sha256: the running SHA-256 state (digest.c's
 * zn_hash_export text) of the session's bytes up to the tail's end, handed over by uploads.c
 * (append_state_set). The parts of an unfinished multipart upload cannot be read back, so
 * that state is what lets another replica, or this one after a restart, continue a session
 * past its first part. When the tail object is older than the last part (a crash between
 * an UploadPart and the tail write) by one part and carries a state, the session goes back
 * to the tail rather than forward to the parts: the state covers exactly the tail's end, and
 * the part after it is sent again under the same number, replacing the old one (the tail's
 * bytes only grow, so the commit always sends it when the tail held any). Two or more parts
 * past the tail would leave a stale part after the last one sent, and RGW refuses a
 * completion that leaves out parts (InvalidPart, where AWS discards them): such a session
 * opens at the parts' size as before, whose hash cannot be rebuilt (ZN_EUNSUPP: the client
 * starts the blob again), and a commit that would leave a stale part is refused (ZN_EIO).
 *
 * Reading a session back costs a GET of the tail plus ListMultipartUploads (and ListParts),
 * answers with bodies, which RGW sends as headers and body in two segments without
 * TCP_NODELAY: each waits out the client's delayed ACK (~40 ms). So the driver keeps, per
 * session, what it last left in the tail object (`known`: the object's ETag, parts count
 * and length, and the parts and upload id behind it). Opening a known session is one HEAD,
 * a headers-only answer: if the object is still the one recorded, the state is taken from
 * memory and the tail's bytes are fetched (GET If-Match) only when a write, read or commit
 * needs them. A status query or a refused chunk thus reads no body at all. Any other
 * writer (a replica, a handle sending a part, which drops the entry first) changes the
 * object or the entry, and the next open reads everything back as before.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"
#include "storage/s3.h"

#define UPLOAD_ID_MAX 512
#define MAX_PARTS 10000
#define BUF_MIN (64u << 10)
#define KNOWN_MAX 4096 /* sessions remembered; a forgotten one is read back in full */

typedef struct s3_part {
    uint64_t size;
    char etag[ST_VERSION_MAX + 1];
} s3_part_t;

typedef struct s3_app {
    s3_t *s;
    char *key;
    char upload_id[UPLOAD_ID_MAX]; /* "" until the first part is sent */
    s3_part_t *parts;              /* parts[i] is part number i + 1 */
    size_t nparts, cap;
    uint64_t flushed; /* bytes in parts */
    char *buf;        /* the tail, at most part_size bytes */
    size_t blen, bcap;
    bool loaded;    /* buf holds the tail's blen bytes (false: fetch them from the tail object first) */
    char tail_etag[ST_VERSION_MAX + 1]; /* the tail object's version these fields follow ("": unknown) */
    bool dirty;     /* the tail object is behind buf */
    bool completed; /* the multipart upload was completed onto the session key */
    bool gone;      /* committed or removed: nothing to write back at close */
    char state[ZN_HASH_STATE_MAX]; /* a hash state of the first state_covers bytes (has_state) */
    uint64_t state_covers;
    bool has_state;
    size_t listed; /* parts ListParts showed at open: the completion must cover them all */
} s3_app_t;

static s3_app_t *app_new(s3_t *s, const char *key)
{
    s3_app_t *a = zn_calloc(1, sizeof(*a));
    a->s = s;
    a->key = zn_strdup(key);
    a->loaded = true;
    return a;
}

/* ---- the hash state kept with the tail ------------------------------------------------------ */

/* The byte count a zn_hash_export text starts with ("1:<count>:..."). */
static bool state_count(const char *text, uint64_t *count)
{
    const char *c;
    if (strncmp(text, "1:", 2) != 0 || (c = strchr(text + 2, ':')) == NULL)
        return false;
    return zn_parse_u64(zn_slice(text + 2, (size_t)(c - text - 2)), UINT64_MAX / 8, count) == ZN_OK;
}

/* Takes the state a tail object's response carried, if any. */
static void state_take(s3_app_t *a, const s3_req_t *r)
{
    uint64_t n;
    a->has_state = r->has_zinc_sha256 && state_count(r->zinc_sha256, &n);
    if (a->has_state) {
        memcpy(a->state, r->zinc_sha256, sizeof(a->state));
        a->state_covers = n;
    }
}

void s3_append_state_set(st_append_t *_a, uint64_t covers, const char *state)
{
    s3_app_t *a = (s3_app_t *)_a;
    size_t n = strlen(state);
    if (n >= sizeof(a->state))
        return;
    if (a->has_state && a->state_covers == covers && strcmp(a->state, state) == 0)
        return; /* what the tail object holds already (a status query) */
    memcpy(a->state, state, n + 1);
    a->state_covers = covers;
    a->has_state = true;
    if (covers == a->flushed + a->blen)
        a->dirty = true; /* written back at close */
}

zn_err_t s3_append_state_get(st_append_t *_a, char *state)
{
    s3_app_t *a = (s3_app_t *)_a;
    if (!a->has_state || a->state_covers != a->flushed + a->blen)
        return ZN_ENOENT;
    memcpy(state, a->state, sizeof(a->state));
    return ZN_OK;
}

/* ---- known sessions --------------------------------------------------------------------------- */

typedef struct s3_known {
    /* the tail object this follows: ETag, x-amz-meta-zinc-parts, length */
    char etag[ST_VERSION_MAX + 1];
    uint64_t meta_parts, obj_len;
    bool tail_kept; /* its bytes end the session (false: a prefix of a part sent later) */
    char upload_id[UPLOAD_ID_MAX];
    s3_part_t *parts;
    size_t nparts, listed;
    uint64_t flushed;
} s3_known_t;

struct s3_known_set {
    zn_mutex_t lock;
    st_map_t map; /* session key -> s3_known_t* */
};

static void known_free_one(void *p)
{
    s3_known_t *k = p;
    if (k != NULL)
        free(k->parts);
    free(k);
}

s3_known_set_t *s3_known_new(void)
{
    s3_known_set_t *k = zn_calloc(1, sizeof(*k));
    zn_mutex_init(&k->lock, "s3 known upload sessions");
    st_map_init(&k->map);
    return k;
}

void s3_known_free(s3_known_set_t *k)
{
    if (k == NULL)
        return;
    st_map_release(&k->map, known_free_one);
    zn_mutex_destroy(&k->lock);
    free(k);
}

static void known_drop(s3_t *s, const char *key)
{
    zn_mutex_lock(&s->known->lock);
    s3_known_t *k = st_map_del(&s->known->map, key);
    zn_mutex_unlock(&s->known->lock);
    known_free_one(k);
}

static bool first_key(void *data, const char *key, void *value)
{
    (void)value;
    *(const char **)data = key;
    return false;
}

/* Records a's state as following the tail object (etag, meta_parts, obj_len). */
static void known_save(s3_app_t *a, const char *etag, uint64_t meta_parts, uint64_t obj_len, bool tail_kept)
{
    size_t el = strlen(etag);
    if (el == 0 || el > ST_VERSION_MAX) {
        known_drop(a->s, a->key);
        return;
    }
    s3_known_t *k = zn_calloc(1, sizeof(*k));
    memcpy(k->etag, etag, el + 1);
    k->meta_parts = meta_parts;
    k->obj_len = obj_len;
    k->tail_kept = tail_kept;
    memcpy(k->upload_id, a->upload_id, sizeof(k->upload_id));
    if (a->nparts > 0) {
        k->parts = zn_malloc(a->nparts * sizeof(k->parts[0]));
        memcpy(k->parts, a->parts, a->nparts * sizeof(k->parts[0]));
    }
    k->nparts = a->nparts;
    k->listed = a->listed > a->nparts ? a->listed : a->nparts;
    k->flushed = a->flushed;
    s3_known_set_t *set = a->s->known;
    zn_mutex_lock(&set->lock);
    if (st_map_get(&set->map, a->key) == NULL && set->map.count >= KNOWN_MAX) {
        const char *victim = NULL;
        st_map_each(&set->map, first_key, &victim);
        if (victim != NULL)
            known_free_one(st_map_del(&set->map, victim));
    }
    s3_known_t *old = st_map_put(&set->map, a->key, k);
    zn_mutex_unlock(&set->lock);
    known_free_one(old);
}

/* Fills a from the known state if the tail object (h: a HEAD of it) is still the one it
 * follows; the tail's bytes are left to ensure_tail. */
static bool known_load(s3_app_t *a, const s3_req_t *h)
{
    bool hit = false;
    if (!h->has_zinc_parts || !h->has_length || h->etag.len == 0)
        return false;
    s3_known_set_t *set = a->s->known;
    zn_mutex_lock(&set->lock);
    s3_known_t *k = st_map_get(&set->map, a->key);
    if (k != NULL && strlen(k->etag) == h->etag.len && memcmp(k->etag, h->etag.v, h->etag.len) == 0 &&
        k->meta_parts == h->zinc_parts && k->obj_len == h->length) {
        memcpy(a->upload_id, k->upload_id, sizeof(a->upload_id));
        if (k->nparts > 0) {
            a->parts = zn_malloc(k->nparts * sizeof(a->parts[0]));
            memcpy(a->parts, k->parts, k->nparts * sizeof(a->parts[0]));
        }
        a->nparts = a->cap = k->nparts;
        a->listed = k->listed;
        a->flushed = k->flushed;
        a->blen = k->tail_kept ? (size_t)k->obj_len : 0;
        a->loaded = a->blen == 0;
        memcpy(a->tail_etag, k->etag, sizeof(a->tail_etag));
        hit = true;
    }
    zn_mutex_unlock(&set->lock);
    return hit;
}

/* Makes buf hold the tail's bytes (after a known open): the very version the state follows. */
static zn_err_t ensure_tail(s3_app_t *a)
{
    zn_buf_t b;
    if (a->loaded)
        return ZN_OK;
    zn_buf_init(&b, a->s->part_size);
    s3_req_t r = {.method = "GET", .key = a->key, .query = "", .out = &b};
    s3_req_hdr(&r, "if-match", a->tail_etag); /* bare, as RGW compares it (s3_http.c) */
    zn_err_t err = s3_do(a->s, &r);
    if (err == ST_ECONFLICT || err == ZN_ETOOBIG || (err == ZN_OK && b.len != a->blen))
        err = ZN_EIO; /* replaced since the open: this handle's state is stale */
    if (err == ZN_OK && b.len > 0) {
        size_t len;
        free(a->buf);
        a->buf = zn_buf_detach(&b, &len);
        a->bcap = a->blen;
    }
    zn_buf_release(&b);
    if (err == ZN_OK)
        a->loaded = true;
    return err;
}

static zn_err_t buf_reserve(s3_app_t *a, size_t need)
{
    if (need <= a->bcap)
        return ZN_OK;
    size_t cap = a->bcap > 0 ? a->bcap : BUF_MIN;
    while (cap < need)
        cap *= 2;
    if (cap > a->s->part_size)
        cap = a->s->part_size;
    if (cap < need)
        return ZN_ETOOBIG;
    a->buf = zn_realloc(a->buf, cap);
    a->bcap = cap;
    return ZN_OK;
}

/* Writes the tail object (buf) with the parts count it follows. */
static zn_err_t tail_put(s3_app_t *a, bool exclusive)
{
    char n[24];
    int k = snprintf(n, sizeof(n), "%zu", a->nparts);
    if (k < 0 || (size_t)k >= sizeof(n))
        return ZN_EINVAL;
    s3_req_t r = {.method = "PUT", .key = a->key, .query = "", .body = a->buf, .body_len = a->blen};
    s3_req_hdr(&r, "x-amz-meta-zinc-parts", n);
    if (a->has_state && a->state_covers == a->flushed + a->blen)
        s3_req_hdr(&r, "x-amz-meta-zinc-sha256", a->state);
    if (exclusive)
        s3_req_hdr(&r, "if-none-match", "*");
    zn_err_t err = s3_do(a->s, &r);
    if (err == ZN_OK) {
        a->dirty = false;
        memcpy(a->tail_etag, r.etag.v, r.etag.len);
        a->tail_etag[r.etag.len] = '\0';
        known_save(a, a->tail_etag, a->nparts, a->blen, true);
    } else {
        known_drop(a->s, a->key); /* the object may or may not be the new tail */
    }
    return exclusive && err == ST_ECONFLICT ? ZN_EEXIST : err;
}

/* "uploadId=<id>" (encoded) into q. */
static zn_err_t upload_query(const s3_app_t *a, zn_buf_t *q, const char *before)
{
    if (zn_buf_printf(q, "%suploadId=", before) != ZN_OK)
        return ZN_EINVAL;
    return st_s3_uri_encode(q, a->upload_id, strlen(a->upload_id), false);
}

/* Appends a part S3 holds to a's list (etag may still carry its quotes). */
static void parts_push(s3_app_t *a, const char *etag, size_t len, uint64_t size)
{
    if (len >= 2 && etag[0] == '"' && etag[len - 1] == '"') {
        etag++;
        len -= 2;
    }
    if (len > ST_VERSION_MAX)
        len = ST_VERSION_MAX; /* both callers' sources are bounded by it already */
    if (a->nparts == a->cap) {
        a->cap = a->cap > 0 ? a->cap * 2 : 16;
        a->parts = zn_realloc(a->parts, a->cap * sizeof(a->parts[0]));
    }
    s3_part_t *pt = &a->parts[a->nparts++];
    pt->size = size;
    memcpy(pt->etag, etag, len);
    pt->etag[len] = '\0';
    a->flushed += size;
}

/* AbortMultipartUpload of a's upload. */
static zn_err_t mp_abort(s3_app_t *a)
{
    zn_buf_t q;
    zn_buf_init(&q, 2048);
    zn_err_t err = upload_query(a, &q, "");
    if (err == ZN_OK) {
        s3_req_t r = {.method = "DELETE", .key = a->key, .query = q.p};
        err = s3_do(a->s, &r);
    }
    zn_buf_release(&q);
    return err;
}

static zn_err_t mp_create(s3_app_t *a)
{
    zn_buf_t b;
    zn_slice_t v;
    zn_buf_init(&b, S3_ERRBODY_MAX);
    s3_req_t r = {.method = "POST", .key = a->key, .query = "uploads", .out = &b};
    zn_err_t err = s3_do(a->s, &r);
    const char *p = b.p;
    if (err == ZN_OK && (p == NULL || !s3_xml_next(&p, b.p + b.len, "UploadId", &v) || v.n == 0 ||
                         s3_xml_text(v, a->upload_id, sizeof(a->upload_id)) != ZN_OK))
        err = ZN_EIO;
    zn_buf_release(&b);
    return err;
}

/* Sends buf[0..n) as the next part. */
static zn_err_t part_put(s3_app_t *a, size_t n)
{
    zn_buf_t q;
    zn_err_t err;
    if (a->nparts == MAX_PARTS)
        return ZN_ETOOBIG;
    /* from here until the next tail write, the tail object no longer tells the session's
     * state (a crash now must reopen at the parts' size): nobody may trust the entry */
    known_drop(a->s, a->key);
    if (a->upload_id[0] == '\0' && (err = mp_create(a)) != ZN_OK)
        return err;
    zn_buf_init(&q, 2048);
    if (zn_buf_printf(&q, "partNumber=%zu", a->nparts + 1) != ZN_OK || upload_query(a, &q, "&") != ZN_OK) {
        zn_buf_release(&q);
        return ZN_EINVAL;
    }
    s3_req_t r = {.method = "PUT", .key = a->key, .query = q.p, .body = a->buf, .body_len = n};
    err = s3_do(a->s, &r);
    zn_buf_release(&q);
    if (err == ZN_OK && r.etag.len == 0)
        err = ZN_EIO;
    if (err != ZN_OK)
        return err;
    parts_push(a, r.etag.v, r.etag.len, n);
    return ZN_OK;
}

zn_err_t s3_append_create(st_driver_t *d, const char *key, st_append_t **out)
{
    s3_t *s = (s3_t *)d;
    if (!s3_key_ok(s, key))
        return ZN_EINVAL;
    s3_app_t *a = app_new(s, key);
    zn_err_t err = tail_put(a, true);
    if (err != ZN_OK) {
        a->gone = true;
        s3_append_close((st_append_t *)a);
        return err;
    }
    *out = (st_append_t *)a;
    return ZN_OK;
}

/* The multipart upload open on the session key, if any (ListMultipartUploads). */
static zn_err_t find_upload(s3_app_t *a)
{
    zn_buf_t q, b, full;
    zn_err_t err = ZN_EINVAL;
    zn_slice_t blk, v;
    char key[1100];

    zn_buf_init(&q, 4096);
    zn_buf_init(&b, S3_LIST_MAX);
    zn_buf_init(&full, 1100);
    if (zn_buf_printf(&full, "%s%s", a->s->prefix, a->key) != ZN_OK || zn_buf_append(&q, "uploads&prefix=", 15) != ZN_OK ||
        st_s3_uri_encode(&q, full.p, full.len, false) != ZN_OK)
        goto done;
    s3_req_t r = {.method = "GET", .key = NULL, .query = q.p, .out = &b};
    if ((err = s3_do(a->s, &r)) != ZN_OK)
        goto done;
    const char *p = b.p, *end = b.p + b.len;
    while (p != NULL && s3_xml_next(&p, end, "Upload", &blk)) {
        const char *c = blk.p;
        if (!s3_xml_next(&c, blk.p + blk.n, "Key", &v) || s3_xml_text(v, key, sizeof(key)) != ZN_OK)
            continue;
        c = blk.p;
        if (strcmp(key, full.p) == 0 && s3_xml_next(&c, blk.p + blk.n, "UploadId", &v) &&
            s3_xml_text(v, a->upload_id, sizeof(a->upload_id)) == ZN_OK)
            break; /* session keys are random uuids: one upload each */
        a->upload_id[0] = '\0';
    }
done:
    zn_buf_release(&q);
    zn_buf_release(&b);
    zn_buf_release(&full);
    return err;
}

/* Fills parts from ListParts, page by page. */
static zn_err_t list_parts(s3_app_t *a)
{
    zn_buf_t q, b;
    zn_err_t err = ZN_OK;
    uint64_t marker = 0, u;
    char num[32];
    zn_slice_t blk, v;
    bool more = true;

    zn_buf_init(&q, 2048);
    zn_buf_init(&b, S3_LIST_MAX);
    while (more && err == ZN_OK) {
        q.len = 0;
        if (zn_buf_printf(&q, "max-parts=1000&part-number-marker=%llu", (unsigned long long)marker) != ZN_OK ||
            upload_query(a, &q, "&") != ZN_OK) {
            err = ZN_EINVAL;
            break;
        }
        s3_req_t r = {.method = "GET", .key = a->key, .query = q.p, .out = &b};
        if ((err = s3_do(a->s, &r)) != ZN_OK)
            break;
        const char *p = b.p, *end = b.p + b.len;
        while (p != NULL && s3_xml_next(&p, end, "Part", &blk)) {
            const char *c = blk.p, *ce = blk.p + blk.n;
            s3_part_t pt;
            if (!s3_xml_next(&c, ce, "PartNumber", &v) || s3_xml_text(v, num, sizeof(num)) != ZN_OK ||
                zn_parse_u64(zn_slice(num, strlen(num)), MAX_PARTS, &u) != ZN_OK || u != a->nparts + 1) {
                err = ZN_EIO; /* a gap or disorder: the session cannot be resumed safely */
                break;
            }
            c = blk.p;
            if (!s3_xml_next(&c, ce, "Size", &v) || s3_xml_text(v, num, sizeof(num)) != ZN_OK ||
                zn_parse_u64(zn_slice(num, strlen(num)), 5ull << 30, &pt.size) != ZN_OK) {
                err = ZN_EIO;
                break;
            }
            c = blk.p;
            if (!s3_xml_next(&c, ce, "ETag", &v) || s3_xml_text(v, pt.etag, sizeof(pt.etag)) != ZN_OK) {
                err = ZN_EIO;
                break;
            }
            parts_push(a, pt.etag, strlen(pt.etag), pt.size);
            marker = u;
        }
        p = b.p;
        more = err == ZN_OK && p != NULL && s3_xml_next(&p, end, "IsTruncated", &v) && zn_slice_eq(v, "true");
    }
    zn_buf_release(&q);
    zn_buf_release(&b);
    return err;
}

zn_err_t s3_upload_abort(s3_t *s, const char *key)
{
    known_drop(s, key);
    s3_app_t *a = app_new(s, key);
    zn_err_t err = find_upload(a);
    if (err == ZN_OK && a->upload_id[0] != '\0')
        err = mp_abort(a);
    a->gone = true;
    s3_append_close((st_append_t *)a);
    return err == ZN_ENOENT ? ZN_OK : err;
}

zn_err_t s3_upload_find(s3_t *s, const char *key, char *id, size_t idlen)
{
    s3_app_t *a = app_new(s, key);
    zn_err_t err = find_upload(a);
    if (err == ZN_OK) {
        int n = snprintf(id, idlen, "%s", a->upload_id);
        err = n < 0 || (size_t)n >= idlen ? ZN_EINVAL : ZN_OK;
    }
    a->gone = true;
    s3_append_close((st_append_t *)a);
    return err;
}

zn_err_t s3_append_open(st_driver_t *d, const char *key, st_append_t **out, uint64_t *size)
{
    s3_t *s = (s3_t *)d;
    zn_buf_t b;
    zn_err_t err;
    if (!s3_key_ok(s, key))
        return ZN_EINVAL;
    s3_app_t *a = app_new(s, key);
    /* a session this process left as it is now: one headers-only round trip */
    s3_req_t h = {.method = "HEAD", .key = key, .query = ""};
    if ((err = s3_do(s, &h)) != ZN_OK) {
        a->gone = true;
        s3_append_close((st_append_t *)a);
        return err;
    }
    if ((!h.has_length || h.length <= s->part_size) && known_load(a, &h)) {
        state_take(a, &h);
        *size = a->flushed + a->blen;
        *out = (st_append_t *)a;
        return ZN_OK;
    }
    zn_buf_init(&b, s->part_size);
    s3_req_t r = {.method = "GET", .key = key, .query = "", .out = &b};
    err = s3_do(s, &r);
    if (err == ZN_ETOOBIG) {
        /* larger than a part: a multipart upload completed onto the session key by a commit
         * that did not get to its copy; the session is that object, ready to be copied */
        uint64_t len;
        r = (s3_req_t){.method = "HEAD", .key = key, .query = ""};
        if ((err = s3_do(s, &r)) == ZN_OK && !r.has_length)
            err = ZN_EIO;
        len = r.length;
        if (err == ZN_OK) {
            a->completed = true;
            a->flushed = len;
        }
    } else if (err == ZN_OK && (err = find_upload(a)) == ZN_OK && a->upload_id[0] != '\0') {
        err = list_parts(a);
    }
    if (err == ZN_OK && !a->completed) {
        uint64_t covers = 0, upto = 0, obj_len = b.len;
        bool kept = false;
        a->listed = a->nparts;
        state_take(a, &r);
        if (!r.has_zinc_parts) {
            err = ZN_EIO; /* not a session object this driver wrote */
        } else if (r.zinc_parts > a->nparts) {
            err = ZN_EIO; /* parts lost: the recorded tail follows parts that are gone */
        } else if (r.zinc_parts == a->nparts) {
            kept = true;
        } else if (a->nparts == r.zinc_parts + 1 && a->has_state && state_count(a->state, &covers)) {
            /* fewer parts recorded than listed: the tail is a prefix of part zinc_parts+1,
             * sent later. The state follows the tail: back to it (header comment). */
            for (size_t i = 0; i < r.zinc_parts; i++)
                upto += a->parts[i].size;
            if (covers == upto + b.len) {
                a->nparts = (size_t)r.zinc_parts;
                a->flushed = upto;
                kept = true;
            }
        }
        /* else fewer parts recorded than listed and no state: the session reopens at the
         * parts' size (the tail's bytes are in them) */
        if (kept && b.len > 0) {
            size_t len;
            a->blen = a->bcap = b.len;
            a->buf = zn_buf_detach(&b, &len);
        }
        if (err == ZN_OK && r.etag.len > 0) {
            memcpy(a->tail_etag, r.etag.v, r.etag.len);
            a->tail_etag[r.etag.len] = '\0';
            known_save(a, a->tail_etag, r.zinc_parts, obj_len, kept);
        }
    }
    zn_buf_release(&b);
    if (err != ZN_OK) {
        a->gone = true;
        s3_append_close((st_append_t *)a);
        return err;
    }
    *size = a->flushed + a->blen;
    *out = (st_append_t *)a;
    return ZN_OK;
}

zn_err_t s3_append_write(st_append_t *_a, uint64_t off, const void *p, size_t n, bool *torn)
{
    s3_app_t *a = (s3_app_t *)_a;
    const char *src = p;
    size_t parts0 = a->nparts, blen0 = a->blen;
    size_t ps = a->s->part_size;
    zn_err_t err;

    if (a->gone || a->completed || off != a->flushed + a->blen)
        return ZN_EINVAL;
    if (n > 0 && (err = ensure_tail(a)) != ZN_OK)
        return err;
    while (n > 0) {
        size_t take = ps - a->blen < n ? ps - a->blen : n;
        if ((err = buf_reserve(a, a->blen + take)) != ZN_OK)
            goto fail;
        memcpy(a->buf + a->blen, src, take);
        a->blen += take;
        a->dirty = true;
        src += take;
        n -= take;
        if (a->blen == ps) {
            if ((err = part_put(a, ps)) != ZN_OK)
                goto fail;
            a->blen = 0;
        }
    }
    return ZN_OK;
fail:
    if (a->nparts == parts0)
        a->blen = blen0; /* nothing sent: back to off, the buffer still holds the old tail */
    else
        *torn = true;
    return err;
}

zn_err_t s3_append_read(st_append_t *_a, uint64_t off, void *buf, size_t len, size_t *got)
{
    s3_app_t *a = (s3_app_t *)_a;
    *got = 0;
    /* the tail is in memory; parts of an unfinished multipart upload cannot be read back */
    if (off < a->flushed)
        return ZN_EUNSUPP;
    uint64_t rel = off - a->flushed;
    if (rel >= a->blen)
        return ZN_OK;
    zn_err_t err = ensure_tail(a);
    if (err != ZN_OK)
        return err;
    size_t n = a->blen - (size_t)rel < len ? a->blen - (size_t)rel : len;
    memcpy(buf, a->buf + rel, n);
    *got = n;
    return ZN_OK;
}

static zn_err_t mp_complete(s3_app_t *a)
{
    zn_buf_t body, q, b;
    zn_err_t err = ZN_EINVAL;
    zn_buf_init(&body, (size_t)a->nparts * 128 + 128);
    zn_buf_init(&q, 2048);
    zn_buf_init(&b, S3_ERRBODY_MAX);
    if (zn_buf_append(&body, "<CompleteMultipartUpload>", 25) != ZN_OK)
        goto done;
    for (size_t i = 0; i < a->nparts; i++)
        if (zn_buf_printf(&body, "<Part><PartNumber>%zu</PartNumber><ETag>\"%s\"</ETag></Part>", i + 1, a->parts[i].etag) != ZN_OK)
            goto done;
    if (zn_buf_append(&body, "</CompleteMultipartUpload>", 26) != ZN_OK || upload_query(a, &q, "") != ZN_OK)
        goto done;
    s3_req_t r = {.method = "POST", .key = a->key, .query = q.p, .body = body.p, .body_len = body.len, .out = &b};
    /* 200 with an <Error> body is S3's way to fail a completion that took long */
    if ((err = s3_do(a->s, &r)) == ZN_OK && b.p != NULL && memmem(b.p, b.len, "<Error>", 7) != NULL)
        err = ZN_EIO;
    if (err == ZN_OK) {
        a->completed = true;
        a->upload_id[0] = '\0';
    }
done:
    zn_buf_release(&body);
    zn_buf_release(&q);
    zn_buf_release(&b);
    return err;
}

static zn_err_t del_key(s3_t *s, const char *key)
{
    s3_req_t r = {.method = "DELETE", .key = key, .query = ""};
    return s3_do(s, &r);
}

zn_err_t s3_append_commit(st_append_t *_a, const char *key, bool exclusive)
{
    s3_app_t *a = (s3_app_t *)_a;
    zn_err_t err;
    s3_req_t r = {.method = "HEAD", .key = key, .query = ""};

    if (a->gone || !s3_key_ok(a->s, key))
        return ZN_EINVAL;
    if ((err = ensure_tail(a)) != ZN_OK)
        return err;
    known_drop(a->s, a->key);
    if (a->nparts == 0 && !a->completed) {
        /* never filled a part: one conditional PUT, then the session object goes */
        err = s3_put_cond(a->s, key, a->buf, a->blen, exclusive ? "if-none-match" : NULL, "*", NULL);
        if (err == ST_ECONFLICT && exclusive)
            return ZN_EEXIST;
        if (err != ZN_OK)
            return err;
        a->gone = true;
        (void)del_key(a->s, a->key); /* a left-over session object is GC's to sweep */
        return ZN_OK;
    }
    if (exclusive && (err = s3_do(a->s, &r)) != ZN_ENOENT)
        return err == ZN_OK ? ZN_EEXIST : err;
    if (!a->completed) {
        if (a->blen > 0) {
            if ((err = part_put(a, a->blen)) != ZN_OK)
                return err;
            a->blen = 0;
        }
        if (a->nparts < a->listed) {
            zn_log(ZN_LOG_WARN, "s3: an upload session reopened before a part it had sent ends short of it; refused",
                   ZN_LSTR("key", a->key));
            return ZN_EIO; /* header comment: RGW would refuse the completion */
        }
        if ((err = mp_complete(a)) != ZN_OK)
            return err;
    }
    if ((err = s3_copy_object(a->s, a->key, key, a->flushed + a->blen, false)) != ZN_OK)
        return err;
    a->gone = true;
    (void)del_key(a->s, a->key);
    return ZN_OK;
}

/* ---- copies past CopyObject's limit ----------------------------------------------------------- */

/* One UploadPartCopy of src's bytes [off, off+n) as the next part of a's upload. */
static zn_err_t part_copy(s3_app_t *a, const char *src, uint64_t off, uint64_t n)
{
    zn_buf_t q, b;
    zn_slice_t v;
    char range[64], etag[ST_VERSION_MAX + 1];
    zn_err_t err = ZN_EINVAL;
    if (a->nparts == MAX_PARTS)
        return ZN_ETOOBIG;
    zn_buf_init(&q, 2048);
    zn_buf_init(&b, S3_ERRBODY_MAX);
    int k = snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)off, (unsigned long long)(off + n - 1));
    if (k < 0 || (size_t)k >= sizeof(range) || zn_buf_printf(&q, "partNumber=%zu", a->nparts + 1) != ZN_OK ||
        upload_query(a, &q, "&") != ZN_OK)
        goto done;
    s3_req_t r = {.method = "PUT", .key = a->key, .query = q.p, .out = &b};
    s3_req_hdr(&r, "x-amz-copy-source", src);
    s3_req_hdr(&r, "x-amz-copy-source-range", range);
    if ((err = s3_do(a->s, &r)) != ZN_OK)
        goto done;
    /* the part's ETag is in the body (<CopyPartResult>), which may also be a late <Error> */
    const char *p = b.p;
    if (p == NULL || memmem(b.p, b.len, "<Error>", 7) != NULL || !s3_xml_next(&p, b.p + b.len, "ETag", &v) ||
        s3_xml_text(v, etag, sizeof(etag)) != ZN_OK) {
        err = ZN_EIO;
        goto done;
    }
    parts_push(a, etag, strlen(etag), n);
done:
    zn_buf_release(&q);
    zn_buf_release(&b);
    return err;
}

zn_err_t s3_copy_parts(s3_t *s, const char *src, const char *to, uint64_t size)
{
    uint64_t part = s->copy_part, min = (size + MAX_PARTS - 1) / MAX_PARTS;
    if (part < min)
        part = min;
    s3_app_t *a = app_new(s, to);
    a->gone = true; /* never a session: nothing to write back at close */
    zn_err_t err = mp_create(a);
    for (uint64_t off = 0; err == ZN_OK && off < size; off += part)
        err = part_copy(a, src, off, size - off < part ? size - off : part);
    if (err == ZN_OK)
        err = mp_complete(a);
    if (err != ZN_OK && a->upload_id[0] != '\0' && mp_abort(a) != ZN_OK)
        zn_log(ZN_LOG_WARN, "s3: could not abort a failed multipart copy (left to the bucket lifecycle rules)", ZN_LSTR("key", to));
    s3_append_close((st_append_t *)a);
    return err;
}

zn_err_t s3_append_remove(st_append_t *_a)
{
    s3_app_t *a = (s3_app_t *)_a;
    zn_err_t err = ZN_OK;
    known_drop(a->s, a->key);
    if (a->upload_id[0] != '\0') {
        err = mp_abort(a);
        if (err != ZN_OK && err != ZN_ENOENT)
            return err;
        a->upload_id[0] = '\0';
    }
    err = del_key(a->s, a->key);
    a->gone = true;
    return err == ZN_ENOENT ? ZN_OK : err;
}

void s3_append_close(st_append_t *_a)
{
    s3_app_t *a = (s3_app_t *)_a;
    if (a == NULL)
        return;
    if (!a->gone && a->dirty && tail_put(a, false) != ZN_OK)
        zn_log(ZN_LOG_WARN, "s3: could not save an upload session's tail; it resumes shorter", ZN_LSTR("key", a->key));
    free(a->parts);
    free(a->buf);
    free(a->key);
    free(a);
}
