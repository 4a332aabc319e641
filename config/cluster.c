/*
 * config/cluster.c - zot's "cluster" section (scale-out by repository).
 *
 * zot (pkg/api/config/config.go ClusterConfig, pkg/cli/server/root.go validateClusterConfig)
 * takes {members: ["host:port", ...], hashKey: 16 characters, tls: {cert, key, cacert}} and
 * rejects an empty member list and a hashKey of another length. zinc also rejects what zot
 * would only trip over at startup or while proxying: a member that is not "host:port", the
 * same member twice (two indexes for one process would make it proxy to itself), and a tls
 * cert without its key. cluster.tls without http.tls is accepted with a warning: as in zot,
 * members talk https only when this member serves https itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/internal.h"

#define CL(m) offsetof(zn_config_t, cluster.m)

#define ZN_CLUSTER_HASHKEY_LEN 16 /* SipHash's 128-bit key, one byte per character as zot counts */

static const cfg_field_t cluster_tls_fields[] = {
    {.name = "cert", .kind = CFG_STR, .off = CL(tls.cert)},
    {.name = "key", .kind = CFG_STR, .off = CL(tls.key)},
    {.name = "cacert", .kind = CFG_STR, .off = CL(tls.cacert)},
    {NULL},
};

const cfg_field_t cfg_cluster_fields[] = {
    {.name = "members", .kind = CFG_STRV, .off = CL(members), .off_n = CL(nmembers)},
    {.name = "hashKey", .kind = CFG_STR, .off = CL(hash_key)},
    {.name = "tls", .kind = CFG_OBJ, .sub = cluster_tls_fields},
    {NULL},
};

static bool parse_port(const char *p, int *port)
{
    long v = 0;

    if (*p == '\0')
        return false;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || (v = v * 10 + (*p - '0')) > 65535)
            return false;
    }
    if (v == 0)
        return false;
    *port = (int)v;
    return true;
}

zn_err_t zn_config_split_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *h, *hend, *colon;

    if (s[0] == '[') {
        h = s + 1;
        if ((hend = strchr(h, ']')) == NULL || hend[1] != ':')
            return ZN_EINVAL;
        colon = hend + 1;
    } else {
        h = s;
        if ((colon = strrchr(s, ':')) == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
            return ZN_EINVAL; /* no port, or an IPv6 address without brackets */
        hend = colon;
    }
    size_t n = (size_t)(hend - h);
    if (n == 0 || n >= hostlen || memchr(h, '[', n) != NULL || memchr(h, ']', n) != NULL || !parse_port(colon + 1, port))
        return ZN_EINVAL;
    memcpy(host, h, n);
    host[n] = '\0';
    return ZN_OK;
}

static void drop_empty(char **s)
{
    if (*s != NULL && **s == '\0') {
        free(*s);
        *s = NULL;
    }
}

static zn_err_t check_members(cfg_walk_t *w, const cfg_keypath_t *cl, zn_config_t *cfg)
{
    cfg_keypath_t members = {cl, "members", 0};
    char host[256];
    int port;

    if (cfg->cluster.nmembers == 0)
        return cfg_fail(w, &members, "cannot have 0 members in a scale out cluster");
    for (size_t i = 0; i < cfg->cluster.nmembers; i++) {
        cfg_keypath_t at = {&members, NULL, i};
        const char *m = cfg->cluster.members[i];
        if (zn_config_split_hostport(m, host, sizeof(host), &port) != ZN_OK)
            return cfg_fail(w, &at, "expected \"host:port\" (port 1-65535, IPv6 in brackets), got \"%s\"", m);
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(cfg->cluster.members[j], m) == 0)
                return cfg_fail(w, &at, "\"%s\" is already members[%zu]", m, j);
    }
    return ZN_OK;
}

zn_err_t cfg_check_cluster(cfg_walk_t *w, zn_config_t *cfg)
{
    cfg_keypath_t cl = {NULL, "cluster", 0}, key = {&cl, "hashKey", 0}, tls = {&cl, "tls", 0};
    zn_err_t err;

    if (!cfg->cluster.present)
        return ZN_OK;
    if ((err = check_members(w, &cl, cfg)) != ZN_OK)
        return err;
    size_t klen = cfg->cluster.hash_key != NULL ? strlen(cfg->cluster.hash_key) : 0;
    if (klen != ZN_CLUSTER_HASHKEY_LEN)
        return cfg_fail(w, &key, "hashKey for scale out cluster must have %d characters, got %zu", ZN_CLUSTER_HASHKEY_LEN, klen);
    drop_empty(&cfg->cluster.tls.cert);
    drop_empty(&cfg->cluster.tls.key);
    drop_empty(&cfg->cluster.tls.cacert);
    if ((cfg->cluster.tls.cert == NULL) != (cfg->cluster.tls.key == NULL))
        return cfg_fail(w, &tls, "cert and key must be given together");
    bool any_tls = cfg->cluster.tls.cert != NULL || cfg->cluster.tls.cacert != NULL;
    if (any_tls && cfg->http.tls.cert == NULL)
        cfg_warn(w, &tls, "ignored: members are reached over https only when http.tls is set (as in zot)");
    return ZN_OK;
}
