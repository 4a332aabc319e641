/*
 * server/cluster.c - who owns a repository in zot's cluster mode, and which member we are.
 *
 * Ownership is zot's pkg/cluster ComputeTargetMember: SipHash-2-4 of the repository name
 * under cluster.hashKey (github.com/dchest/siphash: the 16 key bytes are k0 and k1, little
 * endian), modulo the number of members. A keyed hash stops a client from choosing names
 * that all land on one member. Our own index is found as zot's controller does at startup
 * (pkg/api/proxy.go GetLocalMemberClusterSocket): members in order, each host resolved,
 * the first whose address is one of this machine's interface addresses and whose port is
 * http.port is us. Nothing here runs on a worker's loop except the hash and the lookups.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "server/cluster.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = ROTL(v[1], 13);
    v[1] ^= v[0];
    v[0] = ROTL(v[0], 32);
    v[2] += v[3];
    v[3] = ROTL(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = ROTL(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = ROTL(v[1], 17);
    v[1] ^= v[2];
    v[2] = ROTL(v[2], 32);
}

static void sip_compress(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    sip_round(v);
    sip_round(v);
    v[0] ^= m;
}

uint64_t zn_cluster_siphash24(const uint8_t key[16], const void *data, size_t n)
{
    const uint8_t *p = data, *end = p + (n & ~(size_t)7);
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    uint64_t v[4] = {k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull, k0 ^ 0x6c7967656e657261ull,
                     k1 ^ 0x7465646279746573ull};

    for (; p != end; p += 8)
        sip_compress(v, load_le64(p));
    /* the last block: the remaining bytes, and the length's low byte on top */
    uint64_t b = (uint64_t)n << 56;
    for (size_t i = 0; i < (n & 7); i++)
        b |= (uint64_t)p[i] << (8 * i);
    sip_compress(v, b);
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

size_t zn_cluster_owner(const zn_cluster_t *c, zn_slice_t name)
{
    return (size_t)(zn_cluster_siphash24(c->key, name.p, name.n) % c->n);
}

bool zn_cluster_is_local(const zn_cluster_t *c, zn_slice_t name)
{
    return c == NULL || zn_cluster_owner(c, name) == c->self;
}

size_t zn_cluster_self(const zn_cluster_t *c)
{
    return c->self;
}

size_t zn_cluster_size(const zn_cluster_t *c)
{
    return c->n;
}

const char *zn_cluster_member(const zn_cluster_t *c, size_t i)
{
    return c->cfg->cluster.members[i];
}

/* ---- finding ourselves ---------------------------------------------------------------- */

static bool same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr, &((const struct sockaddr_in *)b)->sin_addr,
                      sizeof(struct in_addr)) == 0;
    if (a->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr,
                      sizeof(struct in6_addr)) == 0;
    return false;
}

static bool is_local(const struct ifaddrs *ifs, const struct sockaddr *sa)
{
    for (const struct ifaddrs *i = ifs; i != NULL; i = i->ifa_next)
        if (i->ifa_addr != NULL && same_addr(i->ifa_addr, sa))
            return true;
    return false;
}

/* Member i is us when its port is ours and its host resolves to a local address. ZN_ENOENT
 * when it is not; ZN_EINVAL (message in err) when its host does not resolve, which zot also
 * treats as fatal. */
static zn_err_t member_is_self(const zn_config_t *cfg, size_t i, const struct ifaddrs *ifs, char *err, size_t errlen)
{
    const char *m = cfg->cluster.members[i];
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char host[256];
    int port, rc;
    zn_err_t out = ZN_ENOENT;

    if (zn_config_split_hostport(m, host, sizeof(host), &port) != ZN_OK) {
        zn_errf(err, errlen, "cluster.members[%zu]: expected \"host:port\", got \"%s\"", i, m);
        return ZN_EINVAL;
    }
    if (port != cfg->http.port)
        return ZN_ENOENT;
    if ((rc = getaddrinfo(host, NULL, &hints, &res)) != 0) {
        zn_errf(err, errlen, "cluster.members[%zu]: cannot resolve \"%s\": %s", i, host, gai_strerror(rc));
        return ZN_EINVAL;
    }
    for (const struct addrinfo *a = res; a != NULL; a = a->ai_next)
        if (is_local(ifs, a->ai_addr))
            out = ZN_OK;
    freeaddrinfo(res);
    return out;
}

static zn_err_t find_self(const zn_config_t *cfg, size_t *self, char *err, size_t errlen)
{
    struct ifaddrs *ifs = NULL;
    zn_err_t e = ZN_ENOENT;

    if (getifaddrs(&ifs) != 0) {
        zn_errf(err, errlen, "cluster: cannot list the local interface addresses: %s", strerror(errno));
        return ZN_EIO;
    }
    for (size_t i = 0; i < cfg->cluster.nmembers && e == ZN_ENOENT; i++)
        if ((e = member_is_self(cfg, i, ifs, err, errlen)) == ZN_OK)
            *self = i;
    freeifaddrs(ifs);
    if (e == ZN_ENOENT)
        zn_errf(err, errlen,
                 "cluster.members: failed to determine the local cluster socket: no member is a local address with port %d "
                 "(http.port)",
                 cfg->http.port);
    return e;
}

zn_err_t zn_cluster_new(const zn_config_t *cfg, zn_cluster_t **out, char *err, size_t errlen)
{
    size_t self = 0;
    zn_err_t e;

    err[0] = '\0';
    *out = NULL;
    if (!cfg->cluster.present)
        return ZN_OK;
    if ((e = find_self(cfg, &self, err, errlen)) != ZN_OK)
        return e;
    if (cfg->cluster.nmembers < 2)
        return ZN_OK;
    zn_cluster_t *c = zn_calloc(1, sizeof(*c));
    c->cfg = cfg;
    memcpy(c->key, cfg->cluster.hash_key, sizeof(c->key));
    c->n = cfg->cluster.nmembers;
    c->self = self;
    c->https = cfg->http.tls.cert != NULL;
    if (!zn_cluster_proxy_init(c, err, errlen)) {
        zn_cluster_free(c);
        return ZN_EINVAL;
    }
    zn_log(ZN_LOG_INFO, "cluster member", ZN_LSTR("clusterMember", cfg->cluster.members[self]),
           ZN_LUINT("clusterMemberIndex", self), ZN_LUINT("members", c->n));
    *out = c;
    return ZN_OK;
}

void zn_cluster_free(zn_cluster_t *c)
{
    if (c == NULL)
        return;
    zn_cluster_proxy_release(c);
    free(c);
}
