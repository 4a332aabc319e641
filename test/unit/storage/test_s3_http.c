/*
 * The S3 client (storage/s3_http.c) and the driver's XML readers (s3_driver.c statics)
 * against a scripted HTTP server on 127.0.0.1: bounded retries on throttling and 5xx,
 * error mapping, and answers that must not be trusted (bodies longer than asked for,
 * listings truncated without a token, broken XML).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "storage/s3_driver.c"
#include "test/unit/storage/st_helpers.h"

typedef struct fake {
    int lfd, port;
    pthread_t th;
    const char *answer; /* the whole HTTP response sent to every request */
    _Atomic int requests;
    _Atomic int stop;
} fake_t;

/* Reads one request head (and a body of Content-Length bytes) from fd. */
static bool read_request(int fd)
{
    char buf[16384];
    size_t len = 0;
    while (len < sizeof(buf) - 1) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            return false;
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end == NULL)
            continue;
        char *cl = strcasestr(buf, "content-length:");
        size_t body = cl != NULL && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
        size_t have = len - (size_t)(end + 4 - buf);
        while (have < body) {
            n = read(fd, buf, sizeof(buf));
            if (n <= 0)
                return false;
            have += (size_t)n;
        }
        return true;
    }
    return false;
}

static void *fake_main(void *arg)
{
    fake_t *f = arg;
    while (!f->stop) {
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        while (!f->stop && read_request(fd)) {
            f->requests++;
            if (write(fd, f->answer, strlen(f->answer)) < 0)
                break;
        }
        close(fd);
    }
    return NULL;
}

static fake_t *fake_start(const char *answer)
{
    fake_t *f = calloc(1, sizeof(*f));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    f->answer = answer;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->lfd, 8), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &alen), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(zn_thread_create(&f->th, "t-fake-s3", fake_main, f), 0);
    return f;
}

static void fake_stop(fake_t *f)
{
    f->stop = 1;
    shutdown(f->lfd, SHUT_RDWR); /* wakes accept */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    (void)connect(fd, (struct sockaddr *)&a, sizeof(a));
    close(fd);
    pthread_join(f->th, NULL);
    close(f->lfd);
    free(f);
}

static st_driver_t *driver_for(const fake_t *f)
{
    char ep[64], err[256];
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f->port);
    zn_config_s3_t c = {.name = "s3",
                        .region = "us-east-1",
                        .bucket = "bkt",
                        .regionendpoint = ep,
                        .rootdirectory = "root",
                        .accesskey = "AK",
                        .secretkey = "SK",
                        .forcepathstyle = true,
                        .chunksize = 5u << 20};
    st_driver_t *d = st_s3_driver_new(&c, err, sizeof(err));
    assert_non_null(d);
    return d;
}

#define SLOWDOWN_BODY "<Error><Code>SlowDown</Code></Error>"

static void test_throttling_bounded(void **state)
{
    fake_t *f = fake_start("HTTP/1.1 503 Slow Down\r\nContent-Length: 36\r\n\r\n" SLOWDOWN_BODY);
    st_driver_t *d = driver_for(f);
    uint64_t size;
    assert_int_equal(d->ops->stat(d, "r/index.json", &size, NULL), ZN_EAGAIN);
    assert_int_equal(f->requests, S3_ATTEMPTS);
    s3_req_t r = {.method = "GET", .key = "r/index.json", .query = ""};
    f->requests = 0;
    assert_int_equal(s3_do((s3_t *)d, &r), ZN_EAGAIN);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.code, "SlowDown");
    assert_int_equal(f->requests, S3_ATTEMPTS);
    d->ops->free(d);
    fake_stop(f);
}

static void test_not_retried(void **state)
{
    fake_t *f = fake_start("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    st_driver_t *d = driver_for(f);
    assert_int_equal(d->ops->stat(d, "r/index.json", NULL, NULL), ZN_ENOENT);
    assert_int_equal(f->requests, 1);
    d->ops->free(d);
    fake_stop(f);
    f = fake_start("HTTP/1.1 412 Precondition Failed\r\nContent-Length: 0\r\n\r\n");
    d = driver_for(f);
    st_version_t v = {3, "abc"};
    assert_int_equal(d->ops->put_if(d, "r/index.json", "{}", 2, &v, NULL), ST_ECONFLICT);
    assert_int_equal(d->ops->put(d, "r/index.json", "{}", 2, true), ZN_EEXIST);
    assert_int_equal(f->requests, 2);
    d->ops->free(d);
    fake_stop(f);
    f = fake_start("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    d = driver_for(f);
    assert_int_equal(d->ops->stat(d, "r/index.json", NULL, NULL), ZN_EDENIED);
    d->ops->free(d);
    fake_stop(f);
}

/* A server sending more than the Range asked for, or more than get's limit. */
static void test_oversized_answers(void **state)
{
    fake_t *f = fake_start("HTTP/1.1 200 OK\r\nETag: \"e1\"\r\nContent-Length: 10\r\n\r\n0123456789");
    st_driver_t *d = driver_for(f);
    char *text = NULL, buf[4];
    size_t len;
    assert_int_equal(d->ops->get(d, "r/index.json", 4, &text, &len, NULL), ZN_ETOOBIG);
    assert_null(text);
    s3_req_t r = {.method = "GET", .key = "r/x", .query = "", .dst = buf, .dst_cap = sizeof(buf)};
    assert_int_equal(s3_do((s3_t *)d, &r), ZN_EIO);
    st_version_t v;
    assert_int_equal(d->ops->get(d, "r/index.json", 64, &text, &len, &v), ZN_OK);
    assert_int_equal(len, 10);
    assert_int_equal(v.len, 2); /* the quotes are not part of the version */
    assert_memory_equal(v.v, "e1", 2);
    free(text);
    d->ops->free(d);
    fake_stop(f);
}

static bool count(void *data, const st_entry_t *e)
{
    (*(int *)data)++;
    return true;
}

static void test_list_pages(void **state)
{
    list_state_t ls = {count, NULL, 7, false, false};
    int n = 0;
    char next[64];
    zn_buf_t b;
    ls.data = &n;
    zn_buf_init(&b, 1 << 16);
    /* "root/r/" is 7 bytes: names are what follows; a deeper key is not an entry */
    assert_int_equal(zn_buf_printf(&b, "<ListBucketResult><IsTruncated>true</IsTruncated>"
                                       "<Contents><Key>root/r/a&amp;b</Key><Size>3</Size>"
                                       "<LastModified>2026-12-02T16:00:00.000Z</LastModified></Contents>"
                                       "<Contents><Key>root/r/x/y</Key><Size>1</Size></Contents>"
                                       "<CommonPrefixes><Prefix>root/r/blobs/</Prefix></CommonPrefixes>"
                                       "<NextContinuationToken>tok</NextContinuationToken></ListBucketResult>"),
                     ZN_OK);
    assert_int_equal(list_page(&b, &ls, next, sizeof(next)), ZN_OK);
    assert_int_equal(n, 2);
    assert_string_equal(next, "tok");
    /* truncated without a token would loop forever: refused */
    b.len = 0;
    assert_int_equal(zn_buf_printf(&b, "<IsTruncated>true</IsTruncated><Contents><Key>root/r/a</Key><Size>1</Size></Contents>"),
                     ZN_OK);
    assert_int_equal(list_page(&b, &ls, next, sizeof(next)), ZN_EIO);
    /* a key outside the listed prefix, a bad size, a broken entity */
    const char *bad[] = {"<Contents><Key>root/</Key><Size>1</Size></Contents>",
                         "<Contents><Key>root/r/a</Key><Size>-1</Size></Contents>",
                         "<Contents><Key>root/r/a&bogus;</Key><Size>1</Size></Contents>",
                         "<CommonPrefixes><Prefix>root/r/noslash</Prefix></CommonPrefixes>"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        b.len = 0;
        assert_int_equal(zn_buf_printf(&b, "%s", bad[i]), ZN_OK);
        assert_int_equal(list_page(&b, &ls, next, sizeof(next)), ZN_EIO);
    }
    zn_buf_release(&b);
}

static void test_xml(void **state)
{
    const char doc[] = "<a><k>v1</k><k>v2</k><open>never closed";
    const char *p = doc, *end = doc + sizeof(doc) - 1;
    zn_slice_t v;
    char out[4];
    assert_true(s3_xml_next(&p, end, "k", &v));
    assert_true(zn_slice_eq(v, "v1"));
    assert_true(s3_xml_next(&p, end, "k", &v));
    assert_true(zn_slice_eq(v, "v2"));
    assert_false(s3_xml_next(&p, end, "k", &v));
    p = doc;
    assert_false(s3_xml_next(&p, end, "open", &v));
    assert_int_equal(s3_xml_text(zn_slice("&lt;&gt;", 8), out, sizeof(out)), ZN_OK);
    assert_string_equal(out, "<>");
    assert_int_equal(s3_xml_text(zn_slice("abcd", 4), out, sizeof(out)), ZN_EINVAL); /* no room for the NUL */
    assert_int_equal(s3_xml_text(zn_slice("&amp", 4), out, sizeof(out)), ZN_EINVAL);
}

static void test_blob_key_digest(void **state)
{
    zn_digest_t d, x;
    zn_digest_of(ZN_DIGEST_SHA256, "x", 1, &x);
    char key[256];
    snprintf(key, sizeof(key), "lib/app/blobs/sha256/%s", x.str + 7);
    assert_true(key_digest(key, &d));
    assert_true(zn_digest_eq(&d, &x));
    assert_false(key_digest("lib/app/index.json", &d));
    assert_false(key_digest("lib/app/blobs/sha256/zz", &d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_throttling_bounded), cmocka_unit_test(test_not_retried), cmocka_unit_test(test_oversized_answers),
        cmocka_unit_test(test_list_pages),         cmocka_unit_test(test_xml),         cmocka_unit_test(test_blob_key_digest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
