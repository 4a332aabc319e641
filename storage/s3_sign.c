/*
 * storage/s3_sign.c - AWS SigV4 request signing (see s3_sign.h). The canonical request is
 *   METHOD \n PATH \n SORTED-QUERY \n name:value\n... \n signed;names \n PAYLOAD-HASH
 * its SHA-256 goes into the string to sign with the date and scope, and the signing key
 * is HMAC("AWS4"+secret, day) -> region -> service -> "aws4_request".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "storage/s3_sign.h"

#define CANON_MAX (16u << 10)

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void st_s3_sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(p, n, md);
    hex(md, sizeof(md), out);
}

void st_s3_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

zn_err_t st_s3_uri_encode(zn_buf_t *b, const char *s, size_t n, bool keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                     c == '.' || c == '~' || (keep_slash && c == '/');
        char esc[3] = {'%', digits[c >> 4], digits[c & 15]};
        zn_err_t err = plain ? zn_buf_append(b, &s[i], 1) : zn_buf_append(b, esc, 3);
        if (err != ZN_OK)
            return err;
    }
    return ZN_OK;
}

typedef struct qpair {
    const char *p;
    size_t n, keylen; /* the whole "k=v" and the length of k */
} qpair_t;

static int qpair_cmp(const void *a, const void *b)
{
    const qpair_t *x = a, *y = b;
    size_t kn = x->keylen < y->keylen ? x->keylen : y->keylen;
    int c = memcmp(x->p, y->p, kn);
    if (c != 0 || x->keylen != y->keylen)
        return c != 0 ? c : (x->keylen < y->keylen ? -1 : 1);
    /* equal names: by value */
    const char *xv = x->p + x->keylen, *yv = y->p + y->keylen;
    size_t xn = x->n - x->keylen, yn = y->n - y->keylen;
    c = memcmp(xv, yv, xn < yn ? xn : yn);
    return c != 0 ? c : (xn < yn ? -1 : xn > yn);
}

#define MAX_QPAIRS 32

/* The sorted query, every pair as k=v (a bare k becomes "k="). */
static zn_err_t canon_query(zn_buf_t *b, const char *q)
{
    qpair_t pairs[MAX_QPAIRS];
    size_t n = 0;
    zn_err_t err = ZN_OK;

    for (const char *p = q; *p != '\0';) {
        const char *amp = strchr(p, '&'), *end = amp != NULL ? amp : p + strlen(p);
        if (end > p) {
            if (n == MAX_QPAIRS)
                return ZN_EINVAL;
            const char *eq = memchr(p, '=', (size_t)(end - p));
            pairs[n++] = (qpair_t){p, (size_t)(end - p), eq != NULL ? (size_t)(eq - p) : (size_t)(end - p)};
        }
        p = amp != NULL ? amp + 1 : end;
    }
    qsort(pairs, n, sizeof(pairs[0]), qpair_cmp);
    for (size_t i = 0; i < n && err == ZN_OK; i++) {
        if (i > 0)
            err = zn_buf_append(b, "&", 1);
        if (err == ZN_OK)
            err = zn_buf_append(b, pairs[i].p, pairs[i].n);
        if (err == ZN_OK && pairs[i].keylen == pairs[i].n)
            err = zn_buf_append(b, "=", 1);
    }
    return err;
}

typedef struct hsort {
    char name[64];
    const char *value;
} hsort_t;

static int hsort_cmp(const void *a, const void *b)
{
    return strcmp(((const hsort_t *)a)->name, ((const hsort_t *)b)->name);
}

/* Appends the value with leading/trailing blanks dropped and inner runs of blanks
 * collapsed to one space, as SigV4 canonical headers want. */
static zn_err_t append_trimmed(zn_buf_t *b, const char *v)
{
    bool pending_space = false, any = false;
    for (; *v != '\0'; v++) {
        if (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r') {
            pending_space = any;
            continue;
        }
        if ((pending_space && zn_buf_append(b, " ", 1) != ZN_OK) || zn_buf_append(b, v, 1) != ZN_OK)
            return ZN_ETOOBIG;
        pending_space = false;
        any = true;
    }
    return ZN_OK;
}

/* Canonical header block and the signed-headers list. */
static zn_err_t canon_headers(const st_s3_sign_t *s, zn_buf_t *b, zn_buf_t *names)
{
    hsort_t h[ST_S3_MAX_HDRS];
    if (s->nhdrs > ST_S3_MAX_HDRS)
        return ZN_EINVAL;
    for (size_t i = 0; i < s->nhdrs; i++) {
        size_t len = strlen(s->hdrs[i].name);
        if (len == 0 || len >= sizeof(h[i].name))
            return ZN_EINVAL;
        for (size_t j = 0; j <= len; j++) {
            char c = s->hdrs[i].name[j];
            h[i].name[j] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
        }
        h[i].value = s->hdrs[i].value;
    }
    qsort(h, s->nhdrs, sizeof(h[0]), hsort_cmp);
    for (size_t i = 0; i < s->nhdrs; i++) {
        if (zn_buf_printf(b, "%s:", h[i].name) != ZN_OK || append_trimmed(b, h[i].value) != ZN_OK ||
            zn_buf_append(b, "\n", 1) != ZN_OK || zn_buf_printf(names, i > 0 ? ";%s" : "%s", h[i].name) != ZN_OK)
            return ZN_ETOOBIG;
    }
    return ZN_OK;
}

/* out may be key: the digest goes to a temp first. */
static void hmac(const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = sizeof(md);
    HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), md, &len);
    memcpy(out, md, 32);
    OPENSSL_cleanse(md, sizeof(md));
}

/* The hex signature of the canonical request made of s (its query as given) and the
 * credential scope "day/region/service/aws4_request"; the signed names into names. */
static zn_err_t signature(const st_s3_sign_t *s, zn_buf_t *names, char scope[160], char sig[65])
{
    zn_err_t err = ZN_EINVAL;
    zn_buf_t canon;
    char day[9], creq_hash[65], sts[400], kbuf[160];
    unsigned char k[32];

    zn_buf_init(&canon, CANON_MAX);
    if (s->amz_date == NULL || strlen(s->amz_date) != 16 || s->amz_date[8] != 'T')
        goto done;
    memcpy(day, s->amz_date, 8);
    day[8] = '\0';
    if (zn_buf_printf(&canon, "%s\n%s\n", s->method, s->path) != ZN_OK || canon_query(&canon, s->query) != ZN_OK ||
        zn_buf_append(&canon, "\n", 1) != ZN_OK || canon_headers(s, &canon, names) != ZN_OK ||
        zn_buf_printf(&canon, "\n%s\n%s", names->len > 0 ? names->p : "", s->payload_hash) != ZN_OK)
        goto done;
    st_s3_sha256_hex(canon.p, canon.len, creq_hash);
    int n = snprintf(scope, 160, "%s/%s/%s/aws4_request", day, s->region, s->service);
    if (n < 0 || n >= 160)
        goto done;
    n = snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", s->amz_date, scope, creq_hash);
    if (n < 0 || (size_t)n >= sizeof(sts))
        goto done;
    n = snprintf(kbuf, sizeof(kbuf), "AWS4%s", s->secret_key);
    if (n < 0 || (size_t)n >= sizeof(kbuf))
        goto done;
    hmac(kbuf, (size_t)n, day, k);
    hmac(k, sizeof(k), s->region, k);
    hmac(k, sizeof(k), s->service, k);
    hmac(k, sizeof(k), "aws4_request", k);
    hmac(k, sizeof(k), sts, k);
    hex(k, sizeof(k), sig);
    err = ZN_OK;
done:
    OPENSSL_cleanse(kbuf, sizeof(kbuf));
    OPENSSL_cleanse(k, sizeof(k));
    zn_buf_release(&canon);
    return err;
}

zn_err_t st_s3_sign(const st_s3_sign_t *s, char *auth, size_t authlen)
{
    zn_buf_t names;
    char scope[160], sig[65];

    zn_buf_init(&names, 1024);
    zn_err_t err = signature(s, &names, scope, sig);
    if (err == ZN_OK) {
        int n = snprintf(auth, authlen, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", s->access_key,
                         scope, names.len > 0 ? names.p : "", sig);
        err = n < 0 || (size_t)n >= authlen ? ZN_EINVAL : ZN_OK;
    }
    zn_buf_release(&names);
    return err;
}

#define PRESIGN_MAX (8u << 10)

zn_err_t st_s3_presign(const st_s3_sign_t *s, const char *base_url, unsigned expires, char **out)
{
    zn_buf_t q, names;
    char scope[160], sig[65];
    const char *host = strstr(base_url, "://");
    zn_err_t err = ZN_EINVAL;

    *out = NULL;
    if (host == NULL || host[3] == '\0' || expires == 0 || expires > 604800 || s->amz_date == NULL ||
        strlen(s->amz_date) != 16)
        return ZN_EINVAL;
    host += 3;
    zn_buf_init(&q, PRESIGN_MAX);
    zn_buf_init(&names, 64);
    /* the scope goes into X-Amz-Credential before it is signed: build it the same way */
    int n = snprintf(scope, sizeof(scope), "%.8s/%s/%s/aws4_request", s->amz_date, s->region, s->service);
    if (n < 0 || (size_t)n >= sizeof(scope))
        goto done;
    if (zn_buf_printf(&q, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=") != ZN_OK ||
        st_s3_uri_encode(&q, s->access_key, strlen(s->access_key), false) != ZN_OK ||
        zn_buf_append(&q, "%2F", 3) != ZN_OK || st_s3_uri_encode(&q, scope, strlen(scope), false) != ZN_OK ||
        zn_buf_printf(&q, "&X-Amz-Date=%s&X-Amz-Expires=%u&X-Amz-SignedHeaders=host%s%s", s->amz_date, expires,
                      s->query[0] != '\0' ? "&" : "", s->query) != ZN_OK)
        goto done;
    st_s3_hdr_t hosthdr = {"host", host};
    st_s3_sign_t p = *s;
    p.query = q.p;
    p.hdrs = &hosthdr;
    p.nhdrs = 1;
    p.payload_hash = ST_S3_UNSIGNED;
    if ((err = signature(&p, &names, scope, sig)) != ZN_OK)
        goto done;
    zn_buf_t url;
    zn_buf_init(&url, PRESIGN_MAX);
    if (zn_buf_printf(&url, "%s%s?%s&X-Amz-Signature=%s", base_url, s->path, q.p, sig) != ZN_OK) {
        zn_buf_release(&url);
        err = ZN_EINVAL;
        goto done;
    }
    size_t len;
    *out = zn_buf_detach(&url, &len);
    zn_buf_release(&url);
done:
    zn_buf_release(&q);
    zn_buf_release(&names);
    return err;
}
