/*
 * server/cluster.h - private to server/: zot's scale-out cluster mode (config "cluster").
 *
 * Every member runs with the same members list and hashKey. A repository belongs to the
 * member at index siphash24(hashKey, name) % len(members), as zot's pkg/cluster does; a
 * request for a repository another member owns is proxied to it (cluster_proxy.c). Members
 * share nothing: each keeps its own repositories in its own storage.
 */
#ifndef ZN_SERVER_CLUSTER_H
#define ZN_SERVER_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include <h2o.h>

#include "common/route.h"
#include "config/config.h"

/* zot's loop guard (pkg/api/constants ScaleOutHopCountHeader), lower-cased for h2o. */
#define ZN_CLUSTER_HOP_HEADER "x-zot-cluster-hop-count"

typedef struct zn_cluster {
    const zn_config_t *cfg;
    uint8_t key[16];
    size_t n, self;
    bool https;                     /* members are reached over https: this member serves http.tls (as zot) */
    SSL_CTX *client_ssl;            /* towards members when https: cluster.tls cert/key/cacert */
    struct st_h2o_filter_t *filter; /* set by zn_cluster_proxy_setup */
} zn_cluster_t;

/* SipHash-2-4 of p[0..n) under the 16-byte key, k0 = key[0..8) and k1 = key[8..16) read
 * little-endian (as github.com/dchest/siphash New(key) does). */
uint64_t zn_cluster_siphash24(const uint8_t key[16], const void *p, size_t n);

/* The cluster of cfg into *out. ZN_OK with *out NULL when not clustered (no `cluster`, or one
 * member: everything is local, zot's IsClustered). With cluster configured, this member's
 * index is found as zot finds it: the first member whose host resolves to an address of a
 * local interface and whose port is http.port; none is an error (a message in err, *out
 * NULL), and so is a TLS file that cannot be loaded. Resolving member names blocks: call
 * before the workers start. cfg must outlive the result. */
zn_err_t zn_cluster_new(const zn_config_t *cfg, zn_cluster_t **out, char *err, size_t errlen);
void zn_cluster_free(zn_cluster_t *c);

/* The index of the member owning repository `name` (the raw path parameter). */
size_t zn_cluster_owner(const zn_cluster_t *c, zn_slice_t name);
/* True when this member serves repository `name` itself; c NULL (no cluster) is true. The one
 * place that decides it: the upload fast path and the proxy both ask here. */
bool zn_cluster_is_local(const zn_cluster_t *c, zn_slice_t name);
size_t zn_cluster_self(const zn_cluster_t *c);
size_t zn_cluster_size(const zn_cluster_t *c);
/* Member i as written in the config ("host:port"). */
const char *zn_cluster_member(const zn_cluster_t *c, size_t i);

/* cluster_proxy.c: the client SSL_CTX of c when members talk https (called by
 * zn_cluster_new). False with a message in err when a TLS file cannot be loaded. */
bool zn_cluster_proxy_init(zn_cluster_t *c, char *err, size_t errlen);
void zn_cluster_proxy_release(zn_cluster_t *c);

/* cluster_proxy.c: registers on path the filter holding each worker's upstream client state
 * and turning h2o's own 502 of a failed proxy into an OCI error. Call once, before the
 * workers start; c may be NULL (nothing to do). */
void zn_cluster_proxy_setup(zn_cluster_t *c, h2o_pathconf_t *path);

/* cluster_proxy.c: for a request whose route names a repository (route->repo_param >= 0)
 * that another member owns, forwards it there (method, path, headers including
 * Authorization, body, with the hop header added) and streams the answer back; returns true
 * when the request was taken (proxied, or refused: a request that was already proxied once
 * and still is not local means the members disagree, and gets a 508 OCI error instead of
 * looping). False: serve it here. c may be NULL. Authentication and authorization are left
 * to the owner, which alone knows the repository. */
bool zn_cluster_route(zn_cluster_t *c, h2o_req_t *req, const zn_route_def_t *def, const zn_slice_t *params, int nparams);

/* cluster_proxy.c: this worker's HTTP/1 client context towards members, or NULL for a
 * context the filter does not know. */
h2o_http1client_ctx_t *zn_cluster_client(zn_cluster_t *c, h2o_context_t *ctx);
/* cluster_proxy.c: true when v has no space, control byte or DEL, so it can go into an
 * upstream request line as is (h2o 2.2.5 does not check an HTTP/2 :path). */
bool zn_cluster_wire_safe(h2o_iovec_t v);

/* cluster_catalog.c: the GET /v2/_catalog row that merges every member's page (register
 * it with app = the zn_server_t, before the API's own catalog row so it wins). */
const zn_route_def_t *zn_cluster_catalog_route(void);

#endif
