/* Pins the libh2o 2.2.5 internals the upload fast path relies on (server/h1_internals.h):
 * a real HTTP/1 connection is made with h2o_http1_accept on a socketpair and fed a request
 * head with part of its body; every mirrored field must hold what the library put there.
 * If Debian's libh2o changes its layout, this fails instead of the server corrupting
 * memory. Also checks picohttpparser's ABI (phr_parse_request, phr_decode_chunked). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/zn.h"
#include "server/h1_internals.h"

struct fixture {
    h2o_globalconf_t gc;
    h2o_context_t ctx;
    h2o_evloop_t *loop;
    h2o_accept_ctx_t actx;
    int peer;
    h2o_socket_t *sock;
};

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    fail_msg("the handler must not run before the body is complete");
    return -1;
}

static void setup(struct fixture *f)
{
    int fds[2];
    memset(f, 0, sizeof(*f));
    h2o_config_init(&f->gc);
    h2o_hostconf_t *host = h2o_config_register_host(&f->gc, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_create_handler(path, sizeof(h2o_handler_t))->on_req = on_req;
    f->loop = h2o_evloop_create();
    h2o_context_init(&f->ctx, f->loop, &f->gc);
    f->actx = (h2o_accept_ctx_t){.ctx = &f->ctx, .hosts = f->gc.hosts};
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    f->peer = fds[1];
    f->sock = h2o_evloop_socket_create(f->loop, fds[0], 0);
    h2o_http1_accept(&f->actx, f->sock, *h2o_get_timestamp(&f->ctx, NULL, NULL));
}

/* Runs the loop until the connection's entity reader exists (the head is parsed). */
static zn_h1_conn_t *feed(struct fixture *f, const char *bytes, size_t len)
{
    assert_int_equal(write(f->peer, bytes, len), (ssize_t)len);
    zn_h1_conn_t *conn = f->sock->data;
    uint64_t deadline = zn_now_mono_ns() + 30ull * 1000000000ull;
    while (conn->_req_entity_reader == NULL && zn_now_mono_ns() < deadline)
        h2o_evloop_run(f->loop, 10);
    return conn;
}

static void teardown(struct fixture *f)
{
    close(f->peer); /* h2o sees EOF and frees the connection */
    uint64_t deadline = zn_now_mono_ns() + 30ull * 1000000000ull;
    while (!h2o_linklist_is_empty(&f->ctx.http1._conns) && zn_now_mono_ns() < deadline)
        h2o_evloop_run(f->loop, 10);
    assert_true(h2o_linklist_is_empty(&f->ctx.http1._conns));
    h2o_context_dispose(&f->ctx); /* h2o 2.2.5 leaves ctx.queue: the fixtures are static */
    h2o_config_dispose(&f->gc);
    h2o_evloop_destroy(f->loop);
}

static void check_conn(struct fixture *f, zn_h1_conn_t *conn, const char *method)
{
    assert_ptr_equal(conn->sock, f->sock);
    assert_ptr_equal(conn->super.ctx, &f->ctx);
    assert_ptr_equal(conn->req.conn, &conn->super);
    assert_ptr_equal(conn->req._ostr_top, &conn->_ostr_final.super);
    assert_non_null(conn->_ostr_final.super.do_send);
    assert_ptr_equal(conn->_timeout, &f->ctx.http1.req_timeout);
    assert_true(h2o_timeout_is_linked(&conn->_timeout_entry));
    assert_ptr_equal(H2O_STRUCT_FROM_MEMBER(zn_h1_conn_t, _conns, f->ctx.http1._conns.next), conn);
    assert_int_equal(conn->req.version, 0x101);
    assert_true(h2o_memis(conn->req.input.method.base, conn->req.input.method.len, method, strlen(method)));
    assert_int_equal(conn->req.http1_is_persistent, 1);
    assert_int_equal(conn->req.processed_at.at.tv_sec, 0);
    assert_non_null(conn->_req_entity_reader);
    assert_non_null(conn->_req_entity_reader->handle_incoming_entity);
}

static void test_content_length_reader(void **state)
{
    #define HEAD1 "PATCH /v2/a/blobs/uploads/u HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n"
    static const char head[] = HEAD1;
    static struct fixture f; /* keeps ctx.queue reachable for LeakSanitizer */
    setup(&f);
    zn_h1_conn_t *conn = feed(&f, HEAD1 "abc", sizeof(head) - 1 + 3);
    check_conn(&f, conn, "PATCH");
    zn_h1_length_reader_t *r = (void *)conn->_req_entity_reader;
    assert_int_equal(r->content_length, 10);
    assert_int_equal(conn->_reqsize, sizeof(head) - 1 + 10);
    assert_int_equal(f.sock->input->size, sizeof(head) - 1 + 3);
    assert_memory_equal(f.sock->input->bytes + sizeof(head) - 1, "abc", 3);
    teardown(&f);
}

static void test_chunked_reader(void **state)
{
    #define HEAD2 "PUT /v2/a/blobs/uploads/u?digest=x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    static const char head[] = HEAD2;
    static struct fixture f; /* keeps ctx.queue reachable for LeakSanitizer */
    setup(&f);
    zn_h1_conn_t *conn = feed(&f, HEAD2 "5\r\nhello\r\n3\r", sizeof(head) - 1 + 13);
    check_conn(&f, conn, "PUT");
    zn_h1_chunked_reader_t *r = (void *)conn->_req_entity_reader;
    assert_int_equal(conn->_reqsize, sizeof(head) - 1);
    assert_int_equal(r->prev_input_size, sizeof(head) - 1 + 5); /* "hello" decoded in place */
    assert_int_equal(f.sock->input->size, r->prev_input_size);
    assert_memory_equal(f.sock->input->bytes + sizeof(head) - 1, "hello", 5);
    assert_int_equal(r->decoder.consume_trailer, 1);
    /* the copied decoder goes on where h2o's stopped: "\nabc\r\n0\r\n\r\n" ends the body */
    struct phr_chunked_decoder d = r->decoder;
    char more[] = "\nabc\r\n0\r\n\r\nGET";
    size_t n = sizeof(more) - 1;
    assert_int_equal(phr_decode_chunked(&d, more, &n), 3);
    assert_int_equal(n, 3);
    assert_memory_equal(more, "abc", 3);
    assert_memory_equal(more + 3, "GET", 3);
    teardown(&f);
}

static void test_picohttpparser_abi(void **state)
{
    static const char req[] = "POST /p?q HTTP/1.1\r\nA: 1\r\nContent-Length: 3\r\n\r\nxyz";
    struct phr_header h[8];
    size_t nh = 8, mlen, plen;
    const char *m, *p;
    int minor;
    int n = phr_parse_request(req, sizeof(req) - 1, &m, &mlen, &p, &plen, &minor, h, &nh, 0);
    assert_int_equal(n, sizeof(req) - 1 - 3);
    assert_int_equal(nh, 2);
    assert_int_equal(minor, 1);
    assert_true(mlen == 4 && memcmp(m, "POST", 4) == 0);
    assert_true(plen == 4 && memcmp(p, "/p?q", 4) == 0);
    assert_true(h[1].name_len == 14 && h[1].value_len == 1 && h[1].value[0] == '3');
    nh = 8;
    assert_int_equal(phr_parse_request(req, 10, &m, &mlen, &p, &plen, &minor, h, &nh, 0), -2);

    struct phr_chunked_decoder d = {.consume_trailer = 1}; /* as h2o sets it */
    char body[] = "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n";
    size_t bn = sizeof(body) - 1;
    assert_int_equal(phr_decode_chunked(&d, body, &bn), 0);
    assert_int_equal(bn, 13);
    assert_memory_equal(body, "abc0123456789", 13);
    struct phr_chunked_decoder bad = {0};
    char junk[] = "zz\r\n";
    bn = sizeof(junk) - 1;
    assert_int_equal(phr_decode_chunked(&bad, junk, &bn), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length_reader),
        cmocka_unit_test(test_chunked_reader),
        cmocka_unit_test(test_picohttpparser_abi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
