/*
 * SigV4 signing (storage/s3_sign.c) against AWS's published examples: the SigV4 test
 * suite (credentials AKIDEXAMPLE, service "service", 20150830T123600Z: get-vanilla,
 * get-vanilla-empty-query-key, get-vanilla-query-order-key-case, post-vanilla) and the S3
 * guide's GET Object example (Range, signed x-amz-content-sha256 of an empty payload).
 * The S3 guide's presigned URL example (query authentication: GET examplebucket/test.txt,
 * 20130524T000000Z, 86400 s) for redirectBlobURL.
 * Plus the parts zinc relies on: query sorting with bare keys, URI encoding, header
 * trimming, and UNSIGNED-PAYLOAD changing the signature.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "storage/s3_sign.h"

#define SUITE_AK "AKIDEXAMPLE"
#define SUITE_SK "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE "20150830T123600Z"
#define SUITE_CRED "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "

static const st_s3_hdr_t suite_hdrs[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", SUITE_DATE}};

static void suite_sign(const char *method, const char *query, char *auth)
{
    st_s3_sign_t s = {
        .access_key = SUITE_AK,
        .secret_key = SUITE_SK,
        .region = "us-east-1",
        .service = "service",
        .method = method,
        .path = "/",
        .query = query,
        .hdrs = suite_hdrs,
        .nhdrs = 2,
        .payload_hash = ST_S3_EMPTY_SHA256,
        .amz_date = SUITE_DATE,
    };
    assert_int_equal(st_s3_sign(&s, auth, ST_S3_AUTH_MAX), ZN_OK);
}

static void test_suite_get_vanilla(void **state)
{
    char auth[ST_S3_AUTH_MAX];
    suite_sign("GET", "", auth);
    assert_string_equal(auth, SUITE_CRED "SignedHeaders=host;x-amz-date, "
                                         "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

static void test_suite_post_vanilla(void **state)
{
    char auth[ST_S3_AUTH_MAX];
    suite_sign("POST", "", auth);
    assert_string_equal(auth, SUITE_CRED "SignedHeaders=host;x-amz-date, "
                                         "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

static void test_suite_query(void **state)
{
    char auth[ST_S3_AUTH_MAX];
    suite_sign("GET", "Param1=value1", auth);
    assert_string_equal(auth, SUITE_CRED "SignedHeaders=host;x-amz-date, "
                                         "Signature=a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb");
    /* get-vanilla-query-order-key-case: the pairs are sorted before signing */
    suite_sign("GET", "Param2=value2&Param1=value1", auth);
    assert_string_equal(auth, SUITE_CRED "SignedHeaders=host;x-amz-date, "
                                         "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

static void s3_get_object(const char *payload, const char *range, char *auth)
{
    st_s3_hdr_t h[] = {
        {"host", "examplebucket.s3.amazonaws.com"},
        {"range", range},
        {"x-amz-content-sha256", payload},
        {"x-amz-date", "20130524T000000Z"},
    };
    st_s3_sign_t s = {
        .access_key = "AKIAIOSFODNN7EXAMPLE",
        .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        .region = "us-east-1",
        .service = "s3",
        .method = "GET",
        .path = "/test.txt",
        .query = "",
        .hdrs = h,
        .nhdrs = 4,
        .payload_hash = payload,
        .amz_date = "20130524T000000Z",
    };
    assert_int_equal(st_s3_sign(&s, auth, ST_S3_AUTH_MAX), ZN_OK);
}

static void test_s3_get_object_range(void **state)
{
    char auth[ST_S3_AUTH_MAX], unsigned_auth[ST_S3_AUTH_MAX], trimmed[ST_S3_AUTH_MAX];
    s3_get_object(ST_S3_EMPTY_SHA256, "bytes=0-9", auth);
    assert_string_equal(auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                              "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                              "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    /* the payload hash is part of what is signed */
    s3_get_object(ST_S3_UNSIGNED, "bytes=0-9", unsigned_auth);
    assert_string_not_equal(auth, unsigned_auth);
    /* header values are trimmed and inner blanks collapsed: same signature */
    s3_get_object(ST_S3_EMPTY_SHA256, "  bytes=0-9 \t", trimmed);
    assert_string_equal(auth, trimmed);
}

static void test_query_bare_keys_and_ties(void **state)
{
    char a[ST_S3_AUTH_MAX], b[ST_S3_AUTH_MAX];
    /* "uploads" and "uploads=" canonicalise alike, and order does not matter */
    suite_sign("POST", "uploads", a);
    suite_sign("POST", "uploads=", b);
    assert_string_equal(a, b);
    suite_sign("GET", "list-type=2&delimiter=%2F&prefix=r%2F", a);
    suite_sign("GET", "prefix=r%2F&delimiter=%2F&list-type=2", b);
    assert_string_equal(a, b);
    suite_sign("GET", "list-type=2&delimiter=%2F&prefix=r%2Fx", b);
    assert_string_not_equal(a, b);
    /* same key twice: sorted by value */
    suite_sign("GET", "a=2&a=1", a);
    suite_sign("GET", "a=1&a=2", b);
    assert_string_equal(a, b);
}

static void test_uri_encode(void **state)
{
    zn_buf_t b;
    zn_buf_init(&b, 256);
    const char in[] = "r/a b+c~d_e.f-g%\xc3\xa9";
    assert_int_equal(st_s3_uri_encode(&b, in, sizeof(in) - 1, true), ZN_OK);
    assert_int_equal(zn_buf_append(&b, "|", 1), ZN_OK);
    assert_int_equal(st_s3_uri_encode(&b, "a/b=", 4, false), ZN_OK);
    assert_int_equal(zn_buf_append(&b, "", 1), ZN_OK);
    assert_string_equal(b.p, "r/a%20b%2Bc~d_e.f-g%25%C3%A9|a%2Fb%3D");
    zn_buf_release(&b);
}

static void test_bad_input(void **state)
{
    char auth[ST_S3_AUTH_MAX], small[40];
    st_s3_hdr_t many[ST_S3_MAX_HDRS + 1];
    for (size_t i = 0; i < ST_S3_MAX_HDRS + 1; i++)
        many[i] = (st_s3_hdr_t){"x-h", "v"};
    st_s3_sign_t s = {SUITE_AK, SUITE_SK,           "us-east-1",        "s3",      "GET", "/", "",
                      many,     ST_S3_MAX_HDRS + 1, ST_S3_EMPTY_SHA256, SUITE_DATE};
    assert_int_equal(st_s3_sign(&s, auth, sizeof(auth)), ZN_EINVAL);
    s.nhdrs = 1;
    s.amz_date = "2015-08-30";
    assert_int_equal(st_s3_sign(&s, auth, sizeof(auth)), ZN_EINVAL);
    s.amz_date = SUITE_DATE;
    assert_int_equal(st_s3_sign(&s, small, sizeof(small)), ZN_EINVAL); /* never cut */
    assert_int_equal(st_s3_sign(&s, auth, sizeof(auth)), ZN_OK);
    char date[17];
    st_s3_amz_date(1440938160, date);
    assert_string_equal(date, SUITE_DATE);
}

/* AWS S3 API reference, "Authenticating Requests: Using Query Parameters": the example URL. */
static void test_presign_aws_example(void **state)
{
    st_s3_sign_t s = {
        .access_key = "AKIAIOSFODNN7EXAMPLE",
        .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        .region = "us-east-1",
        .service = "s3",
        .method = "GET",
        .path = "/test.txt",
        .query = "",
        .amz_date = "20130524T000000Z",
    };
    char *url = NULL;
    assert_int_equal(st_s3_presign(&s, "https://examplebucket.s3.amazonaws.com", 86400, &url), ZN_OK);
    assert_string_equal(url, "https://examplebucket.s3.amazonaws.com/test.txt"
                             "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                             "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
                             "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                             "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    free(url);

    /* the host signed is the one in the URL (port included): another host, another signature */
    assert_int_equal(st_s3_presign(&s, "http://127.0.0.1:7480", 86400, &url), ZN_OK);
    assert_non_null(strstr(url, "http://127.0.0.1:7480/test.txt?X-Amz-Algorithm="));
    assert_null(strstr(url, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"));
    free(url);

    /* bad input: no scheme, no expiry, more than a week, a bad date */
    assert_int_equal(st_s3_presign(&s, "examplebucket.s3.amazonaws.com", 86400, &url), ZN_EINVAL);
    assert_null(url);
    assert_int_equal(st_s3_presign(&s, "https://h", 0, &url), ZN_EINVAL);
    assert_int_equal(st_s3_presign(&s, "https://h", 604801, &url), ZN_EINVAL);
    s.amz_date = "2013-05-24";
    assert_int_equal(st_s3_presign(&s, "https://h", 60, &url), ZN_EINVAL);
    assert_null(url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suite_get_vanilla),
        cmocka_unit_test(test_suite_post_vanilla),
        cmocka_unit_test(test_suite_query),
        cmocka_unit_test(test_s3_get_object_range),
        cmocka_unit_test(test_query_bare_keys_and_ties),
        cmocka_unit_test(test_uri_encode),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_presign_aws_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
