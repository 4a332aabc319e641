/*
 * server/probe.c - `zinc probe http://HOST:PORT/PATH`: one GET, exit 0 on a 2xx answer.
 * The container's HEALTHCHECK uses it so the runtime image needs no curl or wget.
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "server/server.h"

/* Splits "http://host[:port]/path" (an IPv6 host in brackets). */
static bool parse_url(const char *url, char *host, size_t hl, char *port, size_t pl, const char **path)
{
    if (strncmp(url, "http://", 7) != 0)
        return false;
    const char *auth = url + 7, *slash = strchr(auth, '/');
    const char *end = slash != NULL ? slash : auth + strlen(auth);
    const char *h = auth, *hend, *colon;
    *path = slash != NULL ? slash : "/";
    if (h < end && *h == '[') {
        if ((hend = memchr(h, ']', (size_t)(end - h))) == NULL)
            return false;
        h++;
        colon = hend + 1 < end && hend[1] == ':' ? hend + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        hend = colon != NULL ? colon : end;
    }
    const char *p = colon != NULL ? colon + 1 : "80";
    size_t hlen = (size_t)(hend - h), plen = colon != NULL ? (size_t)(end - p) : 2;
    if (hlen == 0 || hlen >= hl || plen == 0 || plen >= pl)
        return false;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memcpy(port, p, plen);
    port[plen] = '\0';
    return true;
}

int zn_probe_main(const char *url)
{
    char host[256], port[16], req[1024], resp[64];
    const char *path;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    struct timeval tv = {2, 0};
    int fd = -1, ok = 0;

    if (!parse_url(url, host, sizeof(host), port, sizeof(port), &path)) {
        fprintf(stderr, "zinc probe: expected http://HOST:PORT/PATH, got %s\n", url);
        return 2;
    }
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host);
    if (n < 0 || (size_t)n >= sizeof(req) || getaddrinfo(host, port, &hints, &res) != 0)
        return 1;
    if ((fd = socket(res->ai_family, res->ai_socktype, 0)) != -1 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0 &&
        write(fd, req, (size_t)n) == n) {
        ssize_t r = read(fd, resp, sizeof(resp) - 1);
        if (r >= 12) {
            resp[r] = '\0';
            ok = strncmp(resp, "HTTP/1.", 7) == 0 && resp[9] == '2';
        }
    }
    if (fd != -1)
        close(fd);
    freeaddrinfo(res);
    if (!ok)
        fprintf(stderr, "zinc probe: %s is not healthy\n", url);
    return ok ? 0 : 1;
}
