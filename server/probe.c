/*
 * server/probe.c - `zinc probe URL` and `zinc probe --config FILE [PATH]`: one GET, exit 0
 * on a 2xx answer. The container's HEALTHCHECK uses the second form, so the runtime image
 * needs no curl or wget and a mounted config with another port or TLS stays healthy: the
 * address, port and scheme come from the same file the server runs with (a wildcard
 * address is probed on loopback). TLS is not verified: the probe asks whether the
 * listener answers, not who it is. A listener that demands client certificates (mTLS)
 * cannot be probed this way.
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "server/server.h"

#define PROBE_TIMEOUT_SEC 2

struct probe_target {
    char host[256], port[16], path[512];
    bool tls;
};

static bool copy_str(char *dst, size_t size, const char *src, size_t len)
{
    if (len == 0 || len >= size)
        return false;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return true;
}

/* Splits "http[s]://host[:port]/path" (an IPv6 host in brackets). */
static bool parse_url(const char *url, struct probe_target *t)
{
    const char *auth;
    if (strncmp(url, "http://", 7) == 0) {
        auth = url + 7;
    } else if (strncmp(url, "https://", 8) == 0) {
        auth = url + 8;
        t->tls = true;
    } else {
        return false;
    }
    const char *slash = strchr(auth, '/');
    const char *end = slash != NULL ? slash : auth + strlen(auth);
    const char *h = auth, *hend, *colon;
    const char *path = slash != NULL ? slash : "/";
    if (h < end && *h == '[') {
        if ((hend = memchr(h, ']', (size_t)(end - h))) == NULL)
            return false;
        h++;
        colon = hend + 1 < end && hend[1] == ':' ? hend + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        hend = colon != NULL ? colon : end;
    }
    const char *p = colon != NULL ? colon + 1 : (t->tls ? "443" : "80");
    size_t plen = colon != NULL ? (size_t)(end - p) : strlen(p);
    return copy_str(t->host, sizeof(t->host), h, (size_t)(hend - h)) && copy_str(t->port, sizeof(t->port), p, plen) &&
           copy_str(t->path, sizeof(t->path), path, strlen(path));
}

static void ignore_warning(void *data, const char *msg)
{
}

/* The listener `config` describes: its port and scheme; a wildcard address becomes loopback. */
static bool target_from_config(const char *config, const char *path, struct probe_target *t)
{
    zn_config_t cfg;
    char err[512];
    bool ok = false;

    if (zn_config_load(config, &cfg, ignore_warning, NULL, err, sizeof(err)) != ZN_OK) {
        fprintf(stderr, "zinc probe: %s\n", err);
        return false;
    }
    const char *addr = cfg.http.address != NULL ? cfg.http.address : "";
    if (addr[0] == '\0' || strcmp(addr, "0.0.0.0") == 0)
        addr = "127.0.0.1";
    else if (strcmp(addr, "::") == 0 || strcmp(addr, "[::]") == 0)
        addr = "::1";
    int n = snprintf(t->port, sizeof(t->port), "%d", cfg.http.port);
    t->tls = cfg.http.tls.cert != NULL;
    ok = n > 0 && (size_t)n < sizeof(t->port) && copy_str(t->host, sizeof(t->host), addr, strlen(addr)) &&
         copy_str(t->path, sizeof(t->path), path, strlen(path)) && path[0] == '/';
    if (!ok)
        fprintf(stderr, "zinc probe: cannot probe %s from %s\n", path, config);
    zn_config_release(&cfg);
    return ok;
}

static int connect_to(const struct probe_target *t)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    struct timeval tv = {PROBE_TIMEOUT_SEC, 0};
    int fd = -1;

    if (getaddrinfo(t->host, t->port, &hints, &res) != 0)
        return -1;
    if ((fd = socket(res->ai_family, res->ai_socktype, 0)) != -1 &&
        (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
         setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0)) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Sends req over fd (TLS when ssl is not NULL) and reads the status line: true on 2xx. */
static bool exchange(int fd, SSL *ssl, const char *req, int reqlen)
{
    char resp[64];
    int r;

    if (ssl != NULL) {
        if (SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1 || SSL_write(ssl, req, reqlen) != reqlen)
            return false;
        r = SSL_read(ssl, resp, sizeof(resp) - 1);
    } else {
        if (write(fd, req, (size_t)reqlen) != reqlen)
            return false;
        r = (int)read(fd, resp, sizeof(resp) - 1);
    }
    if (r < 12)
        return false;
    resp[r] = '\0';
    return strncmp(resp, "HTTP/1.", 7) == 0 && resp[9] == '2';
}

static bool probe(const struct probe_target *t)
{
    char req[1024];
    bool v6 = strchr(t->host, ':') != NULL, ok = false;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    int fd = -1;

    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s%s%s\r\n\r\n", t->path, v6 ? "[" : "", t->host,
                     v6 ? "]" : "");
    if (n < 0 || (size_t)n >= sizeof(req))
        goto done;
    if (t->tls && ((ctx = SSL_CTX_new(TLS_client_method())) == NULL || (ssl = SSL_new(ctx)) == NULL))
        goto done;
    if ((fd = connect_to(t)) == -1)
        goto done;
    ok = exchange(fd, ssl, req, n);
done:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd != -1)
        close(fd);
    return ok;
}

int zn_probe_main(int argc, char **argv)
{
    struct probe_target t = {.tls = false};

    if (argc == 1 && strncmp(argv[0], "--", 2) != 0) {
        if (!parse_url(argv[0], &t)) {
            fprintf(stderr, "zinc probe: expected http[s]://HOST:PORT/PATH, got %s\n", argv[0]);
            return 2;
        }
    } else if ((argc == 2 || argc == 3) && strcmp(argv[0], "--config") == 0) {
        if (!target_from_config(argv[1], argc == 3 ? argv[2] : "/livez", &t))
            return 1;
    } else {
        fputs("usage: zinc probe URL | zinc probe --config FILE [PATH]\n", stderr);
        return 2;
    }
    if (probe(&t))
        return 0;
    bool v6 = strchr(t.host, ':') != NULL;
    fprintf(stderr, "zinc probe: %s://%s%s%s:%s%s is not healthy\n", t.tls ? "https" : "http", v6 ? "[" : "", t.host,
            v6 ? "]" : "", t.port, t.path);
    return 1;
}
