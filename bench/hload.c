/*
 * hload: a minimal closed-loop HTTP/1.1 load generator for the benchmark harness.
 *
 * Debian's wrk 4.1 cannot measure HEAD: its parser waits for the body that a HEAD response
 * announces in Content-Length but never sends, so every connection stalls after one
 * request. hload does what wrk does for the rest (keep-alive connections spread over
 * threads, one request in flight per connection, no pipelining) and knows that a HEAD
 * response has no body. Responses must carry Content-Length (or be HEAD/204/304); chunked
 * bodies count as errors, which is enough for manifests and tag lists.
 *
 * Usage: hload -t THREADS -c CONNECTIONS -d SECONDS [-m METHOD] [-H 'Name: value']... http://HOST:PORT/PATH
 * Output: one JSON line {"requests":N,"non2xx":N,"errors":N,"seconds":S,"rps":R}.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 4096
#define MAX_REQ 8192
#define BUF_SIZE 65536

struct conn {
    int fd;
    int in_body;
    size_t len;
    uint64_t body_left;
    char buf[BUF_SIZE];
};

struct worker {
    pthread_t tid;
    int nconns;
    uint64_t ok, non2xx, errors;
};

static struct sockaddr_in target;
static char request[MAX_REQ];
static size_t request_len;
static int is_head;
static double deadline;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Opens a connection and sends the first request; -1 on failure. */
static int conn_open(struct conn *c, int ep)
{
    int one = 1;
    struct epoll_event ev = {.events = EPOLLIN};

    c->len = 0;
    c->in_body = 0;
    if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ev.data.ptr = c;
    if (connect(c->fd, (struct sockaddr *)&target, sizeof(target)) != 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0 ||
        write(c->fd, request, request_len) != (ssize_t)request_len) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

/* Parses the header block of length hlen at c->buf; returns the status or -1. */
static int parse_head(struct conn *c, size_t hlen, uint64_t *clen, int *has_clen)
{
    const char *p = c->buf, *end = c->buf + hlen;
    int status;

    if (hlen < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[9] < '1' || p[9] > '5')
        return -1;
    status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    *has_clen = 0;
    while ((p = memchr(p, '\n', end - p)) != NULL && ++p < end) {
        if (end - p > 15 && strncasecmp(p, "content-length:", 15) == 0) {
            const char *q = p + 15;
            *clen = 0;
            while (q < end && *q == ' ')
                ++q;
            for (; q < end && *q >= '0' && *q <= '9'; ++q) {
                if (*clen > UINT64_MAX / 10 - 1)
                    return -1;
                *clen = *clen * 10 + (*q - '0');
            }
            *has_clen = 1;
        }
    }
    return status;
}

/* Consumes complete responses in c->buf; sends the next request after each one. */
static int conn_consume(struct worker *w, struct conn *c)
{
    for (;;) {
        if (!c->in_body) {
            char *eoh = memmem(c->buf, c->len, "\r\n\r\n", 4);
            uint64_t clen = 0;
            int has_clen, status;
            size_t hlen;
            if (eoh == NULL)
                return c->len == BUF_SIZE ? -1 : 0;
            hlen = eoh + 4 - c->buf;
            if ((status = parse_head(c, hlen, &clen, &has_clen)) < 0)
                return -1;
            if (!has_clen && !is_head && status != 204 && status != 304)
                return -1;
            c->body_left = is_head ? 0 : clen;
            if (status < 200 || status > 399)
                ++w->non2xx;
            else
                ++w->ok;
            memmove(c->buf, c->buf + hlen, c->len - hlen);
            c->len -= hlen;
            c->in_body = 1;
        }
        size_t take = c->len < c->body_left ? c->len : (size_t)c->body_left;
        memmove(c->buf, c->buf + take, c->len - take);
        c->len -= take;
        c->body_left -= take;
        if (c->body_left != 0)
            return 0;
        c->in_body = 0;
        if (write(c->fd, request, request_len) != (ssize_t)request_len)
            return -1;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct conn *conns = calloc(w->nconns, sizeof(*conns));
    struct epoll_event evs[64];
    int ep = epoll_create1(EPOLL_CLOEXEC), i, n;

    if (conns == NULL || ep == -1) {
        perror("hload");
        exit(2);
    }
    for (i = 0; i != w->nconns; ++i)
        if (conn_open(&conns[i], ep) != 0)
            ++w->errors;
    while (now() < deadline) {
        if ((n = epoll_wait(ep, evs, 64, 50)) < 0 && errno != EINTR)
            break;
        for (i = 0; i < n; ++i) {
            struct conn *c = evs[i].data.ptr;
            ssize_t r = read(c->fd, c->buf + c->len, BUF_SIZE - c->len);
            if (r < 0 && errno == EAGAIN)
                continue;
            if (r > 0) {
                c->len += r;
                if (conn_consume(w, c) == 0)
                    continue;
            }
            /* a close between responses is a server's keep-alive limit, not a failure */
            if (r != 0 || c->in_body || c->len != 0)
                ++w->errors;
            close(c->fd);
            if (conn_open(c, ep) != 0)
                ++w->errors;
        }
    }
    for (i = 0; i != w->nconns; ++i)
        if (conns[i].fd != -1)
            close(conns[i].fd);
    close(ep);
    free(conns);
    return NULL;
}

/* Builds the request from METHOD, the URL and the extra headers; exits on bad input. */
static void build_request(const char *method, const char *url, char **hdrs, int nhdrs)
{
    char host[256];
    const char *path;
    int port = 80, n, i;
    size_t hl;

    if (strncmp(url, "http://", 7) != 0 || (path = strchr(url + 7, '/')) == NULL || (hl = path - (url + 7)) >= sizeof(host))
        goto bad;
    memcpy(host, url + 7, hl);
    host[hl] = '\0';
    char *colon = strchr(host, ':');
    if (colon != NULL) {
        *colon = '\0';
        port = (int)strtol(colon + 1, NULL, 10);
    }
    target.sin_family = AF_INET;
    target.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &target.sin_addr) != 1)
        goto bad;
    n = snprintf(request, sizeof(request), "%s %s HTTP/1.1\r\nHost: %.*s\r\n", method, path, (int)hl, url + 7);
    for (i = 0; i < nhdrs && n > 0 && (size_t)n < sizeof(request); ++i)
        n += snprintf(request + n, sizeof(request) - n, "%s\r\n", hdrs[i]);
    if (n <= 0 || (size_t)n + 2 >= sizeof(request))
        goto bad;
    memcpy(request + n, "\r\n", 3);
    request_len = n + 2;
    return;
bad:
    fprintf(stderr, "hload: need http://IPV4[:PORT]/PATH and headers under %d bytes\n", MAX_REQ);
    exit(2);
}

int main(int argc, char **argv)
{
    int threads = 2, conns = 64, nhdrs = 0, opt, i;
    double seconds = 5, start;
    const char *method = "GET";
    char *hdrs[32];
    uint64_t ok = 0, non2xx = 0, errors = 0;

    while ((opt = getopt(argc, argv, "t:c:d:m:H:")) != -1) {
        switch (opt) {
        case 't': threads = (int)strtol(optarg, NULL, 10); break;
        case 'c': conns = (int)strtol(optarg, NULL, 10); break;
        case 'd': seconds = strtod(optarg, NULL); break;
        case 'm': method = optarg; break;
        case 'H':
            if (nhdrs == 32)
                goto usage;
            hdrs[nhdrs++] = optarg;
            break;
        default: goto usage;
        }
    }
    if (optind + 1 != argc || threads < 1 || threads > 256 || conns < threads || conns > MAX_CONNS || seconds <= 0)
        goto usage;
    build_request(method, argv[optind], hdrs, nhdrs);
    is_head = strcmp(method, "HEAD") == 0;

    struct worker *ws = calloc(threads, sizeof(*ws));
    if (ws == NULL)
        return 2;
    start = now();
    deadline = start + seconds;
    for (i = 0; i != threads; ++i) {
        ws[i].nconns = conns / threads + (i < conns % threads);
        if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0)
            return 2;
    }
    for (i = 0; i != threads; ++i) {
        pthread_join(ws[i].tid, NULL);
        ok += ws[i].ok;
        non2xx += ws[i].non2xx;
        errors += ws[i].errors;
    }
    double took = now() - start;
    printf("{\"requests\":%llu,\"non2xx\":%llu,\"errors\":%llu,\"seconds\":%.3f,\"rps\":%.1f}\n", (unsigned long long)(ok + non2xx),
           (unsigned long long)non2xx, (unsigned long long)errors, took, (ok + non2xx) / took);
    free(ws);
    return 0;
usage:
    fprintf(stderr, "usage: hload -t THREADS -c CONNECTIONS -d SECONDS [-m METHOD] [-H 'Name: value']... http://IPV4:PORT/PATH\n");
    return 2;
}
