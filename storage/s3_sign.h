/*
 * storage/s3_sign.h - private to storage/: AWS Signature Version 4 for the S3 driver
 * (s3_driver.c), HMAC-SHA256 from OpenSSL. Signed in our own code rather than by libcurl:
 * curl 7.88's CURLOPT_AWS_SIGV4 mis-signs query strings (../shared/docs/s3.md).
 *
 * The caller builds the request from encoded parts: a path already URI-encoded with
 * st_s3_uri_encode (keeping '/'), a query string whose names and values are encoded the
 * same way, and every header it wants signed (host and x-amz-date at least; S3 also wants
 * x-amz-content-sha256). st_s3_sign canonicalises (query pairs sorted, header names
 * lower-cased and sorted, values trimmed) and writes the Authorization header value.
 */
#ifndef ZN_STORAGE_S3_SIGN_H
#define ZN_STORAGE_S3_SIGN_H

#include <stddef.h>
#include <time.h>

#include "common/zn.h"

#define ST_S3_UNSIGNED "UNSIGNED-PAYLOAD"
#define ST_S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ST_S3_MAX_HDRS 16
#define ST_S3_AUTH_MAX 512

typedef struct st_s3_hdr {
    const char *name, *value;
} st_s3_hdr_t;

typedef struct st_s3_sign {
    const char *access_key, *secret_key, *region, *service;
    const char *method;
    const char *path;  /* encoded, starting with '/' */
    const char *query; /* encoded "a=1&b" (no '?'), or "" */
    const st_s3_hdr_t *hdrs;
    size_t nhdrs;             /* at most ST_S3_MAX_HDRS */
    const char *payload_hash; /* hex SHA-256 of the body, or ST_S3_UNSIGNED */
    const char *amz_date;     /* YYYYMMDDTHHMMSSZ, also sent as x-amz-date */
} st_s3_sign_t;

/* Writes "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." into auth
 * (ST_S3_AUTH_MAX). ZN_EINVAL on too many headers, a malformed date or a result that
 * does not fit. */
zn_err_t st_s3_sign(const st_s3_sign_t *s, char *auth, size_t authlen);

/* A presigned URL (SigV4 query authentication, "UNSIGNED-PAYLOAD", only host signed):
 * base_url ("http(s)://host[:port]", the host signed as it appears there) + s->path +
 * "?" + the X-Amz-* parameters and s->query, the signature last. s->hdrs and
 * s->payload_hash are ignored; s->amz_date is the signing time, valid for expires seconds
 * (1..604800). On ZN_OK *out is the caller's (malloc'd). ZN_EINVAL on bad input. */
zn_err_t st_s3_presign(const st_s3_sign_t *s, const char *base_url, unsigned expires, char **out);

/* Appends the RFC 3986 encoding S3 wants (unreserved A-Z a-z 0-9 - _ . ~ kept, the rest
 * %XX upper-case; '/' kept when keep_slash) of s[0..n) to b. */
zn_err_t st_s3_uri_encode(zn_buf_t *b, const char *s, size_t n, bool keep_slash);

/* Formats t as YYYYMMDDTHHMMSSZ into out[17]. */
void st_s3_amz_date(time_t t, char out[17]);

/* Lower-case hex SHA-256 of p[0..n) into out[65]. */
void st_s3_sha256_hex(const void *p, size_t n, char out[65]);

#endif
