/*
 * server/h1_internals.h - private to server/: the parts of libh2o 2.2.5's HTTP/1 connection
 * that the upload fast path (h1stream.c) reads and writes, mirrored from lib/http1.c and
 * deps/picohttpparser/picohttpparser.h of the v2.2.5 tag (Debian 12's libh2o-evloop0.13).
 *
 * These are not in h2o's public headers. test/unit/server/test_h1stream.c builds a real
 * connection with h2o_http1_accept on a socketpair and checks every field used here
 * against what the library did (socket, request, entity reader, sizes, chunk decoder), so a
 * different build of the package fails that test instead of corrupting memory.
 */
#ifndef ZN_H1_INTERNALS_H
#define ZN_H1_INTERNALS_H

#include <h2o.h>
#include <h2o/http1.h>

/* picohttpparser (exported by libh2o-evloop, header not installed) */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
struct phr_chunked_decoder {
    size_t bytes_left_in_chunk;
    char consume_trailer;
    char _hex_count;
    char _state;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path, size_t *path_len,
                      int *minor_version, struct phr_header *headers, size_t *num_headers, size_t last_len);
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);

/* lib/http1.c: struct st_h2o_http1_conn_t and its entity readers */
typedef struct zn_h1_conn {
    h2o_conn_t super;
    h2o_socket_t *sock;
    h2o_linklist_t _conns;
    h2o_timeout_t *_timeout;
    h2o_timeout_entry_t _timeout_entry;
    uint64_t _req_index;
    size_t _prevreqlen;
    size_t _reqsize; /* head length, plus the Content-Length once a length reader exists */
    struct zn_h1_reader *_req_entity_reader; /* NULL unless a body is being read */
    struct {
        h2o_ostream_t super;
        int sent_headers;
        struct {
            void *buf;
            h2o_ostream_pull_cb cb;
        } pull;
    } _ostr_final;
    struct {
        void *data;
        h2o_http1_upgrade_cb cb;
    } upgrade;
    h2o_req_t req;
} zn_h1_conn_t;

typedef struct zn_h1_reader {
    void (*handle_incoming_entity)(zn_h1_conn_t *conn);
} zn_h1_reader_t;

typedef struct zn_h1_length_reader {
    zn_h1_reader_t super;
    size_t content_length;
} zn_h1_length_reader_t;

typedef struct zn_h1_chunked_reader {
    zn_h1_reader_t super;
    struct phr_chunked_decoder decoder;
    size_t prev_input_size; /* input[_reqsize, prev_input_size) is decoded body */
} zn_h1_chunked_reader_t;

#endif
